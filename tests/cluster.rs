//! The ephemeral cluster against a real PostgreSQL server: start it, use it over the Unix socket, drop it,
//! and check nothing is left behind. Without PostgreSQL installed the server tests are skipped, except in CI
//! (`CI=true`), where a missing server must fail loudly instead of passing vacuously.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Instant;

mod common;

use common::{binaries_or_skip, runtime};
use migagent::shadow::cluster::{find_binaries, ClusterError, EphemeralCluster, OsUser};

/// Creates and fills a table over a real connection, and returns `SELECT count(*)` of it.
fn create_insert_count(cluster: &EphemeralCluster) -> i64 {
    common::execute(
        cluster,
        "CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t SELECT generate_series(1, 3);",
    );
    runtime().block_on(async {
        let client = common::connect(cluster, "postgres").await;
        let row = client
            .query_one("SELECT count(*) FROM t", &[])
            .await
            .unwrap();
        row.get(0)
    })
}

/// Whether any process's command line mentions `data_dir` (the postmaster runs as `postgres -D <data_dir>`).
fn process_mentions(data_dir: &Path) -> bool {
    let needle = data_dir.to_string_lossy().into_owned();
    fs::read_dir("/proc")
        .unwrap()
        .filter_map(|entry| fs::read(entry.ok()?.path().join("cmdline")).ok())
        .any(|cmdline| String::from_utf8_lossy(&cmdline).contains(&needle))
}

#[test]
fn cluster_serves_sql_over_its_socket_and_leaves_nothing_behind() {
    let Some(binaries) = binaries_or_skip() else {
        return;
    };
    let started = Instant::now();
    let cluster = EphemeralCluster::start(&binaries).unwrap_or_else(|err| panic!("{err}"));
    let start_time = started.elapsed();
    let dir: PathBuf = cluster.socket_dir().to_path_buf();
    let data_dir = cluster.data_dir();
    assert!(dir.join(format!(".s.PGSQL.{}", cluster.port())).exists());
    assert!(process_mentions(&data_dir), "the server should be running");

    assert_eq!(create_insert_count(&cluster), 3);

    let stopping = Instant::now();
    drop(cluster);
    eprintln!(
        "start took {start_time:?}, drop (stop + cleanup) took {:?}",
        stopping.elapsed()
    );
    assert!(!dir.exists(), "{} should be removed", dir.display());
    assert!(
        !process_mentions(&data_dir),
        "no postgres process for {} should remain",
        data_dir.display()
    );
}

#[test]
fn explicit_stop_reports_success_and_cleans_up() {
    let Some(binaries) = binaries_or_skip() else {
        return;
    };
    let cluster = EphemeralCluster::start(&binaries).unwrap_or_else(|err| panic!("{err}"));
    let dir = cluster.socket_dir().to_path_buf();
    cluster.stop().unwrap_or_else(|err| panic!("{err}"));
    assert!(!dir.exists());
}

#[test]
fn two_clusters_get_separate_dirs() {
    let Some(binaries) = binaries_or_skip() else {
        return;
    };
    let first = EphemeralCluster::start(&binaries).unwrap_or_else(|err| panic!("{err}"));
    let second = EphemeralCluster::start(&binaries).unwrap_or_else(|err| panic!("{err}"));
    assert_ne!(first.socket_dir(), second.socket_dir());
}

/// A bin dir whose initdb succeeds and whose postgres writes a FATAL line to its log (stderr) and exits, the
/// way a real server that cannot start does; real servers cannot be made to fail on demand.
fn failing_bin_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("migagent-test-fakebin-{}", std::process::id()));
    fs::create_dir_all(&dir).unwrap();
    let scripts = [
        ("initdb", "#!/bin/sh\nmkdir -p \"$2\"\n"),
        ("pg_ctl", "#!/bin/sh\nexit 1\n"),
        (
            "postgres",
            concat!(
                "#!/bin/sh\n",
                "echo 'FATAL:  could not create lock file' >&2\n",
                "echo \"data dir: $2\" >&2\n",
                "exit 1\n",
            ),
        ),
    ];
    for (name, body) in scripts {
        let path = dir.join(name);
        fs::write(&path, body).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    }
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

#[test]
fn failed_start_shows_the_server_log_and_cleans_up() {
    let bin_dir = failing_bin_dir();
    let binaries = find_binaries(Some(&bin_dir)).unwrap();
    let err = EphemeralCluster::start(&binaries).unwrap_err();
    fs::remove_dir_all(&bin_dir).unwrap();
    let message = err.to_string();
    assert!(message.contains("postgres (exit status: 1)"), "{message}");
    assert!(
        message.contains("FATAL:  could not create lock file"),
        "{message}"
    );
    assert!(message.contains("To fix:"), "{message}");
    let data_dir = message
        .lines()
        .find_map(|line| line.strip_prefix("data dir: "))
        .unwrap();
    let cluster_dir = Path::new(data_dir).parent().unwrap();
    assert!(
        !cluster_dir.exists(),
        "{} should be removed after a failed start",
        cluster_dir.display()
    );
}

#[test]
fn explicit_wrong_dir_is_a_clear_error() {
    let err = find_binaries(Some(Path::new("/nonexistent/pg/bin"))).unwrap_err();
    assert!(matches!(err, ClusterError::BinariesNotFound { .. }));
    let message = err.to_string();
    assert!(message.contains("/nonexistent/pg/bin"), "{message}");
    assert!(message.contains("apt-get install postgresql"), "{message}");
    assert!(message.contains("--pg-bin DIR"), "{message}");
}

#[test]
fn passwd_lookup_finds_the_named_user_only() {
    let passwd = "root:x:0:0:root:/root:/bin/bash\n\
                  postgresql:x:7:7::/:/bin/false\n\
                  postgres:x:101:104:PostgreSQL administrator,,,:/var/lib/postgresql:/bin/bash\n";
    assert_eq!(
        OsUser::from_passwd(passwd, "postgres"),
        Some(OsUser { uid: 101, gid: 104 })
    );
    assert_eq!(OsUser::from_passwd(passwd, "nobody"), None);
    assert_eq!(
        OsUser::from_passwd("postgres:x:notanumber:1::/:", "postgres"),
        None
    );
    assert_eq!(OsUser::from_passwd("", "postgres"), None);
}
