//! The checks of lesson 12, in the order you meet them: the first failure is
//! your next step. Run them with `cargo test -p lesson-12-async-chat`.
//!
//! Steps 1-10 are the check as members of your room: your serve_room_async runs
//! on a tokio runtime with one thread, on a listener of the check's, and
//! the check plays its members over real connections (the conversation
//! verbs, and the room's rules every chat room keeps, are in the support
//! crate's `chat` module: lesson 11's room keeps the same ones). Steps 11
//! and 12 stop your serve_room_async as Ctrl-C would (its `stop` turns true);
//! steps 13 and 14 run the lesson's program.

#[path = "checks/stopping.rs"]
mod stopping;

use std::net::SocketAddr;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use lesson_12_async_chat::{MAX_LINE, OUTBOX_LINES, STOPPING_LINE, Stopped, serve_room_async};
use seesaw_checks::DEADLINE;
use seesaw_checks::chat::{self, Member, Where};
use seesaw_checks::localhost::listen_on;
use seesaw_checks::on_tokio;
use seesaw_checks::report::Step;
use tokio::sync::watch;

const CHAPTER: &str = "12-async-chat";

/// Where lesson 12's code keeps each rule of the room: most of it is given
/// (lesson 11's matter); yours is the select! loop (converse) and the server
/// around it (serve_room_async).
pub const AT: Where = Where {
    greeting: "serve_member_async (given) greets each client, and joins it to the room once named: \
               join (given) puts the `*` list in its outbox. converse's select! must write \
               each line of the outbox as it comes, even while the member says nothing.",
    silent_join: "",
    naming: "serve_member_async (given) checks each name (valid_name, then join: false when \
             taken) before anyone is told, and refuses a bad or taken one gently (refuse).",
    one_room: "each client joined a room of its own (there is one ChatRoom, made once in \
               serve_room_async, shared by all: each task gets its own handle on it, \
               Arc::clone)",
    lines: "converse: one select! loop, whose connection branch says each line the member \
            sends (room.say) and whose outbox branch writes each line of the outbox to the \
            member.",
    leaving: "converse returns when the member hangs up (LineRead::End) or its connection \
              fails (an error); serve_member_async (given) then leaves the room and closes.",
    too_long: "LineRead::TooLong: converse returns Parting::TooLong, and serve_member_async (given) \
               leaves the room, then refuses gently.",
    patience: ROOM_PATIENCE,
    accepting: "a newcomer was not greeted while another client stayed connected: the accept \
                loop waits for something else than the next client. Spawn each client's \
                task into the JoinSet and go straight back to accept; never .await a \
                member's task there (join_next waits for one to end: forget ended tasks \
                with try_join_next, which does not wait).",
    non_reader: "no task may wait for a member that does not read, except that member's own: \
                 converse writes only its own outbox's lines, and the room delivers with \
                 try_send (given). Never block the runtime's one thread.",
};

/// How long a member waits for a line the room owes it now: a room sends
/// in microseconds, and a report must come within 2 s of the start.
const ROOM_PATIENCE: Duration = Duration::from_millis(700);

/// The grace of the checks that do not stop the room.
const LONG_GRACE: Duration = Duration::from_secs(2);

/// Your serve_room_async, running in the background until the check stops it.
pub struct Room {
    pub addr: SocketAddr,
    pub grace: Duration,
    stop: watch::Sender<bool>,
    returned: mpsc::Receiver<anyhow::Result<Stopped>>,
    stopped_at: Option<Instant>,
    /// What it returned, once seen: its summary, or the error in words.
    seen: Option<Result<Stopped, String>>,
}

