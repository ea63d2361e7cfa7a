//! Lesson 2: accept.
//!
//! A listening socket only waits. When a client connects, the server accepts
//! the connection: it gets a new socket for talking to that one client, and
//! learns the client's address. The listener goes on waiting for the next.
//!
//! You write the function marked TODO. `listen` and `bound_address` are
//! lesson 1's, done for you. Nothing else needs to change: `src/main.rs` is the
//! lesson's program, `tests/checks.rs` are the checks.
//!
//! Read:  book/src/lessons/02-accept.md
//! Check: cargo test -p lesson-02-accept

use std::net::{SocketAddr, TcpListener, TcpStream};

use anyhow::{Context, Result};

/// Opens a listening socket on `addr`, for instance `"127.0.0.1:5555"` (lesson 1).
pub fn listen(addr: &str) -> Result<TcpListener> {
    TcpListener::bind(addr).with_context(|| format!("could not listen on {addr}"))
}

/// The address `listener` is bound to (lesson 1).
pub fn bound_address(listener: &TcpListener) -> Result<SocketAddr> {
    listener
        .local_addr()
        .context("could not read the listener's address")
}

// ANCHOR: accept_one
/// Waits for the next client to connect to `listener`, and returns the
/// connection together with the client's address (its IP address and port).
pub fn accept_one(listener: &TcpListener) -> Result<(TcpStream, SocketAddr)> {
    // TODO: wait until the next client connects (blocking: no client yet means
    // wait), and return the connection to that client, untouched (it must carry
    // bytes both ways: read, write and set nothing on it here), with the
    // client's own address, IPv4 or IPv6 (not the listener's address).
    // When accepting fails, return at once an error that says what failed and
    // keeps the OS's io::Error inside: no panic, no retry (the caller decides).
    let _ = listener; // (remove once you use `listener`)
    todo!(
        "accept the next client and return its connection and address \
         (cargo hint 02 for help)"
    )
}
// ANCHOR_END: accept_one
