//! `ALTER DOMAIN … ADD CONSTRAINT` checks every stored value of the domain: it takes SHARE on every
//! table with a column of that type (no INSERT, UPDATE or DELETE) and scans each one. `NOT VALID`
//! skips the check, but unlike its table counterpart, `ALTER DOMAIN … VALIDATE CONSTRAINT` takes the
//! same SHARE locks while it scans, so it is reported too. `SET NOT NULL` scans the same way.

use super::syntax::{sql_ident, sql_name};
use super::{kinds, Category, Diagnostic, Kinds, Rule, Severity, StatementContext};
use crate::pg::locks::{tables_using_domain, DomainChange, Words};
use crate::sql::{Kind, ObjectName};

pub const RULE: Rule = Rule {
    id: "alter-domain-add-constraint",
    category: Category::Locking,
    default_severity: Severity::Warning,
    size_graded: true,
    summary:
        "ALTER DOMAIN ADD CONSTRAINT or VALIDATE CONSTRAINT scans every table using the domain",
    doc: include_str!("../../rules/alter-domain-add-constraint.md"),
    check,
    kinds: Kinds::Only(&[kinds::ALTER]),
};

/// How many tables the message names before summarising the rest.
const LISTED_TABLES: usize = 5;

fn check(cx: &StatementContext, out: &mut Vec<Diagnostic>) {
    let statement = cx.statement;
    let words = Words::of(cx.text, statement);
    if statement.class.kind != Kind::AlterType || !words.is(1, "domain") {
        return;
    }
    let (Some(domain), Some(change)) = (&statement.class.target, words.domain_change()) else {
        return;
    };
    if !change.scans {
        return;
    }
    let tables: Vec<ObjectName> = tables_using_domain(cx.catalog, domain)
        .into_iter()
        .filter(|table| cx.is_existing(table))
        .collect();
    let known_domain = cx.catalog.user_type(domain).is_some();
    // The model knows the domain and no existing table with a column of it: nothing to scan.
    if known_domain && tables.is_empty() {
        return;
    }
    let name = cx.qualified(domain);
    let locked = if tables.is_empty() {
        format!(
            "every table with a column of type {name} (the model does not know the domain, so not which \
             tables use it)"
        )
    } else {
        list(cx, &tables)
    };
    let what = if change.validate {
        format!(
            "ALTER DOMAIN {name} VALIDATE CONSTRAINT {}",
            change.constraint.as_deref().unwrap_or("…")
        )
    } else if words.is(change.at, "set") {
        format!("ALTER DOMAIN {name} SET NOT NULL")
    } else {
        format!("ALTER DOMAIN {name} ADD CONSTRAINT")
    };
    out.push(cx.diagnostic(
        words.offset(change.at).unwrap_or(statement.range.start),
        tables.first(),
        format!(
            "{what} checks every stored value of the domain: it takes SHARE on {locked}, blocking INSERT, \
             UPDATE and DELETE, while it scans each of them in full"
        ),
        help(&words, &cx.catalog.resolve(domain), &change),
    ));
}

/// `public.a, public.b and 3 more tables`.
fn list(cx: &StatementContext, tables: &[ObjectName]) -> String {
    let names: Vec<String> = tables
        .iter()
        .take(LISTED_TABLES)
        .map(|t| cx.qualified(t))
        .collect();
    let more = tables.len().saturating_sub(LISTED_TABLES);
    let (kind, names) = match (tables.len(), more) {
        (1, _) => ("existing table", names.join("")),
        (_, 0) => ("existing tables", names.join(", ")),
        (_, more) => (
            "existing tables",
            format!("{} and {more} more", names.join(", ")),
        ),
    };
    format!("{kind} {names}")
}

