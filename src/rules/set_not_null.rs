//! `ALTER COLUMN … SET NOT NULL` scans the whole table for NULLs while it holds ACCESS EXCLUSIVE:
//! nothing can read or write the table until the scan is done. Since PostgreSQL 12 the scan is
//! skipped when a validated `CHECK (col IS NOT NULL)` constraint already proves it, which is the safe
//! recipe. A column added earlier in the same migration to an existing table still scans.

use sqlparser::ast::{AlterColumnOperation, AlterTableOperation, BinaryOperator, Expr};

use super::fix::{not_null_via_check, Fix};
use super::syntax::{sql_ident, AlterTable};
use super::{kinds, Category, Diagnostic, Kinds, Rule, Severity, StatementContext};
use crate::schema::ConstraintKind;
use crate::sql;
use crate::sql::name::fold_ident;
use crate::sql::ObjectName;

pub const RULE: Rule = Rule {
    id: "set-not-null",
    category: Category::Locking,
    default_severity: Severity::Error,
    size_graded: true,
    summary: "SET NOT NULL scans the table under ACCESS EXCLUSIVE",
    doc: include_str!("../../rules/set-not-null.md"),
    check,
    kinds: Kinds::Only(&[kinds::ALTER]),
};

/// The first version that uses a validated CHECK constraint to skip the scan.
const CHECK_SHORTCUT_SINCE: u32 = 12;

fn check(cx: &StatementContext, out: &mut Vec<Diagnostic>) {
    let Some(alter) = AlterTable::of(cx) else {
        return;
    };
    let table = &alter.table;
    let version = cx.settings.pg_version;
    for (i, operation) in alter.operations.iter().enumerate() {
        let AlterTableOperation::AlterColumn {
            column_name,
            op: AlterColumnOperation::SetNotNull,
        } = operation
        else {
            continue;
        };
        let column = fold_ident(column_name);
        // Already NOT NULL: PostgreSQL does nothing.
        if cx
            .catalog
            .column(table, &column)
            .is_some_and(|c| c.not_null)
        {
            continue;
        }
        let proven = has_validated_not_null_check(cx, table, &column);
        if proven && version >= CHECK_SHORTCUT_SINCE {
            continue;
        }
        let (name, table_sql) = (alter.qualified(cx), alter.table_sql(cx));
        let constraint = format!("{}_{column}_not_null", table.name);
        let column_sql = sql_ident(&column);
        let fix = (version >= CHECK_SHORTCUT_SINCE)
            .then(|| check_first(cx, alter, i, &table_sql, &column_sql, &constraint))
            .flatten();
        let constraint = sql_ident(&constraint);
        let (why, help) = if let Some(fix) = &fix {
            (
                String::new(),
                format!(
                    "first `{}` (instant), then `{}` in a separate transaction (scans under SHARE \
                     UPDATE EXCLUSIVE: reads and writes continue), then `{}`: SET NOT NULL skips the \
                     scan, and the CHECK is no longer needed",
                    fix.steps[0].sql, fix.steps[1].sql, fix.steps[2].sql
                ),
            )
        } else {
            let why = if proven {
                format!(
                    " (a validated CHECK ({column} IS NOT NULL) exists, but PostgreSQL {version} cannot \
                     use it to skip the scan: that needs PostgreSQL 12)"
                )
            } else {
                format!(
                    " (PostgreSQL {version} cannot use a CHECK constraint to skip the scan: that needs \
                     PostgreSQL 12)"
                )
            };
            (
                why,
                format!(
                    "on PostgreSQL {version} there is no scan-free SET NOT NULL: enforce it with `ALTER TABLE \
                     {table_sql} ADD CONSTRAINT {constraint} CHECK ({column_sql} IS NOT NULL) NOT VALID;` \
                     and `VALIDATE CONSTRAINT {constraint}` in a separate transaction, and run SET NOT NULL \
                     after upgrading to PostgreSQL 12 or later (or in a maintenance window)"
                ),
            )
        };
        out.push(cx.diagnostic(
            alter.offset(cx, i),
            Some(table),
            format!(
                "SET NOT NULL on column {column} of existing table {name} takes ACCESS EXCLUSIVE and scans \
                 every row for NULLs: reads and writes on {name} are blocked until the scan finishes{why}"
            ),
            help,
        ).with_fix(fix.filter(|_| cx.fixable())));
    }
}

