//! The checks of lesson 9, in the order you meet them: the first failure is
//! your next step. Run them with `cargo test -p lesson-09-async`.
//!
//! Your async functions run on a tokio runtime that the check builds, with
//! one thread, on a thread of the check's own with a deadline (the support
//! crate's `on_tokio`): a function that blocks that thread (a std read, a std
//! sleep) stops every client of the runtime, and the checks see it. The check
//! itself plays the clients with plain std sockets, and waits for every echo,
//! with a deadline.
//!
//! The conversations an echo server must hold in every lesson (many messages,
//! pieces, the tail, a flood) are written once, in the support crate's
//! `echo_cases`; read_message's inputs in its `fixtures`.

use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use lesson_09_async::{
    IDLE_REPLY, Limits, MAX_MESSAGE, Message, SLOW_REPLY, TOO_LONG_REPLY, read_message, serve,
    serve_connection,
};
use seesaw_checks::bounded::{self, Running};
use seesaw_checks::bytes::{difference, show};
use seesaw_checks::echo_cases::{self, Gentle, Refusal, SERVER_HANGS, Started};
use seesaw_checks::fixtures::{self, AsyncInput, Found, ReadChecks, cases, xs};
use seesaw_checks::localhost;
use seesaw_checks::on_tokio;
use seesaw_checks::peer::{End, Peer, connected_pair};
use seesaw_checks::process::expect_room_for_files;
use seesaw_checks::program;
use seesaw_checks::program::expect_address_in_use_explained;
use seesaw_checks::report::Step;
use seesaw_checks::serving::{self, RunningServer};
use seesaw_checks::watched::WatchedServer;

const CHAPTER: &str = "09-async";

/// How long the check waits for a reply that your server sends at once:
/// loopback answers in microseconds, so this is only ever reached by a
/// server that is stuck (or a machine that is very busy).
const QUICK: Duration = Duration::from_millis(600);

const BLOCKED: &str = "your code blocked the runtime's only thread, so no other task could \
     run: an async function must never wait with std (std::thread::sleep, a std read or \
     write, a std Mutex held across a wait). Await tokio's versions: the runtime runs the \
     other clients meanwhile.";

const ONE_AT_A_TIME: &str = "the server still talks to another client and has not served \
     this one. Give each connection a task of its own (tokio::spawn) and do not await it: go \
     straight back to accepting. And never block the runtime's thread with a std wait.";

const GO_ON_ACCEPTING: &str = "keep accepting in a loop for ever: the server must not stop \
     when its clients have gone.";

const RETURNED: &str = "serve must loop for ever: a server never returns, not when its \
     clients have gone, and not when one client or one accept fails.";

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

/// Your async read_message, as the checks await it: on bytes in memory.
fn awaited_read_message(step: &Step) -> ReadChecks<impl fixtures::ReadFunction> {
    ReadChecks::new(step, MAX_MESSAGE, fixtures::awaited(read_found))
}

/// What your read_message found.
async fn read_found(input: &mut AsyncInput) -> anyhow::Result<Found> {
    read_message(input).await.map(found)
}

/// Your Message, in the support crate's words (the same).
fn found(message: Message) -> Found {
    match message {
        Message::End => Found::End,
        Message::TooLong => Found::TooLong,
        Message::Line(bytes) => Found::Line(bytes),
        Message::Tail(bytes) => Found::Tail(bytes),
    }
}

fn step_01_read_message_finds_whole_messages() {
    let step = Step::new(
        "step 1: read_message, awaited, returns each message, newline included, bytes exact, then End",
        CHAPTER,
    );
    let read_message = awaited_read_message(&step);
    read_message.expect_cases(&cases::whole_messages());
}

fn step_02_read_message_finds_a_tail_without_newline() {
    let step = Step::new(
        "step 2: read_message, awaited, returns the last bytes without a newline as a Tail, then End",
        CHAPTER,
    );
    let read_message = awaited_read_message(&step);
    read_message.expect_cases(&cases::tails());
}

