//! The checks of lesson 7, in the order you meet them: the first failure is
//! your next step. Run them with `cargo test -p lesson-07-timeouts`.
//!
//! Every limit here is a few dozen to a few hundred milliseconds, so that the
//! checks take seconds, not minutes. A check measures with
//! std::time::Instant when your code gave up: never before its limit, and
//! not much after it (the margin, LATE, is generous, for a busy machine).
//! The check plays the other side: a server that never answers for your
//! dial_within; silent, slow, quick and deaf clients for your server.

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use lesson_07_timeouts::{
    Client, Heard, IDLE_REPLY, Limits, MAX_MESSAGE, SLOW_REPLY, TOO_LONG_REPLY, dial_within,
    read_message_within, serve_concurrently_within, serve_connection_within,
};
use seesaw_checks::DEADLINE;
use seesaw_checks::bounded::{self, Running};
use seesaw_checks::bytes::{difference, show, show_list, thousands};
use seesaw_checks::peer::{End, PIECE_PAUSE, Received, unused_address};
use seesaw_checks::program;
use seesaw_checks::program::{expect_address_in_use_explained, run};
use seesaw_checks::report::{Report, Step, Transcript, hint_for_kind, io_error_kind};
use seesaw_checks::watched::WatchedServer;

const CHAPTER: &str = "07-timeouts";

/// How much later than its limit the check accepts that your code gave up:
/// a busy machine may wake a thread a little late, never this late.
const LATE: Duration = Duration::from_millis(250);

fn ms(millis: u64) -> Duration {
    Duration::from_millis(millis)
}

/// Limits in milliseconds.
fn limits(idle: u64, message: u64, write: u64) -> Limits {
    Limits {
        idle: ms(idle),
        message: ms(message),
        write: ms(write),
    }
}

/// `Limits { idle: 100 ms, message: 100 ms, write: 1000 ms }`, for reports.
fn show_limits(limits: &Limits) -> String {
    format!(
        "Limits {{ idle: {}, message: {}, write: {} }}",
        millis(limits.idle),
        millis(limits.message),
        millis(limits.write)
    )
}

fn millis(duration: Duration) -> String {
    format!("{} ms", duration.as_millis())
}

/// How a timed event compares with its limit, counted from `start`: `None`
/// if it came in time, or else what went wrong, in words.
fn timing(start: Instant, at: Instant, limit: Duration, early: Duration) -> Option<String> {
    let took = at.saturating_duration_since(start);
    if took + early < limit {
        Some(format!(
            "after {}, which is before the limit of {}: too early",
            millis(took),
            millis(limit)
        ))
    } else if took > limit + LATE {
        Some(format!(
            "after {}, which is later than the limit of {} (plus {} to spare): too late",
            millis(took),
            millis(limit),
            millis(LATE)
        ))
    } else {
        None
    }
}

/// A Heard as the reports show it: `Line(b"hi\n")`, bytes always escaped.
fn describe(heard: &Heard) -> String {
    match heard {
        Heard::Line(bytes) => format!("Line({})", show(bytes)),
        Heard::Tail(bytes) => format!("Tail({})", show(bytes)),
        Heard::End => "End".to_string(),
        Heard::TooLong => "TooLong".to_string(),
        Heard::Idle => "Idle".to_string(),
        Heard::TooSlow => "TooSlow".to_string(),
    }
}

fn describe_all(heard: &[Heard]) -> String {
    let shown: Vec<String> = heard.iter().map(describe).collect();
    format!("[{}]", shown.join(", "))
}

/// The hint for a read that timed out but came back as an error.
const TIMEOUT_IS_AN_ANSWER: &str = "a read that runs out of time fails with an error (WouldBlock \
     on Unix, TimedOut on Windows; is_timeout, given, knows both). Here that is no error but \
     the answer: Heard::Idle if nothing came, Heard::TooSlow if a message had begun.";

/// The hint for an error that says a timeout of zero was refused.
const ZERO_REFUSED: &str = "set_read_timeout(Some(Duration::ZERO)) is an error (invalid \
     input): a socket cannot wait for no time at all. When no time is left, you need no \
     read: the time is up, so the answer is Idle or TooSlow.";

// ---------------------------------------------------------------------------
// The check's own connections
// ---------------------------------------------------------------------------

/// One connection the check holds, named in the transcript, for steps that
/// hold several at once: the transcript says which one sent or read what.
struct Conn {
    stream: TcpStream,
    name: &'static str,
    transcript: Transcript,
    /// Bytes read past a newline, kept for the next read.
    pending: Vec<u8>,
}

impl Conn {
    /// Connects to `addr` as a client.
    fn connect(step: &Step, name: &'static str, addr: SocketAddr) -> Conn {
        match TcpStream::connect_timeout(&addr, DEADLINE) {
            Ok(stream) => {
                step.transcript()
                    .add(format!("{name:<8}check connected to you at {addr}"));
                Conn::new(step, name, stream)
            }
            Err(error) => step
                .report()
                .did(&format!("the check connected to your server at {addr}"))
                .got(&format!("an error: {error}"))
                .hint(hint_for_kind(error.kind()).unwrap_or("is your server listening?"))
                .fail(),
        }
    }

    fn new(step: &Step, name: &'static str, stream: TcpStream) -> Conn {
        Conn {
            stream,
            name,
            transcript: step.transcript().clone(),
            pending: Vec::new(),
        }
    }

    /// The check's own address: the one your server knows this client by.
    fn local_addr(&self) -> SocketAddr {
        self.stream
            .local_addr()
            .expect("a connected socket has an address")
    }

    /// A second handle on the same socket, for a thread that sends.
    fn handle(&self) -> TcpStream {
        self.stream
            .try_clone()
            .expect("the check could not clone its socket")
    }

    fn note(&self, text: &str) {
        self.transcript.add(format!("{:<8}{text}", self.name));
    }

    fn send(&mut self, bytes: &[u8]) {
        self.note(&format!("check → you   {}", show(bytes)));
        if let Err(error) = self.stream.write_all(bytes) {
            self.note(&format!("check could not send: {error}"));
        }
    }

    fn close_sending(&mut self) {
        self.note("check closed its sending side (shutdown Write)");
        let _ = self.stream.shutdown(Shutdown::Write);
    }

    /// Reads up to a newline, end of file, or until `wait` has passed.
    fn read_line(&mut self, wait: Duration) -> Received {
        self.read(true, wait)
    }

    /// Reads until end of file, or until `wait` has passed.
    fn read_for(&mut self, wait: Duration) -> Received {
        self.read(false, wait)
    }

    fn read(&mut self, stop_at_newline: bool, wait: Duration) -> Received {
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
        if !bytes.is_empty() {
            self.note(&format!("you → check   {}", show(&bytes)));
        }
        match end {
            End::Newline => {}
            End::Closed => self.note("you closed the connection (end of file)"),
            End::TimedOut => {
                self.note(&format!("check waited {}, nothing more came", millis(wait)))
            }
            End::Failed(kind) => self.note(&format!("check's read failed: {kind}")),
        }
        Received { bytes, end }
    }
}

fn is_timeout(error: &std::io::Error) -> bool {
    matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
}

/// Adds what the check read where `expected` should have come, after a
/// read that waited `waited` at most; `silence` is the hint when nothing
/// came at all in that time.
fn got_within(
    report: Report,
    expected: &[u8],
    received: &Received,
    waited: Duration,
    silence: &str,
) -> Report {
    if received.end != End::TimedOut {
        return report.got_received(expected, received);
    }
    let got = format!(
        "{} and then nothing more for {}",
        show(&received.bytes),
        millis(waited)
    );
    match received.bytes.is_empty() {
        true => report.got(&got).observed(silence),
        false => report.got(&got).observed(&format!(
            "{} came, but no newline after it. {}",
            show(&received.bytes),
            difference(expected, &received.bytes).unwrap_or_default()
        )),
    }
}

/// A fresh connection on 127.0.0.1: the check's end, named `name`, and the
/// other end for your code.
fn conn_pair(step: &Step, name: &'static str) -> (Conn, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("the check could not listen");
    let addr = listener
        .local_addr()
        .expect("a bound listener has an address");
    let ours = TcpStream::connect(addr).expect("the check could not connect to itself");
    let (theirs, _) = listener
        .accept()
        .expect("the check could not accept its own connection");
    (Conn::new(step, name, ours), theirs)
}

/// A slow client: sends one byte every PIECE_PAUSE, on a thread of its own,
/// until told to stop (or until `most` bytes). The time and outcome of each
/// send come back, so the check knows when the first byte went, and whether
/// a later one failed.
struct Trickle {
    stop: mpsc::Sender<()>,
    sent: mpsc::Receiver<(Instant, Result<(), ErrorKind>)>,
    /// When the first byte went.
    first: Instant,
    /// How many sends the check has looked at.
    seen: std::cell::Cell<usize>,
}

impl Trickle {
    fn start(conn: &Conn, most: usize) -> Trickle {
        let mut stream = conn.handle();
        conn.note(&format!(
            "check → you   b\"x\" every {}, one byte at a time, no newline (a slow client)",
            millis(PIECE_PAUSE)
        ));
        let (stop, stopped) = mpsc::channel();
        let (report, sent) = mpsc::channel();
        thread::spawn(move || {
            for _ in 0..most {
                let outcome = stream.write_all(b"x").map_err(|error| error.kind());
                let failed = outcome.is_err();
                if report.send((Instant::now(), outcome)).is_err() || failed {
                    return;
                }
                // The pause between bytes: a stop ends it at once.
                if !matches!(
                    stopped.recv_timeout(PIECE_PAUSE),
                    Err(mpsc::RecvTimeoutError::Timeout)
                ) {
                    return;
                }
            }
        });
        let first = match sent.recv_timeout(DEADLINE) {
            Ok((at, _)) => at,
            Err(_) => Instant::now(),
        };
        Trickle {
            stop,
            sent,
            first,
            seen: std::cell::Cell::new(1),
        }
    }

    /// Lets `count` more bytes go after `since`, and returns the first
    /// failure among them.
    fn sends_after(&self, since: Instant, count: usize) -> Option<ErrorKind> {
        let mut after = 0;
        while after < count {
            let next = self.sent.recv_timeout(DEADLINE);
            self.seen.set(self.seen.get() + 1);
            match next {
                Ok((_, Err(kind))) => return Some(kind),
                Ok((at, Ok(()))) => after += usize::from(at > since),
                Err(_) => return None,
            }
        }
        None
    }

