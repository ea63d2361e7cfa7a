//! The checks of lesson 4, in the order you meet them: the first failure is
//! your next step. Run them with `cargo test -p lesson-04-echo-once`.
//!
//! To check your server, the check plays the client; to check your client, the
//! check plays the server. The last check has your client talk to your server,
//! with the check in the middle, passing the bytes on and noting them.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use lesson_04_echo_once::{client_turn, server_turn};
use seesaw_checks::bounded::{self, Running};
use seesaw_checks::bytes::show;
use seesaw_checks::peer::{End, PIECE_PAUSE, Received, unused_address};
use seesaw_checks::program::{Server, run};
use seesaw_checks::report::{Step, TODO_HINT, Transcript};
use seesaw_checks::{DEADLINE, program};

const CHAPTER: &str = "04-echo-once";

const SERVER_HANGS: &str = "The client sent its message and now waits for the reply. \
     Does server_turn stop reading at the newline? Reading to end of file would wait for \
     the client to close, and the client waits for you: both read, and the seesaw is stuck.";

const CLIENT_HANGS: &str = "client_turn should return once the reply's newline has arrived. \
     Does it stop reading at the newline, whatever the reply's length, rather than wait for \
     end of file or for as many bytes as it sent?";

/// How long the check waits when it expects nothing (more) to come.
const QUIET: Duration = Duration::from_millis(250);

/// How long the check waits for a reply, an end of file, or your function to
/// return. On one machine each takes microseconds; this is shorter than the
/// usual deadline so that a hang is explained within 2 s of starting the checks.
const REPLY_WAIT: Duration = Duration::from_millis(1000);

/// Messages whose bytes must come back exactly: text, invalid UTF-8, NUL,
/// the empty message (a lone newline), spaces and tabs at either end, a `\r`
/// before the newline, and 0xFF as the last byte before it.
const AWKWARD_MESSAGES: [&[u8]; 7] = [
    b"caf\xc3\xa9 \xe2\x98\x95\n",
    b"\xff\xfe not UTF-8 \x80\n",
    b"nul \x00 inside\n",
    b"\n",
    b"  spaces at both ends  \n",
    b"\ttabs\tand a CR\r\n",
    b"ends in 0xFF \xff\n",
];

// The check's end of a connection.

/// What the check's reading thread saw: bytes, or how the reading ended.
enum Arrival {
    Bytes(Vec<u8>),
    Ended(End),
}

/// The check's end of a connection with your code. The check writes from its
/// own thread and reads on another one, as the bytes arrive, so the
/// transcript lists what each side did in the order it happened.
struct CheckEnd {
    stream: TcpStream,
    step: Step,
    arrivals: mpsc::Receiver<Arrival>,
    /// Bytes read past a newline, kept for the next read.
    pending: Vec<u8>,
    ended: Option<End>,
    /// Set when the check closes: the reading thread then stops quietly.
    closed_by_check: Arc<AtomicBool>,
    /// A copy of your end of the connection, kept open until the check is done
    /// with its end (see [`Turn::start`]).
    yours: Option<TcpStream>,
}

impl CheckEnd {
    /// The check's end `stream`, and a copy of yours if the check has one.
    fn new(step: &Step, stream: TcpStream, yours: Option<TcpStream>) -> CheckEnd {
        let reader = stream
            .try_clone()
            .expect("the check could not clone its socket");
        let (sender, arrivals) = mpsc::channel();
        let closed_by_check = Arc::new(AtomicBool::new(false));
        let transcript = step.transcript().clone();
        let quiet = Arc::clone(&closed_by_check);
        thread::spawn(move || read_as_it_arrives(reader, &transcript, &sender, &quiet));
        CheckEnd {
            stream,
            step: step.clone(),
            arrivals,
            pending: Vec::new(),
            ended: None,
            closed_by_check,
            yours,
        }
    }

    /// Sends `bytes` in one write.
    fn send(&mut self, bytes: &[u8]) {
        self.step
            .transcript()
            .add(format!("check → you   {}", show(bytes)));
        if let Err(error) = self.stream.write_all(bytes) {
            self.step
                .transcript()
                .add(format!("check   could not send: {error}"));
        }
    }

    /// Sends each piece in a write of its own, `pause` apart, as a slow
    /// network would deliver them.
    fn send_in_pieces(&mut self, pieces: &[&[u8]], pause: Duration) {
        for (index, piece) in pieces.iter().enumerate() {
            if index > 0 {
                thread::sleep(pause);
            }
            self.send(piece);
        }
    }

