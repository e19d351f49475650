//! Statements sqlparser could not parse, read from their tokens.
//!
//! Two strategies, in order: repair what sqlparser trips on without changing the meaning
//! (`ON ONLY`, `DROP INDEX CONCURRENTLY IF EXISTS`, a keyword used as a table name after
//! `REFERENCES`, `LIKE … INCLUDING ALL`) and parse again; failing that, take the statement apart
//! (the elements of a `CREATE TABLE`, the actions of an `ALTER TABLE`) and keep what parses, reading
//! the few forms sqlparser has no syntax tree for (`SET SCHEMA`, `ALTER SEQUENCE`,
//! `ALTER INDEX IF EXISTS … RENAME`, `ADD CONSTRAINT … NOT NULL col`, `DROP IDENTITY`) directly.

use sqlparser::ast;

use super::drop::Dropped;
use super::{parse_statement, Catalog};
use crate::schema::{naming, TypeKind, UserType};
use crate::sql::lex::{matching_paren, tokenize, Token, TokenKind};
use crate::sql::{Kind, ObjectName, Statement};

impl Catalog {
    /// Applies a statement sqlparser could not parse, from its classification and tokens.
    pub(super) fn apply_unparsed(&mut self, text: &str, statement: &Statement) {
        let sql = Sql {
            text,
            tokens: &statement.tokens,
        };
        if sql.tokens.iter().any(|t| t.unterminated) {
            return;
        }
        match statement.class.kind {
            Kind::CreateTable => self.unparsed_create_table(&sql),
            Kind::AlterTable => self.unparsed_alter_table(&sql),
            Kind::CreateIndex => self.unparsed_create_index(&sql),
            Kind::DropTable
            | Kind::DropIndex
            | Kind::DropSequence
            | Kind::DropType
            | Kind::DropView
            | Kind::DropSchema => self.unparsed_drop(&sql),
            Kind::AlterIndex | Kind::AlterSequence | Kind::AlterType => {
                self.unparsed_alter_object(&sql)
            }
            Kind::CreateSequence
            | Kind::CreateType
            | Kind::CreateView
            | Kind::CreateMaterializedView => self.unparsed_create_object(&sql),
            _ => {}
        }
    }

    /// `CREATE TABLE`: repaired and parsed whole, or else created from its header and then
    /// element by element, in order, each element parsed on its own.
    fn unparsed_create_table(&mut self, sql: &Sql) {
        let repaired = sql.repaired();
        if let Some(statement) = parse_statement(&repaired) {
            return self.apply_ast(&statement);
        }
        let tokens = significant_tokens(&repaired);
        let repaired = Sql {
            text: &repaired,
            tokens: &tokens,
        };
        let Some(open) = tokens.iter().position(|t| t.kind == TokenKind::LParen) else {
            return;
        };
        let Some(close) = matching_paren(&tokens, open) else {
            return;
        };
        let header = repaired.between(0, open);
        let suffix = repaired.between(close + 1, tokens.len());
        let empty = parse_statement(&format!("{header} () {suffix}"))
            .or_else(|| parse_statement(&format!("{header} ()")));
        let Some(ast::Statement::CreateTable(create)) = empty else {
            return;
        };
        self.create_table(&create);
        let Some(table) = super::object_name(&create.name).and_then(|n| self.relation_key(&n))
        else {
            return;
        };
        for element in split_list(&repaired, open + 1, close) {
            let element_sql = repaired.between(element.start, element.end);
            match parse_statement(&format!("CREATE TABLE t ({element_sql})")) {
                Some(ast::Statement::CreateTable(parsed)) => self.add_elements(&table, &parsed),
                _ => self.unparsed_table_element(&table, &repaired.slice(element)),
            }
        }
    }

    /// A `CREATE TABLE` element no parser reads: `[CONSTRAINT n] NOT NULL column` (PostgreSQL 18)
    /// makes the column NOT NULL; a column definition at least adds the column, type unknown.
    fn unparsed_table_element(&mut self, table: &ObjectName, element: &Sql) {
        if let Some(column) = element.not_null_constraint() {
            if let Some(mut column) = self.column_or_stub(table, &column) {
                column.not_null = true;
            }
            return;
        }
        let mut cursor = element.cursor();
        let is_constraint = [
            "constraint",
            "primary",
            "unique",
            "foreign",
            "check",
            "exclude",
            "like",
        ]
        .iter()
        .any(|keyword| cursor.is(keyword));
        if is_constraint {
            return;
        }
        if let Some(column) = cursor.ident() {
            let exists = self
                .relations
                .get(table)
                .is_some_and(|r| r.columns.iter().any(|c| c.name == column));
            if !exists {
                let column = self.unknown_column(column);
                if let Some(mut columns) = self.relations.columns_mut(table) {
                    columns.push(column);
                }
            }
        }
    }

