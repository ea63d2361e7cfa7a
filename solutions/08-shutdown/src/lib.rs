//! Lesson 8: stopping well, and bounding the work.
//!
//! The server of lesson 7 cannot be held by a silent or a slow client. But
//! it takes every client that comes, a thread each, with no bound: one
//! attacker who opens thousands of connections takes every thread and every
//! file the machine has. And it stops only when it is killed, which cuts
//! every conversation midway.
//!
//! This server serves at most `max_clients` clients at once, and tells the
//! next one at once that it is busy. On Ctrl-C it stops accepting, lets the
//! conversations in flight finish for a while (the grace), says goodbye to
//! the rest, and returns a summary.
//!
//! You write the six pieces marked TODO: Conversations::admit, the Drop of
//! Slot, Conversations::cut_short, turn_away, converse and
//! serve_until_stopped. Stop, Settings, Summary and the rest of
//! Conversations are done for you, and so is everything of lesson 7.
//! Nothing else needs to change: `src/main.rs` is the lesson's program,
//! `tests/checks.rs` are the checks.
//!
//! Read:  book/src/lessons/08-shutdown.md
//! Check: cargo test -p lesson-08-shutdown

use std::collections::BTreeMap;
use std::fmt;
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// What the server writes to a client that comes when `max_clients`
/// conversations are already going on; then it closes the connection.
pub const BUSY_REPLY: &[u8] = b"error: server busy, try again later\n";

/// What the server writes to a client whose conversation it cuts short
/// because it is stopping; then it closes the connection.
pub const SHUTDOWN_REPLY: &[u8] = b"error: server shutting down, goodbye\n";

/// How many conversations the program serves at once unless told otherwise.
pub const MAX_CLIENTS: usize = 100;

/// How long the program lets conversations finish, once it stops, unless
/// told otherwise: 5 s.
pub const GRACE: Duration = Duration::from_secs(5);

/// How long the server waits, after it cut the last conversations short, for
/// them to say goodbye: 500 ms. A goodbye takes microseconds; a client that
/// reads nothing could hold its conversation's last write for longer, and
/// the server does not wait for it: the end of the process closes the rest.
pub const GOODBYE_TIME: Duration = Duration::from_millis(500);

// ANCHOR: settings
/// How the server bounds its work: how many clients at once, how long they
/// may take once it stops, and lesson 7's limits for each conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// The most conversations at once; the next client is told BUSY_REPLY.
    pub max_clients: usize,
    /// Once the server stops, how long the conversations in flight may go on.
    pub grace: Duration,
    /// Lesson 7's limits on every wait of a conversation.
    pub limits: Limits,
}

impl Settings {
    /// The program's settings when no flag says otherwise: MAX_CLIENTS,
    /// GRACE and lesson 7's default limits.
    pub fn standard() -> Settings {
        Settings {
            max_clients: MAX_CLIENTS,
            grace: GRACE,
            limits: Limits::default(),
        }
    }
}
// ANCHOR_END: settings

// ANCHOR: summary
/// What the server did, told when it has stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    /// How many clients it served (clients it turned away do not count).
    pub served: usize,
    /// How many conversations were still going on when the grace ended.
    pub cut_short: usize,
}

impl fmt::Display for Summary {
    /// `stopped: served 3 clients, 1 cut short`, or `served 1 client`
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "stopped: served {}, {} cut short",
            counted(self.served, "client"),
            self.cut_short
        )
    }
}
// ANCHOR_END: summary

/// A count and its noun, for the narration: `1 client`, `3 clients`,
/// `0 clients`.
pub fn counted(count: usize, noun: &str) -> String {
    match count {
        1 => format!("1 {noun}"),
        _ => format!("{count} {noun}s"),
    }
}

// ANCHOR: stop
/// The connect timeout of the wake-up call. On this machine it takes
/// microseconds; if it fails, the server is not waiting in accept anyway.
pub const WAKE_UP_TIME: Duration = Duration::from_secs(1);

