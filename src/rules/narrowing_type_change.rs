//! `ALTER COLUMN … TYPE` to a type that holds less than the column's current one: a shorter
//! varchar, text to varchar(n), bigint to int, numeric with fewer digits, a timestamp to a date.
//! Values that do not fit either make the statement fail (too long, out of range, overflow) or are
//! rounded or cut silently (decimal places, fractional seconds, the time of day), and the
//! application version still running may keep writing values the new type rejects.
//!
//! The current type comes from the schema model. When the model does not know it, the change is not
//! reported: an unknown type is not a narrowing (`column-type-change-rewrites` still says the type
//! is unknown). A column added earlier in the same migration holds no data yet and is skipped.

use sqlparser::ast::{AlterColumnOperation, AlterTableOperation, DataType};

use super::syntax::{sql_ident, AlterTable};
use super::types::PgType;
use super::{kinds, Category, Diagnostic, Kinds, Rule, Severity, StatementContext};
use crate::sql::name::fold_ident;

pub const RULE: Rule = Rule {
    id: "narrowing-type-change",
    category: Category::DataLoss,
    default_severity: Severity::Warning,
    size_graded: false,
    summary: "a type change that can truncate or fail on existing data",
    doc: include_str!("../../rules/narrowing-type-change.md"),
    check,
    kinds: Kinds::Only(&[kinds::ALTER]),
};

/// PostgreSQL's default fractional-second precision of timestamps and times.
const DEFAULT_SECONDS_PRECISION: u64 = 6;

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
        if cx.catalog.is_new_column(table, &column) {
            continue;
        }
        let Some(old_type) = cx
            .catalog
            .column(table, &column)
            .and_then(|c| c.data_type.as_ref())
        else {
            continue;
        };
        let (Some(old), Some(new)) = (Domain::of(old_type), Domain::of(data_type)) else {
            continue;
        };
        let old_sql = old_type.to_string().to_lowercase();
        let new_sql = data_type.to_string().to_lowercase();
        let losses = losses(&old, &new, &new_sql);
        if losses.is_empty() {
            continue;
        }
        let fails = losses.iter().any(|loss| matches!(loss, Loss::Fails(_)));
        let effects: Vec<&str> = losses.iter().map(Loss::text).collect();
        let mut message = format!(
            "ALTER COLUMN {column} TYPE {new_sql} narrows {}.{column} from {old_sql}: {}",
            alter.qualified(cx),
            effects.join("; ")
        );
        if fails {
            message.push_str(&format!(
                "; afterwards, values the application version still running writes that do not fit \
                 {new_sql} are rejected"
            ));
        }
        if using.is_some() {
            message.push_str(" (the USING expression runs first; what it returns must still fit)");
        }
        out.push(cx.diagnostic(
            alter.offset(cx, i),
            Some(table),
            message,
            help(&alter.table_sql(cx), &column, &new),
        ));
    }
}

fn help(table_sql: &str, column: &str, new: &Domain) -> String {
    let column = sql_ident(column);
    match new {
        Domain::Text { max: Some(max) } => format!(
            "look at the data first (`SELECT count(*) FROM {table_sql} WHERE length({column}) > \
             {max};`) and fix or keep the rows that do not fit; to enforce the limit without a \
             rewrite, keep the type and add `CHECK (length({column}) <= {max}) NOT VALID`, then \
             VALIDATE it"
        ),
        _ => format!(
            "look at the data first (`SELECT min({column}), max({column}) FROM {table_sql};`) and fix \
             or keep the rows that do not fit; to enforce a limit without a rewrite, keep the type and \
             add a CHECK constraint NOT VALID, then VALIDATE it; if the loss is intended, say so: \
             `-- migagent:ignore narrowing-type-change -- <why>`"
        ),
    }
}

/// What a type can hold, for the types whose narrowing loses data.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Domain {
    /// varchar(n), char(n) (`max`: n characters), text and unbounded varchar (`max`: None).
    Text {
        max: Option<u64>,
    },
    /// smallint, integer, bigint: 2, 4 or 8 bytes.
    Integer {
        bytes: u8,
    },
    /// numeric(p, s); `None` when unconstrained.
    Numeric {
        precision: Option<(u64, i64)>,
    },
    /// real, double precision: 4 or 8 bytes.
    Float {
        bytes: u8,
    },
    /// timestamp and timestamptz, with their fractional-second precision.
    Timestamp {
        precision: u64,
    },
    Date,
    /// time and timetz, with their fractional-second precision.
    Time {
        precision: u64,
    },
    /// An array of one of the above: its elements convert one by one.
    Array(Box<Domain>),
}

impl Domain {
    fn of(data_type: &DataType) -> Option<Domain> {
        Self::from_type(&PgType::of(data_type))
    }

