//! The traced apply: the reviewed migration applied to the shadow database in its tool's
//! transaction shape, with what PostgreSQL really did for each statement.
//!
//! Per statement: the relation locks it took (`pg_locks` of this backend), the tables and indexes
//! it rewrote (`relfilenode` changed), the tables it scanned sequentially
//! (`pg_stat_xact_user_tables.seq_scan` delta: validation scans), the plan of DML (backfills), its
//! duration and its error. Relations are named from the catalog as it was before the statement, so
//! dropped and renamed relations keep the names the migration's author knows; relations the
//! statement created are named from the catalog after it.
//!
//! Locks are read in the transaction that holds them. Inside a transaction block a statement is
//! charged only with the locks it added. A statement that would autocommit runs as
//! `BEGIN; statement; <observe>; COMMIT`, which is equivalent for every statement allowed in a
//! transaction block. Those that are not (CONCURRENTLY, VACUUM, or the server answers 25001) run
//! as written, and a second session, the monitor, samples their locks while they run: it first
//! opens a transaction with a snapshot, which CONCURRENTLY statements wait for as they wait for
//! every older transaction in production, records what the statement holds and waits on, and then
//! lets it finish. The apply stops at the first failing statement, as migration tools do.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use serde::{Serialize, Serializer};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Row, SimpleQueryMessage, SimpleQueryRow, Statement};

use super::apply::{roll_back, ApplyError, Script, ScriptStatement, SectionEnd, NEW_SESSION};
use super::live_schema::{CatalogWrites, LiveSchema, Reach, PRINTED_CATALOGS, SNAPSHOT_CATALOGS};
use super::snapshot::{SchemaChange, SchemaSnapshot};
use crate::migration::DETAILED_REVIEW_UP_TO;
use crate::pg::locks::LockMode;
use crate::pg::subtransactions::{routine_can_roll_back, LANGUAGES_WITHOUT_SUBTRANSACTIONS};
use crate::sql::{Kind, ObjectName};

/// SQLSTATEs of statements that refuse to run inside a transaction block (`active_sql_transaction`,
/// e.g. ALTER SYSTEM, CREATE DATABASE) or that end transactions themselves
/// (`invalid_transaction_termination`, a procedure that commits): run as written instead.
const NOT_IN_TRANSACTION_BLOCK: [&str; 2] = ["25001", "2D000"];

/// What the session holds in its transaction: its granted relation locks. System catalogs (OID <
/// 16384) are left out: they are not the migration's, and the trace's own queries lock only them.
const LOCKS: &str = "\
SELECT l.relation, l.mode FROM pg_catalog.pg_locks l \
 WHERE l.pid = pg_catalog.pg_backend_pid() AND l.locktype = 'relation' AND l.granted \
   AND l.relation >= 16384";

/// What an observation reads beyond the relations locked, given `$1` (read every table's scan
/// count), `$2` (the rows of `pg_proc` the transaction had written at the observation before) and
/// `$3` (read the routines that can roll back a subtransaction): every scan count when asked, and
/// both when the transaction wrote `pg_proc` since (a statement that created a routine may have run
/// it, and the trace's flag of such routines is out of date).
const READS: &str = "\
SELECT $1::pg_catalog.bool OR w.proc <> $2::pg_catalog.int8, $3::pg_catalog.bool OR w.proc <> $2 \
  FROM (SELECT pg_catalog.pg_stat_get_xact_tuples_inserted(p.oid) \
               + pg_catalog.pg_stat_get_xact_tuples_updated(p.oid) \
               + pg_catalog.pg_stat_get_xact_tuples_deleted(p.oid) \
          FROM (SELECT 'pg_catalog.pg_proc'::pg_catalog.regclass::pg_catalog.oid) AS p(oid)) AS w(proc)";

/// The sequential scans of tables (`pg_stat_xact_user_tables.seq_scan`, read from the function
/// behind it: the view computes a dozen counters per relation): of every table when [`READS`] says
/// so, else of the tables locked (see [`Counted`] for why that is enough).
const SCANS: &str = "\
SELECT 'scan', c.oid::text, pg_catalog.pg_stat_get_xact_numscans(c.oid)::text, NULL, NULL, NULL \
  FROM pg_catalog.pg_class c \
 WHERE (SELECT every_scan FROM reads) AND c.oid >= 16384 AND c.relkind IN ('r', 'm') \
   AND pg_catalog.pg_stat_get_xact_numscans(c.oid) > 0 \
UNION ALL \
SELECT 'scan', c.oid::text, pg_catalog.pg_stat_get_xact_numscans(c.oid)::text, NULL, NULL, NULL \
  FROM (SELECT DISTINCT relation FROM locks) l JOIN pg_catalog.pg_class c ON c.oid = l.relation \
 WHERE NOT (SELECT every_scan FROM reads) AND c.relkind IN ('r', 'm') \
   AND pg_catalog.pg_stat_get_xact_numscans(c.oid) > 0";

/// The routines that may roll back a subtransaction, when [`READS`] says so (see
/// [`routine_can_roll_back`]): a marker row, then the language and source of every routine in a
/// language that can, PL/pgSQL ones only when their source mentions an exception at all.
fn routines_sql() -> String {
    let without: Vec<String> = LANGUAGES_WITHOUT_SUBTRANSACTIONS
        .iter()
        .map(|language| format!("'{language}'"))
        .collect();
    format!(
        "SELECT 'routines', '0', NULL, NULL, NULL, NULL FROM reads WHERE routines \
         UNION ALL \
         SELECT 'routine', '0', l.lanname::text, p.prosrc, NULL, NULL \
           FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_language l ON l.oid = p.prolang \
          WHERE (SELECT routines FROM reads) AND l.lanname NOT IN ({}) \
            AND (l.lanname <> 'plpgsql' OR p.prosrc ~* 'exception')",
        without.join(", ")
    )
}

/// Makes the backend report its pending statistics when it next goes idle outside a transaction
/// block, which it does right after this query when sent there: the scan counts
/// `pg_stat_get_xact_numscans` reads start from zero again (PostgreSQL 15 and later).
const FLUSH: &str = "SELECT pg_catalog.pg_stat_force_next_flush()";

/// Whether the server counts catalog writes, as the observation's `counting` row reads it.
const COUNTING: &str = "SELECT pg_catalog.current_setting('track_counts')";

/// Whether the session may run [`FLUSH`]: it exists (PostgreSQL 15 and later) and is granted.
const FLUSHES: &str = "\
SELECT pg_catalog.has_function_privilege(\
         pg_catalog.to_regprocedure('pg_catalog.pg_stat_force_next_flush()'), 'EXECUTE')";

/// The catalogs whose writes an observation counts: each catalog a schema snapshot shows or prints
/// names from (see [`Reach`]) when the trace follows the schema, else only `pg_proc`, which
/// [`READS`] still needs. Three statistics functions per catalog took a seventh of an
/// observation's execution (0.26 → 0.22 ms on documenso), for a reach nothing reads when no schema
/// is followed.
fn written_catalogs(follows_schema: bool) -> Vec<&'static str> {
    match follows_schema {
        true => SNAPSHOT_CATALOGS
            .iter()
            .chain(&PRINTED_CATALOGS)
            .copied()
            .collect(),
        false => vec!["pg_proc"],
    }
}

/// The rows the session's transaction inserted, updated and deleted in each of `catalogs`, and
/// whether the server counts them. The catalogs are named by `regclass` literals, which PostgreSQL
/// resolves once, when the observation is prepared: looked up by name at each run (`to_regclass`),
/// they took half of an observation's execution; a scan of `pg_class`, which no vacuum keeps short
/// on the shadow, would cost more.
fn catalog_writes(catalogs: &[&str]) -> String {
    let catalogs: Vec<String> = catalogs
        .iter()
        .map(|name| format!("('{name}', 'pg_catalog.{name}'::pg_catalog.regclass::pg_catalog.oid)"))
        .collect();
    format!(
        "SELECT 'writes', c.oid::text, pg_catalog.pg_stat_get_xact_tuples_inserted(c.oid)::text, \
                pg_catalog.pg_stat_get_xact_tuples_updated(c.oid)::text, \
                pg_catalog.pg_stat_get_xact_tuples_deleted(c.oid)::text, c.name \
           FROM (VALUES {}) AS c(name, oid) \
         UNION ALL \
         SELECT 'counting', '0', pg_catalog.current_setting('track_counts'), NULL, NULL, NULL",
        catalogs.join(", ")
    )
}