/// A handle that asks a running server to stop. The program's Ctrl-C handler
/// triggers it; a check may too. Clones share the same flag.
#[derive(Debug, Clone)]
pub struct Stop {
    /// Set once, when stopping begins; never cleared.
    stopping: Arc<AtomicBool>,
    /// The listener's own address: a connection to it wakes a blocked accept.
    wake_up: SocketAddr,
}

impl Stop {
    /// A stop for the server that listens on `listener`.
    pub fn new(listener: &TcpListener) -> Result<Stop> {
        let mut wake_up = bound_address(listener)?;
        // A listener on 0.0.0.0 or [::] takes clients on every address of
        // this machine: the wake-up call goes to the loopback one.
        if wake_up.ip().is_unspecified() {
            match wake_up {
                SocketAddr::V4(_) => wake_up.set_ip(Ipv4Addr::LOCALHOST.into()),
                SocketAddr::V6(_) => wake_up.set_ip(Ipv6Addr::LOCALHOST.into()),
            }
        }
        Ok(Stop {
            stopping: Arc::new(AtomicBool::new(false)),
            wake_up,
        })
    }

    /// Asks the server to stop: raises the flag, then wakes the accepting
    /// loop. A thread blocked in accept() sees no flag: it waits for a
    /// client. So the stopper is that client: it connects to the listener
    /// itself, accept() returns, and the loop finds the flag raised.
    pub fn trigger(&self) {
        // First the flag, then the call: the loop that wakes up sees it.
        self.stopping.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect_timeout(&self.wake_up, WAKE_UP_TIME);
    }

    /// True once trigger() has been called.
    pub fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }
}
// ANCHOR_END: stop

// ANCHOR: conversations
/// The conversations going on, shared by the accepting loop and every
/// conversation's thread: a handle on each one's socket, so that the server
/// can cut them short when it stops. Clones share the same list.
///
/// Each conversation holds two file descriptors, no more: its connection
/// (which lesson 7's seesaw takes) and the handle admit makes, which the
/// list and the conversation's Slot share (an Arc). The goodbye goes out
/// through that same handle.
#[derive(Debug, Clone, Default)]
pub struct Conversations {
    open: Arc<Mutex<Open>>,
    /// Notified each time a conversation ends.
    ended: Arc<Condvar>,
}

/// What [`Conversations`] keeps behind its lock.
#[derive(Debug, Default)]
struct Open {
    /// A second handle on each conversation's socket (a try_clone), by
    /// number, shared with its Slot. How many there are is how many
    /// conversations go on.
    sockets: BTreeMap<u64, Arc<TcpStream>>,
    /// The number the next conversation gets.
    next: u64,
    /// Set when the server has cut the conversations short.
    cut: bool,
}

/// A conversation's place among the [`Conversations`]: while it exists, the
/// conversation counts. Dropping it gives the place back.
#[derive(Debug)]
pub struct Slot {
    conversations: Conversations,
    /// The conversation's number in `Open::sockets`.
    number: u64,
    /// The same handle as the list's, for the conversation's goodbye.
    socket: Arc<TcpStream>,
}

impl Conversations {
    /// No conversation yet.
    pub fn new() -> Conversations {
        Conversations::default()
    }

    /// The list, locked. A thread that panicked while it held the lock
    /// leaves it "poisoned"; the list itself is still whole, so use it.
    fn lock(&self) -> MutexGuard<'_, Open> {
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// How many conversations go on now.
    pub fn count(&self) -> usize {
        self.lock().sockets.len()
    }

    /// True once [`Conversations::cut_short`] has been called.
    pub fn was_cut(&self) -> bool {
        self.lock().cut
    }

