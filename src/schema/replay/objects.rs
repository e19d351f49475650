//! Adding and removing catalog objects the way PostgreSQL's dependencies do: a dropped table takes
//! its indexes, owned sequences, partitions and the foreign keys pointing at it; a dropped column
//! takes the indexes and constraints on it; a constraint and the index backing it go together.
//! Also the names PostgreSQL generates, which must avoid every name already taken.

use crate::schema::{expr, naming};
use crate::schema::{Catalog, Constraint, ConstraintKind, Index, Relation, Sequence};
use crate::sql::ObjectName;

impl ConstraintKind {
    /// True when dropping the column `column` of the constrained table drops the constraint.
    pub fn involves(&self, column: &str) -> bool {
        match self {
            ConstraintKind::PrimaryKey { columns }
            | ConstraintKind::Unique { columns }
            | ConstraintKind::ForeignKey { columns, .. } => columns.iter().any(|c| c == column),
            ConstraintKind::Check { expression } => expr::mentions(expression, column),
            // Its index goes with the column, and the constraint with its index.
            ConstraintKind::Exclude => false,
        }
    }

    /// True for a foreign key to `table` (on any of `columns`, when given).
    fn references(&self, table: &ObjectName, columns: Option<&[String]>) -> bool {
        match self {
            ConstraintKind::ForeignKey {
                references,
                referenced_columns,
                ..
            } => {
                references == table
                    && columns.is_none_or(|columns| {
                        referenced_columns.iter().any(|c| columns.contains(c))
                    })
            }
            _ => false,
        }
    }
}

impl Index {
    /// True when the index covers the column `column`, as a key, in an expression or in its
    /// predicate: dropping the column drops the index.
    pub fn involves(&self, column: &str) -> bool {
        self.columns
            .iter()
            .any(|key| key == column || expr::mentions(key, column))
            || self
                .predicate
                .as_deref()
                .is_some_and(|predicate| expr::mentions(predicate, column))
    }
}

impl Catalog {
    /// Adds a relation. One of the same name is dropped first: the history applied, so a
    /// `CREATE TABLE` of a table the model still has means the model missed its drop.
    pub(super) fn insert_relation(&mut self, relation: Relation) {
        let key = relation.name.clone();
        self.remove_relation(&key);
        self.relations.insert(key, relation);
    }

    /// Drops a relation with its partitions, indexes, owned sequences and the foreign keys of
    /// other tables that reference it (they need CASCADE, or were dropped just before).
    pub(super) fn remove_relation(&mut self, key: &ObjectName) {
        if self.relations.remove(key).is_none() {
            return;
        }
        let partitions: Vec<ObjectName> = self
            .relations
            .partitions_of(key)
            .map(|r| r.name.clone())
            .collect();
        for partition in partitions {
            self.remove_relation(&partition);
        }
        self.indexes.remove_on(key, |_| true);
        self.sequences.remove_on(key, |_| true);
        self.relations
            .drop_foreign_keys_to(key, |c| c.kind.references(key, None));
    }

    /// Adds an index, replacing one of the same name.
    pub(super) fn insert_index(&mut self, index: Index) {
        self.indexes.insert(index.name.clone(), index);
    }

    /// Drops an index with the constraint it backs.
    pub(super) fn remove_index(&mut self, key: &ObjectName) {
        let Some(index) = self.indexes.remove(key) else {
            return;
        };
        let backed = self.relations.get(&index.table).and_then(|relation| {
            relation
                .constraints
                .iter()
                .find(|c| c.name == key.name && c.kind.has_index())
                .map(|c| c.name.clone())
        });
        if let Some(constraint) = backed {
            self.remove_constraint(&index.table, &constraint);
        }
    }

    /// Adds a constraint to a table the catalog holds, replacing one of the same name.
    pub(super) fn push_constraint(&mut self, table: &ObjectName, constraint: Constraint) {
        if let Some(mut relation) = self.relations.get_mut(table) {
            relation.constraints.retain(|c| c.name != constraint.name);
            relation.constraints.push(constraint);
        }
    }

    /// Drops a table's constraint with its index; dropping a primary key or unique constraint
    /// also drops the foreign keys that depend on it (CASCADE, or the drop fails).
    pub(super) fn remove_constraint(&mut self, table: &ObjectName, name: &str) {
        let Some(mut relation) = self.relations.get_mut(table) else {
            return;
        };
        let Some(position) = relation.constraints.iter().position(|c| c.name == name) else {
            return;
        };
        let constraint = relation.constraints.remove(position);
        drop(relation);
        if !constraint.kind.has_index() {
            return;
        }
        self.indexes.remove(&ObjectName {
            schema: table.schema.clone(),
            name: name.to_owned(),
        });
        if let ConstraintKind::PrimaryKey { columns } | ConstraintKind::Unique { columns } =
            &constraint.kind
        {
            self.relations
                .drop_foreign_keys_to(table, |c| c.kind.references(table, Some(columns)));
        }
    }

