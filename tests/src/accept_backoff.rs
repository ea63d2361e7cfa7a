//! A lesson's server program that runs out of files (lessons 6 and 9): the
//! check runs it with few files allowed, connects more clients than it can
//! take, and watches what it prints while accept fails again and again. It
//! must say why accept failed, wait before trying again (twice as long each
//! time, starting over from short after a success), and serve again once
//! clients have gone. Unix only: it needs a shell's `ulimit`.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::DEADLINE;
use crate::peer::{End, Peer};
use crate::process::expect_room_for_files;
use crate::report::{Step, hint_for_received};
use crate::watched::{SAID_BY_NOW, WatchedServer};

/// The server may open this many files: stdin, stdout, stderr, the
/// listener, and room for a few clients (two files each).
pub const FILE_LIMIT: usize = 20;

/// The cause of the failed accepts, as the OS says it.
const OUT_OF_FILES: &str = "Too many open files";

/// How many clients the check connects: more than the server can take.
const CROWD: usize = 2 * FILE_LIMIT;

/// How long a client the server accepted waits for its echo while accept
/// keeps failing: a server that serves it answers at once.
const SERVED_MEANWHILE: Duration = Duration::from_millis(600);

/// How long the check watches a server whose accept keeps failing.
const WINDOW: Duration = Duration::from_millis(100);

/// A server that backs off (5 ms, then 10, 20, 40 ms) reports 5 failed
/// accepts in WINDOW (at 0, 5, 15, 35 and 75 ms): at most MOST_REPORTS. One
/// that waits a fixed 5 ms reports 20; one that does not wait at all,
/// thousands. (Lines about clients that come and go do not count: they are
/// no flood.)
const MOST_REPORTS: usize = 8;

/// And it reports MIN_REPORTS failures within SHORT_WAITS (at 0, 5 and 15 ms;
/// the margin is for a busy machine). One that waits long at once, or whose
/// waits do not start over from short after a success, takes 480 ms or more.
const MIN_REPORTS: usize = 3;
const SHORT_WAITS: Duration = Duration::from_millis(300);

/// A line that reports a failed accept: it shows the cause, or at least
/// says that accept failed.
pub fn reports_failed_accept(line: &str) -> bool {
    line.contains(OUT_OF_FILES) || (line.contains("accept") && !line.starts_with("accepted "))
}

/// Runs `program` with `args` (a server on port 0) allowed FILE_LIMIT files,
/// and fails unless it reports the failed accepts, backs off, still serves
/// the clients it has while it waits, and serves a new client once the crowd
/// has gone. Twice: the second time shows that a successful accept starts the
/// waits over from short. `stalled_hint` says, in the lesson's terms, what
/// keeps a server from serving its clients while accept fails.
pub fn expect_backs_off_when_accept_fails(
    step: &Step,
    program: &Path,
    args: &[&str],
    stalled_hint: &str,
) {
    let mut server = WatchedServer::start_with_file_limit(program, args, FILE_LIMIT);
    let addr = server.listening_address(step);
    expect_room_for_files(step, CROWD + 16);
    for round in ["first", "second"] {
        let since = Instant::now();
        server.expect_running(step);
        // Through the server: if it cannot connect, its last words say why.
        let mut crowd: Vec<Peer> = (0..CROWD).map(|_| server.connect(step, addr)).collect();
        step.transcript().add(format!(
            "check   connected {CROWD} clients ({round} crowd); your server may open only \
             {FILE_LIMIT} files"
        ));
        expect_backoff(step, &mut server, since, round);
        expect_served_meanwhile(step, &mut server, &mut crowd, stalled_hint);
        drop(crowd);
        step.transcript()
            .add("check   closed all those clients".to_string());
        expect_room_again(step, &mut server, addr, Instant::now());
    }
}

