//! A connection that the student's code hands back (lesson 2's accept_one,
//! lesson 3's dial): the check makes sure it is the connection as the OS made
//! it, carrying bytes both ways, exactly, and waiting for a slow peer.
//!
//! ```text
//! expect_works_both_ways(&step, &mut client, &mut connection, &ACCEPTED);
//! ```

use std::io::{BufRead, BufReader, ErrorKind, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc;
use std::thread;

use crate::DEADLINE;
use crate::bytes::show;
use crate::peer::{End, PIECE_PAUSE, Peer, accept_within};
use crate::report::{Step, hint_for_kind};

/// Who handed the connection back, in the words the reports use.
pub struct Handed {
    /// The student's function, for instance `"accept_one"`.
    pub function: &'static str,
    /// The std call that made the connection, for instance `"accept()"`.
    pub made_by: &'static str,
    /// Who is at the check's end: `"client"` or `"server"`.
    pub other_side: &'static str,
    /// Why the connection must wait for data, for instance
    /// `"A server waits for its client"`.
    pub waits: &'static str,
    /// Said when the student's function wrote to the connection itself, for
    /// instance `"It must only accept; what to say to the client is the
    /// server's business, later."`.
    pub business: &'static str,
}

/// Fails unless `connection` (the one the student's function returned, with
/// the check's `peer` at its other end) reads a line the peer sends a little
/// late, and the peer reads exactly a line written to it.
#[track_caller]
pub fn expect_works_both_ways(
    step: &Step,
    peer: &mut Peer,
    connection: &mut TcpStream,
    handed: &Handed,
) {
    expect_readable(step, peer, connection, handed);
    expect_writable(step, peer, connection, handed);
}

/// The check's peer sends a line, a little late; the connection must read
/// exactly it.
#[track_caller]
fn expect_readable(step: &Step, peer: &mut Peer, connection: &TcpStream, handed: &Handed) {
    let message = format!("from the {} to you\n", handed.other_side).into_bytes();
    let reading = read_line_in_background(connection);
    // The peer is a little slow: a connection that cannot wait for data
    // (non-blocking, or a tiny read timeout) fails here, as it would for real.
    thread::sleep(PIECE_PAUSE * 2);
    peer.send(&message);
    let report = step
        .report()
        .did(&format!(
            "the check read a line from the connection {} returned, while its {} sent one, \
             a little late",
            handed.function, handed.other_side
        ))
        .expected(&format!("to read {}", show(&message)));
    match reading.recv_timeout(DEADLINE) {
        Ok(Ok(line)) if line == message => {}
        Ok(Ok(line)) => report
            .got(&match line.ends_with(b"\n") {
                true => show(&line),
                false => format!("{} and then end of file", show(&line)),
            })
            .hint(&format!(
                "return the connection as {} gave it: do not read from it, shut it down or \
                 close it in {}.",
                handed.made_by, handed.function
            ))
            .fail(),
        Ok(Err(error)) => report
            .got(&format!("an error: {error}"))
            .observed(&read_failed_hint(error.kind(), handed))
            .fail(),
        Err(_) => {
            step.note_waited_out();
            report
                .got(&format!("nothing within {} s", DEADLINE.as_secs_f32()))
                .hint(&format!(
                    "return the connection that {} returned, connected to this {}.",
                    handed.made_by, handed.other_side
                ))
                .fail()
        }
    }
    peer.note(format!(
        "check   read {} from the connection {} returned",
        show(&message),
        handed.function
    ));
}

/// Reads one line from `connection` on a thread of the check's own, with the
/// connection as it was handed back (no timeout of the check's).
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

/// The hint for a read on the handed connection that failed with `kind`.
fn read_failed_hint(kind: ErrorKind, handed: &Handed) -> String {
    match kind {
        ErrorKind::WouldBlock | ErrorKind::TimedOut => format!(
            "the read gave up before the {}'s bytes came: the connection is non-blocking, or \
             has a tiny read timeout. {}: return the connection as {} gave it.",
            handed.other_side, handed.waits, handed.made_by
        ),
        _ => format!(
            "{} Return the connection as {} gave it: do not shut it down or close it.",
            hint_for_kind(kind).unwrap_or("the connection failed."),
            handed.made_by
        ),
    }
}

/// The connection writes a line: the check's peer must read exactly it, and
/// nothing else.
#[track_caller]
fn expect_writable(step: &Step, peer: &mut Peer, connection: &mut TcpStream, handed: &Handed) {
    let message = format!("from you to the {}\n", handed.other_side).into_bytes();
    let written = format!("the connection {} returned", handed.function);
    peer.note(format!("check   wrote {} to {written}", show(&message)));
    if let Err(error) = connection.write_all(&message) {
        step.report()
            .did(&format!("the check wrote a line to {written}"))
            .expected("the write to succeed")
            .got(&format!("an error: {error}"))
            .hint(&format!(
                "return the connection as {} gave it: do not shut it down or close it.",
                handed.made_by
            ))
            .fail();
    }
    let received = peer.read_line();
    if received.bytes == message && received.end == End::Newline {
        return;
    }
    let report = step
        .report()
        .did(&format!(
            "the check wrote a line to {written}; its {} read",
            handed.other_side
        ))
        .expected(&format!(
            "the {} to read {}",
            handed.other_side,
            show(&message)
        ));
    if received.bytes.is_empty() || message.starts_with(&received.bytes) {
        report.got_received(&message, &received).fail();
    }
    report
        .got(&received.describe())
        .observed(&format!(
            "the check never wrote {}: your {} did. {}",
            show(&received.bytes),
            handed.function,
            handed.business
        ))
        .fail();
}

/// Fails unless `connection`, which the student's code dialled, leads to
/// the check's `listener` and was accepted there from the very same socket;
/// returns the check's end. `did` says what was called, for the reports.
#[track_caller]
pub fn expect_reached(
    step: &Step,
    listener: &TcpListener,
    connection: &TcpStream,
    did: &str,
) -> TcpStream {
    let listening = listener
        .local_addr()
        .expect("a bound listener has an address");
    if connection.peer_addr().ok() != Some(listening) {
        step.report()
            .did(did)
            .expected(&format!("a connection to {listening}"))
            .got(&where_connected(connection))
            .hint("dial the address you are given, not a fixed one like 127.0.0.1:5555.")
            .fail();
    }
    let Some(accepted) = accept_within(listener, DEADLINE) else {
        step.report()
            .did(did)
            .expected("the check's listener to accept your connection")
            .got("no connection came")
            .fail()
    };
    let ours = connection
        .local_addr()
        .expect("a connected socket has a local address");
    step.transcript()
        .add(format!("check   accepted a connection from you at {ours}"));
    if accepted.peer_addr().ok() != Some(ours) {
        step.report()
            .did(did)
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
    accepted
}

/// Where a connection leads, for a report: `a connection to 127.0.0.1:5555`.
pub fn where_connected(connection: &TcpStream) -> String {
    match connection.peer_addr() {
        Ok(addr) => format!("a connection to {addr}"),
        Err(error) => format!("a connection to nowhere ({error})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::peer::connected_pair;
    use crate::report::ReportText;
    use std::panic::{AssertUnwindSafe, catch_unwind};
    use std::time::Duration;

    const HANDED: Handed = Handed {
        function: "accept_one",
        made_by: "accept()",
        other_side: "client",
        waits: "A server waits for its client",
        business: "It must only accept.",
    };

    #[test]
    fn a_connection_as_the_os_made_it_passes() {
        let step = Step::new("handed: unit test, a good connection", "00-none");
        let (mut peer, mut connection) = connected_pair(&step);
        expect_works_both_ways(&step, &mut peer, &mut connection, &HANDED);
    }

    #[test]
    fn a_tiny_read_timeout_is_named() {
        let step = Step::new("handed: unit test, a tiny read timeout", "00-none");
        let (mut peer, mut connection) = connected_pair(&step);
        connection
            .set_read_timeout(Some(Duration::from_millis(1)))
            .unwrap();
        let failed = catch_unwind(AssertUnwindSafe(|| {
            expect_works_both_ways(&step, &mut peer, &mut connection, &HANDED)
        }));
        let payload = failed.expect_err("a connection that cannot wait must fail");
        let ReportText(text) = payload.downcast_ref::<ReportText>().unwrap();
        assert!(text.contains("tiny read timeout"), "{text}");
        assert!(text.contains("A server waits for its client"), "{text}");
    }

    #[test]
    fn a_dialled_connection_reaches_the_listener() {
        let step = Step::new("handed: unit test, a dialled connection", "00-none");
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let connection = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let accepted = expect_reached(&step, &listener, &connection, "dialled");
        assert_eq!(accepted.peer_addr().ok(), connection.local_addr().ok());
        assert!(where_connected(&connection).starts_with("a connection to 127.0.0.1:"));
    }
}
