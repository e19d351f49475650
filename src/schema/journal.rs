//! Undo journals for the catalog's maps: "the schema before this migration" at the cost of what the
//! migration changed, not of the schema. Copying the whole model before every reviewed migration made
//! a history's review grow with history × schema.
//!
//! While a journal is open, a [`Journaled`] map keeps the value each key had when the journal
//! opened, the first time the key is written. [`Journal::swap`] exchanges those values with the
//! current ones: once to see the map as it was, once more to come back. Journals nest: one opened
//! while another is open records into itself and, when closed, hands the enclosing one what it
//! recorded first.

use std::borrow::Borrow;
use std::hash::Hash;
use std::mem;
use std::ops::{Deref, DerefMut};

use foldhash::{HashMap, HashMapExt};

/// A value (or a set of them) that can go back to how it was when a journal opened.
pub(crate) trait Journal {
    /// Starts recording, inside any journal already open.
    fn open(&mut self);
    /// Exchanges the state at the innermost journal's opening with the current one: twice is a no-op.
    fn swap(&mut self);
    /// Keeps the changes and ends the innermost journal.
    fn close(&mut self);
    /// Goes back to the state at the innermost journal's opening and ends it.
    fn undo(&mut self) {
        self.swap();
        self.close_swapped();
    }
    /// Ends the innermost journal just swapped by [`undo`](Journal::undo): what it holds now are the
    /// changes being dropped.
    fn close_swapped(&mut self);
}

/// What one journal of a map recorded.
#[derive(Debug, Clone)]
enum Record<K, V> {
    /// The map was empty when the journal opened: the other state is this map, whole (empty until
    /// a swap). Nothing is recorded per key: a schema dump as a first migration costs nothing more.
    Empty(HashMap<K, V>),
    /// The value of each key written since the journal opened, as it was then (`None`: absent).
    Keys(HashMap<K, Option<V>>),
}

/// A map whose writes are recorded while a journal is open. Reads go through `Deref`.
#[derive(Debug)]
pub(crate) struct Journaled<K, V> {
    map: HashMap<K, V>,
    /// One record per open journal, innermost last.
    journals: Vec<Record<K, V>>,
}

/// A copy is the map as it is now, with no journal open: the journals belong to the one who opened
/// them, and a copy that recorded its own writes into copies of them would pay for every first
/// write and copy what they recorded.
impl<K: Clone, V: Clone> Clone for Journaled<K, V> {
    fn clone(&self) -> Self {
        Journaled {
            map: self.map.clone(),
            journals: Vec::new(),
        }
    }
}

impl<K, V> Default for Journaled<K, V> {
    fn default() -> Self {
        Journaled {
            map: HashMap::new(),
            journals: Vec::new(),
        }
    }
}

/// Equal when the maps are, whatever the journals hold.
impl<K: Hash + Eq, V: PartialEq> PartialEq for Journaled<K, V> {
    fn eq(&self, other: &Self) -> bool {
        self.map == other.map
    }
}

impl<K, V> Deref for Journaled<K, V> {
    type Target = HashMap<K, V>;

    fn deref(&self) -> &HashMap<K, V> {
        &self.map
    }
}

impl<K: Hash + Eq + Clone, V: Clone> Journaled<K, V> {
    /// Whether the innermost journal records keys: without one, a write costs what it costs in a
    /// plain map.
    fn records_keys(&self) -> bool {
        matches!(self.journals.last(), Some(Record::Keys(_)))
    }

