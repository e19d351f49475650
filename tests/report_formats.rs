//! The reports CI systems read — SARIF, GitHub workflow commands, Markdown — from the `migagent` binary,
//! on a project whose paths and identifiers (and so messages) hold what could break them: `%`, line
//! breaks, `::`, backticks, `|`, `<script>` and `@mention`.
//!
//! Snapshots live in tests/snapshots/; `MIGAGENT_UPDATE_SNAPSHOTS=1 cargo test --test report_formats`
//! rewrites them after an intended change (review the diff).

mod common;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

/// A table name that tries everything: a URL-escape, a line break, a workflow command, a code span, a
/// table cell, HTML and a mention.
const TABLE: &str = "we|rd`%0A\n::error::x<script>alert(1)</script>@octocat";
const DIR: &str = "db/100%::odd|dir`";
/// The reviewed migration's file name: a line break and a workflow command of its own.
const FILE: &str = "0002_evil\n::warning::x @octocat <b>|x`y%.sql";
const MISSING: &str = "missing|dir%";

/// A scratch project holding one history migration and one reviewed migration.
struct Project(PathBuf);

impl Project {
    fn new(name: &str) -> Project {
        let root =
            std::env::temp_dir().join(format!("migagent-formats-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join(DIR)).unwrap();
        let project = Project(root);
        let table = quote(TABLE);
        project.write(
            "0001_init.sql",
            &format!("CREATE TABLE {table} (id bigint PRIMARY KEY, \"line\nbreak\" text);\n"),
        );
        project.write_reviewed("");
        project
    }

    fn write(&self, name: &str, contents: &str) {
        std::fs::write(self.0.join(DIR).join(name), contents).unwrap();
    }

    /// The reviewed migration, after `preamble` (lines that move it down without changing it).
    fn write_reviewed(&self, preamble: &str) {
        let table = quote(TABLE);
        self.write(
            FILE,
            &format!(
                "{preamble}-- migagent:ignore no-such-rule -- a reason with %0A and ::\n\
                 CREATE INDEX \"i`|%\" ON {table} (\"line\nbreak\");\n\
                 ALTER TABLE {table} DROP COLUMN \"line\nbreak\";\n"
            ),
        );
    }

    /// `migagent review ARGS` in the project, outside GitHub Actions (see `in_github_actions`).
    fn run(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_migagent"));
        command
            .arg("review")
            .args(args)
            .current_dir(&self.0)
            .env("NO_COLOR", "1")
            .env_remove("GITHUB_ACTIONS")
            .env_remove("GITHUB_STEP_SUMMARY")
            .env_remove("MIGAGENT_RULES_URL");
        command
    }

    /// A static review of the migrations directory and a path that does not exist.
    fn review(&self, format: &str, extra: &[&str]) -> Output {
        self.run(&["--shadow", "off", "--format", format])
            .args(extra)
            .args([DIR, MISSING])
            .output()
            .expect("the binary runs")
    }

    /// The report's text; the review exits 2 (the missing path) whatever it found.
    fn report(&self, format: &str) -> String {
        let output = self.review(format, &[]);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).expect("reports are UTF-8")
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A PostgreSQL quoted identifier.
fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn assert_snapshot(name: &str, actual: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/snapshots")
        .join(name);
    if std::env::var_os("MIGAGENT_UPDATE_SNAPSHOTS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|_| {
        panic!(
            "no snapshot {}: run with MIGAGENT_UPDATE_SNAPSHOTS=1 to write it",
            path.display()
        )
    });
    assert!(
        actual == expected,
        "the report differs from {} (rerun with MIGAGENT_UPDATE_SNAPSHOTS=1 if the change is \
         intended, and review the diff):\n--- expected\n{expected}\n--- actual\n{actual}",
        path.display()
    );
}

fn parse_json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

/// The findings of the JSON report: (rule, line, column).
fn json_findings(project: &Project) -> Vec<(String, u64, u64)> {
    let report = parse_json(&project.report("json"));
    report["migrations"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|m| m["findings"].as_array().unwrap().clone())
        .map(|f| {
            (
                f["rule"].as_str().unwrap().to_owned(),
                f["line"].as_u64().unwrap(),
                f["column"].as_u64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn sarif_is_valid_sarif_2_1_0_and_matches_its_snapshot() {
    let project = Project::new("sarif");
    let text = project.report("sarif");
    // The typed model of a well-kept SARIF crate reads it, and writes back exactly what it read: a
    // property the SARIF schema does not have would be dropped and the two would differ.
    let typed: serde_sarif::sarif::Sarif =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("not SARIF 2.1.0: {e}\n{text}"));
    let log = parse_json(&text);
    assert_eq!(serde_json::to_value(&typed).unwrap(), log);

    let run = &log["runs"][0];
    let rules = run["tool"]["driver"]["rules"].as_array().unwrap();
    assert_eq!(rules.len(), migagent::rules::ALL.len());
    for (descriptor, rule) in rules.iter().zip(migagent::rules::ALL) {
        assert_eq!(descriptor["id"], rule.id);
        assert_eq!(descriptor["help"]["markdown"], rule.doc);
        assert!(!descriptor["fullDescription"]["text"]
            .as_str()
            .unwrap()
            .is_empty());
    }
    let results = run["results"].as_array().unwrap();
    let located: Vec<(String, u64, u64)> = results
        .iter()
        .map(|r| {
            let region = &r["locations"][0]["physicalLocation"]["region"];
            assert_eq!(
                r["ruleId"],
                rules[r["ruleIndex"].as_u64().unwrap() as usize]["id"]
            );
            (
                r["ruleId"].as_str().unwrap().to_owned(),
                region["startLine"].as_u64().unwrap(),
                region["startColumn"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        located,
        json_findings(&project),
        "one result per finding, where JSON puts it"
    );
    assert_eq!(
        results[0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
        "db/100%25%3A%3Aodd%7Cdir%60/0002_evil%0A%3A%3Awarning%3A%3Ax%20@octocat%20%3Cb%3E%7Cx%60y%25.sql"
    );
    let invocation = &run["invocations"][0];
    assert_eq!(invocation["exitCode"], 2);
    assert_eq!(invocation["executionSuccessful"], false);

    // The working directory differs per run; the rule documents have tests of their own.
    let mut stable = log.clone();
    stable["runs"][0]["originalUriBaseIds"]["%SRCROOT%"]["uri"] = "file:///PROJECT/".into();
    stable["runs"][0]["tool"]["driver"]["rules"] = format!("{} rules", rules.len()).into();
    stable["runs"][0]["tool"]["driver"]["version"] = "VERSION".into();
    stable["runs"][0]["tool"]["driver"]["semanticVersion"] = "VERSION".into();
    let mut pretty = serde_json::to_string_pretty(&stable).unwrap();
    pretty.push('\n');
    assert_snapshot("report_formats.sarif.json", &pretty);
}

#[test]
fn sarif_fingerprints_survive_lines_moving() {
    let project = Project::new("fingerprints");
    let fingerprints = |project: &Project| -> Vec<(u64, String)> {
        let log = parse_json(&project.report("sarif"));
        log["runs"][0]["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["locations"][0]["physicalLocation"]["region"]["startLine"]
                        .as_u64()
                        .unwrap(),
                    r["partialFingerprints"]["migagentFinding/v1"]
                        .as_str()
                        .unwrap()
                        .to_owned(),
                )
            })
            .collect()
    };
    let before = fingerprints(&project);
    let unique: HashSet<&String> = before.iter().map(|(_, f)| f).collect();
    assert_eq!(
        unique.len(),
        before.len(),
        "each finding has its own: {before:?}"
    );
    project.write_reviewed("-- a comment\n\n\n");
    let after = fingerprints(&project);
    assert_eq!(after.len(), before.len());
    for ((line_before, before), (line_after, after)) in before.iter().zip(&after) {
        assert_eq!(line_after - line_before, 3);
        assert_eq!(before, after);
    }
}

#[test]
fn github_commands_cannot_be_forged_and_match_their_snapshot() {
    let project = Project::new("github");
    let text = project.report("github");
    for line in text.lines() {
        assert!(
            line.starts_with("::error ")
                || line.starts_with("::warning ")
                || line.starts_with("::notice ")
                || line.starts_with("migagent: "),
            "a line migagent did not choose: {line:?}"
        );
    }
    let annotations = text.lines().filter(|l| l.starts_with("::")).count();
    // Every finding, the missing path, and the ignore naming an unknown rule.
    assert_eq!(annotations, json_findings(&project).len() + 2);
    assert!(
        text.contains("file=db/100%25%3A%3Aodd|dir`/0002_evil\\n%3A%3Awarning%3A%3Ax @octocat <b>|x`y%25.sql,"),
        "{text}"
    );
    assert_snapshot("report_formats.github.txt", &text);

    // Named by an absolute path, a file is still annotated by its path from the working directory.
    let absolute = project.0.join(DIR);
    let output = project
        .run(&["--shadow", "off", "--format", "github"])
        .arg(&absolute)
        .output()
        .unwrap();
    let absolute_text = String::from_utf8(output.stdout).unwrap();
    assert!(
        absolute_text.contains(",title=index-not-concurrent (locking)::")
            && absolute_text.contains("::error file=db/100%25%3A%3Aodd|dir`/0002_evil"),
        "{absolute_text}"
    );
}

#[test]
fn github_format_appends_the_markdown_report_to_the_step_summary() {
    let project = Project::new("summary");
    let summary = project.0.join("step-summary.md");
    std::fs::write(&summary, "earlier step\n").unwrap();
    let run = |format: &str| {
        project
            .run(&["--shadow", "off", "--format", format, DIR])
            .env("GITHUB_STEP_SUMMARY", &summary)
            .output()
            .unwrap()
    };
    let github = run("github");
    assert_eq!(github.status.code(), Some(1));
    assert!(String::from_utf8(github.stdout).unwrap().starts_with("::"));
    let markdown = String::from_utf8(run("markdown").stdout).unwrap();
    assert_eq!(
        std::fs::read_to_string(&summary).unwrap(),
        format!("earlier step\n{markdown}"),
        "appended once, by --format github only"
    );
}

/// Reads the report as a Markdown renderer does (CommonMark with GitHub's tables, strikethrough and
/// math) and checks that everything with an effect is migagent's own: its HTML, its links, six cells
/// in each table row, and no mention outside code.
fn assert_markdown_is_inert(text: &str, rules_url: Option<&str>) {
    use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd};
    let rejected_sql = format!(
        "<details><summary>{}</summary>",
        migagent::report::markdown::REJECTED_SQL
    );
    let own_html = [
        "<!-- migagent-report -->",
        "<br>",
        "<details><summary>Trace on the shadow database</summary>",
        &rejected_sql,
        "</details>",
        "<sub>",
        "</sub>",
    ];
    let options = Options::ENABLE_TABLES
        | Options::ENABLE_STRIKETHROUGH
        | Options::ENABLE_MATH
        | Options::ENABLE_GFM;
    let (mut cells, mut in_code_block) = (0, false);
    for event in Parser::new_ext(text, options) {
        match event {
            Event::Html(html) | Event::InlineHtml(html) => {
                let html = html.trim();
                // The advice block's summary names where the advice came from and the risk.
                let advice_summary = html.starts_with("<details><summary>Advice (from ")
                    && html.ends_with(")</summary>")
                    && !html[18..html.len() - 10].contains(['<', '>']);
                assert!(
                    own_html.contains(&html) || advice_summary,
                    "HTML from the data: {html:?}"
                )
            }
            Event::Start(Tag::Link { dest_url, .. }) => assert!(
                rules_url.is_some_and(|url| dest_url.starts_with(url)),
                "a link migagent did not make: {dest_url}"
            ),
            Event::Start(Tag::Image { .. } | Tag::Strikethrough)
            | Event::InlineMath(_)
            | Event::DisplayMath(_) => panic!("markup from the data: {event:?}"),
            Event::Start(Tag::TableHead | Tag::TableRow) => cells = 0,
            Event::Start(Tag::TableCell) => cells += 1,
            Event::End(TagEnd::TableHead | TagEnd::TableRow) => {
                assert_eq!(cells, 6, "a table row with {cells} cells")
            }
            Event::Start(Tag::CodeBlock(_)) => in_code_block = true,
            Event::End(TagEnd::CodeBlock) => in_code_block = false,
            Event::Text(text) if !in_code_block => {
                assert!(!text.contains("@octocat"), "a mention: {text:?}")
            }
            _ => {}
        }
    }
}

#[test]
fn markdown_cannot_inject_and_matches_its_snapshot() {
    let project = Project::new("markdown");
    let text = project.report("markdown");
    assert!(text.starts_with("<!-- migagent-report -->\n"), "{text}");
    assert_markdown_is_inert(&text, None);
    assert_snapshot("report_formats.md", &text);
}

/// SQL that tries to break out of the advice block: a code fence, `</details>`, HTML, a workflow
/// command on a line of its own, a terminal escape (title, clear screen) and a mention, in a string, an
/// identifier and a comment.
const HOSTILE_SQL: &str = "```` </details><img src=x onerror=alert(1)>\n::warning file=x::forged \x1b]0;pwned\x07\x1b[2J @octocat";

/// GitHub's legacy workflow commands, which its runner reads anywhere in a line (the first of a line):
/// an annotation, an output and a mask (that would hide text in the rest of the log).
const LEGACY_COMMANDS: &str = "##[error]forged ##[set-output name=x]y ##[add-mask]z";

/// The built-in drafts in the advice block carry the migration's own SQL: whatever it holds stays data
/// in every format (Markdown inert, GitHub lines all migagent's, no terminal escape in the text
/// report, JSON and SARIF that parse and keep it exact).
#[test]
fn hostile_sql_in_the_advice_drafts_stays_inert() {
    let project = Project::new("advice");
    let table = quote(TABLE);
    let literal = HOSTILE_SQL.replace('\'', "''");
    project.write(
        FILE,
        &format!(
            "CREATE INDEX {} ON {table} (id) WHERE \"line\nbreak\" <> '{literal}';\n\
             UPDATE {table} SET id = id /* {HOSTILE_SQL} */ WHERE id < 0;\n\
             -- {LEGACY_COMMANDS}\n\
             CREATE INDEX {} ON {table} (id);\n",
            quote(HOSTILE_SQL),
            quote(LEGACY_COMMANDS)
        ),
    );
    let markdown = project.report("markdown");
    assert!(
        markdown.contains("<details><summary>Advice (from built-in fixers"),
        "the drafts are in the report: {markdown}"
    );
    assert!(markdown.contains("CONCURRENTLY"), "{markdown}");
    assert_markdown_is_inert(&markdown, None);
    let github = project.report("github");
    for line in github.lines() {
        assert!(
            line.starts_with("::error ")
                || line.starts_with("::warning ")
                || line.starts_with("::notice ")
                || line.starts_with("migagent: "),
            "a line migagent did not choose: {line:?}"
        );
    }
    for format in ["text", "markdown"] {
        assert_no_workflow_command(&project.report(format));
    }
    assert_legacy_commands_inert(&project);
    for format in ["text", "markdown", "github"] {
        let report = project.report(format);
        assert!(!report.contains('\x1b'), "{format}: a raw ESC: {report:?}");
        assert!(!report.contains('\x07'), "{format}: a raw BEL: {report:?}");
    }
    let json = parse_json(&project.report("json"));
    let drafts: String = json["migrations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|migration| migration["advice"].to_string())
        .collect();
    assert!(
        drafts.contains("\\u001b]0;pwned"),
        "JSON keeps the SQL exact, as escaped data: {drafts}"
    );
    let sarif = parse_json(&project.report("sarif"));
    assert_eq!(sarif["version"], "2.1.0");

    // Rejected drafts (the model's, with what the server said of them) stay as inert.
    use migagent::report::Format;
    for format in [Format::Text, Format::Markdown] {
        let report = render_drafted(format);
        assert!(report.contains("REJECTED by the validator"), "{report}");
        assert!(!report.contains(['\x1b', '\x07']), "{report:?}");
        assert_no_workflow_command(&report);
    }
    assert_markdown_is_inert(&render_drafted(Format::Markdown), None);
    for line in render_drafted(Format::Github).lines() {
        assert!(
            ["::error ", "::warning ", "::notice ", "migagent: "]
                .iter()
                .any(|own| line.starts_with(own)),
            "a line migagent did not choose: {line:?}"
        );
    }
    assert_eq!(
        parse_json(&render_drafted(Format::Sarif))["version"],
        "2.1.0"
    );
}

#[test]
fn markdown_links_rules_when_their_documents_are_published() {
    let project = Project::new("links");
    let output = project.review(
        "markdown",
        &["--rules-url", "https://example.com/docs/rules/"],
    );
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(
        text.contains(
            "[`index-not-concurrent`](https://example.com/docs/rules/index-not-concurrent.md)"
        ),
        "{text}"
    );
    assert!(!text.contains("`migagent rules RULE`"), "{text}");
}

#[test]
fn markdown_stays_under_githubs_comment_limit_and_says_what_it_cut() {
    let project = Project::new("large");
    let table = quote(TABLE);
    let statements: String = (0..400)
        .map(|i| format!("CREATE INDEX i{i} ON {table} (id);\n"))
        .collect();
    project.write(FILE, &statements);
    let text = project.report("markdown");
    let chars = text.chars().count();
    assert!(chars <= 65_536, "{chars} characters");
    assert!(chars > 60_000, "the room is used: {chars} characters");
    assert!(
        text.contains("> Cut to stay under GitHub's limit of 65,536 characters"),
        "{text}"
    );
    assert_markdown_is_inert(&text, None);
    let shown = text.matches("**error** `index-not-concurrent`").count();
    assert!(shown > 10 && shown < 400, "{shown} shown");
    assert!(
        text.contains(&format!("{} findings and notices", 400 - shown)),
        "the note counts the findings cut: {}",
        &text[text.len() - 600..]
    );
}

#[test]
fn report_files_hold_the_same_reports_from_one_run() {
    let project = Project::new("files");
    let output = project.review(
        "text",
        &[
            "--report-file",
            "sarif=out/migagent.sarif",
            "--report-file",
            "markdown=out/comment.md",
        ],
    );
    assert_eq!(output.status.code(), Some(2));
    let read = |name: &str| std::fs::read_to_string(project.0.join("out").join(name)).unwrap();
    assert_eq!(read("migagent.sarif"), project.report("sarif"));
    assert_eq!(read("comment.md"), project.report("markdown"));

    let bad = project.review("text", &["--report-file", "yaml=x"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("`yaml` is not a format"));
}

#[test]
fn markdown_folds_the_shadow_trace() {
    if common::binaries_or_skip().is_none() {
        return;
    }
    let project = Project::new("trace");
    let cache = project.0.join("cache");
    let output = project
        .run(&["--format", "markdown", DIR])
        .env("XDG_CACHE_HOME", &cache)
        .output()
        .unwrap();
    let text = String::from_utf8(output.stdout).unwrap();
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(text.contains("shadow: applied on PostgreSQL"), "{text}");
    assert_markdown_is_inert(&text, None);
    // Both migrations of the directory are reviewed: each has its trace, folded.
    let traces: Vec<&str> = text
        .split("<details><summary>Trace on the shadow database</summary>\n\n")
        .skip(1)
        .collect();
    assert_eq!(traces.len(), 2, "{text}");
    for trace in &traces {
        assert!(trace.starts_with("```text\n"), "{trace}");
        assert!(trace.contains("\n```\n\n</details>\n"), "{trace}");
    }
    // The table's line break is escaped: the trace cannot start a line of its own (a workflow
    // command such as `::error::` when a log shows it).
    assert!(
        traces[1].contains("ShareLock on public.we|rd`%0A\\n::error::"),
        "{}",
        traces[1]
    );
    assert_no_workflow_command(&text);
}

/// Model text that tries to leave its place: a workflow command on a line of its own (after spaces,
/// which GitHub's runner skips), the end of a `<details>`, a code fence, a terminal escape, a mention.
const HOSTILE_TEXT: &str =
    "fine\n   ::error file=x::forged </details> ```` \x1b[2J @octocat\n::warning::also";

/// A review as the validator leaves it: an accepted built-in rewrite and a rejected LLM down (two
/// attempts) on one migration; a rejected LLM rewrite and a skipped built-in down on another. The
/// model's text and SQL, and what the server said about them, are hostile.
fn drafted_review() -> migagent::review::Review {
    use migagent::advice::draft::{Body, Down, Draft, Rewrite, Source, Status, Step, Validation};
    use migagent::advice::{Advice, Risk};

    let history = ["CREATE TABLE t (id bigint PRIMARY KEY, note text NOT NULL);"];
    let reviewed = |path: &str, sql: &str| {
        migagent::review::review_sql(
            path,
            &history,
            sql,
            migagent::migration::Transaction::None,
            &Default::default(),
        )
    };
    let draft = |source, attempts, body, status, reasons: &[&str], notes: &[&str]| Draft {
        source,
        attempts,
        body,
        validation: Validation {
            status,
            reasons: reasons.iter().map(|r| r.to_string()).collect(),
            notes: notes.iter().map(|n| n.to_string()).collect(),
        },
    };
    let step = |sql: &str, transactional, note: &str| Step {
        sql: sql.into(),
        transactional,
        note: note.into(),
    };
    let hostile_sql = format!("SELECT 1 /* {HOSTILE_TEXT} */;\n{HOSTILE_SQL}");
    let advice = |drafts: Vec<Draft>| {
        let mut advice = Advice::builtin(drafts, &[migagent::rules::Severity::Error]);
        advice.risk = Risk::High;
        advice
    };

    let mut index = reviewed("db/0002_index.sql", "CREATE INDEX i ON t (id);\n");
    index.advice = Some(advice(vec![
        draft(
            Source::Builtin,
            1,
            Body::Rewrite(Rewrite {
                steps: vec![step(
                    "CREATE INDEX CONCURRENTLY i ON t (id);",
                    false,
                    "builds the index without blocking writes",
                )],
                rationale: "statement 1 (line 1): index-not-concurrent".into(),
            }),
            Status::Accepted,
            &[],
            &[],
        ),
        draft(
            Source::Llm,
            2,
            Body::Down(Down {
                sql: hostile_sql.clone(),
                data_loss: false,
                notes: HOSTILE_TEXT.into(),
            }),
            Status::Rejected,
            &[
                "index i left behind after the down (it did not exist before the up)",
                &format!("the down fails at line 2: ERROR 42601: syntax error at or near \"{HOSTILE_TEXT}\""),
            ],
            &[],
        ),
    ]));

    let mut drop = reviewed("db/0003_drop.sql", "ALTER TABLE t DROP COLUMN note;\n");
    drop.advice = Some(advice(vec![
        draft(
            Source::Llm,
            1,
            Body::Rewrite(Rewrite {
                steps: vec![step(&hostile_sql, true, HOSTILE_TEXT)],
                rationale: HOSTILE_TEXT.into(),
            }),
            Status::Rejected,
            &["column t.note is nullable, the original's result has no such column"],
            &["the columns of table t end up in another order"],
        ),
        draft(
            Source::Builtin,
            1,
            Body::Down(Down {
                sql: "ALTER TABLE public.t ADD COLUMN note text;".into(),
                data_loss: true,
                notes: "Column note comes back nullable.".into(),
            }),
            Status::Skipped,
            &["not validated: no shadow database ran"],
            &[],
        ),
    ]));
    let mut review = migagent::review::Review::default();
    review.migrations.extend([index, drop]);
    review
}

fn render_drafted(format: migagent::report::Format) -> String {
    let context = migagent::report::Context {
        exit_code: 1,
        color: false,
        rules_url: None,
        working_dir: Path::new("/"),
    };
    migagent::report::render(&drafted_review(), format, &context)
}

/// No line of a report printed in a GitHub Actions log is a workflow command: the runner reads a
/// line that starts with `::` once leading whitespace is skipped.
fn assert_no_workflow_command(report: &str) {
    for line in report.lines() {
        assert!(
            !line.trim_start().starts_with("::"),
            "a line GitHub reads as a command: {line:?}"
        );
    }
}

/// The workflow commands GitHub's runner would run reading `log`, as actions/runner's
/// `ActionCommandManager` does: a line is `::name props::data` (after leading spaces), else it holds
/// a legacy `##[name props]data` anywhere; a name must be a known command. Between
/// `::stop-commands::TOKEN` and a command named TOKEN, nothing else runs.
fn runner_commands(log: &str) -> Vec<String> {
    const KNOWN: [&str; 14] = [
        "error",
        "warning",
        "notice",
        "debug",
        "group",
        "endgroup",
        "echo",
        "add-mask",
        "set-output",
        "set-env",
        "add-path",
        "save-state",
        "add-matcher",
        "remove-matcher",
    ];
    let (mut ran, mut stop_token) = (Vec::new(), None::<String>);
    for line in log.lines() {
        let known = |name: &str| {
            KNOWN.contains(&name) || name == "stop-commands" || stop_token.as_deref() == Some(name)
        };
        let command = |info: &str, data: &str| {
            let name = info.split(' ').next().unwrap_or_default().to_owned();
            known(&name).then(|| (name, data.to_owned()))
        };
        let v2 = (line.trim_start().strip_prefix("::"))
            .and_then(|rest| rest.split_once("::"))
            .and_then(|(info, data)| command(info, data));
        let v1 = || {
            let rest = &line[line.find("##[")? + 3..];
            let (info, data) = rest.split_once(']')?;
            command(info, data)
        };
        let Some((name, data)) = v2.or_else(v1) else {
            continue;
        };
        match &stop_token {
            Some(token) if *token == name => stop_token = None,
            Some(_) => continue,
            None if name == "stop-commands" => stop_token = Some(data),
            None => {}
        }
        ran.push(name);
    }
    ran
}

/// Legacy `##[command]`s in names and SQL run nothing in a GitHub Actions log: the text and Markdown
/// reports, and what migagent says on stderr, run there between `::stop-commands::TOKEN` and
/// `::TOKEN::` with a token of their run, the `github`
/// format's lines are all migagent's own annotations, and JSON and SARIF spell the `[` as `\u005b`.
fn assert_legacy_commands_inert(project: &Project) {
    for format in ["text", "markdown"] {
        let plain = project.report(format);
        assert!(
            plain.contains(LEGACY_COMMANDS),
            "{format}: the test shows them: {plain}"
        );
        let in_github_actions = || {
            let run = project.run(&["--shadow", "off", "--format", format, DIR, MISSING]);
            String::from_utf8(in_actions(run).stdout).expect("reports are UTF-8")
        };
        let (logged, again) = (in_github_actions(), in_github_actions());
        let token = assert_commands_stopped(&logged, &plain);
        assert!(
            !again.contains(token),
            "{format}: a token of this run: {token}"
        );
    }
    assert_stderr_inert(project);

    let github = project.report("github");
    let annotations = github.lines().filter(|l| l.starts_with("::")).count();
    assert!(github.contains(LEGACY_COMMANDS), "{github}");
    let ran = runner_commands(&github);
    assert_eq!(ran.len(), annotations, "{ran:?}");
    assert!(
        ran.iter()
            .all(|name| ["error", "warning", "notice"].contains(&name.as_str())),
        "{ran:?}"
    );
    for format in ["json", "sarif"] {
        let report = project.report(format);
        assert_eq!(runner_commands(&report), Vec::<String>::new(), "{format}");
        assert!(
            parse_json(&report).to_string().contains(LEGACY_COMMANDS),
            "{format}: the same data: {report}"
        );
    }
}

/// `mut command` run as a step of GitHub Actions, its log the runner reads.
fn in_actions(mut command: Command) -> Output {
    command
        .env("GITHUB_ACTIONS", "true")
        .output()
        .expect("the binary runs")
}

/// `logged` is `plain` between `::stop-commands::TOKEN` and `::TOKEN::`, with an unguessable token,
/// and the runner runs nothing else in it, where it would run `plain`'s commands; returns the token.
fn assert_commands_stopped<'a>(logged: &'a str, plain: &str) -> &'a str {
    let token = logged
        .lines()
        .next()
        .and_then(|line| line.strip_prefix("::stop-commands::"))
        .unwrap_or_else(|| panic!("the log starts by stopping commands: {logged}"));
    assert!(
        token.len() >= 32 && !plain.contains(token),
        "an unguessable token of this run: {token}"
    );
    assert_eq!(
        logged,
        format!("::stop-commands::{token}\n{plain}::{token}::\n")
    );
    assert_eq!(runner_commands(logged), ["stop-commands", token]);
    let unstopped = runner_commands(plain);
    assert!(
        unstopped.contains(&"error".to_owned()),
        "without the stop the runner would run them: {unstopped:?}"
    );
    token
}

/// What migagent says on stderr quotes paths and arguments (an error, a warning, a usage error):
/// in a GitHub Actions log it runs no workflow command either.
fn assert_stderr_inert(project: &Project) {
    let hostile = format!("no|dir\n::error::forged {LEGACY_COMMANDS}");
    // Under a file, where no directory can be made.
    let report_file = format!("markdown={DIR}/0001_init.sql/{hostile}/comment.md");
    let summary = project.0.join(&hostile).join("summary.md");
    let cases = [
        (
            "an error",
            project.run(&["--shadow", "off", "--report-file", &report_file, DIR]),
        ),
        ("a warning", {
            let mut run = project.run(&["--shadow", "off", "--format", "github", DIR]);
            run.env("GITHUB_STEP_SUMMARY", &summary);
            run
        }),
        ("a usage error", project.run(&["--fail-on", &hostile, DIR])),
    ];
    for (what, mut command) in cases {
        let plain = command.output().expect("the binary runs");
        let plain = String::from_utf8(plain.stderr).unwrap();
        assert!(
            plain.contains("forged"),
            "{what}: the test shows it: {plain}"
        );
        let logged = String::from_utf8(in_actions(command).stderr).unwrap();
        assert_commands_stopped(&logged, &plain);
    }
}

/// Accepted drafts print as SQL ready to use; a rejected one prints its reasons first and its SQL
/// after them, marked (text) or folded (Markdown) as not safe to use; one not validated says why.
#[test]
fn drafts_print_by_their_verdict_and_match_their_snapshots() {
    use migagent::report::Format;

    let text = render_drafted(Format::Text);
    assert_no_workflow_command(&text);
    assert!(!text.contains('\x1b'), "{text}");
    let accepted = text
        .find("rewrite (built-in fixers, validated on the shadow, ready to use)")
        .expect("the accepted rewrite");
    assert!(text[accepted..].starts_with(
        "rewrite (built-in fixers, validated on the shadow, ready to use): statement 1 (line 1): \
         index-not-concurrent\n    | -- step 1, outside any transaction: builds the index without \
         blocking writes\n    | CREATE INDEX CONCURRENTLY i ON t (id);\n"
    ));
    let rejected = text
        .find("down (the LLM, 2 attempts, REJECTED by the validator, not safe to use)")
        .expect("the rejected down");
    let reason = text.find("because: index i left behind").unwrap();
    let marker = text.find("rejected draft (not safe to use):").unwrap();
    let sql = text.find("| SELECT 1 /* fine").unwrap();
    assert!(
        rejected < reason && reason < marker && marker < sql,
        "{text}"
    );
    assert!(text.contains(
        "down (built-in fixers, not validated; it cannot bring back the data the up migration \
         destroys): Column note comes back nullable.\n    because: not validated: no shadow \
         database ran\n    draft (not validated: check it before use):\n    | ALTER TABLE"
    ));
    assert_snapshot("report_drafts.txt", &text);

    let markdown = render_drafted(Format::Markdown);
    assert_markdown_is_inert(&markdown, None);
    assert_no_workflow_command(&markdown);
    assert!(markdown.contains(
        "✅ **rewrite (built-in fixers, validated on the shadow, ready to use)**: statement 1 \
         \\(line 1\\): index-not-concurrent\n\n```sql\n-- step 1, outside any transaction: builds \
         the index without blocking writes\nCREATE INDEX CONCURRENTLY i ON t (id);\n```\n"
    ));
    let folded = format!(
        "<details><summary>{}</summary>",
        migagent::report::markdown::REJECTED_SQL
    );
    assert_eq!(markdown.matches(&folded).count(), 2, "{markdown}");
    let reason = markdown.find("- *Because:* index i left behind").unwrap();
    let sql = markdown.find("SELECT 1 /* fine").unwrap();
    assert!(reason < markdown.find(&folded).unwrap() && markdown.find(&folded).unwrap() < sql);
    assert!(markdown.contains("⚠️ **down (built-in fixers, not validated;"));
    assert_snapshot("report_drafts.md", &markdown);

    // Annotations carry findings only: no draft reaches the workflow commands.
    let github = render_drafted(Format::Github);
    assert!(!github.contains("forged"), "{github}");

    // The JSON contract is the drafts' own fields, whatever the text reports print.
    let json = parse_json(&render_drafted(Format::Json));
    let down = &json["migrations"][0]["advice"]["down"];
    assert_eq!(down["validation"]["status"], "rejected");
    assert_eq!(down["attempts"], 2);
    assert_eq!(down["sql"].as_str().unwrap().lines().count(), 5);
    let rewrite = &json["migrations"][1]["advice"]["rewrite"];
    assert_eq!(rewrite["validation"]["status"], "rejected");
    assert_eq!(
        rewrite["validation"]["notes"][0],
        "the columns of table t end up in another order"
    );
    assert_eq!(
        json["migrations"][1]["advice"]["down"]["validation"],
        serde_json::json!({"status": "skipped", "reasons": ["not validated: no shadow database ran"]})
    );
}

/// JSON findings name their table once for display and once in parts, exact and unquoted, so a
/// reader need not split the display name (which holds dots and anything else a name may hold).
#[test]
fn json_findings_carry_the_tables_schema_and_name_beside_its_display() {
    let project = Project::new("json-parts");
    let report = parse_json(&project.report("json"));
    let findings: Vec<&Value> = report["migrations"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|m| m["findings"].as_array().unwrap())
        .filter(|f| !f["table"].is_null())
        .collect();
    assert!(!findings.is_empty(), "{report}");
    for finding in findings {
        assert_eq!(finding["schema"], "public", "{finding}");
        assert_eq!(finding["name"], TABLE, "{finding}");
        assert_eq!(finding["table"], format!("public.{TABLE}"), "{finding}");
    }
}