/// The relations `from` names (`c`, of `pg_class`) that `condition` keeps: OID, schema, name,
/// relkind, relfilenode. TOAST relations are left out: they are storage details of their tables.
fn relations_sql(from: &str, condition: &str) -> String {
    format!(
        "SELECT 'relation', c.oid::text, n.nspname::text, c.relname::text, c.relkind::text, \
                c.relfilenode::text \
           FROM {from} JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
          WHERE {condition}n.nspname <> 'pg_toast'"
    )
}

/// One observation of the session: what its transaction holds and has counted (see [`Held`]), and
/// the relations it holds locks on (every user relation when `whole`), one row each, tagged by
/// its first column. Prepared once per connection (see [`Observations`]): as a simple query its
/// parts were parsed and planned again around every statement. Its plan is made once, when the
/// database may still be empty: the relations locked (user relations only) drive their lookup
/// by OID, with no other condition on it that the plan could scan the index by instead, once
/// there are many. What [`READS`] decides from the parameters gates the parts that read every table
/// or routine: the plan runs them only when it says so. Catalog writes are counted as
/// [`written_catalogs`] says for `follows_schema`.
fn observation_sql(whole: bool, follows_schema: bool) -> String {
    let relations = match whole {
        true => relations_sql("pg_catalog.pg_class c", "c.oid >= 16384 AND "),
        false => relations_sql(
            "(SELECT DISTINCT relation FROM locks) l JOIN pg_catalog.pg_class c ON c.oid = l.relation",
            "",
        ),
    };
    format!(
        "WITH locks AS MATERIALIZED ({LOCKS}), \
              reads(every_scan, routines) AS MATERIALIZED ({READS}) \
         SELECT 'lock', relation::text, mode, NULL, NULL, NULL FROM locks \
         UNION ALL {SCANS} \
         UNION ALL {} \
         UNION ALL {} \
         UNION ALL {relations}",
        routines_sql(),
        catalog_writes(&written_catalogs(follows_schema))
    )
}

/// The savepoint an observation inside a transaction block runs in: a migration may deallocate the
/// session's prepared statements (`DEALLOCATE ALL`, also from a function), and the observation
/// failing then must not abort the migration's transaction.
const OBSERVE_SAVEPOINT: &str = "migagent_observe";

/// Savepoint that keeps a failing EXPLAIN from aborting the migration's transaction.
const EXPLAIN_SAVEPOINT: &str = "migagent_explain";

/// Savepoint that keeps the monitor's snapshot when it cannot read the statement's target.
const HOLD_SAVEPOINT: &str = "migagent_hold";

/// The monitor's first pause between samples; it doubles up to [`SAMPLE_INTERVAL_MAX`].
const SAMPLE_INTERVAL_MIN: Duration = Duration::from_millis(2);
const SAMPLE_INTERVAL_MAX: Duration = Duration::from_millis(50);

/// How long the monitor holds its snapshot when the statement does not wait for it: the wait is
/// only there to make the statement observable, never to keep it from finishing.
const HOLD_LIMIT: Duration = Duration::from_secs(2);

/// A user relation's name: its schema and its own name as the catalog holds them (unquoted), and
/// both joined by a dot for display, as the contract spells it (`public.User`). The parts say what
/// the display cannot when a name holds a dot.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct RelationName {
    pub relation: String,
    pub schema: String,
    pub name: String,
}

impl RelationName {
    pub fn new(schema: &str, name: &str) -> RelationName {
        RelationName {
            relation: format!("{schema}.{name}"),
            schema: schema.to_owned(),
            name: name.to_owned(),
        }
    }

    /// The name as the rules and the schema model hold it.
    pub fn object_name(&self) -> ObjectName {
        ObjectName::new(Some(&self.schema), &self.name)
    }
}

/// A relation lock, named as the contract spells it (`public.users`, `AccessExclusiveLock`), with
/// the name's parts (see [`RelationName`]).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct LockTrace {
    pub relation: String,
    pub schema: String,
    pub name: String,
    pub mode: String,
}

impl LockTrace {
    pub fn new(relation: &RelationName, mode: &str) -> LockTrace {
        LockTrace {
            relation: relation.relation.clone(),
            schema: relation.schema.clone(),
            name: relation.name.clone(),
            mode: mode.to_owned(),
        }
    }

    pub fn relation_name(&self) -> RelationName {
        RelationName::new(&self.schema, &self.name)
    }
}

/// Sequential scans of one table by one statement, with the name's parts (see [`RelationName`]).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct ScanTrace {
    pub relation: String,
    pub schema: String,
    pub name: String,
    pub seq_scans: i64,
}

impl ScanTrace {
    pub fn new(relation: &RelationName, seq_scans: i64) -> ScanTrace {
        ScanTrace {
            relation: relation.relation.clone(),
            schema: relation.schema.clone(),
            name: relation.name.clone(),
            seq_scans,
        }
    }
}

/// What applying one statement on the shadow did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct StatementTrace {
    /// Index among the parsed file's statements.
    pub statement: usize,
    pub line: usize,
    /// The server ran the statement and it succeeded (see `rolled_back`).
    pub applied: bool,
    /// Why the statement never ran (a psql meta-command, or an earlier statement failed).
    pub not_applied: Option<String>,
    /// Relation locks the statement took (inside a transaction: those it added to the
    /// transaction's), sorted.
    pub locks: Vec<LockTrace>,
    /// Tables (and materialized views) whose storage was rewritten, for display.
    pub rewrites: Vec<String>,
    /// The same relations as `rewrites`, with their names' parts.
    pub rewritten: Vec<RelationName>,
    /// Indexes rebuilt into new storage, for display.
    pub rebuilt_indexes: Vec<String>,
    /// The same indexes as `rebuilt_indexes`, with their names' parts.
    pub rebuilt: Vec<RelationName>,
    /// Tables the statement scanned sequentially (validation scans, rewrites, backfills).
    pub scans: Vec<ScanTrace>,
    /// What the statement waited for, as the monitor saw it (e.g. `older transactions
    /// (virtualxid)`).
    pub waits: Vec<String>,
    /// The locks were sampled by the monitor while the statement ran outside a transaction block,
    /// so a lock held only briefly may be missing; sequential scans are not observable there.
    pub sampled: bool,
    /// `EXPLAIN` of a DML statement, run just before it.
    pub plan: Option<Vec<String>>,
    /// Why the statement failed; for the last statement of a section, possibly the tool's COMMIT
    /// after it (a deferred constraint). Serialized as the contract's string,
    /// `"42P07: relation \"users\" already exists"`.
    #[serde(serialize_with = "error_text")]
    pub error: Option<ApplyError>,
    #[serde(rename = "duration_ms", serialize_with = "milliseconds")]
    pub duration: Duration,
    /// It succeeded, but its transaction was rolled back afterwards (a later statement failed, the
    /// file said ROLLBACK, or never committed).
    pub rolled_back: bool,
    /// Objects it created, dropped or changed (a schema snapshot diff around it); empty, without
    /// meaning nothing changed, when the trace followed no schema ([`TraceChanges`]).
    pub changes: Vec<SchemaChange>,
    /// Why `changes` is not known: the schema could not be read around the statement.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub changes_unknown: Option<String>,
    /// It ran inside a transaction block: `locks` are those it added to the transaction's.
    pub in_transaction: bool,
}

fn error_text<S: Serializer>(error: &Option<ApplyError>, serializer: S) -> Result<S::Ok, S::Error> {
    match error {
        Some(error) => serializer.serialize_str(&format!("{}: {}", error.sqlstate, error.message)),
        None => serializer.serialize_none(),
    }
}

fn milliseconds<S: Serializer>(duration: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_f64(duration.as_secs_f64() * 1000.0)
}

impl StatementTrace {
    fn new(statement: &ScriptStatement) -> StatementTrace {
        StatementTrace {
            statement: statement.index,
            line: statement.line,
            applied: false,
            not_applied: None,
            locks: Vec::new(),
            rewrites: Vec::new(),
            rewritten: Vec::new(),
            rebuilt_indexes: Vec::new(),
            rebuilt: Vec::new(),
            scans: Vec::new(),
            waits: Vec::new(),
            sampled: false,
            plan: None,
            error: None,
            duration: Duration::ZERO,
            rolled_back: false,
            changes: Vec::new(),
            changes_unknown: None,
            in_transaction: statement.in_transaction,
        }
    }

    fn not_applied(statement: &ScriptStatement, reason: String) -> StatementTrace {
        StatementTrace {
            not_applied: Some(reason),
            ..StatementTrace::new(statement)
        }
    }

