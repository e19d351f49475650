//! `TRUNCATE` deletes every row of a table for good, under ACCESS EXCLUSIVE. `CASCADE` also empties
//! every table that references it with a foreign key, and the tables referencing those, which is
//! easy to miss in review: the finding names the ones the model knows. Tables created earlier in the
//! same migration hold nothing anyone relies on and are left to the engine's filter.

use std::collections::BTreeSet;

use sqlparser::ast::{CascadeOption, Statement as Ast};

use super::syntax::{ident_offset, sql_name};
use super::{Category, Diagnostic, Kinds, Rule, Severity, StatementContext};
use crate::schema::{Catalog, ConstraintKind};
use crate::sql::{Kind, ObjectName};

pub const RULE: Rule = Rule {
    id: "truncate-table",
    category: Category::DataLoss,
    default_severity: Severity::Error,
    size_graded: false,
    summary: "TRUNCATE deletes every row",
    doc: include_str!("../../rules/truncate-table.md"),
    check,
    kinds: Kinds::Only(&[&[Kind::Truncate]]),
};

fn check(cx: &StatementContext, out: &mut Vec<Diagnostic>) {
    let statement = cx.statement;
    // (table, offset of its name), CASCADE
    let (truncated, cascade): (Vec<(ObjectName, usize)>, bool) = match statement.ast() {
        Some(Ast::Truncate(truncate)) => (
            truncate
                .table_names
                .iter()
                .filter_map(|target| {
                    let offset = target
                        .name
                        .0
                        .first()
                        .and_then(|part| part.as_ident())
                        .and_then(|ident| ident_offset(cx, ident))
                        .unwrap_or(statement.range.start);
                    Some((ObjectName::from_ast(&target.name)?, offset))
                })
                .collect(),
            matches!(truncate.cascade, Some(CascadeOption::Cascade)),
        ),
        None if statement.class.kind == Kind::Truncate => (
            statement
                .class
                .target
                .iter()
                .map(|table| (table.clone(), statement.range.start))
                .collect(),
            statement.find_keywords(cx.text, &["cascade"]).is_some(),
        ),
        _ => return,
    };
    let in_statement: BTreeSet<ObjectName> = truncated
        .iter()
        .map(|(table, _)| cx.catalog.resolve(table))
        .collect();
    for (table, offset) in &truncated {
        let name = cx.qualified(table);
        let mut message = format!(
            "TRUNCATE deletes every row of {name} for good, under ACCESS EXCLUSIVE: reads and writes \
             on {name} wait until the transaction commits"
        );
        let resolved = cx.catalog.resolve(table);
        if cascade {
            let emptied: Vec<String> = referencing_tables(cx.catalog, &resolved)
                .into_iter()
                .filter(|t| !in_statement.contains(t))
                .map(|t| t.to_string())
                .collect();
            message.push_str(&if emptied.is_empty() {
                "; CASCADE also empties every table that references it with a foreign key (the \
                 model knows of none; tables outside the reviewed history may)"
                    .to_owned()
            } else {
                format!(
                    "; CASCADE also empties every table that references it with a foreign key, and \
                     those referencing them: {}",
                    emptied.join(", ")
                )
            });
        } else if let Some(blocker) = direct_referencers(cx.catalog, &resolved)
            .into_iter()
            .find(|t| !in_statement.contains(t))
        {
            message.push_str(&format!(
                "; it fails while {blocker} references it with a foreign key and is not truncated \
                 with it"
            ));
        }
        let table_sql = sql_name(&resolved);
        out.push(cx.diagnostic(
            *offset,
            Some(table),
            message,
            format!(
                "keep a copy first (`CREATE TABLE {}_backup AS TABLE {table_sql};`) or delete only the \
                 rows you mean to, in batches by key range; if the rows really are disposable (a \
                 cache, a staging table), say so: `-- migagent:ignore truncate-table -- <why>`",
                resolved.name
            ),
        ));
    }
}

