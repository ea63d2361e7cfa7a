//! What one run of a lesson's checks remembers from step to step, and how it
//! prints failures.
//!
//! - A failing check prints its report at once, as it fails, so the first
//!   explanation comes within seconds, not after every later check.
//! - Once a step has hung, the checks stop at the next step: each later one
//!   would only wait out its own deadline too. Stopping the process also
//!   stops code of yours that still runs, so it cannot flood the output.
//! - No backtrace of the checks' own code is ever printed, whatever
//!   RUST_BACKTRACE says; a backtrace of your code's panic only when you ask
//!   for it with SEESAW_BACKTRACE=1.
//! - If your code ends the whole test process (`std::process::exit`), the
//!   step that was running still says so.
//! - One report per cause: a step that fails because your code panicked
//!   where it panicked in an earlier step says so in one line.

use std::cell::RefCell;
use std::panic::PanicHookInfo;
use std::sync::{Mutex, Once};

use crate::report::ReportText;

/// The state of this run of checks.
struct RunState {
    /// The step that is running, and its chapter.
    current: Option<(String, String)>,
    /// The first step that hung and failed.
    hung: Option<String>,
    /// The running step failed with a one-line mark, not a report.
    marked: bool,
    /// Panics in the student's code during the running step, as the hook
    /// saw them (see [`stray_panics`]).
    stray_panics: Vec<crate::report::Panic>,
    /// The causes of failures so far (where the code panicked), each with
    /// the step that reported it and the cause in words.
    causes: Vec<Cause>,
}

/// The cause of a failure, and the step that reported it in full.
struct Cause {
    location: String,
    step: String,
    words: String,
    /// A `todo!()` left in place.
    todo: bool,
}

static STATE: Mutex<RunState> = Mutex::new(RunState {
    current: None,
    hung: None,
    marked: false,
    stray_panics: Vec::new(),
    causes: Vec::new(),
});

fn state() -> std::sync::MutexGuard<'static, RunState> {
    STATE
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

pub(crate) fn step_started(title: &str, chapter: &str) {
    let mut state = state();
    state.current = Some((title.to_string(), chapter.to_string()));
    state.marked = false;
    state.stray_panics.clear();
    drop(state);
    abort_report::prepare(&exit_report(title, chapter, ABORTED));
}

pub(crate) fn step_ended() {
    state().current = None;
    abort_report::prepare("");
}

/// The panics of the student's code during the running step, as they
/// happened: on threads it started itself (a thread a connection, say),
/// which the checks do not watch, and on the checks' threads before the
/// check has recorded them. Either way the panic is the cause of what the
/// check saw.
pub(crate) fn stray_panics() -> Vec<crate::report::Panic> {
    state().stray_panics.clone()
}

/// True for a panic in the student's code rather than the checks', std's
/// or a library's: its file is a lesson's `src/` (a relative path; the
/// checks' files are under `tests/`, std's and libraries' are absolute).
/// A check's own panic on purpose, inside the student's code, is not one.
fn in_students_code(location: &str) -> bool {
    !location.starts_with('/') && location.contains("src/") && !location.contains("tests/")
}

/// The running step failed with a one-line mark: an earlier report says it all.
pub(crate) fn step_marked() {
    state().marked = true;
}

/// Whether the last step failed with a one-line mark rather than a report.
pub(crate) fn last_step_marked() -> bool {
    state().marked
}

pub(crate) fn step_hung(title: &str) {
    state().hung.get_or_insert_with(|| title.to_string());
}

pub(crate) fn hung_step() -> Option<String> {
    state().hung.clone()
}

