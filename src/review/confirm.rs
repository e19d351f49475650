//! What the shadow's trace says about the static findings. A finding whose claim the trace can check
//! is confirmed or contradicted (`confirmed_by_shadow`); what the trace saw that the static lock model
//! did not predict becomes an `observed-*` finding. The trace never removes a finding: the shadow's
//! tables are empty, production's are not (DESIGN.md, "Shadow never cancels").

use crate::pg::locks::LockMode;
use crate::rules::{Category, Rule};
use crate::shadow::trace::StatementTrace;

/// What a rule's finding asserts about the statement, as far as a trace can check it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Claim {
    /// It takes the lock the static lock model predicts on the finding's table.
    Lock,
    /// It rewrites the finding's table.
    Rewrite,
    /// It scans the finding's table to validate something.
    Scan,
    /// It fails, whatever the data.
    Failure,
    /// It destroys or renames something: true once it applied.
    Applied,
    /// Nothing a trace on an empty copy can tell (failures that need rows, habits, transaction shape).
    Unverifiable,
}

fn claim_of(rule: &Rule) -> Claim {
    match rule.id {
        "add-column-rewrites-table" | "column-type-change-rewrites" | "table-rewrite-command" => {
            Claim::Rewrite
        }
        "add-check-without-not-valid"
        | "add-foreign-key-without-not-valid"
        | "set-not-null"
        | "attach-partition-scan"
        | "alter-domain-add-constraint" => Claim::Scan,
        "concurrently-in-transaction" => Claim::Failure,
        // Fails only when the table has rows, or is about what happens later in the transaction.
        "add-column-not-null-without-default"
        | "enum-value-in-transaction"
        | "statements-after-exclusive-lock"
        | "validate-in-same-transaction" => Claim::Unverifiable,
        _ => match rule.category {
            Category::Locking => Claim::Lock,
            Category::DataLoss | Category::Compatibility => Claim::Applied,
            _ => Claim::Unverifiable,
        },
    }
}

/// Whether a rule's finding explains a rewrite of its table seen in the trace: besides the rewrite
/// rules, commands that get a new relfilenode by design.
pub fn explains_rewrite(rule: &Rule) -> bool {
    claim_of(rule) == Claim::Rewrite
        || matches!(
            rule.id,
            "truncate-table" | "refresh-matview-not-concurrent" | "narrowing-type-change"
        )
}

/// Whether a rule's finding says the statement fails whatever the data: the trace's failure is then
/// that finding's, not a separate `apply-failed`.
pub fn claims_failure(rule: &Rule) -> bool {
    claim_of(rule) == Claim::Failure
}

/// `Some(true)` when the trace shows what the finding claims, `Some(false)` when it shows otherwise,
/// `None` when the trace cannot tell (or the statement never ran on the shadow).
///
/// `predicted` is the lock the static model predicts for the finding's table.
pub fn confirm(
    rule: &Rule,
    table: Option<&str>,
    predicted: Option<LockMode>,
    trace: &StatementTrace,
) -> Option<bool> {
    if trace.not_applied.is_some() {
        return None;
    }
    let failed = trace.error.is_some();
    match claim_of(rule) {
        Claim::Failure => Some(failed),
        Claim::Applied => Some(!failed),
        Claim::Unverifiable => None,
        // A statement that failed took no lasting lock and rewrote nothing; its own finding says so.
        _ if failed => None,
        Claim::Rewrite => Some(table.is_some_and(|t| trace.rewrites.iter().any(|r| r == t))),
        Claim::Scan => Some(table.is_some_and(|t| trace.scans.iter().any(|s| s.relation == t))),
        Claim::Lock => {
            let (table, predicted) = (table?, predicted?);
            match observed_lock(trace, table) {
                Some(mode) if mode >= predicted => Some(true),
                // Inside a transaction only the locks a statement adds are seen: one the transaction
                // already held at least as strongly does not show again.
                _ if trace.in_transaction => None,
                _ => Some(false),
            }
        }
    }
}

/// The strongest lock the trace saw on `relation`.
pub fn observed_lock(trace: &StatementTrace, relation: &str) -> Option<LockMode> {
    trace
        .strongest_locks()
        .into_iter()
        .find_map(|(locked, mode)| (locked.relation == relation).then_some(mode))
}

/// Locks that block reads or writes: SHARE and stronger conflict with ROW EXCLUSIVE (writes).
pub fn blocks_traffic(mode: LockMode) -> bool {
    mode >= LockMode::Share
}
