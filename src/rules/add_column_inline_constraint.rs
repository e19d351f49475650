//! `ALTER TABLE … ADD COLUMN` with an inline `CHECK`, `UNIQUE`, `PRIMARY KEY` or `REFERENCES` does the
//! constraint's work inside the ALTER TABLE, under its ACCESS EXCLUSIVE lock: a CHECK scans every row,
//! UNIQUE and PRIMARY KEY build an index, REFERENCES also locks the referenced table against writes
//! (and, with a DEFAULT, checks every row against it). Adding the column bare and the constraint in
//! its online form afterwards keeps the lock short: the fixer drafts exactly that, from the
//! statement's own text, and the help quotes its steps.

use std::ops::Range;

use sqlparser::ast::{AlterTableOperation, ColumnOption};

use super::add_unique_constraint::{index_then_constraint, IndexConstraint, IndexConstraintKind};
use super::fix::{not_valid_then_validate, Fix, Step};
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
    Check,
    Unique,
    PrimaryKey,
    /// The referenced table, when known.
    References(Option<ObjectName>),
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

/// Where an inline constraint sits among the statement's tokens.
struct Located {
    /// The `ADD COLUMN` clause holding it.
    clause: Range<usize>,
    /// The constraint, its `CONSTRAINT name` included.
    span: Range<usize>,
    /// Its keyword (`CHECK`, `UNIQUE`, `PRIMARY`, `REFERENCES`).
    keyword: usize,
}

fn check(cx: &StatementContext, out: &mut Vec<Diagnostic>) {
    let Some((table, inline)) = inline_constraints(cx) else {
        return;
    };
    if !cx.keeps_finding_on(&table) {
        return;
    }
    let name = cx.qualified(&table);
    let table_sql = sql_name(&cx.catalog.resolve(&table));
    let words = Words::of(cx.text, cx.statement);
    let clauses = words.alter_table_clauses();
    let located: Vec<Option<Located>> = inline
        .iter()
        .map(|constraint| locate(&words, &clauses, constraint.offset))
        .collect();
    // The steps of each constraint: its column added bare, then the constraint in its online form.
    let steps: Vec<Option<(Step, Vec<Step>)>> = inline
        .iter()
        .zip(&located)
        .map(|(constraint, at)| {
            let at = at.as_ref()?;
            let spans: Vec<Range<usize>> = located
                .iter()
                .flatten()
                .filter(|other| other.clause == at.clause)
                .map(|other| other.span.clone())
                .collect();
            let column = column_step(&words, &table_sql, at.clause.clone(), &spans);
            Some((
                column,
                constraint_steps(&words, &table, &table_sql, constraint, at),
            ))
        })
        .collect();
    // A fix replaces the whole statement: one, on the first finding, when the statement is this one
    // clause (the column bare, then each of its constraints).
    let mut fix = (cx.fixable() && clauses.len() == 1)
        .then(|| {
            let mut all = vec![steps.first()?.as_ref()?.0.clone()];
            for constraint in &steps {
                all.extend(constraint.as_ref()?.1.iter().cloned());
            }
            Some(Fix::replace(all))
        })
        .flatten();
    for (constraint, steps) in inline.iter().zip(steps) {
        let (what, help) = explain(cx, &name, constraint, steps);
        out.push(
            cx.diagnostic(
                constraint.offset,
                Some(&table),
                format!("ADD COLUMN {} with an inline {what}", constraint.column),
                help,
            )
            .with_fix(fix.take()),
        );
    }
}

