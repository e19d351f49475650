//! From the paths a user gives to migration sets: one set per migrations directory, however many
//! times and however it is named, with the union of what each path asks to review.

use std::collections::HashSet;
use std::ffi::OsStr;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::detect::{detect, looks_like, nothing_found};
use super::dir::{on_disk, Dir};
use super::{atlas, dbmate, diesel, drizzle, flyway, liquibase, numbered, plain, prisma, supabase};
use super::{
    DiscoverError, DiscoverOptions, Discovery, DownLocation, MigrationRef, MigrationSet, Skipped,
    Tool, UnreadReason,
};
use crate::escape;

pub(super) fn discover(paths: &[PathBuf], options: &DiscoverOptions) -> Discovery {
    let mut found = Found::default();
    let mut errors = Vec::new();
    for path in paths {
        if let Err(message) = found.add(path, options) {
            errors.push(DiscoverError {
                path: path.clone(),
                message,
            });
        }
    }
    let mut seen = HashSet::new();
    let skipped = std::mem::take(&mut found.skipped)
        .into_iter()
        .filter(|skipped| seen.insert(skipped.path.clone()))
        .collect();
    Discovery {
        sets: found.into_sets(),
        errors,
        skipped,
    }
}

/// A migrations directory discovered so far.
struct Scanned {
    /// The canonical directory: two spellings of one directory make one set.
    key: PathBuf,
    /// The directory as first named (empty when named through a bare file name); the migrations'
    /// paths are built from it.
    shown: PathBuf,
    set: MigrationSet,
}

#[derive(Default)]
struct Found {
    scanned: Vec<Scanned>,
    /// The entries of every directory read, whether or not it turned out to hold migrations.
    skipped: Vec<Skipped>,
}

impl Found {
    /// Adds the targets `path` asks for: every migration of a directory (or its last N), or one file.
    fn add(&mut self, path: &Path, options: &DiscoverOptions) -> Result<(), String> {
        let metadata = fs::metadata(path).map_err(|err| describe(&err))?;
        if metadata.is_dir() {
            let index = self.scan(path, options)?;
            let set = &mut self.scanned[index].set;
            let count = set.migrations.len();
            let first = options
                .latest
                .map_or(0, |latest| count.saturating_sub(latest));
            set.targets.extend(first..count);
            return Ok(());
        }
        let (dir, relative) = migrations_dir_of(path, options);
        let index = self.scan(&dir, options)?;
        let (scanned, skipped) = (&mut self.scanned[index], &self.skipped);
        let file = scanned.shown.join(relative);
        let set = &mut scanned.set;
        let index = set
            .migrations
            .iter()
            .position(|migration| migration.path == file)
            .ok_or_else(|| not_a_migration(set, &file, skipped))?;
        set.targets.push(index);
        Ok(())
    }

    /// The index of the set of `dir`, scanning it the first time it is named.
    fn scan(&mut self, dir: &Path, options: &DiscoverOptions) -> Result<usize, String> {
        let key = fs::canonicalize(on_disk(dir)).unwrap_or_else(|_| dir.to_path_buf());
        let index = match self.scanned.iter().position(|scanned| scanned.key == key) {
            Some(index) => index,
            None => {
                let set = scan(dir, options, &mut self.skipped)?;
                self.scanned.push(Scanned {
                    key,
                    shown: dir.to_path_buf(),
                    set,
                });
                self.scanned.len() - 1
            }
        };
        Ok(index)
    }

    /// The sets with something to review: a directory scanned only for paths that turned out not to be
    /// its migrations is left out.
    fn into_sets(self) -> Vec<MigrationSet> {
        self.scanned
            .into_iter()
            .map(|Scanned { mut set, .. }| {
                set.targets.sort_unstable();
                set.targets.dedup();
                set
            })
            .filter(|set| !set.targets.is_empty())
            .collect()
    }
}

/// Lists a directory's migrations, detecting its layout unless the options name the tool, and adds the
/// entries it did not read to `skipped`, even when it holds no migrations.
fn scan(
    shown: &Path,
    options: &DiscoverOptions,
    skipped: &mut Vec<Skipped>,
) -> Result<MigrationSet, String> {
    let dir = Dir::read(shown).map_err(|err| describe(&err))?;
    let tool = options.tool.or_else(|| detect(&dir));
    skipped.extend(unread_entries(&dir, tool.unwrap_or(Tool::Plain)));
    let tool = tool.ok_or_else(nothing_found)?;
    let migrations = list(&dir, tool)?;
    if migrations.is_empty() {
        return Err(format!(
            "no {tool} migrations found ({tool} migrations are {})",
            looks_like(tool)
        ));
    }
    Ok(MigrationSet {
        dir: on_disk(shown).to_path_buf(),
        tool,
        migrations,
        targets: Vec::new(),
    })
}

