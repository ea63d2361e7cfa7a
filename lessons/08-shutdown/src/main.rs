//! The program of lesson 8: lesson 7's echo server, bounded and stoppable.
//!
//!     cargo run -p lesson-08-shutdown -- server [ADDR] [--max-clients N] [--grace MS]
//!                                              [--idle MS] [--message MS] [--write MS]
//!     cargo run -p lesson-08-shutdown -- client [ADDR] [--connect MS]
//!
//! ADDR defaults to 127.0.0.1:5555. The server serves at most --max-clients
//! clients at once (default 100) and tells the next one it is busy. Ctrl-C
//! stops it well: no new clients, the conversations going on get --grace
//! milliseconds to finish (default 5000), then a goodbye; it prints what it
//! did and exits 0. A second Ctrl-C stops it at once. The limits and the
//! client are lesson 7's. You need not change this file.

use std::io::{self, BufRead, IsTerminal, Write};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use lesson_08_shutdown::{
    BUSY_REPLY, Client, IDLE_REPLY, SHUTDOWN_REPLY, SLOW_REPLY, Settings, Stop, bound_address,
    counted, listen, serve_until_stopped,
};

const DEFAULT_ADDR: &str = "127.0.0.1:5555";
const DEFAULT_CONNECT: Duration = Duration::from_secs(3);
const USAGE: &str = "usage: lesson-08-shutdown server [ADDR] [--max-clients N] [--grace MS] \
                     [--idle MS] [--message MS] [--write MS], or client [ADDR] [--connect MS]";

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
    let (addr, flags) = address_and_flags(args.collect())?;
    match mode.as_str() {
        "server" => {
            let mut settings = Settings::standard();
            for (flag, value) in flags {
                let millis = Duration::from_millis(value);
                match flag.as_str() {
                    "--max-clients" => settings.max_clients = value as usize,
                    "--grace" => settings.grace = millis,
                    "--idle" => settings.limits.idle = millis,
                    "--message" => settings.limits.message = millis,
                    "--write" => settings.limits.write = millis,
                    _ => bail!(
                        "`server` takes --max-clients, --grace, --idle, --message and --write, \
                         not {flag}; {USAGE}"
                    ),
                }
            }
            serve(&addr, settings)
        }
        "client" => {
            let mut connect = DEFAULT_CONNECT;
            for (flag, value) in flags {
                match flag.as_str() {
                    "--connect" => connect = Duration::from_millis(value),
                    _ => bail!("`client` takes --connect, not {flag}; {USAGE}"),
                }
            }
            client(&addr, connect)
        }
        _ => bail!("the first argument must be `server` or `client`; {USAGE}"),
    }
}

/// Takes apart what follows `server` or `client`: an address first, if any,
/// then flags in any order, each with a number above 0 (milliseconds, or
/// for --max-clients a number of clients).
fn address_and_flags(args: Vec<String>) -> Result<(String, Vec<(String, u64)>)> {
    let mut args = args.into_iter().peekable();
    let addr = match args.next_if(|arg| !arg.starts_with("--")) {
        Some(addr) => addr,
        None => DEFAULT_ADDR.to_string(),
    };
    let mut flags = Vec::new();
    while let Some(flag) = args.next() {
        if !flag.starts_with("--") {
            bail!("too many arguments: {flag:?}; {USAGE}");
        }
        let Some(value) = args.next() else {
            bail!("{flag} needs a number; {USAGE}");
        };
        let number: u64 = match value.parse() {
            Ok(number) if number > 0 => number,
            _ => bail!("{flag} needs a number above 0, not {value:?}; {USAGE}"),
        };
        flags.push((flag, number));
    }
    Ok((addr, flags))
}

// ANCHOR: serve
/// Serves at most `settings.max_clients` clients at once, each on its own
/// thread, until Ctrl-C; then stops well and says what it did.
fn serve(addr: &str, settings: Settings) -> Result<()> {
    let listener = listen(addr)?;
    let stop = Stop::new(&listener)?;
    let on_signal = stop.clone();
    // Set before the server says it listens: from then on, Ctrl-C stops it
    // well instead of killing it.
    ctrlc::set_handler(move || on_ctrl_c(&on_signal))
        .context("could not set a handler for Ctrl-C")?;
    eprintln!(
        "listening on {} (at most {} at once; Ctrl-C to stop, with {} ms of grace)",
        bound_address(&listener)?,
        counted(settings.max_clients, "client"),
        settings.grace.as_millis()
    );
    let summary = serve_until_stopped(listener, settings, stop)?;
    eprintln!("{summary}");
    Ok(())
}

/// What Ctrl-C does. The ctrlc crate runs this on a thread of its own, not
/// inside the signal handler, so it may do what any code does: print, lock,
/// connect. The first Ctrl-C stops the server well; a second one, while it
/// waits for its clients, stops it at once.
fn on_ctrl_c(stop: &Stop) {
    if stop.is_stopping() {
        eprintln!("stopping at once: a second Ctrl-C");
        std::process::exit(130);
    }
    // First the stop, then the word: a client that hears it is already too late.
    stop.trigger();
    eprintln!("stopping: Ctrl-C (press it again to stop at once)");
}
// ANCHOR_END: serve

