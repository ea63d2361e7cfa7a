//! The checks of lesson 9, in the order you meet them: the first failure is
//! your next step. Run them with `cargo test -p lesson-09-async`.
//!
//! Your async functions run on a tokio runtime that the check builds, with
//! one thread, on a thread of the check's own with a deadline: a function
//! that blocks that thread (a std read, a std sleep) stops every client of
//! the runtime, and the checks see it. The check itself plays the clients
//! with plain std sockets, and waits for every echo, with a deadline.

use std::future::Future;
use std::io::{Cursor, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::pin::Pin;
use std::sync::mpsc;
use std::task::{Context, Poll};
use std::thread;
use std::time::{Duration, Instant};

use lesson_09_async::{
    IDLE_REPLY, Limits, MAX_MESSAGE, Message, SLOW_REPLY, TOO_LONG_REPLY, read_message, serve,
    serve_connection,
};
use quick::{Peer, Received, connected_pair, hint_for_received};
use seesaw_checks::bounded::{self, Running};
use seesaw_checks::bytes::{difference, show, thousands};
use seesaw_checks::peer::{End, PIECE_PAUSE};
use seesaw_checks::program;
use seesaw_checks::program::expect_address_in_use_explained;
use seesaw_checks::report::{Report, Step, hint_for_kind};
use seesaw_checks::watched::WatchedServer;
use tokio::io::{AsyncRead, BufReader, ReadBuf};

const CHAPTER: &str = "09-async";

const READ_HANGS: &str = "read_message reads from memory here, so it cannot wait for anything. \
     Does it loop without stopping at end of file (a read of 0 bytes)? Is every read awaited?";

const SERVER_HANGS: &str = "the check's client is waiting for you. Does serve_connection \
     stop reading at each newline, answer each message before reading the next, and \
     return at end of file (Message::End)?";

const BLOCKED: &str = "your code blocked the runtime's only thread, so no other task could \
     run: an async function must never wait with std (std::thread::sleep, a std read or \
     write, a std Mutex held across a wait). Await tokio's versions: the runtime runs the \
     other clients meanwhile.";

const ONE_AT_A_TIME: &str = "the server still talks to another client and has not served \
     this one. Give each connection a task of its own (tokio::spawn) and do not await it: go \
     straight back to accepting. And never block the runtime's thread with a std wait.";

const RETURNED: &str = "serve must loop for ever: a server never returns, not when its \
     clients have gone, and not when one client or one accept fails.";

/// Runs `future` to its end on a runtime with one thread, built here, as the
/// program's runtime is: every task shares that thread.
fn block_on<F: Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("the check could not build a tokio runtime")
        .block_on(future)
}

/// Limits that never get in the way: for the checks that are not about time.
fn patient() -> Limits {
    Limits {
        idle: Duration::from_secs(30),
        message: Duration::from_secs(30),
        write: Duration::from_secs(30),
    }
}

