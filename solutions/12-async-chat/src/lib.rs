//! Lesson 12: the room of lesson 11 on tokio, and stopping it well.
//!
//! The same protocol, names, limits and outbox rule as lesson 11 (Budget
//! Chat): a greeting, a name, a `*` list of who is present, `[NAME] text`
//! to everyone else, entries and leaves, a bounded outbox per member. Here
//! each member is a task, not two threads: one task waits, with
//! `tokio::select!`, for whichever comes first, the member's next line or
//! the next line of its outbox. And the server stops well on Ctrl-C: it
//! stops accepting, tells every member, lets their outboxes drain for a
//! grace period, closes every connection gently, and says what it did.
//!
//! You write the four parts marked TODO: converse (the member's select!
//! loop), ChatRoom::close (tell every member, close every outbox),
//! serve_room_async (the accept loop that stops on the signal) and stop_gently
//! (the grace, then the summary). The rest is done for you, and most of it
//! is lesson 11's matter, taught there: the lines, the name rule, the room's
//! bookkeeping under one lock (join, say, leave), the outbox rule (deliver),
//! reading a line with a limit (LineReader, cancel safe: the chapter says
//! why that matters), and lesson 9's lingering close. Nothing else needs to
//! change: `src/main.rs` is the lesson's program, `tests/checks.rs` the
//! checks.
//!
//! Read:  book/src/lessons/12-async-chat.md
//! Check: cargo test -p lesson-12-async-chat

use std::collections::HashMap;
use std::fmt;
use std::net::{Shutdown, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::{Instant, timeout, timeout_at};

/// The first line the server sends to every newcomer: it asks for a name.
pub const GREETING: &str = "Welcome to the room! What is your name?\n";

/// The longest name: 16 ASCII letters or digits.
pub const MAX_NAME: usize = 16;

/// The longest line a member may send, in bytes, its newline not counted.
/// A longer one gets an error line, and the member is dropped.
pub const MAX_LINE: usize = 4096;

/// How many lines may wait in a member's outbox for its task. A member
/// whose outbox is full is not reading: the room drops it.
pub const OUTBOX_LINES: usize = 256;

/// What every member still present hears when the server stops.
pub const STOPPING_LINE: &str = "* the server is stopping\n";

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

/// True when `name` is 1 to MAX_NAME ASCII letters or digits (lesson 11).
pub fn valid_name(name: &str) -> bool {
    (1..=MAX_NAME).contains(&name.len()) && name.bytes().all(|byte| byte.is_ascii_alphanumeric())
}

// ANCHOR: seat
/// What the room keeps of one member (lesson 11's Member, for a task): its
/// outbox, and a second handle on its connection, to cut it off.
pub struct Seat {
    /// Lines for this member; its task writes them to the connection.
    pub outbox: mpsc::Sender<String>,
    /// The member's connection (a std handle on the same socket), to shut
    /// it down when the member stops reading: that wakes its task, whatever
    /// it waits for (a read, or a write the member does not read).
    pub connection: std::net::TcpStream,
    /// True once the member has been cut off: lines fanned out before its
    /// task takes it out of the room find it so, and say nothing.
    pub cut_off: AtomicBool,
}

/// A seat for `connection`: the connection back (the same socket), the
/// seat, and the other end of its outbox, which holds OUTBOX_LINES lines.
pub fn new_seat(connection: TcpStream) -> Result<(TcpStream, Seat, mpsc::Receiver<String>)> {
    let connection = connection
        .into_std()
        .context("could not take the connection")?;
    let spare = connection
        .try_clone()
        .context("could not clone the connection")?;
    let connection = TcpStream::from_std(connection).context("could not hand it back to tokio")?;
    // Each line leaves at once: see lesson 11's spawn_writer.
    connection
        .set_nodelay(true)
        .context("could not turn Nagle's algorithm off")?;
    let (outbox, inbox) = mpsc::channel(OUTBOX_LINES);
    let seat = Seat {
        outbox,
        connection: spare,
        cut_off: AtomicBool::new(false),
    };
    Ok((connection, seat, inbox))
}

impl Seat {
    /// Lesson 11's outbox rule: puts `line` in the outbox without ever
    /// waiting; a full outbox cuts the member off, once.
    pub fn deliver(&self, name: &str, line: &str) {
        match self.outbox.try_send(line.to_string()) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) if !self.cut_off.swap(true, Ordering::Relaxed) => {
                narrate(format!(
                    "{name} has {OUTBOX_LINES} lines waiting and reads none: disconnected"
                ));
                let _ = self.connection.shutdown(Shutdown::Both);
            }
            // Cut off already, or its task has ended: it is on its way out.
            Err(TrySendError::Full(_) | TrySendError::Closed(_)) => {}
        }
    }
}
// ANCHOR_END: seat

