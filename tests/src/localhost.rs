//! This machine's own addresses: the loopback addresses (IPv4, and IPv6 where
//! the machine has it), and the addresses the name `localhost` stands for.
//! For checks of a client that dials by address or by name.

use std::net::{IpAddr, SocketAddr, TcpListener, ToSocketAddrs};

use crate::report::Step;

/// A listener of the check's on `addr` (`127.0.0.1:0`, `[::1]:0`), and the
/// address it got.
pub fn listen_on(addr: &str) -> (TcpListener, SocketAddr) {
    let listener = TcpListener::bind(addr)
        .unwrap_or_else(|error| panic!("the check could not listen on {addr}: {error}"));
    let bound = listener
        .local_addr()
        .expect("a bound listener has an address");
    (listener, bound)
}

/// True when this machine has an IPv6 loopback address (::1) to listen on.
pub fn has_ipv6() -> bool {
    TcpListener::bind("[::1]:0").is_ok()
}

/// Why a check, or part of one, that needs IPv6 loopback is skipped.
pub const NO_IPV6: &str = "this machine has no IPv6 loopback (::1)";

/// True when this machine has IPv6 loopback; otherwise says that `part` of
/// the step is skipped (see [`Step::skip_part`]) and returns false.
pub fn ipv6_loopback(step: &Step, part: &str) -> bool {
    let usable = has_ipv6();
    if !usable {
        step.skip_part(part, NO_IPV6);
    }
    usable
}

/// Runs `check` with `127.0.0.1:0`, then with `[::1]:0` if this machine has
/// IPv6 loopback (otherwise it says that this part of the step is skipped):
/// for a step that must work on both families.
pub fn on_each_loopback(step: &Step, mut check: impl FnMut(&str)) {
    check("127.0.0.1:0");
    if ipv6_loopback(step, "on IPv6") {
        check("[::1]:0");
    }
}

/// `[::1]:0` if this machine has IPv6 loopback, otherwise `127.0.0.1:0`: for
/// a check that would rather show IPv6, and runs everywhere.
pub fn ipv6_if_any() -> &'static str {
    match has_ipv6() {
        true => "[::1]:0",
        false => "127.0.0.1:0",
    }
}

/// The addresses the name `localhost` stands for on this machine, in the
/// order the OS gives them, each once.
pub fn localhost_addresses() -> Vec<IpAddr> {
    let mut found: Vec<IpAddr> = Vec::new();
    let resolved = ("localhost", 0)
        .to_socket_addrs()
        .expect("this machine cannot look up localhost");
    for addr in resolved {
        if !found.contains(&addr.ip()) {
            found.push(addr.ip());
        }
    }
    found
}

/// A listener on `ip`, at a port where nothing listened on the `others` a
/// moment ago: a dial to localhost at that port reaches only this one.
pub fn listen_only_on(ip: IpAddr, others: &[IpAddr]) -> TcpListener {
    for _ in 0..20 {
        let listener = TcpListener::bind((ip, 0)).expect("the check could not listen");
        let port = listener
            .local_addr()
            .expect("a bound listener has an address")
            .port();
        // Each test listener is dropped at once: it only proves the port free.
        if others
            .iter()
            .all(|other| TcpListener::bind((*other, port)).is_ok())
        {
            return listener;
        }
    }
    panic!("the check found no port that is free on every address of localhost")
}

/// For each address of localhost in turn, a listener on it alone (none on
/// the others), with the text to dial it by name (`localhost:PORT`): a
/// client that does not try every address fails on one of them.
pub fn each_localhost_alone() -> Vec<(IpAddr, TcpListener, String)> {
    let addresses = localhost_addresses();
    let mut alone = Vec::new();
    for (index, ip) in addresses.iter().enumerate() {
        let mut others = addresses.clone();
        others.remove(index);
        let listener = listen_only_on(*ip, &others);
        let port = listener
            .local_addr()
            .expect("a bound listener has an address")
            .port();
        alone.push((*ip, listener, format!("localhost:{port}")));
    }
    alone
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn localhost_is_a_loopback_address() {
        let addresses = localhost_addresses();
        assert!(!addresses.is_empty());
        assert!(addresses.iter().all(|ip| ip.is_loopback()));
    }

    #[test]
    fn a_listener_alone_on_each_address() {
        for (ip, listener, name) in each_localhost_alone() {
            let addr = listener.local_addr().unwrap();
            assert_eq!(addr.ip(), ip);
            assert_eq!(name, format!("localhost:{}", addr.port()));
        }
    }

    #[test]
    fn listens_where_asked() {
        let (_listener, addr) = listen_on(ipv6_if_any());
        assert!(addr.ip().is_loopback());
        assert_ne!(addr.port(), 0);
        assert_eq!(has_ipv6(), addr.is_ipv6());
    }
}
