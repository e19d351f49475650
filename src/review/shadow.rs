//! The shadow stage of a review. Per directory: the history applied once into a baseline database (or
//! found already applied in the cached image the cluster started from), whose catalog becomes the exact
//! schema model; each reviewed migration applied statement by statement with its trace (to a copy of
//! the baseline when the cluster is to be stored as the history's image, else to the baseline itself),
//! and the trace compared with the static findings.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::confirm::{self, blocks_traffic, explains_rewrite, observed_lock};
use super::{Finding, InputProblem, Notice, ReviewOptions, ReviewedStatement};
use crate::migration::{Migration, MigrationSet, Section};
use crate::pg::locks::LockMode;
use crate::pg::server_wide;
use crate::postgres::db_error;
use crate::rules::{self, Severity};
use crate::schema::{self, Catalog};
use crate::shadow::apply::{self, Script, NEW_SESSION};
use crate::shadow::session::{Baseline, Database, Shadow};
use crate::shadow::trace::{self, StatementTrace};
use crate::sql::{LineIndex, ObjectName, ParsedFile, Position};
use crate::validate;

/// A hash of what decides what applying a history produces: the tool and the options that decide
/// transaction shapes and which files are read, and each migration's file name and contents, in
/// order. (A tool's side files, such as Flyway's `.conf` or Diesel's `metadata.toml`, are not
/// hashed: changing only one of them needs `--no-cache` once.) `None` when nothing is reviewed.
pub fn history_hash(set: &MigrationSet, options: &ReviewOptions) -> Option<String> {
    let first_target = *set.targets.iter().min()?;
    let mut hasher = Sha256::new();
    hasher.update(format!(
        "migagent-history-v1\0{}\0{}\0{}\0",
        set.tool.name(),
        options.discover.plain_per_file_transaction,
        options.max_file_size
    ));
    for migration in &set.migrations[..first_target] {
        let name = migration.path.file_name().unwrap_or_default();
        hasher.update(name.as_encoded_bytes());
        hasher.update([0]);
        match std::fs::read(&migration.path) {
            Ok(bytes) => {
                hasher.update((bytes.len() as u64).to_le_bytes());
                hasher.update(&bytes);
            }
            Err(error) => hasher.update(error.to_string()),
        }
    }
    let digest = hasher.finalize();
    Some(digest[..8].iter().map(|b| format!("{b:02x}")).collect())
}

/// Where one directory's shadow stands.
enum State {
    /// Applying the history into a new baseline database.
    Building(Database),
    /// The history is applied in this template database; nothing reviewed yet.
    Ready(String),
    /// The database the reviewed migrations (and history between them) are applied to.
    Working(Database),
    /// The shadow stopped for this directory, for this reason; the rest is reviewed statically.
    Abandoned(Option<String>),
}

/// The shadow work of one directory of migrations.
pub(super) struct SetShadow<'s> {
    shadow: &'s mut Shadow,
    state: State,
    history_hash: String,
    /// What the trace knows of the working database from the migrations it traced.
    known: trace::Known,
    /// What the reviewed migrations should say about how the shadow applied them.
    notices: Vec<Notice>,
    /// The reviewed migrations' baselines kept for validating their drafts.
    baselines: Baselines,
    /// The size of each baseline kept (by name) when it was copied, for staying under the size cap.
    kept_sizes: HashMap<String, u64>,
    /// The schema and columns read on the working database after the last traced migration, while
    /// nothing else changed it: the next migration's references start from them.
    after: Option<validate::After>,
}

/// Per reviewed migration (by path), the template database holding the schema just before it, on
/// which the validate stage runs its drafts, or why there is none ("not validated: …"); and the
/// migrations whose drafts were validated already, while the replay went on.
#[derive(Default)]
pub(super) struct Baselines {
    kept: HashMap<PathBuf, Result<String, String>>,
    /// What the trace knew of each kept baseline, for tracing drafts on copies of it.
    known: HashMap<PathBuf, trace::Known>,
    /// What each migration with a kept baseline did as the review applied it, for comparing its
    /// drafts with; none when it was not applied as a copy of the baseline would apply it.
    references: HashMap<PathBuf, validate::References>,
    validated: HashSet<PathBuf>,
}

impl Baselines {
    pub fn new() -> Baselines {
        Baselines::default()
    }

    /// The template holding the database just before the migration at `path`, or why there is none;
    /// `None` when none was asked for.
    pub fn get(&self, path: &Path) -> Option<&Result<String, String>> {
        self.kept.get(path)
    }

    /// What the trace knew of the database just before the migration at `path`, when it knew it.
    pub fn known(&self, path: &Path) -> Option<&trace::Known> {
        self.known.get(path)
    }

