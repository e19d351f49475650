//! Stopping every live ephemeral cluster when the process is told to stop (SIGINT from Ctrl-C, SIGTERM,
//! SIGHUP when the terminal goes away): otherwise the servers would outlive migagent and their temp dirs
//! would stay behind until the next run sweeps them.
//!
//! Databases migagent created on a server given by `--shadow URL` are dropped the same way: the server is
//! the user's, and the design promises to leave nothing there.
//!
//! Each cluster registers itself here when its dir is created and deregisters once its dir is removed. A
//! dedicated thread (through `signal-hook`, which keeps the real signal handler async-signal-safe) stops
//! the registered servers, removes their dirs and exits with 128 + the signal number, as a shell does.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use super::cluster::{stop_server, ClusterError, OsUser, StopMode};

/// What the teardown needs to stop a cluster and delete its dir.
#[derive(Debug)]
pub(crate) struct LiveCluster {
    pub(crate) dir: PathBuf,
    pub(crate) pg_ctl: PathBuf,
    pub(crate) run_as: Option<OsUser>,
}

static LIVE_CLUSTERS: Mutex<Vec<LiveCluster>> = Mutex::new(Vec::new());

/// Databases created on a user's server: how to reach the server, the database's name, and the
/// statement that drops it (it depends on the server's version).
static LIVE_DATABASES: Mutex<Vec<(tokio_postgres::Config, String, String)>> =
    Mutex::new(Vec::new());

/// How long the teardown tries to drop a user's server's databases before exiting anyway.
const DROP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Whether the teardown thread runs; guarded so that installing twice does not start a second one.
static INSTALLED: Mutex<bool> = Mutex::new(false);

/// Locks the registry; a thread that panicked while holding the lock left it consistent (every change is a
/// single push or retain), so poisoning is ignored.
fn live_clusters() -> MutexGuard<'static, Vec<LiveCluster>> {
    LIVE_CLUSTERS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

pub(crate) fn register(cluster: LiveCluster) {
    live_clusters().push(cluster);
}

pub(crate) fn deregister(dir: &Path) {
    live_clusters().retain(|cluster| cluster.dir != dir);
}

fn live_databases() -> MutexGuard<'static, Vec<(tokio_postgres::Config, String, String)>> {
    LIVE_DATABASES
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Registers a database migagent created on a server given by URL; `admin` connects to that server.
pub(crate) fn register_database(admin: &tokio_postgres::Config, name: &str, drop_sql: &str) {
    live_databases().push((admin.clone(), name.to_owned(), drop_sql.to_owned()));
}

pub(crate) fn deregister_database(name: &str) {
    live_databases().retain(|(_, registered, _)| registered != name);
}

/// Drops the registered databases, best effort and time-bounded: the process is exiting.
fn drop_databases(databases: &[(tokio_postgres::Config, String, String)]) {
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        return;
    };
    let drop_all = async {
        for (admin, _, drop_sql) in databases {
            let Ok((client, _)) = crate::postgres::connect(admin, "").await else {
                continue;
            };
            let _ = client.batch_execute(drop_sql).await;
        }
    };
    let _ = runtime.block_on(async { tokio::time::timeout(DROP_TIMEOUT, drop_all).await });
}

/// Makes SIGINT, SIGTERM and SIGHUP stop every live ephemeral cluster, remove its dir and exit with
/// 128 + the signal number. Call it first thing in `main`; calling it again does nothing.
pub fn install_signal_teardown() -> Result<(), ClusterError> {
    let mut installed = INSTALLED
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if *installed {
        return Ok(());
    }
    let action = "install the handler that stops temporary PostgreSQL servers on Ctrl-C";
    let mut signals =
        Signals::new([SIGINT, SIGTERM, SIGHUP]).map_err(|source| ClusterError::Io {
            action: action.to_string(),
            source,
        })?;
    std::thread::Builder::new()
        .name("cluster-teardown".to_string())
        .spawn(move || {
            if let Some(signal) = signals.forever().next() {
                tear_down_and_exit(signal);
            }
        })
        .map_err(|source| ClusterError::Io {
            action: action.to_string(),
            source,
        })?;
    *installed = true;
    Ok(())
}

/// Stops every registered server at once and removes its dir, then exits. The registry stays locked until
/// the exit, so another thread cannot register a cluster and start its server after the teardown has
/// looked; a dir it created just before blocking is left to the next run's sweep.
fn tear_down_and_exit(signal: i32) -> ! {
    let clusters = live_clusters();
    for cluster in clusters.iter() {
        // Best effort: a server that is already gone makes pg_ctl fail, and the dir goes either way.
        let _ = stop_server(
            &cluster.pg_ctl,
            &cluster.dir,
            cluster.run_as,
            StopMode::Immediate,
            true,
        );
        let _ = std::fs::remove_dir_all(&cluster.dir);
    }
    // Held until the exit, like the clusters' registry: the main thread, whose statements the drops
    // just cancelled, must not finish the run and exit with its own status first.
    let databases = live_databases();
    drop_databases(&databases);
    std::process::exit(128 + signal)
}
