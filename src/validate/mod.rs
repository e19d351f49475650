//! The validate stage: nothing drafted reaches the user as safe unless a real PostgreSQL accepted it
//! (see DESIGN.md, "Validation").
//!
//! A [`Validator`] works for one reviewed migration: its baseline (a template database holding the
//! history, before the migration) and the migration as its tool applies it. It learns the schemas
//! every draft is compared with from the review, which read them around its own apply of the
//! original ([`read_before`], [`read_after`]; the schema after it is the one the trace kept when
//! the session printed as a fresh one, see [`Printing`]), or else by applying the original once on
//! a copy of the baseline; then it runs each draft on a fresh copy of its own, which it drops
//! afterwards (the last one on the baseline itself when no later draft will need it):
//!
//! - a rewrite's steps in order (each `transactional` step in a transaction of its own, the others
//!   outside any), traced for their locks, rewrites and scans, then the schema read whole (see
//!   [`Known::for_a_copy_without_schema`]); accepted when every step succeeds, the end schema
//!   equals the original's, the trace shows no rewrite of an existing table and no scan of one
//!   under a lock that blocks writes, and the rules raise no error on the steps;
//! - a down after the up; accepted when the schema is the baseline's again and the up applies once
//!   more. When the up destroys data the draft is marked `data_loss` whatever it said.
//!
//! Every failed check is a reason the user (or the model, in the agent loop of [`agent`]) can act on.

pub mod agent;
mod blocking;
mod compare;
mod data_loss;
mod references;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use tokio_postgres::Client;

use crate::advice::draft::{Body, Down, Draft, Rewrite, Source, Step, Validation};
use crate::migration::{Section, Transaction};
use crate::postgres::db_error;
use crate::schema::{self, Catalog, RelationKind};
use crate::shadow::apply::{self, ApplyError, Script, NEW_SESSION};
use crate::shadow::session::{Database, Shadow};
use crate::shadow::snapshot::{snapshot, SchemaSnapshot};
use crate::shadow::trace::{apply_traced_in_new_session, Known, StatementTrace};
use crate::sql::{self, LineIndex, ParsedFile};
use blocking::{blocking_reasons, StepStatement};
use compare::{compare, Reference};

/// The rules stage run on a rewrite's steps as one migration on the baseline's schema: the messages
/// of its `error` findings. The review passes it in, so this stage does not depend on the review.
pub type RuleCheck<'a> = &'a dyn Fn(&Catalog, &[Step]) -> Vec<String>;

/// A reviewed migration as its tool applies it.
#[derive(Clone, Copy)]
pub struct Original<'a> {
    pub text: &'a str,
    pub parsed: &'a ParsedFile,
    pub sections: &'a [Section],
}

/// A draft's verdict when there is no shadow database to run it on.
pub fn without_shadow() -> Validation {
    Validation::skipped(
        "not validated: no shadow database ran, and only a real PostgreSQL can show that a draft applies and reaches the same schema; install PostgreSQL (or pass --shadow URL) and review again",
    )
}

/// What the original migration does on the baseline, read once for all its drafts: on a copy of the
/// baseline the original is applied to, or by the review on its own working database around the
/// migration (see [`read_before`] and [`read_after`]), which is exactly that copy.
pub struct References {
    /// The baseline's schema model, for the rules.
    catalog: Catalog,
    /// Relations of the baseline with their kinds, named as traces name them (`public.orders`).
    existed: HashMap<String, RelationKind>,
    baseline: SchemaSnapshot,
    after_up: SchemaSnapshot,
    /// The columns the original drops (`public.users`, `email`), renamed ones not among them.
    dropped: Vec<(String, String)>,
}

