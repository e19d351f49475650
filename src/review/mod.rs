//! The review pipeline: discover → load → split/parse → model → rules → one [`Review`] value that
//! every report format renders.

use std::borrow::Cow;
use std::cell::OnceCell;
use std::collections::HashSet;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Mutex};

mod confirm;
mod edits;
mod shadow;
mod validation;

use crate::advice::advise::{Conversations, DEFAULT_ADVISE_ON};
use crate::advice::draft::Step;
use crate::advice::prompt::AdviceContext;
use crate::advice::{self, Advice, AdviseOptions};
use crate::escape;
use crate::migration::git::HistoryEdits;
use crate::migration::{
    self, DiscoverError, DiscoverOptions, Discovery, Migration, MigrationRef, MigrationSet,
    Skipped, Tool,
};
use crate::pg::held::{HeldLocks, Holder};
use crate::pg::transactions::transaction_states;
use crate::rules::suppress::Suppressions;
use crate::rules::{
    self, Category, Diagnostic, FileIndex, NamesReader, Rule, RuleSettings, Severity,
    StatementContext, TxState,
};
use crate::schema::Catalog;
use crate::shadow::session::{Shadow, ShadowMode, ShadowOptions};
use crate::shadow::trace::StatementTrace;
use crate::sql::{self, LineIndex, ObjectName, ParsedFile, Position};
use crate::stats::{self, Stats, TableSize};
use shadow::{Baselines, Expected, Reviewed, SetShadow, Traced};

/// Default limit on one migration file's size (`max-file-size`).
pub const DEFAULT_MAX_FILE_SIZE: u64 = 32 * 1024 * 1024;

/// How many statements of each file the parsing threads parse ahead of the review: every statement
/// of a usual migration, and a bounded number of syntax trees (10–20 KB each) for a long one. The
/// review keeps these trees until the file is done; it releases later ones as it passes them.
const PARSED_AHEAD: usize = 512;

/// Everything that decides what a review finds.
#[derive(Debug, Clone)]
pub struct ReviewOptions {
    pub discover: DiscoverOptions,
    pub max_file_size: u64,
    pub rule_settings: RuleSettings,
    /// Severity overrides by rule id; `None` turns a rule off.
    pub severities: HashMap<String, Option<Severity>>,
    /// Table sizes from `--stats`, for size grading.
    pub stats: Option<Stats>,
    /// Tables with fewer rows are small: their size-graded findings drop to `info`.
    pub small_table_rows: u64,
    pub shadow: ShadowOptions,
    /// No `--pg-version` was given: the shadow server's version is the target.
    pub pg_version_from_shadow: bool,
    pub advise: AdviseOptions,
    /// With `--base`: the migrations of the merge base edited or deleted since.
    pub edited_history: Option<HistoryEdits>,
    /// `--shadow require`: a history the shadow cannot apply is an error, not a static review.
    pub shadow_required: bool,
    /// Set by the review: the shadow's server is another major version than the rules target.
    pub trace_version: Option<TraceVersion>,
}

/// The shadow's server version (`15.18`) when it differs from the target (`--pg-version`): the trace
/// shows what that version does, which can differ from the target's locks and rewrites.
#[derive(Debug, Clone)]
pub struct TraceVersion {
    pub shadow: String,
    pub target: u32,
}

impl TraceVersion {
    fn note(&self) -> String {
        format!(
            "the trace comes from PostgreSQL {} (the shadow's server), not from PostgreSQL {} that the review targets (--pg-version): locks, rewrites and errors can differ between versions; `--pg-bin` of a PostgreSQL {} gives a trace of the target",
            self.shadow, self.target, self.target
        )
    }
}

impl Default for ReviewOptions {
    fn default() -> Self {
        ReviewOptions {
            discover: DiscoverOptions::default(),
            max_file_size: DEFAULT_MAX_FILE_SIZE,
            rule_settings: RuleSettings::default(),
            severities: HashMap::new(),
            stats: None,
            small_table_rows: stats::DEFAULT_SMALL_TABLE_ROWS,
            shadow: ShadowOptions::default(),
            pg_version_from_shadow: false,
            advise: AdviseOptions::default(),
            edited_history: None,
            shadow_required: false,
            trace_version: None,
        }
    }
}

impl ReviewOptions {
    /// The severity a rule reports with, or `None` when it is turned off.
    fn severity(&self, rule: &Rule) -> Option<Severity> {
        self.severities
            .get(rule.id)
            .copied()
            .unwrap_or(Some(rule.default_severity))
    }

    /// Whether findings known only after the shadow applied a migration can get it the LLM's drafts:
    /// the trace's (a rewrite or lock no rule predicted) when they reach `--advise-on`, and
    /// `history-modified` on a migration edited since `--base`. (The built-in fixers draft only for
    /// the rules' findings; a migration that fails on the shadow has no schema a draft must reach.)
    fn may_advise_later(&self, path: &Path) -> bool {
        let reaches = |rule| self.severity(rule).is_some_and(|s| self.advise.advises(s));
        self.advise.llm.is_some()
            && (reaches(rules::shadow::OBSERVED_REWRITE)
                || reaches(rules::shadow::OBSERVED_BLOCKING_LOCK)
                || self.edited_history.as_ref().is_some_and(|edits| {
                    reaches(rules::HISTORY_MODIFIED) && edits::edits(edits, path)
                }))
    }

    /// Whether a reviewed migration gets drafts to validate: the built-in fixers', or the LLM's for
    /// a finding at or above `--advise-on`.
    fn has_drafts(&self, migration: &MigrationReview) -> bool {
        migration.advice.is_some()
            || (self.advise.llm.is_some()
                && migration
                    .findings
                    .iter()
                    .any(|f| self.advise.advises(f.severity)))
    }
}

/// The result of a review: one entry per reviewed migration, and the inputs that could not be reviewed.
/// Every message in it is printable as it is: file names and identifiers in them are escaped (see
/// [`escape`](crate::escape)); paths and SQL are data, which renderers escape.
#[derive(Debug, Default)]
pub struct Review {
    pub migrations: Vec<MigrationReview>,
    pub problems: Vec<InputProblem>,
    /// Entries of the migrations directories that were passed over and would not have been migrations.
    pub notices: Vec<InputNotice>,
    /// The shadow database the migrations were applied to ("PostgreSQL 15.8 (…)"), if one was used.
    pub shadow: Option<String>,
    /// Why the shadow's trace read no statement's schema changes (`--trace-changes`), said once
    /// beside the shadow; `None` when it read them or traced nothing.
    pub schema_changes_unread: Option<String>,
    /// Why no migration got advice though some finding reached the default `--advise-on`: the run
    /// reviewed too many migrations for it; `None` otherwise.
    pub advice_unasked: Option<String>,
    /// Per reviewed migration, what the advise stage needs of the schema before it.
    pub advice_contexts: HashMap<PathBuf, AdviceContext>,
}

/// A path or file migagent could not review; any problem makes the run exit with 2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputProblem {
    pub path: PathBuf,
    pub position: Option<Position>,
    pub message: String,
}

/// A directory entry that was not read and would not have been a migration; it does not change the
/// exit code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputNotice {
    pub path: PathBuf,
    pub message: String,
}

