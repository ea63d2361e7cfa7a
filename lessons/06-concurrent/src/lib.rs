//! Lesson 6: many clients at once.
//!
//! The server of lesson 5 serves one client at a time: while it talks to one,
//! the next waits, its messages unanswered, even though the OS has already
//! completed its connection (the listen backlog). A real server gives each
//! client a thread of its own, and goes straight back to accepting.
//!
//! You write the function marked TODO, with the help of Backoff (given).
//! Everything of lesson 5 is done for you.
//! Nothing else needs to change: `src/main.rs` is the lesson's program,
//! `tests/checks.rs` are the checks.
//!
//! Read:  book/src/lessons/06-concurrent.md
//! Check: cargo test -p lesson-06-concurrent

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
#[allow(unused_imports)] // you will need thread
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

// ANCHOR: serve_concurrently
/// Serves every client that connects to `listener`, each on a thread of its
/// own, for ever. One client's trouble never stops the server: a failed
/// accept is reported on stderr, and the server waits a little (Backoff),
/// then goes on.
pub fn serve_concurrently(listener: TcpListener) -> Result<()> {
    // TODO: serve every client that connects, for ever.
    //   - Each client accepted is said on stderr as `accepted PEER` (the
    //     narration the program and the book show), then served by
    //     serve_client (given) on a thread of its own, while the server goes
    //     straight back to accepting: it never waits for a client's thread,
    //     so an idle client never keeps another waiting.
    //   - A failed accept is reported on stderr, with its cause, and is not
    //     the end of the server: it waits before the next try as long as a
    //     Backoff (given, one for the whole loop) says, longer while accept
    //     keeps failing and short again once one works, so that a server out
    //     of files neither spins nor floods its log.
    //   - Nothing ends the loop: not a failed accept, not one client's error.
    let _ = listener; // (remove once you use `listener`)
    todo!(
        "accept clients for ever and serve each on a thread of its own \
         (cargo hint 06 for help)"
    )
}
// ANCHOR_END: serve_concurrently

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

/// What [`read_message`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Message {
    /// A whole message: its bytes, ending with the newline.
    Line(Vec<u8>),
    /// The last bytes before end of file, with no newline after them.
    Tail(Vec<u8>),
    /// End of file: the client has closed its sending side, and nothing is left.
    End,
    /// More than MAX_MESSAGE bytes came without a newline.
    TooLong,
}

/// Reads the next message from `reader`, reading at most MAX_MESSAGE bytes.
pub fn read_message(reader: &mut impl BufRead) -> Result<Message> {
    let mut bytes = Vec::new();
    // take() stops read_until after MAX_MESSAGE bytes, newline or not.
    reader
        .take(MAX_MESSAGE as u64)
        .read_until(b'\n', &mut bytes)
        .context("could not read a message")?;
    let message = if bytes.is_empty() {
        Message::End
    } else if bytes.ends_with(b"\n") {
        Message::Line(bytes)
    } else if bytes.len() == MAX_MESSAGE {
        Message::TooLong
    } else {
        Message::Tail(bytes)
    };
    Ok(message)
}

/// The server's side of the seesaw, turn after turn: echoes every message in
/// order until the client closes its sending side, then returns (which closes
/// the connection). A message that is too long gets TOO_LONG_REPLY, and ends
/// the connection too, gently.
pub fn serve_connection(connection: TcpStream) -> Result<()> {
    let peer = peer_name(&connection);
    // A &TcpStream reads and writes too: one socket, one file descriptor,
    // for both. The BufReader lives as long as the connection, keeping for
    // the next turn any bytes that arrived early.
    let mut reader = BufReader::new(&connection);
    let mut writer = &connection;
    loop {
        match read_message(&mut reader)? {
            Message::Line(bytes) | Message::Tail(bytes) => {
                writer
                    .write_all(&bytes)
                    .context("could not write the echo")?;
                narrate(format!(
                    "read {n} bytes from {peer}, wrote {n} bytes back",
                    n = bytes.len()
                ));
            }
            Message::End => return Ok(()),
            Message::TooLong => {
                narrate(format!("{peer} sent a message over {MAX_MESSAGE} bytes"));
                writer
                    .write_all(TOO_LONG_REPLY)
                    .context("could not write the error")?;
                // The client may still be sending: close so that the error
                // line reaches it instead of a reset.
                return close_gently(connection);
            }
        }
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

/// Serves one client with [`serve_connection`] and says how it ended.
pub fn serve_client(connection: TcpStream, peer: SocketAddr) {
    match serve_connection(connection) {
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
    /// Connects to the server at `addr`.
    pub fn connect(addr: &str) -> Result<Client> {
        let writer = dial(addr)?;
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