    /// Closes the check's sending side: the other side reads end of file.
    fn close_sending(&mut self) {
        self.step
            .transcript()
            .add("check   closed its sending side (shutdown Write)".to_string());
        let _ = self.stream.shutdown(Shutdown::Write);
    }

    /// Closes the connection altogether.
    fn close(self, why: &str) {
        self.step.transcript().add(format!("check   {why}"));
        // Drop does the rest.
    }

    /// Reads until a newline, end of file or [`REPLY_WAIT`].
    fn read_line(&mut self) -> Received {
        self.read(true, REPLY_WAIT)
    }

    /// Reads until end of file or [`REPLY_WAIT`].
    fn read_to_end(&mut self) -> Received {
        self.read(false, REPLY_WAIT)
    }

    /// Reads what comes within `wait`, for a check that expects nothing
    /// (more): running out of time here is no hang.
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
            if let Some(end) = self.ended {
                break end;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.arrivals.recv_timeout(left) {
                Ok(Arrival::Bytes(more)) => bytes.extend_from_slice(&more),
                Ok(Arrival::Ended(end)) => self.ended = Some(end),
                Err(RecvTimeoutError::Timeout) => break End::TimedOut,
                Err(RecvTimeoutError::Disconnected) => self.ended = Some(End::Closed),
            }
        };
        if end == End::TimedOut {
            self.step.transcript().add(format!(
                "check   waited {} s, nothing more came",
                wait.as_secs_f32()
            ));
            if wait >= REPLY_WAIT {
                self.step.note_waited_out();
            }
        }
        Received { bytes, end }
    }
}

impl Drop for CheckEnd {
    fn drop(&mut self) {
        self.closed_by_check.store(true, Ordering::SeqCst);
        let _ = self.stream.shutdown(Shutdown::Both);
        drop(self.yours.take());
    }
}

/// The check's reading thread: notes each arrival in the transcript as it
/// comes, and passes it on.
fn read_as_it_arrives(
    mut reader: TcpStream,
    transcript: &Transcript,
    arrivals: &mpsc::Sender<Arrival>,
    closed_by_check: &AtomicBool,
) {
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let outcome = reader.read(&mut chunk);
        if closed_by_check.load(Ordering::SeqCst) {
            return;
        }
        let arrival = match outcome {
            Ok(0) => {
                transcript.add("you     closed the connection (end of file)".to_string());
                Arrival::Ended(End::Closed)
            }
            Ok(count) => {
                transcript.add(format!("you → check   {}", show(&chunk[..count])));
                Arrival::Bytes(chunk[..count].to_vec())
            }
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(error) => {
                transcript.add(format!("check   read failed: {}", error.kind()));
                Arrival::Ended(End::Failed(error.kind()))
            }
        };
        let ended = matches!(arrival, Arrival::Ended(_));
        if arrivals.send(arrival).is_err() || ended {
            return;
        }
    }
}

/// Two ends of a fresh connection on 127.0.0.1: the one that connected, and
/// the one that was accepted.
fn connection_pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("the check could not listen");
    let addr = listener
        .local_addr()
        .expect("a bound listener has an address");
    let connected = TcpStream::connect(addr).expect("the check could not connect to itself");
    let (accepted, _) = listener
        .accept()
        .expect("the check could not accept its own connection");
    (connected, accepted)
}

// Your code, on a thread of its own.

/// Shuts down the sending side of a socket when dropped, even by a panic.
struct SendEndOfFile(Option<TcpStream>);

impl Drop for SendEndOfFile {
    fn drop(&mut self) {
        if let Some(stream) = &self.0 {
            let _ = stream.shutdown(Shutdown::Write);
        }
    }
}

/// A call of your server_turn or client_turn, running on its own thread.
struct Turn {
    call: String,
    running: Running<anyhow::Result<Vec<u8>>>,
    returned: mpsc::Receiver<()>,
}

impl Turn {
    fn start(
        step: &Step,
        call: &str,
        connection: TcpStream,
        code: impl FnOnce(&mut TcpStream) -> anyhow::Result<Vec<u8>> + Send + 'static,
    ) -> Turn {
        let (done, returned) = mpsc::channel();
        let running = bounded::start_with(step, call, connection, move |connection| {
            // When your code returns (or panics), its end says "end of file";
            // the check's copy keeps the socket open, so that bytes your code
            // left unread cannot turn the close into a reset.
            let _end_of_file = SendEndOfFile(connection.try_clone().ok());
            let outcome = code(connection);
            let _ = done.send(());
            outcome
        });
        Turn {
            call: call.to_string(),
            running,
            returned,
        }
    }