#[derive(Debug)]
pub struct MigrationReview {
    pub path: PathBuf,
    pub tool: Tool,
    pub text: String,
    /// The parts of the file the tool runs, and how (in a transaction or not).
    pub sections: Vec<migration::Section>,
    pub lines: LineIndex,
    pub statements: Vec<ReviewedStatement>,
    /// Sorted by position.
    pub findings: Vec<Finding>,
    /// Warnings about the review itself (e.g. an ignore directive naming an unknown rule).
    pub notices: Vec<Notice>,
    /// What the advise stage proposes; `None` when it had nothing to say or did not run.
    pub advice: Option<Advice>,
}

#[derive(Debug, Clone)]
pub struct ReviewedStatement {
    pub index: usize,
    pub range: std::ops::Range<usize>,
    pub position: Position,
    /// sqlparser produced a syntax tree.
    pub parsed: bool,
    /// Parsed, or recognised from its keywords by the fallback classification.
    pub classified: bool,
    /// Its leading keywords, for messages (`ALTER TABLE`).
    pub label: String,
    /// What applying it on the shadow database did; `None` without a shadow. Boxed: a trace is
    /// large, and a static review of a long file holds one `None` per statement.
    pub trace: Option<Box<StatementTrace>>,
    /// With a plan in the trace and `--stats`: the sizes of the tables the statement works on, since
    /// the plan itself ran on the shadow's empty tables.
    pub table_sizes: Vec<(String, TableSize)>,
}

#[derive(Debug, Clone)]
pub struct Finding {
    pub rule: &'static Rule,
    pub severity: Severity,
    /// Index into the migration's statements.
    pub statement: usize,
    pub offset: usize,
    pub position: Position,
    pub message: String,
    pub help: String,
    /// The relation it is about, schema-qualified.
    pub table: Option<ObjectName>,
    /// `None`: no shadow database ran.
    pub confirmed_by_shadow: Option<bool>,
    /// The rule's built-in fixer's answer (see [`rules::fix`]); the advice stage composes a
    /// migration's fixes into its rewrite draft.
    pub fix: Option<rules::fix::Fix>,
}

impl Finding {
    pub fn category(&self) -> Category {
        self.rule.category
    }
}

#[derive(Debug, Clone)]
pub struct Notice {
    pub position: Position,
    pub message: String,
}

impl Review {
    /// Counts of findings per severity.
    pub fn counts(&self) -> SeverityCounts {
        let mut counts = SeverityCounts::default();
        for finding in self.migrations.iter().flat_map(|m| &m.findings) {
            match finding.severity {
                Severity::Error => counts.errors += 1,
                Severity::Warning => counts.warnings += 1,
                Severity::Info => counts.infos += 1,
            }
        }
        counts
    }

