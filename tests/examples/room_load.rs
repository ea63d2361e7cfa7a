//! A load generator for chat rooms (lesson 11's protocol, "Budget Chat"),
//! used by bench/compare-room. MEMBERS members connect to ADDR (loopback
//! only), one after the other, and give their names (`m0`, `m1`, ...); when
//! every member has heard every other enter, the clock starts, and the
//! members speak in turn for SECONDS, in a closed loop: at most WINDOW lines
//! are on their way in the whole room at once, and a line is on its way
//! until all MEMBERS - 1 others have it. Then a member speaks again.
//!
//!     cargo run --release -p seesaw-checks --example room_load -- \
//!         ADDR MEMBERS SECONDS [--window W] [--deaf D]
//!
//! It prints the lines the members received per second ("deliveries"), the
//! 99th and 50th percentiles of a delivery's latency (from the moment the
//! speaker wrote the line to the moment a member read it), and what went
//! wrong: lines lost, and members that read but were cut off (both must be
//! 0), and how often a look at a member's socket found nothing to read (if
//! seldom, this program is what holds the room back). With `--deaf D`, D more members join last and never read a byte: the
//! room must cut each of them off (their outbox fills), and the others must
//! not slow down; the last field says how many were cut off, and when.
//!
//! Why a window? With at most WINDOW lines on their way, no member has more
//! than WINDOW lines waiting for it, so a member that reads is never cut off
//! for being slow (the outbox holds 256); and the server is always busy, so
//! what is measured is how fast it fans lines out, not how fast we speak.
//! (Default: 32.)
//!
//! Each line carries its speaker, the speaker's sequence number, a number of
//! its own, and when it was sent: `[m7] 7 41 3308 1523377` (the `[m7] ` is
//! the server's). A member checks that it hears each speaker's lines in
//! order, with none missing.
//!
//! Like load.rs, one thread drives every member, each on its own
//! non-blocking socket, going round them without ever sleeping (see load.rs
//! for why); bench/compare-room gives it a core of its own. A pass over
//! 1,000 sockets takes a while, and a latency includes the wait for it: the
//! same for every server.

use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use seesaw_checks::bytes::show;

/// How long one connect, and the greeting or the `*` line after it, may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long everyone may take to hear that everyone entered.
const JOIN_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the lines still on their way at the end may take to arrive.
const LAST_LINES_TIMEOUT: Duration = Duration::from_secs(10);
/// The window when `--window` is not given.
const DEFAULT_WINDOW: usize = 32;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("room_load: {error}");
            ExitCode::FAILURE
        }
    }
}

/// What the command line asks for.
struct Plan {
    addr: SocketAddr,
    members: usize,
    duration: Duration,
    window: usize,
    deaf: usize,
}

const USAGE: &str = "usage: room_load ADDR MEMBERS SECONDS [--window W] [--deaf D]";

fn plan() -> Result<Plan, String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (addr, members, seconds, options) = match args.as_slice() {
        [addr, members, seconds, options @ ..] => (addr, members, seconds, options),
        _ => return Err(USAGE.into()),
    };
    let addr: SocketAddr = addr.parse().map_err(|_| "ADDR must be IP:PORT")?;
    if !addr.ip().is_loopback() {
        return Err("room_load only talks to loopback addresses".into());
    }
    let members: usize = members.parse().map_err(|_| "MEMBERS must be a number")?;
    if members < 2 {
        return Err("MEMBERS must be at least 2: a line goes to the others".into());
    }
    let seconds: f64 = seconds.parse().map_err(|_| "SECONDS must be a number")?;
    let duration = Duration::try_from_secs_f64(seconds)
        .ok()
        .filter(|duration| !duration.is_zero())
        .ok_or("SECONDS must be a positive number")?;
    let mut plan = Plan {
        addr,
        members,
        duration,
        window: DEFAULT_WINDOW,
        deaf: 0,
    };
    for pair in options.chunks(2) {
        let number = |what: &str| -> Result<usize, String> {
            let value = pair
                .get(1)
                .ok_or(format!("{what} needs a number; {USAGE}"))?;
            value
                .parse()
                .map_err(|_| format!("{what} must be a number"))
        };
        match pair[0].as_str() {
            "--window" => plan.window = number("--window")?.max(1),
            "--deaf" => plan.deaf = number("--deaf")?,
            other => return Err(format!("unknown option {other}; {USAGE}")),
        }
    }
    Ok(plan)
}

