//! Renames and schema moves. PostgreSQL refers to objects by OID, so a new name shows through
//! everywhere at once: indexes still belong to the renamed table, foreign keys still point at it,
//! columns keep their renamed enum type. The model refers by name, so a rename rewrites every
//! reference (`rename_objects`).

use foldhash::HashMap;

use sqlparser::ast::{self, AlterSchema, AlterSchemaOperation, ArrayElemTypeDef, DataType};

use super::object_name;
use crate::schema::journal::Journaled;
use crate::schema::{expr, naming, user_type_name, Catalog, ConstraintKind};
use crate::sql::ObjectName;

impl Catalog {
    /// Renames objects (relations, indexes, sequences, types: one namespace per schema) and every
    /// reference to them. Only what names a renamed object is looked at: the catalog lists the
    /// columns of each type, the indexes and owned sequences of each table, the partitions of each
    /// partitioned table and the foreign keys to each table.
    pub(super) fn rename_objects(&mut self, renames: &[(ObjectName, ObjectName)]) {
        let renames: HashMap<&ObjectName, &ObjectName> =
            renames.iter().map(|(old, new)| (old, new)).collect();
        let moved = |name: &ObjectName| renames.get(name).map(|new| (*new).clone());

        // Column types name types as written; resolve them before the names move. A table's name
        // is also its row type's.
        let mut users: Vec<ObjectName> = renames
            .keys()
            .flat_map(|old| self.relations.typed_candidates(&old.name))
            .collect();
        users.sort();
        users.dedup();
        let mut retyped = Vec::new();
        for relation in users.iter().filter_map(|name| self.relations.get(name)) {
            for (i, column) in relation.columns.iter().enumerate() {
                // Only a user type (possibly in an array) can name a moved object; built-in types are
                // not worth copying to find that out.
                if let Some(data_type) = column
                    .data_type
                    .as_ref()
                    .filter(|t| user_type_name(t).is_some())
                {
                    let mut data_type = data_type.clone();
                    if self.rename_type_in(&mut data_type, &moved) {
                        retyped.push((relation.name.clone(), i, data_type));
                    }
                }
            }
        }
        for (table, i, data_type) in retyped {
            if let Some(column) = self
                .relations
                .columns_mut(&table)
                .as_deref_mut()
                .and_then(|columns| columns.get_mut(i))
            {
                column.data_type = Some(data_type);
            }
        }

        self.relations.rename(&renames);
        self.indexes.rename(&renames);
        rekey(&mut self.types, &renames, |user_type| &mut user_type.name);
        self.sequences.rename(&renames);
    }

    /// Rewrites the user-defined type names in `data_type` that `moved` renames; true if any.
    fn rename_type_in(
        &self,
        data_type: &mut DataType,
        moved: &impl Fn(&ObjectName) -> Option<ObjectName>,
    ) -> bool {
        match data_type {
            DataType::Custom(name, _) => {
                let Some(new) = object_name(name).and_then(|old| moved(&self.resolve(&old))) else {
                    return false;
                };
                *name = ast::ObjectName::from(
                    [new.schema.as_deref(), Some(new.name.as_str())]
                        .into_iter()
                        .flatten()
                        .map(|part| match naming::quote_ident(part) {
                            quoted if quoted.starts_with('"') => ast::Ident::with_quote('"', part),
                            bare => ast::Ident::new(bare),
                        })
                        .collect::<Vec<_>>(),
                );
                true
            }
            DataType::Array(
                ArrayElemTypeDef::AngleBracket(inner)
                | ArrayElemTypeDef::SquareBracket(inner, _)
                | ArrayElemTypeDef::Parenthesis(inner)
                | ArrayElemTypeDef::ParenthesisNotNull(inner)
                | ArrayElemTypeDef::Qualified(inner, _),
            ) => self.rename_type_in(inner, moved),
            _ => false,
        }
    }

    /// Renames a relation within its schema; returns its new key.
    pub(super) fn rename_relation(&mut self, table: &ObjectName, new_name: &str) -> ObjectName {
        let new = ObjectName {
            schema: table.schema.clone(),
            name: naming::truncate_identifier(new_name),
        };
        self.rename_objects(&[(table.clone(), new.clone())]);
        new
    }

