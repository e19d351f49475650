//! GitHub Actions workflow commands: one annotation per finding (`::error file=…,line=…::message`), on
//! the lines of the pull request's diff, and one per input that could not be reviewed.
//!
//! Every line this report prints starts with `::` and a command migagent chose, or with `migagent:`:
//! paths and messages are data, escaped the way the runner unescapes them (`%`, CR and LF in the
//! message; also `:` and `,` in properties), so a migration cannot end an annotation early or issue a
//! command of its own.

use std::fmt::Write;

use std::path::Path;

use super::{shown_line, shown_path, shown_text, Context};
use crate::review::{Finding, Review};
use crate::rules::Severity;
use crate::sql::Position;

/// Renders the review as workflow commands, then the summary line.
pub fn render(review: &Review, context: &Context) -> String {
    // GitHub places an annotation by its path from the repository root: the working directory.
    let annotated =
        |path: &Path| shown_path(super::relative_path(path, context.working_dir).unwrap_or(path));
    let mut out = String::new();
    for problem in &review.problems {
        let location = super::problem_file(problem).map(|path| (annotated(path), problem.position));
        let message = format!(
            "{}: could not be reviewed: {}",
            shown_path(&problem.path),
            problem.message
        );
        command(
            &mut out,
            "error",
            location,
            None,
            "migagent: could not review",
            &message,
        );
    }
    for notice in &review.notices {
        let message = format!("{}: {}", shown_path(&notice.path), notice.message);
        command(
            &mut out,
            "notice",
            None,
            None,
            "migagent: not read",
            &message,
        );
    }
    for migration in &review.migrations {
        let file = annotated(&migration.path);
        for notice in &migration.notices {
            let location = Some((file.clone(), Some(notice.position)));
            command(
                &mut out,
                "warning",
                location,
                None,
                "migagent",
                &notice.message,
            );
        }
        for finding in &migration.findings {
            let location = Some((file.clone(), Some(finding.position)));
            command(
                &mut out,
                level(finding.severity),
                location,
                super::statement_end(migration, finding),
                &format!("{} ({})", finding.rule.id, finding.category()),
                &annotation_text(finding),
            );
        }
    }
    if let Some(shadow) = super::shadow_line(review) {
        let _ = writeln!(out, "migagent: shadow: {}", shown_line(&shadow));
    }
    if let Some(unasked) = &review.advice_unasked {
        let _ = writeln!(out, "migagent: advice: {}", shown_line(unasked));
    }
    let _ = writeln!(out, "migagent: {}", super::summary_line(review));
    out
}

fn level(severity: Severity) -> &'static str {
    match severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Info => "notice",
    }
}

/// The message, what to do instead, and what the shadow database saw.
fn annotation_text(finding: &Finding) -> String {
    let mut text = finding.message.clone();
    if !finding.help.is_empty() {
        let _ = write!(text, "\n\nHelp: {}", finding.help);
    }
    match finding.confirmed_by_shadow {
        Some(true) => text.push_str("\n\nShadow: confirmed by the trace."),
        Some(false) => text.push_str(
            "\n\nShadow: not seen in the trace (the shadow's tables are empty; the finding stands).",
        ),
        None => {}
    }
    text
}

/// One workflow command line: `::level file=…,line=…,col=…,endLine=…,endColumn=…,title=…::message`.
/// GitHub takes `endColumn` only on a one-line range.
fn command(
    out: &mut String,
    level: &str,
    location: Option<(String, Option<Position>)>,
    end: Option<Position>,
    title: &str,
    message: &str,
) {
    let mut properties = Vec::new();
    if let Some((file, position)) = location {
        properties.push(format!("file={}", escape_property(&file)));
        if let Some(start) = position {
            properties.push(format!("line={}", start.line));
            properties.push(format!("col={}", start.column));
            match end {
                Some(end) if end.line == start.line => {
                    properties.push(format!("endColumn={}", end.column))
                }
                Some(end) => properties.push(format!("endLine={}", end.line)),
                None => {}
            }
        }
    }
    properties.push(format!("title={}", escape_property(title)));
    let _ = writeln!(
        out,
        "::{level} {}::{}",
        properties.join(","),
        escape_data(&shown_text(message))
    );
}

/// The runner's unescaping of a command's message, reversed.
fn escape_data(text: &str) -> String {
    text.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// The runner's unescaping of a property value, reversed: also `:` and `,`, which end a value.
fn escape_property(text: &str) -> String {
    escape_data(text).replace(':', "%3A").replace(',', "%2C")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_follows_the_runner() {
        assert_eq!(escape_data("100%\r\n::x"), "100%25%0D%0A::x");
        assert_eq!(escape_property("a:b,c%\n"), "a%3Ab%2Cc%25%0A");
    }

    #[test]
    fn commands_put_the_range_where_github_reads_it() {
        let mut out = String::new();
        let start = Position { line: 3, column: 5 };
        command(
            &mut out,
            "error",
            Some(("db/a,b.sql".into(), Some(start))),
            Some(Position { line: 3, column: 9 }),
            "set-not-null (locking)",
            "line one\nline two",
        );
        command(
            &mut out,
            "warning",
            Some(("db/a.sql".into(), Some(start))),
            Some(Position { line: 4, column: 2 }),
            "t",
            "m",
        );
        command(
            &mut out,
            "error",
            None,
            None,
            "migagent: could not review",
            "x",
        );
        assert_eq!(
            out,
            "::error file=db/a%2Cb.sql,line=3,col=5,endColumn=9,title=set-not-null (locking)::line one%0Aline two\n\
             ::warning file=db/a.sql,line=3,col=5,endLine=4,title=t::m\n\
             ::error title=migagent%3A could not review::x\n"
        );
    }
}
