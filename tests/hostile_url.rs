//! Hostile migrations reviewed with `--shadow URL` on a "user's server": a real PostgreSQL (one of the
//! test's own ephemeral clusters) holding an application database with rows and a role that may only
//! create databases. Whatever the migration under review tries (roles, server settings, the app's
//! database, dblink, `COPY … TO PROGRAM 'psql …'`, DO blocks running the same through EXECUTE), the
//! server is left exactly as it was, with the same role or with a superuser accepted through
//! `--shadow-superuser`, and the report says what was not applied and where. A privileged URL role is
//! refused unless accepted. Databases a killed run left behind are dropped by the next run, never
//! those of a run that still runs. Without PostgreSQL installed the tests are skipped, except in CI.

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

mod common;

use common::scratch::Scratch;
use common::{binaries_or_skip, runtime, show};
use migagent::shadow::cluster::{EphemeralCluster, PgBinaries};

/// The role the README tells users to create for migagent.
const CI_ROLE: &str = "migagent_ci";

/// How long a run may take to reach the statement a test interrupts.
const STARTUP_LIMIT: Duration = Duration::from_secs(60);

/// A user's server: an `app` database with a table of rows, and a role that may only create databases.
struct UserServer {
    cluster: EphemeralCluster,
    binaries: PgBinaries,
}

impl UserServer {
    fn start() -> Option<UserServer> {
        let binaries = binaries_or_skip()?;
        let cluster = EphemeralCluster::start(&binaries).unwrap_or_else(|err| panic!("{err}"));
        let server = UserServer { cluster, binaries };
        server.execute("postgres", "CREATE DATABASE app");
        server.execute(
            "app",
            "CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL);
             INSERT INTO items SELECT n, 'item ' || n FROM generate_series(1, 100) n;",
        );
        server.execute("postgres", &format!("CREATE ROLE {CI_ROLE} LOGIN CREATEDB"));
        Some(server)
    }

    /// Runs SQL as the superuser in `dbname`.
    fn execute(&self, dbname: &str, sql: &str) {
        runtime().block_on(async {
            common::connect(&self.cluster, dbname)
                .await
                .batch_execute(sql)
                .await
                .unwrap_or_else(|err| panic!("{sql}: {err}"));
        });
    }

    /// The first column of each row of a query run as the superuser in `dbname`.
    fn query(&self, dbname: &str, sql: &str) -> Vec<String> {
        runtime().block_on(async {
            let client = common::connect(&self.cluster, dbname).await;
            client
                .query(sql, &[])
                .await
                .unwrap_or_else(|err| panic!("{sql}: {err}"))
                .iter()
                .map(|row| row.get::<_, Option<String>>(0).unwrap_or_default())
                .collect()
        })
    }

    fn url(&self, user: &str) -> String {
        common::socket_url(&self.cluster, user)
    }

    /// A shell command that deletes every row of the app's table through psql, as the superuser.
    fn psql_deleting_items(&self) -> String {
        format!(
            "{} -h {} -p {} -U postgres -d app -c \"DELETE FROM items\"",
            // The bin dir the server's binaries really live in (PATH may hold links to them).
            fs::canonicalize(&self.binaries.postgres)
                .unwrap()
                .with_file_name("psql")
                .display(),
            self.cluster.socket_dir().display(),
            self.cluster.port()
        )
    }

    /// A libpq connection string to the app's database, as the superuser.
    fn app_conninfo(&self) -> String {
        format!(
            "dbname=app user=postgres host={} port={}",
            self.cluster.socket_dir().display(),
            self.cluster.port()
        )
    }

    /// Everything a migration on this server could change outside the databases migagent creates, by
    /// what it is: the app's rows and relations, roles, memberships, databases, per-role and server
    /// settings, tablespaces, comments on shared objects, `postgresql.auto.conf`.
    fn state(&self) -> ServerState {
        let mut state: ServerState = STATE_QUERIES
            .iter()
            .map(|(what, dbname, sql)| (*what, self.query(dbname, sql)))
            .collect();
        let auto_conf = fs::read_to_string(self.cluster.data_dir().join("postgresql.auto.conf"))
            .unwrap_or_default();
        state.insert("postgresql.auto.conf", vec![auto_conf]);
        state
    }

