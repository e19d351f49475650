//! Applying migrations on a real PostgreSQL server in their tool's transaction shape, and the
//! per-statement trace: the locks, rewrites and scans it reports agree with what PostgreSQL 15
//! takes (the lock-probe table below), transaction shapes behave as in production, and failures
//! stop the apply and name their statement.

mod common;

use migagent::migration::{Section, Transaction};
use migagent::shadow::apply::{apply, Script};
use migagent::shadow::cluster::EphemeralCluster;
use migagent::shadow::live_schema::{LiveSchema, Reach};
use migagent::shadow::snapshot::{diff, snapshot, SchemaChange};
use migagent::shadow::trace::{apply_traced, Known, StatementTrace};
use migagent::sql::{self, LineIndex, ParsedFile};
use tokio_postgres::Client;

/// A migration file with its sections, parsed as the review pipeline parses it.
struct Migration {
    text: String,
    sections: Vec<Section>,
    parsed: ParsedFile,
    lines: LineIndex,
}

impl Migration {
    /// One section of the whole text, run the way `transaction` says.
    fn new(text: &str, transaction: Transaction) -> Migration {
        let sections = vec![Section {
            range: 0..text.len(),
            transaction,
        }];
        Migration {
            text: text.to_owned(),
            parsed: sql::parse_text(text),
            lines: LineIndex::new(text),
            sections,
        }
    }

    fn plain(text: &str) -> Migration {
        Migration::new(text, Transaction::None)
    }

    fn wrapped(text: &str) -> Migration {
        Migration::new(text, Transaction::Wrapped)
    }

    fn script(&self) -> Script<'_> {
        Script::new(&self.text, &self.parsed, &self.sections, &self.lines)
    }
}

/// Creates database `name` (from `template` when given) and connects an applying session and a
/// monitor to it.
async fn database(
    cluster: &EphemeralCluster,
    admin: &Client,
    name: &str,
    template: Option<&str>,
) -> (Client, Client) {
    let create = match template {
        Some(template) => format!("CREATE DATABASE {name} TEMPLATE {template}"),
        None => format!("CREATE DATABASE {name}"),
    };
    admin
        .batch_execute(&create)
        .await
        .unwrap_or_else(|err| panic!("{create}: {err}"));
    (
        common::connect(cluster, name).await,
        common::connect(cluster, name).await,
    )
}

/// Whether a relation exists in the connected database.
async fn exists(client: &Client, relation: &str) -> bool {
    let row = client
        .query_one("SELECT to_regclass($1) IS NOT NULL", &[&relation])
        .await
        .unwrap();
    row.get(0)
}

/// The setup every probe case starts from (pg15-lock-probe.txt).
const PROBE_SETUP: &str = "
CREATE TABLE parent(id bigint PRIMARY KEY);
INSERT INTO parent SELECT g FROM generate_series(1,2000) g;
CREATE TABLE t(id bigint PRIMARY KEY, a int, b text, c varchar(20), ts timestamp, p bigint, n numeric(10,2), j jsonb);
INSERT INTO t SELECT g, g, 'b'||g, 'c'||g, now(), g, g, '{}' FROM generate_series(1,2000) g;
CREATE INDEX t_b_idx ON t(b);
CREATE INDEX t_c_idx ON t(c);
CREATE TYPE mood AS ENUM ('sad','ok');
CREATE TABLE pt(id int, k int) PARTITION BY RANGE (k);
CREATE TABLE pt_1 PARTITION OF pt FOR VALUES FROM (0) TO (100);
CREATE TABLE pt_2 (id int, k int);
INSERT INTO pt SELECT g, g%100 FROM generate_series(1,500) g;
CREATE MATERIALIZED VIEW mv AS SELECT id, a FROM t;
CREATE UNIQUE INDEX mv_id ON mv(id);
CREATE TABLE child(id bigint PRIMARY KEY, parent_id bigint);
INSERT INTO child SELECT g, g FROM generate_series(1,2000) g;
ALTER TABLE t ADD CONSTRAINT t_a_chk CHECK (a > 0) NOT VALID;
ALTER TABLE child ADD CONSTRAINT child_fk_nv FOREIGN KEY (parent_id) REFERENCES parent(id) NOT VALID;
ANALYZE;
";

/// One statement of the probe: what runs (committed) before it, and what PostgreSQL 15 takes for
/// it, in the probe's notation: `relation=Mode` without the `Lock` suffix, rewritten tables and
/// indexes together, `table+N` sequential scans, the waits the monitor saw.
///
/// The probe named relations by joining `pg_class` after the statement, so it lost the relations
/// a statement drops (the index of a dropped column, a dropped table's primary key) and named
/// renamed ones by their new name. The trace names relations from the catalog before the
/// statement; the cases marked "dropped" below list those locks, which the probe's query could not
/// see.
struct ProbeCase {
    name: &'static str,
    prelude: &'static str,
    sql: &'static str,
    locks: &'static str,
    rewritten: &'static str,
    scans: &'static str,
    waits: &'static str,
}

const fn case(
    name: &'static str,
    sql: &'static str,
    locks: &'static str,
    rewritten: &'static str,
    scans: &'static str,
) -> ProbeCase {
    ProbeCase {
        name,
        prelude: "",
        sql,
        locks,
        rewritten,
        scans,
        waits: "",
    }
}

const fn after(prelude: &'static str, case: ProbeCase) -> ProbeCase {
    ProbeCase { prelude, ..case }
}

const fn waiting(waits: &'static str, case: ProbeCase) -> ProbeCase {
    ProbeCase { waits, ..case }
}

const ALL_INDEXES: &str = "t t_b_idx t_c_idx t_pkey";
const REWRITE_LOCKS: &str =
    "t=AccessExclusive t=Share t_b_idx=AccessExclusive t_c_idx=AccessExclusive t_pkey=AccessExclusive";

