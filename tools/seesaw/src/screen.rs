//! What `cargo seesaw` shows: plain lines of text, at most `width` columns
//! wide, readable without colour. Colour, when wanted, is added by the caller
//! to whole lines.

use std::path::Path;

use seesaw_checks::hints::{LEVELS, levels_for};
use seesaw_checks::workbook::{State, Summary, is_started, step_title};

use crate::app::{App, Mode, Outcome};

/// How a line should look, for the terminal to paint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Look {
    Plain,
    Bold,
    Good,
    Bad,
}

pub type Line = (Look, String);

/// The whole screen for `app`, at most `width` columns and, when `height`
/// is given (a terminal), at most that many lines (the first report is cut
/// to fit), with the keys to press.
pub fn render(app: &App, root: &Path, width: usize, height: Option<usize>) -> Vec<Line> {
    let mut top = header(app, width);
    for line in &app.notice {
        top.push((Look::Bold, line.clone()));
    }
    if !app.notice.is_empty() {
        top.push((Look::Plain, String::new()));
    }
    let bottom = footer(app, height.is_some());
    let mut body = match &app.mode {
        Mode::List(typed) => list(app, root, typed),
        Mode::Report => report(app, root, width),
    };
    if let Some(height) = height {
        let room = height.saturating_sub(top.len() + bottom.len() + 1).max(5);
        cut_to_fit(&mut body, room, &app.lesson);
    }
    top.into_iter()
        .chain(body)
        .chain(bottom)
        .flat_map(|(look, text)| wrap(&text, width).into_iter().map(move |line| (look, line)))
        .collect()
}

fn header(app: &App, width: usize) -> Vec<Line> {
    let title = format!("Seesaw: lesson {}", app.lesson);
    let run = format!("run {}", app.run);
    let gap = width.saturating_sub(title.len() + run.len()).max(1);
    vec![
        (Look::Bold, format!("{title}{}{run}", " ".repeat(gap))),
        (Look::Plain, String::new()),
    ]
}

fn footer(app: &App, keys: bool) -> Vec<Line> {
    let mut lines = vec![
        (Look::Plain, String::new()),
        (Look::Plain, progress_line(app)),
    ];
    if keys {
        let keys = match app.mode {
            Mode::List(_) => "type a lesson's number and Enter; Esc: back; q: quit",
            Mode::Report => "h hint   n next lesson   l lessons   r run again   q quit",
        };
        lines.push((Look::Plain, keys.to_string()));
    }
    lines
}

/// `3/8 checks pass  [#########...............]`, or what the run is doing.
fn progress_line(app: &App) -> String {
    match &app.outcome {
        Outcome::Running => "building and running the checks...".to_string(),
        Outcome::Partial(summary) => format!("{}  (still running)", counts(summary)),
        Outcome::Checked(summary) => {
            let width = 24;
            let filled = summary.passed * width / summary.total.max(1);
            format!(
                "{}  [{}{}]",
                counts(summary),
                "#".repeat(filled),
                ".".repeat(width - filled)
            )
        }
        Outcome::DoesNotCompile { .. } => "does not compile".to_string(),
        Outcome::CouldNotRun(_) => "could not run the checks".to_string(),
    }
}

fn counts(summary: &Summary) -> String {
    let not_run = match summary.not_run {
        0 => String::new(),
        count => format!(", {count} not run"),
    };
    let skipped = match summary.skipped {
        0 => String::new(),
        count => format!(", {count} skipped here"),
    };
    format!(
        "{}/{} checks pass{not_run}{skipped}",
        summary.passed, summary.total
    )
}

fn report(app: &App, root: &Path, width: usize) -> Vec<Line> {
    let mut lines = match &app.outcome {
        Outcome::Running => vec![(Look::Plain, format!("Checking lesson {}...", app.lesson))],
        Outcome::Partial(summary) | Outcome::Checked(summary) => checked(app, summary, width),
        Outcome::DoesNotCompile {
            first_error,
            errors,
        } => does_not_compile(first_error, *errors),
        Outcome::CouldNotRun(message) => message
            .lines()
            .map(|line| (Look::Bad, line.to_string()))
            .collect(),
    };
    lines.extend(hint(app, root));
    lines
}