    /// The strongest lock the statement took on each relation, in the order the relations first
    /// appear in `locks` (each given by the first of its locks).
    pub fn strongest_locks(&self) -> Vec<(&LockTrace, LockMode)> {
        let mut strongest: Vec<(&LockTrace, LockMode)> = Vec::new();
        for lock in &self.locks {
            let Some(mode) = LockMode::from_pg_name(&lock.mode) else {
                continue;
            };
            match strongest
                .iter_mut()
                .find(|(first, _)| first.relation == lock.relation)
            {
                Some(entry) => entry.1 = entry.1.max(mode),
                None => strongest.push((lock, mode)),
            }
        }
        strongest
    }
}

/// Applies `script` on `client` in its tool's transaction shape and traces every statement; returns
/// one trace per statement of the script, in order. `monitor` is a second connection to the same
/// database, used only while a statement that cannot run in a transaction block runs. The apply
/// stops at the first failing statement; the statements after it say so.
///
/// `known` is what the trace knows of the database from the migrations traced before on the same
/// connection; [`Known::forget`] it when anything else changes the database.
pub async fn apply_traced(
    client: &Client,
    monitor: &Client,
    script: &Script<'_>,
    known: &mut Known,
) -> Vec<StatementTrace> {
    trace_after(client, monitor, script, known, false).await
}

/// [`apply_traced`] in a new session: [`NEW_SESSION`] is sent first, in the same round trip as the
/// trace's first query when the trace has prepared its observation on the connection already. An
/// error of the reset is left to the statements to meet.
pub async fn apply_traced_in_new_session(
    client: &Client,
    monitor: &Client,
    script: &Script<'_>,
    known: &mut Known,
) -> Vec<StatementTrace> {
    trace_after(client, monitor, script, known, true).await
}

/// [`apply_traced`], after [`NEW_SESSION`] when `new_session` (see [`apply_traced_in_new_session`]).
async fn trace_after(
    client: &Client,
    monitor: &Client,
    script: &Script<'_>,
    known: &mut Known,
    new_session: bool,
) -> Vec<StatementTrace> {
    let mut tracer = Tracer {
        client,
        monitor,
        script,
        known,
        held: None,
        counted: None,
        next: None,
        read: Read::default(),
        reach: None,
        block: Vec::new(),
        traces: Vec::new(),
        applier_pid: None,
    };
    tracer.flush(new_session).await;
    let mut failed: Option<usize> = None;
    for section in &script.sections {
        for statement in &section.statements {
            let trace = if let Some(line) = failed {
                StatementTrace::not_applied(
                    statement,
                    format!(
                        "the statement on line {line} failed first, and the migration stops at its first error"
                    ),
                )
            } else if statement.is_psql_meta() {
                StatementTrace::not_applied(
                    statement,
                    "psql meta-command: psql runs it itself and the server never sees it".into(),
                )
            } else {
                let trace = tracer.statement(statement).await;
                if trace.error.is_some() {
                    failed = Some(statement.line);
                }
                trace
            };
            tracer.traces.push(trace);
        }
        if failed.is_none() {
            if let Some(last) = section.last_sql_statement() {
                if let Err(error) = tracer.end_section(section.end).await {
                    let error = ApplyError::new(script, last, &error, false);
                    failed = Some(last.line);
                    if let Some(trace) = tracer
                        .traces
                        .iter_mut()
                        .rfind(|t| t.statement == last.index)
                    {
                        // The migration fails there, like a statement that fails.
                        trace.error = Some(error);
                        trace.applied = false;
                        trace.rolled_back = false;
                    }
                }
            }
        }
    }
    tracer.traces
}

/// A user relation in the catalog.
#[derive(Debug, Clone)]
struct Relation {
    name: RelationName,
    kind: char,
    filenode: u32,
}

/// The user relations by OID (see [`relations_sql`]).
type Relations = HashMap<u32, Relation>;

/// What the trace knows of a database between its statements, and between migrations traced on
/// the same connection: its user relations and its schema, each kept up to date with what every
/// traced statement can have changed. `None` where it must be read whole.
#[derive(Default)]
pub struct Known {
    relations: Option<Relations>,
    schema: Option<LiveSchema>,
    /// Some routine in the database can roll back a subtransaction (see
    /// [`crate::pg::subtransactions`]), as the last observation that read them found.
    routines_roll_back: Option<bool>,
    /// The observation prepared on the connection, once it was needed.
    observations: Option<Observations>,
    /// The trace follows no schema (see [`Known::for_a_copy_without_schema`]).
    schema_unfollowed: bool,
}

impl Known {
    /// Knowing nothing of the database yet. Without `follow_schema` the trace follows no schema
    /// between statements (see [`Known::for_a_copy_without_schema`]), through every
    /// [`Known::forget`]: its traces' `changes` stay empty.
    pub fn new(follow_schema: bool) -> Known {
        Known {
            schema_unfollowed: !follow_schema,
            ..Known::default()
        }
    }

    /// Forgets everything it knows of the database: something other than a traced statement
    /// changed it. What it prepared on the connection stays (a statement the session no longer has
    /// is prepared again when it is found missing).
    pub fn forget(&mut self) {
        *self = Known {
            observations: self.observations.take(),
            schema_unfollowed: self.schema_unfollowed,
            ..Known::default()
        };
    }

    /// The schema as the trace last read it (kept up to date statement by statement), when it has
    /// read it since it last forgot: what a whole [`super::snapshot::snapshot`] would read now, as
    /// far as the session's settings print names and values as a fresh session's do.
    pub fn schema(&self) -> Option<&SchemaSnapshot> {
        self.schema.as_ref().map(LiveSchema::schema)
    }

    /// What holds for a copy of the database made now (`CREATE DATABASE … TEMPLATE`, which keeps
    /// OIDs and file nodes), for statements whose result is read whole once they ran (a rewrite's
    /// steps): the same relations, nothing prepared on its connections, and no schema followed: the
    /// trace reads no catalog between statements for what each changed in the schema (their
    /// traces' `changes` stay empty), so the copy's sessions neither prepare nor run the scoped
    /// reads, whose first plans in each new session cost more than one whole read at the end.
    pub fn for_a_copy_without_schema(&self) -> Known {
        Known {
            relations: self.relations.clone(),
            schema: None,
            routines_roll_back: self.routines_roll_back,
            observations: None,
            schema_unfollowed: true,
        }
    }
}

/// `--trace-changes`: whether the trace reads what each statement changed in the schema.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum TraceChanges {
    /// When the run reviews at most [`DETAILED_REVIEW_UP_TO`] migrations: following the schema
    /// costs the server about 2 ms per statement (the reach query and the scoped reads of
    /// [`LiveSchema::update`]).
    #[default]
    Auto,
    Always,
    Never,
}

impl std::str::FromStr for TraceChanges {
    type Err = String;

    fn from_str(text: &str) -> Result<TraceChanges, String> {
        match text {
            "auto" => Ok(TraceChanges::Auto),
            "always" => Ok(TraceChanges::Always),
            "never" => Ok(TraceChanges::Never),
            _ => Err(format!(
                "`{text}` is not a choice: use auto (the default: read when at most {DETAILED_REVIEW_UP_TO} migrations are reviewed), always or never"
            )),
        }
    }
}

impl TraceChanges {
    /// Why the trace of a run reviewing `reviewed` migrations (over all directories) reads no
    /// statement's schema changes, as the report says it once; `None` when it reads them.
    pub fn unread(self, reviewed: usize) -> Option<String> {
        match self {
            TraceChanges::Always => None,
            TraceChanges::Auto if reviewed <= DETAILED_REVIEW_UP_TO => None,
            TraceChanges::Auto => Some(format!(
                "schema changes per statement not read: {reviewed} migrations reviewed (more than {DETAILED_REVIEW_UP_TO}); `--trace-changes always` reads them, about 2 ms per statement"
            )),
            TraceChanges::Never => {
                Some(format!("schema changes per statement not read: trace-changes is never (`--trace-changes` or `[shadow]`); `auto` reads them when at most {DETAILED_REVIEW_UP_TO} migrations are reviewed"))
            }
        }
    }
}

/// The observation (see [`observation_sql`]) prepared on a connection: of the relations locked,
/// and of every user relation, counting the catalog writes a followed schema needs; and whether the
/// session may run [`FLUSH`].
#[derive(Clone)]
struct Observations {
    locked: Statement,
    whole: Statement,
    flushes: bool,
}

impl Observations {
    async fn prepare(
        client: &Client,
        follows_schema: bool,
    ) -> Result<Observations, tokio_postgres::Error> {
        let locked = observation_sql(false, follows_schema);
        let whole = observation_sql(true, follows_schema);
        let (locked, whole, flushes) = tokio::try_join!(
            client.prepare(&locked),
            client.prepare(&whole),
            client.query_one(FLUSHES, &[])
        )?;
        let flushes = flushes.get::<_, Option<bool>>(0).unwrap_or(false);
        Ok(Observations {
            locked,
            whole,
            flushes,
        })
    }
}