    /// What the migration at `path` did as the review applied it, taken for validating its drafts.
    pub fn take_references(&mut self, path: &Path) -> Option<validate::References> {
        self.references.remove(path)
    }

    /// Whether the migration's drafts were validated while the replay went on.
    pub fn validated(&self, path: &Path) -> bool {
        self.validated.contains(path)
    }

    /// The templates kept for migrations whose drafts are not validated yet, by migration.
    pub fn templates(&self) -> impl Iterator<Item = (&Path, &str)> {
        self.kept
            .iter()
            .filter_map(|(path, kept)| Some((path.as_path(), kept.as_deref().ok()?)))
    }

    pub fn extend(&mut self, other: Baselines) {
        self.kept.extend(other.kept);
        self.known.extend(other.known);
        self.references.extend(other.references);
        self.validated.extend(other.validated);
    }
}

impl<'s> SetShadow<'s> {
    /// Finds the baseline for the history's hash, or creates an empty one to apply the history to.
    /// Without `follow_schema` the trace reads no statement's schema changes.
    pub fn begin(
        shadow: &'s mut Shadow,
        history_hash: &str,
        follow_schema: bool,
    ) -> Result<SetShadow<'s>, String> {
        let state = match shadow.baseline(history_hash).map_err(|e| e.0)? {
            Baseline::Ready(name) => State::Ready(name),
            Baseline::Build(database) => State::Building(*database),
        };
        Ok(SetShadow {
            shadow,
            state,
            history_hash: history_hash.to_owned(),
            known: trace::Known::new(follow_schema),
            notices: Vec::new(),
            baselines: Baselines::new(),
            kept_sizes: HashMap::new(),
            after: None,
        })
    }

    pub fn describe(&self) -> String {
        self.shadow.describe()
    }

    /// Applies a migration that is history (before or between reviewed ones) without tracing it.
    /// A failure is an input problem naming the file, line and the server's message: findings after
    /// it would rest on a schema production does not have, so the shadow stops for this directory.
    pub fn apply_history(
        &mut self,
        migration: &Migration,
        parsed: &ParsedFile,
    ) -> Result<(), InputProblem> {
        // The history is already in a ready baseline (or the shadow stopped): nothing to apply.
        if matches!(self.state, State::Ready(_) | State::Abandoned(_)) {
            return Ok(());
        }
        let lines = LineIndex::new(&migration.text);
        if let Err((position, reason)) = self.check_server_wide(&migration.text, parsed, &lines) {
            self.abandon(Some(format!(
                "not applied on the shadow database: the history migration {} makes {reason}",
                migration.path.display()
            )));
            return Err(InputProblem {
                path: migration.path.clone(),
                position: Some(position),
                message: format!(
                    "this history migration makes {reason}. The migrations after it were reviewed without the shadow"
                ),
            });
        }
        let (State::Building(database) | State::Working(database)) = &self.state else {
            return Ok(());
        };
        let mut script = Script::new(&migration.text, parsed, &migration.sections, &lines);
        self.shadow.delegate(&mut script, database);
        // Applied without the trace: what it knew of the database is out of date.
        self.known.forget();
        self.after = None;
        let Err(error) = self
            .shadow
            .block_on(apply_in_new_session(&database.client, &script))
        else {
            return Ok(());
        };
        let shadow = self.shadow.describe();
        self.abandon(Some(format!(
            "not applied on the shadow database: the history migration {} fails there",
            migration.path.display()
        )));
        let message = format!(
            "this history migration fails on the shadow database ({shadow}): {}. The migrations after it were reviewed without the shadow; fix it, or review with --shadow off",
            error.server_error()
        );
        Err(InputProblem {
            path: migration.path.clone(),
            position: Some(error.position.unwrap_or(Position {
                line: error.line,
                column: 1,
            })),
            message,
        })
    }

    /// Before the first reviewed migration: picks the database the reviewed migrations are applied to
    /// (a copy of the baseline when the baseline is to be kept, else the baseline itself) and reads the
    /// exact schema model from its catalog. `Ok(None)` when the shadow is not usable for this directory.
    pub fn start_reviewing(&mut self) -> Result<Option<Catalog>, String> {
        let keep = self.shadow.keeps_baselines();
        let work = match std::mem::replace(&mut self.state, State::Abandoned(None)) {
            State::Building(database) if !keep => {
                self.shadow.consume(&database.name);
                database
            }
            State::Building(database) => {
                let baseline = self
                    .shadow
                    .seal_baseline(database, &self.history_hash)
                    .map_err(|e| e.0)?;
                self.shadow
                    .create_database(Some(&baseline))
                    .map_err(|e| e.0)?
            }
            State::Ready(baseline) if !keep => {
                self.shadow.consume(&baseline);
                self.shadow.connect_to(baseline).map_err(|e| e.0)?
            }
            State::Ready(baseline) => self
                .shadow
                .create_database(Some(&baseline))
                .map_err(|e| e.0)?,
            other => {
                self.state = other;
                return Ok(None);
            }
        };
        let catalog = self
            .shadow
            .block_on(schema::introspect(&work.client))
            .map_err(|e| {
                format!(
                    "cannot read the shadow database's catalog: {}",
                    db_error(&e)
                )
            })?;
        self.state = State::Working(work);
        self.known.forget();
        self.after = None;
        Ok(Some(catalog))
    }

    /// Applies a reviewed migration with its trace: one entry per statement. `Ok(None)` without a
    /// working shadow; `Err` with the reason when the migration is not applied. After a migration
    /// that fails there, the later ones are not applied either: they would build on a schema
    /// production never has. With `keep_baseline`, the database as it is before the migration is
    /// kept first, for validating its drafts (see [`SetShadow::take_baselines`]).
    pub fn trace(
        &mut self,
        migration: Traced,
        keep_baseline: bool,
    ) -> Result<Option<Vec<StatementTrace>>, Notice> {
        let Traced {
            path,
            text,
            parsed,
            sections,
            lines,
        } = migration;
        let not_applied = |notice: Notice, baselines: &mut Baselines| {
            if keep_baseline {
                let reason = format!("not validated: {}", notice.message);
                baselines.kept.insert(path.to_owned(), Err(reason));
            }
            Err(notice)
        };
        if let State::Abandoned(Some(reason)) = &self.state {
            let notice = Notice {
                position: Position { line: 1, column: 1 },
                message: reason.clone(),
            };
            return not_applied(notice, &mut self.baselines);
        }
        if let Err((position, reason)) = self.check_server_wide(text, parsed, lines) {
            self.abandon(Some(format!(
                "not applied on the shadow database: {} before it makes {reason}",
                path.display()
            )));
            let notice = Notice {
                position,
                message: format!("not applied on the shadow database: it makes {reason}"),
            };
            return not_applied(notice, &mut self.baselines);
        }
        let mut kept = false;
        if keep_baseline {
            let started = std::time::Instant::now();
            let baseline = self.keep_baseline();
            log_baseline("kept a copy of the database before", path, started);
            if baseline.is_ok() {
                let known = self.known.for_a_copy_without_schema();
                self.baselines.known.insert(path.to_owned(), known);
                kept = true;
            }
            self.baselines.kept.insert(path.to_owned(), baseline);
        }
        let State::Working(work) = &self.state else {
            return Ok(None);
        };
        let mut script = Script::new(text, parsed, sections, lines);
        let delegated = self.shadow.delegate(&mut script, work);
        // The validator applies the original as the applying role alone: a migration that had
        // statements delegated gets its references from a copy of its own.
        let references = kept && delegated.is_empty();
        self.notices
            .extend(delegated.into_iter().map(|(offset, message)| Notice {
                position: lines.position(text, offset),
                message,
            }));
        // Only what was read right after the migration before this one, with nothing between.
        let after = self.after.take();
        let (traces, references) = self.shadow.block_on(async {
            // In the session the copy reset to a new session's state, as on a fresh copy of the
            // baseline.
            let before = match references {
                true => validate::read_before(&work.client, after).await.ok(),
                false => None,
            };
            let traces = trace::apply_traced_in_new_session(
                &work.client,
                &work.monitor,
                &script,
                &mut self.known,
            )
            .await;
            let references = match before {
                Some(before) if traces.iter().all(|t| t.error.is_none()) => {
                    // The schema the trace kept, when the migration's session printed it as a
                    // fresh one would; else read whole in a fresh session's state, as on a copy: a
                    // setting the migration made (`quote_all_identifiers`) must not reach what the
                    // next one starts from.
                    let printing = validate::Printing::of([text]);
                    let (traced, _) = tokio::join!(
                        printing.checked(&work.client, self.known.schema()),
                        work.client.batch_execute(NEW_SESSION)
                    );
                    validate::read_after(&work.client, before, traced)
                        .await
                        .ok()
                }
                _ => None,
            };
            (traces, references)
        });
        if let Some((references, after)) = references {
            self.baselines
                .references
                .insert(path.to_owned(), references);
            self.after = Some(after);
        }
        if let Some(failed) = traces.iter().find(|t| t.error.is_some()) {
            self.abandon(Some(format!(
                "not applied on the shadow database: {}:{} failed there first",
                path.display(),
                failed.line
            )));
        }
        Ok(Some(traces))
    }

    /// Copies the working database, as it is before the next reviewed migration, into a template
    /// for validating that migration's drafts. A copy that fails leaves the review as it was; a
    /// working database that cannot be reached again stops the shadow for this directory.
    fn keep_baseline(&mut self) -> Result<String, String> {
        let work = match std::mem::replace(&mut self.state, State::Abandoned(None)) {
            State::Working(work) => work,
            other => {
                self.state = other;
                return Err(NOT_APPLIED.to_owned());
            }
        };
        let size = match self.room_for_a_copy(&work) {
            Ok(size) => size,
            Err(reason) => {
                self.state = State::Working(work);
                return Err(reason);
            }
        };
        match self.shadow.copy_as_template(work) {
            Ok((copied, work)) => {
                self.state = State::Working(work);
                let copied = copied.map_err(|error| format!("not validated: {error}"))?;
                self.kept_sizes.insert(copied.clone(), size);
                Ok(copied)
            }
            Err(error) => {
                self.known.forget();
                let reason = format!(
                    "not applied on the shadow database: it could not be reached again after copying it: {error}"
                );
                self.state = State::Abandoned(Some(reason.clone()));
                Err(format!("not validated: {reason}"))
            }
        }
    }

    /// Drops the baseline kept for a reviewed migration that turned out to get no drafts: a template
    /// per reviewed migration would otherwise stay until the end of the run.
    pub fn release_baseline(&mut self, path: &Path) {
        self.drop_baseline(path, "dropped the unneeded copy of the database before");
    }

    /// Drops the baselines of the migrations at `paths`, whose drafts are validated now.
    pub fn validated(&mut self, paths: Vec<PathBuf>) {
        for path in paths {
            self.drop_baseline(
                &path,
                "dropped the copy of the database, its drafts validated, before",
            );
            self.baselines.validated.insert(path);
        }
    }

    /// Forgets the baseline kept for the migration at `path`, and drops its template if there is one.
    fn drop_baseline(&mut self, path: &Path, what: &str) {
        self.baselines.known.remove(path);
        self.baselines.references.remove(path);
        let Some(Ok(baseline)) = self.baselines.kept.remove(path) else {
            return;
        };
        let started = std::time::Instant::now();
        self.shadow.drop_template(&baseline);
        self.kept_sizes.remove(&baseline);
        log_baseline(what, path, started);
    }

    /// The session, for validating drafts on the baselines kept so far.
    pub fn shadow(&self) -> &Shadow {
        self.shadow
    }

    /// What the migration at `path` did as the review applied it, taken for validating its drafts.
    pub fn take_references(&mut self, path: &Path) -> Option<validate::References> {
        self.baselines.take_references(path)
    }

    /// The baselines kept so far.
    pub fn baselines(&self) -> &Baselines {
        &self.baselines
    }

    /// Whether one more copy of `work` for validating drafts leaves the shadow under its size cap
    /// (`--shadow-max-size`) with the copies kept so far, `work` itself and the copies validations
    /// make at once (`--shadow-concurrency`): `work`'s size (0 when unknown); else why the migration's
    /// drafts are not validated. Past the cap the size watchdog would end the shadow's sessions,
    /// failing migrations that are fine.
    fn room_for_a_copy(&self, work: &Database) -> Result<u64, String> {
        let size = self.shadow.block_on(work.client.query_one(
            "SELECT pg_catalog.pg_database_size(pg_catalog.current_database())",
            &[],
        ));
        let size = match size {
            Ok(row) => u64::try_from(row.get::<_, i64>(0)).unwrap_or(0),
            // The copy itself says what is wrong with the database, if anything.
            Err(_) => return Ok(0),
        };
        let kept: u64 = self.kept_sizes.values().sum();
        // `work` and its copy, the copies validations make at once, and the history's own baseline
        // when it stays as the cluster's image.
        let copies =
            2 + self.shadow.concurrency() as u64 + u64::from(self.shadow.keeps_baselines());
        let cap = self.shadow.max_size();
        if kept + copies * size <= cap {
            return Ok(size);
        }
        Err(format!(
            "not validated: one more copy of the shadow database ({} MB) for running this migration's drafts on would take the shadow past --shadow-max-size ({} MB) with the {} MB of the copies kept for other migrations' drafts and those validations make at once; raise --shadow-max-size to validate its drafts",
            size >> 20,
            cap >> 20,
            kept >> 20
        ))
    }

    /// The baselines kept so far, by reviewed migration.
    pub fn take_baselines(&mut self) -> Baselines {
        std::mem::take(&mut self.baselines)
    }

    /// The notices of the last traced migration (statements the shadow applied sanitized).
    pub fn take_notices(&mut self) -> Vec<Notice> {
        std::mem::take(&mut self.notices)
    }

    /// A migration that acts beyond its database: not applied on a user's server at all (`Err` with
    /// where and why); on migagent's own cluster, once the baseline is sealed, it keeps the cluster
    /// from being stored as the history's image.
    fn check_server_wide(
        &mut self,
        text: &str,
        parsed: &ParsedFile,
        lines: &LineIndex,
    ) -> Result<(), (Position, String)> {
        let Some((position, statement)) = first_server_wide(text, parsed, lines) else {
            return Ok(());
        };
        if self.shadow.is_users_server() {
            return Err((position, format!(
                "a change beyond its own database ({statement}), which migagent does not run on a server given by --shadow URL: the server is yours, and only the databases migagent creates there are its own. Review it with --shadow auto (migagent's own throwaway server)"
            )));
        }
        Ok(())
    }

    /// Stops using the shadow for this directory; with a reason, later reviewed migrations say why
    /// they were not applied.
    pub fn abandon(&mut self, reason: Option<String>) {
        self.after = None;
        if let State::Building(database) | State::Working(database) =
            std::mem::replace(&mut self.state, State::Abandoned(reason))
        {
            self.shadow.discard(database);
        }
    }
}

