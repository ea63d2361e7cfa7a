//! The checks of lesson 11, in the order you meet them: the first failure is
//! your next step. Run them with `cargo test -p lesson-11-chat`.
//!
//! Step 1 calls your valid_name. Steps 2-10 are the check as members of
//! your room: your serve_member on each connection the check accepts, on real
//! connections; the conversation verbs (join, say, expect a line) are in
//! the support crate's `chat` module. Steps 11-13 run the lesson's program,
//! and step 14 has your client talk to your server through a relay.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use std::sync::Arc;

use lesson_11_chat::{MAX_LINE, OUTBOX_LINES, Room, serve_member, valid_name};
use seesaw_checks::DEADLINE;
use seesaw_checks::bounded;
use seesaw_checks::bytes::show;
use seesaw_checks::chat::{Member, greeted, left, lists_exactly, said};
use seesaw_checks::peer::{CheckServer, End};
use seesaw_checks::program;
use seesaw_checks::program::{expect_address_in_use_explained, run};
use seesaw_checks::relay::Relay;
use seesaw_checks::report::Step;
use seesaw_checks::serving;
use seesaw_checks::watched::WatchedServer;

const CHAPTER: &str = "11-chat";

/// How long a member of a flooded room waits for the next 100 lines: each
/// takes microseconds to fan out, so half a second of nothing is a stopped
/// room.
const FLOOD_WAIT: Duration = Duration::from_millis(500);

/// How long a member listens to be sure nothing comes: a room fans a line
/// out in microseconds, so a line that should not come, and does, comes
/// well within it. (Where another line can follow, the checks wait for that
/// line instead: what comes first shows what should not have come.)
const QUIET: Duration = Duration::from_millis(100);

/// Your room: the check accepts each client, as serve_room (given) does,
/// and serves it with your serve_member, on a thread of its own, in one
/// shared Room. A panic in serve_member is the cause the report shows.
fn start_room(step: &Step) -> SocketAddr {
    let room = Arc::new(Room::new());
    serving::serve_each(step, "serve_member(connection, &room)", move |connection| {
        serve_member(connection, &room)
    })
}

fn step_01_a_name_is_1_to_16_ascii_letters_or_digits() {
    let step = Step::new(
        "step 1: valid_name takes 1 to 16 ASCII letters or digits, nothing else",
        CHAPTER,
    );
    let cases = [
        ("a", true),
        ("alice", true),
        ("Bob42", true),
        ("7", true),
        ("abcdefghijklmnop", true),
        ("", false),
        ("abcdefghijklmnopq", false),
        ("bob smith", false),
        ("bob_", false),
        ("-bob", false),
        ("josé", false),
        (" bob", false),
    ];
    for (name, expected) in cases {
        let call = format!("valid_name({name:?})");
        let got = bounded::run(&step, &call, "valid_name only looks at a name", move || {
            valid_name(name)
        });
        if got != expected {
            step.report()
                .did(&call)
                .expected(&expected.to_string())
                .got(&got.to_string())
                .hint(
                    "a name is 1 to 16 bytes (name.len()), each an ASCII letter or digit \
                     (u8::is_ascii_alphanumeric): no space, `_`, `-`, no letter beyond ASCII.",
                )
                .fail();
        }
    }
}

fn step_02_a_newcomer_is_greeted_and_joins_an_empty_room() {
    let step = Step::new(
        "step 2: a newcomer gets one greeting line; after its name, the `*` list of an empty room",
        CHAPTER,
    );
    let addr = start_room(&step);
    let mut alice = Member::join(&step, addr, "alice", &[]);
    alice.expect_quiet(
        QUIET,
        "in an empty room nobody else speaks, and a newcomer never hears its own entry (not \
         itself: everyone else does): deliver entered_line to those already present, before \
         inserting the newcomer into the room.",
    );
}

