//! In-memory inputs for a lesson's `read_message` (lessons 5 and 9, and later
//! ones), which reads the next message from a buffered reader: no network,
//! so every answer is known and nothing can wait.
//!
//! - [`Source`]: the bytes the check gives, at once ([`Source::bytes`]), or a
//!   flood of `b'x'` with no newline that counts what was taken
//!   ([`Source::flood`]). It is a `Read`, and with the `tokio` feature an
//!   `AsyncRead` too (whose flood says "not yet" every other read, as a
//!   socket would).
//! - [`Found`]: what `read_message` found, as the reports show it
//!   (`Line(b"hi\n")`): a lesson turns its own `Message` into it.
//! - [`cases`]: the inputs every `read_message` must read right, with the
//!   answers that are right for them.
//! - [`ReadChecks`]: calls the student's `read_message` (through
//!   [`blocking`], or [`awaited`] for an `async fn`) and fails with the hint
//!   that fits the first message that differs.
//!
//! ```text
//! let reads = ReadChecks::new(&step, MAX_MESSAGE, fixtures::blocking(read_found));
//! reads.expect(b"one\n tail", &[Found::line(b"one\n"), Found::tail(b" tail"), Found::End]);
//! ```

use std::io::{BufReader, Cursor, Read};

use crate::bounded;
use crate::bytes::{difference, show, thousands};
use crate::report::Step;

/// How many bytes the check's buffer holds between the source and the
/// student's code: what a `BufReader` holds by default.
pub const CHECK_BUFFER: usize = 8 * 1024;

/// What a lesson's `read_message` found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Found {
    /// A whole message: its bytes, ending with the newline.
    Line(Vec<u8>),
    /// The last bytes before end of file, with no newline after them.
    Tail(Vec<u8>),
    /// End of file, and nothing left.
    End,
    /// More than the limit came without a newline.
    TooLong,
}

impl Found {
    /// `Found::Line` of these bytes.
    pub fn line(bytes: &[u8]) -> Found {
        Found::Line(bytes.to_vec())
    }

    /// `Found::Tail` of these bytes.
    pub fn tail(bytes: &[u8]) -> Found {
        Found::Tail(bytes.to_vec())
    }

    /// As the reports show it: `Line(b"hi\n")`, bytes always escaped.
    pub fn describe(&self) -> String {
        match self {
            Found::Line(bytes) => format!("Line({})", show(bytes)),
            Found::Tail(bytes) => format!("Tail({})", show(bytes)),
            Found::End => "End".to_string(),
            Found::TooLong => "TooLong".to_string(),
        }
    }
}

/// Messages as the reports show them, one after another: `[Line(b"a\n"), End]`.
pub fn describe_all(found: &[Found]) -> String {
    let shown: Vec<String> = found.iter().map(Found::describe).collect();
    format!("[{}]", shown.join(", "))
}

/// `count` bytes `b'x'`, then the bytes of `end`.
pub fn xs(count: usize, end: &[u8]) -> Vec<u8> {
    let mut bytes = vec![b'x'; count];
    bytes.extend_from_slice(end);
    bytes
}

/// What the student's code reads from: bytes given at once, or a flood.
/// Either way it counts the bytes taken from it.
pub struct Source {
    kind: Kind,
    taken: usize,
    /// For the async flood: whether the next read gives bytes (or "not yet").
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    ready: bool,
}

enum Kind {
    Bytes(Cursor<Vec<u8>>),
    Flood { left: usize },
}

impl Source {
    /// These bytes, then end of file.
    pub fn bytes(input: &[u8]) -> Source {
        Source {
            kind: Kind::Bytes(Cursor::new(input.to_vec())),
            taken: 0,
            ready: false,
        }
    }

    /// `count` bytes `b'x'` with no newline, then end of file.
    pub fn flood(count: usize) -> Source {
        Source {
            kind: Kind::Flood { left: count },
            taken: 0,
            ready: false,
        }
    }

    /// How many bytes were taken from it so far.
    pub fn taken(&self) -> usize {
        self.taken
    }