    /// Stops it, and says how many bytes it sent.
    fn stop(&self) -> usize {
        let _ = self.stop.send(());
        self.seen.get() + self.sent.try_iter().count()
    }
}

/// A client that never reads: sends lines of MAX_MESSAGE bytes on a thread
/// of its own, up to 64 MiB, until a send fails. Your echoes fill its
/// buffers, then yours.
/// Returns when the last line went out, as it changes: while your server
/// reads, the lines go out; once it stops reading, they stop.
fn flood(conn: &Conn) -> Arc<Mutex<Instant>> {
    let mut stream = conn.handle();
    conn.note(
        "check → you   b\"xxx...x\\n\" (64 KiB) again and again, up to 64 MiB, never reading",
    );
    let last_sent = Arc::new(Mutex::new(Instant::now()));
    let progress = last_sent.clone();
    thread::spawn(move || {
        // A stuck server must not keep this thread for ever.
        let _ = stream.set_write_timeout(Some(4 * DEADLINE));
        let line = [vec![b'x'; MAX_MESSAGE - 1], b"\n".to_vec()].concat();
        for _ in 0..1024 {
            if stream.write_all(&line).is_err() {
                return;
            }
            *progress.lock().unwrap() = Instant::now();
        }
    });
    last_sent
}

/// Something of your code running on a thread of its own; what it returns
/// comes back with the time it returned.
struct Timed<T> {
    call: String,
    started: Instant,
    result: mpsc::Receiver<(T, Instant)>,
    /// Kept so that the thread counts as your code until it ends.
    _running: Running<()>,
}

fn start_timed<T: Send + 'static>(
    step: &Step,
    call: &str,
    code: impl FnOnce() -> T + Send + 'static,
) -> Timed<T> {
    let (sender, result) = mpsc::channel();
    let started = Instant::now();
    let running = bounded::start(step, call, move || {
        let value = code();
        let _ = sender.send((value, Instant::now()));
    });
    Timed {
        call: call.to_string(),
        started,
        result,
        _running: running,
    }
}

impl<T> Timed<T> {
    /// What it returned, if it returns before `deadline`. A panic fails the
    /// check (the report shows it); not returning is for the caller to judge.
    fn returned_by(&self, step: &Step, deadline: Instant) -> Option<(T, Instant)> {
        let wait = deadline.saturating_duration_since(Instant::now());
        match self.result.recv_timeout(wait) {
            Ok(returned) => Some(returned),
            Err(mpsc::RecvTimeoutError::Timeout) => None,
            Err(mpsc::RecvTimeoutError::Disconnected) => step
                .report()
                .expected(&format!("{} to return", self.call))
                .got("it panicked")
                .fail(),
        }
    }

    /// What it returned, waiting until `deadline`; fails as a hang if it
    /// does not return by then.
    fn finish_by(&self, step: &Step, deadline: Instant, hang_hint: &str) -> (T, Instant) {
        match self.returned_by(step, deadline) {
            Some(returned) => returned,
            None => {
                step.note_waited_out();
                step.report()
                    .expected(&format!("{} to return", self.call))
                    .got(&format!(
                        "still running after {}: it hangs",
                        millis(self.started.elapsed())
                    ))
                    .observed(hang_hint)
                    .fail()
            }
        }
    }
}

// ---------------------------------------------------------------------------
// dial_within (steps 1 to 3): the check plays the server.
// ---------------------------------------------------------------------------

const DIAL_HANGS: &str = "dial_within must come back within its timeout whatever the server \
     does: give each connection attempt that timeout (TcpStream::connect_timeout). A plain \
     connect may wait minutes for a server that never answers.";

/// Calls your dial_within(addr, timeout) on a thread of its own.
fn start_dial(step: &Step, addr: &str, timeout: Duration) -> Timed<anyhow::Result<TcpStream>> {
    let call = format!("dial_within({addr:?}, {})", millis(timeout));
    let addr = addr.to_string();
    start_timed(step, &call, move || dial_within(&addr, timeout))
}

/// Accepts one connection on `listener`, waiting at most DEADLINE.
fn accept_within(listener: &TcpListener) -> Option<TcpStream> {
    let listener = listener.try_clone().ok()?;
    let (sender, accepted) = mpsc::channel();
    thread::spawn(move || {
        let _ = sender.send(listener.accept());
    });
    match accepted.recv_timeout(DEADLINE) {
        Ok(Ok((stream, _))) => Some(stream),
        _ => None,
    }
}

/// Dials `text` with your dial_within while the check listens on
/// `listener`, and fails unless the connection reaches the listener and
/// carries a line each way.
fn dial_and_talk(step: &Step, listener: &TcpListener, text: &str, refused_hint: Option<&str>) {
    let listening = listener
        .local_addr()
        .expect("a bound listener has an address");
    step.transcript()
        .add(format!("check   listening on {listening}"));
    let dialling = start_dial(step, text, ms(1000));
    let (result, _) = dialling.finish_by(step, Instant::now() + DEADLINE, DIAL_HANGS);
    let connection = match result {
        Ok(connection) => connection,
        Err(error) => {
            let report = step
                .report()
                .did(&format!(
                    "called dial_within({text:?}, 1000 ms); the check listens on {listening}"
                ))
                .expected("a connection")
                .got_error(&error);
            match (io_error_kind(&error), refused_hint) {
                (Some(ErrorKind::ConnectionRefused), Some(hint)) => report.observed(hint).fail(),
                _ => report.fail(),
            }
        }
    };
    let did = format!("called dial_within({text:?}, 1000 ms); the check listens on {listening}");
    if connection.peer_addr().ok() != Some(listening) {
        step.report()
            .did(&did)
            .expected(&format!("a connection to {listening}"))
            .got(&match connection.peer_addr() {
                Ok(addr) => format!("a connection to {addr}"),
                Err(error) => format!("a connection to nowhere ({error})"),
            })
            .hint("dial the address you are given, not a fixed one like 127.0.0.1:5555.")
            .fail();
    }
    let Some(mut accepted) = accept_within(listener) else {
        step.report()
            .did(&did)
            .expected("the check's listener to accept your connection")
            .got("no connection came")
            .fail()
    };
    let ours = connection
        .local_addr()
        .expect("a connected socket has an address");
    step.transcript()
        .add(format!("check   accepted a connection from you at {ours}"));
    expect_both_ways(step, &did, &mut accepted, connection);
}

/// The connection dial_within returned must carry a line each way, and wait
/// for it (no tiny timeout, not non-blocking).
fn expect_both_ways(step: &Step, did: &str, accepted: &mut TcpStream, connection: TcpStream) {
    let (mut reader, mut writer) = (BufReader::new(&connection), &connection);
    let to_you = b"from the check to you\n";
    step.transcript()
        .add(format!("check → you   {} (a little late)", show(to_you)));
    let late = accepted
        .try_clone()
        .expect("the check could not clone its socket");
    thread::spawn(move || {
        thread::sleep(PIECE_PAUSE);
        let mut late = late;
        let _ = late.write_all(b"from the check to you\n");
    });
    let mut line = Vec::new();
    let read = reader.read_until(b'\n', &mut line);
    if line != to_you {
        let got = match read {
            Err(error) if is_timeout(&error) => {
                "the read gave up before the check's bytes came: the connection has a read \
                 timeout, or is non-blocking. Return the connection as connect gave it."
                    .to_string()
            }
            Err(error) => format!("an error: {error}"),
            Ok(_) => show(&line),
        };
        step.report()
            .did(did)
            .did("then the check wrote a line to you, and read it from the connection you returned")
            .expected(&format!("to read {}", show(to_you)))
            .got(&got)
            .hint("return the connection as TcpStream::connect_timeout gave it: set nothing on it, read and write nothing.")
            .fail();
    }
    let from_you = b"from you to the check\n";
    step.transcript().add(format!(
        "you → check   {} (the check wrote it on your connection)",
        show(from_you)
    ));
    let _ = writer.write_all(from_you);
    let _ = accepted.set_read_timeout(Some(DEADLINE));
    let mut echo = Vec::new();
    let _ = BufReader::new(accepted).read_until(b'\n', &mut echo);
    if echo != from_you {
        step.report()
            .did(did)
            .expected(&format!("the check's end to read {}", show(from_you)))
            .got(&show(&echo))
            .hint("return the connection as connect gave it: do not shut it down or close it.")
            .fail();
    }
}

/// The addresses localhost stands for on this machine.
fn localhost_addresses() -> Vec<IpAddr> {
    let mut found: Vec<IpAddr> = Vec::new();
    let resolved = ("localhost", 0)
        .to_socket_addrs()
        .expect("this machine cannot look up localhost");
    for addr in resolved {
        if !found.contains(&addr.ip()) {
            found.push(addr.ip());
        }
    }
    found
}

/// A listener on `ip`, at a port where nothing listened on the `others` a
/// moment ago: a dial to localhost at that port reaches only this one.
fn listen_only_on(ip: IpAddr, others: &[IpAddr]) -> TcpListener {
    for _ in 0..20 {
        let listener = TcpListener::bind((ip, 0)).expect("the check could not listen");
        let port = listener
            .local_addr()
            .expect("a bound listener has an address")
            .port();
        // Each test listener is dropped at once: it only proves the port free.
        if others
            .iter()
            .all(|other| TcpListener::bind((*other, port)).is_ok())
        {
            return listener;
        }
    }
    panic!("the check found no port that is free on every address of localhost")
}

#[test]
fn step_01_dial_within_connects() {
    let step = Step::new(
        "step 1: dial_within connects to a server that answers (IPv4, IPv6, by name), and the connection carries bytes both ways",
        CHAPTER,
    );
    let listener = TcpListener::bind("127.0.0.1:0").expect("the check could not listen");
    let addr = listener
        .local_addr()
        .expect("a bound listener has an address");
    dial_and_talk(&step, &listener, &addr.to_string(), None);
    // Over IPv6, where this machine has it.
    if let Ok(listener) = TcpListener::bind("[::1]:0") {
        let addr = listener
            .local_addr()
            .expect("a bound listener has an address");
        dial_and_talk(&step, &listener, &addr.to_string(), None);
    }
    // By name: a listener on each address of localhost in turn, and none on
    // the others. dial_within must try them all until one answers.
    let addresses = localhost_addresses();
    step.transcript()
        .add(format!("check   localhost stands for {addresses:?} here"));
    for (index, ip) in addresses.iter().enumerate() {
        let mut others = addresses.clone();
        others.remove(index);
        let listener = listen_only_on(*ip, &others);
        let port = listener
            .local_addr()
            .expect("a bound listener has an address")
            .port();
        let refused = format!(
            "localhost stands for {addresses:?} here, and the check listens on {ip} only: \
             your dial_within did not try every address. Resolve the name \
             (to_socket_addrs), then try each address in turn until one answers."
        );
        dial_and_talk(
            &step,
            &listener,
            &format!("localhost:{port}"),
            Some(&refused),
        );
    }
}

