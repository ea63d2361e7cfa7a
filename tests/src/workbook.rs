//! The workbook around the checks: which lessons there are, which one is the
//! student's current lesson, and what a run of a lesson's checks came to.
//! `cargo progress`, `cargo hint` and `cargo seesaw` all ask here, so the
//! three always agree.
//!
//! The current lesson is, in this order:
//! 1. the one chosen last (in `cargo seesaw`, or named to `cargo hint`),
//!    remembered in the file [`REMEMBERED`] at the workbook's root;
//! 2. else the lowest lesson the student has started (its `src/lib.rs` is no
//!    longer the stub, see [`is_started`]) and not finished; when every
//!    started lesson is finished, the one after the highest of them;
//! 3. else the first lesson.
//!
//! Whether a lesson is finished takes a run of its checks, so the caller
//! says how to know ([`current_lesson`]'s `is_done`), and it is asked only
//! about started lessons, lowest first, until one is not done.

use std::path::Path;

/// Where the lesson chosen last is remembered, relative to the workbook's
/// root. The workbook's `.gitignore` ignores it.
pub const REMEMBERED: &str = ".seesaw-lesson";

/// The lesson folders, like `01-listen`, in order.
pub fn lesson_folders(root: &Path) -> Result<Vec<String>, String> {
    let lessons = root.join("lessons");
    let entries = std::fs::read_dir(&lessons)
        .map_err(|error| format!("cannot read {}: {error}", lessons.display()))?;
    let mut folders: Vec<String> = entries
        .filter_map(|entry| entry.ok())
        .filter(|entry| entry.path().join("Cargo.toml").is_file())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect();
    folders.sort();
    Ok(folders)
}

/// The folder a student means by `wanted`: `5`, `05`, `05-echo-loop` and
/// `lesson-05-echo-loop` all mean lesson 5.
pub fn find_lesson<'a>(folders: &'a [String], wanted: &str) -> Option<&'a String> {
    let wanted = wanted.strip_prefix("lesson-").unwrap_or(wanted);
    let number: u32 = wanted.split('-').next()?.parse().ok()?;
    folders
        .iter()
        .find(|folder| folder_number(folder) == Some(number))
}

/// The number of a lesson folder: 5 for `05-echo-loop`.
pub fn folder_number(folder: &str) -> Option<u32> {
    folder.split('-').next()?.parse().ok()
}

/// The lesson chosen last, if the file names a lesson that exists.
pub fn remembered(root: &Path, folders: &[String]) -> Option<String> {
    let text = std::fs::read_to_string(root.join(REMEMBERED)).ok()?;
    find_lesson(folders, text.trim()).cloned()
}

/// Remembers `folder` as the current lesson.
pub fn remember(root: &Path, folder: &str) -> std::io::Result<()> {
    std::fs::write(root.join(REMEMBERED), format!("{folder}\n"))
}

/// The current lesson (see the top of this file), or `None` when the
/// workbook has no lessons at all. `is_done` runs a lesson's checks.
pub fn current_lesson(
    root: &Path,
    folders: &[String],
    is_done: &mut dyn FnMut(&str) -> bool,
) -> Option<String> {
    let started: Vec<bool> = folders
        .iter()
        .map(|folder| is_started(root, folder))
        .collect();
    choose_current(
        folders,
        remembered(root, folders).as_deref(),
        &started,
        is_done,
    )
}

/// The rule behind [`current_lesson`], on plain values.
pub fn choose_current(
    folders: &[String],
    remembered: Option<&str>,
    started: &[bool],
    is_done: &mut dyn FnMut(&str) -> bool,
) -> Option<String> {
    if let Some(folder) = remembered.filter(|folder| folders.iter().any(|f| f == folder)) {
        return Some(folder.to_string());
    }
    let started: Vec<&String> = folders
        .iter()
        .zip(started)
        .filter(|(_, started)| **started)
        .map(|(folder, _)| folder)
        .collect();
    if let Some(folder) = started.iter().find(|folder| !is_done(folder)) {
        return Some(folder.to_string());
    }
    let after_highest = started
        .last()
        .and_then(|highest| folders.iter().position(|folder| folder == *highest))
        .map(|at| (at + 1).min(folders.len() - 1));
    folders.get(after_highest.unwrap_or(0)).cloned()
}

