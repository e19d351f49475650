//! ADD EXCLUDE builds its index under ACCESS EXCLUSIVE on an existing table.

use super::{Category, Diagnostic, Rule, Severity, StatementContext};

pub const RULE: Rule = Rule {
    id: "add-exclusion-constraint",
    category: Category::Locking,
    default_severity: Severity::Error,
    summary: "ADD EXCLUDE builds its index under ACCESS EXCLUSIVE on an existing table",
    doc: include_str!("../../rules/add-exclusion-constraint.md"),
    check,
};

fn check(cx: &StatementContext, out: &mut Vec<Diagnostic>) {
    let _ = (cx, out);
}
