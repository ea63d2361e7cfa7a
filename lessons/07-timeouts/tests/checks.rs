//! The checks of lesson 7, in the order you meet them: the first failure is
//! your next step. Run them with `cargo test -p lesson-07-timeouts`.
//!
//! Every limit here is a few dozen to a few hundred milliseconds, so that the
//! checks take seconds, not minutes. A check measures with
//! std::time::Instant when your code gave up: never before its limit, and
//! not much after it (the margin, LATE, is generous, for a busy machine).
//! The check plays the other side: a server that never answers for your
//! dial_within; silent, slow, quick and deaf clients for your server.
//!
//! The helpers of this lesson alone are in `checks/`: `dialling` (steps 1-3),
//! `reading` (steps 4-8), `goodbyes` (step 10's clients), `troublesome` (the
//! slow and the deaf client), `program_clients` (step 12's clients of the program).

#[path = "checks/dialling.rs"]
mod dialling;
#[path = "checks/goodbyes.rs"]
mod goodbyes;
#[path = "checks/program_clients.rs"]
mod program_clients;
#[path = "checks/reading.rs"]
mod reading;
#[path = "checks/troublesome.rs"]
mod troublesome;

use std::io::{ErrorKind, Write};
use std::net::{Shutdown, SocketAddr, TcpListener};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use lesson_07_timeouts::{
    Client, Heard, IDLE_REPLY, Limits, MAX_MESSAGE, TOO_LONG_REPLY, serve_concurrently_within,
    serve_connection_within,
};
use seesaw_checks::DEADLINE;
use seesaw_checks::bounded;
use seesaw_checks::bytes::{show, show_list, thousands};
use seesaw_checks::localhost::{each_localhost_alone, ipv6_loopback, localhost_addresses};
use seesaw_checks::peer::{End, PIECE_PAUSE, Peer, connected_pair, unused_address};
use seesaw_checks::program;
use seesaw_checks::program::{expect_address_in_use_explained, run};
use seesaw_checks::relay::Relay;
use seesaw_checks::report::{Step, io_error_kind};
use seesaw_checks::timing::{self, Timed, millis, ms, outside_limit};
use seesaw_checks::watched::WatchedServer;

use dialling::{
    CANNOT_IGNORE, DIAL_HANGS, dial_and_talk, expect_error_naming, never_answering, start_dial,
};
use goodbyes::{Quick, Silent, expect_slow_goodbye};
use reading::{
    Answers, describe_all, expect_answers, expect_steady_in_time, expect_too_slow,
    expect_zero_answer, fail_with_error, hint_for_heard, start_reading, start_three_reads,
};
use troublesome::{GIVING_UP, GivingUp, Trickle, flood};

const CHAPTER: &str = "07-timeouts";

/// How much later than its limit the check accepts that your code gave up:
/// a busy machine may wake a thread a little late, never this late.
const LATE: Duration = Duration::from_millis(250);

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

// ---------------------------------------------------------------------------
// dial_within (steps 1 to 3): the check plays the server.
// ---------------------------------------------------------------------------

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
    if ipv6_loopback(&step, "over IPv6") {
        let listener = TcpListener::bind("[::1]:0").expect("the check could not listen");
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
    for (ip, listener, name) in each_localhost_alone() {
        let refused = format!(
            "localhost stands for {addresses:?} here, and the check listens on {ip} only: \
             your dial_within did not try every address. Resolve the name \
             (to_socket_addrs), then try each address in turn until one answers."
        );
        dial_and_talk(&step, &listener, &name, Some(&refused));
    }
}