/// Limits in reports: `idle 120 ms, message 30000 ms, write 30000 ms`.
fn describe_limits(limits: &Limits) -> String {
    format!(
        "idle {} ms, message {} ms, write {} ms",
        limits.idle.as_millis(),
        limits.message.as_millis(),
        limits.write.as_millis()
    )
}

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
        block_on(async move {
            let mut reads = Reads {
                messages: Vec::new(),
                error: None,
            };
            for _ in 0..count {
                match read_message(&mut reader).await {
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
/// bytes were taken from it. Each read gives at most one buffer's worth,
/// and half of the reads say "not yet" first, as a socket would.
struct CountingFlood {
    left: usize,
    taken: usize,
    ready: bool,
}

impl AsyncRead for CountingFlood {
    fn poll_read(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buffer: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let flood = &mut *self;
        flood.ready = !flood.ready;
        if !flood.ready {
            // Not yet: the runtime polls again (wake_by_ref), as when a
            // socket's next bytes arrive.
            context.waker().wake_by_ref();
            return Poll::Pending;
        }
        let count = buffer.remaining().min(flood.left).min(CHECK_BUFFER);
        buffer.put_slice(&vec![b'x'; count]);
        flood.left -= count;
        flood.taken += count;
        Poll::Ready(Ok(()))
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
        ready: false,
    };
    let mut reader = BufReader::with_capacity(CHECK_BUFFER, flood);
    let call = format!(
        "read_message on {} bytes b\"x\" with no newline",
        thousands(FLOOD)
    );
    let (result, reader) = bounded::run(&step, &call, READ_HANGS, move || {
        block_on(async move { (read_message(&mut reader).await, reader) })
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
             read itself (take), so that it stops at MAX_MESSAGE bytes whether a newline \
             came or not.",
            thousands(consumed)
        ))
        .fail();
}

// ---------------------------------------------------------------------------
// serve_connection (steps 5 to 13): the check plays the client.
// ---------------------------------------------------------------------------

/// Runs the student's serve_connection with `limits` on the server end of
/// a fresh connection, on a runtime of its own.
fn start_server(step: &Step, limits: Limits) -> (Peer, Running<anyhow::Result<()>>) {
    let (client, connection) = connected_pair(step);
    // A second handle keeps the socket open until a panic has been recorded.
    let keep = connection
        .try_clone()
        .expect("the check could not clone its socket");
    let call = format!(
        "serve_connection(stream, limits: {})",
        describe_limits(&limits)
    );
    let running = bounded::start_with(step, &call, keep, move |_| {
        block_on(serve_std_connection(connection, limits))
    });
    (client, running)
}

/// The student's serve_connection on a std socket, handed to tokio.
async fn serve_std_connection(connection: TcpStream, limits: Limits) -> anyhow::Result<()> {
    connection.set_nonblocking(true)?;
    let stream = tokio::net::TcpStream::from_std(connection)?;
    serve_connection(stream, limits).await
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
            .got_bytes(expected, &reply)
            .hint(SERVER_HANGS)
            .fail();
    }
}

/// The hint for what the check read where `expected` and then end of file
/// should have come.
fn hint_for_ending(expected: &[u8], received: &Received) -> String {
    ending_hint(expected, &received.bytes, received.end)
}

/// [`hint_for_ending`] for bytes the check read itself.
fn ending_hint(expected: &[u8], bytes: &[u8], end: End) -> String {
    match end {
        End::Failed(kind) => hint_for_kind(kind)
            .unwrap_or("the connection failed.")
            .to_string(),
        End::TimedOut if bytes == expected => {
            "everything came, but the connection stayed open: at end of file \
             (Message::End), return; that closes the connection."
                .to_string()
        }
        End::TimedOut => format!(
            "then nothing more came, and the connection stayed open. {}",
            difference(expected, bytes).unwrap_or_default()
        ),
        End::Closed | End::Newline => difference(expected, bytes).unwrap_or_default() + ".",
    }
}

/// How long the check waits for an end of file that your code sends right
/// after what it already did. Shorter than the DEADLINE, so that a missing
/// close is explained sooner.
const QUICK_END: Duration = Duration::from_millis(500);

/// Reads until end of file, waiting at most [`QUICK_END`]; running out of
/// time counts as a hang (the later steps are skipped).
fn read_to_close(step: &Step, peer: &mut Peer) -> Received {
    let received = peer.read_for(QUICK_END);
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
    let (mut client, running) = start_server(&step, patient());
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
    // Nothing extra after an echo.
    let extra = client.read_for(Duration::from_millis(50));
    if !extra.bytes.is_empty() {
        step.report()
            .expected("nothing more after the echo, until the next message")
            .got(&extra.describe())
            .hint("write each message back once, exactly, and nothing else.")
            .fail();
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
    let (mut client, running) = start_server(&step, patient());
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
            .got_bytes(b"second message\n", &second)
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
    let (mut client, running) = start_server(&step, patient());
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
    let (mut client, running) = start_server(&step, patient());
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

/// Sends `message` in the background (the server stops reading at the
/// limit), and fails unless TOO_LONG_REPLY comes back.
fn expect_refused(step: &Step, client: &mut Peer, message: Vec<u8>) {
    client.send_in_background(message);
    let reply = client.read_line();
    if reply.bytes != TOO_LONG_REPLY || reply.end != End::Newline {
        let hint = match &reply.bytes {
            bytes if bytes.starts_with(b"xxxx") => {
                "your server echoed the message: it must not, it is over the limit. \
                 On Message::TooLong, write TOO_LONG_REPLY instead (say_goodbye does)."
            }
            _ => {
                "on Message::TooLong, end the connection with TOO_LONG_REPLY \
                 (say_goodbye). Never wait for a newline beyond the limit."
            }
        };
        step.report()
            .expected(&format!(
                "{} as soon as you have read MAX_MESSAGE bytes",
                show(TOO_LONG_REPLY)
            ))
            .got_bytes(TOO_LONG_REPLY, &reply)
            .hint(hint)
            .fail();
    }
}

/// After the error line the check hangs up; then end of file and nothing
/// else may come.
fn expect_nothing_more(step: &Step, client: &mut Peer) {
    client.close_sending();
    let rest = read_to_close(step, client);
    let ended = matches!(rest.end, End::Closed | End::Failed(_));
    if !rest.bytes.is_empty() || !ended {
        step.report()
            .expected("nothing more after the error line: the connection ends")
            .got(&rest.describe())
            .observed(&hint_for_ending(b"", &rest))
            .hint("after the error line, end the connection: write nothing more, and return.")
            .fail();
    }
}

#[test]
fn step_08_the_server_answers_a_message_too_long() {
    let step = Step::new(
        "step 8: a message over MAX_MESSAGE gets one error line, then the connection ends",
        CHAPTER,
    );
    // One byte over the limit, no newline.
    let (mut client, running) = start_server(&step, patient());
    expect_refused(&step, &mut client, xs(MAX_MESSAGE + 1, b""));
    expect_nothing_more(&step, &mut client);
    running.finish_ok(&step, SERVER_HANGS);

    // Exactly at the limit, then one byte over, that byte being the newline.
    let (mut client, running) = start_server(&step, patient());
    expect_echo(&step, &mut client, &xs(MAX_MESSAGE - 1, b"\n"));
    expect_refused(&step, &mut client, xs(MAX_MESSAGE, b"\n"));
    expect_nothing_more(&step, &mut client);
    running.finish_ok(&step, SERVER_HANGS);
}

/// Reads everything from `stream` until end of file, a failure or the
/// deadline, and records it in the step's transcript.
fn read_raw_to_end(step: &Step, stream: &mut TcpStream) -> Raw {
    let _ = stream.set_read_timeout(Some(quick::QUICK));
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
            quick::QUICK.as_secs_f32()
        ),
        End::Failed(kind) => format!("check   read failed: {kind}"),
        End::Newline => String::new(),
    });
    Raw { bytes, end }
}

/// What [`read_raw_to_end`] read, and how it ended.
struct Raw {
    bytes: Vec<u8>,
    end: End,
}

impl Raw {
    fn describe(&self) -> String {
        let bytes = show(&self.bytes);
        match self.end {
            End::Closed => format!("{bytes} and then end of file (you closed the connection)"),
            End::Failed(kind) => format!("{bytes} and then an error: {kind}"),
            _ => format!(
                "{bytes} and then nothing more for {} s",
                quick::QUICK.as_secs_f32()
            ),
        }
    }
}

const LINGER_HINT: &str = "the connection was reset: your server closed it while the \
     client's bytes were still unread, and a reset can destroy the error line before the \
     client reads it. After the error line, end the connection with say_goodbye (given), \
     which closes gently, not by returning at once.";

#[test]
fn step_09_the_error_line_survives_a_flood() {
    let step = Step::new(
        "step 9: a client still sending 1 MiB gets the error line and a clean end of file, no reset",
        CHAPTER,
    );
    // The check plays a client that writes a whole line before it reads
    // anything, like the lesson's own client: 1 MiB and a newline.
    let server = TcpListener::bind("127.0.0.1:0").expect("the check could not listen");
    let mut client = TcpStream::connect(server.local_addr().expect("an address"))
        .expect("the check could not connect to itself");
    let (connection, _) = server.accept().expect("the check could not accept");
    step.transcript().add(format!(
        "check   connected to you at {}",
        client.peer_addr().expect("a peer")
    ));
    let keep = connection
        .try_clone()
        .expect("the check could not clone its socket");
    let running = bounded::start_with(&step, "serve_connection(stream, limits)", keep, move |_| {
        block_on(serve_std_connection(connection, patient()))
    });
    let flood = xs(1024 * 1024, b"\n");
    step.transcript().add(format!(
        "check → you   {} (one write, reading nothing until it is done)",
        show(&flood)
    ));
    let _ = client.set_write_timeout(Some(quick::QUICK));
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
                         error line, say_goodbye (given) reads and throws away what the \
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
                _ => ending_hint(TOO_LONG_REPLY, &received.bytes, received.end),
            })
            .fail();
    }
    // The server should still be reading (and throwing away) until the
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
        PIECE_PAUSE,
        &step,
        "the check to hang up (a lingering close reads until then)",
        LINGER_HINT,
    );
    step.transcript()
        .add("check   closed its sending side (shutdown Write)".to_string());
    let _ = client.shutdown(std::net::Shutdown::Write);
    running.finish_ok(&step, SERVER_HANGS);
}

#[test]
fn step_10_two_connections_share_one_thread() {
    let step = Step::new(
        "step 10: while one connection waits, another on the same runtime thread is served",
        CHAPTER,
    );
    let (mut clients, running) = start_servers(&step, &[patient(), patient()]);
    let mut busy = clients.pop().expect("two clients");
    let mut idle = clients.pop().expect("two clients");
    // The idle client says nothing: its task waits. The busy one must be
    // answered meanwhile, on the same thread.
    client_expects_echo(&step, &mut busy, b"anybody there?\n", BLOCKED);
    client_expects_echo(&step, &mut idle, b"my turn now\n", BLOCKED);
    client_expects_echo(&step, &mut busy, b"and again\n", BLOCKED);
    for client in [&mut busy, &mut idle] {
        client.close_sending();
        expect_then_closed(&step, client, b"", "at end of file, return.");
    }
    expect_results_ok(&step, running);
}

