//! Lesson 4: one turn of the seesaw.
//!
//! Client and server are connected. Now they take turns: the client writes a
//! message while the server reads it; then the server writes the same bytes
//! back while the client reads them. A message is a run of bytes ended by a
//! newline byte, b'\n'. TCP delivers a stream of bytes, not messages: one read
//! may return half a message, so each side reads until the newline.
//!
//! You write the two functions marked TODO. The functions of lessons 1 to 3
//! are done for you. Nothing else needs to change: `src/main.rs` is the
//! lesson's program, `tests/checks.rs` are the checks.
//!
//! Read:  book/src/lessons/04-echo-once.md
//! Check: cargo test -p lesson-04-echo-once

#[allow(unused_imports)] // you will need these
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};

#[allow(unused_imports)] // you will need bail! and Context
use anyhow::{Context, Result, bail};

// ANCHOR: server_turn
/// The server's turn: reads one message from `connection`, up to and including
/// its newline, writes the same bytes back, and returns them.
///
/// The bytes are anything at all (not only UTF-8 text): keep them as bytes.
/// If the client closes before a newline, whatever came is the message; if it
/// closes before sending anything, the message is empty and nothing is written.
pub fn server_turn(connection: &mut TcpStream) -> Result<Vec<u8>> {
    // TODO: read one message: the bytes up to and including the first newline,
    // however many reads that takes (it may come in pieces), and not a byte of
    // the next message. If the client closes before a newline, what came is
    // the message; if it closes before sending anything, the message is empty.
    // Keep the bytes exactly as they came: any bytes, not only UTF-8.

    // TODO: write exactly those bytes back, in one go (nothing else, ever), and
    // return them. A read or a write that fails (the client vanished, say) is
    // the client's problem: return it as an Err, never panic.
    let _ = connection; // (remove once you use `connection`)
    todo!(
        "read one message, write the same bytes back, and return them \
         (cargo hint 04 for help)"
    )
}
// ANCHOR_END: server_turn

// ANCHOR: client_turn
/// The client's turn: writes `message` (which ends with a newline) to
/// `connection`, then reads the reply up to and including its newline, and
/// returns the reply.
///
/// If the server closes the connection without replying, that is an error.
pub fn client_turn(connection: &mut TcpStream, message: &[u8]) -> Result<Vec<u8>> {
    // TODO: write the whole message, in one go, and nothing more.

    // TODO: then read the reply: the bytes up to and including its newline,
    // whatever its length (an answer need not be as long as the question),
    // however late and in however many pieces it comes, kept exactly as they
    // came, and return them. If the server closes without replying (end of
    // file before a single byte), return an error that says so.
    let _ = connection; // (remove once you use `connection`)
    todo!(
        "send the {} bytes of the message, then read and return the reply \
         (cargo hint 04 for help)",
        message.len()
    )
}
// ANCHOR_END: client_turn

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
