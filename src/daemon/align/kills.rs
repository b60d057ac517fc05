//! Kill -9 at any moment, modelled on the pure merge: partitions of timed records, reads in
//! random interleavings and chunk sizes, caught-up flags only from the high watermarks the
//! consumer has really seen, flow control, checkpoints and kills that restart a new [`Aligner`]
//! from the last durable checkpoint the way the worker does (clock from the restored engine,
//! positions, already-applied offsets skipped, positions replaced at every checkpoint). Over
//! all lives the durable sequence of applied records must be the time-merged order, and every
//! record must be applied with the engine's clock where a replay of that order has it.

use super::*;
use proptest::prelude::*;
use std::collections::HashMap;

const LATENESS: Millis = 10;
/// Far ahead of every record: once every partition has caught up, everything is released.
const WALL: Millis = 1_000_000;

fn tp(partition: usize) -> TopicPartition {
    (Arc::from("t"), partition as i32)
}

#[derive(Clone, Debug)]
enum Op {
    /// The consumer delivers up to this many records of a partition (0: only its watermark).
    Fetch(usize, usize),
    /// The rest of a worker turn: caught-up flags, release, engine clock, flow control.
    Turn,
    Checkpoint,
    Kill,
}

/// What a checkpoint makes durable: the engine (the records it applied, in order, and its
/// clock) and the positions.
#[derive(Clone, Default)]
struct Durable {
    applied: Vec<(usize, i64)>,
    engine_clock: Millis,
    positions: HashMap<TopicPartition, ResumePosition>,
}

/// One life of the worker.
struct Life {
    aligner: Aligner<()>,
    /// The worker's `restored_positions`: replaced by the positions of every checkpoint.
    restored: HashMap<TopicPartition, ResumePosition>,
    /// The consumer's fetch position per partition.
    fetch: Vec<i64>,
    /// The high watermark the consumer has seen (after its first fetch of the partition).
    high: Vec<Option<i64>>,
    paused: Vec<bool>,
    applied: Vec<(usize, i64)>,
    engine_clock: Millis,
    /// The last live clock computed.
    clock: Millis,
}

impl Life {
    fn start(durable: &Durable, partitions: usize, max_held: usize) -> Life {
        let mut aligner = Aligner::new(LATENESS, max_held);
        aligner.start_clock_at(durable.engine_clock);
        let mut fetch = Vec::new();
        for partition in 0..partitions {
            let stored = durable.positions.get(&tp(partition)).cloned();
            fetch.push(stored.as_ref().map_or(0, |position| position.offset));
            aligner.assign(tp(partition), stored);
        }
        Life {
            aligner,
            restored: durable.positions.clone(),
            fetch,
            high: vec![None; partitions],
            paused: vec![false; partitions],
            applied: durable.applied.clone(),
            engine_clock: durable.engine_clock,
            clock: durable.engine_clock,
        }
    }

    fn fetch(&mut self, log: &[Vec<Millis>], partition: usize, count: usize) {
        if self.paused[partition] {
            return;
        }
        let records = &log[partition];
        self.high[partition] = Some(records.len() as i64);
        let end = (self.fetch[partition] + count as i64).min(records.len() as i64);
        for offset in self.fetch[partition]..end {
            let time = records[offset as usize];
            let applied = self
                .restored
                .get(&tp(partition))
                .is_some_and(|position| position.already_applied(offset));
            if applied {
                self.aligner.passed(&tp(partition), offset);
            } else {
                assert!(
                    time >= self.clock,
                    "partition {partition} offset {offset} (time {time}) read behind the live clock {}",
                    self.clock
                );
                self.aligner.read(&tp(partition), offset, time, ());
            }
        }
        self.fetch[partition] = self.fetch[partition].max(end);
    }

