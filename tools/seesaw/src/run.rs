//! One run of a lesson's checks: build them with cargo, run the test
//! executable, and send the news as it comes (the first failure as soon as
//! its report is complete). A run can be cancelled at any moment: its
//! processes (cargo and the compilers, or the checks and what they started)
//! each run in a process group of their own, and the whole group is killed.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use seesaw_checks::workbook::Summary;

use crate::app::Outcome;

/// How long the checks of one lesson may run: each check has its own
/// deadline and a lesson's run ends within seconds; this only stops code
/// that escapes them all.
const TIME_LIMIT: Duration = Duration::from_secs(60);

/// News of run `run`.
pub type News = (u64, Outcome);

/// A run in progress, to cancel.
pub struct Run {
    cancelled: Arc<AtomicBool>,
    /// The process group running now, if any.
    group: Arc<Mutex<Option<u32>>>,
}

impl Run {
    /// Starts run `run` of `folder`'s checks; news goes to `news`.
    pub fn start(root: &Path, folder: &str, run: u64, news: Sender<News>) -> Run {
        let handle = Run {
            cancelled: Arc::new(AtomicBool::new(false)),
            group: Arc::new(Mutex::new(None)),
        };
        let worker = Worker {
            root: root.to_path_buf(),
            folder: folder.to_string(),
            run,
            news,
            cancelled: handle.cancelled.clone(),
            group: handle.group.clone(),
        };
        thread::spawn(move || worker.work());
        handle
    }

