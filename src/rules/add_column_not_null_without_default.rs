//! `ALTER TABLE … ADD COLUMN … NOT NULL` without a `DEFAULT` gives every existing row a NULL in a
//! column that forbids it: PostgreSQL aborts the statement as soon as the table holds one row. It
//! passes on an empty development database and fails in production.

use sqlparser::ast::{AlterTableOperation, ColumnDef, ColumnOption, DataType, Expr, Value};

use super::syntax::{sql_ident, AlterTable};
use super::{kinds, Category, Diagnostic, Kinds, Rule, Severity, StatementContext};
use crate::sql::name::fold_ident;
use crate::sql::ObjectName;

pub const RULE: Rule = Rule {
    id: "add-column-not-null-without-default",
    category: Category::Locking,
    default_severity: Severity::Error,
    size_graded: false,
    summary: "ADD COLUMN NOT NULL without a default fails on a table with rows",
    doc: include_str!("../../rules/add-column-not-null-without-default.md"),
    check,
    kinds: Kinds::Only(&[kinds::ALTER]),
};

/// The first version that adds a column with a constant default without rewriting.
const FAST_DEFAULT_SINCE: u32 = 11;

fn check(cx: &StatementContext, out: &mut Vec<Diagnostic>) {
    let Some(alter) = AlterTable::of(cx) else {
        return;
    };
    let table = &alter.table;
    for (i, operation) in alter.operations.iter().enumerate() {
        let AlterTableOperation::AddColumn { column_def, .. } = operation else {
            continue;
        };
        let Some(constraint) = not_null_without_value(column_def) else {
            continue;
        };
        let (name, table_sql) = (alter.qualified(cx), alter.table_sql(cx));
        let column = fold_ident(&column_def.name);
        let column_sql = sql_ident(&column);
        let data_type = column_def.data_type.to_string().to_lowercase();
        let default_note = if cx.settings.pg_version >= FAST_DEFAULT_SINCE {
            "metadata-only since PostgreSQL 11".to_owned()
        } else {
            format!(
                "but on PostgreSQL {} any default rewrites the table",
                cx.settings.pg_version
            )
        };
        let finish = if constraint == "PRIMARY KEY" {
            "then build a unique index CONCURRENTLY and `ADD PRIMARY KEY USING INDEX`"
        } else {
            "then make it NOT NULL with `ADD CONSTRAINT … CHECK (… IS NOT NULL) NOT VALID`, \
             `VALIDATE CONSTRAINT` and `SET NOT NULL`"
        };
        out.push(cx.diagnostic(
            alter.offset(cx, i),
            Some(table),
            format!(
                "ADD COLUMN {column} {constraint} without a DEFAULT on existing table {name} fails as soon \
                 as {name} has a row: every existing row would get NULL, so PostgreSQL aborts with \
                 \"column \"{column}\" of relation \"{}\" contains null values\" (SQLSTATE 23502)",
                table.name
            ),
            format!(
                "add it nullable (`ALTER TABLE {table_sql} ADD COLUMN {column_sql} {data_type};`), \
                 backfill it in batches, {finish}; or give it a constant DEFAULT ({default_note})"
            ),
        ));
    }
}

/// `NOT NULL` or `PRIMARY KEY` on a new column that gets no value for existing rows: no default
/// (or `DEFAULT NULL`), not an identity, generated or serial column.
fn not_null_without_value(column: &ColumnDef) -> Option<&'static str> {
    let mut constraint = None;
    for option in &column.options {
        match &option.option {
            ColumnOption::NotNull => constraint = Some("NOT NULL"),
            ColumnOption::PrimaryKey(_) => {
                constraint = constraint.or(Some("PRIMARY KEY"));
            }
            ColumnOption::Default(expr) if !is_null(expr) => return None,
            ColumnOption::Generated { .. } | ColumnOption::Identity(_) => return None,
            _ => {}
        }
    }
    if is_serial(&column.data_type) {
        return None;
    }
    constraint
}

