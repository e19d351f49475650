//! What a rewrite's trace must not show on a table that existed before it: a rewrite, or a scan
//! (validating a constraint, building an index, proving NOT NULL) while its transaction holds a
//! lock that blocks writes. Scans under SHARE UPDATE EXCLUSIVE (`VALIDATE CONSTRAINT`) and
//! CONCURRENTLY builds leave writes running, and are what the safe rewrites are made of. Nothing
//! writes a materialized view, so a scan of one under a lock short of ACCESS EXCLUSIVE (`REFRESH
//! MATERIALIZED VIEW CONCURRENTLY` holds EXCLUSIVE) keeps its readers running and blocks nobody.

use std::collections::HashMap;

use crate::pg::locks::LockMode;
use crate::schema::RelationKind;
use crate::shadow::trace::StatementTrace;

/// Where a traced statement sits in the draft, for reasons: "step 2 (line 1, ALTER TABLE)".
pub(super) struct StepStatement<'a> {
    pub step: usize,
    pub line: usize,
    pub label: &'a str,
}

impl std::fmt::Display for StepStatement<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "step {} ({}, line {} of the step)",
            self.step, self.label, self.line
        )
    }
}

/// The reasons one step's traces give; `existed` holds the relations of the baseline with their
/// kinds, named as traces name them (`public.orders`), and `at` places a statement of the step.
pub(super) fn blocking_reasons(
    traces: &[StatementTrace],
    existed: &HashMap<String, RelationKind>,
    at: impl Fn(&StatementTrace) -> String,
) -> Vec<String> {
    let mut reasons = Vec::new();
    // The strongest lock the open transaction holds per relation.
    let mut held: HashMap<&str, LockMode> = HashMap::new();
    for trace in traces {
        if !trace.in_transaction {
            held.clear();
        }
        for (lock, mode) in trace.strongest_locks() {
            let entry = held.entry(&lock.relation).or_insert(mode);
            *entry = (*entry).max(mode);
        }
        for table in trace.rewrites.iter().filter(|t| existed.contains_key(*t)) {
            let mode = held
                .get(table.as_str())
                .copied()
                .unwrap_or(LockMode::AccessExclusive);
            reasons.push(format!(
                "{} rewrites the existing table {} under {}: every row is copied and every index rebuilt while {}; add the column without the volatile default or type change, then backfill in batches",
                at(trace),
                table,
                mode.sql_name(),
                waiting(mode)
            ));
        }
        for scan in &trace.scans {
            let table = scan.relation.as_str();
            let Some(&mode) = held.get(table) else {
                continue;
            };
            let blocks = match existed.get(table) {
                None => false,
                Some(RelationKind::MaterializedView) => mode == LockMode::AccessExclusive,
                Some(_) => mode >= LockMode::Share,
            };
            if !blocks || trace.rewrites.iter().any(|t| t == table) {
                continue;
            }
            reasons.push(format!(
                "{} scans the existing table {} (validating a constraint, building an index or proving NOT NULL) while its transaction holds {} on it: {} for the whole scan; validate with VALIDATE CONSTRAINT in a step of its own, build indexes CONCURRENTLY, prove NOT NULL with a validated CHECK first",
                at(trace),
                table,
                mode.sql_name(),
                waiting(mode)
            ));
        }
    }
    reasons
}

/// Who waits while `mode` is held.
fn waiting(mode: LockMode) -> &'static str {
    if mode == LockMode::AccessExclusive {
        "reads and writes wait"
    } else {
        "writes wait"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shadow::trace::{LockTrace, RelationName, ScanTrace};

    /// `schema.name` (no dots in these names).
    fn name(relation: &str) -> RelationName {
        let (schema, name) = relation.split_once('.').unwrap_or(("public", relation));
        RelationName::new(schema, name)
    }

    fn trace(
        statement: usize,
        locks: &[(&str, &str)],
        scans: &[&str],
        in_transaction: bool,
    ) -> StatementTrace {
        StatementTrace {
            statement,
            applied: true,
            in_transaction,
            locks: locks
                .iter()
                .map(|(relation, mode)| LockTrace::new(&name(relation), mode))
                .collect(),
            scans: scans
                .iter()
                .map(|relation| ScanTrace::new(&name(relation), 1))
                .collect(),
            ..StatementTrace::default()
        }
    }

    fn reasons(traces: &[StatementTrace]) -> Vec<String> {
        let existed: HashMap<String, RelationKind> = [
            ("public.orders".to_owned(), RelationKind::Table),
            ("public.totals".to_owned(), RelationKind::MaterializedView),
        ]
        .into();
        blocking_reasons(traces, &existed, |t| {
            StepStatement {
                step: 1,
                line: t.statement + 1,
                label: "ALTER TABLE",
            }
            .to_string()
        })
    }

    #[test]
    fn a_scan_counts_the_locks_its_transaction_already_holds() {
        // ADD CONSTRAINT … NOT VALID, then VALIDATE in the same transaction.
        let same_transaction = [
            trace(0, &[("public.orders", "ShareRowExclusiveLock")], &[], true),
            trace(
                1,
                &[("public.orders", "ShareUpdateExclusiveLock")],
                &["public.orders"],
                true,
            ),
        ];
        let found = reasons(&same_transaction);
        assert_eq!(found.len(), 1);
        assert!(
            found[0].starts_with("step 1 (ALTER TABLE, line 2 of the step) scans the existing table public.orders (validating a constraint, building an index or proving NOT NULL) while its transaction holds SHARE ROW EXCLUSIVE on it: writes wait"),
            "{}",
            found[0]
        );
        // The same statements each committing on their own are fine.
        let own_transactions = [
            trace(0, &[("public.orders", "ShareRowExclusiveLock")], &[], false),
            trace(
                1,
                &[("public.orders", "ShareUpdateExclusiveLock")],
                &["public.orders"],
                false,
            ),
        ];
        assert!(reasons(&own_transactions).is_empty());
        // Tables the draft created block nobody.
        let new_table = [trace(
            0,
            &[("public.fresh", "ShareLock")],
            &["public.fresh"],
            false,
        )];
        assert!(reasons(&new_table).is_empty());
        // REFRESH MATERIALIZED VIEW CONCURRENTLY: EXCLUSIVE, which only other refreshes wait for.
        let refresh = [trace(
            0,
            &[("public.totals", "ExclusiveLock")],
            &["public.totals"],
            false,
        )];
        assert!(reasons(&refresh).is_empty());
        let refresh = [trace(
            0,
            &[("public.totals", "AccessExclusiveLock")],
            &["public.totals"],
            false,
        )];
        assert_eq!(reasons(&refresh).len(), 1);
    }

    #[test]
    fn rewrites_of_existing_tables_are_reasons() {
        let mut rewrite = trace(
            0,
            &[("public.orders", "AccessExclusiveLock")],
            &["public.orders"],
            true,
        );
        rewrite.rewrites = vec!["public.orders".into()];
        let found = reasons(&[rewrite]);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].contains("rewrites the existing table public.orders under ACCESS EXCLUSIVE"),
            "{}",
            found[0]
        );
    }
}
