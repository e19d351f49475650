//! Identifiers over 63 bytes are silently truncated.

use super::{Category, Diagnostic, Rule, Severity, StatementContext};

pub const RULE: Rule = Rule {
    id: "identifier-too-long",
    category: Category::Hygiene,
    default_severity: Severity::Warning,
    summary: "identifiers over 63 bytes are silently truncated",
    doc: include_str!("../../rules/identifier-too-long.md"),
    check,
};

fn check(cx: &StatementContext, out: &mut Vec<Diagnostic>) {
    let _ = (cx, out);
}