/// Several serve_connection at once, as tasks on ONE runtime thread, one
/// per entry of `limits`: the check's clients, and what each returned.
fn start_servers(step: &Step, limits: &[Limits]) -> (Vec<Peer>, Running<Vec<anyhow::Result<()>>>) {
    let mut clients = Vec::new();
    let mut connections = Vec::new();
    let mut keep = Vec::new();
    for limits in limits {
        let (client, connection) = connected_pair(step);
        // Second handles keep the sockets open until a panic has been
        // recorded; each goes when its own task ends well.
        keep.push(Some(
            connection
                .try_clone()
                .expect("the check could not clone its socket"),
        ));
        clients.push(client);
        connections.push((connection, *limits));
    }
    let call = format!(
        "serve_connection for {} clients at once, each in a task, on one runtime thread",
        connections.len()
    );
    let running = bounded::start_with(step, &call, keep, move |keep| {
        block_on(async move {
            let count = connections.len();
            let mut tasks = tokio::task::JoinSet::new();
            for (index, (connection, limits)) in connections.into_iter().enumerate() {
                tasks.spawn(async move { (index, serve_std_connection(connection, limits).await) });
            }
            let mut results: Vec<anyhow::Result<()>> = (0..count).map(|_| Ok(())).collect();
            // In the order they end: a task that panics is reported at once,
            // as a panic of your code, whatever the others still do.
            while let Some(ended) = tasks.join_next().await {
                match ended {
                    Ok((index, result)) => {
                        results[index] = result;
                        keep[index] = None;
                    }
                    Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
                    Err(error) => panic!("a task of the check was cancelled: {error}"),
                }
            }
            results
        })
    });
    (clients, running)
}

/// How long after a limit has run out the check waits for what must follow
/// (the error line, the end): the server needs no network round trip for it.
const SOON: Duration = Duration::from_millis(400);

/// Fails unless `client` reads exactly `line`, no sooner than `at_least`
/// after `since`, and then the end of the connection.
fn expect_goodbye(
    step: &Step,
    client: &mut Peer,
    line: &[u8],
    since: Instant,
    at_least: Duration,
    hint: &str,
) {
    // The line comes once the limit has run out: wait for that, and SOON more.
    let reply = client.read_line_within(at_least + SOON);
    let took = since.elapsed();
    if reply.bytes != line || reply.end != End::Newline {
        let report = step
            .report()
            .expected(&format!(
                "{} and then the end of the connection",
                show(line)
            ))
            .got_bytes(line, &reply);
        if reply.end == End::TimedOut && reply.bytes.is_empty() {
            report.observed(hint).fail();
        }
        report.hint(hint).fail();
    }
    if took < at_least {
        step.report()
            .expected(&format!(
                "{} after {} ms at the earliest",
                show(line),
                at_least.as_millis()
            ))
            .got(&format!("it after {} ms", took.as_millis()))
            .hint(hint)
            .fail();
    }
    expect_nothing_more(step, client);
}

#[test]
fn step_11_the_server_says_goodbye_to_an_idle_client() {
    let step = Step::new(
        "step 11: a client silent past limits.idle gets IDLE_REPLY; one that pauses less is served",
        CHAPTER,
    );
    let idle = Duration::from_millis(120);
    let limits = Limits { idle, ..patient() };
    let started = Instant::now();
    let (mut clients, running) = start_servers(&step, &[limits, limits]);
    let mut chatty = clients.pop().expect("two clients");
    let mut silent = clients.pop().expect("two clients");
    // The chatty client pauses 60 ms before each message: less than the
    // idle limit each time, more than it in all. The limit is per wait.
    for number in 1..=3 {
        thread::sleep(idle / 2);
        expect_echo_within(
            &step,
            &mut chatty,
            format!("message {number} after a short pause\n").as_bytes(),
            "the idle limit is on each wait for a message, not on the whole \
             connection: start the wait over for every message.",
        );
    }
    chatty.close_sending();
    expect_then_closed(&step, &mut chatty, b"", "at end of file, return.");
    expect_goodbye(
        &step,
        &mut silent,
        IDLE_REPLY,
        started,
        idle,
        "wait for the first byte of each message at most limits.idle \
         (tokio::time::timeout around fill_buf): then say_goodbye with IDLE_REPLY.",
    );
    expect_results_ok(&step, running);
}

/// Sends `message` and fails unless the same bytes come back; `hint` says
/// what a missing echo means in this step.
fn expect_echo_within(step: &Step, client: &mut Peer, message: &[u8], hint: &str) {
    client.send(message);
    let reply = client.read_line();
    if reply.bytes != message || reply.end != End::Newline {
        let report = step
            .report()
            .expected(&format!("{} back", show(message)))
            .got_bytes(message, &reply);
        if reply.bytes.starts_with(b"error:") {
            report
                .observed(&format!("your server said goodbye too soon. {hint}"))
                .fail();
        }
        report.hint(hint).fail();
    }
}

/// Waits for every serve_connection of [`start_servers`] to return, and
/// fails unless each returned Ok.
fn expect_results_ok(step: &Step, running: Running<Vec<anyhow::Result<()>>>) {
    let results = running.finish(step, SERVER_HANGS);
    for (number, result) in results.into_iter().enumerate() {
        if let Err(error) = result {
            step.report()
                .expected(&format!(
                    "serve_connection for client {} to return Ok: a limit that ran out is \
                     no error of the server's",
                    number + 1
                ))
                .got_error(&error)
                .fail();
        }
    }
}

#[test]
fn step_12_the_server_says_goodbye_to_a_slow_message() {
    let step = Step::new(
        "step 12: a message slower than limits.message gets SLOW_REPLY; pauses inside one are not idleness",
        CHAPTER,
    );
    let message = Duration::from_millis(80);
    let strict = Limits {
        message,
        ..patient()
    };
    // Pauses longer than the idle limit, inside one message: no idle wait.
    let short_idle = Limits {
        idle: Duration::from_millis(60),
        message: Duration::from_secs(5),
        ..patient()
    };
    let (mut clients, running) = start_servers(&step, &[strict, short_idle]);
    let mut pausing = clients.pop().expect("two clients");
    let mut slow = clients.pop().expect("two clients");
    // Both clients at once, on one timeline, 40 ms a beat. The slow one
    // sends a piece every beat: each piece in time, the message as a whole
    // not (its newline comes at 160 ms). The pausing one pauses 120 ms,
    // twice its idle limit, in the middle of a message.
    let beat = Duration::from_millis(40);
    let started = Instant::now();
    slow.send(b"a ");
    pausing.send(b"a message ");
    for piece in [b"sl".as_slice(), b"ow", b" m"] {
        thread::sleep(beat);
        slow.send(piece);
    }
    pausing.send(b"with pauses");
    thread::sleep(beat);
    slow.send(b"essage\n");
    pausing.send(b", in time\n");
    let expected = b"a message with pauses, in time\n";
    let reply = pausing.read_line();
    if reply.bytes != expected || reply.end != End::Newline {
        let report = step
            .report()
            .did(&format!(
                "a client with limits {} sent one message in pieces, pausing 120 ms",
                describe_limits(&short_idle)
            ))
            .expected(&format!("{} back", show(expected)))
            .got_bytes(expected, &reply);
        if reply.bytes == IDLE_REPLY {
            report
                .observed(
                    "a pause inside a message is not idleness: limits.idle is only for the \
                     wait for a message's FIRST byte. Once it came, the rest has \
                     limits.message (two timeouts, one after the other).",
                )
                .fail();
        }
        report.hint(SERVER_HANGS).fail();
    }
    pausing.close_sending();
    expect_then_closed(&step, &mut pausing, b"", "at end of file, return.");
    expect_goodbye(
        &step,
        &mut slow,
        SLOW_REPLY,
        started,
        message,
        "a message must arrive whole within limits.message of its first byte \
         (tokio::time::timeout around read_message, once fill_buf saw the first byte): \
         then say_goodbye with SLOW_REPLY. A timeout on each read is not enough: \
         a byte every so often would hold the server for ever.",
    );
    expect_results_ok(&step, running);
}

