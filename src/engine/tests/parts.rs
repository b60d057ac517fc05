//! Incremental checkpoints: the parts a checkpoint writes (only the changed slots and the
//! globals) always add up to the engine's whole state, through renumbering, failed writes and
//! restores with changed flows; damaged parts are refused.

use super::*;
use crate::engine::parts::{PartError, SnapshotParts};
use crate::engine::snapshot::Snapshot;
use std::collections::BTreeMap;

/// A store of checkpoint parts, written the way the daemon writes them.
#[derive(Clone, Default)]
pub(in crate::engine) struct PartStore {
    pub(in crate::engine) instances: BTreeMap<u32, Vec<u8>>,
    pub(in crate::engine) orphan_groups: BTreeMap<u32, Vec<u8>>,
    pub(in crate::engine) globals: Vec<u8>,
}

impl PartStore {
    /// Writes the parts of the slots changed since the last checkpoint, and the globals.
    pub(in crate::engine) fn checkpoint(&mut self, engine: &mut Engine) {
        let changes = engine.take_changes();
        for slot in changes.instances.iter() {
            match engine.encode_instance(slot) {
                Some(part) => self.instances.insert(slot, part),
                None => self.instances.remove(&slot),
            };
        }
        for slot in changes.orphan_groups.iter() {
            match engine.encode_orphan_group(slot) {
                Some(part) => self.orphan_groups.insert(slot, part),
                None => self.orphan_groups.remove(&slot),
            };
        }
        self.globals = engine.encode_globals();
    }

    /// A checkpoint whose write failed: the changes go back to the engine.
    pub(in crate::engine) fn failed_checkpoint(engine: &mut Engine) {
        let changes = engine.take_changes();
        engine.return_changes(changes);
    }

    /// The snapshot the stored parts make.
    pub(in crate::engine) fn snapshot(&self) -> Result<Snapshot, PartError> {
        let mut parts = SnapshotParts::default();
        for (slot, part) in &self.instances {
            parts.add_instance(*slot, part)?;
        }
        for (slot, part) in &self.orphan_groups {
            parts.add_orphan_group(*slot, part)?;
        }
        parts.finish(&self.globals)
    }
}

/// The engine's whole state as JSON, for comparisons.
pub(in crate::engine) fn state(engine: &Engine) -> String {
    serde_json::to_string(&engine.snapshot()).unwrap()
}

