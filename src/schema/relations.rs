//! The catalog's relations by qualified name, with the constraint names of each schema and the
//! partitions of each partitioned table kept beside them: PostgreSQL generates a constraint name no
//! constraint of the schema has, and an `ALTER TABLE` or `CREATE INDEX` reaches a table's
//! partitions; asking every relation of the schema for each made a schema dump's replay quadratic.
//!
//! The same holds for the relations with a foreign key to a table: the lock model asks for them on
//! every change of a column or a table, and a scan of every relation made that quadratic too.
//!
//! Reading goes through `Deref` to the map; every change goes through [`Relations`], whose guards
//! keep the name counts, partition lists and foreign-key lists in step with the relations.

use std::ops::{Deref, DerefMut};
use std::sync::Arc;

use foldhash::{HashMap, HashSet};

use super::journal::{Journal, Journaled};
use super::naming::truncate_identifier;
use super::{user_type_key, Column, Constraint, ConstraintKind, Relation};
use crate::sql::ObjectName;

#[derive(Debug, Clone, Default)]
pub(crate) struct Relations {
    /// Shared, copied on write: a copy of the catalog (the schema after the migration, for the
    /// rules) and a journal's first value of a relation replaced whole copy no relation.
    by_name: Journaled<ObjectName, Arc<Relation>>,
    constraint_names: ConstraintNames,
    partitions: Partitions,
    referencing: Referencing,
    typed: TypeUsers,
}

/// The relations with a column of each user-defined type (or array of it), by the type's name
/// without its schema, as the column names it: a rename of a type (or of a table, whose row type
/// columns may name) rewrites only their columns.
#[derive(Debug, Clone, Default, PartialEq)]
struct TypeUsers(Journaled<String, HashSet<ObjectName>>);

impl TypeUsers {
    fn add(&mut self, relation: &Relation) {
        for key in relation.columns.iter().filter_map(type_key) {
            self.add_one(key, &relation.name);
        }
    }

    fn add_one(&mut self, key: String, relation: &ObjectName) {
        self.0.get_or_default(key).insert(relation.clone());
    }

    fn remove(&mut self, relation: &Relation) {
        for key in relation.columns.iter().filter_map(type_key) {
            self.remove_one(&key, &relation.name);
        }
    }

    fn remove_one(&mut self, key: &str, relation: &ObjectName) {
        if let Some(users) = self.0.get_mut(key) {
            users.remove(relation);
            if users.is_empty() {
                self.0.remove(key);
            }
        }
    }
}

/// The keys a relation's columns are listed under in [`TypeUsers`], sorted, each once: a relation
/// is listed once under a type however many of its columns have it.
fn type_keys(relation: &Relation) -> Vec<String> {
    let mut keys: Vec<String> = relation.columns.iter().filter_map(type_key).collect();
    keys.sort_unstable();
    keys.dedup();
    keys
}

/// The key a column is listed under: the name of the user type it has, without its schema.
fn type_key(column: &Column) -> Option<String> {
    user_type_key(column.data_type.as_ref()?)
}

/// The relations with foreign keys to each table, by the referenced table's name without its schema
/// (as PostgreSQL keeps it): once per foreign key, in the order they were added. Callers resolve the
/// reference itself.
#[derive(Debug, Clone, Default, PartialEq)]
struct Referencing(Journaled<String, Vec<ObjectName>>);

impl Referencing {
    fn add(&mut self, relation: &Relation) {
        for constraint in &relation.constraints {
            self.add_one(relation, constraint);
        }
    }

    fn add_one(&mut self, relation: &Relation, constraint: &Constraint) {
        if let Some(key) = referenced_key(constraint) {
            self.add_key(key, &relation.name);
        }
    }

    fn add_key(&mut self, key: String, relation: &ObjectName) {
        self.0.get_or_default(key).push(relation.clone());
    }

    fn remove(&mut self, relation: &Relation) {
        for constraint in &relation.constraints {
            self.remove_one(&relation.name, constraint);
        }
    }

    fn remove_one(&mut self, relation: &ObjectName, constraint: &Constraint) {
        if let Some(key) = referenced_key(constraint) {
            self.remove_key(&key, relation);
        }
    }

