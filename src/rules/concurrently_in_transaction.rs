//! `CREATE INDEX`, `DROP INDEX` and `REINDEX … CONCURRENTLY`, and `ALTER TABLE … DETACH PARTITION …
//! CONCURRENTLY`, cannot run inside a transaction block: PostgreSQL rejects them with SQLSTATE 25001
//! (`active_sql_transaction`) and the migration fails. The transaction may be the file's own `BEGIN`
//! or the one the migration tool wraps around the file. `REFRESH MATERIALIZED VIEW CONCURRENTLY` is
//! allowed in a transaction and is not reported.

use sqlparser::ast::{AlterTableOperation, DetachPartitionMode, Statement as Ast};

use super::{Category, Diagnostic, Kinds, Rule, Severity, StatementContext};
use crate::sql::Kind;

pub const RULE: Rule = Rule {
    id: "concurrently-in-transaction",
    category: Category::Locking,
    default_severity: Severity::Error,
    size_graded: false,
    summary: "CONCURRENTLY inside a transaction block fails",
    doc: include_str!("../../rules/concurrently-in-transaction.md"),
    check,
    kinds: Kinds::All,
};

fn check(cx: &StatementContext, out: &mut Vec<Diagnostic>) {
    if !cx.tx.in_transaction {
        return;
    }
    let Some(what) = concurrent_command(cx) else {
        return;
    };
    let (whose, help) = if cx.tx.tool_transaction {
        (
            "the migration tool runs this file in a transaction".to_owned(),
            "put it in a migration of its own that the tool runs outside a transaction \
             (sqlx `-- no-transaction`, dbmate `transaction:false`, Atlas `-- atlas:txmode none`; \
             for tools that send the whole file as one query, make it the only statement of its file)",
        )
    } else {
        let opened = match begin_line(cx) {
            Some(line) => format!("the file's BEGIN on line {line} opened a transaction"),
            None => "the file opened a transaction with BEGIN".to_owned(),
        };
        (
            opened,
            "move it after the COMMIT (or drop the BEGIN/COMMIT around it): CONCURRENTLY \
             commands run their own transactions and must be sent as top-level statements",
        )
    };
    out.push(cx.diagnostic(
        cx.offset_of(&["concurrently"]),
        // Not a lock finding on an existing table: it fails on new tables too.
        None,
        format!(
            "{what} cannot run inside a transaction block, and {whose}: PostgreSQL rejects it \
             with SQLSTATE 25001 (active_sql_transaction) and the migration fails"
        ),
        help.to_owned(),
    ));
}

/// How the statement names itself in the message, when it is a CONCURRENTLY command that refuses
/// to run in a transaction block.
fn concurrent_command(cx: &StatementContext) -> Option<String> {
    let class = &cx.statement.class;
    match cx.statement.ast() {
        Some(Ast::CreateIndex(index)) => index
            .concurrently
            .then(|| format!("{} CONCURRENTLY", class.label)),
        Some(Ast::AlterTable(alter)) => alter
            .operations
            .iter()
            .any(|op| {
                matches!(
                    op,
                    AlterTableOperation::DetachPartitionOf {
                        mode: Some(DetachPartitionMode::Concurrently),
                        ..
                    }
                )
            })
            .then(|| "ALTER TABLE … DETACH PARTITION … CONCURRENTLY".to_owned()),
        Some(_) => None,
        // sqlparser cannot read DROP INDEX CONCURRENTLY or REINDEX: use the classification.
        None if !class.concurrently => None,
        None => match class.kind {
            Kind::CreateIndex | Kind::DropIndex => Some(format!("{} CONCURRENTLY", class.label)),
            Kind::Reindex => Some("REINDEX … CONCURRENTLY".to_owned()),
            Kind::AlterTable
                if cx
                    .statement
                    .find_keywords(cx.text, &["detach", "partition"])
                    .is_some()
                    && cx.statement.find_keywords(cx.text, &["finalize"]).is_none() =>
            {
                Some("ALTER TABLE … DETACH PARTITION … CONCURRENTLY".to_owned())
            }
            _ => None,
        },
    }
}

