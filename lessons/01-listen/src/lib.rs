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
    // TODO: bind a listener to `addr` with TcpListener::bind, and name the
    // address in its error with .with_context(|| format!("could not listen on {addr}")).
    todo!("listen on {addr}: call std::net::TcpListener::bind(addr)")
}
// ANCHOR_END: listen

// ANCHOR: bound_address
/// The address `listener` is bound to. When you asked for port 0, the OS picked
/// a free port: this tells you which one.
pub fn bound_address(listener: &TcpListener) -> Result<SocketAddr> {
    // TODO: ask the listener for its address with TcpListener::local_addr.
    let _ = listener; // (remove once you use `listener`)
    todo!("return the listener's own address: call listener.local_addr()")
}
// ANCHOR_END: bound_address
