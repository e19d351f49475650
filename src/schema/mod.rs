//! The catalog model every rule asks about: which relations, columns, indexes, constraints, types and
//! sequences exist, and which of them the migration under review created.
//!
//! Without a shadow database it is built by replaying the history's DDL statically (best effort).
//! "Created in this migration" is answered here, once, from each object's [`Origin`].

mod expr;
mod indexes;
mod introspect;
pub(crate) mod naming;
mod relations;
mod replay;

use std::collections::HashMap;

use sqlparser::ast::{ArrayElemTypeDef, DataType};

use crate::sql::ObjectName;

use indexes::Indexes;
pub use introspect::introspect;
use relations::Relations;

/// Where temporary tables live; PostgreSQL looks there before the search path.
const TEMP_SCHEMA: &str = "pg_temp";

/// Which migration created an object: migrations are numbered in the order they are replayed,
/// from 1. [`Origin::BASELINE`] marks what existed before the first replayed migration: statements
/// applied before any [`Catalog::begin_migration`], and relations or columns the model only learnt
/// of from a later statement (an `ALTER TABLE` on a table whose `CREATE TABLE` it never saw).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Origin(pub u32);

impl Origin {
    /// Existed before the replayed migrations.
    pub const BASELINE: Origin = Origin(0);
}

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
    PrimaryKey {
        columns: Vec<String>,
    },
    Unique {
        columns: Vec<String>,
    },
    Check {
        expression: String,
    },
    ForeignKey {
        columns: Vec<String>,
        references: ObjectName,
        referenced_columns: Vec<String>,
        /// What follows the referenced columns, as PostgreSQL prints it: ` MATCH FULL`,
        /// ` ON DELETE CASCADE`, ` ON UPDATE …`, ` DEFERRABLE …`, or "".
        actions: String,
    },
    Exclude,
}

impl ConstraintKind {
    /// The constraint as `ADD CONSTRAINT name …` takes it (`FOREIGN KEY (a) REFERENCES s.t (b) ON
    /// DELETE CASCADE`), names quoted where SQL needs it; `None` for an exclusion constraint, whose
    /// definition the model does not keep.
    pub fn definition_sql(&self) -> Option<String> {
        let list = |columns: &[String]| {
            columns
                .iter()
                .map(|c| naming::quote_ident(c))
                .collect::<Vec<_>>()
                .join(", ")
        };
        Some(match self {
            ConstraintKind::PrimaryKey { columns } => format!("PRIMARY KEY ({})", list(columns)),
            ConstraintKind::Unique { columns } => format!("UNIQUE ({})", list(columns)),
            ConstraintKind::Check { expression } => format!("CHECK ({expression})"),
            ConstraintKind::ForeignKey {
                columns,
                references,
                referenced_columns,
                actions,
            } => format!(
                "FOREIGN KEY ({}) REFERENCES {} ({}){actions}",
                list(columns),
                naming::quote_name(references),
                list(referenced_columns)
            ),
            ConstraintKind::Exclude => return None,
        })
    }

    /// Primary key, unique and exclusion constraints are backed by an index of the same name
    /// (dropped with the constraint, renamed with it).
    pub fn has_index(&self) -> bool {
        matches!(
            self,
            ConstraintKind::PrimaryKey { .. }
                | ConstraintKind::Unique { .. }
                | ConstraintKind::Exclude
        )
    }
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
    /// In table order. May be incomplete: columns copied with `LIKE` from a table the model does
    /// not know, `SELECT *` of a view, a table the model only knows from an `ALTER TABLE`.
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
    /// The `WHERE` clause of a partial index, as SQL text.
    pub predicate: Option<String>,
    pub origin: Origin,
}

#[derive(Debug, Clone)]
pub enum TypeKind {
    Enum {
        values: Vec<String>,
    },
    Domain {
        base: Option<DataType>,
        has_check: bool,
    },
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
    /// The table and column that own it (serial and identity columns, `OWNED BY`): it is dropped
    /// with them.
    pub owned_by: Option<(ObjectName, String)>,
    pub origin: Origin,
}

/// The user-defined type a column type names (a domain, an enum, a table's row type), directly or as
/// the element type of an array; `None` for built-in types spelled as keywords.
pub fn user_type_name(data_type: &DataType) -> Option<ObjectName> {
    match data_type {
        DataType::Custom(name, _) => ObjectName::from_ast(name),
        DataType::Array(
            ArrayElemTypeDef::SquareBracket(inner, _)
            | ArrayElemTypeDef::AngleBracket(inner)
            | ArrayElemTypeDef::Parenthesis(inner)
            | ArrayElemTypeDef::ParenthesisNotNull(inner)
            | ArrayElemTypeDef::Qualified(inner, _),
        ) => user_type_name(inner),
        _ => None,
    }
}

