//! The checks of lesson 8, in the order you meet them: the first failure is
//! your next step. Run them with `cargo test -p lesson-08-shutdown`.
//!
//! First the pieces, one at a time, on connections the check makes: the
//! Conversations list (admit, the Slot's drop, cut_short), turn_away and
//! converse. Then serve_until_stopped as a whole, with the check as its
//! clients and holding its Stop: the limit, the places given back, the stop,
//! the grace and the goodbye. Then the program, stopped for real with Ctrl-C
//! (a SIGINT, on Unix). Last, lesson 7's client (yours) against your server.
//!
//! Every limit is an argument, so the checks take a grace of 100 ms or so,
//! never the program's 5 s. And everything a working server does here takes
//! it microseconds, so the checks wait QUICK (half a second) for each event:
//! a wrong answer is explained within 2 s even in the last step.
//!
//! The helpers each group of steps shares are in the folder `checks/`.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use lesson_08_shutdown::{
    BUSY_REPLY, Client, Conversations, GOODBYE_TIME, IDLE_REPLY, Limits, MAX_MESSAGE,
    SHUTDOWN_REPLY, Settings, Summary, TOO_LONG_REPLY, turn_away,
};
use seesaw_checks::bytes::{difference, show};
use seesaw_checks::localhost;
use seesaw_checks::peer::{self, End, Peer};
use seesaw_checks::program;
use seesaw_checks::program::expect_address_in_use_explained;
use seesaw_checks::report::Step;
use seesaw_checks::timing::{self, ms};
use seesaw_checks::watched::WatchedServer;

#[cfg(target_os = "linux")]
#[path = "checks/files.rs"]
mod files;
#[path = "checks/pieces.rs"]
mod pieces;
#[path = "checks/program.rs"]
mod program_run;
#[path = "checks/serving.rs"]
mod serving;

use pieces::{
    SENDING_SIDE_TOO, admit, admit_one, blocked_read, expect_converse_ok, expect_count,
    expect_never_past_the_limit_at_once, expect_nothing_written, expect_woken_with_end_of_file,
    give_back, start_converse, start_converse_held,
};
use program_run::{expect_goodbye, expect_summary_and_exit};
use serving::{
    Late, busy_hint, expect_goodbye_when_the_grace_ends, expect_no_service, expect_served,
    start_server,
};

const CHAPTER: &str = "08-shutdown";

/// How long a check waits for something a working server does in
/// microseconds: an echo, a busy line, a function's return, a goodbye that
/// is due. Short, so that a wrong answer is explained within 2 s whichever
/// step it fails; long enough for a loaded machine.
const QUICK: Duration = Duration::from_millis(500);

/// How long a check listens for something that must not come.
const QUIET: Duration = Duration::from_millis(100);

/// Lesson 7's limits, far out of the way: no check but step 12 meets them.
const FAR: Duration = Duration::from_secs(10);

/// The settings of a check: `max_clients`, `grace`, and limits out of the way.
fn settings(max_clients: usize, grace: Duration) -> Settings {
    Settings {
        max_clients,
        grace,
        limits: Limits {
            idle: FAR,
            message: FAR,
            write: Duration::from_secs(1),
        },
    }
}

/// The check connects a client to the student's server at `addr`.
fn client(step: &Step, addr: SocketAddr) -> Peer {
    Peer::connect(step, addr).patience(QUICK)
}

/// A connection: the check's client, and the socket to hand to the student's code.
fn pair(step: &Step) -> (Peer, TcpStream) {
    let (client, theirs) = peer::connected_pair(step);
    (client.patience(QUICK), theirs)
}

const ONE_AT_A_TIME: &str = "the server still talks to another client and has not served \
     this one. Serve each admitted client on a thread of its own (serve_client_in_slot, \
     given), and go straight back to accepting.";

// ---------------------------------------------------------------------------
// The pieces: Conversations, Slot, turn_away, converse.

