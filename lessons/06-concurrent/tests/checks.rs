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

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use lesson_06_concurrent::{Client, MAX_MESSAGE, TOO_LONG_REPLY, serve_concurrently};
use seesaw_checks::DEADLINE;
#[cfg(unix)]
use seesaw_checks::accept_backoff::expect_backs_off_when_accept_fails;
use seesaw_checks::bytes::{show, show_list};
use seesaw_checks::localhost::ipv6_if_any;
use seesaw_checks::peer::{End, Peer};
use seesaw_checks::process::{cpu_time, expect_room_for_files};
use seesaw_checks::program;
use seesaw_checks::program::expect_address_in_use_explained;
use seesaw_checks::relay::Relay;
use seesaw_checks::report::{Step, hint_for_kind, io_error_kind};
use seesaw_checks::serving::{self, RunningServer};
use seesaw_checks::watched::{SAID_BY_NOW, WatchedServer};

const CHAPTER: &str = "06-concurrent";

const ONE_AT_A_TIME: &str = "the server still talks to another client and has not \
     served this one. Give each connection a thread of its own, and do not wait for \
     (join) that thread: go straight back to accepting.";

const RETURNED: &str = "serve_concurrently must loop for ever: a server never returns, \
     not when its clients have gone, and not when one client or one accept fails.";

/// Starts the student's serve_concurrently on a listener of the check's own,
/// on 127.0.0.1 and a port the OS picks.
fn start_server(step: &Step) -> RunningServer {
    let listener = TcpListener::bind("127.0.0.1:0").expect("the check could not listen");
    start_server_on(step, listener)
}

/// Starts the student's serve_concurrently on `listener`. It runs for ever,
/// as a server should; the check never waits for it to end.
fn start_server_on(step: &Step, listener: TcpListener) -> RunningServer {
    serving::start_on(
        step,
        listener,
        "serve_concurrently(listener)",
        serve_concurrently,
    )
    .if_it_returns(RETURNED)
}

/// Connects `count` clients, after making sure this process may open the
/// sockets that takes.
fn connect_many(step: &Step, addr: SocketAddr, count: usize) -> Vec<Peer> {
    // In-process, each connection costs three files: the check's socket, and
    // your server's socket and its clone.
    expect_room_for_files(step, 3 * count + 16);
    (0..count).map(|_| Peer::connect(step, addr)).collect()
}

fn step_01_one_client_is_served() {
    let step = Step::new(
        "step 1: serve_concurrently echoes a client's messages, bytes exact, and waits without spinning",
        CHAPTER,
    );
    let server = start_server(&step);
    let addr = server.addr();
    let mut client = Peer::connect(&step, addr);
    let hint = "accept the client and hand it to serve_client(connection, peer), which \
                runs lesson 5's seesaw.";
    server.expect_echo(&step, &mut client, b"hello\n", hint);
    server.expect_echo(
        &step,
        &mut client,
        b" \tbytes \xff\x00 as they are\r\n",
        hint,
    );
    client.send(b"a tail without newline");
    client.close_sending();
    client.expect_then_end(b"a tail without newline", hint);
    server.expect_still_serving(&step, Duration::ZERO, RETURNED);
    #[cfg(target_os = "linux")]
    expect_no_spinning(&step);
    #[cfg(not(target_os = "linux"))]
    step.skip_part(
        "the spin watch",
        "the check reads a process's processor time from /proc, which only Linux has",
    );
}

fn step_02_an_idle_client_does_not_block_another() {
    let step = Step::new(
        "step 2: while one client stays idle, another is served",
        CHAPTER,
    );
    let server = start_server(&step);
    let addr = server.addr();
    let mut idle = Peer::connect(&step, addr);
    let mut busy = Peer::connect(&step, addr);
    server.expect_echo(&step, &mut busy, b"is anybody there?\n", ONE_AT_A_TIME);
    server.expect_echo(&step, &mut idle, b"my turn now\n", ONE_AT_A_TIME);
}

fn step_03_clients_are_served_in_reverse_order() {
    let step = Step::new(
        "step 3: five clients connect, then each is served, the last first",
        CHAPTER,
    );
    let server = start_server(&step);
    let addr = server.addr();
    let mut clients = connect_many(&step, addr, 5);
    for (number, client) in clients.iter_mut().enumerate().rev() {
        let message = format!("client {number}\n");
        server.expect_echo(&step, client, message.as_bytes(), ONE_AT_A_TIME);
    }
}