/// A newcomer whose `name` must be refused: one `*` line, then the end.
fn expect_refused(step: &Step, addr: SocketAddr, name: &str, why: &str) {
    let mut peer = greeted(step, addr, "newcomer");
    peer.send(format!("{name}\n").as_bytes());
    let line = peer.read_line();
    if line.end != End::Newline || !line.bytes.starts_with(b"*") {
        step.report()
            .did(&format!("the check gave the name {name:?} ({why})"))
            .expected("one line that starts with `*` and says why, then end of file")
            .got(&line.describe())
            .hint("a name that is not valid_name, or taken, gets refuse (given): one line, a gentle end.")
            .fail();
    }
    peer.close_sending();
    peer.expect_end("after the error line, end the connection: return refuse's result.");
}

fn step_03_a_bad_or_taken_name_gets_one_line_and_a_gentle_end() {
    let step = Step::new(
        "step 3: a bad or taken name gets one `*` error line and end of file; nobody hears of it",
        CHAPTER,
    );
    let addr = start_room(&step);
    let mut alice = Member::join(&step, addr, "alice", &[]);
    expect_refused(&step, addr, "", "empty");
    expect_refused(&step, addr, "bob smith", "a space");
    expect_refused(&step, addr, "abcdefghijklmnopq", "17 letters");
    expect_refused(&step, addr, "alice", "taken");
    alice.expect_quiet(
        QUIET,
        "a refused newcomer never joined: nobody hears it enter or leave. Check valid_name \
         before join, then take join's answer (false: the name is taken), before anyone is \
         told.",
    );
    Member::join_hinted(
        &step,
        addr,
        "abcdefghijklmnop",
        &["alice"],
        "alice must still be listed: refusing a taken name changes nothing in the room. The \
         newcomer never joined, so it never leaves: no leave for the name, which is alice's.",
    );
    let mut other_case = greeted(&step, addr, "ALICE");
    other_case.send(b"ALICE\n");
    let line = other_case.read_line();
    if line.end != End::Newline || !lists_exactly(&line.bytes, "ALICE", &["alice"]) {
        step.report()
            .did("the check gave the name \"ALICE\" while alice is present")
            .expected("the `*` list of the others: ALICE is a name of its own")
            .got(&line.describe())
            .hint(
                "names are compared exactly, case included: join refuses only the same name \
                 (contains_key), and `ALICE` is not `alice`.",
            )
            .fail();
    }
}

fn step_04_the_newcomer_hears_who_is_present_the_others_hear_it_enter() {
    let step = Step::new(
        "step 4: a newcomer gets the list of everyone else; the others hear `* NAME has entered the room`",
        CHAPTER,
    );
    let addr = start_room(&step);
    let enter = "when a member joins, deliver entered_line(name) to everyone already present \
                 (not to the newcomer itself).";
    let mut alice = Member::join(&step, addr, "alice", &[]);
    let mut bob = Member::join(&step, addr, "bob", &["alice"]);
    alice.expect_entered("bob", enter);
    let _carol = Member::join(&step, addr, "carol", &["alice", "bob"]);
    alice.expect_entered("carol", enter);
    // bob heard carol's entry, not its own (step 2 saw an empty room's).
    bob.expect_entered("carol", enter);
}

fn step_05_a_line_reaches_every_other_member_never_the_sender() {
    let step = Step::new(
        "step 5: each line reaches every other member as `[NAME] text`, never the sender, never a later member",
        CHAPTER,
    );
    let addr = start_room(&step);
    let fan_out = "say delivers said_line(from, text) to every member but the sender: skip \
                   `from`, never the sender.";
    let mut alice = Member::join(&step, addr, "alice", &[]);
    let mut bob = Member::join(&step, addr, "bob", &["alice"]);
    alice.expect_entered("bob", fan_out);
    alice.say("  hi bob, how are you?  ");
    bob.expect_said(
        "alice",
        "  hi bob, how are you?  ",
        "say passes the text on as sent, spaces kept (do not trim it): only the newline, and \
         a \\r before it, are taken off.",
    );
    bob.say("fine");
    bob.say("and you?");
    alice.expect_said("bob", "fine", fan_out);
    alice.expect_said("bob", "and you?", fan_out);
    // What bob hears next is alice's line, not its own lines back.
    alice.say("good");
    bob.expect_said(
        "alice",
        "good",
        "never send a line back to the member who said it.",
    );
    let mut carol = Member::join(&step, addr, "carol", &["alice", "bob"]);
    // What carol hears first after its list is a line said after it joined.
    alice.say("welcome carol");
    carol.expect_said(
        "alice",
        "welcome carol",
        "a newcomer hears nothing said before it joined: only its list, then what comes.",
    );
}

