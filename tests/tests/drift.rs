//! Copies that cannot drift. Every lesson carries the earlier lessons' code,
//! done, so that it stands on its own. This check proves those copies are
//! right: each item (function, method, type, constant) that a lesson's lib.rs
//! gives ready-made equals the reference of the lesson where students write
//! it, and each lesson's untouched items equal its own reference. Comments
//! and blank lines may differ; code may not. A mismatch names both places.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

/// One top-level item, or one method of an `impl` block: its name and code.
type Items = BTreeMap<String, String>;

/// The workbook to look at: this one, or SEESAW_ROOT (to try the check on a copy).
fn root() -> PathBuf {
    match std::env::var_os("SEESAW_ROOT") {
        Some(root) => PathBuf::from(root),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join(".."),
    }
}

fn lesson_folders() -> Vec<String> {
    let mut folders: Vec<String> = fs::read_dir(root().join("lessons"))
        .expect("lessons/ exists")
        .filter_map(|entry| entry.ok())
        .filter(|entry| entry.path().join("src/lib.rs").is_file())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect();
    folders.sort();
    folders
}

/// The name an item line declares: `pub fn listen(` gives `fn listen`.
fn declared_name(line: &str) -> Option<String> {
    let words: Vec<&str> = line
        .split(|c: char| c.is_whitespace() || c == '(' || c == '<' || c == ':' || c == '{')
        .filter(|word| !word.is_empty() && *word != "pub" && *word != "pub(crate)")
        .collect();
    let kind = *words.first()?;
    if kind == "impl" {
        // The whole header, so `impl Drop for Slot` and `impl Drop for Guard` differ.
        return Some(line.trim().trim_end_matches('{').trim().to_string());
    }
    match kind {
        "fn" | "struct" | "enum" | "const" | "static" | "type" | "trait" | "impl" => {
            Some(format!("{kind} {}", words.get(1)?))
        }
        "async" if words.get(1) == Some(&"fn") => Some(format!("fn {}", words.get(2)?)),
        _ => None,
    }
}

/// The items of a Rust file, found by indentation: an item starts at a line
/// with no indent (or four spaces, inside an impl) and ends at the line that
/// closes it with the same indent. Comments and blank lines are left out.
fn items_of(source: &str) -> Items {
    let mut items = Items::new();
    let lines: Vec<&str> = source
        .lines()
        .filter(|line| !line.trim().is_empty() && !line.trim_start().starts_with("//"))
        .collect();
    collect_items(&lines, "", "", &mut items);
    items
}

fn collect_items(lines: &[&str], indent: &str, prefix: &str, items: &mut Items) {
    let mut index = 0;
    while index < lines.len() {
        let line = lines[index];
        let Some(rest) = line.strip_prefix(indent) else {
            index += 1;
            continue;
        };
        let name = match rest.starts_with(' ') || rest.starts_with('#') {
            true => None,
            false => declared_name(rest),
        };
        let Some(name) = name else {
            index += 1;
            continue;
        };
        let end = item_end(lines, index, indent);
        let body = &lines[index..=end];
        if name.starts_with("impl ") {
            let inner = format!("{indent}    ");
            collect_items(&body[1..], &inner, &format!("{prefix}{name}::"), items);
        } else {
            items.insert(format!("{prefix}{name}"), body.join("\n"));
        }
        index = end + 1;
    }
}

