//! The Markdown report: a pull-request comment (or a job summary). A hidden marker line first, so a CI
//! job can find and update its previous comment; a summary table; the findings of each migration; what
//! each statement did on the shadow database, folded.
//!
//! Paths, messages and SQL come from the pull request: they are data. Inline text is escaped so it
//! cannot break the table, open a link, an image, HTML or math, or mention a person or an issue; SQL
//! goes into code blocks whose fence it cannot close. GitHub refuses a comment over 65,536
//! characters: the report stays under it, cutting traces first and then findings, and says what it cut.

use std::fmt::Write;

use super::text::{self, Style};
use super::{count, llm_totals, shown_path, shown_text, summary_line, Context};
use crate::advice::draft::{Draft, Status};
use crate::review::{Finding, MigrationReview, Notice, Review};
use crate::rules::Severity;
use crate::stats::thousands;

/// The first line of every Markdown report: a CI job finds its previous comment by it.
pub const MARKER: &str = "<!-- migagent-report -->";
/// The longest comment GitHub accepts, in characters.
pub const MAX_CHARS: usize = 65_536;
/// Room kept for the note on what was cut (it is far shorter).
const NOTE_ROOM: usize = 1_024;

/// Renders the review as one Markdown document of at most [`MAX_CHARS`] characters.
pub fn render(review: &Review, context: &Context) -> String {
    let mut budget = Budget {
        left: MAX_CHARS - NOTE_ROOM,
    };
    let mut cut = Cut::default();
    let head = head(review);
    budget.take(&head);
    let rows = budget.take_each(table_rows(review), &mut cut.rows);
    let problems = budget.take_each(problem_lines(review), &mut cut.problems);
    let mut sections: Vec<Section> = review
        .migrations
        .iter()
        .map(|migration| Section {
            migration,
            heading: heading(migration),
            items: Vec::new(),
            folded: Vec::new(),
        })
        .collect();
    for section in &mut sections {
        let items = item_lines(section.migration, context);
        if cut.findings == 0 && !items.is_empty() && budget.take(&section.heading) {
            section.items = budget.take_each(items, &mut cut.findings);
        } else {
            cut.findings += items.len();
        }
    }
    for section in &mut sections {
        let Some(advice) = advice_block(section.migration) else {
            continue;
        };
        let heading = if section.items.is_empty() {
            section.heading.chars().count()
        } else {
            0
        };
        if budget.take_chars(heading + advice.chars().count()) {
            section.folded.push(advice);
        } else {
            cut.advice += 1;
        }
    }
    for section in &mut sections {
        let Some(trace) = trace_block(section.migration) else {
            continue;
        };
        let heading = if section.items.is_empty() {
            section.heading.chars().count()
        } else {
            0
        };
        if budget.take_chars(heading + trace.chars().count()) {
            section.folded.push(trace);
        } else {
            cut.traces += 1;
        }
    }
    assemble(head, rows, problems, &sections, &cut, context)
}

/// What one migration shows: its finding lines and its folded blocks, each already within the budget.
struct Section<'a> {
    migration: &'a MigrationReview,
    heading: String,
    items: Vec<String>,
    folded: Vec<String>,
}

/// Characters left for the report.
struct Budget {
    left: usize,
}

impl Budget {
    /// Takes room for `text` when there is enough; says whether there was.
    fn take(&mut self, text: &str) -> bool {
        self.take_chars(text.chars().count())
    }

    fn take_chars(&mut self, chars: usize) -> bool {
        let fits = chars <= self.left;
        if fits {
            self.left -= chars;
        }
        fits
    }

    /// The leading lines that fit; the number of the others is added to `cut`. Once one line does not
    /// fit, none after it is taken, so what is shown is always a prefix.
    fn take_each(&mut self, lines: Vec<String>, cut: &mut usize) -> Vec<String> {
        let mut taken = Vec::new();
        for line in lines {
            if *cut == 0 && self.take(&line) {
                taken.push(line);
            } else {
                *cut += 1;
            }
        }
        taken
    }
}

/// What did not fit.
#[derive(Default)]
struct Cut {
    rows: usize,
    problems: usize,
    findings: usize,
    advice: usize,
    traces: usize,
}

