//! End-to-end: `migagent review` validates every draft of its advice on migagent's own shadow
//! PostgreSQL — the built-in rewrite and down of a migration accepted, a rewrite that still rewrites a
//! table rejected with that reason, drafts without a shadow skipped with the reason — and validation
//! never changes the findings or the exit code. Without PostgreSQL installed the tests are skipped,
//! except in CI (`CI=true`).

use std::fs;

use serde_json::Value;

mod common;

use common::scratch::Scratch;
use common::{binaries_or_skip, runtime};
use migagent::shadow::cluster::EphemeralCluster;

/// Orders with a few rows: the history the reviewed migrations build on.
const HISTORY: &str = "CREATE TABLE orders (id bigint PRIMARY KEY, status text, total integer);
INSERT INTO orders VALUES (1, 'paid', 10), (2, 'open', 20);
";

/// `migagent review migrations --llm off --format json <args>`: the exit code and the report.
fn review(scratch: &Scratch, args: &[&str]) -> (Option<i32>, Value) {
    let (output, report) = scratch.json(&[&["migrations", "--llm", "off"], args].concat());
    (output.status.code(), report)
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
    let scratch = Scratch::with_migrations(
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
    let (code, report) = review(&scratch, &[]);
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
            .any(|r| r.contains("rewrites the existing table public.orders under ACCESS EXCLUSIVE")),
        "{reasons:#?}"
    );
    assert_eq!(builtin_validation(widen, "down")["status"], "accepted");
}

