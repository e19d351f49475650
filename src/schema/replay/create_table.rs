//! `CREATE TABLE` (plain, partitioned, partition, `LIKE`, `INHERITS`, `AS SELECT`, foreign) and the
//! column definitions it shares with `ALTER TABLE … ADD COLUMN`.

use sqlparser::ast::{
    ColumnDef, ColumnOption, CreateForeignTable, CreateTable, CreateTableLikeDefaults,
    CreateTableLikeKind, DataType, Expr, GeneratedAs, SequenceOptions, TableConstraint, Value,
};

use super::constraint::column_constraint;
use super::object_name;
use super::view::query_columns;
use crate::schema::naming;
use crate::schema::{Catalog, Column, Identity, PartitionKey, Relation, RelationKind, TEMP_SCHEMA};
use crate::sql::ObjectName;

/// What a column definition adds besides the column.
struct ColumnDefinition {
    column: Column,
    /// Its inline constraints, as table constraints.
    constraints: Vec<TableConstraint>,
    /// serial/bigserial/smallserial: an owned sequence and a `nextval` default.
    serial: bool,
    /// The options of an identity column's sequence, as written.
    identity_options: Vec<String>,
}

impl Catalog {
    pub(super) fn create_table(&mut self, create: &CreateTable) {
        let Some(name) = object_name(&create.name) else {
            return;
        };
        let key = self.creation_key(&name, create.temporary);
        if create.if_not_exists && self.relations.contains_key(&key) {
            return;
        }
        let kind = match create.partition_by {
            Some(_) => RelationKind::PartitionedTable,
            None => RelationKind::Table,
        };
        let parent = create
            .partition_of
            .as_ref()
            .and_then(object_name)
            .map(|parent| self.relation_name(&parent));

        // Inherited columns come first, as PostgreSQL orders them.
        let mut columns = Vec::new();
        for inherited in create.inherits.iter().flatten().filter_map(object_name) {
            columns.extend(self.copied_columns(&inherited, true, true));
        }
        if let Some(parent) = &parent {
            columns.extend(self.copied_columns(parent, true, true));
        }
        if let Some(query) = &create.query {
            // CREATE TABLE … AS: names from the column list or the query, types unknown.
            let names = match create.columns.as_slice() {
                [] => query_columns(query),
                given => given.iter().map(|c| naming::ident(&c.name)).collect(),
            };
            columns.extend(names.into_iter().map(|name| self.unknown_column(name)));
        }
        self.insert_relation(Relation {
            name: key.clone(),
            kind,
            columns,
            constraints: Vec::new(),
            partition_of: parent.clone(),
            partition_key: create
                .partition_by
                .as_deref()
                .and_then(PartitionKey::from_expr),
            definition: None,
            origin: *self.current,
        });
        self.add_elements(&key, create);
        if let Some(parent) = &parent {
            self.clone_indexes(parent, &key);
        }
    }

    /// Adds what the parenthesized list of a `CREATE TABLE` defines to `table` (a key of the
    /// catalog): columns copied with `LIKE`, column definitions, table constraints.
    pub(super) fn add_elements(&mut self, table: &ObjectName, create: &CreateTable) {
        let mut copied = Vec::new();
        if let Some(CreateTableLikeKind::Parenthesized(like) | CreateTableLikeKind::Plain(like)) =
            &create.like
        {
            if let Some(source) = object_name(&like.name) {
                let defaults = like.defaults == Some(CreateTableLikeDefaults::Including);
                copied.extend(self.copied_columns(&source, defaults, false));
            }
        }
        // sqlparser reads `(a int, LIKE source)` as a column named LIKE of type `source`.
        for source in create.columns.iter().filter_map(like_source) {
            copied.extend(self.copied_columns(&source, false, false));
        }
        if let Some(mut columns) = self.relations.columns_mut(table) {
            columns.extend(copied);
        }
        let mut constraints = Vec::new();
        if create.query.is_none() {
            for def in create
                .columns
                .iter()
                .filter(|def| like_source(def).is_none())
            {
                constraints.extend(self.add_column(table, def));
            }
        }
        constraints.extend(create.constraints.iter().cloned());
        self.add_table_constraints(table, constraints);
    }

