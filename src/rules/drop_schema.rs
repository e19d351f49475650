//! `DROP SCHEMA` deletes a schema; with `CASCADE` it deletes every table (and every row), view,
//! sequence, type and function in it, and whatever in other schemas depends on them, in one
//! statement that cannot be undone. Without `CASCADE` it fails unless the schema is empty, but the
//! application version still running loses every name in it all the same.
//!
//! The schema's contents come from the model, so the finding names what the history shows lives in
//! it. A schema created earlier in the same migration holds nothing anyone relies on and is skipped.
//!
//! Also home of the schema helpers `rename-schema` shares: [`schema_contents`] and
//! [`created_in_this_migration`].

use sqlparser::ast::{ObjectType, Statement as Ast};

use super::syntax::{ident_offset, sql_ident};
use super::{kinds, Category, Diagnostic, Kinds, Rule, Severity, StatementContext};
use crate::schema::{Catalog, RelationKind};
use crate::sql::{Kind, ObjectName};

pub const RULE: Rule = Rule {
    id: "drop-schema",
    category: Category::DataLoss,
    default_severity: Severity::Error,
    size_graded: false,
    summary: "DROP SCHEMA destroys every object in it",
    doc: include_str!("../../rules/drop-schema.md"),
    check,
    kinds: Kinds::Only(&[kinds::DROP]),
};

/// At most this many names of one kind of object are listed in a message.
const LISTED: usize = 5;

fn check(cx: &StatementContext, out: &mut Vec<Diagnostic>) {
    let statement = cx.statement;
    // (schema, offset of its name, CASCADE)
    let dropped: Vec<(String, usize, bool)> = match statement.ast() {
        Some(Ast::Drop {
            object_type: ObjectType::Schema,
            names,
            cascade,
            ..
        }) => names
            .iter()
            .filter_map(|name| {
                let ident = name.0.last()?.as_ident()?;
                let offset = ident_offset(cx, ident).unwrap_or(statement.range.start);
                Some((ObjectName::from_ast(name)?.name, offset, *cascade))
            })
            .collect(),
        None if statement.class.kind == Kind::DropSchema => {
            let cascade = statement.find_keywords(cx.text, &["cascade"]).is_some();
            statement
                .class
                .target
                .iter()
                .map(|name| (name.name.clone(), statement.range.start, cascade))
                .collect()
        }
        _ => return,
    };
    for (schema, offset, cascade) in dropped {
        if created_in_this_migration(cx, &schema) {
            continue;
        }
        let contents = schema_contents(cx.catalog, &schema);
        let known = match (contents.is_empty(), cascade) {
            (false, _) => format!("the history shows {}", contents.join("; ")),
            (true, true) => {
                "the history shows nothing in it, but whatever was created outside the \
                             reviewed migrations goes too"
                    .to_owned()
            }
            (true, false) => "the history shows nothing in it".to_owned(),
        };
        let message = if cascade {
            format!(
                "DROP SCHEMA {schema} CASCADE deletes the schema and everything in it for good: every \
                 table with all its rows, every view, sequence, type and function ({known}), and the \
                 views and foreign keys of other schemas that depend on them"
            )
        } else {
            format!(
                "DROP SCHEMA {schema} deletes the schema; it fails unless the schema is empty ({known}), \
                 and the application version still running fails on every query that names it \
                 (schema \"{schema}\" does not exist)"
            )
        };
        out.push(cx.diagnostic(
            offset,
            None,
            message,
            format!(
                "move or back up what must survive first (pg_dump --schema={schema}), stop every use \
                 of the schema in the application and deploy that, then drop it without CASCADE in a \
                 later migration, so it fails instead of deleting objects you did not expect: `DROP \
                 SCHEMA {};`",
                sql_ident(&schema)
            ),
        ));
    }
}

/// What the model knows lives in `schema`, one phrase per kind of object (`tables audit.log,
/// audit.event`), at most [`LISTED`] names each. Sequences owned by a column go with their table
/// and are not listed.
pub(super) fn schema_contents(catalog: &Catalog, schema: &str) -> Vec<String> {
    let in_schema = |name: &ObjectName| name.schema.as_deref() == Some(schema);
    let mut tables = Vec::new();
    let mut views = Vec::new();
    for relation in catalog.relations().filter(|r| in_schema(&r.name)) {
        match relation.kind {
            RelationKind::View | RelationKind::MaterializedView => views.push(&relation.name),
            RelationKind::Table | RelationKind::PartitionedTable | RelationKind::ForeignTable => {
                tables.push(&relation.name)
            }
        }
    }
    let sequences: Vec<&ObjectName> = catalog
        .sequences()
        .filter(|s| in_schema(&s.name) && s.owned_by.is_none())
        .map(|s| &s.name)
        .collect();
    let types: Vec<&ObjectName> = catalog
        .user_types()
        .filter(|t| in_schema(&t.name))
        .map(|t| &t.name)
        .collect();
    [
        ("table", tables),
        ("view", views),
        ("sequence", sequences),
        ("type", types),
    ]
    .into_iter()
    .filter(|(_, names)| !names.is_empty())
    .map(|(kind, names)| list(kind, names))
    .collect()
}

