//! `DROP DATABASE` deletes a whole database, every schema, table and row in it, in one statement
//! that cannot be undone. A schema migration has no business doing it: it is reported wherever it
//! appears.

use sqlparser::ast::{ObjectType, Statement as Ast};

use super::syntax::{clauses_from_tokens, ident_offset, sql_ident};
use super::{Category, Diagnostic, Kinds, Rule, Severity, StatementContext};
use crate::sql::ObjectName;

pub const RULE: Rule = Rule {
    id: "drop-database",
    category: Category::DataLoss,
    default_severity: Severity::Error,
    size_graded: false,
    summary: "DROP DATABASE deletes a whole database",
    doc: include_str!("../../rules/drop-database.md"),
    check,
    kinds: Kinds::All,
};

fn check(cx: &StatementContext, out: &mut Vec<Diagnostic>) {
    let statement = cx.statement;
    // (database, offset of its name)
    let dropped: Vec<(String, usize)> = match statement.ast() {
        Some(Ast::Drop {
            object_type: ObjectType::Database,
            names,
            ..
        }) => names
            .iter()
            .filter_map(|name| {
                let ident = name.0.last()?.as_ident()?;
                let offset = ident_offset(cx, ident).unwrap_or(statement.range.start);
                Some((ObjectName::from_ast(name)?.name, offset))
            })
            .collect(),
        // `DROP DATABASE … WITH (FORCE)` and other forms sqlparser rejects: the fallback
        // classification has no kind for it, the tokens say it.
        None => clauses_from_tokens(cx, &["drop", "database"])
            .into_iter()
            .filter(|(offset, _)| *offset == statement.range.start)
            .map(|(offset, name)| (name.name, offset))
            .collect(),
        _ => return,
    };
    for (database, offset) in dropped {
        out.push(cx.diagnostic(
            offset,
            None,
            format!(
                "DROP DATABASE deletes the database {database} and every schema, table and row in it \
                 for good; it cannot run inside a transaction block, and it fails while any session \
                 is connected to {database} unless WITH (FORCE) (PostgreSQL 13+) terminates them"
            ),
            format!(
                "do not drop databases from a schema migration: remove the statement, and drop the \
                 database by hand once nothing uses it, after a backup (pg_dump {})",
                sql_ident(&database)
            ),
        ));
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::testing::check_rule;

    const RULE: &str = "drop-database";

    #[test]
    fn fires_on_drop_database() {
        assert_eq!(
            check_rule(RULE, &[], "DROP DATABASE analytics;"),
            "\
error[drop-database]: DROP DATABASE deletes the database analytics and every schema, table and row in it for good; it cannot run inside a transaction block, and it fails while any session is connected to analytics unless WITH (FORCE) (PostgreSQL 13+) terminates them
 --> migration.sql:1:15
  |
1 | DROP DATABASE analytics;
  |               ^^^^^^^^^
  |
  = help: do not drop databases from a schema migration: remove the statement, and drop the database by hand once nothing uses it, after a backup (pg_dump analytics)

"
        );
    }

    #[test]
    fn fires_on_forms_sqlparser_cannot_parse() {
        let report = check_rule(
            RULE,
            &[],
            "SELECT 1;\nDROP DATABASE IF EXISTS \"Old\" WITH (FORCE);",
        );
        assert!(
            report.contains("deletes the database Old and every schema"),
            "{report}"
        );
        assert!(report.contains("--> migration.sql:2:1"), "{report}");
        assert!(report.contains("(pg_dump \"Old\")"), "{report}");
    }

    #[test]
    fn silent_on_other_statements() {
        for sql in [
            "DROP SCHEMA analytics;",
            "DROP TABLE database;",
            "CREATE DATABASE analytics;",
        ] {
            assert_eq!(check_rule(RULE, &[], sql), "", "{sql}");
        }
    }
}
