//! ADD COLUMN with an inline CHECK, UNIQUE, PRIMARY KEY or REFERENCES.

use super::{Category, Diagnostic, Rule, Severity, StatementContext};

pub const RULE: Rule = Rule {
    id: "add-column-inline-constraint",
    category: Category::Locking,
    default_severity: Severity::Warning,
    summary: "ADD COLUMN with an inline CHECK, UNIQUE, PRIMARY KEY or REFERENCES",
    doc: include_str!("../../rules/add-column-inline-constraint.md"),
    check,
};

fn check(cx: &StatementContext, out: &mut Vec<Diagnostic>) {
    let _ = (cx, out);
}
