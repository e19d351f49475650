//! `CREATE INDEX` without `CONCURRENTLY` on an existing table holds a SHARE lock for the whole build:
//! every INSERT, UPDATE and DELETE on the table waits until the index is built.

use sqlparser::ast::Statement as Ast;

use super::fix::{Fix, Step};
use super::syntax::statement_with_word_after;
use super::{kinds, Category, Diagnostic, Kinds, Rule, Severity, StatementContext};
use crate::sql::{Kind, ObjectName};

pub const RULE: Rule = Rule {
    id: "index-not-concurrent",
    category: Category::Locking,
    default_severity: Severity::Error,
    size_graded: true,
    summary: "CREATE INDEX without CONCURRENTLY blocks writes to an existing table while it builds",
    doc: include_str!("../../rules/index-not-concurrent.md"),
    check,
    kinds: Kinds::Only(&[kinds::CREATE]),
};

fn check(cx: &StatementContext, out: &mut Vec<Diagnostic>) {
    let statement = cx.statement;
    let (table, concurrently) = match statement.ast() {
        Some(Ast::CreateIndex(index)) => {
            (ObjectName::from_ast(&index.table_name), index.concurrently)
        }
        None if statement.class.kind == Kind::CreateIndex => {
            (statement.class.target.clone(), statement.class.concurrently)
        }
        _ => return,
    };
    // `ON ONLY parent` builds nothing: it creates an invalid index on the partitioned parent alone.
    let Some(table) = table.filter(|_| !concurrently && !statement.class.on_only) else {
        return;
    };
    if !cx.keeps_finding_on(&table) {
        return;
    }
    let name = cx.qualified(&table);
    let Some(concurrent) = statement_with_word_after(cx, &["index"], "CONCURRENTLY") else {
        return;
    };
    out.push(
        cx.diagnostic(
            statement.range.start,
            Some(&table),
            format!(
                "CREATE INDEX on existing table {name} takes a SHARE lock for the whole build: \
             INSERT, UPDATE and DELETE on {name} wait until the index is built"
            ),
            format!(
                "create it with `{concurrent}`, outside a transaction block \
                 (it builds without blocking writes; if it fails, drop the INVALID index and retry){}",
                cx.settings.concurrent_build_caveat().unwrap_or_default()
            ),
        )
        .with_fix(cx.fixable().then(|| {
            Fix::replace(vec![Step::outside_transaction(
                concurrent,
                "builds the index without blocking writes; CONCURRENTLY cannot run in a transaction block",
            )])
        })),
    );
}

#[cfg(test)]
mod tests {
    use crate::rules::testing::{check_rule, check_rule_on};
    use crate::rules::RuleSettings;

    const USERS: &str = "CREATE TABLE users (id bigint PRIMARY KEY, email text);";

    #[test]
    fn fires_on_an_existing_table() {
        assert_eq!(
            check_rule(
                "index-not-concurrent",
                &[USERS],
                "CREATE INDEX users_email_idx ON users (email);"
            ),
            "\
error[index-not-concurrent]: CREATE INDEX on existing table public.users takes a SHARE lock for the whole build: INSERT, UPDATE and DELETE on public.users wait until the index is built
 --> migration.sql:1:1
  |
1 | CREATE INDEX users_email_idx ON users (email);
  | ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
  |
  = help: create it with `CREATE INDEX CONCURRENTLY users_email_idx ON users (email);`, outside a transaction block (it builds without blocking writes; if it fails, drop the INVALID index and retry)

"
        );
    }

    #[test]
    fn fires_on_unique_index_of_a_table_the_model_does_not_know() {
        let report = check_rule(
            "index-not-concurrent",
            &[],
            "CREATE UNIQUE INDEX \"User_email_key\" ON \"User\"(\"email\");",
        );
        assert!(report.contains("existing table public.User"), "{report}");
    }

    #[test]
    fn warns_of_the_concurrent_build_bug_of_postgres_14_0_to_14_3() {
        let on = |pg_version, pg_minor| {
            check_rule_on(
                "index-not-concurrent",
                RuleSettings {
                    pg_version,
                    pg_minor,
                },
                &[USERS],
                "CREATE INDEX users_email_idx ON users (email);",
            )
        };
        let known = on(14, Some(2));
        assert!(
            known.contains("retry); but PostgreSQL 14.2 has the bug that makes CREATE INDEX \
                 CONCURRENTLY and REINDEX CONCURRENTLY miss rows updated during the build, leaving a \
                 corrupt index (fixed in 14.4): upgrade to 14.4 or later first"),
            "{known}"
        );
        assert!(
            known.contains(
                "after upgrading, REINDEX every index built concurrently on this version"
            ),
            "{known}"
        );
        let unknown = on(14, None);
        assert!(
            unknown.contains(
                "retry); but PostgreSQL 14.0 to 14.3 have a bug that makes CREATE INDEX \
                 CONCURRENTLY"
            ),
            "{unknown}"
        );
        assert!(unknown.contains("`SHOW server_version`"), "{unknown}");
        for (major, minor) in [(14, Some(4)), (14, Some(18)), (15, None), (13, Some(2))] {
            let report = on(major, minor);
            assert!(report.contains("retry)\n"), "{major} {minor:?}: {report}");
            assert!(!report.contains("corrupt"), "{major} {minor:?}: {report}");
        }
    }

    #[test]
    fn silent_when_concurrent_on_a_new_table_or_on_only() {
        for sql in [
            "CREATE INDEX CONCURRENTLY users_email_idx ON users (email);",
            "CREATE TABLE events (id bigint, at timestamptz);\nCREATE INDEX events_at_idx ON events (at);",
            "CREATE INDEX users_email_idx ON ONLY users (email);",
        ] {
            assert_eq!(check_rule("index-not-concurrent", &[USERS], sql), "", "{sql}");
        }
    }
}