#[test]
fn step_13_the_server_gives_up_on_a_client_that_does_not_read() {
    let step = Step::new(
        "step 13: a client that never reads its echoes is given up after limits.write",
        CHAPTER,
    );
    let limits = Limits {
        write: Duration::from_millis(50),
        ..patient()
    };
    let (client, connection) = connected_pair(&step);
    let keep = connection
        .try_clone()
        .expect("the check could not clone its socket");
    let (returned, outcome) = mpsc::channel();
    let call = format!(
        "serve_connection(stream, limits: {})",
        describe_limits(&limits)
    );
    let running = bounded::start_with(&step, &call, keep, move |_| {
        let result = block_on(serve_std_connection(connection, limits));
        let _ = returned.send(());
        result
    });
    // 8 MiB of messages, and the check reads none of the echoes: the
    // connection's buffers fill (a few MiB), then the server's write waits.
    let line = xs(999, b"\n");
    let flood: Vec<u8> = line.repeat(8 * 1024 * 1024 / line.len());
    client.send_in_background(flood);
    let wait = limits.write + SOON;
    match outcome.recv_timeout(wait) {
        // Giving up is the server's choice, not a failure: Ok, or the error
        // that says why; both end the connection, which is all this asks.
        Ok(()) => {}
        // It panicked: the report shows the panic.
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            let _ = running.finish(&step, "");
        }
        Err(mpsc::RecvTimeoutError::Timeout) => {
            step.note_waited_out();
            step.report()
                .did("the check sent 8 MiB of messages and read none of the echoes")
                .expected(&format!(
                    "{call} to give up and return within {} ms",
                    wait.as_millis()
                ))
                .got("still running: it hangs")
                .observed(
                    "your server waits for ever to write an echo that the client never \
                     reads. Give each write at most limits.write (tokio::time::timeout around \
                     write_all), then give up on that client: return.",
                )
                .fail();
        }
    }
    drop(client);
}

/// Sends `message` and fails unless the same bytes come back; silence gets
/// `hint`, which fits this step.
fn client_expects_echo(step: &Step, client: &mut Peer, message: &[u8], hint: &str) {
    client.send(message);
    expect_reply(step, client, message, hint);
}

/// Fails unless the next line the client reads is exactly `message`.
fn expect_reply(step: &Step, client: &mut Peer, message: &[u8], hint: &str) {
    let reply = client.read_line();
    if reply.bytes == message && reply.end == End::Newline {
        return;
    }
    let report = step
        .report()
        .did(&format!(
            "client {} sent {}",
            client.local_addr(),
            show(message)
        ))
        .expected(&format!("{} back", show(message)));
    if reply.end == End::TimedOut && reply.bytes.is_empty() {
        // Silence, while the check holds other clients: that is this
        // check's own hint, not a generic one about a stuck read.
        report.got(&reply.describe()).observed(hint).fail();
    }
    report.got_bytes(message, &reply).hint(hint).fail();
}

// ---------------------------------------------------------------------------
// serve (steps 14 to 19): the check plays many clients at once.
// ---------------------------------------------------------------------------

/// The student's serve, running on a runtime of its own on a thread of its own.
struct RunningServer {
    /// Kept so that the thread counts as the student's code until it ends.
    _running: Running<()>,
    /// Brings back what it returned, if it returns (it should not).
    returned: mpsc::Receiver<String>,
}

/// Starts the student's serve on a listener of the check's own, on
/// 127.0.0.1 and a port the OS picks.
fn start_serve(step: &Step, limits: Limits) -> (SocketAddr, RunningServer) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("the check could not listen");
    let addr = listener
        .local_addr()
        .expect("a bound listener has an address");
    let (sender, returned) = mpsc::channel();
    let call = format!("serve(listener, limits: {})", describe_limits(&limits));
    let running = bounded::start(step, &call, move || {
        let text = match block_on(serve_std_listener(listener, limits)) {
            Ok(()) => "Ok(())".to_string(),
            Err(error) => format!("Err: {error:#}"),
        };
        let _ = sender.send(text);
    });
    (
        addr,
        RunningServer {
            _running: running,
            returned,
        },
    )
}

/// The student's serve on a std listener, handed to tokio.
async fn serve_std_listener(listener: TcpListener, limits: Limits) -> anyhow::Result<()> {
    listener.set_nonblocking(true)?;
    serve(tokio::net::TcpListener::from_std(listener)?, limits).await
}

/// Fails if serve has returned: a server runs for ever.
fn expect_still_serving(step: &Step, server: &RunningServer, wait: Duration, hint: &str) {
    match server.returned.recv_timeout(wait) {
        Err(mpsc::RecvTimeoutError::Timeout) => {}
        Ok(returned) => step
            .report()
            .expected("serve(listener, limits) to go on serving, for ever")
            .got(&format!("it returned {returned}"))
            .observed(hint)
            .fail(),
        // It panicked: the report shows the panic as the cause.
        Err(mpsc::RecvTimeoutError::Disconnected) => step
            .report()
            .expected("serve(listener, limits) to go on serving, for ever")
            .got("it panicked")
            .fail(),
    }
}

/// Connects `count` clients, after making sure this process may open the
/// sockets that takes.
fn connect_many(step: &Step, addr: SocketAddr, count: usize) -> Vec<Peer> {
    // In-process, each connection costs two files: the check's socket and
    // your server's.
    expect_room_for_files(step, 2 * count + 32);
    (0..count).map(|_| Peer::connect(step, addr)).collect()
}

/// Fails with advice if this process cannot open `count` more files. Each
/// connection is a file (a file descriptor), and a shell's limit on open
/// files (`ulimit -n`) may be lower than a check with many clients needs.
fn expect_room_for_files(step: &Step, count: usize) {
    let room = match files_left() {
        Some(left) => left,
        None => return,
    };
    if room >= count {
        return;
    }
    step.report()
        .did(&format!(
            "the check made sure it can open the {count} files (sockets) this step needs"
        ))
        .got(&format!(
            "room for {room} more: the limit on open files (`ulimit -n`) is too low"
        ))
        .observed(&format!(
            "this is the check's own limit, not your code: each connection is an open \
             file, your server's end and the check's, and your shell allows too few. \
             Raise the limit in this shell with `ulimit -n {}`, then run the checks again.",
            (count + 1024).next_power_of_two()
        ))
        .fail();
}

