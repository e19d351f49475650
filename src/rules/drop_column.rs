//! `ALTER TABLE … DROP COLUMN` of a column that existed before the migration deletes its data in every
//! row, and breaks the application version still running, which still reads and writes it. A column
//! added earlier in the same migration holds nothing yet and is skipped.

use sqlparser::ast::{AlterTableOperation, DropBehavior, Statement as Ast};

use super::syntax::{clause_of, clauses_from_tokens};
use super::{kinds, Category, Diagnostic, Kinds, Rule, Severity, StatementContext};
use crate::sql::name::fold_ident;
use crate::sql::{Kind, ObjectName};

pub const RULE: Rule = Rule {
    id: "drop-column",
    category: Category::DataLoss,
    default_severity: Severity::Error,
    size_graded: false,
    summary: "DROP COLUMN of an existing column destroys its data",
    doc: include_str!("../../rules/drop-column.md"),
    check,
    kinds: Kinds::Only(&[kinds::ALTER]),
};

fn check(cx: &StatementContext, out: &mut Vec<Diagnostic>) {
    let statement = cx.statement;
    // (column, offset of its DROP clause, CASCADE)
    let (table, dropped): (ObjectName, Vec<(String, usize, bool)>) = match statement.ast() {
        // ALTER FOREIGN TABLE … DROP COLUMN only changes the local definition: no data is lost.
        Some(Ast::AlterTable(alter)) if alter.table_type.is_none() => {
            let Some(table) = ObjectName::from_ast(&alter.name) else {
                return;
            };
            let dropped = alter
                .operations
                .iter()
                .filter_map(|operation| match operation {
                    AlterTableOperation::DropColumn {
                        column_names,
                        drop_behavior,
                        ..
                    } => Some(column_names.iter().map(move |ident| {
                        (
                            fold_ident(ident),
                            clause_of(cx, ident, "drop"),
                            matches!(drop_behavior, Some(DropBehavior::Cascade)),
                        )
                    })),
                    _ => None,
                })
                .flatten()
                .collect();
            (table, dropped)
        }
        None if statement.class.kind == Kind::AlterTable => {
            let Some(table) = statement.class.target.clone() else {
                return;
            };
            let cascade = statement.find_keywords(cx.text, &["cascade"]).is_some();
            let dropped = clauses_from_tokens(cx, &["drop", "column"])
                .into_iter()
                .filter(|(_, column)| column.schema.is_none())
                .map(|(offset, column)| (column.name, offset, cascade))
                .collect();
            (table, dropped)
        }
        _ => return,
    };
    for (column, offset, cascade) in dropped {
        if cx.catalog.is_new_column(&table, &column) {
            continue;
        }
        let name = cx.qualified(&table);
        let mut message = format!(
            "DROP COLUMN deletes {name}.{column} and its value in every row for good; the application \
             version still running fails on every query that names it (column \"{column}\" does not \
             exist), including INSERTs and ORM models that list all columns"
        );
        if cascade {
            message.push_str(
                "; CASCADE also drops every view and every foreign key of other tables that depends \
                 on the column",
            );
        }
        out.push(cx.diagnostic(
            offset,
            Some(&table),
            message,
            format!(
                "stop using the column first: remove every read and write of {column} from the \
                 application (and from ORM models), deploy that, then drop the column in a later \
                 migration; copy the data elsewhere first if it may still be needed"
            ),
        ));
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::testing::check_rule;

    const USERS: &str =
        "CREATE TABLE users (id bigint PRIMARY KEY, email text, \"legacyName\" text);";

    #[test]
    fn fires_on_an_existing_column() {
        assert_eq!(
            check_rule("drop-column", &[USERS], "ALTER TABLE users DROP COLUMN email;"),
            "\
error[drop-column]: DROP COLUMN deletes public.users.email and its value in every row for good; the application version still running fails on every query that names it (column \"email\" does not exist), including INSERTs and ORM models that list all columns
 --> migration.sql:1:19
  |
1 | ALTER TABLE users DROP COLUMN email;
  |                   ^^^^^^^^^^^^^^^^^
  |
  = help: stop using the column first: remove every read and write of email from the application (and from ORM models), deploy that, then drop the column in a later migration; copy the data elsewhere first if it may still be needed

"
        );
    }

    #[test]
    fn reports_every_dropped_column_at_its_clause() {
        let report = check_rule(
            "drop-column",
            &[USERS],
            "ALTER TABLE ONLY users\n  DROP COLUMN IF EXISTS email,\n  DROP \"legacyName\" CASCADE;",
        );
        assert_eq!(report.matches("error[drop-column]").count(), 2, "{report}");
        assert!(report.contains("--> migration.sql:2:3"), "{report}");
        assert!(report.contains("--> migration.sql:3:3"), "{report}");
        assert!(
            report.contains("deletes public.users.legacyName"),
            "{report}"
        );
        assert_eq!(report.matches("CASCADE also drops").count(), 1, "{report}");
    }

    #[test]
    fn fires_on_a_table_the_model_does_not_know() {
        let report = check_rule(
            "drop-column",
            &[],
            "ALTER TABLE \"Post\" DROP COLUMN \"authorId\";",
        );
        assert!(report.contains("deletes public.Post.authorId"), "{report}");
    }

    #[test]
    fn fires_when_sqlparser_cannot_parse_the_statement() {
        let report = check_rule(
            "drop-column",
            &[USERS],
            "ALTER TABLE users DROP COLUMN email, SET SCHEMA archive;",
        );
        assert!(report.contains("deletes public.users.email"), "{report}");
        assert!(report.contains("--> migration.sql:1:19"), "{report}");
    }

    #[test]
    fn silent_on_tables_and_columns_created_in_the_same_migration() {
        for sql in [
            "CREATE TABLE t (id bigint, note text);\nALTER TABLE t DROP COLUMN note;",
            "ALTER TABLE users ADD COLUMN nickname text;\nALTER TABLE users DROP COLUMN nickname;",
        ] {
            assert_eq!(check_rule("drop-column", &[USERS], sql), "", "{sql}");
        }
    }

    #[test]
    fn silent_on_other_drops() {
        for sql in [
            "ALTER TABLE users DROP CONSTRAINT users_pkey;",
            "ALTER TABLE users ALTER COLUMN email DROP DEFAULT, ALTER COLUMN email DROP NOT NULL;",
            "ALTER FOREIGN TABLE remote_users DROP COLUMN email;",
        ] {
            assert_eq!(check_rule("drop-column", &[USERS], sql), "", "{sql}");
        }
    }
}
