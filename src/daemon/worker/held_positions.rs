//! The read positions a checkpoint holds, and what settling it does with them.
//!
//! A checkpoint stores the position of every partition the engine applied records from: those
//! owned when it was taken (their offsets are committed to Kafka once it is durable), then those
//! taken away earlier by a rebalance (kept so that after a restart their applied records are
//! skipped, never committed since another member may own them). While the writer commits it, a
//! rebalance may take more partitions away: `give_up` then remembers a newer position for them
//! (what the engine applied until the revocation), which the checkpoint's older one must not
//! replace, and their offsets must not be committed (they are no longer this member's). Pure.

use crate::daemon::align::{ResumePosition, TopicPartition};
use std::collections::{HashMap, HashSet};

/// The positions of one checkpoint, from when it is taken until it is settled.
pub(super) struct HeldPositions {
    /// Those owned when it was taken first (`owned` of them), then those of partitions away.
    positions: Vec<(TopicPartition, ResumePosition)>,
    owned: usize,
    /// Partitions given up (revoked, lost) since it was taken.
    superseded: HashSet<TopicPartition>,
}

/// What a durable checkpoint settles.
#[derive(Debug, PartialEq)]
pub(super) struct Settled {
    /// The next offsets to commit to Kafka: partitions owned then and still owned.
    pub offsets: Vec<(TopicPartition, i64)>,
    /// The positions the store now holds, to remember for partitions that come back.
    pub stored: Vec<(TopicPartition, ResumePosition)>,
}

impl HeldPositions {
    /// The positions of the partitions `owned` now, then those of `remembered` partitions that
    /// are not owned (taken away earlier).
    pub fn take(
        owned: Vec<(TopicPartition, ResumePosition)>,
        remembered: &HashMap<TopicPartition, ResumePosition>,
    ) -> HeldPositions {
        let count = owned.len();
        let assigned: HashSet<&TopicPartition> = owned.iter().map(|(partition, _)| partition).collect();
        let away: Vec<(TopicPartition, ResumePosition)> = remembered
            .iter()
            .filter(|(partition, _)| !assigned.contains(partition))
            .map(|(partition, position)| (partition.clone(), position.clone()))
            .collect();
        let mut positions = owned;
        positions.extend(away);
        HeldPositions {
            positions,
            owned: count,
            superseded: HashSet::new(),
        }
    }

    /// Every position, for the checkpoint to store.
    pub fn all(&self) -> &[(TopicPartition, ResumePosition)] {
        &self.positions
    }

    /// Partitions given up while the checkpoint is being written: they keep the newer position
    /// remembered when they were given up.
    pub fn give_up(&mut self, partitions: &[TopicPartition]) {
        self.superseded.extend(partitions.iter().cloned());
    }

    /// The checkpoint is durable: what to commit and to remember.
    pub fn settle(self) -> Settled {
        let mut offsets = Vec::with_capacity(self.owned);
        let mut stored = Vec::with_capacity(self.positions.len());
        for (index, (partition, position)) in self.positions.into_iter().enumerate() {
            if self.superseded.contains(&partition) {
                continue;
            }
            if index < self.owned {
                offsets.push((partition.clone(), position.offset));
            }
            stored.push((partition, position));
        }
        Settled { offsets, stored }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn partition(number: i32) -> TopicPartition {
        (Arc::from("orders"), number)
    }

    fn at(offset: i64) -> ResumePosition {
        ResumePosition {
            offset,
            held: Vec::new(),
            until: offset,
        }
    }

    #[test]
    fn owned_partitions_are_committed_and_those_away_only_remembered() {
        let remembered = HashMap::from([(partition(0), at(3)), (partition(2), at(7))]);
        let held = HeldPositions::take(vec![(partition(0), at(10)), (partition(1), at(20))], &remembered);
        assert_eq!(held.all().len(), 3, "owned ones, then the one away: {:?}", held.all());
        assert_eq!(
            held.settle(),
            Settled {
                offsets: vec![(partition(0), 10), (partition(1), 20)],
                stored: vec![(partition(0), at(10)), (partition(1), at(20)), (partition(2), at(7))],
            }
        );
    }

    #[test]
    fn a_partition_given_up_while_it_is_written_keeps_its_newer_position_and_is_not_committed() {
        let remembered = HashMap::from([(partition(2), at(7))]);
        let mut held = HeldPositions::take(vec![(partition(0), at(10)), (partition(1), at(20))], &remembered);
        // Partition 1 is revoked after more of it was applied (`give_up` remembered 25 for it);
        // partition 2 comes back and goes again meanwhile.
        held.give_up(&[partition(1), partition(2)]);
        assert_eq!(
            held.settle(),
            Settled {
                offsets: vec![(partition(0), 10)],
                stored: vec![(partition(0), at(10))],
            }
        );
    }
}
