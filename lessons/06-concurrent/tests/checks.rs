//! The checks of lesson 6, in the order you meet them: the first failure is
//! your next step. Run them with `cargo test -p lesson-06-concurrent`.
//!
//! The check plays many clients at once against your serve_concurrently. The
//! OS completes a client's connection before your server accepts it (the
//! listen backlog), so a connection alone proves nothing: each check waits for
//! the echo, with a deadline. An idle client stays connected while another is
//! served, clients are served in reverse order, and a new client is served
//! after all others have gone: a server that serves one client at a time
//! cannot pass.
//!
//! Steps 1-9 run your serve_concurrently in this process, on a listener of
//! the check's. Steps 10-13 run the lesson's program, whose stderr the check
//! reads (`seesaw_checks::watched`). Step 14 has your own clients talk to
//! your own server, through a relay that records every byte (`Relay`).

use std::cell::RefCell;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use lesson_06_concurrent::{Client, MAX_MESSAGE, TOO_LONG_REPLY, serve_concurrently};
use seesaw_checks::DEADLINE;
use seesaw_checks::bytes::{show, show_list};
use seesaw_checks::peer::{End, Peer};
use seesaw_checks::program;
use seesaw_checks::program::expect_address_in_use_explained;
use seesaw_checks::report::{Panic, Step, hint_for_received};
use seesaw_checks::watched::{SAID_BY_NOW, WatchedServer};

const CHAPTER: &str = "06-concurrent";

const ONE_AT_A_TIME: &str = "the server still talks to another client and has not \
     served this one. Give each connection a thread of its own, and do not wait for \
     (join) that thread: go straight back to accepting.";

const RETURNED: &str = "serve_concurrently must loop for ever: a server never returns, \
     not when its clients have gone, and not when one client or one accept fails.";

/// Runs the student's `code` on a thread of its own and brings back what it
/// returns. A panic is recorded in the step, so that the step's report shows
/// it as the cause. Unlike `bounded::start`, a failing check does not wait
/// for this thread before it reports: a server runs for ever.
fn start_student_code<T: Send + 'static>(
    step: &Step,
    call: &str,
    code: impl FnOnce() -> T + Send + 'static,
) -> mpsc::Receiver<T> {
    let (sender, outcome) = mpsc::channel();
    let step = step.clone();
    let call = call.to_string();
    thread::spawn(move || match catch_unwind(AssertUnwindSafe(code)) {
        Ok(value) => {
            let _ = sender.send(value);
        }
        Err(panic) => {
            let message = match (panic.downcast_ref::<&str>(), panic.downcast_ref::<String>()) {
                (Some(text), _) => text.to_string(),
                (_, Some(text)) => text.clone(),
                _ => "(a panic without a message)".to_string(),
            };
            step.code_started();
            step.code_finished(Some(Panic {
                call,
                message,
                backtrace: None,
            }));
            // Only now is `sender` dropped: whoever sees the channel close
            // finds the panic recorded.
            drop(sender);
        }
    });
    outcome
}

/// The student's serve_concurrently, running on a thread of its own.
struct RunningServer {
    /// Brings back what it returned, if it returns (it should not).
    returned: mpsc::Receiver<String>,
    /// How it ended, once seen.
    ended: RefCell<Option<Ended>>,
}

/// How serve_concurrently ended (it should not).
#[derive(Clone)]
enum Ended {
    /// It returned this (shown as text).
    Returned(String),
    /// It panicked: the step has recorded the panic.
    Panicked,
}

impl RunningServer {
    /// How it ended, if it ends within `wait`.
    fn ended_within(&self, wait: Duration) -> Option<Ended> {
        if self.ended.borrow().is_none() {
            let ended = match self.returned.recv_timeout(wait) {
                Ok(returned) => Some(Ended::Returned(returned)),
                Err(mpsc::RecvTimeoutError::Disconnected) => Some(Ended::Panicked),
                Err(mpsc::RecvTimeoutError::Timeout) => None,
            };
            *self.ended.borrow_mut() = ended;
        }
        self.ended.borrow().clone()
    }
}

/// Starts the student's serve_concurrently on a listener of the check's own,
/// on 127.0.0.1 and a port the OS picks.
fn start_server(step: &Step) -> (SocketAddr, RunningServer) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("the check could not listen");
    start_server_on(step, listener)
}

/// Starts the student's serve_concurrently on `listener`. It runs for ever,
/// as a server should; the check never waits for it to end.
fn start_server_on(step: &Step, listener: TcpListener) -> (SocketAddr, RunningServer) {
    let addr = listener
        .local_addr()
        .expect("a bound listener has an address");
    let returned =
        start_student_code(
            step,
            "serve_concurrently(listener)",
            move || match serve_concurrently(listener) {
                Ok(()) => "Ok(())".to_string(),
                Err(error) => format!("Err: {error:#}"),
            },
        );
    let ended = RefCell::new(None);
    (addr, RunningServer { returned, ended })
}

