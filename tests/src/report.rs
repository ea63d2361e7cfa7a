//! The message a failing check prints.
//!
//! Every failure says which step failed, what the check did (with a transcript of
//! the bytes sent and received), what it expected, what it got, and a hint that
//! fits what happened: an error of some kind, a panic, a hang, an early close, a
//! reset, wrong bytes. The check's own hint is the fallback. Every report ends
//! with the chapter of the book to read, and stays short whatever your code does.

use std::fmt::Write as _;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use crate::bytes::{difference, show};
use crate::peer::{End, Received};
use crate::run_state;

/// One check of a lesson: its title and the chapter of the book that explains it.
/// It keeps the transcript of everything the check sent and received.
pub struct Step {
    title: String,
    chapter: String,
    transcript: Transcript,
    /// The student's code that runs on threads for this step, and its panics.
    student_code: Arc<(Mutex<StudentCode>, Condvar)>,
    /// Set when one of this step's deadlines ran out: the student's code hangs.
    waited_out: Arc<AtomicBool>,
    /// Only the step the check itself made (not its clones) marks the end of the step.
    owner: bool,
    /// What the lesson's programs this step started say, as they say it.
    programs: Arc<Mutex<Vec<ProgramWords>>>,
}

/// The lines a running program prints, shared with the step that started it,
/// so that any failure of the step can show the program's last words (its
/// panic) whichever part of the check saw the failure.
#[derive(Clone, Default)]
pub struct ProgramWords(Arc<(Mutex<Vec<String>>, Condvar)>);

impl ProgramWords {
    /// One more line the program printed.
    pub fn add(&self, line: &str) {
        let (lines, changed) = &*self.0;
        let mut lines = lines.lock().unwrap_or_else(|p| p.into_inner());
        lines.push(line.to_string());
        if lines.len() > 400 {
            lines.drain(..200);
        }
        changed.notify_all();
    }

    /// Its panic, if it printed one or prints one within `wait`: a
    /// program's thread prints its panic before the connection it served
    /// closes, but the line may still be on its way to the check.
    fn panic_within(&self, wait: Duration) -> Option<Panic> {
        let (lines, changed) = &*self.0;
        let lines = lines.lock().unwrap_or_else(|p| p.into_inner());
        let (lines, _) = changed
            .wait_timeout_while(lines, wait, |lines| {
                panic_in_output(&lines.join("\n")).is_none()
            })
            .unwrap_or_else(|p| p.into_inner());
        panic_in_output(&lines.join("\n"))
    }
}

/// A panic of the student's code: the call, the message, and where it happened.
#[derive(Clone)]
pub struct Panic {
    pub call: String,
    pub message: String,
    /// Where it panicked, `FILE:LINE`: what tells one cause from another.
    pub location: String,
    /// The backtrace, kept only when SEESAW_BACKTRACE=1 is set.
    pub backtrace: Option<String>,
}

/// What the student's code is doing during one step.
#[derive(Default)]
struct StudentCode {
    /// How many of its threads are still running.
    running: usize,
    panics: Vec<Panic>,
}

/// How long a failing check waits for the student's code to finish before it
/// reports, so that a panic that closed the connection is shown as the cause.
const SETTLE: Duration = Duration::from_millis(200);

/// How long a failing check waits for a program's panic still on its way.
const PROGRAM_SETTLE: Duration = Duration::from_millis(50);

/// The most lines one report shows, and the most bytes.
const MAX_LINES: usize = 58;
const MAX_BYTES: usize = 7 * 1024;

impl Clone for Step {
    fn clone(&self) -> Step {
        Step {
            title: self.title.clone(),
            chapter: self.chapter.clone(),
            transcript: self.transcript.clone(),
            student_code: self.student_code.clone(),
            waited_out: self.waited_out.clone(),
            owner: false,
            programs: self.programs.clone(),
        }
    }
}

impl Drop for Step {
    fn drop(&mut self) {
        if self.owner {
            run_state::step_ended();
        }
    }
}

