//! `ALTER TABLE … ADD FOREIGN KEY` without `NOT VALID` checks every existing row against the
//! referenced table while it holds SHARE ROW EXCLUSIVE on both: writes to both tables wait for the
//! whole scan. An inline `ADD COLUMN … REFERENCES` with a `DEFAULT` validates the same way and cannot
//! be `NOT VALID` at all (without a default PostgreSQL knows the new column is all NULL and skips it).

use sqlparser::ast::{
    AlterTableOperation, ColumnDef, ColumnOption, Expr, ForeignKeyConstraint, Ident,
    TableConstraint, Value,
};

use super::fix::{not_valid_operation, not_valid_then_validate, validate_step, Fix, Step};
use super::syntax::{sql_ident, sql_name, AlterTable};
use super::{kinds, Category, Diagnostic, Kinds, Rule, Severity, StatementContext};
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
    kinds: Kinds::Only(&[kinds::ALTER]),
};

fn check(cx: &StatementContext, out: &mut Vec<Diagnostic>) {
    let Some(alter) = AlterTable::of(cx) else {
        return;
    };
    let table = &alter.table;
    if !cx.keeps_finding_on(table) {
        return;
    }
    let name = &alter.qualified(cx);
    let resolved = cx.catalog.resolve(table);
    for (i, operation) in alter.operations.iter().enumerate() {
        match operation {
            AlterTableOperation::AddConstraint {
                constraint: constraint @ TableConstraint::ForeignKey(fk),
                not_valid: false,
            } if !not_enforced(fk) => {
                let Some(parent) = ObjectName::from_ast(&fk.foreign_table) else {
                    continue;
                };
                let parent_name = cx.qualified(&parent);
                let Some(constraint) = cx.catalog.new_constraint_name(&resolved, constraint) else {
                    continue;
                };
                let fix = alter
                    .single_operation_sql(cx, i, |operation| {
                        not_valid_operation(operation, fk.name.is_none(), &constraint)
                    })
                    .map(|add| not_valid_then_validate(add, &alter.table_sql(cx), &constraint));
                let Some(fix) = fix else { continue };
                out.push(
                    cx.diagnostic(
                        alter.offset(cx, i),
                        Some(table),
                        format!(
                            "ADD CONSTRAINT {constraint} FOREIGN KEY on existing table {name} takes SHARE ROW \
                         EXCLUSIVE on {name} and {parent_name} and scans {name} to check every row: \
                         writes to both tables are blocked until the scan finishes"
                        ),
                        format!(
                            "add it as NOT VALID first (`{}` checks only new rows and is instant), then \
                         run `{}` in a separate transaction: it scans under SHARE UPDATE EXCLUSIVE on \
                         {name} and ROW SHARE on {parent_name}, so writes continue",
                            fix.steps[0].sql, fix.steps[1].sql,
                        ),
                    )
                    .with_fix(cx.fixable().then_some(fix)),
                );
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
                    let Some(fix) = inline_fix(cx, alter, column_def, fk, option.name.as_ref())
                    else {
                        continue;
                    };
                    out.push(
                        cx.diagnostic(
                            alter.offset(cx, i),
                            Some(table),
                            format!(
                                "ADD COLUMN {column} … DEFAULT … REFERENCES {parent_name} on existing table \
                             {name} checks every row against {parent_name} while it holds ACCESS \
                             EXCLUSIVE on {name} and SHARE ROW EXCLUSIVE on {parent_name}, and an inline \
                             REFERENCES cannot be NOT VALID"
                            ),
                            format!(
                                "add the column without REFERENCES (`{}`), then `{}` and `{}` in a \
                                 separate transaction (SHARE UPDATE EXCLUSIVE: writes continue)",
                                fix.steps[0].sql, fix.steps[1].sql, fix.steps[2].sql,
                            ),
                        )
                        .with_fix(cx.fixable().then_some(fix)),
                    );
                }
            }
            _ => {}
        }
    }
}

/// `ADD COLUMN … DEFAULT … REFERENCES …`: the column without REFERENCES, then the key as NOT VALID
/// with all its clauses, then VALIDATE.
fn inline_fix(
    cx: &StatementContext,
    alter: &AlterTable,
    column_def: &ColumnDef,
    fk: &ForeignKeyConstraint,
    given_name: Option<&Ident>,
) -> Option<Fix> {
    let head = alter.head_sql(cx)?;
    let mut column = column_def.clone();
    column
        .options
        .retain(|option| !matches!(option.option, ColumnOption::ForeignKey(_)));
    let mut key = fk.clone();
    key.name = key.name.clone().or_else(|| given_name.cloned());
    key.columns = vec![column_def.name.clone()];
    let resolved = cx.catalog.resolve(&alter.table);
    let table_sql = alter.table_sql(cx);
    let constraint = cx
        .catalog
        .new_constraint_name(&resolved, &TableConstraint::ForeignKey(key.clone()))?;
    Some(Fix::replace(vec![
        Step::transactional(
            format!("{head} ADD COLUMN {column};"),
            "adds the column without the foreign key: no row is checked",
        ),
        Step::transactional(
            format!(
                "ALTER TABLE {} ADD CONSTRAINT {} {}{} NOT VALID;",
                table_sql,
                sql_ident(&constraint),
                foreign_key_sql(cx, &key.columns, &key),
                referential_clauses(&key),
            ),
            "adds the foreign key as NOT VALID: checks only new rows, instant",
        ),
        validate_step(&table_sql, &constraint),
    ]))
}

