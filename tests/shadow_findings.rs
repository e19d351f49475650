//! What the shadow reports and what it does not: `observed-blocking-lock` is not raised where the
//! lock model knows the lock (a replaced view, the table at the other end of a foreign key whose
//! column changes type) or where the table is the migration's own (dropped and created again), and is
//! graded as bounded when `lock_timeout` is set. Real PostgreSQL; skipped without it.

use std::fs;
use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

mod common;

/// Writes the migrations into a directory of their own, reviews `reviewed` with migagent's own
/// shadow, and returns the JSON report.
fn review(name: &str, migrations: &[(&str, &str)], reviewed: &str) -> Value {
    review_with(name, migrations, reviewed, &[])
}

fn review_with(name: &str, migrations: &[(&str, &str)], reviewed: &str, args: &[&str]) -> Value {
    let dir: PathBuf = std::env::temp_dir().join(format!(
        "migagent-shadow-findings-{name}-{}",
        std::process::id()
    ));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(dir.join("migrations")).unwrap();
    for (file, sql) in migrations {
        fs::write(dir.join("migrations").join(file), sql).unwrap();
    }
    let output = Command::new(env!("CARGO_BIN_EXE_migagent"))
        .args([
            "review",
            "--shadow",
            "auto",
            "--no-cache",
            "--format",
            "json",
        ])
        .args(args)
        .arg(format!("migrations/{reviewed}"))
        .current_dir(&dir)
        .env("XDG_CACHE_HOME", dir.join("cache"))
        .env_remove("MIGAGENT_SHADOW_URL")
        .output()
        .unwrap();
    let _ = fs::remove_dir_all(&dir);
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

fn findings<'a>(report: &'a Value, rule: &str) -> Vec<&'a Value> {
    report["migrations"][0]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["rule"] == rule)
        .collect()
}

/// Whether statement `index`'s trace holds `mode` on `relation`.
fn traced_lock(report: &Value, index: usize, relation: &str, mode: &str) -> bool {
    report["migrations"][0]["statements"][index]["trace"]["locks"]
        .as_array()
        .is_some_and(|locks| {
            locks
                .iter()
                .any(|l| l["relation"] == relation && l["mode"] == mode)
        })
}

const HISTORY: &str = "CREATE TABLE users (id bigint PRIMARY KEY);
CREATE TABLE orders (id bigint PRIMARY KEY, user_id int REFERENCES users (id));
CREATE VIEW recent_orders AS SELECT id FROM orders;
CREATE TABLE tokens (id int);
";

#[test]
fn locks_the_model_knows_and_recreated_tables_are_not_observed_blocking_locks() {
    if common::binaries_or_skip().is_none() {
        return;
    }
    let migration = "CREATE OR REPLACE VIEW recent_orders AS SELECT id FROM orders WHERE id > 10;
ALTER TABLE orders ALTER COLUMN user_id TYPE bigint;
BEGIN;
DROP TABLE IF EXISTS tokens CASCADE;
CREATE TABLE tokens (id serial PRIMARY KEY, token text NOT NULL, user_id bigint NOT NULL);
CREATE UNIQUE INDEX tokens_token_key ON tokens (token);
ALTER TABLE tokens ADD CONSTRAINT tokens_user_id_fkey FOREIGN KEY (user_id) REFERENCES users (id);
COMMIT;
";
    let report = review(
        "known-locks",
        &[("001_history.sql", HISTORY), ("002_x.sql", migration)],
        "002_x.sql",
    );
    // PostgreSQL 15 takes ACCESS EXCLUSIVE on the replaced view and on the referenced table…
    assert!(
        traced_lock(&report, 0, "public.recent_orders", "AccessExclusiveLock"),
        "{report:#}"
    );
    assert!(
        traced_lock(&report, 1, "public.users", "AccessExclusiveLock"),
        "{report:#}"
    );
    // …which the lock model predicts, so the shadow confirms instead of contradicting.
    assert_eq!(
        findings(&report, "observed-blocking-lock"),
        Vec::<&Value>::new()
    );
}

