//! The check's own side of a connection. To check a server, the check is the
//! client; to check a client, the check is the server. Everything a peer sends
//! or receives goes into the step's transcript.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use crate::DEADLINE;
use crate::bytes::{difference, show, show_binary};
use crate::report::{NOTHING_CAME, Step, Transcript, hint_for_ending, hint_for_kind, join_hints};

/// A pause between the pieces of a message, long enough that the pieces arrive
/// in separate reads on the other side. This paces a slow peer; it never
/// stands in for waiting on an event.
pub const PIECE_PAUSE: Duration = Duration::from_millis(50);

/// How a read by the check ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// A newline arrived (it is the last byte of what was read).
    Newline,
    /// The other side closed: end of file.
    Closed,
    /// Nothing more arrived before the deadline.
    TimedOut,
    /// The connection failed, for instance it was reset.
    Failed(std::io::ErrorKind),
}

/// What the check read, and how the read ended.
#[derive(Debug, Clone)]
pub struct Received {
    pub bytes: Vec<u8>,
    pub end: End,
}

impl Received {
    /// For failure messages: `b"hi\n"`, or `b"hi" and then end of file`.
    pub fn describe(&self) -> String {
        let bytes = show(&self.bytes);
        match (self.end, self.bytes.is_empty()) {
            (End::Newline, _) => bytes,
            (End::Closed, true) => "end of file at once (you closed the connection)".to_string(),
            (End::Closed, false) => {
                format!("{bytes} and then end of file (you closed the connection)")
            }
            // How long the check waited is in the transcript.
            (End::TimedOut, true) => "nothing before the deadline".to_string(),
            (End::TimedOut, false) => format!("{bytes} and then nothing more before the deadline"),
            (End::Failed(kind), true) => format!("nothing, and then an error: {kind}"),
            (End::Failed(kind), false) => format!("{bytes} and then an error: {kind}"),
        }
    }
}

/// One connection the check holds, with the other end in the student's code.
///
/// A check reads like the conversation it checks:
///
/// ```text
/// let mut client = Peer::connect(&step, addr);
/// client.send_in_pieces(&[b"hel", b"lo\n"]);
/// client.expect_line(b"hello\n", "echo the whole line, once the newline has come");
/// client.close_sending();
/// client.expect_end("at end of file, return: that closes the connection");
/// ```
///
/// Every send and read goes into the step's transcript, and every `expect_`
/// builds the failure report (expected, got, the hint that fits what came) from
/// the same step, so the check adds only what is particular to it: its hint.
pub struct Peer {
    stream: TcpStream,
    step: Step,
    transcript: Transcript,
    /// Bytes read past a newline, kept for the next read.
    pending: Vec<u8>,
    /// How long a read that the student's code should answer at once may wait
    /// before it counts as a hang.
    patience: Duration,
    /// For a check that holds several connections: which one this is, at the
    /// start of each of its transcript lines.
    name: Option<String>,
    /// Shows bytes all in hex (a binary protocol), not as text.
    binary: bool,
}

impl Peer {
    /// The check connects, as a client, to the student's server at `addr`.
    #[track_caller]
    pub fn connect(step: &Step, addr: SocketAddr) -> Peer {
        match TcpStream::connect_timeout(&addr, DEADLINE) {
            Ok(stream) => {
                step.transcript()
                    .add(format!("check   connected to you at {addr}"));
                Peer::new(step, stream)
            }
            Err(error) => step
                .report()
                .did(&format!("the check connected to your server at {addr}"))
                .got(&format!("an error: {error}"))
                .hint(hint_for_connect(&error))
                .fail(),
        }
    }

    /// The check's end of a connection it already holds (one it accepted, or
    /// one half of a pair).
    pub fn new(step: &Step, stream: TcpStream) -> Peer {
        Peer {
            stream,
            step: step.clone(),
            transcript: step.transcript().clone(),
            pending: Vec::new(),
            patience: DEADLINE,
            name: None,
            binary: false,
        }
    }

    /// Names this connection in the transcript (`client 2`, `idle`), for a
    /// check that holds several at once.
    pub fn named(mut self, name: &str) -> Peer {
        self.name = Some(name.to_string());
        self
    }

    /// Shows the bytes of this connection all in hex, in the transcript and
    /// the reports: for a binary protocol, whose numbers read badly as text.
    pub fn binary(mut self) -> Peer {
        self.binary = true;
        self
    }

    /// `bytes` as this connection shows them: as text, or all in hex.
    fn shown(&self, bytes: &[u8]) -> String {
        match self.binary {
            true => show_binary(bytes),
            false => show(bytes),
        }
    }