fn run() -> Result<(), String> {
    let plan = plan()?;
    let mut room = Room::join(&plan)?;
    let results = room.speak(plan.duration)?;
    println!("{} members, {} deaf: {results}", plan.members, plan.deaf);
    Ok(())
}

/// One member that reads: its connection, what it has read of a line not
/// yet complete, what it has still to write, and what it has heard.
struct Member {
    connection: TcpStream,
    /// Bytes read and not yet a whole line.
    unread: Vec<u8>,
    /// Bytes to send that the socket has not taken yet.
    unsent: Vec<u8>,
    /// The next sequence number due from each speaker.
    due_from: Vec<u64>,
    /// Lines this member has said.
    said: u64,
    /// `* NAME has entered the room` lines heard.
    entered: usize,
}

/// A line on its way: how many members have still to hear it.
struct Flight {
    waiting_for: usize,
}

/// What the members heard while they spoke.
#[derive(Default)]
struct Heard {
    /// Latency of every delivery, in nanoseconds.
    latencies: Vec<u64>,
    /// Latency of each line's first delivery: how long the server took to
    /// read the line and write it once.
    first_latencies: Vec<u64>,
    /// Deliveries that arrived before the deadline.
    in_time: u64,
    /// Lines that never came: gaps in a speaker's sequence.
    lost: u64,
    /// When each deaf member's leaving was first heard.
    deaf_left: HashMap<String, Duration>,
    /// Looks at a member's socket, and how many found nothing: many, and
    /// this program was waiting for the server, not the other way round.
    looks: u64,
    empty_looks: u64,
}

/// The whole room as this program plays it.
struct Room {
    members: Vec<Member>,
    /// Connections of the members that never read, kept open.
    deaf: Vec<TcpStream>,
    window: usize,
    /// The clock's zero: lines carry their send time as nanoseconds since.
    epoch: Instant,
    flights: HashMap<u64, Flight>,
    heard: Heard,
}

impl Room {
    /// Everyone joins, one after the other; returns once every member has
    /// heard every later one enter.
    fn join(plan: &Plan) -> Result<Room, String> {
        let mut room = Room {
            members: Vec::with_capacity(plan.members),
            deaf: Vec::new(),
            window: plan.window,
            epoch: Instant::now(),
            flights: HashMap::new(),
            heard: Heard::default(),
        };
        for number in 0..plan.members {
            let mut member = Member::join(plan.addr, &format!("m{number}"))?;
            member.due_from = vec![0; plan.members];
            room.members.push(member);
            // Read what the others heard so far: a member that did not read
            // a thousand `entered` lines could be cut off before we start.
            room.read_entered()?;
        }
        for number in 0..plan.deaf {
            let name = format!("deaf{number}");
            let mut connection = connect(plan.addr, &name)?;
            // It sends its name without reading the greeting, and never
            // reads anything.
            connection
                .write_all(format!("{name}\n").as_bytes())
                .map_err(|error| format!("{name} could not give its name: {error}"))?;
            room.deaf.push(connection);
        }
        let expected = |number: usize| plan.members - 1 - number + plan.deaf;
        let deadline = Instant::now() + JOIN_TIMEOUT;
        loop {
            room.read_entered()?;
            let everyone_in =
                (0..room.members.len()).all(|n| room.members[n].entered >= expected(n));
            if everyone_in {
                return Ok(room);
            }
            if Instant::now() > deadline {
                let missing: usize = (0..room.members.len())
                    .map(|n| expected(n).saturating_sub(room.members[n].entered))
                    .sum();
                return Err(format!(
                    "{missing} `entered` lines had not come within {JOIN_TIMEOUT:?}"
                ));
            }
        }
    }

