//! `serial`, `bigserial` and `smallserial` are not types but a shorthand: an integer column, a
//! sequence it owns, and a `nextval()` default. The sequence is a separate object with its own
//! privileges, `CREATE TABLE … (LIKE … INCLUDING DEFAULTS)` copies the default and shares the
//! sequence, and ids inserted explicitly do not advance it, so later inserts collide. Identity
//! columns (PostgreSQL 10+, SQL standard) tie the sequence to the column and can refuse explicit ids.

use super::columns::{declared_columns, serial_integer, Declaration};
use super::syntax::sql_ident;
use super::{kinds, Category, Diagnostic, Kinds, Rule, Severity, StatementContext};

pub const RULE: Rule = Rule {
    id: "prefer-identity",
    category: Category::Hygiene,
    default_severity: Severity::Info,
    size_graded: false,
    summary: "serial/bigserial instead of identity columns",
    doc: include_str!("../../rules/prefer-identity.md"),
    check,
    kinds: Kinds::Only(&[kinds::CREATE, kinds::ALTER]),
};

/// The first version with identity columns: on older targets serial is the only choice.
const IDENTITY_SINCE: u32 = 10;

fn check(cx: &StatementContext, out: &mut Vec<Diagnostic>) {
    if cx.settings.pg_version < IDENTITY_SINCE {
        return;
    }
    for column in declared_columns(cx) {
        // `ALTER COLUMN … TYPE serial` is an error: serial exists only in column definitions.
        if column.declaration == Declaration::AlterType {
            continue;
        }
        let Some(integer) = serial_integer(column.data_type) else {
            continue;
        };
        let article = if integer == "integer" { "an" } else { "a" };
        let column_sql = sql_ident(&column.column);
        out.push(cx.diagnostic(
            column.offset,
            Some(&column.table),
            format!(
                "{}: serial is shorthand for {article} {integer} column with a sequence of its own and a \
                 nextval() default; the sequence needs its own grants, LIKE … INCLUDING DEFAULTS shares \
                 it with the copy, and ids inserted explicitly do not advance it, so later inserts fail \
                 with duplicate keys",
                column.subject(cx)
            ),
            format!(
                "use an identity column: `{column_sql} {integer} GENERATED ALWAYS AS IDENTITY` (BY \
                 DEFAULT if the application inserts ids itself); its sequence belongs to the column, \
                 needs no grants, and GENERATED ALWAYS rejects explicit ids unless the INSERT says \
                 OVERRIDING SYSTEM VALUE"
            ),
        ));
    }
}

#[cfg(test)]
mod tests {
    use crate::migration::Transaction;
    use crate::review::{review_sql, ReviewOptions};
    use crate::rules::testing::{check_rule, render_rule};
    use crate::rules::RuleSettings;

    const RULE: &str = "prefer-identity";

    #[test]
    fn fires_on_a_serial_column() {
        assert_eq!(
            check_rule(RULE, &[], "CREATE TABLE users (\n  id bigserial PRIMARY KEY\n);"),
            "\
info[prefer-identity]: column public.users.id is declared bigserial: serial is shorthand for a bigint column with a sequence of its own and a nextval() default; the sequence needs its own grants, LIKE … INCLUDING DEFAULTS shares it with the copy, and ids inserted explicitly do not advance it, so later inserts fail with duplicate keys
 --> migration.sql:2:6
  |
2 |   id bigserial PRIMARY KEY
  |      ^^^^^^^^^^^^^^^^^^^^^
  |
  = help: use an identity column: `id bigint GENERATED ALWAYS AS IDENTITY` (BY DEFAULT if the application inserts ids itself); its sequence belongs to the column, needs no grants, and GENERATED ALWAYS rejects explicit ids unless the INSERT says OVERRIDING SYSTEM VALUE

"
        );
    }

    #[test]
    fn fires_on_every_serial_spelling_at_its_type() {
        let report = check_rule(
            RULE,
            &["CREATE TABLE users (id bigint PRIMARY KEY);"],
            "CREATE TABLE t (a serial, b serial4, c smallserial, d serial8, \"E\" serial2);\n\
             ALTER TABLE users ADD COLUMN n serial;",
        );
        assert_eq!(
            report.matches("info[prefer-identity]").count(),
            6,
            "{report}"
        );
        for position in ["1:19", "1:29", "1:40", "1:55", "1:68", "2:32"] {
            assert!(
                report.contains(&format!("migration.sql:{position}")),
                "{position}\n{report}"
            );
        }
        assert!(
            report.contains("public.t.E is declared serial2"),
            "{report}"
        );
        assert!(
            report.contains("`c smallint GENERATED ALWAYS AS IDENTITY`"),
            "{report}"
        );
        assert!(report.contains("`\"E\" smallint GENERATED"), "{report}");
    }

    #[test]
    fn fires_inside_a_tool_transaction_and_drizzle_do_blocks() {
        let review = crate::rules::testing::review_in(
            &[],
            "DO $$ BEGIN\n CREATE TABLE t (id serial);\nEXCEPTION WHEN duplicate_table THEN null;\nEND $$;",
            Transaction::Wrapped,
        );
        let report = render_rule(RULE, &review);
        assert!(report.contains("migration.sql:2:21"), "{report}");
    }

    #[test]
    fn silent_on_identity_and_plain_integers() {
        for sql in [
            "CREATE TABLE t (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY);",
            "CREATE TABLE t (id integer GENERATED BY DEFAULT AS IDENTITY, n bigint);",
            "CREATE TABLE t (id \"serial\"(4));",
            "CREATE TEMPORARY TABLE t (id serial);",
        ] {
            assert_eq!(check_rule(RULE, &[], sql), "", "{sql}");
        }
    }

    #[test]
    fn silent_before_postgres_10() {
        let review = |pg_version| {
            let options = ReviewOptions {
                rule_settings: RuleSettings {
                    pg_version,
                    ..RuleSettings::default()
                },
                ..ReviewOptions::default()
            };
            render_rule(
                RULE,
                &review_sql(
                    "migration.sql",
                    &[],
                    "CREATE TABLE t (id serial);",
                    Transaction::None,
                    &options,
                ),
            )
        };
        assert_eq!(review(9), "");
        assert!(review(10).contains("info[prefer-identity]"));
    }
}
