//! The static lock model: which table-level locks a statement takes, as PostgreSQL documents them and
//! as measured on PostgreSQL 15 (`pg15-lock-probe.txt`). Rules about lock timeouts and, later, the
//! shadow trace compare against it.

use std::fmt;

use sqlparser::ast::{
    AlterTableOperation, ColumnOption, CreateTable, ObjectType, Statement as Ast, TableConstraint,
};

use crate::schema::Catalog;
use crate::sql::{Kind, ObjectName, Statement};

/// PostgreSQL's table lock modes, weakest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LockMode {
    AccessShare,
    RowShare,
    RowExclusive,
    ShareUpdateExclusive,
    Share,
    ShareRowExclusive,
    Exclusive,
    AccessExclusive,
}

impl LockMode {
    /// The mode as SQL writes it (`ACCESS EXCLUSIVE`).
    pub fn sql_name(self) -> &'static str {
        match self {
            LockMode::AccessShare => "ACCESS SHARE",
            LockMode::RowShare => "ROW SHARE",
            LockMode::RowExclusive => "ROW EXCLUSIVE",
            LockMode::ShareUpdateExclusive => "SHARE UPDATE EXCLUSIVE",
            LockMode::Share => "SHARE",
            LockMode::ShareRowExclusive => "SHARE ROW EXCLUSIVE",
            LockMode::Exclusive => "EXCLUSIVE",
            LockMode::AccessExclusive => "ACCESS EXCLUSIVE",
        }
    }

    /// The mode as `pg_locks.mode` names it (`AccessExclusiveLock`).
    pub fn pg_name(self) -> &'static str {
        match self {
            LockMode::AccessShare => "AccessShareLock",
            LockMode::RowShare => "RowShareLock",
            LockMode::RowExclusive => "RowExclusiveLock",
            LockMode::ShareUpdateExclusive => "ShareUpdateExclusiveLock",
            LockMode::Share => "ShareLock",
            LockMode::ShareRowExclusive => "ShareRowExclusiveLock",
            LockMode::Exclusive => "ExclusiveLock",
            LockMode::AccessExclusive => "AccessExclusiveLock",
        }
    }

    /// What other sessions cannot do while it is held (or queued).
    pub fn blocks(self) -> &'static str {
        match self {
            LockMode::AccessShare | LockMode::RowShare | LockMode::RowExclusive => {
                "blocks only stronger schema changes"
            }
            LockMode::ShareUpdateExclusive => {
                "blocks other schema changes and VACUUM, not reads or writes"
            }
            LockMode::Share | LockMode::ShareRowExclusive => {
                "blocks writes (INSERT, UPDATE, DELETE); reads continue"
            }
            LockMode::Exclusive => "blocks writes and SELECT … FOR UPDATE; plain reads continue",
            LockMode::AccessExclusive => "blocks reads and writes",
        }
    }
}

impl fmt::Display for LockMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.sql_name())
    }
}

/// A table-level lock a statement is expected to take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PredictedLock {
    /// As written in the statement (resolve through the catalog for the qualified name).
    pub relation: ObjectName,
    pub mode: LockMode,
}

/// The strongest lock the statement takes on each relation it names, as far as the model can tell.
pub fn predicted_locks(statement: &Statement, catalog: &Catalog) -> Vec<PredictedLock> {
    let mut locks = Locks::default();
    match &statement.ast {
        Some(ast) => from_ast(ast, catalog, &mut locks),
        None => from_class(statement, catalog, &mut locks),
    }
    locks.0
}

#[derive(Default)]
struct Locks(Vec<PredictedLock>);

impl Locks {
    fn take(&mut self, relation: &ObjectName, mode: LockMode) {
        match self.0.iter_mut().find(|lock| &lock.relation == relation) {
            Some(lock) => lock.mode = lock.mode.max(mode),
            None => self.0.push(PredictedLock {
                relation: relation.clone(),
                mode,
            }),
        }
    }
}

fn from_ast(ast: &Ast, catalog: &Catalog, locks: &mut Locks) {
    use LockMode::*;
    match ast {
        Ast::CreateIndex(index) => {
            if let Some(table) = ObjectName::from_ast(&index.table_name) {
                locks.take(
                    &table,
                    if index.concurrently {
                        ShareUpdateExclusive
                    } else {
                        Share
                    },
                );
            }
        }
        Ast::AlterTable(alter) => {
            let Some(table) = ObjectName::from_ast(&alter.name) else {
                return;
            };
            for operation in &alter.operations {
                alter_table_operation(&table, operation, locks);
            }
        }
        Ast::CreateTable(create) => create_table(create, locks),
        Ast::Drop {
            object_type, names, ..
        } => {
            for name in names.iter().filter_map(ObjectName::from_ast) {
                match object_type {
                    ObjectType::Table | ObjectType::MaterializedView => {
                        locks.take(&name, AccessExclusive);
                        // Dropping a table's foreign keys locks the tables they reference.
                        for referenced in referenced_tables(catalog, &name) {
                            locks.take(&referenced, AccessExclusive);
                        }
                    }
                    ObjectType::Index => {
                        let table = catalog.index(&name).map_or(name, |i| i.table.clone());
                        locks.take(&table, AccessExclusive);
                    }
                    _ => {}
                }
            }
        }
        Ast::Truncate(truncate) => {
            for target in &truncate.table_names {
                if let Some(name) = ObjectName::from_ast(&target.name) {
                    locks.take(&name, AccessExclusive);
                }
            }
        }
        Ast::RefreshMaterializedView(refresh) => {
            if let Some(name) = ObjectName::from_ast(&refresh.name) {
                locks.take(
                    &name,
                    if refresh.concurrently {
                        Exclusive
                    } else {
                        AccessExclusive
                    },
                );
            }
        }
        Ast::CreateTrigger(trigger) => {
            if let Some(name) = ObjectName::from_ast(&trigger.table_name) {
                locks.take(&name, ShareRowExclusive);
            }
        }
        Ast::DropTrigger(trigger) => {
            if let Some(name) = trigger.table_name.as_ref().and_then(ObjectName::from_ast) {
                locks.take(&name, AccessExclusive);
            }
        }
        Ast::AlterIndex { name, .. } => {
            if let Some(name) = ObjectName::from_ast(name) {
                let table = catalog.index(&name).map_or(name, |i| i.table.clone());
                locks.take(&table, ShareUpdateExclusive);
            }
        }
        Ast::Insert(_) | Ast::Update(_) | Ast::Delete(_) => {}
        _ => {}
    }
}

