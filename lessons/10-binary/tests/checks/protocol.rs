//! The protocol as the check writes it, independent of your code: the bytes
//! of a message, what they mean, the mean a query is due, and the means that
//! the usual mistakes give instead (to say which mistake a wrong mean shows).

use lesson_10_binary::MESSAGE_LEN;

/// The 9 bytes of a message: the type byte, then two big-endian i32s.
pub fn message(kind: u8, first: i32, second: i32) -> [u8; MESSAGE_LEN] {
    let mut bytes = [kind, 0, 0, 0, 0, 0, 0, 0, 0];
    bytes[1..5].copy_from_slice(&first.to_be_bytes());
    bytes[5..].copy_from_slice(&second.to_be_bytes());
    bytes
}

pub fn insert(timestamp: i32, price: i32) -> [u8; MESSAGE_LEN] {
    message(b'I', timestamp, price)
}

pub fn query(mintime: i32, maxtime: i32) -> [u8; MESSAGE_LEN] {
    message(b'Q', mintime, maxtime)
}

/// A message in words, for the transcript: `I 12345 101`.
pub fn meaning(bytes: &[u8]) -> String {
    let number = |at: usize| i32::from_be_bytes(bytes[at..at + 4].try_into().unwrap());
    match bytes.len() == MESSAGE_LEN {
        true => format!("{} {} {}", bytes[0].escape_ascii(), number(1), number(5)),
        false => format!("{} bytes", bytes.len()),
    }
}

/// The prices whose timestamps lie in `mintime..=maxtime`, widened.
fn prices_inside(prices: &[(i32, i32)], mintime: i32, maxtime: i32) -> Vec<i64> {
    prices
        .iter()
        .filter(|(time, _)| mintime <= *time && *time <= maxtime)
        .map(|(_, price)| i64::from(*price))
        .collect()
}

/// The mean the protocol asks for: sum in i64, divide toward zero, 0 for none.
pub fn expected_mean(prices: &[(i32, i32)], mintime: i32, maxtime: i32) -> i32 {
    let (sum, count) = prices
        .iter()
        .filter(|(time, _)| mintime <= *time && *time <= maxtime)
        .fold((0i64, 0i64), |(sum, count), (_, price)| {
            (sum + i64::from(*price), count + 1)
        });
    match count {
        0 => 0,
        count => (sum / count) as i32,
    }
}

/// Prices for a query, in words; a long list shows its ends only.
pub fn show_prices(prices: &[(i32, i32)]) -> String {
    let show = |list: &[(i32, i32)]| -> Vec<String> {
        list.iter().map(|(t, p)| format!("{p} at {t}")).collect()
    };
    let shown = match prices.len() {
        0..=8 => show(prices),
        count => [
            show(&prices[..2]),
            vec![format!("... {} more ...", count - 4)],
            show(&prices[count - 2..]),
        ]
        .concat(),
    };
    format!("the prices [{}]", shown.join(", "))
}

/// The mistake that gives the wrong mean `got`, said as a hint, when it is
/// one of those that sum or divide the wrong way.
pub fn mistake_behind(
    prices: &[(i32, i32)],
    mintime: i32,
    maxtime: i32,
    got: i32,
) -> Option<&'static str> {
    let inside = prices_inside(prices, mintime, maxtime);
    if inside.is_empty() {
        return None;
    }
    let count = inside.len() as i64;
    let sum: i64 = inside.iter().sum();
    let wrapped = inside
        .iter()
        .fold(0i32, |sum, price| sum.wrapping_add(*price as i32));
    let unsigned: u64 = inside
        .iter()
        .map(|price| u64::from(*price as i32 as u32))
        .sum();
    let mistakes = [
        ((i64::from(wrapped) / count) as i32, WRAPPED),
        ((unsigned / count as u64) as i32, UNSIGNED),
        ((sum as f32 / count as f32) as i32, IN_FLOATS),
        ((sum as f64 / count as f64) as i32, IN_FLOATS),
    ];
    let found = mistakes.iter().find(|(mean, _)| *mean == got);
    found.map(|(_, hint)| *hint)
}

const WRAPPED: &str = "that is the mean of a sum that wrapped around in 32 bits: add the \
     prices up in an i64 (i64::from(price)), then divide; the mean fits in an i32 again.";

const UNSIGNED: &str = "that is the mean of the prices read as unsigned numbers: prices are \
     signed, and a negative one counted as a number near 4 billion. Sum in an i64 \
     (i64::from(price)).";

const IN_FLOATS: &str = "that is what a division in floating point gives: an f32 holds every \
     integer only up to 2^24, an f64 up to 2^53, and these prices add up to more. Sum in an \
     i64 and divide with integer division (sum / count), which rounds toward zero.";
