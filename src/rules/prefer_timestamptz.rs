//! Timestamp without time zone.

use super::{Category, Diagnostic, Rule, Severity, StatementContext};

pub const RULE: Rule = Rule {
    id: "prefer-timestamptz",
    category: Category::Hygiene,
    default_severity: Severity::Info,
    summary: "timestamp without time zone",
    doc: include_str!("../../rules/prefer-timestamptz.md"),
    check,
};

fn check(cx: &StatementContext, out: &mut Vec<Diagnostic>) {
    let _ = (cx, out);
}