/// Fails unless the first client of `crowd` that the server said it
/// accepted is echoed while accept keeps failing: the wait after a failed
/// accept must not keep the server from serving the clients it has (they
/// are the ones that will leave and free files).
fn expect_served_meanwhile(
    step: &Step,
    server: &mut WatchedServer,
    crowd: &mut [Peer],
    stalled_hint: &str,
) {
    let Some(client) = crowd.iter_mut().find(|client| {
        let said = format!("accepted {}", client.local_addr());
        server.printed(|line| line == said).is_some()
    }) else {
        return; // It names no client it accepted: the narration's step says so.
    };
    client.send(b"still served meanwhile?\n");
    let reply = client.read_line_for(SERVED_MEANWHILE);
    if reply.bytes == b"still served meanwhile?\n" && reply.end == End::Newline {
        return;
    }
    let mut report = server
        .report(step)
        .did(&format!(
            "while accept kept failing, client {} (accepted before) sent \
             b\"still served meanwhile?\\n\"",
            client.local_addr()
        ))
        .expected("the same bytes back at once: the server still serves the clients it has")
        .got(&reply.describe())
        .hint(stalled_hint);
    if reply.end == End::TimedOut && reply.bytes.is_empty() {
        report = report.observed(&format!(
            "your server was still trying to accept (its reports are above), but it served \
             no one in the meantime: its other clients stalled while it waited. {stalled_hint}"
        ));
    } else if let Some(observed) = hint_for_received(b"still served meanwhile?\n", &reply) {
        report = report.observed(&observed);
    }
    server.fail(report)
}

/// Once the crowd (closed at `closed`) has gone, a new client must be
/// served. If not, the report says what the server did meanwhile: it still
/// failed to accept (the crowd's files were not freed), or it said nothing.
fn expect_room_again(step: &Step, server: &mut WatchedServer, addr: SocketAddr, closed: Instant) {
    let mut next = server.connect(step, addr);
    next.send(b"room for me now?\n");
    let reply = next.read_line();
    if reply.bytes == b"room for me now?\n" && reply.end == End::Newline {
        return;
    }
    let still_failing = server
        .wait_for(Duration::ZERO, closed, reports_failed_accept)
        .is_some();
    let hint = match still_failing {
        true => {
            "after the crowd had gone, your server still reported failed accepts: the files \
             of the clients that left were not freed. Does each client's thread (or task) \
             end at end of file, dropping every handle on its connection?"
        }
        false => {
            "after the crowd had gone, your server said nothing more and served no one: its \
             loop no longer accepts. After a failed accept, wait, then accept again."
        }
    };
    let report = server
        .report(step)
        .did(&format!(
            "client {} sent b\"room for me now?\\n\"",
            next.local_addr()
        ))
        .expected("the same bytes back: with the crowd gone, accept works again")
        .got(&reply.describe());
    server.fail(match hint_for_received(b"room for me now?\n", &reply) {
        Some(observed) if reply.end != End::TimedOut => report.observed(&observed),
        _ => report.observed(hint),
    })
}

/// Waits for the server to report a failed accept, then counts what it
/// prints in the WINDOW after that.
fn expect_backoff(step: &Step, server: &mut WatchedServer, since: Instant, round: &str) {
    let first = expect_first_report(step, server, since);
    if server.panicked() {
        let report = server
            .report(step)
            .expected("the server to go on after a failed accept")
            .got("it panicked (its output is above)");
        server.fail(report);
    }
    if !first.text.contains(OUT_OF_FILES) {
        let report = server
            .report(step)
            .expected(&format!(
                "the report of the failed accept to say why it failed: {OUT_OF_FILES:?}"
            ))
            .got(&format!("{:?}, which does not", first.text))
            .hint(
                "print the error with {error:#}: the # shows its whole chain, the context \
                 (\"could not accept a connection\") and the cause the OS gave.",
            );
        server.fail(report);
    }
    let in_window = 1 + count_reports(server, first.at + WINDOW, usize::MAX);
    let missing = MIN_REPORTS.saturating_sub(in_window);
    let reports = in_window + count_reports(server, first.at + SHORT_WAITS, missing);
    expect_few_enough(step, server, in_window, round);
    if server.has_exited() {
        let report = server
            .report(step)
            .expected("the server to go on after a failed accept")
            .got("the program ended")
            .hint("a failed accept is not the end of the server: report it, back off, go on.");
        server.fail(report);
    }
    expect_short_waits(step, server, reports, round);
}

