//! Your read_message_within, called again and again on one connection, and
//! what it answered (steps 4 to 8).

use std::io::{BufReader, ErrorKind, Read};
use std::net::TcpStream;
use std::sync::mpsc;
use std::time::Instant;

use lesson_07_timeouts::{Heard, Limits, MAX_MESSAGE, read_message_within};
use seesaw_checks::DEADLINE;
use seesaw_checks::bounded::{self, Running};
use seesaw_checks::bytes::{difference, show, thousands};
use seesaw_checks::peer::PIECE_PAUSE;
use seesaw_checks::peer::{Peer, connected_pair};
use seesaw_checks::report::{Step, io_error_kind};
use seesaw_checks::timing::{millis, ms, outside_limit};

use super::{IN_TIME, LATE, SILENCE, SLOW_PACE, show_limits};

/// A Heard as the reports show it: `Line(b"hi\n")`, bytes always escaped.
pub fn describe(heard: &Heard) -> String {
    match heard {
        Heard::Line(bytes) => format!("Line({})", show(bytes)),
        Heard::Tail(bytes) => format!("Tail({})", show(bytes)),
        Heard::End => "End".to_string(),
        Heard::TooLong => "TooLong".to_string(),
        Heard::Idle => "Idle".to_string(),
        Heard::TooSlow => "TooSlow".to_string(),
    }
}

pub fn describe_all(heard: &[Heard]) -> String {
    let shown: Vec<String> = heard.iter().map(describe).collect();
    format!("[{}]", shown.join(", "))
}

/// The hint for a read that timed out but came back as an error.
const TIMEOUT_IS_AN_ANSWER: &str = "a read that runs out of time fails with an error (WouldBlock \
     on Unix, TimedOut on Windows; is_timeout, given, knows both). Here that is no error but \
     the answer: Heard::Idle if nothing came, Heard::TooSlow if a message had begun.";

/// The hint for an error that says a timeout of zero was refused.
const ZERO_REFUSED: &str = "set_read_timeout(Some(Duration::ZERO)) is an error (invalid \
     input): a socket cannot wait for no time at all. When no time is left, you need no \
     read: the time is up, so the answer is Idle or TooSlow.";

/// Your read_message_within, called again and again on one connection (one
/// BufReader) until it returns anything but a Line or a Tail. Each answer
/// comes back with the time it came.
pub struct Reading {
    pub call: String,
    pub started: Instant,
    heard: mpsc::Receiver<(anyhow::Result<Heard>, Instant)>,
    _running: Running<()>,
}

pub fn start_reading(step: &Step, name: &str, limits: Limits) -> (Peer, Reading) {
    let (conn, connection) = connected_pair(step);
    let conn = conn.named(name);
    // A second handle keeps the socket open until a panic has been recorded.
    let keep = connection
        .try_clone()
        .expect("the check could not clone its socket");
    let call = format!(
        "read_message_within(&mut reader, &{})",
        show_limits(&limits)
    );
    let (sender, heard) = mpsc::channel();
    let started = Instant::now();
    let running = bounded::start_with(step, &call, keep, move |_| {
        let mut reader = BufReader::new(&connection);
        loop {
            let outcome = read_message_within(&mut reader, &limits);
            let more = matches!(outcome, Ok(Heard::Line(_) | Heard::Tail(_)));
            if sender.send((outcome, Instant::now())).is_err() || !more {
                return;
            }
        }
    });
    let reading = Reading {
        call,
        started,
        heard,
        _running: running,
    };
    (conn, reading)
}

/// What three calls returned (and the error that ended them early), and
/// how many bytes were left after them.
pub type ThreeReads = (Vec<Heard>, Option<anyhow::Error>, usize);