/// SET NOT NULL proven by a validated CHECK first (PostgreSQL 12+), with the SET NOT NULL as
/// written.
fn check_first(
    cx: &StatementContext,
    alter: &AlterTable,
    i: usize,
    table_sql: &str,
    column_sql: &str,
    constraint: &str,
) -> Option<Fix> {
    let set_not_null = alter.single_operation_sql(cx, i, str::to_owned)?;
    Some(Fix::replace(not_null_via_check(
        table_sql,
        column_sql,
        constraint,
        &set_not_null,
    )))
}

/// Whether the catalog shows a validated CHECK constraint on `table` that proves `column IS NOT NULL`
/// (the expression itself, or one of its AND-ed terms).
fn has_validated_not_null_check(cx: &StatementContext, table: &ObjectName, column: &str) -> bool {
    let Some(relation) = cx.catalog.relation(table) else {
        return false;
    };
    relation
        .constraints
        .iter()
        .any(|constraint| match &constraint.kind {
            ConstraintKind::Check { expression } => {
                constraint.validated && proves_not_null(expression, column)
            }
            _ => false,
        })
}

fn proves_not_null(expression: &str, column: &str) -> bool {
    let trimmed = expression.trim();
    let body = match trimmed.get(..5) {
        Some(head) if head.eq_ignore_ascii_case("check") => &trimmed[5..],
        _ => trimmed,
    };
    let parsed =
        sql::parser(body).and_then(|mut parser| parser.parse_expr().map_err(|e| e.to_string()));
    match parsed {
        Ok(expr) => conjunct_is_not_null(&expr, column),
        // Not SQL sqlparser reads: compare the bare text.
        Err(_) => {
            let bare: String = body
                .chars()
                .filter(|c| !c.is_whitespace() && !matches!(c, '(' | ')' | '"'))
                .collect::<String>()
                .to_lowercase();
            bare == format!("{}isnotnull", column.to_lowercase())
        }
    }
}

fn conjunct_is_not_null(expr: &Expr, column: &str) -> bool {
    match expr {
        Expr::Nested(inner) => conjunct_is_not_null(inner, column),
        Expr::BinaryOp {
            left,
            op: BinaryOperator::And,
            right,
        } => conjunct_is_not_null(left, column) || conjunct_is_not_null(right, column),
        Expr::IsNotNull(operand) => is_column(operand, column),
        _ => false,
    }
}

