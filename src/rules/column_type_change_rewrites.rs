//! `ALTER COLUMN … TYPE` rewrites the table and rebuilds every index on it under ACCESS EXCLUSIVE
//! unless the old type converts to the new one without touching the data (binary-coercible):
//! same type, varchar(n) to varchar(m ≥ n), unbounded varchar or text, text to unbounded varchar,
//! numeric(p,s) to numeric(p' ≥ p, s) or unconstrained numeric, a larger timestamp/time precision.
//! timestamp ↔ timestamptz skips the rewrite (PostgreSQL 12+) only when the session TimeZone is UTC.
//! A `USING` clause is treated as a rewrite. The old type comes from the schema model; when the model
//! does not know it the rule still fires and says so.

use sqlparser::ast::{AlterColumnOperation, AlterTableOperation};

use super::syntax::AlterTable;
use super::types::PgType;
use super::{kinds, Category, Diagnostic, Kinds, Rule, Severity, StatementContext};
use crate::sql::name::fold_ident;
use crate::sql::TokenKind;

pub const RULE: Rule = Rule {
    id: "column-type-change-rewrites",
    category: Category::Locking,
    default_severity: Severity::Error,
    size_graded: true,
    summary: "ALTER COLUMN TYPE that rewrites the table under ACCESS EXCLUSIVE",
    doc: include_str!("../../rules/column-type-change-rewrites.md"),
    check,
    kinds: Kinds::Only(&[kinds::ALTER]),
};

/// The first version that converts timestamp ↔ timestamptz without a rewrite under a UTC TimeZone.
const UTC_SHORTCUT_SINCE: u32 = 12;

/// Time zones with a zero UTC offset, for which PostgreSQL skips the timestamp ↔ timestamptz rewrite.
const UTC_ZONES: &[&str] = &[
    "utc",
    "etc/utc",
    "uct",
    "etc/uct",
    "gmt",
    "etc/gmt",
    "zulu",
    "etc/zulu",
    "universal",
    "etc/universal",
];

const HELP: &str = "to change it without blocking, add a new column of the new type, keep it in sync \
                    with a trigger, backfill it in batches and swap the columns in one short transaction \
                    (widening varchar(n) to a longer varchar or text, or numeric(p,s) to a larger \
                    precision with the same scale, needs no rewrite)";

