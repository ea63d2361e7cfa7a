//! `cargo progress`: every lesson's state at a glance, and the next step.
//!
//!     cargo progress                 all six lessons, and what to do next
//!     cargo progress --lesson 03     the full report of one lesson's checks
//!
//! Options: `--root DIR` (the workbook to look at; default: this one),
//! `--time-limit SECONDS` (per lesson; default 60).
//!
//! It builds each lesson's checks, runs them all in parallel (each lesson's
//! checks run one after another, as with `cargo test`), and reads libtest's
//! output. Exit code: 0 when every lesson is done, 1 when some are not, 2 when
//! it could not run at all.

use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use seesaw_checks::hints::{LEVELS, levels_for};

const USAGE: &str = "usage: cargo progress [--lesson NN] [--root DIR] [--time-limit SECONDS]

  cargo progress              every lesson's state, and your next step
  cargo progress --lesson 03  the full report of one lesson's checks
  cargo hint [NN] [LEVEL]      help with your next step (in lesson NN):
                              level 1 is the idea, 2 the std calls,
                              3 the shape of the code";

/// What one run of a lesson's checks came to.
enum State {
    Done,
    InProgress,
    NotStarted,
    TimedOut,
    DoesNotCompile,
}

struct Lesson {
    /// The folder name, like `03-dial`.
    folder: String,
    state: State,
    passed: usize,
    /// Checks that did not run: an earlier one hung, or the time limit passed.
    skipped: usize,
    /// The check that was running when the time limit passed, if any.
    still_running: Option<String>,
    total: usize,
    /// The first failing check, and the first lines of its message.
    first_failure: Option<(String, Vec<String>)>,
    /// Everything the checks (or the compiler) printed.
    output: String,
}

struct Options {
    root: PathBuf,
    lesson: Option<String>,
    time_limit: Duration,
    /// `cargo hint [LEVEL]`: show this level of help for the next step.
    hint_level: Option<usize>,
}

