//! The checks of lesson 2, in the order you meet them: the first failure is
//! your next step. Run them with `cargo test -p lesson-02-accept`.

use std::io::{BufRead, BufReader, ErrorKind, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread;
use std::time::Duration;

use lesson_02_accept::accept_one;
use seesaw_checks::bounded::{self, Running};
use seesaw_checks::bytes::show;
use seesaw_checks::peer::{End, PIECE_PAUSE, Peer};
use seesaw_checks::program::{Server, run};
use seesaw_checks::report::{Step, hint_for_kind, io_error_kind};
use seesaw_checks::{DEADLINE, peer, program};

const CHAPTER: &str = "02-accept";

const ACCEPT_HANGS: &str = "a client connected, so accept() should have returned. \
     Do you call accept on the listener you were given, and only once?";

/// How long accept_one must keep waiting when no client has come yet.
const PATIENCE: Duration = Duration::from_millis(250);

/// How long accept_one may take once a client is waiting (it takes
/// microseconds): shorter than the usual deadline, so that a hang in the
/// first step is explained within 2 s.
const QUICK: Duration = Duration::from_millis(1000);

/// How long accept_one may take to return a failed accept (microseconds):
/// short, because this step comes after others, and a hang here must still be
/// explained within 2 s of starting the checks.
const FAILS_AT_ONCE: Duration = Duration::from_millis(500);

/// A listener of the check's own on `addr`, shared with the student's accept_one.
fn check_listener(addr: &str) -> (Arc<TcpListener>, SocketAddr) {
    let listener = TcpListener::bind(addr).expect("the check could not listen");
    let addr = listener
        .local_addr()
        .expect("a bound listener has an address");
    (Arc::new(listener), addr)
}

/// True when this machine has an IPv6 loopback address to listen on.
fn has_ipv6_loopback() -> bool {
    let usable = TcpListener::bind("[::1]:0").is_ok();
    if !usable {
        eprintln!("note: this machine has no IPv6 loopback (::1), so the IPv6 part is skipped.");
    }
    usable
}

/// The student's accept_one, running on its own thread, and a signal that it returned.
struct Accepting {
    running: Running<anyhow::Result<(TcpStream, SocketAddr)>>,
    returned: mpsc::Receiver<()>,
}

/// Starts the student's accept_one on its own thread.
fn start_accept(step: &Step, listener: &Arc<TcpListener>) -> Accepting {
    let listener = Arc::clone(listener);
    let (done, returned) = mpsc::channel();
    let running = bounded::start(step, "accept_one(&listener)", move || {
        let outcome = accept_one(&listener);
        let _ = done.send(());
        outcome
    });
    Accepting { running, returned }
}

/// Waits, at most `wait`, for accept_one to return (a client is waiting,
/// or accepting must fail at once), and returns what it returned.
fn finish_quickly(
    step: &Step,
    accepting: Accepting,
    wait: Duration,
    hang_hint: &str,
) -> anyhow::Result<(TcpStream, SocketAddr)> {
    // A panic drops the signal (Disconnected): `finish` below reports it.
    if let Err(RecvTimeoutError::Timeout) = accepting.returned.recv_timeout(wait) {
        step.note_waited_out();
        step.report()
            .expected("accept_one(&listener) to return at once")
            .got(&format!(
                "still running after {} s: it hangs",
                wait.as_secs_f32()
            ))
            .observed(hang_hint)
            .fail();
    }
    accepting.running.finish(step, hang_hint)
}

/// Connects a client, accepts it with the student's accept_one, and checks that
/// the peer address is the client's own. Returns the check's client and the
/// connection accept_one returned.
fn accept_and_compare(
    step: &Step,
    listener: &Arc<TcpListener>,
    addr: SocketAddr,
) -> (Peer, TcpStream) {
    let client = Peer::connect(step, addr);
    let accepting = start_accept(step, listener);
    let (connection, peer) = step.ok(
        "accept_one(&listener)",
        finish_quickly(step, accepting, QUICK, ACCEPT_HANGS),
    );
    expect_peer(step, &client, peer, &connection);
    (client, connection)
}

fn expect_peer(step: &Step, client: &Peer, peer: SocketAddr, connection: &TcpStream) {
    let client_addr = client.local_addr();
    let did = format!("a client connected from {client_addr}; then accept_one(&listener) returned");
    if peer != client_addr {
        step.report()
            .did(&did)
            .expected(&format!("the peer address {client_addr}, where the client connected from"))
            .got(&format!("{peer}"))
            .hint("return the address that TcpListener::accept gives you with the connection: not the listener's own, and none you build yourself.")
            .fail();
    }
    let connected_to = match connection.peer_addr() {
        Ok(addr) => addr.to_string(),
        Err(error) => format!("nothing ({error})"),
    };
    if connected_to != client_addr.to_string() {
        step.report()
            .did(&did)
            .expected(&format!(
                "the connection that accept() returned, connected to {client_addr}"
            ))
            .got(&format!("a socket connected to {connected_to}"))
            .hint("return the TcpStream that TcpListener::accept gave you, as it is.")
            .fail();
    }
}

#[test]
fn step_1_accept_waits_for_a_client() {
    let step = Step::new("step 1: accept_one waits until a client connects", CHAPTER);
    let (listener, addr) = check_listener("127.0.0.1:0");
    let accepting = start_accept(&step, &listener);
    step.transcript()
        .add(format!("check   listening on {addr}, no client yet"));
    accepting.running.expect_still_running(
        PATIENCE,
        &step,
        "a client",
        "TcpListener::accept blocks until a client connects; call it on the listener \
         you are given, and do not make it non-blocking.",
    );
    let client = Peer::connect(&step, addr);
    let (connection, peer) = step.ok(
        "accept_one(&listener)",
        finish_quickly(&step, accepting, QUICK, ACCEPT_HANGS),
    );
    expect_peer(&step, &client, peer, &connection);
}

#[test]
fn step_2_accept_two_clients_in_a_row() {
    let step = Step::new(
        "step 2: clients are accepted one a call, in the order they came, each with its own address",
        CHAPTER,
    );
    let (listener, addr) = check_listener("127.0.0.1:0");
    let _first = accept_and_compare(&step, &listener, addr);
    let _second = accept_and_compare(&step, &listener, addr);
    // Two clients waiting at once: each call takes the one that came first.
    let older = Peer::connect(&step, addr);
    let newer = Peer::connect(&step, addr);
    step.transcript().add(format!(
        "check   two clients wait: {} came first, then {}",
        older.local_addr(),
        newer.local_addr()
    ));
    for (call, client) in [("first", &older), ("second", &newer)] {
        let accepting = start_accept(&step, &listener);
        let (connection, peer) = step.ok(
            "accept_one(&listener)",
            finish_quickly(&step, accepting, QUICK, ACCEPT_HANGS),
        );
        if peer == newer.local_addr() && call == "first" {
            step.report()
                .did(&format!(
                    "two clients connected, {} first, then {}, before the check called \
                     accept_one(&listener)",
                    older.local_addr(),
                    newer.local_addr()
                ))
                .expected(&format!(
                    "the client that came first, {}: each call takes the next one waiting",
                    older.local_addr()
                ))
                .got(&format!("{peer}, the client that came second"))
                .hint(
                    "call accept once and return what it gives: the client that has waited \
                     longest. Do not take the others waiting: each later call of accept_one \
                     gets its own.",
                )
                .fail();
        }
        expect_peer(&step, client, peer, &connection);
    }
}

/// Reads one line from `connection` on a thread of the check's own, as the
/// connection is (no timeout of the check's), and waits at most [`DEADLINE`].
fn read_line_in_background(connection: &TcpStream) -> mpsc::Receiver<std::io::Result<Vec<u8>>> {
    let reader = connection
        .try_clone()
        .expect("the check could not clone the connection");
    let (sender, received) = mpsc::channel();
    thread::spawn(move || {
        let mut line = Vec::new();
        let outcome = BufReader::new(reader)
            .read_until(b'\n', &mut line)
            .map(|_| line);
        let _ = sender.send(outcome);
    });
    received
}

/// The check's client sends a line, a little late; the connection accept_one
/// returned must read exactly it.
fn expect_readable(step: &Step, client: &mut Peer, connection: &TcpStream) {
    let message = b"from the client to you\n";
    let reading = read_line_in_background(connection);
    // The client is a little slow: a connection that cannot wait for data
    // (non-blocking, or a tiny read timeout) fails here, as it would in a server.
    thread::sleep(PIECE_PAUSE * 2);
    client.send(message);
    let did = "the check read a line from the connection accept_one returned, while its \
               client sent one, a little late";
    match reading.recv_timeout(DEADLINE) {
        Ok(Ok(line)) if line == message => {}
        Ok(Ok(line)) => step
            .report()
            .did(did)
            .expected(&format!("to read {}", show(message)))
            .got(&match line.ends_with(b"\n") {
                true => show(&line),
                false => format!("{} and then end of file", show(&line)),
            })
            .hint("return the connection as accept() gave it: do not read from it, shut it down or close it in accept_one.")
            .fail(),
        Ok(Err(error)) => step
            .report()
            .did(did)
            .expected(&format!("to read {}", show(message)))
            .got(&format!("an error: {error}"))
            .observed(&read_failed_hint(error.kind()))
            .fail(),
        Err(_) => {
            step.note_waited_out();
            step.report()
                .did(did)
                .expected(&format!("to read {}", show(message)))
                .got(&format!("nothing within {} s", DEADLINE.as_secs_f32()))
                .hint("return the connection that accept() returned, connected to this client.")
                .fail()
        }
    }
    step.transcript().add(format!(
        "check   read {} from the connection accept_one returned",
        show(message)
    ));
}

/// The hint for a read on the returned connection that failed with `kind`.
fn read_failed_hint(kind: ErrorKind) -> String {
    match kind {
        ErrorKind::WouldBlock | ErrorKind::TimedOut => "the read gave up before the client's \
             bytes came: the connection is non-blocking, or has a tiny read timeout. A server \
             waits for its client: return the connection as accept() gave it."
            .to_string(),
        _ => format!(
            "{} Return the connection as accept() gave it: do not shut it down or close it.",
            hint_for_kind(kind).unwrap_or("the connection failed.")
        ),
    }
}

/// The connection accept_one returned writes a line: the check's client must
/// read exactly it, and nothing else.
fn expect_writable(step: &Step, client: &mut Peer, connection: &mut TcpStream) {
    let message = b"from you to the client\n";
    step.transcript().add(format!(
        "check   wrote {} to the connection accept_one returned",
        show(message)
    ));
    if let Err(error) = connection.write_all(message) {
        step.report()
            .did("the check wrote a line to the connection accept_one returned")
            .expected("the write to succeed")
            .got(&format!("an error: {error}"))
            .hint("return the connection as accept() gave it: do not shut it down or close it.")
            .fail();
    }
    let received = client.read_line();
    if received.bytes != message || received.end != End::Newline {
        let report = step
            .report()
            .did("the check wrote a line to the connection accept_one returned; its client read")
            .expected(&format!("the client to read {}", show(message)));
        if received.bytes.is_empty() || message.starts_with(&received.bytes) {
            report.got_received(message, &received).fail();
        }
        report
            .got(&received.describe())
            .observed(&format!(
                "the check never wrote {}: your accept_one did. It must only accept; \
                 what to say to the client is the server's business, later.",
                show(&received.bytes)
            ))
            .fail();
    }
}

#[test]
fn step_3_the_connection_works_both_ways() {
    let step = Step::new(
        "step 3: the connection accept_one returns carries bytes both ways, exactly, with no timeout set",
        CHAPTER,
    );
    let (listener, addr) = check_listener("127.0.0.1:0");
    let (mut client, mut connection) = accept_and_compare(&step, &listener, addr);
    expect_readable(&step, &mut client, &connection);
    expect_writable(&step, &mut client, &mut connection);
    expect_no_timeouts(&step, &connection);
}

/// The connection accept_one returned must have no read or write timeout:
/// a timeout is the server's decision, made where it reads or writes.
fn expect_no_timeouts(step: &Step, connection: &TcpStream) {
    let timeouts = [
        ("read", connection.read_timeout()),
        ("write", connection.write_timeout()),
    ];
    for (which, timeout) in timeouts {
        let got = match timeout {
            Ok(None) => continue,
            Ok(Some(wait)) => format!("a {which} timeout of {} s", wait.as_secs_f32()),
            Err(error) => format!("no answer: {error}"),
        };
        step.report()
            .did(&format!(
                "asked the connection accept_one returned for its {which} timeout \
                 (TcpStream::{which}_timeout)"
            ))
            .expected("none: the connection as accept() gave it")
            .got(&got)
            .hint(
                "accept_one only accepts: set nothing on the connection. With a read timeout, \
                 a client that is slow, not gone, loses its connection; how long to wait is \
                 the server's decision, made where it reads (lesson 7).",
            )
            .fail();
    }
}

#[test]
fn step_4_accept_on_ipv6_too() {
    let step = Step::new(
        "step 4: accept_one works on an IPv6 listener, and returns the client's IPv6 address",
        CHAPTER,
    );
    if !has_ipv6_loopback() {
        return;
    }
    let (listener, addr) = check_listener("[::1]:0");
    let _client = accept_and_compare(&step, &listener, addr);
}

/// An error in words: its message, and the kind of `io::Error` under it.
fn describe_error(error: &anyhow::Error) -> String {
    let message = format!("{error:#}");
    match io_error_kind(error) {
        Some(kind) => format!("the error {message:?} (an io::Error of kind {kind:?} inside)"),
        None => format!("the error {message:?}, with no io::Error inside"),
    }
}

#[test]
fn step_5_a_failed_accept_is_an_error() {
    let step = Step::new(
        "step 5: when accepting fails, accept_one returns an error that says so, not a panic",
        CHAPTER,
    );
    let (listener, _) = check_listener("127.0.0.1:0");
    // A non-blocking listener with no client waiting fails accept at once
    // (WouldBlock): the simplest failure the check can cause.
    listener
        .set_nonblocking(true)
        .expect("the check could not make its listener non-blocking");
    step.transcript()
        .add("check   made its listener fail every accept (non-blocking, no client)".to_string());
    let accepting = start_accept(&step, &listener);
    let outcome = finish_quickly(
        &step,
        accepting,
        FAILS_AT_ONCE,
        "accept() failed, and accept_one did not return. Does it retry in a loop? \
         Return the error: the caller decides what to do (lesson 6 retries, with a pause).",
    );
    let did = "called accept_one on a listener whose accept fails (WouldBlock)";
    let error = match outcome {
        Err(error) => error,
        Ok((_, peer)) => step
            .report()
            .did(did)
            .expected("an error")
            .got(&format!("Ok(a connection from {peer})"))
            .fail(),
    };
    if io_error_kind(&error) != Some(ErrorKind::WouldBlock) {
        step.report()
            .did(did)
            .expected("accept's io::Error (kind WouldBlock) kept inside your error")
            .got(&describe_error(&error))
            .hint(
                "map_err(|e| anyhow!(\"...{e}\")) keeps only the text and loses the io::Error; \
                   anyhow's context methods add your words and keep it inside.",
            )
            .fail();
    }
    if error.chain().count() < 2 {
        step.report()
            .did(did)
            .expected("your error to say what failed (accepting a connection), around accept's own")
            .got(&describe_error(&error))
            .hint(
                "accept's own message only says `Resource temporarily unavailable`: add what was \
                   being done, with anyhow's context methods.",
            )
            .fail();
    }
}

/// Starts the program on `addr`; two clients connect in turn: the program must
/// print `accepted PEER` for each, write nothing, and close the connection.
fn expect_program_accepts(step: &Step, addr: &str) {
    let mut server = Server::start(program!(), &[addr]);
    let addr = server.listening_address(step);
    for _ in 0..2 {
        let mut client = Peer::connect(step, addr);
        let line = server.wait_for_line(step, "accepted ");
        let client_addr = client.local_addr().to_string();
        if !line.ends_with(&client_addr) {
            server
                .report(step)
                .expected(&format!("`accepted {client_addr}`, the check's client"))
                .got(&line)
                .hint("main prints the peer address accept_one returned: it must be the client's.")
                .fail();
        }
        let received = client.read_to_end();
        if received.end != End::Closed || !received.bytes.is_empty() {
            server
                .report(step)
                .expected("the program to close the connection without writing anything (the check reads end of file)")
                .got(&received.describe())
                .hint("accept_one only accepts: it writes nothing, and returns the connection, which main then drops.")
                .fail();
        }
    }
}

#[test]
fn step_6_the_program_says_who_connected() {
    let step = Step::new(
        "step 6: the program prints `accepted PEER` for each client and closes its connection",
        CHAPTER,
    );
    expect_program_accepts(&step, "127.0.0.1:0");
    if has_ipv6_loopback() {
        expect_program_accepts(&step, "[::1]:0");
    }
}

#[test]
fn step_7_the_program_explains_an_address_in_use() {
    let step = Step::new(
        "step 7: the program explains an address in use in one line, exit code 1",
        CHAPTER,
    );
    let (_taken, addr) = peer::address_in_use();
    run(program!(), &[&addr], b"").expect_one_line_error(&step, &[&addr, "in use"]);
}
