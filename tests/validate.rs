//! The validate stage on a real PostgreSQL (migagent's own ephemeral cluster): hand-written drafts of
//! safe rewrites are accepted, wrong ones rejected with the reason that names what is wrong, and down
//! migrations go through the rollback drill. Without PostgreSQL installed the tests are skipped,
//! except in CI (`CI=true`).

mod common;

use common::validation::Fixture;
use migagent::advice::draft::{Body, Down, Draft, Rewrite, Source, Status, Step, Validation};
use migagent::migration::{Section, Transaction};
use migagent::review::{self, ReviewOptions};
use migagent::shadow::apply::Script;
use migagent::shadow::snapshot::snapshot;
use migagent::shadow::trace::{apply_traced, Known};
use migagent::sql::{self, LineIndex};
use migagent::validate::{self, Original, Validator};

/// The history every case builds on: users and their orders, with a few rows, an index for the
/// foreign key the cases add.
const HISTORY: &str = "
CREATE TABLE users (id bigint PRIMARY KEY, email text);
CREATE TABLE orders (id bigint PRIMARY KEY, user_id bigint, total numeric, status text);
CREATE INDEX orders_user_id_idx ON orders (user_id);
INSERT INTO users VALUES (1, 'a@example.com'), (2, 'b@example.com');
INSERT INTO orders VALUES (1, 1, 10, 'paid'), (2, 2, 20, 'open');
";

impl Fixture {
    fn new() -> Option<Fixture> {
        Fixture::with_history(HISTORY)
    }

    fn rewrite(&mut self, original: &str, steps: &[(&str, bool)]) -> Validation {
        let draft = rewrite(steps);
        self.validator(original, async |validator| validator.rewrite(&draft).await)
    }

    fn down(&mut self, up: &str, down: &str, data_loss: bool) -> (Validation, Down) {
        let mut draft = Down {
            sql: down.to_owned(),
            data_loss,
            notes: String::new(),
        };
        let validation = self.validator(up, async |validator| validator.down(&mut draft).await);
        (validation, draft)
    }

    /// Every database a validation created is gone: only the baseline is left of this session's.
    fn assert_no_leftover_databases(&mut self) {
        let database = self.shadow.create_database(None).unwrap();
        let names: Vec<String> = self
            .shadow
            .block_on(database.client.query(
                "SELECT datname FROM pg_database WHERE datname LIKE 'migagent%' ORDER BY 1",
                &[],
            ))
            .unwrap()
            .iter()
            .map(|row| row.get(0))
            .collect();
        assert_eq!(names, [self.baseline.clone(), database.name.clone()]);
        self.shadow.discard(database);
    }
}

fn rewrite(steps: &[(&str, bool)]) -> Rewrite {
    Rewrite {
        steps: steps
            .iter()
            .map(|(sql, transactional)| Step {
                sql: (*sql).to_owned(),
                transactional: *transactional,
                note: String::new(),
            })
            .collect(),
        rationale: String::new(),
    }
}

fn assert_accepted(case: &str, validation: &Validation) {
    assert_eq!(
        validation.status,
        Status::Accepted,
        "{case}: {:?}",
        validation.reasons
    );
    assert!(validation.reasons.is_empty(), "{case}: {validation:?}");
}

/// Rejected, with a reason containing each of `expected`.
fn assert_rejected(case: &str, validation: &Validation, expected: &[&str]) {
    assert_eq!(
        validation.status,
        Status::Rejected,
        "{case}: {validation:?}"
    );
    for needle in expected {
        assert!(
            validation.reasons.iter().any(|r| r.contains(needle)),
            "{case}: no reason says {needle:?}: {:#?}",
            validation.reasons
        );
    }
}

const ADD_INDEX: &str = "CREATE INDEX orders_status_idx ON orders (status);";
const ADD_FOREIGN_KEY: &str =
    "ALTER TABLE orders ADD CONSTRAINT orders_user_id_fkey FOREIGN KEY (user_id) REFERENCES users (id);";
const SET_NOT_NULL: &str = "ALTER TABLE users ALTER COLUMN email SET NOT NULL;";
const ADD_UNIQUE: &str = "ALTER TABLE users ADD CONSTRAINT users_email_key UNIQUE (email);";
const ADD_VOLATILE_DEFAULT: &str =
    "ALTER TABLE orders ADD COLUMN token uuid NOT NULL DEFAULT gen_random_uuid();";

/// Backfills orders.token a thousand rows at a time, committing between batches.
const BATCHED_BACKFILL: &str = "DO $$
DECLARE updated int;
BEGIN
  LOOP
    UPDATE orders SET token = gen_random_uuid()
     WHERE id IN (SELECT id FROM orders WHERE token IS NULL LIMIT 1000);
    GET DIAGNOSTICS updated = ROW_COUNT;
    EXIT WHEN updated = 0;
    COMMIT;
  END LOOP;
END $$;";

