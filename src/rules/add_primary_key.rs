//! `ALTER TABLE … ADD PRIMARY KEY (…)` builds the key's unique index inside the ALTER TABLE, under
//! ACCESS EXCLUSIVE for the whole build, and sets every key column NOT NULL, which scans the table
//! under the same lock unless a validated `CHECK (col IS NOT NULL)` proves it (PostgreSQL 12+).
//! `ADD PRIMARY KEY USING INDEX` on an index built concurrently skips the build, but still scans for
//! NULLs when a key column is nullable.

use super::add_unique_constraint::{
    index_constraints, index_then_constraint, IndexConstraint, IndexConstraintKind,
};
use super::fix::{not_null_via_check, terminated, Fix, Step};
use super::syntax::{sql_ident, sql_name};
use super::{kinds, Category, Diagnostic, Kinds, Rule, Severity, StatementContext};
use crate::sql::ObjectName;

pub const RULE: Rule = Rule {
    id: "add-primary-key",
    category: Category::Locking,
    default_severity: Severity::Error,
    size_graded: true,
    summary: "ADD PRIMARY KEY without USING INDEX builds the index under ACCESS EXCLUSIVE",
    doc: include_str!("../../rules/add-primary-key.md"),
    check,
    kinds: Kinds::Only(&[kinds::ALTER]),
};

/// The first version that uses a validated CHECK constraint to skip the NOT NULL scan.
const CHECK_SHORTCUT_SINCE: u32 = 12;

/// What the model knows about the key columns' nullability.
enum Nullability {
    /// Every key column is NOT NULL or proven so: no scan.
    Proven,
    /// These columns are nullable: setting them NOT NULL scans the table.
    Nullable(Vec<String>),
    /// The model does not know the columns.
    Unknown,
}

fn check(cx: &StatementContext, out: &mut Vec<Diagnostic>) {
    let Some((table, constraints)) = index_constraints(cx, IndexConstraintKind::PrimaryKey) else {
        return;
    };
    if !cx.keeps_finding_on(&table) {
        return;
    }
    for constraint in constraints {
        let diagnostic = match &constraint.using_index {
            None => builds_index(cx, &table, &constraint),
            Some(index) => scans_for_nulls(cx, &table, &constraint, index),
        };
        out.extend(diagnostic);
    }
}

/// `ADD PRIMARY KEY (…)`: the index build, and the NOT NULL scan when the model sees one.
fn builds_index(
    cx: &StatementContext,
    table: &ObjectName,
    constraint: &IndexConstraint,
) -> Option<Diagnostic> {
    let name = cx.qualified(table);
    let table_sql = sql_name(&cx.catalog.resolve(table));
    let pkey = sql_ident(&constraint.name_or_default(table));
    let nullability = nullability(cx, table, &constraint.columns);
    let also = match &nullability {
        Nullability::Proven => String::new(),
        Nullability::Nullable(columns) => format!(
            "; it also sets {} NOT NULL, which scans every row under the same lock",
            columns.join(", ")
        ),
        Nullability::Unknown => {
            " (and if a key column is nullable, setting it NOT NULL scans every row \
             under the same lock: the model does not know the columns)"
                .to_owned()
        }
    };
    let constraint_name = constraint.name_or_default(table);
    let steps = index_then_constraint(&table_sql, constraint, &constraint_name, "PRIMARY KEY");
    let fix = match &nullability {
        Nullability::Proven => steps,
        Nullability::Nullable(columns) if cx.settings.pg_version >= CHECK_SHORTCUT_SINCE => {
            steps.map(|fix| not_null_then(&table_sql, table, columns, fix))
        }
        Nullability::Nullable(_) | Nullability::Unknown => None,
    };
    let mut help = match &fix {
        Some(fix) => help_of(fix),
        None => format!(
            "build the index first without blocking writes: `CREATE UNIQUE INDEX CONCURRENTLY {pkey} \
             ON {table_sql} (…);` (outside a transaction block), then `ALTER TABLE {table_sql} ADD \
             CONSTRAINT {pkey} PRIMARY KEY USING INDEX {pkey};`"
        ),
    };
    // Without a fix, a nullable key column (PostgreSQL before 12) still scans: the help says so.
    if let (None, Nullability::Nullable(columns)) = (&fix, &nullability) {
        help.push_str(&not_null_first(cx, table, columns));
    }
    let fix = fix.filter(|_| cx.fixable());
    help.push_str(&cx.settings.concurrent_build_caveat().unwrap_or_default());
    Some(cx.diagnostic(
        constraint.offset,
        Some(table),
        format!(
            "ADD PRIMARY KEY on existing table {name} builds its unique index inside the ALTER TABLE, \
             which holds ACCESS EXCLUSIVE for the whole build: reads and writes on {name} are blocked \
             while the table is scanned and sorted{also}"
        ),
        help,
    ).with_fix(fix))
}

