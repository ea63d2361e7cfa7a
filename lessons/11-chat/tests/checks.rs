//! The checks of lesson 11, in the order you meet them: the first failure is
//! your next step. Run them with `cargo test -p lesson-11-chat`.
//!
//! Step 1 calls your valid_name. Steps 2-10 are the check as members of
//! your room: your serve_member on each connection the check accepts, on real
//! connections. The room's rules are conversations in the support crate's
//! `chat` module, shared with lesson 12 (`AT` below says where your code
//! keeps each rule). Steps 11-13 run the lesson's program, and step 14 has
//! your client talk to your server through a relay.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::{Arc, mpsc};
use std::thread;
use std::time::Instant;

use lesson_11_chat::{MAX_LINE, OUTBOX_LINES, Room, serve_member, valid_name};
use seesaw_checks::DEADLINE;
use seesaw_checks::bounded;
use seesaw_checks::bytes::show;
use seesaw_checks::chat::{self, Member, Where, lists_exactly};
use seesaw_checks::peer::{CheckServer, End};
use seesaw_checks::program;
use seesaw_checks::program::{expect_address_in_use_explained, run};
use seesaw_checks::relay::Relay;
use seesaw_checks::report::Step;
use seesaw_checks::serving;
use seesaw_checks::watched::WatchedServer;

const CHAPTER: &str = "11-chat";

/// Where lesson 11's code keeps each rule of the room: your serve_member
/// (greets, checks the name, reads the member's lines, leaves) and the
/// Room's join, say, deliver and leave.
const AT: Where = Where {
    greeting: "serve_member writes GREETING first, then reads the name; once the name is \
               accepted, the newcomer hears present_line of everyone else present (never \
               itself), even when nobody is, before anything else.",
    silent_join: "the room's join delivers present_line into the newcomer's outbox, and only \
                  its writer thread (spawn_writer, which serve_member starts) writes it out. Or \
                  join is stuck: one thread cannot lock a std Mutex twice (a call inside join \
                  that locks the room again, like names(), waits for ever: a deadlock).",
    naming: "check valid_name before join, then take join's answer (false: the name is taken, \
             the map contains_key it), before anyone is told; a refused name gets refuse \
             (given): one error line, a gentle end.",
    one_room: "", // the check makes the one room, as serve_room (given) does
    lines: "say delivers said_line(from, text) to every member but the sender: skip `from`, \
            never the sender; each member's writer thread writes its outbox's lines.",
    leaving: "when a member's reader sees the end, or an error, leave the room: remove it from \
              the map (HashMap::remove), then deliver left_line(name) to everyone still \
              present, once. Then wait for the writer: leave before, for leaving closes the \
              outbox, and that is what ends the writer.",
    too_long: "read_line_within says LineRead::TooLong: leave the room, wait for the writer, then \
               refuse (given): its close is gentle (close_gently), so that the bytes of the \
               long line still coming cannot reset the connection before the error line is \
               read.",
    non_reader: "deliver must never wait: try_send into the member's bounded outbox (never \
                 write a socket while holding the room's lock); a full outbox cuts that member \
                 off: shut its connection down both ways (Shutdown::Both).",
    accepting: "serve_member writes GREETING to every newcomer first, before reading its name.",
    patience: DEADLINE,
};

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
    chat::expect_joins_an_empty_room(&step, start_room(&step), &AT);
}

fn step_03_a_bad_or_taken_name_gets_one_line_and_a_gentle_end() {
    let step = Step::new(
        "step 3: a bad or taken name gets one `*` error line and end of file; nobody hears of it",
        CHAPTER,
    );
    chat::expect_names_refused(&step, start_room(&step), MAX_LINE, &AT);
}

fn step_04_the_newcomer_hears_who_is_present_the_others_hear_it_enter() {
    let step = Step::new(
        "step 4: a newcomer gets the list of everyone else; the others hear `* NAME has entered the room`",
        CHAPTER,
    );
    chat::expect_entries(&step, start_room(&step), &AT);
}

fn step_05_a_line_reaches_every_other_member_never_the_sender() {
    let step = Step::new(
        "step 5: each line reaches every other member as `[NAME] text`, never the sender, never a later member",
        CHAPTER,
    );
    chat::expect_fan_out(&step, start_room(&step), &AT);
}

fn step_06_an_unnamed_client_hears_nothing_of_the_room() {
    let step = Step::new(
        "step 6: a client that has not given a name hears nothing of the room, and leaves unannounced",
        CHAPTER,
    );
    chat::expect_unnamed_hear_nothing(&step, start_room(&step), &AT);
}

fn step_07_leaving_is_announced_once_to_the_others() {
    let step = Step::new(
        "step 7: when a member hangs up, each other member hears `* NAME has left the room`, once",
        CHAPTER,
    );
    chat::expect_leaves_once(&step, start_room(&step), &AT);
}

fn step_08_a_line_over_the_limit_drops_the_member_gently() {
    let step = Step::new(
        "step 8: a line of MAX_LINE bytes passes; one byte more gets a `*` line, end of file, and a leave",
        CHAPTER,
    );
    chat::expect_long_line_drops(&step, start_room(&step), MAX_LINE, &AT);
}

fn step_09_a_member_who_never_reads_does_not_hold_up_the_room() {
    let step = Step::new(
        "step 9: a member who never reads holds up nobody: the others get every line, and it is cut off",
        CHAPTER,
    );
    chat::expect_non_reader_cut_off(&step, start_room(&step), MAX_LINE, OUTBOX_LINES, &AT);
}

fn step_10_many_members_at_once() {
    let step = Step::new(
        "step 10: twenty members at once: each line reaches the nineteen others",
        CHAPTER,
    );
    chat::expect_many_members(&step, start_room(&step), 20, &AT);
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
    let (line, batches) = chat::flood_of(MAX_LINE, OUTBOX_LINES);
    let lines: Vec<u8> = (0..batches * 100)
        .flat_map(|_| format!("{line}\n").into_bytes())
        .collect();
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
    let others_cut = server.said_count(|line| {
        !line.contains("sluggard") && (line.contains("disconnect") || line.contains("cut"))
    });
    if cut_off < ordinary + 1 && others_cut > 0 {
        server.fail(report.hint(
            "a line about a cut-off names another member, not sluggard: name the member cut \
             off, the receiving member whose outbox is full (deliver's own member), not the \
             speaker whose line it was.",
        ));
    }
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
