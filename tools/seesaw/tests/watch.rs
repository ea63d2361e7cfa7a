//! `cargo seesaw` as a student meets it, on a small workbook of two lessons
//! with no dependencies (so that it builds in seconds): once without a
//! terminal, and under a pseudo-terminal (util-linux's `script`), driven by
//! keys and saves: report, h, a compile error, green, n, l, q.

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// Long enough for cargo to build a small crate on a loaded 2-core machine;
/// every wait ends as soon as what it waits for shows up.
const DEADLINE: Duration = Duration::from_secs(120);

const CHECKS: &str = r#"
use std::io::Write;

#[test]
fn step_1_answer_is_42() {
    let got = lesson::answer();
    if got != 42 {
        let report = format!("\n\nstep 1: answer returns 42\n  got       {got}\n\n");
        let _ = std::io::stdout().write_all(report.as_bytes());
        panic!("step 1 failed");
    }
}

#[test]
fn step_2_nothing_to_do() {}
"#;

const HINTS: &str = "# Hints\n## step_1_answer_is_42\n### 1\nThe idea: the answer to \
    everything.\n### 2\nA literal u32.\n### 3\n`____`\n";

const WRONG: &str = "pub fn answer() -> u32 {\n    0\n}\n";
const RIGHT: &str = "pub fn answer() -> u32 {\n    42\n}\n";
const TWO_ERRORS: &str = "pub fn answer() -> u32 {\n    let a: u32 = nope;\n    \
    let b: u32 = nada;\n    a + b\n}\n";

/// A workbook of two lessons, `01-one` and `02-two`, each failing step 1.
fn workbook(name: &str) -> PathBuf {
    let tree = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("seesaw-watch")
        .join(name);
    let _ = fs::remove_dir_all(&tree);
    write(
        &tree.join("Cargo.toml"),
        "[workspace]\nresolver = \"3\"\nmembers = [\"lessons/*\"]\n",
    );
    for (folder, package) in [("01-one", "lesson-01-one"), ("02-two", "lesson-02-two")] {
        let lesson = tree.join("lessons").join(folder);
        write(
            &lesson.join("Cargo.toml"),
            &format!(
                "[package]\nname = \"{package}\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\n\
                 [lib]\nname = \"lesson\"\ntest = false\ndoctest = false\n"
            ),
        );
        write(&lesson.join("src/lib.rs"), WRONG);
        write(&lesson.join("tests/checks.rs"), CHECKS);
        write(&lesson.join("hints.md"), HINTS);
    }
    tree
}

fn write(path: &Path, text: &str) {
    fs::create_dir_all(path.parent().expect("a file is in a folder")).expect("create a folder");
    fs::write(path, text).expect("write a file");
}

fn seesaw(tree: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_seesaw"));
    command
        .arg("--root")
        .arg(tree)
        .env("CARGO_TARGET_DIR", tree.join("target"))
        .env("NO_COLOR", "1");
    command
}

#[test]
fn without_a_terminal_it_runs_once_and_exits_with_the_checks_status() {
    let tree = workbook("once");
    let output = seesaw(&tree)
        .stdin(Stdio::null())
        .output()
        .expect("run seesaw");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("Seesaw: lesson 01-one"), "{stdout}");
    assert!(stdout.contains("step 1: answer returns 42"), "{stdout}");
    assert!(stdout.contains("1/2 checks pass"), "{stdout}");
    assert!(
        !stdout.contains("q quit"),
        "no keys without a terminal: {stdout}"
    );

    write(&tree.join("lessons/01-one/src/lib.rs"), RIGHT);
    let output = seesaw(&tree)
        .stdin(Stdio::null())
        .output()
        .expect("run seesaw");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("2/2 checks pass"), "{stdout}");
}

