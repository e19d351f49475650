//! Cutting a migration's sections into statements the way psql does, keeping exact byte offsets.

use std::ops::Range;

use super::lex::{tokenize, Token, TokenKind};

/// One statement's place in the file, before parsing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawStatement {
    /// From the first to the last significant token, without the terminating `;`.
    pub range: Range<usize>,
    /// Index of the migration section it belongs to.
    pub section: usize,
    /// Its significant (non-trivia) tokens.
    pub tokens: Vec<Token>,
    /// A string, quoted identifier, dollar quote or comment that never closes: its start offset.
    pub unterminated: Option<Unterminated>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unterminated {
    pub offset: usize,
    pub what: &'static str,
}

impl Unterminated {
    /// Where an unterminated token starts and what it is.
    fn at(token: &Token) -> Unterminated {
        let what = match token.kind {
            TokenKind::String => "string literal",
            TokenKind::DollarString => "dollar-quoted string",
            TokenKind::QuotedIdent => "quoted identifier",
            _ => "block comment",
        };
        Unterminated {
            offset: token.range.start,
            what,
        }
    }
}

/// The statements and the comments of a file's sections.
#[derive(Debug, Clone, Default)]
pub struct Split {
    pub statements: Vec<RawStatement>,
    /// Byte ranges of every comment, for suppression directives.
    pub comments: Vec<Range<usize>>,
    /// Every quote or comment that never closes (at most one per section: it runs to the section's
    /// end), including a comment that opens where a statement would start and so belongs to none.
    pub unterminated: Vec<Unterminated>,
}

/// Splits each section of `text` into statements. A `;` ends a statement unless it is inside
/// parentheses or inside the `BEGIN … END` body of a `CREATE FUNCTION/PROCEDURE … BEGIN ATOMIC`.
pub fn split(text: &str, sections: &[Range<usize>]) -> Split {
    let mut out = Split::default();
    for (section, range) in sections.iter().enumerate() {
        let mut current = StatementBuilder::new(section);
        for token in tokenize(text, range.clone()) {
            if token.unterminated {
                out.unterminated.push(Unterminated::at(&token));
            }
            match token.kind {
                TokenKind::LineComment | TokenKind::BlockComment => {
                    if token.unterminated {
                        current.note_unterminated(&token);
                    }
                    out.comments.push(token.range);
                }
                TokenKind::Whitespace => {}
                TokenKind::Semicolon if current.at_top_level() => {
                    out.statements.extend(current.finish());
                    current = StatementBuilder::new(section);
                }
                TokenKind::MetaCommand if current.tokens.is_empty() => {
                    // A psql backslash command is a statement of its own line.
                    current.push(text, token);
                    out.statements.extend(current.finish());
                    current = StatementBuilder::new(section);
                }
                _ => current.push(text, token),
            }
        }
        out.statements.extend(current.finish());
    }
    out
}

struct StatementBuilder {
    section: usize,
    tokens: Vec<Token>,
    paren_depth: usize,
    /// Depth of `BEGIN`/`CASE` … `END` inside a function or procedure definition.
    begin_depth: usize,
    /// The first words, lower-cased, to recognise a routine definition.
    leading_words: Vec<String>,
    defines_routine: bool,
    unterminated: Option<Unterminated>,
}

impl StatementBuilder {
    fn new(section: usize) -> Self {
        StatementBuilder {
            section,
            tokens: Vec::new(),
            paren_depth: 0,
            begin_depth: 0,
            leading_words: Vec::new(),
            defines_routine: false,
            unterminated: None,
        }
    }

    fn at_top_level(&self) -> bool {
        self.paren_depth == 0 && self.begin_depth == 0
    }

    fn note_unterminated(&mut self, token: &Token) {
        self.unterminated.get_or_insert(Unterminated::at(token));
    }

    fn push(&mut self, text: &str, token: Token) {
        if token.unterminated {
            self.note_unterminated(&token);
        }
        match token.kind {
            TokenKind::LParen => self.paren_depth += 1,
            TokenKind::RParen => self.paren_depth = self.paren_depth.saturating_sub(1),
            TokenKind::Word => self.track_routine_body(&text[token.range.clone()]),
            _ => {}
        }
        self.tokens.push(token);
    }

    /// psql's heuristic: in a statement that starts `CREATE [OR REPLACE] FUNCTION|PROCEDURE`, a
    /// `BEGIN` (and, inside one, a `CASE`) opens a block that `END` closes, and semicolons inside
    /// blocks do not end the statement.
    fn track_routine_body(&mut self, word: &str) {
        if self.leading_words.len() < 4 {
            self.leading_words.push(word.to_ascii_lowercase());
            let words: Vec<&str> = self.leading_words.iter().map(String::as_str).collect();
            self.defines_routine = matches!(
                words.as_slice(),
                ["create", "function" | "procedure", ..]
                    | ["create", "or", "replace", "function" | "procedure"]
            );
            return;
        }
        if !self.defines_routine || self.paren_depth > 0 {
            return;
        }
        let opens_block = word.eq_ignore_ascii_case("begin")
            || (word.eq_ignore_ascii_case("case") && self.begin_depth > 0);
        if opens_block {
            self.begin_depth += 1;
        } else if word.eq_ignore_ascii_case("end") {
            self.begin_depth = self.begin_depth.saturating_sub(1);
        }
    }

    fn finish(self) -> Option<RawStatement> {
        let start = self.tokens.first()?.range.start;
        let end = self.tokens.last()?.range.end;
        Some(RawStatement {
            range: start..end,
            section: self.section,
            tokens: self.tokens,
            unterminated: self.unterminated,
        })
    }
}
