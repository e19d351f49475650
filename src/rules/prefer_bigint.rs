//! An `integer` key holds at most 2 147 483 647 values (`smallint`: 32 767), and sequences burn
//! values on rolled-back inserts, so busy tables run out. Moving a key to `bigint` later rewrites the
//! table and every index on it under ACCESS EXCLUSIVE, and every foreign key column that references it
//! has to move too. A foreign key column narrower than the key it references fails with "integer out
//! of range" as soon as the referenced ids outgrow it.
//!
//! This file also holds what the hygiene rules that judge column types share (prefer-identity,
//! prefer-timestamptz, prefer-text, prefer-jsonb, ban-char-type): the column types a statement
//! declares, where each is written, and how to recognise PostgreSQL's types in sqlparser's tree.

use std::collections::HashMap;

use sqlparser::ast::{
    AlterTableOperation, ColumnOption, ColumnOptionDef, DataType, Expr, Ident, Statement as Ast,
    TableConstraint,
};

use super::columns::{catalog_type, declared_columns, Declaration, DeclaredColumn};
use super::syntax::{ident_offset, sql_ident};
use super::{kinds, Category, Diagnostic, Kinds, Rule, Severity, StatementContext};
use crate::schema::ConstraintKind;
use crate::sql::name::fold_ident;
use crate::sql::ObjectName;

pub const RULE: Rule = Rule {
    id: "prefer-bigint",
    category: Category::Hygiene,
    default_severity: Severity::Info,
    size_graded: false,
    summary: "int/smallint/serial primary or foreign keys",
    doc: include_str!("../../rules/prefer-bigint.md"),
    check,
    kinds: Kinds::Only(&[kinds::CREATE, kinds::ALTER]),
};

/// What a key column is.
#[derive(Debug, Clone)]
enum Key {
    Primary,
    /// A foreign key referencing this table.
    Foreign(ObjectName),
}

fn check(cx: &StatementContext, out: &mut Vec<Diagnostic>) {
    let added = added_keys(cx);
    let declared = declared_columns(cx);
    for column in declared {
        let Some(width) = narrow_integer(column.data_type) else {
            continue;
        };
        let key = inline_key(column.options)
            .or_else(|| added.get(&column.column).map(|(key, _)| key.clone()))
            .or_else(|| {
                (column.declaration == Declaration::AlterType)
                    .then(|| existing_key(cx, &column.table, &column.column))
                    .flatten()
            });
        if let Some(key) = key {
            let subject = format!("{} is {}", column.name(cx), column.type_sql());
            out.push(finding(cx, column, &key, &subject, width));
        }
    }
    // Prisma and Drizzle declare the column in CREATE TABLE and add its key in a later ALTER TABLE:
    // the type is still cheap to change while the column is new in this migration.
    let Some(table) = altered_table(cx) else {
        return;
    };
    for (column, (key, offset)) in &added {
        if declared.iter().any(|c| &c.column == column)
            || !cx.catalog.is_new_column(&table, column)
            || existing_key(cx, &table, column).is_some()
        {
            continue;
        }
        let Some(data_type) = cx
            .catalog
            .column(&table, column)
            .and_then(|c| c.data_type.as_ref())
        else {
            continue;
        };
        let Some(width) = narrow_integer(data_type) else {
            continue;
        };
        let declared = DeclaredColumn {
            table: table.clone(),
            column: column.clone(),
            data_type,
            options: &[],
            declaration: Declaration::AddColumn,
            offset: *offset,
        };
        let subject = format!(
            "{} (declared earlier in this migration) is {}",
            declared.name(cx),
            declared.type_sql()
        );
        out.push(finding(cx, &declared, key, &subject, width));
    }
}

fn finding(
    cx: &StatementContext,
    column: &DeclaredColumn,
    key: &Key,
    subject: &str,
    (bytes, max): (u8, &str),
) -> Diagnostic {
    let table = cx.qualified(&column.table);
    let column_sql = sql_ident(&column.column);
    let range = format!("a {bytes}-byte integer: at most {max}");
    let (message, help) = match key {
        Key::Primary => (
            format!(
                "primary key column {subject} ({range}): when the ids run out every insert fails, and \
                 moving the key to bigint then rewrites {table} and all its indexes under ACCESS \
                 EXCLUSIVE, together with every foreign key column that references it"
            ),
            format!(
                "declare it bigint (`{column_sql} bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY` for a \
                 generated key): 4 more bytes per row now cost far less than rewriting a large table later"
            ),
        ),
        Key::Foreign(parent) => (
            format!(
                "foreign key column {subject} ({range}), referencing {}: inserts fail with \"integer out \
                 of range\" once the referenced keys outgrow it, and widening it then rewrites {table} \
                 and all its indexes under ACCESS EXCLUSIVE",
                cx.qualified(parent)
            ),
            format!(
                "declare it bigint (`{column_sql} bigint`), and the key it references too if that is \
                 not bigint yet"
            ),
        ),
    };
    cx.diagnostic(column.offset, Some(&column.table), message, help)
}

