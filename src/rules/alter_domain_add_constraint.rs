//! ALTER DOMAIN ADD CONSTRAINT or VALIDATE CONSTRAINT scans every table using the domain.

use super::{Category, Diagnostic, Rule, Severity, StatementContext};

pub const RULE: Rule = Rule {
    id: "alter-domain-add-constraint",
    category: Category::Locking,
    default_severity: Severity::Warning,
    summary:
        "ALTER DOMAIN ADD CONSTRAINT or VALIDATE CONSTRAINT scans every table using the domain",
    doc: include_str!("../../rules/alter-domain-add-constraint.md"),
    check,
};

fn check(cx: &StatementContext, out: &mut Vec<Diagnostic>) {
    let _ = (cx, out);
}
