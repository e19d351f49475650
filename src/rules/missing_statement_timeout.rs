//! `lock_timeout` bounds how long a statement waits for its lock; nothing bounds how long it then runs
//! while holding it. A scan or rewrite that takes far longer than on the developer's copy of the data
//! keeps the table blocked until it ends. `statement_timeout` cancels it (and rolls back) instead.
//! The counterpart of `missing-lock-timeout`: same locks (SHARE or stronger on an existing relation),
//! reported once per migration, but locks the transaction already holds count too, since the
//! statement's run time extends how long they block others.

use super::context::strongest_lock_on_existing;
use super::{Category, Diagnostic, Kinds, Rule, Severity, StatementContext};
use crate::pg::locks::LockMode;

pub const RULE: Rule = Rule {
    id: "missing-statement-timeout",
    category: Category::Locking,
    default_severity: Severity::Info,
    size_graded: false,
    summary: "a strong lock taken without statement_timeout",
    doc: include_str!("../../rules/missing-statement-timeout.md"),
    check,
    kinds: Kinds::All,
};

fn check(cx: &StatementContext, out: &mut Vec<Diagnostic>) {
    if cx.tx.statement_timeout {
        return;
    }
    let Some(lock) = strongest_lock_on_existing(cx, LockMode::Share, false) else {
        return;
    };
    let relation = cx.qualified(&lock.relation);
    let mode = lock.mode.sql_name();
    let statement = cx.statement.label_or("this statement");
    let help = if cx.tx.in_transaction {
        "add `SET LOCAL statement_timeout = '1min';` at the start of the transaction (or `SET \
         statement_timeout = '1min';` at the top of the migration), sized to the slowest statement you \
         expect: a statement that runs longer is cancelled and rolled back instead of keeping the table \
         blocked"
    } else {
        "add `SET statement_timeout = '1min';` at the top of the migration, sized to the slowest statement \
         you expect: a statement that runs longer is cancelled and rolled back instead of keeping the table \
         blocked"
    };
    // One `SET statement_timeout` at the top covers every statement: report the first, list the others.
    let mut diagnostic = cx.diagnostic(
        cx.statement.range.start,
        Some(&lock.relation),
        format!(
            "{statement} holds {mode} on {relation} and no statement_timeout is set: nothing limits how long \
             it runs (or waits) while {relation} stays blocked ({mode} {})",
            lock.mode.blocks()
        ),
        help.to_owned(),
    );
    diagnostic.once_per_migration = true;
    out.push(diagnostic);
}

#[cfg(test)]
mod tests {
    use crate::migration::Transaction;
    use crate::rules::testing::{check_rule, render_rule, review_in};

    const RULE: &str = "missing-statement-timeout";
    const SCHEMA: &str = "CREATE TABLE users (id bigint PRIMARY KEY, email text);";

    #[test]
    fn fires_once_per_migration() {
        assert_eq!(
            check_rule(
                RULE,
                &[SCHEMA],
                "ALTER TABLE users ADD COLUMN nickname text;\nCREATE INDEX users_email_idx ON users (email);"
            ),
            "\
info[missing-statement-timeout]: ALTER TABLE holds ACCESS EXCLUSIVE on public.users and no statement_timeout is set: nothing limits how long it runs (or waits) while public.users stays blocked (ACCESS EXCLUSIVE blocks reads and writes) (the same holds for 1 later statement of this migration, on line 2)
 --> migration.sql:1:1
  |
1 | ALTER TABLE users ADD COLUMN nickname text;
  | ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
  |
  = help: add `SET statement_timeout = '1min';` at the top of the migration, sized to the slowest statement you expect: a statement that runs longer is cancelled and rolled back instead of keeping the table blocked

"
        );
    }

    #[test]
    fn a_lock_already_held_still_counts() {
        let review = review_in(
            &[SCHEMA],
            "ALTER TABLE users ADD COLUMN nickname text;\nALTER TABLE users ALTER COLUMN nickname SET NOT NULL;",
            Transaction::Wrapped,
        );
        let report = render_rule(RULE, &review);
        assert!(report.contains("on line 2)"), "{report}");
        assert!(
            report.contains("`SET LOCAL statement_timeout = '1min';`"),
            "{report}"
        );
    }

    #[test]
    fn silent_with_statement_timeout_weak_locks_or_new_tables() {
        for sql in [
            "SET statement_timeout = '1min';\nALTER TABLE users ADD COLUMN nickname text;",
            "BEGIN;\nSET LOCAL statement_timeout = '30s';\nALTER TABLE users ADD COLUMN nickname text;\nCOMMIT;",
            "CREATE INDEX CONCURRENTLY users_email_idx ON users (email);",
            "ALTER TABLE users ALTER COLUMN email SET STATISTICS 500;",
            "CREATE TABLE t (id bigint);\nALTER TABLE t ADD COLUMN a text;",
        ] {
            assert_eq!(check_rule(RULE, &[SCHEMA], sql), "", "{sql}");
        }
    }
}
