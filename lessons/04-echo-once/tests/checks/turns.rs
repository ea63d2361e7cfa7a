//! Steps 1 to 12 call your server_turn and client_turn on connections the
//! check makes, each on a thread of its own, with the check at the other end.

use std::io::Write;
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

use lesson_04_echo_once::{client_turn, server_turn};
use seesaw_checks::bytes::{difference, show, thousands};
use seesaw_checks::peer::{CheckServer, End, Peer, Received, connected_pair};
use seesaw_checks::report::{Report, Step, join_hints};
use seesaw_checks::timing::{self, Timed, millis, ms};

use crate::{CLIENT_HANGS, REPLY_WAIT, SERVER_HANGS};

/// A call of your server_turn or client_turn, running on its own thread.
pub struct Turn {
    timed: Timed<anyhow::Result<Vec<u8>>>,
    /// A copy of your end of the connection, kept open until the check is
    /// done: bytes your code left unread then cannot turn its close into a reset.
    yours: TcpStream,
}

/// Shuts down the sending side of a socket when dropped, even by a panic:
/// when your code returns, its end says "end of file".
struct SendEndOfFile(TcpStream);

impl Drop for SendEndOfFile {
    fn drop(&mut self) {
        let _ = self.0.shutdown(Shutdown::Write);
    }
}

impl Turn {
    fn start(
        step: &Step,
        call: &str,
        mut connection: TcpStream,
        code: impl FnOnce(&mut TcpStream) -> anyhow::Result<Vec<u8>> + Send + 'static,
    ) -> Turn {
        let clone = || {
            connection
                .try_clone()
                .expect("the check could not clone a socket")
        };
        let (yours, end_of_file) = (clone(), SendEndOfFile(clone()));
        let timed = timing::start(step, call, move || {
            let _end_of_file = end_of_file;
            code(&mut connection)
        });
        Turn { timed, yours }
    }

    /// Waits, at most [`REPLY_WAIT`], for the call to return. A hang or a
    /// panic fails the step; `hang_hint` says why the code may be stuck.
    pub fn finish(&self, step: &Step, hang_hint: &str) -> anyhow::Result<Vec<u8>> {
        let deadline = Instant::now() + REPLY_WAIT;
        self.timed.finish_by(step, deadline, hang_hint).0
    }

    /// Like [`Turn::finish`], and an error fails the step too, with its hint.
    pub fn finish_ok(&self, step: &Step, hang_hint: &str) -> Vec<u8> {
        step.ok(self.timed.call(), self.finish(step, hang_hint))
    }

    /// What the call returned, if it returns within a moment: a report then
    /// shows your code's own error. A panic fails the step at once.
    fn returned_by_now(&self, step: &Step) -> Option<anyhow::Result<Vec<u8>>> {
        let returned = self.timed.returned_by(step, Instant::now() + ms(200));
        returned.map(|(result, _)| result)
    }
}

/// Runs your server_turn on the server end of a fresh connection, whose
/// client end the check holds.
pub fn start_server_turn(step: &Step) -> (Peer, Turn) {
    let (client, connection) = connected_pair(step);
    let turn = Turn::start(
        step,
        "server_turn(&mut connection)",
        connection,
        server_turn,
    );
    (client.patience(REPLY_WAIT), turn)
}

/// Runs your client_turn with `message` on a fresh connection, whose server
/// end the check holds.
pub fn start_client_turn(step: &Step, message: &'static [u8]) -> (Peer, Turn) {
    let listener = CheckServer::start();
    let connection =
        TcpStream::connect(listener.addr()).expect("the check could not connect to itself");
    let server = listener.accept(step).patience(REPLY_WAIT);
    let call = format!("client_turn(&mut connection, {})", show(message));
    let turn = Turn::start(step, &call, connection, move |connection| {
        client_turn(connection, message)
    });
    (server, turn)
}

