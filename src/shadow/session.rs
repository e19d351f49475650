//! A shadow session: the server migagent applies migrations to (its own ephemeral cluster, or a server
//! given by URL), the databases it creates there, and their removal.
//!
//! migagent only ever runs SQL in databases it created. On a server given by URL, the one connection to a
//! database it did not create (the URL's own) only reads (the server's version and settings, the role's
//! privileges, `pg_database`, `pg_locks`), holds the run's advisory lock, and runs `CREATE DATABASE`,
//! `COMMENT ON DATABASE` and `DROP DATABASE` for databases named `migagent_shadow_<run>_…` (see
//! [`super::url`]).

use std::fmt;
use std::future::Future;
use std::path::PathBuf;

use tokio::task::JoinHandle;
use tokio_postgres::{Client, Config};

use crate::postgres::{self, db_error, describe, redact};
use crate::schema::naming::quote_ident;
use crate::shadow::cache::{ImageCache, ImageKey};
use crate::shadow::cluster::{
    find_binaries, server_version, ClusterError, EphemeralCluster, PgBinaries,
};
use crate::shadow::signals;
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
    /// member of `pg_execute_server_program`, …), with a warning, instead of refusing it.
    pub superuser: bool,
}

impl Default for ShadowOptions {
    fn default() -> Self {
        ShadowOptions {
            mode: ShadowMode::Off,
            pg_bin: None,
            cache: true,
            superuser: false,
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
    /// Store the cluster as the image of this history, if its baseline gets built.
    Store {
        cache: ImageCache,
        key: ImageKey,
        history_hash: String,
        built: bool,
    },
}

/// Starts migagent's own cluster: from the cached image of the history when there is one, else from a
/// fresh (or cached) initdb, planning to store the image at the end.
fn start_cluster(
    binaries: &PgBinaries,
    use_cache: bool,
    history_hash: Option<&str>,
) -> Result<(EphemeralCluster, ImagePlan), ClusterError> {
    // A cache dir that cannot be used only costs speed.
    let cache = use_cache
        .then(ImageCache::default_location)
        .flatten()
        .and_then(|root| ImageCache::open(root).ok());
    let Some(cache) = cache else {
        return Ok((EphemeralCluster::start(binaries)?, ImagePlan::None));
    };
    let (major, minor) = server_version(binaries)?;
    let key =
        history_hash.and_then(|hash| ImageKey::new(&format!("pg{major}-{minor}-{hash}")).ok());
    if let Some(image) = key.as_ref().and_then(|key| cache.lookup(key)) {
        return Ok((
            EphemeralCluster::start_from_image(binaries, &image)?,
            ImagePlan::None,
        ));
    }
    let cluster = EphemeralCluster::start_cached(binaries, Some(&cache))?;
    let plan = match (key, history_hash) {
        (Some(key), Some(hash)) => ImagePlan::Store {
            cache,
            key,
            history_hash: hash.to_owned(),
            built: false,
        },
        _ => ImagePlan::None,
    };
    Ok((cluster, plan))
}

/// A database migagent created, with a connection to it and a second one that watches the first
/// (statements that cannot run in a transaction block are observed from outside).
pub struct Database {
    pub name: String,
    pub client: Client,
    pub monitor: Client,
    /// The connections' tasks, awaited when the database is sealed so it has no sessions left.
    connections: Vec<JoinHandle<()>>,
}

/// An open shadow: a server, an admin connection for creating and dropping databases, and the
/// databases created so far (dropped by [`Shadow::finish`], or best effort on drop).
pub struct Shadow {
    runtime: tokio::runtime::Runtime,
    server: Server,
    admin: Client,
    version: ServerVersion,
    /// `migagent_shadow_<random>`: every database this session creates starts with it.
    prefix: String,
    created: Vec<String>,
    /// Numbers the session's databases: names are never reused, even after a drop.
    next_database: usize,
    /// Baselines the reviewed migrations were applied to directly: no longer the history's state.
    consumed: std::collections::HashSet<String>,
    /// Something may have changed the cluster outside the baselines (a role, a setting): its image
    /// would carry that into later runs, so it is not stored.
    tainted: bool,
    /// On a server given by URL: this run's claim there.
    url_run: Option<UrlRun>,
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
        let (server, admin_config) = match &options.mode {
            ShadowMode::Off => return Ok(None),
            ShadowMode::Auto => {
                let binaries = match find_binaries(options.pg_bin.as_deref()) {
                    Ok(binaries) => binaries,
                    Err(_) if options.pg_bin.is_none() => return Ok(None),
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
                let (cluster, image) = start_cluster(&binaries, options.cache, history_hash)
                    .map_err(|err| {
                        ShadowError(format!(
                            "could not start the shadow database (an ephemeral PostgreSQL): {err}\n\
                             Or run without it: --shadow off"
                        ))
                    })?;
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
            Server::Ephemeral { .. } => (None, Vec::new()),
        };
        let run_id = url_run
            .as_ref()
            .map_or_else(random_suffix, |run| run.id.clone());
        Ok(Some(Shadow {
            runtime,
            server,
            admin,
            version,
            prefix: format!("{DATABASE_PREFIX}{run_id}"),
            created: Vec::new(),
            next_database: 0,
            consumed: std::collections::HashSet::new(),
            tainted: false,
            url_run,
            warnings,
        }))
    }

    pub fn version(&self) -> ServerVersion {
        self.version
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

    /// Something outside the baselines may have changed (see [`Shadow::tainted`]): no image is stored.
    pub fn taint(&mut self) {
        self.tainted = true;
    }

    /// Creates a new empty database (from `template0`, so nothing a user put in `template1` leaks in),
    /// or a copy of `template`, and connects to it. It is dropped when the session finishes.
    pub fn create_database(&mut self, template: Option<&str>) -> Result<Database, ShadowError> {
        let name = format!("{}_{}", self.prefix, self.next_database);
        self.next_database += 1;
        if let Server::Url(admin) = &self.server {
            signals::register_database(admin, &name, &drop_database_sql(self.version, &name));
        }
        self.created.push(name.clone());
        self.create(name, template.unwrap_or("template0"))
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
        let config = self.config_for(&name);
        let (client, client_task) = self
            .runtime
            .block_on(connect(&config))
            .map_err(ShadowError)?;
        let (monitor, monitor_task) = self
            .runtime
            .block_on(connect(&config))
            .map_err(ShadowError)?;
        Ok(Database {
            name,
            client,
            monitor,
            connections: vec![client_task, monitor_task],
        })
    }

    fn create(&mut self, name: String, template: &str) -> Result<Database, ShadowError> {
        // PostgreSQL 15 copies a template through the WAL block by block by default; copying its
        // files is much faster for the small databases a shadow holds.
        let strategy = if self.version.major >= 15 {
            " STRATEGY = FILE_COPY"
        } else {
            ""
        };
        let sql = format!(
            "CREATE DATABASE {} TEMPLATE {}{strategy}",
            quote_ident(&name),
            quote_ident(template)
        );
        self.runtime
            .block_on(self.admin.batch_execute(&sql))
            .map_err(|e| {
                ShadowError(format!(
                    "cannot create the shadow database {name}: {}; the shadow's user needs the CREATEDB privilege",
                    db_error(&e)
                ))
            })?;
        if let Some(run) = &self.url_run {
            self.runtime
                .block_on(url::record(&self.admin, &name, run))?;
        }
        self.connect_to(name)
    }

    /// The history's baseline is complete: closes its connections so PostgreSQL can copy it as a
    /// template, and returns its name. On migagent's own cluster it makes the cluster worth caching.
    pub fn seal_baseline(&mut self, database: Database, history_hash: &str) -> String {
        if let Server::Ephemeral {
            image:
                ImagePlan::Store {
                    history_hash: image_hash,
                    built,
                    ..
                },
            ..
        } = &mut self.server
        {
            *built |= image_hash == history_hash;
        }
        self.seal(database)
    }

    /// Closes a database's connections, so PostgreSQL can copy it as a template, and returns its name.
    fn seal(&mut self, database: Database) -> String {
        let Database {
            name,
            client,
            monitor,
            connections,
        } = database;
        drop((client, monitor));
        self.runtime.block_on(async {
            for connection in connections {
                let _ = connection.await;
            }
        });
        name
    }

    /// Drops a database whose contents are no use (a baseline whose history failed half-way, a copy
    /// a draft was validated on).
    pub fn discard(&mut self, database: Database) {
        let name = self.seal(database);
        let sql = format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            quote_ident(&name)
        );
        // Best effort: a leftover on the ephemeral cluster goes with it; on a user's server it is one
        // of the session's databases and `finish` tries again.
        if self
            .runtime
            .block_on(self.admin.batch_execute(&sql))
            .is_ok()
        {
            self.created.retain(|created| *created != name);
            signals::deregister_database(&name);
        }
    }

    /// Connection settings for one of the session's databases.
    fn config_for(&self, name: &str) -> Config {
        let mut config = match &self.server {
            Server::Ephemeral { cluster, .. } => cluster.connection_config(name),
            Server::Url(config) => config.clone(),
        };
        config.dbname(name);
        config
    }

    /// Drops every database the session created and stops an ephemeral cluster, keeping it as the
    /// history's image when this run built the baseline.
    pub fn finish(mut self) -> Result<(), ShadowError> {
        let dropped = self.drop_databases();
        let stopped = match std::mem::replace(&mut self.server, Server::Url(Config::new())) {
            Server::Ephemeral {
                cluster,
                image:
                    ImagePlan::Store {
                        cache,
                        key,
                        built: true,
                        ..
                    },
            } if dropped.is_ok() && !self.tainted => cluster.stop_into_image(&cache, &key),
            Server::Ephemeral { cluster, .. } => cluster.stop(),
            Server::Url(_) => Ok(()),
        };
        dropped?;
        stopped.map_err(|e| ShadowError(format!("could not stop the shadow database: {e}")))
    }

    fn drop_databases(&mut self) -> Result<(), ShadowError> {
        let mut failures = Vec::new();
        for name in std::mem::take(&mut self.created).into_iter().rev() {
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
        // On an ephemeral cluster the databases go with it; on a user's server, clean up best effort.
        if matches!(self.server, Server::Url(_)) {
            let _ = self.drop_databases();
        }
    }
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
