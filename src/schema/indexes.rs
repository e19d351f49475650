//! The catalog's indexes by qualified name, with the indexes of each table kept beside them: rules
//! and the lock model ask for a table's indexes for every foreign key and index they look at, and
//! a look at every index of the schema for each made a schema dump's review quadratic.
//!
//! Reading goes through `Deref` to the map; every change goes through [`Indexes`], which keeps the
//! list per table in step.

use std::collections::HashMap;
use std::ops::Deref;

use super::journal::{Journal, Journaled};
use super::Index;
use crate::sql::ObjectName;

#[derive(Debug, Clone, Default)]
pub(crate) struct Indexes {
    by_name: Journaled<ObjectName, Index>,
    /// The names of each table's indexes, in the order they were added.
    by_table: Journaled<ObjectName, Vec<ObjectName>>,
}

impl Journal for Indexes {
    fn open(&mut self) {
        self.by_name.open();
        self.by_table.open();
    }

    fn swap(&mut self) {
        self.by_name.swap();
        self.by_table.swap();
    }

    fn close(&mut self) {
        self.by_name.close();
        self.by_table.close();
    }

    fn close_swapped(&mut self) {
        self.by_name.close_swapped();
        self.by_table.close_swapped();
    }
}

impl Deref for Indexes {
    type Target = HashMap<ObjectName, Index>;

    fn deref(&self) -> &Self::Target {
        &self.by_name
    }
}

impl Indexes {
    /// The indexes of `table` (its qualified name, as the catalog keys it), in the order they were
    /// added.
    pub(crate) fn on<'a>(&'a self, table: &ObjectName) -> impl Iterator<Item = &'a Index> + 'a {
        self.by_table
            .get(table)
            .into_iter()
            .flatten()
            .filter_map(|name| self.by_name.get(name))
    }

    /// What was added since the innermost journal opened.
    pub(crate) fn added(&self) -> Vec<&Index> {
        self.by_name.added()
    }

    /// Adds or replaces the index under `key`.
    pub(crate) fn insert(&mut self, key: ObjectName, index: Index) -> Option<Index> {
        let replaced = self.remove(&key);
        self.by_table
            .get_or_default(index.table.clone())
            .push(key.clone());
        self.by_name.insert(key, index);
        replaced
    }

    pub(crate) fn remove(&mut self, key: &ObjectName) -> Option<Index> {
        let removed = self.by_name.remove(key)?;
        if let Some(names) = self.by_table.get_mut(&removed.table) {
            names.retain(|name| name != key);
            if names.is_empty() {
                self.by_table.remove(&removed.table);
            }
        }
        Some(removed)
    }

    /// Drops the indexes of `table`.
    pub(crate) fn remove_on(&mut self, table: &ObjectName) {
        for name in self.by_table.remove(table).unwrap_or_default() {
            self.by_name.remove(&name);
        }
    }

    /// Keeps only the indexes for which `keep` holds.
    pub(crate) fn retain(&mut self, keep: impl Fn(&ObjectName, &Index) -> bool) {
        let dropped: Vec<ObjectName> = self
            .by_name
            .iter()
            .filter(|(name, index)| !keep(name, index))
            .map(|(name, _)| name.clone())
            .collect();
        for name in dropped {
            self.remove(&name);
        }
    }

    /// The index under `key`, to change anything but its name and table.
    pub(crate) fn get_mut(&mut self, key: &ObjectName) -> Option<IndexMut<'_>> {
        self.by_name.get_mut(key).map(IndexMut)
    }

    /// Calls `change` on each index of `table`, to change anything but its name and table.
    pub(crate) fn change_on(&mut self, table: &ObjectName, mut change: impl FnMut(IndexMut)) {
        for name in self.by_table.get(table).into_iter().flatten() {
            if let Some(index) = self.by_name.get_mut(name) {
                change(IndexMut(index));
            }
        }
    }

    /// Renames indexes and the tables they are on: `renames` gives the new name (key) of an index
    /// or table that moves. Only the renamed indexes and the lists of renamed tables are looked at;
    /// each table's indexes keep their order.
    pub(crate) fn rename(&mut self, renames: &HashMap<&ObjectName, &ObjectName>) {
        // All out before any goes in: a new name may be another's old one.
        let moved: Vec<(&ObjectName, Index)> = renames
            .iter()
            .filter_map(|(&old, &new)| Some((new, self.by_name.remove(old)?)))
            .collect();
        for (new, mut index) in moved {
            // An index of that name that does not move is replaced, as `insert` replaces it.
            self.remove(new);
            if let Some(slot) = self
                .by_table
                .get_mut(&index.table)
                .and_then(|names| names.iter_mut().find(|name| **name == index.name))
            {
                *slot = new.clone();
            }
            index.name = new.clone();
            self.by_name.insert(new.clone(), index);
        }
        let tables: Vec<(&ObjectName, Vec<ObjectName>)> = renames
            .iter()
            .filter_map(|(&old, &new)| Some((new, self.by_table.remove(old)?)))
            .collect();
        for (new, names) in tables {
            for name in &names {
                if let Some(index) = self.by_name.get_mut(name) {
                    index.table = new.clone();
                }
            }
            self.by_table.get_or_default(new.clone()).extend(names);
        }
    }

    /// Both maps, each in one order whatever its history.
    #[cfg(test)]
    pub(crate) fn fingerprint(&self) -> String {
        format!(
            "{}\n{}",
            self.by_name.fingerprint(|v| format!("{v:?}")),
            self.by_table.fingerprint(Clone::clone)
        )
    }

    /// Whether the lists per table are those of the indexes: what every change must keep true.
    #[cfg(test)]
    pub(crate) fn in_step(&self) -> bool {
        let mut counted: HashMap<&ObjectName, Vec<&ObjectName>> = HashMap::new();
        for (name, index) in self.by_name.iter() {
            counted.entry(&index.table).or_default().push(name);
        }
        counted.len() == self.by_table.len()
            && self.by_table.iter().all(|(table, names)| {
                let mut listed: Vec<&ObjectName> = names.iter().collect();
                let mut found = counted.get(table).cloned().unwrap_or_default();
                listed.sort();
                found.sort();
                listed == found
            })
    }
}

/// An index being changed: its name and table, by which [`Indexes`] finds it, stay as they are.
pub(crate) struct IndexMut<'a>(&'a mut Index);

impl IndexMut<'_> {
    pub(crate) fn columns_mut(&mut self) -> &mut Vec<String> {
        &mut self.0.columns
    }

    pub(crate) fn predicate_mut(&mut self) -> &mut Option<String> {
        &mut self.0.predicate
    }

    pub(crate) fn set_unique(&mut self) {
        self.0.unique = true;
    }
}

impl Deref for IndexMut<'_> {
    type Target = Index;

    fn deref(&self) -> &Index {
        self.0
    }
}