    /// Stops the run: no more news, and its processes are killed.
    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::SeqCst);
        if let Some(group) = *lock(&self.group) {
            kill_group(group);
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

struct Worker {
    root: PathBuf,
    folder: String,
    run: u64,
    news: Sender<News>,
    cancelled: Arc<AtomicBool>,
    group: Arc<Mutex<Option<u32>>>,
}

impl Worker {
    fn work(self) {
        let outcome = match self.build() {
            Ok(executable) => self.check(&executable),
            Err(outcome) => outcome,
        };
        self.send(outcome);
    }

    fn send(&self, outcome: Outcome) {
        if !self.cancelled.load(Ordering::SeqCst) {
            let _ = self.news.send((self.run, outcome));
        }
    }

    /// Spawns `command` in a process group of its own, unless the run was
    /// cancelled already.
    fn spawn(&self, command: &mut Command) -> Result<Child, Outcome> {
        in_own_group(command);
        let mut group = lock(&self.group);
        if self.cancelled.load(Ordering::SeqCst) {
            return Err(Outcome::Running);
        }
        let child = command.spawn().map_err(|error| {
            Outcome::CouldNotRun(format!("could not start {command:?}: {error}"))
        })?;
        *group = Some(child.id());
        Ok(child)
    }

    /// Compiles the lesson's checks: the test executable, or the outcome to
    /// show (the compiler's first error).
    fn build(&self) -> Result<PathBuf, Outcome> {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
        let mut command = Command::new(cargo);
        command
            .current_dir(&self.root)
            .args(["test", "--no-run", "--quiet"])
            .arg("--message-format=json-render-diagnostics")
            .args(["-p", &format!("lesson-{}", self.folder)])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let child = self.spawn(&mut command)?;
        let output = child
            .wait_with_output()
            .map_err(|error| Outcome::CouldNotRun(format!("cargo failed: {error}")))?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        match (output.status.success(), test_executable(&stdout)) {
            (true, Some(path)) => Ok(path),
            (true, None) => Err(Outcome::CouldNotRun(format!(
                "cargo built no checks for lesson {}",
                self.folder
            ))),
            (false, _) => Err(compile_error(&stderr)),
        }
    }

    /// Runs the test executable; sends the first failure as soon as its
    /// report is complete, and returns the whole outcome.
    fn check(&self, executable: &Path) -> Outcome {
        let mut command = Command::new(executable);
        command
            .current_dir(self.root.join("lessons").join(&self.folder))
            // As `cargo test` does here (see .cargo/config.toml): checks in
            // order, no backtraces; each report on stdout, between libtest's lines.
            .env("RUST_TEST_THREADS", "1")
            .env("RUST_BACKTRACE", "0")
            .env("SEESAW_REPORTS_TO_STDOUT", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = match self.spawn(&mut command) {
            Ok(child) => child,
            Err(outcome) => return outcome,
        };
        let stderr = read_all_in_background(child.stderr.take());
        let (timed_out, still_running) = self.watchdog(child.id());
        let mut output = String::new();
        let mut sent_partial = false;
        let stdout = BufReader::new(child.stdout.take().expect("stdout is piped"));
        for line in stdout.split(b'\n').map_while(Result::ok) {
            output.push_str(&String::from_utf8_lossy(&line));
            output.push('\n');
            if !sent_partial && line == b"FAILED" {
                sent_partial = true;
                self.send(Outcome::Partial(Summary::from_output(&output, false)));
            }
        }
        let _ = child.wait();
        drop(still_running);
        let timed_out = timed_out.load(Ordering::SeqCst);
        let mut summary = Summary::from_output(&output, timed_out);
        add_last_words(&mut summary, &stderr.recv().unwrap_or_default());
        Outcome::Checked(summary)
    }

    /// Kills the checks' group if they outlive [`TIME_LIMIT`]; the flag says
    /// whether it did. Dropping the sender it returns ends the watch.
    fn watchdog(&self, group: u32) -> (Arc<AtomicBool>, Sender<()>) {
        let fired = Arc::new(AtomicBool::new(false));
        let (done, finished) = mpsc::channel::<()>();
        let flag = fired.clone();
        let run_group = self.group.clone();
        thread::spawn(move || {
            if finished.recv_timeout(TIME_LIMIT) == Err(mpsc::RecvTimeoutError::Timeout) {
                flag.store(true, Ordering::SeqCst);
                if *lock(&run_group) == Some(group) {
                    kill_group(group);
                }
            }
        });
        (fired, done)
    }
}

/// A check that ended the whole process (an abort) has its report on
/// stderr, written by a signal handler: take it from there.
fn add_last_words(summary: &mut Summary, stderr: &str) {
    let Some(last) = summary.failures.last_mut() else {
        return;
    };
    if last.report.iter().any(|line| line.starts_with("step ")) {
        return;
    }
    let words: Vec<String> = stderr
        .lines()
        .skip_while(|line| !line.starts_with("step "))
        .map(str::to_string)
        .collect();
    if !words.is_empty() {
        last.report = words;
    }
}

fn read_all_in_background(pipe: Option<impl Read + Send + 'static>) -> mpsc::Receiver<String> {
    let (sender, receiver) = mpsc::channel();
    thread::spawn(move || {
        let mut text = String::new();
        if let Some(mut pipe) = pipe {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            text = String::from_utf8_lossy(&bytes).into_owned();
        }
        let _ = sender.send(text);
    });
    receiver
}

/// The path of the lesson's `checks` test executable, from cargo's JSON
/// messages.
fn test_executable(cargo_stdout: &str) -> Option<PathBuf> {
    cargo_stdout
        .lines()
        .filter(|line| line.contains("\"kind\":[\"test\"]") && line.contains("\"executable\":\""))
        .find_map(|line| json_string_after(line, "\"executable\":\""))
        .map(PathBuf::from)
}

/// The JSON string that follows `key` on `line` (paths need no unescaping
/// beyond backslashes).
fn json_string_after(line: &str, key: &str) -> Option<String> {
    let start = line.find(key)? + key.len();
    let rest = &line[start..];
    let end = rest.find('"')?;
    Some(rest[..end].replace("\\\\", "\\"))
}

/// The compiler's first error, whole, and how many there were: the first
/// error is the one to fix, the others often follow from it.
pub fn compile_error(stderr: &str) -> Outcome {
    let first_error: Vec<String> = stderr
        .lines()
        .skip_while(|line| !line.starts_with("error"))
        .take_while(|line| !line.is_empty())
        .take(40)
        .map(str::to_string)
        .collect();
    if first_error.is_empty() {
        let said: Vec<&str> = stderr.lines().take(20).collect();
        return Outcome::CouldNotRun(format!("cargo failed:\n{}", said.join("\n")));
    }
    let errors = stderr
        .lines()
        .filter(|line| line.starts_with("error[") || line.starts_with("error: "))
        .filter(|line| !line.starts_with("error: could not compile"))
        .filter(|line| !line.starts_with("error: aborting"))
        .count()
        .max(1);
    Outcome::DoesNotCompile {
        first_error,
        errors,
    }
}

#[cfg(unix)]
fn in_own_group(command: &mut Command) {
    use std::os::unix::process::CommandExt;
    command.process_group(0);
}

#[cfg(not(unix))]
fn in_own_group(_: &mut Command) {}

/// Kills process group `group` (its leader's id) and everything in it.
#[cfg(unix)]
fn kill_group(group: u32) {
    unsafe extern "C" {
        fn kill(pid: i32, signal: i32) -> i32;
    }
    const SIGKILL: i32 = 9;
    let Ok(group) = i32::try_from(group) else {
        return;
    };
    // SAFETY: `kill` takes two integers and touches no memory of ours; a
    // negative id names a whole process group.
    unsafe {
        kill(-group, SIGKILL);
    }
}

/// Kills the process `group` and its children.
#[cfg(not(unix))]
fn kill_group(group: u32) {
    let _ = Command::new("taskkill")
        .args(["/T", "/F", "/PID", &group.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

#[cfg(test)]
mod tests {
    use super::*;

    const TWO_ERRORS: &str = "error[E0425]: cannot find value `listner` in this scope\n  \
        --> lessons/01-listen/src/lib.rs:28:5\n   |\n28 |     listner\n   |     ^^^^^^^ \
        help: a local variable with a similar name exists: `listener`\n\n\
        error[E0308]: mismatched types\n  --> lessons/01-listen/src/lib.rs:30:5\n\n\
        error: could not compile `lesson-01-listen` (lib) due to 2 previous errors\n";

    #[test]
    fn a_compile_error_shows_the_first_error_only_and_counts_them() {
        let Outcome::DoesNotCompile {
            first_error,
            errors,
        } = compile_error(&format!("warning: unused\n\n{TWO_ERRORS}"))
        else {
            panic!("not a compile error");
        };
        assert_eq!(first_error.len(), 5, "{first_error:?}");
        assert!(first_error[0].starts_with("error[E0425]"));
        assert!(!first_error.iter().any(|line| line.contains("E0308")));
        assert_eq!(errors, 2);
    }

    #[test]
    fn the_test_executable_comes_from_cargos_messages() {
        let stdout = "{\"reason\":\"compiler-artifact\",\"target\":{\"kind\":[\"lib\"]},\"executable\":null}\n\
            {\"reason\":\"compiler-artifact\",\"target\":{\"kind\":[\"test\"],\"name\":\"checks\"},\
            \"executable\":\"/t/debug/deps/checks-1\"}\n";
        assert_eq!(
            test_executable(stdout),
            Some(PathBuf::from("/t/debug/deps/checks-1"))
        );
    }

    #[cfg(unix)]
    #[test]
    fn cancelling_kills_the_whole_process_group() {
        let mut command = Command::new("sh");
        command
            .args(["-c", "sleep 60 & echo started; wait"])
            .stdout(Stdio::piped());
        in_own_group(&mut command);
        let mut child = command.spawn().expect("run sh");
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout is piped"));
        let mut line = String::new();
        stdout.read_line(&mut line).expect("read from sh");
        assert_eq!(line, "started\n");
        kill_group(child.id());
        // The pipe ends only once every process holding it has ended: the
        // shell, and the sleep it started in the background.
        let (sender, ended) = mpsc::channel();
        thread::spawn(move || {
            let _ = stdout.read_to_end(&mut Vec::new());
            let _ = sender.send(());
        });
        let result = ended.recv_timeout(Duration::from_secs(10));
        let _ = child.wait();
        assert!(result.is_ok(), "a process of the group outlived the cancel");
    }

    #[test]
    fn an_abort_report_on_stderr_becomes_the_checks_report() {
        let output = "running 2 tests\ntest step_1_a ... \n";
        let mut summary = Summary::from_output(output, false);
        add_last_words(
            &mut summary,
            "thread overflowed\n\nstep 1: a\n  got  an abort\n",
        );
        assert_eq!(summary.failures[0].report, ["step 1: a", "  got  an abort"]);
    }
}