    fn remove_key(&mut self, key: &str, relation: &ObjectName) {
        if let Some(referencing) = self.0.get_mut(key) {
            if let Some(position) = referencing.iter().position(|r| r == relation) {
                referencing.remove(position);
            }
            if referencing.is_empty() {
                self.0.remove(key);
            }
        }
    }
}

/// The key a foreign key is listed under: the referenced table's name without its schema.
fn referenced_key(constraint: &Constraint) -> Option<String> {
    match &constraint.kind {
        ConstraintKind::ForeignKey { references, .. } => {
            Some(truncate_identifier(&references.name))
        }
        _ => None,
    }
}

/// The partitions of each partitioned table, in the order they were attached.
#[derive(Debug, Clone, Default, PartialEq)]
struct Partitions(Journaled<ObjectName, Vec<ObjectName>>);

impl Partitions {
    fn add(&mut self, relation: &Relation) {
        if let Some(parent) = &relation.partition_of {
            self.0
                .get_or_default(parent.clone())
                .push(relation.name.clone());
        }
    }

    fn remove(&mut self, relation: &Relation) {
        let Some(parent) = &relation.partition_of else {
            return;
        };
        if let Some(partitions) = self.0.get_mut(parent) {
            if let Some(position) = partitions.iter().position(|p| *p == relation.name) {
                partitions.remove(position);
            }
            if partitions.is_empty() {
                self.0.remove(parent);
            }
        }
    }
}

/// How many constraints of the relations of each schema carry each name: by name, then schema. Few
/// schemas share a name: a short list each, and a journal records little when one changes.
#[derive(Debug, Clone, Default)]
struct ConstraintNames(Journaled<String, Vec<(String, usize)>>);

impl ConstraintNames {
    fn add(&mut self, relation: &Relation) {
        let Some(schema) = &relation.name.schema else {
            return;
        };
        for constraint in &relation.constraints {
            self.add_one(schema, &constraint.name);
        }
    }

    fn add_one(&mut self, schema: &str, name: &str) {
        if !self.0.contains_key(name) {
            self.0.insert(name.to_owned(), Vec::new());
        }
        let Some(schemas) = self.0.get_mut(name) else {
            return;
        };
        match schemas.iter_mut().find(|(s, _)| s == schema) {
            Some((_, count)) => *count += 1,
            None => schemas.push((schema.to_owned(), 1)),
        }
    }

    fn remove(&mut self, relation: &Relation) {
        let Some(schema) = &relation.name.schema else {
            return;
        };
        for constraint in &relation.constraints {
            self.remove_one(schema, &constraint.name);
        }
    }

    fn remove_one(&mut self, schema: &str, name: &str) {
        let Some(schemas) = self.0.get_mut(name) else {
            return;
        };
        if let Some(position) = schemas.iter().position(|(s, _)| s == schema) {
            schemas[position].1 -= 1;
            if schemas[position].1 == 0 {
                schemas.swap_remove(position);
            }
        }
        if schemas.is_empty() {
            self.0.remove(name);
        }
    }

    fn contains(&self, schema: &str, name: &str) -> bool {
        self.0
            .get(name)
            .is_some_and(|schemas| schemas.iter().any(|(s, _)| s == schema))
    }
}

impl Deref for Relations {
    type Target = HashMap<ObjectName, Arc<Relation>>;

    fn deref(&self) -> &Self::Target {
        &self.by_name
    }
}

impl Journal for Relations {
    fn open(&mut self) {
        self.parts().into_iter().for_each(|part| part.open());
    }

    fn swap(&mut self) {
        self.parts().into_iter().for_each(|part| part.swap());
    }

    fn close(&mut self) {
        self.parts().into_iter().for_each(|part| part.close());
    }

    fn close_swapped(&mut self) {
        self.parts()
            .into_iter()
            .for_each(|part| part.close_swapped());
    }
}

impl Relations {
    /// Every map, for the journals: the relations and what is kept beside them.
    fn parts(&mut self) -> [&mut dyn Journal; 5] {
        [
            &mut self.by_name,
            &mut self.constraint_names.0,
            &mut self.partitions.0,
            &mut self.referencing.0,
            &mut self.typed.0,
        ]
    }

    /// What was added since the innermost journal opened.
    pub(crate) fn added(&self) -> Vec<&Relation> {
        self.by_name.added().into_iter().map(Arc::as_ref).collect()
    }

