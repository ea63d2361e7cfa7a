//! Runs the student's code with a deadline, so a function that blocks forever
//! fails in seconds with a message that names the step instead of hanging.

use std::any::Any;
use std::panic::AssertUnwindSafe;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use crate::DEADLINE;
use crate::report::{Panic, Step};
use crate::run_state;

/// The student's code, running on a thread of its own.
pub struct Running<T> {
    call: String,
    finished: mpsc::Receiver<thread::Result<T>>,
}

/// Starts `code` on its own thread. `call` shows how it was called, for instance
/// `listen("127.0.0.1:0")`, and appears in the failure message.
pub fn start<T: Send + 'static>(
    step: &Step,
    call: &str,
    code: impl FnOnce() -> T + Send + 'static,
) -> Running<T> {
    start_with(step, call, (), |_| code())
}

/// Like [`start`], and `code` gets `value` (for instance a connection) to use.
/// `value` is dropped only after a panic of `code` has been recorded, so a
/// check that sees the connection close already knows about the panic.
pub fn start_with<V: Send + 'static, T: Send + 'static>(
    step: &Step,
    call: &str,
    mut value: V,
    code: impl FnOnce(&mut V) -> T + Send + 'static,
) -> Running<T> {
    let (sender, finished) = mpsc::channel();
    let step = step.clone();
    let call_text = call.to_string();
    step.code_started();
    thread::spawn(move || {
        run_state::mark_student_thread();
        let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| code(&mut value)));
        let panic = outcome.as_ref().err().map(|panic| {
            let last = run_state::last_student_panic();
            Panic {
                call: call_text,
                message: format!("{} (at {})", panic_text(&**panic), last.location),
                location: last.location,
                backtrace: last.backtrace,
            }
        });
        step.code_finished(panic);
        // The check may have stopped waiting already; then nobody listens, and that is fine.
        let _ = sender.send(outcome);
        drop(value);
    });
    Running {
        call: call.to_string(),
        finished,
    }
}

impl<T> Running<T> {
    /// Waits for the code to finish, at most [`DEADLINE`]. A panic or a hang fails
    /// the check; `hang_hint` says why the code may be stuck.
    #[track_caller]
    pub fn finish(self, step: &Step, hang_hint: &str) -> T {
        match self.finished.recv_timeout(DEADLINE) {
            Ok(Ok(value)) => value,
            Ok(Err(_)) => fail_with_panic(step),
            Err(_) => {
                step.note_waited_out();
                step.report()
                    .expected(&format!("{} to return", self.call))
                    .got(&format!(
                        "still running after {} s: it hangs",
                        DEADLINE.as_secs_f32()
                    ))
                    .observed(hang_hint)
                    .fail()
            }
        }
    }

    /// Fails the check if the code finishes within `wait`: shows that a
    /// function waits for something (`waits_for`) instead of returning early.
    #[track_caller]
    pub fn expect_still_running(&self, wait: Duration, step: &Step, waits_for: &str, hint: &str)
    where
        T: std::fmt::Debug,
    {
        match self.finished.recv_timeout(wait) {
            Err(_) => {}
            Ok(Err(_)) => fail_with_panic(step),
            Ok(Ok(value)) => step
                .report()
                .expected(&format!("{} to wait for {waits_for}", self.call))
                .got(&format!("it returned at once: {}", short_debug(&value)))
                .hint(hint)
                .fail(),
        }
    }
}

impl<U> Running<anyhow::Result<U>> {
    /// Waits like [`Running::finish`], then unwraps the result: an `Err` fails
    /// the check with the hint for that kind of error.
    #[track_caller]
    pub fn finish_ok(self, step: &Step, hang_hint: &str) -> U {
        let call = self.call.clone();
        step.ok(&call, self.finish(step, hang_hint))
    }
}

/// Runs `code` and waits for it, at most [`DEADLINE`].
#[track_caller]
pub fn run<T: Send + 'static>(
    step: &Step,
    call: &str,
    hang_hint: &str,
    code: impl FnOnce() -> T + Send + 'static,
) -> T {
    start(step, call, code).finish(step, hang_hint)
}

/// The panic is already recorded in the step, and the report shows it.
#[track_caller]
fn fail_with_panic(step: &Step) -> ! {
    step.report().fail()
}

/// The text a panic was raised with.
pub(crate) fn panic_text(panic: &(dyn Any + Send)) -> String {
    if let Some(text) = panic.downcast_ref::<&str>() {
        text.to_string()
    } else if let Some(text) = panic.downcast_ref::<String>() {
        text.clone()
    } else {
        "(a panic without a message)".to_string()
    }
}

/// A value's `Debug`, cut to its first line and 300 characters: an error's
/// `Debug` can hold a whole backtrace.
fn short_debug(value: &impl std::fmt::Debug) -> String {
    let text = format!("{value:?}");
    let first_line = text.lines().next().unwrap_or_default();
    match first_line.char_indices().nth(300) {
        Some((cut, _)) => format!("{}...", &first_line[..cut]),
        None => first_line.to_string(),
    }
}
