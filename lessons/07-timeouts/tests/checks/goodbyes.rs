//! The clients of step 10, each on a connection of its own to your
//! serve_connection_within, all at once: a silent one (it must get
//! IDLE_REPLY), a slow one (SLOW_REPLY, and a lingering close), and a quick
//! one that talks longer than its limits, each wait within them.

use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use lesson_07_timeouts::{IDLE_REPLY, Limits, SLOW_REPLY};
use seesaw_checks::DEADLINE;
use seesaw_checks::bytes::{difference, show};
use seesaw_checks::peer::{End, PIECE_PAUSE, Peer, Received};
use seesaw_checks::report::{Report, Step, hint_for_kind};
use seesaw_checks::timing::{Timed, millis, ms, outside_limit};

use super::troublesome::Trickle;
use super::{LATE, SERVER_HANGS, expect_served, limits, start_serving};

/// The hints when no error line came in time. Nothing came: either your
/// read_message_within never gave that answer in time, or your server did
/// not write the line; the check cannot tell which, so it says both.
pub const IDLE_SILENCE: &str = "no IDLE_REPLY came in all that time, nor anything else. Either \
     your server never got Heard::Idle in time (does it read with read_message_within(&mut \
     reader, limits), with the limits it is given, not Limits::default()? Step 6 checks \
     read_message_within alone), or on Heard::Idle it does not write IDLE_REPLY.";
pub const SLOW_SILENCE: &str = "no SLOW_REPLY came in all that time, nor anything else. Either \
     your server never got Heard::TooSlow in time (does it read with read_message_within(&mut \
     reader, limits), with the limits it is given, not Limits::default()? Step 7 checks its \
     deadline alone), or on Heard::TooSlow it does not write SLOW_REPLY.";

/// The hint when the check read a reset where end of file should have come.
const LINGER_HINT: &str = "after an error line, end the connection with close_gently \
     (given), not by returning at once: the client may still be sending, and closing with \
     its bytes unread resets the connection, which can destroy the error line.";

/// How long the quick client pauses between pieces and messages.
const QUICK_PAUSE: Duration = Duration::from_millis(30);

/// Adds what the check read where `expected` should have come, after a
/// read that waited `waited` at most; `silence` is the hint when nothing
/// came at all in that time.
pub fn got_within(
    report: Report,
    expected: &[u8],
    received: &Received,
    waited: Duration,
    silence: &str,
) -> Report {
    if received.end == End::Closed && received.bytes.is_empty() {
        return report.got_received(expected, received).observed(&format!(
            "your server closed the connection without a word: write {} first, then end \
             with close_gently (given).",
            goodbye_name(expected)
        ));
    }
    if received.end != End::TimedOut {
        return report.got_received(expected, received);
    }
    let got = format!(
        "{} and then nothing more for {}",
        show(&received.bytes),
        millis(waited)
    );
    match received.bytes.is_empty() {
        true => report.got(&got).observed(silence),
        false => report.got(&got).observed(&format!(
            "{} came, but no newline after it. {}",
            show(&received.bytes),
            difference(expected, &received.bytes).unwrap_or_default()
        )),
    }
}

/// The name of an error line, for hints.
fn goodbye_name(line: &[u8]) -> &'static str {
    match line {
        line if line == IDLE_REPLY => "IDLE_REPLY",
        line if line == SLOW_REPLY => "SLOW_REPLY",
        _ => "the error line",
    }
}

/// Fails unless `received` is an end of file and nothing before it.
fn expect_end(step: &Step, received: &Received, after: &str, hint: &str) {
    if !received.bytes.is_empty() || received.end != End::Closed {
        let got = match received.end {
            End::Failed(kind) => format!(
                "{}: {}",
                received.describe(),
                hint_for_kind(kind).unwrap_or("the connection failed")
            ),
            _ => received.describe(),
        };
        step.report()
            .expected(&format!("end of file after {after}, and nothing else"))
            .got(&got)
            .hint(hint)
            .fail();
    }
}

/// The silent client: one message, its echo, then nothing; a thread of the
/// check's waits for the goodbye meanwhile.
pub struct Silent {
    limits: Limits,
    serving: Timed<anyhow::Result<()>>,
    since_echo: Instant,
    waiting: JoinHandle<(Peer, Received, Instant)>,
}