/// Validates the drafts of one reviewed migration. Its methods run on the shadow's runtime, so the
/// validators of several migrations can run at once (each draft in a copy of its own).
pub struct Validator<'s, 'a> {
    shadow: &'s Shadow,
    /// The template database: the history applied, the reviewed migration not.
    baseline: &'a str,
    original: Original<'a>,
    rules: RuleCheck<'a>,
    /// What the review's trace knew of the baseline, handed to the trace of each draft's copy.
    known: Option<&'a Known>,
    /// Read on first use; `Err` says why no draft of this migration can be validated.
    references: Option<Result<References, String>>,
    /// The last draft [`Validator::validate_drafts`] is given runs on the baseline itself, which
    /// it then drops: no later draft can be validated.
    last_on_baseline: bool,
    /// The draft being validated runs on the baseline itself.
    on_baseline: bool,
    timings: Vec<Timing>,
}

/// How long validating one draft took.
#[derive(Debug, Clone)]
pub struct Timing {
    /// "rewrite (builtin, attempt 1)".
    pub draft: String,
    /// The migration's first validation: it also applied the original on a copy of the baseline.
    pub cold: bool,
    pub elapsed: Duration,
}

/// "rewrite (builtin, attempt 1)".
fn draft_label(draft: &Draft) -> String {
    let source = match draft.source {
        Source::Llm => "llm",
        Source::Builtin => "builtin",
    };
    format!(
        "{} ({source}, attempt {})",
        draft.body.kind(),
        draft.attempts
    )
}

impl<'s, 'a> Validator<'s, 'a> {
    pub fn new(
        shadow: &'s Shadow,
        baseline: &'a str,
        original: Original<'a>,
        rules: RuleCheck<'a>,
    ) -> Validator<'s, 'a> {
        Validator {
            shadow,
            baseline,
            original,
            rules,
            known: None,
            references: None,
            last_on_baseline: false,
            on_baseline: false,
            timings: Vec::new(),
        }
    }

    /// Traces the drafts on copies of the baseline starting from what the review's trace knew of
    /// its relations (`known`, as of the copy), instead of reading each copy's relations whole.
    pub fn knowing(mut self, known: &'a Known) -> Validator<'s, 'a> {
        self.known = Some(known);
        self
    }

    /// Compares the drafts with what the original did as the review applied it (`references`),
    /// instead of applying it once more on a copy of the baseline.
    pub fn with_references(mut self, references: References) -> Validator<'s, 'a> {
        self.references = Some(Ok(references));
        self
    }

    /// Runs the last draft [`Validator::validate_drafts`] is given on the baseline itself instead
    /// of on a copy of it, and drops the baseline: one copy fewer, for a migration whose drafts
    /// are all known then (no model corrects them later). Its verdict is a fresh copy's: the
    /// baseline is in the very state each copy starts from.
    pub fn last_draft_on_the_baseline(mut self) -> Validator<'s, 'a> {
        self.last_on_baseline = true;
        self
    }

    /// Validates every draft of the migration, setting its `validation` (and a down's `data_loss`).
    pub async fn validate_drafts(&mut self, drafts: &mut [Draft]) {
        let last = drafts.len().saturating_sub(1);
        for (index, draft) in drafts.iter_mut().enumerate() {
            self.on_baseline = self.last_on_baseline && index == last;
            self.validate(draft).await;
        }
        self.on_baseline = false;
    }

    /// Validates one draft, setting its `validation` (and a down's `data_loss`).
    pub async fn validate(&mut self, draft: &mut Draft) {
        let started = Instant::now();
        let cold = self.references.is_none();
        draft.validation = match &mut draft.body {
            Body::Rewrite(rewrite) => self.rewrite(rewrite).await,
            Body::Down(down) => self.down(down).await,
        };
        self.timings.push(Timing {
            draft: draft_label(draft),
            cold,
            elapsed: started.elapsed(),
        });
    }

    /// How long each draft validated so far took, in order.
    pub fn timings(&self) -> &[Timing] {
        &self.timings
    }

