//! More statements after an ACCESS EXCLUSIVE lock in the same transaction.

use super::{Category, Diagnostic, Rule, Severity, StatementContext};

pub const RULE: Rule = Rule {
    id: "statements-after-exclusive-lock",
    category: Category::Locking,
    default_severity: Severity::Warning,
    summary: "more statements after an ACCESS EXCLUSIVE lock in the same transaction",
    doc: include_str!("../../rules/statements-after-exclusive-lock.md"),
    check,
};

fn check(cx: &StatementContext, out: &mut Vec<Diagnostic>) {
    let _ = (cx, out);
}