    pub(super) fn create_foreign_table(&mut self, create: &CreateForeignTable) {
        let Some(name) = object_name(&create.name) else {
            return;
        };
        let key = self.creation_key(&name, false);
        if create.if_not_exists && self.relations.contains_key(&key) {
            return;
        }
        self.insert_relation(Relation {
            name: key.clone(),
            kind: RelationKind::ForeignTable,
            columns: Vec::new(),
            constraints: Vec::new(),
            partition_of: None,
            partition_key: None,
            definition: None,
            origin: *self.current,
        });
        let mut constraints = Vec::new();
        for def in &create.columns {
            constraints.extend(self.add_column(&key, def));
        }
        constraints.extend(create.constraints.iter().cloned());
        self.add_table_constraints(&key, constraints);
    }

    /// Where a new relation goes: the named schema, the default schema, or `pg_temp` for a
    /// temporary table.
    pub(super) fn creation_key(&self, name: &ObjectName, temporary: bool) -> ObjectName {
        match (temporary, &name.schema) {
            (true, None) => self.qualify(&ObjectName::new(Some(TEMP_SCHEMA), &name.name)),
            _ => self.qualify(name),
        }
    }

    /// The columns of `source` as a new table copies them: type and NOT NULL, defaults when
    /// `defaults`, identity and generation when `all` (partitions and inheritance children).
    fn copied_columns(&self, source: &ObjectName, defaults: bool, all: bool) -> Vec<Column> {
        let Some(source) = self.relation(source) else {
            return Vec::new();
        };
        source
            .columns
            .iter()
            .map(|column| Column {
                default: column.default.clone().filter(|_| defaults),
                identity: column.identity.filter(|_| all),
                generated: column.generated && all,
                origin: *self.current,
                ..column.clone()
            })
            .collect()
    }

    /// A column known by name only.
    pub(super) fn unknown_column(&self, name: String) -> Column {
        Column {
            name,
            data_type: None,
            not_null: false,
            default: None,
            identity: None,
            generated: false,
            origin: *self.current,
        }
    }

    /// Adds a column to `table` (a key of the catalog), with the sequence and default of a serial
    /// or the sequence of an identity. Returns its inline constraints for the caller to add (with
    /// the statement's other constraints; not at all on partitions, which get their parent's
    /// `ADD COLUMN` but not its constraints).
    #[must_use]
    pub(super) fn add_column(
        &mut self,
        table: &ObjectName,
        def: &ColumnDef,
    ) -> Vec<TableConstraint> {
        let definition = self.column_definition(def);
        let name = definition.column.name.clone();
        let identity = definition.column.identity.is_some();
        let Some(mut columns) = self.relations.columns_mut(table) else {
            return Vec::new();
        };
        match columns.iter_mut().find(|c| c.name == name) {
            // `PARTITION OF parent (col WITH OPTIONS …)`: options for an inherited column.
            Some(existing) if def.data_type == DataType::Unspecified => {
                existing.not_null |= definition.column.not_null;
                if definition.column.default.is_some() {
                    existing.default = definition.column.default;
                }
            }
            Some(existing) => *existing = definition.column,
            None => columns.push(definition.column),
        }
        drop(columns);
        if definition.serial || identity {
            let sequence = self.add_owned_sequence(table, &name, definition.identity_options);
            if definition.serial {
                let default = self.nextval(&sequence);
                if let Some(mut column) = self.column_or_stub(table, &name) {
                    column.default = Some(default);
                }
            }
        }
        definition.constraints
    }