    /// The highest severity among the findings.
    pub fn max_severity(&self) -> Option<Severity> {
        self.migrations
            .iter()
            .flat_map(|m| &m.findings)
            .map(|f| f.severity)
            .max()
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SeverityCounts {
    pub errors: usize,
    pub warnings: usize,
    pub infos: usize,
}

/// Reviews the migrations the paths name.
pub fn review(paths: &[PathBuf], options: &ReviewOptions) -> Review {
    let Discovery {
        sets,
        errors,
        skipped,
    } = migration::discover(paths, &options.discover);
    let mut review = Review::default();
    note_discovery(&mut review, errors, skipped);
    let hashes = history_hashes(&sets, options);
    let mut shadow = open_shadow(&sets, &hashes, options, &mut review);
    let mut options = options_with_shadow(options, shadow.as_ref());
    let reviewed = migration::reviewed_count(&sets);
    let changes_unread = options.shadow.trace_changes.unread(reviewed);
    let advice_unasked = options.advise.for_a_review_of(reviewed);
    let mut baselines = Baselines::new();
    for (set, hash) in sets.iter().zip(&hashes) {
        let set_shadow = shadow
            .as_mut()
            .zip(hash.as_deref())
            .map(|(shadow, hash)| Traces {
                shadow,
                history_hash: hash,
                follow_schema: changes_unread.is_none(),
            });
        baselines.extend(review_set(set, &options, &mut review, set_shadow));
    }
    describe_shadow(&mut review, changes_unread);
    if let Some(edited) = &options.edited_history {
        edits::report(&mut review, edited, &options);
    }
    // Said only where the default level would have advised.
    review.advice_unasked = advice_unasked.filter(|_| {
        review
            .migrations
            .iter()
            .any(|m| m.findings.iter().any(|f| f.severity >= DEFAULT_ADVISE_ON))
    });
    let conversations = advise_step(&mut review, &options);
    validation::validate(
        &mut review,
        shadow.as_ref(),
        &mut baselines,
        conversations,
        &options,
    );
    if let Some(shadow) = shadow {
        finish_shadow(&mut review, shadow);
    }
    for problem in &mut review.problems {
        make_printable(&mut problem.message);
    }
    review
}

/// What discovery could not read (problems), and the entries it passed over (notices, or problems
/// when they would have been migrations).
fn note_discovery(review: &mut Review, errors: Vec<DiscoverError>, skipped: Vec<Skipped>) {
    for error in errors {
        review.problems.push(InputProblem {
            path: error.path,
            position: None,
            message: error.message,
        });
    }
    for skipped in skipped {
        let message = skipped.to_string();
        if skipped.would_be_migration {
            review.problems.push(InputProblem {
                path: skipped.path,
                position: None,
                message,
            });
        } else {
            review.notices.push(InputNotice {
                path: skipped.path,
                message,
            });
        }
    }
}

/// Each directory's history hash, which names its baseline; the first also picks the cached image
/// the shadow starts from, unless that history is empty. `None` without a shadow.
fn history_hashes(sets: &[MigrationSet], options: &ReviewOptions) -> Vec<Option<String>> {
    sets.iter()
        .map(|set| {
            (options.shadow.mode != ShadowMode::Off)
                .then(|| shadow::history_hash(set, options))
                .flatten()
        })
        .collect()
}

/// The options the rules run with once the shadow is up: its server's version when no
/// `--pg-version` was given, and which version a trace comes from when the two differ.
fn options_with_shadow(options: &ReviewOptions, shadow: Option<&Shadow>) -> ReviewOptions {
    let mut options = options.clone();
    if let (Some(shadow), true) = (shadow, options.pg_version_from_shadow) {
        options.rule_settings.pg_version = shadow.version().major;
        options.rule_settings.pg_minor = Some(shadow.version().minor);
    }
    options.trace_version = shadow
        .filter(|shadow| shadow.version().major != options.rule_settings.pg_version)
        .map(|shadow| TraceVersion {
            shadow: shadow.version().to_string(),
            target: options.rule_settings.pg_version,
        });
    options
}

/// The report names the shadow, and why it read no schema changes, only when it traced something
/// it reviews.
fn describe_shadow(review: &mut Review, changes_unread: Option<String>) {
    let traced = review
        .migrations
        .iter()
        .any(|m| m.statements.iter().any(|s| s.trace.is_some()));
    if traced {
        review.schema_changes_unread = changes_unread;
    } else {
        review.shadow = None;
    }
}

/// Stops the shadow; a server or database left behind is a problem of the run.
fn finish_shadow(review: &mut Review, shadow: Shadow) {
    if let Err(error) = shadow.finish() {
        review.problems.push(InputProblem {
            path: PathBuf::from("--shadow"),
            position: None,
            message: error.to_string(),
        });
    }
}

/// The advise stage. Advice never changes the findings; a setup problem is reported and the review
/// goes on without advice. Returns the LLM's open conversations, which the validate stage continues.
fn advise_step(review: &mut Review, options: &ReviewOptions) -> Conversations {
    let contexts = std::mem::take(&mut review.advice_contexts);
    let settings = &options.rule_settings;
    let pg_version = match settings.pg_minor {
        Some(minor) => format!("{}.{minor}", settings.pg_version),
        None => settings.pg_version.to_string(),
    };
    advice::advise(
        &mut review.migrations,
        &contexts,
        &options.advise,
        &pg_version,
    )
    .unwrap_or_else(|message| {
        review.problems.push(InputProblem {
            path: PathBuf::from("--llm"),
            position: None,
            message: format!("{message}; the migrations were reviewed without LLM advice"),
        });
        Conversations::new()
    })
}

/// Where debug output is asked for: a comma-separated list of what to log to stderr
/// (`validation`: each draft's validation time; `baselines`: each copy kept for validating drafts).
pub const DEBUG_ENV: &str = "MIGAGENT_DEBUG";

/// Whether `MIGAGENT_DEBUG` asks for `what`.
fn debugging(what: &str) -> bool {
    std::env::var(DEBUG_ENV)
        .unwrap_or_default()
        .split(',')
        .any(|asked| asked.trim() == what)
}

/// The built-in fixers' drafts for a reviewed migration with a finding at or above `--advise-on`
/// (no LLM needed); `None` when they draft nothing. The LLM's advice, when asked, adds to it.
/// `catalog` is the schema after the migration, with a journal opened just before it: the drafts
/// see the schema before it through that journal.
fn builtin_advice(
    migration: &MigrationReview,
    parsed: &ParsedFile,
    catalog: &mut Catalog,
    options: &ReviewOptions,
) -> Option<Advice> {
    let severities: Vec<Severity> = migration.findings.iter().map(|f| f.severity).collect();
    if !severities.iter().any(|&s| options.advise.advises(s)) {
        return None;
    }
    catalog.swap_journal();
    let builtin = advice::builtin::drafts_of(migration, &parsed.statements, catalog);
    catalog.swap_journal();
    if builtin.drafts.is_empty() {
        return None;
    }
    let mut advice = Advice::builtin(builtin.drafts, &severities);
    advice.notes = builtin.notes;
    Some(advice)
}

/// What the advise stage needs of the schema just before the migration; only when an LLM is asked.
fn advice_context(
    migration: &Migration,
    parsed: &ParsedFile,
    catalog: &Catalog,
    options: &ReviewOptions,
) -> Option<AdviceContext> {
    options.advise.llm.as_ref()?;
    let states = transaction_states(&migration.text, &parsed.statements, &migration.sections);
    Some(advice::prompt::context(
        catalog,
        &migration.text,
        &parsed.statements,
        &states,
        options.stats.as_ref(),
    ))
}

/// Escapes what a message quotes from the repository under review (file names, identifiers, server
/// errors about them).
fn make_printable(message: &mut String) {
    if let Cow::Owned(escaped) = escape::text(message) {
        *message = escaped;
    }
}

/// Opens the shadow database the options ask for; a shadow that was asked for and cannot be set up
/// is a problem (exit 2), and the migrations are still reviewed statically.
/// `hashes` are the directories' history hashes, `None` for a directory with nothing to review.
fn open_shadow(
    sets: &[MigrationSet],
    hashes: &[Option<String>],
    options: &ReviewOptions,
    review: &mut Review,
) -> Option<Shadow> {
    let (set, hash) = sets
        .iter()
        .zip(hashes)
        .find_map(|(set, hash)| Some((set, hash.as_deref()?)))?;
    // With nothing applied before the first reviewed migration (a whole directory reviewed), an
    // image would hold initdb's catalog and an empty database, as the cached initdb image does:
    // storing it would only stop the server, copy its data dir and start it again.
    let image = (set.targets.iter().min() != Some(&0)).then_some(hash);
    match Shadow::open(&options.shadow, image) {
        Ok(shadow) => {
            review.shadow = shadow.as_ref().map(Shadow::describe);
            for warning in shadow.iter().flat_map(Shadow::warnings) {
                escape::eprint(&format!("warning: {warning}"));
            }
            shadow
        }
        Err(error) => {
            review.problems.push(InputProblem {
                path: set.dir.clone(),
                position: None,
                message: format!("{error}; the migrations were reviewed without it"),
            });
            None
        }
    }
}

/// Replays a directory's history up to its last target, reviewing each target on the way. Returns
/// the baselines the shadow kept for validating the reviewed migrations' drafts.
fn review_set(
    set: &MigrationSet,
    options: &ReviewOptions,
    review: &mut Review,
    traces: Option<Traces>,
) -> Baselines {
    let Some(&last_target) = set.targets.iter().max() else {
        return Baselines::new();
    };
    let shadow = traces.and_then(|traces| begin_set_shadow(set, review, traces));
    let mut replay = SetReplay {
        options,
        checked: checked_rules(options, shadow.is_some()),
        catalog: Catalog::default(),
        shadow,
        reviewing: false,
    };
    // Reading and parsing is independent per file: worker threads do it ahead while this thread
    // replays the migrations in order.
    let load_and_parse = |&(reference, is_target): &(&MigrationRef, bool)| {
        migration::load(
            reference,
            set.tool,
            &options.discover,
            options.max_file_size,
        )
        .map(|migration| {
            let (parsed, file) = parse_target(&migration, is_target);
            // The first trees are built here, on a worker; a long file's later ones as the review
            // reaches them, each released once reviewed.
            for statement in parsed.statements.iter().take(PARSED_AHEAD) {
                statement.parse_ahead();
            }
            let prepared = file.map(|file| Prepared::of(&migration, &parsed, file));
            (migration, parsed, prepared)
        })
    };
    let items: Vec<(&MigrationRef, bool)> = set.migrations[..=last_target]
        .iter()
        .enumerate()
        .map(|(index, reference)| (reference, set.targets.contains(&index)))
        .collect();
    in_order_pipeline(&items, load_and_parse, |index, loaded| {
        let (reference, is_target) = items[index];
        match loaded {
            Ok((migration, mut parsed, prepared)) => {
                if is_target {
                    replay.review_target(review, migration, &mut parsed, prepared);
                } else {
                    replay.apply_history(review, &migration, &parsed);
                }
                Some(parsed)
            }
            Err(error) => {
                replay.unreadable(review, reference, is_target, error);
                None
            }
        }
    });
    let Some(mut set_shadow) = replay.shadow else {
        return Baselines::new();
    };
    validation::validate_kept(review, &mut set_shadow, options, true);
    set_shadow.take_baselines()
}

/// The shadow for one directory, or `None` (and a problem saying why) when it cannot begin.
fn begin_set_shadow<'s>(
    set: &MigrationSet,
    review: &mut Review,
    traces: Traces<'s, '_>,
) -> Option<SetShadow<'s>> {
    SetShadow::begin(traces.shadow, traces.history_hash, traces.follow_schema)
        .map_err(|message| {
            review.problems.push(InputProblem {
                path: set.dir.clone(),
                position: None,
                message: format!(
                    "{message}; the migrations were reviewed without the shadow database"
                ),
            })
        })
        .ok()
}

