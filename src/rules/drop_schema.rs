//! DROP SCHEMA destroys every object in it.

use super::{Category, Diagnostic, Rule, Severity, StatementContext};

pub const RULE: Rule = Rule {
    id: "drop-schema",
    category: Category::DataLoss,
    default_severity: Severity::Error,
    summary: "DROP SCHEMA destroys every object in it",
    doc: include_str!("../../rules/drop-schema.md"),
    check,
};

fn check(cx: &StatementContext, out: &mut Vec<Diagnostic>) {
    let _ = (cx, out);
}
