//! The JSON report, version 1: the contract other tools read (see DESIGN.md, "JSON report").

use std::collections::BTreeMap;
use std::io::{self, Write};

use serde::{Serialize, Serializer};

use super::{llm_totals, LlmTotals};
use crate::advice::Advice;
use crate::escape;
use crate::review::{in_order_pipeline, Finding, MigrationReview, Review};
use crate::rules::{Category, Severity};
use crate::shadow::trace::StatementTrace;
use crate::stats::TableSize;

#[derive(Serialize)]
struct Report<'a> {
    version: u32,
    migrations: Migrations<'a>,
    summary: Summary,
    /// Inputs that could not be reviewed (an addition to the contract's keys).
    problems: Vec<ProblemJson>,
    /// Directory entries passed over that would not have been migrations (an addition to the
    /// contract's keys).
    notices: Vec<InputNoticeJson<'a>>,
    /// The shadow database the migrations were applied to, or null (an addition to the contract's keys).
    shadow: Option<&'a str>,
    /// Why the trace read no statement's schema changes (`--trace-changes`): each statement's
    /// `trace.changes` is then empty without meaning that nothing changed; null when they were read
    /// or nothing was traced (an addition to the contract's keys).
    schema_changes_unread: Option<&'a str>,
    /// Why no migration got advice though findings reached the default `--advise-on`: the run
    /// reviewed more migrations than get advice by default; null otherwise (an addition to the
    /// contract's keys).
    advice_unasked: Option<&'a str>,
}

/// The reviewed migrations, each serialized as the report reaches it.
struct Migrations<'a>(&'a [MigrationReview]);

impl Serialize for Migrations<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter().map(migration))
    }
}

#[derive(Serialize)]
struct MigrationJson<'a> {
    path: String,
    tool: &'static str,
    statements: Statements<'a>,
    findings: Findings<'a>,
    advice: Option<&'a Advice>,
    notices: Vec<NoticeJson<'a>>,
}

/// A migration's statements, each serialized as the report reaches it.
struct Statements<'a>(&'a MigrationReview);

impl Serialize for Statements<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let migration = self.0;
        serializer.collect_seq(migration.statements.iter().map(|s| {
            StatementJson {
                index: s.index,
                line: s.position.line,
                sql: &migration.text[s.range.clone()],
                parsed: s.parsed,
                classified: s.classified,
                trace: s.trace.as_deref(),
                table_sizes: s
                    .table_sizes
                    .iter()
                    .map(|(table, size)| (table.as_str(), *size))
                    .collect(),
            }
        }))
    }
}

/// A migration's findings, each serialized as the report reaches it.
struct Findings<'a>(&'a [Finding]);

impl Serialize for Findings<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter().map(finding))
    }
}

#[derive(Serialize)]
struct StatementJson<'a> {
    index: usize,
    line: usize,
    sql: &'a str,
    parsed: bool,
    /// Parsed, or recognised by the fallback classification (an addition to the contract's keys).
    classified: bool,
    trace: Option<&'a StatementTrace>,
    /// Sizes from `--stats` of the tables a DML statement with a plan works on (an addition to the
    /// contract's keys).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    table_sizes: BTreeMap<&'a str, TableSize>,
}

#[derive(Serialize)]
struct FindingJson<'a> {
    rule: &'static str,
    severity: Severity,
    category: Category,
    statement: usize,
    line: usize,
    column: usize,
    message: &'a str,
    help: &'a str,
    /// For display: `schema.name` (unquoted).
    table: Option<String>,
    /// The table's schema and name, unquoted (an addition to the contract's keys).
    schema: Option<&'a str>,
    name: Option<&'a str>,
    confirmed_by_shadow: Option<bool>,
}

#[derive(Serialize)]
struct NoticeJson<'a> {
    line: usize,
    column: usize,
    message: &'a str,
}

#[derive(Serialize)]
struct ProblemJson {
    path: String,
    line: Option<usize>,
    column: Option<usize>,
    message: String,
}

