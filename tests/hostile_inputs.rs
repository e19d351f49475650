//! Inputs a hostile pull request can bring, fed to the `migagent` binary as CI runs it: links out of the
//! reviewed directory, entries that cannot be read as files, names that forge report lines, comments that
//! swallow statements, expressions deep enough to overflow a stack, and a `migagent.toml` that names
//! programs to run. Nothing may leak, hang, crash, or go unreviewed while the run passes.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use proptest::prelude::*;
use serde_json::Value;

mod common;

use common::scratch::Scratch;

/// Longest any of these reviews may take: a run that blocks (on a FIFO, say) fails instead of hanging.
const DEADLINE: Duration = Duration::from_secs(120);

/// Runs the binary in `cwd` without a shadow database (unless the test asks for one) and with a
/// private cache, killing it at [`DEADLINE`]. Its output goes to files (a full pipe would block it).
fn migagent_with(args: &[&str], cwd: &Path, env: &[(&str, &str)]) -> Output {
    static RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let run = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let capture = |stream: &str| {
        std::env::temp_dir().join(format!(
            "migagent-hostile-{}-{run}.{stream}",
            std::process::id()
        ))
    };
    let (out_path, err_path) = (capture("out"), capture("err"));
    let mut args = args.to_vec();
    if args.first() == Some(&"review") && !args.contains(&"--shadow") {
        args.splice(1..1, ["--shadow", "off"]);
    }
    let mut command = Command::new(env!("CARGO_BIN_EXE_migagent"));
    command
        .args(&args)
        .current_dir(cwd)
        .env("NO_COLOR", "1")
        .env("XDG_CACHE_HOME", cwd.join(".cache"))
        .env_remove("MIGAGENT_TRUST_CONFIG_PG_BIN")
        .env_remove("MIGAGENT_TRUST_CONFIG_SUPERUSER")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap());
    for (key, value) in env {
        command.env(key, value);
    }
    let mut child = command.spawn().expect("the binary runs");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > DEADLINE {
            child.kill().unwrap();
            panic!("migagent {args:?} still ran after {DEADLINE:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let read = |path: &Path| {
        let bytes = std::fs::read(path).unwrap();
        let _ = std::fs::remove_file(path);
        bytes
    };
    Output {
        status,
        stdout: read(&out_path),
        stderr: read(&err_path),
    }
}

