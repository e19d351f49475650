//! A shadow session: the server migagent applies migrations to (its own ephemeral cluster, or a server
//! given by URL), the databases it creates there, and their removal.
//!
//! migagent only ever runs SQL in databases it created. On a server given by URL, the one connection to a
//! database it did not create (the URL's own) only reads (the server's version and settings, the role's
//! privileges, `pg_database`, `pg_locks`, `pg_stat_activity`), holds the run's advisory lock, and runs `CREATE DATABASE`,
//! `COMMENT ON DATABASE` and `DROP DATABASE` for databases named `migagent_shadow_<run>_…` (see
//! [`super::url`]).

use std::cell::{Cell, RefCell};
use std::fmt;
use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_postgres::{Client, Config};

use crate::postgres::{self, db_error, describe, redact};
use crate::schema::naming::quote_ident;
use crate::shadow::apply::{Script, NEW_SESSION};
use crate::shadow::cache::{ImageCache, ImageKey};
use crate::shadow::cluster::{
    find_binaries_outside, server_version, ClusterError, EphemeralCluster, PgBinaries,
};
use crate::shadow::privilege::{self, APPLY_ROLE};
use crate::shadow::signals;
use crate::shadow::trace::TraceChanges;
use crate::shadow::url::{self, UrlRun, DATABASE_PREFIX};

/// The oldest PostgreSQL migagent starts a cluster of its own with.
const MIN_EPHEMERAL_MAJOR: u32 = 10;

/// Where the shadow database comes from (`--shadow`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShadowMode {
    /// No shadow: static rules only.
    Off,
    /// migagent's own ephemeral cluster when PostgreSQL's binaries are found, else no shadow.
    Auto,
    /// A server the user provides (e.g. a CI service container), where migagent may create databases.
    Url(String),
}

impl ShadowMode {
    /// `auto`, `off` or a `postgres://` / `postgresql://` URL.
    pub fn parse(text: &str) -> Result<ShadowMode, String> {
        match text {
            "auto" => Ok(ShadowMode::Auto),
            "off" => Ok(ShadowMode::Off),
            url if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                url.parse::<Config>().map_err(|e| {
                    format!(
                        "--shadow {} is not a valid PostgreSQL URL ({e}); use postgres://user@host:port/database",
                        redact(url)
                    )
                })?;
                Ok(ShadowMode::Url(url.to_owned()))
            }
            // Not echoed: it may be a connection string with a password.
            _ => Err("--shadow takes auto, off or a postgres:// (or postgresql://) URL".to_owned()),
        }
    }
}

/// Everything that decides how the shadow is set up.
#[derive(Debug, Clone)]
pub struct ShadowOptions {
    pub mode: ShadowMode,
    /// `--pg-bin`: the directory holding initdb, pg_ctl and postgres.
    pub pg_bin: Option<PathBuf>,
    /// Keep applied histories as images under the cache dir (`--no-cache` turns it off).
    pub cache: bool,
    /// `--shadow-superuser`: use a URL role that can reach beyond its databases (a superuser, a
    /// member of `pg_execute_server_program`, …), with a warning, instead of refusing it; on
    /// migagent's own cluster, apply migrations as its superuser instead of [`APPLY_ROLE`].
    pub superuser: bool,
    /// `--shadow-extension`: extensions migagent's superuser installs on its own cluster when a
    /// migration creates them (lower-case names).
    pub extensions: Vec<String>,
    /// Directories whose programs migagent never runs when it searches for PostgreSQL (see
    /// [`find_binaries_outside`]): the repository under review.
    pub untrusted_dirs: Vec<PathBuf>,
    /// Those of `extensions` that only a repository's migagent.toml allows, without the job's opt-in
    /// ([`TRUST_CONFIG_EXTENSIONS`]): the shadow refuses to start when PostgreSQL does not mark one
    /// of them trusted.
    pub config_extensions: Vec<String>,
    /// `--statement-timeout`: how long one statement may run on the shadow.
    pub statement_timeout: Duration,
    /// `--shadow-max-size`: the cap on the size of the databases migagent creates (by
    /// `pg_database_size`: all of them on its own cluster, this run's on a user's server), in bytes;
    /// on its own cluster a statement's temporary files may take a quarter of it.
    pub max_size: u64,
    /// `--shadow-concurrency`: how many drafts are validated at once, each in a copy of its own.
    pub concurrency: usize,
    /// `--trace-changes`: whether the trace reads each statement's schema changes.
    pub trace_changes: TraceChanges,
}

/// The default `--statement-timeout`.
pub const DEFAULT_STATEMENT_TIMEOUT: Duration = Duration::from_secs(300);

/// The default `--shadow-max-size`.
pub const DEFAULT_MAX_SIZE: u64 = 2 << 30;

/// The default `--shadow-concurrency`: the server does the work of a validation in processes of its
/// own, so a few at once keep a small machine's cores busy while one waits for a copy or a lock.
pub const DEFAULT_CONCURRENCY: usize = 4;

impl Default for ShadowOptions {
    fn default() -> Self {
        ShadowOptions {
            mode: ShadowMode::Off,
            pg_bin: None,
            cache: true,
            superuser: false,
            extensions: Vec::new(),
            config_extensions: Vec::new(),
            untrusted_dirs: Vec::new(),
            statement_timeout: DEFAULT_STATEMENT_TIMEOUT,
            max_size: DEFAULT_MAX_SIZE,
            concurrency: DEFAULT_CONCURRENCY,
            trace_changes: TraceChanges::Auto,
        }
    }
}

/// Why the shadow could not be set up or used; says what to do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShadowError(pub String);

impl fmt::Display for ShadowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The server's version, from `server_version_num` (150008 → 15.8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerVersion {
    pub major: u32,
    pub minor: u32,
}

impl ServerVersion {
    fn from_num(num: u32) -> ServerVersion {
        ServerVersion {
            major: num / 10_000,
            minor: num % 10_000,
        }
    }
}

impl fmt::Display for ServerVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// Where a directory's baseline stands when its review starts.
pub enum Baseline {
    /// The history is already applied in this database.
    Ready(String),
    /// A new empty database to apply the history to.
    Build(Box<Database>),
}

