//! The golden test of the reports: one failing check for each outcome a report
//! must fit (src/bin/report-outcomes.rs plays them), compared with
//! tests/golden/reports.txt. After a deliberate change to the reports, write
//! the new golden file with `SEESAW_BLESS=1 cargo test -p seesaw-checks --test reports`.

use std::path::Path;
use std::process::Command;

fn play(args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_report-outcomes"))
        .args(args)
        .env("RUST_BACKTRACE", "1") // must change nothing
        .env_remove("SEESAW_BACKTRACE")
        .env_remove("SEESAW_REPORTS_TO_STDOUT")
        .output()
        .expect("could not run report-outcomes");
    let mut text = String::from_utf8_lossy(&output.stderr).into_owned();
    text.push_str(&format!("(exit code {:?})\n", output.status.code()));
    text
}

/// Ports change from run to run.
fn normalise(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find("127.0.0.1:") {
        let (before, after) = rest.split_at(at + "127.0.0.1:".len());
        out.push_str(before);
        out.push_str("PORT");
        rest = after.trim_start_matches(|c: char| c.is_ascii_digit());
    }
    out.push_str(rest);
    out
}

#[test]
fn one_report_for_each_outcome() {
    let got = normalise(&(play(&[]) + &play(&["exit"]) + &play(&["abort"])));
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/reports.txt");
    if std::env::var_os("SEESAW_BLESS").is_some() {
        std::fs::write(&golden, &got).expect("could not write the golden file");
    }
    let expected = std::fs::read_to_string(&golden).unwrap_or_default();
    assert!(
        got == expected,
        "the reports differ from {}:\n--- got\n{got}\n--- expected\n{expected}",
        golden.display()
    );
}
