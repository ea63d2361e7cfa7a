//! The troublesome clients the check plays against your server: a slow one
//! that trickles bytes in, a deaf one that never reads, and the clock that
//! says how long your server may take to give up on the deaf one.

use std::io::{ErrorKind, Write};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use lesson_07_timeouts::MAX_MESSAGE;
use seesaw_checks::DEADLINE;
use seesaw_checks::peer::{PIECE_PAUSE, Peer};
use seesaw_checks::process::{ONE_TICK, cpu_time};
use seesaw_checks::timing::millis;

/// A second handle on the check's socket, for a thread that sends.
fn sender(peer: &Peer) -> std::net::TcpStream {
    peer.stream()
        .try_clone()
        .expect("the check could not clone its socket")
}

/// A slow client: sends one byte every PIECE_PAUSE, on a thread of its own,
/// until told to stop (or until `most` bytes). The time and outcome of each
/// send come back, so the check knows when the first byte went, and whether
/// a later one failed.
pub struct Trickle {
    stop: mpsc::Sender<()>,
    sent: mpsc::Receiver<(Instant, Result<(), ErrorKind>)>,
    /// When the first byte went.
    pub first: Instant,
    /// How many sends the check has looked at.
    seen: std::cell::Cell<usize>,
}

impl Trickle {
    pub fn start(conn: &Peer, most: usize) -> Trickle {
        let mut stream = sender(conn);
        conn.note(format!(
            "check → you   b\"x\" every {}, one byte at a time, no newline (a slow client)",
            millis(PIECE_PAUSE)
        ));
        let (stop, stopped) = mpsc::channel();
        let (report, sent) = mpsc::channel();
        thread::spawn(move || {
            for _ in 0..most {
                let outcome = stream.write_all(b"x").map_err(|error| error.kind());
                let failed = outcome.is_err();
                if report.send((Instant::now(), outcome)).is_err() || failed {
                    return;
                }
                // The pause between bytes: a stop ends it at once.
                if !matches!(
                    stopped.recv_timeout(PIECE_PAUSE),
                    Err(mpsc::RecvTimeoutError::Timeout)
                ) {
                    return;
                }
            }
        });
        let first = match sent.recv_timeout(DEADLINE) {
            Ok((at, _)) => at,
            Err(_) => Instant::now(),
        };
        Trickle {
            stop,
            sent,
            first,
            seen: std::cell::Cell::new(1),
        }
    }

    /// Lets `count` more bytes go after `since`, and returns the first
    /// failure among them.
    pub fn sends_after(&self, since: Instant, count: usize) -> Option<ErrorKind> {
        let mut after = 0;
        while after < count {
            let next = self.sent.recv_timeout(DEADLINE);
            self.seen.set(self.seen.get() + 1);
            match next {
                Ok((_, Err(kind))) => return Some(kind),
                Ok((at, Ok(()))) => after += usize::from(at > since),
                Err(_) => return None,
            }
        }
        None
    }

    /// Stops it, and says how many bytes it sent.
    pub fn stop(&self) -> usize {
        let _ = self.stop.send(());
        self.seen.get() + self.sent.try_iter().count()
    }
}

/// A client that never reads: sends lines of MAX_MESSAGE bytes on a thread
/// of its own, up to 64 MiB, until a send fails. Your echoes fill its
/// buffers, then yours.
/// Returns when the last line went out, as it changes: while your server
/// reads, the lines go out; once it stops reading, they stop.
pub fn flood(conn: &Peer) -> Arc<Mutex<Instant>> {
    let mut stream = sender(conn);
    conn.note(
        "check → you   b\"xxx...x\\n\" (64 KiB) again and again, up to 64 MiB, never reading",
    );
    let last_sent = Arc::new(Mutex::new(Instant::now()));
    let progress = last_sent.clone();
    thread::spawn(move || {
        // A stuck server must not keep this thread for ever.
        let _ = stream.set_write_timeout(Some(4 * DEADLINE));
        let line = [vec![b'x'; MAX_MESSAGE - 1], b"\n".to_vec()].concat();
        for _ in 0..1024 {
            if stream.write_all(&line).is_err() {
                return;
            }
            *progress.lock().unwrap() = Instant::now();
        }
    });
    last_sent
}

/// How long after its write limit your server may take to give up on a
/// client that does not read, counted from when it was last busy: the OS
/// grows its buffers for a while, and each write that makes a little
/// progress starts its wait again.
pub const GIVING_UP: Duration = Duration::from_millis(300);

/// The longest the check waits for that, however busy your server is.
const GIVING_UP_AT_MOST: Duration = Duration::from_millis(3000);

/// How often the check looks whether your server is still busy.
const LOOK: Duration = Duration::from_millis(50);

/// When the check stops waiting for your server to give up on a deaf
/// client. Before its writes can block, your server must read and echo
/// megabytes (the OS's buffers between the two ends are that large), and a
/// slow server takes a while for that: so the wait counts from when your
/// server was last busy, that is when the check's lines last got through
/// or the server's process last used the processor (on Linux, where the
/// check can see that). A server waiting in a write is neither.
pub struct GivingUp {
    started: Instant,
    write: Duration,
    last_sent: Arc<Mutex<Instant>>,
    /// The process your server runs in (None: this one).
    pid: Option<u32>,
    cpu: Option<Duration>,
    last_busy: Instant,
}

impl GivingUp {
    pub fn new(write: Duration, last_sent: Arc<Mutex<Instant>>, pid: Option<u32>) -> GivingUp {
        let started = Instant::now();
        GivingUp {
            started,
            write,
            last_sent,
            pid,
            cpu: cpu_time(pid),
            last_busy: started,
        }
    }

    /// The deadline as it stands now.
    pub fn deadline(&mut self) -> Instant {
        let cpu = cpu_time(self.pid);
        // More than one tick since the last look: one tick now and then is
        // the check's own looking (in this process), not your server at work.
        if let (Some(now), Some(before)) = (cpu, self.cpu)
            && now > before + ONE_TICK
        {
            self.last_busy = Instant::now();
        }
        self.cpu = cpu;
        let last = self.last_busy.max(*self.last_sent.lock().unwrap());
        (last + self.write + GIVING_UP).min(self.started + GIVING_UP_AT_MOST)
    }

    /// When your server was last seen busy: reading the check's lines, or
    /// using the processor.
    pub fn last_busy(&self) -> Instant {
        self.last_busy.max(*self.last_sent.lock().unwrap())
    }

    /// The end of the next short wait: LOOK from now, or the deadline.
    pub fn next_look(&mut self) -> Option<Instant> {
        let deadline = self.deadline();
        let now = Instant::now();
        (now < deadline).then(|| (now + LOOK).min(deadline))
    }
}
