//! The check in the middle: the student's clients connect to the relay, the
//! relay connects each to the student's server, and passes every byte on,
//! both ways, into the transcript. It records what each side sent, so that
//! when a conversation goes wrong a check can say which side went wrong.
//!
//! ```text
//! let relay = Relay::start(&step, server_addr);
//! // ... the student's client dials relay.addr() ...
//! let carried = relay.carried(1);   // what client 1 and the server sent
//! ```

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::DEADLINE;
use crate::bytes::show;
use crate::report::{Step, Transcript};

/// What one connection through the relay carried, each way.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Carried {
    /// Every byte the client sent, in order.
    pub to_server: Vec<u8>,
    /// Every byte the server sent, in order.
    pub to_client: Vec<u8>,
    /// The client shut down its sending side (or closed).
    pub client_closed: bool,
    /// The server closed its sending side (or closed).
    pub server_closed: bool,
}

/// The relay's record: one [`Carried`] per client, in the order they came.
#[derive(Default)]
struct Record {
    connections: Mutex<Vec<Carried>>,
    /// Notified whenever anything is recorded.
    changed: Condvar,
}

impl Record {
    fn update(&self, number: usize, change: impl FnOnce(&mut Carried)) {
        if let Some(carried) = self.connections.lock().unwrap().get_mut(number - 1) {
            change(carried);
        }
        self.changed.notify_all();
    }
}

/// The check's relay, listening on 127.0.0.1 at a port the OS picks.
pub struct Relay {
    addr: SocketAddr,
    record: Arc<Record>,
}

impl Relay {
    /// Relays each client that connects to `server`. Its transcript lines
    /// say `your client → your server`.
    pub fn start(step: &Step, server: SocketAddr) -> Relay {
        Relay::listen(step, server, false)
    }

    /// Like [`Relay::start`], for a check with several clients: the
    /// transcript numbers them in the order they connect (`client 2 → server`).
    pub fn start_numbered(step: &Step, server: SocketAddr) -> Relay {
        Relay::listen(step, server, true)
    }

    fn listen(step: &Step, server: SocketAddr, numbered: bool) -> Relay {
        let listener =
            TcpListener::bind("127.0.0.1:0").expect("the check could not listen on 127.0.0.1");
        let addr = listener
            .local_addr()
            .expect("a bound listener has an address");
        let record = Arc::new(Record::default());
        let (kept, transcript) = (record.clone(), step.transcript().clone());
        thread::spawn(move || {
            // The check's process ends this thread; it holds nothing of the student's.
            for number in 1.. {
                let Ok((client, _)) = listener.accept() else {
                    return;
                };
                kept.connections.lock().unwrap().push(Carried::default());
                let names = Names::new(number, numbered);
                relay_one(client, server, names, &kept, &transcript);
            }
        });
        Relay { addr, record }
    }

    /// Where the student's client should connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// What the relay carried for client `number` (from 1) so far, if that
    /// client has connected.
    pub fn carried(&self, number: usize) -> Option<Carried> {
        let connections = self.record.connections.lock().unwrap();
        connections.get(number.checked_sub(1)?).cloned()
    }

    /// Waits at most `wait` until client `number` has connected.
    pub fn wait_for_client(&self, number: usize, wait: Duration) -> bool {
        self.wait_until(number, wait, |_| true)
    }

