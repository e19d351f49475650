//! `CREATE INDEX`, and the indexes partitions get from their partitioned table.

use sqlparser::ast::CreateIndex;

use super::constraint::naming_key;
use super::{index_key, object_name};
use crate::schema::{naming, Catalog, Constraint, ConstraintKind, Index, RelationKind};
use crate::sql::ObjectName;

impl Catalog {
    /// `CREATE [UNIQUE] INDEX [CONCURRENTLY] [IF NOT EXISTS] [name] ON [ONLY] table …`. The index
    /// lives in its table's schema. On a partitioned table each partition gets its own index too,
    /// unless `only` (`ON ONLY`, which builds nothing until partitions' indexes are attached).
    pub(super) fn create_index(&mut self, create: &CreateIndex, only: bool) {
        let Some(table) = object_name(&create.table_name) else {
            return;
        };
        let table = self.relation_name(&table);
        let name = match create.name.as_ref().and_then(object_name) {
            Some(name) => naming::truncate_identifier(&name.name),
            None => {
                let keys: Vec<String> = create
                    .columns
                    .iter()
                    .map(|column| naming::index_key_name(&column.column.expr))
                    .collect();
                self.choose_index_name(&table, &keys, "idx", false)
            }
        };
        let key = ObjectName {
            schema: table.schema.clone(),
            name,
        };
        if create.if_not_exists && self.indexes.contains_key(&key) {
            return;
        }
        let index = Index {
            name: key,
            table: table.clone(),
            columns: create.columns.iter().map(index_key).collect(),
            unique: create.unique,
            predicate: create.predicate.as_ref().map(ToString::to_string),
            origin: *self.current,
        };
        self.insert_index(index.clone());
        let partitioned = self
            .relations
            .get(&table)
            .is_some_and(|r| r.kind == RelationKind::PartitionedTable);
        if partitioned && !only {
            for partition in self.with_partitions(&table).into_iter().skip(1) {
                self.clone_index(&index, &partition);
            }
        }
    }

    /// Gives a new partition of `parent` the parent's indexes (as `CREATE TABLE … PARTITION OF`
    /// and `ATTACH PARTITION` do).
    pub(super) fn clone_indexes(&mut self, parent: &ObjectName, partition: &ObjectName) {
        let indexes: Vec<Index> = self.indexes.on(parent).cloned().collect();
        for index in indexes {
            self.clone_index(&index, partition);
        }
    }

    /// The partition's copy of a partitioned index: an existing equivalent index is attached
    /// instead; otherwise one is created with the name PostgreSQL generates for the partition, with
    /// the primary key or unique constraint it backs.
    fn clone_index(&mut self, index: &Index, partition: &ObjectName) {
        let equivalent = self
            .indexes
            .on(partition)
            .any(|existing| existing.columns == index.columns && existing.unique == index.unique);
        if equivalent || !self.relations.contains_key(partition) {
            return;
        }
        let backed = self.relations.get(&index.table).and_then(|parent| {
            parent
                .constraints
                .iter()
                .find(|c| c.name == index.name.name && c.kind.has_index())
                .map(|c| c.kind.clone())
        });
        let label = match &backed {
            Some(ConstraintKind::PrimaryKey { .. }) => "pkey",
            Some(ConstraintKind::Unique { .. }) => "key",
            Some(_) => "excl",
            None => "idx",
        };
        let keys: Vec<String> = index.columns.iter().map(|key| naming_key(key)).collect();
        let name = self.choose_index_name(partition, &keys, label, backed.is_some());
        let clone = Index {
            name: ObjectName {
                schema: partition.schema.clone(),
                name: name.clone(),
            },
            table: partition.clone(),
            origin: *self.current,
            ..index.clone()
        };
        self.insert_index(clone);
        if let Some(kind) = backed {
            let origin = *self.current;
            self.push_constraint(
                partition,
                Constraint {
                    name,
                    kind,
                    validated: true,
                    origin,
                },
            );
        }
    }
}