impl Cut {
    fn note(&self) -> Option<String> {
        let mut parts = Vec::new();
        if self.findings > 0 {
            parts.push(format!("{} and notices", count(self.findings, "finding")));
        }
        if self.advice > 0 {
            parts.push(format!("the advice on {}", count(self.advice, "migration")));
        }
        if self.traces > 0 {
            parts.push(format!("the traces of {}", count(self.traces, "migration")));
        }
        if self.problems > 0 {
            parts.push(format!(
                "{} that could not be reviewed",
                count(self.problems, "input")
            ));
        }
        if self.rows > 0 {
            parts.push(format!("{} of the table", count(self.rows, "row")));
        }
        if parts.is_empty() {
            return None;
        }
        Some(format!(
            "\n> [!NOTE]\n> Cut to stay under GitHub's limit of {} characters for a comment: {}. \
             The job's log and the SARIF upload hold the whole report (`migagent review --format text` \
             or `--format sarif`).\n",
            thousands(MAX_CHARS as i64),
            parts.join(", ")
        ))
    }
}

fn assemble(
    head: String,
    rows: Vec<String>,
    problems: Vec<String>,
    sections: &[Section],
    cut: &Cut,
    context: &Context,
) -> String {
    let mut out = head;
    if !rows.is_empty() {
        out.push_str("\n| migration | tool | statements | errors | warnings | infos |\n");
        out.push_str("|:--|:--|--:|--:|--:|--:|\n");
        rows.iter().for_each(|row| out.push_str(row));
    }
    if !problems.is_empty() {
        out.push_str("\n### Inputs not reviewed\n\n");
        problems.iter().for_each(|line| out.push_str(line));
    }
    for section in sections {
        if section.items.is_empty() && section.folded.is_empty() {
            continue;
        }
        out.push_str(&section.heading);
        section.items.iter().for_each(|item| out.push_str(item));
        section.folded.iter().for_each(|block| out.push_str(block));
    }
    if let Some(note) = cut.note() {
        out.push_str(&note);
    }
    if context.rules_url.is_none() && sections.iter().any(|s| !s.items.is_empty()) {
        out.push_str("\n<sub>`migagent rules RULE` prints a rule's documentation.</sub>\n");
    }
    out
}

fn heading(migration: &MigrationReview) -> String {
    format!("\n### {}\n\n", inline(&shown_path(&migration.path)))
}

/// The marker, a title that says the outcome, and the summary line.
fn head(review: &Review) -> String {
    let counts = review.counts();
    let title = if !review.problems.is_empty() {
        format!(
            "🛑 {} could not be reviewed",
            count(review.problems.len(), "input")
        )
    } else if counts.errors + counts.warnings + counts.infos == 0 {
        "✅ no findings".to_owned()
    } else {
        [
            (counts.errors, Severity::Error),
            (counts.warnings, Severity::Warning),
            (counts.infos, Severity::Info),
        ]
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|&(n, severity)| format!("{} {}", icon(severity), count(n, severity.name())))
        .collect::<Vec<_>>()
        .join(" · ")
    };
    let mut head = format!("{MARKER}\n## migagent: {title}\n\n{}", summary_line(review));
    if let Some(totals) = llm_totals(review) {
        let _ = write!(head, " · LLM: {}", inline(&totals.to_string()));
    }
    if let Some(shadow) = super::shadow_line(review) {
        let _ = write!(head, " · shadow: {}", inline(&shadow));
    }
    if let Some(unasked) = &review.advice_unasked {
        let _ = write!(head, " · advice: {}", inline(unasked));
    }
    head.push('\n');
    head
}

/// One row per migration with findings or notices, then one for all the others.
fn table_rows(review: &Review) -> Vec<String> {
    let (with, without): (Vec<_>, Vec<_>) = review
        .migrations
        .iter()
        .partition(|m| !m.findings.is_empty() || !m.notices.is_empty());
    let mut rows: Vec<String> = with
        .iter()
        .map(|migration| {
            let counts = |severity| {
                migration
                    .findings
                    .iter()
                    .filter(|f| f.severity == severity)
                    .count()
            };
            format!(
                "| {} | {} | {} | {} | {} | {} |\n",
                inline(&shown_path(&migration.path)),
                migration.tool,
                migration.statements.len(),
                counts(Severity::Error),
                counts(Severity::Warning),
                counts(Severity::Info),
            )
        })
        .collect();
    if !without.is_empty() {
        let statements: usize = without.iter().map(|m| m.statements.len()).sum();
        rows.push(format!(
            "| {} without findings | | {statements} | 0 | 0 | 0 |\n",
            count(without.len(), "migration")
        ));
    }
    rows
}

fn problem_lines(review: &Review) -> Vec<String> {
    let problems = review.problems.iter().map(|problem| {
        let position = problem
            .position
            .map(|p| format!(", line {}, column {}", p.line, p.column))
            .unwrap_or_default();
        format!(
            "- **{}**{position}: {}\n",
            inline(&shown_path(&problem.path)),
            inline(&problem.message)
        )
    });
    let passed_over = review.notices.iter().map(|notice| {
        format!(
            "- note: **{}**: {}\n",
            inline(&shown_path(&notice.path)),
            inline(&notice.message)
        )
    });
    problems.chain(passed_over).collect()
}

