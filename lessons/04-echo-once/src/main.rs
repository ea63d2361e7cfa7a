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
use std::thread;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
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
        let (mut connection, peer) = match accept_one(&listener) {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of file descriptors, for instance. Say so, wait a moment
                // instead of failing again at once, and go on (lesson 6 backs
                // off properly).
                eprintln!("{error:#}; trying again in 100 ms");
                thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
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
/// Sends one line of stdin and prints the reply on stdout. When the server
/// closes instead of replying, or answers with its error line, says so (an
/// error).
fn client(addr: &str) -> Result<()> {
    let mut connection = dial(addr)?;
    eprintln!("connected to {addr}");
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
    let reply = client_turn(&mut connection, &message).map_err(server_ended)?;
    eprintln!("wrote {} bytes, read {} bytes", message.len(), reply.len());
    io::stdout()
        .write_all(&reply)
        .context("could not write to stdout")?;
    if is_error_line(&reply, &message) {
        return Err(refused(&reply));
    }
    Ok(())
}
// ANCHOR_END: client

/// How the client tells that the server ended the conversation its own way.
const CLOSED: &str = "the server closed the connection";
const RESET: &str = "the server reset the connection";
const REFUSED: &str = "the server refused the message";

/// True if the server answered `sent` with an error line instead of the echo.
fn is_error_line(reply: &[u8], sent: &[u8]) -> bool {
    reply != sent && reply.starts_with(b"error:")
}

/// The error that quotes the server's error line.
fn refused(error_line: &[u8]) -> anyhow::Error {
    let text = String::from_utf8_lossy(error_line.trim_ascii_end());
    anyhow!("{REFUSED}: {text:?}")
}

/// Says how the server ended the conversation when the turn failed: it reset
/// the connection (the OS reports that as an error), or it closed it (the
/// client read end of file instead of a reply).
fn server_ended(error: anyhow::Error) -> anyhow::Error {
    use std::io::ErrorKind::*;
    match io_error_kind(&error) {
        Some(ConnectionReset | ConnectionAborted | BrokenPipe) => error.context(RESET),
        Some(UnexpectedEof) | None if !error.to_string().starts_with(CLOSED) => {
            error.context(CLOSED)
        }
        _ => error,
    }
}

/// The kind of the first I/O error among the causes of `error`, if any.
fn io_error_kind(error: &anyhow::Error) -> Option<std::io::ErrorKind> {
    error
        .chain()
        .find_map(|cause| cause.downcast_ref::<std::io::Error>())
        .map(std::io::Error::kind)
}

/// Advice for the errors people meet with a server and a client.
fn what_to_try(error: &anyhow::Error) -> &'static str {
    use std::io::ErrorKind::*;
    let message = error.to_string();
    match io_error_kind(error) {
        _ if out_of_files(error) => {
            "Try: raise this shell's limit of open files (each connection is one), like `ulimit -n 4096`, then run it again"
        }
        _ if name_not_resolved(error) => {
            "Try: that host name did not resolve: check its spelling, or use an IP address, like 127.0.0.1:5555"
        }
        _ if message.starts_with(REFUSED) => {
            "Try: a shorter message; a seesaw server takes lines of at most 65536 bytes, newline included"
        }
        _ if message.starts_with(RESET) => {
            "Try: look at the server's output. A server resets the connection when it closes before reading all we sent, for instance a message too long for it"
        }
        _ if message.starts_with(CLOSED) => "Try: look at the server's output for why",
        _ if message.starts_with("too many arguments") => {
            "Try: `server` or `client`, then at most one address, like `client 127.0.0.1:5555`"
        }
        _ if message.contains(USAGE) => "Try: `server` in one terminal, then `client` in another",
        Some(AddrInUse) => {
            "Try: stop the other program on that port, or pass another address, like 127.0.0.1:5556"
        }
        Some(ConnectionRefused) => {
            "Try: start the server first (cargo run -p lesson-04-echo-once -- server), or check the port"
        }
        Some(InvalidInput) => "Try: an address written HOST:PORT, like 127.0.0.1:5555",
        Some(PermissionDenied) => "Try: a port above 1023, like 127.0.0.1:5555",
        Some(AddrNotAvailable) => "Try: an address of this machine, like 127.0.0.1:5555",
        _ => "Try: a seesaw echo server at that address (`server` in another terminal)",
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
