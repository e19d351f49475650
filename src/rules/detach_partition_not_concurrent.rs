//! `ALTER TABLE parent DETACH PARTITION p` takes ACCESS EXCLUSIVE on the parent as well as on the
//! partition: every query on the whole partitioned table waits, and queues behind it while it waits
//! for running queries. `DETACH PARTITION … CONCURRENTLY` (PostgreSQL 14+) takes only SHARE UPDATE
//! EXCLUSIVE on the parent; its second phase still waits for ACCESS EXCLUSIVE on the partition, so it
//! still wants a lock_timeout. On older targets there is no remedy and the rule stays silent.

use sqlparser::ast::AlterTableOperation;

use super::context::unparsed_alter_clauses;
use super::syntax::{sql_name, AlterTable};
use super::{kinds, Category, Diagnostic, Kinds, Rule, Severity, StatementContext};
use crate::sql::ObjectName;

pub const RULE: Rule = Rule {
    id: "detach-partition-not-concurrent",
    category: Category::Locking,
    default_severity: Severity::Warning,
    size_graded: false,
    summary: "DETACH PARTITION without CONCURRENTLY takes ACCESS EXCLUSIVE on the parent",
    doc: include_str!("../../rules/detach-partition-not-concurrent.md"),
    check,
    kinds: Kinds::Only(&[kinds::ALTER]),
};

/// The first version with `DETACH PARTITION … CONCURRENTLY`.
const CONCURRENTLY_SINCE: u32 = 14;

fn check(cx: &StatementContext, out: &mut Vec<Diagnostic>) {
    if cx.settings.pg_version < CONCURRENTLY_SINCE {
        return;
    }
    for (offset, parent, partition) in plain_detaches(cx) {
        let name = cx.qualified(&parent);
        let parent_sql = sql_name(&cx.catalog.resolve(&parent));
        let partition_sql = sql_name(&cx.catalog.resolve(&partition));
        out.push(cx.diagnostic(
            offset,
            Some(&parent),
            format!(
                "DETACH PARTITION {} takes ACCESS EXCLUSIVE on the partitioned table {name}, not just on the \
                 partition: reads and writes on every partition of {name} wait while it queues behind \
                 running queries and until its transaction commits",
                cx.qualified(&partition)
            ),
            format!(
                "use `ALTER TABLE {parent_sql} DETACH PARTITION {partition_sql} CONCURRENTLY;` outside a \
                 transaction block: it takes only SHARE UPDATE EXCLUSIVE on {name}, but still waits for ACCESS \
                 EXCLUSIVE on the partition, so set a short lock_timeout; if it is interrupted, finish with \
                 `… DETACH PARTITION {partition_sql} FINALIZE;` (not possible while {name} has a DEFAULT \
                 partition)"
            ),
        ));
    }
}

/// Each `DETACH PARTITION` without CONCURRENTLY or FINALIZE: (offset, parent, partition).
fn plain_detaches(cx: &StatementContext) -> Vec<(usize, ObjectName, ObjectName)> {
    if let Some(alter) = AlterTable::of(cx) {
        return alter
            .operations
            .iter()
            .enumerate()
            .filter_map(|(i, operation)| match operation {
                AlterTableOperation::DetachPartitionOf {
                    partition,
                    mode: None,
                } => Some((
                    alter.offset(cx, i),
                    alter.table.clone(),
                    ObjectName::from_ast(partition)?,
                )),
                _ => None,
            })
            .collect();
    }
    let Some((parent, words, clauses)) = unparsed_alter_clauses(cx, &["detach", "partition"])
    else {
        return Vec::new();
    };
    clauses
        .into_iter()
        .filter(|clause| {
            words.find_in(clause.clone(), &["concurrently"]).is_none()
                && words.find_in(clause.clone(), &["finalize"]).is_none()
        })
        .filter_map(|clause| {
            Some((
                words.offset(clause.start)?,
                parent.clone(),
                words.name_at(clause.start + 2)?,
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use crate::migration::Transaction;
    use crate::review::{review_sql, ReviewOptions};
    use crate::rules::testing::{check_rule, render_rule};
    use crate::rules::RuleSettings;

    const RULE: &str = "detach-partition-not-concurrent";
    const SCHEMA: &str = "CREATE TABLE events (id bigint, at date) PARTITION BY RANGE (at);\n\
                          CREATE TABLE events_2020 PARTITION OF events FOR VALUES FROM ('2020-01-01') TO ('2021-01-01');";

    #[test]
    fn fires_on_a_plain_detach() {
        assert_eq!(
            check_rule(RULE, &[SCHEMA], "ALTER TABLE events DETACH PARTITION events_2020;"),
            "\
warning[detach-partition-not-concurrent]: DETACH PARTITION public.events_2020 takes ACCESS EXCLUSIVE on the partitioned table public.events, not just on the partition: reads and writes on every partition of public.events wait while it queues behind running queries and until its transaction commits
 --> migration.sql:1:20
  |
1 | ALTER TABLE events DETACH PARTITION events_2020;
  |                    ^^^^^^^^^^^^^^^^^^^^^^^^^^^^
  |
  = help: use `ALTER TABLE public.events DETACH PARTITION public.events_2020 CONCURRENTLY;` outside a transaction block: it takes only SHARE UPDATE EXCLUSIVE on public.events, but still waits for ACCESS EXCLUSIVE on the partition, so set a short lock_timeout; if it is interrupted, finish with `… DETACH PARTITION public.events_2020 FINALIZE;` (not possible while public.events has a DEFAULT partition)

"
        );
    }

    #[test]
    fn silent_before_postgres_14_concurrently_finalize_and_new_tables() {
        let options = ReviewOptions {
            rule_settings: RuleSettings {
                pg_version: 13,
                ..RuleSettings::default()
            },
            ..ReviewOptions::default()
        };
        let review = review_sql(
            "migration.sql",
            &[SCHEMA],
            "ALTER TABLE events DETACH PARTITION events_2020;",
            Transaction::None,
            &options,
        );
        assert_eq!(render_rule(RULE, &review), "");
        for sql in [
            "ALTER TABLE events DETACH PARTITION events_2020 CONCURRENTLY;",
            "ALTER TABLE events DETACH PARTITION events_2020 FINALIZE;",
            "CREATE TABLE logs (at date) PARTITION BY RANGE (at);\n\
             CREATE TABLE logs_1 PARTITION OF logs FOR VALUES FROM ('2020-01-01') TO ('2021-01-01');\n\
             ALTER TABLE logs DETACH PARTITION logs_1;",
        ] {
            assert_eq!(check_rule(RULE, &[SCHEMA], sql), "", "{sql}");
        }
    }
}
