//! The agent loop: a draft of the model's that the validator rejects goes back to the model with the
//! reasons, in the same conversation, and the corrected draft is validated again, for at most
//! `--repair-rounds` rounds. The model is a real HTTP server on 127.0.0.1 speaking the OpenAI API
//! (wiremock) with recorded replies; the validator runs on migagent's own ephemeral cluster (skipped
//! without PostgreSQL, except in CI).

mod common;

use common::llm::{
    advice, answer, base, bodies, down_of, json_of, nonce_of, reply_with, rewrite_of, Project, KEY,
    MODEL,
};
use common::runtime;
use common::validation::Fixture;
use migagent::advice::advise::reply_drafts;
use migagent::advice::cache::ReplyCache;
use migagent::advice::draft::{Body, Draft, Source, Status, Validation};
use migagent::advice::llm::{Conversation, Llm, LlmSettings};
use migagent::advice::reply::ModelReply;
use migagent::advice::{Advice, LlmUsage};
use migagent::rules::Severity;
use migagent::validate::agent::validate_advice;
use serde_json::Value;
use wiremock::{MockServer, ResponseTemplate};

const HISTORY: &str = "
CREATE TABLE orders (id bigint PRIMARY KEY, status text);
INSERT INTO orders VALUES (1, 'paid'), (2, 'open');
";
const ADD_INDEX: &str = "CREATE INDEX orders_status_idx ON orders (status);";
const CONCURRENTLY: &str = "CREATE INDEX CONCURRENTLY orders_status_idx ON orders (status);";
const DROP_INDEX: &str = "DROP INDEX orders_status_idx;";

/// CREATE INDEX CONCURRENTLY in a transactional step: PostgreSQL refuses it.
fn in_a_transaction() -> String {
    reply_with(rewrite_of(&[(CONCURRENTLY, true)]), down_of(DROP_INDEX))
}

/// The same, outside a transaction: what the validator accepts.
fn corrected() -> String {
    reply_with(rewrite_of(&[(CONCURRENTLY, false)]), down_of(DROP_INDEX))
}

/// A model that answers `replies` in order (the last one for ever), on a server of its own thread.
fn model(replies: Vec<ResponseTemplate>) -> MockServer {
    runtime().block_on(common::llm::server_answering(replies))
}

fn conversation(server: &MockServer, cache: Option<&std::path::Path>) -> Conversation {
    let mut settings = LlmSettings::new(base(server), MODEL.into(), Some(KEY.into()));
    settings.retries = 0;
    Llm::new(settings)
        .unwrap()
        .conversation("system".into(), "user".into())
        .with_cache(
            cache.map(|dir| ReplyCache::at(dir.to_owned())),
            "first".into(),
        )
}

/// The advice the advise stage makes of the model's first reply, beside a built-in draft.
fn advice_of(reply: ModelReply, conversation: &mut Conversation, builtin: Option<Draft>) -> Advice {
    let mut advice = Advice::builtin(builtin.into_iter().collect(), &[Severity::Warning]);
    advice.llm = Some(LlmUsage {
        model: MODEL.into(),
        prompt_tokens: 0,
        completion_tokens: 0,
        cached: false,
        error: None,
    });
    let (rewrite, down) = reply_drafts(reply.rewrite, reply.down);
    let drafted = |body| Draft {
        source: Source::Llm,
        attempts: 1,
        body,
        validation: Validation::skipped("not validated yet"),
    };
    advice
        .drafts
        .extend(rewrite.map(Body::Rewrite).map(drafted));
    advice.drafts.extend(down.map(Body::Down).map(drafted));
    advice.count_usage(conversation);
    advice
}

/// Asks the model, then validates and corrects its drafts with at most `rounds` corrections.
fn advise_and_validate(
    fixture: &mut Fixture,
    conversation: &mut Conversation,
    builtin: Option<Draft>,
    rounds: u32,
) -> Advice {
    // On a runtime of its own, gone before the corrections, as in a review.
    let reply = runtime().block_on(conversation.ask()).unwrap();
    let mut advice = advice_of(reply, conversation, builtin);
    fixture.validator(ADD_INDEX, async |validator| {
        validate_advice(validator, &mut advice, Some(conversation), rounds).await
    });
    advice
}

fn llm_draft(advice: &Advice, rewrite: bool) -> &Draft {
    advice
        .drafts
        .iter()
        .find(|d| d.source == Source::Llm && matches!(d.body, Body::Rewrite(_)) == rewrite)
        .unwrap()
}

