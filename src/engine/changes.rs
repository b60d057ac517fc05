//! What changed since the last checkpoint, so that a checkpoint writes only that: the instance
//! slots and orphan-group slots that were filled, changed or freed. One bit per slot, set where
//! the engine puts an instance or group back, frees it, or renumbers its deadlines, and where
//! a link moves an alias away from an instance (the alias entries an instance owns are written
//! with it). The shell takes the set when it checkpoints and gives it back if the write fails.
//! Cheap enough to be always on: a bit per slot, nothing allocated per change.

use super::Engine;

/// A set of slot numbers, one bit per slot.
#[derive(Clone, Debug, Default)]
pub struct SlotSet {
    words: Vec<u64>,
}

/// Equal when they hold the same slots, however many (zero) words each has grown to.
impl PartialEq for SlotSet {
    fn eq(&self, other: &SlotSet) -> bool {
        let (short, long) = if self.words.len() <= other.words.len() {
            (&self.words, &other.words)
        } else {
            (&other.words, &self.words)
        };
        long[..short.len()] == short[..] && long[short.len()..].iter().all(|&word| word == 0)
    }
}

impl Eq for SlotSet {}

impl SlotSet {
    pub(crate) fn insert(&mut self, slot: u32) {
        let word = slot as usize / 64;
        if word >= self.words.len() {
            self.words.resize(word + 1, 0);
        }
        self.words[word] |= 1 << (slot % 64);
    }

    /// Takes the slot out of the set.
    pub(crate) fn remove(&mut self, slot: u32) {
        if let Some(word) = self.words.get_mut(slot as usize / 64) {
            *word &= !(1 << (slot % 64));
        }
    }

    /// Adds slots `0..count`.
    pub(super) fn insert_all(&mut self, count: usize) {
        for slot in 0..count {
            self.insert(slot as u32);
        }
    }

    /// Whether the slot is in the set.
    pub fn contains(&self, slot: u32) -> bool {
        self.words
            .get(slot as usize / 64)
            .is_some_and(|word| word & (1 << (slot % 64)) != 0)
    }

    /// The slots, in ascending order.
    pub fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        self.words.iter().enumerate().flat_map(|(index, &word)| {
            let mut rest = word;
            std::iter::from_fn(move || {
                if rest == 0 {
                    return None;
                }
                let bit = rest.trailing_zeros();
                rest &= rest - 1;
                Some(index as u32 * 64 + bit)
            })
        })
    }

    /// How many slots are in the set.
    pub fn len(&self) -> usize {
        self.words.iter().map(|word| word.count_ones() as usize).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.words.iter().all(|&word| word == 0)
    }

    fn union_with(&mut self, other: &SlotSet) {
        if other.words.len() > self.words.len() {
            self.words.resize(other.words.len(), 0);
        }
        for (mine, theirs) in self.words.iter_mut().zip(&other.words) {
            *mine |= theirs;
        }
    }
}

/// Slots changed since the changes were last taken.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Changes {
    pub instances: SlotSet,
    pub orphan_groups: SlotSet,
}

impl Engine {
    /// Takes the changes since the last call (for a checkpoint), leaving none.
    pub fn take_changes(&mut self) -> Changes {
        std::mem::take(&mut self.changes)
    }

    /// Gives back changes taken for a checkpoint that could not be written.
    pub fn return_changes(&mut self, changes: Changes) {
        self.changes.instances.union_with(&changes.instances);
        self.changes.orphan_groups.union_with(&changes.orphan_groups);
    }

    /// Marks every slot changed (after a restore that renumbered or dropped state).
    pub(super) fn mark_all_changed(&mut self) {
        self.changes.instances.insert_all(self.instances.len());
        self.changes.orphan_groups.insert_all(self.orphan_groups.len());
    }

    pub(super) fn instance_changed(&mut self, slot: u32) {
        self.changes.instances.insert(slot);
    }

    pub(super) fn orphans_changed(&mut self, slot: u32) {
        self.changes.orphan_groups.insert(slot);
    }
}

#[cfg(test)]
mod tests {
    use super::SlotSet;

    #[test]
    fn slots_come_and_go_and_sets_compare_by_their_slots() {
        let mut set = SlotSet::default();
        set.insert(3);
        set.insert(130);
        assert_eq!(set.iter().collect::<Vec<_>>(), vec![3, 130]);
        set.remove(130);
        set.remove(7);
        set.remove(10_000);
        assert_eq!(set.iter().collect::<Vec<_>>(), vec![3]);
        let mut small = SlotSet::default();
        small.insert(3);
        assert_eq!(set, small, "a word grown and emptied again does not count");
        assert_eq!(small, set);
        small.insert(4);
        assert_ne!(set, small);
        set.remove(3);
        assert_eq!(set, SlotSet::default());
        assert!(set.is_empty());
    }
}
