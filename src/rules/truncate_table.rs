//! TRUNCATE deletes every row.

use super::{Category, Diagnostic, Rule, Severity, StatementContext};

pub const RULE: Rule = Rule {
    id: "truncate-table",
    category: Category::DataLoss,
    default_severity: Severity::Error,
    summary: "TRUNCATE deletes every row",
    doc: include_str!("../../rules/truncate-table.md"),
    check,
};

fn check(cx: &StatementContext, out: &mut Vec<Diagnostic>) {
    let _ = (cx, out);
}
