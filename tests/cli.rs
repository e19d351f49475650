//! End-to-end: the `migagent` binary as a user runs it — reports, exit codes, bad input.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

mod common;

use common::scratch::Scratch;

/// Runs the binary. Reviews run without the shadow database unless the test asks for one: these tests
/// are about everything else (tests/shadow_review.rs covers the shadow end to end).
fn migagent(args: &[&str], cwd: &Path) -> Output {
    let mut args = args.to_vec();
    if args.first() == Some(&"review") && !args.contains(&"--shadow") {
        args.insert(1, "--shadow");
        args.insert(2, "off");
    }
    Command::new(env!("CARGO_BIN_EXE_migagent"))
        .args(args)
        .current_dir(cwd)
        .env("NO_COLOR", "1")
        .output()
        .expect("the binary runs")
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

const EXAMPLE: &str = "fixtures/example/migrations/0003_order_status_and_emails.sql";

#[test]
fn text_report_of_the_example() {
    let output = migagent(&["review", EXAMPLE], &root());
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(text.contains("error[index-not-concurrent]"), "{text}");
    assert!(text.contains(&format!(" --> {EXAMPLE}:4:1")), "{text}");
    assert!(text.contains("4 | CREATE UNIQUE INDEX users_email_key ON users (email);"));
    assert!(text.contains("= help: "), "{text}");
    assert!(
        text.contains("summary: 1 migration, 6 statements"),
        "{text}"
    );
    assert!(!text.contains('\x1b'), "NO_COLOR is respected");
}

#[test]
fn fail_on_sets_the_exit_code() {
    let run = |level: &str| {
        migagent(&["review", "--fail-on", level, EXAMPLE], &root())
            .status
            .code()
    };
    assert_eq!(run("error"), Some(1));
    assert_eq!(run("warning"), Some(1));
    assert_eq!(run("never"), Some(0));
    // History alone: migrations 1 and 2 create tables, which is never an error.
    let first = migagent(
        &[
            "review",
            "fixtures/example/migrations/0001_create_accounts.sql",
        ],
        &root(),
    );
    assert_eq!(first.status.code(), Some(0), "{}", stdout(&first));
}

#[test]
fn json_report_follows_the_contract() {
    let output = migagent(&["review", "--format", "json", EXAMPLE], &root());
    assert_eq!(output.status.code(), Some(1));
    let report: Value = serde_json::from_slice(&output.stdout).expect("valid JSON");
    assert_eq!(report["version"], 1);
    let migrations = report["migrations"].as_array().unwrap();
    assert_eq!(migrations.len(), 1);
    let migration = &migrations[0];
    assert_eq!(migration["path"], EXAMPLE);
    assert_eq!(migration["tool"], "plain");
    // Built-in advice: drafted with no LLM, each draft carrying its validation.
    let advice = &migration["advice"];
    assert_eq!(advice["source"], "builtin");
    assert!(advice["llm"].is_null());
    let drafts = advice["drafts"].as_array().unwrap();
    assert!(!drafts.is_empty());
    for draft in drafts {
        assert!(["rewrite", "down"].contains(&draft["kind"].as_str().unwrap()));
        assert_eq!(draft["source"], "builtin");
        assert_eq!(draft["attempts"], 1);
        assert!(draft["validation"]["status"].is_string());
    }
    assert_eq!(advice["rewrite"]["kind"], "rewrite");
    let statements = migration["statements"].as_array().unwrap();
    for (i, statement) in statements.iter().enumerate() {
        assert_eq!(statement["index"], i);
        assert!(statement["line"].as_u64().unwrap() >= 1);
        assert!(statement["sql"].is_string());
        assert!(statement["parsed"].is_boolean());
        assert!(statement["trace"].is_null());
    }
    let findings = migration["findings"].as_array().unwrap();
    assert!(!findings.is_empty());
    for finding in findings {
        assert!(finding["rule"].is_string());
        assert!(["error", "warning", "info"].contains(&finding["severity"].as_str().unwrap()));
        assert!(finding["category"].is_string());
        let statement = finding["statement"].as_u64().unwrap() as usize;
        assert!(statement < statements.len());
        assert!(finding["line"].as_u64().unwrap() >= 1);
        assert!(finding["column"].as_u64().unwrap() >= 1);
        assert!(finding["message"].is_string());
        assert!(finding["help"].is_string());
        assert!(finding["table"].is_string() || finding["table"].is_null());
        assert!(finding["confirmed_by_shadow"].is_null());
    }
    let summary = &report["summary"];
    assert_eq!(summary["migrations"], 1);
    assert_eq!(summary["statements"], statements.len());
    let count = |s: &str| findings.iter().filter(|f| f["severity"] == s).count();
    assert_eq!(summary["errors"], count("error"));
    assert_eq!(summary["warnings"], count("warning"));
    assert_eq!(summary["infos"], count("info"));
}

#[test]
fn bad_inputs_are_named_and_the_rest_is_still_reviewed() {
    let scratch = Scratch::new("bad");
    scratch
        .write("1_empty.sql", b"")
        .write("2_binary.sql", b"\x00\x01\x02PK\x03\x04")
        .write("3_latin1.sql", b"SELECT 1;\nSELECT 'caf\xe9';\n")
        .write(
            "4_unterminated.sql",
            b"SELECT 1;\nCREATE FUNCTION f() RETURNS int AS $body$\nSELECT 1;\n",
        )
        .write(
            "5_good.sql",
            b"CREATE TABLE t (id int);\nDROP TABLE t;\nDROP TABLE legacy;\n",
        );
    let output = migagent(&["review", ".", "does-not-exist"], scratch.dir());
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(2), "{text}");
    assert!(
        text.contains("does-not-exist: no such file or directory"),
        "{text}"
    );
    assert!(
        text.contains("./2_binary.sql: this is a binary file"),
        "{text}"
    );
    assert!(
        text.contains("./3_latin1.sql:2:12: invalid UTF-8 at line 2, column 12"),
        "{text}"
    );
    assert!(
        text.contains("./4_unterminated.sql:2:36: unterminated dollar-quoted string"),
        "{text}"
    );
    // The good file was still reviewed: its own table is not flagged, the unknown one is.
    assert!(text.contains("error[drop-table]"), "{text}");
    assert!(text.contains("5_good.sql:3:"), "{text}");
    assert!(!text.contains("5_good.sql:2:"), "{text}");
}

