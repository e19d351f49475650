//! Static replay: applying a statement's DDL to the catalog.
//!
//! Best effort and never failing: a statement the model does not understand, or one that would fail
//! on a real server, leaves the catalog as close to the server's as the model can tell. The history
//! did apply in production, so when the model disagrees with a statement (a `CREATE TABLE` of a
//! table it already has, an `ALTER TABLE` of one it never saw), the statement wins.
//!
//! One file per statement family; `objects` keeps the catalog consistent (what a drop takes with
//! it), `rename` moves names and every reference to them, `fallback` reads the statements sqlparser
//! could not parse.

mod alter_table;
mod constraint;
mod create_table;
mod drop;
mod fallback;
mod index;
mod objects;
mod rename;
mod sequence;
mod session;
mod types;
mod view;

use sqlparser::ast;

use super::naming;
use super::relations::ColumnMut;
use super::{Catalog, Column, Relation, RelationKind};
use crate::sql::{ObjectName, Statement};

impl Catalog {
    /// Applies what `statement` (of the file `text`) changes in the schema. Statements the model does
    /// not understand leave it unchanged.
    pub fn apply(&mut self, text: &str, statement: &Statement) {
        if !statement.nested.is_empty() {
            for nested in &statement.nested {
                self.apply(text, nested);
            }
            return;
        }
        // Without keeping the tree: a whole history is replayed statement by statement.
        statement.with_ast(|ast| match ast {
            Some(ast) => self.apply_ast(ast),
            None => self.apply_unparsed(text, statement),
        })
    }

    /// Applies a parsed statement: dispatches to the statement family's replay.
    fn apply_ast(&mut self, statement: &ast::Statement) {
        use ast::Statement as S;
        match statement {
            S::CreateTable(create) => self.create_table(create),
            S::CreateForeignTable(create) => self.create_foreign_table(create),
            S::AlterTable(alter) => self.alter_table(alter),
            S::RenameTable(renames) => {
                for rename in renames {
                    self.rename_relation_to(&rename.old_name, &rename.new_name);
                }
            }
            S::CreateIndex(create) => self.create_index(create, false),
            S::AlterIndex {
                name,
                operation: ast::AlterIndexOperation::RenameIndex { index_name },
            } => self.rename_index_to(name, index_name),
            S::Drop {
                object_type, names, ..
            } => self.drop_objects(*object_type, names),
            S::DropDomain(drop) => self.drop_types(std::slice::from_ref(&drop.name)),
            S::CreateType {
                name,
                representation,
            } => self.create_type(name, representation.as_ref()),
            S::CreateDomain(domain) => self.create_domain(domain),
            S::AlterType(alter) => self.alter_type(alter),
            S::CreateView(view) => self.create_view(view),
            S::AlterView(alter) => self.alter_view(alter),
            S::CreateSequence {
                name,
                if_not_exists,
                sequence_options,
                ..
            } => self.create_sequence(name, *if_not_exists, sequence_options),
            S::AlterSchema(alter) => self.alter_schema(alter),
            S::Set(set) => self.set(set),
            S::Reset(reset) => self.reset(reset),
            S::Query(query) => self.select_set_config(query),
            _ => {}
        }
    }

    /// The key of the relation `name` resolves to, if the model knows it.
    fn relation_key(&self, name: &ObjectName) -> Option<ObjectName> {
        self.find_key(&self.relations, name)
    }

    /// The key of the relation `name` resolves to. A relation the model never saw created still
    /// exists (the statement naming it applied in production): it is added as a table with unknown
    /// columns from before the history ([`super::Origin::BASELINE`]), so what later statements
    /// add to it (columns, constraints) is remembered.
    fn relation_or_stub(&mut self, name: &ObjectName) -> ObjectName {
        if let Some(key) = self.relation_key(name) {
            return key;
        }
        let key = self.qualify(name);
        self.relations.insert(
            key.clone(),
            Relation {
                name: key.clone(),
                kind: RelationKind::Table,
                columns: Vec::new(),
                constraints: Vec::new(),
                partition_of: None,
                partition_key: None,
                definition: None,
                origin: super::Origin::BASELINE,
            },
        );
        key
    }

    /// The column `column` of the table `table` (a key of `relations`), added from before the
    /// history with an unknown type when the model does not know it (see
    /// [`relation_or_stub`](Self::relation_or_stub)).
    fn column_or_stub(&mut self, table: &ObjectName, column: &str) -> Option<ColumnMut<'_>> {
        let mut columns = self.relations.columns_mut(table)?;
        let position = match columns.iter().position(|c| c.name == column) {
            Some(position) => position,
            None => {
                columns.push(Column {
                    name: column.to_owned(),
                    data_type: None,
                    not_null: false,
                    default: None,
                    identity: None,
                    generated: false,
                    origin: super::Origin::BASELINE,
                });
                columns.len() - 1
            }
        };
        Some(columns.into_column(position))
    }

    /// The table and its partitions, recursively: what an `ALTER TABLE` without `ONLY` changes.
    fn with_partitions(&self, table: &ObjectName) -> Vec<ObjectName> {
        let mut tables = vec![table.clone()];
        let mut next = 0;
        while next < tables.len() {
            let parent = &tables[next];
            let partitions: Vec<ObjectName> = self
                .relations
                .partitions_of(parent)
                .map(|r| r.name.clone())
                .filter(|name| !tables.contains(name))
                .collect();
            tables.extend(partitions);
            next += 1;
        }
        tables
    }
}

/// A sqlparser name as a model name (case-folded, not yet qualified).
fn object_name(name: &ast::ObjectName) -> Option<ObjectName> {
    ObjectName::from_ast(name)
}

/// The folded, truncated names of identifiers (column lists).
fn idents(idents: &[ast::Ident]) -> Vec<String> {
    idents.iter().map(naming::ident).collect()
}

/// An index key as the model stores it: the column name, or the expression's SQL text.
fn index_key(column: &ast::IndexColumn) -> String {
    match &column.column.expr {
        ast::Expr::Identifier(ident) => naming::ident(ident),
        ast::Expr::Nested(inner) => match inner.as_ref() {
            ast::Expr::Identifier(ident) => naming::ident(ident),
            other => other.to_string(),
        },
        other => other.to_string(),
    }
}

/// Parses one statement on its own (used to re-read repaired or partial statements).
fn parse_statement(sql: &str) -> Option<ast::Statement> {
    let mut statements = crate::sql::parser(sql).ok()?.parse_statements().ok()?;
    (statements.len() == 1).then(|| statements.remove(0))
}

#[cfg(test)]
mod tests;
