//! Atlas: `<version>_<name>.sql` files whose order and integrity `atlas.sum` records.

use std::collections::HashSet;

use super::dir::{is_sql_migration_name, Dir};
use super::order::until_underscore;
use super::text::comment;
use super::{MigrationRef, Transaction};

const SUM: &str = "atlas.sum";

pub(super) fn detect(dir: &Dir) -> bool {
    dir.has_file(SUM)
}

/// The files in `atlas.sum` order (lines `name.sql h1:…` after the first, whole-directory `h1:` line),
/// then any `.sql` file the sum does not list yet, lexically: a migration written but not yet hashed
/// is exactly the one a reviewer wants to see, and without a usable sum this is Atlas's own order.
pub(super) fn list(dir: &Dir) -> Vec<MigrationRef> {
    let sum = dir.read_to_string(SUM).unwrap_or_default();
    let mut names: Vec<&str> = Vec::new();
    let mut seen = HashSet::new();
    let listed = sum
        .lines()
        .skip_while(|line| !line.starts_with("h1:"))
        .skip(1)
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| is_sql_migration_name(name) && dir.has_file(name));
    for name in listed.chain(dir.sql_files()) {
        if seen.insert(name) {
            names.push(name);
        }
    }
    names
        .into_iter()
        .map(|name| MigrationRef {
            path: dir.path(name),
            version: until_underscore(name.trim_end_matches(".sql")).to_owned(),
            down: None,
        })
        .collect()
}

/// Atlas runs each file in its own transaction unless the file's header (the comment lines before the
/// first statement) holds `-- atlas:txmode none`.
pub(super) fn transaction(body: &str) -> Transaction {
    let header = body
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .map_while(comment);
    for directive in header {
        if let Some(mode) = directive.strip_prefix("atlas:txmode") {
            if mode.split_whitespace().next() == Some("none") {
                return Transaction::None;
            }
        }
    }
    Transaction::Wrapped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn txmode_none_only_counts_in_the_header() {
        assert_eq!(
            transaction("-- atlas:txmode none\n\nCREATE INDEX CONCURRENTLY i ON t (a);"),
            Transaction::None
        );
        assert_eq!(
            transaction("-- add an index\n--atlas:txmode none\nSELECT 1;"),
            Transaction::None
        );
        assert_eq!(
            transaction("SELECT 1;\n-- atlas:txmode none\n"),
            Transaction::Wrapped
        );
        assert_eq!(
            transaction("-- atlas:txmode file\nSELECT 1;"),
            Transaction::Wrapped
        );
    }
}
