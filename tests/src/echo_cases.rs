//! The conversations every echo server's `serve_connection` must hold, in
//! whichever lesson (5 and 9 share them): the check plays the client, on a
//! connection whose other end the lesson hands to the student's code.
//!
//! Each function takes `start`, which starts the student's `serve_connection`
//! on a fresh connection and returns the check's end and the running code,
//! so that a lesson's check reads as one line: what the server must do.

use std::io::Write;
use std::time::Duration;

use crate::bounded::Running;
use crate::bytes::{show, thousands};
use crate::fixtures::{cases::AWKWARD, xs};
use crate::peer::{End, Peer};
use crate::report::{Step, hint_for_ending, join_hints};

/// The hint when the student's serve_connection does not answer.
pub const SERVER_HANGS: &str = "the check's client is waiting for you. Does serve_connection \
     stop reading at each newline, answer each message before reading the next, and \
     return at end of file (Message::End)?";

/// The check's own hint for an echo that came back wrong (a hang has a hint
/// of its own): the bytes, exactly.
pub const ECHO_EXACTLY: &str = "echo every message exactly as it came, every byte (spaces, \
     tabs, \\r, bytes that are not UTF-8), in one write_all, and nothing else.";

/// The check's end of a fresh connection, and the student's serve_connection on the other.
pub type Started = (Peer, Running<anyhow::Result<()>>);

/// Ten messages, then awkward ones (spaces, tabs, `\r`, not UTF-8, empty,
/// NUL), each echoed exactly, in order, and nothing else; then the end.
pub fn many_messages_in_order(step: &Step, mut start: impl FnMut() -> Started) {
    let (mut client, running) = start();
    for number in 1..=10 {
        client.expect_echo(format!("message {number}\n").as_bytes(), ECHO_EXACTLY);
    }
    for message in AWKWARD.into_iter().chain([b"last one\n".as_slice()]) {
        client.expect_echo(message, ECHO_EXACTLY);
    }
    client.expect_silence(
        Duration::from_millis(50),
        "write each message back once, exactly, and nothing else.",
    );
    client.close_sending();
    client.expect_end("at end of file (Message::End), return: that closes the connection.");
    running.finish_ok(step, SERVER_HANGS);
}

/// A message in three pieces with pauses (one read, even after a pause, is
/// not enough), the last piece holding the start of the next message too.
pub fn message_in_pieces(step: &Step, mut start: impl FnMut() -> Started) {
    let (mut client, running) = start();
    client.send_in_pieces(&[b"see", b"saw ", b"up and down\nsecond"]);
    client.expect_line(
        b"seesaw up and down\n",
        "a message may come in pieces: keep reading up to its newline, then echo it whole.",
    );
    client.send(b" message\n");
    let second = client.read_line();
    if second.bytes != b"second message\n" || second.end != End::Newline {
        let report = step
            .report()
            .expected(
                "the second message back, its start kept from the piece before: \
                 b\"second message\\n\"",
            )
            .got_received(b"second message\n", &second)
            .hint(SERVER_HANGS);
        if second.bytes == b" message\n" {
            report
                .observed(
                    "the start of the second message, b\"second\", was lost: it came in the \
                     same piece as the end of the first. Bytes read past a newline wait in the \
                     reader's buffer for the next message: keep one BufReader for the \
                     whole connection.",
                )
                .fail();
        }
        report.fail();
    }
    client.close_sending();
    client.expect_end("at end of file (Message::End), return.");
    running.finish_ok(step, SERVER_HANGS);
}

/// After the client's half-close, the last bytes (no newline) come back,
/// then the end; and with nothing after the last message, just the end.
pub fn tail_then_end(step: &Step, mut start: impl FnMut() -> Started) {
    let (mut client, running) = start();
    client.expect_echo(b"almost done\n", SERVER_HANGS);
    client.send(b" no newline \xff");
    client.close_sending();
    client.expect_then_end(
        b" no newline \xff",
        "write a Message::Tail back as it came, exactly: no newline added. The next \
         read_message gives End: return.",
    );
    running.finish_ok(step, SERVER_HANGS);

    // An empty tail: the half-close comes right after a whole message.
    let (mut client, running) = start();
    client.expect_echo(b"all done\n", SERVER_HANGS);
    client.close_sending();
    client.expect_end(
        "after the last message, nothing more: end of file is Message::End, which sends nothing.",
    );
    running.finish_ok(step, SERVER_HANGS);
}

/// What a lesson's server says and does with a message over the limit.
pub struct Refusal {
    /// The error line (TOO_LONG_REPLY).
    pub reply: &'static [u8],
    /// The hint for a server that echoed the message instead.
    pub if_echoed: &'static str,
    /// The check's own hint when the error line did not come.
    pub hint: &'static str,
    /// The hint when something more came after the error line.
    pub then_nothing: &'static str,
}

/// Sends `message`, over the limit, in the background (the server stops
/// reading at the limit), and fails unless the error line comes back and
/// then nothing more: the check hangs up, and the connection ends.
pub fn expect_refusal(client: &mut Peer, step: &Step, message: Vec<u8>, refusal: &Refusal) {
    let message_len = message.len();
    client.send_in_background(message);
    let got = client.read_line();
    if got.bytes != refusal.reply || got.end != End::Newline {
        let report = step
            .report()
            .expected(&format!(
                "{} as soon as you have read MAX_MESSAGE bytes",
                show(refusal.reply)
            ))
            .got_received(refusal.reply, &got)
            .hint(refusal.hint);
        // The limit is one byte less than the message.
        let limit = message_len - 1;
        match got.bytes.starts_with(b"xxxx") {
            true if got.bytes.len() < limit - 1 => report
                .observed(&format!(
                    "your server echoed {} bytes of it, fewer than MAX_MESSAGE, as if the \
                     messages before had used up part of the limit. The limit is per message: \
                     each message may take the whole MAX_MESSAGE (a take for each message, not \
                     one on the connection). {}",
                    thousands(got.bytes.len()),
                    refusal.if_echoed
                ))
                .fail(),
            true => report.observed(refusal.if_echoed).fail(),
            false => report.fail(),
        }
    }
    expect_nothing_more(client, step, refusal.then_nothing);
}