    /// Waits at most `wait` (instead of [`DEADLINE`]) for what the student's
    /// code should send at once: late in a lesson, a hang is then explained
    /// sooner. Running out of `wait` still counts as a hang.
    pub fn patience(mut self, wait: Duration) -> Peer {
        self.patience = wait;
        self
    }

    /// The socket itself, for what the vocabulary does not cover (socket
    /// options, a clone for another thread).
    pub fn stream(&self) -> &TcpStream {
        &self.stream
    }

    /// Adds a line of the check's own to the transcript.
    pub fn note(&self, line: impl Into<String>) {
        let line = line.into();
        match &self.name {
            Some(name) => self.transcript.add(format!("{name:<8} {line}")),
            None => self.transcript.add(line),
        }
    }

    /// The check's own address on this connection.
    pub fn local_addr(&self) -> SocketAddr {
        self.stream
            .local_addr()
            .expect("a connected socket has a local address")
    }

    /// The other side's address on this connection, if the connection still stands.
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        self.stream.peer_addr().ok()
    }

    /// Sends `bytes` in one write. A failure is recorded; the read that follows shows it.
    pub fn send(&mut self, bytes: &[u8]) {
        self.note(format!("check → you   {}", self.shown(bytes)));
        if let Err(error) = self.stream.write_all(bytes) {
            self.note(format!("check   could not send: {error}"));
        }
    }

    /// Sends `bytes` from another thread, for a peer that may stop reading
    /// before it has all of them: waiting for it would block the check.
    pub fn send_in_background(&self, bytes: Vec<u8>) {
        self.note(format!(
            "check → you   {} (sent in the background)",
            self.shown(&bytes)
        ));
        let mut sender = self
            .stream
            .try_clone()
            .expect("the check could not clone its socket");
        thread::spawn(move || sender.write_all(&bytes));
    }

    /// Sends each piece in its own write, with a short pause between them, as a
    /// slow network would deliver them.
    pub fn send_in_pieces(&mut self, pieces: &[&[u8]]) {
        for (index, piece) in pieces.iter().enumerate() {
            if index > 0 {
                thread::sleep(PIECE_PAUSE);
            }
            self.send(piece);
        }
    }

    /// Closes the check's sending side (half-close): the other side reads end of
    /// file, and can still send.
    pub fn close_sending(&mut self) {
        self.note("check   closed its sending side (shutdown Write)".to_string());
        let _ = self.stream.shutdown(Shutdown::Write);
    }

    /// Closes the connection; `why` ends the transcript line, for instance
    /// `" (done)"`.
    pub fn close(self, why: &str) {
        self.note(format!("check   closed the connection{why}"));
    }

    /// Vanishes like a crashed client: waits (at most [`DEADLINE`]) until
    /// something has arrived from the other side, and closes without reading
    /// it. Closing with unread data makes the OS reset the connection, so the
    /// other side's next read fails with `connection reset`.
    pub fn reset(self) {
        let _ = self.stream.set_read_timeout(Some(DEADLINE));
        let _ = self.stream.peek(&mut [0u8; 1]);
        self.note("check   vanished: closed with unread data (a reset)".to_string());
    }

    /// Reads until a newline, end of file or the peer's patience runs out,
    /// whichever comes first. Running out of patience counts as a hang.
    pub fn read_line(&mut self) -> Received {
        self.read(true, self.patience, true)
    }

    /// Reads until end of file, or until the peer's patience runs out (a hang).
    pub fn read_to_end(&mut self) -> Received {
        self.read(false, self.patience, true)
    }

    /// Reads whatever arrives within `wait`, for a check that expects nothing
    /// more (or only an end of file): running out of time here is no hang.
    pub fn read_for(&mut self, wait: Duration) -> Received {
        self.read(false, wait, false)
    }

    /// Reads whatever arrives within `wait`, up to a newline.
    pub fn read_line_for(&mut self, wait: Duration) -> Received {
        self.read(true, wait, false)
    }

    /// Sends `message`, and fails unless the very same bytes come back as one
    /// line. `hint` is the check's own, used when what came has none of its own.
    #[track_caller]
    pub fn expect_echo(&mut self, message: &[u8], hint: &str) {
        self.send(message);
        self.expect_line(message, hint);
    }

    /// The step this peer reports to.
    pub fn step(&self) -> &Step {
        &self.step
    }

    /// Reads one line and fails unless it is exactly `expected`.
    #[track_caller]
    pub fn expect_line(&mut self, expected: &[u8], hint: &str) {
        let reply = self.read_line();
        if reply.bytes != expected || reply.end != End::Newline {
            self.step
                .report()
                .expected(&show(expected))
                .got_received(expected, &reply)
                .hint(hint)
                .fail();
        }
    }

    /// Reads to end of file and fails unless exactly `expected` came before it
    /// (nothing else, and no reset).
    #[track_caller]
    pub fn expect_then_end(&mut self, expected: &[u8], hint: &str) {
        let rest = self.read_to_end();
        if rest.bytes != expected || rest.end != End::Closed {
            let what = match expected.is_empty() {
                true => "end of file: your code closes the connection".to_string(),
                false => format!("{} and then end of file", show(expected)),
            };
            let ending = hint_for_ending(expected, &rest);
            // Wrong bytes before the end, or no end at all: what came, then
            // the check's own hint, which knows what should end it.
            let observed = match rest.end {
                End::Closed | End::Newline | End::TimedOut => join_hints(&ending, hint),
                End::Failed(_) => ending,
            };
            self.step
                .report()
                .expected(&what)
                .got(&rest.describe())
                .hint(hint)
                .observed(&observed)
                .fail();
        }
    }

    /// Reads to end of file and fails unless nothing came before it.
    #[track_caller]
    pub fn expect_end(&mut self, hint: &str) {
        self.expect_then_end(b"", hint);
    }

    /// Waits `wait` and fails if anything arrives, or the connection ends:
    /// the student's code must still be waiting.
    #[track_caller]
    pub fn expect_silence(&mut self, wait: Duration, hint: &str) {
        let heard = self.read_for(wait);
        if !heard.bytes.is_empty() || heard.end != End::TimedOut {
            self.step
                .report()
                .expected(&format!(
                    "nothing for {} s: your code is still waiting",
                    wait.as_secs_f32()
                ))
                .got(&heard.describe())
                .hint(hint)
                .fail();
        }
    }

    /// Reads exactly `expected.len()` bytes within the peer's patience (a
    /// binary protocol's answer: no newline ends it) and fails unless they
    /// are `expected`. Bytes after them are kept for the next read.
    #[track_caller]
    pub fn expect_bytes(&mut self, expected: &[u8], hint: &str) {
        let got = self.read_exactly(expected.len());
        if got.bytes == expected {
            return;
        }
        let (described, observed) = match got.end {
            // All the bytes came, and they are wrong: how they differ, then the hint.
            None => (
                self.shown(&got.bytes),
                format!(
                    "{}. {hint}",
                    difference(expected, &got.bytes).unwrap_or_default()
                ),
            ),
            Some(end) => (
                self.describe_short(&got.bytes, end),
                self.short_hint(expected, &got.bytes, end, hint),
            ),
        };
        self.step
            .report()
            .expected(&format!(
                "{} ({} bytes)",
                self.shown(expected),
                expected.len()
            ))
            .got(&described)
            .hint(hint)
            .observed(&observed)
            .fail();
    }

    /// Reads until `count` bytes have come, or the patience runs out (a
    /// hang), or the connection ends. `end` is `None` when all came.
    fn read_exactly(&mut self, count: usize) -> Counted {
        let deadline = Instant::now() + self.patience;
        let mut bytes = std::mem::take(&mut self.pending);
        let end = loop {
            if bytes.len() >= count {
                self.pending = bytes.split_off(count);
                break None;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break Some(End::TimedOut);
            }
            let _ = self.stream.set_read_timeout(Some(left));
            let mut chunk = [0u8; 64 * 1024];
            match self.stream.read(&mut chunk) {
                Ok(0) => break Some(End::Closed),
                Ok(read) => bytes.extend_from_slice(&chunk[..read]),
                Err(error) if is_timeout(&error) => break Some(End::TimedOut),
                Err(error) => break Some(End::Failed(error.kind())),
            }
        };
        if end == Some(End::TimedOut) {
            self.step.note_waited_out();
        }
        self.record(&bytes, end.unwrap_or(End::Newline), self.patience);
        Counted { bytes, end }
    }

    /// What came before a read of a fixed count ended early.
    fn describe_short(&self, bytes: &[u8], end: End) -> String {
        let bytes = match bytes.is_empty() {
            true => "nothing".to_string(),
            false => format!("only {} ({} bytes)", self.shown(bytes), bytes.len()),
        };
        match end {
            End::Closed => format!("{bytes}, then end of file (you closed the connection)"),
            End::Failed(kind) => format!("{bytes}, then an error: {kind}"),
            End::TimedOut | End::Newline => {
                format!("{bytes}, then nothing more before the deadline")
            }
        }
    }

    /// The hint for a read of a fixed count that ended early.
    fn short_hint(&self, expected: &[u8], bytes: &[u8], end: End, hint: &str) -> String {
        match end {
            End::Failed(kind) => hint_for_kind(kind).unwrap_or(hint).to_string(),
            End::TimedOut if bytes.is_empty() => join_hints(NOTHING_CAME, hint),
            End::TimedOut | End::Newline => format!(
                "{} of the {} bytes came, then nothing: write all of them (write_all). {hint}",
                bytes.len(),
                expected.len()
            ),
            End::Closed => format!(
                "your code closed the connection {}: did it return, or panic, too early? {hint}",
                match bytes.is_empty() {
                    true => "without sending anything".to_string(),
                    false => format!("after {} of the {} bytes", bytes.len(), expected.len()),
                }
            ),
        }
    }

    /// Reads until end of file, waiting at most `wait` instead of the peer's
    /// patience: for an ending that is due later, such as a goodbye when a
    /// grace period ends. Running out of `wait` counts as a hang.
    pub fn read_to_end_within(&mut self, wait: Duration) -> Received {
        self.read(false, wait, true)
    }

    fn read(&mut self, stop_at_newline: bool, wait: Duration, a_hang: bool) -> Received {
        let deadline = Instant::now() + wait;
        let mut bytes = std::mem::take(&mut self.pending);
        let end = loop {
            let newline = bytes.iter().position(|&byte| byte == b'\n');
            if let (true, Some(at)) = (stop_at_newline, newline) {
                self.pending = bytes.split_off(at + 1);
                break End::Newline;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break End::TimedOut;
            }
            let _ = self.stream.set_read_timeout(Some(left));
            let mut chunk = [0u8; 64 * 1024];
            match self.stream.read(&mut chunk) {
                Ok(0) => break End::Closed,
                Ok(count) => bytes.extend_from_slice(&chunk[..count]),
                Err(error) if is_timeout(&error) => break End::TimedOut,
                Err(error) => break End::Failed(error.kind()),
            }
        };
        if end == End::TimedOut && a_hang {
            self.step.note_waited_out();
        }
        self.record(&bytes, end, wait);
        Received { bytes, end }
    }

    fn record(&self, bytes: &[u8], end: End, wait: Duration) {
        if !bytes.is_empty() {
            self.note(format!("you → check   {}", self.shown(bytes)));
        }
        match end {
            End::Newline => {}
            End::Closed => self.note("you     closed the connection (end of file)".to_string()),
            End::TimedOut => self.note(format!(
                "check   waited {} s, nothing more came",
                wait.as_secs_f32()
            )),
            End::Failed(kind) => self.note(format!("check   read failed: {kind}")),
        }
    }
}

