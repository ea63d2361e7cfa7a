//! Runs a lesson's program, the way a student would in a terminal.
//!
//! A client, or a program that should stop by itself, runs with `assert_cmd`
//! and a timeout ([`run`]). A server keeps running, so it is started in the
//! background ([`Server::start`]), watched through what it prints on stderr,
//! and killed when the check ends.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitStatus;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use predicates::Predicate;

use crate::peer::Peer;
use crate::report::{ProgramWords, Step, TODO_HINT};
use crate::{DEADLINE, START_DEADLINE};

/// The path of this lesson's program, built by `cargo test`.
#[macro_export]
macro_rules! program {
    () => {
        ::std::path::Path::new(env!(concat!("CARGO_BIN_EXE_", env!("CARGO_PKG_NAME"))))
    };
}

/// How a program run to its end went.
pub struct Finished {
    /// How it was run, for instance `lesson-03-dial 127.0.0.1:4000`.
    pub command: String,
    /// The exit code; `None` when the check had to stop it.
    pub code: Option<i32>,
    pub stdout: Vec<u8>,
    pub stderr: String,
    /// What the check fed it on stdin.
    pub stdin: Vec<u8>,
}

impl Finished {
    /// Fails the check unless the exit code is `expected`.
    #[track_caller]
    pub fn expect_code(&self, step: &Step, expected: i32) -> &Finished {
        if self.code.is_none() {
            step.note_waited_out();
        }
        if self.code != Some(expected) {
            self.report(step)
                .expected(&format!("exit code {expected}"))
                .got(&self.describe_exit())
                .fail();
        }
        self
    }

    /// Fails the check unless stderr satisfies `predicate`, for instance
    /// `predicates::str::contains("refused")`.
    #[track_caller]
    pub fn expect_stderr(
        &self,
        step: &Step,
        predicate: impl Predicate<str>,
        what: &str,
    ) -> &Finished {
        if !predicate.eval(&self.stderr) {
            self.report(step)
                .expected(&format!("on stderr: {what}"))
                .got("something else (its stderr is above)")
                .fail();
        }
        self
    }

    /// Fails the check unless stdout is exactly `expected`.
    #[track_caller]
    pub fn expect_stdout(&self, step: &Step, expected: &[u8]) -> &Finished {
        if self.stdout != expected {
            self.report(step)
                .expected(&format!(
                    "on stdout exactly {}",
                    crate::bytes::show(expected)
                ))
                .got(&format!("stdout {}", crate::bytes::show(&self.stdout)))
                .observed(&format!(
                    "{}. stdout carries only the data; narration goes to stderr (eprintln!).",
                    crate::bytes::difference(expected, &self.stdout).unwrap_or_default()
                ))
                .fail();
        }
        self
    }

    /// Fails the check unless the program failed the way an expected failure
    /// should: exit code 1, no panic, and one line on stderr that starts with
    /// `error:` and contains each of `words`. (Narration may come before it.)
    #[track_caller]
    pub fn expect_one_line_error(&self, step: &Step, words: &[&str]) -> &Finished {
        self.expect_code(step, 1);
        let error_lines: Vec<&str> = self
            .stderr
            .lines()
            .filter(|line| line.starts_with("error:"))
            .collect();
        if self.stderr.contains("panicked") || error_lines.len() != 1 {
            self.report(step)
                .expected("exactly one line on stderr that starts with `error:`, says what failed and what to try")
                .got(&format!("{} such lines (its stderr is above)", error_lines.len()))
                .hint("return the error from main's run() with ?; main prints it in one line. Never unwrap().")
                .fail();
        }
        for word in words {
            if !error_lines[0].contains(word) {
                self.report(step)
                    .expected(&format!("the error line to contain {word:?}"))
                    .got(&format!("{:?}, which does not", error_lines[0]))
                    .hint(
                        "the error line comes from the error your lib.rs returned: give it a \
                           .context(...)/.with_context(...) that says what failed, and where.",
                    )
                    .fail();
            }
        }
        self
    }