    /// Waits until no conversation goes on, at most `within`. Returns true
    /// if none does. Each Slot that is dropped wakes it to look again.
    pub fn wait_until_all_ended(&self, within: Duration) -> bool {
        let open = self.lock();
        let (open, _) = self
            .ended
            .wait_timeout_while(open, within, |open| !open.sockets.is_empty())
            .unwrap_or_else(PoisonError::into_inner);
        open.sockets.is_empty()
    }
    // ANCHOR_END: conversations

    // ANCHOR: admit
    /// Takes `connection` in as a conversation, if fewer than `max_clients`
    /// go on: keeps a second handle on its socket, shared by the list and
    /// the Slot, and returns the Slot. Returns None when `max_clients`
    /// conversations already go on; an Err when the handle cannot be made
    /// (no file descriptor left).
    pub fn admit(&self, connection: &TcpStream, max_clients: usize) -> Result<Option<Slot>> {
        let mut open = self.lock();
        if open.sockets.len() >= max_clients {
            return Ok(None);
        }
        let handle = connection
            .try_clone()
            .context("could not clone the connection")?;
        let handle = Arc::new(handle);
        let number = open.next;
        open.next += 1;
        open.sockets.insert(number, Arc::clone(&handle));
        Ok(Some(Slot {
            conversations: self.clone(),
            number,
            socket: handle,
        }))
    }
    // ANCHOR_END: admit

    // ANCHOR: cut_short
    /// Cuts every conversation still going on short: marks them cut, and
    /// shuts down the reading side of each one's socket, so that a read that
    /// waits for the client returns end of file at once. Writes nothing: each
    /// conversation's thread finishes the echo it is writing, then says
    /// goodbye itself. Returns how many conversations it cut.
    pub fn cut_short(&self) -> usize {
        let mut open = self.lock();
        open.cut = true;
        for socket in open.sockets.values() {
            // Fails only if the client has already reset the connection;
            // then its conversation is ending anyway.
            let _ = socket.shutdown(Shutdown::Read);
        }
        open.sockets.len()
    }
    // ANCHOR_END: cut_short
}

impl Slot {
    /// True if the server has cut the conversations short.
    pub fn was_cut(&self) -> bool {
        self.conversations.was_cut()
    }

    /// The handle admit made on the conversation's socket, the same one
    /// the list holds: a way to the socket once the seesaw has taken (and
    /// closed) the connection itself.
    pub fn socket(&self) -> &TcpStream {
        &self.socket
    }
}

// ANCHOR: drop_slot
impl Drop for Slot {
    /// Gives the place back, however the conversation ended: it returned,
    /// failed, or panicked (Rust drops a value on the way out of a panic
    /// too), and wakes whoever waits for conversations to end.
    fn drop(&mut self) {
        let mut open = self.conversations.lock();
        open.sockets.remove(&self.number);
        self.conversations.ended.notify_all();
    }
}
// ANCHOR_END: drop_slot

// ANCHOR: turn_away
/// Tells a client that the server cannot serve now (it is full, or out of
/// file descriptors) that it is busy, on the client's own thread: writes
/// BUSY_REPLY, then closes gently, so that the line reaches the client even
/// if it had already sent a message.
pub fn turn_away(connection: TcpStream, peer: SocketAddr) {
    narrate(format!("busy: turned {peer} away"));
    let result = (&connection)
        .write_all(BUSY_REPLY)
        .context("could not write the busy line")
        .and_then(|()| close_gently(connection));
    if let Err(error) = result {
        narrate(format!("{peer}: {error:#}; closed the connection"));
    }
}
// ANCHOR_END: turn_away