    /// Reads every member's socket once, expecting only `entered` lines.
    fn read_entered(&mut self) -> Result<(), String> {
        for number in 0..self.members.len() {
            let member = &mut self.members[number];
            member.read_more(number)?;
            let mut consumed = 0;
            while let Some(end) = member.unread[consumed..].iter().position(|&b| b == b'\n') {
                let line = &member.unread[consumed..consumed + end];
                if !(line.starts_with(b"* ") && line.ends_with(b" has entered the room")) {
                    return Err(format!(
                        "m{number} heard {} while members joined",
                        show(line)
                    ));
                }
                member.entered += 1;
                consumed += end + 1;
            }
            member.unread.drain(..consumed);
        }
        Ok(())
    }

    /// The members speak in turn, at most `window` lines on their way,
    /// until `duration` has passed; then the lines on their way arrive.
    fn speak(&mut self, duration: Duration) -> Result<Results, String> {
        // The clock starts now: times are since then.
        self.epoch = Instant::now();
        let deadline = self.epoch + duration;
        let mut next_line: u64 = 0;
        let mut next_speaker = 0;
        loop {
            let now = Instant::now();
            while now < deadline && self.flights.len() < self.window {
                self.say(next_speaker, next_line)?;
                next_line += 1;
                next_speaker = (next_speaker + 1) % self.members.len();
            }
            for number in 0..self.members.len() {
                self.members[number].write_more(number)?;
                self.hear(number, deadline)?;
            }
            if now >= deadline && self.flights.is_empty() {
                break;
            }
            if now >= deadline + LAST_LINES_TIMEOUT {
                let missing: usize = self.flights.values().map(|f| f.waiting_for).sum();
                return Err(format!(
                    "{missing} deliveries did not come within {LAST_LINES_TIMEOUT:?} of the end ({} lost before)",
                    self.heard.lost
                ));
            }
        }
        let deaf_left: Vec<Duration> = self.heard.deaf_left.values().copied().collect();
        let [p50, p99] = percentiles(&mut self.heard.latencies, [50, 99]);
        let [first_p50, first_p99] = percentiles(&mut self.heard.first_latencies, [50, 99]);
        Ok(Results {
            deliveries_per_second: self.heard.in_time as f64 / duration.as_secs_f64(),
            p99,
            p50,
            first_p50,
            first_p99,
            lines: next_line,
            lost: self.heard.lost,
            deaf: self.deaf.len(),
            deaf_cut_off: deaf_left.len(),
            deaf_cut_off_after: deaf_left.into_iter().max(),
            empty_looks: self.heard.empty_looks as f64 / self.heard.looks.max(1) as f64,
        })
    }

    /// Member `speaker` says line number `id`.
    fn say(&mut self, speaker: usize, id: u64) -> Result<(), String> {
        let sent = self.epoch.elapsed().as_nanos();
        let member = &mut self.members[speaker];
        let line = format!("{speaker} {} {id} {sent}\n", member.said);
        member.said += 1;
        member.unsent.extend_from_slice(line.as_bytes());
        let waiting_for = self.members.len() - 1;
        self.flights.insert(id, Flight { waiting_for });
        self.members[speaker].write_more(speaker)
    }

    /// Reads what member `number` has received, and takes note of each line.
    fn hear(&mut self, number: usize, deadline: Instant) -> Result<(), String> {
        self.heard.looks += 1;
        if !self.members[number].read_more(number)? {
            self.heard.empty_looks += 1;
            return Ok(());
        }
        let now = Instant::now();
        let since_epoch = now.duration_since(self.epoch).as_nanos() as u64;
        let unread = std::mem::take(&mut self.members[number].unread);
        let mut consumed = 0;
        while let Some(end) = unread[consumed..].iter().position(|&b| b == b'\n') {
            let line = &unread[consumed..consumed + end];
            consumed += end + 1;
            if line.starts_with(b"* ") {
                self.hear_event(number, line, since_epoch)?;
                continue;
            }
            let said = Said::parse(line)
                .ok_or_else(|| format!("m{number} heard {}, not a line we said", show(line)))?;
            self.hear_said(number, &said, since_epoch);
            if now < deadline {
                self.heard.in_time += 1;
            }
        }
        let member = &mut self.members[number];
        member.unread = unread;
        member.unread.drain(..consumed);
        Ok(())
    }