/// Calls your read_message_within three times on `connection`; then the
/// check's code reads what is left, to count the bytes your code took.
pub fn start_three_reads(
    step: &Step,
    connection: TcpStream,
    limits: Limits,
) -> (String, Running<ThreeReads>) {
    let call = format!(
        "read_message_within(&mut reader, &{}) three times",
        show_limits(&limits)
    );
    let running = bounded::start(step, &call, move || {
        let mut reader = BufReader::new(&connection);
        let mut heard = Vec::new();
        for _ in 0..3 {
            match read_message_within(&mut reader, &limits) {
                Ok(answer) => heard.push(answer),
                Err(error) => return (heard, Some(error), 0),
            }
        }
        let mut rest = Vec::new();
        let _ = reader.read_to_end(&mut rest);
        (heard, None, rest.len())
    });
    (call, running)
}

/// What the calls returned, in order, and how the last one ended.
pub struct Answers {
    pub heard: Vec<Heard>,
    /// The time each came.
    pub times: Vec<Instant>,
    pub error: Option<anyhow::Error>,
    /// Still waiting for an answer when the check stopped waiting.
    pub waiting: bool,
}

impl Reading {
    /// The next answer, waiting until `deadline`.
    fn next(&self, step: &Step, deadline: Instant) -> Option<(anyhow::Result<Heard>, Instant)> {
        let wait = deadline.saturating_duration_since(Instant::now());
        match self.heard.recv_timeout(wait) {
            Ok(answer) => Some(answer),
            Err(mpsc::RecvTimeoutError::Timeout) => None,
            Err(mpsc::RecvTimeoutError::Disconnected) => step
                .report()
                .expected(&format!("{} to return", self.call))
                .got("it panicked")
                .fail(),
        }
    }

    /// Every answer until the first that is not a Line or a Tail, waiting
    /// until `deadline` at most.
    pub fn all(&self, step: &Step, deadline: Instant) -> Answers {
        let mut answers = Answers {
            heard: Vec::new(),
            times: Vec::new(),
            error: None,
            waiting: false,
        };
        loop {
            match self.next(step, deadline) {
                None => {
                    answers.waiting = true;
                    return answers;
                }
                Some((Err(error), _)) => {
                    answers.error = Some(error);
                    return answers;
                }
                Some((Ok(heard), at)) => {
                    let more = matches!(heard, Heard::Line(_) | Heard::Tail(_));
                    answers.heard.push(heard);
                    answers.times.push(at);
                    if !more {
                        return answers;
                    }
                }
            }
        }
    }
}

/// Fails unless `answers` are exactly `expected`.
pub fn expect_answers(step: &Step, call: &str, did: &str, answers: Answers, expected: &[Heard]) {
    if answers.error.is_none() && !answers.waiting && answers.heard == expected {
        return;
    }
    let report = step
        .report()
        .did(did)
        .did(&format!("called {call} again and again"))
        .expected(&describe_all(expected));
    if let Some(error) = answers.error {
        let report = report
            .got(&format!("{}, then:", describe_all(&answers.heard)))
            .got_error(&error);
        let text = format!("{error:#}");
        if text.contains("zero") || io_error_kind(&error) == Some(ErrorKind::InvalidInput) {
            report.observed(ZERO_REFUSED).fail();
        }
        if io_error_kind(&error)
            .is_some_and(|kind| matches!(kind, ErrorKind::WouldBlock | ErrorKind::TimedOut))
        {
            report.observed(TIMEOUT_IS_AN_ANSWER).fail();
        }
        report
            .hint("read_message_within returns an error only when reading fails.")
            .fail();
    }
    if answers.waiting {
        step.note_waited_out();
        report
            .got(&format!(
                "{}, then no answer: it still waits",
                describe_all(&answers.heard)
            ))
            .observed(
                "the check sent everything, then closed its sending side: your function \
                 waits for something that will not come. End of file is a read of 0 bytes.",
            )
            .fail();
    }
    let hint = hint_for_heard(expected, &answers.heard);
    report
        .got(&describe_all(&answers.heard))
        .observed(&hint)
        .fail();
}