    /// `ALTER TABLE [IF EXISTS] [ONLY] name action, …`: each action on its own, in order.
    fn unparsed_alter_table(&mut self, sql: &Sql) {
        let mut cursor = sql.cursor();
        cursor.expect(&["alter", "table"]);
        let if_exists = cursor.eat(&["if", "exists"]);
        let only = cursor.eat(&["only"]);
        let Some(name) = cursor.name() else {
            return;
        };
        cursor.eat_punct("*");
        let Some(mut table) = self.altered_table(&name, if_exists) else {
            return;
        };
        for action in split_list(sql, cursor.at, sql.tokens.len()) {
            let action = sql.slice(action);
            table = self.unparsed_alter_table_action(&table, &action, only);
        }
    }

    /// One `ALTER TABLE` action; returns the table's key afterwards.
    fn unparsed_alter_table_action(
        &mut self,
        table: &ObjectName,
        action: &Sql,
        only: bool,
    ) -> ObjectName {
        let mut cursor = action.cursor();
        if cursor.eat(&["set", "schema"]) {
            return match cursor.ident() {
                Some(schema) => {
                    self.set_relation_schema(table, &schema);
                    ObjectName::new(Some(&schema), &table.name)
                }
                None => table.clone(),
            };
        }
        if let Some(column) = action.not_null_constraint() {
            if let Some(mut column) = self.column_or_stub(table, &column) {
                column.not_null = true;
            }
            return table.clone();
        }
        if cursor.eat(&["alter"]) {
            cursor.eat(&["column"]);
            if let Some(column) = cursor.ident() {
                if cursor.eat(&["drop", "identity"]) {
                    self.drop_identity(table, &column);
                    return table.clone();
                }
                if cursor.eat(&["drop", "expression"]) {
                    if let Some(mut column) = self.column_or_stub(table, &column) {
                        column.generated = false;
                    }
                    return table.clone();
                }
                if cursor.eat(&["add", "generated"]) {
                    if let Some(mut target) = self.column_or_stub(table, &column) {
                        let by_default = cursor.find(&["by", "default"]).is_some();
                        target.identity = Some(match by_default {
                            true => crate::schema::Identity::ByDefault,
                            false => crate::schema::Identity::Always,
                        });
                        target.not_null = true;
                    }
                    self.add_owned_sequence(table, &column, Vec::new());
                    return table.clone();
                }
            }
        }
        let sql = format!("ALTER TABLE {} {}", quoted_name(table), action.repaired());
        let Some(ast::Statement::AlterTable(alter)) = parse_statement(&sql) else {
            return table.clone();
        };
        let mut table = table.clone();
        for operation in &alter.operations {
            table = self.alter_table_operation(&table, operation, only);
        }
        table
    }

    /// `ALTER COLUMN … DROP IDENTITY`: the column keeps its values, loses its sequence.
    fn drop_identity(&mut self, table: &ObjectName, column: &str) {
        if let Some(mut target) = self.column_or_stub(table, column) {
            target.identity = None;
        }
        self.remove_owned_sequences(table, column);
    }

    /// `CREATE INDEX … ON ONLY table …`: parsed without `ONLY`, built on the parent alone.
    fn unparsed_create_index(&mut self, sql: &Sql) {
        if let Some(ast::Statement::CreateIndex(create)) = parse_statement(&sql.repaired()) {
            let only = sql.cursor().find(&["on", "only"]).is_some();
            self.create_index(&create, only);
        }
    }

    /// `DROP <kind> [CONCURRENTLY] [IF EXISTS] name, … [CASCADE | RESTRICT]`.
    fn unparsed_drop(&mut self, sql: &Sql) {
        let mut cursor = sql.cursor();
        cursor.expect(&["drop"]);
        let relation = cursor.eat(&["table"])
            || cursor.eat(&["view"])
            || cursor.eat(&["materialized", "view"])
            || cursor.eat(&["foreign", "table"]);
        let dropped = if relation {
            Dropped::Relation
        } else if cursor.eat(&["index"]) {
            Dropped::Index
        } else if cursor.eat(&["sequence"]) {
            Dropped::Sequence
        } else if cursor.eat(&["type"]) || cursor.eat(&["domain"]) {
            Dropped::Type
        } else if cursor.eat(&["schema"]) {
            Dropped::Schema
        } else {
            return;
        };
        cursor.eat(&["concurrently"]);
        cursor.eat(&["if", "exists"]);
        while let Some(name) = cursor.name() {
            self.drop_object(dropped, &name);
            if !cursor.eat_punct(",") {
                break;
            }
        }
    }

