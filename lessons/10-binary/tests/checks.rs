//! The checks of lesson 10, in the order you meet them: the first failure is
//! your next step. Run them with `cargo test -p lesson-10-binary`.
//!
//! Steps 1-5 call your decode, mean and read_frame directly. Steps 6-11 are
//! the check as a client of your serve_connection, on real connections
//! (through lesson 6's serve_concurrently where several clients are
//! needed). Steps 12-13 call your encode_command. Steps 14-16 run the
//! lesson's program, and step 17 has your client talk to your server through
//! a relay that records every byte (`Relay`). Step 18 calls your mean with
//! millions of prices: last, because it takes a moment.
//!
//! The check builds every message itself, byte by byte, and computes every
//! mean itself (`message` and `expected_mean` in checks/protocol.rs): it
//! never trusts your code to check your code.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use lesson_10_binary::{
    MESSAGE_LEN, Prices, Request, encode_command, read_frame, serve_concurrently, serve_connection,
};
use seesaw_checks::DEADLINE;
use seesaw_checks::bounded::{self, Running};
use seesaw_checks::bytes::show_binary;
use seesaw_checks::echo_cases::{self, Gentle};
use seesaw_checks::peer::{CheckServer, Peer, connected_pair};
use seesaw_checks::program;
use seesaw_checks::program::{expect_address_in_use_explained, run};
use seesaw_checks::relay::Relay;
use seesaw_checks::report::Step;
use seesaw_checks::serving::{self, RunningServer};
use seesaw_checks::watched::WatchedServer;

#[path = "checks/protocol.rs"]
mod protocol;
use protocol::{expected_mean, insert, meaning, message, mistake_behind, query, show_prices};

const CHAPTER: &str = "10-binary";

/// How long the check waits for an answer your server should send at once.
const QUICK: Duration = Duration::from_millis(500);

const SERVER_HANGS: &str = "the check's client is waiting for an answer. Does \
     serve_connection read exactly 9 bytes per message (read_frame), answer each \
     query before reading on, and return at end of file?";

/// Sends `messages` in one write (a pipeline), saying what they mean.
fn send_all(client: &mut Peer, messages: &[[u8; MESSAGE_LEN]]) {
    let words: Vec<String> = messages.iter().map(|m| meaning(m)).collect();
    client.note(format!("check   sends: {}", words.join(", ")));
    client.send(&messages.concat());
}

/// Sends `bytes` one byte a write, with Nagle's delay off: the other side
/// reads them in many small pieces.
fn send_byte_by_byte(client: &mut Peer, bytes: &[u8]) {
    client.note(format!(
        "check   sends {}, one byte a write",
        meaning(bytes)
    ));
    let _ = client.stream().set_nodelay(true);
    for byte in bytes {
        client.send(&[*byte]);
    }
}

/// Reads 4 bytes and fails unless they are `mean`, big-endian.
#[track_caller]
fn expect_mean(client: &mut Peer, mean: i32, hint: &str) {
    let hint = format!(
        "The answer is {mean} ({}); {hint}",
        show_binary(&mean.to_be_bytes())
    );
    client.expect_bytes(&mean.to_be_bytes(), &hint);
}

// ---------------------------------------------------------------------------
// Request::decode and Prices::mean (steps 1 to 3)
// ---------------------------------------------------------------------------

/// Your decode of `bytes`, run with a deadline (it may still hold todo!()).
fn your_decode(step: &Step, bytes: [u8; MESSAGE_LEN]) -> Request {
    let call = format!("Request::decode(&{})", show_binary(&bytes));
    bounded::run(step, &call, "decode only looks at 9 bytes", move || {
        Request::decode(&bytes)
    })
}

/// What a decode that reads the numbers little-endian would give.
fn as_little_endian(bytes: &[u8; MESSAGE_LEN]) -> Request {
    let little = |at: usize| i32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
    match bytes[0] {
        b'I' => Request::Insert {
            timestamp: little(1),
            price: little(5),
        },
        b'Q' => Request::Query {
            mintime: little(1),
            maxtime: little(5),
        },
        other => Request::Unknown(other),
    }
}

