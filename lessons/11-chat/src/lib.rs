//! Lesson 11: a chat room on threads, "Budget Chat". The seesaw breaks.
//!
//! Lines of text, each ended by `\n`. A newcomer is greeted with GREETING
//! and answers with its name. Once named, it is a member: it hears one
//! `*` line listing everyone else in the room, and every line another
//! member says, as `[NAME] text`; the others hear when it enters and when
//! it leaves. The server speaks when someone else speaks, not when you do:
//! no more taking turns.
//!
//! You write the six parts marked TODO: valid_name, Room::join, deliver
//! (the outbox rule), Room::say, Room::leave and serve_member. The rest is
//! done for you: the lines the room sends, a member's outbox and its writer
//! thread, reading a line with a limit, lesson 6's server with a thread per
//! member, and lesson 5's lingering close. Nothing else needs to change:
//! `src/main.rs` is the lesson's program, `tests/checks.rs` are the checks.
//!
//! Read:  book/src/lessons/11-chat.md
//! Check: cargo test -p lesson-11-chat

use std::collections::HashMap;
#[allow(unused_imports)] // you will need these
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
#[allow(unused_imports)] // you will need Ordering
use std::sync::atomic::{AtomicBool, Ordering};
#[allow(unused_imports)] // you will need TrySendError
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

#[allow(unused_imports)] // you will need Context
use anyhow::{Context, Result};

/// The first line the server sends to every newcomer: it asks for a name.
pub const GREETING: &str = "Welcome to the room! What is your name?\n";

/// The longest name: 16 ASCII letters or digits.
pub const MAX_NAME: usize = 16;

/// The longest line a member may send, in bytes, its newline not counted.
/// A longer one gets an error line, and the member is dropped.
pub const MAX_LINE: usize = 4096;

/// How many lines may wait in a member's outbox for its writer thread. A
/// member whose outbox is full is not reading: the room drops it.
pub const OUTBOX_LINES: usize = 256;

// ANCHOR: lines
/// `* NAME has entered the room`, for everyone else.
pub fn entered_line(name: &str) -> String {
    format!("* {name} has entered the room\n")
}

/// `* NAME has left the room`, for everyone else.
pub fn left_line(name: &str) -> String {
    format!("* {name} has left the room\n")
}

/// `[NAME] text`, for everyone but NAME.
pub fn said_line(name: &str, text: &str) -> String {
    format!("[{name}] {text}\n")
}

/// The `*` line a newcomer gets: everyone else present, even when nobody is.
pub fn present_line(others: &[&str]) -> String {
    format!("* in the room: {}\n", others.join(", "))
}
// ANCHOR_END: lines

// ANCHOR: valid_name
/// True when `name` is 1 to MAX_NAME ASCII letters or digits.
pub fn valid_name(name: &str) -> bool {
    // TODO: a name is 1 to MAX_NAME (16) bytes, each an ASCII letter or
    // digit: `alice`, `Bob42`, `7`. Anything else is not a name: the empty
    // line, a space, `_`, `-`, an accented letter (é is not ASCII), 17 bytes.
    let _ = name; // (remove once you use `name`)
    todo!(
        "1 to 16 ASCII letters or digits \
         (cargo hint 11 for help)"
    )
}
// ANCHOR_END: valid_name

// ANCHOR: member
/// What the room keeps of one member: its outbox, and its connection, to
/// shut it down when the member stops reading.
pub struct Member {
    /// Lines for this member; its writer thread sends them on.
    pub outbox: SyncSender<String>,
    /// The member's connection (a clone), to cut it off.
    pub connection: TcpStream,
    /// True once the member has been cut off: lines fanned out before its
    /// reader thread takes it out of the room find it so, and say nothing.
    pub cut_off: AtomicBool,
}

/// A member for `connection`, and the other end of its outbox, for the
/// writer thread (spawn_writer). The outbox holds OUTBOX_LINES lines.
pub fn new_member(connection: &TcpStream) -> Result<(Member, Receiver<String>)> {
    let (outbox, inbox) = sync_channel(OUTBOX_LINES);
    let connection = connection
        .try_clone()
        .context("could not clone the connection")?;
    let member = Member {
        outbox,
        connection,
        cut_off: AtomicBool::new(false),
    };
    Ok((member, inbox))
}
// ANCHOR_END: member

// ANCHOR: room
/// The room: every named member, by name. One Room is shared by every
/// member's thread (an `Arc<Room>`); the Mutex lets one thread at a time
/// look at or change who is present.
#[derive(Default)]
pub struct Room {
    members: Mutex<HashMap<String, Member>>,
}
// ANCHOR_END: room

