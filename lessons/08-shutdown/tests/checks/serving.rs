//! Steps 9 to 15 and 19 run serve_until_stopped as a whole, in this
//! process, with the check as its clients and holding its Stop.

use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use lesson_08_shutdown::{
    BUSY_REPLY, SHUTDOWN_REPLY, Settings, Stop, Summary, serve_until_stopped,
};
use seesaw_checks::bytes::show;
use seesaw_checks::localhost;
use seesaw_checks::peer::{End, Peer, Received};
use seesaw_checks::report::Step;
use seesaw_checks::serving::{self, Ended, RunningServer};

use seesaw_checks::timing::ms;

use crate::{ONE_AT_A_TIME, QUICK, QUIET, client};

/// The student's serve_until_stopped, running on a thread of its own (the
/// support crate's `serving`), with the Stop the check holds.
pub struct StoppableServer {
    running: RunningServer,
    stop: Stop,
    /// Brings back the Summary it returned, if it returned Ok.
    summary: mpsc::Receiver<Summary>,
}

/// Starts the student's serve_until_stopped on a listener of the check's
/// own, 127.0.0.1 and a port the OS picks, with a Stop the check holds.
pub fn start_server(step: &Step, settings: Settings) -> StoppableServer {
    let (listener, _) = localhost::listen_on("127.0.0.1:0");
    let stop = Stop::new(&listener).expect("Stop::new (given) works on a bound listener");
    let call = format!(
        "serve_until_stopped(listener, settings (max_clients {}, grace {} ms), stop)",
        settings.max_clients,
        settings.grace.as_millis()
    );
    let (sender, summary) = mpsc::channel();
    let theirs = stop.clone();
    let running = serving::start_on(step, listener, &call, move |listener| {
        let _ = sender.send(serve_until_stopped(listener, settings, theirs)?);
        Ok(())
    })
    .if_it_returns(STILL_SERVING);
    StoppableServer {
        running,
        stop,
        summary,
    }
}

const STILL_SERVING: &str = "serve until the stop is triggered: a failed accept or the end \
     of a client is not a reason to return.";

impl StoppableServer {
    pub fn addr(&self) -> SocketAddr {
        self.running.addr()
    }

    /// Sends `message` from `client` and fails unless it comes back. Silence,
    /// while the check holds other clients, gets `hint`: the check knows why.
    pub fn expect_echo(&self, step: &Step, client: &mut Peer, message: &[u8], hint: &str) {
        self.running.expect_echo(step, client, message, hint);
    }

    /// Fails if serve_until_stopped has returned though nobody stopped it.
    pub fn expect_still_serving(&self, step: &Step) {
        if let Ok(summary) = self.summary.try_recv() {
            step.report()
                .expected("serve_until_stopped to go on serving: nobody stopped it")
                .got(&format!("it returned Ok({summary})"))
                .hint(STILL_SERVING)
                .fail();
        }
        self.running
            .expect_still_serving(step, Duration::ZERO, STILL_SERVING);
    }

    /// Triggers the stop, as the program's Ctrl-C handler does.
    pub fn trigger(&self, step: &Step) -> Instant {
        step.transcript()
            .add("check   triggered the stop (stop.trigger(), as Ctrl-C does)".to_string());
        self.stop.trigger();
        Instant::now()
    }

    /// Waits at most `within` for serve_until_stopped to return, and fails
    /// unless it returned `expected`.
    pub fn expect_summary(
        &self,
        step: &Step,
        expected: Summary,
        within: Duration,
        late_hint: &str,
    ) {
        let expected_text = format!("serve_until_stopped to return Ok({expected})");
        let returned = match self.running.ended_within(within) {
            None => {
                step.note_waited_out();
                step.report()
                    .expected(&format!("{expected_text} within {} ms", within.as_millis()))
                    .got("it was still running")
                    .observed(late_hint)
                    .fail()
            }
            Some(Ended::Panicked) => step
                .report()
                .expected(&expected_text)
                .got("it panicked")
                .fail(),
            Some(Ended::Returned(returned)) => match self.summary.try_recv() {
                Ok(summary) => Ok(summary),
                Err(_) => Err(returned),
            },
        };
        if returned != Ok(expected) {
            step.report()
                .expected(&expected_text)
                .got(&describe_returned(&returned))
                .hint(summary_hint(&returned, expected))
                .fail();
        }
    }
}

