//! The catalog's sequences by qualified name, with the sequences each table owns kept beside them:
//! dropping a table or column drops its owned sequences and renaming or moving a table moves them,
//! and a look at every sequence for each made a long history's replay quadratic.
//!
//! Reading goes through `Deref` to the map; every change goes through [`Sequences`], which keeps the
//! lists per owner in step.

use std::collections::HashMap;
use std::ops::{Deref, DerefMut};

use super::journal::{Journal, Journaled};
#[cfg(test)]
use super::relations::sorted_lists;
use super::Sequence;
use crate::sql::ObjectName;

#[derive(Debug, Clone, Default)]
pub(crate) struct Sequences {
    by_name: Journaled<ObjectName, Sequence>,
    /// The names of the sequences each table owns.
    by_owner: Journaled<ObjectName, Vec<ObjectName>>,
}

impl Journal for Sequences {
    fn open(&mut self) {
        self.by_name.open();
        self.by_owner.open();
    }

    fn swap(&mut self) {
        self.by_name.swap();
        self.by_owner.swap();
    }

    fn close(&mut self) {
        self.by_name.close();
        self.by_owner.close();
    }

    fn close_swapped(&mut self) {
        self.by_name.close_swapped();
        self.by_owner.close_swapped();
    }
}

impl Deref for Sequences {
    type Target = HashMap<ObjectName, Sequence>;

    fn deref(&self) -> &Self::Target {
        &self.by_name
    }
}

impl Sequences {
    /// The sequences `table` (its qualified name, as the catalog keys it) owns.
    pub(crate) fn owned_by<'a>(
        &'a self,
        table: &ObjectName,
    ) -> impl Iterator<Item = &'a Sequence> + 'a {
        self.by_owner
            .get(table)
            .into_iter()
            .flatten()
            .filter_map(|name| self.by_name.get(name))
    }

    /// What was added since the innermost journal opened.
    pub(crate) fn added(&self) -> Vec<&Sequence> {
        self.by_name.added()
    }

    /// Adds or replaces the sequence under `key`.
    pub(crate) fn insert(&mut self, key: ObjectName, sequence: Sequence) -> Option<Sequence> {
        let replaced = self.remove(&key);
        list(&mut self.by_owner, &key, &sequence);
        self.by_name.insert(key, sequence);
        replaced
    }

    pub(crate) fn remove(&mut self, key: &ObjectName) -> Option<Sequence> {
        let removed = self.by_name.remove(key)?;
        unlist(&mut self.by_owner, key, &removed);
        Some(removed)
    }

    /// Keeps only the sequences for which `keep` holds.
    pub(crate) fn retain(&mut self, keep: impl Fn(&ObjectName, &Sequence) -> bool) {
        let dropped: Vec<ObjectName> = self
            .by_name
            .iter()
            .filter(|(name, sequence)| !keep(name, sequence))
            .map(|(name, _)| name.clone())
            .collect();
        for name in dropped {
            self.remove(&name);
        }
    }

    /// Drops the sequences `table` owns for which `drop` holds.
    pub(crate) fn remove_owned(&mut self, table: &ObjectName, drop: impl Fn(&Sequence) -> bool) {
        let dropped: Vec<ObjectName> = self
            .owned_by(table)
            .filter(|sequence| drop(sequence))
            .map(|sequence| sequence.name.clone())
            .collect();
        for name in dropped {
            self.remove(&name);
        }
    }

    /// The sequence under `key`, to change anything but its name (its owner is listed again when
    /// the guard goes).
    pub(crate) fn get_mut(&mut self, key: &ObjectName) -> Option<SequenceMut<'_>> {
        let sequence = self.by_name.get_mut(key)?;
        unlist(&mut self.by_owner, key, sequence);
        Some(SequenceMut {
            key: key.clone(),
            sequence,
            by_owner: &mut self.by_owner,
        })
    }

    /// Moves the sequences `renames` names (old key → new key) to their new keys, and the sequences
    /// owned by the tables it renames to their new owners.
    pub(crate) fn rename(&mut self, renames: &HashMap<&ObjectName, &ObjectName>) {
        // All out before any goes in: a new name may be another's old one.
        let moved: Vec<(ObjectName, Sequence)> = renames
            .iter()
            .filter_map(|(&old, &new)| Some((new.clone(), self.remove(old)?)))
            .collect();
        for (new, mut sequence) in moved {
            sequence.name = new.clone();
            self.insert(new, sequence);
        }
        for (&old, &new) in renames {
            let owned: Vec<ObjectName> = self.by_owner.get(old).cloned().unwrap_or_default();
            for name in owned {
                if let Some(mut sequence) = self.get_mut(&name) {
                    if let Some((owner, _)) = &mut sequence.owned_by {
                        *owner = new.clone();
                    }
                }
            }
        }
    }

    /// Both maps, each in one order whatever its history.
    #[cfg(test)]
    pub(crate) fn fingerprint(&self) -> String {
        format!(
            "{}\n{}",
            self.by_name.fingerprint(|v| format!("{v:?}")),
            self.by_owner.fingerprint(Clone::clone)
        )
    }

    /// Whether the lists per owner are those of the sequences: what every change must keep true.
    #[cfg(test)]
    pub(crate) fn in_step(&self) -> bool {
        let mut listed = Journaled::default();
        for (name, sequence) in self.by_name.iter() {
            list(&mut listed, name, sequence);
        }
        sorted_lists(&listed) == sorted_lists(&self.by_owner)
    }
}

fn list(
    by_owner: &mut Journaled<ObjectName, Vec<ObjectName>>,
    key: &ObjectName,
    sequence: &Sequence,
) {
    if let Some((owner, _)) = &sequence.owned_by {
        by_owner.get_or_default(owner.clone()).push(key.clone());
    }
}

fn unlist(
    by_owner: &mut Journaled<ObjectName, Vec<ObjectName>>,
    key: &ObjectName,
    sequence: &Sequence,
) {
    let Some((owner, _)) = &sequence.owned_by else {
        return;
    };
    if let Some(names) = by_owner.get_mut(owner) {
        if let Some(position) = names.iter().position(|name| name == key) {
            names.remove(position);
        }
        if names.is_empty() {
            by_owner.remove(owner);
        }
    }
}

/// A sequence being changed: its name, by which [`Sequences`] finds it, stays as it is; its owner
/// is listed again when the guard goes.
pub(crate) struct SequenceMut<'a> {
    key: ObjectName,
    sequence: &'a mut Sequence,
    by_owner: &'a mut Journaled<ObjectName, Vec<ObjectName>>,
}

impl Deref for SequenceMut<'_> {
    type Target = Sequence;

    fn deref(&self) -> &Sequence {
        self.sequence
    }
}

impl DerefMut for SequenceMut<'_> {
    fn deref_mut(&mut self) -> &mut Sequence {
        self.sequence
    }
}

impl Drop for SequenceMut<'_> {
    fn drop(&mut self) {
        list(self.by_owner, &self.key, self.sequence);
    }
}