/// The server behind a session.
enum Server {
    Ephemeral {
        cluster: EphemeralCluster,
        image: ImagePlan,
    },
    Url(Config),
}

/// What the ephemeral cluster does with the image cache.
enum ImagePlan {
    /// No cache (`--no-cache`, or none usable), or the cluster started from the image it would store.
    None,
    /// Store the cluster as the image of this history when its baseline is sealed, before any
    /// reviewed statement runs.
    Store {
        cache: ImageCache,
        key: ImageKey,
        history_hash: String,
    },
}

/// Starts migagent's own cluster: from the cached image of the history when there is one, else from a
/// fresh (or cached) initdb, planning to store the image when the history is applied. A cached image
/// that is damaged or that the server cannot start from is discarded, with a warning saying so.
fn start_cluster(
    binaries: &PgBinaries,
    options: &ShadowOptions,
    history_hash: Option<&str>,
) -> Result<(EphemeralCluster, ImagePlan, Option<String>), ClusterError> {
    let use_cache = options.cache;
    // A cache dir that cannot be used only costs speed.
    let cache = use_cache
        .then(ImageCache::default_location)
        .flatten()
        .and_then(|root| ImageCache::open(root).ok());
    let Some(cache) = cache else {
        return Ok((EphemeralCluster::start(binaries)?, ImagePlan::None, None));
    };
    let (major, minor) = server_version(binaries)?;
    let privileges = image_privileges(options);
    let key = history_hash
        .and_then(|hash| ImageKey::new(&format!("pg{major}-{minor}-{privileges}-{hash}")).ok());
    let mut warning = None;
    if let Some((key, image)) = key.as_ref().and_then(|key| Some((key, cache.lookup(key)?))) {
        match EphemeralCluster::start_from_image(binaries, &image) {
            Ok(cluster) => return Ok((cluster, ImagePlan::None, None)),
            // A damaged image, or one the server cannot start from: never again.
            Err(err) => {
                cache.discard(key);
                warning = Some(format!(
                    "{err}. The image was discarded: the history is applied again and stored anew"
                ));
            }
        }
    }
    let cluster = EphemeralCluster::start_cached(binaries, Some(&cache))?;
    let plan = match (key, history_hash) {
        (Some(key), Some(hash)) => ImagePlan::Store {
            cache,
            key,
            history_hash: hash.to_owned(),
        },
        _ => ImagePlan::None,
    };
    Ok((cluster, plan, warning))
}

/// What decides who owns what in an image, for its key: `su` when migrations run as superuser, else
/// `lp` and, with allowed extensions, a hash of their names (they decide what the history installs).
fn image_privileges(options: &ShadowOptions) -> String {
    use sha2::{Digest, Sha256};
    if options.superuser {
        return "su".to_owned();
    }
    if options.extensions.is_empty() {
        return "lp".to_owned();
    }
    let digest = Sha256::digest(options.extensions.join(",").as_bytes());
    let hex: String = digest[..4].iter().map(|b| format!("{b:02x}")).collect();
    format!("lp{hex}")
}

/// A database migagent created, with a connection to it and a second one that watches the first
/// (statements that cannot run in a transaction block are observed from outside).
///
/// On migagent's own cluster both connect as [`APPLY_ROLE`], the least-privileged role that owns the
/// database (unless `--shadow-superuser`); `privileged` is then a superuser connection for what that
/// role may not run itself (see [`crate::shadow::privilege`]).
pub struct Database {
    pub name: String,
    pub client: Client,
    pub monitor: Client,
    /// A superuser connection on migagent's own cluster, for the statements [`Shadow::delegate`]
    /// hands it; none on a user's server, with `--shadow-superuser`, and on a validation's copy.
    pub privileged: Option<Client>,
    /// The task of `client`'s connection, awaited when the database is sealed so it has no sessions
    /// left.
    client_connection: JoinHandle<()>,
    /// The tasks of the other connections (`monitor`, `privileged`), awaited likewise.
    companions: Vec<JoinHandle<()>>,
}

/// A database's connections besides its client ([`Database::monitor`], [`Database::privileged`]),
/// with their tasks.
type Companions = (Client, Option<Client>, Vec<JoinHandle<()>>);

impl Database {
    fn assemble(
        name: String,
        (client, client_connection): (Client, JoinHandle<()>),
        (monitor, privileged, companions): Companions,
    ) -> Database {
        Database {
            name,
            client,
            client_connection,
            monitor,
            privileged,
            companions,
        }
    }
}

/// Whether a database gets a superuser connection for the statements the applying role may not
/// run (see [`Shadow::delegate`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Delegating {
    Yes,
    No,
}

/// An open shadow: a server, an admin connection for creating and dropping databases, and the
/// databases created so far (dropped by [`Shadow::finish`], or best effort on drop).
pub struct Shadow {
    runtime: tokio::runtime::Runtime,
    server: Server,
    admin: Client,
    /// More admin connections, for the databases that validations running at once create and drop:
    /// on [`Shadow::admin`] alone the server would copy them one after another. Opened as needed.
    spare_admins: RefCell<Vec<Client>>,
    version: ServerVersion,
    /// `migagent_shadow_<random>`: every database this session creates starts with it.
    prefix: String,
    /// (In cells: validations running at once create and drop databases through a shared session.)
    created: RefCell<Vec<String>>,
    /// Numbers the session's databases: names are never reused, even after a drop.
    next_database: Cell<usize>,
    /// Baselines the reviewed migrations were applied to directly: no longer the history's state.
    consumed: std::collections::HashSet<String>,
    /// On a server given by URL: this run's claim there.
    url_run: Option<UrlRun>,
    /// The role migrations run as on migagent's own cluster; `None`: the connection's own role.
    apply_role: Option<&'static str>,
    extensions: Vec<String>,
    /// Parameters a migration may not set on a role (see [`privilege::RESTRICTED_SETTINGS_SQL`]).
    restricted_settings: Vec<String>,
    /// Stops statements that outrun the limits (see [`watchdog`]); aborted on drop.
    watchdog: Option<tokio::task::JoinHandle<()>>,
    limits: Limits,
    /// `--shadow-concurrency`: how many validations make copies at once.
    concurrency: usize,
    /// What the user should hear about the shadow (a privileged role accepted, leftovers swept).
    warnings: Vec<String>,
}

