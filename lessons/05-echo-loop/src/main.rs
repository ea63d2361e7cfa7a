//! The program of lesson 5: the seesaw in a loop.
//!
//!     cargo run -p lesson-05-echo-loop -- server [ADDR]
//!     cargo run -p lesson-05-echo-loop -- client [ADDR]
//!
//! ADDR defaults to 127.0.0.1:5555. The server echoes every message until the
//! client hangs up, then serves the next client. The client sends each line
//! you type (or pipe in) and prints each reply; at the end of input (Ctrl-D)
//! it hangs up. Try `printf 'one\ntwo\n' | cargo run -p lesson-05-echo-loop -- client`.
//! You need not change this file.

use std::io::{self, BufRead, IsTerminal, Write};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use lesson_05_echo_loop::{Client, accept_one, bound_address, listen, serve_client};

const DEFAULT_ADDR: &str = "127.0.0.1:5555";
const USAGE: &str = "usage: lesson-05-echo-loop server|client [ADDR]";

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
    let mode = args.next().unwrap_or_default();
    let addr = args.next().unwrap_or_else(|| DEFAULT_ADDR.to_string());
    if args.next().is_some() {
        bail!("too many arguments; {USAGE}");
    }
    match mode.as_str() {
        "server" => serve(&addr),
        "client" => client(&addr),
        _ => bail!("the first argument must be `server` or `client`; {USAGE}"),
    }
}

// ANCHOR: serve
/// Serves clients one after another, each until it hangs up.
fn serve(addr: &str) -> Result<()> {
    let listener = listen(addr)?;
    eprintln!(
        "listening on {} (Ctrl-C to stop)",
        bound_address(&listener)?
    );
    loop {
        let (connection, peer) = accept_one(&listener)?;
        eprintln!("accepted {peer}");
        serve_client(connection, peer);
    }
}
// ANCHOR_END: serve

// ANCHOR: client
/// Sends each line of stdin, printing each reply; at the end of input, hangs
/// up and prints whatever the server still sends.
fn client(addr: &str) -> Result<()> {
    let mut client = Client::connect(addr)?;
    eprintln!("connected to {addr}");
    let prompt = io::stdin().is_terminal();
    let mut input = io::stdin().lock();
    let mut stdout = io::stdout().lock();
    loop {
        if prompt {
            eprint!("> ");
        }
        let mut line = Vec::new();
        input
            .read_until(b'\n', &mut line)
            .context("could not read stdin")?;
        if !line.ends_with(b"\n") {
            // End of input, maybe after a last line with no newline.
            let rest = client.finish(&line)?;
            stdout
                .write_all(&rest)
                .context("could not write to stdout")?;
            stdout.flush().context("could not write to stdout")?;
            let open_line = !rest.is_empty() && !rest.ends_with(b"\n");
            if prompt || open_line {
                eprintln!(); // start the narration on a line of its own
            }
            eprintln!("hung up; the server closed the connection");
            return Ok(());
        }
        let reply = client.turn(&line)?;
        stdout
            .write_all(&reply)
            .context("could not write to stdout")?;
        // Show each reply at once, even when stdout is a pipe.
        stdout.flush().context("could not write to stdout")?;
    }
}
// ANCHOR_END: client

/// Advice for the errors people meet with a server and a client.
fn what_to_try(error: &anyhow::Error) -> &'static str {
    use std::io::ErrorKind::*;
    let kind = error
        .chain()
        .find_map(|cause| cause.downcast_ref::<std::io::Error>());
    match kind.map(std::io::Error::kind) {
        Some(AddrInUse) => {
            "Try: stop the other program on that port, or pass another address, like 127.0.0.1:5556"
        }
        Some(ConnectionRefused) => {
            "Try: start the server first (cargo run -p lesson-05-echo-loop -- server), or check the port"
        }
        Some(ConnectionReset | BrokenPipe | UnexpectedEof) => {
            "Try: run the server again; it closed the connection early"
        }
        Some(InvalidInput) => "Try: an address written HOST:PORT, like 127.0.0.1:5555",
        _ if error.to_string().contains(USAGE) => {
            "Try: `server` in one terminal, then `client` in another"
        }
        _ => "Try: a seesaw echo server at that address (`server` in another terminal)",
    }
}