#[test]
fn safe_rewrites_are_accepted() {
    let Some(mut fixture) = Fixture::new() else {
        return;
    };
    let validation = fixture.rewrite(
        ADD_INDEX,
        &[(
            "CREATE INDEX CONCURRENTLY orders_status_idx ON orders (status);",
            false,
        )],
    );
    assert_accepted(
        "CREATE INDEX CONCURRENTLY outside a transaction",
        &validation,
    );

    let validation = fixture.rewrite(
        ADD_FOREIGN_KEY,
        &[
            ("ALTER TABLE orders ADD CONSTRAINT orders_user_id_fkey FOREIGN KEY (user_id) REFERENCES users (id) NOT VALID;", true),
            ("ALTER TABLE orders VALIDATE CONSTRAINT orders_user_id_fkey;", true),
        ],
    );
    assert_accepted(
        "foreign key NOT VALID, then VALIDATE in its own step",
        &validation,
    );

    let validation = fixture.rewrite(
        SET_NOT_NULL,
        &[
            ("ALTER TABLE users ADD CONSTRAINT users_email_not_null CHECK (email IS NOT NULL) NOT VALID;", true),
            ("ALTER TABLE users VALIDATE CONSTRAINT users_email_not_null;", true),
            ("ALTER TABLE users ALTER COLUMN email SET NOT NULL;\nALTER TABLE users DROP CONSTRAINT users_email_not_null;", true),
        ],
    );
    assert_accepted(
        "CHECK NOT VALID, VALIDATE, SET NOT NULL, DROP CHECK",
        &validation,
    );

    let validation = fixture.rewrite(
        ADD_UNIQUE,
        &[
            ("CREATE UNIQUE INDEX CONCURRENTLY users_email_key ON users (email);", false),
            ("ALTER TABLE users ADD CONSTRAINT users_email_key UNIQUE USING INDEX users_email_key;", true),
        ],
    );
    assert_accepted(
        "unique index CONCURRENTLY, then USING INDEX keeping the name",
        &validation,
    );

    let validation = fixture.rewrite(
        ADD_VOLATILE_DEFAULT,
        &[
            ("ALTER TABLE orders ADD COLUMN token uuid;\nALTER TABLE orders ALTER COLUMN token SET DEFAULT gen_random_uuid();", true),
            (BATCHED_BACKFILL, false),
            ("ALTER TABLE orders ADD CONSTRAINT orders_token_not_null CHECK (token IS NOT NULL) NOT VALID;", true),
            ("ALTER TABLE orders VALIDATE CONSTRAINT orders_token_not_null;", true),
            ("ALTER TABLE orders ALTER COLUMN token SET NOT NULL;\nALTER TABLE orders DROP CONSTRAINT orders_token_not_null;", true),
        ],
    );
    assert_accepted(
        "volatile default: add, default, batched backfill, CHECK-validated NOT NULL",
        &validation,
    );
    fixture.assert_no_leftover_databases();
}

