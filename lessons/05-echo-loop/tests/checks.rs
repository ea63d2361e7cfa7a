//! The checks of lesson 5, in the order you meet them: the first failure is
//! your next step. Run them with `cargo test -p lesson-05-echo-loop`.
//!
//! To check your server, the check plays the client; to check your client, the
//! check plays the server. Only the last check has your client talk to your
//! own server, once each side has passed against the check.
//!
//! The conversations an echo server must hold in every lesson (many messages,
//! pieces, the tail, a flood) are written once, in the support crate's
//! `echo_cases`; read_message's inputs in its `fixtures`. The check as the
//! server of your client (steps 13 to 15) is in `checks/client_side.rs`.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use lesson_05_echo_loop::{
    Client, MAX_MESSAGE, Message, TOO_LONG_REPLY, read_message, serve_connection,
};
use seesaw_checks::DEADLINE;
use seesaw_checks::bounded::{self, Running};
use seesaw_checks::bytes::{difference, show, show_list};
use seesaw_checks::echo_cases::{self, ECHO_EXACTLY, Gentle, Refusal, SERVER_HANGS, Started};
use seesaw_checks::fixtures::{self, Found, Input, ReadChecks, cases, xs};
use seesaw_checks::localhost;
use seesaw_checks::peer::{CheckServer, End, PIECE_PAUSE, Peer, connected_pair};
use seesaw_checks::program;
use seesaw_checks::program::{Server, run};
use seesaw_checks::relay::Relay;
use seesaw_checks::report::{self, Step};
use seesaw_checks::timing::millis;

#[path = "checks/client_side.rs"]
mod client_side;

use client_side::{
    EARLY_REPLY_LOST, SENT_NOTHING, expect_hung_up, expect_returned, expect_sent, expect_sent_or,
    start_client,
};

const CHAPTER: &str = "05-echo-loop";

const CLIENT_HANGS: &str = "the check's server has sent its reply and waits. Does your \
     client stop reading at the reply's newline, keep reading until it comes (a reply may \
     arrive late, in pieces), and keep one buffer for the whole connection?";

/// How long the check waits for what your code should send right after the
/// check's last move (a reply, the next message, an end of file): no network
/// round trip is needed, so this is shorter than the DEADLINE, and a hang is
/// explained sooner.
const QUICK: Duration = Duration::from_millis(500);

// ---------------------------------------------------------------------------
// read_message (steps 1 to 4): from memory, no network yet.
// ---------------------------------------------------------------------------

/// Your read_message, as the checks call it: on bytes in memory.
fn your_read_message(step: &Step) -> ReadChecks<impl fixtures::ReadFunction> {
    ReadChecks::new(step, MAX_MESSAGE, fixtures::blocking(read_found))
}

/// What your read_message found, in the support crate's words (the same).
fn read_found(input: &mut Input) -> anyhow::Result<Found> {
    Ok(match read_message(input)? {
        Message::Line(bytes) => Found::Line(bytes),
        Message::Tail(bytes) => Found::Tail(bytes),
        Message::End => Found::End,
        Message::TooLong => Found::TooLong,
    })
}

fn step_01_read_message_finds_whole_messages() {
    let step = Step::new(
        "step 1: read_message returns each message, newline included, bytes exact, then End",
        CHAPTER,
    );
    your_read_message(&step).expect_cases(&cases::whole_messages());
}

fn step_02_read_message_finds_a_tail_without_newline() {
    let step = Step::new(
        "step 2: read_message returns the last bytes without a newline as a Tail, then End",
        CHAPTER,
    );
    your_read_message(&step).expect_cases(&cases::tails());
}

fn step_03_read_message_keeps_the_limit_per_message() {
    let step = Step::new(
        "step 3: read_message accepts messages up to MAX_MESSAGE bytes, each, and no more",
        CHAPTER,
    );
    your_read_message(&step).expect_cases(&cases::limit(MAX_MESSAGE));
}

fn step_04_read_message_never_reads_past_the_limit() {
    let step = Step::new(
        "step 4: read_message stops reading at MAX_MESSAGE bytes: it never reads the rest first",
        CHAPTER,
    );
    // 16 MiB without a newline, counting what your code takes.
    your_read_message(&step).expect_stops_at_limit(16 * 1024 * 1024);
}

// ---------------------------------------------------------------------------
// serve_connection (steps 5 to 12): the check plays the client.
// ---------------------------------------------------------------------------

