//! A throwaway PostgreSQL server that migagent starts itself, for tests and the shadow database.
//!
//! The server lives entirely inside one private temp dir: the data directory, the log and the Unix socket.
//! It listens on no TCP address, runs with trust auth and with durability switched off (the data is thrown
//! away anyway), and is stopped and deleted when the [`EphemeralCluster`] is dropped, when the process gets
//! SIGINT, SIGTERM or SIGHUP (see [`super::signals`]), or, after a SIGKILL, by the next start, which sweeps
//! away the dirs of dead processes.
//!
//! A cluster can start from a copy of a cached data dir instead of running initdb, and can be stopped into
//! the cache (see [`super::cache`]).
//!
//! Everything here is synchronous `std::process`; only [`EphemeralCluster::connection_config`] hands out a
//! `tokio_postgres` type, because that is what the callers connect with.

use std::fmt;
use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::cache::{copy_tree, Image, ImageCache, ImageKey, Transfer, MAX_KEY_LEN};
use super::signals::{self, LiveCluster};

/// The port number only names the socket file (`.s.PGSQL.5432`); with no TCP listener and a socket dir of
/// our own, the default port can never clash with another server.
const PORT: u16 = 5432;

/// The OS user the server runs as when migagent itself runs as root, because PostgreSQL refuses to run as
/// root. Debian's and most distributions' packages create it.
const SERVER_OS_USER: &str = "postgres";

/// The database superuser created by initdb; fixed so connection configs do not depend on who ran migagent.
const SUPERUSER: &str = "postgres";

/// Cluster dirs are named `<prefix><pid>-<n>` in the system temp dir (the pid only makes names unique).
const CLUSTER_DIR_PREFIX: &str = "migagent-pg-";

/// The file in a cluster dir that its live run holds an exclusive `flock` on: the lock goes with the
/// process however it ends, and unlike a pid it means the same in every PID namespace sharing the dir.
const LOCK_FILE: &str = "lock";

/// How old a cluster dir without a lock file must be before a sweep removes it: younger, it may be one
/// whose run has created it and not yet its lock file.
const UNLOCKED_DIR_GRACE: Duration = Duration::from_secs(600);

/// How long a starting server may take to accept connections (pg_ctl's default wait).
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// How often a starting server's status is checked. pg_ctl's `-w` checks only every 100 ms, about twice
/// what the server itself needs to start.
const START_POLL_INTERVAL: Duration = Duration::from_millis(2);

/// How many lines of the server log an error about a failed start shows.
const LOG_TAIL_LINES: usize = 20;

/// What to tell the user when no PostgreSQL installation can be found.
const INSTALL_HINT: &str =
    "install PostgreSQL (e.g. `apt-get install postgresql`) or pass the directory \
     holding initdb, pg_ctl and postgres with `--pg-bin DIR`";

/// Makes temp dir names unique within this process; the pid makes them unique across processes.
static NEXT_CLUSTER: AtomicUsize = AtomicUsize::new(0);

/// Why an ephemeral cluster could not be found, started or stopped. Each message says what failed and what
/// to do about it.
#[derive(Debug)]
pub enum ClusterError {
    /// No directory holding `initdb`, `pg_ctl` and `postgres` was found; `searched` lists where we looked.
    BinariesNotFound {
        searched: Vec<String>,
        /// Programs found but not used, and why (see [`find_binaries_outside`]).
        skipped: Vec<String>,
    },
    /// migagent runs as root and there is no unprivileged OS user to run the server as.
    NoUnprivilegedUser { user: String },
    /// A file system or process-spawning step failed.
    Io { action: String, source: io::Error },
    /// `initdb` or `pg_ctl` ran but reported failure.
    CommandFailed {
        command: String,
        output: String,
        log_tail: Option<String>,
        hint: &'static str,
    },
    /// An image cache key has characters outside `[a-z0-9_-]` or a bad length.
    InvalidImageKey { key: String },
    /// A cached image's files are not those it was stored with (truncated, changed, missing); the
    /// caller discards it and builds it again.
    DamagedImage { dir: PathBuf, what: String },
    /// The image cache could not be read or written; the caller can go on without it.
    ImageCache {
        root: PathBuf,
        action: String,
        source: io::Error,
    },
}

impl fmt::Display for ClusterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClusterError::BinariesNotFound { searched, skipped } => {
                write!(
                    f,
                    "could not find PostgreSQL's initdb, pg_ctl and postgres together; searched: {}",
                    searched.join("; "),
                )?;
                if !skipped.is_empty() {
                    write!(f, "; not used: {}", skipped.join("; "))?;
                }
                write!(f, ". To fix: {INSTALL_HINT}")
            }
            ClusterError::NoUnprivilegedUser { user } => write!(
                f,
                "PostgreSQL refuses to run as root, and there is no OS user `{user}` to run the ephemeral \
                 server as. To fix: create an unprivileged user (e.g. `useradd --system {user}`) or run \
                 migagent as a non-root user"
            ),
            ClusterError::Io { action, source } => write!(f, "could not {action}: {source}"),
            ClusterError::CommandFailed {
                command,
                output,
                log_tail,
                hint,
            } => {
                write!(f, "`{command}` failed")?;
                if !output.trim().is_empty() {
                    write!(f, ":\n{}", output.trim_end())?;
                }
                if let Some(tail) = log_tail {
                    write!(f, "\nlast lines of the server log:\n{}", tail.trim_end())?;
                }
                write!(f, "\nTo fix: {hint}")
            }
            ClusterError::InvalidImageKey { key } => write!(
                f,
                "`{key}` is not a valid image cache key: keys are 1 to {MAX_KEY_LEN} characters from a-z, \
                 0-9, `_` and `-`, so that they are safe as directory names. To fix: build the key from \
                 those characters only, e.g. `pg15-` followed by a hex hash of the migration history"
            ),
            ClusterError::DamagedImage { dir, what } => write!(
                f,
                "the cached image {} is damaged: {what}",
                dir.display()
            ),
            ClusterError::ImageCache {
                root,
                action,
                source,
            } => write!(
                f,
                "could not {action} in the image cache {}: {source}. To fix: make {} a directory you own \
                 and can write, point XDG_CACHE_HOME at one, or run without the image cache (the shadow \
                 database then applies the whole history on every run: slower, same result)",
                root.display(),
                root.display()
            ),
        }
    }
}

