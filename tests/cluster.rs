//! The ephemeral cluster against a real PostgreSQL server: start it, use it over the Unix socket, drop it,
//! and check nothing is left behind. Without PostgreSQL installed the server tests are skipped, except in CI
//! (`CI=true`), where a missing server must fail loudly instead of passing vacuously.
//!
//! Signal and crash tests run this test binary again as a child process holding a cluster (see
//! [`child_process_holding_a_cluster`]), then signal or kill it.

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

mod common;

use common::{binaries_or_skip, runtime};
use migagent::shadow::cache::{ImageCache, ImageKey};
use migagent::shadow::cluster::{
    find_binaries, server_version, ClusterError, EphemeralCluster, OsUser, PgBinaries,
};
use migagent::shadow::signals::install_signal_teardown;

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
    assert!(
        common::process_mentions(&data_dir.to_string_lossy()),
        "the server should be running"
    );

    assert_eq!(create_insert_count(&cluster), 3);

    let stopping = Instant::now();
    drop(cluster);
    eprintln!(
        "start took {start_time:?}, drop (stop + cleanup) took {:?}",
        stopping.elapsed()
    );
    common::assert_cluster_gone(&dir);
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

/// Set in the environment of the child process: what the child does (see
/// [`child_process_holding_a_cluster`]).
const CHILD_MODE: &str = "MIGAGENT_TEST_CHILD";

/// The line the child prints its cluster dir on.
const CLUSTER_DIR_LINE: &str = "cluster dir: ";

/// Entry point of the child process that the signal and crash tests start; in a normal test run (no
/// [`CHILD_MODE`] in the environment) it returns at once. `teardown`: install the signal teardown, then
/// hold a cluster; `hold`: hold a cluster without it; `start-once`: start and stop one cluster and exit.
/// Holding means starting a cluster, printing its dir and waiting to be signalled or killed.
#[test]
fn child_process_holding_a_cluster() {
    let Ok(mode) = std::env::var(CHILD_MODE) else {
        return;
    };
    let binaries = find_binaries(None).unwrap();
    match mode.as_str() {
        "start-once" => {
            let cluster = EphemeralCluster::start(&binaries).unwrap_or_else(|err| panic!("{err}"));
            cluster.stop().unwrap_or_else(|err| panic!("{err}"));
            return;
        }
        "teardown" => {
            install_signal_teardown().unwrap();
            install_signal_teardown().unwrap(); // idempotent: must not start a second handler
        }
        "hold" => {}
        other => panic!("unknown {CHILD_MODE} {other}"),
    }
    let cluster = EphemeralCluster::start(&binaries).unwrap_or_else(|err| panic!("{err}"));
    let mut stdout = std::io::stdout();
    writeln!(
        stdout,
        "{CLUSTER_DIR_LINE}{}",
        cluster.socket_dir().display()
    )
    .unwrap();
    stdout.flush().unwrap();
    std::thread::sleep(Duration::from_secs(120));
    panic!("the parent test should have ended this process within 120 s");
}

