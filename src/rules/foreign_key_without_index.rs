//! PostgreSQL indexes the referenced side of a foreign key (it must be a primary key or unique) but
//! not the referencing side. Without an index that leads with the referencing columns, every DELETE
//! of a referenced row and every UPDATE of its key makes the foreign key's trigger scan the whole
//! referencing table (once per row changed), and joins along the key scan it too. The index may
//! come later in the same migration, so the rule looks at the schema as the migration leaves it.

use sqlparser::ast::{
    AlterTableOperation, ColumnDef, ColumnOption, ColumnOptionDef, Expr, ForeignKeyConstraint,
    ObjectName as AstName, Statement as Ast, TableConstraint,
};

use super::syntax::{clause_of, ident_offset, sql_ident, sql_name, AlterTable};
use super::{kinds, Category, Diagnostic, Kinds, Rule, Severity, StatementContext};
use crate::schema::naming::{self, truncate_identifier, MAX_IDENTIFIER_BYTES};
use crate::schema::ConstraintKind;
use crate::sql::{Kind, ObjectName, Statement, TokenKind};

pub const RULE: Rule = Rule {
    id: "foreign-key-without-index",
    category: Category::Hygiene,
    default_severity: Severity::Warning,
    size_graded: false,
    summary: "a foreign key whose referencing columns lead no index",
    doc: include_str!("../../rules/foreign-key-without-index.md"),
    check,
    kinds: Kinds::Only(&[kinds::CREATE, kinds::ALTER]),
};

/// A foreign key the statement adds.
struct ForeignKey {
    /// The referencing columns, folded and truncated as the model stores them.
    columns: Vec<String>,
    references: ObjectName,
    /// Where the constraint is written.
    offset: usize,
}

/// The referencing table as the migration leaves it, as far as this rule cares.
struct TableAtEnd {
    /// The key columns of its indexes without a WHERE clause.
    indexes: Vec<Vec<String>>,
    /// The columns of its foreign keys, when later statements may have dropped some (else `None`:
    /// the keys this statement adds are all still there).
    foreign_keys: Option<Vec<Vec<String>>>,
}

impl TableAtEnd {
    /// Whether the foreign key on `columns` still exists and no index leads with its columns (in
    /// any order: the key's lookups compare all of them for equality).
    fn lacks_index(&self, columns: &[String]) -> bool {
        let exists = self
            .foreign_keys
            .as_ref()
            .is_none_or(|keys| keys.iter().any(|key| key == columns));
        exists
            && !self.indexes.iter().any(|index| {
                index.len() >= columns.len()
                    && columns
                        .iter()
                        .all(|column| index[..columns.len()].contains(column))
            })
    }
}

fn check(cx: &StatementContext, out: &mut Vec<Diagnostic>) {
    let Some((table, keys)) = added_foreign_keys(cx) else {
        return;
    };
    if keys.is_empty() {
        return;
    }
    let end = table_at_end(cx, &table);
    let new_table = matches!(cx.statement.ast(), Some(Ast::CreateTable(_)))
        || cx.catalog.is_new_relation(&table);
    // A table the model only knows from ALTER TABLE statements: its indexes are unknown.
    let unknown = !new_table
        && cx
            .catalog
            .relation(&table)
            .is_none_or(|relation| relation.columns.is_empty());
    for key in keys {
        if !end.lacks_index(&key.columns) {
            continue;
        }
        let name = cx.qualified(&table);
        let columns = key.columns.join(", ");
        let parent = cx.qualified(&key.references);
        let consequence = format!(
            "every DELETE from {parent} and every UPDATE of its key scans {name} for referencing rows \
             (once per row changed), and joins on ({columns}) scan it too"
        );
        let message = if unknown {
            format!(
                "{name} is unknown to migagent (reviewed without the migration that created it), so it \
                 cannot tell whether an index leads with the foreign key columns ({columns}) \
                 referencing {parent}; without one, {consequence}"
            )
        } else {
            format!(
                "no index on {name} leads with the foreign key columns ({columns}) referencing \
                 {parent}, and this migration creates none: {consequence}"
            )
        };
        out.push(cx.diagnostic(
            key.offset,
            Some(&table),
            message,
            help(cx, &table, &key.columns, new_table),
        ));
    }
}