fn step_01_decode_reads_the_type_and_two_big_endian_numbers() {
    let step = Step::new(
        "step 1: Request::decode reads the type byte and two big-endian i32s",
        CHAPTER,
    );
    let cases = [
        (
            insert(12345, 101),
            Request::Insert {
                timestamp: 12345,
                price: 101,
            },
        ),
        (
            query(12288, 16384),
            Request::Query {
                mintime: 12288,
                maxtime: 16384,
            },
        ),
        (
            insert(1, 16_777_216),
            Request::Insert {
                timestamp: 1,
                price: 16_777_216,
            },
        ),
        (
            insert(-1, -100_000),
            Request::Insert {
                timestamp: -1,
                price: -100_000,
            },
        ),
        (
            query(i32::MIN, i32::MAX),
            Request::Query {
                mintime: i32::MIN,
                maxtime: i32::MAX,
            },
        ),
        (message(b'X', 1, 2), Request::Unknown(b'X')),
        (message(b'i', 1, 2), Request::Unknown(b'i')),
        (message(b'q', 1, 2), Request::Unknown(b'q')),
        (message(0, 0, 0), Request::Unknown(0)),
    ];
    for (bytes, expected) in cases {
        expect_decoded(&step, bytes, expected);
    }
}

/// Fails unless your decode turns `bytes` into `expected`; says so when the
/// numbers came out swapped or little-endian.
fn expect_decoded(step: &Step, bytes: [u8; MESSAGE_LEN], expected: Request) {
    let got = your_decode(step, bytes);
    if got == expected {
        return;
    }
    let report = step
        .report()
        .did(&format!(
            "Request::decode(&{}), that is {}",
            show_binary(&bytes),
            meaning(&bytes)
        ))
        .expected(&format!("{expected:?}"))
        .got(&format!("{got:?}"))
        .hint(
            "byte 0 is the type (b'I', b'Q', anything else Unknown with that byte); bytes \
             1..5 and 5..9 are i32s, most significant byte first: i32::from_be_bytes.",
        );
    if matches!(expected, Request::Unknown(_)) {
        report
            .observed(
                "only b'I' and b'Q', upper case, are types: every other byte (lower-case \
                 b'i' and b'q' too) is Unknown with that byte, and ends the connection.",
            )
            .fail();
    }
    if got == swapped(expected) {
        report
            .observed(
                "the two numbers are swapped: the first i32 (bytes 1..5) is the \
                 timestamp, or mintime; the second (bytes 5..9) the price, or maxtime.",
            )
            .fail();
    }
    if got == as_little_endian(&bytes) {
        report
            .observed(
                "the wire is big-endian (network byte order): the first byte is the \
                 most significant. from_le_bytes or from_ne_bytes read it backwards.",
            )
            .fail();
    }
    report.fail();
}

/// `request` with its two numbers the other way round.
fn swapped(request: Request) -> Request {
    match request {
        Request::Insert { timestamp, price } => Request::Insert {
            timestamp: price,
            price: timestamp,
        },
        Request::Query { mintime, maxtime } => Request::Query {
            mintime: maxtime,
            maxtime: mintime,
        },
        unknown => unknown,
    }
}

/// Your mean of `prices` over `mintime..=maxtime`, with a deadline.
fn your_mean(step: &Step, prices: &[(i32, i32)], mintime: i32, maxtime: i32) -> i32 {
    // Prices::insert is given: only your mean runs with a deadline.
    let mut record = Prices::new();
    for &(timestamp, price) in prices {
        record.insert(timestamp, price);
    }
    let call = format!("mean({mintime}, {maxtime}) of {}", show_prices(prices));
    bounded::run(step, &call, "mean only adds up numbers", move || {
        record.mean(mintime, maxtime)
    })
}

/// Some prices (timestamp, price), and the range a query asks about.
type MeanCase<'a> = (&'a [(i32, i32)], i32, i32);

/// Fails unless your mean of each case is the protocol's; says so when the
/// wrong mean is what a sum in 32 bits, or a float, gives.
fn expect_means(step: &Step, cases: &[MeanCase], hint: &str) {
    for &(prices, mintime, maxtime) in cases {
        let expected = expected_mean(prices, mintime, maxtime);
        let got = your_mean(step, prices, mintime, maxtime);
        if got != expected {
            let report = step
                .report()
                .did(&format!(
                    "Prices::mean({mintime}, {maxtime}) of {}",
                    show_prices(prices)
                ))
                .expected(&expected.to_string())
                .got(&got.to_string())
                .hint(hint);
            match mistake_behind(prices, mintime, maxtime, got) {
                Some(mistake) => report.observed(mistake).fail(),
                None => report.fail(),
            }
        }
    }
}