    /// Waits, at most [`REPLY_WAIT`], for the call to return. A hang or a
    /// panic fails the step; `hang_hint` says why the code may be stuck.
    fn finish(self, step: &Step, hang_hint: &str) -> anyhow::Result<Vec<u8>> {
        // A panic drops the signal (Disconnected): `finish` below reports it.
        if let Err(RecvTimeoutError::Timeout) = self.returned.recv_timeout(REPLY_WAIT) {
            step.note_waited_out();
            step.report()
                .expected(&format!("{} to return", self.call))
                .got(&format!(
                    "still running after {} s: it hangs",
                    REPLY_WAIT.as_secs_f32()
                ))
                .observed(hang_hint)
                .fail();
        }
        self.running.finish(step, hang_hint)
    }

    /// Like [`Turn::finish`], and an error fails the step too, with its hint.
    fn finish_ok(self, step: &Step, hang_hint: &str) -> Vec<u8> {
        let call = self.call.clone();
        step.ok(&call, self.finish(step, hang_hint))
    }

    /// What the call returned, if it returns within a moment: a report then
    /// shows your code's own error. A panic fails the step at once.
    fn returned_by_now(self, step: &Step) -> Option<anyhow::Result<Vec<u8>>> {
        match self.returned.recv_timeout(Duration::from_millis(200)) {
            Err(RecvTimeoutError::Timeout) => None,
            _ => Some(self.running.finish(step, "")),
        }
    }
}

/// Runs your server_turn on the server end of a fresh connection, whose
/// client end the check holds. When server_turn returns, its end sends end of file.
fn start_server_turn(step: &Step) -> (CheckEnd, Turn) {
    let (client, connection) = connection_pair();
    step.transcript()
        .add("check   connected to you (server_turn)".to_string());
    let yours = connection.try_clone().ok();
    let turn = Turn::start(
        step,
        "server_turn(&mut connection)",
        connection,
        server_turn,
    );
    (CheckEnd::new(step, client, yours), turn)
}

/// What the check read, in words: like `Received::describe`, with the time
/// the check really waited.
fn describe(received: &Received) -> String {
    match received.end {
        End::TimedOut => format!(
            "{} and then nothing more for {} s",
            show(&received.bytes),
            REPLY_WAIT.as_secs_f32()
        ),
        _ => received.describe(),
    }
}

/// Adds to `report` what the check read where `expected` should have come,
/// with the hint that fits: a hang has its own.
fn got_received(
    report: seesaw_checks::report::Report,
    expected: &[u8],
    received: &Received,
    hang_hint: &str,
) -> seesaw_checks::report::Report {
    if received.end != End::TimedOut {
        return report.got_received(expected, received);
    }
    let report = report.got(&describe(received));
    match received.bytes.is_empty() {
        true => report.observed(&format!(
            "nothing came back within {} s: your code is waiting for something. {hang_hint}",
            REPLY_WAIT.as_secs_f32()
        )),
        false => report.observed(&format!(
            "{} came, then nothing for {} s: your code stopped short of the newline, or is \
             waiting for something. {hang_hint}",
            show(&received.bytes),
            REPLY_WAIT.as_secs_f32()
        )),
    }
}

/// Fails the step with what `reply` shows, and with your code's own error if
/// it returned one: that is usually the cause.
fn fail_with_reply(step: &Step, turn: Turn, what: &str, expected: &[u8], reply: &Received) -> ! {
    let report = step
        .report()
        .did(what)
        .expected(&format!("{} back", show(expected)));
    // After a hang your code is still running: no need to wait for it.
    let outcome = match reply.end {
        End::TimedOut => None,
        _ => turn.returned_by_now(step),
    };
    match outcome {
        Some(Err(error)) => report
            .got(&describe(reply))
            .got_error(&error)
            .hint("your code returned this error instead of finishing its turn: its message says why.")
            .fail(),
        _ => got_received(report, expected, reply, SERVER_HANGS).fail(),
    }
}

/// The check's client has sent `message`: fails unless the echo `expected`
/// comes back, server_turn returns it, and nothing more comes after it.
fn expect_echo(step: &Step, mut client: CheckEnd, turn: Turn, message: &[u8], expected: &[u8]) {
    let what = format!("the check's client sent {}", show(message));
    let reply = if expected.ends_with(b"\n") {
        client.read_line()
    } else {
        client.read_to_end()
    };
    let complete = match reply.end {
        End::Newline => true,
        End::Closed => !expected.ends_with(b"\n"),
        _ => false,
    };
    if reply.bytes != expected || !complete {
        fail_with_reply(step, turn, &what, expected, &reply);
    }
    let returned = turn.finish_ok(step, SERVER_HANGS);
    if returned != expected {
        step.report()
            .did(&what)
            .expected(&format!(
                "server_turn to return the message it echoed, {}",
                show(expected)
            ))
            .got(&show(&returned))
            .hint("return the very bytes you wrote back, newline included.")
            .fail();
    }
    // server_turn has returned, so its end has sent end of file: anything before
    // the end of file was written after the reply.
    let after = client.read_to_end();
    if !after.bytes.is_empty() || after.end != End::Closed {
        step.report()
            .did(&what)
            .expected("nothing after the echo: server_turn returns and the connection closes")
            .got(&describe(&after))
            .hint("write the message back once, and nothing else: one message, one echo.")
            .fail();
    }
}