impl Step {
    /// `title` says what the student's code should do, for instance
    /// `"step 1: listen on the address you are given"`.
    /// `chapter` names the book chapter, for instance `"01-listen"`.
    ///
    /// If an earlier step of this run hung, the checks stop here: every later
    /// step would only wait out its own deadline too.
    #[track_caller]
    pub fn new(title: &str, chapter: &str) -> Step {
        run_state::install_panic_hook();
        let step = Step {
            title: title.to_string(),
            chapter: chapter.to_string(),
            transcript: Transcript::default(),
            student_code: Arc::default(),
            waited_out: Arc::default(),
            owner: true,
            programs: Arc::default(),
        };
        if let Some(hung) = run_state::hung_step() {
            run_state::stop_after_hang(&hung);
        }
        run_state::step_started(title, chapter);
        step
    }

    /// The step's title, like `step 3: ...`.
    pub fn title(&self) -> &str {
        &self.title
    }

    /// Notes that one of this step's deadlines ran out while the check waited
    /// for the student's code. If the step then fails, later steps are skipped.
    pub fn note_waited_out(&self) {
        self.waited_out.store(true, Ordering::SeqCst);
    }

    /// Notes that the student's code has started on a thread of its own.
    pub fn code_started(&self) {
        self.student_code.0.lock().unwrap().running += 1;
    }

    /// Listens to a lesson's program this step started: if the step fails,
    /// the program's panic is the cause, shown first.
    pub fn hear_program(&self, words: &ProgramWords) {
        let mut programs = self.programs.lock().unwrap();
        if !programs.iter().any(|heard| Arc::ptr_eq(&heard.0, &words.0)) {
            programs.push(words.clone());
        }
    }

    /// The first panic of a program this step started.
    fn program_panic(&self) -> Option<Panic> {
        let programs = self.programs.lock().unwrap().clone();
        programs
            .iter()
            .find_map(|words| words.panic_within(PROGRAM_SETTLE))
    }

    /// Notes that the student's code has finished, and its panic if it panicked.
    /// Any failure of this step then shows the panic first: it is the real cause.
    pub fn code_finished(&self, panic: Option<Panic>) {
        let (state, changed) = &*self.student_code;
        let mut state = state.lock().unwrap();
        state.running -= 1;
        state.panics.extend(panic);
        changed.notify_all();
    }

    /// The panics of the student's code, once its threads have finished or
    /// [`SETTLE`] has passed.
    /// Panics seen by the panic hook only (on a thread the student's code
    /// started, or not yet recorded by the check) count when there is no other.
    fn settled_panics(&self) -> Vec<Panic> {
        let (state, changed) = &*self.student_code;
        let state = state.lock().unwrap();
        let mut panics = if self.waited_out.load(Ordering::SeqCst) {
            // The code hangs: it will not finish now, and a panic would already be here.
            state.panics.clone()
        } else {
            let (state, _) = changed
                .wait_timeout_while(state, SETTLE, |state| state.running > 0)
                .unwrap();
            state.panics.clone()
        };
        if panics.is_empty() {
            panics.extend(run_state::stray_panics().into_iter().take(1));
        }
        panics
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
            observed: None,
            detail: None,
            program_panic: None,
        }
    }

    /// Ends this check without checking, because it cannot run on this machine
    /// (`reason` says why, for instance "Windows has no Ctrl-C signal to send
    /// to a program"). It says so at once, on libtest's own line for the
    /// check (`test step_3_... ... [skipped: REASON] ok`), which `cargo
    /// progress` counts as skipped: a check never passes without checking.
    /// Where the reason is known when compiling (an OS), use
    /// `#[cfg_attr(windows, ignore = "why")]` on the check instead: libtest
    /// then counts it as ignored, with the reason.
    pub fn skip(self, reason: &str) {
        run_state::print_now(&skip_mark(None, reason));
    }

    /// Says that one part of this check could not run here (the rest is
    /// checked), on libtest's line for the check: `[part skipped: PART: REASON]`.
    pub fn skip_part(&self, part: &str, reason: &str) {
        run_state::print_now(&skip_mark(Some(part), reason));
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
                .got_error(&error)
                .fail(),
        }
    }
}