impl std::error::Error for ClusterError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ClusterError::Io { source, .. } | ClusterError::ImageCache { source, .. } => {
                Some(source)
            }
            _ => None,
        }
    }
}

/// Builds an [`ClusterError::Io`] from a description of the step that failed.
fn io_error(action: impl Into<String>) -> impl FnOnce(io::Error) -> ClusterError {
    let action = action.into();
    move |source| ClusterError::Io { action, source }
}

/// The three PostgreSQL programs the cluster needs, all from one installation (mixing versions breaks
/// initdb).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgBinaries {
    pub initdb: PathBuf,
    pub pg_ctl: PathBuf,
    pub postgres: PathBuf,
}

impl PgBinaries {
    fn programs(&self) -> [&Path; 3] {
        [&self.initdb, &self.pg_ctl, &self.postgres]
    }

    /// The binaries in `dir`, if all three are there and executable.
    fn in_dir(dir: &Path) -> Option<PgBinaries> {
        let binaries = PgBinaries {
            initdb: dir.join("initdb"),
            pg_ctl: dir.join("pg_ctl"),
            postgres: dir.join("postgres"),
        };
        let all_present = [&binaries.initdb, &binaries.pg_ctl, &binaries.postgres]
            .iter()
            .all(|path| is_executable(path));
        all_present.then_some(binaries)
    }
}

/// Whether `path` is a regular file (after symlinks) that someone may execute.
fn is_executable(path: &Path) -> bool {
    fs::metadata(path).is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}

/// Finds `initdb`, `pg_ctl` and `postgres` as [`find_binaries_outside`] does, with no directory to avoid
/// but relative PATH entries.
pub fn find_binaries(explicit: Option<&Path>) -> Result<PgBinaries, ClusterError> {
    find_binaries_outside(explicit, &[]).map(|(binaries, _)| binaries)
}

/// Finds `initdb`, `pg_ctl` and `postgres`: in `explicit` only when given (a wrong `--pg-bin` is an error,
/// not something to silently work around); otherwise on PATH, then in `pg_config --bindir`, then in the
/// highest-versioned `/usr/lib/postgresql/*/bin` (Debian keeps the server programs off PATH).
///
/// Searching, it never takes a program (nor runs `pg_config`) that lies inside one of `untrusted`
/// (the repository under review: a pull request can add a `postgres` there, and a PATH entry such as
/// `./bin` or `node_modules/.bin` may point into it) or in a relative PATH entry (which names another
/// directory wherever migagent runs, the checkout included). Returns the binaries with what was passed
/// over and why; when nothing else is found, the error lists those too.
pub fn find_binaries_outside(
    explicit: Option<&Path>,
    untrusted: &[PathBuf],
) -> Result<(PgBinaries, Vec<String>), ClusterError> {
    if let Some(dir) = explicit {
        return PgBinaries::in_dir(dir)
            .map(|binaries| (binaries, Vec::new()))
            .ok_or_else(|| ClusterError::BinariesNotFound {
                searched: vec![format!("{} (given explicitly)", dir.display())],
                skipped: Vec::new(),
            });
    }
    let mut skipped = Vec::new();
    let path_dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect())
        .unwrap_or_default();
    let vetted = |dir: &Path, skipped: &mut Vec<String>| {
        let binaries = PgBinaries::in_dir(dir)?;
        match untrusted_program(&binaries.programs(), untrusted) {
            None => Some(binaries),
            Some(reason) => {
                skipped.push(reason);
                None
            }
        }
    };
    if let Some(found) = path_dirs.iter().find_map(|dir| vetted(dir, &mut skipped)) {
        return Ok((found, skipped));
    }
    let mut searched = vec!["every directory on PATH".to_string()];
    match pg_config_bindir(&path_dirs, untrusted, &mut skipped) {
        Some(dir) => match vetted(&dir, &mut skipped) {
            Some(found) => return Ok((found, skipped)),
            None => searched.push(format!("{} (from `pg_config --bindir`)", dir.display())),
        },
        None => searched.push("`pg_config --bindir` (pg_config not found or failed)".to_string()),
    }
    let debian_root = Path::new("/usr/lib/postgresql");
    if let Some(dir) = highest_versioned_bin_dir(debian_root) {
        if let Some(found) = vetted(&dir, &mut skipped) {
            return Ok((found, skipped));
        }
    }
    searched.push(format!("{}/*/bin", debian_root.display()));
    Err(ClusterError::BinariesNotFound { searched, skipped })
}

/// Why one of `programs` may not run: it was found through a relative path, or it resolves to a file
/// inside one of `untrusted`; `None` when all may.
fn untrusted_program(programs: &[&Path], untrusted: &[PathBuf]) -> Option<String> {
    for program in programs {
        if program.is_relative() {
            return Some(format!(
                "{} (found through a relative PATH entry, which names a different directory wherever migagent runs)",
                crate::escape::path(program)
            ));
        }
        let resolved = fs::canonicalize(program).unwrap_or_else(|_| program.to_path_buf());
        let inside = untrusted.iter().find(|tree| {
            let tree = fs::canonicalize(tree).unwrap_or_else(|_| tree.to_path_buf());
            resolved.starts_with(tree)
        });
        if let Some(tree) = inside {
            return Some(format!(
                "{} (it is inside the repository under review, {}, which a pull request can change)",
                crate::escape::path(program),
                crate::escape::path(tree)
            ));
        }
    }
    None
}