/// Fails unless `error` has an io::Error of `kind` inside and names `addr`.
fn expect_error_naming(step: &Step, did: &str, error: &anyhow::Error, addr: &str, kind: ErrorKind) {
    let text = format!("{error:#}");
    if io_error_kind(error) != Some(kind) {
        step.report()
            .did(did)
            .expected(&format!(
                "an error with the OS's io::Error of kind {kind:?} inside (the program's advice depends on it)"
            ))
            .got(&format!("an error: {text}"))
            .hint(
                "return the error connect_timeout gave, with .with_context(...) around it: \
                 context keeps the io::Error inside. Do not replace it with a new error \
                 (anyhow!, bail!, a String), which loses its kind.",
            )
            .fail();
    }
    if !text.contains(addr) {
        step.report()
            .did(did)
            .expected(&format!("an error that names the address, {addr}"))
            .got(&format!("an error: {text}"))
            .hint("give the error context that names the address dialled: .with_context(|| format!(\"could not connect to {addr}\")).")
            .fail();
    }
}

#[test]
fn step_02_dial_within_explains_a_refused_connection() {
    let step = Step::new(
        "step 2: dial_within returns an error that names the address when nothing listens there",
        CHAPTER,
    );
    let addr = unused_address().to_string();
    step.transcript()
        .add(format!("check   nothing listens on {addr}"));
    let dialling = start_dial(&step, &addr, ms(1000));
    let deadline = dialling.started + LATE;
    let did = format!("called dial_within({addr:?}, 1000 ms), where nothing listens");
    let (result, _) = dialling.finish_by(
        &step,
        deadline,
        "a refused connection comes back at once: return its error, do not try again and again.",
    );
    match result {
        Ok(_) => step
            .report()
            .did(&did)
            .expected("an error: connection refused")
            .got("a connection")
            .fail(),
        Err(error) => expect_error_naming(&step, &did, &error, &addr, ErrorKind::ConnectionRefused),
    }
    // A malformed address: an error that names it, never a panic.
    let bad = "not an address";
    let dialling = start_dial(&step, bad, ms(1000));
    let (result, _) = dialling.finish_by(&step, Instant::now() + DEADLINE, DIAL_HANGS);
    let did = format!("called dial_within({bad:?}, 1000 ms)");
    match result {
        Ok(_) => step
            .report()
            .did(&did)
            .expected("an error")
            .got("a connection")
            .fail(),
        Err(error) if !format!("{error:#}").contains(bad) => step
            .report()
            .did(&did)
            .expected(&format!("an error that names the address, {bad:?}"))
            .got(&format!("an error: {error:#}"))
            .hint("resolving the address can fail too: give that error context that names it.")
            .fail(),
        Err(_) => {}
    }
}

/// A listener on 127.0.0.1 that never answers: the check fills its queue of
/// connections waiting to be accepted, and never accepts. The OS then drops
/// every new connection request without a word, as a server that is down
/// behind a firewall would: a connect waits, and waits. Returns the
/// listener, its address, and the connections that fill it (keep them).
/// `None` where this OS refuses instead (then a connect fails at once).
fn never_answering() -> Option<(TcpListener, SocketAddr, Vec<TcpStream>)> {
    let listener = TcpListener::bind("127.0.0.1:0").expect("the check could not listen");
    let addr = listener
        .local_addr()
        .expect("a bound listener has an address");
    let mut queued = Vec::new();
    // Linux queues backlog + 1 = 129 with std's backlog of 128.
    for _ in 0..1000 {
        match TcpStream::connect_timeout(&addr, ms(50)) {
            Ok(stream) => queued.push(stream),
            Err(error) if is_timeout(&error) => return Some((listener, addr, queued)),
            Err(_) => return None,
        }
    }
    None
}

#[test]
fn step_03_dial_within_gives_up_on_a_server_that_never_answers() {
    let step = Step::new(
        "step 3: dial_within gives up after its timeout on a server that never answers, with an error that names the address",
        CHAPTER,
    );
    let Some((_listener, addr, queued)) = never_answering() else {
        eprintln!(
            "note: this OS refuses connections to a full listener instead of ignoring them; step 3 cannot make a server that never answers here."
        );
        return;
    };
    step.transcript().add(format!(
        "check   made {addr} a server that never answers: its queue holds {} connections nobody accepts",
        queued.len()
    ));
    let timeout = ms(60);
    let dialling = start_dial(&step, &addr.to_string(), timeout);
    let did = format!("called dial_within(\"{addr}\", 60 ms) on a server that never answers");
    let (result, at) = dialling.finish_by(&step, dialling.started + timeout + LATE, DIAL_HANGS);
    if let Some(problem) = timing(dialling.started, at, timeout, Duration::ZERO) {
        step.report()
            .did(&did)
            .expected("it to give up after 60 ms")
            .got(&format!("it returned {problem}"))
            .hint("give connect_timeout the whole timeout you are given, for each address.")
            .fail();
    }
    match result {
        Ok(_) => step
            .report()
            .did(&did)
            .expected("an error: connection timed out")
            .got("a connection")
            .fail(),
        Err(error) => {
            expect_error_naming(&step, &did, &error, &addr.to_string(), ErrorKind::TimedOut)
        }
    }
}

// ---------------------------------------------------------------------------
// read_message_within (steps 4 to 8): the check plays the client.
// ---------------------------------------------------------------------------

/// Your read_message_within, called again and again on one connection (one
/// BufReader) until it returns anything but a Line or a Tail. Each answer
/// comes back with the time it came.
struct Reading {
    call: String,
    started: Instant,
    heard: mpsc::Receiver<(anyhow::Result<Heard>, Instant)>,
    _running: Running<()>,
}

fn start_reading(step: &Step, name: &'static str, limits: Limits) -> (Conn, Reading) {
    let (conn, connection) = conn_pair(step, name);
    // A second handle keeps the socket open until a panic has been recorded.
    let keep = connection
        .try_clone()
        .expect("the check could not clone its socket");
    let call = format!(
        "read_message_within(&mut reader, &{})",
        show_limits(&limits)
    );
    let (sender, heard) = mpsc::channel();
    let started = Instant::now();
    let running = bounded::start_with(step, &call, keep, move |_| {
        let mut reader = BufReader::new(&connection);
        loop {
            let outcome = read_message_within(&mut reader, &limits);
            let more = matches!(outcome, Ok(Heard::Line(_) | Heard::Tail(_)));
            if sender.send((outcome, Instant::now())).is_err() || !more {
                return;
            }
        }
    });
    let reading = Reading {
        call,
        started,
        heard,
        _running: running,
    };
    (conn, reading)
}

/// What the calls returned, in order, and how the last one ended.
struct Answers {
    heard: Vec<Heard>,
    /// The time each came.
    times: Vec<Instant>,
    error: Option<anyhow::Error>,
    /// Still waiting for an answer when the check stopped waiting.
    waiting: bool,
}

impl Reading {
    /// The next answer, waiting until `deadline`.
    fn next(&self, step: &Step, deadline: Instant) -> Option<(anyhow::Result<Heard>, Instant)> {
        let wait = deadline.saturating_duration_since(Instant::now());
        match self.heard.recv_timeout(wait) {
            Ok(answer) => Some(answer),
            Err(mpsc::RecvTimeoutError::Timeout) => None,
            Err(mpsc::RecvTimeoutError::Disconnected) => step
                .report()
                .expected(&format!("{} to return", self.call))
                .got("it panicked")
                .fail(),
        }
    }

    /// Every answer until the first that is not a Line or a Tail, waiting
    /// until `deadline` at most.
    fn all(&self, step: &Step, deadline: Instant) -> Answers {
        let mut answers = Answers {
            heard: Vec::new(),
            times: Vec::new(),
            error: None,
            waiting: false,
        };
        loop {
            match self.next(step, deadline) {
                None => {
                    answers.waiting = true;
                    return answers;
                }
                Some((Err(error), _)) => {
                    answers.error = Some(error);
                    return answers;
                }
                Some((Ok(heard), at)) => {
                    let more = matches!(heard, Heard::Line(_) | Heard::Tail(_));
                    answers.heard.push(heard);
                    answers.times.push(at);
                    if !more {
                        return answers;
                    }
                }
            }
        }
    }
}

/// Fails unless `answers` are exactly `expected`.
fn expect_answers(step: &Step, call: &str, did: &str, answers: Answers, expected: &[Heard]) {
    if answers.error.is_none() && !answers.waiting && answers.heard == expected {
        return;
    }
    let report = step
        .report()
        .did(did)
        .did(&format!("called {call} again and again"))
        .expected(&describe_all(expected));
    if let Some(error) = answers.error {
        let report = report
            .got(&format!("{}, then:", describe_all(&answers.heard)))
            .got_error(&error);
        let text = format!("{error:#}");
        if text.contains("zero") || io_error_kind(&error) == Some(ErrorKind::InvalidInput) {
            report.observed(ZERO_REFUSED).fail();
        }
        if io_error_kind(&error)
            .is_some_and(|kind| matches!(kind, ErrorKind::WouldBlock | ErrorKind::TimedOut))
        {
            report.observed(TIMEOUT_IS_AN_ANSWER).fail();
        }
        report
            .hint("read_message_within returns an error only when reading fails.")
            .fail();
    }
    if answers.waiting {
        step.note_waited_out();
        report
            .got(&format!(
                "{}, then no answer: it still waits",
                describe_all(&answers.heard)
            ))
            .observed(
                "the check sent everything, then closed its sending side: your function \
                 waits for something that will not come. End of file is a read of 0 bytes.",
            )
            .fail();
    }
    let hint = hint_for_heard(expected, &answers.heard);
    report
        .got(&describe_all(&answers.heard))
        .observed(&hint)
        .fail();
}

