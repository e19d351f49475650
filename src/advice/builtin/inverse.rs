//! The down migration: each statement's inverse, computed with the schema model as it is just before
//! the statement (the names, types, defaults and nullability to restore), in reverse order.

use sqlparser::ast::{
    AlterColumnOperation, AlterIndexOperation, AlterTableOperation, DropBehavior, Expr, ObjectType,
    RenameTableNameKind, Statement as Ast, TableConstraint,
};

use super::Shape;
use crate::advice::draft::Down;
use crate::rules::downs;
use crate::rules::fix::{known, Undo};
use crate::schema::ddl::{add_constraint, backs_a_constraint, create_index, foreign_keys_to};
use crate::schema::naming::{ident, quote_ident, quote_literal, quote_name};
use crate::schema::{Added, Catalog, ConstraintKind, RelationKind, TypeKind};
use crate::sql::{Kind, ObjectName, Statement};

/// The down migration of the whole migration, or why there is none. `catalog` is the schema before
/// the migration: the statements are replayed on it under a journal, undone before returning.
pub(super) fn down<L: Fn(usize) -> usize>(
    shape: &Shape<L>,
    catalog: &mut Catalog,
) -> Result<Down, String> {
    catalog.open_journal();
    catalog.begin_migration();
    let inverses = invert_all(shape, catalog);
    catalog.undo_journal();
    let inverses = inverses?;
    let data_loss = inverses.iter().any(|i| i.data_loss);
    let notes: Vec<String> = inverses.iter().flat_map(|i| i.notes.clone()).collect();
    let sql: Vec<String> = inverses.into_iter().rev().flat_map(|i| i.sql).collect();
    Ok(Down {
        sql: sql.join("\n"),
        data_loss,
        notes: if notes.is_empty() {
            "Each statement's inverse, in reverse order; names, types, defaults and nullability \
             come from the schema before the migration."
                .to_owned()
        } else {
            notes.join(" ")
        },
    })
}

/// Each statement's inverse, the statements applied to `catalog` on the way.
fn invert_all<L: Fn(usize) -> usize>(
    shape: &Shape<L>,
    catalog: &mut Catalog,
) -> Result<Vec<Undo>, String> {
    let mut inverses = Vec::new();
    for (index, statement) in shape.statements.iter().enumerate() {
        let inverse = match invert(statement, catalog) {
            Ok(Some(undo)) => {
                catalog.apply(shape.text, statement);
                undo
            }
            Ok(None) => drop_created(shape.text, statement, catalog),
            Err(why) => {
                return Err(format!(
                    "no built-in down migration: {} cannot be undone from the schema model: {why}",
                    shape.describe(index)
                ))
            }
        };
        inverses.push(inverse);
    }
    Ok(inverses)
}

