//! The agent loop: when the validator rejects a draft of the model's, migagent sends the reasons
//! back in the same conversation, gets a corrected reply (checked against the reply schema like
//! every reply), and validates the corrected draft again, for at most `--repair-rounds` rounds.
//!
//! Only the model's rejected drafts go back; a draft the validator accepted, and every built-in
//! draft, stays as it is. The corrected reply's summary and explanations are not used: the first
//! reply's stand, and the findings are never touched.

use crate::advice::advise::reply_drafts;
use crate::advice::draft::{Body, Draft, Source, Status};
use crate::advice::llm::Conversation;
use crate::advice::prompt::Rejection;
use crate::advice::Advice;

use super::Validator;

/// Validates the advice's drafts, then corrects the model's rejected ones through `conversation`
/// (at most `rounds` times), and chooses the drafts to show. `conversation` is `None` when no
/// model advised this migration.
pub async fn validate_advice(
    validator: &mut Validator<'_, '_>,
    advice: &mut Advice,
    conversation: Option<&mut Conversation>,
    rounds: u32,
) {
    validator.validate_drafts(&mut advice.drafts).await;
    if let Some(conversation) = conversation {
        correct_rejected(validator, advice, conversation, rounds).await;
        advice.count_usage(conversation);
    }
    advice.choose_drafts();
}

/// The rounds of corrections: each sends every still-rejected draft of the model's with its
/// reasons, and validates what comes back.
async fn correct_rejected(
    validator: &mut Validator<'_, '_>,
    advice: &mut Advice,
    conversation: &mut Conversation,
    rounds: u32,
) {
    // Drafts the model withdrew when asked to correct them: not asked about again.
    let mut withdrawn = Vec::new();
    for _ in 0..rounds {
        let rejected: Vec<usize> = (0..advice.drafts.len())
            .filter(|i| !withdrawn.contains(i) && correctable(&advice.drafts[*i]))
            .collect();
        if rejected.is_empty() {
            return;
        }
        let rejections: Vec<Rejection> = rejected
            .iter()
            .map(|&i| rejection(&advice.drafts[i]))
            .collect();
        let reply = conversation.correct(&rejections).await;
        let reply = match reply {
            Ok(reply) => reply,
            Err(error) => {
                for &i in &rejected {
                    advice.drafts[i].validation.notes.push(format!(
                        "migagent sent the model the reasons to correct this draft, and got no usable \
                         correction: {error}; this draft stays rejected"
                    ));
                }
                return;
            }
        };
        let (mut rewrite, mut down) = reply_drafts(reply.rewrite, reply.down);
        for i in rejected {
            let draft = &mut advice.drafts[i];
            let corrected = match &draft.body {
                Body::Rewrite(_) => rewrite.take().map(Body::Rewrite),
                Body::Down(_) => down.take().map(Body::Down),
            };
            match corrected {
                Some(body) => {
                    draft.body = body;
                    draft.attempts += 1;
                    validator.validate(draft).await;
                }
                None => {
                    draft.validation.notes.push(format!(
                        "asked to correct this {}, the model answered with none; this draft stays \
                         rejected",
                        draft.body.kind()
                    ));
                    withdrawn.push(i);
                }
            }
        }
    }
}

/// A draft of the model's that the validator rejected.
fn correctable(draft: &Draft) -> bool {
    draft.source == Source::Llm && draft.validation.status == Status::Rejected
}

fn rejection(draft: &Draft) -> Rejection {
    Rejection {
        draft: draft.body.kind(),
        attempt: draft.attempts,
        reasons: draft.validation.reasons.clone(),
    }
}