fn step_01_admit_takes_clients_up_to_the_limit() {
    let step = Step::new(
        "step 1: Conversations::admit takes clients in up to max_clients, then says no",
        CHAPTER,
    );
    let conversations = Conversations::new();
    let (_first_client, first) = pair(&step);
    let (_second_client, second) = pair(&step);
    let (_third_client, third) = pair(&step);
    let mut slots = Vec::new();
    for (number, connection) in [first, second].into_iter().enumerate() {
        let (_connection, slot) = admit(&step, &conversations, connection, 2);
        let Some(slot) = slot else {
            step.report()
                .did(&format!(
                    "admitted {number} connections with max_clients 2, then one more"
                ))
                .expected("Some(slot): there is room")
                .got("None")
                .hint(
                    "admit says no only when max_clients conversations already go on; \
                     below that it keeps the connection in the list and returns Some(slot).",
                )
                .fail();
        };
        slots.push(slot);
        expect_count(
            &step,
            &conversations,
            number + 1,
            &format!("admitted {} connections with max_clients 2", number + 1),
            "admit makes a second handle on each connection it takes in (try_clone) and \
             inserts it into the list, under the conversation's number: how many the list \
             holds is how many conversations go on.",
        );
    }
    let (third, slot) = admit(&step, &conversations, third, 2);
    if slot.is_some() {
        step.report()
            .did("admitted 2 connections with max_clients 2, then a third")
            .expected("None: two conversations already go on")
            .got("Some(slot)")
            .hint(
                "admit took one client too many: say no as soon as the count has reached \
                 max_clients (`count >= max_clients`), before you take the connection in.",
            )
            .fail();
    }
    expect_count(
        &step,
        &conversations,
        2,
        "admitted 2 connections with max_clients 2; the third was refused",
        "a connection that is refused is not kept in the list.",
    );
    let (_third, slot) = admit(&step, &Conversations::new(), third, 0);
    if slot.is_some() {
        step.report()
            .did("called admit with max_clients 0 on an empty list")
            .expected("None: a limit of 0 admits nobody")
            .got("Some(slot)")
            .hint("the test is `count >= max_clients`, before taking the connection in.")
            .fail();
    }
    expect_never_past_the_limit_at_once(&step);
}

fn step_02_a_dropped_slot_gives_its_place_back() {
    let step = Step::new("step 2: dropping a Slot gives its place back", CHAPTER);
    let conversations = Conversations::new();
    let (_client, connection) = pair(&step);
    let (connection, slot) = admit_one(&step, &conversations, connection);
    give_back(&step, slot);
    expect_count(
        &step,
        &conversations,
        0,
        "admitted a connection, then dropped its Slot",
        "Slot's drop gives the place back: it removes the conversation's handle from \
         the list (by its number, with remove), so that it counts no more.",
    );
    let (_connection, slot) = admit(&step, &conversations, connection, 1);
    if slot.is_none() {
        step.report()
            .did("admitted a connection with max_clients 1, dropped its Slot, admitted again")
            .expected("Some(slot): the place was given back")
            .got("None")
            .hint("Slot's drop must take the handle out of the list.")
            .fail();
    }
}

fn step_03_a_slot_is_given_back_when_its_conversation_panics() {
    let step = Step::new(
        "step 3: a conversation that panics still gives its place back",
        CHAPTER,
    );
    let conversations = Conversations::new();
    let (_client, connection) = pair(&step);
    let (connection, slot) = admit_one(&step, &conversations, connection);
    step.transcript().add(
        "check   a thread holding the Slot panicked (the check's own panic, on purpose)"
            .to_string(),
    );
    // A conversation's thread that panics: the Slot is dropped on the way out.
    let doomed = thread::spawn(move || {
        let _slot = slot;
        panic!("a conversation that panics (the check's own panic, on purpose)");
    });
    let _ = doomed.join();
    let (_connection, slot) = admit(&step, &conversations, connection, 1);
    if slot.is_none() {
        step.report()
            .did("a thread that held a Slot panicked; then the check admitted a new connection, max_clients 1")
            .expected("Some(slot): the panicking conversation gave its place back")
            .got("None: its place is lost for ever")
            .hint(
                "give the place back in Slot's drop, which Rust runs when the thread \
                 unwinds from a panic too; code at the end of the conversation never runs then.",
            )
            .fail();
    }
}

fn step_04_the_last_slot_given_back_wakes_the_waiting_server() {
    let step = Step::new(
        "step 4: when the last conversation ends, a server waiting for it wakes at once",
        CHAPTER,
    );
    let conversations = Conversations::new();
    let (_client, connection) = pair(&step);
    let (_connection, slot) = admit_one(&step, &conversations, connection);
    let waiter = conversations.clone();
    let began = Instant::now();
    let waiting = timing::start(&step, "wait_until_all_ended(600 ms)", move || {
        (waiter.wait_until_all_ended(ms(600)), began.elapsed())
    });
    // The waiter waits; a moment later (pacing, not synchronising: if the
    // slot went first, the waiter would only return sooner) the slot goes.
    thread::sleep(ms(30));
    step.transcript().add(
        "check   wait_until_all_ended(600 ms) waits; the last Slot is dropped after 30 ms"
            .to_string(),
    );
    give_back(&step, slot);
    let (all_ended, after) = waiting.finish_within(
        &step,
        QUICK + ms(600),
        "wait_until_all_ended (given) returns within 600 ms",
    );
    if !all_ended || after > ms(300) {
        step.report()
            .expected("wait_until_all_ended(600 ms) to return true soon after the last Slot was dropped (at 30 ms)")
            .got(&format!(
                "it returned {all_ended} after {} ms",
                after.as_millis()
            ))
            .hint(
                "after taking its handle out of the list, Slot's drop wakes whoever waits \
                 (notify_all on the Condvar `ended`); otherwise a stopping server waits out \
                 its whole grace even when every client has gone.",
            )
            .fail();
    }
}