/// Starts your serve_room_async on a listener of the check's, with `grace`. A
/// panic in it, or in a task it spawned, is the cause the report shows.
pub fn start_room(grace: Duration) -> Room {
    let (listener, addr) = listen_on("127.0.0.1:0");
    let (stop, stopping) = watch::channel(false);
    let returned = on_tokio::serve_in_background(move || async move {
        let listener = on_tokio::listener(listener)?;
        serve_room_async(listener, stopping, grace).await
    });
    Room {
        addr,
        grace,
        stop,
        returned,
        stopped_at: None,
        seen: None,
    }
}

impl Room {
    /// Turns `stop` true, as the program's Ctrl-C does.
    pub fn stop(&mut self, step: &Step) {
        step.transcript()
            .add("check   turned stop true (what Ctrl-C does in the program)".to_string());
        self.stopped_at = Some(Instant::now());
        let _ = self.stop.send(true);
    }

    /// What serve_room_async returned, if it returns within `wait`; fails if it
    /// panicked (the panic is the report's cause) or returned an error.
    pub fn returned_within(&mut self, step: &Step, wait: Duration, hint: &str) -> Option<Stopped> {
        let expected = "serve_room_async to return Ok(Stopped { .. }) once stopped";
        match self.peek(wait) {
            Some(Ok(stopped)) => Some(stopped),
            Some(Err(error)) => step
                .report()
                .expected(expected)
                .got(&error)
                .hint(hint)
                .fail(),
            None => None,
        }
    }

    /// What serve_room_async returned, if it has returned within `wait`: its
    /// summary, or what went wrong, in words. This does not fail.
    pub fn peek(&mut self, wait: Duration) -> Option<Result<Stopped, String>> {
        if self.seen.is_none() {
            self.seen = match self.returned.recv_timeout(wait) {
                Ok(Ok(stopped)) => Some(Ok(stopped)),
                Ok(Err(error)) => Some(Err(format!("Err: {error:#}"))),
                Err(mpsc::RecvTimeoutError::Timeout) => None,
                Err(mpsc::RecvTimeoutError::Disconnected) => Some(Err("it panicked".to_string())),
            };
        }
        self.seen.clone()
    }

    /// How long ago the check stopped it.
    pub fn since_stop(&self) -> Duration {
        self.stopped_at.map(|at| at.elapsed()).unwrap_or_default()
    }
}

fn step(title: &str) -> Step {
    Step::new(title, CHAPTER)
}

fn step_01_a_newcomer_is_greeted_and_joins_an_empty_room() {
    let step = step(
        "step 1: a newcomer gets one greeting line; after its name, the `*` list of an empty room",
    );
    let room = start_room(LONG_GRACE);
    chat::expect_joins_an_empty_room(&step, room.addr, &AT);
}

fn step_02_a_bad_or_taken_name_gets_one_line_and_a_gentle_end() {
    let step = step(
        "step 2: a bad or taken name gets one `*` error line and end of file; nobody hears of it",
    );
    let room = start_room(LONG_GRACE);
    chat::expect_names_refused(&step, room.addr, MAX_LINE, &AT);
}

fn step_03_the_newcomer_hears_who_is_present_the_others_hear_it_enter() {
    let step = step(
        "step 3: a newcomer gets the list of everyone else; the others hear `* NAME has entered the room`",
    );
    let room = start_room(LONG_GRACE);
    chat::expect_entries(&step, room.addr, &AT);
}

fn step_04_a_line_reaches_every_other_member_never_the_sender() {
    let step =
        step("step 4: each line reaches every other member as `[NAME] text`, never the sender");
    let room = start_room(LONG_GRACE);
    chat::expect_fan_out(&step, room.addr, &AT);
}

fn step_05_half_a_line_survives_another_member_speaking() {
    let step = step(
        "step 5: half a line sent, another member speaks, then the rest: the whole line arrives",
    );
    let room = start_room(LONG_GRACE);
    chat::expect_half_line_kept(
        &step,
        room.addr,
        "the first half of bob's line was lost when the outbox branch won the select!: the \
         connection's branch must be cancel safe. Read with LineReader::next_line (given), \
         which keeps a half line in the reader, never with read_line, or a read_until whose \
         buffer lives only inside the branch: select! drops the losing branch's future, and \
         what it had read with it.",
        &AT,
    );
}

