//! Hostile migrations reviewed on migagent's own shadow cluster (`--shadow auto`), as a pull request
//! from someone the project does not trust would send them. The migrations run as a role that owns its
//! database and nothing else: programs (`COPY … PROGRAM`), server files (`COPY … TO` a file,
//! `lo_export`, `pg_read_file`, the same through `DO … EXECUTE`), event triggers, `ALTER SYSTEM` and
//! superuser roles all fail, reported as needing superuser; no marker file appears in a directory the
//! server could write to, no secret from migagent's environment appears in any output, and the image
//! cache stays clean (a later run starts from it and works). With `--shadow-superuser` the statements
//! run, yet the server still sees none of migagent's environment and cannot poison the image. A damaged
//! image is rebuilt with a warning; an endless loop and a huge sort are stopped by the limits. Without
//! PostgreSQL installed the tests are skipped, except in CI.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use serde_json::Value;

mod common;

use common::scratch::{json_report, Scratch};
use common::{binaries_or_skip, show};

/// In migagent's environment during every run; it must never come back.
const SECRET: &str = "s3cr3t-token-4f9a2c";

/// The history every case builds on.
const HISTORY: &str = "CREATE TABLE accounts (id int PRIMARY KEY, name text);\n";

/// A test's own project (see [`Scratch`]) with the history, and a directory anyone (the server's OS
/// user included) may write to, where the payloads try to leave their marker.
fn project(name: &str) -> Scratch {
    let scratch = Scratch::with_migrations(name, &[("001_history.sql", HISTORY)]);
    fs::create_dir_all(scratch.path("open")).unwrap();
    for open in [scratch.dir().to_path_buf(), scratch.path("open")] {
        fs::set_permissions(&open, fs::Permissions::from_mode(0o777)).unwrap();
    }
    scratch
}

/// Where a payload tries to write.
fn marker(scratch: &Scratch) -> PathBuf {
    scratch.path("open/marker")
}

/// Writes the reviewed migration, with `MARKER` replaced by the marker's path.
fn write_reviewed(scratch: &Scratch, sql: &str) {
    let sql = sql.replace("MARKER", &marker(scratch).to_string_lossy());
    scratch.write("migrations/002_reviewed.sql", sql);
}

/// `migagent review --shadow auto migrations/002_reviewed.sql <args>` with a secret in the environment.
fn run(scratch: &Scratch, args: &[&str]) -> Output {
    run_with_env(scratch, args, &[])
}

/// The same with more variables in the environment.
fn run_with_env(scratch: &Scratch, args: &[&str], env: &[(&str, &str)]) -> Output {
    scratch
        .review(&[&["--shadow", "auto", "migrations/002_reviewed.sql"], args].concat())
        .env("SECRET_TOKEN", SECRET)
        .envs(env.iter().copied())
        .output()
        .expect("the binary runs")
}

/// Runs with `--format json`; returns the output and the reviewed migration's report.
fn json(scratch: &Scratch, args: &[&str]) -> (Output, Value) {
    let output = run(scratch, &[args, &["--format", "json"]].concat());
    assert_no_secret(&output);
    let migration = json_report(&output)["migrations"][0].clone();
    (output, migration)
}

fn assert_no_secret(output: &Output) {
    let all = show(output);
    assert!(!all.contains(SECRET), "the secret leaked: {all}");
}