/// How one directory's migrations are traced: on which shadow, from the baseline of which history,
/// and whether the trace follows the schema statement by statement (`--trace-changes`).
struct Traces<'s, 'h> {
    shadow: &'s mut Shadow,
    history_hash: &'h str,
    follow_schema: bool,
}

/// What a directory's replay carries from one migration to the next.
struct SetReplay<'o, 's> {
    options: &'o ReviewOptions,
    checked: CheckedRules,
    /// The schema model, as of the migration being replayed.
    catalog: Catalog,
    shadow: Option<SetShadow<'s>>,
    /// The first reviewed migration was reached.
    reviewing: bool,
}

impl SetReplay<'_, '_> {
    /// Reviews one target: its findings, its trace on the shadow, its built-in drafts.
    fn review_target(
        &mut self,
        review: &mut Review,
        migration: Migration,
        parsed: &mut ParsedFile,
        prepared: Option<Prepared>,
    ) {
        if !self.reviewing {
            self.reviewing = true;
            self.start_reviewing(review, &migration.path);
        }
        let options = self.options;
        self.catalog.begin_migration();
        let context = advice_context(&migration, parsed, &self.catalog, options);
        // The schema before the migration, for the built-in drafts: what the migration changes is
        // recorded, not the whole schema copied.
        self.catalog.open_journal();
        let prepared =
            prepared.unwrap_or_else(|| Prepared::of(&migration, parsed, FileIndex::default()));
        let mut reviewed = review_migration(
            migration,
            parsed,
            prepared,
            &mut self.catalog,
            options,
            &self.checked,
            self.shadow.as_mut(),
        );
        reviewed.advice = builtin_advice(&reviewed, parsed, &mut self.catalog, options);
        self.catalog.close_journal();
        if let Some(set_shadow) = self
            .shadow
            .as_mut()
            .filter(|_| !options.has_drafts(&reviewed))
        {
            set_shadow.release_baseline(&reviewed.path);
        }
        review.problems.extend(split_problems(&reviewed, parsed));
        if let Some(context) = context {
            review
                .advice_contexts
                .insert(reviewed.path.clone(), context);
        }
        review.migrations.push(reviewed);
        if let Some(set_shadow) = &mut self.shadow {
            validation::validate_kept(review, set_shadow, options, false);
        }
    }

    /// At the first target the shadow starts tracing; its catalog, when exact, replaces the model's.
    fn start_reviewing(&mut self, review: &mut Review, path: &Path) {
        let Some(set_shadow) = &mut self.shadow else {
            return;
        };
        match set_shadow.start_reviewing() {
            Ok(Some(exact)) => self.catalog = exact,
            Ok(None) => {}
            Err(message) => review.problems.push(InputProblem {
                path: path.to_owned(),
                position: None,
                message: format!(
                    "{message}; the migrations of this directory were reviewed without the shadow database"
                ),
            }),
        }
    }

    /// Applies a history migration to the shadow and the schema model.
    fn apply_history(&mut self, review: &mut Review, migration: &Migration, parsed: &ParsedFile) {
        self.catalog.begin_migration();
        if let Some(set_shadow) = &mut self.shadow {
            if let Err(problem) = set_shadow.apply_history(migration, parsed) {
                history_not_applied(review, problem, self.options);
            }
        }
        for statement in &parsed.statements {
            self.catalog.apply(&migration.text, statement);
        }
    }

    /// A migration that could not be read: a problem naming it, and the shadow stops there, since
    /// every later migration would build on a schema production does not have.
    fn unreadable(
        &mut self,
        review: &mut Review,
        reference: &MigrationRef,
        is_target: bool,
        error: migration::LoadError,
    ) {
        let position = match error {
            migration::LoadError::InvalidUtf8 { line, column } => Some(Position { line, column }),
            _ => None,
        };
        let message = if is_target {
            error.to_string()
        } else {
            format!("{error} (it is history for the reviewed migrations: the schema model misses what it does)")
        };
        review.problems.push(InputProblem {
            path: reference.path.clone(),
            position,
            message,
        });
        if let Some(set_shadow) = &mut self.shadow {
            set_shadow.abandon(Some(format!(
                "not applied on the shadow database: {} before it could not be read",
                escape::path(&reference.path)
            )));
        }
    }
}

/// A history migration the shadow could not apply: with `--shadow require` an input problem (exit 2);
/// else the review goes on statically from that file on, and says so once, with what would give a
/// full shadow.
fn history_not_applied(review: &mut Review, problem: InputProblem, options: &ReviewOptions) {
    if options.shadow_required {
        review.problems.push(problem);
        return;
    }
    let at = problem
        .position
        .map(|p| format!("line {}: ", p.line))
        .unwrap_or_default();
    review.notices.push(InputNotice {
        message: format!(
            "{at}{}. For a full shadow: `--pg-bin DIR` of the PostgreSQL version production runs \
             (`--pg-version N` picks an installed /usr/lib/postgresql/N), `--shadow URL` of a server \
             that has what the history needs (its extensions and roles), or remove the dependency \
             from the history; `--shadow require` (`[shadow] required = true`) makes this an error",
            problem.message.trim_end_matches('.'),
        ),
        path: problem.path,
    });
}

/// Calls `consume(index, produce(item))` for every item in order, on this thread, while worker
/// threads (one per core) produce ahead. Lookahead is bounded, so memory stays proportional to the
/// number of workers, not to the number of items. What `consume` hands back is dropped on a worker:
/// freeing large syntax trees is a good part of the work.
pub(crate) fn in_order_pipeline<T: Sync, R: Send, L: Send>(
    items: &[T],
    produce: impl Fn(&T) -> R + Sync,
    mut consume: impl FnMut(usize, R) -> Option<L>,
) {
    // One worker per core: parsing is the larger half of the work, and the consuming thread mostly
    // waits for it (measured: 0.58-0.60 s against 0.64-0.71 s with a core left to the consumer).
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, items.len().max(1));
    if items.len() <= 1 {
        for (index, item) in items.iter().enumerate() {
            consume(index, produce(item));
        }
        return;
    }
    let next = AtomicUsize::new(0);
    let (leftovers, to_drop) = mpsc::channel::<L>();
    let to_drop = Mutex::new(to_drop);
    let (next, produce, to_drop) = (&next, &produce, &to_drop);
    let (sender, receiver) = mpsc::sync_channel::<(usize, R)>(32 * workers);
    std::thread::scope(|scope| {
        for _ in 0..workers {
            let sender = sender.clone();
            // Workers parse and drop syntax trees: their stack is sized for them.
            let worker = std::thread::Builder::new().stack_size(sql::nesting::THREAD_STACK_BYTES);
            let spawned = worker.spawn_scoped(scope, move || loop {
                if let Ok(to_drop) = to_drop.try_lock() {
                    while to_drop.try_recv().is_ok() {}
                }
                let index = next.fetch_add(1, Ordering::Relaxed);
                let Some(item) = items.get(index) else { break };
                if sender.send((index, produce(item))).is_err() {
                    break;
                }
            });
            spawned.unwrap_or_else(|err| panic!("cannot start a parsing thread: {err}"));
        }
        drop(sender);
        // Workers claim items in order, so only a few results ever wait here for their turn.
        let mut waiting = BTreeMap::new();
        let mut expected = 0;
        for (index, result) in receiver {
            waiting.insert(index, result);
            while let Some(result) = waiting.remove(&expected) {
                if let Some(leftover) = consume(expected, result) {
                    let _ = leftovers.send(leftover);
                }
                expected += 1;
            }
        }
    });
}