const PROBE: &[ProbeCase] = &[
    case("add_column_nullable", "ALTER TABLE t ADD COLUMN x int", "t=AccessExclusive", "", ""),
    case(
        "add_column_const_default",
        "ALTER TABLE t ADD COLUMN x int NOT NULL DEFAULT 0",
        "t=AccessExclusive",
        "",
        "",
    ),
    case(
        "add_column_volatile_default",
        "ALTER TABLE t ADD COLUMN x timestamptz DEFAULT clock_timestamp()",
        REWRITE_LOCKS,
        ALL_INDEXES,
        "t+4",
    ),
    case(
        "add_column_inline_fk",
        "ALTER TABLE child ADD COLUMN x bigint REFERENCES parent(id)",
        "child=AccessExclusive child=AccessShare child=ShareRowExclusive parent=AccessShare parent=ShareRowExclusive",
        "",
        "",
    ),
    case(
        "add_column_inline_unique",
        "ALTER TABLE t ADD COLUMN x int UNIQUE",
        "t=AccessExclusive t=Share t_x_key=AccessExclusive",
        "",
        "t+1",
    ),
    // dropped: t_b_idx, the index of column b.
    case(
        "drop_column",
        "ALTER TABLE t DROP COLUMN b",
        "t=AccessExclusive t_b_idx=AccessExclusive",
        "",
        "",
    ),
    case("rename_column", "ALTER TABLE t RENAME COLUMN b TO b2", "t=AccessExclusive", "", ""),
    case("rename_table", "ALTER TABLE t RENAME TO t2", "t=AccessExclusive", "", ""),
    case("set_not_null", "ALTER TABLE t ALTER COLUMN a SET NOT NULL", "t=AccessExclusive", "", "t+1"),
    after(
        "ALTER TABLE t ADD CONSTRAINT a_nn CHECK (a IS NOT NULL) NOT VALID; ALTER TABLE t VALIDATE CONSTRAINT a_nn",
        case(
            "set_not_null_with_valid_check",
            "ALTER TABLE t ALTER COLUMN a SET NOT NULL",
            "t=AccessExclusive",
            "",
            "",
        ),
    ),
    after(
        "DROP MATERIALIZED VIEW mv",
        case(
            "type_int_to_bigint",
            "ALTER TABLE t ALTER COLUMN a TYPE bigint",
            REWRITE_LOCKS,
            ALL_INDEXES,
            "t+4",
        ),
    ),
    // dropped: the old t_c_idx (AccessShare, AccessExclusive); the new t_c_idx reuses its storage.
    case(
        "type_varchar_widen",
        "ALTER TABLE t ALTER COLUMN c TYPE varchar(100)",
        "t=AccessExclusive t=Share t_c_idx=AccessExclusive t_c_idx=AccessShare",
        "",
        "",
    ),
    case(
        "type_varchar_narrow",
        "ALTER TABLE t ALTER COLUMN c TYPE varchar(10)",
        REWRITE_LOCKS,
        ALL_INDEXES,
        "t+4",
    ),
    case(
        "type_numeric_widen",
        "ALTER TABLE t ALTER COLUMN n TYPE numeric(12,2)",
        "t=AccessExclusive",
        "",
        "",
    ),
    case(
        "type_collation_change",
        "ALTER TABLE t ALTER COLUMN b TYPE text COLLATE \"C\"",
        "t=AccessExclusive t=Share t_b_idx=AccessExclusive",
        "t_b_idx",
        "t+1",
    ),
    case(
        "add_check_valid",
        "ALTER TABLE t ADD CONSTRAINT x_chk CHECK (a > -1)",
        "t=AccessExclusive",
        "",
        "t+1",
    ),
    case(
        "add_check_not_valid",
        "ALTER TABLE t ADD CONSTRAINT x_chk CHECK (a > -1) NOT VALID",
        "t=AccessExclusive",
        "",
        "",
    ),
    case(
        "validate_check",
        "ALTER TABLE t VALIDATE CONSTRAINT t_a_chk",
        "t=ShareUpdateExclusive",
        "",
        "t+1",
    ),
    case(
        "add_fk_valid",
        "ALTER TABLE child ADD CONSTRAINT x_fk FOREIGN KEY (parent_id) REFERENCES parent(id)",
        "child=AccessShare child=ShareRowExclusive child_pkey=AccessShare parent=AccessShare parent=RowShare parent=ShareRowExclusive parent_pkey=AccessShare",
        "",
        "child+1 parent+1",
    ),
    case(
        "add_fk_not_valid",
        "ALTER TABLE child ADD CONSTRAINT x_fk FOREIGN KEY (parent_id) REFERENCES parent(id) NOT VALID",
        "child=AccessShare child=ShareRowExclusive parent=AccessShare parent=ShareRowExclusive",
        "",
        "",
    ),
    case(
        "validate_fk",
        "ALTER TABLE child VALIDATE CONSTRAINT child_fk_nv",
        "child=AccessShare child=ShareUpdateExclusive child_pkey=AccessShare parent=AccessShare parent=RowShare parent_pkey=AccessShare",
        "",
        "child+1 parent+1",
    ),
    case(
        "add_unique_constraint",
        "ALTER TABLE t ADD CONSTRAINT x_uq UNIQUE (a)",
        "t=AccessExclusive t=Share x_uq=AccessExclusive",
        "",
        "t+1",
    ),
    after(
        "ALTER TABLE child DROP CONSTRAINT child_pkey; CREATE UNIQUE INDEX ch_pk ON child(parent_id)",
        case(
            "add_pk_using_index_nullable",
            "ALTER TABLE child ADD PRIMARY KEY USING INDEX ch_pk",
            "ch_pk=AccessShare child=AccessExclusive",
            "",
            "child+1",
        ),
    ),
    case(
        "drop_constraint_fk",
        "ALTER TABLE child DROP CONSTRAINT child_fk_nv",
        "child=AccessExclusive parent=AccessExclusive",
        "",
        "",
    ),
    case(
        "create_index",
        "CREATE INDEX x_idx ON t(a)",
        "t=Share x_idx=AccessExclusive",
        "",
        "t+1",
    ),
    // dropped: t_b_idx.
    case(
        "drop_index",
        "DROP INDEX t_b_idx",
        "t=AccessExclusive t_b_idx=AccessExclusive",
        "",
        "",
    ),
    case(
        "reindex_index",
        "REINDEX INDEX t_b_idx",
        "t=Share t_b_idx=AccessExclusive",
        "t_b_idx",
        "t+1",
    ),
    after(
        "CREATE FUNCTION f() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NEW; END'",
        case(
            "create_trigger",
            "CREATE TRIGGER trg BEFORE INSERT ON t FOR EACH ROW EXECUTE FUNCTION f()",
            "t=ShareRowExclusive",
            "",
            "",
        ),
    ),
    case(
        "set_statistics",
        "ALTER TABLE t ALTER COLUMN a SET STATISTICS 500",
        "t=ShareUpdateExclusive",
        "",
        "",
    ),
    case(
        "set_fillfactor",
        "ALTER TABLE t SET (fillfactor = 70)",
        "t=ShareUpdateExclusive",
        "",
        "",
    ),
    case("set_unlogged", "ALTER TABLE t SET UNLOGGED", REWRITE_LOCKS, ALL_INDEXES, "t+4"),
    case(
        "cluster",
        "CLUSTER t USING t_pkey",
        "t=AccessExclusive t=Share t_b_idx=AccessExclusive t_b_idx=AccessShare t_c_idx=AccessExclusive t_c_idx=AccessShare t_pkey=AccessExclusive t_pkey=AccessShare",
        ALL_INDEXES,
        "t+3",
    ),
    case("truncate", "TRUNCATE t CASCADE", REWRITE_LOCKS, ALL_INDEXES, "t+3"),
    // dropped: child and child_pkey.
    case(
        "drop_table",
        "DROP TABLE child",
        "child=AccessExclusive child_pkey=AccessExclusive parent=AccessExclusive",
        "",
        "",
    ),
    case(
        "refresh_matview",
        "REFRESH MATERIALIZED VIEW mv",
        "mv=AccessExclusive mv=AccessShare mv=Exclusive mv=Share mv_id=AccessExclusive t=AccessShare t_b_idx=AccessShare t_c_idx=AccessShare t_pkey=AccessShare",
        "mv mv_id",
        "mv+1 t+1",
    ),
    case("comment_on", "COMMENT ON TABLE t IS 'x'", "t=ShareUpdateExclusive", "", ""),
    case(
        "attach_partition",
        "ALTER TABLE pt ATTACH PARTITION pt_2 FOR VALUES FROM (100) TO (200)",
        "pt=ShareUpdateExclusive pt_2=AccessExclusive",
        "",
        "pt_2+1",
    ),
    case(
        "detach_partition",
        "ALTER TABLE pt DETACH PARTITION pt_1",
        "pt=AccessExclusive pt_1=AccessExclusive",
        "",
        "",
    ),
    case(
        "create_index_on_partitioned",
        "CREATE INDEX x_pidx ON pt(k)",
        "pt=Share pt_1=Share pt_1_k_idx=AccessExclusive x_pidx=AccessExclusive x_pidx=ShareUpdateExclusive",
        "",
        "pt_1+1",
    ),
    case("alter_enum_add_value", "ALTER TYPE mood ADD VALUE 'happy'", "", "", ""),
    case(
        "update_backfill",
        "UPDATE t SET a = a + 1",
        "t=RowExclusive t_b_idx=RowExclusive t_c_idx=RowExclusive t_pkey=RowExclusive",
        "",
        "t+1",
    ),
    case(
        "create_view",
        "CREATE VIEW v AS SELECT * FROM t",
        "t=AccessShare v=AccessExclusive",
        "",
        "",
    ),
    after(
        "CREATE SEQUENCE s1",
        case(
            "add_column_default_nextval",
            "ALTER TABLE t ADD COLUMN x bigint DEFAULT nextval('s1')",
            "s1=RowExclusive t=AccessExclusive t=Share t_b_idx=AccessExclusive t_c_idx=AccessExclusive t_pkey=AccessExclusive",
            ALL_INDEXES,
            "t+4",
        ),
    ),
    waiting(
        "older transactions (virtualxid)",
        case(
            "create_index_concurrently",
            "CREATE INDEX CONCURRENTLY x_idx ON t(a)",
            "t=ShareUpdateExclusive",
            "",
            "",
        ),
    ),
    waiting(
        "older transactions (virtualxid)",
        case(
            "drop_index_concurrently",
            "DROP INDEX CONCURRENTLY t_b_idx",
            "t=ShareUpdateExclusive t_b_idx=ShareUpdateExclusive",
            "",
            "",
        ),
    ),
    waiting(
        "AccessExclusiveLock on public.t",
        case("vacuum_full", "VACUUM FULL t", "t=AccessExclusive", ALL_INDEXES, ""),
    ),
];

/// `public.t` → `t`, `AccessExclusiveLock` → `AccessExclusive`, as the probe writes them.
fn short(relation: &str) -> &str {
    relation.strip_prefix("public.").unwrap_or(relation)
}