/// What a wrong Summary (or an error) means.
fn summary_hint(returned: &Result<Summary, String>, expected: Summary) -> &'static str {
    match returned {
        Ok(got) if got.served > expected.served => {
            "count only admitted clients as served (admit returned Some(slot)): not one \
             turned away, not the wake-up call, not a client that came after the stop."
        }
        Ok(got) if got.served < expected.served => {
            "count every client admitted and served, one each."
        }
        Ok(_) => {
            "the summary's cut_short is the number cut_short() returns (the conversations \
             still going on when the grace ended), and 0 when none was left to cut."
        }
        Err(_) => "stopping is no error: return Ok(Summary { served, cut_short }).",
    }
}

fn describe_returned(returned: &Result<Summary, String>) -> String {
    match returned {
        Ok(summary) => format!("Ok({summary})"),
        Err(error) => error.clone(),
    }
}

/// Connects a new client and waits until it is served: a client that gets
/// the busy line tries again a moment later (as the line asks), for at most
/// QUICK. Fails unless its message is echoed.
pub fn expect_served(step: &Step, addr: SocketAddr, message: &[u8], hint: &str) -> Peer {
    let deadline = Instant::now() + QUICK;
    let mut tries = 0;
    loop {
        tries += 1;
        let mut client = client(step, addr);
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
        thread::sleep(ms(20));
    }
}

/// How a new client must be treated once the server stops.
#[derive(PartialEq)]
pub enum Late {
    /// Refused, or at least not served.
    NotServed,
    /// Refused or closed at once: not left waiting in silence either.
    ToldAtOnce,
}

/// Fails if a new client at `addr` is served (or, `Late::ToldAtOnce`, left
/// waiting in silence). Refused, reset, closed or an error line are fine.
pub fn expect_no_service(step: &Step, addr: SocketAddr, late_rule: Late, when: &str, hint: &str) {
    let stream = match TcpStream::connect_timeout(&addr, QUICK) {
        Ok(stream) => stream,
        Err(error) => {
            step.transcript()
                .add(format!("check   a new client could not connect: {error}"));
            return;
        }
    };
    let mut late = Peer::new(step, stream).named("late");
    late.note("connected");
    let message = b"am I too late?\n";
    late.send(message);
    let reply = late.read_for(QUIET);
    let served = reply.bytes.starts_with(message);
    let silent = reply.bytes.is_empty() && reply.end == End::TimedOut;
    if served || (late_rule == Late::ToldAtOnce && silent) {
        let got = match served {
            true => format!("{} back: it was served", show(&reply.bytes)),
            false => format!(
                "it connected, and then nothing came for {} ms: it waits in a backlog \
                 that nobody will accept from",
                QUIET.as_millis()
            ),
        };
        step.report()
            .did(&format!(
                "{when}; then a new client connected and sent {}",
                show(message)
            ))
            .expected("the client to be refused (or its connection closed at once), not served")
            .got(&got)
            .hint(hint)
            .fail();
    }
}

/// The hint for what a client over the limit got instead of the busy line.
pub fn busy_hint(answer: &Received) -> &'static str {
    match (answer.end, answer.bytes.is_empty()) {
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
    }
}

/// Fails unless `client`, silent, gets the goodbye when the grace ends
/// (`grace` after `stopped`), then end of file.
pub fn expect_goodbye_when_the_grace_ends(
    step: &Step,
    client: &mut Peer,
    stopped: Instant,
    grace: Duration,
) {
    let goodbye = client.read_to_end_within(grace + QUICK);
    let after = stopped.elapsed();
    let did = format!(
        "clients stayed connected, silent; the stop was triggered (grace {} ms)",
        grace.as_millis()
    );
    if goodbye.bytes != SHUTDOWN_REPLY || goodbye.end != End::Closed {
        let report = step
            .report()
            .did(&did)
            .expected(&format!(
                "{} when the grace ends, then end of file",
                show(SHUTDOWN_REPLY)
            ))
            .got_received(SHUTDOWN_REPLY, &goodbye)
            .hint(
                "when the grace ends with conversations still going on, cut them short \
                 (cut_short): each one's seesaw then ends and its converse says goodbye.",
            );
        match goodbye.bytes.is_empty() && goodbye.end == End::TimedOut {
            // Steps 5 and 8 passed: cut_short and converse work.
            true => report.observed(&format!(
                "nothing came, and the connection stayed open {} ms past the grace: the \
                 conversations were not cut short. When wait_until_all_ended(settings.grace) \
                 returns false, call cut_short(): each seesaw then ends, and its converse says \
                 goodbye.",
                QUICK.as_millis()
            )),
            false => report,
        }
        .fail();
    }
    if after < grace - ms(20) {
        step.report()
            .did(&did)
            .expected("the goodbye when the grace ends, not before")
            .got(&format!("it came {} ms after the stop", after.as_millis()))
            .hint(
                "conversations going on may finish during the grace: wait for them \
                 (wait_until_all_ended(settings.grace)) before you cut them short.",
            )
            .fail();
    }
}