fn help(cx: &StatementContext, table: &ObjectName, columns: &[String], new_table: bool) -> String {
    let table_sql = sql_name(&cx.catalog.resolve(table));
    let columns_sql: Vec<String> = columns.iter().map(|c| sql_ident(c)).collect();
    let index = format!("{}_{}_idx", table.name, columns.join("_"));
    let index_sql = if index.len() <= MAX_IDENTIFIER_BYTES {
        format!("{} ", sql_ident(&index))
    } else {
        String::new()
    };
    let on = format!("{index_sql}ON {table_sql} ({})", columns_sql.join(", "));
    if new_table {
        format!(
            "add `CREATE INDEX {on};` to this migration: the table is new, so a plain CREATE INDEX \
             blocks nobody"
        )
    } else {
        format!(
            "index the columns without blocking writes: `CREATE INDEX CONCURRENTLY {on};`, outside a \
             transaction block (in a migration of its own if the tool wraps each file in a transaction){}",
            cx.settings.concurrent_build_caveat().unwrap_or_default()
        )
    }
}

/// The table the statement adds foreign keys to, and those keys: the inline `REFERENCES` and
/// `FOREIGN KEY` constraints of a `CREATE TABLE`, `ADD CONSTRAINT … FOREIGN KEY` and
/// `ADD COLUMN … REFERENCES`. `NOT ENFORCED` keys (PostgreSQL 18) have no triggers and are skipped.
fn added_foreign_keys(cx: &StatementContext) -> Option<(ObjectName, Vec<ForeignKey>)> {
    let mut keys = Vec::new();
    let table = match cx.statement.ast() {
        Some(Ast::CreateTable(create)) => {
            for column in &create.columns {
                keys.extend(inline_keys(cx, column));
            }
            for constraint in &create.constraints {
                if let TableConstraint::ForeignKey(fk) = constraint {
                    keys.extend(table_key(fk, constraint_offset(cx, fk)));
                }
            }
            ObjectName::from_ast(&create.name)?
        }
        Some(Ast::AlterTable(alter)) if alter.table_type.is_none() => {
            let alter = AlterTable::of(cx)?;
            for (i, operation) in alter.operations.iter().enumerate() {
                match operation {
                    AlterTableOperation::AddConstraint {
                        constraint: TableConstraint::ForeignKey(fk),
                        ..
                    } => keys.extend(table_key(fk, alter.offset(cx, i))),
                    AlterTableOperation::AddColumn { column_def, .. } => {
                        keys.extend(inline_keys(cx, column_def));
                    }
                    _ => {}
                }
            }
            alter.table.clone()
        }
        _ => return None,
    };
    Some((table, keys))
}

/// The foreign keys of a column definition's inline `REFERENCES`.
fn inline_keys(cx: &StatementContext, column: &ColumnDef) -> Vec<ForeignKey> {
    column
        .options
        .iter()
        .filter_map(|option| match &option.option {
            ColumnOption::ForeignKey(fk) if enforced(fk) => Some(ForeignKey {
                columns: vec![naming::ident(&column.name)],
                references: ObjectName::from_ast(&fk.foreign_table)?,
                offset: inline_offset(cx, column, option),
            }),
            _ => None,
        })
        .collect()
}

fn table_key(fk: &ForeignKeyConstraint, offset: usize) -> Option<ForeignKey> {
    if !enforced(fk) || fk.columns.is_empty() {
        return None;
    }
    Some(ForeignKey {
        columns: fk.columns.iter().map(naming::ident).collect(),
        references: ObjectName::from_ast(&fk.foreign_table)?,
        offset,
    })
}

/// PostgreSQL 18's `NOT ENFORCED` foreign keys have no triggers: nothing scans.
fn enforced(fk: &ForeignKeyConstraint) -> bool {
    fk.characteristics
        .as_ref()
        .is_none_or(|c| c.enforced != Some(false))
}

/// Where an inline `[CONSTRAINT name] REFERENCES …` is written.
fn inline_offset(cx: &StatementContext, column: &ColumnDef, option: &ColumnOptionDef) -> usize {
    if let Some(name) = &option.name {
        return clause_of(cx, name, "constraint");
    }
    let Some(at) = ident_offset(cx, &column.name) else {
        return cx.statement.range.start;
    };
    cx.statement
        .tokens
        .iter()
        .find(|token| {
            token.range().start > at
                && token.kind == TokenKind::Word
                && cx.text[token.range()].eq_ignore_ascii_case("references")
        })
        .map_or(at, |token| token.range().start)
}