    /// Adds or replaces the relation under `key`.
    pub(crate) fn insert(&mut self, key: ObjectName, relation: Relation) -> Option<Relation> {
        let replaced = self.remove(&key);
        self.constraint_names.add(&relation);
        self.partitions.add(&relation);
        self.referencing.add(&relation);
        self.typed.add(&relation);
        self.by_name.insert(key, Arc::new(relation));
        replaced
    }

    pub(crate) fn remove(&mut self, key: &ObjectName) -> Option<Relation> {
        let removed = self.by_name.remove(key)?;
        self.constraint_names.remove(&removed);
        self.partitions.remove(&removed);
        self.referencing.remove(&removed);
        self.typed.remove(&removed);
        Some(Arc::unwrap_or_clone(removed))
    }

    /// The partitions attached to the partitioned table `parent` (its key).
    pub(crate) fn partitions_of<'a>(
        &'a self,
        parent: &ObjectName,
    ) -> impl Iterator<Item = &'a Relation> + 'a {
        self.partitions
            .0
            .get(parent)
            .into_iter()
            .flatten()
            .filter_map(|name| self.by_name.get(name))
            .map(Arc::as_ref)
    }

    /// The relations that may have a foreign key to the table named `table` (qualified or not), each
    /// once: those with a foreign key to a table of that name in any schema.
    pub(crate) fn referencing_candidates<'a>(
        &'a self,
        table: &ObjectName,
    ) -> impl Iterator<Item = &'a Relation> + 'a {
        let mut names: Vec<&ObjectName> = self
            .referencing
            .0
            .get(&truncate_identifier(&table.name))
            .into_iter()
            .flatten()
            .collect();
        names.sort();
        names.dedup();
        names
            .into_iter()
            .filter_map(|name| self.by_name.get(name))
            .map(Arc::as_ref)
    }

    /// The relation under `key`, to change (not to rename: its name is its key, see
    /// [`rename`](Self::rename)): what changed in its constraints and columns is listed again when
    /// the guard goes.
    pub(crate) fn get_mut(&mut self, key: &ObjectName) -> Option<RelationMut<'_>> {
        self.guard(key, true)
    }

    /// The columns of the relation under `key`, to change: the types they name are listed again
    /// when the guard goes; its constraints, out of reach, are not looked at.
    pub(crate) fn columns_mut(&mut self, key: &ObjectName) -> Option<ColumnsMut<'_>> {
        self.guard(key, false).map(ColumnsMut)
    }

    fn guard(&mut self, key: &ObjectName, constraints: bool) -> Option<RelationMut<'_>> {
        let relation = Arc::make_mut(self.by_name.get_mut(key)?);
        Some(RelationMut::new(
            relation,
            constraints,
            &mut self.constraint_names,
            &mut self.partitions,
            &mut self.referencing,
            &mut self.typed,
        ))
    }

    /// The relations that may have a column of a user type named `name` (without its schema).
    pub(crate) fn typed_candidates(&self, name: &str) -> Vec<ObjectName> {
        self.typed
            .0
            .get(&truncate_identifier(name))
            .into_iter()
            .flatten()
            .cloned()
            .collect()
    }

    /// Moves the relations `renames` names (old key → new key) to their new keys, and their names
    /// with them; then the partitions of the renamed tables and the foreign keys to them follow.
    pub(crate) fn rename(&mut self, renames: &HashMap<&ObjectName, &ObjectName>) {
        // All out before any goes in: a new name may be another's old one.
        let moved: Vec<(ObjectName, Relation)> = renames
            .iter()
            .filter_map(|(&old, &new)| Some((new.clone(), self.remove(old)?)))
            .collect();
        if moved.is_empty() {
            return;
        }
        for (new, mut relation) in moved {
            relation.name = new.clone();
            self.insert(new, relation);
        }
        for (&old, &new) in renames {
            let partitions = self.partitions.0.get(old).cloned().unwrap_or_default();
            for partition in partitions {
                if let Some(mut partition) = self.get_mut(&partition) {
                    partition.partition_of = Some(new.clone());
                }
            }
            let referencing: Vec<ObjectName> = self
                .referencing_candidates(old)
                .map(|relation| relation.name.clone())
                .collect();
            for name in referencing {
                let Some(mut relation) = self.get_mut(&name) else {
                    continue;
                };
                for constraint in &mut relation.constraints {
                    if let ConstraintKind::ForeignKey { references, .. } = &mut constraint.kind {
                        if references == old {
                            *references = new.clone();
                        }
                    }
                }
            }
        }
    }

    /// Changes the foreign keys to the table `table` (its key) with `change`, which must keep the
    /// table they reference: only the relations listed as referencing a table of that name are
    /// looked at.
    pub(crate) fn change_foreign_keys_to(
        &mut self,
        table: &ObjectName,
        mut change: impl FnMut(&mut ConstraintKind),
    ) {
        let referencing: Vec<ObjectName> = self
            .referencing_candidates(table)
            .map(|relation| relation.name.clone())
            .collect();
        for name in referencing {
            if let Some(relation) = self.by_name.get_mut(&name).map(Arc::make_mut) {
                for constraint in &mut relation.constraints {
                    change(&mut constraint.kind);
                }
            }
        }
    }

    /// Drops the foreign keys to the table `table` (its key) for which `drop` holds, of every
    /// relation: only the relations listed as referencing a table of that name are looked at.
    pub(crate) fn drop_foreign_keys_to(
        &mut self,
        table: &ObjectName,
        drop: impl Fn(&Constraint) -> bool,
    ) {
        let referencing: Vec<ObjectName> = self
            .referencing_candidates(table)
            .map(|relation| relation.name.clone())
            .collect();
        for name in referencing {
            let Some(relation) = self.by_name.get_mut(&name).map(Arc::make_mut) else {
                continue;
            };
            let schema = relation.name.schema.as_deref();
            let mut dropped = Vec::new();
            relation.constraints.retain(|constraint| {
                let kept = !drop(constraint);
                if !kept {
                    if let Some(schema) = schema {
                        self.constraint_names.remove_one(schema, &constraint.name);
                    }
                    dropped.push(constraint.clone());
                }
                kept
            });
            for constraint in &dropped {
                self.referencing.remove_one(&name, constraint);
            }
        }
    }

    /// True when a constraint of a relation of `schema` is named `name`.
    pub(crate) fn constraint_name_taken(&self, schema: &str, name: &str) -> bool {
        self.constraint_names.contains(schema, name)
    }

    /// Every map, each in one order whatever its history: equal for equal relations and lists.
    #[cfg(test)]
    pub(crate) fn fingerprint(&self) -> String {
        use std::collections::BTreeSet;
        [
            self.by_name.fingerprint(|r| format!("{r:?}")),
            self.constraint_names.0.fingerprint(|schemas| {
                let mut schemas = schemas.clone();
                schemas.sort();
                schemas
            }),
            self.partitions.0.fingerprint(Clone::clone),
            self.referencing.0.fingerprint(Clone::clone),
            self.typed
                .0
                .fingerprint(|users| format!("{:?}", users.iter().collect::<BTreeSet<_>>())),
        ]
        .join("\n")
    }

    /// Whether the counted constraint names are those of the relations: what every change must
    /// keep true.
    #[cfg(test)]
    pub(crate) fn constraint_names_in_step(&self) -> bool {
        let mut counted = ConstraintNames::default();
        for relation in self.by_name.values() {
            counted.add(relation);
        }
        sorted_lists(&counted.0) == sorted_lists(&self.constraint_names.0)
    }

    /// Whether the listed partitions are those of the relations.
    #[cfg(test)]
    pub(crate) fn partitions_in_step(&self) -> bool {
        let mut listed = Partitions::default();
        for relation in self.by_name.values() {
            listed.add(relation);
        }
        sorted_lists(&listed.0) == sorted_lists(&self.partitions.0)
    }

    /// Whether the listed users of each type are those of the relations.
    #[cfg(test)]
    pub(crate) fn typed_in_step(&self) -> bool {
        let mut listed = TypeUsers::default();
        for relation in self.by_name.values() {
            listed.add(relation);
        }
        listed == self.typed
    }

    /// Whether the listed foreign keys are those of the relations.
    #[cfg(test)]
    pub(crate) fn referencing_in_step(&self) -> bool {
        let mut listed = Referencing::default();
        for relation in self.by_name.values() {
            listed.add(relation);
        }
        sorted_lists(&listed.0) == sorted_lists(&self.referencing.0)
    }
}

