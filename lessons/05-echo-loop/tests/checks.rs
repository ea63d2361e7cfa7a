//! The checks of lesson 5, in the order you meet them: the first failure is
//! your next step. Run them with `cargo test -p lesson-05-echo-loop`.
//!
//! To check your server, the check plays the client; to check your client, the
//! check plays the server. Only the last check has your client talk to your
//! own server, once each side has passed against the check.

use std::io::{BufReader, Cursor, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use lesson_05_echo_loop::{
    Client, MAX_MESSAGE, Message, TOO_LONG_REPLY, read_message, serve_connection,
};
use seesaw_checks::DEADLINE;
use seesaw_checks::bounded::{self, Running};
use seesaw_checks::bytes::{difference, show, show_list, thousands};
use seesaw_checks::peer::{CheckServer, End, PIECE_PAUSE, Peer, Received, connected_pair};
use seesaw_checks::program;
use seesaw_checks::program::{Server, run};
use seesaw_checks::report::{self, Step, hint_for_kind, hint_for_received};

const CHAPTER: &str = "05-echo-loop";

const READ_HANGS: &str = "read_message reads from memory here, so it cannot wait for anything. \
     Does it loop without stopping at end of file (a read of 0 bytes)?";

const SERVER_HANGS: &str = "the check's client is waiting for you. Does serve_connection \
     stop reading at each newline, answer each message before reading the next, and \
     return at end of file (Message::End)?";

const CLIENT_HANGS: &str = "the check's server has sent its reply and waits. Does your \
     client stop reading at the reply's newline, keep reading until it comes (a reply may \
     arrive late, in pieces), and keep one buffer for the whole connection?";

// ---------------------------------------------------------------------------
// read_message (steps 1 to 4): from memory, no network yet.
// ---------------------------------------------------------------------------

/// A Message as the reports show it: `Line(b"hi\n")`, bytes always escaped.
fn describe(message: &Message) -> String {
    match message {
        Message::Line(bytes) => format!("Line({})", show(bytes)),
        Message::Tail(bytes) => format!("Tail({})", show(bytes)),
        Message::End => "End".to_string(),
        Message::TooLong => "TooLong".to_string(),
    }
}

/// Messages as the reports show them, one after another.
fn describe_all(messages: &[Message]) -> String {
    let shown: Vec<String> = messages.iter().map(describe).collect();
    format!("[{}]", shown.join(", "))
}

/// "once", "twice", "3 times".
fn times(count: usize) -> String {
    match count {
        1 => "once".to_string(),
        2 => "twice".to_string(),
        _ => format!("{count} times"),
    }
}

/// What the student's read_message returned, call after call, until an error.
struct Reads {
    messages: Vec<Message>,
    error: Option<anyhow::Error>,
}

/// Calls the student's read_message on `input`, which is in memory, at most
/// `count` times: it stops at the first error, End or TooLong.
fn read_messages(step: &Step, input: &[u8], count: usize) -> Reads {
    let call = format!("read_message on the input {}", show(input));
    let mut reader = BufReader::new(Cursor::new(input.to_vec()));
    bounded::run(step, &call, READ_HANGS, move || {
        let mut reads = Reads {
            messages: Vec::new(),
            error: None,
        };
        for _ in 0..count {
            match read_message(&mut reader) {
                Ok(message) => {
                    let last = matches!(message, Message::End | Message::TooLong);
                    reads.messages.push(message);
                    if last {
                        break;
                    }
                }
                Err(error) => {
                    reads.error = Some(error);
                    break;
                }
            }
        }
        reads
    })
}

/// Fails unless read_message, called on `input` again and again, returns
/// exactly `expected`.
fn expect_messages(step: &Step, input: &[u8], expected: &[Message]) {
    expect_one_of(step, input, &[expected]);
}

/// Like [`expect_messages`], where more than one answer is right.
fn expect_one_of(step: &Step, input: &[u8], allowed: &[&[Message]]) {
    let expected = allowed[0];
    let most = allowed.iter().map(|answer| answer.len()).max().unwrap_or(1);
    let reads = read_messages(step, input, most);
    let right = allowed.contains(&reads.messages.as_slice());
    if reads.error.is_none() && right {
        return;
    }
    let answers: Vec<String> = allowed.iter().map(|answer| describe_all(answer)).collect();
    let report = step
        .report()
        .did(&format!(
            "called read_message {} on the input {}",
            times(reads.messages.len() + usize::from(reads.error.is_some())),
            show(input)
        ))
        .expected(&answers.join("\n or: "));
    match reads.error {
        Some(error) => report
            .got(&format!("{}, then:", describe_all(&reads.messages)))
            .got_error(&error)
            .hint("read_message returns an error only when reading fails; end of file is Message::End.")
            .fail(),
        None => {
            let hint = hint_for_messages(expected, &reads.messages);
            report
                .got(&describe_all(&reads.messages))
                .observed(&hint)
                .fail()
        }
    }
}

/// The hint for the first message that differs from what was expected.
fn hint_for_messages(expected: &[Message], got: &[Message]) -> String {
    let Some((number, (want, have))) = expected
        .iter()
        .zip(got)
        .enumerate()
        .find(|(_, (want, have))| want != have)
    else {
        return "read the step's title again: it says what read_message must return.".to_string();
    };
    let which = format!("call {} returned {}: ", number + 1, describe(have));
    let why = match (want, have) {
        (Message::Line(want) | Message::Tail(want), Message::Line(have) | Message::Tail(have))
            if want != have =>
        {
            format!(
                "{}. Keep the message's bytes exactly as they came, newline included.",
                difference(want, have).unwrap_or_default()
            )
        }
        (Message::Line(_), Message::Tail(_)) => {
            "these bytes end with a newline: that makes them a Line.".to_string()
        }
        (Message::Tail(_), Message::Line(_)) => {
            "these bytes have no newline after them: read just before end of file, \
             they are a Tail, not a Line."
                .to_string()
        }
        (Message::End, Message::Line(bytes) | Message::Tail(bytes)) if bytes.is_empty() => {
            "a read of 0 bytes means end of file: that is End, not an empty message.".to_string()
        }
        (Message::Line(_) | Message::Tail(_), Message::End) => {
            "End came too early: there were still bytes in the input.".to_string()
        }
        (Message::End, _) => {
            "the input has nothing more: the next read gives 0 bytes, which is End.".to_string()
        }
        (Message::TooLong, Message::Line(bytes) | Message::Tail(bytes))
            if bytes.len() > MAX_MESSAGE =>
        {
            format!(
                "{} bytes came back as one message, more than MAX_MESSAGE ({}). \
                 Stop reading at the limit, and call that TooLong.",
                thousands(bytes.len()),
                thousands(MAX_MESSAGE)
            )
        }
        (Message::TooLong, _) => format!(
            "the limit was reached without a newline: at {} bytes with no newline in \
             sight, the message is too long, whatever comes after.",
            thousands(MAX_MESSAGE)
        ),
        (Message::Line(bytes), Message::TooLong) if bytes.len() == MAX_MESSAGE => format!(
            "this message is exactly MAX_MESSAGE ({}) bytes, newline included, and that \
             is allowed: only a message longer than that is TooLong. An off-by-one?",
            thousands(MAX_MESSAGE)
        ),
        (Message::Line(_) | Message::Tail(_), Message::TooLong) => format!(
            "this message is shorter than MAX_MESSAGE ({}): the limit is per message. \
             Does your count of bytes carry over from the messages before it?",
            thousands(MAX_MESSAGE)
        ),
        _ => "read the step's title again: it says what read_message must return.".to_string(),
    };
    which + &why
}

/// `count` bytes `b'x'`, then the bytes of `end`.
fn xs(count: usize, end: &[u8]) -> Vec<u8> {
    let mut bytes = vec![b'x'; count];
    bytes.extend_from_slice(end);
    bytes
}

#[test]
fn step_01_read_message_finds_whole_messages() {
    let step = Step::new(
        "step 1: read_message returns each message, newline included, bytes exact, then End",
        CHAPTER,
    );
    let lines: [&[u8]; 6] = [
        b"hello\n",
        b"  spaces at either end  \n",
        b"\ttabs\tand a carriage return\r\n",
        b"\xff\x00 not UTF-8 \xfe\n",
        b"\n",
        b"\x00\n",
    ];
    let mut expected: Vec<Message> = lines.iter().map(|l| Message::Line(l.to_vec())).collect();
    expected.push(Message::End);
    expect_messages(&step, &lines.concat(), &expected);
}

#[test]
fn step_02_read_message_finds_a_tail_without_newline() {
    let step = Step::new(
        "step 2: read_message returns the last bytes without a newline as a Tail, then End",
        CHAPTER,
    );
    expect_messages(
        &step,
        b"one\n last words ",
        &[
            Message::Line(b"one\n".to_vec()),
            Message::Tail(b" last words ".to_vec()),
            Message::End,
        ],
    );
    // Not UTF-8 in the very last bytes, and a lone \r: still bytes, kept exact.
    expect_messages(
        &step,
        b"\t\xff\xfe\r",
        &[Message::Tail(b"\t\xff\xfe\r".to_vec()), Message::End],
    );
    // Nothing at all: no empty Tail, just End.
    expect_messages(&step, b"", &[Message::End]);
}

#[test]
fn step_03_read_message_keeps_the_limit_per_message() {
    let step = Step::new(
        "step 3: read_message accepts messages up to MAX_MESSAGE bytes, each, and no more",
        CHAPTER,
    );
    let at_limit = xs(MAX_MESSAGE - 1, b"\n");
    // Up to the limit, newline included: a Line.
    expect_messages(
        &step,
        &xs(MAX_MESSAGE - 2, b"\n"),
        &[Message::Line(xs(MAX_MESSAGE - 2, b"\n")), Message::End],
    );
    expect_messages(
        &step,
        &at_limit,
        &[Message::Line(at_limit.clone()), Message::End],
    );
    // One byte over, the newline being that byte: too long.
    expect_messages(&step, &xs(MAX_MESSAGE, b"\n"), &[Message::TooLong]);
    // Without a newline, before end of file: a Tail while under the limit...
    expect_messages(
        &step,
        &xs(MAX_MESSAGE - 1, b""),
        &[Message::Tail(xs(MAX_MESSAGE - 1, b"")), Message::End],
    );
    // ...exactly at the limit either answer is right: whether one more byte
    // would have come can only be known by reading past the limit...
    expect_one_of(
        &step,
        &xs(MAX_MESSAGE, b""),
        &[
            &[Message::TooLong],
            &[Message::Tail(xs(MAX_MESSAGE, b"")), Message::End],
        ],
    );
    // ...and over it, too long.
    expect_messages(&step, &xs(MAX_MESSAGE + 1, b""), &[Message::TooLong]);
    expect_messages(&step, &xs(MAX_MESSAGE, b"x\n"), &[Message::TooLong]);
    // The limit is per message: two messages at the limit, then twenty that
    // add up to more than the limit, are all fine.
    let mut input = [at_limit.clone(), at_limit.clone()].concat();
    let mut expected = vec![Message::Line(at_limit.clone()), Message::Line(at_limit)];
    for number in 0..20 {
        let line = [format!("{number:04} ").as_bytes(), &xs(5_000, b"\n")].concat();
        input.extend_from_slice(&line);
        expected.push(Message::Line(line));
    }
    expected.push(Message::End);
    expect_messages(&step, &input, &expected);
}

/// How much of the input step 4 gives read_message: 16 MiB without a newline.
const FLOOD: usize = 16 * 1024 * 1024;

/// The check's buffer between the flood and read_message.
const CHECK_BUFFER: usize = 8 * 1024;

/// Step 4's input: `left` bytes `b'x'` and no newline, counting how many
/// bytes were taken from it.
struct CountingFlood {
    left: usize,
    taken: usize,
}

impl Read for CountingFlood {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        let count = buffer.len().min(self.left);
        buffer[..count].fill(b'x');
        self.left -= count;
        self.taken += count;
        Ok(count)
    }
}