    /// The column a definition describes, with its inline constraints.
    fn column_definition(&self, def: &ColumnDef) -> ColumnDefinition {
        let serial = serial_type(&def.data_type);
        let data_type = match (&serial, &def.data_type) {
            (Some(integer), _) => Some(integer.clone()),
            (None, DataType::Unspecified) => None,
            (None, data_type) => Some(data_type.clone()),
        };
        let mut column = Column {
            name: naming::ident(&def.name),
            data_type,
            not_null: serial.is_some(),
            default: None,
            identity: None,
            generated: false,
            origin: *self.current,
        };
        let mut identity_options = Vec::new();
        let mut constraints = Vec::new();
        for option in &def.options {
            match &option.option {
                ColumnOption::NotNull | ColumnOption::PrimaryKey(_) => column.not_null = true,
                ColumnOption::Null => column.not_null = false,
                ColumnOption::Default(default) => column.default = stored_default(default),
                ColumnOption::Generated {
                    generation_expr: Some(_),
                    ..
                } => column.generated = true,
                ColumnOption::Generated {
                    generated_as,
                    sequence_options,
                    ..
                } => {
                    column.identity = Some(identity(generated_as));
                    column.not_null = true;
                    identity_options = sequence_options_sql(sequence_options.iter().flatten());
                }
                _ => {}
            }
            constraints.extend(column_constraint(&def.name, option));
        }
        ColumnDefinition {
            column,
            constraints,
            serial: serial.is_some(),
            identity_options,
        }
    }

    /// The default of a serial column: `nextval('<sequence>'::regclass)`, the sequence qualified
    /// when it is not in the default schema, as PostgreSQL prints it.
    fn nextval(&self, sequence: &ObjectName) -> String {
        let name = match sequence.schema.as_deref() {
            Some(schema) if schema != self.default_schema() => format!(
                "{}.{}",
                naming::quote_ident(schema),
                naming::quote_ident(&sequence.name)
            ),
            _ => naming::quote_ident(&sequence.name),
        };
        format!("nextval('{}'::regclass)", name.replace('\'', "''"))
    }
}

/// The default PostgreSQL stores for a `DEFAULT` expression: none for a plain or cast `NULL`
/// (no `pg_attrdef` entry, the same as no default at all).
pub(super) fn stored_default(default: &Expr) -> Option<String> {
    let mut value = default;
    while let Expr::Nested(inner) | Expr::Cast { expr: inner, .. } = value {
        value = inner;
    }
    match value {
        Expr::Value(value) if value.value == Value::Null => None,
        _ => Some(default.to_string()),
    }
}

/// The integer type of a serial pseudo-type (`serial` is `integer` with a sequence), if it is one.
fn serial_type(data_type: &DataType) -> Option<DataType> {
    let DataType::Custom(name, modifiers) = data_type else {
        return None;
    };
    let [part] = name.0.as_slice() else {
        return None;
    };
    let ident = part.as_ident()?;
    if ident.quote_style.is_some() || !modifiers.is_empty() {
        return None;
    }
    match ident.value.to_ascii_lowercase().as_str() {
        "serial" | "serial4" => Some(DataType::Integer(None)),
        "bigserial" | "serial8" => Some(DataType::BigInt(None)),
        "smallserial" | "serial2" => Some(DataType::SmallInt(None)),
        _ => None,
    }
}

/// The source table of the `LIKE source` that sqlparser reads as a column named LIKE.
fn like_source(def: &ColumnDef) -> Option<ObjectName> {
    if def.name.quote_style.is_some() || !def.name.value.eq_ignore_ascii_case("like") {
        return None;
    }
    match &def.data_type {
        DataType::Custom(name, _) => object_name(name),
        _ => None,
    }
}

/// `GENERATED ALWAYS` or `BY DEFAULT`.
pub(super) fn identity(generated_as: &GeneratedAs) -> Identity {
    match generated_as {
        GeneratedAs::ByDefault => Identity::ByDefault,
        _ => Identity::Always,
    }
}

/// Sequence options as `CREATE SEQUENCE` takes them, one each, without `OWNED BY` (the model keeps
/// the owner apart).
pub(super) fn sequence_options_sql<'a>(
    options: impl IntoIterator<Item = &'a SequenceOptions>,
) -> Vec<String> {
    options
        .into_iter()
        .filter(|option| !matches!(option, SequenceOptions::OwnedBy(_)))
        .map(|option| option.to_string().trim().to_owned())
        .collect()
}