// ANCHOR: room
/// The room: every named member's seat, by name, under one lock, as in
/// lesson 11. Once closed (the server is stopping), it is empty and takes
/// nobody in.
#[derive(Default)]
pub struct ChatRoom {
    inside: Mutex<Inside>,
}

/// What the ChatRoom's lock guards.
#[derive(Default)]
pub struct Inside {
    /// Every member present, by name.
    pub seats: HashMap<String, Seat>,
    /// True once the server is stopping.
    pub closed: bool,
}
// ANCHOR_END: room

impl ChatRoom {
    /// An empty room.
    pub fn new() -> ChatRoom {
        ChatRoom::default()
    }

    /// The names present, sorted (for the narration and the checks).
    pub fn names(&self) -> Vec<String> {
        let inside = self.inside.lock().unwrap();
        let mut names: Vec<String> = inside.seats.keys().cloned().collect();
        names.sort();
        names
    }

    /// Lesson 11's join: adds `name`, tells it who is present and the others
    /// that it entered, all under one lock. Err says why not: the name is
    /// taken, or the room has closed.
    pub fn join(&self, name: &str, seat: Seat) -> Result<(), &'static str> {
        let mut inside = self.inside.lock().unwrap();
        if inside.closed {
            return Err("the server is stopping");
        }
        if inside.seats.contains_key(name) {
            return Err("that name is taken");
        }
        let mut others: Vec<&str> = inside.seats.keys().map(String::as_str).collect();
        others.sort();
        seat.deliver(name, &present_line(&others));
        let entered = entered_line(name);
        for (other, to) in inside.seats.iter() {
            to.deliver(other, &entered);
        }
        inside.seats.insert(name.to_string(), seat);
        Ok(())
    }

    /// Lesson 11's say: `[FROM] text` to every member but `from`.
    pub fn say(&self, from: &str, text: &str) {
        let line = said_line(from, text);
        let inside = self.inside.lock().unwrap();
        for (name, seat) in inside.seats.iter() {
            if name != from {
                seat.deliver(name, &line);
            }
        }
    }

    /// Lesson 11's leave: takes `name` out and tells everyone else, once.
    /// False if it was not there (never joined, or the room has closed).
    pub fn leave(&self, name: &str) -> bool {
        let mut inside = self.inside.lock().unwrap();
        if inside.seats.remove(name).is_none() {
            return false;
        }
        let left = left_line(name);
        for (other, seat) in inside.seats.iter() {
            seat.deliver(other, &left);
        }
        true
    }

    // ANCHOR: close
    /// Closes the room: tells every member `line`, and closes every outbox.
    /// Returns how many members were told.
    pub fn close(&self, line: &str) -> usize {
        let mut inside = self.inside.lock().unwrap();
        inside.closed = true;
        let seats = std::mem::take(&mut inside.seats);
        for (name, seat) in &seats {
            seat.deliver(name, line);
        }
        // Dropping the seats drops each outbox's sender: the outbox closes,
        // after the lines already in it.
        seats.len()
    }
    // ANCHOR_END: close
}

/// What [`LineReader::next_line`] heard.
#[derive(Debug, PartialEq, Eq)]
pub enum LineRead {
    /// A line, its newline (and a `\r` before it) taken off.
    Line(String),
    /// More than the limit came without a newline.
    TooLong,
    /// The client has gone: end of file, maybe after a last unfinished line.
    End,
}

// ANCHOR: line_reader
/// Reads a member's lines, each at most a limit of bytes, and is cancel
/// safe: the bytes of a line read so far are kept in the reader itself, not
/// in the future that next_line returns. When select! drops that future
/// because another branch won, nothing read is lost: the next call goes on
/// where this one stopped.
pub struct LineReader {
    reader: BufReader<OwnedReadHalf>,
    /// The line so far: bytes taken from the buffer, no newline yet.
    line: Vec<u8>,
}

impl LineReader {
    /// A reader of `connection`'s lines.
    pub fn new(connection: OwnedReadHalf) -> LineReader {
        LineReader {
            reader: BufReader::new(connection),
            line: Vec::new(),
        }
    }

