//! Advice: what migagent proposes for a reviewed migration, next to its findings. Built-in fixers and
//! an LLM draft a safer rewrite and a down migration; every draft is untrusted until the validate
//! stage has run it on the shadow. Advice adds words and drafts: it never adds, removes or re-grades
//! a finding, and never changes the exit code.

pub mod advise;
pub mod builtin;
pub mod cache;
pub mod draft;
pub mod llm;
pub mod prompt;
pub mod reply;

pub use advise::{advise, AdviseOptions};

use serde::{Deserialize, Serialize};

use crate::rules::Severity;
use draft::{Body, Draft, Source, Status};
use llm::Conversation;

/// The JSON report's `advice` of one migration (see DESIGN.md, "JSON report").
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Advice {
    /// Where the summary and the explanations came from.
    pub source: Source,
    pub summary: String,
    pub risk: Risk,
    /// Each about one finding of the migration, by its index in `findings`.
    pub explanations: Vec<Explanation>,
    /// The chosen rewrite among `drafts` (see [`choose`]).
    pub rewrite: Option<Draft>,
    /// The chosen down migration among `drafts`.
    pub down: Option<Draft>,
    /// Every draft considered, LLM and built-in.
    pub drafts: Vec<Draft>,
    /// The LLM request behind this advice; `None` when no LLM was asked.
    pub llm: Option<LlmUsage>,
    /// What was left out of the advice and why (an unknown finding index, a reply that was dropped).
    pub notes: Vec<String>,
}

/// How risky the migration is to run as it is, all findings considered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Risk {
    Low,
    Medium,
    High,
    Critical,
}

impl Risk {
    pub fn name(self) -> &'static str {
        match self {
            Risk::Low => "low",
            Risk::Medium => "medium",
            Risk::High => "high",
            Risk::Critical => "critical",
        }
    }

    /// The risk migagent's own findings imply, when no model judged it.
    pub fn of_findings(severities: impl IntoIterator<Item = Severity>) -> Risk {
        match severities.into_iter().max() {
            Some(Severity::Error) => Risk::High,
            Some(Severity::Warning) => Risk::Medium,
            Some(Severity::Info) | None => Risk::Low,
        }
    }
}

/// Why one finding matters for this migration, in its own words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Explanation {
    /// The finding's index in the migration's `findings`.
    pub finding: usize,
    pub explanation: String,
    /// What running the migration as it is would do in production.
    pub impact: String,
}

/// The JSON report's `advice.llm`: which model answered and what it cost.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LlmUsage {
    pub model: String,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    /// The reply came from the cache: no request was made.
    pub cached: bool,
    /// Why the model's reply was not used; the advice then holds what did not need it.
    pub error: Option<String>,
}

/// Which of a draft kind to show: an accepted LLM draft, else an accepted built-in one, else the
/// best of the others (not yet validated before rejected, then fewer reasons, then the LLM's).
pub fn choose(drafts: &[Draft], rewrite: bool) -> Option<Draft> {
    let status_rank = |status: Status| match status {
        Status::Accepted => 0,
        Status::Skipped => 1,
        Status::Rejected => 2,
    };
    let source_rank = |source: Source| match source {
        Source::Llm => 0,
        Source::Builtin => 1,
    };
    drafts
        .iter()
        .filter(|d| matches!(d.body, Body::Rewrite(_)) == rewrite)
        .min_by_key(|d| {
            (
                status_rank(d.validation.status),
                d.validation.reasons.len(),
                source_rank(d.source),
            )
        })
        .cloned()
}