/// True when the student has changed the lesson's `src/lib.rs` from its stub.
///
/// A fingerprint of each stub is kept here ([`STUB_FINGERPRINTS`]) rather than
/// asking git: it works without git (a downloaded zip), and a student who
/// commits their work still counts as having started. The fingerprint ignores
/// line endings and trailing blanks, so an editor (or git on Windows) that
/// rewrites those does not count as a start. A lesson with no fingerprint
/// counts as not started. The workbook's own test
/// (`tests/tests/progress.rs`) fails when a stub changes without its
/// fingerprint.
pub fn is_started(root: &Path, folder: &str) -> bool {
    let Some((_, stub)) = STUB_FINGERPRINTS.iter().find(|(name, _)| *name == folder) else {
        return false;
    };
    let path = root.join("lessons").join(folder).join("src/lib.rs");
    match std::fs::read_to_string(path) {
        Ok(text) => fingerprint(&text) != *stub,
        Err(_) => false,
    }
}

/// The fingerprint of each lesson's stub `src/lib.rs`, as [`fingerprint`]
/// computes it.
pub const STUB_FINGERPRINTS: &[(&str, u64)] = &[
    ("01-listen", 0xb5b9_3eec_3071_5014),
    ("02-accept", 0x41c3_a6c6_2e14_e5b1),
    ("03-dial", 0xe396_26f3_985d_7329),
    ("04-echo-once", 0x3852_25da_2b1b_0907),
    ("05-echo-loop", 0xef4a_1e8d_3363_ae60),
    ("06-concurrent", 0x43db_e24e_a808_a3c6),
    ("07-timeouts", 0xdca5_e899_2a4f_0969),
    ("08-shutdown", 0x157b_afaa_b7c4_2c36),
    ("09-async", 0x4fe8_058e_e645_82a3),
    ("10-binary", 0x485f_d654_2478_0dd1),
    ("11-chat", 0x14cd_57a4_e7ef_9efa),
    ("12-async-chat", 0x46d1_efa3_985a_7a1b),
];

/// A 64-bit FNV-1a hash of the text, line by line, without line endings or
/// trailing blanks, and without blank lines at the end.
pub fn fingerprint(text: &str) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for line in text.trim_end().lines() {
        for byte in line.trim_end().bytes().chain([b'\n']) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    hash
}

/// What one run of a lesson's checks came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    Done,
    InProgress,
    NotStarted,
    TimedOut,
    DoesNotCompile,
}

/// A check that failed, and the lines of its report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// The test function's name, like `step_3_report_the_port_the_os_picked`.
    pub name: String,
    /// Everything printed between libtest's `test NAME ... ` and `FAILED`.
    pub report: Vec<String>,
}

/// What libtest's output says about a run of a lesson's checks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Summary {
    pub state: State,
    pub passed: usize,
    pub total: usize,
    /// Checks that could not run on this machine and said so (`Step::skip`),
    /// or that libtest ignored on this OS (`#[cfg_attr(..., ignore = "why")]`).
    /// They count neither as passed nor as failed.
    pub skipped: usize,
    /// The failed checks, in the order they ran.
    pub failures: Vec<Failure>,
    /// Checks that never ran: the run stopped after one of them hung, or the
    /// time limit passed. `passed + failures + not_run` is `total`, with one
    /// more, [`Summary::still_running`], when the time limit passed.
    pub not_run: usize,
    /// The check that was running when the time limit passed, if any.
    pub still_running: Option<String>,
    /// True when the run stopped early because a check hung.
    pub stopped_after_hang: bool,
}

