//! The catalog's indexes and sequences: by qualified name, with the members of each table kept
//! beside them (the indexes on it, the sequences it owns). Rules and the lock model ask for a table's
//! indexes for every foreign key and index they look at; dropping a table or column drops its owned
//! sequences and renaming or moving a table moves them. A look at every index or sequence for each
//! made a schema dump's review and a long history's replay quadratic.
//!
//! Reading goes through `Deref` to the map; every change goes through [`Grouped`], which keeps the
//! list per table in step.

use std::ops::{Deref, DerefMut};

use foldhash::HashMap;

use super::journal::{Journal, Journaled};
use super::{Index, Sequence};
use crate::sql::ObjectName;

/// What [`Grouped`] holds: an object with a name and, maybe, a table it belongs to.
pub(crate) trait Member: Clone {
    fn name_mut(&mut self) -> &mut ObjectName;
    /// The table it belongs to: it is listed under that table.
    fn table(&self) -> Option<&ObjectName>;
    fn table_mut(&mut self) -> Option<&mut ObjectName>;
}

impl Member for Index {
    fn name_mut(&mut self) -> &mut ObjectName {
        &mut self.name
    }

    fn table(&self) -> Option<&ObjectName> {
        Some(&self.table)
    }

    fn table_mut(&mut self) -> Option<&mut ObjectName> {
        Some(&mut self.table)
    }
}

/// A sequence belongs to the table that owns it.
impl Member for Sequence {
    fn name_mut(&mut self) -> &mut ObjectName {
        &mut self.name
    }

    fn table(&self) -> Option<&ObjectName> {
        self.owned_by.as_ref().map(|(table, _)| table)
    }