/// Where a table constraint `[CONSTRAINT name] FOREIGN KEY (…)` is written.
fn constraint_offset(cx: &StatementContext, fk: &ForeignKeyConstraint) -> usize {
    match (&fk.name, fk.columns.first()) {
        (Some(name), _) => clause_of(cx, name, "constraint"),
        (None, Some(column)) => clause_of(cx, column, "foreign"),
        (None, None) => cx.statement.range.start,
    }
}

/// The referencing table as the migration leaves it: this statement and every later statement
/// that names the table applied. When those are only `CREATE INDEX`es and statements about other
/// tables (the common case), they are read directly; anything else (ALTER TABLE, DROP, RENAME, …)
/// is replayed on a copy of the schema model.
fn table_at_end(cx: &StatementContext, table: &ObjectName) -> TableAtEnd {
    let needle = Needle::new(table);
    let later: Vec<&Statement> = cx
        .later_statements_naming(&needle.name)
        .filter(|statement| needle.in_statement(cx.text, statement))
        .collect();
    let target = cx.catalog.resolve(table);
    let is_target = |name: &AstName| {
        ObjectName::from_ast(name).is_some_and(|name| cx.catalog.resolve(&name) == target)
    };
    let mut indexes: Vec<Vec<String>> = Vec::new();
    let direct = later.iter().all(|statement| match statement.ast() {
        Some(Ast::CreateIndex(index)) => {
            if is_target(&index.table_name) && index.predicate.is_none() {
                indexes.push(
                    index
                        .columns
                        .iter()
                        .map(|c| key_name(&c.column.expr))
                        .collect(),
                );
            }
            true
        }
        Some(Ast::CreateTable(create)) => !is_target(&create.name),
        Some(Ast::AlterTable(alter)) if !is_target(&alter.name) => true,
        // Most later changes to the table only add to it (Prisma adds each foreign key in an
        // ALTER TABLE of its own, Supabase enables row-level security): read their indexes directly
        // and replay only what can remove an index or a key, or rename the table.
        Some(Ast::AlterTable(alter)) => alter.operations.iter().all(|operation| match operation {
            AlterTableOperation::AddColumn { column_def, .. } => {
                indexes.extend(inline_index(column_def));
                true
            }
            AlterTableOperation::AddConstraint { constraint, .. } => {
                indexes.extend(constraint_index(constraint));
                true
            }
            other => !removes_or_renames(other),
        }),
        // Drops and renames need the replay; so do statements only the model's fallback reads.
        Some(
            Ast::Drop { .. } | Ast::RenameTable(_) | Ast::AlterIndex { .. } | Ast::AlterSchema(_),
        ) => false,
        None => !matches!(
            statement.class.kind,
            Kind::AlterTable
                | Kind::AlterIndex
                | Kind::DropTable
                | Kind::DropIndex
                | Kind::DropSchema
                | Kind::AlterSchema
        ),
        // Grants, policies, triggers, comments, views and data changes leave indexes and keys alone.
        Some(_) => true,
    });
    if direct {
        indexes.extend(
            cx.catalog
                .indexes_on(table)
                .filter(|index| index.predicate.is_none())
                .map(|index| index.columns.clone()),
        );
        indexes.extend(own_indexes(cx));
        return TableAtEnd {
            indexes,
            foreign_keys: None,
        };
    }
    let catalog = cx.catalog_after_migration();
    TableAtEnd {
        indexes: catalog
            .indexes_on(table)
            .filter(|index| index.predicate.is_none())
            .map(|index| index.columns.clone())
            .collect(),
        foreign_keys: Some(
            catalog
                .constraints_of(table)
                .iter()
                .filter_map(|constraint| match &constraint.kind {
                    ConstraintKind::ForeignKey { columns, .. } => Some(columns.clone()),
                    _ => None,
                })
                .collect(),
        ),
    }
}