#[test]
fn with_lock_timeout_an_observed_lock_is_bounded_and_graded_info() {
    if common::binaries_or_skip().is_none() {
        return;
    }
    let hidden = "DO $$ BEGIN EXECUTE 'LOCK TABLE users IN ACCESS EXCLUSIVE MODE'; END $$;\n";
    let unbounded = review(
        "unbounded",
        &[("001_history.sql", HISTORY), ("002_x.sql", hidden)],
        "002_x.sql",
    );
    let found = findings(&unbounded, "observed-blocking-lock");
    assert_eq!(found.len(), 1, "{unbounded:#}");
    assert_eq!(found[0]["severity"], "warning");
    let message = found[0]["message"].as_str().unwrap();
    assert!(
        message.contains("a lock migagent's lock model does not predict from the SQL"),
        "{message}"
    );

    let bounded_sql = format!("SET lock_timeout = '2s';\n{hidden}");
    let bounded = review(
        "bounded",
        &[("001_history.sql", HISTORY), ("002_x.sql", &bounded_sql)],
        "002_x.sql",
    );
    let found = findings(&bounded, "observed-blocking-lock");
    assert_eq!(found.len(), 1, "{bounded:#}");
    assert_eq!(found[0]["severity"], "info");
    assert!(
        found[0]["message"]
            .as_str()
            .unwrap()
            .contains("lock_timeout is set, so it waits for the lock at most that long"),
        "{bounded:#}"
    );
}

#[test]
fn a_trace_from_another_version_than_the_target_says_so() {
    let Some(binaries) = common::binaries_or_skip() else {
        return;
    };
    let (major, minor) = migagent::shadow::cluster::server_version(&binaries).unwrap();
    let migration = "ALTER TABLE tokens ALTER COLUMN id TYPE bigint;\n";
    let files = [("001_history.sql", HISTORY), ("002_x.sql", migration)];
    let other = (major - 1).to_string();
    let report = review_with(
        "other-version",
        &files,
        "002_x.sql",
        &["--pg-version", &other],
    );
    let notices = report["migrations"][0]["notices"].as_array().unwrap();
    let said = format!(
        "the trace comes from PostgreSQL {major}.{minor} (the shadow's server), not from PostgreSQL {other}"
    );
    assert!(
        notices
            .iter()
            .any(|n| n["message"].as_str().unwrap().starts_with(&said)),
        "{report:#}"
    );
    let confirmed = findings(&report, "column-type-change-rewrites");
    assert!(
        confirmed[0]["message"]
            .as_str()
            .unwrap()
            .ends_with(&format!(" (trace from PostgreSQL {major}.{minor})")),
        "{report:#}"
    );

    let same = review_with("same-version", &files, "002_x.sql", &[]);
    let notices = same["migrations"][0]["notices"].as_array().unwrap();
    assert!(
        notices.iter().all(|n| !n["message"]
            .as_str()
            .unwrap()
            .contains("the trace comes from")),
        "{same:#}"
    );
}

/// `unparsed-statement` points at the statement's trace only where the shadow applied it: a
/// statement that fails there, or one after it, says why there is no trace, and none suggests
/// `--shadow`, which is running.
#[test]
fn unparsed_statements_point_at_a_trace_only_when_the_shadow_applied_them() {
    if common::binaries_or_skip().is_none() {
        return;
    }
    let migration = "ALTER TABLE users ADD COLUMN note text;
ALTER TABLE users ALTER COLUMN note SET COMPRESSION pglz;
ALTER TABLE users ALTER COLUMN note SET COMPRESSION pglz NO SUCH SYNTAX;
SELECT id FROM users FOR NO KEY UPDATE OF users NOWAIT;
";
    let report = review(
        "unparsed",
        &[("001_history.sql", HISTORY), ("002_x.sql", migration)],
        "002_x.sql",
    );
    let unparsed = findings(&report, "unparsed-statement");
    let said: Vec<(u64, &str, &str)> = unparsed
        .iter()
        .map(|f| {
            (
                f["statement"].as_u64().unwrap(),
                f["message"].as_str().unwrap(),
                f["help"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(said.len(), 3, "{report:#}");
    assert!(
        said[0].1.ends_with(
            "(the shadow database applied it: its trace shows the locks it really took)"
        ),
        "{report:#}"
    );
    assert!(said[0]
        .2
        .starts_with("check this statement by hand against its trace;"));
    assert!(
        said[1]
            .1
            .ends_with("(it fails on the shadow database, see apply-failed)"),
        "{report:#}"
    );
    assert!(
        said[2].1.ends_with(
            "(the shadow database did not apply it: the statement on line 3 failed first, and \
             the migration stops at its first error)"
        ),
        "{report:#}"
    );
    for (_, message, help) in &said[1..] {
        assert!(!message.contains("its trace shows"), "{message}");
        assert!(help.starts_with("check this statement by hand;"), "{help}");
    }
    assert!(
        said.iter().all(|(_, _, help)| !help.contains("--shadow")),
        "{report:#}"
    );
    assert_eq!(findings(&report, "apply-failed").len(), 1, "{report:#}");
}