    /// Fills (the start of) `buffer`, at most [`CHECK_BUFFER`] bytes; 0 at the end.
    fn fill(&mut self, buffer: &mut [u8]) -> usize {
        let count = match &mut self.kind {
            Kind::Bytes(cursor) => cursor.read(buffer).expect("reading memory never fails"),
            Kind::Flood { left } => {
                let count = buffer.len().min(*left).min(CHECK_BUFFER);
                buffer[..count].fill(b'x');
                *left -= count;
                count
            }
        };
        self.taken += count;
        count
    }
}

impl Read for Source {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        Ok(self.fill(buffer))
    }
}

#[cfg(feature = "tokio")]
impl tokio::io::AsyncRead for Source {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        context: &mut std::task::Context<'_>,
        buffer: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let source = &mut *self;
        if matches!(source.kind, Kind::Flood { .. }) {
            source.ready = !source.ready;
            if !source.ready {
                // Not yet: the runtime polls again (wake_by_ref), as when a
                // socket's next bytes arrive.
                context.waker().wake_by_ref();
                return std::task::Poll::Pending;
            }
        }
        let count = source.fill(buffer.initialize_unfilled());
        buffer.advance(count);
        std::task::Poll::Ready(Ok(()))
    }
}

/// What the student's code reads from in a blocking lesson: a `BufRead`.
pub type Input = BufReader<Source>;

/// What the student's code reads from in an async lesson: an `AsyncBufRead`.
#[cfg(feature = "tokio")]
pub type AsyncInput = tokio::io::BufReader<Source>;

/// What the student's `read_message` returned, call after call.
pub struct Reads {
    pub found: Vec<Found>,
    /// The error that ended the calls, if one did.
    pub error: Option<anyhow::Error>,
    /// How many bytes the student's code took: what the check's buffer took
    /// from the source, less what still waits in that buffer.
    pub consumed: usize,
}

/// The student's `read_message`, as the check calls it: again and again on
/// one source, at most `most` times, stopping after `End`, `TooLong` or an
/// error. Made by [`blocking`] or [`awaited`].
pub trait ReadFunction: Clone + Send + 'static {
    fn read_up_to(self, source: Source, most: usize) -> Reads;

    /// The hint for a call that never returned.
    fn hang_hint(&self) -> &'static str;
}

/// Calls `read` up to `most` times; see [`ReadFunction`].
fn collect(most: usize, mut read: impl FnMut() -> anyhow::Result<Found>) -> Reads {
    let mut reads = Reads {
        found: Vec::new(),
        error: None,
        consumed: 0,
    };
    for _ in 0..most {
        match read() {
            Ok(found) => {
                let last = matches!(found, Found::End | Found::TooLong);
                reads.found.push(found);
                if last {
                    break;
                }
            }
            Err(error) => {
                reads.error = Some(error);
                break;
            }
        }
    }
    reads
}

/// A blocking `read_message(reader: &mut impl BufRead)`, its answer turned into
/// a [`Found`]: `fixtures::blocking(|input| read_message(input).map(found))`.
pub fn blocking<F>(read: F) -> Blocking<F>
where
    F: FnMut(&mut Input) -> anyhow::Result<Found> + Clone + Send + 'static,
{
    Blocking(read)
}

/// See [`blocking`].
#[derive(Clone)]
pub struct Blocking<F>(F);

impl<F> ReadFunction for Blocking<F>
where
    F: FnMut(&mut Input) -> anyhow::Result<Found> + Clone + Send + 'static,
{
    fn read_up_to(mut self, source: Source, most: usize) -> Reads {
        let mut input = BufReader::with_capacity(CHECK_BUFFER, source);
        let mut reads = collect(most, || (self.0)(&mut input));
        reads.consumed = input.get_ref().taken() - input.buffer().len();
        reads
    }

    fn hang_hint(&self) -> &'static str {
        "read_message reads from memory here, so it cannot wait for anything. \
         Does it loop without stopping at end of file (a read of 0 bytes)?"
    }
}