/// Sends `message` and fails unless the same bytes come back.
fn expect_echo(step: &Step, server: &RunningServer, client: &mut Peer, message: &[u8], hint: &str) {
    client.send(message);
    expect_reply(step, server, client, message, hint);
}

/// How long a failing check gives your server to finish ending, when the
/// connection was closed or reset: it may be panicking, and the panic is
/// the cause to show.
const SETTLE: Duration = Duration::from_millis(200);

/// Fails unless the next line the client reads is exactly `message`.
fn expect_reply(
    step: &Step,
    server: &RunningServer,
    client: &mut Peer,
    message: &[u8],
    hint: &str,
) {
    let reply = client.read_line();
    if reply.bytes == message && reply.end == End::Newline {
        return;
    }
    let mut report = step.report();
    if matches!(reply.end, End::Closed | End::Failed(_)) {
        if let Some(Ended::Returned(returned)) = server.ended_within(SETTLE) {
            report = report
                .did(&format!("serve_concurrently had returned {returned}"))
                .observed(RETURNED);
        }
    }
    let report = report
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
    if server.ended_within(Duration::ZERO).is_some() {
        // It ended: that, or its panic, is the cause, not the bytes.
        report.got(&reply.describe()).fail();
    }
    report.got_received(message, &reply).hint(hint).fail();
}

/// Fails if serve_concurrently has returned: a server runs for ever.
fn expect_still_serving(step: &Step, server: &RunningServer, wait: Duration, hint: &str) {
    match server.ended_within(wait) {
        None => {}
        Some(Ended::Returned(returned)) => step
            .report()
            .expected("serve_concurrently(listener) to go on serving, for ever")
            .got(&format!("it returned {returned}"))
            .observed(hint)
            .fail(),
        // The report shows the panic as the cause.
        Some(Ended::Panicked) => step
            .report()
            .expected("serve_concurrently(listener) to go on serving, for ever")
            .got("it panicked")
            .fail(),
    }
}

/// Connects `count` clients, after making sure this process may open the
/// sockets that takes.
fn connect_many(step: &Step, addr: SocketAddr, count: usize) -> Vec<Peer> {
    // In-process, each connection costs three files: the check's socket, and
    // your server's socket and its clone.
    expect_room_for_files(step, 3 * count + 16);
    (0..count).map(|_| Peer::connect(step, addr)).collect()
}