#[test]
fn wrong_rewrites_are_rejected_with_the_reason() {
    let Some(mut fixture) = Fixture::new() else {
        return;
    };
    let two_indexes = "CREATE INDEX orders_status_idx ON orders (status);\nCREATE INDEX orders_total_idx ON orders (total);";
    let validation = fixture.rewrite(
        two_indexes,
        &[(
            "CREATE INDEX CONCURRENTLY orders_status_idx ON orders (status);",
            false,
        )],
    );
    assert_rejected(
        "forgets an object",
        &validation,
        &["index public.orders_total_idx missing"],
    );

    let validation = fixture.rewrite(
        "ALTER TABLE users ADD COLUMN nickname text;",
        &[("ALTER TABLE users ADD COLUMN nickname varchar(320);", true)],
    );
    assert_rejected(
        "changes a type",
        &validation,
        &["column public.users.nickname is character varying(320), the original's is text"],
    );

    let validation = fixture.rewrite(
        ADD_INDEX,
        &[(
            "CREATE INDEX CONCURRENTLY orders_status_index ON orders (status);",
            false,
        )],
    );
    assert_rejected(
        "renames an index",
        &validation,
        &[
            "index public.orders_status_idx missing",
            "index public.orders_status_index left behind",
        ],
    );

    let validation = fixture.rewrite(
        SET_NOT_NULL,
        &[
            ("ALTER TABLE users ADD CONSTRAINT users_email_not_null CHECK (email IS NOT NULL) NOT VALID;", true),
            ("ALTER TABLE users VALIDATE CONSTRAINT users_email_not_null;", true),
            ("ALTER TABLE users ALTER COLUMN email SET NOT NULL;", true),
        ],
    );
    assert_rejected(
        "leaves a helper constraint behind",
        &validation,
        &["constraint public.users.users_email_not_null left behind"],
    );

    let validation = fixture.rewrite(
        ADD_FOREIGN_KEY,
        &[("ALTER TABLE orders ADD CONSTRAINT orders_user_id_fkey FOREIGN KEY (user_id) REFERENCES users (id) NOT VALID;", true)],
    );
    assert_rejected(
        "leaves a constraint NOT VALID",
        &validation,
        &["constraint public.orders.orders_user_id_fkey is NOT VALID, the original's is validated"],
    );

    let validation = fixture.rewrite(
        ADD_INDEX,
        &[(
            "CREATE INDEX CONCURRENTLY orders_status_idx ON orders (status);",
            true,
        )],
    );
    assert_rejected(
        "CONCURRENTLY inside a transaction",
        &validation,
        &["step 1 (CREATE INDEX, line 1 of the step) fails: ERROR 25001"],
    );

    let validation = fixture.rewrite(
        ADD_FOREIGN_KEY,
        &[(
            "ALTER TABLE orders ADD CONSTRAINT orders_user_id_fkey FOREIGN KEY (user_id) REFERENCES users (id) NOT VALID;\nALTER TABLE orders VALIDATE CONSTRAINT orders_user_id_fkey;",
            true,
        )],
    );
    assert_rejected(
        "VALIDATE in the transaction that added the constraint",
        &validation,
        &[
            "step 1 (ALTER TABLE, line 2 of the step) scans the existing table public.orders",
            "holds SHARE ROW EXCLUSIVE",
        ],
    );

    let validation = fixture.rewrite(
        ADD_VOLATILE_DEFAULT,
        &[("SET lock_timeout = '2s';\nALTER TABLE orders ADD COLUMN token uuid NOT NULL DEFAULT gen_random_uuid();", true)],
    );
    assert_rejected(
        "still rewrites under ACCESS EXCLUSIVE",
        &validation,
        &["rewrites the existing table public.orders under ACCESS EXCLUSIVE"],
    );

    let validation = fixture.rewrite(
        ADD_INDEX,
        &[(
            "CREATE INDEX CONCURRENTLY orders_status_idx ON order (status);",
            false,
        )],
    );
    assert_rejected(
        "fails to apply",
        &validation,
        &["step 1", "fails: ERROR 42601"],
    );

    let validation = fixture.rewrite(
        ADD_INDEX,
        &[("CREATE INDEX orders_status_idx ON orders (status);", true)],
    );
    assert_rejected(
        "the rules' errors on the steps",
        &validation,
        &["the rules find an error in the steps: step 1: index-not-concurrent"],
    );
    fixture.assert_no_leftover_databases();
}

#[test]
fn downs_go_through_the_rollback_drill() {
    let Some(mut fixture) = Fixture::new() else {
        return;
    };
    let (validation, draft) = fixture.down(ADD_INDEX, "DROP INDEX orders_status_idx;", false);
    assert_accepted("an index dropped again", &validation);
    assert!(!draft.data_loss);

    let up =
        "ALTER TABLE orders ADD COLUMN note text;\nCREATE INDEX orders_note_idx ON orders (note);";
    let (validation, _) = fixture.down(up, "DROP INDEX orders_note_idx;", false);
    assert_rejected(
        "leaves an object behind",
        &validation,
        &["column public.orders.note left behind after the down (it did not exist before the up)"],
    );

    let (validation, _) = fixture.down(ADD_INDEX, "DROP INDEX orders_state_idx;", false);
    assert_rejected(
        "fails",
        &validation,
        &["the down fails at line 1: ERROR 42704"],
    );

    let up = "INSERT INTO users (id, email) VALUES (3, 'c@example.com');";
    let (validation, _) = fixture.down(up, "SELECT 1;", false);
    assert_rejected(
        "cannot be re-upped",
        &validation,
        &["the up does not apply again after the down: it fails at line 1: ERROR 23505"],
    );

    let (validation, draft) = fixture.down(
        "ALTER TABLE users DROP COLUMN email;",
        "ALTER TABLE users ADD COLUMN email text;",
        false,
    );
    assert_accepted("a dropped column restored", &validation);
    assert!(draft.data_loss, "data_loss is forced");
    let mut drafts: Vec<Draft> = [
        Body::Rewrite(rewrite(&[(
            "CREATE INDEX CONCURRENTLY orders_status_idx ON orders (status);",
            false,
        )])),
        Body::Down(Down {
            sql: "DROP INDEX orders_status_idx;".into(),
            data_loss: false,
            notes: String::new(),
        }),
        Body::Down(Down {
            sql: "SELECT 1;".into(),
            data_loss: false,
            notes: String::new(),
        }),
    ]
    .into_iter()
    .map(|body| Draft {
        source: Source::Builtin,
        attempts: 1,
        body,
        validation: Validation::skipped("not validated yet"),
    })
    .collect();
    fixture.validator(ADD_INDEX, async |validator| {
        validator.validate_drafts(&mut drafts).await
    });
    let statuses: Vec<Status> = drafts.iter().map(|d| d.validation.status).collect();
    assert_eq!(
        statuses,
        [Status::Accepted, Status::Accepted, Status::Rejected]
    );
    let unknown = fixture.validator(ADD_INDEX, async |validator| {
        validator.unknown_references(
            "Building orders_status_idx on orders.status blocks writes to orders.total and orders.total_cents; `invoices.amount` is safe.",
        ).await
    });
    assert_eq!(unknown, ["orders.total_cents", "invoices.amount"]);
    assert!(
        validation
            .notes
            .iter()
            .any(|n| n.contains("the values of column public.users.email")
                && n.contains("data_loss is set although the draft said otherwise")),
        "{:?}",
        validation.notes
    );
    fixture.assert_no_leftover_databases();
}

