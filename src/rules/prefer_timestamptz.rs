//! `timestamp` (without time zone) stores a wall-clock reading with no zone: the instant it means
//! depends on the TimeZone of the session that wrote it, `now()` and `timestamptz` values are
//! converted through the session's TimeZone on the way in, and the hour repeated when daylight
//! saving time ends is ambiguous. `timestamptz` takes the same 8 bytes and stores an absolute instant.

use super::columns::declared_columns;
use super::syntax::sql_ident;
use super::{kinds, Category, Diagnostic, Kinds, Rule, Severity, StatementContext};

pub const RULE: Rule = Rule {
    id: "prefer-timestamptz",
    category: Category::Hygiene,
    default_severity: Severity::Info,
    size_graded: false,
    summary: "timestamp without time zone",
    doc: include_str!("../../rules/prefer-timestamptz.md"),
    check,
    kinds: Kinds::Only(&[kinds::CREATE, kinds::ALTER]),
};

fn check(cx: &StatementContext, out: &mut Vec<Diagnostic>) {
    for column in declared_columns(cx) {
        // `timestamp`, `timestamp(p)`, `timestamp without time zone`, `pg_catalog.timestamp`.
        if !column.is("timestamp") {
            continue;
        }
        let column_sql = sql_ident(&column.column);
        out.push(cx.diagnostic(
            column.offset,
            Some(&column.table),
            format!(
                "{}: a timestamp without time zone is a wall-clock reading, so the instant it stands for \
                 depends on the TimeZone of the session that wrote it, now() is converted to the \
                 session's local time on the way in, and the hour repeated when daylight saving time \
                 ends is ambiguous",
                column.subject(cx)
            ),
            format!(
                "declare it timestamptz (`{column_sql} timestamptz`): the same 8 bytes, stored as an \
                 absolute instant and shown in each session's TimeZone; converting an existing column \
                 later rewrites the table under ACCESS EXCLUSIVE unless the session's TimeZone is UTC"
            ),
        ));
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::testing::check_rule;

    const RULE: &str = "prefer-timestamptz";

    #[test]
    fn fires_on_a_timestamp_column() {
        assert_eq!(
            check_rule(
                RULE,
                &[],
                "CREATE TABLE events (id bigint, created_at timestamp NOT NULL DEFAULT now());"
            ),
            "\
info[prefer-timestamptz]: column public.events.created_at is declared timestamp: a timestamp without time zone is a wall-clock reading, so the instant it stands for depends on the TimeZone of the session that wrote it, now() is converted to the session's local time on the way in, and the hour repeated when daylight saving time ends is ambiguous
 --> migration.sql:1:44
  |
1 | CREATE TABLE events (id bigint, created_at timestamp NOT NULL DEFAULT now());
  |                                            ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
  |
  = help: declare it timestamptz (`created_at timestamptz`): the same 8 bytes, stored as an absolute instant and shown in each session's TimeZone; converting an existing column later rewrites the table under ACCESS EXCLUSIVE unless the session's TimeZone is UTC

"
        );
    }

    #[test]
    fn fires_on_every_spelling_and_statement() {
        let report = check_rule(
            RULE,
            &["CREATE TABLE events (id bigint, at timestamptz);"],
            "CREATE TABLE \"Log\" (\"createdAt\" TIMESTAMP(3), b timestamp without time zone, \
             c timestamp(6) without time zone[], d pg_catalog.timestamp);\n\
             ALTER TABLE events ADD COLUMN seen timestamp, ALTER COLUMN at TYPE timestamp;",
        );
        assert_eq!(
            report.matches("info[prefer-timestamptz]").count(),
            6,
            "{report}"
        );
        assert!(
            report.contains("column public.Log.createdAt is declared timestamp(3)"),
            "{report}"
        );
        assert!(
            report.contains("column public.events.at is changed to timestamp"),
            "{report}"
        );
        assert!(report.contains("migration.sql:2:68"), "{report}");
    }

    #[test]
    fn silent_on_timestamptz_and_other_types() {
        for sql in [
            "CREATE TABLE t (a timestamptz, b timestamp with time zone, c timestamptz(3), d date, e time);",
            "ALTER TABLE t ALTER COLUMN a TYPE timestamptz USING a AT TIME ZONE 'UTC';",
            "CREATE TABLE t (a \"TIMESTAMP\");",
        ] {
            assert_eq!(check_rule(RULE, &[], sql), "", "{sql}");
        }
    }
}