/// Fails with advice if this process cannot open `count` more files. Each
/// connection is a file (a file descriptor), and a shell's limit on open
/// files (`ulimit -n`) may be lower than a check with many clients needs.
fn expect_room_for_files(step: &Step, count: usize) {
    let Ok(me) = std::env::current_exe() else {
        return;
    };
    let mut open = Vec::with_capacity(count);
    for _ in 0..count {
        match std::fs::File::open(&me) {
            Ok(file) => open.push(file),
            Err(error) if is_too_many_open_files(&error) => step
                .report()
                .did(&format!(
                    "the check made sure it can open the {count} files (sockets) this step needs"
                ))
                .got(&format!(
                    "after {} files: {error}: the limit on open files is too low",
                    open.len()
                ))
                .observed(
                    "this is the check's own limit, not your code: each connection is an open \
                     file, and your shell allows too few. Raise the limit in this shell with \
                     `ulimit -n 1024`, then run the checks again.",
                )
                .fail(),
            Err(_) => return,
        }
    }
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
fn step_01_one_client_is_served() {
    let step = Step::new(
        "step 1: serve_concurrently echoes a client's messages, bytes exact, and waits without spinning",
        CHAPTER,
    );
    let (addr, server) = start_server(&step);
    let mut client = Peer::connect(&step, addr);
    let hint = "accept the client and hand it to serve_client(connection, peer), which \
                runs lesson 5's seesaw.";
    expect_echo(&step, &server, &mut client, b"hello\n", hint);
    expect_echo(
        &step,
        &server,
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
            .got_received(b"a tail without newline", &rest)
            .hint(hint)
            .fail();
    }
    expect_still_serving(&step, &server, Duration::ZERO, RETURNED);
    #[cfg(target_os = "linux")]
    expect_no_spinning(&step);
}

#[test]
fn step_02_an_idle_client_does_not_block_another() {
    let step = Step::new(
        "step 2: while one client stays idle, another is served",
        CHAPTER,
    );
    let (addr, server) = start_server(&step);
    let mut idle = Peer::connect(&step, addr);
    let mut busy = Peer::connect(&step, addr);
    expect_echo(
        &step,
        &server,
        &mut busy,
        b"is anybody there?\n",
        ONE_AT_A_TIME,
    );
    expect_echo(&step, &server, &mut idle, b"my turn now\n", ONE_AT_A_TIME);
}

#[test]
fn step_03_clients_are_served_in_reverse_order() {
    let step = Step::new(
        "step 3: five clients connect, then each is served, the last first",
        CHAPTER,
    );
    let (addr, server) = start_server(&step);
    let mut clients = connect_many(&step, addr, 5);
    for (number, client) in clients.iter_mut().enumerate().rev() {
        let message = format!("client {number}\n");
        expect_echo(&step, &server, client, message.as_bytes(), ONE_AT_A_TIME);
    }
}

#[test]
fn step_04_messages_of_ten_clients_interleave() {
    let step = Step::new(
        "step 4: ten clients take turns, message after message, all at once",
        CHAPTER,
    );
    let (addr, server) = start_server(&step);
    let mut clients = connect_many(&step, addr, 10);
    for round in 0..3 {
        for (number, client) in clients.iter_mut().enumerate() {
            client.send(format!("round {round} from client {number}\n").as_bytes());
        }
        for (number, client) in clients.iter_mut().enumerate() {
            let message = format!("round {round} from client {number}\n");
            expect_reply(&step, &server, client, message.as_bytes(), ONE_AT_A_TIME);
        }
    }
}

#[test]
fn step_05_a_vanished_client_does_not_stop_the_server() {
    let step = Step::new(
        "step 5: a client that vanishes mid-message (a reset) does not stop the server",
        CHAPTER,
    );
    let (addr, server) = start_server(&step);
    let hint = "a connection's error belongs to that connection: report it (serve_client \
                does) and go on accepting. Never end the server with ? on one client's error.";
    let mut bystander = Peer::connect(&step, addr);
    expect_echo(
        &step,
        &server,
        &mut bystander,
        b"I was here first\n",
        ONE_AT_A_TIME,
    );
    let mut doomed = Peer::connect(&step, addr);
    doomed.send(b"hello\n");
    doomed.send(b"half a mess");
    doomed.reset();
    let mut next = Peer::connect(&step, addr);
    expect_echo(&step, &server, &mut next, b"still serving?\n", hint);
    expect_echo(&step, &server, &mut bystander, b"and still here\n", hint);
    // A server that brings a thread's error back to its loop sees it only
    // at its next turn: a second new client gives it that turn.
    let mut later = Peer::connect(&step, addr);
    expect_echo(&step, &server, &mut later, b"and me?\n", hint);
    expect_still_serving(&step, &server, Duration::ZERO, hint);
}

#[test]
fn step_06_a_message_too_long_ends_only_that_connection() {
    let step = Step::new(
        "step 6: a client whose message is too long gets the error line; the others are still served",
        CHAPTER,
    );
    let (addr, server) = start_server(&step);
    let mut bystander = Peer::connect(&step, addr);
    expect_echo(
        &step,
        &server,
        &mut bystander,
        b"I was here first\n",
        ONE_AT_A_TIME,
    );
    let mut flooder = Peer::connect(&step, addr);
    // One byte over the limit, and no newline: the server must not wait for one.
    flooder.send_in_background(vec![b'x'; MAX_MESSAGE + 1]);
    let reply = flooder.read_line();
    if reply.bytes != TOO_LONG_REPLY {
        step.report()
            .did(&format!(
                "a client sent {MAX_MESSAGE} + 1 bytes without a newline"
            ))
            .expected(&format!("{} back", show(TOO_LONG_REPLY)))
            .got_received(TOO_LONG_REPLY, &reply)
            .hint(
                "serve_client (given) answers a message that is too long: give it the connection.",
            )
            .fail();
    }
    let hint = "one client's message that is too long ends that client's connection only: \
                the server goes on serving everyone else.";
    expect_echo(&step, &server, &mut bystander, b"still served?\n", hint);
    let mut next = Peer::connect(&step, addr);
    expect_echo(&step, &server, &mut next, b"and me?\n", hint);
    expect_still_serving(&step, &server, Duration::ZERO, RETURNED);
}

#[test]
fn step_07_a_failed_accept_does_not_stop_the_server() {
    let step = Step::new(
        "step 7: when accept fails, serve_concurrently reports it and goes on accepting",
        CHAPTER,
    );
    // The check makes accept fail on demand: its own handle on the very same
    // listening socket switches it to non-blocking, so an accept with no
    // client waiting fails at once ("would block"), as a real accept fails
    // when the server runs out of files. Then the check switches it back.
    let listener = TcpListener::bind("127.0.0.1:0").expect("the check could not listen");
    let switch = listener
        .try_clone()
        .expect("the check could not clone its listener");
    switch
        .set_nonblocking(true)
        .expect("the check could not make its listener non-blocking");
    let (addr, server) = start_server_on(&step, listener);
    step.transcript()
        .add("check   made accept fail for 60 ms (WouldBlock)".to_string());
    expect_still_serving(
        &step,
        &server,
        Duration::from_millis(60),
        "a failed accept is not the end of the server: report it on stderr, wait a \
         little (the backoff), and accept again. Do not return it with ?, do not break \
         out of the loop.",
    );
    switch
        .set_nonblocking(false)
        .expect("the check could not make its listener blocking again");
    step.transcript()
        .add("check   made accept work again".to_string());
    let mut client = Peer::connect(&step, addr);
    expect_echo(
        &step,
        &server,
        &mut client,
        b"did accept recover?\n",
        "after a failed accept, the loop must go on accepting: the next accept works.",
    );
    expect_still_serving(&step, &server, Duration::ZERO, RETURNED);
}

#[test]
fn step_08_a_new_client_is_served_after_all_have_gone() {
    let step = Step::new(
        "step 8: after every client has gone, a new client is still served",
        CHAPTER,
    );
    let (addr, server) = start_server(&step);
    for _ in 0..3 {
        let mut client = Peer::connect(&step, addr);
        expect_echo(&step, &server, &mut client, b"hi\n", ONE_AT_A_TIME);
        client.close_sending();
        client.read_to_end();
    }
    let mut late = Peer::connect(&step, addr);
    expect_echo(
        &step,
        &server,
        &mut late,
        b"am I too late?\n",
        "keep accepting in a loop for ever: the server must not stop when its clients have gone.",
    );
    expect_still_serving(&step, &server, Duration::ZERO, RETURNED);
}

#[test]
fn step_09_fifty_clients_at_once() {
    let step = Step::new(
        "step 9: fifty clients connected at the same time are all served",
        CHAPTER,
    );
    let (addr, server) = start_server(&step);
    let mut clients = connect_many(&step, addr, 50);
    for (number, client) in clients.iter_mut().enumerate() {
        client.send(format!("client {number}\n").as_bytes());
    }
    for (number, client) in clients.iter_mut().enumerate().rev() {
        let message = format!("client {number}\n");
        expect_reply(&step, &server, client, message.as_bytes(), ONE_AT_A_TIME);
    }
}

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
    let mut observed = match reply.end {
        End::TimedOut if reply.bytes.is_empty() => Some(hint.to_string()),
        _ => hint_for_received(message, &reply),
    };
    if matches!(reply.end, End::Closed | End::Failed(_)) {
        // The program may be ending: let its last words into the report.
        let since = server.started();
        server.wait_for(SETTLE, since, |line| line.starts_with("error:"));
        if server.has_exited() {
            observed = Some(
                "the program ended (its last lines are above): something stopped the \
                 whole server. Nothing but the end of the program may end the accepting \
                 loop: not a failed accept, not one client's error."
                    .to_string(),
            );
        }
    }
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

#[test]
fn step_10_the_server_program_serves_clients_at_once() {
    let step = Step::new(
        "step 10: `server` on [::1] serves two clients at once, says whom it accepted and what it echoed",
        CHAPTER,
    );
    let mut server = WatchedServer::start(program!(), &["server", loopback_v6_if_any()]);
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
            "for each client it accepts, the server says `accepted` and the client's \
             address on stderr, written as Rust writes a SocketAddr ({peer}): IPv6 in \
             brackets, like [::1]:50000.",
        );
    }
    // The narration of an echo comes from lesson 5's serve_connection.
    server.expect_said(
        &step,
        &format!(
            "read {n} bytes from {}, wrote {n} bytes back",
            idle.local_addr(),
            n = last.len()
        ),
        "each client's thread runs serve_client, whose serve_connection narrates each echo.",
    );
}

