//! The checks of lesson 2, in the order you meet them: the first failure is
//! your next step. Run them with `cargo test -p lesson-02-accept`.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use lesson_02_accept::accept_one;
use seesaw_checks::bounded::{self, Running};
use seesaw_checks::peer::{End, Peer};
use seesaw_checks::program;
use seesaw_checks::program::{Server, expect_address_in_use_explained};
use seesaw_checks::report::Step;

const CHAPTER: &str = "02-accept";

const ACCEPT_HANGS: &str = "a client connected, so accept() should have returned. \
     Do you call accept on the listener you were given?";

/// How long accept_one must keep waiting when no client has come yet.
const PATIENCE: Duration = Duration::from_millis(300);

/// A listener of the check's own, shared with the student's accept_one.
fn check_listener() -> (Arc<TcpListener>, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("the check could not listen");
    let addr = listener
        .local_addr()
        .expect("a bound listener has an address");
    (Arc::new(listener), addr)
}

/// Starts the student's accept_one on its own thread.
fn start_accept(
    step: &Step,
    listener: &Arc<TcpListener>,
) -> Running<anyhow::Result<(TcpStream, SocketAddr)>> {
    let listener = Arc::clone(listener);
    bounded::start(step, "accept_one(&listener)", move || accept_one(&listener))
}

/// Connects a client, accepts it with the student's accept_one, and checks that
/// the peer address is the client's own.
fn accept_and_compare(step: &Step, listener: &Arc<TcpListener>, addr: SocketAddr) -> TcpStream {
    let client = Peer::connect(step, addr);
    let accepting = start_accept(step, listener);
    let (connection, peer) = step.ok(
        "accept_one(&listener)",
        accepting.finish(step, ACCEPT_HANGS),
    );
    expect_peer(step, &client, peer, &connection);
    connection
}

fn expect_peer(step: &Step, client: &Peer, peer: SocketAddr, connection: &TcpStream) {
    let client_addr = client.local_addr();
    if peer != client_addr {
        step.report()
            .did(&format!("a client connected from {client_addr}; then accept_one(&listener) returned"))
            .expected(&format!("the peer address {client_addr}, where the client connected from"))
            .got(&format!("{peer}"))
            .hint("return the address that TcpListener::accept gives you with the connection, not the listener's own.")
            .fail();
    }
    if connection.peer_addr().ok() != Some(client_addr) {
        step.report()
            .did(&format!(
                "a client connected from {client_addr}; then accept_one(&listener) returned"
            ))
            .expected("the connection that accept() returned, connected to that client")
            .got(&format!(
                "a socket connected to {:?}",
                connection.peer_addr()
            ))
            .fail();
    }
}

#[test]
fn step_1_accept_waits_for_a_client() {
    let step = Step::new("step 1: accept_one waits until a client connects", CHAPTER);
    let (listener, addr) = check_listener();
    let accepting = start_accept(&step, &listener);
    step.transcript()
        .add(format!("check   listening on {addr}, no client yet"));
    accepting.expect_still_running(
        PATIENCE,
        &step,
        "a client",
        "TcpListener::accept blocks until a client connects; call it on the listener \
         you are given, and do not make it non-blocking.",
    );
    let client = Peer::connect(&step, addr);
    let (connection, peer) = step.ok(
        "accept_one(&listener)",
        accepting.finish(&step, ACCEPT_HANGS),
    );
    expect_peer(&step, &client, peer, &connection);
}

#[test]
fn step_2_accept_two_clients_in_a_row() {
    let step = Step::new(
        "step 2: two clients in a row are each accepted, each with its own address",
        CHAPTER,
    );
    let (listener, addr) = check_listener();
    let _first = accept_and_compare(&step, &listener, addr);
    let _second = accept_and_compare(&step, &listener, addr);
}

#[test]
fn step_3_the_program_says_who_connected() {
    let step = Step::new(
        "step 3: the program prints `accepted PEER` for each client and closes its connection",
        CHAPTER,
    );
    let mut server = Server::start(program!(), &["127.0.0.1:0"]);
    let addr = server.listening_address(&step);
    for _ in 0..2 {
        let mut client = Peer::connect(&step, addr);
        let line = server.wait_for_line(&step, "accepted ");
        let client_addr = client.local_addr().to_string();
        if !line.ends_with(&client_addr) {
            server
                .report(&step)
                .expected(&format!("`accepted {client_addr}`, the check's client"))
                .got(&line)
                .fail();
        }
        let received = client.read_to_end();
        if received.end != End::Closed {
            server
                .report(&step)
                .expected("the program to close the connection (the check reads end of file)")
                .got(&received.describe())
                .fail();
        }
    }
}

#[test]
fn step_4_the_program_explains_an_address_in_use() {
    let step = Step::new(
        "step 4: the program explains an address in use in one line, exit code 1",
        CHAPTER,
    );
    expect_address_in_use_explained(&step, program!(), &[]);
}
