//! Lesson 5: the seesaw in a loop.
//!
//! One turn is not a conversation. Now the client sends message after message,
//! each time waiting for the echo, until it runs out of input. Then it shuts
//! down its sending side (a half-close): the server reads end of file, echoes
//! any last bytes that had no newline, and closes the connection.
//!
//! A server that runs for a long time must not let one client eat its memory:
//! it never reads without a limit. A message longer than MAX_MESSAGE gets one
//! error line back, and the connection is closed, gently: close_gently (given)
//! makes sure the error line reaches a client that is still sending.
//!
//! You write the four functions marked TODO: read_message, serve_connection,
//! Client::turn and Client::finish. The rest is done for you. Nothing else
//! needs to change: `src/main.rs` is the lesson's program, `tests/checks.rs`
//! are the checks.
//!
//! Read:  book/src/lessons/05-echo-loop.md
//! Check: cargo test -p lesson-05-echo-loop

#[allow(unused_imports)] // you will need these
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

#[allow(unused_imports)] // you will need bail! and Context
use anyhow::{Context, Result, bail};

/// The longest message the server accepts, newline included: 64 KiB.
pub const MAX_MESSAGE: usize = 64 * 1024;

/// What the server writes back, instead of an echo, to a message that is too long.
pub const TOO_LONG_REPLY: &[u8] = b"error: message longer than 65536 bytes\n";

// ANCHOR: message
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
// ANCHOR_END: message

// ANCHOR: read_message
/// Reads the next message from `reader`, reading at most MAX_MESSAGE bytes.
pub fn read_message(reader: &mut impl BufRead) -> Result<Message> {
    // TODO: read the next message: its bytes up to and including the next
    // newline, exactly as they came (they need not be text). Never read more
    // than MAX_MESSAGE bytes for one message, newline or not: the limit must
    // stop the reading itself, not be checked once everything is in memory.
    // Each message has the whole limit to itself.
    //
    // TODO: then say what you found, one of the protocol's four cases:
    //   nothing at all: the client has hung up       -> Message::End
    //   bytes ending with the newline                -> Message::Line(bytes)
    //   MAX_MESSAGE bytes and still no newline       -> Message::TooLong
    //   fewer bytes, no newline, then end of file    -> Message::Tail(bytes)
    // A read that fails is an error (Err), with the io::Error kept inside.
    let _ = reader; // (remove once you use `reader`)
    todo!(
        "read one message, at most MAX_MESSAGE bytes of it \
         (cargo hint 05 for help)"
    )
}
// ANCHOR_END: read_message

// ANCHOR: serve_connection
/// The server's side of the seesaw, turn after turn: echoes every message in
/// order until the client closes its sending side, then returns (which closes
/// the connection). A message that is too long gets TOO_LONG_REPLY, and ends
/// the connection too, gently.
pub fn serve_connection(connection: TcpStream) -> Result<()> {
    // TODO: serve this client turn after turn, until it hangs up. Read each
    // message with read_message, through one buffered reader that lives as
    // long as the connection: bytes that arrive early belong to the next
    // message. (A &TcpStream reads and writes too: one connection serves for
    // both, and each client costs the server one file descriptor.)
    //
    // TODO: answer each message before reading the next:
    //   a Line or a Tail: write exactly those bytes back, whole, and narrate
    //       it in one line: read N bytes from PEER, wrote N bytes back
    //       (narrate and peer_name are given below);
    //   End: the client has hung up: return Ok(()); the connection closes.
    //   TooLong: instead of an echo, TOO_LONG_REPLY; then end the connection
    //       with close_gently (given below) and return its result, so that
    //       the error line reaches a client that is still sending.
    // An error (a client that reset the connection, a failed write) goes up
    // to the caller as it is, context added if you like: never replaced by
    // another error, never turned into Ok.
    let _ = connection; // (remove once you use `connection`)
    todo!("echo each message until the client hangs up (cargo hint 05 for help)")
}
// ANCHOR_END: serve_connection

/// How long [`close_gently`] waits, at most, for the client to stop sending.
pub const LINGER_TIME: Duration = Duration::from_secs(1);

/// The most bytes [`close_gently`] reads and throws away: 4 MiB. A client like
/// ours writes a whole line before it reads, so the rest of a line of a MiB or
/// two may still be on its way; reading it costs the server milliseconds.
pub const LINGER_BYTES: u64 = 4 * 1024 * 1024;

// ANCHOR: close_gently
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
// ANCHOR_END: close_gently

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

    // ANCHOR: turn
    /// One turn: writes `message` (ending with a newline), then reads the reply
    /// up to and including its newline, and returns it. If the server has
    /// closed the connection instead of replying, that is an error.
    pub fn turn(&mut self, message: &[u8]) -> Result<Vec<u8>> {
        // TODO: send the whole message; then wait for the reply and return it:
        // every byte up to and including its newline, exactly, whatever its
        // length (longer or shorter than the message), however late and in
        // however many pieces it comes. Read it through self.reader, this
        // connection's one buffer: it may already hold the reply.
        // If the server has closed instead of replying (end of file, no
        // bytes at all), return an error that says so.
        todo!(
            "send {} bytes, then return the reply up to its newline \
             (cargo hint 05 for help)",
            message.len()
        )
    }
    // ANCHOR_END: turn

    // ANCHOR: finish
    /// The end of the conversation: writes `last` (the input's final bytes,
    /// which have no newline; maybe none at all), shuts down the sending side
    /// so the server reads end of file, then reads everything the server still
    /// sends until it closes, and returns that.
    pub fn finish(self, last: &[u8]) -> Result<Vec<u8>> {
        // TODO: hang up politely: send `last` exactly (maybe nothing; add no
        // newline), then shut down only the sending side, so that the server
        // reads end of file and can still answer. Then read everything the
        // server still sends, until it closes, and return those bytes (they
        // need not be text).
        todo!(
            "send the last {} bytes, half-close, read to the end \
             (cargo hint 05 for help)",
            last.len()
        )
    }
    // ANCHOR_END: finish
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