    /// `ALTER {INDEX | SEQUENCE | TYPE | DOMAIN} [IF EXISTS] name` with `RENAME TO`, `SET SCHEMA`,
    /// `OWNED BY` (sequences) or `ADD [CONSTRAINT n] CHECK` (domains).
    fn unparsed_alter_object(&mut self, sql: &Sql) {
        let mut cursor = sql.cursor();
        cursor.expect(&["alter"]);
        let kind = cursor.word().unwrap_or_default();
        cursor.at += 1;
        cursor.eat(&["if", "exists"]);
        let Some(name) = cursor.name() else {
            return;
        };
        let rename_to = cursor.find(&["rename", "to"]).and_then(|mut c| c.ident());
        let set_schema = cursor.find(&["set", "schema"]).and_then(|mut c| c.ident());
        match kind.as_str() {
            "index" => {
                if let Some(new_name) = rename_to {
                    self.rename_index(&name, &new_name);
                }
            }
            "sequence" => {
                let Some(key) = self.find_key(&self.sequences, &name) else {
                    return;
                };
                if let Some(mut owned_by) = cursor.find(&["owned", "by"]) {
                    let column = match owned_by.eat(&["none"]) {
                        true => None,
                        false => owned_by.name(),
                    };
                    self.set_sequence_owner(&key, column.as_ref());
                }
                if let Some(new_name) = rename_to {
                    self.rename_within_schema(&key, &new_name);
                } else if let Some(schema) = set_schema {
                    self.set_schema_of(&key, &schema);
                }
            }
            "type" | "domain" => {
                let Some(key) = self.find_key(&self.types, &name) else {
                    return;
                };
                if let Some(new_name) = rename_to {
                    self.rename_within_schema(&key, &new_name);
                } else if let Some(schema) = set_schema {
                    self.set_schema_of(&key, &schema);
                } else if cursor.find(&["check"]).is_some() && cursor.find(&["add"]).is_some() {
                    if let Some(TypeKind::Domain { has_check, .. }) =
                        self.types.get_mut(&key).map(|t| &mut t.kind)
                    {
                        *has_check = true;
                    }
                }
            }
            _ => {}
        }
    }

    /// `CREATE SEQUENCE | TYPE | DOMAIN | [MATERIALIZED] VIEW` sqlparser rejects: the object
    /// exists, its details are unknown.
    fn unparsed_create_object(&mut self, sql: &Sql) {
        let mut cursor = sql.cursor();
        cursor.expect(&["create"]);
        cursor.eat(&["or", "replace"]);
        let temporary = cursor.eat(&["temp"]) || cursor.eat(&["temporary"]);
        cursor.eat(&["recursive"]);
        let kind = if cursor.eat(&["materialized", "view"]) {
            "materialized view".to_owned()
        } else {
            let kind = cursor.word().unwrap_or_default();
            cursor.at += 1;
            kind
        };
        cursor.eat(&["if", "not", "exists"]);
        let Some(name) = cursor.name() else {
            return;
        };
        match kind.as_str() {
            "sequence" => {
                let key = self.qualify(&name);
                if !self.sequences.contains_key(&key) {
                    let sequence = crate::schema::Sequence {
                        name: key.clone(),
                        owned_by: None,
                        options: Vec::new(),
                        origin: *self.current,
                    };
                    self.sequences.insert(key, sequence);
                }
            }
            "type" | "domain" => {
                let key = self.qualify(&name);
                let kind = match kind.as_str() {
                    "domain" => TypeKind::Domain {
                        base: None,
                        has_check: cursor.find(&["check"]).is_some(),
                    },
                    _ => TypeKind::Other,
                };
                let origin = *self.current;
                self.types.insert(
                    key.clone(),
                    UserType {
                        name: key,
                        kind,
                        origin,
                    },
                );
            }
            "view" | "materialized view" => {
                let key = self.creation_key(&name, temporary);
                let kind = match kind.as_str() {
                    "view" => crate::schema::RelationKind::View,
                    _ => crate::schema::RelationKind::MaterializedView,
                };
                self.insert_relation(crate::schema::Relation {
                    name: key,
                    kind,
                    columns: Vec::new(),
                    constraints: Vec::new(),
                    partition_of: None,
                    partition_key: None,
                    definition: None,
                    origin: *self.current,
                });
            }
            _ => {}
        }
    }
}