/// `tables a, b and 3 more`, names sorted.
fn list(kind: &str, mut names: Vec<&ObjectName>) -> String {
    names.sort();
    let plural = if names.len() == 1 { "" } else { "s" };
    let shown: Vec<String> = names.iter().take(LISTED).map(|n| n.to_string()).collect();
    let more = match names.len().saturating_sub(LISTED) {
        0 => String::new(),
        n => format!(" and {n} more"),
    };
    format!("{kind}{plural} {}{more}", shown.join(", "))
}

/// Whether an earlier statement of this migration created `schema` and everything the model knows
/// in it is new too: nothing outside the migration can rely on it yet.
pub(super) fn created_in_this_migration(cx: &StatementContext, schema: &str) -> bool {
    let created = cx.statements[..cx.index]
        .iter()
        .flat_map(|s| std::iter::once(s).chain(&s.nested))
        .any(|s| {
            s.class.kind == Kind::CreateSchema
                && s.class.target.as_ref().is_some_and(|t| t.name == schema)
        });
    let current = cx.catalog.current_migration();
    let in_schema = |name: &ObjectName| name.schema.as_deref() == Some(schema);
    created
        && cx
            .catalog
            .relations()
            .filter(|r| in_schema(&r.name))
            .all(|r| r.origin == current)
        && cx
            .catalog
            .user_types()
            .filter(|t| in_schema(&t.name))
            .all(|t| t.origin == current)
        && cx
            .catalog
            .sequences()
            .filter(|s| in_schema(&s.name))
            .all(|s| s.origin == current)
}

#[cfg(test)]
mod tests {
    use crate::rules::testing::check_rule;

    const RULE: &str = "drop-schema";
    const AUDIT: &str = "CREATE SCHEMA audit;\n\
                         CREATE TABLE audit.log (id bigserial PRIMARY KEY, payload jsonb);\n\
                         CREATE VIEW audit.recent AS SELECT * FROM audit.log;\n\
                         CREATE TYPE audit.level AS ENUM ('info', 'warn');";

    #[test]
    fn fires_on_cascade_and_names_what_the_model_knows() {
        assert_eq!(
            check_rule(RULE, &[AUDIT], "DROP SCHEMA audit CASCADE;"),
            "\
error[drop-schema]: DROP SCHEMA audit CASCADE deletes the schema and everything in it for good: every table with all its rows, every view, sequence, type and function (the history shows table audit.log; view audit.recent; type audit.level), and the views and foreign keys of other schemas that depend on them
 --> migration.sql:1:13
  |
1 | DROP SCHEMA audit CASCADE;
  |             ^^^^^^^^^^^^^
  |
  = help: move or back up what must survive first (pg_dump --schema=audit), stop every use of the schema in the application and deploy that, then drop it without CASCADE in a later migration, so it fails instead of deleting objects you did not expect: `DROP SCHEMA audit;`

"
        );
    }

    #[test]
    fn without_cascade_it_says_the_drop_fails_unless_empty() {
        let report = check_rule(RULE, &[AUDIT], "DROP SCHEMA IF EXISTS audit;");
        assert!(
            report.contains("DROP SCHEMA audit deletes the schema; it fails unless the schema is empty (the history shows table audit.log;"),
            "{report}"
        );
    }

    #[test]
    fn says_when_the_model_knows_nothing_in_it() {
        let report = check_rule(RULE, &[], "DROP SCHEMA \"Legacy\" CASCADE;");
        assert!(
            report.contains(
                "DROP SCHEMA Legacy CASCADE deletes the schema and everything in it for good"
            ),
            "{report}"
        );
        assert!(
            report.contains("the history shows nothing in it"),
            "{report}"
        );
        assert!(report.contains("`DROP SCHEMA \"Legacy\";`"), "{report}");
    }

    #[test]
    fn reports_each_schema_and_lists_at_most_five_names() {
        let many: String = (1..=7)
            .map(|i| format!("CREATE TABLE staging.t{i} (id int);\n"))
            .collect();
        let report = check_rule(RULE, &[AUDIT, &many], "DROP SCHEMA audit, staging CASCADE;");
        assert_eq!(report.matches("error[drop-schema]").count(), 2, "{report}");
        assert!(
            report.contains(
                "tables staging.t1, staging.t2, staging.t3, staging.t4, staging.t5 and 2 more"
            ),
            "{report}"
        );
    }

    #[test]
    fn fires_when_sqlparser_cannot_parse_it() {
        let report = check_rule(RULE, &[AUDIT], "DROP SCHEMA audit CASCADE CASCADE;");
        assert!(
            report.contains("DROP SCHEMA audit CASCADE deletes"),
            "{report}"
        );
    }

    #[test]
    fn silent_on_a_schema_created_in_the_same_migration_and_on_other_drops() {
        for sql in [
            "CREATE SCHEMA scratch;\nCREATE TABLE scratch.t (id int);\nDROP SCHEMA scratch CASCADE;",
            "DROP TABLE audit.log;",
            "DROP TYPE audit.level;",
        ] {
            assert_eq!(check_rule(RULE, &[AUDIT], sql), "", "{sql}");
        }
    }

    #[test]
    fn a_schema_of_the_history_recreated_with_if_not_exists_is_not_new() {
        let report = check_rule(
            RULE,
            &[AUDIT],
            "CREATE SCHEMA IF NOT EXISTS audit;\nDROP SCHEMA audit CASCADE;",
        );
        assert!(report.contains("table audit.log"), "{report}");
    }
}
