//! Lesson 7: silent and slow peers.
//!
//! The server of lesson 6 gives each client a thread, and that thread waits
//! as long as its client likes. A client that connects and says nothing, one
//! that sends a byte a second, one that never reads what the server writes:
//! each holds a thread and a file descriptor for ever, and a few thousand of
//! them stop the server (the "slowloris" attack). A real server puts a limit
//! on every wait, and a real client gives up on a server that never answers.
//!
//! You write the three functions marked TODO: dial_within (the client's
//! side), then read_message_within and serve_connection_within. The rest is
//! done for you: the limits, lesson 6's server and client built on your
//! functions, and everything of the lessons before. Nothing else needs to change:
//! `src/main.rs` is the lesson's program, `tests/checks.rs` are the checks.
//!
//! Read:  book/src/lessons/07-timeouts.md
//! Check: cargo test -p lesson-07-timeouts

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::thread;
use std::time::Duration;
#[allow(unused_imports)] // you will need these
use std::{net::ToSocketAddrs, time::Instant};

use anyhow::{Context, Result, bail};

// ANCHOR: dial_within
/// Connects to the server at `addr`, written `host:port`, waiting at most
/// `timeout` for each of the addresses the name stands for: a server that
/// never answers costs the client `timeout`, not minutes. Each address is
/// tried in turn until one answers; if none does, the last error says why.
pub fn dial_within(addr: &str, timeout: Duration) -> Result<TcpStream> {
    // TODO: connect to `addr` as lesson 3's dial does, but never wait longer
    // than `timeout` for one address to answer. A name may stand for several
    // addresses (localhost is often ::1 and 127.0.0.1): try each in turn and
    // return the first connection made. If none answers, return the last
    // error, its io::ErrorKind kept inside (TimedOut, ConnectionRefused...),
    // with context that names `addr`. A name that cannot be resolved is an
    // error that names it too. Never a panic.
    let _ = (addr, timeout); // (remove once you use them)
    todo!(
        "connect to addr, giving up on each of its addresses after `timeout` \
         (cargo hint 07 for help)"
    )
}
// ANCHOR_END: dial_within

// ANCHOR: limits
/// How long the server waits for a client, at most. The program takes them
/// as flags, in milliseconds; the checks use a few dozen to a few hundred.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// How long a client may stay silent before a message (before the first
    /// one, and between one message and the next). Then the server writes
    /// IDLE_REPLY and closes.
    pub idle: Duration,
    /// How long one message may take to arrive, from its first byte to its
    /// newline. Then the server writes SLOW_REPLY and closes.
    pub message: Duration,
    /// How long one write may wait for the client to read (to make room in
    /// the connection's buffers). Then the server gives up on the client.
    pub write: Duration,
}

impl Default for Limits {
    /// The program's limits when no flag says otherwise: a person typing
    /// into `nc` has 30 s to start each line and 10 s to finish it.
    fn default() -> Limits {
        Limits {
            idle: Duration::from_secs(30),
            message: Duration::from_secs(10),
            write: Duration::from_secs(10),
        }
    }
}
// ANCHOR_END: limits

/// What the server writes to a client that stayed silent past `Limits::idle`.
pub const IDLE_REPLY: &[u8] = b"error: idle for too long, goodbye\n";

/// What the server writes to a client whose message took longer than
/// `Limits::message` to arrive.
pub const SLOW_REPLY: &[u8] = b"error: message too slow, goodbye\n";

// ANCHOR: heard
/// What [`read_message_within`] heard from the client: lesson 5's four
/// answers, and two more when time ran out.
#[derive(Debug, PartialEq, Eq)]
pub enum Heard {
    /// A whole message: its bytes, ending with the newline.
    Line(Vec<u8>),
    /// The last bytes before end of file, with no newline after them.
    Tail(Vec<u8>),
    /// End of file: the client has closed its sending side, and nothing is left.
    End,
    /// More than MAX_MESSAGE bytes came without a newline.
    TooLong,
    /// Nothing at all came within `Limits::idle`: the client is silent.
    Idle,
    /// A message began, but its newline did not come within
    /// `Limits::message` of its first byte.
    TooSlow,
}
// ANCHOR_END: heard

// ANCHOR: is_timeout
/// True if `error` says that a read or a write ran out of time. A socket
/// with a timeout reports it as WouldBlock on Unix, as TimedOut on Windows.
pub fn is_timeout(error: &std::io::Error) -> bool {
    matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
}
// ANCHOR_END: is_timeout

// ANCHOR: read_message_within
/// Reads the next message from `reader`, like lesson 5's read_message (at
/// most MAX_MESSAGE bytes), but waits at most `limits.idle` for its first
/// byte and at most `limits.message` from its first byte to its newline.
pub fn read_message_within(reader: &mut BufReader<&TcpStream>, limits: &Limits) -> Result<Heard> {
    // TODO: return what the client sends next, as lesson 5's read_message
    // did (Line, Tail, End or TooLong, never reading more than MAX_MESSAGE
    // bytes), without waiting longer than the limits allow:
    //   nothing at all within limits.idle of the call      -> Heard::Idle
    //   a message begun, but its newline not there within
    //   limits.message of the message's first byte         -> Heard::TooSlow
    // A read on a socket waits as long as the socket's read timeout (the
    // socket is under the reader). A timeout as long as the whole limit is
    // not enough: a client that sends one byte just before each timeout
    // would never run out of time. Let each read wait only for the time that
    // is left. Running out of time is an answer (Idle or TooSlow), not an
    // error: is_timeout (given) recognises the error a timed-out read gives.
    // Mind the edge: a socket refuses a timeout of zero.
    let _ = (reader, limits); // (remove once you use them)
    todo!(
        "read one message, waiting at most limits.idle for it to begin and \
         limits.message for it to end (cargo hint 07 for help)"
    )
}
// ANCHOR_END: read_message_within

