//! Byte offsets to 1-based lines and columns.

/// The start offset of every line of a text, to turn byte offsets into positions.
#[derive(Debug, Clone)]
pub struct LineIndex {
    line_starts: Vec<usize>,
}

/// A 1-based line and column; the column counts characters, not bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Position {
    pub line: usize,
    pub column: usize,
}

impl LineIndex {
    pub fn new(text: &str) -> Self {
        // memchr's search, not `str::match_indices`, which calls a generic `memchr` once per line.
        let line_starts = std::iter::once(0)
            .chain(memchr::memchr_iter(b'\n', text.as_bytes()).map(|at| at + 1))
            .collect();
        LineIndex { line_starts }
    }

    /// The position of `offset` in `text` (the text this index was built from). Offsets past the end
    /// or inside a character are clamped to the nearest character start.
    pub fn position(&self, text: &str, offset: usize) -> Position {
        let offset = floor_char_boundary(text, offset);
        let line = self.line_starts.partition_point(|&start| start <= offset);
        let line_start = self.line_starts[line - 1];
        Position {
            line,
            column: text[line_start..offset].chars().count() + 1,
        }
    }

    /// The byte offset of a position: the inverse of [`LineIndex::position`] (a column past the end of
    /// its line means the line's end).
    pub fn offset(&self, text: &str, position: Position) -> usize {
        let line = self.line_range(text, position.line.clamp(1, self.line_starts.len()));
        let column = text[line.clone()]
            .char_indices()
            .nth(position.column.saturating_sub(1))
            .map_or(line.len(), |(at, _)| at);
        line.start + column
    }

    /// The byte range of 1-based line `line`, without its line break.
    pub fn line_range(&self, text: &str, line: usize) -> std::ops::Range<usize> {
        let start = self.line_starts[line - 1];
        let end = self
            .line_starts
            .get(line)
            .map_or(text.len(), |&next| next - 1);
        let end = if end > start && text.as_bytes()[end - 1] == b'\r' {
            end - 1
        } else {
            end
        };
        start..end
    }
}

fn floor_char_boundary(text: &str, offset: usize) -> usize {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    offset
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_and_character_columns() {
        let text = "ab\nçd\r\nx";
        let index = LineIndex::new(text);
        assert_eq!(index.position(text, 0), Position { line: 1, column: 1 });
        assert_eq!(index.position(text, 3), Position { line: 2, column: 1 });
        assert_eq!(index.position(text, 5), Position { line: 2, column: 2 });
        assert_eq!(index.position(text, 8), Position { line: 3, column: 1 });
        assert_eq!(index.position(text, 99), Position { line: 3, column: 2 });
        assert_eq!(&text[index.line_range(text, 2)], "çd");
    }

    #[test]
    fn offsets_invert_positions() {
        let text = "ab\nçd\r\nx";
        let index = LineIndex::new(text);
        for offset in [0, 1, 3, 5, 8] {
            assert_eq!(index.offset(text, index.position(text, offset)), offset);
        }
        assert_eq!(index.offset(text, Position { line: 2, column: 9 }), 6);
    }
}
