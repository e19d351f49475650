//! A data change (`UPDATE`, `DELETE`, `INSERT … SELECT`) in a transaction that already took a SHARE
//! or stronger lock on an existing relation with a DDL statement: locks are held until COMMIT, so
//! the DDL's short lock becomes as long as the data change. `ALTER TABLE … ADD COLUMN` followed by a
//! backfill `UPDATE` in one transaction keeps the table under ACCESS EXCLUSIVE for the whole
//! backfill.
//!
//! Only DDL before the data change counts (its lock is what the data change extends); an
//! `INSERT … VALUES` of literal rows is quick and not reported. The locks come from the lock model
//! (`held_locks`).

use super::unbatched_backfill::{Dml, Filter};
use super::{kinds, Category, Diagnostic, Kinds, Rule, Severity, StatementContext};
use crate::pg::locks::LockMode;
use crate::sql::ObjectName;

pub const RULE: Rule = Rule {
    id: "dml-in-ddl-transaction",
    category: Category::DataMigration,
    default_severity: Severity::Warning,
    size_graded: true,
    summary:
        "DML in the same transaction as a lock-taking DDL statement holds that lock throughout",
    doc: include_str!("../../rules/dml-in-ddl-transaction.md"),
    check,
    kinds: Kinds::Only(&[kinds::DML]),
};

fn check(cx: &StatementContext, out: &mut Vec<Diagnostic>) {
    let Some(dml) = Dml::of(cx) else {
        return;
    };
    if matches!(dml.filter, Filter::Insert { values_only: true }) {
        return;
    }
    let held = strong_locks(cx);
    let Some((first, mode, relation)) = held.first() else {
        return;
    };
    let verb = dml.verb.sql();
    out.push(cx.diagnostic(
        cx.statement.range.start,
        Some(relation),
        format!(
            "{verb} runs in a transaction that already holds {} from an earlier DDL statement, until \
             it commits: while the {verb} runs, {first} stays locked ({mode}: {})",
            describe(&held),
            mode.blocks()
        ),
        format!(
            "commit the schema change first and run the {verb} in transactions of its own: after the \
             COMMIT, or in a separate migration when the tool wraps the file in one transaction, \
             batched by key range, so the strong lock lasts only as long as the DDL"
        ),
    ));
}

/// The SHARE-or-stronger locks the transaction holds on relations that existed before the
/// migration, strongest first: (qualified name, mode, relation as written).
fn strong_locks(cx: &StatementContext) -> Vec<(String, LockMode, ObjectName)> {
    let mut held: Vec<(String, LockMode, ObjectName)> = Vec::new();
    for lock in cx
        .held_locks
        .iter()
        .filter(|held| held.mode >= LockMode::Share && cx.is_existing(&held.relation))
    {
        let name = cx.qualified(&lock.relation);
        match held.iter_mut().find(|(known, _, _)| *known == name) {
            Some(entry) => entry.1 = entry.1.max(lock.mode),
            None => held.push((name, lock.mode, lock.relation.clone())),
        }
    }
    held.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    held
}

/// At most this many relations are named per lock mode.
const LISTED: usize = 5;