fn main() -> ExitCode {
    if std::env::args().any(|arg| arg == "--help" || arg == "-h") {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let options = match parse_options() {
        Ok(options) => options,
        Err(message) => {
            eprintln!("error: {message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let mut folders = match lesson_folders(&options.root) {
        Ok(folders) => folders,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::from(2);
        }
    };
    if let Some(wanted) = &options.lesson {
        let first = folders
            .first()
            .map_or("", |folder| &folder[..2])
            .to_string();
        let last = folders.last().map_or("", |folder| &folder[..2]).to_string();
        folders.retain(|folder| folder.starts_with(wanted.as_str()));
        if folders.is_empty() {
            eprintln!("error: no lesson {wanted}; the lessons are {first} to {last}");
            return ExitCode::from(2);
        }
    }
    let lessons = check_all(&options, &folders);
    let colour = Colour::for_stdout();
    if let Some(level) = options.hint_level {
        print_hint(&options.root, &lessons, level, &colour);
    } else if options.lesson.is_some() {
        for lesson in &lessons {
            println!("{}", lesson.output.trim_end());
            println!();
            print_row(lesson, &colour);
        }
    } else {
        print_overview(&lessons, &colour);
    }
    let all_done = lessons
        .iter()
        .all(|lesson| matches!(lesson.state, State::Done));
    if all_done {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn parse_options() -> Result<Options, String> {
    let mut options = Options {
        root: Path::new(env!("CARGO_MANIFEST_DIR")).join(".."),
        lesson: None,
        time_limit: Duration::from_secs(60),
        hint_level: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--lesson" => options.lesson = Some(format!("{:0>2}", value()?)),
            "--hint" => options.hint_level = Some(1),
            // `cargo hint 05` picks lesson 05, `cargo hint 2` level 2.
            lesson if options.hint_level.is_some() && lesson.len() == 2 => {
                options.lesson = Some(lesson.to_string());
            }
            level if options.hint_level.is_some() => {
                let number: usize = level.parse().unwrap_or(0);
                if !(1..=LEVELS).contains(&number) {
                    return Err(format!(
                        "give a lesson as two digits (05) and a hint level as one (1, 2 or 3), not {level:?}"
                    ));
                }
                options.hint_level = Some(number);
            }
            "--root" => options.root = PathBuf::from(value()?),
            "--time-limit" => {
                let seconds: f64 = value()?
                    .parse()
                    .map_err(|_| "--time-limit takes seconds".to_string())?;
                options.time_limit = Duration::from_secs_f64(seconds);
            }
            _ => return Err(format!("unknown argument {arg:?}")),
        }
    }
    Ok(options)
}

/// The lesson folders, like `01-listen`, in order.
fn lesson_folders(root: &Path) -> Result<Vec<String>, String> {
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

/// Builds every lesson's checks (one after another: cargo builds in
/// parallel by itself), then runs them all at once.
fn check_all(options: &Options, folders: &[String]) -> Vec<Lesson> {
    let (sender, results) = mpsc::channel();
    for (index, folder) in folders.iter().enumerate() {
        match build_checks(&options.root, folder) {
            Ok(executable) => {
                let sender = sender.clone();
                let folder = folder.clone();
                let root = options.root.clone();
                let limit = options.time_limit;
                thread::spawn(move || {
                    let lesson = run_checks(&root, &folder, &executable, limit);
                    let _ = sender.send((index, lesson));
                });
            }
            Err(compiler_output) => {
                let lesson = Lesson {
                    folder: folder.clone(),
                    state: State::DoesNotCompile,
                    passed: 0,
                    skipped: 0,
                    still_running: None,
                    total: 0,
                    first_failure: None,
                    output: compiler_output,
                };
                let _ = sender.send((index, lesson));
            }
        }
    }
    drop(sender);
    let mut lessons: Vec<(usize, Lesson)> = results.iter().collect();
    lessons.sort_by_key(|(index, _)| *index);
    lessons.into_iter().map(|(_, lesson)| lesson).collect()
}

/// Compiles a lesson's checks; returns the test executable, or what the
/// compiler said.
fn build_checks(root: &Path, folder: &str) -> Result<PathBuf, String> {
    let output = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string()))
        .current_dir(root)
        .args([
            "test",
            "--no-run",
            "--quiet",
            "--message-format=json-render-diagnostics",
        ])
        .args(["-p", &format!("lesson-{folder}")])
        .stdin(Stdio::null())
        .output()
        .map_err(|error| format!("could not run cargo: {error}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let executable = stdout
        .lines()
        .filter(|line| line.contains("\"name\":\"checks\"") && line.contains("\"kind\":[\"test\"]"))
        .find_map(|line| json_string_after(line, "\"executable\":\""));
    match (output.status.success(), executable) {
        (true, Some(path)) => Ok(PathBuf::from(path)),
        _ => Err(String::from_utf8_lossy(&output.stderr).into_owned()),
    }
}

/// The JSON string that follows `key` on `line` (paths need no unescaping
/// beyond backslashes).
fn json_string_after(line: &str, key: &str) -> Option<String> {
    let start = line.find(key)? + key.len();
    let rest = &line[start..];
    let end = rest.find('"')?;
    Some(rest[..end].replace("\\\\", "\\"))
}

/// Runs a lesson's test executable, stopping it after `limit`.
fn run_checks(root: &Path, folder: &str, executable: &Path, limit: Duration) -> Lesson {
    let child = Command::new(executable)
        .current_dir(root.join("lessons").join(folder))
        // As `cargo test` does here (see .cargo/config.toml): checks in order, no backtraces.
        .env("RUST_TEST_THREADS", "1")
        .env("RUST_BACKTRACE", "0")
        // Each failure's report, on stdout between libtest's own lines.
        .env("SEESAW_REPORTS_TO_STDOUT", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(error) => {
            return summarise(folder, format!("could not run the checks: {error}"), false);
        }
    };
    let mut stdout = child.stdout.take().expect("stdout is piped");
    let (sender, finished) = mpsc::channel();
    thread::spawn(move || {
        let mut text = String::new();
        let _ = stdout.read_to_string(&mut text);
        let _ = sender.send(text);
    });
    match finished.recv_timeout(limit) {
        Ok(text) => {
            let _ = child.wait();
            summarise(folder, text, false)
        }
        Err(_) => {
            let _ = child.kill();
            let _ = child.wait();
            let text = finished.recv().unwrap_or_default();
            summarise(folder, text, true)
        }
    }
}

/// Reads libtest's output: which checks passed, and the first failure. A
/// failing check prints its report right after `test NAME ... `, and libtest
/// then writes `FAILED` on a line of its own.
fn summarise(folder: &str, output: String, timed_out: bool) -> Lesson {
    let mut passed = 0;
    let mut total = 0;
    let mut failed: Vec<(String, Vec<String>)> = Vec::new();
    let mut running: Option<(String, Vec<String>)> = None;
    for line in output.lines() {
        if let Some(count) = line
            .strip_prefix("running ")
            .and_then(|rest| rest.strip_suffix(" tests"))
        {
            total += count.parse::<usize>().unwrap_or(0);
        } else if let Some(rest) = line.strip_prefix("test ") {
            if rest.ends_with(" ... ok") {
                passed += 1;
            } else if let Some(name) = rest.strip_suffix(" ... FAILED") {
                failed.push((name.to_string(), Vec::new()));
            } else if let Some(name) = rest.trim_end().strip_suffix(" ...") {
                running = Some((name.to_string(), Vec::new()));
            }
        } else if let Some((name, report)) = running.as_mut() {
            match line {
                "ok" => {
                    passed += 1;
                    running = None;
                }
                "FAILED" => failed.push((std::mem::take(name), std::mem::take(report))),
                _ => report.push(line.to_string()),
            }
            if line == "FAILED" {
                running = None;
            }
        }
    }
    // A check that started and never ended: either the time limit passed while
    // it ran, or the student's code ended the process.
    let still_running = if timed_out {
        running.map(|(name, _)| name)
    } else {
        failed.extend(running);
        None
    };
    // Checks that never ran: the run stopped after one of them hung, or the
    // time limit passed.
    let skipped =
        total.saturating_sub(passed + failed.len() + usize::from(still_running.is_some()));
    let first_failure = failed
        .first()
        .map(|(name, report)| (name.clone(), failure_message(report)));
    // Not started: the very first check still fails on the stub's todo!().
    let stub_untouched = first_failure.as_ref().is_some_and(|(name, message)| {
        let first_check = name.starts_with("step_1_") || name.starts_with("step_01_");
        first_check
            && message
                .iter()
                .any(|line| line.contains("not yet implemented"))
    });
    let state = if timed_out {
        State::TimedOut
    } else if total > 0 && passed == total {
        State::Done
    } else if passed == 0 || stub_untouched {
        State::NotStarted
    } else {
        State::InProgress
    };
    Lesson {
        folder: folder.to_string(),
        state,
        passed,
        skipped,
        still_running,
        total,
        first_failure,
        output,
    }
}

/// The first lines of a failed check's report, from the step's title on.
fn failure_message(report: &[String]) -> Vec<String> {
    report
        .iter()
        .skip_while(|line| !line.starts_with("step "))
        .filter(|line| {
            !line.trim().is_empty()
                && !line.starts_with("  read ")
                && !line.starts_with("  more help ")
        })
        .take(8)
        .cloned()
        .collect()
}

fn print_overview(lessons: &[Lesson], colour: &Colour) {
    println!("{}", colour.bold("Seesaw progress"));
    println!();
    for lesson in lessons {
        print_row(lesson, colour);
    }
    let done = lessons
        .iter()
        .filter(|lesson| matches!(lesson.state, State::Done))
        .count();
    let width = 24;
    let filled = done * width / lessons.len().max(1);
    println!();
    println!(
        "  [{}{}]  {done} of {} lessons done",
        "#".repeat(filled),
        ".".repeat(width - filled),
        lessons.len()
    );
    match lessons
        .iter()
        .find(|lesson| !matches!(lesson.state, State::Done))
    {
        Some(next) => print_next_step(next, colour),
        None => println!(
            "\nEvery lesson is done. Well played: try the programs in two terminals, and bench/run."
        ),
    }
}

fn print_row(lesson: &Lesson, colour: &Colour) {
    let (number, name) = lesson
        .folder
        .split_once('-')
        .unwrap_or((&lesson.folder, ""));
    let state = match lesson.state {
        State::Done => colour.green("done"),
        State::InProgress => colour.yellow("in progress"),
        State::NotStarted => colour.dim("not started"),
        State::TimedOut => colour.red("timed out"),
        State::DoesNotCompile => colour.red("does not compile"),
    };
    let count = format!("{}/{}", lesson.passed, lesson.total);
    let skipped = match (lesson.skipped, &lesson.state) {
        (0, _) => String::new(),
        (count, State::TimedOut) => format!("  ({count} not run before the time limit)"),
        (count, _) => format!("  ({count} not run: an earlier check hung)"),
    };
    println!("  {number}  {name:<12} {count:>6} checks   {state}{skipped}");
}

fn print_next_step(lesson: &Lesson, colour: &Colour) {
    let package = format!("lesson-{}", lesson.folder);
    println!();
    println!("{} lesson {}", colour.bold("Next:"), lesson.folder);
    match (&lesson.state, &lesson.first_failure) {
        (State::DoesNotCompile, _) => {
            println!("  the lesson does not compile; the compiler says:");
            for line in lesson
                .output
                .lines()
                .filter(|line| !line.trim().is_empty())
                .take(8)
            {
                println!("    {line}");
            }
        }
        (State::TimedOut, _) => match &lesson.still_running {
            Some(name) => println!(
                "  {} was still running when the time limit passed: something blocks.",
                colour.bold(name)
            ),
            None => println!(
                "  its checks were still running when the time limit passed: something blocks."
            ),
        },
        (_, Some((name, message))) => {
            println!("  first failing check: {}", colour.bold(name));
            for line in message {
                println!("    {line}");
            }
        }
        _ => {}
    }
    println!("  run it alone:  cargo test -p {package}");
    println!(
        "  read:          book/src/lessons/{}.md (mdbook serve book --open)",
        lesson.folder
    );
}

/// `cargo hint`: one level of help for the first failing check of the first
/// lesson that is not done.
fn print_hint(root: &Path, lessons: &[Lesson], level: usize, colour: &Colour) {
    let Some(lesson) = lessons
        .iter()
        .find(|lesson| !matches!(lesson.state, State::Done))
    else {
        println!("Every lesson here is done: no hint needed. Well played.");
        return;
    };
    let Some((step, _)) = &lesson.first_failure else {
        println!(
            "Lesson {}: fix what the compiler says first:",
            lesson.folder
        );
        print_next_step(lesson, colour);
        return;
    };
    let file = root.join("lessons").join(&lesson.folder).join("hints.md");
    let text = std::fs::read_to_string(&file).unwrap_or_default();
    let levels = levels_for(&text, step);
    println!(
        "{} lesson {}, {}",
        colour.bold("Hint for"),
        lesson.folder,
        colour.bold(step)
    );
    println!();
    match levels.get(level - 1) {
        Some(help) => {
            println!("{}", colour.bold(&format!("Level {level} of {LEVELS}:")));
            for line in help.lines() {
                println!("  {line}");
            }
        }
        None => println!("  (no hint is written for this check yet; the chapter explains it)"),
    }
    println!();
    if level < LEVELS {
        println!(
            "Still stuck? `cargo hint {} {}` goes one level further.",
            &lesson.folder[..2],
            level + 1
        );
    } else {
        println!(
            "That is the last level. The answer itself is folded away at the end of the chapter."
        );
    }
    println!(
        "read:  book/src/lessons/{}.md (mdbook serve book --open)",
        lesson.folder
    );
}

/// ANSI colours, only when stdout is a terminal and NO_COLOR is not set.
struct Colour {
    on: bool,
}

impl Colour {
    fn for_stdout() -> Colour {
        let on = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
        Colour { on }
    }

    fn paint(&self, code: &str, text: &str) -> String {
        if self.on {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }

    fn bold(&self, text: &str) -> String {
        self.paint("1", text)
    }

    fn green(&self, text: &str) -> String {
        self.paint("32", text)
    }

    fn yellow(&self, text: &str) -> String {
        self.paint("33", text)
    }

    fn red(&self, text: &str) -> String {
        self.paint("31", text)
    }

    fn dim(&self, text: &str) -> String {
        self.paint("2", text)
    }
}
