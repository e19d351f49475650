//! ALTER SCHEMA RENAME breaks the application version still running.

use super::{Category, Diagnostic, Rule, Severity, StatementContext};

pub const RULE: Rule = Rule {
    id: "rename-schema",
    category: Category::Compatibility,
    default_severity: Severity::Error,
    summary: "ALTER SCHEMA RENAME breaks the application version still running",
    doc: include_str!("../../rules/rename-schema.md"),
    check,
};

fn check(cx: &StatementContext, out: &mut Vec<Diagnostic>) {
    let _ = (cx, out);
}
