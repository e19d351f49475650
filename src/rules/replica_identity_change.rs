//! `ALTER TABLE … REPLICA IDENTITY` decides what logical replication and change-data-capture tools
//! (publications, Debezium, …) learn about the old version of an updated or deleted row. Changing it
//! takes ACCESS EXCLUSIVE on the table (briefly, but it queues), and changes the WAL every write
//! produces and what every consumer receives: FULL logs whole old rows, NOTHING makes UPDATE and
//! DELETE fail on a table published for them.

use sqlparser::ast::{AlterTableOperation, ReplicaIdentity};

use super::syntax::AlterTable;
use super::{kinds, Category, Diagnostic, Kinds, Rule, Severity, StatementContext};
use crate::pg::locks::Words;
use crate::sql::name::fold_ident;
use crate::sql::{Kind, ObjectName};

pub const RULE: Rule = Rule {
    id: "replica-identity-change",
    category: Category::Locking,
    default_severity: Severity::Warning,
    size_graded: false,
    summary: "REPLICA IDENTITY change",
    doc: include_str!("../../rules/replica-identity-change.md"),
    check,
    kinds: Kinds::Only(&[kinds::ALTER]),
};

/// The new replica identity.
enum Identity {
    Default,
    Full,
    Nothing,
    Index(ObjectName),
}

fn check(cx: &StatementContext, out: &mut Vec<Diagnostic>) {
    let Some((table, changes)) = identity_changes(cx) else {
        return;
    };
    for (offset, identity) in changes {
        let name = cx.qualified(&table);
        let (clause, effect) = match &identity {
            Identity::Full => (
                "REPLICA IDENTITY FULL".to_owned(),
                "from then on every UPDATE and DELETE writes the whole old row to the WAL (more WAL on a \
                 busy table), and subscribers and CDC consumers receive all old columns"
                    .to_owned(),
            ),
            Identity::Nothing => (
                "REPLICA IDENTITY NOTHING".to_owned(),
                format!(
                    "from then on UPDATE and DELETE on {name} fail if it is in a publication that publishes \
                     them (\"cannot update table … because it does not have a replica identity\"), and CDC \
                     consumers get no key for changed rows"
                ),
            ),
            Identity::Default => (
                "REPLICA IDENTITY DEFAULT".to_owned(),
                "from then on subscribers and CDC consumers identify changed rows by the primary key again \
                 (without one, UPDATE and DELETE on a published table fail)"
                    .to_owned(),
            ),
            Identity::Index(index) => (
                format!("REPLICA IDENTITY USING INDEX {}", index.name),
                index_effect(cx, &table, index),
            ),
        };
        out.push(cx.diagnostic(
            offset,
            Some(&table),
            format!(
                "{clause} on existing table {name} takes ACCESS EXCLUSIVE (briefly, but it waits for running \
                 queries and every read and write of {name} queues behind it); {effect}"
            ),
            "agree on the change with the consumers of logical replication and CDC first, and run it with \
             a short `SET lock_timeout = '2s';`; to identify rows without logging whole rows, prefer a \
             primary key or USING INDEX on a unique index over NOT NULL columns to FULL"
                .to_owned(),
        ));
    }
}

/// What `USING INDEX` does, or why PostgreSQL will refuse it, as far as the model knows the index.
fn index_effect(cx: &StatementContext, table: &ObjectName, index: &ObjectName) -> String {
    let used =
        "from then on subscribers and CDC consumers identify changed rows by that index's columns";
    let Some(known) = cx.catalog.index(index) else {
        return format!(
            "{used}; it must be unique, not partial and over NOT NULL columns (the model does not know the \
             index)"
        );
    };
    let nullable: Vec<&str> = known
        .columns
        .iter()
        .filter(|c| {
            cx.catalog
                .column(table, c)
                .is_some_and(|column| !column.not_null)
        })
        .map(String::as_str)
        .collect();
    let problem = if !known.unique {
        Some("it is not unique".to_owned())
    } else if known.predicate.is_some() {
        Some("it is partial".to_owned())
    } else if !nullable.is_empty() {
        Some(format!("{} may be NULL", nullable.join(", ")))
    } else {
        None
    };
    match problem {
        Some(problem) => format!(
            "PostgreSQL refuses the index as replica identity: {problem} (it must be unique, not partial and \
             over NOT NULL columns), and the statement fails"
        ),
        None => used.to_owned(),
    }
}