/// The columns of the indexes the statement itself builds: its primary key and unique constraints.
fn own_indexes(cx: &StatementContext) -> Vec<Vec<String>> {
    let mut indexes = Vec::new();
    match cx.statement.ast() {
        Some(Ast::CreateTable(create)) => {
            indexes.extend(create.columns.iter().filter_map(inline_index));
            indexes.extend(create.constraints.iter().filter_map(constraint_index));
        }
        Some(Ast::AlterTable(alter)) => {
            for operation in &alter.operations {
                match operation {
                    AlterTableOperation::AddColumn { column_def, .. } => {
                        indexes.extend(inline_index(column_def));
                    }
                    AlterTableOperation::AddConstraint { constraint, .. } => {
                        indexes.extend(constraint_index(constraint));
                    }
                    _ => {}
                }
            }
        }
        _ => {}
    }
    indexes
}

/// Whether an `ALTER TABLE` operation can drop an index or a foreign key, or move the table.
fn removes_or_renames(operation: &AlterTableOperation) -> bool {
    matches!(
        operation,
        AlterTableOperation::DropColumn { .. }
            | AlterTableOperation::DropConstraint { .. }
            | AlterTableOperation::DropPrimaryKey { .. }
            | AlterTableOperation::DropForeignKey { .. }
            | AlterTableOperation::DropIndex { .. }
            | AlterTableOperation::RenameColumn { .. }
            | AlterTableOperation::RenameTable { .. }
            | AlterTableOperation::RenameConstraint { .. }
            | AlterTableOperation::AlterColumn { .. }
            | AlterTableOperation::DetachPartitionOf { .. }
    )
}

/// The index of an inline `PRIMARY KEY` or `UNIQUE`.
fn inline_index(column: &ColumnDef) -> Option<Vec<String>> {
    let indexed = column.options.iter().any(|option| {
        matches!(
            option.option,
            ColumnOption::PrimaryKey(_) | ColumnOption::Unique(_)
        )
    });
    indexed.then(|| vec![naming::ident(&column.name)])
}

/// The index of a `PRIMARY KEY (…)` or `UNIQUE (…)` table constraint.
fn constraint_index(constraint: &TableConstraint) -> Option<Vec<String>> {
    let columns = match constraint {
        TableConstraint::PrimaryKey(pk) => &pk.columns,
        TableConstraint::Unique(unique) => &unique.columns,
        _ => return None,
    };
    Some(columns.iter().map(|c| key_name(&c.column.expr)).collect())
}

/// An index key as the model names it: the column, or the expression's text (which no foreign key
/// column matches).
fn key_name(expr: &Expr) -> String {
    match expr {
        Expr::Identifier(ident) => naming::ident(ident),
        Expr::Nested(inner) => key_name(inner),
        other => other.to_string(),
    }
}

/// A table name as the tokens of a statement may write it.
struct Needle {
    /// Folded and truncated, as the model stores it.
    name: String,
    /// As a quoted identifier: `"User"`.
    quoted: String,
    /// Only a quoted identifier can write it (it has upper-case letters).
    quoted_only: bool,
}

impl Needle {
    fn new(table: &ObjectName) -> Needle {
        let name = truncate_identifier(&table.name);
        Needle {
            quoted: format!("\"{}\"", name.replace('"', "\"\"")),
            quoted_only: name.bytes().any(|b| b.is_ascii_uppercase()),
            name,
        }
    }

    /// Whether the statement (or a statement of its DO block) may change the table's indexes or
    /// keys: it names the table anywhere, or it drops or alters an index (which it names by the
    /// index's own name). It runs over every later statement for every foreign key, so the common
    /// cases do not allocate.
    fn in_statement(&self, text: &str, statement: &Statement) -> bool {
        matches!(statement.class.kind, Kind::DropIndex | Kind::AlterIndex)
            || statement.tokens.iter().any(|token| {
                let raw = &text[token.range()];
                match token.kind {
                    _ if raw.len() > MAX_IDENTIFIER_BYTES + 2 => {
                        ObjectName::from_tokens(text, std::slice::from_ref(token))
                            .is_some_and(|n| truncate_identifier(&n.name) == self.name)
                    }
                    TokenKind::Word => !self.quoted_only && raw.eq_ignore_ascii_case(&self.name),
                    TokenKind::QuotedIdent => raw == self.quoted,
                    _ => false,
                }
            })
            || statement
                .nested
                .iter()
                .any(|nested| self.in_statement(text, nested))
    }
}

#[cfg(test)]
mod tests {
    use crate::migration::Transaction;
    use crate::rules::testing::{check_rule, render_rule, review_in};