/// What a read of a fixed count of bytes got: `end` is `None` when all came.
struct Counted {
    bytes: Vec<u8>,
    end: Option<End>,
}

/// The hint for a connection the check could not make.
fn hint_for_connect(error: &std::io::Error) -> &'static str {
    // EMFILE (24 on Linux and macOS) has no ErrorKind of its own in stable Rust.
    if error.raw_os_error() == Some(24) {
        return "too many open files: this process reached its limit of file descriptors \
                (every connection is one). Raise it for this shell, for instance \
                `ulimit -n 1024`, and run the checks again.";
    }
    hint_for_kind(error.kind()).unwrap_or("is your server listening?")
}

fn is_timeout(error: &std::io::Error) -> bool {
    matches!(
        error.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    )
}

/// The check's own listening socket, on 127.0.0.1 and a port the OS picks.
pub struct CheckServer {
    listener: TcpListener,
}

impl CheckServer {
    /// Binds 127.0.0.1:0.
    pub fn start() -> CheckServer {
        let listener =
            TcpListener::bind("127.0.0.1:0").expect("the check could not listen on 127.0.0.1");
        CheckServer { listener }
    }

    /// Where the student's client should connect.
    pub fn addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// Waits for the student's client to connect, at most [`DEADLINE`].
    #[track_caller]
    pub fn accept(&self, step: &Step) -> Peer {
        match self.accept_within(DEADLINE) {
            Some(stream) => {
                let from = stream
                    .peer_addr()
                    .map(|a| a.to_string())
                    .unwrap_or_default();
                step.transcript()
                    .add(format!("check   accepted a connection from you at {from}"));
                Peer::new(step, stream)
            }
            None => {
                step.note_waited_out();
                step.report()
                    .did(&format!(
                        "the check listened on {} and waited for your client",
                        self.addr()
                    ))
                    .expected("a connection")
                    .got(&format!(
                        "no connection within {} s",
                        DEADLINE.as_secs_f32()
                    ))
                    .hint("did your client dial the address it was given? (TcpStream::connect)")
                    .fail()
            }
        }
    }

