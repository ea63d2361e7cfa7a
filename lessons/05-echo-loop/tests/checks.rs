//! The checks of lesson 5, in the order you meet them: the first failure is
//! your next step. Run them with `cargo test -p lesson-05-echo-loop`.
//!
//! To check your server, the check plays the client; to check your client, the
//! check plays the server. Your client never talks to your server here.

use std::io::{BufReader, Cursor};
use std::thread;

use lesson_05_echo_loop::{
    Client, MAX_MESSAGE, Message, TOO_LONG_REPLY, read_message, serve_connection,
};
use seesaw_checks::bounded::{self, Running};
use seesaw_checks::bytes::show;
use seesaw_checks::peer::{CheckServer, End, Peer, connected_pair, spawn_echo_server};
use seesaw_checks::program;
use seesaw_checks::program::{Server, run};
use seesaw_checks::report::Step;

const CHAPTER: &str = "05-echo-loop";

const READ_HANGS: &str = "read_message reads from memory here, so it cannot wait for anything. \
     Does it loop without stopping at end of file (0 bytes)?";

const SERVER_HANGS: &str = "the check's client is waiting for you. Does serve_connection \
     stop reading at each newline, answer each message before reading the next, and \
     return at end of file (Message::End)?";

/// Calls the student's read_message on `input` until it returns `count` results.
fn read_messages(step: &Step, input: &[u8], count: usize) -> Vec<Message> {
    let call = format!("read_message on the input {}", show(input));
    let mut reader = BufReader::new(Cursor::new(input.to_vec()));
    let running = bounded::start(step, &call, move || {
        (0..count)
            .map(|_| read_message(&mut reader))
            .collect::<anyhow::Result<Vec<_>>>()
    });
    running.finish_ok(step, READ_HANGS)
}

fn expect_messages(step: &Step, input: &[u8], expected: &[Message], hint: &str) {
    let got = read_messages(step, input, expected.len());
    if got != expected {
        step.report()
            .did(&format!(
                "called read_message {} times on the input {}",
                expected.len(),
                show(input)
            ))
            .expected(&format!("{expected:?}"))
            .got(&format!("{got:?}"))
            .hint(hint)
            .fail();
    }
}

#[test]
fn step_01_read_message_finds_whole_messages() {
    let step = Step::new(
        "step 1: read_message returns each message, newline included, then End",
        CHAPTER,
    );
    expect_messages(
        &step,
        b"hello\n\xff\x00 bytes\n\n",
        &[
            Message::Line(b"hello\n".to_vec()),
            Message::Line(b"\xff\x00 bytes\n".to_vec()),
            Message::Line(b"\n".to_vec()),
            Message::End,
        ],
        "read_until(b'\\n', ...) reads up to and including the newline; it reads 0 bytes at end of file.",
    );
}

#[test]
fn step_02_read_message_finds_a_tail_without_newline() {
    let step = Step::new(
        "step 2: read_message returns the last bytes without a newline as a Tail",
        CHAPTER,
    );
    expect_messages(
        &step,
        b"one\nlast words",
        &[
            Message::Line(b"one\n".to_vec()),
            Message::Tail(b"last words".to_vec()),
            Message::End,
        ],
        "bytes that do not end with a newline, read before end of file, are a Message::Tail.",
    );
}

#[test]
fn step_03_read_message_stops_at_the_limit() {
    let step = Step::new(
        "step 3: read_message accepts MAX_MESSAGE bytes and refuses more, without reading on",
        CHAPTER,
    );
    let mut at_limit = vec![b'a'; MAX_MESSAGE - 1];
    at_limit.push(b'\n');
    expect_messages(
        &step,
        &at_limit,
        &[Message::Line(at_limit.clone()), Message::End],
        "a message of exactly MAX_MESSAGE bytes, newline included, is still fine.",
    );
    // 16 MiB without a newline: a reader without a limit reads it all.
    let flood = vec![b'x'; 16 * 1024 * 1024];
    expect_messages(
        &step,
        &flood,
        &[Message::TooLong],
        "read at most MAX_MESSAGE bytes: reader.take(MAX_MESSAGE as u64).read_until(b'\\n', ...). \
         When that returns MAX_MESSAGE bytes and no newline, the message is too long.",
    );
}