/// An unterminated quote or comment means the file's end was swallowed: the run must not pass.
fn split_problems(reviewed: &MigrationReview, parsed: &ParsedFile) -> Vec<InputProblem> {
    parsed
        .unterminated
        .iter()
        .map(|u| InputProblem {
            path: reviewed.path.clone(),
            position: Some(reviewed.lines.position(&reviewed.text, u.offset)),
            message: format!(
                "unterminated {} starting here: everything after it up to the end of the file was read as part of it",
                u.what
            ),
        })
        .collect()
}

/// Reviews SQL given as text, as one migration whose `history` (earlier migrations' SQL) was already
/// applied. For rule documentation examples and tests.
pub fn review_sql(
    path: &str,
    history: &[&str],
    sql: &str,
    transaction: migration::Transaction,
    options: &ReviewOptions,
) -> MigrationReview {
    let mut catalog = Catalog::default();
    for earlier in history {
        catalog.begin_migration();
        for statement in &sql::parse_text(earlier).statements {
            catalog.apply(earlier, statement);
        }
    }
    catalog.begin_migration();
    let migration = Migration {
        path: PathBuf::from(path),
        tool: Tool::Plain,
        text: sql.to_owned(),
        sections: vec![migration::Section {
            range: 0..sql.len(),
            transaction,
        }],
    };
    review_alone(migration, &mut sql::parse_text(sql), &mut catalog, options)
}

/// The rules stage on a rewrite's steps, reviewed as one migration on `catalog` (each transactional
/// step in a transaction of its own, the others outside any): its `error` findings as
/// "step 2: index-not-concurrent: …". The validate stage rejects a draft that has any.
pub fn step_errors(catalog: &Catalog, steps: &[Step], options: &ReviewOptions) -> Vec<String> {
    let mut text = String::new();
    let mut sections = Vec::new();
    for step in steps {
        let start = text.len();
        text.push_str(&step.sql);
        let transaction = if step.transactional {
            migration::Transaction::Wrapped
        } else {
            migration::Transaction::None
        };
        sections.push(migration::Section {
            range: start..text.len(),
            transaction,
        });
        text.push('\n');
    }
    let ranges: Vec<_> = sections.iter().map(|s| s.range.clone()).collect();
    let mut parsed = sql::parse(&text, &ranges);
    let step_of = |offset: usize| {
        sections
            .iter()
            .take_while(|s| s.range.start <= offset)
            .count()
    };
    let mut catalog = catalog.clone();
    catalog.begin_migration();
    let migration = Migration {
        path: PathBuf::from("rewrite"),
        tool: Tool::Plain,
        text,
        sections: sections.clone(),
    };
    review_alone(migration, &mut parsed, &mut catalog, options)
        .findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .map(|f| format!("step {}: {}: {}", step_of(f.offset), f.rule.id, f.message))
        .collect()
}

/// One migration reviewed on its own, with no shadow: the rules as `options` turn them on.
fn review_alone(
    migration: Migration,
    parsed: &mut ParsedFile,
    catalog: &mut Catalog,
    options: &ReviewOptions,
) -> MigrationReview {
    let prepared = Prepared::of(&migration, parsed, FileIndex::default());
    let checked = checked_rules(options, false);
    review_migration(
        migration, parsed, prepared, catalog, options, &checked, None,
    )
}

