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

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use lesson_08_shutdown::{
    BUSY_REPLY, Client, Conversations, GOODBYE_TIME, IDLE_REPLY, Limits, MAX_MESSAGE,
    SHUTDOWN_REPLY, Settings, Slot, Stop, Summary, TOO_LONG_REPLY, converse, serve_until_stopped,
    turn_away,
};
use seesaw_checks::bounded::{self, Running};
use seesaw_checks::bytes::{difference, show};
use seesaw_checks::peer::{End, Received};
use seesaw_checks::program;
use seesaw_checks::program::expect_address_in_use_explained;
use seesaw_checks::report::{Step, Transcript, hint_for_kind, hint_for_received};
use seesaw_checks::{DEADLINE, START_DEADLINE};

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

fn millis(millis: u64) -> Duration {
    Duration::from_millis(millis)
}

// ---------------------------------------------------------------------------
// Running the student's code, and talking to it, with QUICK deadlines.

/// The student's code on a thread of its own; `finish` waits QUICK for it.
struct Quick<T> {
    call: String,
    done: mpsc::Receiver<T>,
    _running: Running<()>,
}

/// Starts `code` (the student's) on a thread of its own.
fn start_quick<T: Send + 'static>(
    step: &Step,
    call: &str,
    code: impl FnOnce() -> T + Send + 'static,
) -> Quick<T> {
    let (sender, done) = mpsc::channel();
    let running = bounded::start(step, call, move || {
        let _ = sender.send(code());
    });
    Quick {
        call: call.to_string(),
        done,
        _running: running,
    }
}

impl<T> Quick<T> {
    /// Waits at most `wait` for the code to return; a hang or a panic fails
    /// the check, with `hang_hint` for a hang.
    fn finish_within(self, step: &Step, wait: Duration, hang_hint: &str) -> T {
        match self.done.recv_timeout(wait) {
            Ok(value) => value,
            // It panicked: the report shows the panic as the cause.
            Err(mpsc::RecvTimeoutError::Disconnected) => step
                .report()
                .expected(&format!("{} to return", self.call))
                .got("it panicked")
                .fail(),
            Err(mpsc::RecvTimeoutError::Timeout) => {
                step.note_waited_out();
                step.report()
                    .expected(&format!("{} to return", self.call))
                    .got(&format!(
                        "still running after {} ms: it hangs",
                        wait.as_millis()
                    ))
                    .observed(hang_hint)
                    .fail()
            }
        }
    }

    fn finish(self, step: &Step, hang_hint: &str) -> T {
        self.finish_within(step, QUICK, hang_hint)
    }
}

/// Runs the student's `code` and waits QUICK for it.
fn run_quick<T: Send + 'static>(
    step: &Step,
    call: &str,
    hang_hint: &str,
    code: impl FnOnce() -> T + Send + 'static,
) -> T {
    start_quick(step, call, code).finish(step, hang_hint)
}

/// One connection the check holds, as a client of the student's server.
/// Like the support crate's Peer, with reads that wait QUICK.
struct Talker {
    stream: TcpStream,
    step: Step,
    transcript: Transcript,
    /// Bytes read past a newline, kept for the next read.
    pending: Vec<u8>,
}

impl Talker {
    /// Connects to the student's server at `addr`.
    fn connect(step: &Step, addr: SocketAddr) -> Talker {
        match TcpStream::connect_timeout(&addr, QUICK) {
            Ok(stream) => {
                step.transcript()
                    .add(format!("check   connected to you at {addr}"));
                Talker::new(step, stream)
            }
            Err(error) => step
                .report()
                .did(&format!("the check connected to your server at {addr}"))
                .got(&format!("an error: {error}"))
                .hint(hint_for_kind(error.kind()).unwrap_or("is your server listening?"))
                .fail(),
        }
    }

    fn new(step: &Step, stream: TcpStream) -> Talker {
        Talker {
            stream,
            step: step.clone(),
            transcript: step.transcript().clone(),
            pending: Vec::new(),
        }
    }

    fn local_addr(&self) -> SocketAddr {
        self.stream
            .local_addr()
            .expect("a connected socket has a local address")
    }

    fn send(&mut self, bytes: &[u8]) {
        self.transcript
            .add(format!("check → you   {}", show(bytes)));
        if let Err(error) = self.stream.write_all(bytes) {
            self.transcript
                .add(format!("check   could not send: {error}"));
        }
    }

    /// Sends `bytes` from another thread, for a server that may stop reading.
    fn send_in_background(&self, bytes: Vec<u8>) {
        self.transcript.add(format!(
            "check → you   {} (sent in the background)",
            show(&bytes)
        ));
        let mut sender = self
            .stream
            .try_clone()
            .expect("the check could not clone its socket");
        thread::spawn(move || sender.write_all(&bytes));
    }

    /// Each piece in its own write, 50 ms apart, as a slow network delivers them.
    fn send_in_pieces(&mut self, pieces: &[&[u8]]) {
        for (index, piece) in pieces.iter().enumerate() {
            if index > 0 {
                thread::sleep(millis(50));
            }
            self.send(piece);
        }
    }

    fn close_sending(&mut self) {
        self.transcript
            .add("check   closed its sending side (shutdown Write)".to_string());
        let _ = self.stream.shutdown(Shutdown::Write);
    }

    /// Vanishes like a crashed client: waits (at most QUICK) until something
    /// has arrived, and closes without reading it: the OS resets the connection.
    fn reset(self) {
        let _ = self.stream.set_read_timeout(Some(QUICK));
        let _ = self.stream.peek(&mut [0u8; 1]);
        self.transcript
            .add("check   vanished: closed with unread data (a reset)".to_string());
    }

    /// Reads up to a newline, at most QUICK.
    fn read_line(&mut self) -> Received {
        self.read(true, QUICK, true)
    }

    /// Reads to end of file, at most QUICK.
    fn read_to_end(&mut self) -> Received {
        self.read(false, QUICK, true)
    }

    /// Reads what comes within `wait`, for a check that expects little or
    /// nothing: running out of time here is no hang.
    fn read_for(&mut self, wait: Duration) -> Received {
        self.read(false, wait, false)
    }

