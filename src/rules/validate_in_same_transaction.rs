//! VALIDATE CONSTRAINT in the transaction that added it NOT VALID or holds a strong lock.

use super::{Category, Diagnostic, Rule, Severity, StatementContext};

pub const RULE: Rule = Rule {
    id: "validate-in-same-transaction",
    category: Category::Locking,
    default_severity: Severity::Warning,
    summary:
        "VALIDATE CONSTRAINT in the transaction that added it NOT VALID or holds a strong lock",
    doc: include_str!("../../rules/validate-in-same-transaction.md"),
    check,
};

fn check(cx: &StatementContext, out: &mut Vec<Diagnostic>) {
    let _ = (cx, out);
}
