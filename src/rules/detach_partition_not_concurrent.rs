//! DETACH PARTITION without CONCURRENTLY takes ACCESS EXCLUSIVE on the parent.

use super::{Category, Diagnostic, Rule, Severity, StatementContext};

pub const RULE: Rule = Rule {
    id: "detach-partition-not-concurrent",
    category: Category::Locking,
    default_severity: Severity::Warning,
    summary: "DETACH PARTITION without CONCURRENTLY takes ACCESS EXCLUSIVE on the parent",
    doc: include_str!("../../rules/detach-partition-not-concurrent.md"),
    check,
};

fn check(cx: &StatementContext, out: &mut Vec<Diagnostic>) {
    let _ = (cx, out);
}
