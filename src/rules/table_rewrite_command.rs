//! A command that rewrites the whole table under ACCESS EXCLUSIVE.

use super::{Category, Diagnostic, Rule, Severity, StatementContext};

pub const RULE: Rule = Rule {
    id: "table-rewrite-command",
    category: Category::Locking,
    default_severity: Severity::Error,
    summary: "a command that rewrites the whole table under ACCESS EXCLUSIVE",
    doc: include_str!("../../rules/table-rewrite-command.md"),
    check,
};

fn check(cx: &StatementContext, out: &mut Vec<Diagnostic>) {
    let _ = (cx, out);
}