#[test]
fn step_01_the_server_echoes_a_message() {
    let step = Step::new(
        "step 1: server_turn reads a message and writes it back",
        CHAPTER,
    );
    let (mut client, turn) = start_server_turn(&step);
    client.send(b"hello\n");
    expect_echo(&step, client, turn, b"hello\n", b"hello\n");
}

#[test]
fn step_02_the_server_echoes_bytes_exactly() {
    let step = Step::new(
        "step 2: server_turn echoes any bytes exactly: not only UTF-8, NUL, 0xFF, spaces, \\r",
        CHAPTER,
    );
    for message in AWKWARD_MESSAGES {
        let (mut client, turn) = start_server_turn(&step);
        client.send(message);
        expect_echo(&step, client, turn, message, message);
    }
}

#[test]
fn step_03_the_server_reads_the_whole_message_in_pieces() {
    let step = Step::new(
        "step 3: server_turn reads up to the newline, even when the message comes in pieces",
        CHAPTER,
    );
    let (mut client, turn) = start_server_turn(&step);
    // Three pieces, far enough apart that a "wait a little, then read once"
    // gets only part of the message.
    client.send_in_pieces(&[b"hel", b"lo, wor", b"ld\n"], PIECE_PAUSE * 2);
    expect_echo(&step, client, turn, b"hello, world\n", b"hello, world\n");
}

#[test]
fn step_04_the_server_echoes_one_message_only() {
    let step = Step::new(
        "step 4: server_turn echoes one message, even when two arrive at once",
        CHAPTER,
    );
    let (mut client, turn) = start_server_turn(&step);
    client.send(b"one\ntwo\n");
    expect_echo(&step, client, turn, b"one\ntwo\n", b"one\n");
}

#[test]
fn step_05_the_server_echoes_a_tail_without_newline() {
    let step = Step::new(
        "step 5: server_turn echoes the last bytes as they are when the client closes before a newline",
        CHAPTER,
    );
    for tail in [
        &b"last words, no newline"[..],
        b"\x00 ends in half a character \xc3",
    ] {
        let (mut client, turn) = start_server_turn(&step);
        client.send(tail);
        client.close_sending();
        expect_echo(&step, client, turn, tail, tail);
    }
}

#[test]
fn step_06_the_server_handles_a_client_that_sends_nothing() {
    let step = Step::new(
        "step 6: server_turn returns an empty message when the client closes without sending anything",
        CHAPTER,
    );
    let (mut client, turn) = start_server_turn(&step);
    client.close_sending();
    let returned = turn.finish_ok(
        &step,
        "reading at end of file returns 0 bytes at once: stop there.",
    );
    if !returned.is_empty() {
        step.report()
            .expected("an empty message, b\"\"")
            .got(&show(&returned))
            .fail();
    }
    let after = client.read_to_end();
    if !after.bytes.is_empty() {
        step.report()
            .expected("server_turn to write nothing: there was no message")
            .got(&describe(&after))
            .fail();
    }
}

/// Makes the check's `client` vanish like a crashed client: it closes with a
/// byte unread, and closing a socket with unread bytes makes the OS reset the
/// connection. The byte is written through `yours`, a copy of your end.
fn vanish(step: &Step, client: TcpStream, yours: &mut TcpStream) {
    yours
        .write_all(b"?")
        .expect("the check could not write through its copy of your end");
    // Wait (bounded) until the byte is there, unread, so that the close resets.
    let _ = client.set_read_timeout(Some(REPLY_WAIT));
    let _ = client.peek(&mut [0u8; 1]);
    step.transcript().add(
        "check   vanished: closed with a byte unread (a reset), like a crashed client".to_string(),
    );
    drop(client);
}

