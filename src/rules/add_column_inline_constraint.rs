//! `ALTER TABLE … ADD COLUMN` with an inline `CHECK`, `UNIQUE`, `PRIMARY KEY` or `REFERENCES` does the
//! constraint's work inside the ALTER TABLE, under its ACCESS EXCLUSIVE lock: a CHECK scans every row,
//! UNIQUE and PRIMARY KEY build an index, REFERENCES also locks the referenced table against writes
//! (and, with a DEFAULT, checks every row against it). Adding the column bare and the constraint in
//! its online form afterwards keeps the lock short.

use std::ops::Range;

use sqlparser::ast::{AlterTableOperation, ColumnOption};

use super::syntax::{sql_ident, sql_name, AlterTable};
use super::{kinds, Category, Diagnostic, Kinds, Rule, Severity, StatementContext};
use crate::pg::locks::Words;
use crate::sql::name::fold_ident;
use crate::sql::{Kind, ObjectName, TokenKind};

pub const RULE: Rule = Rule {
    id: "add-column-inline-constraint",
    category: Category::Locking,
    default_severity: Severity::Warning,
    size_graded: true,
    summary: "ADD COLUMN with an inline CHECK, UNIQUE, PRIMARY KEY or REFERENCES",
    doc: include_str!("../../rules/add-column-inline-constraint.md"),
    check,
    kinds: Kinds::Only(&[kinds::ALTER]),
};

/// What an inline constraint is.
enum InlineKind {
    /// The expression as written, when known.
    Check(Option<String>),
    Unique,
    PrimaryKey,
    /// The referenced table and its key list as written (`(id)`, or "" for its primary key).
    References(Option<ObjectName>, String),
}

/// One inline constraint of an `ADD COLUMN`.
struct Inline {
    /// Where its keyword is.
    offset: usize,
    column: String,
    /// `CONSTRAINT name`, when given.
    name: Option<String>,
    kind: InlineKind,
    /// The column has a DEFAULT: existing rows get a value the constraint must check.
    has_default: bool,
}

fn check(cx: &StatementContext, out: &mut Vec<Diagnostic>) {
    let Some((table, inline)) = inline_constraints(cx) else {
        return;
    };
    let name = cx.qualified(&table);
    let table_sql = sql_name(&cx.catalog.resolve(&table));
    for constraint in inline {
        let column = &constraint.column;
        let column_sql = sql_ident(column);
        let named = |suffix: &str| {
            sql_ident(&constraint.name.clone().unwrap_or_else(|| match suffix {
                "pkey" => format!("{}_pkey", table.name),
                _ => format!("{}_{column}_{suffix}", table.name),
            }))
        };
        let (what, help) = match &constraint.kind {
            InlineKind::Check(expr) => (
                format!(
                    "CHECK on existing table {name}: the ALTER TABLE validates it against every existing \
                     row while holding ACCESS EXCLUSIVE, so reads and writes on {name} are blocked during \
                     the scan"
                ),
                format!(
                    "add the column without it, then `ALTER TABLE {table_sql} ADD CONSTRAINT {} CHECK ({}) \
                     NOT VALID;` (instant) and `ALTER TABLE {table_sql} VALIDATE CONSTRAINT {};` in a separate \
                     transaction (scans under SHARE UPDATE EXCLUSIVE: reads and writes continue)",
                    named("check"),
                    expr.as_deref().unwrap_or("…"),
                    named("check"),
                ),
            ),
            InlineKind::Unique | InlineKind::PrimaryKey => {
                let (keyword, suffix) = match constraint.kind {
                    InlineKind::Unique => ("UNIQUE", "key"),
                    _ => ("PRIMARY KEY", "pkey"),
                };
                (
                    format!(
                        "{keyword} on existing table {name}: the ALTER TABLE builds its unique index while \
                         holding ACCESS EXCLUSIVE, so reads and writes on {name} are blocked while the table \
                         is scanned and sorted"
                    ),
                    format!(
                        "add the column without it, then `CREATE UNIQUE INDEX CONCURRENTLY {idx} ON {table_sql} \
                         ({column_sql});` (outside a transaction block) and `ALTER TABLE {table_sql} ADD \
                         CONSTRAINT {idx} {keyword} USING INDEX {idx};`{}",
                        cx.settings.concurrent_build_caveat().unwrap_or_default(),
                        idx = named(suffix)
                    ),
                )
            }
            InlineKind::References(referenced, columns) => {
                let other = referenced
                    .as_ref()
                    .map_or_else(|| "the referenced table".to_owned(), |r| cx.qualified(r));
                let scan = if constraint.has_default {
                    format!(", and with the DEFAULT every existing row is checked against {other}")
                } else {
                    String::new()
                };
                let other_sql = referenced
                    .as_ref()
                    .map_or_else(|| "…".to_owned(), |r| sql_name(&cx.catalog.resolve(r)));
                (
                    format!(
                        "REFERENCES on existing table {name}: the ALTER TABLE takes SHARE ROW EXCLUSIVE \
                         on {other} (blocking writes to it) while holding ACCESS EXCLUSIVE on {name}{scan}"
                    ),
                    format!(
                        "add the column without it, then `ALTER TABLE {table_sql} ADD CONSTRAINT {fk} FOREIGN \
                         KEY ({column_sql}) REFERENCES {other_sql}{columns} NOT VALID;` and `ALTER TABLE \
                         {table_sql} VALIDATE CONSTRAINT {fk};` in a separate transaction, each with a short \
                         lock_timeout",
                        fk = named("fkey")
                    ),
                )
            }
        };
        out.push(cx.diagnostic(
            constraint.offset,
            Some(&table),
            format!("ADD COLUMN {column} with an inline {what}"),
            help,
        ));
    }
}