    /// The names `text` mentions that exist neither before nor after the migration (the reference
    /// check of explanations): "orders.total_cents".
    pub async fn unknown_references(&mut self, text: &str) -> Vec<String> {
        match self.references().await {
            Ok(references) => {
                references::unknown_names(text, &references.baseline, &references.after_up)
            }
            Err(_) => Vec::new(),
        }
    }

    /// What the original does, read on first use.
    async fn references(&mut self) -> Result<&References, String> {
        let references = match self.references.take() {
            Some(references) => references,
            None => read_references(self.shadow, self.baseline, &self.original).await,
        };
        self.references
            .insert(references)
            .as_ref()
            .map_err(Clone::clone)
    }

    /// Runs a rewrite on a fresh copy of the baseline and compares it with the original.
    pub async fn rewrite(&mut self, draft: &Rewrite) -> Validation {
        if draft.steps.is_empty() {
            return Validation::from_checks(vec!["the rewrite has no steps".into()], Vec::new());
        }
        let (shadow, baseline, rules, known) = (self.shadow, self.baseline, self.rules, self.known);
        let on_baseline = self.on_baseline;
        let references = match self.references().await {
            Ok(references) => references,
            Err(reason) => return Validation::skipped(reason),
        };
        let database = match fresh_database(shadow, baseline, on_baseline).await {
            Ok(database) => database,
            Err(error) => return Validation::skipped(cannot_copy(&error.0)),
        };
        let known = known
            .unwrap_or(&Known::default())
            .for_a_copy_without_schema();
        let outcome = run_rewrite(&database, &draft.steps, references, known).await;
        shadow.drop_copy(database).await;
        let (mut reasons, notes) = match outcome {
            Ok(outcome) => outcome,
            Err(reason) => return Validation::skipped(reason),
        };
        reasons.extend(
            rules(&references.catalog, &draft.steps)
                .into_iter()
                .map(|error| format!("the rules find an error in the steps: {error}")),
        );
        Validation::from_checks(reasons, notes)
    }

    /// The rollback drill: up, then the down, on a fresh copy of the baseline; the schema must be
    /// the baseline's again, and the up must apply once more. Sets `data_loss` when the up destroys
    /// data, whatever the draft said.
    pub async fn down(&mut self, draft: &mut Down) -> Validation {
        let (shadow, baseline, original) = (self.shadow, self.baseline, self.original);
        let on_baseline = self.on_baseline;
        let references = match self.references().await {
            Ok(references) => references,
            Err(reason) => return Validation::skipped(reason),
        };
        let mut notes = Vec::new();
        let lost = data_loss::destroyed(
            &references.baseline,
            &references.after_up,
            &references.dropped,
            original.parsed,
        );
        if !lost.is_empty() {
            let overruled = if draft.data_loss {
                ""
            } else {
                " (data_loss is set although the draft said otherwise)"
            };
            notes.push(format!(
                "the up destroys {}: no down can bring that back, this one at best restores the schema{overruled}",
                lost.join(", ")
            ));
            draft.data_loss = true;
        }
        let database = match fresh_database(shadow, baseline, on_baseline).await {
            Ok(database) => database,
            Err(error) => return Validation::skipped(cannot_copy(&error.0)),
        };
        let down = Original {
            text: &draft.sql,
            parsed: &sql::parse_text(&draft.sql),
            sections: &[Section {
                range: 0..draft.sql.len(),
                transaction: original
                    .sections
                    .first()
                    .map_or(Transaction::Wrapped, |s| s.transaction),
            }],
        };
        let outcome = run_down(&database.client, &original, &down, references).await;
        shadow.drop_copy(database).await;
        match outcome {
            Ok((reasons, order_notes)) => {
                notes.extend(order_notes);
                Validation::from_checks(reasons, notes)
            }
            Err(reason) => Validation::skipped(reason),
        }
    }
}

