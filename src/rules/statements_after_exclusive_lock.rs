//! A transaction keeps every lock until it ends. Once a statement has taken ACCESS EXCLUSIVE on an
//! existing table, every later statement of the same transaction runs while nobody can read or
//! write that table: a backfill, an index build or a wait for another table's lock turns a
//! millisecond schema change into minutes of downtime (and lock-order deadlocks with the
//! application). Reported once per transaction, on the first statement that follows the lock.
//!
//! Also home of the transaction helpers `validate-in-same-transaction` uses: [`earlier_in_transaction`]
//! and [`lock_holder`].

use super::{Category, Diagnostic, Rule, Severity, StatementContext};
use crate::pg::locks::{statement_locks, LockMode};
use crate::sql::{Kind, ObjectName, Statement};

pub const RULE: Rule = Rule {
    id: "statements-after-exclusive-lock",
    category: Category::Locking,
    default_severity: Severity::Warning,
    // How long the lock is held depends on the later statements, not on the locked table's size.
    size_graded: false,
    summary: "more statements after an ACCESS EXCLUSIVE lock in the same transaction",
    doc: include_str!("../../rules/statements-after-exclusive-lock.md"),
    check,
};

fn check(cx: &StatementContext, out: &mut Vec<Diagnostic>) {
    if cx.tx.transaction.is_none() || is_trivial(cx.statement) {
        return;
    }
    // What the engine says the transaction holds…
    let holds_exclusive = cx
        .held_locks
        .iter()
        .any(|lock| lock.mode == LockMode::AccessExclusive && cx.is_existing(&lock.relation));
    if !holds_exclusive {
        return;
    }
    // …and which statement took it: the earliest that took ACCESS EXCLUSIVE on an existing relation.
    let earlier = earlier_in_transaction(cx);
    let Some((at, holder, relation)) = earlier
        .iter()
        .enumerate()
        .rev()
        .find_map(|(at, s)| exclusive_on_existing(cx, s).map(|relation| (at, *s, relation)))
    else {
        return;
    };
    // Only the first statement of substance after it: `earlier` is latest first.
    if earlier[..at].iter().any(|s| !is_trivial(s)) {
        return;
    }
    let name = cx.qualified(&relation);
    let label = label(cx.statement);
    let help = if cx.tx.tool_transaction {
        "end the transaction right after the statement that takes ACCESS EXCLUSIVE: the migration tool \
         runs this file in one transaction, so move that statement (with a short lock_timeout) into a \
         migration of its own and the rest into the next one"
    } else {
        "COMMIT right after the statement that takes ACCESS EXCLUSIVE (keep it alone in its transaction, \
         with a short `SET LOCAL lock_timeout`) and run the following statements in transactions of their \
         own"
    };
    out.push(cx.diagnostic(
        cx.statement.range.start,
        Some(&relation),
        format!(
            "{label} runs while this transaction still holds ACCESS EXCLUSIVE on existing table {name}, \
             taken by {} on line {}: every statement until COMMIT keeps all reads and writes of {name} \
             waiting",
            label_of(holder),
            cx.line_of(holder.range.start)
        ),
        help.to_owned(),
    ));
}

/// Statements that take no time worth counting: settings, savepoints, comments, grants.
fn is_trivial(statement: &Statement) -> bool {
    matches!(
        statement.class.kind,
        Kind::Set
            | Kind::Reset
            | Kind::Savepoint
            | Kind::Begin
            | Kind::Commit
            | Kind::Rollback
            | Kind::Comment
            | Kind::Grant
            | Kind::Revoke
    )
}

/// The first existing relation the statement takes ACCESS EXCLUSIVE on.
fn exclusive_on_existing(cx: &StatementContext, statement: &Statement) -> Option<ObjectName> {
    statement_locks(cx.text, statement, cx.catalog)
        .into_iter()
        .find(|lock| lock.mode == LockMode::AccessExclusive && cx.is_existing(&lock.relation))
        .map(|lock| lock.relation)
}

fn label(statement: &Statement) -> &str {
    statement.label_or("this statement")
}

fn label_of(statement: &Statement) -> &str {
    statement.label_or("a statement")
}

/// The statements that ran before this one in its transaction block, latest first, the plain
/// statements of DO blocks included; empty outside a transaction block. A tool's transaction spans
/// its whole section; a file's own ends at its BEGIN.
pub(super) fn earlier_in_transaction<'a>(cx: &StatementContext<'a>) -> Vec<&'a Statement> {
    let Some(outer) = cx.statements.get(cx.index) else {
        return Vec::new();
    };
    if cx.tx.transaction.is_none() {
        return Vec::new();
    }
    let units: Vec<&'a Statement> = cx.statements[..=cx.index]
        .iter()
        .flat_map(|s| std::iter::once(s).chain(&s.nested))
        .collect();
    let Some(current) = units.iter().position(|u| std::ptr::eq(*u, cx.statement)) else {
        return Vec::new();
    };
    let mut earlier = Vec::new();
    for unit in units[..current].iter().rev() {
        let ends_here = matches!(unit.class.kind, Kind::Begin | Kind::Commit | Kind::Rollback);
        if unit.section != outer.section || (ends_here && !cx.tx.tool_transaction) {
            break;
        }
        earlier.push(*unit);
    }
    earlier
}