/// A table with a NOT NULL column and rows.
const ACCOUNTS: &str = "CREATE TABLE accounts (id bigint PRIMARY KEY, name text NOT NULL);
    INSERT INTO accounts VALUES (1, 'a'), (2, 'b');";

/// A NOT NULL column without a default that the up drops can only come back nullable: its rows have
/// no value left. The drill accepts that difference for exactly the dropped columns, with a note;
/// the same down after a rename (no value lost) is rejected for it.
#[test]
fn a_dropped_not_null_column_may_come_back_nullable_a_renamed_one_may_not() {
    let Some(mut fixture) = Fixture::with_history(ACCOUNTS) else {
        return;
    };
    let (validation, draft) = fixture.down(
        "ALTER TABLE accounts DROP COLUMN name;",
        "ALTER TABLE accounts ADD COLUMN name text;",
        false,
    );
    assert_accepted("a dropped NOT NULL column restored nullable", &validation);
    assert!(draft.data_loss, "data_loss is forced");
    assert!(
        validation.notes.iter().any(|n| n.starts_with(
            "column public.accounts.name comes back nullable (before the up it was NOT NULL)"
        )),
        "{:?}",
        validation.notes
    );

    let (validation, draft) = fixture.down(
        "ALTER TABLE accounts RENAME COLUMN name TO title;",
        "ALTER TABLE accounts DROP COLUMN title;\nALTER TABLE accounts ADD COLUMN name text;",
        false,
    );
    assert_rejected(
        "a renamed column dropped and added again",
        &validation,
        &["column public.accounts.name is nullable after the down, before the up it was NOT NULL"],
    );
    assert!(
        !draft.data_loss,
        "a rename destroys nothing: {validation:?}"
    );
    fixture.assert_no_leftover_databases();
}

/// A timed case: its name, the original migration, the draft's steps.
type TimedCase<'a> = (&'a str, &'a str, Vec<(&'a str, bool)>);

/// `cargo test --release --test validate -- --ignored --nocapture`: the time to validate one
/// draft, cold (the migration's first draft, which also applies the original on a copy of the
/// baseline to learn the schemas) and warm (its later drafts), on the fixture's history and on one
/// with 150 more tables (each with an index and a foreign key).
#[test]
#[ignore]
fn validation_time_per_draft() {
    let mut bigger = HISTORY.to_owned();
    for n in 0..150 {
        bigger.push_str(&format!(
            "CREATE TABLE t{n} (id bigint PRIMARY KEY, user_id bigint REFERENCES users, name text, created_at timestamptz DEFAULT now());\nCREATE INDEX t{n}_name_idx ON t{n} (name);\n"
        ));
    }
    for (history, label) in [(HISTORY, "2 tables"), (bigger.as_str(), "152 tables")] {
        let Some(mut fixture) = Fixture::with_history(history) else {
            return;
        };
        let cases: [TimedCase; 2] = [
            (
                "foreign key NOT VALID + VALIDATE",
                ADD_FOREIGN_KEY,
                vec![
                    ("ALTER TABLE orders ADD CONSTRAINT orders_user_id_fkey FOREIGN KEY (user_id) REFERENCES users (id) NOT VALID;", true),
                    ("ALTER TABLE orders VALIDATE CONSTRAINT orders_user_id_fkey;", true),
                ],
            ),
            (
                "CREATE INDEX CONCURRENTLY",
                ADD_INDEX,
                vec![("CREATE INDEX CONCURRENTLY orders_status_idx ON orders (status);", false)],
            ),
        ];
        for (case, original, steps) in cases {
            let draft = rewrite(&steps);
            let (cold, mut warm) = fixture.validator(original, async |validator| {
                let mut times = Vec::new();
                for _ in 0..6 {
                    let started = std::time::Instant::now();
                    assert_accepted(case, &validator.rewrite(&draft).await);
                    times.push(started.elapsed());
                }
                (times[0], times.split_off(1))
            });
            warm.sort();
            println!(
                "{label}, {case}: cold {:.0} ms, warm median {:.0} ms (best {:.0} ms)",
                cold.as_secs_f64() * 1000.0,
                warm[2].as_secs_f64() * 1000.0,
                warm[0].as_secs_f64() * 1000.0
            );
        }
        let (cold, mut warm) = fixture.validator(ADD_INDEX, async |validator| {
            let mut times = Vec::new();
            for _ in 0..6 {
                let mut draft = Down {
                    sql: "DROP INDEX orders_status_idx;".into(),
                    data_loss: false,
                    notes: String::new(),
                };
                let started = std::time::Instant::now();
                assert_accepted("down", &validator.down(&mut draft).await);
                times.push(started.elapsed());
            }
            (times[0], times.split_off(1))
        });
        warm.sort();
        println!(
            "{label}, down (DROP INDEX): cold {:.0} ms, warm median {:.0} ms (best {:.0} ms)",
            cold.as_secs_f64() * 1000.0,
            warm[2].as_secs_f64() * 1000.0,
            warm[0].as_secs_f64() * 1000.0
        );
    }
}

