//! `--base REF`: what a branch changed since its merge base with REF, edited history, shallow clones.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

mod common;

use common::scratch::Scratch;

/// Runs git in `dir` with no user or system configuration.
fn git(dir: &Path, args: &[&str]) -> String {
    let output = Command::new("git")
        .args(["-c", "user.email=t@example.com", "-c", "user.name=t"])
        .args([
            "-c",
            "init.defaultBranch=main",
            "-c",
            "protocol.file.allow=always",
        ])
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", dir)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn write(dir: &Path, name: &str, text: &str) {
    let path = dir.join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn commit(dir: &Path, message: &str) {
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-qm", message]);
}

fn migagent(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_migagent"))
        .arg("review")
        .args(["--shadow", "off"])
        .args(args)
        .current_dir(cwd)
        .env("NO_COLOR", "1")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", cwd)
        .output()
        .expect("the binary runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// main: 0001, 0002; the branch `feature` starts there, then main gains 0004 (after the branch
/// point), and the branch edits 0001, deletes 0002 and adds 0003.
fn diverged_repo(dir: &Path) {
    git(dir, &["init", "-q"]);
    write(
        dir,
        "db/0001_orders.sql",
        "CREATE TABLE orders (id bigint);\n",
    );
    write(dir, "db/0002_tags.sql", "CREATE TABLE tags (id bigint);\n");
    commit(dir, "history");
    git(dir, &["checkout", "-qb", "feature"]);
    git(dir, &["checkout", "-q", "main"]);
    write(dir, "db/0004_main_only.sql", "DROP TABLE tags;\n");
    commit(dir, "main moves on");
    git(dir, &["checkout", "-q", "feature"]);
    write(
        dir,
        "db/0001_orders.sql",
        "CREATE TABLE orders (id bigint);\nALTER TABLE orders ADD COLUMN note text;\n",
    );
    std::fs::remove_file(dir.join("db/0002_tags.sql")).unwrap();
    write(
        dir,
        "db/0003_index.sql",
        "CREATE INDEX orders_note ON orders (note);\n",
    );
    commit(dir, "feature");
}

#[test]
fn base_reviews_what_the_branch_changed_since_the_merge_base() {
    let scratch = Scratch::new("merge-base");
    diverged_repo(scratch.dir());
    let output = migagent(&["--format", "json", "--base", "main", "db"], scratch.dir());
    let report: Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}{}", stdout(&output), stderr(&output)));
    assert_eq!(output.status.code(), Some(1), "{report:#}");
    let findings: Vec<(String, String, u64)> = report["migrations"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|m| {
            m["findings"].as_array().unwrap().iter().map(move |f| {
                (
                    m["path"].as_str().unwrap().to_owned(),
                    f["rule"].as_str().unwrap().to_owned(),
                    f["line"].as_u64().unwrap_or_default(),
                )
            })
        })
        .filter(|(_, rule, _)| rule == "history-modified" || rule == "index-not-concurrent")
        .collect();
    // 0004 landed on main after the branch point: not the branch's change, not a deletion.
    assert_eq!(
        findings,
        [
            ("db/0001_orders.sql".into(), "history-modified".into(), 2),
            ("db/0002_tags.sql".into(), "history-modified".into(), 1),
            ("db/0003_index.sql".into(), "index-not-concurrent".into(), 1),
        ],
        "{report:#}"
    );
    let text = stdout(&migagent(&["--base", "main", "db"], scratch.dir()));
    assert!(
        text.contains("this migration already existed at the merge base with main ("),
        "{text}"
    );
    assert!(text.contains("was deleted since"), "{text}");
    assert!(!text.contains("0004_main_only"), "{text}");
}

#[test]
fn no_changed_migration_exits_0_and_says_so() {
    let scratch = Scratch::new("unchanged");
    diverged_repo(scratch.dir());
    git(scratch.dir(), &["checkout", "-q", "main"]);
    for format in ["text", "json", "github", "sarif"] {
        let output = migagent(&["--format", format, "--base", "HEAD", "db"], scratch.dir());
        assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
        if format == "sarif" {
            let sarif: Value = serde_json::from_slice(&output.stdout).unwrap();
            assert_eq!(sarif["runs"][0]["results"], Value::Array(Vec::new()));
            continue;
        }
        assert!(
            stdout(&output).contains("no migration changed since HEAD"),
            "{format}: {}",
            stdout(&output)
        );
    }
}

#[test]
fn a_shallow_clone_without_the_merge_base_says_to_fetch_more() {
    let scratch = Scratch::new("shallow");
    let origin = scratch.path("origin");
    std::fs::create_dir_all(&origin).unwrap();
    diverged_repo(&origin);
    let url = format!("file://{}", origin.display());
    git(
        scratch.dir(),
        &[
            "clone", "-q", "--depth", "1", "--branch", "feature", &url, "clone",
        ],
    );
    let clone = scratch.path("clone");
    git(
        &clone,
        &[
            "fetch",
            "-q",
            "--depth",
            "1",
            "origin",
            "main:refs/remotes/origin/main",
        ],
    );
    let output = migagent(&["--base", "origin/main", "db"], &clone);
    assert_eq!(output.status.code(), Some(2), "{}", stdout(&output));
    let message = stderr(&output);
    assert!(message.contains("this clone is shallow"), "{message}");
    assert!(message.contains("fetch-depth: 0"), "{message}");
    assert!(message.contains("git fetch --deepen"), "{message}");
    let output = migagent(&["--base", "origin/nope", "db"], &clone);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("git does not know `origin/nope`"),
        "{}",
        stderr(&output)
    );
}
