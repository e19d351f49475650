//! The reference check: an explanation that names a table or column existing in neither the schema
//! before the migration nor the one after it was written about another database (or made up), and
//! the reader should know. Names are `table.column`, `schema.table` or `schema.table.column`; a
//! backticked name is checked even when its first part is unknown, a bare one only when its first
//! part is a known table or schema (so "e.g." and "v1.2" are not names).

use std::collections::{BTreeMap, BTreeSet};

use crate::shadow::snapshot::SchemaSnapshot;

/// What the two schemas hold: relations (tables, views) by schema, and their columns.
struct Known {
    schemas: BTreeSet<String>,
    /// `schema` → `relation` → columns.
    relations: BTreeMap<String, BTreeMap<String, BTreeSet<String>>>,
}

impl Known {
    fn of(snapshots: [&SchemaSnapshot; 2]) -> Known {
        let mut known = Known {
            schemas: BTreeSet::new(),
            relations: BTreeMap::new(),
        };
        for snapshot in snapshots {
            known.schemas.extend(snapshot.schemas.iter().cloned());
            let relations = snapshot
                .tables
                .iter()
                .map(|(name, table)| (name, table.columns.iter().map(|c| c.name.clone()).collect()))
                .chain(snapshot.views.keys().map(|name| (name, Vec::new())))
                .chain(
                    snapshot
                        .materialized_views
                        .keys()
                        .map(|name| (name, Vec::new())),
                );
            for (name, columns) in relations {
                let Some((schema, relation)) = name.split_once('.') else {
                    continue;
                };
                known
                    .relations
                    .entry(schema.to_owned())
                    .or_default()
                    .entry(relation.to_owned())
                    .or_default()
                    .extend(columns);
            }
        }
        known
    }

    /// Relations named `name` in any schema, `public` first.
    fn relations_named(&self, name: &str) -> Vec<&BTreeSet<String>> {
        let mut found: Vec<(bool, &BTreeSet<String>)> = self
            .relations
            .iter()
            .filter_map(|(schema, relations)| Some((schema != "public", relations.get(name)?)))
            .collect();
        found.sort_by_key(|(not_public, _)| *not_public);
        found.into_iter().map(|(_, columns)| columns).collect()
    }

    /// Whether a dotted name refers to something that exists; `None` when it is not recognisably
    /// a name of the schema at all.
    fn exists(&self, parts: &[String], backticked: bool) -> Option<bool> {
        // A view's columns are not known: any column of one is taken to exist.
        let has_column = |columns: &BTreeSet<String>, column: &str| {
            columns.is_empty() || columns.contains(column)
        };
        match parts {
            [first, second] => {
                let tables = self.relations_named(first);
                if !tables.is_empty() {
                    return Some(tables.iter().any(|columns| has_column(columns, second)));
                }
                if self.schemas.contains(first) {
                    let schema = self.relations.get(first);
                    return Some(schema.is_some_and(|relations| relations.contains_key(second)));
                }
                backticked.then_some(false)
            }
            [schema, table, column] => {
                if !self.schemas.contains(schema) && !backticked {
                    return None;
                }
                let columns = self.relations.get(schema).and_then(|r| r.get(table));
                Some(columns.is_some_and(|columns| has_column(columns, column)))
            }
            _ => None,
        }
    }
}

/// The dotted names in `text` that exist in neither schema, each once, as written.
pub(super) fn unknown_names(
    text: &str,
    before: &SchemaSnapshot,
    after: &SchemaSnapshot,
) -> Vec<String> {
    let known = Known::of([before, after]);
    let mut unknown: Vec<String> = Vec::new();
    for (name, backticked) in dotted_names(text) {
        let parts: Vec<String> = name.split('.').map(str::to_lowercase).collect();
        if known.exists(&parts, backticked) == Some(false) && !unknown.contains(&name) {
            unknown.push(name);
        }
    }
    unknown
}

/// `a.b` and `a.b.c` made of identifier characters, with whether a backtick opens them.
fn dotted_names(text: &str) -> Vec<(String, bool)> {
    let is_start = |c: char| c.is_ascii_alphabetic() || c == '_';
    let is_part = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let chars: Vec<char> = text.chars().collect();
    let mut names = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let boundary = i == 0 || !(is_part(chars[i - 1]) || chars[i - 1] == '.');
        if !(boundary && is_start(chars[i])) {
            i += 1;
            continue;
        }
        let start = i;
        let mut parts = 1;
        while i < chars.len() && is_part(chars[i]) {
            i += 1;
            if i + 1 < chars.len() && chars[i] == '.' && is_start(chars[i + 1]) {
                parts += 1;
                i += 1;
            }
        }
        if (2..=3).contains(&parts) {
            let backticked = start > 0 && chars[start - 1] == '`';
            names.push((chars[start..i].iter().collect(), backticked));
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shadow::snapshot::{Column, Table};

    fn schema() -> SchemaSnapshot {
        let column = |name: &str| Column {
            name: name.into(),
            data_type: "bigint".into(),
            default: None,
            not_null: false,
            identity: None,
            generated: None,
            collation: None,
        };
        let mut snapshot = SchemaSnapshot::default();
        snapshot.schemas.insert("public".into());
        snapshot.tables.insert(
            "public.orders".into(),
            Table::plain(vec![column("id"), column("total")]),
        );
        snapshot
    }

    #[test]
    fn names_in_neither_schema_are_reported_once() {
        let text = "Adding orders.total_cents (see `invoices.amount`) rewrites orders; orders.total is fine, e.g. on v15.2, public.orders and public.refunds too. orders.total_cents again.";
        assert_eq!(
            unknown_names(text, &schema(), &SchemaSnapshot::default()),
            ["orders.total_cents", "invoices.amount", "public.refunds"]
        );
    }
}
