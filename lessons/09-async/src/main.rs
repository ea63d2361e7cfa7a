//! The program of lesson 9: the echo server on tokio, a task per client.
//!
//!     cargo run -p lesson-09-async -- server [ADDR] [--idle MS] [--message MS] [--write MS]
//!     cargo run -p lesson-09-async -- client [ADDR]
//!
//! ADDR defaults to 127.0.0.1:5555. The server answers every client at once,
//! each in a task of its own, with the limits of lesson 7 in milliseconds
//! (defaults: 30000 idle, 10000 for a message, 10000 for a write). The client
//! is lesson 6's, on plain std: one connection needs no runtime; like lesson
//! 7's, it gives up on a server that does not take its connection within 3 s,
//! or does not answer within 10 s. Try
//! `cargo run --release -p seesaw-checks --example load -- 127.0.0.1:5555 10000 5`
//! against a release build of the server (`ulimit -n 20000` first). You need
//! not change this file.

use std::io::{self, BufRead, BufReader, IsTerminal, Read, Write};
use std::net::{Shutdown, TcpStream, ToSocketAddrs};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use lesson_09_async::{Limits, serve};

const DEFAULT_ADDR: &str = "127.0.0.1:5555";
const USAGE: &str = "usage: lesson-09-async server [ADDR] [--idle MS] [--message MS] [--write MS], or client [ADDR]";

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
    let mut addr = None;
    let mut limits = Limits::default();
    while let Some(arg) = args.next() {
        let limit = match arg.as_str() {
            "--idle" => &mut limits.idle,
            "--message" => &mut limits.message,
            "--write" => &mut limits.write,
            _ if arg.starts_with("--") => bail!("unknown option {arg}; {USAGE}"),
            _ if addr.is_none() => {
                addr = Some(arg);
                continue;
            }
            _ => bail!("too many arguments; {USAGE}"),
        };
        *limit = milliseconds(&arg, args.next())?;
    }
    let addr = addr.unwrap_or_else(|| DEFAULT_ADDR.to_string());
    match mode.as_str() {
        "server" => serve_on(&addr, limits),
        "client" if limits == Limits::default() => client(&addr),
        "client" => bail!("the limits are the server's; {USAGE}"),
        _ => bail!("the first argument must be `server` or `client`; {USAGE}"),
    }
}

/// The value of `--idle MS` and its kin: a number of milliseconds.
fn milliseconds(flag: &str, value: Option<String>) -> Result<Duration> {
    let value = value.with_context(|| format!("{flag} needs a number of milliseconds; {USAGE}"))?;
    let millis: u64 = value
        .parse()
        .with_context(|| format!("{flag} {value}: not a number of milliseconds; {USAGE}"))?;
    Ok(Duration::from_millis(millis))
}

// ANCHOR: serve_on
/// Listens on `addr` and serves every client at once, each in a task, on a
/// runtime with one thread (the chapter says why one).
fn serve_on(addr: &str, limits: Limits) -> Result<()> {
    let listener =
        std::net::TcpListener::bind(addr).with_context(|| format!("could not listen on {addr}"))?;
    let bound = listener
        .local_addr()
        .context("could not read the listener's address")?;
    eprintln!(
        "listening on {bound} (limits: idle {} ms, message {} ms, write {} ms; Ctrl-C to stop)",
        limits.idle.as_millis(),
        limits.message.as_millis(),
        limits.write.as_millis()
    );
    // tokio takes a listener that never blocks: the runtime does the waiting.
    listener
        .set_nonblocking(true)
        .context("could not make the listener non-blocking")?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("could not start the tokio runtime")?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::from_std(listener)
            .context("could not hand the listener to tokio")?;
        serve(listener, limits).await
    })
}
// ANCHOR_END: serve_on