/// How many more files this process may open: its limit (Linux says it in
/// /proc/self/limits) less those open now (/proc/self/fd). Elsewhere, the
/// check opens files until it has enough or the OS says no.
fn files_left() -> Option<usize> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok();
    let limit = limits.as_deref().and_then(|limits| {
        let line = limits
            .lines()
            .find(|line| line.starts_with("Max open files"))?;
        line.split_whitespace().nth(3)?.parse::<usize>().ok()
    });
    let open = std::fs::read_dir("/proc/self/fd")
        .map(|dir| dir.count())
        .ok();
    match (limit, open) {
        (Some(limit), Some(open)) => Some(limit.saturating_sub(open)),
        _ => files_we_could_open(4096),
    }
}

/// Opens files (this program, again and again) until `most` are open or the
/// OS refuses: how many more files this process may open, up to `most`.
fn files_we_could_open(most: usize) -> Option<usize> {
    let me = std::env::current_exe().ok()?;
    let mut open = Vec::with_capacity(most);
    while open.len() < most {
        match std::fs::File::open(&me) {
            Ok(file) => open.push(file),
            Err(error) if is_too_many_open_files(&error) => break,
            Err(_) => return None,
        }
    }
    Some(open.len())
}

/// True for "Too many open files" (EMFILE), and its system-wide twin (ENFILE).
fn is_too_many_open_files(error: &std::io::Error) -> bool {
    #[cfg(unix)]
    if matches!(error.raw_os_error(), Some(23 | 24)) {
        return true;
    }
    error.to_string().contains("Too many open files")
}

#[test]
fn step_14_one_client_is_served() {
    let step = Step::new(
        "step 14: serve echoes a client's messages, bytes exact, and goes on serving",
        CHAPTER,
    );
    let (addr, server) = start_serve(&step, patient());
    let mut client = Peer::connect(&step, addr);
    let hint = "accept the client and hand it to serve_client_async(stream, peer, limits) \
                in a task of its own (tokio::spawn).";
    client_expects_echo(&step, &mut client, b"hello\n", hint);
    client_expects_echo(
        &step,
        &mut client,
        b" \tbytes \xff\x00 as they are\r\n",
        hint,
    );
    client.send(b"a tail without newline");
    client.close_sending();
    let rest = client.read_to_end();
    if rest.bytes != b"a tail without newline" || rest.end != End::Closed {
        step.report()
            .did("the check sent a tail without newline and closed its sending side")
            .expected("b\"a tail without newline\" back, then end of file")
            .got_bytes(b"a tail without newline", &rest)
            .hint(hint)
            .fail();
    }
    let mut late = Peer::connect(&step, addr);
    client_expects_echo(
        &step,
        &mut late,
        b"am I too late?\n",
        "keep accepting in a loop for ever: the server must not stop when its clients have gone.",
    );
    expect_still_serving(&step, &server, Duration::ZERO, RETURNED);
}

#[test]
fn step_15_an_idle_client_does_not_block_another() {
    let step = Step::new(
        "step 15: while one client stays idle, another is served",
        CHAPTER,
    );
    let (addr, _server) = start_serve(&step, patient());
    let mut idle = Peer::connect(&step, addr);
    let mut busy = Peer::connect(&step, addr);
    client_expects_echo(&step, &mut busy, b"is anybody there?\n", ONE_AT_A_TIME);
    client_expects_echo(&step, &mut idle, b"my turn now\n", ONE_AT_A_TIME);
}

#[test]
fn step_16_clients_are_served_in_reverse_order() {
    let step = Step::new(
        "step 16: five clients connect, then each is served, the last first",
        CHAPTER,
    );
    let (addr, _server) = start_serve(&step, patient());
    let mut clients = connect_many(&step, addr, 5);
    for (number, client) in clients.iter_mut().enumerate().rev() {
        let message = format!("client {number}\n");
        client_expects_echo(&step, client, message.as_bytes(), ONE_AT_A_TIME);
    }
}

#[test]
fn step_17_a_vanished_client_does_not_stop_the_server() {
    let step = Step::new(
        "step 17: a client that vanishes mid-message (a reset) does not stop the server",
        CHAPTER,
    );
    let (addr, server) = start_serve(&step, patient());
    let hint = "a connection's error belongs to that connection: its task reports it \
                (serve_client_async does) and ends; the server goes on accepting. Never \
                end the server with ? on one client's error.";
    let mut bystander = Peer::connect(&step, addr);
    client_expects_echo(&step, &mut bystander, b"I was here first\n", ONE_AT_A_TIME);
    let mut doomed = Peer::connect(&step, addr);
    doomed.send(b"hello\n");
    doomed.send(b"half a mess");
    doomed.reset();
    let mut next = Peer::connect(&step, addr);
    client_expects_echo(&step, &mut next, b"still serving?\n", hint);
    client_expects_echo(&step, &mut bystander, b"and still here\n", hint);
    expect_still_serving(&step, &server, Duration::ZERO, RETURNED);
}

/// The most clients the check connects before it makes sure your server
/// has accepted them: the listen backlog holds 128 connections the server
/// has not accepted yet, and a connection that finds it full waits a whole
/// second for the OS to try again.
const BATCH: usize = 100;

/// Step 18 and 19: `count` clients connected at the same time, each sends
/// one message, then all read their echoes, the last first.
fn many_clients_at_once(step: &Step, count: usize) {
    let (addr, server) = start_serve(step, patient());
    expect_room_for_files(step, 2 * count + 32);
    let mut clients: Vec<Peer> = Vec::with_capacity(count);
    while clients.len() < count {
        let batch = BATCH.min(count - clients.len());
        clients.extend((0..batch).map(|_| Peer::connect(step, addr)));
        // The last of the batch takes a turn: once it is served, your server
        // has accepted the whole batch (accept takes them in order).
        let number = clients.len() - 1;
        let message = format!("client {number:04}\n");
        client_expects_echo(
            step,
            &mut clients[number],
            message.as_bytes(),
            ONE_AT_A_TIME,
        );
    }
    for (number, client) in clients.iter_mut().enumerate() {
        client.send(format!("client {number:04} again\n").as_bytes());
    }
    for (number, client) in clients.iter_mut().enumerate().rev() {
        let message = format!("client {number:04} again\n");
        expect_reply(step, client, message.as_bytes(), ONE_AT_A_TIME);
    }
    expect_still_serving(step, &server, Duration::ZERO, RETURNED);
}

#[test]
fn step_18_a_hundred_clients_at_once() {
    let step = Step::new(
        "step 18: a hundred clients connected at the same time are all served",
        CHAPTER,
    );
    many_clients_at_once(&step, 100);
}

// ---------------------------------------------------------------------------
// The programs (steps 20 to 23): src/main.rs (given), built on your lib.rs.
// ---------------------------------------------------------------------------

/// IPv6 loopback if this machine has it, otherwise 127.0.0.1.
fn loopback_v6_if_any() -> &'static str {
    match TcpListener::bind("[::1]:0") {
        Ok(_) => "[::1]:0",
        Err(_) => "127.0.0.1:0",
    }
}

/// Connects a client of the check's to the lesson's program, once sure it
/// still runs.
fn connect_to(step: &Step, server: &mut WatchedServer, addr: SocketAddr) -> Peer {
    server.expect_running(step);
    Peer::connect(step, addr)
}