fn step_02_mean_sums_without_overflow_and_rounds_toward_zero() {
    let step = Step::new(
        "step 2: Prices::mean sums in 64 bits and divides toward zero",
        CHAPTER,
    );
    let big = i32::MAX - 1;
    let small = i32::MIN + 1;
    expect_means(
        &step,
        &[
            (&[(1, 100), (2, 103), (3, 110)], 0, 10),
            (&[(1, big), (2, big), (3, big - 6)], 0, 10),
            (&[(1, small), (2, small), (3, small)], 0, 10),
            (&[(1, big), (2, small), (3, -2)], 0, 10),
        ],
        "the sum of a few prices near i32::MAX does not fit in an i32: add them up in \
         an i64 (i64::from(price)); the mean itself fits in an i32 again.",
    );
    expect_means(
        &step,
        &[
            (&[(1, -5), (2, 0)], 0, 9),
            (&[(1, -4), (2, -3), (3, -3)], 0, 9),
            (&[(7, 5), (8, 4)], 0, 9),
        ],
        "integer division rounds toward zero: -5 / 2 is -2 (not -3, which is what \
         rounding down, div_euclid, or a float's floor() or round() give).",
    );
}

fn step_03_mean_counts_both_ends_and_answers_0_for_none() {
    let step = Step::new(
        "step 3: Prices::mean counts prices at mintime and maxtime; none in range, or mintime > maxtime, is 0",
        CHAPTER,
    );
    let prices: &[(i32, i32)] = &[(10, 1), (20, 2), (30, 3), (40, 1000)];
    expect_means(
        &step,
        &[(prices, 10, 30), (prices, 20, 20), (prices, 30, 40)],
        "both ends count: a price at exactly mintime or exactly maxtime is in the range \
         (mintime..=maxtime, not mintime..maxtime).",
    );
    let below_zero: &[(i32, i32)] = &[(-30, 4), (-20, 8), (-10, 16), (5, 32)];
    expect_means(
        &step,
        &[
            (below_zero, -20, -10),
            (below_zero, -25, 5),
            (below_zero, i32::MIN, -30),
            (below_zero, i32::MIN, i32::MAX),
        ],
        "timestamps are signed i32s, and a range may start below zero: -25..=5 holds \
         -20, -10 and 5. Compare them as i32s, never cast to an unsigned type.",
    );
    let twice: &[(i32, i32)] = &[(5, 10), (5, 20), (6, 60), (5, 30)];
    expect_means(
        &step,
        &[(twice, 5, 5), (twice, 0, 10)],
        "an insert is a record, not a key: two prices at the same timestamp both count. \
         Keep every insert (Prices keeps them all in a Vec); a map keyed by timestamp \
         keeps only one.",
    );
    expect_means(
        &step,
        &[(prices, 21, 29), (prices, 41, 50), (&[], 0, 100)],
        "no price in the range, or no prices at all: the answer is 0, and never a \
         division by zero.",
    );
    expect_means(
        &step,
        &[(prices, 40, 10), (prices, 30, 20)],
        "mintime > maxtime asks about an empty range: the answer is 0, not the mean of \
         maxtime..=mintime (never swap the ends).",
    );
}

// ---------------------------------------------------------------------------
// read_frame (steps 4 and 5): the check sends, your read_frame reads.
// ---------------------------------------------------------------------------

/// What your read_frame returned, as text (an error travels back as text).
type FrameRead = Result<Option<[u8; MESSAGE_LEN]>, String>;

/// Runs your read_frame on the check's connection, `times` times in a row.
fn start_reading(step: &Step, connection: TcpStream, times: usize) -> Running<Vec<FrameRead>> {
    let keep = connection
        .try_clone()
        .expect("the check could not clone its socket");
    bounded::start_with(step, "read_frame(&mut connection)", keep, move |_| {
        let mut connection = connection;
        (0..times)
            .map(|_| read_frame(&mut connection).map_err(|error| format!("{error:#}")))
            .collect()
    })
}

fn describe_read(read: &FrameRead) -> String {
    match read {
        Ok(Some(bytes)) => format!("Ok(Some({}))", show_binary(bytes)),
        Ok(None) => "Ok(None)".to_string(),
        Err(error) => format!("Err({error:?})"),
    }
}

/// Fails unless `reads` are `expected`; an `Err` expected matches any error.
fn expect_reads(step: &Step, reads: &[FrameRead], expected: &[FrameRead], hint: &str) {
    let same = |got: &FrameRead, want: &FrameRead| match (got, want) {
        (Err(_), Err(_)) => true,
        _ => got == want,
    };
    let all_same =
        reads.len() == expected.len() && reads.iter().zip(expected).all(|(g, w)| same(g, w));
    if !all_same {
        let show = |list: &[FrameRead]| {
            list.iter()
                .map(describe_read)
                .collect::<Vec<_>>()
                .join(", ")
        };
        step.report()
            .expected(&format!(
                "read_frame to return, call after call: {}",
                show(expected)
            ))
            .got(&show(reads))
            .hint(hint)
            .fail();
    }
}