/// The directory `pg_config --bindir` names, if a pg_config that may run ([`untrusted_program`]) is
/// on PATH and succeeds.
fn pg_config_bindir(
    path_dirs: &[PathBuf],
    untrusted: &[PathBuf],
    skipped: &mut Vec<String>,
) -> Option<PathBuf> {
    let pg_config = path_dirs
        .iter()
        .map(|dir| dir.join("pg_config"))
        .filter(|program| is_executable(program))
        .find(|program| match untrusted_program(&[program], untrusted) {
            None => true,
            Some(reason) => {
                skipped.push(reason);
                false
            }
        })?;
    let output = Command::new(pg_config).arg("--bindir").output().ok()?;
    if !output.status.success() {
        return None;
    }
    let dir = String::from_utf8(output.stdout).ok()?;
    let dir = dir.trim();
    (!dir.is_empty()).then(|| PathBuf::from(dir))
}

/// `<root>/<version>/bin` for the numerically highest version directory (so 16 beats 9.6).
fn highest_versioned_bin_dir(root: &Path) -> Option<PathBuf> {
    let entries = fs::read_dir(root).ok()?;
    entries
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let version = parse_version(entry.file_name().to_str()?)?;
            Some((version, entry.path().join("bin")))
        })
        .max_by(|a, b| a.0.cmp(&b.0))
        .map(|(_, bin)| bin)
}

/// `"9.6"` → `[9, 6]`; `None` for names that are not versions.
fn parse_version(name: &str) -> Option<Vec<u32>> {
    name.split('.').map(|part| part.parse().ok()).collect()
}

/// The server's version as (major, minor) from `postgres --version`, e.g. (15, 13); for versions before 10,
/// whose major version has two parts, the first two parts (9.6.24 → (9, 6)). Cached per binary, since the
/// cache keys and the default target version need it on every run.
pub fn server_version(binaries: &PgBinaries) -> Result<(u32, u32), ClusterError> {
    static VERSIONS: Mutex<Vec<(PathBuf, (u32, u32))>> = Mutex::new(Vec::new());
    let mut versions = VERSIONS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some((_, version)) = versions.iter().find(|(path, _)| *path == binaries.postgres) {
        return Ok(*version);
    }
    let program = binaries.postgres.display();
    let output = Command::new(&binaries.postgres)
        .arg("--version")
        .output()
        .map_err(io_error(format!("run {program} --version")))?;
    let text = combined_output(&output);
    let Some(version) = parse_server_version(&text).filter(|_| output.status.success()) else {
        return Err(ClusterError::CommandFailed {
            command: format!("{program} --version ({})", output.status),
            output: format!("expected `postgres (PostgreSQL) <version>`, got: {text}"),
            log_tail: None,
            hint: "pass the bin directory of a working PostgreSQL installation with `--pg-bin DIR`",
        });
    };
    versions.push((binaries.postgres.clone(), version));
    Ok(version)
}

/// `"postgres (PostgreSQL) 15.13 (Debian 15.13-1)"` → (15, 13); `"... 16devel"` or `"16beta2"` → (16, 0).
fn parse_server_version(text: &str) -> Option<(u32, u32)> {
    let version = text
        .split("(PostgreSQL)")
        .nth(1)?
        .split_whitespace()
        .next()?;
    let leading_number = |part: &str| -> Option<u32> {
        let digits: String = part.chars().take_while(char::is_ascii_digit).collect();
        digits.parse().ok()
    };
    let mut parts = version.split('.');
    let major = leading_number(parts.next()?)?;
    let minor = parts.next().and_then(leading_number).unwrap_or(0);
    Some((major, minor))
}

/// An OS account, as far as running a process as it goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OsUser {
    pub uid: u32,
    pub gid: u32,
}

impl OsUser {
    /// Looks `name` up in the text of an `/etc/passwd` file (`name:password:uid:gid:gecos:home:shell`).
    /// Parsed by hand so that dropping root needs no libc bindings.
    pub fn from_passwd(passwd: &str, name: &str) -> Option<OsUser> {
        passwd.lines().find_map(|line| {
            let mut fields = line.split(':');
            if fields.next()? != name {
                return None;
            }
            let _password = fields.next()?;
            let uid = fields.next()?.trim().parse().ok()?;
            let gid = fields.next()?.trim().parse().ok()?;
            Some(OsUser { uid, gid })
        })
    }

    /// Our own effective user and group. `/proc/self` is owned by them, which avoids a libc dependency
    /// just for `geteuid()`.
    pub(crate) fn current() -> Result<OsUser, ClusterError> {
        let meta =
            fs::metadata("/proc/self").map_err(io_error("read /proc/self to find our user id"))?;
        Ok(OsUser {
            uid: meta.uid(),
            gid: meta.gid(),
        })
    }
}

/// Who the server processes must run as: `None` to stay as ourselves, or the unprivileged user to switch to
/// when we are root (PostgreSQL exits with "root execution of the PostgreSQL server is not permitted").
fn server_user() -> Result<Option<OsUser>, ClusterError> {
    if OsUser::current()?.uid != 0 {
        return Ok(None);
    }
    let passwd = fs::read_to_string("/etc/passwd").map_err(io_error("read /etc/passwd"))?;
    OsUser::from_passwd(&passwd, SERVER_OS_USER)
        .filter(|user| user.uid != 0)
        .map(Some)
        .ok_or_else(|| ClusterError::NoUnprivilegedUser {
            user: SERVER_OS_USER.to_string(),
        })
}

/// The private directory a cluster lives in; removed on drop, so a start that fails half-way leaves no
/// debris behind.
#[derive(Debug)]
struct ClusterDir {
    path: PathBuf,
    /// The open lock file, locked for as long as the dir is in use (see [`LOCK_FILE`]).
    _lock: fs::File,
}