    /// `ALTER TABLE old RENAME TO new` as sqlparser's `RenameTable`.
    pub(super) fn rename_relation_to(&mut self, old: &ast::ObjectName, new: &ast::ObjectName) {
        let (Some(old), Some(new)) = (object_name(old), object_name(new)) else {
            return;
        };
        let table = self.relation_or_stub(&old);
        self.rename_relation(&table, &new.name);
    }

    /// `ALTER TABLE … SET SCHEMA`: the table moves with its indexes and owned sequences.
    pub(super) fn set_relation_schema(&mut self, table: &ObjectName, schema: &str) {
        let schema = naming::truncate_identifier(schema);
        let to_schema = |name: &ObjectName| ObjectName {
            schema: Some(schema.clone()),
            name: name.name.clone(),
        };
        let mut renames = vec![(table.clone(), to_schema(table))];
        renames.extend(
            self.indexes
                .on(table)
                .map(|index| (index.name.clone(), to_schema(&index.name))),
        );
        renames.extend(
            self.sequences
                .on(table)
                .map(|s| (s.name.clone(), to_schema(&s.name))),
        );
        self.rename_objects(&renames);
    }

    /// Moves an object of one of the catalog's maps (a sequence, a type) to another schema.
    pub(super) fn set_schema_of(&mut self, key: &ObjectName, schema: &str) {
        let moved = ObjectName {
            schema: Some(naming::truncate_identifier(schema)),
            name: key.name.clone(),
        };
        self.rename_objects(&[(key.clone(), moved)]);
    }

    /// Renames an object within its schema (a sequence, a type).
    pub(super) fn rename_within_schema(&mut self, key: &ObjectName, new_name: &str) {
        let renamed = ObjectName {
            schema: key.schema.clone(),
            name: naming::truncate_identifier(new_name),
        };
        self.rename_objects(&[(key.clone(), renamed)]);
    }

    /// `ALTER INDEX old RENAME TO new`.
    pub(super) fn rename_index_to(&mut self, old: &ast::ObjectName, new: &ast::ObjectName) {
        if let (Some(old), Some(new)) = (object_name(old), object_name(new)) {
            self.rename_index(&old, &new.name);
        }
    }

    /// Renames an index within its schema, and the constraint it backs. `ALTER INDEX` also
    /// renames other relations (PostgreSQL accepts it for tables, views and sequences).
    pub(super) fn rename_index(&mut self, old: &ObjectName, new_name: &str) {
        let new_name = naming::truncate_identifier(new_name);
        let index = self
            .find_key(&self.indexes, old)
            .and_then(|key| Some((self.indexes.get(&key)?.table.clone(), key)));
        if let Some((table, key)) = index {
            self.rename_backed_constraint(&table, &key.name, &new_name);
            self.rename_within_schema(&key, &new_name);
        } else if let Some(key) = self.relation_key(old) {
            self.rename_relation(&key, &new_name);
        } else if let Some(key) = self.find_key(&self.sequences, old) {
            self.rename_within_schema(&key, &new_name);
        }
    }

    /// `ALTER TABLE … RENAME CONSTRAINT`: an index-backed constraint renames its index too.
    pub(super) fn rename_constraint(&mut self, table: &ObjectName, old: &str, new: &str) {
        let Some(mut relation) = self.relations.get_mut(table) else {
            return;
        };
        let Some(constraint) = relation.constraints.iter_mut().find(|c| c.name == old) else {
            return;
        };
        constraint.name = new.to_owned();
        let has_index = constraint.kind.has_index();
        drop(relation);
        if has_index {
            let index = ObjectName {
                schema: table.schema.clone(),
                name: old.to_owned(),
            };
            if self.indexes.contains_key(&index) {
                self.rename_within_schema(&index, new);
            }
        }
    }