/// The inverse of one statement on the schema `catalog` (just before it); `None` for a statement
/// that creates objects: dropping them undoes it, and which they are is known once it has run
/// ([`drop_created`]).
fn invert(statement: &Statement, catalog: &Catalog) -> Result<Option<Undo>, String> {
    match statement.class.kind {
        // No schema change to undo (a refresh or a rebuild changes no definition).
        Kind::RefreshMaterializedView
        | Kind::Reindex
        | Kind::Cluster
        | Kind::Set
        | Kind::Reset
        | Kind::Begin
        | Kind::Commit
        | Kind::Rollback
        | Kind::Savepoint
        | Kind::Select
        | Kind::Vacuum
        | Kind::PsqlMeta => return Ok(Some(Undo::default())),
        Kind::Insert | Kind::Update | Kind::Delete | Kind::Copy | Kind::Truncate => {
            return Err("it changes rows, and the rows it changed are not known".to_owned())
        }
        _ => {}
    }
    let Some(ast) = statement.ast() else {
        return Err("migagent could not parse it".to_owned());
    };
    let undo = match ast {
        Ast::CreateTable(_)
        | Ast::CreateIndex(_)
        | Ast::CreateView(_)
        | Ast::CreateSequence { .. }
        | Ast::CreateType { .. } => return Ok(None),
        Ast::CreateSchema { schema_name, .. } => Ok(Undo {
            sql: vec![format!("DROP SCHEMA {schema_name};")],
            ..Undo::default()
        }),
        Ast::CreateExtension(extension) => Ok(Undo {
            sql: vec![format!("DROP EXTENSION {};", extension.name)],
            ..Undo::default()
        }),
        Ast::AlterTable(alter) => {
            let table = ObjectName::from_ast(&alter.name).ok_or("its table has no name")?;
            let table = catalog.resolve(&table);
            let mut inverse = Undo::default();
            for operation in alter.operations.iter().rev() {
                invert_operation(catalog, &table, operation, &mut inverse)?;
            }
            Ok(inverse)
        }
        Ast::AlterIndex {
            name,
            operation: AlterIndexOperation::RenameIndex { index_name },
        } => {
            let old = ObjectName::from_ast(name).ok_or("its index has no name")?;
            let old = catalog.resolve(&old);
            let new = ObjectName::from_ast(index_name).ok_or("its new name is empty")?;
            Ok(Undo {
                sql: vec![format!(
                    "ALTER INDEX {} RENAME TO {};",
                    quote_name(&ObjectName::new(old.schema.as_deref(), &new.name)),
                    quote_ident(&old.name)
                )],
                ..Undo::default()
            })
        }
        Ast::Drop {
            object_type: ObjectType::Index,
            names,
            ..
        } => recreate_indexes(catalog, names),
        Ast::Drop {
            object_type: ObjectType::Table,
            names,
            cascade,
            ..
        } => downs::drop_table(catalog, &names_of(names)?, *cascade),
        Ast::Drop {
            object_type: ObjectType::Sequence,
            names,
            cascade,
            ..
        } => downs::drop_sequence(catalog, &names_of(names)?, *cascade),
        Ast::Drop {
            object_type: ObjectType::View | ObjectType::MaterializedView,
            names,
            cascade,
            ..
        } => recreate_views(catalog, &names_of(names)?, *cascade),
        Ast::Drop {
            object_type: ObjectType::Type,
            names,
            cascade,
            ..
        } => recreate_types(catalog, &names_of(names)?, *cascade),
        Ast::Drop { .. } => Err("what it drops, and the data in it, cannot be rebuilt".to_owned()),
        _ => Err(format!(
            "migagent has no inverse for {}",
            statement.label_or("this statement")
        )),
    };
    undo.map(Some)
}

/// Applies a statement that creates objects to `catalog`, and drops every object it created: the
/// relations, indexes, sequences and types the model has after it and did not have before
/// (generated names included), as a journal around it records them.
fn drop_created(text: &str, statement: &Statement, catalog: &mut Catalog) -> Undo {
    catalog.open_journal();
    catalog.apply(text, statement);
    let sql = drops(&catalog.added());
    catalog.close_journal();
    Undo {
        sql,
        ..Undo::default()
    }
}

/// The DROP statements of what a statement added, sorted.
fn drops(added: &Added) -> Vec<String> {
    let mut sql = Vec::new();
    let new_relations: Vec<&ObjectName> = added
        .relations
        .iter()
        .map(|r| {
            let what = match r.kind {
                RelationKind::Table | RelationKind::PartitionedTable => "TABLE",
                RelationKind::View => "VIEW",
                RelationKind::MaterializedView => "MATERIALIZED VIEW",
                RelationKind::ForeignTable => "FOREIGN TABLE",
            };
            sql.push(format!("DROP {what} {};", quote_name(&r.name)));
            &r.name
        })
        .collect();
    for index in &added.indexes {
        if !new_relations.contains(&&index.table) {
            sql.push(format!("DROP INDEX {};", quote_name(&index.name)));
        }
    }
    for sequence in &added.sequences {
        if sequence.owned_by.is_none() {
            sql.push(format!("DROP SEQUENCE {};", quote_name(&sequence.name)));
        }
    }
    for user_type in &added.user_types {
        sql.push(format!("DROP TYPE {};", quote_name(&user_type.name)));
    }
    sql.sort();
    sql
}