#[test]
fn step_04_read_message_never_reads_past_the_limit() {
    let step = Step::new(
        "step 4: read_message stops reading at MAX_MESSAGE bytes: it never reads the rest first",
        CHAPTER,
    );
    let flood = CountingFlood {
        left: FLOOD,
        taken: 0,
    };
    let mut reader = BufReader::with_capacity(CHECK_BUFFER, flood);
    let call = format!(
        "read_message on {} bytes b\"x\" with no newline",
        thousands(FLOOD)
    );
    let (result, reader) = bounded::run(&step, &call, READ_HANGS, move || {
        (read_message(&mut reader), reader)
    });
    // What read_message consumed: what the check's buffer pulled from the
    // flood, less what still waits in that buffer (not read_message's doing).
    let consumed = reader.get_ref().taken - reader.buffer().len();
    let message = step.ok(&call, result);
    // Reading one byte past the limit, to see whether a newline follows, is fine.
    let within_limit = consumed <= MAX_MESSAGE + 1;
    if message == Message::TooLong && within_limit {
        return;
    }
    let report = step
        .report()
        .did(&format!(
            "gave read_message a reader of {} bytes b\"x\" with no newline, counting \
             the bytes your code took from it",
            thousands(FLOOD)
        ))
        .expected(&format!(
            "TooLong, after taking at most MAX_MESSAGE = {} bytes",
            thousands(MAX_MESSAGE)
        ))
        .got(&format!(
            "{}, after taking {} bytes",
            describe(&message),
            thousands(consumed)
        ));
    if within_limit {
        report
            .observed(&hint_for_messages(&[Message::TooLong], &[message]))
            .fail();
    }
    report
        .observed(&format!(
            "your code read {} bytes before it decided: a client that sends a gigabyte \
             without a newline would fill the server's memory first. Put the limit on the \
             read itself, so that it stops at MAX_MESSAGE bytes whether a newline came or not.",
            thousands(consumed)
        ))
        .fail();
}

// ---------------------------------------------------------------------------
// The check's quick end of a connection.
// ---------------------------------------------------------------------------

/// How long the check waits for what your code should send right after the
/// check's last move (a reply, the next message, an end of file): no network
/// round trip is needed, so this is shorter than the DEADLINE, and a hang is
/// explained sooner.
const QUICK: Duration = Duration::from_millis(500);

/// The check's end of one connection, like the support crate's `Peer`, but
/// with [`QUICK`] waits; it writes the same transcript.
struct QuickPeer {
    stream: TcpStream,
    step: Step,
    /// Bytes read past a newline, kept for the next read.
    pending: Vec<u8>,
}

impl QuickPeer {
    fn new(step: &Step, stream: TcpStream) -> QuickPeer {
        QuickPeer {
            stream,
            step: step.clone(),
            pending: Vec::new(),
        }
    }

    fn note(&self, line: String) {
        self.step.transcript().add(line);
    }

    /// Sends `bytes` in one write; a failure goes into the transcript.
    fn send(&mut self, bytes: &[u8]) {
        self.note(format!("check → you   {}", show(bytes)));
        if let Err(error) = self.stream.write_all(bytes) {
            self.note(format!("check   could not send: {error}"));
        }
    }

    /// Sends each piece in its own write, [`PIECE_PAUSE`] apart.
    fn send_in_pieces(&mut self, pieces: &[&[u8]]) {
        for (index, piece) in pieces.iter().enumerate() {
            if index > 0 {
                thread::sleep(PIECE_PAUSE);
            }
            self.send(piece);
        }
    }