    fn table_mut(&mut self) -> Option<&mut ObjectName> {
        self.owned_by.as_mut().map(|(table, _)| table)
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Grouped<V> {
    by_name: Journaled<ObjectName, V>,
    /// The names of each table's members, in the order they were added.
    by_table: Journaled<ObjectName, Vec<ObjectName>>,
}

impl<V> Default for Grouped<V> {
    fn default() -> Self {
        Grouped {
            by_name: Journaled::default(),
            by_table: Journaled::default(),
        }
    }
}

impl<V> Deref for Grouped<V> {
    type Target = HashMap<ObjectName, V>;

    fn deref(&self) -> &Self::Target {
        &self.by_name
    }
}

impl<V: Member> Journal for Grouped<V> {
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

impl<V: Member> Grouped<V> {
    /// The members of `table` (its qualified name, as the catalog keys it), in the order they were
    /// added.
    pub(crate) fn on<'a>(&'a self, table: &ObjectName) -> impl Iterator<Item = &'a V> + 'a {
        self.by_table
            .get(table)
            .into_iter()
            .flatten()
            .filter_map(|name| self.by_name.get(name))
    }

    /// What was added since the innermost journal opened.
    pub(crate) fn added(&self) -> Vec<&V> {
        self.by_name.added()
    }

    /// Adds or replaces the member under `key`.
    pub(crate) fn insert(&mut self, key: ObjectName, value: V) -> Option<V> {
        let replaced = self.remove(&key);
        list(&mut self.by_table, &key, value.table());
        self.by_name.insert(key, value);
        replaced
    }

    pub(crate) fn remove(&mut self, key: &ObjectName) -> Option<V> {
        let removed = self.by_name.remove(key)?;
        unlist(&mut self.by_table, key, removed.table());
        Some(removed)
    }

    /// Keeps only the members for which `keep` holds.
    pub(crate) fn retain(&mut self, keep: impl Fn(&ObjectName, &V) -> bool) {
        let dropped: Vec<ObjectName> = self
            .by_name
            .iter()
            .filter(|(name, value)| !keep(name, value))
            .map(|(name, _)| name.clone())
            .collect();
        for name in dropped {
            self.remove(&name);
        }
    }

    /// Drops the members of `table` for which `drop` holds.
    pub(crate) fn remove_on(&mut self, table: &ObjectName, drop: impl Fn(&V) -> bool) {
        let dropped: Vec<ObjectName> = self
            .by_table
            .get(table)
            .into_iter()
            .flatten()
            .filter(|name| self.by_name.get(*name).is_some_and(&drop))
            .cloned()
            .collect();
        for name in dropped {
            self.remove(&name);
        }
    }

    /// The member under `key`, to change anything but its name; listed under its table again when
    /// the guard goes, if that changed.
    pub(crate) fn get_mut(&mut self, key: &ObjectName) -> Option<MemberMut<'_, V>> {
        let value = self.by_name.get_mut(key)?;
        Some(MemberMut {
            key: key.clone(),
            table: value.table().cloned(),
            value,
            by_table: &mut self.by_table,
        })
    }

    /// Calls `change` on each member of `table`, to change anything but its name and table.
    pub(crate) fn change_on(&mut self, table: &ObjectName, mut change: impl FnMut(&mut V)) {
        for name in self.by_table.get(table).into_iter().flatten() {
            if let Some(value) = self.by_name.get_mut(name) {
                change(value);
            }
        }
    }

    /// Renames members and the tables they belong to: `renames` gives the new name (key) of a
    /// member or table that moves. Only the renamed members and the lists of renamed tables are
    /// looked at; each table's members keep their order.
    pub(crate) fn rename(&mut self, renames: &HashMap<&ObjectName, &ObjectName>) {
        // All out before any goes in: a new name may be another's old one.
        let moved: Vec<(&ObjectName, &ObjectName, V)> = renames
            .iter()
            .filter_map(|(&old, &new)| Some((old, new, self.by_name.remove(old)?)))
            .collect();
        for (old, new, mut value) in moved {
            // A member of that name that does not move is replaced, as `insert` replaces it.
            self.remove(new);
            if let Some(slot) = value
                .table()
                .and_then(|table| self.by_table.get_mut(table))
                .and_then(|names| names.iter_mut().find(|name| *name == old))
            {
                *slot = new.clone();
            }
            *value.name_mut() = new.clone();
            self.by_name.insert(new.clone(), value);
        }
        let tables: Vec<(&ObjectName, Vec<ObjectName>)> = renames
            .iter()
            .filter_map(|(&old, &new)| Some((new, self.by_table.remove(old)?)))
            .collect();
        for (new, names) in tables {
            for name in &names {
                if let Some(table) = self.by_name.get_mut(name).and_then(V::table_mut) {
                    *table = new.clone();
                }
            }
            self.by_table.get_or_default(new.clone()).extend(names);
        }
    }

    /// Both maps, each in one order whatever its history.
    #[cfg(test)]
    pub(crate) fn fingerprint(&self) -> String
    where
        V: std::fmt::Debug,
    {
        format!(
            "{}\n{}",
            self.by_name.fingerprint(|v| format!("{v:?}")),
            self.by_table.fingerprint(Clone::clone)
        )
    }

    /// Whether the lists per table are those of the members: what every change must keep true.
    #[cfg(test)]
    pub(crate) fn in_step(&self) -> bool {
        let mut listed = Journaled::default();
        for (name, value) in self.by_name.iter() {
            list(&mut listed, name, value.table());
        }
        super::relations::sorted_lists(&listed) == super::relations::sorted_lists(&self.by_table)
    }
}

fn list(
    by_table: &mut Journaled<ObjectName, Vec<ObjectName>>,
    key: &ObjectName,
    table: Option<&ObjectName>,
) {
    if let Some(table) = table {
        by_table.get_or_default(table.clone()).push(key.clone());
    }
}

fn unlist(
    by_table: &mut Journaled<ObjectName, Vec<ObjectName>>,
    key: &ObjectName,
    table: Option<&ObjectName>,
) {
    let Some(table) = table else {
        return;
    };
    if let Some(names) = by_table.get_mut(table) {
        if let Some(position) = names.iter().position(|name| name == key) {
            names.remove(position);
        }
        if names.is_empty() {
            by_table.remove(table);
        }
    }
}

/// A member being changed: its name, by which [`Grouped`] finds it, stays as it is; it moves to
/// the list of its new table when the guard goes, if the table changed.
pub(crate) struct MemberMut<'a, V: Member> {
    key: ObjectName,
    /// Its table before the change.
    table: Option<ObjectName>,
    value: &'a mut V,
    by_table: &'a mut Journaled<ObjectName, Vec<ObjectName>>,
}

impl<V: Member> Deref for MemberMut<'_, V> {
    type Target = V;

    fn deref(&self) -> &V {
        self.value
    }
}

impl<V: Member> DerefMut for MemberMut<'_, V> {
    fn deref_mut(&mut self) -> &mut V {
        self.value
    }
}

impl<V: Member> Drop for MemberMut<'_, V> {
    fn drop(&mut self) {
        if self.value.table() != self.table.as_ref() {
            unlist(self.by_table, &self.key, self.table.as_ref());
            list(self.by_table, &self.key, self.value.table());
        }
    }
}