    /// A failure message that shows how the program was run, what it was fed
    /// and what it printed, with the hint that fits what it did.
    pub fn report(&self, step: &Step) -> crate::report::Report {
        let report = step
            .report()
            .did(&format!("ran `{}`", self.command))
            .did(&format!(
                "fed it on stdin: {}",
                crate::bytes::show(&self.stdin)
            ))
            .did(&format!("its stdout: {}", crate::bytes::show(&self.stdout)))
            .did(&format!("its stderr:\n{}", self.stderr))
            .program_output(&self.stderr);
        match observed_in_program(&self.stderr) {
            Some(hint) => report.observed(hint),
            None if self.code.is_none() => report.observed(
                "the program did not end: it waits for something. Does it wait for a reply \
                 that never comes, or for an end of file that never comes? (A client's \
                 input ends; it then shuts down its sending side and reads what is left.)",
            ),
            None => report,
        }
    }

    fn describe_exit(&self) -> String {
        match self.code {
            Some(code) => format!("exit code {code}"),
            None => format!(
                "still running after {} s, so the check stopped it",
                DEADLINE.as_secs_f32()
            ),
        }
    }
}

/// Runs `program` with `args` and `stdin` to its end, stopping it after
/// [`START_DEADLINE`] if it is still running.
pub fn run(program: &Path, args: &[&str], stdin: &[u8]) -> Finished {
    let output = assert_cmd::Command::new(program)
        .args(args)
        .env("RUST_BACKTRACE", child_backtrace())
        .write_stdin(stdin)
        .timeout(START_DEADLINE)
        .output()
        .expect("the check could not start the program");
    Finished {
        command: command_line(program, args),
        code: output.status.code(),
        stdout: output.stdout,
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        stdin: stdin.to_vec(),
    }
}

/// A program's panic shows a backtrace only when the student asked for one
/// with SEESAW_BACKTRACE=1; RUST_BACKTRACE in the shell would bury the report.
fn child_backtrace() -> &'static str {
    match std::env::var_os("SEESAW_BACKTRACE") {
        Some(value) if value != "0" => "1",
        _ => "0",
    }
}

/// The hint for what a program's stderr shows: a `todo!()` left in place, or a panic.
fn observed_in_program(stderr: &str) -> Option<&'static str> {
    if stderr.contains("not yet implemented") {
        Some(TODO_HINT)
    } else if stderr.contains("panicked") {
        Some(
            "the program panicked (its stderr is above). An expected failure should be \
             an Err that main prints in one line: use ? and .context(...), not unwrap().",
        )
    } else {
        None
    }
}

/// Runs `program` with `args` and then an address that is in use, and fails
/// unless the program explains that in one `error:` line, with exit code 1.
#[track_caller]
pub fn expect_address_in_use_explained(step: &Step, program: &Path, args: &[&str]) {
    let (_taken, addr) = crate::peer::address_in_use();
    let mut all_args = args.to_vec();
    all_args.push(&addr);
    run(program, &all_args, b"").expect_one_line_error(step, &[&addr, "in use"]);
}

fn command_line(program: &Path, args: &[&str]) -> String {
    let name = program.file_name().unwrap_or_default().to_string_lossy();
    std::iter::once(name.as_ref())
        .chain(args.iter().copied())
        .collect::<Vec<_>>()
        .join(" ")
}

/// A lesson's server, running in the background until the check ends.
pub struct Server {
    child: Child,
    command: String,
    stderr_lines: mpsc::Receiver<String>,
    seen: Vec<String>,
    /// How it ended, once seen.
    exit: Option<ExitStatus>,
    /// Everything it prints on stderr, as it prints it, for the steps that hear it.
    words: ProgramWords,
}

/// How long a failing check reads the last words of a program that has
/// ended: they are still in the pipe, and they say why it ended.
const LAST_WORDS: Duration = Duration::from_millis(200);

impl Server {
    /// Starts `program` with `args`; stdin is closed and stdout discarded.
    pub fn start(program: &Path, args: &[&str]) -> Server {
        let mut child = Command::new(program)
            .args(args)
            .env("RUST_BACKTRACE", child_backtrace())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the check could not start the program");
        let stderr = child.stderr.take().expect("stderr is piped");
        let (sender, stderr_lines) = mpsc::channel();
        let words = ProgramWords::default();
        let heard = words.clone();
        thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                heard.add(&line);
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        Server {
            child,
            command: command_line(program, args),
            stderr_lines,
            seen: Vec::new(),
            exit: None,
            words,
        }
    }

