//! BEGIN without COMMIT.

use super::{Category, Diagnostic, Rule, Severity, StatementContext};

pub const RULE: Rule = Rule {
    id: "uncommitted-transaction",
    category: Category::Transactions,
    default_severity: Severity::Error,
    summary: "BEGIN without COMMIT",
    doc: include_str!("../../rules/uncommitted-transaction.md"),
    check,
};

fn check(cx: &StatementContext, out: &mut Vec<Diagnostic>) {
    let _ = (cx, out);
}