/// The inverse of one `ALTER TABLE` operation, added to `inverse`.
fn invert_operation(
    catalog: &Catalog,
    table: &ObjectName,
    operation: &AlterTableOperation,
    inverse: &mut Undo,
) -> Result<(), String> {
    let table_sql = quote_name(table);
    let mut alter = |clause: String| {
        inverse
            .sql
            .push(format!("ALTER TABLE {table_sql} {clause};"))
    };
    match operation {
        AlterTableOperation::AddColumn { column_def, .. } => {
            alter(format!(
                "DROP COLUMN {}",
                quote_ident(&ident(&column_def.name))
            ));
        }
        AlterTableOperation::AddConstraint { constraint, .. } => {
            let name = catalog
                .new_constraint_name(table, constraint)
                .ok_or("migagent cannot tell the constraint's name")?;
            alter(format!("DROP CONSTRAINT {}", quote_ident(&name)));
            // A primary key set its columns NOT NULL: those that were nullable become so again.
            for column in primary_key_columns(catalog, table, constraint) {
                if catalog.column(table, &column).is_some_and(|c| !c.not_null) {
                    alter(format!(
                        "ALTER COLUMN {} DROP NOT NULL",
                        quote_ident(&column)
                    ));
                }
            }
            // The adopted index went with the constraint: it comes back under its own name.
            if let TableConstraint::PrimaryKeyUsingIndex(using)
            | TableConstraint::UniqueUsingIndex(using) = constraint
            {
                let index = ObjectName::new(table.schema.as_deref(), &ident(&using.index_name));
                let index = catalog
                    .index(&index)
                    .ok_or_else(|| format!("the schema model does not know index {index}"))?;
                inverse.sql.push(create_index(catalog, index));
            }
        }
        AlterTableOperation::ValidateConstraint { .. } => {}
        AlterTableOperation::DropConstraint {
            name,
            drop_behavior,
            ..
        } => {
            let name = ident(name);
            let constraint = catalog.constraint(table, &name).ok_or_else(|| {
                format!("the schema model does not know constraint {name} of {table}")
            })?;
            if matches!(drop_behavior, Some(DropBehavior::Cascade))
                && constraint.kind.has_index()
                && referenced_by_others(catalog, table)
            {
                return Err(format!(
                    "CASCADE may also drop foreign keys that depend on {name}'s index"
                ));
            }
            inverse.sql.extend(add_constraint(table, constraint)?);
        }
        AlterTableOperation::RenameColumn {
            old_column_name,
            new_column_name,
        } => alter(format!(
            "RENAME COLUMN {} TO {}",
            quote_ident(&ident(new_column_name)),
            quote_ident(&ident(old_column_name))
        )),
        AlterTableOperation::RenameTable { table_name } => {
            let new = match table_name {
                RenameTableNameKind::To(name) | RenameTableNameKind::As(name) => name,
            };
            let new = ObjectName::from_ast(new).ok_or("its new name is empty")?;
            let renamed = ObjectName::new(table.schema.as_deref(), &new.name);
            inverse.sql.push(format!(
                "ALTER TABLE {} RENAME TO {};",
                quote_name(&renamed),
                quote_ident(&table.name)
            ));
        }
        AlterTableOperation::AlterColumn { column_name, op } => {
            let column = ident(column_name);
            let before = catalog
                .column(table, &column)
                .ok_or_else(|| format!("the schema model does not know column {column}"))?;
            let column_sql = quote_ident(&column);
            let clause = match op {
                AlterColumnOperation::SetNotNull if !before.not_null => "DROP NOT NULL".to_owned(),
                AlterColumnOperation::DropNotNull if before.not_null => "SET NOT NULL".to_owned(),
                AlterColumnOperation::SetNotNull | AlterColumnOperation::DropNotNull => {
                    return Ok(())
                }
                AlterColumnOperation::SetDefault { .. } | AlterColumnOperation::DropDefault => {
                    match &before.default {
                        Some(default) => format!("SET DEFAULT {default}"),
                        None => "DROP DEFAULT".to_owned(),
                    }
                }
                AlterColumnOperation::SetDataType { .. } => {
                    let data_type = before.data_type.as_ref().ok_or_else(|| {
                        format!("the schema model does not know the type of column {column}")
                    })?;
                    format!("TYPE {data_type} USING {column_sql}::{data_type}")
                }
                _ => return Err(format!("migagent has no inverse for `{op}`")),
            };
            alter(format!("ALTER COLUMN {column_sql} {clause}"));
        }
        AlterTableOperation::DropColumn {
            column_names,
            drop_behavior,
            ..
        } => {
            let columns: Vec<String> = column_names.iter().map(ident).collect();
            let cascade = matches!(drop_behavior, Some(DropBehavior::Cascade));
            restore_columns(catalog, table, &columns, cascade, inverse)?;
        }
        _ => return Err(format!("migagent has no inverse for `{operation}`")),
    }
    Ok(())
}