/// This test binary, set up to run only [`child_process_holding_a_cluster`] in `mode`, with `TMPDIR` set
/// to `temp_dir` when given.
fn child_command(mode: &str, temp_dir: Option<&Path>) -> Command {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args([
            "--exact",
            "child_process_holding_a_cluster",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_MODE, mode);
    if let Some(dir) = temp_dir {
        command.env("TMPDIR", dir);
    }
    command
}

/// Starts a child holding a cluster (see [`child_command`]) and returns it with its cluster dir once the
/// cluster is up.
fn spawn_child_holding_a_cluster(mode: &str, temp_dir: Option<&Path>) -> (Child, PathBuf) {
    let mut child = child_command(mode, temp_dir)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let dir = stdout
        .lines()
        .map(Result::unwrap)
        // The harness prints `test <name> ... ` before the child's own output, on the same line.
        .find_map(|line| Some(PathBuf::from(line.split_once(CLUSTER_DIR_LINE)?.1)))
        .expect("the child should print its cluster dir");
    (child, dir)
}

fn send_signal(child: &Child, signal: &str) {
    let sent = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(sent.success(), "kill -{signal} failed");
}

/// Waits at most 30 s for the child to exit.
fn wait_for_exit(child: &mut Child) -> ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("the child did not exit within 30 s of the signal");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Signals a child holding a cluster with the teardown installed and checks that it exits with
/// `expected_code` leaving neither the dir nor the server behind.
fn signal_tears_down(signal: &str, expected_code: i32) {
    if binaries_or_skip().is_none() {
        return;
    }
    let (mut child, dir) = spawn_child_holding_a_cluster("teardown", None);
    let data_dir = dir.join("data");
    assert!(
        common::process_mentions(&data_dir.to_string_lossy()),
        "the child's server should run"
    );
    send_signal(&child, signal);
    let status = wait_for_exit(&mut child);
    assert_eq!(status.code(), Some(expected_code), "{status}");
    common::assert_cluster_gone(&dir);
}

#[test]
fn sigterm_stops_the_server_removes_the_dir_and_exits_143() {
    signal_tears_down("TERM", 143);
}

#[test]
fn sigint_stops_the_server_removes_the_dir_and_exits_130() {
    signal_tears_down("INT", 130);
}

#[test]
fn a_panicking_thread_holding_a_cluster_leaves_nothing_behind() {
    let Some(binaries) = binaries_or_skip() else {
        return;
    };
    let (sender, receiver) = std::sync::mpsc::channel();
    let thread = std::thread::spawn(move || {
        let cluster = EphemeralCluster::start(&binaries).unwrap_or_else(|err| panic!("{err}"));
        sender.send(cluster.socket_dir().to_path_buf()).unwrap();
        panic!("a failure while the cluster is in use");
    });
    let dir = receiver.recv().unwrap();
    assert!(thread.join().is_err(), "the thread should have panicked");
    assert!(!dir.exists(), "{} should be removed", dir.display());
    assert!(!common::process_mentions(
        &dir.join("data").to_string_lossy()
    ));
}

#[test]
fn the_next_start_clears_away_a_killed_run() {
    if binaries_or_skip().is_none() {
        return;
    }
    // A temp dir of its own, so that no cluster another test starts meanwhile sweeps the killed run first.
    let temp_dir = std::env::temp_dir().join(format!("migagent-test-tmp-{}", std::process::id()));
    fs::create_dir_all(&temp_dir).unwrap();
    // The server's OS user must be able to reach the cluster dirs inside.
    fs::set_permissions(&temp_dir, fs::Permissions::from_mode(0o755)).unwrap();

    let (mut child, dir) = spawn_child_holding_a_cluster("hold", Some(&temp_dir));
    let data_dir = dir.join("data");
    send_signal(&child, "KILL");
    let status = wait_for_exit(&mut child);
    assert_eq!(status.signal(), Some(9), "{status}");
    assert!(dir.exists(), "SIGKILL gives no chance to clean up");
    assert!(
        common::process_mentions(&data_dir.to_string_lossy()),
        "the killed run's server keeps running"
    );

    let next_run = child_command("start-once", Some(&temp_dir))
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(next_run.success(), "{next_run}");
    let leftovers: Vec<_> = fs::read_dir(&temp_dir).unwrap().collect();
    fs::remove_dir_all(&temp_dir).unwrap();
    assert!(!dir.exists(), "{} should be swept away", dir.display());
    assert!(
        !common::process_mentions(&data_dir.to_string_lossy()),
        "the killed run's server should be stopped"
    );
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// An image cache in a fresh dir under `parent`, removed on drop.
struct TestCache {
    cache: ImageCache,
}

impl TestCache {
    fn new(parent: &Path, name: &str) -> TestCache {
        let root = parent.join(format!(
            "migagent-test-images-{name}-{}",
            std::process::id()
        ));
        let _ = fs::remove_dir_all(&root);
        let cache = ImageCache::open(root).unwrap_or_else(|err| panic!("{err}"));
        TestCache { cache }
    }
}

impl Drop for TestCache {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(self.cache.root());
    }
}

/// The history key of the tests: opaque to the cache, as the real ones are.
fn history_key(binaries: &PgBinaries, history: &str) -> ImageKey {
    let (major, _) = server_version(binaries).unwrap_or_else(|err| panic!("{err}"));
    ImageKey::new(&format!("pg{major}-{history}")).unwrap()
}

/// Applies a small "history" in a database of its own, stores the cluster as an image, and checks that a
/// cluster started from it has the table and rows.
fn image_round_trip(binaries: &PgBinaries, cache: &ImageCache) {
    let cluster =
        EphemeralCluster::start_cached(binaries, Some(cache)).unwrap_or_else(|err| panic!("{err}"));
    common::execute(&cluster, "CREATE DATABASE app");
    runtime().block_on(async {
        common::connect(&cluster, "app")
            .await
            .batch_execute(
                "CREATE TABLE accounts (id int PRIMARY KEY); INSERT INTO accounts VALUES (1), (2);",
            )
            .await
            .unwrap();
    });
    let key = history_key(binaries, "roundtrip");
    let dir = cluster.socket_dir().to_path_buf();
    cluster
        .stop_into_image(cache, &key)
        .unwrap_or_else(|err| panic!("{err}"));
    assert!(
        !dir.exists(),
        "the cluster dir goes once its data is stored"
    );

    let image = cache.lookup(&key).expect("the image should be stored");
    assert!(!image.data_dir().join("postmaster.pid").exists());
    let restored =
        EphemeralCluster::start_from_image(binaries, &image).unwrap_or_else(|err| panic!("{err}"));
    let count: i64 = runtime().block_on(async {
        common::connect(&restored, "app")
            .await
            .query_one("SELECT count(*) FROM accounts", &[])
            .await
            .unwrap()
            .get(0)
    });
    assert_eq!(count, 2);
    assert!(
        image.data_dir().exists(),
        "starting from an image copies it, the image stays"
    );
}

#[test]
fn a_stored_image_starts_a_cluster_with_its_data() {
    let Some(binaries) = binaries_or_skip() else {
        return;
    };
    let cache = TestCache::new(&std::env::temp_dir(), "roundtrip");
    image_round_trip(&binaries, &cache.cache);
}

#[test]
fn images_reach_a_cache_on_another_file_system() {
    let Some(binaries) = binaries_or_skip() else {
        return;
    };
    let device = |path: &Path| fs::metadata(path).map(|meta| meta.dev()).ok();
    let other_fs = Path::new("/dev/shm");
    if device(other_fs).is_none() || device(other_fs) == device(&std::env::temp_dir()) {
        common::skipped("a /dev/shm test: /dev/shm is not a separate file system here");
        return;
    }
    let cache = TestCache::new(other_fs, "crossdev");
    image_round_trip(&binaries, &cache.cache);
}

/// The system identifier initdb gave the cluster's data dir: a copy keeps it, a new initdb makes another.
fn system_identifier(cluster: &EphemeralCluster) -> i64 {
    runtime().block_on(async {
        common::connect(cluster, "postgres")
            .await
            .query_one("SELECT system_identifier FROM pg_control_system()", &[])
            .await
            .unwrap()
            .get(0)
    })
}

#[test]
fn a_cached_initdb_image_replaces_initdb() {
    let Some(binaries) = binaries_or_skip() else {
        return;
    };
    let cache = TestCache::new(&std::env::temp_dir(), "initdb");
    let (major, _) = server_version(&binaries).unwrap_or_else(|err| panic!("{err}"));
    let initdb_key = ImageKey::new(&format!("initdb-pg{major}")).unwrap();
    assert!(cache.cache.lookup(&initdb_key).is_none());
    let first = EphemeralCluster::start_cached(&binaries, Some(&cache.cache))
        .unwrap_or_else(|err| panic!("{err}"));
    let initdb_identifier = system_identifier(&first);
    drop(first);
    let image = cache
        .cache
        .lookup(&initdb_key)
        .expect("the first start stores its fresh initdb");

    let second = EphemeralCluster::start_cached(&binaries, Some(&cache.cache))
        .unwrap_or_else(|err| panic!("{err}"));
    assert_eq!(
        system_identifier(&second),
        initdb_identifier,
        "the second cluster is a copy of the image"
    );
    drop(second);

    // A changed file makes the image damaged: it is replaced by a new initdb, never used.
    let config = image.data_dir().join("postgresql.auto.conf");
    let mut text = fs::read_to_string(&config).unwrap();
    text.push_str("shared_preload_libraries = 'no_such_lib'\n");
    fs::write(&config, text).unwrap();
    let third = EphemeralCluster::start_cached(&binaries, Some(&cache.cache))
        .unwrap_or_else(|err| panic!("{err}"));
    assert_ne!(system_identifier(&third), initdb_identifier);
    drop(third);
    let rebuilt = cache.cache.lookup(&initdb_key).expect("a new initdb image");
    let rebuilt_config =
        fs::read_to_string(rebuilt.data_dir().join("postgresql.auto.conf")).unwrap();
    assert!(!rebuilt_config.contains("no_such_lib"), "{rebuilt_config}");
}

/// An initdb image whose files match its manifest but that no server starts from (here a setting
/// naming a library that does not exist) is replaced by a new initdb instead of failing every run.
#[test]
fn an_initdb_image_the_server_cannot_start_from_is_replaced() {
    let Some(binaries) = binaries_or_skip() else {
        return;
    };
    let cache = TestCache::new(&std::env::temp_dir(), "unstartable");
    let (major, _) = server_version(&binaries).unwrap_or_else(|err| panic!("{err}"));
    let initdb_key = ImageKey::new(&format!("initdb-pg{major}")).unwrap();
    let broken = EphemeralCluster::start(&binaries).unwrap_or_else(|err| panic!("{err}"));
    common::execute(
        &broken,
        "ALTER SYSTEM SET shared_preload_libraries = 'no_such_lib'",
    );
    broken
        .stop_into_image(&cache.cache, &initdb_key)
        .unwrap_or_else(|err| panic!("{err}"));

    let started = EphemeralCluster::start_cached(&binaries, Some(&cache.cache))
        .unwrap_or_else(|err| panic!("{err}"));
    drop(started);
    let image = cache.cache.lookup(&initdb_key).expect("a new initdb image");
    let config = fs::read_to_string(image.data_dir().join("postgresql.auto.conf")).unwrap();
    assert!(!config.contains("no_such_lib"), "{config}");
}

#[test]
fn server_version_matches_what_the_running_server_reports() {
    let Some(binaries) = binaries_or_skip() else {
        return;
    };
    let version = server_version(&binaries).unwrap_or_else(|err| panic!("{err}"));
    let cluster = EphemeralCluster::start(&binaries).unwrap_or_else(|err| panic!("{err}"));
    let version_num: i32 = runtime().block_on(async {
        common::connect(&cluster, "postgres")
            .await
            .query_one("SELECT current_setting('server_version_num')::int", &[])
            .await
            .unwrap()
            .get(0)
    });
    // Since PostgreSQL 10, server_version_num is major * 10000 + minor.
    let reported = ((version_num / 10000) as u32, (version_num % 10000) as u32);
    assert_eq!(version, reported);
    assert_eq!(server_version(&binaries).unwrap(), version, "cached answer");
}

/// Times the ways to get a running cluster, printed for the record (run with `--nocapture`
/// `--test-threads=1` for numbers without other tests competing for the 2 cores).
#[test]
fn image_timings() {
    let Some(binaries) = binaries_or_skip() else {
        return;
    };
    let cache = TestCache::new(&std::env::temp_dir(), "timings");
    let cache = &cache.cache;
    let timed = |what: &str, start: Instant| eprintln!("{what}: {:?}", start.elapsed());

    let started = Instant::now();
    let cold = EphemeralCluster::start(&binaries).unwrap_or_else(|err| panic!("{err}"));
    timed("cold start (initdb)", started);
    let started = Instant::now();
    drop(cold);
    timed("stop -m immediate + remove", started);

    let started = Instant::now();
    drop(
        EphemeralCluster::start_cached(&binaries, Some(cache))
            .unwrap_or_else(|err| panic!("{err}")),
    );
    timed("cold start storing the initdb image, + drop", started);

    let started = Instant::now();
    let warm = EphemeralCluster::start_cached(&binaries, Some(cache))
        .unwrap_or_else(|err| panic!("{err}"));
    timed("start from the initdb image", started);
    common::execute(
        &warm,
        "CREATE TABLE accounts (id bigint PRIMARY KEY, email text NOT NULL UNIQUE);
         CREATE TABLE orders (id bigint PRIMARY KEY, account_id bigint REFERENCES accounts);
         CREATE INDEX ON orders (account_id);",
    );
    let key = history_key(&binaries, "timings");
    let started = Instant::now();
    warm.stop_into_image(cache, &key)
        .unwrap_or_else(|err| panic!("{err}"));
    timed("stop_into_image", started);

    let image = cache.lookup(&key).unwrap();
    let started = Instant::now();
    let baseline =
        EphemeralCluster::start_from_image(&binaries, &image).unwrap_or_else(|err| panic!("{err}"));
    timed("start from a baseline image", started);
    let started = Instant::now();
    baseline.stop().unwrap_or_else(|err| panic!("{err}"));
    timed("stop -m immediate + remove", started);
}