/// The session's sequential scan counts as the trace knows them: of every table, as the
/// observations of the open transaction left them, with the rows of `pg_proc` it had written at the
/// last one. Within a transaction a table's count changes only by a scan under a lock the
/// transaction keeps to its end, so reading the counts of the tables locked after a statement is
/// enough (a table it locked first counts from where the observation before it left it), unless a
/// subtransaction that scanned was rolled back, which releases its locks and keeps its counts: around
/// a statement that can do that (see [`crate::pg::subtransactions`]), every table's count is read.
/// Between transactions the counts change with the backend's reports, unless [`FLUSH`] has just set
/// them to zero.
#[derive(Debug, Clone, Default)]
struct Counted {
    scans: HashMap<u32, i64>,
    proc_writes: i64,
}

/// What is sent ahead of an observation, in its round trip.
#[derive(Clone, Copy)]
enum Lead<'l, 's> {
    Nothing,
    /// `BEGIN`: the transaction a statement that would autocommit runs in.
    Begin,
    /// The statement, as written (on the observed connection), after `BEGIN` when `begin`.
    Statement {
        statement: &'l ScriptStatement<'s>,
        begin: bool,
    },
}

impl Lead<'_, '_> {
    /// `BEGIN` when `begin`, else nothing.
    fn begin_if(begin: bool) -> Self {
        match begin {
            true => Lead::Begin,
            false => Lead::Nothing,
        }
    }
}

/// What closes an observation's round trip: `COMMIT`, and [`FLUSH`] (the round trip leaves no
/// transaction block open).
#[derive(Clone, Copy)]
struct Ends {
    commit: bool,
    flush: bool,
}

/// What an observation's round trip gave: how long a statement sent ahead of it took, whether it
/// ended outside a transaction block with the scan counts flushed (see [`FLUSH`]), and its rows.
struct RoundTrip {
    duration: Option<Duration>,
    flushed: bool,
    observed: Result<Vec<Row>, Unobserved>,
}

/// Why an observation's round trip did not give its rows.
enum Unobserved {
    /// What was sent ahead of it failed (a statement: as written).
    Lead(Failure),
    /// The observation, or what was sent after it, failed; the transaction block is as it was
    /// before the observation.
    Observation(tokio_postgres::Error),
}

/// What the session's transaction holds and has counted (see [`observation_sql`]).
#[derive(Debug, Clone, Default)]
struct Held {
    locks: BTreeSet<(u32, String)>,
    /// Of every table (see [`Counted`]).
    seq_scans: HashMap<u32, i64>,
    writes: CatalogWrites,
    /// The server counts catalog writes (`track_counts` is on).
    counting: bool,
    /// Whether some routine can roll back a subtransaction, when the observation read them.
    routines_roll_back: Option<bool>,
}

impl Held {
    /// The rows of `pg_proc` the transaction wrote.
    fn proc_writes(&self) -> i64 {
        let written = self.writes.get("pg_proc").copied();
        written.map_or(0, |(inserted, updated, deleted)| {
            inserted + updated + deleted
        })
    }

    fn locked(&self) -> Vec<u32> {
        let locked: BTreeSet<u32> = self.locks.iter().map(|(oid, _)| *oid).collect();
        locked.into_iter().collect()
    }

    /// The relations held in ACCESS EXCLUSIVE mode.
    fn exclusive(&self) -> Vec<u32> {
        self.locks
            .iter()
            .filter(|(_, mode)| mode == LockMode::AccessExclusive.pg_name())
            .map(|(oid, _)| *oid)
            .collect()
    }

    /// What a statement between `before` and `self` (both in its transaction) can have changed.
    fn reach_since(&self, before: &Held) -> Reach {
        if !(before.counting && self.counting) {
            return Reach::Everything;
        }
        let writes: CatalogWrites = self
            .writes
            .iter()
            .map(|(catalog, &(inserted, updated, deleted))| {
                let was = before.writes.get(catalog).copied().unwrap_or((0, 0, 0));
                let since = (inserted - was.0, updated - was.1, deleted - was.2);
                (catalog.clone(), since)
            })
            .collect();
        let locked = self.locked();
        let was_locked = before.locked();
        let first_locked = locked
            .iter()
            .copied()
            .filter(|oid| was_locked.binary_search(oid).is_err())
            .collect();
        Reach::of(&writes, [locked, self.exclusive(), first_locked])
    }
}

/// The relations one read of the session saw, and what the trace knew of them before.
#[derive(Debug, Default)]
struct Read {
    /// Every user relation when the catalog was read whole, else those the session holds locks on.
    fresh: Relations,
    /// The entries `fresh` replaced in what the trace knew.
    replaced: Relations,
}

/// Reads the rows of an observation (see [`observation_sql`]).
fn read_observation(rows: &[Row], relations: &mut Relations, held: &mut Held) {
    for row in rows {
        let field = |i: usize| {
            row.try_get::<_, Option<&str>>(i)
                .ok()
                .flatten()
                .unwrap_or_default()
        };
        let Ok(oid) = field(1).parse::<u32>() else {
            continue;
        };
        match field(0) {
            "lock" => {
                held.locks.insert((oid, field(2).to_owned()));
            }
            "scan" => {
                held.seq_scans.insert(oid, field(2).parse().unwrap_or(0));
            }
            "writes" => {
                let count = |i: usize| field(i).parse().unwrap_or(0);
                held.writes
                    .insert(field(5).to_owned(), (count(2), count(3), count(4)));
            }
            "counting" => held.counting = field(2) == "on",
            "routines" => {
                held.routines_roll_back.get_or_insert(false);
            }
            "routine" => {
                let rolls_back = routine_can_roll_back(field(2), field(3));
                *held.routines_roll_back.get_or_insert(false) |= rolls_back;
            }
            "relation" => {
                relations.insert(
                    oid,
                    Relation {
                        name: RelationName::new(field(2), field(3)),
                        kind: field(4).chars().next().unwrap_or('?'),
                        filenode: field(5).parse().unwrap_or(0),
                    },
                );
            }
            _ => {}
        }
    }
}

/// Names relations by the catalog before a statement, then (for relations it created) after it;
/// relations in neither (transient heaps of a rewrite, TOAST) are not the migration's and are left
/// out.
struct Names<'a> {
    before: &'a Relations,
    after: &'a Relations,
}

impl Names<'_> {
    fn of(&self, oid: u32) -> Option<&RelationName> {
        self.before
            .get(&oid)
            .or_else(|| self.after.get(&oid))
            .map(|relation| &relation.name)
    }

    fn locks<'l>(&self, locks: impl IntoIterator<Item = (u32, &'l str)>) -> Vec<LockTrace> {
        let named: BTreeSet<LockTrace> = locks
            .into_iter()
            .filter_map(|(oid, mode)| Some(LockTrace::new(self.of(oid)?, mode)))
            .collect();
        named.into_iter().collect()
    }
}

/// What a statement changed between two observations of its session: the locks it added, the
/// storage it rewrote and the sequential scans it made. `read` names the relations the session
/// holds locks on after it, as they were before it and after.
fn record_changes(trace: &mut StatementTrace, before: &Held, after: &Held, read: &Read) {
    let names = Names {
        before: &read.replaced,
        after: &read.fresh,
    };
    trace.locks = names.locks(
        after
            .locks
            .difference(&before.locks)
            .map(|(oid, mode)| (*oid, mode.as_str())),
    );
    let mut scans: Vec<ScanTrace> = after
        .seq_scans
        .iter()
        .filter_map(|(oid, count)| {
            let delta = count - before.seq_scans.get(oid).copied().unwrap_or(0);
            let relation = names.of(*oid)?;
            (delta > 0).then(|| ScanTrace::new(relation, delta))
        })
        .collect();
    scans.sort();
    trace.scans = scans;
    record_rewrites(trace, &read.replaced, &read.fresh);
}

