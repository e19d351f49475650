//! From the paths a user gives to migration sets: one set per migrations directory, however many
//! times and however it is named, with the union of what each path asks to review.

use std::ffi::OsStr;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::detect::{detect, looks_like, nothing_found};
use super::dir::{on_disk, Dir};
use super::{atlas, dbmate, diesel, drizzle, flyway, liquibase, numbered, plain, prisma, supabase};
use super::{DiscoverError, DiscoverOptions, DownLocation, MigrationRef, MigrationSet, Tool};

pub(super) fn discover(
    paths: &[PathBuf],
    options: &DiscoverOptions,
) -> (Vec<MigrationSet>, Vec<DiscoverError>) {
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
    (found.into_sets(), errors)
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
}

impl Found {
    /// Adds the targets `path` asks for: every migration of a directory (or its last N), or one file.
    fn add(&mut self, path: &Path, options: &DiscoverOptions) -> Result<(), String> {
        let metadata = fs::metadata(path).map_err(|err| describe(&err))?;
        if metadata.is_dir() {
            let set = &mut self.scan(path, options)?.set;
            let count = set.migrations.len();
            let first = options
                .latest
                .map_or(0, |latest| count.saturating_sub(latest));
            set.targets.extend(first..count);
            return Ok(());
        }
        let (dir, relative) = migrations_dir_of(path, options);
        let scanned = self.scan(&dir, options)?;
        let file = scanned.shown.join(relative);
        let set = &mut scanned.set;
        let index = set
            .migrations
            .iter()
            .position(|migration| migration.path == file)
            .ok_or_else(|| not_a_migration(set, &file))?;
        set.targets.push(index);
        Ok(())
    }

    /// The set of `dir`, scanning it the first time it is named.
    fn scan(&mut self, dir: &Path, options: &DiscoverOptions) -> Result<&mut Scanned, String> {
        let key = fs::canonicalize(on_disk(dir)).unwrap_or_else(|_| dir.to_path_buf());
        let index = match self.scanned.iter().position(|scanned| scanned.key == key) {
            Some(index) => index,
            None => {
                let set = scan(dir, options)?;
                self.scanned.push(Scanned {
                    key,
                    shown: dir.to_path_buf(),
                    set,
                });
                self.scanned.len() - 1
            }
        };
        Ok(&mut self.scanned[index])
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

/// Lists a directory's migrations, detecting its layout unless the options name the tool.
fn scan(shown: &Path, options: &DiscoverOptions) -> Result<MigrationSet, String> {
    let dir = Dir::read(shown).map_err(|err| describe(&err))?;
    let tool = match options.tool {
        Some(tool) => tool,
        None => detect(&dir).ok_or_else(nothing_found)?,
    };
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
fn not_a_migration(set: &MigrationSet, file: &Path) -> String {
    let down = DownLocation::File(file.to_path_buf());
    match set
        .migrations
        .iter()
        .find(|migration| migration.down.as_ref() == Some(&down))
    {
        Some(up) => format!(
            "this is the down migration of {}; review that migration instead",
            up.path.display()
        ),
        None => format!(
            "not a {tool} migration of {dir} ({tool} migrations are {looks_like})",
            tool = set.tool,
            dir = set.dir.display(),
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