/// The table of an `ALTER TABLE` and the inline constraints of the columns it adds.
fn inline_constraints(cx: &StatementContext) -> Option<(ObjectName, Vec<Inline>)> {
    if let Some(alter) = AlterTable::of(cx) {
        let mut found = Vec::new();
        for (i, operation) in alter.operations.iter().enumerate() {
            let AlterTableOperation::AddColumn { column_def, .. } = operation else {
                continue;
            };
            let range = alter.offset(cx, i)..operation_end(cx, alter, i);
            let has_default = column_def
                .options
                .iter()
                .any(|o| matches!(o.option, ColumnOption::Default(_)));
            let mut seen = Vec::new();
            for option in &column_def.options {
                let (keyword, kind) = match &option.option {
                    ColumnOption::Check(check) => {
                        ("check", InlineKind::Check(Some(check.expr.to_string())))
                    }
                    ColumnOption::Unique(_) => ("unique", InlineKind::Unique),
                    ColumnOption::PrimaryKey(_) => ("primary", InlineKind::PrimaryKey),
                    ColumnOption::ForeignKey(fk) => {
                        let columns = fk
                            .referred_columns
                            .iter()
                            .map(fold_ident)
                            .map(|c| sql_ident(&c));
                        let columns: Vec<String> = columns.collect();
                        let columns = if columns.is_empty() {
                            String::new()
                        } else {
                            format!(" ({})", columns.join(", "))
                        };
                        (
                            "references",
                            InlineKind::References(
                                ObjectName::from_ast(&fk.foreign_table),
                                columns,
                            ),
                        )
                    }
                    _ => continue,
                };
                // The n-th such keyword of the operation, for the n-th such option.
                let nth = seen.iter().filter(|k| **k == keyword).count();
                seen.push(keyword);
                found.push(Inline {
                    offset: keyword_offset(cx, range.clone(), keyword, nth).unwrap_or(range.start),
                    column: fold_ident(&column_def.name),
                    name: option.name.as_ref().map(fold_ident),
                    kind,
                    has_default,
                });
            }
        }
        return Some((alter.table.clone(), found));
    }
    let statement = cx.statement;
    if statement.ast().is_some() || statement.class.kind != Kind::AlterTable {
        return None;
    }
    let words = Words::of(cx.text, statement);
    let found = words
        .alter_table_clauses()
        .into_iter()
        .flat_map(|clause| from_tokens(&words, clause))
        .collect();
    Some((statement.class.target.clone()?, found))
}

/// Where operation `i` of the ALTER TABLE ends: where the next one starts, or the statement's end.
fn operation_end(cx: &StatementContext, alter: &AlterTable, i: usize) -> usize {
    if i + 1 < alter.operations.len() {
        alter.offset(cx, i + 1)
    } else {
        cx.statement.range.end
    }
}

/// The file offset of the `nth` occurrence of `keyword` among the statement's tokens in `range`.
fn keyword_offset(
    cx: &StatementContext,
    range: Range<usize>,
    keyword: &str,
    nth: usize,
) -> Option<usize> {
    cx.statement
        .tokens
        .iter()
        .filter(|t| range.contains(&t.range.start))
        .filter(|t| {
            t.kind == TokenKind::Word && cx.text[t.range.clone()].eq_ignore_ascii_case(keyword)
        })
        .nth(nth)
        .map(|t| t.range.start)
}