    fn turn(&mut self) {
        for (partition, high) in self.high.iter().enumerate() {
            let caught_up = match (self.aligner.next_offset(&tp(partition)), *high) {
                (Some(next), Some(high)) => next >= high,
                (None, Some(0)) => true,
                _ => false,
            };
            self.aligner.set_caught_up(&tp(partition), caught_up);
        }
        self.clock = self.aligner.clock(WALL);
        while let Some((partition, offset, time, ())) = self.aligner.pop_ready(self.clock) {
            // A replay of the merged order applies each record with the clock at its time less
            // the lateness at most (SPEC 1.3): a clock already past that has fired timers that
            // the record should have come before.
            assert!(
                self.engine_clock <= time - LATENESS,
                "partition {} offset {offset} (time {time}) applied with the engine's clock at {}",
                partition.1,
                self.engine_clock
            );
            self.applied.push((partition.1 as usize, offset));
            self.engine_clock = self.engine_clock.max(time - LATENESS);
        }
        let target = self.aligner.engine_target(self.clock);
        self.engine_clock = self.engine_clock.max(target);
        let control = self.aligner.flow_control();
        for partition in control.pause {
            self.paused[partition.1 as usize] = true;
        }
        for partition in control.resume {
            self.paused[partition.1 as usize] = false;
        }
    }

    fn checkpoint(&mut self) -> Durable {
        let positions: HashMap<TopicPartition, ResumePosition> =
            self.aligner.resume_positions().into_iter().collect();
        for (partition, position) in &positions {
            self.restored.insert(partition.clone(), position.clone());
        }
        Durable {
            applied: self.applied.clone(),
            engine_clock: self.engine_clock,
            positions,
        }
    }
}

/// Runs the operations, then a last life to the end; returns the records applied durably.
fn run_lives(log: &[Vec<Millis>], ops: &[Op], max_held: usize) -> Vec<(usize, i64)> {
    let partitions = log.len();
    let mut durable = Durable {
        engine_clock: Millis::MIN,
        ..Durable::default()
    };
    let mut life = Life::start(&durable, partitions, max_held);
    for op in ops {
        match *op {
            Op::Fetch(partition, count) => life.fetch(log, partition % partitions, count),
            Op::Turn => life.turn(),
            Op::Checkpoint => durable = life.checkpoint(),
            Op::Kill => life = Life::start(&durable, partitions, max_held),
        }
    }
    let total: usize = log.iter().map(Vec::len).sum();
    for _ in 0..4 * (total + partitions) {
        for partition in 0..partitions {
            life.fetch(log, partition, 1);
        }
        life.turn();
    }
    assert_eq!(life.aligner.waiting(), 0, "everything read was released");
    life.checkpoint().applied
}

/// The records in time order (ties: partition, offset), as a replay of the merge sees them.
fn merged(log: &[Vec<Millis>]) -> Vec<(usize, i64)> {
    let mut all: Vec<(Millis, usize, i64)> = log
        .iter()
        .enumerate()
        .flat_map(|(partition, times)| {
            times
                .iter()
                .enumerate()
                .map(move |(offset, time)| (*time, partition, offset as i64))
        })
        .collect();
    all.sort();
    all.into_iter().map(|(_, partition, offset)| (partition, offset)).collect()
}

/// Partitions of records, each at most `LATENESS` behind the latest before it in its partition.
fn log() -> impl Strategy<Value = Vec<Vec<Millis>>> {
    let partition = proptest::collection::vec(-LATENESS..=25, 0..8).prop_map(|steps| {
        let mut latest = 100;
        steps
            .into_iter()
            .map(|step| {
                let time = latest + step;
                latest = latest.max(time);
                time
            })
            .collect::<Vec<Millis>>()
    });
    proptest::collection::vec(partition, 1..4)
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    let op = prop_oneof![
        6 => (0usize..4, 0usize..4).prop_map(|(partition, count)| Op::Fetch(partition, count)),
        4 => Just(Op::Turn),
        2 => Just(Op::Checkpoint),
        1 => Just(Op::Kill),
    ];
    proptest::collection::vec(op, 0..60)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn kills_at_any_moment_apply_the_merged_order_once(
        log in log(),
        ops in ops(),
        max_held in 1usize..6,
    ) {
        prop_assert_eq!(run_lives(&log, &ops, max_held), merged(&log));
    }
}
