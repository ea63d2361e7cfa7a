//! The program of lesson 11: a chat room server, and a client that listens
//! and speaks at the same time.
//!
//!     cargo run -p lesson-11-chat -- server [ADDR]
//!     cargo run -p lesson-11-chat -- client [ADDR]
//!
//! ADDR defaults to 127.0.0.1:5555. Start the server, then a client in each
//! of two or three terminals (or `nc -N 127.0.0.1 5555`): type a name, then
//! lines. A line someone else says is printed at once, even while you type
//! nothing: the client has one thread that reads what you type and one that
//! reads the room. You need not change this file.

use std::io::{self, BufRead, BufReader, Write};
use std::net::{Shutdown, TcpStream};
use std::process::ExitCode;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use lesson_11_chat::{bound_address, dial_within, listen, serve_room};

const DEFAULT_ADDR: &str = "127.0.0.1:5555";
const USAGE: &str = "usage: lesson-11-chat server|client [ADDR]";

/// How long the client waits for the server to take its connection (lesson 7).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// How long one of the client's writes may wait for a server that does not
/// read (lesson 7).
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long the client waits, after its input has ended, for the server to
/// close the connection.
const GOODBYE_TIMEOUT: Duration = Duration::from_secs(10);

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
/// Serves one room, every member on threads of its own.
fn serve(addr: &str) -> Result<()> {
    let listener = listen(addr)?;
    eprintln!(
        "listening on {} (Ctrl-C to stop)",
        bound_address(&listener)?
    );
    serve_room(listener)
}
// ANCHOR_END: serve

/// What the client's two threads tell the main thread.
enum Event {
    /// Stdin has ended (Ok): the client hangs up its sending side now; or
    /// sending failed.
    InputEnded(Result<()>),
    /// The server closed the connection (Ok), or reading it failed.
    ServerClosed(Result<()>),
}

// ANCHOR: client
/// Reads stdin and the connection at the same time, on two threads: every
/// line typed goes to the room, every line from the room is printed at once.
fn client(addr: &str) -> Result<()> {
    let connection = dial_within(addr, CONNECT_TIMEOUT)?;
    connection
        .set_write_timeout(Some(WRITE_TIMEOUT))
        .context("could not set the write timeout")?;
    eprintln!("connected to {addr}; type your name, then lines (Ctrl-D to leave)");
    let (events, event) = mpsc::channel();
    let reading = connection
        .try_clone()
        .context("could not clone the connection")?;
    let to_main = events.clone();
    thread::spawn(move || to_main.send(Event::ServerClosed(print_room(reading))));
    thread::spawn(move || send_input(connection, &events));
    match event.recv().context("both threads ended without a word")? {
        Event::ServerClosed(result) => {
            result?;
            Err(anyhow!("{CLOSED} (its last words are above)"))
        }
        Event::InputEnded(result) => {
            result?;
            // We are hanging up; the server answers by closing.
            loop {
                match event.recv_timeout(GOODBYE_TIMEOUT) {
                    Ok(Event::ServerClosed(result)) => return result,
                    // Hanging up failed: the connection is already broken.
                    Ok(Event::InputEnded(Err(error))) => return Err(error),
                    Ok(Event::InputEnded(Ok(()))) => {}
                    Err(_) => bail!("{SILENT} within {} s", GOODBYE_TIMEOUT.as_secs()),
                }
            }
        }
    }
}
// ANCHOR_END: client

// ANCHOR: threads
/// The room's side: prints every line the server sends, as it comes, until
/// the server closes the connection.
fn print_room(connection: TcpStream) -> Result<()> {
    let mut stdout = io::stdout();
    for line in BufReader::new(connection).split(b'\n') {
        let mut line = line.map_err(server_ended)?;
        line.push(b'\n');
        stdout
            .write_all(&line)
            .and_then(|()| stdout.flush())
            .context("could not write to stdout")?;
    }
    Ok(())
}

/// The user's side: sends every line of stdin, then hangs up (shuts down the
/// sending side), so that the server knows we have left. It tells the main
/// thread *before* it hangs up: the server closes in answer to the hang-up,
/// and the main thread must hear of the hang-up first, or it would take that
/// close for the server leaving on its own.
fn send_input(mut connection: TcpStream, events: &mpsc::Sender<Event>) {
    let mut sent = || -> Result<()> {
        for line in io::stdin().lock().split(b'\n') {
            let mut line = line.context("could not read stdin")?;
            line.push(b'\n');
            connection.write_all(&line).map_err(server_ended)?;
        }
        Ok(())
    };
    if let Err(error) = sent() {
        let _ = events.send(Event::InputEnded(Err(error)));
        return;
    }
    eprintln!("hung up; waiting for the server to close");
    let _ = events.send(Event::InputEnded(Ok(())));
    if let Err(error) = connection.shutdown(Shutdown::Write) {
        let _ = events.send(Event::InputEnded(Err(server_ended(error))));
    }
}
// ANCHOR_END: threads

/// How the client tells how the server ended the conversation.
const CLOSED: &str = "the server closed the connection";
const RESET: &str = "the server reset the connection";
const SILENT: &str = "the server did not close the connection";
const NOT_READING: &str = "the server stopped reading";

/// Says what a failed write or read of the conversation means.
fn server_ended(error: std::io::Error) -> anyhow::Error {
    use std::io::ErrorKind::*;
    match error.kind() {
        ConnectionReset | ConnectionAborted | BrokenPipe | NotConnected => {
            anyhow::Error::new(error).context(RESET)
        }
        WouldBlock | TimedOut => anyhow!("{NOT_READING} for {} s", WRITE_TIMEOUT.as_secs()),
        _ => anyhow::Error::new(error),
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
            "Try: read the server's last line above (a name taken or not allowed?), or the server's output"
        }
        _ if message.starts_with(SILENT) || message.starts_with(NOT_READING) => {
            "Try: a chat server at that address; look at the server's output for why it is stuck"
        }
        _ if message.starts_with("too many arguments") => {
            "Try: `server` or `client`, then at most one address, like `client 127.0.0.1:5555`"
        }
        _ if message.contains(USAGE) => "Try: `server` in one terminal, then `client` in another",
        Some(AddrInUse) => {
            "Try: stop the other program on that port, or pass another address, like 127.0.0.1:5556"
        }
        Some(ConnectionRefused) => {
            "Try: start the server first (cargo run -p lesson-11-chat -- server), or check the port"
        }
        Some(TimedOut | WouldBlock) => {
            "Try: check the address; a server that never takes the connection is not listening there"
        }
        Some(InvalidInput) => "Try: an address written HOST:PORT, like 127.0.0.1:5555",
        Some(PermissionDenied) => "Try: a port above 1023, like 127.0.0.1:5555",
        Some(AddrNotAvailable) => "Try: an address of this machine, like 127.0.0.1:5555",
        _ => "Try: a chat server at that address (`server` in another terminal)",
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
