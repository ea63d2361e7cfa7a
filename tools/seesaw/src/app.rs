//! What `cargo seesaw` knows and how it answers a key, a save or a run's
//! news: plain values, no terminal and no processes, so the unit tests below
//! can drive it.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use seesaw_checks::hints::LEVELS;
use seesaw_checks::workbook::{State, Summary, find_lesson};

/// How long the files must stay quiet after a save before the checks run:
/// an editor's save is often a burst of writes (a temporary file, a rename,
/// a format on save), and one run is enough for the burst.
pub const QUIET: Duration = Duration::from_millis(80);

/// One run per burst of saves.
#[derive(Debug)]
pub struct Debounce {
    quiet: Duration,
    due: Option<Instant>,
}

impl Debounce {
    pub fn new(quiet: Duration) -> Debounce {
        Debounce { quiet, due: None }
    }

    /// A save at `now` puts the run off until the files have been quiet.
    pub fn saved(&mut self, now: Instant) {
        self.due = Some(now + self.quiet);
    }

    /// True once, when the burst is over and the run should start.
    pub fn fire(&mut self, now: Instant) -> bool {
        match self.due {
            Some(due) if due <= now => {
                self.due = None;
                true
            }
            _ => false,
        }
    }

    /// How long to wait for the next event before the run is due.
    pub fn wait(&self, now: Instant) -> Option<Duration> {
        self.due.map(|due| due.saturating_duration_since(now))
    }
}

/// How the current run stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Building, or the checks are running and none has failed yet.
    Running,
    /// The checks are still running; this is what they said so far, a
    /// failure among it.
    Partial(Summary),
    Checked(Summary),
    /// The compiler's first error, and how many errors there were.
    DoesNotCompile {
        first_error: Vec<String>,
        errors: usize,
    },
    /// Cargo or the checks could not be run at all.
    CouldNotRun(String),
}

/// What the screen shows under the header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mode {
    Report,
    /// The list of lessons; the digits typed so far.
    List(String),
}

/// A key, as far as `cargo seesaw` cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Key {
    Char(char),
    Enter,
    Escape,
    Backspace,
    Interrupt,
}

/// What the main loop must do after the state changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect {
    Nothing,
    Redraw,
    /// Run the current lesson's checks (again), cancelling a run in progress.
    Run,
    /// The current lesson changed: remember it, watch its files, run it.
    Switch,
    Quit,
}

#[derive(Debug)]
pub struct App {
    pub folders: Vec<String>,
    pub lesson: String,
    /// Counts the runs, so news from a cancelled run is ignored.
    pub run: u64,
    pub outcome: Outcome,
    /// The hint levels shown (0: none yet), and the check they are for.
    pub hint_level: usize,
    hint_step: Option<String>,
    pub mode: Mode,
    /// A line or two to show above the report until the next key.
    pub notice: Vec<String>,
    /// What the last finished run of each lesson came to, in this session.
    pub known: HashMap<String, State>,
    pub debounce: Debounce,
}

impl App {
    pub fn new(folders: Vec<String>, lesson: String) -> App {
        App {
            folders,
            lesson,
            run: 0,
            outcome: Outcome::Running,
            hint_level: 0,
            hint_step: None,
            mode: Mode::Report,
            notice: Vec::new(),
            known: HashMap::new(),
            debounce: Debounce::new(QUIET),
        }
    }

    /// A new run starts: returns its number.
    pub fn start_run(&mut self) -> u64 {
        self.run += 1;
        self.outcome = Outcome::Running;
        self.run
    }

    /// News from run `run`; news from an older run is dropped.
    pub fn news(&mut self, run: u64, outcome: Outcome) -> Effect {
        if run != self.run {
            return Effect::Nothing;
        }
        if let Outcome::Checked(summary) = &outcome {
            self.known.insert(self.lesson.clone(), summary.state);
        }
        self.outcome = outcome;
        // A hint belongs to one check: once another check fails first, the
        // ladder starts again.
        let first_failure = self.first_failure().map(str::to_string);
        if first_failure.is_some() && first_failure != self.hint_step {
            self.hint_level = 0;
            self.hint_step = first_failure;
        }
        Effect::Redraw
    }

    /// The summary of the current run, finished or not.
    pub fn summary(&self) -> Option<&Summary> {
        match &self.outcome {
            Outcome::Partial(summary) | Outcome::Checked(summary) => Some(summary),
            _ => None,
        }
    }