/// The client of lesson 7, which gives up on a server that does not answer
/// within `connect`: sends each line of stdin, printing each reply; at the
/// end of input, hangs up and prints whatever the server still sends. When
/// the server ends the conversation first, prints what it sent, then says so
/// (an error).
fn client(addr: &str, connect: Duration) -> Result<()> {
    let mut client = Client::connect_within(addr, connect)?;
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
            if prompt {
                eprintln!(); // Ctrl-D left the cursor after the prompt
            }
            let rest = client.finish(&line).map_err(server_ended)?;
            show(&mut stdout, &rest)?;
            if !rest.is_empty() && !rest.ends_with(b"\n") {
                eprintln!(); // start the narration on a line of its own
            }
            if is_error_line(&rest, &line) {
                return Err(refused(&rest));
            }
            if rest.is_empty() && !line.is_empty() {
                bail!("{CLOSED} without echoing the last bytes");
            }
            eprintln!("hung up; the server closed the connection");
            return Ok(());
        }
        let reply = client.turn(&line).map_err(server_ended)?;
        show(&mut stdout, &reply)?;
        if is_error_line(&reply, &line) {
            // The server ends the conversation with an error line: hang up
            // too, and show anything it sent after. (Whatever else goes
            // wrong now, the error line already says why it ended.)
            let rest = client.finish(b"").unwrap_or_default();
            show(&mut stdout, &rest)?;
            return Err(refused(&reply));
        }
    }
}

/// Writes bytes the server sent to stdout, and shows them at once, even when
/// stdout is a pipe.
fn show(stdout: &mut impl Write, bytes: &[u8]) -> Result<()> {
    stdout
        .write_all(bytes)
        .context("could not write to stdout")?;
    stdout.flush().context("could not write to stdout")
}

/// How the client tells that the server ended the conversation first.
const CLOSED: &str = "the server closed the connection";
const RESET: &str = "the server reset the connection";
const REFUSED: &str = "the server ended the conversation with an error line";

/// True if the server answered `sent` with its error line instead of the echo.
fn is_error_line(reply: &[u8], sent: &[u8]) -> bool {
    reply != sent && reply.starts_with(b"error:")
}

/// The error that quotes the server's error line.
fn refused(error_line: &[u8]) -> anyhow::Error {
    let text = String::from_utf8_lossy(error_line.trim_ascii_end());
    anyhow!("{REFUSED}: {text:?}")
}

/// Says how the server ended the conversation when a turn or the hang-up
/// failed: it reset the connection (the OS reports that as an error), or it
/// closed it (the client read end of file instead of a reply).
fn server_ended(error: anyhow::Error) -> anyhow::Error {
    use std::io::ErrorKind::*;
    match io_error_kind(&error) {
        Some(ConnectionReset | ConnectionAborted | BrokenPipe) => error.context(RESET),
        // shutdown() finds no connection left once the server has reset it.
        Some(NotConnected) => anyhow!(RESET),
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

/// The server's error line quoted in `message`, if it is one of these.
fn quotes(message: &str, error_line: &[u8]) -> bool {
    let text = String::from_utf8_lossy(error_line.trim_ascii_end());
    message.starts_with(REFUSED) && message.contains(text.as_ref())
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
        _ if quotes(&message, IDLE_REPLY) => {
            "Try: type sooner (the server waits at most its --idle limit for each \
             line), or start the server with a longer --idle"
        }
        _ if quotes(&message, SLOW_REPLY) => {
            "Try: send each line whole (the server waits at most its --message limit \
             from a line's first byte to its newline)"
        }
        _ if quotes(&message, BUSY_REPLY) => {
            "Try: again in a moment: the server serves as many clients as it may at once \
             (its --max-clients)"
        }
        _ if quotes(&message, SHUTDOWN_REPLY) => {
            "Try: again once the server is back: it was stopped while you were connected"
        }
        _ if message.starts_with(REFUSED) => "Try: lines of at most 65536 bytes, newline included",
        _ if message.starts_with(RESET) => {
            "Try: look at the server's output. A server resets the connection when it closes before reading all we sent, for instance a message too long for it"
        }
        _ if message.starts_with(CLOSED) => {
            "Try: look at the server's output for why. (A lesson 4 server answers only one message.)"
        }
        _ if message.contains(USAGE) => {
            "Try: `server` in one terminal, then `client` in another; limits in milliseconds, like `server --grace 2000`"
        }
        Some(AddrInUse) => {
            "Try: stop the other program on that port, or pass another address, like 127.0.0.1:5556"
        }
        Some(ConnectionRefused) => {
            "Try: start the server first (cargo run -p lesson-08-shutdown -- server), or check the port"
        }
        Some(TimedOut | WouldBlock) => {
            "Try: check the address; a server that does not answer within --connect \
             (3000 ms unless you say) is down, overloaded, or behind a firewall that drops packets"
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
