//! Flyway: versioned `V<version>__<description>.sql` (and baseline `B<version>__`) migrations, then
//! repeatable `R__<description>.sql` ones; undo `U<version>__` files are the downs of the versioned ones.

use std::cmp::Ordering;
use std::ffi::OsString;
use std::path::Path;

use super::dir::{read_within, Dir};
use super::heads::statement_heads;
use super::order::cmp_flyway_version;
use super::{DownLocation, MigrationRef, Transaction};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// `V` and `B` (a baseline is applied like a versioned migration).
    Versioned,
    Undo,
    Repeatable,
}

/// A file name in Flyway's default naming scheme.
#[derive(Debug, PartialEq, Eq)]
struct Name<'a> {
    file: &'a str,
    kind: Kind,
    /// Empty for repeatables.
    version: &'a str,
    description: &'a str,
}

/// Parses `<prefix><version>__<description>.sql`; the version is digit groups separated by `.` or `_`.
fn parse(file: &str) -> Option<Name<'_>> {
    let stem = file.strip_suffix(".sql")?;
    let (prefix, rest) = stem.split_at_checked(1)?;
    let (version, description) = rest.split_once("__")?;
    let kind = match prefix {
        "V" | "B" => Kind::Versioned,
        "U" => Kind::Undo,
        "R" => Kind::Repeatable,
        _ => return None,
    };
    let valid_version = if kind == Kind::Repeatable {
        version.is_empty()
    } else {
        !version.is_empty()
            && version
                .split(['.', '_'])
                .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()))
    };
    valid_version.then_some(Name {
        file,
        kind,
        version,
        description,
    })
}

fn names(dir: &Dir) -> impl Iterator<Item = Name<'_>> {
    dir.sql_files().filter_map(parse)
}

/// A directory of only undo files is not something Flyway can migrate up.
pub(super) fn detect(dir: &Dir) -> bool {
    names(dir).any(|name| name.kind != Kind::Undo)
}

/// Versioned migrations by version (then file name, for a `B` and a `V` of the same version), then
/// repeatables by description, as Flyway applies them on an empty database.
pub(super) fn list(dir: &Dir) -> Vec<MigrationRef> {
    let all: Vec<Name> = names(dir).collect();
    let of_kind = |kind| all.iter().filter(move |name| name.kind == kind);

    let mut versioned: Vec<&Name> = of_kind(Kind::Versioned).collect();
    versioned.sort_by(|a, b| cmp_flyway_version(a.version, b.version).then(a.file.cmp(b.file)));
    let mut repeatable: Vec<&Name> = of_kind(Kind::Repeatable).collect();
    repeatable.sort_by(|a, b| a.description.cmp(b.description).then(a.file.cmp(b.file)));

    let undo_of = |version: &str| {
        of_kind(Kind::Undo)
            .find(|undo| cmp_flyway_version(undo.version, version) == Ordering::Equal)
            .map(|undo| DownLocation::File(dir.path(undo.file)))
    };
    let versioned = versioned.into_iter().map(|name| MigrationRef {
        path: dir.path(name.file),
        version: name.version.to_owned(),
        down: undo_of(name.version),
    });
    // A repeatable has no version; its description is its ordering key.
    let repeatable = repeatable.into_iter().map(|name| MigrationRef {
        path: dir.path(name.file),
        version: name.description.to_owned(),
        down: None,
    });
    versioned.chain(repeatable).collect()
}

/// Flyway wraps each migration in a transaction, except when the script's config file
/// (`<file>.conf`) says `executeInTransaction=false`, or when the file holds a statement PostgreSQL
/// refuses inside a transaction, which Flyway notices and runs without one.
pub(super) fn transaction(path: &Path, body: &str) -> Transaction {
    let runs_outside = statement_heads(body)
        .iter()
        .any(|words| runs_outside_transaction(words));
    if runs_outside || config_disables_transaction(path) {
        Transaction::None
    } else {
        Transaction::Wrapped
    }
}

fn config_disables_transaction(path: &Path) -> bool {
    let mut config = OsString::from(path.as_os_str());
    config.push(".conf");
    let dir = path.parent().unwrap_or(Path::new(""));
    read_within(Path::new(&config), dir).is_some_and(|text| {
        text.lines().any(|line| {
            line.split_once('=').is_some_and(|(key, value)| {
                key.trim() == "executeInTransaction" && value.trim().eq_ignore_ascii_case("false")
            })
        })
    })
}

/// The statements Flyway itself runs outside a transaction on PostgreSQL.
fn runs_outside_transaction(words: &[String]) -> bool {
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    match words.as_slice() {
        ["CREATE", "INDEX", "CONCURRENTLY", ..]
        | ["CREATE", "UNIQUE", "INDEX", "CONCURRENTLY", ..]
        | ["DROP", "INDEX", "CONCURRENTLY", ..]
        | ["VACUUM", ..] => true,
        ["REINDEX", options @ ..] => options.contains(&"CONCURRENTLY"),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_flyway_names() {
        let v = parse("V1_2__add_users.sql").map(|n| (n.kind, n.version, n.description));
        assert_eq!(v, Some((Kind::Versioned, "1_2", "add_users")));
        let b = parse("B3__baseline.sql").map(|n| (n.kind, n.version));
        assert_eq!(b, Some((Kind::Versioned, "3")));
        let r = parse("R__views.sql").map(|n| (n.kind, n.description));
        assert_eq!(r, Some((Kind::Repeatable, "views")));
        let u = parse("U1.10__x.sql").map(|n| (n.kind, n.version));
        assert_eq!(u, Some((Kind::Undo, "1.10")));
        for bad in [
            "V__x.sql",
            "V1_x.sql",
            "V1.__x.sql",
            "Va__x.sql",
            "R1__x.sql",
            "X1__x.sql",
            "V1__x.txt",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn finds_statements_flyway_runs_without_a_transaction() {
        let outside = |sql: &str| {
            statement_heads(sql)
                .iter()
                .any(|words| runs_outside_transaction(words))
        };
        assert!(outside("create unique index concurrently i on t (a);"));
        assert!(outside("SELECT 1; DROP INDEX CONCURRENTLY i;"));
        assert!(outside("REINDEX (VERBOSE) TABLE CONCURRENTLY t;"));
        assert!(outside("VACUUM t;"));
        assert!(!outside("REINDEX TABLE t;"));
        assert!(!outside(
            "-- CREATE INDEX CONCURRENTLY i ON t (a);\nCREATE INDEX i ON t (a);"
        ));
        assert!(!outside("COMMENT ON TABLE t IS 'VACUUM weekly';"));
    }
}
