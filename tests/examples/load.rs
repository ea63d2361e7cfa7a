//! A load generator for echo servers, used by bench/run and bench/compare.
//! CLIENTS clients connect to ADDR (loopback only), one after the other,
//! each making a first round trip; then the clock starts, and each client
//! takes turns as fast as the server answers: write a message, read its
//! echo, again, for SECONDS. It prints the round trips per second of all
//! clients together, the 99th and 50th percentiles of the round trips'
//! latency, and the fewest round trips one client made (a server that
//! neglects some clients shows there).
//!
//!     cargo run --release -p seesaw-checks --example load -- ADDR CLIENTS SECONDS
//!
//! One thread drives every client, each on its own non-blocking socket (one
//! file descriptor a client), going round them in turn: whatever has
//! arrived is read, and a client whose echo is complete sends its next
//! message. Why not a thread a client, like lesson 6's server? Because then
//! the load generator pays for as many threads as the server does, and on a
//! small machine it becomes the bottleneck it is meant to measure: against
//! the same servers it measured about half as many round trips
//! (book/src/bench.md has the numbers). The price: the thread never sleeps,
//! so it keeps one core busy; bench/compare gives it a core of its own.

use std::io::{self, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// How long one connect and its first echo may take, and how long the echoes
/// still on their way at the end may take to come back: a server that never
/// answers cannot hold the load generator for ever.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const FIRST_ECHO_TIMEOUT: Duration = Duration::from_secs(10);
const LAST_ECHOES_TIMEOUT: Duration = Duration::from_secs(10);

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("load: {error}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [addr, clients, seconds] = args.as_slice() else {
        return Err("usage: load ADDR CLIENTS SECONDS".into());
    };
    let addr: SocketAddr = addr.parse().map_err(|_| "ADDR must be IP:PORT")?;
    if !addr.ip().is_loopback() {
        return Err("load only talks to loopback addresses".into());
    }
    let count: usize = clients.parse().map_err(|_| "CLIENTS must be a number")?;
    let seconds: f64 = seconds.parse().map_err(|_| "SECONDS must be a number")?;
    let duration = Duration::try_from_secs_f64(seconds)
        .ok()
        .filter(|duration| !duration.is_zero())
        .ok_or("SECONDS must be a positive number")?;
    if count == 0 {
        return Err("CLIENTS must be at least 1".into());
    }

    // Everyone connects first; the clock starts when all are connected and
    // have been answered once.
    let mut clients = (0..count)
        .map(|number| Client::connect(addr, number))
        .collect::<Result<Vec<_>, _>>()?;
    let results = take_turns(&mut clients, duration)?;
    println!("{count} clients: {results}");
    Ok(())
}

/// One client: its connection, its message, and how far its turn has gone.
struct Client {
    connection: TcpStream,
    message: Vec<u8>,
    /// Bytes of the message written so far (a write may take only part).
    written: usize,
    /// Bytes of the echo read so far.
    echo: Vec<u8>,
    /// When this turn's message went out.
    sent: Instant,
    /// True from the message's first byte out to its echo's last byte in.
    in_turn: bool,
    round_trips: u64,
}

