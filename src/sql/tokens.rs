//! sqlparser's tokens built from [`lex`](super::lex)'s, so that a statement is tokenized once.
//!
//! The result is what sqlparser's own tokenizer makes of the same text, with one difference the
//! parser cannot see: a run of spaces, tabs and line breaks is one whitespace token (sqlparser's
//! first token of the run, with its span), not one per character. The parser skips whitespace
//! tokens and, for PostgreSQL, only asks whether there is whitespace between two tokens, never how
//! much. Tokens whose sqlparser form depends on more than this module spells out exactly (custom
//! operators, prefixed strings, numbers sqlparser cuts differently, …) are not mapped: the caller
//! then lets sqlparser tokenize the text itself.

use std::ops::Range;
use std::sync::OnceLock;

use sqlparser::ast::DollarQuotedString;
use sqlparser::keywords::{Keyword, ALL_KEYWORDS, ALL_KEYWORDS_INDEX};
use sqlparser::tokenizer::{Location, Span, Token as SqlToken, TokenWithSpan, Whitespace, Word};

use super::lex::{block_comment_end, Token, TokenKind};

/// A token sqlparser would read differently from what this module can spell out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unmapped {
    /// Byte offset in the text.
    pub offset: usize,
    pub what: &'static str,
}

/// sqlparser's tokens for `text[range]`, from `tokens`: its significant tokens in order (ranges
/// into `text`, no whitespace or comments). Spans count from the start of `range`, as sqlparser's
/// own tokenizer would over that slice.
pub fn sqlparser_tokens(
    text: &str,
    range: Range<usize>,
    tokens: &[Token],
) -> Result<Vec<TokenWithSpan>, Unmapped> {
    if starts_copy_with_semicolon(text, tokens) {
        // sqlparser reads the data of `COPY … FROM STDIN;` after the semicolon as one token.
        return Err(Unmapped {
            offset: range.start,
            what: "a COPY with a semicolon",
        });
    }
    let mut mapper = Mapper {
        text,
        bytes: text.as_bytes(),
        end: range.end,
        at: range.start,
        location: Location::new(1, 1),
        out: Vec::with_capacity(tokens.len() * 2 + 1),
    };
    let mut index = 0;
    while let Some(token) = tokens.get(index) {
        mapper.gap(token.range().start)?;
        index += mapper.token(tokens, index)?;
    }
    mapper.gap(range.end)?;
    Ok(mapper.out)
}

fn starts_copy_with_semicolon(text: &str, tokens: &[Token]) -> bool {
    tokens
        .first()
        .is_some_and(|t| text[t.range()].eq_ignore_ascii_case("copy"))
        && tokens.iter().any(|t| t.kind == TokenKind::Semicolon)
}

struct Mapper<'a> {
    text: &'a str,
    bytes: &'a [u8],
    /// End of the text sqlparser would see: nothing after it decides a token.
    end: usize,
    /// Byte offset `location` stands for.
    at: usize,
    location: Location,
    out: Vec<TokenWithSpan>,
}