/// Tables and indexes that existed before and have new storage after (a rewrite locks what it
/// rewrites, so `before` and `after` need to hold only the relations locked). A relation is followed by
/// its OID, or by its name when the statement dropped it and built a new one of the same kind
/// (ALTER COLUMN TYPE rebuilds the column's indexes that way, reusing their storage when the new
/// type needs no rebuild).
fn record_rewrites(trace: &mut StatementTrace, before: &Relations, after: &Relations) {
    let mut by_name: Option<HashMap<(&RelationName, char), &Relation>> = None;
    let mut rewrites = Vec::new();
    let mut rebuilt = Vec::new();
    for (oid, old) in before {
        let new = match after.get(oid) {
            Some(new) => new,
            None => {
                let by_name = by_name.get_or_insert_with(|| {
                    after
                        .values()
                        .map(|relation| ((&relation.name, relation.kind), relation))
                        .collect()
                });
                match by_name.get(&(&old.name, old.kind)) {
                    Some(new) => new,
                    None => continue,
                }
            }
        };
        if old.filenode == 0 || new.filenode == 0 || old.filenode == new.filenode {
            continue;
        }
        match old.kind {
            'r' | 'm' => rewrites.push(old.name.clone()),
            'i' => rebuilt.push(old.name.clone()),
            _ => {}
        }
    }
    rewrites.sort();
    rebuilt.sort();
    let display = |names: &[RelationName]| names.iter().map(|n| n.relation.clone()).collect();
    trace.rewrites = display(&rewrites);
    trace.rebuilt_indexes = display(&rebuilt);
    trace.rewritten = rewrites;
    trace.rebuilt = rebuilt;
}

/// A lock the monitor saw the statement's backend hold or wait for.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct SampledLock {
    locktype: String,
    relation: Option<u32>,
    mode: String,
    granted: bool,
}

/// Runs the statements and keeps what the trace needs between them.
struct Tracer<'a, 's> {
    client: &'a Client,
    monitor: &'a Client,
    script: &'a Script<'s>,
    known: &'a mut Known,
    /// What the open transaction held and had counted when last read; `None` when it must be read
    /// again.
    held: Option<Held>,
    /// The session's scan counts; `None` when the next observation must read every table's.
    counted: Option<Counted>,
    /// What a transaction begun now holds, when known: after the counts were flushed at the start
    /// (see [`Tracer::flush`]) or after a statement that autocommitted (see
    /// [`Tracer::next_transaction`]). Only the next statement may use it.
    next: Option<Held>,
    /// The relations the last read saw.
    read: Read,
    /// What the statement just run can have changed in the schema; `None` when it was not
    /// observed in its transaction.
    reach: Option<Reach>,
    /// Indices into `traces` of the statements applied in the open transaction block, marked
    /// `rolled_back` if it is rolled back.
    block: Vec<usize>,
    traces: Vec<StatementTrace>,
    /// The backend the monitor watches, once asked.
    applier_pid: Option<Option<i32>>,
}

/// Why a statement did not apply: the error, and whether the failing query was the statement as
/// written (so the server's error cursor points into it).
struct Failure {
    error: tokio_postgres::Error,
    as_written: bool,
}

impl Failure {
    /// The statement as written failed.
    fn as_written(error: tokio_postgres::Error) -> Failure {
        Failure {
            error,
            as_written: true,
        }
    }

    /// A query around the statement failed: the COMMIT after it, or the trace's own.
    fn around(error: tokio_postgres::Error) -> Failure {
        Failure {
            error,
            as_written: false,
        }
    }
}

impl Tracer<'_, '_> {
    /// Applies and traces one statement. A failure leaves no transaction open.
    async fn statement(&mut self, statement: &ScriptStatement<'_>) -> StatementTrace {
        let mut trace = StatementTrace::new(statement);
        // Transaction control and settings are left alone: a query before SET TRANSACTION makes it
        // fail, and they change no object.
        let snapshots = !statement.is_transaction_control()
            && !matches!(statement.kind(), Kind::Set | Kind::Reset);
        let mut unread = None;
        if snapshots && !self.known.schema_unfollowed && self.known.schema.is_none() {
            match LiveSchema::read(self.client).await {
                Ok(schema) => self.known.schema = Some(schema),
                Err(error) => unread = Some(error),
            }
            // A snapshot locks the views it reads (and their tables) until the transaction ends: what
            // the transaction holds must be read again, or the next statement is charged with them.
            self.held = None;
        }
        self.reach = None;
        let outcome = self.run(statement, &mut trace).await;
        match outcome {
            Ok(()) => {
                trace.applied = true;
                if snapshots {
                    match self.schema_changes(statement, unread).await {
                        Ok(changes) => trace.changes = changes,
                        Err(error) => trace.changes_unknown = Some(unread_schema(&error)),
                    }
                }
                if matches!(statement.kind(), Kind::Rollback | Kind::Savepoint) {
                    self.known.schema = None;
                }
                match statement.kind() {
                    Kind::Commit => self.block.clear(),
                    Kind::Rollback => self.mark_block_rolled_back(),
                    Kind::Begin => self.block.push(self.traces.len()),
                    _ if statement.in_transaction => self.block.push(self.traces.len()),
                    _ => {}
                }
            }
            Err(failure) => {
                roll_back(self.client).await;
                self.known.forget();
                self.held = None;
                self.counted = None;
                self.mark_block_rolled_back();
                trace.error = Some(ApplyError::new(
                    self.script,
                    statement,
                    &failure.error,
                    failure.as_written,
                ));
            }
        }
        trace
    }

    /// What the statement just applied created, dropped or changed: the schema read again where
    /// it can have changed it (everywhere when it ran on another connection or unobserved).
    /// `unread` is why the schema could not be read before it; then, or when it cannot be read
    /// after it, the error says so, and the next statement reads the schema whole.
    async fn schema_changes(
        &mut self,
        statement: &ScriptStatement<'_>,
        unread: Option<tokio_postgres::Error>,
    ) -> Result<Vec<SchemaChange>, tokio_postgres::Error> {
        let reach = match self.reach.take() {
            Some(reach) if statement.delegated.is_none() => reach,
            _ => Reach::Everything,
        };
        if reach == Reach::Nothing {
            return Ok(Vec::new());
        }
        let Some(schema) = &mut self.known.schema else {
            return unread.map_or(Ok(Vec::new()), Err);
        };
        // Reading the whole schema locks views and their tables (see above): what the
        // transaction holds is read again then.
        match schema
            .update(self.client, reach, statement.in_transaction)
            .await
        {
            Ok((changes, held_as_before)) => {
                if !held_as_before {
                    self.held = None;
                }
                Ok(changes)
            }
            Err(error) => {
                self.held = None;
                self.known.schema = None;
                Err(error)
            }
        }
    }

    async fn run(
        &mut self,
        statement: &ScriptStatement<'_>,
        trace: &mut StatementTrace,
    ) -> Result<(), Failure> {
        let next = self.next.take();
        let settles = matches!(statement.kind(), Kind::Set | Kind::Reset);
        if statement.begin_before {
            self.held = None;
        }
        if statement.begin_before && (statement.is_transaction_control() || settles) {
            // Observed only before the first statement that needs it: SET TRANSACTION must come
            // before any query of the transaction.
            self.client
                .batch_execute("BEGIN")
                .await
                .map_err(Failure::around)?;
        }
        if statement.is_transaction_control() {
            // Savepoints release locks; COMMIT AND CHAIN opens a transaction where the counts are
            // not flushed: what follows reads every count again.
            self.held = None;
            self.counted = None;
            if matches!(statement.kind(), Kind::Rollback | Kind::Savepoint) {
                // Rolling back undoes catalog changes too.
                self.known.relations = None;
            }
            return self.timed(statement, trace).await;
        }
        if settles {
            // Settings take no locks and touch no table; observing around them would be a query
            // before SET TRANSACTION.
            return self.timed(statement, trace).await;
        }
        if statement.in_transaction {
            return self
                .in_transaction(statement, trace, statement.begin_before, next)
                .await;
        }
        if !runs_outside_transaction(statement) {
            match self.autocommitted(statement, trace, next).await {
                Err(failure) if refuses_transaction_block(&failure.error) => {
                    roll_back(self.client).await;
                    self.held = None;
                    self.counted = None;
                    trace.plan = None;
                }
                outcome => return outcome,
            }
        }
        self.sampled(statement, trace).await
    }

    /// A statement inside the migration's own transaction: charged with what it added to it. When
    /// `begin`, the tool opens the transaction just before it (see [`Tracer::held_before`] for
    /// `next`).
    async fn in_transaction(
        &mut self,
        statement: &ScriptStatement<'_>,
        trace: &mut StatementTrace,
        begin: bool,
        next: Option<Held>,
    ) -> Result<(), Failure> {
        let (before, begin) = self.held_before(begin, next).await?;
        self.traced_in_block(statement, trace, &before, begin, false)
            .await
    }