/// Makes the check's `client` vanish like a crashed client: it closes with a
/// byte unread, and closing a socket with unread bytes makes the OS reset the
/// connection. The byte is written through the check's copy of your end.
pub fn vanish(client: Peer, turn: &Turn) {
    (&turn.yours)
        .write_all(b"?")
        .expect("the check could not write through its copy of your end");
    client.reset();
}

/// Adds to `report` what the check read where `expected` should have come,
/// with the hint that fits: a hang has its own, `hang_hint`.
pub fn got_reply(report: Report, expected: &[u8], received: &Received, hang_hint: &str) -> Report {
    if received.end != End::TimedOut {
        return report.got_received(expected, received);
    }
    let waited = REPLY_WAIT.as_secs_f32();
    let report = report.got(&received.describe());
    match received.bytes.is_empty() {
        true => report.observed(&format!(
            "nothing came back within {waited} s: your code is waiting for something. {hang_hint}"
        )),
        false => report.observed(&format!(
            "{} came, then nothing for {waited} s: your code stopped short of the newline, or is \
             waiting for something. {hang_hint}",
            show(&received.bytes),
        )),
    }
}

/// Fails the step with what `reply` shows, and with your code's own error if
/// it returned one: that is usually the cause.
fn fail_with_reply(step: &Step, turn: &Turn, what: &str, expected: &[u8], reply: &Received) -> ! {
    let report = step
        .report()
        .did(what)
        .expected(&format!("{} back", show(expected)));
    // After a hang your code is still running: no need to wait for it.
    let outcome = match reply.end {
        End::TimedOut => None,
        _ => turn.returned_by_now(step),
    };
    match outcome {
        Some(Err(error)) => report
            .got(&reply.describe())
            .got_error(&error)
            .hint("your code returned this error instead of finishing its turn: its message says why.")
            .fail(),
        _ => got_reply(report, expected, reply, SERVER_HANGS).fail(),
    }
}

/// Whether `reply` is the whole echo `expected`: up to its newline, or, for a
/// tail without one, up to the end of file.
fn is_echo(reply: &Received, expected: &[u8]) -> bool {
    let complete = match expected.ends_with(b"\n") {
        true => End::Newline,
        false => End::Closed,
    };
    reply.bytes == expected && reply.end == complete
}

/// Reads the echo `expected`: a line, or a tail up to the end of file.
fn read_echo(client: &mut Peer, expected: &[u8]) -> Received {
    match expected.ends_with(b"\n") {
        true => client.read_line(),
        false => client.read_to_end(),
    }
}

/// The check's client has sent `message`: fails unless the echo `expected`
/// comes back, server_turn returns it, and nothing more comes after it.
pub fn expect_echo(step: &Step, mut client: Peer, turn: Turn, message: &[u8], expected: &[u8]) {
    let what = format!("the check's client sent {}", show(message));
    let reply = read_echo(&mut client, expected);
    if !is_echo(&reply, expected) {
        fail_with_reply(step, &turn, &what, expected, &reply);
    }
    finish_echo(step, client, turn, &what, expected);
}

/// The echo `expected` has come back: fails unless server_turn returns it,
/// and nothing more comes after it.
fn finish_echo(step: &Step, mut client: Peer, turn: Turn, what: &str, expected: &[u8]) {
    let returned = turn.finish_ok(step, SERVER_HANGS);
    // server_turn has returned, so its end has sent end of file: anything before
    // the end of file was written after the reply.
    let after = client.read_to_end();
    let written = [expected, &after.bytes[..]].concat();
    if returned != expected && returned == written && expected.ends_with(b"\n") {
        step.report()
            .did(what)
            .expected(&format!(
                "one message echoed and returned, {}",
                show(expected)
            ))
            .got(&format!("{} echoed and returned", show(&returned)))
            .hint(
                "a message ends at its first newline: server_turn read past it, into the next \
                 message, and echoed that too. Stop at the first newline (read_until does), and \
                 leave the rest unread: it belongs to the next turn.",
            )
            .fail();
    }
    if returned != expected {
        step.report()
            .did(what)
            .expected(&format!(
                "server_turn to return the message it echoed, {}",
                show(expected)
            ))
            .got(&show(&returned))
            .hint("return the very bytes you wrote back, newline included.")
            .fail();
    }
    if !after.bytes.is_empty() || after.end != End::Closed {
        step.report()
            .did(what)
            .expected("nothing after the echo: server_turn returns and the connection closes")
            .got(&after.describe())
            .hint("write the message back once, and nothing else: one message, one echo.")
            .fail();
    }
}