/// One report per cause: if an earlier step failed because the code
/// panicked at `location`, that step (`step 1`) and the cause in its words;
/// else `None`, and `step` is remembered as the one that reports this cause.
pub(crate) fn earlier_step_with_cause(
    location: &str,
    words: &str,
    todo: bool,
    step: &str,
) -> Option<(String, String)> {
    let mut state = state();
    if let Some(cause) = state.causes.iter().find(|cause| cause.location == location) {
        return Some((cause.step.clone(), cause.words.clone()));
    }
    state.causes.push(Cause {
        location: location.to_string(),
        step: step.to_string(),
        words: words.to_string(),
        todo,
    });
    None
}

/// The step that reported a `todo!()` in full before `step` did, if any: a
/// later `todo!()` needs no second full report, its place says it all.
pub(crate) fn earlier_todo_step(step: &str) -> Option<String> {
    let state = state();
    let first = state.causes.iter().find(|cause| cause.todo)?;
    (first.step != step).then(|| first.step.clone())
}

/// Ends the run of checks after a step hung: says so, and exits, so that no
/// later check waits out its deadline, and code of the student's that is
/// still running (perhaps in a loop that prints) stops too.
pub(crate) fn stop_after_hang(hung: &str) -> ! {
    let number = hung.split(':').next().unwrap_or(hung);
    print_now(&format!(
        "\n\nThe checks stop here: {number} hung (its report is above), and every check \
         after it would only wait out its own deadline too.\nFix {number}, then run the \
         checks again.\n\n"
    ));
    state().current = None; // no step is running: the exit report stays quiet
    std::process::exit(101)
}

thread_local! {
    /// Set on the threads that run the student's code for a check.
    static STUDENT_THREAD: RefCell<Option<LastPanic>> = const { RefCell::new(None) };
}

/// Where the student's code panicked, kept for the report.
#[derive(Clone, Default)]
pub(crate) struct LastPanic {
    pub location: String,
    pub backtrace: Option<String>,
}

/// Marks this thread as one that runs the student's code.
pub(crate) fn mark_student_thread() {
    STUDENT_THREAD.with(|cell| *cell.borrow_mut() = Some(LastPanic::default()));
}

/// Where the student's code on this thread last panicked.
pub(crate) fn last_student_panic() -> LastPanic {
    STUDENT_THREAD.with(|cell| cell.borrow().clone().unwrap_or_default())
}

/// True when the student asked to see where their code panicked.
fn backtrace_wanted() -> bool {
    std::env::var_os("SEESAW_BACKTRACE").is_some_and(|value| value != "0")
}

/// Installs, once per run, the panic hook that prints failures.
pub(crate) fn install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        std::panic::set_hook(Box::new(on_panic));
        install_exit_report();
        abort_report::install();
    });
}

fn on_panic(info: &PanicHookInfo) {
    if let Some(ReportText(text)) = info.payload().downcast_ref::<ReportText>() {
        print_now(text);
        return;
    }
    let location = info
        .location()
        .map(|at| format!("{}:{}", at.file(), at.line()))
        .unwrap_or_default();
    let is_student_thread = STUDENT_THREAD.with(|cell| {
        let mut cell = cell.borrow_mut();
        let Some(last) = cell.as_mut() else {
            return false;
        };
        last.location = location.clone();
        last.backtrace = backtrace_wanted().then(|| {
            from_the_students_code(&std::backtrace::Backtrace::force_capture().to_string())
        });
        true
    });
    let message = crate::bounded::panic_text(info.payload());
    // Noted now, before the panic unwinds: unwinding closes the student's
    // sockets, and a check that sees them close may report at once.
    let mut state = state();
    if state.current.is_some() && in_students_code(&location) {
        state.stray_panics.push(crate::report::Panic {
            call: String::new(),
            message: format!("{message} (at {location})"),
            location: location.clone(),
            backtrace: None,
        });
    }
    drop(state);
    if is_student_thread {
        // The check's report shows this panic as the cause of the failure.
        return;
    }
    // Any other panic, for instance on a thread your code started: said in one
    // line, held back with your code's output, shown if the check fails.
    let thread = std::thread::current();
    let name = thread.name().unwrap_or("unnamed");
    eprintln!("thread '{name}' panicked at {location}: {message}");
}

