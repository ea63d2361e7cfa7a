//! Step 20 runs the program with few files allowed (`ulimit -n`), and counts
//! the files it has open (Linux shows them in /proc/PID/fd): two per
//! conversation, no more; and a client the server cannot admit, for want
//! of a file for admit's handle, still gets the busy line.

use std::path::Path;

use lesson_08_shutdown::BUSY_REPLY;
use seesaw_checks::bytes::show;
use seesaw_checks::peer::{End, Peer, Received};
use seesaw_checks::process::{expect_room_for_files, open_files};
use seesaw_checks::report::Step;
use seesaw_checks::watched::WatchedServer;

use crate::QUICK;

/// How many conversations the check makes room for under the limit.
pub const ROOM: usize = 6;

/// The program's arguments: --max-clients far above what fits, so that its
/// files run out first.
const ARGS: [&str; 4] = ["server", "127.0.0.1:0", "--max-clients", "1000"];

/// What the served clients send.
const HELLO: &[u8] = b"hello, I stay\n";

/// What the client the server has no file for sends before it reads.
const ONE_TOO_MANY: &[u8] = b"is there room for me?\n";

const TWO_EACH: &str = "each handle on a socket (each try_clone) is a file descriptor, and a \
     process may open only so many (`ulimit -n`): three per conversation, and the \
     server serves a third fewer clients. Keep one handle besides the connection: \
     admit's, shared by the list and the Slot (an Arc), and write the goodbye \
     through slot.socket() instead of a try_clone made at the start of converse.";

/// The numbers of the files the program has open before any client comes;
/// None where the OS does not say (only Linux does).
pub fn files_at_rest(step: &Step) -> Option<Vec<u32>> {
    let mut server = WatchedServer::start_with_file_limit(program(), &ARGS, 256);
    server.listening_address(step);
    open_files(server.pid())
}

/// How many files the program may still open under `limit`: it may open
/// files numbered below the limit only (it may have inherited some above).
fn left(limit: usize, open: &[u32]) -> usize {
    let below = open
        .iter()
        .filter(|&&number| (number as usize) < limit)
        .count();
    limit.saturating_sub(below)
}

/// The limit that leaves the program, with `at_rest` open, room for `room`
/// more files exactly.
fn limit_leaving(room: usize, at_rest: &[u32]) -> usize {
    (room..)
        .find(|&limit| left(limit, at_rest) == room)
        .unwrap_or(room)
}

fn program() -> &'static Path {
    seesaw_checks::program!()
}

/// Starts the program with room for ROOM conversations of two files each,
/// and one file more; serves ROOM clients, one at a time, counting its
/// files after each; then expects the busy line for one client more.
pub fn expect_two_each_and_busy_when_out(step: &Step, at_rest: &[u32]) {
    let limit = limit_leaving(2 * ROOM + 1, at_rest);
    let mut server = WatchedServer::start_with_file_limit(program(), &ARGS, limit);
    let addr = server.listening_address(step);
    expect_room_for_files(step, ROOM + 16);
    step.transcript().add(format!(
        "check   the program may open {limit} files (`ulimit -n`); {} are open before any \
         client: room for {ROOM} conversations of 2, and 1 more",
        limit - left(limit, at_rest)
    ));
    let mut served: Vec<Peer> = Vec::new();
    let mut after_first = 0;
    for number in 1..=ROOM {
        let mut client = server.connect(step, addr).patience(QUICK);
        server.expect_echo(
            step,
            &mut client,
            HELLO,
            "serve each admitted client on a thread of its own, and go straight back to \
             accepting.",
        );
        served.push(client);
        let files = open_files(server.pid()).unwrap_or_default().len();
        if number == 1 {
            after_first = files;
        } else if files > after_first + 2 * (number - 1) {
            let report = server
                .report(step)
                .did(&format!(
                    "{number} clients were served, one at a time, each staying connected; the \
                     check counted the program's open files after each (/proc/PID/fd)"
                ))
                .expected(
                    "2 more open files for each conversation: its connection, and admit's handle",
                )
                .got(&format!(
                    "{after_first} open files after client 1, {files} after client {number}: {} \
                     more for {} more conversation{}",
                    files - after_first,
                    number - 1,
                    if number == 2 { "" } else { "s" }
                ))
                .hint(TWO_EACH);
            server.fail(report);
        }
    }
    let free = left(limit, &open_files(server.pid()).unwrap_or_default());
    if free != 1 {
        return step.skip_part(
            "a client the server has no file for",
            &format!("the program had {free} files left, not 1, after {ROOM} clients"),
        );
    }
    let mut next = server
        .connect(step, addr)
        .patience(QUICK)
        .named("one too many");
    next.send(ONE_TOO_MANY);
    let answer = next.read_to_end_within(QUICK);
    if answer.bytes == BUSY_REPLY && answer.end == End::Closed {
        return;
    }
    let out_of_files = server
        .printed(|line| line.contains("Too many open files"))
        .is_some();
    let report = server
        .report(step)
        .did(&format!(
            "{ROOM} conversations went on, and the program had 1 file left; one more client \
             connected and sent {}",
            show(ONE_TOO_MANY)
        ))
        .expected(&format!(
            "{} (the server cannot serve it now), then end of file",
            show(BUSY_REPLY)
        ))
        .got(&answer.describe())
        .hint(&one_too_many_hint(&answer, out_of_files));
    server.fail(report);
}

/// What the client the server had no file for got instead of the busy line.
fn one_too_many_hint(answer: &Received, out_of_files: bool) -> String {
    let dropped = answer.bytes.is_empty() && matches!(answer.end, End::Closed | End::Failed(_));
    match (dropped, out_of_files) {
        (true, true) => "accept took the last file, so admit could not make its handle \
             (`Too many open files`, in the output above), and the server closed the \
             connection without a word: a client that had spoken gets a reset. When \
             admit fails, turn the client away with the busy line (turn_away), as when \
             the server is full."
            .to_string(),
        (_, _) if answer.end == End::TimedOut && answer.bytes.is_empty() => {
            "the client waits in silence. With one file left, accept takes it and admit \
             cannot make its handle: turn that client away with the busy line (turn_away)."
                .to_string()
        }
        _ => "a client the server cannot admit, for want of a file, gets the busy line \
              (turn_away), like a client that finds the server full."
            .to_string(),
    }
}