/// The check's client sends `message` whole, in one write: fails unless the
/// echo comes back within `prompt`. On one machine it takes microseconds;
/// only code that waits before it reads (a sleep) makes it late.
pub fn expect_prompt_echo(step: &Step, message: &[u8], prompt: Duration) {
    let (mut client, turn) = start_server_turn(step);
    let what = format!(
        "the check's client sent {}, whole, in one write",
        show(message)
    );
    client.send(message);
    let sent = Instant::now();
    let reply = read_echo(&mut client, message);
    let took = sent.elapsed();
    if !is_echo(&reply, message) {
        fail_with_reply(step, &turn, &what, message, &reply);
    }
    if took > prompt {
        step.report()
            .did(&what)
            .expected(&format!(
                "the echo within {}: on one machine it takes microseconds",
                millis(prompt)
            ))
            .got(&format!("the echo, after {}", millis(took)))
            .hint(&format!(
                "the whole message was there at once, and the echo came only after {}: does \
                 server_turn wait (sleep) before it reads? No wait is long enough for every \
                 message, which may come later still, in pieces. Keep reading until the \
                 newline instead: read_until waits exactly as long as that takes.",
                millis(took)
            ))
            .fail();
    }
    finish_echo(step, client, turn, &what, message);
}

/// The check's client sends `pieces`, `gap` apart: fails unless nothing comes
/// back before the newline has come, and then the whole message does.
pub fn expect_echo_of_pieces(step: &Step, pieces: &[&[u8]], gap: Duration) {
    let message = pieces.concat();
    let (mut client, turn) = start_server_turn(step);
    let mut sent = Vec::new();
    for (index, piece) in pieces.iter().enumerate() {
        if index > 0 {
            expect_nothing_yet(step, &mut client, &turn, &sent, &message, gap);
        }
        client.send(piece);
        sent.extend_from_slice(piece);
    }
    let what = format!(
        "the check's client sent {} in {} pieces, {} apart",
        show(&message),
        pieces.len(),
        millis(gap)
    );
    let reply = read_echo(&mut client, &message);
    if !is_echo(&reply, &message) {
        fail_with_reply(step, &turn, &what, &message, &reply);
    }
    finish_echo(step, client, turn, &what, &message);
}

/// Between two pieces of `message`: waits `gap` for the next piece to be due,
/// and fails if anything comes back meanwhile, or the connection ends.
fn expect_nothing_yet(
    step: &Step,
    client: &mut Peer,
    turn: &Turn,
    sent: &[u8],
    message: &[u8],
    gap: Duration,
) {
    let heard = client.read_for(gap);
    if heard.bytes.is_empty() && heard.end == End::TimedOut {
        return;
    }
    let what = format!(
        "the check's client sent {} so far, the start of {}; the rest comes {} later",
        show(sent),
        show(message),
        millis(gap)
    );
    if heard.end != End::TimedOut {
        // It returned (or failed) before the newline came.
        fail_with_reply(step, turn, &what, message, &heard);
    }
    step.report()
        .did(&what)
        .expected("nothing back yet: the message has no newline so far")
        .got(&heard.describe())
        .hint(&format!(
            "server_turn wrote {} back before the message's newline had come, and went on \
             reading: an echo in pieces. Read the whole message first, up to its newline, \
             then write it back in one go.",
            show(&heard.bytes)
        ))
        .fail();
}