    /// A statement that would autocommit, run as `BEGIN; statement; <observe>; COMMIT` (see
    /// [`Tracer::held_before`] for `next`).
    async fn autocommitted(
        &mut self,
        statement: &ScriptStatement<'_>,
        trace: &mut StatementTrace,
        next: Option<Held>,
    ) -> Result<(), Failure> {
        let (before, begin) = self.held_before(true, next).await?;
        // A deferred constraint fails at COMMIT: the statement is what failed.
        self.traced_in_block(statement, trace, &before, begin, true)
            .await?;
        self.next = self.next_transaction();
        self.held = None;
        Ok(())
    }

    /// What the statement's transaction holds before it, and whether `BEGIN` is still to be sent,
    /// ahead of the statement (or its EXPLAIN) in the same round trip. When `begin` (the statement
    /// opens the transaction) and `next` says what a transaction begun now holds (see
    /// [`Tracer::next_transaction`]), that, with nothing to read; else an observation reads it
    /// (after `BEGIN` when `begin`), unless the trace knows it already.
    async fn held_before(
        &mut self,
        begin: bool,
        next: Option<Held>,
    ) -> Result<(Held, bool), Failure> {
        let knows_relations = self.known.relations.is_some()
            && self.known.routines_roll_back.is_some()
            && self.known.observations.is_some();
        if let Some(held) = next.filter(|_| begin && knows_relations) {
            return Ok((held, true));
        }
        if begin
            || self.held.is_none()
            || self.known.relations.is_none()
            || self.known.routines_roll_back.is_none()
        {
            self.observe(Lead::begin_if(begin), true, false, None)
                .await?;
        }
        Ok((self.held.take().unwrap_or_default(), false))
    }

    /// Traces a statement in a transaction block whose holdings before it are `before`: its
    /// EXPLAIN, then the statement with the observation after it (committed when `commit`), each
    /// after `BEGIN` when `begin` is still to be sent.
    async fn traced_in_block(
        &mut self,
        statement: &ScriptStatement<'_>,
        trace: &mut StatementTrace,
        before: &Held,
        mut begin: bool,
        commit: bool,
    ) -> Result<(), Failure> {
        trace.plan = self
            .explain(statement, &mut begin)
            .await
            .map_err(Failure::around)?;
        self.count_every_scan_if_rolling_back(statement);
        self.run_observed(statement, trace, commit, begin).await?;
        self.record(trace, before);
        Ok(())
    }

    /// What a transaction begun now holds, after a statement that autocommitted: nothing, with
    /// every count at zero, when the counts were flushed after its `COMMIT` (see [`FLUSH`]);
    /// whether the server counts is as the observation in its transaction found (a local setting
    /// put back at `COMMIT` can only make the next statement read everything again, see
    /// [`Held::reach_since`]). Only the next statement may use it: any other query in between could
    /// change that.
    fn next_transaction(&self) -> Option<Held> {
        let counting = self.held.as_ref()?.counting;
        self.counted.as_ref()?;
        Some(Held {
            counting,
            ..Held::default()
        })
    }

    /// A statement that must run outside a transaction block, run as written while the monitor
    /// samples its locks.
    async fn sampled(
        &mut self,
        statement: &ScriptStatement<'_>,
        trace: &mut StatementTrace,
    ) -> Result<(), Failure> {
        if self.known.relations.is_none() {
            self.observe(Lead::Nothing, false, false, None).await?;
        }
        // The monitor's samples name any relation: the catalog is read whole after it. Its scans
        // (in transactions of its own) are not charged, but counted; a routine it ran may have
        // created routines.
        let before = self.known.relations.take().unwrap_or_default();
        self.counted = None;
        self.known.routines_roll_back = None;
        let pid = self.applier_pid().await.map_err(Failure::around)?;
        let holding = pid.is_some() && self.hold(statement).await;
        let started = Instant::now();
        let (outcome, samples) = match pid {
            Some(pid) => self.run_sampled(statement, pid, holding).await,
            None => (
                self.script.run(self.client, statement).await,
                BTreeSet::new(),
            ),
        };
        trace.duration = started.elapsed();
        trace.sampled = true;
        outcome.map_err(Failure::as_written)?;
        self.observe(Lead::Nothing, false, false, None).await?;
        self.held = None;
        let after = &self.read.fresh;
        let names = Names {
            before: &before,
            after,
        };
        trace.locks = names.locks(
            samples
                .iter()
                .filter_map(|sample| Some((sample.relation?, sample.mode.as_str()))),
        );
        let waits: BTreeSet<String> = samples
            .iter()
            .filter(|sample| !sample.granted)
            .filter_map(|sample| describe_wait(sample, &names))
            .collect();
        trace.waits = waits.into_iter().collect();
        record_rewrites(trace, &before, after);
        Ok(())
    }

    /// Runs the statement while the monitor samples the applying backend's locks. As soon as the
    /// statement waits, that sample is what it holds and waits for, and the monitor lets go of its
    /// snapshot; a statement that never waits gets every sample (a lock held only between two
    /// samples is missed). The monitor lets go after [`HOLD_LIMIT`] in any case.
    async fn run_sampled(
        &self,
        statement: &ScriptStatement<'_>,
        pid: i32,
        mut holding: bool,
    ) -> (Result<(), tokio_postgres::Error>, BTreeSet<SampledLock>) {
        let sample_query = format!(
            "SELECT l.locktype, l.relation::text, l.mode, l.granted::text FROM pg_catalog.pg_locks l \
             WHERE l.pid = {pid} AND ((l.locktype = 'relation' AND l.relation >= 16384) OR NOT l.granted)"
        );
        let mut seen = BTreeSet::new();
        let started = Instant::now();
        let mut interval = SAMPLE_INTERVAL_MIN;
        let mut sampling = true;
        let run = self.script.run(self.client, statement);
        tokio::pin!(run);
        let outcome = loop {
            tokio::select! {
                biased;
                outcome = &mut run => break outcome,
                () = tokio::time::sleep(interval), if sampling => {
                    interval = (interval * 2).min(SAMPLE_INTERVAL_MAX);
                    let sample = self.monitor.simple_query(&sample_query).await;
                    let sample = sample.as_deref().map(read_sample);
                    let waits = match sample {
                        Ok(sample) if sample.iter().any(|lock| !lock.granted) => {
                            seen = sample;
                            true
                        }
                        Ok(sample) => {
                            seen.extend(sample);
                            false
                        }
                        // The monitor is gone; the statement still runs.
                        Err(_) => true,
                    };
                    sampling = !waits;
                    if holding && (waits || started.elapsed() > HOLD_LIMIT) {
                        self.release().await;
                        holding = false;
                    }
                }
            }
        };
        if holding {
            self.release().await;
        }
        (outcome, seen)
    }

    /// The monitor opens a transaction with a snapshot, which CONCURRENTLY statements wait for as
    /// they wait for every older transaction, and reads the statement's table (an index's table),
    /// so that a statement waiting for the table's users, or needing an ACCESS EXCLUSIVE lock on
    /// it (VACUUM FULL), queues behind the monitor. Returns whether the monitor holds a snapshot.
    async fn hold(&self, statement: &ScriptStatement<'_>) -> bool {
        if self
            .monitor
            .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT 1")
            .await
            .is_err()
        {
            roll_back(self.monitor).await;
            return false;
        }
        let Some(target) = &statement.statement.class.target else {
            return true;
        };
        let find_table = format!(
            "SELECT COALESCE(i.indrelid, c.oid)::pg_catalog.regclass::text \
               FROM pg_catalog.pg_class c LEFT JOIN pg_catalog.pg_index i ON i.indexrelid = c.oid \
              WHERE c.oid = pg_catalog.to_regclass('{}')",
            quoted(target).replace('\'', "''")
        );
        let Some(table) = self
            .monitor
            .simple_query(&find_table)
            .await
            .ok()
            .as_deref()
            .and_then(first_value)
        else {
            return true;
        };
        let read = format!(
            "SAVEPOINT {HOLD_SAVEPOINT}; SELECT FROM {table} LIMIT 0; RELEASE SAVEPOINT {HOLD_SAVEPOINT}"
        );
        if self.monitor.batch_execute(&read).await.is_err() {
            // Not readable (a sequence, a foreign table whose server is away): the snapshot stays.
            let _ = self
                .monitor
                .batch_execute(&format!("ROLLBACK TO SAVEPOINT {HOLD_SAVEPOINT}"))
                .await;
        }
        true
    }

    async fn release(&self) {
        if self.monitor.batch_execute("COMMIT").await.is_err() {
            roll_back(self.monitor).await;
        }
    }

