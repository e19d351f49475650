//! Diesel: `<version>_<name>/up.sql` folders with `down.sql` beside, and an optional `metadata.toml`.

use std::path::Path;

use super::dir::{read_within, Dir};
use super::order::until_underscore;
use super::{DownLocation, MigrationRef, Transaction};

/// The up file of each migration folder.
pub(super) const UP: &str = "up.sql";
/// The down file of each migration folder.
pub(super) const DOWN: &str = "down.sql";

pub(super) fn detect(dir: &Dir) -> bool {
    !dir.subdirs_with(UP).is_empty()
}

/// Diesel runs the folders in lexical order of their names (its version is the part before `_`).
pub(super) fn list(dir: &Dir) -> Vec<MigrationRef> {
    let downs = dir.subdirs_with(DOWN);
    dir.subdirs_with(UP)
        .into_iter()
        .map(|folder| MigrationRef {
            path: dir.folder_path(folder, UP),
            version: until_underscore(folder).to_owned(),
            down: downs
                .contains(&folder)
                .then(|| DownLocation::File(dir.folder_path(folder, DOWN))),
        })
        .collect()
}

/// Diesel wraps each migration in a transaction unless the folder's `metadata.toml` says
/// `run_in_transaction = false`. An unreadable or invalid metadata file, or one that is not a file of
/// the migrations directory, is ignored here: Diesel itself rejects it, and the safe assumption for
/// review is its default.
pub(super) fn transaction(up: &Path) -> Transaction {
    let metadata = up.with_file_name("metadata.toml");
    let migrations_dir = up.parent().and_then(Path::parent).unwrap_or(Path::new(""));
    let run_in_transaction = read_within(&metadata, migrations_dir)
        .and_then(|text| text.parse::<toml::Table>().ok())
        .and_then(|table| table.get("run_in_transaction")?.as_bool());
    if run_in_transaction == Some(false) {
        Transaction::None
    } else {
        Transaction::Wrapped
    }
}
