//! The workbook's own checks of its book (book/src): every include points at
//! a file and anchor that exist, every picture has alt text, and every lesson
//! chapter explains every check of its lesson. mdBook only warns about a
//! missing include; these checks fail.

use std::fs;
use std::path::{Path, PathBuf};

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Every chapter: its path and its text.
fn chapters() -> Vec<(PathBuf, String)> {
    let mut found = Vec::new();
    let mut folders = vec![repository().join("book/src")];
    while let Some(folder) = folders.pop() {
        for entry in fs::read_dir(&folder).expect("book/src is readable") {
            let path = entry.expect("a readable entry").path();
            if path.is_dir() {
                folders.push(path);
            } else if path.extension().is_some_and(|ext| ext == "md") {
                let text = fs::read_to_string(&path).expect("a chapter is text");
                found.push((path, text));
            }
        }
    }
    assert!(found.len() > 5, "the book has chapters");
    found
}

/// The `{{#include ...}}` and `{{#rustdoc_include ...}}` links of a chapter:
/// (file, anchor).
fn include_links(text: &str) -> Vec<(String, Option<String>)> {
    let mut links = Vec::new();
    for piece in text.split("{{#").skip(1) {
        let Some((link, _)) = piece.split_once("}}") else {
            continue;
        };
        let Some(target) = link
            .strip_prefix("include ")
            .or(link.strip_prefix("rustdoc_include "))
        else {
            continue;
        };
        let (file, anchor) = match target.trim().split_once(':') {
            Some((file, anchor)) if !anchor.chars().next().is_some_and(|c| c.is_ascii_digit()) => {
                (file.to_string(), Some(anchor.to_string()))
            }
            Some((file, _lines)) => (file.to_string(), None),
            None => (target.trim().to_string(), None),
        };
        links.push((file, anchor));
    }
    links
}

#[test]
fn every_include_points_at_a_file_and_anchor_that_exist() {
    let mut problems = Vec::new();
    let mut count = 0;
    for (chapter, text) in chapters() {
        let folder = chapter.parent().expect("a chapter is in a folder");
        for (file, anchor) in include_links(&text) {
            count += 1;
            let Ok(source) = fs::read_to_string(folder.join(&file)) else {
                problems.push(format!("{}: no file {file}", chapter.display()));
                continue;
            };
            if let Some(anchor) = anchor {
                let starts = source.contains(&format!("ANCHOR: {anchor}\n"));
                let ends = source.contains(&format!("ANCHOR_END: {anchor}\n"));
                if !starts || !ends {
                    problems.push(format!(
                        "{}: {file} has no anchor {anchor}",
                        chapter.display()
                    ));
                }
            }
        }
    }
    assert!(
        count > 20,
        "the book includes code from the lessons ({count} includes)"
    );
    assert!(
        problems.is_empty(),
        "broken includes:\n{}",
        problems.join("\n")
    );
}

#[test]
fn every_picture_exists_and_has_alt_text() {
    let mut problems = Vec::new();
    let mut count = 0;
    for (chapter, text) in chapters() {
        let folder = chapter.parent().expect("a chapter is in a folder");
        for piece in text.split("![").skip(1) {
            let Some((alt, rest)) = piece.split_once("](") else {
                continue;
            };
            let Some((file, _)) = rest.split_once(')') else {
                continue;
            };
            count += 1;
            if alt.trim().len() < 20 {
                problems.push(format!(
                    "{}: {file} needs alt text that describes it",
                    chapter.display()
                ));
            }
            if !folder.join(file).is_file() {
                problems.push(format!("{}: no picture {file}", chapter.display()));
            }
        }
    }
    assert!(count >= 4, "the book has its pictures ({count})");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn every_lesson_chapter_explains_every_check() {
    let mut problems = Vec::new();
    for entry in fs::read_dir(repository().join("lessons")).expect("lessons/ is readable") {
        let lesson = entry.expect("a readable entry").path();
        let name = lesson
            .file_name()
            .expect("a folder name")
            .to_string_lossy()
            .into_owned();
        let chapter = repository().join(format!("book/src/lessons/{name}.md"));
        let Ok(text) = fs::read_to_string(&chapter) else {
            problems.push(format!(
                "lesson {name} has no chapter {}",
                chapter.display()
            ));
            continue;
        };
        let checks =
            fs::read_to_string(lesson.join("tests/checks.rs")).expect("every lesson has checks");
        for line in checks.lines() {
            let Some(rest) = line.strip_prefix("fn step_") else {
                continue;
            };
            let check = format!("step_{}", rest.split('(').next().unwrap_or_default());
            if !text.contains(&format!("`{check}`")) {
                problems.push(format!(
                    "{}: does not explain the check {check}",
                    chapter.display()
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