    fn from_type(pg_type: &PgType) -> Option<Domain> {
        let first = pg_type
            .modifiers
            .first()
            .and_then(|&n| u64::try_from(n).ok());
        let seconds = first.unwrap_or(DEFAULT_SECONDS_PRECISION);
        let domain = match pg_type.name.as_str() {
            "bpchar" | "varchar" => Domain::Text { max: first },
            "text" => Domain::Text { max: None },
            "int2" => Domain::Integer { bytes: 2 },
            "int4" => Domain::Integer { bytes: 4 },
            "int8" => Domain::Integer { bytes: 8 },
            "numeric" => Domain::Numeric {
                precision: match pg_type.modifiers.as_slice() {
                    [p, s] => Some((u64::try_from(*p).ok()?, *s)),
                    _ => None,
                },
            },
            "float4" => Domain::Float { bytes: 4 },
            "float8" => Domain::Float { bytes: 8 },
            "timestamp" | "timestamptz" => Domain::Timestamp { precision: seconds },
            "time" | "timetz" => Domain::Time { precision: seconds },
            "date" => Domain::Date,
            _ => return None,
        };
        Some(if pg_type.array {
            Domain::Array(Box::new(domain))
        } else {
            domain
        })
    }

    /// The largest number of digits before the decimal point the type holds.
    fn integer_digits(&self) -> Option<i64> {
        match self {
            Domain::Integer { bytes: 2 } => Some(5),
            Domain::Integer { bytes: 4 } => Some(10),
            Domain::Integer { .. } => Some(19),
            Domain::Numeric {
                precision: Some((p, s)),
            } => Some(i64::try_from(*p).unwrap_or(i64::MAX) - s),
            _ => None,
        }
    }
}

/// One way a conversion loses data.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Loss {
    /// Values that do not fit make the statement fail.
    Fails(String),
    /// Values are rounded or cut without an error.
    Silent(String),
}

impl Loss {
    fn text(&self) -> &str {
        match self {
            Loss::Fails(text) | Loss::Silent(text) => text,
        }
    }
}

/// How converting values of `old` to `new` (written `new_sql`) loses data; empty when every value
/// fits.
fn losses(old: &Domain, new: &Domain, new_sql: &str) -> Vec<Loss> {
    use Domain::*;
    let fails = |what: String| Loss::Fails(format!("{what} make the statement fail"));
    if let (Array(old), Array(new)) = (old, new) {
        return losses(old, new, new_sql.strip_suffix("[]").unwrap_or(new_sql));
    }
    let mut found = Vec::new();
    match (old, new) {
        (Text { max: old_max }, Text { max: Some(max) })
            if old_max.is_none_or(|old| old > *max) =>
        {
            found.push(fails(format!(
                "existing values longer than {max} characters (value too long for type \
                 {new_sql})"
            )));
        }
        (Integer { bytes: old_bytes }, Integer { bytes }) if bytes < old_bytes => {
            found.push(fails(format!(
                "existing values outside the {}-byte range ({} out of range)",
                bytes,
                if *bytes == 2 { "smallint" } else { "integer" }
            )));
        }
        (Numeric { .. } | Float { .. }, Integer { bytes }) => {
            found.push(Loss::Silent("fractions are rounded away".into()));
            found.push(fails(format!(
                "existing values outside the {bytes}-byte integer range"
            )));
        }
        (
            Numeric { .. } | Integer { .. },
            Numeric {
                precision: Some((_, scale)),
            },
        ) => {
            if matches!(old, Numeric { precision: None })
                || matches!(old, Numeric { precision: Some((_, s)) } if s > scale)
            {
                found.push(Loss::Silent(format!(
                    "values are rounded to {scale} decimal places"
                )));
            }
            let digits = new.integer_digits().unwrap_or(i64::MAX);
            if old.integer_digits().is_none_or(|old| old > digits) {
                found.push(fails(format!(
                    "existing values with more than {digits} digits before the decimal point \
                     (numeric field overflow)"
                )));
            }
        }
        (Numeric { .. } | Float { .. }, Float { bytes }) => {
            let digits: u64 = if *bytes == 4 { 6 } else { 15 };
            let fits = match old {
                Numeric { precision } => precision.is_some_and(|(p, _)| p <= digits),
                Float { bytes: old_bytes } => old_bytes <= bytes,
                _ => false,
            };
            if !fits {
                found.push(Loss::Silent(format!(
                    "values are rounded to about {digits} significant digits"
                )));
            }
        }
        (Timestamp { .. }, Date) => {
            found.push(Loss::Silent(
                "the time of day is dropped from every value".into(),
            ));
        }
        (Timestamp { .. }, Time { .. }) => {
            found.push(Loss::Silent("the date is dropped from every value".into()));
        }
        (Timestamp { precision: old_p }, Timestamp { precision })
        | (Time { precision: old_p }, Time { precision })
            if precision < old_p =>
        {
            found.push(Loss::Silent(format!(
                "fractional seconds are rounded to {precision} digits"
            )));
        }
        _ => {}
    }
    found
}

#[cfg(test)]
mod tests {
    use crate::rules::testing::check_rule;

    const RULE: &str = "narrowing-type-change";
    const USERS: &str = "CREATE TABLE users (id bigint PRIMARY KEY, name varchar(50), bio text, \
                         visits int, balance numeric(10,2), score float8, seen_at timestamptz, \
                         code char(4), tags varchar(20)[]);";