impl Mapper<'_> {
    /// Moves `location` to byte `to`, counting lines and characters as sqlparser does.
    fn advance(&mut self, to: usize) {
        for &byte in &self.bytes[self.at..to] {
            if byte == b'\n' {
                self.location.line += 1;
                self.location.column = 1;
            } else if byte & 0xC0 != 0x80 {
                self.location.column += 1;
            }
        }
        self.at = to;
    }

    fn push(&mut self, token: SqlToken, range: Range<usize>) {
        self.advance(range.start);
        let start = self.location;
        self.advance(range.end);
        self.out
            .push(TokenWithSpan::new(token, Span::new(start, self.location)));
    }

    fn byte(&self, at: usize) -> Option<u8> {
        (at < self.end).then(|| self.bytes[at])
    }

    fn unmapped<T>(&self, offset: usize, what: &'static str) -> Result<T, Unmapped> {
        Err(Unmapped { offset, what })
    }

    /// The whitespace and comments from `self.at` to `to`.
    fn gap(&mut self, to: usize) -> Result<(), Unmapped> {
        let mut at = self.at;
        let mut after_whitespace = false;
        while at < to {
            if is_space(self.bytes[at]) {
                at = self.whitespace(at, after_whitespace);
                after_whitespace = true;
                continue;
            }
            after_whitespace = false;
            at = match self.bytes[at] {
                b'-' if self.byte(at + 1) == Some(b'-') => self.line_comment(at, to),
                b'/' if self.byte(at + 1) == Some(b'*') => self.block_comment(at, to)?,
                _ => return self.unmapped(at, "text between tokens"),
            };
        }
        Ok(())
    }

    /// One whitespace character (`\r\n` is one), pushed unless it continues a run.
    fn whitespace(&mut self, at: usize, continues_run: bool) -> usize {
        let (kind, len) = match self.bytes[at] {
            b'\t' => (Whitespace::Tab, 1),
            b'\n' => (Whitespace::Newline, 1),
            b'\r' if self.byte(at + 1) == Some(b'\n') => (Whitespace::Newline, 2),
            b'\r' => (Whitespace::Newline, 1),
            _ => (Whitespace::Space, 1),
        };
        if !continues_run {
            self.push(SqlToken::Whitespace(kind), at..at + len);
        }
        at + len
    }

    /// `--` up to a line break; PostgreSQL (and sqlparser) end it at `\r` too.
    fn line_comment(&mut self, at: usize, to: usize) -> usize {
        let end = self.bytes[at..to]
            .iter()
            .position(|&b| b == b'\n' || b == b'\r')
            .map_or(to, |n| at + n);
        let comment = self.text[at + 2..end].to_owned();
        let prefix = "--".to_owned();
        self.push(
            SqlToken::Whitespace(Whitespace::SingleLineComment { comment, prefix }),
            at..end,
        );
        end
    }

    /// `/* … */`, nesting as PostgreSQL does.
    fn block_comment(&mut self, at: usize, to: usize) -> Result<usize, Unmapped> {
        let Some(end) = block_comment_end(self.bytes, at, to) else {
            return self.unmapped(at, "an unterminated block comment");
        };
        let comment = self.text[at + 2..end - 2].to_owned();
        self.push(
            SqlToken::Whitespace(Whitespace::MultiLineComment(comment)),
            at..end,
        );
        Ok(end)
    }

    /// Maps `tokens[index]` (and, for a two-character operator, the next one); returns how many
    /// tokens it took.
    fn token(&mut self, tokens: &[Token], index: usize) -> Result<usize, Unmapped> {
        let token = &tokens[index];
        let range = token.range();
        if token.unterminated {
            return self.unmapped(range.start, "an unterminated token");
        }
        let s = &self.text[range.clone()];
        let mapped = match token.kind {
            TokenKind::Word => SqlToken::Word(Word {
                value: s.to_owned(),
                quote_style: None,
                keyword: keyword(s),
            }),
            TokenKind::QuotedIdent if s.starts_with('"') => SqlToken::Word(Word {
                value: unquote(s, "\"\"", "\""),
                quote_style: Some('"'),
                keyword: Keyword::NoKeyword,
            }),
            TokenKind::String if s.starts_with('\'') => {
                SqlToken::SingleQuotedString(unquote(s, "''", "'"))
            }
            TokenKind::DollarString => self.dollar_string(s, range.start)?,
            TokenKind::Number => self.number(s, range.clone())?,
            TokenKind::Parameter => {
                self.not_continued(range.end, "a parameter followed by more")?;
                SqlToken::Placeholder(s.to_owned())
            }
            TokenKind::Semicolon => SqlToken::SemiColon,
            TokenKind::LParen => SqlToken::LParen,
            TokenKind::RParen => SqlToken::RParen,
            TokenKind::Punct => return self.operator(tokens, index),
            TokenKind::QuotedIdent => return self.unmapped(range.start, "a U& identifier"),
            TokenKind::String => return self.unmapped(range.start, "a prefixed string"),
            _ => return self.unmapped(range.start, "a psql command or comment"),
        };
        self.push(mapped, range);
        Ok(1)
    }

    /// Fails when the byte at `at` would make sqlparser read the token before it as longer.
    fn not_continued(&self, at: usize, what: &'static str) -> Result<(), Unmapped> {
        match self.byte(at) {
            Some(b)
                if b == b'.'
                    || b == b'$'
                    || b == b'_'
                    || b >= 0x80
                    || b.is_ascii_alphanumeric() =>
            {
                self.unmapped(at, what)
            }
            _ => Ok(()),
        }
    }

    fn number(&self, s: &str, range: Range<usize>) -> Result<SqlToken, Unmapped> {
        if !is_sqlparser_number(s.as_bytes()) {
            return self.unmapped(range.start, "a number sqlparser reads differently");
        }
        self.not_continued(range.end, "a number followed by more")?;
        Ok(SqlToken::Number(s.to_owned(), false))
    }

    fn dollar_string(&self, s: &str, at: usize) -> Result<SqlToken, Unmapped> {
        let tag_len = s[1..].find('$').map_or(0, |n| n + 1);
        let tag = &s[1..tag_len];
        if !tag.is_ascii() || s.len() < 2 * tag_len + 2 {
            return self.unmapped(at, "a dollar quote with a non-ASCII tag");
        }
        let value = s[tag_len + 1..s.len() - tag_len - 1].to_owned();
        let tag = (!tag.is_empty()).then(|| tag.to_owned());
        Ok(SqlToken::DollarQuotedString(DollarQuotedString {
            value,
            tag,
        }))
    }

    /// An operator or punctuation starting at `tokens[index]`, one character per token of ours.
    /// Whether the last token pushed, whitespace aside, is a name.
    fn after_word(&self) -> bool {
        self.out
            .iter()
            .rev()
            .find(|t| !matches!(t.token, SqlToken::Whitespace(_)))
            .is_some_and(|t| matches!(t.token, SqlToken::Word(_)))
    }

    fn operator(&mut self, tokens: &[Token], index: usize) -> Result<usize, Unmapped> {
        let start = tokens[index].range().start;
        let next = [1, 2, 3].map(|n| self.byte(start + n));
        let mapped = match operator(self.bytes[start], next) {
            // `._` is a field access after a name, else an error sqlparser words itself.
            None if next[0] == Some(b'_') && self.bytes[start] == b'.' && self.after_word() => {
                Some((SqlToken::Period, 1))
            }
            mapped => mapped,
        };
        let Some((token, len)) = mapped else {
            return self.unmapped(start, "an operator");
        };
        // Each further character of the operator is a token of ours of its own.
        let rest = tokens.get(index + 1..index + len);
        let adjacent = rest.is_some_and(|rest| {
            rest.iter()
                .zip(start + 1..)
                .all(|(t, at)| t.kind == TokenKind::Punct && t.range().start == at)
        });
        if !adjacent {
            return self.unmapped(start, "an operator");
        }
        self.push(token, start..start + len);
        Ok(len)
    }
}

