//! `cargo progress`: every lesson's state at a glance, and the next step.
//! `cargo hint`: one level of help with the next step.
//!
//!     cargo progress                 every lesson, and what to do next
//!     cargo progress --lesson 03     the full report of one lesson's checks
//!     cargo hint [LESSON] [LEVEL]    help with the current lesson (or LESSON)
//!
//! Options: `--root DIR` (the workbook to look at; default: this one),
//! `--time-limit SECONDS` (per lesson; default 60).
//!
//! It builds each lesson's checks, saying which, runs them all in parallel
//! (each lesson's checks run one after another, as with `cargo test`), and
//! reads libtest's output. Which lesson is current comes from
//! `seesaw_checks::workbook`, as in `cargo seesaw`. Exit code: 0 when every
//! lesson looked at is done, 1 when some are not, 2 when it could not run.

use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use seesaw_checks::hints::{LEVELS, levels_for};
use seesaw_checks::workbook::{self, State, Summary, find_lesson, folder_number, lesson_folders};

const USAGE: &str = "usage: cargo progress [--lesson N] [--root DIR] [--time-limit SECONDS]
       cargo hint [LESSON] [LEVEL]

  cargo progress              every lesson's state, and your next step
  cargo progress --lesson 3   the full report of lesson 3's checks
  cargo hint                  level 1 of help for the current lesson's
                              first failing check: the idea
  cargo hint 5                the same for lesson 5 (5, 05, --lesson 5)
  cargo hint 5 2              lesson 5, level 2: the std calls
  cargo hint --level 3        the current lesson, level 3: the code's shape

A lesson is a number (5 or 05); a level is 1, 2 or 3 and comes after the
lesson, or with --level. The current lesson is the one you chose last (in
cargo seesaw, or named to cargo hint), else the lowest one you have started,
else lesson 1.";

struct Lesson {
    /// The folder name, like `03-dial`.
    folder: String,
    summary: Summary,
    /// Everything the checks (or the compiler) printed.
    output: String,
}

struct Options {
    root: PathBuf,
    /// A lesson as the student wrote it (`5`, `05`), checked against the folders later.
    lesson: Option<String>,
    time_limit: Duration,
    /// `cargo hint`: show this level of help for the next step.
    hint_level: Option<usize>,
}

