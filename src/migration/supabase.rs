//! Supabase CLI: `supabase/migrations/<timestamp>_<name>.sql`.

use std::fs;
use std::path::Path;

use super::dir::{on_disk, Dir};
use super::order::{cmp_numeric, leading_digits};
use super::MigrationRef;

/// Supabase has no marker file: the directory is recognised by where it lives. The path as given is
/// tried first; the canonical one covers `.` and other relative spellings.
pub(super) fn detect(dir: &Dir) -> bool {
    let suffix = Path::new("supabase/migrations");
    dir.shown().ends_with(suffix)
        || fs::canonicalize(on_disk(dir.shown())).is_ok_and(|path| path.ends_with(suffix))
}

/// The files named `<timestamp>_<name>.sql`, by numeric timestamp (then name); the CLI skips others.
pub(super) fn list(dir: &Dir) -> Vec<MigrationRef> {
    let mut files: Vec<(&str, &str)> = dir
        .sql_files()
        .filter_map(|file| Some((timestamp(file)?, file)))
        .collect();
    files.sort_by(|(ts_a, a), (ts_b, b)| cmp_numeric(ts_a, ts_b).then_with(|| a.cmp(b)));
    files
        .into_iter()
        .map(|(timestamp, file)| MigrationRef {
            path: dir.path(file),
            version: timestamp.to_owned(),
            down: None,
        })
        .collect()
}

/// The timestamp of `<digits>_<name>.sql`.
fn timestamp(file: &str) -> Option<&str> {
    let digits = leading_digits(file);
    (!digits.is_empty() && file[digits.len()..].starts_with('_')).then_some(digits)
}
