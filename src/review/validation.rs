//! The validate stage of a review: every draft of a reviewed migration's advice (built-in and the
//! LLM's) runs on copies of the database as it was just before that migration (its baseline, kept by
//! the shadow stage, which also read what the original did as it applied it), then the advice shows
//! the best draft of each kind. Validation only changes the advice: never a finding, never the exit
//! code.
//!
//! The migrations' validations run at once on the shadow's runtime, at most `--shadow-concurrency`
//! of them, each draft in a copy of its own (the last, when no model corrects it later, in the
//! baseline itself): each writes only its own migration's advice, so the report is the same as one
//! after the other.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use futures_util::stream::{self, StreamExt};

use super::shadow::{Baselines, SetShadow, NOT_APPLIED};
use super::{debugging, step_errors, MigrationReview, Review, ReviewOptions};
use crate::advice::advise::Conversations;
use crate::advice::draft::{Step, Validation};
use crate::advice::llm::Conversation;
use crate::advice::Advice;
use crate::schema::Catalog;
use crate::shadow::session::Shadow;
use crate::shadow::trace::Known;
use crate::sql;
use crate::validate::{self, Original, References, Timing, Validator};

/// Validates the drafts of every reviewed migration that has advice. `conversations` are the LLM's,
/// by index into the review's migrations.
pub(super) fn validate(
    review: &mut Review,
    shadow: Option<&Shadow>,
    baselines: &mut Baselines,
    conversations: Conversations,
    options: &ReviewOptions,
) {
    let mut conversations: HashMap<usize, Conversation> = conversations.into_iter().collect();
    let advised: Vec<_> = review
        .migrations
        .iter_mut()
        .enumerate()
        .filter_map(|(index, migration)| {
            let advised = migration.advice.is_some() && !baselines.validated(&migration.path);
            advised.then(|| {
                let references = baselines.take_references(&migration.path);
                (index, migration, references)
            })
        })
        .collect();
    let baselines = &*baselines;
    let Some(shadow) = shadow else {
        for (_, migration, _) in advised {
            skip_all(migration, validate::without_shadow());
        }
        return;
    };
    let validations = advised.into_iter().map(|(index, migration, references)| {
        let conversation = conversations.remove(&index);
        async move {
            match baseline_of(migration, baselines) {
                Ok(template) => {
                    let kept = Kept {
                        template,
                        known: baselines.known(&migration.path),
                        references,
                    };
                    validate_migration(shadow, kept, migration, conversation, options).await
                }
                Err(skipped) => skip_all(migration, skipped),
            }
        }
    });
    let limit = options.shadow.concurrency.max(1);
    shadow.block_on(stream::iter(validations).for_each_concurrent(limit, |validation| validation));
}

/// Validates, while the replay goes on, the drafts of the migrations whose baselines are kept, once
/// there are `--shadow-concurrency` of them (all that are left when the directory is `done`), and
/// drops each baseline once its drafts are validated: the copies alive at once stay bounded by the
/// concurrency instead of growing with the number of migrations (past `--shadow-max-size`, where
/// the size watchdog ends the shadow's sessions). Only the built-in fixers' drafts are final here:
/// with an LLM the drafts come after the whole review, and the baselines wait for them.
pub(super) fn validate_kept(
    review: &mut Review,
    set_shadow: &mut SetShadow,
    options: &ReviewOptions,
    done: bool,
) {
    if options.advise.llm.is_some() {
        return;
    }
    let limit = options.shadow.concurrency.max(1);
    let paths: Vec<PathBuf> = (set_shadow.baselines().templates())
        .map(|(path, _)| path.to_path_buf())
        .collect();
    if paths.is_empty() || (paths.len() < limit && !done) {
        return;
    }
    let mut references: HashMap<&Path, References> = paths
        .iter()
        .filter_map(|path| Some((path.as_path(), set_shadow.take_references(path)?)))
        .collect();
    let baselines = set_shadow.baselines();
    let kept: HashMap<&Path, &str> = baselines.templates().collect();
    // They are among the last migrations reviewed.
    let mut left = kept.len();
    let mut batch = Vec::with_capacity(left);
    for migration in review.migrations.iter_mut().rev() {
        if left == 0 {
            break;
        }
        if let Some(&template) = kept.get(migration.path.as_path()) {
            left -= 1;
            let kept = Kept {
                template,
                known: baselines.known(&migration.path),
                references: references.remove(migration.path.as_path()),
            };
            batch.push((kept, migration));
        }
    }
    let shadow = set_shadow.shadow();
    let validations = batch
        .into_iter()
        .map(|(kept, migration)| validate_migration(shadow, kept, migration, None, options));
    shadow.block_on(stream::iter(validations).for_each_concurrent(limit, |validation| validation));
    set_shadow.validated(paths);
}

