//! Lesson 9: ten thousand clients.
//!
//! Lesson 6 gives each client a thread. A thread waits for its client in the
//! operating system: while the client thinks, the thread sleeps, and keeps its
//! stack. Ten thousand clients, ten thousand sleeping threads. Here the same
//! server runs on tokio, an async runtime: each client gets a task, a small
//! value that the runtime polls when its socket is ready, and a few threads
//! (here just one) run them all. The seesaw is the same, turn after turn; only
//! the waiting moves from the threads to the runtime.
//!
//! Every behaviour of lessons 5 to 7 stays: the limit on a message, the
//! half-close, the lingering close after an error line, and the limits on
//! time (Limits, given).
//!
//! You write the three functions marked TODO: read_message, serve_connection
//! and serve. The rest is done for you. Nothing else needs to change:
//! `src/main.rs` is the lesson's program, `tests/checks.rs` are the checks.
//!
//! Read:  book/src/lessons/09-async.md
//! Check: cargo test -p lesson-09-async

use std::net::SocketAddr;
use std::time::Duration;

#[allow(unused_imports)] // you will need Context
use anyhow::{Context, Result};
#[allow(unused_imports)] // you will need these
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
#[allow(unused_imports)] // you will need timeout
use tokio::time::timeout;

// ANCHOR: read_message
/// Reads the next message from `reader`, reading at most MAX_MESSAGE bytes.
pub async fn read_message(reader: &mut (impl AsyncBufRead + Unpin)) -> Result<Message> {
    // TODO: lesson 5's read_message, on tokio: return the next message.
    //   - A message ends at a newline, kept in its bytes: Message::Line.
    //   - Bytes with no newline before end of file are a Message::Tail; end
    //     of file with nothing before it is Message::End.
    //   - Never read more than MAX_MESSAGE bytes for one message, whether a
    //     newline comes or not: a client must not fill the server's memory.
    //     That many bytes with no newline is Message::TooLong. The limit is
    //     per message, and the bytes after a message stay in `reader` for
    //     the next one.
    //   - Bytes are kept exactly as they came: not text, no trimming.
    //   - A failed read is an error, with context.
    let _ = reader; // (remove once you use `reader`)
    todo!(
        "read the next message, at most MAX_MESSAGE bytes, without blocking \
         the thread (cargo hint 09 for help)"
    )
}
// ANCHOR_END: read_message

// ANCHOR: serve_connection
/// The server's side of the seesaw, turn after turn, within `limits`: echoes
/// every message in order until the client closes its sending side, then
/// returns (which closes the connection). A client that stays silent longer
/// than `limits.idle` gets IDLE_REPLY, one whose message takes longer than
/// `limits.message` gets SLOW_REPLY, and a message that is too long gets
/// TOO_LONG_REPLY; each ends the connection, gently. A client that does not
/// read its echoes for `limits.write` is given up.
pub async fn serve_connection(stream: TcpStream, limits: Limits) -> Result<()> {
    // TODO: the seesaw with one client, turn after turn, within `limits`.
    //   - Each message is echoed back, bytes exact, before the next is read,
    //     and narrated on stderr: `read N bytes from PEER, wrote N bytes back`
    //     (narrate and peer_name are given). At end of file, return Ok: that
    //     closes the connection, after the tail was echoed.
    //   - One buffered reader for the whole connection: bytes that arrive
    //     early wait in it for the next message.
    //   - Silent longer than limits.idle before a message begins (waiting for
    //     its first byte, in a way that reads nothing away): IDLE_REPLY, then
    //     the connection ends. A message whose newline does not come within
    //     limits.message of its first byte: SLOW_REPLY, and the end. A
    //     message too long: TOO_LONG_REPLY, and the end. say_goodbye (given)
    //     writes the line and closes gently, so that the line arrives.
    //   - An echo that cannot be written within limits.write (the client does
    //     not read): give up, return.
    //   - Never block the thread: every wait is awaited, and only the runtime
    //     waits. A failed read or write is returned as an error.
    let _ = (stream, limits); // (remove once you use them)
    todo!(
        "echo every message of one client within its limits, awaiting every \
         wait (cargo hint 09 for help)"
    )
}
// ANCHOR_END: serve_connection