    /// Drops a column with the indexes, constraints and owned sequences that depend on it, and the
    /// foreign keys of other tables that reference it.
    pub(super) fn remove_column(&mut self, table: &ObjectName, column: &str) {
        let Some(mut relation) = self.relations.get_mut(table) else {
            return;
        };
        relation.columns.retain(|c| c.name != column);
        let constraints: Vec<String> = relation
            .constraints
            .iter()
            .filter(|c| c.kind.involves(column))
            .map(|c| c.name.clone())
            .collect();
        drop(relation);
        for constraint in constraints {
            self.remove_constraint(table, &constraint);
        }
        let indexes: Vec<ObjectName> = self
            .indexes
            .on(table)
            .filter(|index| index.involves(column))
            .map(|index| index.name.clone())
            .collect();
        for index in indexes {
            self.remove_index(&index);
        }
        self.remove_owned_sequences(table, column);
        let columns = [column.to_owned()];
        self.relations
            .drop_foreign_keys_to(table, |c| c.kind.references(table, Some(&columns)));
    }

    /// Drops the sequences a column owns (its serial or identity sequence).
    pub(super) fn remove_owned_sequences(&mut self, table: &ObjectName, column: &str) {
        self.sequences.remove_on(table, |sequence| {
            sequence
                .owned_by
                .as_ref()
                .is_some_and(|(_, owned)| owned == column)
        });
    }

    /// Drops everything in a schema (`DROP SCHEMA … CASCADE`; without CASCADE it must be empty).
    pub(in crate::schema) fn remove_schema(&mut self, schema: &str) {
        let in_schema = |name: &ObjectName| name.schema.as_deref() == Some(schema);
        let relations: Vec<ObjectName> = self
            .relations
            .keys()
            .filter(|name| in_schema(name))
            .cloned()
            .collect();
        for relation in relations {
            self.remove_relation(&relation);
        }
        self.indexes.retain(|name, _| !in_schema(name));
        self.types.retain(|name, _| !in_schema(name));
        self.sequences.retain(|name, _| !in_schema(name));
    }

    /// Creates the sequence of a serial or identity column, named as PostgreSQL names it
    /// (`<table>_<column>_seq`) and owned by the column.
    pub(super) fn add_owned_sequence(
        &mut self,
        table: &ObjectName,
        column: &str,
        options: Vec<String>,
    ) -> ObjectName {
        let schema = table.schema.clone().unwrap_or_default();
        let name = naming::choose_name(&table.name, Some(column), "seq", |candidate| {
            self.class_name_taken(&schema, candidate)
        });
        let key = ObjectName {
            schema: Some(schema),
            name,
        };
        self.sequences.insert(
            key.clone(),
            Sequence {
                name: key.clone(),
                owned_by: Some((table.clone(), column.to_owned())),
                options,
                origin: *self.current,
            },
        );
        key
    }

    /// True when a table, view, index or sequence of the schema has that name: they share one
    /// namespace (`pg_class`).
    fn class_name_taken(&self, schema: &str, name: &str) -> bool {
        let key = ObjectName::new(Some(schema), name);
        self.relations.contains_key(&key)
            || self.indexes.contains_key(&key)
            || self.sequences.contains_key(&key)
    }

    /// True when a constraint of a table in the schema has that name.
    fn constraint_name_taken(&self, schema: &str, name: &str) -> bool {
        self.relations.constraint_name_taken(schema, name)
    }

    /// The name PostgreSQL gives an unnamed index of `table` on `keys` (`ChooseIndexName`):
    /// `<table>_pkey`, or `<table>_<keys>_<label>` with label `key`, `excl` or `idx`. Names of
    /// constraint indexes also avoid constraint names.
    pub(super) fn choose_index_name(
        &self,
        table: &ObjectName,
        keys: &[String],
        label: &str,
        for_constraint: bool,
    ) -> String {
        let schema = table.schema.as_deref().unwrap_or_default();
        let addition = match label {
            "pkey" => None,
            _ => naming::columns_addition(keys),
        };
        naming::choose_name(&table.name, addition.as_deref(), label, |candidate| {
            self.class_name_taken(schema, candidate)
                || (for_constraint && self.constraint_name_taken(schema, candidate))
        })
    }

    /// The name PostgreSQL gives an unnamed foreign key or CHECK of `table`
    /// (`ChooseConstraintName`): `<table>_<columns>_<label>`, or `<table>_<label>` without columns.
    pub(super) fn choose_constraint_name(
        &self,
        table: &ObjectName,
        columns: &[String],
        label: &str,
    ) -> String {
        let schema = table.schema.as_deref().unwrap_or_default();
        let addition = naming::columns_addition(columns);
        naming::choose_name(&table.name, addition.as_deref(), label, |candidate| {
            self.constraint_name_taken(schema, candidate)
        })
    }
}