    #[test]
    fn fires_on_a_shorter_varchar() {
        assert_eq!(
            check_rule(RULE, &[USERS], "ALTER TABLE users ALTER COLUMN name TYPE varchar(20);"),
            "\
warning[narrowing-type-change]: ALTER COLUMN name TYPE varchar(20) narrows public.users.name from varchar(50): existing values longer than 20 characters (value too long for type varchar(20)) make the statement fail; afterwards, values the application version still running writes that do not fit varchar(20) are rejected
 --> migration.sql:1:19
  |
1 | ALTER TABLE users ALTER COLUMN name TYPE varchar(20);
  |                   ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
  |
  = help: look at the data first (`SELECT count(*) FROM public.users WHERE length(name) > 20;`) and fix or keep the rows that do not fit; to enforce the limit without a rewrite, keep the type and add `CHECK (length(name) <= 20) NOT VALID`, then VALIDATE it

"
        );
    }

    #[test]
    fn fires_on_each_kind_of_narrowing() {
        for (sql, expected) in [
            (
                "ALTER TABLE users ALTER COLUMN bio TYPE varchar(100);",
                "narrows public.users.bio from text: existing values longer than 100 characters",
            ),
            (
                "ALTER TABLE users ALTER COLUMN name TYPE char(10);",
                "longer than 10 characters (value too long for type char(10))",
            ),
            (
                "ALTER TABLE users ALTER COLUMN id TYPE int;",
                "existing values outside the 4-byte range (integer out of range) make the statement fail",
            ),
            (
                "ALTER TABLE users ALTER COLUMN visits TYPE smallint;",
                "(smallint out of range)",
            ),
            (
                "ALTER TABLE users ALTER COLUMN balance TYPE numeric(10,1);",
                "from numeric(10,2): values are rounded to 1 decimal places",
            ),
            (
                "ALTER TABLE users ALTER COLUMN balance TYPE numeric(6,2);",
                "existing values with more than 4 digits before the decimal point (numeric field overflow) make the statement fail",
            ),
            (
                "ALTER TABLE users ALTER COLUMN balance TYPE bigint;",
                "fractions are rounded away; existing values outside the 8-byte integer range",
            ),
            (
                "ALTER TABLE users ALTER COLUMN score TYPE real;",
                "values are rounded to about 6 significant digits",
            ),
            (
                "ALTER TABLE users ALTER COLUMN seen_at TYPE date;",
                "the time of day is dropped from every value",
            ),
            (
                "ALTER TABLE users ALTER COLUMN seen_at TYPE timestamptz(0);",
                "fractional seconds are rounded to 0 digits",
            ),
            (
                "ALTER TABLE users ALTER COLUMN tags TYPE varchar(10)[];",
                "from varchar(20)[]: existing values longer than 10 characters (value too long for type varchar(10))",
            ),
            (
                "ALTER TABLE users ALTER COLUMN visits TYPE numeric(5,0) USING visits::numeric;",
                "(the USING expression runs first; what it returns must still fit)",
            ),
        ] {
            let report = check_rule(RULE, &[USERS], sql);
            assert!(report.contains(expected), "{sql}\n{report}");
        }
    }

    #[test]
    fn silent_on_widening_and_same_size_changes() {
        for sql in [
            "ALTER TABLE users ALTER COLUMN name TYPE varchar(100);",
            "ALTER TABLE users ALTER COLUMN name TYPE text;",
            "ALTER TABLE users ALTER COLUMN code TYPE varchar(4);",
            "ALTER TABLE users ALTER COLUMN visits TYPE bigint;",
            "ALTER TABLE users ALTER COLUMN id TYPE int8;",
            "ALTER TABLE users ALTER COLUMN balance TYPE numeric(12,3);",
            "ALTER TABLE users ALTER COLUMN balance TYPE numeric;",
            "ALTER TABLE users ALTER COLUMN visits TYPE numeric(12,2);",
            "ALTER TABLE users ALTER COLUMN seen_at TYPE timestamp;",
            "ALTER TABLE users ALTER COLUMN tags TYPE varchar(30)[];",
            "ALTER TABLE users ALTER COLUMN tags TYPE varchar(10);",
            "ALTER TABLE users ALTER COLUMN balance TYPE float8;",
        ] {
            assert_eq!(check_rule(RULE, &[USERS], sql), "", "{sql}");
        }
    }

    #[test]
    fn silent_when_the_old_type_is_unknown_or_the_column_new() {
        for (history, sql) in [
            (&[][..], "ALTER TABLE users ALTER COLUMN name TYPE varchar(20);"),
            (
                &[USERS][..],
                "ALTER TABLE users ADD COLUMN nick text;\nALTER TABLE users ALTER COLUMN nick TYPE varchar(10);",
            ),
            (
                &[USERS][..],
                "CREATE TABLE t (a text);\nALTER TABLE t ALTER COLUMN a TYPE varchar(10);",
            ),
        ] {
            assert_eq!(check_rule(RULE, history, sql), "", "{sql}");
        }
    }
}
