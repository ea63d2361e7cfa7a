//! Timed calls of the student's code: when it returned, and how that compares
//! with a limit. For checks of deadlines and timeouts, and for checks that
//! wait less than [`DEADLINE`](crate::DEADLINE) so that a hang late in a
//! lesson is still explained within 2 s.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::bounded::{self, Running};
use crate::report::Step;

/// `Duration::from_millis`, short, for checks full of limits.
pub fn ms(millis: u64) -> Duration {
    Duration::from_millis(millis)
}

/// A duration as the reports show it: `120 ms`.
pub fn millis(duration: Duration) -> String {
    format!("{} ms", duration.as_millis())
}

/// How an event at `at` compares with its `limit`, counted from `start`:
/// `None` if it came in time, or else what went wrong, in words. It may come
/// `early` before the limit (the check's clock started a little late) and
/// `late` after it (a busy machine wakes a thread a little late).
pub fn outside_limit(
    start: Instant,
    at: Instant,
    limit: Duration,
    early: Duration,
    late: Duration,
) -> Option<String> {
    let took = at.saturating_duration_since(start);
    if took + early < limit {
        Some(format!(
            "after {}, which is before the limit of {}: too early",
            millis(took),
            millis(limit)
        ))
    } else if took > limit + late {
        Some(format!(
            "after {}, which is later than the limit of {} (plus {} to spare): too late",
            millis(took),
            millis(limit),
            millis(late)
        ))
    } else {
        None
    }
}

/// The student's code running on a thread of its own; what it returns comes
/// back with the time it returned.
pub struct Timed<T> {
    call: String,
    started: Instant,
    result: mpsc::Receiver<(T, Instant)>,
    /// Kept so that the thread counts as the student's code until it ends.
    _running: Running<()>,
}

/// Starts `code` on its own thread. `call` shows how it was called, for
/// instance `dial_within(ADDR, 60 ms)`, in the reports.
pub fn start<T: Send + 'static>(
    step: &Step,
    call: &str,
    code: impl FnOnce() -> T + Send + 'static,
) -> Timed<T> {
    let (sender, result) = mpsc::channel();
    let started = Instant::now();
    let running = bounded::start(step, call, move || {
        let value = code();
        let _ = sender.send((value, Instant::now()));
    });
    Timed {
        call: call.to_string(),
        started,
        result,
        _running: running,
    }
}

/// Runs `code` and waits at most `wait` for it; a hang or a panic fails the
/// check, with `hang_hint` for a hang.
#[track_caller]
pub fn run_within<T: Send + 'static>(
    step: &Step,
    call: &str,
    wait: Duration,
    hang_hint: &str,
    code: impl FnOnce() -> T + Send + 'static,
) -> T {
    start(step, call, code).finish_within(step, wait, hang_hint)
}

impl<T> Timed<T> {
    /// How it was called, for reports.
    pub fn call(&self) -> &str {
        &self.call
    }

    /// When it was started.
    pub fn started(&self) -> Instant {
        self.started
    }

    /// What it returned and when, if it returns before `deadline`. A panic
    /// fails the check (the report shows it); not returning is for the
    /// caller to judge.
    #[track_caller]
    pub fn returned_by(&self, step: &Step, deadline: Instant) -> Option<(T, Instant)> {
        let wait = deadline.saturating_duration_since(Instant::now());
        match self.result.recv_timeout(wait) {
            Ok(returned) => Some(returned),
            Err(mpsc::RecvTimeoutError::Timeout) => None,
            Err(mpsc::RecvTimeoutError::Disconnected) => step
                .report()
                .expected(&format!("{} to return", self.call))
                .got("it panicked")
                .fail(),
        }
    }

    /// What it returned and when, waiting until `deadline`; fails as a hang,
    /// with `hang_hint`, if it has not returned by then.
    #[track_caller]
    pub fn finish_by(&self, step: &Step, deadline: Instant, hang_hint: &str) -> (T, Instant) {
        match self.returned_by(step, deadline) {
            Some(returned) => returned,
            None => self.fail_as_hang(step, self.started.elapsed(), hang_hint),
        }
    }

    /// What it returned, waiting at most `wait` from now; fails as a hang,
    /// with `hang_hint`, if it has not returned by then.
    #[track_caller]
    pub fn finish_within(self, step: &Step, wait: Duration, hang_hint: &str) -> T {
        match self.returned_by(step, Instant::now() + wait) {
            Some((value, _)) => value,
            None => self.fail_as_hang(step, wait, hang_hint),
        }
    }

    #[track_caller]
    fn fail_as_hang(&self, step: &Step, waited: Duration, hang_hint: &str) -> ! {
        step.note_waited_out();
        step.report()
            .expected(&format!("{} to return", self.call))
            .got(&format!("still running after {}: it hangs", millis(waited)))
            .observed(hang_hint)
            .fail()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_in_milliseconds() {
        assert_eq!(millis(ms(120)), "120 ms");
        assert_eq!(millis(Duration::from_micros(1500)), "1 ms");
    }

    #[test]
    fn outside_limit_says_early_late_or_nothing() {
        let start = Instant::now();
        let (limit, late) = (ms(100), ms(50));
        assert_eq!(
            outside_limit(start, start + ms(120), limit, ms(0), late),
            None
        );
        assert_eq!(
            outside_limit(start, start + ms(95), limit, ms(10), late),
            None
        );
        let early = outside_limit(start, start + ms(40), limit, ms(0), late).unwrap();
        assert!(early.starts_with("after 40 ms") && early.ends_with("too early"));
        let later = outside_limit(start, start + ms(200), limit, ms(0), late).unwrap();
        assert!(later.contains("plus 50 ms to spare") && later.ends_with("too late"));
    }

    #[test]
    fn a_timed_call_brings_back_its_value_and_time() {
        let step = Step::new("timing: unit test", "none");
        let timed = start(&step, "add(1, 2)", || 1 + 2);
        assert_eq!(timed.call(), "add(1, 2)");
        let (value, at) = timed.finish_by(&step, Instant::now() + ms(1000), "never");
        assert_eq!(value, 3);
        assert!(at >= timed.started());
        assert_eq!(run_within(&step, "two()", ms(1000), "never", || 2), 2);
    }

    #[test]
    fn a_slow_call_is_not_back_by_an_early_deadline() {
        let step = Step::new("timing: unit test", "none");
        let (_keep, nothing) = mpsc::channel::<()>();
        // Nothing is ever sent: the call takes its whole 100 ms.
        let timed = start(&step, "slow()", move || {
            nothing.recv_timeout(ms(100)).is_err()
        });
        assert!(timed.returned_by(&step, Instant::now() + ms(10)).is_none());
        let (waited_out, _) = timed.finish_by(&step, Instant::now() + ms(1000), "never");
        assert!(waited_out);
    }
}
