//! Where things are inside a statement, for rules that point at the exact clause or identifier, and
//! how to write names back as SQL in help texts.

use sqlparser::ast::{AlterTableOperation, Ident, ObjectType, Statement as Ast};

use super::StatementContext;
use crate::sql::{Kind, ObjectName, TokenKind};

/// An `ALTER TABLE` statement as rules read it: its table, its operations, and
/// where each operation starts in the file (so a finding points at its own clause).
pub(crate) struct AlterTable<'a> {
    /// The table as written.
    pub table: ObjectName,
    pub operations: &'a [AlterTableOperation],
    offsets: Vec<usize>,
}

impl<'a> AlterTable<'a> {
    /// The parsed `ALTER TABLE` of this statement, if it is one; read once per statement and shared
    /// by every rule that asks.
    pub fn of<'c>(cx: &'c StatementContext<'a>) -> Option<&'c AlterTable<'a>> {
        cx.readings
            .alter_table
            .get_or_init(|| Self::read(cx))
            .as_ref()
    }

    fn read(cx: &StatementContext<'a>) -> Option<AlterTable<'a>> {
        let Some(Ast::AlterTable(alter)) = cx.statement.ast() else {
            return None;
        };
        Some(AlterTable {
            table: ObjectName::from_ast(&alter.name)?,
            operations: &alter.operations,
            offsets: operation_offsets(cx),
        })
    }

    /// The table, schema-qualified, for messages: written only by a rule that reports.
    pub fn qualified(&self, cx: &StatementContext) -> String {
        cx.qualified(&self.table)
    }

    /// The table, schema-qualified and quoted as SQL needs it, for help texts.
    pub fn table_sql(&self, cx: &StatementContext) -> String {
        sql_name(&cx.catalog.resolve(&self.table))
    }

    /// The text of operation `i` as written (`ADD CONSTRAINT … REFERENCES … ON DELETE CASCADE`), when
    /// the tokens say where each operation is; fixers rewrite it and keep every clause they do not
    /// touch.
    pub fn operation_sql<'t>(&self, cx: &StatementContext<'t>, i: usize) -> Option<&'t str> {
        if self.offsets.len() != self.operations.len() {
            return None;
        }
        let start = *self.offsets.get(i)?;
        let end = self
            .offsets
            .get(i + 1)
            .copied()
            .unwrap_or(cx.statement.range.end);
        let text = cx.text.get(start..end)?.trim_end();
        Some(text.strip_suffix(',').unwrap_or(text).trim_end())
    }

    /// The statement's text up to its first operation (`ALTER TABLE ONLY public.users`), as written.
    pub fn head_sql<'t>(&self, cx: &StatementContext<'t>) -> Option<&'t str> {
        let start = *self.offsets.first()?;
        cx.text
            .get(cx.statement.range.start..start)
            .map(str::trim_end)
    }

    /// `ALTER TABLE <table> <operation>;` for one operation, as written, with `rewrite` applied to
    /// the operation's text.
    pub fn single_operation_sql(
        &self,
        cx: &StatementContext,
        i: usize,
        rewrite: impl FnOnce(&str) -> String,
    ) -> Option<String> {
        let head = self.head_sql(cx)?;
        let operation = self.operation_sql(cx, i)?;
        Some(format!("{head} {};", rewrite(operation)))
    }

    /// Where operation `i` starts, or the statement's start when the tokens do not say.
    pub fn offset(&self, cx: &StatementContext, i: usize) -> usize {
        self.offsets
            .get(i)
            .copied()
            .filter(|_| self.offsets.len() == self.operations.len())
            .unwrap_or(cx.statement.range.start)
    }
}

/// Byte offsets of the start of each comma-separated operation of `ALTER TABLE [IF EXISTS] [ONLY]
/// name [*] op, op, …`.
fn operation_offsets(cx: &StatementContext) -> Vec<usize> {
    let tokens = &cx.statement.tokens;
    let text = |i: usize| tokens.get(i).map_or("", |t| &cx.text[t.range()]);
    let is_word = |i: usize, word: &str| {
        tokens
            .get(i)
            .is_some_and(|t| t.kind == TokenKind::Word && text(i).eq_ignore_ascii_case(word))
    };
    let mut at = 2;
    if is_word(at, "if") && is_word(at + 1, "exists") {
        at += 2;
    }
    if is_word(at, "only") {
        at += 1;
    }
    // The table name: parts separated by dots.
    while let Some(token) = tokens.get(at) {
        match token.kind {
            TokenKind::Word | TokenKind::QuotedIdent => at += 1,
            _ => break,
        }
        if text(at) == "." {
            at += 1;
        } else {
            break;
        }
    }
    if text(at) == "*" {
        at += 1;
    }
    let mut offsets = Vec::new();
    let mut depth = 0usize;
    let mut starts_here = true;
    for token in tokens.iter().skip(at) {
        if starts_here {
            offsets.push(token.range().start);
            starts_here = false;
        }
        match token.kind {
            TokenKind::LParen => depth += 1,
            TokenKind::RParen => depth = depth.saturating_sub(1),
            TokenKind::Punct if depth == 0 && &cx.text[token.range()] == "," => {
                starts_here = true;
            }
            _ => {}
        }
    }
    offsets
}

/// An identifier as SQL must write it: bare when PostgreSQL would fold it to itself, else quoted.
pub(crate) use crate::schema::naming::quote_ident as sql_ident;

/// A (qualified) name as SQL must write it.
pub(crate) use crate::schema::naming::quote_name as sql_name;