    /// Sends `bytes` from another thread, for a peer that may stop reading.
    fn send_in_background(&self, bytes: Vec<u8>) {
        self.note(format!(
            "check → you   {} (sent in the background)",
            show(&bytes)
        ));
        let mut sender = self
            .stream
            .try_clone()
            .expect("the check could not clone its socket");
        thread::spawn(move || sender.write_all(&bytes));
    }

    /// Shuts down the check's sending side: the other side reads end of file.
    fn close_sending(&mut self) {
        self.note("check   closed its sending side (shutdown Write)".to_string());
        let _ = self.stream.shutdown(Shutdown::Write);
    }

    /// Closes the connection.
    fn close(self, why: &str) {
        self.note(format!("check   closed the connection{why}"));
    }

    /// Reads up to a newline, waiting at most [`QUICK`].
    fn read_line(&mut self) -> Received {
        self.read(true)
    }

    /// Reads until end of file, waiting at most [`QUICK`].
    fn read_to_close(&mut self) -> Received {
        self.read(false)
    }

    fn read(&mut self, stop_at_newline: bool) -> Received {
        let deadline = std::time::Instant::now() + QUICK;
        let mut bytes = std::mem::take(&mut self.pending);
        let end = loop {
            if let (true, Some(at)) = (stop_at_newline, bytes.iter().position(|&b| b == b'\n')) {
                self.pending = bytes.split_off(at + 1);
                break End::Newline;
            }
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                break End::TimedOut;
            }
            let _ = self.stream.set_read_timeout(Some(left));
            let mut chunk = [0u8; 64 * 1024];
            match self.stream.read(&mut chunk) {
                Ok(0) => break End::Closed,
                Ok(count) => bytes.extend_from_slice(&chunk[..count]),
                Err(error)
                    if matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) =>
                {
                    break End::TimedOut;
                }
                Err(error) => break End::Failed(error.kind()),
            }
        };
        if !bytes.is_empty() {
            self.note(format!("you → check   {}", show(&bytes)));
        }
        match end {
            End::Newline => {}
            End::Closed => self.note("you     closed the connection (end of file)".to_string()),
            End::TimedOut => {
                // Your code had everything it needed to answer: it hangs.
                self.step.note_waited_out();
                self.note(format!(
                    "check   waited {} s, nothing more came",
                    QUICK.as_secs_f32()
                ));
            }
            End::Failed(kind) => self.note(format!("check   read failed: {kind}")),
        }
        Received { bytes, end }
    }
}

// ---------------------------------------------------------------------------
// serve_connection (steps 5 to 12): the check plays the client.
// ---------------------------------------------------------------------------

/// Runs the student's serve_connection on the server end of a fresh connection.
fn start_server(step: &Step) -> (Peer, Running<anyhow::Result<()>>) {
    let (client, connection) = connected_pair(step);
    // A second handle keeps the socket open until a panic has been recorded.
    let keep = connection
        .try_clone()
        .expect("the check could not clone its socket");
    let running = bounded::start_with(step, "serve_connection(connection)", keep, move |_| {
        serve_connection(connection)
    });
    (client, running)
}

/// Sends `message` and fails unless exactly the same bytes come back.
fn expect_echo(step: &Step, client: &mut Peer, message: &[u8]) {
    client.send(message);
    expect_line(step, client, message, "the same bytes back");
}

/// Reads one line and fails unless it is exactly `expected`.
fn expect_line(step: &Step, client: &mut Peer, expected: &[u8], what: &str) {
    let reply = client.read_line();
    if reply.bytes != expected || reply.end != End::Newline {
        step.report()
            .expected(&format!("{what}: {}", show(expected)))
            .got_received(expected, &reply)
            .hint(SERVER_HANGS)
            .fail();
    }
}

/// The hint for what the check read where `expected` and then end of file
/// should have come.
fn hint_for_ending(expected: &[u8], received: &Received) -> String {
    match received.end {
        End::Failed(kind) => hint_for_kind(kind)
            .unwrap_or("the connection failed.")
            .to_string(),
        End::TimedOut if received.bytes == expected => {
            "everything came, but the connection stayed open: at end of file \
             (Message::End), return; that closes the connection."
                .to_string()
        }
        End::TimedOut => format!(
            "then nothing more came, and the connection stayed open. {}",
            difference(expected, &received.bytes).unwrap_or_default()
        ),
        End::Closed | End::Newline => {
            difference(expected, &received.bytes).unwrap_or_default() + "."
        }
    }
}

/// Reads until end of file, waiting at most [`QUICK`]; running out of time
/// counts as a hang (the later steps are skipped).
fn read_to_close(step: &Step, peer: &mut Peer) -> Received {
    let received = peer.read_for(QUICK);
    if received.end == End::TimedOut {
        step.note_waited_out();
    }
    received
}

/// Reads to end of file and fails unless exactly `expected` came before it,
/// with no reset.
fn expect_then_closed(step: &Step, client: &mut Peer, expected: &[u8], hint: &str) {
    let rest = read_to_close(step, client);
    if rest.bytes != expected || rest.end != End::Closed {
        step.report()
            .expected(&format!(
                "{} and then end of file: your server closes the connection",
                show(expected)
            ))
            .got(&rest.describe())
            .hint(hint)
            .observed(&hint_for_ending(expected, &rest))
            .fail();
    }
}

#[test]
fn step_05_the_server_echoes_many_messages_in_order() {
    let step = Step::new(
        "step 5: serve_connection echoes every message, bytes exact, in order, on one connection",
        CHAPTER,
    );
    let (mut client, running) = start_server(&step);
    let awkward: [&[u8]; 6] = [
        b"  spaces at either end  \n",
        b"\ttabs\tand a carriage return\r\n",
        b"\xff\x00 not UTF-8 \xfe\n",
        b"\n",
        b"\x00\n",
        b"last one\n",
    ];
    for number in 1..=10 {
        expect_echo(&step, &mut client, format!("message {number}\n").as_bytes());
    }
    for message in awkward {
        expect_echo(&step, &mut client, message);
    }
    client.close_sending();
    expect_then_closed(
        &step,
        &mut client,
        b"",
        "at end of file (Message::End), return: that closes the connection.",
    );
    running.finish_ok(&step, SERVER_HANGS);
}

#[test]
fn step_06_the_server_echoes_a_message_in_pieces() {
    let step = Step::new(
        "step 6: serve_connection reads a whole message even when it comes in pieces",
        CHAPTER,
    );
    let (mut client, running) = start_server(&step);
    // Three pieces with pauses: one read, even after a pause, is not enough.
    // The last piece holds the start of the next message too.
    client.send_in_pieces(&[b"see", b"saw ", b"up and down\nsecond"]);
    expect_line(
        &step,
        &mut client,
        b"seesaw up and down\n",
        "the whole first message back, once its newline came",
    );
    client.send(b" message\n");
    let second = client.read_line();
    if second.bytes != b"second message\n" || second.end != End::Newline {
        let report = step
            .report()
            .expected("the second message back, its start kept from the piece before: b\"second message\\n\"")
            .got_received(b"second message\n", &second)
            .hint(SERVER_HANGS);
        if second.bytes == b" message\n" {
            report
                .observed(
                    "the start of the second message, b\"second\", was lost: it came in the \
                     same piece as the end of the first. Bytes read past a newline wait in the \
                     reader's buffer for the next message: keep one buffered reader for the \
                     whole connection.",
                )
                .fail();
        }
        report.fail();
    }
    client.close_sending();
    expect_then_closed(
        &step,
        &mut client,
        b"",
        "at end of file (Message::End), return.",
    );
    running.finish_ok(&step, SERVER_HANGS);
}