const SCRIPT: &str = "
    0 orders {\"type\":\"Placed\",\"id\":\"o-1\",\"eid\":\"e1\"}
    1m orders {\"type\":\"Placed\",\"id\":\"o-2\",\"eid\":\"e2\"}
    2m pay {\"type\":\"Charged\",\"pid\":\"p-9\",\"eid\":\"e3\"}
    3m stock {\"type\":\"Reserved\",\"id\":\"o-1\",\"eid\":\"e4\"}
    4m pay {\"type\":\"PayRequested\",\"id\":\"o-1\",\"pid\":\"p-1\",\"eid\":\"e5\"}
    5m pay {\"type\":\"Charged\",\"pid\":\"p-1\",\"eid\":\"e6\"}
    6m pay {\"type\":\"PayRequested\",\"id\":\"o-2\",\"pid\":\"p-1\",\"eid\":\"e7\"}
    7m pay {\"type\":\"Charged\",\"pid\":\"p-7\",\"eid\":\"e8\"}
    8m orders {\"type\":\"Cancelled\",\"id\":\"o-2\",\"eid\":\"e9\"}
    until 3h
    until 10d";

/// Feeds the script, checkpointing after the lines `checkpoint_after` says, and checks after
/// each checkpoint that the stored parts restore to the engine's state.
fn run_checkpointed(flows: &[&str], config: EngineConfig, checkpoint_after: impl Fn(usize) -> bool) {
    let mut engine = Engine::new(compile(flows), config.clone());
    let mut store = PartStore::default();
    let mut transcript = String::new();
    let lines: Vec<&str> = SCRIPT.lines().collect();
    for (number, line) in lines.iter().enumerate() {
        feed(&mut engine, number, line, &mut transcript);
        if !checkpoint_after(number) {
            continue;
        }
        store.checkpoint(&mut engine);
        assert!(engine.take_changes().instances.is_empty(), "the checkpoint took every change");
        let restored = Engine::restore(compile(flows), config.clone(), store.snapshot().unwrap()).unwrap();
        assert_eq!(state(&restored), state(&engine), "restored after line {number}");
    }
}

#[test]
fn incremental_checkpoints_add_up_to_the_whole_state() {
    let retention = EngineConfig {
        retention: 3_600_000,
        ..EngineConfig::default()
    };
    run_checkpointed(&[ORDER], EngineConfig::default(), |_| true);
    run_checkpointed(&[ORDER], retention.clone(), |_| true);
    run_checkpointed(&[ORDER], retention.clone(), |number| number % 3 == 1);
    run_checkpointed(&[ORDER], retention, |number| number == 6 || number == 10);
}

#[test]
fn only_changed_slots_are_written() {
    let mut engine = Engine::new(compile(&[ORDER]), EngineConfig::default());
    let mut transcript = String::new();
    let lines: Vec<&str> = SCRIPT.lines().collect();
    for (number, line) in lines.iter().enumerate().take(4) {
        feed(&mut engine, number, line, &mut transcript);
    }
    let changes = engine.take_changes();
    assert_eq!(changes.instances.iter().collect::<Vec<_>>(), [0, 1]);
    assert_eq!(changes.orphan_groups.iter().collect::<Vec<_>>(), [0], "p-9 is held");
    feed(&mut engine, 4, lines[4], &mut transcript);
    let changes = engine.take_changes();
    assert_eq!(changes.instances.iter().collect::<Vec<_>>(), [0], "only o-1 changed");
    assert!(changes.orphan_groups.is_empty());
    // o-2 links p-1, which o-1 linked before: o-1 no longer owns the alias and is rewritten.
    for (number, line) in lines.iter().enumerate().take(7).skip(5) {
        feed(&mut engine, number, line, &mut transcript);
    }
    engine.take_changes();
    feed(&mut engine, 7, lines[7], &mut transcript);
    assert_eq!(engine.take_changes().instances.iter().collect::<Vec<_>>(), [0, 1]);
}

#[test]
fn a_failed_checkpoint_leaves_its_changes_for_the_next() {
    let mut engine = Engine::new(compile(&[ORDER]), EngineConfig::default());
    let mut store = PartStore::default();
    let mut transcript = String::new();
    for (number, line) in SCRIPT.lines().enumerate().take(4) {
        feed(&mut engine, number, line, &mut transcript);
    }
    PartStore::failed_checkpoint(&mut engine);
    store.checkpoint(&mut engine);
    let restored = Engine::restore(compile(&[ORDER]), EngineConfig::default(), store.snapshot().unwrap());
    assert_eq!(state(&restored.unwrap()), state(&engine));
}

#[test]
fn a_restore_with_changed_flows_rewrites_every_slot() {
    let config = EngineConfig::default();
    let mut engine = Engine::new(compile(&[ORDER]), config.clone());
    let mut store = PartStore::default();
    let mut transcript = String::new();
    for (number, line) in SCRIPT.lines().enumerate().take(6) {
        feed(&mut engine, number, line, &mut transcript);
    }
    store.checkpoint(&mut engine);
    let other = ORDER.replace("flow: t", "flow: u").replace("topic: ", "topic: other-");
    let flows = || compile(&[&other, ORDER]);
    let (mut moved, changes) =
        Engine::restore_with_changed_flows(flows(), config.clone(), store.snapshot().unwrap()).unwrap();
    assert_eq!(changes.added, ["u"]);
    store.checkpoint(&mut moved);
    let again = Engine::restore(flows(), config, store.snapshot().unwrap()).unwrap();
    assert_eq!(state(&again), state(&moved));
}

#[test]
fn damaged_parts_are_refused() {
    let mut engine = Engine::new(compile(&[ORDER]), EngineConfig::default());
    let mut store = PartStore::default();
    let mut transcript = String::new();
    for (number, line) in SCRIPT.lines().enumerate().take(4) {
        feed(&mut engine, number, line, &mut transcript);
    }
    store.checkpoint(&mut engine);
    let mut missing = store.clone();
    missing.instances.remove(&1);
    let error = missing.snapshot().map(|_| ()).unwrap_err();
    assert_eq!(error.to_string(), "the number of instances does not match the free slots");
    let mut truncated = store.clone();
    let part = truncated.instances.get_mut(&0).unwrap();
    part.truncate(part.len() / 2);
    let error = truncated.snapshot().map(|_| ()).unwrap_err();
    assert!(error.to_string().starts_with("instance: "), "{error}");
    let mut moved = store.clone();
    let part = moved.instances.remove(&0).unwrap();
    moved.instances.insert(7, part);
    let error = moved.snapshot().map(|_| ()).unwrap_err();
    assert_eq!(error.to_string(), "an instance slot is out of range");
    let mut globals = store;
    globals.globals.truncate(3);
    let error = globals.snapshot().map(|_| ()).unwrap_err();
    assert!(error.to_string().starts_with("globals: "), "{error}");
}