fn main() -> ExitCode {
    if std::env::args().any(|arg| arg == "--help" || arg == "-h") {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    match run() {
        Ok(code) => code,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
    }
}

fn run() -> Result<ExitCode, String> {
    let options = parse_options(std::env::args().skip(1)).map_err(|m| format!("{m}\n{USAGE}"))?;
    let all = lesson_folders(&options.root)?;
    let chosen = match &options.lesson {
        Some(wanted) => Some(find_lesson(&all, wanted).cloned().ok_or_else(|| {
            let first = all.first().map_or("", |folder| &folder[..2]);
            let last = all.last().map_or("", |folder| &folder[..2]);
            format!("no lesson {wanted}; the lessons are {first} to {last}")
        })?),
        None => None,
    };
    let colour = Colour::for_stdout();
    if let Some(level) = options.hint_level {
        if let Some(folder) = &chosen {
            // Naming a lesson to `cargo hint` makes it the current lesson.
            let _ = workbook::remember(&options.root, folder);
        }
        // Without a lesson named, finding the current one runs the checks
        // of started lessons until one is not done: keep those runs.
        let mut checked: Vec<Lesson> = Vec::new();
        let folder = match chosen {
            Some(folder) => folder,
            None => workbook::current_lesson(&options.root, &all, &mut |folder| {
                let lesson = check_all(&options, &[folder.to_string()]).remove(0);
                let done = lesson.summary.state == State::Done;
                checked.push(lesson);
                done
            })
            .ok_or("this workbook has no lessons")?,
        };
        let lesson = match checked.into_iter().find(|lesson| lesson.folder == folder) {
            Some(lesson) => lesson,
            None => check_all(&options, &[folder]).remove(0),
        };
        print_hint(&options.root, &lesson, level, &colour);
        return Ok(exit_code(std::slice::from_ref(&lesson)));
    }
    let folders = chosen.map_or(all.clone(), |folder| vec![folder]);
    let lessons = check_all(&options, &folders);
    if options.lesson.is_some() {
        for lesson in &lessons {
            println!("{}", lesson.output.trim_end());
            println!();
            print_row(lesson, &colour);
        }
    } else {
        let current = workbook::current_lesson(&options.root, &all, &mut |folder| {
            lessons
                .iter()
                .any(|lesson| lesson.folder == folder && lesson.summary.state == State::Done)
        });
        print_overview(&lessons, current.as_deref(), &colour);
    }
    Ok(exit_code(&lessons))
}

fn exit_code(lessons: &[Lesson]) -> ExitCode {
    if lessons
        .iter()
        .all(|lesson| lesson.summary.state == State::Done)
    {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn parse_options(mut args: impl Iterator<Item = String>) -> Result<Options, String> {
    let mut options = Options {
        root: Path::new(env!("CARGO_MANIFEST_DIR")).join(".."),
        lesson: None,
        time_limit: Duration::from_secs(60),
        hint_level: None,
    };
    let mut level_given = false;
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--lesson" => options.lesson = Some(value()?),
            "--hint" => options.hint_level = Some(1),
            "--level" if options.hint_level.is_some() => {
                options.hint_level = Some(parse_level(&value()?)?);
                level_given = true;
            }
            "--root" => options.root = PathBuf::from(value()?),
            "--time-limit" => {
                let seconds: f64 = value()?
                    .parse()
                    .map_err(|_| "--time-limit takes seconds".to_string())?;
                options.time_limit = Duration::from_secs_f64(seconds);
            }
            // `cargo hint 5 2`: the first number is the lesson, the second the level.
            word if options.hint_level.is_some() && !word.starts_with('-') => {
                if options.lesson.is_none() {
                    options.lesson = Some(word.to_string());
                } else if !level_given {
                    options.hint_level = Some(parse_level(word)?);
                    level_given = true;
                } else {
                    return Err(format!("unexpected {word:?}: give a lesson, then a level"));
                }
            }
            _ => return Err(format!("unknown argument {arg:?}")),
        }
    }
    Ok(options)
}

fn parse_level(word: &str) -> Result<usize, String> {
    match word.parse::<usize>() {
        Ok(level) if (1..=LEVELS).contains(&level) => Ok(level),
        _ => Err(format!("a hint level is 1, 2 or 3, not {word:?}")),
    }
}

/// Builds every lesson's checks (one after another: cargo builds in
/// parallel by itself), saying which on stderr, then runs them all at once.
fn check_all(options: &Options, folders: &[String]) -> Vec<Lesson> {
    let (sender, results) = mpsc::channel();
    let mut building = BuildingLine::new(folders.len());
    for (index, folder) in folders.iter().enumerate() {
        building.show(index, folder);
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
                    summary: Summary::does_not_compile(),
                    output: compiler_output,
                };
                let _ = sender.send((index, lesson));
            }
        }
    }
    building.clear();
    drop(sender);
    let mut lessons: Vec<(usize, Lesson)> = results.iter().collect();
    lessons.sort_by_key(|(index, _)| *index);
    lessons.into_iter().map(|(_, lesson)| lesson).collect()
}

/// The line on stderr that says which lesson is being built: on a terminal
/// one line, rewritten in place and wiped once the table comes; elsewhere
/// (a pipe, CI) one line a lesson.
struct BuildingLine {
    count: usize,
    terminal: bool,
    /// The longest line written so far, to wipe it.
    width: usize,
}

impl BuildingLine {
    fn new(count: usize) -> BuildingLine {
        BuildingLine {
            count,
            terminal: std::io::stderr().is_terminal(),
            width: 0,
        }
    }

    fn show(&mut self, index: usize, folder: &str) {
        let text = format!(
            "building lesson {folder}'s checks ({} of {})",
            index + 1,
            self.count
        );
        let mut stderr = std::io::stderr().lock();
        if self.terminal {
            let _ = write!(stderr, "\r{text:<width$}", width = self.width);
            self.width = self.width.max(text.len());
        } else {
            let _ = writeln!(stderr, "{text}");
        }
        let _ = stderr.flush();
    }

