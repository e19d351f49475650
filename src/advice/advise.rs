//! The advise step: for each reviewed migration with a finding at or above `--advise-on`, one
//! conversation with the LLM (from the cache when the same prompt was answered before), its reply
//! merged into the migration's advice. Requests run concurrently up to the configured limit.
//!
//! Merging never touches the findings: explanations attach to them by index (an unknown index is
//! dropped with a note), drafts go to `drafts` unvalidated, and model text is stripped of terminal
//! escapes and control characters.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::cache::ReplyCache;
use super::draft::{Body, Down, Draft, Rewrite, Source, Validation};
use super::llm::{Conversation, Llm, LlmError, LlmSettings};
use super::prompt::{self, AdviceContext, PromptOptions, Prompts};
use super::reply::{ModelReply, ReplyDown, ReplyRewrite};
use super::{Advice, Explanation, LlmUsage};
use crate::escape;
use crate::migration::DETAILED_REVIEW_UP_TO;
use crate::review::MigrationReview;
use crate::rules::Severity;

/// What decides the advice.
#[derive(Debug, Clone)]
pub struct AdviseOptions {
    /// The LLM endpoint; `None`: no LLM (`--llm off`, or `auto` without an endpoint).
    pub llm: Option<LlmSettings>,
    /// Migrations get advice (the LLM's and the built-in fixers' drafts) from a finding of this
    /// severity on; `None` (`--advise-on never`): no advice, no drafts, nothing to validate.
    pub advise_on: Option<Severity>,
    /// `advise_on` is the default, not a level the user chose: a review of more than
    /// [`DETAILED_REVIEW_UP_TO`] migrations gets no advice (see [`AdviseOptions::for_a_review_of`]).
    pub by_default: bool,
    /// A directory whose `*.hbs` files replace the embedded prompts.
    pub prompts: Option<PathBuf>,
    pub budget_tokens: usize,
    /// Where replies are cached; `None`: no cache.
    pub cache: Option<PathBuf>,
    /// How many times a draft of the model's that the validator rejected goes back to the model
    /// with the reasons (the agent loop); 0: never.
    pub repair_rounds: u32,
}

impl AdviseOptions {
    /// Whether a finding of this severity gets its migration advice.
    pub fn advises(&self, severity: Severity) -> bool {
        self.advise_on.is_some_and(|level| severity >= level)
    }

    /// The options for a run reviewing `reviewed` migrations: without a level the user chose, more
    /// than [`DETAILED_REVIEW_UP_TO`] get no advice, and the reason is returned for the report.
    pub fn for_a_review_of(&mut self, reviewed: usize) -> Option<String> {
        if !self.by_default || self.advise_on.is_none() || reviewed <= DETAILED_REVIEW_UP_TO {
            return None;
        }
        self.advise_on = None;
        Some(format!(
            "none drafted: {reviewed} migrations reviewed (more than {DETAILED_REVIEW_UP_TO}), an audit of a history rather than a change; `--base REF` reviews the migrations a change adds, `--advise-on warning` advises all of them"
        ))
    }
}

/// `--advise-on` unless set.
pub const DEFAULT_ADVISE_ON: Severity = Severity::Warning;

/// `--repair-rounds` unless set.
pub const DEFAULT_REPAIR_ROUNDS: u32 = 2;

impl Default for AdviseOptions {
    fn default() -> Self {
        AdviseOptions {
            llm: None,
            advise_on: Some(DEFAULT_ADVISE_ON),
            by_default: true,
            prompts: None,
            budget_tokens: prompt::DEFAULT_BUDGET_TOKENS,
            cache: ReplyCache::default_location(),
            repair_rounds: DEFAULT_REPAIR_ROUNDS,
        }
    }
}

/// Why validation has not run on a draft yet.
const NOT_VALIDATED: &str = "not validated on the shadow database yet";

/// The conversations of the migrations the LLM advised, by index into the review's migrations: the
/// validate stage continues them with [`Conversation::correct`] when it rejects a draft.
pub type Conversations = Vec<(usize, Conversation)>;