impl ClusterDir {
    /// Creates `migagent-pg-<pid>-<n>` under the system temp dir with mode 0700 (the socket there accepts
    /// anyone with trust auth, so only its owner may reach it), owned by `owner` when given.
    fn create(owner: Option<OsUser>) -> Result<ClusterDir, ClusterError> {
        let base = clusters_dir();
        let pid = std::process::id();
        loop {
            let n = NEXT_CLUSTER.fetch_add(1, Ordering::Relaxed);
            let path = base.join(format!("{CLUSTER_DIR_PREFIX}{pid}-{n}"));
            match fs::DirBuilder::new().mode(0o700).create(&path) {
                // A dir left behind by an earlier process that had our pid: try the next number.
                Err(err) if err.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(err) => return Err(io_error(format!("create {}", path.display()))(err)),
                Ok(()) => {
                    let lock = lock_dir(&path).map_err(|err| {
                        let _ = fs::remove_dir_all(&path);
                        io_error(format!("lock {}", path.join(LOCK_FILE).display()))(err)
                    })?;
                    let dir = ClusterDir { path, _lock: lock };
                    dir.hand_over(owner)?;
                    return Ok(dir);
                }
            }
        }
    }

    /// Gives the dir to the server's OS user, so initdb and the server can write there.
    fn hand_over(&self, owner: Option<OsUser>) -> Result<(), ClusterError> {
        let Some(user) = owner else {
            return Ok(());
        };
        std::os::unix::fs::chown(&self.path, Some(user.uid), Some(user.gid)).map_err(io_error(
            format!("hand {} to the server's OS user", self.path.display()),
        ))
    }

    /// Removes the dir and everything in it.
    fn remove(&self) -> Result<(), ClusterError> {
        match fs::remove_dir_all(&self.path) {
            Err(err) if err.kind() != io::ErrorKind::NotFound => {
                Err(io_error(format!("remove {}", self.path.display()))(err))
            }
            _ => Ok(()),
        }
    }
}

impl Drop for ClusterDir {
    fn drop(&mut self) {
        // Best effort: Drop cannot report errors; `EphemeralCluster::stop` reports them instead.
        let _ = self.remove();
    }
}

/// Creates the lock file of a new cluster dir and takes its lock. It is opened close-on-exec (Rust's
/// default), so the server, which outlives a killed run, never holds it.
fn lock_dir(dir: &Path) -> io::Result<fs::File> {
    let file = fs::File::create_new(dir.join(LOCK_FILE))?;
    file.lock()?;
    Ok(file)
}

/// Removes the cluster dirs that processes killed without a chance to clean up (SIGKILL, a crash) left in
/// the temp dir, stopping the server still running in one first. Only dirs whose lock nobody holds are
/// touched; a dir whose server cannot be stopped is left for a later sweep rather than pulled from under a
/// running server. Best effort: a failure here must not keep a new cluster from starting.
fn sweep_dead_runs(pg_ctl: &Path, run_as: Option<OsUser>) {
    // Both places a run may have used, whichever this run uses.
    let mut bases = vec![std::env::temp_dir(), PathBuf::from(SHM_DIR)];
    bases.dedup();
    sweep_dead_runs_in(&bases, pg_ctl, run_as);
}

fn sweep_dead_runs_in(bases: &[PathBuf], pg_ctl: &Path, run_as: Option<OsUser>) {
    let entries = bases
        .iter()
        .filter_map(|base| fs::read_dir(base).ok())
        .flatten();
    for entry in entries.flatten() {
        if entry
            .file_name()
            .to_str()
            .and_then(cluster_dir_pid)
            .is_none()
        {
            continue;
        }
        let dir = entry.path();
        // Held while the dir is removed, so that two sweeps never work on one dir.
        let Some(_abandoned) = abandoned_dir_lock(&dir) else {
            continue;
        };
        let data_dir = dir.join("data");
        let server_runs = postmaster_pid(&data_dir)
            .is_some_and(|server_pid| process_mentions(server_pid, &data_dir));
        if server_runs && stop_server(pg_ctl, &dir, run_as, StopMode::Immediate, true).is_err() {
            continue;
        }
        let _ = fs::remove_dir_all(&dir);
    }
}

/// `Some` when no live run holds the cluster dir: its lock file, now locked by us, or `None` inside it
/// when the dir has no lock file and is older than [`UNLOCKED_DIR_GRACE`].
fn abandoned_dir_lock(dir: &Path) -> Option<Option<fs::File>> {
    match fs::File::open(dir.join(LOCK_FILE)) {
        Ok(file) => file.try_lock().ok().map(|()| Some(file)),
        Err(err) if err.kind() == io::ErrorKind::NotFound => {
            let age = fs::metadata(dir)
                .and_then(|meta| meta.modified())
                .ok()
                .and_then(|modified| modified.elapsed().ok());
            age.is_some_and(|age| age > UNLOCKED_DIR_GRACE)
                .then_some(None)
        }
        Err(_) => None,
    }
}

/// A tmpfs on most Linux machines.
const SHM_DIR: &str = "/dev/shm";

/// The smallest free tmpfs the clusters go to: a shadow with a long history and its copy take a few
/// hundred MB, and Docker's default 64 MB `/dev/shm` must not be filled.
const MIN_SHM_BYTES: u64 = 1 << 30;

/// Where cluster dirs are created: `$TMPDIR` when the user set it; else `/dev/shm` when it is a tmpfs
/// of at least 1 GiB (creating the ~1,500 files of a cluster is up to 20 times faster in memory than on
/// some disks, and it is most of a warm review's time); else the system temp dir.
pub fn clusters_dir() -> PathBuf {
    if std::env::var_os("TMPDIR").is_some() {
        return std::env::temp_dir();
    }
    match shm_size() {
        Some(size) if size >= MIN_SHM_BYTES => PathBuf::from(SHM_DIR),
        _ => std::env::temp_dir(),
    }
}

