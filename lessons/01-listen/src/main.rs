//! The program of lesson 1: listen on an address and wait.
//!
//!     cargo run -p lesson-01-listen -- [ADDR]      (ADDR defaults to 127.0.0.1:5555)
//!
//! Then, in a second terminal, `nc -vz 127.0.0.1 5555` connects to it.
//! You need not change this file: it is built on your src/lib.rs.

use std::process::ExitCode;

use anyhow::{Result, bail};
use lesson_01_listen::{bound_address, listen};

const DEFAULT_ADDR: &str = "127.0.0.1:5555";

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
    let addr = address_argument()?;
    let listener = listen(&addr)?;
    eprintln!(
        "listening on {} (Ctrl-C to stop)",
        bound_address(&listener)?
    );
    // Keep the listener open. The OS completes incoming connections on its own
    // and queues them (the backlog); accepting them is lesson 2.
    loop {
        std::thread::park();
    }
}

/// The one optional argument: the address to listen on.
fn address_argument() -> Result<String> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| DEFAULT_ADDR.to_string());
    if args.next().is_some() {
        bail!("too many arguments; usage: lesson-01-listen [ADDR]");
    }
    Ok(addr)
}

/// Advice for the errors people meet when starting a server.
fn what_to_try(error: &anyhow::Error) -> &'static str {
    use std::io::ErrorKind::*;
    let kind = error
        .chain()
        .find_map(|cause| cause.downcast_ref::<std::io::Error>());
    match kind.map(std::io::Error::kind) {
        _ if out_of_files(error) => {
            "Try: raise this shell's limit of open files (each connection is one), like `ulimit -n 4096`, then run it again"
        }
        _ if name_not_resolved(error) => {
            "Try: that host name did not resolve: check its spelling, or use an IP address, like 127.0.0.1:5555"
        }
        Some(AddrInUse) => {
            "Try: stop the other program on that port, or pass another address, like 127.0.0.1:5556"
        }
        Some(AddrNotAvailable) => "Try: an address of this machine, like 127.0.0.1",
        Some(PermissionDenied) => "Try: a port above 1023",
        _ => "Try: an address written IP:PORT, like 127.0.0.1:5555",
    }
}

/// True when no file was left for a socket: EMFILE (24, this process's limit)
/// or ENFILE (23, the whole system's). Each connection is one open file.
/// These have no `ErrorKind` of their own.
fn out_of_files(error: &anyhow::Error) -> bool {
    cfg!(unix) && io_errors(error).any(|cause| matches!(cause.raw_os_error(), Some(23 | 24)))
}

/// True when a host name did not resolve: the resolver's error has no
/// `ErrorKind` of its own, only its text (on Windows, WSAHOST_NOT_FOUND).
fn name_not_resolved(error: &anyhow::Error) -> bool {
    io_errors(error).any(|cause| {
        cause
            .to_string()
            .starts_with("failed to lookup address information")
            || (cfg!(windows) && cause.raw_os_error() == Some(11001))
    })
}

/// The I/O errors among the causes of `error`.
fn io_errors(error: &anyhow::Error) -> impl Iterator<Item = &std::io::Error> {
    error
        .chain()
        .filter_map(|cause| cause.downcast_ref::<std::io::Error>())
}