fn step_02_dial_within_explains_a_refused_connection() {
    let step = Step::new(
        "step 2: dial_within returns an error that names the address when nothing listens there",
        CHAPTER,
    );
    let addr = unused_address().to_string();
    step.transcript()
        .add(format!("check   nothing listens on {addr}"));
    let dialling = start_dial(&step, &addr, ms(1000));
    let deadline = dialling.started() + LATE;
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

fn step_03_dial_within_gives_up_on_a_server_that_never_answers() {
    let step = Step::new(
        "step 3: dial_within gives up after its timeout on a server that never answers, with an error that names the address",
        CHAPTER,
    );
    let Some((_listener, addr, queued)) = never_answering() else {
        return step.skip(CANNOT_IGNORE);
    };
    step.transcript().add(format!(
        "check   made {addr} a server that never answers: its queue holds {} connections nobody accepts",
        queued.len()
    ));
    let timeout = ms(60);
    let dialling = start_dial(&step, &addr.to_string(), timeout);
    let did = format!("called dial_within(\"{addr}\", 60 ms) on a server that never answers");
    let (result, at) = dialling.finish_by(&step, dialling.started() + timeout + LATE, DIAL_HANGS);
    if let Some(problem) = outside_limit(dialling.started(), at, timeout, Duration::ZERO, LATE) {
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
    client.send_in_pieces(&[b"see", b"saw ", b"up and down\nsec"]);
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

fn step_05_read_message_within_stops_at_max_message() {
    let step = Step::new(
        "step 5: read_message_within accepts a message of MAX_MESSAGE bytes, and stops reading at MAX_MESSAGE when no newline comes",
        CHAPTER,
    );
    let limits = limits(1000, 1000, 1000);
    let (client, connection) = connected_pair(&step);
    let at_limit = [vec![b'x'; MAX_MESSAGE - 1], b"\n".to_vec()].concat();
    let flood = vec![b'y'; MAX_MESSAGE + 100_000];
    let sent = [at_limit.clone(), at_limit.clone(), flood.clone()].concat();
    let (call, running) = start_three_reads(&step, connection, limits);
    client.note(format!(
        "check → you   {} twice, then {} and end of file (sent in the background)",
        show(&at_limit),
        show(&flood)
    ));
    let mut stream = client
        .stream()
        .try_clone()
        .expect("the check could not clone its socket");
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
    if matched {
        expect_stopped_at_limit(&step, did, flood.len() - left);
    }
}

/// Fails if your code took more than MAX_MESSAGE bytes (and one to see
/// whether a newline follows, which is fine) of a message without newline.
fn expect_stopped_at_limit(step: &Step, did: &str, taken: usize) {
    if taken > MAX_MESSAGE + 1 {
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
    if let Some(problem) =
        outside_limit(answers.times[0], answers.times[1], limits.idle, ms(0), LATE)
    {
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

/// How far apart step 7 sends those pieces (a peer's pause between pieces):
/// longer than limits.idle.
const SLOW_PACE: Duration = PIECE_PAUSE;

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
        steady.send_in_pieces(&IN_TIME);
        steady.close_sending();
        steady
    });
    slow.note(format!("check says nothing for {}", millis(SILENCE)));
    thread::sleep(SILENCE);
    let trickle = Trickle::start(&slow, 40);
    let answers = slow_reading.all(&step, trickle.first + slow_limits.message + LATE);
    let bytes = trickle.stop();
    slow.note(format!("check stopped sending, after {bytes} bytes"));
    expect_too_slow(&step, &slow_reading, answers, trickle.first, slow_limits);
    let steady = steady
        .join()
        .expect("the check's own thread does not panic");
    expect_steady_in_time(&step, &steady, &steady_reading, steady_limits);
}

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

// ---------------------------------------------------------------------------
// serve_connection_within (steps 9 to 11): the check plays the clients.
// ---------------------------------------------------------------------------

const SERVER_HANGS: &str = "the check's client is waiting for your server. Does \
     serve_connection_within answer each message before reading the next, and return at \
     end of file (Heard::End)?";

/// Runs your serve_connection_within on the server's end of a new
/// connection; the check's end is named `name` in the transcript.
fn start_serving(step: &Step, name: &str, limits: Limits) -> (Peer, Timed<anyhow::Result<()>>) {
    let (client, connection) = connected_pair(step);
    let call = format!(
        "serve_connection_within(connection, &{})",
        show_limits(&limits)
    );
    let serving = timing::start(step, &call, move || {
        serve_connection_within(connection, &limits)
    });
    (client.named(name), serving)
}

/// Waits for your serve_connection_within to return Ok(()), once the check
/// has closed its side.
fn expect_served(step: &Step, serving: &Timed<anyhow::Result<()>>) {
    let (result, _) = serving.finish_by(step, Instant::now() + DEADLINE, SERVER_HANGS);
    if let Err(error) = result {
        step.report()
            .expected(&format!("{} to return Ok(())", serving.call()))
            .got_error(&error)
            .fail();
    }
}

fn step_09_the_server_echoes_as_in_lesson_6() {
    let step = Step::new(
        "step 9: serve_connection_within echoes every message, bytes exact, the tail, and answers a message too long",
        CHAPTER,
    );
    let (mut client, serving) = start_serving(&step, "client", limits(500, 500, 1000));
    let hint = "echo each Line and Tail exactly as it came, with one write_all.";
    client.expect_echo(b"hello\n", hint);
    client.expect_echo(b"  spaces, a tab\t and a carriage return \r\n", hint);
    client.expect_echo(b"\xff\x00 not UTF-8 \xfe\n", hint);
    client.send_in_pieces(&[b"in ", b"pieces\n"]);
    client.expect_line(b"in pieces\n", hint);
    client.send(b"the last words \xfe");
    client.close_sending();
    client.expect_then_end(
        b"the last words \xfe",
        "echo a Tail like a Line; the next answer is End: return Ok(()).",
    );
    expect_served(&step, &serving);

    let (mut client, serving) = start_serving(&step, "long", limits(500, 500, 1000));
    client.send_in_background(vec![b'x'; MAX_MESSAGE + 1]);
    let refusal = client.read_line();
    if refusal.bytes != TOO_LONG_REPLY || refusal.end != End::Newline {
        let report = step
            .report()
            .expected(&show(TOO_LONG_REPLY))
            .got_received(TOO_LONG_REPLY, &refusal)
            .hint("on Heard::TooLong, write TOO_LONG_REPLY, then end with close_gently (given).");
        if refusal.bytes.is_empty() && matches!(refusal.end, End::Closed | End::Failed(_)) {
            report
                .observed(
                    "your server closed the connection without a word, with the check's bytes \
                     unread: on Heard::TooLong, write TOO_LONG_REPLY, then end with \
                     close_gently (given).",
                )
                .fail();
        }
        report.fail();
    }
    client.close_sending();
    client.expect_end("after an error line, end the connection with close_gently.");
    expect_served(&step, &serving);
}

fn step_10_the_server_keeps_its_limits_per_message() {
    let step = Step::new(
        "step 10: serve_connection_within says goodbye to a silent and to a slow client, in time, and keeps serving a quick one",
        CHAPTER,
    );
    // Three clients at once, each on a connection of its own.
    let quick = Quick::start(&step);
    let silent = Silent::start(&step);
    expect_slow_goodbye(&step);
    silent.expect_goodbye(&step);
    quick.expect_served_all_along(&step);
}

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
    let mut giving_up = GivingUp::new(limits.write, last_sent, None);
    let mut returned = None;
    while let (None, Some(look)) = (&returned, giving_up.next_look()) {
        returned = serving.returned_by(&step, look);
    }
    let Some((result, at)) = returned else {
        fail_still_writing(&step, &did, &serving, &giving_up, limits.write);
    };
    let took = at.saturating_duration_since(serving.started());
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
    let Err(error) = result else { return };
    let report = step
        .report()
        .did(&did)
        .expected(&format!("{} to return Ok(())", serving.call()))
        .got_error(&error);
    if io_error_kind(&error).is_some_and(is_timeout_kind) {
        report
            .observed(
                "a write that runs out of time is how a server gives up on a client that \
                 does not read, not an error of the server: narrate `PEER does not read its \
                 echoes; gave up writing`, and return Ok(()).",
            )
            .fail();
    }
    report.fail();
}

/// Step 11's report when your server has not given up on the deaf client:
/// it is still busy reading, or it waits in a write.
fn fail_still_writing(
    step: &Step,
    did: &str,
    serving: &Timed<anyhow::Result<()>>,
    giving_up: &GivingUp,
    write: Duration,
) -> ! {
    let since_busy = giving_up.last_busy().elapsed();
    let report = step.report().did(did).expected(&format!(
        "{} to give up and return after about {}",
        serving.call(),
        millis(write)
    ));
    if since_busy < write + GIVING_UP {
        // Your server is still busy: none of its writes has had to wait yet.
        report
            .got(&format!(
                "still running after {}, and still busy {} ago",
                millis(serving.started().elapsed()),
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
    report
        .got(&format!(
            "still running after {}",
            millis(serving.started().elapsed())
        ))
        .observed(
            "your server waits on a client that does not read far longer than \
             limits.write, maybe for ever: a write blocks until the client makes room. \
             Set the connection's write timeout to limits.write before the first write.",
        )
        .fail()
}

fn is_timeout_kind(kind: ErrorKind) -> bool {
    matches!(kind, ErrorKind::WouldBlock | ErrorKind::TimedOut)
}

// ---------------------------------------------------------------------------
// The programs (steps 12 to 15): src/main.rs (given), built on your lib.rs.
// ---------------------------------------------------------------------------

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
    let (mut server, addr) = WatchedServer::start_listening(&step, program!(), &args);
    let (idle, message, write) = (ms(100), ms(150), ms(100));
    // Three troublesome clients at once, each read on a thread of its own.
    let silent = program_clients::Silent::connect(&step, addr, idle);
    let slow = program_clients::Slow::connect(&step, addr, message);
    let deaf = program_clients::Deaf::connect(&step, addr, write, server.pid());
    expect_served_now(
        &step,
        addr,
        "other",
        b"served meanwhile?\n",
        "each client has a thread of its own: troublesome clients never stop the others.",
    );
    silent.expect_goodbye(&step, &mut server);
    slow.expect_goodbye(&step, &mut server);
    deaf.expect_given_up(&step, &mut server);
    // And the server goes on serving.
    expect_served_now(
        &step,
        addr,
        "later",
        b"still serving?\n",
        "after giving up on one client, the server serves the next.",
    );
}

/// Sends `message` from a new client and fails unless it comes back.
fn expect_served_now(step: &Step, addr: SocketAddr, name: &str, message: &[u8], why: &str) {
    let mut client = Peer::connect(step, addr).named(name);
    client.expect_echo(message, why);
}
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

fn step_14_the_client_program_gives_up_on_a_server_that_never_answers() {
    let step = Step::new(
        "step 14: `client ADDR --connect 100` gives up on a server that never answers, in one line that names it; and talks to one that answers",
        CHAPTER,
    );
    let never = never_answering();
    if never.is_none() {
        step.skip_part("a server that never answers", CANNOT_IGNORE);
    }
    if let Some((_listener, addr, queued)) = never {
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

/// What step 16's client sends: two messages, then one after the server's
/// goodbye.
const ODD: &[u8] = b" \t\xff\x00 odd bytes\r\n";

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
    let call = format!(
        "serve_concurrently_within(listener, {})",
        show_limits(&limits)
    );
    let _server = bounded::start(&step, &call, move || {
        let _ = serve_concurrently_within(listener, limits);
    });
    let relay = Relay::start(&step, server_addr);
    let (go_on, wait_for_go) = mpsc::channel::<()>();
    let addr = relay.addr().to_string();
    let client = timing::start(
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
    let wait = limits.idle + LATE + LATE;
    let said_goodbye = relay.wait_until(1, wait, |carried| carried.to_client.ends_with(IDLE_REPLY));
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
    expect_own_conversation(&step, &relay, limits, outcome);
}

/// Fails unless your client got every reply due, saying which side went
/// wrong from what the relay carried.
fn expect_own_conversation(
    step: &Step,
    relay: &Relay,
    limits: Limits,
    outcome: anyhow::Result<Vec<Vec<u8>>>,
) {
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
        .observed(&verdict(relay, &sent, &due_bytes))
        .fail();
}

/// Which side went wrong, from what the relay carried.
fn verdict(relay: &Relay, sent: &[u8], due: &[u8]) -> String {
    let carried = relay.carried(1).unwrap_or_default();
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

seesaw_checks::checks![
    step_01_dial_within_connects,
    step_02_dial_within_explains_a_refused_connection,
    step_03_dial_within_gives_up_on_a_server_that_never_answers,
    step_04_read_message_within_reads_whole_messages,
    step_05_read_message_within_stops_at_max_message,
    step_06_silence_is_idle,
    step_07_a_message_has_its_own_deadline,
    step_08_a_limit_of_zero_is_no_error,
    step_09_the_server_echoes_as_in_lesson_6,
    step_10_the_server_keeps_its_limits_per_message,
    step_11_the_server_gives_up_on_a_client_that_does_not_read,
    step_12_the_server_program_keeps_its_limits,
    step_13_the_programs_check_their_flags,
    step_14_the_client_program_gives_up_on_a_server_that_never_answers,
    step_15_the_server_program_explains_an_address_in_use,
    step_16_your_client_talks_to_your_server,
];
