//! DML in the same transaction as a lock-taking DDL statement.

use super::{Category, Diagnostic, Rule, Severity, StatementContext};

pub const RULE: Rule = Rule {
    id: "dml-in-ddl-transaction",
    category: Category::DataMigration,
    default_severity: Severity::Warning,
    summary: "DML in the same transaction as a lock-taking DDL statement",
    doc: include_str!("../../rules/dml-in-ddl-transaction.md"),
    check,
};

fn check(cx: &StatementContext, out: &mut Vec<Diagnostic>) {
    let _ = (cx, out);
}
