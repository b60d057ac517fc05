//! The engine's single deadline queue: an ordered set of `(due, seq)` with what is due. `seq`
//! is a global counter taken when a deadline is set, so timers due at the same instant fire in
//! the order they were set. Every instance has at most one entry (its earliest armed deadline),
//! so the queue holds one entry per open instance, held orphan group or retained instance;
//! insert and cancel are O(log n).

use crate::time::Millis;
use std::collections::BTreeMap;

/// Position of an entry in the queue: fire time, then setting order.
pub type TimerKey = (Millis, u64);

/// What an entry wakes up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimerTarget {
    /// An instance: its earliest armed deadline, or its retention expiry once ended.
    Instance(u32),
    /// A group of held orphan events.
    Orphans(u32),
}

/// The deadline queue.
#[derive(Debug, Default)]
pub struct Timers {
    queue: BTreeMap<TimerKey, TimerTarget>,
    next_seq: u64,
}

impl Timers {
    /// Takes the next setting-order number.
    pub fn next_seq(&mut self) -> u64 {
        self.next_seq += 1;
        self.next_seq
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
        if let Some(old) = current.take() {
            self.queue.remove(&old);
        }
        if let Some(key) = next {
            self.queue.insert(key, target);
            *current = Some(key);
        }
    }

    /// Removes and returns the first entry due strictly before `clock`.
    pub fn pop_due(&mut self, clock: Millis) -> Option<(TimerKey, TimerTarget)> {
        let (&key, _) = self.queue.first_key_value()?;
        if key.0 < clock {
            self.queue.pop_first()
        } else {
            None
        }
    }

    /// The earliest fire time, for the shell's single sleep.
    pub fn next_due(&self) -> Option<Millis> {
        self.queue.first_key_value().map(|(key, _)| key.0)
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
