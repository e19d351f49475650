//! Discovering migration files, their order and how each tool runs them.
//!
//! `discover` turns the paths a user gives into [`MigrationSet`]s: one per migrations directory, holding
//! the full ordered history of that directory and which of its migrations are to be reviewed.
//! `load` reads one migration, checks that it is text, and cuts it into the sections the tool executes
//! (the `up` part, with each section's transaction behaviour).

mod atlas;
mod dbmate;
mod detect;
mod diesel;
mod dir;
mod discovery;
mod drizzle;
mod flyway;
pub mod git;
mod heads;
mod liquibase;
mod load;
mod numbered;
mod order;
mod plain;
mod prisma;
mod supabase;
mod text;

use std::fmt;
use std::ops::Range;
use std::path::PathBuf;

use crate::escape;
pub use dir::UnreadReason;

/// The migration tools whose layouts migagent understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Tool {
    Plain,
    Prisma,
    Drizzle,
    Supabase,
    GolangMigrate,
    Sqlx,
    Dbmate,
    Flyway,
    Atlas,
    Liquibase,
    Diesel,
}

impl Tool {
    pub const ALL: [Tool; 11] = [
        Tool::Plain,
        Tool::Prisma,
        Tool::Drizzle,
        Tool::Supabase,
        Tool::GolangMigrate,
        Tool::Sqlx,
        Tool::Dbmate,
        Tool::Flyway,
        Tool::Atlas,
        Tool::Liquibase,
        Tool::Diesel,
    ];

    /// The name used by `--tool`, `tool = "…"` and the JSON report.
    pub fn name(self) -> &'static str {
        match self {
            Tool::Plain => "plain",
            Tool::Prisma => "prisma",
            Tool::Drizzle => "drizzle",
            Tool::Supabase => "supabase",
            Tool::GolangMigrate => "golang-migrate",
            Tool::Sqlx => "sqlx",
            Tool::Dbmate => "dbmate",
            Tool::Flyway => "flyway",
            Tool::Atlas => "atlas",
            Tool::Liquibase => "liquibase",
            Tool::Diesel => "diesel",
        }
    }

    pub fn from_name(name: &str) -> Option<Tool> {
        Tool::ALL.into_iter().find(|tool| tool.name() == name)
    }
}

impl fmt::Display for Tool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How the tool executes the statements of one section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transaction {
    /// Each statement commits on its own (psql, or a tool told not to use a transaction).
    None,
    /// The tool wraps the section in one transaction (BEGIN … COMMIT around it).
    Wrapped,
    /// The tool sends the section as one multi-statement query: PostgreSQL runs it as one implicit
    /// transaction when it holds more than one statement, and as a lone statement otherwise
    /// (Prisma, golang-migrate).
    ImplicitMultiStatement,
}

/// A part of a migration file that the tool executes as a unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    /// Byte range in the file's text.
    pub range: Range<usize>,
    pub transaction: Transaction,
}

/// One migration of a directory's history, before it is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationRef {
    /// The `up` file (for single-file formats, the file holding both parts).
    pub path: PathBuf,
    /// The tool's version or ordering key, as written in the name (e.g. `20240101120000`, `1.2`).
    pub version: String,
    /// Where the down migration lives, if the tool keeps one apart or in the same file.
    pub down: Option<DownLocation>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DownLocation {
    /// A separate file (`.down.sql`, Diesel `down.sql`, Flyway `U<ver>__`).
    File(PathBuf),
    /// A section of the same file (dbmate `-- migrate:down`, Liquibase `--rollback`).
    InFile,
}

/// The most migrations a run reviews in full detail by default: each statement's schema changes on
/// the shadow (`--trace-changes auto`) and advice with its drafts validated (`--advise-on`'s
/// default). A change adds a few migrations; a run over more is an audit of a history that is mostly
/// applied already, where nobody reads hundreds of lists of changes or drafts for migrations that
/// production ran long ago, and they cost most of its time: on documenso's whole history (163
/// migrations, 766 statements, one psql session replaying it in 0.39 s) the trace alone took 1.11 s
/// in URL mode, 2.56 s with each statement's schema changes, 17 s with the drafts validated.
pub const DETAILED_REVIEW_UP_TO: usize = 20;

