//! Every rule's document, `rules/<id>.md`, checked against the registry, and its examples run as tests.
//!
//! A document holds fenced blocks whose info string starts with `sql` and names their role:
//! ```` ```sql history ```` (earlier migrations' SQL, applied first, one migration per block),
//! ```` ```sql bad ```` (must produce at least one finding of the rule) and ```` ```sql good ````
//! (must produce none of it). `pg=N` on a bad or good block reviews it for PostgreSQL N
//! (e.g. ```` ```sql bad pg=10 ````). Other fenced blocks, such as a plain ```` ```sql ```` in
//! "Safe alternative", are prose and are not run.
//!
//! Each test collects every failing document before failing, so one run shows all of them.

use std::fs;
use std::path::PathBuf;

use migagent::migration::Transaction;
use migagent::report::text::{render_migration, Style};
use migagent::review::{review, review_sql, MigrationReview, ReviewOptions};
use migagent::rules::{Category, Rule, ALL};
use migagent::shadow::session::{ShadowMode, ShadowOptions};

mod common;

use common::docs::{docs_dir, parse_examples, read_doc, Example, Role};

/// The headings every document has, in this order.
const HEADINGS: &[&str] = &[
    "## Why",
    "## What PostgreSQL does",
    "## Safe alternative",
    "## Examples",
];

/// Reviews an example as a plain psql migration after the document's history. The SQL is preceded
/// by blank lines so that the positions in findings are the document's lines.
///
/// The shadow category's findings come from applying the SQL to a real PostgreSQL: those examples are
/// written out as a migration directory and reviewed with migagent's own ephemeral shadow database.
fn review_example(rule: &Rule, history: &[&str], example: &Example) -> MigrationReview {
    if rule.category == Category::Shadow {
        return review_on_shadow(rule, history, example);
    }
    if rule.category == Category::History {
        return review_against_base(rule, history, example);
    }
    let mut options = ReviewOptions::default();
    if let Some(version) = example.pg_version {
        options.rule_settings.pg_version = version;
    }
    let sql = "\n".repeat(example.line) + &example.sql;
    review_sql(
        &format!("rules/{}.md", rule.id),
        history,
        &sql,
        Transaction::None,
        &options,
    )
}

fn review_on_shadow(rule: &Rule, history: &[&str], example: &Example) -> MigrationReview {
    let dir = std::env::temp_dir().join(format!(
        "migagent-rule-doc-{}-{}-{}",
        rule.id,
        example.line,
        std::process::id()
    ));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    for (number, sql) in history.iter().enumerate() {
        fs::write(dir.join(format!("{:03}_history.sql", number + 1)), sql).unwrap();
    }
    let reviewed = dir.join(format!("{:03}_example.sql", history.len() + 1));
    fs::write(&reviewed, "\n".repeat(example.line) + &example.sql).unwrap();
    let options = ReviewOptions {
        shadow: ShadowOptions {
            mode: ShadowMode::Auto,
            pg_bin: None,
            cache: false,
            ..ShadowOptions::default()
        },
        ..ReviewOptions::default()
    };
    let mut review = review(&[reviewed], &options);
    fs::remove_dir_all(&dir).unwrap();
    assert!(review.problems.is_empty(), "{:?}", review.problems);
    assert!(review.shadow.is_some(), "the shadow database did not start");
    review.migrations.remove(0)
}

