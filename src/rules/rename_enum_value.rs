//! ALTER TYPE RENAME VALUE breaks the application version still running.

use super::{Category, Diagnostic, Rule, Severity, StatementContext};

pub const RULE: Rule = Rule {
    id: "rename-enum-value",
    category: Category::Compatibility,
    default_severity: Severity::Warning,
    summary: "ALTER TYPE RENAME VALUE breaks the application version still running",
    doc: include_str!("../../rules/rename-enum-value.md"),
    check,
};

fn check(cx: &StatementContext, out: &mut Vec<Diagnostic>) {
    let _ = (cx, out);
}
