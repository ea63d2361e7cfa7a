//! The checks of lesson 3, in the order you meet them: the first failure is
//! your next step. Run them with `cargo test -p lesson-03-dial`.

use std::io::{BufRead, BufReader, ErrorKind, Write};
use std::net::{AddrParseError, IpAddr, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread;
use std::time::Duration;

use lesson_03_dial::dial;
use predicates::str::contains;
use seesaw_checks::bytes::show;
use seesaw_checks::peer::{CheckServer, End, PIECE_PAUSE, Peer, unused_address};
use seesaw_checks::program::run;
use seesaw_checks::report::{Step, hint_for_kind, io_error_kind};
use seesaw_checks::{DEADLINE, bounded, program};

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
    let (done, returned) = mpsc::channel();
    let running = bounded::start(step, &call, move || {
        let outcome = dial(&owned);
        let _ = done.send(());
        outcome
    });
    // A panic drops `done` (Disconnected): `finish` below reports it.
    if let Err(RecvTimeoutError::Timeout) = returned.recv_timeout(wait) {
        step.note_waited_out();
        step.report()
            .expected(&format!("{call} to return at once"))
            .got(&format!(
                "still running after {} s: it hangs",
                wait.as_secs_f32()
            ))
            .observed(DIAL_HANGS)
            .fail();
    }
    running.finish(step, DIAL_HANGS)
}

