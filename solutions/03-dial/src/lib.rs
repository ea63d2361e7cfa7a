//! Lesson 3: dial.
//!
//! The client's first step: connect ("dial") to the address where a server
//! listens. When the server's listener accepts, both sides hold a connected
//! socket, and each can learn both addresses: its own and the other's.
//!
//! You write the function marked TODO. Nothing else needs to change:
//! `src/main.rs` is the lesson's program, `tests/checks.rs` are the checks.
//!
//! Read:  book/src/lessons/03-dial.md
//! Check: cargo test -p lesson-03-dial

use std::net::TcpStream;

#[allow(unused_imports)] // you will need Context for .with_context(...)
use anyhow::{Context, Result};

// ANCHOR: dial
/// Connects to the server at `addr`, written `host:port`: an IP address like
/// `"127.0.0.1:5555"`, or a name like `"localhost:5555"`. A name can stand for
/// several addresses (IPv6 and IPv4); each is tried until one answers.
///
/// When it fails (refused, malformed), the error names the address.
pub fn dial(addr: &str) -> Result<TcpStream> {
    TcpStream::connect(addr).with_context(|| format!("could not connect to {addr}"))
}
// ANCHOR_END: dial