// ANCHOR: serve_connection_within
/// Lesson 6's seesaw, within limits: echoes every message in order until the
/// client closes its sending side. A client that stays silent too long gets
/// IDLE_REPLY, a message that arrives too slowly gets SLOW_REPLY, one that is
/// too long gets TOO_LONG_REPLY; each ends the connection, gently. A client
/// that does not read what the server writes is given up on.
pub fn serve_connection_within(connection: TcpStream, limits: &Limits) -> Result<()> {
    // TODO: lesson 6's seesaw, reading with read_message_within: echo every
    // Line and Tail exactly and narrate it (`read N bytes from PEER, wrote N
    // bytes back`), return Ok(()) at End, and answer TooLong with
    // TOO_LONG_REPLY. And now:
    //   Idle:    write IDLE_REPLY, narrate `PEER was idle for too long`;
    //   TooSlow: write SLOW_REPLY, narrate `PEER sent too slowly`;
    //   after any error line, end with close_gently (given), so that the
    //   line reaches a client that is still sending instead of a reset.
    // No write may wait longer than limits.write for the client to read
    // (a client that never reads would hold this thread for ever): when a
    // write runs out of time, narrate `PEER does not read its echoes; gave
    // up writing` and return Ok(()). Any other error is returned.
    let _ = (connection, limits); // (remove once you use them)
    todo!(
        "echo messages as in lesson 6, answering Idle and TooSlow with their \
         error lines, with a write timeout (cargo hint 07 for help)"
    )
}
// ANCHOR_END: serve_connection_within

// ANCHOR: serve_concurrently_within
/// Lesson 6's server, within limits: serves every client that connects to
/// `listener`, each on a thread of its own, for ever. A failed accept is
/// reported on stderr, and the server waits a little (Backoff), then goes on.
pub fn serve_concurrently_within(listener: TcpListener, limits: Limits) -> Result<()> {
    let mut backoff = Backoff::new();
    loop {
        match accept_one(&listener) {
            Ok((connection, peer)) => {
                backoff.reset();
                eprintln!("accepted {peer}");
                // Limits is Copy: each thread gets its own copy.
                thread::spawn(move || serve_client_within(connection, peer, limits));
            }
            Err(error) => {
                let delay = backoff.after_failure();
                eprintln!("{error:#}; trying again in {} ms", delay.as_millis());
                thread::sleep(delay);
            }
        }
    }
}
// ANCHOR_END: serve_concurrently_within

/// Serves one client with [`serve_connection_within`] and says how it ended.
pub fn serve_client_within(connection: TcpStream, peer: SocketAddr, limits: Limits) {
    match serve_connection_within(connection, &limits) {
        Ok(()) => eprintln!("closed the connection to {peer}"),
        Err(error) => eprintln!("{peer}: {error:#}; closed the connection"),
    }
}

/// The client's end of a connection: a buffered reader and a writer on the
/// same socket. The buffer keeps bytes that arrive early for the next read.
pub struct Client {
    /// Reads from the connection, through a buffer.
    pub reader: BufReader<TcpStream>,
    /// Writes to the connection (a second handle on the same socket).
    pub writer: TcpStream,
}

impl Client {
    /// Connects to the server at `addr`, giving up after `timeout` (see
    /// [`dial_within`]).
    pub fn connect_within(addr: &str, timeout: Duration) -> Result<Client> {
        let writer = dial_within(addr, timeout)?;
        let reader = BufReader::new(
            writer
                .try_clone()
                .context("could not clone the connection")?,
        );
        Ok(Client { reader, writer })
    }

    /// One turn: writes `message` (ending with a newline), then reads the reply
    /// up to and including its newline, and returns it. If the server has
    /// closed the connection instead of replying, that is an error.
    pub fn turn(&mut self, message: &[u8]) -> Result<Vec<u8>> {
        self.writer
            .write_all(message)
            .context("could not send the message")?;
        let mut reply = Vec::new();
        let count = self
            .reader
            .read_until(b'\n', &mut reply)
            .context("could not read the reply")?;
        if count == 0 {
            bail!("the server closed the connection before replying");
        }
        Ok(reply)
    }

    /// The end of the conversation: writes `last` (the input's final bytes,
    /// which have no newline; maybe none at all), shuts down the sending side
    /// so the server reads end of file, then reads everything the server still
    /// sends until it closes, and returns that.
    pub fn finish(self, last: &[u8]) -> Result<Vec<u8>> {
        let Client {
            mut reader,
            mut writer,
        } = self;
        writer
            .write_all(last)
            .context("could not send the last bytes")?;
        writer
            .shutdown(Shutdown::Write)
            .context("could not shut down the sending side")?;
        let mut rest = Vec::new();
        reader
            .read_to_end(&mut rest)
            .context("could not read the server's last bytes")?;
        Ok(rest)
    }
}

// ANCHOR: backoff
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
// ANCHOR_END: backoff

/// The longest message the server accepts, newline included: 64 KiB.
pub const MAX_MESSAGE: usize = 64 * 1024;

/// What the server writes back, instead of an echo, to a message that is too long.
pub const TOO_LONG_REPLY: &[u8] = b"error: message longer than 65536 bytes\n";

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

/// Connects to the server at `addr`, written `host:port` (lesson 3).
pub fn dial(addr: &str) -> Result<TcpStream> {
    TcpStream::connect(addr).with_context(|| format!("could not connect to {addr}"))
}