fn check(cx: &StatementContext, out: &mut Vec<Diagnostic>) {
    let Some(alter) = AlterTable::of(cx) else {
        return;
    };
    let table = &alter.table;
    for (i, operation) in alter.operations.iter().enumerate() {
        let AlterTableOperation::AlterColumn {
            column_name,
            op:
                AlterColumnOperation::SetDataType {
                    data_type, using, ..
                },
        } = operation
        else {
            continue;
        };
        let column = fold_ident(column_name);
        let old = cx.catalog.column(table, &column);
        let old_type = old.and_then(|c| c.data_type.as_ref());
        // Decided before any message is written: most type changes of a schema dump rewrite nothing.
        let verdict = match (using, old_type) {
            (None, Some(old_type)) => Some(verdict(
                &PgType::of(old_type),
                &PgType::of(data_type),
                cx.settings.pg_version,
            )),
            _ => None,
        };
        match verdict {
            Some(Verdict::NoRewrite) => continue,
            Some(Verdict::UnlessUtc) if session_time_zone_is_utc(cx) => continue,
            _ => {}
        }
        let name = cx.qualified(table);
        let new_sql = data_type.to_string().to_lowercase();
        let change = format!("ALTER COLUMN {column} TYPE {new_sql}");
        let rewrites = format!("rewrites {name} and all its indexes under ACCESS EXCLUSIVE");
        let blocked =
            format!("reads and writes on {name} are blocked until every row is rewritten");
        let (message, help) = if using.is_some() {
            (
                format!(
                    "{change} USING … on existing table {name} {rewrites}: the USING expression is \
                     computed for every row, and {blocked}"
                ),
                HELP.to_owned(),
            )
        } else if let (Some(old_type), Some(verdict)) = (old_type, verdict) {
            let old_sql = old_type.to_string().to_lowercase();
            match verdict {
                Verdict::NoRewrite => continue,
                Verdict::Rewrite => (
                    format!(
                        "{change} on existing table {name} {rewrites}: {old_sql} to {new_sql} is not \
                         binary-coercible, so {blocked}"
                    ),
                    HELP.to_owned(),
                ),
                Verdict::UnlessUtc => (
                    format!(
                        "{change} on existing table {name} {rewrites} unless the server's TimeZone is \
                         UTC: {old_sql} to {new_sql} converts every value through the session TimeZone, \
                         and only under UTC (zero offset) does PostgreSQL skip the rewrite"
                    ),
                    format!(
                        "if the stored values are UTC, put `SET TimeZone = 'UTC';` before it in the \
                         migration (then no row is rewritten); otherwise {HELP}"
                    ),
                ),
            }
        } else {
            let why = if old.is_some() {
                "its type could not be read from the migration that created it"
            } else {
                "reviewed without the migration that created it"
            };
            (
                format!(
                    "the previous type of {}.{column} is unknown to migagent ({why}); unless the change \
                     is binary-coercible, {change} {rewrites}, and {blocked}",
                    table.name
                ),
                HELP.to_owned(),
            )
        };
        out.push(cx.diagnostic(alter.offset(cx, i), Some(table), message, help));
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    NoRewrite,
    Rewrite,
    /// timestamp ↔ timestamptz: no rewrite only when the session TimeZone has a zero offset.
    UnlessUtc,
}

fn verdict(old: &PgType, new: &PgType, pg_version: u32) -> Verdict {
    if old == new {
        return Verdict::NoRewrite;
    }
    if old.array || new.array {
        return Verdict::Rewrite;
    }
    // A bound that is dropped or grows keeps every value as it is.
    let widens = |index: usize| match (old.modifiers.get(index), new.modifiers.get(index)) {
        (_, None) => true,
        (Some(old), Some(new)) => new >= old,
        (None, Some(_)) => false,
    };
    let ok = |no_rewrite: bool| {
        if no_rewrite {
            Verdict::NoRewrite
        } else {
            Verdict::Rewrite
        }
    };
    match (old.name.as_str(), new.name.as_str()) {
        ("varchar", "varchar") => ok(widens(0)),
        ("varchar", "text") | ("cidr", "inet") => Verdict::NoRewrite,
        ("text", "varchar") => ok(new.modifiers.is_empty()),
        ("numeric", "numeric") => ok(new.modifiers.is_empty()
            || (old.modifiers.len() == 2
                && widens(0)
                && old.modifiers.get(1) == new.modifiers.get(1))),
        (a, b) if a == b && matches!(a, "timestamp" | "timestamptz" | "time" | "varbit") => {
            ok(widens(0))
        }
        ("timestamp", "timestamptz") | ("timestamptz", "timestamp") => {
            if pg_version >= UTC_SHORTCUT_SINCE && widens(0) {
                Verdict::UnlessUtc
            } else {
                Verdict::Rewrite
            }
        }
        _ => Verdict::Rewrite,
    }
}

/// Whether an earlier statement of the migration set the session TimeZone to UTC
/// (`SET [LOCAL] TimeZone = 'UTC'`, `SET TIME ZONE 'UTC'`).
fn session_time_zone_is_utc(cx: &StatementContext) -> bool {
    let mut utc = false;
    for statement in cx.earlier_set_commands().iter().map(|&i| &cx.statements[i]) {
        let words: Vec<String> = statement
            .tokens
            .iter()
            .filter(|t| t.kind != TokenKind::Punct)
            .map(|t| {
                cx.text[t.range()]
                    .trim_matches(|c| c == '\'' || c == '"')
                    .to_lowercase()
            })
            .collect();
        let mut at = 1;
        if matches!(words.get(at).map(String::as_str), Some("local" | "session")) {
            at += 1;
        }
        let value = match (
            words.get(at).map(String::as_str),
            words.get(at + 1).map(String::as_str),
        ) {
            (Some("timezone"), Some("to")) => words.get(at + 2),
            (Some("timezone"), _) => words.get(at + 1),
            (Some("time"), Some("zone")) => words.get(at + 2),
            _ => continue,
        };
        utc = value.is_some_and(|v| UTC_ZONES.contains(&v.as_str()));
    }
    utc
}

#[cfg(test)]
mod tests {
    use super::{verdict, PgType, Verdict};
    use crate::migration::Transaction;
    use crate::review::{review_sql, ReviewOptions};
    use crate::rules::testing::{check_rule, render_rule};
    use crate::rules::RuleSettings;
    use sqlparser::ast::{AlterColumnOperation, AlterTableOperation, DataType, Statement};
    use sqlparser::dialect::PostgreSqlDialect;
    use sqlparser::parser::Parser;

    const RULE: &str = "column-type-change-rewrites";
    const USERS: &str = "CREATE TABLE users (id int PRIMARY KEY, name varchar(50), bio text, \
                         balance numeric(10,2), created_at timestamp, ip cidr, tags varchar(20)[]);";

    fn parse_type(sql: &str) -> DataType {
        let statement = Parser::parse_sql(
            &PostgreSqlDialect {},
            &format!("ALTER TABLE t ALTER c TYPE {sql}"),
        )
        .unwrap()
        .remove(0);
        let Statement::AlterTable(alter) = statement else {
            unreachable!()
        };
        match alter.operations.into_iter().next() {
            Some(AlterTableOperation::AlterColumn {
                op: AlterColumnOperation::SetDataType { data_type, .. },
                ..
            }) => data_type,
            other => panic!("{other:?}"),
        }
    }

    fn verdict_of(old: &str, new: &str, pg_version: u32) -> Verdict {
        verdict(
            &PgType::of(&parse_type(old)),
            &PgType::of(&parse_type(new)),
            pg_version,
        )
    }

    #[test]
    fn fires_on_int_to_bigint() {
        assert_eq!(
            check_rule(RULE, &[USERS], "ALTER TABLE users ALTER COLUMN id TYPE bigint;"),
            "\
error[column-type-change-rewrites]: ALTER COLUMN id TYPE bigint on existing table public.users rewrites public.users and all its indexes under ACCESS EXCLUSIVE: int to bigint is not binary-coercible, so reads and writes on public.users are blocked until every row is rewritten
 --> migration.sql:1:19
  |
1 | ALTER TABLE users ALTER COLUMN id TYPE bigint;
  |                   ^^^^^^^^^^^^^^^^^^^^^^^^^^^
  |
  = help: to change it without blocking, add a new column of the new type, keep it in sync with a trigger, backfill it in batches and swap the columns in one short transaction (widening varchar(n) to a longer varchar or text, or numeric(p,s) to a larger precision with the same scale, needs no rewrite)

"
        );
    }

    #[test]
    fn fires_when_the_old_type_is_unknown() {
        let report = check_rule(RULE, &[], "ALTER TABLE users ALTER COLUMN age TYPE bigint;");
        assert!(
            report.contains(
                "the previous type of users.age is unknown to migagent (reviewed without the migration that created it); unless the change is binary-coercible, ALTER COLUMN age TYPE bigint rewrites public.users"
            ),
            "{report}"
        );
    }

    #[test]
    fn fires_on_narrowing_using_and_numeric_scale_changes() {
        for (sql, expected) in [
            (
                "ALTER TABLE users ALTER COLUMN name TYPE varchar(20);",
                "varchar(50) to varchar(20) is not binary-coercible",
            ),
            (
                "ALTER TABLE users ALTER COLUMN bio SET DATA TYPE varchar(100);",
                "text to varchar(100) is not binary-coercible",
            ),
            (
                "ALTER TABLE users ALTER COLUMN balance TYPE numeric(12,3);",
                "numeric(10,2) to numeric(12,3)",
            ),
            (
                "ALTER TABLE users ALTER COLUMN bio TYPE text USING trim(bio);",
                "ALTER COLUMN bio TYPE text USING … on existing table",
            ),
            (
                "ALTER TABLE users ALTER COLUMN tags TYPE varchar(30)[];",
                "varchar(20)[] to varchar(30)[]",
            ),
        ] {
            let report = check_rule(RULE, &[USERS], sql);
            assert!(report.contains(expected), "{sql}\n{report}");
        }
    }

    #[test]
    fn timestamp_to_timestamptz_depends_on_the_time_zone() {
        let sql = "ALTER TABLE users ALTER COLUMN created_at TYPE timestamptz;";
        let report = check_rule(RULE, &[USERS], sql);
        assert!(
            report.contains("rewrites public.users and all its indexes under ACCESS EXCLUSIVE unless the server's TimeZone is UTC"),
            "{report}"
        );
        assert!(report.contains("`SET TimeZone = 'UTC';`"), "{report}");
        for set in [
            "SET TimeZone = 'UTC';",
            "SET LOCAL timezone TO 'Etc/UTC';",
            "SET TIME ZONE 'UTC';",
        ] {
            let sql = format!("BEGIN;\n{set}\n{sql}\nCOMMIT;");
            assert_eq!(check_rule(RULE, &[USERS], &sql), "", "{sql}");
        }
        let options = ReviewOptions {
            rule_settings: RuleSettings {
                pg_version: 11,
                ..RuleSettings::default()
            },
            ..ReviewOptions::default()
        };
        let review = review_sql("migration.sql", &[USERS], sql, Transaction::None, &options);
        assert!(
            render_rule(RULE, &review).contains("timestamp to timestamptz is not binary-coercible"),
            "PostgreSQL 11 always rewrites"
        );
    }

    #[test]
    fn silent_on_binary_coercible_changes_and_new_tables() {
        for sql in [
            "ALTER TABLE users ALTER COLUMN name TYPE varchar(100);",
            "ALTER TABLE users ALTER COLUMN name TYPE character varying(50);",
            "ALTER TABLE users ALTER COLUMN name TYPE varchar;",
            "ALTER TABLE users ALTER COLUMN name TYPE text;",
            "ALTER TABLE users ALTER COLUMN bio TYPE varchar;",
            "ALTER TABLE users ALTER COLUMN balance TYPE numeric(15,2);",
            "ALTER TABLE users ALTER COLUMN balance TYPE decimal;",
            "ALTER TABLE users ALTER COLUMN id TYPE integer;",
            "ALTER TABLE users ALTER COLUMN id TYPE int4;",
            "ALTER TABLE users ALTER COLUMN ip TYPE inet;",
            "CREATE TABLE events (id int);\nALTER TABLE events ALTER COLUMN id TYPE bigint;",
        ] {
            assert_eq!(check_rule(RULE, &[USERS], sql), "", "{sql}");
        }
    }

    #[test]
    fn normalises_aliases_and_modifiers() {
        use Verdict::*;
        for (old, new, expected) in [
            ("int", "int4", NoRewrite),
            ("int8", "bigint", NoRewrite),
            ("bigserial", "bigint", NoRewrite),
            ("int", "bigint", Rewrite),
            ("\"varchar\"(20)", "character varying(40)", NoRewrite),
            ("varchar", "varchar(40)", Rewrite),
            ("numeric", "numeric(10,2)", Rewrite),
            ("numeric(10)", "numeric(12,0)", NoRewrite),
            ("numeric(10,2)", "numeric(9,2)", Rewrite),
            ("timestamp(3)", "timestamp(6)", NoRewrite),
            ("timestamp(6)", "timestamp(3)", Rewrite),
            (
                "timestamp without time zone",
                "timestamp with time zone",
                UnlessUtc,
            ),
            ("timestamptz", "timestamp", UnlessUtc),
            ("char(3)", "char(5)", Rewrite),
            ("text", "citext", Rewrite),
            ("json", "jsonb", Rewrite),
            ("double precision", "float8", NoRewrite),
            ("float(10)", "real", NoRewrite),
            ("text[]", "text[]", NoRewrite),
        ] {
            assert_eq!(verdict_of(old, new, 15), expected, "{old} -> {new}");
        }
        assert_eq!(verdict_of("timestamp", "timestamptz", 11), Rewrite);
    }
}
