//! The locks a transaction holds so far, as the lock model predicts them: kept by relation, so a
//! rule asks whether a relation is held, and by which statement, without walking the statements of
//! the transaction again (which made long transactions quadratic).

use foldhash::HashMap;

use super::locks::{LockMode, PredictedLock};
use crate::schema::Catalog;
use crate::sql::ObjectName;

/// Which statement took a lock: the index of the migration's statement and, for a statement inside
/// its DO block, the position in the block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Holder {
    pub index: usize,
    pub nested: Option<usize>,
}

/// The strongest lock held on one relation.
#[derive(Debug, Clone)]
pub struct Held {
    /// The relation as the statement that first locked it wrote it.
    pub relation: ObjectName,
    pub mode: LockMode,
    /// The earliest statement that took `mode` (it has held it since).
    pub holder: Holder,
    /// The relation existed before the migration when the lock was taken.
    pub existing: bool,
}

/// The locks held by the current transaction, by relation as the catalog resolved it when each lock
/// was taken.
#[derive(Debug, Default)]
pub struct HeldLocks {
    by_relation: HashMap<ObjectName, Held>,
    /// Resolved names in the order they were first locked.
    order: Vec<ObjectName>,
    /// Every ACCESS EXCLUSIVE taken on a relation that existed before the migration, in order, with
    /// the relation as written.
    exclusive_on_existing: Vec<(Holder, ObjectName)>,
}

impl HeldLocks {
    /// The transaction ended: nothing is held.
    pub fn clear(&mut self) {
        self.by_relation.clear();
        self.order.clear();
        self.exclusive_on_existing.clear();
    }

    /// Records the locks `holder` takes, with the catalog as it is just before the statement.
    pub fn take(&mut self, holder: Holder, locks: &[PredictedLock], catalog: &Catalog) {
        for lock in locks {
            let existing = !catalog.is_new_relation(&lock.relation);
            if existing && lock.mode == LockMode::AccessExclusive {
                self.exclusive_on_existing
                    .push((holder, lock.relation.clone()));
            }
            let key = catalog.resolve(&lock.relation);
            match self.by_relation.get_mut(&key) {
                Some(held) if lock.mode > held.mode => {
                    held.mode = lock.mode;
                    held.holder = holder;
                }
                Some(_) => {}
                None => {
                    self.order.push(key.clone());
                    self.by_relation.insert(
                        key,
                        Held {
                            relation: lock.relation.clone(),
                            mode: lock.mode,
                            holder,
                            existing,
                        },
                    );
                }
            }
        }
    }

    /// The strongest lock held on `relation` (as `catalog` resolves it now).
    pub fn on(&self, relation: &ObjectName, catalog: &Catalog) -> Option<&Held> {
        self.by_relation.get(&catalog.resolve(relation))
    }

    /// Every relation held, in the order it was first locked.
    pub fn iter(&self) -> impl Iterator<Item = &Held> {
        self.order
            .iter()
            .filter_map(|key| self.by_relation.get(key))
    }

    /// The earliest ACCESS EXCLUSIVE on a relation that existed before the migration and, by
    /// `still_existing`, still counts as such, with the statement that took it.
    pub fn first_exclusive_on_existing(
        &self,
        still_existing: impl Fn(&ObjectName) -> bool,
    ) -> Option<(Holder, &ObjectName)> {
        self.exclusive_on_existing
            .iter()
            .find(|(_, relation)| still_existing(relation))
            .map(|(holder, relation)| (*holder, relation))
    }

    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }
}