#[test]
fn step_07_the_server_reports_a_client_that_vanishes() {
    let step = Step::new(
        "step 7: server_turn returns an error, not a panic, when the client resets the connection",
        CHAPTER,
    );
    let (mut client, connection) = connection_pair();
    step.transcript()
        .add("check   connected to you (server_turn)".to_string());
    let mut yours = connection
        .try_clone()
        .expect("the check could not clone its socket");
    let turn = Turn::start(
        &step,
        "server_turn(&mut connection)",
        connection,
        server_turn,
    );
    step.transcript()
        .add(format!("check → you   {}", show(b"half a mess")));
    let _ = client.write_all(b"half a mess");
    vanish(&step, client, &mut yours);
    let outcome = turn.finish(
        &step,
        "a reset makes the read fail at once: return that error instead of reading on.",
    );
    if let Ok(message) = outcome {
        step.report()
            .did("the check's client sent half a message, then reset the connection")
            .expected("an error: the read failed (connection reset)")
            .got(&format!("Ok({})", show(&message)))
            .hint(
                "a reset is not an end of file: the read fails, and server_turn returns that \
                 error (the server then serves its next client). Let it out with `?`, \
                 context added if you like; never ignore it, and never unwrap or expect it: \
                 a panic would take the whole server down for one client's crash.",
            )
            .fail();
    }
}

/// Runs your client_turn with `message` on a fresh connection, whose server
/// end the check holds.
fn start_client_turn(step: &Step, message: &'static [u8]) -> (CheckEnd, Turn) {
    let (connection, server) = connection_pair();
    step.transcript()
        .add("check   accepted your connection (client_turn)".to_string());
    let call = format!("client_turn(&mut connection, {})", show(message));
    let yours = connection.try_clone().ok();
    let turn = Turn::start(step, &call, connection, move |connection| {
        client_turn(connection, message)
    });
    (CheckEnd::new(step, server, yours), turn)
}

/// Fails unless the check's server received exactly `message`.
fn expect_message(step: &Step, server: &mut CheckEnd, turn: Turn, message: &[u8]) -> Turn {
    let received = server.read_line();
    if received.bytes == message && received.end == End::Newline {
        return turn;
    }
    let report = step
        .report()
        .did(&format!("called client_turn with {}", show(message)))
        .expected(&format!("the check's server to receive {}", show(message)));
    match turn.returned_by_now(step) {
        Some(Err(error)) => report.got(&describe(&received)).got_error(&error).fail(),
        _ => got_received(
            report.hint("write the whole message, newline included, before you read."),
            message,
            &received,
            "Does client_turn write the whole message, newline included, before it reads?",
        )
        .fail(),
    }
}

/// Waits for client_turn to return, and fails unless it returned `reply`.
fn expect_returned(step: &Step, turn: Turn, reply: &[u8], hang_hint: &str, hint: &str) {
    let returned = turn.finish_ok(step, hang_hint);
    if returned != reply {
        let difference = seesaw_checks::bytes::difference(reply, &returned).unwrap_or_default();
        step.report()
            .expected(&format!("client_turn to return the reply, {}", show(reply)))
            .got(&show(&returned))
            .observed(&format!("{difference}. {hint}"))
            .fail();
    }
}

/// After client_turn has returned, its connection is closed: fails if the
/// check's server got anything more than the message.
fn expect_nothing_more(step: &Step, server: &mut CheckEnd) {
    let after = server.read_to_end();
    if !after.bytes.is_empty() {
        step.report()
            .expected("nothing after the message: one message, then the reply is read")
            .got(&describe(&after))
            .hint("write the message once, and nothing else.")
            .fail();
    }
}

/// One whole turn of your client against the check's server, which answers
/// `message` with `reply`.
fn client_turn_answered(step: &Step, message: &'static [u8], reply: &[u8], hint: &str) {
    let (mut server, turn) = start_client_turn(step, message);
    let turn = expect_message(step, &mut server, turn, message);
    server.send(reply);
    expect_returned(step, turn, reply, CLIENT_HANGS, hint);
    expect_nothing_more(step, &mut server);
}

#[test]
fn step_08_the_client_sends_and_reads_the_reply() {
    let step = Step::new(
        "step 8: client_turn sends the message, then returns the reply",
        CHAPTER,
    );
    client_turn_answered(
        &step,
        b"hello\n",
        b"HELLO\n",
        "Return the bytes you read from the server, newline included.",
    );
}

#[test]
fn step_09_the_client_keeps_bytes_exact() {
    let step = Step::new(
        "step 9: client_turn keeps any bytes exactly, both ways, to the very last byte",
        CHAPTER,
    );
    let hint = "Keep the message and the reply as bytes (Vec<u8>): a String, read_line or \
                from_utf8_lossy changes bytes that are not UTF-8, and trimming loses spaces and \\r.";
    for message in AWKWARD_MESSAGES {
        client_turn_answered(&step, message, message, hint);
    }
    // Non-UTF-8 in the very last bytes the client reads.
    client_turn_answered(&step, b"last bytes?\n", b"half a character \xc3\n", hint);
}

