//! The checks of lesson 3, in the order you meet them: the first failure is
//! your next step. Run them with `cargo test -p lesson-03-dial`.

use std::io::ErrorKind;
use std::net::TcpStream;

use lesson_03_dial::dial;
use predicates::str::contains;
use seesaw_checks::peer::{CheckServer, unused_address};
use seesaw_checks::program::run;
use seesaw_checks::report::{Step, io_error_kind};
use seesaw_checks::{bounded, program};

const CHAPTER: &str = "03-dial";

const DIAL_HANGS: &str = "connecting to a listening server on this machine takes microseconds. \
     Does dial read from the connection, or loop?";

/// Calls the student's `dial(addr)`, with a deadline.
fn call_dial(step: &Step, addr: &str) -> anyhow::Result<TcpStream> {
    let owned = addr.to_string();
    bounded::run(step, &format!("dial({addr:?})"), DIAL_HANGS, move || {
        dial(&owned)
    })
}

/// Dials the check's server at `addr` and checks that the server saw exactly
/// this connection.
fn dial_and_compare(step: &Step, server: &CheckServer, addr: &str) {
    let call = format!("dial({addr:?})");
    step.transcript()
        .add(format!("check   listening on {}", server.addr()));
    let connection = step.ok(&call, call_dial(step, addr));
    let accepted = server.accept(step);
    let ours = connection
        .local_addr()
        .expect("a connected socket has a local address");
    let seen = accepted.peer_addr();
    if seen != Some(ours) {
        step.report()
            .did(&format!(
                "called {call}; the check's server accepted a connection from {seen:?}"
            ))
            .expected(&format!("that connection to come from your socket, {ours}"))
            .got("your socket is connected somewhere else")
            .hint("dial the address you are given, not a fixed one like 127.0.0.1:5555.")
            .fail();
    }
}

#[test]
fn step_1_connect_to_the_server() {
    let step = Step::new(
        "step 1: dial connects to the server at the address you are given",
        CHAPTER,
    );
    let server = CheckServer::start();
    dial_and_compare(&step, &server, &server.addr().to_string());
}

#[test]
fn step_2_connect_by_name() {
    let step = Step::new("step 2: dial connects by name: localhost:PORT", CHAPTER);
    let server = CheckServer::start();
    let addr = format!("localhost:{}", server.addr().port());
    dial_and_compare(&step, &server, &addr);
}

#[test]
fn step_3_refused_is_an_error_that_names_the_address() {
    let step = Step::new(
        "step 3: dialling where nothing listens is an error: refused, naming the address",
        CHAPTER,
    );
    let nowhere = unused_address().to_string();
    let call = format!("dial({nowhere:?})");
    let Err(error) = call_dial(&step, &nowhere) else {
        step.report()
            .did(&format!("{call}, where nothing listens"))
            .expected("an error: connection refused")
            .got("Ok(a connection)")
            .hint("dial the address you are given, not a fixed one.")
            .fail()
    };
    let message = format!("{error:#}");
    if io_error_kind(&error) != Some(ErrorKind::ConnectionRefused) || !message.contains(&nowhere) {
        step.report()
            .did(&format!("{call}, where nothing listens"))
            .expected(&format!("a `connection refused` error whose message contains {nowhere}"))
            .got(&format!("{message:?}"))
            .hint("keep connect's io::Error and add the address: .with_context(|| format!(\"could not connect to {addr}\")).")
            .fail();
    }
}

#[test]
fn step_4_a_malformed_address_is_an_error() {
    let step = Step::new(
        "step 4: a malformed address is an error, not a panic",
        CHAPTER,
    );
    // No port; a port above 65535, the highest there is (never a real one).
    for bad in ["127.0.0.1", "127.0.0.1:99999"] {
        match call_dial(&step, bad) {
            Ok(connection) => step
                .report()
                .did(&format!("called dial({bad:?})"))
                .expected("an error: that is not a HOST:PORT address")
                .got(&format!("a connection to {:?}", connection.peer_addr()))
                .hint("dial the address you are given; do not fall back to another one.")
                .fail(),
            Err(error) if !format!("{error:#}").contains(bad) => step
                .report()
                .did(&format!("called dial({bad:?})"))
                .expected(&format!("an error whose message contains {bad:?}"))
                .got(&format!("{:?}", format!("{error:#}")))
                .hint(
                    "name the address: .with_context(|| format!(\"could not connect to {addr}\")).",
                )
                .fail(),
            Err(_) => {}
        }
    }
}

#[test]
fn step_5_the_program_says_where_it_connected() {
    let step = Step::new(
        "step 5: the program prints `connected to REMOTE from LOCAL` and exits 0",
        CHAPTER,
    );
    let server = CheckServer::start();
    let addr = server.addr().to_string();
    let finished = run(program!(), &[&addr], b"");
    finished.expect_code(&step, 0).expect_stderr(
        &step,
        contains(format!("connected to {addr} from 127.0.0.1:")),
        "connected to ADDR from LOCAL",
    );
    // The connection waits in the check's backlog; its peer must be the LOCAL printed.
    let accepted = server.accept(&step);
    let local = accepted
        .peer_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    if !finished.stderr.contains(&format!("from {local}")) {
        finished
            .report(&step)
            .expected(&format!(
                "`from {local}`, the address the check's server saw"
            ))
            .got("another address")
            .fail();
    }
}

#[test]
fn step_6_the_program_explains_a_refused_connection() {
    let step = Step::new(
        "step 6: the program explains a refused connection in one line, exit code 1",
        CHAPTER,
    );
    let nowhere = unused_address().to_string();
    run(program!(), &[&nowhere], b"").expect_one_line_error(&step, &[&nowhere, "refused"]);
}

#[test]
fn step_7_the_program_explains_a_bad_argument() {
    let step = Step::new(
        "step 7: the program explains a malformed address, exit code 1",
        CHAPTER,
    );
    run(program!(), &["127.0.0.1"], b"").expect_one_line_error(&step, &["127.0.0.1", "HOST:PORT"]);
}