    fn hear_said(&mut self, number: usize, said: &Said, since_epoch: u64) {
        let due = &mut self.members[number].due_from[said.speaker];
        if said.sequence > *due {
            self.heard.lost += said.sequence - *due;
        }
        *due = said.sequence + 1;
        let latency = since_epoch.saturating_sub(said.sent);
        self.heard.latencies.push(latency);
        let everyone_else = self.members.len() - 1;
        if let Some(flight) = self.flights.get_mut(&said.id) {
            if flight.waiting_for == everyone_else {
                self.heard.first_latencies.push(latency);
            }
            flight.waiting_for -= 1;
            if flight.waiting_for == 0 {
                self.flights.remove(&said.id);
            }
        }
    }

    /// A `*` line while the members speak: only a deaf member may leave.
    fn hear_event(&mut self, number: usize, line: &[u8], since_epoch: u64) -> Result<(), String> {
        let text = String::from_utf8_lossy(line);
        let deaf_left = text
            .strip_prefix("* ")
            .and_then(|rest| rest.strip_suffix(" has left the room"))
            .filter(|name| name.starts_with("deaf"));
        match deaf_left {
            Some(name) => {
                let when = Duration::from_nanos(since_epoch);
                self.heard.deaf_left.entry(name.to_string()).or_insert(when);
                Ok(())
            }
            None => Err(format!(
                "m{number} heard {} while the members spoke",
                show(line)
            )),
        }
    }
}

impl Member {
    /// Connects, reads the greeting, gives `name`, and reads the `*` line
    /// of who is present; from then on the socket does not block.
    fn join(addr: SocketAddr, name: &str) -> Result<Member, String> {
        let mut connection = connect(addr, name)?;
        let mut member = Member {
            connection: connection.try_clone().map_err(|e| e.to_string())?,
            unread: Vec::new(),
            unsent: Vec::new(),
            due_from: Vec::new(),
            said: 0,
            entered: 0,
        };
        let greeting = member.read_line_waiting(name)?;
        if greeting.starts_with(b"*") {
            return Err(format!("{name} was not greeted: {}", show(&greeting)));
        }
        connection
            .write_all(format!("{name}\n").as_bytes())
            .map_err(|error| format!("{name} could not give its name: {error}"))?;
        let present = member.read_line_waiting(name)?;
        if !present.starts_with(b"* ") || present.starts_with(b"* error") {
            return Err(format!("{name} could not join: {}", show(&present)));
        }
        connection
            .set_nonblocking(true)
            .map_err(|e| e.to_string())?;
        Ok(member)
    }

    /// Reads one line, waiting for it (before the socket is non-blocking).
    fn read_line_waiting(&mut self, name: &str) -> Result<Vec<u8>, String> {
        let mut chunk = [0; 4096];
        loop {
            if let Some(end) = self.unread.iter().position(|&b| b == b'\n') {
                let line = self.unread[..end].to_vec();
                self.unread.drain(..=end);
                return Ok(line);
            }
            match self.connection.read(&mut chunk) {
                Ok(0) => return Err(format!("{name}: the server closed the connection")),
                Ok(n) => self.unread.extend_from_slice(&chunk[..n]),
                Err(error) => return Err(format!("{name} heard nothing: {error}")),
            }
        }
    }

    /// Reads whatever has arrived. Returns true if anything did; the end of
    /// the connection is an error: the server cut off a member that reads.
    fn read_more(&mut self, number: usize) -> Result<bool, String> {
        let mut chunk = [0; 64 * 1024];
        let mut any = false;
        loop {
            match self.connection.read(&mut chunk) {
                Ok(0) => {
                    return Err(format!(
                        "m{number} was cut off (end of file), though it reads: the room dropped a member that reads"
                    ));
                }
                // Less than asked for: the socket is empty now, most
                // likely; the next pass reads what comes meanwhile. (One
                // system call a read, not two: the server's lines come fast.)
                Ok(n) if n < chunk.len() => {
                    self.unread.extend_from_slice(&chunk[..n]);
                    return Ok(true);
                }
                Ok(n) => {
                    self.unread.extend_from_slice(&chunk[..n]);
                    any = true;
                }
                Err(error) if error.kind() == ErrorKind::WouldBlock => return Ok(any),
                Err(error) => return Err(format!("m{number} was cut off: {error}")),
            }
        }
    }

