//! `ALTER SCHEMA … RENAME TO` breaks the application version still running: until every instance is
//! redeployed, its queries name the old schema, and a `search_path` that lists it silently stops
//! finding its objects. The rename itself is instant (no table is locked or rewritten).
//!
//! The finding names what the model knows lives in the schema. The safe shape is recognised: the
//! same transaction recreates the old schema with a view for every table and view the model knows in
//! it, so the old names never stop working. A schema created earlier in the same migration is
//! skipped.

use sqlparser::ast::{AlterSchemaOperation, Statement as Ast};

use super::drop_schema::{created_in_this_migration, schema_contents};
use super::nested_transaction::later_in_transaction;
use super::syntax::{clauses_from_tokens, sql_ident};
use super::{kinds, Category, Diagnostic, Kinds, Rule, Severity, StatementContext};
use crate::sql::{Kind, ObjectName, Statement};

pub const RULE: Rule = Rule {
    id: "rename-schema",
    category: Category::Compatibility,
    default_severity: Severity::Error,
    size_graded: false,
    summary: "ALTER SCHEMA RENAME breaks the application version still running",
    doc: include_str!("../../rules/rename-schema.md"),
    check,
    kinds: Kinds::Only(&[kinds::ALTER]),
};

fn check(cx: &StatementContext, out: &mut Vec<Diagnostic>) {
    let statement = cx.statement;
    // (old name, new name, offset of the RENAME clause)
    let renames: Vec<(String, String, usize)> = match statement.ast() {
        Some(Ast::AlterSchema(alter)) => {
            let Some(old) = ObjectName::from_ast(&alter.name) else {
                return;
            };
            alter
                .operations
                .iter()
                .filter_map(|operation| match operation {
                    AlterSchemaOperation::Rename { name } => Some((
                        old.name.clone(),
                        ObjectName::from_ast(name)?.name,
                        cx.offset_of(&["rename", "to"]),
                    )),
                    _ => None,
                })
                .collect()
        }
        None if statement.class.kind == Kind::AlterSchema => {
            let Some(old) = &statement.class.target else {
                return;
            };
            clauses_from_tokens(cx, &["rename", "to"])
                .into_iter()
                .map(|(offset, new)| (old.name.clone(), new.name, offset))
                .collect()
        }
        _ => return,
    };
    for (old, new, offset) in renames {
        if created_in_this_migration(cx, &old) || old_name_kept(cx, &old) {
            continue;
        }
        let contents = schema_contents(cx.catalog, &old);
        let known = if contents.is_empty() {
            String::new()
        } else {
            format!(" (the history shows {} in it)", contents.join("; "))
        };
        let (old_sql, new_sql) = (sql_ident(&old), sql_ident(&new));
        // A view for each relation the model knows in the schema, as `old_name_kept` expects them.
        let mut relations: Vec<String> = cx
            .catalog
            .relations()
            .filter(|r| r.name.schema.as_deref() == Some(old.as_str()))
            .map(|r| sql_ident(&r.name.name))
            .collect();
        relations.sort();
        if relations.is_empty() {
            relations.push("<table>".to_owned());
        }
        let views: String = relations
            .iter()
            .map(|r| format!(" CREATE VIEW {old_sql}.{r} AS SELECT * FROM {new_sql}.{r};"))
            .collect();
        out.push(cx.diagnostic(
            offset,
            None,
            format!(
                "renaming schema {old} to {new} breaks the application version still running: until \
                 every instance is redeployed, every query that names {old}.… fails (relation does \
                 not exist) and a search_path that lists {old} silently stops finding its objects{known}"
            ),
            format!(
                "keep the old name working during the deploy: in the same transaction as the rename, \
                 recreate the old schema with a view per table (`CREATE SCHEMA {old_sql};{views}`, \
                 simple views are updatable) and drop them \
                 in a later migration once no code uses {old}; or move the application to unqualified \
                 names with a search_path that lists both schemas first"
            ),
        ));
    }
}

