//! A statement that takes SHARE or a stronger lock on an existing relation with no `lock_timeout`
//! set waits as long as it takes for that lock. While it waits in the lock queue behind a
//! long-running query or transaction, every later query that conflicts with the lock it wants queues
//! behind it: a one-millisecond `ALTER TABLE` turns into an outage as long as the oldest transaction.

use super::context::strongest_lock_on_existing;
use super::fix::{Fix, Step};
use super::{Category, Diagnostic, Kinds, Rule, Severity, StatementContext};
use crate::pg::locks::LockMode;

pub const RULE: Rule = Rule {
    id: "missing-lock-timeout",
    category: Category::Locking,
    default_severity: Severity::Warning,
    size_graded: false,
    summary: "a strong lock taken without lock_timeout can queue behind a long transaction and block everyone",
    doc: include_str!("../../rules/missing-lock-timeout.md"),
    check,
    kinds: Kinds::All,
};

/// How long a statement may wait for a lock before it fails and the migration can be retried.
const TIMEOUT: &str = "5s";
const PREAMBLE: &str = "SET lock_timeout = '5s';";

fn check(cx: &StatementContext, out: &mut Vec<Diagnostic>) {
    if cx.tx.lock_timeout {
        return;
    }
    // The strongest lock it must wait for on a relation that existed before the migration; a lock
    // the transaction already holds at least as strongly is not waited for.
    let Some(lock) = strongest_lock_on_existing(cx, LockMode::Share, true) else {
        return;
    };
    let relation = cx.qualified(&lock.relation);
    let mode = lock.mode.sql_name();
    let statement = cx.statement.label_or("this statement");
    let help = if cx.tx.in_transaction {
        format!(
            "add `SET LOCAL lock_timeout = '{TIMEOUT}';` at the start of the transaction (or \
             `{PREAMBLE}` at the top of the migration), and retry the migration when it times out"
        )
    } else {
        format!(
            "add `{PREAMBLE}` at the top of the migration, and retry the migration when it times out"
        )
    };
    // One `SET lock_timeout` at the top fixes every statement: report the first, list the others.
    let mut diagnostic = cx.diagnostic(
        cx.statement.range.start,
        Some(&lock.relation),
        format!(
            "{statement} needs {mode} on {relation} and no lock_timeout is set: behind a \
             long-running query on {relation} it waits indefinitely, and every query that conflicts \
             with it queues behind it meanwhile ({mode} {})",
            lock.mode.blocks()
        ),
        help,
    );
    diagnostic.once_per_migration = true;
    diagnostic.fix = cx.is_top_level().then(|| {
        Fix::before(vec![Step::transactional(
            PREAMBLE,
            "bounds the wait for each lock: a statement that cannot get its lock in time fails \
             instead of queueing every conflicting query behind it",
        )])
    });
    out.push(diagnostic);
}

#[cfg(test)]
mod tests {
    use crate::migration::Transaction;
    use crate::rules::testing::{check_rule, render_rule, review_in};

    const RULE: &str = "missing-lock-timeout";
    const SCHEMA: &str = "CREATE TABLE users (id bigint PRIMARY KEY, email text);";

    #[test]
    fn fires_on_a_strong_lock_without_lock_timeout() {
        assert_eq!(
            check_rule(RULE, &[SCHEMA], "ALTER TABLE users ADD COLUMN nickname text;"),
            "\
warning[missing-lock-timeout]: ALTER TABLE needs ACCESS EXCLUSIVE on public.users and no lock_timeout is set: behind a long-running query on public.users it waits indefinitely, and every query that conflicts with it queues behind it meanwhile (ACCESS EXCLUSIVE blocks reads and writes)
 --> migration.sql:1:1
  |
1 | ALTER TABLE users ADD COLUMN nickname text;
  | ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
  |
  = help: add `SET lock_timeout = '5s';` at the top of the migration, and retry the migration when it times out

"
        );
    }

    #[test]
    fn names_the_referenced_table_of_a_new_tables_foreign_key() {
        let report = check_rule(
            RULE,
            &[SCHEMA],
            "CREATE TABLE orders (id bigint PRIMARY KEY, user_id bigint REFERENCES users (id));",
        );
        assert!(
            report.contains("CREATE TABLE needs SHARE ROW EXCLUSIVE on public.users"),
            "{report}"
        );
        assert!(
            report.contains("(SHARE ROW EXCLUSIVE blocks writes"),
            "{report}"
        );
    }