/// One line per notice and finding, in the order of the file.
fn item_lines(migration: &MigrationReview, context: &Context) -> Vec<String> {
    let notices = migration.notices.iter().map(notice_line);
    let findings = migration
        .findings
        .iter()
        .map(|finding| finding_line(finding, context));
    notices.chain(findings).collect()
}

fn notice_line(notice: &Notice) -> String {
    format!(
        "- {} **notice** · line {}, column {}<br>{}\n",
        icon(Severity::Warning),
        notice.position.line,
        notice.position.column,
        prose(&notice.message)
    )
}

/// `- 🛑 **error** [`rule`](link) · line 2, column 20<br>message<br>**Help:** …`, on one source line
/// so nothing in it can start a block of its own.
fn finding_line(finding: &Finding, context: &Context) -> String {
    let rule = match context.rules_url {
        Some(url) => format!(
            "[`{id}`]({}/{id}.md)",
            url.trim_end_matches('/'),
            id = finding.rule.id
        ),
        None => format!("`{}`", finding.rule.id),
    };
    let mut line = format!(
        "- {} **{}** {rule} · line {}, column {}<br>{}",
        icon(finding.severity),
        finding.severity,
        finding.position.line,
        finding.position.column,
        prose(&finding.message)
    );
    if !finding.help.is_empty() {
        let _ = write!(line, "<br>**Help:** {}", prose(&finding.help));
    }
    match finding.confirmed_by_shadow {
        Some(true) => line.push_str("<br>*Shadow: confirmed by the trace.*"),
        Some(false) => line.push_str(
            "<br>*Shadow: not seen in the trace (the shadow's tables are empty; the finding stands).*",
        ),
        None => {}
    }
    line.push('\n');
    line
}

fn icon(severity: Severity) -> &'static str {
    match severity {
        Severity::Error => "🛑",
        Severity::Warning => "⚠️",
        Severity::Info => "ℹ️",
    }
}

/// The trace as the text report prints it, folded.
fn trace_block(migration: &MigrationReview) -> Option<String> {
    let table = text::trace_table(migration, Style { color: false });
    (!table.is_empty()).then(|| folded("Trace on the shadow database", &code_block(&table, "text")))
}

/// The advice on a migration, folded: the summary, each explanation with its finding, the chosen
/// drafts as SQL.
fn advice_block(migration: &MigrationReview) -> Option<String> {
    let advice = migration.advice.as_ref()?;
    let mut body = format!("{}\n", prose(&advice.summary));
    if !advice.explanations.is_empty() {
        body.push('\n');
    }
    for explanation in &advice.explanations {
        let Some(finding) = migration.findings.get(explanation.finding) else {
            continue;
        };
        let _ = writeln!(
            body,
            "- `{}` · line {}: {}<br>*Impact:* {}",
            finding.rule.id,
            finding.position.line,
            inline(&explanation.explanation),
            inline(&explanation.impact)
        );
    }
    for draft in advice.rewrite.iter().chain(&advice.down) {
        body.push('\n');
        body.push_str(&draft_block(draft));
    }
    let notes = text::advice_notes(advice);
    if !notes.is_empty() {
        body.push('\n');
    }
    for note in notes {
        let _ = writeln!(body, "- {}", inline(&note));
    }
    Some(folded(
        &format!(
            "Advice (from {}, risk {})",
            text::source_name(advice.source),
            advice.risk.name()
        ),
        &body,
    ))
}

/// Summary of the block a rejected draft's SQL is folded in.
pub const REJECTED_SQL: &str = "The rejected draft's SQL (not safe to use)";

/// One chosen draft: an accepted one as SQL ready to copy; a rejected one as its reasons, with its
/// SQL folded under them; one not validated with why, then its SQL.
fn draft_block(draft: &Draft) -> String {
    let (heading, about) = text::draft_heading(draft);
    let icon = match draft.validation.status {
        Status::Accepted => "✅",
        Status::Rejected => "❌",
        Status::Skipped => "⚠️",
    };
    let mut block = format!("{icon} **{heading}**: {}\n", inline(about));
    let lines = (draft.validation.reasons.iter().map(|r| ("Because", r)))
        .chain(draft.validation.notes.iter().map(|n| ("Note", n)));
    let mut listed = false;
    for (label, text) in lines {
        if !listed {
            block.push('\n');
            listed = true;
        }
        let _ = writeln!(block, "- *{label}:* {}", prose(text));
    }
    let sql = text::draft_sql(draft);
    let sql = if sql.lines().any(super::starts_workflow_command) {
        // Printed in a CI log, such a line would be a command: the block gets a gutter, and the
        // exact SQL is in the JSON report.
        let gutter: String = sql.lines().map(|line| format!("| {line}\n")).collect();
        format!(
            "*A line of this SQL starts with `::`, which GitHub's runner would read as a workflow \
             command: each line is shown after `| ` (the JSON report holds it exactly).*\n\n{}",
            code_block(&gutter, "text")
        )
    } else {
        code_block(&sql, "sql")
    };
    match draft.validation.status {
        Status::Rejected => block.push_str(&folded(REJECTED_SQL, &sql)),
        Status::Accepted | Status::Skipped => {
            block.push('\n');
            block.push_str(&sql);
        }
    }
    block
}

