//! `ALTER TABLE … ADD FOREIGN KEY` without `NOT VALID` checks every existing row against the
//! referenced table while it holds SHARE ROW EXCLUSIVE on both: writes to both tables wait for the
//! whole scan. An inline `ADD COLUMN … REFERENCES` with a `DEFAULT` validates the same way and cannot
//! be `NOT VALID` at all (without a default PostgreSQL knows the new column is all NULL and skips it).

use sqlparser::ast::{
    AlterTableOperation, ColumnDef, ColumnOption, Expr, ForeignKeyConstraint, Ident,
    TableConstraint, Value,
};

use super::syntax::{sql_ident, sql_name, AlterTable};
use super::{Category, Diagnostic, Rule, Severity, StatementContext};
use crate::sql::name::fold_ident;
use crate::sql::ObjectName;

pub const RULE: Rule = Rule {
    id: "add-foreign-key-without-not-valid",
    category: Category::Locking,
    default_severity: Severity::Error,
    size_graded: true,
    summary:
        "ADD FOREIGN KEY without NOT VALID scans the table while blocking writes on both tables",
    doc: include_str!("../../rules/add-foreign-key-without-not-valid.md"),
    check,
};

fn check(cx: &StatementContext, out: &mut Vec<Diagnostic>) {
    let Some(alter) = AlterTable::of(cx) else {
        return;
    };
    let (table, name, table_sql) = (&alter.table, &alter.qualified, &alter.table_sql);
    for (i, operation) in alter.operations.iter().enumerate() {
        match operation {
            AlterTableOperation::AddConstraint {
                constraint: TableConstraint::ForeignKey(fk),
                not_valid: false,
            } if !not_enforced(fk) => {
                let Some(parent) = ObjectName::from_ast(&fk.foreign_table) else {
                    continue;
                };
                let parent_name = cx.qualified(&parent);
                let constraint = fk
                    .name
                    .as_ref()
                    .map(fold_ident)
                    .unwrap_or_else(|| default_name(&table.name, &fk.columns));
                out.push(cx.diagnostic(
                    alter.offset(cx, i),
                    Some(table),
                    format!(
                        "ADD CONSTRAINT {constraint} FOREIGN KEY on existing table {name} takes SHARE ROW \
                         EXCLUSIVE on {name} and {parent_name} and scans {name} to check every row: \
                         writes to both tables are blocked until the scan finishes"
                    ),
                    format!(
                        "add it as NOT VALID first (`ALTER TABLE {table_sql} ADD CONSTRAINT {} {fk_sql} \
                         NOT VALID;` checks only new rows and is instant), then run `ALTER TABLE \
                         {table_sql} VALIDATE CONSTRAINT {};` in a separate transaction: it scans under \
                         SHARE UPDATE EXCLUSIVE on {name} and ROW SHARE on {parent_name}, so writes continue",
                        sql_ident(&constraint),
                        sql_ident(&constraint),
                        fk_sql = foreign_key_sql(cx, &fk.columns, fk),
                    ),
                ));
            }
            AlterTableOperation::AddColumn { column_def, .. } => {
                // Without a default the new column is all NULL: PostgreSQL marks the key valid
                // without checking any row (`missing-lock-timeout` still covers the locks).
                if !has_default(column_def) {
                    continue;
                }
                for option in &column_def.options {
                    let ColumnOption::ForeignKey(fk) = &option.option else {
                        continue;
                    };
                    let Some(parent) = ObjectName::from_ast(&fk.foreign_table) else {
                        continue;
                    };
                    let parent_name = cx.qualified(&parent);
                    let column = fold_ident(&column_def.name);
                    let columns = [column_def.name.clone()];
                    let constraint = default_name(&table.name, &columns);
                    out.push(cx.diagnostic(
                        alter.offset(cx, i),
                        Some(table),
                        format!(
                            "ADD COLUMN {column} … DEFAULT … REFERENCES {parent_name} on existing table \
                             {name} checks every row against {parent_name} while it holds ACCESS \
                             EXCLUSIVE on {name} and SHARE ROW EXCLUSIVE on {parent_name}, and an inline \
                             REFERENCES cannot be NOT VALID"
                        ),
                        format!(
                            "add the column without REFERENCES, then `ALTER TABLE {table_sql} ADD \
                             CONSTRAINT {} {} NOT VALID;` and `ALTER TABLE {table_sql} VALIDATE \
                             CONSTRAINT {};` in a separate transaction (SHARE UPDATE EXCLUSIVE: writes continue)",
                            sql_ident(&constraint),
                            foreign_key_sql(cx, &columns, fk),
                            sql_ident(&constraint),
                        ),
                    ));
                }
            }
            _ => {}
        }
    }
}

/// PostgreSQL 18's `NOT ENFORCED` foreign keys are never validated.
fn not_enforced(fk: &ForeignKeyConstraint) -> bool {
    fk.characteristics
        .as_ref()
        .is_some_and(|c| c.enforced == Some(false))
}

/// A `DEFAULT` other than `DEFAULT NULL`.
fn has_default(column: &ColumnDef) -> bool {
    column.options.iter().any(|option| match &option.option {
        ColumnOption::Default(expr) => !is_null(expr),
        _ => false,
    })
}

fn is_null(expr: &Expr) -> bool {
    match expr {
        Expr::Nested(inner) => is_null(inner),
        Expr::Value(value) => matches!(value.value, Value::Null),
        _ => false,
    }
}

