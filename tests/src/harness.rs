//! The checks' own test harness: `cargo test -p lesson-NN-step` runs this
//! instead of Rust's standard one (libtest; see `harness = false` in each
//! lesson's Cargo.toml).
//!
//! It runs a lesson's checks one after another, in the order of their names,
//! and prints one line for each, as libtest does (`test step_01_... ... ok`),
//! so that `cargo progress`, `cargo seesaw` and editors read it as before.
//! What it leaves out is libtest's list of every failed check's name at the
//! end: a failing check has already printed its report as it failed (see
//! [`crate::run_state`]), or a one-line mark when an earlier step's report
//! says it all. An untouched lesson so prints one screen, not three.
//!
//! It understands libtest's usual arguments: names to filter by (`cargo test
//! -p lesson-05-echo-loop step_05` runs the checks whose names contain
//! `step_05`), `--exact`, `--skip NAME`, `--list`; the rest (`--nocapture`,
//! `--test-threads`, ...) are accepted and change nothing: the checks always
//! run one at a time, and a report is always printed at once.
//!
//! A lesson's `tests/checks.rs` names its checks at its end:
//!
//! ```ignore
//! seesaw_checks::checks![step_01_listen_binds, step_02_the_port_is_chosen];
//! ```

use std::process::ExitCode;
use std::time::Instant;

use crate::{captured, report, run_state};

/// One check: its name and its function, which panics when the check fails.
#[derive(Clone, Copy)]
pub struct Check {
    name: &'static str,
    run: fn(),
}

impl Check {
    pub fn new(name: &'static str, run: fn()) -> Check {
        Check { name, run }
    }
}

/// The `main` of a lesson's checks: `checks![step_01_a, step_02_b, ...]`.
#[macro_export]
macro_rules! checks {
    ($($check:ident),+ $(,)?) => {
        fn main() -> std::process::ExitCode {
            $crate::harness::run(&[$($crate::harness::Check::new(stringify!($check), $check)),+])
        }
    };
}

const USAGE: &str = "\
Usage: cargo test -p lesson-NN-step [-- [NAME...] [OPTIONS]]

Runs the lesson's checks one after another; with NAMEs, only the checks whose
names contain one of them.

  --exact        a NAME must be the whole name
  --skip NAME    leave out the checks whose names contain NAME
  --list         list the checks, run none
  --help         this text
(libtest's other options are accepted and change nothing.)";

/// What the command line asked for.
#[derive(Debug, Default, PartialEq)]
struct Options {
    filters: Vec<String>,
    skip: Vec<String>,
    exact: bool,
    list: bool,
    terse: bool,
    /// Only the ignored checks (there are none: a check that cannot run here
    /// says so, and is counted as skipped).
    only_ignored: bool,
    /// `cargo bench` runs test targets with `--bench`: checks are no benchmarks.
    bench: bool,
    help: bool,
}

/// libtest's options that take a value, accepted and left alone.
const IGNORED_WITH_VALUE: &[&str] = &[
    "--color",
    "--format",
    "--logfile",
    "--test-threads",
    "--shuffle-seed",
    "-Z",
];

/// libtest's flags that change nothing here.
const IGNORED_FLAGS: &[&str] = &[
    "--nocapture",
    "--show-output",
    "--include-ignored",
    "--test",
    "--report-time",
    "--ensure-time",
    "--shuffle",
    "--force-run-in-process",
    "--exclude-should-panic",
    "--no-capture",
];

impl Options {
    fn parse(args: impl IntoIterator<Item = String>) -> Result<Options, String> {
        let mut options = Options::default();
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
            match arg.as_str() {
                "--exact" => options.exact = true,
                "--list" => options.list = true,
                "--ignored" => options.only_ignored = true,
                "--bench" => options.bench = true,
                "-h" | "--help" => options.help = true,
                "-q" | "--quiet" => options.terse = true,
                "--skip" => options.skip.push(value("--skip")?),
                flag if IGNORED_FLAGS.contains(&flag) => {}
                option if IGNORED_WITH_VALUE.contains(&option) => {
                    let given = value(option)?;
                    options.terse |= option == "--format" && given == "terse";
                }
                option if option.starts_with('-') && option.contains('=') => {
                    let (name, given) = option.split_once('=').unwrap_or_default();
                    if !IGNORED_WITH_VALUE.contains(&name) {
                        return Err(format!("unknown option {name}"));
                    }
                    options.terse |= name == "--format" && given == "terse";
                }
                option if option.starts_with('-') => {
                    return Err(format!("unknown option {option}"));
                }
                _ => options.filters.push(arg),
            }
        }
        Ok(options)
    }

    /// Whether the check called `name` runs.
    fn wants(&self, name: &str) -> bool {
        let matches = |pattern: &String| match self.exact {
            true => name == pattern,
            false => name.contains(pattern.as_str()),
        };
        !self.only_ignored
            && (self.filters.is_empty() || self.filters.iter().any(matches))
            && !self.skip.iter().any(matches)
    }
}

