//! `ALTER TABLE … RENAME COLUMN` on a table that existed before the migration breaks the application
//! version still running: until every instance is redeployed, its queries name the old column. A
//! column added earlier in the same migration is skipped: no deployed code knows it yet.

use sqlparser::ast::{AlterTableOperation, Statement as Ast};

use super::syntax::{clause_of, clauses_from_tokens};
use super::{kinds, Category, Diagnostic, Kinds, Rule, Severity, StatementContext};
use crate::sql::name::fold_ident;
use crate::sql::{Kind, ObjectName};

pub const RULE: Rule = Rule {
    id: "rename-column",
    category: Category::Compatibility,
    default_severity: Severity::Error,
    size_graded: false,
    summary: "RENAME COLUMN breaks the application version still running",
    doc: include_str!("../../rules/rename-column.md"),
    check,
    kinds: Kinds::Only(&[kinds::ALTER]),
};

fn check(cx: &StatementContext, out: &mut Vec<Diagnostic>) {
    let statement = cx.statement;
    // (old name, new name when known, offset of its RENAME clause)
    let (table, renamed): (ObjectName, Vec<(String, Option<String>, usize)>) = match statement.ast()
    {
        Some(Ast::AlterTable(alter)) => {
            let Some(table) = ObjectName::from_ast(&alter.name) else {
                return;
            };
            let renamed = alter
                .operations
                .iter()
                .filter_map(|operation| match operation {
                    AlterTableOperation::RenameColumn {
                        old_column_name,
                        new_column_name,
                    } => Some((
                        fold_ident(old_column_name),
                        Some(fold_ident(new_column_name)),
                        clause_of(cx, old_column_name, "rename"),
                    )),
                    _ => None,
                })
                .collect();
            (table, renamed)
        }
        None if statement.class.kind == Kind::AlterTable => {
            let Some(table) = statement.class.target.clone() else {
                return;
            };
            let renamed = clauses_from_tokens(cx, &["rename", "column"])
                .into_iter()
                .filter(|(_, column)| column.schema.is_none())
                .map(|(offset, column)| (column.name, None, offset))
                .collect();
            (table, renamed)
        }
        _ => return,
    };
    for (old, new, offset) in renamed {
        if cx.catalog.is_new_column(&table, &old) {
            continue;
        }
        let name = cx.qualified(&table);
        let to = new
            .as_deref()
            .map(|new| format!(" to {new}"))
            .unwrap_or_default();
        let new_name = new.as_deref().unwrap_or("the new name");
        out.push(cx.diagnostic(
            offset,
            Some(&table),
            format!(
                "renaming column {name}.{old}{to} breaks the application version still running: until \
                 every instance is redeployed, its queries name {old}, which stops existing the moment \
                 this commits (column \"{old}\" does not exist)"
            ),
            format!(
                "expand/contract instead: add {new_name} as a new column, write to both (or sync them \
                 with a trigger) and backfill it, switch reads to {new_name} and deploy, then drop {old} \
                 in a later migration; or rename the column in the application's mapping only \
                 (e.g. an ORM column name) and keep {old} in the database"
            ),
        ));
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::testing::check_rule;

    const USERS: &str = "CREATE TABLE users (id bigint PRIMARY KEY, email text);";

    #[test]
    fn fires_on_an_existing_table() {
        assert_eq!(
            check_rule(
                "rename-column",
                &[USERS],
                "ALTER TABLE users RENAME COLUMN email TO email_address;"
            ),
            "\
error[rename-column]: renaming column public.users.email to email_address breaks the application version still running: until every instance is redeployed, its queries name email, which stops existing the moment this commits (column \"email\" does not exist)
 --> migration.sql:1:19
  |
1 | ALTER TABLE users RENAME COLUMN email TO email_address;
  |                   ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
  |
  = help: expand/contract instead: add email_address as a new column, write to both (or sync them with a trigger) and backfill it, switch reads to email_address and deploy, then drop email in a later migration; or rename the column in the application's mapping only (e.g. an ORM column name) and keep email in the database

"
        );
    }

    #[test]
    fn fires_without_the_column_keyword_and_on_unknown_tables() {
        let report = check_rule(
            "rename-column",
            &[],
            "ALTER TABLE IF EXISTS \"User\" RENAME \"userName\" TO \"displayName\";",
        );
        assert!(
            report.contains("renaming column public.User.userName to displayName"),
            "{report}"
        );
        assert!(report.contains("--> migration.sql:1:30"), "{report}");
    }

    #[test]
    fn fires_when_sqlparser_cannot_parse_the_statement() {
        let report = check_rule(
            "rename-column",
            &[USERS],
            "ALTER TABLE users RENAME COLUMN email TO mail, SET SCHEMA archive;",
        );
        assert!(
            report.contains("renaming column public.users.email breaks"),
            "{report}"
        );
    }

    #[test]
    fn silent_on_tables_and_columns_created_in_the_same_migration() {
        for sql in [
            "CREATE TABLE t (id bigint, note text);\nALTER TABLE t RENAME COLUMN note TO body;",
            "ALTER TABLE users ADD COLUMN nick text;\nALTER TABLE users RENAME COLUMN nick TO nickname;",
        ] {
            assert_eq!(check_rule("rename-column", &[USERS], sql), "", "{sql}");
        }
    }

    #[test]
    fn silent_on_other_renames() {
        for sql in [
            "ALTER TABLE users RENAME CONSTRAINT users_pkey TO users_id_pkey;",
            "ALTER TABLE users RENAME TO accounts;",
        ] {
            assert_eq!(check_rule("rename-column", &[USERS], sql), "", "{sql}");
        }
    }
}
