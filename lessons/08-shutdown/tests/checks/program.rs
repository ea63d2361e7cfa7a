//! Step 17 stops the lesson's program with Ctrl-C, and then expects its
//! goodbye to the client still there, its summary, and exit code 0.

use std::time::{Duration, Instant};

use lesson_08_shutdown::{GOODBYE_TIME, SHUTDOWN_REPLY};
use seesaw_checks::bytes::show;
use seesaw_checks::peer::Peer;
use seesaw_checks::report::Step;
use seesaw_checks::timing::ms;
use seesaw_checks::watched::WatchedServer;

use crate::QUICK;

/// Fails unless `client`, silent, gets the goodbye when the grace ends
/// (`grace` after `stopped`).
pub fn expect_goodbye(
    step: &Step,
    server: &mut WatchedServer,
    client: &mut Peer,
    stopped: Instant,
    grace: Duration,
) {
    let goodbye = client.read_to_end_within(grace + QUICK);
    if goodbye.bytes == SHUTDOWN_REPLY && stopped.elapsed() >= grace - ms(20) {
        return;
    }
    let report = server
        .report(step)
        .did(&format!(
            "a client stayed connected, silent; the check pressed Ctrl-C (grace {} ms)",
            grace.as_millis()
        ))
        .expected(&format!(
            "{} when the grace ends, then end of file",
            show(SHUTDOWN_REPLY)
        ))
        .got(&format!(
            "{} after {} ms",
            goodbye.describe(),
            stopped.elapsed().as_millis()
        ))
        .hint(
            "when the grace ends, cut the conversations still going on short; each says \
             goodbye.",
        );
    server.fail(report);
}

/// Fails unless the program prints `summary` on stderr and exits 0, once
/// its conversations have ended.
pub fn expect_summary_and_exit(step: &Step, server: &mut WatchedServer, summary: &str) {
    let status = server.exit_within(GOODBYE_TIME + QUICK);
    let printed = server.printed(|line| line.contains(summary)).is_some();
    if status.and_then(|status| status.code()) == Some(0) && printed {
        return;
    }
    let got = match status {
        None => {
            step.note_waited_out();
            "it was still running after its clients had gone".to_string()
        }
        Some(status) => format!("it ended: {status}"),
    };
    let report = server
        .report(step)
        .expected(&format!("`{summary}` on stderr, then exit code 0"))
        .got(&got)
        .hint(
            "once the conversations have ended (or said goodbye), return the Summary: \
             main prints it and exits 0. Count the clients served (not the wake-up \
             call, not the late client) and those cut short.",
        );
    server.fail(report);
}