/// The inverse of `DROP COLUMN`: each column added back as it was (type, default, NOT NULL when a
/// default can fill it), then what PostgreSQL dropped with it: the table's constraints and indexes
/// on it and, with CASCADE, other tables' foreign keys to it. The values are gone: `data_loss`.
fn restore_columns(
    catalog: &Catalog,
    table: &ObjectName,
    columns: &[String],
    cascade: bool,
    inverse: &mut Undo,
) -> Result<(), String> {
    inverse.data_loss = true;
    for column in columns {
        restore_column(catalog, table, column, inverse)?;
    }
    let involved = |involves: &dyn Fn(&str) -> bool| columns.iter().any(|c| involves(c));
    for constraint in catalog.constraints_of(table) {
        if involved(&|c| constraint.kind.involves(c)) {
            inverse.sql.extend(add_constraint(table, constraint)?);
        }
    }
    for index in catalog.indexes_on(table) {
        if involved(&|c| index.involves(c)) && !backs_a_constraint(catalog, index) {
            inverse.sql.push(create_index(catalog, index));
        }
    }
    if cascade {
        for (other, constraint) in foreign_keys_to(catalog, table) {
            let referenced = match &constraint.kind {
                ConstraintKind::ForeignKey {
                    referenced_columns, ..
                } => referenced_columns,
                _ => continue,
            };
            if referenced.iter().any(|c| columns.contains(c)) {
                inverse.sql.extend(add_constraint(other, constraint)?);
            }
        }
        inverse.notes.push(
            "Views that CASCADE dropped with the column are not in the schema model and are not \
             restored."
                .to_owned(),
        );
    }
    Ok(())
}

/// `ADD COLUMN` of one dropped column as it was: its type, and its default with NOT NULL unless a
/// default in every row would break a uniqueness; a note on what its rows hold now.
fn restore_column(
    catalog: &Catalog,
    table: &ObjectName,
    column: &str,
    inverse: &mut Undo,
) -> Result<(), String> {
    let table_sql = quote_name(table);
    let before = catalog
        .column(table, column)
        .ok_or_else(|| format!("the schema model does not know column {column}"))?;
    if before.generated || before.identity.is_some() {
        return Err(format!(
            "the schema model does not keep how column {column} is generated"
        ));
    }
    let data_type = before
        .data_type
        .as_ref()
        .ok_or_else(|| format!("the schema model does not know the type of column {column}"))?;
    let add = format!(
        "ALTER TABLE {table_sql} ADD COLUMN {} {data_type}",
        quote_ident(column)
    );
    let unique = is_unique(catalog, table, column);
    let lost = format!("Column {table}.{column} comes back NULL in every row");
    let not_null = if before.not_null {
        ", so it comes back nullable: it was NOT NULL, which cannot hold until its values are \
         restored; backfill them, then SET NOT NULL"
    } else {
        ""
    };
    match &before.default {
        Some(default) if !unique => {
            let not_null = if before.not_null { " NOT NULL" } else { "" };
            inverse
                .sql
                .push(format!("{add} DEFAULT {default}{not_null};"));
            inverse.notes.push(format!(
                "Column {table}.{column} comes back with its default in every row: the values \
                 it held are gone."
            ));
        }
        // One default in every row would break the uniqueness: new rows get it, old ones NULL.
        Some(default) => {
            inverse.sql.push(format!("{add};"));
            inverse.sql.push(format!(
                "ALTER TABLE {table_sql} ALTER COLUMN {} SET DEFAULT {default};",
                quote_ident(column)
            ));
            inverse.notes.push(format!(
                "{lost} (its default in every row would break its uniqueness){not_null}."
            ));
        }
        None => {
            inverse.sql.push(format!("{add};"));
            inverse.notes.push(format!("{lost}{not_null}."));
        }
    }
    Ok(())
}

/// Whether a primary key, unique constraint or unique index of `table` covers `column`.
fn is_unique(catalog: &Catalog, table: &ObjectName, column: &str) -> bool {
    let constraint = catalog.constraints_of(table).iter().any(|c| {
        matches!(
            c.kind,
            ConstraintKind::PrimaryKey { .. } | ConstraintKind::Unique { .. }
        ) && c.kind.involves(column)
    });
    constraint
        || catalog
            .indexes_on(table)
            .any(|i| i.unique && i.involves(column))
}

/// The key columns of a primary key being added (`PRIMARY KEY (…)` or `USING INDEX` of an index
/// the model knows); none for any other constraint.
fn primary_key_columns(
    catalog: &Catalog,
    table: &ObjectName,
    constraint: &TableConstraint,
) -> Vec<String> {
    match constraint {
        TableConstraint::PrimaryKey(key) => key
            .columns
            .iter()
            .filter_map(|key| match &key.column.expr {
                Expr::Identifier(column) => Some(ident(column)),
                _ => None,
            })
            .collect(),
        TableConstraint::PrimaryKeyUsingIndex(using) => {
            let index = ObjectName::new(table.schema.as_deref(), &ident(&using.index_name));
            catalog
                .index(&index)
                .map(|index| index.columns.clone())
                .unwrap_or_default()
        }
        _ => Vec::new(),
    }
}