fn step_06_an_unnamed_client_hears_nothing_of_the_room() {
    let step = step(
        "step 6: a client that has not given a name hears nothing of the room, and leaves unannounced",
    );
    let room = start_room(LONG_GRACE);
    chat::expect_unnamed_hear_nothing(&step, room.addr, &AT);
}

fn step_07_leaving_is_announced_once_to_the_others() {
    let step = step(
        "step 7: when a member hangs up or resets, each other member hears `* NAME has left the room`, once",
    );
    let room = start_room(LONG_GRACE);
    chat::expect_leaves_once(&step, room.addr, &AT);
}

fn step_08_a_line_over_the_limit_drops_the_member_gently() {
    let step = step(
        "step 8: a line of MAX_LINE bytes passes; one byte more gets a `*` line, end of file, and a leave",
    );
    let room = start_room(LONG_GRACE);
    chat::expect_long_line_drops(&step, room.addr, MAX_LINE, &AT);
}

fn step_09_a_member_who_never_reads_does_not_hold_up_the_room() {
    let step = step(
        "step 9: a member who never reads holds up nobody: the others get every line, and it is cut off",
    );
    let room = start_room(LONG_GRACE);
    chat::expect_non_reader_cut_off(&step, room.addr, MAX_LINE, OUTBOX_LINES, &AT);
}

fn step_10_many_members_at_once() {
    let step = step("step 10: twenty members at once: each line reaches the nineteen others");
    let room = start_room(LONG_GRACE);
    chat::expect_many_members(&step, room.addr, 20, &AT);
}

/// The hint when a member did not hear the stop, or its end.
pub const TELL: &str = "when stop turns true, serve_room_async stops accepting and stops gently: \
                    ChatRoom::close delivers STOPPING_LINE to every member and closes \
                    every outbox (it drops the seats); each member's converse writes what \
                    was in its outbox, sees the outbox closed (recv gives None) and returns, \
                    and serve_member_async (given) closes gently.";

fn step_11_a_stop_tells_every_member_and_closes_gently() {
    let step = step(
        "step 11: a stop tells every member, delivers what was said before it, closes each gently, and returns",
    );
    let mut room = start_room(LONG_GRACE);
    let mut alice = Member::join_at(&AT, &step, room.addr, "alice", &[]);
    let mut bob = Member::join_at(&AT, &step, room.addr, "bob", &["alice"]);
    alice.expect_entered("bob", "tell members who joined.");
    let mut carol = Member::join_at(&AT, &step, room.addr, "carol", &["alice", "bob"]);
    alice.expect_entered("carol", "tell members who joined.");
    bob.expect_entered("carol", "tell members who joined.");
    // Greeted before the stop, it gives its name after: too late to join.
    let mut latecomer = chat::greeted(&step, room.addr, "latecomer").patience(ROOM_PATIENCE);
    // carol reads nothing more until the stop: bob's line waits for it.
    bob.say("one more before the stop");
    alice.expect_said("bob", "one more before the stop", AT.lines);
    room.stop(&step);
    let said = chat::said("bob", "one more before the stop");
    stopping::expect_told(&step, &mut room, &mut carol.peer, &said);
    for member in [&mut alice, &mut bob] {
        stopping::expect_told(&step, &mut room, &mut member.peer, b"");
    }
    stopping::expect_no_new_client(&step, room.addr);
    stopping::expect_too_late_to_join(&mut latecomer);
    for member in [alice, bob, carol] {
        member.peer.close(" (heard the stop)");
    }
    let stopped = stopping::expect_returned(
        &step,
        &mut room,
        ROOM_PATIENCE,
        "every member had heard the stop and its end of file by then, yet serve_room_async \
         had not returned: it waits longer than its members do. Wait for the tasks as they \
         end (join_next, under the grace's deadline), and return at once when the last one \
         has: the grace is a limit, not a pause.",
    );
    let everyone = Stopped {
        served: 4,
        still_open: 4,
        finished: 4,
        cut_off: 0,
    };
    stopping::expect_summary(&step, stopped, everyone);
}