/// Whitespace as [`lex`](super::lex) reads it (sqlparser too, for these ASCII characters).
fn is_space(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\n' | b'\r' | b'\x0b' | b'\x0c')
}

/// Characters sqlparser's PostgreSQL dialect reads as part of a custom operator.
fn is_operator_part(byte: Option<u8>) -> bool {
    byte.is_some_and(|b| b"+-*/<>=~!@#%^&|`?".contains(&b))
}

/// sqlparser's token for the operator or punctuation starting with `first` (followed by the
/// characters `next`), and its length; `None` for those left to sqlparser.
fn operator(first: u8, next: [Option<u8>; 3]) -> Option<(SqlToken, usize)> {
    let op = is_operator_part;
    let [second, third, fourth] = next;
    let token = match (first, second) {
        (b',', _) => (SqlToken::Comma, 1),
        (b'.', Some(b'_')) => return None,
        (b'.', _) => (SqlToken::Period, 1),
        (b'[', _) => (SqlToken::LBracket, 1),
        (b']', _) => (SqlToken::RBracket, 1),
        (b'{', _) => (SqlToken::LBrace, 1),
        (b'}', _) => (SqlToken::RBrace, 1),
        (b'+', _) => (SqlToken::Plus, 1),
        (b'*', _) => (SqlToken::Mul, 1),
        (b'/', _) => (SqlToken::Div, 1),
        (b'=', Some(b'>')) => (SqlToken::RArrow, 2),
        (b'=', Some(b'=')) => (SqlToken::DoubleEq, 2),
        (b'=', _) => (SqlToken::Eq, 1),
        (b':', Some(b':')) => (SqlToken::DoubleColon, 2),
        (b':', Some(b'=')) => (SqlToken::Assignment, 2),
        (b':', _) => (SqlToken::Colon, 1),
        (b'^', Some(b'@')) => (SqlToken::CaretAt, 2),
        (b'^', _) => (SqlToken::Caret, 1),
        // The rest start custom operators when more operator characters follow: left to sqlparser.
        (b'-', s) if !op(s) => (SqlToken::Minus, 1),
        (b'%', s) if !op(s) => (SqlToken::Mod, 1),
        (b'<', Some(b'=')) if !op(third) => (SqlToken::LtEq, 2),
        (b'<', Some(b'>')) if !op(third) => (SqlToken::Neq, 2),
        (b'<', s) if !op(s) => (SqlToken::Lt, 1),
        (b'>', Some(b'=')) if !op(third) => (SqlToken::GtEq, 2),
        (b'>', s) if !op(s) => (SqlToken::Gt, 1),
        (b'!', Some(b'=')) if !op(third) => (SqlToken::Neq, 2),
        (b'|', Some(b'|')) if !op(third) => (SqlToken::StringConcat, 2),
        (b'-', Some(b'>')) if third == Some(b'>') && !op(fourth) => (SqlToken::LongArrow, 3),
        (b'-', Some(b'>')) if !op(third) => (SqlToken::Arrow, 2),
        (b'<', Some(b'@')) if !op(third) => (SqlToken::ArrowAt, 2),
        (b'&', Some(b'&')) if !op(third) => (SqlToken::Overlap, 2),
        (b'&', s) if !op(s) => (SqlToken::Ampersand, 1),
        (b'~', Some(b'*')) if !op(third) => (SqlToken::TildeAsterisk, 2),
        (b'~', Some(b'~')) if !op(third) => (SqlToken::DoubleTilde, 2),
        (b'~', s) if !op(s) => (SqlToken::Tilde, 1),
        (b'!', Some(b'~')) if !matches!(third, Some(b'*' | b'~')) => {
            (SqlToken::ExclamationMarkTilde, 2)
        }
        // These end where they are, whatever follows.
        (b'@', Some(b'>')) => (SqlToken::AtArrow, 2),
        (b'@', Some(b'?')) => (SqlToken::AtQuestion, 2),
        (b'@', Some(b'@')) => (SqlToken::AtAt, 2),
        (b'@', s) if s != Some(b'-') => (SqlToken::AtSign, 1),
        (b'?', Some(b'&')) => (SqlToken::QuestionAnd, 2),
        (b'?', Some(b'|')) if third != Some(b'|') => (SqlToken::QuestionPipe, 2),
        (b'?', s) if !matches!(s, Some(b'|' | b'-' | b'#')) => (SqlToken::Question, 1),
        _ => return None,
    };
    Some(token)
}

