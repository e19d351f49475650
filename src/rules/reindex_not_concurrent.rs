//! `REINDEX` without `CONCURRENTLY` rebuilds each index while holding SHARE on its table (writes wait)
//! and ACCESS EXCLUSIVE on the index. The planner takes a lock on every index of a table to plan any
//! query on it, so in practice reads stall too. `REINDEX … CONCURRENTLY` (PostgreSQL 12+) builds a
//! replacement next to the old index and swaps it in under SHARE UPDATE EXCLUSIVE. On older targets
//! there is no such remedy and the rule stays silent.

use super::fix::{Fix, Step};
use super::syntax::sql_name;
use super::{Category, Diagnostic, Kinds, Rule, Severity, StatementContext};
use crate::pg::locks::{ReindexKind, ReindexTarget, Words};
use crate::sql::{Kind, ObjectName};

pub const RULE: Rule = Rule {
    id: "reindex-not-concurrent",
    category: Category::Locking,
    default_severity: Severity::Error,
    size_graded: true,
    summary:
        "REINDEX without CONCURRENTLY blocks writes (and reads through the index) while it rebuilds",
    doc: include_str!("../../rules/reindex-not-concurrent.md"),
    check,
    kinds: Kinds::Only(&[&[Kind::Reindex]]),
};

/// The first version with `REINDEX CONCURRENTLY`.
const CONCURRENTLY_SINCE: u32 = 12;

fn check(cx: &StatementContext, out: &mut Vec<Diagnostic>) {
    if cx.statement.class.kind != Kind::Reindex || cx.settings.pg_version < CONCURRENTLY_SINCE {
        return;
    }
    let Some(target) = Words::of(cx.text, cx.statement).reindex_target() else {
        return;
    };
    // REINDEX SYSTEM only works on system catalogs, which cannot be reindexed concurrently.
    if target.concurrently || target.kind == ReindexKind::System {
        return;
    }
    let (table, what) = describe(cx, &target);
    let concurrent = format!("{};", concurrent_form(&target));
    out.push(cx.diagnostic(
        cx.statement.range.start,
        table.as_ref(),
        format!(
            "{what}: INSERT, UPDATE and DELETE wait until the rebuild is done, and so do practically all \
             reads, because the planner locks every index of a table to plan a query on it"
        ),
        format!(
            "use `{concurrent}` outside a transaction block: it builds a new copy of each index while \
             reads and writes continue, then swaps it in; if it fails it leaves an INVALID `…_ccnew` \
             index to drop{}",
            cx.settings.concurrent_build_caveat().unwrap_or_default()
        ),
    ).with_fix(cx.fixable().then(|| {
        Fix::replace(vec![Step::outside_transaction(
            concurrent,
            "rebuilds each index next to the old one and swaps it in while reads and writes \
             continue; CONCURRENTLY cannot run in a transaction block",
        )])
    })));
}

/// The table the finding is about (when there is one the model can name), and what the statement
/// locks, for the message.
fn describe(cx: &StatementContext, target: &ReindexTarget) -> (Option<ObjectName>, String) {
    let name = match (&target.name, target.kind) {
        (Some(n), ReindexKind::Index | ReindexKind::Table) => cx.qualified(n),
        (Some(n), _) => n.to_string(),
        (None, _) => "the current database".to_owned(),
    };
    match target.kind {
        ReindexKind::Index => {
            let table = target
                .name
                .as_ref()
                .and_then(|index| cx.catalog.index(index))
                .map(|index| index.table.clone());
            let what = match &table {
                Some(table) => format!(
                    "REINDEX INDEX {name} rebuilds it under SHARE on existing table {} and ACCESS \
                     EXCLUSIVE on the index",
                    cx.qualified(table)
                ),
                None => format!(
                    "REINDEX INDEX {name} rebuilds it under SHARE on its table (the model does not know \
                     the index, so not which table) and ACCESS EXCLUSIVE on the index"
                ),
            };
            (table, what)
        }
        ReindexKind::Table => (
            target.name.clone(),
            format!(
                "REINDEX TABLE {name} rebuilds every index of existing table {name} under SHARE on the \
                 table and ACCESS EXCLUSIVE on each index"
            ),
        ),
        ReindexKind::Schema | ReindexKind::Database | ReindexKind::System => (
            None,
            format!(
                "REINDEX {} {name} rebuilds the indexes of every table in it, one table at a time, each \
                 under SHARE on the table and ACCESS EXCLUSIVE on its indexes",
                kind_sql(target.kind)
            ),
        ),
    }
}