/// The history category compares the migrations with git's merge base: the history is committed, one
/// file per block; a bad example is the last history file edited, a good one a new file after it.
fn review_against_base(rule: &Rule, history: &[&str], example: &Example) -> MigrationReview {
    let dir = std::env::temp_dir().join(format!(
        "migagent-rule-doc-{}-{}-{}",
        rule.id,
        example.line,
        std::process::id()
    ));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(dir.join("db")).unwrap();
    let git = |args: &[&str]| {
        let output = std::process::Command::new("git")
            .args(["-c", "user.email=t@example.com", "-c", "user.name=t"])
            .args(args)
            .current_dir(&dir)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("HOME", &dir)
            .output()
            .unwrap();
        assert!(output.status.success(), "git {args:?}: {output:?}");
    };
    let file = |number: usize| format!("db/{number:03}_migration.sql");
    git(&["init", "-q"]);
    for (number, sql) in history.iter().enumerate() {
        fs::write(dir.join(file(number + 1)), sql).unwrap();
    }
    git(&["add", "-A"]);
    git(&["commit", "-qm", "history"]);
    let changed = match example.role {
        Role::Bad => file(history.len()),
        _ => file(history.len() + 1),
    };
    fs::write(dir.join(&changed), &example.sql).unwrap();
    let changes = migagent::migration::git::changes_since(&dir, "HEAD", &[PathBuf::from("db")])
        .unwrap_or_else(|e| panic!("{e}"));
    let mut edited = changes.edited;
    for migration in &mut edited.migrations {
        migration.path = dir.join(&migration.path);
    }
    let options = ReviewOptions {
        edited_history: Some(edited),
        ..ReviewOptions::default()
    };
    let paths: Vec<PathBuf> = changes.changed.iter().map(|p| dir.join(p)).collect();
    let mut review = review(&paths, &options);
    fs::remove_dir_all(&dir).unwrap();
    assert!(review.problems.is_empty(), "{:?}", review.problems);
    review.migrations.remove(0)
}

/// The findings of a review as the text report shows them, only those of `rule` when given.
fn rendered(review: &MigrationReview, only: Option<&str>) -> String {
    let findings: Vec<_> = review
        .findings
        .iter()
        .filter(|f| only.is_none_or(|id| f.rule.id == id))
        .cloned()
        .collect();
    if findings.is_empty() {
        return "    (no findings)\n".into();
    }
    let view = MigrationReview {
        path: review.path.clone(),
        tool: review.tool,
        text: review.text.clone(),
        sections: review.sections.clone(),
        lines: review.lines.clone(),
        statements: review.statements.clone(),
        findings,
        notices: Vec::new(),
        advice: None,
    };
    let mut out = String::new();
    render_migration(&mut out, &view, Style { color: false });
    out.lines().map(|line| format!("    {line}\n")).collect()
}

/// What is wrong with one rule's examples; empty when they all behave.
fn check_examples(rule: &Rule) -> Vec<String> {
    let doc = match read_doc(rule) {
        Ok(doc) => doc,
        Err(error) => return vec![error],
    };
    let examples = match parse_examples(&doc) {
        Ok(examples) => examples,
        Err(error) => return vec![error],
    };
    let mut problems = Vec::new();
    for (role, fence) in [(Role::Bad, "```sql bad"), (Role::Good, "```sql good")] {
        if !examples.iter().any(|e| e.role == role) {
            problems.push(format!("has no {fence} block"));
        }
    }
    let history: Vec<&str> = examples
        .iter()
        .filter(|e| e.role == Role::History)
        .map(|e| e.sql.as_str())
        .collect();
    for example in &examples {
        let review = review_example(rule, &history, example);
        let fired = review.findings.iter().any(|f| f.rule.id == rule.id);
        match example.role {
            Role::Bad if !fired => problems.push(format!(
                "the bad example at line {} produces no {} finding; it produces:\n{}",
                example.line,
                rule.id,
                rendered(&review, None)
            )),
            Role::Good if fired => problems.push(format!(
                "the good example at line {} produces {} findings:\n{}",
                example.line,
                rule.id,
                rendered(&review, Some(rule.id))
            )),
            _ => {}
        }
    }
    problems
}

/// Fails with every rule's problems at once.
fn assert_no_problems(what: &str, problems: Vec<(&str, Vec<String>)>) {
    let failing: Vec<String> = problems
        .into_iter()
        .filter(|(_, problems)| !problems.is_empty())
        .map(|(id, problems)| {
            let list: String = problems.iter().map(|p| format!("  - {p}\n")).collect();
            format!("rules/{id}.md:\n{list}")
        })
        .collect();
    assert!(
        failing.is_empty(),
        "{} of {} rule documents fail ({what}):\n\n{}",
        failing.len(),
        ALL.len(),
        failing.join("\n")
    );
}

