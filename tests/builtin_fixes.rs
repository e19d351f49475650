//! The built-in fixers against a real PostgreSQL: for every rule whose document's bad example gets a
//! fix, the rewrite draft of that example runs on a database of migagent's own ephemeral cluster and
//! leaves the same schema as the example itself (compared with the shadow's schema snapshots), and
//! migagent's rules raise no error on the rewrite. Also snapshot tests of each fixer's drafts
//! (tests/snapshots/builtin_drafts.txt; `MIGAGENT_UPDATE_SNAPSHOTS=1` rewrites it after an intended
//! change — review the diff).

use std::fmt::Write as _;
use std::path::Path;

use migagent::advice::builtin::{drafts, BuiltinDrafts};
use migagent::advice::draft::{Body, Draft, Status};
use migagent::migration::Transaction;
use migagent::review::{review_sql, MigrationReview, ReviewOptions};
use migagent::rules::{Rule, Severity, ALL};
use migagent::schema::Catalog;
use migagent::shadow::cluster::EphemeralCluster;
use migagent::shadow::snapshot::{diff, snapshot, SchemaSnapshot};
use migagent::sql;

mod common;

use common::docs::{parse_examples, read_doc, Example, Role};
use common::validation::Fixture;

/// A rule's document examples: its history blocks and its bad examples for the default target.
fn examples(rule: &Rule) -> (Vec<String>, Vec<Example>) {
    let doc = read_doc(rule).unwrap_or_else(|e| panic!("{e}"));
    let examples = parse_examples(&doc).unwrap_or_else(|e| panic!("{}: {e}", rule.id));
    let (history, rest): (Vec<Example>, Vec<Example>) =
        examples.into_iter().partition(|e| e.role == Role::History);
    let bad = rest
        .into_iter()
        .filter(|e| e.role == Role::Bad && e.pg_version.is_none())
        .collect();
    (history.into_iter().map(|e| e.sql).collect(), bad)
}

fn reviewed(history: &[String], sql: &str) -> MigrationReview {
    let history: Vec<&str> = history.iter().map(String::as_str).collect();
    review_sql(
        "migration.sql",
        &history,
        sql,
        Transaction::None,
        &ReviewOptions::default(),
    )
}

/// The schema model after the history, as the review saw it before the migration.
fn catalog(history: &[String]) -> Catalog {
    let mut catalog = Catalog::default();
    for text in history {
        catalog.begin_migration();
        for statement in &sql::parse_text(text).statements {
            catalog.apply(text, statement);
        }
    }
    catalog
}

/// The built-in drafts of a rule's bad example, when one of its findings of that rule has a fix.
fn fixed_example(rule: &Rule, history: &[String], example: &Example) -> Option<BuiltinDrafts> {
    let review = reviewed(history, &example.sql);
    review
        .findings
        .iter()
        .any(|f| f.rule.id == rule.id && f.fix.is_some())
        .then(|| drafts(&review, &mut catalog(history)))
}

fn rewrite_of(built: &BuiltinDrafts) -> Option<&migagent::advice::draft::Rewrite> {
    built.drafts.iter().find_map(|d| match &d.body {
        Body::Rewrite(rewrite) => Some(rewrite),
        Body::Down(_) => None,
    })
}

/// Runs SQL on a database of the cluster, or says what failed.
async fn run(client: &tokio_postgres::Client, sql: &str) -> Result<(), String> {
    client
        .batch_execute(sql)
        .await
        .map_err(|e| format!("{sql}\n  failed: {e}"))
}

/// A new database with the history applied, then `apply`.
async fn database_after(
    cluster: &EphemeralCluster,
    name: &str,
    history: &[String],
    apply: &[String],
) -> Result<SchemaSnapshot, String> {
    run(
        &common::connect(cluster, "postgres").await,
        &format!("CREATE DATABASE {name}"),
    )
    .await?;
    let client = common::connect(cluster, name).await;
    for sql in history.iter().chain(apply) {
        run(&client, sql).await?;
    }
    snapshot(&client).await.map_err(|e| e.to_string())
}