#[test]
fn step_07_the_server_echoes_the_tail_then_closes() {
    let step = Step::new(
        "step 7: after the client's half-close, serve_connection echoes the last bytes, then closes",
        CHAPTER,
    );
    let (mut client, running) = start_server(&step);
    expect_echo(&step, &mut client, b"almost done\n");
    client.send(b" no newline \xff");
    client.close_sending();
    expect_then_closed(
        &step,
        &mut client,
        b" no newline \xff",
        "write a Message::Tail back like a Line, exactly; the next read_message gives End: return.",
    );
    running.finish_ok(&step, SERVER_HANGS);

    // An empty tail: the half-close comes right after a whole message.
    let (mut client, running) = start_server(&step);
    expect_echo(&step, &mut client, b"all done\n");
    client.close_sending();
    expect_then_closed(
        &step,
        &mut client,
        b"",
        "after the last message, nothing more: end of file is Message::End, which sends nothing.",
    );
    running.finish_ok(&step, SERVER_HANGS);
}

/// How many turns step 8 times on one connection.
const TIMED_TURNS: usize = 20;

/// How long those turns may take together. On one machine a turn takes well
/// under a millisecond, even with every core busy; an echo written in two
/// pieces makes most turns wait about 40 ms (Nagle's algorithm meets the
/// client's delayed acknowledgement), and 20 such turns take more than this.
const TIMED_TURNS_LIMIT: Duration = Duration::from_millis(400);

/// A turn slower than this waited for something: one of Nagle's 40 ms.
const SLOW_TURN: Duration = Duration::from_millis(20);

const NAGLE_HINT: &str = "write each echo with one write_all of the whole message. Two \
     small writes (say the text, then its newline) meet Nagle's algorithm: the OS holds \
     the second until the client acknowledges the first, and the client delays its \
     acknowledgement by up to 40 ms, hoping to send it with a reply. So every turn \
     waits. See book/src/wire.md, \"Why a message is written at once\".";

/// A duration in milliseconds, for a report: `41.3 ms`.
fn millis(duration: Duration) -> String {
    format!("{:.1} ms", duration.as_secs_f64() * 1000.0)
}

#[test]
fn step_08_the_server_answers_each_turn_at_once() {
    let step = Step::new(
        "step 8: serve_connection answers at once: 20 turns on one connection take well under a second",
        CHAPTER,
    );
    let (mut client, running) = start_server(&step);
    let started = Instant::now();
    let mut slow_turns = 0;
    let mut slowest = Duration::ZERO;
    for number in 1..=TIMED_TURNS {
        let turn_started = Instant::now();
        expect_echo(&step, &mut client, format!("turn {number}\n").as_bytes());
        let took = turn_started.elapsed();
        slowest = slowest.max(took);
        if took > SLOW_TURN {
            slow_turns += 1;
        }
        // Over the limit already: no need to wait for the other turns.
        if started.elapsed() > TIMED_TURNS_LIMIT {
            step.report()
                .did(&format!(
                    "{TIMED_TURNS} turns on one connection: the check sent a short message, \
                     waited for its echo, and sent the next"
                ))
                .expected(&format!(
                    "all {TIMED_TURNS} echoes within {} (a turn takes well under a millisecond here)",
                    millis(TIMED_TURNS_LIMIT)
                ))
                .got(&format!(
                    "{number} turns took {}: {slow_turns} of them over {}, the slowest {}",
                    millis(started.elapsed()),
                    millis(SLOW_TURN),
                    millis(slowest)
                ))
                .hint(NAGLE_HINT)
                .fail();
        }
    }
    client.close_sending();
    expect_then_closed(
        &step,
        &mut client,
        b"",
        "at end of file (Message::End), return: that closes the connection.",
    );
    running.finish_ok(&step, SERVER_HANGS);
}

/// Runs the student's serve_connection on the server end of a fresh
/// connection, the check's end being a [`QuickPeer`].
fn start_quick_server(step: &Step) -> (QuickPeer, Running<anyhow::Result<()>>) {
    let (near, connection) = socket_pair();
    step.transcript()
        .add("check   connected to you".to_string());
    let keep = connection
        .try_clone()
        .expect("the check could not clone its socket");
    let running = bounded::start_with(step, "serve_connection(connection)", keep, move |_| {
        serve_connection(connection)
    });
    (QuickPeer::new(step, near), running)
}

/// Sends `message` and fails unless exactly the same bytes come back.
fn expect_quick_echo(step: &Step, client: &mut QuickPeer, message: &[u8]) {
    client.send(message);
    let echo = client.read_line();
    if echo.bytes != message || echo.end != End::Newline {
        step.report()
            .expected(&format!("the same bytes back: {}", show(message)))
            .got(&echo.describe())
            .observed(
                &hint_for_received(message, &echo).unwrap_or_else(|| SERVER_HANGS.to_string()),
            )
            .fail();
    }
}

/// Sends `message` in the background (the server stops reading at the
/// limit), and fails unless TOO_LONG_REPLY comes back.
fn expect_refused(step: &Step, client: &mut QuickPeer, message: Vec<u8>) {
    client.send_in_background(message);
    let reply = client.read_line();
    if reply.bytes != TOO_LONG_REPLY || reply.end != End::Newline {
        let observed = match reply.bytes.starts_with(b"xxxx") {
            true => "your server echoed the message, which is over the limit: it must \
                     not. On Message::TooLong, write TOO_LONG_REPLY instead."
                .to_string(),
            false => hint_for_received(TOO_LONG_REPLY, &reply)
                .unwrap_or_else(|| SERVER_HANGS.to_string()),
        };
        step.report()
            .expected(&format!(
                "{} as soon as you have read MAX_MESSAGE bytes",
                show(TOO_LONG_REPLY)
            ))
            .got(&reply.describe())
            .hint(
                "on Message::TooLong, write TOO_LONG_REPLY, then end the connection. \
                 Never wait for a newline beyond the limit.",
            )
            .observed(&observed)
            .fail();
    }
}

#[test]
fn step_09_the_server_answers_a_message_too_long() {
    let step = Step::new(
        "step 9: a message over MAX_MESSAGE gets one error line, then the connection ends",
        CHAPTER,
    );
    // One byte over the limit, no newline.
    let (mut client, running) = start_quick_server(&step);
    expect_refused(&step, &mut client, xs(MAX_MESSAGE + 1, b""));
    expect_nothing_more(&step, &mut client);
    running.finish_ok(&step, SERVER_HANGS);

    // One byte over the limit, that byte being the newline.
    let (mut client, running) = start_quick_server(&step);
    expect_quick_echo(&step, &mut client, b"a short one first\n");
    expect_refused(&step, &mut client, xs(MAX_MESSAGE, b"\n"));
    expect_nothing_more(&step, &mut client);
    running.finish_ok(&step, SERVER_HANGS);
}

/// After the error line the check hangs up; then end of file and nothing
/// else may come. (A reset is step 11's business.)
fn expect_nothing_more(step: &Step, client: &mut QuickPeer) {
    client.close_sending();
    let rest = client.read_to_close();
    let ended = matches!(rest.end, End::Closed | End::Failed(_));
    if !rest.bytes.is_empty() || !ended {
        step.report()
            .expected("nothing more after the error line: the connection ends")
            .got(&rest.describe())
            .observed(&hint_for_ending(b"", &rest))
            .hint("after TOO_LONG_REPLY, end the connection: write nothing more, and return.")
            .fail();
    }
}

