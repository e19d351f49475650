//! Int/smallint/serial primary or foreign keys.

use super::{Category, Diagnostic, Rule, Severity, StatementContext};

pub const RULE: Rule = Rule {
    id: "prefer-bigint",
    category: Category::Hygiene,
    default_severity: Severity::Info,
    summary: "int/smallint/serial primary or foreign keys",
    doc: include_str!("../../rules/prefer-bigint.md"),
    check,
};

fn check(cx: &StatementContext, out: &mut Vec<Diagnostic>) {
    let _ = (cx, out);
}