/// The schema as known at one point of the replay.
#[derive(Debug, Clone)]
pub struct Catalog {
    /// The session's `search_path` without `"$user"` and `pg_catalog`; never empty. The first entry
    /// is where unqualified names are created.
    search_path: Vec<String>,
    relations: Relations,
    indexes: Indexes,
    types: HashMap<ObjectName, UserType>,
    sequences: HashMap<ObjectName, Sequence>,
    /// The migration being replayed now; objects with this origin are "new".
    current: Origin,
}

impl Default for Catalog {
    fn default() -> Self {
        Catalog {
            search_path: default_search_path(),
            relations: Relations::default(),
            indexes: Indexes::default(),
            types: HashMap::new(),
            sequences: HashMap::new(),
            current: Origin::BASELINE,
        }
    }
}

/// The server default `"$user", public`, as seen by a role without a schema of its own.
fn default_search_path() -> Vec<String> {
    vec!["public".to_owned()]
}

impl Catalog {
    /// Starts replaying the next migration: objects created from now on are new to it.
    ///
    /// The search path goes back to the server default: migration tools run each migration in a
    /// session of its own (or at least expect no `SET` to leak from one file into the next), so a
    /// `SET search_path` in one migration says nothing about where the next one creates objects.
    ///
    /// Temporary tables end with the previous migration's session and are forgotten.
    pub fn begin_migration(&mut self) {
        self.current = Origin(self.current.0 + 1);
        self.search_path = default_search_path();
        self.remove_schema(TEMP_SCHEMA);
    }

    /// The migration being replayed ([`Origin::BASELINE`] before the first `begin_migration`).
    pub fn current_migration(&self) -> Origin {
        self.current
    }

    /// The schema unqualified names are created in: the first entry of `search_path`.
    pub fn default_schema(&self) -> &str {
        self.search_path.first().map_or("public", String::as_str)
    }

    /// The schemas unqualified names are looked up in, in order.
    pub fn search_path(&self) -> &[String] {
        &self.search_path
    }

    /// The name with its schema filled in as PostgreSQL resolves it: the first schema of the search
    /// path holding an object of that name, else the default schema. Identifiers are truncated to
    /// 63 bytes as PostgreSQL does.
    pub fn resolve(&self, name: &ObjectName) -> ObjectName {
        self.candidates(name)
            .into_iter()
            .find(|candidate| {
                self.relations.contains_key(candidate)
                    || self.indexes.contains_key(candidate)
                    || self.types.contains_key(candidate)
                    || self.sequences.contains_key(candidate)
            })
            .unwrap_or_else(|| self.qualify(name))
    }

    /// The name with the default schema filled in: where an unqualified name is created.
    fn qualify(&self, name: &ObjectName) -> ObjectName {
        ObjectName {
            schema: Some(naming::truncate_identifier(
                name.schema.as_deref().unwrap_or(self.default_schema()),
            )),
            name: naming::truncate_identifier(&name.name),
        }
    }

    /// The qualified names an (unqualified) name may stand for, in lookup order: temporary
    /// objects first, then the search path.
    fn candidates(&self, name: &ObjectName) -> Vec<ObjectName> {
        match name.schema {
            Some(_) => vec![self.qualify(name)],
            None => std::iter::once(TEMP_SCHEMA)
                .chain(self.search_path.iter().map(String::as_str))
                .map(|schema| ObjectName {
                    schema: Some(schema.to_owned()),
                    name: naming::truncate_identifier(&name.name),
                })
                .collect(),
        }
    }

    /// The qualified name of the relation `name` resolves to, known to the model or not.
    fn relation_name(&self, name: &ObjectName) -> ObjectName {
        self.find_key(&self.relations, name)
            .unwrap_or_else(|| self.resolve(name))
    }

    /// The key under which `map` holds the object `name` resolves to.
    fn find_key<T>(&self, map: &HashMap<ObjectName, T>, name: &ObjectName) -> Option<ObjectName> {
        self.candidates(name)
            .into_iter()
            .find(|candidate| map.contains_key(candidate))
    }

