//! End-to-end: `migagent review` with the shadow PostgreSQL, run as a user runs it — the traces in the
//! reports, what only the shadow can find (`apply-failed`, `observed-rewrite`), failing histories, the
//! image cache, a server given by URL, bad setups, and that no server, database or temp dir outlives a
//! run, even one killed with SIGTERM or SIGINT. Each test has its own migration directory and its own
//! `XDG_CACHE_HOME`. Without PostgreSQL installed the tests are skipped, except in CI (`CI=true`), where
//! a missing server must fail loudly instead of passing vacuously.

use std::collections::BTreeSet;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;

mod common;

use common::scratch::Scratch;
use common::{binaries_or_skip, cluster_or_skip, runtime, show};
use migagent::shadow::cluster::{server_version, EphemeralCluster, PgBinaries};

/// A history every test can build on: one table with a primary key and a nullable column.
const ACCOUNTS: &str = "CREATE TABLE accounts (id int PRIMARY KEY, name text);\n";

/// How long a run may take to reach the statement a signal test interrupts (initdb, start, history).
const STARTUP_LIMIT: Duration = Duration::from_secs(120);

/// The report's only migration.
fn only_migration(report: &Value) -> &Value {
    let migrations = report["migrations"].as_array().unwrap();
    assert_eq!(migrations.len(), 1, "{report:#}");
    &migrations[0]
}

/// The migration's one finding of `rule`.
fn finding<'a>(migration: &'a Value, rule: &str) -> &'a Value {
    let found: Vec<_> = migration["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["rule"] == rule)
        .collect();
    assert_eq!(found.len(), 1, "one {rule} finding in {migration:#}");
    found[0]
}

/// The trace of statement `index`, checked against the contract's shape (`locks: [{relation, mode}]`,
/// `rewrites: [..]`, `error: null | ".."`).
fn trace(migration: &Value, index: usize) -> &Value {
    let trace = &migration["statements"][index]["trace"];
    assert!(
        trace.is_object(),
        "statement {index} has a trace: {migration:#}"
    );
    for lock in trace["locks"].as_array().unwrap() {
        assert!(lock["relation"].is_string(), "{lock}");
        assert!(lock["mode"].is_string(), "{lock}");
    }
    assert!(trace["rewrites"]
        .as_array()
        .unwrap()
        .iter()
        .all(Value::is_string));
    assert!(
        trace["error"].is_null() || trace["error"].is_string(),
        "{trace}"
    );
    trace
}

fn has_lock(trace: &Value, relation: &str, mode: &str) -> bool {
    trace["locks"]
        .as_array()
        .unwrap()
        .iter()
        .any(|lock| lock["relation"] == relation && lock["mode"] == mode)
}

fn rewrites(trace: &Value, table: &str) -> bool {
    trace["rewrites"]
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t == table)
}

/// What the report says about the shadow when migagent runs its own cluster with these binaries.
fn ephemeral_shadow_name() -> Option<String> {
    let binaries = binaries_or_skip()?;
    let (major, minor) = server_version(&binaries).unwrap_or_else(|err| panic!("{err}"));
    Some(format!(
        "PostgreSQL {major}.{minor} (migagent's ephemeral cluster)"
    ))
}

#[test]
fn reports_carry_the_trace_and_confirm_findings_with_it() {
    let Some(shadow) = ephemeral_shadow_name() else {
        return;
    };
    let scratch = Scratch::new("reports");
    scratch.write("migrations/001_x.sql", ACCOUNTS).write(
        "migrations/002_x.sql",
        "ALTER TABLE accounts ALTER COLUMN name SET NOT NULL;\n\
         ALTER TABLE accounts ALTER COLUMN id TYPE bigint;\n",
    );

    let (output, report) = scratch.json(&["migrations/002_x.sql"]);
    assert_eq!(output.status.code(), Some(1), "{}", show(&output));
    assert_eq!(report["shadow"], shadow.as_str());
    assert_eq!(report["problems"], serde_json::json!([]));
    let migration = only_migration(&report);

    let set_not_null = trace(migration, 0);
    assert!(
        has_lock(set_not_null, "public.accounts", "AccessExclusiveLock"),
        "{set_not_null:#}"
    );
    assert!(set_not_null["error"].is_null());
    assert!(
        !rewrites(set_not_null, "public.accounts"),
        "{set_not_null:#}"
    );
    let finding_of_set_not_null = finding(migration, "set-not-null");
    assert_eq!(finding_of_set_not_null["table"], "public.accounts");
    assert_eq!(finding_of_set_not_null["confirmed_by_shadow"], true);

    let type_change = trace(migration, 1);
    assert!(rewrites(type_change, "public.accounts"), "{type_change:#}");
    assert!(type_change["error"].is_null());
    let rewrite = finding(migration, "column-type-change-rewrites");
    assert_eq!(rewrite["confirmed_by_shadow"], true);

    let text = scratch.run(&["migrations/002_x.sql"]);
    let stdout = String::from_utf8_lossy(&text.stdout);
    assert_eq!(text.status.code(), Some(1), "{}", show(&text));
    assert!(
        stdout.contains("trace: migrations/002_x.sql on the shadow database"),
        "{stdout}"
    );
    assert!(
        stdout.contains("locks: AccessExclusiveLock on public.accounts"),
        "{stdout}"
    );
    assert!(stdout.contains("rewrote: public.accounts"), "{stdout}");
    assert!(
        stdout.contains("= shadow: confirmed by the trace"),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("shadow: applied on {shadow}")),
        "{stdout}"
    );
}