/// The frames of a backtrace that matter to the student: from just after the
/// panic machinery (this hook, std's and core's panicking) to the first
/// frame of the checks' own code, which is kept to show who called. Each
/// frame is its line `N: name` and the `at FILE:LINE` lines after it.
fn from_the_students_code(backtrace: &str) -> String {
    let mut frames: Vec<Vec<&str>> = Vec::new();
    for line in backtrace.lines() {
        let is_frame = line
            .trim_start()
            .split_once(": ")
            .is_some_and(|(number, _)| {
                !number.is_empty() && number.chars().all(|c| c.is_ascii_digit())
            });
        match frames.last_mut() {
            Some(frame) if !is_frame => frame.push(line),
            _ => frames.push(vec![line]),
        }
    }
    let name = |frame: &Vec<&str>| frame[0].trim_start().to_string();
    let after_panic = frames
        .iter()
        .rposition(|frame| {
            let name = name(frame);
            name.contains("panicking") || name.contains("rust_begin_unwind")
        })
        .map_or(0, |at| at + 1);
    let mut kept: Vec<String> = Vec::new();
    for frame in &frames[after_panic..] {
        kept.extend(frame.iter().map(|line| line.to_string()));
        let caller = name(frame);
        let (_, caller) = caller.split_once(": ").unwrap_or_default();
        if caller.starts_with("checks::") || caller.starts_with("seesaw_checks::") {
            kept.push("      (the checks' and std's own frames are not shown)".to_string());
            break;
        }
    }
    kept.join("\n")
}

/// If the student's code calls `std::process::exit` during a step, the test
/// process ends without a report. The C library runs `atexit` handlers on the
/// way out, so one of ours says which step was running, and why it failed.
fn install_exit_report() {
    unsafe extern "C" {
        fn atexit(callback: extern "C" fn()) -> std::ffi::c_int;
    }
    // SAFETY: `atexit` only stores the function pointer; `report_exit` is an
    // ordinary Rust function that takes no arguments and does not unwind.
    unsafe {
        atexit(report_exit);
    }
}

extern "C" fn report_exit() {
    let current = match STATE.try_lock() {
        Ok(state) => state.current.clone(),
        Err(_) => return,
    };
    let Some((title, chapter)) = current else {
        return; // no step was running: the checks ended normally
    };
    print_now(&exit_report(&title, &chapter, EXITED));
}

const EXITED: &str = "your code ended the whole test process (std::process::exit)";
const ABORTED: &str = "your code aborted the whole test process (std::process::abort, or \
     a panic while panicking)";

/// The report for code that ended the test process while `title` ran.
fn exit_report(title: &str, chapter: &str, what: &str) -> String {
    format!(
        "\n\n{title}\n  got       {what} while this check was running, so no check after it \
         could run.\n  hint      a library function returns an Err when something fails; only \
         main decides how the program exits. Remove the call that ends the process.\n  read      \
         book/src/lessons/{chapter}.md (mdbook serve book --open)\n\n"
    )
}

/// The C library's signal(), declared once for this crate (unix): the abort
/// report installs a handler with it, and a watched program gets Ctrl-C back.
#[cfg(unix)]
pub(crate) mod c {
    use std::ffi::c_int;

    pub const SIGINT: c_int = 2;
    pub const SIGABRT: c_int = 6;
    /// The default action: the null handler.
    pub const SIG_DFL: Option<extern "C" fn(c_int)> = None;

    unsafe extern "C" {
        pub fn signal(signal: c_int, handler: Option<extern "C" fn(c_int)>) -> usize;
    }
}

