//! `ALTER TABLE … RENAME TO` (and `ALTER TABLE … SET SCHEMA`, which renames it too) on a table that
//! existed before the migration breaks the application version still running: until every instance
//! is redeployed, its queries name the old table.
//!
//! The one safe shape is recognised: a view under the old name created later in the same
//! transaction, so the old name never stops working.

use sqlparser::ast::{AlterTableOperation, RenameTableNameKind, Statement as Ast};

use super::syntax::{clause_of, clauses_from_tokens};
use super::{kinds, Category, Diagnostic, Kinds, Rule, Severity, StatementContext};
use crate::sql::{Kind, ObjectName, Statement, TokenKind};

pub const RULE: Rule = Rule {
    id: "rename-table",
    category: Category::Compatibility,
    default_severity: Severity::Error,
    size_graded: false,
    summary: "RENAME TABLE breaks the application version still running",
    doc: include_str!("../../rules/rename-table.md"),
    check,
    kinds: Kinds::Only(&[kinds::ALTER]),
};

/// What happens to the table's name.
enum Move {
    /// `RENAME TO new`: same schema, new name.
    Rename(String),
    /// `SET SCHEMA new`: same name, new schema.
    SetSchema(String),
    /// `RENAME TABLE old TO new` (not PostgreSQL syntax, but sqlparser reads it).
    To(ObjectName),
}

fn check(cx: &StatementContext, out: &mut Vec<Diagnostic>) {
    let statement = cx.statement;
    // (table, move, offset of its clause)
    let moves: Vec<(ObjectName, Move, usize)> = match statement.ast() {
        Some(Ast::AlterTable(alter)) => {
            let Some(table) = ObjectName::from_ast(&alter.name) else {
                return;
            };
            alter
                .operations
                .iter()
                .filter_map(|operation| match operation {
                    AlterTableOperation::RenameTable {
                        table_name: RenameTableNameKind::To(new) | RenameTableNameKind::As(new),
                    } => {
                        let offset = new
                            .0
                            .last()
                            .and_then(|part| part.as_ident())
                            .map_or(statement.range.start, |ident| {
                                clause_of(cx, ident, "rename")
                            });
                        let new = ObjectName::from_ast(new)?;
                        Some((table.clone(), Move::Rename(new.name), offset))
                    }
                    _ => None,
                })
                .collect()
        }
        Some(Ast::RenameTable(renames)) => renames
            .iter()
            .filter_map(|rename| {
                let offset = rename
                    .old_name
                    .0
                    .first()
                    .and_then(|part| part.as_ident())
                    .map_or(statement.range.start, |ident| {
                        clause_of(cx, ident, "rename")
                    });
                Some((
                    ObjectName::from_ast(&rename.old_name)?,
                    Move::To(ObjectName::from_ast(&rename.new_name)?),
                    offset,
                ))
            })
            .collect(),
        None if statement.class.kind == Kind::AlterTable => {
            let Some(table) = statement.class.target.clone() else {
                return;
            };
            let renames = clauses_from_tokens(cx, &["rename", "to"])
                .into_iter()
                .map(|(offset, new)| (table.clone(), Move::Rename(new.name), offset));
            let schema_moves = clauses_from_tokens(cx, &["set", "schema"])
                .into_iter()
                .filter(|(_, schema)| schema.schema.is_none())
                .map(|(offset, schema)| (table.clone(), Move::SetSchema(schema.name), offset));
            renames.chain(schema_moves).collect()
        }
        _ => return,
    };
    for (table, to, offset) in moves {
        let old = cx.catalog.resolve(&table);
        let new = match &to {
            Move::Rename(name) => ObjectName::new(old.schema.as_deref(), name),
            Move::SetSchema(schema) => ObjectName::new(Some(schema), &old.name),
            Move::To(new) => cx.catalog.resolve(new),
        };
        let what = match to {
            Move::SetSchema(_) => format!("moving table {old} to {new}"),
            Move::Rename(_) | Move::To(_) => format!("renaming table {old} to {new}"),
        };
        let mut message = format!(
            "{what} breaks the application version still running: until every instance is redeployed, \
             its queries name {old}, which stops existing the moment this commits (relation \"{}\" \
             does not exist)",
            old.name
        );
        let transition = format!(
            "BEGIN; ALTER TABLE {old} {}; CREATE VIEW {old} AS SELECT * FROM {new}; COMMIT",
            match &to {
                Move::SetSchema(schema) => format!("SET SCHEMA {schema}"),
                Move::Rename(name) => format!("RENAME TO {name}"),
                Move::To(new) => format!("RENAME TO {}", new.name),
            }
        );
        let help = match old_name_view(cx, &old) {
            Some(ViewAfter::SameTransaction) => continue,
            Some(ViewAfter::LaterTransaction) => {
                message.push_str(
                    "; the view that takes over the old name later in this migration runs in another \
                     transaction, so queries fail in between",
                );
                format!(
                    "run the rename and the view in one transaction so the old name never disappears: \
                     {transition}"
                )
            }
            None => format!(
                "keep the old name working during the deploy: rename it and, in the same transaction, \
                 create a view under the old name ({transition}; a simple view is updatable), and drop \
                 the view in a later migration once no code uses {old}; or expand/contract with a new \
                 table"
            ),
        };
        out.push(cx.diagnostic(offset, Some(&table), message, help));
    }
}

