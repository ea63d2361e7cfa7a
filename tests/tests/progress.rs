//! Checks of `cargo progress` (src/bin/progress.rs) on a fixture: a copy of
//! the workbook where lessons 01 and 02 hold their reference answers, lesson
//! 03 a wrong answer that passes some checks, and 04 to 06 their stubs.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use assert_cmd::Command;
use predicates::prelude::*;

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Builds the fixture once for all the checks in this file.
fn fixture() -> &'static Path {
    static FIXTURE: OnceLock<PathBuf> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let tree = repository().join("target/progress-fixture/tree");
        let _ = fs::remove_dir_all(&tree);
        for part in ["Cargo.toml", "Cargo.lock", ".cargo", "lessons", "tests"] {
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
        .env(
            "CARGO_TARGET_DIR",
            repository().join("target/progress-fixture/target"),
        )
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

/// How many checks lesson `folder` has: its `#[test]` functions.
fn checks_in(folder: &str) -> usize {
    let path = repository().join(format!("lessons/{folder}/tests/checks.rs"));
    fs::read_to_string(path)
        .expect("read a lesson's checks")
        .matches("#[test]")
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
        .stdout(predicate::str::contains("\x1b[").not());
}

#[test]
fn a_hint_comes_for_the_first_failing_check_one_level_at_a_time() {
    for level in ["1", "2", "3"] {
        let assert = progress(&["--hint", level]).assert().code(1);
        assert
            .stdout(predicate::str::contains("Hint for lesson 03-dial, step_"))
            .stdout(predicate::str::contains(format!("Level {level} of 3:")))
            .stdout(predicate::str::contains("no hint is written").not());
    }
    progress(&["--hint", "4"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("1, 2 or 3"));
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