fn step_05_cut_short_shuts_down_reading_only() {
    let step = Step::new(
        "step 5: cut_short wakes each conversation's read with end of file, and writes nothing",
        CHAPTER,
    );
    let conversations = Conversations::new();
    let (mut first_client, first) = pair(&step);
    let (mut second_client, second) = pair(&step);
    let (first, _first_slot) = admit(&step, &conversations, first, 5);
    let (_second, _second_slot) = admit(&step, &conversations, second, 5);
    // A conversation's thread, blocked in a read of its client.
    let read_ended = blocked_read(&first);
    let list = conversations.clone();
    let cut = timing::run_within(
        &step,
        "conversations.cut_short()",
        QUICK,
        "cut_short shuts down each socket's reading side and returns: nothing in it waits.",
        move || list.cut_short(),
    );
    step.transcript()
        .add(format!("check   cut_short() returned {cut}"));
    if cut != 2 {
        step.report()
            .did("admitted 2 connections, then called cut_short()")
            .expected("2: how many conversations it cut short")
            .got(&format!("{cut}"))
            .hint("return how many conversations the list holds.")
            .fail();
    }
    if !conversations.was_cut() {
        step.report()
            .did("called cut_short()")
            .expected("conversations.was_cut() to be true afterwards")
            .got("false")
            .hint(
                "cut_short marks the conversations cut (the `cut` field): each conversation's \
                 thread asks, once its seesaw ends, whether to say goodbye.",
            )
            .fail();
    }
    expect_woken_with_end_of_file(&step, read_ended);
    expect_nothing_written(&step, &mut second_client);
    // The sending side still works: the conversation writes its goodbye.
    let sent = (&first).write_all(b"goodbye\n");
    let reply = first_client.read_line();
    if sent.is_err() || reply.bytes != b"goodbye\n" {
        step.report()
            .did("after cut_short(), the server's side wrote b\"goodbye\\n\" to its client")
            .expected("the client to read b\"goodbye\\n\"")
            .got_received(b"goodbye\n", &reply)
            .observed(SENDING_SIDE_TOO)
            .fail();
    }
}

/// A turn_away that closed with the client's message unread.
const UNREAD_RESET: &str = "the connection was closed with the client's message unread, so \
     the OS reset it; a reset can destroy the busy line before the client reads it. Close \
     with close_gently (lesson 5), which reads what the client still sends.";

fn step_06_turn_away_says_busy_and_closes_gently() {
    let step = Step::new(
        "step 6: turn_away writes the busy line and closes gently",
        CHAPTER,
    );
    let (mut client, connection) = pair(&step);
    // A client that speaks before it reads: closing with its message unread
    // would reset the connection, and the busy line could be lost.
    client.send(b"let me in, please\n");
    let peer = client.local_addr();
    let running = timing::start(&step, "turn_away(connection, peer)", move || {
        turn_away(connection, peer)
    });
    let line = client.read_line();
    if line.bytes != BUSY_REPLY || line.end != End::Newline {
        let report = step
            .report()
            .did("the client sent a message, then read")
            .expected(&show(BUSY_REPLY))
            .got_received(BUSY_REPLY, &line)
            .hint(
                "write BUSY_REPLY, then close with close_gently (lesson 5): it shuts down the \
                 sending side and reads what the client still sends, so that the line is \
                 not lost to a reset.",
            );
        match (line.end, line.bytes.is_empty()) {
            (End::Closed, true) => report.observed(
                "the connection was closed without a word. In turn_away, write BUSY_REPLY \
                 first, then close gently (close_gently): the client learns why it is not \
                 served.",
            ),
            (End::Failed(ErrorKind::ConnectionReset), _) => report.observed(UNREAD_RESET),
            _ => report,
        }
        .fail();
    }
    let rest = client.read_to_end();
    if rest.end == End::Failed(ErrorKind::ConnectionReset) {
        step.report()
            .did("read the busy line, then went on reading")
            .expected("end of file, and nothing more")
            .got(&rest.describe())
            .observed(UNREAD_RESET)
            .fail();
    }
    if !rest.bytes.is_empty() || rest.end != End::Closed {
        step.report()
            .did("read the busy line, then went on reading")
            .expected("end of file, and nothing more")
            .got_received(b"", &rest)
            .hint("after the busy line, close: the client is not served.")
            .fail();
    }
    drop(client);
    running.finish_within(
        &step,
        QUICK,
        "turn_away must return once the client has closed too (close_gently does).",
    );
}