/// Runs the student's serve_connection on the server end of a fresh connection.
fn start_server(step: &Step) -> (Peer, Running<anyhow::Result<()>>) {
    let (client, connection) = connected_pair(step);
    // A second handle keeps the socket open until a panic has been recorded.
    let keep = connection
        .try_clone()
        .expect("the check could not clone its socket");
    let running = bounded::start_with(step, "serve_connection(connection)", keep, move |_| {
        serve_connection(connection)
    });
    (client, running)
}

/// Sends `message` and fails unless exactly the same bytes come back.
fn expect_echo(step: &Step, client: &mut Peer, message: &[u8]) {
    client.send(message);
    let reply = client.read_line();
    if reply.bytes != message {
        step.report()
            .expected(&format!("{} back", show(message)))
            .got(&reply.describe())
            .hint(SERVER_HANGS)
            .fail();
    }
}

/// Fails unless the server closes the connection: the check reads end of file.
fn expect_closed(step: &Step, client: &mut Peer, hint: &str) {
    let after = client.read_to_end();
    let closed = matches!(after.end, End::Closed | End::Failed(_));
    if !after.bytes.is_empty() || !closed {
        step.report()
            .expected("end of file: your server closes the connection")
            .got(&after.describe())
            .hint(hint)
            .fail();
    }
}

#[test]
fn step_04_the_server_echoes_many_messages_in_order() {
    let step = Step::new(
        "step 4: serve_connection echoes every message, in order, on one connection",
        CHAPTER,
    );
    let (mut client, running) = start_server(&step);
    for number in 1..=10 {
        expect_echo(&step, &mut client, format!("message {number}\n").as_bytes());
    }
    expect_echo(&step, &mut client, b"\xff\x00 not UTF-8\n");
    expect_echo(&step, &mut client, b"\n");
    client.close_sending();
    expect_closed(
        &step,
        &mut client,
        "at end of file (Message::End), return: that closes the connection.",
    );
    running.finish_ok(&step, SERVER_HANGS);
}

#[test]
fn step_05_the_server_echoes_a_message_in_pieces() {
    let step = Step::new(
        "step 5: serve_connection reads a whole message even when it comes in pieces",
        CHAPTER,
    );
    let (mut client, running) = start_server(&step);
    client.send_in_pieces(&[b"see", b"saw ", b"up and down\nsecond"]);
    let first = client.read_line();
    client.send(b" message\n");
    let second = client.read_line();
    if first.bytes != b"seesaw up and down\n" || second.bytes != b"second message\n" {
        step.report()
            .expected("b\"seesaw up and down\\n\" back, then b\"second message\\n\"")
            .got(&format!("{}, then {}", first.describe(), second.describe()))
            .hint("keep one BufReader for the whole connection: it holds bytes that arrived early for the next read.")
            .fail();
    }
    client.close_sending();
    expect_closed(&step, &mut client, "at end of file (Message::End), return.");
    running.finish_ok(&step, SERVER_HANGS);
}

#[test]
fn step_06_the_server_echoes_the_tail_then_closes() {
    let step = Step::new(
        "step 6: after the client's half-close, serve_connection echoes the last bytes, then closes",
        CHAPTER,
    );
    let (mut client, running) = start_server(&step);
    expect_echo(&step, &mut client, b"almost done\n");
    client.send(b"no newline here");
    client.close_sending();
    let rest = client.read_to_end();
    if rest.bytes != b"no newline here" || rest.end != End::Closed {
        step.report()
            .expected("b\"no newline here\" back, and then end of file")
            .got(&rest.describe())
            .hint("write a Message::Tail back like a Line; then the next read_message gives End: return, and the connection closes.")
            .fail();
    }
    running.finish_ok(&step, SERVER_HANGS);
}

