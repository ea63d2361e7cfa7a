//! What every lesson's checks use.
//!
//! If a check failed and sent you here: the message above already says what the
//! check did, what it expected, what it got and what to try. You never need to
//! change this crate. Reading it is fine, and it is kept small on purpose:
//!
//! - [`bytes`]: shows bytes the way Rust writes them, `b"hi\n"`.
//! - [`report`]: the failure message, with the transcript and a hint.
//! - [`bounded`]: runs your function with a deadline, so a hang fails in seconds.
//! - [`peer`]: the check's own client and server, which play the other side.
//! - [`program`]: runs a lesson's program and reads what it prints.
//! - [`watched`]: a lesson's server running in the background, and what it prints.
//! - [`serving`]: your server function running in the background, in the checks'
//!   process, on a listener of the check's; has it ended (it should not)?
//! - [`relay`]: the check in the middle between your client and your server; it
//!   records both directions, to say which side went wrong.
//! - [`timing`]: a timed call of your code (when did it return?), and durations
//!   compared with their limits.
//! - [`process`]: what the check sees of a process: its processor time, its
//!   open files, and whether there is room for the files (sockets) a check
//!   needs.
//! - [`handed`]: a connection your function hands back (accept_one's, dial's):
//!   as the OS made it, carrying bytes both ways, waiting for a slow peer.
//! - [`localhost`]: this machine's loopback addresses (IPv4, IPv6) and what the
//!   name `localhost` stands for.
//! - `accept_backoff` (unix): your server program out of files: does it say why
//!   accept failed, back off, and serve again?
//! - [`echo_cases`]: the conversations every echo server's `serve_connection` must
//!   hold (many messages, pieces, the tail, a message too long, a flood).
//! - [`fixtures`]: in-memory inputs for your `read_message` (bytes at once, a
//!   flood that counts what was taken), the cases it must read right, and the
//!   hint for the first message it got wrong.
//! - `on_tokio` (feature `tokio`, lesson 9 on): your async functions on a runtime
//!   with one thread, several connections' tasks at once, std sockets handed to tokio.
//! - [`chat`]: members of a chat room (lessons 11 and 12): join as NAME
//!   and hear who is present, say a line, expect `[NAME] text`, entries,
//!   leaves, and silence.
//! - [`hints`]: the hint ladders (`lessons/NN-step/hints.md`) that `cargo hint`
//!   and `cargo seesaw` show, one level at a time.
//! - [`harness`]: runs a lesson's checks in order, a line each, as libtest
//!   does, without libtest's list of failed names at the end.
//! - [`captured`]: what your code prints during a check, held back and shown
//!   only if the check fails.
//! - [`run_state`]: prints each failure as it happens, stops the run after a
//!   step that hung, and never buries a report under a backtrace.
//! - [`workbook`]: the lessons, which one is current, and what a run of checks
//!   came to (for `cargo progress`, `cargo hint` and `cargo seesaw`).

#[cfg(unix)]
pub mod accept_backoff;
pub mod bounded;
pub mod bytes;
pub mod captured;
pub mod chat;
pub mod echo_cases;
pub mod fixtures;
pub mod handed;
pub mod harness;
pub mod hints;
pub mod localhost;
#[cfg(feature = "tokio")]
pub mod on_tokio;
pub mod peer;
pub mod process;
pub mod program;
pub mod relay;
pub mod report;
pub mod run_state;
pub mod serving;
pub mod timing;
pub mod watched;
pub mod workbook;

use std::time::Duration;

/// How long a check waits for one network event (a connection, a reply, an exit)
/// before it gives up. Loopback answers in microseconds, so this only matters
/// when something is stuck.
///
/// It is short so that a wrong answer is explained within 2 s, and long enough
/// for a loaded machine: every event a check waits for takes microseconds.
pub const DEADLINE: Duration = Duration::from_millis(1200);

/// How long a check waits for a lesson's program to start up, or to finish.
pub const START_DEADLINE: Duration = DEADLINE;
