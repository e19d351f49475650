//! The prompts: handlebars templates in `prompts/` (embedded; a directory given with `--prompts` or
//! `[llm] prompts` overrides them file by file), rendered in strict mode without HTML escaping.
//!
//! Instructions are only in the system message. Everything that comes from the repository under
//! review — SQL, comments, identifiers in messages, the schema, the trace and EXPLAIN — goes into the
//! user message inside data blocks whose markers carry a per-run random nonce the text cannot guess,
//! so text in a migration cannot close its block and pass for instructions.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use handlebars::Handlebars;
use serde::Serialize;
use serde_json::Value;

use crate::pg::transactions::TxState;
use crate::review::MigrationReview;
use crate::schema::{Catalog, Relation};
use crate::sql::Statement;
use crate::stats::{describe_size, Stats};

/// The templates and their embedded defaults.
const TEMPLATES: [(&str, &str); 4] = [
    ("system", include_str!("../../prompts/system.hbs")),
    ("user", include_str!("../../prompts/user.hbs")),
    ("repair", include_str!("../../prompts/repair.hbs")),
    ("correct", include_str!("../../prompts/correct.hbs")),
];

/// Default prompt budget, in tokens.
pub const DEFAULT_BUDGET_TOKENS: usize = 12_000;
/// Characters per token, for estimating a prompt's size without the model's tokenizer (English and
/// SQL average about four).
const CHARS_PER_TOKEN: usize = 4;
/// How much of a rule's "Why" the prompt quotes.
const RULE_FACTS_CHARS: usize = 700;
/// The most reasons of one rejected draft a correction request quotes, and the most characters of
/// each: enough to act on, bounded whatever the validator (or the SQL it quotes) produced.
const CORRECTION_REASONS: usize = 12;
const CORRECTION_REASON_CHARS: usize = 600;

/// What the advise stage needs from the schema model, taken just before the migration runs.
#[derive(Debug, Clone, Default)]
pub struct AdviceContext {
    /// The relations the migration names, as they were before it.
    pub relations: Vec<RelationText>,
    /// Per statement: which transaction it runs in.
    pub transactions: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct RelationText {
    pub name: String,
    pub text: String,
}

/// The schema of the relations `text` names (by their unqualified name, as a word), and the
/// transaction each statement runs in.
pub fn context(
    catalog: &Catalog,
    text: &str,
    statements: &[Statement],
    states: &[TxState],
    stats: Option<&Stats>,
) -> AdviceContext {
    let words: BTreeSet<String> = text
        .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == '$'))
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect();
    let relations = catalog
        .relations()
        .filter(|r| words.contains(&r.name.name.to_lowercase()))
        .map(|r| RelationText {
            name: r.name.to_string(),
            text: describe_relation(catalog, r, stats),
        })
        .collect();
    let transactions = statements
        .iter()
        .zip(states)
        .map(
            |(_, state)| match (state.in_transaction, state.transaction) {
                (false, _) => "outside any transaction block (autocommit)".to_owned(),
                (true, block) if state.tool_transaction && state.implicit => format!(
                    "in the implicit transaction of a multi-statement query (block {})",
                    block.unwrap_or(0)
                ),
                (true, block) if state.tool_transaction => {
                    format!(
                        "in the migration tool's transaction (block {})",
                        block.unwrap_or(0)
                    )
                }
                (true, block) => format!(
                    "in a transaction block the file opens (block {})",
                    block.unwrap_or(0)
                ),
            },
        )
        .collect();
    AdviceContext {
        relations,
        transactions,
    }
}

