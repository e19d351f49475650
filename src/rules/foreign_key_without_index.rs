//! A foreign key whose referencing columns lead no index.

use super::{Category, Diagnostic, Rule, Severity, StatementContext};

pub const RULE: Rule = Rule {
    id: "foreign-key-without-index",
    category: Category::Hygiene,
    default_severity: Severity::Warning,
    summary: "a foreign key whose referencing columns lead no index",
    doc: include_str!("../../rules/foreign-key-without-index.md"),
    check,
};

fn check(cx: &StatementContext, out: &mut Vec<Diagnostic>) {
    let _ = (cx, out);
}