/// The line of the `BEGIN` that opened the transaction this statement runs in.
fn begin_line(cx: &StatementContext) -> Option<usize> {
    let section = cx.statement.section;
    let begin = cx.statements[..cx.index]
        .iter()
        .rev()
        .take_while(|s| {
            s.section == section && !matches!(s.class.kind, Kind::Commit | Kind::Rollback)
        })
        .find(|s| s.class.kind == Kind::Begin)?;
    Some(cx.line_of(begin.range.start))
}

#[cfg(test)]
mod tests {
    use crate::migration::Transaction;
    use crate::rules::testing::{check_rule, render_rule, review_in};

    const RULE: &str = "concurrently-in-transaction";
    const USERS: &str = "CREATE TABLE users (id bigint PRIMARY KEY, email text);\n\
                         CREATE INDEX users_email_idx ON users (email);";

    #[test]
    fn fires_inside_the_files_own_transaction() {
        assert_eq!(
            check_rule(
                RULE,
                &[USERS],
                "BEGIN;\nCREATE INDEX CONCURRENTLY users_email_idx ON users (email);\nCOMMIT;"
            ),
            "\
error[concurrently-in-transaction]: CREATE INDEX CONCURRENTLY cannot run inside a transaction block, and the file's BEGIN on line 1 opened a transaction: PostgreSQL rejects it with SQLSTATE 25001 (active_sql_transaction) and the migration fails
 --> migration.sql:2:14
  |
2 | CREATE INDEX CONCURRENTLY users_email_idx ON users (email);
  |              ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
  |
  = help: move it after the COMMIT (or drop the BEGIN/COMMIT around it): CONCURRENTLY commands run their own transactions and must be sent as top-level statements

"
        );
    }

    #[test]
    fn fires_inside_the_tools_transaction() {
        let review = review_in(
            &[USERS],
            "DROP INDEX CONCURRENTLY IF EXISTS users_email_idx;",
            Transaction::Wrapped,
        );
        let report = render_rule(RULE, &review);
        assert!(
            report.contains(
                "DROP INDEX CONCURRENTLY cannot run inside a transaction block, and the migration tool runs this file in a transaction"
            ),
            "{report}"
        );
        assert!(report.contains("`-- no-transaction`"), "{report}");
    }

    #[test]
    fn fires_on_unparsed_reindex_and_on_detach_partition() {
        let report = check_rule(
            RULE,
            &[],
            "BEGIN;\nREINDEX INDEX CONCURRENTLY users_email_idx;\n\
             ALTER TABLE measurements DETACH PARTITION measurements_2020 CONCURRENTLY;\nCOMMIT;",
        );
        assert!(
            report.contains("REINDEX … CONCURRENTLY cannot run"),
            "{report}"
        );
        assert!(
            report.contains("ALTER TABLE … DETACH PARTITION … CONCURRENTLY cannot run"),
            "{report}"
        );
    }

    #[test]
    fn fires_on_a_table_created_in_the_same_transaction() {
        let report = check_rule(
            RULE,
            &[],
            "BEGIN;\nCREATE TABLE events (id bigint);\nCREATE INDEX CONCURRENTLY events_id_idx ON events (id);\nCOMMIT;",
        );
        assert!(report.contains("BEGIN on line 1"), "{report}");
    }

    #[test]
    fn silent_outside_a_transaction_and_for_refresh_concurrently() {
        for sql in [
            "CREATE INDEX CONCURRENTLY users_email_idx ON users (email);",
            "DROP INDEX CONCURRENTLY IF EXISTS users_email_idx;",
            "BEGIN;\nCREATE INDEX users_email_idx2 ON users (email);\nCOMMIT;\nREINDEX INDEX CONCURRENTLY users_email_idx;",
            "BEGIN;\nREFRESH MATERIALIZED VIEW CONCURRENTLY stats;\nCOMMIT;",
            "BEGIN;\nALTER TABLE measurements DETACH PARTITION measurements_2020 FINALIZE;\nCOMMIT;",
        ] {
            assert_eq!(check_rule(RULE, &[USERS], sql), "", "{sql}");
        }
        let review = review_in(
            &[USERS],
            "REFRESH MATERIALIZED VIEW CONCURRENTLY stats;",
            Transaction::Wrapped,
        );
        assert_eq!(render_rule(RULE, &review), "");
    }
}