/// The size of the tmpfs mounted on `/dev/shm`, from its `size=` mount option or, without one,
/// tmpfs's default of half the memory; `None` when it is not a tmpfs.
fn shm_size() -> Option<u64> {
    let mounts = fs::read_to_string("/proc/mounts").ok()?;
    let options = mounts.lines().find_map(|line| {
        let mut fields = line.split_whitespace();
        let (_, target, kind, options) = (
            fields.next()?,
            fields.next()?,
            fields.next()?,
            fields.next()?,
        );
        (target == SHM_DIR && kind == "tmpfs").then_some(options.to_owned())
    })?;
    match options
        .split(',')
        .find_map(|option| option.strip_prefix("size="))
    {
        Some(size) => parse_size(size),
        None => {
            let meminfo = fs::read_to_string("/proc/meminfo").ok()?;
            let kib: u64 = meminfo
                .lines()
                .find_map(|line| line.strip_prefix("MemTotal:"))?
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse()
                .ok()?;
            Some(kib * 1024 / 2)
        }
    }
}

/// `65536k`, `2g`, `1048576` (bytes) as mount options write sizes.
fn parse_size(size: &str) -> Option<u64> {
    let (digits, unit) = size.split_at(
        size.find(|c: char| !c.is_ascii_digit())
            .unwrap_or(size.len()),
    );
    let factor = match unit.to_ascii_lowercase().as_str() {
        "" => 1,
        "k" => 1 << 10,
        "m" => 1 << 20,
        "g" => 1 << 30,
        _ => return None,
    };
    digits.parse::<u64>().ok().map(|n| n * factor)
}

/// The pid in a cluster dir name `migagent-pg-<pid>-<n>`; `None` for any other name.
fn cluster_dir_pid(name: &str) -> Option<u32> {
    let (pid, n) = name.strip_prefix(CLUSTER_DIR_PREFIX)?.split_once('-')?;
    n.parse::<usize>().ok()?;
    pid.parse().ok()
}

/// Whether a process with this pid exists (zombies included, so a dying process still counts as alive).
pub(crate) fn process_exists(pid: u32) -> bool {
    Path::new("/proc").join(pid.to_string()).exists()
}

/// The postmaster's pid from the first line of `postmaster.pid` in `data_dir`, if the file is there.
fn postmaster_pid(data_dir: &Path) -> Option<u32> {
    let text = fs::read_to_string(data_dir.join("postmaster.pid")).ok()?;
    text.lines().next()?.trim().parse().ok()
}

/// Whether process `pid`'s command line mentions `data_dir` (the postmaster runs as `postgres -D <dir>`),
/// so that a pid reused by an unrelated process is never taken for a server.
fn process_mentions(pid: u32, data_dir: &Path) -> bool {
    let cmdline = fs::read(Path::new("/proc").join(pid.to_string()).join("cmdline"));
    cmdline.is_ok_and(|cmdline| {
        String::from_utf8_lossy(&cmdline).contains(&*data_dir.to_string_lossy())
    })
}

/// How a server is shut down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StopMode {
    /// Clean shutdown with a checkpoint, so the data dir needs no crash recovery when it is started again.
    Fast,
    /// Kill everything at once: nothing in a throwaway cluster is worth a clean shutdown.
    Immediate,
}

/// Runs `pg_ctl stop` on the cluster in `cluster_dir`; with `wait`, until the server has exited.
pub(crate) fn stop_server(
    pg_ctl: &Path,
    cluster_dir: &Path,
    run_as: Option<OsUser>,
    mode: StopMode,
    wait: bool,
) -> Result<(), ClusterError> {
    let mut command = server_command(pg_ctl, cluster_dir, run_as);
    let mode = match mode {
        StopMode::Fast => "fast",
        StopMode::Immediate => "immediate",
    };
    command
        .args(["stop", if wait { "-w" } else { "-W" }, "-m", mode, "-D"])
        .arg(cluster_dir.join("data"));
    let hint =
        "a `postgres` process may be left running; stop it with `kill` and remove the temp dir";
    run(command, "pg_ctl stop", Some(&cluster_dir.join("log")), hint)
}

/// A command for a PostgreSQL program, run as the server's OS user when we are root and from inside the
/// cluster dir (the unprivileged user may not be able to enter our current dir), with an environment of
/// PATH, locale and time zone only: the server runs the SQL under review, and nothing it can read (a
/// `COPY … FROM PROGRAM 'env'` where allowed, `/proc/self/environ`) may hold migagent's secrets.
fn server_command(program: &Path, cluster_dir: &Path, run_as: Option<OsUser>) -> Command {
    let mut command = Command::new(program);
    command
        .current_dir(cluster_dir)
        .env_clear()
        .envs(std::env::vars_os().filter(|(name, _)| is_server_environment(name)));
    if let Some(user) = run_as {
        command.uid(user.uid).gid(user.gid);
    }
    command
}

/// Whether an environment variable is passed on to the server: PATH, the locale (`LANG`, `LC_*`) and
/// the time zone (`TZ`).
fn is_server_environment(name: &std::ffi::OsStr) -> bool {
    let name = name.to_string_lossy();
    matches!(name.as_ref(), "PATH" | "LANG" | "TZ") || name.starts_with("LC_")
}

/// A running throwaway PostgreSQL server in its own temp dir, reachable only over a Unix socket in that dir.
/// Dropping it stops the server and deletes the dir; use [`EphemeralCluster::stop`] to see errors.
#[derive(Debug)]
pub struct EphemeralCluster {
    binaries: PgBinaries,
    run_as: Option<OsUser>,
    /// The postmaster, our child; waited for after it is told to stop, so it leaves no zombie.
    server: Option<Child>,
    /// Storing a copy of the fresh initdb in the image cache, on a thread while the cluster runs;
    /// joined before the cluster dir, which holds that copy, is removed.
    image_store: Option<std::thread::JoinHandle<()>>,
    /// Set once shutdown has run, so Drop does not repeat it after an explicit `stop`.
    stopped: bool,
    // Declared last: dropped after `Drop::drop` has stopped the server.
    dir: ClusterDir,
}