    /// Waits at most `wait` until what client `number`'s connection carried
    /// satisfies `done`; true if it does.
    pub fn wait_until(
        &self,
        number: usize,
        wait: Duration,
        done: impl Fn(&Carried) -> bool,
    ) -> bool {
        let deadline = Instant::now() + wait;
        let mut connections = self.record.connections.lock().unwrap();
        loop {
            if number > 0 && connections.get(number - 1).is_some_and(&done) {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            connections = self
                .record
                .changed
                .wait_timeout(connections, left)
                .unwrap()
                .0;
        }
    }
}

/// How the transcript names the two sides of one relayed connection.
#[derive(Clone)]
struct Names {
    number: usize,
    client: String,
    server: String,
}

impl Names {
    fn new(number: usize, numbered: bool) -> Names {
        match numbered {
            true => Names {
                number,
                client: format!("client {number}"),
                server: "server".to_string(),
            },
            false => Names {
                number,
                client: "your client".to_string(),
                server: "your server".to_string(),
            },
        }
    }
}

/// Connects `client` to a new connection to the server, and starts a pump
/// each way.
fn relay_one(
    client: TcpStream,
    server: SocketAddr,
    names: Names,
    record: &Arc<Record>,
    transcript: &Transcript,
) {
    let server = match TcpStream::connect_timeout(&server, DEADLINE) {
        Ok(server) => server,
        Err(error) => {
            transcript.add(format!("check   could not reach your server: {error}"));
            return;
        }
    };
    let (Ok(client_reader), Ok(server_reader)) = (client.try_clone(), server.try_clone()) else {
        return;
    };
    let pumps = [
        (client_reader, server, Direction::ToServer),
        (server_reader, client, Direction::ToClient),
    ];
    for (from, to, direction) in pumps {
        let pump = Pump {
            names: names.clone(),
            direction,
            record: record.clone(),
            transcript: transcript.clone(),
        };
        thread::spawn(move || pump.run(from, to));
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Direction {
    ToServer,
    ToClient,
}

/// Copies the bytes of one direction, recording them.
struct Pump {
    names: Names,
    direction: Direction,
    record: Arc<Record>,
    transcript: Transcript,
}

impl Pump {
    /// Copies bytes from `from` to `to` until end of file, which it passes
    /// on as a half-close.
    fn run(self, mut from: TcpStream, mut to: TcpStream) {
        // A stuck conversation must not keep this thread for ever.
        let _ = from.set_read_timeout(Some(3 * DEADLINE));
        let (who, whom) = match self.direction {
            Direction::ToServer => (&self.names.client, &self.names.server),
            Direction::ToClient => (&self.names.server, &self.names.client),
        };
        let mut chunk = [0u8; 64 * 1024];
        loop {
            match from.read(&mut chunk) {
                Ok(0) => {
                    self.transcript.add(format!(
                        "{who} → {whom}   end of file (shut down or closed)"
                    ));
                    // Recorded before it is passed on, as bytes are: what the
                    // other side does about it can never be recorded first.
                    self.record
                        .update(self.names.number, |carried| match self.direction {
                            Direction::ToServer => carried.client_closed = true,
                            Direction::ToClient => carried.server_closed = true,
                        });
                    let _ = to.shutdown(Shutdown::Write);
                    return;
                }
                Ok(count) => {
                    let bytes = &chunk[..count];
                    self.transcript
                        .add(format!("{who} → {whom}   {}", show(bytes)));
                    self.record
                        .update(self.names.number, |carried| match self.direction {
                            Direction::ToServer => carried.to_server.extend_from_slice(bytes),
                            Direction::ToClient => carried.to_client.extend_from_slice(bytes),
                        });
                    if let Err(error) = to.write_all(bytes) {
                        self.transcript
                            .add(format!("{who} → {whom}   could not be passed on: {error}"));
                        return;
                    }
                }
                Err(error) => {
                    self.transcript
                        .add(format!("{who} → {whom}   the relay's read failed: {error}"));
                    let _ = to.shutdown(Shutdown::Both);
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::peer::spawn_echo_server;

    fn step() -> Step {
        Step::new("relay: unit test", "none")
    }

    #[test]
    fn carries_and_records_both_ways() {
        let step = step();
        let relay = Relay::start(&step, spawn_echo_server(&step));
        let mut client = TcpStream::connect(relay.addr()).unwrap();
        client.write_all(b"hi \xff\n").unwrap();
        client.shutdown(Shutdown::Write).unwrap();
        let mut back = Vec::new();
        client.set_read_timeout(Some(DEADLINE)).unwrap();
        client.read_to_end(&mut back).unwrap();
        assert_eq!(back, b"hi \xff\n");
        assert!(relay.wait_until(1, DEADLINE, |c| c.server_closed));
        let carried = relay.carried(1).unwrap();
        assert_eq!(carried.to_server, b"hi \xff\n");
        assert_eq!(carried.to_client, b"hi \xff\n");
        assert!(carried.client_closed);
        assert!(relay.carried(2).is_none());
    }

    #[test]
    fn numbers_its_clients() {
        let step = step();
        let relay = Relay::start_numbered(&step, spawn_echo_server(&step));
        let _first = TcpStream::connect(relay.addr()).unwrap();
        assert!(relay.wait_for_client(1, DEADLINE));
        assert!(!relay.wait_for_client(2, Duration::from_millis(20)));
        assert!(!relay.wait_for_client(0, Duration::ZERO));
    }
}
