//! The checks of lesson 4, in the order you meet them: the first failure is
//! your next step. Run them with `cargo test -p lesson-04-echo-once`.
//!
//! To check your server, the check plays the client; to check your client, the
//! check plays the server. The last check has your client talk to your server,
//! with the check in the middle, passing the bytes on and noting them.
//!
//! The helpers of steps 1 to 12 (your turns on the check's connections) are in
//! `checks/turns.rs`.

use std::net::SocketAddr;
use std::thread;
use std::time::Duration;

use seesaw_checks::bytes::show;
use seesaw_checks::fixtures::xs;
use seesaw_checks::localhost;
use seesaw_checks::peer::{CheckServer, End, Peer, Received, accept_within, unused_address};
use seesaw_checks::program::{Finished, run};
use seesaw_checks::relay::Relay;
use seesaw_checks::report::{Step, TODO_HINT};
use seesaw_checks::watched::{SAID_BY_NOW, WatchedServer};
use seesaw_checks::{DEADLINE, program};

#[path = "checks/turns.rs"]
mod turns;

use turns::{
    client_turn_answered, expect_echo, expect_echo_of_pieces, expect_long_echo, expect_message,
    expect_prompt_echo, expect_returned, got_reply, start_client_turn, start_server_turn, vanish,
};

const CHAPTER: &str = "04-echo-once";

const SERVER_HANGS: &str = "The client sent its message and now waits for the reply. \
     Does server_turn stop reading at the newline? Reading to end of file would wait for \
     the client to close, and the client waits for you: both read, and the seesaw is stuck.";

const CLIENT_HANGS: &str = "client_turn should return once the reply's newline has arrived. \
     Does it stop reading at the newline, whatever the reply's length, rather than wait for \
     end of file or for as many bytes as it sent?";

/// How soon the echo of a message that came whole must come back (step 3).
/// On one machine it takes microseconds: this leaves room for a loaded one.
const PROMPT: Duration = Duration::from_millis(500);

/// How far apart the pieces of step 3's message come: two gaps are longer
/// than [`PROMPT`], so that no wait before a single read passes both.
const PIECE_GAP: Duration = Duration::from_millis(300);

/// How long the check waits when it expects nothing (more) to come.
const QUIET: Duration = Duration::from_millis(250);

/// How long the check waits for a reply, an end of file, or your function to
/// return. On one machine each takes microseconds; this is shorter than the
/// usual deadline so that a hang is explained within 2 s of starting the checks.
const REPLY_WAIT: Duration = Duration::from_millis(1000);

/// Messages whose bytes must come back exactly: text, invalid UTF-8, NUL,
/// the empty message (a lone newline), spaces and tabs at either end, a `\r`
/// before the newline, and 0xFF as the last byte before it.
const AWKWARD_MESSAGES: [&[u8]; 7] = [
    b"caf\xc3\xa9 \xe2\x98\x95\n",
    b"\xff\xfe not UTF-8 \x80\n",
    b"nul \x00 inside\n",
    b"\n",
    b"  spaces at both ends  \n",
    b"\ttabs\tand a CR\r\n",
    b"ends in 0xFF \xff\n",
];

// Your server_turn, with the check as its client.

fn step_01_the_server_echoes_a_message() {
    let step = Step::new(
        "step 1: server_turn reads a message and writes it back",
        CHAPTER,
    );
    let (mut client, turn) = start_server_turn(&step);
    client.send(b"hello\n");
    expect_echo(&step, client, turn, b"hello\n", b"hello\n");
}

fn step_02_the_server_echoes_bytes_exactly() {
    let step = Step::new(
        "step 2: server_turn echoes any bytes exactly: not only UTF-8, NUL, 0xFF, spaces, \\r",
        CHAPTER,
    );
    // Each message on a connection of its own, all sent at once: code that
    // is slow to answer costs its time once, not once a message.
    let turns: Vec<_> = AWKWARD_MESSAGES
        .into_iter()
        .enumerate()
        .map(|(index, message)| {
            let (client, turn) = start_server_turn(&step);
            let mut client = client.named(&format!("client {}", index + 1));
            client.send(message);
            (message, client, turn)
        })
        .collect();
    for (message, client, turn) in turns {
        expect_echo(&step, client, turn, message, message);
    }
}

