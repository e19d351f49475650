use super::drafts;
use crate::advice::draft::{Body, Down, Rewrite, Status};
use crate::migration::Transaction;
use crate::rules::testing::review_in;
use crate::schema::Catalog;
use crate::sql;

const HISTORY: &str =
    "CREATE TABLE users (id bigint PRIMARY KEY, email text, age int DEFAULT 0);\n\
                       CREATE TABLE orders (id bigint PRIMARY KEY, user_id bigint);";

fn catalog(history: &str) -> Catalog {
    let mut catalog = Catalog::default();
    catalog.begin_migration();
    for statement in &sql::parse_text(history).statements {
        catalog.apply(history, statement);
    }
    catalog
}

fn built(sql: &str, transaction: Transaction) -> (Option<Rewrite>, Option<Down>, Vec<String>) {
    let review = review_in(&[HISTORY], sql, transaction);
    let built = drafts(&review, &mut catalog(HISTORY));
    let (mut rewrite, mut down) = (None, None);
    for draft in built.drafts {
        assert_eq!(draft.validation.status, Status::Skipped);
        match draft.body {
            Body::Rewrite(r) => rewrite = Some(r),
            Body::Down(d) => down = Some(d),
        }
    }
    (rewrite, down, built.notes)
}

#[test]
fn fixes_replace_their_statements_and_the_rest_keeps_its_transaction() {
    let (rewrite, _, notes) = built(
        "ALTER TABLE users ADD COLUMN name text;\n\
         CREATE INDEX users_email_idx ON users (email);\n\
         ALTER TABLE users ADD COLUMN nick text;\n\
         ALTER TABLE users ADD COLUMN bio text;",
        Transaction::Wrapped,
    );
    assert_eq!(notes, Vec::<String>::new());
    let steps: Vec<(String, bool)> = rewrite
        .expect("a rewrite")
        .steps
        .into_iter()
        .map(|s| (s.sql, s.transactional))
        .collect();
    assert_eq!(
        steps,
        [
            (
                "SET lock_timeout = '5s';\nALTER TABLE users ADD COLUMN name text;".to_owned(),
                true
            ),
            (
                "CREATE INDEX CONCURRENTLY users_email_idx ON users (email);".to_owned(),
                false
            ),
            (
                "ALTER TABLE users ADD COLUMN nick text;\nALTER TABLE users ADD COLUMN bio text;"
                    .to_owned(),
                true
            ),
        ]
    );
}

#[test]
fn no_rewrite_without_a_fix() {
    let (rewrite, down, _) = built(
        "SET lock_timeout = '2s';\nALTER TABLE users ADD COLUMN name text;",
        Transaction::None,
    );
    assert_eq!(rewrite, None);
    assert_eq!(
        down.expect("a down").sql,
        "ALTER TABLE public.users DROP COLUMN name;"
    );
}

#[test]
fn the_down_undoes_each_statement_in_reverse_order() {
    let (_, down, notes) = built(
        "SET lock_timeout = '2s';\n\
         CREATE TABLE tags (id bigint PRIMARY KEY, name text);\n\
         CREATE INDEX ON users (email);\n\
         ALTER TABLE users ALTER COLUMN age SET DEFAULT 18, ALTER COLUMN email SET NOT NULL;\n\
         ALTER TABLE orders RENAME COLUMN user_id TO customer_id;\n\
         ALTER TABLE orders ADD CONSTRAINT orders_customer_fkey FOREIGN KEY (customer_id) \
         REFERENCES users (id) NOT VALID;\n\
         ALTER TABLE orders RENAME TO purchases;",
        Transaction::None,
    );
    assert_eq!(notes, Vec::<String>::new());
    let down = down.expect("a down");
    assert_eq!(
        down.sql,
        "ALTER TABLE public.purchases RENAME TO orders;\n\
         ALTER TABLE public.orders DROP CONSTRAINT orders_customer_fkey;\n\
         ALTER TABLE public.orders RENAME COLUMN customer_id TO user_id;\n\
         ALTER TABLE public.users ALTER COLUMN email DROP NOT NULL;\n\
         ALTER TABLE public.users ALTER COLUMN age SET DEFAULT 0;\n\
         DROP INDEX public.users_email_idx;\n\
         DROP TABLE public.tags;"
    );
    assert!(!down.data_loss);
}