    /// A connection, if one comes within `wait`. Accepting happens on a helper
    /// thread because `TcpListener::accept` itself has no deadline.
    pub fn accept_within(&self, wait: Duration) -> Option<TcpStream> {
        accept_within(&self.listener, wait)
    }
}

/// A connection on `listener`, if one comes within `wait`. Accepting happens
/// on a helper thread because `TcpListener::accept` itself has no deadline.
pub fn accept_within(listener: &TcpListener, wait: Duration) -> Option<TcpStream> {
    let listener = listener.try_clone().ok()?;
    let (sender, accepted) = mpsc::channel();
    thread::spawn(move || {
        let _ = sender.send(listener.accept());
    });
    match accepted.recv_timeout(wait) {
        Ok(Ok((stream, _))) => Some(stream),
        _ => None,
    }
}

/// A local address where nothing listens: bound by the check, then released.
/// (Another program could take the port in between; on a test machine that is rare.)
pub fn unused_address() -> SocketAddr {
    let listener =
        TcpListener::bind("127.0.0.1:0").expect("the check could not listen on 127.0.0.1");
    listener
        .local_addr()
        .expect("a bound listener has an address")
}

/// A connection with the check's [`Peer`] on one end and, on the other, the
/// socket to hand to the student's server code.
pub fn connected_pair(step: &Step) -> (Peer, TcpStream) {
    let server = CheckServer::start();
    let peer = Peer::connect(step, server.addr());
    let theirs = server
        .accept_within(DEADLINE)
        .expect("the check could not accept its own connection");
    (peer, theirs)
}

