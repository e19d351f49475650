//! The catalog model every rule asks about: which relations, columns, indexes, constraints, types and
//! sequences exist, and which of them the migration under review created.
//!
//! Without a shadow database it is built by replaying the history's DDL statically (best effort).
//! "Created in this migration" is answered here, once, from each object's [`Origin`].

mod replay;

use std::collections::HashMap;

use sqlparser::ast::DataType;

use crate::sql::ObjectName;

/// Which migration created an object: migrations are numbered in the order they are replayed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Origin(pub u32);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelationKind {
    Table,
    PartitionedTable,
    View,
    MaterializedView,
    ForeignTable,
}

#[derive(Debug, Clone)]
pub struct Column {
    /// Case-folded name.
    pub name: String,
    /// The declared type; `None` when the model could not tell (e.g. a column from `LIKE` or `AS SELECT`).
    pub data_type: Option<DataType>,
    pub not_null: bool,
    /// The default expression as SQL text.
    pub default: Option<String>,
    /// `GENERATED … AS IDENTITY`.
    pub identity: bool,
    /// `GENERATED ALWAYS AS (…) STORED`.
    pub generated: bool,
    pub origin: Origin,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConstraintKind {
    PrimaryKey { columns: Vec<String> },
    Unique { columns: Vec<String> },
    Check { expression: String },
    ForeignKey {
        columns: Vec<String>,
        references: ObjectName,
        referenced_columns: Vec<String>,
    },
    Exclude,
}

#[derive(Debug, Clone)]
pub struct Constraint {
    /// The constraint's name, given or as PostgreSQL would generate it (`<table>_<col>_fkey`, …).
    pub name: String,
    pub kind: ConstraintKind,
    /// False while the constraint is NOT VALID.
    pub validated: bool,
    pub origin: Origin,
}

#[derive(Debug, Clone)]
pub struct Relation {
    /// Schema-qualified, case-folded.
    pub name: ObjectName,
    pub kind: RelationKind,
    pub columns: Vec<Column>,
    pub constraints: Vec<Constraint>,
    /// The partitioned parent, for a partition.
    pub partition_of: Option<ObjectName>,
    pub origin: Origin,
}

#[derive(Debug, Clone)]
pub struct Index {
    /// Schema-qualified (the table's schema), case-folded.
    pub name: ObjectName,
    pub table: ObjectName,
    /// Key columns by name; expressions appear as their SQL text.
    pub columns: Vec<String>,
    pub unique: bool,
    pub origin: Origin,
}

#[derive(Debug, Clone)]
pub enum TypeKind {
    Enum { values: Vec<String> },
    Domain { base: Option<DataType>, has_check: bool },
    Other,
}

#[derive(Debug, Clone)]
pub struct UserType {
    pub name: ObjectName,
    pub kind: TypeKind,
    pub origin: Origin,
}

#[derive(Debug, Clone)]
pub struct Sequence {
    pub name: ObjectName,
    pub origin: Origin,
}

/// The schema as known at one point of the replay.
#[derive(Debug, Clone)]
pub struct Catalog {
    /// The schema unqualified names resolve to (the first entry of `search_path`).
    default_schema: String,
    relations: HashMap<ObjectName, Relation>,
    indexes: HashMap<ObjectName, Index>,
    types: HashMap<ObjectName, UserType>,
    sequences: HashMap<ObjectName, Sequence>,
    /// The migration being replayed now; objects with this origin are "new".
    current: Origin,
}

impl Default for Catalog {
    fn default() -> Self {
        Catalog {
            default_schema: "public".into(),
            relations: HashMap::new(),
            indexes: HashMap::new(),
            types: HashMap::new(),
            sequences: HashMap::new(),
            current: Origin(0),
        }
    }
}

impl Catalog {
    /// Starts replaying the next migration: objects created from now on are new to it.
    pub fn begin_migration(&mut self) {
        self.current = Origin(self.current.0 + 1);
    }

    /// The name with the default schema filled in.
    pub fn resolve(&self, name: &ObjectName) -> ObjectName {
        name.qualified(&self.default_schema)
    }

    pub fn relation(&self, name: &ObjectName) -> Option<&Relation> {
        self.relations.get(&self.resolve(name))
    }

    pub fn index(&self, name: &ObjectName) -> Option<&Index> {
        self.indexes.get(&self.resolve(name))
    }

    pub fn user_type(&self, name: &ObjectName) -> Option<&UserType> {
        self.types.get(&self.resolve(name))
    }

    pub fn sequence(&self, name: &ObjectName) -> Option<&Sequence> {
        self.sequences.get(&self.resolve(name))
    }

    /// The indexes of a table.
    pub fn indexes_on<'a>(&'a self, table: &ObjectName) -> impl Iterator<Item = &'a Index> + 'a {
        let table = self.resolve(table);
        self.indexes.values().filter(move |index| index.table == table)
    }

    pub fn column(&self, table: &ObjectName, column: &str) -> Option<&Column> {
        self.relation(table)?
            .columns
            .iter()
            .find(|c| c.name == column)
    }

    /// True when the relation was created earlier in the migration being replayed. A relation the
    /// model has never heard of (a file reviewed without its history) is not new: it is treated as
    /// existing, with rows and traffic.
    pub fn is_new_relation(&self, name: &ObjectName) -> bool {
        self.relation(name).is_some_and(|r| r.origin == self.current)
    }

    /// True when the column was added earlier in the migration being replayed (to a new or an
    /// existing table).
    pub fn is_new_column(&self, table: &ObjectName, column: &str) -> bool {
        self.column(table, column)
            .is_some_and(|c| c.origin == self.current)
    }

    /// True when the index was created earlier in the migration being replayed.
    pub fn is_new_index(&self, name: &ObjectName) -> bool {
        self.index(name).is_some_and(|i| i.origin == self.current)
    }
}
