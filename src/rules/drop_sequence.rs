//! DROP SEQUENCE.

use super::{Category, Diagnostic, Rule, Severity, StatementContext};

pub const RULE: Rule = Rule {
    id: "drop-sequence",
    category: Category::DataLoss,
    default_severity: Severity::Warning,
    summary: "DROP SEQUENCE",
    doc: include_str!("../../rules/drop-sequence.md"),
    check,
};

fn check(cx: &StatementContext, out: &mut Vec<Diagnostic>) {
    let _ = (cx, out);
}