impl Silent {
    pub fn start(step: &Step) -> Silent {
        let limits = limits(60, 1000, 1000);
        let (mut silent, serving) = start_serving(step, "silent", limits);
        silent.expect_echo(b"hello\n", SERVER_HANGS);
        let since_echo = Instant::now();
        silent.note("check then says nothing");
        let waiting = thread::spawn(move || {
            let reply = silent.read_line_for(limits.idle + LATE);
            (silent, reply, Instant::now())
        });
        Silent {
            limits,
            serving,
            since_echo,
            waiting,
        }
    }

    /// Fails unless IDLE_REPLY came, limits.idle after the echo, then end of file.
    pub fn expect_goodbye(self, step: &Step) {
        let (mut silent, reply, at) = self
            .waiting
            .join()
            .expect("the check's own thread does not panic");
        let did = format!(
            "the check (silent) sent b\"hello\\n\", read the echo, then said nothing; limits.idle was {}",
            millis(self.limits.idle)
        );
        if reply.bytes != IDLE_REPLY || reply.end != End::Newline {
            let report = step
                .report()
                .did(&did)
                .expected(&format!("{} back", show(IDLE_REPLY)));
            let waited = self.limits.idle + LATE;
            got_within(report, IDLE_REPLY, &reply, waited, IDLE_SILENCE)
                .hint("on Heard::Idle, write IDLE_REPLY, then end with close_gently (given).")
                .fail();
        }
        // The server's wait began as it wrote the echo, a moment before the
        // check read it: hence 10 ms to spare.
        if let Some(problem) = outside_limit(self.since_echo, at, self.limits.idle, ms(10), LATE) {
            step.report()
                .did(&did)
                .expected(&format!(
                    "IDLE_REPLY {} after the echo",
                    millis(self.limits.idle)
                ))
                .got(&format!("it came {problem}"))
                .hint("read with read_message_within(&mut reader, limits): the limits your function gets.")
                .fail();
        }
        let rest = silent.read_for(LATE);
        expect_end(
            step,
            &rest,
            "IDLE_REPLY",
            "after the error line, end the connection with close_gently (given).",
        );
        silent.close_sending();
        expect_served(step, &self.serving);
    }
}

/// The slow client: one byte every 50 ms, never a newline. Fails unless
/// SLOW_REPLY comes limits.message after the first byte, then end of file,
/// and the bytes it still sends after that are taken (a lingering close).
pub fn expect_slow_goodbye(step: &Step) {
    let limits = limits(500, 80, 1000);
    let (mut slow, serving) = start_serving(step, "slow", limits);
    let trickle = Trickle::start(&slow, 40);
    let reply = slow.read_line_for(limits.message + LATE);
    let at = Instant::now();
    let did = format!(
        "the check (slow) sent b\"x\" every {}, never a newline; limits.message was {}",
        millis(PIECE_PAUSE),
        millis(limits.message)
    );
    if reply.bytes != SLOW_REPLY || reply.end != End::Newline {
        trickle.stop();
        let report = step
            .report()
            .did(&did)
            .expected(&format!("{} back", show(SLOW_REPLY)));
        got_within(
            report,
            SLOW_REPLY,
            &reply,
            limits.message + LATE,
            SLOW_SILENCE,
        )
        .hint("on Heard::TooSlow, write SLOW_REPLY, then end with close_gently (given).")
        .fail();
    }
    if let Some(problem) = outside_limit(trickle.first, at, limits.message, ms(0), LATE) {
        trickle.stop();
        step.report()
            .did(&did)
            .expected(&format!(
                "SLOW_REPLY {} after the first byte",
                millis(limits.message)
            ))
            .got(&format!("it came {problem}"))
            .hint("read with read_message_within(&mut reader, limits): the limits your function gets.")
            .fail();
    }
    expect_lingering_close(step, &did, &mut slow, &trickle);
    trickle.stop();
    slow.close_sending();
    expect_served(step, &serving);
}

