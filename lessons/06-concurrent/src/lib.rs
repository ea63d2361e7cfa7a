//! Lesson 6: many clients at once.
//!
//! The server of lesson 5 serves one client at a time: while it talks to one,
//! the next waits, its messages unanswered, even though the OS has already
//! completed its connection (the listen backlog). A real server gives each
//! client a thread of its own, and goes straight back to accepting.
//!
//! You write the function marked TODO. Everything of lesson 5 is done for you.
//! Nothing else needs to change: `src/main.rs` is the lesson's program,
//! `tests/checks.rs` are the checks.
//!
//! Read:  book/src/lessons/06-concurrent.md
//! Check: cargo test -p lesson-06-concurrent

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
#[allow(unused_imports)] // you will need thread
use std::thread;

use anyhow::{Context, Result, bail};

// ANCHOR: serve_concurrently
/// Serves every client that connects to `listener`, each on a thread of its
/// own, for ever. One client's trouble never stops the server: a failed
/// accept is reported on stderr, and the server goes on.
pub fn serve_concurrently(listener: TcpListener) -> Result<()> {
    // TODO: loop for ever, and in each turn:
    //   - accept the next client with accept_one(&listener);
    //   - on Ok((connection, peer)): eprintln!("accepted {peer}"), then start a
    //     thread for it: thread::spawn(move || serve_client(connection, peer)).
    //     Do not wait for (join) the thread: go straight back to accepting;
    //   - on Err(error): eprintln! it, and go on. Do not return it with `?`:
    //     one client that fails must not stop the server.
    let _ = listener; // (remove once you use `listener`)
    todo!("accept clients in a loop and serve each on its own thread (std::thread::spawn)")
}
// ANCHOR_END: serve_concurrently

/// The longest message the server accepts, newline included: 64 KiB.
pub const MAX_MESSAGE: usize = 64 * 1024;

/// What the server writes back, instead of an echo, to a message that is too long.
pub const TOO_LONG_REPLY: &[u8] = b"error: message longer than 65536 bytes\n";

/// What [`read_message`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Message {
    /// A whole message: its bytes, ending with the newline.
    Line(Vec<u8>),
    /// The last bytes before end of file, with no newline after them.
    Tail(Vec<u8>),
    /// End of file: the client has closed its sending side, and nothing is left.
    End,
    /// More than MAX_MESSAGE bytes came without a newline.
    TooLong,
}

/// Reads the next message from `reader`, reading at most MAX_MESSAGE bytes.
pub fn read_message(reader: &mut impl BufRead) -> Result<Message> {
    let mut bytes = Vec::new();
    // take() stops read_until after MAX_MESSAGE bytes, newline or not.
    reader
        .take(MAX_MESSAGE as u64)
        .read_until(b'\n', &mut bytes)
        .context("could not read a message")?;
    let message = if bytes.is_empty() {
        Message::End
    } else if bytes.ends_with(b"\n") {
        Message::Line(bytes)
    } else if bytes.len() == MAX_MESSAGE {
        Message::TooLong
    } else {
        Message::Tail(bytes)
    };
    Ok(message)
}

/// The server's side of the seesaw, turn after turn: echoes every message in
/// order until the client closes its sending side, then returns (which closes
/// the connection). A message that is too long gets TOO_LONG_REPLY, and ends
/// the connection too.
pub fn serve_connection(connection: TcpStream) -> Result<()> {
    let peer = connection
        .peer_addr()
        .context("could not read the peer's address")?;
    let mut reader = BufReader::new(
        connection
            .try_clone()
            .context("could not clone the connection")?,
    );
    let mut writer = connection;
    loop {
        match read_message(&mut reader)? {
            Message::Line(bytes) | Message::Tail(bytes) => {
                writer
                    .write_all(&bytes)
                    .context("could not write the echo")?;
                narrate(format!(
                    "read {n} bytes from {peer}, wrote {n} bytes back",
                    n = bytes.len()
                ));
            }
            Message::End => return Ok(()),
            Message::TooLong => {
                narrate(format!("{peer} sent a message over {MAX_MESSAGE} bytes"));
                writer
                    .write_all(TOO_LONG_REPLY)
                    .context("could not write the error")?;
                return Ok(());
            }
        }
    }
}

/// Prints one line of narration on stderr, in a single write. (eprintln!
/// writes a line piece by piece, which slows a busy server down.)
pub fn narrate(line: String) {
    let _ = std::io::stderr().write_all(format!("{line}\n").as_bytes());
}

/// Serves one client with [`serve_connection`] and says how it ended.
pub fn serve_client(connection: TcpStream, peer: SocketAddr) {
    match serve_connection(connection) {
        Ok(()) => eprintln!("closed the connection to {peer}"),
        Err(error) => eprintln!("{peer}: {error:#}; closed the connection"),
    }
}

/// The client's end of a connection: a buffered reader and a writer on the
/// same socket. The buffer keeps bytes that arrive early for the next read.
pub struct Client {
    /// Reads from the connection, through a buffer.
    pub reader: BufReader<TcpStream>,
    /// Writes to the connection (a second handle on the same socket).
    pub writer: TcpStream,
}

impl Client {
    /// Connects to the server at `addr`.
    pub fn connect(addr: &str) -> Result<Client> {
        let writer = dial(addr)?;
        let reader = BufReader::new(
            writer
                .try_clone()
                .context("could not clone the connection")?,
        );
        Ok(Client { reader, writer })
    }

    /// One turn: writes `message` (ending with a newline), then reads the reply
    /// up to and including its newline, and returns it. If the server has
    /// closed the connection instead of replying, that is an error.
    pub fn turn(&mut self, message: &[u8]) -> Result<Vec<u8>> {
        self.writer
            .write_all(message)
            .context("could not send the message")?;
        let mut reply = Vec::new();
        let count = self
            .reader
            .read_until(b'\n', &mut reply)
            .context("could not read the reply")?;
        if count == 0 {
            bail!("the server closed the connection before replying");
        }
        Ok(reply)
    }

    /// The end of the conversation: writes `last` (the input's final bytes,
    /// which have no newline; maybe none at all), shuts down the sending side
    /// so the server reads end of file, then reads everything the server still
    /// sends until it closes, and returns that.
    pub fn finish(self, last: &[u8]) -> Result<Vec<u8>> {
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
            .context("could not read the server's last bytes")?;
        Ok(rest)
    }
}

/// Opens a listening socket on `addr` (lesson 1).
pub fn listen(addr: &str) -> Result<TcpListener> {
    TcpListener::bind(addr).with_context(|| format!("could not listen on {addr}"))
}

/// The address `listener` is bound to (lesson 1).
pub fn bound_address(listener: &TcpListener) -> Result<SocketAddr> {
    listener
        .local_addr()
        .context("could not read the listener's address")
}

/// Waits for the next client and returns the connection and its address (lesson 2).
pub fn accept_one(listener: &TcpListener) -> Result<(TcpStream, SocketAddr)> {
    listener.accept().context("could not accept a connection")
}

/// Connects to the server at `addr`, written `host:port` (lesson 3).
pub fn dial(addr: &str) -> Result<TcpStream> {
    TcpStream::connect(addr).with_context(|| format!("could not connect to {addr}"))
}
