//! What the integration tests that need a real PostgreSQL server share: finding the binaries (skipping
//! without them, except in CI where a missing server must fail loudly instead of passing vacuously), a
//! runtime, and a connection to one of the test's own ephemeral clusters.
#![allow(dead_code)] // each test binary uses its own subset

pub mod docs;
pub mod llm;
pub mod scratch;
pub mod validation;

use migagent::shadow::cluster::{find_binaries, EphemeralCluster, PgBinaries};

/// The installed binaries, or `None` (with a note) when there are none and we are not in CI.
pub fn binaries_or_skip() -> Option<PgBinaries> {
    match find_binaries(None) {
        Ok(binaries) => Some(binaries),
        Err(err) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("CI must run the tests against PostgreSQL, but PostgreSQL is missing: {err}")
        }
        Err(err) => {
            skipped(&format!("a test against PostgreSQL: {err}"));
            None
        }
    }
}

/// Says that a test was skipped and why, on the real stderr: libtest captures `eprintln!` of passing
/// tests, which would make a skipped test look like a passing one.
pub fn skipped(what: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "note: skipped {what}");
}

/// The shared corpus of real migration histories beside the project's checkout, or `None` (saying
/// the test was skipped) without it.
pub fn corpus_or_skip(test: &str) -> Option<std::path::PathBuf> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus");
    if dir.is_dir() {
        return Some(dir);
    }
    skipped(&format!(
        "{test}: no corpus at {} (it only exists beside the project's own checkout)",
        dir.display()
    ));
    None
}

/// Starts an ephemeral cluster, or `None` when PostgreSQL is absent outside CI.
pub fn cluster_or_skip() -> Option<EphemeralCluster> {
    let binaries = binaries_or_skip()?;
    Some(EphemeralCluster::start(&binaries).unwrap_or_else(|err| panic!("{err}")))
}

/// Exit status and both streams of a run of the binary, for assertion messages.
pub fn show(output: &std::process::Output) -> String {
    format!(
        "{}\n--- stdout\n{}\n--- stderr\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// A superuser connection to `dbname`; the connection task runs on the current runtime.
pub async fn connect(cluster: &EphemeralCluster, dbname: &str) -> tokio_postgres::Client {
    let (client, connection) = cluster
        .connection_config(dbname)
        .connect(tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|err| panic!("connect to {dbname}: {err}"));
    tokio::spawn(connection);
    client
}

/// Runs SQL as the superuser in the `postgres` database.
pub fn execute(cluster: &EphemeralCluster, sql: &str) {
    runtime().block_on(async {
        connect(cluster, "postgres")
            .await
            .batch_execute(sql)
            .await
            .unwrap_or_else(|err| panic!("{sql}: {err}"));
    });
}

/// A URL for the cluster's Unix socket, as a user would write it, logging in as `user`.
pub fn socket_url(cluster: &EphemeralCluster, user: &str) -> String {
    let dir: String = cluster
        .socket_dir()
        .to_string_lossy()
        .bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'/' | b'-' | b'_' | b'.' => {
                char::from(b).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect();
    format!(
        "postgresql://{user}@/postgres?host={dir}&port={}",
        cluster.port()
    )
}

/// Whether any process's command line mentions `needle` (the postmaster runs as `postgres -D <dir>/data`).
pub fn process_mentions(needle: &str) -> bool {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|entry| std::fs::read(entry.ok()?.path().join("cmdline")).ok())
        .any(|cmdline| String::from_utf8_lossy(&cmdline).contains(needle))
}

/// The cluster that lived in `dir` is gone: the dir is removed and no process runs on its data dir.
pub fn assert_cluster_gone(dir: &std::path::Path) {
    assert!(!dir.exists(), "{} should be removed", dir.display());
    let data_dir = dir.join("data");
    assert!(
        !process_mentions(&data_dir.to_string_lossy()),
        "no postgres process for {} should remain",
        data_dir.display()
    );
}

/// Every `.sql` file under `dir`, in sorted order.
pub fn sql_files(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            sql_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "sql") {
            out.push(path);
        }
    }
}
