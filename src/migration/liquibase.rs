//! Liquibase formatted SQL: files headed `--liquibase formatted sql`, cut into `--changeset author:id`
//! sections, each with its own transaction behaviour. `--rollback` lines are comments inside a changeset.

use std::ops::Range;

use super::dir::Dir;
use super::order::{natural_cmp, stem_version};
use super::text::{comment, lines, without_bom};
use super::{DownLocation, MigrationRef, Section, Transaction};

/// Whether a text is a formatted-SQL changelog: its first non-blank line is the header, in any case
/// and spacing.
fn is_changelog(text: &str) -> bool {
    without_bom(text)
        .lines()
        .find(|line| !line.trim().is_empty())
        .and_then(|line| comment(line.trim()))
        .is_some_and(|header| {
            header.split_whitespace().map(str::to_ascii_lowercase).eq([
                "liquibase",
                "formatted",
                "sql",
            ])
        })
}

pub(super) fn detect(dir: &Dir) -> bool {
    dir.sql_files()
        .any(|file| dir.head(file).is_some_and(|head| is_changelog(&head)))
}

/// The changelog files in natural order; other `.sql` files are not Liquibase's. A file whose content
/// is unknown may be one.
pub(super) fn list(dir: &Dir) -> Vec<MigrationRef> {
    let mut files: Vec<&str> = dir
        .sql_files()
        .filter(|file| dir.head(file).is_none_or(|head| is_changelog(&head)))
        .collect();
    files.sort_by(|a, b| natural_cmp(a, b));
    files
        .into_iter()
        .map(|file| MigrationRef {
            path: dir.path(file),
            version: stem_version(file.strip_suffix(".sql").unwrap_or(file)).to_owned(),
            down: Some(DownLocation::InFile),
        })
        .collect()
}

/// One section per changeset: the bytes after its `--changeset` line up to the next one. Text before
/// the first changeset is not executed.
pub(super) fn sections(text: &str, body: Range<usize>) -> Vec<Section> {
    let mut sections = Vec::new();
    let mut open: Option<(usize, Transaction)> = None;
    for line in lines(text, body.start) {
        let Some(attributes) = changeset(line.text) else {
            continue;
        };
        if let Some((start, transaction)) = open.take() {
            sections.push(Section {
                range: start..line.start,
                transaction,
            });
        }
        open = Some((line.end, transaction(attributes)));
    }
    if let Some((start, transaction)) = open {
        sections.push(Section {
            range: start..body.end,
            transaction,
        });
    }
    sections
}

/// The attributes after `--changeset author:id` (Liquibase's `--\s*changeset\s+…`, any case).
fn changeset(line: &str) -> Option<&str> {
    let rest = comment(line)?;
    let keyword = rest.get(.."changeset".len())?;
    let attributes = &rest["changeset".len()..];
    (keyword.eq_ignore_ascii_case("changeset") && attributes.starts_with(char::is_whitespace))
        .then_some(attributes)
}

fn transaction(attributes: &str) -> Transaction {
    let outside = attributes.split_whitespace().any(|attribute| {
        attribute.split_once(':').is_some_and(|(key, value)| {
            key.eq_ignore_ascii_case("runInTransaction") && value.eq_ignore_ascii_case("false")
        })
    });
    if outside {
        Transaction::None
    } else {
        Transaction::Wrapped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_the_header_in_any_spacing_and_case() {
        assert!(is_changelog("--liquibase formatted sql\n"));
        assert!(is_changelog(
            "\u{feff}\n\n  -- Liquibase  Formatted SQL\r\n"
        ));
        assert!(!is_changelog("SELECT 1;\n--liquibase formatted sql\n"));
        assert!(!is_changelog("-- liquibase formatted sql please\n"));
    }

    #[test]
    fn cuts_one_section_per_changeset() {
        let text = "--liquibase formatted sql\n\
                    --changeset alice:1\nCREATE TABLE t (a int);\n--rollback DROP TABLE t;\n\
                    -- ChangeSet alice:2 runInTransaction:false splitStatements:true\nCREATE INDEX CONCURRENTLY i ON t (a);\n";
        let found: Vec<_> = sections(text, 0..text.len())
            .into_iter()
            .map(|section| (&text[section.range], section.transaction))
            .collect();
        assert_eq!(
            found,
            [
                (
                    "CREATE TABLE t (a int);\n--rollback DROP TABLE t;\n",
                    Transaction::Wrapped
                ),
                ("CREATE INDEX CONCURRENTLY i ON t (a);\n", Transaction::None),
            ]
        );
    }
}