/// Applies the original on a copy of the baseline: the baseline's model and schema, and the schema
/// the original produces.
async fn read_references(
    shadow: &Shadow,
    baseline: &str,
    original: &Original<'_>,
) -> Result<References, String> {
    let database = shadow
        .copy_of(baseline)
        .await
        .map_err(|error| cannot_copy(&error.0))?;
    let read = async {
        let client = &database.client;
        let before = read_before(client, None).await?;
        apply_script(client, original).await.map_err(|error| {
            format!(
                "not validated: the reviewed migration itself fails on the shadow database at {}, so there is no schema a draft must reach",
                one_line(&error)
            )
        })?;
        read_after(client, before, None).await.map(|(references, _)| references)
    }
    .await;
    shadow.drop_copy(database).await;
    read
}

/// What [`References`] need of the database just before the original: its model, schema and
/// columns.
pub struct Before {
    catalog: Catalog,
    snapshot: SchemaSnapshot,
    columns: data_loss::ColumnIds,
}

/// The schema and columns [`read_after`] read after a migration: what [`read_before`] would read
/// again before the next one when nothing changed the database in between.
pub struct After {
    snapshot: SchemaSnapshot,
    columns: data_loss::ColumnIds,
}

/// Reads what [`References`] need of the database `client` is connected to, just before the
/// original is applied there; its schema and columns are `after` the migration before it, when
/// they were read then and nothing changed the database since.
pub async fn read_before(client: &Client, after: Option<After>) -> Result<Before, String> {
    let catalog = schema::introspect(client).await.map_err(unreadable)?;
    let After { snapshot, columns } = match after {
        Some(after) => after,
        None => After {
            snapshot: snapshot(client).await.map_err(unreadable)?,
            columns: data_loss::column_ids(client).await.map_err(unreadable)?,
        },
    };
    Ok(Before {
        catalog,
        snapshot,
        columns,
    })
}

/// The references of the original just applied on `client`'s database (on the session that
/// applied it), which was as `before` says just before; and what they read, for the next
/// migration's [`read_before`]. `traced` is the schema the trace kept of the result, when it is
/// what a whole read would print (see [`Printing`]): it is taken instead of reading it again.
pub async fn read_after(
    client: &Client,
    before: Before,
    traced: Option<&SchemaSnapshot>,
) -> Result<(References, After), String> {
    let after_up = match traced {
        Some(schema) => schema.clone(),
        None => snapshot(client).await.map_err(unreadable)?,
    };
    let columns_after = data_loss::column_ids(client).await.map_err(unreadable)?;
    let references = References {
        dropped: data_loss::dropped_columns(&before.columns, &columns_after),
        existed: before
            .catalog
            .relations()
            .map(|r| (r.name.to_string(), r.kind))
            .collect(),
        catalog: before.catalog,
        baseline: before.snapshot,
        after_up: after_up.clone(),
    };
    let after = After {
        snapshot: after_up,
        columns: columns_after,
    };
    Ok((references, after))
}

/// Settings that change how the catalog reads print names and values (quoting, constants in
/// defaults and expressions: dates, intervals, time zones, floats, bytea, money, string escapes)
/// or what the session may read. The trace reads the schema in the session of the migration it
/// traces; what it read is what a fresh session (a copy's, the next migration's) would read only
/// while these stayed as the session started. `search_path` is set around every read.
const PRINTING_SETTINGS: [&str; 10] = [
    "quote_all_identifiers",
    "datestyle",
    "intervalstyle",
    "timezone",
    "extra_float_digits",
    "bytea_output",
    "lc_monetary",
    "standard_conforming_strings",
    "role",
    "session_authorization",
];

/// Whether the schema the trace kept through a migration was read with the session printing as a
/// fresh one: the text sets none of [`PRINTING_SETTINGS`] (`SET`, also in a `DO` block's or a
/// function's text, or `set_config` of any name), and none of them differs from its value at the
/// session's start afterwards (checked on the server, [`Printing::checked`]).
/// A setting made only for a transaction (`SET LOCAL`, `set_config(…, true)`) is gone once it
/// commits, so only the text tells of it.
pub struct Printing(bool);