/// A `<details>` block; `summary` is migagent's own text, `body` Markdown.
fn folded(summary: &str, body: &str) -> String {
    format!("\n<details><summary>{summary}</summary>\n\n{body}\n</details>\n")
}

/// A fenced code block whose fence is longer than any run of backticks inside, so the text cannot
/// close it.
fn code_block(text: &str, language: &str) -> String {
    let text = shown_text(text);
    let longest_run = text.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest_run.max(2) + 1);
    let newline = if text.ends_with('\n') { "" } else { "\n" };
    format!("{fence}{language}\n{text}{newline}{fence}\n")
}

/// Text that marks code with backticks, as migagent's messages and help do: each piece between a pair
/// becomes a code span (where nothing is markup), the rest is escaped by [`inline`]. With an odd
/// number of backticks (a name holding one) every backtick is escaped instead.
fn prose(text: &str) -> String {
    let pieces: Vec<&str> = text.split('`').collect();
    if pieces.len().is_multiple_of(2) {
        return inline(text);
    }
    pieces
        .iter()
        .enumerate()
        .map(|(index, piece)| match index % 2 {
            0 => inline(piece),
            _ if piece.is_empty() => String::new(),
            // One source line: a line break inside a span could start a block.
            _ => format!("`{}`", shown_text(piece).replace(['\n', '\t'], " ")),
        })
        .collect()
}

/// Text for inside a paragraph or a table cell: line breaks become `<br>`; characters that would make
/// Markdown, HTML or math of it are escaped; `@name` and `#123` get a zero-width space after the sign
/// so they neither mention anyone nor link an issue.
fn inline(text: &str) -> String {
    let text = shown_text(text);
    let mut out = String::with_capacity(text.len() + 16);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\n' => out.push_str("<br>"),
            '\t' => out.push(' '),
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\\' | '`' | '*' | '_' | '[' | ']' | '(' | ')' | '!' | '~' | '|' | '$' => {
                out.push('\\');
                out.push(c);
            }
            '@' | '#' if chars.peek().is_some_and(|next| next.is_alphanumeric()) => {
                out.push(c);
                out.push_str("&#8203;");
            }
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_text_cannot_make_markup() {
        assert_eq!(
            inline("a|b `c` <script>x</script> [l](u) ![i](u) *e* _u_ ~s~ $m$ \\"),
            "a\\|b \\`c\\` &lt;script&gt;x&lt;/script&gt; \\[l\\]\\(u\\) \\!\\[i\\]\\(u\\) \\*e\\* \\_u\\_ \\~s\\~ \\$m\\$ \\\\"
        );
        assert_eq!(inline("line\nnext\ttab"), "line<br>next tab");
        assert_eq!(
            inline("@octocat #12 a@ #"),
            "@&#8203;octocat #&#8203;12 a@ #"
        );
        assert_eq!(inline("esc\u{1b}"), "esc\\\\x1b");
    }

    #[test]
    fn backtick_pairs_become_code_spans() {
        assert_eq!(
            prose("add `SET lock_timeout = '5s';` <b>"),
            "add `SET lock_timeout = '5s';` &lt;b&gt;"
        );
        assert_eq!(prose("`a|b\n# c` and ``"), "`a|b # c` and ");
        assert_eq!(prose("odd ` tick_"), "odd \\` tick\\_");
    }

    #[test]
    fn code_blocks_outlast_the_backticks_inside() {
        assert_eq!(code_block("a", "text"), "```text\na\n```\n");
        assert_eq!(
            code_block("x ````` y\n", "sql"),
            "``````sql\nx ````` y\n``````\n"
        );
    }

    #[test]
    fn budgets_take_a_prefix() {
        let mut budget = Budget { left: 10 };
        let mut cut = 0;
        let taken = budget.take_each(vec!["12345".into(), "1234567".into(), "1".into()], &mut cut);
        assert_eq!(taken, ["12345"]);
        assert_eq!(cut, 2);
        assert_eq!(budget.left, 5);
    }
}