#[test]
fn step_10_the_server_keeps_the_limit_per_message() {
    let step = Step::new(
        "step 10: serve_connection echoes messages up to MAX_MESSAGE bytes each, however many",
        CHAPTER,
    );
    let (mut client, running) = start_server(&step);
    // Exactly at the limit, newline included.
    expect_echo(&step, &mut client, &xs(MAX_MESSAGE - 1, b"\n"));
    // Three more that add up to more than the limit: it is per message.
    for number in 1..=3 {
        let line = [format!("message {number}: ").as_bytes(), &xs(30_000, b"\n")].concat();
        expect_echo(&step, &mut client, &line);
    }
    // A tail just under the limit.
    let tail = xs(MAX_MESSAGE - 1, b"");
    client.send(&tail);
    client.close_sending();
    expect_then_closed(
        &step,
        &mut client,
        &tail,
        "a last message under the limit, without a newline, is echoed like any other.",
    );
    running.finish_ok(&step, SERVER_HANGS);
}

/// Reads everything from `stream` until end of file, a failure or the
/// deadline, and records it in the step's transcript.
fn read_raw_to_end(step: &Step, stream: &mut TcpStream) -> Received {
    let _ = stream.set_read_timeout(Some(DEADLINE));
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 64 * 1024];
    let end = loop {
        match stream.read(&mut chunk) {
            Ok(0) => break End::Closed,
            Ok(count) => bytes.extend_from_slice(&chunk[..count]),
            Err(error) if matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                step.note_waited_out();
                break End::TimedOut;
            }
            Err(error) => break End::Failed(error.kind()),
        }
    };
    if !bytes.is_empty() {
        step.transcript()
            .add(format!("you → check   {}", show(&bytes)));
    }
    step.transcript().add(match end {
        End::Closed => "you     closed the connection (end of file)".to_string(),
        End::TimedOut => format!(
            "check   waited {} s, nothing more came",
            DEADLINE.as_secs_f32()
        ),
        End::Failed(kind) => format!("check   read failed: {kind}"),
        End::Newline => String::new(),
    });
    Received { bytes, end }
}

#[test]
fn step_11_the_error_line_survives_a_flood() {
    let step = Step::new(
        "step 11: a client still sending 1 MiB gets the error line and a clean end of file, no reset",
        CHAPTER,
    );
    // The check plays a client that writes a whole line before it reads
    // anything, like the lesson's own client: 1 MiB and a newline.
    let (mut client, connection) = socket_pair();
    let keep = connection
        .try_clone()
        .expect("the check could not clone its socket");
    let running = bounded::start_with(&step, "serve_connection(connection)", keep, move |_| {
        serve_connection(connection)
    });
    let flood = xs(1024 * 1024, b"\n");
    step.transcript().add(format!(
        "check → you   {} (one write, reading nothing until it is done)",
        show(&flood)
    ));
    let _ = client.set_write_timeout(Some(DEADLINE));
    if let Err(error) = client.write_all(&flood) {
        step.transcript()
            .add(format!("check   could not send: {error}"));
        let hang = matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut);
        if hang {
            step.note_waited_out();
        }
        step.report()
            .expected("to send all 1 MiB: your server reads and throws away what comes after the error line")
            .got(&format!("the write failed: {error}"))
            .observed(match hang {
                true => "your server stopped reading, and did not close either: after the \
                         error line, close_gently (given) reads and throws away what the \
                         client still sends, then closes.",
                false => LINGER_HINT,
            })
            .fail();
    }
    let received = read_raw_to_end(&step, &mut client);
    if received.bytes != TOO_LONG_REPLY || received.end != End::Closed {
        step.report()
            .expected(&format!(
                "{} and then end of file, no reset",
                show(TOO_LONG_REPLY)
            ))
            .got(&received.describe())
            .observed(&match received.end {
                End::Failed(_) => LINGER_HINT.to_string(),
                _ => hint_for_ending(TOO_LONG_REPLY, &received),
            })
            .fail();
    }
    // Your server should still be reading (and throwing away) until the
    // check hangs up: one more byte must go through, not meet a reset.
    step.transcript().add("check → you   b\"x\"".to_string());
    if let Err(error) = client.write_all(b"x") {
        step.report()
            .expected("your server to go on reading until the check hangs up")
            .got(&format!("sending one more byte failed: {error}"))
            .observed(LINGER_HINT)
            .fail();
    }
    running.expect_still_running(
        Duration::from_millis(25),
        &step,
        "the check to hang up (a lingering close reads until then)",
        LINGER_HINT,
    );
    step.transcript()
        .add("check   closed its sending side (shutdown Write)".to_string());
    let _ = client.shutdown(Shutdown::Write);
    running.finish_ok(&step, SERVER_HANGS);
}

const LINGER_HINT: &str = "after TOO_LONG_REPLY your server closed at once, with the \
     client's bytes still unread: that resets the connection, and a reset can destroy the \
     error line before the client reads it. End the connection with close_gently (given \
     in lib.rs): it reads and throws away what still comes, until the client hangs up.";

#[test]
fn step_12_the_server_reports_a_client_that_vanishes() {
    let step = Step::new(
        "step 12: serve_connection returns the error when the client resets the connection, even before it starts",
        CHAPTER,
    );
    let (mut client, running) = start_server(&step);
    expect_echo(&step, &mut client, b"hello\n");
    client.send(b"are you there?\n");
    // The check vanishes like a crashed client, its echo unread: a reset.
    client.reset();
    let outcome = running.finish(
        &step,
        "a reset makes your next read fail at once: return that error instead of reading on.",
    );
    expect_reset_reported(&step, &outcome);

    // A client that vanishes before serve_connection even starts: its
    // connection has no peer address any more.
    let (mut client, connection) = connected_pair(&step);
    client.send(b"hello\n");
    // A byte the check's client never reads makes its close a reset.
    step.transcript().add(
        "check   put b\"?\" in its client's unread bytes (through your end, before your code starts)"
            .to_string(),
    );
    (&connection)
        .write_all(b"?")
        .expect("the check could not write to its own connection");
    client.reset();
    wait_until_reset(&connection);
    step.transcript()
        .add("check   started serve_connection on the connection its client has reset".to_string());
    let keep = connection
        .try_clone()
        .expect("the check could not clone its socket");
    let running = bounded::start_with(&step, "serve_connection(connection)", keep, move |_| {
        serve_connection(connection)
    });
    let outcome = running.finish(
        &step,
        "the client reset the connection before you started: your first read (or write) \
         fails at once. Return that error.",
    );
    expect_reset_reported(&step, &outcome);
}

/// Waits, at most [`DEADLINE`], until `connection` has seen its client's
/// reset: it then has no peer address any more.
fn wait_until_reset(connection: &TcpStream) {
    let deadline = Instant::now() + DEADLINE;
    while connection.peer_addr().is_ok() && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(1));
    }
}

/// Fails unless `outcome` is an error caused by the reset.
fn expect_reset_reported(step: &Step, outcome: &anyhow::Result<()>) {
    let kind = outcome.as_ref().err().and_then(report::io_error_kind);
    if matches!(
        kind,
        Some(ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted)
    ) {
        return;
    }
    let got = match outcome {
        Ok(()) => "Ok(()): the reset went unreported".to_string(),
        Err(error) => format!("an error with no reset under it: {error:#}"),
    };
    let report = step
        .report()
        .expected("an error whose cause is the reset (io::ErrorKind::ConnectionReset)")
        .got(&got)
        .hint(
            "a reset is an error, not an end of file: let the read's error out of \
             serve_connection as it is (the program prints it), with context if you like, \
             but never replaced by another error or by Ok.",
        );
    if kind == Some(ErrorKind::NotConnected) {
        report
            .observed(
                "NotConnected: did you ask the connection for its peer address with `?`? \
                 A client that has reset the connection has no address any more, and that \
                 is not the error to report: peer_name (given) says \"a client that has \
                 gone\" instead, and your first read then reports the reset itself.",
            )
            .fail();
    }
    report.fail();
}

// ---------------------------------------------------------------------------
// Client::turn and Client::finish (steps 13 to 15): the check plays the server.
// ---------------------------------------------------------------------------