#[test]
fn every_rule_has_a_document_and_every_document_names_a_rule() {
    let mut problems: Vec<(&str, Vec<String>)> = ALL
        .iter()
        .map(|rule| {
            let mut problems = Vec::new();
            match read_doc(rule) {
                Err(error) => problems.push(error),
                Ok(doc) => {
                    let title = format!("# {}", rule.id);
                    if doc.lines().next() != Some(title.as_str()) {
                        problems.push(format!("the first line is not `{title}`"));
                    }
                    if rule.doc != doc {
                        problems.push(format!(
                            "the rule's `doc` is not this file (include_str!(\"../../rules/{}.md\"))",
                            rule.id
                        ));
                    }
                }
            }
            (rule.id, problems)
        })
        .collect();
    let mut strays = Vec::new();
    let entries = fs::read_dir(docs_dir()).expect("the rules/ directory exists");
    for entry in entries {
        let path = entry.expect("rules/ is readable").path();
        if path.extension().is_some_and(|ext| ext == "md") {
            let stem = path
                .file_stem()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            if !ALL.iter().any(|rule| rule.id == stem) {
                strays.push(format!(
                    "{} names no registered rule (add it to migagent::rules::ALL or delete it)",
                    path.display()
                ));
            }
        }
    }
    problems.push(("*", strays));
    assert_no_problems("registry", problems);
}

#[test]
fn documents_have_the_catalog_headings_and_metadata() {
    let problems = ALL
        .iter()
        .map(|rule| {
            let doc = match read_doc(rule) {
                Ok(doc) => doc,
                Err(error) => return (rule.id, vec![error]),
            };
            let mut problems = Vec::new();
            let mut last = 0;
            for heading in HEADINGS {
                match doc.lines().position(|line| line.trim_end() == *heading) {
                    None => problems.push(format!("has no `{heading}` heading")),
                    Some(at) if at < last => problems.push(format!(
                        "`{heading}` is out of order (expected {HEADINGS:?})"
                    )),
                    Some(at) => last = at,
                }
            }
            let metadata = format!(
                "**Category:** {} · **Default severity:** {}",
                rule.category, rule.default_severity
            );
            if !doc.lines().any(|line| line.trim_end() == metadata) {
                problems.push(format!("has no line `{metadata}` matching the rule"));
            }
            (rule.id, problems)
        })
        .collect();
    assert_no_problems("headings", problems);
}

#[test]
fn examples_behave_as_documented() {
    // Without PostgreSQL (outside CI) the shadow category's examples cannot run.
    let shadow_available = common::binaries_or_skip().is_some();
    let problems = ALL
        .iter()
        .filter(|rule| shadow_available || rule.category != Category::Shadow)
        .map(|rule| (rule.id, check_examples(rule)))
        .collect();
    assert_no_problems("examples", problems);
}

#[test]
fn fences_are_read_with_their_roles_and_versions() {
    let doc = "# x\n```sql history\nCREATE TABLE t (a int);\n```\n```sql\nprose;\n```\n\
               ```sql bad pg=10\nALTER TABLE t ADD COLUMN b int DEFAULT 0;\n```\n```sql good\nSELECT 1;\n```\n";
    let examples = parse_examples(doc).unwrap();
    let summary: Vec<_> = examples
        .iter()
        .map(|e| (e.role, e.pg_version, e.sql.as_str(), e.line))
        .collect();
    assert_eq!(
        summary,
        [
            (Role::History, None, "CREATE TABLE t (a int);\n", 2),
            (
                Role::Bad,
                Some(10),
                "ALTER TABLE t ADD COLUMN b int DEFAULT 0;\n",
                8
            ),
            (Role::Good, None, "SELECT 1;\n", 11),
        ]
    );
    assert!(parse_examples("```sql bda\nx\n```\n").is_err());
    assert!(parse_examples("```sql bad\nx\n").is_err());
    assert!(parse_examples("```sql history pg=12\nx\n```\n").is_err());
}