/// The index steps of `fix` after each nullable key column is made NOT NULL through a validated
/// CHECK, so that neither SET NOT NULL nor the attaching `USING INDEX` scans under ACCESS EXCLUSIVE.
fn not_null_then(table_sql: &str, table: &ObjectName, columns: &[String], fix: Fix) -> Fix {
    let mut steps: Vec<Step> = columns
        .iter()
        .flat_map(|column| {
            let column_sql = sql_ident(column);
            not_null_via_check(
                table_sql,
                &column_sql,
                &check_name(table, column),
                &format!("ALTER TABLE {table_sql} ALTER COLUMN {column_sql} SET NOT NULL;"),
            )
        })
        .collect();
    steps.extend(fix.steps);
    Fix::replace(steps)
}

/// The name of the CHECK that proves `column` NOT NULL, as `set-not-null`'s fix names it.
fn check_name(table: &ObjectName, column: &str) -> String {
    format!("{}_{column}_not_null", table.name)
}

/// The help: the fix's steps in order, each with where it must run.
fn help_of(fix: &Fix) -> String {
    let steps = quoted_steps(fix);
    let (not_null, index) = steps.split_at(steps.len() - 2);
    let index = format!("without blocking writes: {}, then {}", index[0], index[1]);
    if not_null.is_empty() {
        return format!("build the index first {index}");
    }
    format!("{}; then build the index {index}", not_null_help(not_null))
}

/// Each step of `fix` quoted, with where it must run.
fn quoted_steps(fix: &Fix) -> Vec<String> {
    fix.steps
        .iter()
        .map(|step| match step.transactional {
            true => format!("`{}`", step.sql),
            false => format!("`{}` (outside a transaction block)", step.sql),
        })
        .collect()
}

fn not_null_help(steps: &[String]) -> String {
    format!(
        "first make the key columns NOT NULL without a scan under ACCESS EXCLUSIVE, each step in a \
         transaction of its own: {}",
        steps.join(", then ")
    )
}

/// `ADD PRIMARY KEY USING INDEX idx`: fine, unless a key column is nullable.
fn scans_for_nulls(
    cx: &StatementContext,
    table: &ObjectName,
    constraint: &IndexConstraint,
    index: &ObjectName,
) -> Option<Diagnostic> {
    // An index the model does not know: its columns, and so the scan, are unknown.
    let columns = &cx.catalog.index(index)?.columns;
    let Nullability::Nullable(nullable) = nullability(cx, table, columns) else {
        return None;
    };
    let name = cx.qualified(table);
    let fix = (cx.settings.pg_version >= CHECK_SHORTCUT_SINCE).then(|| {
        let table_sql = sql_name(&cx.catalog.resolve(table));
        let attach = Step::transactional(
            terminated(cx.statement.sql(cx.text)),
            "adopts the index as the primary key: instant, the key columns are NOT NULL already",
        );
        not_null_then(&table_sql, table, &nullable, Fix::replace(vec![attach]))
    });
    let help = match &fix {
        Some(fix) => {
            let steps = quoted_steps(fix);
            let (not_null, attach) = steps.split_at(steps.len() - 1);
            format!("{}; then {}", not_null_help(not_null), attach[0])
        }
        None => format!(
            "make the key columns provably NOT NULL before adding the key{}",
            not_null_first(cx, table, &nullable)
        ),
    };
    Some(
        cx.diagnostic(
            constraint.offset,
            Some(table),
            format!(
                "ADD PRIMARY KEY USING INDEX {} on existing table {name} sets {} NOT NULL, which scans \
                 every row for NULLs under ACCESS EXCLUSIVE: reads and writes on {name} are blocked \
                 until the scan finishes",
                index.name,
                nullable.join(", ")
            ),
            help,
        )
        .with_fix(fix.filter(|_| cx.fixable())),
    )
}