// ANCHOR: converse
/// One client's conversation: lesson 7's seesaw within `limits`; if the
/// server cut it short (the seesaw then ends as if the client had hung up),
/// writes SHUTDOWN_REPLY through the Slot's handle and closes gently.
pub fn converse(connection: TcpStream, limits: &Limits, slot: &Slot) -> Result<()> {
    // serve_connection_within takes the connection, and closes it when it
    // returns: the goodbye goes through the Slot's handle, no third one.
    serve_connection_within(connection, limits)?;
    if slot.was_cut() {
        // (A &TcpStream writes too: `mut` is for the reference, not the socket.)
        let mut socket = slot.socket();
        narrate(format!("stopping: said goodbye to {}", peer_name(socket)));
        socket
            .write_all(SHUTDOWN_REPLY)
            .context("could not write the goodbye")?;
        // close_gently takes a handle of its own. The connection's
        // descriptor is closed by now, so this one is the second, not a
        // third; it lives only for the lingering close.
        let handle = socket
            .try_clone()
            .context("could not clone the connection")?;
        return close_gently(handle);
    }
    Ok(())
}
// ANCHOR_END: converse

/// A conversation's thread: holds its Slot for as long as the conversation
/// goes on, and says how it ended. The Slot is dropped when this returns,
/// or when a panic passes through.
pub fn serve_client_in_slot(connection: TcpStream, peer: SocketAddr, limits: Limits, slot: Slot) {
    match converse(connection, &limits, &slot) {
        Ok(()) => eprintln!("closed the connection to {peer}"),
        Err(error) => eprintln!("{peer}: {error:#}; closed the connection"),
    }
}

// ANCHOR: serve_until_stopped
/// Serves clients that connect to `listener`, each on a thread of its own,
/// at most `settings.max_clients` at once, until `stop` is triggered. Then it
/// stops accepting (new clients are refused), lets the conversations in
/// flight go on for `settings.grace`, cuts the rest short, and returns what
/// it did.
pub fn serve_until_stopped(
    listener: TcpListener,
    settings: Settings,
    stop: Stop,
) -> Result<Summary> {
    let conversations = Conversations::new();
    let mut served = 0;
    let mut backoff = Backoff::new();
    while !stop.is_stopping() {
        match accept_one(&listener) {
            // The wake-up call, or a client that came as we stopped: neither
            // is served.
            Ok(_) if stop.is_stopping() => break,
            Ok((connection, peer)) => {
                backoff.reset();
                match conversations.admit(&connection, settings.max_clients) {
                    Ok(Some(slot)) => {
                        served += 1;
                        narrate(format!("accepted {peer}"));
                        let limits = settings.limits;
                        // The Slot moves into the thread: the place is given
                        // back when the thread is done with it.
                        thread::spawn(move || serve_client_in_slot(connection, peer, limits, slot));
                    }
                    // On a thread of its own: the lingering close may take a
                    // second, and the loop must go back to accept at once.
                    Ok(None) => {
                        thread::spawn(move || turn_away(connection, peer));
                    }
                    // No file descriptor left for admit's handle: this client
                    // cannot be served now, but it can still be told so.
                    Err(error) => {
                        narrate(format!("{peer}: {error:#}"));
                        thread::spawn(move || turn_away(connection, peer));
                    }
                }
            }
            Err(error) => {
                let delay = backoff.after_failure();
                narrate(format!(
                    "{error:#}; trying again in {} ms",
                    delay.as_millis()
                ));
                thread::sleep(delay);
            }
        }
    }
    // Closing the listener refuses new clients at once, so that they can
    // try again later or elsewhere instead of waiting for nothing.
    drop(listener);
    narrate(format!(
        "stopping: no new clients; {} may go on for {} ms",
        counted(conversations.count(), "conversation"),
        settings.grace.as_millis()
    ));
    let mut cut_short = 0;
    if !conversations.wait_until_all_ended(settings.grace) {
        cut_short = conversations.cut_short();
        narrate(format!(
            "stopping: the grace is over; cut {} short",
            counted(cut_short, "conversation")
        ));
        conversations.wait_until_all_ended(GOODBYE_TIME);
    }
    Ok(Summary { served, cut_short })
}
// ANCHOR_END: serve_until_stopped

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
    let mut bytes = Vec::new();
    // Until the message begins, the client may be silent for limits.idle.
    let mut deadline = Instant::now() + limits.idle;
    loop {
        let time_left = deadline.saturating_duration_since(Instant::now());
        // (set_read_timeout refuses a zero duration: time is up anyway.)
        if time_left.is_zero() {
            return Ok(if bytes.is_empty() {
                Heard::Idle
            } else {
                Heard::TooSlow
            });
        }
        // Each read waits at most for the time that is left, not longer.
        reader
            .get_ref()
            .set_read_timeout(Some(time_left))
            .context("could not set a read timeout")?;
        let available = match reader.fill_buf() {
            Ok(available) => available,
            Err(error) if error.kind() == ErrorKind::Interrupted => continue,
            Err(error) if is_timeout(&error) => {
                return Ok(if bytes.is_empty() {
                    Heard::Idle
                } else {
                    Heard::TooSlow
                });
            }
            Err(error) => return Err(error).context("could not read a message"),
        };
        if available.is_empty() {
            // End of file.
            return Ok(if bytes.is_empty() {
                Heard::End
            } else {
                Heard::Tail(bytes)
            });
        }
        if bytes.is_empty() {
            // The message has begun: from its first byte, it has limits.message.
            deadline = Instant::now() + limits.message;
        }
        // Take bytes up to the newline, never past MAX_MESSAGE in all.
        let room = MAX_MESSAGE - bytes.len();
        let piece = &available[..available.len().min(room)];
        let (count, complete) = match piece.iter().position(|&byte| byte == b'\n') {
            Some(newline) => (newline + 1, true),
            None => (piece.len(), false),
        };
        bytes.extend_from_slice(&piece[..count]);
        reader.consume(count);
        if complete {
            return Ok(Heard::Line(bytes));
        }
        if bytes.len() == MAX_MESSAGE {
            return Ok(Heard::TooLong);
        }
    }
}
// ANCHOR_END: read_message_within