/// The trace in the probe's notation: locks, rewritten relations, scans, waits.
fn probe_notation(trace: &StatementTrace) -> [String; 4] {
    let locks: Vec<String> = trace
        .locks
        .iter()
        .map(|lock| {
            let mode = lock.mode.strip_suffix("Lock").unwrap_or(&lock.mode);
            format!("{}={mode}", short(&lock.relation))
        })
        .collect();
    let mut rewritten: Vec<&str> = trace
        .rewrites
        .iter()
        .chain(&trace.rebuilt_indexes)
        .map(|relation| short(relation))
        .collect();
    rewritten.sort();
    let scans: Vec<String> = trace
        .scans
        .iter()
        .map(|scan| format!("{}+{}", short(&scan.relation), scan.seq_scans))
        .collect();
    [
        locks.join(" "),
        rewritten.join(" "),
        scans.join(" "),
        trace.waits.join(", "),
    ]
}

#[test]
fn traced_locks_rewrites_and_scans_agree_with_the_pg15_lock_probe() {
    let Some(cluster) = common::cluster_or_skip() else {
        return;
    };
    common::runtime().block_on(async {
        let admin = common::connect(&cluster, "postgres").await;
        let (template, _) = database(&cluster, &admin, "probe_template", None).await;
        template.batch_execute(PROBE_SETUP).await.unwrap();
        drop(template);
        let mut disagreements = Vec::new();
        for (n, case) in PROBE.iter().enumerate() {
            let (client, monitor) = database(
                &cluster,
                &admin,
                &format!("probe_{n}"),
                Some("probe_template"),
            )
            .await;
            if !case.prelude.is_empty() {
                client
                    .batch_execute(case.prelude)
                    .await
                    .unwrap_or_else(|err| panic!("{}: prelude: {err}", case.name));
            }
            let migration = Migration::plain(case.sql);
            let traces = trace(&client, &monitor, &migration).await;
            assert_eq!(traces.len(), 1, "{}", case.name);
            let trace = &traces[0];
            assert!(trace.applied, "{}: {:?}", case.name, trace.error);
            let expected = [case.locks, case.rewritten, case.scans, case.waits].map(String::from);
            let actual = probe_notation(trace);
            if actual != expected {
                disagreements.push(format!(
                    "{}:\n  expected {expected:?}\n  traced   {actual:?}",
                    case.name
                ));
            }
        }
        assert!(
            disagreements.is_empty(),
            "{} of {} cases disagree:\n{}",
            disagreements.len(),
            PROBE.len(),
            disagreements.join("\n")
        );
    });
}

/// A fresh database `shadow` holding `setup`, with an applying session and a monitor.
async fn shadow(cluster: &EphemeralCluster, setup: &str) -> (Client, Client) {
    let admin = common::connect(cluster, "postgres").await;
    let (client, monitor) = database(cluster, &admin, "shadow", None).await;
    client
        .batch_execute(setup)
        .await
        .unwrap_or_else(|err| panic!("{setup}: {err}"));
    (client, monitor)
}

/// Whether the session is outside a transaction block: CONCURRENTLY refuses to run inside one.
async fn outside_transaction(client: &Client) -> bool {
    let probe = client
        .batch_execute("CREATE INDEX CONCURRENTLY IF NOT EXISTS outside_probe ON probe_table (id)")
        .await;
    probe.is_ok()
}

/// The traces of `migration` applied on `client`, with nothing known of the schema beforehand.
async fn trace(client: &Client, monitor: &Client, migration: &Migration) -> Vec<StatementTrace> {
    apply_traced(client, monitor, &migration.script(), &mut Known::default()).await
}

fn lock_pairs(trace: &StatementTrace) -> Vec<(&str, &str)> {
    trace
        .locks
        .iter()
        .map(|lock| (lock.relation.as_str(), lock.mode.as_str()))
        .collect()
}

#[test]
fn history_apply_runs_a_thousand_statements_and_names_the_failing_one() {
    let Some(cluster) = common::cluster_or_skip() else {
        return;
    };
    common::runtime().block_on(async {
        let (client, monitor) = shadow(&cluster, "").await;
        let mut history = String::new();
        for n in 0..200 {
            history.push_str(&format!(
                "CREATE TABLE t{n} (id bigint PRIMARY KEY, a int, b text);\n\
                 CREATE INDEX t{n}_a ON t{n} (a);\n\
                 ALTER TABLE t{n} ADD COLUMN c int DEFAULT 0;\n\
                 INSERT INTO t{n} (id, a, b) VALUES (1, 1, 'x');\n\
                 COMMENT ON TABLE t{n} IS 'table {n}';\n"
            ));
        }
        for (name, migration) in [
            ("autocommit", Migration::plain(&history)),
            ("wrapped", Migration::wrapped(&history)),
        ] {
            client
                .batch_execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
                .await
                .unwrap();
            let summary = apply(&client, &migration.script()).await.unwrap();
            assert_eq!(summary.applied, 1000);
            eprintln!(
                "history apply ({name}): {} statements in {:?}, {:.0} statements/s",
                summary.applied,
                summary.elapsed,
                summary.applied as f64 / summary.elapsed.as_secs_f64()
            );
            assert!(exists(&client, "t199_a").await);
        }

        // The traced apply of a 100-statement migration on top of that history (about 800
        // relations the trace reads before and after each statement).
        let reviewed: String = (0..100)
            .map(|n| format!("ALTER TABLE t{n} ADD COLUMN d int;\n"))
            .collect();
        let reviewed = Migration::plain(&reviewed);
        let started = std::time::Instant::now();
        let traces = trace(&client, &monitor, &reviewed).await;
        let elapsed = started.elapsed();
        assert!(traces.iter().all(|t| t.applied && t.locks.len() == 1));
        let in_statements: std::time::Duration = traces.iter().map(|t| t.duration).sum();
        eprintln!(
            "traced apply: {} statements in {elapsed:?} ({:?} per statement, {in_statements:?} of it in the statements)",
            traces.len(),
            elapsed / traces.len() as u32
        );

        let migration = Migration::plain("CREATE TABLE users (id int);\n\nCREATE TABLE users (id int);\n");
        let error = apply(&client, &migration.script()).await.unwrap_err();
        assert_eq!((error.statement, error.line), (1, 3));
        assert_eq!(
            error.to_string(),
            "line 3: ERROR 42P07: relation \"users\" already exists"
        );

        // The server's error cursor is mapped to the file.
        let migration = Migration::plain("SELECT 1;\nUPDATE users\n   SET nosuch = 1;");
        let error = apply(&client, &migration.script()).await.unwrap_err();
        assert_eq!((error.statement, error.line, error.sqlstate.as_str()), (1, 2, "42703"));
        assert_eq!(
            error.to_string(),
            "line 3, column 8: ERROR 42703: column \"nosuch\" of relation \"users\" does not exist"
        );
    });
}

#[test]
fn wrapped_sections_apply_atomically_and_roll_back_on_failure() {
    let Some(cluster) = common::cluster_or_skip() else {
        return;
    };
    common::runtime().block_on(async {
        let (client, monitor) = shadow(&cluster, "CREATE TABLE probe_table (id int)").await;
        let failing = Migration::wrapped(
            "CREATE TABLE a (id int);\nCREATE TABLE b (id int);\nCREATE TABLE a (id int);",
        );
        let error = apply(&client, &failing.script()).await.unwrap_err();
        assert_eq!(
            (error.statement, error.line, error.sqlstate.as_str()),
            (2, 3, "42P07")
        );
        assert!(!exists(&client, "a").await && !exists(&client, "b").await);
        assert!(
            outside_transaction(&client).await,
            "the failed transaction is rolled back"
        );

        let traces = trace(&client, &monitor, &failing).await;
        assert!(traces[0].applied && traces[0].rolled_back);
        assert!(traces[1].applied && traces[1].rolled_back);
        let error = traces[2].error.as_ref().unwrap();
        assert_eq!(error.sqlstate, "42P07");
        assert!(!traces[2].applied);
        assert!(!exists(&client, "a").await && !exists(&client, "b").await);
        assert!(outside_transaction(&client).await);

        let succeeding = Migration::wrapped("CREATE TABLE a (id int);\nCREATE TABLE b (id int);");
        let traces = trace(&client, &monitor, &succeeding).await;
        assert!(traces
            .iter()
            .all(|t| t.applied && !t.rolled_back && t.error.is_none()));
        assert!(exists(&client, "a").await && exists(&client, "b").await);
        assert!(outside_transaction(&client).await, "the tool's COMMIT ran");
    });
}

