//! The program of lesson 10: a "Means to an End" server, and a client that
//! speaks it for you.
//!
//!     cargo run -p lesson-10-binary -- server [ADDR]
//!     cargo run -p lesson-10-binary -- client [ADDR]
//!
//! ADDR defaults to 127.0.0.1:5555. The server serves many clients at once,
//! each with its own prices. Binary cannot be typed into `nc`, so the client
//! turns lines like `I 12345 101` (insert a price at a timestamp) and
//! `Q 12288 16384` (ask for the mean price between two timestamps) into
//! messages, and prints each answer on a line of its own. Try
//! `printf 'I 1 100\nI 2 103\nQ 1 2\n' | cargo run -p lesson-10-binary -- client`.
//! You need not change this file.

use std::io::{self, BufRead, IsTerminal, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use lesson_10_binary::{bound_address, dial_within, encode_command, listen, serve_concurrently};

const DEFAULT_ADDR: &str = "127.0.0.1:5555";
const USAGE: &str = "usage: lesson-10-binary server|client [ADDR]";

/// How long the client waits for the server to take its connection (lesson 7).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// How long the client waits for each answer to a query.
const REPLY_TIMEOUT: Duration = Duration::from_secs(10);

/// What the client says after a line it cannot send.
const COMMANDS: &str = "commands are `I TIMESTAMP PRICE` and `Q MINTIME MAXTIME`";

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
/// Serves every client at once, each on its own thread (lesson 6).
fn serve(addr: &str) -> Result<()> {
    let listener = listen(addr)?;
    eprintln!(
        "listening on {} (Ctrl-C to stop)",
        bound_address(&listener)?
    );
    serve_concurrently(listener)
}
// ANCHOR_END: serve

// ANCHOR: client
/// Sends a message for each command on stdin and prints each answer. A line
/// that is not a command is explained on stderr and skipped. At the end of
/// input, hangs up and waits for the server to close.
fn client(addr: &str) -> Result<()> {
    let connection = dial_within(addr, CONNECT_TIMEOUT)?;
    connection
        .set_read_timeout(Some(REPLY_TIMEOUT))
        .context("could not set the reply timeout")?;
    eprintln!("connected to {addr}; {COMMANDS}");
    let prompt = io::stdin().is_terminal();
    let mut stdout = io::stdout().lock();
    if prompt {
        eprint!("> ");
    }
    for (number, line) in io::stdin().lock().lines().enumerate() {
        let line = line.context("could not read stdin (is it text?)")?;
        if !line.trim().is_empty() {
            send_command(&connection, &line, number + 1, &mut stdout)?;
        }
        if prompt {
            eprint!("> ");
        }
    }
    hang_up(&connection)
}
// ANCHOR_END: client

/// Sends the message `line` stands for; for a query, prints the answer.
fn send_command(
    mut connection: &TcpStream,
    line: &str,
    number: usize,
    stdout: &mut impl Write,
) -> Result<()> {
    let message = match encode_command(line) {
        Ok(message) => message,
        Err(error) => {
            // A typo is not the end of the conversation: say so, go on.
            eprintln!("line {number} skipped: {error:#}; {COMMANDS}");
            return Ok(());
        }
    };
    connection.write_all(&message).map_err(server_ended)?;
    if message[0] != b'Q' {
        return Ok(()); // an insert has no answer
    }
    let mut answer = [0; 4];
    connection.read_exact(&mut answer).map_err(server_ended)?;
    writeln!(stdout, "{}", i32::from_be_bytes(answer)).context("could not write to stdout")?;
    stdout.flush().context("could not write to stdout")
}

/// The end of the input: shuts down the sending side, so that the server
/// reads end of file, then waits for it to close the connection.
fn hang_up(mut connection: &TcpStream) -> Result<()> {
    connection.shutdown(Shutdown::Write).map_err(server_ended)?;
    let mut rest = Vec::new();
    connection.read_to_end(&mut rest).map_err(server_ended)?;
    if !rest.is_empty() {
        bail!("the server sent {} bytes that answer no query", rest.len());
    }
    eprintln!("hung up; the server closed the connection");
    Ok(())
}

/// How the client tells that the server ended the conversation first.
const CLOSED: &str = "the server closed the connection";
const RESET: &str = "the server reset the connection";
const SILENT: &str = "the server did not answer";

/// Says what a failed write or read of the conversation means.
fn server_ended(error: impl Into<anyhow::Error>) -> anyhow::Error {
    use std::io::ErrorKind::*;
    let error = error.into();
    match io_error_kind(&error) {
        Some(ConnectionReset | ConnectionAborted | BrokenPipe | NotConnected) => {
            error.context(RESET)
        }
        Some(UnexpectedEof) => anyhow!("{CLOSED} before answering the query"),
        Some(WouldBlock | TimedOut) => {
            anyhow!("{SILENT} within {} s", REPLY_TIMEOUT.as_secs())
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
        _ if message.starts_with(CLOSED) || message.starts_with(RESET) => {
            "Try: look at the server's output for why. (Is it a Means to an End server?)"
        }
        _ if message.starts_with(SILENT) => {
            "Try: a Means to an End server at that address; an echo server never answers 9 bytes"
        }
        _ if message.starts_with("the server sent") => {
            "Try: a Means to an End server at that address (an echo server sends back what it got)"
        }
        _ if message.starts_with("too many arguments") => {
            "Try: `server` or `client`, then at most one address, like `client 127.0.0.1:5555`"
        }
        _ if message.contains(USAGE) => "Try: `server` in one terminal, then `client` in another",
        Some(AddrInUse) => {
            "Try: stop the other program on that port, or pass another address, like 127.0.0.1:5556"
        }
        Some(ConnectionRefused) => {
            "Try: start the server first (cargo run -p lesson-10-binary -- server), or check the port"
        }
        Some(TimedOut | WouldBlock) => {
            "Try: check the address; a server that never takes the connection is not listening there"
        }
        Some(InvalidInput) => "Try: an address written HOST:PORT, like 127.0.0.1:5555",
        Some(InvalidData) => "Try: commands in plain text, one a line",
        Some(PermissionDenied) => "Try: a port above 1023, like 127.0.0.1:5555",
        Some(AddrNotAvailable) => "Try: an address of this machine, like 127.0.0.1:5555",
        _ => "Try: a Means to an End server at that address (`server` in another terminal)",
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