/// The tables with a foreign key to `table` (qualified).
fn direct_referencers(catalog: &Catalog, table: &ObjectName) -> Vec<ObjectName> {
    let mut referencing: Vec<ObjectName> = catalog
        .relations()
        .filter(|relation| &relation.name != table)
        .filter(|relation| {
            relation.constraints.iter().any(|c| {
                matches!(&c.kind, ConstraintKind::ForeignKey { references, .. } if references == table)
            })
        })
        .map(|relation| relation.name.clone())
        .collect();
    referencing.sort();
    referencing
}

/// Every table `TRUNCATE … CASCADE` of `table` empties along with it: the tables referencing it,
/// and the tables referencing those, in the order they are found.
fn referencing_tables(catalog: &Catalog, table: &ObjectName) -> Vec<ObjectName> {
    let mut found: Vec<ObjectName> = Vec::new();
    let mut next = 0;
    let mut frontier = vec![table.clone()];
    while let Some(current) = frontier.get(next).cloned() {
        next += 1;
        for referencing in direct_referencers(catalog, &current) {
            if &referencing != table && !found.contains(&referencing) {
                found.push(referencing.clone());
                frontier.push(referencing);
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use crate::rules::testing::check_rule;

    const RULE: &str = "truncate-table";
    const SHOP: &str = "CREATE TABLE customers (id bigint PRIMARY KEY);\n\
                        CREATE TABLE orders (id bigint PRIMARY KEY, customer_id bigint REFERENCES customers);\n\
                        CREATE TABLE order_items (id bigint PRIMARY KEY, order_id bigint REFERENCES orders);\n\
                        CREATE TABLE sessions (id bigint PRIMARY KEY, token text);";

    #[test]
    fn fires_on_an_existing_table() {
        assert_eq!(
            check_rule(RULE, &[SHOP], "TRUNCATE sessions;"),
            "\
error[truncate-table]: TRUNCATE deletes every row of public.sessions for good, under ACCESS EXCLUSIVE: reads and writes on public.sessions wait until the transaction commits
 --> migration.sql:1:10
  |
1 | TRUNCATE sessions;
  |          ^^^^^^^^
  |
  = help: keep a copy first (`CREATE TABLE sessions_backup AS TABLE public.sessions;`) or delete only the rows you mean to, in batches by key range; if the rows really are disposable (a cache, a staging table), say so: `-- migagent:ignore truncate-table -- <why>`

"
        );
    }

    #[test]
    fn cascade_names_every_table_it_empties() {
        let report = check_rule(RULE, &[SHOP], "TRUNCATE TABLE customers CASCADE;");
        assert!(
            report.contains("; CASCADE also empties every table that references it with a foreign key, and those referencing them: public.orders, public.order_items"),
            "{report}"
        );
        let report = check_rule(RULE, &[SHOP], "TRUNCATE sessions CASCADE;");
        assert!(report.contains("(the model knows of none;"), "{report}");
    }

    #[test]
    fn without_cascade_a_referenced_table_fails_unless_truncated_together() {
        let report = check_rule(RULE, &[SHOP], "TRUNCATE orders;");
        assert!(
            report.contains("; it fails while public.order_items references it with a foreign key and is not truncated with it"),
            "{report}"
        );
        let report = check_rule(RULE, &[SHOP], "TRUNCATE orders, order_items;");
        assert_eq!(
            report.matches("error[truncate-table]").count(),
            2,
            "{report}"
        );
        assert!(!report.contains("it fails"), "{report}");
        assert!(report.contains("--> migration.sql:1:18"), "{report}");
    }

    #[test]
    fn fires_on_a_table_the_model_does_not_know_and_when_unparsed() {
        let report = check_rule(RULE, &[], "TRUNCATE \"Audit\".\"Log\" RESTART IDENTITY;");
        assert!(report.contains("every row of Audit.Log"), "{report}");
        let report = check_rule(RULE, &[SHOP], "TRUNCATE sessions CASCADE RESTRICT;");
        assert!(report.contains("every row of public.sessions"), "{report}");
    }

    #[test]
    fn silent_on_a_table_created_in_the_same_migration() {
        let sql = "CREATE TABLE scratch (id bigint);\nTRUNCATE scratch;";
        assert_eq!(check_rule(RULE, &[SHOP], sql), "");
    }
}
