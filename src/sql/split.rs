//! Cutting a migration's sections into statements the way psql does, keeping exact byte offsets.

use std::ops::Range;

use super::lex::{tokens, Token, TokenKind};

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
            offset: token.range().start,
            what,
        }
    }
}

/// The statements and the comments of a file's sections.
#[derive(Debug, Clone, Default)]
pub struct Split {
    pub statements: Vec<RawStatement>,
    pub marks: Marks,
}

/// What a split finds besides the statements.
#[derive(Debug, Clone, Default)]
pub struct Marks {
    /// Byte ranges of every comment, for suppression directives.
    pub comments: Vec<Range<usize>>,
    /// Every quote or comment that never closes (at most one per section: it runs to the section's
    /// end), including a comment that opens where a statement would start and so belongs to none.
    pub unterminated: Vec<Unterminated>,
}

/// Splits each section of `text` into statements. A `;` ends a statement unless it is inside
/// parentheses or inside the `BEGIN … END` body of a `CREATE FUNCTION/PROCEDURE … BEGIN ATOMIC`.
pub fn split(text: &str, sections: &[Range<usize>]) -> Split {
    let mut statements = Vec::new();
    let marks = split_each(text, sections, |statement| statements.push(statement));
    Split { statements, marks }
}

/// Splits as [`split`] does, handing each statement to `each` as soon as it is read.
pub fn split_each(
    text: &str,
    sections: &[Range<usize>],
    mut each: impl FnMut(RawStatement),
) -> Marks {
    let mut marks = Marks::default();
    for (section, range) in sections.iter().enumerate() {
        let mut current = StatementBuilder::new(section);
        for token in tokens(text, range.clone()) {
            if token.unterminated {
                marks.unterminated.push(Unterminated::at(&token));
            }
            match token.kind {
                TokenKind::LineComment | TokenKind::BlockComment => {
                    if token.unterminated {
                        current.note_unterminated(&token);
                    }
                    marks.comments.push(token.range());
                }
                TokenKind::Whitespace => {}
                TokenKind::Semicolon if current.at_top_level() => {
                    current.finish().into_iter().for_each(&mut each);
                }
                TokenKind::MetaCommand if current.tokens.is_empty() => {
                    // A psql backslash command is a statement of its own line.
                    current.push(text, token);
                    current.finish().into_iter().for_each(&mut each);
                }
                _ => current.push(text, token),
            }
        }
        current.finish().into_iter().for_each(&mut each);
    }
    marks
}

/// The statement being read. One per section: its token list is reused from one statement to the
/// next, and each finished statement gets a copy of just its length.
struct StatementBuilder {
    section: usize,
    tokens: Vec<Token>,
    paren_depth: usize,
    /// Depth of `BEGIN`/`CASE` … `END` inside a function or procedure definition.
    begin_depth: usize,
    /// The first words, to recognise a routine definition.
    leading_words: Vec<LeadingWord>,
    defines_routine: bool,
    unterminated: Option<Unterminated>,
}

/// What a routine definition's first words can be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LeadingWord {
    Create,
    Or,
    Replace,
    Routine,
    Other,
}

impl LeadingWord {
    fn of(word: &str) -> LeadingWord {
        let is = |keyword: &str| word.eq_ignore_ascii_case(keyword);
        if is("create") {
            LeadingWord::Create
        } else if is("or") {
            LeadingWord::Or
        } else if is("replace") {
            LeadingWord::Replace
        } else if is("function") || is("procedure") {
            LeadingWord::Routine
        } else {
            LeadingWord::Other
        }
    }
}

impl StatementBuilder {
    fn new(section: usize) -> Self {
        StatementBuilder {
            section,
            tokens: Vec::new(),
            paren_depth: 0,
            begin_depth: 0,
            leading_words: Vec::with_capacity(4),
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
            TokenKind::Word => self.track_routine_body(&text[token.range()]),
            _ => {}
        }
        self.tokens.push(token);
    }

    /// psql's heuristic: in a statement that starts `CREATE [OR REPLACE] FUNCTION|PROCEDURE`, a
    /// `BEGIN` (and, inside one, a `CASE`) opens a block that `END` closes, and semicolons inside
    /// blocks do not end the statement.
    fn track_routine_body(&mut self, word: &str) {
        if self.leading_words.len() < 4 {
            self.leading_words.push(LeadingWord::of(word));
            use LeadingWord::*;
            self.defines_routine = matches!(
                self.leading_words.as_slice(),
                [Create, Routine, ..] | [Create, Or, Replace, Routine]
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

    /// The statement read so far, if it has a token, and a fresh start for the next one.
    fn finish(&mut self) -> Option<RawStatement> {
        let statement = self
            .tokens
            .first()
            .zip(self.tokens.last())
            .map(|(first, last)| RawStatement {
                range: first.range().start..last.range().end,
                section: self.section,
                tokens: self.tokens.clone(),
                unterminated: self.unterminated,
            });
        self.tokens.clear();
        self.paren_depth = 0;
        self.begin_depth = 0;
        self.leading_words.clear();
        self.defines_routine = false;
        self.unterminated = None;
        statement
    }
}
