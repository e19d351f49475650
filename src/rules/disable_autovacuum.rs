//! `autovacuum_enabled = false` on a table stops autovacuum from vacuuming and analyzing it: dead rows
//! pile up, planner statistics go stale, and the only vacuum left is the anti-wraparound one, which
//! comes late, is aggressive, and does not give way to DDL. The setting itself is cheap (SHARE UPDATE
//! EXCLUSIVE); the damage comes later. A pause that the same migration lifts again (a bulk load) is
//! not reported.

use super::syntax::sql_name;
use super::{kinds, Category, Diagnostic, Kinds, Rule, Severity, StatementContext};
use crate::pg::locks::Words;
use crate::sql::{Kind, ObjectName, Statement, TokenKind};

pub const RULE: Rule = Rule {
    id: "disable-autovacuum",
    category: Category::Locking,
    default_severity: Severity::Warning,
    size_graded: false,
    summary: "autovacuum_enabled = false",
    doc: include_str!("../../rules/disable-autovacuum.md"),
    check,
    kinds: Kinds::Only(&[kinds::CREATE, kinds::ALTER]),
};

/// A storage parameter `[toast.]autovacuum_enabled` set or reset in a statement.
struct Setting {
    /// Where the parameter's name starts.
    offset: usize,
    toast: bool,
    /// `Some(false)` for `= false`, `Some(true)` for `= true`, `None` for RESET (back to the default,
    /// true) or a value that is not a boolean.
    enabled: Option<bool>,
}

fn check(cx: &StatementContext, out: &mut Vec<Diagnostic>) {
    let Some(table) = target(cx.statement) else {
        return;
    };
    for setting in settings(cx.text, cx.statement) {
        if setting.enabled != Some(false) || re_enabled_later(cx, &table, setting.toast) {
            continue;
        }
        let name = cx.qualified(&table);
        let table_sql = sql_name(&cx.catalog.resolve(&table));
        let (parameter, whose) = if setting.toast {
            (
                "toast.autovacuum_enabled",
                format!("the TOAST table of {name}"),
            )
        } else {
            ("autovacuum_enabled", name.clone())
        };
        out.push(cx.diagnostic(
            setting.offset,
            Some(&table),
            format!(
                "{parameter} = false stops autovacuum from vacuuming and analyzing {whose}: dead rows pile up \
                 (bloat, slower scans), planner statistics go stale, and only the anti-wraparound vacuum \
                 still runs, late and aggressive, without giving way to later schema changes on the table"
            ),
            format!(
                "keep autovacuum on and tune it for the table instead, e.g. `ALTER TABLE {table_sql} SET \
                 (autovacuum_vacuum_scale_factor = 0.01);`; to pause it around a bulk load, re-enable it in \
                 the same migration with `ALTER TABLE {table_sql} RESET ({parameter});` and run `VACUUM \
                 (ANALYZE) {table_sql};` afterwards"
            ),
        ));
    }
}

/// The table of a `CREATE TABLE … WITH (…)` or `ALTER TABLE … SET | RESET (…)`.
fn target(statement: &Statement) -> Option<ObjectName> {
    match statement.class.kind {
        Kind::CreateTable | Kind::AlterTable => statement.class.target.clone(),
        _ => None,
    }
}

/// Every `[toast.]autovacuum_enabled [= value]` of the statement.
fn settings(text: &str, statement: &Statement) -> Vec<Setting> {
    let words = Words::of(text, statement);
    (0..words.len())
        .filter(|&i| words.is(i, "autovacuum_enabled"))
        .filter_map(|i| {
            let toast = i >= 2 && words.raw(i - 1) == "." && words.is(i - 2, "toast");
            let offset = words.offset(if toast { i - 2 } else { i })?;
            let mut value = i + 1;
            if words.raw(value) == "=" {
                value += 1;
            }
            let enabled = match words.kind(value) {
                _ if is_reset(&words, i) => None,
                Some(TokenKind::Word | TokenKind::String | TokenKind::Number) => {
                    boolean(words.raw(value))
                }
                // A boolean parameter named without a value is set to true.
                _ => Some(true),
            };
            Some(Setting {
                offset,
                toast,
                enabled,
            })
        })
        .collect()
}