fn step_03_the_server_reads_the_whole_message_in_pieces() {
    let step = Step::new(
        "step 3: server_turn reads up to the newline, however the message comes: whole, in pieces, or longer than any buffer",
        CHAPTER,
    );
    // Whole, at once: the echo comes at once. Then in pieces: nothing comes
    // back before the newline, and then all of it. Code that waits a while
    // and then reads once fails one or the other, however long it waits:
    // the pieces take longer than PROMPT allows.
    expect_prompt_echo(&step, b"hello, world\n", PROMPT);
    expect_echo_of_pieces(&step, &[b"hel", b"lo, wor", b"ld\n"], PIECE_GAP);
    // Longer than a buffer of fixed size (1 KiB, 4 KiB, 64 KiB) holds.
    expect_long_echo(&step, &xs(100_000, b"\n"));
}

fn step_04_the_server_echoes_one_message_only() {
    let step = Step::new(
        "step 4: server_turn echoes one message, even when two arrive at once",
        CHAPTER,
    );
    let (mut client, turn) = start_server_turn(&step);
    client.send(b"one\ntwo\n");
    expect_echo(&step, client, turn, b"one\ntwo\n", b"one\n");
}

fn step_05_the_server_echoes_a_tail_without_newline() {
    let step = Step::new(
        "step 5: server_turn echoes the last bytes as they are when the client closes before a newline",
        CHAPTER,
    );
    for tail in [
        &b"last words, no newline"[..],
        b"\x00 ends in half a character \xc3",
    ] {
        let (mut client, turn) = start_server_turn(&step);
        client.send(tail);
        client.close_sending();
        expect_echo(&step, client, turn, tail, tail);
    }
}

fn step_06_the_server_handles_a_client_that_sends_nothing() {
    let step = Step::new(
        "step 6: server_turn returns an empty message when the client closes without sending anything",
        CHAPTER,
    );
    let (mut client, turn) = start_server_turn(&step);
    client.close_sending();
    let outcome = turn.finish(
        &step,
        "reading at end of file returns 0 bytes at once: stop there.",
    );
    let returned = match outcome {
        Ok(returned) => returned,
        Err(error) => step
            .report()
            .did("the check's client closed its sending side without sending anything")
            .expected("Ok(b\"\"): an empty message")
            .got_error(&error)
            .hint(
                "a client that closes without sending anything is no error: read_until \
                 returns Ok(0) at once, and the message is empty. Return Ok with the empty \
                 message, and write nothing.",
            )
            .fail(),
    };
    if !returned.is_empty() {
        step.report()
            .expected("an empty message, b\"\"")
            .got(&show(&returned))
            .fail();
    }
    let after = client.read_to_end();
    if !after.bytes.is_empty() {
        step.report()
            .expected("server_turn to write nothing: there was no message")
            .got(&after.describe())
            .fail();
    }
}

fn step_07_the_server_reports_a_client_that_vanishes() {
    let step = Step::new(
        "step 7: server_turn returns an error, not a panic, when the client resets the connection",
        CHAPTER,
    );
    let (mut client, turn) = start_server_turn(&step);
    client.send(b"half a mess");
    vanish(client, &turn);
    let outcome = turn.finish(
        &step,
        "a reset makes the read fail at once: return that error instead of reading on.",
    );
    if let Ok(message) = outcome {
        step.report()
            .did("the check's client sent half a message, then reset the connection")
            .expected("an error: the read failed (connection reset)")
            .got(&format!("Ok({})", show(&message)))
            .hint(
                "a reset is not an end of file: the read fails, and server_turn returns that \
                 error (the server then serves its next client). Let it out with `?`, \
                 context added if you like; never ignore it, and never unwrap or expect it: \
                 a panic would take the whole server down for one client's crash.",
            )
            .fail();
    }
}

