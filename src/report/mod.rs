//! Renderers of one [`Review`] value: text for people, JSON for tools, SARIF for code-scanning
//! services, GitHub workflow commands for annotations, Markdown for a pull-request comment.

pub mod github;
pub mod json;
pub mod markdown;
pub mod sarif;
pub mod text;

use std::borrow::Cow;
use std::io::{self, Write};
use std::path::Path;

use crate::escape;
use crate::review::{Finding, InputProblem, MigrationReview, Review};
use crate::sql::Position;
use crate::stats::thousands;

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
        Format::Github => github::render(review, context),
        Format::Markdown => markdown::render(review, context),
        Format::Json | Format::Sarif => {
            let mut out = Vec::new();
            // Writing to memory fails only on serializing, which these types never fail at.
            let _ = write(review, format, context, &mut out);
            String::from_utf8(out).unwrap_or_default()
        }
    }
}

/// Writes the review in one format to `out`. JSON and SARIF are serialized straight into it: the
/// report of a long file holds every statement's SQL again (about 100 MB for a 30 MB file), which is
/// never built whole in memory.
pub fn write(
    review: &Review,
    format: Format,
    context: &Context,
    out: &mut dyn Write,
) -> io::Result<()> {
    match format {
        Format::Json => json::write(review, out),
        Format::Sarif => sarif::write(review, context, out),
        Format::Text | Format::Github | Format::Markdown => {
            out.write_all(render(review, format, context).as_bytes())
        }
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

/// "applied on PostgreSQL 15.8 (…)", with why the trace read no statement's schema changes when it
/// did not: what a report says of the shadow, once; `None` when nothing was traced.
pub fn shadow_line(review: &Review) -> Option<String> {
    let shadow = review.shadow.as_deref()?;
    Some(match &review.schema_changes_unread {
        Some(unread) => format!("applied on {shadow}; {unread}"),
        None => format!("applied on {shadow}"),
    })
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

/// What the LLM requests of a review cost, over the migrations that asked for advice.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct LlmTotals {
    /// Migrations whose advice asked the LLM.
    pub requests: usize,
    /// Of those, answered from the cache.
    pub cached: usize,
    /// Of those, whose reply was not used.
    pub failed: usize,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
}

impl std::fmt::Display for LlmTotals {
    /// "2 requests (1 from the cache, 1 reply not used): 1,234 prompt + 210 completion tokens"
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut details = Vec::new();
        if self.cached > 0 {
            details.push(format!("{} from the cache", self.cached));
        }
        if self.failed > 0 {
            details.push(match self.failed {
                1 => "1 reply not used".to_owned(),
                n => format!("{n} replies not used"),
            });
        }
        let details = if details.is_empty() {
            String::new()
        } else {
            format!(" ({})", details.join(", "))
        };
        write!(
            f,
            "{}{details}: {} prompt + {} completion tokens",
            count(self.requests, "request"),
            thousands(self.prompt_tokens as i64),
            thousands(self.completion_tokens as i64)
        )
    }
}

/// The LLM totals of a review; `None` when no migration asked the LLM.
pub fn llm_totals(review: &Review) -> Option<LlmTotals> {
    let mut totals = LlmTotals::default();
    for llm in review
        .migrations
        .iter()
        .filter_map(|m| m.advice.as_ref()?.llm.as_ref())
    {
        totals.requests += 1;
        totals.cached += usize::from(llm.cached);
        totals.failed += usize::from(llm.error.is_some());
        totals.prompt_tokens += llm.prompt_tokens;
        totals.completion_tokens += llm.completion_tokens;
    }
    (totals.requests > 0).then_some(totals)
}

/// Whether GitHub's runner reads a line of a job's log as a workflow command: it skips leading
/// whitespace and looks for `::`. Data must never print such a line.
pub fn starts_workflow_command(line: &str) -> bool {
    line.trim_start().starts_with("::")
}

/// Writes `value` as JSON (`pretty` or compact) and a line break, with `[` after `##` spelled
/// `\u005b`: the same data to any JSON parser, but no legacy `##[command]` for GitHub's runner to run
/// when the report is printed in a log (`#` only occurs inside strings, so nothing else changes).
pub fn write_json(
    value: &impl serde::Serialize,
    pretty: bool,
    out: &mut dyn Write,
) -> io::Result<()> {
    // serde_json writes a few bytes at a time: the filter looks at them in buffered blocks (its
    // writer's own type, not `dyn Write`, so that those small writes are inlined).
    let mut out = json_out(out);
    if pretty {
        serde_json::to_writer_pretty(&mut out, value)?;
    } else {
        serde_json::to_writer(&mut out, value)?;
    }
    out.write_all(b"\n")?;
    out.flush()
}

/// As [`write_json`], for JSON text that `write` writes in large pieces.
pub fn write_json_text(
    out: &mut dyn Write,
    write: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> io::Result<()> {
    let mut out = json_out(out);
    write(&mut out)?;
    out.write_all(b"\n")?;
    out.flush()
}

fn json_out(out: &mut dyn Write) -> io::BufWriter<NoLegacyCommands<'_>> {
    io::BufWriter::with_capacity(1 << 16, NoLegacyCommands { out, hashes: 0 })
}

/// Passes JSON text on with every `[` that follows `##` written `\u005b`, wherever the writes that
/// carry it are cut.
struct NoLegacyCommands<'a> {
    out: &'a mut dyn Write,
    /// How many `#` end what was written so far (counted up to 2).
    hashes: u8,
}

