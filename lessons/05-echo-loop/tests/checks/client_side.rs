//! The check as the server of the student's client (steps 13 to 15): it
//! starts the client's conversation, reads what the client sends, and says
//! what went wrong when the client goes quiet, closes, or returns wrong bytes.

use lesson_05_echo_loop::Client;
use seesaw_checks::bounded::{self, Running};
use seesaw_checks::bytes::{difference, show};
use seesaw_checks::peer::{CheckServer, End, Peer};
use seesaw_checks::report::{Step, hint_for_ending, hint_for_received, join_hints};

use super::QUICK;

/// The student's client, running `conversation` against the check's server.
pub fn start_client<T: Send + 'static>(
    step: &Step,
    call: &str,
    conversation: impl FnOnce(Client) -> anyhow::Result<T> + Send + 'static,
) -> (Peer, Running<anyhow::Result<T>>) {
    let server = CheckServer::start();
    let addr = server.addr().to_string();
    let running = bounded::start(step, call, move || conversation(Client::connect(&addr)?));
    // Client::connect is given: it always dials.
    (server.accept(step).patience(QUICK), running)
}

/// Reads one line from the student's client; fails unless it is `expected`.
pub fn expect_sent(step: &Step, server: &mut Peer, expected: &[u8]) {
    expect_sent_or(step, server, expected, STILL_READING);
}

/// When the client has not sent its first message.
pub const SENT_NOTHING: &str = "your client sent nothing: does turn write the message with \
     write_all before it reads the reply? Bytes written into a BufWriter go out only when it \
     is flushed: flush it before reading.";

/// When the client has not sent its next message.
pub const STILL_READING: &str = "your client did not send its next message: is it still \
     reading the reply before? A reply ends at its newline, whatever its length (longer or \
     shorter than the message): read it with read_until(b'\\n', ...) on self.reader; it may \
     come late, in pieces, or already be in the buffer.";

/// Like [`expect_sent`], with `silence` as the hint when nothing came.
pub fn expect_sent_or(step: &Step, server: &mut Peer, expected: &[u8], silence: &str) {
    let received = server.read_line();
    if received.bytes == expected && received.end == End::Newline {
        return;
    }
    let report = step
        .report()
        .expected(&format!("your client to send {}", show(expected)))
        .got(&received.describe())
        .hint("write each message whole, exactly as given, then wait for its reply.");
    if matches!(received.end, End::Closed | End::Failed(_)) && received.bytes.is_empty() {
        report
            .observed(
                "your client closed the connection instead of sending its next message. \
                 Did turn return an error (a reply that is not UTF-8, read as text with \
                 read_line, is one), or did the conversation go wrong because a reply was \
                 read too short or too long? A reply ends at its newline, whatever its \
                 length: read it with read_until(b'\\n', ...) into a Vec<u8>.",
            )
            .fail();
    }
    if received.end == End::TimedOut && received.bytes.is_empty() {
        report.observed(silence).fail();
    }
    match hint_for_received(expected, &received) {
        Some(hint) => report.observed(&hint).fail(),
        None => report.fail(),
    }
}

/// Reads to end of file from the student's client; fails unless exactly
/// `expected` came, then end of file (the client shut down its sending side).
pub fn expect_hung_up(step: &Step, server: &mut Peer, expected: &[u8]) {
    let received = server.read_to_end();
    if received.bytes == expected && received.end == End::Closed {
        return;
    }
    let observed = match received.end {
        End::TimedOut if received.bytes == expected => format!(
            "{}, but no end of file: after writing, shut down the sending side with \
             writer.shutdown(Shutdown::Write), so that the server reads end of file (and can \
             still answer). Dropping one handle closes nothing while another (the reader's) \
             is open.",
            match expected.is_empty() {
                true => "nothing more came, rightly",
                false => "the bytes came",
            }
        ),
        End::Closed
            if received.bytes.len() < expected.len() && expected.starts_with(&received.bytes) =>
        {
            format!(
                "the end of file came before the last bytes, {}: write them \
                 (write_all(last)) before shutdown(Shutdown::Write). Bytes written into a \
                 BufWriter go out only when it is flushed: flush it before the shutdown.",
                show(&expected[received.bytes.len()..])
            )
        }
        End::Closed if received.bytes.starts_with(expected) => join_hints(
            &hint_for_ending(expected, &received),
            "write `last` exactly as it is given, and add no newline: the input's last \
             bytes had none.",
        ),
        _ => hint_for_ending(expected, &received),
    };
    step.report()
        .expected(&format!(
            "{} and then end of file: your client shut down its sending side",
            show(expected)
        ))
        .got(&received.describe())
        .observed(&observed)
        .fail();
}

/// Fails unless the student's code returned `expected` (bytes).
pub fn expect_returned(step: &Step, call: &str, returned: &[u8], expected: &[u8], hint: &str) {
    if returned != expected {
        step.report()
            .expected(&format!("{call} to return {}", show(expected)))
            .got(&show(returned))
            .observed(&join_hints(
                &difference(expected, returned).unwrap_or_default(),
                hint,
            ))
            .fail();
    }
}

/// Step 13, when the client has not sent its fifth message.
pub const EARLY_REPLY_LOST: &str = "your client did not send b\"five\\n\": turn 4 still waits for \
     its reply, but b\"early reply 4\\n\" came in the same write as reply 3: it was taken with \
     reply 3 and lost. A reply ends at its first newline (read_until(b'\\n', ...)), and the \
     bytes after it wait in self.reader, the one BufReader kept for the whole connection: a \
     new BufReader for each turn, or one read() into a buffer of your own, loses them.";