fn step_03_read_message_keeps_the_limit_per_message() {
    let step = Step::new(
        "step 3: read_message, awaited, accepts messages up to MAX_MESSAGE bytes, each, and no more",
        CHAPTER,
    );
    let read_message = awaited_read_message(&step);
    read_message.expect_cases(&cases::limit(MAX_MESSAGE));
}

fn step_04_read_message_never_reads_past_the_limit() {
    let step = Step::new(
        "step 4: read_message, awaited, stops reading at MAX_MESSAGE bytes: it never reads the rest first",
        CHAPTER,
    );
    // 16 MiB without a newline, counting what your code takes; half of the
    // reads say "not yet" first, as a socket would.
    let read_message = awaited_read_message(&step);
    read_message.expect_stops_at_limit(16 * 1024 * 1024);
}

// ---------------------------------------------------------------------------
// serve_connection (steps 5 to 13): the check plays the client.
// ---------------------------------------------------------------------------

/// Runs your serve_connection with `limits` on the server end of a fresh
/// connection, on a runtime of its own.
fn start_server(step: &Step, limits: Limits) -> Started {
    let (client, connection) = connected_pair(step);
    (
        client.patience(QUICK),
        start_serving(step, connection, limits),
    )
}

/// Runs your serve_connection with `limits` on `connection`.
fn start_serving(
    step: &Step,
    connection: TcpStream,
    limits: Limits,
) -> Running<anyhow::Result<()>> {
    // A second handle keeps the socket open until a panic has been recorded.
    let keep = connection
        .try_clone()
        .expect("the check could not clone its socket");
    let call = format!(
        "serve_connection(stream, limits: {})",
        describe_limits(&limits)
    );
    bounded::start_with(step, &call, keep, move |_| {
        on_tokio::block_on(
            async move { serve_connection(on_tokio::stream(connection)?, limits).await },
        )
    })
}

fn step_05_the_server_echoes_many_messages_in_order() {
    let step = Step::new(
        "step 5: serve_connection, a task, echoes every message, bytes exact, in order, on one connection",
        CHAPTER,
    );
    echo_cases::many_messages_in_order(&step, || start_server(&step, patient()));
}

fn step_06_the_server_echoes_a_message_in_pieces() {
    let step = Step::new(
        "step 6: serve_connection, a task, reads a whole message even when it comes in pieces",
        CHAPTER,
    );
    echo_cases::message_in_pieces(&step, || start_server(&step, patient()));
}

fn step_07_the_server_echoes_the_tail_then_closes() {
    let step = Step::new(
        "step 7: after the client's half-close, serve_connection, a task, echoes the last bytes, then closes",
        CHAPTER,
    );
    echo_cases::tail_then_end(&step, || start_server(&step, patient()));
}

/// A lesson 9 server ends a connection gently with say_goodbye (given).
const GENTLE: Gentle = Gentle {
    linger_hint: "the connection was reset: your server closed it while the client's bytes \
         were still unread, and a reset can destroy the error line before the client reads \
         it. After the error line, end the connection with say_goodbye (given), which closes \
         gently, not by returning at once.",
    stopped_hint: "your server stopped reading, and did not close either: after the error \
         line, say_goodbye (given) reads and throws away what the client still sends, then \
         closes.",
};

const REFUSAL: Refusal = Refusal {
    reply: TOO_LONG_REPLY,
    if_echoed: "your server echoed the message: it must not, it is over the \
     limit. On Message::TooLong, write TOO_LONG_REPLY instead (say_goodbye does).",
    hint: "on Message::TooLong, end the connection with TOO_LONG_REPLY \
     (say_goodbye). Never wait for a newline beyond the limit.",
    then_nothing: "after the error line, end the connection: write nothing more, and return.",
};

