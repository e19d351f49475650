//! The static lock model: which table-level locks a statement takes, as PostgreSQL documents them and
//! as measured on PostgreSQL 15 (`pg15-lock-probe.txt`). Rules about locks judge statements by it, and the
//! shadow trace is compared with it.
//!
//! The model lists the relations whose locks decide whether application queries wait: tables,
//! partitioned tables and their partitions, materialized views, and a view `CREATE OR REPLACE VIEW`
//! replaces. Indexes appear only when the statement
//! names one and locks it more strongly than its table (`REINDEX INDEX`, `ALTER INDEX`): the planner
//! takes ACCESS SHARE on every index of a table, so ACCESS EXCLUSIVE on one index stalls almost every
//! query on the table. Locks on objects created earlier in the same migration are listed too; rules
//! decide whether they matter.
//!
//! Statements sqlparser cannot parse (`REINDEX`, `CLUSTER`, `ALTER DOMAIN`, `ALTER TABLE … SET
//! STATISTICS`, …) are read from their tokens when the file's text is at hand ([`statement_locks`]),
//! else from their classification alone ([`predicted_locks`]).

use std::fmt;
use std::ops::Range;

use sqlparser::ast::{
    AlterColumnOperation, AlterTableOperation, ColumnOption, CommentObject, CreateTable, DataType,
    FromTable, LockTableMode, ObjectType, Statement as Ast, TableConstraint, TableFactor,
    TableObject, TableWithJoins,
};

