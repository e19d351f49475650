//! `DROP TABLE x` followed later in the same migration by `CREATE TABLE x` looks like a schema change
//! but replaces the table with an empty one: every row of the old table is lost. It is the way
//! schema-diff tools and hand-written "recreate" migrations change a table they could have altered.
//!
//! The finding is on the DROP (where the rows are lost, and where an ignore comment naming both this
//! rule and `drop-table` silences the pair) and names the CREATE's line. A table created earlier in
//! the same migration is left to the engine's filter.

use sqlparser::ast::{ObjectType, Statement as Ast};

use super::syntax::ident_offset;
use super::{kinds, Category, Diagnostic, Kinds, Rule, Severity, StatementContext};
use crate::sql::{Kind, ObjectName, Statement};

pub const RULE: Rule = Rule {
    id: "drop-and-recreate-table",
    category: Category::DataLoss,
    default_severity: Severity::Error,
    size_graded: false,
    summary: "DROP TABLE then CREATE TABLE of the same name loses every row",
    doc: include_str!("../../rules/drop-and-recreate-table.md"),
    check,
    kinds: Kinds::Only(&[kinds::DROP]),
};

fn check(cx: &StatementContext, out: &mut Vec<Diagnostic>) {
    let statement = cx.statement;
    // (table, offset of its name)
    let dropped: Vec<(ObjectName, usize)> = match statement.ast() {
        Some(Ast::Drop {
            object_type: ObjectType::Table,
            names,
            ..
        }) => names
            .iter()
            .filter_map(|name| {
                let offset = name
                    .0
                    .first()
                    .and_then(|part| part.as_ident())
                    .and_then(|ident| ident_offset(cx, ident))
                    .unwrap_or(statement.range.start);
                Some((ObjectName::from_ast(name)?, offset))
            })
            .collect(),
        None if statement.class.kind == Kind::DropTable => statement
            .class
            .target
            .iter()
            .map(|table| (table.clone(), statement.range.start))
            .collect(),
        _ => return,
    };
    for (table, offset) in dropped {
        let resolved = cx.catalog.resolve(&table);
        let Some(create) = later_creates(cx).find(|create| {
            create
                .class
                .target
                .as_ref()
                .is_some_and(|created| cx.catalog.resolve(created) == resolved)
        }) else {
            continue;
        };
        out.push(cx.diagnostic(
            offset,
            Some(&table),
            format!(
                "DROP TABLE {resolved} and the CREATE TABLE {resolved} on line {} replace the table \
                 with an empty one: every row of {resolved} is lost for good, and until the new table \
                 is committed queries on it fail or wait",
                cx.line_of(create.range.start)
            ),
            "change the table in place with ALTER TABLE (ADD, DROP or ALTER COLUMN, constraints), \
             which keeps its rows; if it must be rebuilt, create the new table under another name, \
             copy the rows (INSERT INTO … SELECT, in batches), and swap the names with ALTER TABLE … \
             RENAME in one short transaction"
                .into(),
        ));
    }
}

/// The `CREATE TABLE` statements after this one, including those inside DO blocks.
fn later_creates<'a>(cx: &StatementContext<'a>) -> impl Iterator<Item = &'a Statement> + 'a {
    cx.statements[cx.index + 1..]
        .iter()
        .flat_map(|s| std::iter::once(s).chain(&s.nested))
        .filter(|s| s.class.kind == Kind::CreateTable)
}

#[cfg(test)]
mod tests {
    use crate::rules::testing::check_rule;

    const RULE: &str = "drop-and-recreate-table";
    const USERS: &str = "CREATE TABLE users (id bigint PRIMARY KEY, email text);";

    #[test]
    fn fires_on_the_drop_of_a_recreated_table() {
        assert_eq!(
            check_rule(
                RULE,
                &[USERS],
                "DROP TABLE users;\nCREATE TABLE users (id bigint PRIMARY KEY, email text NOT NULL);"
            ),
            "\
error[drop-and-recreate-table]: DROP TABLE public.users and the CREATE TABLE public.users on line 2 replace the table with an empty one: every row of public.users is lost for good, and until the new table is committed queries on it fail or wait
 --> migration.sql:1:12
  |
1 | DROP TABLE users;
  |            ^^^^^
  |
  = help: change the table in place with ALTER TABLE (ADD, DROP or ALTER COLUMN, constraints), which keeps its rows; if it must be rebuilt, create the new table under another name, copy the rows (INSERT INTO … SELECT, in batches), and swap the names with ALTER TABLE … RENAME in one short transaction

"
        );
    }

    #[test]
    fn matches_names_as_postgres_resolves_them() {
        let report = check_rule(
            RULE,
            &[USERS],
            "BEGIN;\nDROP TABLE IF EXISTS public.users CASCADE;\nCREATE TABLE IF NOT EXISTS \"users\" (id bigint);\nCOMMIT;",
        );
        assert!(report.contains("on line 3"), "{report}");
        assert!(report.contains("--> migration.sql:2:22"), "{report}");
        let report = check_rule(
            RULE,
            &[],
            "DROP TABLE \"Post\";\nDO $$ BEGIN CREATE TABLE \"Post\" (id int); END $$;",
        );
        assert!(report.contains("DROP TABLE public.Post"), "{report}");
    }

    #[test]
    fn silent_without_a_later_create_of_the_same_name() {
        for sql in [
            "DROP TABLE users;",
            "DROP TABLE users;\nCREATE TABLE \"Users\" (id bigint);",
            "DROP TABLE users;\nCREATE TABLE archive.users (id bigint);",
            "CREATE TABLE users_v2 (id bigint);\nDROP TABLE users;\nALTER TABLE users_v2 RENAME TO users;",
            "CREATE TABLE scratch (id int);\nDROP TABLE scratch;\nCREATE TABLE scratch (id bigint);",
        ] {
            assert_eq!(check_rule(RULE, &[USERS], sql), "", "{sql}");
        }
    }
}