#[test]
fn concurrently_inside_a_transaction_fails_as_in_production_and_runs_outside_one() {
    let Some(cluster) = common::cluster_or_skip() else {
        return;
    };
    common::runtime().block_on(async {
        let (client, monitor) = shadow(&cluster, "CREATE TABLE a (id int, b int)").await;
        let sql = "ALTER TABLE a ADD COLUMN c int;\nCREATE INDEX CONCURRENTLY a_b ON a (b);";
        for transaction in [Transaction::Wrapped, Transaction::ImplicitMultiStatement] {
            let migration = Migration::new(sql, transaction);
            let error = apply(&client, &migration.script()).await.unwrap_err();
            assert_eq!((error.statement, error.sqlstate.as_str()), (1, "25001"));
            let traces = trace(&client, &monitor, &migration).await;
            assert_eq!(
                traces[1].error.as_ref().map(|e| e.message.as_str()),
                Some("CREATE INDEX CONCURRENTLY cannot run inside a transaction block")
            );
            assert!(traces[0].rolled_back);
            assert!(!exists(&client, "a_b").await);
        }

        // A lone statement of a multi-statement tool runs outside a transaction, and so does every
        // statement of a plain file.
        let alone = Migration::new(
            "CREATE INDEX CONCURRENTLY a_b ON a (b)",
            Transaction::ImplicitMultiStatement,
        );
        let traces = trace(&client, &monitor, &alone).await;
        assert!(traces[0].applied, "{:?}", traces[0].error);
        assert!(traces[0].sampled);
        assert_eq!(traces[0].waits, ["older transactions (virtualxid)"]);
        assert!(lock_pairs(&traces[0]).contains(&("public.a", "ShareUpdateExclusiveLock")));

        // Statements the server refuses inside a transaction block are retried as written.
        let create_database = Migration::plain("CREATE DATABASE made_by_migration");
        let traces = trace(&client, &monitor, &create_database).await;
        assert!(
            traces[0].applied && traces[0].sampled,
            "{:?}",
            traces[0].error
        );
    });
}

#[test]
fn a_files_own_begin_and_commit_are_honoured() {
    let Some(cluster) = common::cluster_or_skip() else {
        return;
    };
    common::runtime().block_on(async {
        let (client, monitor) = shadow(&cluster, "CREATE TABLE probe_table (id int)").await;
        let migration = Migration::plain(
            "CREATE TABLE a (id int);\nBEGIN;\nALTER TABLE a ADD COLUMN b int;\n\
             CREATE INDEX CONCURRENTLY a_b ON a (b);\nCOMMIT;",
        );
        let error = apply(&client, &migration.script()).await.unwrap_err();
        assert_eq!(
            (error.statement, error.line, error.sqlstate.as_str()),
            (3, 4, "25001")
        );
        assert!(exists(&client, "a").await, "autocommitted before the BEGIN");
        let columns = client
            .query_one(
                "SELECT count(*) FROM pg_attribute WHERE attrelid = 'a'::regclass AND attnum > 0",
                &[],
            )
            .await
            .unwrap();
        assert_eq!(
            columns.get::<_, i64>(0),
            1,
            "the file's transaction was rolled back"
        );
        assert!(outside_transaction(&client).await);

        // Never committed: rolled back when the file ends, as psql's session ends.
        let uncommitted = Migration::plain("BEGIN;\nCREATE TABLE never (id int);");
        let summary = apply(&client, &uncommitted.script()).await.unwrap();
        assert_eq!(summary.rolled_back_uncommitted, [0]);
        assert!(!exists(&client, "never").await);
        let traces = trace(&client, &monitor, &uncommitted).await;
        assert!(traces[1].applied && traces[1].rolled_back);
        assert!(!exists(&client, "never").await);

        // A file's ROLLBACK undoes its transaction; SET TRANSACTION still comes first in it.
        let rolled_back = Migration::plain(
            "BEGIN;\nSET TRANSACTION ISOLATION LEVEL SERIALIZABLE;\nCREATE TABLE undone (id int);\nROLLBACK;",
        );
        let traces = trace(&client, &monitor, &rolled_back).await;
        assert!(traces.iter().all(|t| t.applied), "{traces:?}");
        assert!(traces[2].rolled_back && !traces[3].rolled_back);
        assert_eq!(lock_pairs(&traces[2]), [("public.undone", "AccessExclusiveLock")]);
        assert!(!exists(&client, "undone").await);
        let serializable = Migration::wrapped(
            "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE;\nCREATE TABLE kept (id int);",
        );
        let traces = trace(&client, &monitor, &serializable).await;
        assert!(traces.iter().all(|t| t.applied), "{traces:?}");
        assert!(exists(&client, "kept").await);

        // psql meta-commands are not sent.
        let meta = Migration::plain("\\set ON_ERROR_STOP on\nCREATE TABLE m (id int);");
        let summary = apply(&client, &meta.script()).await.unwrap();
        assert_eq!(
            (summary.applied, summary.skipped_psql_meta.as_slice()),
            (1, &[0][..])
        );
        let traces = trace(&client, &monitor, &meta).await;
        assert!(!traces[0].applied && traces[0].not_applied.as_deref().unwrap().contains("psql"));
    });
}

#[test]
fn locks_inside_a_transaction_are_charged_to_the_statement_that_took_them() {
    let Some(cluster) = common::cluster_or_skip() else {
        return;
    };
    common::runtime().block_on(async {
        let (client, monitor) = shadow(
            &cluster,
            "CREATE TABLE t (id bigint PRIMARY KEY, a int);\
             INSERT INTO t SELECT g, g FROM generate_series(1, 1000) g;",
        )
        .await;
        let migration = Migration::plain(
            "BEGIN;\nALTER TABLE t ADD COLUMN x int;\nCREATE INDEX t_a_idx ON t (a);\n\
             ALTER TABLE t ADD COLUMN y int;\nALTER TABLE t ALTER COLUMN a SET NOT NULL;\nCOMMIT;",
        );
        let traces = trace(&client, &monitor, &migration).await;
        assert!(
            traces.iter().all(|t| t.applied && !t.rolled_back),
            "{traces:?}"
        );
        assert_eq!(
            lock_pairs(&traces[1]),
            [("public.t", "AccessExclusiveLock")]
        );
        assert_eq!(
            lock_pairs(&traces[2]),
            [
                ("public.t", "ShareLock"),
                ("public.t_a_idx", "AccessExclusiveLock")
            ]
        );
        assert_eq!(traces[2].scans.len(), 1);
        // Already held by the transaction: nothing new to queue for.
        assert_eq!(lock_pairs(&traces[3]), []);
        // SET NOT NULL scans the table even inside the transaction that holds its lock.
        assert_eq!(lock_pairs(&traces[4]), []);
        assert_eq!(
            traces[4]
                .scans
                .iter()
                .map(|s| (s.relation.as_str(), s.seq_scans))
                .collect::<Vec<_>>(),
            [("public.t", 1)]
        );
        assert!(exists(&client, "t_a_idx").await);
    });
}

#[test]
fn the_first_failure_stops_the_traced_apply() {
    let Some(cluster) = common::cluster_or_skip() else {
        return;
    };
    common::runtime().block_on(async {
        let (client, monitor) = shadow(&cluster, "").await;
        let migration = Migration::plain(
            "CREATE TABLE a (id int);\nALTER TABLE missing ADD COLUMN x int;\nCREATE TABLE b (id int);",
        );
        let traces = trace(&client, &monitor, &migration).await;
        assert!(traces[0].applied && !traces[0].rolled_back);
        assert_eq!(
            traces[1].error.as_ref().map(ToString::to_string).as_deref(),
            Some("line 2: ERROR 42P01: relation \"missing\" does not exist")
        );
        assert!(!traces[2].applied);
        assert!(traces[2]
            .not_applied
            .as_deref()
            .unwrap()
            .starts_with("the statement on line 2 failed first"));
        assert!(exists(&client, "a").await && !exists(&client, "b").await);

        // The contract's shape.
        let json = serde_json::to_value(&traces[1]).unwrap();
        assert_eq!(json["error"], "42P01: relation \"missing\" does not exist");
        assert_eq!(json["locks"], serde_json::json!([]));
        let json = serde_json::to_value(&traces[0]).unwrap();
        assert_eq!(json["error"], serde_json::Value::Null);
        assert_eq!(json["rewrites"], serde_json::json!([]));

        // A deferred constraint fails at the tool's COMMIT: the section's last statement fails.
        let deferred = Migration::wrapped(
            "CREATE TABLE p (id int PRIMARY KEY);\n\
             CREATE TABLE c (p int REFERENCES p DEFERRABLE INITIALLY DEFERRED);\n\
             INSERT INTO c VALUES (1);",
        );
        let error = apply(&client, &deferred.script()).await.unwrap_err();
        assert_eq!((error.statement, error.sqlstate.as_str()), (2, "23503"));
        let traces = trace(&client, &monitor, &deferred).await;
        assert_eq!(traces[2].error.as_ref().map(|e| e.sqlstate.as_str()), Some("23503"));
        assert!(traces[..2].iter().all(|t| t.applied && t.rolled_back));
        assert!(!exists(&client, "p").await);
    });
}

