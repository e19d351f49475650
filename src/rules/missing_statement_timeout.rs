//! A strong lock taken without statement_timeout.

use super::{Category, Diagnostic, Rule, Severity, StatementContext};

pub const RULE: Rule = Rule {
    id: "missing-statement-timeout",
    category: Category::Locking,
    default_severity: Severity::Info,
    summary: "a strong lock taken without statement_timeout",
    doc: include_str!("../../rules/missing-statement-timeout.md"),
    check,
};

fn check(cx: &StatementContext, out: &mut Vec<Diagnostic>) {
    let _ = (cx, out);
}