#[test]
fn under_a_terminal_it_reruns_on_save_and_answers_its_keys() {
    let tree = workbook("pty");
    let lib = tree.join("lessons/01-one/src/lib.rs");
    let mut screen = Terminal::start(seesaw(&tree));

    screen.expect("Seesaw: lesson 01-one");
    screen.expect("step 1: answer returns 42");
    screen.expect("1/2 checks pass");
    screen.press("h");
    screen.expect("Hint, level 1 of 3:");
    screen.expect("The idea: the answer to everything.");

    write(&lib, TWO_ERRORS);
    screen.expect("Your code does not compile. The compiler's first error:");
    screen.expect("cannot find value `nope`");
    screen.expect("(1 more error: fix this one first");

    write(&lib, RIGHT);
    screen.expect("Every check passes: lesson 01-one is done.");
    screen.press("n");
    screen.expect("The reference answer: solutions/01-one/src/lib.rs");
    screen.expect("Compare: diff lessons/01-one/src solutions/01-one/src");
    screen.expect("Seesaw: lesson 02-two");
    let remembered = fs::read_to_string(tree.join(".seesaw-lesson")).expect("remembered");
    assert_eq!(remembered.trim(), "02-two");

    screen.press("l");
    screen.expect("The lessons:");
    screen.expect("01  one            done");
    screen.press("1\r");
    screen.expect("Seesaw: lesson 01-one");
    screen.expect("2/2 checks pass");
    screen.press("q");
    let status = screen.wait();
    assert!(status.success(), "{status:?}");

    let output = screen.output();
    assert!(
        !output.contains("nada"),
        "only the first compile error is shown:\n{output}"
    );
    assert!(
        !output.contains("\x1b[1m") && !output.contains("\x1b[38"),
        "NO_COLOR: no colour"
    );
    for line in visible_lines(&output) {
        assert!(
            line.chars().count() <= 80,
            "wider than 80 columns: {line:?}"
        );
    }
}

/// What a terminal shows, line by line, without its control sequences.
fn visible_lines(output: &str) -> Vec<String> {
    let mut text = String::new();
    let mut chars = output.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            // ESC [ parameters... final byte (a letter or ~).
            if chars.peek() == Some(&'[') {
                chars.next();
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() || c == '~' {
                        break;
                    }
                }
            }
            text.push('\n');
        } else if c != '\r' {
            text.push(c);
        }
    }
    text.lines().map(str::to_string).collect()
}

/// A program under a pseudo-terminal of 80 columns (util-linux's `script`):
/// keys go to its input, and everything it writes is kept.
struct Terminal {
    /// `None` once it has ended.
    child: Option<Child>,
    keys: ChildStdin,
    output: Arc<(Mutex<String>, Condvar)>,
    /// How far `expect` has read.
    seen: usize,
}

impl Terminal {
    fn start(program: Command) -> Terminal {
        let line = format!(
            "stty cols 80 rows 50; exec {}",
            shell_words(&program).join(" ")
        );
        let mut command = Command::new("script");
        command
            .args([
                "--quiet",
                "--return",
                "--flush",
                "--command",
                &line,
                "/dev/null",
            ])
            .envs(program.get_envs().filter_map(|(k, v)| Some((k, v?))))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = command
            .spawn()
            .expect("run `script` (util-linux); bash .ci/install-tools installs it");
        let keys = child.stdin.take().expect("stdin is piped");
        let mut stdout = child.stdout.take().expect("stdout is piped");
        let output = Arc::new((Mutex::new(String::new()), Condvar::new()));
        let shared = output.clone();
        thread::spawn(move || {
            let mut buffer = [0; 4096];
            while let Ok(count @ 1..) = stdout.read(&mut buffer) {
                let (text, changed) = &*shared;
                text.lock()
                    .expect("output lock")
                    .push_str(&String::from_utf8_lossy(&buffer[..count]));
                changed.notify_all();
            }
        });
        Terminal {
            child: Some(child),
            keys,
            output,
            seen: 0,
        }
    }

    /// Waits until `text` shows up after what was expected last.
    fn expect(&mut self, text: &str) {
        let until = Instant::now() + DEADLINE;
        let (output, changed) = &*self.output;
        let mut output = output.lock().expect("output lock");
        loop {
            if let Some(at) = output[self.seen..].find(text) {
                self.seen += at + text.len();
                return;
            }
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                let shown = output[self.seen..].to_string();
                drop(output);
                panic!("{text:?} did not show within {DEADLINE:?}; the screen since:\n{shown}");
            }
            output = changed.wait_timeout(output, left).expect("output lock").0;
        }
    }

    fn press(&mut self, keys: &str) {
        self.keys.write_all(keys.as_bytes()).expect("send keys");
        self.keys.flush().expect("send keys");
    }

    /// Waits for `script` (and so the program) to end.
    fn wait(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("the program runs");
        let pid = child.id();
        let (sender, ended) = std::sync::mpsc::channel();
        thread::spawn(move || {
            let _ = sender.send(child.wait().expect("wait for script"));
        });
        ended.recv_timeout(DEADLINE).unwrap_or_else(|_| {
            let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
            panic!("the program did not end within {DEADLINE:?}");
        })
    }

    fn output(&self) -> String {
        self.output.0.lock().expect("output lock").clone()
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The program and its arguments, quoted for `sh`.
fn shell_words(command: &Command) -> Vec<String> {
    std::iter::once(command.get_program())
        .chain(command.get_args())
        .map(|word| format!("'{}'", word.to_string_lossy().replace('\'', "'\\''")))
        .collect()
}