#[test]
fn without_a_shadow_drafts_are_skipped_with_the_reason() {
    let scratch = Scratch::with_migrations(
        "off",
        &[
            ("0001_orders.sql", HISTORY),
            (
                "0002_index.sql",
                "CREATE INDEX orders_status_idx ON orders (status);\n",
            ),
        ],
    );
    let (code, report) = review(&scratch, &["--shadow", "off"]);
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
    let scratch = Scratch::with_migrations(
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
    let (advised_code, advised) = review(
        &scratch,
        &[&fail_on[..], &["--advise-on", "warning"]].concat(),
    );
    let (plain_code, plain) = review(
        &scratch,
        &[&fail_on[..], &["--advise-on", "error"]].concat(),
    );
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

/// The databases on `cluster` named like the ones migagent creates.
fn migagent_databases(cluster: &EphemeralCluster) -> Vec<String> {
    runtime().block_on(async {
        common::connect(cluster, "postgres")
            .await
            .query(
                "SELECT datname::text FROM pg_database WHERE datname LIKE 'migagent%' ORDER BY 1",
                &[],
            )
            .await
            .unwrap()
            .iter()
            .map(|row| row.get(0))
            .collect()
    })
}

/// The report without the traces' `duration_ms`.
fn without_timings(mut report: Value) -> Value {
    fn strip(value: &mut Value) {
        match value {
            Value::Object(map) => {
                map.remove("duration_ms");
                map.values_mut().for_each(strip);
            }
            Value::Array(items) => items.iter_mut().for_each(strip),
            _ => {}
        }
    }
    strip(&mut report);
    report
}

#[test]
fn validations_at_once_report_what_one_at_a_time_do_and_leave_no_database() {
    // A server given by URL keeps running after the review: what migagent left there shows.
    let Some(cluster) = common::cluster_or_skip() else {
        return;
    };
    common::execute(&cluster, "CREATE ROLE migagent_ci LOGIN CREATEDB");
    let url = common::socket_url(&cluster, "migagent_ci");
    let scratch = Scratch::with_migrations(
        "concurrency",
        &[
            ("0001_orders.sql", HISTORY),
            (
                "0002_index.sql",
                "CREATE INDEX orders_status_idx ON orders (status);\n",
            ),
            (
                "0003_check.sql",
                "ALTER TABLE orders ADD CONSTRAINT orders_total_positive CHECK (total > 0);\n",
            ),
            (
                "0004_not_null.sql",
                "ALTER TABLE orders ALTER COLUMN status SET NOT NULL;\n",
            ),
            (
                "0005_widen.sql",
                "ALTER TABLE orders ALTER COLUMN total TYPE bigint;\n",
            ),
            (
                "0006_customers.sql",
                "CREATE TABLE customers (id bigint PRIMARY KEY);\n\
                 ALTER TABLE orders ADD COLUMN customer_id bigint;\n\
                 ALTER TABLE orders ADD CONSTRAINT orders_customer_fkey FOREIGN KEY (customer_id) REFERENCES customers (id);\n",
            ),
            (
                "0007_unique.sql",
                "CREATE UNIQUE INDEX orders_id_status_key ON orders (id, status);\n",
            ),
        ],
    );
    let review = |limit: &str| {
        let (code, report) = review(&scratch, &["--shadow", &url, "--shadow-concurrency", limit]);
        assert_eq!(
            migagent_databases(&cluster),
            Vec::<String>::new(),
            "--shadow-concurrency {limit} left databases behind"
        );
        (code, report)
    };
    let (one_code, one_at_a_time) = review("1");
    let (code, at_once) = review("4");
    assert_eq!(code, one_code);
    // The traces' timings differ from run to run; everything else is the same, in the same order.
    let (at_once, one_at_a_time) = (without_timings(at_once), without_timings(one_at_a_time));
    assert!(
        at_once == one_at_a_time,
        "--shadow-concurrency 4:\n{at_once:#}\n--shadow-concurrency 1:\n{one_at_a_time:#}"
    );
    // Every migration but the history's got drafts, and they were run: what is compared is the
    // validators' verdicts, not skipped drafts.
    let statuses: Vec<String> = at_once["migrations"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["advice"]["drafts"].as_array())
        .flatten()
        .map(|d| d["validation"]["status"].as_str().unwrap().to_owned())
        .collect();
    assert!(statuses.len() >= 10, "{statuses:?}");
    assert!(
        statuses.iter().all(|s| s != "skipped"),
        "{statuses:?}\n{at_once:#}"
    );
    assert!(statuses.iter().any(|s| s == "rejected"), "{statuses:?}");
}

/// A review on migagent's own shadow under `--shadow-max-size max_size`, validating `concurrency`
/// migrations' drafts at once: it finds errors and has no input problem.
fn review_under_cap(scratch: &Scratch, max_size: &str, concurrency: &str) -> Value {
    let cap = [
        "--shadow",
        "auto",
        "--no-cache",
        "--shadow-max-size",
        max_size,
        "--shadow-concurrency",
        concurrency,
    ];
    let (code, report) = review(scratch, &cap);
    assert_eq!(code, Some(1), "{report:#}");
    assert_eq!(report["problems"], Value::Array(Vec::new()), "{report:#}");
    report
}

/// More reviewed migrations with drafts than copies of the database fit under `--shadow-max-size`:
/// the copy kept before each of them for validating its drafts must not live until the end of the run,
/// where together they passed the cap and the size watchdog ended the shadow's sessions (an
/// `apply-failed … 08006` on a migration that is fine). Every draft is still validated.
#[test]
fn copies_kept_for_validating_drafts_stay_under_a_small_size_cap() {
    if binaries_or_skip().is_none() {
        return;
    }
    // An empty database takes about 7.5 MB on PostgreSQL 15: 16 copies are about twice the cap.
    const MIGRATIONS: usize = 16;
    let files: Vec<(String, String)> =
        std::iter::once(("0001_orders.sql".to_owned(), HISTORY.to_owned()))
            .chain((0..MIGRATIONS).map(|i| {
                (
                    format!("{:04}_index_{i}.sql", i + 2),
                    format!("CREATE INDEX orders_status_{i}_idx ON orders (status);\n"),
                )
            }))
            .collect();
    let files: Vec<(&str, &str)> = files
        .iter()
        .map(|(n, t)| (n.as_str(), t.as_str()))
        .collect();
    let scratch = Scratch::with_migrations("size-cap", &files);
    let report = review_under_cap(&scratch, "64MB", "2");
    let migrations = report["migrations"].as_array().unwrap();
    assert_eq!(migrations.len(), MIGRATIONS + 1);
    for migration in &migrations[1..] {
        let rules: Vec<&str> = migration["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["rule"].as_str().unwrap())
            .collect();
        assert!(!rules.contains(&"apply-failed"), "{migration:#}");
        assert!(rules.contains(&"index-not-concurrent"), "{migration:#}");
        for kind in ["rewrite", "down"] {
            let validation = builtin_validation(migration, kind);
            assert_eq!(validation["status"], "accepted", "{kind}: {migration:#}");
        }
    }
}

/// Under a cap that leaves no room for a copy of the database beside it, drafts are not validated,
/// with the reason and what to do; every migration is still applied and traced, and none fails.
#[test]
fn without_room_for_a_copy_drafts_say_so_and_nothing_fails() {
    if binaries_or_skip().is_none() {
        return;
    }
    let scratch = Scratch::with_migrations(
        "no-room",
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
    // One database of about 7.5 MB fits; it, a copy and a validation's copy do not.
    let report = review_under_cap(&scratch, "20MB", "1");
    let all = findings(&report);
    let mut all = all.iter().flat_map(|f| f.as_array().unwrap());
    assert!(all.all(|f| f["rule"] != "apply-failed"), "{report:#}");
    for file in ["0002_index.sql", "0003_widen.sql"] {
        let migration = migration(&report, file);
        let traced = migration["statements"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["trace"]["applied"] == true);
        assert!(traced, "{migration:#}");
        for kind in ["rewrite", "down"] {
            let validation = builtin_validation(migration, kind);
            assert_eq!(validation["status"], "skipped", "{kind}: {migration:#}");
            let reason = validation["reasons"][0].as_str().unwrap();
            assert!(
                reason.contains("would take the shadow past --shadow-max-size (20 MB)")
                    && reason.contains("raise --shadow-max-size"),
                "{reason}"
            );
        }
    }
}

/// The built-in down of the migration whose path ends with `file`.
fn builtin_down<'a>(report: &'a Value, file: &str) -> &'a Value {
    migration(report, file)["advice"]["drafts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["kind"] == "down" && d["source"] == "builtin")
        .unwrap_or_else(|| panic!("no built-in down for {file} in {report:#}"))
}

fn strings(value: &Value) -> Vec<&str> {
    value
        .as_array()
        .map(|a| a.iter().map(|s| s.as_str().unwrap()).collect())
        .unwrap_or_default()
}

/// fixtures/example drops accounts.name, NOT NULL without a default: its down restores the column,
/// nullable (no value can satisfy NOT NULL until the data is back), and the rollback drill accepts
/// exactly that difference, with `data_loss` and a note saying what to do.
#[test]
fn the_examples_drop_column_down_is_accepted_with_data_loss() {
    if binaries_or_skip().is_none() {
        return;
    }
    let example =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/example/migrations");
    let files: Vec<(String, String)> = fs::read_dir(&example)
        .unwrap()
        .map(|entry| {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_str().unwrap().to_owned();
            (name, fs::read_to_string(&path).unwrap())
        })
        .collect();
    let migrations: Vec<(&str, &str)> = files
        .iter()
        .map(|(n, s)| (n.as_str(), s.as_str()))
        .collect();
    let scratch = Scratch::with_migrations("example", &migrations);
    let (code, report) = review(&scratch, &[]);
    assert_eq!(code, Some(1), "{report:#}");
    let down = builtin_down(&report, "0003_order_status_and_emails.sql");
    assert_eq!(down["validation"]["status"], "accepted", "{down:#}");
    assert_eq!(down["data_loss"], true);
    assert!(
        down["sql"]
            .as_str()
            .unwrap()
            .contains("ALTER TABLE public.accounts ADD COLUMN name TEXT;"),
        "{down:#}"
    );
    let notes = strings(&down["validation"]["notes"]);
    assert!(
        notes.iter().any(|n| n.starts_with(
            "column public.accounts.name comes back nullable (before the up it was NOT NULL)"
        ) && n.ends_with("then SET NOT NULL")),
        "{notes:#?}"
    );
    // users.email is renamed, not dropped: its values survive, and no note says otherwise.
    assert!(
        notes.iter().any(|n| {
            n.starts_with(
            "the up destroys the values of column public.accounts.name: no down can bring that back"
        )
        }),
        "{notes:#?}"
    );
    assert!(
        !notes.iter().any(|n| n.contains("users.email")),
        "{notes:#?}"
    );
}

/// A dropped column with a default, a CHECK and indexes (one partial, one on an expression) comes
/// back whole: NOT NULL too, since the default fills it. A unique one cannot take one default in
/// every row: it comes back nullable, its default for new rows, its constraint whole.
#[test]
fn a_dropped_column_comes_back_with_its_default_constraints_and_indexes() {
    if binaries_or_skip().is_none() {
        return;
    }
    let history = format!(
        "{HISTORY}ALTER TABLE orders ADD COLUMN priority integer NOT NULL DEFAULT 0 \
           CONSTRAINT orders_priority_range CHECK (priority BETWEEN 0 AND 9);\n\
         CREATE INDEX orders_priority_idx ON orders (priority) WHERE status <> 'paid';\n\
         CREATE INDEX orders_urgent_idx ON orders ((priority * 10 + total));\n\
         CREATE TABLE coupons (id bigint PRIMARY KEY, code text NOT NULL DEFAULT 'none' UNIQUE);\n\
         INSERT INTO coupons VALUES (1, 'a'), (2, 'b');\n"
    );
    let scratch = Scratch::with_migrations(
        "restored",
        &[
            ("0001_orders.sql", &history),
            (
                "0002_drop.sql",
                "ALTER TABLE orders DROP COLUMN priority;\n",
            ),
            ("0003_unique.sql", "ALTER TABLE coupons DROP COLUMN code;\n"),
        ],
    );
    let (code, report) = review(&scratch, &[]);
    assert_eq!(code, Some(1), "{report:#}");
    let down = builtin_down(&report, "0002_drop.sql");
    assert_eq!(down["validation"]["status"], "accepted", "{down:#}");
    assert_eq!(down["data_loss"], true);
    let sql = down["sql"].as_str().unwrap();
    for restored in [
        "ADD COLUMN priority INTEGER DEFAULT 0 NOT NULL;",
        "ADD CONSTRAINT orders_priority_range CHECK",
        "VALIDATE CONSTRAINT orders_priority_range;",
        "CREATE INDEX orders_priority_idx ON public.orders (priority) WHERE",
        "CREATE INDEX orders_urgent_idx ON public.orders (",
    ] {
        assert!(sql.contains(restored), "{restored}: {sql}");
    }
    let notes = strings(&down["validation"]["notes"]);
    assert!(
        !notes.iter().any(|n| n.contains("comes back nullable")),
        "NOT NULL is restored: {notes:#?}"
    );
    assert!(
        down["notes"]
            .as_str()
            .unwrap()
            .contains("comes back with its default in every row"),
        "{down:#}"
    );

    let down = builtin_down(&report, "0003_unique.sql");
    assert_eq!(down["validation"]["status"], "accepted", "{down:#}");
    let sql = down["sql"].as_str().unwrap();
    assert!(
        sql.contains("ADD COLUMN code TEXT;")
            && sql.contains("ALTER COLUMN code SET DEFAULT 'none'")
            && sql.contains("ADD CONSTRAINT coupons_code_key UNIQUE (code);"),
        "{sql}"
    );
    let notes = strings(&down["validation"]["notes"]);
    assert!(
        notes
            .iter()
            .any(|n| n.starts_with("column public.coupons.code comes back nullable")),
        "{notes:#?}"
    );
}

/// A migration's references start from the schema read after the migration before it (when
/// nothing changed the database between): a setting that migration left in its session
/// (`quote_all_identifiers`, which changes how every name is printed) is reset before that read,
/// so the next migration's drafts are compared with the schema a fresh copy shows.
#[test]
fn a_setting_one_migration_leaves_does_not_reach_the_next_ones_verdicts() {
    if binaries_or_skip().is_none() {
        return;
    }
    let scratch = Scratch::with_migrations(
        "settings",
        &[
            ("0001_orders.sql", HISTORY),
            (
                "0002_quoted.sql",
                "SET quote_all_identifiers = on;\nCREATE INDEX orders_total_idx ON orders (total);\n",
            ),
            (
                "0003_index.sql",
                "CREATE INDEX orders_status_idx ON orders (status);\n",
            ),
        ],
    );
    let (code, report) = review(&scratch, &[]);
    assert_eq!(code, Some(1), "{report:#}");
    let index = migration(&report, "0003_index.sql");
    for kind in ["rewrite", "down"] {
        let validation = builtin_validation(index, kind);
        assert_eq!(validation["status"], "accepted", "{kind}: {index:#}");
    }
}