    #[test]
    fn one_finding_per_migration_for_the_strongest_lock() {
        let report = check_rule(
            RULE,
            &[SCHEMA, "CREATE TABLE orders (id bigint PRIMARY KEY, user_id bigint);"],
            "ALTER TABLE orders ADD CONSTRAINT orders_user_id_fkey FOREIGN KEY (user_id) REFERENCES users (id) NOT VALID, \
             ALTER COLUMN user_id SET NOT NULL;",
        );
        assert_eq!(
            report.matches("warning[missing-lock-timeout]").count(),
            1,
            "{report}"
        );
        assert!(
            report.contains("ACCESS EXCLUSIVE on public.orders"),
            "{report}"
        );
    }

    #[test]
    fn suggests_set_local_inside_a_transaction() {
        let review = review_in(
            &[SCHEMA],
            "CREATE INDEX users_email_idx ON users (email);",
            Transaction::Wrapped,
        );
        let report = render_rule(RULE, &review);
        assert!(
            report.contains("CREATE INDEX needs SHARE on public.users"),
            "{report}"
        );
        assert!(
            report.contains("`SET LOCAL lock_timeout = '5s';`"),
            "{report}"
        );
    }

    #[test]
    fn a_lock_the_transaction_already_holds_is_not_waited_for_again() {
        let sql = "BEGIN;\n\
                   CREATE INDEX users_email_idx ON users (email);\n\
                   ALTER TABLE users ADD COLUMN nickname text;\n\
                   ALTER TABLE users ALTER COLUMN nickname SET NOT NULL;\n\
                   COMMIT;\n\
                   ALTER TABLE users DROP COLUMN nickname;";
        let report = check_rule(RULE, &[SCHEMA], sql);
        assert!(report.contains("migration.sql:2:1"), "{report}");
        // SHARE is held, ACCESS EXCLUSIVE is an upgrade that waits (line 3); line 4's lock is held
        // already; a new transaction waits again (line 6).
        assert!(
            report.contains(
                "(the same holds for 2 later statements of this migration, on lines 3 and 6)"
            ),
            "{report}"
        );
        let review = review_in(
            &[SCHEMA],
            "ALTER TABLE users ADD COLUMN a text;\nALTER TABLE users ADD COLUMN b text;",
            Transaction::Wrapped,
        );
        assert_eq!(render_rule(RULE, &review).matches("warning[").count(), 1);
    }

    #[test]
    fn detach_concurrently_still_waits_for_access_exclusive() {
        let report = check_rule(
            RULE,
            &[],
            "ALTER TABLE measurements DETACH PARTITION measurements_2020 CONCURRENTLY;",
        );
        assert!(
            report.contains("ACCESS EXCLUSIVE on public.measurements_2020"),
            "{report}"
        );
    }

    #[test]
    fn silent_with_lock_timeout_weak_locks_or_new_tables() {
        for sql in [
            "SET lock_timeout = '5s';\nALTER TABLE users ADD COLUMN nickname text;",
            "SELECT set_config('lock_timeout', '2s', false);\nALTER TABLE users ADD COLUMN nickname text;",
            "BEGIN;\nSET LOCAL lock_timeout = '5s';\nALTER TABLE users ADD COLUMN nickname text;\nCOMMIT;",
            "CREATE INDEX CONCURRENTLY users_email_idx ON users (email);",
            "ALTER TABLE users VALIDATE CONSTRAINT users_email_check;",
            "UPDATE users SET email = lower(email) WHERE id < 1000;",
            "CREATE TABLE events (id bigint PRIMARY KEY);\nALTER TABLE events ADD COLUMN at timestamptz;\nCREATE INDEX events_at_idx ON events (at);",
        ] {
            assert_eq!(check_rule(RULE, &[SCHEMA], sql), "", "{sql}");
        }
    }

    #[test]
    fn set_local_outside_a_transaction_does_not_count() {
        let report = check_rule(
            RULE,
            &[SCHEMA],
            "SET LOCAL lock_timeout = '5s';\nALTER TABLE users ADD COLUMN nickname text;",
        );
        assert!(report.contains("no lock_timeout is set"), "{report}");
    }
}
