//! ATTACH PARTITION without a validated CHECK that implies the bounds scans the partition.

use super::{Category, Diagnostic, Rule, Severity, StatementContext};

pub const RULE: Rule = Rule {
    id: "attach-partition-scan",
    category: Category::Locking,
    default_severity: Severity::Warning,
    summary:
        "ATTACH PARTITION without a validated CHECK that implies the bounds scans the partition",
    doc: include_str!("../../rules/attach-partition-scan.md"),
    check,
};

fn check(cx: &StatementContext, out: &mut Vec<Diagnostic>) {
    let _ = (cx, out);
}