enum ViewAfter {
    /// Created before this statement's transaction commits: the old name never disappears.
    SameTransaction,
    /// Created later, after a commit: queries fail in between.
    LaterTransaction,
}

/// Whether a later statement of the migration creates a view named `old`, and when.
fn old_name_view(cx: &StatementContext, old: &ObjectName) -> Option<ViewAfter> {
    let later = cx.statements.get(cx.index + 1..)?;
    let at = later
        .iter()
        .position(|s| created_view(cx, s).is_some_and(|view| cx.catalog.resolve(&view) == *old))?;
    let same = cx.tx.in_transaction
        && later[..=at].iter().all(|s| {
            s.section == cx.statement.section
                && !matches!(s.class.kind, Kind::Commit | Kind::Rollback)
        });
    Some(if same {
        ViewAfter::SameTransaction
    } else {
        ViewAfter::LaterTransaction
    })
}

/// The view a `CREATE [OR REPLACE] VIEW` statement creates.
fn created_view(cx: &StatementContext, statement: &Statement) -> Option<ObjectName> {
    // Only a view's tree is worth building (and keeping) for this.
    if statement.class.kind != Kind::CreateView {
        return None;
    }
    match statement.ast() {
        Some(Ast::CreateView(view)) if !view.materialized => ObjectName::from_ast(&view.name),
        None if statement.class.kind == Kind::CreateView => {
            let view = statement.tokens.iter().position(|t| {
                t.kind == TokenKind::Word && cx.text[t.range()].eq_ignore_ascii_case("view")
            })?;
            ObjectName::from_tokens(cx.text, &statement.tokens[view + 1..])
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use crate::migration::Transaction;
    use crate::rules::testing::{check_rule, render_rule, review_in};

    const USERS: &str = "CREATE TABLE users (id bigint PRIMARY KEY, email text);";

    #[test]
    fn fires_on_an_existing_table() {
        assert_eq!(
            check_rule("rename-table", &[USERS], "ALTER TABLE users RENAME TO accounts;"),
            "\
error[rename-table]: renaming table public.users to public.accounts breaks the application version still running: until every instance is redeployed, its queries name public.users, which stops existing the moment this commits (relation \"users\" does not exist)
 --> migration.sql:1:19
  |
1 | ALTER TABLE users RENAME TO accounts;
  |                   ^^^^^^^^^^^^^^^^^^
  |
  = help: keep the old name working during the deploy: rename it and, in the same transaction, create a view under the old name (BEGIN; ALTER TABLE public.users RENAME TO accounts; CREATE VIEW public.users AS SELECT * FROM public.accounts; COMMIT; a simple view is updatable), and drop the view in a later migration once no code uses public.users; or expand/contract with a new table

"
        );
    }

    #[test]
    fn fires_on_set_schema_and_on_unknown_tables() {
        let report = check_rule(
            "rename-table",
            &[],
            "ALTER TABLE \"Order\" SET SCHEMA archive;",
        );
        assert!(
            report.contains("moving table public.Order to archive.Order breaks"),
            "{report}"
        );
        assert!(report.contains("--> migration.sql:1:21"), "{report}");
    }

    #[test]
    fn a_view_under_the_old_name_in_another_transaction_still_leaves_a_gap() {
        let report = check_rule(
            "rename-table",
            &[USERS],
            "ALTER TABLE users RENAME TO accounts;\nCREATE VIEW users AS SELECT * FROM accounts;",
        );
        assert!(report.contains("runs in another transaction"), "{report}");
        assert!(
            report.contains("run the rename and the view in one transaction"),
            "{report}"
        );
    }

    #[test]
    fn a_view_in_the_transaction_the_tool_wraps_the_file_in_keeps_the_old_name() {
        let review = review_in(
            &[USERS],
            "ALTER TABLE users RENAME TO accounts;\nCREATE VIEW users AS SELECT * FROM accounts;",
            Transaction::Wrapped,
        );
        assert_eq!(render_rule("rename-table", &review), "");
    }

    #[test]
    fn silent_on_a_table_created_in_the_same_migration() {
        let sql = "CREATE TABLE t (id bigint);\nALTER TABLE t RENAME TO t2;";
        assert_eq!(check_rule("rename-table", &[USERS], sql), "");
    }

    #[test]
    fn silent_with_a_view_in_the_same_transaction_and_on_other_renames() {
        for sql in [
            "BEGIN;\nALTER TABLE users RENAME TO accounts;\nCREATE VIEW users AS SELECT * FROM accounts;\nCOMMIT;",
            "ALTER TABLE users RENAME COLUMN email TO mail;",
            "ALTER TABLE users RENAME CONSTRAINT users_pkey TO users_id_pkey;",
            "ALTER INDEX users_pkey RENAME TO users_id_pkey;",
        ] {
            assert_eq!(check_rule("rename-table", &[USERS], sql), "", "{sql}");
        }
    }
}