/// After the error line the check hangs up; then end of file (or a reset:
/// the flood check's business) and nothing else may come.
pub fn expect_nothing_more(client: &mut Peer, step: &Step, hint: &str) {
    client.close_sending();
    let rest = client.read_to_end();
    let ended = matches!(rest.end, End::Closed | End::Failed(_));
    if !rest.bytes.is_empty() || !ended {
        step.report()
            .expected("nothing more after the error line: the connection ends")
            .got(&rest.describe())
            .observed(&join_hints(&hint_for_ending(b"", &rest), hint))
            .fail();
    }
}

/// What a lesson says about its gentle close, for [`error_line_survives_a_flood`].
pub struct Gentle {
    /// The hint when the server closed at once (a reset).
    pub linger_hint: &'static str,
    /// The hint when the server stopped reading and did not close either.
    pub stopped_hint: &'static str,
}

/// A client that writes 1 MiB and a newline before it reads anything (like
/// the lesson's own client) gets `reply` (the error line) and a clean end of
/// file, no reset; and the server goes on reading until the check hangs up.
pub fn error_line_survives_a_flood(step: &Step, started: Started, reply: &[u8], gentle: &Gentle) {
    let (mut client, running) = started;
    let flood = xs(1024 * 1024, b"\n");
    client.note(format!(
        "check → you   {} (one write, reading nothing until it is done)",
        show(&flood)
    ));
    let mut stream = client
        .stream()
        .try_clone()
        .expect("the check could not clone its socket");
    let _ = stream.set_write_timeout(Some(crate::DEADLINE));
    if let Err(error) = stream.write_all(&flood) {
        client.note(format!("check   could not send: {error}"));
        let hang = matches!(
            error.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        );
        if hang {
            step.note_waited_out();
        }
        step.report()
            .expected(
                "to send all 1 MiB: your server reads and throws away what comes after the \
                 error line",
            )
            .got(&format!("the write failed: {error}"))
            .observed(match hang {
                true => gentle.stopped_hint,
                false => gentle.linger_hint,
            })
            .fail();
    }
    let received = client.read_to_end();
    if received.bytes != reply || received.end != End::Closed {
        step.report()
            .expected(&format!("{} and then end of file, no reset", show(reply)))
            .got(&received.describe())
            .observed(&match received.end {
                End::Failed(_) => gentle.linger_hint.to_string(),
                _ => hint_for_ending(reply, &received),
            })
            .fail();
    }
    // The server should still be reading (and throwing away) until the
    // check hangs up: one more byte must go through, not meet a reset.
    client.note("check → you   b\"x\"");
    if let Err(error) = stream.write_all(b"x") {
        step.report()
            .expected("your server to go on reading until the check hangs up")
            .got(&format!("sending one more byte failed: {error}"))
            .observed(gentle.linger_hint)
            .fail();
    }
    running.expect_still_running(
        Duration::from_millis(25),
        step,
        "the check to hang up (a lingering close reads until then)",
        gentle.linger_hint,
    );
    client.close_sending();
    running.finish_ok(step, SERVER_HANGS);
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::{Shutdown, TcpStream};

    use super::*;
    use crate::bounded;
    use crate::peer::connected_pair;

    const LIMIT: usize = 64 * 1024;
    const TOO_LONG: &[u8] = b"error: too long\n";

    /// A right serve_connection, as lesson 5 writes it.
    fn serve(connection: TcpStream) -> anyhow::Result<()> {
        let mut reader = BufReader::new(connection.try_clone()?);
        let mut writer = connection;
        loop {
            let mut message = Vec::new();
            (&mut reader)
                .take(LIMIT as u64)
                .read_until(b'\n', &mut message)?;
            if message.is_empty() {
                return Ok(());
            }
            if message.len() == LIMIT && !message.ends_with(b"\n") {
                writer.write_all(TOO_LONG)?;
                writer.shutdown(Shutdown::Write)?;
                // A lingering close: read what still comes, until the client hangs up.
                std::io::copy(&mut reader, &mut std::io::sink())?;
                return Ok(());
            }
            writer.write_all(&message)?;
        }
    }

    fn start(step: &Step) -> Started {
        let (client, connection) = connected_pair(step);
        let keep = connection.try_clone().unwrap();
        let running =
            bounded::start_with(step, "serve(connection)", keep, move |_| serve(connection));
        (client, running)
    }

    #[test]
    fn a_right_server_holds_every_conversation() {
        let step = Step::new("a step of the support crate's own tests", "00-test");
        many_messages_in_order(&step, || start(&step));
        message_in_pieces(&step, || start(&step));
        tail_then_end(&step, || start(&step));
        let refusal = Refusal {
            reply: TOO_LONG,
            if_echoed: "echoed",
            hint: "hint",
            then_nothing: "nothing",
        };
        let (mut client, running) = start(&step);
        expect_refusal(&mut client, &step, xs(LIMIT + 1, b""), &refusal);
        running.finish_ok(&step, SERVER_HANGS);
        let gentle = Gentle {
            linger_hint: "linger",
            stopped_hint: "stopped",
        };
        error_line_survives_a_flood(&step, start(&step), TOO_LONG, &gentle);
    }
}