impl Room {
    /// An empty room.
    pub fn new() -> Room {
        Room::default()
    }

    /// The names present, sorted (for the narration and the checks).
    pub fn names(&self) -> Vec<String> {
        let members = self.members.lock().unwrap();
        let mut names: Vec<String> = members.keys().cloned().collect();
        names.sort();
        names
    }
}

// ANCHOR: deliver
/// Puts `line` in `member`'s outbox, without ever waiting.
pub fn deliver(name: &str, member: &Member, line: &str) {
    // TODO: the outbox rule. Put `line` in the member's outbox without ever
    // waiting: the room is locked while you deliver, and a member who does
    // not read must not hold up everyone else (SyncSender::send would wait
    // for room in the outbox; try_send does not). Then:
    //   - the line fitted: done;
    //   - the outbox is full (OUTBOX_LINES lines wait): the member is not
    //     reading. Cut it off, once: unless member.cut_off says it already
    //     is (set it: AtomicBool::swap tells you both), narrate it in one
    //     line on stderr (narrate, given), naming the member, and shut its
    //     connection down, both ways: its reader thread then sees the end,
    //     and leaves the room as anyone does. The line itself is dropped (the
    //     member will not hear it);
    //   - the outbox is closed (its writer has ended): nothing to do.
    let _ = (name, member, line); // (remove once you use them)
    todo!(
        "put the line in the outbox without waiting; a full outbox cuts the \
         member off (cargo hint 11 for help)"
    )
}
// ANCHOR_END: deliver

impl Room {
    // ANCHOR: join
    /// Adds `name` to the room, or returns false if it is taken.
    pub fn join(&self, name: &str, member: Member) -> bool {
        // TODO: add `member` to the room as `name`, all under one lock, so that
        // no line can slip in between (someone else joining, or speaking):
        //   - a name already present: return false, and nobody hears anything;
        //   - else, deliver (your rule above) to the newcomer present_line
        //     (given) of everyone else present, even when nobody is, and to
        //     everyone else entered_line(name); then keep the member, and return
        //     true. The newcomer hears nothing from before it joined.
        let _ = (name, member, &self.members); // (remove once you use them)
        todo!(
            "add the member under one lock: the list to it, the news to the \
             others (cargo hint 11 for help)"
        )
    }
    // ANCHOR_END: join

    // ANCHOR: say
    /// Sends `[FROM] text` to every member but `from`.
    pub fn say(&self, from: &str, text: &str) {
        // TODO: fan-out. Deliver said_line(from, text) (given) to every member
        // but `from`: never back to the sender. Deliver with your rule, so that
        // one member who does not read holds up nobody.
        let _ = (from, text, &self.members); // (remove once you use them)
        todo!(
            "deliver [FROM] text to every other member \
             (cargo hint 11 for help)"
        )
    }
    // ANCHOR_END: say

    // ANCHOR: leave
    /// Takes `name` out of the room and tells everyone else.
    pub fn leave(&self, name: &str) {
        // TODO: take `name` out of the room; if it was there, deliver
        // left_line(name) (given) to everyone still present. A name that is not
        // in the room (never joined, or already gone) changes nothing and is
        // announced to nobody.
        let _ = (name, &self.members); // (remove once you use them)
        todo!(
            "remove the member and tell the others, once \
             (cargo hint 11 for help)"
        )
    }
    // ANCHOR_END: leave
}

// ANCHOR: serve_member
/// Serves one client of the room: its name, then its lines, until it leaves.
pub fn serve_member(connection: TcpStream, room: &Room) -> Result<()> {
    // TODO: greet the newcomer: write GREETING. Read its first line with
    // read_line_within (given; MAX_LINE), through one BufReader that lives as
    // long as the connection. That line is its name. An end of file before
    // it: return Ok(()). A name that is too long, not valid_name, or taken
    // (join returns false): refuse (given) with a word on why, and return
    // its result: one `*` error line, then a gentle close. Nobody in
    // the room hears of it.
    //
    // TODO: once joined (new_member makes the Member and its inbox, and
    // spawn_writer starts the thread that writes the inbox's lines to the
    // connection, both given), say every line the member sends, until the
    // end. Then leave the room, so that the others hear it once, and
    // wait for the writer thread (join its handle): it ends when the outbox
    // closes. Before waiting, set a write timeout (LINGER_TIME) so that a
    // member that stopped reading cannot keep it for ever.
    // A line over MAX_LINE: leave too, wait for the writer, then refuse
    // (given). A failed read goes up as an error, after leaving.
    let _ = (connection, room); // (remove once you use them)
    todo!(
        "greet, take a name, join, say each line, leave \
         (cargo hint 11 for help)"
    )
}
// ANCHOR_END: serve_member

