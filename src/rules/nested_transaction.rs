//! BEGIN/COMMIT inside a file the tool already wraps in a transaction.

use super::{Category, Diagnostic, Rule, Severity, StatementContext};

pub const RULE: Rule = Rule {
    id: "nested-transaction",
    category: Category::Transactions,
    default_severity: Severity::Warning,
    summary: "BEGIN/COMMIT inside a file the tool already wraps in a transaction",
    doc: include_str!("../../rules/nested-transaction.md"),
    check,
};

fn check(cx: &StatementContext, out: &mut Vec<Diagnostic>) {
    let _ = (cx, out);
}