fn step_04_messages_of_ten_clients_interleave() {
    let step = Step::new(
        "step 4: ten clients take turns, message after message, all at once",
        CHAPTER,
    );
    let server = start_server(&step);
    let addr = server.addr();
    let mut clients = connect_many(&step, addr, 10);
    for round in 0..3 {
        for (number, client) in clients.iter_mut().enumerate() {
            client.send(format!("round {round} from client {number}\n").as_bytes());
        }
        for (number, client) in clients.iter_mut().enumerate() {
            let message = format!("round {round} from client {number}\n");
            server.expect_reply(&step, client, message.as_bytes(), ONE_AT_A_TIME);
        }
    }
}

fn step_05_a_vanished_client_does_not_stop_the_server() {
    let step = Step::new(
        "step 5: a client that vanishes mid-message (a reset) does not stop the server",
        CHAPTER,
    );
    let hint = "a connection's error belongs to that connection: report it (serve_client \
                does) and go on accepting. Never end the server with ? on one client's error.";
    // Here only a client's error can end the server: that is the hint when it has ended.
    let server = start_server(&step).if_it_returns(hint);
    let addr = server.addr();
    let mut bystander = Peer::connect(&step, addr);
    server.expect_echo(&step, &mut bystander, b"I was here first\n", ONE_AT_A_TIME);
    let mut doomed = Peer::connect(&step, addr);
    doomed.send(b"hello\n");
    doomed.send(b"half a mess");
    doomed.reset();
    let mut next = server.connect(&step, hint);
    server.expect_echo(&step, &mut next, b"still serving?\n", hint);
    server.expect_echo(&step, &mut bystander, b"and still here\n", hint);
    // A server that brings a thread's error back to its loop sees it only
    // at its next turn: a second new client gives it that turn.
    let mut later = server.connect(&step, hint);
    server.expect_echo(&step, &mut later, b"and me?\n", hint);
    server.expect_still_serving(&step, Duration::ZERO, hint);
}

fn step_06_a_message_too_long_ends_only_that_connection() {
    let step = Step::new(
        "step 6: a client whose message is too long gets the error line; the others are still served",
        CHAPTER,
    );
    let server = start_server(&step);
    let addr = server.addr();
    let mut bystander = Peer::connect(&step, addr);
    server.expect_echo(&step, &mut bystander, b"I was here first\n", ONE_AT_A_TIME);
    let mut flooder = Peer::connect(&step, addr);
    // One byte over the limit, and no newline: the server must not wait for one.
    flooder.send_in_background(vec![b'x'; MAX_MESSAGE + 1]);
    let reply = flooder.read_line();
    if reply.bytes != TOO_LONG_REPLY {
        let report = step
            .report()
            .did(&format!(
                "a client sent {MAX_MESSAGE} + 1 bytes without a newline"
            ))
            .expected(&format!("{} back", show(TOO_LONG_REPLY)))
            .got_received(TOO_LONG_REPLY, &reply)
            .hint(
                "serve_client (given) answers a message that is too long: give it the connection.",
            );
        if reply.end == End::TimedOut && reply.bytes.is_empty() {
            // Silence, though the server serves others: it still waits for a newline.
            report
                .observed(
                    "no error line came, though more than MAX_MESSAGE bytes had: your server \
                     is likely still reading, waiting for a newline that never comes. A read \
                     of a message needs a limit: serve_client (given) reads with \
                     read_message, which stops at the limit and answers with the error line. \
                     Give it the connection.",
                )
                .fail();
        }
        report.fail();
    }
    let hint = "one client's message that is too long ends that client's connection only: \
                the server goes on serving everyone else.";
    server.expect_echo(&step, &mut bystander, b"still served?\n", hint);
    let mut next = Peer::connect(&step, addr);
    server.expect_echo(&step, &mut next, b"and me?\n", hint);
    server.expect_still_serving(&step, Duration::ZERO, RETURNED);
}

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
    let server = start_server_on(&step, listener);
    let addr = server.addr();
    step.transcript()
        .add("check   made accept fail for 60 ms (WouldBlock)".to_string());
    server.expect_still_serving(
        &step,
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
    server.expect_echo(
        &step,
        &mut client,
        b"did accept recover?\n",
        "after a failed accept, the loop must go on accepting: the next accept works.",
    );
    server.expect_still_serving(&step, Duration::ZERO, RETURNED);
}