fn requests(server: &MockServer) -> Vec<Value> {
    runtime().block_on(bodies(server))
}

#[test]
fn a_rejected_rewrite_goes_back_with_its_reasons_and_the_correction_is_accepted_and_cached() {
    let Some(mut fixture) = Fixture::with_history(HISTORY) else {
        return;
    };
    let server = model(vec![answer(&in_a_transaction()), answer(&corrected())]);
    let cache = std::env::temp_dir().join(format!("migagent-agent-loop-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&cache);
    let mut first = conversation(&server, Some(&cache));
    let advice = advise_and_validate(&mut fixture, &mut first, None, 2);

    let rewrite = llm_draft(&advice, true);
    assert_eq!(rewrite.attempts, 2);
    assert_eq!(rewrite.validation.status, Status::Accepted, "{rewrite:?}");
    assert_eq!(advice.rewrite.as_ref(), Some(rewrite));
    let down = llm_draft(&advice, false);
    assert_eq!(
        (down.attempts, down.validation.status),
        (1, Status::Accepted)
    );
    let llm = advice.llm.as_ref().unwrap();
    assert_eq!((llm.prompt_tokens, llm.completion_tokens), (642, 90));
    assert!(!llm.cached);

    let sent = requests(&server);
    assert_eq!(sent.len(), 2, "the question and one correction");
    let messages = sent[1]["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 4, "the same conversation, then the reasons");
    assert_eq!(messages[2]["content"], in_a_transaction());
    let correction = messages[3]["content"].as_str().unwrap();
    let nonce = nonce_of(correction);
    let block = correction
        .split(&format!("<data-{nonce} kind=\"validator\">"))
        .nth(1)
        .and_then(|rest| rest.split(&format!("</data-{nonce}>")).next())
        .unwrap();
    assert!(
        block.contains("ERROR 25001") && block.contains("transaction block"),
        "the reason is inside the data block: {correction}"
    );
    assert!(correction.contains("Your rewrite (attempt 1)"));
    assert!(!correction.contains("Your down"), "the accepted down stays");

    // A re-run answers the question and the correction from the cache.
    let mut again = conversation(&server, Some(&cache));
    let advice = advise_and_validate(&mut fixture, &mut again, None, 2);
    assert_eq!(requests(&server).len(), 2, "no new request");
    let rewrite = llm_draft(&advice, true);
    assert_eq!(
        (rewrite.attempts, rewrite.validation.status),
        (2, Status::Accepted)
    );
    let llm = advice.llm.as_ref().unwrap();
    assert!(llm.cached);
    assert_eq!(llm.prompt_tokens, 642);
    let _ = std::fs::remove_dir_all(&cache);
}

#[test]
fn rounds_run_out_the_draft_stays_rejected_and_an_accepted_builtin_draft_is_chosen() {
    let Some(mut fixture) = Fixture::with_history(HISTORY) else {
        return;
    };
    let builtin = Draft {
        source: Source::Builtin,
        attempts: 1,
        body: Body::Rewrite(migagent::advice::draft::Rewrite {
            steps: vec![migagent::advice::draft::Step {
                sql: CONCURRENTLY.into(),
                transactional: false,
                note: String::new(),
            }],
            rationale: String::new(),
        }),
        validation: Validation::skipped("not validated yet"),
    };
    let server = model(vec![answer(&in_a_transaction())]);
    let mut talk = conversation(&server, None);
    let advice = advise_and_validate(&mut fixture, &mut talk, Some(builtin), 2);
    assert_eq!(
        requests(&server).len(),
        3,
        "the question and two corrections"
    );
    let rewrite = llm_draft(&advice, true);
    assert_eq!(rewrite.attempts, 3);
    assert_eq!(rewrite.validation.status, Status::Rejected);
    assert!(
        rewrite
            .validation
            .reasons
            .iter()
            .any(|r| r.contains("25001")),
        "{rewrite:?}"
    );
    let chosen = advice.rewrite.as_ref().unwrap();
    assert_eq!(
        (chosen.source, chosen.validation.status),
        (Source::Builtin, Status::Accepted)
    );
    let correction = &requests(&server)[2]["messages"][5]["content"];
    assert!(
        correction
            .as_str()
            .unwrap()
            .contains("Your rewrite (attempt 2)"),
        "{correction}"
    );

    // With no rounds the model is asked once.
    let server = model(vec![answer(&in_a_transaction())]);
    let mut talk = conversation(&server, None);
    let advice = advise_and_validate(&mut fixture, &mut talk, None, 0);
    assert_eq!(requests(&server).len(), 1);
    let rewrite = llm_draft(&advice, true);
    assert_eq!(
        (rewrite.attempts, rewrite.validation.status),
        (1, Status::Rejected)
    );
}

#[test]
fn a_failed_or_empty_correction_leaves_the_last_draft_rejected_with_a_note() {
    let Some(mut fixture) = Fixture::with_history(HISTORY) else {
        return;
    };
    let overloaded = ResponseTemplate::new(500).set_body_json(serde_json::json!(
        {"error": {"message": "overloaded", "type": "server_error", "param": null, "code": null}}
    ));
    let server = model(vec![answer(&in_a_transaction()), overloaded]);
    let mut talk = conversation(&server, None);
    let advice = advise_and_validate(&mut fixture, &mut talk, None, 2);
    assert_eq!(
        requests(&server).len(),
        2,
        "a failed correction ends the loop"
    );
    let rewrite = llm_draft(&advice, true);
    assert_eq!(
        (rewrite.attempts, rewrite.validation.status),
        (1, Status::Rejected)
    );
    let notes = rewrite.validation.notes.join("\n");
    assert!(
        notes.contains("no usable correction") && notes.contains("HTTP 500"),
        "{notes}"
    );
    assert_eq!(
        advice.llm.as_ref().unwrap().error,
        None,
        "the first reply was used"
    );

    // A model that answers no rewrite when asked to correct it is not asked again.
    let withdrawn = reply_with(Value::Null, down_of(DROP_INDEX));
    let server = model(vec![answer(&in_a_transaction()), answer(&withdrawn)]);
    let mut talk = conversation(&server, None);
    let advice = advise_and_validate(&mut fixture, &mut talk, None, 2);
    assert_eq!(requests(&server).len(), 2);
    let rewrite = llm_draft(&advice, true);
    assert_eq!(rewrite.validation.status, Status::Rejected);
    assert!(
        rewrite
            .validation
            .notes
            .iter()
            .any(|n| n.contains("answered with none")),
        "{rewrite:?}"
    );
}

/// The findings and exit code of `--llm off`, with migagent's own shadow.
fn llm_off(project: &Project) -> (Value, Option<i32>) {
    let off = project.review_json("http://127.0.0.1:9/v1", &["--llm", "off"], &[]);
    let json = json_of(&off);
    (json["migrations"][0]["findings"].clone(), off.status.code())
}

/// `migagent review --llm on --format json` against a model answering `replies`, with migagent's
/// own shadow: the advice, after checking that findings and exit code are those of `--llm off`.
fn review_end_to_end(
    project: &Project,
    replies: Vec<ResponseTemplate>,
    extra: &[&str],
) -> (Value, Vec<Value>) {
    let server = model(replies);
    let output = project.review_json(&base(&server), &["--llm", "on"], extra);
    let json = json_of(&output);
    let (findings, code) = llm_off(project);
    assert!(!findings.as_array().unwrap().is_empty());
    assert_eq!(json["migrations"][0]["findings"], findings);
    assert_eq!(output.status.code(), code);
    assert!(!String::from_utf8_lossy(&output.stdout).contains(KEY));
    (advice(&json).clone(), requests(&server))
}

/// The model's draft of this kind in the report's `advice.drafts`.
fn reported_llm_draft<'a>(advice: &'a Value, kind: &str) -> &'a Value {
    advice["drafts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["source"] == "llm" && d["kind"] == kind)
        .unwrap_or_else(|| panic!("no LLM {kind} in {advice:#}"))
}

#[test]
fn review_llm_on_validates_the_models_drafts_and_corrects_the_rejected_ones_end_to_end() {
    if common::binaries_or_skip().is_none() {
        return;
    }
    let project = Project::with_history("agent-loop", HISTORY, &format!("{ADD_INDEX}\n"));
    // Every case gets its own replies: the cache would answer the second case with the first's.
    project.config("[llm]\ncache = false\n");

    // A good draft is accepted at once.
    let (advice, sent) = review_end_to_end(&project, vec![answer(&corrected())], &[]);
    assert_eq!(sent.len(), 1);
    let rewrite = reported_llm_draft(&advice, "rewrite");
    assert_eq!(rewrite["attempts"], 1);
    assert_eq!(rewrite["validation"]["status"], "accepted", "{advice:#}");
    assert_eq!(advice["rewrite"]["source"], "llm");
    assert_eq!(
        reported_llm_draft(&advice, "down")["validation"]["status"],
        "accepted"
    );

    // A wrong draft, corrected wrongly again, is rejected with its reason when the rounds run out;
    // the accepted built-in rewrite is the one shown.
    let (advice, sent) = review_end_to_end(
        &project,
        vec![answer(&in_a_transaction())],
        &["--repair-rounds", "1"],
    );
    assert_eq!(sent.len(), 2, "the question and one correction");
    let rewrite = reported_llm_draft(&advice, "rewrite");
    assert_eq!(rewrite["attempts"], 2);
    assert_eq!(rewrite["validation"]["status"], "rejected");
    assert!(
        rewrite["validation"]["reasons"]
            .to_string()
            .contains("25001"),
        "{rewrite:#}"
    );
    assert_eq!(advice["rewrite"]["source"], "builtin", "{advice:#}");
    assert_eq!(advice["rewrite"]["validation"]["status"], "accepted");
    assert_eq!(advice["llm"]["prompt_tokens"], 642, "both requests count");

    // A rejected draft followed by a corrected one: accepted at the second attempt.
    let (advice, sent) = review_end_to_end(
        &project,
        vec![answer(&in_a_transaction()), answer(&corrected())],
        &[],
    );
    assert_eq!(sent.len(), 2);
    let correction = sent[1]["messages"][3]["content"].as_str().unwrap();
    assert!(correction.contains("ERROR 25001"), "{correction}");
    let rewrite = reported_llm_draft(&advice, "rewrite");
    assert_eq!(rewrite["attempts"], 2);
    assert_eq!(rewrite["validation"]["status"], "accepted", "{advice:#}");
    assert_eq!(advice["rewrite"]["source"], "llm");
    assert_eq!(advice["rewrite"]["attempts"], 2);
}

#[test]
fn drafts_for_what_only_the_trace_finds_are_validated_too() {
    if common::binaries_or_skip().is_none() {
        return;
    }
    // No rule sees the volatile default inside the dynamic SQL: only the trace's observed-rewrite
    // (an error) reaches --advise-on, and it is known only once the shadow applied the migration.
    let project = Project::with_history(
        "trace-only",
        HISTORY,
        "DO $$ BEGIN EXECUTE 'ALTER TABLE orders ADD COLUMN created_at timestamptz DEFAULT clock_timestamp()'; END $$;\n",
    );
    project.config("[llm]\ncache = false\n");
    let without_rewrite = reply_with(
        rewrite_of(&[
            (
                "ALTER TABLE orders ADD COLUMN created_at timestamptz;",
                true,
            ),
            (
                "ALTER TABLE orders ALTER COLUMN created_at SET DEFAULT clock_timestamp();",
                true,
            ),
            (
                "UPDATE orders SET created_at = clock_timestamp() WHERE created_at IS NULL;",
                true,
            ),
        ]),
        down_of("ALTER TABLE orders DROP COLUMN created_at;"),
    );
    let (advice, sent) = review_end_to_end(&project, vec![answer(&without_rewrite)], &[]);
    assert_eq!(sent.len(), 1);
    assert!(
        advice["drafts"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["source"] == "llm"),
        "no rule finding, so no built-in draft: {advice:#}"
    );
    for kind in ["rewrite", "down"] {
        let draft = reported_llm_draft(&advice, kind);
        assert_eq!(
            draft["validation"]["status"], "accepted",
            "{kind}: {advice:#}"
        );
    }
    // The rewrite ran on the database before the migration: its column is the original's.
    let rejected = reply_with(
        rewrite_of(&[("ALTER TABLE orders ADD COLUMN created_at timestamp;", true)]),
        Value::Null,
    );
    let (advice, _) =
        review_end_to_end(&project, vec![answer(&rejected)], &["--repair-rounds", "0"]);
    let rewrite = reported_llm_draft(&advice, "rewrite");
    assert_eq!(rewrite["validation"]["status"], "rejected", "{advice:#}");
    assert!(
        rewrite["validation"]["reasons"]
            .to_string()
            .contains("created_at"),
        "{rewrite:#}"
    );
}
