//! Serial/bigserial instead of identity columns.

use super::{Category, Diagnostic, Rule, Severity, StatementContext};

pub const RULE: Rule = Rule {
    id: "prefer-identity",
    category: Category::Hygiene,
    default_severity: Severity::Info,
    summary: "serial/bigserial instead of identity columns",
    doc: include_str!("../../rules/prefer-identity.md"),
    check,
};

fn check(cx: &StatementContext, out: &mut Vec<Diagnostic>) {
    let _ = (cx, out);
}