#[test]
fn an_oversized_file_is_reported_not_read() {
    let scratch = Scratch::new("large");
    let statement = b"INSERT INTO t VALUES (1, 'padding padding padding padding');\n";
    let big: Vec<u8> = statement
        .iter()
        .copied()
        .cycle()
        .take(50 * 1024 * 1024)
        .collect();
    scratch
        .write("1_seed.sql", &big)
        .write("2_drop.sql", b"DROP TABLE t;\n");
    let output = migagent(&["review", "."], scratch.dir());
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(2), "{text}");
    assert!(
        text.contains("./1_seed.sql: the file is 52.4 MB, over the 33.6 MB limit"),
        "{text}"
    );
    assert!(text.contains("error[drop-table]"), "{text}");
}

#[test]
fn usage_errors_exit_2_with_a_clear_message() {
    let output = migagent(&["review"], &root());
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("no migrations to review"));

    let output = migagent(
        &["review", "--shadow", "postgres://x@localhost/db", EXAMPLE],
        &root(),
    );
    assert_eq!(output.status.code(), Some(2));

    let output = migagent(&["rollback", EXAMPLE], &root());
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("not available"));

    let output = migagent(&["review", "--format", "yaml", EXAMPLE], &root());
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn config_is_found_by_walking_up_and_unknown_keys_are_named() {
    let scratch = Scratch::new("config");
    std::fs::create_dir_all(scratch.path("db/sub")).unwrap();
    scratch
        .write(
            "migagent.toml",
            b"paths = [\"db\"]\n[rules]\ndrop-table = \"warning\"\n",
        )
        .write("db/1_drop.sql", b"DROP TABLE legacy;\n");
    let output = migagent(&["review"], &scratch.path("db/sub"));
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(0), "{text}{}", stderr(&output));
    assert!(text.contains("warning[drop-table]"), "{text}");

    // A category line turns a whole category off; a rule's own line wins over it.
    scratch.write(
        "migagent.toml",
        b"paths = [\"db\"]\n[rules]\ndata-loss = \"off\"\nlocking = \"off\"\n",
    );
    let text = stdout(&migagent(&["review"], scratch.dir()));
    assert!(!text.contains("drop-table"), "{text}");
    scratch.write(
        "migagent.toml",
        b"paths = [\"db\"]\n[rules]\ndata-loss = \"off\"\ndrop-table = \"info\"\n",
    );
    let text = stdout(&migagent(&["review"], scratch.dir()));
    assert!(text.contains("info[drop-table]"), "{text}");

    scratch.write("migagent.toml", b"[rules]\nno-such-thing = \"off\"\n");
    let output = migagent(&["review", "db"], scratch.dir());
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("`no-such-thing` is neither a rule nor a category"));

    scratch.write("migagent.toml", b"pg-verison = 14\n");
    let output = migagent(&["review", "db"], scratch.dir());
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("unknown field `pg-verison`"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn a_bad_trace_changes_value_names_where_it_is_and_what_to_use() {
    let scratch = Scratch::new("trace-changes");
    scratch.write("db/1_create.sql", b"CREATE TABLE t (id int);\n");
    let review = |trace_changes: &[&str]| {
        let args = [&["review", "db", "--shadow", "off"], trace_changes].concat();
        migagent(&args, scratch.dir())
    };
    let output = review(&["--trace-changes", "sometimes"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains(
            "invalid value 'sometimes' for '--trace-changes <auto|always|never>': `sometimes` is not a choice: use auto (the default: read when at most 20 migrations are reviewed), always or never"
        ),
        "{}",
        stderr(&output)
    );

    scratch.write("migagent.toml", b"[shadow]\ntrace-changes = \"often\"\n");
    let output = review(&[]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains(
            "error: migagent.toml, [shadow] trace-changes: `often` is not a choice: use auto"
        ),
        "{}",
        stderr(&output)
    );
    // The flag wins over the file's value, as everywhere.
    let output = review(&["--trace-changes", "never"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
}

/// More than 20 migrations reviewed are an audit of a history: no advice unless `--advise-on` (flag
/// or `[llm]`) asks for it, and the report says why once; up to 20 keep the default.
#[test]
fn a_review_of_more_than_20_migrations_gets_advice_only_when_asked() {
    let scratch = Scratch::new("audit-advice");
    scratch.write("db/001_create.sql", b"CREATE TABLE t (id int);\n");
    for n in 2..=21 {
        scratch.write(
            format!("db/{n:03}_index.sql"),
            format!("CREATE INDEX t_{n} ON t (id);\n"),
        );
    }
    let review = |extra: &[&str]| {
        let args = [&["review", "db", "--format", "json", "--llm", "off"], extra].concat();
        let output = migagent(&args, scratch.dir());
        let report: Value = serde_json::from_slice(&output.stdout).expect("valid JSON");
        let advised = report["migrations"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| !m["advice"].is_null())
            .count();
        (advised, report["advice_unasked"].clone())
    };

    let (advised, unasked) = review(&[]);
    assert_eq!(advised, 0);
    assert_eq!(
        unasked,
        "none drafted: 21 migrations reviewed (more than 20), an audit of a history rather than a change; `--base REF` reviews the migrations a change adds, `--advise-on warning` advises all of them"
    );
    let text = stdout(&migagent(&["review", "db", "--llm", "off"], scratch.dir()));
    assert_eq!(text.matches("none drafted").count(), 1, "{text}");
    assert!(
        text.contains("\nadvice: none drafted: 21 migrations"),
        "{text}"
    );

    let (advised, unasked) = review(&["--advise-on", "warning"]);
    assert_eq!((advised, unasked), (20, Value::Null));
    scratch.write("migagent.toml", b"[llm]\nadvise-on = \"error\"\n");
    let (advised, unasked) = review(&[]);
    assert_eq!((advised, unasked), (20, Value::Null));
    std::fs::remove_file(scratch.path("migagent.toml")).unwrap();

    // Twenty reviewed, the first migration history: the default advises.
    let (advised, unasked) = review(&["--latest", "20"]);
    assert_eq!((advised, unasked), (20, Value::Null));
}

#[test]
fn ignore_comments_suppress_and_unknown_rules_are_reported() {
    let scratch = Scratch::new("ignore");
    scratch.write(
        "1.sql",
        b"-- migagent:ignore drop-table -- archived last quarter\nDROP TABLE a;\n\
          DROP TABLE b; -- migagent:ignore no-such-rule\n",
    );
    let text = stdout(&migagent(&["review", "1.sql"], scratch.dir()));
    assert!(!text.contains("deletes public.a"), "{text}");
    assert!(text.contains("deletes public.b"), "{text}");
    assert!(text.contains("unknown rule `no-such-rule`"), "{text}");
}

#[test]
fn rules_command_lists_and_documents() {
    let output = migagent(&["rules"], &root());
    assert_eq!(output.status.code(), Some(0));
    let text = stdout(&output);
    for rule in migagent::rules::ALL {
        assert!(
            text.contains(rule.id),
            "{} missing from `migagent rules`",
            rule.id
        );
    }
    let output = migagent(&["rules", "set-not-null"], &root());
    assert!(stdout(&output).starts_with("# set-not-null"));
    assert_eq!(migagent(&["rules", "nope"], &root()).status.code(), Some(2));
}

/// The README's quick tour shows what `migagent review` of the example prints with the shadow: each
/// line of the excerpt, in order (`…` stands for lines left out, or ends a line cut short; the
/// server's minor version may differ).
#[test]
fn the_readme_tour_is_what_the_example_prints() {
    if common::binaries_or_skip().is_none() {
        return;
    }
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let command = format!("$ migagent review {EXAMPLE}");
    let tour = readme
        .split("```text\n")
        .find_map(|block| block.strip_prefix(&format!("{command}\n")))
        .and_then(|block| block.split("```").next())
        .expect("the README's tour runs `migagent review` of the example");
    let output = migagent(
        &["review", "--shadow", "auto", "--llm", "off", EXAMPLE],
        &root(),
    );
    let printed = stdout(&output);
    assert_eq!(output.status.code(), Some(1), "{printed}");
    let mut lines = printed.lines();
    for expected in tour.lines().filter(|line| line.trim() != "…") {
        let footer = "shadow: applied on PostgreSQL ";
        let prefix = expected
            .strip_suffix('…')
            .or_else(|| expected.starts_with(footer).then_some(footer));
        let found = lines.any(|line| match prefix {
            Some(prefix) => line.starts_with(prefix),
            None => line == expected,
        });
        assert!(found, "the README's tour shows a line the example does not print in that order:\n{expected}\n--- printed:\n{printed}");
    }
}

#[test]
fn the_readme_lists_every_rule() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    for rule in migagent::rules::ALL {
        assert!(
            readme.contains(&format!("`{}`", rule.id)),
            "README misses {}",
            rule.id
        );
    }
}