/// A relation as DDL-like lines: columns with types, defaults and nullability, constraints, indexes,
/// and its size from `--stats`.
fn describe_relation(catalog: &Catalog, relation: &Relation, stats: Option<&Stats>) -> String {
    let size = stats
        .and_then(|s| s.table(&relation.name.to_string()))
        .map(|size| format!(" -- {} (per --stats)", describe_size(size)))
        .unwrap_or_default();
    let mut lines = vec![format!("{:?} {}{size}", relation.kind, relation.name)];
    for column in &relation.columns {
        let mut line = format!(
            "  {} {}",
            column.name,
            column
                .data_type
                .as_ref()
                .map_or("(type unknown)".to_owned(), ToString::to_string)
        );
        if column.not_null {
            line.push_str(" NOT NULL");
        }
        if let Some(default) = &column.default {
            line.push_str(&format!(" DEFAULT {default}"));
        }
        if column.identity.is_some() {
            line.push_str(" GENERATED AS IDENTITY");
        }
        lines.push(line);
    }
    for constraint in &relation.constraints {
        let what = constraint
            .kind
            .definition_sql()
            .unwrap_or_else(|| "EXCLUDE".to_owned());
        let valid = if constraint.validated {
            ""
        } else {
            " NOT VALID"
        };
        lines.push(format!("  CONSTRAINT {} {what}{valid}", constraint.name));
    }
    for index in catalog.indexes_on(&relation.name) {
        let unique = if index.unique { "UNIQUE " } else { "" };
        let predicate = index
            .predicate
            .as_ref()
            .map(|p| format!(" WHERE {p}"))
            .unwrap_or_default();
        lines.push(format!(
            "  {unique}INDEX {} ({}){predicate}",
            index.name,
            index.columns.join(", ")
        ));
    }
    lines.join("\n")
}

/// The loaded templates.
pub struct Prompts {
    registry: Handlebars<'static>,
}

impl std::fmt::Debug for Prompts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Prompts")
    }
}

impl Prompts {
    /// The embedded templates, each replaced by `DIR/<name>.hbs` where that file exists.
    pub fn load(dir: Option<&Path>) -> Result<Prompts, String> {
        let mut registry = Handlebars::new();
        registry.set_strict_mode(true);
        registry.register_escape_fn(handlebars::no_escape);
        for (name, embedded) in TEMPLATES {
            let file = dir.map(|dir| dir.join(format!("{name}.hbs")));
            let template = match file.as_deref().filter(|f| f.exists()) {
                Some(file) => std::fs::read_to_string(file)
                    .map_err(|e| format!("--prompts: cannot read {}: {e}", file.display()))?,
                None => embedded.to_owned(),
            };
            registry
                .register_template_string(name, template)
                .map_err(|e| format!("--prompts: the `{name}` template does not parse: {e}"))?;
        }
        Ok(Prompts { registry })
    }

    fn render(&self, name: &str, data: &impl Serialize) -> Result<String, String> {
        self.registry
            .render(name, data)
            .map_err(|e| format!("the `{name}` prompt template failed to render: {e}"))
    }

    /// The embedded templates, loaded once.
    pub fn embedded() -> Arc<Prompts> {
        static EMBEDDED: OnceLock<Arc<Prompts>> = OnceLock::new();
        Arc::clone(EMBEDDED.get_or_init(|| {
            // A unit test renders every embedded template, so this cannot fail at run time.
            Arc::new(Prompts::load(None).expect("the embedded prompt templates parse"))
        }))
    }

    /// The repair request quoting what was wrong with a reply.
    pub fn repair(&self, errors: &str) -> Result<String, String> {
        self.render("repair", &serde_json::json!({ "errors": errors }))
    }

    /// The correction request of the agent loop: the validator's reasons for each rejected draft,
    /// bounded, inside data blocks marked with `nonce`.
    pub fn correct(&self, rejected: &[Rejection], nonce: &str) -> Result<String, String> {
        let rejected: Vec<_> = rejected
            .iter()
            .map(|r| {
                serde_json::json!({
                    "draft": r.draft,
                    "attempt": r.attempt,
                    "reasons": r
                        .reasons
                        .iter()
                        .take(CORRECTION_REASONS)
                        .map(|reason| bounded(reason, CORRECTION_REASON_CHARS))
                        .collect::<Vec<_>>(),
                    "omitted": r.reasons.len().saturating_sub(CORRECTION_REASONS),
                })
            })
            .collect();
        let data = serde_json::json!({
            "nonce": nonce,
            "many": rejected.len() > 1,
            "rejected": rejected,
        });
        self.render("correct", &data)
    }
}

/// A draft of the model's that the validator rejected, as the correction request quotes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// `rewrite` or `down`.
    pub draft: &'static str,
    /// 1 for the model's first draft.
    pub attempt: u32,
    pub reasons: Vec<String>,
}