/// After SLOW_REPLY: end of file at once, and the slow client's next bytes
/// are taken. A slow client goes on sending a little while: a lingering
/// close reads and throws those bytes away; a plain close answers them
/// with a reset.
fn expect_lingering_close(step: &Step, did: &str, slow: &mut Peer, trickle: &Trickle) {
    let rest = slow.read_for(LATE);
    if rest.end == End::TimedOut && rest.bytes.is_empty() {
        trickle.stop();
        step.report()
            .did(did)
            .expected("end of file right after SLOW_REPLY: your server stops sending")
            .got(&rest.describe())
            .hint("after the error line, end the connection with close_gently (given): it shuts down the sending side first, so the client reads end of file at once.")
            .fail();
    }
    let ended = Instant::now();
    expect_end(step, &rest, "SLOW_REPLY", LINGER_HINT);
    if let Some(kind) = trickle.sends_after(ended, 2) {
        step.report()
            .did(did)
            .did("after SLOW_REPLY and end of file, the slow client sent two more bytes")
            .expected("both to be taken (and thrown away) by your server")
            .got(&format!(
                "the second failed: {kind:?}: your server had closed the connection"
            ))
            .observed(LINGER_HINT)
            .fail();
    }
}

/// The first echo that did not come back right (what was due, and what
/// came), if any, and how long the quick client talked.
type QuickOutcome = (Option<(Vec<u8>, Received)>, Duration);

/// The quick client: three messages, each in two pieces QUICK_PAUSE apart,
/// QUICK_PAUSE between an echo and the next message, then a tail. It talks
/// for longer than its limits, each wait well within them: the limits are
/// per message. Runs on a thread of the check's.
pub struct Quick {
    limits: Limits,
    serving: Timed<anyhow::Result<()>>,
    talking: JoinHandle<QuickOutcome>,
}

impl Quick {
    pub fn start(step: &Step) -> Quick {
        let limits = limits(120, 120, 1000);
        let (mut quick, serving) = start_serving(step, "quick", limits);
        let talking = thread::spawn(move || {
            let began = Instant::now();
            let wrong = quick_conversation(&mut quick);
            (wrong, began.elapsed())
        });
        Quick {
            limits,
            serving,
            talking,
        }
    }

    /// Fails unless every echo came back right all along.
    pub fn expect_served_all_along(self, step: &Step) {
        let (wrong, took) = self
            .talking
            .join()
            .expect("the check's own thread does not panic");
        if let Some((due, echo)) = wrong {
            let report = step
                .report()
                .did(&format!(
                    "the check (quick) talked for {} in all, with limits.idle and limits.message \
                     of {}: each message took {}, each pause between messages {}",
                    millis(took),
                    millis(self.limits.idle),
                    millis(QUICK_PAUSE),
                    millis(QUICK_PAUSE)
                ))
                .expected(&format!("the echo {}", show(&due)))
                .got_received(&due, &echo);
            if echo.bytes == IDLE_REPLY || echo.bytes == SLOW_REPLY {
                report
                    .observed(
                        "the limits are per message, not per connection: each call of \
                         read_message_within starts its own wait (limits.idle until the message \
                         begins, then limits.message from its first byte). Does your code count \
                         from the start of the connection?",
                    )
                    .fail();
            }
            report.hint(SERVER_HANGS).fail();
        }
        expect_served(step, &self.serving);
    }
}

/// The quick client's conversation. Returns the first echo that did not
/// come back right: what was due, and what came.
fn quick_conversation(client: &mut Peer) -> Option<(Vec<u8>, Received)> {
    let messages: [[&[u8]; 2]; 3] = [
        [b"one, ", b"in two pieces\n"],
        [b"two, ", b"in two pieces\n"],
        [b"three, ", b"the last\nand a tail"],
    ];
    for (index, [first, second]) in messages.iter().enumerate() {
        if index > 0 {
            thread::sleep(QUICK_PAUSE);
        }
        client.send(first);
        thread::sleep(QUICK_PAUSE);
        client.send(second);
        let whole = [*first, *second].concat();
        let line = whole
            .split_inclusive(|&byte| byte == b'\n')
            .next()
            .unwrap_or(&whole);
        let echo = client.read_line_for(DEADLINE);
        if echo.bytes != line || echo.end != End::Newline {
            return Some((line.to_vec(), echo));
        }
    }
    client.close_sending();
    let rest = client.read_for(DEADLINE);
    if rest.bytes != b"and a tail" || rest.end != End::Closed {
        return Some((b"and a tail".to_vec(), rest));
    }
    None
}
