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

#[allow(unused_imports)] // you will need these
use std::io::{BufReader, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::thread;
use std::time::{Duration, Instant};

#[allow(unused_imports)] // you will need bail! and Context
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
        // TODO: say which message these 9 bytes are. Byte 0 is the type: b'I'
        // (insert), b'Q' (query), anything else is Unknown with that byte
        // (lower-case b'i' and b'q' too).
        // Bytes 1..5 and 5..9 are two signed 32-bit integers, each in network
        // byte order (big-endian, the most significant byte first): for an
        // insert, the timestamp then the price; for a query, mintime then
        // maxtime. Negative numbers are allowed and must come out negative.
        let _ = frame; // (remove once you use `frame`)
        todo!(
            "decode a type byte and two big-endian i32s \
             (cargo hint 10 for help)"
        )
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
        // TODO: the mean of the prices whose timestamps t lie in
        // mintime <= t <= maxtime (both ends included; timestamps are i32s,
        // negative ones too; two prices at one timestamp both count):
        //   - sum them in an i64, which cannot overflow: many prices near
        //     i32::MAX add up to far more than an i32 holds (the protocol
        //     says so); the mean itself always fits in an i32;
        //   - divide with integer division, which rounds toward zero
        //     (-7 / 2 is -3), never through a float: an f64 is exact only
        //     up to 2^53, and a few million prices add up to more;
        //   - no price in the range, or mintime > maxtime: the answer is 0,
        //     never a division by zero.
        let _ = (mintime, maxtime, &self.entries); // (remove once you use them)
        todo!(
            "the mean of the prices in mintime..=maxtime, 0 if none \
             (cargo hint 10 for help)"
        )
    }
    // ANCHOR_END: mean
}

// ANCHOR: read_frame
/// Reads the next message: exactly MESSAGE_LEN bytes. `Ok(None)` when the
/// client has hung up between two messages; an error when it hangs up in the
/// middle of one.
pub fn read_frame(reader: &mut impl Read) -> Result<Option<[u8; MESSAGE_LEN]>> {
    // TODO: read exactly MESSAGE_LEN bytes, however many pieces they come in
    // (one read may return 1 byte, or 4). Then one of three cases:
    //   - all MESSAGE_LEN bytes came            -> Ok(Some(those bytes))
    //   - end of file before the first byte: the client hung up between
    //     two messages, as it may               -> Ok(None)
    //   - end of file after some bytes, not all: a torn message -> an error
    //     (Err) that says so, never Ok(None): the client broke the protocol.
    // A failed read is an error too, with the io::Error kept inside. Read no
    // byte past the message: the next one belongs to the next message.
    let _ = reader; // (remove once you use `reader`)
    todo!(
        "read exactly one 9-byte message, or None at a clean end \
         (cargo hint 10 for help)"
    )
}
// ANCHOR_END: read_frame

// ANCHOR: serve_connection
/// Serves one client: reads message after message, stores its prices and
/// answers its queries, until the client hangs up. An unknown type ends the
/// connection, gently.
pub fn serve_connection(connection: TcpStream) -> Result<()> {
    // TODO: serve this client until it hangs up. Its prices are its own: a
    // Prices (given) made for this connection, and gone when it ends. Read
    // each message with read_frame, through one buffered reader that lives
    // as long as the connection: a client may send many messages in one
    // piece (pipelining), or one message in many pieces.
    //
    // TODO: handle each message, decoded with Request::decode, in order:
    //   Insert: store the price; send nothing back.
    //   Query: write the mean (Prices::mean) back as exactly 4 bytes, a
    //       big-endian i32, in one write; answers go in the order the
    //       queries came. Narrate it in one line on stderr (narrate and
    //       peer_name are given): `PEER: mean of MINTIME..=MAXTIME is MEAN`.
    //   Unknown: the client breaks the protocol: narrate it in one line
    //       that says `unknown type`, then end the connection with
    //       close_gently (given) and return its result, so that a client
    //       that is still sending gets an end of file, not a reset.
    // When read_frame finds the end (None), return Ok(()): that closes the
    // connection. An error (a torn message, a reset, a failed write) goes up
    // to the caller as it is, context added if you like: after a torn
    // message the client has stopped sending, so a plain close is gentle.
    let _ = connection; // (remove once you use `connection`)
    todo!(
        "keep this connection's prices and answer its queries \
         (cargo hint 10 for help)"
    )
}
// ANCHOR_END: serve_connection

// ANCHOR: encode_command
/// The client's side: turns a line like `I 12345 101` or `Q 12288 16384`
/// into the 9 bytes of its message. A line that is not a command is an
/// error that says what is wrong with it.
pub fn encode_command(line: &str) -> Result<[u8; MESSAGE_LEN]> {
    // TODO: the client's half of the protocol. A command is three words,
    // with one or more spaces between them (and maybe around them): `I` or
    // `Q` (upper case: `i 1 2` is an error), then two signed 32-bit integers
    // in decimal. Its message is the type byte (b'I' or b'Q'),
    // then each integer as 4 big-endian bytes: 9 bytes in all.
    // Anything else is an error (Err), never a panic, whose message says
    // what is wrong with the line: not three words, a type other than I or
    // Q, a number that is not an i32 (too big, or not a number at all). The
    // program prints it and goes on with the next line.
    let _ = line; // (remove once you use `line`)
    todo!(
        "turn `I 12345 101` into 9 bytes: b'I', then two big-endian i32s \
         (cargo hint 10 for help)"
    )
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