/// The first `max` characters of `text`, with `…` when cut.
pub fn bounded(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

/// What a prompt is rendered for, besides the migration.
#[derive(Debug, Clone)]
pub struct PromptOptions {
    pub pg_version: String,
    /// Marks the data blocks; random per run.
    pub nonce: String,
    pub budget_tokens: usize,
    /// The reply schema, for endpoints without structured output; `None` when the request carries it.
    pub schema: Option<Value>,
}

/// The two messages of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub system: String,
    pub user: String,
}

#[derive(Serialize)]
struct FindingData {
    index: usize,
    rule: &'static str,
    severity: &'static str,
    line: usize,
    statement: usize,
    message: String,
    help: String,
    facts: String,
    table: Option<String>,
    confirmed_by_shadow: Option<bool>,
}

#[derive(Serialize)]
struct StatementData {
    index: usize,
    line: usize,
    sql: String,
    transaction: String,
}

#[derive(Serialize)]
struct Data<'a> {
    nonce: &'a str,
    pg_version: &'a str,
    path: String,
    tool: &'static str,
    statements: Vec<StatementData>,
    findings: Vec<FindingData>,
    schema: Vec<String>,
    trace: Vec<String>,
    omitted: Vec<String>,
    reply_schema: Option<String>,
}

/// One way to shorten the prompt; says what it left out, if anything.
type Cut<'a> = dyn Fn(&mut Data) -> Option<String> + 'a;

/// Renders the system and user messages for one migration, trimmed to the token budget: statements
/// with findings and their tables are kept longest, and the prompt says what was left out.
pub fn render(
    prompts: &Prompts,
    migration: &MigrationReview,
    context: &AdviceContext,
    options: &PromptOptions,
) -> Result<Rendered, String> {
    let with_findings: BTreeSet<usize> = migration.findings.iter().map(|f| f.statement).collect();
    let finding_tables: BTreeSet<String> = migration
        .findings
        .iter()
        .filter_map(|f| f.table.as_ref().map(ToString::to_string))
        .collect();
    let mut data = Data {
        nonce: &options.nonce,
        pg_version: &options.pg_version,
        path: crate::escape::path(&migration.path),
        tool: migration.tool.name(),
        statements: statements(migration, context, |_| true),
        findings: findings(migration),
        schema: context.relations.iter().map(|r| r.text.clone()).collect(),
        trace: traces(migration, |_| true),
        omitted: Vec::new(),
        reply_schema: options
            .schema
            .as_ref()
            .map(|s| serde_json::to_string_pretty(s).unwrap_or_default()),
    };
    let system = prompts.render("system", &data)?;
    let fits = |data: &Data| -> Result<(bool, String), String> {
        let user = prompts.render("user", data)?;
        let tokens = (system.chars().count() + user.chars().count()) / CHARS_PER_TOKEN;
        Ok((tokens <= options.budget_tokens, user))
    };
    // Each cut is tried in turn until the prompt fits; each says what it left out.
    let cuts: [&Cut; 4] = [
        &|data| {
            let kept = traces(migration, |s| with_findings.contains(&s));
            let left = data.trace.len() - kept.len();
            data.trace = kept;
            (left > 0).then(|| format!("the shadow trace of {left} statements without findings"))
        },
        &|data| {
            let kept: Vec<String> = context
                .relations
                .iter()
                .filter(|r| finding_tables.contains(r.name.as_str()))
                .map(|r| r.text.clone())
                .collect();
            let left = data.schema.len() - kept.len();
            data.schema = kept;
            (left > 0).then(|| format!("the schema of {left} relations no finding is about"))
        },
        &|data| {
            let kept = statements(migration, context, |s| with_findings.contains(&s));
            let left = data.statements.len() - kept.len();
            data.statements = kept;
            (left > 0).then(|| format!("the SQL of {left} statements without findings"))
        },
        &|data| {
            let left = data.trace.len() + data.schema.len();
            data.trace.clear();
            data.schema.clear();
            (left > 0).then(|| "the rest of the schema and the trace".to_owned())
        },
    ];
    let (mut fit, mut user) = fits(&data)?;
    for cut in cuts {
        if fit {
            break;
        }
        if let Some(note) = cut(&mut data) {
            data.omitted.push(note);
            (fit, user) = fits(&data)?;
        }
    }
    while !fit && data.statements.len() > 1 {
        data.statements.pop();
        if !data
            .omitted
            .iter()
            .any(|o| o.starts_with("the last statements"))
        {
            data.omitted
                .push("the last statements with findings (the prompt budget ran out)".into());
        }
        (fit, user) = fits(&data)?;
    }
    Ok(Rendered { system, user })
}