impl Shadow {
    /// Opens the shadow `options` ask for: `Ok(None)` for `off`, and for `auto` when no PostgreSQL
    /// installation is found; an error when a requested shadow cannot be set up.
    ///
    /// `history_hash` names the history of the first directory to review: migagent's own cluster starts
    /// from the cached image of that history when there is one, and stores one when it finishes.
    pub fn open(
        options: &ShadowOptions,
        history_hash: Option<&str>,
    ) -> Result<Option<Shadow>, ShadowError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| ShadowError(format!("cannot start the async runtime: {e}")))?;
        let mut early_warnings = Vec::new();
        let (server, admin_config) = match &options.mode {
            ShadowMode::Off => return Ok(None),
            ShadowMode::Auto => {
                let found =
                    find_binaries_outside(options.pg_bin.as_deref(), &options.untrusted_dirs);
                let binaries = match found {
                    Ok((binaries, skipped)) => {
                        let dir = binaries.postgres.parent().unwrap_or(&binaries.postgres);
                        early_warnings.extend(skipped.iter().map(|program| {
                            format!(
                                "did not run {program}; the shadow runs PostgreSQL from {}",
                                crate::escape::path(dir)
                            )
                        }));
                        binaries
                    }
                    // No PostgreSQL here: `auto` reviews without a shadow. One passed over is a
                    // problem: the review would quietly lose its shadow.
                    Err(ClusterError::BinariesNotFound { skipped, .. })
                        if options.pg_bin.is_none() && skipped.is_empty() =>
                    {
                        return Ok(None)
                    }
                    Err(err) if options.pg_bin.is_none() => {
                        return Err(ShadowError(err.to_string()))
                    }
                    Err(err) => return Err(ShadowError(format!("--pg-bin: {err}"))),
                };
                // The ephemeral cluster knows the server is ready from the status line PostgreSQL 10
                // added to postmaster.pid.
                match server_version(&binaries) {
                    Ok((major, _)) if major < MIN_EPHEMERAL_MAJOR => {
                        return Err(ShadowError(format!(
                            "the PostgreSQL found in {} is version {major}; migagent's own shadow needs {MIN_EPHEMERAL_MAJOR} or newer. To fix: install a newer PostgreSQL and pass its bin directory with --pg-bin, give a server with --shadow URL, or use --shadow off",
                            binaries.postgres.parent().unwrap_or(&binaries.postgres).display()
                        )))
                    }
                    _ => {}
                }
                let (cluster, image, warning) = start_cluster(&binaries, options, history_hash)
                    .map_err(|err| {
                        ShadowError(format!(
                            "could not start the shadow database (an ephemeral PostgreSQL): {err}\n\
                             Or run without it: --shadow off"
                        ))
                    })?;
                early_warnings.extend(warning);
                let admin_config = cluster.connection_config("postgres");
                (Server::Ephemeral { cluster, image }, admin_config)
            }
            ShadowMode::Url(url) => {
                let config: Config = url.parse().map_err(|e| {
                    ShadowError(format!("--shadow {}: invalid URL ({e})", redact(url)))
                })?;
                (Server::Url(config.clone()), config)
            }
        };
        let (admin, _) = runtime
            .block_on(connect(&admin_config))
            .map_err(ShadowError)?;
        let version = runtime
            .block_on(admin.query_one("SELECT current_setting('server_version_num')::int", &[]))
            .map_err(|e| {
                ShadowError(format!("cannot read the server version: {}", db_error(&e)))
            })?;
        let version = ServerVersion::from_num(u32::try_from(version.get::<_, i32>(0)).unwrap_or(0));
        let (url_run, warnings) = match &server {
            Server::Url(config) => {
                let server = describe(config);
                let start = url::start(&admin, version, options.superuser, &server);
                let (run, warnings) = runtime.block_on(start)?;
                (Some(run), warnings)
            }
            Server::Ephemeral { .. } => (None, early_warnings),
        };
        let run_id = url_run
            .as_ref()
            .map_or_else(random_suffix, |run| run.id.clone());
        let prefix = format!("{DATABASE_PREFIX}{run_id}");
        let (apply_role, restricted_settings, watched) = match &server {
            Server::Ephemeral { cluster, .. } => {
                let (role, restricted) =
                    runtime.block_on(prepare_own_cluster(&admin, version, options))?;
                let watched = Watched {
                    config: cluster.connection_config("postgres"),
                    databases: "migagent\\_%".to_owned(),
                };
                (role, restricted, watched)
            }
            Server::Url(config) => {
                let watched = Watched {
                    config: config.clone(),
                    databases: format!("{}\\_%", prefix.replace('_', "\\_")),
                };
                (None, Vec::new(), watched)
            }
        };
        let limits = Limits {
            statement_timeout: options.statement_timeout,
            max_size: options.max_size,
        };
        let watchdog = runtime.spawn(watchdog(watched, limits));
        Ok(Some(Shadow {
            runtime,
            server,
            admin,
            spare_admins: RefCell::new(Vec::new()),
            version,
            prefix,
            created: RefCell::new(Vec::new()),
            next_database: Cell::new(0),
            consumed: std::collections::HashSet::new(),
            url_run,
            warnings,
            apply_role,
            extensions: options.extensions.clone(),
            restricted_settings,
            watchdog: Some(watchdog),
            limits,
            concurrency: options.concurrency.max(1),
        }))
    }

    /// Prepares `script`, to be applied to `database`, for the least-privileged role: the statements
    /// that role may not run go to the database's superuser connection (see [`Script::delegate`]).
    /// Returns notices, by offset in the file, for statements that were sanitized on the way.
    pub fn delegate<'a>(
        &self,
        script: &mut Script<'a>,
        database: &'a Database,
    ) -> Vec<(usize, String)> {
        let Some(privileged) = &database.privileged else {
            return Vec::new();
        };
        script
            .delegate(
                privileged,
                privilege::Allowed {
                    extensions: &self.extensions,
                    restricted_settings: &self.restricted_settings,
                },
            )
            .into_iter()
            .map(|(offset, delegation)| {
                let what = if delegation.sql.is_empty() {
                    "not applied on the shadow database"
                } else {
                    "applied on the shadow database by migagent's own connection without"
                };
                let message = format!(
                    "{what} {}: the shadow runs migrations as {APPLY_ROLE}, a role that may not create or change roles, and gives no role superuser-like powers (as on a managed database)",
                    delegation.dropped.join(", ")
                );
                (offset, message)
            })
            .collect()
    }

    pub fn version(&self) -> ServerVersion {
        self.version
    }

    /// `--shadow-max-size`: the cap on the size of the session's databases, in bytes.
    pub fn max_size(&self) -> u64 {
        self.limits.max_size
    }

    /// `--shadow-concurrency`: how many drafts are validated at once, each in a copy of its own.
    pub fn concurrency(&self) -> usize {
        self.concurrency
    }

    /// What the report says about the shadow: "PostgreSQL 15.8 (migagent's ephemeral cluster)".
    pub fn describe(&self) -> String {
        let server = match &self.server {
            Server::Ephemeral { .. } => "migagent's ephemeral cluster".to_owned(),
            Server::Url(config) => describe(config),
        };
        format!("PostgreSQL {} ({server})", self.version)
    }

    /// What the user should hear about the shadow before its findings: warnings, one sentence each.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// The shadow is a server the user gave by URL, not migagent's own.
    pub fn is_users_server(&self) -> bool {
        matches!(self.server, Server::Url(_))
    }

    /// Runs a future on the session's runtime (the shadow's connections live there).
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        self.runtime.block_on(future)
    }

    /// The baseline database for a history with this hash: `Ready` when the cluster already holds it
    /// (it started from a cached image), otherwise a new empty database to apply the history to.
    ///
    /// On migagent's own cluster the name carries the hash and the database outlives the session in
    /// the cached image; on a user's server it is one of the session's databases, dropped at the end.
    pub fn baseline(&mut self, history_hash: &str) -> Result<Baseline, ShadowError> {
        let name = format!("migagent_baseline_{history_hash}");
        let reusable =
            matches!(self.server, Server::Ephemeral { .. }) && !self.consumed.contains(&name);
        if !reusable {
            return self
                .create_database(None)
                .map(|database| Baseline::Build(Box::new(database)));
        }
        let exists = self
            .runtime
            .block_on(
                self.admin
                    .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&name]),
            )
            .map_err(|e| {
                ShadowError(format!(
                    "cannot list the shadow's databases: {}",
                    db_error(&e)
                ))
            })?
            .is_some();
        if exists {
            return Ok(Baseline::Ready(name));
        }
        self.create(name, "template0")
            .map(|database| Baseline::Build(Box::new(database)))
    }

    /// The reviewed migrations go into this baseline itself: a later directory with the same history
    /// gets a baseline of its own.
    pub fn consume(&mut self, baseline: &str) {
        self.consumed.insert(baseline.to_owned());
    }

    /// Creates a new empty database (from `template0`, so nothing a user put in `template1` leaks in),
    /// or a copy of `template`, and connects to it. It is dropped when the session finishes.
    ///
    /// This is how to run untrusted SQL on the shadow: the database's `client` and `monitor` connect
    /// as the applying role ([`APPLY_ROLE`] on migagent's own cluster, which owns the database and
    /// nothing else), and [`Shadow::delegate`] prepares a script for it.
    pub fn create_database(&mut self, template: Option<&str>) -> Result<Database, ShadowError> {
        let name = self.new_database_name();
        let template = template.unwrap_or("template0");
        self.runtime
            .block_on(self.create_async(name, template, Delegating::Yes))
    }

    /// A copy of `template` for validations running at once on the session's runtime. A draft is
    /// applied as it is, by the applying role alone: the copy has no superuser connection (see
    /// [`Database::privileged`]), one backend fewer for the server to start per copy.
    pub async fn copy_of(&self, template: &str) -> Result<Database, ShadowError> {
        let name = self.new_database_name();
        self.create_async(name, template, Delegating::No).await
    }

    /// A template of the session's itself, opened like [`Shadow::copy_of`]'s copies for a last
    /// validation that needs it as it is (dropped afterwards with [`Shadow::drop_copy`]).
    pub async fn open_template(&self, template: &str) -> Result<Database, ShadowError> {
        self.connect_async(template.to_owned(), Delegating::No)
            .await
    }

    /// Keeps the state `database` is in as a template for later copies (a reviewed migration's
    /// baseline, for validating its drafts). Its own `client` runs the copy, so its session and the
    /// statements prepared on it stay; its other connections close while PostgreSQL copies it, then
    /// open again. The template has no session and is dropped when the session finishes. The outer
    /// `Err` means `database` could not be reached again; the inner one that the copy failed.
    pub fn copy_as_template(
        &mut self,
        database: Database,
    ) -> Result<(Result<String, ShadowError>, Database), ShadowError> {
        let name = self.new_database_name();
        self.runtime.block_on(self.copy_by_itself(database, name))
    }

    /// [`Shadow::copy_as_template`]: `database`'s client copies the database it is connected to into
    /// `copy`, once it is the only session there.
    async fn copy_by_itself(
        &self,
        database: Database,
        copy: String,
    ) -> Result<(Result<String, ShadowError>, Database), ShadowError> {
        let (name, client, client_connection, delegating) = close_companions(database).await;
        let reset = async {
            // What a new session would not have: an open transaction (CREATE DATABASE cannot run in
            // one) and temporary tables (their files would be copied); the session's own role, which
            // may create databases.
            let reset = format!("ROLLBACK; {NEW_SESSION}");
            let what = format!("reset the session of the shadow database {name} before copying it");
            execute(&client, &reset, &what).await
        };
        let (reset, ()) = tokio::join!(reset, self.wait_until_sessions_end(&name, 1));
        let copied = match reset {
            Ok(()) => self.copy_as_applying_role(&client, &copy, &name).await?,
            Err(error) => Err(error),
        };
        let companions = self.connect_companions(&name, delegating).await?;
        let database = Database::assemble(name, (client, client_connection), companions);
        Ok((copied.map(|()| copy), database))
    }

    /// Runs [`Shadow::copy_database`]'s copy on `client`, a session of the applying role in
    /// `template`. On migagent's own cluster that role may create databases only for this one
    /// statement, which migagent writes: no migration runs meanwhile. The outer `Err` means that
    /// the role could not be made what it was again.
    async fn copy_as_applying_role(
        &self,
        client: &Client,
        name: &str,
        template: &str,
    ) -> Result<Result<(), ShadowError>, ShadowError> {
        let Some(role) = self.apply_role else {
            return Ok(self.copy_database_on(client, name, template).await);
        };
        let role = quote_ident(role);
        let granted = execute(
            &self.admin,
            &format!("ALTER ROLE {role} CREATEDB"),
            &format!("let the role {role} copy the shadow database {template}"),
        )
        .await;
        if let Err(error) = granted {
            return Ok(Err(error));
        }
        let copied = self.copy_database_on(client, name, template).await;
        execute(
            &self.admin,
            &format!("ALTER ROLE {role} NOCREATEDB"),
            &format!("take the CREATEDB privilege back from the role {role} after copying the shadow database {template}, so no migration runs with it"),
        )
        .await?;
        Ok(copied)
    }

    /// The next name of this session's databases, registered to be dropped (also on a signal).
    fn new_database_name(&self) -> String {
        let number = self.next_database.replace(self.next_database.get() + 1);
        let name = format!("{}_{number}", self.prefix);
        if let Server::Url(admin) = &self.server {
            signals::register_database(admin, &name, &drop_database_sql(self.version, &name));
        }
        self.created.borrow_mut().push(name.clone());
        name
    }

    /// Whether baselines must stay as they are after the history is applied: only when the cluster
    /// is to be stored as the history's image. Otherwise the reviewed migrations may be applied to the
    /// baseline itself, which saves copying it.
    pub fn keeps_baselines(&self) -> bool {
        matches!(
            self.server,
            Server::Ephemeral {
                image: ImagePlan::Store { .. },
                ..
            }
        )
    }

    /// Connects to a database of the session that already exists.
    pub fn connect_to(&mut self, name: String) -> Result<Database, ShadowError> {
        self.runtime
            .block_on(self.connect_async(name, Delegating::Yes))
    }

    async fn connect_async(
        &self,
        name: String,
        delegating: Delegating,
    ) -> Result<Database, ShadowError> {
        // At once: each is a new backend the server starts.
        let (client, companions) = tokio::try_join!(
            async { connect(&self.config_for(&name)).await.map_err(ShadowError) },
            self.connect_companions(&name, delegating)
        )?;
        Ok(Database::assemble(name, client, companions))
    }

    /// Opens a database's connections besides its client: the monitor and, when `delegating` on
    /// migagent's own cluster, the superuser connection; with their tasks.
    async fn connect_companions(
        &self,
        name: &str,
        delegating: Delegating,
    ) -> Result<Companions, ShadowError> {
        let privileged_config = match (&self.server, self.apply_role, delegating) {
            (Server::Ephemeral { cluster, .. }, Some(_), Delegating::Yes) => {
                Some(cluster.connection_config(name))
            }
            _ => None,
        };
        let privileged = async {
            match &privileged_config {
                Some(config) => connect(config).await.map(Some),
                None => Ok(None),
            }
        };
        let config = self.config_for(name);
        let ((monitor, monitor_task), privileged) =
            tokio::try_join!(connect(&config), privileged).map_err(ShadowError)?;
        let mut companions = vec![monitor_task];
        let privileged = match privileged {
            Some((privileged, task)) => {
                // A delegated statement must never wait forever on a lock the migration holds.
                let _ = privileged.batch_execute("SET lock_timeout = '10s'").await;
                companions.push(task);
                Some(privileged)
            }
            None => None,
        };
        Ok((monitor, privileged, companions))
    }

    fn create(&mut self, name: String, template: &str) -> Result<Database, ShadowError> {
        self.runtime
            .block_on(self.create_async(name, template, Delegating::Yes))
    }

    async fn create_async(
        &self,
        name: String,
        template: &str,
        delegating: Delegating,
    ) -> Result<Database, ShadowError> {
        self.copy_database(&name, template).await?;
        self.connect_async(name, delegating).await
    }

    /// `CREATE DATABASE name TEMPLATE template`, owned by the applying role; no session may be
    /// connected to `template`.
    async fn copy_database(&self, name: &str, template: &str) -> Result<(), ShadowError> {
        let created = self
            .admin_execute(&self.copy_database_sql(name, template))
            .await;
        self.after_copy(name, created).await
    }

    /// [`Shadow::copy_database`] run by `client`, the one session connected to `template`:
    /// PostgreSQL refuses a template with sessions other than the copying one
    /// (`CountOtherDBBackends`).
    async fn copy_database_on(
        &self,
        client: &Client,
        name: &str,
        template: &str,
    ) -> Result<(), ShadowError> {
        let created = client
            .batch_execute(&self.copy_database_sql(name, template))
            .await;
        self.after_copy(name, created).await
    }

    /// The SQL of [`Shadow::copy_database`].
    fn copy_database_sql(&self, name: &str, template: &str) -> String {
        // PostgreSQL 15 copies a template through the WAL block by block by default; copying its
        // files is much faster for the small databases a shadow holds.
        let strategy = if self.version.major >= 15 {
            " STRATEGY = FILE_COPY"
        } else {
            ""
        };
        let owner = self
            .apply_role
            .map(|role| format!(" OWNER {}", quote_ident(role)))
            .unwrap_or_default();
        format!(
            "CREATE DATABASE {}{owner} TEMPLATE {}{strategy}",
            quote_ident(name),
            quote_ident(template)
        )
    }

    /// Says why `created`, the copy into `name`, failed; on a user's server records the new
    /// database there and sets its statement timeout, through the admin connection.
    async fn after_copy(
        &self,
        name: &str,
        created: Result<(), tokio_postgres::Error>,
    ) -> Result<(), ShadowError> {
        created.map_err(|e| {
                ShadowError(format!(
                    "cannot create the shadow database {name}: {}; the shadow's user needs the CREATEDB privilege",
                    db_error(&e)
                ))
            })?;
        if let Some(run) = &self.url_run {
            url::record(&self.admin, name, run).await?;
            // The URL role may set this on the databases it owns; `watchdog` enforces it as well.
            let timeout = format!(
                "ALTER DATABASE {} SET statement_timeout = '{}ms'",
                quote_ident(name),
                self.limits.statement_timeout.as_millis()
            );
            let what = format!("set the statement timeout of the shadow database {name}");
            execute(&self.admin, &timeout, &what).await?;
        }
        Ok(())
    }

    /// The history's baseline is complete: closes its connections so PostgreSQL can copy it as a
    /// template, and returns its name. On migagent's own cluster it makes the cluster worth caching.
    ///
    /// When the cluster is to be stored as this history's image, it is stored now, before any
    /// reviewed statement runs: nothing a reviewed migration does, in its database or to what the
    /// whole cluster shares (roles, settings, files), can reach the image and later runs.
    pub fn seal_baseline(
        &mut self,
        database: Database,
        history_hash: &str,
    ) -> Result<String, ShadowError> {
        let name = self.seal(database);
        let stores = matches!(&self.server, Server::Ephemeral {
            image: ImagePlan::Store { history_hash: image_hash, .. },
            ..
        } if image_hash == history_hash);
        if stores {
            // Only the history's own databases belong in its image.
            self.drop_databases()?;
            self.store_image()?;
        }
        Ok(name)
    }

    /// Stores the cluster as the planned image: the server is stopped cleanly, its data dir copied
    /// into the cache and the server started again; the connections are opened again. A cache that
    /// cannot take the image only costs the next run some time.
    fn store_image(&mut self) -> Result<(), ShadowError> {
        let Server::Ephemeral { cluster, image } = &mut self.server else {
            return Ok(());
        };
        let ImagePlan::Store { cache, key, .. } = std::mem::replace(image, ImagePlan::None) else {
            return Ok(());
        };
        cluster.store_image(&cache, &key).map_err(|err| {
            ShadowError(format!(
                "could not restart the shadow database after storing its image: {err}"
            ))
        })?;
        let (admin, _) = self
            .runtime
            .block_on(connect(&cluster.connection_config("postgres")))
            .map_err(ShadowError)?;
        self.admin = admin;
        self.spare_admins.get_mut().clear();
        Ok(())
    }

    /// Closes a database's connections, so PostgreSQL can copy it as a template, and returns its name.
    fn seal(&mut self, database: Database) -> String {
        self.runtime.block_on(self.close(database))
    }

    /// Closes a database's connections and waits until the server has no session left in it, so
    /// that `CREATE DATABASE … TEMPLATE` and `DROP DATABASE` find none: they wait for sessions still
    /// there in steps of 100 ms (`CountOtherDBBackends`), and a backend that got the connection's
    /// Terminate a moment before is usually still exiting (100 ms on 2 of 5 copies and drops of a
    /// documenso review, where the copy itself takes 30–50 ms). Returns its name.
    async fn close(&self, database: Database) -> String {
        let name = close(database).await;
        self.wait_until_sessions_end(&name, 0).await;
        name
    }

    /// Waits until the server has at most `staying` sessions in the database `name` (see
    /// [`Shadow::close`]).
    async fn wait_until_sessions_end(&self, name: &str, staying: i64) {
        let Ok(gone) = (self.admin)
            .prepare("SELECT count(*) <= $2 FROM pg_catalog.pg_stat_activity WHERE datname = $1")
            .await
        else {
            return;
        };
        let started = std::time::Instant::now();
        // Past that, the server's own wait: nothing is lost but time.
        while started.elapsed() < SESSIONS_END_WITHIN {
            let sessions_left = (self.admin.query_one(&gone, &[&name, &staying]).await)
                .is_ok_and(|row| !row.get::<_, bool>(0));
            if !sessions_left {
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    /// Drops a database whose contents are no use (a baseline whose history failed half-way, a copy
    /// a draft was validated on).
    pub fn discard(&mut self, database: Database) {
        self.runtime.block_on(self.drop_copy(database));
    }

    /// [`Shadow::discard`], for validations running at once on the session's runtime.
    pub async fn drop_copy(&self, database: Database) {
        let name = self.close(database).await;
        self.drop_named(&name).await;
    }

    /// Drops a template of the session's that is no longer needed (it has no sessions), unless it
    /// is gone already (the last draft validated on it dropped it).
    pub fn drop_template(&mut self, name: &str) {
        if self.created.borrow().iter().any(|created| created == name) {
            self.runtime.block_on(self.drop_named(name));
        }
    }

    /// Drops one of the session's databases. Best effort: a leftover on the ephemeral cluster goes
    /// with it; on a user's server it is one of the session's databases and `finish` tries again.
    async fn drop_named(&self, name: &str) {
        let sql = drop_database_sql(self.version, name);
        if self.admin_execute(&sql).await.is_ok() {
            self.created.borrow_mut().retain(|created| created != name);
            signals::deregister_database(name);
        }
    }

    /// Runs `sql` on a spare admin connection (opening one when all are busy), or on
    /// [`Shadow::admin`] when none can be opened.
    async fn admin_execute(&self, sql: &str) -> Result<(), tokio_postgres::Error> {
        let idle = self.spare_admins.borrow_mut().pop();
        let spare = match idle {
            Some(client) => Some(client),
            None => connect(&self.admin_config())
                .await
                .ok()
                .map(|(client, _)| client),
        };
        let result = spare
            .as_ref()
            .unwrap_or(&self.admin)
            .batch_execute(sql)
            .await;
        if let Some(client) = spare.filter(|client| !client.is_closed()) {
            self.spare_admins.borrow_mut().push(client);
        }
        result
    }

    /// Connection settings of the admin connection.
    fn admin_config(&self) -> Config {
        match &self.server {
            Server::Ephemeral { cluster, .. } => cluster.connection_config("postgres"),
            Server::Url(config) => config.clone(),
        }
    }

    /// Connection settings for one of the session's databases.
    fn config_for(&self, name: &str) -> Config {
        let mut config = match &self.server {
            Server::Ephemeral { cluster, .. } => cluster.connection_config(name),
            Server::Url(config) => config.clone(),
        };
        config.dbname(name);
        if let Some(role) = self.apply_role {
            config.user(role);
        }
        config
    }

    /// Drops every database the session created and stops an ephemeral cluster, keeping it as the
    /// history's image when this run built the baseline.
    pub fn finish(mut self) -> Result<(), ShadowError> {
        let dropped = self.drop_databases();
        let stopped = match std::mem::replace(&mut self.server, Server::Url(Config::new())) {
            Server::Ephemeral { cluster, .. } => cluster.stop(),
            Server::Url(_) => Ok(()),
        };
        dropped?;
        stopped.map_err(|e| ShadowError(format!("could not stop the shadow database: {e}")))
    }

    fn drop_databases(&mut self) -> Result<(), ShadowError> {
        let mut failures = Vec::new();
        for name in self.created.take().into_iter().rev() {
            let sql = drop_database_sql(self.version, &name);
            match self.runtime.block_on(self.admin.batch_execute(&sql)) {
                Ok(()) => signals::deregister_database(&name),
                Err(e) => failures.push(format!("{name}: {}", db_error(&e))),
            }
        }
        if failures.is_empty() {
            Ok(())
        } else {
            Err(ShadowError(format!(
                "could not drop the shadow databases {}; drop them by hand",
                failures.join("; ")
            )))
        }
    }
}

impl Drop for Shadow {
    fn drop(&mut self) {
        if let Some(watchdog) = self.watchdog.take() {
            watchdog.abort();
        }
        // On an ephemeral cluster the databases go with it; on a user's server, clean up best effort.
        if matches!(self.server, Server::Url(_)) {
            let _ = self.drop_databases();
        }
    }
}

/// How long [`Shadow::close`] waits for a closed database's sessions to end on the server.
const SESSIONS_END_WITHIN: Duration = Duration::from_millis(200);

/// Runs `sql` on `client`; the error says that migagent could not `what`, and the server's reason.
async fn execute(client: &Client, sql: &str, what: &str) -> Result<(), ShadowError> {
    (client.batch_execute(sql).await)
        .map_err(|e| ShadowError(format!("cannot {what}: {}", db_error(&e))))
}

/// Closes a database's connections and waits until they are gone on our side; returns its name.
async fn close(database: Database) -> String {
    let (name, client, client_connection, _) = close_companions(database).await;
    drop(client);
    let _ = client_connection.await;
    name
}

/// Closes a database's connections but its client, and waits until they are gone on our side;
/// returns its name, its client with the client's connection task, and whether it had a
/// superuser connection.
async fn close_companions(database: Database) -> (String, Client, JoinHandle<()>, Delegating) {
    let delegating = if database.privileged.is_some() {
        Delegating::Yes
    } else {
        Delegating::No
    };
    drop((database.monitor, database.privileged));
    for connection in database.companions {
        let _ = connection.await;
    }
    (
        database.name,
        database.client,
        database.client_connection,
        delegating,
    )
}

/// `DROP DATABASE` for a database migagent created. From PostgreSQL 13 it ends connections still open
/// to it (the session's own may not have finished closing).
pub(super) fn drop_database_sql(version: ServerVersion, name: &str) -> String {
    let force = if version.major >= 13 {
        " WITH (FORCE)"
    } else {
        ""
    };
    format!("DROP DATABASE IF EXISTS {}{force}", quote_ident(name))
}

/// The initdb superuser of migagent's own cluster, which applies migrations with --shadow-superuser.
const SUPERUSER_ROLE: &str = "postgres";

/// Makes `role` what migrations run as on migagent's own cluster: created when missing (an image
/// already has it), with no attribute beyond LOGIN unless it is the superuser, and with the limits as
/// its settings: `temp_file_limit` (a quarter of the size cap) only a superuser may change; `statement_timeout` a migration may
/// lift with SET, which is why [`watchdog`] enforces it as well.
fn prepare_role_sql(role: &str, options: &ShadowOptions) -> String {
    let ident = quote_ident(role);
    let literal = role.replace('\'', "''");
    let attributes = if role == SUPERUSER_ROLE {
        String::new()
    } else {
        format!(
            "ALTER ROLE {ident} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS;"
        )
    };
    format!(
        "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = '{literal}') \
         THEN CREATE ROLE {ident} LOGIN; END IF; END $$; {attributes} \
         ALTER ROLE {ident} SET statement_timeout = '{}ms'; \
         ALTER ROLE {ident} SET temp_file_limit = '{}kB';",
        options.statement_timeout.as_millis(),
        (options.max_size / 4 / 1024).max(1)
    )
}

/// Prepares migagent's own cluster for the migrations: the role they run as (see
/// [`prepare_role_sql`]); unless they run as superuser, the check of the extensions a repository's
/// config allows, and the parameters a migration may not set on a role. Returns the applying role
/// (`None`: the superuser) and those parameters.
async fn prepare_own_cluster(
    admin: &Client,
    version: ServerVersion,
    options: &ShadowOptions,
) -> Result<(Option<&'static str>, Vec<String>), ShadowError> {
    let role = if options.superuser {
        SUPERUSER_ROLE
    } else {
        APPLY_ROLE
    };
    let what = format!("prepare the role {role} on the shadow database");
    execute(admin, &prepare_role_sql(role, options), &what).await?;
    if options.superuser {
        return Ok((None, Vec::new()));
    }
    check_config_extensions(admin, version, &options.config_extensions).await?;
    let restricted = admin
        .query(privilege::RESTRICTED_SETTINGS_SQL, &[])
        .await
        .map_err(|e| {
            ShadowError(format!(
                "cannot read the shadow's parameters: {}",
                db_error(&e)
            ))
        })?
        .iter()
        .map(|row| row.get(0))
        .collect();
    Ok((Some(APPLY_ROLE), restricted))
}

/// Refuses extensions a repository's config allows without the job's opt-in unless PostgreSQL marks
/// every version of them trusted (`pg_available_extension_versions.trusted`, PostgreSQL 13+): an
/// untrusted one (`plpython3u`, `adminpack`, `file_fdw`, `dblink`…) installed by migagent's superuser
/// gives the role the migrations run as a way out of its database, and a pull request can edit the
/// config.
async fn check_config_extensions(
    admin: &Client,
    version: ServerVersion,
    configured: &[String],
) -> Result<(), ShadowError> {
    if configured.is_empty() {
        return Ok(());
    }
    let untrusted: Vec<String> = if version.major < 13 {
        configured.to_vec()
    } else {
        admin
            .query(
                "SELECT name::text FROM pg_catalog.pg_available_extension_versions \
                 WHERE name = ANY($1) GROUP BY name HAVING NOT bool_and(trusted) ORDER BY 1",
                &[&configured],
            )
            .await
            .map_err(|e| {
                ShadowError(format!(
                    "cannot read which extensions the shadow's PostgreSQL trusts: {}",
                    db_error(&e)
                ))
            })?
            .iter()
            .map(|row| row.get(0))
            .collect()
    };
    if untrusted.is_empty() {
        return Ok(());
    }
    Err(ShadowError(format!(
        "migagent.toml allows the extension(s) {} under `[shadow] extensions`, which PostgreSQL {} does not \
         mark trusted: installed by migagent's superuser, such an extension lets the migrations under review \
         run programs or reach files and other databases, and a pull request can edit migagent.toml. Pass \
         `{}` in the CI job instead, or set {}=1 in the job's environment (not in the repository); or \
         remove them from the line",
        untrusted.join(", "),
        version.major,
        untrusted
            .iter()
            .map(|name| format!("--shadow-extension {name}"))
            .collect::<Vec<_>>()
            .join(" "),
        TRUST_CONFIG_EXTENSIONS
    )))
}

/// Set (to `1`) by a CI job, never by the repository, to let `[shadow] extensions` of migagent.toml
/// allow extensions PostgreSQL does not mark trusted.
pub const TRUST_CONFIG_EXTENSIONS: &str = "MIGAGENT_TRUST_CONFIG_EXTENSIONS";

/// The limits [`watchdog`] enforces.
#[derive(Debug, Clone, Copy)]
struct Limits {
    statement_timeout: Duration,
    max_size: u64,
}

/// How often [`watchdog`] looks.
const WATCH_INTERVAL: Duration = Duration::from_millis(500);

/// How long a cancelled statement has to end before its session is terminated (a PL/pgSQL block can
/// catch `query_canceled`).
const CANCEL_GRACE: Duration = Duration::from_secs(5);

/// What [`watchdog`] watches: a connection to the server, and the databases whose sessions and size
/// count (a `LIKE` pattern): every database migagent made on its own cluster; on a user's server,
/// this run's alone.
struct Watched {
    config: Config,
    databases: String,
}

/// Runs beside the migrations, on a connection of its own: a statement running longer than the
/// statement timeout is cancelled (and its session terminated when it ignores that), even one that
/// lifted `statement_timeout` with SET; when the watched databases grow beyond the size cap, the
/// sessions working in them are terminated. The applying connection then gets the error, which says
/// which limit (see `privilege::explain`). On a user's server the URL role may do this to its own
/// sessions, which are the only ones in this run's databases.
async fn watchdog(watched: Watched, limits: Limits) {
    let timeout_ms = limits.statement_timeout.as_millis();
    let grace_ms = timeout_ms + CANCEL_GRACE.as_millis();
    let check = format!(
        "SELECT CASE WHEN now() - query_start > interval '{grace_ms} ms' \
                       OR (SELECT sum(pg_catalog.pg_database_size(oid)) FROM pg_catalog.pg_database \
                            WHERE datname LIKE $1::text) > {max} \
                     THEN pg_catalog.pg_terminate_backend(pid) \
                     WHEN now() - query_start > interval '{timeout_ms} ms' \
                     THEN pg_catalog.pg_cancel_backend(pid) END \
           FROM pg_catalog.pg_stat_activity \
          WHERE datname LIKE $1::text AND state = 'active' AND pid <> pg_catalog.pg_backend_pid()",
        max = limits.max_size
    );
    let mut client: Option<(Client, JoinHandle<()>)> = None;
    loop {
        tokio::time::sleep(WATCH_INTERVAL).await;
        if client.is_none() {
            // The server restarts when an image is sealed: connect again.
            client = connect(&watched.config).await.ok();
        }
        if let Some((watching, _)) = &client {
            if watching.query(&check, &[&watched.databases]).await.is_err() {
                client = None;
            }
        }
    }
}

/// Connects to one of the shadow's databases (or the URL's own, for the admin connection).
async fn connect(config: &Config) -> Result<(Client, JoinHandle<()>), String> {
    postgres::connect(config, "the shadow database at ").await
}

/// Twelve hex digits from the kernel's random source, so concurrent runs on one server never pick the
/// same database names (falls back to the pid and the clock when /dev/urandom is unreadable).
pub(super) fn random_suffix() -> String {
    use std::io::Read;
    let mut bytes = [0u8; 6];
    let random = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes));
    if random.is_err() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        bytes[..4].copy_from_slice(&nanos.to_le_bytes());
        bytes[4..].copy_from_slice(&(std::process::id() as u16).to_le_bytes());
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse_and_bad_ones_say_what_is_accepted() {
        assert_eq!(ShadowMode::parse("auto"), Ok(ShadowMode::Auto));
        assert_eq!(ShadowMode::parse("off"), Ok(ShadowMode::Off));
        assert_eq!(
            ShadowMode::parse("postgres://ci@localhost/postgres"),
            Ok(ShadowMode::Url("postgres://ci@localhost/postgres".into()))
        );
        let error = ShadowMode::parse("on").unwrap_err();
        assert!(error.contains("auto, off or a postgres://"), "{error}");
        let error = ShadowMode::parse("host=db user=ci password=s3cret").unwrap_err();
        assert!(!error.contains("s3cret"), "{error}");
        let error = ShadowMode::parse("postgres://ci:s3cret@host:notaport/db").unwrap_err();
        assert!(!error.contains("s3cret"), "{error}");
    }

    #[test]
    fn versions_read_from_server_version_num() {
        assert_eq!(ServerVersion::from_num(150008).to_string(), "15.8");
        assert_eq!(ServerVersion::from_num(140003).major, 14);
    }

    #[test]
    fn suffixes_are_distinct_hex() {
        let (a, b) = (random_suffix(), random_suffix());
        assert_eq!(a.len(), 12);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }
}