/// How a skipped check, or part of one, is said: inside libtest's line
/// `test NAME ... ` (no newline, which would make the line look like the start
/// of a failure report), in brackets that `cargo progress` recognises.
pub fn skip_mark(part: Option<&str>, reason: &str) -> String {
    let reason = reason.replace(['[', ']', '\n'], " ");
    match part {
        None => format!("{SKIPPED}{reason}] "),
        Some(part) => format!("{PART_SKIPPED}{part}: {reason}] "),
    }
}

/// The start of the mark of a check skipped whole, and of a part skipped.
pub const SKIPPED: &str = "[skipped: ";
pub const PART_SKIPPED: &str = "[part skipped: ";

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

/// The text of a failure: the payload of the panic that fails a check.
pub struct ReportText(pub String);

/// A failure message being written. Each method adds one part.
pub struct Report {
    step: Step,
    lines: Vec<(&'static str, String)>,
    /// The check's own hint: the fallback.
    hint: Option<String>,
    /// The hint that fits what was observed; it wins over the check's own.
    observed: Option<String>,
    /// How the bytes that came differ from those expected: said first, then
    /// the check's own hint, which knows the likely cause.
    detail: Option<String>,
    /// The panic a lesson's program printed, if it did: the cause.
    program_panic: Option<Panic>,
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

    /// The check's own hint, used when what happened has no hint of its own.
    /// A later hint replaces an earlier one.
    pub fn hint(mut self, text: &str) -> Report {
        self.hint = Some(text.to_string());
        self
    }

    /// The hint that fits what was observed, for instance a hang. It wins over
    /// the check's own hint.
    pub fn observed(mut self, text: &str) -> Report {
        self.observed = Some(text.to_string());
        self
    }

    /// Got an error from the student's code: shows it, with the hint for its
    /// kind of `io::Error`.
    pub fn got_error(self, error: &anyhow::Error) -> Report {
        let report = self.got(&format!("an error: {error:#}"));
        match io_error_kind(error).and_then(hint_for_kind) {
            Some(text) => report.observed(text),
            None => report,
        }
    }

    /// Got `received` where `expected` (ending with a newline) should have come:
    /// shows it, and the hint that fits how the read ended and how the bytes differ.
    pub fn got_received(self, expected: &[u8], received: &Received) -> Report {
        let mut report = self.got(&received.describe());
        // Wrong bytes, rather than a hang, a close or a reset before any.
        let about_bytes = match received.end {
            End::Failed(_) => false,
            End::TimedOut => !received.bytes.is_empty(),
            End::Closed => !received.bytes.is_empty() && expected.starts_with(&received.bytes),
            End::Newline => true,
        };
        match hint_for_received(expected, received) {
            Some(text) if about_bytes => {
                report.detail = Some(text);
                report
            }
            Some(text) => report.observed(&text),
            None => report,
        }
    }

    /// What a lesson's program printed (shown in the report by the caller):
    /// if it panicked, the panic is the cause. A `todo!()` left in place then
    /// decides the hint, before anything the network showed.
    pub fn program_output(mut self, output: &str) -> Report {
        self.program_panic = panic_in_output(output);
        self
    }

    /// Ends the check with this message. When an earlier step failed for
    /// the same cause (a panic at the same place), the message is one mark
    /// on libtest's line instead: that report says it all already.
    #[track_caller]
    pub fn fail(mut self) -> ! {
        let panics = self.step.settled_panics();
        if self.program_panic.is_none()
            && let Some(panic) = self.step.program_panic()
        {
            // What the program printed decides the hint, before the network.
            self.lines.push((
                "panicked",
                format!("your program panicked: {}", panic.message),
            ));
            self.observed = Some(panic_hint(&panic.message).to_string());
            self.program_panic = Some(panic);
        }
        // A deadline that ran out is a hang only when nothing else explains
        // it: after a panic the check waited on code that had stopped (a
        // program still ending, on a loaded machine), and the steps to come
        // will each meet the same panic at once rather than wait.
        let panicked = !panics.is_empty() || self.program_panic.is_some();
        if self.step.waited_out.load(Ordering::SeqCst) && !panicked {
            run_state::step_hung(&self.step.title);
        }
        if let Some(mark) = self.same_cause_mark(&panics) {
            run_state::step_marked();
            std::panic::panic_any(ReportText(mark))
        }
        std::panic::panic_any(ReportText(self.render_with(panics)))
    }

    /// The mark `[same cause as step 1: the todo!() in listen (FILE:LINE)] `
    /// if an earlier step failed for the cause of this failure; else this
    /// cause is remembered for the steps to come.
    /// Another `todo!()` than an earlier step's is one mark too: where it
    /// is (`[the todo!() in serve (src/lib.rs:106) is still there: what to do,
    /// as at step 1] `); the step that reported the first says what to do.
    fn same_cause_mark(&self, panics: &[Panic]) -> Option<String> {
        let panic = panics.first().or(self.program_panic.as_ref())?;
        let step = self.step.title.split(':').next().unwrap_or_default();
        let words = describe_cause(panic);
        let todo = is_todo(&panic.message);
        if let Some(earlier) =
            run_state::earlier_step_with_cause(&panic.location, &words, todo, step)
        {
            return Some(same_cause_mark(&earlier.0, &earlier.1));
        }
        let first_todo = run_state::earlier_todo_step(step).filter(|_| todo)?;
        Some(another_todo_mark(&first_todo, &words))
    }

    /// The message, as it will be printed.
    pub fn render(&self) -> String {
        self.render_with(self.step.settled_panics())
    }

    fn render_with(&self, panics: Vec<Panic>) -> String {
        let mut lines = self.lines.clone();
        let mut hint = self.observed.clone().or_else(|| self.hint.clone());
        if let Some(panic) = &self.program_panic
            && is_todo(&panic.message)
        {
            hint = Some(TODO_HINT.to_string());
        }
        let mut backtraces = Vec::new();
        for panic in panics {
            let call = match panic.call.is_empty() {
                true => "your code",
                false => &panic.call,
            };
            lines.push(("panicked", format!("{call} panicked: {}", panic.message)));
            hint = Some(panic_hint(&panic.message).to_string());
            backtraces.extend(panic.backtrace);
        }
        let hint = match (&self.detail, hint) {
            (Some(detail), Some(hint)) => join_hints(detail, &hint),
            (Some(detail), None) => detail.clone(),
            (None, Some(hint)) => hint,
            (None, None) => FALLBACK_HINT.to_string(),
        };
        let mut text = format!("\n\n{}\n", self.step.title);
        for (label, line) in &lines {
            let _ = writeln!(text, "  {label:<9} {}", indent(&bounded_field(line)));
        }
        let transcript = fold_repeats(&self.step.transcript.lines());
        if !transcript.is_empty() {
            let _ = writeln!(text, "  transcript (check = this check, you = your code):");
            for line in bounded_lines(&transcript, 16) {
                let _ = writeln!(text, "      {}", bounded_field(&line));
            }
        }
        let _ = writeln!(text, "  hint      {}", indent(&as_sentence(&hint)));
        let _ = writeln!(
            text,
            "  more help cargo hint {0}   (the idea; then cargo hint {0} 2: the std calls; 3: the code's shape)",
            &self.step.chapter[..2]
        );
        let _ = writeln!(
            text,
            "  read      book/src/lessons/{}.md (mdbook serve book --open)",
            self.step.chapter
        );
        let mut text = cap(text);
        if backtraces.is_empty() && !lines.iter().any(|(label, _)| *label == "panicked") {
            text.push('\n');
        } else if backtraces.is_empty() {
            text.push_str(
                "  (to see where your code panicked: SEESAW_BACKTRACE=1 cargo test ...)\n\n",
            );
        }
        for backtrace in backtraces {
            let _ = writeln!(text, "where your code panicked:\n{backtrace}");
        }
        text
    }
}

/// The hint when nothing more specific fits.
const FALLBACK_HINT: &str = "read the step's title again: it says what your code must do. \
     The chapter below explains it, and what this check does.";

/// Continuation lines line up under the first one.
fn indent(text: &str) -> String {
    text.trim_end().replace('\n', "\n            ")
}

/// One field of a report: at most 12 lines (the last ones, where the cause
/// usually is) and 600 characters a line.
fn bounded_field(text: &str) -> String {
    last_lines(text, 12, 600).join("\n")
}

/// The last `most_lines` lines of `text`, each cut to `most_chars`
/// characters, after a line that counts the lines left out, if any.
pub(crate) fn last_lines(text: &str, most_lines: usize, most_chars: usize) -> Vec<String> {
    let lines: Vec<&str> = text.lines().collect();
    let hidden = lines.len().saturating_sub(most_lines);
    let mut kept = Vec::new();
    if hidden > 0 {
        let noun = if hidden == 1 { "line" } else { "lines" };
        kept.push(format!("({hidden} earlier {noun} not shown)"));
    }
    for line in &lines[hidden..] {
        kept.push(match line.chars().count() > most_chars {
            true => format!(
                "{}... (line cut)",
                line.chars().take(most_chars).collect::<String>()
            ),
            false => line.to_string(),
        });
    }
    kept
}

/// At most `most` lines: the first few and the last ones.
fn bounded_lines(lines: &[String], most: usize) -> Vec<String> {
    if lines.len() <= most {
        return lines.to_vec();
    }
    let head = most / 3;
    let tail = most - head - 1;
    let mut kept = lines[..head].to_vec();
    kept.push(format!(
        "... ({} lines not shown) ...",
        lines.len() - head - tail
    ));
    kept.extend_from_slice(&lines[lines.len() - tail..]);
    kept
}

/// Repeated lines in a row become one: `check   connected to you (x100)`.
fn fold_repeats(lines: &[String]) -> Vec<String> {
    let mut folded: Vec<(String, usize)> = Vec::new();
    for line in lines {
        match folded.last_mut() {
            Some((last, count)) if last == line => *count += 1,
            _ => folded.push((line.clone(), 1)),
        }
    }
    folded
        .into_iter()
        .map(|(line, count)| match count {
            1 => line,
            _ => format!("{line} (x{count})"),
        })
        .collect()
}

/// The last guard: whatever went into it, a report stays under 60 lines and 8 KB.
fn cap(text: String) -> String {
    let mut kept = String::new();
    for (index, line) in text.lines().enumerate() {
        if index >= MAX_LINES || kept.len() + line.len() > MAX_BYTES {
            kept.push_str("  (the rest of this report is cut: it was too long)\n");
            break;
        }
        kept.push_str(line);
        kept.push('\n');
    }
    kept
}

/// The hint that fits what the check read where `expected` should have come.
pub fn hint_for_received(expected: &[u8], received: &Received) -> Option<String> {
    let hint = match received.end {
        End::Failed(kind) => hint_for_kind(kind)?.to_string(),
        End::TimedOut if received.bytes.is_empty() => NOTHING_CAME.to_string(),
        End::TimedOut => format!(
            "{} came, but no newline after it, and then nothing more in time. {}",
            show(&received.bytes),
            difference(expected, &received.bytes).unwrap_or_default()
        ),
        End::Closed if received.bytes.is_empty() && std::str::from_utf8(expected).is_err() => {
            "your code closed the connection without answering a message that is not UTF-8 \
             text (it holds bytes like 0xFF): code that reads text (lines(), read_line) fails \
             there; the protocol carries bytes, so read them with read_until into a Vec<u8>. \
             Or did it return, or panic, too early?"
                .to_string()
        }
        End::Closed if !expected.starts_with(&received.bytes) || received.bytes.is_empty() => {
            format!(
                "your code closed the connection {}: did it return, or panic, too early?",
                match received.bytes.is_empty() {
                    true => "without sending anything".to_string(),
                    false => format!("after sending {}", show(&received.bytes)),
                }
            )
        }
        End::Closed if received.bytes.len() < expected.len() => format!(
            "your code sent the first {} bytes, then closed the connection before the rest: \
             one read returns whatever has arrived so far, maybe only the first piece. Keep \
             reading up to the newline.",
            received.bytes.len()
        ),
        _ => {
            let text = difference(expected, &received.bytes)?;
            match text.ends_with('.') {
                true => text,
                false => format!("{text}."),
            }
        }
    };
    Some(hint)
}

/// The hint when nothing at all came back in time: the two likeliest causes.
pub const NOTHING_CAME: &str = "nothing came back in time: your code is waiting for something \
     (a read that does not end?), or it never wrote, or it wrote into a BufWriter that was \
     never flushed (its bytes go out only on flush). When both sides wait to read, the seesaw \
     is stuck.";

/// A hint as a sentence: its first word in upper case when it is a plain
/// word (`the` becomes `The`; `read_until`, `cut_short()` and `b"hi"` stay as
/// they are, since they are code), and no doubled full stop at its end.
pub fn as_sentence(hint: &str) -> String {
    let hint = hint.trim();
    let hint = hint
        .strip_suffix("..")
        .map_or(hint.to_string(), |cut| format!("{cut}."));
    let first_word = hint.split([' ', ',', ':', ';']).next().unwrap_or_default();
    if first_word.is_empty() || !first_word.chars().all(|c| c.is_ascii_lowercase()) {
        return hint;
    }
    let mut chars = hint.chars();
    chars
        .next()
        .map(|head| head.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// Two hints as one: `first` (what was observed), then `then` (the check's
/// own), with a full stop between them and `then` starting in upper case.
pub fn join_hints(first: &str, then: &str) -> String {
    let first = first.trim_end();
    let then = as_sentence(then);
    if then.is_empty() {
        return first.to_string();
    }
    match first.ends_with(['.', '!', '?', ':']) {
        true => format!("{first} {then}"),
        false => format!("{first}. {then}"),
    }
}

/// The hint for what the check read where `expected` and then end of file
/// should have come.
pub fn hint_for_ending(expected: &[u8], received: &Received) -> String {
    match received.end {
        End::Failed(kind) => hint_for_kind(kind)
            .unwrap_or("the connection failed.")
            .to_string(),
        End::TimedOut if received.bytes == expected => {
            "everything came, but the connection stayed open: once the conversation is \
             over, return (or drop the connection); that closes it, once every handle on it \
             is gone (a try_clone is one more handle)."
                .to_string()
        }
        End::TimedOut => format!(
            "then nothing more came, and the connection stayed open. {}",
            difference(expected, &received.bytes).unwrap_or_default()
        ),
        End::Closed | End::Newline => {
            difference(expected, &received.bytes).unwrap_or_default() + "."
        }
    }
}

/// The `io::ErrorKind` behind an error, if there is an `io::Error` anywhere in its chain.
pub fn io_error_kind(error: &anyhow::Error) -> Option<io::ErrorKind> {
    error
        .chain()
        .find_map(|cause| cause.downcast_ref::<io::Error>())
        .map(io::Error::kind)
}

/// An error in words, for a report: its message, and the kind of `io::Error`
/// inside it (the kind is what lets a program advise what to try).
pub fn describe_error(error: &anyhow::Error) -> String {
    let message = format!("{error:#}");
    match io_error_kind(error) {
        Some(kind) => format!("the error {message:?} (an io::Error of kind {kind:?} inside)"),
        None => format!("the error {message:?}, with no io::Error inside"),
    }
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
        InvalidData => {
            "invalid data: something expected UTF-8 text. The protocol carries bytes: \
             keep them in a Vec<u8> (read_until, not read_line or read_to_string)."
        }
        UnexpectedEof => {
            "unexpected end of file: the other side closed before sending what you \
             waited for. A read that returns Ok(0) means end of file."
        }
        ConnectionReset | ConnectionAborted => {
            "the connection was reset: the other side closed it while data it had not \
             read was still waiting. Whoever closed did not read everything first."
        }
        BrokenPipe => "broken pipe: you wrote to a connection the other side had already closed.",
        NotConnected => {
            "not connected: the connection was already gone (closed or reset by the \
             other side) when your code used it."
        }
        TimedOut | WouldBlock => {
            "timed out: nothing arrived in time. When both sides wait to read, the \
             seesaw is stuck: see the book's chapter on the seesaw model."
        }
        _ => return None,
    };
    Some(hint)
}

/// The mark a later step prints, on libtest's line for its check, when it
/// failed for the same cause as `step`: `[same cause as step 1: CAUSE] `.
/// The check still fails: libtest writes `FAILED` right after it.
pub fn same_cause_mark(step: &str, cause: &str) -> String {
    let cause = cause.replace(['[', ']', '\n'], " ");
    format!("{SAME_CAUSE}{step}: {cause}] ")
}

/// The mark of a step that failed on another `todo!()` than the one an
/// earlier `step` reported: `[the todo!() in serve (src/lib.rs:106) is still
/// there: what to do, as at step 1] `. It still fails.
pub fn another_todo_mark(step: &str, cause: &str) -> String {
    let cause = cause.replace(['[', ']', '\n'], " ");
    format!("[{cause} is still there: what to do, as at {step}] ")
}

/// The start of the mark of a check that failed for an earlier step's cause.
pub const SAME_CAUSE: &str = "[same cause as ";

/// A cause in a few words: `the todo!() in listen (src/lib.rs:28)`.
fn describe_cause(panic: &Panic) -> String {
    let what = match is_todo(&panic.message) {
        true => "the todo!()",
        false => "the panic",
    };
    // `read_message(..)` or `read_message on the input b"..."`: the name alone.
    let function = panic.call.split(['(', ' ']).next().unwrap_or_default();
    match function.is_empty() {
        true => format!("{what} at {}", panic.location),
        false => format!("{what} in {function} ({})", panic.location),
    }
}

/// True for the panic of a `todo!()` left in place.
fn is_todo(message: &str) -> bool {
    message.starts_with("not yet implemented")
}

/// The first panic a program printed: `thread 'main' (7) panicked at
/// FILE:LINE:COLUMN:`, then its message on the next line.
pub fn panic_in_output(output: &str) -> Option<Panic> {
    let mut lines = output.lines();
    let first = lines.find(|line| line.contains("panicked at "))?;
    let place = first.split("panicked at ").nth(1)?.trim_end_matches(':');
    // FILE:LINE:COLUMN: the column is dropped, as in the checks' own panics.
    let location = match place.rsplit_once(':') {
        Some((file_and_line, column)) if column.parse::<u32>().is_ok() => file_and_line,
        _ => place,
    };
    let message = lines.next().unwrap_or_default().to_string();
    Some(Panic {
        call: String::new(),
        message: format!("{message} (at {location})"),
        location: location.to_string(),
        backtrace: None,
    })
}

/// The hint for a panic: a `todo!()` left in place, arithmetic or an index
/// that went wrong, or an `unwrap()` that failed.
pub fn panic_hint(message: &str) -> &'static str {
    if is_todo(message) {
        TODO_HINT
    } else if message.contains("divide by zero") || message.contains("divisor of zero") {
        "a division by zero: look at the divisor before you divide (did nothing count?), \
         and answer that case without dividing."
    } else if message.contains("with overflow") {
        "an integer overflowed (a debug build checks; a release build wraps around \
         silently): compute in a wider type (i64::from(x)), or check (checked_add)."
    } else if message.contains("index out of bounds") || message.contains("out of range for slice")
    {
        "an index past the end: check the length before you index (.get(i) gives None \
         instead of a panic); input that is too short is an Err to return, never a panic."
    } else if message.contains("Cannot block the current thread from within a runtime")
        || message.contains("Cannot start a runtime from within a runtime")
    {
        "a blocking call inside async code (blocking_send, blocking_recv, block_on) would \
         stop the runtime's thread, so tokio panics instead: use the form that never waits \
         (try_send), or .await the async one."
    } else {
        "an expected failure should be an Err, not a panic: use ? and .context(...) \
         instead of unwrap() or expect()."
    }
}

/// The hint for code that still holds the stub's `todo!()`.
pub const TODO_HINT: &str = "this function still holds the stub's todo!(). Replace the todo!() \
     at the // TODO in src/lib.rs with your code; its message above says what to do.";

#[cfg(test)]
mod tests {
    use super::{
        PART_SKIPPED, SKIPPED, as_sentence, bounded_lines, cap, fold_repeats, join_hints, skip_mark,
    };

