//! Step 12's troublesome clients of the lesson's `server` program, all at
//! once: a silent one, a slow one and a deaf one. Each is read on a thread of
//! its own; each must get its goodbye in time, and the server must narrate it.

use std::net::SocketAddr;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use lesson_07_timeouts::{IDLE_REPLY, SLOW_REPLY};
use seesaw_checks::DEADLINE;
use seesaw_checks::bytes::show;
use seesaw_checks::peer::{End, PIECE_PAUSE, Peer, Received};
use seesaw_checks::report::Step;
use seesaw_checks::timing::{millis, ms, outside_limit};
use seesaw_checks::watched::WatchedServer;

use super::LATE;
use super::goodbyes::{IDLE_SILENCE, SLOW_SILENCE, got_within};
use super::troublesome::{GivingUp, Trickle, flood};

/// The silent client: connects, and says nothing.
pub struct Silent {
    idle: Duration,
    peer: SocketAddr,
    started: Instant,
    waiting: JoinHandle<(Received, Instant, Received)>,
}

impl Silent {
    pub fn connect(step: &Step, addr: SocketAddr, idle: Duration) -> Silent {
        let mut silent = Peer::connect(step, addr).named("silent");
        let (peer, started) = (silent.local_addr(), Instant::now());
        let waiting = thread::spawn(move || {
            let reply = silent.read_line_for(idle + LATE);
            let at = Instant::now();
            let rest = silent.read_for(LATE);
            silent.close_sending();
            (reply, at, rest)
        });
        Silent {
            idle,
            peer,
            started,
            waiting,
        }
    }

    /// Fails unless IDLE_REPLY came, limits.idle after connecting, then end
    /// of file, and the server narrated it.
    pub fn expect_goodbye(self, step: &Step, server: &mut WatchedServer) {
        let (reply, at, rest) = self
            .waiting
            .join()
            .expect("the check's own thread does not panic");
        let problem = outside_limit(self.started, at, self.idle, ms(0), LATE);
        if reply.bytes != IDLE_REPLY || problem.is_some() || rest.end != End::Closed {
            let report = server
                .report(step)
                .did("the check (silent) connected and said nothing")
                .expected(&format!(
                    "{} {} after connecting, then end of file",
                    show(IDLE_REPLY),
                    millis(self.idle)
                ));
            // What came where IDLE_REPLY was due; only once it came right,
            // when it came, and what came after it.
            let report = match (reply.bytes == IDLE_REPLY, problem) {
                (false, _) => {
                    got_within(report, IDLE_REPLY, &reply, self.idle + LATE, IDLE_SILENCE)
                }
                (true, Some(problem)) => report
                    .got(&format!("IDLE_REPLY came {problem}"))
                    .hint("the server must read with the idle limit it is given (--idle)."),
                (true, None) => report
                    .got(&format!("IDLE_REPLY, then {}", rest.describe()))
                    .hint("after the error line, end the connection with close_gently (given)."),
            };
            server.fail(report);
        }
        let deadline = Instant::now() + DEADLINE;
        expect_narrated(
            step,
            server,
            self.peer,
            "was idle for too long",
            until(deadline),
        );
    }
}

/// The slow client: one byte every PIECE_PAUSE, never a newline.
pub struct Slow {
    message: Duration,
    peer: SocketAddr,
    first_byte: Instant,
    waiting: JoinHandle<(Received, Instant)>,
}

impl Slow {
    pub fn connect(step: &Step, addr: SocketAddr, message: Duration) -> Slow {
        let mut slow = Peer::connect(step, addr).named("slow");
        let peer = slow.local_addr();
        let trickle = Trickle::start(&slow, 40);
        let first_byte = trickle.first;
        let waiting = thread::spawn(move || {
            let reply = slow.read_line_for(message + LATE);
            let at = Instant::now();
            trickle.stop();
            slow.close_sending();
            (reply, at)
        });
        Slow {
            message,
            peer,
            first_byte,
            waiting,
        }
    }