/// The student's client, running `conversation` against the check's server.
fn start_client<T: Send + 'static>(
    step: &Step,
    call: &str,
    conversation: impl FnOnce(Client) -> anyhow::Result<T> + Send + 'static,
) -> (QuickPeer, Running<anyhow::Result<T>>) {
    let server = CheckServer::start();
    let addr = server.addr().to_string();
    let running = bounded::start(step, call, move || conversation(Client::connect(&addr)?));
    // Client::connect is given: it always dials.
    let stream = server
        .accept_within(DEADLINE)
        .expect("Client::connect (given) dials the check");
    step.transcript()
        .add("check   accepted a connection from you".to_string());
    (QuickPeer::new(step, stream), running)
}

/// Reads one line from the student's client; fails unless it is `expected`.
fn expect_sent(step: &Step, server: &mut QuickPeer, expected: &[u8]) {
    let received = server.read_line();
    if received.bytes == expected && received.end == End::Newline {
        return;
    }
    let report = step
        .report()
        .expected(&format!("your client to send {}", show(expected)))
        .got(&received.describe())
        .hint("write each message whole, exactly as given, then wait for its reply.");
    if matches!(received.end, End::Closed | End::Failed(_)) && received.bytes.is_empty() {
        report
            .observed(
                "your client closed the connection instead of sending its next message: \
                 did turn fail, or return a reply too short or too long, so that the \
                 conversation went wrong? A reply ends at its newline, whatever its length.",
            )
            .fail();
    }
    if received.end == End::TimedOut && received.bytes.is_empty() {
        report
            .observed(
                "your client did not send its next message: is it still reading the reply \
                 before? A reply ends at its newline, whatever its length (longer or shorter \
                 than the message); it may come late, in pieces, or already be in the buffer.",
            )
            .fail();
    }
    match hint_for_received(expected, &received) {
        Some(hint) => report.observed(&hint).fail(),
        None => report.fail(),
    }
}

/// Reads to end of file from the student's client; fails unless exactly
/// `expected` came, then end of file (the client shut down its sending side).
fn expect_hung_up(step: &Step, server: &mut QuickPeer, expected: &[u8]) {
    let received = server.read_to_close();
    if received.bytes == expected && received.end == End::Closed {
        return;
    }
    let observed = match received.end {
        End::TimedOut if received.bytes == expected => {
            "the bytes came, but no end of file: shut down the sending side after writing, \
             so that the server reads end of file (and can still answer)."
                .to_string()
        }
        _ => hint_for_ending(expected, &received),
    };
    step.report()
        .expected(&format!(
            "{} and then end of file: your client shut down its sending side",
            show(expected)
        ))
        .got(&received.describe())
        .observed(&observed)
        .fail();
}

/// Fails unless the student's code returned `expected` (bytes).
fn expect_returned(step: &Step, call: &str, returned: &[u8], expected: &[u8], hint: &str) {
    if returned != expected {
        step.report()
            .expected(&format!("{call} to return {}", show(expected)))
            .got(&show(returned))
            .observed(&difference(expected, returned).unwrap_or_default())
            .hint(hint)
            .fail();
    }
}

#[test]
fn step_13_the_client_takes_turns() {
    let step = Step::new(
        "step 13: Client::turn sends a message and returns the whole reply, turn after turn",
        CHAPTER,
    );
    let messages: [&[u8]; 5] = [
        b" one\tTwo \r\n",
        b"a message longer than its reply\n",
        b"\x00\xff\n",
        b"four\n",
        b"five\n",
    ];
    let long_reply = [b"long ".as_slice(), &xs(20_000, b"\n")].concat();
    let expected: Vec<Vec<u8>> = vec![
        b"a reply longer than the message, \xff\x00\n".to_vec(),
        b"ok\n".to_vec(),
        long_reply.clone(),
        b"early reply 4\n".to_vec(),
        b"late reply 5\n".to_vec(),
    ];
    let (mut server, running) = start_client(
        &step,
        "client.turn(message) for 5 messages",
        move |mut client| {
            let mut replies = Vec::new();
            for message in messages {
                replies.push(client.turn(message)?);
            }
            Ok(replies)
        },
    );
    // Replies longer and shorter than their messages: a reply ends at its
    // newline, whatever its length.
    expect_sent(&step, &mut server, messages[0]);
    server.send(&expected[0]);
    expect_sent(&step, &mut server, messages[1]);
    server.send(&expected[1]);
    // Two replies in one write: the second must wait in your client's buffer.
    expect_sent(&step, &mut server, messages[2]);
    server.send(&[long_reply.as_slice(), &expected[3]].concat());
    expect_sent(&step, &mut server, messages[3]);
    // A slow server: the last reply comes late, and in pieces.
    expect_sent(&step, &mut server, messages[4]);
    thread::sleep(PIECE_PAUSE);
    server.send_in_pieces(&[b"late re", b"ply 5\n"]);
    let replies = running.finish_ok(&step, CLIENT_HANGS);
    if replies != expected {
        let (number, (want, got)) = expected
            .iter()
            .zip(&replies)
            .enumerate()
            .find(|(_, (want, got))| want != got)
            .expect("the replies differ somewhere");
        let why = match got.is_empty() {
            true => "turn returned no bytes at all: it must wait for the reply and read it, \
                     up to and including its newline."
                .to_string(),
            false => format!(
                "{}. Return each reply exactly as it came, up to and including its \
                 newline, and nothing after it.",
                difference(want, got).unwrap_or_default()
            ),
        };
        step.report()
            .expected(&format!("the replies {}", show_list(&expected)))
            .got(&show_list(&replies))
            .observed(&format!("reply {}: {why}", number + 1))
            .fail();
    }
}

#[test]
fn step_14_the_client_finishes_with_a_half_close() {
    let step = Step::new(
        "step 14: Client::finish sends the last bytes, half-closes, and reads to the end",
        CHAPTER,
    );
    let call = "client.finish(b\"bye \\xff\")";
    let (mut server, running) = start_client(&step, call, |client| client.finish(b"bye \xff"));
    expect_hung_up(&step, &mut server, b"bye \xff");
    // The server answers after the hang-up, late and in pieces: a whole line,
    // then more bytes with no newline, not UTF-8.
    let answer = b"bye\nand goodbye \xfe\xff";
    server.send_in_pieces(&[b"bye\n", b"and goodbye \xfe\xff"]);
    server.close("");
    let rest = running.finish_ok(
        &step,
        "finish must read until the server closes (end of file), then return.",
    );
    if rest == b"bye\n" {
        step.report()
            .expected(&format!("{call} to return {}", show(answer)))
            .got(&show(&rest))
            .observed(
                "finish stopped at the first newline. After the hang-up the server may \
                 send any bytes, several lines or none, with or without a newline: read \
                 until it closes (end of file), and return all of them.",
            )
            .fail();
    }
    expect_returned(
        &step,
        call,
        &rest,
        answer,
        "read everything the server still sends, until it closes, and return those bytes.",
    );

    // An empty tail after a last turn: nothing more is sent, then end of file.
    let call = "client.turn(b\"last turn\\n\"), then client.finish(b\"\")";
    let (mut server, running) = start_client(&step, call, |mut client| {
        let reply = client.turn(b"last turn\n")?;
        Ok((reply, client.finish(b"")?))
    });
    expect_sent(&step, &mut server, b"last turn\n");
    server.send(b"last turn\n");
    expect_hung_up(&step, &mut server, b"");
    server.close("");
    let (_, rest) = running.finish_ok(
        &step,
        "finish must read until the server closes (end of file), then return.",
    );
    expect_returned(
        &step,
        call,
        &rest,
        b"",
        "the server sent nothing after the last reply: return what it sent, nothing else.",
    );
}