fn step_04_read_frame_reads_exactly_nine_bytes() {
    let step = Step::new(
        "step 4: read_frame returns exactly one 9-byte message, however it is cut",
        CHAPTER,
    );
    let (client, connection) = connected_pair(&step);
    let mut client = client.binary();
    let reading = start_reading(&step, connection, 4);
    let (first, second) = (insert(12345, 101), query(-1, 65536));
    client.send_in_pieces(&[&first[..1], &first[1..]]);
    send_byte_by_byte(&mut client, &second);
    // Two messages in one write: the second must not be lost or cut.
    client.send(&[insert(1, 2), query(3, 4)].concat());
    let reads = reading.finish(
        &step,
        "the check sent four whole messages and read_frame still waits: either it waits for \
         more than 9 bytes, or a call read past its own message and threw the next one's \
         bytes away (read only into the part of the 9 bytes still missing).",
    );
    expect_reads(
        &step,
        &reads,
        &[
            Ok(Some(first)),
            Ok(Some(second)),
            Ok(Some(insert(1, 2))),
            Ok(Some(query(3, 4))),
        ],
        "one read returns what has arrived so far, maybe 1 byte, maybe two messages: keep \
         reading into the rest of the 9 bytes until they are full, and never past them.",
    );
}

fn step_05_read_frame_tells_a_clean_end_from_a_torn_message() {
    let step = Step::new(
        "step 5: read_frame returns None at a clean end, an error for a torn message",
        CHAPTER,
    );
    let (client, connection) = connected_pair(&step);
    let mut client = client.binary();
    let reading = start_reading(&step, connection, 2);
    client.send(&insert(7, 8));
    client.close_sending();
    let reads = reading.finish(&step, "at end of file, read_frame must return");
    expect_reads(
        &step,
        &reads,
        &[Ok(Some(insert(7, 8))), Ok(None)],
        "end of file before the first byte of a message is the client hanging up, as it \
         may: Ok(None). A read that returns Ok(0) means end of file.",
    );
    let (client, connection) = connected_pair(&step);
    let mut client = client.binary();
    let reading = start_reading(&step, connection, 1);
    client.send(&insert(7, 8)[..5]);
    client.close_sending();
    let reads = reading.finish(&step, "at end of file, read_frame must return");
    expect_reads(
        &step,
        &reads,
        &[Err("torn".to_string())],
        "the client hung up after 5 of the 9 bytes: that is a broken message, an error \
         (Err), not Ok(None) and not a message padded with zeros. read_exact alone \
         cannot tell it from a clean end: count the bytes you have read.",
    );
}

// ---------------------------------------------------------------------------
// serve_connection (steps 6 to 11): the check plays the client.
// ---------------------------------------------------------------------------

/// Runs your serve_connection on the server end of a fresh connection.
fn start_server(step: &Step) -> (Peer, Running<anyhow::Result<()>>) {
    let (client, connection) = connected_pair(step);
    let keep = connection
        .try_clone()
        .expect("the check could not clone its socket");
    let running = bounded::start_with(step, "serve_connection(connection)", keep, move |_| {
        serve_connection(connection)
    });
    (client.binary().patience(QUICK), running)
}

/// Your serve_concurrently, for the steps with several clients at once.
fn start_many(step: &Step) -> RunningServer {
    serving::start(step, "serve_concurrently(listener)", serve_concurrently)
}

fn step_06_the_server_answers_queries_and_not_inserts() {
    let step = Step::new(
        "step 6: serve_connection stores inserts (no answer) and answers each query with 4 bytes",
        CHAPTER,
    );
    let (mut client, running) = start_server(&step);
    let prices = [(12345, 101), (12346, 102), (12347, 100), (40960, 5)];
    let inserts: Vec<_> = prices.iter().map(|&(t, p)| insert(t, p)).collect();
    send_all(&mut client, &inserts);
    client.expect_silence(
        Duration::from_millis(100),
        "an insert gets no answer at all: store it and read the next message.",
    );
    for (mintime, maxtime) in [(12288, 16384), (0, 100), (16384, 12288), (12345, 12347)] {
        send_all(&mut client, &[query(mintime, maxtime)]);
        let mean = expected_mean(&prices, mintime, maxtime);
        expect_mean(
            &mut client,
            mean,
            "write the mean as i32::to_be_bytes, 4 bytes, nothing else.",
        );
    }
    client.close_sending();
    client
        .expect_end("at end of file between messages, return Ok(()): that closes the connection.");
    running.finish_ok(&step, SERVER_HANGS);
}

