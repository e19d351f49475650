//! Table constraints, inline (`id int PRIMARY KEY`) or not (`CONSTRAINT … UNIQUE (a, b)`), in
//! `CREATE TABLE` and `ALTER TABLE … ADD`: their generated names, the index a primary key, unique
//! or exclusion constraint builds, the NOT NULL a primary key implies, and `USING INDEX`.

use sqlparser::ast::{
    CheckConstraint, ColumnOption, ColumnOptionDef, ConstraintReferenceMatchKind,
    ConstraintUsingIndex, DeferrableInitial, ForeignKeyConstraint, Ident, IndexColumn,
    ReferentialAction, TableConstraint,
};

use super::{idents, index_key, object_name};
use crate::schema::{expr, naming};
use crate::schema::{Catalog, Constraint, ConstraintKind, Index};
use crate::sql::ObjectName;

/// The table constraint an inline column constraint stands for (`REFERENCES`, `CHECK`,
/// `PRIMARY KEY`, `UNIQUE` on the column `column`), with the name of its `CONSTRAINT` clause.
pub(super) fn column_constraint(
    column: &Ident,
    option: &ColumnOptionDef,
) -> Option<TableConstraint> {
    let on_column = || vec![IndexColumn::from(column.clone())];
    let name = option.name.clone();
    match &option.option {
        ColumnOption::PrimaryKey(pk) => {
            let mut pk = pk.clone();
            pk.name = pk.name.or(name);
            pk.columns = on_column();
            Some(TableConstraint::PrimaryKey(pk))
        }
        ColumnOption::Unique(unique) => {
            let mut unique = unique.clone();
            unique.name = unique.name.or(name);
            unique.columns = on_column();
            Some(TableConstraint::Unique(unique))
        }
        ColumnOption::ForeignKey(fk) => {
            let mut fk = fk.clone();
            fk.name = fk.name.or(name);
            fk.columns = vec![column.clone()];
            Some(TableConstraint::ForeignKey(fk))
        }
        ColumnOption::Check(check) => {
            let mut check = check.clone();
            check.name = check.name.or(name);
            Some(TableConstraint::Check(check))
        }
        _ => None,
    }
}

/// The clauses of a foreign key after its referenced columns as `pg_get_constraintdef` prints them:
/// PostgreSQL's order, defaults (MATCH SIMPLE, NO ACTION, NOT DEFERRABLE, INITIALLY IMMEDIATE) left
/// out, so that the model of a replayed history and of an introspected database agree.
fn foreign_key_actions(fk: &ForeignKeyConstraint) -> String {
    let mut actions = String::new();
    if let Some(match_kind @ ConstraintReferenceMatchKind::Full) = &fk.match_kind {
        actions.push_str(&format!(" {match_kind}"));
    }
    for (event, action) in [("UPDATE", &fk.on_update), ("DELETE", &fk.on_delete)] {
        match action {
            None | Some(ReferentialAction::NoAction) => {}
            Some(action) => actions.push_str(&format!(" ON {event} {action}")),
        }
    }
    if let Some(characteristics) = &fk.characteristics {
        // INITIALLY DEFERRED implies DEFERRABLE.
        let deferred = characteristics.initially == Some(DeferrableInitial::Deferred);
        if characteristics.deferrable == Some(true) || deferred {
            actions.push_str(" DEFERRABLE");
        }
        if deferred {
            actions.push_str(" INITIALLY DEFERRED");
        }
    }
    actions
}

