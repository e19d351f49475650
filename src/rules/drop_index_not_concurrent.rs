//! `DROP INDEX` without `CONCURRENTLY` takes ACCESS EXCLUSIVE on the index's table. The drop itself
//! is quick, but the lock must wait for every running query on the table, and every query that
//! arrives meanwhile queues behind it; inside a transaction it is then held until COMMIT.
//! `DROP INDEX CONCURRENTLY` takes only SHARE UPDATE EXCLUSIVE. Indexes of partitioned tables
//! cannot be dropped concurrently, so the rule says nothing about them (`missing-lock-timeout`
//! still covers the lock).

use sqlparser::ast::{ObjectType, Statement as Ast};

use super::fix::{Fix, Step};
use super::syntax::{ident_offset, sql_name};
use super::{kinds, Category, Diagnostic, Kinds, Rule, Severity, StatementContext};
use crate::schema::RelationKind;
use crate::sql::{Kind, ObjectName};

pub const RULE: Rule = Rule {
    id: "drop-index-not-concurrent",
    category: Category::Locking,
    default_severity: Severity::Warning,
    // The harm is the wait in the lock queue; the drop itself is brief on any table.
    size_graded: false,
    summary: "DROP INDEX without CONCURRENTLY takes ACCESS EXCLUSIVE on the table",
    doc: include_str!("../../rules/drop-index-not-concurrent.md"),
    check,
    kinds: Kinds::Only(&[kinds::DROP]),
};

fn check(cx: &StatementContext, out: &mut Vec<Diagnostic>) {
    let dropped = dropped_indexes(cx);
    let if_exists = if cx
        .statement
        .find_keywords(cx.text, &["if", "exists"])
        .is_some()
    {
        "IF EXISTS "
    } else {
        ""
    };
    let concurrent_drop = |index: &ObjectName| {
        format!(
            "DROP INDEX CONCURRENTLY {if_exists}{};",
            sql_name(&cx.catalog.resolve(index))
        )
    };
    // The statement's fix: one concurrent drop per index (CONCURRENTLY drops one index, and has no
    // CASCADE), carried by its first finding.
    let mut fix = (cx.fixable() && cx.statement.find_keywords(cx.text, &["cascade"]).is_none())
        .then(|| {
            Fix::replace(
                dropped
                    .iter()
                    .map(|(_, index)| {
                        Step::outside_transaction(
                            concurrent_drop(index),
                            "drops the index under SHARE UPDATE EXCLUSIVE, without blocking reads \
                             and writes; CONCURRENTLY cannot run in a transaction block",
                        )
                    })
                    .collect(),
            )
        });
    for (offset, index) in dropped {
        let table = cx.catalog.index(&index).map(|i| i.table.clone());
        if table.as_ref().is_some_and(|t| is_partitioned(cx, t)) {
            continue;
        }
        let message = match &table {
            Some(table) => {
                let name = cx.qualified(table);
                format!(
                    "DROP INDEX {} takes ACCESS EXCLUSIVE on existing table {name}: it waits for every \
                     running query on {name}, and every read and write of {name} queues behind it until \
                     it is done (in a transaction, until COMMIT)",
                    cx.qualified(&index)
                )
            }
            None => format!(
                "DROP INDEX {} takes ACCESS EXCLUSIVE on the index's table (the model does not know the \
                 index, so not which table): it waits for every running query on that table, and every \
                 read and write of it queues behind it until it is done (in a transaction, until COMMIT)",
                cx.qualified(&index)
            ),
        };
        out.push(
            cx.diagnostic(
                offset,
                table.as_ref(),
                message,
                format!(
                    "use `{}` (one index per statement, outside a transaction block): it takes SHARE \
                     UPDATE EXCLUSIVE and waits for running queries without blocking reads and writes",
                    concurrent_drop(&index)
                ),
            )
            .with_fix(fix.take()),
        );
    }
}