    fn write_more(&mut self, number: usize) -> Result<(), String> {
        while !self.unsent.is_empty() {
            match self.connection.write(&self.unsent) {
                Ok(n) => {
                    self.unsent.drain(..n);
                }
                Err(error) if error.kind() == ErrorKind::WouldBlock => return Ok(()),
                Err(error) => return Err(format!("m{number} could not send: {error}")),
            }
        }
        Ok(())
    }
}

/// Connects with a timeout, small writes going out at once.
fn connect(addr: SocketAddr, name: &str) -> Result<TcpStream, String> {
    let connection = TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT).map_err(|error| {
        let advice = match error.raw_os_error() {
            Some(24) => " (out of file descriptors: raise `ulimit -n`)",
            _ => "",
        };
        format!("{name} could not connect to {addr}: {error}{advice}")
    })?;
    connection.set_nodelay(true).map_err(|e| e.to_string())?;
    connection
        .set_read_timeout(Some(CONNECT_TIMEOUT))
        .map_err(|e| e.to_string())?;
    Ok(connection)
}

/// A line a member said, as another heard it: `[mS] S SEQUENCE ID SENT`.
struct Said {
    speaker: usize,
    sequence: u64,
    id: u64,
    /// Nanoseconds since the room's epoch.
    sent: u64,
}

impl Said {
    fn parse(line: &[u8]) -> Option<Said> {
        let text = std::str::from_utf8(line).ok()?;
        let (name, rest) = text.strip_prefix("[m")?.split_once("] ")?;
        let mut numbers = rest.split(' ').map(|n| n.parse::<u64>().ok());
        let speaker = numbers.next()??;
        let said = Said {
            speaker: speaker as usize,
            sequence: numbers.next()??,
            id: numbers.next()??,
            sent: numbers.next()??,
        };
        (name == speaker.to_string() && numbers.next().is_none()).then_some(said)
    }
}

/// The given percentiles of `latencies` (nanoseconds), which it sorts.
fn percentiles<const N: usize>(latencies: &mut [u64], wanted: [usize; N]) -> [Duration; N] {
    latencies.sort_unstable();
    wanted.map(|p| {
        let at = (latencies.len() * p / 100).min(latencies.len().saturating_sub(1));
        Duration::from_nanos(latencies.get(at).copied().unwrap_or(0))
    })
}

/// What one run measured.
struct Results {
    deliveries_per_second: f64,
    p99: Duration,
    p50: Duration,
    /// Percentiles of each line's first delivery.
    first_p50: Duration,
    first_p99: Duration,
    lines: u64,
    lost: u64,
    deaf: usize,
    deaf_cut_off: usize,
    deaf_cut_off_after: Option<Duration>,
    /// The share of looks at a socket that found nothing to read.
    empty_looks: f64,
}

impl std::fmt::Display for Results {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        let ms = |latency: Duration| latency.as_secs_f64() * 1000.0;
        write!(
            f,
            "{:.0} deliveries/s, p99 {:.3} ms, p50 {:.3} ms, {} lines said, {} lost, deaf cut off {} of {}",
            self.deliveries_per_second,
            ms(self.p99),
            ms(self.p50),
            self.lines,
            self.lost,
            self.deaf_cut_off,
            self.deaf
        )?;
        if let Some(after) = self.deaf_cut_off_after {
            write!(f, " (the last after {:.3} s)", after.as_secs_f64())?;
        }
        write!(
            f,
            ", a line's first delivery p50 {:.3} ms p99 {:.3} ms, nothing to read in {:.0}% of looks",
            ms(self.first_p50),
            ms(self.first_p99),
            self.empty_looks * 100.0
        )
    }
}
