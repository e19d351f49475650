//! The human report, in the style of rustc: severity and rule, `path:line:column`, the SQL line with
//! the spot underlined, then the explanation and what to do instead.

use std::fmt::Write;

use super::{count, llm_totals, summary_line};
use crate::advice::draft::{Body, Draft, Source, Status};
use crate::advice::Advice;
use crate::escape;
use crate::review::{Finding, InputProblem, MigrationReview, Review};
use crate::rules::Severity;
use crate::shadow::trace::StatementTrace;
use crate::stats::{describe_size, thousands};

/// ANSI styling, or none.
#[derive(Debug, Clone, Copy)]
pub struct Style {
    pub color: bool,
}

impl Style {
    fn paint(self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }

    fn severity(self, severity: Severity) -> String {
        let code = match severity {
            Severity::Error => "1;31",
            Severity::Warning => "1;33",
            Severity::Info => "1;36",
        };
        self.paint(code, severity.name())
    }

    fn bold(self, text: &str) -> String {
        self.paint("1", text)
    }

    fn gutter(self, text: &str) -> String {
        self.paint("1;34", text)
    }
}

/// Renders the whole review.
pub fn render(review: &Review, style: Style) -> String {
    let mut out = String::new();
    for problem in &review.problems {
        render_problem(&mut out, problem, style);
    }
    for notice in &review.notices {
        let _ = writeln!(
            out,
            "{}: {}: {}\n",
            style.bold("note"),
            escape::path(&notice.path),
            escape::text(&notice.message)
        );
    }
    for migration in &review.migrations {
        render_migration(&mut out, migration, style);
    }
    if let Some(shadow) = super::shadow_line(review) {
        let _ = writeln!(out, "{}: {shadow}", style.bold("shadow"));
    }
    if let Some(unasked) = &review.advice_unasked {
        let _ = writeln!(out, "{}: {unasked}", style.bold("advice"));
    }
    let _ = writeln!(out, "{}: {}", style.bold("summary"), summary_line(review));
    if let Some(totals) = llm_totals(review) {
        let _ = writeln!(out, "{}: {totals}", style.bold("llm"));
    }
    if !review.problems.is_empty() {
        let _ = writeln!(
            out,
            "{}: {} could not be reviewed (see above)",
            style.severity(Severity::Error),
            count(review.problems.len(), "input"),
        );
    }
    out
}

/// Renders one migration's findings and notices.
pub fn render_migration(out: &mut String, migration: &MigrationReview, style: Style) {
    for notice in &migration.notices {
        let _ = writeln!(
            out,
            "{}: {}\n  {} {}:{}:{}\n",
            style.severity(Severity::Warning),
            style.bold(&escape::text(&notice.message)),
            style.gutter("-->"),
            escape::path(&migration.path),
            notice.position.line,
            notice.position.column
        );
    }
    for (index, finding) in migration.findings.iter().enumerate() {
        render_finding(out, migration, finding, style);
        render_explanations(out, migration, index, style);
        out.push('\n');
    }
    render_advice(out, migration, style);
    render_traces(out, migration, style);
}

/// What each statement did on the shadow database, under a heading naming the migration.
fn render_traces(out: &mut String, migration: &MigrationReview, style: Style) {
    let table = trace_table(migration, style);
    if table.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "{}: {} on the shadow database",
        style.bold("trace"),
        escape::path(&migration.path)
    );
    out.push_str(&table);
    out.push('\n');
}

