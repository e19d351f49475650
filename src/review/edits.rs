//! `history-modified`: migrations that existed at the `--base` merge base and were edited or deleted
//! since. An edited one is reviewed like any changed migration and gains the finding at its first
//! changed line; a deleted one is shown with its text at the merge base.

use std::path::Path;

use super::{Finding, MigrationReview, Review, ReviewOptions, ReviewedStatement};
use crate::escape;
use crate::migration::git::{EditedMigration, HistoryEdits};
use crate::migration::Tool;
use crate::rules::{self, Rule};
use crate::sql::{LineIndex, Position};

/// Adds a `history-modified` finding for each edited or deleted migration of `edits`.
pub(super) fn report(review: &mut Review, edits: &HistoryEdits, options: &ReviewOptions) {
    let rule = rules::HISTORY_MODIFIED;
    let Some(severity) = options.severity(rule) else {
        return;
    };
    for edited in &edits.migrations {
        let reviewed = review
            .migrations
            .iter_mut()
            .find(|m| same_file(&m.path, &edited.path));
        match reviewed {
            Some(migration) if !edited.deleted => {
                let offset = first_difference(&edited.base_text, &migration.text);
                let message = edited_message(edits, &migration.text, offset);
                add_finding(migration, rule, severity, offset, message);
            }
            // A file git lists that discovery did not review is not a migration.
            _ if !edited.deleted => {}
            _ => {
                let mut migration = deleted_migration(edited);
                add_finding(&mut migration, rule, severity, 0, deleted_message(edits));
                // Next to the migrations it sat among, by name.
                let at = review
                    .migrations
                    .iter()
                    .position(|m| m.path > migration.path)
                    .unwrap_or(review.migrations.len());
                review.migrations.insert(at, migration);
            }
        }
    }
}

/// Whether `edits` lists `path` as edited since the merge base.
pub(super) fn edits(edits: &HistoryEdits, path: &Path) -> bool {
    edits
        .migrations
        .iter()
        .any(|edited| !edited.deleted && same_file(&edited.path, path))
}

/// The same file named two ways (`db/0001.sql`, `./db/0001.sql`).
fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => a.components().eq(b.components()),
    }
}

/// The start of the first line where `new` differs from `old` (`new`'s end when it only got shorter).
fn first_difference(old: &str, new: &str) -> usize {
    let mut offset = 0;
    for (old_line, new_line) in old.split_inclusive('\n').zip(new.split_inclusive('\n')) {
        if old_line != new_line {
            return offset;
        }
        offset += new_line.len();
    }
    offset.min(new.len())
}

fn edited_message(edits: &HistoryEdits, text: &str, at: usize) -> String {
    let line = LineIndex::new(text).position(text, at).line;
    format!(
        "this migration already existed at the merge base with {} ({}) and was edited since (from line {line} on): environments that already ran it keep the old text's schema, since migration tools never run an applied migration again, while new environments run this text, so the two diverge (Flyway and sqlx also refuse to migrate on the changed checksum)",
        escape::text(&edits.base),
        edits.merge_base,
    )
}

fn deleted_message(edits: &HistoryEdits) -> String {
    format!(
        "this migration existed at the merge base with {} ({}) and was deleted since: environments that already ran it keep what it created, new environments never get it, so the two diverge (shown here as it was at the merge base)",
        escape::text(&edits.base),
        edits.merge_base
    )
}

const HELP: &str = "leave applied migrations as they are and make the change in a new migration that moves every environment from the old schema to the new one; an edit that only touches comments or whitespace still changes checksums: restore the text from the merge base (`git checkout <base> -- <file>`)";

/// A deleted migration as a review entry: its text at the merge base, one statement spanning it.
fn deleted_migration(edited: &EditedMigration) -> MigrationReview {
    let text = edited.base_text.clone();
    let lines = LineIndex::new(&text);
    MigrationReview {
        path: edited.path.clone(),
        tool: Tool::Plain,
        statements: vec![ReviewedStatement {
            index: 0,
            range: 0..text.len(),
            position: Position { line: 1, column: 1 },
            parsed: true,
            classified: true,
            label: "deleted migration".into(),
            trace: None,
            table_sizes: Vec::new(),
        }],
        text,
        // Nothing of a deleted migration runs.
        sections: Vec::new(),
        lines,
        findings: Vec::new(),
        notices: Vec::new(),
        advice: None,
    }
}

/// Adds the finding at `offset`, on the statement holding it (the last one starting at or before it).
fn add_finding(
    migration: &mut MigrationReview,
    rule: &'static Rule,
    severity: rules::Severity,
    offset: usize,
    message: String,
) {
    if migration.statements.is_empty() {
        // A migration edited down to nothing: the finding needs a statement to point into.
        migration.statements.push(ReviewedStatement {
            index: 0,
            range: 0..migration.text.len(),
            position: Position { line: 1, column: 1 },
            parsed: true,
            classified: true,
            label: "migration".into(),
            trace: None,
            table_sizes: Vec::new(),
        });
    }
    let statement = migration
        .statements
        .iter()
        .rposition(|s| s.range.start <= offset)
        .unwrap_or(0);
    migration.findings.push(Finding {
        rule,
        severity,
        statement,
        offset,
        position: migration.lines.position(&migration.text, offset),
        message,
        help: HELP.to_owned(),
        table: None,
        confirmed_by_shadow: None,
        fix: None,
    });
    migration.findings.sort_by_key(|f| (f.offset, f.statement));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_difference_is_the_start_of_the_first_changed_line() {
        let old = "CREATE TABLE a (id int);\nCREATE TABLE b (id int);\n";
        assert_eq!(
            first_difference(
                old,
                "CREATE TABLE a (id int);\nCREATE TABLE b (id bigint);\n"
            ),
            25
        );
        assert_eq!(first_difference(old, "CREATE TABLE a (id int);\n"), 25);
        assert_eq!(first_difference(old, "-- a\n"), 0);
        assert_eq!(first_difference(old, old), old.len());
    }
}