impl Printing {
    /// What the texts say: none of them sets a printing setting.
    pub fn of<'t>(texts: impl IntoIterator<Item = &'t str>) -> Printing {
        Printing(texts.into_iter().all(|text| !sets_printing(text)))
    }

    /// Asks the server whether the session still has every printing setting as it started, when
    /// the texts set none: `Some(schema)` of the trace then, else `None` (read it whole).
    pub async fn checked<'k>(
        self,
        client: &Client,
        traced: Option<&'k SchemaSnapshot>,
    ) -> Option<&'k SchemaSnapshot> {
        let traced = traced.filter(|_| self.0)?;
        let changed = client
            .query_one(
                "SELECT count(*) FROM pg_catalog.pg_settings \
                 WHERE lower(name) = ANY($1) AND setting IS DISTINCT FROM reset_val",
                &[&PRINTING_SETTINGS.as_slice()],
            )
            .await
            .ok()?
            .try_get::<_, i64>(0)
            .ok()?;
        (changed == 0).then_some(traced)
    }
}

/// Whether `text` may set one of [`PRINTING_SETTINGS`]: `set_config` anywhere, or `SET [LOCAL |
/// SESSION] name` of one (`TIME ZONE`, `SESSION AUTHORIZATION` spelt as words), in any case,
/// quoted or not, in a statement or in a string (a `DO` block's `EXECUTE`). Over-eager on
/// purpose (`UPDATE t SET timezone = …`): a miss costs only a whole read.
fn sets_printing(text: &str) -> bool {
    let words: String = text
        .to_lowercase()
        .replace('"', "")
        .split(|c: char| c.is_whitespace() || c == '=' || c == '\'')
        .filter(|word| !word.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    if words.contains("set_config") {
        return true;
    }
    let named = ["time zone", "session authorization"]
        .into_iter()
        .chain(PRINTING_SETTINGS);
    named.into_iter().any(|name| {
        ["set ", "set local ", "set session "]
            .iter()
            .any(|set| words.contains(&format!("{set}{name}")))
    })
}

fn unreadable(error: tokio_postgres::Error) -> String {
    format!(
        "not validated: cannot read the shadow database's catalog: {}",
        db_error(&error)
    )
}

/// Where a draft runs: a fresh copy of the `baseline`, or the baseline `itself` (dropped with it).
async fn fresh_database(
    shadow: &Shadow,
    baseline: &str,
    itself: bool,
) -> Result<Database, crate::shadow::session::ShadowError> {
    if itself {
        shadow.open_template(baseline).await
    } else {
        shadow.copy_of(baseline).await
    }
}

fn cannot_copy(error: &str) -> String {
    format!("not validated: {error}")
}

/// One step applied with its trace; the statements' labels and lines name them in reasons.
struct StepRun {
    traces: Vec<StatementTrace>,
    parsed: ParsedFile,
    lines: Vec<usize>,
}

impl StepRun {
    fn at(&self, step: usize, trace: &StatementTrace) -> StepStatement<'_> {
        StepStatement {
            step,
            line: self.lines.get(trace.statement).copied().unwrap_or(1),
            label: self
                .parsed
                .statements
                .get(trace.statement)
                .map_or("statement", |s| s.label_or("statement")),
        }
    }

    /// "step 2 (CREATE INDEX, line 1 of the step) fails: ERROR 25001: …" when a statement failed.
    fn failure(&self, step: usize) -> Option<String> {
        let trace = self.traces.iter().find(|t| t.error.is_some())?;
        let error = trace.error.as_ref()?;
        Some(format!(
            "{} fails: {}",
            self.at(step, trace),
            error.server_error()
        ))
    }
}