/// Among `earlier` (latest first), the statement that took the strongest lock of at least
/// `at_least` on `relation` (the earliest on ties: it has held it since), with that lock's mode.
pub(super) fn lock_holder<'a>(
    cx: &StatementContext,
    earlier: &[&'a Statement],
    relation: &ObjectName,
    at_least: LockMode,
) -> Option<(&'a Statement, LockMode)> {
    let target = cx.catalog.resolve(relation);
    let mut holder: Option<(&'a Statement, LockMode)> = None;
    for &statement in earlier.iter().rev() {
        let mode = statement_locks(cx.text, statement, cx.catalog)
            .into_iter()
            .filter(|lock| cx.catalog.resolve(&lock.relation) == target)
            .map(|lock| lock.mode)
            .max()
            .filter(|mode| *mode >= at_least);
        if let Some(mode) = mode {
            if holder.is_none_or(|(_, strongest)| mode > strongest) {
                holder = Some((statement, mode));
            }
        }
    }
    holder
}

#[cfg(test)]
mod tests {
    use crate::migration::Transaction;
    use crate::rules::testing::{check_rule, render_rule, review_in};

    const RULE: &str = "statements-after-exclusive-lock";
    const SCHEMA: &str = "CREATE TABLE users (id bigint PRIMARY KEY, email text);\n\
                          CREATE TABLE orders (id bigint PRIMARY KEY, user_id bigint, total numeric);";

    #[test]
    fn fires_on_the_first_statement_after_the_lock() {
        assert_eq!(
            check_rule(
                RULE,
                &[SCHEMA],
                "BEGIN;\nALTER TABLE users ADD COLUMN nickname text;\nUPDATE orders SET total = 0 WHERE total IS NULL;\nCREATE INDEX orders_user_id_idx ON orders (user_id);\nCOMMIT;"
            ),
            "\
warning[statements-after-exclusive-lock]: UPDATE runs while this transaction still holds ACCESS EXCLUSIVE on existing table public.users, taken by ALTER TABLE on line 2: every statement until COMMIT keeps all reads and writes of public.users waiting
 --> migration.sql:3:1
  |
3 | UPDATE orders SET total = 0 WHERE total IS NULL;
  | ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
  |
  = help: COMMIT right after the statement that takes ACCESS EXCLUSIVE (keep it alone in its transaction, with a short `SET LOCAL lock_timeout`) and run the following statements in transactions of their own

"
        );
    }

    #[test]
    fn once_per_transaction_and_again_in_the_next_one() {
        let sql = "BEGIN;\nALTER TABLE users ADD COLUMN a text;\nSET LOCAL statement_timeout = '1s';\n\
                   ALTER TABLE users ADD COLUMN b text;\nALTER TABLE orders ADD COLUMN c text;\nCOMMIT;\n\
                   BEGIN;\nALTER TABLE orders ADD COLUMN d text;\nCOMMIT;\n\
                   BEGIN;\nALTER TABLE orders DROP COLUMN d;\nSELECT 1;\nCOMMIT;";
        let report = check_rule(RULE, &[SCHEMA], sql);
        assert_eq!(report.matches("warning[").count(), 2, "{report}");
        assert!(report.contains("--> migration.sql:4:1"), "{report}");
        assert!(
            report.contains("public.orders, taken by ALTER TABLE on line 11"),
            "{report}"
        );
    }

    #[test]
    fn in_a_tool_transaction_it_says_to_split_the_migration() {
        let review = review_in(
            &[SCHEMA],
            "ALTER TABLE users ADD COLUMN nickname text;\nCREATE INDEX orders_user_id_idx ON orders (user_id);",
            Transaction::Wrapped,
        );
        let report = render_rule(RULE, &review);
        assert!(
            report.contains("taken by ALTER TABLE on line 1"),
            "{report}"
        );
        assert!(
            report.contains("the migration tool runs this file in one transaction"),
            "{report}"
        );
    }

    #[test]
    fn silent_outside_transactions_on_new_tables_and_after_weaker_locks() {
        for sql in [
            "ALTER TABLE users ADD COLUMN nickname text;\nUPDATE orders SET total = 0;",
            "BEGIN;\nCREATE TABLE t (id bigint);\nALTER TABLE t ADD COLUMN a text;\nINSERT INTO t VALUES (1);\nCOMMIT;",
            "BEGIN;\nCREATE INDEX users_email_idx ON users (email);\nUPDATE orders SET total = 0;\nCOMMIT;",
            "BEGIN;\nALTER TABLE users ADD COLUMN nickname text;\nCOMMENT ON COLUMN users.nickname IS 'x';\nCOMMIT;",
            "BEGIN;\nALTER TABLE users ADD COLUMN nickname text;\nCOMMIT;\nUPDATE orders SET total = 0;",
        ] {
            assert_eq!(check_rule(RULE, &[SCHEMA], sql), "", "{sql}");
        }
    }
}
