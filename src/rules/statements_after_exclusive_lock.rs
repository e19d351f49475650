//! A transaction keeps every lock until it ends. Once a statement has taken ACCESS EXCLUSIVE on an
//! existing table, nobody can read or write that table until COMMIT; what matters is what makes that
//! hold long: a later scan, rewrite, index build or data change, or a wait for a lock on another
//! relation (a lock chain, bounded when `lock_timeout` is set). Instant catalog-only statements on
//! relations the transaction already holds (a second `ADD CONSTRAINT … NOT VALID`, a `SET NOT NULL`
//! proven by a validated CHECK, a `DROP CONSTRAINT`) keep the lock for microseconds and are not
//! reported. Reported on the first such statement of a migration, the later ones listed with it.

use super::context::strongest_lock_on_existing;
use super::{Category, Diagnostic, Kinds, Rule, Severity, StatementContext};
use crate::pg::locks::LockMode;
use crate::sql::{Kind, Statement};

pub const RULE: Rule = Rule {
    id: "statements-after-exclusive-lock",
    category: Category::Locking,
    default_severity: Severity::Warning,
    // How long the lock is held depends on the later statements, not on the locked table's size.
    size_graded: false,
    summary: "a slow statement while the transaction holds ACCESS EXCLUSIVE on an existing table",
    doc: include_str!("../../rules/statements-after-exclusive-lock.md"),
    check,
    kinds: Kinds::All,
};

fn check(cx: &StatementContext, out: &mut Vec<Diagnostic>) {
    if cx.tx.transaction.is_none() || is_trivial(cx.statement) {
        return;
    }
    // The earliest statement of the transaction that took ACCESS EXCLUSIVE on an existing relation.
    let Some((holder, relation)) = cx
        .held_locks
        .first_exclusive_on_existing(|relation| cx.is_existing(relation))
    else {
        return;
    };
    let (holder, relation) = (cx.unit(holder), relation.clone());
    let Some(slow) = what_makes_it_slow(cx) else {
        return;
    };
    let name = cx.qualified(&relation);
    let label = label(cx.statement);
    let help = if cx.tx.tool_transaction {
        "end the transaction right after the statement that takes ACCESS EXCLUSIVE: the migration tool \
         runs this file in one transaction, so move that statement (with a short lock_timeout) into a \
         migration of its own and the slow work into the next one"
    } else {
        "COMMIT right after the statement that takes ACCESS EXCLUSIVE (keep it alone in its transaction, \
         with a short `SET LOCAL lock_timeout`) and run the slow work in transactions of its own"
    };
    let mut diagnostic = cx.diagnostic(
        cx.statement.range.start,
        Some(&relation),
        format!(
            "{label} {slow} while this transaction still holds ACCESS EXCLUSIVE on existing table \
             {name}, taken by {} on line {}: all reads and writes of {name} wait until COMMIT, for as \
             long as it takes",
            label_of(holder),
            cx.line_of(holder.range.start)
        ),
        help.to_owned(),
    );
    diagnostic.once_per_migration = true;
    out.push(diagnostic);
}

/// The rules whose findings mean the statement reads every row of an existing table.
const SCANS: &[&Rule] = &[
    &super::add_check_without_not_valid::RULE,
    &super::add_foreign_key_without_not_valid::RULE,
    &super::set_not_null::RULE,
    &super::attach_partition_scan::RULE,
    &super::alter_domain_add_constraint::RULE,
];

/// … that it rewrites an existing table.
const REWRITES: &[&Rule] = &[
    &super::add_column_rewrites_table::RULE,
    &super::column_type_change_rewrites::RULE,
    &super::table_rewrite_command::RULE,
];

/// … that it builds an index (or a materialized view's contents) over an existing table.
const BUILDS: &[&Rule] = &[
    &super::index_not_concurrent::RULE,
    &super::reindex_not_concurrent::RULE,
    &super::add_unique_constraint::RULE,
    &super::add_primary_key::RULE,
    &super::add_exclusion_constraint::RULE,
    &super::refresh_matview_not_concurrent::RULE,
];