    fn find<'a, T>(&self, map: &'a HashMap<ObjectName, T>, name: &ObjectName) -> Option<&'a T> {
        self.find_key(map, name).and_then(|key| map.get(&key))
    }

    pub fn relation(&self, name: &ObjectName) -> Option<&Relation> {
        self.find(&self.relations, name)
    }

    pub fn index(&self, name: &ObjectName) -> Option<&Index> {
        self.find(&self.indexes, name)
    }

    pub fn user_type(&self, name: &ObjectName) -> Option<&UserType> {
        self.find(&self.types, name)
    }

    pub fn sequence(&self, name: &ObjectName) -> Option<&Sequence> {
        self.find(&self.sequences, name)
    }

    /// The relations that may have a foreign key to `table` (a superset: each foreign key's
    /// reference is for the caller to resolve), without a scan of every relation.
    pub fn relations_referencing<'a>(
        &'a self,
        table: &ObjectName,
    ) -> impl Iterator<Item = &'a Relation> + 'a {
        self.relations.referencing_candidates(table)
    }

    /// Every relation the model knows, in no particular order.
    pub fn relations(&self) -> impl Iterator<Item = &Relation> + '_ {
        self.relations.values()
    }

    /// The columns (`schema.table.column`) for which `keep` holds, sorted: for messages that name
    /// what depends on an object (the columns of a type, the defaults that use a sequence).
    pub fn columns_where(&self, keep: impl Fn(&Column) -> bool) -> Vec<String> {
        let mut columns: Vec<String> = self
            .relations()
            .flat_map(|relation| {
                relation
                    .columns
                    .iter()
                    .filter(|column| keep(column))
                    .map(move |column| format!("{}.{}", relation.name, column.name))
            })
            .collect();
        columns.sort();
        columns
    }

    /// Every index the model knows, in no particular order.
    pub fn indexes(&self) -> impl Iterator<Item = &Index> + '_ {
        self.indexes.values()
    }

    /// Every user-defined type (enums, domains, …) the model knows, in no particular order.
    pub fn user_types(&self) -> impl Iterator<Item = &UserType> + '_ {
        self.types.values()
    }

    /// Every sequence the model knows, in no particular order.
    pub fn sequences(&self) -> impl Iterator<Item = &Sequence> + '_ {
        self.sequences.values()
    }

    /// The indexes of a table.
    pub fn indexes_on<'a>(&'a self, table: &ObjectName) -> impl Iterator<Item = &'a Index> + 'a {
        self.indexes.on(&self.relation_name(table))
    }

    /// The partitions attached to a partitioned table.
    pub fn partitions_of<'a>(
        &'a self,
        parent: &ObjectName,
    ) -> impl Iterator<Item = &'a Relation> + 'a {
        self.relations.partitions_of(&self.relation_name(parent))
    }

    pub fn column(&self, table: &ObjectName, column: &str) -> Option<&Column> {
        let column = naming::truncate_identifier(column);
        self.relation(table)?
            .columns
            .iter()
            .find(|c| c.name == column)
    }

    /// The constraints of a table (empty when the model does not know the table).
    pub fn constraints_of(&self, table: &ObjectName) -> &[Constraint] {
        self.relation(table)
            .map_or(&[], |relation| relation.constraints.as_slice())
    }

    /// A table's constraint by name.
    pub fn constraint(&self, table: &ObjectName, name: &str) -> Option<&Constraint> {
        let name = naming::truncate_identifier(name);
        self.constraints_of(table).iter().find(|c| c.name == name)
    }

    /// True when the table has a validated `CHECK (column IS NOT NULL)` (alone or as a term of an
    /// `AND`): PostgreSQL 12+ then skips the full scan of `ALTER COLUMN … SET NOT NULL`.
    pub fn has_validated_not_null_check(&self, table: &ObjectName, column: &str) -> bool {
        let column = naming::truncate_identifier(column);
        self.constraints_of(table).iter().any(|constraint| {
            constraint.validated
                && matches!(&constraint.kind, ConstraintKind::Check { expression }
                    if expr::implies_not_null(expression, &column))
        })
    }

    /// True when `origin` is the migration being replayed. Before the first
    /// [`begin_migration`](Self::begin_migration) nothing is new.
    fn is_current(&self, origin: Origin) -> bool {
        self.current != Origin::BASELINE && origin == self.current
    }

    /// True when the relation was created earlier in the migration being replayed. A relation the
    /// model has never heard of (a file reviewed without its history) is not new: it is treated as
    /// existing, with rows and traffic.
    pub fn is_new_relation(&self, name: &ObjectName) -> bool {
        self.relation(name)
            .is_some_and(|r| self.is_current(r.origin))
    }

    /// True when the column was added earlier in the migration being replayed (to a new or an
    /// existing table).
    pub fn is_new_column(&self, table: &ObjectName, column: &str) -> bool {
        self.column(table, column)
            .is_some_and(|c| self.is_current(c.origin))
    }

    /// True when the index was created earlier in the migration being replayed.
    pub fn is_new_index(&self, name: &ObjectName) -> bool {
        self.index(name).is_some_and(|i| self.is_current(i.origin))
    }

    /// True when the table's constraint was added earlier in the migration being replayed.
    pub fn is_new_constraint(&self, table: &ObjectName, name: &str) -> bool {
        self.constraint(table, name)
            .is_some_and(|c| self.is_current(c.origin))
    }

    /// True when the type (enum, domain, …) was created earlier in the migration being replayed.
    pub fn is_new_type(&self, name: &ObjectName) -> bool {
        self.user_type(name)
            .is_some_and(|t| self.is_current(t.origin))
    }
}