fn is_null(expr: &Expr) -> bool {
    match expr {
        Expr::Nested(inner) => is_null(inner),
        Expr::Value(value) => matches!(value.value, Value::Null),
        _ => false,
    }
}

fn is_serial(data_type: &DataType) -> bool {
    let DataType::Custom(name, _) = data_type else {
        return false;
    };
    ObjectName::from_ast(name).is_some_and(|n| {
        matches!(
            n.name.as_str(),
            "serial" | "serial4" | "bigserial" | "serial8" | "smallserial" | "serial2"
        )
    })
}

#[cfg(test)]
mod tests {
    use crate::migration::Transaction;
    use crate::review::{review_sql, ReviewOptions};
    use crate::rules::testing::{check_rule, render_rule};
    use crate::rules::RuleSettings;

    const RULE: &str = "add-column-not-null-without-default";
    const USERS: &str = "CREATE TABLE users (id bigint PRIMARY KEY, email text);";

    #[test]
    fn fires_on_an_existing_table() {
        assert_eq!(
            check_rule(
                RULE,
                &[USERS],
                "ALTER TABLE users ADD COLUMN status text NOT NULL;"
            ),
            "\
error[add-column-not-null-without-default]: ADD COLUMN status NOT NULL without a DEFAULT on existing table public.users fails as soon as public.users has a row: every existing row would get NULL, so PostgreSQL aborts with \"column \"status\" of relation \"users\" contains null values\" (SQLSTATE 23502)
 --> migration.sql:1:19
  |
1 | ALTER TABLE users ADD COLUMN status text NOT NULL;
  |                   ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
  |
  = help: add it nullable (`ALTER TABLE public.users ADD COLUMN status text;`), backfill it in batches, then make it NOT NULL with `ADD CONSTRAINT … CHECK (… IS NOT NULL) NOT VALID`, `VALIDATE CONSTRAINT` and `SET NOT NULL`; or give it a constant DEFAULT (metadata-only since PostgreSQL 11)

"
        );
    }

    #[test]
    fn fires_on_primary_key_and_default_null_columns() {
        let report = check_rule(
            RULE,
            &[USERS],
            "ALTER TABLE users ADD COLUMN uid bigint PRIMARY KEY;\n\
             ALTER TABLE users ADD COLUMN kind text NOT NULL DEFAULT NULL;",
        );
        assert!(
            report.contains("ADD COLUMN uid PRIMARY KEY without a DEFAULT"),
            "{report}"
        );
        assert!(report.contains("ADD PRIMARY KEY USING INDEX"), "{report}");
        assert!(
            report.contains("ADD COLUMN kind NOT NULL without a DEFAULT"),
            "{report}"
        );
    }

    #[test]
    fn says_a_default_rewrites_before_postgres_11() {
        let options = ReviewOptions {
            rule_settings: RuleSettings {
                pg_version: 10,
                ..RuleSettings::default()
            },
            ..ReviewOptions::default()
        };
        let review = review_sql(
            "migration.sql",
            &[USERS],
            "ALTER TABLE users ADD COLUMN status text NOT NULL;",
            Transaction::None,
            &options,
        );
        let report = render_rule(RULE, &review);
        assert!(
            report.contains("(but on PostgreSQL 10 any default rewrites the table)"),
            "{report}"
        );
    }

    #[test]
    fn silent_with_a_value_for_existing_rows_or_on_new_tables() {
        for sql in [
            "ALTER TABLE users ADD COLUMN status text NOT NULL DEFAULT 'active';",
            "ALTER TABLE users ADD COLUMN status text;",
            "ALTER TABLE users ADD COLUMN n bigint NOT NULL GENERATED ALWAYS AS IDENTITY;",
            "ALTER TABLE users ADD COLUMN n bigserial NOT NULL;",
            "ALTER TABLE users ADD COLUMN token uuid NOT NULL DEFAULT gen_random_uuid();",
            "CREATE TABLE events (id bigint);\nALTER TABLE events ADD COLUMN kind text NOT NULL;",
        ] {
            assert_eq!(check_rule(RULE, &[USERS], sql), "", "{sql}");
        }
    }
}