impl Catalog {
    /// The name `constraint` gets when it is added to `table` (schema-qualified): the one it is
    /// given, or the one PostgreSQL generates for it now. `None` for kinds a fixer never names.
    pub fn new_constraint_name(
        &self,
        table: &ObjectName,
        constraint: &TableConstraint,
    ) -> Option<String> {
        match constraint {
            TableConstraint::ForeignKey(fk) => Some(self.foreign_key_name(table, fk)),
            TableConstraint::Check(check) => Some(self.check_name(table, check)),
            TableConstraint::PrimaryKey(pk) => {
                let columns: Vec<String> = pk.columns.iter().map(index_key).collect();
                Some(self.indexed_constraint_name(table, pk.name.as_ref(), &columns, "pkey"))
            }
            TableConstraint::Unique(unique) => {
                let columns: Vec<String> = unique.columns.iter().map(index_key).collect();
                Some(self.indexed_constraint_name(table, unique.name.as_ref(), &columns, "key"))
            }
            // The index becomes the constraint, renamed to the constraint's name when one is given.
            TableConstraint::PrimaryKeyUsingIndex(using)
            | TableConstraint::UniqueUsingIndex(using) => Some(naming::ident(
                using.name.as_ref().unwrap_or(&using.index_name),
            )),
            _ => None,
        }
    }

    fn foreign_key_name(&self, table: &ObjectName, fk: &ForeignKeyConstraint) -> String {
        match &fk.name {
            Some(name) => naming::ident(name),
            None => self.choose_constraint_name(table, &idents(&fk.columns), "fkey"),
        }
    }

    fn check_name(&self, table: &ObjectName, check: &CheckConstraint) -> String {
        match &check.name {
            Some(name) => naming::ident(name),
            None => {
                let columns = self.check_columns(table, &check.expr.to_string());
                // Named after its column only when it uses exactly one.
                let columns = if columns.len() == 1 {
                    columns
                } else {
                    Vec::new()
                };
                self.choose_constraint_name(table, &columns, "check")
            }
        }
    }

    fn indexed_constraint_name(
        &self,
        table: &ObjectName,
        name: Option<&Ident>,
        columns: &[String],
        label: &str,
    ) -> String {
        match name {
            Some(name) => naming::ident(name),
            None => {
                let keys: Vec<String> = columns.iter().map(|c| naming_key(c)).collect();
                self.choose_index_name(table, &keys, label, true)
            }
        }
    }

    /// Adds the constraints of one statement (a `CREATE TABLE`, an `ADD COLUMN`) to `table`, less
    /// the index constraints PostgreSQL finds redundant.
    pub(super) fn add_table_constraints(
        &mut self,
        table: &ObjectName,
        constraints: Vec<TableConstraint>,
    ) {
        for constraint in without_redundant_indexes(constraints) {
            self.add_constraint(table, &constraint, true);
        }
    }

    /// Adds a constraint to `table` (a key of the catalog). `validated` is false for NOT VALID.
    pub(super) fn add_constraint(
        &mut self,
        table: &ObjectName,
        constraint: &TableConstraint,
        validated: bool,
    ) {
        match constraint {
            TableConstraint::PrimaryKey(pk) => {
                let columns: Vec<String> = pk.columns.iter().map(index_key).collect();
                self.add_indexed_constraint(
                    table,
                    pk.name.as_ref(),
                    ConstraintKind::PrimaryKey {
                        columns: columns.clone(),
                    },
                    columns.clone(),
                    "pkey",
                );
                self.set_not_null(table, &columns);
            }
            TableConstraint::Unique(unique) => {
                let columns: Vec<String> = unique.columns.iter().map(index_key).collect();
                self.add_indexed_constraint(
                    table,
                    unique.name.as_ref(),
                    ConstraintKind::Unique {
                        columns: columns.clone(),
                    },
                    columns,
                    "key",
                );
            }
            TableConstraint::Exclude(exclude) => {
                let columns = exclude
                    .elements
                    .iter()
                    .map(|element| index_key(&element.column))
                    .collect();
                self.add_indexed_constraint(
                    table,
                    exclude.name.as_ref(),
                    ConstraintKind::Exclude,
                    columns,
                    "excl",
                );
            }
            TableConstraint::ForeignKey(fk) => {
                let columns = idents(&fk.columns);
                let Some(referenced) = object_name(&fk.foreign_table) else {
                    return;
                };
                let references = self.relation_name(&referenced);
                let referenced_columns = match fk.referred_columns.as_slice() {
                    // `REFERENCES t` means the primary key of t.
                    [] => self.primary_key_columns(&references),
                    given => idents(given),
                };
                let name = self.foreign_key_name(table, fk);
                let kind = ConstraintKind::ForeignKey {
                    columns,
                    references,
                    referenced_columns,
                    actions: foreign_key_actions(fk),
                };
                self.push_new_constraint(table, name, kind, validated);
            }
            TableConstraint::Check(check) => {
                let expression = check.expr.to_string();
                let name = self.check_name(table, check);
                let kind = ConstraintKind::Check { expression };
                self.push_new_constraint(table, name, kind, validated);
            }
            TableConstraint::PrimaryKeyUsingIndex(using) => {
                self.add_constraint_using_index(table, using, true)
            }
            TableConstraint::UniqueUsingIndex(using) => {
                self.add_constraint_using_index(table, using, false)
            }
            // MySQL's inline INDEX/KEY, FULLTEXT and SPATIAL are not PostgreSQL.
            TableConstraint::Index(_) | TableConstraint::FulltextOrSpatial(_) => {}
        }
    }