/// `CREATE INDEX` again for each dropped index the model knows.
fn recreate_indexes(
    catalog: &Catalog,
    names: &[sqlparser::ast::ObjectName],
) -> Result<Undo, String> {
    let mut inverse = Undo::default();
    for name in names {
        let name = ObjectName::from_ast(name).ok_or("an index has no name")?;
        let index = catalog
            .index(&name)
            .ok_or_else(|| format!("the schema model does not know index {name}"))?;
        if backs_a_constraint(catalog, index) {
            return Err(format!("index {name} belongs to a constraint"));
        }
        inverse.sql.push(create_index(catalog, index));
    }
    Ok(inverse)
}

/// Some other table has a foreign key to `table`.
fn referenced_by_others(catalog: &Catalog, table: &ObjectName) -> bool {
    !foreign_keys_to(catalog, table).is_empty()
}

/// The names a `DROP` lists.
fn names_of(names: &[sqlparser::ast::ObjectName]) -> Result<Vec<ObjectName>, String> {
    names
        .iter()
        .map(|name| ObjectName::from_ast(name).ok_or_else(|| "a name is empty".to_owned()))
        .collect()
}

/// What CASCADE may take along that the model does not track.
const CASCADE_UNKNOWN: &str =
    "CASCADE also drops what depends on it (views, columns, defaults), which the schema model does \
     not track";

/// `CREATE [MATERIALIZED] VIEW` again for each dropped view, from its definition in the model, with
/// the indexes of a materialized view. No data is lost: a view holds none, a materialized view is
/// filled again from its query.
fn recreate_views(catalog: &Catalog, names: &[ObjectName], cascade: bool) -> Result<Undo, String> {
    if cascade {
        return Err(CASCADE_UNKNOWN.to_owned());
    }
    let mut undo = Undo::default();
    for name in names {
        let name = catalog.resolve(name);
        let view = known(catalog.relation(&name), "view", &name)?;
        let (what, kind, filled) = match view.kind {
            RelationKind::View => ("VIEW", "View", ""),
            RelationKind::MaterializedView => (
                "MATERIALIZED VIEW",
                "Materialized view",
                ", filled with the data of today",
            ),
            _ => return Err(format!("{name} is not a view")),
        };
        let definition = known(view.definition.as_ref(), "the query of view", &name)?;
        undo.sql
            .push(format!("CREATE {what} {} {definition};", quote_name(&name)));
        let mut indexes: Vec<String> = catalog
            .indexes_on(&name)
            .map(|index| create_index(catalog, index))
            .collect();
        indexes.sort();
        undo.sql.extend(indexes);
        undo.notes.push(format!(
            "{kind} {name} comes back from its query{filled}; grants, comments, and options such \
             as security_barrier or CHECK OPTION are not in the schema model and are not restored."
        ));
    }
    Ok(undo)
}

/// `CREATE TYPE` again for each dropped type the model knows the definition of: an enum with its
/// values in order. Nothing stores data in a type that a plain DROP TYPE could drop.
fn recreate_types(catalog: &Catalog, names: &[ObjectName], cascade: bool) -> Result<Undo, String> {
    if cascade {
        return Err(CASCADE_UNKNOWN.to_owned());
    }
    let mut undo = Undo::default();
    for name in names {
        let name = catalog.resolve(name);
        let user_type = known(catalog.user_type(&name), "type", &name)?;
        let definition = match &user_type.kind {
            TypeKind::Enum { values } => {
                let values: Vec<String> = values.iter().map(|v| quote_literal(v)).collect();
                format!("AS ENUM ({})", values.join(", "))
            }
            TypeKind::Composite { attributes } => {
                let attributes: Vec<String> = attributes
                    .iter()
                    .map(|(name, data_type)| format!("{} {data_type}", quote_ident(name)))
                    .collect();
                format!("AS ({})", attributes.join(", "))
            }
            TypeKind::Domain { .. } | TypeKind::Other => {
                return Err(format!(
                    "the schema model does not keep the definition of type {name}"
                ))
            }
        };
        undo.sql
            .push(format!("CREATE TYPE {} {definition};", quote_name(&name)));
    }
    Ok(undo)
}
