//! CREATE/ENABLE/DISABLE/DROP TRIGGER on an existing table.

use super::{Category, Diagnostic, Rule, Severity, StatementContext};

pub const RULE: Rule = Rule {
    id: "trigger-on-existing-table",
    category: Category::Locking,
    default_severity: Severity::Warning,
    summary: "CREATE/ENABLE/DISABLE/DROP TRIGGER on an existing table",
    doc: include_str!("../../rules/trigger-on-existing-table.md"),
    check,
};

fn check(cx: &StatementContext, out: &mut Vec<Diagnostic>) {
    let _ = (cx, out);
}
