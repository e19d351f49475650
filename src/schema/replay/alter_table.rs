//! `ALTER TABLE`: its operations apply in order, column operations also to the partitions of a
//! partitioned table (PostgreSQL recurses unless `ONLY`).

use sqlparser::ast::{AlterColumnOperation, AlterTable, AlterTableOperation, RenameTableNameKind};

use super::create_table::{identity, sequence_options_sql, stored_default};
use super::object_name;
use crate::schema::{naming, Catalog, ConstraintKind, Identity, Origin, RelationKind};
use crate::sql::ObjectName;

impl Catalog {
    pub(super) fn alter_table(&mut self, alter: &AlterTable) {
        let Some(name) = object_name(&alter.name) else {
            return;
        };
        let Some(mut table) = self.altered_table(&name, alter.if_exists) else {
            return;
        };
        for operation in &alter.operations {
            table = self.alter_table_operation(&table, operation, alter.only);
        }
    }

    /// The key of the table an `ALTER TABLE` changes. One the model never saw exists all the same
    /// (see `relation_or_stub`), unless `IF EXISTS` says it may not, or the name is a sequence's
    /// or an index's (pg_dump writes `ALTER TABLE seq OWNER TO …` for sequences).
    pub(super) fn altered_table(
        &mut self,
        name: &ObjectName,
        if_exists: bool,
    ) -> Option<ObjectName> {
        if let Some(key) = self.relation_key(name) {
            return Some(key);
        }
        let other_relation = self.find_key(&self.sequences, name).is_some()
            || self.find_key(&self.indexes, name).is_some();
        match if_exists || other_relation {
            true => None,
            false => Some(self.relation_or_stub(name)),
        }
    }

    /// Applies one operation to `table`; returns the table's key afterwards (a rename changes it).
    pub(super) fn alter_table_operation(
        &mut self,
        table: &ObjectName,
        operation: &AlterTableOperation,
        only: bool,
    ) -> ObjectName {
        let recursive = |catalog: &Catalog| match only {
            true => vec![table.clone()],
            false => catalog.with_partitions(table),
        };
        match operation {
            AlterTableOperation::AddColumn {
                if_not_exists,
                column_def,
                ..
            } => {
                let name = naming::ident(&column_def.name);
                let exists = self
                    .relations
                    .get(table)
                    .is_some_and(|r| r.columns.iter().any(|c| c.name == name));
                if !(exists && *if_not_exists) {
                    // Partitions always get the column: a partitioned table cannot differ from them.
                    for (i, target) in self.with_partitions(table).iter().enumerate() {
                        let constraints = self.add_column(target, column_def);
                        if i == 0 {
                            self.add_table_constraints(target, constraints);
                        }
                    }
                }
            }
            AlterTableOperation::DropColumn { column_names, .. } => {
                for target in recursive(self) {
                    for column in column_names {
                        self.remove_column(&target, &naming::ident(column));
                    }
                }
            }
            AlterTableOperation::RenameColumn {
                old_column_name,
                new_column_name,
            } => {
                let (old, new) = (
                    naming::ident(old_column_name),
                    naming::ident(new_column_name),
                );
                for target in recursive(self) {
                    self.rename_column(&target, &old, &new);
                }
            }
            AlterTableOperation::AlterColumn { column_name, op } => {
                let column = naming::ident(column_name);
                for target in recursive(self) {
                    self.alter_column(&target, &column, op);
                }
            }
            AlterTableOperation::AddConstraint {
                constraint,
                not_valid,
            } => self.add_constraint(table, constraint, !not_valid),
            AlterTableOperation::DropConstraint { name, .. }
            | AlterTableOperation::DropForeignKey { name, .. } => {
                self.remove_constraint(table, &naming::ident(name))
            }
            AlterTableOperation::DropPrimaryKey { .. } => {
                let primary_key = self.relations.get(table).and_then(|r| {
                    r.constraints
                        .iter()
                        .find(|c| matches!(c.kind, ConstraintKind::PrimaryKey { .. }))
                        .map(|c| c.name.clone())
                });
                if let Some(primary_key) = primary_key {
                    self.remove_constraint(table, &primary_key);
                }
            }
            AlterTableOperation::ValidateConstraint { name } => {
                let name = naming::ident(name);
                for target in recursive(self) {
                    self.validate_constraint(&target, &name);
                }
            }
            AlterTableOperation::RenameConstraint { old_name, new_name } => {
                self.rename_constraint(table, &naming::ident(old_name), &naming::ident(new_name))
            }
            AlterTableOperation::RenameTable {
                table_name: RenameTableNameKind::To(new_name) | RenameTableNameKind::As(new_name),
            } => {
                // The new name cannot move the table to another schema: only its last part counts.
                if let Some(new_name) = object_name(new_name) {
                    return self.rename_relation(table, &new_name.name);
                }
            }
            AlterTableOperation::AttachPartitionOf { partition, .. } => {
                if let Some(partition) = object_name(partition) {
                    self.attach_partition(table, &partition);
                }
            }
            AlterTableOperation::DetachPartitionOf { partition, .. } => {
                if let Some(partition) = object_name(partition).and_then(|p| self.relation_key(&p))
                {
                    if let Some(mut relation) = self.relations.get_mut(&partition) {
                        relation.partition_of = None;
                    }
                }
            }
            _ => {}
        }
        table.clone()
    }

    /// `ALTER [COLUMN] column …` on one table.
    fn alter_column(&mut self, table: &ObjectName, column: &str, operation: &AlterColumnOperation) {
        let identity_options = match operation {
            AlterColumnOperation::AddGenerated {
                sequence_options, ..
            } => Some(sequence_options_sql(sequence_options.iter().flatten())),
            _ => None,
        };
        let Some(mut target) = self.column_or_stub(table, column) else {
            return;
        };
        match operation {
            AlterColumnOperation::SetNotNull => target.not_null = true,
            AlterColumnOperation::DropNotNull => target.not_null = false,
            AlterColumnOperation::SetDefault { value } => target.default = stored_default(value),
            AlterColumnOperation::DropDefault => target.default = None,
            AlterColumnOperation::SetDataType { data_type, .. } => {
                target.data_type = Some(data_type.clone())
            }
            AlterColumnOperation::AddGenerated { generated_as, .. } => {
                target.identity = Some(generated_as.as_ref().map_or(Identity::Always, identity));
                target.not_null = true;
            }
            AlterColumnOperation::GenericOptions { .. } => {}
        }
        drop(target);
        if let Some(options) = identity_options {
            self.add_owned_sequence(table, column, options);
        }
    }

    /// `ALTER TABLE … VALIDATE CONSTRAINT`.
    fn validate_constraint(&mut self, table: &ObjectName, name: &str) {
        if let Some(mut relation) = self.relations.get_mut(table) {
            if let Some(constraint) = relation.constraints.iter_mut().find(|c| c.name == name) {
                constraint.validated = true;
            }
        }
    }

    /// `ALTER TABLE parent ATTACH PARTITION partition …`: the partition gets the parent's indexes.
    fn attach_partition(&mut self, parent: &ObjectName, partition: &ObjectName) {
        if let Some(mut relation) = self.relations.get_mut(parent) {
            if relation.origin == Origin::BASELINE && relation.columns.is_empty() {
                // Only known from this statement: it must be partitioned.
                relation.kind = RelationKind::PartitionedTable;
            }
        }
        let partition = self.relation_or_stub(partition);
        if let Some(mut relation) = self.relations.get_mut(&partition) {
            relation.partition_of = Some(parent.clone());
        }
        self.clone_indexes(parent, &partition);
    }
}