/// Whether sqlparser reads all of `s` as one number: digits with single underscores between them,
/// an optional fraction and an optional exponent.
fn is_sqlparser_number(s: &[u8]) -> bool {
    let mut at = digits(s, 0);
    let mut any_digit = at > 0;
    if s.get(at) == Some(&b'.') {
        let fraction = digits(s, at + 1);
        any_digit |= fraction > at + 1;
        at = fraction;
    }
    if matches!(s.get(at), Some(b'e' | b'E')) {
        let sign = usize::from(matches!(s.get(at + 1), Some(b'+' | b'-')));
        let exponent = digits(s, at + 1 + sign);
        if exponent == at + 1 + sign {
            return false;
        }
        at = exponent;
    }
    any_digit && at == s.len()
}

/// The end of the digits (with single underscores between digits) from `from`.
fn digits(s: &[u8], from: usize) -> usize {
    let mut at = from;
    while at < s.len() {
        match s[at] {
            b'0'..=b'9' => at += 1,
            b'_' if at > from
                && s[at - 1].is_ascii_digit()
                && s.get(at + 1).is_some_and(u8::is_ascii_digit) =>
            {
                at += 1
            }
            _ => break,
        }
    }
    at
}

/// The text between the first and last character of `s`, with each `doubled` read as `single`.
fn unquote(s: &str, doubled: &str, single: &str) -> String {
    let inner = &s[1..s.len() - 1];
    if inner.contains(doubled) {
        inner.replace(doubled, single)
    } else {
        inner.to_owned()
    }
}

