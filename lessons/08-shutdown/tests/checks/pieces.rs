//! Steps 1 to 8 call the pieces one at a time, on connections the check
//! makes: the Conversations list, the Slot's drop, cut_short, converse.

use std::io::Read;
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use lesson_08_shutdown::{Conversations, Slot, converse};
use seesaw_checks::DEADLINE;
use seesaw_checks::peer::{self, End, Peer};
use seesaw_checks::report::{self, Step};

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
        "admit did not return, yet nothing in it needs to wait: it looks at the list \
         and adds to it. Most likely a deadlock: it locks the list while it already \
         holds its guard (count() locks it too); or it reads from the connection.",
        move || {
            let result = list.admit(&connection, max_clients);
            (connection, result)
        },
    );
    (connection, step.ok(&call, result))
}

/// How many threads call admit at the same moment, with max_clients 1: one
/// for each core of a small machine.
const AT_ONCE: usize = 2;

/// How long the threads go on racing, round after round, at most: on a
/// loaded machine they are seldom both running.
const RACING: Duration = Duration::from_millis(500);

/// Enough rounds in which both admits ran at the same time: then the check
/// stops early (on an idle machine, within a few milliseconds).
const TOGETHER: usize = 1000;

/// Two conversations' threads call admit at the same moment, with
/// max_clients 1, round after round: no round may admit both. A count
/// looked at under one lock and raised under another lets both threads find
/// the place free. (Each round begins for both threads at the same moment,
/// when both are running: see Meeting. On a loaded machine they seldom are,
/// and the check may miss the race; it never fails a right answer.)
pub fn expect_never_past_the_limit_at_once(step: &Step) {
    let mut clients = Vec::new();
    let mut connections = Vec::new();
    for _ in 0..AT_ONCE {
        let (client, connection) = peer::connected_pair(step);
        clients.push(client);
        connections.push(connection);
    }
    let call = format!(
        "conversations.admit(&connection, 1) from {AT_ONCE} threads at the same moment, \
         round after round for {} ms",
        RACING.as_millis()
    );
    let (rounds, together, past) = timing::run_within(
        step,
        &call,
        RACING + QUICK,
        "admit did not return while another thread called it too: does it wait for a lock \
         that the other thread's admit, or a Slot, still holds?",
        move || race_admits(connections),
    );
    drop(clients);
    if together == 0 && past.is_none() {
        // Never both at once: the race was not tried, so say so rather than pass.
        step.skip_part(
            "admits at the same moment",
            "the machine was too busy to run both admits at once in any round",
        );
    }
    if let Some(round) = past {
        step.report()
            .did(&format!(
                "{AT_ONCE} threads called admit at the same moment, max_clients 1, on an \
                 empty list; after each round, every Slot was dropped ({rounds} rounds, \
                 {together} with both calls running at once)"
            ))
            .expected("at most one Some(slot) in every round")
            .got(&format!("{AT_ONCE} Some(slot) in round {round}"))
            .hint(
                "two threads found the last place free at once: admit looks at the count and \
                 adds the handle under two locks, and between them the other thread looks \
                 too. Hold one lock (one guard of self.lock()) from the count to the insert.",
            )
            .fail();
    }
}

/// Where the racing threads wait for each other: asleep until both are
/// awake, then spinning for at most ALIGN, so that both call admit within a
/// fraction of a microsecond of each other when both are running.
struct Meeting {
    asleep: Barrier,
    /// How many threads have come to the start of a round, in all rounds.
    came: AtomicUsize,
}

/// How long a thread spins for the other at the start of a round.
const ALIGN: Duration = Duration::from_micros(200);

impl Meeting {
    /// Waits for the other threads, asleep.
    fn all_here(&self) {
        self.asleep.wait();
    }

    /// Waits for the other threads, then for round `round` (from 1) to begin
    /// for all of them at the same moment, spinning.
    fn start(&self, round: usize) {
        self.asleep.wait();
        self.came.fetch_add(1, Ordering::SeqCst);
        let began = Instant::now();
        while self.came.load(Ordering::SeqCst) < round * AT_ONCE && began.elapsed() < ALIGN {
            std::hint::spin_loop();
        }
    }
}