fn step_06_an_unnamed_client_hears_nothing_of_the_room() {
    let step = Step::new(
        "step 6: a client that has not given a name hears nothing of the room, and leaves unannounced",
        CHAPTER,
    );
    let addr = start_room(&step);
    let mut alice = Member::join(&step, addr, "alice", &[]);
    let mut stranger = greeted(&step, addr, "stranger");
    let mut bob = Member::join(&step, addr, "bob", &["alice"]);
    bob.say("anyone here?");
    alice.expect_entered("bob", "tell members who joined.");
    alice.expect_said("bob", "anyone here?", "every other member hears each line.");
    stranger.expect_silence(
        QUIET,
        "a client is in the room only once join accepted its name: before that it hears nothing.",
    );
    stranger.close_sending();
    stranger.expect_end("a client that hangs up before its name: return Ok(()).");
    // The stranger's thread has ended: what alice hears next is bob.
    bob.say("still here");
    alice.expect_said(
        "bob",
        "still here",
        "a client that never joined never leaves either: say nothing.",
    );
}

fn step_07_leaving_is_announced_once_to_the_others() {
    let step = Step::new(
        "step 7: when a member hangs up, each other member hears `* NAME has left the room`, once",
        CHAPTER,
    );
    let addr = start_room(&step);
    let gone = "when a member's reader sees the end, leave the room: deliver left_line(name) to \
                everyone still present, once.";
    let mut alice = Member::join(&step, addr, "alice", &[]);
    let mut bob = Member::join(&step, addr, "bob", &["alice"]);
    let carol = Member::join(&step, addr, "carol", &["alice", "bob"]);
    alice.expect_entered("bob", gone);
    alice.expect_entered("carol", gone);
    bob.expect_entered("carol", gone);
    let mut carol = carol.peer;
    carol.close_sending();
    alice.expect_left("carol", gone);
    bob.expect_left("carol", gone);
    carol.expect_end(
        "a member who hangs up is taken out of the room (remove it from the map) before the \
         others are told: it hears nothing more, its outbox closes, and so does its connection.",
    );
    // carol's thread has ended: what alice hears next is bob.
    bob.say("carol is gone");
    alice.expect_said("bob", "carol is gone", "a leave is announced once.");
    let carol = Member::join(&step, addr, "carol", &["alice", "bob"]);
    alice.expect_entered("carol", "the name is free again once its member has left.");
    // A line for carol that it never reads: closing then resets.
    alice.say("bye carol");
    carol.peer.reset();
    alice.expect_left(
        "carol",
        "a member whose connection is reset has left too: leave the room whatever ended the \
         reading (end of file or an error), then return the error.",
    );
}