    fn read(&mut self, stop_at_newline: bool, wait: Duration, hang_if_late: bool) -> Received {
        let deadline = Instant::now() + wait;
        let mut bytes = std::mem::take(&mut self.pending);
        let end = loop {
            let newline = bytes.iter().position(|&byte| byte == b'\n');
            if let (true, Some(at)) = (stop_at_newline, newline) {
                self.pending = bytes.split_off(at + 1);
                break End::Newline;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break End::TimedOut;
            }
            let _ = self.stream.set_read_timeout(Some(left));
            let mut chunk = [0u8; 64 * 1024];
            match self.stream.read(&mut chunk) {
                Ok(0) => break End::Closed,
                Ok(count) => bytes.extend_from_slice(&chunk[..count]),
                Err(error) if is_timeout(&error) => break End::TimedOut,
                Err(error) => break End::Failed(error.kind()),
            }
        };
        if end == End::TimedOut && hang_if_late {
            self.step.note_waited_out();
        }
        if !bytes.is_empty() {
            self.transcript
                .add(format!("you → check   {}", show(&bytes)));
        }
        match end {
            End::Newline => {}
            End::Closed => self
                .transcript
                .add("you     closed the connection (end of file)".to_string()),
            End::TimedOut => self.transcript.add(format!(
                "check   waited {} ms, nothing more came",
                wait.as_millis()
            )),
            End::Failed(kind) => self.transcript.add(format!("check   read failed: {kind}")),
        }
        Received { bytes, end }
    }
}

fn is_timeout(error: &std::io::Error) -> bool {
    matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
}

/// A connection with the check's Talker on one end and, on the other, the
/// socket to hand to the student's code.
fn connected_pair(step: &Step) -> (Talker, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("the check could not listen");
    let addr = listener
        .local_addr()
        .expect("a bound listener has an address");
    let talker = Talker::connect(step, addr);
    let (theirs, _) = listener
        .accept()
        .expect("the check could not accept its own connection");
    (talker, theirs)
}

/// Sends `message` and fails unless the same bytes come back.
fn expect_echo(step: &Step, client: &mut Talker, message: &[u8], hint: &str) {
    client.send(message);
    expect_reply(step, client, message, hint);
}

/// Fails unless the next line the client reads is exactly `message`.
fn expect_reply(step: &Step, client: &mut Talker, message: &[u8], hint: &str) {
    let reply = client.read_line();
    if reply.bytes == message && reply.end == End::Newline {
        return;
    }
    let report = step
        .report()
        .did(&format!(
            "client {} sent {}",
            client.local_addr(),
            show(message)
        ))
        .expected(&format!("{} back", show(message)));
    if reply.end == End::TimedOut && reply.bytes.is_empty() {
        // Silence, while the check holds other clients: this check's hint.
        report.got(&reply.describe()).observed(hint).fail();
    }
    report.got_received(message, &reply).hint(hint).fail();
}

/// Fails unless the client reads `expected`, then end of file, nothing more.
fn expect_last_words(step: &Step, client: &mut Talker, expected: &[u8], did: &str, hint: &str) {
    let rest = client.read_to_end();
    if rest.bytes != expected || rest.end != End::Closed {
        step.report()
            .did(did)
            .expected(&format!("{} and then end of file", show(expected)))
            .got_received(expected, &rest)
            .hint(hint)
            .fail();
    }
}

// ---------------------------------------------------------------------------
// The pieces: Conversations, Slot, turn_away, converse.

/// Calls the student's `conversations.admit(&connection, max)`, and gives
/// the connection back with what admit returned.
fn admit(
    step: &Step,
    conversations: &Conversations,
    connection: TcpStream,
    max_clients: usize,
) -> (TcpStream, Option<Slot>) {
    let call = format!("conversations.admit(&connection, {max_clients})");
    let list = conversations.clone();
    let (connection, result) = run_quick(
        step,
        &call,
        "admit only looks at the list and adds to it: nothing in it waits. Does it \
         lock the list twice (count() locks it too, while you hold its guard)?",
        move || {
            let result = list.admit(&connection, max_clients);
            (connection, result)
        },
    );
    (connection, step.ok(&call, result))
}

/// Fails unless the list counts `expected` conversations.
fn expect_count(
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
fn give_back(step: &Step, slot: Slot) {
    run_quick(
        step,
        "drop(slot)",
        "dropping a Slot locks the list: is its lock still held somewhere?",
        move || drop(slot),
    );
}

#[test]
fn step_01_admit_takes_clients_up_to_the_limit() {
    let step = Step::new(
        "step 1: Conversations::admit takes clients in up to max_clients, then says no",
        CHAPTER,
    );
    let conversations = Conversations::new();
    let (_first_client, first) = connected_pair(&step);
    let (_second_client, second) = connected_pair(&step);
    let (_third_client, third) = connected_pair(&step);
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
            "admit keeps a second handle on each connection it takes in (try_clone) in the \
             list: how many the list holds is how many conversations go on.",
        );
    }
    let (third, slot) = admit(&step, &conversations, third, 2);
    if slot.is_some() {
        step.report()
            .did("admitted 2 connections with max_clients 2, then a third")
            .expected("None: two conversations already go on")
            .got("Some(slot)")
            .hint("compare how many conversations go on with max_clients before you take one in.")
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
}

