//! REINDEX without CONCURRENTLY blocks writes (and reads through the index) while it rebuilds.

use super::{Category, Diagnostic, Rule, Severity, StatementContext};

pub const RULE: Rule = Rule {
    id: "reindex-not-concurrent",
    category: Category::Locking,
    default_severity: Severity::Error,
    summary:
        "REINDEX without CONCURRENTLY blocks writes (and reads through the index) while it rebuilds",
    doc: include_str!("../../rules/reindex-not-concurrent.md"),
    check,
};

fn check(cx: &StatementContext, out: &mut Vec<Diagnostic>) {
    let _ = (cx, out);
}
