//! Live time: partitions merged into event-time order (SPEC 1.3, "Live").
//!
//! Records read from Kafka are not applied as they arrive. Each partition's position is the
//! highest record time read from it, less the allowed lateness; the clock is the lowest position
//! among partitions that still have unread records, or the wall clock less the allowed lateness
//! once every partition has caught up. A record waits here until the clock reaches its time and
//! is then released in time order (ties: topic, partition, offset), so the engine sees the same
//! sequence whatever order the partitions deliver in. The engine's own clock is only moved up to
//! just before the earliest waiting record, exactly as a replay of the merged stream would.
//!
//! Flow control: when too many records wait, partitions that run ahead of the clock are paused;
//! the slowest ones never are, so the clock always moves.
//!
//! The merge covers every partition of the flows' topics, not only the assigned ones: the
//! state is not sharded, so a partition of those topics that another member of the group holds
//! (a killed predecessor whose session has not expired yet, or a second daemon) has records
//! this daemon will have to apply in order, and the clock waits for it like for a partition
//! that has not told its position yet (see [`Aligner::expect`]). Merging only the assigned
//! partitions let a daemon restarted after a kill -9, owning half the partitions while the
//! dead member's session ran out, move its clock to the wall clock and fire every timer of the
//! other half early (found by the kill -9 loop against tansu). After each change of assignment
//! the clock also waits until the partitions have been listed again. While it waits, flow
//! control pauses everything beyond the bound. Pure: no Kafka, no wall-clock reads.

use crate::time::Millis;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, VecDeque};
use std::sync::Arc;

/// A topic partition.
pub type TopicPartition = (Arc<str>, i32);

/// Where a partition must be re-read from after a restart, and which offsets at or above that
/// point were already applied (they are skipped when read again).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ResumePosition {
    /// The next offset to read.
    pub offset: i64,
    /// Offsets in `offset..until` that were read but not applied (held): only these are applied
    /// when read again; every other offset below `until` was applied already.
    pub held: Vec<i64>,
    /// One past the highest offset read.
    pub until: i64,
}

impl ResumePosition {
    /// Whether a record at this offset, read again after a restart, was applied before.
    pub fn already_applied(&self, offset: i64) -> bool {
        offset < self.until && self.held.binary_search(&offset).is_err()
    }
}

#[derive(Debug, Default)]
struct Partition {
    /// Highest record time read from it.
    max_time: Option<Millis>,
    /// It has no unread records (its read position reached the high watermark).
    caught_up: bool,
    /// Its waiting records in merged order, (time, offset): a partition is read in offset order
    /// and mostly in time order, so a record normally joins at the back; only a record older
    /// than one read before it is inserted further in.
    queue: VecDeque<Waiting>,
    /// One past the highest offset read (or the resume offset before any read).
    next_offset: Option<i64>,
    /// The stored position it resumed from, while reading again has not passed its `until`:
    /// offsets up to there that it does not list as held were applied before the restart, and
    /// checkpoints must keep saying so (see [`Aligner::resume_positions`]).
    restored: Option<ResumePosition>,
    paused: bool,
    /// Its place in (topic, partition) order among the known partitions (see [`Head`]).
    rank: u32,
    /// Assigned to this daemon; otherwise it is a partition of the flows' topics held
    /// elsewhere, known only from metadata ([`Aligner::expect`]), and the clock waits for it.
    assigned: bool,
}

/// A waiting record in its partition's queue; the record itself is in the aligner's slab at
/// `slot`.
#[derive(Debug, Clone, Copy)]
struct Waiting {
    time: Millis,
    offset: i64,
    slot: u32,
}

impl Waiting {
    fn key(&self) -> (Millis, i64) {
        (self.time, self.offset)
    }
}

/// The first waiting record of a partition, as the merge's heap orders it: (time, topic,
/// partition, offset), with the topic and partition as the partition's rank in their order,
/// so that heads compare as integers. An entry is current while its partition's queue still
/// starts with that record; others are stale and skipped (see [`Aligner::pop_ready`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Head {
    time: Millis,
    rank: u32,
    offset: i64,
}

