//! Plays one failing check for each outcome a report must fit: an error of
//! some kind, a panic, a hang (and the skip it causes), an early close, a
//! reset, wrong bytes, code that ends the process, a later step that
//! fails for the same cause as an earlier one (one line), and one that waits
//! out a deadline on code that had panicked (not a hang: the run goes on). The golden test
//! (tests/tests/reports.rs) compares what this prints with
//! tests/tests/golden/reports.txt. Not for students: it fails on purpose.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::panic::catch_unwind;

use anyhow::Context;
use seesaw_checks::bounded;
use seesaw_checks::peer::{Peer, connected_pair, unused_address};
use seesaw_checks::report::Step;

const CHAPTER: &str = "04-echo-once";

fn main() {
    // Ending the process must be played alone: after the hang, every later
    // step is skipped.
    match std::env::args().nth(1).as_deref() {
        Some("exit") => process_exit(),
        Some("abort") => process_abort(),
        _ => {}
    }
    outcome(error_of_a_kind);
    outcome(panic);
    outcome(same_panic_again);
    outcome(early_close);
    outcome(reset);
    outcome(wrong_bytes);
    outcome(waited_on_code_that_panicked);
    outcome(hang);
    outcome(skipped_after_the_hang);
}

/// Runs one failing check; its report is printed by the checks' panic hook.
fn outcome(check: fn()) {
    let _ = catch_unwind(check);
}

fn error_of_a_kind() {
    let step = Step::new("step 1: an error of some kind", CHAPTER);
    let addr = unused_address();
    let result = TcpStream::connect(addr).with_context(|| "could not connect".to_string());
    step.ok("dial(ADDR)", result);
}

fn panic() {
    let step = Step::new("step 2: the student's code panics", CHAPTER);
    bounded::run(&step, "server_turn(&mut connection)", "(hang hint)", parse);
}

/// A later step that fails for the same cause: one line, not a second report.
fn same_panic_again() {
    let step = Step::new("step 2b: the same panic again", CHAPTER);
    bounded::run(&step, "server_turn(&mut connection)", "(hang hint)", parse);
}

/// The student's code that panics, at the same place each time.
fn parse() -> u8 {
    "no number".parse::<u8>().unwrap()
}

fn early_close() {
    let step = Step::new("step 3: the student's code closes early", CHAPTER);
    let (mut client, theirs) = connected_pair(&step);
    drop(theirs);
    client.send(b"hello\n");
    let reply = client.read_line();
    step.report()
        .expected("b\"hello\\n\" back")
        .got_received(b"hello\n", &reply)
        .hint("(the check's own hint)")
        .fail();
}

fn reset() {
    let step = Step::new("step 4: the student's code resets the connection", CHAPTER);
    let (mut client, mut theirs) = connected_pair(&step);
    client.send(b"hello\nworld\n");
    let mut first = [0u8; 1];
    let _ = theirs.read_exact(&mut first);
    drop(theirs); // closes with unread bytes: the OS resets the connection
    let reply = client.read_line();
    step.report()
        .expected("b\"hello\\n\" back")
        .got_received(b"hello\n", &reply)
        .fail();
}

fn wrong_bytes() {
    let step = Step::new("step 5: the student's code changes the bytes", CHAPTER);
    let (mut client, mut theirs) = connected_pair(&step);
    client.send(b"caf\xff\n");
    let _ = theirs.write_all(String::from_utf8_lossy(b"caf\xff\n").as_bytes());
    let reply = client.read_line();
    step.report()
        .expected("b\"caf\\xff\\n\" back")
        .got_received(b"caf\xff\n", &reply)
        .fail();
}

/// The check waits out its deadline on code that has already panicked (a
/// program still ending, say, on a loaded machine): the panic is the cause,
/// not a hang, so the run goes on to the next step.
fn waited_on_code_that_panicked() {
    let step = Step::new(
        "step 5b: the check waits in vain on code that panicked",
        CHAPTER,
    );
    let (client, _still_open) = connected_pair(&step);
    let _ = bounded::start(&step, "server_turn(&mut connection)", parse);
    expect_hello_back(&step, client);
}

fn hang() {
    let step = Step::new("step 6: the student's code hangs", CHAPTER);
    let (client, _theirs) = connected_pair(&step);
    expect_hello_back(&step, client);
}

/// Sends `hello` and waits for it to come back, which it never does here.
fn expect_hello_back(step: &Step, mut client: Peer) -> ! {
    client.send(b"hello\n");
    let reply = client.read_line();
    step.report()
        .expected("b\"hello\\n\" back")
        .got_received(b"hello\n", &reply)
        .fail()
}

fn skipped_after_the_hang() {
    let _step = Step::new("step 7: any later step", CHAPTER);
}

fn process_exit() {
    let step = Step::new("step 8: the student's code ends the process", CHAPTER);
    bounded::run(&step, "serve_client(connection)", "(hang hint)", || {
        std::process::exit(3)
    });
}

fn process_abort() {
    let step = Step::new("step 9: the student's code aborts the process", CHAPTER);
    bounded::run(&step, "serve_client(connection)", "(hang hint)", || {
        std::process::abort()
    });
}
