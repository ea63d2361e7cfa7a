//! Your dial_within, against the check's servers: one that answers, one
//! where nothing listens, one that never answers (steps 1 to 3, and 14).

use std::io::ErrorKind;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use lesson_07_timeouts::dial_within;
use seesaw_checks::DEADLINE;
use seesaw_checks::handed::{Handed, expect_reached, expect_works_both_ways};
use seesaw_checks::peer::Peer;
use seesaw_checks::report::{Step, io_error_kind};
use seesaw_checks::timing::{self, Timed, millis, ms};

pub const DIAL_HANGS: &str = "dial_within must come back within its timeout whatever the server \
     does: give each connection attempt that timeout (TcpStream::connect_timeout). A plain \
     connect may wait minutes for a server that never answers.";

/// Calls your dial_within(addr, timeout) on a thread of its own.
pub fn start_dial(step: &Step, addr: &str, timeout: Duration) -> Timed<anyhow::Result<TcpStream>> {
    let call = format!("dial_within({addr:?}, {})", millis(timeout));
    let addr = addr.to_string();
    timing::start(step, &call, move || dial_within(&addr, timeout))
}

/// Dials `text` with your dial_within while the check listens on
/// `listener`, and fails unless the connection reaches the listener and
/// carries a line each way.
pub fn dial_and_talk(step: &Step, listener: &TcpListener, text: &str, refused_hint: Option<&str>) {
    let listening = listener
        .local_addr()
        .expect("a bound listener has an address");
    step.transcript()
        .add(format!("check   listening on {listening}"));
    let did = format!("called dial_within({text:?}, 1000 ms); the check listens on {listening}");
    let dialling = start_dial(step, text, ms(1000));
    let (result, _) = dialling.finish_by(step, Instant::now() + DEADLINE, DIAL_HANGS);
    let mut connection = match result {
        Ok(connection) => connection,
        Err(error) => {
            let report = step
                .report()
                .did(&did)
                .expected("a connection")
                .got_error(&error);
            match (io_error_kind(&error), refused_hint) {
                (Some(ErrorKind::ConnectionRefused), Some(hint)) => report.observed(hint).fail(),
                _ => report.fail(),
            }
        }
    };
    let accepted = expect_reached(step, listener, &connection, &did);
    let mut server = Peer::new(step, accepted);
    expect_works_both_ways(step, &mut server, &mut connection, &DIALLED);
}

/// The connection dial_within hands back, in the words of the reports.
const DIALLED: Handed = Handed {
    function: "dial_within",
    made_by: "TcpStream::connect_timeout",
    other_side: "server",
    waits: "A client waits for its server's reply",
    business: "It must only connect; what to say to the server is the client's business.",
};

/// Fails unless `error` has an io::Error of `kind` inside and names `addr`.
pub fn expect_error_naming(
    step: &Step,
    did: &str,
    error: &anyhow::Error,
    addr: &str,
    kind: ErrorKind,
) {
    let text = format!("{error:#}");
    if io_error_kind(error) != Some(kind) {
        step.report()
            .did(did)
            .expected(&format!(
                "an error with the OS's io::Error of kind {kind:?} inside (the program's advice depends on it)"
            ))
            .got(&format!("an error: {text}"))
            .hint(
                "return the error connect_timeout gave, with .with_context(...) around it: \
                 context keeps the io::Error inside. Do not replace it with a new error \
                 (anyhow!, bail!, a String), which loses its kind.",
            )
            .fail();
    }
    if !text.contains(addr) {
        step.report()
            .did(did)
            .expected(&format!("an error that names the address, {addr}"))
            .got(&format!("an error: {text}"))
            .hint("give the error context that names the address dialled: .with_context(|| format!(\"could not connect to {addr}\")).")
            .fail();
    }
}

/// Why a server that never answers cannot be made on some OS.
pub const CANNOT_IGNORE: &str = "this OS refuses connections to a full listener instead of \
     ignoring them, so the check cannot make a server that never answers here";

/// A listener on 127.0.0.1 that never answers: the check fills its queue of
/// connections waiting to be accepted, and never accepts. The OS then drops
/// every new connection request without a word, as a server that is down
/// behind a firewall would: a connect waits, and waits. Returns the
/// listener, its address, and the connections that fill it (keep them).
/// `None` where this OS refuses instead (then a connect fails at once).
pub fn never_answering() -> Option<(TcpListener, SocketAddr, Vec<TcpStream>)> {
    let listener = TcpListener::bind("127.0.0.1:0").expect("the check could not listen");
    let addr = listener
        .local_addr()
        .expect("a bound listener has an address");
    let mut queued = Vec::new();
    // Linux queues backlog + 1 = 129 with std's backlog of 128.
    for _ in 0..1000 {
        match TcpStream::connect_timeout(&addr, ms(50)) {
            Ok(stream) => queued.push(stream),
            Err(error) if is_timeout(&error) => return Some((listener, addr, queued)),
            Err(_) => return None,
        }
    }
    None
}

pub fn is_timeout(error: &std::io::Error) -> bool {
    matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
}