#[test]
fn explain_shows_the_plan_of_a_backfill() {
    let Some(cluster) = common::cluster_or_skip() else {
        return;
    };
    common::runtime().block_on(async {
        let (client, monitor) = shadow(
            &cluster,
            "CREATE TABLE t (id bigint PRIMARY KEY, a int);\
             INSERT INTO t SELECT g, NULL FROM generate_series(1, 1000) g; ANALYZE t;",
        )
        .await;
        let migration = Migration::wrapped(
            "ALTER TABLE t ADD COLUMN b int;\nUPDATE t SET a = 0 WHERE a IS NULL;\n\
             INSERT INTO t SELECT id + 1000, a FROM t;\nDELETE FROM t WHERE id > 1500;",
        );
        let traces = trace(&client, &monitor, &migration).await;
        assert!(traces.iter().all(|t| t.applied), "{traces:?}");
        assert_eq!(traces[0].plan, None);
        let plan = traces[1].plan.as_ref().unwrap();
        assert!(plan[0].starts_with("Update on t"), "{plan:?}");
        assert!(
            plan.iter().any(|line| line.contains("Seq Scan on t")),
            "{plan:?}"
        );
        assert!(traces[2].plan.as_ref().unwrap()[0].starts_with("Insert on t"));
        assert!(traces[3].plan.as_ref().unwrap()[0].starts_with("Delete on t"));
        // The plan's own locks are the statement's: the UPDATE is charged with them.
        assert!(lock_pairs(&traces[1]).contains(&("public.t", "RowExclusiveLock")));
        assert_eq!(traces[1].scans[0].seq_scans, 1);
    });
}

/// Relation names in the trace come with their parts, read from the catalog separately: a table
/// whose name holds a dot is told from a table in another schema.
#[test]
fn traced_relations_carry_their_schema_and_name_apart() {
    let Some(cluster) = common::cluster_or_skip() else {
        return;
    };
    common::runtime().block_on(async {
        let (client, monitor) = shadow(
            &cluster,
            "CREATE TABLE \"a.b\" (id int); INSERT INTO \"a.b\" VALUES (1);",
        )
        .await;
        let migration = Migration::plain(
            "ALTER TABLE \"a.b\" ALTER COLUMN id TYPE bigint;\nALTER TABLE \"a.b\" ADD CHECK (id > 0);\n",
        );
        let traces = trace(&client, &monitor, &migration).await;
        assert!(traces.iter().all(|t| t.applied), "{traces:?}");
        let rewrite = &traces[0];
        assert_eq!(rewrite.rewrites, ["public.a.b"]);
        let parts: Vec<(&str, &str, &str)> = rewrite
            .rewritten
            .iter()
            .map(|r| (r.relation.as_str(), r.schema.as_str(), r.name.as_str()))
            .collect();
        assert_eq!(parts, [("public.a.b", "public", "a.b")]);
        let lock = &rewrite.locks[0];
        assert_eq!((lock.schema.as_str(), lock.name.as_str()), ("public", "a.b"));
        let scan = &traces[1].scans[0];
        assert_eq!((scan.relation.as_str(), scan.schema.as_str(), scan.name.as_str()), ("public.a.b", "public", "a.b"));
    });
}

/// Migrations applied one after the other with one [`Known`], as a directory is reviewed: each
/// statement's schema changes, read only where the statement can have changed the schema, are
/// those of whole snapshots taken around the same statement on a second database. The statements
/// reach beyond the relations they lock: renames printed in views, foreign keys and defaults of
/// other tables, enum labels, a renamed function, schema and type, a dropped cascade, domains.
#[test]
fn schema_changes_read_where_a_statement_reaches_equal_whole_snapshot_diffs() {
    let Some(cluster) = common::cluster_or_skip() else {
        return;
    };
    assert_changes_equal_whole_snapshot_diffs(&cluster, &reaching_migrations());
}

/// After a statement under ACCESS EXCLUSIVE that leaves a table's name and columns as its
/// dependents print them (a column added after them, a default set), what depends on it is not
/// read again; after a column renamed it is. The dependent is changed behind the trace's back, so
/// that only a read of it sees the change.
#[test]
fn dependents_are_read_again_only_when_the_names_they_print_changed() {
    let Some(cluster) = common::cluster_or_skip() else {
        return;
    };
    common::runtime().block_on(async {
        let admin = common::connect(&cluster, "postgres").await;
        let (client, _) = database(&cluster, &admin, "printed", None).await;
        client
            .batch_execute(
                "CREATE TABLE users (id int PRIMARY KEY, email text);
                 CREATE TABLE orders (id int, user_id int REFERENCES users (id));",
            )
            .await
            .unwrap();
        let mut live = LiveSchema::read(&client).await.unwrap();
        let users: u32 = client
            .query_one("SELECT 'users'::regclass::oid", &[])
            .await
            .unwrap()
            .get(0);
        // What the trace observes of the statement on `users` (the change to `orders` beside it
        // is not traced).
        let reach = Reach::Scoped {
            locked: vec![users],
            exclusive: vec![users],
            written: None,
            types: false,
            constraints: false,
            functions: false,
            schemas: false,
        };
        let mut changed = async |statements: &str| {
            client.batch_execute(statements).await.unwrap();
            let (changes, _) = live.update(&client, reach.clone(), false).await.unwrap();
            let names: Vec<String> = changes.into_iter().map(|change| change.name).collect();
            names
        };
        let names = changed(
            "ALTER TABLE users ADD COLUMN age int, ALTER COLUMN email SET DEFAULT 'x';
             ALTER TABLE orders ADD COLUMN note text",
        )
        .await;
        assert_eq!(names, ["public.users.email", "public.users.age"]);
        let names = changed(
            "ALTER TABLE users RENAME COLUMN id TO user_no;
             ALTER TABLE orders ADD COLUMN remark text",
        )
        .await;
        for name in [
            "public.users.user_no",
            "public.orders.note",
            "public.orders.remark",
        ] {
            assert!(names.contains(&name.to_owned()), "{name} in {names:?}");
        }
    });
}