fn nullability(cx: &StatementContext, table: &ObjectName, columns: &[String]) -> Nullability {
    if columns.is_empty() {
        return Nullability::Unknown;
    }
    let shortcut = cx.settings.pg_version >= CHECK_SHORTCUT_SINCE;
    let mut nullable = Vec::new();
    for column in columns {
        match cx.catalog.column(table, column) {
            None => return Nullability::Unknown,
            Some(c) if c.not_null => {}
            Some(_) if shortcut && cx.catalog.has_validated_not_null_check(table, column) => {}
            Some(_) => nullable.push(column.clone()),
        }
    }
    if nullable.is_empty() {
        Nullability::Proven
    } else {
        Nullability::Nullable(nullable)
    }
}

/// The help's NOT NULL step: a validated CHECK lets PostgreSQL 12+ skip the scan.
fn not_null_first(cx: &StatementContext, table: &ObjectName, columns: &[String]) -> String {
    let version = cx.settings.pg_version;
    if version < CHECK_SHORTCUT_SINCE {
        return format!(
            "; on PostgreSQL {version} setting {} NOT NULL always scans (a CHECK constraint cannot prove \
             it before PostgreSQL 12): do it in a maintenance window",
            columns.join(", ")
        );
    }
    let table_sql = sql_name(&cx.catalog.resolve(table));
    let steps: Vec<String> = columns
        .iter()
        .map(|column| {
            let check = sql_ident(&check_name(table, column));
            format!(
                "`ALTER TABLE {table_sql} ADD CONSTRAINT {check} CHECK ({} IS NOT NULL) NOT VALID;` then \
                 `ALTER TABLE {table_sql} VALIDATE CONSTRAINT {check};` in a separate transaction",
                sql_ident(column)
            )
        })
        .collect();
    format!(
        "; before that, so that the implicit SET NOT NULL skips its scan: {}",
        steps.join(", and ")
    )
}

#[cfg(test)]
mod tests {
    use crate::migration::Transaction;
    use crate::review::{review_sql, ReviewOptions};
    use crate::rules::testing::{check_rule, render_rule};
    use crate::rules::RuleSettings;

    const RULE: &str = "add-primary-key";
    const EVENTS: &str = "CREATE TABLE events (id bigint NOT NULL, payload jsonb);";
    const NULLABLE: &str = "CREATE TABLE legacy (code text, name text);";

    #[test]
    fn fires_on_an_existing_table() {
        assert_eq!(
            check_rule(RULE, &[EVENTS], "ALTER TABLE events ADD PRIMARY KEY (id);"),
            "\
error[add-primary-key]: ADD PRIMARY KEY on existing table public.events builds its unique index inside the ALTER TABLE, which holds ACCESS EXCLUSIVE for the whole build: reads and writes on public.events are blocked while the table is scanned and sorted
 --> migration.sql:1:20
  |
1 | ALTER TABLE events ADD PRIMARY KEY (id);
  |                    ^^^^^^^^^^^^^^^^^^^^
  |
  = help: build the index first without blocking writes: `CREATE UNIQUE INDEX CONCURRENTLY events_pkey ON public.events (id);` (outside a transaction block), then `ALTER TABLE public.events ADD CONSTRAINT events_pkey PRIMARY KEY USING INDEX events_pkey;`

"
        );
    }

