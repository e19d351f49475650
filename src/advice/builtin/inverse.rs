//! The down migration: each statement's inverse, computed with the schema model as it is just before
//! the statement (the names, types, defaults and nullability to restore), in reverse order.

use sqlparser::ast::{
    AlterColumnOperation, AlterIndexOperation, AlterTableOperation, DropBehavior, Expr, ObjectType,
    RenameTableNameKind, Statement as Ast, TableConstraint,
};

use super::Shape;
use crate::advice::draft::Down;
use crate::schema::naming::{ident, quote_ident, quote_name};
use crate::schema::{Catalog, Constraint, ConstraintKind, Index, Relation, RelationKind, Sequence};
use crate::sql::{Kind, ObjectName, Statement};

/// What undoes one statement.
#[derive(Default)]
struct Inverse {
    /// Statements in the order they must run.
    sql: Vec<String>,
    /// The statement destroys data the inverse cannot bring back.
    data_loss: bool,
    notes: Vec<String>,
}

/// The down migration of the whole migration, or why there is none.
pub(super) fn down<L: Fn(usize) -> usize>(
    shape: &Shape<L>,
    before: &Catalog,
) -> Result<Down, String> {
    let mut catalog = before.clone();
    catalog.begin_migration();
    let mut inverses = Vec::new();
    for (index, statement) in shape.statements.iter().enumerate() {
        let inverse = invert(shape.text, statement, &catalog).map_err(|why| {
            format!(
                "no built-in down migration: {} cannot be undone from the schema model: {why}",
                shape.describe(index)
            )
        })?;
        inverses.push(inverse);
        catalog.apply(shape.text, statement);
    }
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

/// The inverse of one statement on the schema `catalog` (just before it).
fn invert(text: &str, statement: &Statement, catalog: &Catalog) -> Result<Inverse, String> {
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
        | Kind::PsqlMeta => return Ok(Inverse::default()),
        Kind::Insert | Kind::Update | Kind::Delete | Kind::Copy | Kind::Truncate => {
            return Err("it changes rows, and the rows it changed are not known".to_owned())
        }
        _ => {}
    }
    let Some(ast) = statement.ast() else {
        return Err("migagent could not parse it".to_owned());
    };
    match ast {
        Ast::CreateTable(_)
        | Ast::CreateIndex(_)
        | Ast::CreateView(_)
        | Ast::CreateSequence { .. }
        | Ast::CreateType { .. } => Ok(drop_created(text, statement, catalog)),
        Ast::CreateSchema { schema_name, .. } => Ok(Inverse {
            sql: vec![format!("DROP SCHEMA {schema_name};")],
            ..Inverse::default()
        }),
        Ast::CreateExtension(extension) => Ok(Inverse {
            sql: vec![format!("DROP EXTENSION {};", extension.name)],
            ..Inverse::default()
        }),
        Ast::AlterTable(alter) => {
            let table = ObjectName::from_ast(&alter.name).ok_or("its table has no name")?;
            let table = catalog.resolve(&table);
            let mut inverse = Inverse::default();
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
            Ok(Inverse {
                sql: vec![format!(
                    "ALTER INDEX {} RENAME TO {};",
                    quote_name(&ObjectName::new(old.schema.as_deref(), &new.name)),
                    quote_ident(&old.name)
                )],
                ..Inverse::default()
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
        } => recreate_tables(catalog, names, *cascade),
        Ast::Drop { .. } => Err("what it drops, and the data in it, cannot be rebuilt".to_owned()),
        _ => Err(format!(
            "migagent has no inverse for {}",
            statement.label_or("this statement")
        )),
    }
}

/// DROP for every object the statement created: the relations, indexes, sequences and types the
/// model has after it and did not have before (generated names included).
fn drop_created(text: &str, statement: &Statement, catalog: &Catalog) -> Inverse {
    let mut after = catalog.clone();
    after.apply(text, statement);
    let mut sql = Vec::new();
    let new_relations: Vec<&ObjectName> = after
        .relations()
        .filter(|r| catalog.relation(&r.name).is_none())
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
    for index in after.indexes() {
        if catalog.index(&index.name).is_none() && !new_relations.contains(&&index.table) {
            sql.push(format!("DROP INDEX {};", quote_name(&index.name)));
        }
    }
    for sequence in after.sequences() {
        let owned = sequence.owned_by.is_some();
        if catalog.sequence(&sequence.name).is_none() && !owned {
            sql.push(format!("DROP SEQUENCE {};", quote_name(&sequence.name)));
        }
    }
    for user_type in after.user_types() {
        if catalog.user_type(&user_type.name).is_none() {
            sql.push(format!("DROP TYPE {};", quote_name(&user_type.name)));
        }
    }
    sql.sort();
    Inverse {
        sql,
        ..Inverse::default()
    }
}

/// The inverse of one `ALTER TABLE` operation, added to `inverse`.
fn invert_operation(
    catalog: &Catalog,
    table: &ObjectName,
    operation: &AlterTableOperation,
    inverse: &mut Inverse,
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
        AlterTableOperation::DropColumn { column_names, .. } => {
            for name in column_names {
                let column = ident(name);
                let before = catalog
                    .column(table, &column)
                    .ok_or_else(|| format!("the schema model does not know column {column}"))?;
                let data_type = before.data_type.as_ref().ok_or_else(|| {
                    format!("the schema model does not know the type of column {column}")
                })?;
                let mut clause = format!("ADD COLUMN {} {data_type}", quote_ident(&column));
                if let Some(default) = &before.default {
                    clause.push_str(&format!(" DEFAULT {default}"));
                }
                if before.not_null && before.default.is_some() {
                    clause.push_str(" NOT NULL");
                } else if before.not_null {
                    inverse.notes.push(format!(
                        "Column {column} comes back nullable: its values are gone, so NOT NULL \
                         cannot hold until they are restored."
                    ));
                }
                inverse.data_loss = true;
                inverse
                    .sql
                    .push(format!("ALTER TABLE {table_sql} {clause};"));
            }
        }
        _ => return Err(format!("migagent has no inverse for `{operation}`")),
    }
    Ok(())
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
) -> Result<Inverse, String> {
    let mut inverse = Inverse::default();
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

/// Primary key, unique and exclusion constraints own the index of their name.
fn backs_a_constraint(catalog: &Catalog, index: &Index) -> bool {
    catalog
        .constraints_of(&index.table)
        .iter()
        .any(|c| c.name == index.name.name)
}

/// `CREATE [UNIQUE] INDEX` of an index the model knows.
fn create_index(catalog: &Catalog, index: &Index) -> String {
    let mut sql = format!(
        "CREATE {}INDEX {} ON {} ({})",
        if index.unique { "UNIQUE " } else { "" },
        quote_ident(&index.name.name),
        quote_name(&index.table),
        index
            .columns
            .iter()
            .map(|key| match catalog.column(&index.table, key) {
                Some(_) => quote_ident(key),
                None => format!("({key})"),
            })
            .collect::<Vec<_>>()
            .join(", ")
    );
    if let Some(predicate) = &index.predicate {
        sql.push_str(&format!(" WHERE {predicate}"));
    }
    sql.push(';');
    sql
}

/// `ALTER TABLE … ADD CONSTRAINT` of a constraint the model knows, as it was: a CHECK or foreign
/// key added NOT VALID, then validated when it was (so that re-adding it on a full table does not
/// hold ACCESS EXCLUSIVE for the scan).
fn add_constraint(table: &ObjectName, constraint: &Constraint) -> Result<Vec<String>, String> {
    let definition = definition(constraint)?;
    let (table_sql, name) = (quote_name(table), quote_ident(&constraint.name));
    let add = format!("ALTER TABLE {table_sql} ADD CONSTRAINT {name} {definition}");
    let may_skip_validation = matches!(
        constraint.kind,
        ConstraintKind::Check { .. } | ConstraintKind::ForeignKey { .. }
    );
    Ok(match (may_skip_validation, constraint.validated) {
        (false, _) => vec![format!("{add};")],
        (true, false) => vec![format!("{add} NOT VALID;")],
        (true, true) => vec![
            format!("{add} NOT VALID;"),
            format!("ALTER TABLE {table_sql} VALIDATE CONSTRAINT {name};"),
        ],
    })
}

fn definition(constraint: &Constraint) -> Result<String, String> {
    constraint.kind.definition_sql().ok_or_else(|| {
        format!(
            "the schema model does not keep the definition of exclusion constraint {}",
            constraint.name
        )
    })
}

/// Some other table has a foreign key to `table`.
fn referenced_by_others(catalog: &Catalog, table: &ObjectName) -> bool {
    !foreign_keys_to(catalog, table).is_empty()
}

/// The foreign keys of other tables that reference `table`, with their tables.
fn foreign_keys_to<'a>(
    catalog: &'a Catalog,
    table: &ObjectName,
) -> Vec<(&'a ObjectName, &'a Constraint)> {
    catalog
        .relations()
        .filter(|relation| &relation.name != table)
        .flat_map(|relation| {
            relation
                .constraints
                .iter()
                .filter_map(move |constraint| match &constraint.kind {
                    ConstraintKind::ForeignKey { references, .. } if references == table => {
                        Some((&relation.name, constraint))
                    }
                    _ => None,
                })
        })
        .collect()
}

/// `CREATE TABLE` again for each dropped table, from the schema before the drop: its columns
/// (types, defaults, nullability), constraints, indexes and owned sequences; with CASCADE, the
/// other tables' foreign keys to it. The rows are gone: `data_loss`.
fn recreate_tables(
    catalog: &Catalog,
    names: &[sqlparser::ast::ObjectName],
    cascade: bool,
) -> Result<Inverse, String> {
    let mut inverse = Inverse {
        data_loss: true,
        ..Inverse::default()
    };
    let mut dropped = Vec::new();
    for name in names {
        let name = ObjectName::from_ast(name).ok_or("a table has no name")?;
        let name = catalog.resolve(&name);
        let relation = catalog
            .relation(&name)
            .ok_or_else(|| format!("the schema model does not know table {name}"))?;
        if relation.kind != RelationKind::Table || relation.partition_of.is_some() {
            return Err(format!(
                "{name} is not a plain table, and the model does not keep how it is partitioned"
            ));
        }
        dropped.push(relation);
    }
    let names: Vec<&ObjectName> = dropped.iter().map(|r| &r.name).collect();
    // Every table first, then the foreign keys between them, so that the order does not matter.
    let mut between = Vec::new();
    for relation in &dropped {
        let (create, later) = recreate_table(catalog, relation, &names)?;
        inverse.sql.extend(create);
        between.extend(later);
    }
    inverse.sql.extend(between);
    for name in &names {
        if cascade {
            for (other, constraint) in foreign_keys_to(catalog, name) {
                if !names.contains(&other) {
                    inverse.sql.extend(add_constraint(other, constraint)?);
                }
            }
        }
        inverse.notes.push(format!(
            "Table {name} comes back empty: its rows are gone. Grants, triggers, comments and \
             policies on it are not in the schema model and are not restored{}.",
            if cascade {
                ", nor views that CASCADE dropped with it"
            } else {
                ""
            }
        ));
    }
    Ok(inverse)
}

/// The statements that rebuild one table as the model knows it, and those to run once every table
/// in `dropped` is back (its NOT VALID constraints and foreign keys to the others).
fn recreate_table(
    catalog: &Catalog,
    relation: &Relation,
    dropped: &[&ObjectName],
) -> Result<(Vec<String>, Vec<String>), String> {
    let table = &relation.name;
    let table_sql = quote_name(table);
    let mut sql = Vec::new();
    let owned: Vec<&Sequence> = catalog
        .sequences()
        .filter(|s| s.owned_by.as_ref().is_some_and(|(owner, _)| owner == table))
        .collect();
    let mut lines = Vec::new();
    for column in &relation.columns {
        let name = &column.name;
        if column.generated || column.identity {
            return Err(format!(
                "the schema model does not keep how column {name} of {table} is generated"
            ));
        }
        let data_type = column.data_type.as_ref().ok_or_else(|| {
            format!("the schema model does not know the type of column {name} of {table}")
        })?;
        if let Some(sequence) = owned
            .iter()
            .find(|s| s.owned_by.as_ref().is_some_and(|(_, c)| c == name))
        {
            sql.push(format!(
                "CREATE SEQUENCE {} AS {data_type};",
                quote_name(&sequence.name)
            ));
        }
        let mut line = format!("{} {data_type}", quote_ident(name));
        if let Some(default) = &column.default {
            line.push_str(&format!(" DEFAULT {default}"));
        }
        if column.not_null {
            line.push_str(" NOT NULL");
        }
        lines.push(line);
    }
    let mut later = Vec::new();
    for constraint in &relation.constraints {
        let to_another_dropped = matches!(&constraint.kind,
            ConstraintKind::ForeignKey { references, .. }
                if references != table && dropped.contains(&references));
        if constraint.validated && !to_another_dropped {
            lines.push(format!(
                "CONSTRAINT {} {}",
                quote_ident(&constraint.name),
                definition(constraint)?
            ));
        } else {
            later.extend(add_constraint(table, constraint)?);
        }
    }
    sql.push(format!(
        "CREATE TABLE {table_sql} (\n    {}\n);",
        lines.join(",\n    ")
    ));
    for index in catalog.indexes_on(table) {
        if !backs_a_constraint(catalog, index) {
            sql.push(create_index(catalog, index));
        }
    }
    for sequence in owned {
        if let Some((_, column)) = &sequence.owned_by {
            sql.push(format!(
                "ALTER SEQUENCE {} OWNED BY {table_sql}.{};",
                quote_name(&sequence.name),
                quote_ident(column)
            ));
        }
    }
    Ok((sql, later))
}