fn step_07_the_server_reads_messages_in_pieces() {
    let step = Step::new(
        "step 7: serve_connection waits for a whole message, whatever pieces it comes in",
        CHAPTER,
    );
    let (mut client, running) = start_server(&step);
    let first = insert(1_000_000, -7);
    client.send_in_pieces(&[&first[..1], &first[1..]]);
    send_byte_by_byte(&mut client, &query(999_000, 1_001_000));
    expect_mean(
        &mut client,
        -7,
        "a message may come in pieces: read_frame gathers all 9 bytes, through one \
         BufReader that lives as long as the connection (a new one for each message \
         throws away the bytes it had read ahead, here the start of the query).",
    );
    client.close_sending();
    client.expect_end("at end of file between messages, return Ok(()).");
    running.finish_ok(&step, SERVER_HANGS);
}

fn step_08_the_server_answers_pipelined_queries_in_order() {
    let step = Step::new(
        "step 8: 100 inserts and 10 queries in one write get 10 answers, in order",
        CHAPTER,
    );
    let (mut client, running) = start_server(&step);
    let prices: Vec<(i32, i32)> = (0..100).map(|n| (n * 10, n * n - 2000)).collect();
    let mut messages: Vec<_> = prices.iter().map(|&(t, p)| insert(t, p)).collect();
    let ranges: Vec<(i32, i32)> = (0..10).map(|n| (n * 97, n * 97 + 150 + n * 20)).collect();
    messages.extend(ranges.iter().map(|&(min, max)| query(min, max)));
    send_all(&mut client, &messages);
    for &(mintime, maxtime) in &ranges {
        let mean = expected_mean(&prices, mintime, maxtime);
        let hint = format!(
            "for Q {mintime} {maxtime}: the 110 messages came in one write. Read them all \
             through one BufReader that lives as long as the connection (a new one for each \
             message throws away the bytes it read ahead), and answer each query in the \
             order it came."
        );
        expect_mean(&mut client, mean, &hint);
    }
    client.expect_silence(
        Duration::from_millis(50),
        "one answer per query, nothing else.",
    );
    client.close_sending();
    client.expect_end("at end of file between messages, return Ok(()).");
    running.finish_ok(&step, SERVER_HANGS);
}

fn step_09_each_connection_has_its_own_prices() {
    let step = Step::new(
        "step 9: two clients' prices are kept apart, and vanish with their connection",
        CHAPTER,
    );
    let server = start_many(&step);
    let own = "each connection has its own prices: a Prices made inside serve_connection, \
               gone when it returns; not one shared by every client, nor kept for a later \
               one (no static, no global).";
    let mut first = Peer::connect(&step, server.addr()).binary().named("first");
    let mut second = Peer::connect(&step, server.addr()).binary().named("second");
    send_all(&mut first, &[insert(100, 10), insert(200, 20)]);
    send_all(&mut second, &[insert(100, 1000), insert(150, 3000)]);
    send_all(&mut first, &[query(0, 300)]);
    expect_mean(&mut first, 15, own);
    // Each client hangs up before the next one asks: this step is about
    // prices, and step 11 about clients served at the same time.
    first.close_sending();
    first.expect_end("at end of file between messages, return Ok(()).");
    send_all(&mut second, &[query(0, 300)]);
    expect_mean(&mut second, 2000, own);
    second.close_sending();
    second.expect_end("at end of file between messages, return Ok(()).");
    let mut third = Peer::connect(&step, server.addr()).binary().named("third");
    send_all(&mut third, &[query(0, 300)]);
    expect_mean(
        &mut third,
        0,
        "a new connection starts with no prices: what earlier clients inserted went with them.",
    );
    server.expect_still_serving(&step, Duration::ZERO, "serve_concurrently never returns.");
}

/// A lesson 10 server ends a connection gently with close_gently (given).
const GENTLE: Gentle = Gentle {
    linger_hint: "after a message of unknown type your server closed at once, with the \
         client's bytes still unread: the OS then resets the connection. End it with \
         close_gently (given): it reads and throws away what still comes, until the \
         client hangs up.",
    stopped_hint: "your server stopped reading and did not close either: on an unknown \
         type, end the connection with close_gently (given), and return its result.",
};

fn step_10_an_unknown_type_ends_the_connection_gently() {
    let step = Step::new(
        "step 10: a message of unknown type ends the connection: no answer, a clean end of file, no reset",
        CHAPTER,
    );
    let (mut client, running) = start_server(&step);
    send_all(&mut client, &[insert(1, 1), message(b'X', 0, 0)]);
    client.expect_end(
        "a message of unknown type ends the connection, with no answer: narrate it, then \
         return close_gently(connection) (given).",
    );
    client.close_sending();
    if let Err(error) = running.finish(&step, SERVER_HANGS) {
        step.report()
            .expected("serve_connection(connection) to return close_gently's Ok(())")
            .got_error(&error)
            .hint(
                "on a message of unknown type, return close_gently(connection) (given): it \
                 closes gently, so that a client still sending gets an end of file, not a \
                 reset. An error of your own drops the connection at once.",
            )
            .fail();
    }
    // Again, with a client that is still sending: no reset may destroy the end.
    let (mut client, running) = start_server(&step);
    send_all(&mut client, &[insert(1, 1)]);
    // The flood is b'x' after b'x': its first 9 bytes are a message of type
    // 0x78, unknown, and 1 MiB more is still coming behind it.
    client.note("check   next: 1 MiB of b'x' (0x78: an unknown type), in one write");
    let started = (client.patience(DEADLINE), running);
    echo_cases::error_line_survives_a_flood(&step, started, b"", &GENTLE);
}