// ANCHOR: serve
/// Serves every client that connects to `listener`, each in a task of its
/// own, for ever. One client's trouble never stops the server: a failed
/// accept is reported on stderr, and the server waits a little (Backoff),
/// then goes on.
pub async fn serve(listener: TcpListener, limits: Limits) -> Result<()> {
    // TODO: serve every client that connects, for ever.
    //   - Each client accepted is said on stderr as `accepted PEER`, then
    //     served by serve_client_async (given) in a task of its own, while
    //     the server goes straight back to accepting: it never waits for a
    //     client's task, so an idle client never keeps another waiting.
    //   - A failed accept is reported on stderr, with its cause, and is not
    //     the end of the server: it waits as long as a Backoff (given, one
    //     for the whole loop) says, without blocking the runtime's thread,
    //     then accepts again.
    //   - Nothing ends the loop: not a failed accept, not one client's error.
    let _ = (listener, limits); // (remove once you use them)
    todo!(
        "accept clients for ever and serve each in a task of its own \
         (cargo hint 09 for help)"
    )
}
// ANCHOR_END: serve

// ANCHOR: serve_client_async
/// Serves one client with [`serve_connection`] and says how it ended: the
/// task that [`serve`] spawns for each client.
pub async fn serve_client_async(stream: TcpStream, peer: SocketAddr, limits: Limits) {
    match serve_connection(stream, limits).await {
        Ok(()) => narrate(format!("closed the connection to {peer}")),
        Err(error) => narrate(format!("{peer}: {error:#}; closed the connection")),
    }
}
// ANCHOR_END: serve_client_async

// ANCHOR: say_goodbye
/// Ends a connection with an error line: writes `line` (at most
/// `limits.write`), then closes gently, so that the line reaches a client
/// that is still sending.
pub async fn say_goodbye(
    mut stream: BufReader<TcpStream>,
    line: &[u8],
    limits: Limits,
) -> Result<()> {
    match timeout(limits.write, stream.write_all(line)).await {
        Ok(written) => written.context("could not write the error line")?,
        Err(_) => return Ok(()), // it does not read: nothing more to say
    }
    close_gently_async(stream.into_inner()).await
}
// ANCHOR_END: say_goodbye

// ANCHOR: close_gently_async
/// Lesson 5's close_gently, on tokio: closes `stream` so that the last bytes
/// the server wrote reach the client (a "lingering close"). It shuts down the
/// sending side, then reads and throws away what the client still sends,
/// until the client closes too, or LINGER_BYTES have come, or LINGER_TIME
/// has passed; and only then closes.
pub async fn close_gently_async(mut stream: TcpStream) -> Result<()> {
    // This fails only when the client has already reset the connection;
    // then the read below reports the reset.
    let _ = stream.shutdown().await;
    // On the heap: a buffer inside the future would make every client's
    // task 64 KiB bigger, waiting or not.
    let mut buffer = vec![0; 64 * 1024];
    let throw_away = async {
        let mut thrown_away = 0;
        while thrown_away < LINGER_BYTES {
            match stream.read(&mut buffer).await {
                Ok(0) => break, // the client has closed its side too
                Ok(count) => thrown_away += count as u64,
                Err(error) => {
                    return Err(error).context("could not read what the client still sent");
                }
            }
        }
        Ok(())
    };
    // Past LINGER_TIME, stop waiting: that is no error.
    timeout(LINGER_TIME, throw_away).await.unwrap_or(Ok(()))
}
// ANCHOR_END: close_gently_async

// ANCHOR: limits
/// How long the server waits for a client, at most. The program takes them
/// as flags, in milliseconds; the checks use a few hundred milliseconds.
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

/// How long [`close_gently_async`] waits, at most, for the client to stop sending.
pub const LINGER_TIME: Duration = Duration::from_secs(1);

/// The most bytes [`close_gently_async`] reads and throws away: 4 MiB. A client like
/// ours writes a whole line before it reads, so the rest of a line of a MiB or
/// two may still be on its way; reading it costs the server milliseconds.
pub const LINGER_BYTES: u64 = 4 * 1024 * 1024;

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