/// Sends `message` to the lesson's program and fails unless the same bytes
/// come back; the report shows what the program printed.
fn expect_program_echo(
    step: &Step,
    server: &mut WatchedServer,
    client: &mut Peer,
    message: &[u8],
    hint: &str,
) {
    client.send(message);
    let reply = client.read_line();
    if reply.bytes == message && reply.end == End::Newline {
        return;
    }
    let observed = match reply.end {
        End::TimedOut if reply.bytes.is_empty() => Some(hint.to_string()),
        _ => hint_for_received(message, &reply),
    };
    let report = server
        .report(step)
        .did(&format!(
            "client {} sent {}",
            client.local_addr(),
            show(message)
        ))
        .expected(&format!("{} back", show(message)))
        .got(&reply.describe())
        .hint(hint);
    server.fail(match observed {
        Some(observed) => report.observed(&observed),
        None => report,
    });
}

/// The server may open this many files: stdin, stdout, stderr, the
/// listener, and room for a few clients (two files each).
const FILE_LIMIT: usize = 20;

/// The cause of the failed accepts in step 12, as the OS says it.
const OUT_OF_FILES: &str = "Too many open files";

/// A line that reports a failed accept: it shows the cause, or at least
/// says that accept failed.
fn reports_failed_accept(line: &str) -> bool {
    line.contains(OUT_OF_FILES) || (line.contains("accept") && !line.starts_with("accepted "))
}

/// Runs the program with few files allowed, connects more clients than it
/// can take, and watches what it prints while accept fails again and again.
/// Twice: the second time shows that a successful accept starts the waits
/// over from short.
#[cfg(unix)]
fn backs_off_when_accept_fails(step: &Step) {
    let args = ["server", "127.0.0.1:0"];
    let mut server = WatchedServer::start_with_file_limit(program!(), &args, FILE_LIMIT);
    let addr = server.listening_address(step);
    expect_room_for_files(step, CROWD + 16);
    for round in ["first", "second"] {
        let since = Instant::now();
        server.expect_running(step);
        let crowd: Vec<Peer> = (0..CROWD).map(|_| Peer::connect(step, addr)).collect();
        step.transcript().add(format!(
            "check   connected {CROWD} clients ({round} crowd); your server may open only \
             {FILE_LIMIT} files"
        ));
        expect_backoff(step, &mut server, since, round);
        drop(crowd);
        step.transcript()
            .add("check   closed all those clients".to_string());
        let mut next = connect_to(step, &mut server, addr);
        expect_program_echo(
            step,
            &mut server,
            &mut next,
            b"room for me now?\n",
            "once clients have gone, accept works again: the loop must still be accepting.",
        );
    }
}

/// How many clients the check connects to the server that may open only
/// FILE_LIMIT files: more than it can take.
const CROWD: usize = 2 * FILE_LIMIT;

/// How long the check watches a server whose accept keeps failing.
const WINDOW: Duration = Duration::from_millis(100);

/// A server that backs off (5 ms, then 10, 20, 40 ms) reports 5 failed
/// accepts in WINDOW (at 0, 5, 15, 35 and 75 ms): at least MIN_REPORTS and
/// at most MOST_REPORTS. One that waits a fixed 5 ms reports 20; one that
/// does not wait at all, thousands. (Lines about clients that come and go
/// do not count: they are no flood.)
const MIN_REPORTS: usize = 3;
const MOST_REPORTS: usize = 8;

/// Waits for the server to report a failed accept, then counts what it
/// prints in the WINDOW after that.
#[cfg(unix)]
fn expect_backoff(step: &Step, server: &mut WatchedServer, since: Instant, round: &str) {
    let Some(first) = server.wait_for(quick::QUICK, since, reports_failed_accept) else {
        let got = match server.has_exited() {
            true => "the program ended",
            false => {
                step.note_waited_out();
                "no such line"
            }
        };
        let report = server
            .report(step)
            .expected(
                "a line on stderr that reports the failed accept and its cause, like \
                 `could not accept a connection: Too many open files (os error 24)`",
            )
            .got(got)
            .hint(
                "when accept fails, report the error on stderr with its cause ({error:#}), \
                 then wait (the backoff) and accept again.",
            );
        server.fail(report)
    };
    if server.panicked() {
        let report = server
            .report(step)
            .expected("the server to go on after a failed accept")
            .got("it panicked (its output is above)");
        server.fail(report);
    }
    if !first.text.contains(OUT_OF_FILES) {
        let report = server
            .report(step)
            .expected(&format!(
                "the report of the failed accept to say why it failed: {OUT_OF_FILES:?}"
            ))
            .got(&format!("{:?}, which does not", first.text))
            .hint(
                "print the error with {error:#}: the # shows its whole chain, the context \
                 (\"could not accept a connection\") and the cause the OS gave.",
            );
        server.fail(report);
    }
    let mut reports = 1;
    while let Some(line) = server.next_line(first.at + WINDOW) {
        reports += usize::from(reports_failed_accept(&line.text));
    }
    let watched = format!(
        "in the {} ms after the first one ({round} crowd)",
        WINDOW.as_millis()
    );
    if reports > MOST_REPORTS {
        let report = server
            .report(step)
            .expected(&format!(
                "at most {MOST_REPORTS} reports of a failed accept {watched}"
            ))
            .got(&format!(
                "{reports} reports: it tries again too soon, again and again"
            ))
            .hint(
                "after a failed accept, wait before the next one, twice as long each time \
                 it fails in a row (a Backoff made once, before the loop), so that a server \
                 out of files does not spin and flood its log.",
            );
        server.fail(report);
    }
    if server.has_exited() {
        let report = server
            .report(step)
            .expected("the server to go on after a failed accept")
            .got("the program ended")
            .hint("a failed accept is not the end of the server: report it, back off, go on.");
        server.fail(report);
    }
    if reports < MIN_REPORTS {
        let hint = match round {
            "first" => {
                "the first waits are short (5 ms, then 10, 20, ...): a server that \
                 waits long at once leaves its clients waiting too. Use the Backoff."
            }
            _ => {
                "the waits start over from short after an accept that works: tell the \
                 Backoff about each success (reset), or a server that ran out of files \
                 once waits long ever after."
            }
        };
        let report = server
            .report(step)
            .expected(&format!(
                "at least {MIN_REPORTS} reports of a failed accept {watched}"
            ))
            .got(&format!("{reports}: it waits too long before trying again"))
            .hint(hint);
        server.fail(report);
    }
}