    /// Closes the transaction a section leaves open, as its tool (or psql) does.
    async fn end_section(&mut self, end: SectionEnd) -> Result<(), tokio_postgres::Error> {
        self.held = None;
        self.next = None;
        match end {
            SectionEnd::Nothing => Ok(()),
            SectionEnd::Commit => {
                let committed = self.end_flushed("COMMIT").await;
                if committed.is_err() {
                    roll_back(self.client).await;
                    self.known.forget();
                    self.mark_block_rolled_back();
                }
                self.block.clear();
                committed
            }
            SectionEnd::RollBack { .. } => {
                self.known.forget();
                self.mark_block_rolled_back();
                self.end_flushed("ROLLBACK").await
            }
        }
    }

    /// Sends `end`, which leaves no transaction block open, with [`FLUSH`] after it in the same
    /// round trip.
    async fn end_flushed(&mut self, end: &str) -> Result<(), tokio_postgres::Error> {
        let flushes = self.known.observations.as_ref().is_some_and(|o| o.flushes);
        let (ended, flushed) = tokio::join!(
            self.client.batch_execute(end),
            flush_counts(self.client, flushes)
        );
        self.counted = flushed.then(Counted::default);
        ended
    }

    fn mark_block_rolled_back(&mut self) {
        self.known.schema = None;
        for index in self.block.drain(..) {
            if let Some(trace) = self.traces.get_mut(index) {
                trace.rolled_back = true;
            }
        }
    }

    /// Runs the statement as written and records how long it took.
    async fn timed(
        &self,
        statement: &ScriptStatement<'_>,
        trace: &mut StatementTrace,
    ) -> Result<(), Failure> {
        let started = Instant::now();
        let outcome = self.script.run(self.client, statement).await;
        trace.duration = started.elapsed();
        outcome.map_err(Failure::as_written)
    }

    /// Runs the statement as written, then observes the session in the same round trip (see
    /// [`Tracer::observe`]), inside the transaction block it runs in, and commits it after when
    /// `commit`. A statement run on the privileged connection is run first, on its own; the routines
    /// it created are not in this session's counts, so they are read again.
    async fn run_observed(
        &mut self,
        statement: &ScriptStatement<'_>,
        trace: &mut StatementTrace,
        commit: bool,
        begin: bool,
    ) -> Result<(), Failure> {
        if statement.delegated.is_some() {
            self.timed(statement, trace).await?;
            self.known.routines_roll_back = None;
            return self
                .observe(Lead::begin_if(begin), true, commit, None)
                .await;
        }
        self.observe(
            Lead::Statement { statement, begin },
            true,
            commit,
            Some(trace),
        )
        .await
    }

    /// A statement that can roll back a subtransaction, by itself or through a routine in the
    /// database (see [`Counted`]), is observed with every table's scan count after it.
    fn count_every_scan_if_rolling_back(&mut self, statement: &ScriptStatement<'_>) {
        if self.script.rolls_back_by_itself(statement)
            || self.known.routines_roll_back != Some(false)
        {
            self.counted = None;
        }
    }

    /// Observes the session: what its transaction holds and has counted, and the relations it
    /// holds locks on (every relation when the trace knows none), with the observation prepared
    /// once per connection. One round trip: `lead`, then the observation (inside a savepoint when
    /// `in_block`, a transaction block being open), then `COMMIT` when `commit`, and [`FLUSH`] when
    /// that leaves no transaction block open. A statement as `lead` is timed into `trace`. When the
    /// session no longer has the prepared observation (a migration's `DEALLOCATE ALL`, also run by
    /// a function), the savepoint's rollback leaves the transaction as it was, and the observation
    /// is prepared and sent again.
    async fn observe(
        &mut self,
        lead: Lead<'_, '_>,
        in_block: bool,
        commit: bool,
        trace: Option<&mut StatementTrace>,
    ) -> Result<(), Failure> {
        let whole = self.known.relations.is_none();
        let observations = match &self.known.observations {
            Some(observations) => observations.clone(),
            None => self.prepare_observations().await?,
        };
        let ends = Ends {
            commit,
            flush: observations.flushes && (commit || !in_block),
        };
        let trip = self
            .pipeline(lead, in_block, &observations, whole, ends)
            .await;
        if let (Some(trace), Some(duration)) = (trace, trip.duration) {
            trace.duration = duration;
        }
        let trip = match trip.observed {
            Err(Unobserved::Observation(error))
                if error.code() == Some(&SqlState::INVALID_SQL_STATEMENT_NAME) =>
            {
                let observations = self.prepare_observations().await?;
                self.pipeline(Lead::Nothing, in_block, &observations, whole, ends)
                    .await
            }
            _ => trip,
        };
        let rows = match trip.observed {
            Ok(rows) => rows,
            Err(Unobserved::Lead(failure)) => return Err(failure),
            Err(Unobserved::Observation(error)) => return Err(Failure::around(error)),
        };
        let mut held = Held::default();
        let mut fresh = Relations::new();
        read_observation(&rows, &mut fresh, &mut held);
        if let Some(rolls_back) = held.routines_roll_back {
            self.known.routines_roll_back = Some(rolls_back);
        }
        if in_block {
            self.count(&mut held);
        }
        if commit || !in_block {
            self.counted = trip.flushed.then(Counted::default);
        }
        let known = self.known.relations.get_or_insert_with(Relations::new);
        let mut replaced = Relations::new();
        if whole {
            known.clone_from(&fresh);
        } else {
            for oid in held.locked() {
                let previous = match fresh.get(&oid) {
                    Some(relation) => known.insert(oid, relation.clone()),
                    None => known.remove(&oid),
                };
                replaced.extend(previous.map(|relation| (oid, relation)));
            }
        }
        self.read = Read { fresh, replaced };
        self.held = Some(held);
        Ok(())
    }

    /// Takes the scan counts an observation in a transaction block read into what the trace knows
    /// (see [`Counted`]), and gives the observation every table's.
    fn count(&mut self, held: &mut Held) {
        let mut counted = self.counted.take().unwrap_or_default();
        counted.scans.extend(held.seq_scans.drain());
        counted.proc_writes = held.proc_writes();
        held.seq_scans.clone_from(&counted.scans);
        self.counted = Some(counted);
    }

    async fn prepare_observations(&mut self) -> Result<Observations, Failure> {
        let follows_schema = !self.known.schema_unfollowed;
        let observations = Observations::prepare(self.client, follows_schema)
            .await
            .map_err(Failure::around)?;
        self.known.observations = Some(observations.clone());
        Ok(observations)
    }

    /// Sends [`NEW_SESSION`] when `new_session`, then sets the session's scan counts to zero, outside a
    /// transaction block (see [`FLUSH`]), and reads whether the server counts: then the first
    /// statement's transaction is known to hold nothing and to have counted nothing when it begins
    /// (see [`Tracer::held_before`]). When the counts cannot be flushed, the next observation reads
    /// every table's. All in one round trip once the observation is prepared; it is prepared after
    /// the reset, whose role decides whether the session may flush.
    async fn flush(&mut self, new_session: bool) {
        let client = self.client;
        let mut reset = new_session;
        let flushes = match &self.known.observations {
            Some(observations) => observations.flushes,
            None => {
                if std::mem::take(&mut reset) {
                    let _ = client.batch_execute(NEW_SESSION).await;
                }
                self.prepare_observations()
                    .await
                    .is_ok_and(|observations| observations.flushes)
            }
        };
        let reset_sent = async {
            if reset {
                let _ = client.batch_execute(NEW_SESSION).await;
            }
        };
        let (_, flushed, counting) = tokio::join!(
            reset_sent,
            flush_counts(client, flushes),
            client.simple_query(COUNTING)
        );
        self.counted = flushed.then(Counted::default);
        self.next = match (flushed, counting) {
            (true, Ok(messages)) => Some(Held {
                counting: first_value(&messages).as_deref() == Some("on"),
                ..Held::default()
            }),
            _ => None,
        };
    }