#[test]
fn step_10_the_client_reads_a_reply_of_any_length() {
    let step = Step::new(
        "step 10: client_turn reads the reply up to its newline, longer or shorter than the message",
        CHAPTER,
    );
    let hint = "The reply ends at its newline, not after as many bytes as you sent.";
    client_turn_answered(
        &step,
        b"hi\n",
        b"a reply much longer than the message it answers\n",
        hint,
    );
    client_turn_answered(&step, b"a message longer than its reply\n", b"ok\n", hint);
}

#[test]
fn step_11_the_client_waits_for_a_late_reply_in_pieces() {
    let step = Step::new(
        "step 11: client_turn waits for the whole reply, even when it comes late and in pieces",
        CHAPTER,
    );
    let (mut server, turn) = start_client_turn(&step, b"ping\n");
    let turn = expect_message(&step, &mut server, turn, b"ping\n");
    // The reply comes late: meanwhile nothing more may come from the client.
    let extra = server.read_for(QUIET);
    if !extra.bytes.is_empty() || extra.end != End::TimedOut {
        step.report()
            .expected("nothing after the message, while the client waits for the reply")
            .got(&describe(&extra))
            .hint("write the message once, then only read.")
            .fail();
    }
    server.send_in_pieces(&[b"po", b"n", b"g\n"], PIECE_PAUSE);
    expect_returned(
        &step,
        turn,
        b"pong\n",
        CLIENT_HANGS,
        "One read() returns only what has arrived so far, and a reply may come late, in \
         pieces: keep reading until its newline.",
    );
}

#[test]
fn step_12_the_client_reports_a_server_that_closes_without_replying() {
    let step = Step::new(
        "step 12: client_turn is an error when the server closes without replying",
        CHAPTER,
    );
    let (mut server, turn) = start_client_turn(&step, b"anyone there?\n");
    let turn = expect_message(&step, &mut server, turn, b"anyone there?\n");
    server.close("closed the connection without replying");
    let outcome = turn.finish(
        &step,
        "the server has closed: reading returns 0 bytes (end of file) at once. Stop there.",
    );
    if let Ok(reply) = outcome {
        step.report()
            .expected("an error: the server closed the connection without replying")
            .got(&format!("Ok({})", show(&reply)))
            .hint("reading 0 bytes means the server has closed: return an error then (bail!), not an empty reply.")
            .fail();
    }
}

/// Connects to the server program at `addr`, sends `message`, and fails
/// unless the echo comes back and the server then closes the connection.
fn expect_program_echo(step: &Step, server: &mut Server, addr: SocketAddr, message: &[u8]) {
    let stream = TcpStream::connect_timeout(&addr, DEADLINE).unwrap_or_else(|error| {
        server
            .report(step)
            .expected(&format!("to connect to the server at {addr}"))
            .got(&format!("an error: {error}"))
            .fail()
    });
    let local = stream
        .local_addr()
        .expect("a connected socket has a local address");
    step.transcript()
        .add(format!("check   connected to you at {addr} from {local}"));
    let mut client = CheckEnd::new(step, stream, None);
    server.wait_for_line(step, &format!("accepted {local}"));
    client.send(message);
    let reply = client.read_line();
    if reply.bytes != message || reply.end != End::Newline {
        let report = server
            .report(step)
            .expected(&format!("{} back", show(message)))
            .hint("the server's stderr above shows what your server_turn did with this client; a line `PEER: ...` is the error it returned.");
        got_received(report, message, &reply, SERVER_HANGS).fail();
    }
    let after = client.read_to_end();
    if !after.bytes.is_empty() || after.end != End::Closed {
        server
            .report(step)
            .expected("the server to close the connection after one echo, and write nothing more")
            .got(&describe(&after))
            .fail();
    }
    // The server narrates the echo on stderr, with the length server_turn returned.
    for (said, peer) in [
        ("read", format!("bytes from {local}")),
        ("wrote", format!("bytes to {local}")),
    ] {
        let line = server.wait_for_line(step, &peer);
        let expected = format!("{said} {} {peer}", message.len());
        if !line.ends_with(&expected) {
            server
                .report(step)
                .expected(&format!("the line `{expected}` on stderr"))
                .got(&format!("`{line}`"))
                .hint("the server narrates the length of what your server_turn returned: return the very bytes you echoed.")
                .fail();
        }
    }
}