/// The table and each REPLICA IDENTITY clause of an `ALTER TABLE`, with its offset.
fn identity_changes(cx: &StatementContext) -> Option<(ObjectName, Vec<(usize, Identity)>)> {
    if let Some(alter) = AlterTable::of(cx) {
        let changes = alter
            .operations
            .iter()
            .enumerate()
            .filter_map(|(i, operation)| match operation {
                AlterTableOperation::ReplicaIdentity { identity } => {
                    let identity = match identity {
                        ReplicaIdentity::Default => Identity::Default,
                        ReplicaIdentity::Full => Identity::Full,
                        ReplicaIdentity::Nothing => Identity::Nothing,
                        ReplicaIdentity::Index(index) => {
                            Identity::Index(ObjectName::new(None, &fold_ident(index)))
                        }
                    };
                    Some((alter.offset(cx, i), identity))
                }
                _ => None,
            })
            .collect();
        return Some((alter.table.clone(), changes));
    }
    let statement = cx.statement;
    if statement.ast().is_some() || statement.class.kind != Kind::AlterTable {
        return None;
    }
    let words = Words::of(cx.text, statement);
    let changes = words
        .alter_table_clauses()
        .into_iter()
        .filter(|clause| words.seq_at(clause.start, &["replica", "identity"]))
        .filter_map(|clause| {
            let at = clause.start + 2;
            let identity = if words.is(at, "full") {
                Identity::Full
            } else if words.is(at, "nothing") {
                Identity::Nothing
            } else if words.is(at, "default") {
                Identity::Default
            } else if words.seq_at(at, &["using", "index"]) {
                Identity::Index(words.name_at(at + 2)?)
            } else {
                return None;
            };
            Some((words.offset(clause.start)?, identity))
        })
        .collect();
    Some((statement.class.target.clone()?, changes))
}

#[cfg(test)]
mod tests {
    use crate::rules::testing::check_rule;

    const RULE: &str = "replica-identity-change";
    const SCHEMA: &str =
        "CREATE TABLE events (id bigint PRIMARY KEY, code text, ext_id bigint NOT NULL);\n\
                          CREATE UNIQUE INDEX events_code_key ON events (code);\n\
                          CREATE UNIQUE INDEX events_ext_id_key ON events (ext_id);";

    #[test]
    fn fires_on_full() {
        assert_eq!(
            check_rule(RULE, &[SCHEMA], "ALTER TABLE events REPLICA IDENTITY FULL;"),
            "\
warning[replica-identity-change]: REPLICA IDENTITY FULL on existing table public.events takes ACCESS EXCLUSIVE (briefly, but it waits for running queries and every read and write of public.events queues behind it); from then on every UPDATE and DELETE writes the whole old row to the WAL (more WAL on a busy table), and subscribers and CDC consumers receive all old columns
 --> migration.sql:1:20
  |
1 | ALTER TABLE events REPLICA IDENTITY FULL;
  |                    ^^^^^^^^^^^^^^^^^^^^^
  |
  = help: agree on the change with the consumers of logical replication and CDC first, and run it with a short `SET lock_timeout = '2s';`; to identify rows without logging whole rows, prefer a primary key or USING INDEX on a unique index over NOT NULL columns to FULL

"
        );
    }

    #[test]
    fn explains_nothing_default_and_using_index() {
        let report = check_rule(
            RULE,
            &[SCHEMA],
            "ALTER TABLE events REPLICA IDENTITY NOTHING;",
        );
        assert!(
            report.contains("UPDATE and DELETE on public.events fail if it is in a publication"),
            "{report}"
        );
        let report = check_rule(
            RULE,
            &[SCHEMA],
            "ALTER TABLE events REPLICA IDENTITY DEFAULT;",
        );
        assert!(report.contains("by the primary key again"), "{report}");
        let report = check_rule(
            RULE,
            &[SCHEMA],
            "ALTER TABLE events REPLICA IDENTITY USING INDEX events_ext_id_key;",
        );
        assert!(
            report.contains("identify changed rows by that index's columns"),
            "{report}"
        );
        let report = check_rule(
            RULE,
            &[SCHEMA],
            "ALTER TABLE events REPLICA IDENTITY USING INDEX events_code_key;",
        );
        assert!(
            report.contains("PostgreSQL refuses the index as replica identity: code may be NULL"),
            "{report}"
        );
    }

    #[test]
    fn silent_on_new_tables() {
        assert_eq!(
            check_rule(
                RULE,
                &[SCHEMA],
                "CREATE TABLE t (id bigint PRIMARY KEY);\nALTER TABLE t REPLICA IDENTITY FULL;"
            ),
            ""
        );
    }
}