/// What the constraint does under the lock, and the help quoting its steps.
fn explain(
    cx: &StatementContext,
    name: &str,
    constraint: &Inline,
    steps: Option<(Step, Vec<Step>)>,
) -> (String, String) {
    let quoted = |i: usize| {
        steps
            .as_ref()
            .and_then(|(column, rest)| match i {
                0 => Some(column.sql.clone()),
                i => rest.get(i - 1).map(|step| step.sql.clone()),
            })
            .unwrap_or_else(|| "…".to_owned())
    };
    let bare = format!("add the column without it (`{}`), then", quoted(0));
    match &constraint.kind {
        InlineKind::Check => (
            format!(
                "CHECK on existing table {name}: the ALTER TABLE validates it against every existing \
                 row while holding ACCESS EXCLUSIVE, so reads and writes on {name} are blocked during \
                 the scan"
            ),
            format!(
                "{bare} `{}` (instant) and `{}` in a separate transaction (scans under SHARE UPDATE \
                 EXCLUSIVE: reads and writes continue)",
                quoted(1),
                quoted(2)
            ),
        ),
        InlineKind::Unique | InlineKind::PrimaryKey => {
            let keyword = match constraint.kind {
                InlineKind::Unique => "UNIQUE",
                _ => "PRIMARY KEY",
            };
            (
                format!(
                    "{keyword} on existing table {name}: the ALTER TABLE builds its unique index while \
                     holding ACCESS EXCLUSIVE, so reads and writes on {name} are blocked while the table \
                     is scanned and sorted"
                ),
                format!(
                    "{bare} `{}` (outside a transaction block) and `{}`{}",
                    quoted(1),
                    quoted(2),
                    cx.settings.concurrent_build_caveat().unwrap_or_default(),
                ),
            )
        }
        InlineKind::References(referenced) => {
            let other = referenced
                .as_ref()
                .map_or_else(|| "the referenced table".to_owned(), |r| cx.qualified(r));
            let scan = if constraint.has_default {
                format!(", and with the DEFAULT every existing row is checked against {other}")
            } else {
                String::new()
            };
            (
                format!(
                    "REFERENCES on existing table {name}: the ALTER TABLE takes SHARE ROW EXCLUSIVE \
                     on {other} (blocking writes to it) while holding ACCESS EXCLUSIVE on {name}{scan}"
                ),
                format!(
                    "{bare} `{}` and `{}` in a separate transaction, each with a short lock_timeout",
                    quoted(1),
                    quoted(2)
                ),
            )
        }
    }
}

/// The inline constraint whose keyword starts at file offset `offset`: its clause and its tokens.
fn locate(words: &Words, clauses: &[Range<usize>], offset: usize) -> Option<Located> {
    let keyword = (0..words.len()).find(|&i| words.offset(i) == Some(offset))?;
    let clause = clauses.iter().find(|c| c.contains(&keyword))?.clone();
    let named = keyword >= clause.start + 2 && words.is(keyword - 2, "constraint");
    let start = if named { keyword - 2 } else { keyword };
    Some(Located {
        span: start..constraint_end(words, keyword, clause.end),
        clause,
        keyword,
    })
}

/// Token index just past the inline constraint whose keyword is at `keyword`: where the column's
/// next constraint starts, or the clause ends. Parenthesized groups are skipped; `NULL` and
/// `DEFAULT` after `SET` are a foreign key's action, and `NOT` belongs to the next constraint only
/// in `NOT NULL`.
fn constraint_end(words: &Words, keyword: usize, end: usize) -> usize {
    const STARTS: [&str; 7] = [
        "constraint",
        "check",
        "generated",
        "unique",
        "primary",
        "references",
        "collate",
    ];
    let mut i = keyword + 1;
    while i < end {
        if words.is_lparen(i) {
            i = words.skip_parens(i);
            continue;
        }
        let action = words.is(i - 1, "set");
        if STARTS.iter().any(|k| words.is(i, k))
            || (!action && (words.is(i, "null") || words.is(i, "default")))
            || words.seq_at(i, &["not", "null"])
        {
            return i;
        }
        i += 1;
    }
    end
}

/// `ALTER TABLE t ADD COLUMN …` as written, without the inline constraints at `spans`: instant.
fn column_step(
    words: &Words,
    table_sql: &str,
    clause: Range<usize>,
    spans: &[Range<usize>],
) -> Step {
    let mut parts = Vec::new();
    let mut at = clause.start;
    for span in spans {
        parts.push(words.text_of(at..span.start));
        at = span.end;
    }
    parts.push(words.text_of(at..clause.end));
    let column: Vec<&str> = parts
        .iter()
        .map(|p| p.trim())
        .filter(|p| !p.is_empty())
        .collect();
    Step::transactional(
        format!("ALTER TABLE {table_sql} {};", column.join(" ")),
        "adds the column without its constraints: instant",
    )
}