/// The hint for the first answer that differs from the one expected.
fn hint_for_heard(expected: &[Heard], got: &[Heard]) -> String {
    let Some((number, (want, have))) = expected
        .iter()
        .zip(got)
        .enumerate()
        .find(|(_, (want, have))| want != have)
    else {
        return match got.len() < expected.len() {
            true => "it stopped too early: more messages came after.".to_string(),
            false => "it went on after the last answer expected.".to_string(),
        };
    };
    let which = format!("call {} returned {}: ", number + 1, describe(have));
    let why = match (want, have) {
        (Heard::Line(want) | Heard::Tail(want), Heard::Line(have) | Heard::Tail(have))
            if want != have =>
        {
            format!(
                "{}. A message may come in pieces: keep every byte until its newline, \
                 exactly as it came, and keep bytes read past the newline for the next call \
                 (one BufReader for the whole connection).",
                difference(want, have).unwrap_or_default()
            )
        }
        (Heard::Line(_), Heard::Tail(_)) => {
            "these bytes end with a newline: that makes them a Line.".to_string()
        }
        (Heard::Tail(_), Heard::Line(_)) => {
            "these bytes have no newline after them: before end of file, they are a Tail."
                .to_string()
        }
        (Heard::End, Heard::Line(bytes) | Heard::Tail(bytes)) if bytes.is_empty() => {
            "a read of 0 bytes means end of file: that is End, not an empty message.".to_string()
        }
        (Heard::Line(_) | Heard::Tail(_), Heard::End) => {
            "End came too early: there were still bytes.".to_string()
        }
        (Heard::Line(_) | Heard::Tail(_) | Heard::End, Heard::Idle | Heard::TooSlow) => {
            "the bytes came well within the limits (the check says when in the transcript). \
             Does your function give up after the first read, or wait less than the time left?"
                .to_string()
        }
        (Heard::TooLong, Heard::Line(bytes) | Heard::Tail(bytes)) if bytes.len() > MAX_MESSAGE => {
            format!(
                "{} bytes came back as one message, more than MAX_MESSAGE ({}). Stop reading \
                 at the limit, and call that TooLong.",
                thousands(bytes.len()),
                thousands(MAX_MESSAGE)
            )
        }
        (Heard::TooLong, _) => format!(
            "at {} bytes with no newline in sight, the message is too long, whatever comes after.",
            thousands(MAX_MESSAGE)
        ),
        (Heard::Line(bytes), Heard::TooLong) if bytes.len() == MAX_MESSAGE => format!(
            "this message is exactly MAX_MESSAGE ({}) bytes, newline included, and that is \
             allowed. An off-by-one?",
            thousands(MAX_MESSAGE)
        ),
        (Heard::Line(_) | Heard::Tail(_), Heard::TooLong) => format!(
            "this message is shorter than MAX_MESSAGE ({}): the limit is per message.",
            thousands(MAX_MESSAGE)
        ),
        _ => {
            "read the step's title again: it says what read_message_within must return.".to_string()
        }
    };
    which + &why
}

#[test]
fn step_04_read_message_within_reads_whole_messages() {
    let step = Step::new(
        "step 4: read_message_within returns each message, bytes exact, even in pieces, then the tail and End",
        CHAPTER,
    );
    let limits = limits(1000, 1000, 1000);
    let (mut client, reading) = start_reading(&step, "client", limits);
    let lines: [&[u8]; 4] = [
        b"hello\n",
        b"  spaces at either end, a tab\t and a carriage return \r\n",
        b"\xff\x00 not UTF-8 \xfe\n",
        b"\n",
    ];
    client.send(&lines.concat());
    // Three pieces with pauses: one read is not enough. The last piece
    // holds the start of the next message too.
    for (index, piece) in [b"see".as_slice(), b"saw ", b"up and down\nsec"]
        .iter()
        .enumerate()
    {
        if index > 0 {
            thread::sleep(PIECE_PAUSE);
        }
        client.send(piece);
    }
    client.send(b"ond\nthe last words \xfe");
    client.close_sending();
    let mut expected: Vec<Heard> = lines.iter().map(|l| Heard::Line(l.to_vec())).collect();
    expected.extend([
        Heard::Line(b"seesaw up and down\n".to_vec()),
        Heard::Line(b"second\n".to_vec()),
        Heard::Tail(b"the last words \xfe".to_vec()),
        Heard::End,
    ]);
    let answers = reading.all(&step, Instant::now() + DEADLINE);
    let did = "the check sent four lines at once, then a line in three pieces, then a line \
               and a tail, and closed its sending side (the limits were 1000 ms: no hurry)";
    expect_answers(&step, &reading.call, did, answers, &expected);
}

#[test]
fn step_05_read_message_within_stops_at_max_message() {
    let step = Step::new(
        "step 5: read_message_within accepts a message of MAX_MESSAGE bytes, and stops reading at MAX_MESSAGE when no newline comes",
        CHAPTER,
    );
    let limits = limits(1000, 1000, 1000);
    let (client, connection) = conn_pair(&step, "client");
    let at_limit = [vec![b'x'; MAX_MESSAGE - 1], b"\n".to_vec()].concat();
    let flood = vec![b'y'; MAX_MESSAGE + 100_000];
    let sent = [at_limit.clone(), at_limit.clone(), flood.clone()].concat();
    let call = format!(
        "read_message_within(&mut reader, &{}) three times",
        show_limits(&limits)
    );
    // Your function reads three times; then the check's code reads what is
    // left, to count the bytes your code took.
    let running = bounded::start(&step, &call, move || {
        let mut reader = BufReader::new(&connection);
        let mut heard = Vec::new();
        for _ in 0..3 {
            match read_message_within(&mut reader, &limits) {
                Ok(answer) => heard.push(answer),
                Err(error) => return (heard, Some(error), 0),
            }
        }
        let mut rest = Vec::new();
        let _ = reader.read_to_end(&mut rest);
        (heard, None, rest.len())
    });
    client.note(&format!(
        "check → you   {} twice, then {} and end of file (sent in the background)",
        show(&at_limit),
        show(&flood)
    ));
    let mut stream = client.handle();
    thread::spawn(move || {
        let _ = stream.write_all(&sent);
        let _ = stream.shutdown(Shutdown::Write);
    });
    let (heard, error, left) = running.finish(
        &step,
        "the check sent everything and closed its sending side: does your function stop at \
         MAX_MESSAGE bytes, and at end of file?",
    );
    let expected = [
        Heard::Line(at_limit.clone()),
        Heard::Line(at_limit),
        Heard::TooLong,
    ];
    let answers = Answers {
        times: Vec::new(),
        waiting: false,
        heard,
        error,
    };
    let did = "the check sent two messages of exactly MAX_MESSAGE bytes, newline included, \
               then MAX_MESSAGE + 100,000 bytes without a newline, and closed its sending side";
    let matched = answers.error.is_none() && answers.heard == expected;
    expect_answers(&step, &call, did, answers, &expected);
    let taken = flood.len() - left;
    // Reading one byte past the limit, to see whether a newline follows, is fine.
    if matched && taken > MAX_MESSAGE + 1 {
        step.report()
            .did(did)
            .expected(&format!(
                "TooLong after taking at most MAX_MESSAGE = {} bytes of the last message",
                thousands(MAX_MESSAGE)
            ))
            .got(&format!("TooLong after taking {} bytes", thousands(taken)))
            .hint(&format!(
                "your code read {} bytes before it decided: a client that sends a gigabyte \
                 without a newline would fill the server's memory first. Stop taking bytes \
                 at MAX_MESSAGE, newline or not.",
                thousands(taken)
            ))
            .fail();
    }
}

/// Fails with the error your read_message_within returned, with the hint
/// that fits it.
fn fail_with_error(step: &Step, did: &str, call: &str, error: &anyhow::Error) -> ! {
    let report = step
        .report()
        .did(did)
        .expected(&format!("{call} to return an answer"))
        .got_error(error);
    let zero = format!("{error:#}").contains("zero")
        || io_error_kind(error) == Some(ErrorKind::InvalidInput);
    match io_error_kind(error) {
        _ if zero => report.observed(ZERO_REFUSED).fail(),
        Some(ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
            report.observed(TIMEOUT_IS_AN_ANSWER).fail()
        }
        _ => report.fail(),
    }
}

#[test]
fn step_06_silence_is_idle() {
    let step = Step::new(
        "step 6: read_message_within returns Idle when nothing comes within limits.idle, and not before",
        CHAPTER,
    );
    let limits = limits(60, 1000, 1000);
    let (mut client, reading) = start_reading(&step, "client", limits);
    client.send(b"hi\n");
    client.note("check then says nothing, and waits");
    let did = "the check sent b\"hi\\n\", then nothing";
    let answers = reading.all(&step, Instant::now() + limits.idle + LATE);
    if let Some(error) = &answers.error {
        fail_with_error(&step, did, &reading.call, error);
    }
    let expected = [Heard::Line(b"hi\n".to_vec()), Heard::Idle];
    if answers.waiting && answers.heard.len() == 1 && answers.heard[0] == expected[0] {
        step.note_waited_out();
        step.report()
            .did(did)
            .did(&format!("called {}", reading.call))
            .expected(&format!(
                "Idle, {} after Line(b\"hi\\n\")",
                millis(limits.idle)
            ))
            .got(&format!(
                "Line(b\"hi\\n\"), then no answer for {}: it still waits",
                millis(limits.idle + LATE)
            ))
            .hint(
                "a read waits for ever unless the socket has a read timeout: before each \
                 read, set it to the time left until the deadline (limits.idle from the call).",
            )
            .fail();
    }
    if answers.heard != expected {
        let hint = hint_for_heard(&expected, &answers.heard);
        step.report()
            .did(did)
            .did(&format!("called {} again and again", reading.call))
            .expected(&describe_all(&expected))
            .got(&describe_all(&answers.heard))
            .observed(&match answers.heard.get(1) {
                Some(Heard::TooSlow) => "nothing at all came after the first message: that \
                     is Idle. TooSlow is for a message that has begun."
                    .to_string(),
                Some(Heard::End) => "a timeout is not end of file: End only when a read \
                     gives 0 bytes."
                    .to_string(),
                _ => hint,
            })
            .fail();
    }
    if let Some(problem) = timing(answers.times[0], answers.times[1], limits.idle, ms(0)) {
        step.report()
            .did(did)
            .did(&format!("called {} again and again", reading.call))
            .expected(&format!(
                "Idle {} after Line(b\"hi\\n\")",
                millis(limits.idle)
            ))
            .got(&format!("Idle {problem}"))
            .hint(
                "the second call must wait limits.idle for a message to begin, counted from \
                 when it is called: set the socket's read timeout to the time left until then.",
            )
            .fail();
    }
}

/// The pieces of the message that is slow, but in time, in step 7.
const IN_TIME: [&[u8]; 3] = [b"slow ", b"but in ", b"time\n"];

/// How long step 7's slow client says nothing before its first byte.
const SILENCE: Duration = Duration::from_millis(50);

