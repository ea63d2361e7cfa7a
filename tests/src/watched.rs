//! A lesson's server (lessons 6 and 9) running in the background, and every
//! line it prints, with the time it came: a check can count them, and wait
//! for one with its own deadline and its own hint.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use crate::DEADLINE;
use crate::bytes::show;
use crate::peer::{End, Peer};
use crate::report::{ProgramWords, Report, Step, hint_for_received};

/// One line the server printed.
#[derive(Clone)]
pub struct Line {
    pub at: Instant,
    pub text: String,
    /// On stdout (true) or stderr (false).
    pub stdout: bool,
}

/// How long a check waits for a line the server printed before an event
/// the check has already seen (it said `accepted` before it echoed): only the
/// time the line takes through the pipe.
pub const SAID_BY_NOW: Duration = Duration::from_millis(500);

/// How long a failing check waits for the last words of a program whose
/// connection closed: it may be ending, and what it says is the cause.
const LAST_WORDS: Duration = Duration::from_millis(200);

/// The most lines kept: a server that floods its output must not flood
/// the check's memory too.
const KEPT: usize = 5000;

/// The longest line kept whole: a program that prints without newlines must
/// not flood the check's memory either.
const LONGEST_LINE: u64 = 4096;

pub struct WatchedServer {
    child: Child,
    command: String,
    started: Instant,
    lines: mpsc::Receiver<Line>,
    /// The lines printed so far (the last KEPT of them).
    history: VecDeque<Line>,
    /// How many lines it printed in all.
    count: usize,
    /// True once its stdout and stderr have both ended: it has ended.
    output_ended: bool,
    /// How it ended, once seen.
    exit: Option<std::process::ExitStatus>,
    /// Everything it prints, as it prints it, for the steps that hear it.
    words: ProgramWords,
}

impl WatchedServer {
    /// Starts `program` with `args`.
    pub fn start(program: &Path, args: &[&str]) -> WatchedServer {
        let mut command = Command::new(program);
        command.args(args);
        WatchedServer::spawn(command, command_line(program, args))
    }

    /// Starts `program` with `args` and waits until it says where it
    /// listens: the server, and the address to connect to.
    #[track_caller]
    pub fn start_listening(
        step: &Step,
        program: &Path,
        args: &[&str],
    ) -> (WatchedServer, std::net::SocketAddr) {
        let mut server = WatchedServer::start(program, args);
        step.hear_program(&server.words);
        let addr = server.listening_address(step);
        (server, addr)
    }

    /// Starts `program` with `args` through `sh`, with a limit of
    /// `files` open files: accept fails once the server has that many.
    #[cfg(unix)]
    pub fn start_with_file_limit(program: &Path, args: &[&str], files: usize) -> WatchedServer {
        let script = format!("ulimit -n {files} && exec \"$0\" \"$@\"");
        let mut command = Command::new("sh");
        command.args(["-c", &script]).arg(program).args(args);
        let shown = format!(
            "sh -c 'ulimit -n {files} && exec {}'",
            command_line(program, args)
        );
        WatchedServer::spawn(command, shown)
    }

    fn spawn(mut command: Command, shown: String) -> WatchedServer {
        let started = Instant::now();
        ctrl_c_as_in_a_terminal(&mut command);
        // A backtrace only when the student asked for one, as for the
        // checks' own reports: RUST_BACKTRACE in the shell would bury it.
        let backtrace = match std::env::var_os("SEESAW_BACKTRACE") {
            Some(value) if value != "0" => "1",
            _ => "0",
        };
        let mut child = command
            .env("RUST_BACKTRACE", backtrace)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the check could not start the program");
        let (sender, lines) = mpsc::channel();
        let stdout = child.stdout.take().expect("stdout is piped");
        let stderr = child.stderr.take().expect("stderr is piped");
        let words = ProgramWords::default();
        forward_lines(stdout, true, sender.clone(), words.clone());
        forward_lines(stderr, false, sender, words.clone());
        WatchedServer {
            child,
            command: shown,
            started,
            lines,
            history: VecDeque::new(),
            count: 0,
            output_ended: false,
            exit: None,
            words,
        }
    }