    /// The name of the first failing check, once known.
    pub fn first_failure(&self) -> Option<&str> {
        self.summary()?
            .failures
            .first()
            .map(|failure| failure.name.as_str())
    }

    pub fn is_done(&self) -> bool {
        matches!(&self.outcome, Outcome::Checked(summary) if summary.state == State::Done)
    }

    pub fn key(&mut self, key: Key) -> Effect {
        if key == Key::Interrupt {
            return Effect::Quit;
        }
        self.notice.clear();
        match self.mode.clone() {
            Mode::List(typed) => self.list_key(key, typed),
            Mode::Report => self.report_key(key),
        }
    }

    fn report_key(&mut self, key: Key) -> Effect {
        match key {
            Key::Char('q') => Effect::Quit,
            Key::Char('r') => Effect::Run,
            Key::Char('h') => self.next_hint(),
            Key::Char('n') => self.next_lesson(),
            Key::Char('l') => {
                self.mode = Mode::List(String::new());
                Effect::Redraw
            }
            _ => Effect::Redraw,
        }
    }

    fn next_hint(&mut self) -> Effect {
        if let Some(step) = self.first_failure() {
            self.hint_step = Some(step.to_string());
            self.hint_level = (self.hint_level + 1).min(LEVELS);
        } else if self.is_done() {
            self.notice = vec!["Every check passes: no hint needed. n: the next lesson.".into()];
        } else {
            self.notice = vec!["A hint comes for a failing check: wait for one.".into()];
        }
        Effect::Redraw
    }

    fn next_lesson(&mut self) -> Effect {
        if !self.is_done() {
            self.notice = vec![format!(
                "Lesson {} is not done yet: n moves on once every check passes \
                 (l lists every lesson, to go to any).",
                self.lesson
            )];
            return Effect::Redraw;
        }
        let position = self.folders.iter().position(|f| *f == self.lesson);
        let Some(next) = position.and_then(|at| self.folders.get(at + 1)).cloned() else {
            self.notice =
                vec!["That was the last lesson: the workbook is done. Well played.".into()];
            return Effect::Redraw;
        };
        let done = std::mem::replace(&mut self.lesson, next);
        self.notice = vec![
            format!("Lesson {done} is done. The reference answer: solutions/{done}/src/lib.rs"),
            format!("Compare: diff lessons/{done}/src solutions/{done}/src"),
        ];
        self.hint_level = 0;
        Effect::Switch
    }

    fn list_key(&mut self, key: Key, mut typed: String) -> Effect {
        match key {
            Key::Char('q') => return Effect::Quit,
            Key::Char(digit) if digit.is_ascii_digit() && typed.len() < 2 => typed.push(digit),
            Key::Backspace => {
                typed.pop();
            }
            Key::Escape | Key::Char('l') => {
                self.mode = Mode::Report;
                return Effect::Redraw;
            }
            Key::Enter => return self.choose(&typed),
            _ => {}
        }
        self.mode = Mode::List(typed);
        Effect::Redraw
    }