impl EphemeralCluster {
    /// initdb's a fresh cluster in a new temp dir and starts it, waiting until it accepts connections.
    pub fn start(binaries: &PgBinaries) -> Result<EphemeralCluster, ClusterError> {
        EphemeralCluster::start_cached(binaries, None)
    }

    /// Like [`EphemeralCluster::start`], but with a cache, copies the cache's freshly initdb'd data dir for
    /// this server version instead of running initdb, and stores one there after running initdb.
    pub fn start_cached(
        binaries: &PgBinaries,
        cache: Option<&ImageCache>,
    ) -> Result<EphemeralCluster, ClusterError> {
        let Some(cache) = cache else {
            let cluster = EphemeralCluster::create(binaries)?;
            cluster.initdb()?;
            return cluster.start_server();
        };
        let key = ImageCache::initdb_key(server_version(binaries)?.0);
        if let Some(image) = cache.lookup(&key) {
            let cluster = EphemeralCluster::create(binaries)?;
            let started = match image.copy_to(&cluster.data_dir(), cluster.run_as) {
                Ok(()) => cluster.start_server(),
                Err(err) => Err(err),
            };
            match started {
                Ok(cluster) => return Ok(cluster),
                // A damaged initdb image, or one the server cannot start from (a copy stored while
                // a Ctrl-C removed its source), costs nothing to replace: no notice needed.
                Err(ClusterError::DamagedImage { .. } | ClusterError::CommandFailed { .. }) => {
                    cache.discard(&key)
                }
                Err(err) => return Err(err),
            }
        }
        let mut cluster = EphemeralCluster::create(binaries)?;
        cluster.initdb()?;
        cluster.store_in_background(cache, key);
        cluster.start_server()
    }

    /// Stores a fresh initdb as the cache's image under `key` without making the start wait for it:
    /// the data dir is copied next to it in the cluster dir (in `/dev/shm`, tens of ms), and a thread
    /// moves that copy into the cache (on a disk, up to seconds) while the server starts and the
    /// review runs. Best effort, as the cluster is fine without it: the next run runs initdb again.
    fn store_in_background(&mut self, cache: &ImageCache, key: ImageKey) {
        let copy = self.dir.path.join("initdb-image");
        if copy_tree(&self.data_dir(), &copy, None).is_err() {
            let _ = fs::remove_dir_all(&copy);
            return;
        }
        let cache = cache.clone();
        let store = std::thread::Builder::new()
            .name("migagent-initdb-image".into())
            .spawn(move || {
                let _ = cache.store(&key, &copy, Transfer::Move);
                let _ = fs::remove_dir_all(&copy);
            });
        self.image_store = store.ok();
    }

    /// Starts a cluster from a copy of a cached image (a data dir a cluster was stopped into), so whatever
    /// was applied before the image was stored is there without applying it again. The server never runs
    /// on the cache itself: concurrent runs share it, and a crash must not damage it.
    pub fn start_from_image(
        binaries: &PgBinaries,
        image: &Image,
    ) -> Result<EphemeralCluster, ClusterError> {
        let cluster = EphemeralCluster::create(binaries)?;
        image.copy_to(&cluster.data_dir(), cluster.run_as)?;
        cluster.start_server()
    }

    /// The temp dir holding the server's Unix socket (and its data dir and log).
    pub fn socket_dir(&self) -> &Path {
        &self.dir.path
    }