/// An `async fn read_message(reader: &mut (impl AsyncBufRead + Unpin))`, its
/// answer turned into a [`Found`], awaited on a runtime with one thread.
#[cfg(feature = "tokio")]
pub fn awaited<F>(read: F) -> Awaited<F>
where
    F: AsyncFnMut(&mut AsyncInput) -> anyhow::Result<Found> + Clone + Send + 'static,
{
    Awaited(read)
}

/// See [`awaited`].
#[cfg(feature = "tokio")]
#[derive(Clone)]
pub struct Awaited<F>(F);

#[cfg(feature = "tokio")]
impl<F> ReadFunction for Awaited<F>
where
    F: AsyncFnMut(&mut AsyncInput) -> anyhow::Result<Found> + Clone + Send + 'static,
{
    fn read_up_to(mut self, source: Source, most: usize) -> Reads {
        let mut input = tokio::io::BufReader::with_capacity(CHECK_BUFFER, source);
        let runtime = crate::on_tokio::runtime();
        let mut reads = collect(most, || runtime.block_on((self.0)(&mut input)));
        reads.consumed = input.get_ref().taken() - input.buffer().len();
        reads
    }

    fn hang_hint(&self) -> &'static str {
        "read_message reads from memory here, so it cannot wait for anything. \
         Does it loop without stopping at end of file (a read of 0 bytes)? Is every read awaited?"
    }
}

/// One input, and the answers that are right for it (the first is the one
/// reports show as expected).
pub struct Case {
    pub input: Vec<u8>,
    pub allowed: Vec<Vec<Found>>,
}

impl Case {
    fn new(input: &[u8], expected: Vec<Found>) -> Case {
        Case {
            input: input.to_vec(),
            allowed: vec![expected],
        }
    }
}

/// The inputs every `read_message` must read right.
pub mod cases {
    use super::{Case, Found, xs};

    /// Messages that catch a changed byte: spaces at either end, tabs and a
    /// carriage return, bytes that are not UTF-8, an empty message, a NUL.
    pub const AWKWARD: [&[u8]; 5] = [
        b"  spaces at either end  \n",
        b"\ttabs\tand a carriage return\r\n",
        b"\xff\x00 not UTF-8 \xfe\n",
        b"\n",
        b"\x00\n",
    ];

    /// Whole messages, each returned exactly, newline included, then End.
    pub fn whole_messages() -> Vec<Case> {
        let lines: Vec<&[u8]> = [b"hello\n".as_slice()].into_iter().chain(AWKWARD).collect();
        let mut expected: Vec<Found> = lines.iter().map(|line| Found::line(line)).collect();
        expected.push(Found::End);
        vec![Case::new(&lines.concat(), expected)]
    }

    /// The last bytes without a newline: a Tail, then End; nothing at all: End.
    pub fn tails() -> Vec<Case> {
        vec![
            Case::new(
                b"one\n last words ",
                vec![
                    Found::line(b"one\n"),
                    Found::tail(b" last words "),
                    Found::End,
                ],
            ),
            // Not UTF-8 in the very last bytes, and a lone \r: still bytes, kept exact.
            Case::new(
                b"\t\xff\xfe\r",
                vec![Found::tail(b"\t\xff\xfe\r"), Found::End],
            ),
            // Nothing at all: no empty Tail, just End.
            Case::new(b"", vec![Found::End]),
        ]
    }

