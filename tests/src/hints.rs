//! The hint ladder behind `cargo hint`: for each check of a lesson, three
//! levels of help, read from `lessons/NN-step/hints.md`:
//!
//! ```text
//! # Hints: lesson 05
//! ## step_03_read_message_stops_at_the_limit
//! ### 1
//! The idea, in words.
//! ### 2
//! The std calls to use.
//! ### 3
//! The shape of the code, with blanks.
//! ```

/// How many levels every check has.
pub const LEVELS: usize = 3;

/// The levels of help for the check `step` (a test function's name), in
/// order, from the text of a hints file. Empty if the file has none for it.
pub fn levels_for(hints_file: &str, step: &str) -> Vec<String> {
    let mut levels: Vec<String> = Vec::new();
    let mut in_step = false;
    for line in hints_file.lines() {
        if let Some(name) = line.strip_prefix("## ") {
            in_step = name.trim() == step;
        } else if !in_step {
            continue;
        } else if line.starts_with("### ") {
            levels.push(String::new());
        } else if let Some(level) = levels.last_mut() {
            level.push_str(line);
            level.push('\n');
        }
    }
    levels
        .into_iter()
        .map(|level| level.trim().to_string())
        .collect()
}

/// The names of the checks a hints file covers, in order.
pub fn steps_in(hints_file: &str) -> Vec<String> {
    hints_file
        .lines()
        .filter_map(|line| line.strip_prefix("## "))
        .map(|name| name.trim().to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::{levels_for, steps_in};

    const FILE: &str = "# Hints: lesson 09\n\
        ## step_1_first\n### 1\nidea one\n### 2\ncalls one\n### 3\nshape one\n\
        ## step_2_second\n### 1\nidea two\nmore\n### 2\ncalls two\n### 3\nshape two\n";

    #[test]
    fn levels_of_one_step() {
        assert_eq!(
            levels_for(FILE, "step_2_second"),
            ["idea two\nmore", "calls two", "shape two"]
        );
        assert!(levels_for(FILE, "step_3_missing").is_empty());
        assert_eq!(steps_in(FILE), ["step_1_first", "step_2_second"]);
    }
}