/// `ADD [COLUMN] [IF NOT EXISTS] name type … {CHECK (…) | UNIQUE | PRIMARY KEY | REFERENCES t (…)}`
/// from tokens, for statements sqlparser could not read.
fn from_tokens(words: &Words, clause: Range<usize>) -> Vec<Inline> {
    let mut at = clause.start;
    if !words.is(at, "add") {
        return Vec::new();
    }
    at += 1;
    if [
        "constraint",
        "unique",
        "primary",
        "exclude",
        "check",
        "foreign",
    ]
    .iter()
    .any(|kw| words.is(at, kw))
    {
        return Vec::new();
    }
    if words.is(at, "column") {
        at += 1;
    }
    if words.seq_at(at, &["if", "not", "exists"]) {
        at += 3;
    }
    let Some(column) = words.name_at(at).map(|n| n.name) else {
        return Vec::new();
    };
    let has_default = words.find_in(clause.clone(), &["default"]).is_some();
    let mut found = Vec::new();
    for i in at + 1..clause.end {
        let kind = if words.is(i, "check") {
            let close = words.skip_parens(i + 1);
            let expr = words.text_of(i + 2..close.saturating_sub(1));
            InlineKind::Check((!expr.is_empty()).then(|| expr.to_owned()))
        } else if words.is(i, "unique") {
            InlineKind::Unique
        } else if words.seq_at(i, &["primary", "key"]) {
            InlineKind::PrimaryKey
        } else if words.is(i, "references") {
            let after = words.after_name(i + 1);
            let columns = words.text_of(after..words.skip_parens(after));
            let columns = if columns.is_empty() {
                String::new()
            } else {
                format!(" {columns}")
            };
            InlineKind::References(words.name_at(i + 1), columns)
        } else {
            continue;
        };
        let name = words
            .is(i.saturating_sub(2), "constraint")
            .then(|| words.name_at(i - 1).map(|n| n.name))
            .flatten();
        if let Some(offset) = words.offset(i) {
            found.push(Inline {
                offset,
                column: column.clone(),
                name,
                kind,
                has_default,
            });
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use crate::rules::testing::check_rule;

    const RULE: &str = "add-column-inline-constraint";
    const SCHEMA: &str = "CREATE TABLE users (id bigint PRIMARY KEY, email text);\n\
                          CREATE TABLE orders (id bigint PRIMARY KEY, total numeric);";

    #[test]
    fn fires_on_an_inline_check() {
        assert_eq!(
            check_rule(
                RULE,
                &[SCHEMA],
                "ALTER TABLE orders ADD COLUMN discount numeric CHECK (discount >= 0);"
            ),
            "\
warning[add-column-inline-constraint]: ADD COLUMN discount with an inline CHECK on existing table public.orders: the ALTER TABLE validates it against every existing row while holding ACCESS EXCLUSIVE, so reads and writes on public.orders are blocked during the scan
 --> migration.sql:1:48
  |
1 | ALTER TABLE orders ADD COLUMN discount numeric CHECK (discount >= 0);
  |                                                ^^^^^^^^^^^^^^^^^^^^^
  |
  = help: add the column without it, then `ALTER TABLE public.orders ADD CONSTRAINT orders_discount_check CHECK (discount >= 0) NOT VALID;` (instant) and `ALTER TABLE public.orders VALIDATE CONSTRAINT orders_discount_check;` in a separate transaction (scans under SHARE UPDATE EXCLUSIVE: reads and writes continue)

"
        );
    }

    #[test]
    fn reports_each_inline_constraint_at_its_keyword() {
        let report = check_rule(
            RULE,
            &[SCHEMA],
            "ALTER TABLE orders ADD COLUMN user_id bigint DEFAULT 0 CONSTRAINT orders_user_fk REFERENCES users (id), \
             ADD COLUMN code text UNIQUE;",
        );
        assert_eq!(report.matches("warning[").count(), 2, "{report}");
        assert!(
            report.contains("ADD COLUMN user_id with an inline REFERENCES on existing table public.orders: the ALTER TABLE takes SHARE ROW EXCLUSIVE on public.users (blocking writes to it) while holding ACCESS EXCLUSIVE on public.orders, and with the DEFAULT every existing row is checked against public.users"),
            "{report}"
        );
        assert!(
            report.contains("ADD CONSTRAINT orders_user_fk FOREIGN KEY (user_id) REFERENCES public.users (id) NOT VALID;`"),
            "{report}"
        );
        assert!(
            report.contains(
                "`CREATE UNIQUE INDEX CONCURRENTLY orders_code_key ON public.orders (code);`"
            ),
            "{report}"
        );
        assert!(report.contains("--> migration.sql:1:82"), "{report}");
        assert!(report.contains("--> migration.sql:1:126"), "{report}");
    }

    #[test]
    fn fires_when_sqlparser_cannot_parse_the_statement() {
        let report = check_rule(
            RULE,
            &[SCHEMA],
            "ALTER TABLE orders ADD COLUMN ref text PRIMARY KEY, ALTER COLUMN total SET STATISTICS 100;",
        );
        assert!(report.contains("ADD COLUMN ref with an inline PRIMARY KEY on existing table public.orders: the ALTER TABLE builds its unique index"), "{report}");
        assert!(
            report.contains("ADD CONSTRAINT orders_pkey PRIMARY KEY USING INDEX orders_pkey;`"),
            "{report}"
        );
    }

    #[test]
    fn silent_on_plain_columns_table_constraints_and_new_tables() {
        for sql in [
            "ALTER TABLE orders ADD COLUMN note text NOT NULL DEFAULT '';",
            "ALTER TABLE orders ADD CONSTRAINT orders_total_check CHECK (total >= 0) NOT VALID;",
            "CREATE TABLE t (id bigint);\nALTER TABLE t ADD COLUMN code text UNIQUE CHECK (code <> '');",
        ] {
            assert_eq!(check_rule(RULE, &[SCHEMA], sql), "", "{sql}");
        }
    }
}
