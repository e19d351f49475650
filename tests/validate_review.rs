//! End-to-end: `migagent review` validates every draft of its advice on migagent's own shadow
//! PostgreSQL — the built-in rewrite and down of a migration accepted, a rewrite that still rewrites a
//! table rejected with that reason, drafts without a shadow skipped with the reason — and validation
//! never changes the findings or the exit code. Without PostgreSQL installed the tests are skipped,
//! except in CI (`CI=true`).

use std::fs;
use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::Value;

mod common;

use common::binaries_or_skip;

/// Orders with a few rows: the history the reviewed migrations build on.
const HISTORY: &str = "CREATE TABLE orders (id bigint PRIMARY KEY, status text, total integer);
INSERT INTO orders VALUES (1, 'paid', 10), (2, 'open', 20);
";

/// A test's own migrations directory and `XDG_CACHE_HOME`, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str, migrations: &[(&str, &str)]) -> Scratch {
        let dir = std::env::temp_dir().join(format!(
            "migagent-validate-review-{name}-{}",
            std::process::id()
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("migrations")).unwrap();
        for (file, sql) in migrations {
            fs::write(dir.join("migrations").join(file), sql).unwrap();
        }
        Scratch(dir)
    }

    /// `migagent review migrations --format json <args>`: the exit code and the report.
    fn review(&self, args: &[&str]) -> (Option<i32>, Value) {
        let output: Output = Command::new(env!("CARGO_BIN_EXE_migagent"))
            .args(["review", "migrations", "--format", "json", "--llm", "off"])
            .args(args)
            .current_dir(&self.0)
            .env("XDG_CACHE_HOME", self.0.join("cache"))
            .env_remove("MIGAGENT_SHADOW_URL")
            .output()
            .expect("the binary runs");
        let report = serde_json::from_slice(&output.stdout).unwrap_or_else(|err| {
            panic!(
                "not JSON ({err}): {}\n{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            )
        });
        (output.status.code(), report)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// The reviewed migration whose path ends with `file`.
fn migration<'a>(report: &'a Value, file: &str) -> &'a Value {
    report["migrations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["path"].as_str().unwrap().ends_with(file))
        .unwrap_or_else(|| panic!("no {file} in {report:#}"))
}

/// The validation of the migration's built-in draft of `kind`, from `advice.drafts`.
fn builtin_validation<'a>(migration: &'a Value, kind: &str) -> &'a Value {
    let drafts = migration["advice"]["drafts"].as_array().unwrap();
    let draft = drafts
        .iter()
        .find(|d| d["kind"] == kind && d["source"] == "builtin")
        .unwrap_or_else(|| panic!("no built-in {kind} in {migration:#}"));
    &draft["validation"]
}

/// The findings, without what only advice adds.
fn findings(report: &Value) -> Vec<Value> {
    report["migrations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["findings"].clone())
        .collect()
}

#[test]
fn builtin_drafts_are_accepted_or_rejected_with_their_reason() {
    if binaries_or_skip().is_none() {
        return;
    }
    let scratch = Scratch::new(
        "statuses",
        &[
            ("0001_orders.sql", HISTORY),
            (
                "0002_index.sql",
                "CREATE INDEX orders_status_idx ON orders (status);\n",
            ),
            (
                "0003_widen.sql",
                "ALTER TABLE orders ALTER COLUMN total TYPE bigint;\n",
            ),
        ],
    );
    let (code, report) = scratch.review(&[]);
    assert_eq!(code, Some(1), "{report:#}");

    // CREATE INDEX CONCURRENTLY outside a transaction, and DROP INDEX: both proven.
    let index = migration(&report, "0002_index.sql");
    for kind in ["rewrite", "down"] {
        let validation = builtin_validation(index, kind);
        assert_eq!(validation["status"], "accepted", "{kind}: {index:#}");
        assert_eq!(validation["reasons"], Value::Array(Vec::new()), "{kind}");
        assert_eq!(index["advice"][kind]["validation"], *validation, "{kind}");
    }
    let steps = index["advice"]["rewrite"]["steps"].as_array().unwrap();
    assert!(
        steps.iter().any(|step| step["transactional"] == false
            && step["sql"].as_str().unwrap().contains("CONCURRENTLY")),
        "{steps:#?}"
    );

    // No fixer avoids the type change's rewrite: the rewrite keeps it, and the validator says so.
    let widen = migration(&report, "0003_widen.sql");
    let validation = builtin_validation(widen, "rewrite");
    assert_eq!(validation["status"], "rejected", "{widen:#}");
    let reasons: Vec<&str> = validation["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("rewrites the existing table orders under ACCESS EXCLUSIVE")),
        "{reasons:#?}"
    );
    assert_eq!(builtin_validation(widen, "down")["status"], "accepted");
}

#[test]
fn without_a_shadow_drafts_are_skipped_with_the_reason() {
    let scratch = Scratch::new(
        "off",
        &[
            ("0001_orders.sql", HISTORY),
            (
                "0002_index.sql",
                "CREATE INDEX orders_status_idx ON orders (status);\n",
            ),
        ],
    );
    let (code, report) = scratch.review(&["--shadow", "off"]);
    assert_eq!(code, Some(1), "{report:#}");
    let index = migration(&report, "0002_index.sql");
    for kind in ["rewrite", "down"] {
        let validation = builtin_validation(index, kind);
        assert_eq!(validation["status"], "skipped", "{kind}: {index:#}");
        let reason = validation["reasons"][0].as_str().unwrap();
        assert!(
            reason.starts_with("not validated: no shadow database ran"),
            "{reason}"
        );
    }
}

#[test]
fn validation_changes_neither_findings_nor_exit_code() {
    if binaries_or_skip().is_none() {
        return;
    }
    // Two reviewed migrations with warnings: the second is traced after the first's baseline was
    // kept (its database closed, copied and opened again).
    let scratch = Scratch::new(
        "unchanged",
        &[
            ("0001_orders.sql", HISTORY),
            ("0002_note.sql", "ALTER TABLE orders ADD COLUMN note text;\n"),
            (
                "0003_index.sql",
                "ALTER TABLE orders ADD CONSTRAINT orders_total_positive CHECK (total > 0) NOT VALID;\n",
            ),
        ],
    );
    let fail_on = ["--fail-on", "warning"];
    let (advised_code, advised) =
        scratch.review(&[&fail_on[..], &["--advise-on", "warning"]].concat());
    let (plain_code, plain) = scratch.review(&[&fail_on[..], &["--advise-on", "error"]].concat());
    let validated: Vec<&Value> = advised["migrations"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|m| m["advice"]["drafts"].as_array().into_iter().flatten())
        .map(|d| &d["validation"]["status"])
        .collect();
    assert!(
        !validated.is_empty() && validated.iter().all(|s| *s == "accepted"),
        "{advised:#}"
    );
    assert!(
        plain["migrations"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["advice"].is_null()),
        "{plain:#}"
    );
    assert_eq!(advised_code, plain_code);
    assert_eq!(advised_code, Some(1));
    assert_eq!(findings(&advised), findings(&plain));
    // What the shadow saw, without how long it took.
    let traced = |report: &Value| {
        let mut statements: Vec<Value> = report["migrations"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|m| m["statements"].as_array().unwrap().clone())
            .collect();
        for statement in &mut statements {
            statement["trace"]
                .as_object_mut()
                .expect("traced")
                .remove("duration_ms");
        }
        statements
    };
    assert_eq!(traced(&advised), traced(&plain));
}
