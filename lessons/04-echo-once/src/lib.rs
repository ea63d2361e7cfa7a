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
    // TODO: read the message, up to and including the newline, into a Vec<u8>.
    // One read() may return only part of it: wrap the connection in a BufReader
    // and call read_until(b'\n', ...), which keeps reading until the newline.

    // TODO: write the message back with one write_all, and return it.
    let _ = connection; // (remove once you use `connection`)
    todo!(
        "read one message with BufReader::read_until(b'\\n', ...), then write it back with write_all"
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
    // TODO: write the whole message with write_all.

    // TODO: read the reply with BufReader::read_until(b'\n', ...). It returns
    // Ok(0) when the server closed without replying: return an error then (bail!).
    let _ = connection; // (remove once you use `connection`)
    todo!(
        "send the {} bytes of the message with write_all, then read the reply with BufReader::read_until(b'\\n', ...)",
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