/// File offset of a sqlparser location in the current statement (1-based line and character column,
/// relative to the statement's text, which is what sqlparser was given).
pub(crate) fn location_offset(cx: &StatementContext, line: u64, column: u64) -> Option<usize> {
    if line == 0 || column == 0 {
        return None;
    }
    let sql = cx.sql();
    let mut line_start = 0;
    for _ in 1..line {
        line_start += memchr::memchr(b'\n', &sql.as_bytes()[line_start..])? + 1;
    }
    let column = usize::try_from(column - 1).ok()?;
    let rest = &sql[line_start..];
    // Characters are bytes in ASCII text (most of it), without decoding them.
    let ascii = rest.as_bytes().get(..column).is_some_and(<[u8]>::is_ascii);
    let at = if ascii {
        column
    } else {
        match rest.char_indices().nth(column) {
            Some((at, _)) => at,
            // One past the last character: the end of the statement.
            None if rest.chars().count() == column => rest.len(),
            None => return None,
        }
    };
    Some(cx.statement.range.start + line_start + at)
}

/// File offset of an identifier sqlparser read, when it is where a token of the statement starts.
pub(crate) fn ident_offset(cx: &StatementContext, ident: &Ident) -> Option<usize> {
    let start = ident.span.start;
    let offset = location_offset(cx, start.line, start.column)?;
    cx.statement
        .tokens
        .iter()
        .any(|token| token.range().start == offset)
        .then_some(offset)
}

/// File offset of the last `keyword` at or before `offset`: the start of the clause that holds it.
pub(crate) fn clause_start(cx: &StatementContext, offset: usize, keyword: &str) -> Option<usize> {
    cx.statement
        .tokens
        .iter()
        .rev()
        .filter(|token| token.range().start <= offset)
        .find(|token| {
            token.kind == TokenKind::Word && cx.text[token.range()].eq_ignore_ascii_case(keyword)
        })
        .map(|token| token.range().start)
}

/// The offset of an identifier's clause (`DROP COLUMN x`: the `DROP`), else of the identifier, else of
/// the statement.
pub(crate) fn clause_of(cx: &StatementContext, ident: &Ident, keyword: &str) -> usize {
    ident_offset(cx, ident)
        .map(|offset| clause_start(cx, offset, keyword).unwrap_or(offset))
        .unwrap_or(cx.statement.range.start)
}

/// For statements sqlparser could not parse: every top-level occurrence of the keyword sequence
/// `keywords`, as (offset of its first keyword, the name after it). Optional `IF EXISTS` is skipped.
pub(crate) fn clauses_from_tokens(
    cx: &StatementContext,
    keywords: &[&str],
) -> Vec<(usize, ObjectName)> {
    let tokens = &cx.statement.tokens;
    let is = |i: usize, keyword: &str| {
        tokens.get(i).is_some_and(|token| {
            token.kind == TokenKind::Word && cx.text[token.range()].eq_ignore_ascii_case(keyword)
        })
    };
    let mut found = Vec::new();
    let mut depth = 0usize;
    for (i, token) in tokens.iter().enumerate() {
        match token.kind {
            TokenKind::LParen => depth += 1,
            TokenKind::RParen => depth = depth.saturating_sub(1),
            _ => {}
        }
        if depth > 0
            || !keywords
                .iter()
                .enumerate()
                .all(|(k, keyword)| is(i + k, keyword))
        {
            continue;
        }
        let mut at = i + keywords.len();
        if is(at, "if") && is(at + 1, "exists") {
            at += 2;
        }
        if let Some(name) = tokens
            .get(at..)
            .and_then(|rest| ObjectName::from_tokens(cx.text, rest))
        {
            found.push((token.range().start, name));
        }
    }
    found
}

/// One object a `DROP` statement names.
pub(crate) struct Dropped {
    pub name: ObjectName,
    /// Where its name is written (the statement's start when the tokens do not say).
    pub offset: usize,
    pub cascade: bool,
}

/// The objects of the given type a `DROP <object_type>` statement drops; for a statement sqlparser
/// could not parse, the first object its classification names when its kind is `kind`.
pub(crate) fn dropped(cx: &StatementContext, object_type: ObjectType, kind: Kind) -> Vec<Dropped> {
    let statement = cx.statement;
    match statement.ast() {
        Some(Ast::Drop {
            object_type: dropped_type,
            names,
            cascade,
            ..
        }) if *dropped_type == object_type => names
            .iter()
            .filter_map(|name| {
                let offset = name
                    .0
                    .first()
                    .and_then(|part| part.as_ident())
                    .and_then(|ident| ident_offset(cx, ident))
                    .unwrap_or(statement.range.start);
                Some(Dropped {
                    name: ObjectName::from_ast(name)?,
                    offset,
                    cascade: *cascade,
                })
            })
            .collect(),
        None if statement.class.kind == kind => {
            let cascade = statement.find_keywords(cx.text, &["cascade"]).is_some();
            statement
                .class
                .target
                .iter()
                .map(|name| Dropped {
                    name: name.clone(),
                    offset: statement.range.start,
                    cascade,
                })
                .collect()
        }
        _ => Vec::new(),
    }
}

/// The statement as written, with `word` inserted after its first `keywords` sequence
/// (`CREATE INDEX` → `CREATE INDEX CONCURRENTLY`) and a closing `;`; `None` when the statement does
/// not contain the sequence.
pub(crate) fn statement_with_word_after(
    cx: &StatementContext,
    keywords: &[&str],
    word: &str,
) -> Option<String> {
    let statement = cx.statement;
    let start = statement.find_keywords(cx.text, keywords)?;
    let first = statement
        .tokens
        .iter()
        .position(|token| token.range().start == start)?;
    let last = statement.tokens.get(first + keywords.len() - 1)?;
    let sql = cx.sql();
    let at = last.range().end - statement.range.start;
    Some(super::fix::terminated(&format!(
        "{} {word}{}",
        &sql[..at],
        &sql[at..]
    )))
}