    /// The next line it prints before `deadline`.
    pub fn next_line(&mut self, deadline: Instant) -> Option<Line> {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = match self.lines.recv_timeout(left) {
            Ok(line) => line,
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                self.output_ended = true;
                return None;
            }
            Err(mpsc::RecvTimeoutError::Timeout) => return None,
        };
        self.count += 1;
        if self.history.len() >= KEPT {
            self.history.pop_front();
        }
        self.history.push_back(line.clone());
        Some(line)
    }

    /// A line on stderr, printed at `since` or later, that satisfies
    /// `wanted`: one printed already, or one that comes within `wait`.
    pub fn wait_for(
        &mut self,
        wait: Duration,
        since: Instant,
        wanted: impl Fn(&str) -> bool,
    ) -> Option<Line> {
        let fits = |line: &Line| !line.stdout && line.at >= since && wanted(&line.text);
        if let Some(line) = self.history.iter().find(|line| fits(line)) {
            return Some(line.clone());
        }
        let deadline = Instant::now() + wait;
        while let Some(line) = self.next_line(deadline) {
            if fits(&line) {
                return Some(line);
            }
        }
        None
    }

    /// When it printed a line on stderr that satisfies `wanted`, if it did
    /// (by now: this does not wait).
    pub fn printed(&mut self, wanted: impl Fn(&str) -> bool) -> Option<Instant> {
        while self.next_line(Instant::now()).is_some() {}
        self.history
            .iter()
            .find(|line| !line.stdout && wanted(&line.text))
            .map(|line| line.at)
    }

    /// How many lines it has printed on stderr by now (of the last KEPT)
    /// that satisfy `wanted`. This does not wait.
    pub fn said_count(&mut self, wanted: impl Fn(&str) -> bool) -> usize {
        while self.next_line(Instant::now()).is_some() {}
        self.history
            .iter()
            .filter(|line| !line.stdout && wanted(&line.text))
            .count()
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// True if it printed a line on stdout that satisfies `wanted`.
    pub fn printed_on_stdout(&self, wanted: impl Fn(&str) -> bool) -> bool {
        self.history
            .iter()
            .any(|line| line.stdout && wanted(&line.text))
    }

    /// Fails unless the server printed a line on stderr containing `text`.
    pub fn expect_said(&mut self, step: &Step, text: &str, hint: &str) {
        if self
            .wait_for(SAID_BY_NOW, self.started, |line| line.contains(text))
            .is_some()
        {
            return;
        }
        let report = self
            .report(step)
            .expected(&format!("a line on stderr containing {text:?}"))
            .got("none (its output is above)");
        if self.printed_on_stdout(|line| line.contains(text)) {
            self.fail(report.observed(
                "it went to stdout, which carries only the data: narration goes to \
                 stderr (eprintln!).",
            ));
        }
        self.fail(report.hint(hint));
    }

    /// Waits for `listening on IP:PORT` and returns the address.
    pub fn listening_address(&mut self, step: &Step) -> std::net::SocketAddr {
        let address = self
            .wait_for(DEADLINE, self.started, |line| {
                line.contains("listening on ")
            })
            .and_then(|line| {
                let after = line.text.split("listening on ").nth(1)?;
                after.split_whitespace().next()?.parse().ok()
            });
        match address {
            Some(address) => address,
            None => self
                .report(step)
                .expected("a line `listening on IP:PORT` on stderr")
                .got("nothing like it")
                .fail(),
        }
    }

    /// When it was started.
    pub fn started(&self) -> Instant {
        self.started
    }

    /// True once the server's process has ended.
    pub fn has_exited(&mut self) -> bool {
        if self.exit.is_none() {
            self.exit = self.child.try_wait().ok().flatten();
        }
        self.exit.is_some()
    }

    /// Its last words: if it has ended, or ends within `wait`, reads what it
    /// printed to the end (its output ends when it does), at most
    /// [`LAST_WORDS`] more, and its exit status. A panic or an error line
    /// still in the pipe when the check failed is then in the report.
    pub fn read_last_words(&mut self, wait: Duration) {
        if !self.has_exited() && self.exit_within(wait).is_none() {
            return; // still running: what it printed so far is all there is
        }
        let deadline = Instant::now() + LAST_WORDS;
        while !self.output_ended && self.next_line(deadline).is_some() {}
    }

    /// True if it printed a panic.
    pub fn panicked(&self) -> bool {
        self.history
            .iter()
            .any(|line| line.text.contains("panicked"))
    }

    /// Ends the check with `report`. The program's last words come first:
    /// if it panicked (a todo!() left in place, for instance), or ended, that
    /// is the hint, for it is the cause, whatever the network showed.
    pub fn fail(&mut self, report: Report) -> ! {
        self.read_last_words(Duration::ZERO);
        let output: Vec<&str> = self.history.iter().map(|line| &*line.text).collect();
        let report = report.program_output(&output.join("\n"));
        if self.panicked() {
            report
                .observed(
                    "the program panicked (its output is above): a server reports \
                     an error and goes on; it never unwraps one.",
                )
                .fail()
        } else if let Some(status) = self.exit {
            report.observed(&self.ended_hint(status)).fail()
        } else {
            report.fail()
        }
    }

    /// The hint for a server program that ended by itself, without a panic.
    fn ended_hint(&self, status: std::process::ExitStatus) -> String {
        let last_error = self
            .history
            .iter()
            .rev()
            .find(|line| line.text.starts_with("error:"));
        let said = match last_error {
            Some(line) => format!(", after {:?}", line.text),
            None => String::new(),
        };
        format!(
            "the program ended ({status}{said}): something stopped the whole server. A \
             failed accept or one client's error is not the end of the server: it must not \
             end the loop, and must not stop the server. Report it and go on."
        )
    }

    /// Connects a client of the check's to the server at `addr`, once sure
    /// it still runs.
    #[track_caller]
    pub fn connect(&mut self, step: &Step, addr: std::net::SocketAddr) -> Peer {
        step.hear_program(&self.words);
        self.expect_running(step);
        match std::net::TcpStream::connect_timeout(&addr, DEADLINE) {
            Ok(stream) => {
                step.transcript()
                    .add(format!("check   connected to you at {addr}"));
                Peer::new(step, stream)
            }
            Err(error) => {
                // Refused: it may be ending. Its last words say why.
                self.read_last_words(LAST_WORDS);
                let report = self
                    .report(step)
                    .did(&format!("the check connected to your server at {addr}"))
                    .got_error(&anyhow::Error::new(error));
                self.fail(report)
            }
        }
    }

    /// Sends `message` from `client` and fails unless the same bytes come
    /// back as one line. The report shows what the server printed, and says
    /// so when the program ended: then that is the cause.
    #[track_caller]
    pub fn expect_echo(&mut self, step: &Step, client: &mut Peer, message: &[u8], hint: &str) {
        client.send(message);
        let reply = client.read_line();
        if reply.bytes == message && reply.end == End::Newline {
            return;
        }
        let mut observed = match reply.end {
            End::TimedOut if reply.bytes.is_empty() => Some(hint.to_string()),
            _ => hint_for_received(message, &reply),
        };
        if matches!(reply.end, End::Closed | End::Failed(_)) {
            // The program may be ending: let its last words into the report
            // (then they decide the hint).
            self.read_last_words(LAST_WORDS);
            if let Some(status) = self.exit {
                observed = Some(self.ended_hint(status));
            }
        }
        let report = self
            .report(step)
            .did(&format!(
                "client {} sent {}",
                client.local_addr(),
                show(message)
            ))
            .expected(&format!("{} back", show(message)))
            .got(&reply.describe())
            .hint(hint);
        self.fail(match observed {
            Some(observed) => report.observed(&observed),
            None => report,
        });
    }

    /// Presses Ctrl-C: sends the program SIGINT (`kill -INT PID`), as a
    /// terminal does. Unix only: elsewhere a check that needs this is
    /// `#[cfg_attr(not(unix), ignore = "why")]`.
    #[track_caller]
    pub fn interrupt(&mut self, step: &Step) {
        step.transcript()
            .add("check   pressed Ctrl-C: sent SIGINT to the program (kill -INT)".to_string());
        let sent = Command::new("kill")
            .arg("-INT")
            .arg(self.pid().to_string())
            .status();
        if !sent.as_ref().is_ok_and(|status| status.success()) {
            self.report(step)
                .expected("`kill -INT PID` to deliver Ctrl-C to the program")
                .got(&format!("{sent:?}"))
                .hint("this is the check's trouble, not your code's: is `kill` on the PATH?")
                .fail();
        }
    }

    /// Waits at most `wait` for the program to end, reading what it prints
    /// meanwhile: its exit status, or None if it still runs.
    pub fn exit_within(&mut self, wait: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + wait;
        // Its output ends when it ends: read it until then.
        while self.next_line(deadline).is_some() {}
        loop {
            if self.has_exited() {
                return self.exit;
            }
            if Instant::now() >= deadline {
                return None;
            }
            // Its output has ended, so it is ending: std has no wait with a
            // deadline, and this one is short.
            thread::sleep(Duration::from_millis(5));
        }
    }

    /// Fails unless the server is still running.
    pub fn expect_running(&mut self, step: &Step) {
        if self.has_exited() {
            let report = self
                .report(step)
                .expected("the server to go on running, for ever")
                .got("it ended (its output is above)");
            self.fail(report);
        }
    }

    /// A failure message that shows how the server was run and its last lines.
    pub fn report(&mut self, step: &Step) -> Report {
        self.read_last_words(Duration::ZERO);
        let ended = match self.exit {
            Some(status) => format!(" (it has ended: {status})"),
            None => String::new(),
        };
        // The same line again and again (a deaf client's echoes, a failing
        // accept) is shown once, with a count, so that it buries nothing.
        let mut folded: Vec<(String, usize)> = Vec::new();
        for line in &self.history {
            let text = match line.stdout {
                true => format!("(on stdout) {}", line.text),
                false => line.text.clone(),
            };
            match folded.last_mut() {
                Some((last, count)) if *last == text => *count += 1,
                _ => folded.push((text, 1)),
            }
        }
        let last: Vec<String> = folded
            .iter()
            .skip(folded.len().saturating_sub(12))
            .map(|(text, count)| match count {
                1 => text.clone(),
                _ => format!("{text} (x{count})"),
            })
            .collect();
        step.report()
            .did(&format!("ran `{}` in the background{ended}", self.command))
            .did(&format!(
                "its output ({} lines in all; the last ones):\n{}",
                self.count,
                last.join("\n")
            ))
    }
}