    /// The server's data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path.join("data")
    }

    /// The server's log file.
    pub fn log_file(&self) -> PathBuf {
        self.dir.path.join("log")
    }

    /// The port; it only names the socket file, since the server has no TCP listener.
    pub fn port(&self) -> u16 {
        PORT
    }

    /// Connection settings for `dbname` as the superuser over the Unix socket (tokio-postgres treats a host
    /// that is an absolute path as a socket dir).
    pub fn connection_config(&self, dbname: &str) -> tokio_postgres::Config {
        let mut config = tokio_postgres::Config::new();
        config
            .host_path(self.socket_dir())
            .port(PORT)
            .user(SUPERUSER)
            .dbname(dbname);
        config
    }

    /// Stops the server and deletes its dir, reporting what went wrong (Drop does the same silently).
    pub fn stop(mut self) -> Result<(), ClusterError> {
        self.shutdown()
    }

    /// Stops the server cleanly (so the image needs no crash recovery) and moves its data dir into `cache`
    /// under `key`, then deletes the cluster dir. When another run stored `key` first, its image is kept.
    pub fn stop_into_image(
        mut self,
        cache: &ImageCache,
        key: &ImageKey,
    ) -> Result<(), ClusterError> {
        self.stop_server(StopMode::Fast)?;
        let stored = cache.store(key, &self.data_dir(), Transfer::Move);
        let cleaned_up = self.shutdown();
        stored.and(cleaned_up)
    }

    /// Clears away dead runs' leftovers, then creates the cluster dir and registers it for teardown on a
    /// signal. Dropping the result removes the dir, so a start that fails after this leaves nothing behind.
    fn create(binaries: &PgBinaries) -> Result<EphemeralCluster, ClusterError> {
        let run_as = server_user()?;
        sweep_dead_runs(&binaries.pg_ctl, run_as);
        let dir = ClusterDir::create(run_as)?;
        signals::register(LiveCluster {
            dir: dir.path.clone(),
            pg_ctl: binaries.pg_ctl.clone(),
            run_as,
        });
        Ok(EphemeralCluster {
            binaries: binaries.clone(),
            run_as,
            server: None,
            image_store: None,
            stopped: false,
            dir,
        })
    }

    /// Creates the data dir: trust auth (only our 0700 dir's owner can reach the socket), no fsync (the
    /// data is disposable), C locale and UTF8 so results do not depend on the host's locale, and 1 MB WAL
    /// segments instead of 16 MB (a fresh data dir of 28 MB instead of 39 MB, less to copy from a cache).
    fn initdb(&self) -> Result<(), ClusterError> {
        let mut command = self.command(&self.binaries.initdb);
        command.arg("-D").arg(self.data_dir()).args([
            "-U",
            SUPERUSER,
            "--auth=trust",
            "--no-sync",
            "-E",
            "UTF8",
            "--locale=C",
            "--wal-segsize=1",
        ]);
        run(command, "initdb", None, INSTALL_HINT)
    }

    /// Starts the postmaster as our child and waits until it accepts connections. It is started directly
    /// rather than through `pg_ctl start -w` because pg_ctl checks readiness only every 100 ms; its own
    /// process group keeps a Ctrl-C at the terminal from reaching it before our teardown does.
    fn start_server(mut self) -> Result<EphemeralCluster, ClusterError> {
        self.spawn_server()?;
        Ok(self)
    }

    /// Stops the server cleanly (so the image needs no crash recovery), stores a copy of its data dir
    /// in `cache` under `key` (another run's image of the same key is kept), and starts it again.
    pub fn store_image(&mut self, cache: &ImageCache, key: &ImageKey) -> Result<(), ClusterError> {
        self.stop_server(StopMode::Fast)?;
        // Best effort: without the image the next run applies the history again.
        let _ = cache.store(key, &self.data_dir(), Transfer::Copy);
        self.spawn_server()
    }

    /// Starts the postmaster on the data dir (see [`EphemeralCluster::start_server`]).
    fn spawn_server(&mut self) -> Result<(), ClusterError> {
        let log_file = self.log_file();
        let log = fs::File::create(&log_file).map_err(io_error(format!(
            "create the server log {}",
            log_file.display()
        )))?;
        let log_for_stderr = log.try_clone().map_err(io_error(format!(
            "open the server log {}",
            log_file.display()
        )))?;
        let mut command = self.command(&self.binaries.postgres);
        command
            .arg("-D")
            .arg(self.data_dir())
            .args(
                self.server_settings()
                    .iter()
                    .flat_map(|setting| ["-c", setting]),
            )
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_for_stderr)
            .process_group(0);
        let server = command.spawn().map_err(io_error(format!(
            "run {}",
            self.binaries.postgres.display()
        )))?;
        // Held by the cluster before waiting, so that a failed wait still stops the server on drop.
        let data_dir = self.data_dir();
        let server = self.server.insert(server);
        wait_until_ready(server, &data_dir, &log_file)
    }

    /// The server's settings: no TCP listener, the socket in our private dir, no durability (the data is
    /// disposable) and no autovacuum (nothing to clean up in a short-lived cluster, and no background work
    /// that makes traces and timings vary). WAL beyond two 1 MB segments is removed at each checkpoint
    /// instead of kept for reuse, so stored images stay small and quick to copy; new segments are not
    /// zero-filled first (applying a long history creates many, and zero-filling them tripled its time).
    fn server_settings(&self) -> Vec<String> {
        vec![
            "listen_addresses=".to_string(),
            format!("unix_socket_directories={}", self.socket_dir().display()),
            format!("port={PORT}"),
            "fsync=off".to_string(),
            "synchronous_commit=off".to_string(),
            "full_page_writes=off".to_string(),
            "autovacuum=off".to_string(),
            "min_wal_size=2MB".to_string(),
            "wal_init_zero=off".to_string(),
        ]
    }

    /// Tells the server to stop and waits for it to exit; a no-op when it is not running.
    fn stop_server(&mut self, mode: StopMode) -> Result<(), ClusterError> {
        let Some(mut server) = self.server.take() else {
            return Ok(());
        };
        let already_exited = server.try_wait().is_ok_and(|status| status.is_some());
        if already_exited {
            return Ok(());
        }
        // pg_ctl's own wait (`-w`) polls every 100 ms; waiting for our child returns the moment it exits.
        stop_server(
            &self.binaries.pg_ctl,
            &self.dir.path,
            self.run_as,
            mode,
            false,
        )?;
        server
            .wait()
            .map_err(io_error("wait for the server to exit"))?;
        Ok(())
    }

    /// Stops the server immediately (nothing in it is worth a clean shutdown), then removes the dir.
    fn shutdown(&mut self) -> Result<(), ClusterError> {
        if self.stopped {
            return Ok(());
        }
        self.stopped = true;
        let stopped = self.stop_server(StopMode::Immediate);
        if let Some(store) = self.image_store.take() {
            let _ = store.join();
        }
        let removed = self.dir.remove();
        signals::deregister(&self.dir.path);
        stopped.and(removed)
    }

    fn command(&self, program: &Path) -> Command {
        server_command(program, &self.dir.path, self.run_as)
    }
}

impl Drop for EphemeralCluster {
    fn drop(&mut self) {
        // Never panic in Drop; `stop` is there for callers who want to see errors.
        let _ = self.shutdown();
    }
}

/// Polls until the postmaster reports `ready` in `postmaster.pid` (what `pg_ctl start -w` waits for),
/// failing with the server log when it exits or takes longer than [`START_TIMEOUT`].
fn wait_until_ready(
    server: &mut Child,
    data_dir: &Path,
    log_file: &Path,
) -> Result<(), ClusterError> {
    let pid_file = data_dir.join("postmaster.pid");
    let started = Instant::now();
    let failure = |what: String| ClusterError::CommandFailed {
        command: format!("postgres ({what})"),
        output: String::new(),
        log_tail: log_tail(log_file),
        hint:
            "read the server log above; too little shared memory or a data directory from another \
               PostgreSQL version are the usual causes",
    };
    loop {
        let exited = server
            .try_wait()
            .map_err(io_error("check whether the server is still running"))?;
        if let Some(status) = exited {
            return Err(failure(status.to_string()));
        }
        if postmaster_is_ready(&pid_file, server.id()) {
            return Ok(());
        }
        if started.elapsed() > START_TIMEOUT {
            let waited = START_TIMEOUT.as_secs();
            return Err(failure(format!(
                "not accepting connections after {waited} s"
            )));
        }
        std::thread::sleep(START_POLL_INTERVAL);
    }
}