impl Client {
    /// Connects, and makes a first round trip, waiting for it: then the
    /// server has surely accepted the connection. (Connecting thousands at
    /// once without waiting would overflow the server's listen backlog, and
    /// the connections left waiting there would stall the first seconds of
    /// the measurement.)
    fn connect(addr: SocketAddr, number: usize) -> Result<Client, String> {
        let message = format!("client {number:05} says hello, seesaw\n").into_bytes();
        let who = format!("client {number}");
        let mut connection =
            TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT).map_err(|error| {
                let advice = if error.raw_os_error() == Some(24) {
                    " (out of file descriptors: raise `ulimit -n`)"
                } else {
                    ""
                };
                format!("{who} could not connect to {addr}: {error}{advice}")
            })?;
        // Small messages go out at once, not held back to be sent together.
        connection.set_nodelay(true).map_err(|e| e.to_string())?;
        connection
            .set_read_timeout(Some(FIRST_ECHO_TIMEOUT))
            .map_err(|e| e.to_string())?;
        let mut echo = vec![0; message.len()];
        connection
            .write_all(&message)
            .and_then(|()| connection.read_exact(&mut echo))
            .map_err(|error| format!("{who} got no first echo: {error}"))?;
        if echo != message {
            return Err(differs(&message, &echo));
        }
        // From now on a read or a write that would wait returns WouldBlock
        // instead, so one thread can go round every client.
        connection
            .set_nonblocking(true)
            .map_err(|e| e.to_string())?;
        Ok(Client {
            connection,
            echo: Vec::with_capacity(message.len()),
            message,
            written: 0,
            sent: Instant::now(),
            in_turn: false,
            round_trips: 0,
        })
    }

    /// Starts a turn: the message goes out (all of it, most often).
    fn start_turn(&mut self) -> Result<(), String> {
        self.sent = Instant::now();
        self.in_turn = true;
        self.written = 0;
        self.echo.clear();
        self.write_more()
    }

    /// Moves this turn on as far as it goes without waiting. Returns the
    /// round trip's latency when the whole echo is in.
    fn go_on(&mut self) -> Result<Option<Duration>, String> {
        if !self.in_turn {
            return Ok(None);
        }
        self.write_more()?;
        self.read_more()?;
        if self.echo.len() < self.message.len() {
            return Ok(None);
        }
        if self.echo != self.message {
            return Err(differs(&self.message, &self.echo));
        }
        self.in_turn = false;
        self.round_trips += 1;
        Ok(Some(self.sent.elapsed()))
    }

    fn write_more(&mut self) -> Result<(), String> {
        while self.written < self.message.len() {
            match self.connection.write(&self.message[self.written..]) {
                Ok(n) => self.written += n,
                Err(error) if error.kind() == ErrorKind::WouldBlock => return Ok(()),
                Err(error) => return Err(self.failed("write", &error)),
            }
        }
        Ok(())
    }

    fn read_more(&mut self) -> Result<(), String> {
        let mut chunk = [0; 64];
        while self.echo.len() < self.message.len() {
            // Never more than this echo: the next one is not due yet.
            let wanted = (self.message.len() - self.echo.len()).min(chunk.len());
            match self.connection.read(&mut chunk[..wanted]) {
                Ok(0) => {
                    let closed = io::Error::new(ErrorKind::UnexpectedEof, "the server closed");
                    return Err(self.failed("read", &closed));
                }
                Ok(n) => self.echo.extend_from_slice(&chunk[..n]),
                Err(error) if error.kind() == ErrorKind::WouldBlock => return Ok(()),
                Err(error) => return Err(self.failed("read", &error)),
            }
        }
        Ok(())
    }

    fn failed(&self, what: &str, error: &io::Error) -> String {
        let who = String::from_utf8_lossy(&self.message[..12]).into_owned();
        let after = self.round_trips;
        format!("{who} could not {what} after {after} round trips: {error}")
    }
}

fn differs(message: &[u8], echo: &[u8]) -> String {
    format!(
        "the echo differs from the message: sent {:?}, got {:?}",
        String::from_utf8_lossy(message),
        String::from_utf8_lossy(echo)
    )
}

/// What one run measured.
struct Results {
    round_trips_per_second: f64,
    p99: Duration,
    p50: Duration,
    fewest: u64,
}

impl std::fmt::Display for Results {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        let ms = |latency: Duration| latency.as_secs_f64() * 1000.0;
        write!(
            f,
            "{:.0} round trips/s, p99 {:.3} ms, p50 {:.3} ms, fewest round trips by one client {}",
            self.round_trips_per_second,
            ms(self.p99),
            ms(self.p50),
            self.fewest
        )
    }
}

/// Every client takes turns until `duration` has passed; then the echoes
/// still on their way come back (their latency counts: leaving them out
/// would hide the slowest round trips) and the connections close.
fn take_turns(clients: &mut [Client], duration: Duration) -> Result<Results, String> {
    let began = Instant::now();
    let deadline = began + duration;
    for client in clients.iter_mut() {
        client.start_turn()?;
    }
    let mut latencies = Vec::new();
    let mut in_time = 0;
    loop {
        let now = Instant::now();
        for client in clients.iter_mut() {
            let sent = client.sent;
            let Some(latency) = client.go_on()? else {
                continue;
            };
            latencies.push(latency);
            // A round trip that ended before the deadline counts, and its
            // client goes on; one that ended after is only waited for.
            if sent + latency < deadline {
                in_time += 1;
                client.start_turn()?;
            }
        }
        if now >= deadline && clients.iter().all(|client| !client.in_turn) {
            break;
        }
        if now >= deadline + LAST_ECHOES_TIMEOUT {
            let missing = clients.iter().filter(|client| client.in_turn).count();
            return Err(format!(
                "{missing} echoes did not come back within {LAST_ECHOES_TIMEOUT:?} of the end"
            ));
        }
    }
    latencies.sort();
    let percentile = |p: usize| latencies[(latencies.len() * p / 100).min(latencies.len() - 1)];
    Ok(Results {
        round_trips_per_second: in_time as f64 / duration.as_secs_f64(),
        p99: percentile(99),
        p50: percentile(50),
        fewest: clients
            .iter()
            .map(|client| client.round_trips)
            .min()
            .unwrap_or(0),
    })
}
