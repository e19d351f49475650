//! A type change that can truncate or fail on existing data.

use super::{Category, Diagnostic, Rule, Severity, StatementContext};

pub const RULE: Rule = Rule {
    id: "narrowing-type-change",
    category: Category::DataLoss,
    default_severity: Severity::Warning,
    summary: "a type change that can truncate or fail on existing data",
    doc: include_str!("../../rules/narrowing-type-change.md"),
    check,
};

fn check(cx: &StatementContext, out: &mut Vec<Diagnostic>) {
    let _ = (cx, out);
}