/// How far apart step 7 sends those pieces: longer than limits.idle.
const SLOW_PACE: Duration = Duration::from_millis(50);

#[test]
fn step_07_a_message_has_its_own_deadline() {
    let step = Step::new(
        "step 7: read_message_within returns TooSlow when a message's newline does not come within limits.message of its first byte",
        CHAPTER,
    );
    // Two clients at once: one trickles a message in, one byte every 50 ms,
    // and never finishes it; the other sends a message in three pieces, 50 ms
    // apart: longer than its idle limit between pieces, but all of it well
    // within its message limit.
    let slow_limits = limits(500, 80, 1000);
    let (slow, slow_reading) = start_reading(&step, "slow", slow_limits);
    let steady_limits = limits(30, 400, 1000);
    let (steady, steady_reading) = start_reading(&step, "steady", steady_limits);
    let steady = thread::spawn(move || {
        let mut steady = steady;
        for (index, piece) in IN_TIME.iter().enumerate() {
            if index > 0 {
                thread::sleep(SLOW_PACE);
            }
            steady.send(piece);
        }
        steady.close_sending();
        steady
    });
    slow.note(&format!("check says nothing for {}", millis(SILENCE)));
    thread::sleep(SILENCE);
    let trickle = Trickle::start(&slow, 40);
    let answers = slow_reading.all(&step, trickle.first + slow_limits.message + LATE);
    let bytes = trickle.stop();
    slow.note(&format!("check stopped sending, after {bytes} bytes"));
    let did = format!(
        "the check (slow) said nothing for {}, then sent b\"x\" every {}, without a newline",
        millis(SILENCE),
        millis(PIECE_PAUSE)
    );
    if let Some(error) = &answers.error {
        fail_with_error(&step, &did, &slow_reading.call, error);
    }
    if answers.waiting {
        step.report()
            .did(&did)
            .did(&format!("called {}", slow_reading.call))
            .expected(&format!(
                "TooSlow, {} after the first byte",
                millis(slow_limits.message)
            ))
            .got(&format!(
                "no answer {} after the first byte: it still reads",
                millis(slow_limits.message + LATE)
            ))
            .hint(
                "a byte comes every 50 ms, so a read never runs out of time if each waits the \
                 whole limit. Keep one deadline for the message (its first byte plus \
                 limits.message), and before each read set the read timeout to the time left.",
            )
            .fail();
    }
    if answers.heard != [Heard::TooSlow] {
        step.report()
            .did(&did)
            .did(&format!("called {}", slow_reading.call))
            .expected("TooSlow")
            .got(&describe_all(&answers.heard))
            .hint(
                "a message that has begun (bytes came) but whose newline is not there when \
                 limits.message has passed since its first byte is TooSlow; Idle is for \
                 nothing at all.",
            )
            .fail();
    }
    if let Some(problem) = timing(trickle.first, answers.times[0], slow_limits.message, ms(0)) {
        let started_late = answers.times[0].saturating_duration_since(slow_reading.started);
        step.report()
            .did(&did)
            .did(&format!("called {}", slow_reading.call))
            .expected(&format!(
                "TooSlow {} after the message's first byte",
                millis(slow_limits.message)
            ))
            .got(&format!(
                "TooSlow {problem} (and {} after the call)",
                millis(started_late)
            ))
            .hint(
                "the message's limit counts from its first byte, not from the call: until \
                 the first byte, the idle limit applies; then limits.message from that byte.",
            )
            .fail();
    }
    let steady = steady
        .join()
        .expect("the check's own thread does not panic");
    let answers = steady_reading.all(&step, Instant::now() + DEADLINE);
    let expected = [Heard::Line(IN_TIME.concat()), Heard::End];
    let did = format!(
        "the check (steady) sent {} in three pieces, {} apart, then closed its sending side",
        show(&IN_TIME.concat()),
        millis(SLOW_PACE)
    );
    if let Some(error) = &answers.error {
        fail_with_error(&step, &did, &steady_reading.call, error);
    }
    if answers.heard != expected {
        steady.note("check expected the whole message");
        step.report()
            .did(&did)
            .did(&format!("called {} again and again", steady_reading.call))
            .expected(&describe_all(&expected))
            .got(&describe_all(&answers.heard))
            .observed(&match answers.heard.first() {
                Some(Heard::Idle | Heard::TooSlow) => format!(
                    "the pieces came {} apart, more than limits.idle ({}), but the whole \
                     message took {}, well within limits.message ({}). The idle limit is \
                     only for the wait before a message begins; once its first byte has \
                     come, only limits.message counts.",
                    millis(SLOW_PACE),
                    millis(steady_limits.idle),
                    millis(2 * SLOW_PACE),
                    millis(steady_limits.message)
                ),
                _ => hint_for_heard(&expected, &answers.heard),
            })
            .fail();
    }
}

#[test]
fn step_08_a_limit_of_zero_is_no_error() {
    let step = Step::new(
        "step 8: read_message_within with a limit of zero answers at once (Idle, TooSlow), with no error",
        CHAPTER,
    );
    let limits_idle = limits(0, 1000, 1000);
    let (client, reading) = start_reading(&step, "client", limits_idle);
    client.note("check says nothing");
    let did = "the check said nothing; the idle limit was zero";
    let answers = reading.all(&step, reading.started + LATE);
    expect_zero_answer(&step, did, &reading, answers, Heard::Idle);

    let limits_message = limits(300, 0, 1000);
    let (mut client, reading) = start_reading(&step, "client", limits_message);
    client.send(b"ab");
    let did = "the check sent b\"ab\" and no newline; the message limit was zero";
    let answers = reading.all(&step, reading.started + LATE);
    expect_zero_answer(&step, did, &reading, answers, Heard::TooSlow);
}

fn expect_zero_answer(step: &Step, did: &str, reading: &Reading, answers: Answers, want: Heard) {
    if let Some(error) = &answers.error {
        fail_with_error(step, did, &reading.call, error);
    }
    if answers.heard.as_slice() != std::slice::from_ref(&want) {
        let got = match answers.waiting {
            true => format!(
                "{}, then no answer for {}",
                describe_all(&answers.heard),
                millis(LATE)
            ),
            false => describe_all(&answers.heard),
        };
        step.report()
            .did(did)
            .did(&format!("called {}", reading.call))
            .expected(&format!("{} at once", describe(&want)))
            .got(&got)
            .hint(
                "with no time left, there is nothing to wait for: the answer is Idle (nothing \
                 came) or TooSlow (a message had begun). Check the time left before each \
                 read, and answer when it is zero.",
            )
            .fail();
    }
}

// ---------------------------------------------------------------------------
// serve_connection_within (steps 9 to 11): the check plays the clients.
// ---------------------------------------------------------------------------

const SERVER_HANGS: &str = "the check's client is waiting for your server. Does \
     serve_connection_within answer each message before reading the next, and return at \
     end of file (Heard::End)?";

/// Runs your serve_connection_within on the server's end of a new connection.
fn start_serving(
    step: &Step,
    name: &'static str,
    limits: Limits,
) -> (Conn, Timed<anyhow::Result<()>>) {
    let (conn, connection) = conn_pair(step, name);
    let call = format!(
        "serve_connection_within(connection, &{})",
        show_limits(&limits)
    );
    let serving = start_timed(step, &call, move || {
        serve_connection_within(connection, &limits)
    });
    (conn, serving)
}

/// Fails unless `received` is exactly `expected` and then a newline.
fn expect_line(step: &Step, received: &Received, expected: &[u8], what: &str, hint: &str) {
    if received.bytes != expected || received.end != End::Newline {
        step.report()
            .expected(&format!("{what}: {}", show(expected)))
            .got_received(expected, received)
            .hint(hint)
            .fail();
    }
}

/// Fails unless `received` is an end of file and nothing before it.
fn expect_end(step: &Step, received: &Received, after: &str, hint: &str) {
    if !received.bytes.is_empty() || received.end != End::Closed {
        let got = match received.end {
            End::Failed(kind) => format!(
                "{}: {}",
                received.describe(),
                hint_for_kind(kind).unwrap_or("the connection failed")
            ),
            _ => received.describe(),
        };
        step.report()
            .expected(&format!("end of file after {after}, and nothing else"))
            .got(&got)
            .hint(hint)
            .fail();
    }
}

/// Waits for your serve_connection_within to return Ok(()), once the check
/// has closed its side.
fn expect_served(step: &Step, serving: &Timed<anyhow::Result<()>>) {
    let (result, _) = serving.finish_by(step, Instant::now() + DEADLINE, SERVER_HANGS);
    if let Err(error) = result {
        step.report()
            .expected(&format!("{} to return Ok(())", serving.call))
            .got_error(&error)
            .fail();
    }
}

#[test]
fn step_09_the_server_echoes_as_in_lesson_6() {
    let step = Step::new(
        "step 9: serve_connection_within echoes every message, bytes exact, the tail, and answers a message too long",
        CHAPTER,
    );
    let (mut client, serving) = start_serving(&step, "client", limits(500, 500, 1000));
    let hint = "echo each Line and Tail exactly as it came, with one write_all.";
    for message in [
        b"hello\n".as_slice(),
        b"  spaces, a tab\t and a carriage return \r\n",
        b"\xff\x00 not UTF-8 \xfe\n",
    ] {
        client.send(message);
        let echo = client.read_line(DEADLINE);
        expect_line(&step, &echo, message, "the same bytes back", hint);
    }
    client.send(b"in ");
    thread::sleep(PIECE_PAUSE);
    client.send(b"pieces\n");
    let echo = client.read_line(DEADLINE);
    expect_line(&step, &echo, b"in pieces\n", "the whole message back", hint);
    client.send(b"the last words \xfe");
    client.close_sending();
    let rest = client.read_for(DEADLINE);
    if rest.bytes != b"the last words \xfe" || rest.end != End::Closed {
        step.report()
            .expected("b\"the last words \\xfe\" back, then end of file")
            .got_received(b"the last words \xfe", &rest)
            .hint("echo a Tail like a Line; the next answer is End: return Ok(()).")
            .fail();
    }
    expect_served(&step, &serving);

    let (mut client, serving) = start_serving(&step, "long", limits(500, 500, 1000));
    let mut stream = client.handle();
    client.note(&format!(
        "check → you   {} (sent in the background)",
        show(&vec![b'x'; MAX_MESSAGE + 1])
    ));
    thread::spawn(move || stream.write_all(&vec![b'x'; MAX_MESSAGE + 1]));
    let reply = client.read_line(DEADLINE);
    expect_line(
        &step,
        &reply,
        TOO_LONG_REPLY,
        "the error line",
        "on Heard::TooLong, write TOO_LONG_REPLY, then end with close_gently (given).",
    );
    client.close_sending();
    let rest = client.read_for(DEADLINE);
    expect_end(
        &step,
        &rest,
        "the error line",
        "after an error line, end the connection with close_gently.",
    );
    expect_served(&step, &serving);
}

