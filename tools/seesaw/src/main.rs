//! `cargo seesaw`: watches the current lesson and runs its checks on every
//! save, showing the first failing report whole and one line for each other
//! failing step.
//!
//!     cargo seesaw          the current lesson
//!     cargo seesaw 5        lesson 5 (5, 05, 05-echo-loop), remembered as current
//!
//! Keys: h hint, n next lesson (once green), l list, r run again, q quit.
//! Without a terminal (CI, a pipe) it runs the checks once and exits with
//! their status: 0 when every check passes, 1 when not, 2 when it could not
//! run. Option `--root DIR`: the workbook (default: this one).

mod app;
mod run;
mod screen;

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::thread;
use std::time::Instant;

use crossterm::event::{self, KeyCode, KeyEventKind, KeyModifiers};
use crossterm::style::Stylize;
use crossterm::{cursor, terminal};
use notify::{EventKind, RecursiveMode, Watcher};
use seesaw_checks::workbook::{self, find_lesson, lesson_folders};

use app::{App, Effect, Key, Outcome};
use run::{News, Run};
use screen::{Line, Look};

const USAGE: &str = "usage: cargo seesaw [LESSON] [--root DIR]

  cargo seesaw      watch the current lesson: its checks run on every save
  cargo seesaw 5    watch lesson 5 (5 or 05), and make it the current lesson

Keys: h a hint (again: the next level), n the next lesson (once every check
passes), l the list of lessons, r run again, q quit.
Without a terminal it runs the checks once and exits with their status.";

/// Never wider than this, whatever the terminal: reports read best narrow.
const MAX_WIDTH: usize = 80;

/// Everything the main loop waits for.
enum Event {
    Key(Key),
    Resized,
    Saved,
    News(News),
}

fn main() -> ExitCode {
    match start() {
        Ok(code) => code,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
    }
}

fn start() -> Result<ExitCode, String> {
    let mut root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut wanted = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--help" | "-h" => {
                println!("{USAGE}");
                return Ok(ExitCode::SUCCESS);
            }
            "--root" => root = PathBuf::from(args.next().ok_or("--root needs a folder")?),
            "--lesson" => wanted = Some(args.next().ok_or("--lesson needs a number")?),
            word if !word.starts_with('-') && wanted.is_none() => wanted = Some(word.to_string()),
            _ => return Err(format!("unknown argument {arg:?}\n{USAGE}")),
        }
    }
    let folders = lesson_folders(&root)?;
    let lesson = match wanted {
        Some(wanted) => {
            let folder = find_lesson(&folders, &wanted)
                .cloned()
                .ok_or(format!("no lesson {wanted}; see cargo seesaw, then l"))?;
            let _ = workbook::remember(&root, &folder);
            folder
        }
        None => workbook::current_lesson(&root, &folders, &mut |folder| is_done(&root, folder))
            .ok_or("this workbook has no lessons")?,
    };
    let app = App::new(folders, lesson);
    if std::io::stdin().is_terminal() && std::io::stdout().is_terminal() {
        watch(app, &root).map_err(|error| format!("the terminal failed: {error}"))?;
        Ok(ExitCode::SUCCESS)
    } else {
        Ok(once(app, &root))
    }
}

/// Runs `folder`'s checks once, to find the current lesson: the lowest
/// lesson started and not done (`seesaw_checks::workbook`).
fn is_done(root: &Path, folder: &str) -> bool {
    eprintln!("Finding your current lesson: are lesson {folder}'s checks green?");
    let mut app = App::new(vec![folder.to_string()], folder.to_string());
    run_once(&mut app, root);
    app.is_done()
}

/// Runs the current lesson's checks, waiting for the outcome.
fn run_once(app: &mut App, root: &Path) {
    let (sender, news) = mpsc::channel();
    let run = app.start_run();
    let _run = Run::start(root, &app.lesson, run, sender);
    for (id, outcome) in news.iter() {
        let finished = !matches!(outcome, Outcome::Partial(_) | Outcome::Running);
        app.news(id, outcome);
        if finished {
            return;
        }
    }
}

/// No terminal: run the checks once, print the screen, exit with their status.
fn once(mut app: App, root: &Path) -> ExitCode {
    run_once(&mut app, root);
    let mut stdout = std::io::stdout().lock();
    for (_, line) in screen::render(&app, root, MAX_WIDTH, None) {
        let _ = writeln!(stdout, "{line}");
    }
    match &app.outcome {
        _ if app.is_done() => ExitCode::SUCCESS,
        Outcome::CouldNotRun(_) => ExitCode::from(2),
        _ => ExitCode::from(1),
    }
}