/// Sends one error line, `* error: WHY`, and ends the connection gently
/// (close_gently): the client reads the line, then end of file.
pub fn refuse(connection: TcpStream, why: &str) -> Result<()> {
    let mut writer = &connection;
    let _ = writer.write_all(format!("* error: {why}\n").as_bytes());
    close_gently(connection)
}

/// What [`read_line_within`] heard.
#[derive(Debug, PartialEq, Eq)]
pub enum LineRead {
    /// A line, its newline (and a `\r` before it) taken off.
    Line(String),
    /// More than the limit came without a newline.
    TooLong,
    /// The client has gone: end of file, maybe after a last unfinished line.
    End,
}

// ANCHOR: read_line_within
/// Reads one line of at most `limit` bytes (its newline not counted).
/// Bytes that are not UTF-8 come out as U+FFFD.
pub fn read_line_within(reader: &mut impl BufRead, limit: usize) -> Result<LineRead> {
    let mut line = Vec::new();
    // At most limit + 1 bytes: a longer line stops here, unread.
    let mut limited = reader.take(limit as u64 + 1);
    limited
        .read_until(b'\n', &mut line)
        .context("could not read a line")?;
    if line.last() != Some(&b'\n') {
        return Ok(match line.len() > limit {
            true => LineRead::TooLong,
            false => LineRead::End,
        });
    }
    line.pop();
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    Ok(LineRead::Line(String::from_utf8_lossy(&line).into_owned()))
}
// ANCHOR_END: read_line_within

// ANCHOR: spawn_writer
/// Starts the member's writer thread: it sends each line of the outbox to
/// the member, in order, until the outbox closes (the member has left the
/// room). A write that fails (the member has gone) cuts the connection off,
/// so that the reader sees the end too.
///
/// Each line leaves at once (set_nodelay): a room sends small lines when it
/// likes, and Nagle's algorithm would hold each one back until the member's
/// OS has acknowledged the one before, which it delays by up to 40 ms.
pub fn spawn_writer(
    connection: &TcpStream,
    inbox: Receiver<String>,
) -> Result<thread::JoinHandle<()>> {
    let mut connection = connection
        .try_clone()
        .context("could not clone the connection")?;
    connection
        .set_nodelay(true)
        .context("could not turn Nagle's algorithm off")?;
    Ok(thread::spawn(move || {
        for line in inbox {
            if connection.write_all(line.as_bytes()).is_err() {
                let _ = connection.shutdown(Shutdown::Both);
                return;
            }
        }
    }))
}
// ANCHOR_END: spawn_writer

/// Serves every client that connects to `listener` in one room, each on a
/// thread of its own, for ever (lesson 6's server, with a room to share).
pub fn serve_room(listener: TcpListener) -> Result<()> {
    let room = Arc::new(Room::new());
    let mut backoff = Backoff::new();
    loop {
        match accept_one(&listener) {
            Ok((connection, peer)) => {
                backoff.reset();
                eprintln!("accepted {peer}");
                // Each thread gets its own handle on the one room.
                let room = Arc::clone(&room);
                thread::spawn(move || serve_one(connection, peer, &room));
            }
            Err(error) => {
                let delay = backoff.after_failure();
                eprintln!("{error:#}; trying again in {} ms", delay.as_millis());
                thread::sleep(delay);
            }
        }
    }
}

/// Serves one client with [`serve_member`] and says how it ended.
fn serve_one(connection: TcpStream, peer: SocketAddr, room: &Room) {
    match serve_member(connection, room) {
        Ok(()) => eprintln!("closed the connection to {peer}"),
        Err(error) => eprintln!("{peer}: {error:#}; closed the connection"),
    }
}

/// The first wait after a failed accept: 5 ms.
pub const FIRST_BACKOFF: Duration = Duration::from_millis(5);

/// The longest wait after failed accepts: 1 s.
pub const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// How long a server waits after a failed accept before it tries again:
/// FIRST_BACKOFF after the first failure in a row, twice as long after each
/// next one, at most MAX_BACKOFF; the same as Go's net/http. An accept fails
/// when the process runs out of something, most often file descriptors ("Too
/// many open files"). Trying again at once would spin and flood the log; a
/// wait gives the clients that are being served time to finish and free them.
#[derive(Debug, Default)]
pub struct Backoff {
    /// The last wait; zero when the last accept succeeded.
    delay: Duration,
}

impl Backoff {
    /// A backoff that has seen no failure yet.
    pub fn new() -> Backoff {
        Backoff::default()
    }