fn step_11_an_idle_client_does_not_hold_up_another() {
    let step = Step::new(
        "step 11: a client with half a message sent does not hold up another client",
        CHAPTER,
    );
    let server = start_many(&step);
    let connect = |name| Peer::connect(&step, server.addr()).binary().named(name);
    let mut slow = connect("slow").patience(QUICK);
    let mut busy = connect("busy").patience(QUICK);
    let half = query(0, 10);
    slow.send(&half[..4]);
    send_all(&mut busy, &[insert(5, 50), insert(6, 70), query(0, 10)]);
    let one_at_a_time = "the slow client has sent half a message: while the server waits \
         for the rest, it must serve this one too. Each client gets its own thread \
         (serve_concurrently, given, does that with your serve_connection).";
    expect_mean(&mut busy, 60, one_at_a_time);
    slow.send(&half[4..]);
    expect_mean(&mut slow, 0, one_at_a_time);
}

// ---------------------------------------------------------------------------
// encode_command (steps 12 and 13): the client's side.
// ---------------------------------------------------------------------------

/// Your encode_command of `line`, with a deadline; an error comes back as text.
fn your_encoding(step: &Step, line: &'static str) -> Result<[u8; MESSAGE_LEN], String> {
    let call = format!("encode_command({line:?})");
    bounded::run(step, &call, "encode_command only reads a line", move || {
        encode_command(line).map_err(|error| format!("{error:#}"))
    })
}

fn step_12_encode_command_makes_nine_bytes() {
    let step = Step::new(
        "step 12: encode_command turns `I 12345 101` into the 9 bytes of its message",
        CHAPTER,
    );
    let cases = [
        ("I 12345 101", insert(12345, 101)),
        ("Q 12288 16384", query(12288, 16384)),
        ("I -1 -2147483648", insert(-1, i32::MIN)),
        ("Q 2147483647 0", query(i32::MAX, 0)),
        ("I 16777216 258", insert(16_777_216, 258)),
        ("  Q   -5    7  ", query(-5, 7)),
    ];
    for (line, expected) in cases {
        let got = your_encoding(&step, line);
        if got.as_ref() != Ok(&expected) {
            let got = match got {
                Ok(bytes) => format!("Ok({}), that is {}", show_binary(&bytes), meaning(&bytes)),
                Err(error) => format!("Err({error:?})"),
            };
            step.report()
                .did(&format!("encode_command({line:?})"))
                .expected(&format!(
                    "Ok({}), that is {}",
                    show_binary(&expected),
                    meaning(&expected)
                ))
                .got(&got)
                .hint(
                    "the type byte (b'I' or b'Q'), then each number as 4 bytes, most \
                     significant first (i32::to_be_bytes); split_whitespace skips extra spaces.",
                )
                .fail();
        }
    }
}

fn step_13_encode_command_explains_bad_lines() {
    let step = Step::new(
        "step 13: encode_command returns an error that says something, never a panic, for a line that is not a command",
        CHAPTER,
    );
    let bad = [
        "",
        "I 12345",
        "I 1 2 3",
        "X 1 2",
        "i 1 2",
        "IQ 1 2",
        "I 2147483648 1",
        "Q -2147483649 1",
        "Q one 2",
        "I 1.5 2",
    ];
    for line in bad {
        match your_encoding(&step, line) {
            Err(error) if !error.trim().is_empty() => {}
            got => {
                let got = match got {
                    Ok(bytes) => {
                        format!("Ok({}), that is {}", show_binary(&bytes), meaning(&bytes))
                    }
                    Err(_) => "an error with an empty message".to_string(),
                };
                step.report()
                    .did(&format!("encode_command({line:?})"))
                    .expected("an Err whose message says what is wrong with the line")
                    .got(&got)
                    .hint(
                        "a command is exactly three words: I or Q (upper case), then two \
                         numbers that each fit in an i32 (str::parse::<i32> says when one \
                         does not). Anything else is an Err, with bail! or .context(...).",
                    )
                    .fail();
            }
        }
    }
}

