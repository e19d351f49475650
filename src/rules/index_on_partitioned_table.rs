//! CREATE INDEX on a partitioned table locks every partition and cannot run CONCURRENTLY.

use super::{Category, Diagnostic, Rule, Severity, StatementContext};

pub const RULE: Rule = Rule {
    id: "index-on-partitioned-table",
    category: Category::Locking,
    default_severity: Severity::Warning,
    summary:
        "CREATE INDEX on a partitioned table locks every partition and cannot run CONCURRENTLY",
    doc: include_str!("../../rules/index-on-partitioned-table.md"),
    check,
};

fn check(cx: &StatementContext, out: &mut Vec<Diagnostic>) {
    let _ = (cx, out);
}