/// An error in words: its message, and the kind of `io::Error` under it.
fn describe_error(error: &anyhow::Error) -> String {
    let message = format!("{error:#}");
    match io_error_kind(error) {
        Some(kind) => format!("the error {message:?} (an io::Error of kind {kind:?} inside)"),
        None => format!("the error {message:?}, with no io::Error inside"),
    }
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

/// Where a connection dial returned leads, for a report.
fn where_connected(connection: &TcpStream) -> String {
    match connection.peer_addr() {
        Ok(addr) => format!("a connection to {addr}"),
        Err(error) => format!("a connection to nowhere ({error})"),
    }
}

/// True when this machine has an IPv6 loopback address to listen on.
fn has_ipv6_loopback() -> bool {
    let usable = TcpListener::bind("[::1]:0").is_ok();
    if !usable {
        eprintln!("note: this machine has no IPv6 loopback (::1), so the IPv6 part is skipped.");
    }
    usable
}

/// Waits, at most [`DEADLINE`], for a connection on the check's `listener`.
fn accept_within(listener: &TcpListener) -> Option<TcpStream> {
    let listener = listener.try_clone().ok()?;
    let (sender, accepted) = mpsc::channel();
    thread::spawn(move || {
        let _ = sender.send(listener.accept());
    });
    match accepted.recv_timeout(DEADLINE) {
        Ok(Ok((stream, _))) => Some(stream),
        _ => None,
    }
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
    let ours = connection
        .local_addr()
        .expect("a connected socket has a local address");
    let did = format!("called dial({text:?}); the check listens on {listening}");
    match connection.peer_addr() {
        Ok(remote) if remote == listening => {}
        _ => step
            .report()
            .did(&did)
            .expected(&format!("a connection to {listening}"))
            .got(&where_connected(&connection))
            .hint("dial the address you are given, not a fixed one like 127.0.0.1:5555.")
            .fail(),
    }
    let Some(accepted) = accept_within(listener) else {
        step.report()
            .did(&did)
            .expected("the check's listener to accept your connection")
            .got("no connection came")
            .fail()
    };
    step.transcript()
        .add(format!("check   accepted a connection from you at {ours}"));
    if accepted.peer_addr().ok() != Some(ours) {
        step.report()
            .did(&did)
            .expected(&format!(
                "the connection the check accepted to come from your socket, {ours}"
            ))
            .got(&match accepted.peer_addr() {
                Ok(addr) => format!("one from {addr}"),
                Err(error) => format!("one from nowhere ({error})"),
            })
            .hint("return the connection you dialled, not another one.")
            .fail();
    }
}

#[test]
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

#[test]
fn step_2_connect_over_ipv6() {
    let step = Step::new(
        "step 2: dial connects to an IPv6 address, [::1]:PORT, as well",
        CHAPTER,
    );
    if !has_ipv6_loopback() {
        return;
    }
    let listener = TcpListener::bind("[::1]:0").expect("the check could not listen");
    let addr = listener
        .local_addr()
        .expect("a bound listener has an address");
    dial_and_compare(&step, &listener, &addr.to_string(), None);
}

/// The addresses the name `localhost` stands for on this machine, in order.
fn localhost_addresses() -> Vec<IpAddr> {
    let mut found: Vec<IpAddr> = Vec::new();
    let resolved = ("localhost", 0)
        .to_socket_addrs()
        .expect("this machine cannot look up localhost");
    for addr in resolved {
        if !found.contains(&addr.ip()) {
            found.push(addr.ip());
        }
    }
    found
}

/// A listener on `ip`, at a port where nothing listened on the `others` a
/// moment ago: a dial to localhost at that port reaches only this one.
fn listen_only_on(ip: IpAddr, others: &[IpAddr]) -> TcpListener {
    for _ in 0..20 {
        let listener = TcpListener::bind((ip, 0)).expect("the check could not listen");
        let port = listener
            .local_addr()
            .expect("a bound listener has an address")
            .port();
        // Each test listener is dropped at once: it only proves the port free.
        if others
            .iter()
            .all(|other| TcpListener::bind((*other, port)).is_ok())
        {
            return listener;
        }
    }
    panic!("the check found no port that is free on every address of localhost")
}

#[test]
fn step_3_connect_by_name_trying_every_address() {
    let step = Step::new(
        "step 3: dial connects by name, localhost:PORT, whichever address of localhost listens",
        CHAPTER,
    );
    let addresses = localhost_addresses();
    if addresses.len() < 2 {
        eprintln!(
            "note: localhost is only {addresses:?} on this machine, so trying every \
             address cannot be shown here; dialling by name is checked."
        );
    }
    step.transcript()
        .add(format!("check   localhost stands for {addresses:?} here"));
    // A listener on each address of localhost in turn, and none on the others:
    // dial must try them all until one answers.
    for (index, ip) in addresses.iter().enumerate() {
        let mut others = addresses.clone();
        others.remove(index);
        let listener = listen_only_on(*ip, &others);
        let port = listener
            .local_addr()
            .expect("a bound listener has an address")
            .port();
        let refused = format!(
            "localhost stands for {addresses:?} here, and the check listens on {ip} only: \
             your dial did not try every address. TcpStream::connect tries each in turn; \
             connect_timeout, or taking the first address, tries one."
        );
        dial_and_compare(
            &step,
            &listener,
            &format!("localhost:{port}"),
            Some(&refused),
        );
    }
}

/// Reads one line from `connection` on a thread of the check's own, with the
/// connection as dial left it (no timeout of the check's).
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

/// The hint for a read on dial's connection that failed with `kind`.
fn read_failed_hint(kind: ErrorKind) -> String {
    match kind {
        ErrorKind::WouldBlock | ErrorKind::TimedOut => "the read gave up before the server's \
             bytes came: the connection is non-blocking, or has a tiny read timeout. A client \
             waits for its server's reply: return the connection as connect gave it."
            .to_string(),
        _ => format!(
            "{} Return the connection as connect gave it: do not shut it down or close it.",
            hint_for_kind(kind).unwrap_or("the connection failed.")
        ),
    }
}

/// The check's server sends a line, a little late; the connection dial
/// returned must read exactly it.
fn expect_readable(step: &Step, server: &mut Peer, connection: &TcpStream) {
    let message = b"from the server to you\n";
    let reading = read_line_in_background(connection);
    // The server is a little slow: a connection that cannot wait for data
    // (non-blocking, or a tiny read timeout) fails here, as it would in a client.
    thread::sleep(PIECE_PAUSE * 2);
    server.send(message);
    let did = "the check read a line from the connection dial returned, while its server \
               sent one, a little late";
    let expected = format!("to read {}", show(message));
    match reading.recv_timeout(DEADLINE) {
        Ok(Ok(line)) if line == message => {}
        Ok(Ok(line)) => step
            .report()
            .did(did)
            .expected(&expected)
            .got(&match line.ends_with(b"\n") {
                true => show(&line),
                false => format!("{} and then end of file", show(&line)),
            })
            .hint("return the connection as connect gave it: do not read from it, shut it down or close it in dial.")
            .fail(),
        Ok(Err(error)) => step
            .report()
            .did(did)
            .expected(&expected)
            .got(&format!("an error: {error}"))
            .observed(&read_failed_hint(error.kind()))
            .fail(),
        Err(_) => {
            step.note_waited_out();
            step.report()
                .did(did)
                .expected(&expected)
                .got(&format!("nothing within {} s", DEADLINE.as_secs_f32()))
                .hint("return the connection you dialled, as it is.")
                .fail()
        }
    }
    step.transcript().add(format!(
        "check   read {} from the connection dial returned",
        show(message)
    ));
}

/// The connection dial returned writes a line: the check's server must read
/// exactly it, and nothing else.
fn expect_writable(step: &Step, server: &mut Peer, connection: &mut TcpStream) {
    let message = b"from you to the server\n";
    step.transcript().add(format!(
        "check   wrote {} to the connection dial returned",
        show(message)
    ));
    if let Err(error) = connection.write_all(message) {
        step.report()
            .did("the check wrote a line to the connection dial returned")
            .expected("the write to succeed")
            .got(&format!("an error: {error}"))
            .hint("return the connection as connect gave it: do not shut it down or close it.")
            .fail();
    }
    let received = server.read_line();
    if received.bytes != message || received.end != End::Newline {
        let report = step
            .report()
            .did("the check wrote a line to the connection dial returned; its server read")
            .expected(&format!("the server to read {}", show(message)));
        if received.bytes.is_empty() || message.starts_with(&received.bytes) {
            report.got_received(message, &received).fail();
        }
        report
            .got(&received.describe())
            .observed(&format!(
                "the check never wrote {}: your dial did. It must only connect; what \
                 to say to the server is the client's business, later.",
                show(&received.bytes)
            ))
            .fail();
    }
}

#[test]
fn step_4_the_connection_works_both_ways() {
    let step = Step::new(
        "step 4: the connection dial returns carries bytes both ways, exactly",
        CHAPTER,
    );
    let server = CheckServer::start();
    let mut connection = expect_dialled(&step, &server.addr().to_string(), None);
    let mut server = server.accept(&step);
    expect_readable(&step, &mut server, &connection);
    expect_writable(&step, &mut server, &mut connection);
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
            .hint("connect's own message says only `Connection refused`: add which address, with anyhow's context methods.")
            .fail();
    }
}