fn step_08_a_new_client_is_served_after_all_have_gone() {
    let step = Step::new(
        "step 8: after every client has gone, a new client is still served",
        CHAPTER,
    );
    let server = start_server(&step);
    let addr = server.addr();
    for _ in 0..3 {
        let mut client = Peer::connect(&step, addr);
        server.expect_echo(&step, &mut client, b"hi\n", ONE_AT_A_TIME);
        client.close_sending();
        client.read_to_end();
    }
    let mut late = Peer::connect(&step, addr);
    server.expect_echo(
        &step,
        &mut late,
        b"am I too late?\n",
        "keep accepting in a loop for ever: the server must not stop when its clients have gone.",
    );
    server.expect_still_serving(&step, Duration::ZERO, RETURNED);
}

fn step_09_fifty_clients_at_once() {
    let step = Step::new(
        "step 9: fifty clients connected at the same time are all served",
        CHAPTER,
    );
    let server = start_server(&step);
    let addr = server.addr();
    let mut clients = connect_many(&step, addr, 50);
    for (number, client) in clients.iter_mut().enumerate() {
        client.send(format!("client {number}\n").as_bytes());
    }
    for (number, client) in clients.iter_mut().enumerate().rev() {
        let message = format!("client {number}\n");
        server.expect_reply(&step, client, message.as_bytes(), ONE_AT_A_TIME);
    }
}

