//! The program of lesson 12: lesson 11's chat room on tokio, stopped well.
//!
//!     cargo run -p lesson-12-async-chat -- server [ADDR] [--grace SECONDS]
//!
//! ADDR defaults to 127.0.0.1:5555. Members join as in lesson 11: use lesson
//! 11's client (`cargo run -p lesson-11-chat -- client`) or `nc -N`. Ctrl-C
//! stops the server well: no new clients, every member hears
//! `* the server is stopping`, their outboxes get --grace seconds to drain
//! (default 5, fractions allowed: `--grace 0.5`), every connection is closed
//! gently, and the server prints what it did and exits 0. A second Ctrl-C
//! stops it at once. You need not change this file.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use lesson_12_async_chat::{narrate, serve_room_async};
use tokio::net::TcpListener;
use tokio::sync::watch;

const DEFAULT_ADDR: &str = "127.0.0.1:5555";
const DEFAULT_GRACE: Duration = Duration::from_secs(5);
const USAGE: &str = "usage: lesson-12-async-chat server [ADDR] [--grace SECONDS]";

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // One line that says what failed and what to try; never a panic.
            eprintln!("error: {error:#}. {}", what_to_try(&error));
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<()> {
    let mut args = std::env::args().skip(1);
    if args.next().as_deref() != Some("server") {
        bail!("the first argument must be `server`; {USAGE}");
    }
    let mut addr = None;
    let mut grace = DEFAULT_GRACE;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--grace" => grace = seconds(args.next())?,
            _ if arg.starts_with("--") => bail!("unknown option {arg}; {USAGE}"),
            _ if addr.is_none() => addr = Some(arg),
            _ => bail!("too many arguments; {USAGE}"),
        }
    }
    let addr = addr.unwrap_or_else(|| DEFAULT_ADDR.to_string());
    // One thread runs every member's task, as in lesson 9: the room's work
    // is short (a lock, a few try_sends), and the chapter says why one
    // thread is enough here.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("could not start the tokio runtime")?;
    runtime.block_on(serve(&addr, grace))
}

/// The value of `--grace SECONDS`: a number of seconds, fractions allowed.
fn seconds(value: Option<String>) -> Result<Duration> {
    let value = value.with_context(|| format!("--grace needs a number of seconds; {USAGE}"))?;
    match value.parse::<f64>() {
        Ok(seconds) if (0.0..86_400.0).contains(&seconds) => Ok(Duration::from_secs_f64(seconds)),
        _ => bail!("--grace {value}: not a number of seconds; {USAGE}"),
    }
}

// ANCHOR: serve
/// Serves one room until Ctrl-C, then stops it well and says what it did.
async fn serve(addr: &str, grace: Duration) -> Result<()> {
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("could not listen on {addr}"))?;
    // Set before the server says it listens: from then on, Ctrl-C stops it
    // well instead of killing it.
    let stop = on_ctrl_c()?;
    narrate(format!(
        "listening on {} (Ctrl-C to stop, with {} ms of grace)",
        listener
            .local_addr()
            .context("could not read the listener's address")?,
        grace.as_millis()
    ));
    let stopped = serve_room_async(listener, stop, grace).await?;
    narrate(stopped.to_string());
    Ok(())
}

/// Ctrl-C, as a watch channel that turns true at the first press. A second
/// press, while the server waits for its members, stops it at once.
///
/// tokio::signal::ctrl_c() would do, but it sets its handler only when it
/// is first polled, by a task that may not have run yet: a Ctrl-C that came
/// right after `listening on` would still kill the program. The platform's
/// own form (what ctrl_c() calls) sets it now, in this call.
fn on_ctrl_c() -> Result<watch::Receiver<bool>> {
    let mut presses = ctrl_c_presses().context("could not set a handler for Ctrl-C")?;
    let (pressed, stop) = watch::channel(false);
    tokio::spawn(async move {
        presses.recv().await;
        // First the stop, then the word: a client that hears it is already too late.
        let _ = pressed.send(true);
        narrate("stopping: Ctrl-C (press it again to stop at once)".to_string());
        presses.recv().await;
        narrate("stopping at once: a second Ctrl-C".to_string());
        std::process::exit(130);
    });
    Ok(stop)
}
// ANCHOR_END: serve

#[cfg(unix)]
fn ctrl_c_presses() -> std::io::Result<tokio::signal::unix::Signal> {
    use tokio::signal::unix::{SignalKind, signal};
    signal(SignalKind::interrupt())
}

#[cfg(windows)]
fn ctrl_c_presses() -> std::io::Result<tokio::signal::windows::CtrlC> {
    tokio::signal::windows::ctrl_c()
}

/// The kind of the first I/O error among the causes of `error`, if any.
fn io_error_kind(error: &anyhow::Error) -> Option<std::io::ErrorKind> {
    error
        .chain()
        .find_map(|cause| cause.downcast_ref::<std::io::Error>())
        .map(std::io::Error::kind)
}

/// Advice for the errors people meet when they start a server.
fn what_to_try(error: &anyhow::Error) -> &'static str {
    use std::io::ErrorKind::*;
    let message = error.to_string();
    match io_error_kind(error) {
        _ if message.contains(USAGE) => {
            "Try: `server`, then an address if you like, like `server 127.0.0.1:5556 --grace 2`"
        }
        Some(AddrInUse) => {
            "Try: stop the other program on that port, or pass another address, like 127.0.0.1:5556"
        }
        Some(InvalidInput) => "Try: an address written HOST:PORT, like 127.0.0.1:5555",
        Some(PermissionDenied) => "Try: a port above 1023, like 127.0.0.1:5555",
        Some(AddrNotAvailable) => "Try: an address of this machine, like 127.0.0.1:5555",
        _ if cfg!(unix) && error_number(error, &[23, 24]) => {
            "Try: raise this shell's limit of open files (each connection is one), like `ulimit -n 4096`, then run it again"
        }
        _ => "Try: an address of this machine, like 127.0.0.1:5555, and a port that is free",
    }
}

/// True when an I/O error among the causes of `error` has one of `numbers`
/// (EMFILE 24, ENFILE 23: no file left for a socket).
fn error_number(error: &anyhow::Error, numbers: &[i32]) -> bool {
    error
        .chain()
        .filter_map(|cause| cause.downcast_ref::<std::io::Error>())
        .any(|cause| cause.raw_os_error().is_some_and(|n| numbers.contains(&n)))
}
