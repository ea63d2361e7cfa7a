//! The student's server function running in the background, in the checks'
//! process, on a listener of the check's: the check plays its clients, and
//! can tell at any time whether the server has ended (it should not).
//!
//! ```text
//! let server = serving::start(&step, "serve_concurrently(listener)", serve_concurrently);
//! let mut client = Peer::connect(&step, server.addr());
//! server.expect_echo(&step, &mut client, b"hello\n", "accept the client and serve it");
//! server.expect_still_serving(&step, Duration::ZERO, "a server never returns");
//! ```

use std::cell::RefCell;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use crate::DEADLINE;
use crate::bounded::panic_text;
use crate::bytes::show;
use crate::peer::{End, Peer};
use crate::report::{Panic, Step};
use crate::run_state;

/// How long a failing check gives the server to finish ending when the
/// connection was closed or reset: it may be panicking, and the panic is the
/// cause to show.
pub const SETTLE: Duration = Duration::from_millis(200);

/// Runs the student's `code` on a thread of its own and brings back what it
/// returns. A panic is recorded in the step, so that the step's report shows
/// it as the cause; the channel closes after that. Unlike
/// [`bounded::start`](crate::bounded::start), a failing check does not wait
/// for this thread before it reports: a server runs for ever.
pub fn in_background<T: Send + 'static>(
    step: &Step,
    call: &str,
    code: impl FnOnce() -> T + Send + 'static,
) -> mpsc::Receiver<T> {
    let (sender, outcome) = mpsc::channel();
    let step = step.clone();
    let call = call.to_string();
    thread::spawn(move || {
        run_state::mark_student_thread();
        if let Some(value) = run_recorded(&step, &call, code) {
            let _ = sender.send(value);
        }
        // After a panic, only now is `sender` dropped: whoever sees the
        // channel close finds the panic recorded.
    });
    outcome
}

/// Runs the student's `code` on this thread: `None` if it panicked, and
/// then the panic is recorded in the step.
fn run_recorded<T>(step: &Step, call: &str, code: impl FnOnce() -> T) -> Option<T> {
    match catch_unwind(AssertUnwindSafe(code)) {
        Ok(value) => Some(value),
        Err(panic) => {
            let last = run_state::last_student_panic();
            step.code_started();
            step.code_finished(Some(Panic {
                call: call.to_string(),
                message: format!("{} (at {})", panic_text(&*panic), last.location),
                location: last.location,
                backtrace: last.backtrace,
            }));
            None
        }
    }
}

/// A server's accept loop, run by the check on a listener of its own (on
/// 127.0.0.1, a port the OS picks): each client is served by the student's
/// `serve`, on a thread of its own, for ever. A panic in `serve` is recorded
/// in the step, as [`in_background`] does, and the client's connection ends
/// only after that: the check never sees the end before its cause. Returns
/// where clients connect.
///
/// ```text
/// let room = Arc::new(Room::new());
/// let addr = serving::serve_each(&step, "serve_member(connection, &room)",
///     move |connection| serve_member(connection, &room));
/// ```
pub fn serve_each(
    step: &Step,
    call: &str,
    serve: impl Fn(TcpStream) -> anyhow::Result<()> + Send + Sync + 'static,
) -> SocketAddr {
    let listener =
        TcpListener::bind("127.0.0.1:0").expect("the check could not listen on 127.0.0.1");
    let addr = listener
        .local_addr()
        .expect("a bound listener has an address");
    let serve = std::sync::Arc::new(serve);
    let (step, call) = (step.clone(), call.to_string());
    thread::spawn(move || {
        for connection in listener.incoming() {
            let Ok(connection) = connection else { continue };
            // Held until the panic, if any, is recorded.
            let held = connection.try_clone();
            let (serve, step, call) = (serve.clone(), step.clone(), call.clone());
            thread::spawn(move || {
                run_state::mark_student_thread();
                let served = run_recorded(&step, &call, || serve(connection));
                // After a panic, the connection ends now (a thread of the
                // student's may hold it too); else it closes as the student's
                // code left it.
                if let (None, Ok(held)) = (served, held) {
                    let _ = held.shutdown(std::net::Shutdown::Both);
                }
            });
        }
    });
    addr
}