    const RULE: &str = "foreign-key-without-index";
    const USERS: &str = "CREATE TABLE users (id bigint PRIMARY KEY);";
    const POSTS: &str =
        "CREATE TABLE posts (id bigint PRIMARY KEY, author_id bigint, editor_id bigint);";

    #[test]
    fn fires_on_a_foreign_key_of_an_existing_table() {
        assert_eq!(
            check_rule(
                RULE,
                &[USERS, POSTS],
                "ALTER TABLE posts ADD CONSTRAINT posts_author_fk FOREIGN KEY (author_id) REFERENCES users (id) NOT VALID;"
            ),
            "\
warning[foreign-key-without-index]: no index on public.posts leads with the foreign key columns (author_id) referencing public.users, and this migration creates none: every DELETE from public.users and every UPDATE of its key scans public.posts for referencing rows (once per row changed), and joins on (author_id) scan it too
 --> migration.sql:1:19
  |
1 | ALTER TABLE posts ADD CONSTRAINT posts_author_fk FOREIGN KEY (author_id) REFERENCES users (id) NOT VALID;
  |                   ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
  |
  = help: index the columns without blocking writes: `CREATE INDEX CONCURRENTLY posts_author_id_idx ON public.posts (author_id);`, outside a transaction block (in a migration of its own if the tool wraps each file in a transaction)

"
        );
    }

    #[test]
    fn fires_on_each_key_of_a_new_table_at_its_clause() {
        let report = check_rule(
            RULE,
            &[USERS],
            "CREATE TABLE comments (\n  id bigint PRIMARY KEY,\n  user_id bigint NOT NULL REFERENCES users,\n  \
             post_id bigint,\n  CONSTRAINT comments_post_fk FOREIGN KEY (post_id) REFERENCES users (id),\n  \
             FOREIGN KEY (id) REFERENCES users (id)\n);",
        );
        assert_eq!(
            report.matches("warning[foreign-key-without-index]").count(),
            2,
            "{report}"
        );
        assert!(report.contains("migration.sql:3:27"), "{report}");
        assert!(report.contains("migration.sql:5:3"), "{report}");
        assert!(
            report.contains("add `CREATE INDEX comments_user_id_idx ON public.comments (user_id);` to this migration"),
            "{report}"
        );
    }

    #[test]
    fn an_index_later_in_the_migration_or_a_leading_key_counts() {
        for sql in [
            // Prisma: tables, then indexes, then foreign keys.
            "CREATE TABLE \"Post\" (\"id\" BIGINT NOT NULL, \"authorId\" BIGINT NOT NULL, CONSTRAINT \"Post_pkey\" PRIMARY KEY (\"id\"));\n\
             CREATE INDEX \"Post_authorId_idx\" ON \"Post\"(\"authorId\");\n\
             ALTER TABLE \"Post\" ADD CONSTRAINT \"Post_authorId_fkey\" FOREIGN KEY (\"authorId\") REFERENCES users(\"id\");",
            // The index comes after the key.
            "ALTER TABLE posts ADD FOREIGN KEY (author_id) REFERENCES users;\n\
             CREATE INDEX CONCURRENTLY posts_author_idx ON posts (author_id, id);",
            // A composite primary key that leads with the keys' columns, in any order.
            "CREATE TABLE memberships (user_id bigint REFERENCES users, group_id bigint, \
             PRIMARY KEY (user_id, group_id), FOREIGN KEY (group_id, user_id) REFERENCES memberships);",
            // The key is dropped again.
            "ALTER TABLE posts ADD CONSTRAINT f FOREIGN KEY (author_id) REFERENCES users;\n\
             ALTER TABLE posts DROP CONSTRAINT f;",
            "CREATE TABLE t (id bigint REFERENCES users UNIQUE);",
        ] {
            assert_eq!(check_rule(RULE, &[USERS, POSTS], sql), "", "{sql}");
        }
    }

