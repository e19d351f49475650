//! `DROP TABLE` of a table that existed before the migration deletes it and every row in it, and
//! breaks the application version still running. Each name of a multi-name `DROP TABLE` is reported
//! on its own; tables created earlier in the same migration are left to the engine's filter.

use sqlparser::ast::ObjectType;

use super::syntax::{dropped, Dropped};
use super::{Category, Diagnostic, Rule, Severity, StatementContext};
use crate::sql::Kind;

pub const RULE: Rule = Rule {
    id: "drop-table",
    category: Category::DataLoss,
    default_severity: Severity::Error,
    size_graded: false,
    summary: "DROP TABLE of an existing table destroys its data",
    doc: include_str!("../../rules/drop-table.md"),
    check,
};

fn check(cx: &StatementContext, out: &mut Vec<Diagnostic>) {
    for Dropped {
        name: table,
        offset,
        cascade,
    } in dropped(cx, ObjectType::Table, Kind::DropTable)
    {
        let name = cx.qualified(&table);
        let mut message = format!(
            "DROP TABLE deletes {name} and every row in it for good; the application version still \
             running fails on every query that uses it (relation \"{}\" does not exist)",
            table.name
        );
        if cascade {
            message.push_str(
                "; CASCADE also drops every view that depends on it and every foreign key of other \
                 tables that references it",
            );
        }
        out.push(cx.diagnostic(
            offset,
            Some(&table),
            message,
            format!(
                "first remove every use of {name} from the application and deploy that; keep the data \
                 until nobody misses it: take a backup (pg_dump --table={name}) or rename it \
                 (ALTER TABLE {name} RENAME TO {}_deprecated) and drop it in a later release",
                table.name
            ),
        ));
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::testing::check_rule;

    const HISTORY: &str = "CREATE TABLE users (id bigint PRIMARY KEY, email text);\n\
                           CREATE TABLE sessions (id bigint PRIMARY KEY, user_id bigint);";

    #[test]
    fn fires_on_an_existing_table() {
        assert_eq!(
            check_rule("drop-table", &[HISTORY], "DROP TABLE sessions;"),
            "\
error[drop-table]: DROP TABLE deletes public.sessions and every row in it for good; the application version still running fails on every query that uses it (relation \"sessions\" does not exist)
 --> migration.sql:1:12
  |
1 | DROP TABLE sessions;
  |            ^^^^^^^^
  |
  = help: first remove every use of public.sessions from the application and deploy that; keep the data until nobody misses it: take a backup (pg_dump --table=public.sessions) or rename it (ALTER TABLE public.sessions RENAME TO sessions_deprecated) and drop it in a later release

"
        );
    }

    #[test]
    fn reports_each_name_of_a_multi_name_drop_at_its_name() {
        let report = check_rule(
            "drop-table",
            &[HISTORY],
            "DROP TABLE IF EXISTS users, \"Audit\".\"Log\" CASCADE;",
        );
        assert_eq!(report.matches("error[drop-table]").count(), 2, "{report}");
        assert!(report.contains("deletes public.users"), "{report}");
        assert!(report.contains("deletes Audit.Log"), "{report}");
        assert!(report.contains("--> migration.sql:1:22"), "{report}");
        assert!(report.contains("--> migration.sql:1:29"), "{report}");
        assert!(report.contains("CASCADE also drops every view"), "{report}");
    }

    #[test]
    fn fires_on_a_table_the_model_does_not_know() {
        let report = check_rule("drop-table", &[], "DROP TABLE legacy.orders;");
        assert!(report.contains("deletes legacy.orders"), "{report}");
        assert!(!report.contains("CASCADE"), "{report}");
    }

    #[test]
    fn only_the_existing_tables_of_a_multi_name_drop_are_reported() {
        let report = check_rule(
            "drop-table",
            &[HISTORY],
            "CREATE TABLE scratch (id bigint);\nDROP TABLE scratch, sessions;",
        );
        assert_eq!(report.matches("error[drop-table]").count(), 1, "{report}");
        assert!(report.contains("deletes public.sessions"), "{report}");
    }

    #[test]
    fn silent_on_a_table_created_in_the_same_migration() {
        let sql = "CREATE TABLE scratch (id bigint);\nDROP TABLE scratch;";
        assert_eq!(check_rule("drop-table", &[HISTORY], sql), "");
    }

    #[test]
    fn silent_on_other_objects() {
        for sql in [
            "DROP VIEW active_users;",
            "DROP INDEX users_email_idx;",
            "ALTER TABLE users DROP COLUMN email;",
        ] {
            assert_eq!(check_rule("drop-table", &[HISTORY], sql), "", "{sql}");
        }
    }
}