fn migagent(args: &[&str], cwd: &Path) -> Output {
    migagent_with(args, cwd, &[])
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Both reports of one review: (text output, JSON report, exit code of each).
fn both_reports(args: &[&str], cwd: &Path) -> (String, Value, [Option<i32>; 2]) {
    let text = migagent(args, cwd);
    let json_args: Vec<&str> = args.iter().copied().chain(["--format", "json"]).collect();
    let json = migagent(&json_args, cwd);
    let report = serde_json::from_slice(&json.stdout)
        .unwrap_or_else(|err| panic!("{err}: {}{}", stdout(&json), stderr(&json)));
    (
        stdout(&text) + &stderr(&text),
        report,
        [text.status.code(), json.status.code()],
    )
}

fn mkfifo(path: &Path) {
    let status = Command::new("mkfifo").arg(path).status().unwrap();
    assert!(status.success(), "mkfifo {}", path.display());
}

/// The `problems` (or `notices`) of a JSON report as (path, message).
fn listed(report: &Value, key: &str) -> Vec<(String, String)> {
    report[key]
        .as_array()
        .unwrap_or_else(|| panic!("no {key} in {report}"))
        .iter()
        .map(|entry| {
            (
                entry["path"].as_str().unwrap().to_owned(),
                entry["message"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn reviewed_paths(report: &Value) -> Vec<String> {
    report["migrations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["path"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn a_link_out_of_the_directory_is_not_followed_and_its_content_never_printed() {
    let scratch = Scratch::new("link-out");
    scratch
        .write(
            "secret/file",
            "CREATE TABLE leaked_7c1e (token text DEFAULT 'TOP-SECRET-7c1e');\n",
        )
        .write("db/0001_a.sql", "CREATE TABLE a (id int);\n")
        .write("db/0003_c.sql", "DROP TABLE a;\n");
    symlink(scratch.path("secret/file"), scratch.path("db/0002_b.sql")).unwrap();
    // A link into the directory itself is an ordinary migration.
    symlink("0001_a.sql", scratch.path("db/0004_same.sql")).unwrap();

    let (text, report, codes) = both_reports(&["review", "db"], scratch.dir());
    assert_eq!(codes, [Some(2), Some(2)], "{text}");
    for output in [&text, &report.to_string()] {
        assert!(!output.contains("TOP-SECRET"), "{output}");
        assert!(!output.contains("leaked_7c1e"), "{output}");
    }
    assert!(
        text.contains(&format!(
            "error: db/0002_b.sql: a symbolic link to {}, outside the directory under review: not followed",
            scratch.path("secret/file").display()
        )),
        "{text}"
    );
    let problems = listed(&report, "problems");
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].0, "db/0002_b.sql");
    // The other migrations are still reviewed.
    assert_eq!(
        reviewed_paths(&report),
        ["db/0001_a.sql", "db/0003_c.sql", "db/0004_same.sql"]
    );
    assert!(text.contains("error[drop-table]"), "{text}");

    // Named on its own, the link is refused with the same reason.
    let (text, _, codes) = both_reports(&["review", "db/0002_b.sql"], scratch.dir());
    assert_eq!(codes, [Some(2), Some(2)], "{text}");
    assert!(
        text.contains("outside the directory under review"),
        "{text}"
    );
    assert!(!text.contains("TOP-SECRET"), "{text}");
}

#[test]
fn a_fifo_does_not_block_the_run_and_is_reported() {
    let scratch = Scratch::new("fifo");
    scratch.write("db/0001_a.sql", "CREATE TABLE a (id int);\n");
    mkfifo(&scratch.path("db/0003_c.sql"));
    mkfifo(&scratch.path("db/notes"));
    let (text, report, codes) = both_reports(&["review", "db"], scratch.dir());
    assert_eq!(codes, [Some(2), Some(2)], "{text}");
    assert_eq!(
        listed(&report, "problems"),
        [(
            "db/0003_c.sql".to_owned(),
            "a named pipe (FIFO), not a file: not opened (reading it could block the review forever); \
             it is named like a plain migration, so a migration went unreviewed: make it a regular file \
             of the directory, or remove it"
                .to_owned()
        )]
    );
    // An entry that would not have been a migration is a notice, which does not fail the run.
    let notices = listed(&report, "notices");
    assert_eq!(notices.len(), 1, "{notices:?}");
    assert_eq!(notices[0].0, "db/notes");
    assert!(notices[0]
        .1
        .ends_with("skipped (it would not be a plain migration)"));
    assert!(
        text.contains("note: db/notes: a named pipe (FIFO)"),
        "{text}"
    );

    std::fs::remove_file(scratch.path("db/0003_c.sql")).unwrap();
    let output = migagent(&["review", "db"], scratch.dir());
    assert_eq!(output.status.code(), Some(0), "{}", stdout(&output));
}

#[test]
fn loops_dangling_links_and_directories_named_like_migrations_are_reported() {
    let scratch = Scratch::new("broken");
    scratch.write("db/0001_a.sql", "CREATE TABLE a (id int);\n");
    symlink("0002_loop.sql", scratch.path("db/0002_loop.sql")).unwrap();
    symlink("0003_b.sql", scratch.path("db/0003_a.sql")).unwrap();
    symlink("0003_a.sql", scratch.path("db/0003_b.sql")).unwrap();
    symlink("gone.sql", scratch.path("db/0004_dangling.sql")).unwrap();
    // Running as root, permission bits do not stop a read: an entry that cannot be read as a file is
    // a directory where a migration file is expected.
    std::fs::create_dir_all(scratch.path("db/0005_dir.sql")).unwrap();
    let (text, report, codes) = both_reports(&["review", "db"], scratch.dir());
    assert_eq!(codes, [Some(2), Some(2)], "{text}");
    let problems = listed(&report, "problems");
    let paths: Vec<&str> = problems.iter().map(|(path, _)| path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "db/0002_loop.sql",
            "db/0003_a.sql",
            "db/0003_b.sql",
            "db/0004_dangling.sql",
            "db/0005_dir.sql"
        ]
    );
    assert!(problems[0]
        .1
        .starts_with("a symbolic link that cannot be resolved"));
    assert!(problems[3]
        .1
        .starts_with("a symbolic link to gone.sql, which does not exist"));
    assert!(problems[4].1.starts_with("a directory, not a file"));
    assert_eq!(reviewed_paths(&report), ["db/0001_a.sql"]);
}

#[test]
fn a_file_name_that_is_not_utf8_is_reviewed_and_printed_escaped() {
    let scratch = Scratch::new("latin1");
    scratch
        .write("db/0001_a.sql", "CREATE TABLE a (id int);\n")
        .write(OsStr::from_bytes(b"db/0002_caf\xe9.sql"), "DROP TABLE a;\n");
    let (text, report, codes) = both_reports(&["review", "db"], scratch.dir());
    assert_eq!(codes, [Some(1), Some(1)], "{text}");
    assert!(text.contains("--> db/0002_caf\\xe9.sql:1:12"), "{text}");
    assert_eq!(
        reviewed_paths(&report),
        ["db/0001_a.sql", "db/0002_caf\\xe9.sql"]
    );
    assert_eq!(
        report["migrations"][1]["findings"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
}

#[test]
fn names_with_newlines_and_escapes_cannot_forge_report_lines() {
    let scratch = Scratch::new("forged");
    let forged = "0002_x.sql:1:1\nerror: all clear\x1b[2J\u{202e}lqs.sql";
    scratch
        .write("db/0001_a.sql", "CREATE TABLE a (id int);\n")
        .write(
            format!("db/{forged}"),
            "DROP TABLE \"a\x1b]0;owned\x07\";\n",
        );
    let (text, report, codes) = both_reports(&["review", "db"], scratch.dir());
    assert_eq!(codes, [Some(1), Some(1)], "{text}");
    assert!(!text.contains('\x1b'), "{text:?}");
    assert!(!text.contains('\u{202e}'), "{text:?}");
    assert!(
        !text
            .lines()
            .any(|line| line.starts_with("error: all clear")),
        "{text}"
    );
    assert!(
        text.contains("--> db/0002_x.sql:1:1\\nerror: all clear\\x1b[2J\\u{202e}lqs.sql:1:"),
        "{text}"
    );
    // The identifier is escaped in the SQL line and in messages, in both formats.
    assert!(
        text.contains("DROP TABLE \"a\\x1b]0;owned\\x07\""),
        "{text}"
    );
    let migration = &report["migrations"][1];
    assert_eq!(
        migration["path"],
        "db/0002_x.sql:1:1\\nerror: all clear\\x1b[2J\\u{202e}lqs.sql"
    );
    for finding in migration["findings"].as_array().unwrap() {
        for key in ["message", "help"] {
            let message = finding[key].as_str().unwrap();
            assert!(
                !message.chars().any(|c| c.is_control() && c != '\n'),
                "{message:?}"
            );
        }
    }
}

/// A git repository in `dir` whose first commit holds `0001_a.sql`.
fn git_repo(scratch: &Scratch) {
    let git = |args: &[&str]| {
        let output = Command::new("git")
            .args(args)
            .current_dir(scratch.dir())
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("HOME", scratch.dir())
            .output()
            .unwrap();
        assert!(output.status.success(), "git {args:?}: {}", stderr(&output));
    };
    git(&["init", "-q"]);
    scratch.write("db/0001_a.sql", "CREATE TABLE a (id int);\n");
    git(&["add", "."]);
    git(&[
        "-c",
        "user.email=t@example.com",
        "-c",
        "user.name=t",
        "commit",
        "-qm",
        "init",
    ]);
}

#[test]
fn base_reviews_files_whose_names_git_would_quote() {
    let scratch = Scratch::new("base");
    git_repo(&scratch);
    scratch
        .write("db/0002_ünï.sql", "DROP TABLE a;\n")
        .write("db/0003 with space.sql", "DROP TABLE a;\n")
        .write("db/0004_tab\there.sql", "DROP TABLE a;\n")
        .write(OsStr::from_bytes(b"db/0005_caf\xe9.sql"), "DROP TABLE a;\n")
        .write("db/notes.txt", "not a migration\n");
    let (text, report, codes) = both_reports(&["review", "--base", "HEAD", "db"], scratch.dir());
    assert_eq!(codes, [Some(1), Some(1)], "{text}");
    assert_eq!(
        reviewed_paths(&report),
        [
            "db/0002_ünï.sql",
            "db/0003 with space.sql",
            "db/0004_tab\\there.sql",
            "db/0005_caf\\xe9.sql"
        ]
    );
    let output = migagent(&["review", "--base=--output=x", "db"], scratch.dir());
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("a git ref cannot start with `-`"));
    assert!(!scratch.path("x").exists());
}

#[test]
fn an_unterminated_block_comment_is_an_input_error_with_its_position() {
    let scratch = Scratch::new("comment");
    scratch
        .write("db/0001_a.sql", "CREATE TABLE a (id int);\n")
        .write(
            "db/0002_b.sql",
            "SELECT 1;\n  /* harmless /* nested */ but never closed\nDROP TABLE a;\n",
        )
        .write("db/0003_c.sql", "SELECT 1;\n/* a /* b */ c */\nSELECT 2;\n");
    let (text, report, codes) = both_reports(&["review", "db"], scratch.dir());
    assert_eq!(codes, [Some(2), Some(2)], "{text}");
    assert!(
        text.contains("error: db/0002_b.sql:2:3: unterminated block comment starting here"),
        "{text}"
    );
    let problems = report["problems"].as_array().unwrap();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0]["path"], "db/0002_b.sql");
    assert_eq!(
        (problems[0]["line"].as_u64(), problems[0]["column"].as_u64()),
        (Some(2), Some(3))
    );
}

/// A directory holding `initdb`, `pg_ctl` and `postgres` scripts that only record that they ran.
fn fake_pg_bin(scratch: &Scratch, dir: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let marker = scratch.path(format!("{dir}-ran"));
    for program in ["initdb", "pg_ctl", "postgres"] {
        let script = format!(
            "#!/bin/sh\necho {program} >> '{}'\necho 'postgres (PostgreSQL) 15.0'\n",
            marker.display()
        );
        scratch.write(format!("{dir}/{program}"), script);
        let path = scratch.path(format!("{dir}/{program}"));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    marker
}

fn running_as_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").unwrap().uid() == 0
}

#[test]
fn a_repository_cannot_lift_the_shadow_sandbox() {
    let scratch = Scratch::new("superuser");
    git_repo(&scratch);
    scratch.write("migagent.toml", "[shadow]\nsuperuser = true\n");

    let output = migagent(&["review", "--shadow", "auto", "db"], scratch.dir());
    assert_eq!(output.status.code(), Some(2), "{}", stdout(&output));
    assert!(
        stderr(&output).contains("migagent.toml sets `[shadow] superuser = true`")
            && stderr(&output).contains("MIGAGENT_TRUST_CONFIG_SUPERUSER=1"),
        "{}",
        stderr(&output)
    );
    // Without a shadow nothing runs as anyone, so the line does not matter.
    let output = migagent(&["review", "db"], scratch.dir());
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    // The job's own opt-in is honoured (the review then goes on, with or without PostgreSQL here).
    let output = migagent_with(
        &["review", "--shadow", "auto", "db"],
        scratch.dir(),
        &[("MIGAGENT_TRUST_CONFIG_SUPERUSER", "1")],
    );
    assert!(
        !stderr(&output).contains("migagent.toml sets `[shadow] superuser"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn a_repository_cannot_choose_the_programs_migagent_runs() {
    let scratch = Scratch::new("pg-bin");
    git_repo(&scratch);
    let in_repo = fake_pg_bin(&scratch, "tools");
    scratch.write("migagent.toml", "[shadow]\npg-bin = \"tools\"\n");

    // The configured directory is not used on the file's word.
    let output = migagent(&["review", "--shadow", "auto", "db"], scratch.dir());
    assert_eq!(output.status.code(), Some(2), "{}", stdout(&output));
    assert!(
        stderr(&output).contains("migagent.toml sets `[shadow] pg-bin = \"tools\"`")
            && stderr(&output).contains("MIGAGENT_TRUST_CONFIG_PG_BIN=1"),
        "{}",
        stderr(&output)
    );
    assert!(!in_repo.exists(), "a program of the repository ran");
    // Without the shadow's own cluster no program runs, so the line does not matter.
    let output = migagent(&["review", "db"], scratch.dir());
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));

    if !running_as_root() {
        eprintln!(
            "note: not root, so the refusal to run the repository's programs as root is not tested"
        );
        return;
    }
    let opted_in = [("MIGAGENT_TRUST_CONFIG_PG_BIN", "1")];
    for (args, env) in [
        (&["review", "--shadow", "auto", "db"][..], &opted_in[..]),
        (
            &["review", "--shadow", "auto", "--pg-bin", "tools", "db"][..],
            &[][..],
        ),
    ] {
        let output = migagent_with(args, scratch.dir(), env);
        assert_eq!(output.status.code(), Some(2), "{}", stdout(&output));
        assert!(
            stderr(&output).contains("is inside the repository under review"),
            "{}",
            stderr(&output)
        );
        assert!(!in_repo.exists(), "a program of the repository ran as root");
    }

    // Opted in, a directory outside the repository is used.
    let outside = Scratch::new("pg-bin-outside");
    let ran = fake_pg_bin(&outside, "bin");
    scratch.write(
        "migagent.toml",
        format!("[shadow]\npg-bin = \"{}\"\n", outside.path("bin").display()),
    );
    migagent_with(
        &["review", "--shadow", "auto", "db"],
        scratch.dir(),
        &opted_in,
    );
    assert!(ran.exists(), "the opted-in pg-bin was not used");
}

/// PATH may lead into the checkout (`./bin`, `node_modules/.bin`, a directory the job added): programs
/// found there, or through a relative PATH entry, are never run, and the run says which it passed over.
#[test]
fn programs_on_path_inside_the_repository_or_relative_are_never_run() {
    use std::os::unix::fs::PermissionsExt;
    let scratch = Scratch::new("path");
    git_repo(&scratch);
    let in_repo = fake_pg_bin(&scratch, "tools");
    let relative = fake_pg_bin(&scratch, "rel");
    let pg_config_ran = scratch.path("pg_config-ran");
    scratch.write(
        "tools/pg_config",
        format!(
            "#!/bin/sh\necho ran >> '{}'\necho /tmp\n",
            pg_config_ran.display()
        ),
    );
    std::fs::set_permissions(
        scratch.path("tools/pg_config"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    let path = format!(
        "{}:rel:{}",
        scratch.path("tools").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let output = migagent_with(
        &["review", "--shadow", "auto", "db"],
        scratch.dir(),
        &[("PATH", &path)],
    );
    let err = stderr(&output);
    assert!(!in_repo.exists(), "a program of the repository ran: {err}");
    assert!(
        !relative.exists(),
        "a program of a relative PATH entry ran: {err}"
    );
    assert!(
        !pg_config_ran.exists(),
        "the repository's pg_config ran: {err}"
    );
    assert!(
        err.contains("tools/initdb (it is inside the repository under review")
            && err.contains("rel/initdb (found through a relative PATH entry"),
        "{err}"
    );
    // With no PostgreSQL elsewhere on PATH, migagent asks pg_config: not the repository's.
    let tools = scratch.path("tools").display().to_string();
    let output = migagent_with(
        &["review", "--shadow", "auto", "db"],
        scratch.dir(),
        &[("PATH", &tools)],
    );
    let err = stderr(&output);
    assert!(!in_repo.exists() && !pg_config_ran.exists(), "{err}");
    assert!(
        err.contains("tools/pg_config (it is inside the repository under review"),
        "{err}"
    );
}

/// Statements nesting far deeper than any real migration, in every shape that builds deep syntax trees.
fn deep_statements() -> Vec<(&'static str, String)> {
    let chain = |term: &str, operator: &str, n: usize| vec![term; n].join(operator);
    let wrapped = |open: &str, inner: &str, close: &str, n: usize| {
        format!("{}{inner}{}", open.repeat(n), close.repeat(n))
    };
    let do_blocks: String = (0..5_000)
        .map(|i| format!("DO $d{i}$ BEGIN "))
        .chain(["PERFORM 1; ".to_owned()])
        .chain((0..5_000).rev().map(|i| format!("END $d{i}$; ")))
        .collect();
    vec![
        ("plus", format!("SELECT {}", chain("1", "+", 150_000))),
        (
            "parentheses",
            format!("SELECT {}", wrapped("(", "1", ")", 100_000)),
        ),
        (
            "case",
            format!(
                "SELECT {}",
                wrapped("CASE WHEN true THEN ", "1", " END", 40_000)
            ),
        ),
        (
            "and",
            format!(
                "UPDATE t SET a = 1 WHERE {}",
                chain("a = 1", " AND ", 50_000)
            ),
        ),
        (
            "or",
            format!(
                "ALTER TABLE t ADD CONSTRAINT c CHECK ({})",
                chain("a > 1", " OR ", 50_000)
            ),
        ),
        (
            "array",
            format!("SELECT {}", wrapped("ARRAY[", "1", "]", 50_000)),
        ),
        (
            "json",
            format!("SELECT '{}'::jsonb", wrapped("{\"a\":", "1", "}", 100_000)),
        ),
        ("cast", format!("SELECT 1{}", "::int".repeat(100_000))),
        ("not", format!("SELECT {}true", "NOT ".repeat(100_000))),
        (
            "subscript",
            format!("SELECT a{} FROM t", "[1]".repeat(100_000)),
        ),
        (
            "subquery",
            format!("SELECT {}", wrapped("(SELECT ", "1", ")", 30_000)),
        ),
        (
            "function",
            format!("SELECT {}", wrapped("f(", "1", ")", 50_000)),
        ),
        (
            "default",
            format!(
                "CREATE TABLE t2 (a int DEFAULT {})",
                chain("1", " + ", 100_000)
            ),
        ),
        ("do blocks", do_blocks),
    ]
}

#[test]
fn deep_expressions_never_overflow_the_stack() {
    let scratch = Scratch::new("deep");
    scratch.write("db/0000_t.sql", "CREATE TABLE t (a int);\n");
    let statements = deep_statements();
    for (i, (_, sql)) in statements.iter().enumerate() {
        scratch.write(
            format!("db/{:04}_deep.sql", i + 1),
            format!("{sql};\nDROP TABLE t;\n"),
        );
    }
    let output = migagent(&["review", "--format", "json", "db"], scratch.dir());
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert!(
        report["problems"].as_array().unwrap().is_empty(),
        "{}",
        report["problems"]
    );
    let migrations = report["migrations"].as_array().unwrap();
    for ((shape, _), migration) in statements.iter().zip(&migrations[1..]) {
        let deep = &migration["statements"][0];
        let findings = migration["findings"].as_array().unwrap();
        let unparsed = findings.iter().any(|f| f["rule"] == "unparsed-statement");
        assert!(
            deep["parsed"] == true || unparsed,
            "{shape}: neither parsed nor reported: {findings:?}"
        );
        // The statement after it was read and reviewed.
        assert_eq!(
            migration["statements"].as_array().unwrap().len(),
            2,
            "{shape}"
        );
        assert!(
            findings.iter().any(|f| f["rule"] == "drop-table"),
            "{shape}"
        );
    }
}

#[test]
fn deep_expressions_on_the_shadow_leave_no_cluster_behind() {
    let Some(binaries) = common::binaries_or_skip() else {
        return;
    };
    let scratch = Scratch::new("deep-shadow");
    let tmp = scratch.path("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    scratch.write(
        "db/0001_deep.sql",
        format!("SELECT {};\n", vec!["1"; 150_000].join("+")),
    );
    let bin_dir = binaries
        .postgres
        .parent()
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    let output = migagent_with(
        &["review", "--shadow", "auto", "--pg-bin", &bin_dir, "db"],
        scratch.dir(),
        &[("TMPDIR", tmp.to_str().unwrap())],
    );
    let text = stdout(&output);
    assert!(
        matches!(output.status.code(), Some(0 | 1)),
        "{text}{}",
        stderr(&output)
    );
    assert!(text.contains("info[unparsed-statement]"), "{text}");
    assert!(text.contains("shadow: applied on PostgreSQL"), "{text}");
    let left: Vec<_> = std::fs::read_dir(&tmp).unwrap().collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

/// A random expression nesting up to 20,000 levels, built from the wrappers that deepen syntax trees:
/// runs of operators sqlparser reads in a loop (as deep as they are long), each inside one of a few
/// wrappers it reads by recursion (which its recursion limit caps). The first wrapper is the innermost.
fn nested_expression() -> impl Strategy<Value = String> {
    let recursive = prop_oneof![
        Just("({})"),
        Just("NOT {}"),
        Just("-{}"),
        Just("1 * {}"),
        Just("f({}, 2)"),
        Just("CASE WHEN {} THEN 1 ELSE 2 END"),
        Just("ARRAY[{}, 1]"),
        Just("(SELECT {})"),
    ];
    let looped = prop_oneof![
        Just("{} + 1"),
        Just("{} AND true"),
        Just("{} OR a IS NULL"),
        Just("{}::int"),
        Just("{} || 'x'"),
    ];
    let run = (recursive, prop::collection::vec(looped, 0..2_000));
    prop::collection::vec(run, 0..10).prop_map(|runs| {
        let wrappers: Vec<&str> = runs
            .iter()
            .flat_map(|(outer, inner)| inner.iter().chain([outer]).copied())
            .collect();
        let halves: Vec<(&str, &str)> = wrappers
            .iter()
            .map(|wrapper| wrapper.split_once("{}").unwrap())
            .collect();
        let opening = halves.iter().rev().map(|(open, _)| *open);
        let closing = halves.iter().map(|(_, close)| *close);
        opening.chain(["x"]).chain(closing).collect::<String>()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Whatever the nesting, parsing refuses what it cannot bound, and every tree it keeps can be
    /// cloned, printed and dropped on a thread with an ordinary 8 MiB stack: no walk overflows.
    #[test]
    fn parsed_trees_stay_within_the_nesting_bound(expr in nested_expression()) {
        let sql = format!("SELECT {expr}; UPDATE t SET a = {expr} WHERE {expr}");
        let handle = std::thread::Builder::new()
            .stack_size(8 << 20)
            .spawn(move || {
                let parsed = migagent::sql::parse_text(&sql);
                for statement in &parsed.statements {
                    assert!(statement.ast().is_some() || statement.parse_error().is_some());
                    if let Some(ast) = statement.ast() {
                        let copy = ast.clone();
                        assert!(!copy.to_string().is_empty());
                        assert!(!format!("{copy:?}").is_empty());
                    }
                }
            })
            .unwrap();
        prop_assert!(handle.join().is_ok());
    }
}

#[test]
fn a_hostile_config_line_is_quoted_escaped() {
    let scratch = Scratch::new("config-escape");
    scratch
        .write("db/0001_a.sql", "SELECT 1;\n")
        .write("migagent.toml", "fail-on = \"\x1b]0;owned\x07\x1b[2J\"\n");
    let output = migagent(&["review", "db"], scratch.dir());
    assert_eq!(output.status.code(), Some(2));
    let message = stderr(&output);
    assert!(message.contains("\\x1b]0;owned\\x07"), "{message}");
    assert!(!message.contains('\x1b'), "{message:?}");
}