/// The check's client sends `message`, longer than any buffer of fixed size,
/// from a thread of its own: fails unless all of it comes back.
pub fn expect_long_echo(step: &Step, message: &[u8]) {
    let (mut client, turn) = start_server_turn(step);
    client.send_in_background(message.to_vec());
    let what = format!(
        "the check's client sent a message of {} bytes",
        thousands(message.len())
    );
    let reply = read_echo(&mut client, message);
    if is_echo(&reply, message) {
        return finish_echo(step, client, turn, &what, message);
    }
    let cut_short = reply.end != End::TimedOut
        && reply.bytes.len() < message.len()
        && message.starts_with(&reply.bytes);
    if !cut_short
        || turn
            .returned_by_now(step)
            .is_some_and(|outcome| outcome.is_err())
    {
        fail_with_reply(step, &turn, &what, message, &reply);
    }
    step.report()
        .did(&what)
        .expected("all of it back, up to its newline")
        .got(&reply.describe())
        .hint(&format!(
            "the echo stopped after {} of the {} bytes: the message is longer than a buffer \
             of fixed size holds, or than one read returns. Read into a Vec<u8> that grows, \
             until the newline: read_until does.",
            thousands(reply.bytes.len()),
            thousands(message.len())
        ))
        .fail();
}

/// Fails unless the check's server received exactly `message` from client_turn.
pub fn expect_message(step: &Step, server: &mut Peer, turn: &Turn, message: &[u8]) {
    let received = server.read_line();
    if received.bytes == message && received.end == End::Newline {
        return;
    }
    let report = step
        .report()
        .did(&format!("called client_turn with {}", show(message)))
        .expected(&format!("the check's server to receive {}", show(message)));
    match turn.returned_by_now(step) {
        Some(Err(error)) => report.got(&received.describe()).got_error(&error).fail(),
        _ => got_reply(
            report.hint("write the whole message, newline included, before you read."),
            message,
            &received,
            "Does client_turn write the whole message, newline included, before it reads?",
        )
        .fail(),
    }
}

/// Waits for client_turn to return, and fails unless it returned `reply`.
pub fn expect_returned(step: &Step, turn: &Turn, reply: &[u8], hang_hint: &str, hint: &str) {
    let returned = turn.finish_ok(step, hang_hint);
    if returned != reply {
        // Cut short before the newline, and not only of trailing spaces: a
        // read that stopped too early, whatever the step is about.
        let cut_short = !returned.is_empty()
            && reply.starts_with(&returned)
            && !reply[returned.len()..].iter().all(u8::is_ascii_whitespace);
        let hint = match cut_short {
            true => {
                "Your client_turn stopped reading before the reply's newline: a reply ends at its \
                     newline, whatever its length (not after as many bytes as you sent, nor \
                     after one read). Keep reading until the newline: read_until does."
            }
            false => hint,
        };
        step.report()
            .expected(&format!("client_turn to return the reply, {}", show(reply)))
            .got(&show(&returned))
            .observed(&match difference(reply, &returned) {
                _ if returned.is_empty() => join_hints("it returned an empty reply", hint),
                Some(difference) => join_hints(&difference, hint),
                None => hint.to_string(),
            })
            .fail();
    }
}

/// One whole turn of your client against the check's server, which answers
/// `message` with `reply`; after it, the check's server gets end of file.
pub fn client_turn_answered(step: &Step, message: &'static [u8], reply: &[u8], hint: &str) {
    let (mut server, turn) = start_client_turn(step, message);
    expect_message(step, &mut server, &turn, message);
    server.send(reply);
    expect_returned(step, &turn, reply, CLIENT_HANGS, hint);
    let after = server.read_to_end();
    if !after.bytes.is_empty() {
        step.report()
            .expected("nothing after the message: one message, then the reply is read")
            .got(&after.describe())
            .hint(&format!(
                "after the message came {}: write the message as it is given (it already ends \
                 with its newline), once, and nothing more.",
                show(&after.bytes)
            ))
            .fail();
    }
}
