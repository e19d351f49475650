//! DROP INDEX without CONCURRENTLY takes ACCESS EXCLUSIVE on the table.

use super::{Category, Diagnostic, Rule, Severity, StatementContext};

pub const RULE: Rule = Rule {
    id: "drop-index-not-concurrent",
    category: Category::Locking,
    default_severity: Severity::Warning,
    summary: "DROP INDEX without CONCURRENTLY takes ACCESS EXCLUSIVE on the table",
    doc: include_str!("../../rules/drop-index-not-concurrent.md"),
    check,
};

fn check(cx: &StatementContext, out: &mut Vec<Diagnostic>) {
    let _ = (cx, out);
}