// Your client_turn, with the check as its server.

fn step_08_the_client_sends_and_reads_the_reply() {
    let step = Step::new(
        "step 8: client_turn sends the message, then returns the reply",
        CHAPTER,
    );
    client_turn_answered(
        &step,
        b"hello\n",
        b"HELLO\n",
        "Read the reply up to its newline (read_until), and return those bytes, newline included.",
    );
}

fn step_09_the_client_keeps_bytes_exact() {
    let step = Step::new(
        "step 9: client_turn keeps any bytes exactly, both ways, to the very last byte",
        CHAPTER,
    );
    let hint = "Keep the message and the reply as bytes (Vec<u8>): a String, read_line or \
                from_utf8_lossy changes bytes that are not UTF-8, and trimming loses spaces and \\r.";
    for message in AWKWARD_MESSAGES {
        client_turn_answered(&step, message, message, hint);
    }
    // Non-UTF-8 in the very last bytes the client reads.
    client_turn_answered(&step, b"last bytes?\n", b"half a character \xc3\n", hint);
}

fn step_10_the_client_reads_a_reply_of_any_length() {
    let step = Step::new(
        "step 10: client_turn reads the reply up to its newline, longer or shorter than the message",
        CHAPTER,
    );
    let hint = "The reply ends at its newline, not after as many bytes as you sent.";
    client_turn_answered(
        &step,
        b"hi\n",
        b"a reply much longer than the message it answers\n",
        hint,
    );
    client_turn_answered(&step, b"a message longer than its reply\n", b"ok\n", hint);
}

fn step_11_the_client_waits_for_a_late_reply_in_pieces() {
    let step = Step::new(
        "step 11: client_turn waits for the whole reply, even when it comes late and in pieces",
        CHAPTER,
    );
    let (mut server, turn) = start_client_turn(&step, b"ping\n");
    expect_message(&step, &mut server, &turn, b"ping\n");
    // The reply comes late: meanwhile nothing more may come from the client.
    let extra = server.read_for(QUIET);
    if !extra.bytes.is_empty() || extra.end != End::TimedOut {
        step.report()
            .expected("nothing after the message, while the client waits for the reply")
            .got(&extra.describe())
            .hint("write the message once, then only read.")
            .fail();
    }
    server.send_in_pieces(&[b"po", b"n", b"g\n"]);
    expect_returned(
        &step,
        &turn,
        b"pong\n",
        CLIENT_HANGS,
        "One read() returns only what has arrived so far, and a reply may come late, in \
         pieces: keep reading until its newline.",
    );
}

fn step_12_the_client_reports_a_server_that_closes_without_replying() {
    let step = Step::new(
        "step 12: client_turn is an error when the server closes without replying",
        CHAPTER,
    );
    let (mut server, turn) = start_client_turn(&step, b"anyone there?\n");
    expect_message(&step, &mut server, &turn, b"anyone there?\n");
    server.close(" without replying");
    let outcome = turn.finish(
        &step,
        "the server has closed: reading returns 0 bytes (end of file) at once. Stop there.",
    );
    if let Ok(reply) = outcome {
        step.report()
            .expected("an error: the server closed the connection without replying")
            .got(&format!("Ok({})", show(&reply)))
            .hint("reading 0 bytes means the server has closed: return an error then (bail!), not an empty reply.")
            .fail();
    }
}

// The programs.