    /// Records the value `key` has now, if the innermost journal has none for it yet.
    fn note<Q>(&mut self, key: &Q)
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        if let Some(Record::Keys(old)) = self.journals.last_mut() {
            if !old.contains_key(key) {
                old.insert(key.to_owned(), self.map.get(key).cloned());
            }
        }
    }

    /// Before a change to `key`: records its value if it has one; false when it has none (nothing
    /// to change).
    fn note_present<Q>(&mut self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        if !self.records_keys() {
            return true;
        }
        if !self.map.contains_key(key) {
            return false;
        }
        self.note(key);
        true
    }

    pub(crate) fn insert(&mut self, key: K, value: V) -> Option<V> {
        self.note(&key);
        self.map.insert(key, value)
    }

    pub(crate) fn remove<Q>(&mut self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        if !self.note_present(key) {
            return None;
        }
        self.map.remove(key)
    }

    pub(crate) fn get_mut<Q>(&mut self, key: &Q) -> Option<&mut V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        if !self.note_present(key) {
            return None;
        }
        self.map.get_mut(key)
    }

    /// The value under `key`, inserted as `V::default()` if absent, to change.
    pub(crate) fn get_or_default(&mut self, key: K) -> &mut V
    where
        V: Default,
    {
        self.note(&key);
        self.map.entry(key).or_default()
    }

    /// Keeps only the entries for which `keep` holds.
    pub(crate) fn retain(&mut self, mut keep: impl FnMut(&K, &V) -> bool) {
        if !self.records_keys() {
            self.map.retain(|key, value| keep(key, value));
            return;
        }
        let dropped: Vec<K> = self
            .map
            .iter()
            .filter(|(key, value)| !keep(key, value))
            .map(|(key, _)| key.clone())
            .collect();
        for key in dropped {
            self.remove(&key);
        }
    }

    /// The entries sorted by key, each shown by `show`: to compare two maps whatever their
    /// iteration order.
    #[cfg(test)]
    pub(crate) fn fingerprint<S: std::fmt::Debug>(&self, show: impl Fn(&V) -> S) -> String
    where
        K: Ord + std::fmt::Debug,
    {
        let mut entries: Vec<(&K, &V)> = self.map.iter().collect();
        entries.sort_by(|a, b| a.0.cmp(b.0));
        let shown: Vec<(&K, S)> = entries.into_iter().map(|(k, v)| (k, show(v))).collect();
        format!("{shown:?}")
    }

    /// The values of the keys the innermost journal saw absent and the map now holds: what was
    /// added since it opened.
    pub(crate) fn added(&self) -> Vec<&V> {
        match self.journals.last() {
            Some(Record::Empty(_)) => self.map.values().collect(),
            Some(Record::Keys(old)) => old
                .iter()
                .filter(|(_, value)| value.is_none())
                .filter_map(|(key, _)| self.map.get(key))
                .collect(),
            None => Vec::new(),
        }
    }
}

impl<K: Hash + Eq + Clone, V: Clone> Journal for Journaled<K, V> {
    fn open(&mut self) {
        self.journals.push(if self.map.is_empty() {
            Record::Empty(HashMap::new())
        } else {
            Record::Keys(HashMap::new())
        });
    }

    fn swap(&mut self) {
        match self.journals.last_mut() {
            Some(Record::Empty(other)) => mem::swap(&mut self.map, other),
            Some(Record::Keys(old)) => {
                for (key, value) in old.iter_mut() {
                    let now = match value.take() {
                        Some(value) => self.map.insert(key.clone(), value),
                        None => self.map.remove(key),
                    };
                    *value = now;
                }
            }
            None => {}
        }
    }

    fn close(&mut self) {
        let Some(record) = self.journals.pop() else {
            return;
        };
        // The enclosing journal keeps its own first values; a key it has none for had, when it
        // opened, the value this journal recorded.
        let Some(Record::Keys(outer)) = self.journals.last_mut() else {
            return;
        };
        match record {
            Record::Empty(_) => {
                for key in self.map.keys() {
                    if !outer.contains_key(key) {
                        outer.insert(key.clone(), None);
                    }
                }
            }
            Record::Keys(old) => {
                for (key, value) in old {
                    outer.entry(key).or_insert(value);
                }
            }
        }
    }