fn statements(
    migration: &MigrationReview,
    context: &AdviceContext,
    keep: impl Fn(usize) -> bool,
) -> Vec<StatementData> {
    let all = &migration.statements;
    all.iter()
        .enumerate()
        .filter(|(_, s)| keep(s.index))
        .map(|(i, s)| {
            // With the comments before it (and after the last statement, with the last): the prompt
            // shows the whole file.
            let start = if i == 0 { 0 } else { all[i - 1].range.end };
            let end = if i + 1 == all.len() {
                migration.text.len()
            } else {
                s.range.end
            };
            (s, migration.text[start..end].trim().to_owned())
        })
        .map(|(s, sql)| StatementData {
            index: s.index,
            line: s.position.line,
            sql,
            transaction: context
                .transactions
                .get(s.index)
                .cloned()
                .unwrap_or_default(),
        })
        .collect()
}

fn findings(migration: &MigrationReview) -> Vec<FindingData> {
    migration
        .findings
        .iter()
        .enumerate()
        .map(|(index, f)| FindingData {
            index,
            rule: f.rule.id,
            severity: f.severity.name(),
            line: f.position.line,
            statement: f.statement,
            message: f.message.clone(),
            help: f.help.clone(),
            facts: rule_facts(f.rule.doc),
            table: f.table.as_ref().map(ToString::to_string),
            confirmed_by_shadow: f.confirmed_by_shadow,
        })
        .collect()
}

/// The "Why" section of a rule's document, bounded.
fn rule_facts(doc: &str) -> String {
    let why = doc
        .split("\n## ")
        .find_map(|section| section.strip_prefix("Why\n"))
        .unwrap_or(doc);
    bounded(&why.trim().replace('\n', " "), RULE_FACTS_CHARS)
}

fn traces(migration: &MigrationReview, keep: impl Fn(usize) -> bool) -> Vec<String> {
    migration
        .statements
        .iter()
        .filter(|s| keep(s.index))
        .filter_map(|s| {
            let trace = s.trace.as_ref()?;
            let json = serde_json::to_string(trace).ok()?;
            Some(format!(
                "statement {} (line {}): {json}",
                s.index, s.position.line
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_facts_quote_the_why_section() {
        let doc =
            "# r\n\n**Category:** x\n\n## Why\nIt locks.\nLong.\n\n## What PostgreSQL does\n- x";
        assert_eq!(rule_facts(doc), "It locks. Long.");
    }

    #[test]
    fn the_embedded_templates_parse_in_strict_mode() {
        Prompts::load(None).unwrap();
        let rejected = [Rejection {
            draft: "down",
            attempt: 1,
            reasons: vec!["the down fails".into()],
        }];
        assert!(Prompts::embedded()
            .correct(&rejected, "n")
            .unwrap()
            .contains("<data-n kind=\"validator\">\n- the down fails\n</data-n>"));
    }

    #[test]
    fn a_correction_quotes_a_bounded_number_of_bounded_reasons() {
        let long = "x".repeat(CORRECTION_REASON_CHARS + 50);
        let rejected = [Rejection {
            draft: "rewrite",
            attempt: 2,
            reasons: vec![long; CORRECTION_REASONS + 3],
        }];
        let text = Prompts::embedded().correct(&rejected, "n").unwrap();
        assert_eq!(text.matches("x…").count(), CORRECTION_REASONS);
        assert!(text.contains("… and 3 more reasons"), "{text}");
        assert!(text.contains("Your rewrite (attempt 2) was rejected"));
    }
}