/// Connects to the server program at `addr`, sends `message`, and fails
/// unless the echo comes back, the server then closes the connection, and it
/// narrates both with the length server_turn returned.
fn expect_program_echo(step: &Step, server: &mut WatchedServer, addr: SocketAddr, message: &[u8]) {
    let mut client = server.connect(step, addr).patience(REPLY_WAIT);
    let local = client.local_addr();
    server.expect_echo(
        step,
        &mut client,
        message,
        "the server's output above shows what your server_turn did with this client; a \
         line `PEER: ...` is the error it returned.",
    );
    let after = client.read_to_end();
    if !after.bytes.is_empty() || after.end != End::Closed {
        let report = server
            .report(step)
            .expected("the server to close the connection after one echo, and write nothing more")
            .got(&after.describe());
        server.fail(report);
    }
    server.expect_said(
        step,
        &format!("accepted {local}"),
        "main.rs (given) says `accepted PEER` for each client.",
    );
    for (said, peer) in [
        ("read", format!("bytes from {local}")),
        ("wrote", format!("bytes to {local}")),
    ] {
        let expected = format!("{said} {} {peer}", message.len());
        let line = server.wait_for(SAID_BY_NOW, server.started(), |line| line.contains(&peer));
        let line = line.map(|line| line.text).unwrap_or_default();
        if !line.ends_with(&expected) {
            let report = server
                .report(step)
                .expected(&format!("the line `{expected}` on stderr"))
                .got(&format!("`{line}`"))
                .hint(
                    "the server narrates the length of what your server_turn returned: return \
                     the very bytes you echoed.",
                );
            server.fail(report);
        }
    }
}

fn step_13_the_server_program_echoes_one_message_per_connection() {
    let step = Step::new(
        "step 13: `server` echoes one message on each connection, says so, and closes it",
        CHAPTER,
    );
    localhost::on_each_loopback(&step, |listen_on| {
        let (mut server, addr) =
            WatchedServer::start_listening(&step, program!(), &["server", listen_on]);
        for message in [&b"first\n"[..], b"second \xff\n"] {
            expect_program_echo(&step, &mut server, addr, message);
        }
    });
}

/// A program's exit and stdout, in words.
fn exit_and_stdout(finished: &Finished) -> String {
    let exit = match finished.code {
        Some(code) => format!("exit code {code}"),
        None => "no exit: the check stopped it".to_string(),
    };
    format!("{exit}, stdout {}", show(&finished.stdout))
}

/// Runs the client program against the check's server on `listen_on`, with
/// `stdin`, and fails unless the server receives `line` and the program prints
/// the reply exactly and exits 0.
fn expect_client_program(step: &Step, listen_on: &str, stdin: &[u8], line: &[u8]) {
    let reply = b"reply \x00\xff\r\n";
    let (listener, addr) = localhost::listen_on(listen_on);
    let answering = {
        let step = step.clone();
        // The check's server: accepts one connection, reads a line, answers.
        thread::spawn(move || -> Option<Received> {
            let mut client = Peer::new(&step, accept_within(&listener, DEADLINE)?);
            let received = client.read_line();
            client.send(reply);
            // Wait for the client to close, so that it can read the reply first.
            let _ = client.read_to_end();
            Some(received)
        })
    };
    let finished = run(program!(), &["client", &addr.to_string()], stdin);
    let Some(received) = answering.join().unwrap_or(None) else {
        finished
            .report(step)
            .expected(&format!(
                "your client to connect to the check's server at {addr}"
            ))
            .got("no connection came")
            .fail()
    };
    if received.bytes != line || received.end != End::Newline {
        let report = finished
            .report(step)
            .expected(&format!("the check's server to receive {}", show(line)));
        got_reply(
            report,
            line,
            &received,
            "Does client_turn write the whole message before it reads?",
        )
        .fail();
    }
    if finished.code != Some(0) || finished.stdout != reply {
        finished
            .report(step)
            .expected(&format!(
                "exit code 0 and on stdout exactly the reply, {}",
                show(reply)
            ))
            .got(&exit_and_stdout(&finished))
            .observed(
                "the check's server received your line and replied (see the transcript): \
                 whatever the program's own advice says, the fault is on the client's side, \
                 in client_turn.",
            )
            .fail();
    }
}

fn step_14_the_client_program_sends_a_line_and_prints_the_reply() {
    let step = Step::new(
        "step 14: `client` sends one line of stdin, newline added, and prints the reply",
        CHAPTER,
    );
    expect_client_program(
        &step,
        "127.0.0.1:0",
        b"no newline at the end",
        b"no newline at the end\n",
    );
    if localhost::ipv6_loopback(&step, "on IPv6") {
        expect_client_program(&step, "[::1]:0", b" \tspaces \xff\n", b" \tspaces \xff\n");
    }
}