/// The name PostgreSQL gives an unnamed foreign key: `<table>_<columns>_fkey`.
fn default_name(table: &str, columns: &[Ident]) -> String {
    let mut name = table.to_owned();
    for column in columns {
        name.push('_');
        name.push_str(&fold_ident(column));
    }
    name.push_str("_fkey");
    name
}

/// `FOREIGN KEY (cols) REFERENCES parent (cols)` as SQL, with the parent qualified.
fn foreign_key_sql(cx: &StatementContext, columns: &[Ident], fk: &ForeignKeyConstraint) -> String {
    let list = |idents: &[Ident]| {
        idents
            .iter()
            .map(|i| sql_ident(&fold_ident(i)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let parent = ObjectName::from_ast(&fk.foreign_table)
        .map(|p| sql_name(&cx.catalog.resolve(&p)))
        .unwrap_or_else(|| fk.foreign_table.to_string());
    let referenced = if fk.referred_columns.is_empty() {
        String::new()
    } else {
        format!(" ({})", list(&fk.referred_columns))
    };
    format!(
        "FOREIGN KEY ({}) REFERENCES {parent}{referenced}",
        list(columns)
    )
}

#[cfg(test)]
mod tests {
    use crate::rules::testing::check_rule;

    const RULE: &str = "add-foreign-key-without-not-valid";
    const SCHEMA: &str = "CREATE TABLE users (id bigint PRIMARY KEY);\n\
                          CREATE TABLE orders (id bigint PRIMARY KEY, user_id bigint);";

    #[test]
    fn fires_on_an_existing_table() {
        assert_eq!(
            check_rule(
                RULE,
                &[SCHEMA],
                "ALTER TABLE orders ADD CONSTRAINT orders_user_id_fkey FOREIGN KEY (user_id) REFERENCES users (id);"
            ),
            "\
error[add-foreign-key-without-not-valid]: ADD CONSTRAINT orders_user_id_fkey FOREIGN KEY on existing table public.orders takes SHARE ROW EXCLUSIVE on public.orders and public.users and scans public.orders to check every row: writes to both tables are blocked until the scan finishes
 --> migration.sql:1:20
  |
1 | ALTER TABLE orders ADD CONSTRAINT orders_user_id_fkey FOREIGN KEY (user_id) REFERENCES users (id);
  |                    ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
  |
  = help: add it as NOT VALID first (`ALTER TABLE public.orders ADD CONSTRAINT orders_user_id_fkey FOREIGN KEY (user_id) REFERENCES public.users (id) NOT VALID;` checks only new rows and is instant), then run `ALTER TABLE public.orders VALIDATE CONSTRAINT orders_user_id_fkey;` in a separate transaction: it scans under SHARE UPDATE EXCLUSIVE on public.orders and ROW SHARE on public.users, so writes continue

"
        );
    }

    #[test]
    fn reads_drizzle_do_blocks() {
        let block = "DO $$ BEGIN\n ALTER TABLE \"orders\" ADD CONSTRAINT \"orders_user_fk\" \
                     FOREIGN KEY (\"user_id\") REFERENCES \"public\".\"users\"(\"id\");\n\
                     EXCEPTION\n WHEN duplicate_object THEN null;\nEND $$;";
        let existing = check_rule(RULE, &[SCHEMA], block);
        assert!(existing.contains("--> migration.sql:2:2"), "{existing}");
        let created_here =
            format!("CREATE TABLE orders (id bigint PRIMARY KEY, user_id bigint);\n{block}");
        assert_eq!(
            check_rule(
                RULE,
                &["CREATE TABLE users (id bigint PRIMARY KEY);"],
                &created_here
            ),
            ""
        );
    }

    #[test]
    fn names_an_unnamed_key_as_postgres_would() {
        let report = check_rule(
            RULE,
            &[SCHEMA],
            "ALTER TABLE orders ADD FOREIGN KEY (user_id) REFERENCES users;",
        );
        assert!(
            report.contains("ADD CONSTRAINT orders_user_id_fkey FOREIGN KEY"),
            "{report}"
        );
        assert!(
            report.contains("REFERENCES public.users NOT VALID;"),
            "{report}"
        );
    }

    #[test]
    fn fires_on_inline_references_with_a_default() {
        let report = check_rule(
            RULE,
            &[SCHEMA],
            "ALTER TABLE orders ADD COLUMN owner_id bigint DEFAULT 1 REFERENCES users (id);",
        );
        assert!(
            report.contains("ADD COLUMN owner_id … DEFAULT … REFERENCES public.users on existing table public.orders"),
            "{report}"
        );
        assert!(
            report.contains("ADD CONSTRAINT orders_owner_id_fkey FOREIGN KEY (owner_id) REFERENCES public.users (id) NOT VALID;"),
            "{report}"
        );
    }

    #[test]
    fn silent_when_not_valid_new_or_without_a_default() {
        for sql in [
            "ALTER TABLE orders ADD CONSTRAINT orders_user_id_fkey FOREIGN KEY (user_id) REFERENCES users (id) NOT VALID;",
            "ALTER TABLE orders VALIDATE CONSTRAINT orders_user_id_fkey;",
            // The new column is all NULL: PostgreSQL skips the validation.
            "ALTER TABLE orders ADD COLUMN owner_id bigint REFERENCES users (id);",
            "CREATE TABLE payments (id bigint, order_id bigint REFERENCES orders (id));",
            "CREATE TABLE payments (id bigint, order_id bigint);\n\
             ALTER TABLE payments ADD CONSTRAINT payments_order_id_fkey FOREIGN KEY (order_id) REFERENCES orders (id);",
        ] {
            assert_eq!(check_rule(RULE, &[SCHEMA], sql), "", "{sql}");
        }
    }
}