/// The messages of the migration's apply-failed findings.
fn apply_failures(migration: &Value) -> Vec<String> {
    migration["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["rule"] == "apply-failed")
        .map(|f| f["message"].as_str().unwrap().to_owned())
        .collect()
}

fn notices(migration: &Value) -> Vec<String> {
    migration["notices"]
        .as_array()
        .map(|notices| {
            notices
                .iter()
                .map(|n| n["message"].as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Reviews `sql` and checks what every case must hold: it failed as needing superuser, no marker,
/// no secret, and the next run starts from a clean image and reviews a harmless migration cleanly.
fn assert_refused_as_on_a_managed_database(name: &str, sql: &str) {
    let scratch = project(name);
    write_reviewed(&scratch, sql);
    let (output, migration) = json(&scratch, &[]);
    assert_eq!(output.status.code(), Some(1), "{}", show(&output));
    let failures = apply_failures(&migration);
    assert_eq!(failures.len(), 1, "{}", show(&output));
    assert!(
        failures[0].contains("needs superuser") && failures[0].contains("managed database"),
        "{}",
        failures[0]
    );
    assert!(!marker(&scratch).exists(), "{name}: the payload ran");
    assert_clean_image_afterwards(&scratch);
}

/// A harmless migration on the same history: reviewed from the image without a failure.
fn assert_clean_image_afterwards(scratch: &Scratch) {
    let images = scratch.image_names();
    assert!(
        images.iter().any(|name| name.starts_with("pg")),
        "the history's image was stored: {images:?}"
    );
    write_reviewed(scratch, "ALTER TABLE accounts ADD COLUMN note text;\n");
    let (output, migration) = json(scratch, &[]);
    assert_eq!(output.status.code(), Some(0), "{}", show(&output));
    assert!(apply_failures(&migration).is_empty(), "{}", show(&output));
}

#[test]
fn copy_from_program_runs_nothing() {
    if binaries_or_skip().is_none() {
        return;
    }
    assert_refused_as_on_a_managed_database(
        "copy-program",
        "CREATE TABLE e (line text);\nCOPY e FROM PROGRAM 'touch MARKER; env';\n",
    );
}

#[test]
fn copy_to_a_file_writes_nothing() {
    if binaries_or_skip().is_none() {
        return;
    }
    assert_refused_as_on_a_managed_database("copy-file", "COPY (SELECT 'pwned') TO 'MARKER';\n");
}

#[test]
fn lo_export_writes_nothing() {
    if binaries_or_skip().is_none() {
        return;
    }
    assert_refused_as_on_a_managed_database(
        "lo-export",
        "SELECT lo_export(lo_from_bytea(0, 'pwned'), 'MARKER');\n",
    );
}

#[test]
fn pg_read_file_reads_nothing() {
    if binaries_or_skip().is_none() {
        return;
    }
    let scratch = project("read-file");
    let secret_file = scratch.path("open/secret.txt");
    fs::write(&secret_file, "file-secret-77c1").unwrap();
    fs::set_permissions(&secret_file, fs::Permissions::from_mode(0o644)).unwrap();
    write_reviewed(
        &scratch,
        &format!(
            "DO $$ BEGIN RAISE EXCEPTION '%', pg_read_file('{}'); END $$;\n",
            secret_file.display()
        ),
    );
    let (output, migration) = json(&scratch, &[]);
    assert!(
        !show(&output).contains("file-secret-77c1"),
        "{}",
        show(&output)
    );
    let failures = apply_failures(&migration);
    assert!(
        failures.len() == 1 && failures[0].contains("needs superuser"),
        "{}",
        show(&output)
    );
}

#[test]
fn do_blocks_running_the_same_through_execute_run_nothing() {
    if binaries_or_skip().is_none() {
        return;
    }
    assert_refused_as_on_a_managed_database(
        "do-execute",
        "CREATE TABLE e (line text);\n\
         DO $$ BEGIN EXECUTE 'COPY e FROM PROGRAM ' || quote_literal('touch MARKER'); END $$;\n",
    );
}

#[test]
fn event_triggers_are_refused() {
    if binaries_or_skip().is_none() {
        return;
    }
    assert_refused_as_on_a_managed_database(
        "event-trigger",
        "CREATE FUNCTION stop_ddl() RETURNS event_trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'no ddl'; END $$;\n\
         CREATE EVENT TRIGGER stop_ddl ON ddl_command_start EXECUTE FUNCTION stop_ddl();\n",
    );
}

#[test]
fn alter_system_is_refused() {
    if binaries_or_skip().is_none() {
        return;
    }
    assert_refused_as_on_a_managed_database(
        "alter-system",
        "ALTER /* x */ SYSTEM SET shared_preload_libraries = 'no_such_lib';\n",
    );
}

#[test]
fn a_superuser_role_is_created_without_its_powers() {
    if binaries_or_skip().is_none() {
        return;
    }
    let scratch = project("create-role");
    write_reviewed(&scratch,
        "CREATE /* x */ ROLE evil SUPERUSER LOGIN IN ROLE pg_execute_server_program;\n\
         DO $$ BEGIN IF (SELECT rolsuper OR pg_has_role('evil', 'pg_execute_server_program', 'MEMBER') \
         FROM pg_roles WHERE rolname = 'evil') THEN RAISE EXCEPTION 'evil got its powers'; END IF; END $$;\n",
    );
    let (output, migration) = json(&scratch, &[]);
    assert!(apply_failures(&migration).is_empty(), "{}", show(&output));
    let notices = notices(&migration);
    assert!(
        notices
            .iter()
            .any(|n| n.contains("SUPERUSER") && n.contains("pg_execute_server_program")),
        "{notices:?}"
    );
    // The role is not in the image: the next run creates it again without a failure.
    let (output, migration) = json(&scratch, &[]);
    assert!(apply_failures(&migration).is_empty(), "{}", show(&output));
}

#[test]
fn alter_role_keeps_only_harmless_changes_to_roles_the_migrations_made() {
    if binaries_or_skip().is_none() {
        return;
    }
    let scratch = project("alter-role");
    write_reviewed(&scratch,
        "CREATE ROLE app LOGIN;\n\
         ALTER /* x */ ROLE app WITH \"superuser\" BYPASSRLS PASSWORD 'p' CONNECTION LIMIT 5;\n\
         ALTER ROLE app SET session_preload_libraries = 'MARKER';\n\
         ALTER ROLE app SET statement_timeout = '8s';\n\
         ALTER ROLE ALL SET search_path = evil;\n\
         ALTER ROLE postgres SET session_preload_libraries = 'MARKER';\n\
         ALTER GROUP pg_execute_server_program ADD USER app;\n\
         DO $$ BEGIN IF (SELECT rolsuper OR rolbypassrls OR rolconnlimit <> 5 \
                            OR pg_has_role('app', 'pg_execute_server_program', 'MEMBER') \
                         FROM pg_roles WHERE rolname = 'app') \
            OR EXISTS (SELECT FROM pg_db_role_setting, unnest(setconfig) c \
                       WHERE c LIKE '%preload%' OR c LIKE 'search_path%') \
            OR NOT (SELECT setconfig = '{statement_timeout=8s}' FROM pg_db_role_setting \
                    WHERE setrole = 'app'::regrole) \
         THEN RAISE EXCEPTION 'roles: %', (SELECT array_agg(s::text) FROM pg_db_role_setting s); END IF; END $$;\n",
    );
    let (output, migration) = json(&scratch, &[]);
    assert!(apply_failures(&migration).is_empty(), "{}", show(&output));
    let notices = notices(&migration);
    for dropped in [
        "\"superuser\", BYPASSRLS, PASSWORD",
        "SET session_preload_libraries",
        "ALTER ROLE ALL",
        "the role postgres",
        "the role pg_execute_server_program",
    ] {
        assert!(
            notices.iter().any(|n| n.contains(dropped)),
            "{dropped}: {notices:?}"
        );
    }
    assert_clean_image_afterwards(&scratch);
}

/// A pull request can edit migagent.toml: an untrusted extension there (file_fdw reads the server's
/// files for whoever may create its foreign tables) is refused unless the job opts in or passes the flag;
/// trusted ones need nothing.
#[test]
fn a_repository_cannot_allow_an_untrusted_extension_on_its_own_word() {
    if binaries_or_skip().is_none() {
        return;
    }
    let scratch = project("extensions");
    let config = scratch.path("migagent.toml");
    fs::write(
        &config,
        "[shadow]\nextensions = [\"file_fdw\", \"citext\"]\n",
    )
    .unwrap();
    write_reviewed(
        &scratch,
        "CREATE EXTENSION file_fdw;\nCREATE EXTENSION citext;\n",
    );
    let output = run(&scratch, &["--no-cache"]);
    let all = show(&output);
    assert_eq!(output.status.code(), Some(2), "{all}");
    assert!(
        all.contains("allows the extension(s) file_fdw under `[shadow] extensions`")
            && all.contains("Pass `--shadow-extension file_fdw` in the CI job")
            && all.contains("MIGAGENT_TRUST_CONFIG_EXTENSIONS=1"),
        "{all}"
    );
    for (args, env) in [
        (&["--shadow-extension", "file_fdw"][..], &[][..]),
        (&[][..], &[("MIGAGENT_TRUST_CONFIG_EXTENSIONS", "1")][..]),
    ] {
        let mut args = args.to_vec();
        args.extend(["--no-cache", "--format", "json"]);
        let output = run_with_env(&scratch, &args, env);
        assert_eq!(
            output.status.code(),
            Some(0),
            "{args:?} {env:?}: {}",
            show(&output)
        );
    }
    fs::write(&config, "[shadow]\nextensions = [\"citext\"]\n").unwrap();
    write_reviewed(&scratch, "CREATE EXTENSION citext;\n");
    let output = run(&scratch, &["--no-cache"]);
    assert_eq!(output.status.code(), Some(0), "{}", show(&output));
}

/// With --shadow-superuser the payload runs, but the server's environment holds none of migagent's.
#[test]
fn the_server_never_sees_migagents_environment() {
    if binaries_or_skip().is_none() {
        return;
    }
    let scratch = project("env");
    write_reviewed(
        &scratch,
        "CREATE TABLE e (line text);\n\
         COPY e FROM PROGRAM 'env';\n\
         DO $$ BEGIN RAISE EXCEPTION 'env: %', (SELECT string_agg(line, ' ') FROM e); END $$;\n",
    );
    let (output, migration) = json(&scratch, &["--shadow-superuser"]);
    let failures = apply_failures(&migration);
    assert!(
        failures.len() == 1 && failures[0].contains("PATH="),
        "the payload should have printed the server's environment: {}",
        show(&output)
    );
    for format in ["text", "sarif", "github", "markdown"] {
        let output = run(&scratch, &["--shadow-superuser", "--format", format]);
        assert!(output.status.code() == Some(1), "{}", show(&output));
        assert_no_secret(&output);
    }
}

/// With --shadow-superuser, ALTER SYSTEM and an event trigger succeed in the reviewed migration, and
/// still never reach the image: the next runs start from it and work.
#[test]
fn the_image_cannot_be_poisoned_even_by_a_superuser_migration() {
    if binaries_or_skip().is_none() {
        return;
    }
    let scratch = project("poison");
    write_reviewed(&scratch,
        "ALTER /* x */ SYSTEM SET shared_preload_libraries = 'no_such_lib';\n\
         CREATE FUNCTION stop_ddl() RETURNS event_trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'no ddl'; END $$;\n\
         CREATE EVENT TRIGGER stop_ddl ON ddl_command_start EXECUTE FUNCTION stop_ddl();\n",
    );
    for _ in 0..2 {
        let (output, migration) = json(&scratch, &["--shadow-superuser"]);
        assert_ne!(output.status.code(), Some(2), "{}", show(&output));
        assert!(apply_failures(&migration).is_empty(), "{}", show(&output));
    }
    write_reviewed(&scratch, "ALTER TABLE accounts ADD COLUMN note text;\n");
    let (output, migration) = json(&scratch, &["--shadow-superuser"]);
    assert_eq!(output.status.code(), Some(0), "{}", show(&output));
    assert!(apply_failures(&migration).is_empty(), "{}", show(&output));
}

/// The largest file under `dir`.
fn largest_file(dir: &Path) -> PathBuf {
    let mut best: Option<(u64, PathBuf)> = None;
    for entry in fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        let candidate = if path.is_dir() {
            let file = largest_file(&path);
            (fs::metadata(&file).map_or(0, |m| m.len()), file)
        } else {
            (entry.metadata().unwrap().len(), path)
        };
        if best.as_ref().is_none_or(|(size, _)| candidate.0 > *size) {
            best = Some(candidate);
        }
    }
    best.map(|(_, path)| path).unwrap_or_else(|| dir.to_owned())
}

#[test]
fn a_damaged_image_is_discarded_and_rebuilt() {
    if binaries_or_skip().is_none() {
        return;
    }
    let scratch = project("damaged");
    write_reviewed(&scratch, "ALTER TABLE accounts ADD COLUMN note text;\n");
    let (output, first) = json(&scratch, &[]);
    assert_eq!(output.status.code(), Some(0), "{}", show(&output));
    let image = scratch
        .image_names()
        .into_iter()
        .find(|name| name.starts_with("pg"))
        .expect("an image of the history");
    let data = scratch.images().join(&image).join("data");
    let victim = largest_file(&data);
    let size = fs::metadata(&victim).unwrap().len();
    fs::OpenOptions::new()
        .write(true)
        .open(&victim)
        .unwrap()
        .set_len(size / 2)
        .unwrap();

    let (output, second) = json(&scratch, &[]);
    assert_eq!(output.status.code(), Some(0), "{}", show(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("damaged") && stderr.contains("discarded"),
        "{}",
        show(&output)
    );
    assert_eq!(first["findings"], second["findings"]);
    // Rebuilt: the third run uses the new image without a word.
    let (output, _) = json(&scratch, &[]);
    assert!(
        !String::from_utf8_lossy(&output.stderr).contains("damaged"),
        "{}",
        show(&output)
    );
}

#[test]
fn an_endless_loop_is_stopped_even_when_it_lifts_the_timeout_and_ignores_cancels() {
    if binaries_or_skip().is_none() {
        return;
    }
    let scratch = project("endless");
    write_reviewed(&scratch,
        "SET statement_timeout = 0;\n\
         DO $$ BEGIN LOOP BEGIN PERFORM pg_sleep(0.05); EXCEPTION WHEN query_canceled THEN NULL; END; END LOOP; END $$;\n",
    );
    let started = Instant::now();
    let (output, migration) = json(&scratch, &["--statement-timeout", "2s"]);
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "{:?}",
        started.elapsed()
    );
    let failures = apply_failures(&migration);
    assert!(
        failures.len() == 1 && failures[0].contains("--statement-timeout"),
        "{}",
        show(&output)
    );

    write_reviewed(&scratch, "DO $$ BEGIN LOOP END LOOP; END $$;\n");
    let (output, migration) = json(&scratch, &["--statement-timeout", "2s"]);
    let failures = apply_failures(&migration);
    assert!(
        failures.len() == 1
            && failures[0].contains("57014")
            && failures[0].contains("--statement-timeout"),
        "{}",
        show(&output)
    );
}

#[test]
fn a_statement_beyond_the_temporary_file_limit_is_stopped() {
    if binaries_or_skip().is_none() {
        return;
    }
    let scratch = project("temp-files");
    write_reviewed(
        &scratch,
        "SET work_mem = '64kB';\n\
         CREATE TABLE sorted AS SELECT g FROM generate_series(1, 3000000) g ORDER BY g DESC;\n",
    );
    let (output, migration) = json(&scratch, &["--shadow-max-size", "100MB"]);
    let failures = apply_failures(&migration);
    assert!(
        failures.len() == 1
            && failures[0].contains("temp_file_limit")
            && failures[0].contains("--shadow-max-size"),
        "{}",
        show(&output)
    );
}

/// A migration that ends its own session gets the server's 57P01 like one the shadow ended, so the
/// hint names both causes instead of blaming the limits alone.
#[test]
fn a_migration_ending_its_own_session_is_told_so() {
    if binaries_or_skip().is_none() {
        return;
    }
    let scratch = project("self-terminate");
    write_reviewed(
        &scratch,
        "CREATE TABLE kept (id int);\n\
         DO $$ BEGIN EXECUTE 'SELECT pg_' || 'terminate_backend(pg_backend_pid())'; END $$;\n",
    );
    let (output, migration) = json(&scratch, &[]);
    let failures = apply_failures(&migration);
    assert!(
        failures.len() == 1
            && failures[0].contains("57P01")
            && failures[0].contains("pg_terminate_backend on its own session")
            && failures[0].contains("--statement-timeout"),
        "{}",
        show(&output)
    );
}

/// The hint that suggests `--shadow-extension` names the extension the migrations asked for: one
/// PostgreSQL has but does not trust (a reviewed migration's finding), and one this server does not
/// have at all (a history file, reviewed statically from there on).
#[test]
fn the_extension_hint_names_the_extension() {
    if binaries_or_skip().is_none() {
        return;
    }
    let scratch = project("extension-hint");
    write_reviewed(&scratch, "CREATE EXTENSION dblink;\n");
    let (output, migration) = json(&scratch, &["--no-cache"]);
    let failures = apply_failures(&migration);
    assert_eq!(failures.len(), 1, "{}", show(&output));
    assert!(
        failures[0].contains("`--shadow-extension dblink`")
            && failures[0].contains("`[shadow] extensions = [\"dblink\"]`"),
        "{}",
        failures[0]
    );

    let scratch = Scratch::with_migrations(
        "extension-hint-history",
        &[("001_history.sql", "CREATE EXTENSION pg_net;\n")],
    );
    write_reviewed(&scratch, "CREATE TABLE t (id bigint);\n");
    let (output, _) = json(&scratch, &["--no-cache"]);
    assert_eq!(output.status.code(), Some(0), "{}", show(&output));
    let all = show(&output);
    assert!(
        all.contains("does not have the extension pg_net installed")
            && all.contains("`--shadow-extension pg_net`"),
        "{all}"
    );
}