fn checked(app: &App, summary: &Summary, width: usize) -> Vec<Line> {
    if summary.state == State::Done && matches!(app.outcome, Outcome::Checked(_)) {
        return vec![
            (
                Look::Good,
                format!("Every check passes: lesson {} is done.", app.lesson),
            ),
            (
                Look::Plain,
                "Run its program in two terminals and watch the seesaw;".to_string(),
            ),
            (Look::Plain, "then n: the next lesson.".to_string()),
        ];
    }
    let mut lines = Vec::new();
    let mut failures = summary.failures.iter();
    if let Some(first) = failures.next() {
        let report = first
            .report
            .iter()
            .skip_while(|line| line.trim().is_empty())
            .map(|line| line.trim_end());
        lines.extend(report.map(|line| (Look::Plain, line.to_string())));
        while lines.last().is_some_and(|(_, line)| line.is_empty()) {
            lines.pop();
        }
    }
    let others: Vec<&_> = failures.collect();
    if !others.is_empty() {
        lines.push((Look::Plain, String::new()));
        lines.push((Look::Bold, "Also failing:".to_string()));
        for failure in others {
            let title = format!("  {}", step_title(failure));
            lines.push((Look::Plain, cut(&title, width)));
        }
    }
    if let Some(name) = &summary.still_running {
        lines.push((
            Look::Bad,
            format!("{name} was still running after a minute: something blocks."),
        ));
    }
    if summary.stopped_after_hang && summary.not_run > 0 {
        lines.push((
            Look::Plain,
            format!(
                "{} checks not run: the checks stop after a step that hung.",
                summary.not_run
            ),
        ));
    }
    lines
}

fn does_not_compile(first_error: &[String], errors: usize) -> Vec<Line> {
    let mut lines = vec![
        (
            Look::Bad,
            "Your code does not compile. The compiler's first error:".to_string(),
        ),
        (Look::Plain, String::new()),
    ];
    lines.extend(first_error.iter().map(|line| (Look::Plain, line.clone())));
    if errors > 1 {
        lines.push((Look::Plain, String::new()));
        lines.push((
            Look::Plain,
            format!(
                "({} more error{}: fix this one first, they often follow from it.)",
                errors - 1,
                if errors == 2 { "" } else { "s" }
            ),
        ));
    }
    lines
}

/// The hint levels asked for, for the first failing check.
fn hint(app: &App, root: &Path) -> Vec<Line> {
    let Some(step) = app.first_failure().filter(|_| app.hint_level > 0) else {
        return Vec::new();
    };
    let file = root.join("lessons").join(&app.lesson).join("hints.md");
    let levels = levels_for(&std::fs::read_to_string(file).unwrap_or_default(), step);
    let mut lines = vec![(Look::Plain, String::new())];
    if levels.is_empty() {
        lines.push((
            Look::Bold,
            "No hint is written for this check yet; the chapter explains it.".to_string(),
        ));
        return lines;
    }
    let shown = app.hint_level.min(levels.len());
    let level = &levels[shown - 1];
    lines.push((Look::Bold, format!("Hint, level {shown} of {LEVELS}:")));
    lines.extend(level.lines().map(|line| (Look::Plain, format!("  {line}"))));
    lines.push((
        Look::Plain,
        if shown < LEVELS {
            "h again: the next level.".to_string()
        } else {
            "That is the last level; the answer is folded away in the chapter.".to_string()
        },
    ));
    lines
}