#[test]
fn step_5_refused_is_an_error_that_names_the_address() {
    let step = Step::new(
        "step 5: dialling where nothing listens is an error: refused, naming the address",
        CHAPTER,
    );
    expect_refused(&step, &unused_address().to_string());
    if has_ipv6_loopback() {
        expect_refused(&step, &unused_ipv6_address().to_string());
    }
}

#[test]
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
                .hint("the error of a malformed address does not say which text was wrong: add the address to every error, with anyhow's context methods.")
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
    let Some(accepted) = accept_within(listener) else {
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

#[test]
fn step_7_the_program_says_where_it_connected() {
    let step = Step::new(
        "step 7: the program prints `connected to REMOTE from LOCAL` and exits 0, IPv4 and IPv6",
        CHAPTER,
    );
    let listener = TcpListener::bind("127.0.0.1:0").expect("the check could not listen");
    expect_program_connects(&step, &listener);
    if has_ipv6_loopback() {
        let listener = TcpListener::bind("[::1]:0").expect("the check could not listen");
        expect_program_connects(&step, &listener);
    }
}

#[test]
fn step_8_the_program_explains_a_refused_connection() {
    let step = Step::new(
        "step 8: the program explains a refused connection in one line, exit code 1",
        CHAPTER,
    );
    let nowhere = unused_address().to_string();
    run(program!(), &[&nowhere], b"").expect_one_line_error(&step, &[&nowhere, "refused"]);
}

#[test]
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