    #[test]
    fn the_last_lines_are_kept_and_the_rest_counted() {
        let printed = "one\ntwo\nthree\nfour\n";
        assert_eq!(
            super::last_lines(printed, 2, 300),
            ["(2 earlier lines not shown)", "three", "four"]
        );
        assert_eq!(super::last_lines("only\n", 5, 300), ["only"]);
        assert_eq!(super::last_lines("abcdef", 5, 3), ["abc... (line cut)"]);
    }

    #[test]
    fn a_blocking_call_in_async_code_is_named_not_called_an_unwrap() {
        let message = "Cannot block the current thread from within a runtime. This happens \
                       because a function attempted to block the current thread while the \
                       thread is being used to drive asynchronous tasks.";
        let hint = super::panic_hint(message);
        assert!(hint.contains("blocking_send") && hint.contains("try_send"));
        assert!(!hint.contains("unwrap"));
    }

    #[test]
    fn a_hint_reads_as_a_sentence_and_leaves_code_alone() {
        assert_eq!(as_sentence("the server closed."), "The server closed.");
        assert_eq!(as_sentence("nothing came.."), "Nothing came.");
        assert_eq!(
            as_sentence("cut_short() writes nothing."),
            "cut_short() writes nothing."
        );
        assert_eq!(
            as_sentence("read_until stops there"),
            "read_until stops there"
        );
        assert_eq!(as_sentence("b\"hi\" came"), "b\"hi\" came");
        assert_eq!(as_sentence("Already fine."), "Already fine.");
        assert_eq!(join_hints("A", "cut_short() is it"), "A. cut_short() is it");
        assert_eq!(join_hints("A:", "then this"), "A: Then this");
    }