/// The hint for the first answer that differs from the one expected.
pub fn hint_for_heard(expected: &[Heard], got: &[Heard]) -> String {
    let Some((number, (want, have))) = expected
        .iter()
        .zip(got)
        .enumerate()
        .find(|(_, (want, have))| want != have)
    else {
        return match got.len() < expected.len() {
            true => "it stopped too early: more messages came after.".to_string(),
            false => "it went on after the last answer expected.".to_string(),
        };
    };
    let which = format!("call {} returned {}: ", number + 1, describe(have));
    let why = match (want, have) {
        (Heard::Line(want) | Heard::Tail(want), Heard::Line(have) | Heard::Tail(have))
            if want != have =>
        {
            format!(
                "{}. A message may come in pieces: keep every byte until its newline, \
                 exactly as it came, and keep bytes read past the newline for the next call \
                 (one BufReader for the whole connection).",
                difference(want, have).unwrap_or_default()
            )
        }
        (Heard::Line(_), Heard::Tail(_)) => {
            "these bytes end with a newline: that makes them a Line.".to_string()
        }
        (Heard::Tail(_), Heard::Line(_)) => {
            "these bytes have no newline after them: before end of file, they are a Tail."
                .to_string()
        }
        (Heard::End, Heard::Line(bytes) | Heard::Tail(bytes)) if bytes.is_empty() => {
            "a read of 0 bytes means end of file: that is End, not an empty message.".to_string()
        }
        (Heard::Line(_) | Heard::Tail(_), Heard::End) => {
            "End came too early: there were still bytes.".to_string()
        }
        (Heard::Line(_) | Heard::Tail(_) | Heard::End, Heard::Idle | Heard::TooSlow) => {
            "the bytes came well within the limits (the check says when in the transcript). \
             Does your function give up after the first read, or wait less than the time left?"
                .to_string()
        }
        (Heard::TooLong, Heard::Line(bytes) | Heard::Tail(bytes)) if bytes.len() > MAX_MESSAGE => {
            format!(
                "{} bytes came back as one message, more than MAX_MESSAGE ({}). Stop reading \
                 at the limit, and call that TooLong.",
                thousands(bytes.len()),
                thousands(MAX_MESSAGE)
            )
        }
        (Heard::TooLong, _) => format!(
            "at {} bytes with no newline in sight, the message is too long, whatever comes after.",
            thousands(MAX_MESSAGE)
        ),
        (Heard::Line(bytes), Heard::TooLong) if bytes.len() == MAX_MESSAGE => format!(
            "this message is exactly MAX_MESSAGE ({}) bytes, newline included, and that is \
             allowed. An off-by-one?",
            thousands(MAX_MESSAGE)
        ),
        (Heard::Line(_) | Heard::Tail(_), Heard::TooLong) => format!(
            "this message is shorter than MAX_MESSAGE ({}): the limit is per message.",
            thousands(MAX_MESSAGE)
        ),
        _ => {
            "read the step's title again: it says what read_message_within must return.".to_string()
        }
    };
    which + &why
}

/// Fails with the error your read_message_within returned, with the hint
/// that fits it.
pub fn fail_with_error(step: &Step, did: &str, call: &str, error: &anyhow::Error) -> ! {
    let report = step
        .report()
        .did(did)
        .expected(&format!("{call} to return an answer"))
        .got_error(error);
    let zero = format!("{error:#}").contains("zero")
        || io_error_kind(error) == Some(ErrorKind::InvalidInput);
    match io_error_kind(error) {
        _ if zero => report.observed(ZERO_REFUSED).fail(),
        Some(ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
            report.observed(TIMEOUT_IS_AN_ANSWER).fail()
        }
        _ => report.fail(),
    }
}

/// Fails unless the answer to a call with a limit of zero is `want`, at once.
pub fn expect_zero_answer(
    step: &Step,
    did: &str,
    reading: &Reading,
    answers: Answers,
    want: Heard,
) {
    if let Some(error) = &answers.error {
        fail_with_error(step, did, &reading.call, error);
    }
    if answers.heard.as_slice() != std::slice::from_ref(&want) {
        let got = match answers.waiting {
            true => format!(
                "{}, then no answer for {}",
                describe_all(&answers.heard),
                millis(LATE)
            ),
            false => describe_all(&answers.heard),
        };
        step.report()
            .did(did)
            .did(&format!("called {}", reading.call))
            .expected(&format!("{} at once", describe(&want)))
            .got(&got)
            .hint(
                "with no time left, there is nothing to wait for: the answer is Idle (nothing \
                 came) or TooSlow (a message had begun). Check the time left before each \
                 read, and answer when it is zero.",
            )
            .fail();
    }
}