/// The client of lesson 5: sends each line of stdin, printing each reply; at
/// the end of input, hangs up and prints whatever the server still sends.
/// When the server ends the conversation first, prints what it sent, then
/// says so (an error).
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
            // The server refuses the message and closes the connection: hang
            // up too, and show anything it sent after. (Whatever else goes
            // wrong now, the error line already says why the conversation ended.)
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
const REFUSED: &str = "the server refused the message and closed the connection";
const SILENT: &str = "the server did not answer";

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
    if error
        .chain()
        .any(|cause| cause.to_string().starts_with(SILENT))
    {
        return error; // it did not end the conversation: it never answered
    }
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
        _ if message.starts_with(REFUSED) && message.contains("idle") => {
            "Try: type within the server's idle limit, or start it with a longer one (--idle MS)"
        }
        _ if message.starts_with(REFUSED) && message.contains("slow") => {
            "Try: send each line whole, or start the server with a longer limit (--message MS)"
        }
        _ if message.starts_with(REFUSED) => "Try: lines of at most 65536 bytes, newline included",
        _ if error
            .chain()
            .any(|cause| cause.to_string().starts_with(SILENT)) =>
        {
            "Try: look at the server's output. A server that is stuck, or never accepts (its accept queue full), never answers"
        }
        Some(TimedOut) if message.starts_with("could not connect") => {
            "Try: check the address. Nothing answered within 3 s: a server whose accept queue is full, or a machine that drops the connection, looks like this"
        }
        _ if message.starts_with(RESET) => {
            "Try: look at the server's output. A server resets the connection when it closes before reading all we sent, for instance a message too long for it"
        }
        _ if message.starts_with(CLOSED) => {
            "Try: look at the server's output for why. (A lesson 4 server answers only one message.)"
        }
        _ if message.starts_with("too many arguments") || message.starts_with("unknown option") => {
            "Try: `server` or `client`, then at most one address, like `server 127.0.0.1:5555 --idle 5000`"
        }
        _ if message.contains("milliseconds") || message.starts_with("the limits") => {
            "Try: `server 127.0.0.1:5555 --idle 5000 --message 2000 --write 2000` (limits in milliseconds)"
        }
        _ if message.contains(USAGE) => "Try: `server` in one terminal, then `client` in another",
        Some(AddrInUse) => {
            "Try: stop the other program on that port, or pass another address, like 127.0.0.1:5556"
        }
        Some(ConnectionRefused) => {
            "Try: start the server first (cargo run -p lesson-09-async -- server), or check the port"
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

/// Lesson 5's client (done): a buffered reader and a writer on the same
/// socket. It is plain std: one connection, one thread, nothing to gain from
/// a runtime.
struct Client {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Client {
    /// Connects to the server at `addr`, trying each address the name stands
    /// for, at most CONNECT_TIMEOUT each (lesson 7's dial_within), and waits
    /// at most REPLY_TIMEOUT for each reply.
    fn connect(addr: &str) -> Result<Client> {
        let writer = dial(addr).with_context(|| format!("could not connect to {addr}"))?;
        writer
            .set_read_timeout(Some(REPLY_TIMEOUT))
            .context("could not set the reply timeout")?;
        let reader = BufReader::new(
            writer
                .try_clone()
                .context("could not clone the connection")?,
        );
        Ok(Client { reader, writer })
    }

    /// One turn: writes `message`, reads the reply up to its newline.
    fn turn(&mut self, message: &[u8]) -> Result<Vec<u8>> {
        self.writer
            .write_all(message)
            .context("could not send the message")?;
        let mut reply = Vec::new();
        let count = self
            .reader
            .read_until(b'\n', &mut reply)
            .map_err(no_answer_in_time)
            .context("could not read the reply")?;
        if count == 0 {
            bail!("the server closed the connection before replying");
        }
        Ok(reply)
    }

    /// Writes `last`, shuts down the sending side, reads to the end.
    fn finish(self, last: &[u8]) -> Result<Vec<u8>> {
        let Client {
            mut reader,
            mut writer,
        } = self;
        writer
            .write_all(last)
            .context("could not send the last bytes")?;
        writer
            .shutdown(Shutdown::Write)
            .context("could not shut down the sending side")?;
        let mut rest = Vec::new();
        reader
            .read_to_end(&mut rest)
            .map_err(no_answer_in_time)
            .context("could not read the server's last bytes")?;
        Ok(rest)
    }
}

/// How long the client waits for the server to take its connection: a server
/// whose accept queue is full drops the client's SYN, and without a limit the
/// OS would retry for about two minutes.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// How long the client waits for a reply. A connection can complete in the
/// server's accept queue and still never be accepted: then nothing ever
/// comes, and the client must not wait for ever.
const REPLY_TIMEOUT: Duration = Duration::from_secs(10);

/// Connects to the first address of `addr` that answers within CONNECT_TIMEOUT.
fn dial(addr: &str) -> io::Result<TcpStream> {
    let mut last_error = io::Error::new(io::ErrorKind::NotFound, "the name stands for no address");
    for address in addr.to_socket_addrs()? {
        match TcpStream::connect_timeout(&address, CONNECT_TIMEOUT) {
            Ok(connection) => return Ok(connection),
            Err(error) => last_error = error,
        }
    }
    Err(last_error)
}

/// A read that ran out of REPLY_TIMEOUT, said as what it means.
fn no_answer_in_time(error: io::Error) -> anyhow::Error {
    match error.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
            anyhow!("{SILENT} within {} s", REPLY_TIMEOUT.as_secs())
        }
        _ => error.into(),
    }
}
