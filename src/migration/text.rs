//! Line-level helpers for the formats whose sections are marked by comment lines.

/// A UTF-8 byte order mark: kept in a migration's text but never part of a section.
const BOM: char = '\u{feff}';

/// Where the SQL starts: after a leading byte order mark, if any.
pub(super) fn body_start(text: &str) -> usize {
    if text.starts_with(BOM) {
        BOM.len_utf8()
    } else {
        0
    }
}

/// `text` without a leading byte order mark.
pub(super) fn without_bom(text: &str) -> &str {
    text.strip_prefix(BOM).unwrap_or(text)
}

/// One line of a text with its byte position, so markers found on it can become section bounds.
pub(super) struct Line<'a> {
    /// Offset of the line's first byte.
    pub start: usize,
    /// Offset just past the line's newline (the next line's start).
    pub end: usize,
    /// The line without its `\n` or `\r\n`.
    pub text: &'a str,
}

/// The lines of `text` from byte `from`, which must be a char boundary.
pub(super) fn lines(text: &str, from: usize) -> impl Iterator<Item = Line<'_>> {
    let mut pos = from;
    std::iter::from_fn(move || {
        let rest = text.get(pos..).filter(|rest| !rest.is_empty())?;
        let (content, len) = match rest.find('\n') {
            Some(newline) => (&rest[..newline], newline + 1),
            None => (rest, rest.len()),
        };
        let line = Line {
            start: pos,
            end: pos + len,
            text: content.strip_suffix('\r').unwrap_or(content),
        };
        pos += len;
        Some(line)
    })
}

/// The rest of a `--` comment line after the dashes and any blanks, or `None` for any other line.
pub(super) fn comment(line: &str) -> Option<&str> {
    line.strip_prefix("--").map(str::trim_start)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_report_offsets_and_strip_crlf() {
        let text = "a\r\nbc\n\nd";
        let found: Vec<_> = lines(text, 0).map(|l| (l.start, l.end, l.text)).collect();
        assert_eq!(found, [(0, 3, "a"), (3, 6, "bc"), (6, 7, ""), (7, 8, "d")]);
    }

    #[test]
    fn body_starts_after_a_bom() {
        assert_eq!(body_start("\u{feff}SELECT 1;"), 3);
        assert_eq!(body_start("SELECT 1;"), 0);
        assert_eq!(without_bom("\u{feff}x"), "x");
    }
}
