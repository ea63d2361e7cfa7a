//! Lesson 1: listen. The reference answer.
//!
//! Compare with the stub: `diff lessons/01-listen/src solutions/01-listen/src`.

use std::net::{SocketAddr, TcpListener};

use anyhow::{Context, Result};

// ANCHOR: listen
/// Opens a listening socket on `addr`, for instance `"127.0.0.1:5555"`.
///
/// When it fails (the address is malformed, or already in use), the error names
/// the address, so that whoever reads it knows which one failed.
pub fn listen(addr: &str) -> Result<TcpListener> {
    TcpListener::bind(addr).with_context(|| format!("could not listen on {addr}"))
}
// ANCHOR_END: listen

// ANCHOR: bound_address
/// The address `listener` is bound to. When you asked for port 0, the OS picked
/// a free port: this tells you which one.
pub fn bound_address(listener: &TcpListener) -> Result<SocketAddr> {
    listener
        .local_addr()
        .context("could not read the listener's address")
}
// ANCHOR_END: bound_address