    /// The next line, of at most `limit` bytes (its newline not counted).
    /// Bytes that are not UTF-8 come out as U+FFFD. Cancel safe.
    pub async fn next_line(&mut self, limit: usize) -> Result<LineRead> {
        loop {
            // fill_buf is cancel safe: it takes nothing out of the buffer.
            // Everything after it, up to the next await, runs at once.
            let available = self
                .reader
                .fill_buf()
                .await
                .context("could not read a line")?;
            if available.is_empty() {
                return Ok(LineRead::End);
            }
            let newline = available.iter().position(|&byte| byte == b'\n');
            let taken = newline.map_or(available.len(), |at| at + 1);
            self.line
                .extend_from_slice(&available[..newline.unwrap_or(taken)]);
            self.reader.consume(taken);
            if self.line.len() > limit {
                return Ok(LineRead::TooLong);
            }
            if newline.is_some() {
                let mut line = std::mem::take(&mut self.line);
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                return Ok(LineRead::Line(String::from_utf8_lossy(&line).into_owned()));
            }
        }
    }

    /// The read half, to put the connection together again.
    pub fn into_inner(self) -> OwnedReadHalf {
        self.reader.into_inner()
    }
}
// ANCHOR_END: line_reader

/// How a member's conversation ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Parting {
    /// The member hung up (end of file).
    HungUp,
    /// The member sent a line over MAX_LINE.
    TooLong,
    /// The room closed the member's outbox (the server is stopping), and
    /// every line that was in it has been written.
    RoomClosed,
}

// ANCHOR: converse
/// The member's side of the room, once named: says every line the member
/// sends, and writes every line of its outbox, whichever comes first, until
/// one of them ends.
pub async fn converse(
    name: &str,
    room: &ChatRoom,
    lines: &mut LineReader,
    writer: &mut OwnedWriteHalf,
    inbox: &mut mpsc::Receiver<String>,
) -> Result<Parting> {
    let mut waiting = Vec::new();
    loop {
        tokio::select! {
            // Cancel safe: a half line read so far stays in `lines`.
            heard = lines.next_line(MAX_LINE) => match heard? {
                LineRead::Line(text) => room.say(name, &text),
                LineRead::TooLong => return Ok(Parting::TooLong),
                LineRead::End => return Ok(Parting::HungUp),
            },
            // Cancel safe too: lines not received stay in the outbox. All
            // that waits goes out in one write, one system call, not one a
            // line: in a busy room that is what keeps every member's turn short.
            received = inbox.recv_many(&mut waiting, OUTBOX_LINES) => match received {
                0 => return Ok(Parting::RoomClosed),
                _ => {
                    let bytes: String = waiting.drain(..).collect();
                    writer
                        .write_all(bytes.as_bytes())
                        .await
                        .context("could not write to the member")?;
                }
            },
        }
    }
}
// ANCHOR_END: converse

// ANCHOR: serve_member_async
/// Serves one client of the room: its name, then its conversation, until it
/// leaves or the room closes; then a gentle close.
pub async fn serve_member_async(connection: TcpStream, room: Arc<ChatRoom>) -> Result<()> {
    let peer = peer_name(&connection);
    let (connection, seat, mut inbox) = new_seat(connection)?;
    let (reader, mut writer) = connection.into_split();
    let mut lines = LineReader::new(reader);
    writer
        .write_all(GREETING.as_bytes())
        .await
        .context("could not greet")?;
    let refusal = match lines.next_line(MAX_LINE).await? {
        LineRead::End => return Ok(()),
        LineRead::TooLong => "that name is too long",
        LineRead::Line(name) if !valid_name(&name) => "a name is 1 to 16 letters or digits",
        LineRead::Line(name) => match room.join(&name, seat) {
            Err(why) => why,
            Ok(()) => {
                narrate(format!("{peer} joined as {name}"));
                let parting = converse(&name, &room, &mut lines, &mut writer, &mut inbox).await;
                if room.leave(&name) {
                    narrate(format!("{name} left"));
                }
                // Leaving closed the outbox: what still waits in it goes
                // out, within LINGER_TIME (a member that does not read).
                let _ = timeout(LINGER_TIME, write_what_waits(&mut writer, &mut inbox)).await;
                match parting? {
                    Parting::TooLong => "that line is too long",
                    Parting::HungUp | Parting::RoomClosed => {
                        return close_gently_async(rejoin(lines, writer)?).await;
                    }
                }
            }
        },
    };
    refuse_async(rejoin(lines, writer)?, refusal).await
}
// ANCHOR_END: serve_member_async

/// Writes the lines left in a closed outbox.
async fn write_what_waits(
    writer: &mut OwnedWriteHalf,
    inbox: &mut mpsc::Receiver<String>,
) -> Result<()> {
    while let Some(line) = inbox.recv().await {
        writer.write_all(line.as_bytes()).await?;
    }
    Ok(())
}

/// The connection whole again, from its two halves.
fn rejoin(lines: LineReader, writer: OwnedWriteHalf) -> Result<TcpStream> {
    lines
        .into_inner()
        .reunite(writer)
        .context("the two halves are of one connection")
}