fn step_12_a_member_who_never_reads_does_not_hold_the_stop_past_the_grace() {
    let step = step(
        "step 12: a member that never reads nor hangs up is cut off when the grace ends, not waited for",
    );
    let grace = Duration::from_millis(300);
    let mut room = start_room(grace);
    let mut alice = Member::join_at(&AT, &step, room.addr, "alice", &[]);
    let deaf = Member::join_at(&AT, &step, room.addr, "deaf", &["alice"]);
    alice.expect_entered("deaf", "tell members who joined.");
    deaf.peer
        .note("check   deaf reads nothing more, and never hangs up");
    room.stop(&step);
    alice.peer.expect_then_end(STOPPING_LINE.as_bytes(), TELL);
    alice.peer.close(" (heard the stop)");
    let hint = "the grace is a limit: wait for the members' tasks at most `grace` \
                (tokio::time::timeout_at, or timeout, around join_next), then cut off the \
                tasks still running (JoinSet::shutdown or abort_all): a member that \
                neither reads nor hangs up would keep the server for ever.";
    let stopped = stopping::expect_returned(&step, &mut room, grace + DEADLINE / 2, hint);
    if stopped.cut_off == 0 || stopped.still_open != 2 || stopped.served != 2 {
        step.report()
            .expected("Stopped { served: 2, still_open: 2, finished and cut_off adding up to 2, cut_off at least 1 (deaf) }")
            .got(&format!("{stopped:?}"))
            .hint(&format!(
                "{hint} Count what happened: the connections open at the stop, those that \
                 ended within the grace, and those cut off."
            ))
            .fail();
    }
    let mut deaf = deaf.peer;
    deaf.expect_then_end(
        STOPPING_LINE.as_bytes(),
        "a member cut off at the end of the grace was told too, and its connection closed \
         (its task dropped, with the connection).",
    );
}

fn step_13_the_server_program_stops_on_ctrl_c() {
    let step = step(
        "step 13: `server --grace` stops on Ctrl-C: members told, closed gently, a summary, exit code 0",
    );
    if cfg!(not(unix)) {
        return step.skip(
            "only Unix lets one program send another Ctrl-C (a SIGINT): on this OS, stop \
             your server with Ctrl-C yourself, and see it tell its members",
        );
    }
    stopping::stops_on_ctrl_c(&step);
}

fn step_14_the_server_program_explains_an_address_in_use() {
    let step = step("step 14: `server` explains an address in use in one line, exit code 1");
    seesaw_checks::program::expect_address_in_use_explained(
        &step,
        seesaw_checks::program!(),
        &["server"],
    );
}

seesaw_checks::checks![
    step_01_a_newcomer_is_greeted_and_joins_an_empty_room,
    step_02_a_bad_or_taken_name_gets_one_line_and_a_gentle_end,
    step_03_the_newcomer_hears_who_is_present_the_others_hear_it_enter,
    step_04_a_line_reaches_every_other_member_never_the_sender,
    step_05_half_a_line_survives_another_member_speaking,
    step_06_an_unnamed_client_hears_nothing_of_the_room,
    step_07_leaving_is_announced_once_to_the_others,
    step_08_a_line_over_the_limit_drops_the_member_gently,
    step_09_a_member_who_never_reads_does_not_hold_up_the_room,
    step_10_many_members_at_once,
    step_11_a_stop_tells_every_member_and_closes_gently,
    step_12_a_member_who_never_reads_does_not_hold_the_stop_past_the_grace,
    step_13_the_server_program_stops_on_ctrl_c,
    step_14_the_server_program_explains_an_address_in_use,
];