/// Migrations whose statements reach beyond the relations they lock (see above).
fn reaching_migrations() -> [Migration; 5] {
    [
        Migration::plain(
            "CREATE SCHEMA app;
CREATE TYPE app.mood AS ENUM ('a', 'b');
CREATE TABLE app.users (id bigserial PRIMARY KEY, mood app.mood DEFAULT 'a', email text);
CREATE TABLE app.orders (id int PRIMARY KEY, user_id bigint REFERENCES app.users (id));
CREATE VIEW app.v AS SELECT u.email, o.id FROM app.users u JOIN app.orders o ON o.user_id = u.id;
CREATE FUNCTION app.f() RETURNS int LANGUAGE sql AS 'SELECT 1';
CREATE TABLE app.t3 (x int DEFAULT app.f(), n bigint DEFAULT nextval('app.users_id_seq'));
CREATE TYPE app.pair AS (a int, b text);
CREATE TABLE app.holder (p app.pair, ps app.pair[]);
CREATE FUNCTION app.count_users() RETURNS bigint LANGUAGE sql BEGIN ATOMIC SELECT count(*) FROM app.users; END;
ALTER TABLE app.users ENABLE ROW LEVEL SECURITY;
CREATE POLICY own ON app.orders USING (user_id IN (SELECT id FROM app.users));
",
        ),
        Migration::plain(
            "INSERT INTO app.users (email) VALUES ('x');
ALTER TABLE app.users RENAME COLUMN email TO mail;
ALTER TABLE app.users RENAME TO people;
ALTER SEQUENCE app.users_id_seq RENAME TO people_id_seq;
ALTER TYPE app.mood ADD VALUE 'c';
ALTER TYPE app.mood RENAME VALUE 'a' TO 'z';
ALTER FUNCTION app.f() RENAME TO g;
CREATE INDEX ON app.orders (user_id);
ALTER TABLE app.t3 ALTER COLUMN x TYPE bigint;
ALTER TYPE app.pair RENAME TO couple;
COMMENT ON TABLE app.orders IS 'orders';
",
        ),
        Migration::wrapped(
            "ALTER TABLE app.orders ADD COLUMN q int;
ALTER TABLE app.orders ADD COLUMN r int;
CREATE VIEW app.ov AS SELECT * FROM app.orders;
ALTER TABLE app.orders RENAME COLUMN q TO qq;
UPDATE app.orders SET r = 1;
",
        ),
        // In one transaction: weaker locks first (which change only the relation's own parts, so
        // what depends on it is not read again), then a rename under ACCESS EXCLUSIVE of a table
        // they had locked, which a foreign key of another table prints.
        Migration::wrapped(
            "CREATE TABLE app.items (id int, order_id int);
ALTER TABLE app.items ADD CONSTRAINT items_order FOREIGN KEY (order_id) REFERENCES app.orders (id) NOT VALID;
ALTER INDEX app.orders_pkey RENAME TO orders_key;
ALTER TABLE app.items VALIDATE CONSTRAINT items_order;
ALTER TABLE app.orders ALTER COLUMN r SET STATISTICS 100;
CREATE INDEX orders_r ON app.orders (r);
ALTER TABLE app.orders RENAME COLUMN id TO order_no;
",
        ),
        Migration::plain(
            "ALTER SCHEMA app RENAME TO core;
DROP TABLE core.people CASCADE;
CREATE DOMAIN core.pos AS int CHECK (VALUE > 0);
CREATE TABLE core.d (p core.pos);
ALTER DOMAIN core.pos ADD CONSTRAINT small CHECK (VALUE < 1000);
ALTER TYPE core.mood RENAME TO feeling;
DROP FUNCTION core.g() CASCADE;
CREATE EXTENSION IF NOT EXISTS plpgsql;
",
        ),
    ]
}

/// Inside one transaction every statement after the first reads again only the relations whose
/// catalog rows it wrote (or that it locked first), not all those the transaction holds: a second
/// ALTER of a table already locked, a column added to another, renames printed in a view and a
/// foreign key, an owned sequence's owner changed (only `pg_depend` written), drops (which leave no
/// row to tell whose they were, so everything held is read), statements in a savepoint's
/// subtransaction, and a subtransaction rolled back inside a DO block. Each statement's changes
/// equal whole-snapshot diffs.
#[test]
fn in_one_transaction_statements_read_what_they_wrote_equal_whole_snapshot_diffs() {
    let Some(cluster) = common::cluster_or_skip() else {
        return;
    };
    let migrations = [
        Migration::plain(
            "CREATE TABLE a (id int PRIMARY KEY, x int);
CREATE TABLE b (id int PRIMARY KEY, a_id int REFERENCES a (id));
CREATE TABLE c (id int PRIMARY KEY);
CREATE SEQUENCE s;
CREATE VIEW va AS SELECT id, x FROM a;
",
        ),
        Migration::wrapped(
            "ALTER TABLE a ADD COLUMN y int;
ALTER TABLE b ADD COLUMN z int;
ALTER TABLE c ADD COLUMN n text;
ALTER TABLE a ADD COLUMN w int DEFAULT 1;
CREATE INDEX a_y ON a (y);
ALTER TABLE c ALTER COLUMN n SET NOT NULL;
ALTER TABLE a ALTER COLUMN w SET DEFAULT 2;
ALTER TABLE a ALTER COLUMN w DROP DEFAULT;
DROP INDEX a_y;
ALTER TABLE b DROP CONSTRAINT b_a_id_fkey;
ALTER TABLE b ADD CONSTRAINT b_a FOREIGN KEY (a_id) REFERENCES a (id);
ALTER TABLE a RENAME COLUMN x TO xx;
ALTER TABLE c RENAME COLUMN n TO nn;
ALTER TABLE a RENAME TO aa;
ALTER SEQUENCE s OWNED BY b.z;
ALTER TABLE b ADD CONSTRAINT b_z CHECK (z > 0);
ALTER TABLE aa ADD COLUMN v int;
ALTER TABLE c RENAME TO cc;
DROP TABLE b;
ALTER TABLE aa ADD COLUMN t int;
",
        ),
        Migration::wrapped(
            "ALTER TABLE aa ADD COLUMN u int;
ALTER TABLE cc ADD COLUMN m int;
SAVEPOINT s1;
ALTER TABLE aa ADD COLUMN p int;
ALTER TABLE cc ADD COLUMN k int;
ALTER TABLE aa RENAME COLUMN p TO pp;
RELEASE SAVEPOINT s1;
ALTER TABLE cc RENAME COLUMN k TO kk;
DO $$ BEGIN
  BEGIN ALTER TABLE aa ADD COLUMN e int; PERFORM 1 / 0;
  EXCEPTION WHEN division_by_zero THEN NULL; END;
END $$;
ALTER TABLE aa RENAME COLUMN u TO uu;
ALTER TABLE cc ADD COLUMN j int;
",
        ),
    ];
    assert_changes_known_and_equal_whole_snapshot_diffs(&cluster, &migrations);
}

/// What a statement's written rows could miss, inside one transaction on relations it already
/// holds: rows updated in one catalog only (a trigger disabled, a policy altered, storage options
/// of a table and of an index, an index renamed, row security), a sequence's owner set (a row of
/// `pg_depend` only), a partition attached and detached, a view replaced, an attribute added to a
/// composite type, rows only deleted (a trigger, a policy), and a second transaction whose command
/// ids start again from 0 while the trace still knows the first one's. Each statement's changes
/// equal whole-snapshot diffs.
#[test]
fn in_one_transaction_rows_updated_in_one_catalog_or_only_deleted_equal_whole_snapshot_diffs() {
    let Some(cluster) = common::cluster_or_skip() else {
        return;
    };
    let migrations = [
        Migration::plain(
            "CREATE TABLE t (id int PRIMARY KEY, x int);
CREATE TABLE p (id int, k int) PARTITION BY RANGE (k);
CREATE TABLE p1 (id int, k int);
CREATE SEQUENCE s;
CREATE TYPE pair AS (a int, b text);
CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NEW; END';
",
        ),
        Migration::wrapped(
            "CREATE TRIGGER t_touch BEFORE UPDATE ON t FOR EACH ROW EXECUTE FUNCTION touch();
CREATE INDEX t_x ON t (x);
CREATE VIEW tv AS SELECT id FROM t;
ALTER TABLE t DISABLE TRIGGER t_touch;
CREATE POLICY t_own ON t USING (x > 0);
ALTER POLICY t_own ON t USING (x > 1);
ALTER TABLE t SET (fillfactor = 70);
ALTER INDEX t_x SET (fillfactor = 80);
ALTER INDEX t_x RENAME TO t_x2;
ALTER TABLE t ENABLE ROW LEVEL SECURITY;
ALTER SEQUENCE s INCREMENT BY 2;
ALTER SEQUENCE s OWNED BY t.x;
ALTER TABLE p ATTACH PARTITION p1 FOR VALUES FROM (0) TO (10);
ALTER TABLE p1 ALTER COLUMN id SET NOT NULL;
ALTER TABLE p DETACH PARTITION p1;
CREATE OR REPLACE VIEW tv AS SELECT id, x FROM t;
ALTER TYPE pair ADD ATTRIBUTE c int;
ALTER TABLE t ADD COLUMN y int;
DROP TRIGGER t_touch ON t;
DROP POLICY t_own ON t;
ALTER TABLE t ADD COLUMN w int;
",
        ),
        Migration::wrapped(
            "ALTER TABLE t ADD COLUMN v int;
ALTER TABLE t ADD COLUMN u int;
ALTER TABLE t RENAME COLUMN u TO uu;
",
        ),
    ];
    assert_changes_known_and_equal_whole_snapshot_diffs(&cluster, &migrations);
}