/// Every built-in fixer's drafts (the rewrite and the down) are accepted on the fixture the fixer
/// answers: a draft the validator rejects is a bug in one of the two.
#[test]
fn every_builtin_fixers_draft_is_accepted_on_its_own_fixture() {
    let Some(mut fixture) = Fixture::new() else {
        return;
    };
    // The rule each fixture answers, and the draft its fixer adds: a rewrite, or for a drop the
    // down that rebuilds what it dropped.
    let fixtures = [
        ("index-not-concurrent", ADD_INDEX, "rewrite"),
        (
            "add-foreign-key-without-not-valid",
            ADD_FOREIGN_KEY,
            "rewrite",
        ),
        ("set-not-null", SET_NOT_NULL, "rewrite"),
        (
            "add-check-without-not-valid",
            "ALTER TABLE orders ADD CONSTRAINT orders_total_positive CHECK (total > 0);",
            "rewrite",
        ),
        (
            "missing-lock-timeout",
            "ALTER TABLE users ADD COLUMN nickname text;",
            "rewrite",
        ),
        (
            "add-primary-key",
            "ALTER TABLE orders DROP CONSTRAINT orders_pkey;\n\
             ALTER TABLE orders ADD PRIMARY KEY (status);",
            "rewrite",
        ),
        ("drop-table", "DROP TABLE orders;", "down"),
        (
            "missing-lock-timeout",
            "ALTER TABLE orders DROP CONSTRAINT orders_pkey;",
            "down",
        ),
    ];
    let mut history = migagent::schema::Catalog::default();
    history.begin_migration();
    for statement in &sql::parse_text(HISTORY).statements {
        history.apply(HISTORY, statement);
    }
    for (rule, original, kind) in fixtures {
        let review = review::review_sql(
            "fixture.sql",
            &[HISTORY],
            original,
            Transaction::Wrapped,
            &ReviewOptions::default(),
        );
        assert!(
            review.findings.iter().any(|f| f.rule.id == rule),
            "{rule}: the fixture has no such finding"
        );
        let mut drafts = migagent::advice::builtin::drafts(&review, &mut history).drafts;
        let drafted = |d: &Draft| match d.body {
            Body::Rewrite(_) => kind == "rewrite",
            Body::Down(_) => kind == "down",
        };
        assert!(drafts.iter().any(drafted), "{rule}: no {kind} drafted");
        fixture.validator(original, async |validator| {
            validator.validate_drafts(&mut drafts).await
        });
        // A drop's rewrite keeps the drop, an error still: only its down is the fixer's answer.
        for draft in drafts.iter().filter(|d| kind == "rewrite" || drafted(d)) {
            assert_accepted(&format!("{rule}: {:?}", draft.body), &draft.validation);
        }
    }
}

/// `text` parsed, as one section in a transaction of its own.
fn in_a_transaction(text: &str) -> (sql::ParsedFile, [Section; 1]) {
    let sections = [Section {
        range: 0..text.len(),
        transaction: Transaction::Wrapped,
    }];
    (sql::parse_text(text), sections)
}

/// A baseline whose history was applied with the trace, and what the trace knows of it as of the
/// copy, as the review hands it to the validator.
fn traced_baseline(fixture: &mut Fixture, history: &str) -> (String, Known) {
    let shadow = &mut fixture.shadow;
    let database = shadow.create_database(None).unwrap();
    let (parsed, sections) = in_a_transaction(history);
    let lines = LineIndex::new(history);
    let script = Script::new(history, &parsed, &sections, &lines);
    let mut known = Known::default();
    let traces = shadow.block_on(apply_traced(
        &database.client,
        &database.monitor,
        &script,
        &mut known,
    ));
    assert!(traces.iter().all(|t| t.applied), "{traces:#?}");
    let baseline = shadow.seal_baseline(database, "traced").unwrap();
    (baseline, known.for_a_copy_without_schema())
}

