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
//! - [`run_state`]: prints each failure as it happens, stops the run after a
//!   step that hung, and never buries a report under a backtrace.

pub mod bounded;
pub mod bytes;
pub mod hints;
pub mod peer;
pub mod program;
pub mod report;
pub mod run_state;
pub mod watched;

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