/// ` MATCH … ON DELETE … ON UPDATE … DEFERRABLE …`, as the key declares them.
fn referential_clauses(fk: &ForeignKeyConstraint) -> String {
    let mut clauses = String::new();
    if let Some(kind) = &fk.match_kind {
        clauses.push_str(&format!(" {kind}"));
    }
    if let Some(action) = &fk.on_delete {
        clauses.push_str(&format!(" ON DELETE {action}"));
    }
    if let Some(action) = &fk.on_update {
        clauses.push_str(&format!(" ON UPDATE {action}"));
    }
    if let Some(characteristics) = &fk.characteristics {
        clauses.push_str(&format!(" {characteristics}"));
    }
    clauses
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
    use crate::rules::testing::{check_rule, fix_sql, review};

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
  = help: add it as NOT VALID first (`ALTER TABLE orders ADD CONSTRAINT orders_user_id_fkey FOREIGN KEY (user_id) REFERENCES users (id) NOT VALID;` checks only new rows and is instant), then run `ALTER TABLE public.orders VALIDATE CONSTRAINT orders_user_id_fkey;` in a separate transaction: it scans under SHARE UPDATE EXCLUSIVE on public.orders and ROW SHARE on public.users, so writes continue

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
            report.contains(
                "`ALTER TABLE orders ADD CONSTRAINT orders_user_id_fkey FOREIGN KEY (user_id) \
                 REFERENCES users NOT VALID;`"
            ),
            "{report}"
        );
    }

    #[test]
    fn the_fix_keeps_every_clause_of_the_key() {
        let sql = fix_sql(
            RULE,
            &[SCHEMA],
            "ALTER TABLE \"orders\" ADD CONSTRAINT \"orders_user_fkey\" FOREIGN KEY (\"user_id\") \
             REFERENCES \"users\"(\"id\") MATCH FULL ON DELETE SET NULL ON UPDATE CASCADE \
             DEFERRABLE INITIALLY DEFERRED;",
        );
        assert_eq!(
            sql.expect("a fix"),
            [
                "ALTER TABLE \"orders\" ADD CONSTRAINT \"orders_user_fkey\" FOREIGN KEY (\"user_id\") \
                 REFERENCES \"users\"(\"id\") MATCH FULL ON DELETE SET NULL ON UPDATE CASCADE \
                 DEFERRABLE INITIALLY DEFERRED NOT VALID;",
                "ALTER TABLE public.orders VALIDATE CONSTRAINT orders_user_fkey;",
            ]
        );
    }

    #[test]
    fn the_inline_fix_keeps_the_actions_and_drops_only_references() {
        let sql = fix_sql(
            RULE,
            &[SCHEMA],
            "ALTER TABLE orders ADD COLUMN owner_id bigint DEFAULT 1 NOT NULL \
             REFERENCES users (id) ON DELETE CASCADE;",
        );
        assert_eq!(
            sql.expect("a fix"),
            [
                "ALTER TABLE orders ADD COLUMN owner_id BIGINT DEFAULT 1 NOT NULL;",
                "ALTER TABLE public.orders ADD CONSTRAINT orders_owner_id_fkey FOREIGN KEY (owner_id) \
                 REFERENCES public.users (id) ON DELETE CASCADE NOT VALID;",
                "ALTER TABLE public.orders VALIDATE CONSTRAINT orders_owner_id_fkey;",
            ]
        );
    }

    #[test]
    fn no_fix_inside_a_do_block_or_beside_other_operations() {
        let block =
            "DO $$ BEGIN\n ALTER TABLE orders ADD FOREIGN KEY (user_id) REFERENCES users;\n\
                     EXCEPTION WHEN duplicate_object THEN null;\nEND $$;";
        let multi =
            "ALTER TABLE orders ADD FOREIGN KEY (user_id) REFERENCES users, ADD COLUMN n int;";
        for sql in [block, multi] {
            let review = review(&[SCHEMA], sql);
            let finding = review
                .findings
                .iter()
                .find(|f| f.rule.id == RULE)
                .expect(sql);
            assert_eq!(finding.fix, None, "{sql}");
            assert!(
                finding.help.contains("REFERENCES users NOT VALID;`"),
                "{}",
                finding.help
            );
        }
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