/// Whether `postmaster.pid` names `server_pid` (line 1: not a stale file of an earlier server) and its
/// status line (line 8, since PostgreSQL 10) says `ready`.
fn postmaster_is_ready(pid_file: &Path, server_pid: u32) -> bool {
    let Ok(text) = fs::read_to_string(pid_file) else {
        return false;
    };
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    lines.first() == Some(&server_pid.to_string().as_str()) && lines.get(7) == Some(&"ready")
}

/// Runs `command` to completion; on failure the error carries its output, the tail of `log` if given, and
/// `hint`.
fn run(
    mut command: Command,
    name: &str,
    log: Option<&Path>,
    hint: &'static str,
) -> Result<(), ClusterError> {
    let output = command.output().map_err(io_error(format!(
        "run {}",
        command.get_program().to_string_lossy()
    )))?;
    if output.status.success() {
        return Ok(());
    }
    Err(ClusterError::CommandFailed {
        command: format!("{name} ({})", output.status),
        output: combined_output(&output),
        log_tail: log.and_then(log_tail),
        hint,
    })
}

fn combined_output(output: &Output) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    format!("{}{}", stdout, stderr)
}

/// The last lines of the server log, if it exists and is not empty.
fn log_tail(log: &Path) -> Option<String> {
    let text = fs::read_to_string(log).ok()?;
    let lines: Vec<&str> = text.lines().collect();
    let tail = lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n");
    (!tail.trim().is_empty()).then_some(tail)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_sizes_parse() {
        assert_eq!(parse_size("65536k"), Some(64 << 20));
        assert_eq!(parse_size("2g"), Some(2 << 30));
        assert_eq!(parse_size("1048576"), Some(1 << 20));
        assert_eq!(parse_size("50%"), None);
    }

    #[test]
    fn versions_compare_numerically() {
        assert!(parse_version("16") > parse_version("9.6"));
        assert_eq!(parse_version("main"), None);
    }

    #[test]
    fn server_versions_parse_from_postgres_version_output() {
        let debian = "postgres (PostgreSQL) 15.13 (Debian 15.13-0+deb12u1)\n";
        assert_eq!(parse_server_version(debian), Some((15, 13)));
        assert_eq!(
            parse_server_version("postgres (PostgreSQL) 17devel"),
            Some((17, 0))
        );
        assert_eq!(
            parse_server_version("postgres (PostgreSQL) 16beta2"),
            Some((16, 0))
        );
        assert_eq!(
            parse_server_version("postgres (PostgreSQL) 9.6.24"),
            Some((9, 6))
        );
        assert_eq!(
            parse_server_version("bash: postgres: command not found"),
            None
        );
        assert_eq!(parse_server_version("postgres (PostgreSQL) "), None);
    }

    #[test]
    fn the_server_gets_path_locale_and_time_zone_only() {
        for passed in ["PATH", "LANG", "LC_ALL", "LC_MESSAGES", "TZ"] {
            assert!(is_server_environment(passed.as_ref()), "{passed}");
        }
        for kept_back in [
            "SECRET_TOKEN",
            "PGPASSWORD",
            "HOME",
            "OPENAI_API_KEY",
            "LD_PRELOAD",
        ] {
            assert!(!is_server_environment(kept_back.as_ref()), "{kept_back}");
        }
    }

    /// A dir whose name carries a live pid but whose lock nobody holds (its run died in another PID
    /// namespace) is swept; one whose name carries a dead pid but whose lock is held is left alone.
    #[test]
    fn sweeps_follow_the_lock_not_the_pid() {
        let base = std::env::temp_dir().join(format!("migagent-test-sweep-{}", std::process::id()));
        let _ = fs::remove_dir_all(&base);
        fs::create_dir_all(&base).unwrap();
        let abandoned = base.join(format!("{CLUSTER_DIR_PREFIX}1-0"));
        fs::create_dir(&abandoned).unwrap();
        drop(lock_dir(&abandoned).unwrap());
        let live = base.join(format!("{CLUSTER_DIR_PREFIX}99999999-0"));
        fs::create_dir(&live).unwrap();
        let held = lock_dir(&live).unwrap();
        let unlocked_young = base.join(format!("{CLUSTER_DIR_PREFIX}99999999-1"));
        fs::create_dir(&unlocked_young).unwrap();
        sweep_dead_runs_in(
            std::slice::from_ref(&base),
            Path::new("/nonexistent/pg_ctl"),
            None,
        );
        let (abandoned_gone, live_kept, young_kept) =
            (!abandoned.exists(), live.exists(), unlocked_young.exists());
        drop(held);
        fs::remove_dir_all(&base).unwrap();
        assert!(
            abandoned_gone,
            "an unlocked dir is swept even though pid 1 lives"
        );
        assert!(
            live_kept,
            "a locked dir is kept even though its pid is dead"
        );
        assert!(young_kept, "a new dir without its lock file yet is kept");
    }

    #[test]
    fn only_cluster_dir_names_yield_a_pid() {
        assert_eq!(cluster_dir_pid("migagent-pg-4242-0"), Some(4242));
        assert_eq!(cluster_dir_pid("migagent-pg-4242-17"), Some(4242));
        assert_eq!(cluster_dir_pid("migagent-pg-4242"), None);
        assert_eq!(cluster_dir_pid("migagent-pg-x-1"), None);
        assert_eq!(cluster_dir_pid("migagent-pg-12-1-extra"), None);
        assert_eq!(cluster_dir_pid("migagent-test-fakebin-12"), None);
    }
}