/// Each traced statement's line number and first line of SQL, with what it did on the shadow database
/// under it; empty when no statement was traced.
pub(super) fn trace_table(migration: &MigrationReview, style: Style) -> String {
    let mut out = String::new();
    let traced: Vec<_> = migration
        .statements
        .iter()
        .filter_map(|s| Some((s, s.trace.as_ref()?)))
        .collect();
    if traced.is_empty() {
        return out;
    }
    let width = traced
        .iter()
        .map(|(s, _)| s.position.line.to_string().len())
        .max()
        .unwrap_or(1);
    let bar = style.gutter("|");
    for (statement, trace) in traced {
        let sql = migration.text[statement.range.clone()]
            .lines()
            .next()
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "{} {bar} {}",
            style.gutter(&format!("{:>width$}", statement.position.line)),
            escape::text(&shorten(sql, 100))
        );
        let mut lines = trace_lines(trace);
        if !statement.table_sizes.is_empty() {
            let sizes: Vec<String> = statement
                .table_sizes
                .iter()
                .map(|(table, size)| format!("{table} {}", describe_size(*size)))
                .collect();
            lines.push(format!(
                "per --stats: {} (the plan above ran on the shadow's empty tables)",
                sizes.join(", ")
            ));
        }
        for line in lines {
            let line = escape::text(&line);
            let _ = writeln!(out, "{:width$} {bar}   {line}", "");
        }
    }
    out
}

/// The trace of one statement as short lines: locks, rewrites, scans, waits, plan, error.
fn trace_lines(trace: &StatementTrace) -> Vec<String> {
    if let Some(reason) = &trace.not_applied {
        return vec![format!("not applied: {reason}")];
    }
    let mut lines = Vec::new();
    if let Some(error) = &trace.error {
        lines.push(format!(
            "failed: ERROR {}: {}",
            error.sqlstate, error.message
        ));
    }
    if !trace.locks.is_empty() {
        let locks: Vec<String> = trace
            .strongest_locks()
            .into_iter()
            .map(|(lock, mode)| format!("{} on {}", mode.pg_name(), lock.relation))
            .collect();
        lines.push(format!("locks: {}", locks.join(", ")));
    }
    if !trace.rewrites.is_empty() {
        lines.push(format!("rewrote: {}", trace.rewrites.join(", ")));
    }
    if !trace.rebuilt_indexes.is_empty() {
        lines.push(format!(
            "rebuilt indexes: {}",
            trace.rebuilt_indexes.join(", ")
        ));
    }
    if !trace.scans.is_empty() {
        let scans: Vec<&str> = trace.scans.iter().map(|s| s.relation.as_str()).collect();
        lines.push(format!("scanned: {}", scans.join(", ")));
    }
    lines.extend(trace.changes.iter().map(ToString::to_string));
    if !trace.waits.is_empty() {
        lines.push(format!("waits for: {}", trace.waits.join(", ")));
    }
    if let Some(plan) = &trace.plan {
        lines.push("plan:".to_owned());
        lines.extend(plan.iter().map(|line| format!("  {line}")));
    }
    if lines.is_empty() {
        lines.push("no locks on existing relations, no rewrite, no scan".to_owned());
    }
    lines
}