/// How the server function ended (it should not).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ended {
    /// It returned this (shown as text: `Ok(())`, `Err: ...`).
    Returned(String),
    /// It panicked: the step has recorded the panic.
    Panicked,
}

/// The student's server function, running on a thread of its own.
pub struct RunningServer {
    addr: SocketAddr,
    call: String,
    /// The hint when it has returned: why a server must not.
    returned_hint: String,
    returned: mpsc::Receiver<String>,
    /// How it ended, once seen.
    ended: RefCell<Option<Ended>>,
}

/// Starts `serve` on a listener of the check's, on 127.0.0.1 and a port the
/// OS picks. `call` shows how it was called: `serve_concurrently(listener)`.
pub fn start(
    step: &Step,
    call: &str,
    serve: impl FnOnce(TcpListener) -> anyhow::Result<()> + Send + 'static,
) -> RunningServer {
    let listener =
        TcpListener::bind("127.0.0.1:0").expect("the check could not listen on 127.0.0.1");
    start_on(step, listener, call, serve)
}

/// Starts `serve` on `listener`. It runs for ever, as a server should; the
/// check never waits for it to end.
pub fn start_on(
    step: &Step,
    listener: TcpListener,
    call: &str,
    serve: impl FnOnce(TcpListener) -> anyhow::Result<()> + Send + 'static,
) -> RunningServer {
    let addr = listener
        .local_addr()
        .expect("a bound listener has an address");
    let returned = in_background(step, call, move || match serve(listener) {
        Ok(()) => "Ok(())".to_string(),
        Err(error) => format!("Err: {error:#}"),
    });
    RunningServer {
        addr,
        call: call.to_string(),
        returned_hint: "a server never returns: it serves for ever.".to_string(),
        returned,
        ended: RefCell::new(None),
    }
}

impl RunningServer {
    /// The hint when the server function has returned, instead of the
    /// default ("a server never returns").
    pub fn if_it_returns(mut self, hint: &str) -> RunningServer {
        self.returned_hint = hint.to_string();
        self
    }

    /// Where its clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// How it ended, if it ends within `wait`.
    pub fn ended_within(&self, wait: Duration) -> Option<Ended> {
        if self.ended.borrow().is_none() {
            let ended = match self.returned.recv_timeout(wait) {
                Ok(returned) => Some(Ended::Returned(returned)),
                Err(mpsc::RecvTimeoutError::Disconnected) => Some(Ended::Panicked),
                Err(mpsc::RecvTimeoutError::Timeout) => None,
            };
            *self.ended.borrow_mut() = ended;
        }
        self.ended.borrow().clone()
    }

    /// Connects a client of the check's. When nobody listens any more
    /// because the server function has ended, the report says so, with
    /// `hint` (why it must not end), rather than "connection refused".
    #[track_caller]
    pub fn connect(&self, step: &Step, hint: &str) -> Peer {
        match TcpStream::connect_timeout(&self.addr, DEADLINE) {
            Ok(stream) => {
                step.transcript()
                    .add(format!("check   connected to you at {}", self.addr));
                Peer::new(step, stream)
            }
            Err(_) => {
                self.expect_still_serving(step, SETTLE, hint);
                // It still runs: the connection's own report.
                Peer::connect(step, self.addr)
            }
        }
    }

    /// Fails if the server function ends within `wait` (zero: has ended by
    /// now); `hint` says why it must not.
    #[track_caller]
    pub fn expect_still_serving(&self, step: &Step, wait: Duration, hint: &str) {
        let expected = format!("{} to go on serving, for ever", self.call);
        match self.ended_within(wait) {
            None => {}
            Some(Ended::Returned(returned)) => step
                .report()
                .expected(&expected)
                .got(&format!("it returned {returned}"))
                .observed(hint)
                .fail(),
            // The report shows the panic as the cause.
            Some(Ended::Panicked) => step.report().expected(&expected).got("it panicked").fail(),
        }
    }

