//! The checks of lesson 4, in the order you meet them: the first failure is
//! your next step. Run them with `cargo test -p lesson-04-echo-once`.
//!
//! To check your server, the check plays the client; to check your client, the
//! check plays the server. Your client never talks to your server here.

use std::net::TcpStream;
use std::thread;

use lesson_04_echo_once::{client_turn, server_turn};
use seesaw_checks::bounded::{self, Running};
use seesaw_checks::bytes::show;
use seesaw_checks::peer::{CheckServer, End, PIECE_PAUSE, Peer, connected_pair, unused_address};
use seesaw_checks::program;
use seesaw_checks::program::{Server, run};
use seesaw_checks::report::Step;

const CHAPTER: &str = "04-echo-once";

const SERVER_HANGS: &str = "the client sent its message and now waits for the reply. \
     Does server_turn stop reading at the newline? read_to_end would wait for the client \
     to close, and the client waits for you: both read, and the seesaw is stuck.";

const CLIENT_HANGS: &str = "client_turn should return once the reply's newline has arrived. \
     Does it stop reading at the newline (read_until), rather than wait for end of file?";

/// Messages whose bytes must come back exactly: text, invalid UTF-8, NUL and
/// 0xFF, and the empty message (a lone newline).
const AWKWARD_MESSAGES: [&[u8]; 4] = [
    b"caf\xc3\xa9 \xe2\x98\x95\n",
    b"\xff\xfe not UTF-8 \x80\n",
    b"nul \x00 inside\n",
    b"\n",
];

/// Runs the student's server_turn on the server end of a fresh connection.
/// The connection closes when server_turn returns.
fn start_server_turn(step: &Step) -> (Peer, Running<anyhow::Result<Vec<u8>>>) {
    let (client, connection) = connected_pair(step);
    let running = bounded::start_with(
        step,
        "server_turn(&mut connection)",
        connection,
        server_turn,
    );
    (client, running)
}

/// Fails unless the check's client received exactly `expected`.
fn expect_reply(step: &Step, client: &mut Peer, expected: &[u8], hint: &str) {
    let reply = client.read_line();
    if reply.bytes != expected || reply.end != End::Newline {
        step.report()
            .expected(&format!("{} back", show(expected)))
            .got(&reply.describe())
            .hint(hint)
            .fail();
    }
}

#[test]
fn step_01_the_server_echoes_a_message() {
    let step = Step::new(
        "step 1: server_turn reads a message and writes it back",
        CHAPTER,
    );
    let (mut client, running) = start_server_turn(&step);
    client.send(b"hello\n");
    expect_reply(&step, &mut client, b"hello\n", SERVER_HANGS);
    let returned = running.finish_ok(&step, SERVER_HANGS);
    if returned != b"hello\n" {
        step.report()
            .expected("server_turn to return the message it echoed, b\"hello\\n\"")
            .got(&show(&returned))
            .fail();
    }
}

#[test]
fn step_02_the_server_echoes_bytes_exactly() {
    let step = Step::new(
        "step 2: server_turn echoes any bytes exactly: not only UTF-8, NUL, 0xFF, empty",
        CHAPTER,
    );
    for message in AWKWARD_MESSAGES {
        let (mut client, running) = start_server_turn(&step);
        client.send(message);
        expect_reply(
            &step,
            &mut client,
            message,
            "keep the message as bytes (Vec<u8>) from read to write: a String, read_line or \
             from_utf8_lossy changes bytes that are not UTF-8.",
        );
        running.finish_ok(&step, SERVER_HANGS);
    }
}

#[test]
fn step_03_the_server_reads_the_whole_message_in_pieces() {
    let step = Step::new(
        "step 3: server_turn reads up to the newline, even when the message comes in pieces",
        CHAPTER,
    );
    let (mut client, running) = start_server_turn(&step);
    client.send_in_pieces(&[b"hel", b"lo, wor", b"ld\n"]);
    expect_reply(
        &step,
        &mut client,
        b"hello, world\n",
        "one read() returns whatever has arrived so far, maybe only the first piece. \
         Keep reading until the newline: BufReader::read_until(b'\\n', ...).",
    );
    running.finish_ok(&step, SERVER_HANGS);
}

#[test]
fn step_04_the_server_handles_a_client_that_sends_nothing() {
    let step = Step::new(
        "step 4: server_turn returns when the client closes without sending anything",
        CHAPTER,
    );
    let (mut client, running) = start_server_turn(&step);
    client.close_sending();
    let returned = running.finish_ok(&step, "read_until returns Ok(0) at end of file.");
    if !returned.is_empty() {
        step.report()
            .expected("an empty message, b\"\"")
            .got(&show(&returned))
            .fail();
    }
}

/// The student's client_turn, run against the check's server: returns what the
/// check's server received and the running client.
fn start_client_turn(
    step: &Step,
    message: &'static [u8],
) -> (Peer, Running<anyhow::Result<Vec<u8>>>) {
    let server = CheckServer::start();
    let connection =
        TcpStream::connect(server.addr()).expect("the check could not connect to itself");
    let call = format!("client_turn(&mut connection, {})", show(message));
    let running = bounded::start_with(step, &call, connection, move |connection| {
        client_turn(connection, message)
    });
    (server.accept(step), running)
}

/// Fails unless the check's server received exactly `message`, newline included.
fn expect_message(step: &Step, server: &mut Peer, message: &[u8]) {
    let received = server.read_line();
    if received.bytes != message {
        step.report()
            .expected(&format!("your client to send {}", show(message)))
            .got(&received.describe())
            .hint("write the whole message with write_all, newline included, before you read.")
            .fail();
    }
}