// ---------------------------------------------------------------------------
// The lesson's program (steps 14 to 17).
// ---------------------------------------------------------------------------

/// What the client steps feed the program, and what it must make of it.
const SCRIPT: &[u8] = b"I 12345 101\nQ 1 2\nbad line\nQ -5 7\n  I  -1  -2 \nQ 10 20";

/// The messages SCRIPT stands for (the bad line is skipped).
fn script_messages() -> Vec<[u8; MESSAGE_LEN]> {
    vec![
        insert(12345, 101),
        query(1, 2),
        query(-5, 7),
        insert(-1, -2),
        query(10, 20),
    ]
}

/// The check's own server for step 14: reads 9-byte messages until end of
/// file, answers each query with mintime + maxtime (an answer only a
/// client that prints what came can print), then closes. Brings back every
/// byte it got.
fn start_check_server(step: &Step) -> (SocketAddr, mpsc::Receiver<Vec<u8>>) {
    let server = CheckServer::start();
    let addr = server.addr();
    let (sender, received) = mpsc::channel();
    let transcript = step.transcript().clone();
    thread::spawn(move || {
        let Some(mut connection) = server.accept_within(DEADLINE) else {
            return;
        };
        let _ = connection.set_read_timeout(Some(DEADLINE));
        let mut got = Vec::new();
        let mut frame = [0u8; MESSAGE_LEN];
        while connection.read_exact(&mut frame).is_ok() {
            transcript.add(format!(
                "you → check   {} ({})",
                show_binary(&frame),
                meaning(&frame)
            ));
            got.extend_from_slice(&frame);
            if frame[0] == b'Q' {
                let (first, second) = (
                    i32::from_be_bytes(frame[1..5].try_into().unwrap()),
                    i32::from_be_bytes(frame[5..].try_into().unwrap()),
                );
                let answer = first.wrapping_add(second).to_be_bytes();
                transcript.add(format!("check → you   {}", show_binary(&answer)));
                let _ = connection.write_all(&answer);
            }
        }
        transcript.add("check   closed the connection".to_string());
        let _ = sender.send(got);
    });
    (addr, received)
}

fn step_14_the_client_program_prints_each_answer() {
    let step = Step::new(
        "step 14: `client` sends a message for each command, prints each answer, skips a bad line",
        CHAPTER,
    );
    let (addr, received) = start_check_server(&step);
    let addr = addr.to_string();
    let finished = run(program!(), &["client", &addr], SCRIPT);
    finished.expect_code(&step, 0);
    let sent = received.recv_timeout(DEADLINE).unwrap_or_default();
    let due = script_messages().concat();
    if sent != due {
        let words: Vec<String> = sent.chunks(MESSAGE_LEN).map(meaning).collect();
        finished
            .report(&step)
            .expected(&format!("the check's server to get {}", show_binary(&due)))
            .got(&format!("{} ({})", show_binary(&sent), words.join(", ")))
            .hint("encode_command makes each message: step 12 checks it alone.")
            .fail();
    }
    finished.expect_stdout(&step, b"3\n2\n30\n");
    finished.expect_stderr(
        &step,
        predicates::str::contains("line 3"),
        "a line that says line 3 (\"bad line\") was skipped",
    );
}

fn step_15_the_server_program_narrates_queries() {
    let step = Step::new(
        "step 15: `server` says whom it accepted, each query's mean, and an unknown type",
        CHAPTER,
    );
    let (mut server, addr) =
        WatchedServer::start_listening(&step, program!(), &["server", "127.0.0.1:0"]);
    let mut client = server.connect(&step, addr).binary();
    send_all(&mut client, &[insert(1, 100), insert(2, 103), query(1, 2)]);
    expect_mean(&mut client, 101, SERVER_HANGS);
    let peer = client.local_addr();
    server.expect_said(
        &step,
        &format!("accepted {peer}"),
        "serve_concurrently (given) says it.",
    );
    server.expect_said(
        &step,
        &format!("{peer}: mean of 1..=2 is 101"),
        "narrate each answer in one line, as the TODO says: `PEER: mean of MINTIME..=MAXTIME \
         is MEAN` (narrate and peer_name are given).",
    );
    let mut breaker = server.connect(&step, addr).binary();
    send_all(&mut breaker, &[message(b'X', 0, 0)]);
    breaker.expect_end("a message of unknown type ends the connection (close_gently).");
    server.expect_said(
        &step,
        "unknown type",
        "on a message of unknown type, narrate one line that says `unknown type`, then close.",
    );
}

fn step_16_the_server_program_explains_an_address_in_use() {
    let step = Step::new(
        "step 16: `server` explains an address in use in one line, exit code 1",
        CHAPTER,
    );
    expect_address_in_use_explained(&step, program!(), &["server"]);
}

