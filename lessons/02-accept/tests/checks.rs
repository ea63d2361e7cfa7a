//! The checks of lesson 2, in the order you meet them: the first failure is
//! your next step. Run them with `cargo test -p lesson-02-accept`.

use std::io::ErrorKind;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use lesson_02_accept::accept_one;
use seesaw_checks::handed::{Handed, expect_works_both_ways};
use seesaw_checks::peer::{End, Peer};
use seesaw_checks::program::{Server, expect_address_in_use_explained};
use seesaw_checks::report::{Step, describe_error, io_error_kind};
use seesaw_checks::timing::{self, Timed};
use seesaw_checks::{localhost, program};

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
    let (listener, addr) = localhost::listen_on(addr);
    (Arc::new(listener), addr)
}

/// What accept_one returns.
type Accepted = anyhow::Result<(TcpStream, SocketAddr)>;

/// Starts the student's accept_one on its own thread.
fn start_accept(step: &Step, listener: &Arc<TcpListener>) -> Timed<Accepted> {
    let listener = Arc::clone(listener);
    timing::start(step, "accept_one(&listener)", move || accept_one(&listener))
}

/// What accept_one returned, in words.
fn describe_accepted(accepted: &Accepted) -> String {
    match accepted {
        Ok((_, peer)) => format!("Ok(a connection from {peer})"),
        Err(error) => describe_error(error),
    }
}

/// Accepts the client that waits, with the student's accept_one, and
/// returns the connection and the peer address.
fn accept_waiting(step: &Step, listener: &Arc<TcpListener>) -> (TcpStream, SocketAddr) {
    match start_accept(step, listener).finish_within(step, QUICK, ACCEPT_HANGS) {
        Ok(accepted) => accepted,
        Err(error) => step
            .report()
            .did(&format!(
                "a client connected to {}",
                where_listening(listener)
            ))
            .expected("accept_one(&listener) to succeed: a client was waiting")
            .got_error(&error)
            .hint(
                "a client was waiting, so accept() gave a connection and an address, and your \
                 accept_one returned an error instead. Return them as accept gave them: the \
                 address may be IPv6 as well as IPv4 (a SocketAddr holds either).",
            )
            .fail(),
    }
}

/// Where the check's listener listens, in words.
fn where_listening(listener: &TcpListener) -> String {
    match listener.local_addr() {
        Ok(addr) => addr.to_string(),
        Err(_) => "the check's listener".to_string(),
    }
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
    let (connection, peer) = accept_waiting(step, listener);
    expect_peer(step, &client, peer, &connection);
    (client, connection)
}