/// Adds advice to the migrations: `contexts` holds, by path, what the schema model knew before each.
/// A problem with the setup (a prompt template that does not parse) is returned as a message, and
/// the migrations keep their findings without advice.
pub fn advise(
    migrations: &mut [MigrationReview],
    contexts: &HashMap<PathBuf, AdviceContext>,
    options: &AdviseOptions,
    pg_version: &str,
) -> Result<Conversations, String> {
    let Some(settings) = &options.llm else {
        return Ok(Vec::new());
    };
    let selected: Vec<usize> = (0..migrations.len())
        .filter(|&i| {
            migrations[i]
                .findings
                .iter()
                .any(|f| options.advises(f.severity))
        })
        .collect();
    if selected.is_empty() {
        return Ok(Vec::new());
    }
    let llm = Llm::new(settings.clone())?;
    let prompts = Arc::new(Prompts::load(options.prompts.as_deref())?);
    let cache = options.cache.clone().map(ReplyCache::at);
    let nonce = crate::nonce::nonce();
    let mut requests = Vec::new();
    for &index in &selected {
        let context = contexts
            .get(&migrations[index].path)
            .cloned()
            .unwrap_or_default();
        let prompt_options = |nonce: &str| PromptOptions {
            pg_version: pg_version.to_owned(),
            nonce: nonce.to_owned(),
            budget_tokens: options.budget_tokens,
            schema: settings
                .mode
                .schema_in_prompt()
                .then(|| llm.schema().clone()),
        };
        // The cache key comes from the prompt with a fixed nonce: the real one changes every run.
        let keyed = prompt::render(&prompts, &migrations[index], &context, &prompt_options("0"))?;
        let rendered = prompt::render(
            &prompts,
            &migrations[index],
            &context,
            &prompt_options(&nonce),
        )?;
        let key = ReplyCache::key(&settings.cache_identity(), &keyed.system, &keyed.user);
        let conversation = llm
            .conversation(rendered.system, rendered.user)
            .with_prompts(Arc::clone(&prompts), nonce.clone())
            .with_cache(cache.clone(), key);
        requests.push((index, conversation));
    }
    let mut conversations = Vec::new();
    for (index, reply, mut conversation) in run(requests, settings)? {
        merge(&mut migrations[index], reply, &mut conversation);
        conversations.push((index, conversation));
    }
    Ok(conversations)
}

/// A migration's conversation after its first question, with the reply.
type Asked = (usize, Result<ModelReply, LlmError>, Conversation);

/// Asks every conversation (or answers it from the cache), at most `concurrency` at a time.
fn run(requests: Vec<(usize, Conversation)>, settings: &LlmSettings) -> Result<Vec<Asked>, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime for the LLM requests: {e}"))?;
    let limit = Arc::new(Semaphore::new(settings.concurrency.max(1)));
    let mut outcomes = Vec::new();
    runtime.block_on(async {
        let mut tasks = JoinSet::new();
        for (index, mut conversation) in requests {
            let limit = Arc::clone(&limit);
            tasks.spawn(async move {
                let _permit = limit.acquire_owned().await;
                let reply = conversation.ask().await;
                (index, reply, conversation)
            });
        }
        while let Some(done) = tasks.join_next().await {
            if let Ok(done) = done {
                outcomes.push(done);
            }
        }
    });
    outcomes.sort_by_key(|(index, _, _)| *index);
    Ok(outcomes)
}

/// Puts a conversation's first reply into the migration's advice.
fn merge(
    migration: &mut MigrationReview,
    reply: Result<ModelReply, LlmError>,
    conversation: &mut Conversation,
) {
    let severities: Vec<Severity> = migration.findings.iter().map(|f| f.severity).collect();
    let mut advice = migration
        .advice
        .take()
        .unwrap_or_else(|| Advice::builtin(Vec::new(), &severities));
    advice.llm = Some(LlmUsage {
        model: clean(&conversation.llm().settings().model),
        prompt_tokens: 0,
        completion_tokens: 0,
        cached: false,
        error: reply.as_ref().err().map(ToString::to_string),
    });
    advice.count_usage(conversation);
    match reply {
        Ok(reply) => apply_reply(&mut advice, reply, migration.findings.len()),
        Err(error) => advice.notes.push(format!(
            "no LLM advice: {error}; the findings and the exit code are the same as with --llm off"
        )),
    }
    advice.choose_drafts();
    migration.advice = Some(advice);
}