/// Sends one error line, `* error: WHY`, and ends the connection gently:
/// the client reads the line, then end of file.
pub async fn refuse_async(mut connection: TcpStream, why: &str) -> Result<()> {
    let _ = connection
        .write_all(format!("* error: {why}\n").as_bytes())
        .await;
    close_gently_async(connection).await
}

/// Serves one client with [`serve_member_async`] and says how it ended: the task
/// that [`serve_room_async`] spawns for each client.
pub async fn serve_one_async(connection: TcpStream, peer: SocketAddr, room: Arc<ChatRoom>) {
    match serve_member_async(connection, room).await {
        Ok(()) => narrate(format!("closed the connection to {peer}")),
        Err(error) => narrate(format!("{peer}: {error:#}; closed the connection")),
    }
}

// ANCHOR: serve_room_async
/// Serves every client that connects to `listener` in one room, each in a
/// task of its own, until `stop` turns true; then stops gently, giving the
/// members `grace` to hear the rest, and says what it did.
pub async fn serve_room_async(
    listener: TcpListener,
    mut stop: watch::Receiver<bool>,
    grace: Duration,
) -> Result<Stopped> {
    let room = Arc::new(ChatRoom::new());
    let mut members = JoinSet::new();
    let mut served = 0;
    let mut backoff = Backoff::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((connection, peer)) => {
                    backoff.reset();
                    served += 1;
                    narrate(format!("accepted {peer}"));
                    members.spawn(serve_one_async(connection, peer, Arc::clone(&room)));
                }
                Err(error) => {
                    let delay = backoff.after_failure();
                    narrate(format!(
                        "could not accept a connection: {error}; trying again in {} ms",
                        delay.as_millis()
                    ));
                    tokio::time::sleep(delay).await;
                }
            },
            // Cancel safe, and true at once if the stop came before.
            _ = stop.wait_for(|stopping| *stopping) => break,
        }
        // Tasks that have ended: forget them, or the set grows for ever.
        while members.try_join_next().is_some() {}
    }
    // No more clients: a new one is refused by the OS from now on.
    drop(listener);
    Ok(stop_gently(&room, members, grace, served).await)
}
// ANCHOR_END: serve_room_async

// ANCHOR: stop_gently
/// The graceful stop: tells every member, gives every connection still open
/// `grace` to finish (its outbox drained, a gentle close), cuts off those
/// still open when it ends, and says what it did.
pub async fn stop_gently(
    room: &ChatRoom,
    mut members: JoinSet<()>,
    grace: Duration,
    served: usize,
) -> Stopped {
    while members.try_join_next().is_some() {}
    let still_open = members.len();
    let told = room.close(STOPPING_LINE);
    narrate(format!(
        "stopping: told {}; {} ms of grace",
        counted(told, "member"),
        grace.as_millis()
    ));
    let deadline = Instant::now() + grace;
    let mut finished = 0;
    while let Ok(Some(_)) = timeout_at(deadline, members.join_next()).await {
        finished += 1;
    }
    let cut_off = members.len();
    // Aborts each task left, and waits until it has ended: dropping a task
    // drops its connection, which closes it.
    members.shutdown().await;
    Stopped {
        served,
        still_open,
        finished,
        cut_off,
    }
}
// ANCHOR_END: stop_gently

// ANCHOR: stopped
/// What the server did, for the summary it prints when it has stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stopped {
    /// How many clients it accepted in all.
    pub served: usize,
    /// How many connections were still open when the stop came.
    pub still_open: usize,
    /// How many of those ended within the grace.
    pub finished: usize,
    /// How many were still open when the grace ended, and were cut off.
    pub cut_off: usize,
}

impl fmt::Display for Stopped {
    /// `stopped: served 4 clients; 3 still connected: 2 closed within the
    /// grace, 1 cut off`
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "stopped: served {}; {} still connected: {} closed within the grace, {} cut off",
            counted(self.served, "client"),
            self.still_open,
            self.finished,
            self.cut_off
        )
    }
}
// ANCHOR_END: stopped

/// A count and its noun, for the narration: `1 client`, `3 clients`,
/// `0 clients`.
pub fn counted(count: usize, noun: &str) -> String {
    match count {
        1 => format!("1 {noun}"),
        _ => format!("{count} {noun}s"),
    }
}

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

/// How long [`close_gently_async`] waits, at most, for the client to stop sending.
pub const LINGER_TIME: Duration = Duration::from_secs(1);

/// The most bytes [`close_gently_async`] reads and throws away: 4 MiB.
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
/// next one, at most MAX_BACKOFF (lesson 6).
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