#[test]
fn step_19_the_server_program_serves_clients_at_once() {
    let step = Step::new(
        "step 19: `server [::1]:0 --idle 100` serves two clients at once, narrates, and says goodbye to a silent one",
        CHAPTER,
    );
    let args = ["server", loopback_v6_if_any(), "--idle", "100"];
    let mut server = WatchedServer::start(program!(), &args);
    let addr = server.listening_address(&step);
    let mut idle = connect_to(&step, &mut server, addr);
    let mut busy = connect_to(&step, &mut server, addr);
    expect_program_echo(
        &step,
        &mut server,
        &mut busy,
        b"second client first\n",
        ONE_AT_A_TIME,
    );
    let last = b"first client last\n";
    expect_program_echo(&step, &mut server, &mut idle, last, ONE_AT_A_TIME);
    for client in [&idle, &busy] {
        server.expect_said(
            &step,
            &format!("accepted {}", client.local_addr()),
            "for each client it accepts, serve says `accepted` and the client's \
             address on stderr (narrate), written as Rust writes a SocketAddr ({peer}): \
             IPv6 in brackets, like [::1]:50000.",
        );
    }
    server.expect_said(
        &step,
        &format!(
            "read {n} bytes from {}, wrote {n} bytes back",
            idle.local_addr(),
            n = last.len()
        ),
        "serve_connection narrates each echo: `read N bytes from PEER, wrote N bytes back`.",
    );
    busy.send(b"bye");
    busy.close_sending();
    let rest = busy.read_to_end();
    if rest.bytes != b"bye" || rest.end != End::Closed {
        let report = server
            .report(&step)
            .expected("b\"bye\" back, then end of file")
            .got(&rest.describe())
            .hint(
                "echo the tail, then return at end of file: the task ends, the connection closes.",
            );
        server.fail(report);
    }
    server.expect_said(
        &step,
        &format!("closed the connection to {}", busy.local_addr()),
        "hand each connection to serve_client_async (given): it says how the connection ended.",
    );
    // The idle limit comes from the program's flag: 100 ms.
    let mut silent = connect_to(&step, &mut server, addr);
    let goodbye = silent.read_line();
    if goodbye.bytes != IDLE_REPLY {
        let report = server
            .report(&step)
            .did("a client connected and said nothing")
            .expected(&format!("{} after 100 ms (--idle 100)", show(IDLE_REPLY)))
            .got(&goodbye.describe())
            .hint("serve passes its limits to each client's task: serve_client_async(stream, peer, limits).");
        server.fail(report);
    }
}

#[test]
#[cfg_attr(not(unix), ignore = "needs a shell's ulimit (unix only)")]
fn step_20_the_server_program_backs_off_when_accept_fails() {
    let step = Step::new(
        "step 20: `server` out of files reports the failed accept, backs off, and serves again",
        CHAPTER,
    );
    #[cfg(unix)]
    backs_off_when_accept_fails(&step);
}

#[test]
fn step_21_the_server_program_explains_an_address_in_use() {
    let step = Step::new(
        "step 21: `server` explains an address in use in one line, exit code 1",
        CHAPTER,
    );
    expect_address_in_use_explained(&step, program!(), &["server"]);
}

/// Step 22: how many clients the lesson's program serves at once.
const THOUSAND: usize = 1000;

#[test]
fn step_22_the_server_program_serves_a_thousand_clients_at_once() {
    let step = Step::new(
        "step 22: `server` serves a thousand clients connected at the same time",
        CHAPTER,
    );
    // Each connection is a file in the check's process and one in the
    // server's: both may open as many as this process may (it is inherited).
    expect_room_for_files(&step, THOUSAND + 64);
    let mut server = WatchedServer::start(program!(), &["server", "127.0.0.1:0"]);
    let addr = server.listening_address(&step);
    let mut clients: Vec<Peer> = Vec::with_capacity(THOUSAND);
    while clients.len() < THOUSAND {
        let batch = BATCH.min(THOUSAND - clients.len());
        server.expect_running(&step);
        clients.extend((0..batch).map(|_| Peer::connect(&step, addr)));
        // The last of the batch takes a turn: once it is served, your server
        // has accepted the whole batch (accept takes them in order).
        let number = clients.len() - 1;
        let message = format!("client {number:04}\n");
        expect_program_echo(
            &step,
            &mut server,
            &mut clients[number],
            message.as_bytes(),
            ONE_AT_A_TIME,
        );
    }
    for (number, client) in clients.iter_mut().enumerate() {
        client.send(format!("client {number:04} again\n").as_bytes());
    }
    for (number, client) in clients.iter_mut().enumerate().rev() {
        let message = format!("client {number:04} again\n");
        let reply = client.read_line();
        if reply.bytes != message.as_bytes() || reply.end != End::Newline {
            let report = server
                .report(&step)
                .did(&format!(
                    "{THOUSAND} clients connected, each sent a message; the check read the \
                     echoes, the last client's first"
                ))
                .expected(&format!(
                    "client {number} to get {} back",
                    show(message.as_bytes())
                ))
                .got_bytes(message.as_bytes(), &reply)
                .hint(ONE_AT_A_TIME);
            server.fail(report);
        }
    }
}

#[test]
fn step_23_the_client_program_talks_to_your_server_program() {
    let step = Step::new(
        "step 23: the lesson's clients talk to your server, two at once, while a third stays idle",
        CHAPTER,
    );
    let mut server = WatchedServer::start(program!(), &["server", "127.0.0.1:0"]);
    let addr = server.listening_address(&step);
    let _idle = connect_to(&step, &mut server, addr);
    let inputs: [&'static [u8]; 2] = [
        b"one\n  two \t\r\n\xff\x00\n\nthree, no newline \xfe",
        b"from the other client\nand its last line\n",
    ];
    let addr = addr.to_string();
    let runs: Vec<_> = inputs
        .into_iter()
        .map(|input| {
            let addr = addr.clone();
            thread::spawn(move || program::run(program!(), &["client", &addr], input))
        })
        .collect();
    for (input, run) in inputs.iter().zip(runs) {
        let finished = run.join().expect("the check's thread ran the client");
        if finished.code == Some(0) && finished.stdout == *input {
            continue;
        }
        if finished.code.is_none() {
            step.note_waited_out();
        }
        let report = finished
            .report(&step)
            .expected(&format!(
                "the client to print exactly {} and exit 0",
                show(input)
            ))
            .got(&format!(
                "stdout {}, exit {}",
                show(&finished.stdout),
                match finished.code {
                    Some(code) => code.to_string(),
                    None => "none: it was still running".to_string(),
                }
            ));
        // The client is given: what went wrong is on your server's side.
        server.fail(report.observed(&format!(
            "the lesson's client (given, the same as lesson 6's) prints what your server \
             sends back. {}",
            match difference(input, &finished.stdout) {
                Some(text) => format!("{text}: look at your server's output below."),
                None => "Your server did not answer it in time: is a task waiting on \
                         another client?"
                    .to_string(),
            }
        )));
    }
}

/// Reports show what the check's client read, with the hint that fits.
trait GotBytes {
    fn got_bytes(self, expected: &[u8], received: &Received) -> Report;
}

impl GotBytes for Report {
    fn got_bytes(self, expected: &[u8], received: &Received) -> Report {
        let report = self.got(&received.describe());
        match hint_for_received(expected, received) {
            Some(hint) => report.observed(&hint),
            None => report,
        }
    }
}

mod quick {
    //! The check's client for this lesson: like the support crate's Peer,
    //! but a reply that a working server sends at once is waited for at most
    //! QUICK, not a full DEADLINE, so that a server that hangs is explained
    //! within 2 s even late in the run.

    use std::io::{Read, Write};
    use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
    use std::thread;
    use std::time::{Duration, Instant};

