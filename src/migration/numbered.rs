//! golang-migrate and sqlx: `<N>_<name>.up.sql` with `<N>_<name>.down.sql`, ordered by the integer N.
//! sqlx also runs plain `<N>_<name>.sql` files, and a file whose first line is `-- no-transaction` runs
//! outside a transaction.

use std::cmp::Ordering;

use super::dir::Dir;
use super::order::{cmp_numeric, leading_digits};
use super::{DownLocation, MigrationRef, Tool, Transaction};

/// sqlx's marker, which it matches at the very start of the file.
const NO_TRANSACTION: &str = "-- no-transaction";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Up,
    Down,
    /// sqlx's one-way `<N>_<name>.sql`.
    Simple,
}

struct Name<'a> {
    file: &'a str,
    version: &'a str,
    kind: Kind,
}

/// Parses `<digits>_<name>.up.sql`, `.down.sql` or `.sql`.
fn parse(file: &str) -> Option<Name<'_>> {
    let version = leading_digits(file);
    let rest = file.get(version.len()..)?.strip_prefix('_')?;
    let kind = if rest.ends_with(".up.sql") {
        Kind::Up
    } else if rest.ends_with(".down.sql") {
        Kind::Down
    } else if rest.ends_with(".sql") {
        Kind::Simple
    } else {
        return None;
    };
    (!version.is_empty()).then_some(Name {
        file,
        version,
        kind,
    })
}

fn names(dir: &Dir) -> impl Iterator<Item = Name<'_>> {
    dir.files().iter().filter_map(|file| parse(file))
}

/// sqlx when any migration opens with `-- no-transaction`, or when plain `<N>_<name>.sql` files sit
/// beside `.up.sql` ones (golang-migrate would never run them, sqlx does); golang-migrate for other
/// `.up.sql` directories. Plain numbered files alone, without the marker, are left to the plain layout:
/// nothing shows that a tool wraps them.
pub(super) fn detect(dir: &Dir) -> Option<Tool> {
    let (mut up, mut simple, mut no_transaction) = (false, false, false);
    for name in names(dir).filter(|name| name.kind != Kind::Down) {
        up |= name.kind == Kind::Up;
        simple |= name.kind == Kind::Simple;
        no_transaction = no_transaction
            || dir
                .head(name.file)
                .is_some_and(|head| head.starts_with(NO_TRANSACTION));
    }
    if no_transaction || (up && simple) {
        Some(Tool::Sqlx)
    } else if up {
        Some(Tool::GolangMigrate)
    } else {
        None
    }
}

/// The up files (and for sqlx the simple ones) by integer version, then name; each up file's down is
/// the `.down.sql` of the same version.
pub(super) fn list(dir: &Dir, tool: Tool) -> Vec<MigrationRef> {
    let names: Vec<Name> = names(dir).collect();
    let mut migrations: Vec<&Name> = names
        .iter()
        .filter(|name| name.kind == Kind::Up || (tool == Tool::Sqlx && name.kind == Kind::Simple))
        .collect();
    migrations.sort_by(|a, b| cmp_numeric(a.version, b.version).then_with(|| a.file.cmp(b.file)));
    migrations
        .into_iter()
        .map(|name| MigrationRef {
            path: dir.path(name.file),
            version: name.version.to_owned(),
            down: (name.kind == Kind::Up)
                .then(|| {
                    names.iter().find(|down| {
                        down.kind == Kind::Down
                            && cmp_numeric(down.version, name.version) == Ordering::Equal
                    })
                })
                .flatten()
                .map(|down| DownLocation::File(dir.path(down.file))),
        })
        .collect()
}

/// sqlx runs a file in a transaction unless its text starts with `-- no-transaction`. Like sqlx, this
/// looks at the raw text: behind a byte order mark the marker no longer counts, and sqlx would wrap
/// the file after all.
pub(super) fn sqlx_transaction(text: &str) -> Transaction {
    if text.starts_with(NO_TRANSACTION) {
        Transaction::None
    } else {
        Transaction::Wrapped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_numbered_names() {
        let kind = |file| parse(file).map(|name| (name.version, name.kind));
        assert_eq!(kind("10_add.up.sql"), Some(("10", Kind::Up)));
        assert_eq!(kind("0001_add.down.sql"), Some(("0001", Kind::Down)));
        assert_eq!(kind("2_add.sql"), Some(("2", Kind::Simple)));
        assert_eq!(kind("add.up.sql"), None);
        assert_eq!(kind("1add.up.sql"), None);
        assert_eq!(kind("1_add.txt"), None);
    }

    #[test]
    fn no_transaction_marker_is_matched_at_the_very_start() {
        assert_eq!(
            sqlx_transaction("-- no-transaction\nCREATE INDEX CONCURRENTLY i ON t (a);"),
            Transaction::None
        );
        assert_eq!(
            sqlx_transaction("\n-- no-transaction\nSELECT 1;"),
            Transaction::Wrapped
        );
    }
}
