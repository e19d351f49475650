//! Char(n).

use super::{Category, Diagnostic, Rule, Severity, StatementContext};

pub const RULE: Rule = Rule {
    id: "ban-char-type",
    category: Category::Hygiene,
    default_severity: Severity::Info,
    summary: "char(n)",
    doc: include_str!("../../rules/ban-char-type.md"),
    check,
};

fn check(cx: &StatementContext, out: &mut Vec<Diagnostic>) {
    let _ = (cx, out);
}