/// A map of lists in one order, keys and lists sorted, to compare two built differently.
#[cfg(test)]
pub(super) fn sorted_lists<K: Ord + Clone, V: Ord + Clone>(
    map: &HashMap<K, Vec<V>>,
) -> Vec<(K, Vec<V>)> {
    let mut all: Vec<(K, Vec<V>)> = map
        .iter()
        .map(|(key, list)| {
            let mut list = list.clone();
            list.sort();
            (key.clone(), list)
        })
        .collect();
    all.sort();
    all
}

/// A relation being changed. When it goes, the lists beside the relations take what changed: the
/// constraint names and foreign keys added or dropped, the user types its columns gained or lost,
/// its partition parent (listed again, at the end of the parent's partitions). Taking every
/// constraint and column out and in again for each change (a column added, a constraint validated)
/// cost more than the change, and under a journal copied every list it touched.
pub(crate) struct RelationMut<'a> {
    relation: &'a mut Relation,
    /// The relation's constraints as listed before the change; `None` when the guard cannot reach
    /// them ([`ColumnsMut`]).
    listed_constraints: Option<Vec<ListedConstraint>>,
    /// The keys its columns are listed under in [`TypeUsers`] before the change.
    listed_types: Vec<String>,
    constraint_names: &'a mut ConstraintNames,
    partitions: &'a mut Partitions,
    referencing: &'a mut Referencing,
    typed: &'a mut TypeUsers,
}

