//! Shows bytes the way Rust writes a byte string, so `\n`, NUL and 0xFF are visible.

/// `b"hi\n"` for the bytes `h`, `i` and a newline. Long runs are cut in the middle.
pub fn show(bytes: &[u8]) -> String {
    const EDGE: usize = 60;
    if bytes.len() > 2 * EDGE + 20 {
        let head = escape(&bytes[..EDGE]);
        let tail = escape(&bytes[bytes.len() - EDGE..]);
        let cut = bytes.len() - 2 * EDGE;
        return format!(
            "b\"{head}\"...({cut} more bytes)...b\"{tail}\" ({} bytes)",
            bytes.len()
        );
    }
    format!("b\"{}\"", escape(bytes))
}

fn escape(bytes: &[u8]) -> String {
    bytes.escape_ascii().to_string()
}

#[cfg(test)]
mod tests {
    use super::show;

    #[test]
    fn newline_nul_and_ff_are_visible() {
        assert_eq!(show(b"hi\n"), r#"b"hi\n""#);
        assert_eq!(show(b"\x00\xff"), r#"b"\x00\xff""#);
        assert_eq!(show(b"say \"hi\""), r#"b"say \"hi\"""#);
    }

    #[test]
    fn long_runs_are_cut() {
        let shown = show(&[b'a'; 1000]);
        assert!(shown.contains("(880 more bytes)"), "{shown}");
        assert!(shown.ends_with("(1000 bytes)"), "{shown}");
    }
}