/// The line that ends the item starting at `start`: a `;` on its own line, or
/// the closing brace at the item's own indent.
fn item_end(lines: &[&str], start: usize, indent: &str) -> usize {
    if lines[start].trim_end().ends_with(';') {
        return start;
    }
    for (offset, line) in lines[start..].iter().enumerate() {
        let closes = line.strip_prefix(indent).is_some_and(|rest| {
            rest.starts_with('}') || (rest.starts_with(')') && rest.ends_with(';'))
        });
        if offset > 0 && closes {
            return start + offset;
        }
    }
    lines.len() - 1
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

/// Items the student writes in this stub: their code holds a `todo!(`.
fn tasks(stub: &Items) -> Vec<String> {
    stub.iter()
        .filter(|(_, code)| code.contains("todo!("))
        .map(|(name, _)| name.clone())
        .collect()
}

#[test]
fn given_code_equals_the_reference_it_comes_from() {
    let root = root();
    let folders = lesson_folders();
    let stubs: Vec<Items> = folders
        .iter()
        .map(|folder| items_of(&read(&root.join("lessons").join(folder).join("src/lib.rs"))))
        .collect();
    let references: Vec<Items> = folders
        .iter()
        .map(|folder| {
            items_of(&read(
                &root.join("solutions").join(folder).join("src/lib.rs"),
            ))
        })
        .collect();
    // Where each item comes from: the first lesson that asks students to
    // write it, or else the first lesson that has it at all.
    let mut origin: BTreeMap<String, usize> = BTreeMap::new();
    for (index, stub) in stubs.iter().enumerate() {
        for task in tasks(stub) {
            origin.entry(task).or_insert(index);
        }
    }
    for (index, stub) in stubs.iter().enumerate() {
        for name in stub.keys() {
            origin.entry(name.clone()).or_insert(index);
        }
    }
    let mut mismatches = Vec::new();
    for (index, stub) in stubs.iter().enumerate() {
        let own_tasks = tasks(stub);
        for (name, code) in stub {
            if own_tasks.contains(name) {
                continue;
            }
            // Compared with this lesson's own reference, and with the
            // reference of the lesson it comes from.
            let mut sources = vec![index];
            sources.extend(origin.get(name).filter(|&&from| from != index));
            for from in sources {
                let place = format!("solutions/{}/src/lib.rs", folders[from]);
                match references[from].get(name) {
                    Some(reference) if reference == code => {}
                    Some(_) => mismatches.push(format!(
                        "{name}: lessons/{}/src/lib.rs differs from {place}",
                        folders[index]
                    )),
                    None => mismatches.push(format!(
                        "{name} in lessons/{}/src/lib.rs is not in {place}",
                        folders[index]
                    )),
                }
            }
        }
    }
    assert!(
        mismatches.is_empty(),
        "given code has drifted from the reference it was copied from:\n  {}",
        mismatches.join("\n  ")
    );
}

/// The `[[test]]` section named `checks` of a Cargo.toml, up to the next section.
fn checks_section(manifest: &str) -> Option<&str> {
    let start = manifest.find("[[test]]\nname = \"checks\"")?;
    let rest = &manifest[start + 1..];
    Some(&rest[..rest.find("\n[").unwrap_or(rest.len())])
}

/// Under Rust's standard harness the checks' `main` would never run, and
/// `cargo test` would say `0 passed ... ok`: a pass that checked nothing.
#[test]
fn every_lesson_and_reference_runs_its_checks_under_the_support_crates_harness() {
    let mut missing = Vec::new();
    for folder in lesson_folders() {
        for side in ["lessons", "solutions"] {
            let path = root().join(side).join(&folder).join("Cargo.toml");
            let manifest = read(&path);
            let harnessed = checks_section(&manifest)
                .is_some_and(|section| section.lines().any(|line| line == "harness = false"));
            if !harnessed {
                missing.push(path.display().to_string());
            }
        }
    }
    assert!(
        missing.is_empty(),
        "these need a [[test]] named checks, with harness = false (seesaw_checks::harness):\n  {}",
        missing.join("\n  ")
    );
}

#[test]
fn items_are_found_by_indentation() {
    let source = "/// doc\npub fn one() -> u8 {\n    1\n}\n\npub const TWO: u8 = 2;\n\
                  impl Thing {\n    pub fn three(&self) {\n        todo!()\n    }\n}\n";
    let items = items_of(source);
    let names: Vec<&String> = items.keys().collect();
    assert_eq!(names, ["const TWO", "fn one", "impl Thing::fn three"]);
    let two_impls = "impl Drop for A {\n    fn drop(&mut self) {}\n}\nimpl Drop for B {\n    fn drop(&mut self) {}\n}\n";
    let names: Vec<String> = items_of(two_impls).into_keys().collect();
    assert_eq!(
        names,
        ["impl Drop for A::fn drop", "impl Drop for B::fn drop"]
    );
    assert_eq!(items["fn one"], "pub fn one() -> u8 {\n    1\n}");
}
