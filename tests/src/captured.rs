//! What your code prints while a check runs (`println!`, `eprintln!`, a
//! panic on a thread of yours), held back and shown under the check's report
//! only if the check fails, as Rust's own test harness does. A passing run
//! stays quiet.
//!
//! How (unix): from the first check on, the process's stdout and stderr
//! (files 1 and 2) are a pipe that a thread of ours reads; the checks' own
//! lines and reports go to the terminal through copies of the real files 1
//! and 2 made before. Elsewhere nothing is held back: what your code prints
//! shows at once.

use std::io::Write;
#[cfg(unix)]
use std::sync::atomic::{AtomicI32, Ordering};

/// The most of your code's output kept for one check (its last bytes).
const KEPT_BYTES: usize = 16 * 1024;

/// The real stdout and stderr (copies of files 1 and 2 made before any
/// check ran), or -1 before [`start`] first ran and on other systems.
#[cfg(unix)]
static TERMINAL: [AtomicI32; 2] = [AtomicI32::new(-1), AtomicI32::new(-1)];

/// Writes the checks' own text to the real stdout (`to_stdout`) or stderr,
/// past any capture.
pub(crate) fn write_to_terminal(text: &str, to_stdout: bool) {
    #[cfg(unix)]
    {
        let fd = TERMINAL[usize::from(!to_stdout)].load(Ordering::SeqCst);
        if fd >= 0 {
            unix::write_all(fd, text.as_bytes());
            return;
        }
    }
    if to_stdout {
        let mut stdout = std::io::stdout().lock();
        let _ = stdout.write_all(text.as_bytes());
        let _ = stdout.flush();
    } else {
        let _ = std::io::stderr().write_all(text.as_bytes());
    }
}

/// The file descriptor of the real stderr, for a signal handler (unix).
#[cfg(unix)]
pub(crate) fn terminal_stderr() -> i32 {
    match TERMINAL[1].load(Ordering::SeqCst) {
        -1 => 2,
        fd => fd,
    }
}

/// Output held back while a check runs.
pub struct Capture {
    #[cfg(unix)]
    held: Option<unix::Held>,
}

/// Starts holding back what the process prints.
pub fn start() -> Capture {
    Capture {
        #[cfg(unix)]
        held: unix::hold(),
    }
}

impl Capture {
    /// Stops holding back, and gives what was printed (its last
    /// [`KEPT_BYTES`]), as text.
    pub fn finish(self) -> String {
        #[cfg(unix)]
        if let Some(held) = self.held {
            return held.release();
        }
        String::new()
    }
}

#[cfg(unix)]
mod unix {
    use std::ffi::c_int;
    use std::io::{Read, Write};
    use std::os::fd::FromRawFd;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::{Condvar, Mutex, MutexGuard, OnceLock};
    use std::time::Duration;

    use super::{KEPT_BYTES, TERMINAL};

    unsafe extern "C" {
        fn pipe(fds: *mut c_int) -> c_int;
        fn dup(fd: c_int) -> c_int;
        fn dup2(from: c_int, to: c_int) -> c_int;
        fn close(fd: c_int) -> c_int;
        fn fcntl(fd: c_int, command: c_int, ...) -> c_int;
        fn write(fd: c_int, bytes: *const u8, count: usize) -> isize;
    }

    /// fcntl's "set the descriptor's flags", and the flag "close on exec":
    /// the same numbers on every unix.
    const F_SETFD: c_int = 2;
    const FD_CLOEXEC: c_int = 1;

