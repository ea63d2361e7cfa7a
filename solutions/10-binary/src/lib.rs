//! Lesson 10: a binary protocol, "Means to an End".
//!
//! Every message is exactly MESSAGE_LEN (9) bytes: one byte of type, then two
//! signed 32-bit integers in network byte order (big-endian). `I` inserts a
//! timestamp and a price into this connection's own record; `Q` asks for the
//! mean of the prices whose timestamps lie between mintime and maxtime, and
//! the server answers with one more big-endian i32 (4 bytes). Nothing else is
//! ever sent. No newlines, no text: the length of a message is what frames it.
//!
//! You write the five functions marked TODO: Request::decode, Prices::mean,
//! read_frame and serve_connection (the server), then encode_command (the
//! client's). The rest is done for you: the prices' record, lesson 6's
//! server, a thread per client, and lesson 5's lingering close. Nothing else
//! needs to change: `src/main.rs` is the lesson's program, `tests/checks.rs`
//! are the checks.
//!
//! Read:  book/src/lessons/10-binary.md
//! Check: cargo test -p lesson-10-binary

use std::io::{BufReader, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// The length of every message: one type byte and two i32s of 4 bytes each.
pub const MESSAGE_LEN: usize = 9;

// ANCHOR: request
/// One message from a client, decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    /// `I`: store `price` at `timestamp`, for this connection. No answer.
    Insert { timestamp: i32, price: i32 },
    /// `Q`: the mean of the prices at `mintime..=maxtime`. Answered with an i32.
    Query { mintime: i32, maxtime: i32 },
    /// Any other first byte: the protocol is broken, the connection ends.
    Unknown(u8),
}
// ANCHOR_END: request

impl Request {
    // ANCHOR: decode
    /// Decodes one message: its type byte, then two big-endian i32s.
    pub fn decode(frame: &[u8; MESSAGE_LEN]) -> Request {
        let first = i32::from_be_bytes([frame[1], frame[2], frame[3], frame[4]]);
        let second = i32::from_be_bytes([frame[5], frame[6], frame[7], frame[8]]);
        match frame[0] {
            b'I' => Request::Insert {
                timestamp: first,
                price: second,
            },
            b'Q' => Request::Query {
                mintime: first,
                maxtime: second,
            },
            other => Request::Unknown(other),
        }
    }
    // ANCHOR_END: decode
}

// ANCHOR: prices
/// One connection's record of prices: every insert, in the order it came.
/// An insert is a record, not a key: two at the same timestamp are both kept.
/// Each connection has its own, and it vanishes with the connection.
#[derive(Debug, Default)]
pub struct Prices {
    /// (timestamp, price) pairs.
    entries: Vec<(i32, i32)>,
}

impl Prices {
    /// An empty record.
    pub fn new() -> Prices {
        Prices::default()
    }

    /// Stores `price` at `timestamp`.
    pub fn insert(&mut self, timestamp: i32, price: i32) {
        self.entries.push((timestamp, price));
    }
}
// ANCHOR_END: prices

impl Prices {
    // ANCHOR: mean
    /// The mean of the prices whose timestamps lie in `mintime..=maxtime`,
    /// rounded toward zero; 0 when there are none.
    pub fn mean(&self, mintime: i32, maxtime: i32) -> i32 {
        let mut sum: i64 = 0;
        let mut count: i64 = 0;
        for &(timestamp, price) in &self.entries {
            if (mintime..=maxtime).contains(&timestamp) {
                sum += i64::from(price);
                count += 1;
            }
        }
        if count == 0 {
            return 0;
        }
        // i64 division rounds toward zero; the mean of i32s fits in an i32.
        (sum / count) as i32
    }
    // ANCHOR_END: mean
}