/// Fails if serve_concurrently keeps a processor busy while its client says
/// nothing: an accept loop that spins (a non-blocking listener tried again and
/// again) works, but burns a whole core for nothing. Step 1 runs first in the
/// checks' process, so the process's own processor time is the server's.
#[cfg(target_os = "linux")]
fn expect_no_spinning(step: &Step) {
    const WATCH: Duration = Duration::from_millis(250);
    let Some(before) = process_cpu_ticks() else {
        return; // no /proc here: nothing to measure
    };
    // Watching for a while: a measurement, not a wait for an event.
    thread::sleep(WATCH);
    let Some(after) = process_cpu_ticks() else {
        return;
    };
    let busy_ms = (after - before) * 10;
    if busy_ms > 80 {
        step.report()
            .did(&format!(
                "watched serve_concurrently for {} ms while its client said nothing",
                WATCH.as_millis()
            ))
            .expected("it waits without using the processor (under 80 ms of CPU)")
            .got(&format!("it used about {busy_ms} ms of CPU"))
            .hint(
                "a blocking accept waits without using the processor. A loop that tries \
                 again at once, for instance on a non-blocking listener's WouldBlock, keeps \
                 a core busy for nothing: let accept block, and back off only after a failure.",
            )
            .fail();
    }
}

/// The processor time this process has used so far, in clock ticks
/// (hundredths of a second), from /proc (Linux only).
#[cfg(target_os = "linux")]
fn process_cpu_ticks() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // After the command name (which may hold spaces), utime and stime are
    // the 12th and 13th fields.
    let fields: Vec<&str> = stat.rsplit(')').next()?.split_whitespace().collect();
    let user: u64 = fields.get(11)?.parse().ok()?;
    let system: u64 = fields.get(12)?.parse().ok()?;
    Some(user + system)
}

