//! `ALTER TABLE … ADD CHECK` without `NOT VALID` validates every existing row while it holds ACCESS
//! EXCLUSIVE on the table: nothing can read or write it until the scan is done.
//!
//! This file also holds the small helpers the `ALTER TABLE` rules of this batch share (where each
//! operation of a multi-operation `ALTER TABLE` starts, and how to write a name back as SQL).

use sqlparser::ast::{AlterTableOperation, Statement as Ast, TableConstraint};

use super::{Category, Diagnostic, Rule, Severity, StatementContext};
use crate::sql::name::fold_ident;
use crate::sql::{ObjectName, TokenKind};

pub const RULE: Rule = Rule {
    id: "add-check-without-not-valid",
    category: Category::Locking,
    default_severity: Severity::Error,
    summary: "ADD CHECK without NOT VALID scans the table under ACCESS EXCLUSIVE",
    doc: include_str!("../../rules/add-check-without-not-valid.md"),
    check,
};

fn check(cx: &StatementContext, out: &mut Vec<Diagnostic>) {
    let Some(alter) = AlterTable::of(cx) else {
        return;
    };
    let name = cx.qualified(&alter.table);
    let table_sql = sql_name(&cx.catalog.resolve(&alter.table));
    for (i, operation) in alter.operations.iter().enumerate() {
        let AlterTableOperation::AddConstraint {
            constraint: TableConstraint::Check(check),
            not_valid: false,
        } = operation
        else {
            continue;
        };
        // PostgreSQL 18's NOT ENFORCED constraints are never validated.
        if check.enforced == Some(false) {
            continue;
        }
        let constraint = check.name.as_ref().map(fold_ident);
        let (what, named) = match &constraint {
            Some(c) => (format!("ADD CONSTRAINT {c} CHECK"), sql_ident(c)),
            None => ("ADD CHECK".to_owned(), "<name>".to_owned()),
        };
        out.push(cx.diagnostic(
            alter.offset(cx, i),
            Some(&alter.table),
            format!(
                "{what} on existing table {name} takes ACCESS EXCLUSIVE and scans every row to \
                 validate the constraint: reads and writes on {name} are blocked until the scan finishes"
            ),
            format!(
                "add it as NOT VALID first (`ALTER TABLE {table_sql} ADD CONSTRAINT {named} CHECK ({}) \
                 NOT VALID;` checks only new rows and is instant), then run `ALTER TABLE {table_sql} \
                 VALIDATE CONSTRAINT {named};` in a separate transaction: it scans under SHARE UPDATE \
                 EXCLUSIVE, so reads and writes continue",
                check.expr
            ),
        ));
    }
}

/// An `ALTER TABLE` statement as the rules of this batch read it: its table, its operations, and
/// where each operation starts in the file (so a finding points at its own clause).
pub(super) struct AlterTable<'a> {
    pub table: ObjectName,
    pub operations: &'a [AlterTableOperation],
    offsets: Vec<usize>,
}

impl<'a> AlterTable<'a> {
    /// The parsed `ALTER TABLE` of this statement, if it is one.
    pub fn of(cx: &StatementContext<'a>) -> Option<AlterTable<'a>> {
        let Some(Ast::AlterTable(alter)) = &cx.statement.ast else {
            return None;
        };
        Some(AlterTable {
            table: ObjectName::from_ast(&alter.name)?,
            operations: &alter.operations,
            offsets: operation_offsets(cx),
        })
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
    let text = |i: usize| tokens.get(i).map_or("", |t| &cx.text[t.range.clone()]);
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
            offsets.push(token.range.start);
            starts_here = false;
        }
        match token.kind {
            TokenKind::LParen => depth += 1,
            TokenKind::RParen => depth = depth.saturating_sub(1),
            TokenKind::Punct if depth == 0 && &cx.text[token.range.clone()] == "," => {
                starts_here = true;
            }
            _ => {}
        }
    }
    offsets
}

/// An identifier as SQL must write it: bare when PostgreSQL would fold it to itself, else quoted.
pub(super) fn sql_ident(ident: &str) -> String {
    let bare = ident
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && ident
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '$');
    if bare {
        ident.to_owned()
    } else {
        format!("\"{}\"", ident.replace('"', "\"\""))
    }
}

/// A (qualified) name as SQL must write it.
pub(super) fn sql_name(name: &ObjectName) -> String {
    match &name.schema {
        Some(schema) => format!("{}.{}", sql_ident(schema), sql_ident(&name.name)),
        None => sql_ident(&name.name),
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::testing::check_rule;

    const RULE: &str = "add-check-without-not-valid";
    const USERS: &str = "CREATE TABLE users (id bigint PRIMARY KEY, age int, email text);";

    #[test]
    fn fires_on_an_existing_table() {
        assert_eq!(
            check_rule(
                RULE,
                &[USERS],
                "ALTER TABLE users ADD CONSTRAINT users_age_check CHECK (age >= 0);"
            ),
            "\
error[add-check-without-not-valid]: ADD CONSTRAINT users_age_check CHECK on existing table public.users takes ACCESS EXCLUSIVE and scans every row to validate the constraint: reads and writes on public.users are blocked until the scan finishes
 --> migration.sql:1:19
  |
1 | ALTER TABLE users ADD CONSTRAINT users_age_check CHECK (age >= 0);
  |                   ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
  |
  = help: add it as NOT VALID first (`ALTER TABLE public.users ADD CONSTRAINT users_age_check CHECK (age >= 0) NOT VALID;` checks only new rows and is instant), then run `ALTER TABLE public.users VALIDATE CONSTRAINT users_age_check;` in a separate transaction: it scans under SHARE UPDATE EXCLUSIVE, so reads and writes continue

"
        );
    }

    #[test]
    fn points_at_each_operation_of_a_multi_operation_alter() {
        let report = check_rule(
            RULE,
            &[USERS],
            "ALTER TABLE ONLY public.\"users\"\n  ADD CHECK (age > 0),\n  ADD CONSTRAINT \"Email\" CHECK (email <> '');",
        );
        assert!(
            report.contains("ADD CHECK on existing table public.users"),
            "{report}"
        );
        assert!(report.contains("migration.sql:2:3"), "{report}");
        assert!(report.contains("ADD CONSTRAINT Email CHECK"), "{report}");
        assert!(report.contains("migration.sql:3:3"), "{report}");
        assert!(
            report.contains("VALIDATE CONSTRAINT \"Email\";"),
            "{report}"
        );
    }

    #[test]
    fn fires_on_a_table_the_model_does_not_know() {
        let report = check_rule(RULE, &[], "ALTER TABLE \"Order\" ADD CHECK (total >= 0);");
        assert!(report.contains("existing table public.Order"), "{report}");
        assert!(
            report.contains("ALTER TABLE public.\"Order\" ADD CONSTRAINT <name>"),
            "{report}"
        );
    }

    #[test]
    fn silent_when_not_valid_on_a_new_table_or_for_other_constraints() {
        for sql in [
            "ALTER TABLE users ADD CONSTRAINT users_age_check CHECK (age >= 0) NOT VALID;",
            "ALTER TABLE users VALIDATE CONSTRAINT users_age_check;",
            "CREATE TABLE events (id bigint, n int);\nALTER TABLE events ADD CONSTRAINT n_positive CHECK (n > 0);",
            "CREATE TABLE events (id bigint, n int CHECK (n > 0));",
            "ALTER TABLE users ADD CONSTRAINT users_email_key UNIQUE (email);",
        ] {
            assert_eq!(check_rule(RULE, &[USERS], sql), "", "{sql}");
        }
    }
}