/// The hints when no error line came in time.
const IDLE_SILENCE: &str = "your server sent nothing in all that time: on Heard::Idle, write \
     IDLE_REPLY. And read with read_message_within(&mut reader, limits), with the limits your \
     function gets.";
const SLOW_SILENCE: &str = "your server sent nothing in all that time: on Heard::TooSlow, \
     write SLOW_REPLY. And read with read_message_within(&mut reader, limits), with the limits \
     your function gets.";

/// The hint when the check read a reset where end of file should have come.
const LINGER_HINT: &str = "after an error line, end the connection with close_gently \
     (given), not by returning at once: the client may still be sending, and closing with \
     its bytes unread resets the connection, which can destroy the error line.";

/// How long step 10's quick client pauses between pieces and messages.
const QUICK_PAUSE: Duration = Duration::from_millis(30);

/// Step 10's quick client: three messages, each in two pieces QUICK_PAUSE
/// apart, QUICK_PAUSE between an echo and the next message, then a tail.
/// Returns the first echo that did not come back right: what was due, and
/// what came.
fn quick_conversation(client: &mut Conn) -> Option<(Vec<u8>, Received)> {
    let messages: [[&[u8]; 2]; 3] = [
        [b"one, ", b"in two pieces\n"],
        [b"two, ", b"in two pieces\n"],
        [b"three, ", b"the last\nand a tail"],
    ];
    for (index, [first, second]) in messages.iter().enumerate() {
        if index > 0 {
            thread::sleep(QUICK_PAUSE);
        }
        client.send(first);
        thread::sleep(QUICK_PAUSE);
        client.send(second);
        let whole = [*first, *second].concat();
        let line = whole
            .split_inclusive(|&byte| byte == b'\n')
            .next()
            .unwrap_or(&whole);
        let echo = client.read_line(DEADLINE);
        if echo.bytes != line || echo.end != End::Newline {
            return Some((line.to_vec(), echo));
        }
    }
    client.close_sending();
    let rest = client.read_for(DEADLINE);
    if rest.bytes != b"and a tail" || rest.end != End::Closed {
        return Some((b"and a tail".to_vec(), rest));
    }
    None
}

#[test]
fn step_10_the_server_keeps_its_limits_per_message() {
    let step = Step::new(
        "step 10: serve_connection_within says goodbye to a silent and to a slow client, in time, and keeps serving a quick one",
        CHAPTER,
    );
    // Three clients at once. The quick one talks for longer than its limits,
    // each wait well within them: the limits are per message.
    let quick_limits = limits(120, 120, 1000);
    let (quick, quick_serving) = start_serving(&step, "quick", quick_limits);
    let quick = thread::spawn(move || {
        let mut quick = quick;
        let began = Instant::now();
        let wrong = quick_conversation(&mut quick);
        (wrong, began.elapsed())
    });

    // The silent client: one message, then nothing.
    let silent_limits = limits(60, 1000, 1000);
    let (mut silent, silent_serving) = start_serving(&step, "silent", silent_limits);
    silent.send(b"hello\n");
    let echo = silent.read_line(DEADLINE);
    let since_echo = Instant::now();
    expect_line(&step, &echo, b"hello\n", "the echo", SERVER_HANGS);
    silent.note("check then says nothing");
    let silent = thread::spawn(move || {
        let mut silent = silent;
        let reply = silent.read_line(silent_limits.idle + LATE);
        let at = Instant::now();
        (silent, reply, at)
    });

    // The slow client: one byte every 50 ms, never a newline.
    let slow_limits = limits(500, 80, 1000);
    let (mut slow, slow_serving) = start_serving(&step, "slow", slow_limits);
    let trickle = Trickle::start(&slow, 40);
    let reply = slow.read_line(slow_limits.message + LATE);
    let at = Instant::now();
    let did = format!(
        "the check (slow) sent b\"x\" every {}, never a newline; limits.message was {}",
        millis(PIECE_PAUSE),
        millis(slow_limits.message)
    );
    if reply.bytes != SLOW_REPLY || reply.end != End::Newline {
        trickle.stop();
        let report = step
            .report()
            .did(&did)
            .expected(&format!("{} back", show(SLOW_REPLY)));
        got_within(
            report,
            SLOW_REPLY,
            &reply,
            slow_limits.message + LATE,
            SLOW_SILENCE,
        )
        .hint("on Heard::TooSlow, write SLOW_REPLY, then end with close_gently (given).")
        .fail();
    }
    if let Some(problem) = timing(trickle.first, at, slow_limits.message, ms(0)) {
        trickle.stop();
        step.report()
            .did(&did)
            .expected(&format!(
                "SLOW_REPLY {} after the first byte",
                millis(slow_limits.message)
            ))
            .got(&format!("it came {problem}"))
            .hint("read with read_message_within(&mut reader, limits): the limits your function gets.")
            .fail();
    }
    let rest = slow.read_for(LATE);
    if rest.end == End::TimedOut && rest.bytes.is_empty() {
        trickle.stop();
        step.report()
            .did(&did)
            .expected("end of file right after SLOW_REPLY: your server stops sending")
            .got(&rest.describe())
            .hint("after the error line, end the connection with close_gently (given): it shuts down the sending side first, so the client reads end of file at once.")
            .fail();
    }
    let ended = Instant::now();
    expect_end(&step, &rest, "SLOW_REPLY", LINGER_HINT);
    // A slow client goes on sending a little while: a lingering close reads
    // and throws those bytes away; a plain close answers them with a reset.
    if let Some(kind) = trickle.sends_after(ended, 2) {
        step.report()
            .did(&did)
            .did("after SLOW_REPLY and end of file, the slow client sent two more bytes")
            .expected("both to be taken (and thrown away) by your server")
            .got(&format!(
                "the second failed: {kind:?}: your server had closed the connection"
            ))
            .observed(LINGER_HINT)
            .fail();
    }
    trickle.stop();
    slow.close_sending();
    expect_served(&step, &slow_serving);

    // Back to the silent client.
    let (mut silent, reply, at) = silent
        .join()
        .expect("the check's own thread does not panic");
    let did = format!(
        "the check (silent) sent b\"hello\\n\", read the echo, then said nothing; limits.idle was {}",
        millis(silent_limits.idle)
    );
    if reply.bytes != IDLE_REPLY || reply.end != End::Newline {
        let report = step
            .report()
            .did(&did)
            .expected(&format!("{} back", show(IDLE_REPLY)));
        got_within(
            report,
            IDLE_REPLY,
            &reply,
            silent_limits.idle + LATE,
            IDLE_SILENCE,
        )
        .hint("on Heard::Idle, write IDLE_REPLY, then end with close_gently (given).")
        .fail();
    }
    // The server's wait began as it wrote the echo, a moment before the
    // check read it: hence 10 ms to spare.
    if let Some(problem) = timing(since_echo, at, silent_limits.idle, ms(10)) {
        step.report()
            .did(&did)
            .expected(&format!(
                "IDLE_REPLY {} after the echo",
                millis(silent_limits.idle)
            ))
            .got(&format!("it came {problem}"))
            .hint("read with read_message_within(&mut reader, limits): the limits your function gets.")
            .fail();
    }
    let rest = silent.read_for(LATE);
    expect_end(
        &step,
        &rest,
        "IDLE_REPLY",
        "after the error line, end the connection with close_gently (given).",
    );
    silent.close_sending();
    expect_served(&step, &silent_serving);

    // And the quick one was served all along.
    let (wrong, took) = quick.join().expect("the check's own thread does not panic");
    if let Some((due, echo)) = wrong {
        let report = step
            .report()
            .did(&format!(
                "the check (quick) talked for {} in all, with limits.idle and limits.message \
                 of {}: each message took {}, each pause between messages {}",
                millis(took),
                millis(quick_limits.idle),
                millis(QUICK_PAUSE),
                millis(QUICK_PAUSE)
            ))
            .expected(&format!("the echo {}", show(&due)))
            .got_received(&due, &echo);
        if echo.bytes == IDLE_REPLY || echo.bytes == SLOW_REPLY {
            report
                .observed(
                    "the limits are per message, not per connection: each call of \
                     read_message_within starts its own wait (limits.idle until the message \
                     begins, then limits.message from its first byte). Does your code count \
                     from the start of the connection?",
                )
                .fail();
        }
        report.hint(SERVER_HANGS).fail();
    }
    expect_served(&step, &quick_serving);
}

/// How long after its write limit your server may take to give up on a
/// client that does not read, counted from when it was last busy: the OS
/// grows its buffers for a while, and each write that makes a little
/// progress starts its wait again.
const GIVING_UP: Duration = Duration::from_millis(300);

/// The longest the check waits for that, however busy your server is.
const GIVING_UP_AT_MOST: Duration = Duration::from_millis(3000);

/// How often the check looks whether your server is still busy.
const LOOK: Duration = Duration::from_millis(50);

/// The processor time the OS counts at a time, in /proc/PID/stat.
const ONE_TICK: Duration = Duration::from_millis(10);

/// When the check stops waiting for your server to give up on a deaf
/// client. Before its writes can block, your server must read and echo
/// megabytes (the OS's buffers between the two ends are that large), and a
/// slow server takes a while for that: so the wait counts from when your
/// server was last busy, that is when the check's lines last got through
/// or the server's process last used the processor (on Linux, where the
/// check can see that). A server waiting in a write is neither.
struct GivingUp {
    started: Instant,
    write: Duration,
    last_sent: Arc<Mutex<Instant>>,
    /// The process your server runs in (None: this one).
    pid: Option<u32>,
    cpu: Option<Duration>,
    last_busy: Instant,
}

impl GivingUp {
    fn new(write: Duration, last_sent: Arc<Mutex<Instant>>, pid: Option<u32>) -> GivingUp {
        let started = Instant::now();
        GivingUp {
            started,
            write,
            last_sent,
            pid,
            cpu: cpu_time(pid),
            last_busy: started,
        }
    }