// ANCHOR: serve_connection_within
/// Lesson 6's seesaw, within limits: echoes every message in order until the
/// client closes its sending side. A client that stays silent too long gets
/// IDLE_REPLY, a message that arrives too slowly gets SLOW_REPLY, one that is
/// too long gets TOO_LONG_REPLY; each ends the connection, gently. A client
/// that does not read what the server writes is given up on.
pub fn serve_connection_within(connection: TcpStream, limits: &Limits) -> Result<()> {
    let peer = peer_name(&connection);
    // Every write waits at most limits.write for the client to make room.
    connection
        .set_write_timeout(Some(limits.write))
        .context("could not set a write timeout")?;
    let mut reader = BufReader::new(&connection);
    let mut writer = &connection;
    loop {
        // What to write back and, after an error line, why the conversation ends.
        let (reply, ending) = match read_message_within(&mut reader, limits)? {
            Heard::Line(bytes) | Heard::Tail(bytes) => (bytes, None),
            Heard::End => return Ok(()),
            Heard::TooLong => (
                TOO_LONG_REPLY.to_vec(),
                Some(format!("sent a message over {MAX_MESSAGE} bytes")),
            ),
            Heard::Idle => (
                IDLE_REPLY.to_vec(),
                Some("was idle for too long".to_string()),
            ),
            Heard::TooSlow => (SLOW_REPLY.to_vec(), Some("sent too slowly".to_string())),
        };
        if let Err(error) = writer.write_all(&reply) {
            if is_timeout(&error) {
                // The client has not read for limits.write: it may never read again.
                narrate(format!("{peer} does not read its echoes; gave up writing"));
                return Ok(());
            }
            return Err(error).context("could not write to the client");
        }
        let Some(ending) = ending else {
            narrate(format!(
                "read {n} bytes from {peer}, wrote {n} bytes back",
                n = reply.len()
            ));
            continue;
        };
        narrate(format!("{peer} {ending}"));
        // The client may still be sending: close so that the error line
        // reaches it instead of a reset.
        return close_gently(connection);
    }
}
// ANCHOR_END: serve_connection_within

// ANCHOR: dial_within
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
// ANCHOR_END: dial_within

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
