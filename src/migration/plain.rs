//! Plain `*.sql` files run as psql runs them, in natural order of their names.

use super::dir::Dir;
use super::order::{natural_cmp, stem_version};
use super::{DownLocation, MigrationRef};

/// Every `.sql` file but down files, in natural order. A `<stem>.down.sql` beside `<stem>.sql` (or
/// `<stem>.up.sql`) is recorded as its down migration.
pub(super) fn list(dir: &Dir) -> Vec<MigrationRef> {
    let mut files: Vec<&str> = dir.sql_files().collect();
    files.sort_by(|a, b| natural_cmp(a, b));
    files
        .into_iter()
        .map(|file| {
            let stem = file.strip_suffix(".sql").unwrap_or(file);
            let stem = stem.strip_suffix(".up").unwrap_or(stem);
            let down = format!("{stem}.down.sql");
            MigrationRef {
                path: dir.path(file),
                version: stem_version(stem).to_owned(),
                down: dir
                    .has_file(&down)
                    .then(|| DownLocation::File(dir.path(&down))),
            }
        })
        .collect()
}
