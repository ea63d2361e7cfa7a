//! The program of lesson 3: dial a server, say which addresses the connection
//! joins, and hang up.
//!
//!     cargo run -p lesson-03-dial -- [ADDR]      (ADDR defaults to 127.0.0.1:5555)
//!
//! Start a server first, in another terminal: lesson 2's program, or
//! `nc -l 127.0.0.1 5555`. You need not change this file.

use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use lesson_03_dial::dial;

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
    let connection = dial(&addr)?;
    let remote = connection
        .peer_addr()
        .context("could not read the server's address")?;
    let local = connection
        .local_addr()
        .context("could not read our own address")?;
    eprintln!("connected to {remote} from {local}");
    // Dropping the connection hangs up: the server reads end of file.
    Ok(())
}

/// The one optional argument: the address to dial.
fn address_argument() -> Result<String> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| DEFAULT_ADDR.to_string());
    if args.next().is_some() {
        bail!("too many arguments; usage: lesson-03-dial [ADDR]");
    }
    Ok(addr)
}

/// Advice for the errors people meet when dialling.
fn what_to_try(error: &anyhow::Error) -> &'static str {
    use std::io::ErrorKind::*;
    let kind = error
        .chain()
        .find_map(|cause| cause.downcast_ref::<std::io::Error>());
    match kind.map(std::io::Error::kind) {
        Some(ConnectionRefused) => {
            "Try: start a server there first (cargo run -p lesson-02-accept), or check the port"
        }
        Some(TimedOut) => "Try: an address on this machine, like 127.0.0.1:5555",
        _ => "Try: an address written HOST:PORT, like 127.0.0.1:5555 or localhost:5555",
    }
}