    /// The databases migagent created on the server and did not drop.
    fn shadow_databases(&self) -> Vec<String> {
        self.query(
            "postgres",
            "SELECT datname::text FROM pg_database WHERE datname LIKE 'migagent%' ORDER BY 1",
        )
    }
}

/// A server's state, by what it is.
type ServerState = BTreeMap<&'static str, Vec<String>>;

/// What [`UserServer::state`] reads: (what, database, query of one text column).
const STATE_QUERIES: &[(&str, &str, &str)] = &[
    (
        "app rows",
        "app",
        "SELECT md5(string_agg(i::text, ',' ORDER BY id)) FROM items i",
    ),
    (
        "app relations",
        "app",
        "SELECT format('%s %s %s', relname, relkind, relfilenode) FROM pg_class \
         WHERE relnamespace = 'public'::regnamespace ORDER BY relname",
    ),
    (
        "roles",
        "postgres",
        "SELECT a::text FROM pg_authid a ORDER BY rolname",
    ),
    (
        "role memberships",
        "postgres",
        "SELECT m::text FROM pg_auth_members m ORDER BY 1",
    ),
    (
        "databases",
        "postgres",
        "SELECT format('%s %s %s %s %s', datname, datdba, datconnlimit, datallowconn, datacl) \
         FROM pg_database ORDER BY datname",
    ),
    (
        "pg_db_role_setting",
        "postgres",
        "SELECT s::text FROM pg_db_role_setting s ORDER BY 1",
    ),
    (
        "pg_file_settings",
        "postgres",
        "SELECT format('%s %s %s', sourcefile, name, setting) FROM pg_file_settings ORDER BY 1",
    ),
    (
        "pg_settings",
        "postgres",
        "SELECT format('%s=%s', name, setting) FROM pg_settings ORDER BY name",
    ),
    (
        "tablespaces",
        "postgres",
        "SELECT spcname::text FROM pg_tablespace ORDER BY 1",
    ),
    (
        "comments on shared objects",
        "postgres",
        "SELECT d::text FROM pg_shdescription d ORDER BY 1",
    ),
];

/// What differs between two states, for assertion messages.
fn changes(before: &ServerState, after: &ServerState) -> Vec<String> {
    before
        .iter()
        .filter(|(what, rows)| after.get(*what) != Some(rows))
        .map(|(what, rows)| format!("{what}: {rows:?} became {:?}", after.get(what)))
        .collect()
}

/// A test's own project (see [`Scratch`]) whose history is `migrations/001_accounts.sql`.
fn project(name: &str) -> Scratch {
    Scratch::with_migrations(
        name,
        &[(
            "001_accounts.sql",
            "CREATE TABLE accounts (id int PRIMARY KEY, name text);\n",
        )],
    )
}

/// Writes the reviewed migration, `migrations/002_x.sql`.
fn write_reviewed(scratch: &Scratch, sql: &str) {
    scratch.write("migrations/002_x.sql", sql);
}

/// `migagent review --shadow <url> <args>` in the project.
fn review(scratch: &Scratch, url: &str, args: &[&str]) -> Command {
    scratch.review(&[&["--shadow", url], args].concat())
}

/// Reviews `migrations/002_x.sql` with `extra` flags.
fn run(scratch: &Scratch, url: &str, extra: &[&str]) -> Output {
    let args = [&["migrations/002_x.sql"], extra].concat();
    review(scratch, url, &args)
        .output()
        .expect("the binary runs")
}

