//! `ALTER TABLE … ADD EXCLUDE` builds the constraint's index and checks every existing row against the
//! others inside the ALTER TABLE, under ACCESS EXCLUSIVE: the table is unusable until it is done.
//! Unlike UNIQUE and PRIMARY KEY there is no `USING INDEX` form and no `NOT VALID`, so there is no
//! online way to add one to a table that has traffic.

use super::add_unique_constraint::{index_constraints, IndexConstraintKind};
use super::{kinds, Category, Diagnostic, Kinds, Rule, Severity, StatementContext};

pub const RULE: Rule = Rule {
    id: "add-exclusion-constraint",
    category: Category::Locking,
    default_severity: Severity::Error,
    size_graded: true,
    summary: "ADD EXCLUDE builds its index under ACCESS EXCLUSIVE on an existing table",
    doc: include_str!("../../rules/add-exclusion-constraint.md"),
    check,
    kinds: Kinds::Only(&[kinds::ALTER]),
};

fn check(cx: &StatementContext, out: &mut Vec<Diagnostic>) {
    let Some((table, constraints)) = index_constraints(cx, IndexConstraintKind::Exclude) else {
        return;
    };
    for constraint in constraints {
        let name = cx.qualified(&table);
        let what = match &constraint.name {
            Some(given) => format!("ADD CONSTRAINT {given} EXCLUDE"),
            None => "ADD EXCLUDE".to_owned(),
        };
        out.push(cx.diagnostic(
            constraint.offset,
            Some(&table),
            format!(
                "{what} on existing table {name} builds its index and checks every row against the others \
                 inside the ALTER TABLE, under ACCESS EXCLUSIVE: reads and writes on {name} are blocked \
                 until it is done"
            ),
            "PostgreSQL has no online way to add an exclusion constraint (no USING INDEX, no NOT VALID): \
             declare it in CREATE TABLE for new tables; on an existing table run it in a maintenance window \
             with a short `SET lock_timeout = '5s';`, after checking for conflicting rows (they make it \
             fail after the whole build)"
                .to_owned(),
        ));
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::testing::check_rule;

    const RULE: &str = "add-exclusion-constraint";
    const BOOKINGS: &str =
        "CREATE TABLE bookings (id bigint PRIMARY KEY, room int, during tstzrange);";

    #[test]
    fn fires_on_an_existing_table() {
        assert_eq!(
            check_rule(
                RULE,
                &[BOOKINGS],
                "ALTER TABLE bookings ADD CONSTRAINT no_overlap EXCLUDE USING gist (room WITH =, during WITH &&);"
            ),
            "\
error[add-exclusion-constraint]: ADD CONSTRAINT no_overlap EXCLUDE on existing table public.bookings builds its index and checks every row against the others inside the ALTER TABLE, under ACCESS EXCLUSIVE: reads and writes on public.bookings are blocked until it is done
 --> migration.sql:1:22
  |
1 | ALTER TABLE bookings ADD CONSTRAINT no_overlap EXCLUDE USING gist (room WITH =, during WITH &&);
  |                      ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
  |
  = help: PostgreSQL has no online way to add an exclusion constraint (no USING INDEX, no NOT VALID): declare it in CREATE TABLE for new tables; on an existing table run it in a maintenance window with a short `SET lock_timeout = '5s';`, after checking for conflicting rows (they make it fail after the whole build)

"
        );
    }

    #[test]
    fn fires_without_a_name_and_when_unparsed() {
        let report = check_rule(
            RULE,
            &[BOOKINGS],
            "ALTER TABLE bookings ADD EXCLUDE USING gist (during WITH &&) WITH (fillfactor = 90);",
        );
        assert!(
            report.contains("ADD EXCLUDE on existing table public.bookings"),
            "{report}"
        );
    }

    #[test]
    fn silent_on_new_tables_and_other_constraints() {
        for sql in [
            "CREATE TABLE slots (during tstzrange);\nALTER TABLE slots ADD EXCLUDE USING gist (during WITH &&);",
            "CREATE TABLE slots (during tstzrange, EXCLUDE USING gist (during WITH &&));",
            "ALTER TABLE bookings ADD CONSTRAINT room_positive CHECK (room > 0) NOT VALID;",
        ] {
            assert_eq!(check_rule(RULE, &[BOOKINGS], sql), "", "{sql}");
        }
    }
}