/// A constraint as the lists hold it: its name and, for a foreign key, the key of the table it
/// references.
type ListedConstraint = (String, Option<String>);

/// A relation's constraints as the lists hold them, sorted.
fn listed_constraints(relation: &Relation) -> Vec<ListedConstraint> {
    let mut listed: Vec<ListedConstraint> = relation
        .constraints
        .iter()
        .map(|constraint| (constraint.name.clone(), referenced_key(constraint)))
        .collect();
    listed.sort_unstable();
    listed
}

/// Calls `change(item, false)` for each item of `before` that `after` lacks and `change(item,
/// true)` for each item of `after` that `before` lacks, repeats counted: both sorted.
fn differences<T: Ord>(before: &[T], after: &[T], mut change: impl FnMut(&T, bool)) {
    let (mut b, mut a) = (before.iter().peekable(), after.iter().peekable());
    loop {
        match (b.peek(), a.peek()) {
            (None, None) => return,
            (Some(old), Some(now)) if old == now => {
                b.next();
                a.next();
            }
            (Some(old), Some(now)) if old > now => {
                change(now, true);
                a.next();
            }
            (Some(old), _) => {
                change(old, false);
                b.next();
            }
            (None, Some(now)) => {
                change(now, true);
                a.next();
            }
        }
    }
}

impl<'a> RelationMut<'a> {
    fn new(
        relation: &'a mut Relation,
        constraints: bool,
        constraint_names: &'a mut ConstraintNames,
        partitions: &'a mut Partitions,
        referencing: &'a mut Referencing,
        typed: &'a mut TypeUsers,
    ) -> Self {
        partitions.remove(relation);
        RelationMut {
            listed_constraints: constraints.then(|| listed_constraints(relation)),
            listed_types: type_keys(relation),
            relation,
            constraint_names,
            partitions,
            referencing,
            typed,
        }
    }
}

/// The columns of a relation being changed (see [`Relations::columns_mut`]).
pub(crate) struct ColumnsMut<'a>(RelationMut<'a>);

impl<'a> ColumnsMut<'a> {
    /// The column at `position` (in range), to change.
    pub(crate) fn into_column(self, position: usize) -> ColumnMut<'a> {
        ColumnMut {
            columns: self,
            position,
        }
    }
}

/// One column of a relation being changed.
pub(crate) struct ColumnMut<'a> {
    columns: ColumnsMut<'a>,
    position: usize,
}

impl Deref for ColumnMut<'_> {
    type Target = Column;

    fn deref(&self) -> &Column {
        &self.columns[self.position]
    }
}

impl DerefMut for ColumnMut<'_> {
    fn deref_mut(&mut self) -> &mut Column {
        &mut self.columns[self.position]
    }
}

impl Deref for ColumnsMut<'_> {
    type Target = Vec<Column>;

    fn deref(&self) -> &Vec<Column> {
        &self.0.columns
    }
}

impl DerefMut for ColumnsMut<'_> {
    fn deref_mut(&mut self) -> &mut Vec<Column> {
        &mut self.0.columns
    }
}