/// Runs your serve_connection on the server end of a fresh connection.
fn start_server(step: &Step) -> Started {
    let (client, connection) = connected_pair(step);
    (client.patience(QUICK), start_serving(step, connection))
}

/// Runs your serve_connection on `connection`.
fn start_serving(step: &Step, connection: TcpStream) -> Running<anyhow::Result<()>> {
    // A second handle keeps the socket open until a panic has been recorded.
    let keep = connection
        .try_clone()
        .expect("the check could not clone its socket");
    bounded::start_with(step, "serve_connection(connection)", keep, move |_| {
        serve_connection(connection)
    })
}

fn step_05_the_server_echoes_many_messages_in_order() {
    let step = Step::new(
        "step 5: serve_connection echoes every message, bytes exact, in order, on one connection",
        CHAPTER,
    );
    echo_cases::many_messages_in_order(&step, || start_server(&step));
}

fn step_06_the_server_echoes_a_message_in_pieces() {
    let step = Step::new(
        "step 6: serve_connection reads a whole message even when it comes in pieces",
        CHAPTER,
    );
    echo_cases::message_in_pieces(&step, || start_server(&step));
}

fn step_07_the_server_echoes_the_tail_then_closes() {
    let step = Step::new(
        "step 7: after the client's half-close, serve_connection echoes the last bytes, then closes",
        CHAPTER,
    );
    echo_cases::tail_then_end(&step, || start_server(&step));
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
        client.expect_echo(format!("turn {number}\n").as_bytes(), ECHO_EXACTLY);
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
    client.expect_end("at end of file (Message::End), return: that closes the connection.");
    running.finish_ok(&step, SERVER_HANGS);
}

/// A lesson 5 server ends a connection gently with close_gently (given).
const GENTLE: Gentle = Gentle {
    linger_hint: "after TOO_LONG_REPLY your server closed at once, with the client's bytes \
         still unread: that resets the connection, and a reset can destroy the error line \
         before the client reads it. End the connection with close_gently (given in lib.rs): \
         it reads and throws away what still comes, until the client hangs up.",
    stopped_hint: "your server stopped reading, and did not close either: after the error \
         line, close_gently (given) reads and throws away what the client still sends, then \
         closes.",
};

const REFUSAL: Refusal = Refusal {
    reply: TOO_LONG_REPLY,
    if_echoed: "your server echoed the message, which is over the limit: it \
     must not. On Message::TooLong, write TOO_LONG_REPLY instead.",
    hint: "on Message::TooLong, write TOO_LONG_REPLY, then end the \
     connection. Never wait for a newline beyond the limit.",
    then_nothing: "after TOO_LONG_REPLY, write nothing more: end the connection with \
     close_gently(connection).",
};

fn step_09_the_server_answers_a_message_too_long() {
    let step = Step::new(
        "step 9: a message over MAX_MESSAGE gets one error line, then the connection ends",
        CHAPTER,
    );
    // One byte over the limit, no newline.
    let (mut client, running) = start_server(&step);
    echo_cases::expect_refusal(&mut client, &step, xs(MAX_MESSAGE + 1, b""), &REFUSAL);
    running.finish_ok(&step, SERVER_HANGS);

    // One byte over the limit, that byte being the newline.
    let (mut client, running) = start_server(&step);
    client.expect_echo(b"a short one first\n", ECHO_EXACTLY);
    echo_cases::expect_refusal(&mut client, &step, xs(MAX_MESSAGE, b"\n"), &REFUSAL);
    running.finish_ok(&step, SERVER_HANGS);
}

fn step_10_the_server_keeps_the_limit_per_message() {
    let step = Step::new(
        "step 10: serve_connection echoes messages up to MAX_MESSAGE bytes each, however many",
        CHAPTER,
    );
    let (mut client, running) = start_server(&step);
    // Exactly at the limit, newline included.
    client.expect_echo(&xs(MAX_MESSAGE - 1, b"\n"), ECHO_EXACTLY);
    // Three more that add up to more than the limit: it is per message.
    for number in 1..=3 {
        let line = [format!("message {number}: ").as_bytes(), &xs(30_000, b"\n")].concat();
        client.expect_echo(&line, ECHO_EXACTLY);
    }
    // A tail just under the limit.
    let tail = xs(MAX_MESSAGE - 1, b"");
    client.send(&tail);
    client.close_sending();
    client.expect_then_end(
        &tail,
        "a last message under the limit, without a newline, is echoed like any other.",
    );
    running.finish_ok(&step, SERVER_HANGS);
}