fn apply_reply(advice: &mut Advice, reply: ModelReply, findings: usize) {
    advice.source = Source::Llm;
    advice.summary = clean(&reply.summary);
    advice.risk = reply.risk.into();
    advice.explanations.clear();
    for explanation in reply.explanations {
        let index = explanation.finding as usize;
        if index >= findings {
            advice.notes.push(format!(
                "the model explained finding {index}, which does not exist (the findings are numbered \
                 0 to {}): dropped",
                findings.saturating_sub(1)
            ));
            continue;
        }
        advice.explanations.push(Explanation {
            finding: index,
            explanation: clean(&explanation.explanation),
            impact: clean(&explanation.impact),
        });
    }
    let drafted = |body: Body| Draft {
        source: Source::Llm,
        attempts: 1,
        body,
        validation: Validation::skipped(NOT_VALIDATED),
    };
    let (rewrite, down) = reply_drafts(reply.rewrite, reply.down);
    if let Some(rewrite) = rewrite {
        advice.drafts.insert(0, drafted(Body::Rewrite(rewrite)));
    }
    if let Some(down) = down {
        advice.drafts.push(drafted(Body::Down(down)));
    }
}

/// A reply's drafts with their text cleaned.
pub fn reply_drafts(
    rewrite: Option<ReplyRewrite>,
    down: Option<ReplyDown>,
) -> (Option<Rewrite>, Option<Down>) {
    let rewrite = rewrite.map(|rewrite| {
        let mut rewrite: Rewrite = rewrite.into();
        rewrite.rationale = clean(&rewrite.rationale);
        for step in &mut rewrite.steps {
            step.sql = clean(&step.sql);
            step.note = clean(&step.note);
        }
        rewrite
    });
    let down = down.map(|down| {
        let mut down: Down = down.into();
        down.sql = clean(&down.sql);
        down.notes = clean(&down.notes);
        down
    });
    (rewrite, down)
}

/// Model text without terminal escape sequences and control characters (line breaks and tabs stay).
pub fn clean(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // CSI (`ESC [ … final`) and OSC (`ESC ] … BEL/ST`) sequences go whole; a lone ESC goes.
            match chars.peek() {
                Some('[') => {
                    chars.next();
                    for c in chars.by_ref() {
                        if ('@'..='~').contains(&c) {
                            break;
                        }
                    }
                }
                Some(']') => {
                    chars.next();
                    while let Some(c) = chars.next() {
                        if c == '\u{7}' || (c == '\u{1b}' && chars.next_if_eq(&'\\').is_some()) {
                            break;
                        }
                    }
                }
                _ => {}
            }
            continue;
        }
        if c == '\n' || c == '\t' || !escape::is_unsafe(c) {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_default_level_is_dropped_and_only_above_the_limit() {
        let mut default = AdviseOptions::default();
        assert_eq!(default.for_a_review_of(DETAILED_REVIEW_UP_TO), None);
        assert_eq!(default.advise_on, Some(DEFAULT_ADVISE_ON));
        let note = default.for_a_review_of(DETAILED_REVIEW_UP_TO + 1);
        assert!(note.is_some_and(|note| note.contains("--advise-on warning")));
        assert_eq!(default.advise_on, None);

        let mut chosen = AdviseOptions {
            by_default: false,
            ..AdviseOptions::default()
        };
        assert_eq!(chosen.for_a_review_of(500), None);
        assert_eq!(chosen.advise_on, Some(DEFAULT_ADVISE_ON));

        let mut never = AdviseOptions {
            advise_on: None,
            ..AdviseOptions::default()
        };
        assert_eq!(never.for_a_review_of(500), None);
    }

    #[test]
    fn clean_strips_escapes_and_controls_but_keeps_lines() {
        assert_eq!(
            clean("a\u{1b}[31mred\u{1b}[0m\nb\tc\u{7}\u{202e}d"),
            "ared\nb\tcd"
        );
        assert_eq!(clean("t\u{1b}]0;title\u{7}x\u{1b}]8;;u\u{1b}\\y"), "txy");
        assert_eq!(clean("plain"), "plain");
    }
}
