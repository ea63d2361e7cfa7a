//! Checks of `cargo progress` (src/bin/progress.rs) on a fixture: a copy of
//! the workbook where lessons 01 and 02 hold their reference answers, lesson
//! 03 a wrong answer that passes some checks, and 04 to 06 their stubs.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, OnceLock};

use assert_cmd::Command;
use predicates::prelude::*;
use seesaw_checks::workbook::{REMEMBERED, STUB_FINGERPRINTS, fingerprint};

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Where the fixture and its builds live: in the target folder of this build
/// (`CARGO_TARGET_TMPDIR`), so two builds with their own target folders
/// never share, or delete, each other's fixture.
fn fixture_folder() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("progress-fixture")
}

/// Builds the fixture once for all the checks in this file.
fn fixture() -> &'static Path {
    static FIXTURE: OnceLock<PathBuf> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let tree = fixture_folder().join("tree");
        let _ = fs::remove_dir_all(&tree);
        for part in [
            "Cargo.toml",
            "Cargo.lock",
            ".cargo",
            "lessons",
            "tests",
            "tools",
        ] {
            copy(&repository().join(part), &tree.join(part));
        }
        for lesson in ["01-listen", "02-accept"] {
            let answer = repository().join(format!("solutions/{lesson}/src/lib.rs"));
            fs::copy(answer, tree.join(format!("lessons/{lesson}/src/lib.rs")))
                .expect("copy an answer");
        }
        // Lesson 03: connects, but its errors do not name the address.
        let answer = fs::read_to_string(repository().join("solutions/03-dial/src/lib.rs"))
            .expect("read an answer");
        let wrong = answer.replace(
            ".with_context(|| format!(\"could not connect to {addr}\"))",
            ".context(\"could not connect\")",
        );
        assert_ne!(answer, wrong, "the fixture's wrong answer applies");
        fs::write(tree.join("lessons/03-dial/src/lib.rs"), wrong).expect("write the wrong answer");
        tree
    })
}

fn copy(from: &Path, to: &Path) {
    if from.is_dir() {
        fs::create_dir_all(to).expect("create a folder");
        for entry in fs::read_dir(from).expect("read a folder") {
            let entry = entry.expect("a readable entry");
            if entry.file_name() != "target" {
                copy(&entry.path(), &to.join(entry.file_name()));
            }
        }
    } else {
        fs::create_dir_all(to.parent().expect("a file is in a folder")).expect("create a folder");
        fs::copy(from, to).expect("copy a file");
    }
}

fn progress(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_progress"));
    command
        .arg("--root")
        .arg(fixture())
        .args(args)
        .env("CARGO_TARGET_DIR", fixture_folder().join("target"))
        .timeout(std::time::Duration::from_secs(600));
    command
}

