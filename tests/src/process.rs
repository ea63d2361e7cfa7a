//! What the check can observe of a process: the processor time it has used
//! (a server that spins, or one still busy), how many files it has open,
//! and whether this process may open the files (sockets) a check with many
//! clients needs.

use std::time::Duration;

use crate::report::Step;

/// The processor time the OS counts at a time (in /proc/PID/stat).
pub const ONE_TICK: Duration = Duration::from_millis(10);

/// The processor time a process has used so far, all its threads together:
/// `pid`, or this process for `None`. Linux only (/proc/PID/stat, counted in
/// ticks of [`ONE_TICK`]); `None` where the OS does not say.
pub fn cpu_time(pid: Option<u32>) -> Option<Duration> {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/stat"),
        None => "/proc/self/stat".to_string(),
    };
    let stat = std::fs::read_to_string(path).ok()?;
    cpu_time_in(&stat)
}

/// The files (file descriptors: sockets, pipes, files) process `pid` has
/// open now, by number, in order. A process may open files numbered below
/// its limit (`ulimit -n`) only, but it may have inherited some numbered
/// above. Linux only (/proc/PID/fd); `None` where the OS does not say.
pub fn open_files(pid: u32) -> Option<Vec<u32>> {
    let entries = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?;
    let mut numbers: Vec<u32> = entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    numbers.sort_unstable();
    Some(numbers)
}

/// The processor time in the text of /proc/PID/stat.
fn cpu_time_in(stat: &str) -> Option<Duration> {
    // After the program's name in parentheses (which may hold spaces and
    // parentheses): state, then 10 more fields, then utime and stime.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let user: u32 = fields.get(11)?.parse().ok()?;
    let system: u32 = fields.get(12)?.parse().ok()?;
    Some(ONE_TICK * (user + system))
}

/// Fails with advice if this process cannot open `count` more files. Each
/// connection is a file (a file descriptor), and a shell's limit on open
/// files (`ulimit -n`) may be lower than a check with many clients needs.
#[track_caller]
pub fn expect_room_for_files(step: &Step, count: usize) {
    let Ok(me) = std::env::current_exe() else {
        return;
    };
    let mut open = Vec::with_capacity(count);
    for _ in 0..count {
        match std::fs::File::open(&me) {
            Ok(file) => open.push(file),
            Err(error) if is_too_many_open_files(&error) => step
                .report()
                .did(&format!(
                    "the check made sure it can open the {count} files (sockets) this step needs"
                ))
                .got(&format!(
                    "after {} files: {error}: the limit on open files is too low",
                    open.len()
                ))
                .observed(&format!(
                    "this is the check's own limit, not your code: each connection is an open \
                     file, and your shell allows too few. Raise the limit in this shell with \
                     `ulimit -n {}`, then run the checks again.",
                    (count + 64).next_power_of_two().max(1024)
                ))
                .fail(),
            Err(_) => return,
        }
    }
}

/// True for "Too many open files" (EMFILE), and its system-wide twin (ENFILE).
pub fn is_too_many_open_files(error: &std::io::Error) -> bool {
    #[cfg(unix)]
    if matches!(error.raw_os_error(), Some(23 | 24)) {
        return true;
    }
    error.to_string().contains("Too many open files")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_user_and_system_time_after_the_name() {
        let stat = "42 (a (strange) name) S 1 42 42 0 -1 4194560 100 0 0 0 7 3 0 0 20 0 1";
        assert_eq!(cpu_time_in(stat), Some(ONE_TICK * 10));
        assert_eq!(cpu_time_in("garbage"), None);
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn this_process_has_a_cpu_time() {
        assert!(cpu_time(None).is_some());
        assert!(cpu_time(Some(std::process::id())).is_some());
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn counts_the_open_files_of_this_process() {
        let before = open_files(std::process::id()).expect("/proc/self/fd");
        let extra = std::fs::File::open("/proc/self/stat").expect("a file to open");
        let after = open_files(std::process::id()).expect("/proc/self/fd");
        assert_eq!(after.len(), before.len() + 1);
        assert!(after.is_sorted());
        drop(extra);
    }

    #[test]
    fn knows_too_many_open_files() {
        #[cfg(unix)]
        assert!(is_too_many_open_files(&std::io::Error::from_raw_os_error(
            24
        )));
        assert!(!is_too_many_open_files(&std::io::Error::other("no")));
    }

    #[test]
    fn a_few_files_are_room_enough() {
        let step = Step::new("process: unit test", "none");
        expect_room_for_files(&step, 4);
    }
}