#[test]
fn step_07_the_server_answers_a_message_too_long() {
    let step = Step::new(
        "step 7: a message over MAX_MESSAGE gets one error line, then the connection closes",
        CHAPTER,
    );
    let (mut client, running) = start_server(&step);
    // The server stops reading at the limit, so the check sends in the background.
    client.send_in_background(vec![b'x'; MAX_MESSAGE + 1000]);
    let reply = client.read_line();
    if reply.bytes != TOO_LONG_REPLY {
        step.report()
            .expected(&format!("{} as soon as you have read MAX_MESSAGE bytes", show(TOO_LONG_REPLY)))
            .got(&reply.describe())
            .hint("on Message::TooLong, write TOO_LONG_REPLY and return. Never wait for a newline beyond the limit.")
            .fail();
    }
    expect_closed(
        &step,
        &mut client,
        "after TOO_LONG_REPLY, return: that closes the connection.",
    );
    running.finish_ok(&step, SERVER_HANGS);
}

/// The student's client, running the given turns against the check's server.
fn start_client(
    step: &Step,
    call: &str,
    turns: impl FnOnce(&mut Client) -> anyhow::Result<Vec<Vec<u8>>> + Send + 'static,
) -> (Peer, Running<anyhow::Result<Vec<Vec<u8>>>>) {
    let server = CheckServer::start();
    let addr = server.addr().to_string();
    let running = bounded::start(step, call, move || {
        let mut client = Client::connect(&addr)?;
        turns(&mut client)
    });
    (server.accept(step), running)
}

/// Reads one line from the student's client; fails unless it is `expected`.
fn expect_sent(step: &Step, server: &mut Peer, expected: &[u8]) {
    let received = server.read_line();
    if received.bytes != expected {
        step.report()
            .expected(&format!("your client to send {}", show(expected)))
            .got(&received.describe())
            .hint(
                "write each message whole with write_all, then wait for its reply before the next.",
            )
            .fail();
    }
}

#[test]
fn step_08_the_client_takes_turns() {
    let step = Step::new(
        "step 8: Client::turn sends a message and returns the reply, turn after turn",
        CHAPTER,
    );
    let (mut server, running) = start_client(
        &step,
        "client.turn(b\"one\\n\"), then turn(b\"two\\n\")",
        |client| Ok(vec![client.turn(b"one\n")?, client.turn(b"two\n")?]),
    );
    expect_sent(&step, &mut server, b"one\n");
    // Two replies in one write: the second must wait in the client's buffer.
    server.send(b"ONE\n");
    expect_sent(&step, &mut server, b"two\n");
    server.send_in_pieces(&[b"T", b"WO\n"]);
    let replies = running.finish_ok(
        &step,
        "read the reply up to its newline with self.reader.read_until.",
    );
    if replies != [b"ONE\n".to_vec(), b"TWO\n".to_vec()] {
        step.report()
            .expected("the replies [b\"ONE\\n\", b\"TWO\\n\"]")
            .got(
                &replies
                    .iter()
                    .map(|reply| show(reply))
                    .collect::<Vec<_>>()
                    .join(", "),
            )
            .hint("read each reply with self.reader.read_until(b'\\n', ...), into a new Vec.")
            .fail();
    }
}