/// How many migrations `sets` review, over all directories.
pub fn reviewed_count(sets: &[MigrationSet]) -> usize {
    sets.iter().map(|set| set.targets.len()).sum()
}

/// A migrations directory: its tool, its full ordered history, and which migrations to review.
#[derive(Debug, Clone)]
pub struct MigrationSet {
    /// The directory as the user named it (`.` when they named a bare file of the working directory).
    pub dir: PathBuf,
    pub tool: Tool,
    /// Every migration of the directory, in the order the tool applies them.
    pub migrations: Vec<MigrationRef>,
    /// Indices into `migrations` of the ones to review; everything before a reviewed migration is its
    /// history.
    pub targets: Vec<usize>,
}

/// A migration that was read and cut into sections.
#[derive(Debug, Clone)]
pub struct Migration {
    pub path: PathBuf,
    pub tool: Tool,
    pub text: String,
    /// The parts the tool executes when migrating up, in order.
    pub sections: Vec<Section>,
}

/// Why a migration file could not be read as text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoadError {
    Io(String),
    Binary,
    InvalidUtf8 { line: usize, column: usize },
    TooLarge { bytes: u64, limit: u64 },
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::Io(message) => write!(f, "cannot read the file: {message}"),
            LoadError::Binary => {
                f.write_str("this is a binary file (it contains NUL bytes), not SQL text")
            }
            LoadError::InvalidUtf8 { line, column } => write!(
                f,
                "invalid UTF-8 at line {line}, column {column}: migration files must be UTF-8 text"
            ),
            LoadError::TooLarge { bytes, limit } => write!(
                f,
                "the file is {:.1} MB, over the {:.1} MB limit for one migration (raise `max-file-size` in migagent.toml to review it)",
                *bytes as f64 / 1e6,
                *limit as f64 / 1e6
            ),
        }
    }
}

/// Why the given paths could not be turned into migrations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscoverError {
    pub path: PathBuf,
    pub message: String,
}

impl fmt::Display for DiscoverError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", escape::path(&self.path), self.message)
    }
}

/// An entry of a migrations directory that was not read: a link out of the directory, a dangling or
/// looping link, a FIFO, socket or device, a directory where a file is expected, an entry that cannot
/// be looked at. Discovery reports every one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub path: PathBuf,
    pub reason: UnreadReason,
    /// The layout the directory was read as.
    pub tool: Tool,
    /// The tool would run it as a migration (or, for a down file or an unrelated name, would not).
    /// A migration that was not reviewed must not let the run pass.
    pub would_be_migration: bool,
}

impl fmt::Display for Skipped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.would_be_migration {
            write!(
                f,
                "{}; it is named like a {} migration, so a migration went unreviewed: make it a \
                 regular file of the directory, or remove it",
                self.reason, self.tool
            )
        } else {
            write!(
                f,
                "{}; skipped (it would not be a {} migration)",
                self.reason, self.tool
            )
        }
    }
}

/// What discovery found: the sets to review, the paths that could not be used, and every directory
/// entry it did not read.
#[derive(Debug, Default)]
pub struct Discovery {
    pub sets: Vec<MigrationSet>,
    pub errors: Vec<DiscoverError>,
    pub skipped: Vec<Skipped>,
}

/// Options that shape discovery.
#[derive(Debug, Clone, Default)]
pub struct DiscoverOptions {
    /// Overrides layout detection (`--tool`, `tool = "…"`).
    pub tool: Option<Tool>,
    /// Review only the last N migrations of each directory given (`--latest N`).
    pub latest: Option<usize>,
    /// Plain `*.sql` files are wrapped in one transaction by the runner (`transaction = "per-file"`).
    pub plain_per_file_transaction: bool,
}

/// Turns the user's paths (files or directories) into migration sets. A path that does not exist, or a
/// directory without migrations, is an error for that path; the other paths are still discovered.
/// Entries of the directories that are not read (see [`Skipped`]) are listed with why.
pub fn discover(paths: &[PathBuf], options: &DiscoverOptions) -> Discovery {
    discovery::discover(paths, options)
}

/// Reads a migration and cuts it into the sections its tool executes.
pub fn load(
    migration: &MigrationRef,
    tool: Tool,
    options: &DiscoverOptions,
    max_bytes: u64,
) -> Result<Migration, LoadError> {
    load::load(migration, tool, options, max_bytes)
}