    /// Sends `message` from `client` and fails unless the same bytes come
    /// back as one line.
    #[track_caller]
    pub fn expect_echo(&self, step: &Step, client: &mut Peer, message: &[u8], hint: &str) {
        client.send(message);
        self.expect_reply(step, client, message, hint);
    }

    /// Fails unless the next line `client` reads is exactly `message`. When
    /// the server function has ended, that (or its panic) is the cause the
    /// report gives; silence gets `hint`, for the check holds other clients.
    #[track_caller]
    pub fn expect_reply(&self, step: &Step, client: &mut Peer, message: &[u8], hint: &str) {
        let reply = client.read_line();
        if reply.bytes == message && reply.end == End::Newline {
            return;
        }
        let mut report = step.report();
        if matches!(reply.end, End::Closed | End::Failed(_))
            && let Some(Ended::Returned(returned)) = self.ended_within(SETTLE)
        {
            report = report
                .did(&format!("{} had returned {returned}", self.call))
                .observed(&self.returned_hint);
        }
        let report = report
            .did(&format!(
                "client {} sent {}",
                client.local_addr(),
                show(message)
            ))
            .expected(&format!("{} back", show(message)));
        if reply.end == End::TimedOut && reply.bytes.is_empty() {
            // Silence, while the check holds other clients: that is this
            // check's own hint, not a generic one about a stuck read.
            report.got(&reply.describe()).observed(hint).fail();
        }
        if self.ended_within(Duration::ZERO).is_some() {
            // It ended: that, or its panic, is the cause, not the bytes.
            report.got(&reply.describe()).fail();
        }
        report.got_received(message, &reply).hint(hint).fail();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    /// A server that echoes one read of each client, for ever.
    fn echo_once_each(listener: TcpListener) -> anyhow::Result<()> {
        loop {
            let (mut stream, _) = listener.accept()?;
            let mut chunk = [0u8; 1024];
            let count = stream.read(&mut chunk)?;
            stream.write_all(&chunk[..count])?;
        }
    }

    #[test]
    fn a_server_that_serves_passes() {
        let step = Step::new("serving: unit test", "none");
        let server = start(&step, "echo_once_each(listener)", echo_once_each);
        let mut client = Peer::connect(&step, server.addr());
        server.expect_echo(&step, &mut client, b"hi \xff\n", "echo it");
        server.expect_still_serving(&step, Duration::ZERO, "never returns");
        assert_eq!(server.ended_within(Duration::ZERO), None);
    }

    #[test]
    fn a_server_that_returns_is_seen_to_end() {
        let step = Step::new("serving: unit test", "none");
        let server = start(&step, "quits(listener)", |_| Ok(())).if_it_returns("loop");
        let ended = server.ended_within(Duration::from_secs(1));
        assert_eq!(ended, Some(Ended::Returned("Ok(())".to_string())));
    }

    #[test]
    fn serve_each_records_a_panic_before_the_connection_ends() {
        let step = Step::new("serving: unit test", "none");
        let addr = serve_each(&step, "greet(connection)", |mut connection| {
            connection.write_all(b"hi\n")?;
            panic!("not yet");
        });
        let mut client = TcpStream::connect(addr).unwrap();
        let mut all = Vec::new();
        client.read_to_end(&mut all).unwrap();
        assert_eq!(all, b"hi\n");
        let report = step.report().got("end of file").render();
        assert!(report.contains("not yet"), "{report}");
    }

    #[test]
    fn in_background_brings_back_a_value() {
        let step = Step::new("serving: unit test", "none");
        let outcome = in_background(&step, "seven()", || 7);
        assert_eq!(outcome.recv_timeout(Duration::from_secs(1)), Ok(7));
    }
}