/// A table key as SQL text, for a statement rebuilt around it.
fn quoted_name(name: &ObjectName) -> String {
    match &name.schema {
        Some(schema) => format!(
            "{}.{}",
            naming::quote_ident(schema),
            naming::quote_ident(&name.name)
        ),
        None => naming::quote_ident(&name.name),
    }
}

/// The significant tokens of `text`.
fn significant_tokens(text: &str) -> Vec<Token> {
    tokenize(text, 0..text.len())
        .into_iter()
        .filter(|t| !t.kind.is_trivia())
        .collect()
}

/// The comma-separated items of `sql.tokens[start..end]` (commas inside parentheses do not
/// count), as token ranges; empty items are left out.
fn split_list(sql: &Sql, start: usize, end: usize) -> Vec<std::ops::Range<usize>> {
    let end = end.min(sql.tokens.len());
    let mut items = Vec::new();
    let mut depth = 0usize;
    let mut item_start = start;
    for i in start..end {
        let token = &sql.tokens[i];
        match token.kind {
            TokenKind::LParen => depth += 1,
            TokenKind::RParen => depth = depth.saturating_sub(1),
            TokenKind::Punct if depth == 0 && &sql.text[token.range()] == "," => {
                items.push(item_start..i);
                item_start = i + 1;
            }
            _ => {}
        }
    }
    items.push(item_start..end);
    items.retain(|item| !item.is_empty());
    items
}

/// A statement (or part of one) as its text and significant tokens.
struct Sql<'a> {
    text: &'a str,
    tokens: &'a [Token],
}

impl<'a> Sql<'a> {
    fn cursor(&self) -> Cursor<'a> {
        Cursor {
            text: self.text,
            tokens: self.tokens,
            at: 0,
        }
    }

    /// The tokens `range` of this statement.
    fn slice(&self, range: std::ops::Range<usize>) -> Sql<'a> {
        Sql {
            text: self.text,
            tokens: &self.tokens[range],
        }
    }

    /// The original text from token `start` to the end of token `end - 1` (empty when
    /// `start >= end`).
    fn between(&self, start: usize, end: usize) -> &'a str {
        match (
            self.tokens.get(start),
            end.checked_sub(1).and_then(|e| self.tokens.get(e)),
        ) {
            (Some(first), Some(last)) if start < end => {
                &self.text[first.range().start..last.range().end]
            }
            _ => "",
        }
    }

    fn word(&self, i: usize) -> Option<String> {
        let token = self.tokens.get(i)?;
        (token.kind == TokenKind::Word).then(|| self.text[token.range()].to_ascii_lowercase())
    }

    /// The text with what sqlparser rejects rewritten into what it accepts, meaning unchanged:
    /// the word after `REFERENCES` quoted (a keyword such as `comment` as a table name), `ON ONLY`
    /// and `DROP INDEX CONCURRENTLY` without their keyword (the caller remembers it),
    /// `ALTER … IF EXISTS` without `IF EXISTS`, and `LIKE …` options reduced to the one sqlparser
    /// knows.
    fn repaired(&self) -> String {
        let mut edits: Vec<(usize, &str)> = Vec::new();
        let mut quoted = Vec::new();
        let mut including_defaults = false;
        for i in 0..self.tokens.len() {
            let word = self.word(i);
            let previous = i.checked_sub(1).and_then(|p| self.word(p));
            match (previous.as_deref(), word.as_deref()) {
                (Some("references"), Some(name)) => quoted.push((i, format!("\"{name}\""))),
                (Some("on"), Some("only")) => edits.push((i, "")),
                (Some("index"), Some("concurrently"))
                    if self.word(0).as_deref() == Some("drop") =>
                {
                    edits.push((i, ""))
                }
                (_, Some("including" | "excluding")) => {
                    let option = self.word(i + 1);
                    let defaults = matches!(option.as_deref(), Some("all" | "defaults"))
                        && word.as_deref() == Some("including");
                    if defaults && !including_defaults {
                        including_defaults = true;
                        edits.push((i + 1, "DEFAULTS"));
                    } else {
                        edits.push((i, ""));
                        edits.push((i + 1, ""));
                    }
                }
                _ => {}
            }
        }
        let alter_if_exists = matches!(self.word(0).as_deref(), Some("alter"))
            && !matches!(self.word(1).as_deref(), Some("table"))
            && self.word(2).as_deref() == Some("if")
            && self.word(3).as_deref() == Some("exists");
        if alter_if_exists {
            edits.push((2, ""));
            edits.push((3, ""));
        }
        let mut replacements: Vec<(usize, String)> = edits
            .into_iter()
            .map(|(i, text)| (i, text.to_owned()))
            .chain(quoted)
            .collect();
        replacements.sort_by_key(|(i, _)| *i);
        replacements.dedup_by_key(|(i, _)| *i);
        let (Some(first), Some(last)) = (self.tokens.first(), self.tokens.last()) else {
            return String::new();
        };
        let mut text = String::new();
        let mut at = first.range().start;
        for (i, replacement) in replacements {
            let Some(token) = self.tokens.get(i) else {
                continue;
            };
            text.push_str(&self.text[at..token.range().start]);
            text.push_str(&replacement);
            at = token.range().end;
        }
        text.push_str(&self.text[at..last.range().end]);
        text
    }

    /// The column of `[ADD] [CONSTRAINT name] NOT NULL column`, PostgreSQL 18's named NOT NULL.
    fn not_null_constraint(&self) -> Option<String> {
        let mut cursor = self.cursor();
        cursor.eat(&["add"]);
        if cursor.eat(&["constraint"]) {
            cursor.ident()?;
        }
        if !cursor.eat(&["not", "null"]) {
            return None;
        }
        let column = cursor.ident()?;
        (cursor.at == self.tokens.len()).then_some(column)
    }
}