#[test]
fn a_reviewed_statement_that_fails_is_apply_failed_and_stops_the_apply() {
    if binaries_or_skip().is_none() {
        return;
    }
    let scratch = Scratch::new("apply-failed");
    scratch
        .write(
            "migrations/001_x.sql",
            "CREATE TABLE orders (id int PRIMARY KEY, total int);\n",
        )
        .write(
            "migrations/002_x.sql",
            "CREATE TABLE invoices (id int);\n\
             ALTER TABLE orders ADD COLUMN total int;\n\
             ALTER TABLE orders ADD COLUMN note text;\n",
        );

    let (output, report) = scratch.json(&["--no-cache", "migrations/002_x.sql"]);
    assert_eq!(output.status.code(), Some(1), "{}", show(&output));
    assert_eq!(report["problems"], serde_json::json!([]));
    let migration = only_migration(&report);

    let failed = finding(migration, "apply-failed");
    assert_eq!(failed["severity"], "error");
    assert_eq!(failed["statement"], 1);
    assert_eq!(failed["line"], 2);
    assert_eq!(failed["confirmed_by_shadow"], true);
    let message = failed["message"].as_str().unwrap();
    assert!(message.contains("42701"), "{message}");
    assert!(message.contains(r#"column "total""#), "{message}");

    let first = trace(migration, 0);
    assert_eq!(first["applied"], true, "{first:#}");
    assert!(first["error"].is_null());
    let second = trace(migration, 1);
    let error = second["error"].as_str().unwrap();
    assert!(error.starts_with("42701: "), "{error}");
    let third = trace(migration, 2);
    assert_eq!(third["applied"], false, "{third:#}");
    let reason = third["not_applied"].as_str().unwrap();
    assert!(
        reason.contains("line 2") && reason.contains("failed first"),
        "{reason}"
    );
    assert_eq!(third["locks"], serde_json::json!([]));
}

#[test]
fn a_failing_history_migration_is_named_and_the_review_goes_on_statically() {
    let Some(binaries) = binaries_or_skip() else {
        return;
    };
    let scratch = Scratch::new("history-fails");
    scratch
        .write(
            "migrations/001_x.sql",
            "CREATE TABLE accounts (id int);\n\nALTER TABLE missing ADD COLUMN x int;\n",
        )
        .write(
            "migrations/002_x.sql",
            "ALTER TABLE accounts ALTER COLUMN id TYPE bigint;\n",
        );

    // The review degrades: exit 1 for the findings, not 2; the history file is named once.
    let (output, report) = scratch.json(&["migrations/002_x.sql"]);
    assert_eq!(output.status.code(), Some(1), "{}", show(&output));
    assert!(!scratch.image_names().is_empty(), "the run used the cache");
    assert!(
        history_images(&scratch, &history_image_prefix(&binaries)).is_empty(),
        "a history that fails is not cached: {:?}",
        scratch.image_names()
    );
    assert_eq!(report["problems"], Value::Array(Vec::new()), "{report:#}");
    let notices = report["notices"].as_array().unwrap();
    assert_eq!(notices.len(), 1, "{report:#}");
    assert_eq!(notices[0]["path"], "migrations/001_x.sql");
    let message = notices[0]["message"].as_str().unwrap();
    assert!(
        message.starts_with("line 3: this history migration fails"),
        "{message}"
    );
    assert!(message.contains("42P01"), "{message}");
    assert!(
        message.contains(r#"relation "missing" does not exist"#),
        "{message}"
    );
    for remedy in ["--pg-bin DIR", "--shadow URL", "--shadow require"] {
        assert!(message.contains(remedy), "{remedy}: {message}");
    }

    // The reviewed file still gets what the rules find, without a trace to confirm it.
    let migration = only_migration(&report);
    let rewrite = finding(migration, "column-type-change-rewrites");
    assert_eq!(rewrite["table"], "public.accounts");
    assert!(rewrite["confirmed_by_shadow"].is_null(), "{rewrite:#}");
    assert!(migration["statements"][0]["trace"].is_null());

    // The footer claims no shadow that applied nothing reviewed.
    let text = scratch.run(&["--no-cache", "migrations/002_x.sql"]);
    let stdout = String::from_utf8_lossy(&text.stdout);
    assert_eq!(text.status.code(), Some(1), "{}", show(&text));
    assert!(
        stdout.contains("note: migrations/001_x.sql: line 3: this history migration fails"),
        "{stdout}"
    );
    assert!(!stdout.contains("shadow: applied"), "{stdout}");
    assert!(
        stdout.contains("error[column-type-change-rewrites]"),
        "{stdout}"
    );

    // Teams that want the shadow or nothing keep exit 2.
    let required = scratch.run(&["--shadow", "require", "--no-cache", "migrations/002_x.sql"]);
    let stdout = String::from_utf8_lossy(&required.stdout);
    assert_eq!(required.status.code(), Some(2), "{}", show(&required));
    assert!(
        stdout.contains("error: migrations/001_x.sql:3:1: this history migration fails"),
        "{stdout}"
    );
}

/// The report without what differs between two identical runs (durations).
fn without_durations(mut report: Value) -> Value {
    for statement in report["migrations"][0]["statements"]
        .as_array_mut()
        .unwrap()
    {
        if let Some(trace) = statement["trace"].as_object_mut() {
            trace.remove("duration_ms");
        }
    }
    report
}

/// How the names of the images of applied histories start: `pg<major>-<minor>-lp-` (applied by the
/// least-privileged role), then the hash.
fn history_image_prefix(binaries: &PgBinaries) -> String {
    let (major, minor) = server_version(binaries).unwrap_or_else(|err| panic!("{err}"));
    format!("pg{major}-{minor}-lp-")
}

/// The images of applied histories.
fn history_images(scratch: &Scratch, prefix: &str) -> BTreeSet<String> {
    scratch
        .image_names()
        .into_iter()
        .filter(|name| name.starts_with(prefix))
        .collect()
}

fn modified(path: &Path) -> SystemTime {
    fs::metadata(path).unwrap().modified().unwrap()
}

#[test]
fn the_applied_history_is_cached_as_an_image_named_by_its_hash() {
    let Some(binaries) = binaries_or_skip() else {
        return;
    };
    let prefix = history_image_prefix(&binaries);
    let scratch = Scratch::new("cache");
    scratch.write("migrations/001_x.sql", ACCOUNTS).write(
        "migrations/002_x.sql",
        "ALTER TABLE accounts ALTER COLUMN name SET NOT NULL;\n",
    );
    let args = ["migrations/002_x.sql"];

    let (first, first_report) = scratch.json(&args);
    assert_eq!(first.status.code(), Some(1), "{}", show(&first));
    let stored = history_images(&scratch, &prefix);
    assert_eq!(stored.len(), 1, "{:?}", scratch.image_names());
    let image = stored.first().unwrap().clone();
    let hash = &image[prefix.len()..];
    assert!(
        hash.len() == 16 && hash.chars().all(|c| c.is_ascii_hexdigit()),
        "{image}"
    );
    assert!(
        scratch.image_names().iter().all(|name| !name.contains('.')),
        "no staging dir is left: {:?}",
        scratch.image_names()
    );
    let stored_at = modified(&scratch.images().join(&image));

    // The second run starts from the image (looking it up marks it as used) and sees the same.
    let (second, second_report) = scratch.json(&args);
    assert_eq!(second.status.code(), Some(1), "{}", show(&second));
    assert_eq!(history_images(&scratch, &prefix), stored);
    assert!(
        modified(&scratch.images().join(&image)) > stored_at,
        "the second run used the image"
    );
    assert!(trace(only_migration(&second_report), 0)["locks"]
        .as_array()
        .is_some_and(|locks| !locks.is_empty()));
    assert_eq!(
        without_durations(second_report),
        without_durations(first_report)
    );

    // Another history: --no-cache stores nothing, with the cache its image gets another name.
    scratch.write(
        "migrations/001_x.sql",
        "CREATE TABLE accounts (id int PRIMARY KEY, name text, email text);\n",
    );
    let before = scratch.image_names();
    let uncached = scratch.run(&["--no-cache", "migrations/002_x.sql"]);
    assert_eq!(uncached.status.code(), Some(1), "{}", show(&uncached));
    assert_eq!(scratch.image_names(), before);
    let cached = scratch.run(&args);
    assert_eq!(cached.status.code(), Some(1), "{}", show(&cached));
    let after = history_images(&scratch, &prefix);
    assert_eq!(after.len(), 2, "{after:?}");
    assert!(after.contains(&image), "{after:?}");
}

/// A whole directory reviewed has nothing applied before its first migration: the cluster starts
/// from the cached initdb image and no image of an empty history is stored (storing one stops,
/// copies and restarts the server for nothing), on the first run as on the next.
#[test]
fn a_review_with_no_history_stores_no_history_image() {
    let Some(binaries) = binaries_or_skip() else {
        return;
    };
    let prefix = history_image_prefix(&binaries);
    let scratch = Scratch::new("no-history");
    scratch.write("migrations/001_x.sql", ACCOUNTS).write(
        "migrations/002_x.sql",
        "ALTER TABLE accounts ALTER COLUMN name SET NOT NULL;\n",
    );
    let mut findings = Vec::new();
    for run in ["first", "second"] {
        let (output, report) = scratch.json(&["migrations"]);
        assert_eq!(output.status.code(), Some(1), "{}", show(&output));
        assert!(
            history_images(&scratch, &prefix).is_empty(),
            "{run} run: {:?}",
            scratch.image_names()
        );
        assert!(
            scratch
                .image_names()
                .iter()
                .any(|name| name.starts_with("initdb-")),
            "{run} run used the cache: {:?}",
            scratch.image_names()
        );
        let second = &report["migrations"][1];
        assert!(
            has_lock(trace(second, 0), "public.accounts", "AccessExclusiveLock"),
            "{run} run: {second:#}"
        );
        findings.push(second["findings"].clone());
    }
    assert_eq!(findings[0], findings[1]);
}

/// The run's cluster dirs: `$TMPDIR/migagent-pg-<pid>-<n>`.
fn cluster_dir_prefix(pid: u32) -> String {
    format!("migagent-pg-{pid}-")
}

fn cluster_dirs(pid: u32) -> Vec<PathBuf> {
    let prefix = cluster_dir_prefix(pid);
    fs::read_dir(migagent::shadow::cluster::clusters_dir())
        .unwrap()
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let name = entry.file_name();
            name.to_str()?.starts_with(&prefix).then(|| entry.path())
        })
        .collect()
}

/// Nothing of the run with this pid is left: no cluster dir, and no process running in one.
fn assert_nothing_left(pid: u32) {
    let dirs = cluster_dirs(pid);
    assert!(dirs.is_empty(), "cluster dirs left behind: {dirs:?}");
    let needle = migagent::shadow::cluster::clusters_dir()
        .join(cluster_dir_prefix(pid))
        .to_string_lossy()
        .into_owned();
    assert!(
        !common::process_mentions(&needle),
        "a process still runs in {needle}*"
    );
}

/// Runs a review to its end and returns its pid with its output.
fn run_with_pid(mut command: Command) -> (u32, Output) {
    let child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs");
    let pid = child.id();
    (pid, child.wait_with_output().unwrap())
}

#[test]
fn finished_runs_leave_no_server_or_dir_behind() {
    let Some(shadow) = ephemeral_shadow_name() else {
        return;
    };
    let scratch = Scratch::new("finished");
    scratch
        .write("migrations/001_x.sql", ACCOUNTS)
        .write(
            "migrations/002_x.sql",
            "CREATE TABLE notes (id bigint PRIMARY KEY);\n",
        )
        .write(
            "migrations/003_x.sql",
            "ALTER TABLE accounts ADD COLUMN name text;\n",
        );

    let mut passing = scratch.review(&["--no-cache", "--format", "json", "migrations/002_x.sql"]);
    passing.arg("--fail-on").arg("never");
    let (pid, output) = run_with_pid(passing);
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", show(&output));
    assert_eq!(report["shadow"], shadow.as_str(), "a cluster ran");
    assert_nothing_left(pid);

    let failing = scratch.review(&["--no-cache", "--format", "json", "migrations/003_x.sql"]);
    let (pid, output) = run_with_pid(failing);
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", show(&output));
    finding(only_migration(&report), "apply-failed");
    assert_nothing_left(pid);
}

/// A running review that is signalled (SIGTERM) if the test fails before it ends.
struct Running(Option<Child>);

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            send_signal(child.id(), "TERM");
            let _ = child.wait();
        }
    }
}