#[test]
fn step_02_a_dropped_slot_gives_its_place_back() {
    let step = Step::new("step 2: dropping a Slot gives its place back", CHAPTER);
    let conversations = Conversations::new();
    let (_client, connection) = connected_pair(&step);
    let (connection, slot) = admit(&step, &conversations, connection, 1);
    let slot = slot.expect("step 1 checks that admit says yes");
    give_back(&step, slot);
    expect_count(
        &step,
        &conversations,
        0,
        "admitted a connection, then dropped its Slot",
        "Slot's drop takes the conversation's handle out of the list (by its number), so \
         that it counts no more.",
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

#[test]
fn step_03_a_slot_is_given_back_when_its_conversation_panics() {
    let step = Step::new(
        "step 3: a conversation that panics still gives its place back",
        CHAPTER,
    );
    let conversations = Conversations::new();
    let (_client, connection) = connected_pair(&step);
    let (connection, slot) = admit(&step, &conversations, connection, 1);
    let slot = slot.expect("step 1 checks that admit says yes");
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

#[test]
fn step_04_the_last_slot_given_back_wakes_the_waiting_server() {
    let step = Step::new(
        "step 4: when the last conversation ends, a server waiting for it wakes at once",
        CHAPTER,
    );
    let conversations = Conversations::new();
    let (_client, connection) = connected_pair(&step);
    let (_connection, slot) = admit(&step, &conversations, connection, 1);
    let slot = slot.expect("step 1 checks that admit says yes");
    let waiter = conversations.clone();
    let (sender, woke) = mpsc::channel();
    let began = Instant::now();
    thread::spawn(move || {
        let all_ended = waiter.wait_until_all_ended(millis(600));
        let _ = sender.send((all_ended, began.elapsed()));
    });
    // The waiter waits; a moment later (pacing, not synchronising: if the
    // slot went first, the waiter would only return sooner) the slot goes.
    thread::sleep(millis(30));
    step.transcript().add(
        "check   wait_until_all_ended(600 ms) waits; the last Slot is dropped after 30 ms"
            .to_string(),
    );
    give_back(&step, slot);
    let (all_ended, after) = woke
        .recv_timeout(QUICK + millis(600))
        .expect("wait_until_all_ended (given) returns within 600 ms");
    if !all_ended || after > millis(300) {
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

#[test]
fn step_05_cut_short_shuts_down_reading_only() {
    let step = Step::new(
        "step 5: cut_short wakes each conversation's read with end of file, and writes nothing",
        CHAPTER,
    );
    let conversations = Conversations::new();
    let (mut first_client, first) = connected_pair(&step);
    let (mut second_client, second) = connected_pair(&step);
    let (first, _first_slot) = admit(&step, &conversations, first, 5);
    let (_second, _second_slot) = admit(&step, &conversations, second, 5);
    // A conversation's thread, blocked in a read of its client.
    let mut reading = first
        .try_clone()
        .expect("the check could not clone its socket");
    let (sender, read_ended) = mpsc::channel();
    thread::spawn(move || {
        let _ = reading.set_read_timeout(Some(3 * DEADLINE));
        let mut buffer = [0u8; 16];
        let _ = sender.send(reading.read(&mut buffer).map_err(|error| error.kind()));
    });
    let list = conversations.clone();
    let cut = run_quick(
        &step,
        "conversations.cut_short()",
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
    match read_ended.recv_timeout(QUICK) {
        Ok(Ok(0)) => {}
        outcome => {
            let got = match outcome {
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
    }
    // The sending side still works: the conversation writes its goodbye.
    let sent = (&first).write_all(b"goodbye\n");
    let reply = first_client.read_line();
    if sent.is_err() || reply.bytes != b"goodbye\n" {
        step.report()
            .did("after cut_short(), the server's side wrote b\"goodbye\\n\" to its client")
            .expected("the client to read b\"goodbye\\n\"")
            .got_received(b"goodbye\n", &reply)
            .observed(
                "cut_short shut down the sending side too: the conversation can no longer \
                 write its goodbye. Shut down only the reading side (Shutdown::Read).",
            )
            .fail();
    }
    let extra = second_client.read_for(QUIET);
    if !extra.bytes.is_empty() || extra.end != End::TimedOut {
        step.report()
            .did("called cut_short(); the second client waited for what comes")
            .expected(&format!(
                "nothing, for {} ms: the goodbye is the conversation's to write",
                QUIET.as_millis()
            ))
            .got(&extra.describe())
            .hint(
                "cut_short writes nothing and closes nothing: a conversation may be writing \
                 an echo at that very moment. It shuts the reading side down, and the \
                 conversation's thread finishes its echo, then writes SHUTDOWN_REPLY.",
            )
            .fail();
    }
}

#[test]
fn step_06_turn_away_says_busy_and_closes_gently() {
    let step = Step::new(
        "step 6: turn_away writes the busy line and closes gently",
        CHAPTER,
    );
    let (mut client, connection) = connected_pair(&step);
    // A client that speaks before it reads: closing with its message unread
    // would reset the connection, and the busy line could be lost.
    client.send(b"let me in, please\n");
    let peer = client.local_addr();
    let running = start_quick(&step, "turn_away(connection, peer)", move || {
        turn_away(connection, peer)
    });
    let reply = client.read_line();
    if reply.bytes != BUSY_REPLY {
        step.report()
            .did("a client sent a message, then read; meanwhile turn_away(connection, peer) ran")
            .expected(&format!("{} back", show(BUSY_REPLY)))
            .got_received(BUSY_REPLY, &reply)
            .hint(
                "write BUSY_REPLY, then close with close_gently (lesson 5): it shuts down the \
                 sending side and reads what the client still sends, so that the line is \
                 not lost to a reset.",
            )
            .fail();
    }
    let rest = client.read_to_end();
    if rest.end == End::Failed(ErrorKind::ConnectionReset) {
        step.report()
            .did("read the busy line, then went on reading")
            .expected("end of file, and nothing more")
            .got(&rest.describe())
            .observed(
                "turn_away closed the connection with the client's message unread, so the \
                 OS reset it; a reset can destroy the busy line before the client reads it. \
                 Close with close_gently (lesson 5), which reads what the client still sends.",
            )
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
    running.finish(
        &step,
        "turn_away must return once the client has closed too (close_gently does).",
    );
}

/// Serves `connection` with the student's converse on a thread of its own.
fn start_converse(step: &Step, connection: TcpStream, slot: Slot) -> Quick<Result<(), String>> {
    let limits = settings(1, millis(100)).limits;
    start_quick(step, "converse(connection, &limits, &slot)", move || {
        converse(connection, &limits, &slot).map_err(|error| format!("{error:#}"))
    })
}

/// Waits for converse to return Ok(()).
fn expect_converse_ok(step: &Step, running: Quick<Result<(), String>>, hint: &str) {
    if let Err(error) = running.finish(step, hint) {
        step.report()
            .expected("converse to return Ok(())")
            .got(&format!("Err: {error}"))
            .hint(hint)
            .fail();
    }
}

#[test]
fn step_07_converse_echoes_until_the_client_hangs_up() {
    let step = Step::new(
        "step 7: converse echoes every message, bytes exact, and no goodbye to a client that hangs up",
        CHAPTER,
    );
    let conversations = Conversations::new();
    let (mut client, connection) = connected_pair(&step);
    let (connection, slot) = admit(&step, &conversations, connection, 1);
    let slot = slot.expect("step 1 checks that admit says yes");
    let running = start_converse(&step, connection, slot);
    let hint = "serve the client with serve_connection_within(connection, limits) (given, \
                lesson 7), and return what it returns.";
    expect_echo(&step, &mut client, b"hello\n", hint);
    expect_echo(
        &step,
        &mut client,
        b" \tbytes \xff\x00 as they are\r\n",
        hint,
    );
    client.send(b"a tail");
    client.close_sending();
    expect_last_words(
        &step,
        &mut client,
        b"a tail",
        "sent a tail without newline and closed its sending side",
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

#[test]
fn step_08_converse_says_goodbye_when_cut_short() {
    let step = Step::new(
        "step 8: a conversation cut short says goodbye (SHUTDOWN_REPLY) and closes",
        CHAPTER,
    );
    let conversations = Conversations::new();
    let (mut client, connection) = connected_pair(&step);
    let (connection, slot) = admit(&step, &conversations, connection, 1);
    let slot = slot.expect("step 1 checks that admit says yes");
    let running = start_converse(&step, connection, slot);
    expect_echo(
        &step,
        &mut client,
        b"before the cut\n",
        "serve the client with serve_connection_within(connection, limits) (given, lesson 7).",
    );
    step.transcript()
        .add("check   cut the conversations short (cut_short)".to_string());
    conversations.cut_short();
    expect_last_words(
        &step,
        &mut client,
        SHUTDOWN_REPLY,
        "the client waited, silent; the check called cut_short()",
        "cut short, the seesaw ends as if the client had hung up. Then ask the slot \
         (was_cut): if the server cut the conversation, write SHUTDOWN_REPLY on a second \
         handle of the socket (try_clone before the seesaw takes the connection) and close \
         gently.",
    );
    drop(client);
    expect_converse_ok(
        &step,
        running,
        "after the goodbye, close gently (close_gently returns once the client has closed \
         too), and return Ok(()).",
    );
}

// ---------------------------------------------------------------------------
// serve_until_stopped, in this process, with the check as its clients.

/// The student's serve_until_stopped, running on a thread of its own.
struct RunningServer {
    addr: SocketAddr,
    stop: Stop,
    /// Kept so that the thread counts as the student's code until it ends.
    _running: Running<()>,
    /// Brings back what it returned.
    returned: mpsc::Receiver<Result<Summary, String>>,
}

/// Starts the student's serve_until_stopped on a listener of the check's
/// own, 127.0.0.1 and a port the OS picks, with a Stop the check holds.
fn start_server(step: &Step, settings: Settings) -> RunningServer {
    let listener = TcpListener::bind("127.0.0.1:0").expect("the check could not listen");
    let addr = listener
        .local_addr()
        .expect("a bound listener has an address");
    let stop = Stop::new(&listener).expect("Stop::new (given) works on a bound listener");
    let (sender, returned) = mpsc::channel();
    let theirs = stop.clone();
    let call = format!(
        "serve_until_stopped(listener, settings (max_clients {}, grace {} ms), stop)",
        settings.max_clients,
        settings.grace.as_millis()
    );
    let running = bounded::start(step, &call, move || {
        let result = serve_until_stopped(listener, settings, theirs);
        let _ = sender.send(result.map_err(|error| format!("{error:#}")));
    });
    RunningServer {
        addr,
        stop,
        _running: running,
        returned,
    }
}

impl RunningServer {
    /// Fails if serve_until_stopped has returned though nobody stopped it.
    fn expect_still_serving(&self, step: &Step) {
        match self.returned.try_recv() {
            Err(mpsc::TryRecvError::Empty) => {}
            Ok(returned) => step
                .report()
                .expected("serve_until_stopped to go on serving: nobody stopped it")
                .got(&format!("it returned {}", describe_returned(&returned)))
                .hint(
                    "serve until the stop is triggered: a failed accept or the end of a \
                     client is not a reason to return.",
                )
                .fail(),
            Err(mpsc::TryRecvError::Disconnected) => step
                .report()
                .expected("serve_until_stopped to go on serving")
                .got("it panicked")
                .fail(),
        }
    }

    /// Triggers the stop, as the program's Ctrl-C handler does.
    fn trigger(&self, step: &Step) -> Instant {
        step.transcript()
            .add("check   triggered the stop (stop.trigger(), as Ctrl-C does)".to_string());
        self.stop.trigger();
        Instant::now()
    }

    /// Waits at most `within` for serve_until_stopped to return, and fails
    /// unless it returned `expected`.
    fn expect_summary(&self, step: &Step, expected: Summary, within: Duration, late_hint: &str) {
        let returned = match self.returned.recv_timeout(within) {
            Ok(returned) => returned,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                step.note_waited_out();
                step.report()
                    .expected(&format!(
                        "serve_until_stopped to return Ok({expected}) within {} ms",
                        within.as_millis()
                    ))
                    .got("it was still running")
                    .observed(late_hint)
                    .fail()
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => step
                .report()
                .expected(&format!("serve_until_stopped to return Ok({expected})"))
                .got("it panicked")
                .fail(),
        };
        if returned != Ok(expected) {
            let hint = match &returned {
                Ok(got) if got.served > expected.served => {
                    "count a client as served only when it is admitted and served: not the \
                     wake-up call, not a client that came after the stop, not one turned away."
                }
                Ok(got) if got.served < expected.served => {
                    "count every client admitted and served, one each."
                }
                Ok(_) => {
                    "cut_short counts the conversations still going on when the grace ends: \
                     return what it returns, and 0 when none was left to cut."
                }
                Err(_) => "stopping is no error: return Ok(Summary { served, cut_short }).",
            };
            step.report()
                .expected(&format!("serve_until_stopped to return Ok({expected})"))
                .got(&describe_returned(&returned))
                .hint(hint)
                .fail();
        }
    }
}

fn describe_returned(returned: &Result<Summary, String>) -> String {
    match returned {
        Ok(summary) => format!("Ok({summary})"),
        Err(error) => format!("Err: {error}"),
    }
}

const ONE_AT_A_TIME: &str = "the server still talks to another client and has not served \
     this one. Serve each admitted client on a thread of its own (serve_client_in_slot, \
     given), and go straight back to accepting.";

/// Connects a new client and waits until it is served: a client that gets
/// the busy line tries again a moment later (as the line asks), for at most
/// QUICK. Fails unless its message is echoed.
fn expect_served(step: &Step, addr: SocketAddr, message: &[u8], hint: &str) -> Talker {
    let deadline = Instant::now() + QUICK;
    let mut tries = 0;
    loop {
        tries += 1;
        let mut client = Talker::connect(step, addr);
        client.send(message);
        let reply = client.read_line();
        if reply.bytes == message && reply.end == End::Newline {
            return client;
        }
        if reply.bytes != BUSY_REPLY || Instant::now() >= deadline {
            let report = step
                .report()
                .did(&format!(
                    "a new client sent {} ({tries} tries; after a busy line, it tried again \
                     20 ms later)",
                    show(message)
                ))
                .expected(&format!("{} back", show(message)));
            if reply.bytes == BUSY_REPLY {
                report
                    .got(&format!(
                        "the busy line every time, for {} ms",
                        QUICK.as_millis()
                    ))
                    .observed(hint)
                    .fail();
            }
            report
                .got_received(message, &reply)
                .hint(ONE_AT_A_TIME)
                .fail();
        }
        // Pacing a client that was told to try again later.
        thread::sleep(millis(20));
    }
}

#[test]
fn step_09_serve_until_stopped_serves_clients_at_once() {
    let step = Step::new(
        "step 9: serve_until_stopped serves several clients at once, bytes exact",
        CHAPTER,
    );
    let server = start_server(&step, settings(4, millis(100)));
    let mut idle = Talker::connect(&step, server.addr);
    let mut busy = Talker::connect(&step, server.addr);
    expect_echo(&step, &mut busy, b"is anybody there?\n", ONE_AT_A_TIME);
    expect_echo(&step, &mut idle, b"my turn now\n", ONE_AT_A_TIME);
    expect_echo(
        &step,
        &mut busy,
        b" \tbytes \xff\x00 as they are\r\n",
        ONE_AT_A_TIME,
    );
    busy.send(b"a tail");
    busy.close_sending();
    expect_last_words(
        &step,
        &mut busy,
        b"a tail",
        "sent a tail without newline and closed its sending side",
        "serve each client with serve_client_in_slot (given), which runs your converse.",
    );
    server.expect_still_serving(&step);
}

#[test]
fn step_10_the_client_over_the_limit_is_told_busy_at_once() {
    let step = Step::new(
        "step 10: with max_clients conversations going on, the next client gets the busy line at once",
        CHAPTER,
    );
    let server = start_server(&step, settings(2, millis(100)));
    let mut first = Talker::connect(&step, server.addr);
    expect_echo(&step, &mut first, b"first\n", ONE_AT_A_TIME);
    let mut second = Talker::connect(&step, server.addr);
    expect_echo(&step, &mut second, b"second\n", ONE_AT_A_TIME);
    // The third says nothing: it is told at once, not when it speaks.
    let mut third = Talker::connect(&step, server.addr);
    let answer = third.read_for(QUICK);
    if answer.bytes != BUSY_REPLY || answer.end != End::Closed {
        let hint = match (&answer.end, answer.bytes.is_empty()) {
            (End::TimedOut, true) => {
                "the third client waits in silence, and cannot tell a busy server from a \
                 dead one. When admit says no (None), turn the client away at once: \
                 turn_away, on a thread of its own."
            }
            (End::Closed, true) => {
                "the server closed without a word: turn the client away with turn_away, \
                 which writes BUSY_REPLY first."
            }
            _ => {
                "admit each client with max_clients (settings.max_clients); when it says \
                 no, turn_away(connection, peer) on a thread of its own."
            }
        };
        step.report()
            .did("two clients are served (max_clients 2); a third connected and waited, silent")
            .expected(&format!("{} at once, then end of file", show(BUSY_REPLY)))
            .got(&answer.describe())
            .observed(hint)
            .fail();
    }
    expect_echo(
        &step,
        &mut first,
        b"still served?\n",
        "turning a client away must not disturb the conversations going on.",
    );
    expect_echo(
        &step,
        &mut second,
        b"me too?\n",
        "turning a client away must not disturb the conversations going on.",
    );
    // The third keeps its connection open: turning it away must not keep
    // the server from the next client.
    let mut fourth = Talker::connect(&step, server.addr);
    let answer = fourth.read_for(millis(400));
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

#[test]
fn step_11_a_client_that_leaves_gives_its_place_back() {
    let step = Step::new(
        "step 11: once a client leaves, its place goes to a new client",
        CHAPTER,
    );
    let server = start_server(&step, settings(1, millis(100)));
    let hint = "the place of a client that has left is given back when its Slot is dropped: \
                move the Slot into the conversation's thread (serve_client_in_slot takes it), \
                so that it is dropped when the thread is done.";
    for round in 1..=3 {
        let message = format!("client {round} of 3, one at a time\n");
        let mut client = expect_served(&step, server.addr, message.as_bytes(), hint);
        client.close_sending();
        expect_last_words(
            &step,
            &mut client,
            b"",
            "closed its sending side",
            "a client that hangs up gets end of file, and no goodbye.",
        );
    }
    server.expect_still_serving(&step);
}

#[test]
fn step_12_a_conversation_that_fails_gives_its_place_back() {
    let step = Step::new(
        "step 12: a conversation that ends in error (reset, too long, idle) gives its place back",
        CHAPTER,
    );
    let mut with_idle_limit = settings(1, millis(100));
    with_idle_limit.limits.idle = millis(100);
    let server = start_server(&step, with_idle_limit);
    let hint = "a conversation that ends in an error must give its place back too: the Slot \
                is dropped however the thread ends. Do not count by hand (a count you \
                lower at the end of the conversation is never lowered when it returns early).";

    // A client that vanishes in the middle of a message: a reset.
    let mut doomed = expect_served(&step, server.addr, b"hello\n", hint);
    // Its echo comes back unread: closing then resets the connection.
    doomed.send(b"hello again\n");
    doomed.send(b"half a mess");
    doomed.reset();

    // A client whose message is too long gets the error line.
    let mut flooder = expect_served(&step, server.addr, b"I am next\n", hint);
    flooder.send_in_background(vec![b'x'; MAX_MESSAGE + 1]);
    let reply = flooder.read_line();
    if reply.bytes != TOO_LONG_REPLY {
        step.report()
            .did(&format!(
                "a client sent {MAX_MESSAGE} + 1 bytes without a newline"
            ))
            .expected(&format!("{} back", show(TOO_LONG_REPLY)))
            .got_received(TOO_LONG_REPLY, &reply)
            .hint("serve each client with serve_client_in_slot (given), which runs your converse.")
            .fail();
    }
    drop(flooder);

    // A client that stays silent past the idle limit (100 ms here).
    let mut silent = expect_served(&step, server.addr, b"and then silence\n", hint);
    let reply = silent.read_line();
    if reply.bytes != IDLE_REPLY {
        step.report()
            .did("a client stayed silent past the idle limit (settings.limits.idle: 100 ms)")
            .expected(&format!("{} back", show(IDLE_REPLY)))
            .got_received(IDLE_REPLY, &reply)
            .hint("pass settings.limits on to each conversation (serve_client_in_slot takes them).")
            .fail();
    }
    drop(silent);

    let mut last = expect_served(&step, server.addr, b"is there room for me?\n", hint);
    expect_echo(&step, &mut last, b"yes\n", hint);
    server.expect_still_serving(&step);
}

/// How a new client must be treated once the server stops.
#[derive(PartialEq)]
enum Late {
    /// Refused, or at least not served.
    NotServed,
    /// Refused or closed at once: not left waiting in silence either.
    ToldAtOnce,
}

/// Fails if a new client at `addr` is served (or, `Late::ToldAtOnce`, left
/// waiting in silence). Refused, reset, closed or an error line are fine.
fn expect_no_service(step: &Step, addr: SocketAddr, late_rule: Late, when: &str, hint: &str) {
    let transcript = step.transcript();
    let mut late = match TcpStream::connect_timeout(&addr, QUICK) {
        Ok(late) => late,
        Err(error) => {
            transcript.add(format!("check   a new client could not connect: {error}"));
            return;
        }
    };
    transcript.add("check   a new client connected; it sends b\"am I too late?\\n\"".to_string());
    let _ = late.write_all(b"am I too late?\n");
    let _ = late.set_read_timeout(Some(QUIET));
    let mut reply = Vec::new();
    let mut chunk = [0u8; 1024];
    let ended = loop {
        match late.read(&mut chunk) {
            Ok(0) => break "end of file".to_string(),
            Ok(count) => reply.extend_from_slice(&chunk[..count]),
            Err(error) if is_timeout(&error) => {
                break format!("nothing more for {} ms", QUIET.as_millis());
            }
            Err(error) => break format!("an error: {}", error.kind()),
        }
    };
    transcript.add(format!(
        "check   the new client got {}, then {ended}",
        show(&reply)
    ));
    let served = reply.starts_with(b"am I too late?\n");
    let silent = reply.is_empty() && ended.starts_with("nothing");
    if served || (late_rule == Late::ToldAtOnce && silent) {
        let got = match served {
            true => format!("{} back: it was served", show(&reply)),
            false => format!(
                "it connected, and then nothing came for {} ms: it waits in a backlog \
                 that nobody will accept from",
                QUIET.as_millis()
            ),
        };
        step.report()
            .did(&format!(
                "{when}; then a new client connected and sent b\"am I too late?\\n\""
            ))
            .expected("the client to be refused (or its connection closed at once), not served")
            .got(&got)
            .hint(hint)
            .fail();
    }
}

#[test]
fn step_13_stop_wakes_the_server_and_it_returns() {
    let step = Step::new(
        "step 13: triggering the stop wakes a server that waits in accept; it returns and refuses clients",
        CHAPTER,
    );
    let server = start_server(&step, settings(4, millis(100)));
    // A served client proves the loop runs; then it waits in accept.
    let mut client = Talker::connect(&step, server.addr);
    expect_echo(&step, &mut client, b"hello\n", ONE_AT_A_TIME);
    client.close_sending();
    expect_last_words(
        &step,
        &mut client,
        b"",
        "closed its sending side",
        "no goodbye to a client that hangs up.",
    );
    server.trigger(&step);
    server.expect_summary(
        &step,
        Summary {
            served: 1,
            cut_short: 0,
        },
        QUICK,
        "the server still waits: accept() returned for the wake-up call (Stop::trigger \
         connects to the listener), so after each accept look whether the stop was \
         triggered, and if so stop accepting; with no conversation going on, return at once.",
    );
    expect_no_service(
        &step,
        server.addr,
        Late::ToldAtOnce,
        "serve_until_stopped has returned",
        "close the listener when you stop accepting (drop it): clients are then refused.",
    );
}

#[test]
fn step_14_conversations_in_flight_finish_within_the_grace() {
    let step = Step::new(
        "step 14: once stopped, no new client is served, and the conversations going on may finish",
        CHAPTER,
    );
    let server = start_server(&step, settings(4, millis(1000)));
    let mut client = Talker::connect(&step, server.addr);
    expect_echo(&step, &mut client, b"hello\n", ONE_AT_A_TIME);
    server.trigger(&step);
    expect_no_service(
        &step,
        server.addr,
        Late::ToldAtOnce,
        "the stop was triggered",
        "once the stop is triggered, serve no new client: stop accepting, and close the \
         listener so that new clients are refused and can try elsewhere.",
    );
    let cut_too_soon = "the conversation was cut short at once: conversations going on may \
                        finish during the grace (settings.grace, 1000 ms here). Wait for them \
                        (wait_until_all_ended) before you cut them short.";
    client.send_in_pieces(&[b"one more message, ", b"in pieces\n"]);
    expect_reply(
        &step,
        &mut client,
        b"one more message, in pieces\n",
        cut_too_soon,
    );
    client.close_sending();
    expect_last_words(
        &step,
        &mut client,
        b"",
        "closed its sending side during the grace",
        "a client that hangs up during the grace gets end of file and no goodbye.",
    );
    server.expect_summary(
        &step,
        Summary {
            served: 1,
            cut_short: 0,
        },
        millis(400),
        "every conversation has ended, yet the server waits on: wait for the conversations \
         at most the grace, and no longer than they need (wait_until_all_ended returns as \
         soon as the last Slot is dropped, if Slot's drop wakes it). Never sleep the grace.",
    );
}

#[test]
fn step_15_the_rest_get_a_goodbye_when_the_grace_ends() {
    let step = Step::new(
        "step 15: when the grace ends, each conversation still going on gets SHUTDOWN_REPLY",
        CHAPTER,
    );
    let grace = millis(100);
    let server = start_server(&step, settings(2, grace));
    let mut first = Talker::connect(&step, server.addr);
    expect_echo(&step, &mut first, b"first\n", ONE_AT_A_TIME);
    let mut second = Talker::connect(&step, server.addr);
    expect_echo(&step, &mut second, b"second\n", ONE_AT_A_TIME);
    // A third is turned away (max_clients 2): it is not counted as served.
    let mut third = Talker::connect(&step, server.addr);
    expect_last_words(
        &step,
        &mut third,
        BUSY_REPLY,
        "two clients are served (max_clients 2); a third connected",
        "turn the client over the limit away with the busy line.",
    );
    let stopped = server.trigger(&step);
    for client in [&mut first, &mut second] {
        // The goodbye is due when the grace ends: grace + QUICK at most.
        let goodbye = client.read(false, grace + QUICK, true);
        let after = stopped.elapsed();
        if goodbye.bytes != SHUTDOWN_REPLY || goodbye.end != End::Closed {
            step.report()
                .did("two clients stayed connected, silent; the stop was triggered (grace 100 ms)")
                .expected(&format!(
                    "{} when the grace ends, then end of file",
                    show(SHUTDOWN_REPLY)
                ))
                .got_received(SHUTDOWN_REPLY, &goodbye)
                .hint(
                    "when the grace ends with conversations still going on, cut them short \
                     (cut_short): each one's seesaw then ends and its converse says goodbye.",
                )
                .fail();
        }
        if after < grace - millis(20) {
            step.report()
                .did("two clients stayed connected, silent; the stop was triggered (grace 100 ms)")
                .expected("the goodbye when the grace ends, not before")
                .got(&format!("it came {} ms after the stop", after.as_millis()))
                .hint(
                    "conversations going on may finish during the grace: wait for them \
                     (wait_until_all_ended(settings.grace)) before you cut them short.",
                )
                .fail();
        }
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

/// The lesson's program, started by the check, which can send it a signal
/// (the support crate's program::Server has no way to get its pid) and
/// waits for its lines with a deadline of the check's choosing.
struct Program {
    child: std::process::Child,
    command: String,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
    /// The stderr pipe has closed: the program has ended.
    ended: bool,
}

impl Program {
    fn start(args: &[&str]) -> Program {
        use std::process::{Command, Stdio};
        let path = program!();
        let mut child = Command::new(path)
            .args(args)
            .env("RUST_BACKTRACE", "0")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the check could not start the program");
        let stderr = child.stderr.take().expect("stderr is piped");
        let (sender, lines) = mpsc::channel();
        thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        Program {
            child,
            command: format!("{name} {}", args.join(" ")),
            lines,
            seen: Vec::new(),
            ended: false,
        }
    }

    fn remember(&mut self, line: String) {
        if self.seen.len() >= 200 {
            self.seen.drain(..100);
        }
        self.seen.push(line);
    }

    /// Waits at most `within` for a line of stderr that contains `text`.
    fn line_within(&mut self, text: &str, within: Duration) -> Option<String> {
        let deadline = Instant::now() + within;
        while !self.ended {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.remember(line.clone());
                    if line.contains(text) {
                        return Some(line);
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => return None,
                Err(mpsc::RecvTimeoutError::Disconnected) => self.ended = true,
            }
        }
        None
    }

    /// Waits at most `within` for a line that contains `text`; fails if none comes.
    fn wait_for_line(&mut self, step: &Step, text: &str, within: Duration, hint: &str) -> String {
        match self.line_within(text, within) {
            Some(line) => line,
            None => {
                let got = match self.ended {
                    true => "the program ended first".to_string(),
                    false => format!("nothing like it within {} ms", within.as_millis()),
                };
                self.report(step)
                    .expected(&format!("a line on stderr containing {text:?}"))
                    .got(&got)
                    .hint(hint)
                    .fail()
            }
        }
    }

    /// Waits for `listening on ADDR` and returns ADDR.
    fn listening_address(&mut self, step: &Step) -> SocketAddr {
        let line = self.wait_for_line(
            step,
            "listening on ",
            START_DEADLINE,
            "main.rs (given) says `listening on ADDR` once it listens: did it fail first?",
        );
        let after = line.split("listening on ").nth(1).unwrap_or_default();
        match after.split_whitespace().next().unwrap_or_default().parse() {
            Ok(addr) => addr,
            Err(_) => self
                .report(step)
                .expected("`listening on IP:PORT`")
                .got(&format!("{line:?}"))
                .fail(),
        }
    }

    /// Sends SIGINT, as Ctrl-C in a terminal does.
    #[cfg(unix)]
    fn interrupt(&mut self, step: &Step) {
        step.transcript()
            .add("check   pressed Ctrl-C: sent SIGINT to the program (kill -INT)".to_string());
        let sent = std::process::Command::new("kill")
            .arg("-INT")
            .arg(self.child.id().to_string())
            .status();
        if !sent.as_ref().is_ok_and(|status| status.success()) {
            self.report(step)
                .expected("`kill -INT PID` to deliver Ctrl-C to the program")
                .got(&format!("{sent:?}"))
                .hint("this is the check's trouble, not your code's: is `kill` on the PATH?")
                .fail();
        }
    }

    /// Waits at most `within` for the program to end; its exit status, or
    /// None if it still runs.
    #[cfg(unix)]
    fn exit_within(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + within;
        // Its stderr closes when it ends: read it until then.
        while !self.ended {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => self.remember(line),
                Err(mpsc::RecvTimeoutError::Timeout) => return None,
                Err(mpsc::RecvTimeoutError::Disconnected) => self.ended = true,
            }
        }
        // The pipe is closed: the process is ending, if it has not yet.
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            thread::sleep(millis(5));
        }
    }

    /// What the program printed so far.
    fn stderr(&mut self) -> String {
        while let Ok(line) = self.lines.try_recv() {
            self.remember(line);
        }
        self.seen.join("\n")
    }

    /// What the program printed so far, with a moment for the last lines
    /// of a program that is ending (a panic's message) to come in.
    fn last_words(&mut self) -> String {
        let deadline = Instant::now() + millis(200);
        while !self.ended {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => self.remember(line),
                Err(mpsc::RecvTimeoutError::Timeout) => break,
                Err(mpsc::RecvTimeoutError::Disconnected) => self.ended = true,
            }
        }
        self.stderr()
    }

    /// Connects a client to the program; a failure shows what it printed.
    fn connect(&mut self, step: &Step, addr: SocketAddr) -> Talker {
        match TcpStream::connect_timeout(&addr, QUICK) {
            Ok(stream) => {
                step.transcript()
                    .add(format!("check   connected to you at {addr}"));
                Talker::new(step, stream)
            }
            Err(error) => self
                .report(step)
                .did(&format!("the check connected to the program at {addr}"))
                .got(&format!("an error: {error}"))
                .hint(hint_for_kind(error.kind()).unwrap_or("is the program still running?"))
                .fail(),
        }
    }

    /// A failure message that shows how the program was run and what it printed.
    fn report(&mut self, step: &Step) -> seesaw_checks::report::Report {
        let seen = self.last_words();
        let report = step
            .report()
            .did(&format!("ran `{}` in the background", self.command))
            .did(&format!("its stderr so far:\n{seen}"));
        if seen.contains("not yet implemented") {
            report.observed(seesaw_checks::report::TODO_HINT)
        } else if seen.contains("panicked") {
            report.observed(
                "the program panicked (its stderr is above): the message names the place \
                 in your lib.rs.",
            )
        } else {
            report
        }
    }
}

impl Drop for Program {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Like expect_echo, for a client of the program: a failure shows what the
/// program printed (a panic of your code shows there).
fn expect_program_echo(
    step: &Step,
    server: &mut Program,
    client: &mut Talker,
    message: &[u8],
    hint: &str,
) {
    client.send(message);
    let reply = client.read_line();
    if reply.bytes == message && reply.end == End::Newline {
        return;
    }
    let report = server
        .report(step)
        .did(&format!(
            "client {} sent {}",
            client.local_addr(),
            show(message)
        ))
        .expected(&format!("{} back", show(message)));
    let report = match hint_for_received(message, &reply) {
        Some(observed) if !server.stderr().contains("panicked") => report.observed(&observed),
        _ => report,
    };
    report.got(&reply.describe()).hint(hint).fail();
}

#[test]
fn step_16_the_program_tells_the_client_over_the_limit_it_is_busy() {
    let step = Step::new(
        "step 16: `server --max-clients 1` serves one client and turns the next away, narrating it",
        CHAPTER,
    );
    let mut server = Program::start(&["server", "[::1]:0", "--max-clients", "1"]);
    let addr = server.listening_address(&step);
    let mut first = server.connect(&step, addr);
    expect_program_echo(
        &step,
        &mut server,
        &mut first,
        b"hello over IPv6\n",
        ONE_AT_A_TIME,
    );
    let mut second = server.connect(&step, addr);
    let turned = format!("busy: turned {} away", second.local_addr());
    let answer = second.read_for(QUICK);
    if answer.bytes != BUSY_REPLY {
        server
            .report(&step)
            .did("one client is served (--max-clients 1); a second connected")
            .expected(&format!("{} at once", show(BUSY_REPLY)))
            .got(&answer.describe())
            .hint("admit each client with settings.max_clients; when it says no, turn_away.")
            .fail();
    }
    drop(second);
    server.wait_for_line(
        &step,
        &turned,
        QUICK,
        "turn_away narrates each client it turns away on stderr: `busy: turned PEER away`, \
         with the address accept returned (its Display writes IPv6 in brackets).",
    );
    // The program's client, turned away, says so and exits 1.
    let addr_text = addr.to_string();
    let finished = program::run(program!(), &["client", &addr_text], b"hi\n");
    finished
        .expect_stdout(&step, BUSY_REPLY)
        .expect_one_line_error(&step, &["busy"]);
    expect_program_echo(
        &step,
        &mut server,
        &mut first,
        b"still served?\n",
        "turning a client away must not disturb the conversation going on.",
    );
}

#[cfg(unix)]
#[test]
fn step_17_ctrl_c_stops_the_program_well() {
    let step = Step::new(
        "step 17: Ctrl-C stops the program well: no new clients, a goodbye, a summary, exit code 0",
        CHAPTER,
    );
    let grace = millis(150);
    let mut server = Program::start(&[
        "server",
        "127.0.0.1:0",
        "--max-clients",
        "4",
        "--grace",
        "150",
    ]);
    let addr = server.listening_address(&step);
    let mut idle = server.connect(&step, addr);
    expect_program_echo(
        &step,
        &mut server,
        &mut idle,
        b"I will stay\n",
        ONE_AT_A_TIME,
    );
    let mut leaving = server.connect(&step, addr);
    expect_program_echo(
        &step,
        &mut server,
        &mut leaving,
        b"I will finish\n",
        ONE_AT_A_TIME,
    );
    server.interrupt(&step);
    let stopped = Instant::now();
    server.wait_for_line(
        &step,
        "stopping",
        QUICK,
        "main.rs (given) says `stopping: Ctrl-C` as it triggers the stop: did the program end?",
    );
    expect_no_service(
        &step,
        addr,
        Late::NotServed,
        "the program said it is stopping",
        "once the stop is triggered, serve no new client, and close the listener.",
    );
    expect_program_echo(
        &step,
        &mut server,
        &mut leaving,
        b"one more, during the grace\n",
        "a conversation going on may finish during the grace (--grace 150 here): do not \
         cut it short at once.",
    );
    leaving.close_sending();
    expect_last_words(
        &step,
        &mut leaving,
        b"",
        "closed its sending side during the grace",
        "a client that hangs up during the grace gets no goodbye.",
    );
    let goodbye = idle.read(false, grace + QUICK, true);
    if goodbye.bytes != SHUTDOWN_REPLY || stopped.elapsed() < grace - millis(20) {
        server
            .report(&step)
            .did("a client stayed connected, silent; the check pressed Ctrl-C (grace 150 ms)")
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
            )
            .fail();
    }
    let status = server.exit_within(GOODBYE_TIME + QUICK);
    let stderr = server.stderr();
    let summary = "stopped: served 2 clients, 1 cut short";
    if status.and_then(|status| status.code()) != Some(0) || !stderr.contains(summary) {
        let got = match status {
            None => {
                step.note_waited_out();
                "it was still running after its clients had gone".to_string()
            }
            Some(status) => format!("it ended: {status}"),
        };
        server
            .report(&step)
            .expected(&format!("`{summary}` on stderr, then exit code 0"))
            .got(&got)
            .hint(
                "once the conversations have ended (or said goodbye), return the Summary: \
                 main prints it and exits 0. Count the clients served (not the wake-up \
                 call, not the late client) and those cut short.",
            )
            .fail();
    }
}

#[test]
fn step_18_the_program_explains_an_address_in_use() {
    let step = Step::new(
        "step 18: `server` explains an address in use in one line, exit code 1",
        CHAPTER,
    );
    expect_address_in_use_explained(&step, program!(), &["server"]);
}

// ---------------------------------------------------------------------------
// Your client (lesson 7's) and your server.

/// Runs the student's Client code on a thread of its own, QUICK at most.
fn with_client<T: Send + 'static>(
    step: &Step,
    call: &str,
    code: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
) -> T {
    let result = run_quick(
        step,
        call,
        "your client waits for your server: compare with steps 9 to 15, which your \
         server passed with the check's own clients.",
        code,
    );
    step.ok(call, result)
}

#[test]
fn step_19_your_client_and_your_server() {
    let step = Step::new(
        "step 19: your client (lesson 7's) and your server: served, busy, stopped",
        CHAPTER,
    );
    let server = start_server(&step, settings(1, millis(100)));
    let addr = server.addr.to_string();

    let first_addr = addr.clone();
    let (first, reply) = with_client(&step, "client 1: Client::connect_within, turn", move || {
        let mut client = Client::connect_within(&first_addr, QUICK)?;
        let reply = client.turn(b"one: hello\n")?;
        Ok((client, reply))
    });
    expect_client_got(&step, 1, b"one: hello\n", &reply);

    let second_addr = addr.clone();
    let (second, busy) = with_client(&step, "client 2: Client::connect_within, turn", move || {
        let mut client = Client::connect_within(&second_addr, QUICK)?;
        let reply = client.turn(b"two: may I?\n")?;
        Ok((client, reply))
    });
    expect_client_got(&step, 2, BUSY_REPLY, &busy);
    let rest = with_client(&step, "client 2: finish", move || second.finish(b""));
    expect_client_got(&step, 2, b"", &rest);

    let tail = with_client(&step, "client 1: finish", move || first.finish(b"one: bye"));
    expect_client_got(&step, 1, b"one: bye", &tail);

    // The place is free again (a client told busy may try again a moment later).
    let third_addr = addr.clone();
    let (third, reply) = with_client(&step, "client 3: Client::connect_within, turn", move || {
        let deadline = Instant::now() + millis(300);
        loop {
            let mut client = Client::connect_within(&third_addr, QUICK)?;
            let reply = client.turn(b"three: hello\n")?;
            if reply != BUSY_REPLY || Instant::now() >= deadline {
                return Ok((client, reply));
            }
            thread::sleep(millis(20));
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
        millis(100) + QUICK,
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
