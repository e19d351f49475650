//! REPLICA IDENTITY change.

use super::{Category, Diagnostic, Rule, Severity, StatementContext};

pub const RULE: Rule = Rule {
    id: "replica-identity-change",
    category: Category::Locking,
    default_severity: Severity::Warning,
    summary: "REPLICA IDENTITY change",
    doc: include_str!("../../rules/replica-identity-change.md"),
    check,
};

fn check(cx: &StatementContext, out: &mut Vec<Diagnostic>) {
    let _ = (cx, out);
}
