//! A PostgreSQL lexer that only needs to know where tokens start and end.
//!
//! It understands exactly what decides where a statement ends: standard and `E''` strings, dollar
//! quotes with named tags, quoted identifiers, `--` comments and nested block comments. It never fails:
//! an unterminated quote or comment becomes a token that runs to the end of the input and is flagged.

use std::ops::Range;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    Whitespace,
    LineComment,
    BlockComment,
    /// `'…'`, `E'…'`, `B'…'`, `X'…'`, `U&'…'` (the prefix is part of the token).
    String,
    /// `$tag$…$tag$`.
    DollarString,
    /// `"…"`, `U&"…"`.
    QuotedIdent,
    /// Keywords and unquoted identifiers.
    Word,
    Number,
    /// `$1`.
    Parameter,
    Semicolon,
    LParen,
    RParen,
    /// A psql backslash command, up to the end of its line.
    MetaCommand,
    /// Any other punctuation or operator character.
    Punct,
}

impl TokenKind {
    /// Whitespace and comments: tokens that never change a statement's meaning.
    pub fn is_trivia(self) -> bool {
        matches!(
            self,
            TokenKind::Whitespace | TokenKind::LineComment | TokenKind::BlockComment
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub kind: TokenKind,
    /// The token reached the end of the input without its closing quote or `*/`.
    pub unterminated: bool,
    /// Byte offsets in the text, 32 bits each: a token takes 12 bytes instead of 24, and a long
    /// file holds every statement's tokens to the end of its review (texts are at most
    /// [`MAX_TEXT_BYTES`]).
    start: u32,
    end: u32,
}

/// The longest text the lexer reads: offsets are kept in 32 bits.
pub const MAX_TEXT_BYTES: usize = u32::MAX as usize;

impl Token {
    /// A token of `kind` over the bytes `range` of a text of at most [`MAX_TEXT_BYTES`].
    fn new(kind: TokenKind, range: Range<usize>, unterminated: bool) -> Token {
        Token {
            kind,
            unterminated,
            start: offset(range.start),
            end: offset(range.end),
        }
    }

    /// Its bytes in the text.
    pub fn range(&self) -> Range<usize> {
        self.start as usize..self.end as usize
    }
}

/// `at` in 32 bits: [`tokens`] stops at [`MAX_TEXT_BYTES`].
fn offset(at: usize) -> u32 {
    u32::try_from(at).expect("texts are lexed only up to MAX_TEXT_BYTES")
}

/// The index of the parenthesis that closes the one at `open`, in a token list.
pub fn matching_paren(tokens: &[Token], open: usize) -> Option<usize> {
    let mut depth = 0usize;
    for (i, token) in tokens.iter().enumerate().skip(open) {
        match token.kind {
            TokenKind::LParen => depth += 1,
            TokenKind::RParen => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

/// Splits `text[range]` into tokens whose ranges are byte offsets into `text`.
pub fn tokenize(text: &str, range: Range<usize>) -> Vec<Token> {
    tokens(text, range).collect()
}

/// The tokens of `text[range]` one at a time, as [`tokenize`] lists them: a long file's split reads
/// them without a list of every token of the file. Only the first [`MAX_TEXT_BYTES`] of a text are
/// read (a reviewed file is refused long before, see `max-file-size`).
pub fn tokens(text: &str, range: Range<usize>) -> impl Iterator<Item = Token> + '_ {
    let mut lexer = Lexer {
        bytes: text.as_bytes(),
        pos: range.start,
        end: range.end.min(MAX_TEXT_BYTES),
        at_line_start: true,
    };
    std::iter::from_fn(move || (lexer.pos < lexer.end).then(|| lexer.next_token()))
}

struct Lexer<'a> {
    bytes: &'a [u8],
    pos: usize,
    end: usize,
    /// Only whitespace since the last newline: a backslash here starts a psql meta-command.
    at_line_start: bool,
}

impl Lexer<'_> {
    fn peek(&self, offset: usize) -> Option<u8> {
        let at = self.pos + offset;
        (at < self.end).then(|| self.bytes[at])
    }

    fn next_token(&mut self) -> Token {
        let start = self.pos;
        let first = self.bytes[start];
        let (kind, unterminated) = match first {
            // PostgreSQL 16 reads a vertical tab (0x0b) as whitespace too.
            b' ' | b'\t' | b'\n' | b'\r' | b'\x0b' | b'\x0c' => {
                self.pos = self.skip_while(start, |b| b.is_ascii_whitespace() || b == b'\x0b');
                (TokenKind::Whitespace, false)
            }
            b'-' if self.peek(1) == Some(b'-') => {
                self.pos = self.line_end(start);
                (TokenKind::LineComment, false)
            }
            b'/' if self.peek(1) == Some(b'*') => (TokenKind::BlockComment, !self.block_comment()),
            b'\'' => (TokenKind::String, !self.quoted(start, b'\'', false)),
            b'"' => (TokenKind::QuotedIdent, !self.quoted(start, b'"', false)),
            b'$' => self.dollar(),
            b';' => self.single(TokenKind::Semicolon),
            b'(' => self.single(TokenKind::LParen),
            b')' => self.single(TokenKind::RParen),
            b'\\' if self.at_line_start => {
                self.pos = self.line_end(start);
                (TokenKind::MetaCommand, false)
            }
            b'0'..=b'9' => {
                self.pos = self.skip_while(start, |b| b.is_ascii_alphanumeric() || b == b'_');
                self.number_fraction();
                (TokenKind::Number, false)
            }
            b'.' if self.peek(1).is_some_and(|b| b.is_ascii_digit()) => {
                self.pos = start;
                self.number_fraction();
                (TokenKind::Number, false)
            }
            b if is_ident_start(b) => self.word_or_prefixed_string(),
            _ => {
                self.pos = start + utf8_len(first);
                (TokenKind::Punct, false)
            }
        };
        self.pos = self.pos.min(self.end).max(start + 1);
        match kind {
            TokenKind::Whitespace => {
                self.at_line_start |= self.bytes[start..self.pos].contains(&b'\n');
            }
            TokenKind::LineComment | TokenKind::MetaCommand => self.at_line_start = true,
            _ => self.at_line_start = false,
        }
        Token::new(kind, start..self.pos, unterminated)
    }

    fn single(&mut self, kind: TokenKind) -> (TokenKind, bool) {
        self.pos += 1;
        (kind, false)
    }

    fn skip_while(&self, from: usize, keep: impl Fn(u8) -> bool) -> usize {
        let mut at = from;
        while at < self.end && keep(self.bytes[at]) {
            at += 1;
        }
        at
    }

    fn line_end(&self, from: usize) -> usize {
        self.skip_while(from, |b| b != b'\n')
    }

    /// The fractional part and exponent of a number whose integer part was consumed.
    fn number_fraction(&mut self) {
        if self.peek(0) == Some(b'.') && self.peek(1) != Some(b'.') {
            self.pos = self.skip_while(self.pos + 1, |b| b.is_ascii_digit());
        }
        if matches!(self.peek(0), Some(b'e' | b'E')) {
            let sign = usize::from(matches!(self.peek(1), Some(b'+' | b'-')));
            if self.peek(1 + sign).is_some_and(|b| b.is_ascii_digit()) {
                self.pos = self.skip_while(self.pos + 1 + sign, |b| b.is_ascii_digit());
            }
        }
    }

    /// A block comment; PostgreSQL nests them. Returns whether it was closed.
    fn block_comment(&mut self) -> bool {
        let end = block_comment_end(self.bytes, self.pos, self.end);
        self.pos = end.unwrap_or(self.end);
        end.is_some()
    }

    /// A quoted token whose opening quote is at `open`. A doubled quote is an escaped quote; with
    /// `backslash_escapes` (E'' strings) a backslash escapes the next byte. Returns whether it was closed.
    fn quoted(&mut self, open: usize, quote: u8, backslash_escapes: bool) -> bool {
        let mut at = open + 1;
        while at < self.end {
            let b = self.bytes[at];
            if backslash_escapes && b == b'\\' {
                at += 2;
            } else if b == quote {
                if at + 1 < self.end && self.bytes[at + 1] == quote {
                    at += 2;
                } else {
                    self.pos = at + 1;
                    return true;
                }
            } else {
                at += 1;
            }
        }
        self.pos = self.end;
        false
    }

    /// `$tag$…$tag$`, a parameter `$1`, or a lone `$`.
    fn dollar(&mut self) -> (TokenKind, bool) {
        let start = self.pos;
        if self.peek(1).is_some_and(|b| b.is_ascii_digit()) {
            self.pos = self.skip_while(start + 1, |b| b.is_ascii_digit());
            return (TokenKind::Parameter, false);
        }
        let tag_end = if self.peek(1).is_some_and(is_ident_start) {
            self.skip_while(start + 1, is_dollar_tag_continue)
        } else {
            start + 1
        };
        if tag_end >= self.end || self.bytes[tag_end] != b'$' {
            self.pos = start + 1;
            return (TokenKind::Punct, false);
        }
        let tag = &self.bytes[start..=tag_end];
        let body_start = tag_end + 1;
        // A function body runs to thousands of bytes: searched for its closing tag in bulk, not
        // compared with the tag at every byte.
        match memchr::memmem::find(&self.bytes[body_start..self.end], tag) {
            Some(found) => {
                self.pos = body_start + found + tag.len();
                (TokenKind::DollarString, false)
            }
            None => {
                self.pos = self.end;
                (TokenKind::DollarString, true)
            }
        }
    }

    /// A word, or a string with a one-letter prefix (`E'…'`, `B'…'`, `X'…'`, `N'…'`, `U&'…'`, `U&"…"`).
    fn word_or_prefixed_string(&mut self) -> (TokenKind, bool) {
        let start = self.pos;
        let first = self.bytes[start].to_ascii_lowercase();
        match (first, self.peek(1), self.peek(2)) {
            (b'e', Some(b'\''), _) => {
                return (TokenKind::String, !self.quoted(start + 1, b'\'', true));
            }
            (b'b' | b'x' | b'n', Some(b'\''), _) => {
                return (TokenKind::String, !self.quoted(start + 1, b'\'', false));
            }
            (b'u', Some(b'&'), Some(b'\'')) => {
                return (TokenKind::String, !self.quoted(start + 2, b'\'', false));
            }
            (b'u', Some(b'&'), Some(b'"')) => {
                return (TokenKind::QuotedIdent, !self.quoted(start + 2, b'"', false));
            }
            _ => {}
        }
        self.pos = self.skip_while(start, is_ident_continue);
        (TokenKind::Word, false)
    }
}

/// The end of the block comment that opens at `start` (nested ones included, as PostgreSQL reads
/// them), or `None` when it does not close before `end`.
pub fn block_comment_end(bytes: &[u8], start: usize, end: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut at = start;
    while at + 1 < end {
        match (bytes[at], bytes[at + 1]) {
            (b'/', b'*') => {
                depth += 1;
                at += 2;
            }
            (b'*', b'/') => {
                depth -= 1;
                at += 2;
                if depth == 0 {
                    return Some(at);
                }
            }
            _ => at += 1,
        }
    }
    None
}

fn is_ident_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_' || b >= 0x80
}

fn is_ident_continue(b: u8) -> bool {
    is_ident_start(b) || b.is_ascii_digit() || b == b'$'
}

fn is_dollar_tag_continue(b: u8) -> bool {
    is_ident_start(b) || b.is_ascii_digit()
}

/// Length of the UTF-8 sequence a lead byte starts, so a token never splits a character.
fn utf8_len(lead: u8) -> usize {
    match lead {
        0xF0..=0xFF => 4,
        0xE0..=0xEF => 3,
        0xC0..=0xDF => 2,
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(sql: &str) -> Vec<(TokenKind, &str)> {
        tokenize(sql, 0..sql.len())
            .into_iter()
            .filter(|t| t.kind != TokenKind::Whitespace)
            .map(|t| (t.kind, &sql[t.range()]))
            .collect()
    }

    #[test]
    fn strings_and_escapes() {
        use TokenKind::*;
        assert_eq!(
            kinds(r"SELECT 'it''s', E'a\'b;', U&'d\0061t'"),
            vec![
                (Word, "SELECT"),
                (String, "'it''s'"),
                (Punct, ","),
                (String, r"E'a\'b;'"),
                (Punct, ","),
                (String, r"U&'d\0061t'"),
            ]
        );
    }

    #[test]
    fn a_standard_string_ends_at_a_backslash_quote() {
        // standard_conforming_strings is on: a backslash is an ordinary character.
        assert_eq!(
            kinds(r"'a\';"),
            vec![(TokenKind::String, r"'a\'"), (TokenKind::Semicolon, ";")]
        );
    }

    #[test]
    fn dollar_quotes_with_tags_nest() {
        let sql = "$outer$ a $inner$ ; $inner$ b $outer$;";
        assert_eq!(
            kinds(sql),
            vec![
                (
                    TokenKind::DollarString,
                    "$outer$ a $inner$ ; $inner$ b $outer$"
                ),
                (TokenKind::Semicolon, ";"),
            ]
        );
    }

    #[test]
    fn parameters_and_dollars_inside_identifiers() {
        use TokenKind::*;
        assert_eq!(
            kinds("a$b $1 $$x$$"),
            vec![(Word, "a$b"), (Parameter, "$1"), (DollarString, "$$x$$")]
        );
    }

    #[test]
    fn nested_block_comments() {
        assert_eq!(
            kinds("/* a /* b; */ c; */;"),
            vec![
                (TokenKind::BlockComment, "/* a /* b; */ c; */"),
                (TokenKind::Semicolon, ";"),
            ]
        );
    }

    #[test]
    fn unterminated_tokens_run_to_the_end() {
        for sql in ["'abc", "$x$ abc", "/* abc", "\"abc"] {
            let tokens = tokenize(sql, 0..sql.len());
            assert_eq!(tokens.len(), 1, "{sql}");
            assert!(tokens[0].unterminated, "{sql}");
            assert_eq!(tokens[0].range(), 0..sql.len());
        }
    }

    #[test]
    fn a_token_takes_twelve_bytes() {
        // A long file holds every statement's tokens to the end of its review.
        assert_eq!(std::mem::size_of::<Token>(), 12);
    }

    #[test]
    fn multibyte_characters_stay_whole() {
        let sql = "SELECT «x» — 'é'";
        for token in tokenize(sql, 0..sql.len()) {
            assert!(sql.is_char_boundary(token.range().start));
            assert!(sql.is_char_boundary(token.range().end));
        }
    }

    #[test]
    fn numbers_with_fractions_and_exponents_are_one_token() {
        use TokenKind::*;
        assert_eq!(
            kinds(".5 1.5 5. 1e5 1.5E-3 1..2"),
            vec![
                (Number, ".5"),
                (Number, "1.5"),
                (Number, "5."),
                (Number, "1e5"),
                (Number, "1.5E-3"),
                (Number, "1"),
                (Punct, "."),
                (Number, ".2"),
            ]
        );
    }

    #[test]
    fn meta_commands_only_at_line_start() {
        use TokenKind::*;
        assert_eq!(
            kinds("\\set x 1\nSELECT 1"),
            vec![(MetaCommand, "\\set x 1"), (Word, "SELECT"), (Number, "1")]
        );
    }
}
