//! The checks of lesson 3, in the order you meet them: the first failure is
//! your next step. Run them with `cargo test -p lesson-03-dial`.

use std::io::ErrorKind;
use std::net::{AddrParseError, SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use lesson_03_dial::dial;
use predicates::str::contains;
use seesaw_checks::handed::{Handed, expect_reached, expect_works_both_ways, where_connected};
use seesaw_checks::localhost::{
    NO_IPV6, each_localhost_alone, has_ipv6, ipv6_loopback, localhost_addresses,
};
use seesaw_checks::peer::{CheckServer, accept_within, unused_address};
use seesaw_checks::program::run;
use seesaw_checks::report::{Step, describe_error, hint_for_kind, io_error_kind};
use seesaw_checks::{DEADLINE, program, timing};

const CHAPTER: &str = "03-dial";

const DIAL_HANGS: &str = "connecting to this machine takes microseconds, and so does being \
     refused. Does dial read from the connection, or retry in a loop?";

/// How long dial may take (it takes microseconds on this machine): shorter
/// than the usual deadline, so that a hang in the first step is explained
/// within 2 s.
const QUICK: Duration = Duration::from_millis(1000);

/// How long a dial that must fail (refused, malformed) may take: it fails in
/// microseconds. Short, because these steps come after others, and a hang
/// here must still be explained within 2 s of starting the checks.
const FAILS_AT_ONCE: Duration = Duration::from_millis(500);

/// Calls the student's `dial(addr)`. A hang fails the step after [`QUICK`],
/// a panic fails it too.
fn call_dial(step: &Step, addr: &str) -> anyhow::Result<TcpStream> {
    call_dial_within(step, addr, QUICK)
}

/// Calls the student's `dial(addr)`, which must fail. A hang fails the step
/// after [`FAILS_AT_ONCE`], a panic fails it too.
fn call_failing_dial(step: &Step, addr: &str) -> anyhow::Result<TcpStream> {
    call_dial_within(step, addr, FAILS_AT_ONCE)
}

/// Calls the student's `dial(addr)`; a hang fails the step after `wait`.
fn call_dial_within(step: &Step, addr: &str, wait: Duration) -> anyhow::Result<TcpStream> {
    let owned = addr.to_string();
    let call = format!("dial({addr:?})");
    timing::run_within(step, &call, wait, DIAL_HANGS, move || dial(&owned))
}

/// The hint for an error of dial where the address was good: the check
/// listens there, or (for a refused connection) nothing does.
fn dial_error_hint(error: &anyhow::Error) -> String {
    if error.chain().any(|cause| cause.is::<AddrParseError>()) {
        return "a name like localhost is not an IP address, so parse::<SocketAddr>() fails \
                on it. Give the text to TcpStream::connect as it is: it looks the name up \
                (ToSocketAddrs) and tries every address it finds."
            .to_string();
    }
    match io_error_kind(error) {
        Some(ErrorKind::ConnectionRefused) => "the check listens at the address it gave you, \
             so a refused connection means your dial went somewhere else: dial `addr` as it \
             is, not a fixed port or host."
            .to_string(),
        Some(ErrorKind::InvalidInput) => "the address is good, yet your code found nothing to \
             connect to (`could not resolve to any addresses`): it dropped some of the \
             addresses, for instance every IPv6 one. Give the text to TcpStream::connect as it is."
            .to_string(),
        Some(kind) => hint_for_kind(kind)
            .unwrap_or("dial the address you are given, as it is.")
            .to_string(),
        None => "dial the address you are given, as it is, and keep connect's io::Error \
                 inside your error."
            .to_string(),
    }
}

/// Calls `dial(addr)` and fails unless it returns a connection. `refused_hint`
/// explains a refused connection, when the check knows more than the kind.
fn expect_dialled(step: &Step, addr: &str, refused_hint: Option<&str>) -> TcpStream {
    let error = match call_dial(step, addr) {
        Ok(connection) => return connection,
        Err(error) => error,
    };
    let hint = match (io_error_kind(&error), refused_hint) {
        (Some(ErrorKind::ConnectionRefused), Some(hint)) => hint.to_string(),
        _ => dial_error_hint(&error),
    };
    step.report()
        .expected(&format!("dial({addr:?}) to return a connection"))
        .got(&describe_error(&error))
        .observed(&hint)
        .fail()
}

/// Dials `text` and fails unless the connection reached the check's
/// `listener`, from the socket dial returned.
fn dial_and_compare(step: &Step, listener: &TcpListener, text: &str, refused_hint: Option<&str>) {
    let listening = listener
        .local_addr()
        .expect("a bound listener has an address");
    step.transcript()
        .add(format!("check   listening on {listening}"));
    let connection = expect_dialled(step, text, refused_hint);
    let did = format!("called dial({text:?}); the check listens on {listening}");
    expect_reached(step, listener, &connection, &did);
}

fn step_1_connect_to_the_server() {
    let step = Step::new(
        "step 1: dial connects to the server at the address you are given",
        CHAPTER,
    );
    let listener = TcpListener::bind("127.0.0.1:0").expect("the check could not listen");
    let addr = listener
        .local_addr()
        .expect("a bound listener has an address");
    dial_and_compare(&step, &listener, &addr.to_string(), None);
}

fn step_2_connect_over_ipv6() {
    let step = Step::new(
        "step 2: dial connects to an IPv6 address, [::1]:PORT, as well",
        CHAPTER,
    );
    if !has_ipv6() {
        return step.skip(NO_IPV6);
    }
    let listener = TcpListener::bind("[::1]:0").expect("the check could not listen");
    let addr = listener
        .local_addr()
        .expect("a bound listener has an address");
    dial_and_compare(&step, &listener, &addr.to_string(), None);
}

fn step_3_connect_by_name_trying_every_address() {
    let step = Step::new(
        "step 3: dial connects by name, localhost:PORT, whichever address of localhost listens",
        CHAPTER,
    );
    let addresses = localhost_addresses();
    if addresses.len() < 2 {
        step.skip_part(
            "trying every address of localhost",
            &format!("localhost is only {addresses:?} here; dialling by name is checked"),
        );
    }
    step.transcript()
        .add(format!("check   localhost stands for {addresses:?} here"));
    // A listener on each address of localhost in turn, and none on the others:
    // dial must try them all until one answers.
    for (ip, listener, name) in each_localhost_alone() {
        let refused = format!(
            "localhost stands for {addresses:?} here, and the check listens on {ip} only: \
             your dial did not try every address. TcpStream::connect tries each in turn; \
             connect_timeout, or taking the first address, tries one."
        );
        dial_and_compare(&step, &listener, &name, Some(&refused));
    }
}

/// The connection dial hands back, in the words of step 4's reports.
const DIALLED: Handed = Handed {
    function: "dial",
    made_by: "connect",
    other_side: "server",
    waits: "A client waits for its server's reply",
    business: "It must only connect; what to say to the server is the client's business, later.",
};

fn step_4_the_connection_works_both_ways() {
    let step = Step::new(
        "step 4: the connection dial returns carries bytes both ways, exactly",
        CHAPTER,
    );
    let server = CheckServer::start();
    let mut connection = expect_dialled(&step, &server.addr().to_string(), None);
    let mut server = server.accept(&step);
    expect_works_both_ways(&step, &mut server, &mut connection, &DIALLED);
}

/// An address on the IPv6 loopback where nothing listens.
fn unused_ipv6_address() -> SocketAddr {
    let listener = TcpListener::bind("[::1]:0").expect("the check could not listen on ::1");
    listener
        .local_addr()
        .expect("a bound listener has an address")
}

/// Dials `nowhere`, where nothing listens, and fails unless the error is a
/// refused connection that names the address.
fn expect_refused(step: &Step, nowhere: &str) {
    let did = format!("called dial({nowhere:?}), where nothing listens");
    let error = match call_failing_dial(step, nowhere) {
        Err(error) => error,
        Ok(connection) => step
            .report()
            .did(&did)
            .expected("an error: connection refused")
            .got(&format!("Ok({})", where_connected(&connection)))
            .hint("dial the address you are given, not a fixed one.")
            .fail(),
    };
    match io_error_kind(&error) {
        Some(ErrorKind::ConnectionRefused) => {}
        None => step
            .report()
            .did(&did)
            .expected("connect's io::Error (kind ConnectionRefused) kept inside your error, so that the program can advise what to try")
            .got(&describe_error(&error))
            .hint("map_err(|e| anyhow!(\"...{e}\")) turns the io::Error into text and loses its kind. \
                   anyhow's context methods add your words and keep the io::Error inside.")
            .fail(),
        Some(_) => step
            .report()
            .did(&did)
            .expected("an io::Error of kind ConnectionRefused")
            .got(&describe_error(&error))
            .observed(&dial_error_hint(&error))
            .fail(),
    }
    if !format!("{error:#}").contains(nowhere) {
        step.report()
            .did(&did)
            .expected(&format!("the error's message to name the address, {nowhere}"))
            .got(&describe_error(&error))
            .hint("connect's own message says only `Connection refused`, not which address: name the address in your error, with .with_context(|| format!(\"... {addr}\")).")
            .fail();
    }
}

fn step_5_refused_is_an_error_that_names_the_address() {
    let step = Step::new(
        "step 5: dialling where nothing listens is an error: refused, naming the address",
        CHAPTER,
    );
    expect_refused(&step, &unused_address().to_string());
    if ipv6_loopback(&step, "over IPv6") {
        expect_refused(&step, &unused_ipv6_address().to_string());
    }
}

fn step_6_a_malformed_address_is_an_error() {
    let step = Step::new(
        "step 6: a malformed address is an error naming it, not a panic",
        CHAPTER,
    );
    // No port; a port above 65535, the highest there is (never a real one).
    for bad in ["127.0.0.1", "127.0.0.1:99999"] {
        match call_failing_dial(&step, bad) {
            Ok(connection) => step
                .report()
                .did(&format!("called dial({bad:?})"))
                .expected("an error: that is not a HOST:PORT address")
                .got(&where_connected(&connection))
                .hint("dial the address you are given; do not fall back to another one.")
                .fail(),
            Err(error) if !format!("{error:#}").contains(bad) => step
                .report()
                .did(&format!("called dial({bad:?})"))
                .expected(&format!("the error's message to name the address, {bad:?}"))
                .got(&describe_error(&error))
                .hint("the error of a malformed address does not say which text was wrong: name the address in every error, with .with_context(|| format!(\"... {addr}\")) on each call that can fail (a bare ? passes the error on without your words).")
                .fail(),
            Err(_) => {}
        }
    }
}

/// Runs the program against the check's `listener` and fails unless it prints
/// `connected to REMOTE from LOCAL` with the addresses the check saw, and exits 0.
fn expect_program_connects(step: &Step, listener: &TcpListener) {
    let addr = listener
        .local_addr()
        .expect("a bound listener has an address");
    let finished = run(program!(), &[&addr.to_string()], b"");
    finished.expect_code(step, 0).expect_stderr(
        step,
        contains(format!("connected to {addr} from ")),
        &format!("connected to {addr} from LOCAL"),
    );
    // The connection waits in the check's backlog; its peer must be the LOCAL printed.
    let Some(accepted) = accept_within(listener, DEADLINE) else {
        finished
            .report(step)
            .expected("a connection to the check's server")
            .got("none came")
            .fail()
    };
    let local = accepted
        .peer_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    if !finished.stderr.contains(&format!("from {local}")) {
        finished
            .report(step)
            .expected(&format!(
                "`from {local}`, the address the check's server saw"
            ))
            .got("another address")
            .fail();
    }
}

fn step_7_the_program_says_where_it_connected() {
    let step = Step::new(
        "step 7: the program prints `connected to REMOTE from LOCAL` and exits 0, IPv4 and IPv6",
        CHAPTER,
    );
    let listener = TcpListener::bind("127.0.0.1:0").expect("the check could not listen");
    expect_program_connects(&step, &listener);
    if ipv6_loopback(&step, "over IPv6") {
        let listener = TcpListener::bind("[::1]:0").expect("the check could not listen");
        expect_program_connects(&step, &listener);
    }
}

fn step_8_the_program_explains_a_refused_connection() {
    let step = Step::new(
        "step 8: the program explains a refused connection in one line, exit code 1",
        CHAPTER,
    );
    let nowhere = unused_address().to_string();
    run(program!(), &[&nowhere], b"").expect_one_line_error(&step, &[&nowhere, "refused"]);
}

fn step_9_the_program_explains_a_bad_argument() {
    let step = Step::new(
        "step 9: the program explains a malformed address in one line naming it, exit code 1",
        CHAPTER,
    );
    // An address without a port, which the program's advice never mentions:
    // only an error that names it shows it.
    let bad = "10.11.12.13";
    run(program!(), &[bad], b"").expect_one_line_error(&step, &[bad, "HOST:PORT"]);
}

seesaw_checks::checks![
    step_1_connect_to_the_server,
    step_2_connect_over_ipv6,
    step_3_connect_by_name_trying_every_address,
    step_4_the_connection_works_both_ways,
    step_5_refused_is_an_error_that_names_the_address,
    step_6_a_malformed_address_is_an_error,
    step_7_the_program_says_where_it_connected,
    step_8_the_program_explains_a_refused_connection,
    step_9_the_program_explains_a_bad_argument,
];