impl Deref for RelationMut<'_> {
    type Target = Relation;

    fn deref(&self) -> &Relation {
        self.relation
    }
}

impl DerefMut for RelationMut<'_> {
    fn deref_mut(&mut self) -> &mut Relation {
        self.relation
    }
}

impl Drop for RelationMut<'_> {
    fn drop(&mut self) {
        let name = &self.relation.name;
        if let Some(before) = &self.listed_constraints {
            let after = listed_constraints(self.relation);
            differences(before, &after, |(constraint, references), added| {
                if let Some(schema) = name.schema.as_deref() {
                    match added {
                        true => self.constraint_names.add_one(schema, constraint),
                        false => self.constraint_names.remove_one(schema, constraint),
                    }
                }
                match (references, added) {
                    (Some(key), true) => self.referencing.add_key(key.clone(), name),
                    (Some(key), false) => self.referencing.remove_key(key, name),
                    (None, _) => {}
                }
            });
        }
        differences(
            &self.listed_types,
            &type_keys(self.relation),
            |key, added| match added {
                true => self.typed.add_one(key.clone(), name),
                false => self.typed.remove_one(key, name),
            },
        );
        self.partitions.add(self.relation);
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use crate::schema::{Added, Catalog};

    const SCHEMAS: &[&str] = &["public", "app"];
    const TABLES: &[&str] = &["a", "b", "c"];
    const NAMES: &[&str] = &["a_pkey", "a_x_check", "b_x_fkey", "k", "a_id_key"];

    /// One DDL statement over a few schemas, tables and constraint names, as SQL.
    fn statement() -> impl Strategy<Value = String> {
        let s = || prop::sample::select(SCHEMAS);
        let t = || prop::sample::select(TABLES);
        let n = || prop::sample::select(NAMES);
        prop_oneof![
            (s(), t(), s(), t()).prop_map(|(s, t, s2, t2)| format!(
                "CREATE TABLE {s}.{t} (id int PRIMARY KEY, x int CHECK (x > 0), y int UNIQUE, \
                 z int REFERENCES {s2}.{t2} (id))"
            )),
            (s(), t()).prop_map(|(s, t)| format!("CREATE TABLE {s}.{t} (id int, x int)")),
            (s(), t()).prop_map(|(s, t)| format!(
                "CREATE TABLE {s}.{t} (id int, x int) PARTITION BY RANGE (id)"
            )),
            (s(), t(), s(), t()).prop_map(|(s, t, s2, t2)| format!(
                "CREATE TABLE {s}.{t} PARTITION OF {s2}.{t2} FOR VALUES FROM (1) TO (9)"
            )),
            (s(), t(), s(), t()).prop_map(|(s, t, s2, t2)| format!(
                "ALTER TABLE {s}.{t} ATTACH PARTITION {s2}.{t2} FOR VALUES FROM (1) TO (9)"
            )),
            (s(), t(), s(), t()).prop_map(|(s, t, s2, t2)| format!(
                "ALTER TABLE {s}.{t} DETACH PARTITION {s2}.{t2}"
            )),
            (s(), t(), n()).prop_map(|(s, t, n)| format!("CREATE INDEX {n} ON {s}.{t} (x)")),
            (s(), t()).prop_map(|(s, t)| format!("CREATE UNIQUE INDEX ON {s}.{t} (id)")),
            (s(), t(), n()).prop_map(|(s, t, n)| format!(
                "ALTER TABLE {s}.{t} ADD CONSTRAINT {n} CHECK (x > 0)"
            )),
            (s(), t()).prop_map(|(s, t)| format!("ALTER TABLE {s}.{t} ADD CHECK (x > 1)")),
            (s(), t()).prop_map(|(s, t)| format!("ALTER TABLE {s}.{t} ADD UNIQUE (x)")),
            (s(), t(), s(), t()).prop_map(|(s, t, s2, t2)| format!(
                "ALTER TABLE {s}.{t} ADD FOREIGN KEY (x) REFERENCES {s2}.{t2} (id)"
            )),
            (s(), t(), n())
                .prop_map(|(s, t, n)| format!("ALTER TABLE {s}.{t} DROP CONSTRAINT {n}")),
            (s(), t(), n(), n()).prop_map(|(s, t, n, n2)| format!(
                "ALTER TABLE {s}.{t} RENAME CONSTRAINT {n} TO {n2}"
            )),
            (s(), t(), n())
                .prop_map(|(s, t, n)| format!("ALTER TABLE {s}.{t} VALIDATE CONSTRAINT {n}")),
            (s(), t(), t()).prop_map(|(s, t, t2)| format!("ALTER TABLE {s}.{t} RENAME TO {t2}")),
            (s(), t(), s()).prop_map(|(s, t, s2)| format!("ALTER TABLE {s}.{t} SET SCHEMA {s2}")),
            (s(), t(), prop::sample::select(&["id", "x"][..]))
                .prop_map(|(s, t, c)| format!("ALTER TABLE {s}.{t} DROP COLUMN {c}")),
            (s(), t()).prop_map(|(s, t)| format!("ALTER TABLE {s}.{t} RENAME COLUMN x TO w")),
            (s(), t()).prop_map(|(s, t)| format!("DROP TABLE {s}.{t} CASCADE")),
            (s(), n()).prop_map(|(s, n)| format!("DROP INDEX {s}.{n}")),
            (s(), n(), n()).prop_map(|(s, n, n2)| format!("ALTER INDEX {s}.{n} RENAME TO {n2}")),
            (s(), s()).prop_map(|(s, s2)| format!("ALTER SCHEMA {s} RENAME TO {s2}")),
            (s(), t()).prop_map(|(s, t)| format!("CREATE TYPE {s}.e_{t} AS ENUM ('a')")),
            (s(), t(), t()).prop_map(|(s, t, t2)| format!("ALTER TYPE {s}.e_{t} RENAME TO e_{t2}")),
            (s(), t(), s()).prop_map(|(s, t, s2)| format!("ALTER TYPE {s}.e_{t} SET SCHEMA {s2}")),
            (s(), t(), s(), t()).prop_map(|(s, t, s2, t2)| format!(
                "ALTER TABLE {s}.{t} ADD COLUMN k_{t2} {s2}.e_{t2}[]"
            )),
            (s(), t(), s(), t()).prop_map(|(s, t, s2, t2)| format!(
                "ALTER TABLE {s}.{t} ALTER COLUMN x TYPE {s2}.e_{t2} USING NULL"
            )),
            (s(), t(), s(), t()).prop_map(|(s, t, s2, t2)| format!(
                "CREATE TABLE {s}.{t} (id serial, r {s2}.{t2}, e {s2}.e_{t2})"
            )),
            (s(), t(), t())
                .prop_map(|(s, t, t2)| format!("CREATE SEQUENCE {s}.q_{t} OWNED BY {s}.{t2}.x")),
            (s(), t()).prop_map(|(s, t)| format!("ALTER SEQUENCE {s}.q_{t} OWNED BY NONE")),
            s().prop_map(|s| format!("DROP SCHEMA {s} CASCADE")),
            s().prop_map(|s| format!("SET search_path TO {s}")),
            t().prop_map(|t| format!("CREATE TEMP TABLE {t} (id int PRIMARY KEY)")),
            (s(), t(), t())
                .prop_map(|(s, t, t2)| format!("CREATE VIEW {s}.v_{t} AS SELECT id FROM {s}.{t2}")),
            (s(), t()).prop_map(|(s, t)| format!(
                "ALTER TABLE {s}.{t} ALTER COLUMN x SET NOT NULL, ALTER COLUMN id SET DEFAULT 1"
            )),
            (s(), t(), t())
                .prop_map(|(s, t, t2)| format!("ALTER SEQUENCE {s}.q_{t} RENAME TO q_{t2}")),
        ]
    }

    fn apply_all(catalog: &mut Catalog, statements: &[String]) {
        for sql in statements {
            for statement in &crate::sql::parse_text(sql).statements {
                catalog.apply(sql, statement);
            }
        }
    }

    /// The names of the relations, indexes, sequences and types, sorted.
    fn names(catalog: &Catalog) -> Vec<String> {
        let mut names: Vec<String> = catalog
            .relations()
            .map(|r| format!("relation {}", r.name))
            .chain(catalog.indexes().map(|i| format!("index {}", i.name)))
            .chain(catalog.sequences().map(|s| format!("sequence {}", s.name)))
            .chain(catalog.user_types().map(|t| format!("type {}", t.name)))
            .collect();
        names.sort();
        names
    }

    proptest! {
        #[test]
        fn a_journal_swaps_to_the_catalog_at_its_opening_and_back_and_undoes_the_changes_made_on_it(
            history in prop::collection::vec(statement(), 0..30),
            first in prop::collection::vec(statement(), 0..15),
            second in prop::collection::vec(statement(), 0..15),
            drafted in prop::collection::vec(statement(), 0..15),
        ) {
            let mut catalog = Catalog::default();
            catalog.begin_migration();
            apply_all(&mut catalog, &history);
            catalog.begin_migration();
            let before = catalog.clone();
            catalog.open_journal();
            apply_all(&mut catalog, &first);
            // A journal inside, kept: the outer one still goes back to its own opening.
            let middle = catalog.clone();
            catalog.open_journal();
            apply_all(&mut catalog, &second);
            let added: Vec<String> = names(&catalog)
                .into_iter()
                .filter(|name| !names(&middle).contains(name))
                .collect();
            let Added { relations, indexes, sequences, user_types } = catalog.added();
            let mut found: Vec<String> = relations.iter().map(|r| format!("relation {}", r.name))
                .chain(indexes.iter().map(|i| format!("index {}", i.name)))
                .chain(sequences.iter().map(|s| format!("sequence {}", s.name)))
                .chain(user_types.iter().map(|t| format!("type {}", t.name)))
                .collect();
            found.sort();
            prop_assert_eq!(found, added);
            catalog.close_journal();
            let after = catalog.fingerprint();
            catalog.swap_journal();
            prop_assert_eq!(catalog.fingerprint(), before.fingerprint());
            // What the built-in drafts do on the schema before: changes under a journal, undone.
            catalog.open_journal();
            catalog.begin_migration();
            apply_all(&mut catalog, &drafted);
            catalog.undo_journal();
            prop_assert_eq!(catalog.fingerprint(), before.fingerprint());
            catalog.swap_journal();
            prop_assert_eq!(catalog.fingerprint(), after.clone());
            catalog.close_journal();
            prop_assert_eq!(catalog.fingerprint(), after.clone());
            prop_assert!(catalog.relations.constraint_names_in_step());
            prop_assert!(catalog.relations.partitions_in_step());
            prop_assert!(catalog.relations.referencing_in_step());
            prop_assert!(catalog.relations.typed_in_step());
            prop_assert!(catalog.sequences.in_step());
            prop_assert!(catalog.indexes.in_step());
            // With no journal left open, a later one starts from here.
            catalog.open_journal();
            apply_all(&mut catalog, &first);
            catalog.undo_journal();
            prop_assert_eq!(catalog.fingerprint(), after);
        }
    }

    /// What the counted names replace: a look at every constraint of every table of the schema.
    fn taken_by_scan(catalog: &Catalog, schema: &str, name: &str) -> bool {
        catalog
            .relations()
            .filter(|r| r.name.schema.as_deref() == Some(schema))
            .any(|r| r.constraints.iter().any(|c| c.name == name))
    }

    proptest! {
        #[test]
        fn counted_names_and_listed_partitions_indexes_types_and_sequences_stay_in_step_with_the_catalog(
            statements in prop::collection::vec(statement(), 1..40)
        ) {
            let mut catalog = Catalog::default();
            catalog.begin_migration();
            for sql in &statements {
                for statement in &crate::sql::parse_text(sql).statements {
                    catalog.apply(sql, statement);
                }
                prop_assert!(catalog.relations.constraint_names_in_step(), "after {sql}");
                prop_assert!(catalog.relations.partitions_in_step(), "after {sql}");
                prop_assert!(catalog.relations.referencing_in_step(), "after {sql}");
                prop_assert!(catalog.relations.typed_in_step(), "after {sql}");
                prop_assert!(catalog.sequences.in_step(), "after {sql}");
                prop_assert!(catalog.indexes.in_step(), "after {sql}");
                let generated = ["a_x_check1", "b_x_key", "c_y_key", "a_z_fkey", "b_pkey"];
                for schema in SCHEMAS {
                    for name in NAMES.iter().chain(&generated) {
                        prop_assert_eq!(
                            catalog.relations.constraint_name_taken(schema, name),
                            taken_by_scan(&catalog, schema, name),
                            "{}.{} after {}", schema, name, sql
                        );
                    }
                }
            }
        }
    }
}
