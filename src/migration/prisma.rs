//! Prisma Migrate: `<timestamp>_<name>/migration.sql` folders beside a `migration_lock.toml`.

use super::dir::Dir;
use super::order::until_underscore;
use super::MigrationRef;

/// The file of each migration folder.
pub(super) const FILE: &str = "migration.sql";

/// The lock file marks the directory even before its first migration exists.
pub(super) fn detect(dir: &Dir) -> bool {
    dir.has_file("migration_lock.toml") || !dir.subdirs_with(FILE).is_empty()
}

/// Prisma applies the folders in lexical order of their names; it has no down migrations.
pub(super) fn list(dir: &Dir) -> Vec<MigrationRef> {
    dir.subdirs_with(FILE)
        .into_iter()
        .map(|folder| MigrationRef {
            path: dir.folder_path(folder, FILE),
            version: until_underscore(folder).to_owned(),
            down: None,
        })
        .collect()
}