/// Bytes and largest value of a 2- or 4-byte integer type (serials included), not an array.
fn narrow_integer(data_type: &DataType) -> Option<(u8, &'static str)> {
    match catalog_type(data_type).filter(|t| !t.array)?.name.as_str() {
        "int4" => Some((4, "2147483647")),
        "int2" => Some((2, "32767")),
        _ => None,
    }
}

/// The key an inline `PRIMARY KEY` or `REFERENCES` makes of a column.
fn inline_key(options: &[ColumnOptionDef]) -> Option<Key> {
    options.iter().find_map(|option| match &option.option {
        ColumnOption::PrimaryKey(_) => Some(Key::Primary),
        ColumnOption::ForeignKey(fk) => ObjectName::from_ast(&fk.foreign_table).map(Key::Foreign),
        _ => None,
    })
}

/// The keys the statement's table constraints (CREATE TABLE) or `ADD CONSTRAINT`s (ALTER TABLE)
/// put on columns, with where each column is named. A column of a single-column primary key is
/// reported as the table's id; one that is also a foreign key, as that.
fn added_keys(cx: &StatementContext) -> HashMap<String, (Key, usize)> {
    let constraints: Vec<&TableConstraint> = match cx.statement.ast() {
        Some(Ast::CreateTable(create)) => create.constraints.iter().collect(),
        Some(Ast::AlterTable(alter)) => alter
            .operations
            .iter()
            .filter_map(|operation| match operation {
                AlterTableOperation::AddConstraint { constraint, .. } => Some(constraint),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    // (key, where, precedence): a single-column primary key, then a foreign key, then a column of
    // a composite primary key.
    let mut keys: HashMap<String, (Key, usize, u8)> = HashMap::new();
    for constraint in constraints {
        let (key, columns, precedence): (Key, Vec<&Ident>, u8) = match constraint {
            TableConstraint::PrimaryKey(pk) => {
                let columns: Vec<&Ident> = pk
                    .columns
                    .iter()
                    .filter_map(|c| match &c.column.expr {
                        Expr::Identifier(ident) => Some(ident),
                        _ => None,
                    })
                    .collect();
                let precedence = if pk.columns.len() == 1 { 3 } else { 1 };
                (Key::Primary, columns, precedence)
            }
            TableConstraint::ForeignKey(fk) => match ObjectName::from_ast(&fk.foreign_table) {
                Some(parent) => (Key::Foreign(parent), fk.columns.iter().collect(), 2),
                None => continue,
            },
            _ => continue,
        };
        for ident in columns {
            let column = fold_ident(ident);
            if keys.get(&column).is_none_or(|(_, _, p)| *p < precedence) {
                let offset = ident_offset(cx, ident).unwrap_or(cx.statement.range.start);
                keys.insert(column, (key.clone(), offset, precedence));
            }
        }
    }
    keys.into_iter()
        .map(|(column, (key, offset, _))| (column, (key, offset)))
        .collect()
}

/// The key the column already is part of, per the schema model.
fn existing_key(cx: &StatementContext, table: &ObjectName, column: &str) -> Option<Key> {
    let constraints = cx.catalog.constraints_of(table);
    let has = |columns: &[String]| columns.iter().any(|c| c == column);
    constraints
        .iter()
        .find_map(|c| match &c.kind {
            ConstraintKind::PrimaryKey { columns } if has(columns) => Some(Key::Primary),
            _ => None,
        })
        .or_else(|| {
            constraints.iter().find_map(|c| match &c.kind {
                ConstraintKind::ForeignKey {
                    columns,
                    references,
                    ..
                } if has(columns) => Some(Key::Foreign(references.clone())),
                _ => None,
            })
        })
}

fn altered_table(cx: &StatementContext) -> Option<ObjectName> {
    match cx.statement.ast() {
        Some(Ast::AlterTable(alter)) if alter.table_type.is_none() => {
            ObjectName::from_ast(&alter.name)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::testing::check_rule;

    const RULE: &str = "prefer-bigint";

    #[test]
    fn fires_on_an_integer_primary_key() {
        assert_eq!(
            check_rule(
                RULE,
                &[],
                "CREATE TABLE users (id serial PRIMARY KEY, email text);"
            ),
            "\
info[prefer-bigint]: primary key column public.users.id is serial (a 4-byte integer: at most 2147483647): when the ids run out every insert fails, and moving the key to bigint then rewrites public.users and all its indexes under ACCESS EXCLUSIVE, together with every foreign key column that references it
 --> migration.sql:1:24
  |
1 | CREATE TABLE users (id serial PRIMARY KEY, email text);
  |                        ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
  |
  = help: declare it bigint (`id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY` for a generated key): 4 more bytes per row now cost far less than rewriting a large table later

"
        );
    }

    const USERS: &str = "CREATE TABLE users (id bigint PRIMARY KEY, legacy_id integer);";

    #[test]
    fn fires_on_foreign_keys_and_table_constraints() {
        let report = check_rule(
            RULE,
            &[USERS],
            "CREATE TABLE posts (\n  id int,\n  author_id int4 REFERENCES users,\n  editor_id smallint,\n  \
             PRIMARY KEY (id),\n  FOREIGN KEY (editor_id) REFERENCES users (id)\n);",
        );
        assert_eq!(report.matches("info[prefer-bigint]").count(), 3, "{report}");
        assert!(
            report.contains(
                "primary key column public.posts.id is int (a 4-byte integer: at most 2147483647)"
            ),
            "{report}"
        );
        assert!(
            report.contains(
                "foreign key column public.posts.author_id is int4 (a 4-byte integer: at most 2147483647), \
                 referencing public.users: inserts fail with \"integer out of range\""
            ),
            "{report}"
        );
        assert!(
            report.contains("public.posts.editor_id is smallint (a 2-byte integer: at most 32767)"),
            "{report}"
        );
        assert!(report.contains("`editor_id bigint`"), "{report}");
        for position in ["2:6", "3:13", "4:13"] {
            assert!(
                report.contains(&format!("migration.sql:{position}")),
                "{position}\n{report}"
            );
        }
    }

    #[test]
    fn fires_on_a_key_added_later_to_a_column_of_this_migration() {
        // Prisma: the table first, its foreign keys at the end of the migration.
        let report = check_rule(
            RULE,
            &[USERS],
            "CREATE TABLE \"Post\" (\"id\" BIGSERIAL NOT NULL, \"authorId\" INTEGER NOT NULL, \
             CONSTRAINT \"Post_pkey\" PRIMARY KEY (\"id\"));\n\
             ALTER TABLE \"Post\" ADD CONSTRAINT \"Post_authorId_fkey\" FOREIGN KEY (\"authorId\") REFERENCES users(\"id\");",
        );
        assert_eq!(report.matches("info[prefer-bigint]").count(), 1, "{report}");
        assert!(
            report.contains("foreign key column public.Post.authorId (declared earlier in this migration) is integer"),
            "{report}"
        );
        assert!(report.contains("migration.sql:2:69"), "{report}");
    }

    #[test]
    fn a_foreign_key_in_a_composite_primary_key_is_reported_as_a_foreign_key() {
        let report = check_rule(
            RULE,
            &[USERS],
            "CREATE TABLE members (user_id int, group_id bigint, PRIMARY KEY (user_id, group_id), \
             FOREIGN KEY (user_id) REFERENCES users);",
        );
        assert_eq!(report.matches("info[prefer-bigint]").count(), 1, "{report}");
        assert!(
            report.contains("foreign key column public.members.user_id is int"),
            "{report}"
        );
    }

    #[test]
    fn fires_on_a_key_column_changed_to_integer() {
        let report = check_rule(
            RULE,
            &[USERS],
            "ALTER TABLE users ALTER COLUMN id TYPE integer;",
        );
        assert!(
            report.contains("primary key column public.users.id is integer"),
            "{report}"
        );
        assert!(report.contains("migration.sql:1:40"), "{report}");
    }

    #[test]
    fn silent_on_bigint_keys_plain_integers_and_keys_on_older_columns() {
        for sql in [
            "CREATE TABLE t (id bigint PRIMARY KEY, n integer, m smallint NOT NULL);",
            "CREATE TABLE t (id bigserial PRIMARY KEY, user_id int8 REFERENCES users);",
            "CREATE TABLE t (id uuid PRIMARY KEY, codes int[]);",
            // The type was chosen in an earlier migration: changing it now is a rewrite.
            "ALTER TABLE users ADD CONSTRAINT users_legacy_fk FOREIGN KEY (legacy_id) REFERENCES users (id);",
            "ALTER TABLE users ALTER COLUMN legacy_id TYPE integer;",
        ] {
            assert_eq!(check_rule(RULE, &[USERS], sql), "", "{sql}");
        }
    }
}