/// Whether the rest of the transaction keeps the old name working: it recreates schema `old` with a
/// view for every table and view the model knows in it.
fn old_name_kept(cx: &StatementContext, old: &str) -> bool {
    let later: Vec<&Statement> = later_in_transaction(cx).collect();
    let recreated = later.iter().any(|s| {
        s.class.kind == Kind::CreateSchema && s.class.target.as_ref().is_some_and(|t| t.name == old)
    });
    let views: Vec<String> = later
        .iter()
        .filter(|s| s.class.kind == Kind::CreateView)
        .filter_map(|s| match s.ast() {
            Some(Ast::CreateView(view)) => ObjectName::from_ast(&view.name),
            _ => None,
        })
        .filter(|view| view.schema.as_deref() == Some(old))
        .map(|view| view.name)
        .collect();
    recreated
        && cx
            .catalog
            .relations()
            .filter(|r| r.name.schema.as_deref() == Some(old))
            .all(|r| views.contains(&r.name.name))
}

#[cfg(test)]
mod tests {
    use crate::rules::testing::check_rule;

    const RULE: &str = "rename-schema";
    const BILLING: &str = "CREATE SCHEMA billing;\n\
                           CREATE TABLE billing.invoices (id bigint PRIMARY KEY);\n\
                           CREATE VIEW billing.open_invoices AS SELECT * FROM billing.invoices;";

    #[test]
    fn fires_on_an_existing_schema() {
        assert_eq!(
            check_rule(RULE, &[BILLING], "ALTER SCHEMA billing RENAME TO invoicing;"),
            "\
error[rename-schema]: renaming schema billing to invoicing breaks the application version still running: until every instance is redeployed, every query that names billing.… fails (relation does not exist) and a search_path that lists billing silently stops finding its objects (the history shows table billing.invoices; view billing.open_invoices in it)
 --> migration.sql:1:22
  |
1 | ALTER SCHEMA billing RENAME TO invoicing;
  |                      ^^^^^^^^^^^^^^^^^^^
  |
  = help: keep the old name working during the deploy: in the same transaction as the rename, recreate the old schema with a view per table (`CREATE SCHEMA billing; CREATE VIEW billing.invoices AS SELECT * FROM invoicing.invoices; CREATE VIEW billing.open_invoices AS SELECT * FROM invoicing.open_invoices;`, simple views are updatable) and drop them in a later migration once no code uses billing; or move the application to unqualified names with a search_path that lists both schemas first

"
        );
    }

    #[test]
    fn fires_on_an_unknown_schema_with_quoted_names() {
        let report = check_rule(RULE, &[], "ALTER SCHEMA \"Legacy\" RENAME TO \"Archive\";");
        assert!(
            report.contains(
                "renaming schema Legacy to Archive breaks the application version still running"
            ),
            "{report}"
        );
        assert!(report.contains("its objects\n"), "{report}");
        assert!(
            report.contains(
                "`CREATE SCHEMA \"Legacy\"; CREATE VIEW \"Legacy\".<table> AS SELECT * FROM \
                 \"Archive\".<table>;`"
            ),
            "{report}"
        );
    }

    #[test]
    fn silent_when_the_transaction_keeps_the_old_names_as_views() {
        let transition = "BEGIN;\nALTER SCHEMA billing RENAME TO invoicing;\nCREATE SCHEMA billing;\n\
                          CREATE VIEW billing.invoices AS SELECT * FROM invoicing.invoices;\n\
                          CREATE VIEW billing.open_invoices AS SELECT * FROM invoicing.open_invoices;\nCOMMIT;";
        assert_eq!(check_rule(RULE, &[BILLING], transition), "");
        let incomplete = "BEGIN;\nALTER SCHEMA billing RENAME TO invoicing;\nCREATE SCHEMA billing;\n\
                          CREATE VIEW billing.invoices AS SELECT * FROM invoicing.invoices;\nCOMMIT;";
        assert!(!check_rule(RULE, &[BILLING], incomplete).is_empty());
        let later = "ALTER SCHEMA billing RENAME TO invoicing;\nCREATE SCHEMA billing;\n\
                     CREATE VIEW billing.invoices AS SELECT * FROM invoicing.invoices;\n\
                     CREATE VIEW billing.open_invoices AS SELECT * FROM invoicing.open_invoices;";
        assert!(
            !check_rule(RULE, &[BILLING], later).is_empty(),
            "separate transactions"
        );
    }

    #[test]
    fn silent_on_new_schemas_and_other_changes() {
        for sql in [
            "CREATE SCHEMA staging;\nALTER SCHEMA staging RENAME TO scratch;",
            "ALTER SCHEMA billing OWNER TO finance;",
            "ALTER TABLE billing.invoices RENAME TO bills;",
        ] {
            assert_eq!(check_rule(RULE, &[BILLING], sql), "", "{sql}");
        }
    }
}
