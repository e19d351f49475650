//! A migration that already existed at the merge base with `--base` was edited or deleted since:
//! environments that ran the old text keep its schema, and diverge from those that run the new one.
//! Reported by the review from git's answer, not from a statement.

use super::{Category, Diagnostic, Kinds, Rule, Severity, StatementContext};

pub const RULE: Rule = Rule {
    id: "history-modified",
    category: Category::History,
    default_severity: Severity::Warning,
    size_graded: false,
    summary: "a migration that was already applied was edited or deleted",
    doc: include_str!("../../rules/history-modified.md"),
    check,
    kinds: Kinds::Only(&[]),
};

/// The SQL of one migration says nothing about its earlier text: the review compares the file with
/// its text at the merge base.
fn check(_: &StatementContext, _: &mut Vec<Diagnostic>) {}