/// The line the checks print when they stop after a step that hung
/// (`seesaw_checks::run_state`).
const STOPPED_AFTER_HANG: &str = "The checks stop here:";

impl Summary {
    /// Reads libtest's output (run with `SEESAW_REPORTS_TO_STDOUT`, so a
    /// failing check's report comes right after `test NAME ... `, and libtest
    /// then writes `FAILED` on a line of its own). `timed_out` says the run
    /// was stopped by a time limit; the output may also be cut short by a
    /// run still going: then the check that is running is neither passed nor
    /// failed yet.
    pub fn from_output(output: &str, timed_out: bool) -> Summary {
        let mut passed = 0;
        let mut total = 0;
        let mut skipped = 0;
        let mut failures: Vec<Failure> = Vec::new();
        let mut running: Option<Failure> = None;
        for line in output.lines() {
            if let Some(count) = line.strip_prefix("running ").and_then(|rest| {
                rest.strip_suffix(" tests")
                    .or_else(|| rest.strip_suffix(" test"))
            }) {
                total += count.parse::<usize>().unwrap_or(0);
            } else if let Some(rest) = line.strip_prefix("test ") {
                let (rest, skipped_whole) = without_skip_marks(rest);
                if rest.ends_with(" ... ok") && skipped_whole || rest.contains(" ... ignored") {
                    skipped += 1;
                } else if rest.ends_with(" ... ok") {
                    passed += 1;
                } else if let Some(name) = rest.strip_suffix(" ... FAILED") {
                    failures.push(Failure {
                        name: name.to_string(),
                        report: Vec::new(),
                    });
                } else if let Some(name) = rest.trim_end().strip_suffix(" ...") {
                    running = Some(Failure {
                        name: name.to_string(),
                        report: Vec::new(),
                    });
                }
            } else if let Some(check) = running.as_mut() {
                match line {
                    "ok" => {
                        passed += 1;
                        running = None;
                    }
                    "FAILED" => failures.extend(running.take()),
                    _ => check.report.push(line.to_string()),
                }
            }
        }
        let stopped_after_hang = output.contains(STOPPED_AFTER_HANG);
        // A check that started and never ended: the time limit passed while
        // it ran; or the run stopped after an earlier check hung, before this
        // one did anything; or the student's code ended the process.
        let still_running = match running {
            Some(check) if timed_out => Some(check.name),
            Some(_) if stopped_after_hang => None,
            Some(check) => {
                failures.push(check);
                None
            }
            None => None,
        };
        let not_run = total.saturating_sub(
            passed + skipped + failures.len() + usize::from(still_running.is_some()),
        );
        let state = state_of(passed + skipped, total, &failures, timed_out);
        Summary {
            state,
            passed,
            total,
            skipped,
            failures,
            not_run,
            still_running,
            stopped_after_hang,
        }
    }

    /// The summary of a lesson that does not compile.
    pub fn does_not_compile() -> Summary {
        Summary {
            state: State::DoesNotCompile,
            passed: 0,
            total: 0,
            skipped: 0,
            failures: Vec::new(),
            not_run: 0,
            still_running: None,
            stopped_after_hang: false,
        }
    }
}

/// libtest's line for a check without the marks the checks print on it
/// (`[skipped: ...] `, `[part skipped: ...] `, `[same cause as step 1:
/// ...] `; see `seesaw_checks::report`), and whether the check was skipped
/// whole. A check marked `same cause` still ends in `FAILED`: it counts as
/// a failure.
fn without_skip_marks(line: &str) -> (String, bool) {
    use crate::report::SKIPPED;
    let Some((name, mut rest)) = line.split_once(" ... ") else {
        return (line.to_string(), false);
    };
    let mut skipped_whole = false;
    // The marks come first after ` ... `, each in brackets, then a space.
    while rest.starts_with('[') {
        skipped_whole |= rest.starts_with(SKIPPED);
        rest = match rest.find("] ") {
            Some(end) => &rest[end + 2..],
            None => "",
        };
    }
    (format!("{name} ... {rest}"), skipped_whole)
}