/// Runs every enabled rule on every statement of one migration, with the schema as it is just
/// before each statement.
/// With `shadow`, the migration is then applied to the shadow database and its trace compared with the
/// findings.
/// The rules a review runs, with the severity each reports at (`None`: turned off), grouped by the
/// kinds of statement they look at. With a shadow, rules turned off still run: what they would say
/// explains the trace, so `observed-*` does not report it instead. The same for every migration of a
/// review: built once, not per migration.
type CheckedRules = rules::ByKind<(&'static Rule, Option<Severity>)>;

fn checked_rules(options: &ReviewOptions, tracing: bool) -> CheckedRules {
    let checked: Vec<(&'static Rule, Option<Severity>)> = rules::ALL
        .iter()
        .map(|&rule| (rule, options.severity(rule)))
        .filter(|(_, severity)| tracing || severity.is_some())
        .collect();
    rules::ByKind::new(&checked, |(rule, _)| rule)
}

/// A migration's statements, and for a reviewed one (`is_target`) the index of its statements that
/// the rules ask: a long file's names are read as the file is split, on the thread that parses it.
fn parse_target(migration: &Migration, is_target: bool) -> (ParsedFile, Option<FileIndex>) {
    let text = &migration.text;
    let sections: Vec<_> = migration.sections.iter().map(|s| s.range.clone()).collect();
    if !(is_target && sql::is_long(text)) {
        let parsed = sql::parse(text, &sections);
        return (parsed, is_target.then(FileIndex::default));
    }
    // A schema dump averages about 80 bytes per statement.
    let mut names = NamesReader::with_capacity(text.len() / 80);
    let parsed = sql::parse_each(text, &sections, |index, statement| {
        names.read(text, index, statement)
    });
    (parsed, Some(names.finish()))
}

/// What the review reads from a file before its statements: computed where the file is parsed, on
/// a parsing thread when there is one, not on the thread that replays the migrations in order.
struct Prepared {
    lines: LineIndex,
    states: Vec<TxState>,
    suppressions: Suppressions,
    file: FileIndex,
}

impl Prepared {
    fn of(migration: &Migration, parsed: &ParsedFile, file: FileIndex) -> Prepared {
        let text = &migration.text;
        let lines = LineIndex::new(text);
        let states = transaction_states(text, &parsed.statements, &migration.sections);
        let suppressions =
            Suppressions::parse(text, &lines, &parsed.comments, &parsed.statements, |id| {
                rules::find(id).is_some()
            });
        Prepared {
            lines,
            states,
            suppressions,
            file,
        }
    }
}

/// Reviews one migration with `checked` (from [`checked_rules`], with `tracing` as `shadow` is some).
fn review_migration(
    migration: Migration,
    parsed: &mut ParsedFile,
    prepared: Prepared,
    catalog: &mut Catalog,
    options: &ReviewOptions,
    checked: &CheckedRules,
    shadow: Option<&mut SetShadow>,
) -> MigrationReview {
    let Migration {
        path,
        tool,
        text,
        sections,
    } = migration;
    let mut predicted = shadow
        .is_some()
        .then(|| Predicted::new(catalog, parsed.statements.len()));
    let pass = RulesPass {
        text: &text,
        prepared: &prepared,
        options,
        checked,
    };
    let mut findings = pass.run(parsed, catalog, predicted.as_mut());
    let Prepared {
        lines,
        suppressions,
        ..
    } = prepared;
    let mut statements = reviewed_statements(&text, parsed, &lines);
    let mut notices = suppression_notices(&text, &lines, &suppressions);
    if let Some((shadow, predicted)) = shadow.zip(predicted) {
        // Drafts come for findings at or above --advise-on: those migrations keep their baseline.
        // So may the trace's findings, known only once the migration is applied: the copy is made
        // before, and dropped when no drafts come (see `review_set`).
        let keep_baseline = findings.iter().any(|f| options.advise.advises(f.severity))
            || options.may_advise_later(&path);
        let traced = Traced {
            path: &path,
            text: &text,
            parsed,
            sections: &sections,
            lines: &lines,
        };
        let review = TracedReview {
            findings: &mut findings,
            statements: &mut statements,
            notices: &mut notices,
            suppressions: &suppressions,
        };
        compare_with_trace(shadow, traced, keep_baseline, &predicted, review, options);
    }
    say_which_statements_went_untraced(&statements, &mut findings);
    if let Some(version) = &options.trace_version {
        say_which_version_traced(version, &statements, &mut findings, &mut notices);
    }
    finish_findings(&mut findings, &mut notices, options);
    MigrationReview {
        path,
        tool,
        text,
        sections,
        lines,
        statements,
        findings,
        notices,
        advice: None,
    }
}

/// What the static pass predicts of a migration, to compare with the shadow's trace.
struct Predicted {
    /// Per statement: the locks the lock model predicts and the rules' findings (suppressed ones
    /// too: they still explain what the trace shows).
    expected: Vec<Expected>,
    /// The relations that existed before the migration.
    existed: HashSet<String>,
    /// Relations that existed and that the migration dropped and created again, by the statement
    /// that created them: from there on they are the migration's own.
    recreated_at: HashMap<String, usize>,
}

impl Predicted {
    fn new(catalog: &Catalog, statements: usize) -> Predicted {
        Predicted {
            expected: vec![Expected::default(); statements],
            existed: catalog.relations().map(|r| r.name.to_string()).collect(),
            recreated_at: HashMap::new(),
        }
    }

    /// Whether `relation`, touched by `statement`, existed before the migration and was not
    /// created again by it before that statement.
    fn existed(&self, relation: &str, statement: usize) -> bool {
        self.existed.contains(relation)
            && self
                .recreated_at
                .get(relation)
                .is_none_or(|&at| statement < at)
    }
}

/// The rules run on each statement of one migration in order, with the schema as it is just
/// before the statement.
struct RulesPass<'a> {
    text: &'a str,
    prepared: &'a Prepared,
    options: &'a ReviewOptions,
    checked: &'a CheckedRules,
}

/// A migration's findings as the rules report them, and the later occurrences of
/// once-per-migration findings.
#[derive(Default)]
struct Reported {
    findings: Vec<Finding>,
    /// Later occurrences' lines, by the index of the first finding.
    repeats: BTreeMap<usize, Vec<usize>>,
    /// The index of each rule's first finding, for those repeats.
    first_of_rule: HashMap<&'static str, usize>,
}

impl RulesPass<'_> {
    /// The findings, each statement checked and then replayed on `catalog`.
    fn run(
        &self,
        parsed: &mut ParsedFile,
        catalog: &mut Catalog,
        mut predicted: Option<&mut Predicted>,
    ) -> Vec<Finding> {
        let mut reported = Reported::default();
        let mut held_locks = HeldLocks::default();
        let mut held_in = None;
        let after_migration = OnceCell::new();
        // A long file's syntax trees are built ahead on another core. Not a history file's: its
        // replay builds each tree and frees it at once, in cache, and was faster that way on a
        // busy machine (see BENCHMARKS.md).
        let mut ahead = sql::ahead::Ahead::new(&parsed.statements);
        for index in 0..parsed.statements.len() {
            ahead.reach(&parsed.statements, index);
            let statement = &parsed.statements[index];
            for (unit, tx, nested) in units(statement, self.prepared.states[index]) {
                if tx.transaction != held_in {
                    held_locks.clear();
                    held_in = tx.transaction;
                }
                let context = StatementContext {
                    text: self.text,
                    statements: &parsed.statements,
                    index,
                    statement: unit,
                    catalog,
                    tx,
                    held_locks: &held_locks,
                    settings: &self.options.rule_settings,
                    traced: predicted.is_some(),
                    after_migration: &after_migration,
                    file: &self.prepared.file,
                    readings: Default::default(),
                };
                if let Some(predicted) = predicted.as_deref_mut() {
                    expect_locks(&mut predicted.expected[index], &context, catalog);
                }
                self.check(&context, &mut reported, predicted.as_deref_mut());
                // What the lock model predicts is held for the rest of a transaction.
                if tx.transaction.is_some() {
                    let locks = context.into_locks();
                    held_locks.take(Holder { index, nested }, &locks, catalog);
                }
                replay(self.text, unit, index, catalog, predicted.as_deref_mut());
            }
            // The rules, the lock model and the catalog are done with it: past the trees built
            // ahead, a rule that looks back parses it again. Those built ahead stay for the
            // built-in drafts and are freed with the file, on a parsing thread.
            if index >= PARSED_AHEAD {
                ahead.release(&mut parsed.statements[index]);
            }
        }
        note_repeats(&mut reported.findings, reported.repeats);
        reported.findings
    }

    /// Runs the rules that look at the statement's kind, and keeps what they report.
    fn check(
        &self,
        context: &StatementContext,
        reported: &mut Reported,
        mut predicted: Option<&mut Predicted>,
    ) {
        let index = context.index;
        let mut diagnostics = Vec::new();
        for &(rule, severity) in self.checked.of(context.statement.class.kind) {
            (rule.check)(context, &mut diagnostics);
            for diagnostic in diagnostics.drain(..) {
                if let Some(predicted) = predicted.as_deref_mut() {
                    predicted.expected[index]
                        .explained
                        .push((rule, diagnostic.table.as_ref().map(|t| t.to_string())));
                }
                let Some(severity) = severity else { continue };
                if !applies(rule, &diagnostic, context.catalog)
                    || self.prepared.suppressions.is_suppressed(rule.id, index)
                {
                    continue;
                }
                let position = self.prepared.lines.position(self.text, diagnostic.offset);
                reported.add(rule, severity, index, diagnostic, position);
            }
        }
    }
}

impl Reported {
    /// A finding, or for a once-per-migration finding after the rule's first, its line noted
    /// with the first.
    fn add(
        &mut self,
        rule: &'static Rule,
        severity: Severity,
        index: usize,
        diagnostic: Diagnostic,
        position: Position,
    ) {
        let first = diagnostic
            .once_per_migration
            .then(|| self.first_of_rule.get(rule.id).copied());
        match first.flatten() {
            Some(first) => self.repeats.entry(first).or_default().push(position.line),
            None => {
                self.first_of_rule
                    .entry(rule.id)
                    .or_insert(self.findings.len());
                self.findings
                    .push(finding(rule, severity, index, diagnostic, position));
            }
        }
    }
}