/// True if `line` says a connection was reset: "Connection reset by peer"
/// on Linux and macOS, "forcibly closed by the remote host" on Windows.
fn says_reset(line: &str) -> bool {
    let line = line.to_lowercase();
    line.contains("reset") || line.contains("forcibly closed")
}

#[test]
fn step_11_the_server_program_reports_a_client_that_failed() {
    let step = Step::new(
        "step 11: `server` reports a client that vanished, naming it, and goes on",
        CHAPTER,
    );
    let mut server = WatchedServer::start(program!(), &["server", "127.0.0.1:0"]);
    let addr = server.listening_address(&step);
    let mut doomed = connect_to(&step, &mut server, addr);
    let name = doomed.local_addr().to_string();
    expect_program_echo(&step, &mut server, &mut doomed, b"hello\n", ONE_AT_A_TIME);
    doomed.send(b"hello\n");
    doomed.send(b"half a mess");
    let vanished = Instant::now();
    doomed.reset();
    let mut next = connect_to(&step, &mut server, addr);
    expect_program_echo(
        &step,
        &mut server,
        &mut next,
        b"still serving?\n",
        "one client's failure is that client's: the server goes on.",
    );
    // serve_client says how a connection ended, naming the client. A thread
    // that drops the result of serve_connection, or panics on it, does not.
    // The reset came before the next client's echo: the line is due by now.
    let names_it = |line: &str| line.contains(&format!("{name}: ")) || line.contains("panicked");
    let found = server.wait_for(SAID_BY_NOW, vanished, names_it);
    if server.panicked() {
        // Let the panic's message follow its first line into the report.
        server.wait_for(Duration::from_millis(100), vanished, |_| false);
    }
    match found {
        Some(line) if line.text.contains(&name) && says_reset(&line.text) => {}
        found => {
            let got = match &found {
                Some(line) => format!("{:?}", line.text),
                None => "no such line (its output is above)".to_string(),
            };
            let observed = if server.panicked() {
                "a thread panicked over one client's error (its output is above). Hand each \
                 connection to serve_client: it reports the error, naming the client, \
                 instead of panicking."
            } else {
                "the error of that client's connection was lost. Hand each connection to \
                 serve_client: it says how the connection ended, naming the client."
            };
            server
                .report(&step)
                .did(&format!(
                    "client {name} sent half a message and vanished (a reset)"
                ))
                .expected(&format!(
                    "a line on stderr that names {name} and says its connection was reset"
                ))
                .got(&got)
                .observed(observed)
                .fail();
        }
    }
    // A server that brings a thread's error back to its accepting loop
    // (a channel, a join) sees it at its next turn, and stops: two more
    // clients, now that the failure has been reported, must be served.
    for message in [b"and after that?\n".as_slice(), b"still here?\n"] {
        let mut later = connect_to(&step, &mut server, addr);
        expect_program_echo(
            &step,
            &mut server,
            &mut later,
            message,
            "one client's failure is that client's: the server reports it and goes on \
             for everyone else; nothing of it reaches the accepting loop.",
        );
    }
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

#[test]
#[cfg_attr(not(unix), ignore = "needs a shell's ulimit (unix only)")]
fn step_12_the_server_program_backs_off_when_accept_fails() {
    let step = Step::new(
        "step 12: `server` out of files reports the failed accept, backs off, and serves again",
        CHAPTER,
    );
    #[cfg(unix)]
    backs_off_when_accept_fails(&step);
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
/// accepts in WINDOW (at 0, 5, 15, 35 and 75 ms): at most MOST_REPORTS. One
/// that waits a fixed 5 ms reports 20; one that does not wait at all,
/// thousands. (Lines about clients that come and go do not count: they are
/// no flood.)
const MOST_REPORTS: usize = 8;

/// And it reports MIN_REPORTS failures within SHORT_WAITS (at 0, 5 and 15 ms;
/// the margin is for a busy machine). One that waits long at once, or whose
/// waits do not start over from short after a success, takes 480 ms or more.
const MIN_REPORTS: usize = 3;
const SHORT_WAITS: Duration = Duration::from_millis(300);

/// Waits for the server to report a failed accept, then counts what it
/// prints in the WINDOW after that.
#[cfg(unix)]
fn expect_backoff(step: &Step, server: &mut WatchedServer, since: Instant, round: &str) {
    // The server accepts clients until it runs out of files; the accept
    // right after its last `accepted` line fails, so the report is due then.
    let accepting = server.wait_for(DEADLINE, since, |line| line.starts_with("accepted "));
    if accepting.is_none() && server.printed_on_stdout(|line| line.starts_with("accepted ")) {
        // Not a slow backoff: the check could not see when accept began to fail.
        let report = server
            .report(step)
            .expected("a line `accepted PEER` on stderr for each client, before accept fails")
            .got("those lines on stdout (its output is above)")
            .hint(
                "narration goes to stderr (eprintln!); stdout carries only the data. \
                 Step 10 says the same.",
            );
        server.fail(report);
    }
    let wait = match accepting {
        Some(_) => SAID_BY_NOW,
        None => Duration::ZERO,
    };
    let Some(first) = server.wait_for(wait, since, reports_failed_accept) else {
        let got = match (server.has_exited(), accepting) {
            (true, _) => "the program ended",
            (false, Some(_)) => "no such line",
            (false, None) => {
                step.note_waited_out();
                "no such line; it did not even say `accepted` for the first clients"
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
    let in_window = reports;
    while reports < MIN_REPORTS {
        let Some(line) = server.next_line(first.at + SHORT_WAITS) else {
            break;
        };
        reports += usize::from(reports_failed_accept(&line.text));
    }
    let watched = format!(
        "in the {} ms after the first one ({round} crowd)",
        WINDOW.as_millis()
    );
    if in_window > MOST_REPORTS {
        let report = server
            .report(step)
            .expected(&format!(
                "at most {MOST_REPORTS} reports of a failed accept {watched}"
            ))
            .got(&format!(
                "{in_window} reports: it tries again too soon, again and again"
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
                "at least {MIN_REPORTS} reports of a failed accept in the {} ms after the \
                 first one ({round} crowd)",
                SHORT_WAITS.as_millis()
            ))
            .got(&format!("{reports}: it waits too long before trying again"))
            .hint(hint);
        server.fail(report);
    }
}

#[test]
fn step_13_the_server_program_explains_an_address_in_use() {
    let step = Step::new(
        "step 13: `server` explains an address in use in one line, exit code 1",
        CHAPTER,
    );
    expect_address_in_use_explained(&step, program!(), &["server"]);
}

/// What one connection through the [`Relay`] carried, each way.
#[derive(Default)]
struct Carried {
    to_server: Vec<u8>,
    to_client: Vec<u8>,
    /// The client shut down its sending side (or closed).
    client_closed: bool,
    /// The server closed the connection.
    server_closed: bool,
}

/// The check in the middle: your clients connect to it, it connects each to
/// your server and passes every byte on, both ways, into the transcript. So
/// when a conversation goes wrong, it can tell which side went wrong.
struct Relay {
    addr: SocketAddr,
    carried: Arc<Mutex<Vec<Carried>>>,
    relayed: mpsc::Receiver<usize>,
}

impl Relay {
    fn start(step: &Step, server: SocketAddr) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").expect("the check could not listen");
        let addr = listener
            .local_addr()
            .expect("a bound listener has an address");
        let carried: Arc<Mutex<Vec<Carried>>> = Arc::default();
        let record = carried.clone();
        let (sender, relayed) = mpsc::channel();
        let step = step.clone();
        thread::spawn(move || {
            for number in 1.. {
                let Ok((client, _)) = listener.accept() else {
                    return;
                };
                record.lock().unwrap().push(Carried::default());
                relay_one(&step, number, client, server, record.clone());
                if sender.send(number).is_err() {
                    return; // the check has ended
                }
            }
        });
        Relay {
            addr,
            carried,
            relayed,
        }
    }

    /// Waits until the relay has taken client `number`, at most DEADLINE.
    fn wait_for_client(&self, number: usize) -> bool {
        let deadline = Instant::now() + DEADLINE;
        while let Ok(taken) = self
            .relayed
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            if taken >= number {
                return true;
            }
        }
        false
    }

    /// Which side went wrong, for client `number` playing `script`: the
    /// first of its messages that your server did not answer rightly, or
    /// else your client.
    fn verdict(&self, number: usize, script: &Script) -> String {
        let carried = self.carried.lock().unwrap();
        let Some(flow) = carried.get(number - 1) else {
            return format!(
                "your client {number} never reached the check: did Client::connect fail?"
            );
        };
        let due = script.replies();
        // How many of its messages (the tail last) the client sent whole.
        let sent = (0..due.len())
            .take_while(|&index| flow.to_server.starts_with(&script.sent_through(index)))
            .count();
        for index in 0..sent {
            let expected = due[..=index].concat();
            if !flow.to_client.starts_with(&expected) {
                return format!(
                    "your client {number} sent {} and your server did not answer it \
                     rightly: it sent {} in all, where {} was due. Is your server still \
                     busy with another client?",
                    show(script.item(index)),
                    show(&flow.to_client),
                    show(&expected)
                );
            }
        }
        if sent < due.len() {
            return format!(
                "your server answered rightly all your client {number} sent ({} back); \
                 then your client stopped before sending {}: the trouble is on your \
                 client's side (what it returned is above)",
                show(&flow.to_client),
                show(script.item(sent))
            );
        }
        if !flow.client_closed {
            return format!(
                "your server answered everything client {number} sent, and then waited \
                 for more: your client never shut down its sending side. Client::finish \
                 must (Shutdown::Write), so that the server reads end of file."
            );
        }
        if !flow.server_closed {
            return format!(
                "client {number} shut down its sending side, and your server did not close \
                 the connection: it must return at end of file."
            );
        }
        format!(
            "your server answered client {number} rightly ({} in all) and closed, so \
             your client misread the replies",
            show(&flow.to_client)
        )
    }
}

/// Passes bytes between one client and a new connection to the server.
fn relay_one(
    step: &Step,
    number: usize,
    client: TcpStream,
    server: SocketAddr,
    record: Arc<Mutex<Vec<Carried>>>,
) {
    let transcript = step.transcript().clone();
    let server = match TcpStream::connect_timeout(&server, DEADLINE) {
        Ok(server) => server,
        Err(error) => {
            transcript.add(format!("check   could not reach your server: {error}"));
            return;
        }
    };
    let (Ok(client_reader), Ok(server_reader)) = (client.try_clone(), server.try_clone()) else {
        return;
    };
    let label = format!("client {number}");
    pump(
        client_reader,
        server,
        label.clone(),
        "server".into(),
        number,
        true,
        &transcript,
        &record,
    );
    pump(
        server_reader,
        client,
        "server".into(),
        label,
        number,
        false,
        &transcript,
        &record,
    );
}

/// Copies bytes from `from` to `to` on a thread of its own, until end of
/// file, which it passes on as a half-close.
#[allow(clippy::too_many_arguments)]
fn pump(
    mut from: TcpStream,
    mut to: TcpStream,
    who: String,
    whom: String,
    number: usize,
    to_server: bool,
    transcript: &seesaw_checks::report::Transcript,
    record: &Arc<Mutex<Vec<Carried>>>,
) {
    let transcript = transcript.clone();
    let record = record.clone();
    thread::spawn(move || {
        // A stuck conversation must not keep this thread for ever.
        let _ = from.set_read_timeout(Some(3 * DEADLINE));
        let mut chunk = [0u8; 64 * 1024];
        loop {
            match from.read(&mut chunk) {
                Ok(0) => {
                    transcript.add(match to_server {
                        true => format!("client {number} closed its sending side"),
                        false => format!("server closed its side of client {number}'s connection"),
                    });
                    if let Some(flow) = record.lock().unwrap().get_mut(number - 1) {
                        match to_server {
                            true => flow.client_closed = true,
                            false => flow.server_closed = true,
                        }
                    }
                    let _ = to.shutdown(Shutdown::Write);
                    return;
                }
                Ok(count) => {
                    let bytes = &chunk[..count];
                    transcript.add(format!("{who} → {whom}   {}", show(bytes)));
                    if let Some(flow) = record.lock().unwrap().get_mut(number - 1) {
                        match to_server {
                            true => flow.to_server.extend_from_slice(bytes),
                            false => flow.to_client.extend_from_slice(bytes),
                        }
                    }
                    if to.write_all(bytes).is_err() {
                        return;
                    }
                }
                Err(error) => {
                    transcript.add(format!("{who}: the relay's read failed: {error}"));
                    let _ = to.shutdown(Shutdown::Both);
                    return;
                }
            }
        }
    });
}

/// What one of the student's clients says, and should get back: each
/// message in turn, then the tail with the half-close.
struct Script {
    messages: Vec<&'static [u8]>,
    tail: &'static [u8],
}

impl Script {
    /// The replies due: each message, then the tail.
    fn replies(&self) -> Vec<Vec<u8>> {
        let mut replies: Vec<Vec<u8>> = self.messages.iter().map(|m| m.to_vec()).collect();
        replies.push(self.tail.to_vec());
        replies
    }

    /// The `index`th thing it sends: a message, or at the end the tail.
    fn item(&self, index: usize) -> &[u8] {
        self.messages.get(index).copied().unwrap_or(self.tail)
    }

    /// All the bytes it sends up to and including the `index`th thing.
    fn sent_through(&self, index: usize) -> Vec<u8> {
        (0..=index).flat_map(|i| self.item(i).to_vec()).collect()
    }
}

/// How a conversation of the student's Client ended: every reply, or the
/// error (as text: it travels back from the client's thread).
type Outcome = Result<Vec<Vec<u8>>, String>;

/// The student's Client plays `script` from beginning to end.
fn converse(addr: &str, script: &Script) -> anyhow::Result<Vec<Vec<u8>>> {
    let mut client = Client::connect(addr)?;
    let mut replies = Vec::new();
    for message in &script.messages {
        replies.push(client.turn(message)?);
    }
    replies.push(client.finish(script.tail)?);
    Ok(replies)
}

/// A client of the student's running on a thread of its own: `outcome`
/// brings back how it ended.
struct RunningClient {
    outcome: mpsc::Receiver<Outcome>,
}

fn start_client(
    step: &Step,
    call: &str,
    code: impl FnOnce() -> anyhow::Result<Vec<Vec<u8>>> + Send + 'static,
) -> RunningClient {
    let outcome = start_student_code(step, call, move || {
        code().map_err(|error| format!("{error:#}"))
    });
    RunningClient { outcome }
}

impl RunningClient {
    /// Waits for the client to end, at most DEADLINE, and fails unless it
    /// got every reply `script` was due. A failure says which side went
    /// wrong, from what the relay saw.
    fn expect_conversation(self, step: &Step, relay: &Relay, number: usize, script: &Script) {
        let outcome = match self.outcome.recv_timeout(DEADLINE) {
            Ok(outcome) => outcome,
            // It panicked: the report shows the panic as the cause.
            Err(mpsc::RecvTimeoutError::Disconnected) => Err("it panicked".to_string()),
            Err(mpsc::RecvTimeoutError::Timeout) => {
                step.note_waited_out();
                Err(format!(
                    "still waiting after {} s: it hangs",
                    DEADLINE.as_secs_f32()
                ))
            }
        };
        let due = script.replies();
        if outcome.as_ref() == Ok(&due) {
            return;
        }
        step.report()
            .did(&format!(
                "your client {number} talked to your server; the check sat in between and \
                 recorded every byte"
            ))
            .expected(&describe_outcome(&Ok(due)))
            .got(&describe_outcome(&outcome))
            .observed(&relay.verdict(number, script))
            .fail();
    }
}

fn describe_outcome(outcome: &Outcome) -> String {
    match outcome {
        Ok(replies) => format!("the replies {}", show_list(replies)),
        Err(error) => error.clone(),
    }
}

#[test]
fn step_14_your_clients_talk_to_your_server_at_once() {
    let step = Step::new(
        "step 14: your own clients talk to your own server, several at once",
        CHAPTER,
    );
    let (server_addr, _server) = start_server(&step);
    let relay = Relay::start(&step, server_addr);

    // Client 1 takes a first turn, then stays connected, silent, while
    // clients 2 and 3 hold their whole conversations.
    let first_script = Script {
        messages: vec![b"one: hello\n", b"one: back again\n"],
        tail: b"one: bye",
    };
    let (took_turn, first_turn) = mpsc::channel();
    let (go_on, wait_for_go) = mpsc::channel::<()>();
    let addr = relay.addr.to_string();
    let first = start_client(
        &step,
        "client 1: Client::connect, turn, (a pause), turn, finish",
        move || {
            let mut client = Client::connect(&addr)?;
            let mut replies = vec![client.turn(b"one: hello\n")?];
            let _ = took_turn.send(());
            let _ = wait_for_go.recv_timeout(4 * DEADLINE);
            replies.push(client.turn(b"one: back again\n")?);
            replies.push(client.finish(b"one: bye")?);
            Ok(replies)
        },
    );
    if first_turn.recv_timeout(DEADLINE).is_err() {
        // It failed or hangs on its first turn: the report says which side.
        return first.expect_conversation(&step, &relay, 1, &first_script);
    }
    let mut others = Vec::new();
    for number in 2..=3 {
        let addr = relay.addr.to_string();
        let running = start_client(
            &step,
            &format!("client {number}: Client::connect, turn, turn, finish"),
            move || converse(&addr, &other_script()),
        );
        // One at a time through the relay, so that its numbers are theirs.
        relay.wait_for_client(number);
        others.push((number, running));
    }
    for (number, running) in others {
        running.expect_conversation(&step, &relay, number, &other_script());
    }
    let _ = go_on.send(());
    first.expect_conversation(&step, &relay, 1, &first_script);
}

/// What clients 2 and 3 say: odd bytes, then an empty tail.
fn other_script() -> Script {
    Script {
        messages: vec![b" \t\xff\x00 bytes as they are\r\n", b"and more\n"],
        tail: b"",
    }
}