/// With `MIGAGENT_DEBUG=baselines`: what was done to a baseline, and how long it took, on stderr.
fn log_baseline(what: &str, path: &Path, started: std::time::Instant) {
    if super::debugging("baselines") {
        crate::escape::eprint(&format!(
            "migagent debug: {what} {} in {:.1} ms",
            crate::escape::path(path),
            started.elapsed().as_secs_f64() * 1000.0
        ));
    }
}

/// Why a reviewed migration's drafts have no baseline when the shadow did not apply it.
pub(super) const NOT_APPLIED: &str =
    "not validated: the shadow database did not apply this migration (its notices say why), so there is no copy of the database before it to run the drafts on";

/// Applies a history migration in a fresh session state.
async fn apply_in_new_session(
    client: &tokio_postgres::Client,
    script: &Script<'_>,
) -> Result<(), apply::ApplyError> {
    let _ = client.batch_execute(NEW_SESSION).await;
    apply::apply(client, script).await.map(|_| ())
}

/// What the static pass knew about one statement, for comparing with its trace.
#[derive(Debug, Default, Clone)]
pub(super) struct Expected {
    /// The strongest lock the static lock model predicts per relation (`public.users`).
    pub locks: Vec<(String, LockMode)>,
    /// Findings (reported or suppressed) by rule and table: each explains what its rule claims.
    pub explained: Vec<(&'static rules::Rule, Option<String>)>,
    /// `lock_timeout` is set when it runs: a lock it waits for is waited for at most that long.
    pub lock_timeout: bool,
}

impl Expected {
    fn predicted_lock(&self, relation: &str) -> Option<LockMode> {
        self.locks
            .iter()
            .filter(|(name, _)| name == relation)
            .map(|(_, mode)| *mode)
            .max()
    }
}

/// A reviewed migration to apply with its trace.
#[derive(Clone, Copy)]
pub(super) struct Traced<'a> {
    pub path: &'a Path,
    pub text: &'a str,
    pub parsed: &'a ParsedFile,
    pub sections: &'a [Section],
    pub lines: &'a LineIndex,
}