    /// Fails unless SLOW_REPLY came limits.message after the first byte, and
    /// the server narrated it.
    pub fn expect_goodbye(self, step: &Step, server: &mut WatchedServer) {
        let (reply, at) = self
            .waiting
            .join()
            .expect("the check's own thread does not panic");
        let problem = outside_limit(self.first_byte, at, self.message, ms(0), LATE);
        if reply.bytes != SLOW_REPLY || problem.is_some() {
            let report = server
                .report(step)
                .did(&format!(
                    "the check (slow) sent b\"x\" every {}",
                    millis(PIECE_PAUSE)
                ))
                .expected(&format!(
                    "{} {} after the first byte",
                    show(SLOW_REPLY),
                    millis(self.message)
                ));
            // When it came is news only once the right line came.
            let report = match (reply.bytes == SLOW_REPLY, problem) {
                (true, Some(problem)) => report
                    .got(&format!("SLOW_REPLY came {problem}"))
                    .hint("count limits.message from the message's first byte (--message)."),
                _ => got_within(
                    report,
                    SLOW_REPLY,
                    &reply,
                    self.message + LATE,
                    SLOW_SILENCE,
                ),
            };
            server.fail(report);
        }
        let deadline = Instant::now() + DEADLINE;
        expect_narrated(step, server, self.peer, "sent too slowly", until(deadline));
    }
}

/// The deaf client: sends line after line, and never reads.
pub struct Deaf {
    write: Duration,
    peer: SocketAddr,
    started: Instant,
    giving_up: GivingUp,
    /// Kept open until the server gives up on it.
    _client: Peer,
}

impl Deaf {
    /// `pid` is the server's process, whose processor time says whether it
    /// is still busy.
    pub fn connect(step: &Step, addr: SocketAddr, write: Duration, pid: u32) -> Deaf {
        let deaf = Peer::connect(step, addr).named("deaf");
        let last_sent = flood(&deaf);
        Deaf {
            write,
            peer: deaf.local_addr(),
            started: Instant::now(),
            giving_up: GivingUp::new(write, last_sent, Some(pid)),
            _client: deaf,
        }
    }

    /// Fails unless the server narrates giving up on it, after the write
    /// limit or later.
    pub fn expect_given_up(mut self, step: &Step, server: &mut WatchedServer) {
        let gave_up = expect_narrated(
            step,
            server,
            self.peer,
            "does not read its echoes; gave up writing",
            || self.giving_up.next_look(),
        );
        let took = gave_up.saturating_duration_since(self.started);
        if took < self.write {
            let report = server
                .report(step)
                .did("the check (deaf) sent line after line and read nothing")
                .expected(&format!(
                    "the server to give up after {} or more",
                    millis(self.write)
                ))
                .got(&format!("it gave up after {}", millis(took)));
            server.fail(report);
        }
    }
}

/// Fails unless the server printed `wanted` for the client at `peer`,
/// before the line that says that client's connection ended. Waits for that
/// line in short waits, each ending when `next_look` says, until it says
/// `None`. Returns when `wanted` was printed.
fn expect_narrated(
    step: &Step,
    server: &mut WatchedServer,
    peer: SocketAddr,
    wanted: &str,
    mut next_look: impl FnMut() -> Option<Instant>,
) -> Instant {
    let peer_text = peer.to_string();
    let ends = |line: &str| line.contains(&peer_text) && line.contains("closed the connection");
    let mut ended = None;
    let since = server.started();
    // Short waits, while the deadline may move.
    while let (None, Some(look)) = (&ended, next_look()) {
        let wait = look.saturating_duration_since(Instant::now());
        ended = server.wait_for(wait, since, ends);
    }
    let narration = format!("{peer} {wanted}");
    match (ended, server.printed(|line| line.contains(&narration))) {
        (Some(_), Some(at)) => at,
        (ended, _) => {
            let got = match ended {
                Some(line) => format!("no such line before {:?}", line.text),
                None => "no such line, and no line saying that connection ended".to_string(),
            };
            let report = server
                .report(step)
                .expected(&format!("the line `{narration}` on stderr"))
                .got(&got)
                .hint(&format!(
                    "narrate it in serve_connection_within, word for word: \
                     narrate(format!(\"{{peer}} {wanted}\")), where peer is peer_name(&connection)."
                ));
            server.fail(report)
        }
    }
}

/// One wait that ends at `deadline`, for [`expect_narrated`].
fn until(deadline: Instant) -> impl FnMut() -> Option<Instant> {
    move || (Instant::now() < deadline).then_some(deadline)
}