fn step_15_the_client_program_explains_a_server_that_closes() {
    let step = Step::new(
        "step 15: `client` explains a server that closes without replying, exit code 1",
        CHAPTER,
    );
    let server = CheckServer::start();
    let addr = server.addr();
    let closing = {
        let step = step.clone();
        thread::spawn(move || {
            let mut client = Peer::new(&step, server.accept_within(DEADLINE)?);
            let received = client.read_line();
            client.close(" without replying");
            Some(received)
        })
    };
    let finished = run(program!(), &["client", &addr.to_string()], b"hello?\n");
    let _ = closing.join();
    finished.expect_one_line_error(&step, &[]);
}

fn step_16_the_client_program_explains_a_refused_connection() {
    let step = Step::new(
        "step 16: `client` explains a refused connection in one line, exit code 1",
        CHAPTER,
    );
    let nowhere = unused_address().to_string();
    run(program!(), &["client", &nowhere], b"hello\n")
        .expect_one_line_error(&step, &[&nowhere, "refused"]);
}

// Your own seesaw: your client, the check in the middle, your server.

fn step_17_your_client_talks_to_your_server() {
    let step = Step::new(
        "step 17: your own seesaw: your `client` talks to your `server`",
        CHAPTER,
    );
    let line = b"your own seesaw \xe2\x9a\x96 \xff\n";
    let (mut server, server_addr) =
        WatchedServer::start_listening(&step, program!(), &["server", "127.0.0.1:0"]);
    let relay = Relay::start(&step, server_addr);
    let finished = run(program!(), &["client", &relay.addr().to_string()], line);
    if finished.code == Some(0) && finished.stdout == line {
        return;
    }
    let carried = relay.carried(1).unwrap_or_default();
    let blame = if finished.stderr.contains("not yet implemented") {
        TODO_HINT
    } else if finished.stderr.contains("panicked") {
        "your client panicked (its stderr is above): a failure should be an Err, not a panic."
    } else if carried.to_server != line {
        "your client did not send the line as it came from stdin (see the transcript): look at client_turn's writing."
    } else if carried.to_client != line {
        "your client sent the line, and your server did not echo it exactly (see the transcript and its stderr): look at server_turn."
    } else {
        "your server echoed the line exactly (see the transcript): look at how client_turn reads the reply and what it returns."
    };
    server
        .report(&step)
        .did(&format!(
            "ran `{}` with on stdin {}; the check passed the bytes between them, from {} to {server_addr}",
            finished.command,
            show(&finished.stdin),
            relay.addr()
        ))
        .did(&format!("the client's stderr:\n{}", finished.stderr))
        .expected(&format!("exit code 0 and on stdout exactly {}", show(line)))
        .got(&exit_and_stdout(&finished))
        .observed(blame)
        .fail();
}

seesaw_checks::checks![
    step_01_the_server_echoes_a_message,
    step_02_the_server_echoes_bytes_exactly,
    step_03_the_server_reads_the_whole_message_in_pieces,
    step_04_the_server_echoes_one_message_only,
    step_05_the_server_echoes_a_tail_without_newline,
    step_06_the_server_handles_a_client_that_sends_nothing,
    step_07_the_server_reports_a_client_that_vanishes,
    step_08_the_client_sends_and_reads_the_reply,
    step_09_the_client_keeps_bytes_exact,
    step_10_the_client_reads_a_reply_of_any_length,
    step_11_the_client_waits_for_a_late_reply_in_pieces,
    step_12_the_client_reports_a_server_that_closes_without_replying,
    step_13_the_server_program_echoes_one_message_per_connection,
    step_14_the_client_program_sends_a_line_and_prints_the_reply,
    step_15_the_client_program_explains_a_server_that_closes,
    step_16_the_client_program_explains_a_refused_connection,
    step_17_your_client_talks_to_your_server,
];