fn step_07_converse_echoes_until_the_client_hangs_up() {
    let step = Step::new(
        "step 7: converse echoes every message, bytes exact, and no goodbye to a client that hangs up",
        CHAPTER,
    );
    let conversations = Conversations::new();
    let (mut client, connection) = pair(&step);
    let (connection, slot) = admit_one(&step, &conversations, connection);
    let running = start_converse(&step, connection, slot);
    let hint = "serve the client with serve_connection_within(connection, limits) (given, \
                lesson 7), and return what it returns.";
    client.expect_echo(b"hello\n", hint);
    client.expect_echo(b" \tbytes \xff\x00 as they are\r\n", hint);
    client.send(b"a tail");
    client.close_sending();
    client.expect_then_end(
        b"a tail",
        "a client that hangs up by itself gets its tail back and no goodbye, even from a \
         server that is stopping: say goodbye only if the slot says the server cut the \
         conversation short (was_cut).",
    );
    expect_converse_ok(
        &step,
        running,
        "converse returns once the seesaw has ended: when the client hung up, Ok(()).",
    );
}

fn step_08_converse_says_goodbye_when_cut_short() {
    let step = Step::new(
        "step 8: a conversation cut short says goodbye (SHUTDOWN_REPLY) and closes gently",
        CHAPTER,
    );
    let conversations = Conversations::new();
    let (mut client, connection) = pair(&step);
    let (connection, slot) = admit_one(&step, &conversations, connection);
    let (running, go) = start_converse_held(&step, connection, slot);
    client.expect_echo(
        b"before the cut\n",
        "serve the client with serve_connection_within(connection, limits) (given, lesson 7).",
    );
    client.note("check   cut the conversations short (cut_short)");
    conversations.cut_short();
    let goodbye = client.read_line();
    if goodbye.bytes != SHUTDOWN_REPLY || goodbye.end != End::Newline {
        let report = step
            .report()
            .did("one echo, then the check called cut_short(); the client waited, silent")
            .expected(&show(SHUTDOWN_REPLY))
            .got_received(SHUTDOWN_REPLY, &goodbye);
        match goodbye.bytes.is_empty() && goodbye.end != End::Failed(ErrorKind::ConnectionReset) {
            true => report.observed(NO_GOODBYE),
            false => report.hint(NO_GOODBYE),
        }
        .fail();
    }
    // A client that still talks as the conversation closes.
    client.send(b"wait, one more thing\n");
    client.note("check   (converse's thread drops its Slot, the last handle, only now)");
    let _ = go.send(());
    let rest = client.read_to_end();
    if rest.end == End::Failed(ErrorKind::ConnectionReset) {
        step.report()
            .did("read the goodbye, then sent one more line, then went on reading")
            .expected("end of file, and nothing more")
            .got(&rest.describe())
            .observed(
                "the connection was reset: it was closed after the goodbye with the \
                 client's last line unread, and a reset can destroy the goodbye before the \
                 client reads it. After the goodbye, close gently: close_gently shuts down \
                 the sending side first, so the client reads end of file whatever it still \
                 sends.",
            )
            .fail();
    }
    if !rest.bytes.is_empty() || rest.end != End::Closed {
        step.report()
            .did("read the goodbye, then sent one more line, then went on reading")
            .expected("end of file, and nothing more")
            .got_received(b"", &rest)
            .hint("after the goodbye, close gently (close_gently), and return Ok(()).")
            .fail();
    }
    drop(client);
    expect_converse_ok(
        &step,
        running,
        "after the goodbye, close gently (close_gently returns once the client has closed \
         too), and return Ok(()).",
    );
}

/// What a conversation cut short owes its client.
const NO_GOODBYE: &str = "cut short, the seesaw ends as if the client had hung up. Then ask \
     the slot (was_cut): if the server cut the conversation, write SHUTDOWN_REPLY through the \
     Slot's handle (slot.socket()) and close gently.";

// ---------------------------------------------------------------------------
// serve_until_stopped, in this process, with the check as its clients.

fn step_09_serve_until_stopped_serves_clients_at_once() {
    let step = Step::new(
        "step 9: serve_until_stopped serves several clients at once, bytes exact",
        CHAPTER,
    );
    let server = start_server(&step, settings(4, ms(100)));
    let mut idle = client(&step, server.addr()).named("idle");
    let mut busy = client(&step, server.addr()).named("busy");
    server.expect_echo(&step, &mut busy, b"is anybody there?\n", ONE_AT_A_TIME);
    server.expect_echo(&step, &mut idle, b"my turn now\n", ONE_AT_A_TIME);
    server.expect_echo(
        &step,
        &mut busy,
        b" \tbytes \xff\x00 as they are\r\n",
        ONE_AT_A_TIME,
    );
    busy.send(b"a tail");
    busy.close_sending();
    busy.expect_then_end(
        b"a tail",
        "serve each client with serve_client_in_slot (given), which runs your converse.",
    );
    server.expect_still_serving(&step);
}

