//! Shows bytes the way Rust writes a byte string, so `\n`, NUL and 0xFF are
//! visible, and says how two runs of bytes differ.

/// How many bytes a long value shows at its start, and at its end.
const EDGE: usize = 40;

/// `b"hi\n"` for the bytes `h`, `i` and a newline. A long value shows its
/// head, its length and its tail: `b"xxxx..." (65,536 bytes) ...b"xx"`.
pub fn show(bytes: &[u8]) -> String {
    if bytes.len() <= 3 * EDGE {
        return format!("b\"{}\"", escape(bytes));
    }
    let head = escape(&bytes[..EDGE]);
    let tail = escape(&bytes[bytes.len() - EDGE..]);
    format!(
        "b\"{head}...\" ({} bytes) ...b\"{tail}\"",
        thousands(bytes.len())
    )
}

/// Bytes of a binary protocol, every one in hex as Rust can write it:
/// `b"\x49\x00\x00\x30\x39"`. Numbers on the wire are easier to read this
/// way than as text (`b"I\x00\x0009"` is the same bytes). A long value shows
/// its head, its length and its tail, as [`show`] does.
pub fn show_binary(bytes: &[u8]) -> String {
    let hex =
        |bytes: &[u8]| -> String { bytes.iter().map(|byte| format!("\\x{byte:02x}")).collect() };
    if bytes.len() <= 3 * EDGE / 2 {
        return format!("b\"{}\"", hex(bytes));
    }
    let edge = EDGE / 2;
    format!(
        "b\"{}...\" ({} bytes) ...b\"{}\"",
        hex(&bytes[..edge]),
        thousands(bytes.len()),
        hex(&bytes[bytes.len() - edge..])
    )
}

/// A list of byte strings: `[b"one\n", b"two\n"]`.
pub fn show_list<T: AsRef<[u8]>>(list: &[T]) -> String {
    let items: Vec<String> = list.iter().map(|bytes| show(bytes.as_ref())).collect();
    format!("[{}]", items.join(", "))
}

/// `65536` as `65,536`.
pub fn thousands(number: usize) -> String {
    let digits = number.to_string();
    let mut text = String::new();
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index) % 3 == 0 {
            text.push(',');
        }
        text.push(digit);
    }
    text
}

fn escape(bytes: &[u8]) -> String {
    bytes.escape_ascii().to_string()
}

/// Says how `got` differs from `expected`, in the words a student needs, or
/// `None` when they are equal.
pub fn difference(expected: &[u8], got: &[u8]) -> Option<String> {
    if expected == got {
        return None;
    }
    let text = if got.is_empty() {
        "nothing came at all".to_string()
    } else if got.windows(3).any(|w| w == "\u{fffd}".as_bytes())
        && !expected.windows(3).any(|w| w == "\u{fffd}".as_bytes())
    {
        "the bytes that were not UTF-8 came back as U+FFFD (b\"\\xef\\xbf\\xbd\"): \
         somewhere they went through a lossy String conversion. Keep them as bytes (Vec<u8>)."
            .to_string()
    } else if expected.strip_suffix(b"\n") == Some(got) {
        "the same bytes, but the newline at the end is missing".to_string()
    } else if let Some(missing) = expected.strip_prefix(got) {
        format!(
            "the first {} bytes are right, then it stops: {} are missing",
            thousands(got.len()),
            show(missing)
        )
    } else if let Some(extra) = got.strip_prefix(expected) {
        format!(
            "all the expected bytes came, and then {} more that should not be there: {}",
            thousands(extra.len()),
            show(extra)
        )
    } else if expected.trim_ascii() == got.trim_ascii() {
        "the same bytes, except for spaces, tabs, \\r or newlines at either end: \
         something trimmed or added them. Send back exactly the bytes that came."
            .to_string()
    } else {
        let at = expected
            .iter()
            .zip(got)
            .position(|(want, have)| want != have)
            .unwrap_or(expected.len().min(got.len()));
        format!(
            "they differ from byte {at} on: expected {} there, got {}",
            show(&expected[at..(at + 12).min(expected.len())]),
            show(&got[at..(at + 12).min(got.len())])
        )
    };
    Some(text)
}

#[cfg(test)]
mod tests {
    use super::{difference, show, show_binary, show_list, thousands};

    #[test]
    fn binary_bytes_are_all_hex() {
        assert_eq!(show_binary(b"I\x00\x0009"), r#"b"\x49\x00\x00\x30\x39""#);
        assert_eq!(show_binary(b""), r#"b"""#);
        let long = show_binary(&[0xff; 1000]);
        assert!(long.contains("(1,000 bytes)"), "{long}");
        assert!(long.len() < 200, "{long}");
    }

    #[test]
    fn newline_nul_and_ff_are_visible() {
        assert_eq!(show(b"hi\n"), r#"b"hi\n""#);
        assert_eq!(show(b"\x00\xff"), r#"b"\x00\xff""#);
        assert_eq!(show(b"say \"hi\""), r#"b"say \"hi\"""#);
        assert_eq!(show_list(&[b"a\n", b"b\n"]), r#"[b"a\n", b"b\n"]"#);
    }

    #[test]
    fn long_values_show_head_length_and_tail() {
        let shown = show(&[b'x'; 65536]);
        assert!(shown.starts_with("b\"xxxx"), "{shown}");
        assert!(shown.contains("...\" (65,536 bytes) ...b\"xx"), "{shown}");
        assert!(shown.len() < 120, "{shown}");
    }

    #[test]
    fn thousands_are_separated() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1048576), "1,048,576");
    }

    #[test]
    fn differences_are_named() {
        assert_eq!(difference(b"a\n", b"a\n"), None);
        let lossy = difference(b"\xff\n", "\u{fffd}\n".as_bytes()).unwrap();
        assert!(lossy.contains("U+FFFD"), "{lossy}");
        let trimmed = difference(b" a\r\n", b"a").unwrap();
        assert!(trimmed.contains("trimmed"), "{trimmed}");
        let short = difference(b"hello\n", b"hel").unwrap();
        assert!(short.contains("b\"lo\\n\" are missing"), "{short}");
        let extra = difference(b"hi\n", b"hi\n\n").unwrap();
        assert!(extra.contains("1 more"), "{extra}");
        let other = difference(b"abcdef", b"abXdef").unwrap();
        assert!(other.contains("from byte 2 on"), "{other}");
    }
}
