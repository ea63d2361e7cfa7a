//! What steps 11 to 13 expect of a stop: serve_room_async returns in time with
//! what it did, the listener is gone, and the program does the same on
//! Ctrl-C.

use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use lesson_12_async_chat::{STOPPING_LINE, Stopped, present_line};
use seesaw_checks::DEADLINE;
use seesaw_checks::bytes::show;
use seesaw_checks::chat::Member;
use seesaw_checks::peer::{End, Peer, Received};
use seesaw_checks::report::Step;
use seesaw_checks::serving::SETTLE;
use seesaw_checks::timing::millis;
use seesaw_checks::watched::WatchedServer;

use crate::Room;

/// What serve_room_async returned, within `wait` of the stop; the report if it
/// does not return.
pub fn expect_returned(step: &Step, room: &mut Room, wait: Duration, hint: &str) -> Stopped {
    match room.returned_within(step, wait, hint) {
        Some(stopped) => stopped,
        None => {
            step.note_waited_out();
            step.report()
                .expected(&format!(
                    "serve_room_async to return within {} of the stop, its members gone",
                    millis(wait)
                ))
                .got(&format!(
                    "it had not returned {} after the stop",
                    millis(room.since_stop())
                ))
                .hint(hint)
                .fail()
        }
    }
}

/// How long a member waits for the stop to reach it, and its connection to
/// end: a stop takes milliseconds, so this much of nothing is a stop that
/// never came (short enough that the step reports within 2 s).
const HEARD_STOP: Duration = Duration::from_millis(700);

/// Fails unless `member` hears `first` (what was said before the stop and
/// waited in its outbox), then STOPPING_LINE, then end of file.
pub fn expect_told(step: &Step, room: &mut Room, member: &mut Peer, first: &[u8]) {
    let expected = [first, STOPPING_LINE.as_bytes()].concat();
    let heard = member.read_to_end_within(HEARD_STOP);
    if heard.bytes == expected && heard.end == End::Closed {
        return;
    }
    let seen = what_the_stop_did(room, &heard);
    step.report()
        .did("the check turned stop true; every member reads")
        .expected(&format!("{}, then end of file", show(&expected)))
        .got(&heard.describe())
        .observed(&seen)
        .hint(crate::TELL)
        .fail();
}

/// What the check can tell of a stop that a member did not hear rightly,
/// from what serve_room_async returned (if it has) and from its listener.
fn what_the_stop_did(room: &mut Room, heard: &Received) -> String {
    let after = millis(room.since_stop());
    match room.peek(SETTLE) {
        Some(Ok(stopped)) if stopped.still_open == 0 => {
            return format!(
                "serve_room_async had returned {stopped:?} {after} after the stop, counting no \
                 connection open: the members' tasks are not in the JoinSet it waits for. \
                 Spawn each into the JoinSet (members.spawn): a task left out cannot be \
                 waited for, and dies with the runtime."
            );
        }
        Some(Ok(stopped)) if stopped.cut_off > 0 && room.since_stop() < room.grace => {
            return format!(
                "serve_room_async had returned {stopped:?} {after} after the stop, well before the \
                 grace ({}) ended, its members cut off: the grace was not given. Wait for \
                 the tasks (join_next) up to the grace first, and cut off only those still \
                 running when it ends; they drain their outboxes meanwhile.",
                millis(room.grace)
            );
        }
        _ => {}
    }
    let at = heard
        .bytes
        .windows(STOPPING_LINE.len())
        .position(|window| window == STOPPING_LINE.as_bytes());
    if let Some(at) = at {
        let after = &heard.bytes[at + STOPPING_LINE.len()..];
        if !after.is_empty() {
            return format!(
                "after the stopping line came {}: the room went on after it was closed. Take \
                 every seat out at once, under the one lock of ChatRoom::close, and deliver \
                 only the stopping line (members taken out one by one with leave are \
                 announced as having left).",
                show(after)
            );
        }
        return "the stopping line came, but the connection stayed open: the member's task \
                did not learn of the stop. ChatRoom::close must drop the seats, so that each \
                outbox closes and recv gives None after its last line."
            .to_string();
    }
    let words = STOPPING_LINE.trim_end().as_bytes();
    if heard.bytes.ends_with(words) {
        return "the stopping line came without its newline: every line of the room ends \
                with one. Deliver STOPPING_LINE as it is given."
            .to_string();
    }
    if heard.end == End::Closed {
        return "the connection ended before the stopping line came: the connection was \
                closed (shut down, or its task cut off) where the outbox should have been. \
                Close the outbox (drop the seats, in ChatRoom::close) and let the member's \
                task write what is in it, the stopping line last, before it closes."
            .to_string();
    }
    match TcpStream::connect_timeout(&room.addr, DEADLINE) {
        Err(_) => "nobody heard the stopping line, though the listener is gone (the accept \
                   loop did stop). Close the room first, before waiting for anyone: \
                   ChatRoom::close(STOPPING_LINE) tells every member at once, and the grace \
                   is for them to finish after that. If your code does close the room \
                   first, something blocks the runtime's one thread: a std lock taken twice \
                   (a deadlock: a method of the room that locks, called while close holds \
                   the lock), or std::thread::sleep (tokio::time::sleep waits without \
                   blocking)."
            .to_string(),
        Ok(_) => "nobody heard the stopping line, and the listener still takes clients: the \
                  accept loop has not noticed the stop. Wait for it in the select!, beside \
                  accept: stop.wait_for(|stopping| *stopping), or stop.changed()."
            .to_string(),
    }
}