fn send_signal(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill -{signal} {pid}: {status}");
}

/// The port of the postmaster running in this cluster dir, once it runs (`postmaster.pid` holds its pid
/// on line 1 and its port on line 4).
fn running_server_port(cluster_dir: &Path) -> Option<u16> {
    let pid_file = fs::read_to_string(cluster_dir.join("data/postmaster.pid")).ok()?;
    let lines: Vec<&str> = pid_file.lines().collect();
    let (pid, port) = (lines.first()?.trim(), lines.get(3)?.trim());
    let cmdline = fs::read(Path::new("/proc").join(pid).join("cmdline")).ok()?;
    let is_server = String::from_utf8_lossy(&cmdline).contains(&*cluster_dir.to_string_lossy());
    is_server.then(|| port.parse().ok()).flatten()
}

/// Connection settings for the postgres database of the server running in this cluster dir.
fn server_in(cluster_dir: &Path, port: u16) -> tokio_postgres::Config {
    let mut config = tokio_postgres::Config::new();
    config
        .host_path(cluster_dir)
        .port(port)
        .user("postgres")
        .dbname("postgres");
    config
}

/// Whether the server `config` reaches is running the review's `pg_sleep(60)`.
fn sleep_statement_runs(config: &tokio_postgres::Config) -> bool {
    runtime().block_on(async {
        let Ok((client, connection)) = config.connect(tokio_postgres::NoTls).await else {
            return false;
        };
        tokio::spawn(connection);
        client
            .query_one(
                "SELECT count(*) FROM pg_stat_activity \
                 WHERE state = 'active' AND pid <> pg_backend_pid() AND query LIKE '%pg_sleep(60)%'",
                &[],
            )
            .await
            .is_ok_and(|row| row.get::<_, i64>(0) > 0)
    })
}