/// `ACCESS EXCLUSIVE on public.a, public.b; SHARE on public.c`, modes in the order given.
fn describe(held: &[(String, LockMode, ObjectName)]) -> String {
    let mut modes: Vec<LockMode> = held.iter().map(|(_, mode, _)| *mode).collect();
    modes.dedup();
    modes
        .iter()
        .map(|mode| {
            let names: Vec<&str> = held
                .iter()
                .filter(|(_, m, _)| m == mode)
                .map(|(name, _, _)| name.as_str())
                .collect();
            let more = match names.len().saturating_sub(LISTED) {
                0 => String::new(),
                n => format!(" and {n} more"),
            };
            let shown = names.get(..LISTED).unwrap_or(&names);
            format!("{mode} on {}{more}", shown.join(", "))
        })
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use crate::migration::Transaction;
    use crate::rules::testing::{check_rule, render_rule, review_in};

    const RULE: &str = "dml-in-ddl-transaction";
    const HISTORY: &str = "CREATE TABLE users (id bigint PRIMARY KEY, email text);\n\
                           CREATE TABLE orders (id bigint PRIMARY KEY, user_id bigint);";

    #[test]
    fn fires_on_a_backfill_after_add_column_in_one_transaction() {
        assert_eq!(
            check_rule(
                RULE,
                &[HISTORY],
                "BEGIN;\nALTER TABLE users ADD COLUMN name text;\nUPDATE users SET name = email;\nCOMMIT;"
            ),
            "\
warning[dml-in-ddl-transaction]: UPDATE runs in a transaction that already holds ACCESS EXCLUSIVE on public.users from an earlier DDL statement, until it commits: while the UPDATE runs, public.users stays locked (ACCESS EXCLUSIVE: blocks reads and writes)
 --> migration.sql:3:1
  |
3 | UPDATE users SET name = email;
  | ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
  |
  = help: commit the schema change first and run the UPDATE in transactions of its own: after the COMMIT, or in a separate migration when the tool wraps the file in one transaction, batched by key range, so the strong lock lasts only as long as the DDL

"
        );
    }

    #[test]
    fn lists_every_strong_lock_strongest_first() {
        let review = review_in(
            &[HISTORY],
            "CREATE INDEX orders_user_id_idx ON orders (user_id);\nALTER TABLE public.users ADD COLUMN name text;\n\
             ALTER TABLE users ALTER COLUMN name SET DEFAULT '';\nDELETE FROM orders WHERE user_id IS NULL;",
            Transaction::Wrapped,
        );
        let report = render_rule(RULE, &review);
        assert!(
            report.contains("DELETE runs in a transaction that already holds ACCESS EXCLUSIVE on public.users; SHARE on public.orders from"),
            "{report}"
        );
    }

    #[test]
    fn names_at_most_five_relations_per_lock_mode() {
        let tables: String = (1..=7)
            .map(|i| format!("CREATE TABLE t{i} (id int);\n"))
            .collect();
        let alters: String = (1..=7)
            .map(|i| format!("ALTER TABLE t{i} ADD COLUMN note text;\n"))
            .collect();
        let review = review_in(
            &[&tables],
            &format!("{alters}UPDATE t1 SET note = '';"),
            Transaction::Wrapped,
        );
        let report = render_rule(RULE, &review);
        assert!(
            report.contains("holds ACCESS EXCLUSIVE on public.t1, public.t2, public.t3, public.t4, public.t5 and 2 more from"),
            "{report}"
        );
    }

    #[test]
    fn fires_on_insert_select() {
        let report = check_rule(
            RULE,
            &[HISTORY],
            "BEGIN;\nCREATE INDEX orders_user_id_idx ON orders (user_id);\nINSERT INTO orders SELECT id, id FROM users;\nCOMMIT;",
        );
        assert!(
            report
                .contains("INSERT runs in a transaction that already holds SHARE on public.orders"),
            "{report}"
        );
        assert!(
            report.contains("(SHARE: blocks writes (INSERT, UPDATE, DELETE); reads continue)"),
            "{report}"
        );
    }

    #[test]
    fn silent_outside_such_transactions() {
        for sql in [
            // Each statement commits on its own.
            "ALTER TABLE users ADD COLUMN name text;\nUPDATE users SET name = email;",
            // The data change comes first.
            "BEGIN;\nUPDATE users SET email = lower(email);\nALTER TABLE users ADD COLUMN name text;\nCOMMIT;",
            // Committed in between.
            "BEGIN;\nALTER TABLE users ADD COLUMN name text;\nCOMMIT;\nBEGIN;\nUPDATE users SET name = email;\nCOMMIT;",
            // Literal rows, a new table, weak locks.
            "BEGIN;\nALTER TABLE users ADD COLUMN name text;\nINSERT INTO orders VALUES (1, 1);\nCOMMIT;",
            "BEGIN;\nCREATE TABLE tags (id bigint);\nALTER TABLE tags ADD COLUMN name text;\nINSERT INTO tags SELECT id, email FROM users;\nCOMMIT;",
            "BEGIN;\nALTER TABLE users VALIDATE CONSTRAINT users_pkey;\nUPDATE users SET email = lower(email);\nCOMMIT;",
        ] {
            assert_eq!(check_rule(RULE, &[HISTORY], sql), "", "{sql}");
        }
    }
}
