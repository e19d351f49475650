//! The pull-request comment step of `action.yml`, run as GitHub's runner runs it (bash with `-eo
//! pipefail`) against a stand-in for `gh` that answers from a list of comments: it finds migagent's
//! previous report by the marker line alone, whoever posted it, prefers the token's own, passes over
//! one the token may not edit, and posts a new comment only when there is none to update.

use std::path::{Path, PathBuf};
use std::process::Command;

const ACTION: &str = include_str!("../action.yml");

/// A stand-in for `gh api`: `user` answers `$FAKE_LOGIN` (or fails as for the Actions token, which
/// has no user), the comment list is `comments.json` through the `--jq` filter, a PATCH of a comment
/// listed in `uneditable` is refused, and every write is recorded in `writes`.
const FAKE_GH: &str = r#"#!/bin/bash
if [ "$1 $2" = "api user" ]; then
  if [ -n "$FAKE_LOGIN" ]; then echo "$FAKE_LOGIN"; exit 0; fi
  echo "HTTP 403: Resource not accessible by integration" >&2; exit 1
fi
if [ "$1 $2" = "api --paginate" ] && [ "$4" = "--jq" ]; then
  exec jq -r "$5" "$FAKE_DIR/comments.json"
fi
if [ "$1 $2" = "api --method" ]; then
  if [ "$3" = PATCH ] && grep -qx "${4##*/}" "$FAKE_DIR/uneditable"; then
    echo "HTTP 403: You must have write access to edit this comment" >&2; exit 1
  fi
  echo "$3 $4" >> "$FAKE_DIR/writes"; exit 0
fi
echo "unexpected gh call: $*" >&2; exit 2
"#;

const MARKER: &str = "<!-- migagent-report -->";

/// The `run:` script of the step named `name`, without its indentation.
fn step_script(name: &str) -> String {
    let mut lines = ACTION
        .lines()
        .skip_while(|l| l.trim() != format!("- name: {name}"));
    lines.next().expect("the step exists");
    let run = lines
        .find(|l| l.trim() == "run: |")
        .expect("the step runs a script");
    let run_indent = run.len() - run.trim_start().len();
    let body: Vec<&str> = lines
        .take_while(|l| l.trim().is_empty() || l.len() - l.trim_start().len() > run_indent)
        .collect();
    let indent = body
        .iter()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.len() - l.trim_start().len())
        .min()
        .unwrap_or(0);
    body.iter()
        .map(|l| l.get(indent..).unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

/// One comment of the pull request: its id, author and body.
#[derive(Clone)]
struct Comment(u64, &'static str, &'static str);

/// A pull request's comments, which of them the token may not edit, and the token's user, if any.
struct Setup<'a> {
    comments: &'a [Comment],
    uneditable: &'a [u64],
    login: Option<&'a str>,
    findings: usize,
}

/// Runs the comment step and returns what it wrote to GitHub (`PATCH …/comments/ID`,
/// `POST …/comments`), or `None` when `jq` is not installed.
fn comment_step(name: &str, setup: &Setup) -> Option<Vec<String>> {
    if Command::new("jq").arg("--version").output().is_err() {
        eprintln!("skipped: the comment step needs jq");
        return None;
    }
    let dir: PathBuf =
        std::env::temp_dir().join(format!("migagent-action-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("bin")).unwrap();
    let gh = dir.join("bin/gh");
    std::fs::write(&gh, FAKE_GH).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&gh, std::fs::Permissions::from_mode(0o755)).unwrap();
    let comments: Vec<serde_json::Value> = setup
        .comments
        .iter()
        .map(|Comment(id, login, body)| {
            serde_json::json!({"id": id, "user": {"login": login, "type": "User"}, "body": body})
        })
        .collect();
    write(
        &dir,
        "comments.json",
        &serde_json::to_string(&comments).unwrap(),
    );
    let uneditable: Vec<String> = setup.uneditable.iter().map(u64::to_string).collect();
    write(&dir, "uneditable", &(uneditable.join("\n") + "\n"));
    write(&dir, "report.md", &format!("{MARKER}\nthe report"));
    write(
        &dir,
        "report.json",
        &format!(
            r#"{{"summary": {{"errors": {}, "warnings": 0, "infos": 0}}, "problems": []}}"#,
            setup.findings
        ),
    );
    let path = format!(
        "{}:{}",
        dir.join("bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let output = Command::new("bash")
        .args(["--noprofile", "--norc", "-eo", "pipefail", "-c"])
        .arg(step_script("Comment on the pull request"))
        .env("PATH", path)
        .env("FAKE_DIR", &dir)
        .env("FAKE_LOGIN", setup.login.unwrap_or(""))
        .env("GH_TOKEN", "t")
        .env("REPOSITORY", "o/r")
        .env("PULL_REQUEST", "7")
        .env("MARKDOWN", dir.join("report.md"))
        .env("JSON", dir.join("report.json"))
        .output()
        .expect("bash runs");
    assert!(
        output.status.success(),
        "{name}: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let writes = std::fs::read_to_string(dir.join("writes")).unwrap_or_default();
    let _ = std::fs::remove_dir_all(&dir);
    Some(writes.lines().map(str::to_owned).collect())
}

fn write(dir: &Path, name: &str, contents: &str) {
    std::fs::write(dir.join(name), contents).unwrap();
}

const REPORT: &str = "<!-- migagent-report -->\nold report";

#[test]
fn the_previous_report_is_found_by_its_marker_whoever_posted_it() {
    let others = [
        Comment(1, "carol", "looks good, but see the comment below"),
        Comment(
            2,
            "carol",
            "quoting <!-- migagent-report --> mid-text is no report",
        ),
    ];
    // Posted by a person's token (a User account, not a bot): updated in place.
    let comments = [&others[..], &[Comment(11, "alice", REPORT)]].concat();
    let setup = Setup {
        comments: &comments,
        uneditable: &[],
        login: None,
        findings: 1,
    };
    let Some(writes) = comment_step("user", &setup) else {
        return;
    };
    assert_eq!(writes, ["PATCH repos/o/r/issues/comments/11"]);

    // The newest the token may edit; one it may not is passed over.
    let comments = [Comment(11, "alice", REPORT), Comment(12, "bob", REPORT)];
    let setup = Setup {
        comments: &comments,
        uneditable: &[12],
        login: None,
        findings: 1,
    };
    assert_eq!(
        comment_step("uneditable", &setup).unwrap(),
        ["PATCH repos/o/r/issues/comments/11"]
    );

    // The token's own report first, even when another is newer.
    let setup = Setup {
        uneditable: &[],
        login: Some("alice"),
        ..setup
    };
    assert_eq!(
        comment_step("own", &setup).unwrap(),
        ["PATCH repos/o/r/issues/comments/11"]
    );
}

#[test]
fn a_new_comment_only_when_there_is_none_to_update() {
    let report = [Comment(11, "github-actions[bot]", REPORT)];
    let setup = Setup {
        comments: &report,
        uneditable: &[11],
        login: None,
        findings: 0,
    };
    let Some(writes) = comment_step("refused", &setup) else {
        return;
    };
    // The earlier report says there were findings: a new one says there are none now.
    assert_eq!(writes, ["POST repos/o/r/issues/7/comments"]);
    let setup = Setup {
        comments: &[],
        ..setup
    };
    assert_eq!(comment_step("quiet", &setup).unwrap(), Vec::<String>::new());
    let setup = Setup {
        findings: 2,
        ..setup
    };
    assert_eq!(
        comment_step("first", &setup).unwrap(),
        ["POST repos/o/r/issues/7/comments"]
    );
}