/// The check plays an echo server for the student's client: it accepts one
/// connection on its own thread and echoes every byte back until the client
/// closes its sending side, then closes. Returns the address to dial.
pub fn spawn_echo_server(step: &Step) -> SocketAddr {
    let server = CheckServer::start();
    let addr = server.addr();
    let transcript = step.transcript().clone();
    thread::spawn(move || {
        let Some(mut stream) = server.accept_within(DEADLINE) else {
            return;
        };
        transcript.add("check   echo server accepted your client".to_string());
        let _ = stream.set_read_timeout(Some(DEADLINE));
        let mut chunk = [0u8; 64 * 1024];
        while let Ok(count @ 1..) = stream.read(&mut chunk) {
            transcript.add(format!("you → check   {}", show(&chunk[..count])));
            if stream.write_all(&chunk[..count]).is_err() {
                break;
            }
            transcript.add(format!("check → you   {} (echo)", show(&chunk[..count])));
        }
        transcript.add("check   echo server closed the connection".to_string());
    });
    addr
}

/// An address that is in use: the check listens on it for as long as the
/// returned listener lives.
pub fn address_in_use() -> (TcpListener, String) {
    let listener =
        TcpListener::bind("127.0.0.1:0").expect("the check could not listen on 127.0.0.1");
    let addr = listener
        .local_addr()
        .expect("a bound listener has an address");
    (listener, addr.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expect_bytes_takes_exactly_its_count_from_pieces() {
        let step = Step::new("peer: unit test, exact bytes", "00-none");
        let (check, mut theirs) = connected_pair(&step);
        let mut check = check.binary();
        thread::spawn(move || {
            let _ = theirs.write_all(b"\x00\x00");
            thread::sleep(Duration::from_millis(20));
            let _ = theirs.write_all(b"\x00\x65\x00\x00\x00\x66");
        });
        check.expect_bytes(b"\x00\x00\x00\x65", "first");
        check.expect_bytes(b"\x00\x00\x00\x66", "second: kept from the first read");
        let short = check.read_exactly(4);
        assert_eq!(short.end, Some(End::Closed));
        assert!(
            check
                .describe_short(b"\x01", End::Closed)
                .contains(r#"b"\x01""#)
        );
    }

    #[test]
    fn read_to_end_within_waits_past_the_patience() {
        let step = Step::new("peer: unit test, a late ending", "00-none");
        let (check, mut theirs) = connected_pair(&step);
        let mut check = check.patience(Duration::from_millis(10));
        thread::spawn(move || {
            // Later than the peer's patience, as a goodbye when a grace ends.
            thread::sleep(Duration::from_millis(80));
            let _ = theirs.write_all(b"goodbye\n");
        });
        let received = check.read_to_end_within(DEADLINE);
        assert_eq!(received.bytes, b"goodbye\n");
        assert_eq!(received.end, End::Closed);
    }
}