/// A terminal: watch, run, answer keys, until q.
fn watch(mut app: App, root: &Path) -> std::io::Result<()> {
    let (sender, events) = mpsc::channel();
    let mut watcher = file_watcher(sender.clone())?;
    let (news_sender, news) = mpsc::channel();
    forward(news, sender.clone(), Event::News);
    read_keys(sender);
    let terminal = Terminal::enter()?;
    let mut watched = source_folder(root, &app.lesson);
    watcher
        .watch(&watched, RecursiveMode::Recursive)
        .map_err(std::io::Error::other)?;
    let mut run = start_run(&mut app, root, &news_sender);
    terminal.draw(&app, root)?;
    loop {
        match next_event(&events, &mut app) {
            Some(Event::Key(key)) => match app.key(key) {
                Effect::Quit => break,
                Effect::Run => run = restart(run, &mut app, root, &news_sender),
                Effect::Switch => {
                    let _ = watcher.unwatch(&watched);
                    watched = source_folder(root, &app.lesson);
                    watcher
                        .watch(&watched, RecursiveMode::Recursive)
                        .map_err(std::io::Error::other)?;
                    let _ = workbook::remember(root, &app.lesson);
                    run = restart(run, &mut app, root, &news_sender);
                }
                Effect::Redraw | Effect::Nothing => {}
            },
            Some(Event::Saved) => app.debounce.saved(Instant::now()),
            Some(Event::News((id, outcome))) => {
                app.news(id, outcome);
            }
            Some(Event::Resized) => {}
            None => {}
        }
        if app.debounce.fire(Instant::now()) {
            app.notice.clear();
            run = restart(run, &mut app, root, &news_sender);
        }
        terminal.draw(&app, root)?;
    }
    run.cancel();
    drop(terminal);
    Ok(())
}

/// The next event, or `None` when the debounce's quiet time is over first.
fn next_event(events: &Receiver<Event>, app: &mut App) -> Option<Event> {
    match app.debounce.wait(Instant::now()) {
        Some(wait) => match events.recv_timeout(wait) {
            Ok(event) => Some(event),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => Some(Event::Key(Key::Interrupt)),
        },
        None => Some(events.recv().unwrap_or(Event::Key(Key::Interrupt))),
    }
}

fn start_run(app: &mut App, root: &Path, news: &Sender<News>) -> Run {
    let id = app.start_run();
    Run::start(root, &app.lesson, id, news.clone())
}

fn restart(old: Run, app: &mut App, root: &Path, news: &Sender<News>) -> Run {
    old.cancel();
    start_run(app, root, news)
}

fn source_folder(root: &Path, folder: &str) -> PathBuf {
    root.join("lessons").join(folder).join("src")
}

/// Watches for saves of `.rs` files; each becomes an [`Event::Saved`].
fn file_watcher(events: Sender<Event>) -> std::io::Result<notify::RecommendedWatcher> {
    notify::recommended_watcher(move |result: notify::Result<notify::Event>| {
        let Ok(event) = result else { return };
        let changed = matches!(
            event.kind,
            EventKind::Modify(_) | EventKind::Create(_) | EventKind::Remove(_)
        );
        let rust_file = event
            .paths
            .iter()
            .any(|path| path.extension().is_some_and(|ext| ext == "rs"));
        if changed && rust_file {
            let _ = events.send(Event::Saved);
        }
    })
    .map_err(std::io::Error::other)
}

fn forward<T: Send + 'static>(from: Receiver<T>, to: Sender<Event>, wrap: fn(T) -> Event) {
    thread::spawn(move || {
        for item in from {
            if to.send(wrap(item)).is_err() {
                return;
            }
        }
    });
}

fn read_keys(events: Sender<Event>) {
    thread::spawn(move || {
        loop {
            let event = match event::read() {
                Ok(event) => event,
                Err(_) => return,
            };
            let sent = match event {
                event::Event::Key(key) if key.kind == KeyEventKind::Press => {
                    match to_key(key.code, key.modifiers) {
                        Some(key) => events.send(Event::Key(key)),
                        None => Ok(()),
                    }
                }
                event::Event::Resize(..) => events.send(Event::Resized),
                _ => Ok(()),
            };
            if sent.is_err() {
                return;
            }
        }
    });
}

fn to_key(code: KeyCode, modifiers: KeyModifiers) -> Option<Key> {
    match code {
        KeyCode::Char('c') if modifiers.contains(KeyModifiers::CONTROL) => Some(Key::Interrupt),
        KeyCode::Char(c) => Some(Key::Char(c.to_ascii_lowercase())),
        KeyCode::Enter => Some(Key::Enter),
        KeyCode::Esc => Some(Key::Escape),
        KeyCode::Backspace => Some(Key::Backspace),
        _ => None,
    }
}

/// The terminal in raw mode (keys come one at a time, unechoed) for as long
/// as this lives; dropping it gives the terminal back as it was.
struct Terminal {
    colour: bool,
}

impl Terminal {
    fn enter() -> std::io::Result<Terminal> {
        terminal::enable_raw_mode()?;
        let colour = std::env::var_os("NO_COLOR").is_none_or(|value| value.is_empty());
        Ok(Terminal { colour })
    }

    fn draw(&self, app: &App, root: &Path) -> std::io::Result<()> {
        let (columns, rows) = terminal::size().unwrap_or((80, 24));
        let width = usize::from(columns).clamp(20, MAX_WIDTH);
        let height = (rows > 0).then_some(usize::from(rows));
        let lines = screen::render(app, root, width, height);
        let mut stdout = std::io::stdout().lock();
        crossterm::queue!(
            stdout,
            terminal::Clear(terminal::ClearType::All),
            cursor::MoveTo(0, 0)
        )?;
        let text: Vec<String> = lines.iter().map(|line| self.paint(line)).collect();
        // Raw mode: a newline does not return the cursor to the line's start.
        write!(stdout, "{}", text.join("\r\n"))?;
        stdout.flush()
    }

    fn paint(&self, (look, text): &Line) -> String {
        if !self.colour {
            return text.clone();
        }
        match look {
            Look::Plain => text.clone(),
            Look::Bold => text.clone().bold().to_string(),
            Look::Good => text.clone().green().to_string(),
            Look::Bad => text.clone().red().to_string(),
        }
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        let _ = terminal::disable_raw_mode();
        println!();
    }
}