/// sqlparser's keyword for an unquoted word (`Keyword::NoKeyword` when it is none), from a hash
/// table rather than sqlparser's binary search of them all (5 % of a schema dump's time).
pub fn keyword(word: &str) -> Keyword {
    let table = keyword_table();
    if word.len() > table.longest {
        return Keyword::NoKeyword;
    }
    let mut slot = keyword_hash(word.as_bytes()) & table.mask;
    loop {
        let Some(index) = table.slots[slot] else {
            return Keyword::NoKeyword;
        };
        if ALL_KEYWORDS[usize::from(index)].eq_ignore_ascii_case(word) {
            return ALL_KEYWORDS_INDEX[usize::from(index)];
        }
        slot = (slot + 1) & table.mask;
    }
}

/// FNV-1a of the upper-cased bytes: the keywords are upper-case ASCII.
fn keyword_hash(bytes: &[u8]) -> usize {
    let mut hash: u32 = 0x811c_9dc5;
    for &byte in bytes {
        hash = (hash ^ u32::from(byte.to_ascii_uppercase())).wrapping_mul(0x0100_0193);
    }
    hash as usize
}

/// Open addressing with linear probing, a quarter full: a probe or two per word.
struct KeywordTable {
    /// Indexes into `ALL_KEYWORDS`.
    slots: Vec<Option<u16>>,
    mask: usize,
    longest: usize,
}

fn keyword_table() -> &'static KeywordTable {
    static TABLE: OnceLock<KeywordTable> = OnceLock::new();
    TABLE.get_or_init(|| {
        let size = (ALL_KEYWORDS.len() * 4).next_power_of_two();
        let mut table = KeywordTable {
            slots: vec![None; size],
            mask: size - 1,
            longest: ALL_KEYWORDS.iter().map(|k| k.len()).max().unwrap_or(0),
        };
        for (index, word) in ALL_KEYWORDS.iter().enumerate() {
            let mut slot = keyword_hash(word.as_bytes()) & table.mask;
            while table.slots[slot].is_some() {
                slot = (slot + 1) & table.mask;
            }
            table.slots[slot] = u16::try_from(index).ok();
        }
        table
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_keyword_is_found_in_any_case() {
        for (&word, &expected) in ALL_KEYWORDS.iter().zip(ALL_KEYWORDS_INDEX) {
            assert_eq!(keyword(word), expected, "{word}");
            assert_eq!(keyword(&word.to_ascii_lowercase()), expected, "{word}");
        }
        assert_eq!(keyword("users"), Keyword::NoKeyword);
        assert_eq!(keyword("é"), Keyword::NoKeyword);
    }

    #[test]
    fn numbers_as_sqlparser_reads_them() {
        for number in [
            "1", "1_000", "1.5", ".5", "5.", "1e5", "1.5E-3", "0e5", "1e1_0",
        ] {
            assert!(is_sqlparser_number(number.as_bytes()), "{number}");
        }
        for other in ["1_", "1__0", "0x1F", "1e", "1e+", "1L", ".", "1._5"] {
            assert!(!is_sqlparser_number(other.as_bytes()), "{other}");
        }
    }
}