fn step_08_the_server_answers_a_message_too_long() {
    let step = Step::new(
        "step 8: a message over MAX_MESSAGE gets one error line, then the connection ends",
        CHAPTER,
    );
    // One byte over the limit, no newline.
    let (mut client, running) = start_server(&step, patient());
    echo_cases::expect_refusal(&mut client, &step, xs(MAX_MESSAGE + 1, b""), &REFUSAL);
    running.finish_ok(&step, SERVER_HANGS);

    // Exactly at the limit, then one byte over, that byte being the newline.
    let (mut client, running) = start_server(&step, patient());
    client.expect_echo(&xs(MAX_MESSAGE - 1, b"\n"), SERVER_HANGS);
    echo_cases::expect_refusal(&mut client, &step, xs(MAX_MESSAGE, b"\n"), &REFUSAL);
    running.finish_ok(&step, SERVER_HANGS);
}

fn step_09_the_error_line_survives_a_flood() {
    let step = Step::new(
        "step 9: a client still sending 1 MiB gets the error line and a clean end of file, no reset",
        CHAPTER,
    );
    let started = start_server(&step, patient());
    echo_cases::error_line_survives_a_flood(&step, started, TOO_LONG_REPLY, &GENTLE);
}

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
    expect_echo_beside_others(&step, &mut busy, b"anybody there?\n");
    expect_echo_beside_others(&step, &mut idle, b"my turn now\n");
    expect_echo_beside_others(&step, &mut busy, b"and again\n");
    for client in [&mut busy, &mut idle] {
        client.close_sending();
        client.expect_end("at end of file, return.");
    }
    expect_results_ok(&step, running);
}

/// Sends `message` from `client` and fails unless the same bytes come back.
/// Silence, while the runtime's thread serves another connection too, means
/// that thread is blocked: that is the hint, not a generic one.
fn expect_echo_beside_others(step: &Step, client: &mut Peer, message: &[u8]) {
    client.send(message);
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
    match reply.end == End::TimedOut && reply.bytes.is_empty() {
        true => report.got(&reply.describe()).observed(BLOCKED).fail(),
        false => report.got_received(message, &reply).hint(BLOCKED).fail(),
    }
}