    fn push_new_constraint(
        &mut self,
        table: &ObjectName,
        name: String,
        kind: ConstraintKind,
        validated: bool,
    ) {
        let origin = *self.current;
        self.push_constraint(
            table,
            Constraint {
                name,
                kind,
                validated,
                origin,
            },
        );
    }

    /// The columns of `table` a CHECK expression uses; when the model does not know the table's
    /// columns, the identifiers the expression uses as column names.
    fn check_columns(&self, table: &ObjectName, expression: &str) -> Vec<String> {
        let known = self.relations.get(table).map_or_else(Vec::new, |relation| {
            expr::mentioned_columns(expression, relation.columns.iter().map(|c| c.name.as_str()))
        });
        if known.is_empty() {
            expr::referenced_identifiers(expression)
        } else {
            known
        }
    }

    /// Adds a primary key, unique or exclusion constraint and the index of the same name that
    /// backs it; an unnamed one gets the index's generated name.
    fn add_indexed_constraint(
        &mut self,
        table: &ObjectName,
        name: Option<&Ident>,
        kind: ConstraintKind,
        columns: Vec<String>,
        label: &str,
    ) {
        let name = self.indexed_constraint_name(table, name, &columns, label);
        let unique = !matches!(kind, ConstraintKind::Exclude);
        self.insert_index(Index {
            name: ObjectName {
                schema: table.schema.clone(),
                name: name.clone(),
            },
            table: table.clone(),
            columns,
            unique,
            predicate: None,
            origin: *self.current,
        });
        self.push_new_constraint(table, name, kind, true);
    }

    /// `ADD [CONSTRAINT name] {PRIMARY KEY | UNIQUE} USING INDEX index`: the existing unique index
    /// becomes the constraint's, renamed to the constraint's name; a primary key makes its columns
    /// NOT NULL.
    fn add_constraint_using_index(
        &mut self,
        table: &ObjectName,
        using: &ConstraintUsingIndex,
        primary: bool,
    ) {
        let mut index = ObjectName {
            schema: table.schema.clone(),
            name: naming::ident(&using.index_name),
        };
        if !self.indexes.contains_key(&index) {
            // Built before the history the model saw (e.g. CONCURRENTLY in an earlier file).
            self.insert_index(Index {
                name: index.clone(),
                table: table.clone(),
                columns: Vec::new(),
                unique: true,
                predicate: None,
                origin: crate::schema::Origin::BASELINE,
            });
        }
        if let Some(name) = &using.name {
            let name = naming::ident(name);
            if name != index.name {
                let renamed = ObjectName {
                    schema: index.schema.clone(),
                    name,
                };
                self.rename_objects(&[(index.clone(), renamed.clone())]);
                index = renamed;
            }
        }
        let columns = match self.indexes.get_mut(&index) {
            Some(mut backing) => {
                backing.unique = true;
                backing.columns.clone()
            }
            None => Vec::new(),
        };
        let kind = if primary {
            self.set_not_null(table, &columns);
            ConstraintKind::PrimaryKey { columns }
        } else {
            ConstraintKind::Unique { columns }
        };
        self.push_new_constraint(table, index.name, kind, true);
    }