/// The hostile migrations: (name, SQL, what the report names as not applied).
fn hostile_migrations(server: &UserServer) -> Vec<(&'static str, String, &'static str)> {
    let psql = server.psql_deleting_items().replace('\'', "''");
    let app = server.app_conninfo();
    vec![
        (
            "role",
            "CREATE TABLE notes (id int);\nCREATE /* x */ ROLE evil SUPERUSER LOGIN;\n".into(),
            "line 2, CREATE ROLE",
        ),
        (
            "alter-system",
            "ALTER -- c\nSYSTEM SET shared_preload_libraries = 'no_such_lib';\n".into(),
            "line 1, ALTER SYSTEM",
        ),
        (
            "alter-database",
            "ALTER /* x */ DATABASE app CONNECTION LIMIT 0;\n".into(),
            "line 1, ALTER DATABASE",
        ),
        (
            "role-setting",
            format!("ALTER ROLE {CI_ROLE} SET search_path = evil;\n"),
            "line 1, ALTER ROLE",
        ),
        (
            "grant-program",
            format!("GRANT pg_execute_server_program TO {CI_ROLE};\n"),
            "line 1, GRANT (role membership)",
        ),
        (
            "dblink",
            format!(
                "CREATE EXTENSION dblink;\nSELECT dblink_exec('{app}', 'DELETE FROM items; DROP TABLE items');\n"
            ),
            "line 1, CREATE EXTENSION dblink",
        ),
        (
            "dblink-exec",
            format!("SELECT dblink_exec('{app}', 'DELETE FROM items');\n"),
            "line 1, dblink_exec()",
        ),
        (
            "copy-program",
            format!("COPY (SELECT 1) TO PROGRAM '{psql}';\n"),
            "line 1, COPY … TO PROGRAM",
        ),
        (
            "do-execute",
            format!(
                "DO $$\nBEGIN\n  EXECUTE 'COPY (SELECT 1) TO ' || 'PROGRAM ''{}''';\nEND $$;\n",
                psql.replace('\'', "''")
            ),
            "line 3, EXECUTE (dynamic SQL)",
        ),
        (
            "do-dblink",
            format!(
                "DO $$\nBEGIN\n  CREATE EXTENSION IF NOT EXISTS dblink;\n  PERFORM dblink_exec('{app}', 'DELETE FROM items');\nEND $$;\n"
            ),
            "line 3, CREATE EXTENSION dblink",
        ),
    ]
}

/// Each payload really does what the tests keep it from doing when run unchecked as a superuser:
/// the state comparison below would catch it.
#[test]
fn the_hostile_payloads_are_real() {
    let Some(server) = UserServer::start() else {
        return;
    };
    server.execute("postgres", "CREATE DATABASE payloads");
    let before = server.state();
    let payloads = hostile_migrations(&server);
    let run = |name: &str| {
        let (_, sql, _) = payloads.iter().find(|(n, _, _)| *n == name).unwrap();
        server.execute("payloads", sql);
    };
    run("role");
    run("alter-system");
    run("copy-program");
    let changed: Vec<String> = changes(&before, &server.state())
        .into_iter()
        .map(|change| change.split(':').next().unwrap().to_owned())
        .collect();
    assert_eq!(
        changed,
        [
            "app rows",
            "pg_file_settings",
            "postgresql.auto.conf",
            "roles"
        ],
        "what the payloads change is what the state compares"
    );
    run("dblink");
    assert_eq!(
        server.query(
            "app",
            "SELECT relname::text FROM pg_class WHERE relname = 'items'"
        ),
        Vec::<String>::new()
    );
}

#[test]
fn hostile_migrations_leave_the_users_server_unchanged() {
    let Some(server) = UserServer::start() else {
        return;
    };
    let before = server.state();
    let scratch = project("unchanged");
    for (name, sql, what) in hostile_migrations(&server) {
        write_reviewed(&scratch, &sql);
        for (user, extra) in [
            (CI_ROLE, &[][..]),
            ("postgres", &["--shadow-superuser"][..]),
        ] {
            let output = run(&scratch, &server.url(user), extra);
            let all = show(&output);
            assert_ne!(output.status.code(), Some(2), "{name} as {user}: {all}");
            assert!(
                all.contains(
                    "not applied on the shadow database: it makes a change beyond its own database"
                ) && all.contains(what),
                "{name} as {user}: the report says what was not applied and why: {all}"
            );
            let line = what["line ".len()..].split(',').next().unwrap();
            assert!(
                all.contains(&format!("--> migrations/002_x.sql:{line}:")),
                "{name} as {user}: the notice points at the statement: {all}"
            );
            let changed = changes(&before, &server.state());
            assert!(changed.is_empty(), "{name} as {user} changed {changed:#?}");
            assert_eq!(
                server.shadow_databases(),
                Vec::<String>::new(),
                "{name} as {user} left databases"
            );
        }
    }
}