    pub(super) fn write_all(fd: c_int, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            // SAFETY: `bytes` is a valid slice; `fd` is a file of ours.
            let written = unsafe { write(fd, bytes.as_ptr(), bytes.len()) };
            if written <= 0 {
                return;
            }
            bytes = &bytes[written as usize..];
        }
    }

    /// A file of ours that the programs a check starts must not inherit:
    /// one under a limit of 20 open files would have 3 fewer.
    fn close_on_exec(fd: c_int) -> c_int {
        // SAFETY: fcntl only sets a flag of a file descriptor of ours.
        unsafe { fcntl(fd, F_SETFD, FD_CLOEXEC) };
        fd
    }

    /// What files 1 and 2 received, read by a thread of ours.
    #[derive(Default)]
    struct Printed {
        bytes: Mutex<Vec<u8>>,
        grew: Condvar,
    }

    /// Files 1 and 2 become the writing end of one pipe, for the rest of the
    /// run (the checks' own text goes to copies of the real ones): then even
    /// a thread of the student's that prints after its check has ended
    /// prints into the pipe, not over the next check's line.
    fn pipe_once() -> Option<&'static Printed> {
        static PRINTED: OnceLock<Option<Printed>> = OnceLock::new();
        PRINTED.get_or_init(redirect).as_ref()
    }

    fn redirect() -> Option<Printed> {
        for (index, fd) in [1, 2].into_iter().enumerate() {
            // SAFETY: dup only copies a file descriptor.
            let copy = unsafe { dup(fd) };
            if copy < 0 {
                return None;
            }
            TERMINAL[index].store(close_on_exec(copy), Ordering::SeqCst);
        }
        let mut fds = [0 as c_int; 2];
        // SAFETY: `fds` has room for the two ends `pipe` writes.
        if unsafe { pipe(fds.as_mut_ptr()) } != 0 {
            return None;
        }
        let _ = std::io::stdout().flush();
        // SAFETY: dup2 and close only rearrange file descriptors of ours.
        unsafe {
            dup2(fds[1], 1);
            dup2(fds[1], 2);
            close(fds[1]);
        }
        // SAFETY: the read end is ours alone from here on.
        let reader = unsafe { std::fs::File::from_raw_fd(close_on_exec(fds[0])) };
        std::thread::spawn(move || drain(reader));
        Some(Printed::default())
    }

    /// Reads the pipe for ever, keeping the last bytes.
    fn drain(mut reader: std::fs::File) {
        let Some(printed) = pipe_once() else { return };
        let mut chunk = [0u8; 4096];
        while let Ok(count @ 1..) = reader.read(&mut chunk) {
            let mut bytes = printed.bytes.lock().unwrap_or_else(|p| p.into_inner());
            bytes.extend_from_slice(&chunk[..count]);
            if bytes.len() > 4 * KEPT_BYTES {
                let excess = bytes.len() - 2 * KEPT_BYTES;
                bytes.drain(..excess);
            }
            printed.grew.notify_all();
        }
    }

    /// From here on, what is printed belongs to this check.
    pub(super) struct Held {
        printed: &'static Printed,
    }

    pub(super) fn hold() -> Option<Held> {
        let printed = pipe_once()?;
        // What came before (a thread of an earlier check, late) is not this check's.
        let marker = write_marker();
        let mut bytes = wait_for(printed, &marker);
        bytes.clear();
        Some(Held { printed })
    }

    /// Writes a line no program prints through file 1, and returns it: once
    /// it has come through the pipe, so has everything printed before it.
    fn write_marker() -> Vec<u8> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let number = NEXT.fetch_add(1, Ordering::SeqCst);
        let marker = format!("\u{1}seesaw: end of a check's output {number}\u{1}\n").into_bytes();
        let _ = std::io::stdout().flush();
        write_all(1, &marker);
        marker
    }

    /// The bytes, once `marker` is among them (or 200 ms have passed), with
    /// the marker and what came after it taken out.
    fn wait_for(printed: &'static Printed, marker: &[u8]) -> MutexGuard<'static, Vec<u8>> {
        let bytes = printed.bytes.lock().unwrap_or_else(|p| p.into_inner());
        let (mut bytes, _) = printed
            .grew
            .wait_timeout_while(bytes, Duration::from_millis(200), |bytes| {
                find(bytes, marker).is_none()
            })
            .unwrap_or_else(|p| p.into_inner());
        if let Some(at) = find(&bytes, marker) {
            bytes.truncate(at);
        }
        bytes
    }

    fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
        haystack
            .windows(needle.len())
            .position(|window| window == needle)
    }

    impl Held {
        pub(super) fn release(self) -> String {
            let _ = std::io::stderr().flush();
            let marker = write_marker();
            let mut bytes = wait_for(self.printed, &marker);
            let start = bytes.len().saturating_sub(KEPT_BYTES);
            let text = String::from_utf8_lossy(&bytes[start..]).into_owned();
            bytes.clear();
            text
        }
    }
}