#[test]
fn step_09_the_client_finishes_with_a_half_close() {
    let step = Step::new(
        "step 9: Client::finish sends the last bytes, half-closes, and reads to the end",
        CHAPTER,
    );
    let server = CheckServer::start();
    let addr = server.addr().to_string();
    let running = bounded::start(&step, "client.finish(b\"bye\")", move || {
        Client::connect(&addr)?.finish(b"bye")
    });
    let mut peer = server.accept(&step);
    let received = peer.read_to_end();
    if received.bytes != b"bye" || received.end != End::Closed {
        step.report()
            .expected("b\"bye\" and then end of file: your client shut down its sending side")
            .got(&received.describe())
            .hint("after writing, call writer.shutdown(Shutdown::Write): the server reads end of file, and can still answer.")
            .fail();
    }
    peer.send(b"bye");
    peer.send(b" and goodbye");
    drop(peer);
    step.transcript()
        .add("check   closed the connection".to_string());
    let rest = running.finish_ok(
        &step,
        "read with reader.read_to_end: it returns when the server closes.",
    );
    if rest != b"bye and goodbye" {
        step.report()
            .expected("finish to return b\"bye and goodbye\", everything the server sent")
            .got(&show(&rest))
            .hint("read everything that is left with reader.read_to_end, and return it.")
            .fail();
    }
}

#[test]
fn step_10_the_client_reports_a_server_that_closes_first() {
    let step = Step::new(
        "step 10: Client::turn is an error when the server closes instead of replying",
        CHAPTER,
    );
    let (mut server, running) = start_client(&step, "client.turn(b\"hello?\\n\")", |client| {
        Ok(vec![client.turn(b"hello?\n")?])
    });
    expect_sent(&step, &mut server, b"hello?\n");
    drop(server);
    step.transcript()
        .add("check   closed the connection without replying".to_string());
    let outcome = running.finish(
        &step,
        "read_until returns Ok(0) when the server has closed.",
    );
    if let Ok(replies) = outcome {
        step.report()
            .expected("an error: the server closed the connection before replying")
            .got(&format!("Ok({replies:?})"))
            .hint("read_until returns Ok(0) when the server has closed: return an error then, with bail!(...).")
            .fail();
    }
}

#[test]
fn step_11_the_client_program_echoes_its_input() {
    let step = Step::new(
        "step 11: `client` with piped input prints exactly the replies, and exits 0",
        CHAPTER,
    );
    let addr = spawn_echo_server(&step).to_string();
    let input = b"one\ntwo \xff\x00\n\nthree, no newline";
    run(program!(), &["client", &addr], input)
        .expect_code(&step, 0)
        .expect_stdout(&step, input);
}

#[test]
fn step_12_the_client_program_reports_a_server_that_closes_first() {
    let step = Step::new(
        "step 12: `client` says so when the server closes first, and exits non-zero",
        CHAPTER,
    );
    let server = CheckServer::start();
    let addr = server.addr().to_string();
    let closing = thread::spawn(move || {
        let step = Step::new("step 12 (the check's server)", CHAPTER);
        let mut peer = server.accept(&step);
        peer.read_line();
    });
    let finished = run(program!(), &["client", &addr], b"one\ntwo\n");
    let _ = closing.join();
    finished.expect_one_line_error(&step, &["closed"]);
}

#[test]
fn step_13_the_server_program_serves_clients_one_after_another() {
    let step = Step::new(
        "step 13: `server` serves clients one after another, and survives a message too long",
        CHAPTER,
    );
    let mut server = Server::start(program!(), &["server", "127.0.0.1:0"]);
    let addr = server.listening_address(&step);

    let mut first = Peer::connect(&step, addr);
    expect_echo(&step, &mut first, b"first client\n");
    first.send(b"tail");
    first.close_sending();
    let rest = first.read_to_end();
    if rest.bytes != b"tail" || rest.end != End::Closed {
        server
            .report(&step)
            .expected("b\"tail\" back, then end of file")
            .got(&rest.describe())
            .fail();
    }
    server.wait_for_line(
        &step,
        &format!("closed the connection to {}", first.local_addr()),
    );

    let mut greedy = Peer::connect(&step, addr);
    greedy.send_in_background(vec![b'x'; MAX_MESSAGE + 1]);
    let reply = greedy.read_line();
    if reply.bytes != TOO_LONG_REPLY {
        server
            .report(&step)
            .expected(&show(TOO_LONG_REPLY))
            .got(&reply.describe())
            .fail();
    }

    let mut last = Peer::connect(&step, addr);
    expect_echo(&step, &mut last, b"still there?\n");
}