    /// Connects a client of the check's to the server at `addr`. If it
    /// cannot, the server's last words (a panic?) say why, not a guess.
    #[track_caller]
    pub fn connect(&mut self, step: &Step, addr: SocketAddr) -> Peer {
        step.hear_program(&self.words);
        match std::net::TcpStream::connect_timeout(&addr, DEADLINE) {
            Ok(stream) => {
                step.transcript()
                    .add(format!("check   connected to you at {addr}"));
                Peer::new(step, stream)
            }
            Err(error) => {
                // Refused: it may be ending, and its last words say why.
                self.read_last_words(LAST_WORDS);
                self.report(step)
                    .did(&format!("the check connected to your server at {addr}"))
                    .got_error(&anyhow::Error::new(error))
                    .fail()
            }
        }
    }

    /// Reads what it printed on stderr so far; if it has ended, or ends
    /// within `wait`, to the end (its stderr ends when it does), at most
    /// [`LAST_WORDS`] more.
    fn read_last_words(&mut self, wait: Duration) {
        let wait = match self.has_exited() {
            true => LAST_WORDS,
            false => wait,
        };
        let deadline = Instant::now() + wait;
        let left = || deadline.saturating_duration_since(Instant::now());
        // Ends at the deadline, or when its stderr has ended.
        while let Ok(line) = self.stderr_lines.recv_timeout(left()) {
            self.remember(line);
        }
        self.has_exited();
    }

    /// Waits for the server to print a line that contains `text` on stderr and
    /// returns that line. Fails if the server exits or stays silent.
    #[track_caller]
    pub fn wait_for_line(&mut self, step: &Step, text: &str) -> String {
        let deadline = Instant::now() + START_DEADLINE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stderr_lines.recv_timeout(left) {
                Ok(line) => {
                    self.remember(line.clone());
                    if line.contains(text) {
                        return line;
                    }
                }
                Err(why) => {
                    let status = match why {
                        // Its stderr closed: the program has ended (or is ending).
                        mpsc::RecvTimeoutError::Disconnected => match self.child.try_wait() {
                            Ok(Some(status)) => format!("the program ended ({status})"),
                            _ => "the program closed its stderr: it is ending".to_string(),
                        },
                        mpsc::RecvTimeoutError::Timeout => {
                            step.note_waited_out();
                            format!("nothing like it within {} s", START_DEADLINE.as_secs_f32())
                        }
                    };
                    self.report(step)
                        .expected(&format!("a line on stderr containing {text:?}"))
                        .got(&status)
                        .fail()
                }
            }
        }
    }

    /// Waits for the `listening on ADDR` line and returns ADDR.
    #[track_caller]
    pub fn listening_address(&mut self, step: &Step) -> SocketAddr {
        step.hear_program(&self.words);
        let line = self.wait_for_line(step, "listening on ");
        let after = line.split("listening on ").nth(1).unwrap_or_default();
        let word = after.split_whitespace().next().unwrap_or_default();
        match word.parse() {
            Ok(addr) => addr,
            Err(_) => self
                .report(step)
                .expected("`listening on IP:PORT`, for instance `listening on 127.0.0.1:5555`")
                .got(&format!("{line:?}"))
                .fail(),
        }
    }

    /// Keeps the last lines the server printed, never all of them: a server
    /// that floods stderr must not flood the check's memory too.
    fn remember(&mut self, line: String) {
        if self.seen.len() >= 200 {
            self.seen.drain(..100);
        }
        self.seen.push(line);
    }

    /// True if the program has ended.
    pub fn has_exited(&mut self) -> bool {
        if self.exit.is_none() {
            self.exit = self.child.try_wait().ok().flatten();
        }
        self.exit.is_some()
    }

    /// A failure message that shows how the server was run and what it
    /// printed so far; if it has ended, its last words and exit status,
    /// which then decide the hint.
    pub fn report(&mut self, step: &Step) -> crate::report::Report {
        self.read_last_words(Duration::ZERO);
        let seen = self.seen.join("\n");
        let ended = match self.exit {
            Some(status) => format!(" (it has ended: {status})"),
            None => String::new(),
        };
        let report = step
            .report()
            .did(&format!("ran `{}` in the background{ended}", self.command))
            .did(&format!("its stderr so far:\n{seen}"))
            .program_output(&seen);
        match (observed_in_program(&seen), self.exit) {
            (Some(hint), _) => report.observed(hint),
            (None, Some(status)) => report.observed(&format!(
                "the program ended ({status}{}) while the check still talked to it: \
                 a server runs until it is stopped (Ctrl-C).",
                match self
                    .seen
                    .iter()
                    .rev()
                    .find(|line| line.starts_with("error:"))
                {
                    Some(line) => format!(", after {line:?}"),
                    None => String::new(),
                }
            )),
            (None, None) => report,
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
