//! `migagent stats` against a real PostgreSQL server with tables of known sizes, and `review --stats`
//! grading with the file it writes. Without PostgreSQL installed the server test is skipped, except in CI
//! (`CI=true`), where a missing server must fail loudly instead of passing vacuously.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod common;

use common::{binaries_or_skip, execute, runtime};
use migagent::shadow::cluster::EphemeralCluster;
use migagent::stats::{connect_read_only, read_only_config, Stats};

fn migagent(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_migagent"))
        .args(args)
        .output()
        .unwrap()
}

/// A fresh scratch directory for this test.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("migagent-stats-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

/// `SHOW` settings and a write attempt on a connection made the way `migagent stats` makes it.
fn read_only_probe(url: &str) -> (String, String, String) {
    let config = read_only_config(url).unwrap();
    runtime().block_on(async {
        let client = connect_read_only(&config).await.unwrap();
        let show = |setting: &'static str| {
            let client = &client;
            async move {
                let row = client
                    .query_one(&format!("SHOW {setting}"), &[])
                    .await
                    .unwrap();
                row.get::<_, String>(0)
            }
        };
        let default = show("default_transaction_read_only").await;
        let current = show("transaction_read_only").await;
        let write = client
            .batch_execute("CREATE TABLE written_by_stats (id int)")
            .await
            .unwrap_err();
        let write = write
            .as_db_error()
            .map_or_else(|| write.to_string(), |db| db.message().to_owned());
        (default, current, write)
    })
}

#[test]
fn stats_reads_real_sizes_read_only_and_grades_review() {
    let Some(binaries) = binaries_or_skip() else {
        return;
    };
    let cluster = EphemeralCluster::start(&binaries).unwrap();
    execute(
        &cluster,
        "CREATE TABLE big (id bigint, kind text);
         INSERT INTO big SELECT n, 'k' || n FROM generate_series(1, 20000) AS n;
         CREATE TABLE small (id bigint, kind text);
         INSERT INTO small SELECT n, 'k' || n FROM generate_series(1, 100) AS n;
         CREATE TABLE never_analysed (id bigint);
         ANALYZE big; ANALYZE small;",
    );
    let url = common::socket_url(&cluster, "postgres");
    let dir = scratch("real");
    let stats_file = dir.join("stats.json");

    let output = migagent(&[
        "stats",
        "--url",
        &url,
        "--output",
        stats_file.to_str().unwrap(),
    ]);
    assert!(
        output.status.success(),
        "migagent stats failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stats = Stats::load(&stats_file).unwrap();
    let table = |name: &str| {
        stats
            .table(name)
            .unwrap_or_else(|| panic!("{name} missing from {stats:#?}"))
    };
    assert_eq!(table("public.big").rows, 20_000);
    assert_eq!(table("public.small").rows, 100);
    assert!(table("public.big").total_bytes > table("public.small").total_bytes);
    assert!(table("public.small").total_bytes > 0);
    assert!(table("public.never_analysed").rows < 0, "{stats:#?}");
    assert!(
        stats.tables.keys().all(|name| name.starts_with("public.")),
        "only user tables: {stats:#?}"
    );

    let stdout = migagent(&["stats", "--url", &url]);
    assert!(stdout.status.success());
    let printed: Stats = serde_json::from_slice(&stdout.stdout).unwrap();
    assert_eq!(printed, stats);

    let (default, current, write) = read_only_probe(&url);
    assert_eq!((default.as_str(), current.as_str()), ("on", "on"));
    assert!(write.contains("read-only transaction"), "{write}");

    review_with_stats(&dir, &stats_file);
    fs::remove_dir_all(&dir).unwrap();
}

/// Reviews index builds on both tables: `small` drops to info, `big` stays an error and shows its size.
fn review_with_stats(dir: &Path, stats_file: &Path) {
    let migrations = dir.join("migrations");
    fs::create_dir_all(&migrations).unwrap();
    fs::write(
        migrations.join("001_tables.sql"),
        "CREATE TABLE big (id bigint, kind text);\nCREATE TABLE small (id bigint, kind text);\n",
    )
    .unwrap();
    let target = migrations.join("002_indexes.sql");
    fs::write(
        &target,
        "CREATE INDEX big_kind ON big (kind);\nCREATE INDEX small_kind ON small (kind);\n",
    )
    .unwrap();
    let output = migagent(&[
        "review",
        target.to_str().unwrap(),
        "--shadow",
        "off",
        "--format",
        "json",
        "--stats",
        stats_file.to_str().unwrap(),
    ]);
    assert_eq!(
        output.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let findings = report["migrations"][0]["findings"].as_array().unwrap();
    let on = |table: &str| {
        findings
            .iter()
            .find(|f| f["rule"] == "index-not-concurrent" && f["table"] == table)
            .unwrap_or_else(|| panic!("no index-not-concurrent on {table}: {findings:#?}"))
    };
    let (big, small) = (on("public.big"), on("public.small"));
    assert_eq!(big["severity"], "error");
    assert!(
        big["message"]
            .as_str()
            .unwrap()
            .contains("(on public.big: 20,000 rows, "),
        "{big}"
    );
    assert_eq!(small["severity"], "info");
    assert!(
        small["message"]
            .as_str()
            .unwrap()
            .contains("(public.small is small: 100 rows, "),
        "{small}"
    );
}

#[test]
fn unreachable_database_is_exit_2_without_the_password() {
    let output = migagent(&[
        "stats",
        "--url",
        "postgresql://app:s3cret@/app?host=/nonexistent/migagent-socket-dir",
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("cannot connect"), "{stderr}");
    assert!(!stderr.contains("s3cret"), "{stderr}");
    assert!(output.stdout.is_empty());
}

#[test]
fn missing_or_invalid_stats_file_is_exit_2() {
    let dir = scratch("invalid");
    let migration = dir.join("001.sql");
    fs::write(&migration, "CREATE TABLE t (id bigint);\n").unwrap();
    let invalid = dir.join("stats.json");
    fs::write(&invalid, "{\"tables\": []}").unwrap();
    for stats in [dir.join("missing.json"), invalid] {
        let output = migagent(&[
            "review",
            migration.to_str().unwrap(),
            "--shadow",
            "off",
            "--stats",
            stats.to_str().unwrap(),
        ]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains(stats.to_str().unwrap()), "{stderr}");
    }
    fs::remove_dir_all(&dir).unwrap();
}
