//! `varchar(n)` is stored and processed exactly like `text`: the length limit is the only
//! difference, and it is a business rule baked into the column's type. Changing it later is an
//! `ALTER COLUMN … TYPE` under ACCESS EXCLUSIVE, and shortening it rewrites the table and all its
//! indexes. `text` with a CHECK constraint keeps the rule and can be changed without blocking.

use super::columns::declared_columns;
use super::syntax::sql_ident;
use super::{kinds, Category, Diagnostic, Kinds, Rule, Severity, StatementContext};

pub const RULE: Rule = Rule {
    id: "prefer-text",
    category: Category::Hygiene,
    default_severity: Severity::Info,
    size_graded: false,
    summary: "varchar(n) instead of text with a CHECK",
    doc: include_str!("../../rules/prefer-text.md"),
    check,
    kinds: Kinds::Only(&[kinds::CREATE, kinds::ALTER]),
};

fn check(cx: &StatementContext, out: &mut Vec<Diagnostic>) {
    for column in declared_columns(cx) {
        // `varchar(n)`, `character varying(n)`: unbounded varchar is text by another name.
        let limit = match column.catalog_type() {
            Some(t) if t.name == "varchar" => t.modifiers.first().copied(),
            _ => None,
        };
        let Some(limit) = limit else {
            continue;
        };
        let column_sql = sql_ident(&column.column);
        let constraint = sql_ident(&format!("{}_{}_length", column.table.name, column.column));
        out.push(cx.diagnostic(
            column.offset,
            Some(&column.table),
            format!(
                "{}: varchar(n) is stored and processed exactly like text, the limit is the only \
                 difference, and changing it later is an ALTER COLUMN TYPE under ACCESS EXCLUSIVE \
                 (shortening it rewrites the table and all its indexes)",
                column.subject(cx)
            ),
            format!(
                "declare it text, with a CHECK if the limit is a real rule: `{column_sql} text CONSTRAINT \
                 {constraint} CHECK (char_length({column_sql}) <= {limit})`; a CHECK can later be \
                 replaced by one added NOT VALID and validated separately, without blocking reads or writes"
            ),
        ));
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::testing::check_rule;

    const RULE: &str = "prefer-text";

    #[test]
    fn fires_on_a_bounded_varchar() {
        assert_eq!(
            check_rule(RULE, &[], "CREATE TABLE users (id bigint, email varchar(255));"),
            "\
info[prefer-text]: column public.users.email is declared varchar(255): varchar(n) is stored and processed exactly like text, the limit is the only difference, and changing it later is an ALTER COLUMN TYPE under ACCESS EXCLUSIVE (shortening it rewrites the table and all its indexes)
 --> migration.sql:1:38
  |
1 | CREATE TABLE users (id bigint, email varchar(255));
  |                                      ^^^^^^^^^^^^^
  |
  = help: declare it text, with a CHECK if the limit is a real rule: `email text CONSTRAINT users_email_length CHECK (char_length(email) <= 255)`; a CHECK can later be replaced by one added NOT VALID and validated separately, without blocking reads or writes

"
        );
    }

    #[test]
    fn fires_on_every_spelling_and_statement() {
        let report = check_rule(
            RULE,
            &["CREATE TABLE users (id bigint, name text);"],
            "CREATE TABLE \"Post\" (\"title\" VARCHAR(191) NOT NULL, b character varying(10), \
             c varchar(3)[], d pg_catalog.varchar(5));\n\
             ALTER TABLE users ADD COLUMN code varchar(8), ALTER COLUMN name SET DATA TYPE varchar(100);",
        );
        assert_eq!(report.matches("info[prefer-text]").count(), 6, "{report}");
        assert!(
            report.contains(
                "`title text CONSTRAINT \"Post_title_length\" CHECK (char_length(title) <= 191)`"
            ),
            "{report}"
        );
        assert!(
            report.contains("public.users.name is changed to varchar(100)"),
            "{report}"
        );
        assert!(report.contains("char_length(d) <= 5"), "{report}");
        assert!(report.contains("migration.sql:2:79"), "{report}");
    }

    #[test]
    fn silent_on_text_and_unbounded_varchar() {
        for sql in [
            "CREATE TABLE t (a text, b varchar, c character varying, d char(3));",
            "ALTER TABLE t ALTER COLUMN a TYPE text;",
        ] {
            assert_eq!(check_rule(RULE, &[], sql), "", "{sql}");
        }
    }
}