fn step_10_the_server_program_serves_clients_at_once() {
    let step = Step::new(
        "step 10: `server` on [::1] serves two clients at once, says whom it accepted and what it echoed",
        CHAPTER,
    );
    let (mut server, addr) =
        WatchedServer::start_listening(&step, program!(), &["server", ipv6_if_any()]);
    let mut idle = server.connect(&step, addr);
    let mut busy = server.connect(&step, addr);
    server.expect_echo(&step, &mut busy, b"second client first\n", ONE_AT_A_TIME);
    let last = b"first client last\n";
    server.expect_echo(&step, &mut idle, last, ONE_AT_A_TIME);
    for client in [&idle, &busy] {
        server.expect_said(
            &step,
            &format!("accepted {}", client.local_addr()),
            "for each client it accepts, the server says `accepted PEER` on stderr, PEER \
             written as Rust writes a SocketAddr ({peer}): IPv6 in brackets, like \
             [::1]:50000.",
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
    let Some(before) = cpu_time(None) else {
        return step.skip_part(
            "the spin watch",
            "this machine has no /proc/self/stat to read",
        );
    };
    // Watching for a while: a measurement, not a wait for an event.
    thread::sleep(WATCH);
    let Some(after) = cpu_time(None) else {
        return step.skip_part(
            "the spin watch",
            "this machine has no /proc/self/stat to read",
        );
    };
    let busy_ms = (after - before).as_millis();
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

/// True if `line` says a connection was reset: "Connection reset by peer"
/// on Linux and macOS, "forcibly closed by the remote host" on Windows.
fn says_reset(line: &str) -> bool {
    let line = line.to_lowercase();
    line.contains("reset") || line.contains("forcibly closed")
}

fn step_11_the_server_program_reports_a_client_that_failed() {
    let step = Step::new(
        "step 11: `server` reports a client that vanished, naming it, and goes on",
        CHAPTER,
    );
    let (mut server, addr) =
        WatchedServer::start_listening(&step, program!(), &["server", "127.0.0.1:0"]);
    let mut doomed = server.connect(&step, addr);
    let name = doomed.local_addr().to_string();
    server.expect_echo(&step, &mut doomed, b"hello\n", ONE_AT_A_TIME);
    doomed.send(b"hello\n");
    doomed.send(b"half a mess");
    let vanished = Instant::now();
    doomed.reset();
    let mut next = server.connect(&step, addr);
    server.expect_echo(
        &step,
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
    // (a channel, a join) sees it at its next turn, and stops: three more
    // clients, now that the failure has been reported, must be served (the
    // thread may hand its error on a moment after it reported it).
    for message in [
        b"and after that?\n".as_slice(),
        b"still here?\n",
        b"and me?\n",
    ] {
        let mut later = server.connect(&step, addr);
        server.expect_echo(
            &step,
            &mut later,
            message,
            "one client's failure is that client's: the server reports it and goes on \
             for everyone else; nothing of it reaches the accepting loop.",
        );
    }
}

fn step_12_the_server_program_backs_off_when_accept_fails() {
    let step = Step::new(
        "step 12: `server` out of files reports the failed accept, backs off, and serves again",
        CHAPTER,
    );
    #[cfg(not(unix))]
    step.skip("needs a shell's ulimit (unix only)");
    #[cfg(unix)]
    expect_backs_off_when_accept_fails(
        &step,
        program!(),
        &["server", "127.0.0.1:0"],
        "Each client's own thread serves it, whatever the accepting loop does: is a \
         client served on the accepting thread, or do the clients' threads wait for \
         something the loop holds (a lock, a join)?",
    );
}

fn step_13_the_server_program_explains_an_address_in_use() {
    let step = Step::new(
        "step 13: `server` explains an address in use in one line, exit code 1",
        CHAPTER,
    );
    expect_address_in_use_explained(&step, program!(), &["server"]);
}

/// Which side went wrong, for client `number` playing `script`, from what
/// the relay carried: the first of its messages that your server did not
/// answer rightly, or else your client.
fn verdict(relay: &Relay, number: usize, script: &Script, outcome: &Outcome) -> String {
    let Some(flow) = relay.carried(number) else {
        return format!("your client {number} never reached the check: did Client::connect fail?");
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
        // The kind of error your client returned, if any, says what to look at.
        let kind_hint = match outcome {
            Err((_, Some(kind))) => hint_for_kind(*kind).map(|hint| format!(" Its error: {hint}")),
            _ => None,
        };
        return format!(
            "your server answered rightly all your client {number} sent ({} back); \
             then your client stopped before sending {}: the trouble is on your \
             client's side (what it returned is above).{}",
            show(&flow.to_client),
            show(script.item(sent)),
            kind_hint.unwrap_or_default()
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
/// error (as text, with the kind of io::Error inside: it travels back from
/// the client's thread).
type Outcome = Result<Vec<Vec<u8>>, (String, Option<io::ErrorKind>)>;

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
    let outcome = serving::in_background(step, call, move || {
        code().map_err(|error| (format!("{error:#}"), io_error_kind(&error)))
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
            Err(mpsc::RecvTimeoutError::Disconnected) => Err(("it panicked".to_string(), None)),
            Err(mpsc::RecvTimeoutError::Timeout) => {
                step.note_waited_out();
                Err((
                    format!("still waiting after {} s: it hangs", DEADLINE.as_secs_f32()),
                    None,
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
            .observed(&verdict(relay, number, script, &outcome))
            .fail();
    }
}

fn describe_outcome(outcome: &Outcome) -> String {
    match outcome {
        Ok(replies) => format!("the replies {}", show_list(replies)),
        Err((error, _)) => error.clone(),
    }
}

fn step_14_your_clients_talk_to_your_server_at_once() {
    let step = Step::new(
        "step 14: your own clients talk to your own server, several at once",
        CHAPTER,
    );
    let server = start_server(&step);
    let relay = Relay::start_numbered(&step, server.addr());

    // Client 1 takes a first turn, then stays connected, silent, while
    // clients 2 and 3 hold their whole conversations.
    let first_script = Script {
        messages: vec![b"one: hello\n", b"one: back again\n"],
        tail: b"one: bye",
    };
    let (took_turn, first_turn) = mpsc::channel();
    let (go_on, wait_for_go) = mpsc::channel::<()>();
    let addr = relay.addr().to_string();
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
        let addr = relay.addr().to_string();
        let running = start_client(
            &step,
            &format!("client {number}: Client::connect, turn, turn, finish"),
            move || converse(&addr, &other_script()),
        );
        // One at a time through the relay, so that its numbers are theirs.
        relay.wait_for_client(number, DEADLINE);
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

seesaw_checks::checks![
    step_01_one_client_is_served,
    step_02_an_idle_client_does_not_block_another,
    step_03_clients_are_served_in_reverse_order,
    step_04_messages_of_ten_clients_interleave,
    step_05_a_vanished_client_does_not_stop_the_server,
    step_06_a_message_too_long_ends_only_that_connection,
    step_07_a_failed_accept_does_not_stop_the_server,
    step_08_a_new_client_is_served_after_all_have_gone,
    step_09_fifty_clients_at_once,
    step_10_the_server_program_serves_clients_at_once,
    step_11_the_server_program_reports_a_client_that_failed,
    step_12_the_server_program_backs_off_when_accept_fails,
    step_13_the_server_program_explains_an_address_in_use,
    step_14_your_clients_talk_to_your_server_at_once,
];
