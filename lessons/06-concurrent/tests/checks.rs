//! The checks of lesson 6, in the order you meet them: the first failure is
//! your next step. Run them with `cargo test -p lesson-06-concurrent`.
//!
//! The check plays many clients at once against your serve_concurrently. The
//! OS completes a client's connection before your server accepts it (the
//! listen backlog), so a connection alone proves nothing: each check waits for
//! the echo, with a deadline.

use std::net::{SocketAddr, TcpListener};

use lesson_06_concurrent::serve_concurrently;
use seesaw_checks::bounded::{self, Running};
use seesaw_checks::bytes::show;
use seesaw_checks::peer::{End, Peer};
use seesaw_checks::program;
use seesaw_checks::program::{Server, expect_address_in_use_explained};
use seesaw_checks::report::Step;

const CHAPTER: &str = "06-concurrent";

const ONE_AT_A_TIME: &str = "the server still talks to another client and has not \
     served this one. Give each connection a thread of its own \
     (thread::spawn(move || serve_client(connection, peer))), and do not join it: \
     go straight back to accepting.";

/// Starts the student's serve_concurrently on a listener of the check's own.
/// It runs for ever, as a server should; the check never waits for it.
fn start_server(step: &Step) -> (SocketAddr, Running<anyhow::Result<()>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("the check could not listen");
    let addr = listener
        .local_addr()
        .expect("a bound listener has an address");
    let running = bounded::start(step, "serve_concurrently(listener)", move || {
        serve_concurrently(listener)
    });
    (addr, running)
}

/// Sends `message` and fails unless the same bytes come back.
fn expect_echo(step: &Step, client: &mut Peer, message: &[u8], hint: &str) {
    client.send(message);
    expect_reply(step, client, message, hint);
}

/// Fails unless the next line the client reads is `message`.
fn expect_reply(step: &Step, client: &mut Peer, message: &[u8], hint: &str) {
    let reply = client.read_line();
    if reply.bytes != message {
        step.report()
            .did(&format!(
                "client {} sent {}",
                client.local_addr(),
                show(message)
            ))
            .expected(&format!("{} back", show(message)))
            .got(&reply.describe())
            .hint(hint)
            .fail();
    }
}

/// Fails if serve_concurrently has returned: a server runs for ever.
fn expect_still_serving(step: &Step, server: &Running<anyhow::Result<()>>) {
    server.expect_still_running(
        std::time::Duration::ZERO,
        step,
        "the next client, for ever",
        "serve_concurrently should loop for ever: do not return, not even when a client fails.",
    );
}

fn connect_many(step: &Step, addr: SocketAddr, count: usize) -> Vec<Peer> {
    (0..count).map(|_| Peer::connect(step, addr)).collect()
}

#[test]
fn step_01_one_client_is_served() {
    let step = Step::new(
        "step 1: serve_concurrently echoes a client's messages",
        CHAPTER,
    );
    let (addr, server) = start_server(&step);
    let mut client = Peer::connect(&step, addr);
    expect_echo(
        &step,
        &mut client,
        b"hello\n",
        "serve each client with serve_client(connection, peer).",
    );
    expect_echo(
        &step,
        &mut client,
        b"again\n",
        "serve each client with serve_client(connection, peer).",
    );
    client.close_sending();
    let rest = client.read_to_end();
    if rest.end != End::Closed {
        step.report()
            .expected("end of file once the check's client has closed its sending side")
            .got(&rest.describe())
            .fail();
    }
    expect_still_serving(&step, &server);
}

#[test]
fn step_02_an_idle_client_does_not_block_another() {
    let step = Step::new(
        "step 2: while one client stays idle, another is served",
        CHAPTER,
    );
    let (addr, _server) = start_server(&step);
    let mut idle = Peer::connect(&step, addr);
    let mut busy = Peer::connect(&step, addr);
    expect_echo(&step, &mut busy, b"is anybody there?\n", ONE_AT_A_TIME);
    expect_echo(&step, &mut idle, b"my turn now\n", ONE_AT_A_TIME);
}

