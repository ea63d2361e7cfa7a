//! The program of lesson 4: one turn of the seesaw.
//!
//!     cargo run -p lesson-04-echo-once -- server [ADDR]
//!     cargo run -p lesson-04-echo-once -- client [ADDR]
//!
//! ADDR defaults to 127.0.0.1:5555. The server echoes one message on each
//! connection, then closes it; the client sends one line of its input and
//! prints the reply. Try `echo hello | cargo run -p lesson-04-echo-once -- client`,
//! or `nc 127.0.0.1 5555` against the server. You need not change this file.

use std::io::{self, BufRead, IsTerminal, Write};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use lesson_04_echo_once::{accept_one, bound_address, client_turn, dial, listen, server_turn};

const DEFAULT_ADDR: &str = "127.0.0.1:5555";
const USAGE: &str = "usage: lesson-04-echo-once server|client [ADDR]";

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
/// Echoes one message on each connection, one connection after another.
fn serve(addr: &str) -> Result<()> {
    let listener = listen(addr)?;
    eprintln!(
        "listening on {} (Ctrl-C to stop)",
        bound_address(&listener)?
    );
    loop {
        let (mut connection, peer) = accept_one(&listener)?;
        eprintln!("accepted {peer}");
        match server_turn(&mut connection) {
            Ok(message) => {
                eprintln!("read {} bytes from {peer}", message.len());
                eprintln!("wrote {} bytes to {peer}", message.len());
            }
            // A failed connection is that client's problem; serve the next one.
            Err(error) => eprintln!("{peer}: {error:#}"),
        }
        drop(connection);
        eprintln!("closed the connection to {peer}");
    }
}
// ANCHOR_END: serve

// ANCHOR: client
/// Sends one line of stdin and prints the reply on stdout.
fn client(addr: &str) -> Result<()> {
    let mut connection = dial(addr)?;
    eprintln!("connected to {}", connection.peer_addr()?);
    // The prompt is for a person at a terminal; piped input gets none.
    if io::stdin().is_terminal() {
        eprint!("message> ");
    }
    let mut message = Vec::new();
    io::stdin()
        .lock()
        .read_until(b'\n', &mut message)
        .context("could not read stdin")?;
    // A message ends with a newline, even when the input's last line has none.
    if !message.ends_with(b"\n") {
        message.push(b'\n');
    }
    let reply = client_turn(&mut connection, &message)?;
    eprintln!("wrote {} bytes, read {} bytes", message.len(), reply.len());
    io::stdout()
        .write_all(&reply)
        .context("could not write to stdout")?;
    Ok(())
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
            "Try: start the server first (cargo run -p lesson-04-echo-once -- server), or check the port"
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