#[test]
fn rewrites_traced_from_what_the_review_knew_get_the_verdicts_of_whole_reads() {
    let Some(mut fixture) = Fixture::new() else {
        return;
    };
    let (baseline, known) = traced_baseline(&mut fixture, HISTORY);
    let options = ReviewOptions::default();
    let rules = |catalog: &_, steps: &[Step]| review::step_errors(catalog, steps, &options);
    // Accepted, rejected for a rewrite (which the trace sees in the relations' file nodes),
    // steps that rename and re-create what the step before them made, and a step that deallocates
    // what the trace prepared on the session and leaves a `search_path` the next step must not get
    // (steps share the session: only the reset between them, which keeps prepared statements).
    let cases: [(&str, &[(&str, bool)]); 5] = [
        (
            ADD_FOREIGN_KEY,
            &[
                (
                    "ALTER TABLE orders ADD CONSTRAINT orders_user_id_fkey FOREIGN KEY (user_id) REFERENCES users (id) NOT VALID;",
                    true,
                ),
                (
                    "ALTER TABLE orders VALIDATE CONSTRAINT orders_user_id_fkey;",
                    true,
                ),
            ],
        ),
        (
            "ALTER TABLE orders ALTER COLUMN total TYPE text;",
            &[("ALTER TABLE orders ALTER COLUMN total TYPE text;", true)],
        ),
        (
            ADD_INDEX,
            &[
                ("CREATE INDEX CONCURRENTLY orders_status_tmp ON orders (status);", false),
                ("ALTER INDEX orders_status_tmp RENAME TO orders_status_idx;", true),
            ],
        ),
        (
            "CREATE TABLE archive (id bigint PRIMARY KEY); ALTER TABLE orders RENAME TO orders_old;",
            &[
                ("CREATE TABLE archive (id bigint PRIMARY KEY);", true),
                ("ALTER TABLE orders RENAME TO orders_old;", true),
            ],
        ),
        (
            "ALTER TABLE orders ADD COLUMN note text; CREATE INDEX orders_note_idx ON orders (note);",
            &[
                (
                    "DEALLOCATE ALL; SET search_path = pg_catalog; ALTER TABLE public.orders ADD COLUMN note text;",
                    false,
                ),
                ("CREATE INDEX CONCURRENTLY orders_note_idx ON orders (note);", false),
            ],
        ),
    ];
    for (original, steps) in cases {
        let draft = rewrite(steps);
        let (parsed, sections) = in_a_transaction(original);
        let original = Original {
            text: original,
            parsed: &parsed,
            sections: &sections,
        };
        let shadow = &fixture.shadow;
        let whole = Validator::new(shadow, &baseline, original, &rules);
        let knowing = Validator::new(shadow, &baseline, original, &rules).knowing(&known);
        let (whole, knowing) = shadow.block_on(async {
            let (mut whole, mut knowing) = (whole, knowing);
            (whole.rewrite(&draft).await, knowing.rewrite(&draft).await)
        });
        assert_eq!(knowing, whole, "{}", original.text);
        if original.text.contains("note") {
            assert_accepted(original.text, &knowing);
        }
    }
}

