//! Renderers of one [`Review`] value: text for people, JSON for tools, SARIF for code-scanning
//! services, GitHub workflow commands for annotations, Markdown for a pull-request comment.

pub mod github;
pub mod json;
pub mod markdown;
pub mod sarif;
pub mod text;

use std::borrow::Cow;
use std::path::Path;

use crate::escape;
use crate::review::{Finding, InputProblem, MigrationReview, Review};
use crate::sql::Position;

/// The report formats `--format` accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
    Sarif,
    Github,
    Markdown,
}

impl Format {
    pub const ALL: [Format; 5] = [
        Format::Text,
        Format::Json,
        Format::Sarif,
        Format::Github,
        Format::Markdown,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Format::Text => "text",
            Format::Json => "json",
            Format::Sarif => "sarif",
            Format::Github => "github",
            Format::Markdown => "markdown",
        }
    }

    pub fn from_name(name: &str) -> Option<Format> {
        Format::ALL.into_iter().find(|format| format.name() == name)
    }
}

/// What a report needs to know about the run besides the review itself.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// The exit code the run ends with (SARIF records it).
    pub exit_code: u8,
    /// ANSI colour in the text report.
    pub color: bool,
    /// Where the rule documents are published: a rule links to `<rules_url>/<id>.md` (Markdown
    /// report, SARIF `helpUri`). Without it, reports name the rule and `migagent rules <id>`.
    pub rules_url: Option<&'a str>,
    /// The working directory the review's relative paths start from (SARIF's `%SRCROOT%`).
    pub working_dir: &'a Path,
}

/// Renders the review in one format.
pub fn render(review: &Review, format: Format, context: &Context) -> String {
    match format {
        Format::Text => text::render(
            review,
            text::Style {
                color: context.color,
            },
        ),
        Format::Json => json::render(review),
        Format::Sarif => sarif::render(review, context),
        Format::Github => github::render(review, context),
        Format::Markdown => markdown::render(review, context),
    }
}

/// A path as the working directory sees it: relative paths as they are, absolute ones under the working
/// directory made relative to it; `None` for an absolute path elsewhere.
pub fn relative_path<'a>(path: &'a Path, working_dir: &Path) -> Option<&'a Path> {
    if path.is_absolute() {
        path.strip_prefix(working_dir).ok()
    } else {
        Some(path)
    }
}

/// The file an input problem is about; `None` when it is about an option instead (the review records
/// `--shadow` where a path would be).
pub fn problem_file(problem: &InputProblem) -> Option<&Path> {
    let about_option = problem
        .path
        .to_str()
        .is_some_and(|path| path.starts_with("--"));
    (!about_option).then_some(&*problem.path)
}

/// Where a finding's statement ends (one past its last character), when that is past the finding: the
/// extent SARIF and GitHub annotations give a finding.
pub fn statement_end(migration: &MigrationReview, finding: &Finding) -> Option<Position> {
    let end = migration.statements[finding.statement].range.end;
    (end > finding.offset).then(|| migration.lines.position(&migration.text, end))
}

/// "1 migration, 6 statements: 6 errors, 1 warning, 1 info": the summary every report ends with.
pub fn summary_line(review: &Review) -> String {
    let counts = review.counts();
    let statements: usize = review.migrations.iter().map(|m| m.statements.len()).sum();
    format!(
        "{}, {}: {}, {}, {}",
        count(review.migrations.len(), "migration"),
        count(statements, "statement"),
        count(counts.errors, "error"),
        count(counts.warnings, "warning"),
        count(counts.infos, "info"),
    )
}

/// `1 error`, `2 errors`.
pub fn count(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("{n} {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// A path as the machine-read reports print it, every control character escaped (`\n`, `\x1b`): a
/// file name is data, and must not start a new annotation line or move a terminal's cursor.
pub fn shown_path(path: &Path) -> String {
    escape::path(path)
}

/// Text that must stay on one line: every control character escaped.
pub fn shown_line(text: &str) -> Cow<'_, str> {
    escape::text(text)
}

/// A message as the machine-read reports print it: line breaks are kept (each format encodes them its
/// own way), every other control character is escaped.
pub fn shown_text(text: &str) -> Cow<'_, str> {
    escape::lines(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_names_round_trip() {
        for format in Format::ALL {
            assert_eq!(Format::from_name(format.name()), Some(format));
        }
        assert_eq!(Format::from_name("xml"), None);
    }

    #[test]
    fn paths_escape_every_control_character() {
        assert_eq!(
            shown_path(Path::new("db/a\nb\r\tc\u{1b}[31m.sql")),
            "db/a\\nb\\r\\tc\\x1b[31m.sql"
        );
        assert_eq!(shown_path(Path::new("db/é 100%.sql")), "db/é 100%.sql");
        assert_eq!(
            shown_path(Path::new("db/\u{202e}lqs.exe")),
            "db/\\u{202e}lqs.exe"
        );
    }

    #[test]
    fn messages_keep_line_breaks_and_tabs() {
        assert_eq!(shown_text("a\n\tb\u{7}"), "a\n\tb\\x07");
        assert!(matches!(shown_text("plain"), Cow::Borrowed("plain")));
    }
}
