//! The message a failing check prints.
//!
//! Every failure says which step failed, what the check did (with a transcript of
//! the bytes sent and received), what it expected, what it got, and a hint: which
//! std call to look at and which chapter of the book to read.

use std::fmt::Write as _;
use std::io;
use std::sync::{Arc, Mutex};

/// One check of a lesson: its title and the chapter of the book that explains it.
/// It keeps the transcript of everything the check sent and received.
#[derive(Clone)]
pub struct Step {
    title: String,
    chapter: String,
    transcript: Transcript,
    /// Panics of the student's code during this step: `(call, message)`.
    panics: Arc<Mutex<Vec<(String, String)>>>,
}

impl Step {
    /// `title` says what the student's code should do, for instance
    /// `"step 1: listen on the address you are given"`.
    /// `chapter` names the book chapter, for instance `"01-listen"`.
    pub fn new(title: &str, chapter: &str) -> Step {
        Step {
            title: title.to_string(),
            chapter: chapter.to_string(),
            transcript: Transcript::default(),
            panics: Arc::default(),
        }
    }

    /// Notes that the student's `call` panicked. Any failure of this step then
    /// shows the panic first: it is the real cause.
    pub fn record_panic(&self, call: &str, message: &str) {
        let entry = (call.to_string(), message.to_string());
        self.panics.lock().unwrap().push(entry);
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
        let panics = self.step.panics.lock().unwrap().clone();
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
