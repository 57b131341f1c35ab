//! Quoting user input in messages: never whole, at most [`EXCERPT_CHARS`] characters.
//!
//! An error that echoes what it refuses must not grow with it: a 1 GiB JSON line quoted whole in an
//! error once cost gigabytes of memory. [`excerpt`] cuts on a character boundary and marks the cut
//! with `…`, in time proportional to the excerpt, not to the text.

use std::borrow::Cow;

/// The most characters of user input a message quotes.
pub const EXCERPT_CHARS: usize = 80;

/// `text` if it has at most [`EXCERPT_CHARS`] characters, else its first [`EXCERPT_CHARS`] followed by
/// `…`.
pub fn excerpt(text: &str) -> Cow<'_, str> {
    match text.char_indices().nth(EXCERPT_CHARS) {
        None => Cow::Borrowed(text),
        Some((cut, _)) => Cow::Owned(format!("{}…", &text[..cut])),
    }
}

/// [`excerpt`] of bytes that may not be UTF-8 (a line of a file): the valid prefix is quoted, and the
/// first invalid byte ends it (marked `…`).
pub fn excerpt_bytes(bytes: &[u8]) -> Cow<'_, str> {
    // Four bytes per character at most: enough bytes for the excerpt, whatever the text.
    let head = &bytes[..bytes.len().min(4 * EXCERPT_CHARS + 4)];
    let valid = match std::str::from_utf8(head) {
        Ok(s) => s,
        // `valid_up_to` is a character boundary, so the prefix is valid UTF-8.
        Err(e) => std::str::from_utf8(&head[..e.valid_up_to()]).unwrap_or_default(),
    };
    let quoted = excerpt(valid);
    let whole = valid.len() == bytes.len();
    match quoted {
        Cow::Borrowed(s) if !whole => Cow::Owned(format!("{s}…")),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_text_is_quoted_whole_and_long_text_cut_on_a_character_boundary() {
        assert_eq!(excerpt("pct10"), "pct10");
        let exact = "é".repeat(EXCERPT_CHARS);
        assert_eq!(excerpt(&exact), exact);
        let long = "é".repeat(EXCERPT_CHARS + 1);
        assert_eq!(excerpt(&long), format!("{}…", "é".repeat(EXCERPT_CHARS)));
        assert_eq!(excerpt(&long).chars().count(), EXCERPT_CHARS + 1);
        let huge = "x".repeat(10_000_000);
        assert_eq!(excerpt(&huge).len(), EXCERPT_CHARS + '…'.len_utf8());
    }

    #[test]
    fn bytes_are_quoted_up_to_the_first_invalid_one() {
        assert_eq!(excerpt_bytes(b"{\"a\": 1}"), "{\"a\": 1}");
        assert_eq!(excerpt_bytes(b"ab\xffcd"), "ab…");
        let long = "日本".repeat(200);
        let quoted = excerpt_bytes(long.as_bytes());
        assert_eq!(quoted.chars().count(), EXCERPT_CHARS + 1);
        assert!(quoted.ends_with('…') && long.starts_with(quoted.trim_end_matches('…')));
        // A multi-byte character cut by the byte window is not quoted in half.
        let mut bytes = vec![b'a'; 4 * EXCERPT_CHARS + 3];
        bytes.extend("日".as_bytes());
        let quoted = excerpt_bytes(&bytes);
        assert_eq!(quoted, format!("{}…", "a".repeat(EXCERPT_CHARS)));
        assert_eq!(excerpt_bytes(b""), "");
    }
}
