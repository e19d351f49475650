//! Property tests: whatever text arrives, split → parse → model → rules never panics, and every offset,
//! line and column it reports lies inside the input.

use migagent::migration::Transaction;
use migagent::review::{review_sql, ReviewOptions};
use migagent::sql;
use proptest::prelude::*;

/// Fragments that stress the splitter: quotes, dollar tags, comments, keywords rules react to.
fn fragment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("'".to_owned()),
        Just("''".to_owned()),
        Just("E'\\''".to_owned()),
        Just("\"".to_owned()),
        Just("$$".to_owned()),
        Just("$tag$".to_owned()),
        Just("$1".to_owned()),
        Just("--".to_owned()),
        Just("/*".to_owned()),
        Just("*/".to_owned()),
        Just(";".to_owned()),
        Just("(".to_owned()),
        Just(")".to_owned()),
        Just("\n".to_owned()),
        Just(" ".to_owned()),
        Just("\\".to_owned()),
        Just("é".to_owned()),
        Just("BEGIN".to_owned()),
        Just("COMMIT".to_owned()),
        Just("END".to_owned()),
        Just("CASE".to_owned()),
        Just("CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC".to_owned()),
        Just("CREATE TABLE t (id int PRIMARY KEY, a text)".to_owned()),
        Just("CREATE INDEX i ON t (a)".to_owned()),
        Just("CREATE INDEX CONCURRENTLY i ON ONLY t (a)".to_owned()),
        Just("DROP INDEX CONCURRENTLY IF EXISTS i".to_owned()),
        Just("ALTER TABLE t ADD COLUMN b int NOT NULL DEFAULT random()".to_owned()),
        Just("ALTER TABLE t ALTER COLUMN a TYPE varchar(10)".to_owned()),
        Just("ALTER TABLE t ALTER COLUMN a SET NOT NULL".to_owned()),
        Just("ALTER TABLE t ADD CONSTRAINT c CHECK (a IS NOT NULL) NOT VALID".to_owned()),
        Just("ALTER TABLE t ADD CONSTRAINT f FOREIGN KEY (a) REFERENCES u (id)".to_owned()),
        Just("ALTER TABLE t RENAME COLUMN a TO b".to_owned()),
        Just("ALTER TABLE t RENAME TO u".to_owned()),
        Just("DROP TABLE t".to_owned()),
        Just("SET LOCAL lock_timeout = '1s'".to_owned()),
        Just("-- migagent:ignore drop-table".to_owned()),
        Just("REINDEX TABLE CONCURRENTLY t".to_owned()),
        "[a-zA-Z_\"]{1,8}".prop_map(|s| s),
    ]
}

fn sql_soup() -> impl Strategy<Value = String> {
    prop::collection::vec(fragment(), 0..40).prop_map(|parts| parts.join(" "))
}

fn check_offsets(text: &str) {
    let parsed = sql::parse_text(text);
    for statement in &parsed.statements {
        assert!(statement.range.start <= statement.range.end);
        assert!(statement.range.end <= text.len());
        assert!(text.is_char_boundary(statement.range.start));
        assert!(text.is_char_boundary(statement.range.end));
    }
    for comment in &parsed.comments {
        assert!(comment.end <= text.len());
    }
    let lines = text.lines().count().max(1) + 1;
    for transaction in [Transaction::None, Transaction::Wrapped] {
        let review = review_sql(
            "soup.sql",
            &[text],
            text,
            transaction,
            &ReviewOptions::default(),
        );
        for finding in &review.findings {
            assert!(finding.offset <= text.len(), "{finding:?}");
            assert!(finding.position.line <= lines, "{finding:?}");
            assert!(finding.position.column >= 1);
            assert!(finding.statement < review.statements.len());
        }
        // The text report renders every finding without panicking.
        let mut out = String::new();
        migagent::report::text::render_migration(
            &mut out,
            &review,
            migagent::report::text::Style { color: false },
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn random_sql_soup_never_panics(text in sql_soup()) {
        check_offsets(&text);
    }

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        check_offsets(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn random_unicode_never_panics(text in "\\PC{0,200}") {
        check_offsets(&text);
    }
}