    use seesaw_checks::DEADLINE;
    use seesaw_checks::bytes::{difference, show};
    use seesaw_checks::peer::{End, PIECE_PAUSE};
    use seesaw_checks::report::{Step, Transcript, hint_for_kind};

    /// How long the check waits for a reply that your server sends at once:
    /// loopback answers in microseconds, so this is only ever reached by a
    /// server that is stuck (or a machine that is very busy).
    pub const QUICK: Duration = Duration::from_millis(600);

    /// What the check read, and how the read ended.
    pub struct Received {
        pub bytes: Vec<u8>,
        pub end: End,
        /// How long the check was ready to wait.
        pub waited: Duration,
    }

    impl Received {
        /// For failure messages: `b"hi\n"`, or `b"hi" and then end of file`.
        pub fn describe(&self) -> String {
            let bytes = show(&self.bytes);
            match self.end {
                End::Newline => bytes,
                End::Closed => format!("{bytes} and then end of file (you closed the connection)"),
                End::TimedOut => format!(
                    "{bytes} and then nothing more for {} s",
                    self.waited.as_secs_f32()
                ),
                End::Failed(kind) => format!("{bytes} and then an error: {kind}"),
            }
        }
    }

    /// The hint that fits what the check read where `expected` should have come.
    pub fn hint_for_received(expected: &[u8], received: &Received) -> Option<String> {
        let hint = match received.end {
            End::Failed(kind) => hint_for_kind(kind)?.to_string(),
            End::TimedOut if received.bytes.is_empty() => format!(
                "nothing came back within {} s: your code is waiting for something (a read \
                 that does not end? a wait that blocks the runtime's thread?) or never wrote.",
                received.waited.as_secs_f32()
            ),
            End::TimedOut => format!(
                "{} came, but no newline after it, and then nothing for {} s. {}",
                show(&received.bytes),
                received.waited.as_secs_f32(),
                difference(expected, &received.bytes).unwrap_or_default()
            ),
            End::Closed if !expected.starts_with(&received.bytes) || received.bytes.is_empty() => {
                format!(
                    "your code closed the connection {}: did it return, or panic, too early?",
                    match received.bytes.is_empty() {
                        true => "without sending anything".to_string(),
                        false => format!("after sending {}", show(&received.bytes)),
                    }
                )
            }
            _ => {
                let text = difference(expected, &received.bytes)?;
                match text.ends_with('.') {
                    true => text,
                    false => format!("{text}."),
                }
            }
        };
        Some(hint)
    }

    /// One connection the check holds, with the other end in your code.
    pub struct Peer {
        stream: TcpStream,
        step: Step,
        transcript: Transcript,
        /// Bytes read past a newline, kept for the next read.
        pending: Vec<u8>,
    }

    impl Peer {
        /// The check connects, as a client, to your server at `addr`.
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
                    .hint(hint_for_kind(error.kind()).unwrap_or("is your server listening?"))
                    .fail(),
            }
        }

        fn new(step: &Step, stream: TcpStream) -> Peer {
            Peer {
                stream,
                step: step.clone(),
                transcript: step.transcript().clone(),
                pending: Vec::new(),
            }
        }

        /// The check's own address on this connection.
        pub fn local_addr(&self) -> SocketAddr {
            self.stream
                .local_addr()
                .expect("a connected socket has a local address")
        }

        /// Sends `bytes` in one write. A failure is recorded; the read that follows shows it.
        pub fn send(&mut self, bytes: &[u8]) {
            self.transcript
                .add(format!("check → you   {}", show(bytes)));
            if let Err(error) = self.stream.write_all(bytes) {
                self.transcript
                    .add(format!("check   could not send: {error}"));
            }
        }

        /// Sends `bytes` from another thread, for a server that may stop
        /// reading before it has all of them.
        pub fn send_in_background(&self, bytes: Vec<u8>) {
            self.transcript.add(format!(
                "check → you   {} (sent in the background)",
                show(&bytes)
            ));
            let mut sender = self
                .stream
                .try_clone()
                .expect("the check could not clone its socket");
            thread::spawn(move || sender.write_all(&bytes));
        }

        /// Sends each piece in its own write, PIECE_PAUSE apart, as a slow
        /// network would deliver them (pacing a slow peer, not a wait).
        pub fn send_in_pieces(&mut self, pieces: &[&[u8]]) {
            for (index, piece) in pieces.iter().enumerate() {
                if index > 0 {
                    thread::sleep(PIECE_PAUSE);
                }
                self.send(piece);
            }
        }

        /// Closes the check's sending side (half-close).
        pub fn close_sending(&mut self) {
            self.transcript
                .add("check   closed its sending side (shutdown Write)".to_string());
            let _ = self.stream.shutdown(Shutdown::Write);
        }

        /// Vanishes like a crashed client: waits (at most QUICK) until
        /// something has arrived, and closes without reading it: a reset.
        pub fn reset(self) {
            let _ = self.stream.set_read_timeout(Some(QUICK));
            let _ = self.stream.peek(&mut [0u8; 1]);
            self.transcript
                .add("check   vanished: closed with unread data (a reset)".to_string());
        }

        /// Reads until a newline, end of file or QUICK, whichever comes
        /// first; running out of time is a hang.
        pub fn read_line(&mut self) -> Received {
            self.read_line_within(QUICK)
        }

        /// Like read_line, waiting at most `wait`.
        pub fn read_line_within(&mut self, wait: Duration) -> Received {
            let received = self.read(true, wait);
            if received.end == End::TimedOut {
                self.step.note_waited_out();
            }
            received
        }

        /// Reads until end of file or QUICK; running out of time is a hang.
        pub fn read_to_end(&mut self) -> Received {
            let received = self.read(false, QUICK);
            if received.end == End::TimedOut {
                self.step.note_waited_out();
            }
            received
        }

        /// Reads whatever arrives within `wait`, for a check that expects
        /// nothing more (or only an end of file): no hang.
        pub fn read_for(&mut self, wait: Duration) -> Received {
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
                    Err(error)
                        if matches!(
                            error.kind(),
                            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                        ) =>
                    {
                        break End::TimedOut;
                    }
                    Err(error) => break End::Failed(error.kind()),
                }
            };
            if !bytes.is_empty() {
                self.transcript
                    .add(format!("you → check   {}", show(&bytes)));
            }
            match end {
                End::Newline => {}
                End::Closed => self
                    .transcript
                    .add("you     closed the connection (end of file)".to_string()),
                End::TimedOut => self.transcript.add(format!(
                    "check   waited {} s, nothing more came",
                    wait.as_secs_f32()
                )),
                End::Failed(kind) => self.transcript.add(format!("check   read failed: {kind}")),
            }
            Received {
                bytes,
                end,
                waited: wait,
            }
        }
    }

    /// A connection with the check's Peer on one end and, on the other, the
    /// socket to hand to your server code.
    pub fn connected_pair(step: &Step) -> (Peer, TcpStream) {
        let listener =
            TcpListener::bind("127.0.0.1:0").expect("the check could not listen on 127.0.0.1");
        let addr = listener
            .local_addr()
            .expect("a bound listener has an address");
        let peer = Peer::connect(step, addr);
        let (theirs, _) = listener
            .accept()
            .expect("the check could not accept its own connection");
        (peer, theirs)
    }
}