fn alter_table_operation(table: &ObjectName, operation: &AlterTableOperation, locks: &mut Locks) {
    use LockMode::*;
    match operation {
        AlterTableOperation::AddConstraint {
            constraint: TableConstraint::ForeignKey(fk),
            ..
        } => {
            locks.take(table, ShareRowExclusive);
            if let Some(referenced) = ObjectName::from_ast(&fk.foreign_table) {
                locks.take(&referenced, ShareRowExclusive);
            }
        }
        AlterTableOperation::AddColumn { column_def, .. } => {
            locks.take(table, AccessExclusive);
            for option in &column_def.options {
                if let ColumnOption::ForeignKey(fk) = &option.option {
                    if let Some(referenced) = ObjectName::from_ast(&fk.foreign_table) {
                        locks.take(&referenced, ShareRowExclusive);
                    }
                }
            }
        }
        AlterTableOperation::ValidateConstraint { .. }
        | AlterTableOperation::SetOptionsParens { .. }
        | AlterTableOperation::ResetOptions { .. } => locks.take(table, ShareUpdateExclusive),
        AlterTableOperation::EnableTrigger { .. }
        | AlterTableOperation::DisableTrigger { .. }
        | AlterTableOperation::EnableAlwaysTrigger { .. }
        | AlterTableOperation::EnableReplicaTrigger { .. } => locks.take(table, ShareRowExclusive),
        AlterTableOperation::AttachPartitionOf { partition, .. } => {
            locks.take(table, ShareUpdateExclusive);
            if let Some(partition) = ObjectName::from_ast(partition) {
                locks.take(&partition, AccessExclusive);
            }
        }
        AlterTableOperation::DetachPartitionOf { partition, mode } => {
            // CONCURRENTLY (and FINALIZE) take only SHARE UPDATE EXCLUSIVE on the parent, but the
            // second phase still waits for ACCESS EXCLUSIVE on the partition.
            locks.take(
                table,
                if mode.is_some() {
                    ShareUpdateExclusive
                } else {
                    AccessExclusive
                },
            );
            if let Some(partition) = ObjectName::from_ast(partition) {
                locks.take(&partition, AccessExclusive);
            }
        }
        _ => locks.take(table, AccessExclusive),
    }
}

fn create_table(create: &CreateTable, locks: &mut Locks) {
    let mut reference = |name: &sqlparser::ast::ObjectName| {
        if let Some(referenced) = ObjectName::from_ast(name) {
            locks.take(&referenced, LockMode::ShareRowExclusive);
        }
    };
    for constraint in &create.constraints {
        if let TableConstraint::ForeignKey(fk) = constraint {
            reference(&fk.foreign_table);
        }
    }
    for column in &create.columns {
        for option in &column.options {
            if let ColumnOption::ForeignKey(fk) = &option.option {
                reference(&fk.foreign_table);
            }
        }
    }
    if let Some(parent) = create.partition_of.as_ref().and_then(ObjectName::from_ast) {
        locks.take(&parent, LockMode::AccessExclusive);
    }
}

fn referenced_tables(catalog: &Catalog, table: &ObjectName) -> Vec<ObjectName> {
    catalog
        .relation(table)
        .map(|relation| {
            relation
                .constraints
                .iter()
                .filter_map(|c| match &c.kind {
                    crate::schema::ConstraintKind::ForeignKey { references, .. } => {
                        Some(references.clone())
                    }
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Locks of statements sqlparser could not parse, from their kind and target.
fn from_class(statement: &Statement, catalog: &Catalog, locks: &mut Locks) {
    use LockMode::*;
    let class = &statement.class;
    let Some(target) = &class.target else {
        return;
    };
    let concurrent = class.concurrently;
    let mode = match class.kind {
        Kind::CreateIndex | Kind::Reindex if concurrent => ShareUpdateExclusive,
        Kind::CreateIndex | Kind::Reindex => Share,
        Kind::DropIndex if concurrent => ShareUpdateExclusive,
        Kind::DropIndex => {
            let table = catalog
                .index(target)
                .map_or(target.clone(), |i| i.table.clone());
            locks.take(&table, AccessExclusive);
            return;
        }
        Kind::AlterIndex => ShareUpdateExclusive,
        Kind::AlterTable | Kind::DropTable | Kind::Truncate | Kind::Cluster => AccessExclusive,
        Kind::RefreshMaterializedView if concurrent => Exclusive,
        Kind::RefreshMaterializedView => AccessExclusive,
        _ => return,
    };
    let target = match class.kind {
        Kind::Reindex => catalog
            .index(target)
            .map_or(target.clone(), |i| i.table.clone()),
        _ => target.clone(),
    };
    locks.take(&target, mode);
}
