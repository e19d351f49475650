//! Drizzle Kit: `<tag>.sql` files run in the order of `meta/_journal.json`.

use serde::Deserialize;

use super::dir::Dir;
use super::order::until_underscore;
use super::MigrationRef;

/// The journal that lists the migrations; `.sql` files it does not name are never applied.
pub(super) const JOURNAL: &str = "meta/_journal.json";

#[derive(Deserialize)]
struct Journal {
    entries: Vec<Entry>,
}

#[derive(Deserialize)]
struct Entry {
    idx: u64,
    tag: String,
}

pub(super) fn detect(dir: &Dir) -> bool {
    dir.read_to_string(JOURNAL).is_some()
}

/// The journal's entries by `idx`. An entry whose `<tag>.sql` is not a file of the directory is
/// skipped: the tag is untrusted text and must not reach outside the directory, and a missing file
/// leaves nothing to review.
pub(super) fn list(dir: &Dir) -> Result<Vec<MigrationRef>, String> {
    let text = dir
        .read_to_string(JOURNAL)
        .ok_or_else(|| format!("cannot read {JOURNAL}"))?;
    let mut journal: Journal =
        serde_json::from_str(&text).map_err(|err| format!("invalid {JOURNAL}: {err}"))?;
    journal.entries.sort_by_key(|entry| entry.idx);
    Ok(journal
        .entries
        .iter()
        .filter_map(|entry| {
            let file = format!("{}.sql", entry.tag);
            dir.has_file(&file).then(|| MigrationRef {
                path: dir.path(&file),
                version: until_underscore(&entry.tag).to_owned(),
                down: None,
            })
        })
        .collect())
}