    fn choose(&mut self, typed: &str) -> Effect {
        let Some(folder) = find_lesson(&self.folders, typed).cloned() else {
            self.notice = vec![format!("There is no lesson {typed:?}: type its number.")];
            self.mode = Mode::List(String::new());
            return Effect::Redraw;
        };
        self.mode = Mode::Report;
        if folder == self.lesson {
            return Effect::Redraw;
        }
        self.lesson = folder;
        self.hint_level = 0;
        Effect::Switch
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use seesaw_checks::workbook::Summary;

    fn app() -> App {
        let folders = ["01-listen", "02-accept", "03-dial"]
            .map(String::from)
            .to_vec();
        App::new(folders, "01-listen".to_string())
    }

    fn passing() -> Outcome {
        let output = "running 1 tests\ntest step_1_a ... ok\n";
        Outcome::Checked(Summary::from_output(output, false))
    }

    fn failing(name: &str) -> Outcome {
        let output =
            format!("running 2 tests\ntest step_1_a ... ok\ntest {name} ... \nstep 2: b\nFAILED\n");
        Outcome::Checked(Summary::from_output(&output, false))
    }

    #[test]
    fn a_burst_of_saves_runs_once_after_the_quiet_time() {
        let start = Instant::now();
        let mut debounce = Debounce::new(Duration::from_millis(80));
        assert_eq!(debounce.wait(start), None);
        debounce.saved(start);
        debounce.saved(start + Duration::from_millis(50));
        assert!(!debounce.fire(start + Duration::from_millis(100)));
        assert_eq!(
            debounce.wait(start + Duration::from_millis(100)),
            Some(Duration::from_millis(30))
        );
        assert!(debounce.fire(start + Duration::from_millis(130)));
        assert!(
            !debounce.fire(start + Duration::from_millis(200)),
            "once per burst"
        );
        assert_eq!(debounce.wait(start + Duration::from_millis(200)), None);
    }

    #[test]
    fn news_of_a_cancelled_run_is_dropped() {
        let mut app = app();
        let old = app.start_run();
        let new = app.start_run();
        assert_eq!(app.news(old, passing()), Effect::Nothing);
        assert_eq!(app.outcome, Outcome::Running);
        assert_eq!(app.news(new, failing("step_2_b")), Effect::Redraw);
        assert_eq!(app.first_failure(), Some("step_2_b"));
    }

    #[test]
    fn n_moves_on_only_once_the_lesson_is_green_and_names_the_reference() {
        let mut app = app();
        let run = app.start_run();
        app.news(run, failing("step_2_b"));
        assert_eq!(app.key(Key::Char('n')), Effect::Redraw);
        assert_eq!(app.lesson, "01-listen");
        assert!(app.notice[0].contains("not done yet"), "{:?}", app.notice);

        let run = app.start_run();
        app.news(run, passing());
        assert_eq!(app.key(Key::Char('n')), Effect::Switch);
        assert_eq!(app.lesson, "02-accept");
        assert_eq!(
            app.notice,
            [
                "Lesson 01-listen is done. The reference answer: solutions/01-listen/src/lib.rs",
                "Compare: diff lessons/01-listen/src solutions/01-listen/src"
            ]
        );
        assert_eq!(app.known.get("01-listen"), Some(&State::Done));
    }

    #[test]
    fn n_after_the_last_lesson_stays() {
        let mut app = app();
        app.lesson = "03-dial".into();
        let run = app.start_run();
        app.news(run, passing());
        assert_eq!(app.key(Key::Char('n')), Effect::Redraw);
        assert_eq!(app.lesson, "03-dial");
        assert!(app.notice[0].contains("last lesson"));
    }

    #[test]
    fn the_list_chooses_a_lesson_by_its_number() {
        let mut app = app();
        assert_eq!(app.key(Key::Char('l')), Effect::Redraw);
        assert_eq!(app.mode, Mode::List(String::new()));
        app.key(Key::Char('0'));
        app.key(Key::Char('3'));
        assert_eq!(app.mode, Mode::List("03".into()));
        assert_eq!(app.key(Key::Enter), Effect::Switch);
        assert_eq!((app.lesson.as_str(), &app.mode), ("03-dial", &Mode::Report));

        app.key(Key::Char('l'));
        app.key(Key::Char('7'));
        assert_eq!(app.key(Key::Enter), Effect::Redraw);
        assert!(
            app.notice[0].contains("no lesson \"7\""),
            "{:?}",
            app.notice
        );
        assert_eq!(app.lesson, "03-dial");
        assert_eq!(app.key(Key::Escape), Effect::Redraw);
        assert_eq!(app.mode, Mode::Report);
    }

    #[test]
    fn h_climbs_the_ladder_of_the_first_failing_check_and_starts_again_for_another() {
        let mut app = app();
        app.key(Key::Char('h'));
        assert_eq!(app.hint_level, 0, "no failing check yet");
        let run = app.start_run();
        app.news(run, failing("step_2_b"));
        for level in [1, 2, 3, 3] {
            app.key(Key::Char('h'));
            assert_eq!(app.hint_level, level);
        }
        let run = app.start_run();
        app.news(run, failing("step_2_b"));
        assert_eq!(app.hint_level, 3, "the same check: the hint stays");
        let run = app.start_run();
        app.news(run, failing("step_2_c"));
        assert_eq!(app.hint_level, 0, "another check: the ladder starts again");
    }

    #[test]
    fn keys_that_run_and_quit() {
        let mut app = app();
        assert_eq!(app.key(Key::Char('r')), Effect::Run);
        assert_eq!(app.key(Key::Char('q')), Effect::Quit);
        app.key(Key::Char('l'));
        assert_eq!(app.key(Key::Interrupt), Effect::Quit);
    }
}