/// The migration a trace is compared with: its text and statements.
#[derive(Clone, Copy)]
pub(super) struct Reviewed<'a> {
    pub text: &'a str,
    pub lines: &'a LineIndex,
    pub statements: &'a [ReviewedStatement],
}

/// Adds what the trace says to the review of one migration: `confirmed_by_shadow` on the static
/// findings, and `apply-failed`, `observed-rewrite` and `observed-blocking-lock` findings for what the
/// trace saw that no rule predicted. `existed(relation, statement)` tells whether the relation a
/// statement touches existed before the migration (and was not dropped and re-created by it before
/// that statement): what happens to a table the migration itself created blocks nobody.
pub(super) fn compare(
    findings: &mut Vec<Finding>,
    migration: Reviewed,
    traces: &[StatementTrace],
    expected: &[Expected],
    existed: impl Fn(&str, usize) -> bool,
    reported: impl Fn(&'static rules::Rule, usize) -> Option<Severity>,
    shadow: &str,
) {
    confirm_findings(findings, traces, expected);
    let mut observed = Vec::new();
    for trace in traces {
        let seen = Seen {
            trace,
            expected: &expected[trace.statement],
            label: migration.statements[trace.statement].label.as_str(),
            existed: &existed,
        };
        observed.extend(seen.unexplained_failure(shadow));
        observed.extend(seen.unexplained_rewrites());
        observed.extend(seen.unpredicted_locks());
    }
    for observed in observed {
        if let Some(finding) = observed.finding(migration, expected, &reported) {
            findings.push(finding);
        }
    }
}

/// Sets `confirmed_by_shadow` on each static finding whose statement the trace saw.
fn confirm_findings(findings: &mut [Finding], traces: &[StatementTrace], expected: &[Expected]) {
    for finding in findings.iter_mut() {
        let Some(trace) = traces.iter().find(|t| t.statement == finding.statement) else {
            continue;
        };
        let table = finding.table.as_ref().map(ToString::to_string);
        let table = table.as_deref();
        let predicted = table.and_then(|t| expected[finding.statement].predicted_lock(t));
        finding.confirmed_by_shadow = confirm::confirm(finding.rule, table, predicted, trace);
    }
}

/// What the trace saw of a statement that no rule predicted, before its severity is settled.
struct Observed {
    rule: &'static rules::Rule,
    statement: usize,
    message: String,
    help: String,
    table: Option<ObjectName>,
    /// The server's error cursor, when it gave one.
    at: Option<Position>,
}

impl Observed {
    /// The finding, at the severity the review reports the rule at (`None`: turned off).
    fn finding(
        self,
        migration: Reviewed,
        expected: &[Expected],
        reported: impl Fn(&'static rules::Rule, usize) -> Option<Severity>,
    ) -> Option<Finding> {
        let mut severity = reported(self.rule, self.statement)?;
        // A bounded wait is what `missing-lock-timeout` asks for: what remains is the hold itself.
        if self.rule.id == rules::shadow::OBSERVED_BLOCKING_LOCK.id
            && expected[self.statement].lock_timeout
        {
            severity = severity.min(Severity::Info);
        }
        let reviewed = &migration.statements[self.statement];
        let (offset, position) = match self.at {
            Some(position) => (migration.lines.offset(migration.text, position), position),
            None => (reviewed.range.start, reviewed.position),
        };
        Some(Finding {
            rule: self.rule,
            severity,
            statement: self.statement,
            offset,
            position,
            message: self.message,
            help: self.help,
            table: self.table,
            confirmed_by_shadow: Some(true),
            fix: None,
        })
    }
}

/// A traced statement with what the rules expected of it; `existed` as [`compare`] takes it.
#[derive(Clone, Copy)]
struct Seen<'a> {
    trace: &'a StatementTrace,
    expected: &'a Expected,
    label: &'a str,
    existed: &'a dyn Fn(&str, usize) -> bool,
}

impl Seen<'_> {
    /// `apply-failed` for a statement that failed, unless a rule predicted the failure (CONCURRENTLY in
    /// a transaction) and already reports it.
    fn unexplained_failure(&self, shadow: &str) -> Option<Observed> {
        let label = self.label;
        let error = self.trace.error.as_ref()?;
        if self
            .expected
            .explained
            .iter()
            .any(|(rule, _)| confirm::claims_failure(rule))
        {
            return None;
        }
        let message = format!(
            "{label} fails on the shadow database ({shadow}): {}: it fails the same way in production, after the statements before it already ran",
            error.server_error()
        );
        let mut help = error
            .hint
            .clone()
            .map(|h| format!("{h}; "))
            .unwrap_or_default();
        help.push_str("fix the statement; the statements after it were not applied on the shadow, so they have no trace");
        Some(Observed {
            rule: rules::shadow::APPLY_FAILED,
            statement: self.trace.statement,
            message,
            help,
            table: None,
            at: error.position,
        })
    }

    /// `observed-rewrite` for each table that existed before and was rewritten without a rule
    /// explaining it.
    fn unexplained_rewrites(&self) -> Vec<Observed> {
        let label = self.label;
        let mut observed = Vec::new();
        for rewritten in self
            .trace
            .rewritten
            .iter()
            .filter(|t| (self.existed)(&t.relation, self.trace.statement))
        {
            let table = &rewritten.relation;
            // A finding without a table (VACUUM FULL of every table) or about TRUNCATE (which
            // cascades) explains every rewrite of its statement.
            let explained = self.expected.explained.iter().any(|(rule, t)| {
                explains_rewrite(rule)
                    && (t.is_none() || t.as_deref() == Some(table) || rule.id == "truncate-table")
            });
            if explained {
                continue;
            }
            let lock = observed_lock(self.trace, table).unwrap_or(LockMode::AccessExclusive);
            observed.push(Observed {
                rule: rules::shadow::OBSERVED_REWRITE,
                statement: self.trace.statement,
                message: format!(
                    "{label} rewrote {table} on the shadow database (new storage, every index rebuilt) under {lock}, and no rule predicted it from the SQL: on a big table {} for the whole copy",
                    lock_effect(lock)
                ),
                help: "find what rewrites it (a column type change, a volatile default, a function, trigger or DO block doing one of those) and use the alternative that does not rewrite; see `migagent rules observed-rewrite`".to_owned(),
                table: Some(rewritten.object_name()),
                at: None,
            });
        }
        observed
    }

    /// `observed-blocking-lock` for each lock on a relation that existed before, blocking traffic and
    /// stronger than the lock model predicted.
    fn unpredicted_locks(&self) -> Vec<Observed> {
        let label = self.label;
        let mut observed = Vec::new();
        for (lock, mode) in self.trace.strongest_locks() {
            let relation = lock.relation.as_str();
            if !blocks_traffic(mode) || !(self.existed)(relation, self.trace.statement) {
                continue;
            }
            let predicted = self.expected.predicted_lock(relation);
            if predicted.is_some_and(|p| p >= mode) {
                continue;
            }
            let model = match predicted {
                Some(p) => {
                    format!("stronger than the {p} migagent's lock model predicts from the SQL")
                }
                None => "a lock migagent's lock model does not predict from the SQL".to_owned(),
            };
            let waiting = if self.expected.lock_timeout {
                "; lock_timeout is set, so it waits for the lock at most that long and then fails (retry the migration) instead of queueing traffic indefinitely"
            } else {
                ", and queues everything behind it while it waits"
            };
            let help = if self.expected.lock_timeout {
                "find what takes the lock (a trigger, a function, a foreign key or a DO block) and keep it short; see `migagent rules observed-blocking-lock`"
            } else {
                "set `lock_timeout` before it, and find what takes the lock (a trigger, a function, a foreign key or a DO block); see `migagent rules observed-blocking-lock`"
            };
            observed.push(Observed {
            rule: rules::shadow::OBSERVED_BLOCKING_LOCK,
            statement: self.trace.statement,
            message: format!(
                "{label} took {mode} on {relation} on the shadow database, {model}: it {} while held{waiting}",
                mode.blocks()
            ),
            help: help.to_owned(),
            table: Some(lock.relation_name().object_name()),
            at: None,
        });
        }
        observed
    }
}

