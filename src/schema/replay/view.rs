//! `CREATE [OR REPLACE] [MATERIALIZED] VIEW` and `ALTER [MATERIALIZED] VIEW`. A view's columns
//! are known by name only, and only as far as the query's select list names them.

use sqlparser::ast::{
    AlterView, AlterViewOperation, CreateView, Query, Select, SelectItem, SetExpr, ViewColumnDef,
};

use super::{idents, object_name};
use crate::schema::{naming, Catalog, Relation, RelationKind};

impl Catalog {
    pub(super) fn create_view(&mut self, view: &CreateView) {
        let Some(name) = object_name(&view.name) else {
            return;
        };
        let key = self.creation_key(&name, view.temporary);
        if view.if_not_exists && self.relations.contains_key(&key) {
            return;
        }
        let kind = match view.materialized {
            true => RelationKind::MaterializedView,
            false => RelationKind::View,
        };
        let names = match view.columns.as_slice() {
            [] => query_columns(&view.query),
            given => given.iter().map(|c| naming::ident(&c.name)).collect(),
        };
        let columns = names
            .into_iter()
            .map(|name| self.unknown_column(name))
            .collect();
        let definition = Some(view_definition(&view.columns, &view.query));
        self.insert_relation(Relation {
            name: key,
            kind,
            columns,
            constraints: Vec::new(),
            partition_of: None,
            partition_key: None,
            definition,
            origin: *self.current,
        });
    }

    pub(super) fn alter_view(&mut self, alter: &AlterView) {
        let Some(key) = object_name(&alter.name).and_then(|name| self.relation_key(&name)) else {
            return;
        };
        match &alter.operation {
            AlterViewOperation::RenameTo { new_name } => {
                if let Some(new_name) = object_name(new_name) {
                    self.rename_relation(&key, &new_name.name);
                }
            }
            AlterViewOperation::RenameColumn {
                old_column_name,
                new_column_name,
            } => self.rename_column(
                &key,
                &naming::ident(old_column_name),
                &naming::ident(new_column_name),
            ),
            AlterViewOperation::As { columns, query, .. } => {
                let definition = match columns.as_slice() {
                    [] => format!("AS {query}"),
                    given => format!("({}) AS {query}", idents(given).join(", ")),
                };
                if let Some(mut relation) = self.relations.get_mut(&key) {
                    relation.definition = Some(definition);
                }
                let names = match columns.as_slice() {
                    [] => query_columns(query),
                    given => idents(given),
                };
                let columns = names
                    .into_iter()
                    .map(|name| self.unknown_column(name))
                    .collect();
                if let Some(mut known) = self.relations.columns_mut(&key) {
                    *known = columns;
                }
            }
            _ => {}
        }
    }
}

/// The output column names of a query, as far as its select list names them: aliases, column
/// references, function names; stops at `*` (whose columns the model cannot list).
pub(super) fn query_columns(query: &Query) -> Vec<String> {
    set_expr_columns(&query.body)
}

/// A UNION's columns are named by its first branch.
fn set_expr_columns(body: &SetExpr) -> Vec<String> {
    match body {
        SetExpr::Select(select) => select_columns(select),
        SetExpr::Query(query) => query_columns(query),
        SetExpr::SetOperation { left, .. } => set_expr_columns(left),
        _ => Vec::new(),
    }
}

fn select_columns(select: &Select) -> Vec<String> {
    let mut names = Vec::new();
    for item in &select.projection {
        let name = match item {
            SelectItem::ExprWithAlias { alias, .. } => naming::ident(alias),
            SelectItem::UnnamedExpr(expr) => {
                naming::figure_name(expr).unwrap_or_else(|| "?column?".to_owned())
            }
            _ => break,
        };
        names.push(name);
    }
    names
}

/// `[(columns)] AS query`, as `CREATE VIEW name` takes it.
fn view_definition(columns: &[ViewColumnDef], query: &Query) -> String {
    match columns {
        [] => format!("AS {query}"),
        given => {
            let names: Vec<String> = given
                .iter()
                .map(|c| naming::quote_ident(&naming::ident(&c.name)))
                .collect();
            format!("({}) AS {query}", names.join(", "))
        }
    }
}