    #[test]
    fn a_skip_is_said_inside_libtests_line() {
        let whole = skip_mark(None, "this OS [refuses]\ninstead");
        assert_eq!(whole, format!("{SKIPPED}this OS  refuses  instead] "));
        let part = skip_mark(Some("the IPv6 part"), "no ::1 here");
        assert_eq!(part, format!("{PART_SKIPPED}the IPv6 part: no ::1 here] "));
        assert!(!whole.contains('\n') && !part.contains('\n'));
    }

    #[test]
    fn a_panic_gets_the_hint_for_its_kind() {
        let hint = super::panic_hint;
        assert!(hint("attempt to divide by zero").contains("division by zero"));
        assert!(hint("attempt to add with overflow").contains("overflowed"));
        assert!(hint("index out of bounds: the len is 0 but the index is 0").contains("index"));
        assert!(hint("called `Result::unwrap()` on an `Err` value: x").contains("not a panic"));
    }

    #[test]
    fn repeated_lines_fold() {
        let lines: Vec<String> = ["a", "b", "b", "b", "c"].map(String::from).to_vec();
        assert_eq!(fold_repeats(&lines), ["a", "b (x3)", "c"]);
    }

    #[test]
    fn long_lists_keep_head_and_tail() {
        let lines: Vec<String> = (0..100).map(|n| n.to_string()).collect();
        let kept = bounded_lines(&lines, 16);
        assert_eq!(kept.len(), 16);
        assert_eq!(kept[0], "0");
        assert_eq!(kept[15], "99");
    }

    #[test]
    fn a_report_is_capped() {
        let text = "x\n".repeat(1000);
        assert!(cap(text).lines().count() <= 60);
        let wide = format!("{}\n", "y".repeat(100_000));
        assert!(cap(wide).len() < 8 * 1024);
    }
}