fn step_10_the_client_over_the_limit_is_told_busy_at_once() {
    let step = Step::new(
        "step 10: with max_clients conversations going on, the next client gets the busy line at once",
        CHAPTER,
    );
    let server = start_server(&step, settings(2, ms(100)));
    let mut first = client(&step, server.addr()).named("first");
    server.expect_echo(&step, &mut first, b"first\n", ONE_AT_A_TIME);
    let mut second = client(&step, server.addr()).named("second");
    server.expect_echo(&step, &mut second, b"second\n", ONE_AT_A_TIME);
    // The third says nothing: it is told at once, not when it speaks.
    let mut third = client(&step, server.addr()).named("third");
    let answer = third.read_for(QUICK);
    if answer.bytes != BUSY_REPLY || answer.end != End::Closed {
        step.report()
            .did("two clients are served (max_clients 2); a third connected and waited, silent")
            .expected(&format!("{} at once, then end of file", show(BUSY_REPLY)))
            .got(&answer.describe())
            .observed(busy_hint(&answer))
            .fail();
    }
    let undisturbed = "turning a client away must not disturb the conversations going on.";
    server.expect_echo(&step, &mut first, b"still served?\n", undisturbed);
    server.expect_echo(&step, &mut second, b"me too?\n", undisturbed);
    // The third keeps its connection open: turning it away must not keep
    // the server from the next client.
    let mut fourth = client(&step, server.addr()).named("fourth");
    let answer = fourth.read_for(ms(400));
    if answer.bytes != BUSY_REPLY {
        step.report()
            .did("a third client was turned away and kept its connection open; a fourth connected")
            .expected(&format!("{} within 400 ms", show(BUSY_REPLY)))
            .got(&answer.describe())
            .observed(
                "the server was still busy with the third client: turning a client away \
                 ends with a lingering close that waits up to a second for the client. \
                 Do it on a thread of its own, and go straight back to accepting.",
            )
            .fail();
    }
    drop(third);
    server.expect_still_serving(&step);
}

fn step_11_a_client_that_leaves_gives_its_place_back() {
    let step = Step::new(
        "step 11: once a client leaves, its place goes to a new client",
        CHAPTER,
    );
    let server = start_server(&step, settings(1, ms(100)));
    let hint = "the place of a client that has left is given back when its Slot is dropped: \
                move the Slot into the conversation's thread (serve_client_in_slot takes it), \
                so that it is dropped when the thread is done.";
    for round in 1..=3 {
        let message = format!("client {round} of 3, one at a time\n");
        let mut client = expect_served(&step, server.addr(), message.as_bytes(), hint);
        client.close_sending();
        client.expect_end("a client that hangs up gets end of file, and no goodbye.");
    }
    server.expect_still_serving(&step);
}

fn step_12_a_conversation_that_fails_gives_its_place_back() {
    let step = Step::new(
        "step 12: a conversation that ends in error (reset, too long, idle) gives its place back",
        CHAPTER,
    );
    let mut with_idle_limit = settings(1, ms(100));
    with_idle_limit.limits.idle = ms(100);
    let server = start_server(&step, with_idle_limit);
    let hint = "a conversation that ends in an error must give its place back too: the Slot \
                is dropped however the thread ends. Do not count by hand (a count you \
                lower at the end of the conversation is never lowered when it returns early).";

    // A client that vanishes in the middle of a message: a reset.
    let mut doomed = expect_served(&step, server.addr(), b"hello\n", hint);
    // Its echo comes back unread: closing then resets the connection.
    doomed.send(b"hello again\n");
    doomed.send(b"half a mess");
    doomed.reset();

    // A client whose message is too long gets the error line.
    let mut flooder = expect_served(&step, server.addr(), b"I am next\n", hint);
    flooder.send_in_background(vec![b'x'; MAX_MESSAGE + 1]);
    flooder.note(format!(
        "check   that was {MAX_MESSAGE} + 1 bytes without a newline"
    ));
    flooder.expect_line(
        TOO_LONG_REPLY,
        "serve each client with serve_client_in_slot (given), which runs your converse.",
    );
    drop(flooder);

    // A client that stays silent past the idle limit (100 ms here).
    let mut silent = expect_served(&step, server.addr(), b"and then silence\n", hint);
    silent.note("check   stays silent past the idle limit (settings.limits.idle: 100 ms)");
    silent.expect_line(
        IDLE_REPLY,
        "pass settings.limits on to each conversation (serve_client_in_slot takes them).",
    );
    drop(silent);

    let mut last = expect_served(&step, server.addr(), b"is there room for me?\n", hint);
    server.expect_echo(&step, &mut last, b"yes\n", hint);
    server.expect_still_serving(&step);
}

