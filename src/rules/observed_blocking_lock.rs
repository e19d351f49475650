//! The shadow's trace saw a lock that blocks writes (SHARE or stronger) on a relation that existed
//! before the migration, stronger than the static lock model predicted for the statement. Reported by
//! the shadow stage of the review.

use super::{trace_only, Category, Kinds, Rule, Severity};

pub const RULE: Rule = Rule {
    id: "observed-blocking-lock",
    category: Category::Shadow,
    default_severity: Severity::Warning,
    size_graded: true,
    summary: "the shadow saw a blocking lock stronger than the lock model predicted",
    doc: include_str!("../../rules/observed-blocking-lock.md"),
    check: trace_only,
    kinds: Kinds::Only(&[]),
};
