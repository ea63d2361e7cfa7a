//! A load generator for echo servers, used by bench/run: CLIENTS clients
//! connect to ADDR (loopback only), all at once, then each takes turns as fast
//! as the server answers: write a message, read its echo, again, for SECONDS.
//! It prints the round trips per second of all clients together, and the 99th
//! percentile of the round trips' latency.
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
    let mut latencies: Vec<Duration> = workers
        .into_iter()
        .flat_map(|worker| worker.join().expect("a client failed"))
        .collect();
    let elapsed = began.elapsed().as_secs_f64();
    latencies.sort();
    let p99 = latencies
        .get(latencies.len() * 99 / 100)
        .copied()
        .unwrap_or_default();
    println!(
        "{clients} clients: {:.0} round trips/s, p99 {:.2} ms",
        latencies.len() as f64 / elapsed,
        p99.as_secs_f64() * 1000.0
    );
}

/// One client: round trips until `duration` has passed. Returns how long each took.
fn take_turns(
    connection: TcpStream,
    number: usize,
    start: &Barrier,
    duration: Duration,
) -> Vec<Duration> {
    connection
        .set_nodelay(true)
        .expect("could not set TCP_NODELAY");
    // One descriptor a client: `&TcpStream` reads and writes too.
    let mut writer = &connection;
    let mut reader = BufReader::new(&connection);
    let message = format!("client {number:05} says hello, seesaw\n").into_bytes();
    let mut reply = Vec::with_capacity(message.len());
    start.wait();
    let deadline = Instant::now() + duration;
    let mut latencies = Vec::new();
    while Instant::now() < deadline {
        let sent = Instant::now();
        writer.write_all(&message).expect("could not write");
        reply.clear();
        reader
            .read_until(b'\n', &mut reply)
            .expect("could not read");
        assert_eq!(reply, message, "the echo differs from the message");
        latencies.push(sent.elapsed());
    }
    latencies
}