#[test]
fn step_13_the_server_program_echoes_one_message_per_connection() {
    let step = Step::new(
        "step 13: `server` echoes one message on each connection, says so, and closes it",
        CHAPTER,
    );
    for listen_on in ["127.0.0.1:0", "[::1]:0"] {
        if listen_on.starts_with('[') && TcpListener::bind(listen_on).is_err() {
            continue; // no IPv6 loopback on this machine
        }
        let mut server = Server::start(program!(), &["server", listen_on]);
        let addr = server.listening_address(&step);
        for message in [&b"first\n"[..], b"second \xff\n"] {
            expect_program_echo(&step, &mut server, addr, message);
        }
    }
}

/// The check's server for the client program: accepts one connection, reads
/// a line, answers `reply`. Returns what it received, or None if no client came.
fn answer_once(
    step: &Step,
    listener: TcpListener,
    reply: &'static [u8],
) -> thread::JoinHandle<Option<Received>> {
    let step = step.clone();
    thread::spawn(move || {
        let stream = accept_within(&listener, DEADLINE)?;
        step.transcript()
            .add("check   accepted a connection from your client".to_string());
        let mut client = CheckEnd::new(&step, stream, None);
        let received = client.read_line();
        client.send(reply);
        // Wait for the client to close, so that it can read the reply first.
        let _ = client.read_to_end();
        Some(received)
    })
}