/// Runs the checks the command line asks for; the exit code is libtest's:
/// 0 when every check that ran passed, 101 when one failed.
pub fn run(checks: &[Check]) -> ExitCode {
    let options = match Options::parse(std::env::args().skip(1)) {
        Ok(options) => options,
        Err(error) => {
            eprintln!("error: {error}\n\n{USAGE}");
            return ExitCode::from(101);
        }
    };
    if options.help {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let mut chosen: Vec<Check> = match options.bench {
        true => Vec::new(),
        false => checks
            .iter()
            .copied()
            .filter(|c| options.wants(c.name))
            .collect(),
    };
    // In the order of their names, as libtest runs them: step_01 first.
    chosen.sort_by_key(|check| check.name);
    if options.list {
        list(&chosen, options.terse);
        return ExitCode::SUCCESS;
    }
    let outcome = run_in_turn(&chosen);
    print_line(&outcome.summary(checks.len() - chosen.len()));
    match outcome.failed {
        0 => ExitCode::SUCCESS,
        _ => ExitCode::from(101),
    }
}

fn list(checks: &[Check], terse: bool) {
    for check in checks {
        print_line(&format!("{}: test", check.name));
    }
    if !terse {
        print_line(&format!("\n{} tests, 0 benchmarks", checks.len()));
    }
}

/// What a run of checks came to.
struct Outcome {
    passed: usize,
    failed: usize,
    started: Instant,
}

impl Outcome {
    /// libtest's last line, which `cargo` and editors read.
    fn summary(&self, filtered_out: usize) -> String {
        let verdict = if self.failed == 0 { "ok" } else { "FAILED" };
        format!(
            "\ntest result: {verdict}. {} passed; {} failed; 0 ignored; 0 measured; \
             {filtered_out} filtered out; finished in {:.2}s\n",
            self.passed,
            self.failed,
            self.started.elapsed().as_secs_f64()
        )
    }
}

/// Runs each check on a thread named after it (as libtest does: a panic
/// names the check), one after another.
fn run_in_turn(checks: &[Check]) -> Outcome {
    let noun = if checks.len() == 1 { "test" } else { "tests" };
    print_line(&format!("\nrunning {} {noun}", checks.len()));
    let mut outcome = Outcome {
        passed: 0,
        failed: 0,
        started: Instant::now(),
    };
    for check in checks {
        print_now(&format!("test {} ... ", check.name));
        let capture = captured::start();
        let passed = std::thread::Builder::new()
            .name(check.name.to_string())
            .spawn(check.run)
            .map(|running| running.join().is_ok())
            .unwrap_or(false);
        let printed = capture.finish();
        if !passed && !run_state::last_step_marked() {
            show_printed(&printed);
        }
        match passed {
            true => outcome.passed += 1,
            false => outcome.failed += 1,
        }
        print_line(if passed { "ok" } else { "FAILED" });
    }
    outcome
}

/// What the student's code printed during a check that failed, under its
/// report (a check failed with a one-line mark shows nothing more).
fn show_printed(printed: &str) {
    if printed.trim().is_empty() {
        return;
    }
    let mut text =
        String::from("  printed during this check, by your code or a panic (its last lines):\n");
    for line in report::last_lines(printed, 12, 300) {
        text.push_str(&format!("      {line}\n"));
    }
    run_state::print_now(&format!("{text}\n"));
}

/// libtest's lines go to the real stdout, past the capture of the student's.
fn print_now(text: &str) {
    captured::write_to_terminal(text, true);
}

fn print_line(text: &str) {
    print_now(&format!("{text}\n"));
}

#[cfg(test)]
mod tests {
    use super::Options;

    fn parse(args: &[&str]) -> Result<Options, String> {
        Options::parse(args.iter().map(|arg| arg.to_string()))
    }

    #[test]
    fn names_filter_by_part_unless_exact() {
        let options = parse(&["step_05"]).unwrap();
        assert!(options.wants("step_05_echoes"));
        assert!(!options.wants("step_06_echoes"));
        let exact = parse(&["step_05", "--exact"]).unwrap();
        assert!(!exact.wants("step_05_echoes"));
        assert!(exact.wants("step_05"));
    }

    #[test]
    fn no_name_runs_all_but_the_skipped() {
        let options = parse(&["--skip", "step_02"]).unwrap();
        assert!(options.wants("step_01_a"));
        assert!(!options.wants("step_02_b"));
    }

    #[test]
    fn an_editors_options_are_understood() {
        // What rust-analyzer's "Run Test" passes, give or take.
        let options = parse(&["step_01_a", "--exact", "--nocapture", "--color=always"]).unwrap();
        assert!(options.wants("step_01_a"));
        let terse = parse(&["--list", "--format", "terse"]).unwrap();
        assert!(terse.list && terse.terse);
        assert!(parse(&["--test-threads"]).is_err());
    }

    #[test]
    fn an_unknown_option_is_an_error_not_a_name() {
        assert_eq!(
            parse(&["--exactly"]),
            Err("unknown option --exactly".to_string())
        );
    }

    #[test]
    fn only_ignored_runs_nothing() {
        assert!(!parse(&["--ignored"]).unwrap().wants("step_01_a"));
    }
}
