//! The validate stage of a review: every draft of a reviewed migration's advice (built-in and the
//! LLM's) runs on copies of the database as it was just before that migration (its baseline, kept by
//! the shadow stage), then the advice shows the best draft of each kind. Validation only changes the
//! advice: never a finding, never the exit code.

use std::collections::HashMap;

use super::shadow::{Baselines, NOT_APPLIED};
use super::{step_errors, MigrationReview, Review, ReviewOptions};
use crate::advice::advise::Conversations;
use crate::advice::draft::{Step, Validation};
use crate::advice::llm::Conversation;
use crate::advice::Advice;
use crate::schema::Catalog;
use crate::shadow::session::Shadow;
use crate::sql;
use crate::validate::{self, Original, Validator};

/// Validates the drafts of every reviewed migration that has advice. `conversations` are the LLM's,
/// by index into the review's migrations.
pub(super) fn validate(
    review: &mut Review,
    mut shadow: Option<&mut Shadow>,
    baselines: &Baselines,
    conversations: Conversations,
    options: &ReviewOptions,
) {
    let mut conversations: HashMap<usize, Conversation> = conversations.into_iter().collect();
    for (index, migration) in review.migrations.iter_mut().enumerate() {
        if migration.advice.is_none() {
            continue;
        }
        let conversation = conversations.remove(&index);
        let baseline = match shadow.as_deref_mut() {
            Some(shadow) => baseline_of(migration, baselines).map(|b| (shadow, b)),
            None => Err(validate::without_shadow()),
        };
        match baseline {
            Ok((shadow, baseline)) => {
                validate_migration(shadow, baseline, migration, conversation, options)
            }
            Err(skipped) => skip_all(migration, skipped),
        }
    }
}

/// The template holding the database just before `migration`, or the verdict its drafts get
/// without one.
fn baseline_of<'b>(
    migration: &MigrationReview,
    baselines: &'b Baselines,
) -> Result<&'b str, Validation> {
    match baselines.get(&migration.path) {
        Some(Ok(baseline)) => Ok(baseline),
        Some(Err(reason)) => Err(Validation::skipped(reason.clone())),
        None if migration.statements.iter().any(|s| s.trace.is_some()) => Err(Validation::skipped(
            "not validated: the rules found nothing at or above --advise-on in this migration, only the shadow's trace did, and the shadow keeps a copy of the database before a migration only for what the rules find; lower --advise-on to get its drafts validated",
        )),
        None => Err(Validation::skipped(NOT_APPLIED)),
    }
}

/// Validates one migration's advice on a copy of `baseline`.
fn validate_migration(
    shadow: &mut Shadow,
    baseline: &str,
    migration: &mut MigrationReview,
    conversation: Option<Conversation>,
    options: &ReviewOptions,
) {
    let MigrationReview {
        text,
        sections,
        advice,
        ..
    } = migration;
    let Some(advice) = advice else {
        return;
    };
    let ranges: Vec<_> = sections.iter().map(|s| s.range.clone()).collect();
    let parsed = sql::parse(text, &ranges);
    let rules = |catalog: &Catalog, steps: &[Step]| step_errors(catalog, steps, options);
    let original = Original {
        text,
        parsed: &parsed,
        sections,
    };
    let mut validator = Validator::new(shadow, baseline, original, &rules);
    validate_advice(
        &mut validator,
        advice,
        conversation,
        options.advise.repair_rounds,
    );
}

/// Validates one migration's advice with its `validator` (the agent loop corrects the model's
/// rejected drafts through its `conversation`), then checks the explanations' references.
fn validate_advice(
    validator: &mut Validator,
    advice: &mut Advice,
    mut conversation: Option<Conversation>,
    rounds: u32,
) {
    validate::agent::validate_advice(validator, advice, conversation.as_mut(), rounds);
    note_unknown_references(validator, advice);
}

/// An explanation naming a table or column that exists neither before nor after the migration gets
/// a note: the model may have made it up.
fn note_unknown_references(validator: &mut Validator, advice: &mut Advice) {
    for explanation in &advice.explanations {
        let unknown = validator.unknown_references(&explanation.explanation);
        if !unknown.is_empty() {
            advice.notes.push(format!(
                "the explanation of finding {} mentions {}, which exist{} neither before nor after the migration: check it against the schema",
                explanation.finding,
                unknown.join(", "),
                if unknown.len() == 1 { "s" } else { "" }
            ));
        }
    }
}

/// Every draft of the migration gets the same verdict (no validation could run).
fn skip_all(migration: &mut MigrationReview, skipped: Validation) {
    let Some(advice) = &mut migration.advice else {
        return;
    };
    for draft in &mut advice.drafts {
        draft.validation = skipped.clone();
    }
    advice.choose_drafts();
}