#[test]
fn step_15_the_client_reports_a_server_that_closes_first() {
    let step = Step::new(
        "step 15: Client::turn is an error when the server closes instead of replying",
        CHAPTER,
    );
    let (mut server, running) = start_client(&step, "client.turn(b\"hello?\\n\")", |mut client| {
        client.turn(b"hello?\n")
    });
    expect_sent(&step, &mut server, b"hello?\n");
    server.close(" without replying");
    let outcome = running.finish(
        &step,
        "once the server has closed, a read gives end of file (0 bytes) at once.",
    );
    if let Ok(reply) = outcome {
        step.report()
            .expected("an error: the server closed the connection before replying")
            .got(&format!("Ok({})", show(&reply)))
            .hint("a read of 0 bytes where the reply should be means the server closed: return an error then.")
            .fail();
    }
}

// ---------------------------------------------------------------------------
// The programs (steps 16 to 18): src/main.rs (given), built on your lib.rs.
// ---------------------------------------------------------------------------

/// The IPv6 loopback address with port 0, if this machine has IPv6 (most
/// have; a machine without it skips those parts).
fn ipv6_loopback() -> Option<TcpListener> {
    TcpListener::bind("[::1]:0").ok()
}

/// The check's echo server on `listener`: accepts one client, echoes every
/// byte until the client's end of file, then closes.
fn spawn_echo_server_on(step: &Step, listener: TcpListener) -> SocketAddr {
    let addr = listener
        .local_addr()
        .expect("a bound listener has an address");
    let transcript = step.transcript().clone();
    thread::spawn(move || {
        let Ok((mut stream, _)) = listener.accept() else {
            return;
        };
        transcript.add(format!(
            "check   echo server at {addr} accepted your client"
        ));
        let _ = stream.set_read_timeout(Some(DEADLINE));
        let mut chunk = [0u8; 64 * 1024];
        while let Ok(count @ 1..) = stream.read(&mut chunk) {
            transcript.add(format!("you → check   {}", show(&chunk[..count])));
            if stream.write_all(&chunk[..count]).is_err() {
                break;
            }
        }
        transcript.add("check   echo server closed the connection".to_string());
    });
    addr
}

#[test]
fn step_16_the_client_program_echoes_its_input() {
    let step = Step::new(
        "step 16: `client` with piped input prints exactly the replies, and exits 0",
        CHAPTER,
    );
    let listener = TcpListener::bind("127.0.0.1:0").expect("the check could not listen");
    let addr = spawn_echo_server_on(&step, listener).to_string();
    let input = b"one\n  two \t\r\n\xff\x00\n\nthree, no newline \xfe";
    run(program!(), &["client", &addr], input)
        .expect_code(&step, 0)
        .expect_stdout(&step, input);
    // Over IPv6, ending with a newline: an empty tail.
    if let Some(listener) = ipv6_loopback() {
        let addr = spawn_echo_server_on(&step, listener).to_string();
        let input = b"over IPv6\nand the last line\n";
        run(program!(), &["client", &addr], input)
            .expect_code(&step, 0)
            .expect_stdout(&step, input);
    }
}

/// Runs the client program with `input` against the check's server, which
/// plays `server` on the connection, on a thread of its own.
fn run_client_against(
    step: &Step,
    input: &[u8],
    server: impl FnOnce(&mut Peer) + Send + 'static,
) -> program::Finished {
    let listener = CheckServer::start();
    let addr = listener.addr().to_string();
    let check_side = step.clone();
    let serving = thread::spawn(move || {
        let mut peer = listener.accept(&check_side);
        server(&mut peer);
    });
    let finished = run(program!(), &["client", &addr], input);
    let _ = serving.join();
    finished
}

/// Fails unless the program printed exactly `expected` on stdout: what the
/// server sent before it ended the conversation.
fn expect_shown(step: &Step, finished: &program::Finished, expected: &[u8]) {
    if finished.stdout != expected {
        finished
            .report(step)
            .expected(&format!(
                "on stdout what the server sent: {}",
                show(expected)
            ))
            .got(&format!("stdout {}", show(&finished.stdout)))
            .hint(
                "the program (given) prints each reply that Client::turn returns. If a reply is \
                 missing, or there is one too many, look at turn: it returns exactly the \
                 bytes the server sent, up to the newline, and an error when it closed instead.",
            )
            .fail();
    }
}

/// Fails unless the program exited with code 1 and one `error:` line on
/// stderr that contains `words`.
fn expect_told(step: &Step, finished: &program::Finished, words: &str) {
    finished.expect_code(step, 1);
    let lines: Vec<&str> = finished
        .stderr
        .lines()
        .filter(|line| line.starts_with("error:"))
        .collect();
    if !finished.stderr.contains("panicked") && lines.len() == 1 && lines[0].contains(words) {
        return;
    }
    finished
        .report(step)
        .expected(&format!(
            "exactly one line on stderr that starts with `error:` and says {words:?}"
        ))
        .got(&match lines.as_slice() {
            [line] => format!("{line:?}"),
            _ => format!("{} such lines (its stderr is above)", lines.len()),
        })
        .hint(
            "the program (given) tells what happened from what your Client returns: \
             Client::turn must return an error when the server closes instead of replying \
             (step 15), and return the server's error line like any other reply (step 13).",
        )
        .fail();
}

#[test]
fn step_17_the_client_program_reports_a_server_that_closes_first() {
    let step = Step::new(
        "step 17: `client` shows what the server sent when it ends first, says so, and exits 1",
        CHAPTER,
    );
    // The server reads the first line and closes without a word.
    let finished = run_client_against(&step, b"one\ntwo\n", |peer| {
        peer.read_line();
    });
    expect_told(&step, &finished, "closed");
    expect_shown(&step, &finished, b"");

    // The server echoes one line, and answers the next with its error line.
    let finished = run_client_against(&step, b"one\ntwo\nthree\n", |peer| {
        peer.read_line();
        peer.send(b"one\n");
        peer.read_line();
        peer.send(TOO_LONG_REPLY);
        peer.close_sending();
        peer.read_to_end();
    });
    expect_told(&step, &finished, "longer than 65536");
    expect_shown(
        &step,
        &finished,
        &[b"one\n".as_slice(), TOO_LONG_REPLY].concat(),
    );
}

/// Fails unless the server program's next line about `peer` is `expected`.
fn expect_narration(step: &Step, server: &mut Server, peer: SocketAddr, expected: &str) {
    let line = server.wait_for_line(step, &peer.to_string());
    if !line.contains(expected) {
        server
            .report(step)
            .expected(&format!(
                "the server to narrate the echo on stderr: {expected:?}"
            ))
            .got(&format!("{line:?}"))
            .hint(
                "after each echo, narrate it in one line on stderr (narrate, given): \
                 read N bytes from PEER, wrote N bytes back, with PEER from peer_name.",
            )
            .fail();
    }
}