    /// Marks the columns NOT NULL (the columns of a primary key).
    fn set_not_null(&mut self, table: &ObjectName, columns: &[String]) {
        for column in columns {
            if let Some(mut columns) = self.relations.columns_mut(table) {
                if let Some(column) = columns.iter_mut().find(|c| &c.name == column) {
                    column.not_null = true;
                }
            }
        }
    }

    /// The columns of the table's primary key, what `REFERENCES table` without columns means.
    fn primary_key_columns(&self, table: &ObjectName) -> Vec<String> {
        self.relations
            .get(table)
            .and_then(|relation| {
                relation.constraints.iter().find_map(|c| match &c.kind {
                    ConstraintKind::PrimaryKey { columns } => Some(columns.clone()),
                    _ => None,
                })
            })
            .unwrap_or_default()
    }
}

/// The constraints of one statement with redundant index constraints merged as PostgreSQL merges
/// them (`transformIndexConstraints`): the primary key first, then each unique constraint unless
/// a kept one has the same keys (a `UNIQUE PRIMARY KEY` column builds one index, the primary
/// key), passing its name on to an unnamed one; the other constraints after them.
fn without_redundant_indexes(constraints: Vec<TableConstraint>) -> Vec<TableConstraint> {
    let (primary, rest): (Vec<_>, Vec<_>) = constraints
        .into_iter()
        .partition(|c| matches!(c, TableConstraint::PrimaryKey(_)));
    let mut kept: Vec<TableConstraint> = Vec::new();
    let mut others = Vec::new();
    for mut constraint in primary.into_iter().chain(rest) {
        let Some(keys) = index_keys(&constraint) else {
            others.push(constraint);
            continue;
        };
        match kept
            .iter_mut()
            .find(|prior| index_keys(prior) == Some(keys.clone()))
        {
            Some(prior) => {
                // An unnamed prior constraint takes this one's name.
                if let (Some(prior_name @ None), Some(name)) =
                    (index_name_mut(prior), index_name_mut(&mut constraint))
                {
                    *prior_name = name.take();
                }
            }
            None => kept.push(constraint),
        }
    }
    kept.extend(others);
    kept
}

/// The key columns and `INCLUDE` columns of a primary key or unique constraint.
fn index_keys(constraint: &TableConstraint) -> Option<(Vec<String>, Vec<String>)> {
    let (columns, include) = match constraint {
        TableConstraint::PrimaryKey(pk) => (&pk.columns, &pk.include),
        TableConstraint::Unique(unique) => (&unique.columns, &unique.include),
        _ => return None,
    };
    Some((columns.iter().map(index_key).collect(), idents(include)))
}

fn index_name_mut(constraint: &mut TableConstraint) -> Option<&mut Option<Ident>> {
    match constraint {
        TableConstraint::PrimaryKey(pk) => Some(&mut pk.name),
        TableConstraint::Unique(unique) => Some(&mut unique.name),
        _ => None,
    }
}

/// What an index key contributes to a generated name: a column's name, `expr` for an expression
/// the model keeps as text (a key that is not a plain identifier).
pub(super) fn naming_key(key: &str) -> String {
    let plain = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_alphanumeric() || c == '_' || c == '$');
    if plain {
        key.to_owned()
    } else {
        "expr".to_owned()
    }
}