    /// The deadline as it stands now.
    fn deadline(&mut self) -> Instant {
        let cpu = cpu_time(self.pid);
        // More than one tick since the last look: one tick now and then is
        // the check's own looking (in this process), not your server at work.
        if let (Some(now), Some(before)) = (cpu, self.cpu)
            && now > before + ONE_TICK
        {
            self.last_busy = Instant::now();
        }
        self.cpu = cpu;
        let last = self.last_busy.max(*self.last_sent.lock().unwrap());
        (last + self.write + GIVING_UP).min(self.started + GIVING_UP_AT_MOST)
    }

    /// The end of the next short wait: LOOK from now, or the deadline.
    fn next_look(&mut self) -> Option<Instant> {
        let deadline = self.deadline();
        let now = Instant::now();
        (now < deadline).then(|| (now + LOOK).min(deadline))
    }
}

/// The processor time a process has used so far, all its threads together
/// (Linux: /proc/PID/stat, in ticks of 10 ms); None where the OS does not say.
fn cpu_time(pid: Option<u32>) -> Option<Duration> {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/stat"),
        None => "/proc/self/stat".to_string(),
    };
    let stat = std::fs::read_to_string(path).ok()?;
    // After the program's name in parentheses: state, then 10 more fields,
    // then utime and stime.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u32 = fields.get(11)?.parse::<u32>().ok()? + fields.get(12)?.parse::<u32>().ok()?;
    Some(ONE_TICK * ticks)
}

#[test]
fn step_11_the_server_gives_up_on_a_client_that_does_not_read() {
    let step = Step::new(
        "step 11: serve_connection_within gives up on a client that never reads its echoes, after about limits.write, and returns Ok",
        CHAPTER,
    );
    let limits = limits(1000, 1000, 80);
    let (client, serving) = start_serving(&step, "deaf", limits);
    let last_sent = flood(&client);
    let did = format!(
        "the check sent line after line and read nothing, so that your echoes filled the \
         buffers between you; limits.write was {}",
        millis(limits.write)
    );
    // The deadline moves while your server is still busy.
    let mut giving_up = GivingUp::new(limits.write, last_sent.clone(), None);
    let mut returned = None;
    while let (None, Some(look)) = (&returned, giving_up.next_look()) {
        returned = serving.returned_by(&step, look);
    }
    let Some((result, at)) = returned else {
        let since_busy = giving_up
            .last_busy
            .max(*last_sent.lock().unwrap())
            .elapsed();
        if since_busy < limits.write + GIVING_UP {
            // Your server is still busy: none of its writes has had to wait yet.
            step.report()
                .did(&did)
                .expected(&format!(
                    "{} to give up and return after about {}",
                    serving.call,
                    millis(limits.write)
                ))
                .got(&format!(
                    "still running after {}, and still busy {} ago",
                    millis(serving.started.elapsed()),
                    millis(since_busy)
                ))
                .observed(
                    "your server reads and echoes so slowly that after all this time it \
                     has not yet filled the buffers between you: no write has had to wait. \
                     Does it make a system call for every byte (set_read_timeout before each \
                     byte)? A read from the BufReader's buffer needs no timeout: set it only \
                     before a read that goes to the socket, or once for each piece read.",
                )
                .fail();
        }
        step.note_waited_out();
        step.report()
            .did(&did)
            .expected(&format!(
                "{} to give up and return after about {}",
                serving.call,
                millis(limits.write)
            ))
            .got(&format!(
                "still running after {}",
                millis(serving.started.elapsed())
            ))
            .observed(
                "your server waits on a client that does not read far longer than \
                 limits.write, maybe for ever: a write blocks until the client makes room. \
                 Set the connection's write timeout to limits.write before the first write.",
            )
            .fail()
    };
    let took = at.saturating_duration_since(serving.started);
    if took < limits.write {
        step.report()
            .did(&did)
            .expected(&format!(
                "your server to give up after {}",
                millis(limits.write)
            ))
            .got(&format!("it returned after {}: too early", millis(took)))
            .hint("give each write limits.write, not less: set the write timeout to limits.write.")
            .fail();
    }
    match result {
        Ok(()) => {}
        Err(error) if io_error_kind(&error).is_some_and(is_timeout_kind) => step
            .report()
            .did(&did)
            .expected(&format!("{} to return Ok(())", serving.call))
            .got_error(&error)
            .observed(
                "a write that runs out of time is how a server gives up on a client that \
                 does not read, not an error of the server: narrate `PEER does not read its \
                 echoes; gave up writing`, and return Ok(()).",
            )
            .fail(),
        Err(error) => step
            .report()
            .did(&did)
            .expected(&format!("{} to return Ok(())", serving.call))
            .got_error(&error)
            .fail(),
    }
}

fn is_timeout_kind(kind: ErrorKind) -> bool {
    matches!(kind, ErrorKind::WouldBlock | ErrorKind::TimedOut)
}

// ---------------------------------------------------------------------------
// The programs (steps 12 to 15): src/main.rs (given), built on your lib.rs.
// ---------------------------------------------------------------------------

/// Fails unless the server printed `wanted` for the client at `peer`,
/// before the line that says that client's connection ended. Waits for that
/// line until `deadline`.
fn expect_narrated(
    step: &Step,
    server: &mut WatchedServer,
    peer: SocketAddr,
    wanted: &str,
    mut next_look: impl FnMut() -> Option<Instant>,
) -> Instant {
    let peer_text = peer.to_string();
    let ends = |line: &str| line.contains(&peer_text) && line.contains("closed the connection");
    let mut ended = None;
    let since = server.started();
    // Short waits, while the deadline may move.
    while let (None, Some(look)) = (&ended, next_look()) {
        let wait = look.saturating_duration_since(Instant::now());
        ended = server.wait_for(wait, since, ends);
    }
    let narration = format!("{peer} {wanted}");
    match (ended, server.printed(|line| line.contains(&narration))) {
        (Some(_), Some(at)) => at,
        (ended, _) => {
            let got = match ended {
                Some(line) => format!("no such line before {:?}", line.text),
                None => "no such line, and no line saying that connection ended".to_string(),
            };
            let report = server
                .report(step)
                .expected(&format!("the line `{narration}` on stderr"))
                .got(&got)
                .hint(&format!(
                    "narrate it in serve_connection_within, word for word: \
                     narrate(format!(\"{{peer}} {wanted}\")), where peer is peer_name(&connection)."
                ));
            server.fail(report)
        }
    }
}

/// One wait that ends at `deadline`, for [`expect_narrated`].
fn until(deadline: Instant) -> impl FnMut() -> Option<Instant> {
    move || (Instant::now() < deadline).then_some(deadline)
}

/// Sends `message` from a new client and fails unless it comes back.
fn expect_served_now(step: &Step, addr: SocketAddr, name: &'static str, message: &[u8], why: &str) {
    let mut client = Conn::connect(step, name, addr);
    client.send(message);
    let echo = client.read_line(DEADLINE);
    expect_line(step, &echo, message, "the echo", why);
}

#[test]
fn step_12_the_server_program_keeps_its_limits() {
    let step = Step::new(
        "step 12: `server --write 100 --idle 100 --message 150` ends silent, slow and deaf clients in time, and serves others meanwhile",
        CHAPTER,
    );
    let args = [
        "server",
        "127.0.0.1:0",
        "--write",
        "100",
        "--idle",
        "100",
        "--message",
        "150",
    ];
    let mut server = WatchedServer::start(program!(), &args);
    let addr = server.listening_address(&step);
    let (idle, message, write) = (ms(100), ms(150), ms(100));
    // Three troublesome clients at once, each read on a thread of its own.
    let silent = Conn::connect(&step, "silent", addr);
    let silent_start = Instant::now();
    let silent_peer = silent.local_addr();
    let silent = thread::spawn(move || {
        let mut silent = silent;
        let reply = silent.read_line(idle + LATE);
        let at = Instant::now();
        let rest = silent.read_for(LATE);
        silent.close_sending();
        (reply, at, rest)
    });
    let slow = Conn::connect(&step, "slow", addr);
    let slow_peer = slow.local_addr();
    let trickle = Trickle::start(&slow, 40);
    let first_byte = trickle.first;
    let slow = thread::spawn(move || {
        let mut slow = slow;
        let reply = slow.read_line(message + LATE);
        let at = Instant::now();
        trickle.stop();
        slow.close_sending();
        (reply, at)
    });
    let deaf = Conn::connect(&step, "deaf", addr);
    let last_sent = flood(&deaf);
    let deaf_start = Instant::now();
    let mut giving_up = GivingUp::new(write, last_sent, Some(server.pid()));
    // Another client is served meanwhile.
    expect_served_now(
        &step,
        addr,
        "other",
        b"served meanwhile?\n",
        "each client has a thread of its own: troublesome clients never stop the others.",
    );
    // The silent one gets IDLE_REPLY, in time.
    let (reply, at, rest) = silent
        .join()
        .expect("the check's own thread does not panic");
    let problem = timing(silent_start, at, idle, ms(0));
    if reply.bytes != IDLE_REPLY || problem.is_some() || rest.end != End::Closed {
        let report = server
            .report(&step)
            .did("the check (silent) connected and said nothing")
            .expected(&format!(
                "{} {} after connecting, then end of file",
                show(IDLE_REPLY),
                millis(idle)
            ))
            .got(&problem.unwrap_or_else(|| rest.describe()));
        let report = got_within(report, IDLE_REPLY, &reply, idle + LATE, IDLE_SILENCE);
        server.fail(report);
    }
    expect_narrated(
        &step,
        &mut server,
        silent_peer,
        "was idle for too long",
        until(Instant::now() + DEADLINE),
    );
    // The slow one gets SLOW_REPLY, in time.
    let (reply, at) = slow.join().expect("the check's own thread does not panic");
    let problem = timing(first_byte, at, message, ms(0));
    if reply.bytes != SLOW_REPLY || problem.is_some() {
        let report = server
            .report(&step)
            .did(&format!(
                "the check (slow) sent b\"x\" every {}",
                millis(PIECE_PAUSE)
            ))
            .expected(&format!(
                "{} {} after the first byte",
                show(SLOW_REPLY),
                millis(message)
            ))
            .got(&problem.unwrap_or_default());
        let report = got_within(report, SLOW_REPLY, &reply, message + LATE, SLOW_SILENCE);
        server.fail(report);
    }
    expect_narrated(
        &step,
        &mut server,
        slow_peer,
        "sent too slowly",
        until(Instant::now() + DEADLINE),
    );
    // The deaf one is given up on, after about the write limit.
    let gave_up = expect_narrated(
        &step,
        &mut server,
        deaf.local_addr(),
        "does not read its echoes; gave up writing",
        || giving_up.next_look(),
    );
    let took = gave_up.saturating_duration_since(deaf_start);
    if took < write {
        let report = server
            .report(&step)
            .did("the check (deaf) sent line after line and read nothing")
            .expected(&format!(
                "the server to give up after {} or more",
                millis(write)
            ))
            .got(&format!("it gave up after {}", millis(took)));
        server.fail(report);
    }
    // And the server goes on serving.
    expect_served_now(
        &step,
        addr,
        "later",
        b"still serving?\n",
        "after giving up on one client, the server serves the next.",
    );
}

