//! The message a failing check prints.
//!
//! Every failure says which step failed, what the check did (with a transcript of
//! the bytes sent and received), what it expected, what it got, and a hint: which
//! std call to look at and which chapter of the book to read.

use std::fmt::Write as _;
use std::io;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// One check of a lesson: its title and the chapter of the book that explains it.
/// It keeps the transcript of everything the check sent and received.
#[derive(Clone)]
pub struct Step {
    title: String,
    chapter: String,
    transcript: Transcript,
    /// The student's code that runs on threads for this step, and its panics.
    student_code: Arc<(Mutex<StudentCode>, Condvar)>,
}

/// What the student's code is doing during one step.
#[derive(Default)]
struct StudentCode {
    /// How many of its threads are still running.
    running: usize,
    /// Its panics: `(call, message)`.
    panics: Vec<(String, String)>,
}

/// How long a failing check waits for the student's code to finish before it
/// reports, so that a panic that closed the connection is shown as the cause.
const SETTLE: Duration = Duration::from_millis(200);

impl Step {
    /// `title` says what the student's code should do, for instance
    /// `"step 1: listen on the address you are given"`.
    /// `chapter` names the book chapter, for instance `"01-listen"`.
    pub fn new(title: &str, chapter: &str) -> Step {
        Step {
            title: title.to_string(),
            chapter: chapter.to_string(),
            transcript: Transcript::default(),
            student_code: Arc::default(),
        }
    }

    /// Notes that the student's code has started on a thread of its own.
    pub fn code_started(&self) {
        self.student_code.0.lock().unwrap().running += 1;
    }

    /// Notes that the student's code has finished: `panic` holds the call and
    /// the message if it panicked. Any failure of this step then shows the
    /// panic first: it is the real cause.
    pub fn code_finished(&self, panic: Option<(String, String)>) {
        let (state, changed) = &*self.student_code;
        let mut state = state.lock().unwrap();
        state.running -= 1;
        state.panics.extend(panic);
        changed.notify_all();
    }

    /// The panics of the student's code, once its threads have finished or
    /// [`SETTLE`] has passed.
    fn settled_panics(&self) -> Vec<(String, String)> {
        let (state, changed) = &*self.student_code;
        let state = state.lock().unwrap();
        let (state, _) = changed
            .wait_timeout_while(state, SETTLE, |state| state.running > 0)
            .unwrap();
        state.panics.clone()
    }

    /// The transcript this step's peers write to.
    pub fn transcript(&self) -> &Transcript {
        &self.transcript
    }

    /// Starts a failure message for this step. Finish it with [`Report::fail`].
    pub fn report(&self) -> Report {
        Report {
            step: self.clone(),
            lines: Vec::new(),
            hint: None,
        }
    }

    /// Unwraps what the student's function returned, or fails with its error and
    /// the hint for that kind of error.
    #[track_caller]
    pub fn ok<T>(&self, call: &str, result: anyhow::Result<T>) -> T {
        match result {
            Ok(value) => value,
            Err(error) => self
                .report()
                .expected(&format!("{call} to succeed"))
                .got(&format!("an error: {error:#}"))
                .hint_for_error(&error)
                .fail(),
        }
    }
}

/// Everything a check's peers sent and received, in order, shown in a failure.
#[derive(Clone, Default)]
pub struct Transcript {
    lines: Arc<Mutex<Vec<String>>>,
}

impl Transcript {
    /// Adds one line, for instance `check -> you  b"hi\n"`.
    pub fn add(&self, line: String) {
        self.lines.lock().unwrap().push(line);
    }

    fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }
}

/// A failure message being written. Each method adds one part.
pub struct Report {
    step: Step,
    lines: Vec<(&'static str, String)>,
    hint: Option<String>,
}

impl Report {
    /// What the check did, in words.
    pub fn did(mut self, text: &str) -> Report {
        self.lines.push(("did", text.to_string()));
        self
    }

    /// What the check expected.
    pub fn expected(mut self, text: &str) -> Report {
        self.lines.push(("expected", text.to_string()));
        self
    }