    /// Call it after a failed accept: returns how long to wait (sleep)
    /// before the next accept.
    pub fn after_failure(&mut self) -> Duration {
        self.delay = if self.delay.is_zero() {
            FIRST_BACKOFF
        } else {
            (self.delay * 2).min(MAX_BACKOFF)
        };
        self.delay
    }

    /// Call it after a successful accept: the next failure waits FIRST_BACKOFF again.
    pub fn reset(&mut self) {
        self.delay = Duration::ZERO;
    }
}

/// How long [`close_gently`] waits, at most, for the client to stop sending.
pub const LINGER_TIME: Duration = Duration::from_secs(1);

/// The most bytes [`close_gently`] reads and throws away: 4 MiB. A client like
/// ours writes a whole line before it reads, so the rest of a line of a MiB or
/// two may still be on its way; reading it costs the server milliseconds.
pub const LINGER_BYTES: u64 = 4 * 1024 * 1024;

/// Closes `connection` so that the last bytes the server wrote reach the
/// client: a "lingering close".
///
/// Closing a socket while bytes from the client are still unread makes the
/// OS reset the connection, and the reset can destroy our last reply before
/// the client reads it. So this shuts down the sending side first (the client
/// reads our last bytes, then end of file), then reads and throws away what
/// the client still sends, until the client closes too, or LINGER_BYTES have
/// come, or LINGER_TIME has passed; and only then closes.
pub fn close_gently(mut connection: TcpStream) -> Result<()> {
    // This fails only when the client has already reset the connection;
    // then the read below reports the reset.
    let _ = connection.shutdown(Shutdown::Write);
    let deadline = Instant::now() + LINGER_TIME;
    let mut thrown_away = 0;
    let mut buffer = [0; 64 * 1024];
    while thrown_away < LINGER_BYTES {
        let time_left = deadline.saturating_duration_since(Instant::now());
        if time_left.is_zero() {
            break;
        }
        connection
            .set_read_timeout(Some(time_left))
            .context("could not set a read timeout")?;
        match connection.read(&mut buffer) {
            Ok(0) => break, // the client has closed its side too
            Ok(count) => thrown_away += count as u64,
            Err(error) if error.kind() == ErrorKind::Interrupted => {}
            // A read that times out says WouldBlock on Unix, TimedOut on Windows.
            Err(error) if matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                break;
            }
            Err(error) => return Err(error).context("could not read what the client still sent"),
        }
    }
    Ok(())
}

/// The address of the client at the other end of `connection`, for the
/// narration. A client that has already reset the connection has no address
/// any more: then this says so, and the next read reports the reset.
pub fn peer_name(connection: &TcpStream) -> String {
    match connection.peer_addr() {
        Ok(addr) => addr.to_string(),
        Err(_) => "a client that has gone".to_string(),
    }
}

/// Prints one line of narration on stderr, in one write: the line is
/// formatted first, so eprint! has a single piece to write (eprintln! with
/// arguments writes a line piece by piece, which slows a busy server down).
/// eprint!, unlike a write to std::io::stderr(), is captured by `cargo test`,
/// so the narration of a passing check stays quiet.
pub fn narrate(line: String) {
    let line = format!("{line}\n");
    eprint!("{line}");
}

/// Opens a listening socket on `addr` (lesson 1).
pub fn listen(addr: &str) -> Result<TcpListener> {
    TcpListener::bind(addr).with_context(|| format!("could not listen on {addr}"))
}

/// The address `listener` is bound to (lesson 1).
pub fn bound_address(listener: &TcpListener) -> Result<SocketAddr> {
    listener
        .local_addr()
        .context("could not read the listener's address")
}

/// Waits for the next client and returns the connection and its address (lesson 2).
pub fn accept_one(listener: &TcpListener) -> Result<(TcpStream, SocketAddr)> {
    listener.accept().context("could not accept a connection")
}

/// Connects to the server at `addr`, written `host:port`, waiting at most
/// `timeout` for each of the addresses the name stands for: a server that
/// never answers costs the client `timeout`, not minutes. Each address is
/// tried in turn until one answers; if none does, the last error says why.
pub fn dial_within(addr: &str, timeout: Duration) -> Result<TcpStream> {
    let addresses = addr
        .to_socket_addrs()
        .with_context(|| format!("could not resolve {addr}"))?;
    let mut last_error = None;
    for address in addresses {
        match TcpStream::connect_timeout(&address, timeout) {
            Ok(connection) => return Ok(connection),
            Err(error) => last_error = Some(error),
        }
    }
    let error = last_error.unwrap_or_else(|| {
        std::io::Error::new(ErrorKind::NotFound, "the name stands for no address")
    });
    Err(error).with_context(|| format!("could not connect to {addr}"))
}