/// The merge of partitions into event-time order. `R` is whatever the shell keeps per record.
pub struct Aligner<R> {
    lateness: Millis,
    max_held: usize,
    partitions: BTreeMap<TopicPartition, Partition>,
    /// Every partition of the flows' topics, as the cluster's metadata last listed them.
    expected: BTreeSet<TopicPartition>,
    /// The assignment changed and the partitions have not been listed since: the clock waits.
    unlisted: bool,
    /// The known partitions by rank (a revoked one stays until ranks are next renumbered).
    by_rank: Vec<TopicPartition>,
    /// The merge: the partitions' first waiting records, earliest first, so that releasing a
    /// record costs a few comparisons in a heap of one entry per partition. (One heap of
    /// every waiting record was a tenth of the worker's time with 200 k records waiting, most
    /// of it cache misses; a `BTreeMap` keyed by topic name holding the records, a fifth.)
    heads: BinaryHeap<Reverse<Head>>,
    /// The waiting records, where the partitions' queues point.
    records: slab::Slab<R>,
    /// The clock never moves back.
    clock: Millis,
}

/// What flow control asks of the consumer.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct FlowControl {
    pub pause: Vec<TopicPartition>,
    pub resume: Vec<TopicPartition>,
}

impl<R> Aligner<R> {
    /// `max_held`: how many records may wait before partitions ahead of the clock pause.
    pub fn new(lateness: Millis, max_held: usize) -> Aligner<R> {
        Aligner {
            lateness,
            max_held: max_held.max(1),
            partitions: BTreeMap::new(),
            expected: BTreeSet::new(),
            unlisted: false,
            by_rank: Vec::new(),
            heads: BinaryHeap::new(),
            // Room for the records that normally wait at most, reserved up front (the first
            // records otherwise paid for the slab being copied each time it grew).
            records: slab::Slab::with_capacity(max_held.clamp(1, 1 << 20)),
            clock: Millis::MIN,
        }
    }

    /// Starts the clock where a restored engine left it.
    pub fn start_clock_at(&mut self, clock: Millis) {
        self.clock = self.clock.max(clock);
    }

    /// A partition was assigned, resuming from a stored position if it has one; it counts as
    /// having unread records until told otherwise.
    pub fn assign(&mut self, partition: TopicPartition, resume: Option<ResumePosition>) {
        if let Some(state) = self.partitions.get_mut(&partition) {
            if !state.assigned {
                // Held elsewhere until now: it has its rank, and nothing read.
                state.assigned = true;
                state.next_offset = resume.as_ref().map(|position| position.offset);
                state.restored = resume;
            }
            return;
        }
        self.partitions.insert(
            partition,
            Partition {
                next_offset: resume.as_ref().map(|position| position.offset),
                restored: resume,
                rank: u32::MAX,
                assigned: true,
                ..Partition::default()
            },
        );
        self.renumber();
    }

    /// Every partition of the flows' topics (from the cluster's metadata, after each change of
    /// assignment): those not assigned here are held by another member of the group, and the
    /// clock waits until they are assigned here. Replaces the previous list.
    pub fn expect(&mut self, partitions: impl IntoIterator<Item = TopicPartition>) {
        self.unlisted = false;
        self.expected = partitions.into_iter().collect();
        let before = self.partitions.len();
        let expected = &self.expected;
        self.partitions
            .retain(|partition, state| state.assigned || expected.contains(partition));
        let mut changed = self.partitions.len() != before;
        for partition in &self.expected {
            if !self.partitions.contains_key(partition) {
                self.partitions.insert(
                    partition.clone(),
                    Partition {
                        rank: u32::MAX,
                        ..Partition::default()
                    },
                );
                changed = true;
            }
        }
        if changed {
            self.renumber();
        }
    }