/// Starts `migagent review <args>` on a migration that sleeps for a minute, and returns once
/// `sleeping(pid)` says the shadow runs it.
fn start_sleeping_review(
    scratch: &Scratch,
    args: &[&str],
    sleeping: impl Fn(u32) -> bool,
) -> (Running, u32) {
    let mut child = scratch
        .review(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs");
    let pid = child.id();
    let deadline = Instant::now() + STARTUP_LIMIT;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut stderr = String::new();
            let _ = child.stderr.take().unwrap().read_to_string(&mut stderr);
            panic!("migagent ended ({status}) before the statement ran: {stderr}");
        }
        if sleeping(pid) {
            return (Running(Some(child)), pid);
        }
        assert!(
            Instant::now() < deadline,
            "the shadow never ran the statement"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Whether one of the run's own clusters runs the review's `pg_sleep(60)`.
fn own_cluster_sleeps(pid: u32) -> bool {
    cluster_dirs(pid).iter().any(|dir| {
        running_server_port(dir).is_some_and(|port| sleep_statement_runs(&server_in(dir, port)))
    })
}

/// Sends `signal` to the running review and returns its output once it ended.
fn interrupt(mut running: Running, pid: u32, signal: &str) -> Output {
    send_signal(pid, signal);
    running.0.take().unwrap().wait_with_output().unwrap()
}

#[test]
fn a_run_killed_while_a_statement_runs_stops_its_server_and_removes_its_dir() {
    if binaries_or_skip().is_none() {
        return;
    }
    let scratch = Scratch::new("killed");
    scratch
        .write("migrations/001_x.sql", ACCOUNTS)
        .write("migrations/002_x.sql", "SELECT pg_sleep(60);\n");
    for (signal, status) in [("TERM", 143), ("INT", 130)] {
        let (running, pid) = start_sleeping_review(
            &scratch,
            &["--no-cache", "migrations/002_x.sql"],
            own_cluster_sleeps,
        );
        let output = interrupt(running, pid, signal);
        assert_eq!(
            output.status.code(),
            Some(status),
            "SIG{signal}: {}",
            show(&output)
        );
        assert_nothing_left(pid);
    }
}

/// The databases of the cluster, and the relations of its `postgres` database outside the system
/// schemas.
fn databases_and_tables(cluster: &EphemeralCluster) -> (Vec<String>, Vec<String>) {
    runtime().block_on(async {
        let client = common::connect(cluster, "postgres").await;
        let names = |rows: Vec<tokio_postgres::Row>| -> Vec<String> {
            rows.iter().map(|row| row.get(0)).collect()
        };
        let databases = client
            .query("SELECT datname::text FROM pg_database ORDER BY 1", &[])
            .await
            .unwrap();
        let tables = client
            .query(
                "SELECT n.nspname || '.' || c.relname FROM pg_class c \
                 JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast') ORDER BY 1",
                &[],
            )
            .await
            .unwrap();
        (names(databases), names(tables))
    })
}

#[test]
fn a_server_given_by_url_gets_only_its_own_databases_and_they_are_dropped() {
    let Some(cluster) = cluster_or_skip() else {
        return;
    };
    let (databases, tables) = databases_and_tables(&cluster);
    let scratch = Scratch::new("url");
    scratch.write("migrations/001_x.sql", ACCOUNTS).write(
        "migrations/002_x.sql",
        "ALTER TABLE accounts ALTER COLUMN name SET NOT NULL;\n",
    );

    // The role the README recommends: it may create databases, nothing more.
    common::execute(&cluster, "CREATE ROLE ci LOGIN CREATEDB");
    let url = common::socket_url(&cluster, "ci");
    let (output, report) = scratch.json(&["--shadow", &url, "migrations/002_x.sql"]);
    assert_eq!(output.status.code(), Some(1), "{}", show(&output));
    assert_eq!(report["problems"], serde_json::json!([]));
    let shadow = report["shadow"].as_str().unwrap();
    let server = format!(
        "ci@{}:{}/postgres",
        cluster.socket_dir().display(),
        cluster.port()
    );
    assert!(shadow.contains(&server), "{shadow}");
    let migration = only_migration(&report);
    assert!(has_lock(
        trace(migration, 0),
        "public.accounts",
        "AccessExclusiveLock"
    ));
    assert_eq!(
        finding(migration, "set-not-null")["confirmed_by_shadow"],
        true
    );

    let (databases_after, tables_after) = databases_and_tables(&cluster);
    assert_eq!(
        databases_after, databases,
        "every shadow database is dropped"
    );
    assert_eq!(
        tables_after, tables,
        "nothing ran in the URL's own database"
    );

    // A user who may not create databases is told what privilege is missing.
    common::execute(&cluster, "CREATE ROLE reviewer LOGIN");
    let url = common::socket_url(&cluster, "reviewer");
    let output = scratch.run(&["--shadow", &url, "migrations/002_x.sql"]);
    let all = show(&output);
    assert_eq!(output.status.code(), Some(2), "{all}");
    assert!(all.contains("needs the CREATEDB privilege"), "{all}");
    assert!(all.contains("error[set-not-null]"), "{all}");
}

/// The databases migagent created on the cluster and did not drop.
fn shadow_databases(cluster: &EphemeralCluster) -> Vec<String> {
    databases_and_tables(cluster)
        .0
        .into_iter()
        .filter(|name| name.starts_with("migagent_"))
        .collect()
}

#[test]
fn a_url_run_killed_while_a_statement_runs_drops_its_databases() {
    let Some(cluster) = cluster_or_skip() else {
        return;
    };
    let scratch = Scratch::new("url-killed");
    scratch
        .write("migrations/001_x.sql", ACCOUNTS)
        .write("migrations/002_x.sql", "SELECT pg_sleep(60);\n");
    common::execute(&cluster, "CREATE ROLE ci LOGIN CREATEDB");
    let url = common::socket_url(&cluster, "ci");
    let server = cluster.connection_config("postgres");
    for (signal, status) in [("TERM", 143), ("INT", 130)] {
        let (running, pid) = start_sleeping_review(
            &scratch,
            &["--shadow", &url, "migrations/002_x.sql"],
            |_| sleep_statement_runs(&server),
        );
        assert!(
            !shadow_databases(&cluster).is_empty(),
            "the run created its databases"
        );
        let output = interrupt(running, pid, signal);
        assert_eq!(
            output.status.code(),
            Some(status),
            "SIG{signal}: {}",
            show(&output)
        );
        let left = shadow_databases(&cluster);
        assert!(left.is_empty(), "SIG{signal} left {left:?} on the server");
    }
}

#[test]
fn an_unreachable_url_is_named_without_its_password() {
    let scratch = Scratch::new("unreachable");
    scratch.write("migrations/001_x.sql", ACCOUNTS).write(
        "migrations/002_x.sql",
        "ALTER TABLE accounts DROP COLUMN name;\n",
    );
    for url in [
        "postgres://nobody:s3cret-pw@127.0.0.1:1/x",
        "postgres://nobody@127.0.0.1:1/x?password=s3cret-pw",
    ] {
        let output = scratch.run(&["--shadow", url, "migrations/002_x.sql"]);
        let all = show(&output);
        assert_eq!(output.status.code(), Some(2), "{all}");
        assert!(
            all.contains("cannot connect to the shadow database at nobody@127.0.0.1:1/x"),
            "{all}"
        );
        assert!(!all.contains("s3cret-pw"), "{all}");
        // The migration is still reviewed by the rules.
        assert!(all.contains("error[drop-column]"), "{all}");
    }
}

#[test]
fn a_dynamic_rewrite_is_observed_only_by_the_shadow() {
    if binaries_or_skip().is_none() {
        return;
    }
    let scratch = Scratch::new("observed-rewrite");
    scratch
        .write(
            "migrations/001_x.sql",
            "CREATE TABLE t (id int PRIMARY KEY, note text);\n",
        )
        .write(
            "migrations/002_x.sql",
            "DO $$ BEGIN EXECUTE 'ALTER TABLE t ALTER COLUMN id TYPE bigint'; END $$;\n",
        );

    let (output, report) = scratch.json(&["--no-cache", "migrations/002_x.sql"]);
    assert_eq!(output.status.code(), Some(1), "{}", show(&output));
    let migration = only_migration(&report);
    assert!(rewrites(trace(migration, 0), "public.t"));
    let observed = finding(migration, "observed-rewrite");
    assert_eq!(observed["table"], "public.t");
    assert_eq!(observed["severity"], "error");
    assert_eq!(observed["confirmed_by_shadow"], true);
    let message = observed["message"].as_str().unwrap();
    assert!(message.contains("rewrote public.t"), "{message}");

    // Without the shadow nothing sees it.
    let (_, static_report) = scratch.json(&["--shadow", "off", "migrations/002_x.sql"]);
    let findings = only_migration(&static_report)["findings"]
        .as_array()
        .unwrap();
    assert!(
        findings.iter().all(|f| f["rule"] != "observed-rewrite"),
        "{static_report:#}"
    );
}

#[test]
fn a_missing_pg_bin_directory_is_named() {
    let scratch = Scratch::new("pg-bin");
    scratch.write("migrations/001_x.sql", ACCOUNTS).write(
        "migrations/002_x.sql",
        "ALTER TABLE accounts DROP COLUMN name;\n",
    );
    let missing = "/nonexistent/migagent-test-pg-bin";
    let output = scratch.run(&[
        "--shadow",
        "auto",
        "--pg-bin",
        missing,
        "migrations/002_x.sql",
    ]);
    let all = show(&output);
    assert_eq!(output.status.code(), Some(2), "{all}");
    assert!(all.contains("--pg-bin"), "{all}");
    assert!(all.contains(missing), "{all}");
    assert!(all.contains("error[drop-column]"), "{all}");
}

#[test]
fn a_backfill_shows_its_plan_and_the_sizes_from_stats() {
    if binaries_or_skip().is_none() {
        return;
    }
    let scratch = Scratch::new("explain");
    scratch
        .write(
            "migrations/001_x.sql",
            "CREATE TABLE events (id bigint PRIMARY KEY, seen boolean);\n",
        )
        .write(
            "migrations/002_x.sql",
            "UPDATE events SET seen = false WHERE seen IS NULL;\n",
        );
    scratch.write(
        "stats.json",
        r#"{"tables": {"public.events": {"rows": 48000000, "total_bytes": 22548578304}}}"#,
    );
    let args = ["--stats", "stats.json", "migrations/002_x.sql"];
    let (output, report) = scratch.json(&args);
    let statement = &only_migration(&report)["statements"][0];
    let plan = statement["trace"]["plan"].as_array().expect("a plan");
    assert!(
        plan.iter()
            .any(|line| line.as_str().unwrap().contains("Seq Scan on events")),
        "{}",
        show(&output)
    );
    assert_eq!(statement["table_sizes"]["public.events"]["rows"], 48000000);
    let text = String::from_utf8_lossy(&scratch.run(&args).stdout).into_owned();
    assert!(
        text.contains("per --stats: public.events 48 M rows, 21 GB (the plan above ran on the shadow's empty tables)"),
        "{text}"
    );
}

/// The rule ids of a migration's findings.
fn rules_of(migration: &Value) -> Vec<String> {
    migration["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["rule"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn two_directories_with_the_same_history_each_get_a_clean_baseline() {
    if binaries_or_skip().is_none() {
        return;
    }
    let scratch = Scratch::new("two-dirs");
    for dir in ["svc_a", "svc_b"] {
        scratch.write(
            format!("{dir}/001_users.sql"),
            "CREATE TABLE users (id int);\n",
        );
    }
    for cache in [&["--no-cache"][..], &[][..]] {
        let mut args = cache.to_vec();
        args.extend(["svc_a", "svc_b"]);
        let (output, report) = scratch.json(&args);
        assert_eq!(output.status.code(), Some(0), "{}", show(&output));
        for migration in report["migrations"].as_array().unwrap() {
            assert!(rules_of(migration).is_empty(), "{migration:#}");
        }
    }
}

#[test]
fn the_image_is_sealed_before_reviewed_statements_change_the_cluster() {
    let Some(binaries) = binaries_or_skip() else {
        return;
    };
    let prefix = history_image_prefix(&binaries);
    let scratch = Scratch::new("role");
    scratch.write("migrations/001_x.sql", ACCOUNTS).write(
        "migrations/002_x.sql",
        "CREATE ROLE migagent_test_reporting;\n",
    );
    // The second run starts from the image: had the image kept the first run's role, creating it
    // again would fail there.
    for _ in 0..2 {
        let (output, report) = scratch.json(&["migrations/002_x.sql"]);
        assert_eq!(output.status.code(), Some(0), "{}", show(&output));
        assert!(
            rules_of(only_migration(&report)).is_empty(),
            "{}",
            show(&output)
        );
        assert_eq!(
            history_images(&scratch, &prefix).len(),
            1,
            "{:?}",
            scratch.image_names()
        );
    }
}

#[test]
fn after_a_reviewed_migration_fails_the_next_ones_are_not_applied() {
    if binaries_or_skip().is_none() {
        return;
    }
    let scratch = Scratch::new("after-failure");
    scratch
        .write("migrations/001_x.sql", "CREATE TABLE t (id int);\n")
        .write(
            "migrations/002_x.sql",
            "CREATE TABLE a (id int);\nSELECT 1/0;\nCREATE TABLE b (id int);\n",
        )
        .write("migrations/003_x.sql", "ALTER TABLE b ADD COLUMN c int;\n");
    let (output, report) = scratch.json(&["--latest", "2", "migrations"]);
    assert_eq!(output.status.code(), Some(1), "{}", show(&output));
    let migrations = report["migrations"].as_array().unwrap();
    assert_eq!(rules_of(&migrations[0]), ["apply-failed"]);
    assert!(
        !rules_of(&migrations[1]).contains(&"apply-failed".to_owned()),
        "{:#}",
        migrations[1]
    );
    assert!(migrations[1]["statements"][0]["trace"].is_null());
    let notice = migrations[1]["notices"][0]["message"].as_str().unwrap();
    assert!(
        notice.contains("migrations/002_x.sql:2 failed there first"),
        "{notice}"
    );
}

#[test]
fn shadow_findings_obey_ignore_comments_and_predicted_failures_are_not_repeated() {
    if binaries_or_skip().is_none() {
        return;
    }
    let scratch = Scratch::new("ignore");
    scratch
        .write(
            "migrations/001_x.sql",
            "CREATE TABLE t (id int PRIMARY KEY);\n",
        )
        .write(
            "migrations/002_x.sql",
            "-- migagent:ignore observed-rewrite -- a maintenance window is booked\n\
             DO $$ BEGIN EXECUTE 'ALTER TABLE t ALTER COLUMN id TYPE bigint'; END $$;\n",
        );
    let (output, report) = scratch.json(&["migrations/002_x.sql"]);
    assert!(
        !rules_of(only_migration(&report)).contains(&"observed-rewrite".to_owned()),
        "{}",
        show(&output)
    );

    scratch.write(
        "migrations/002_x.sql",
        "BEGIN;\nCREATE INDEX CONCURRENTLY t_id ON t (id);\nCOMMIT;\n",
    );
    let (output, report) = scratch.json(&["migrations/002_x.sql"]);
    let migration = only_migration(&report);
    assert!(
        !rules_of(migration).contains(&"apply-failed".to_owned()),
        "{}",
        show(&output)
    );
    assert_eq!(
        finding(migration, "concurrently-in-transaction")["confirmed_by_shadow"],
        true
    );
}

#[test]
fn a_postgresql_too_old_for_the_own_cluster_is_named() {
    use std::os::unix::fs::PermissionsExt;
    let scratch = Scratch::new("old-pg");
    scratch.write("migrations/001_x.sql", ACCOUNTS);
    let bin = scratch.path("bin");
    fs::create_dir_all(&bin).unwrap();
    for (name, body) in [
        (
            "postgres",
            "#!/bin/sh\necho 'postgres (PostgreSQL) 9.6.24'\n",
        ),
        ("initdb", "#!/bin/sh\nexit 1\n"),
        ("pg_ctl", "#!/bin/sh\nexit 1\n"),
    ] {
        let path = bin.join(name);
        fs::write(&path, body).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    }
    let output = scratch.run(&["--pg-bin", bin.to_str().unwrap(), "migrations/001_x.sql"]);
    assert_eq!(output.status.code(), Some(2), "{}", show(&output));
    let all = show(&output);
    assert!(
        all.contains("is version 9; migagent's own shadow needs 10 or newer"),
        "{all}"
    );
}

#[test]
fn advise_on_never_traces_the_same_without_copies_or_drafts() {
    if binaries_or_skip().is_none() {
        return;
    }
    let scratch = Scratch::new("advise-never");
    scratch
        .write("migrations/001_x.sql", ACCOUNTS)
        .write(
            "migrations/002_x.sql",
            "CREATE INDEX accounts_name ON accounts (name);\n",
        )
        .write(
            "migrations/003_x.sql",
            "ALTER TABLE accounts ALTER COLUMN id TYPE bigint;\n",
        );
    let review = |extra: &[&str]| {
        let output = scratch
            .review(&[&["--format", "json", "--llm", "off", "migrations"], extra].concat())
            .env("MIGAGENT_DEBUG", "baselines")
            .output()
            .expect("the binary runs");
        let report = common::scratch::json_report(&output);
        (output, report)
    };
    let (advised, advised_report) = review(&[]);
    let (never, never_report) = review(&["--advise-on", "never"]);
    assert_eq!(advised.status.code(), never.status.code());
    let kept = |output: &Output| String::from_utf8_lossy(&output.stderr).contains("kept a copy");
    assert!(kept(&advised), "{}", show(&advised));
    assert!(!kept(&never), "{}", show(&never));
    let migrations = |report: &Value| {
        let mut migrations = report["migrations"].as_array().unwrap().clone();
        for migration in &mut migrations {
            migration.as_object_mut().unwrap().remove("advice");
            for statement in migration["statements"].as_array_mut().unwrap() {
                statement["trace"]
                    .as_object_mut()
                    .expect("traced")
                    .remove("duration_ms");
            }
        }
        migrations
    };
    assert_eq!(migrations(&advised_report), migrations(&never_report));
    let advice = |report: &Value| -> Vec<bool> {
        report["migrations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["advice"].is_null())
            .collect()
    };
    assert_eq!(advice(&never_report), [true; 3]);
    assert!(
        advice(&advised_report).contains(&false),
        "{advised_report:#}"
    );
}

/// A directory of `count` migrations: `accounts`, then a column added to it per migration.
fn growing_accounts(name: &str, count: usize) -> Scratch {
    let scratch = Scratch::new(name);
    scratch.write("migrations/001_accounts.sql", ACCOUNTS);
    for n in 2..=count {
        scratch.write(
            format!("migrations/{n:03}_column.sql"),
            format!("ALTER TABLE accounts ADD COLUMN c{n} int;\n"),
        );
    }
    scratch
}

/// Per reviewed migration after the first, whether its statement's trace took its lock on
/// `accounts`, and how many schema changes it lists.
fn column_traces(report: &Value) -> Vec<(bool, usize)> {
    report["migrations"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["path"].as_str().unwrap().ends_with("_column.sql"))
        .map(|m| {
            let trace = trace(m, 0);
            (
                has_lock(trace, "public.accounts", "AccessExclusiveLock"),
                trace["changes"].as_array().unwrap().len(),
            )
        })
        .collect()
}

#[test]
fn a_review_of_more_than_20_migrations_traces_no_schema_changes_unless_asked() {
    if ephemeral_shadow_name().is_none() {
        return;
    }
    let scratch = growing_accounts("trace-changes-many", 21);

    let (output, report) = scratch.json(&["migrations"]);
    assert_eq!(
        report["problems"],
        serde_json::json!([]),
        "{}",
        show(&output)
    );
    assert_eq!(column_traces(&report), vec![(true, 0); 20], "{report:#}");
    assert_eq!(
        report["schema_changes_unread"],
        "schema changes per statement not read: 21 migrations reviewed (more than 20); `--trace-changes always` reads them, about 2 ms per statement"
    );
    // Said once, on the shadow's line, not under each statement.
    let text = String::from_utf8(scratch.run(&["migrations"]).stdout).unwrap();
    assert_eq!(text.matches("not read").count(), 1, "{text}");
    assert!(
        text.contains("(migagent's ephemeral cluster); schema changes per statement not read: 21 migrations reviewed"),
        "{text}"
    );

    let (_, always) = scratch.json(&["migrations", "--trace-changes", "always"]);
    assert_eq!(column_traces(&always), vec![(true, 1); 20], "{always:#}");
    assert!(always["schema_changes_unread"].is_null(), "{always:#}");

    // Twenty reviewed, the first migration history: read by default.
    let (_, twenty) = scratch.json(&["migrations", "--latest", "20"]);
    assert_eq!(column_traces(&twenty), vec![(true, 1); 20], "{twenty:#}");
    assert!(twenty["schema_changes_unread"].is_null(), "{twenty:#}");
}

#[test]
fn trace_changes_never_reads_none_for_one_file_and_says_so() {
    if ephemeral_shadow_name().is_none() {
        return;
    }
    let scratch = growing_accounts("trace-changes-never", 2);

    let (_, read) = scratch.json(&["migrations/002_column.sql"]);
    assert_eq!(column_traces(&read), [(true, 1)], "{read:#}");
    assert!(read["schema_changes_unread"].is_null(), "{read:#}");

    scratch.write("migagent.toml", "[shadow]\ntrace-changes = \"never\"\n");
    let (_, never) = scratch.json(&["migrations/002_column.sql"]);
    assert_eq!(column_traces(&never), [(true, 0)], "{never:#}");
    assert_eq!(
        never["schema_changes_unread"],
        "schema changes per statement not read: trace-changes is never (`--trace-changes` or `[shadow]`); `auto` reads them when at most 20 migrations are reviewed"
    );
    // The flag wins over the file.
    let (_, always) = scratch.json(&["migrations/002_column.sql", "--trace-changes", "always"]);
    assert_eq!(column_traces(&always), [(true, 1)], "{always:#}");
}