fn step_08_a_line_over_the_limit_drops_the_member_gently() {
    let step = Step::new(
        "step 8: a line of MAX_LINE bytes passes; one byte more gets a `*` line, end of file, and a leave",
        CHAPTER,
    );
    let addr = start_room(&step);
    let mut alice = Member::join(&step, addr, "alice", &[]);
    let mut bob = Member::join(&step, addr, "bob", &["alice"]);
    alice.expect_entered("bob", "tell members who joined.");
    let longest = "x".repeat(MAX_LINE);
    bob.say(&longest);
    alice.expect_said(
        "bob",
        &longest,
        "a line of exactly MAX_LINE bytes is allowed.",
    );
    // One byte over, and the line goes on: bytes the server will not read.
    // Closing at once with them unread resets the connection, and the reset
    // can destroy the error line before bob reads it.
    let too_long = format!("{}y{}\n", "x".repeat(MAX_LINE), "x".repeat(64 * 1024));
    bob.peer.send_in_background(too_long.into_bytes());
    let line = bob.peer.read_line();
    if line.end != End::Newline || !line.bytes.starts_with(b"*") {
        step.report()
            .expected("one line that starts with `*` (the line is too long), then end of file")
            .got(&line.describe())
            .hint(
                "read_line_within says LineRead::TooLong: leave the room, wait for the writer, then \
                 refuse (given): its close is gentle (close_gently), so that the bytes of the \
                 long line still coming cannot reset the connection before the error line is \
                 read.",
            )
            .fail();
    }
    alice.expect_left(
        "bob",
        "a member dropped for a long line leaves the room: the others hear it.",
    );
    bob.peer.close_sending();
    bob.peer
        .expect_end("after the error line, end the connection gently (refuse).");
}

fn step_09_a_member_who_never_reads_does_not_hold_up_the_room() {
    let step = Step::new(
        "step 9: a member who never reads holds up nobody: the others get every line, and it is cut off",
        CHAPTER,
    );
    let addr = start_room(&step);
    let mut alice = Member::join(&step, addr, "alice", &[]);
    let slow = Member::join(&step, addr, "slow", &["alice"]);
    let flood = Member::join(&step, addr, "flood", &["alice", "slow"]);
    alice.expect_entered("slow", "tell members who joined.");
    alice.expect_entered("flood", "tell members who joined.");
    // Lines as long as allowed, 100 at a time, as fast as alice reads them:
    // more than the never-reading member's socket buffers and outbox hold.
    let (line, batches) = flood_lines();
    let batch: Vec<u8> = (0..100).flat_map(|_| said_bytes(&line)).collect();
    flood.peer.note(format!(
        "check   sends {batches} x 100 lines of {MAX_LINE} bytes; alice reads each 100"
    ));
    let mut writer = flood.peer.stream().try_clone().expect("clone");
    let (mut heard, mut others) = (0, Vec::new());
    for _ in 0..batches {
        let _ = writer.write_all(&batch);
        let (came, other) = alice.count_lines(&said("flood", &line), 100, FLOOD_WAIT);
        heard += came;
        others.extend(other);
        if came < 100 {
            break;
        }
    }
    if heard < batches * 100 {
        step.report()
            .expected(&format!(
                "all {} lines from flood, each within the deadline",
                batches * 100
            ))
            .got(&format!(
                "{heard} lines, then nothing for {} s",
                FLOOD_WAIT.as_secs_f32()
            ))
            .hint(
                "the room stopped: delivering to the member who does not read waits. deliver \
                 must never wait: try_send, and a full outbox cuts that member off.",
            )
            .fail();
    }
    if others != [left("slow")] {
        let shown: Vec<String> = others
            .iter()
            .map(|l| String::from_utf8_lossy(l).into_owned())
            .collect();
        step.report()
            .expected("among the flood, one line: `* slow has left the room`")
            .got(&format!("{shown:?}"))
            .hint(
                "a member whose outbox is full is not reading: cut it off, shut its connection \
                 down both ways (Shutdown::Both); its reader then leaves the room, and the \
                 others hear it, once. Otherwise its bounded outbox stays full for ever (or an unbounded one \
                 grows the server's memory).",
            )
            .fail();
    }
    drop(slow);
}

/// What a never-reading member's connection holds before its outbox fills,
/// at most: on Linux's loopback the server's send buffer grows to 4 MiB
/// (tcp_wmem's largest) and the check's receive buffer holds 128 KiB
/// (measured with `ss -tmn`); other systems hold less.
const SOCKET_BUFFERS: usize = 5 * 1024 * 1024;

/// A flood that overflows a never-reading member: the longest line allowed,
/// and how many batches of 100 fill its socket buffers and its outbox.
fn flood_lines() -> (String, usize) {
    let lines = SOCKET_BUFFERS / MAX_LINE + OUTBOX_LINES;
    ("z".repeat(MAX_LINE), lines.div_ceil(100) + 1)
}

