//! ALTER TYPE ADD VALUE inside a transaction fails before PostgreSQL 12.

use super::{Category, Diagnostic, Rule, Severity, StatementContext};

pub const RULE: Rule = Rule {
    id: "enum-value-in-transaction",
    category: Category::Transactions,
    default_severity: Severity::Error,
    summary: "ALTER TYPE ADD VALUE inside a transaction fails before PostgreSQL 12",
    doc: include_str!("../../rules/enum-value-in-transaction.md"),
    check,
};

fn check(cx: &StatementContext, out: &mut Vec<Diagnostic>) {
    let _ = (cx, out);
}