/// Applies a rewrite's steps in order on `database`, traced from what is `known` of it, and
/// compares the result with the original's: the reasons and notes. `Err` when the shadow itself
/// fails.
async fn run_rewrite(
    database: &Database,
    steps: &[Step],
    references: &References,
    mut known: Known,
) -> Result<(Vec<String>, Vec<String>), String> {
    let mut reasons = Vec::new();
    for (index, step) in steps.iter().enumerate() {
        let number = index + 1;
        let run = apply_step(database, step, &mut known).await;
        if run.parsed.statements.is_empty() {
            reasons.push(format!("step {number} holds no SQL statement"));
            continue;
        }
        reasons.extend(blocking_reasons(&run.traces, &references.existed, |t| {
            run.at(number, t).to_string()
        }));
        if let Some(failure) = run.failure(number) {
            // The steps after it would run on a schema the draft never meant.
            reasons.push(failure);
            return Ok((reasons, Vec::new()));
        }
    }
    let result = snapshot(&database.client).await.map_err(|e| {
        format!(
            "not validated: cannot read the shadow database's schema: {}",
            db_error(&e)
        )
    })?;
    let (differences, notes) = compare(&references.after_up, &result, Reference::Original);
    reasons.extend(differences);
    Ok((reasons, notes))
}

/// Applies one step as a migration of its own: in one transaction when it is `transactional`,
/// else each statement on its own, as `CREATE INDEX CONCURRENTLY` needs. What the trace knows of
/// the database (`known`) is kept up to date for the next step.
async fn apply_step(database: &Database, step: &Step, known: &mut Known) -> StepRun {
    let text = step.sql.as_str();
    let sections = [Section {
        range: 0..text.len(),
        transaction: if step.transactional {
            Transaction::Wrapped
        } else {
            Transaction::None
        },
    }];
    let parsed = sql::parse_text(text);
    let line_index = LineIndex::new(text);
    let script = Script::new(text, &parsed, &sections, &line_index);
    let lines = script.statements().map(|s| s.line).collect();
    // What the trace prepared on the session stays for the next step.
    let traces =
        apply_traced_in_new_session(&database.client, &database.monitor, &script, known).await;
    StepRun {
        traces,
        parsed,
        lines,
    }
}

/// The rollback drill on `client`: up, down, compare with the baseline (as far as a down can restore
/// it), up again. `Err` when the up fails the first time (the shadow, not the draft, is at fault: it
/// applied on the reference copy).
async fn run_down(
    client: &Client,
    up: &Original<'_>,
    down: &Original<'_>,
    references: &References,
) -> Result<(Vec<String>, Vec<String>), String> {
    apply_script(client, up).await.map_err(|error| {
        format!(
            "not validated: the up migration failed on the shadow database at {}",
            one_line(&error)
        )
    })?;
    if let Err(error) = apply_script(client, down).await {
        return Ok((
            vec![format!("the down fails at {}", one_line(&error))],
            Vec::new(),
        ));
    }
    let restored = snapshot(client).await.map_err(|e| {
        format!(
            "not validated: cannot read the shadow database's schema: {}",
            db_error(&e)
        )
    })?;
    let (expected, mut notes) =
        data_loss::restorable(&references.baseline, &references.dropped, &restored);
    let (mut reasons, order_notes) = compare(&expected, &restored, Reference::BeforeUp);
    notes.extend(order_notes);
    if let Err(error) = apply_script(client, up).await {
        reasons.push(format!(
            "the up does not apply again after the down: it fails at {}",
            one_line(&error)
        ));
    }
    Ok((reasons, notes))
}

/// Applies a migration in its tool's transaction shape, in a fresh session state.
async fn apply_script(client: &Client, migration: &Original<'_>) -> Result<(), ApplyError> {
    let lines = LineIndex::new(migration.text);
    let script = Script::new(migration.text, migration.parsed, migration.sections, &lines);
    let _ = client.batch_execute(NEW_SESSION).await;
    apply::apply(client, &script).await.map(|_| ())
}

/// "line 3: ERROR 42P01: relation \"x\" does not exist (detail)" on one line.
fn one_line(error: &ApplyError) -> String {
    format!("line {}: {}", error.line, error.server_error())
}