/// One line as a member sends it.
fn said_bytes(text: &str) -> Vec<u8> {
    format!("{text}\n").into_bytes()
}

fn step_10_many_members_at_once() {
    let step = Step::new(
        "step 10: twenty members at once: each line reaches the nineteen others",
        CHAPTER,
    );
    let addr = start_room(&step);
    let names: Vec<String> = (1..=20).map(|n| format!("m{n}")).collect();
    let mut members: Vec<Member> = Vec::new();
    for name in &names {
        let others: Vec<&str> = members.iter().map(|m| m.name.as_str()).collect();
        let member = Member::join(&step, addr, name, &others);
        for earlier in &mut members {
            earlier.expect_entered(name, "tell every member who joined.");
        }
        members.push(member);
    }
    for index in 0..members.len() {
        let from = names[index].clone();
        members[index].say(&format!("hello from {from}"));
        for (other, member) in members.iter_mut().enumerate() {
            if other != index {
                member.expect_said(&from, &format!("hello from {from}"), "fan out to everyone.");
            }
        }
    }
}

fn step_11_the_server_program_narrates() {
    let step = Step::new(
        "step 11: `server` says where it listens, whom it accepts, and whom it cuts off",
        CHAPTER,
    );
    let mut server = WatchedServer::start(program!(), &["server", "127.0.0.1:0"]);
    let addr = server.listening_address(&step);
    // A first client that only reads the greeting: if none comes, the
    // program's last words (a panic, an error) are the report's cause.
    let mut probe = server.connect(&step, addr).named("probe");
    let greeting = probe.read_line();
    if greeting.end != End::Newline {
        // A thread of the program that panics says so on stderr as it ends.
        let since = server.started();
        server.wait_for(serving::SETTLE, since, |line| line.contains("panicked"));
        let report = server
            .report(&step)
            .expected("one line of greeting that asks for a name")
            .got(&greeting.describe());
        server
            .fail(report.hint("write GREETING to every newcomer first, before reading its name."));
    }
    probe.close(" (it only wanted the greeting)");
    let mut alice = Member::join(&step, addr, "alice", &[]);
    let peer = alice.peer.local_addr();
    server.expect_said(
        &step,
        &format!("accepted {peer}"),
        "serve_room (given) says it.",
    );
    // A member who comes and goes as members do: what the server says of
    // it is the narration of an ordinary member.
    let visitor = Member::join(&step, addr, "visitor", &["alice"]);
    let visitor_peer = visitor.peer.local_addr();
    alice.expect_entered("visitor", "tell members who joined.");
    visitor.hang_up();
    alice.expect_left("visitor", "tell the others who left.");
    expect_closed(&mut server, &step, visitor_peer);
    let ordinary = server.said_count(|line| line.contains("visitor"));
    let sluggard = Member::join(&step, addr, "sluggard", &["alice"]);
    let sluggard_peer = sluggard.peer.local_addr();
    alice.expect_entered("sluggard", "tell members who joined.");
    let mut writer = alice.peer.stream().try_clone().expect("clone");
    let (line, batches) = flood_lines();
    let lines: Vec<u8> = (0..batches * 100).flat_map(|_| said_bytes(&line)).collect();
    alice.peer.note(format!(
        "check   sends {} lines of {MAX_LINE} bytes as alice; sluggard reads none",
        batches * 100
    ));
    thread::spawn(move || writer.write_all(&lines));
    expect_closed(&mut server, &step, sluggard_peer);
    expect_cut_off_narrated_once(&mut server, &step, ordinary);
    drop(sluggard);
}