fn step_13_stop_wakes_the_server_and_it_returns() {
    let step = Step::new(
        "step 13: triggering the stop wakes a server that waits in accept; it returns and refuses clients",
        CHAPTER,
    );
    let server = start_server(&step, settings(4, ms(100)));
    // A served client proves the loop runs; then it waits in accept.
    let mut client = client(&step, server.addr());
    server.expect_echo(&step, &mut client, b"hello\n", ONE_AT_A_TIME);
    client.close_sending();
    client.expect_end("no goodbye to a client that hangs up.");
    server.trigger(&step);
    server.expect_summary(
        &step,
        Summary {
            served: 1,
            cut_short: 0,
        },
        QUICK,
        "the server still waits. Accept returned for the wake-up call (Stop::trigger \
         connects to the listener): after each accept, look at the flag \
         (stop.is_stopping()), and if it is raised, stop accepting; with no conversation \
         going on, return at once.",
    );
    expect_no_service(
        &step,
        server.addr(),
        Late::ToldAtOnce,
        "serve_until_stopped has returned",
        "close the listener when you stop accepting (drop it): clients are then refused.",
    );
}

fn step_14_conversations_in_flight_finish_within_the_grace() {
    let step = Step::new(
        "step 14: once stopped, no new client is served, and the conversations going on may finish",
        CHAPTER,
    );
    let server = start_server(&step, settings(4, ms(1000)));
    let mut client = client(&step, server.addr());
    server.expect_echo(&step, &mut client, b"hello\n", ONE_AT_A_TIME);
    server.trigger(&step);
    expect_no_service(
        &step,
        server.addr(),
        Late::ToldAtOnce,
        "the stop was triggered",
        "once the stop is triggered, serve no new client: stop accepting, and close the \
         listener so that new clients are refused and can try elsewhere.",
    );
    client.send_in_pieces(&[b"one more message, ", b"in pieces\n"]);
    // The server is stopping, and is to end: the echo is the conversation's.
    client.expect_line(
        b"one more message, in pieces\n",
        "the conversation was cut short at once: conversations going on may finish \
         during the grace (settings.grace, 1000 ms here). Wait for them \
         (wait_until_all_ended) before you cut them short.",
    );
    client.close_sending();
    client.expect_end("a client that hangs up during the grace gets end of file and no goodbye.");
    server.expect_summary(
        &step,
        Summary {
            served: 1,
            cut_short: 0,
        },
        ms(400),
        "every conversation has ended, yet the server waits on: wait for the conversations \
         at most the grace, and no longer than they need (wait_until_all_ended returns as \
         soon as the last Slot is dropped, if Slot's drop wakes it). Never sleep the grace.",
    );
}

fn step_15_the_rest_get_a_goodbye_when_the_grace_ends() {
    let step = Step::new(
        "step 15: when the grace ends, each conversation still going on gets SHUTDOWN_REPLY",
        CHAPTER,
    );
    let grace = ms(100);
    let server = start_server(&step, settings(2, grace));
    let mut first = client(&step, server.addr()).named("first");
    server.expect_echo(&step, &mut first, b"first\n", ONE_AT_A_TIME);
    let mut second = client(&step, server.addr()).named("second");
    server.expect_echo(&step, &mut second, b"second\n", ONE_AT_A_TIME);
    // A third is turned away (max_clients 2): it is not counted as served.
    let mut third = client(&step, server.addr()).named("third");
    third.expect_then_end(
        BUSY_REPLY,
        "turn the client over the limit away with the busy line.",
    );
    let stopped = server.trigger(&step);
    for client in [&mut first, &mut second] {
        expect_goodbye_when_the_grace_ends(&step, client, stopped, grace);
    }
    server.expect_summary(
        &step,
        Summary {
            served: 2,
            cut_short: 2,
        },
        GOODBYE_TIME + QUICK,
        "the conversations have said goodbye, yet the server waits on: after cut_short, \
         wait for them at most GOODBYE_TIME, and no longer than they need.",
    );
}

// ---------------------------------------------------------------------------
// The program.