fn is_column(expr: &Expr, column: &str) -> bool {
    match expr {
        Expr::Nested(inner) => is_column(inner, column),
        Expr::Identifier(ident) => fold_ident(ident) == column,
        Expr::CompoundIdentifier(parts) => parts.last().is_some_and(|i| fold_ident(i) == column),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::proves_not_null;
    use crate::migration::Transaction;
    use crate::review::{review_sql, ReviewOptions};
    use crate::rules::testing::{check_rule, render_rule};
    use crate::rules::RuleSettings;

    const RULE: &str = "set-not-null";
    const USERS: &str = "CREATE TABLE users (id bigint PRIMARY KEY, email text, name text);";

    fn check_on(pg_version: u32, history: &[&str], sql: &str) -> String {
        let options = ReviewOptions {
            rule_settings: RuleSettings {
                pg_version,
                ..RuleSettings::default()
            },
            ..ReviewOptions::default()
        };
        render_rule(
            RULE,
            &review_sql("migration.sql", history, sql, Transaction::None, &options),
        )
    }

    #[test]
    fn fires_on_an_existing_column() {
        assert_eq!(
            check_rule(RULE, &[USERS], "ALTER TABLE users ALTER COLUMN email SET NOT NULL;"),
            "\
error[set-not-null]: SET NOT NULL on column email of existing table public.users takes ACCESS EXCLUSIVE and scans every row for NULLs: reads and writes on public.users are blocked until the scan finishes
 --> migration.sql:1:19
  |
1 | ALTER TABLE users ALTER COLUMN email SET NOT NULL;
  |                   ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
  |
  = help: first `ALTER TABLE public.users ADD CONSTRAINT users_email_not_null CHECK (email IS NOT NULL) NOT VALID;` (instant), then `ALTER TABLE public.users VALIDATE CONSTRAINT users_email_not_null;` in a separate transaction (scans under SHARE UPDATE EXCLUSIVE: reads and writes continue), then `ALTER TABLE users ALTER COLUMN email SET NOT NULL; ALTER TABLE public.users DROP CONSTRAINT users_email_not_null;`: SET NOT NULL skips the scan, and the CHECK is no longer needed

"
        );
    }

    #[test]
    fn fires_on_a_column_added_earlier_to_an_existing_table() {
        let report = check_rule(
            RULE,
            &[USERS],
            "ALTER TABLE users ADD COLUMN nickname text;\nUPDATE users SET nickname = name;\n\
             ALTER TABLE users ALTER nickname SET NOT NULL, ALTER \"name\" SET NOT NULL;",
        );
        assert!(
            report.contains("column nickname of existing table public.users"),
            "{report}"
        );
        assert!(report.contains("migration.sql:3:19"), "{report}");
        assert!(
            report.contains("column name of existing table public.users"),
            "{report}"
        );
        assert!(report.contains("migration.sql:3:48"), "{report}");
    }

    #[test]
    fn silent_with_a_validated_check_on_new_tables_and_not_null_columns() {
        let proven = "ALTER TABLE users ADD CONSTRAINT users_email_not_null CHECK (email IS NOT NULL) NOT VALID;\n\
                      ALTER TABLE users VALIDATE CONSTRAINT users_email_not_null;";
        assert_eq!(
            check_rule(
                RULE,
                &[USERS, proven],
                "ALTER TABLE users ALTER COLUMN email SET NOT NULL;"
            ),
            ""
        );
        for sql in [
            // The whole recipe in one migration.
            "ALTER TABLE users ADD CONSTRAINT users_email_not_null CHECK (email IS NOT NULL) NOT VALID;\n\
             ALTER TABLE users VALIDATE CONSTRAINT users_email_not_null;\n\
             ALTER TABLE users ALTER COLUMN email SET NOT NULL;\n\
             ALTER TABLE users DROP CONSTRAINT users_email_not_null;",
            "CREATE TABLE events (id bigint, at timestamptz);\nALTER TABLE events ALTER COLUMN at SET NOT NULL;",
            "ALTER TABLE users ALTER COLUMN id SET NOT NULL;",
            "ALTER TABLE users ALTER COLUMN email DROP NOT NULL;",
        ] {
            assert_eq!(check_rule(RULE, &[USERS], sql), "", "{sql}");
        }
    }

    #[test]
    fn a_not_valid_check_does_not_count() {
        let unvalidated = "ALTER TABLE users ADD CONSTRAINT users_email_not_null CHECK (email IS NOT NULL) NOT VALID;";
        let report = check_rule(
            RULE,
            &[USERS, unvalidated],
            "ALTER TABLE users ALTER COLUMN email SET NOT NULL;",
        );
        assert!(report.contains("scans every row for NULLs"), "{report}");
    }

    #[test]
    fn before_postgres_12_the_check_does_not_help() {
        let proven =
            "ALTER TABLE users ADD CONSTRAINT users_email_not_null CHECK (email IS NOT NULL);";
        let report = check_on(
            11,
            &[USERS, proven],
            "ALTER TABLE users ALTER COLUMN email SET NOT NULL;",
        );
        assert!(
            report.contains("(a validated CHECK (email IS NOT NULL) exists, but PostgreSQL 11 cannot use it to skip the scan: that needs PostgreSQL 12)"),
            "{report}"
        );
        assert!(
            report.contains("on PostgreSQL 11 there is no scan-free SET NOT NULL"),
            "{report}"
        );
        assert_eq!(
            check_on(
                12,
                &[USERS, proven],
                "ALTER TABLE users ALTER COLUMN email SET NOT NULL;"
            ),
            ""
        );
    }

    #[test]
    fn reads_check_expressions() {
        assert!(proves_not_null("email IS NOT NULL", "email"));
        assert!(proves_not_null("CHECK ((\"email\" IS NOT NULL))", "email"));
        assert!(proves_not_null(
            "(email IS NOT NULL) AND (length(email) > 3)",
            "email"
        ));
        assert!(!proves_not_null(
            "email IS NOT NULL OR name IS NOT NULL",
            "email"
        ));
        assert!(!proves_not_null("name IS NOT NULL", "email"));
        assert!(!proves_not_null("\"Email\" IS NOT NULL", "email"));
    }
}