/// `passed` counts the checks that were skipped and said why: a lesson whose
/// other checks all pass is done.
fn state_of(passed: usize, total: usize, failures: &[Failure], timed_out: bool) -> State {
    // Not started: the very first check still fails on the stub's todo!().
    let stub_untouched = failures.first().is_some_and(|check| {
        let first_check = check.name.starts_with("step_1_") || check.name.starts_with("step_01_");
        first_check
            && check
                .report
                .iter()
                .any(|line| line.contains("not yet implemented"))
    });
    if timed_out {
        State::TimedOut
    } else if total > 0 && passed == total {
        State::Done
    } else if passed == 0 || stub_untouched {
        State::NotStarted
    } else {
        State::InProgress
    }
}

/// The first line of a report that names its step (`step 3: ...`), or the
/// check's name when the report has none.
pub fn step_title(failure: &Failure) -> String {
    failure
        .report
        .iter()
        .find(|line| line.starts_with("step "))
        .cloned()
        .unwrap_or_else(|| failure.name.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folders() -> Vec<String> {
        ["01-listen", "02-accept", "05-echo-loop", "12-async-chat"]
            .map(String::from)
            .to_vec()
    }

    #[test]
    fn a_lesson_can_be_named_by_number_with_or_without_its_zero() {
        let folders = folders();
        for wanted in ["5", "05", "05-echo-loop", "lesson-05-echo-loop", "005"] {
            assert_eq!(
                find_lesson(&folders, wanted).map(String::as_str),
                Some("05-echo-loop"),
                "{wanted}"
            );
        }
        assert_eq!(
            find_lesson(&folders, "12").map(String::as_str),
            Some("12-async-chat")
        );
        for wanted in ["3", "42", "", "five", "-5"] {
            assert_eq!(find_lesson(&folders, wanted), None, "{wanted}");
        }
    }

    #[test]
    fn the_current_lesson_is_the_one_chosen_then_the_first_started_not_done_then_the_first() {
        let folders = folders();
        let none = [false; 4];
        let first_three = [true, true, true, false];
        let second = [false, true, false, false];
        let mut nothing_done = |_: &str| false;
        let mut first_two_done = |folder: &str| folder < "05";
        let mut asked = Vec::new();
        let mut all_done = |folder: &str| {
            asked.push(folder.to_string());
            true
        };
        assert_eq!(
            choose_current(
                &folders,
                Some("05-echo-loop"),
                &first_three,
                &mut nothing_done
            )
            .as_deref(),
            Some("05-echo-loop")
        );
        // A student who started at lesson 2 is not sent back to lesson 1.
        assert_eq!(
            choose_current(&folders, None, &second, &mut nothing_done).as_deref(),
            Some("02-accept")
        );
        // A student who works in order is where they stopped.
        assert_eq!(
            choose_current(&folders, None, &first_three, &mut first_two_done).as_deref(),
            Some("05-echo-loop")
        );
        // Every started lesson done: the one after the highest of them.
        assert_eq!(
            choose_current(&folders, None, &second, &mut all_done).as_deref(),
            Some("05-echo-loop")
        );
        assert_eq!(asked, ["02-accept"], "only started lessons are checked");
        assert_eq!(
            choose_current(&folders, None, &none, &mut nothing_done).as_deref(),
            Some("01-listen")
        );
        // A remembered lesson that no longer exists is ignored.
        assert_eq!(
            choose_current(&folders, Some("07-gone"), &second, &mut nothing_done).as_deref(),
            Some("02-accept")
        );
        assert_eq!(choose_current(&[], None, &[], &mut nothing_done), None);
    }

    #[test]
    fn the_fingerprint_ignores_line_endings_and_trailing_blanks_only() {
        let stub = "fn main() {\n    todo!()\n}\n";
        assert_eq!(
            fingerprint(stub),
            fingerprint("fn main() {\r\n    todo!()  \r\n}\r\n\r\n")
        );
        assert_ne!(
            fingerprint(stub),
            fingerprint("fn main() {\n    todo!();\n}\n")
        );
        assert_ne!(
            fingerprint(stub),
            fingerprint("fn main() {\n  todo!()\n}\n")
        );
    }

    const HUNG_AT_2: &str = "\nrunning 5 tests\n\
        test step_1_a ... ok\n\
        test step_2_b ... \n\nstep 2: b answers\n  got       nothing\n\nFAILED\n\
        test step_3_c ... \n\nThe checks stop here: step 2 hung (its report is above)\n";

    #[test]
    fn checks_not_run_after_a_hang_add_up() {
        let summary = Summary::from_output(HUNG_AT_2, false);
        assert_eq!(summary.passed, 1);
        assert_eq!(summary.failures.len(), 1);
        assert_eq!(summary.failures[0].name, "step_2_b");
        // Steps 3, 4 and 5 never ran; step 3 had only been announced.
        assert_eq!(summary.not_run, 3);
        assert!(summary.stopped_after_hang);
        assert_eq!(summary.state, State::InProgress);
        assert_eq!(step_title(&summary.failures[0]), "step 2: b answers");
    }

    #[test]
    fn a_check_still_running_at_the_time_limit_is_neither_failed_nor_not_run() {
        let output = "running 3 tests\ntest step_1_a ... ok\ntest step_2_b ... ";
        let summary = Summary::from_output(output, true);
        assert_eq!(summary.still_running.as_deref(), Some("step_2_b"));
        assert_eq!(
            (summary.passed, summary.failures.len(), summary.not_run),
            (1, 0, 1)
        );
        assert_eq!(summary.state, State::TimedOut);
    }

    #[test]
    fn a_check_that_ended_the_process_failed() {
        let output = "running 2 tests\ntest step_1_a ... \nstep 1: a\n  got  an exit\n";
        let summary = Summary::from_output(output, false);
        assert_eq!(summary.failures.len(), 1);
        assert_eq!(summary.not_run, 1);
        assert_eq!(summary.state, State::NotStarted);
    }

    #[test]
    fn every_check_passing_is_done() {
        let output = "running 2 tests\ntest step_1_a ... ok\ntest step_2_b ... ok\n";
        let summary = Summary::from_output(output, false);
        assert_eq!(summary.state, State::Done);
        assert_eq!(summary.not_run, 0);
    }

    #[test]
    fn skipped_checks_and_parts_are_counted_apart() {
        let output = "running 4 tests\n\
            test step_1_a ... [part skipped: the IPv6 part: no ::1] ok\n\
            test step_2_b ... [skipped: this OS refuses] ok\n\
            test step_3_c ... ignored, Windows has no SIGINT\n\
            test step_4_d ... [part skipped: IPv6: none] \n\
            \n\
            step 4: d\n  hint      h\n\
            FAILED\n";
        let summary = Summary::from_output(output, false);
        assert_eq!(summary.passed, 1);
        assert_eq!(summary.skipped, 2);
        assert_eq!(summary.failures.len(), 1);
        assert_eq!(summary.failures[0].name, "step_4_d");
        assert_eq!(summary.not_run, 0);
    }

    #[test]
    fn a_failure_for_an_earlier_cause_counts_as_failed() {
        let output = "running 3 tests\n\
            test step_1_a ... \n\
            \n\
            step 1: a\n  panicked  listen(..) panicked: not yet implemented\n\
            FAILED\n\
            test step_2_b ... [same cause as step 1: the todo!() in listen (src/lib.rs:28)] FAILED\n\
            test step_3_c ... ok\n";
        let summary = Summary::from_output(output, false);
        assert_eq!(summary.passed, 1);
        assert_eq!(summary.skipped, 0);
        let failed: Vec<&str> = summary.failures.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(failed, ["step_1_a", "step_2_b"]);
        assert_eq!(summary.not_run, 0);
        assert_eq!(summary.state, State::NotStarted);
    }
}
