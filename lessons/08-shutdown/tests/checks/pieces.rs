//! Steps 1 to 8 call the pieces one at a time, on connections the check
//! makes: the Conversations list, the Slot's drop, cut_short, converse.

use std::io::Read;
use std::net::TcpStream;
use std::sync::mpsc;
use std::thread;

use lesson_08_shutdown::{Conversations, Slot, converse};
use seesaw_checks::DEADLINE;
use seesaw_checks::peer::{End, Peer};
use seesaw_checks::report::Step;

use crate::{QUICK, QUIET, settings};
use seesaw_checks::timing::{self, Timed};

/// Calls the student's `conversations.admit(&connection, max)`, and gives
/// the connection back with what admit returned.
pub fn admit(
    step: &Step,
    conversations: &Conversations,
    connection: TcpStream,
    max_clients: usize,
) -> (TcpStream, Option<Slot>) {
    let call = format!("conversations.admit(&connection, {max_clients})");
    let list = conversations.clone();
    let (connection, result) = timing::run_within(
        step,
        &call,
        QUICK,
        "admit only looks at the list and adds to it: nothing in it waits. Does it \
         lock the list twice (count() locks it too, while you hold its guard)?",
        move || {
            let result = list.admit(&connection, max_clients);
            (connection, result)
        },
    );
    (connection, step.ok(&call, result))
}

/// Admits `connection` with max_clients 1 into an empty list: step 1 checks
/// that admit says yes then.
pub fn admit_one(
    step: &Step,
    conversations: &Conversations,
    connection: TcpStream,
) -> (TcpStream, Slot) {
    let (connection, slot) = admit(step, conversations, connection, 1);
    (connection, slot.expect("step 1 checks that admit says yes"))
}

/// Fails unless the list counts `expected` conversations.
pub fn expect_count(
    step: &Step,
    conversations: &Conversations,
    expected: usize,
    after: &str,
    hint: &str,
) {
    let count = conversations.count();
    if count != expected {
        step.report()
            .did(after)
            .expected(&format!("conversations.count() to be {expected}"))
            .got(&format!("{count}"))
            .hint(hint)
            .fail();
    }
}

/// Drops `slot` on a thread of the student's code (its Drop is theirs).
pub fn give_back(step: &Step, slot: Slot) {
    timing::run_within(
        step,
        "drop(slot)",
        QUICK,
        "dropping a Slot locks the list: is its lock still held somewhere?",
        move || drop(slot),
    );
}

/// A conversation's thread, blocked in a read of its client: what the read
/// returns (bytes, or the kind of error) comes on the channel.
pub fn blocked_read(connection: &TcpStream) -> mpsc::Receiver<Result<usize, std::io::ErrorKind>> {
    let mut reading = connection
        .try_clone()
        .expect("the check could not clone its socket");
    let (sender, read_ended) = mpsc::channel();
    thread::spawn(move || {
        let _ = reading.set_read_timeout(Some(3 * DEADLINE));
        let mut buffer = [0u8; 16];
        let _ = sender.send(reading.read(&mut buffer).map_err(|error| error.kind()));
    });
    read_ended
}

/// Fails unless the blocked read returned end of file at once.
pub fn expect_woken_with_end_of_file(
    step: &Step,
    read_ended: mpsc::Receiver<Result<usize, std::io::ErrorKind>>,
) {
    let got = match read_ended.recv_timeout(QUICK) {
        Ok(Ok(0)) => return,
        Ok(Ok(count)) => format!("it read {count} bytes"),
        Ok(Err(kind)) => format!("it failed: {kind}"),
        Err(_) => format!("it still waited after {} ms", QUICK.as_millis()),
    };
    step.report()
        .did("a read of the first connection was waiting for its client; then cut_short()")
        .expected("that read to return end of file (0 bytes) at once")
        .got(&got)
        .hint(
            "shut down the reading side of each socket in the list \
             (shutdown(Shutdown::Read) on the handle kept by admit): a read that waits \
             then returns end of file.",
        )
        .fail();
}

/// The hint for a cut_short that shut down the sending side too.
pub const SENDING_SIDE_TOO: &str = "cut_short shut down the sending side too: the conversation \
     can no longer write its goodbye. Shut down only the reading side (Shutdown::Read).";

/// After cut_short, a client must hear nothing for a while: the goodbye is
/// its conversation's to write, once its seesaw has ended.
pub fn expect_nothing_written(step: &Step, client: &mut Peer) {
    let heard = client.read_for(QUIET);
    if heard.bytes.is_empty() && heard.end == End::TimedOut {
        return;
    }
    let hint = match heard.bytes.is_empty() && heard.end == End::Closed {
        true => SENDING_SIDE_TOO,
        false => {
            "cut_short writes nothing and closes nothing: a conversation may be writing \
             an echo at that very moment. It shuts the reading side down, and the \
             conversation's thread finishes its echo, then writes SHUTDOWN_REPLY."
        }
    };
    step.report()
        .did("called cut_short(); the second client waited for what comes")
        .expected(&format!(
            "nothing, for {} ms: the goodbye is the conversation's to write",
            QUIET.as_millis()
        ))
        .got(&heard.describe())
        .observed(hint)
        .fail();
}

/// Serves `connection` with the student's converse on a thread of its own.
pub fn start_converse(step: &Step, connection: TcpStream, slot: Slot) -> Timed<Result<(), String>> {
    let limits = settings(1, timing::ms(100)).limits;
    timing::start(step, "converse(connection, &limits, &slot)", move || {
        converse(connection, &limits, &slot).map_err(|error| format!("{error:#}"))
    })
}

/// Waits for converse to return Ok(()).
pub fn expect_converse_ok(step: &Step, running: Timed<Result<(), String>>, hint: &str) {
    if let Err(error) = running.finish_within(step, QUICK, hint) {
        step.report()
            .expected("converse to return Ok(())")
            .got(&format!("Err: {error}"))
            .hint(hint)
            .fail();
    }
}