/// What makes the statement take long, as a clause ("changes rows", "scans public.orders"); `None`
/// for an instant catalog-only change of relations the transaction already holds.
fn what_makes_it_slow(cx: &StatementContext) -> Option<String> {
    let kind = cx.statement.class.kind;
    if matches!(
        kind,
        Kind::Insert | Kind::Update | Kind::Delete | Kind::Copy
    ) {
        return Some("changes rows".into());
    }
    if kind == Kind::Select && (cx.sql().contains('(') || !cx.locks().is_empty()) {
        return Some(
            "runs a query (it reads rows or calls a function, which may change them)".into(),
        );
    }
    if kind == Kind::AlterTable
        && cx
            .statement
            .find_keywords(cx.text, &["VALIDATE", "CONSTRAINT"])
            .is_some()
    {
        return Some("validates a constraint (a scan of the table)".into());
    }
    for (rules, what) in [
        (SCANS, "scans"),
        (REWRITES, "rewrites"),
        (BUILDS, "builds an index on"),
    ] {
        if let Some(table) = rules.iter().find_map(|rule| on_existing_table(cx, rule)) {
            return Some(format!("{what} {table}"));
        }
    }
    // A lock it may queue for: on another relation, or stronger than the one already held.
    if !cx.tx.lock_timeout {
        if let Some(lock) = strongest_lock_on_existing(cx, LockMode::AccessShare, true) {
            return Some(format!(
                "waits for {} on {} with no lock_timeout set (behind any query on it, for as long as that query runs)",
                lock.mode.sql_name(),
                cx.qualified(&lock.relation)
            ));
        }
    }
    // Neither parsed nor recognised: what it does is unknown, so it may be slow.
    let unknown = cx.statement.ast().is_none() && kind == Kind::Other;
    let opaque_block = kind == Kind::Do && cx.statement.nested.is_empty();
    (unknown || opaque_block).then(|| "may take long (migagent cannot tell what it does)".into())
}

