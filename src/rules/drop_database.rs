//! DROP DATABASE.

use super::{Category, Diagnostic, Rule, Severity, StatementContext};

pub const RULE: Rule = Rule {
    id: "drop-database",
    category: Category::DataLoss,
    default_severity: Severity::Error,
    summary: "DROP DATABASE",
    doc: include_str!("../../rules/drop-database.md"),
    check,
};

fn check(cx: &StatementContext, out: &mut Vec<Diagnostic>) {
    let _ = (cx, out);
}
