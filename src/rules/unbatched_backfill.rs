//! UPDATE/DELETE over an existing table without a bounded batch.

use super::{Category, Diagnostic, Rule, Severity, StatementContext};

pub const RULE: Rule = Rule {
    id: "unbatched-backfill",
    category: Category::DataMigration,
    default_severity: Severity::Warning,
    summary: "UPDATE/DELETE over an existing table without a bounded batch",
    doc: include_str!("../../rules/unbatched-backfill.md"),
    check,
};

fn check(cx: &StatementContext, out: &mut Vec<Diagnostic>) {
    let _ = (cx, out);
}