/// The indexes a non-concurrent `DROP INDEX` drops, each with the offset to report it at: the
/// statement for one index, the index's name when it drops several.
fn dropped_indexes(cx: &StatementContext) -> Vec<(usize, ObjectName)> {
    let statement = cx.statement;
    match statement.ast() {
        Some(Ast::Drop {
            object_type: ObjectType::Index,
            names,
            ..
        }) => names
            .iter()
            .filter_map(|name| {
                let offset = match (names.len(), name.0.first().and_then(|p| p.as_ident())) {
                    (2.., Some(ident)) => ident_offset(cx, ident),
                    _ => None,
                };
                let index = ObjectName::from_ast(name)?;
                Some((offset.unwrap_or(statement.range.start), index))
            })
            .collect(),
        // sqlparser cannot read DROP INDEX CONCURRENTLY: a DROP INDEX it did not parse either way.
        None if statement.class.kind == Kind::DropIndex && !statement.class.concurrently => {
            statement
                .class
                .target
                .iter()
                .map(|index| (statement.range.start, index.clone()))
                .collect()
        }
        _ => Vec::new(),
    }
}

fn is_partitioned(cx: &StatementContext, table: &ObjectName) -> bool {
    cx.catalog
        .relation(table)
        .is_some_and(|r| r.kind == RelationKind::PartitionedTable)
}

#[cfg(test)]
mod tests {
    use crate::migration::Transaction;
    use crate::rules::testing::{check_rule, render_rule, review_in};

    const RULE: &str = "drop-index-not-concurrent";
    const USERS: &str = "CREATE TABLE users (id bigint PRIMARY KEY, email text, name text);\n\
                         CREATE INDEX users_email_idx ON users (email);\n\
                         CREATE INDEX users_name_idx ON users (name);";

    #[test]
    fn fires_on_an_index_of_an_existing_table() {
        assert_eq!(
            check_rule(RULE, &[USERS], "DROP INDEX users_email_idx;"),
            "\
warning[drop-index-not-concurrent]: DROP INDEX public.users_email_idx takes ACCESS EXCLUSIVE on existing table public.users: it waits for every running query on public.users, and every read and write of public.users queues behind it until it is done (in a transaction, until COMMIT)
 --> migration.sql:1:1
  |
1 | DROP INDEX users_email_idx;
  | ^^^^^^^^^^^^^^^^^^^^^^^^^^
  |
  = help: use `DROP INDEX CONCURRENTLY public.users_email_idx;` (one index per statement, outside a transaction block): it takes SHARE UPDATE EXCLUSIVE and waits for running queries without blocking reads and writes

"
        );
    }

    #[test]
    fn reports_each_index_of_a_multi_index_drop_at_its_name() {
        let report = check_rule(
            RULE,
            &[USERS],
            "DROP INDEX IF EXISTS users_email_idx, public.users_name_idx;",
        );
        assert_eq!(report.matches("warning[").count(), 2, "{report}");
        assert!(report.contains("migration.sql:1:22"), "{report}");
        assert!(report.contains("migration.sql:1:39"), "{report}");
    }

    #[test]
    fn says_when_it_does_not_know_the_table() {
        let report = check_rule(RULE, &[], "DROP INDEX \"Post_slug_key\";");
        assert!(
            report.contains("DROP INDEX public.Post_slug_key takes ACCESS EXCLUSIVE on the index's table (the model does not know the index, so not which table)"),
            "{report}"
        );
        assert!(
            report.contains("`DROP INDEX CONCURRENTLY public.\"Post_slug_key\";`"),
            "{report}"
        );
    }

    #[test]
    fn fires_inside_a_tool_transaction() {
        let review = review_in(
            &[USERS],
            "DROP INDEX users_email_idx;",
            Transaction::Wrapped,
        );
        assert!(render_rule(RULE, &review).contains("until COMMIT"));
    }

    #[test]
    fn silent_when_concurrent_on_new_tables_and_on_partitioned_tables() {
        let partitioned = "CREATE TABLE events (id bigint, at date) PARTITION BY RANGE (at);\n\
                           CREATE INDEX events_at_idx ON events (at);";
        for sql in [
            "DROP INDEX CONCURRENTLY users_email_idx;",
            "DROP INDEX CONCURRENTLY IF EXISTS users_email_idx;",
            "CREATE TABLE t (id bigint);\nCREATE INDEX t_id_idx ON t (id);\nDROP INDEX t_id_idx;",
            "DROP INDEX events_at_idx;",
            "DROP TABLE users;",
        ] {
            assert_eq!(check_rule(RULE, &[USERS, partitioned], sql), "", "{sql}");
        }
    }
}