/// The same limits as on migagent's own cluster: a statement that outruns `--statement-timeout`
/// (even one that lifts it and catches the cancel) and a table that grows this run's databases beyond
/// `--shadow-max-size` are stopped, reported as apply-failed naming the flag, and the server is left as
/// it was.
#[test]
fn statements_beyond_the_limits_are_stopped_on_the_users_server() {
    let Some(server) = UserServer::start() else {
        return;
    };
    let before = server.state();
    let scratch = project("limits");
    let cases: [(&str, &str, &str, &str); 3] = [
        (
            "SET statement_timeout = 0;\n\
             DO $$ BEGIN LOOP BEGIN PERFORM pg_sleep(0.05); \
             EXCEPTION WHEN query_canceled THEN NULL; END; END LOOP; END $$;\n",
            "--statement-timeout",
            "2s",
            "57P01",
        ),
        (
            "DO $$ BEGIN LOOP END LOOP; END $$;\n",
            "--statement-timeout",
            "2s",
            "57014",
        ),
        (
            "SET statement_timeout = 0;\n\
             CREATE TABLE big AS SELECT g, repeat('x', 200) AS pad FROM generate_series(1, 1000000) g;\n",
            "--shadow-max-size",
            "40MB",
            "57P01",
        ),
    ];
    for (sql, flag, limit, sqlstate) in cases {
        write_reviewed(&scratch, sql);
        let started = Instant::now();
        let output = run(
            &scratch,
            &server.url(CI_ROLE),
            &[flag, limit, "--format", "json"],
        );
        let all = show(&output);
        assert!(started.elapsed() < Duration::from_secs(90), "{flag}: {all}");
        let report: serde_json::Value = serde_json::from_slice(&output.stdout)
            .unwrap_or_else(|err| panic!("not JSON ({err}): {all}"));
        let failures: Vec<&str> = report["migrations"][0]["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["rule"] == "apply-failed")
            .filter_map(|f| f["message"].as_str())
            .collect();
        assert!(
            failures.len() == 1 && failures[0].contains(sqlstate) && failures[0].contains(flag),
            "{flag} {sqlstate}: {all}"
        );
        let changed = changes(&before, &server.state());
        assert!(changed.is_empty(), "{flag} changed {changed:#?}");
        assert_eq!(server.shadow_databases(), Vec::<String>::new(), "{flag}");
    }
}

#[test]
fn a_history_migration_that_acts_beyond_its_database_stops_the_shadow_for_its_directory() {
    let Some(server) = UserServer::start() else {
        return;
    };
    let before = server.state();
    let scratch = project("history");
    write_reviewed(
        &scratch,
        "CREATE TABLE t (id int);\nALTER /* x */ SYSTEM SET work_mem = '1GB';\n",
    );
    scratch.write(
        "migrations/003_y.sql",
        "ALTER TABLE t ADD COLUMN note text;\n",
    );
    let output = review(&scratch, &server.url(CI_ROLE), &["migrations/003_y.sql"])
        .output()
        .unwrap();
    let all = show(&output);
    // Not applied there, and the review degrades to a static one, saying so: no failed run.
    assert_eq!(output.status.code(), Some(0), "{all}");
    assert!(
        all.contains("note: migrations/002_x.sql: line 2: this history migration makes a change beyond its own database (line 2, ALTER SYSTEM: server settings apply to every database on the server)"),
        "{all}"
    );
    assert!(
        all.contains("not applied on the shadow database: the history migration migrations/002_x.sql makes a change beyond its own database"),
        "the reviewed migration says why it has no trace: {all}"
    );
    assert!(changes(&before, &server.state()).is_empty());
    assert_eq!(server.shadow_databases(), Vec::<String>::new());
}

#[test]
fn privileged_roles_are_refused_unless_accepted() {
    let Some(server) = UserServer::start() else {
        return;
    };
    server.execute(
        "postgres",
        "CREATE ROLE reader LOGIN CREATEDB IN ROLE pg_read_server_files;
         CREATE ROLE middle NOLOGIN IN ROLE pg_execute_server_program;
         CREATE ROLE indirect LOGIN CREATEDB NOINHERIT IN ROLE middle;
         CREATE ROLE admin_member LOGIN CREATEDB IN ROLE postgres;
         CREATE ROLE role_maker LOGIN CREATEDB CREATEROLE;",
    );
    let version: u32 = server.query("postgres", "SELECT current_setting('server_version_num')")[0]
        .parse()
        .unwrap();
    let mut refused = vec![
        ("postgres", "is a superuser"),
        (
            "admin_member",
            "is a member of the superuser role postgres, so SET ROLE makes it a superuser",
        ),
        ("reader", "is a member of pg_read_server_files"),
        ("indirect", "is a member of pg_execute_server_program"),
    ];
    if version < 160000 {
        refused.push(("role_maker", "has CREATEROLE"));
    }
    let scratch = project("privileged");
    write_reviewed(&scratch, "ALTER TABLE accounts DROP COLUMN name;\n");
    for (user, reason) in refused {
        let output = run(&scratch, &server.url(user), &[]);
        let all = show(&output);
        assert_eq!(output.status.code(), Some(2), "{user}: {all}");
        assert!(all.contains(reason), "{user}: {all}");
        assert!(
            all.contains("could then run programs on")
                && all.contains("CREATE ROLE migagent_ci LOGIN CREATEDB")
                && all.contains("--shadow-superuser"),
            "{user}: says why and what to do: {all}"
        );
        // Refused before anything was created, and still reviewed by the rules.
        assert!(all.contains("error[drop-column]"), "{user}: {all}");
        assert_eq!(server.shadow_databases(), Vec::<String>::new());
    }

    let output = run(&scratch, &server.url("postgres"), &["--shadow-superuser"]);
    let all = show(&output);
    assert_eq!(output.status.code(), Some(1), "{all}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("warning: --shadow-superuser: the shadow's role postgres is a superuser"),
        "{all}"
    );
    assert!(
        all.contains("applied on PostgreSQL"),
        "the shadow ran: {all}"
    );

    // The role the README recommends runs without a word about privileges.
    let output = run(&scratch, &server.url(CI_ROLE), &[]);
    let all = show(&output);
    assert_eq!(output.status.code(), Some(1), "{all}");
    assert!(
        !String::from_utf8_lossy(&output.stderr).contains("warning:"),
        "{all}"
    );
}

/// A review whose migration sleeps; signalled with SIGTERM if the test fails before it ends.
struct Running(Option<Child>);

impl Running {
    /// Starts `migagent review` on a migration that sleeps and returns once the server runs it.
    fn start(server: &UserServer, scratch: &Scratch) -> Running {
        write_reviewed(scratch, "SELECT pg_sleep(60);\n");
        let mut child = review(scratch, &server.url(CI_ROLE), &["migrations/002_x.sql"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the binary runs");
        let deadline = Instant::now() + STARTUP_LIMIT;
        while server
            .query(
                "postgres",
                "SELECT pid::text FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(60)'",
            )
            .is_empty()
        {
            if let Some(status) = child.try_wait().unwrap() {
                let mut stderr = String::new();
                let _ = child.stderr.take().unwrap().read_to_string(&mut stderr);
                panic!("migagent ended ({status}) before the statement ran: {stderr}");
            }
            assert!(Instant::now() < deadline, "the statement never ran");
            std::thread::sleep(Duration::from_millis(100));
        }
        Running(Some(child))
    }

    fn signal(mut self, signal: &str) -> Output {
        let child = self.0.take().unwrap();
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(child.id().to_string())
            .status()
            .expect("kill runs");
        assert!(status.success());
        child.wait_with_output().unwrap()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(child.id().to_string())
                .status();
            let _ = child.wait();
        }
    }
}

/// Whether any session holds an advisory lock (the runs' claims).
fn advisory_locks(server: &UserServer) -> usize {
    server
        .query(
            "postgres",
            "SELECT pid::text FROM pg_locks WHERE locktype = 'advisory' AND granted",
        )
        .len()
}

#[test]
fn a_killed_runs_databases_are_swept_by_the_next_run_and_a_live_runs_are_not() {
    let Some(server) = UserServer::start() else {
        return;
    };
    let quick = project("sweep-quick");
    write_reviewed(&quick, "ALTER TABLE accounts ADD COLUMN note text;\n");
    // A database that looks like migagent's but carries no run's mark is never touched.
    server.execute(
        "postgres",
        &format!("CREATE DATABASE migagent_shadow_000000000000_0 OWNER {CI_ROLE}"),
    );

    // A live run's databases survive another run.
    let live_scratch = project("sweep-live");
    let live = Running::start(&server, &live_scratch);
    let live_databases = server.shadow_databases();
    assert!(live_databases.len() > 1, "the run created its databases");
    let output = run(&quick, &server.url(CI_ROLE), &[]);
    assert_eq!(output.status.code(), Some(0), "{}", show(&output));
    assert!(!show(&output).contains("dropped"), "{}", show(&output));
    assert_eq!(server.shadow_databases(), live_databases);

    // Killed with SIGKILL, it leaves them behind; the next run drops them once the server shows
    // the run is gone (its session ended and released its lock).
    let killed = live.signal("KILL");
    assert_eq!(killed.status.code(), None, "{}", show(&killed));
    assert_eq!(server.shadow_databases(), live_databases);
    let deadline = Instant::now() + Duration::from_secs(10);
    while advisory_locks(&server) > 0 {
        assert!(Instant::now() < deadline, "the killed run's lock stays");
        std::thread::sleep(Duration::from_millis(50));
    }
    let output = run(&quick, &server.url(CI_ROLE), &[]);
    let all = show(&output);
    assert_eq!(output.status.code(), Some(0), "{all}");
    let killed_runs: Vec<&str> = live_databases
        .iter()
        .map(String::as_str)
        .filter(|name| *name != "migagent_shadow_000000000000_0")
        .collect();
    assert!(
        all.contains(&format!(
            "warning: dropped {} shadow database(s) left on the server by migagent runs that ended without dropping them: {}",
            killed_runs.len(),
            killed_runs.join(", ")
        )),
        "{all}"
    );
    assert_eq!(
        server.shadow_databases(),
        ["migagent_shadow_000000000000_0"]
    );
}

#[test]
fn a_run_marks_its_databases_and_holds_its_claim_while_it_runs() {
    let Some(server) = UserServer::start() else {
        return;
    };
    let scratch = project("claim");
    let running = Running::start(&server, &scratch);
    let comments = server.query(
        "postgres",
        "SELECT datname || ': ' || shobj_description(oid, 'pg_database') FROM pg_database \
         WHERE datname LIKE 'migagent_shadow_%' ORDER BY 1",
    );
    assert!(!comments.is_empty());
    for comment in &comments {
        let (name, text) = comment.split_once(": ").unwrap();
        let run = &name["migagent_shadow_".len()..][..12];
        assert!(
            text.starts_with(&format!("migagent shadow database of run {run} (started ")),
            "{comment}"
        );
    }
    assert_eq!(advisory_locks(&server), 1);
    let output = running.signal("TERM");
    assert_eq!(output.status.code(), Some(143), "{}", show(&output));
    assert_eq!(server.shadow_databases(), Vec::<String>::new());
    assert_eq!(advisory_locks(&server), 0);
}