fn expect_returned(step: &Step, returned: &[u8], expected: &[u8], hint: &str) {
    if returned != expected {
        step.report()
            .expected(&format!(
                "client_turn to return the reply, {}",
                show(expected)
            ))
            .got(&show(returned))
            .hint(hint)
            .fail();
    }
}

#[test]
fn step_05_the_client_sends_and_reads_the_reply() {
    let step = Step::new(
        "step 5: client_turn sends the message, then returns the reply",
        CHAPTER,
    );
    let (mut server, running) = start_client_turn(&step, b"hello\n");
    expect_message(&step, &mut server, b"hello\n");
    server.send(b"HELLO\n");
    let reply = running.finish_ok(&step, CLIENT_HANGS);
    expect_returned(
        &step,
        &reply,
        b"HELLO\n",
        "return the bytes you read, newline included.",
    );
}

#[test]
fn step_06_the_client_keeps_bytes_exact() {
    let step = Step::new(
        "step 6: client_turn keeps any bytes exactly: not only UTF-8, NUL, 0xFF, empty",
        CHAPTER,
    );
    for message in AWKWARD_MESSAGES {
        let (mut server, running) = start_client_turn(&step, message);
        expect_message(&step, &mut server, message);
        server.send(message);
        let reply = running.finish_ok(&step, CLIENT_HANGS);
        expect_returned(
            &step,
            &reply,
            message,
            "keep the reply as bytes (Vec<u8>): a String, read_line or from_utf8_lossy changes bytes that are not UTF-8.",
        );
    }
}

#[test]
fn step_07_the_client_waits_for_a_late_reply_in_pieces() {
    let step = Step::new(
        "step 7: client_turn waits for the whole reply, even when it comes late and in pieces",
        CHAPTER,
    );
    let (mut server, running) = start_client_turn(&step, b"ping\n");
    expect_message(&step, &mut server, b"ping\n");
    // The reply comes late: a client that does not wait gets nothing yet.
    thread::sleep(PIECE_PAUSE * 4);
    server.send_in_pieces(&[b"po", b"ng\n"]);
    let reply = running.finish_ok(&step, CLIENT_HANGS);
    expect_returned(
        &step,
        &reply,
        b"pong\n",
        "after writing, read until the reply's newline: one read() returns only what has \
         arrived so far. BufReader::read_until(b'\\n', ...) waits for the rest.",
    );
}

#[test]
fn step_08_the_client_reports_a_server_that_closes_without_replying() {
    let step = Step::new(
        "step 8: client_turn is an error when the server closes without replying",
        CHAPTER,
    );
    let (mut server, running) = start_client_turn(&step, b"anyone there?\n");
    expect_message(&step, &mut server, b"anyone there?\n");
    drop(server);
    step.transcript()
        .add("check   closed the connection without replying".to_string());
    let outcome = running.finish(
        &step,
        "read_until returns Ok(0) at end of file: the server is gone.",
    );
    if let Ok(reply) = outcome {
        step.report()
            .expected("an error: the server closed the connection without replying")
            .got(&format!("Ok({})", show(&reply)))
            .hint("read_until returns Ok(0) when the server has closed: return an error then, with bail!(...).")
            .fail();
    }
}

#[test]
fn step_09_the_server_program_echoes_one_message_per_connection() {
    let step = Step::new(
        "step 9: `server` echoes one message on each connection, one connection after another",
        CHAPTER,
    );
    let mut server = Server::start(program!(), &["server", "127.0.0.1:0"]);
    let addr = server.listening_address(&step);
    for message in [&b"first\n"[..], b"second \xff\n"] {
        let mut client = Peer::connect(&step, addr);
        server.wait_for_line(&step, &format!("accepted {}", client.local_addr()));
        client.send(message);
        expect_reply(&step, &mut client, message, SERVER_HANGS);
        let after = client.read_to_end();
        if after.end != End::Closed {
            server
                .report(&step)
                .expected("the server to close the connection after one message")
                .got(&after.describe())
                .fail();
        }
    }
}

#[test]
fn step_10_the_client_program_sends_a_line_and_prints_the_reply() {
    let step = Step::new(
        "step 10: `client` sends one line of stdin, newline added, and prints the reply",
        CHAPTER,
    );
    let server = CheckServer::start();
    let addr = server.addr().to_string();
    let answering = thread::spawn(move || {
        let step = Step::new("step 10 (the check's server)", CHAPTER);
        let mut client = server.accept(&step);
        let received = client.read_line();
        client.send(b"reply \x00\xff\n");
        received
    });
    let finished = run(program!(), &["client", &addr], b"no newline at the end");
    let Ok(received) = answering.join() else {
        finished
            .report(&step)
            .expected("your client to connect to the check's server and send a line")
            .got("no line arrived (see the check's server's message above)")
            .fail()
    };
    if received.bytes != b"no newline at the end\n" {
        finished
            .report(&step)
            .expected("the check's server to receive b\"no newline at the end\\n\"")
            .got(&received.describe())
            .fail();
    }
    finished
        .expect_code(&step, 0)
        .expect_stdout(&step, b"reply \x00\xff\n");
}

#[test]
fn step_11_the_client_program_explains_a_refused_connection() {
    let step = Step::new(
        "step 11: `client` explains a refused connection in one line, exit code 1",
        CHAPTER,
    );
    let nowhere = unused_address().to_string();
    run(program!(), &["client", &nowhere], b"hello\n")
        .expect_one_line_error(&step, &[&nowhere, "refused"]);
}