impl Advice {
    /// Advice from drafts alone, with no LLM: the summary says what the drafts answer, the risk is
    /// what the findings imply.
    pub fn builtin(drafts: Vec<Draft>, severities: &[Severity]) -> Advice {
        let rewrites = drafts
            .iter()
            .filter(|d| matches!(d.body, Body::Rewrite(_)))
            .count();
        let summary = match (rewrites, drafts.len() - rewrites) {
            (0, 0) => "migagent has no draft for this migration: each finding's help says what to \
                       do instead."
                .to_owned(),
            (0, _) => "migagent drafted a down migration for this migration.".to_owned(),
            (_, 0) => "migagent drafted a safer rewrite of this migration.".to_owned(),
            _ => "migagent drafted a safer rewrite and a down migration for this migration."
                .to_owned(),
        };
        let mut advice = Advice {
            source: Source::Builtin,
            summary,
            risk: Risk::of_findings(severities.iter().copied()),
            explanations: Vec::new(),
            rewrite: None,
            down: None,
            drafts,
            llm: None,
            notes: Vec::new(),
        };
        advice.choose_drafts();
        advice
    }

    /// Sets `rewrite` and `down` from `drafts` (again, after validation changed their status).
    pub fn choose_drafts(&mut self) {
        self.rewrite = choose(&self.drafts, true);
        self.down = choose(&self.drafts, false);
    }

    /// Sets `llm`'s tokens and `cached` from the conversation so far (corrections included), and
    /// notes the replies the cache could not keep.
    pub fn count_usage(&mut self, conversation: &mut Conversation) {
        if let Some(llm) = &mut self.llm {
            llm.prompt_tokens = conversation.usage.prompt_tokens;
            llm.completion_tokens = conversation.usage.completion_tokens;
            llm.cached = conversation.cached();
        }
        self.notes.append(&mut conversation.cache_errors);
    }
}

#[cfg(test)]
mod tests {
    use super::draft::{Down, Rewrite, Step, Validation};
    use super::*;

    fn rewrite(source: Source, status: Status, reasons: usize) -> Draft {
        Draft {
            source,
            attempts: 1,
            body: Body::Rewrite(Rewrite {
                steps: vec![Step {
                    sql: "SELECT 1;".into(),
                    transactional: true,
                    note: String::new(),
                }],
                rationale: format!("{source:?} {status:?} {reasons}"),
            }),
            validation: Validation {
                status,
                reasons: vec!["r".into(); reasons],
                notes: Vec::new(),
            },
        }
    }

    fn down(source: Source) -> Draft {
        Draft {
            source,
            attempts: 1,
            body: Body::Down(Down {
                sql: "DROP TABLE t;".into(),
                data_loss: false,
                notes: String::new(),
            }),
            validation: Validation::skipped("not validated"),
        }
    }

    #[test]
    fn an_accepted_llm_draft_wins_then_an_accepted_builtin_then_the_best_rejected() {
        let llm_rejected = rewrite(Source::Llm, Status::Rejected, 2);
        let builtin_accepted = rewrite(Source::Builtin, Status::Accepted, 0);
        let llm_accepted = rewrite(Source::Llm, Status::Accepted, 0);
        let drafts = vec![
            llm_rejected.clone(),
            builtin_accepted.clone(),
            down(Source::Llm),
        ];
        assert_eq!(choose(&drafts, true), Some(builtin_accepted));
        let drafts = vec![llm_rejected.clone(), llm_accepted.clone()];
        assert_eq!(choose(&drafts, true), Some(llm_accepted));
        let builtin_rejected = rewrite(Source::Builtin, Status::Rejected, 1);
        let drafts = vec![llm_rejected, builtin_rejected.clone()];
        assert_eq!(choose(&drafts, true), Some(builtin_rejected));
    }

    #[test]
    fn skipped_drafts_prefer_the_llm() {
        let drafts = vec![
            rewrite(Source::Builtin, Status::Skipped, 1),
            rewrite(Source::Llm, Status::Skipped, 1),
            down(Source::Builtin),
        ];
        let advice = Advice::builtin(drafts, &[Severity::Warning]);
        assert_eq!(advice.rewrite.map(|d| d.source), Some(Source::Llm));
        assert_eq!(advice.down.map(|d| d.source), Some(Source::Builtin));
        assert_eq!(advice.risk, Risk::Medium);
    }

    #[test]
    fn risk_follows_the_worst_finding_without_a_model() {
        assert_eq!(Risk::of_findings([]), Risk::Low);
        assert_eq!(
            Risk::of_findings([Severity::Info, Severity::Error]),
            Risk::High
        );
    }
}