/// Fails unless the server program named sluggard, cut off, in one line
/// more than the `ordinary` lines that name a member who comes and goes.
fn expect_cut_off_narrated_once(server: &mut WatchedServer, step: &Step, ordinary: usize) {
    let cut_off = server.said_count(|line| line.contains("sluggard"));
    if cut_off == ordinary + 1 {
        return;
    }
    let report = server
        .report(step)
        .expected(&format!(
            "one line on stderr that names sluggard when it is cut off, besides the {ordinary} \
             that name a member who comes and goes (visitor)"
        ))
        .got(&format!(
            "{} lines that name sluggard (its output is above)",
            cut_off
        ));
    if cut_off > ordinary + 1 {
        server.fail(report.hint(
            "a member is cut off once, and said so once: the lines fanned out before its \
             reader leaves find its outbox full too. Set the member's cut_off flag \
             (AtomicBool::swap says whether it was set already), and narrate only the first \
             time.",
        ));
    }
    if server.printed_on_stdout(|line| line.contains("sluggard")) {
        server.fail(report.observed(
            "it went to stdout, which carries only the data: narration goes to stderr \
             (narrate, given).",
        ));
    }
    server.fail(report.hint(
        "when a member's outbox is full, narrate one line that names it (deliver's TODO), \
         then cut it off.",
    ));
}

/// Waits until the server program has said it closed the connection to
/// `peer` (serve_room, given, says it when serve_member returns).
fn expect_closed(server: &mut WatchedServer, step: &Step, peer: SocketAddr) {
    let peer = peer.to_string();
    let since = server.started();
    let closed = |line: &str| line.contains(&peer) && line.contains("closed the connection");
    if server.wait_for(DEADLINE, since, closed).is_none() {
        let report = server
            .report(step)
            .expected(&format!(
                "a line on stderr: closed the connection to {peer}"
            ))
            .got("none (its output is above)");
        server.fail(report.hint(
            "a member who leaves, or is cut off, leaves the room, and serve_member returns: \
             serve_room (given) then says it closed the connection.",
        ));
    }
}

fn step_12_the_client_prints_the_room_while_you_type_nothing() {
    let step = Step::new(
        "step 12: `client` prints a line from the room while its input is idle, and exits 0 after hanging up",
        CHAPTER,
    );
    let server = CheckServer::start();
    let addr = server.addr().to_string();
    let mut child = Command::new(program!())
        .args(["client", &addr])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the check could not start the program");
    let mut room = server.accept(&step).patience(DEADLINE);
    room.send(b"hello, name?\n* in the room: \n");
    let mut stdin = child.stdin.take().expect("piped");
    let _ = stdin.write_all(b"alice\n");
    room.expect_line(b"alice\n", "the client sends each line typed.");
    room.send(b"[bob] are you there?\n");
    let (seen, printed) = mpsc::channel();
    let mut stdout = child.stdout.take().expect("piped");
    thread::spawn(move || {
        let mut all = Vec::new();
        let mut chunk = [0; 4096];
        while let Ok(count @ 1..) = stdout.read(&mut chunk) {
            all.extend_from_slice(&chunk[..count]);
            let _ = seen.send(all.clone());
        }
    });
    let due: &[u8] = b"hello, name?\n* in the room: \n[bob] are you there?\n";
    let deadline = Instant::now() + DEADLINE;
    let mut got = Vec::new();
    while got != due {
        match printed.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(now) => got = now,
            Err(_) => break,
        }
    }
    if got != due {
        let _ = child.kill();
        step.report()
            .expected(&format!("the client to print {due:?} while its stdin stays open"))
            .got(&format!("{:?}", String::from_utf8_lossy(&got)))
            .hint("the client reads the connection on a thread of its own (print_room), not after stdin.")
            .fail();
    }
    drop(stdin);
    room.expect_end("at the end of its input the client hangs up (shutdown Write).");
    room.close(" (the check's room)");
    let status = bounded::run(
        &step,
        "the client, after hanging up",
        "it should exit",
        move || child.wait().map(|status| status.code()),
    );
    if !matches!(status, Ok(Some(0))) {
        step.report()
            .expected("exit code 0 once the server closed after the hang-up")
            .got(&format!("{status:?}"))
            .hint("after hanging up, the client waits for the server to close, then exits 0.")
            .fail();
    }
}

