//! `ALTER TABLE … ADD CHECK` without `NOT VALID` validates every existing row while it holds ACCESS
//! EXCLUSIVE on the table: nothing can read or write it until the scan is done.

use sqlparser::ast::{AlterTableOperation, TableConstraint};

use super::fix::{not_valid_operation, not_valid_then_validate};
use super::syntax::AlterTable;
use super::{kinds, Category, Diagnostic, Kinds, Rule, Severity, StatementContext};

pub const RULE: Rule = Rule {
    id: "add-check-without-not-valid",
    category: Category::Locking,
    default_severity: Severity::Error,
    size_graded: true,
    summary: "ADD CHECK without NOT VALID scans the table under ACCESS EXCLUSIVE",
    doc: include_str!("../../rules/add-check-without-not-valid.md"),
    check,
    kinds: Kinds::Only(&[kinds::ALTER]),
};

fn check(cx: &StatementContext, out: &mut Vec<Diagnostic>) {
    let Some(alter) = AlterTable::of(cx) else {
        return;
    };
    let resolved = cx.catalog.resolve(&alter.table);
    for (i, operation) in alter.operations.iter().enumerate() {
        let AlterTableOperation::AddConstraint {
            constraint: constraint @ TableConstraint::Check(check),
            not_valid: false,
        } = operation
        else {
            continue;
        };
        if check.enforced == Some(false) {
            continue;
        }
        let Some(constraint_name) = cx.catalog.new_constraint_name(&resolved, constraint) else {
            continue;
        };
        let what = match &check.name {
            Some(_) => format!("ADD CONSTRAINT {constraint_name} CHECK"),
            None => "ADD CHECK".to_owned(),
        };
        let Some(fix) = alter
            .single_operation_sql(cx, i, |operation| {
                not_valid_operation(operation, check.name.is_none(), &constraint_name)
            })
            .map(|add| not_valid_then_validate(add, &alter.table_sql(cx), &constraint_name))
        else {
            continue;
        };
        let name = alter.qualified(cx);
        out.push(
            cx.diagnostic(
                alter.offset(cx, i),
                Some(&alter.table),
                format!(
                    "{what} on existing table {name} takes ACCESS EXCLUSIVE and scans every row to \
                 validate the constraint: reads and writes on {name} are blocked until the scan finishes"
                ),
                format!(
                    "add it as NOT VALID first (`{}` checks only new rows and is instant), then run `{}` \
                 in a separate transaction: it scans under SHARE UPDATE EXCLUSIVE, so reads and writes \
                 continue",
                    fix.steps[0].sql, fix.steps[1].sql
                ),
            )
            .with_fix(cx.fixable().then_some(fix)),
        );
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::testing::check_rule;

    const RULE: &str = "add-check-without-not-valid";
    const USERS: &str = "CREATE TABLE users (id bigint PRIMARY KEY, age int, email text);";

    #[test]
    fn fires_on_an_existing_table() {
        assert_eq!(
            check_rule(
                RULE,
                &[USERS],
                "ALTER TABLE users ADD CONSTRAINT users_age_check CHECK (age >= 0);"
            ),
            "\
error[add-check-without-not-valid]: ADD CONSTRAINT users_age_check CHECK on existing table public.users takes ACCESS EXCLUSIVE and scans every row to validate the constraint: reads and writes on public.users are blocked until the scan finishes
 --> migration.sql:1:19
  |
1 | ALTER TABLE users ADD CONSTRAINT users_age_check CHECK (age >= 0);
  |                   ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
  |
  = help: add it as NOT VALID first (`ALTER TABLE users ADD CONSTRAINT users_age_check CHECK (age >= 0) NOT VALID;` checks only new rows and is instant), then run `ALTER TABLE public.users VALIDATE CONSTRAINT users_age_check;` in a separate transaction: it scans under SHARE UPDATE EXCLUSIVE, so reads and writes continue

"
        );
    }

    #[test]
    fn points_at_each_operation_of_a_multi_operation_alter() {
        let report = check_rule(
            RULE,
            &[USERS],
            "ALTER TABLE ONLY public.\"users\"\n  ADD CHECK (age > 0),\n  ADD CONSTRAINT \"Email\" CHECK (email <> '');",
        );
        assert!(
            report.contains("ADD CHECK on existing table public.users"),
            "{report}"
        );
        assert!(report.contains("migration.sql:2:3"), "{report}");
        assert!(report.contains("ADD CONSTRAINT Email CHECK"), "{report}");
        assert!(report.contains("migration.sql:3:3"), "{report}");
        assert!(
            report.contains("VALIDATE CONSTRAINT \"Email\";"),
            "{report}"
        );
    }

    #[test]
    fn fires_on_a_table_the_model_does_not_know() {
        let report = check_rule(RULE, &[], "ALTER TABLE \"Order\" ADD CHECK (total >= 0);");
        assert!(report.contains("existing table public.Order"), "{report}");
        assert!(
            report.contains("`ALTER TABLE \"Order\" ADD CONSTRAINT \"Order_total_check\" CHECK (total >= 0) NOT VALID;`"),
            "{report}"
        );
    }

    #[test]
    fn silent_when_not_valid_on_a_new_table_or_for_other_constraints() {
        for sql in [
            "ALTER TABLE users ADD CONSTRAINT users_age_check CHECK (age >= 0) NOT VALID;",
            "ALTER TABLE users VALIDATE CONSTRAINT users_age_check;",
            "CREATE TABLE events (id bigint, n int);\nALTER TABLE events ADD CONSTRAINT n_positive CHECK (n > 0);",
            "CREATE TABLE events (id bigint, n int CHECK (n > 0));",
            "ALTER TABLE users ADD CONSTRAINT users_email_key UNIQUE (email);",
        ] {
            assert_eq!(check_rule(RULE, &[USERS], sql), "", "{sql}");
        }
    }
}