/// The constraint in its online form, from its text as written: CHECK and REFERENCES added NOT VALID
/// and validated in a transaction of their own, UNIQUE and PRIMARY KEY on an index built
/// CONCURRENTLY.
fn constraint_steps(
    words: &Words,
    table: &ObjectName,
    table_sql: &str,
    constraint: &Inline,
    at: &Located,
) -> Vec<Step> {
    let column = &constraint.column;
    let column_sql = sql_ident(column);
    let named = |suffix: &str| {
        constraint.name.clone().unwrap_or_else(|| match suffix {
            "pkey" => format!("{}_pkey", table.name),
            _ => format!("{}_{column}_{suffix}", table.name),
        })
    };
    let written = words.text_of(at.keyword..at.span.end);
    let not_valid = |name: &str, definition: String| {
        let add = format!(
            "ALTER TABLE {table_sql} ADD CONSTRAINT {} {definition} NOT VALID;",
            sql_ident(name)
        );
        not_valid_then_validate(add, table_sql, name).steps
    };
    match &constraint.kind {
        InlineKind::Check => not_valid(&named("check"), written.to_owned()),
        InlineKind::References(_) => not_valid(
            &named("fkey"),
            format!("FOREIGN KEY ({column_sql}) {written}"),
        ),
        InlineKind::Unique | InlineKind::PrimaryKey => {
            let (kind, keyword, suffix, words_in) = match constraint.kind {
                InlineKind::Unique => (IndexConstraintKind::Unique, "UNIQUE", "key", 1),
                _ => (IndexConstraintKind::PrimaryKey, "PRIMARY KEY", "pkey", 2),
            };
            let (index_suffix, characteristics) =
                index_options(words, at.keyword + words_in..at.span.end);
            let name = named(suffix);
            let index = IndexConstraint {
                offset: constraint.offset,
                kind,
                name: Some(name.clone()),
                using_index: None,
                columns: vec![column.clone()],
                columns_sql: Some(format!("({column_sql})")),
                index_suffix,
                characteristics,
            };
            index_then_constraint(table_sql, &index, &name, keyword)
                .map(|fix| fix.steps)
                .unwrap_or_default()
        }
    }
}