#[derive(Serialize)]
struct InputNoticeJson<'a> {
    path: String,
    message: &'a str,
}

#[derive(Serialize)]
struct Summary {
    migrations: usize,
    statements: usize,
    errors: usize,
    warnings: usize,
    infos: usize,
    /// What the LLM requests cost; null when none was made (an addition to the contract's keys).
    llm: Option<LlmTotals>,
}

/// Writes the review as one compact JSON object on one line (pipe it through `jq` to read it).
pub fn write(review: &Review, out: &mut dyn Write) -> io::Result<()> {
    let counts = review.counts();
    let report = Report {
        version: 1,
        migrations: Migrations(&review.migrations),
        summary: Summary {
            migrations: review.migrations.len(),
            statements: review.migrations.iter().map(|m| m.statements.len()).sum(),
            errors: counts.errors,
            warnings: counts.warnings,
            infos: counts.infos,
            llm: llm_totals(review),
        },
        problems: review
            .problems
            .iter()
            .map(|p| ProblemJson {
                path: escape::path(&p.path),
                line: p.position.map(|p| p.line),
                column: p.position.map(|p| p.column),
                message: p.message.clone(),
            })
            .collect(),
        notices: review
            .notices
            .iter()
            .map(|n| InputNoticeJson {
                path: escape::path(&n.path),
                message: &n.message,
            })
            .collect(),
        shadow: review.shadow.as_deref(),
        schema_changes_unread: review.schema_changes_unread.as_deref(),
        advice_unasked: review.advice_unasked.as_deref(),
    };
    if review.migrations.len() < 2 {
        return super::write_json(&report, false, out);
    }
    // The migrations are most of the text and independent of each other: rendered on the parsing
    // threads, in order, while this thread writes them between the rest of the report, which is
    // rendered around an empty list of migrations (its first `"migrations":[]`, as `version` is a
    // number). The bytes are those of one serialization.
    let around = serde_json::to_vec(&Report {
        migrations: Migrations(&[]),
        ..report
    })?;
    let empty: &[u8] = b"\"migrations\":[]";
    let at = around
        .windows(empty.len())
        .position(|w| w == empty)
        .ok_or_else(|| io::Error::other("the JSON report lists no migrations"))?
        + empty.len()
        - 1;
    super::write_json_text(out, |out| {
        out.write_all(&around[..at])?;
        let mut written: io::Result<()> = Ok(());
        in_order_pipeline(
            &review.migrations,
            |reviewed| serde_json::to_vec(&migration(reviewed)),
            |index, rendered| {
                if written.is_ok() {
                    written = rendered.map_err(io::Error::from).and_then(|rendered| {
                        if index > 0 {
                            out.write_all(b",")?;
                        }
                        out.write_all(&rendered)
                    });
                }
                None::<()>
            },
        );
        written?;
        out.write_all(&around[at..])
    })
}

fn migration(migration: &MigrationReview) -> MigrationJson<'_> {
    MigrationJson {
        path: escape::path(&migration.path),
        tool: migration.tool.name(),
        statements: Statements(migration),
        findings: Findings(&migration.findings),
        advice: migration.advice.as_ref(),
        notices: migration
            .notices
            .iter()
            .map(|n| NoticeJson {
                line: n.position.line,
                column: n.position.column,
                message: &n.message,
            })
            .collect(),
    }
}

fn finding(finding: &Finding) -> FindingJson<'_> {
    FindingJson {
        rule: finding.rule.id,
        severity: finding.severity,
        category: finding.category(),
        statement: finding.statement,
        line: finding.position.line,
        column: finding.position.column,
        message: &finding.message,
        help: &finding.help,
        table: finding.table.as_ref().map(ToString::to_string),
        schema: finding.table.as_ref().and_then(|t| t.schema.as_deref()),
        name: finding.table.as_ref().map(|t| t.name.as_str()),
        confirmed_by_shadow: finding.confirmed_by_shadow,
    }
}