/// A statement and, for a DO block of plain statements, each statement inside it, with the
/// transaction each runs in (the block's own) and its place in the block.
fn units(
    statement: &sql::Statement,
    tx: TxState,
) -> impl Iterator<Item = (&sql::Statement, TxState, Option<usize>)> {
    let nested_tx = TxState {
        in_transaction: true,
        ..tx
    };
    std::iter::once((statement, tx, None)).chain(
        statement
            .nested
            .iter()
            .enumerate()
            .map(move |(i, nested)| (nested, nested_tx, Some(i))),
    )
}

/// The locks the lock model predicts for a statement, by resolved relation.
fn expect_locks(expected: &mut Expected, context: &StatementContext, catalog: &Catalog) {
    expected.lock_timeout = context.tx.lock_timeout;
    expected.locks.extend(
        context
            .locks()
            .iter()
            .map(|lock| (catalog.resolve(&lock.relation).to_string(), lock.mode)),
    );
}

/// Applies a statement to the schema model (a DO block through the statements inside it).
fn replay(
    text: &str,
    unit: &sql::Statement,
    index: usize,
    catalog: &mut Catalog,
    predicted: Option<&mut Predicted>,
) {
    if !unit.nested.is_empty() {
        return;
    }
    catalog.apply(text, unit);
    if let Some(predicted) = predicted {
        note_recreated(unit, catalog, predicted, index);
    }
}

/// Adds to each first once-per-migration finding the lines of its later occurrences.
fn note_repeats(findings: &mut [Finding], repeats: BTreeMap<usize, Vec<usize>>) {
    for (first, lines) in repeats {
        findings[first].message.push_str(&format!(
            " (the same holds for {} later statement{} of this migration, on line{} {})",
            lines.len(),
            if lines.len() == 1 { "" } else { "s" },
            if lines.len() == 1 { "" } else { "s" },
            list_lines(&lines)
        ));
    }
}

/// Each statement of a migration as the report shows it.
fn reviewed_statements(
    text: &str,
    parsed: &ParsedFile,
    lines: &LineIndex,
) -> Vec<ReviewedStatement> {
    parsed
        .statements
        .iter()
        .enumerate()
        .map(|(index, s)| ReviewedStatement {
            index,
            range: s.range.clone(),
            position: lines.position(text, s.range.start),
            parsed: s.is_parsed(),
            classified: s.is_parsed() || s.class.kind != sql::Kind::Other,
            label: s.label_or("statement").to_owned(),
            trace: None,
            table_sizes: Vec::new(),
        })
        .collect()
}

/// The problems of the suppression comments, as notices.
fn suppression_notices(text: &str, lines: &LineIndex, suppressions: &Suppressions) -> Vec<Notice> {
    suppressions
        .problems
        .iter()
        .map(|(offset, message)| Notice {
            position: lines.position(text, *offset),
            message: message.clone(),
        })
        .collect()
}

/// What the shadow's trace adds to a migration's review.
struct TracedReview<'a> {
    findings: &'a mut Vec<Finding>,
    statements: &'a mut [ReviewedStatement],
    notices: &'a mut Vec<Notice>,
    suppressions: &'a Suppressions,
}

/// Applies the migration on the shadow database and compares its trace with the findings; each
/// statement gets its trace.
fn compare_with_trace(
    shadow: &mut SetShadow,
    traced: Traced,
    keep_baseline: bool,
    predicted: &Predicted,
    review: TracedReview,
    options: &ReviewOptions,
) {
    let TracedReview {
        findings,
        statements,
        notices,
        suppressions,
    } = review;
    let (text, lines) = (traced.text, traced.lines);
    let traces = match shadow.trace(traced, keep_baseline) {
        Ok(Some(traces)) => traces,
        Ok(None) => return,
        Err(notice) => {
            notices.push(notice);
            return;
        }
    };
    notices.extend(shadow.take_notices());
    shadow::compare(
        findings,
        Reviewed {
            text,
            lines,
            statements,
        },
        &traces,
        &predicted.expected,
        |relation, statement| predicted.existed(relation, statement),
        |rule, statement| {
            options
                .severity(rule)
                .filter(|_| !suppressions.is_suppressed(rule.id, statement))
        },
        &shadow.describe(),
    );
    for trace in traces {
        let statement = &mut statements[trace.statement];
        if let (Some(_), Some(stats)) = (&trace.plan, &options.stats) {
            statement.table_sizes = table_sizes(&predicted.expected[trace.statement], stats);
        }
        statement.trace = Some(Box::new(trace));
    }
}

/// With a plan in the trace and `--stats`: the sizes of the tables the statement locks, since the
/// plan itself ran on the shadow's empty tables.
fn table_sizes(expected: &Expected, stats: &Stats) -> Vec<(String, TableSize)> {
    let mut sizes: Vec<(String, TableSize)> = expected
        .locks
        .iter()
        .filter_map(|(table, _)| Some((table.clone(), stats.table(table)?)))
        .collect();
    sizes.sort_by(|a, b| a.0.cmp(&b.0));
    sizes.dedup_by(|a, b| a.0 == b.0);
    sizes
}

/// Size grading, the findings in order of position, and their messages and helps made printable.
fn finish_findings(findings: &mut [Finding], notices: &mut [Notice], options: &ReviewOptions) {
    if let Some(stats) = &options.stats {
        for finding in findings.iter_mut() {
            grade_by_size(finding, stats, options.small_table_rows);
        }
    }
    findings.sort_by_key(|f| (f.offset, f.statement));
    for finding in findings.iter_mut() {
        make_printable(&mut finding.message);
        if let Cow::Owned(escaped) = escape::lines(&finding.help) {
            finding.help = escaped;
        }
    }
    for notice in notices {
        make_printable(&mut notice.message);
    }
}

/// An unparsed statement's finding, written before the trace, points at its trace: where the shadow
/// did not apply the statement after all, it says why instead.
fn say_which_statements_went_untraced(statements: &[ReviewedStatement], findings: &mut [Finding]) {
    for finding in findings
        .iter_mut()
        .filter(|f| f.rule.id == rules::unparsed::RULE.id)
    {
        let trace = statements[finding.statement].trace.as_ref();
        let why = match trace {
            Some(trace) if trace.applied => continue,
            Some(trace) if trace.error.is_some() => {
                "it fails on the shadow database, see apply-failed".to_owned()
            }
            Some(trace) => format!(
                "the shadow database did not apply it: {}",
                trace.not_applied.as_deref().unwrap_or("no trace")
            ),
            None => "the shadow database did not trace this migration".to_owned(),
        };
        rules::unparsed::not_applied(&mut finding.message, &mut finding.help, &why);
    }
}

/// With a shadow of another major version than the target: the migration's trace and the findings
/// it confirms or adds say which version they come from.
fn say_which_version_traced(
    version: &TraceVersion,
    statements: &[ReviewedStatement],
    findings: &mut [Finding],
    notices: &mut Vec<Notice>,
) {
    let Some(first) = statements.iter().find(|s| s.trace.is_some()) else {
        return;
    };
    notices.push(Notice {
        position: first.position,
        message: version.note(),
    });
    for finding in findings
        .iter_mut()
        .filter(|f| f.confirmed_by_shadow.is_some())
    {
        finding
            .message
            .push_str(&format!(" (trace from PostgreSQL {})", version.shadow));
    }
}

