//! `char(n)` (`character(n)`, `bpchar`) pads every value with spaces to n characters. Whether the
//! padding counts depends on the operation: comparisons ignore it and casts to text drop it, but LIKE
//! and regular expressions see it. It saves no space or time over `text`, and a longer value is an
//! error. The single-byte internal type `"char"` is a different type and is not reported.

use super::columns::declared_columns;
use super::syntax::sql_ident;
use super::{kinds, Category, Diagnostic, Kinds, Rule, Severity, StatementContext};

pub const RULE: Rule = Rule {
    id: "ban-char-type",
    category: Category::Hygiene,
    default_severity: Severity::Info,
    size_graded: false,
    summary: "char(n)",
    doc: include_str!("../../rules/ban-char-type.md"),
    check,
    kinds: Kinds::Only(&[kinds::CREATE, kinds::ALTER]),
};

fn check(cx: &StatementContext, out: &mut Vec<Diagnostic>) {
    for column in declared_columns(cx) {
        // `char(n)`, `character(n)`, `char` (= `char(1)`), `bpchar`, `nchar(n)`; not the
        // internal `"char"`, whose catalog name is `char`.
        let Some(blank_padded) = column
            .catalog_type()
            .filter(|t| t.name == "bpchar" || t.name == "nchar")
        else {
            continue;
        };
        let length = blank_padded.modifiers.first();
        let column_sql = sql_ident(&column.column);
        let fixed = match length {
            Some(n) => format!(
                " (a fixed length: `{column_sql} text CHECK (char_length({column_sql}) = {n})`)"
            ),
            None => String::new(),
        };
        out.push(cx.diagnostic(
            column.offset,
            Some(&column.table),
            format!(
                "{}: char(n) pads every value with spaces to n characters; comparisons ignore the \
                 padding and casts to text drop it, but LIKE and regular expressions see it, it saves no \
                 space or time over text, and a longer value is an error",
                column.subject(cx)
            ),
            format!("declare it text{fixed}, or varchar(n) if the limit is all you need"),
        ));
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::testing::check_rule;

    const RULE: &str = "ban-char-type";

    #[test]
    fn fires_on_a_char_column() {
        assert_eq!(
            check_rule(RULE, &[], "CREATE TABLE countries (code char(2) PRIMARY KEY, name text);"),
            "\
info[ban-char-type]: column public.countries.code is declared char(2): char(n) pads every value with spaces to n characters; comparisons ignore the padding and casts to text drop it, but LIKE and regular expressions see it, it saves no space or time over text, and a longer value is an error
 --> migration.sql:1:30
  |
1 | CREATE TABLE countries (code char(2) PRIMARY KEY, name text);
  |                              ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
  |
  = help: declare it text (a fixed length: `code text CHECK (char_length(code) = 2)`), or varchar(n) if the limit is all you need

"
        );
    }

    #[test]
    fn fires_on_every_spelling_and_statement() {
        let report = check_rule(
            RULE,
            &["CREATE TABLE t (id bigint, b text);"],
            "CREATE TABLE u (a character(3), b char, c bpchar, d pg_catalog.bpchar(4), e nchar(2), f char(2)[]);\n\
             ALTER TABLE t ADD COLUMN c CHARACTER(5), ALTER COLUMN b TYPE char(10);",
        );
        assert_eq!(report.matches("info[ban-char-type]").count(), 8, "{report}");
        assert!(report.contains("char_length(b) = 1"), "{report}");
        assert!(report.contains("char_length(d) = 4"), "{report}");
        assert!(
            report.contains("public.u.c is declared bpchar: "),
            "{report}"
        );
        assert!(
            report.contains("public.t.b is changed to char(10)"),
            "{report}"
        );
    }

    #[test]
    fn silent_on_the_internal_char_type_and_varying_types() {
        for sql in [
            "CREATE TABLE t (a \"char\", b pg_catalog.\"char\", c varchar(2), d character varying(3), e text);",
            "ALTER TABLE t ALTER COLUMN a TYPE text;",
        ] {
            assert_eq!(check_rule(RULE, &[], sql), "", "{sql}");
        }
    }
}