fn step_11_the_error_line_survives_a_flood() {
    let step = Step::new(
        "step 11: a client still sending 1 MiB gets the error line and a clean end of file, no reset",
        CHAPTER,
    );
    let (client, connection) = connected_pair(&step);
    let started = (client.patience(DEADLINE), start_serving(&step, connection));
    echo_cases::error_line_survives_a_flood(&step, started, TOO_LONG_REPLY, &GENTLE);
}

fn step_12_the_server_reports_a_client_that_vanishes() {
    let step = Step::new(
        "step 12: serve_connection returns the error when the client resets the connection, even before it starts",
        CHAPTER,
    );
    let (mut client, running) = start_server(&step);
    client.expect_echo(b"hello\n", ECHO_EXACTLY);
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
    client.note(
        "check   put b\"?\" in its client's unread bytes (through your end, before your code starts)",
    );
    (&connection)
        .write_all(b"?")
        .expect("the check could not write to its own connection");
    client.reset();
    wait_until_reset(&connection);
    step.transcript()
        .add("check   started serve_connection on the connection its client has reset".to_string());
    let outcome = start_serving(&step, connection).finish(
        &step,
        "the client reset the connection before you started: your first read (or write) \
         fails at once. Return that error.",
    );
    expect_reset_reported(&step, &outcome);
}

/// Waits, at most [`DEADLINE`], until `connection` has seen its client's
/// reset, without taking the error that your first read must get: poll(2)
/// reports a reset (POLLERR, POLLHUP: always reported, whatever `events`
/// asks for, so asking for nothing ignores the unread bytes) and leaves the
/// error in place.
#[cfg(unix)]
fn wait_until_reset(connection: &TcpStream) {
    use std::ffi::{c_int, c_short};
    use std::os::fd::AsRawFd;

    #[repr(C)]
    struct PollFd {
        fd: c_int,
        events: c_short,
        revents: c_short,
    }
    #[cfg(target_os = "linux")]
    type Count = std::ffi::c_ulong;
    #[cfg(not(target_os = "linux"))]
    type Count = std::ffi::c_uint;
    unsafe extern "C" {
        fn poll(fds: *mut PollFd, count: Count, timeout_ms: c_int) -> c_int;
    }
    let mut watched = PollFd {
        fd: connection.as_raw_fd(),
        events: 0,
        revents: 0,
    };
    let timeout_ms = c_int::try_from(DEADLINE.as_millis()).unwrap_or(c_int::MAX);
    // SAFETY: one valid pollfd, owned here, for the duration of the call.
    unsafe {
        poll(&mut watched, 1, timeout_ms);
    }
}

/// Elsewhere std offers no wait on a reset: the connection has no peer
/// address any more once it has seen one, so the check looks every 1 ms.
#[cfg(not(unix))]
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
    expect_sent_or(&step, &mut server, messages[0], SENT_NOTHING);
    server.send(&expected[0]);
    expect_sent(&step, &mut server, messages[1]);
    server.send(&expected[1]);
    // Two replies in one write: the second must wait in your client's buffer.
    expect_sent(&step, &mut server, messages[2]);
    server.send(&[long_reply.as_slice(), &expected[3]].concat());
    expect_sent(&step, &mut server, messages[3]);
    // A slow server: the last reply comes late, and in pieces.
    expect_sent_or(&step, &mut server, messages[4], EARLY_REPLY_LOST);
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
                 until it closes (end of file) with reader.read_to_end, and return all of \
                 them.",
            )
            .fail();
    }
    expect_returned(
        &step,
        call,
        &rest,
        answer,
        match rest.is_empty() {
            true => {
                "after the hang-up the server sent bytes, and finish returned none: read \
                 everything until the server closes (reader.read_to_end), and return it. \
                 Shut down only the sending side (Shutdown::Write): Shutdown::Both closes the \
                 reading side too, and what the server sends is lost."
            }
            false => {
                "read everything the server still sends, until it closes \
                 (reader.read_to_end), and return those bytes."
            }
        },
    );

    // An empty tail after a last turn: nothing more is sent, then end of file.
    let call = "client.turn(b\"last turn\\n\"), then client.finish(b\"\")";
    let (mut server, running) = start_client(&step, call, |mut client| {
        let reply = client.turn(b"last turn\n")?;
        Ok((reply, client.finish(b"")?))
    });
    expect_sent_or(&step, &mut server, b"last turn\n", SENT_NOTHING);
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