    /// Messages up to `limit` bytes each, newline included, and no more.
    pub fn limit(limit: usize) -> Vec<Case> {
        let at_limit = xs(limit - 1, b"\n");
        let mut cases = vec![
            // Up to the limit, newline included: a Line.
            Case::new(
                &xs(limit - 2, b"\n"),
                vec![Found::Line(xs(limit - 2, b"\n")), Found::End],
            ),
            Case::new(&at_limit, vec![Found::line(&at_limit), Found::End]),
            // One byte over, the newline being that byte: too long.
            Case::new(&xs(limit, b"\n"), vec![Found::TooLong]),
            // Without a newline, before end of file: a Tail while under the limit...
            Case::new(
                &xs(limit - 1, b""),
                vec![Found::Tail(xs(limit - 1, b"")), Found::End],
            ),
            // ...exactly at the limit either answer is right: whether one more byte
            // would have come can only be known by reading past the limit...
            Case {
                input: xs(limit, b""),
                allowed: vec![
                    vec![Found::TooLong],
                    vec![Found::Tail(xs(limit, b"")), Found::End],
                ],
            },
            // ...and over it, too long.
            Case::new(&xs(limit + 1, b""), vec![Found::TooLong]),
            Case::new(&xs(limit, b"x\n"), vec![Found::TooLong]),
        ];
        // The limit is per message: two messages at the limit, then twenty that
        // add up to more than the limit, are all fine.
        let size = (limit / 13).min(5_000);
        let mut input = [at_limit.clone(), at_limit.clone()].concat();
        let mut expected = vec![Found::line(&at_limit), Found::Line(at_limit)];
        for number in 0..20 {
            let line = [format!("{number:04} ").as_bytes(), &xs(size, b"\n")].concat();
            input.extend_from_slice(&line);
            expected.push(Found::Line(line));
        }
        expected.push(Found::End);
        cases.push(Case::new(&input, expected));
        cases
    }
}

/// The checks of one step on the student's `read_message`.
pub struct ReadChecks<R> {
    step: Step,
    /// MAX_MESSAGE of the lesson.
    limit: usize,
    read: R,
}

impl<R: ReadFunction> ReadChecks<R> {
    pub fn new(step: &Step, limit: usize, read: R) -> ReadChecks<R> {
        ReadChecks {
            step: step.clone(),
            limit,
            read,
        }
    }

    /// Fails unless read_message, called on `input` again and again, returns
    /// exactly `expected`.
    #[track_caller]
    pub fn expect(&self, input: &[u8], expected: &[Found]) {
        self.expect_one_of(input, &[expected.to_vec()]);
    }

    /// Like [`ReadChecks::expect`], for each of `cases`.
    #[track_caller]
    pub fn expect_cases(&self, cases: &[Case]) {
        for case in cases {
            self.expect_one_of(&case.input, &case.allowed);
        }
    }

    /// Like [`ReadChecks::expect`], where more than one answer is right.
    #[track_caller]
    pub fn expect_one_of(&self, input: &[u8], allowed: &[Vec<Found>]) {
        let most = allowed.iter().map(Vec::len).max().unwrap_or(1);
        let call = format!("read_message on the input {}", show(input));
        let reads = self.read(Source::bytes(input), most, &call);
        if reads.error.is_none() && allowed.contains(&reads.found) {
            return;
        }
        let answers: Vec<String> = allowed.iter().map(|answer| describe_all(answer)).collect();
        let calls = reads.found.len() + usize::from(reads.error.is_some());
        let report = self
            .step
            .report()
            .did(&format!(
                "called read_message {} on the input {}",
                times(calls),
                show(input)
            ))
            .expected(&answers.join("\n or: "));
        match reads.error {
            Some(error) => report
                .got(&format!("{}, then:", describe_all(&reads.found)))
                .got_error(&error)
                .hint(
                    "read_message returns an error only when reading fails; end of file is \
                     Message::End.",
                )
                .fail(),
            None => report
                .got(&describe_all(&reads.found))
                .observed(&self.hint_for(&allowed[0], &reads.found))
                .fail(),
        }
    }

