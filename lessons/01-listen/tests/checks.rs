//! The checks of lesson 1, in the order you meet them: the first failure is
//! your next step. Run them with `cargo test -p lesson-01-listen`.

use std::io::ErrorKind;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use lesson_01_listen::{bound_address, listen};
use seesaw_checks::program::{Server, run};
use seesaw_checks::report::{Step, describe_error, hint_for_kind, io_error_kind};
use seesaw_checks::{DEADLINE, localhost, peer, program, timing};

const CHAPTER: &str = "01-listen";

const LISTEN_HANGS: &str = "listen should return as soon as the socket is bound. \
     Does it call accept() or loop? Accepting connections is lesson 2.";

/// How long a call that waits for nothing (binding, asking an address) may
/// take before the check calls it a hang: it takes microseconds. Shorter than
/// the usual deadline, so that a hang in the first step is explained within 2 s.
const QUICK: Duration = Duration::from_millis(1000);

/// Calls the student's `listen(addr)`, with a deadline.
fn call_listen(step: &Step, addr: &str) -> anyhow::Result<TcpListener> {
    let owned = addr.to_string();
    timing::run_within(
        step,
        &format!("listen({addr:?})"),
        QUICK,
        LISTEN_HANGS,
        move || listen(&owned),
    )
}

/// Calls the student's `bound_address(&listener)`, with a deadline.
fn call_bound_address(step: &Step, listener: TcpListener) -> SocketAddr {
    let reported = timing::run_within(
        step,
        "bound_address(&listener)",
        QUICK,
        "bound_address only asks the listener; it waits for nothing.",
        move || bound_address(&listener),
    );
    step.ok("bound_address(&listener)", reported)
}