/// Fails unless the slow client's call answered TooSlow, limits.message
/// after its first byte.
pub fn expect_too_slow(
    step: &Step,
    slow_reading: &Reading,
    answers: Answers,
    first_byte: Instant,
    slow_limits: Limits,
) {
    let did = format!(
        "the check (slow) said nothing for {}, then sent b\"x\" every {}, without a newline",
        millis(SILENCE),
        millis(PIECE_PAUSE)
    );
    if let Some(error) = &answers.error {
        fail_with_error(step, &did, &slow_reading.call, error);
    }
    if answers.waiting {
        step.report()
            .did(&did)
            .did(&format!("called {}", slow_reading.call))
            .expected(&format!(
                "TooSlow, {} after the first byte",
                millis(slow_limits.message)
            ))
            .got(&format!(
                "no answer {} after the first byte: it still reads",
                millis(slow_limits.message + LATE)
            ))
            .hint(
                "a byte comes every 50 ms, so a read never runs out of time if each waits the \
                 whole limit. Keep one deadline for the message (its first byte plus \
                 limits.message), and before each read set the read timeout to the time left.",
            )
            .fail();
    }
    if answers.heard != [Heard::TooSlow] {
        step.report()
            .did(&did)
            .did(&format!("called {}", slow_reading.call))
            .expected("TooSlow")
            .got(&describe_all(&answers.heard))
            .hint(
                "a message that has begun (bytes came) but whose newline is not there when \
                 limits.message has passed since its first byte is TooSlow; Idle is for \
                 nothing at all.",
            )
            .fail();
    }
    if let Some(problem) = outside_limit(
        first_byte,
        answers.times[0],
        slow_limits.message,
        ms(0),
        LATE,
    ) {
        let started_late = answers.times[0].saturating_duration_since(slow_reading.started);
        step.report()
            .did(&did)
            .did(&format!("called {}", slow_reading.call))
            .expected(&format!(
                "TooSlow {} after the message's first byte",
                millis(slow_limits.message)
            ))
            .got(&format!(
                "TooSlow {problem} (and {} after the call)",
                millis(started_late)
            ))
            .hint(
                "the message's limit counts from its first byte, not from the call: until \
                 the first byte, the idle limit applies; then limits.message from that byte.",
            )
            .fail();
    }
}

/// Fails unless the steady client's message, in pieces further apart than
/// its idle limit, came whole, then End.
pub fn expect_steady_in_time(
    step: &Step,
    steady: &Peer,
    steady_reading: &Reading,
    steady_limits: Limits,
) {
    let answers = steady_reading.all(step, Instant::now() + DEADLINE);
    let expected = [Heard::Line(IN_TIME.concat()), Heard::End];
    let did = format!(
        "the check (steady) sent {} in three pieces, {} apart, then closed its sending side",
        show(&IN_TIME.concat()),
        millis(SLOW_PACE)
    );
    if let Some(error) = &answers.error {
        fail_with_error(step, &did, &steady_reading.call, error);
    }
    if answers.heard != expected {
        steady.note("check expected the whole message");
        step.report()
            .did(&did)
            .did(&format!("called {} again and again", steady_reading.call))
            .expected(&describe_all(&expected))
            .got(&describe_all(&answers.heard))
            .observed(&match answers.heard.first() {
                Some(Heard::Idle | Heard::TooSlow) => format!(
                    "the pieces came {} apart, more than limits.idle ({}), but the whole \
                     message took {}, well within limits.message ({}). The idle limit is \
                     only for the wait before a message begins; once its first byte has \
                     come, only limits.message counts.",
                    millis(SLOW_PACE),
                    millis(steady_limits.idle),
                    millis(2 * SLOW_PACE),
                    millis(steady_limits.message)
                ),
                _ => hint_for_heard(&expected, &answers.heard),
            })
            .fail();
    }
}