/// What to do instead; `domain` is the resolved name.
fn help(words: &Words, domain: &ObjectName, change: &DomainChange) -> String {
    let domain_sql = sql_name(domain);
    let constraint = sql_ident(
        &change
            .constraint
            .clone()
            .unwrap_or_else(|| format!("{}_check", domain.name)),
    );
    let instead = "for large tables, enforce the rule with a CHECK constraint on each table instead (`ADD \
                   CONSTRAINT … NOT VALID`, then `VALIDATE CONSTRAINT`, which scans under SHARE UPDATE \
                   EXCLUSIVE: reads and writes continue)";
    if change.validate {
        return format!(
            "ALTER DOMAIN … VALIDATE CONSTRAINT has no lighter form: run it at a quiet time with a short \
             `SET lock_timeout`, or {instead}"
        );
    }
    let check = words
        .find_in(change.at..words.len(), &["check"])
        .map(|at| words.text_of(at + 1..words.skip_parens(at + 1)).to_owned());
    let condition = match check {
        Some(condition) => condition,
        // ADD CONSTRAINT … NOT NULL and SET NOT NULL have no NOT VALID form; a CHECK does.
        None => "(VALUE IS NOT NULL)".to_owned(),
    };
    format!(
        "add it as `ALTER DOMAIN {domain_sql} ADD CONSTRAINT {constraint} CHECK {condition} NOT VALID;` \
         (instant: only new values are checked); `ALTER DOMAIN {domain_sql} VALIDATE CONSTRAINT \
         {constraint};` later still takes SHARE on those tables while it scans, so run it at a quiet time, \
         or {instead}"
    )
}

#[cfg(test)]
mod tests {
    use crate::rules::testing::check_rule;

    const RULE: &str = "alter-domain-add-constraint";
    const SCHEMA: &str = "CREATE DOMAIN email AS text;\n\
                          CREATE DOMAIN unused AS text;\n\
                          CREATE TABLE users (id bigint PRIMARY KEY, address email);\n\
                          CREATE TABLE invites (id bigint PRIMARY KEY, address email, cc email[]);";

    #[test]
    fn fires_on_add_constraint() {
        assert_eq!(
            check_rule(
                RULE,
                &[SCHEMA],
                "ALTER DOMAIN email ADD CONSTRAINT email_format CHECK (VALUE LIKE '%@%');"
            ),
            "\
warning[alter-domain-add-constraint]: ALTER DOMAIN public.email ADD CONSTRAINT checks every stored value of the domain: it takes SHARE on existing tables public.invites, public.users, blocking INSERT, UPDATE and DELETE, while it scans each of them in full
 --> migration.sql:1:20
  |
1 | ALTER DOMAIN email ADD CONSTRAINT email_format CHECK (VALUE LIKE '%@%');
  |                    ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
  |
  = help: add it as `ALTER DOMAIN public.email ADD CONSTRAINT email_format CHECK (VALUE LIKE '%@%') NOT VALID;` (instant: only new values are checked); `ALTER DOMAIN public.email VALIDATE CONSTRAINT email_format;` later still takes SHARE on those tables while it scans, so run it at a quiet time, or for large tables, enforce the rule with a CHECK constraint on each table instead (`ADD CONSTRAINT … NOT VALID`, then `VALIDATE CONSTRAINT`, which scans under SHARE UPDATE EXCLUSIVE: reads and writes continue)

"
        );
    }

    #[test]
    fn fires_on_validate_set_not_null_and_unknown_domains() {
        let report = check_rule(
            RULE,
            &[SCHEMA],
            "ALTER DOMAIN email VALIDATE CONSTRAINT email_format;",
        );
        assert!(report.contains("ALTER DOMAIN public.email VALIDATE CONSTRAINT email_format checks every stored value"), "{report}");
        assert!(report.contains("has no lighter form"), "{report}");
        let report = check_rule(RULE, &[SCHEMA], "ALTER DOMAIN email SET NOT NULL;");
        assert!(
            report.contains("ALTER DOMAIN public.email SET NOT NULL checks"),
            "{report}"
        );
        assert!(
            report.contains("CHECK (VALUE IS NOT NULL) NOT VALID;`"),
            "{report}"
        );
        let report = check_rule(RULE, &[], "ALTER DOMAIN posint ADD CHECK (VALUE > 0);");
        assert!(
            report.contains("the model does not know the domain, so not which tables use it"),
            "{report}"
        );
        assert!(
            report.contains("ADD CONSTRAINT posint_check CHECK (VALUE > 0) NOT VALID;`"),
            "{report}"
        );
    }

    #[test]
    fn silent_when_not_valid_unused_or_on_new_tables() {
        for sql in [
            "ALTER DOMAIN email ADD CONSTRAINT email_format CHECK (VALUE LIKE '%@%') NOT VALID;",
            "ALTER DOMAIN unused ADD CONSTRAINT unused_check CHECK (VALUE <> '');",
            "ALTER DOMAIN email RENAME TO mail;",
            "CREATE DOMAIN code AS text;\nCREATE TABLE t (c code);\nALTER DOMAIN code ADD CHECK (VALUE <> '');",
        ] {
            assert_eq!(check_rule(RULE, &[SCHEMA], sql), "", "{sql}");
        }
    }
}
