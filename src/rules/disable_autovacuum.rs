//! Autovacuum_enabled = false.

use super::{Category, Diagnostic, Rule, Severity, StatementContext};

pub const RULE: Rule = Rule {
    id: "disable-autovacuum",
    category: Category::Locking,
    default_severity: Severity::Warning,
    summary: "autovacuum_enabled = false",
    doc: include_str!("../../rules/disable-autovacuum.md"),
    check,
};

fn check(cx: &StatementContext, out: &mut Vec<Diagnostic>) {
    let _ = (cx, out);
}
