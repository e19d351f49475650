//! A `BEGIN` that nothing in the migration ends: psql reaches the end of the file, the session
//! closes, and PostgreSQL rolls the transaction back. Nothing after the BEGIN is applied, yet psql
//! exits successfully and the tool may record the migration as run. Until the session closes, the
//! transaction's locks stay held.
//!
//! Only a BEGIN that really opens a transaction is reported: one inside a transaction that is
//! already open is ignored by PostgreSQL, and `nested-transaction` reports it.

use super::nested_transaction::{session_in_transaction, transaction_end};
use super::{Category, Diagnostic, Kinds, Rule, Severity, StatementContext};
use crate::sql::Kind;

pub const RULE: Rule = Rule {
    id: "uncommitted-transaction",
    category: Category::Transactions,
    default_severity: Severity::Error,
    size_graded: false,
    summary: "BEGIN without COMMIT: the transaction is rolled back when the session ends",
    doc: include_str!("../../rules/uncommitted-transaction.md"),
    check,
    kinds: Kinds::Only(&[&[Kind::Begin]]),
};

fn check(cx: &StatementContext, out: &mut Vec<Diagnostic>) {
    if cx.statement.class.kind != Kind::Begin
        || session_in_transaction(cx)
        || transaction_end(cx).is_some()
    {
        return;
    }
    out.push(cx.diagnostic(
        cx.statement.range.start,
        None,
        "BEGIN opens a transaction that nothing in the migration ends (no COMMIT, END or ROLLBACK \
         after it): when the session closes, PostgreSQL rolls it back, so nothing after BEGIN is \
         applied, yet psql exits successfully; until then the transaction keeps every lock it took"
            .into(),
        "add `COMMIT;` after the last statement that belongs to the transaction".into(),
    ));
}

#[cfg(test)]
mod tests {
    use crate::migration::Transaction;
    use crate::rules::testing::{check_rule, render_rule, review_in};

    const RULE: &str = "uncommitted-transaction";
    const USERS: &str = "CREATE TABLE users (id bigint PRIMARY KEY, email text);";

    #[test]
    fn fires_on_a_begin_without_commit() {
        assert_eq!(
            check_rule(
                RULE,
                &[USERS],
                "BEGIN;\nALTER TABLE users ADD COLUMN name text;\nUPDATE users SET name = email;"
            ),
            "\
error[uncommitted-transaction]: BEGIN opens a transaction that nothing in the migration ends (no COMMIT, END or ROLLBACK after it): when the session closes, PostgreSQL rolls it back, so nothing after BEGIN is applied, yet psql exits successfully; until then the transaction keeps every lock it took
 --> migration.sql:1:1
  |
1 | BEGIN;
  | ^^^^^
  |
  = help: add `COMMIT;` after the last statement that belongs to the transaction

"
        );
    }

    #[test]
    fn fires_on_the_begin_left_open_after_a_committed_one() {
        let report = check_rule(
            RULE,
            &[USERS],
            "BEGIN;\nSELECT 1;\nCOMMIT;\nSTART TRANSACTION;\nALTER TABLE users ADD COLUMN name text;",
        );
        assert_eq!(report.matches("error[").count(), 1, "{report}");
        assert!(report.contains("--> migration.sql:4:1"), "{report}");
    }

    #[test]
    fn silent_when_the_transaction_ends() {
        for sql in [
            "BEGIN;\nALTER TABLE users ADD COLUMN name text;\nCOMMIT;",
            "BEGIN;\nALTER TABLE users ADD COLUMN name text;\nEND;",
            "BEGIN;\nALTER TABLE users ADD COLUMN name text;\nROLLBACK;",
            "BEGIN;\nBEGIN;\nSELECT 1;\nCOMMIT;",
            "ALTER TABLE users ADD COLUMN name text;",
        ] {
            assert_eq!(check_rule(RULE, &[USERS], sql), "", "{sql}");
        }
    }

    #[test]
    fn silent_on_a_begin_the_tool_transaction_swallows() {
        let review = review_in(
            &[USERS],
            "BEGIN;\nALTER TABLE users ADD COLUMN name text;",
            Transaction::Wrapped,
        );
        assert_eq!(render_rule(RULE, &review), "");
    }
}