    fn clear(&self) {
        if self.terminal && self.width > 0 {
            let _ = write!(std::io::stderr(), "\r{:width$}\r", "", width = self.width);
        }
    }
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

fn summarise(folder: &str, output: String, timed_out: bool) -> Lesson {
    Lesson {
        folder: folder.to_string(),
        summary: Summary::from_output(&output, timed_out),
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

fn print_overview(lessons: &[Lesson], current: Option<&str>, colour: &Colour) {
    println!("{}", colour.bold("Seesaw progress"));
    println!();
    for lesson in lessons {
        print_row(lesson, colour);
    }
    let done = lessons
        .iter()
        .filter(|lesson| lesson.summary.state == State::Done)
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
    match next_lesson(lessons, current) {
        Some(next) => print_next_step(next, colour),
        None => println!(
            "\nEvery lesson is done. Well played: try the programs in two terminals, and bench/run."
        ),
    }
}

/// The lesson to work on next: the current lesson if it is not done, else the
/// first one after it that is not done, else the first one not done at all.
fn next_lesson<'a>(lessons: &'a [Lesson], current: Option<&str>) -> Option<&'a Lesson> {
    let start = lessons
        .iter()
        .position(|lesson| Some(lesson.folder.as_str()) == current)
        .unwrap_or(0);
    lessons[start..]
        .iter()
        .chain(&lessons[..start])
        .find(|lesson| lesson.summary.state != State::Done)
}

fn print_row(lesson: &Lesson, colour: &Colour) {
    let summary = &lesson.summary;
    let (number, name) = lesson
        .folder
        .split_once('-')
        .unwrap_or((&lesson.folder, ""));
    let state = match summary.state {
        State::Done => colour.green("done"),
        State::InProgress => colour.yellow("in progress"),
        State::NotStarted => colour.dim("not started"),
        State::TimedOut => colour.red("timed out"),
        State::DoesNotCompile => colour.red("does not compile"),
    };
    let count = format!("{}/{}", summary.passed, summary.total);
    let not_run = match (summary.not_run, summary.state) {
        (0, _) => String::new(),
        (count, State::TimedOut) => format!("  ({count} not run before the time limit)"),
        (count, _) if summary.stopped_after_hang => {
            format!("  ({count} not run: an earlier check hung)")
        }
        (count, _) => format!("  ({count} not run: the checks stopped early)"),
    };
    // Checks that cannot run on this machine said why in their run; here,
    // only how many, so that the counts add up.
    let skipped = match summary.skipped {
        0 => String::new(),
        count => format!("  ({count} skipped here)"),
    };
    println!("  {number}  {name:<12} {count:>6} checks   {state}{not_run}{skipped}");
}

fn print_next_step(lesson: &Lesson, colour: &Colour) {
    let package = format!("lesson-{}", lesson.folder);
    println!();
    println!("{} lesson {}", colour.bold("Next:"), lesson.folder);
    let summary = &lesson.summary;
    match (summary.state, summary.failures.first()) {
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
        (State::TimedOut, _) => match &summary.still_running {
            Some(name) => println!(
                "  {} was still running when the time limit passed: something blocks.",
                colour.bold(name)
            ),
            None => println!(
                "  its checks were still running when the time limit passed: something blocks."
            ),
        },
        (_, Some(failure)) => {
            println!("  first failing check: {}", colour.bold(&failure.name));
            for line in failure_message(&failure.report) {
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

/// `cargo hint`: one level of help for the first failing check of `lesson`.
fn print_hint(root: &Path, lesson: &Lesson, level: usize, colour: &Colour) {
    let number = folder_number(&lesson.folder).unwrap_or(0);
    if lesson.summary.state == State::Done {
        println!(
            "Lesson {number} ({}) is done: every check passes, no hint needed. Well played.",
            lesson.folder
        );
        return;
    }
    let Some(failure) = lesson.summary.failures.first() else {
        println!(
            "Lesson {}: fix what the compiler says first:",
            lesson.folder
        );
        print_next_step(lesson, colour);
        return;
    };
    let step = &failure.name;
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
            "Still stuck? `cargo hint {number} {}` goes one level further.",
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