/// The first line that reports a failed accept since `since`. The server
/// accepts clients until it runs out of files; the accept right after its
/// last `accepted` line fails, so the report is due then.
fn expect_first_report(
    step: &Step,
    server: &mut WatchedServer,
    since: Instant,
) -> crate::watched::Line {
    let accepting = server.wait_for(DEADLINE, since, |line| line.starts_with("accepted "));
    if accepting.is_none() && server.printed_on_stdout(|line| line.starts_with("accepted ")) {
        // Not a slow backoff: the check could not see when accept began to fail.
        let report = server
            .report(step)
            .expected("a line `accepted PEER` on stderr for each client, before accept fails")
            .got("those lines on stdout (its output is above)")
            .hint(
                "narration goes to stderr (eprintln!); stdout carries only the data. \
                 The step that checks the narration says the same.",
            );
        server.fail(report);
    }
    let wait = match accepting {
        Some(_) => SAID_BY_NOW,
        None => Duration::ZERO,
    };
    if let Some(first) = server.wait_for(wait, since, reports_failed_accept) {
        return first;
    }
    let got = match (server.has_exited(), accepting) {
        (true, _) => "the program ended",
        (false, Some(_)) => "no such line",
        (false, None) => {
            step.note_waited_out();
            "no such line; it did not even say `accepted` for the first clients"
        }
    };
    let report = server
        .report(step)
        .expected(
            "a line on stderr that reports the failed accept and its cause, like \
             `could not accept a connection: Too many open files (os error 24)`",
        )
        .got(got)
        .hint(
            "when accept fails, report the error on stderr with its cause ({error:#}), \
             then wait (the backoff) and accept again.",
        );
    server.fail(report)
}

/// How many more failed accepts the server reports before `until` (at most `most`).
fn count_reports(server: &mut WatchedServer, until: Instant, most: usize) -> usize {
    let mut count = 0;
    while count < most {
        let Some(line) = server.next_line(until) else {
            break;
        };
        count += usize::from(reports_failed_accept(&line.text));
    }
    count
}

/// Fails if the server reported more than MOST_REPORTS failures in WINDOW: it spins.
fn expect_few_enough(step: &Step, server: &mut WatchedServer, in_window: usize, round: &str) {
    if in_window <= MOST_REPORTS {
        return;
    }
    let report = server
        .report(step)
        .expected(&format!(
            "at most {MOST_REPORTS} reports of a failed accept in the {} ms after the first \
             one ({round} crowd)",
            WINDOW.as_millis()
        ))
        .got(&format!(
            "{in_window} reports: it tries again too soon, again and again"
        ))
        .hint(
            "after a failed accept, wait before the next one, twice as long each time \
             it fails in a row (a Backoff made once, before the loop), so that a server \
             out of files does not spin and flood its log.",
        );
    server.fail(report);
}

/// Fails unless the server reported MIN_REPORTS failures within SHORT_WAITS.
fn expect_short_waits(step: &Step, server: &mut WatchedServer, reports: usize, round: &str) {
    if reports >= MIN_REPORTS {
        return;
    }
    let hint = match round {
        "first" => {
            "the first waits are short (5 ms, then 10, 20, ...): a server that \
             waits long at once leaves its clients waiting too. Use the Backoff."
        }
        _ => {
            "the waits start over from short after an accept that works: tell the \
             Backoff about each success (reset), or a server that ran out of files \
             once waits long ever after."
        }
    };
    let report = server
        .report(step)
        .expected(&format!(
            "at least {MIN_REPORTS} reports of a failed accept in the {} ms after the \
             first one ({round} crowd)",
            SHORT_WAITS.as_millis()
        ))
        .got(&format!("{reports}: it waits too long before trying again"))
        .hint(hint);
    server.fail(report);
}

#[cfg(test)]
mod tests {
    use super::reports_failed_accept;

    #[test]
    fn failed_accepts_are_told_from_accepted_clients() {
        assert!(reports_failed_accept(
            "could not accept a connection: Too many open files (os error 24)"
        ));
        assert!(reports_failed_accept("accept failed"));
        assert!(!reports_failed_accept("accepted 127.0.0.1:5000"));
    }
}
