//! Lesson 1: listen.
//!
//! A server begins by asking the operating system for a listening socket on an
//! address: an IP address and a port. From then on, clients can connect to it.
//!
//! You write the two functions marked TODO. Nothing else needs to change:
//! `src/main.rs` is the lesson's program, `tests/checks.rs` are the checks.
//!
//! Read:  book/src/lessons/01-listen.md
//! Check: cargo test -p lesson-01-listen

use std::net::{SocketAddr, TcpListener};

#[allow(unused_imports)] // you will need Context for .with_context(...)
use anyhow::{Context, Result};

// ANCHOR: listen
/// Opens a listening socket on `addr`, for instance `"127.0.0.1:5555"`.
///
/// When it fails (the address is malformed, or already in use), the error names
/// the address, so that whoever reads it knows which one failed.
pub fn listen(addr: &str) -> Result<TcpListener> {
    // TODO: return a socket listening on exactly `addr` (IPv4 or IPv6; with
    // port 0 the OS picks the port), at once: waiting for a client is lesson 2.
    // When that fails (address in use, malformed address), return an error,
    // never a panic or another address: its message names `addr`, and it keeps
    // the OS's io::Error inside, whose kind the program reads to advise.
    todo!("listen on {addr} and return the listener (cargo hint 01 for help)")
}
// ANCHOR_END: listen

// ANCHOR: bound_address
/// The address `listener` is bound to. When you asked for port 0, the OS picked
/// a free port: this tells you which one.
pub fn bound_address(listener: &TcpListener) -> Result<SocketAddr> {
    // TODO: return the address the listener really has: the port the OS
    // picked for port 0, and the IP address of the right family (IPv4 or
    // IPv6). Only the listener knows them; build no address yourself.
    let _ = listener; // (remove once you use `listener`)
    todo!("return the address the listener is bound to (cargo hint 01 for help)")
}
// ANCHOR_END: bound_address