/// Reads a statement's tokens from left to right.
#[derive(Clone)]
struct Cursor<'a> {
    text: &'a str,
    tokens: &'a [Token],
    at: usize,
}

impl Cursor<'_> {
    fn word(&self) -> Option<String> {
        let token = self.tokens.get(self.at)?;
        (token.kind == TokenKind::Word).then(|| self.text[token.range()].to_ascii_lowercase())
    }

    fn is(&self, keyword: &str) -> bool {
        self.word().as_deref() == Some(keyword)
    }

    /// Consumes the keywords if they come next, all of them.
    fn eat(&mut self, keywords: &[&str]) -> bool {
        let matches = keywords.iter().enumerate().all(|(i, keyword)| {
            let token = self.tokens.get(self.at + i);
            token.is_some_and(|t| {
                t.kind == TokenKind::Word && self.text[t.range()].eq_ignore_ascii_case(keyword)
            })
        });
        if matches {
            self.at += keywords.len();
        }
        matches
    }

    /// Consumes keywords the classification already established.
    fn expect(&mut self, keywords: &[&str]) {
        self.eat(keywords);
    }

    fn eat_punct(&mut self, punct: &str) -> bool {
        let matches = self
            .tokens
            .get(self.at)
            .is_some_and(|t| t.kind == TokenKind::Punct && &self.text[t.range()] == punct);
        if matches {
            self.at += 1;
        }
        matches
    }

    /// A cursor just after the first occurrence of the keywords from here on.
    fn find(&self, keywords: &[&str]) -> Option<Self> {
        (self.at..self.tokens.len()).find_map(|at| {
            let mut cursor = Cursor { at, ..self.clone() };
            cursor.eat(keywords).then_some(cursor)
        })
    }

    /// One identifier, folded and truncated.
    fn ident(&mut self) -> Option<String> {
        let token = self.tokens.get(self.at)?;
        let raw = &self.text[token.range()];
        let ident = match token.kind {
            TokenKind::Word => raw.to_lowercase(),
            TokenKind::QuotedIdent if raw.starts_with('"') && raw.len() >= 2 => {
                raw[1..raw.len() - 1].replace("\"\"", "\"")
            }
            _ => return None,
        };
        self.at += 1;
        Some(naming::truncate_identifier(&ident))
    }

    /// A possibly qualified name (`a`, `a.b`, `"A"."b"`).
    fn name(&mut self) -> Option<ObjectName> {
        let mut parts = vec![self.ident()?];
        while self
            .tokens
            .get(self.at)
            .is_some_and(|t| t.kind == TokenKind::Punct && &self.text[t.range()] == ".")
        {
            self.at += 1;
            parts.push(self.ident()?);
        }
        let name = parts.pop()?;
        Some(ObjectName {
            schema: parts.pop(),
            name,
        })
    }
}