/// Several serve_connection at once, as tasks on ONE runtime thread, one
/// per entry of `limits`: the check's clients, and what each returned.
fn start_servers(step: &Step, limits: &[Limits]) -> (Vec<Peer>, Running<Vec<anyhow::Result<()>>>) {
    let (clients, connections): (Vec<Peer>, Vec<TcpStream>) = limits
        .iter()
        .map(|_| {
            let (client, connection) = connected_pair(step);
            (client.patience(QUICK), connection)
        })
        .unzip();
    let call = format!(
        "serve_connection for {} clients at once, each in a task, on one runtime thread",
        connections.len()
    );
    let limits = limits.to_vec();
    let running = on_tokio::start_tasks(step, &call, connections, move |connection, index| {
        let limits = limits[index];
        async move { serve_connection(on_tokio::stream(connection)?, limits).await }
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
    let reply = client.read_line_for(at_least + SOON);
    if reply.end == End::TimedOut {
        step.note_waited_out();
    }
    let took = since.elapsed();
    if reply.bytes != line || reply.end != End::Newline {
        let report = step
            .report()
            .expected(&format!(
                "{} and then the end of the connection",
                show(line)
            ))
            .got_received(line, &reply);
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
    echo_cases::expect_nothing_more(client, step, REFUSAL.then_nothing);
}

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
    chatty.expect_end("at end of file, return.");
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
            .got_received(message, &reply);
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
            .got_received(expected, &reply);
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
    pausing.expect_end("at end of file, return.");
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
        let result = on_tokio::block_on(async move {
            serve_connection(on_tokio::stream(connection)?, limits).await
        });
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

// ---------------------------------------------------------------------------
// serve (steps 14 to 18): the check plays many clients at once.
// ---------------------------------------------------------------------------

/// Starts your serve on a listener of the check's own, on 127.0.0.1 and a
/// port the OS picks, on a runtime of its own on a thread of its own.
fn start_serve(step: &Step, limits: Limits) -> (SocketAddr, RunningServer) {
    let call = format!("serve(listener, limits: {})", describe_limits(&limits));
    let server = serving::start(step, &call, move |listener| {
        on_tokio::block_on(async move { serve(on_tokio::listener(listener)?, limits).await })
    })
    .if_it_returns(RETURNED);
    (server.addr(), server)
}

/// A client of the check's, connected to `addr`.
fn connect(step: &Step, addr: SocketAddr) -> Peer {
    Peer::connect(step, addr).patience(QUICK)
}

/// Connects `count` clients, after making sure this process may open the
/// sockets that takes.
fn connect_many(step: &Step, addr: SocketAddr, count: usize) -> Vec<Peer> {
    // In-process, each connection costs two files: the check's socket and
    // your server's.
    expect_room_for_files(step, 2 * count + 32);
    (0..count).map(|_| connect(step, addr)).collect()
}

fn step_14_one_client_is_served() {
    let step = Step::new(
        "step 14: serve echoes a client's messages, bytes exact, and goes on serving",
        CHAPTER,
    );
    let (addr, server) = start_serve(&step, patient());
    let mut client = connect(&step, addr);
    let hint = "accept the client and hand it to serve_client_async(stream, peer, limits) \
                in a task of its own (tokio::spawn).";
    for message in [b"hello\n".as_slice(), b" \tbytes \xff\x00 as they are\r\n"] {
        server.expect_echo(&step, &mut client, message, hint);
    }
    client.send(b"a tail without newline");
    client.close_sending();
    let rest = client.read_to_end();
    if rest.bytes != b"a tail without newline" || rest.end != End::Closed {
        step.report()
            .did("the check sent a tail without newline and closed its sending side")
            .expected("b\"a tail without newline\" back, then end of file")
            .got_received(b"a tail without newline", &rest)
            .hint(hint)
            .fail();
    }
    // Its only client has gone: the server goes on, and serves the next one.
    server.expect_still_serving(&step, Duration::ZERO, RETURNED);
    let late = &mut connect(&step, addr);
    server.expect_echo(&step, late, b"am I too late?\n", GO_ON_ACCEPTING);
}

fn step_15_an_idle_client_does_not_block_another() {
    let step = Step::new(
        "step 15: while one client stays idle, another is served",
        CHAPTER,
    );
    let (addr, server) = start_serve(&step, patient());
    let mut idle = connect(&step, addr);
    let mut busy = connect(&step, addr);
    // The one that came last is served first; then the idle one, which waited.
    let turns = [
        (&mut busy, b"is anybody there?\n".as_slice()),
        (&mut idle, b"my turn now\n"),
    ];
    for (client, message) in turns {
        server.expect_echo(&step, client, message, ONE_AT_A_TIME);
    }
}

fn step_16_clients_are_served_in_reverse_order() {
    let step = Step::new(
        "step 16: five clients connect, then each is served, the last first",
        CHAPTER,
    );
    let (addr, server) = start_serve(&step, patient());
    let mut clients = connect_many(&step, addr, 5);
    for (number, client) in clients.iter_mut().enumerate().rev() {
        let message = format!("client {number}\n").into_bytes();
        server.expect_echo(&step, client, &message, ONE_AT_A_TIME);
    }
}

fn step_17_a_vanished_client_does_not_stop_the_server() {
    let step = Step::new(
        "step 17: a client that vanishes mid-message (a reset) does not stop the server",
        CHAPTER,
    );
    let (addr, server) = start_serve(&step, patient());
    let hint = "a connection's error belongs to that connection: its task reports it \
                (serve_client_async does) and ends; the server goes on accepting. Never \
                end the server with ? on one client's error.";
    let mut bystander = connect(&step, addr);
    server.expect_echo(&step, &mut bystander, b"I was here first\n", ONE_AT_A_TIME);
    let mut doomed = connect(&step, addr);
    doomed.send(b"hello\n");
    doomed.send(b"half a mess");
    doomed.reset();
    let mut next = connect(&step, addr);
    server.expect_echo(&step, &mut next, b"still serving?\n", hint);
    server.expect_echo(&step, &mut bystander, b"and still here\n", hint);
    server.expect_still_serving(&step, Duration::ZERO, RETURNED);
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
        clients.extend((0..batch).map(|_| connect(step, addr)));
        // The last of the batch takes a turn: once it is served, your server
        // has accepted the whole batch (accept takes them in order).
        let number = clients.len() - 1;
        let message = format!("client {number:04}\n");
        server.expect_echo(
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
        server.expect_reply(step, client, message.as_bytes(), ONE_AT_A_TIME);
    }
    server.expect_still_serving(step, Duration::ZERO, RETURNED);
}

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

const SAYS_ACCEPTED: &str = "for each client it accepts, serve says `accepted PEER` on \
     stderr (narrate), PEER written as Rust writes a SocketAddr ({peer}): IPv6 in brackets, \
     like [::1]:50000.";

fn step_19_the_server_program_serves_clients_at_once() {
    let step = Step::new(
        "step 19: `server [::1]:0 --idle 100` serves two clients at once, narrates, and says goodbye to a silent one",
        CHAPTER,
    );
    let args = ["server", localhost::ipv6_if_any(), "--idle", "100"];
    let (mut server, addr) = WatchedServer::start_listening(&step, program!(), &args);
    let mut idle = server.connect(&step, addr);
    let mut busy = server.connect(&step, addr);
    server.expect_echo(&step, &mut busy, b"second client first\n", ONE_AT_A_TIME);
    let last = b"first client last\n";
    server.expect_echo(&step, &mut idle, last, ONE_AT_A_TIME);
    for client in [&idle, &busy] {
        let accepted = format!("accepted {}", client.local_addr());
        server.expect_said(&step, &accepted, SAYS_ACCEPTED);
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
    let mut silent = server.connect(&step, addr);
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

fn step_20_the_server_program_backs_off_when_accept_fails() {
    let step = Step::new(
        "step 20: `server` out of files reports the failed accept, backs off, and serves again",
        CHAPTER,
    );
    #[cfg(not(unix))]
    step.skip("needs a shell's ulimit (unix only)");
    #[cfg(unix)]
    seesaw_checks::accept_backoff::expect_backs_off_when_accept_fails(
        &step,
        program!(),
        &["server", "127.0.0.1:0"],
        "Something blocks the runtime's one thread while the server waits, most likely \
         the wait itself: std::thread::sleep in async code blocks the runtime, and every \
         task with it. Wait with tokio::time::sleep(delay).await: the runtime serves the \
         others meanwhile.",
    );
}

fn step_21_the_server_program_explains_an_address_in_use() {
    let step = Step::new(
        "step 21: `server` explains an address in use in one line, exit code 1",
        CHAPTER,
    );
    expect_address_in_use_explained(&step, program!(), &["server"]);
}

/// Step 22: how many clients the lesson's program serves at once.
const THOUSAND: usize = 1000;

fn step_22_the_server_program_serves_a_thousand_clients_at_once() {
    let step = Step::new(
        "step 22: `server` serves a thousand clients connected at the same time",
        CHAPTER,
    );
    // Each connection is a file in the check's process and one in the
    // server's: both may open as many as this process may (it is inherited).
    expect_room_for_files(&step, THOUSAND + 64);
    let (mut server, addr) =
        WatchedServer::start_listening(&step, program!(), &["server", "127.0.0.1:0"]);
    let mut clients: Vec<Peer> = Vec::with_capacity(THOUSAND);
    while clients.len() < THOUSAND {
        let batch = BATCH.min(THOUSAND - clients.len());
        server.expect_running(&step);
        clients.extend((0..batch).map(|_| Peer::connect(&step, addr)));
        // The last of the batch takes a turn: once it is served, your server
        // has accepted the whole batch (accept takes them in order).
        let number = clients.len() - 1;
        let message = format!("client {number:04}\n");
        expect_served_in_crowd(&step, &mut server, &mut clients[number], message.as_bytes());
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
                .got_received(message.as_bytes(), &reply)
                .hint(ONE_AT_A_TIME);
            server.fail(report);
        }
    }
}

/// Step 22: a client of the crowd takes its turn. One that your server said
/// it accepted, then closed unanswered, was turned away: that is the report.
fn expect_served_in_crowd(
    step: &Step,
    server: &mut WatchedServer,
    client: &mut Peer,
    message: &[u8],
) {
    client.send(message);
    let reply = client.read_line();
    if reply.bytes == message && reply.end == End::Newline {
        return;
    }
    let closed = reply.bytes.is_empty() && matches!(reply.end, End::Closed | End::Failed(_));
    // The program may be ending: let its last words in first.
    let ended = closed && server.exit_within(Duration::from_millis(200)).is_some();
    let accepted = format!("accepted {}", client.local_addr());
    let turned_away = closed && !ended && server.printed(|line| line == accepted).is_some();
    let report = server
        .report(step)
        .did(&format!(
            "client {} sent {}",
            client.local_addr(),
            show(message)
        ))
        .expected(&format!("{} back", show(message)));
    let report = if ended {
        report.got(&reply.describe()).observed(
            "the program ended (its last lines are above): nothing but the end of the \
             program may end the accepting loop.",
        )
    } else if turned_away {
        report.got(&reply.describe()).observed(
            "your server said it accepted this client, then closed its connection without \
             answering it (unread bytes make the close a reset), and it goes on running: it \
             turned the client away. Serve every client, however many are connected at once: \
             each accepted client gets its task, and its connection ends only with its \
             conversation.",
        )
    } else if reply.end == End::TimedOut && reply.bytes.is_empty() {
        report.got(&reply.describe()).observed(ONE_AT_A_TIME)
    } else {
        report.got_received(message, &reply).hint(ONE_AT_A_TIME)
    };
    server.fail(report)
}

fn step_23_the_client_program_talks_to_your_server_program() {
    let step = Step::new(
        "step 23: the lesson's clients talk to your server, two at once, while a third stays idle",
        CHAPTER,
    );
    let (mut server, addr) =
        WatchedServer::start_listening(&step, program!(), &["server", "127.0.0.1:0"]);
    let _idle = server.connect(&step, addr);
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

seesaw_checks::checks![
    step_01_read_message_finds_whole_messages,
    step_02_read_message_finds_a_tail_without_newline,
    step_03_read_message_keeps_the_limit_per_message,
    step_04_read_message_never_reads_past_the_limit,
    step_05_the_server_echoes_many_messages_in_order,
    step_06_the_server_echoes_a_message_in_pieces,
    step_07_the_server_echoes_the_tail_then_closes,
    step_08_the_server_answers_a_message_too_long,
    step_09_the_error_line_survives_a_flood,
    step_10_two_connections_share_one_thread,
    step_11_the_server_says_goodbye_to_an_idle_client,
    step_12_the_server_says_goodbye_to_a_slow_message,
    step_13_the_server_gives_up_on_a_client_that_does_not_read,
    step_14_one_client_is_served,
    step_15_an_idle_client_does_not_block_another,
    step_16_clients_are_served_in_reverse_order,
    step_17_a_vanished_client_does_not_stop_the_server,
    step_18_a_hundred_clients_at_once,
    step_19_the_server_program_serves_clients_at_once,
    step_20_the_server_program_backs_off_when_accept_fails,
    step_21_the_server_program_explains_an_address_in_use,
    step_22_the_server_program_serves_a_thousand_clients_at_once,
    step_23_the_client_program_talks_to_your_server_program,
];
