//! A load generator for echo servers, used by bench/run: CLIENTS clients
//! connect to ADDR (loopback only), all at once, then each takes turns as fast
//! as the server answers: write a message, read its echo, again, for SECONDS.
//! It prints the round trips per second of all clients together.
//!
//!     cargo run --release -p seesaw-checks --example load -- ADDR CLIENTS SECONDS

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [addr, clients, seconds] = args.as_slice() else {
        eprintln!("usage: load ADDR CLIENTS SECONDS");
        std::process::exit(1);
    };
    let addr: SocketAddr = addr.parse().expect("ADDR must be IP:PORT");
    assert!(
        addr.ip().is_loopback(),
        "load only talks to loopback addresses"
    );
    let clients: usize = clients.parse().expect("CLIENTS must be a number");
    let duration = Duration::from_secs_f64(seconds.parse().expect("SECONDS must be a number"));

    // Everyone connects first; the clock starts when all are connected.
    let start = Arc::new(Barrier::new(clients + 1));
    let workers: Vec<_> = (0..clients)
        .map(|number| {
            let connection = TcpStream::connect(addr).expect("could not connect");
            let start = Arc::clone(&start);
            thread::spawn(move || take_turns(connection, number, &start, duration))
        })
        .collect();
    start.wait();
    let began = Instant::now();
    let round_trips: u64 = workers
        .into_iter()
        .map(|worker| worker.join().expect("a client failed"))
        .sum();
    let elapsed = began.elapsed().as_secs_f64();
    println!(
        "{clients} clients: {:.0} round trips/s",
        round_trips as f64 / elapsed
    );
}

/// One client: round trips until `duration` has passed. Returns how many.
fn take_turns(connection: TcpStream, number: usize, start: &Barrier, duration: Duration) -> u64 {
    connection
        .set_nodelay(true)
        .expect("could not set TCP_NODELAY");
    let mut writer = connection
        .try_clone()
        .expect("could not clone the connection");
    let mut reader = BufReader::new(connection);
    let message = format!("client {number:05} says hello, seesaw\n").into_bytes();
    let mut reply = Vec::with_capacity(message.len());
    start.wait();
    let deadline = Instant::now() + duration;
    let mut round_trips = 0;
    while Instant::now() < deadline {
        writer.write_all(&message).expect("could not write");
        reply.clear();
        reader
            .read_until(b'\n', &mut reply)
            .expect("could not read");
        assert_eq!(reply, message, "the echo differs from the message");
        round_trips += 1;
    }
    round_trips
}
