//! Json instead of jsonb.

use super::{Category, Diagnostic, Rule, Severity, StatementContext};

pub const RULE: Rule = Rule {
    id: "prefer-jsonb",
    category: Category::Hygiene,
    default_severity: Severity::Warning,
    summary: "json instead of jsonb",
    doc: include_str!("../../rules/prefer-jsonb.md"),
    check,
};

fn check(cx: &StatementContext, out: &mut Vec<Diagnostic>) {
    let _ = (cx, out);
}