/// A connection on `listener`, if one comes within `wait`.
fn accept_within(listener: &TcpListener, wait: Duration) -> Option<TcpStream> {
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

/// Runs the client program against the check's server on `listen_on`, with
/// `stdin`, and fails unless the server receives `line` and the program prints
/// the reply exactly and exits 0.
fn expect_client_program(step: &Step, listen_on: &str, stdin: &[u8], line: &[u8]) {
    let reply = b"reply \x00\xff\r\n";
    let listener = TcpListener::bind(listen_on).expect("the check could not listen");
    let addr = listener
        .local_addr()
        .expect("a bound listener has an address");
    let answering = answer_once(step, listener, reply);
    let finished = run(program!(), &["client", &addr.to_string()], stdin);
    let received = answering.join().unwrap_or(None);
    let Some(received) = received else {
        finished
            .report(step)
            .expected(&format!(
                "your client to connect to the check's server at {addr}"
            ))
            .got("no connection came")
            .fail()
    };
    if received.bytes != line || received.end != End::Newline {
        let report = finished
            .report(step)
            .expected(&format!("the check's server to receive {}", show(line)));
        got_received(
            report,
            line,
            &received,
            "Does client_turn write the whole message before it reads?",
        )
        .fail();
    }
    if finished.code != Some(0) || finished.stdout != reply {
        finished
            .report(step)
            .expected(&format!(
                "exit code 0 and on stdout exactly the reply, {}",
                show(reply)
            ))
            .got(&format!(
                "{}, stdout {}",
                exit_of(finished.code),
                show(&finished.stdout)
            ))
            .observed(
                "the check's server received your line and replied (see the transcript): \
                 whatever the program's own advice says, the fault is on the client's side, \
                 in client_turn.",
            )
            .fail();
    }
}

#[test]
fn step_14_the_client_program_sends_a_line_and_prints_the_reply() {
    let step = Step::new(
        "step 14: `client` sends one line of stdin, newline added, and prints the reply",
        CHAPTER,
    );
    expect_client_program(
        &step,
        "127.0.0.1:0",
        b"no newline at the end",
        b"no newline at the end\n",
    );
    if TcpListener::bind("[::1]:0").is_ok() {
        expect_client_program(&step, "[::1]:0", b" \tspaces \xff\n", b" \tspaces \xff\n");
    }
}

#[test]
fn step_15_the_client_program_explains_a_server_that_closes() {
    let step = Step::new(
        "step 15: `client` explains a server that closes without replying, exit code 1",
        CHAPTER,
    );
    let listener = TcpListener::bind("127.0.0.1:0").expect("the check could not listen");
    let addr = listener
        .local_addr()
        .expect("a bound listener has an address");
    let closing = {
        let step = step.clone();
        thread::spawn(move || {
            let stream = accept_within(&listener, DEADLINE)?;
            let mut client = CheckEnd::new(&step, stream, None);
            let received = client.read_line();
            client.close("closed the connection without replying");
            Some(received)
        })
    };
    let finished = run(program!(), &["client", &addr.to_string()], b"hello?\n");
    let _ = closing.join();
    finished.expect_one_line_error(&step, &[]);
}

#[test]
fn step_16_the_client_program_explains_a_refused_connection() {
    let step = Step::new(
        "step 16: `client` explains a refused connection in one line, exit code 1",
        CHAPTER,
    );
    let nowhere = unused_address().to_string();
    run(program!(), &["client", &nowhere], b"hello\n")
        .expect_one_line_error(&step, &[&nowhere, "refused"]);
}

/// A program's exit, in words.
fn exit_of(code: Option<i32>) -> String {
    match code {
        Some(code) => format!("exit code {code}"),
        None => "no exit: the check stopped it".to_string(),
    }
}

// Your own seesaw: your client, the check in the middle, your server.

/// What went through the check's relay, each way.
#[derive(Default)]
struct Relayed {
    to_server: Vec<u8>,
    to_client: Vec<u8>,
}

/// Passes bytes from `from` to `to` until `from` closes, noting them in the
/// transcript as `label` and in `relayed` through `keep`.
fn pump(
    mut from: TcpStream,
    mut to: TcpStream,
    transcript: Transcript,
    label: &'static str,
    relayed: Arc<Mutex<Relayed>>,
    keep: fn(&mut Relayed) -> &mut Vec<u8>,
) {
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        match from.read(&mut chunk) {
            Ok(count @ 1..) => {
                transcript.add(format!("{label}   {}", show(&chunk[..count])));
                keep(&mut relayed.lock().unwrap()).extend_from_slice(&chunk[..count]);
                if to.write_all(&chunk[..count]).is_err() {
                    break;
                }
            }
            _ => {
                transcript.add(format!("{label}   (closed its sending side)"));
                break;
            }
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}

/// The check's relay: accepts your client on `listener`, connects to your
/// server at `server`, and passes the bytes on both ways, noting them.
fn start_relay(step: &Step, listener: TcpListener, server: SocketAddr) -> Arc<Mutex<Relayed>> {
    let relayed = Arc::new(Mutex::new(Relayed::default()));
    let transcript = step.transcript().clone();
    let kept = Arc::clone(&relayed);
    thread::spawn(move || {
        let Some(client) = accept_within(&listener, DEADLINE) else {
            return;
        };
        let Ok(upstream) = TcpStream::connect_timeout(&server, DEADLINE) else {
            transcript.add("check   could not connect to your server".to_string());
            return;
        };
        transcript.add("check   your client connected; passing its bytes on".to_string());
        let (Ok(client_copy), Ok(upstream_copy)) = (client.try_clone(), upstream.try_clone())
        else {
            return;
        };
        let (transcript_copy, kept_copy) = (transcript.clone(), Arc::clone(&kept));
        thread::spawn(move || {
            pump(
                client_copy,
                upstream_copy,
                transcript_copy,
                "your client → your server",
                kept_copy,
                |relayed| &mut relayed.to_server,
            )
        });
        pump(
            upstream,
            client,
            transcript,
            "your server → your client",
            kept,
            |relayed| &mut relayed.to_client,
        );
    });
    relayed
}

#[test]
fn step_17_your_client_talks_to_your_server() {
    let step = Step::new(
        "step 17: your own seesaw: your `client` talks to your `server`",
        CHAPTER,
    );
    let line = b"your own seesaw \xe2\x9a\x96 \xff\n";
    let mut server = Server::start(program!(), &["server", "127.0.0.1:0"]);
    let server_addr = server.listening_address(&step);
    let listener = TcpListener::bind("127.0.0.1:0").expect("the check could not listen");
    let relay_addr = listener
        .local_addr()
        .expect("a bound listener has an address");
    let relayed = start_relay(&step, listener, server_addr);
    let finished = run(program!(), &["client", &relay_addr.to_string()], line);
    if finished.code == Some(0) && finished.stdout == line {
        return;
    }
    let relayed = relayed.lock().unwrap();
    let blame = if finished.stderr.contains("not yet implemented") {
        TODO_HINT
    } else if finished.stderr.contains("panicked") {
        "your client panicked (its stderr is above): a failure should be an Err, not a panic."
    } else if relayed.to_server != line {
        "your client did not send the line as it came from stdin (see the transcript): look at client_turn's writing."
    } else if relayed.to_client != line {
        "your client sent the line, and your server did not echo it exactly (see the transcript and its stderr): look at server_turn."
    } else {
        "your server echoed the line exactly (see the transcript): look at how client_turn reads the reply and what it returns."
    };
    let report = server
        .report(&step)
        .did(&format!(
            "ran `{}` with on stdin {}; the check passed the bytes between them, from {relay_addr} to {server_addr}",
            finished.command,
            show(&finished.stdin)
        ))
        .did(&format!("the client's stderr:\n{}", finished.stderr))
        .expected(&format!("exit code 0 and on stdout exactly {}", show(line)))
        .got(&format!(
            "{}, stdout {}",
            exit_of(finished.code),
            show(&finished.stdout)
        ));
    drop(relayed);
    report.observed(blame).fail();
}