/// Sends each line `output` prints, with the time it came.
/// Each line also goes to `words`, at once, for any report of the step.
fn forward_lines(
    output: impl Read + Send + 'static,
    stdout: bool,
    sender: mpsc::Sender<Line>,
    words: ProgramWords,
) {
    thread::spawn(move || {
        let mut output = BufReader::new(output);
        let mut text = Vec::new();
        // A line at most LONGEST_LINE bytes: a longer one comes in pieces.
        while matches!(
            (&mut output)
                .take(LONGEST_LINE)
                .read_until(b'\n', &mut text),
            Ok(1..)
        ) {
            let line = Line {
                at: Instant::now(),
                text: String::from_utf8_lossy(&text).trim_end().to_string(),
                stdout,
            };
            words.add(&line.text);
            if sender.send(line).is_err() {
                break;
            }
            text.clear();
        }
    });
}

impl Drop for WatchedServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `lesson-06-concurrent server 127.0.0.1:0`, for reports.
fn command_line(program: &std::path::Path, args: &[&str]) -> String {
    let name = program.file_name().unwrap_or_default().to_string_lossy();
    std::iter::once(name.as_ref())
        .chain(args.iter().copied())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The program gets Ctrl-C (SIGINT) as it would in a terminal, even when the
/// checks themselves run in the background of a script: a shell starts its
/// background jobs with SIGINT ignored, and an ignored signal stays ignored
/// across exec, so a program that does not set its own handler would never
/// see the check's Ctrl-C.
#[cfg(unix)]
fn ctrl_c_as_in_a_terminal(command: &mut Command) {
    use std::os::unix::process::CommandExt;

    use crate::run_state::c::{SIG_DFL, SIGINT, signal};
    // SAFETY: runs in the child between fork and exec, where only
    // async-signal-safe calls are allowed; signal() is one.
    unsafe {
        command.pre_exec(|| {
            signal(SIGINT, SIG_DFL);
            Ok(())
        });
    }
}

#[cfg(not(unix))]
fn ctrl_c_as_in_a_terminal(_: &mut Command) {}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use crate::peer::spawn_echo_server;

    /// A "server" that says where it listens (the check's own echo server)
    /// and then waits: enough to watch it.
    fn pretend_server(step: &Step) -> (WatchedServer, std::net::SocketAddr) {
        let echo = spawn_echo_server(step);
        let script = format!("echo 'listening on {echo}' >&2; exec sleep 5");
        (
            WatchedServer::start(Path::new("sh"), &["-c", &script]),
            echo,
        )
    }

    #[test]
    fn reads_the_address_and_talks_to_it() {
        let step = Step::new("watched: unit test", "none");
        let (mut server, echo) = pretend_server(&step);
        assert_eq!(server.listening_address(&step), echo);
        let mut client = server.connect(&step, echo);
        server.expect_echo(&step, &mut client, b"hi \xff\n", "echo it");
        assert!(
            server
                .printed(|line| line.starts_with("listening on"))
                .is_some()
        );
        assert!(!server.panicked());
    }

    #[test]
    fn ctrl_c_ends_it_and_its_exit_is_seen() {
        let step = Step::new("watched: unit test, Ctrl-C", "none");
        let (mut server, _) = pretend_server(&step);
        server.listening_address(&step);
        assert_eq!(server.exit_within(Duration::from_millis(50)), None);
        server.interrupt(&step);
        let status = server.exit_within(DEADLINE).expect("sleep ends on SIGINT");
        assert!(!status.success());
        assert!(server.has_exited());
    }
}