fn step_16_the_program_tells_the_client_over_the_limit_it_is_busy() {
    let step = Step::new(
        "step 16: `server --max-clients 1` serves one client and turns the next away, narrating it",
        CHAPTER,
    );
    let mut server = WatchedServer::start(
        program!(),
        &["server", localhost::ipv6_if_any(), "--max-clients", "1"],
    );
    let addr = server.listening_address(&step);
    let mut first = server.connect(&step, addr).patience(QUICK);
    server.expect_echo(&step, &mut first, b"hello over IPv6\n", ONE_AT_A_TIME);
    let mut second = server.connect(&step, addr).patience(QUICK);
    let turned = format!("busy: turned {} away", second.local_addr());
    let answer = second.read_for(QUICK);
    if answer.bytes != BUSY_REPLY {
        let report = server
            .report(&step)
            .did("one client is served (--max-clients 1); a second connected")
            .expected(&format!("{} at once", show(BUSY_REPLY)))
            .got(&answer.describe())
            .hint("admit each client with settings.max_clients; when it says no, turn_away.");
        server.fail(report);
    }
    drop(second);
    server.expect_said(
        &step,
        &turned,
        "turn_away narrates each client it turns away on stderr: `busy: turned PEER away`, \
         with the address accept returned (its Display writes IPv6 in brackets).",
    );
    // The program's client, turned away, says so and exits 1.
    let addr_text = addr.to_string();
    let finished = program::run(program!(), &["client", &addr_text], b"hi\n");
    finished
        .expect_stdout(&step, BUSY_REPLY)
        .expect_one_line_error(&step, &["busy"]);
    server.expect_echo(
        &step,
        &mut first,
        b"still served?\n",
        "turning a client away must not disturb the conversation going on.",
    );
}

fn step_17_ctrl_c_stops_the_program_well() {
    let step = Step::new(
        "step 17: Ctrl-C stops the program well: no new clients, a goodbye, a summary, exit code 0",
        CHAPTER,
    );
    if cfg!(not(unix)) {
        return step.skip(
            "only Unix lets one program send another Ctrl-C (a SIGINT): on this OS, stop \
             your server with Ctrl-C yourself, and see it say goodbye",
        );
    }
    let grace = ms(150);
    let args = [
        "server",
        "127.0.0.1:0",
        "--max-clients",
        "4",
        "--grace",
        "150",
    ];
    let (mut server, addr) = WatchedServer::start_listening(&step, program!(), &args);
    let mut idle = server.connect(&step, addr).patience(QUICK).named("idle");
    server.expect_echo(&step, &mut idle, b"I will stay\n", ONE_AT_A_TIME);
    let mut leaving = server.connect(&step, addr).patience(QUICK).named("leaving");
    server.expect_echo(&step, &mut leaving, b"I will finish\n", ONE_AT_A_TIME);
    server.interrupt(&step);
    let stopped = Instant::now();
    server.expect_said(
        &step,
        "stopping",
        "main.rs (given) says `stopping: Ctrl-C` as it triggers the stop: did the program end?",
    );
    expect_no_service(
        &step,
        addr,
        Late::NotServed,
        "the program said it is stopping",
        "once the stop is triggered, serve no new client, and close the listener.",
    );
    server.expect_echo(
        &step,
        &mut leaving,
        b"one more, during the grace\n",
        "a conversation going on may finish during the grace (--grace 150 here): do not \
         cut it short at once.",
    );
    leaving.close_sending();
    leaving.expect_end("a client that hangs up during the grace gets no goodbye.");
    expect_goodbye(&step, &mut server, &mut idle, stopped, grace);
    expect_summary_and_exit(&step, &mut server, "stopped: served 2 clients, 1 cut short");
}

fn step_18_the_program_explains_an_address_in_use() {
    let step = Step::new(
        "step 18: `server` explains an address in use in one line, exit code 1",
        CHAPTER,
    );
    expect_address_in_use_explained(&step, program!(), &["server"]);
}

fn step_20_the_program_holds_two_files_a_conversation_and_tells_the_rest() {
    let step = Step::new(
        "step 20: under a low limit on open files, the program holds two files a \
         conversation, and tells a client it has no file for that it is busy",
        CHAPTER,
    );
    #[cfg(target_os = "linux")]
    match files::files_at_rest(&step) {
        Some(at_rest) => files::expect_two_each_and_busy_when_out(&step, &at_rest),
        None => step.skip("this machine does not show a program's open files (/proc/PID/fd)"),
    }
    #[cfg(not(target_os = "linux"))]
    step.skip(
        "only Linux shows the check a program's open files (/proc/PID/fd): run your \
         server under `ulimit -n 64` with many clients yourself",
    );
}

// ---------------------------------------------------------------------------
// Your client (lesson 7's) and your server.

/// Runs the student's Client code on a thread of its own, QUICK at most.
fn with_client<T: Send + 'static>(
    step: &Step,
    call: &str,
    code: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
) -> T {
    let result = timing::run_within(
        step,
        call,
        QUICK,
        "your client waits for your server: compare with steps 9 to 15, which your \
         server passed with the check's own clients.",
        code,
    );
    step.ok(call, result)
}