    /// Sends `lead`, the observation (of every relation when `whole`; in a savepoint when
    /// `in_block`) and what `ends` it together, and returns what the round trip gave. The
    /// observation reads every table's scan count when the trace does not know them in a
    /// transaction block, and the routines when it does not know whether one can roll back. When
    /// the observation fails, its savepoint is rolled back.
    async fn pipeline(
        &self,
        lead: Lead<'_, '_>,
        in_block: bool,
        observations: &Observations,
        whole: bool,
        ends: Ends,
    ) -> RoundTrip {
        let client = self.client;
        let query = match whole {
            true => &observations.whole,
            false => &observations.locked,
        };
        let every_scan = in_block && self.counted.is_none();
        let proc_writes = self.counted.as_ref().map_or(0, |c| c.proc_writes);
        let routines = self.known.routines_roll_back.is_none();
        let led = async {
            match lead {
                Lead::Nothing => (None, Ok(())),
                Lead::Begin => (
                    None,
                    client.batch_execute("BEGIN").await.map_err(Failure::around),
                ),
                Lead::Statement { statement, .. } => {
                    let started = Instant::now();
                    let outcome = self.script.run(client, statement).await;
                    (
                        Some(started.elapsed()),
                        outcome.map_err(Failure::as_written),
                    )
                }
            }
        };
        let begun = async {
            match lead {
                Lead::Statement { begin: true, .. } => client.batch_execute("BEGIN").await,
                _ => Ok(()),
            }
        };
        let savepoint = format!("SAVEPOINT {OBSERVE_SAVEPOINT}");
        let saved = async {
            match in_block {
                true => Some(client.batch_execute(&savepoint).await),
                false => None,
            }
        };
        let mut closing = match in_block {
            true => vec![format!("RELEASE SAVEPOINT {OBSERVE_SAVEPOINT}")],
            false => Vec::new(),
        };
        closing.extend(ends.commit.then(|| "COMMIT".to_owned()));
        let closing = closing.join("; ");
        let closed = async {
            match closing.is_empty() {
                true => Ok(()),
                false => client.batch_execute(&closing).await,
            }
        };
        let params: [&(dyn ToSql + Sync); 3] = [&every_scan, &proc_writes, &routines];
        // Polled in this order, the requests are sent in this order, in one round trip.
        let (begun, (duration, led), saved, observed, closed, flushed) = tokio::join!(
            begun,
            led,
            saved,
            client.query(query, &params),
            closed,
            flush_counts(client, ends.flush)
        );
        if let Err(failure) = begun.map_err(Failure::around).and(led) {
            return RoundTrip {
                duration,
                flushed,
                observed: Err(Unobserved::Lead(failure)),
            };
        }
        let observed = match observed {
            Ok(rows) => closed.map(|()| rows).map_err(Unobserved::Observation),
            Err(error) => match saved {
                Some(Ok(())) => match client
                    .batch_execute(&format!(
                        "ROLLBACK TO SAVEPOINT {OBSERVE_SAVEPOINT}; RELEASE SAVEPOINT {OBSERVE_SAVEPOINT}"
                    ))
                    .await
                {
                    Ok(()) => Err(Unobserved::Observation(error)),
                    Err(rollback) => Err(Unobserved::Lead(Failure::around(rollback))),
                },
                _ => Err(Unobserved::Observation(error)),
            },
        };
        RoundTrip {
            duration,
            flushed,
            observed,
        }
    }

    /// Records what the statement changed since `before`, against the session as just read.
    fn record(&mut self, trace: &mut StatementTrace, before: &Held) {
        let nothing_held = Held::default();
        let after = self.held.as_ref().unwrap_or(&nothing_held);
        record_changes(trace, before, after, &self.read);
        // Without a schema followed, the observation counts too few catalogs for a reach.
        self.reach = match self.known.schema_unfollowed {
            true => None,
            false => self.held.as_ref().map(|after| after.reach_since(before)),
        };
    }

    /// `EXPLAIN` of a DML statement, inside a savepoint so that a statement that cannot be planned
    /// fails as itself, not as an aborted transaction, after `BEGIN` when `begin` (which it then
    /// clears). `None` for other statements and for statements EXPLAIN rejects.
    async fn explain(
        &mut self,
        statement: &ScriptStatement<'_>,
        begin: &mut bool,
    ) -> Result<Option<Vec<String>>, tokio_postgres::Error> {
        if !is_dml(self.script, statement) {
            return Ok(None);
        }
        let begun = match std::mem::take(begin) {
            true => "BEGIN; ",
            false => "",
        };
        let query = format!(
            "{begun}SAVEPOINT {EXPLAIN_SAVEPOINT}; EXPLAIN (FORMAT TEXT) {}\n; RELEASE SAVEPOINT {EXPLAIN_SAVEPOINT}",
            statement.sql
        );
        match self.client.simple_query(&query).await {
            Ok(messages) => Ok(Some(
                rows(&messages)
                    .filter_map(|row| row.try_get(0).ok().flatten().map(str::to_owned))
                    .collect(),
            )),
            Err(error) if error.as_db_error().is_some() => {
                self.client
                    .batch_execute(&format!(
                        "ROLLBACK TO SAVEPOINT {EXPLAIN_SAVEPOINT}; RELEASE SAVEPOINT {EXPLAIN_SAVEPOINT}"
                    ))
                    .await?;
                // Planning may have run a function that scanned a table whose lock is gone now.
                self.counted = None;
                Ok(None)
            }
            Err(error) => Err(error),
        }
    }

    /// The applying backend's process id, which the monitor watches.
    async fn applier_pid(&mut self) -> Result<Option<i32>, tokio_postgres::Error> {
        if let Some(pid) = self.applier_pid {
            return Ok(pid);
        }
        let messages = self
            .client
            .simple_query("SELECT pg_catalog.pg_backend_pid()")
            .await?;
        let pid = first_value(&messages).and_then(|pid| pid.parse().ok());
        self.applier_pid = Some(pid);
        Ok(pid)
    }
}

/// Sends [`FLUSH`] when the session `flushes`; whether it did.
async fn flush_counts(client: &Client, flushes: bool) -> bool {
    flushes && client.batch_execute(FLUSH).await.is_ok()
}

/// What a trace says when the schema could not be read around its statement.
fn unread_schema(error: &tokio_postgres::Error) -> String {
    format!(
        "the schema could not be read around this statement on the shadow database ({error}), so \
         what it created, dropped or changed is not known; the next statement reads it whole again. \
         Run the review again; if this repeats, check the shadow server's log"
    )
}

/// The locks of one monitor sample.
fn read_sample(messages: &[SimpleQueryMessage]) -> BTreeSet<SampledLock> {
    rows(messages)
        .map(|row| {
            let field = |i: usize| row.try_get(i).ok().flatten();
            SampledLock {
                locktype: field(0).unwrap_or_default().to_owned(),
                relation: field(1).and_then(|oid| oid.parse().ok()),
                mode: field(2).unwrap_or_default().to_owned(),
                granted: field(3) == Some("true"),
            }
        })
        .collect()
}

/// The rows of a simple query's answer.
fn rows(messages: &[SimpleQueryMessage]) -> impl Iterator<Item = &SimpleQueryRow> {
    messages.iter().filter_map(|message| match message {
        SimpleQueryMessage::Row(row) => Some(row),
        _ => None,
    })
}

/// The first column of the first row, if there is one and it is not NULL.
fn first_value(messages: &[SimpleQueryMessage]) -> Option<String> {
    rows(messages)
        .next()
        .and_then(|row| row.try_get(0).ok().flatten())
        .map(str::to_owned)
}

/// What a lock the statement waited for means for the people using the database.
fn describe_wait(lock: &SampledLock, names: &Names) -> Option<String> {
    Some(match lock.locktype.as_str() {
        "virtualxid" => "older transactions (virtualxid)".to_owned(),
        "transactionid" => "another transaction's row changes (transactionid)".to_owned(),
        "relation" => format!("{} on {}", lock.mode, names.of(lock.relation?)?.relation),
        other => format!("{other} lock ({})", lock.mode),
    })
}

/// Statements migagent never wraps in a transaction: CONCURRENTLY and VACUUM cannot run in one, and
/// LOCK and DECLARE fail outside one, as they do in production.
fn runs_outside_transaction(statement: &ScriptStatement) -> bool {
    let class = &statement.statement.class;
    class.concurrently
        || class.kind == Kind::Vacuum
        || matches!(class.label.as_str(), "LOCK" | "DECLARE")
}

fn refuses_transaction_block(error: &tokio_postgres::Error) -> bool {
    error
        .code()
        .is_some_and(|code| NOT_IN_TRANSACTION_BLOCK.contains(&code.code()))
}

/// Data-changing statements whose plan says how they will touch the table: UPDATE, DELETE, MERGE,
/// and INSERT from a query (INSERT … VALUES has nothing to plan).
fn is_dml(script: &Script, statement: &ScriptStatement) -> bool {
    let class = &statement.statement.class;
    match class.kind {
        Kind::Update | Kind::Delete => true,
        Kind::Insert => script.has_keyword(statement, "select"),
        _ => class.label == "MERGE",
    }
}

/// A relation name quoted for SQL.
fn quoted(name: &ObjectName) -> String {
    let ident = |part: &str| format!("\"{}\"", part.replace('"', "\"\""));
    match &name.schema {
        Some(schema) => format!("{}.{}", ident(schema), ident(&name.name)),
        None => ident(&name.name),
    }
}