// ANCHOR: read_frame
/// Reads the next message: exactly MESSAGE_LEN bytes. `Ok(None)` when the
/// client has hung up between two messages; an error when it hangs up in the
/// middle of one.
pub fn read_frame(reader: &mut impl Read) -> Result<Option<[u8; MESSAGE_LEN]>> {
    let mut frame = [0; MESSAGE_LEN];
    let mut filled = 0;
    while filled < MESSAGE_LEN {
        match reader.read(&mut frame[filled..]) {
            Ok(0) if filled == 0 => return Ok(None),
            Ok(0) => {
                let error = std::io::Error::from(ErrorKind::UnexpectedEof);
                return Err(error).with_context(|| {
                    format!("the client hung up after {filled} of a message's {MESSAGE_LEN} bytes")
                });
            }
            Ok(count) => filled += count,
            Err(error) if error.kind() == ErrorKind::Interrupted => {}
            Err(error) => return Err(error).context("could not read a message"),
        }
    }
    Ok(Some(frame))
}
// ANCHOR_END: read_frame

// ANCHOR: serve_connection
/// Serves one client: reads message after message, stores its prices and
/// answers its queries, until the client hangs up. An unknown type ends the
/// connection, gently.
pub fn serve_connection(connection: TcpStream) -> Result<()> {
    let peer = peer_name(&connection);
    // This connection's prices: created here, gone when it ends.
    let mut prices = Prices::new();
    // One buffered reader for the whole connection: several messages may
    // arrive in one piece, and bytes read early belong to the next one.
    let mut reader = BufReader::new(&connection);
    let mut writer = &connection;
    while let Some(frame) = read_frame(&mut reader)? {
        match Request::decode(&frame) {
            Request::Insert { timestamp, price } => prices.insert(timestamp, price),
            Request::Query { mintime, maxtime } => {
                let mean = prices.mean(mintime, maxtime);
                writer
                    .write_all(&mean.to_be_bytes())
                    .context("could not write the answer")?;
                narrate(format!("{peer}: mean of {mintime}..={maxtime} is {mean}"));
            }
            Request::Unknown(kind) => {
                narrate(format!("{peer} sent a message of unknown type {kind:#04x}"));
                // The client may still be sending: close without a reset.
                return close_gently(connection);
            }
        }
    }
    Ok(())
}
// ANCHOR_END: serve_connection

// ANCHOR: encode_command
/// The client's side: turns a line like `I 12345 101` or `Q 12288 16384`
/// into the 9 bytes of its message. A line that is not a command is an
/// error that says what is wrong with it.
pub fn encode_command(line: &str) -> Result<[u8; MESSAGE_LEN]> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let [kind, first, second] = words[..] else {
        bail!("expected a letter and two numbers, like `I 12345 101`, got {line:?}");
    };
    let kind = match kind {
        "I" => b'I',
        "Q" => b'Q',
        _ => bail!("the command must be I (insert) or Q (query), not {kind:?}"),
    };
    let first: i32 = first
        .parse()
        .with_context(|| format!("{first:?} is not a 32-bit integer"))?;
    let second: i32 = second
        .parse()
        .with_context(|| format!("{second:?} is not a 32-bit integer"))?;
    let mut frame = [0; MESSAGE_LEN];
    frame[0] = kind;
    frame[1..5].copy_from_slice(&first.to_be_bytes());
    frame[5..9].copy_from_slice(&second.to_be_bytes());
    Ok(frame)
}
// ANCHOR_END: encode_command

/// Serves every client that connects to `listener`, each on a thread of its
/// own, for ever. One client's trouble never stops the server: a failed
/// accept is reported on stderr, and the server waits a little (Backoff),
/// then goes on.
pub fn serve_concurrently(listener: TcpListener) -> Result<()> {
    let mut backoff = Backoff::new();
    loop {
        match accept_one(&listener) {
            Ok((connection, peer)) => {
                backoff.reset();
                eprintln!("accepted {peer}");
                // `move` hands the connection to the new thread. The server
                // does not wait for it: it goes straight back to accept.
                thread::spawn(move || serve_client(connection, peer));
            }
            Err(error) => {
                // Most often out of file descriptors: wait for some to be
                // freed instead of trying again at once.
                let delay = backoff.after_failure();
                eprintln!("{error:#}; trying again in {} ms", delay.as_millis());
                thread::sleep(delay);
            }
        }
    }
}

/// Serves one client with [`serve_connection`] and says how it ended.
pub fn serve_client(connection: TcpStream, peer: SocketAddr) {
    match serve_connection(connection) {
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