use crate::schema::{user_type_name, Catalog, ConstraintKind, RelationKind};
use crate::sql::lex::matching_paren;
use crate::sql::name::fold_ident;
use crate::sql::{Kind, ObjectName, Statement, Token, TokenKind};

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

    /// The mode `pg_locks.mode` names (`AccessExclusiveLock`); `None` for other lock kinds' modes.
    pub fn from_pg_name(name: &str) -> Option<LockMode> {
        use LockMode::*;
        [
            AccessShare,
            RowShare,
            RowExclusive,
            ShareUpdateExclusive,
            Share,
            ShareRowExclusive,
            Exclusive,
            AccessExclusive,
        ]
        .into_iter()
        .find(|mode| mode.pg_name() == name)
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

    fn from_ast(mode: &LockTableMode) -> LockMode {
        match mode {
            LockTableMode::AccessShare => LockMode::AccessShare,
            LockTableMode::RowShare => LockMode::RowShare,
            LockTableMode::RowExclusive => LockMode::RowExclusive,
            LockTableMode::ShareUpdateExclusive => LockMode::ShareUpdateExclusive,
            LockTableMode::Share => LockMode::Share,
            LockTableMode::ShareRowExclusive => LockMode::ShareRowExclusive,
            LockTableMode::Exclusive => LockMode::Exclusive,
            LockTableMode::AccessExclusive => LockMode::AccessExclusive,
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

/// The strongest lock the statement takes on each relation it names; `text` is the whole file the
/// statement's tokens point into, so that statements sqlparser could not parse are read from their
/// tokens.
pub fn statement_locks(text: &str, statement: &Statement, catalog: &Catalog) -> Vec<PredictedLock> {
    let mut locks = Locks::default();
    match statement.ast() {
        Some(ast) => from_ast(statement, ast, catalog, &mut locks),
        None => from_tokens(&Words::of(text, statement), statement, catalog, &mut locks),
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

    /// A lock on an index the statement names, unless the index is new (nobody else uses it yet).
    fn take_index(&mut self, catalog: &Catalog, index: &ObjectName, mode: LockMode) {
        if !catalog.is_new_index(index) {
            self.take(index, mode);
        }
    }
}

fn from_ast(statement: &Statement, ast: &Ast, catalog: &Catalog, locks: &mut Locks) {
    use LockMode::*;
    match ast {
        Ast::CreateIndex(index) => {
            if let Some(table) = ObjectName::from_ast(&index.table_name) {
                create_index(
                    catalog,
                    &table,
                    index.concurrently,
                    statement.class.on_only,
                    locks,
                );
            }
        }
        Ast::AlterTable(alter) => {
            let Some(table) = ObjectName::from_ast(&alter.name) else {
                return;
            };
            for operation in &alter.operations {
                alter_table_operation(catalog, &table, operation, locks);
            }
        }
        Ast::CreateTable(create) => create_table(create, locks),
        // Replacing an existing view's definition takes ACCESS EXCLUSIVE on the view (measured on
        // PostgreSQL 15): every query reading it waits.
        Ast::CreateView(view) if view.or_replace && !view.materialized => {
            if let Some(name) = ObjectName::from_ast(&view.name) {
                if catalog
                    .relation(&name)
                    .is_some_and(|r| r.kind == RelationKind::View)
                {
                    locks.take(&name, AccessExclusive);
                }
            }
        }
        Ast::Drop {
            object_type,
            names,
            cascade,
            ..
        } => {
            for name in names.iter().filter_map(ObjectName::from_ast) {
                match object_type {
                    ObjectType::Table | ObjectType::MaterializedView => {
                        locks.take(&name, AccessExclusive);
                        // Dropping a table drops its foreign keys, which locks the tables they
                        // reference; CASCADE also drops the foreign keys that reference it.
                        for referenced in referenced_tables(catalog, &name) {
                            locks.take(&referenced, AccessExclusive);
                        }
                        if *cascade {
                            for referencing in referencing_tables(catalog, &name) {
                                locks.take(&referencing, AccessExclusive);
                            }
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
                let mode = if refresh.concurrently {
                    Exclusive
                } else {
                    AccessExclusive
                };
                locks.take(&name, mode);
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
                locks.take_index(catalog, &name, ShareUpdateExclusive);
            }
        }
        Ast::CreatePolicy(policy) => take_named(&policy.table_name, AccessExclusive, locks),
        Ast::AlterPolicy(policy) => take_named(&policy.table_name, AccessExclusive, locks),
        Ast::DropPolicy(policy) => take_named(&policy.table_name, AccessExclusive, locks),
        Ast::Comment {
            object_type,
            object_name,
            ..
        } => comment(object_type, object_name, locks),
        Ast::Lock(lock) => {
            let mode = lock
                .lock_mode
                .as_ref()
                .map_or(AccessExclusive, LockMode::from_ast);
            for target in &lock.tables {
                take_named(&target.name, mode, locks);
            }
        }
        Ast::Vacuum(vacuum) => {
            if let Some(table) = &vacuum.table_name {
                take_named(table, vacuum_mode(vacuum.full), locks);
            }
        }
        Ast::Analyze(analyze) => {
            if let Some(table) = &analyze.table_name {
                take_named(table, ShareUpdateExclusive, locks);
            }
        }
        Ast::Insert(insert) => {
            if let TableObject::TableName(name) = &insert.table {
                take_named(name, RowExclusive, locks);
            }
        }
        Ast::Update(update) => take_joined(&update.table, RowExclusive, locks),
        Ast::Delete(delete) => {
            let (FromTable::WithFromKeyword(tables) | FromTable::WithoutKeyword(tables)) =
                &delete.from;
            for table in tables {
                take_joined(table, RowExclusive, locks);
            }
        }
        _ => {}
    }
}

fn take_named(name: &sqlparser::ast::ObjectName, mode: LockMode, locks: &mut Locks) {
    if let Some(name) = ObjectName::from_ast(name) {
        locks.take(&name, mode);
    }
}

/// The target of an `UPDATE` or `DELETE` (not the tables it only reads).
fn take_joined(table: &TableWithJoins, mode: LockMode, locks: &mut Locks) {
    if let TableFactor::Table { name, .. } = &table.relation {
        take_named(name, mode, locks);
    }
}

/// `CREATE INDEX`: SHARE on the table, and on every partition of a partitioned table (each gets
/// its own index built); `ON ONLY` locks the parent alone.
fn create_index(
    catalog: &Catalog,
    table: &ObjectName,
    concurrently: bool,
    on_only: bool,
    locks: &mut Locks,
) {
    let mode = if concurrently {
        LockMode::ShareUpdateExclusive
    } else {
        LockMode::Share
    };
    locks.take(table, mode);
    if !on_only && !concurrently {
        for partition in catalog.partitions_of(table) {
            locks.take(&partition.name, mode);
        }
    }
}

fn vacuum_mode(full: bool) -> LockMode {
    if full {
        LockMode::AccessExclusive
    } else {
        LockMode::ShareUpdateExclusive
    }
}

/// `COMMENT ON TABLE | MATERIALIZED VIEW | COLUMN`: SHARE UPDATE EXCLUSIVE on the relation.
fn comment(object_type: &CommentObject, name: &sqlparser::ast::ObjectName, locks: &mut Locks) {
    let relation = match object_type {
        CommentObject::Table | CommentObject::MaterializedView => ObjectName::from_ast(name),
        // `table.column` or `schema.table.column`: the relation is what precedes the column.
        CommentObject::Column => {
            let mut parts = name.0.clone();
            parts.pop();
            ObjectName::from_ast(&sqlparser::ast::ObjectName(parts))
        }
        _ => None,
    };
    if let Some(relation) = relation {
        locks.take(&relation, LockMode::ShareUpdateExclusive);
    }
}

fn alter_table_operation(
    catalog: &Catalog,
    table: &ObjectName,
    operation: &AlterTableOperation,
    locks: &mut Locks,
) {
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
        AlterTableOperation::AlterColumn {
            column_name,
            op: AlterColumnOperation::SetDataType { .. },
        } => {
            locks.take(table, AccessExclusive);
            // The foreign keys on the column (either side) are dropped and re-created, which takes
            // ACCESS EXCLUSIVE on the table at their other end (measured on PostgreSQL 15).
            for other in foreign_key_partners(catalog, table, &fold_ident(column_name)) {
                locks.take(&other, AccessExclusive);
            }
        }
        AlterTableOperation::ValidateConstraint { name } => {
            locks.take(table, ShareUpdateExclusive);
            // Validating a foreign key reads the referenced table under ROW SHARE.
            if let Some(referenced) = foreign_key_target(catalog, table, &fold_ident(name)) {
                locks.take(&referenced, RowShare);
            }
        }
        AlterTableOperation::DropConstraint { name, .. } => {
            locks.take(table, AccessExclusive);
            // Dropping a foreign key removes its triggers from the referenced table too.
            if let Some(referenced) = foreign_key_target(catalog, table, &fold_ident(name)) {
                locks.take(&referenced, AccessExclusive);
            }
        }
        AlterTableOperation::SetOptionsParens { .. } | AlterTableOperation::ResetOptions { .. } => {
            locks.take(table, ShareUpdateExclusive)
        }
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
            detach_partition(
                table,
                ObjectName::from_ast(partition),
                mode.is_some(),
                locks,
            );
        }
        _ => locks.take(table, AccessExclusive),
    }
}

/// `DETACH PARTITION`: ACCESS EXCLUSIVE on the parent and the partition. CONCURRENTLY (and
/// FINALIZE) take only SHARE UPDATE EXCLUSIVE on the parent, but the second phase still waits for
/// ACCESS EXCLUSIVE on the partition.
fn detach_partition(
    table: &ObjectName,
    partition: Option<ObjectName>,
    concurrently: bool,
    locks: &mut Locks,
) {
    let parent_mode = if concurrently {
        LockMode::ShareUpdateExclusive
    } else {
        LockMode::AccessExclusive
    };
    locks.take(table, parent_mode);
    if let Some(partition) = partition {
        locks.take(&partition, LockMode::AccessExclusive);
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

/// The table a foreign key constraint of `table` (its case-folded name) references, when the
/// catalog knows the constraint.
fn foreign_key_target(
    catalog: &Catalog,
    table: &ObjectName,
    constraint: &str,
) -> Option<ObjectName> {
    match &catalog.constraint(table, constraint)?.kind {
        ConstraintKind::ForeignKey { references, .. } => Some(references.clone()),
        _ => None,
    }
}

fn referenced_tables(catalog: &Catalog, table: &ObjectName) -> Vec<ObjectName> {
    catalog
        .constraints_of(table)
        .iter()
        .filter_map(|c| match &c.kind {
            ConstraintKind::ForeignKey { references, .. } => Some(references.clone()),
            _ => None,
        })
        .collect()
}

/// The tables at the other end of the foreign keys that `column` of `table` takes part in: those it
/// references, and those referencing it.
fn foreign_key_partners(catalog: &Catalog, table: &ObjectName, column: &str) -> Vec<ObjectName> {
    let target = catalog.resolve(table);
    let column = column.to_owned();
    let mut partners: Vec<ObjectName> = catalog
        .constraints_of(table)
        .iter()
        .filter_map(|c| match &c.kind {
            ConstraintKind::ForeignKey {
                columns,
                references,
                ..
            } if columns.contains(&column) => Some(references.clone()),
            _ => None,
        })
        .collect();
    for relation in catalog
        .relations_referencing(&target)
        .filter(|r| r.name != target)
    {
        for constraint in &relation.constraints {
            if let ConstraintKind::ForeignKey {
                references,
                referenced_columns,
                ..
            } = &constraint.kind
            {
                if catalog.resolve(references) == target && referenced_columns.contains(&column) {
                    partners.push(relation.name.clone());
                }
            }
        }
    }
    partners
}

/// The tables with a foreign key that references `table`.
fn referencing_tables(catalog: &Catalog, table: &ObjectName) -> Vec<ObjectName> {
    let target = catalog.resolve(table);
    catalog
        .relations_referencing(&target)
        .filter(|relation| {
            relation.constraints.iter().any(|c| {
                matches!(&c.kind, ConstraintKind::ForeignKey { references, .. }
                    if catalog.resolve(references) == target)
            })
        })
        .filter(|relation| relation.name != target)
        .map(|relation| relation.name.clone())
        .collect()
}

/// The relations with a column of the domain `domain` (or an array of it), as far as the catalog
/// knows their columns' types: the tables `ALTER DOMAIN … ADD CONSTRAINT` and `VALIDATE CONSTRAINT`
/// lock in SHARE mode and scan.
pub(crate) fn tables_using_domain(catalog: &Catalog, domain: &ObjectName) -> Vec<ObjectName> {
    let domain = catalog.resolve(domain);
    let is_domain = |data_type: &DataType| {
        user_type_name(data_type).is_some_and(|name| catalog.resolve(&name) == domain)
    };
    let mut tables: Vec<ObjectName> = catalog
        .relations()
        .filter(|r| {
            matches!(
                r.kind,
                RelationKind::Table
                    | RelationKind::PartitionedTable
                    | RelationKind::MaterializedView
            )
        })
        .filter(|r| {
            r.columns
                .iter()
                .any(|c| c.data_type.as_ref().is_some_and(is_domain))
        })
        .map(|r| r.name.clone())
        .collect();
    tables.sort();
    tables
}

/// Locks of statements sqlparser could not parse, from their tokens.
fn from_tokens(words: &Words, statement: &Statement, catalog: &Catalog, locks: &mut Locks) {
    use LockMode::*;
    let class = &statement.class;
    match class.kind {
        Kind::AlterTable => {
            let Some(table) = &class.target else {
                return;
            };
            for clause in words.alter_table_clauses() {
                alter_table_clause(words, clause, catalog, table, locks);
            }
        }
        Kind::Reindex => reindex(words, catalog, locks),
        Kind::Cluster => {
            if let Some(table) = words.cluster_table() {
                locks.take(&table, AccessExclusive);
            }
        }
        Kind::Vacuum => {
            let (full, tables) = words.vacuum();
            for table in tables {
                locks.take(&table, vacuum_mode(full));
            }
        }
        Kind::CreateTrigger | Kind::DropTrigger => {
            let mode = if class.kind == Kind::CreateTrigger {
                ShareRowExclusive
            } else {
                AccessExclusive
            };
            if let Some(table) = words.name_after_top_level("on") {
                locks.take(&table, mode);
            }
        }
        Kind::AlterType if words.is(1, "domain") => {
            if let (Some(domain), Some(DomainChange { scans: true, .. })) =
                (&class.target, words.domain_change())
            {
                for table in tables_using_domain(catalog, domain) {
                    locks.take(&table, Share);
                }
            }
        }
        Kind::Other if words.is(0, "create") && words.is(1, "statistics") => {
            if let Some(table) = words.name_after_top_level("from") {
                locks.take(&table, ShareUpdateExclusive);
            }
        }
        Kind::AlterIndex => {
            // ALTER INDEX … SET TABLESPACE copies the index under ACCESS EXCLUSIVE.
            if let Some(index) = &class.target {
                let mode = if words
                    .find_in(0..words.len(), &["set", "tablespace"])
                    .is_some()
                {
                    AccessExclusive
                } else {
                    ShareUpdateExclusive
                };
                locks.take_index(catalog, index, mode);
            }
        }
        _ => from_class(statement, catalog, locks),
    }
}

/// One clause of an unparsed `ALTER TABLE`, read from its leading words.
fn alter_table_clause(
    words: &Words,
    clause: Range<usize>,
    catalog: &Catalog,
    table: &ObjectName,
    locks: &mut Locks,
) {
    use LockMode::*;
    let at = clause.start;
    let seq = |keywords: &[&str]| words.seq_at(at, keywords);
    // ALTER [COLUMN] c SET STATISTICS | SET (…) | RESET (…)
    let column_option = {
        let mut i = at + 1;
        if words.is(i, "column") {
            i += 1;
        }
        words.is(at, "alter")
            && (words.seq_at(i + 1, &["set", "statistics"])
                || ((words.is(i + 1, "set") || words.is(i + 1, "reset")) && words.is_lparen(i + 2)))
    };
    let mode = if column_option
        || ((seq(&["set"]) || seq(&["reset"])) && words.is_lparen(at + 1))
        || seq(&["validate", "constraint"])
        || seq(&["cluster", "on"])
        || seq(&["set", "without", "cluster"])
    {
        ShareUpdateExclusive
    } else if seq(&["enable"]) || seq(&["disable"]) {
        if words.find_in(clause.clone(), &["trigger"]).is_some() {
            ShareRowExclusive
        } else {
            AccessExclusive
        }
    } else if seq(&["attach", "partition"]) {
        if let Some(partition) = words.name_at(at + 2) {
            locks.take(&partition, AccessExclusive);
        }
        ShareUpdateExclusive
    } else if seq(&["detach", "partition"]) {
        let concurrently = words.find_in(clause.clone(), &["concurrently"]).is_some()
            || words.find_in(clause.clone(), &["finalize"]).is_some();
        detach_partition(table, words.name_at(at + 2), concurrently, locks);
        return;
    } else if seq(&["add"]) && words.find_in(clause.clone(), &["foreign", "key"]).is_some() {
        if let Some(references) = words.find_in(clause.clone(), &["references"]) {
            if let Some(referenced) = words.name_at(references + 1) {
                locks.take(&referenced, ShareRowExclusive);
            }
        }
        ShareRowExclusive
    } else {
        if seq(&["drop", "constraint"]) {
            let mut name_at = at + 2;
            if words.seq_at(name_at, &["if", "exists"]) {
                name_at += 2;
            }
            let referenced = words
                .name_at(name_at)
                .and_then(|c| foreign_key_target(catalog, table, &c.name));
            if let Some(referenced) = referenced {
                locks.take(&referenced, AccessExclusive);
            }
        } else if seq(&["add"]) {
            // ADD COLUMN … REFERENCES other: SHARE ROW EXCLUSIVE on the referenced table.
            if let Some(references) = words.find_in(clause.clone(), &["references"]) {
                if let Some(referenced) = words.name_at(references + 1) {
                    locks.take(&referenced, ShareRowExclusive);
                }
            }
        }
        AccessExclusive
    };
    locks.take(table, mode);
}

/// `REINDEX INDEX` locks the table SHARE and the index ACCESS EXCLUSIVE; `REINDEX TABLE` the table
/// SHARE (and each of its indexes in turn). SCHEMA, DATABASE and SYSTEM process many tables one
/// after the other, each in its own transaction: no single relation the model can name.
fn reindex(words: &Words, catalog: &Catalog, locks: &mut Locks) {
    let Some(target) = words.reindex_target() else {
        return;
    };
    let mode = if target.concurrently {
        LockMode::ShareUpdateExclusive
    } else {
        LockMode::Share
    };
    match target.kind {
        ReindexKind::Index => {
            let Some(index) = &target.name else {
                return;
            };
            if let Some(table) = catalog.index(index).map(|i| i.table.clone()) {
                locks.take(&table, mode);
            }
            let index_mode = if target.concurrently {
                LockMode::ShareUpdateExclusive
            } else {
                LockMode::AccessExclusive
            };
            locks.take_index(catalog, index, index_mode);
        }
        ReindexKind::Table => {
            if let Some(table) = &target.name {
                locks.take(table, mode);
            }
        }
        ReindexKind::Schema | ReindexKind::Database | ReindexKind::System => {}
    }
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
        Kind::CreateIndex => {
            create_index(catalog, target, concurrent, class.on_only, locks);
            return;
        }
        Kind::Reindex if concurrent => ShareUpdateExclusive,
        Kind::Reindex => Share,
        Kind::DropIndex => {
            let table = catalog
                .index(target)
                .map_or(target.clone(), |i| i.table.clone());
            let mode = if concurrent {
                ShareUpdateExclusive
            } else {
                AccessExclusive
            };
            locks.take(&table, mode);
            return;
        }
        Kind::AlterIndex => {
            locks.take_index(catalog, target, ShareUpdateExclusive);
            return;
        }
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

/// What `REINDEX` works on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReindexKind {
    Index,
    Table,
    Schema,
    Database,
    System,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ReindexTarget {
    pub kind: ReindexKind,
    /// The index, table, schema or database (optional for DATABASE and SYSTEM since PG15).
    pub name: Option<ObjectName>,
    /// `CONCURRENTLY` after the kind, or in the option list (PG14+).
    pub concurrently: bool,
}

/// What an `ALTER DOMAIN` changes, as far as locks and scans go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DomainChange {
    /// Token index of the clause (`ADD`, `VALIDATE`, `SET`).
    pub at: usize,
    /// The statement checks every stored value of the domain: `ADD CONSTRAINT` without `NOT VALID`,
    /// `VALIDATE CONSTRAINT`, `SET NOT NULL`.
    pub scans: bool,
    /// `VALIDATE CONSTRAINT`.
    pub validate: bool,
    /// The constraint's name, when the statement gives one.
    pub constraint: Option<String>,
}

/// A statement's significant tokens read as words: for statements sqlparser cannot parse, and for
/// clauses whose leading keywords say all a rule needs.
pub(crate) struct Words<'a> {
    text: &'a str,
    tokens: &'a [Token],
}

impl<'a> Words<'a> {
    pub fn of(text: &'a str, statement: &'a Statement) -> Words<'a> {
        Words {
            text,
            tokens: &statement.tokens,
        }
    }

    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    /// The text of token `i` ("" past the end).
    pub fn raw(&self, i: usize) -> &'a str {
        self.tokens.get(i).map_or("", |t| &self.text[t.range()])
    }

    /// File offset where token `i` starts.
    pub fn offset(&self, i: usize) -> Option<usize> {
        self.tokens.get(i).map(|t| t.range().start)
    }

    /// The SQL text the tokens in `range` span, comments between them included.
    pub fn text_of(&self, range: Range<usize>) -> &'a str {
        match (
            self.tokens.get(range.start),
            range
                .end
                .checked_sub(1)
                .and_then(|last| self.tokens.get(last)),
        ) {
            (Some(first), Some(last)) if range.start < range.end => {
                &self.text[first.range().start..last.range().end]
            }
            _ => "",
        }
    }

    /// Token `i` is the (unquoted) keyword `keyword`.
    pub fn is(&self, i: usize, keyword: &str) -> bool {
        self.tokens.get(i).is_some_and(|t| {
            t.kind == TokenKind::Word && self.text[t.range()].eq_ignore_ascii_case(keyword)
        })
    }

    pub fn is_lparen(&self, i: usize) -> bool {
        self.tokens
            .get(i)
            .is_some_and(|t| t.kind == TokenKind::LParen)
    }

    pub fn kind(&self, i: usize) -> Option<TokenKind> {
        self.tokens.get(i).map(|t| t.kind)
    }

    /// The keywords `keywords` start at token `i`.
    pub fn seq_at(&self, i: usize, keywords: &[&str]) -> bool {
        keywords
            .iter()
            .enumerate()
            .all(|(k, kw)| self.is(i + k, kw))
    }

    /// The first token index in `range` where the keyword sequence starts.
    pub fn find_in(&self, range: Range<usize>, keywords: &[&str]) -> Option<usize> {
        range.into_iter().find(|&i| self.seq_at(i, keywords))
    }

    /// The index just past the parenthesized group that opens at `i`, or `i` when none does.
    pub fn skip_parens(&self, i: usize) -> usize {
        if self.is_lparen(i) {
            matching_paren(self.tokens, i).map_or(self.len(), |close| close + 1)
        } else {
            i
        }
    }

    /// The (qualified) name that starts at token `i`.
    pub fn name_at(&self, i: usize) -> Option<ObjectName> {
        ObjectName::from_tokens(self.text, self.tokens.get(i..)?)
    }

    /// Token index just past the (qualified) name that starts at `i`.
    pub fn after_name(&self, i: usize) -> usize {
        let mut at = i;
        while matches!(
            self.kind(at),
            Some(TokenKind::Word | TokenKind::QuotedIdent)
        ) {
            at += 1;
            if self.raw(at) == "." {
                at += 1;
            } else {
                break;
            }
        }
        at
    }

    /// The name after the first top-level (not parenthesized) `keyword`.
    pub fn name_after_top_level(&self, keyword: &str) -> Option<ObjectName> {
        let at = self.top_level().find(|&i| self.is(i, keyword))?;
        let mut name = at + 1;
        if self.is(name, "only") {
            name += 1;
        }
        self.name_at(name)
    }

    /// Indexes of the tokens outside any parentheses.
    fn top_level(&self) -> impl Iterator<Item = usize> + '_ {
        let mut depth = 0usize;
        self.tokens.iter().enumerate().filter_map(move |(i, t)| {
            let outside = depth == 0;
            match t.kind {
                TokenKind::LParen => depth += 1,
                TokenKind::RParen => depth = depth.saturating_sub(1),
                _ => {}
            }
            (outside && t.kind != TokenKind::LParen).then_some(i)
        })
    }

    /// The comma-separated clauses of `ALTER TABLE [IF EXISTS] [ONLY] name [*] clause, clause, …`,
    /// as token ranges.
    pub fn alter_table_clauses(&self) -> Vec<Range<usize>> {
        let mut at = 2;
        if self.seq_at(at, &["if", "exists"]) {
            at += 2;
        }
        if self.is(at, "only") {
            at += 1;
        }
        at = self.after_name(at);
        if self.raw(at) == "*" {
            at += 1;
        }
        self.comma_separated(at..self.len())
    }

    /// Splits `range` at its top-level commas.
    pub fn comma_separated(&self, range: Range<usize>) -> Vec<Range<usize>> {
        let mut clauses = Vec::new();
        let mut start = range.start;
        let mut depth = 0usize;
        for i in range.clone() {
            match self.kind(i) {
                Some(TokenKind::LParen) => depth += 1,
                Some(TokenKind::RParen) => depth = depth.saturating_sub(1),
                Some(TokenKind::Punct) if depth == 0 && self.raw(i) == "," => {
                    clauses.push(start..i);
                    start = i + 1;
                }
                _ => {}
            }
        }
        if start < range.end {
            clauses.push(start..range.end);
        }
        clauses
    }

    /// `REINDEX [(options)] {INDEX | TABLE | SCHEMA | DATABASE | SYSTEM} [CONCURRENTLY] [name]`.
    pub fn reindex_target(&self) -> Option<ReindexTarget> {
        if !self.is(0, "reindex") {
            return None;
        }
        let options = 1..self.skip_parens(1);
        let mut at = options.end;
        let kind = match self.raw(at).to_ascii_lowercase().as_str() {
            "index" => ReindexKind::Index,
            "table" => ReindexKind::Table,
            "schema" => ReindexKind::Schema,
            "database" => ReindexKind::Database,
            "system" => ReindexKind::System,
            _ => return None,
        };
        at += 1;
        let mut concurrently = self.option_enabled(options, "concurrently");
        if self.is(at, "concurrently") {
            concurrently = true;
            at += 1;
        }
        Some(ReindexTarget {
            kind,
            name: self.name_at(at),
            concurrently,
        })
    }

    /// `VACUUM [(options)] [FULL] [FREEZE] [VERBOSE] [ANALYZE] [table [(columns)], …]`: whether it
    /// is FULL, and the tables it names (none: every table of the database).
    pub fn vacuum(&self) -> (bool, Vec<ObjectName>) {
        if !self.is(0, "vacuum") {
            return (false, Vec::new());
        }
        let options = 1..self.skip_parens(1);
        let mut full = self.option_enabled(options.clone(), "full");
        let mut at = options.end;
        while ["full", "freeze", "verbose", "analyze", "analyse"]
            .iter()
            .any(|kw| self.is(at, kw))
        {
            full |= self.is(at, "full");
            at += 1;
        }
        let tables = self
            .comma_separated(at..self.len())
            .into_iter()
            .filter_map(|clause| self.name_at(clause.start))
            .collect();
        (full, tables)
    }

    /// `CLUSTER [(options)] [VERBOSE] table [USING index]`, or the old `CLUSTER index ON table`.
    pub fn cluster_table(&self) -> Option<ObjectName> {
        if !self.is(0, "cluster") {
            return None;
        }
        let mut at = self.skip_parens(1);
        if self.is(at, "verbose") {
            at += 1;
        }
        let first = self.name_at(at)?;
        let after = self.after_name(at);
        if self.is(after, "on") {
            return self.name_at(after + 1);
        }
        Some(first)
    }

    /// `ALTER DOMAIN name {ADD [CONSTRAINT c] … [NOT VALID] | VALIDATE CONSTRAINT c | SET NOT NULL}`;
    /// `None` for the other forms (RENAME, DROP, SET DEFAULT, OWNER, …).
    pub fn domain_change(&self) -> Option<DomainChange> {
        if !self.seq_at(0, &["alter", "domain"]) {
            return None;
        }
        let at = self.after_name(2);
        let named = |i: usize| self.name_at(i).map(|n| n.name);
        if self.is(at, "add") {
            let not_valid = (at..self.len()).any(|i| self.seq_at(i, &["not", "valid"]));
            let constraint = self
                .is(at + 1, "constraint")
                .then(|| named(at + 2))
                .flatten();
            return Some(DomainChange {
                at,
                scans: !not_valid,
                validate: false,
                constraint,
            });
        }
        if self.seq_at(at, &["validate", "constraint"]) {
            return Some(DomainChange {
                at,
                scans: true,
                validate: true,
                constraint: named(at + 2),
            });
        }
        if self.seq_at(at, &["set", "not", "null"]) {
            return Some(DomainChange {
                at,
                scans: true,
                validate: false,
                constraint: None,
            });
        }
        None
    }

    /// Whether `option` is switched on in a parenthesized option list such as `(FULL, VERBOSE
    /// false)`: present and not followed by a false value.
    fn option_enabled(&self, options: Range<usize>, option: &str) -> bool {
        options.into_iter().any(|i| {
            self.is(i, option)
                && !["false", "off", "0"]
                    .iter()
                    .any(|off| self.raw(i + 1).eq_ignore_ascii_case(off))
        })
    }
}

#[cfg(test)]
mod tests {
    //! The lock model against `pg15-lock-probe.txt`: each case is a probe statement and the locks
    //! the probe measured on the relations the model covers (tables, partitions, materialized
    //! views, and an index the statement names). What the probe shows beyond that is noted.

    use super::*;
    use crate::sql::parse_text;
    use LockMode::*;

    /// The probe's setup (`pg15-lock-probe.txt`), plus the objects its preludes create.
    const SETUP: &str = "\
        CREATE TABLE parent(id bigint PRIMARY KEY);
        CREATE TABLE t(id bigint PRIMARY KEY, a int, b text, c varchar(20), ts timestamp, p bigint, n numeric(10,2), j jsonb);
        CREATE INDEX t_b_idx ON t(b);
        CREATE INDEX t_c_idx ON t(c);
        CREATE TYPE mood AS ENUM ('sad','ok');
        CREATE TABLE pt(id int, k int) PARTITION BY RANGE (k);
        CREATE TABLE pt_1 PARTITION OF pt FOR VALUES FROM (0) TO (100);
        CREATE TABLE pt_2 (id int, k int);
        CREATE MATERIALIZED VIEW mv AS SELECT id, a FROM t;
        CREATE UNIQUE INDEX mv_id ON mv(id);
        CREATE TABLE child(id bigint PRIMARY KEY, parent_id bigint);
        ALTER TABLE t ADD CONSTRAINT t_a_chk CHECK (a > 0) NOT VALID;
        ALTER TABLE child ADD CONSTRAINT child_fk_nv FOREIGN KEY (parent_id) REFERENCES parent(id) NOT VALID;
        CREATE DOMAIN posint AS int;
        ALTER TABLE t ADD COLUMN x posint;";

    fn setup() -> Catalog {
        let mut catalog = Catalog::default();
        for statement in &parse_text(SETUP).statements {
            catalog.apply(SETUP, statement);
        }
        catalog
    }

    fn locks_of(catalog: &Catalog, sql: &str) -> Vec<(String, LockMode)> {
        let parsed = parse_text(sql);
        let mut locks: Vec<(String, LockMode)> = parsed
            .statements
            .iter()
            .flat_map(|s| statement_locks(sql, s, catalog))
            .map(|lock| (catalog.resolve(&lock.relation).name, lock.mode))
            .collect();
        locks.sort();
        locks
    }

    #[test]
    fn agrees_with_the_postgres_15_probe() {
        let catalog = setup();
        let cases: &[(&str, &[(&str, LockMode)])] = &[
            ("ALTER TABLE t ADD COLUMN y int", &[("t", AccessExclusive)]),
            (
                "ALTER TABLE child ADD COLUMN y bigint REFERENCES parent(id)",
                &[("child", AccessExclusive), ("parent", ShareRowExclusive)],
            ),
            ("ALTER TABLE t ALTER COLUMN a SET NOT NULL", &[("t", AccessExclusive)]),
            ("ALTER TABLE t ALTER COLUMN c TYPE varchar(100)", &[("t", AccessExclusive)]),
            ("ALTER TABLE t ADD CONSTRAINT x_chk CHECK (a > -1) NOT VALID", &[("t", AccessExclusive)]),
            ("ALTER TABLE t VALIDATE CONSTRAINT t_a_chk", &[("t", ShareUpdateExclusive)]),
            (
                "ALTER TABLE child ADD CONSTRAINT x_fk FOREIGN KEY (parent_id) REFERENCES parent(id)",
                &[("child", ShareRowExclusive), ("parent", ShareRowExclusive)],
            ),
            (
                "ALTER TABLE child VALIDATE CONSTRAINT child_fk_nv",
                &[("child", ShareUpdateExclusive), ("parent", RowShare)],
            ),
            ("ALTER TABLE t ADD CONSTRAINT x_uq UNIQUE (a)", &[("t", AccessExclusive)]),
            ("ALTER TABLE t ADD CONSTRAINT x_ex EXCLUDE USING btree (a WITH =)", &[("t", AccessExclusive)]),
            ("ALTER TABLE t DROP CONSTRAINT t_a_chk", &[("t", AccessExclusive)]),
            (
                "ALTER TABLE child DROP CONSTRAINT child_fk_nv",
                &[("child", AccessExclusive), ("parent", AccessExclusive)],
            ),
            ("CREATE INDEX x_idx ON t(a)", &[("t", Share)]),
            ("CREATE INDEX CONCURRENTLY x_idx ON t(a)", &[("t", ShareUpdateExclusive)]),
            ("DROP INDEX t_b_idx", &[("t", AccessExclusive)]),
            ("DROP INDEX CONCURRENTLY t_b_idx", &[("t", ShareUpdateExclusive)]),
            ("REINDEX INDEX t_b_idx", &[("t", Share), ("t_b_idx", AccessExclusive)]),
            (
                "REINDEX INDEX CONCURRENTLY t_b_idx",
                &[("t", ShareUpdateExclusive), ("t_b_idx", ShareUpdateExclusive)],
            ),
            // The probe also shows ACCESS EXCLUSIVE on each index of t, taken one after the other.
            ("REINDEX TABLE t", &[("t", Share)]),
            ("REINDEX SCHEMA public", &[]),
            ("ALTER INDEX t_b_idx RENAME TO t_b_idx2", &[("t_b_idx", ShareUpdateExclusive)]),
            ("ALTER INDEX t_b_idx SET (fillfactor = 80)", &[("t_b_idx", ShareUpdateExclusive)]),
            ("ALTER INDEX t_b_idx SET TABLESPACE pg_default", &[("t_b_idx", AccessExclusive)]),
            (
                "CREATE TRIGGER trg BEFORE INSERT ON t FOR EACH ROW EXECUTE FUNCTION f()",
                &[("t", ShareRowExclusive)],
            ),
            ("ALTER TABLE t DISABLE TRIGGER USER", &[("t", ShareRowExclusive)]),
            ("DROP TRIGGER trg ON t", &[("t", AccessExclusive)]),
            ("ALTER TABLE t ALTER COLUMN a SET STATISTICS 500", &[("t", ShareUpdateExclusive)]),
            ("ALTER TABLE t SET (fillfactor = 70)", &[("t", ShareUpdateExclusive)]),
            ("ALTER TABLE t SET (autovacuum_enabled = false)", &[("t", ShareUpdateExclusive)]),
            ("ALTER TABLE t ALTER COLUMN b SET STORAGE EXTERNAL", &[("t", AccessExclusive)]),
            ("ALTER TABLE t SET UNLOGGED", &[("t", AccessExclusive)]),
            ("ALTER TABLE t SET TABLESPACE pg_default", &[("t", AccessExclusive)]),
            ("ALTER TABLE t REPLICA IDENTITY FULL", &[("t", AccessExclusive)]),
            ("ALTER TABLE t ENABLE ROW LEVEL SECURITY", &[("t", AccessExclusive)]),
            ("CREATE POLICY pol ON t USING (true)", &[("t", AccessExclusive)]),
            ("CLUSTER t USING t_pkey", &[("t", AccessExclusive)]),
            ("VACUUM FULL t", &[("t", AccessExclusive)]),
            ("TRUNCATE t CASCADE", &[("t", AccessExclusive)]),
            // child itself is dropped, so the probe cannot show its lock.
            ("DROP TABLE child", &[("child", AccessExclusive), ("parent", AccessExclusive)]),
            (
                "DROP TABLE parent CASCADE",
                &[("child", AccessExclusive), ("parent", AccessExclusive)],
            ),
            ("LOCK TABLE t", &[("t", AccessExclusive)]),
            // The probe also shows ACCESS SHARE on t, read by the view's query.
            ("REFRESH MATERIALIZED VIEW mv", &[("mv", AccessExclusive)]),
            ("REFRESH MATERIALIZED VIEW CONCURRENTLY mv", &[("mv", Exclusive)]),
            ("COMMENT ON TABLE t IS 'x'", &[("t", ShareUpdateExclusive)]),
            ("CREATE STATISTICS st ON a, p FROM t", &[("t", ShareUpdateExclusive)]),
            ("ANALYZE t", &[("t", ShareUpdateExclusive)]),
            (
                "ALTER TABLE pt ATTACH PARTITION pt_2 FOR VALUES FROM (100) TO (200)",
                &[("pt", ShareUpdateExclusive), ("pt_2", AccessExclusive)],
            ),
            (
                "ALTER TABLE pt DETACH PARTITION pt_1",
                &[("pt", AccessExclusive), ("pt_1", AccessExclusive)],
            ),
            ("CREATE INDEX x_pidx ON pt(k)", &[("pt", Share), ("pt_1", Share)]),
            ("CREATE INDEX x_pidx ON ONLY pt(k)", &[("pt", Share)]),
            ("ALTER TYPE mood ADD VALUE 'happy'", &[]),
            ("ALTER TABLE child ALTER CONSTRAINT child_fk_nv DEFERRABLE", &[("child", AccessExclusive)]),
            ("ALTER DOMAIN posint ADD CONSTRAINT pos CHECK (VALUE > 0)", &[("t", Share)]),
            ("ALTER DOMAIN posint ADD CONSTRAINT pos CHECK (VALUE > 0) NOT VALID", &[]),
            ("ALTER DOMAIN posint VALIDATE CONSTRAINT pos", &[("t", Share)]),
            ("ALTER TABLE t OWNER TO r1", &[("t", AccessExclusive)]),
            ("ALTER TABLE t RENAME CONSTRAINT t_a_chk TO t_a_chk2", &[("t", AccessExclusive)]),
            ("UPDATE t SET a = a + 1", &[("t", RowExclusive)]),
            // The new table's own locks are not modelled: nobody else can see it yet.
            (
                "CREATE TABLE newt(id bigint PRIMARY KEY, parent_id bigint REFERENCES parent(id))",
                &[("parent", ShareRowExclusive)],
            ),
        ];
        let mut wrong = Vec::new();
        for (sql, expected) in cases {
            let expected: Vec<(String, LockMode)> = expected
                .iter()
                .map(|(relation, mode)| (relation.to_string(), *mode))
                .collect();
            let actual = locks_of(&catalog, sql);
            if actual != expected {
                wrong.push(format!(
                    "{sql}\n  expected {expected:?}\n  model    {actual:?}"
                ));
            }
        }
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }

    #[test]
    fn the_detached_partition_waits_for_access_exclusive_even_concurrently() {
        let catalog = setup();
        assert_eq!(
            locks_of(
                &catalog,
                "ALTER TABLE pt DETACH PARTITION pt_1 CONCURRENTLY"
            ),
            [
                ("pt".to_owned(), ShareUpdateExclusive),
                ("pt_1".to_owned(), AccessExclusive)
            ]
        );
    }

    #[test]
    fn reads_reindex_vacuum_and_cluster() {
        let words = |sql: &'static str| parse_text(sql).statements.remove(0);
        let reindex = words("REINDEX (VERBOSE, CONCURRENTLY) TABLE public.users");
        let target = Words::of(
            "REINDEX (VERBOSE, CONCURRENTLY) TABLE public.users",
            &reindex,
        )
        .reindex_target()
        .unwrap();
        assert_eq!(target.kind, ReindexKind::Table);
        assert!(target.concurrently);
        assert_eq!(target.name.unwrap().to_string(), "public.users");

        let sql = "VACUUM (FULL, ANALYZE) a, b (x)";
        let vacuum = words(sql);
        let (full, tables) = Words::of(sql, &vacuum).vacuum();
        assert!(full);
        assert_eq!(tables.len(), 2);
        let sql = "VACUUM (FULL false) a";
        let vacuum = words(sql);
        assert!(!Words::of(sql, &vacuum).vacuum().0);

        let sql = "CLUSTER users_pkey ON users";
        let cluster = words(sql);
        assert_eq!(
            Words::of(sql, &cluster)
                .cluster_table()
                .unwrap()
                .to_string(),
            "users"
        );
    }
}