fn step_13_the_server_program_explains_an_address_in_use() {
    let step = Step::new(
        "step 13: `server` explains an address in use in one line, exit code 1",
        CHAPTER,
    );
    expect_address_in_use_explained(&step, program!(), &["server"]);
}

/// What your client types in step 14.
const GUEST_TYPES: &[u8] = b"guest\nhello host\n";

/// Which side went wrong when your client joined your room.
fn verdict(relay: &Relay, finished: &program::Finished) -> String {
    let Some(carried) = relay.carried(1) else {
        return "your client never reached the relay: did it fail to connect?".to_string();
    };
    if carried.to_server != GUEST_TYPES {
        return format!(
            "your client sent {} where {} was due: it sends each line typed, as typed (step 12)",
            show(&carried.to_server),
            show(GUEST_TYPES)
        );
    }
    let heard: Vec<&[u8]> = carried.to_client.split_inclusive(|&b| b == b'\n').collect();
    let listed = heard
        .get(1)
        .is_some_and(|line| lists_exactly(line, "guest", &["host"]));
    if heard.len() != 2 || !listed {
        return format!(
            "your client sent the right lines; your server sent it {}, where a greeting, then \
             a `*` line naming host (and nothing more) were due: serve_member or join is wrong \
             (steps 2 to 5)",
            show(&carried.to_client)
        );
    }
    if !carried.server_closed {
        return "both sides spoke rightly, but your server did not close after the client hung \
                up: at the end of a member's lines, leave the room and return (step 7)."
            .to_string();
    }
    format!(
        "both sides spoke rightly; the program printed {:?} (its output is above)",
        String::from_utf8_lossy(&finished.stdout)
    )
}

fn step_14_your_client_talks_to_your_server() {
    let step = Step::new(
        "step 14: your own client joins your own room, through a relay that records both sides",
        CHAPTER,
    );
    let addr = start_room(&step);
    let mut host = Member::join(&step, addr, "host", &[]);
    let relay = Relay::start(&step, addr);
    let finished = run(
        program!(),
        &["client", &relay.addr().to_string()],
        GUEST_TYPES,
    );
    let printed = String::from_utf8_lossy(&finished.stdout).into_owned();
    let lines: Vec<&str> = printed.lines().collect();
    if finished.code != Some(0) || lines.len() != 2 || !lines[1].contains("host") {
        relay.wait_until(1, DEADLINE, |carried| carried.server_closed);
        finished
            .report(&step)
            .expected("exit code 0; on stdout the greeting and the `*` list naming host")
            .got(&format!(
                "exit code {:?}, stdout {printed:?}",
                finished.code
            ))
            .observed(&verdict(&relay, &finished))
            .fail();
    }
    let enter = "your client sent its name and a line (the relay saw them); your room should \
                 pass them on to host.";
    host.expect_entered("guest", enter);
    host.expect_said("guest", "hello host", enter);
    host.expect_left(
        "guest",
        "your client hung up at the end of its input: it left the room.",
    );
}

seesaw_checks::checks![
    step_01_a_name_is_1_to_16_ascii_letters_or_digits,
    step_02_a_newcomer_is_greeted_and_joins_an_empty_room,
    step_03_a_bad_or_taken_name_gets_one_line_and_a_gentle_end,
    step_04_the_newcomer_hears_who_is_present_the_others_hear_it_enter,
    step_05_a_line_reaches_every_other_member_never_the_sender,
    step_06_an_unnamed_client_hears_nothing_of_the_room,
    step_07_leaving_is_announced_once_to_the_others,
    step_08_a_line_over_the_limit_drops_the_member_gently,
    step_09_a_member_who_never_reads_does_not_hold_up_the_room,
    step_10_many_members_at_once,
    step_11_the_server_program_narrates,
    step_12_the_client_prints_the_room_while_you_type_nothing,
    step_13_the_server_program_explains_an_address_in_use,
    step_14_your_client_talks_to_your_server,
];