fn expect_peer(step: &Step, client: &Peer, peer: SocketAddr, connection: &TcpStream) {
    let client_addr = client.local_addr();
    let did = format!("a client connected from {client_addr}; then accept_one(&listener) returned");
    if peer != client_addr {
        step.report()
            .did(&did)
            .expected(&format!(
                "the peer address {client_addr}, where the client connected from"
            ))
            .got(&format!("{peer}"))
            .hint(&peer_hint(peer, connection))
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

/// The hint for a wrong peer address: what the address is, when the check can tell.
fn peer_hint(peer: SocketAddr, connection: &TcpStream) -> String {
    let rule = "Return the client's own address: the one TcpListener::accept gives you with \
                the connection (the connection's peer_addr() says the same).";
    match connection.local_addr() {
        Ok(local) if local == peer => format!(
            "{peer} is the server's own end (the listener's address, or the connection's \
             local_addr()), the same for every client. {rule}"
        ),
        _ => format!("{rule} Keep none from an earlier call, and build none yourself."),
    }
}

fn step_1_accept_waits_for_a_client() {
    let step = Step::new("step 1: accept_one waits until a client connects", CHAPTER);
    let (listener, addr) = check_listener("127.0.0.1:0");
    let accepting = start_accept(&step, &listener);
    step.transcript()
        .add(format!("check   listening on {addr}, no client yet"));
    if let Some((accepted, _)) = accepting.returned_by(&step, Instant::now() + PATIENCE) {
        step.report()
            .expected("accept_one(&listener) to wait for a client")
            .got(&format!(
                "it returned at once: {}",
                describe_accepted(&accepted)
            ))
            .hint(
                "TcpListener::accept blocks until a client connects: call it on the listener \
                 you are given. On a non-blocking listener, accept fails at once (WouldBlock) \
                 instead of waiting.",
            )
            .fail();
    }
    let client = Peer::connect(&step, addr);
    let accepted = accepting.finish_within(&step, QUICK, ACCEPT_HANGS);
    let (connection, peer) = step.ok("accept_one(&listener)", accepted);
    expect_peer(&step, &client, peer, &connection);
}

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
        let (connection, peer) = accept_waiting(&step, &listener);
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

/// accept_one's connection, in the words of the support crate's `handed`.
const ACCEPTED: Handed = Handed {
    function: "accept_one",
    made_by: "accept()",
    other_side: "client",
    waits: "A server waits for its client",
    business: "It must only accept; what to say to the client is the server's business, later.",
};

fn step_3_the_connection_works_both_ways() {
    let step = Step::new(
        "step 3: the connection accept_one returns carries bytes both ways, exactly, with no timeout set",
        CHAPTER,
    );
    let (listener, addr) = check_listener("127.0.0.1:0");
    let (mut client, mut connection) = accept_and_compare(&step, &listener, addr);
    expect_works_both_ways(&step, &mut client, &mut connection, &ACCEPTED);
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

fn step_4_accept_on_ipv6_too() {
    let step = Step::new(
        "step 4: accept_one works on an IPv6 listener, and returns the client's IPv6 address",
        CHAPTER,
    );
    if !localhost::has_ipv6() {
        return step.skip("this machine has no IPv6 loopback (::1)");
    }
    let (listener, addr) = check_listener("[::1]:0");
    let _client = accept_and_compare(&step, &listener, addr);
}

/// A socket that does not listen, as a `TcpListener`: one end of a connection.
/// `accept` fails on it at once, on every OS (EINVAL: kind InvalidInput),
/// whether the student's code makes it non-blocking or not.
fn not_listening() -> TcpListener {
    let (listener, addr) = localhost::listen_on("127.0.0.1:0");
    let connection = TcpStream::connect(addr).expect("the check could not connect to itself");
    drop(listener);
    #[cfg(unix)]
    return TcpListener::from(std::os::fd::OwnedFd::from(connection));
    #[cfg(windows)]
    return TcpListener::from(std::os::windows::io::OwnedSocket::from(connection));
}

fn step_5_a_failed_accept_is_an_error() {
    let step = Step::new(
        "step 5: when accepting fails, accept_one returns an error that says so, not a panic",
        CHAPTER,
    );
    // The simplest failure the check can cause, and one a loop that polls a
    // non-blocking listener (WouldBlock: no client yet) returns too.
    let listener = Arc::new(not_listening());
    step.transcript().add(
        "check   handed accept_one a socket that does not listen (one end of a connection): \
         accept fails on it"
            .to_string(),
    );
    let outcome = start_accept(&step, &listener).finish_within(
        &step,
        FAILS_AT_ONCE,
        "accept() failed, and accept_one did not return. Does it retry in a loop? \
         Return the error: the caller decides what to do (lesson 6 retries, with a pause).",
    );
    let did = "called accept_one on a socket whose accept fails (InvalidInput: it does not listen)";
    let error = match outcome {
        Err(error) => error,
        Ok((_, peer)) => step
            .report()
            .did(did)
            .expected("an error")
            .got(&format!("Ok(a connection from {peer})"))
            .fail(),
    };
    if io_error_kind(&error) != Some(ErrorKind::InvalidInput) {
        step.report()
            .did(did)
            .expected("accept's io::Error (kind InvalidInput) kept inside your error")
            .got(&describe_error(&error))
            .hint(
                "map_err(|e| anyhow!(\"...{e}\")) keeps only the text and loses the io::Error; \
                 .context(\"...\") adds your words and keeps it inside.",
            )
            .fail();
    }
    if error.chain().count() < 2 {
        step.report()
            .did(did)
            .expected("your error to say what failed (accepting a connection), around accept's own")
            .got(&describe_error(&error))
            .hint(
                "accept's own error says only what the OS said (`Invalid argument`), not what \
                 failed: add that, with .context(\"could not accept a connection\").",
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
        let mut client = server.connect(step, addr);
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

fn step_6_the_program_says_who_connected() {
    let step = Step::new(
        "step 6: the program prints `accepted PEER` for each client and closes its connection",
        CHAPTER,
    );
    localhost::on_each_loopback(&step, |addr| expect_program_accepts(&step, addr));
}

fn step_7_the_program_explains_an_address_in_use() {
    let step = Step::new(
        "step 7: the program explains an address in use in one line, exit code 1",
        CHAPTER,
    );
    expect_address_in_use_explained(&step, program!(), &[]);
}

seesaw_checks::checks![
    step_1_accept_waits_for_a_client,
    step_2_accept_two_clients_in_a_row,
    step_3_the_connection_works_both_ways,
    step_4_accept_on_ipv6_too,
    step_5_a_failed_accept_is_an_error,
    step_6_the_program_says_who_connected,
    step_7_the_program_explains_an_address_in_use,
];
