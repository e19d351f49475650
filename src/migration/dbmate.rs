//! dbmate: one file per migration, an `-- migrate:up` section then an optional `-- migrate:down` one.

use std::ops::Range;

use super::dir::Dir;
use super::order::{cmp_numeric, leading_digits};
use super::text::{comment, lines};
use super::{DownLocation, MigrationRef, Section, Transaction};

/// dbmate is recognised by its markers whatever the file names.
pub(super) fn detect(dir: &Dir) -> bool {
    dir.sql_files().any(|file| {
        dir.head(file)
            .is_some_and(|head| head.lines().any(|line| marker(line, "up").is_some()))
    })
}

/// The files whose names start with a version number (dbmate ignores the others), by version, then
/// name. The down section lives in the same file.
pub(super) fn list(dir: &Dir) -> Vec<MigrationRef> {
    let mut files: Vec<(&str, &str)> = dir
        .sql_files()
        .map(|file| (leading_digits(file), file))
        .filter(|(version, _)| !version.is_empty())
        .collect();
    files.sort_by(|(version_a, a), (version_b, b)| {
        cmp_numeric(version_a, version_b).then_with(|| a.cmp(b))
    });
    files
        .into_iter()
        .map(|(version, file)| MigrationRef {
            path: dir.path(file),
            version: version.to_owned(),
            down: Some(DownLocation::InFile),
        })
        .collect()
}

/// The up section: from the line after `-- migrate:up` to the `-- migrate:down` line (or the end).
/// dbmate refuses a file without an up marker, so such a file has no section to review.
pub(super) fn sections(text: &str, body: Range<usize>) -> Vec<Section> {
    let mut lines = lines(text, body.start);
    let Some((start, options)) = lines
        .by_ref()
        .find_map(|line| Some((line.end, marker(line.text, "up")?)))
    else {
        return Vec::new();
    };
    let end = lines
        .find(|line| marker(line.text, "down").is_some())
        .map_or(body.end, |line| line.start);
    let transaction = if options
        .split_whitespace()
        .any(|option| option == "transaction:false")
    {
        Transaction::None
    } else {
        Transaction::Wrapped
    };
    vec![Section {
        range: start..end,
        transaction,
    }]
}

/// dbmate's marker rule, `^--\s*migrate:<kind>(\s*$|\s+\S+)`: a line that is exactly the marker, or the
/// marker and blank-separated options, which are returned.
fn marker<'a>(line: &'a str, kind: &str) -> Option<&'a str> {
    let options = comment(line)?
        .strip_prefix("migrate:")?
        .strip_prefix(kind)?;
    (options.is_empty() || options.starts_with(char::is_whitespace)).then_some(options)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn up(text: &str) -> Vec<(&str, Transaction)> {
        sections(text, 0..text.len())
            .into_iter()
            .map(|section| (&text[section.range], section.transaction))
            .collect()
    }

    #[test]
    fn up_section_runs_to_the_down_marker() {
        let text = "-- migrate:up\nCREATE TABLE t (id int);\n\n-- migrate:down\nDROP TABLE t;\n";
        assert_eq!(
            up(text),
            [("CREATE TABLE t (id int);\n\n", Transaction::Wrapped)]
        );
    }

    #[test]
    fn transaction_false_and_missing_down() {
        let text = "--migrate:up transaction:false\r\nCREATE INDEX CONCURRENTLY i ON t (a);";
        assert_eq!(
            up(text),
            [("CREATE INDEX CONCURRENTLY i ON t (a);", Transaction::None)]
        );
    }

    #[test]
    fn markers_must_start_the_line_and_end_the_word() {
        assert_eq!(up("SELECT 1;\n"), []);
        assert_eq!(up("-- migrate:upgrade\nSELECT 1;\n"), []);
        let indented = "-- migrate:up\nSELECT 1\n    -- migrate:down\nSELECT 2;\n";
        assert_eq!(
            up(indented)[0].0,
            "SELECT 1\n    -- migrate:down\nSELECT 2;\n"
        );
    }
}