/// Whether the parameter at `at` sits in a `RESET (…)` list.
fn is_reset(words: &Words, at: usize) -> bool {
    (0..at)
        .rev()
        .find(|&i| words.is_lparen(i))
        .is_some_and(|open| open > 0 && words.is(open - 1, "reset"))
}

/// PostgreSQL's spellings of a boolean, quoted or not.
fn boolean(raw: &str) -> Option<bool> {
    match raw.trim_matches('\'').to_ascii_lowercase().as_str() {
        "false" | "f" | "off" | "no" | "n" | "0" => Some(false),
        "true" | "t" | "on" | "yes" | "y" | "1" => Some(true),
        _ => None,
    }
}

/// A later statement of the migration sets the same parameter of the same table back to true, or
/// resets it.
fn re_enabled_later(cx: &StatementContext, table: &ObjectName, toast: bool) -> bool {
    let table = cx.catalog.resolve(table);
    cx.later_statements()
        .filter(|s| target(s).is_some_and(|t| cx.catalog.resolve(&t) == table))
        .flat_map(|s| settings(cx.text, s))
        .any(|setting| setting.toast == toast && setting.enabled != Some(false))
}

#[cfg(test)]
mod tests {
    use crate::rules::testing::check_rule;

    const RULE: &str = "disable-autovacuum";
    const SCHEMA: &str = "CREATE TABLE events (id bigint PRIMARY KEY, payload jsonb);";

    #[test]
    fn fires_on_alter_table_set() {
        assert_eq!(
            check_rule(RULE, &[SCHEMA], "ALTER TABLE events SET (autovacuum_enabled = false);"),
            "\
warning[disable-autovacuum]: autovacuum_enabled = false stops autovacuum from vacuuming and analyzing public.events: dead rows pile up (bloat, slower scans), planner statistics go stale, and only the anti-wraparound vacuum still runs, late and aggressive, without giving way to later schema changes on the table
 --> migration.sql:1:25
  |
1 | ALTER TABLE events SET (autovacuum_enabled = false);
  |                         ^^^^^^^^^^^^^^^^^^^^^^^^^^^
  |
  = help: keep autovacuum on and tune it for the table instead, e.g. `ALTER TABLE public.events SET (autovacuum_vacuum_scale_factor = 0.01);`; to pause it around a bulk load, re-enable it in the same migration with `ALTER TABLE public.events RESET (autovacuum_enabled);` and run `VACUUM (ANALYZE) public.events;` afterwards

"
        );
    }

    #[test]
    fn fires_on_new_tables_toast_and_other_spellings() {
        let report = check_rule(
            RULE,
            &[],
            "CREATE TABLE imports (id bigint, raw text) WITH (autovacuum_enabled = off, toast.autovacuum_enabled = '0');",
        );
        assert_eq!(report.matches("warning[").count(), 2, "{report}");
        assert!(
            report.contains("analyzing the TOAST table of public.imports"),
            "{report}"
        );
        assert!(
            report.contains("RESET (toast.autovacuum_enabled);`"),
            "{report}"
        );
        let report = check_rule(
            RULE,
            &[SCHEMA],
            "ALTER TABLE events SET (autovacuum_enabled = no), ALTER COLUMN payload SET STATISTICS 100;",
        );
        assert!(report.contains("warning[disable-autovacuum]"), "{report}");
    }

    #[test]
    fn silent_when_enabled_tuned_or_re_enabled_later() {
        for sql in [
            "ALTER TABLE events SET (autovacuum_enabled = true);",
            "ALTER TABLE events SET (autovacuum_vacuum_scale_factor = 0.01);",
            "ALTER TABLE events RESET (autovacuum_enabled);",
            "ALTER TABLE events SET (autovacuum_enabled = false);\n\
             INSERT INTO events SELECT g, '{}' FROM generate_series(1, 1000000) g;\n\
             ALTER TABLE events RESET (autovacuum_enabled);",
            "ALTER TABLE events SET (autovacuum_enabled = false);\nALTER TABLE public.events SET (autovacuum_enabled = on);",
        ] {
            assert_eq!(check_rule(RULE, &[SCHEMA], sql), "", "{sql}");
        }
    }
}