/// Fails unless serve_room_async's summary is `expected`.
pub fn expect_summary(step: &Step, got: Stopped, expected: Stopped) {
    if got == expected {
        return;
    }
    step.report()
        .expected(&format!("{expected:?}"))
        .got(&format!("{got:?}"))
        .hint(
            "count what happened: `served` every client accepted; `still_open` the \
             connections whose tasks had not ended at the stop; `finished` those that ended \
             within the grace; `cut_off` those still running when it ended.",
        )
        .fail();
}

/// Fails unless a client that comes once the members have been told is
/// refused by the OS: the listener is gone (dropped).
pub fn expect_no_new_client(step: &Step, addr: SocketAddr) {
    let Ok(stream) = TcpStream::connect_timeout(&addr, DEADLINE) else {
        step.transcript().add(format!(
            "check   a new client could not connect to {addr}: refused"
        ));
        return;
    };
    drop(stream);
    step.report()
        .did("the members had heard the stop; then a new client connected")
        .expected("the connection refused: nobody listens once the server is stopping")
        .got("it connected: the OS still takes clients in on your listener, and nobody serves them")
        .hint(
            "once stop turns true, leave the accept loop and drop the listener, before the \
             grace: from then on the OS refuses new clients.",
        )
        .fail();
}

/// Fails unless `latecomer`, greeted before the stop, is refused when it
/// gives its name after: a `*` line that is not the list of a room, then
/// the end.
pub fn expect_too_late_to_join(latecomer: &mut Peer) {
    latecomer.send(b"dave\n");
    let line = latecomer.read_line();
    // The room is empty by now: joining it would bring present_line(&[]).
    let joined = line.bytes == present_line(&[]).as_bytes();
    if line.end == End::Newline && line.bytes.starts_with(b"*") && !joined {
        latecomer.close_sending();
        latecomer.expect_end("after the error line, the connection ends (a gentle close).");
        return;
    }
    latecomer
        .step()
        .report()
        .did("a client greeted before the stop gave its name (dave) after it")
        .expected("one `*` error line (the server is stopping), then end of file")
        .got(&line.describe())
        .hint(
            "a closed room takes nobody in: ChatRoom::close marks it closed (inside.closed), \
             and join (given) then refuses with \"the server is stopping\".",
        )
        .fail();
}

/// The grace the program is given in step 13.
const GRACE: Duration = Duration::from_millis(500);

/// The hint when the program did not stop as it should.
const PROGRAM_STOP: &str = "on Ctrl-C the program (given) turns stop true: serve_room_async must \
                            leave its accept loop, stop gently within the grace, and return \
                            Ok(Stopped); main prints it and exits 0.";

/// Step 13: the program, two members (one never reads), Ctrl-C.
pub fn stops_on_ctrl_c(step: &Step) {
    let (mut server, addr) = WatchedServer::start_listening(
        step,
        seesaw_checks::program!(),
        &["server", "127.0.0.1:0", "--grace", "0.5"],
    );
    let mut alice = Member::join_at(&crate::AT, step, addr, "alice", &[]);
    let deaf = Member::join_at(&crate::AT, step, addr, "deaf", &["alice"]);
    alice.expect_entered("deaf", "tell members who joined.");
    deaf.peer
        .note("check   deaf reads nothing more, and never hangs up");
    server.interrupt(step);
    let pressed = Instant::now();
    let heard = alice.peer.read_to_end_within(DEADLINE);
    if heard.bytes != STOPPING_LINE.as_bytes() || heard.end != End::Closed {
        let report = server
            .report(step)
            .did("alice was in the room, reading; the check pressed Ctrl-C")
            .expected(&format!(
                "{}, then end of file",
                show(STOPPING_LINE.as_bytes())
            ))
            .got(&heard.describe())
            .hint(PROGRAM_STOP);
        server.fail(report);
    }
    alice.peer.close(" (heard the stop)");
    let status = server.exit_within(GRACE + DEADLINE);
    let took = pressed.elapsed();
    let summary = "stopped: served 2 clients; 2 still connected";
    let printed = server.printed(|line| line.starts_with(summary)).is_some();
    if status.and_then(|status| status.code()) != Some(0) || !printed {
        let got = match status {
            None => {
                step.note_waited_out();
                format!(
                    "it was still running {} after Ctrl-C (grace {})",
                    millis(took),
                    millis(GRACE)
                )
            }
            Some(status) => format!("it ended: {status}"),
        };
        let report = server
            .report(step)
            .did("a member that never reads (deaf) was still connected")
            .expected(&format!(
                "`{summary}: ...` on stderr, then exit code 0, within the grace and a little"
            ))
            .got(&got)
            .hint(PROGRAM_STOP);
        server.fail(report);
    }
    let mut deaf = deaf.peer;
    deaf.expect_then_end(
        STOPPING_LINE.as_bytes(),
        "a member that never reads is told too; when the grace ends its connection is \
         closed (its task dropped), an end of file, not a reset.",
    );
}
