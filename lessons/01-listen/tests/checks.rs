//! The checks of lesson 1, in the order you meet them: the first failure is
//! your next step. Run them with `cargo test -p lesson-01-listen`.

use std::net::{SocketAddr, TcpListener, TcpStream};

use lesson_01_listen::{bound_address, listen};
use seesaw_checks::program::{Server, expect_address_in_use_explained, run};
use seesaw_checks::report::{Step, io_error_kind};
use seesaw_checks::{DEADLINE, bounded, peer, program};

const CHAPTER: &str = "01-listen";

const LISTEN_HANGS: &str = "listen should return as soon as the socket is bound. \
     Does it call accept() or loop? Accepting connections is lesson 2.";

/// Calls the student's `listen(addr)`, with a deadline.
fn call_listen(step: &Step, addr: &str) -> anyhow::Result<TcpListener> {
    let owned = addr.to_string();
    bounded::run(
        step,
        &format!("listen({addr:?})"),
        LISTEN_HANGS,
        move || listen(&owned),
    )
}

/// Fails the step unless a client can connect to `addr`.
fn expect_connectable(step: &Step, addr: SocketAddr) {
    if let Err(error) = TcpStream::connect_timeout(&addr, DEADLINE) {
        step.report()
            .did(&format!("the check connected to {addr}"))
            .expected("the connection to succeed")
            .got(&format!("an error: {error}"))
            .hint("return the listener itself from listen, and keep it alive: dropping it closes the socket.")
            .fail();
    }
}

#[test]
fn step_1_listen_on_the_address_you_are_given() {
    let step = Step::new(
        "step 1: listen on exactly the address you are given",
        CHAPTER,
    );
    let wanted = peer::unused_address();
    let call = format!("listen({:?})", wanted.to_string());
    let listener = step.ok(&call, call_listen(&step, &wanted.to_string()));
    let actual = listener
        .local_addr()
        .expect("a bound listener has an address");
    if actual != wanted {
        step.report()
            .did(&format!("called {call}"))
            .expected(&format!("a listener bound to {wanted}"))
            .got(&format!("a listener bound to {actual}"))
            .hint("pass `addr` to TcpListener::bind unchanged: no fixed IP address (like 0.0.0.0) or port.")
            .fail();
    }
    expect_connectable(&step, actual);
}

#[test]
fn step_2_listen_on_ipv6_loopback_too() {
    let step = Step::new(
        "step 2: listen on an IPv6 address, [::1]:0, as well",
        CHAPTER,
    );
    if TcpListener::bind("[::1]:0").is_err() {
        eprintln!("note: this machine has no IPv6 loopback, so step 2 has nothing to check.");
        return;
    }
    let listener = step.ok("listen(\"[::1]:0\")", call_listen(&step, "[::1]:0"));
    let actual = listener
        .local_addr()
        .expect("a bound listener has an address");
    if !actual.ip().is_loopback() || !actual.is_ipv6() {
        step.report()
            .did("called listen(\"[::1]:0\")")
            .expected("a listener on the IPv6 loopback address ::1")
            .got(&format!("a listener bound to {actual}"))
            .hint("pass `addr` to TcpListener::bind as it is: it understands IPv4 and IPv6.")
            .fail();
    }
    expect_connectable(&step, actual);
}

#[test]
fn step_3_report_the_port_the_os_picked() {
    let step = Step::new(
        "step 3: bound_address tells which port the OS picked for port 0",
        CHAPTER,
    );
    let listener = step.ok("listen(\"127.0.0.1:0\")", call_listen(&step, "127.0.0.1:0"));
    let actual = listener
        .local_addr()
        .expect("a bound listener has an address");
    let reported = bounded::run(
        &step,
        "bound_address(&listener)",
        "bound_address only asks the listener.",
        move || bound_address(&listener),
    );
    let reported = step.ok("bound_address(&listener)", reported);
    if reported != actual {
        step.report()
            .did("called listen(\"127.0.0.1:0\"), then bound_address(&listener)")
            .expected(&format!("{actual}, the address the OS gave the listener"))
            .got(&format!("{reported}"))
            .hint("the address you asked for says port 0; ask the listener instead: TcpListener::local_addr.")
            .fail();
    }
}

#[test]
fn step_4_an_address_in_use_is_an_error_that_names_it() {
    let step = Step::new(
        "step 4: listening on an address already in use is an error naming it",
        CHAPTER,
    );
    let (_taken, addr) = peer::address_in_use();
    let outcome = call_listen(&step, &addr);
    let Err(error) = outcome else {
        step.report()
            .did(&format!(
                "the check listened on {addr} itself, then called listen({addr:?})"
            ))
            .expected("an error: address in use")
            .got("Ok(a listener)")
            .hint("pass `addr` to TcpListener::bind unchanged, and return its error with ?.")
            .fail()
    };
    let message = format!("{error:#}");
    if io_error_kind(&error) != Some(std::io::ErrorKind::AddrInUse) || !message.contains(&addr) {
        step.report()
            .did(&format!("the check listened on {addr} itself, then called listen({addr:?})"))
            .expected(&format!("an `address in use` error whose message contains {addr}"))
            .got(&format!("{message:?}"))
            .hint("keep bind's io::Error and add the address: .with_context(|| format!(\"could not listen on {addr}\")).")
            .fail();
    }
}

#[test]
fn step_5_a_malformed_address_is_an_error() {
    let step = Step::new(
        "step 5: a malformed address is an error, not a panic",
        CHAPTER,
    );
    // No port; a port above 65535, the highest there is (never a real one);
    // no address at all.
    for bad in ["127.0.0.1", "127.0.0.1:99999", "not an address"] {
        let outcome = call_listen(&step, bad);
        match outcome {
            Ok(listener) => step
                .report()
                .did(&format!("called listen({bad:?})"))
                .expected("an error: that is not an IP:PORT address")
                .got(&format!("a listener on {:?}", listener.local_addr()))
                .hint("use the address you are given; do not fall back to another one.")
                .fail(),
            Err(error) if !format!("{error:#}").contains(bad) => step
                .report()
                .did(&format!("called listen({bad:?})"))
                .expected(&format!("an error whose message contains {bad:?}"))
                .got(&format!("{:?}", format!("{error:#}")))
                .hint(
                    "name the address: .with_context(|| format!(\"could not listen on {addr}\")).",
                )
                .fail(),
            Err(_) => {}
        }
    }
}

#[test]
fn step_6_the_program_listens_until_stopped() {
    let step = Step::new(
        "step 6: the program prints `listening on ADDR` and keeps listening",
        CHAPTER,
    );
    let mut server = Server::start(program!(), &["127.0.0.1:0"]);
    let addr = server.listening_address(&step);
    expect_connectable(&step, addr);
    if server.has_exited() {
        server
            .report(&step)
            .expected("the program to keep listening after a client connected")
            .got("it exited")
            .fail();
    }
}

#[test]
fn step_7_the_program_explains_an_address_in_use() {
    let step = Step::new(
        "step 7: the program explains an address in use in one line, exit code 1",
        CHAPTER,
    );
    expect_address_in_use_explained(&step, program!(), &[]);
}

#[test]
fn step_8_the_program_explains_a_bad_address() {
    let step = Step::new(
        "step 8: the program explains a malformed address, exit code 1",
        CHAPTER,
    );
    run(program!(), &["localhost"], b"").expect_one_line_error(&step, &["localhost", "IP:PORT"]);
}