/// Records `unit` as the statement that created again a relation that existed before the migration,
/// once the catalog calls it new.
fn note_recreated(
    unit: &sql::Statement,
    catalog: &Catalog,
    predicted: &mut Predicted,
    index: usize,
) {
    let Some(target) = &unit.class.target else {
        return;
    };
    let creates = matches!(
        unit.class.kind,
        sql::Kind::CreateTable | sql::Kind::CreateView | sql::Kind::CreateMaterializedView
    );
    let name = catalog.resolve(target).to_string();
    if creates && catalog.is_new_relation(target) && predicted.existed.contains(&name) {
        predicted.recreated_at.entry(name).or_insert(index);
    }
}

/// Locking, data-loss, compatibility and data-migration findings do not apply to relations created
/// earlier in the same migration.
fn applies(rule: &Rule, diagnostic: &Diagnostic, catalog: &Catalog) -> bool {
    !(rule.category.needs_existing_relation()
        && diagnostic
            .table
            .as_ref()
            .is_some_and(|table| catalog.is_new_relation(table)))
}

/// Size grading (`--stats`): a lock-duration, rewrite or scan finding on a table known to be small
/// drops to `info`, since the lock is held for milliseconds; on a big table the message gains the
/// size, which is what makes the finding urgent. Unknown sizes (absent, or never analysed) change
/// nothing: an unknown table may be huge.
fn grade_by_size(finding: &mut Finding, stats: &Stats, small_table_rows: u64) {
    if !finding.rule.size_graded {
        return;
    }
    let Some(table) = &finding.table else {
        return;
    };
    let Some(size) = stats.table(&table.to_string()) else {
        return;
    };
    let Ok(rows) = u64::try_from(size.rows) else {
        return;
    };
    let described = stats::describe_size(size);
    if rows < small_table_rows {
        finding.severity = Severity::Info;
        finding.message.push_str(&format!(
            " ({table} is small: {described} per --stats, so this is graded info)"
        ));
    } else {
        finding
            .message
            .push_str(&format!(" (on {table}: {described} per --stats)"));
    }
}

/// `3`, `3 and 7`, `3, 7 and 9`.
fn list_lines(lines: &[usize]) -> String {
    let text: Vec<String> = lines.iter().map(usize::to_string).collect();
    match text.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
        _ => text.join(""),
    }
}

fn finding(
    rule: &'static Rule,
    severity: Severity,
    statement: usize,
    diagnostic: Diagnostic,
    position: Position,
) -> Finding {
    Finding {
        rule,
        severity,
        statement,
        offset: diagnostic.offset,
        position,
        message: diagnostic.message,
        help: diagnostic.help,
        table: diagnostic.table,
        confirmed_by_shadow: None,
        fix: diagnostic.fix,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HISTORY: &str = "CREATE TABLE events (id bigint, kind text);
CREATE TABLE tags (id bigint, name text);
CREATE TABLE audit (id bigint);
CREATE TABLE fresh (id bigint);";

    /// `events` is big, `tags` small, `fresh` never analysed, `audit` absent.
    fn stats() -> Stats {
        let size = |rows, total_bytes| TableSize { rows, total_bytes };
        Stats {
            tables: [
                ("public.events", size(48_000_000, 21 * 1024 * 1024 * 1024)),
                ("public.tags", size(1_200, 96 * 1024)),
                ("public.fresh", size(-1, 8192)),
            ]
            .into_iter()
            .map(|(name, size)| (name.to_owned(), size))
            .collect(),
        }
    }

    fn graded(sql: &str) -> Vec<(&'static str, Severity, String)> {
        let options = ReviewOptions {
            stats: Some(stats()),
            ..ReviewOptions::default()
        };
        review_sql(
            "migration.sql",
            &[HISTORY],
            sql,
            migration::Transaction::None,
            &options,
        )
        .findings
        .into_iter()
        .map(|f| (f.rule.id, f.severity, f.message))
        .collect()
    }

    fn only<'a>(
        findings: &'a [(&'static str, Severity, String)],
        rule: &str,
    ) -> &'a (&'static str, Severity, String) {
        let matching: Vec<_> = findings.iter().filter(|f| f.0 == rule).collect();
        assert_eq!(matching.len(), 1, "{findings:#?}");
        matching[0]
    }

    #[test]
    fn small_tables_grade_to_info_and_say_why() {
        let findings = graded("CREATE INDEX tags_name ON tags (name);");
        let (_, severity, message) = only(&findings, "index-not-concurrent");
        assert_eq!(*severity, Severity::Info);
        assert!(
            message.ends_with(
                " (public.tags is small: 1,200 rows, 96 kB per --stats, so this is graded info)"
            ),
            "{message}"
        );
    }

    #[test]
    fn big_tables_keep_their_severity_and_show_the_size() {
        let findings = graded("CREATE INDEX events_kind ON events (kind);");
        let (_, severity, message) = only(&findings, "index-not-concurrent");
        assert_eq!(*severity, Severity::Error);
        assert!(
            message.ends_with(" (on public.events: 48 M rows, 21 GB per --stats)"),
            "{message}"
        );
    }

    #[test]
    fn unknown_sizes_change_nothing() {
        for table in ["audit", "fresh"] {
            let sql = format!("CREATE INDEX {table}_id ON {table} (id);");
            let ungraded = review_sql(
                "migration.sql",
                &[HISTORY],
                &sql,
                migration::Transaction::None,
                &ReviewOptions::default(),
            );
            let expected: Vec<_> = ungraded
                .findings
                .into_iter()
                .map(|f| (f.rule.id, f.severity, f.message))
                .collect();
            assert!(!expected.is_empty(), "{table}");
            assert_eq!(graded(&sql), expected, "{table}");
        }
    }

    #[test]
    fn threshold_comes_from_the_options() {
        let options = ReviewOptions {
            stats: Some(stats()),
            small_table_rows: 1_000,
            ..ReviewOptions::default()
        };
        let review = review_sql(
            "migration.sql",
            &[HISTORY],
            "CREATE INDEX tags_name ON tags (name);",
            migration::Transaction::None,
            &options,
        );
        let finding = &review.findings[0];
        assert_eq!(finding.severity, Severity::Error);
        assert!(finding.message.contains("on public.tags: 1,200 rows"));
    }

    #[test]
    fn failure_data_loss_and_lock_queueing_are_never_graded() {
        let findings = graded(
            "ALTER TABLE tags ADD COLUMN n int NOT NULL;
DROP TABLE tags;",
        );
        for rule in ["add-column-not-null-without-default", "drop-table"] {
            let (_, severity, message) = only(&findings, rule);
            assert_ne!(*severity, Severity::Info, "{rule}");
            assert!(!message.contains("--stats"), "{rule}: {message}");
        }
        let findings = graded("BEGIN; ALTER TABLE tags ALTER COLUMN name SET NOT NULL; COMMIT;");
        let (_, severity, message) = only(&findings, "missing-lock-timeout");
        assert_eq!(*severity, Severity::Warning);
        assert!(!message.contains("--stats"), "{message}");
        assert_eq!(only(&findings, "set-not-null").1, Severity::Info);
    }
}