    fn close_swapped(&mut self) {
        // Back at the state of the journal's opening: the enclosing one is as it was then.
        self.journals.pop();
    }
}

/// A small value saved whole when a journal opens (the search path, the current migration).
#[derive(Debug, Default)]
pub(crate) struct Saved<T> {
    value: T,
    saved: Vec<T>,
}

/// A copy is the value as it is now, with no journal open (see [`Journaled`]'s).
impl<T: Clone> Clone for Saved<T> {
    fn clone(&self) -> Self {
        Saved::new(self.value.clone())
    }
}

impl<T> Saved<T> {
    pub(crate) fn new(value: T) -> Self {
        Saved {
            value,
            saved: Vec::new(),
        }
    }
}

impl<T> Deref for Saved<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.value
    }
}

impl<T> DerefMut for Saved<T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.value
    }
}

impl<T: Clone> Journal for Saved<T> {
    fn open(&mut self) {
        self.saved.push(self.value.clone());
    }

    fn swap(&mut self) {
        if let Some(saved) = self.saved.last_mut() {
            mem::swap(&mut self.value, saved);
        }
    }

    fn close(&mut self) {
        self.saved.pop();
    }

    fn close_swapped(&mut self) {
        self.saved.pop();
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// Writes to a map of a few keys.
    #[derive(Debug, Clone)]
    enum Write {
        Insert(u8, u32),
        Remove(u8),
        Change(u8),
        Default(u8),
        RetainEven,
    }

    fn write() -> impl Strategy<Value = Write> {
        let key = || 0u8..6;
        prop_oneof![
            (key(), any::<u32>()).prop_map(|(k, v)| Write::Insert(k, v)),
            key().prop_map(Write::Remove),
            key().prop_map(Write::Change),
            key().prop_map(Write::Default),
            Just(Write::RetainEven),
        ]
    }

    fn apply(map: &mut Journaled<u8, u32>, write: &Write) {
        match *write {
            Write::Insert(k, v) => {
                map.insert(k, v);
            }
            Write::Remove(k) => {
                map.remove(&k);
            }
            Write::Change(k) => {
                if let Some(v) = map.get_mut(&k) {
                    *v = v.wrapping_add(1);
                }
            }
            Write::Default(k) => *map.get_or_default(k) += 7,
            Write::RetainEven => map.retain(|_, v| v % 2 == 0),
        }
    }

    proptest! {
        #[test]
        fn swap_shows_the_map_at_the_opening_and_back_and_nested_journals_hand_their_records_out(
            first in prop::collection::vec(write(), 0..8),
            outer in prop::collection::vec(write(), 0..12),
            inner in prop::collection::vec(write(), 0..12),
            keep_inner in any::<bool>(),
        ) {
            let mut map = Journaled::default();
            for w in &first {
                apply(&mut map, w);
            }
            let before = map.map.clone();
            map.open();
            for w in &outer {
                apply(&mut map, w);
            }
            let middle = map.map.clone();
            map.open();
            for w in &inner {
                apply(&mut map, w);
            }
            let after = map.map.clone();
            map.swap();
            prop_assert_eq!(&map.map, &middle);
            map.swap();
            prop_assert_eq!(&map.map, &after);
            let added: Vec<u8> = after.keys().filter(|k| !middle.contains_key(k)).copied().collect();
            let mut found: Vec<u32> = map.added().into_iter().copied().collect();
            let mut expected: Vec<u32> = added.iter().map(|k| after[k]).collect();
            found.sort();
            expected.sort();
            prop_assert_eq!(found, expected);
            let now = if keep_inner {
                map.close();
                after
            } else {
                map.undo();
                middle
            };
            prop_assert_eq!(&map.map, &now);
            map.swap();
            prop_assert_eq!(&map.map, &before);
            map.swap();
            prop_assert_eq!(&map.map, &now);
            map.undo();
            prop_assert_eq!(&map.map, &before);
            prop_assert!(map.journals.is_empty());
        }
    }
}
