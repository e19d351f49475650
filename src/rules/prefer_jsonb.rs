//! `json` keeps the input text as it was written and re-parses it every time an operator or function
//! reads it. It has no equality operator (no DISTINCT, GROUP BY, UNION or unique index on it) and no
//! GIN operator class. `jsonb` is parsed once, compares, and indexes.

use super::columns::declared_columns;
use super::syntax::sql_ident;
use super::{kinds, Category, Diagnostic, Kinds, Rule, Severity, StatementContext};

pub const RULE: Rule = Rule {
    id: "prefer-jsonb",
    category: Category::Hygiene,
    default_severity: Severity::Warning,
    size_graded: false,
    summary: "json instead of jsonb",
    doc: include_str!("../../rules/prefer-jsonb.md"),
    check,
    kinds: Kinds::Only(&[kinds::CREATE, kinds::ALTER]),
};

fn check(cx: &StatementContext, out: &mut Vec<Diagnostic>) {
    for column in declared_columns(cx) {
        if !column.is("json") {
            continue;
        }
        let column_sql = sql_ident(&column.column);
        out.push(cx.diagnostic(
            column.offset,
            Some(&column.table),
            format!(
                "{}: json stores the input text and re-parses it on every access, has no equality \
                 operator (no DISTINCT, GROUP BY, UNION or unique index on it) and cannot be indexed \
                 with GIN",
                column.subject(cx)
            ),
            format!(
                "declare it jsonb (`{column_sql} jsonb`): parsed once on input, comparable, and \
                 indexable with GIN for @>, ? and jsonpath queries; keep json only if the exact input \
                 text (key order, duplicate keys, whitespace) must be preserved"
            ),
        ));
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::testing::check_rule;

    const RULE: &str = "prefer-jsonb";

    #[test]
    fn fires_on_each_json_column_at_its_type() {
        let report = check_rule(
            RULE,
            &[],
            "CREATE TABLE events (\n  id bigint,\n  payload json NOT NULL,\n  meta JSON,\n  tags json[]\n);",
        );
        assert!(
            report.starts_with(
                "\
warning[prefer-jsonb]: column public.events.payload is declared json: json stores the input text and re-parses it on every access, has no equality operator (no DISTINCT, GROUP BY, UNION or unique index on it) and cannot be indexed with GIN
 --> migration.sql:3:11
  |
3 |   payload json NOT NULL,
  |           ^^^^^^^^^^^^^^
  |
  = help: declare it jsonb (`payload jsonb`): parsed once on input, comparable, and indexable with GIN for @>, ? and jsonpath queries; keep json only if the exact input text (key order, duplicate keys, whitespace) must be preserved
"
            ),
            "{report}"
        );
        assert_eq!(
            report.matches("warning[prefer-jsonb]").count(),
            3,
            "{report}"
        );
        assert!(report.contains("migration.sql:4:8"), "{report}");
        assert!(report.contains("migration.sql:5:8"), "{report}");
        assert!(
            report.contains("public.events.tags is declared json[]"),
            "{report}"
        );
    }

    #[test]
    fn fires_on_add_column_and_type_changes_even_on_new_tables() {
        let report = check_rule(
            RULE,
            &["CREATE TABLE users (id bigint PRIMARY KEY, prefs jsonb);"],
            "ALTER TABLE users ADD COLUMN settings \"json\", ALTER COLUMN prefs TYPE pg_catalog.json;",
        );
        assert!(
            report.contains("public.users.settings is declared \"json\""),
            "{report}"
        );
        assert!(
            report.contains("public.users.prefs is changed to pg_catalog.json"),
            "{report}"
        );
    }

    #[test]
    fn silent_on_jsonb_and_user_types_named_json() {
        for sql in [
            "CREATE TABLE t (a jsonb, b jsonb[], c text);",
            "ALTER TABLE t ALTER COLUMN a TYPE jsonb USING a::jsonb;",
            "CREATE TABLE t (a app.json);",
            "CREATE FOREIGN TABLE t (a json) SERVER s;",
        ] {
            assert_eq!(check_rule(RULE, &[], sql), "", "{sql}");
        }
    }
}
