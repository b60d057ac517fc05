//! The engine's single deadline queue: an ordered set of `(due, seq, target)`. `seq` is a
//! counter taken when a deadline is set, so timers due at the same instant fire in the order
//! they were set. Every instance has at most one entry (its earliest armed deadline), so the
//! queue holds one 16-byte entry per open instance, held orphan group or retained instance;
//! insert and cancel are O(log n). `seq` is 32 bits to keep instances small; before it could
//! wrap, the engine renumbers every armed deadline in order (`Engine::renumber_timers`).

use crate::time::Millis;
use std::collections::BTreeSet;

/// Position of an entry in the queue: fire time, then setting order.
pub type TimerKey = (Millis, u32);

/// What an entry wakes up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimerTarget {
    /// An instance: its earliest armed deadline, or its retention expiry once ended.
    Instance(u32),
    /// A group of held orphan events.
    Orphans(u32),
}

/// Tag bit of orphan-group targets in the packed form.
const ORPHANS: u32 = 1 << 31;

impl TimerTarget {
    fn pack(self) -> u32 {
        match self {
            TimerTarget::Instance(slot) => slot & !ORPHANS,
            TimerTarget::Orphans(slot) => slot | ORPHANS,
        }
    }

    fn unpack(packed: u32) -> TimerTarget {
        if packed & ORPHANS == 0 {
            TimerTarget::Instance(packed)
        } else {
            TimerTarget::Orphans(packed & !ORPHANS)
        }
    }
}

/// The deadline queue.
#[derive(Debug)]
pub struct Timers {
    queue: BTreeSet<(Millis, u32, u32)>,
    next_seq: u32,
    /// Above this, the engine renumbers before taking more (lowered in tests).
    renumber_above: u32,
}

impl Default for Timers {
    fn default() -> Self {
        Timers {
            queue: BTreeSet::new(),
            next_seq: 0,
            renumber_above: u32::MAX - (1 << 24),
        }
    }
}

impl Timers {
    /// Takes the next setting-order number.
    pub fn next_seq(&mut self) -> u32 {
        self.next_seq = self.next_seq.saturating_add(1);
        self.next_seq
    }

    /// The last setting-order number taken (for snapshots).
    pub fn last_seq(&self) -> u32 {
        self.next_seq
    }

    /// True when the setting order is close enough to wrapping that the engine must renumber.
    pub fn needs_renumbering(&self) -> bool {
        self.next_seq > self.renumber_above
    }

    /// Lowers the renumbering threshold, so tests can exercise it.
    #[cfg(test)]
    pub fn set_renumber_above(&mut self, threshold: u32) {
        self.renumber_above = threshold;
    }

    /// Empties the queue and restarts the setting order after `last_seq` (renumbering).
    pub fn reset(&mut self, last_seq: u32) {
        self.queue.clear();
        self.next_seq = last_seq;
    }

    /// Replaces `current` (if any) with an entry at `next` (if any) for `target`.
    pub fn reschedule(
        &mut self,
        current: &mut Option<TimerKey>,
        next: Option<TimerKey>,
        target: TimerTarget,
    ) {
        if *current == next {
            return;
        }
        let packed = target.pack();
        if let Some((due, seq)) = current.take() {
            self.queue.remove(&(due, seq, packed));
        }
        if let Some((due, seq)) = next {
            self.queue.insert((due, seq, packed));
            *current = next;
        }
    }

    /// Removes and returns the first entry due strictly before `clock`.
    pub fn pop_due(&mut self, clock: Millis) -> Option<(TimerKey, TimerTarget)> {
        let &(due, _, _) = self.queue.first()?;
        if due >= clock {
            return None;
        }
        let (due, seq, packed) = self.queue.pop_first()?;
        Some(((due, seq), TimerTarget::unpack(packed)))
    }

    /// The earliest fire time, for the shell's single sleep.
    pub fn next_due(&self) -> Option<Millis> {
        self.queue.first().map(|&(due, _, _)| due)
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// True when nothing is scheduled.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }
}