/// Each step as PostgreSQL receives it: a transactional step in its own transaction block, any
/// other as it is (one statement, outside any block).
fn step_texts(rewrite: &migagent::advice::draft::Rewrite) -> Vec<String> {
    rewrite
        .steps
        .iter()
        .map(|step| match step.transactional {
            true => format!("BEGIN;\n{}\nCOMMIT;", step.sql),
            false => step.sql.clone(),
        })
        .collect()
}

/// Cases beyond the documents: real migrations whose help lost meaning before (documenso
/// `20260604143030`: the key's actions; marquez `V74__alter_jobs_to_add_current_run_uuid.sql`: a
/// uuid key), with rows, so that a backfill has batches to run and VALIDATE has rows to check.
const CASES: &[(&str, &str, &str)] = &[
    (
        "foreign key with its actions",
        "CREATE TABLE \"User\" (id serial PRIMARY KEY);\n\
         CREATE TABLE \"Team\" (id serial PRIMARY KEY, \"ownerUserId\" int);\n\
         INSERT INTO \"User\" SELECT generate_series(1, 100);\n\
         INSERT INTO \"Team\" (\"ownerUserId\") SELECT generate_series(1, 100);",
        "ALTER TABLE \"Team\" ADD CONSTRAINT \"Team_ownerUserId_fkey\" FOREIGN KEY (\"ownerUserId\") \
         REFERENCES \"User\"(\"id\") ON DELETE SET NULL ON UPDATE CASCADE;",
    ),
    (
        "volatile default, NOT NULL, on a uuid key",
        "CREATE EXTENSION IF NOT EXISTS pgcrypto;\n\
         CREATE TABLE jobs (uuid uuid PRIMARY KEY, name text);\n\
         INSERT INTO jobs SELECT gen_random_uuid(), 'job' FROM generate_series(1, 25000);",
        "ALTER TABLE jobs ADD COLUMN current_run_uuid uuid NOT NULL DEFAULT gen_random_uuid();",
    ),
    (
        "volatile default, NOT NULL, on an integer key",
        "CREATE TABLE events (id bigint PRIMARY KEY, at timestamptz);\n\
         INSERT INTO events SELECT n, now() FROM generate_series(1, 25000) AS n;",
        "ALTER TABLE events ADD COLUMN seen_at timestamptz NOT NULL DEFAULT clock_timestamp();",
    ),
];