/// What a lock does to other sessions, as a clause: "reads and writes on it wait".
fn lock_effect(mode: LockMode) -> &'static str {
    if mode == LockMode::AccessExclusive {
        "reads and writes wait"
    } else {
        "writes wait"
    }
}

/// The first statement of a migration that acts beyond its database (see [`server_wide`]): where,
/// and what as "line 3, CREATE ROLE: roles and role memberships are shared by every database on the
/// server".
fn first_server_wide(
    text: &str,
    parsed: &ParsedFile,
    lines: &LineIndex,
) -> Option<(Position, String)> {
    parsed.statements.iter().find_map(|statement| {
        let found = server_wide::find(text, statement)?;
        let position = lines.position(text, found.offset);
        let what = format!(
            "line {}, {}: {}",
            position.line,
            found.what,
            found.reach.why()
        );
        Some((position, what))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shadow::trace::{LockTrace, RelationName, ScanTrace};

    /// `schema.name` (no dots in these names).
    fn name(relation: &str) -> RelationName {
        let (schema, name) = relation.split_once('.').unwrap_or(("public", relation));
        RelationName::new(schema, name)
    }

    fn lock(relation: &str, mode: &str) -> LockTrace {
        LockTrace::new(&name(relation), mode)
    }

    /// One reviewed statement and its trace: `ALTER TABLE t …` on line 1.
    fn statements() -> Vec<ReviewedStatement> {
        vec![ReviewedStatement {
            index: 0,
            range: 0..10,
            position: Position { line: 1, column: 1 },
            parsed: true,
            classified: true,
            label: "ALTER TABLE".into(),
            trace: None,
            table_sizes: Vec::new(),
        }]
    }

    /// The findings `compare` adds for one traced statement (`ALTER TABLE t`); `public.fresh` is a
    /// table the migration created.
    fn compare_one(trace: StatementTrace, expected: Expected) -> Vec<Finding> {
        let mut findings = Vec::new();
        compare(
            &mut findings,
            Reviewed {
                text: "ALTER TABLE t",
                lines: &LineIndex::new("ALTER TABLE t"),
                statements: &statements(),
            },
            &[trace],
            &[expected],
            |relation, _| relation != "public.fresh",
            |rule, _| Some(rule.default_severity),
            "PostgreSQL 15.8",
        );
        findings
    }

    fn compared(trace: StatementTrace, expected: Expected) -> Vec<(&'static str, String)> {
        compare_one(trace, expected)
            .into_iter()
            .map(|f| {
                (
                    f.rule.id,
                    f.table.map(|t| t.to_string()).unwrap_or_default(),
                )
            })
            .collect()
    }

    #[test]
    fn unexplained_rewrites_and_stronger_locks_are_reported() {
        let trace = StatementTrace {
            applied: true,
            locks: vec![lock("public.t", "AccessExclusiveLock")],
            rewrites: vec!["public.t".into()],
            rewritten: vec![name("public.t")],
            ..StatementTrace::default()
        };
        let expected = Expected {
            locks: vec![("public.t".into(), LockMode::ShareUpdateExclusive)],
            ..Expected::default()
        };
        assert_eq!(
            compared(trace.clone(), expected.clone()),
            [
                ("observed-rewrite", "public.t".to_owned()),
                ("observed-blocking-lock", "public.t".to_owned())
            ]
        );
        let unpredicted = compare_one(trace.clone(), Expected::default());
        assert!(
            unpredicted[1].message.contains(
                "took ACCESS EXCLUSIVE on public.t on the shadow database, a lock migagent's lock model does not predict from the SQL: it blocks reads and writes while held, and queues"
            ),
            "{}",
            unpredicted[1].message
        );
        // With lock_timeout set the wait is bounded: what remains is the hold, graded info.
        let bounded = compare_one(
            trace,
            Expected {
                lock_timeout: true,
                ..expected
            },
        );
        assert_eq!(bounded[1].rule.id, "observed-blocking-lock");
        assert_eq!(bounded[1].severity, Severity::Info);
        assert!(
            bounded[1]
                .message
                .contains("lock_timeout is set, so it waits for the lock at most that long"),
            "{}",
            bounded[1].message
        );
    }

    #[test]
    fn predicted_locks_explained_rewrites_and_new_tables_are_not() {
        let rewrite_rule = rules::find("column-type-change-rewrites").unwrap();
        let trace = StatementTrace {
            applied: true,
            locks: vec![
                lock("public.t", "AccessExclusiveLock"),
                lock("public.fresh", "AccessExclusiveLock"),
                lock("public.other", "RowExclusiveLock"),
            ],
            rewrites: vec!["public.t".into(), "public.fresh".into()],
            rewritten: vec![name("public.t"), name("public.fresh")],
            ..StatementTrace::default()
        };
        let expected = Expected {
            locks: vec![("public.t".into(), LockMode::AccessExclusive)],
            explained: vec![(rewrite_rule, Some("public.t".into()))],
            ..Expected::default()
        };
        assert_eq!(compared(trace, expected), []);
    }

    #[test]
    fn failures_are_apply_failed_findings() {
        let error = crate::shadow::apply::ApplyError {
            statement: 0,
            line: 1,
            sqlstate: "42701".into(),
            message: "column \"total\" of relation \"orders\" already exists".into(),
            detail: None,
            hint: None,
            position: Some(Position { line: 1, column: 7 }),
        };
        let trace = StatementTrace {
            applied: false,
            error: Some(error),
            ..StatementTrace::default()
        };
        let findings = compare_one(trace, Expected::default());
        assert_eq!(findings.len(), 1);
        assert_eq!(findings[0].rule.id, "apply-failed");
        // At the server's error cursor.
        assert_eq!(findings[0].offset, 6);
        assert_eq!(findings[0].position, Position { line: 1, column: 7 });
        assert!(
            findings[0].message.starts_with(
                "ALTER TABLE fails on the shadow database (PostgreSQL 15.8): ERROR 42701: column"
            ),
            "{}",
            findings[0].message
        );
    }

    #[test]
    fn findings_are_confirmed_or_contradicted_by_what_the_trace_claims_to_see() {
        let rule = |id| rules::find(id).unwrap();
        let trace = StatementTrace {
            applied: true,
            locks: vec![lock("public.t", "ShareLock")],
            scans: vec![ScanTrace::new(&name("public.t"), 1)],
            ..StatementTrace::default()
        };
        let t = Some("public.t");
        let share = Some(LockMode::Share);
        let exclusive = Some(LockMode::AccessExclusive);
        assert_eq!(
            confirm::confirm(rule("index-not-concurrent"), t, share, &trace),
            Some(true)
        );
        assert_eq!(
            confirm::confirm(rule("set-not-null"), t, exclusive, &trace),
            Some(true)
        );
        assert_eq!(
            confirm::confirm(rule("drop-index-not-concurrent"), t, exclusive, &trace),
            Some(false)
        );
        assert_eq!(
            confirm::confirm(rule("column-type-change-rewrites"), t, exclusive, &trace),
            Some(false)
        );
        assert_eq!(
            confirm::confirm(rule("prefer-jsonb"), t, None, &trace),
            None
        );
        let not_run = StatementTrace {
            not_applied: Some("the statement on line 1 failed first".into()),
            ..StatementTrace::default()
        };
        assert_eq!(
            confirm::confirm(rule("set-not-null"), t, exclusive, &not_run),
            None
        );
    }
}