/// What follows an inline `UNIQUE` or `PRIMARY KEY`, split into what `CREATE UNIQUE INDEX` takes
/// after its key list (` INCLUDE (…) NULLS NOT DISTINCT WITH (…) TABLESPACE x`, in that order) and
/// the constraint's ` DEFERRABLE …`.
fn index_options(words: &Words, range: Range<usize>) -> (String, String) {
    let (mut include, mut nulls, mut with, mut tablespace) =
        (String::new(), String::new(), String::new(), String::new());
    let mut i = range.start;
    while i < range.end {
        if words.seq_at(i, &["nulls", "not", "distinct"]) {
            nulls = " NULLS NOT DISTINCT".to_owned();
            i += 3;
        } else if words.is(i, "include") || words.is(i, "with") {
            let group = words.text_of(i..words.skip_parens(i + 1));
            let into = if words.is(i, "include") {
                &mut include
            } else {
                &mut with
            };
            *into = format!(" {group}");
            i = words.skip_parens(i + 1);
        } else if words.seq_at(i, &["using", "index", "tablespace"]) {
            tablespace = format!(" TABLESPACE {}", words.raw(i + 3));
            i += 4;
        } else if words.is(i, "deferrable") || words.is(i, "not") || words.is(i, "initially") {
            let characteristics = format!(" {}", words.text_of(i..range.end));
            return (
                format!("{include}{nulls}{with}{tablespace}"),
                characteristics,
            );
        } else {
            i += 1;
        }
    }
    (format!("{include}{nulls}{with}{tablespace}"), String::new())
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
                    ColumnOption::Check(_) => ("check", InlineKind::Check),
                    ColumnOption::Unique(_) => ("unique", InlineKind::Unique),
                    ColumnOption::PrimaryKey(_) => ("primary", InlineKind::PrimaryKey),
                    ColumnOption::ForeignKey(fk) => (
                        "references",
                        InlineKind::References(ObjectName::from_ast(&fk.foreign_table)),
                    ),
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
        .filter(|t| range.contains(&t.range().start))
        .filter(|t| t.kind == TokenKind::Word && cx.text[t.range()].eq_ignore_ascii_case(keyword))
        .nth(nth)
        .map(|t| t.range().start)
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
            InlineKind::Check
        } else if words.is(i, "unique") {
            InlineKind::Unique
        } else if words.seq_at(i, &["primary", "key"]) {
            InlineKind::PrimaryKey
        } else if words.is(i, "references") {
            InlineKind::References(words.name_at(i + 1))
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
  = help: add the column without it (`ALTER TABLE public.orders ADD COLUMN discount numeric;`), then `ALTER TABLE public.orders ADD CONSTRAINT orders_discount_check CHECK (discount >= 0) NOT VALID;` (instant) and `ALTER TABLE public.orders VALIDATE CONSTRAINT orders_discount_check;` in a separate transaction (scans under SHARE UPDATE EXCLUSIVE: reads and writes continue)

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
            report.contains("(`ALTER TABLE public.orders ADD COLUMN user_id bigint DEFAULT 0;`), then `ALTER TABLE public.orders ADD CONSTRAINT orders_user_fk FOREIGN KEY (user_id) REFERENCES users (id) NOT VALID;`"),
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

    /// The fix adds the column bare and then each of its constraints, every clause kept as written
    /// (a foreign key's actions, a CHECK's NO INHERIT, DEFERRABLE); the help quotes its steps.
    #[test]
    fn the_fix_keeps_every_clause_of_each_constraint() {
        use crate::rules::testing::review;
        let findings = |sql: &str| {
            let mut findings: Vec<_> = review(&[SCHEMA], sql)
                .findings
                .into_iter()
                .filter(|f| f.rule.id == RULE)
                .collect();
            findings.sort_by_key(|f| f.offset);
            findings
        };
        let sql = "ALTER TABLE orders ADD COLUMN user_id bigint NOT NULL DEFAULT 0 \
                   REFERENCES users (id) ON DELETE SET NULL ON UPDATE SET DEFAULT DEFERRABLE \
                   CONSTRAINT positive CHECK (user_id >= 0) NO INHERIT \
                   UNIQUE NULLS NOT DISTINCT WITH (fillfactor = 90) COLLATE \"C\";";
        let found = findings(sql);
        assert_eq!(found.len(), 3);
        let fix = found[0].fix.as_ref().expect("a fix");
        let steps: Vec<&str> = fix.steps.iter().map(|s| s.sql.as_str()).collect();
        assert_eq!(
            steps,
            [
                "ALTER TABLE public.orders ADD COLUMN user_id bigint NOT NULL DEFAULT 0 COLLATE \"C\";",
                "ALTER TABLE public.orders ADD CONSTRAINT orders_user_id_fkey FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE SET NULL ON UPDATE SET DEFAULT DEFERRABLE NOT VALID;",
                "ALTER TABLE public.orders VALIDATE CONSTRAINT orders_user_id_fkey;",
                "ALTER TABLE public.orders ADD CONSTRAINT positive CHECK (user_id >= 0) NO INHERIT NOT VALID;",
                "ALTER TABLE public.orders VALIDATE CONSTRAINT positive;",
                "CREATE UNIQUE INDEX CONCURRENTLY orders_user_id_key ON public.orders (user_id) NULLS NOT DISTINCT WITH (fillfactor = 90);",
                "ALTER TABLE public.orders ADD CONSTRAINT orders_user_id_key UNIQUE USING INDEX orders_user_id_key;",
            ]
        );
        assert!(found[1..].iter().all(|f| f.fix.is_none()));
        assert!(
            found[1].help.contains(&format!("(`{}`)", steps[0])),
            "{}",
            found[1].help
        );
        // A statement with another clause gets help, not a fix that would drop that clause.
        let two =
            "ALTER TABLE orders ADD COLUMN note text CHECK (note <> ''), ADD COLUMN code text;";
        let found = findings(two);
        assert!(found[0].fix.is_none());
        assert!(found[0]
            .help
            .contains("(`ALTER TABLE public.orders ADD COLUMN note text;`)"));
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
