//! The statement fails on the shadow database: the server's own verdict, with its SQLSTATE and
//! message. Reported by the shadow stage of the review from the statement's trace.

use super::{trace_only, Category, Kinds, Rule, Severity};

pub const RULE: Rule = Rule {
    id: "apply-failed",
    category: Category::Shadow,
    default_severity: Severity::Error,
    size_graded: false,
    summary: "the statement fails on the shadow database",
    doc: include_str!("../../rules/apply-failed.md"),
    check: trace_only,
    kinds: Kinds::Only(&[]),
};