    /// What the check got instead.
    pub fn got(mut self, text: &str) -> Report {
        self.lines.push(("got", text.to_string()));
        self
    }

    /// What to try. A later hint replaces an earlier one.
    pub fn hint(mut self, text: &str) -> Report {
        self.hint = Some(text.to_string());
        self
    }

    /// The hint that fits an error, found by its `io::ErrorKind`. Keeps the
    /// current hint when the kind has none of its own.
    pub fn hint_for_error(self, error: &anyhow::Error) -> Report {
        match io_error_kind(error).and_then(hint_for_kind) {
            Some(text) => self.hint(text),
            None => self,
        }
    }

    /// Ends the check with this message.
    #[track_caller]
    pub fn fail(self) -> ! {
        panic!("{}", self.render())
    }

    fn render(&self) -> String {
        let mut text = format!("\n\n{}\n", self.step.title);
        let panics = self.step.settled_panics();
        let mut lines = self.lines.clone();
        let mut hint = self.hint.clone();
        for (call, message) in panics {
            lines.push(("panicked", format!("{call} panicked: {message}")));
            hint = Some(panic_hint(&message).to_string());
        }
        for (label, line) in &lines {
            // Continuation lines line up under the first one.
            let line = line.trim_end().replace('\n', "\n            ");
            let _ = writeln!(text, "  {label:<9} {line}");
        }
        let transcript = self.step.transcript.lines();
        if !transcript.is_empty() {
            let _ = writeln!(text, "  transcript (check = this check, you = your code):");
            for line in transcript {
                let _ = writeln!(text, "      {line}");
            }
        }
        if let Some(hint) = &hint {
            let _ = writeln!(text, "  hint      {hint}");
        }
        let _ = writeln!(
            text,
            "  read      book/src/lessons/{}.md (mdbook serve book --open)\n",
            self.step.chapter
        );
        text
    }
}

/// The `io::ErrorKind` behind an error, if there is an `io::Error` anywhere in its chain.
pub fn io_error_kind(error: &anyhow::Error) -> Option<io::ErrorKind> {
    error
        .chain()
        .find_map(|cause| cause.downcast_ref::<io::Error>())
        .map(io::Error::kind)
}

/// A hint for the kinds of error students meet most.
pub fn hint_for_kind(kind: io::ErrorKind) -> Option<&'static str> {
    use io::ErrorKind::*;
    let hint = match kind {
        ConnectionRefused => {
            "connection refused: nothing listens at that address and port. \
             Is the server running, and did you dial the port it printed?"
        }
        AddrInUse => {
            "address in use: another socket already listens on that address. \
             Stop the other program, or pick another port (port 0 lets the OS choose)."
        }
        AddrNotAvailable => {
            "address not available: this machine has no such IP address. \
             Use 127.0.0.1 (loopback) or 0.0.0.0 (every interface)."
        }
        InvalidInput => {
            "invalid input: this is usually a malformed address. \
             Write it as IP:PORT, for instance 127.0.0.1:5555."
        }
        UnexpectedEof => {
            "unexpected end of file: the other side closed before sending what you \
             waited for. A read that returns Ok(0) means end of file."
        }
        ConnectionReset | ConnectionAborted | BrokenPipe => {
            "the connection was reset: the other side closed it while data was \
             still on the way. Whoever closed did not read everything first."
        }
        TimedOut | WouldBlock => {
            "timed out: nothing arrived in time. When both sides wait to read, the \
             seesaw is stuck: see the book's chapter on the seesaw model."
        }
        _ => return None,
    };
    Some(hint)
}

/// The hint for a panic: a `todo!()` left in place, or an `unwrap()` that failed.
pub fn panic_hint(message: &str) -> &'static str {
    if message.starts_with("not yet implemented") {
        TODO_HINT
    } else {
        "an expected failure should be an Err, not a panic: use ? and .context(...) \
         instead of unwrap() or expect()."
    }
}

/// The hint for code that still holds the stub's `todo!()`.
pub const TODO_HINT: &str = "this function still holds the stub's todo!(). Replace the todo!() \
     at the // TODO in src/lib.rs with your code; its message above says which std call to use.";