/// Fails unless the student's client `number` got `expected`.
fn expect_client_got(step: &Step, number: usize, expected: &[u8], got: &[u8]) {
    if got != expected {
        let hint = difference(expected, got).unwrap_or_default();
        step.report()
            .did(&format!(
                "your client {number} talked to your server (max_clients 1)"
            ))
            .expected(&format!("{} for client {number}", show(expected)))
            .got(&show(got))
            .observed(&format!(
                "{hint} Each side passed the check's own peer in the steps before: \
                 compare with steps 9 to 15."
            ))
            .fail();
    }
}

/// Connects the student's client to `addr` and has it send `message`: the
/// client, and the reply it read.
fn client_turn(
    step: &Step,
    number: usize,
    addr: SocketAddr,
    message: &'static [u8],
) -> (Client, Vec<u8>) {
    let call = format!("client {number}: Client::connect_within, turn");
    with_client(step, &call, move || {
        let mut client = Client::connect_within(&addr.to_string(), QUICK)?;
        let reply = client.turn(message)?;
        Ok((client, reply))
    })
}

fn step_19_your_client_and_your_server() {
    let step = Step::new(
        "step 19: your client (lesson 7's) and your server: served, busy, stopped",
        CHAPTER,
    );
    let server = start_server(&step, settings(1, ms(100)));
    let (first, reply) = client_turn(&step, 1, server.addr(), b"one: hello\n");
    expect_client_got(&step, 1, b"one: hello\n", &reply);

    let (second, busy) = client_turn(&step, 2, server.addr(), b"two: may I?\n");
    expect_client_got(&step, 2, BUSY_REPLY, &busy);
    let rest = with_client(&step, "client 2: finish", move || second.finish(b""));
    expect_client_got(&step, 2, b"", &rest);

    let tail = with_client(&step, "client 1: finish", move || first.finish(b"one: bye"));
    expect_client_got(&step, 1, b"one: bye", &tail);

    // The place is free again (a client told busy may try again a moment later).
    let addr = server.addr().to_string();
    let (third, reply) = with_client(&step, "client 3: Client::connect_within, turn", move || {
        let deadline = Instant::now() + ms(300);
        loop {
            let mut client = Client::connect_within(&addr, QUICK)?;
            let reply = client.turn(b"three: hello\n")?;
            if reply != BUSY_REPLY || Instant::now() >= deadline {
                return Ok((client, reply));
            }
            thread::sleep(ms(20));
        }
    });
    expect_client_got(&step, 3, b"three: hello\n", &reply);

    server.trigger(&step);
    server.expect_summary(
        &step,
        Summary {
            served: 2,
            cut_short: 1,
        },
        ms(100) + QUICK,
        "client 3 stays connected, silent: when the grace (100 ms) ends, cut it short, \
         let it say goodbye (GOODBYE_TIME at most), and return.",
    );
    let goodbye = with_client(
        &step,
        "client 3: read what the server still sent",
        move || {
            let mut rest = Vec::new();
            let mut reader = third.reader;
            reader.get_ref().set_read_timeout(Some(QUICK))?;
            reader.read_to_end(&mut rest)?;
            Ok(rest)
        },
    );
    expect_client_got(&step, 3, SHUTDOWN_REPLY, &goodbye);
}

seesaw_checks::checks![
    step_01_admit_takes_clients_up_to_the_limit,
    step_02_a_dropped_slot_gives_its_place_back,
    step_03_a_slot_is_given_back_when_its_conversation_panics,
    step_04_the_last_slot_given_back_wakes_the_waiting_server,
    step_05_cut_short_shuts_down_reading_only,
    step_06_turn_away_says_busy_and_closes_gently,
    step_07_converse_echoes_until_the_client_hangs_up,
    step_08_converse_says_goodbye_when_cut_short,
    step_09_serve_until_stopped_serves_clients_at_once,
    step_10_the_client_over_the_limit_is_told_busy_at_once,
    step_11_a_client_that_leaves_gives_its_place_back,
    step_12_a_conversation_that_fails_gives_its_place_back,
    step_13_stop_wakes_the_server_and_it_returns,
    step_14_conversations_in_flight_finish_within_the_grace,
    step_15_the_rest_get_a_goodbye_when_the_grace_ends,
    step_16_the_program_tells_the_client_over_the_limit_it_is_busy,
    step_17_ctrl_c_stops_the_program_well,
    step_18_the_program_explains_an_address_in_use,
    step_20_the_program_holds_two_files_a_conversation_and_tells_the_rest,
    step_19_your_client_and_your_server,
];