/// The first `max` characters of `text`, with `…` when cut.
fn shorten(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

fn render_finding(out: &mut String, migration: &MigrationReview, finding: &Finding, style: Style) {
    let line = finding.position.line;
    let width = line.to_string().len();
    let pad = " ".repeat(width);
    let _ = writeln!(
        out,
        "{}[{}]: {}",
        style.severity(finding.severity),
        finding.rule.id,
        style.bold(&escape::text(&finding.message))
    );
    let _ = writeln!(
        out,
        "{pad}{} {}:{}:{}",
        style.gutter("-->"),
        escape::path(&migration.path),
        line,
        finding.position.column
    );
    let line_range = migration.lines.line_range(&migration.text, line);
    let source_line = &migration.text[line_range.clone()];
    let statement_end = migration.statements[finding.statement].range.end;
    let underline_end = statement_end.min(line_range.end).max(finding.offset + 1);
    let start = finding.offset.clamp(line_range.start, line_range.end);
    let underlined = &migration.text[start..underline_end.min(line_range.end)];
    let underline_chars = source_text(underlined).chars().count().max(1);
    let indent = " ".repeat(
        source_text(&migration.text[line_range.start..start])
            .chars()
            .count(),
    );
    let bar = style.gutter("|");
    let _ = writeln!(out, "{pad} {bar}");
    let _ = writeln!(
        out,
        "{} {bar} {}",
        style.gutter(&line.to_string()),
        source_text(source_line)
    );
    let _ = writeln!(
        out,
        "{pad} {bar} {indent}{}",
        style.paint(
            severity_code(finding.severity),
            &"^".repeat(underline_chars)
        )
    );
    if !finding.help.is_empty() {
        let _ = writeln!(out, "{pad} {bar}");
        let help = escape::lines(&finding.help);
        let mut help_lines = help.lines();
        if let Some(first) = help_lines.next() {
            let _ = writeln!(
                out,
                "{pad} {} {}: {first}",
                style.gutter("="),
                style.bold("help")
            );
        }
        // Behind the gutter: a line of an identifier (`"a\n::error::x"`) must not start a log line.
        for rest in help_lines {
            let _ = writeln!(out, "{pad} {bar}       {rest}");
        }
    }
    if let Some(confirmed) = finding.confirmed_by_shadow {
        let verdict = if confirmed {
            "confirmed by the trace"
        } else {
            "not seen in the trace (the shadow's tables are empty; the finding stands)"
        };
        let _ = writeln!(
            out,
            "{pad} {} {}: {verdict}",
            style.gutter("="),
            style.bold("shadow")
        );
    }
}

/// The advice's explanations of one finding, under it.
fn render_explanations(out: &mut String, migration: &MigrationReview, index: usize, style: Style) {
    let Some(advice) = &migration.advice else {
        return;
    };
    let pad = " ".repeat(migration.findings[index].position.line.to_string().len());
    for explanation in advice.explanations.iter().filter(|e| e.finding == index) {
        for (label, text) in [
            ("advice", &explanation.explanation),
            ("impact", &explanation.impact),
        ] {
            let text = escape::lines(text);
            let mut lines = text.lines().filter(|l| !l.trim().is_empty());
            if let Some(first) = lines.next() {
                let _ = writeln!(
                    out,
                    "{pad} {} {}: {first}",
                    style.gutter("="),
                    style.bold(label)
                );
            }
            for rest in lines {
                let _ = writeln!(out, "{pad} {}         {rest}", style.gutter("|"));
            }
        }
    }
}

/// The advice block of a migration: summary, risk, the chosen drafts as SQL with their validation,
/// notes, and what the LLM request cost.
fn render_advice(out: &mut String, migration: &MigrationReview, style: Style) {
    let Some(advice) = &migration.advice else {
        return;
    };
    let _ = writeln!(
        out,
        "{}: {} (from {}, risk {})",
        style.bold("advice"),
        escape::path(&migration.path),
        source_name(advice.source),
        advice.risk.name()
    );
    // Quoted: the model's lines must not start a log line (see `draft_text`).
    for line in escape::lines(&advice.summary).lines() {
        let _ = writeln!(out, "  > {line}");
    }
    out.push_str(&drafts_text(advice, "  "));
    out.push('\n');
}

/// The advice's chosen drafts, notes and LLM usage as plain lines, each starting with `indent`;
/// every text from a draft or a model escaped.
fn drafts_text(advice: &Advice, indent: &str) -> String {
    let mut out = String::new();
    for draft in advice.rewrite.iter().chain(&advice.down) {
        draft_text(&mut out, draft, indent);
    }
    for line in advice_notes(advice) {
        let _ = writeln!(out, "{indent}{}", escape::text(&line));
    }
    out
}

/// What the advice left out and what its LLM request cost, one line each, not yet escaped.
pub(super) fn advice_notes(advice: &Advice) -> Vec<String> {
    let mut lines: Vec<String> = advice.notes.iter().map(|n| format!("note: {n}")).collect();
    if let Some(llm) = &advice.llm {
        let cached = if llm.cached { ", from the cache" } else { "" };
        lines.push(format!(
            "llm: {}, {} prompt + {} completion tokens{cached}",
            llm.model,
            thousands(llm.prompt_tokens as i64),
            thousands(llm.completion_tokens as i64),
        ));
        if let Some(error) = &llm.error {
            lines.push(format!("llm reply not used: {error}"));
        }
    }
    lines
}

/// A draft's heading, "rewrite (the LLM, 2 attempts, REJECTED by the validator, not safe to use)",
/// and what the draft says of itself (a rewrite's rationale, a down's notes), not yet escaped.
pub(super) fn draft_heading(draft: &Draft) -> (String, &str) {
    let verdict = match draft.validation.status {
        Status::Accepted => "validated on the shadow, ready to use",
        Status::Rejected => "REJECTED by the validator, not safe to use",
        Status::Skipped => "not validated",
    };
    let attempts = match draft.attempts {
        0 | 1 => String::new(),
        n => format!(", {n} attempts"),
    };
    let (kind, about, loss) = match &draft.body {
        Body::Rewrite(rewrite) => ("rewrite", &rewrite.rationale, ""),
        Body::Down(down) => (
            "down",
            &down.notes,
            if down.data_loss {
                "; it cannot bring back the data the up migration destroys"
            } else {
                ""
            },
        ),
    };
    let source = source_name(draft.source);
    (
        format!("{kind} ({source}{attempts}, {verdict}{loss})"),
        about,
    )
}

/// One chosen draft, by the validator's verdict: an accepted one as SQL ready to use; a rejected one
/// with its reasons first and its SQL after them, marked not safe to use; one not validated with
/// why. Every line of SQL (and of model text) sits behind a `|` gutter: GitHub's runner reads a
/// log line that starts with `::`, after any leading spaces, as a workflow command.
fn draft_text(out: &mut String, draft: &Draft, indent: &str) {
    let (heading, about) = draft_heading(draft);
    let _ = writeln!(out, "{indent}{heading}: {}", escape::text(about));
    for reason in &draft.validation.reasons {
        let _ = writeln!(out, "{indent}  because: {}", escape::text(reason));
    }
    for note in &draft.validation.notes {
        let _ = writeln!(out, "{indent}  note: {}", escape::text(note));
    }
    match draft.validation.status {
        Status::Accepted => {}
        Status::Rejected => {
            let _ = writeln!(out, "{indent}  rejected draft (not safe to use):");
        }
        Status::Skipped => {
            let _ = writeln!(out, "{indent}  draft (not validated: check it before use):");
        }
    }
    let gutter = format!("{indent}  | ");
    for line in draft_sql(draft).lines() {
        let _ = writeln!(out, "{gutter}{line}");
    }
}

/// A draft as one SQL text: a rewrite's steps each under a comment saying whether it may run in a
/// transaction, a down as it is; control characters escaped, line breaks kept.
pub(super) fn draft_sql(draft: &Draft) -> String {
    let mut sql = String::new();
    match &draft.body {
        Body::Rewrite(rewrite) => {
            for (number, step) in rewrite.steps.iter().enumerate() {
                let how = if step.transactional {
                    "may run in a transaction"
                } else {
                    "outside any transaction"
                };
                let note = if step.note.is_empty() {
                    String::new()
                } else {
                    format!(": {}", escape::text(&step.note))
                };
                let _ = writeln!(sql, "-- step {}, {how}{note}", number + 1);
                let _ = writeln!(sql, "{}", escape::lines(step.sql.trim_end()));
            }
        }
        Body::Down(down) => {
            let _ = writeln!(sql, "{}", escape::lines(down.sql.trim_end()));
        }
    }
    sql
}

pub(super) fn source_name(source: Source) -> &'static str {
    match source {
        Source::Llm => "the LLM",
        Source::Builtin => "built-in fixers",
    }
}

/// A piece of a SQL line as printed under a finding: tabs as one space (so the underline lines up),
/// control characters escaped.
fn source_text(sql: &str) -> String {
    escape::text(&sql.replace('\t', " ")).into_owned()
}

fn severity_code(severity: Severity) -> &'static str {
    match severity {
        Severity::Error => "1;31",
        Severity::Warning => "1;33",
        Severity::Info => "1;36",
    }
}

fn render_problem(out: &mut String, problem: &InputProblem, style: Style) {
    let path = escape::path(&problem.path);
    let location = match problem.position {
        Some(p) => format!("{path}:{}:{}", p.line, p.column),
        None => path,
    };
    let _ = writeln!(
        out,
        "{}: {location}: {}\n",
        style.severity(Severity::Error),
        escape::text(&problem.message)
    );
}
