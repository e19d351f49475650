//! DROP TABLE then CREATE TABLE of the same name.

use super::{Category, Diagnostic, Rule, Severity, StatementContext};

pub const RULE: Rule = Rule {
    id: "drop-and-recreate-table",
    category: Category::DataLoss,
    default_severity: Severity::Error,
    summary: "DROP TABLE then CREATE TABLE of the same name",
    doc: include_str!("../../rules/drop-and-recreate-table.md"),
    check,
};

fn check(cx: &StatementContext, out: &mut Vec<Diagnostic>) {
    let _ = (cx, out);
}