/// Rounds of AT_ONCE threads admitting at the same moment, with max_clients
/// 1, for at most RACING or until TOGETHER rounds ran both calls at once;
/// returns how many rounds ran, how many with both calls at once, and the
/// first round that admitted more than one.
fn race_admits(connections: Vec<TcpStream>) -> (usize, usize, Option<usize>) {
    let list = Conversations::new();
    let began = Instant::now();
    let meeting = Arc::new(Meeting {
        asleep: Barrier::new(AT_ONCE),
        came: AtomicUsize::new(0),
    });
    let admitted = Arc::new(AtomicUsize::new(0));
    // How many threads are inside admit now, and whether both were at once.
    let inside = Arc::new(AtomicUsize::new(0));
    let at_once = Arc::new(AtomicBool::new(false));
    let together = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let past = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = connections
        .into_iter()
        .enumerate()
        .map(|(number, connection)| {
            let (list, meeting) = (list.clone(), meeting.clone());
            let (admitted, done, past) = (admitted.clone(), done.clone(), past.clone());
            let (inside, at_once, together) = (inside.clone(), at_once.clone(), together.clone());
            thread::spawn(move || {
                let mut rounds = 0;
                loop {
                    rounds += 1;
                    meeting.start(rounds);
                    let before = inside.fetch_add(1, Ordering::SeqCst);
                    let slot = list.admit(&connection, 1).ok().flatten();
                    if before > 0 || inside.fetch_sub(1, Ordering::SeqCst) > 1 {
                        at_once.store(true, Ordering::SeqCst);
                    }
                    if slot.is_some() {
                        admitted.fetch_add(1, Ordering::SeqCst);
                    }
                    meeting.all_here();
                    if number == 0 {
                        if admitted.swap(0, Ordering::SeqCst) > 1 {
                            past.store(rounds, Ordering::SeqCst);
                        }
                        if at_once.swap(false, Ordering::SeqCst) {
                            together.fetch_add(1, Ordering::SeqCst);
                        }
                        let over = past.load(Ordering::SeqCst) > 0
                            || together.load(Ordering::SeqCst) >= TOGETHER
                            || began.elapsed() > RACING;
                        done.store(over, Ordering::SeqCst);
                    }
                    drop(slot);
                    meeting.all_here();
                    if done.load(Ordering::SeqCst) {
                        break;
                    }
                }
                rounds
            })
        })
        .collect();
    let rounds = workers
        .into_iter()
        .map(|worker| worker.join().unwrap_or(0))
        .max()
        .unwrap_or(0);
    let past = past.load(Ordering::SeqCst);
    let together = together.load(Ordering::SeqCst);
    (rounds, together, (past > 0).then_some(past))
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

/// How long a conversation's thread of [`start_converse_held`] keeps its
/// Slot, once converse has returned, for the check's go-ahead.
const HELD: Duration = Duration::from_millis(200);

/// Like [`start_converse`], but once converse has returned, its thread drops
/// the Slot (the last handle on the socket) only when the check says go, or
/// after HELD: a client still talking as the conversation closes, made sure
/// of rather than left to a race of microseconds.
pub fn start_converse_held(
    step: &Step,
    connection: TcpStream,
    slot: Slot,
) -> (Timed<Result<(), String>>, mpsc::Sender<()>) {
    let limits = settings(1, timing::ms(100)).limits;
    let (go, held) = mpsc::channel();
    let running = timing::start(step, "converse(connection, &limits, &slot)", move || {
        // The client talks on after the goodbye: once the server has shut down
        // both sides, Linux answers its bytes with a reset, which the lingering
        // close may then read. That is the client's doing, not converse's.
        let result = converse(connection, &limits, &slot).or_else(|error| {
            match report::io_error_kind(&error) {
                Some(std::io::ErrorKind::ConnectionReset) => Ok(()),
                _ => Err(format!("{error:#}")),
            }
        });
        let _ = held.recv_timeout(HELD);
        drop(slot);
        result
    });
    (running, go)
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