    /// Gives read_message a flood of `count` bytes with no newline, and fails
    /// unless it says TooLong having taken at most the limit (and one byte
    /// more, to see whether a newline follows).
    #[track_caller]
    pub fn expect_stops_at_limit(&self, count: usize) {
        let input = format!("{} bytes b\"x\" with no newline", thousands(count));
        let call = format!("read_message on {input}");
        let reads = self.read(Source::flood(count), 1, &call);
        if let Some(error) = reads.error {
            self.step.ok::<()>(&call, Err(error));
        }
        let found = reads.found.into_iter().next().unwrap_or(Found::End);
        let within_limit = reads.consumed <= self.limit + 1;
        if found == Found::TooLong && within_limit {
            return;
        }
        let report = self
            .step
            .report()
            .did(&format!(
                "gave read_message a reader of {input}, counting the bytes your code took from it"
            ))
            .expected(&format!(
                "TooLong, after taking at most MAX_MESSAGE = {} bytes",
                thousands(self.limit)
            ))
            .got(&format!(
                "{}, after taking {} bytes",
                found.describe(),
                thousands(reads.consumed)
            ));
        if within_limit {
            report
                .observed(&self.hint_for(&[Found::TooLong], &[found]))
                .fail();
        }
        report
            .observed(&format!(
                "your code read {} bytes before it decided: a client that sends a gigabyte \
                 without a newline would fill the server's memory first. Put the limit on the \
                 read itself (take(MAX_MESSAGE as u64) on the reader), so that it stops at \
                 MAX_MESSAGE bytes whether a newline came or not.",
                thousands(reads.consumed)
            ))
            .fail();
    }

    /// Runs the student's code on `source`, with a deadline.
    #[track_caller]
    fn read(&self, source: Source, most: usize, call: &str) -> Reads {
        let read = self.read.clone();
        bounded::run(&self.step, call, self.read.hang_hint(), move || {
            read.read_up_to(source, most)
        })
    }

    /// The hint for the first message that differs from what was expected.
    fn hint_for(&self, expected: &[Found], got: &[Found]) -> String {
        let first_difference = expected
            .iter()
            .zip(got)
            .enumerate()
            .find(|(_, (want, have))| want != have);
        let Some((number, (want, have))) = first_difference else {
            return "read the step's title again: it says what read_message must return."
                .to_string();
        };
        let which = format!("call {} returned {}: ", number + 1, have.describe());
        which + &why_differs(want, have, self.limit)
    }
}

/// Why `have` is not `want`, for a limit of `limit` bytes a message.
fn why_differs(want: &Found, have: &Found, limit: usize) -> String {
    let limit_text = thousands(limit);
    match (want, have) {
        (Found::Line(want) | Found::Tail(want), Found::Line(have) | Found::Tail(have))
            if want != have =>
        {
            format!(
                "{}. Keep the message's bytes exactly as they came, newline included.",
                difference(want, have).unwrap_or_default()
            )
        }
        (Found::Line(_), Found::Tail(_)) => {
            "these bytes end with a newline: that makes them a Line.".to_string()
        }
        (Found::Tail(_), Found::Line(_)) => "these bytes have no newline after them: read \
             just before end of file, they are a Tail, not a Line."
            .to_string(),
        (Found::End, Found::Line(bytes) | Found::Tail(bytes)) if bytes.is_empty() => {
            "a read of 0 bytes means end of file: that is End, not an empty message.".to_string()
        }
        (Found::Line(_) | Found::Tail(_), Found::End) => {
            "End came too early: there were still bytes in the input. Were they taken \
             with the message before, and lost? Bytes after a newline belong to the next \
             message: stop at the newline (read_until), and leave the rest in the reader."
                .to_string()
        }
        (Found::End, _) => {
            "the input has nothing more: the next read gives 0 bytes, which is End.".to_string()
        }
        (Found::TooLong, Found::Line(bytes) | Found::Tail(bytes)) if bytes.len() > limit => {
            format!(
                "{} bytes came back as one message, more than MAX_MESSAGE ({limit_text}). \
                 Stop reading at the limit, and call that TooLong.",
                thousands(bytes.len()),
            )
        }
        (Found::TooLong, _) => format!(
            "the limit was reached without a newline: at {limit_text} bytes with no newline \
             in sight, the message is too long (TooLong), whatever comes after."
        ),
        (Found::Line(bytes), Found::TooLong) if bytes.len() == limit => format!(
            "this message is exactly MAX_MESSAGE ({limit_text}) bytes, newline included, and \
             that is allowed: only a message longer than that is TooLong. An off-by-one?"
        ),
        (Found::Line(_) | Found::Tail(_), Found::TooLong) => format!(
            "this message is shorter than MAX_MESSAGE ({limit_text}): the limit is per \
             message. Does your count of bytes carry over from the messages before it?"
        ),
        _ => "read the step's title again: it says what read_message must return.".to_string(),
    }
}

