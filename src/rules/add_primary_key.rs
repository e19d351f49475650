//! ADD PRIMARY KEY without USING INDEX builds the index under ACCESS EXCLUSIVE.

use super::{Category, Diagnostic, Rule, Severity, StatementContext};

pub const RULE: Rule = Rule {
    id: "add-primary-key",
    category: Category::Locking,
    default_severity: Severity::Error,
    summary: "ADD PRIMARY KEY without USING INDEX builds the index under ACCESS EXCLUSIVE",
    doc: include_str!("../../rules/add-primary-key.md"),
    check,
};

fn check(cx: &StatementContext, out: &mut Vec<Diagnostic>) {
    let _ = (cx, out);
}
