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
    // TODO: return a connection to exactly `addr`: an IP address (IPv4 or
    // IPv6) or a name, trying every address the name stands for until one
    // answers. Return it untouched (it must carry bytes both ways: read, write
    // and set nothing on it here). When dialling fails (refused, malformed),
    // return at once an error, never a panic or a retry: its message names
    // `addr`, and it keeps the OS's io::Error inside, whose kind the program
    // reads to advise.
    todo!("dial {addr} and return the connection (cargo hint 03 for help)")
}
// ANCHOR_END: dial
