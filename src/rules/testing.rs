//! Helpers for rule tests: review a snippet and show exactly what a user would see.

use crate::migration::Transaction;
use crate::report::text::{render_migration, Style};
use crate::review::{review_sql, MigrationReview, ReviewOptions};
use crate::rules::RuleSettings;

/// Reviews `sql` as a plain psql migration (each statement autocommits) after `history`.
pub fn review(history: &[&str], sql: &str) -> MigrationReview {
    review_in(history, sql, Transaction::None)
}

/// Reviews `sql` as a migration the tool runs the way `transaction` says.
pub fn review_in(history: &[&str], sql: &str, transaction: Transaction) -> MigrationReview {
    review_sql(
        "migration.sql",
        history,
        sql,
        transaction,
        &ReviewOptions::default(),
    )
}

/// The findings of one rule, rendered as the text report shows them (no colour).
pub fn check_rule(rule: &str, history: &[&str], sql: &str) -> String {
    render_rule(rule, &review(history, sql))
}

/// The findings of one rule, as [`check_rule`], for a target other than the default one.
pub fn check_rule_on(rule: &str, settings: RuleSettings, history: &[&str], sql: &str) -> String {
    let options = ReviewOptions {
        rule_settings: settings,
        ..ReviewOptions::default()
    };
    let review = review_sql("migration.sql", history, sql, Transaction::None, &options);
    render_rule(rule, &review)
}

/// The findings of one rule in a reviewed migration, rendered as the text report shows them.
pub fn render_rule(rule: &str, review: &MigrationReview) -> String {
    let mut only = MigrationReview {
        path: review.path.clone(),
        tool: review.tool,
        text: review.text.clone(),
        sections: review.sections.clone(),
        lines: review.lines.clone(),
        statements: review.statements.clone(),
        findings: review
            .findings
            .iter()
            .filter(|f| f.rule.id == rule)
            .cloned()
            .collect(),
        notices: Vec::new(),
        advice: None,
    };
    only.findings.sort_by_key(|f| f.offset);
    let mut out = String::new();
    render_migration(&mut out, &only, Style { color: false });
    out
}

/// The SQL of each step of the fix the rule's first finding carries, if it carries one.
pub fn fix_sql(rule: &str, history: &[&str], sql: &str) -> Option<Vec<String>> {
    let review = review(history, sql);
    let finding = review.findings.iter().find(|f| f.rule.id == rule)?;
    let fix = finding.fix.as_ref()?;
    Some(fix.steps.iter().map(|step| step.sql.clone()).collect())
}