/// "once", "twice", "3 times".
pub fn times(count: usize) -> String {
    match count {
        1 => "once".to_string(),
        2 => "twice".to_string(),
        _ => format!("{count} times"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::BufRead;

    /// A right read_message, as lessons 5 and 9 write it.
    fn read_right(input: &mut Input) -> anyhow::Result<Found> {
        let mut bytes = Vec::new();
        input.take(64).read_until(b'\n', &mut bytes)?;
        Ok(match bytes {
            bytes if bytes.is_empty() => Found::End,
            bytes if bytes.ends_with(b"\n") => Found::Line(bytes),
            bytes if bytes.len() == 64 => Found::TooLong,
            bytes => Found::Tail(bytes),
        })
    }

    #[test]
    fn a_flood_counts_what_was_taken() {
        let mut input = BufReader::with_capacity(CHECK_BUFFER, Source::flood(100_000));
        let mut bytes = Vec::new();
        input.by_ref().take(10).read_to_end(&mut bytes).unwrap();
        assert_eq!(bytes, xs(10, b""));
        assert_eq!(input.get_ref().taken(), CHECK_BUFFER);
        assert_eq!(input.buffer().len(), CHECK_BUFFER - 10);
    }

    #[test]
    fn calls_stop_at_end_too_long_or_most() {
        let reads = blocking(read_right).read_up_to(Source::bytes(b"a\nb"), 5);
        assert_eq!(
            reads.found,
            [Found::line(b"a\n"), Found::tail(b"b"), Found::End]
        );
        let reads = blocking(read_right).read_up_to(Source::flood(1000), 5);
        assert_eq!(reads.found, [Found::TooLong]);
        assert_eq!(reads.consumed, 64);
        let reads = blocking(read_right).read_up_to(Source::bytes(b"a\nb\nc\n"), 2);
        assert_eq!(reads.found.len(), 2);
    }

    #[test]
    fn the_cases_hold_for_a_right_answer() {
        let mut all = cases::whole_messages();
        all.extend(cases::tails());
        all.extend(cases::limit(64));
        for case in all {
            let reads = blocking(read_right).read_up_to(Source::bytes(&case.input), 30);
            assert!(case.allowed.contains(&reads.found), "{}", show(&case.input));
        }
    }

    #[test]
    fn hints_name_the_first_difference() {
        let why = why_differs(&Found::line(b"a\n"), &Found::tail(b"a\n"), 64);
        assert!(why.contains("makes them a Line"), "{why}");
        let why = why_differs(&Found::line(&xs(63, b"\n")), &Found::TooLong, 64);
        assert!(why.contains("off-by-one"), "{why}");
        let why = why_differs(&Found::TooLong, &Found::Tail(xs(100, b"")), 64);
        assert!(why.contains("100 bytes came back"), "{why}");
        assert_eq!(Found::line(b"\xff\n").describe(), r#"Line(b"\xff\n")"#);
        assert_eq!(times(2), "twice");
    }

    #[cfg(feature = "tokio")]
    #[test]
    fn an_async_flood_says_not_yet_and_counts() {
        use tokio::io::AsyncBufReadExt;
        async fn read_async(input: &mut AsyncInput) -> anyhow::Result<Found> {
            use tokio::io::AsyncReadExt;
            let mut bytes = Vec::new();
            input.take(64).read_until(b'\n', &mut bytes).await?;
            Ok(match bytes.len() {
                0 => Found::End,
                64 => Found::TooLong,
                _ => Found::Line(bytes),
            })
        }
        let reads = awaited(read_async).read_up_to(Source::flood(100_000), 3);
        assert_eq!(reads.found, [Found::TooLong]);
        assert_eq!(reads.consumed, 64);
        let reads = awaited(read_async).read_up_to(Source::bytes(b"a\n"), 3);
        assert_eq!(reads.found, [Found::line(b"a\n"), Found::End]);
    }
}
