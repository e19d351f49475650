//! Varchar(n) instead of text with a CHECK.

use super::{Category, Diagnostic, Rule, Severity, StatementContext};

pub const RULE: Rule = Rule {
    id: "prefer-text",
    category: Category::Hygiene,
    default_severity: Severity::Info,
    summary: "varchar(n) instead of text with a CHECK",
    doc: include_str!("../../rules/prefer-text.md"),
    check,
};

fn check(cx: &StatementContext, out: &mut Vec<Diagnostic>) {
    let _ = (cx, out);
}
