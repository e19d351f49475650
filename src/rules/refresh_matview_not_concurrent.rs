//! REFRESH MATERIALIZED VIEW without CONCURRENTLY blocks reads of the view.

use super::{Category, Diagnostic, Rule, Severity, StatementContext};

pub const RULE: Rule = Rule {
    id: "refresh-matview-not-concurrent",
    category: Category::Locking,
    default_severity: Severity::Warning,
    summary: "REFRESH MATERIALIZED VIEW without CONCURRENTLY blocks reads of the view",
    doc: include_str!("../../rules/refresh-matview-not-concurrent.md"),
    check,
};

fn check(cx: &StatementContext, out: &mut Vec<Diagnostic>) {
    let _ = (cx, out);
}