    /// The assignment changed: until the partitions are listed again ([`Aligner::expect`]) the
    /// clock waits, since the ones held elsewhere are not known.
    pub fn assignment_changed(&mut self) {
        self.unlisted = true;
    }

    /// How many partitions of the flows' topics are held by another member of the group.
    pub fn held_elsewhere(&self) -> usize {
        self.partitions.values().filter(|state| !state.assigned).count()
    }

    /// The state of a partition, added (as by [`Aligner::assign`] without a position) if it is
    /// not known yet.
    fn state(&mut self, partition: &TopicPartition) -> &mut Partition {
        if !self.partitions.get(partition).is_some_and(|state| state.assigned) {
            self.assign(partition.clone(), None);
        }
        self.partitions.get_mut(partition).expect("just added")
    }

    /// Gives the partitions their ranks in (topic, partition) order after one was added, and
    /// rebuilds the heap of heads with them (rare: assignments change at rebalances).
    fn renumber(&mut self) {
        self.by_rank.clear();
        for (rank, (partition, state)) in self.partitions.iter_mut().enumerate() {
            state.rank = u32::try_from(rank).expect("fewer than 2^32 partitions");
            self.by_rank.push(partition.clone());
        }
        self.heads = self
            .partitions
            .values()
            .filter_map(|state| {
                let first = state.queue.front()?;
                Some(Reverse(Head {
                    time: first.time,
                    rank: state.rank,
                    offset: first.offset,
                }))
            })
            .collect();
    }

    /// A partition was revoked: its waiting records are dropped (they were never applied and
    /// will be read again by whoever owns it next).
    pub fn revoke(&mut self, partition: &TopicPartition) {
        let Some(state) = self.partitions.get_mut(partition).filter(|state| state.assigned) else {
            return;
        };
        let state = std::mem::take(state);
        for waiting in &state.queue {
            self.records.remove(waiting.slot as usize);
        }
        self.heads.retain(|Reverse(head)| head.rank != state.rank);
        if self.expected.contains(partition) {
            // Still one of the flows': held elsewhere now, the clock waits for it.
            if let Some(placeholder) = self.partitions.get_mut(partition) {
                placeholder.rank = state.rank;
            }
        } else {
            self.partitions.remove(partition);
        }
    }

    /// The assigned partitions.
    pub fn partitions(&self) -> impl Iterator<Item = &TopicPartition> {
        self.partitions
            .iter()
            .filter(|(_, state)| state.assigned)
            .map(|(partition, _)| partition)
    }

    /// A record was read. `time` is its record time as the engine will see it.
    pub fn read(&mut self, partition: &TopicPartition, offset: i64, time: Millis, record: R) {
        self.state(partition);
        let state = self.partitions.get_mut(partition).expect("just added");
        state.max_time = Some(state.max_time.map_or(time, |max| max.max(time)));
        wait(state, &mut self.heads, &mut self.records, offset, time, record);
    }

    /// A record was read whose own time lies beyond the allowed clock skew: it waits to be
    /// applied at `at` (the wall-clock time it was read at), but it does not move its
    /// partition's position, which stays where the partition's believable records put it. One
    /// producer with a wrong clock must not make the rest of its partition's backlog late.
    pub fn read_skewed(&mut self, partition: &TopicPartition, offset: i64, at: Millis, record: R) {
        self.state(partition);
        let state = self.partitions.get_mut(partition).expect("just added");
        wait(state, &mut self.heads, &mut self.records, offset, at, record);
    }

    /// A record was read and applied at once (undecodable, or skipped after a restart): only
    /// the read position moves.
    pub fn passed(&mut self, partition: &TopicPartition, offset: i64) {
        let state = self.state(partition);
        state.next_offset = Some(state.next_offset.map_or(offset + 1, |next| next.max(offset + 1)));
    }