/// The existing table a rule's finding on this statement is about ("public.orders").
fn on_existing_table(cx: &StatementContext, rule: &Rule) -> Option<String> {
    let mut found = Vec::new();
    (rule.check)(cx, &mut found);
    found
        .into_iter()
        .find_map(|diagnostic| match diagnostic.table {
            Some(table) if !cx.catalog.is_new_relation(&table) => Some(table.to_string()),
            Some(_) => None,
            None => Some("its table".into()),
        })
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

fn label(statement: &Statement) -> &str {
    statement.label_or("this statement")
}

fn label_of(statement: &Statement) -> &str {
    statement.label_or("a statement")
}

#[cfg(test)]
mod tests {
    use crate::migration::Transaction;
    use crate::rules::testing::{check_rule, render_rule, review_in};

    const RULE: &str = "statements-after-exclusive-lock";
    const SCHEMA: &str = "CREATE TABLE users (id bigint PRIMARY KEY, email text);\n\
                          CREATE TABLE orders (id bigint PRIMARY KEY, user_id bigint, total numeric);";

    #[test]
    fn fires_on_a_data_change_after_the_lock() {
        assert_eq!(
            check_rule(
                RULE,
                &[SCHEMA],
                "BEGIN;\nALTER TABLE users ADD COLUMN nickname text;\nUPDATE orders SET total = 0 WHERE total IS NULL;\nCREATE INDEX orders_user_id_idx ON orders (user_id);\nCOMMIT;"
            ),
            "\
warning[statements-after-exclusive-lock]: UPDATE changes rows while this transaction still holds ACCESS EXCLUSIVE on existing table public.users, taken by ALTER TABLE on line 2: all reads and writes of public.users wait until COMMIT, for as long as it takes (the same holds for 1 later statement of this migration, on line 4)
 --> migration.sql:3:1
  |
3 | UPDATE orders SET total = 0 WHERE total IS NULL;
  | ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
  |
  = help: COMMIT right after the statement that takes ACCESS EXCLUSIVE (keep it alone in its transaction, with a short `SET LOCAL lock_timeout`) and run the slow work in transactions of its own

"
        );
    }

    #[test]
    fn reports_the_first_slow_statement_and_lists_the_others() {
        let sql = "BEGIN;\nALTER TABLE users ADD COLUMN a text;\nSET LOCAL statement_timeout = '1s';\n\
                   ALTER TABLE users ADD COLUMN b text;\nALTER TABLE orders ADD COLUMN c text;\nCOMMIT;\n\
                   BEGIN;\nALTER TABLE orders ADD COLUMN d text;\nCOMMIT;\n\
                   BEGIN;\nALTER TABLE orders DROP COLUMN d;\nSELECT 1;\nUPDATE users SET a = 'x';\nCOMMIT;";
        let report = check_rule(RULE, &[SCHEMA], sql);
        assert_eq!(report.matches("warning[").count(), 1, "{report}");
        // Line 4 adds a column to the table already held: instant. Line 5 queues for another table.
        assert!(report.contains("--> migration.sql:5:1"), "{report}");
        assert!(
            report.contains(
                "ALTER TABLE waits for ACCESS EXCLUSIVE on public.orders with no lock_timeout set"
            ),
            "{report}"
        );
        assert!(
            report.contains("1 later statement of this migration, on line 13"),
            "{report}"
        );
    }

    #[test]
    fn scans_rewrites_and_index_builds_are_slow() {
        for (sql, slow) in [
            (
                "ALTER TABLE users ADD CONSTRAINT c CHECK (email <> '');",
                "scans public.users",
            ),
            (
                "ALTER TABLE users ALTER COLUMN email TYPE int USING 0;",
                "rewrites public.users",
            ),
            (
                "CREATE INDEX users_email_idx ON users (email);",
                "builds an index on public.users",
            ),
            (
                "ALTER TABLE users VALIDATE CONSTRAINT c;",
                "validates a constraint",
            ),
        ] {
            let migration = format!(
                "BEGIN;\nSET LOCAL lock_timeout = '1s';\nALTER TABLE users ADD COLUMN a text;\n{sql}\nCOMMIT;"
            );
            let report = check_rule(RULE, &[SCHEMA], &migration);
            assert!(report.contains(slow), "{sql}: {report}");
        }
    }

    #[test]
    fn careful_migrations_are_not_reported() {
        let proven =
            "ALTER TABLE users ADD CONSTRAINT users_email_not_null CHECK (email IS NOT NULL);";
        for (history, sql) in [
            // NOT VALID twice on one table, and a lock on another one bounded by lock_timeout.
            (
                "",
                "BEGIN;\nSET LOCAL lock_timeout = '5s';\n\
                 ALTER TABLE orders ADD CONSTRAINT a CHECK (total > 0) NOT VALID;\n\
                 ALTER TABLE orders ADD CONSTRAINT b CHECK (user_id IS NOT NULL) NOT VALID;\n\
                 ALTER TABLE users ADD CONSTRAINT c CHECK (email <> '') NOT VALID;\nCOMMIT;",
            ),
            // SET NOT NULL proven by a validated CHECK, then the CHECK dropped.
            (
                proven,
                "BEGIN;\nALTER TABLE users ALTER COLUMN email SET NOT NULL;\n\
                 ALTER TABLE users DROP CONSTRAINT users_email_not_null;\nCOMMIT;",
            ),
        ] {
            let history: Vec<&str> = [SCHEMA, history]
                .into_iter()
                .filter(|h| !h.is_empty())
                .collect();
            assert_eq!(check_rule(RULE, &history, sql), "", "{sql}");
        }
        // Without lock_timeout the lock on the other table is a wait while the first is held.
        let unbounded = "BEGIN;\nALTER TABLE orders ADD CONSTRAINT a CHECK (total > 0) NOT VALID;\n\
                         ALTER TABLE users ADD CONSTRAINT c CHECK (email <> '') NOT VALID;\nCOMMIT;";
        assert!(check_rule(RULE, &[SCHEMA], unbounded)
            .contains("waits for ACCESS EXCLUSIVE on public.users"));
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