    /// Renames the index-backed constraint of `table` named like its index.
    fn rename_backed_constraint(&mut self, table: &ObjectName, old: &str, new: &str) {
        if let Some(mut relation) = self.relations.get_mut(table) {
            if let Some(constraint) = relation
                .constraints
                .iter_mut()
                .find(|c| c.name == old && c.kind.has_index())
            {
                constraint.name = new.to_owned();
            }
        }
    }

    /// `RENAME COLUMN`: the column, and every index, constraint, foreign key and owned sequence
    /// that names it.
    pub(super) fn rename_column(&mut self, table: &ObjectName, old: &str, new: &str) {
        let rename_key = |key: &mut String| {
            if key == old {
                *key = new.to_owned();
            } else if expr::mentions(key, old) {
                *key = expr::rename_column(key, old, new);
            }
        };
        let Some(mut relation) = self.relations.get_mut(table) else {
            return;
        };
        for column in relation.columns.iter_mut().filter(|c| c.name == old) {
            column.name = new.to_owned();
        }
        for constraint in &mut relation.constraints {
            match &mut constraint.kind {
                ConstraintKind::PrimaryKey { columns }
                | ConstraintKind::Unique { columns }
                | ConstraintKind::ForeignKey { columns, .. } => {
                    columns.iter_mut().for_each(rename_key)
                }
                ConstraintKind::Check { expression } => rename_key(expression),
                ConstraintKind::Exclude => {}
            }
        }
        drop(relation);
        self.indexes.change_on(table, |index| {
            index.columns.iter_mut().for_each(rename_key);
            if let Some(predicate) = &mut index.predicate {
                rename_key(predicate);
            }
        });
        self.relations.change_foreign_keys_to(table, |kind| {
            if let ConstraintKind::ForeignKey {
                references,
                referenced_columns,
                ..
            } = kind
            {
                if references == table {
                    referenced_columns.iter_mut().for_each(rename_key);
                }
            }
        });
        let owned: Vec<ObjectName> = self
            .sequences
            .on(table)
            .map(|sequence| sequence.name.clone())
            .collect();
        for name in owned {
            if let Some(mut sequence) = self.sequences.get_mut(&name) {
                if let Some((_, column)) = &mut sequence.owned_by {
                    if column == old {
                        *column = new.to_owned();
                    }
                }
            }
        }
    }

    /// `ALTER SCHEMA … RENAME TO`: every object of the schema moves. The search path keeps naming
    /// the old schema, as PostgreSQL's does.
    pub(super) fn alter_schema(&mut self, alter: &AlterSchema) {
        let Some(schema) = object_name(&alter.name) else {
            return;
        };
        for operation in &alter.operations {
            if let AlterSchemaOperation::Rename { name } = operation {
                if let Some(new) = object_name(name) {
                    self.rename_schema(&schema.name, &new.name);
                }
            }
        }
    }

    pub(super) fn rename_schema(&mut self, old: &str, new: &str) {
        let new = naming::truncate_identifier(new);
        let names = self
            .relations
            .keys()
            .chain(self.indexes.keys())
            .chain(self.types.keys())
            .chain(self.sequences.keys());
        let renames: Vec<(ObjectName, ObjectName)> = names
            .filter(|name| name.schema.as_deref() == Some(old))
            .map(|name| {
                let moved = ObjectName {
                    schema: Some(new.clone()),
                    name: name.name.clone(),
                };
                (name.clone(), moved)
            })
            .collect();
        self.rename_objects(&renames);
    }
}

/// Moves the entries of `map` that `renames` names (old key → new key) to their new keys, updating
/// the name they hold.
fn rekey<T: Clone>(
    map: &mut Journaled<ObjectName, T>,
    renames: &HashMap<&ObjectName, &ObjectName>,
    name_of: impl Fn(&mut T) -> &mut ObjectName,
) {
    // All out before any goes in: a new name may be another's old one.
    let entries: Vec<(ObjectName, T)> = renames
        .iter()
        .filter_map(|(&old, &new)| Some((new.clone(), map.remove(old)?)))
        .collect();
    for (new, mut value) in entries {
        *name_of(&mut value) = new.clone();
        map.insert(new, value);
    }
}