    /// Whether the partition has unread records (from the consumer's high watermark).
    pub fn set_caught_up(&mut self, partition: &TopicPartition, caught_up: bool) {
        if let Some(state) = self.partitions.get_mut(partition) {
            state.caught_up = caught_up;
        }
    }

    /// The next offset to read from a partition, if known.
    pub fn next_offset(&self, partition: &TopicPartition) -> Option<i64> {
        self.partitions.get(partition).and_then(|state| state.next_offset)
    }

    /// Whether every assigned partition has caught up.
    pub fn all_caught_up(&self) -> bool {
        self.partitions.values().all(|state| state.caught_up)
    }

    /// The live clock at this wall-clock time (monotonic).
    pub fn clock(&mut self, wall: Millis) -> Millis {
        let cap = wall.saturating_sub(self.lateness);
        let mut lowest: Option<Millis> = None;
        let mut unknown = false;
        for state in self.partitions.values() {
            if state.caught_up {
                continue;
            }
            match state.max_time {
                None => unknown = true,
                Some(time) => {
                    let position = time.saturating_sub(self.lateness);
                    lowest = Some(lowest.map_or(position, |low| low.min(position)));
                }
            }
        }
        let candidate = if unknown || self.unlisted || self.partitions.is_empty() {
            // Nothing assigned yet, a partition with unread records has not told its position
            // (or is held elsewhere), or the partitions are not listed since the assignment
            // changed: the clock waits.
            None
        } else {
            Some(lowest.map_or(cap, |low| low.min(cap)))
        };
        if let Some(candidate) = candidate {
            self.clock = self.clock.max(candidate);
        }
        self.clock
    }

    /// The next waiting record the clock has passed, in merged order, with its time. Strictly
    /// passed: a partition whose position equals a record's time may still deliver another
    /// record with that same time, which must come first if its partition sorts first.
    pub fn pop_ready(&mut self, clock: Millis) -> Option<(TopicPartition, i64, Millis, R)> {
        loop {
            let Reverse(head) = *self.heads.peek()?;
            let current = self
                .by_rank
                .get(head.rank as usize)
                .and_then(|partition| Some((partition, self.partitions.get_mut(partition)?)))
                .filter(|(_, state)| {
                    state
                        .queue
                        .front()
                        .is_some_and(|first| first.key() == (head.time, head.offset))
                });
            let Some((partition, state)) = current else {
                // Stale: its record was released through a later entry, or its partition was
                // revoked.
                self.heads.pop();
                continue;
            };
            if head.time >= clock {
                return None;
            }
            let first = state.queue.pop_front().expect("checked above");
            match state.queue.front() {
                Some(next) => {
                    // The partition's next record takes the top's place, sinking as far as it
                    // belongs.
                    *self.heads.peek_mut().expect("checked above") = Reverse(Head {
                        time: next.time,
                        rank: head.rank,
                        offset: next.offset,
                    });
                }
                None => {
                    self.heads.pop();
                }
            }
            let record = self.records.remove(first.slot as usize);
            return Some((partition.clone(), first.offset, first.time, record));
        }
    }

    /// How far the engine's clock may move now: the live clock, but never past the point where
    /// a record not applied yet would be applied in a replay of the merged order (its time less
    /// the lateness). That bounds the earliest waiting record, and also the records a partition
    /// still has unread: they may be up to the lateness older than the newest one read from it,
    /// so while it has not caught up the engine stays one more lateness behind its position.
    /// (Bounding only the waiting records let the engine's clock run up to the lateness ahead of
    /// a record not read yet, firing timers that a replay fires after that record: a breach by
    /// its timer, with actions, instead of after the fact.)
    pub fn engine_target(&self, clock: Millis) -> Millis {
        let mut target = clock;
        for state in self.partitions.values() {
            if let Some(first) = state.queue.front() {
                target = target.min(first.time.saturating_sub(self.lateness));
            }
            if let (false, Some(time)) = (state.caught_up, state.max_time) {
                target = target.min(time.saturating_sub(self.lateness.saturating_mul(2)));
            }
        }
        target
    }

