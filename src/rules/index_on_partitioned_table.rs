//! `CREATE INDEX` on a partitioned table builds one index per partition in a single statement, holding
//! SHARE on the parent and on every partition until all of them are built: writes to the whole
//! partitioned table stop. `CONCURRENTLY` is not allowed on a partitioned table (the statement
//! fails). The online recipe is an invalid parent index `ON ONLY`, a concurrent build per partition,
//! and `ALTER INDEX … ATTACH PARTITION` for each.

use sqlparser::ast::Statement as Ast;

use super::syntax::{sql_ident, sql_name};
use super::{kinds, Category, Diagnostic, Kinds, Rule, Severity, StatementContext};
use crate::schema::RelationKind;
use crate::sql::{Kind, ObjectName};

pub const RULE: Rule = Rule {
    id: "index-on-partitioned-table",
    category: Category::Locking,
    default_severity: Severity::Warning,
    size_graded: true,
    summary:
        "CREATE INDEX on a partitioned table locks every partition and cannot run CONCURRENTLY",
    doc: include_str!("../../rules/index-on-partitioned-table.md"),
    check,
    kinds: Kinds::Only(&[kinds::CREATE]),
};

/// A `CREATE INDEX` as this rule reads it.
struct NewIndex {
    table: ObjectName,
    name: Option<String>,
    /// The key list as written, `(ts)`, when sqlparser read it.
    columns: Option<String>,
    unique: bool,
    concurrently: bool,
}

/// The first version with `CREATE INDEX … ON ONLY` (and with indexes on partitioned tables at all).
const ON_ONLY_SINCE: u32 = 11;

fn check(cx: &StatementContext, out: &mut Vec<Diagnostic>) {
    if cx.settings.pg_version < ON_ONLY_SINCE {
        return;
    }
    let Some(index) = new_index(cx) else {
        return;
    };
    // The model must know the table is partitioned: a table it does not know is not assumed to be.
    let is_partitioned = cx
        .catalog
        .relation(&index.table)
        .is_some_and(|r| r.kind == RelationKind::PartitionedTable);
    if !is_partitioned || cx.statement.class.on_only {
        return;
    }
    let parent = cx.qualified(&index.table);
    let partitions = cx.catalog.partitions_of(&index.table).count();
    let each = match partitions {
        0 => "every partition".to_owned(),
        1 => "its 1 partition".to_owned(),
        n => format!("each of its {n} partitions"),
    };
    let message = if index.concurrently {
        format!(
            "CREATE INDEX CONCURRENTLY on partitioned table {parent} fails: PostgreSQL cannot build an \
             index on a partitioned table concurrently (\"cannot create index on partitioned table \
             concurrently\")"
        )
    } else {
        format!(
            "CREATE INDEX on partitioned table {parent} builds an index on {each} in one statement, \
             holding SHARE on {parent} and on every partition until the last one is built: INSERT, \
             UPDATE and DELETE on the whole table wait (and CONCURRENTLY is not allowed here)"
        )
    };
    out.push(cx.diagnostic(
        cx.statement.range.start,
        Some(&index.table),
        message,
        recipe(cx, &index),
    ));
}