#[test]
fn step_03_clients_are_served_in_reverse_order() {
    let step = Step::new(
        "step 3: five clients connect, then each is served, the last first",
        CHAPTER,
    );
    let (addr, _server) = start_server(&step);
    let mut clients = connect_many(&step, addr, 5);
    for (number, client) in clients.iter_mut().enumerate().rev() {
        expect_echo(
            &step,
            client,
            format!("client {number}\n").as_bytes(),
            ONE_AT_A_TIME,
        );
    }
}

#[test]
fn step_04_messages_of_ten_clients_interleave() {
    let step = Step::new(
        "step 4: ten clients take turns, message after message, all at once",
        CHAPTER,
    );
    let (addr, _server) = start_server(&step);
    let mut clients = connect_many(&step, addr, 10);
    for round in 0..3 {
        for (number, client) in clients.iter_mut().enumerate() {
            client.send(format!("round {round} from client {number}\n").as_bytes());
        }
        for (number, client) in clients.iter_mut().enumerate() {
            let message = format!("round {round} from client {number}\n");
            expect_reply(&step, client, message.as_bytes(), ONE_AT_A_TIME);
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
    let mut doomed = Peer::connect(&step, addr);
    doomed.send(b"hello\n");
    doomed.send(b"half a mess");
    doomed.reset();
    let mut next = Peer::connect(&step, addr);
    expect_echo(
        &step,
        &mut next,
        b"still serving?\n",
        "a connection's error belongs to that connection: report it (serve_client does) \
         and go on accepting. Never end the server with ? on one client's error.",
    );
    expect_still_serving(&step, &server);
}

#[test]
fn step_06_a_new_client_is_served_after_all_have_gone() {
    let step = Step::new(
        "step 6: after every client has gone, a new client is still served",
        CHAPTER,
    );
    let (addr, server) = start_server(&step);
    for _ in 0..3 {
        let mut client = Peer::connect(&step, addr);
        expect_echo(&step, &mut client, b"hi\n", ONE_AT_A_TIME);
        client.close_sending();
        client.read_to_end();
    }
    let mut late = Peer::connect(&step, addr);
    expect_echo(
        &step,
        &mut late,
        b"am I too late?\n",
        "keep accepting in a loop for ever: the server must not stop when its clients have gone.",
    );
    expect_still_serving(&step, &server);
}

#[test]
fn step_07_a_hundred_clients_at_once() {
    let step = Step::new(
        "step 7: a hundred clients connected at the same time are all served",
        CHAPTER,
    );
    let (addr, _server) = start_server(&step);
    let mut clients = connect_many(&step, addr, 100);
    for (number, client) in clients.iter_mut().enumerate() {
        client.send(format!("client {number}\n").as_bytes());
    }
    for (number, client) in clients.iter_mut().enumerate().rev() {
        expect_reply(
            &step,
            client,
            format!("client {number}\n").as_bytes(),
            ONE_AT_A_TIME,
        );
    }
}

#[test]
fn step_08_the_server_program_serves_clients_at_once() {
    let step = Step::new(
        "step 8: `server` serves two clients at once, and says whom it accepted",
        CHAPTER,
    );
    let mut server = Server::start(program!(), &["server", "127.0.0.1:0"]);
    let addr = server.listening_address(&step);
    let mut idle = Peer::connect(&step, addr);
    server.wait_for_line(&step, &format!("accepted {}", idle.local_addr()));
    let mut busy = Peer::connect(&step, addr);
    server.wait_for_line(&step, &format!("accepted {}", busy.local_addr()));
    expect_echo(&step, &mut busy, b"second client first\n", ONE_AT_A_TIME);
    expect_echo(&step, &mut idle, b"first client last\n", ONE_AT_A_TIME);
}

#[test]
fn step_09_the_server_program_explains_an_address_in_use() {
    let step = Step::new(
        "step 9: `server` explains an address in use in one line, exit code 1",
        CHAPTER,
    );
    expect_address_in_use_explained(&step, program!(), &["server"]);
}