    /// Records waiting.
    pub fn waiting(&self) -> usize {
        self.records.len()
    }

    /// Which partitions to pause or resume: when too many records wait, every partition ahead
    /// of the slowest is paused and a paused one that is no longer ahead (the slower ones caught
    /// up) resumes, or the clock would wait for it forever; below half the bound all resume.
    pub fn flow_control(&mut self) -> FlowControl {
        let mut control = FlowControl::default();
        let over = self.records.len() >= self.max_held;
        let under = self.records.len() < self.max_held / 2;
        let slowest = self
            .partitions
            .values()
            .filter(|state| !state.caught_up)
            .filter_map(|state| state.max_time)
            .min();
        // A partition held elsewhere stops the clock whatever is read here: then every
        // partition may be paused.
        let elsewhere = self.partitions.values().any(|state| !state.assigned);
        for (partition, state) in self.partitions.iter_mut().filter(|(_, state)| state.assigned) {
            let ahead = match (state.max_time, slowest) {
                (Some(time), Some(slowest)) => time > slowest,
                // Nothing known to be slower: pausing it could stop the clock.
                _ => false,
            } || elsewhere;
            if over && ahead && !state.paused {
                state.paused = true;
                control.pause.push(partition.clone());
            } else if state.paused && (under || !ahead) {
                // Below half the bound, or the partitions that were slower have caught up and
                // this one holds the clock now (the clock would wait for it forever).
                state.paused = false;
                control.resume.push(partition.clone());
            }
        }
        control
    }

    /// Where each partition must be re-read from after a restart (for checkpoints).
    ///
    /// A partition that resumed from a stored position and has not yet read again up to that
    /// position's `until` keeps its knowledge: the offsets between the read position and
    /// `until` that it did not hold were applied before, and must not be applied again after
    /// the next restart (a kill -9 soon after a restart otherwise applied them twice).
    pub fn resume_positions(&self) -> Vec<(TopicPartition, ResumePosition)> {
        self.partitions
            .iter()
            .filter_map(|(partition, state)| {
                let read_until = state.next_offset?;
                let mut held: Vec<i64> = state.queue.iter().map(|waiting| waiting.offset).collect();
                held.sort_unstable();
                let mut until = read_until;
                if let Some(restored) = &state.restored {
                    if restored.until > read_until {
                        held.extend(restored.held.iter().copied().filter(|offset| *offset >= read_until));
                        until = restored.until;
                    }
                }
                let offset = held.first().copied().unwrap_or(until);
                Some((partition.clone(), ResumePosition { offset, held, until }))
            })
            .collect()
    }
}

/// Moves the partition's read position past `offset` and queues the record, once: a record
/// read again while it waits is the same record.
fn wait<R>(
    state: &mut Partition,
    heads: &mut BinaryHeap<Reverse<Head>>,
    records: &mut slab::Slab<R>,
    offset: i64,
    time: Millis,
    record: R,
) {
    let read_before = state.next_offset.is_some_and(|next| offset < next);
    state.next_offset = Some(state.next_offset.map_or(offset + 1, |next| next.max(offset + 1)));
    // Read again while it waits (rare: reads go forward): the same record.
    if read_before && state.queue.iter().any(|waiting| waiting.offset == offset) {
        return;
    }
    let slot = u32::try_from(records.insert(record)).expect("fewer than 2^32 records wait");
    let waiting = Waiting { time, offset, slot };
    let queue = &mut state.queue;
    let at = match queue.back() {
        Some(last) if last.key() > waiting.key() => queue.partition_point(|other| other.key() < waiting.key()),
        _ => queue.len(),
    };
    queue.insert(at, waiting);
    if at == 0 {
        // A new first record: the heap learns it (an entry for the one it displaced, if any,
        // is stale now).
        heads.push(Reverse(Head {
            time,
            rank: state.rank,
            offset,
        }));
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod kills;