#[test]
fn every_fix_of_a_documented_bad_example_runs_and_keeps_its_meaning() {
    let Some(cluster) = common::cluster_or_skip() else {
        return;
    };
    let runtime = common::runtime();
    let mut problems = Vec::new();
    let mut checked = Vec::new();
    for rule in ALL {
        let (history, bad) = examples(rule);
        for example in bad {
            let Some(built) = fixed_example(rule, &history, &example) else {
                continue;
            };
            let label = format!("{} (line {})", rule.id, example.line);
            let n = checked.len();
            problems.extend(runtime.block_on(check_fix(
                &cluster,
                n,
                &label,
                &history,
                &example.sql,
                &built,
            )));
            checked.push(rule.id);
        }
    }
    for (n, (label, history, sql)) in CASES.iter().enumerate() {
        let history = vec![history.to_string()];
        let review = reviewed(&history, sql);
        let built = drafts(&review, &mut catalog(&history));
        let n = checked.len() + n;
        problems.extend(runtime.block_on(check_fix(&cluster, n, label, &history, sql, &built)));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    for rule in [
        "index-not-concurrent",
        "drop-index-not-concurrent",
        "reindex-not-concurrent",
        "add-foreign-key-without-not-valid",
        "add-check-without-not-valid",
        "set-not-null",
        "add-unique-constraint",
        "add-primary-key",
        "add-column-rewrites-table",
        "refresh-matview-not-concurrent",
        "missing-lock-timeout",
        "add-column-inline-constraint",
        "attach-partition-scan",
    ] {
        assert!(
            checked.contains(&rule),
            "no bad example of {rule} got a fix: {checked:?}"
        );
    }
}

/// Drops whose down draft rebuilds what they dropped from the schema model: the drop-table
/// document's example, then tables and constraints with every kind of column and constraint the
/// model keeps (serial, defaults, a CHECK, a unique key, a NOT VALID foreign key with its actions,
/// an index, a table CASCADE took foreign keys from), with rows.
const DOWN_CASES: &[(&str, &str, &str)] = &[
    (
        "a table with everything the model keeps",
        "CREATE TABLE users (id bigint PRIMARY KEY, email text);\n\
         CREATE TABLE \"Order\" (id serial PRIMARY KEY, user_id bigint NOT NULL DEFAULT 0, \
           code text UNIQUE, total numeric CHECK (total >= 0), placed_at timestamptz DEFAULT now(), \
           note text);\n\
         ALTER TABLE \"Order\" ADD CONSTRAINT order_user_fkey FOREIGN KEY (user_id) REFERENCES users (id) \
           ON DELETE CASCADE ON UPDATE SET DEFAULT DEFERRABLE INITIALLY DEFERRED NOT VALID;\n\
         CREATE INDEX order_placed_idx ON \"Order\" (placed_at) WHERE note IS NULL;\n\
         INSERT INTO users VALUES (0, 'none');\n\
         INSERT INTO \"Order\" (user_id, total) SELECT 0, n FROM generate_series(1, 100) AS n;",
        "DROP TABLE \"Order\";",
    ),
    (
        "a table with identity columns and their sequence options",
        "CREATE TABLE events (id bigint GENERATED ALWAYS AS IDENTITY (START WITH 1000 INCREMENT BY 10 \
           MAXVALUE 900000000 CACHE 20 CYCLE) PRIMARY KEY, n int GENERATED BY DEFAULT AS IDENTITY, \
           code smallserial, at timestamptz NOT NULL DEFAULT now());\n\
         CREATE SEQUENCE event_ticks AS integer START WITH 7 NO CYCLE OWNED BY events.at;\n\
         INSERT INTO events (at) SELECT now() FROM generate_series(1, 10);",
        "DROP TABLE events;",
    ),
    (
        "tables dropped with CASCADE",
        "CREATE TABLE users (id bigint PRIMARY KEY, email text);\n\
         CREATE TABLE sessions (id bigint PRIMARY KEY, user_id bigint REFERENCES users (id) ON DELETE SET NULL);\n\
         CREATE TABLE audit (at timestamptz);",
        "DROP TABLE users, audit CASCADE;",
    ),
    (
        "a table dropped with the one it references",
        "CREATE TABLE users (id bigint PRIMARY KEY, manager_id bigint REFERENCES users (id));\n\
         CREATE TABLE sessions (id bigint PRIMARY KEY, user_id bigint NOT NULL REFERENCES users (id));",
        "DROP TABLE users, sessions;",
    ),
    (
        "views and a materialized view with its index",
        "CREATE TABLE users (id bigint PRIMARY KEY, email text, active boolean);\n\
         INSERT INTO users SELECT n, 'u' || n, n % 2 = 0 FROM generate_series(1, 10) AS n;\n\
         CREATE VIEW active_users (user_id, mail) AS SELECT id, lower(email) FROM users WHERE active;\n\
         CREATE MATERIALIZED VIEW user_counts AS SELECT active, count(*) AS n FROM users GROUP BY active;\n\
         CREATE UNIQUE INDEX user_counts_active ON user_counts (active);",
        "DROP VIEW active_users;\nDROP MATERIALIZED VIEW user_counts;",
    ),
    (
        "sequences with their options, owner and the defaults CASCADE took",
        "CREATE TABLE tickets (id bigint, code int);\n\
         CREATE SEQUENCE ticket_ids AS bigint INCREMENT BY 5 MINVALUE 10 MAXVALUE 100000 START WITH 20 \
           CACHE 3 CYCLE OWNED BY tickets.id;\n\
         CREATE SEQUENCE codes;\n\
         ALTER TABLE tickets ALTER COLUMN code SET DEFAULT nextval('codes');\n\
         SELECT nextval('ticket_ids');",
        "DROP SEQUENCE ticket_ids;\nDROP SEQUENCE codes CASCADE;",
    ),
    (
        "an enum and a composite type",
        "CREATE TYPE mood AS ENUM ('sad', 'it''s ok', 'Happy');\n\
         CREATE TYPE money_amount AS (amount numeric(12, 2), currency char(3));",
        "DROP TYPE mood, money_amount;",
    ),
    (
        "constraints of every kind dropped",
        "CREATE TABLE users (id bigint, email text, age int);\n\
         INSERT INTO users SELECT n, 'u' || n, n FROM generate_series(1, 100) AS n;\n\
         ALTER TABLE users ADD CONSTRAINT users_pkey PRIMARY KEY (id);\n\
         ALTER TABLE users ADD CONSTRAINT users_email_key UNIQUE (email);\n\
         ALTER TABLE users ADD CONSTRAINT users_age_check CHECK (age > 0);\n\
         ALTER TABLE users ADD CONSTRAINT users_age_small CHECK (age < 1000) NOT VALID;\n\
         CREATE TABLE orders (id bigint, user_id bigint);\n\
         ALTER TABLE orders ADD CONSTRAINT orders_user_id_fkey FOREIGN KEY (user_id) \
           REFERENCES users (id) MATCH FULL ON DELETE CASCADE;",
        "ALTER TABLE orders DROP CONSTRAINT orders_user_id_fkey;\n\
         ALTER TABLE users DROP CONSTRAINT users_age_check, DROP CONSTRAINT users_age_small;\n\
         ALTER TABLE users DROP CONSTRAINT users_email_key;\n\
         ALTER TABLE users DROP CONSTRAINT users_pkey;",
    ),
];

/// The drop-table document's bad examples and [`DOWN_CASES`]: label, history, migration.
fn drop_cases() -> Vec<(String, Vec<String>, String)> {
    let rule = ALL.iter().find(|r| r.id == "drop-table").unwrap();
    let (history, bad) = examples(rule);
    let documented = bad.into_iter().map(|example| {
        let label = format!("drop-table (rules/drop-table.md line {})", example.line);
        (label, history.clone(), example.sql)
    });
    let cases = DOWN_CASES.iter().map(|(label, history, sql)| {
        (
            label.to_string(),
            vec![history.to_string()],
            sql.to_string(),
        )
    });
    documented.chain(cases).collect()
}

/// The down draft of each drop, run after it on a real PostgreSQL, leaves the schema the history
/// left (compared with the shadow's schema snapshots), and says that the rows are lost.
#[test]
fn every_down_of_a_drop_restores_the_schema() {
    let Some(cluster) = common::cluster_or_skip() else {
        return;
    };
    let runtime = common::runtime();
    let mut problems = Vec::new();
    for (n, (label, history, sql)) in drop_cases().into_iter().enumerate() {
        let review = reviewed(&history, &sql);
        let built = drafts(&review, &mut catalog(&history));
        let Some(down) = built.drafts.iter().find_map(|d| match &d.body {
            Body::Down(down) => Some(down),
            Body::Rewrite(_) => None,
        }) else {
            problems.push(format!("{label}: no down draft ({:?})", built.notes));
            continue;
        };
        if sql.contains("DROP TABLE") && !down.data_loss {
            problems.push(format!(
                "{label}: a dropped table's down says no data is lost"
            ));
        }
        let before = runtime.block_on(database_after(
            &cluster,
            &format!("before_{n}"),
            &history,
            &[],
        ));
        let after = runtime.block_on(database_after(
            &cluster,
            &format!("down_{n}"),
            &history,
            &[sql.clone(), down.sql.clone()],
        ));
        match (before, after) {
            (Ok(before), Ok(after)) => {
                let changes = diff(&before, &after);
                if !changes.is_empty() {
                    problems.push(format!(
                        "{label}: the down leaves another schema: {changes:?}\n{}",
                        down.sql
                    ));
                }
            }
            (Err(e), _) | (_, Err(e)) => problems.push(format!("{label}: {e}")),
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Fixes the validator must reject, and why: the fixer's draft is the best there is, but PostgreSQL
/// offers no way to make it safe, and the validator says so rather than the draft claiming it.
const REJECTED: &[(&str, &[&str])] = &[];

/// The validator (src/validate, as `review` runs it) accepts every built-in draft: the rewrite and
/// the down of each documented bad example with a fix and of [`CASES`], and the down of each drop
/// of [`drop_cases`]. A draft it rejects is a bug in the fixer or in the validator.
#[test]
fn the_validator_accepts_every_builtin_draft() {
    let Some(mut fixture) = Fixture::with_history("") else {
        return;
    };
    let mut cases: Vec<(String, Vec<String>, String, bool)> = Vec::new();
    for rule in ALL {
        let (history, bad) = examples(rule);
        for example in bad {
            if fixed_example(rule, &history, &example).is_some() {
                let label = format!("{} (line {})", rule.id, example.line);
                cases.push((label, history.clone(), example.sql, true));
            }
        }
    }
    for (label, history, sql) in CASES {
        cases.push((
            label.to_string(),
            vec![history.to_string()],
            sql.to_string(),
            true,
        ));
    }
    for (label, history, sql) in drop_cases() {
        cases.push((label, history, sql, false));
    }
    let mut problems = Vec::new();
    for (label, history, sql, rewrites) in cases {
        let built = drafts(&reviewed(&history, &sql), &mut catalog(&history));
        // A drop's rewrite keeps the drop, an error still: only its down is the fixer's answer.
        let mut drafts: Vec<Draft> = built
            .drafts
            .into_iter()
            .filter(|d| rewrites || matches!(d.body, Body::Down(_)))
            .collect();
        fixture.set_history(&history.join("\n"));
        fixture.validator_in(&sql, Transaction::None, async |validator| {
            validator.validate_drafts(&mut drafts).await
        });
        for draft in &drafts {
            let kind = match draft.body {
                Body::Rewrite(_) => "rewrite",
                Body::Down(_) => "down",
            };
            let rule = label.split(' ').next().unwrap_or_default();
            let expected = REJECTED
                .iter()
                .find(|(id, _)| *id == rule && kind == "rewrite");
            let validation = &draft.validation;
            match expected {
                None if validation.status != Status::Accepted => problems.push(format!(
                    "{label}: the {kind} is {:?}: {:?}",
                    validation.status, validation.reasons
                )),
                Some((_, needles))
                    if validation.status != Status::Rejected
                        || !needles
                            .iter()
                            .all(|n| validation.reasons.iter().any(|r| r.contains(n))) =>
                {
                    problems.push(format!(
                        "{label}: the {kind} should be rejected for {needles:?}: {validation:?}"
                    ))
                }
                _ => {}
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// What is wrong with one rewrite: it fails on PostgreSQL, leaves another schema than the original
/// SQL, or raises an error finding when reviewed itself.
async fn check_fix(
    cluster: &EphemeralCluster,
    n: usize,
    label: &str,
    history: &[String],
    sql: &str,
    built: &BuiltinDrafts,
) -> Vec<String> {
    let Some(rewrite) = rewrite_of(built) else {
        return vec![format!("{label}: no rewrite draft ({:?})", built.notes)];
    };
    let mut problems = Vec::new();
    let original = database_after(
        cluster,
        &format!("original_{n}"),
        history,
        &[sql.to_owned()],
    )
    .await;
    let fixed = database_after(
        cluster,
        &format!("fixed_{n}"),
        history,
        &step_texts(rewrite),
    )
    .await;
    match (original, fixed) {
        (Ok(original), Ok(fixed)) => {
            let changes = diff(&original, &fixed);
            if !changes.is_empty() {
                problems.push(format!("{label}: the schemas differ: {changes:?}"));
            }
        }
        (Err(e), _) => problems.push(format!("{label}: the original fails: {e}")),
        (_, Err(e)) => problems.push(format!("{label}: the rewrite fails: {e}")),
    }
    let relinted = reviewed(history, &rewrite_sql(rewrite));
    for finding in relinted
        .findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
    {
        problems.push(format!(
            "{label}: the rewrite raises {}: {}",
            finding.rule.id, finding.message
        ));
    }
    problems
}

fn rewrite_sql(rewrite: &migagent::advice::draft::Rewrite) -> String {
    rewrite
        .steps
        .iter()
        .map(|s| s.sql.as_str())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every fixer's drafts for its document's bad examples, as one text to review.
#[test]
fn drafts_of_each_fixer_match_their_snapshot() {
    let mut out = String::new();
    for rule in ALL {
        let (history, bad) = examples(rule);
        for example in bad {
            let Some(built) = fixed_example(rule, &history, &example) else {
                continue;
            };
            writeln!(
                out,
                "=== {} (rules/{}.md line {})",
                rule.id, rule.id, example.line
            )
            .unwrap();
            for draft in &built.drafts {
                render_draft(&mut out, draft);
            }
            for note in &built.notes {
                writeln!(out, "note: {note}").unwrap();
            }
            out.push('\n');
        }
    }
    for (label, history, sql) in drop_cases() {
        let built = drafts(&reviewed(&history, &sql), &mut catalog(&history));
        writeln!(out, "=== down of {label}").unwrap();
        for draft in built
            .drafts
            .iter()
            .filter(|d| matches!(d.body, Body::Down(_)))
        {
            render_draft(&mut out, draft);
        }
        for note in &built.notes {
            writeln!(out, "note: {note}").unwrap();
        }
        out.push('\n');
    }
    check_snapshot(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots/builtin_drafts.txt"),
        &out,
    );
}

fn render_draft(out: &mut String, draft: &Draft) {
    let status = serde_json::to_value(&draft.validation).unwrap();
    match &draft.body {
        Body::Rewrite(rewrite) => {
            writeln!(out, "--- rewrite ({status})").unwrap();
            for step in &rewrite.steps {
                let how = match step.transactional {
                    true => "transactional",
                    false => "outside a transaction",
                };
                writeln!(out, "-- step, {how}: {}\n{}", step.note, step.sql).unwrap();
            }
            writeln!(out, "-- rationale: {}", rewrite.rationale).unwrap();
        }
        Body::Down(down) => {
            writeln!(out, "--- down (data_loss: {}) ({status})", down.data_loss).unwrap();
            writeln!(out, "{}\n-- notes: {}", down.sql, down.notes).unwrap();
        }
    }
}

fn check_snapshot(path: &Path, actual: &str) {
    if std::env::var_os("MIGAGENT_UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(path).unwrap_or_else(|_| {
        panic!(
            "no snapshot {}: run with MIGAGENT_UPDATE_SNAPSHOTS=1 to write it",
            path.display()
        )
    });
    assert!(
        actual == expected,
        "the drafts differ from {} (rerun with MIGAGENT_UPDATE_SNAPSHOTS=1 if the change is \
         intended, and review the diff):\n--- expected\n{expected}\n--- actual\n{actual}",
        path.display()
    );
}

/// Where a rule's help SQL runs, relative to the statement it is about: in its place (the default),
/// or after it (the down of a drop, the compatibility view of a rename); or why it does not run at
/// all right after the history.
enum HelpRuns {
    Instead,
    After,
    Not(&'static str),
}

fn help_runs(rule: &str) -> HelpRuns {
    match rule {
        "drop-table" | "rename-schema" => HelpRuns::After,
        "drop-sequence" => HelpRuns::Not(
            "its bad example fails on PostgreSQL by design (a column default still uses the sequence)",
        ),
        "drop-schema" => HelpRuns::Not(
            "its DROP SCHEMA without CASCADE is meant to fail while the schema holds objects",
        ),
        _ => HelpRuns::Instead,
    }
}

/// The SQL a help quotes in backticks: whole statements, or `None` when one has a `<placeholder>`
/// for the user to fill in. A statement with `…` is an outline, not a recipe, and is left out.
fn runnable_help_sql(help: &str) -> Option<Vec<String>> {
    const STARTS: &[&str] = &[
        "ALTER ",
        "CREATE ",
        "DROP ",
        "SET ",
        "UPDATE ",
        "DELETE ",
        "REINDEX ",
        "REFRESH ",
        "VACUUM ",
        "BEGIN",
        "COMMIT",
        "ANALYZE",
        "CLUSTER ",
        "LOCK ",
        "COMMENT ",
        "TRUNCATE ",
    ];
    let quoted: Vec<&str> = help
        .split('`')
        .skip(1)
        .step_by(2)
        .filter(|sql| STARTS.iter().any(|start| sql.starts_with(start)))
        .filter(|sql| sql.trim_end().ends_with(';') && !sql.contains('…'))
        .collect();
    if quoted.iter().any(|sql| has_placeholder(sql)) {
        return None;
    }
    Some(quoted.into_iter().map(str::to_owned).collect())
}

/// Whether `sql` holds a `<placeholder>` (a `<` operator does not count).
fn has_placeholder(sql: &str) -> bool {
    sql.split('<').skip(1).any(|after| {
        let word = after.split('>').next().unwrap_or_default();
        after.contains('>')
            && !word.is_empty()
            && word
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ' ')
    })
}

/// Every SQL a finding's help quotes runs on a real PostgreSQL where the help puts it: for each
/// rule's documented bad example, after the history and the example's statements before the one the
/// finding is about (and that statement too, for a help that follows it). The rules with a built-in
/// fixer quote its steps, which the tests above also check for meaning.
#[test]
fn every_sql_a_help_quotes_runs_on_its_documented_bad_example() {
    let Some(cluster) = common::cluster_or_skip() else {
        return;
    };
    let runtime = common::runtime();
    let (mut problems, mut ran, mut placeholders) = (Vec::new(), Vec::new(), Vec::new());
    let mut not_run = Vec::new();
    for rule in ALL {
        let (history, bad) = examples(rule);
        let after = match help_runs(rule.id) {
            HelpRuns::Instead => false,
            HelpRuns::After => true,
            HelpRuns::Not(why) => {
                not_run.push((rule.id, why));
                continue;
            }
        };
        for example in bad {
            let statements: Vec<String> = sql::parse_text(&example.sql)
                .statements
                .iter()
                .map(|s| example.sql[s.range.clone()].to_owned())
                .collect();
            let review = reviewed(&history, &example.sql);
            for finding in review.findings.iter().filter(|f| f.rule.id == rule.id) {
                let Some(help_sql) = runnable_help_sql(&finding.help) else {
                    placeholders.push(rule.id);
                    continue;
                };
                if help_sql.is_empty() {
                    continue;
                }
                let before = &statements[..finding.statement + usize::from(after)];
                let apply: Vec<String> = before.iter().chain(&help_sql).cloned().collect();
                let name = format!("help_{}", ran.len());
                let label = format!("{} (rules/{}.md line {})", rule.id, rule.id, example.line);
                if let Err(error) =
                    runtime.block_on(database_after(&cluster, &name, &history, &apply))
                {
                    problems.push(format!("{label}: {error}\n  help: {}", finding.help));
                }
                ran.push(rule.id);
            }
        }
    }
    assert!(
        problems.is_empty(),
        "{}\n(not run, as their help says: {not_run:?})",
        problems.join("\n")
    );
    assert_eq!(placeholders, Vec::<&str>::new(), "helps with placeholders");
    for rule in [
        "add-foreign-key-without-not-valid",
        "rename-schema",
        "foreign-key-without-index",
        "alter-domain-add-constraint",
        "drop-table",
        "validate-in-same-transaction",
        "add-column-inline-constraint",
        "attach-partition-scan",
    ] {
        assert!(ran.contains(&rule), "no help SQL of {rule} ran: {ran:?}");
    }
}