impl Write for NoLegacyCommands<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut start = 0;
        let mut at = 0;
        // `#` is rare in a report: jump from one to the next, and look at the bytes after each.
        loop {
            if self.hashes == 0 {
                match memchr::memchr(b'#', &buf[at..]) {
                    Some(found) => at += found,
                    None => break,
                }
            }
            match buf.get(at) {
                None => break,
                Some(b'#') => self.hashes = (self.hashes + 1).min(2),
                Some(b'[') if self.hashes == 2 => {
                    self.out.write_all(&buf[start..at])?;
                    self.out.write_all(b"\\u005b")?;
                    start = at + 1;
                    self.hashes = 0;
                }
                Some(_) => self.hashes = 0,
            }
            at += 1;
        }
        self.out.write_all(&buf[start..])?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
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

    use crate::advice::draft::{Body, Down, Draft, Rewrite, Source, Step, Validation};
    use crate::advice::{Advice, Explanation, LlmUsage, Risk};

    /// A reviewed migration with one finding and advice whose model text tries to escape its place.
    fn advised_review() -> Review {
        let mut migration = crate::review::review_sql(
            "0001.sql",
            &["CREATE TABLE t (id bigint);"],
            "CREATE INDEX i ON t (id);\n",
            crate::migration::Transaction::None,
            &Default::default(),
        );
        assert!(!migration.findings.is_empty());
        let rewrite = Draft {
            source: Source::Llm,
            attempts: 1,
            body: Body::Rewrite(Rewrite {
                steps: vec![Step {
                    sql: "CREATE INDEX CONCURRENTLY i ON t (id);".into(),
                    transactional: false,
                    note: "builds without blocking writes".into(),
                }],
                rationale: "no write lock".into(),
            }),
            validation: Validation::skipped("drafts are not validated yet"),
        };
        let down = Draft {
            source: Source::Builtin,
            attempts: 1,
            body: Body::Down(Down {
                sql: "DROP INDEX i;".into(),
                data_loss: false,
                notes: "inverse".into(),
            }),
            validation: Validation::skipped("drafts are not validated yet"),
        };
        let mut advice = Advice {
            source: Source::Llm,
            summary: "Blocks writes </details> @octocat".into(),
            risk: Risk::High,
            explanations: vec![Explanation {
                finding: 0,
                explanation: "CREATE INDEX takes a SHARE lock".into(),
                impact: "writes wait\x1b[31m".into(),
            }],
            rewrite: None,
            down: None,
            drafts: vec![rewrite, down],
            llm: Some(LlmUsage {
                model: "m".into(),
                prompt_tokens: 1200,
                completion_tokens: 34,
                cached: false,
                error: None,
            }),
            notes: vec!["explanation of finding 7 dropped: no such finding".into()],
        };
        advice.choose_drafts();
        migration.advice = Some(advice);
        let mut review = Review::default();
        review.migrations.push(migration);
        review
    }

    fn context() -> Context<'static> {
        Context {
            exit_code: 0,
            color: false,
            rules_url: None,
            working_dir: Path::new("/"),
        }
    }

    /// `text` passed through [`NoLegacyCommands`] in writes of `chunk` bytes.
    fn escaped_in_chunks(text: &str, chunk: usize) -> String {
        let mut out = Vec::new();
        let mut writer = NoLegacyCommands {
            out: &mut out,
            hashes: 0,
        };
        for piece in text.as_bytes().chunks(chunk) {
            writer.write_all(piece).unwrap();
        }
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn every_short_run_of_hashes_and_brackets_is_escaped_however_it_is_cut() {
        let alphabet = ['#', '[', 'a'];
        for length in 1..=6u32 {
            for mut number in 0..3usize.pow(length) {
                let text: String = (0..length)
                    .map(|_| {
                        let letter = alphabet[number % 3];
                        number /= 3;
                        letter
                    })
                    .collect();
                for chunk in 1..=3 {
                    assert_eq!(
                        escaped_in_chunks(&text, chunk),
                        text.replace("##[", "##\\u005b"),
                        "{text:?} in writes of {chunk} bytes"
                    );
                }
            }
        }
    }

    #[test]
    fn printed_json_holds_no_legacy_command_and_the_same_data() {
        let value =
            serde_json::json!({"name": "##[add-mask]x ##[error]y ###[z #[w [##[", "n": [1]});
        let mut printed = Vec::new();
        write_json(&value, false, &mut printed).unwrap();
        let printed = String::from_utf8(printed).unwrap();
        assert_eq!(
            printed,
            format!("{}\n", value.to_string().replace("##[", "##\\u005b"))
        );
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&printed).unwrap(),
            value
        );
        // However the writes cut it, the same text comes out.
        let text = value.to_string();
        for chunk in [1, 2, 3, 7] {
            assert_eq!(
                escaped_in_chunks(&text, chunk),
                text.replace("##[", "##\\u005b"),
                "writes of {chunk} bytes"
            );
        }
    }

    #[test]
    fn text_shows_advice_under_findings_and_totals_in_the_summary() {
        let text = render(&advised_review(), Format::Text, &context());
        let explanation = text
            .find("= advice: CREATE INDEX takes a SHARE lock")
            .unwrap();
        assert!(text.find("index-not-concurrent").unwrap() < explanation);
        assert!(text.contains("= impact: writes wait\\x1b[31m"), "{text}");
        assert!(text.contains("advice: 0001.sql (from the LLM, risk high)"));
        assert!(text.contains("rewrite (the LLM, not validated): no write lock"));
        assert!(text.contains("-- step 1, outside any transaction: builds without blocking writes"));
        assert!(text.contains("    | CREATE INDEX CONCURRENTLY i ON t (id);"));
        assert!(text.contains("down (built-in fixers, not validated): inverse"));
        assert!(text.contains("because: drafts are not validated yet"));
        assert!(text.contains("note: explanation of finding 7 dropped"));
        assert!(text.contains("llm: 1 request: 1,200 prompt + 34 completion tokens"));
        assert!(!text.contains('\u{1b}'));
    }

    #[test]
    fn json_carries_the_advice_contract() {
        let json: serde_json::Value =
            serde_json::from_str(&render(&advised_review(), Format::Json, &context())).unwrap();
        let advice = &json["migrations"][0]["advice"];
        assert_eq!(advice["source"], "llm");
        assert_eq!(advice["risk"], "high");
        assert_eq!(advice["explanations"][0]["finding"], 0);
        assert_eq!(advice["rewrite"]["kind"], "rewrite");
        assert_eq!(advice["rewrite"]["steps"][0]["transactional"], false);
        assert_eq!(advice["rewrite"]["validation"]["status"], "skipped");
        assert_eq!(advice["down"]["source"], "builtin");
        assert_eq!(advice["down"]["data_loss"], false);
        assert_eq!(advice["drafts"].as_array().unwrap().len(), 2);
        assert_eq!(advice["llm"]["prompt_tokens"], 1200);
        assert_eq!(advice["llm"]["error"], serde_json::Value::Null);
        assert_eq!(json["summary"]["llm"]["completion_tokens"], 34);
    }

    #[test]
    fn markdown_folds_the_advice_and_keeps_model_text_inert() {
        let markdown = render(&advised_review(), Format::Markdown, &context());
        assert!(markdown.contains("<details><summary>Advice (from the LLM, risk high)</summary>"));
        assert!(markdown.contains("Blocks writes &lt;/details&gt; @&#8203;octocat"));
        assert!(markdown.contains("CREATE INDEX CONCURRENTLY i ON t (id);"));
        assert!(markdown.contains("LLM: 1 request: 1,200 prompt + 34 completion tokens"));
    }

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

    #[test]
    fn unread_schema_changes_are_said_once_where_the_shadow_is() {
        let mut review = advised_review();
        review.shadow = Some("PostgreSQL 15.8 (migagent's ephemeral cluster)".into());
        review.schema_changes_unread = crate::shadow::trace::TraceChanges::Auto.unread(21);
        for format in [Format::Text, Format::Github, Format::Markdown, Format::Json] {
            let report = render(&review, format, &context());
            // Markdown escapes the parentheses and backticks after it.
            let said = report
                .matches("schema changes per statement not read: 21 migrations reviewed")
                .count();
            assert_eq!(said, 1, "{}: {report}", format.name());
        }
        let text = render(&review, Format::Text, &context());
        assert!(
            text.contains("shadow: applied on PostgreSQL 15.8 (migagent's ephemeral cluster); schema changes per statement not read: 21 migrations reviewed (more than 20); `--trace-changes always` reads them, about 2 ms per statement\n"),
            "{text}"
        );
    }
}