/// A migration's baseline: the template, what the trace knew of it, and what the original did as
/// the review applied it.
struct Kept<'b> {
    template: &'b str,
    known: Option<&'b Known>,
    references: Option<References>,
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
        None if failed_on_shadow(migration) => Err(Validation::skipped(
            "not validated: the migration fails on the shadow database (see its apply-failed finding), so there is no schema a draft must reach; fix the failure and review again",
        )),
        None if migration.statements.iter().any(|s| s.trace.is_some()) => Err(Validation::skipped(
            "not validated: none of this migration's findings known before the shadow applied it reached --advise-on, so the shadow kept no copy of the database before it; lower --advise-on to get its drafts validated",
        )),
        None => Err(Validation::skipped(NOT_APPLIED)),
    }
}

fn failed_on_shadow(migration: &MigrationReview) -> bool {
    migration
        .statements
        .iter()
        .any(|s| s.trace.as_ref().is_some_and(|t| t.error.is_some()))
}

/// Validates one migration's advice on copies of its `baseline`.
async fn validate_migration(
    shadow: &Shadow,
    baseline: Kept<'_>,
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
    let mut validator = Validator::new(shadow, baseline.template, original, &rules);
    if let Some(known) = baseline.known {
        validator = validator.knowing(known);
    }
    if let Some(references) = baseline.references {
        validator = validator.with_references(references);
    }
    // No model corrects these drafts later: the last needs no copy of its own.
    if conversation.is_none() {
        validator = validator.last_draft_on_the_baseline();
    }
    validate_advice(
        &mut validator,
        advice,
        conversation,
        options.advise.repair_rounds,
    )
    .await;
    log_timings(&migration.path, validator.timings());
}

/// Validates one migration's advice with its `validator` (the agent loop corrects the model's
/// rejected drafts through its `conversation`), then checks the explanations' references.
async fn validate_advice(
    validator: &mut Validator<'_, '_>,
    advice: &mut Advice,
    mut conversation: Option<Conversation>,
    rounds: u32,
) {
    validate::agent::validate_advice(validator, advice, conversation.as_mut(), rounds).await;
    note_unknown_references(validator, advice).await;
}

/// An explanation naming a table or column that exists neither before nor after the migration gets
/// a note: the model may have made it up.
async fn note_unknown_references(validator: &mut Validator<'_, '_>, advice: &mut Advice) {
    for explanation in &advice.explanations {
        let unknown = validator.unknown_references(&explanation.explanation).await;
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

/// With `MIGAGENT_DEBUG=validation` in the environment, how long each draft's validation took goes to
/// stderr, one line each (for measuring; with validations running at once a draft's time includes
/// waiting for the others).
fn log_timings(path: &Path, timings: &[Timing]) {
    if !debugging("validation") {
        return;
    }
    for timing in timings {
        crate::escape::eprint(&format!(
            "migagent debug: validated {} of {} in {:.1} ms{}",
            timing.draft,
            crate::escape::path(path),
            timing.elapsed.as_secs_f64() * 1000.0,
            if timing.cold {
                " (cold: with applying the migration on a copy of its baseline)"
            } else {
                ""
            }
        ));
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