    #[test]
    fn later_alter_and_drop_statements_are_replayed() {
        let covered = "ALTER TABLE posts ADD COLUMN blog_id bigint REFERENCES users;\n\
                       ALTER TABLE posts ADD CONSTRAINT posts_blog_key UNIQUE (blog_id, id);";
        assert_eq!(check_rule(RULE, &[USERS, POSTS], covered), "");
        let dropped = "CREATE INDEX posts_author_idx ON posts (author_id);\n\
                       ALTER TABLE posts ADD FOREIGN KEY (author_id) REFERENCES users;\n\
                       DROP INDEX posts_author_idx;";
        let report = check_rule(RULE, &[USERS, POSTS], dropped);
        assert!(report.contains("migration.sql:2:19"), "{report}");
        let other_schema = "ALTER TABLE posts ADD FOREIGN KEY (author_id) REFERENCES users;\n\
                            CREATE INDEX ON archive.posts (author_id);";
        assert!(check_rule(RULE, &[USERS, POSTS], other_schema).contains("migration.sql:1:19"));
    }

    #[test]
    fn a_long_file_reads_the_later_statements_from_its_index_of_names_alike() {
        // Past the size up to which every later statement is read, the file's index of names
        // picks them: the same findings.
        let padding = "COMMENT ON TABLE users IS 'people';\n".repeat(70);
        let cases = [
            (
                "CREATE INDEX posts_author_idx ON posts (author_id);\n\
              ALTER TABLE posts ADD FOREIGN KEY (author_id) REFERENCES users;\n\
              DROP INDEX posts_author_idx;",
                true,
            ),
            (
                "ALTER TABLE posts ADD FOREIGN KEY (author_id) REFERENCES users;\n\
              CREATE INDEX CONCURRENTLY posts_author_idx ON \"posts\" (author_id, id);",
                false,
            ),
            (
                "ALTER TABLE posts ADD FOREIGN KEY (author_id) REFERENCES users;\n\
              CREATE INDEX ON archive.posts (author_id);",
                true,
            ),
        ];
        for (sql, fires) in cases {
            let long = format!("{sql}\n{padding}");
            let report = check_rule(RULE, &[USERS, POSTS], &long);
            assert_eq!(
                report.contains("foreign-key-without-index"),
                fires,
                "{long}"
            );
            assert_eq!(
                report.is_empty(),
                check_rule(RULE, &[USERS, POSTS], sql).is_empty()
            );
        }
    }

    #[test]
    fn partial_and_non_leading_indexes_do_not_count() {
        let history = [
            USERS,
            POSTS,
            "CREATE INDEX posts_id_author_idx ON posts (id, author_id);",
            "CREATE INDEX posts_author_live_idx ON posts (author_id) WHERE id > 0;",
        ];
        let report = check_rule(
            RULE,
            &history,
            "ALTER TABLE posts ADD COLUMN reviewer_id bigint REFERENCES users, \
             ADD FOREIGN KEY (author_id) REFERENCES users;",
        );
        assert_eq!(
            report.matches("warning[foreign-key-without-index]").count(),
            2,
            "{report}"
        );
        assert!(report.contains("migration.sql:1:49"), "{report}");
        assert!(report.contains("migration.sql:1:67"), "{report}");
    }

    #[test]
    fn reads_drizzle_do_blocks_and_says_when_the_table_is_unknown() {
        let sql = "DO $$ BEGIN\n ALTER TABLE \"orders\" ADD CONSTRAINT \"orders_user_id_users_id_fk\" \
                   FOREIGN KEY (\"user_id\") REFERENCES \"public\".\"users\"(\"id\") ON DELETE cascade;\n\
                   EXCEPTION WHEN duplicate_object THEN null;\nEND $$;";
        let report = render_rule(RULE, &review_in(&[USERS], sql, Transaction::Wrapped));
        assert!(report.contains("migration.sql:2:23"), "{report}");
        assert!(
            report.contains("public.orders is unknown to migagent (reviewed without the migration that created it)"),
            "{report}"
        );
        let indexed = format!("{sql}\nCREATE INDEX orders_user_idx ON orders (user_id);");
        assert_eq!(
            render_rule(RULE, &review_in(&[USERS], &indexed, Transaction::Wrapped)),
            ""
        );
    }

    #[test]
    fn silent_on_not_enforced_keys_and_other_statements() {
        for sql in [
            "ALTER TABLE posts ADD CONSTRAINT f FOREIGN KEY (author_id) REFERENCES users NOT ENFORCED;",
            "ALTER TABLE posts ADD CONSTRAINT u UNIQUE (author_id);",
            "CREATE INDEX ON posts (author_id);",
        ] {
            assert_eq!(check_rule(RULE, &[USERS, POSTS], sql), "", "{sql}");
        }
    }
}