/// Which side went wrong when your client talked to your server.
fn verdict(relay: &Relay, finished: &program::Finished, answers: &[u8]) -> String {
    let Some(carried) = relay.carried(1) else {
        return "your client never reached the relay: did it fail to connect?".to_string();
    };
    let due = script_messages().concat();
    if carried.to_server != due {
        return format!(
            "your client sent {} where {} was due: encode_command is wrong (step 12)",
            show_binary(&carried.to_server),
            show_binary(&due)
        );
    }
    if carried.to_client != answers {
        return format!(
            "your client sent the right messages; your server answered {} where {} was \
             due: serve_connection is wrong (steps 6 to 8)",
            show_binary(&carried.to_client),
            show_binary(answers)
        );
    }
    if !carried.server_closed {
        return "your server answered rightly, then did not close after the client hung \
                up: return Ok(()) when read_frame finds the end."
            .to_string();
    }
    format!(
        "both sides spoke rightly; the program printed {:?} (its output is above)",
        String::from_utf8_lossy(&finished.stdout)
    )
}

fn step_17_your_client_talks_to_your_server() {
    let step = Step::new(
        "step 17: your own client talks to your own server, through a relay that records both sides",
        CHAPTER,
    );
    let server = start_many(&step);
    let relay = Relay::start(&step, server.addr());
    let addr = relay.addr().to_string();
    let finished = run(program!(), &["client", &addr], SCRIPT);
    // The prices SCRIPT inserts, and the means its queries are due.
    let prices = [(12345, 101), (-1, -2)];
    let means = [
        expected_mean(&prices[..1], 1, 2),
        expected_mean(&prices[..1], -5, 7),
        expected_mean(&prices, 10, 20),
    ];
    let answers: Vec<u8> = means.iter().flat_map(|mean| mean.to_be_bytes()).collect();
    let printed: String = means.iter().map(|mean| format!("{mean}\n")).collect();
    if finished.code != Some(0) || finished.stdout != printed.as_bytes() {
        relay.wait_until(1, DEADLINE, |carried| carried.server_closed);
        finished
            .report(&step)
            .expected(&format!("exit code 0, and on stdout {printed:?}"))
            .got(&format!(
                "exit code {:?}, and on stdout {:?}",
                finished.code,
                String::from_utf8_lossy(&finished.stdout)
            ))
            .observed(&verdict(&relay, &finished, &answers))
            .fail();
    }
}

/// Last, because it takes a moment: millions of prices.
fn step_18_mean_stays_exact_for_millions_of_prices() {
    let step = Step::new(
        "step 18: Prices::mean stays exact for 4,194,308 prices near i32::MAX (an i64 sum, integer division, no float)",
        CHAPTER,
    );
    // 2^22 + 4 prices near i32::MAX: their sum is above 2^53, past the last
    // integer an f64 holds exactly, and an f64 mean comes out 1 too high.
    // All at one timestamp: a record kept in a map (step 3's mistake) stays
    // small and quick here.
    // A mean that is still todo!() says so before the check builds them.
    expect_means(&step, &[(&[(1, 7)], 0, 9)], "step 2 checks the same mean.");
    let mut many = vec![(1, i32::MAX); (1 << 22) + 4];
    if let Some(last) = many.last_mut() {
        last.1 = i32::MAX - 1;
    }
    expect_means(
        &step,
        &[(&many, 0, 9)],
        "a float is not exact for a sum this big (an f64 holds every integer only up to \
         2^53): sum in an i64 and divide with integer division (sum / count).",
    );
}

seesaw_checks::checks![
    step_01_decode_reads_the_type_and_two_big_endian_numbers,
    step_02_mean_sums_without_overflow_and_rounds_toward_zero,
    step_03_mean_counts_both_ends_and_answers_0_for_none,
    step_04_read_frame_reads_exactly_nine_bytes,
    step_05_read_frame_tells_a_clean_end_from_a_torn_message,
    step_06_the_server_answers_queries_and_not_inserts,
    step_07_the_server_reads_messages_in_pieces,
    step_08_the_server_answers_pipelined_queries_in_order,
    step_09_each_connection_has_its_own_prices,
    step_10_an_unknown_type_ends_the_connection_gently,
    step_11_an_idle_client_does_not_hold_up_another,
    step_12_encode_command_makes_nine_bytes,
    step_13_encode_command_explains_bad_lines,
    step_14_the_client_program_prints_each_answer,
    step_15_the_server_program_narrates_queries,
    step_16_the_server_program_explains_an_address_in_use,
    step_17_your_client_talks_to_your_server,
    step_18_mean_stays_exact_for_millions_of_prices,
];