/// The references the review reads on its working database around the original (its catalog and
/// columns before, its schema after) give every draft the verdict of references read on a copy of
/// the baseline of their own; so do references whose schema and columns before are those read
/// after the migration before it; so does the last draft run on the baseline itself, which is then
/// gone (no database is left).
#[test]
fn the_reviews_references_and_the_last_draft_on_the_baseline_give_a_fresh_copys_verdicts() {
    let Some(mut fixture) = Fixture::with_history(ACCOUNTS) else {
        return;
    };
    let options = ReviewOptions::default();
    let rules = |catalog: &_, steps: &[Step]| review::step_errors(catalog, steps, &options);
    let cases = [
        (
            "ALTER TABLE accounts DROP COLUMN name;",
            "ALTER TABLE accounts ADD COLUMN name text;",
            "ALTER TABLE accounts DROP COLUMN name;",
        ),
        (
            "ALTER TABLE accounts RENAME COLUMN name TO title;",
            "ALTER TABLE accounts DROP COLUMN title;\nALTER TABLE accounts ADD COLUMN name text;",
            "ALTER TABLE accounts RENAME COLUMN name TO label;",
        ),
        (
            "CREATE INDEX accounts_name_idx ON accounts (name);",
            "DROP INDEX accounts_name_idx;",
            "CREATE INDEX CONCURRENTLY accounts_name_idx ON accounts (name);",
        ),
    ];
    for (original, down, step) in cases {
        let (parsed, sections) = in_a_transaction(original);
        let original = Original {
            text: original,
            parsed: &parsed,
            sections: &sections,
        };
        let shadow = &mut fixture.shadow;
        let working = shadow.create_database(Some(&fixture.baseline)).unwrap();
        let lines = LineIndex::new(original.text);
        let script = Script::new(original.text, &parsed, &sections, &lines);
        let (references, chained) = shadow.block_on(async {
            let client = &working.client;
            // What the review read after a migration before this one that left the schema as
            // it was, which the next one's references start from.
            let previous = "CREATE TABLE scratch (id int); DROP TABLE scratch;";
            let before = validate::read_before(client, None).await.unwrap();
            client.batch_execute(previous).await.unwrap();
            let (_, after) = validate::read_after(client, before, None).await.unwrap();
            let chained = validate::read_before(client, Some(after)).await.unwrap();
            let before = validate::read_before(client, None).await.unwrap();
            migagent::shadow::apply::apply(client, &script)
                .await
                .unwrap();
            let (references, _) = validate::read_after(client, before, None).await.unwrap();
            let (chained, _) = validate::read_after(client, chained, None).await.unwrap();
            (references, chained)
        });
        shadow.discard(working);
        // As the review reads them: the schema after the original from what its trace kept.
        let working = shadow.create_database(Some(&fixture.baseline)).unwrap();
        let traced = shadow.block_on(async {
            let client = &working.client;
            let before = validate::read_before(client, None).await.unwrap();
            let mut known = Known::default();
            let traces = apply_traced(client, &working.monitor, &script, &mut known).await;
            assert!(traces.iter().all(|t| t.applied), "{traces:#?}");
            let printing = validate::Printing::of([original.text]);
            let schema = printing.checked(client, known.schema()).await;
            assert!(schema.is_some(), "the trace's schema is taken");
            let (references, _) = validate::read_after(client, before, schema).await.unwrap();
            references
        });
        shadow.discard(working);
        // A baseline of its own for the validator that runs its last draft on it and drops it.
        let copy = shadow.create_database(Some(&fixture.baseline)).unwrap();
        let consumed = shadow.seal_baseline(copy, "consumed").unwrap();
        let shadow = &fixture.shadow;
        let baseline = &fixture.baseline;
        let own = Validator::new(shadow, baseline, original, &rules);
        let read = Validator::new(shadow, baseline, original, &rules).with_references(references);
        let chained = Validator::new(shadow, baseline, original, &rules).with_references(chained);
        let traced = Validator::new(shadow, baseline, original, &rules).with_references(traced);
        let last = Validator::new(shadow, &consumed, original, &rules).last_draft_on_the_baseline();
        let drafts = || {
            let down = Down {
                sql: down.to_owned(),
                data_loss: false,
                notes: String::new(),
            };
            let rewrite = rewrite(&[(step, !step.contains("CONCURRENTLY"))]);
            [Body::Down(down), Body::Rewrite(rewrite)].map(|body| Draft {
                source: Source::Builtin,
                attempts: 1,
                body,
                validation: Validation::skipped("not yet"),
            })
        };
        let (mut with_own, mut with_read, mut with_last) = (drafts(), drafts(), drafts());
        let (mut with_chained, mut with_traced) = (drafts(), drafts());
        shadow.block_on(async {
            let (mut own, mut read, mut last, mut chained) = (own, read, last, chained);
            let mut traced = traced;
            own.validate_drafts(&mut with_own).await;
            read.validate_drafts(&mut with_read).await;
            chained.validate_drafts(&mut with_chained).await;
            traced.validate_drafts(&mut with_traced).await;
            last.validate_drafts(&mut with_last).await;
        });
        for ((own, read), last) in with_own.iter().zip(&with_read).zip(&with_last) {
            assert_eq!(read.validation, own.validation, "{}", original.text);
            assert_eq!(last.validation, own.validation, "{}", original.text);
            assert_ne!(own.validation.status, Status::Skipped, "{own:?}");
        }
        assert_eq!(with_read, with_own, "data_loss as well");
        assert_eq!(
            with_chained, with_own,
            "from the previous migration's reads"
        );
        assert_eq!(with_last, with_own, "data_loss as well");
        assert_eq!(with_traced, with_own, "from the trace's schema");
    }
    fixture.assert_no_leftover_databases();
}