/// The entries of `dir` that were not read, each marked with whether `tool` would run it as a migration:
/// the tool lists the directory with those entries standing in for files, and whatever it runs of
/// them is a migration that went unreviewed. A subdirectory is reported only in that case.
fn unread_entries(dir: &Dir, tool: Tool) -> Vec<Skipped> {
    let stand_ins = dir.with_stand_ins();
    // A set: every subdirectory of a Prisma or Diesel history is a stand-in, and each looked for
    // in a list of every migration made discovery quadratic in the history's length.
    let would_run: HashSet<PathBuf> = list(&stand_ins, tool)
        .or_else(|_| list(&stand_ins, Tool::Plain))
        .unwrap_or_default()
        .into_iter()
        .map(|migration| migration.path)
        .collect();
    dir.stand_ins()
        .into_iter()
        .map(|unread| {
            // An entry not read stood in for a folder too; a subdirectory only for a file.
            let as_folder = unread.reason != UnreadReason::Directory;
            let listed = stand_ins.listed_path(&unread.rel);
            let runs_inside = || would_run.iter().any(|path| path.starts_with(&listed));
            Skipped {
                would_be_migration: would_run.contains(&listed) || (as_folder && runs_inside()),
                path: unread.path,
                reason: unread.reason,
                tool,
            }
        })
        .filter(|skipped| skipped.would_be_migration || skipped.reason != UnreadReason::Directory)
        .collect()
}

/// Every migration of `dir` in the order `tool` applies them.
fn list(dir: &Dir, tool: Tool) -> Result<Vec<MigrationRef>, String> {
    Ok(match tool {
        Tool::Plain => plain::list(dir),
        Tool::Prisma => prisma::list(dir),
        Tool::Drizzle => drizzle::list(dir)?,
        Tool::Supabase => supabase::list(dir),
        Tool::GolangMigrate | Tool::Sqlx => numbered::list(dir, tool),
        Tool::Dbmate => dbmate::list(dir),
        Tool::Flyway => flyway::list(dir),
        Tool::Atlas => atlas::list(dir),
        Tool::Liquibase => liquibase::list(dir),
        Tool::Diesel => diesel::list(dir),
    })
}

/// The migrations directory a file belongs to, and the file's path relative to it. Prisma and Diesel
/// keep each migration in a folder of its own, so for them it is the file's grandparent.
fn migrations_dir_of(file: &Path, options: &DiscoverOptions) -> (PathBuf, PathBuf) {
    let parent = file.parent().unwrap_or(Path::new(""));
    let name = PathBuf::from(file.file_name().unwrap_or_default());
    if let (Some(folder), Some(grandparent)) = (parent.file_name(), parent.parent()) {
        if in_migration_folder(name.as_os_str(), grandparent, options) {
            return (grandparent.to_path_buf(), Path::new(folder).join(name));
        }
    }
    (parent.to_path_buf(), name)
}

/// Whether a file called `name` is part of a per-migration folder inside `grandparent`.
fn in_migration_folder(name: &OsStr, grandparent: &Path, options: &DiscoverOptions) -> bool {
    let layout = match options.tool {
        Some(tool) => return matches!(tool, Tool::Prisma | Tool::Diesel),
        None if name == prisma::FILE => Tool::Prisma,
        None if name == diesel::UP || name == diesel::DOWN => Tool::Diesel,
        None => return false,
    };
    Dir::read(grandparent)
        .ok()
        .and_then(|dir| detect(&dir))
        .is_some_and(|tool| tool == layout)
}

/// Why a file of a discovered directory cannot be reviewed.
fn not_a_migration(set: &MigrationSet, file: &Path, skipped: &[Skipped]) -> String {
    if let Some(skipped) = skipped.iter().find(|skipped| skipped.path == file) {
        return skipped.reason.to_string();
    }
    let down = DownLocation::File(file.to_path_buf());
    match set
        .migrations
        .iter()
        .find(|migration| migration.down.as_ref() == Some(&down))
    {
        Some(up) => format!(
            "this is the down migration of {}; review that migration instead",
            escape::path(&up.path)
        ),
        None => format!(
            "not a {tool} migration of {dir} ({tool} migrations are {looks_like})",
            tool = set.tool,
            dir = escape::path(&set.dir),
            looks_like = looks_like(set.tool),
        ),
    }
}

/// An IO error as a user reads it: "no such file or directory" for a missing path, else the OS's words.
fn describe(err: &io::Error) -> String {
    if err.kind() == io::ErrorKind::NotFound {
        "no such file or directory".to_owned()
    } else {
        err.to_string()
    }
}