/// On unix, an abort (SIGABRT) ends the process without running `atexit`
/// handlers; a signal handler prints the report prepared when the step began.
#[cfg(unix)]
mod abort_report {
    use std::ffi::c_int;
    use std::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};

    use super::c::{SIGABRT, signal};

    static TEXT: AtomicPtr<u8> = AtomicPtr::new(std::ptr::null_mut());
    static LENGTH: AtomicUsize = AtomicUsize::new(0);

    unsafe extern "C" {
        fn write(fd: c_int, bytes: *const u8, count: usize) -> isize;
    }

    /// Keeps the report for the running step where the handler can reach it.
    /// (A few hundred bytes a step are leaked; a run has a few dozen steps.)
    pub fn prepare(text: &str) {
        let leaked: &'static [u8] = Box::leak(text.as_bytes().to_vec().into_boxed_slice());
        LENGTH.store(0, Ordering::SeqCst);
        TEXT.store(leaked.as_ptr().cast_mut(), Ordering::SeqCst);
        LENGTH.store(leaked.len(), Ordering::SeqCst);
    }

    pub fn install() {
        // SAFETY: `on_abort` only calls `write`, which is async-signal-safe.
        unsafe {
            signal(SIGABRT, Some(on_abort));
        }
    }

    extern "C" fn on_abort(_: c_int) {
        let length = LENGTH.load(Ordering::SeqCst);
        let text = TEXT.load(Ordering::SeqCst);
        if length > 0 && !text.is_null() {
            // SAFETY: `text` points to `length` leaked bytes that are never freed.
            unsafe {
                write(crate::captured::terminal_stderr(), text, length);
            }
        }
        // Returning lets abort() go on and end the process.
    }
}

#[cfg(not(unix))]
mod abort_report {
    pub fn prepare(_: &str) {}
    pub fn install() {}
}

/// Prints a report straight to the terminal, past the test harness's capture,
/// so it shows now, not after every later check. `cargo progress` reads
/// libtest's lines on stdout, so it asks for reports there too.
pub(crate) fn print_now(text: &str) {
    let to_stdout = std::env::var_os("SEESAW_REPORTS_TO_STDOUT").is_some();
    crate::captured::write_to_terminal(text, to_stdout);
}

#[cfg(test)]
mod tests {
    use super::{from_the_students_code, in_students_code};

    #[test]
    fn a_panic_is_the_students_when_it_is_in_a_lessons_src() {
        assert!(in_students_code("lessons/10-binary/src/lib.rs:161"));
        assert!(in_students_code("10-binary/src/lib.rs:161")); // a reference's
        assert!(!in_students_code("lessons/08-shutdown/tests/checks.rs:209"));
        assert!(!in_students_code("tests/src/peer.rs:40"));
        assert!(!in_students_code("/rustc/abc/library/core/src/option.rs:9"));
        assert!(!in_students_code(""));
    }

    #[test]
    fn a_backtrace_starts_at_the_students_frame_and_ends_at_the_checks() {
        let backtrace = "   0: seesaw_checks::run_state::on_panic
             at tests/src/run_state.rs:159:40
   1: std::panicking::panic_with_hook
   2: __rustc::rust_begin_unwind
   3: core::panicking::panic_fmt
   4: lesson_01_listen::listen
             at lessons/01-listen/src/lib.rs:28:5
   5: lesson_01_listen::helper
             at lessons/01-listen/src/lib.rs:40:5
   6: checks::call_listen::{{closure}}
             at lessons/01-listen/tests/checks.rs:77:9
   7: seesaw_checks::bounded::start::{{closure}}
   8: std::thread::lifecycle::spawn_unchecked";
        let kept = from_the_students_code(backtrace);
        let names: Vec<&str> = kept.lines().map(str::trim_start).collect();
        assert_eq!(names[0], "4: lesson_01_listen::listen");
        assert_eq!(names[1], "at lessons/01-listen/src/lib.rs:28:5");
        assert!(names.contains(&"6: checks::call_listen::{{closure}}"));
        assert!(!kept.contains("seesaw_checks::bounded"));
        assert!(!kept.contains("panicking"));
    }
}