    #[test]
    fn a_nullable_key_column_also_scans() {
        let report = check_rule(
            RULE,
            &[NULLABLE],
            "ALTER TABLE legacy ADD CONSTRAINT legacy_pk PRIMARY KEY (code);",
        );
        assert!(
            report.contains(
                "; it also sets code NOT NULL, which scans every row under the same lock"
            ),
            "{report}"
        );
        assert!(
            report.contains("`ALTER TABLE public.legacy ADD CONSTRAINT legacy_code_not_null CHECK (code IS NOT NULL) NOT VALID;`"),
            "{report}"
        );
        let report = check_rule(
            RULE,
            &[],
            "ALTER TABLE \"Account\" ADD PRIMARY KEY (\"id\");",
        );
        assert!(
            report.contains("the model does not know the columns"),
            "{report}"
        );
    }

    #[test]
    fn using_an_index_on_nullable_columns_scans() {
        let index = "CREATE UNIQUE INDEX CONCURRENTLY legacy_code_idx ON legacy (code);";
        let report = check_rule(
            RULE,
            &[NULLABLE, index],
            "ALTER TABLE legacy ADD PRIMARY KEY USING INDEX legacy_code_idx;",
        );
        assert!(
            report.contains("ADD PRIMARY KEY USING INDEX legacy_code_idx on existing table public.legacy sets code NOT NULL, which scans every row for NULLs under ACCESS EXCLUSIVE"),
            "{report}"
        );
        // The help quotes the fix: the CHECK proves the column NOT NULL, then the key adopts the index.
        assert!(
            report.contains(
                "`ALTER TABLE public.legacy ALTER COLUMN code SET NOT NULL; ALTER TABLE public.legacy \
                 DROP CONSTRAINT legacy_code_not_null;`; then `ALTER TABLE legacy ADD PRIMARY KEY \
                 USING INDEX legacy_code_idx;`"
            ),
            "{report}"
        );
        let proven =
            "ALTER TABLE legacy ADD CONSTRAINT legacy_code_not_null CHECK (code IS NOT NULL);";
        let sql = "ALTER TABLE legacy ADD PRIMARY KEY USING INDEX legacy_code_idx;";
        assert_eq!(check_rule(RULE, &[NULLABLE, index, proven], sql), "");
        let options = ReviewOptions {
            rule_settings: RuleSettings {
                pg_version: 11,
                ..RuleSettings::default()
            },
            ..ReviewOptions::default()
        };
        let review = review_sql(
            "migration.sql",
            &[NULLABLE, index, proven],
            sql,
            Transaction::None,
            &options,
        );
        assert!(
            render_rule(RULE, &review)
                .contains("on PostgreSQL 11 setting code NOT NULL always scans"),
            "{}",
            render_rule(RULE, &review)
        );
    }

    #[test]
    fn silent_using_an_index_on_not_null_columns_unknown_indexes_and_new_tables() {
        let index = "CREATE UNIQUE INDEX CONCURRENTLY events_id_idx ON events (id);";
        for sql in [
            "ALTER TABLE events ADD CONSTRAINT events_pkey PRIMARY KEY USING INDEX events_id_idx;",
            "ALTER TABLE events ADD PRIMARY KEY USING INDEX some_other_idx;",
            "CREATE TABLE t (id bigint);\nALTER TABLE t ADD PRIMARY KEY (id);",
            "ALTER TABLE events ADD CONSTRAINT events_id_key UNIQUE (id);",
        ] {
            assert_eq!(check_rule(RULE, &[EVENTS, index], sql), "", "{sql}");
        }
    }
}