fn step_15_the_client_reports_a_server_that_closes_first() {
    let step = Step::new(
        "step 15: Client::turn is an error when the server closes instead of replying",
        CHAPTER,
    );
    let (mut server, running) = start_client(&step, "client.turn(b\"hello?\\n\")", |mut client| {
        client.turn(b"hello?\n")
    });
    expect_sent_or(&step, &mut server, b"hello?\n", SENT_NOTHING);
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
    if localhost::ipv6_loopback(&step, "the client over IPv6") {
        let (listener, _) = localhost::listen_on("[::1]:0");
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
                 read N bytes from PEER, wrote N bytes back, with PEER from peer_name and N \
                 the count of every byte read and written back, the newline included \
                 (bytes.len()).",
            )
            .fail();
    }
}

fn step_18_the_server_program_serves_clients_one_after_another() {
    let step = Step::new(
        "step 18: `server` narrates each echo, and serves clients one after another, whatever each did",
        CHAPTER,
    );
    let mut server = Server::start(program!(), &["server", localhost::ipv6_if_any()]);
    let addr: SocketAddr = server.listening_address(&step);

    let mut first = server.connect(&step, addr);
    first.expect_echo(b"first client\n", ECHO_EXACTLY);
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
    last.expect_echo(b"still there?\n", ECHO_EXACTLY);
}

// ---------------------------------------------------------------------------
// The last step: your client talks to your server, through the check.
// ---------------------------------------------------------------------------

/// What your client returned from one conversation: the replies, then what
/// finish returned.
type Conversation = (Vec<Vec<u8>>, Vec<u8>);

/// What your client did in one conversation with your own server.
struct OwnSeesaw {
    relay: Relay,
    client: Running<anyhow::Result<Conversation>>,
    server: Running<anyhow::Result<()>>,
}

/// Starts your Client and your serve_connection, with the check's relay in
/// the middle: your client sends `messages` with turn, then `last` with finish.
fn start_own_seesaw(step: &Step, messages: Vec<Vec<u8>>, last: &'static [u8]) -> OwnSeesaw {
    let server_side = CheckServer::start();
    let relay = Relay::start(step, server_side.addr());
    let addr = relay.addr().to_string();
    let client = bounded::start(step, "your Client (turn, then finish)", move || {
        let mut client = Client::connect(&addr)?;
        let mut replies = Vec::new();
        for message in &messages {
            replies.push(client.turn(message)?);
        }
        Ok((replies, client.finish(last)?))
    });
    // Client::connect (given) always dials, and the relay passes it on.
    let connection = server_side
        .accept_within(DEADLINE)
        .expect("the relay connects to the check's listener");
    let server = start_serving(step, connection);
    OwnSeesaw {
        relay,
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
    let carried = seesaw.relay.carried(1).unwrap_or_default();
    let server_right = carried.to_client == [replies.concat(), rest.to_vec()].concat();
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
    let report = step.report().did(&format!(
        "relayed between your client and your server; your client sent {}",
        show(&carried.to_server)
    ));
    match outcome {
        Ok((got_replies, got_rest)) if got_replies == replies && got_rest == rest => {}
        Ok((got_replies, got_rest)) => report
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
        Err(error) => report
            .expected("your client's conversation with your server to succeed")
            .got_error(&error)
            .observed(who)
            .fail(),
    }
    step.ok("your serve_connection", server_outcome);
}

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

seesaw_checks::checks![
    step_01_read_message_finds_whole_messages,
    step_02_read_message_finds_a_tail_without_newline,
    step_03_read_message_keeps_the_limit_per_message,
    step_04_read_message_never_reads_past_the_limit,
    step_05_the_server_echoes_many_messages_in_order,
    step_06_the_server_echoes_a_message_in_pieces,
    step_07_the_server_echoes_the_tail_then_closes,
    step_08_the_server_answers_each_turn_at_once,
    step_09_the_server_answers_a_message_too_long,
    step_10_the_server_keeps_the_limit_per_message,
    step_11_the_error_line_survives_a_flood,
    step_12_the_server_reports_a_client_that_vanishes,
    step_13_the_client_takes_turns,
    step_14_the_client_finishes_with_a_half_close,
    step_15_the_client_reports_a_server_that_closes_first,
    step_16_the_client_program_echoes_its_input,
    step_17_the_client_program_reports_a_server_that_closes_first,
    step_18_the_server_program_serves_clients_one_after_another,
    step_19_your_client_talks_to_your_server,
];