#[test]
fn a_dropped_column_comes_back_empty_and_says_so() {
    let (_, down, _) = built(
        "SET lock_timeout = '2s';\nALTER TABLE users DROP COLUMN age;",
        Transaction::None,
    );
    let down = down.expect("a down");
    assert_eq!(
        down.sql,
        "ALTER TABLE public.users ADD COLUMN age INT DEFAULT 0;"
    );
    assert!(down.data_loss);
}

#[test]
fn data_changes_have_no_down_and_say_why() {
    let (_, down, notes) = built(
        "SET lock_timeout = '2s';\nUPDATE users SET age = 1;",
        Transaction::None,
    );
    assert_eq!(down, None);
    assert_eq!(
        notes,
        [
            "no built-in down migration: statement 2 (line 2) cannot be undone from the schema \
          model: it changes rows, and the rows it changed are not known"
        ]
    );
}

#[test]
fn fixes_that_each_replace_one_statement_are_not_combined() {
    let (rewrite, _, notes) = built(
        "ALTER TABLE users ADD CONSTRAINT a CHECK (age > 0), ADD CONSTRAINT b CHECK (age < 200);",
        Transaction::None,
    );
    // Beside other operations a fix would drop them: no fix, so the rewrite has only the preamble.
    let rewrite = rewrite.expect("the lock_timeout preamble");
    assert_eq!(rewrite.steps.len(), 2, "{rewrite:?}");
    assert_eq!(notes, Vec::<String>::new());
}

#[test]
fn a_dropped_column_comes_back_with_what_was_dropped_with_it() {
    let history = "CREATE TABLE users (id bigint PRIMARY KEY, code text NOT NULL DEFAULT 'x' \
                   UNIQUE, region text, score int NOT NULL, CHECK (score > 0));\n\
                   CREATE INDEX users_region_code_idx ON users (region, lower(code));\n\
                   CREATE TABLE invites (id bigint, code text REFERENCES users (code));";
    let review = review_in(
        &[history],
        "ALTER TABLE users DROP COLUMN code CASCADE, DROP COLUMN score;",
        Transaction::Wrapped,
    );
    let built = drafts(&review, &mut catalog(history));
    let down = built
        .drafts
        .into_iter()
        .find_map(|d| match d.body {
            Body::Down(down) => Some(down),
            Body::Rewrite(_) => None,
        })
        .expect("a down");
    assert_eq!(
        down.sql.lines().collect::<Vec<_>>(),
        [
            "ALTER TABLE public.users ADD COLUMN score INT;",
            "ALTER TABLE public.users ADD CONSTRAINT users_score_check CHECK (score > 0) NOT VALID;",
            "ALTER TABLE public.users VALIDATE CONSTRAINT users_score_check;",
            "ALTER TABLE public.users ADD COLUMN code TEXT;",
            "ALTER TABLE public.users ALTER COLUMN code SET DEFAULT 'x';",
            "ALTER TABLE public.users ADD CONSTRAINT users_code_key UNIQUE (code);",
            "CREATE INDEX users_region_code_idx ON public.users (region, (lower(code)));",
            "ALTER TABLE public.invites ADD CONSTRAINT invites_code_fkey FOREIGN KEY (code) \
             REFERENCES public.users (code) NOT VALID;",
            "ALTER TABLE public.invites VALIDATE CONSTRAINT invites_code_fkey;",
        ],
        "{}",
        down.sql
    );
    assert!(down.data_loss);
    assert!(
        down.notes.contains(
            "Column public.users.code comes back NULL in every row (its default in every row \
             would break its uniqueness), so it comes back nullable"
        ),
        "{}",
        down.notes
    );
    assert!(down.notes.contains("Views that CASCADE dropped"));
}