fn list(app: &App, root: &Path, typed: &str) -> Vec<Line> {
    let mut lines = vec![(Look::Bold, "The lessons:".to_string())];
    for folder in &app.folders {
        let state = match app.known.get(folder) {
            Some(State::Done) => "done",
            Some(State::InProgress) => "in progress",
            Some(State::NotStarted) => "not started",
            Some(State::TimedOut) => "timed out",
            Some(State::DoesNotCompile) => "does not compile",
            None if is_started(root, folder) => "started",
            None => "not started",
        };
        let mark = if *folder == app.lesson { ">" } else { " " };
        let (number, name) = folder.split_once('-').unwrap_or((folder, ""));
        lines.push((Look::Plain, format!("{mark} {number}  {name:<14} {state}")));
    }
    lines.push((Look::Plain, String::new()));
    lines.push((Look::Bold, format!("lesson: {typed}_")));
    lines
}

/// The line, cut to `width` columns with `...` at the end if it is longer.
fn cut(line: &str, width: usize) -> String {
    if line.chars().count() <= width {
        return line.to_string();
    }
    let kept: String = line.chars().take(width.saturating_sub(3)).collect();
    format!("{}...", kept.trim_end())
}

/// Cuts `lines` to `room` lines, saying where to see them all.
fn cut_to_fit(lines: &mut Vec<Line>, room: usize, lesson: &str) {
    if lines.len() <= room {
        return;
    }
    let cut = lines.len() - (room - 1);
    lines.truncate(room - 1);
    lines.push((
        Look::Plain,
        format!("({cut} more lines: cargo test -p lesson-{lesson} shows them all)"),
    ));
}

/// Splits a line longer than `width` at spaces; the lines it continues on
/// are indented like the text after a report's label (`  got       `).
pub fn wrap(line: &str, width: usize) -> Vec<String> {
    if line.chars().count() <= width {
        return vec![line.to_string()];
    }
    let indent = continuation_indent(line).min(width / 2);
    let mut lines = Vec::new();
    let mut rest: &str = line;
    let mut first = true;
    loop {
        let room = if first { width } else { width - indent };
        if rest.chars().count() <= room {
            lines.push(padded(rest, indent, first));
            return lines;
        }
        let limit = rest
            .char_indices()
            .nth(room)
            .map_or(rest.len(), |(at, _)| at);
        let at = match rest[..limit].rfind(' ') {
            Some(at) if at > 0 && !rest[..at].trim().is_empty() => at,
            _ => limit,
        };
        lines.push(padded(&rest[..at], indent, first));
        rest = rest[at..].trim_start();
        first = false;
    }
}

fn padded(text: &str, indent: usize, first: bool) -> String {
    if first {
        text.to_string()
    } else {
        format!("{}{text}", " ".repeat(indent))
    }
}

/// Where the text of a line begins after its label: in `  got       the
/// error`, where `the` begins; else two more than the line's own indent.
fn continuation_indent(line: &str) -> usize {
    let own = line.len() - line.trim_start().len();
    let after_own = &line[own..];
    if let Some(label_end) = after_own.find("  ") {
        let label = &after_own[..label_end];
        let text = after_own[label_end..].trim_start();
        if !label.is_empty() && label.len() <= 10 {
            return line.len() - text.len();
        }
    }
    own + 2
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_report_line_wraps_under_its_text() {
        let line = "  got       the error \"could not connect: Connection refused (os error \
                    111)\" (an io::Error of kind ConnectionRefused inside)";
        let lines = wrap(line, 40);
        assert!(lines.iter().all(|l| l.chars().count() <= 40), "{lines:#?}");
        assert!(lines[1].starts_with("            "), "{lines:#?}");
        assert_eq!(
            lines.iter().map(|l| l.trim()).collect::<Vec<_>>().join(" "),
            line.trim()
        );
    }

    #[test]
    fn a_word_longer_than_the_line_is_cut() {
        let lines = wrap(&"x".repeat(100), 80);
        assert_eq!(lines.len(), 2);
        assert!(lines.iter().all(|l| l.chars().count() <= 80));
    }

    #[test]
    fn a_short_line_stays() {
        assert_eq!(wrap("step 1: listen", 80), ["step 1: listen"]);
    }
}