/// Statements inside the migration's transaction, each the first to lock the relations it
/// changes: foreign keys (the referenced table's first trigger, then its later ones), an index
/// created, renamed and used for a constraint, a constraint renamed and validated, triggers
/// disabled, a policy and a column added. Each statement's changes, from the scoped reads, equal
/// whole-snapshot diffs.
#[test]
fn in_one_transaction_relations_locked_first_have_changes_equal_whole_snapshot_diffs() {
    let Some(cluster) = common::cluster_or_skip() else {
        return;
    };
    let migrations = [
        Migration::plain(
            "CREATE TABLE a (id int PRIMARY KEY);
CREATE TABLE b (id int PRIMARY KEY, a_id int);
CREATE TABLE c (id int PRIMARY KEY, x int);
",
        ),
        Migration::wrapped(
            "ALTER TABLE b ADD CONSTRAINT b_a FOREIGN KEY (a_id) REFERENCES a (id);\n",
        ),
        Migration::wrapped(
            "ALTER TABLE c ADD CONSTRAINT c_a FOREIGN KEY (x) REFERENCES a (id) NOT VALID;\n",
        ),
        Migration::wrapped(
            "ALTER TABLE c ADD CONSTRAINT c_b FOREIGN KEY (x) REFERENCES b (id);
CREATE INDEX c_x ON c (x);
",
        ),
        Migration::wrapped(
            "CREATE UNIQUE INDEX b_a_key ON b (a_id);
ALTER TABLE b ADD CONSTRAINT b_a_unique UNIQUE USING INDEX b_a_key;
",
        ),
        Migration::wrapped("ALTER INDEX c_x RENAME TO c_x2;\n"),
        Migration::wrapped(
            "ALTER TABLE c RENAME CONSTRAINT c_b TO c_bb;
ALTER TABLE c VALIDATE CONSTRAINT c_a;
",
        ),
        Migration::wrapped("ALTER TABLE b DISABLE TRIGGER ALL;\n"),
        Migration::wrapped(
            "CREATE POLICY a_p ON a USING (id > 0);
ALTER TABLE a ADD COLUMN q int;
",
        ),
    ];
    assert_changes_known_and_equal_whole_snapshot_diffs(&cluster, &migrations);
}

/// A scoped read that fails (here: the session's prepared catalog queries deallocated by the
/// migration) reads the whole schema at once, so the statement's changes are not lost, and inside
/// a transaction block leaves the migration's transaction usable.
#[test]
fn a_failed_scoped_schema_read_reads_whole_and_keeps_the_statements_changes() {
    let Some(cluster) = common::cluster_or_skip() else {
        return;
    };
    let migrations = [
        Migration::plain("CREATE TABLE a (id int PRIMARY KEY);\n"),
        Migration::plain(
            "DEALLOCATE ALL;
CREATE TABLE b (id int PRIMARY KEY, a_id int REFERENCES a (id));
ALTER TABLE a ADD COLUMN c int;
DEALLOCATE ALL;
",
        ),
        // Inside the migration's transaction the failed read must not abort it.
        Migration::wrapped(
            "ALTER TABLE b ADD COLUMN d int;
DEALLOCATE ALL;
CREATE INDEX ON b (d);
ALTER TABLE b ADD COLUMN e int;
",
        ),
    ];
    let traces = assert_changes_equal_whole_snapshot_diffs(&cluster, &migrations);
    let created_b = &traces[1][1];
    assert!(
        created_b
            .changes
            .iter()
            .any(|change| change.name == "public.b"),
        "{:?}",
        created_b.changes
    );
    assert!(traces.iter().flatten().all(|t| t.changes_unknown.is_none()));
}

/// A migration that deallocates the session's prepared statements, the trace's observation among
/// them (`DEALLOCATE ALL` as a statement and from a function, inside and outside a transaction
/// block, and `DISCARD ALL`), is traced as any other: the observation is prepared again, inside the
/// migration's transaction without aborting it, and every statement keeps its locks, scans and
/// changes.
#[test]
fn a_migration_deallocating_the_sessions_prepared_statements_keeps_its_trace() {
    let Some(cluster) = common::cluster_or_skip() else {
        return;
    };
    let deallocate_in_a_function = "DO $$ BEGIN EXECUTE 'DEALLOCATE ALL'; END $$;\n";
    let migrations = [
        Migration::plain("CREATE TABLE a (id int PRIMARY KEY);\nCREATE TABLE b (id int);\n"),
        Migration::plain(&format!(
            "{deallocate_in_a_function}ALTER TABLE a ADD COLUMN c int;
DISCARD ALL;
SELECT count(*) FROM b;
DEALLOCATE ALL;
CREATE INDEX a_c ON a (c);
"
        )),
        Migration::wrapped(&format!(
            "ALTER TABLE b ADD COLUMN d int;
{deallocate_in_a_function}ALTER TABLE a ADD COLUMN e int;
DEALLOCATE ALL;
SELECT count(*) FROM b;
CREATE INDEX b_d ON b (d);
"
        )),
    ];
    let traces = assert_changes_known_and_equal_whole_snapshot_diffs(&cluster, &migrations);
    let scans = |trace: &StatementTrace| -> Vec<(String, i64)> {
        let scans = trace.scans.iter();
        scans.map(|s| (s.relation.clone(), s.seq_scans)).collect()
    };
    let plain = &traces[1];
    assert_eq!(lock_pairs(&plain[1]), [("public.a", "AccessExclusiveLock")]);
    assert_eq!(lock_pairs(&plain[3]), [("public.b", "AccessShareLock")]);
    assert_eq!(scans(&plain[3]), [("public.b".to_owned(), 1)]);
    assert_eq!(
        lock_pairs(&plain[5]),
        [
            ("public.a", "ShareLock"),
            ("public.a_c", "AccessExclusiveLock")
        ]
    );
    let wrapped = &traces[2];
    assert_eq!(
        lock_pairs(&wrapped[0]),
        [("public.b", "AccessExclusiveLock")]
    );
    assert_eq!(
        lock_pairs(&wrapped[2]),
        [("public.a", "AccessExclusiveLock")]
    );
    // Held in ACCESS EXCLUSIVE mode already, the scan's ACCESS SHARE is a lock of its own.
    assert_eq!(lock_pairs(&wrapped[4]), [("public.b", "AccessShareLock")]);
    assert_eq!(scans(&wrapped[4]), [("public.b".to_owned(), 1)]);
    assert_eq!(
        lock_pairs(&wrapped[5]),
        [
            ("public.b", "ShareLock"),
            ("public.b_d", "AccessExclusiveLock")
        ]
    );
}

/// The trace's own reads take locks too (printing a view locks it and the tables it reads): a
/// statement is charged with the locks it takes even when such a read took the same ones just
/// before it (here the scan's ACCESS SHARE on `t`, which reading `v` again after the ALTER took).
#[test]
fn a_statement_is_charged_with_the_locks_the_traces_own_reads_took_before_it() {
    let Some(cluster) = common::cluster_or_skip() else {
        return;
    };
    let migrations = [
        Migration::plain("CREATE TABLE t (id int);\nCREATE VIEW v AS SELECT id FROM t;\n"),
        Migration::wrapped("ALTER TABLE t ADD COLUMN y int;\nSELECT count(*) FROM t;\n"),
    ];
    let traces = assert_changes_equal_whole_snapshot_diffs(&cluster, &migrations);
    assert_eq!(
        lock_pairs(&traces[1][0]),
        [("public.t", "AccessExclusiveLock")]
    );
    assert_eq!(lock_pairs(&traces[1][1]), [("public.t", "AccessShareLock")]);
}

/// [`assert_changes_equal_whole_snapshot_diffs`] on one session, and no statement's changes unknown:
/// every scoped read told exactly what its statement changed.
fn assert_changes_known_and_equal_whole_snapshot_diffs(
    cluster: &EphemeralCluster,
    migrations: &[Migration],
) -> Vec<Vec<StatementTrace>> {
    let traces = assert_changes_equal_whole_snapshot_diffs(cluster, migrations);
    assert!(traces.iter().flatten().all(|t| t.changes_unknown.is_none()));
    traces
}