/// Migrations that change what dependents print (renames, retyped columns, a view over them,
/// defaults with dates and floats, enums, a function, a policy, a sequence's owner, a partition),
/// applied one after the other with the trace: after each, the schema the trace kept is the one a
/// fresh session reads whole. A migration that sets how names or values print (in its text, or at
/// run time from a function of the history) gets no schema from the trace.
#[test]
fn the_schema_the_trace_keeps_is_a_fresh_sessions_whole_read() {
    let history = "CREATE TABLE accounts (id bigint PRIMARY KEY, name text NOT NULL);
        CREATE FUNCTION quote_everything() RETURNS void LANGUAGE sql
            AS $$ SELECT pg_catalog.set_config('quote_all_identifiers', 'on', false) $$;";
    let Some(mut fixture) = Fixture::with_history(history) else {
        return;
    };
    let migrations = [
        "CREATE TYPE mood AS ENUM ('ok', 'sad');
         ALTER TABLE accounts ADD COLUMN mood mood DEFAULT 'ok',
             ADD COLUMN since timestamptz DEFAULT '2020-01-01 10:00:00+00',
             ADD COLUMN ratio float8 DEFAULT 0.1;
         CREATE VIEW named AS SELECT id, name, mood FROM accounts WHERE since > now();",
        "ALTER TABLE accounts RENAME COLUMN name TO title;
         ALTER TYPE mood ADD VALUE 'glad';
         ALTER TYPE mood RENAME VALUE 'sad' TO 'blue';
         CREATE SEQUENCE accounts_seq OWNED BY accounts.id;
         ALTER TABLE accounts ENABLE ROW LEVEL SECURITY;
         CREATE POLICY own ON accounts USING (title <> 'x');",
        "CREATE TABLE events (at date NOT NULL, account bigint REFERENCES accounts) PARTITION BY RANGE (at);
         CREATE TABLE events_2020 PARTITION OF events FOR VALUES FROM ('2020-01-01') TO ('2021-01-01');
         CREATE FUNCTION label(a accounts) RETURNS text LANGUAGE sql AS $$ SELECT a.title $$;
         ALTER TABLE accounts RENAME TO members;
         ALTER TABLE members ALTER COLUMN ratio TYPE numeric;",
        "DROP VIEW named; ALTER TABLE members DROP COLUMN mood; DROP TYPE mood;
         CREATE INDEX members_title ON members (lower(title)) WHERE since > '2019-06-01';",
    ];
    let shadow = &mut fixture.shadow;
    let working = shadow.create_database(Some(&fixture.baseline)).unwrap();
    let mut known = Known::default();
    // Applies `migration` with the trace: the schema the trace kept when it is taken, and a whole
    // read on another session, as on a copy of the database.
    let mut apply = |migration: &str| {
        let (parsed, sections) = in_a_transaction(migration);
        let lines = LineIndex::new(migration);
        let script = Script::new(migration, &parsed, &sections, &lines);
        shadow.block_on(async {
            let traces = apply_traced(&working.client, &working.monitor, &script, &mut known).await;
            assert!(traces.iter().all(|t| t.applied), "{migration}: {traces:#?}");
            let printing = validate::Printing::of([migration]);
            let traced = printing.checked(&working.client, known.schema()).await;
            let whole = snapshot(&working.monitor).await.unwrap();
            let traced = traced.cloned();
            working.client.batch_execute("RESET ALL").await.unwrap();
            (traced, whole)
        })
    };
    for migration in migrations {
        let (traced, whole) = apply(migration);
        assert_eq!(traced.as_ref(), Some(&whole), "{migration}");
    }
    let printing_changed = [
        "SET quote_all_identifiers = on; ALTER TABLE members ADD COLUMN a int;",
        "SET LOCAL \"DateStyle\" TO 'SQL, DMY'; ALTER TABLE members ADD COLUMN b date DEFAULT '2020-02-01';",
        "DO $$ BEGIN EXECUTE 'SET TIME ZONE ''Asia/Tokyo'''; END $$; ALTER TABLE members ADD COLUMN c int;",
        "SELECT quote_everything(); ALTER TABLE members ADD COLUMN d int;",
    ];
    for migration in printing_changed {
        let (traced, _) = apply(migration);
        assert!(
            traced.is_none(),
            "{migration}: the trace's schema is not taken"
        );
    }
    shadow.discard(working);
}

/// A reviewed migration's baseline is copied by the working database's own session: that session
/// stays (its prepared statements with it), the copy holds the tables but not the session's
/// temporary ones, the applying role has no CREATEDB afterwards, and the other connections are
/// open again.
#[test]
fn the_working_database_copies_itself_and_keeps_its_session() {
    let Some(mut fixture) = Fixture::new() else {
        return;
    };
    let shadow = &mut fixture.shadow;
    let working = shadow.create_database(Some(&fixture.baseline)).unwrap();
    let (pid, prepared) = shadow.block_on(async {
        let client = &working.client;
        client
            .batch_execute("CREATE TEMP TABLE scratch (id int); SET search_path = pg_temp")
            .await
            .unwrap();
        let prepared = client
            .prepare("SELECT count(*) FROM public.users")
            .await
            .unwrap();
        let pid: i32 = client
            .query_one("SELECT pg_backend_pid()", &[])
            .await
            .unwrap()
            .get(0);
        (pid, prepared)
    });
    let (copied, working) = shadow.copy_as_template(working).expect("reached again");
    let copied = copied.expect("the copy is made");
    shadow.block_on(async {
        let client = &working.client;
        let same: i32 = client
            .query_one("SELECT pg_backend_pid()", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(same, pid, "the same session");
        let users: i64 = client.query_one(&prepared, &[]).await.unwrap().get(0);
        assert_eq!(users, 2, "with its prepared statement");
        let may_create: bool = working
            .monitor
            .query_one(
                "SELECT rolcreatedb FROM pg_roles WHERE rolname = current_user",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        assert!(!may_create, "the applying role creates no database");
        let delegated = working
            .privileged
            .as_ref()
            .expect("the superuser connection");
        delegated.batch_execute("SELECT 1").await.unwrap();
    });
    let copy = shadow.block_on(shadow.open_template(&copied)).unwrap();
    let (users, temporary): (i64, i64) = shadow.block_on(async {
        let row = copy
            .client
            .query_one(
                "SELECT (SELECT count(*) FROM public.users),
                        (SELECT count(*) FROM pg_class WHERE relpersistence = 't')",
                &[],
            )
            .await
            .unwrap();
        (row.get(0), row.get(1))
    });
    assert_eq!((users, temporary), (2, 0));
    shadow.block_on(shadow.drop_copy(copy));
    shadow.discard(working);
}