#[test]
fn step_13_the_programs_check_their_flags() {
    let step = Step::new(
        "step 13: the programs explain a flag without a number, a number that is not one, zero, and an unknown flag",
        CHAPTER,
    );
    // The client is given a real address, of a listener of the check's, in
    // case it dials before it reads its flags; it must not get that far.
    let listener = TcpListener::bind("127.0.0.1:0").expect("the check could not listen");
    let client_addr = listener
        .local_addr()
        .expect("the check's listener has an address")
        .to_string();
    let cases: [(&[&str], &str); 5] = [
        (&["server", "127.0.0.1:0", "--idle"], "--idle"),
        (&["server", "127.0.0.1:0", "--message", "ten"], "--message"),
        (&["server", "--write", "0"], "--write"),
        (&["server", "127.0.0.1:0", "--slow", "5"], "--slow"),
        (&["client", &client_addr, "--idle", "5"], "--idle"),
    ];
    for (args, word) in cases {
        run(program!(), args, b"").expect_one_line_error(&step, &[word]);
    }
}

#[test]
fn step_14_the_client_program_gives_up_on_a_server_that_never_answers() {
    let step = Step::new(
        "step 14: `client ADDR --connect 100` gives up on a server that never answers, in one line that names it; and talks to one that answers",
        CHAPTER,
    );
    if let Some((_listener, addr, queued)) = never_answering() {
        step.transcript().add(format!(
            "check   made {addr} a server that never answers ({} connections queued, none accepted)",
            queued.len()
        ));
        let addr = addr.to_string();
        let started = Instant::now();
        let finished = run(
            program!(),
            &["client", &addr, "--connect", "100"],
            b"hello\n",
        );
        let took = started.elapsed();
        finished.expect_one_line_error(&step, &[&addr, "timed out"]);
        if took < ms(100) || took > ms(100) + LATE + ms(500) {
            finished
                .report(&step)
                .expected("the client to give up after 100 ms")
                .got(&format!("it ended after {}", millis(took)))
                .hint("dial_within must give each address the timeout it gets, no less, no more.")
                .fail();
        }
    }
    let addr = seesaw_checks::peer::spawn_echo_server(&step).to_string();
    let input = b"one\n  two \t\r\n\xff\x00\nthe end, no newline";
    run(program!(), &["client", &addr, "--connect", "1000"], input)
        .expect_code(&step, 0)
        .expect_stdout(&step, input);
}

#[test]
fn step_15_the_server_program_explains_an_address_in_use() {
    let step = Step::new(
        "step 15: `server` explains an address in use in one line, exit code 1",
        CHAPTER,
    );
    expect_address_in_use_explained(&step, program!(), &["server"]);
}

// ---------------------------------------------------------------------------
// Your client and your server (step 16).
// ---------------------------------------------------------------------------

/// What went through the relay, each way.
#[derive(Default)]
struct Carried {
    to_server: Vec<u8>,
    to_client: Vec<u8>,
}

/// The check in the middle: your client connects to it, it connects to
/// your server and passes every byte on, both ways, into the transcript.
/// So when the conversation goes wrong, it can tell which side went wrong.
struct Relay {
    addr: SocketAddr,
    carried: Arc<Mutex<Carried>>,
    /// A message each time bytes pass.
    passed: mpsc::Receiver<()>,
}

impl Relay {
    fn start(step: &Step, server: SocketAddr) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").expect("the check could not listen");
        let addr = listener
            .local_addr()
            .expect("a bound listener has an address");
        let carried: Arc<Mutex<Carried>> = Arc::default();
        let (sender, passed) = mpsc::channel();
        let (record, transcript) = (carried.clone(), step.transcript().clone());
        thread::spawn(move || {
            let Some(client) = accept_within(&listener) else {
                return;
            };
            let Ok(server) = TcpStream::connect_timeout(&server, DEADLINE) else {
                transcript.add("check   could not reach your server".to_string());
                return;
            };
            let (Ok(client_reader), Ok(server_reader)) = (client.try_clone(), server.try_clone())
            else {
                return;
            };
            let pumps = [
                (client_reader, server, "your client → your server", true),
                (server_reader, client, "your server → your client", false),
            ];
            for (from, to, label, to_server) in pumps {
                let (record, transcript, sender) =
                    (record.clone(), transcript.clone(), sender.clone());
                thread::spawn(move || {
                    pump(from, to, label, to_server, &record, &transcript, &sender)
                });
            }
        });
        Relay {
            addr,
            carried,
            passed,
        }
    }

    /// Waits until the bytes carried to your client end with `bytes`, at
    /// most `wait`.
    fn wait_for_client_to_get(&self, bytes: &[u8], wait: Duration) -> bool {
        let deadline = Instant::now() + wait;
        loop {
            if self.carried.lock().unwrap().to_client.ends_with(bytes) {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if self.passed.recv_timeout(left).is_err() {
                return self.carried.lock().unwrap().to_client.ends_with(bytes);
            }
        }
    }

    /// Which side went wrong, from what the relay carried.
    fn verdict(&self, sent: &[u8], due: &[u8]) -> String {
        let carried = self.carried.lock().unwrap();
        if !carried.to_server.starts_with(sent) {
            return format!(
                "your client sent {} in all, where {} was due: your client stopped or sent \
                 something else",
                show(&carried.to_server),
                show(sent)
            );
        }
        if !carried.to_client.starts_with(due) {
            return format!(
                "your server sent {} in all, where {} was due: your server did not answer \
                 rightly",
                show(&carried.to_client),
                show(due)
            );
        }
        format!(
            "your server answered rightly ({} in all), so your client misread the replies",
            show(&carried.to_client)
        )
    }
}

/// Copies bytes from `from` to `to` until end of file, which it passes on
/// as a half-close.
fn pump(
    mut from: TcpStream,
    mut to: TcpStream,
    label: &str,
    to_server: bool,
    record: &Mutex<Carried>,
    transcript: &Transcript,
    passed: &mpsc::Sender<()>,
) {
    // A stuck conversation must not keep this thread for ever.
    let _ = from.set_read_timeout(Some(3 * DEADLINE));
    let mut chunk = [0u8; 64 * 1024];
    loop {
        match from.read(&mut chunk) {
            Ok(0) => {
                transcript.add(format!("{label}: end of file"));
                let _ = to.shutdown(Shutdown::Write);
                let _ = passed.send(());
                return;
            }
            Ok(count) => {
                let bytes = &chunk[..count];
                transcript.add(format!("{label}   {}", show(bytes)));
                {
                    let mut carried = record.lock().unwrap();
                    match to_server {
                        true => carried.to_server.extend_from_slice(bytes),
                        false => carried.to_client.extend_from_slice(bytes),
                    }
                }
                let _ = passed.send(());
                if to.write_all(bytes).is_err() {
                    return;
                }
            }
            Err(error) => {
                transcript.add(format!("{label}: the relay's read failed: {error}"));
                let _ = to.shutdown(Shutdown::Both);
                return;
            }
        }
    }
}

/// What step 16's client sends: two messages, then one after the server's
/// goodbye.
const ODD: &[u8] = b" \t\xff\x00 odd bytes\r\n";

#[test]
fn step_16_your_client_talks_to_your_server() {
    let step = Step::new(
        "step 16: your own client talks to your own server, until the server says goodbye to it for being idle",
        CHAPTER,
    );
    let listener = TcpListener::bind("127.0.0.1:0").expect("the check could not listen");
    let server_addr = listener
        .local_addr()
        .expect("a bound listener has an address");
    let limits = limits(150, 1000, 1000);
    let _server = bounded::start(
        &step,
        &format!(
            "serve_concurrently_within(listener, {})",
            show_limits(&limits)
        ),
        move || {
            let _ = serve_concurrently_within(listener, limits);
        },
    );
    let relay = Relay::start(&step, server_addr);
    let (go_on, wait_for_go) = mpsc::channel::<()>();
    let addr = relay.addr.to_string();
    let client = start_timed(
        &step,
        "Client::connect_within(addr, 1000 ms), turn, turn, (a pause), turn, finish",
        move || -> anyhow::Result<Vec<Vec<u8>>> {
            let mut client = Client::connect_within(&addr, ms(1000))?;
            let mut replies = vec![client.turn(b"hello\n")?, client.turn(ODD)?];
            // The pause: until the check has seen your server say goodbye.
            let _ = wait_for_go.recv_timeout(4 * DEADLINE);
            replies.push(client.turn(b"still there?\n")?);
            replies.push(client.finish(b"")?);
            Ok(replies)
        },
    );
    // Two turns take milliseconds; then the idle limit, and some to spare.
    let said_goodbye = relay.wait_for_client_to_get(IDLE_REPLY, limits.idle + LATE + LATE);
    step.transcript().add(match said_goodbye {
        true => "check   saw your server say goodbye; your client takes its next turn".to_string(),
        false => {
            "check   did not see your server say goodbye; your client takes its next turn anyway"
                .to_string()
        }
    });
    let _ = go_on.send(());
    let (outcome, _) = client.finish_by(
        &step,
        Instant::now() + DEADLINE,
        "your client waits: does it stop reading at a reply's newline?",
    );
    let due: Vec<Vec<u8>> = vec![
        b"hello\n".to_vec(),
        ODD.to_vec(),
        IDLE_REPLY.to_vec(),
        Vec::new(),
    ];
    let outcome = outcome.map_err(|error| format!("{error:#}"));
    if outcome.as_ref() == Ok(&due) {
        return;
    }
    let sent = [b"hello\n".as_slice(), ODD, b"still there?\n"].concat();
    let due_bytes = [b"hello\n".as_slice(), ODD, IDLE_REPLY].concat();
    step.report()
        .did(&format!(
            "your client talked to your server (limits.idle {}); the check sat in between and \
             recorded every byte",
            millis(limits.idle)
        ))
        .expected(&format!("the replies {}", show_list(&due)))
        .got(&match &outcome {
            Ok(replies) => format!("the replies {}", show_list(replies)),
            Err(error) => format!("an error: {error}"),
        })
        .observed(&relay.verdict(&sent, &due_bytes))
        .fail();
}