#[test]
fn step_18_the_server_program_serves_clients_one_after_another() {
    let step = Step::new(
        "step 18: `server` narrates each echo, and serves clients one after another, whatever each did",
        CHAPTER,
    );
    let listen_on = match ipv6_loopback() {
        Some(_) => "[::1]:0",
        None => "127.0.0.1:0",
    };
    let mut server = Server::start(program!(), &["server", listen_on]);
    let addr: SocketAddr = server.listening_address(&step);

    let mut first = Peer::connect(&step, addr);
    expect_echo(&step, &mut first, b"first client\n");
    first.send(b"tail");
    first.close_sending();
    let rest = first.read_to_end();
    if rest.bytes != b"tail" || rest.end != End::Closed {
        server
            .report(&step)
            .expected("b\"tail\" back, then end of file")
            .got_received(b"tail", &rest)
            .fail();
    }
    // What the server printed about this client, in order.
    let peer = first.local_addr();
    server.wait_for_line(&step, &format!("accepted {peer}"));
    expect_narration(
        &step,
        &mut server,
        peer,
        &format!("read 13 bytes from {peer}, wrote 13 bytes back"),
    );
    expect_narration(
        &step,
        &mut server,
        peer,
        &format!("read 4 bytes from {peer}, wrote 4 bytes back"),
    );
    server.wait_for_line(&step, &format!("closed the connection to {peer}"));

    let mut greedy = Peer::connect(&step, addr);
    greedy.send_in_background(xs(MAX_MESSAGE + 1, b""));
    let reply = greedy.read_line();
    if reply.bytes != TOO_LONG_REPLY {
        server
            .report(&step)
            .expected(&show(TOO_LONG_REPLY))
            .got_received(TOO_LONG_REPLY, &reply)
            .fail();
    }
    greedy.close_sending();
    let _ = greedy.read_to_end();

    let mut vanishing = Peer::connect(&step, addr);
    vanishing.send(b"bye\n");
    vanishing.reset();

    let mut last = Peer::connect(&step, addr);
    expect_echo(&step, &mut last, b"still there?\n");
}

// ---------------------------------------------------------------------------
// The last step: your client talks to your server, through the check.
// ---------------------------------------------------------------------------

/// Everything one direction of the check's relay carried.
type Carried = Arc<Mutex<Vec<u8>>>;

/// Copies bytes `from` one socket `to` the other until end of file, records
/// them in the transcript as `who` sent them, and passes the half-close on.
fn relay(step: &Step, mut from: TcpStream, mut to: TcpStream, who: &'static str) -> Carried {
    let carried = Carried::default();
    let record = carried.clone();
    let transcript = step.transcript().clone();
    thread::spawn(move || {
        // The relay gives up when both sides have gone quiet for long: a
        // stuck pair is reported by the check, and this thread must not stay.
        let _ = from.set_read_timeout(Some(DEADLINE * 2));
        let mut chunk = [0u8; 64 * 1024];
        loop {
            match from.read(&mut chunk) {
                Ok(0) => {
                    transcript.add(format!("{who}   end of file (shut down or closed)"));
                    let _ = to.shutdown(Shutdown::Write);
                    break;
                }
                Ok(count) => {
                    transcript.add(format!("{who}   {}", show(&chunk[..count])));
                    record.lock().unwrap().extend_from_slice(&chunk[..count]);
                    if let Err(error) = to.write_all(&chunk[..count]) {
                        transcript.add(format!("{who}   could not be passed on: {error}"));
                        break;
                    }
                }
                Err(error) => {
                    transcript.add(format!("{who}   the connection failed: {error}"));
                    let _ = to.shutdown(Shutdown::Both);
                    break;
                }
            }
        }
    });
    carried
}

/// Two sockets connected to each other on loopback.
fn socket_pair() -> (TcpStream, TcpStream) {
    let listener = CheckServer::start();
    let near = TcpStream::connect(listener.addr()).expect("the check could not connect to itself");
    let far = listener
        .accept_within(DEADLINE)
        .expect("the check could not accept its own connection");
    (near, far)
}

/// What your client returned from one conversation: the replies, then what
/// finish returned.
type Conversation = (Vec<Vec<u8>>, Vec<u8>);

/// What your client did in one conversation with your own server.
struct OwnSeesaw {
    /// What the client sent, as the relay saw it.
    sent: Carried,
    /// What the server answered, as the relay saw it.
    answered: Carried,
    client: Running<anyhow::Result<Conversation>>,
    server: Running<anyhow::Result<()>>,
}

/// Starts your serve_connection and your Client, with the check in the
/// middle: your client sends `messages` with turn, then `last` with finish.
fn start_own_seesaw(step: &Step, messages: Vec<Vec<u8>>, last: &'static [u8]) -> OwnSeesaw {
    let (to_server, server_end) = socket_pair();
    let keep = server_end
        .try_clone()
        .expect("the check could not clone its socket");
    let server = bounded::start_with(step, "your serve_connection", keep, move |_| {
        serve_connection(server_end)
    });
    let front = CheckServer::start();
    let addr = front.addr().to_string();
    let client = bounded::start(step, "your Client (turn, then finish)", move || {
        let mut client = Client::connect(&addr)?;
        let mut replies = Vec::new();
        for message in &messages {
            replies.push(client.turn(message)?);
        }
        Ok((replies, client.finish(last)?))
    });
    let from_client = front
        .accept_within(DEADLINE)
        .expect("Client::connect (given) always dials");
    let sent = relay(
        step,
        from_client
            .try_clone()
            .expect("the check could not clone its socket"),
        to_server
            .try_clone()
            .expect("the check could not clone its socket"),
        "your client → your server",
    );
    let answered = relay(step, to_server, from_client, "your server → your client");
    OwnSeesaw {
        sent,
        answered,
        client,
        server,
    }
}

const OWN_HANGS: &str = "your client and your server both wait: look at the transcript's \
     last lines. If your client sent a message that got no answer, your server is stuck \
     reading; if the answer went through, your client is stuck reading.";

/// Waits for both sides, and fails unless the client got `replies` and
/// `rest`, saying which side misbehaved when the relay can tell.
fn expect_own_seesaw(step: &Step, seesaw: OwnSeesaw, replies: &[Vec<u8>], rest: &[u8]) {
    let outcome = seesaw.client.finish(step, OWN_HANGS);
    let server_outcome = seesaw.server.finish(step, OWN_HANGS);
    let expected = (replies.to_vec(), rest.to_vec());
    let answered = seesaw.answered.lock().unwrap().clone();
    let server_right = answered == [replies.concat(), rest.to_vec()].concat();
    let sent = seesaw.sent.lock().unwrap().clone();
    let who = match (server_right, &outcome) {
        (true, Ok(_)) => {
            "your server answered right, through the check: your client \
             returned something else than your server sent it (see the transcript)."
        }
        (true, Err(_)) => {
            "your server answered right, through the check: the error is your client's."
        }
        (false, _) => {
            "your server's answers, as the check relayed them, are not what it was \
             sent: look at the transcript for the first difference."
        }
    };
    match outcome {
        Ok(got) if got == expected => {}
        Ok((got_replies, got_rest)) => step
            .report()
            .did(&format!(
                "relayed between your client and your server; your client sent {}",
                show(&sent)
            ))
            .expected(&format!(
                "your client to return the replies {} and then {}",
                show_list(replies),
                show(rest)
            ))
            .got(&format!(
                "{} and then {}",
                show_list(&got_replies),
                show(&got_rest)
            ))
            .observed(who)
            .fail(),
        Err(error) => step
            .report()
            .did(&format!(
                "relayed between your client and your server; your client sent {}",
                show(&sent)
            ))
            .expected("your client's conversation with your server to succeed")
            .got_error(&error)
            .observed(who)
            .fail(),
    }
    step.ok("your serve_connection", server_outcome);
}

#[test]
fn step_19_your_client_talks_to_your_server() {
    let step = Step::new(
        "step 19: your own seesaw: your Client talks to your serve_connection",
        CHAPTER,
    );
    let messages: Vec<Vec<u8>> = vec![
        b"hello, me\n".to_vec(),
        b"  spaces \t\r\n".to_vec(),
        b"\xff\x00 not UTF-8\n".to_vec(),
        xs(MAX_MESSAGE - 1, b"\n"),
    ];
    let seesaw = start_own_seesaw(&step, messages.clone(), b"tail \xff");
    expect_own_seesaw(&step, seesaw, &messages, b"tail \xff");

    // A message one byte too long: your client gets your server's error line.
    let seesaw = start_own_seesaw(&step, vec![xs(MAX_MESSAGE, b"\n")], b"");
    expect_own_seesaw(&step, seesaw, &[TOO_LONG_REPLY.to_vec()], b"");
}