fn new_index(cx: &StatementContext) -> Option<NewIndex> {
    let statement = cx.statement;
    match statement.ast() {
        Some(Ast::CreateIndex(index)) => Some(NewIndex {
            table: ObjectName::from_ast(&index.table_name)?,
            name: index
                .name
                .as_ref()
                .and_then(ObjectName::from_ast)
                .map(|n| n.name),
            columns: Some(format!(
                "({})",
                index
                    .columns
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
            unique: index.unique,
            concurrently: index.concurrently,
        }),
        None if statement.class.kind == Kind::CreateIndex => Some(NewIndex {
            table: statement.class.target.clone()?,
            name: None,
            columns: None,
            unique: statement.class.label.contains("UNIQUE"),
            concurrently: statement.class.concurrently,
        }),
        _ => None,
    }
}

/// The ON ONLY + per-partition CONCURRENTLY + ATTACH recipe, with a partition the model knows as
/// the example.
fn recipe(cx: &StatementContext, index: &NewIndex) -> String {
    let parent = sql_name(&cx.catalog.resolve(&index.table));
    let name = index
        .name
        .clone()
        .unwrap_or_else(|| format!("{}_idx", index.table.name));
    let columns = index.columns.as_deref().unwrap_or("(…)");
    let unique = if index.unique { "UNIQUE " } else { "" };
    let mut partitions: Vec<String> = cx
        .catalog
        .partitions_of(&index.table)
        .map(|p| p.name.name.clone())
        .collect();
    partitions.sort();
    let partition = partitions
        .first()
        .cloned()
        .unwrap_or_else(|| "<partition>".to_owned());
    let partition_index = format!(
        "{partition}_{}",
        name.trim_start_matches(&index.table.name)
            .trim_start_matches('_')
    );
    format!(
        "create the parent index without building anything: `CREATE {unique}INDEX {} ON ONLY {parent} \
         {columns};` (instant, INVALID until every partition has one); then for each partition, outside \
         a transaction block, `CREATE {unique}INDEX CONCURRENTLY {} ON {} {columns};` and `ALTER INDEX {} \
         ATTACH PARTITION {};`; the parent index becomes valid when the last one is attached{}",
        sql_ident(&name),
        sql_ident(&partition_index),
        sql_ident(&partition),
        sql_ident(&name),
        sql_ident(&partition_index),
        cx.settings.concurrent_build_caveat().unwrap_or_default(),
    )
}

#[cfg(test)]
mod tests {
    use crate::rules::testing::check_rule;

    const RULE: &str = "index-on-partitioned-table";
    const EVENTS: &str = "CREATE TABLE events (id bigint, at date) PARTITION BY RANGE (at);\n\
                          CREATE TABLE events_2024 PARTITION OF events FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');\n\
                          CREATE TABLE events_2025 PARTITION OF events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');";

    #[test]
    fn fires_on_a_partitioned_table() {
        assert_eq!(
            check_rule(RULE, &[EVENTS], "CREATE INDEX events_at_idx ON events (at);"),
            "\
warning[index-on-partitioned-table]: CREATE INDEX on partitioned table public.events builds an index on each of its 2 partitions in one statement, holding SHARE on public.events and on every partition until the last one is built: INSERT, UPDATE and DELETE on the whole table wait (and CONCURRENTLY is not allowed here)
 --> migration.sql:1:1
  |
1 | CREATE INDEX events_at_idx ON events (at);
  | ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
  |
  = help: create the parent index without building anything: `CREATE INDEX events_at_idx ON ONLY public.events (at);` (instant, INVALID until every partition has one); then for each partition, outside a transaction block, `CREATE INDEX CONCURRENTLY events_2024_at_idx ON events_2024 (at);` and `ALTER INDEX events_at_idx ATTACH PARTITION events_2024_at_idx;`; the parent index becomes valid when the last one is attached

"
        );
    }

    #[test]
    fn concurrently_fails_on_a_partitioned_table() {
        let report = check_rule(
            RULE,
            &[EVENTS],
            "CREATE UNIQUE INDEX CONCURRENTLY events_id_idx ON events (id, at);",
        );
        assert!(
            report.contains("CREATE INDEX CONCURRENTLY on partitioned table public.events fails"),
            "{report}"
        );
        assert!(
            report.contains(
                "`CREATE UNIQUE INDEX CONCURRENTLY events_2024_id_idx ON events_2024 (id, at);`"
            ),
            "{report}"
        );
    }

    #[test]
    fn silent_before_postgres_11() {
        use crate::migration::Transaction;
        use crate::review::{review_sql, ReviewOptions};
        use crate::rules::testing::render_rule;
        use crate::rules::RuleSettings;
        let options = ReviewOptions {
            rule_settings: RuleSettings {
                pg_version: 10,
                ..RuleSettings::default()
            },
            ..ReviewOptions::default()
        };
        let sql = "CREATE INDEX events_at_idx ON events (at);";
        let review = review_sql("migration.sql", &[EVENTS], sql, Transaction::None, &options);
        assert_eq!(render_rule(RULE, &review), "");
    }

    #[test]
    fn silent_on_only_plain_tables_unknown_tables_and_new_tables() {
        for sql in [
            "CREATE INDEX events_at_idx ON ONLY events (at);",
            "CREATE INDEX CONCURRENTLY events_2024_at_idx ON events_2024 (at);",
            "CREATE INDEX users_email_idx ON users (email);",
            "CREATE TABLE logs (at date) PARTITION BY RANGE (at);\nCREATE INDEX logs_at_idx ON logs (at);",
        ] {
            assert_eq!(check_rule(RULE, &[EVENTS], sql), "", "{sql}");
        }
    }
}