/// The address of a listener the student's code returned, for a report.
fn where_bound(listener: &TcpListener) -> String {
    match listener.local_addr() {
        Ok(addr) => format!("Ok(a listener bound to {addr})"),
        Err(error) => format!("Ok(a listener whose address is unknown: {error})"),
    }
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

/// Calls `listen(addr)` and fails unless it gives a listener bound to `wanted`
/// that a client can reach.
fn expect_listening_on(step: &Step, addr: &str, wanted: impl Fn(SocketAddr) -> bool, what: &str) {
    let call = format!("listen({addr:?})");
    let listener = step.ok(&call, call_listen(step, addr));
    let actual = listener
        .local_addr()
        .expect("a bound listener has an address");
    if !wanted(actual) {
        step.report()
            .did(&format!("called {call}"))
            .expected(&format!("a listener bound to {what}"))
            .got(&format!("a listener bound to {actual}"))
            .hint("pass `addr` to TcpListener::bind unchanged: no fixed IP address (like 0.0.0.0 or 127.0.0.1) or port, and no address you build yourself.")
            .fail();
    }
    expect_connectable(step, actual);
}

fn step_1_listen_on_the_address_you_are_given() {
    let step = Step::new(
        "step 1: listen on exactly the address you are given",
        CHAPTER,
    );
    let wanted = peer::unused_address();
    expect_listening_on(
        &step,
        &wanted.to_string(),
        |actual| actual == wanted,
        &wanted.to_string(),
    );
}

fn step_2_listen_on_ipv6_loopback_too() {
    let step = Step::new(
        "step 2: listen on an IPv6 address, [::1]:0, as well",
        CHAPTER,
    );
    if !localhost::has_ipv6() {
        return step.skip("this machine has no IPv6 loopback (::1)");
    }
    expect_listening_on(
        &step,
        "[::1]:0",
        |actual| actual.is_ipv6() && actual.ip().is_loopback(),
        "the IPv6 loopback address ::1",
    );
}

/// Listens on `addr` and fails unless bound_address reports the listener's
/// real address.
fn expect_reported(step: &Step, addr: &str) {
    let listener = step.ok(&format!("listen({addr:?})"), call_listen(step, addr));
    let actual = listener
        .local_addr()
        .expect("a bound listener has an address");
    let reported = call_bound_address(step, listener);
    if reported != actual {
        step.report()
            .did(&format!("called listen({addr:?}), then bound_address(&listener)"))
            .expected(&format!("{actual}, the address the OS gave the listener"))
            .got(&format!("{reported}"))
            .hint("the address you asked for says port 0, and may not be IPv4: ask the listener instead (TcpListener::local_addr), and build no address yourself.")
            .fail();
    }
}

fn step_3_report_the_port_the_os_picked() {
    let step = Step::new(
        "step 3: bound_address tells which port the OS picked for port 0, on IPv4 and IPv6",
        CHAPTER,
    );
    localhost::on_each_loopback(&step, |addr| expect_reported(&step, addr));
}

fn step_4_an_address_in_use_is_an_error_that_names_it() {
    let step = Step::new(
        "step 4: listening on an address already in use is an error naming it",
        CHAPTER,
    );
    let (_taken, addr) = peer::address_in_use();
    let did = format!("the check listened on {addr} itself, then called listen({addr:?})");
    let error = match call_listen(&step, &addr) {
        Err(error) => error,
        Ok(listener) => step
            .report()
            .did(&did)
            .expected("an error: address in use")
            .got(&where_bound(&listener))
            .hint("pass `addr` to TcpListener::bind unchanged, return its error, and fall back to no other address.")
            .fail(),
    };
    match io_error_kind(&error) {
        Some(ErrorKind::AddrInUse) => {}
        None => step
            .report()
            .did(&did)
            .expected("bind's io::Error (kind AddrInUse) kept inside your error, so that the program can advise what to try")
            .got(&describe_error(&error))
            .hint("map_err(|e| anyhow!(\"...{e}\")) turns the io::Error into text and loses its kind. \
                   anyhow's context methods add your words and keep the io::Error inside.")
            .fail(),
        Some(kind) => step
            .report()
            .did(&did)
            .expected("an io::Error of kind AddrInUse")
            .got(&describe_error(&error))
            .hint(hint_for_kind(kind).unwrap_or("bind the address you are given, and nothing else."))
            .fail(),
    }
    if !format!("{error:#}").contains(&addr) {
        step.report()
            .did(&did)
            .expected(&format!("the error's message to name the address, {addr}"))
            .got(&describe_error(&error))
            .hint("bind's own message says only `Address already in use`, not which address: name the address in your error, with .with_context(|| format!(\"... {addr}\")).")
            .fail();
    }
}

fn step_5_a_malformed_address_is_an_error() {
    let step = Step::new(
        "step 5: a malformed address is an error naming it, not a panic",
        CHAPTER,
    );
    // No port; a port above 65535, the highest there is (never a real one);
    // no address at all.
    for bad in ["127.0.0.1", "127.0.0.1:99999", "not an address"] {
        match call_listen(&step, bad) {
            Ok(listener) => step
                .report()
                .did(&format!("called listen({bad:?})"))
                .expected("an error: that is not an IP:PORT address")
                .got(&where_bound(&listener))
                .hint("use the address you are given; do not fall back to another one.")
                .fail(),
            Err(error) if !format!("{error:#}").contains(bad) => step
                .report()
                .did(&format!("called listen({bad:?})"))
                .expected(&format!("the error's message to name the address, {bad:?}"))
                .got(&describe_error(&error))
                .hint("the error of a malformed address does not say which text was wrong: name the address in it, with .with_context(|| format!(\"... {addr}\")) on each call that can fail (a bare ? passes the error on without your words).")
                .fail(),
            Err(_) => {}
        }
    }
}

/// Starts the program on `addr` and fails unless it prints where it listens
/// (an address of the family asked for) and keeps listening after a client connected.
fn expect_program_listens(step: &Step, addr: &str) {
    let mut server = Server::start(program!(), &[addr]);
    let printed = server.listening_address(step);
    let asked: SocketAddr = addr.parse().expect("the check asks for an IP:PORT address");
    if printed.ip() != asked.ip() || printed.port() == 0 {
        server
            .report(step)
            .expected(&format!(
                "`listening on {}`, with the port the OS picked",
                addr.replace(":0", ":PORT")
            ))
            .got(&format!("`listening on {printed}`"))
            .hint("main prints what bound_address returns: it must be the listener's own address.")
            .fail();
    }
    expect_connectable(step, printed);
    if server.has_exited() {
        server
            .report(step)
            .expected("the program to keep listening after a client connected")
            .got("it exited")
            .fail();
    }
}

fn step_6_the_program_listens_until_stopped() {
    let step = Step::new(
        "step 6: the program prints `listening on ADDR` and keeps listening, on IPv4 and IPv6",
        CHAPTER,
    );
    localhost::on_each_loopback(&step, |addr| expect_program_listens(&step, addr));
}

fn step_7_the_program_explains_an_address_in_use() {
    let step = Step::new(
        "step 7: the program explains an address in use in one line, exit code 1",
        CHAPTER,
    );
    let (_taken, addr) = peer::address_in_use();
    let finished = run(program!(), &[&addr], b"");
    if finished.code.is_none() {
        step.note_waited_out();
        finished
            .report(&step)
            .expected("the program to stop at once, with exit code 1: the address is in use")
            .got("it was still running, so the check stopped it")
            .observed("your listen returned a listener although the address was taken: return bind's error instead of trying another address.")
            .fail();
    }
    finished.expect_one_line_error(&step, &[&addr, "in use"]);
}

fn step_8_the_program_explains_a_bad_address() {
    let step = Step::new(
        "step 8: the program explains a malformed address in one line naming it, exit code 1",
        CHAPTER,
    );
    run(program!(), &["localhost"], b"").expect_one_line_error(&step, &["localhost", "IP:PORT"]);
}

seesaw_checks::checks![
    step_1_listen_on_the_address_you_are_given,
    step_2_listen_on_ipv6_loopback_too,
    step_3_report_the_port_the_os_picked,
    step_4_an_address_in_use_is_an_error_that_names_it,
    step_5_a_malformed_address_is_an_error,
    step_6_the_program_listens_until_stopped,
    step_7_the_program_explains_an_address_in_use,
    step_8_the_program_explains_a_bad_address,
];