/// Applies `migrations` in order with their traces, next to a reference database that takes a
/// whole snapshot around each statement, and checks that every statement's changes are those of
/// the snapshots. Returns the traces.
fn assert_changes_equal_whole_snapshot_diffs(
    cluster: &EphemeralCluster,
    migrations: &[Migration],
) -> Vec<Vec<StatementTrace>> {
    common::runtime().block_on(async {
        let admin = common::connect(cluster, "postgres").await;
        let (client, monitor) = database(cluster, &admin, "traced", None).await;
        let (reference, _) = database(cluster, &admin, "reference", None).await;
        let mut known = Known::default();
        let mut all = Vec::new();
        for migration in migrations {
            let traces = apply_traced(&client, &monitor, &migration.script(), &mut known).await;
            let wrapped = migration.sections[0].transaction != Transaction::None;
            if wrapped {
                reference.batch_execute("BEGIN").await.unwrap();
            }
            for (statement, trace) in migration.parsed.statements.iter().zip(&traces) {
                let sql = &migration.text[statement.range.clone()];
                assert!(trace.applied, "{sql}: {:?}", trace.error);
                let before = snapshot(&reference).await.unwrap();
                reference
                    .batch_execute(sql)
                    .await
                    .unwrap_or_else(|err| panic!("{sql}: {err}"));
                let after = snapshot(&reference).await.unwrap();
                let expected: Vec<SchemaChange> = diff(&before, &after);
                assert_eq!(trace.changes, expected, "the changes of {sql}");
            }
            if wrapped {
                reference.batch_execute("COMMIT").await.unwrap();
            }
            all.push(traces);
        }
        all
    })
}

/// Scan counts are read for the tables a statement's transaction holds, and for every table around
/// a statement that can roll back a subtransaction (which releases its locks and keeps its scans):
/// each scan is charged to the statement that made it, whether the scanning statement locked the
/// table first, an earlier transaction (or the session before the migration) scanned it, an
/// exception block rolled a scan back (in a `DO` block, in a function an earlier migration
/// defined, or in one a statement defined and ran), or a savepoint did, whether or not the trace
/// follows the schema. (A scan rolled back with its lock is not named: the trace names the
/// relations a statement holds.)
#[test]
fn scans_are_charged_to_the_statement_that_made_them() {
    let Some(cluster) = common::cluster_or_skip() else {
        return;
    };
    let undo = |table: &str| {
        format!(
            "BEGIN PERFORM count(*) FROM {table}; RAISE EXCEPTION 'undo'; \
             EXCEPTION WHEN raise_exception THEN NULL; END"
        )
    };
    let cases = [
        (
            "first locked by the scanning statement, in a transaction",
            Migration::wrapped("CREATE TABLE x (id int);\nALTER TABLE t ADD CHECK (a > 0);"),
            vec![vec![], vec![("t", 1)]],
        ),
        (
            "first locked by the scanning statement, autocommitted",
            Migration::plain("CREATE TABLE y (id int);\nALTER TABLE t ADD CHECK (a > 0);"),
            vec![vec![], vec![("t", 1)]],
        ),
        (
            "scanned by the transaction before",
            Migration::plain("SELECT count(*) FROM t;\nALTER TABLE t ADD CHECK (a > 0);"),
            vec![vec![("t", 1)], vec![("t", 1)]],
        ),
        (
            "a function defined and run by one statement rolled a scan back",
            Migration::wrapped(&format!(
                "DO $do$ BEGIN \
                   CREATE FUNCTION peek_once() RETURNS void LANGUAGE plpgsql AS $f${}$f$; \
                   PERFORM peek_once(); DROP FUNCTION peek_once(); END $do$;\n\
                 ALTER TABLE u ADD CHECK (a > 0);",
                undo("u")
            )),
            vec![vec![], vec![("u", 1)]],
        ),
        (
            "an exception block rolled a scan back",
            Migration::wrapped(&format!(
                "DO $$ {} $$;\nALTER TABLE t ADD CHECK (a > 0);",
                undo("t")
            )),
            vec![vec![], vec![("t", 1)]],
        ),
        (
            "a savepoint rolled a scan back",
            Migration::plain(
                "BEGIN;\nSAVEPOINT s;\nALTER TABLE t ADD CHECK (a > 0);\nROLLBACK TO SAVEPOINT s;\n\
                 ALTER TABLE t ADD CHECK (a > 0);\nCOMMIT;",
            ),
            vec![vec![], vec![], vec![("t", 1)], vec![], vec![("t", 1)], vec![]],
        ),
        (
            "a function an earlier migration defined",
            Migration::plain(&format!(
                "CREATE FUNCTION peek() RETURNS void LANGUAGE plpgsql AS $f${}$f$;",
                undo("t")
            )),
            vec![vec![]],
        ),
        (
            "rolled a scan back",
            Migration::wrapped("SELECT peek();\nALTER TABLE t ADD CHECK (a > 0);"),
            vec![vec![], vec![("t", 1)]],
        ),
    ];
    common::runtime().block_on(async {
        let admin = common::connect(&cluster, "postgres").await;
        // What the trace knows kept from one migration to the next, and forgotten before each (as
        // after a history applied untraced); and kept by a trace following no schema, whose
        // observation counts the writes of `pg_proc` only.
        let runs = [
            ("known", true, true),
            ("forgotten", false, true),
            ("unfollowed", true, false),
        ];
        for (database_name, keep_known, follow_schema) in runs {
            let (client, monitor) = database(&cluster, &admin, database_name, None).await;
            client
                .batch_execute(
                    "CREATE TABLE t (a int); INSERT INTO t SELECT g FROM generate_series(1, 100) g;\
                     CREATE TABLE u (a int); INSERT INTO u VALUES (1);",
                )
                .await
                .unwrap();
            let mut known = Known::new(follow_schema);
            for (name, migration, expected) in &cases {
                // The session's own scan, not yet reported when the migration starts.
                client
                    .batch_execute("SELECT count(*) FROM t")
                    .await
                    .unwrap();
                if !keep_known {
                    known.forget();
                }
                let traces = apply_traced(&client, &monitor, &migration.script(), &mut known).await;
                let scans: Vec<Vec<(&str, i64)>> = traces
                    .iter()
                    .map(|trace| {
                        assert!(trace.applied, "{name}: {:?}", trace.error);
                        let scans = trace.scans.iter();
                        scans.map(|s| (short(&s.relation), s.seq_scans)).collect()
                    })
                    .collect();
                assert_eq!(&scans, expected, "{name} ({database_name})");
            }
        }
    });
}

/// A trace that follows no schema (a rewrite's steps on a copy, whose result is read whole
/// afterwards) traces the same locks, rewrites and scans, with no changes, and prepares none of the
/// scoped reads on its session.
#[test]
fn a_trace_following_no_schema_traces_the_same_and_prepares_no_scoped_read() {
    let Some(cluster) = common::cluster_or_skip() else {
        return;
    };
    common::runtime().block_on(async {
        let admin = common::connect(&cluster, "postgres").await;
        let mut followed = Known::default();
        let mut unfollowed = Known::default().for_a_copy_without_schema();
        let (client, monitor) = database(&cluster, &admin, "followed", None).await;
        let (bare_client, bare_monitor) = database(&cluster, &admin, "unfollowed", None).await;
        // Also a view read again inside a transaction, which locks the table it reads.
        let views = [
            Migration::plain("CREATE TABLE t (id int);\nCREATE VIEW v AS SELECT id FROM t;\n"),
            Migration::wrapped("ALTER TABLE t ADD COLUMN y int;\nSELECT count(*) FROM t;\n"),
        ];
        for migration in reaching_migrations().into_iter().chain(views) {
            let script = migration.script();
            let traces = apply_traced(&client, &monitor, &script, &mut followed).await;
            let bare = apply_traced(&bare_client, &bare_monitor, &script, &mut unfollowed).await;
            assert!(traces.iter().any(|t| !t.changes.is_empty()));
            assert!(bare.iter().all(|t| t.changes.is_empty()));
            assert_eq!(without_changes(bare), without_changes(traces));
        }
        let scoped = "SELECT count(*) FROM pg_catalog.pg_prepared_statements \
                      WHERE statement LIKE 'WITH held AS%'";
        let (followed, unfollowed) = tokio::join!(
            client.query_one(scoped, &[]),
            bare_client.query_one(scoped, &[])
        );
        assert_eq!(followed.unwrap().get::<_, i64>(0), 1);
        assert_eq!(unfollowed.unwrap().get::<_, i64>(0), 0);
    });
}

/// The traces as text, with their schema changes and durations left out.
fn without_changes(traces: Vec<StatementTrace>) -> Vec<String> {
    traces
        .into_iter()
        .map(|trace| {
            format!(
                "{:?}",
                StatementTrace {
                    changes: Vec::new(),
                    duration: Default::default(),
                    ..trace
                }
            )
        })
        .collect()
}