/// The row of lesson `number` in the output, squeezed: `03 dial 6/7 checks in progress`.
fn row(stdout: &str, number: &str) -> String {
    let line = stdout
        .lines()
        .find(|line| line.trim_start().starts_with(&format!("{number} ")))
        .unwrap_or_else(|| panic!("no row for lesson {number} in:\n{stdout}"));
    line.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn stdout_of(assert: &assert_cmd::assert::Assert) -> String {
    String::from_utf8_lossy(&assert.get_output().stdout).into_owned()
}

/// How many checks lesson `folder` has: its `fn step_...` functions.
fn checks_in(folder: &str) -> usize {
    let path = repository().join(format!("lessons/{folder}/tests/checks.rs"));
    fs::read_to_string(path)
        .expect("read a lesson's checks")
        .lines()
        .filter(|line| line.starts_with("fn step_"))
        .count()
}

/// The lesson folders, like `01-listen`, in order.
fn lessons() -> Vec<String> {
    let mut folders: Vec<String> = fs::read_dir(repository().join("lessons"))
        .expect("read lessons/")
        .map(|entry| {
            entry
                .expect("an entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    folders.sort();
    folders
}

#[test]
fn the_overview_shows_each_lesson_and_the_next_step() {
    let _current = nothing_remembered();
    let assert = progress(&[]).assert().code(1);
    let stdout = stdout_of(&assert);
    for (number, name) in [("01", "listen"), ("02", "accept")] {
        let checks = checks_in(&format!("{number}-{name}"));
        assert_eq!(
            row(&stdout, number),
            format!("{number} {name} {checks}/{checks} checks done")
        );
    }
    let dial = row(&stdout, "03");
    assert!(dial.starts_with("03 dial "), "{stdout}");
    assert!(dial.ends_with(" checks in progress"), "{stdout}");
    for folder in lessons().iter().skip(3) {
        let checks = checks_in(folder);
        assert!(
            row(&stdout, &folder[..2]).ends_with(&format!("/{checks} checks not started")),
            "{folder}: {stdout}"
        );
    }
    assert
        .stdout(predicate::str::contains(format!(
            "2 of {} lessons done",
            lessons().len()
        )))
        .stdout(predicate::str::contains("Next: lesson 03-dial"))
        .stdout(predicate::str::contains("first failing check: step_"))
        .stdout(predicate::str::contains(
            "refused_is_an_error_that_names_the_address",
        ))
        .stdout(predicate::str::contains("to name the address"))
        .stdout(predicate::str::contains(
            "run it alone:  cargo test -p lesson-03-dial",
        ))
        .stdout(predicate::str::contains(
            "read:          book/src/lessons/03-dial.md",
        ))
        // Not a terminal: no colour codes.
        .stdout(predicate::str::contains("\x1b[").not())
        // While it builds, it says which lesson, one line each off a terminal.
        .stderr(predicate::str::contains(format!(
            "building lesson 01-listen's checks (1 of {})",
            lessons().len()
        )))
        .stderr(predicate::str::contains(format!(
            "building lesson 03-dial's checks (3 of {})",
            lessons().len()
        )));
}

/// The fixture with no lesson remembered, for a check that depends on which
/// lesson is current; the guard keeps other such checks out meanwhile.
fn nothing_remembered() -> MutexGuard<'static, ()> {
    static CURRENT_LESSON: Mutex<()> = Mutex::new(());
    let guard = CURRENT_LESSON
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let _ = fs::remove_file(fixture().join(REMEMBERED));
    guard
}

#[test]
fn a_hint_comes_for_the_first_failing_check_one_level_at_a_time() {
    let _current = nothing_remembered();
    // Lessons 01 and 02 are done, 03 is started and not done: the current lesson.
    for level in ["1", "2", "3"] {
        let assert = progress(&["--hint", "--level", level]).assert().code(1);
        assert
            .stdout(predicate::str::contains("Hint for lesson 03-dial, step_"))
            .stdout(predicate::str::contains(format!("Level {level} of 3:")))
            .stdout(predicate::str::contains("no hint is written").not());
    }
    progress(&["--hint", "--level", "4"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("1, 2 or 3"));
    progress(&["--hint", "3", "4"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("1, 2 or 3"));
}

#[test]
fn a_lesson_for_a_hint_is_a_number_with_or_without_its_zero() {
    let _current = nothing_remembered();
    for args in [
        &["5"][..],
        &["05"],
        &["--lesson", "5"],
        &["5", "2"],
        &["--level", "2", "5"],
    ] {
        let level = if args.contains(&"2") { "2" } else { "1" };
        progress(&[&["--hint"][..], args].concat())
            .assert()
            .code(1)
            .stdout(predicate::str::contains(
                "Hint for lesson 05-echo-loop, step_",
            ))
            .stdout(predicate::str::contains(format!("Level {level} of 3:")));
    }
    // Naming a lesson makes it the current one, for cargo progress too.
    let remembered = fs::read_to_string(fixture().join(REMEMBERED)).expect("remembered");
    assert_eq!(remembered.trim(), "05-echo-loop");
    progress(&[])
        .assert()
        .code(1)
        .stdout(predicate::str::contains("Next: lesson 05-echo-loop"));
    progress(&["--hint"])
        .assert()
        .stdout(predicate::str::contains("Hint for lesson 05-echo-loop"));
    let _ = fs::remove_file(fixture().join(REMEMBERED));
}

#[test]
fn a_hint_for_a_finished_lesson_says_that_lesson_is_done() {
    let _current = nothing_remembered();
    progress(&["--hint", "2"])
        .assert()
        .code(0)
        .stdout(predicate::str::contains("Lesson 2 (02-accept) is done"))
        .stdout(predicate::str::contains("Every lesson").not());
    let _ = fs::remove_file(fixture().join(REMEMBERED));
}

/// A stub that changes needs its new fingerprint, or `cargo seesaw`,
/// `cargo hint` and `cargo progress` would take the untouched lesson for one
/// the student started. After a deliberate change to a stub:
/// `SEESAW_BLESS=1 cargo test -p seesaw-checks --test progress every_stub`.
#[test]
fn every_stub_has_its_fingerprint_so_a_started_lesson_is_told_from_an_untouched_one() {
    let table: String = lessons()
        .iter()
        .map(|folder| {
            let stub =
                fs::read_to_string(repository().join(format!("lessons/{folder}/src/lib.rs")))
                    .expect("read a stub");
            format!("    (\"{folder}\", {}),\n", hex(fingerprint(&stub)))
        })
        .collect();
    let kept: String = STUB_FINGERPRINTS
        .iter()
        .map(|(folder, print)| format!("    (\"{folder}\", {}),\n", hex(*print)))
        .collect();
    if table == kept {
        return;
    }
    let source = repository().join("tests/src/workbook.rs");
    if std::env::var_os("SEESAW_BLESS").is_some() {
        let text = fs::read_to_string(&source).expect("read workbook.rs");
        fs::write(&source, text.replace(&kept, &table)).expect("write workbook.rs");
        return;
    }
    panic!(
        "a lesson's stub changed: tests/src/workbook.rs's STUB_FINGERPRINTS must become\n{table}\
         (on the stubs as committed: SEESAW_BLESS=1 cargo test -p seesaw-checks --test progress \
         every_stub writes it)"
    );
}

/// `0x1234_5678_9abc_def0`, as rustfmt and clippy like a long literal.
fn hex(number: u64) -> String {
    let digits = format!("{number:016x}");
    let groups: Vec<&str> = (0..4).map(|at| &digits[at * 4..at * 4 + 4]).collect();
    format!("0x{}", groups.join("_"))
}

#[test]
fn one_lesson_shows_its_full_report() {
    let assert = progress(&["--lesson", "01"]).assert().code(0);
    let stdout = stdout_of(&assert);
    let checks = checks_in("01-listen");
    assert_eq!(
        row(&stdout, "01"),
        format!("01 listen {checks}/{checks} checks done")
    );
    assert
        .stdout(predicate::str::contains(
            "test step_1_listen_on_the_address_you_are_given ... ok",
        ))
        .stdout(predicate::str::contains(format!(
            "test result: ok. {checks} passed"
        )))
        .stdout(predicate::str::contains("02  accept").not());
}

#[test]
fn a_lesson_over_the_time_limit_shows_as_timed_out() {
    let assert = progress(&["--lesson", "3", "--time-limit", "0"])
        .assert()
        .code(1);
    let stdout = stdout_of(&assert);
    let row = row(&stdout, "03");
    // However far the checks got before the limit, the row says the time ran
    // out, never that a check hung.
    assert!(row.contains(" checks timed out"), "{stdout}");
    assert!(!row.contains("hung"), "{stdout}");
}

#[test]
fn an_unknown_lesson_is_an_error() {
    progress(&["--lesson", "42"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("no lesson 42"));
}