fn kind_sql(kind: ReindexKind) -> &'static str {
    match kind {
        ReindexKind::Index => "INDEX",
        ReindexKind::Table => "TABLE",
        ReindexKind::Schema => "SCHEMA",
        ReindexKind::Database => "DATABASE",
        ReindexKind::System => "SYSTEM",
    }
}

fn concurrent_form(target: &ReindexTarget) -> String {
    let mut sql = format!("REINDEX {} CONCURRENTLY", kind_sql(target.kind));
    if let Some(name) = &target.name {
        sql.push(' ');
        sql.push_str(&sql_name(name));
    }
    sql
}

#[cfg(test)]
mod tests {
    use crate::migration::Transaction;
    use crate::review::{review_sql, ReviewOptions};
    use crate::rules::testing::{check_rule, render_rule};
    use crate::rules::RuleSettings;

    const RULE: &str = "reindex-not-concurrent";
    const USERS: &str = "CREATE TABLE users (id bigint PRIMARY KEY, email text);\n\
                         CREATE INDEX users_email_idx ON users (email);";

    #[test]
    fn fires_on_reindex_index() {
        assert_eq!(
            check_rule(RULE, &[USERS], "REINDEX INDEX users_email_idx;"),
            "\
error[reindex-not-concurrent]: REINDEX INDEX public.users_email_idx rebuilds it under SHARE on existing table public.users and ACCESS EXCLUSIVE on the index: INSERT, UPDATE and DELETE wait until the rebuild is done, and so do practically all reads, because the planner locks every index of a table to plan a query on it
 --> migration.sql:1:1
  |
1 | REINDEX INDEX users_email_idx;
  | ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
  |
  = help: use `REINDEX INDEX CONCURRENTLY users_email_idx;` outside a transaction block: it builds a new copy of each index while reads and writes continue, then swaps it in; if it fails it leaves an INVALID `…_ccnew` index to drop

"
        );
    }

    #[test]
    fn fires_on_tables_schemas_and_databases() {
        let report = check_rule(RULE, &[USERS], "REINDEX (VERBOSE) TABLE public.users;");
        assert!(
            report.contains(
                "REINDEX TABLE public.users rebuilds every index of existing table public.users"
            ),
            "{report}"
        );
        assert!(
            report.contains("`REINDEX TABLE CONCURRENTLY public.users;`"),
            "{report}"
        );
        let report = check_rule(RULE, &[], "REINDEX DATABASE app;");
        assert!(
            report.contains("REINDEX DATABASE app rebuilds the indexes of every table"),
            "{report}"
        );
        assert!(
            report.contains("`REINDEX DATABASE CONCURRENTLY app;`"),
            "{report}"
        );
    }

    #[test]
    fn says_when_it_does_not_know_the_index() {
        let report = check_rule(RULE, &[], "REINDEX INDEX orders_pkey;");
        assert!(
            report.contains("(the model does not know the index, so not which table)"),
            "{report}"
        );
    }

    #[test]
    fn silent_before_postgres_12_concurrently_system_and_new_tables() {
        let options = ReviewOptions {
            rule_settings: RuleSettings {
                pg_version: 11,
                ..RuleSettings::default()
            },
            ..ReviewOptions::default()
        };
        let review = review_sql(
            "migration.sql",
            &[USERS],
            "REINDEX INDEX users_email_idx;",
            Transaction::None,
            &options,
        );
        assert_eq!(render_rule(RULE, &review), "");
        for sql in [
            "REINDEX INDEX CONCURRENTLY users_email_idx;",
            "REINDEX (CONCURRENTLY) TABLE users;",
            "REINDEX SYSTEM;",
            "CREATE TABLE t (id bigint);\nCREATE INDEX t_id_idx ON t (id);\nREINDEX INDEX t_id_idx;\nREINDEX TABLE t;",
        ] {
            assert_eq!(check_rule(RULE, &[USERS], sql), "", "{sql}");
        }
    }
}
