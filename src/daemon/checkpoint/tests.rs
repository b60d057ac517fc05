//! Checkpoints through a store: written incrementally and read back whole; a damaged part, a
//! missing globals value and a checkpoint of the previous format are refused with `Corrupt`.

use super::*;
use crate::engine::{EngineConfig, Input};
use crate::flow::{parse_flow_file, Flow};
use crate::record::Record;
use crate::store::MemoryStore;

const FLOW: &str = r#"
flow: t
events:
  Placed: { topic: orders, match: { type: Placed }, key: id }
  Shipped: { topic: orders, match: { type: Shipped }, key: id }
start: Placed
steps:
  shipping: { await: Shipped, within: 1h }
"#;

fn engine() -> Engine {
    let flow = parse_flow_file(std::path::Path::new("t.yaml"), FLOW).expect("flow parses");
    Engine::new(vec![Flow::new(flow)], EngineConfig::default())
}

fn apply(engine: &mut Engine, offset: i64, kind: &str, id: &str) {
    let record = Record {
        topic: "orders".to_string(),
        partition: 0,
        offset,
        key: None,
        timestamp: offset * 60_000,
        headers: Vec::new(),
        value: serde_json::json!({ "type": kind, "id": id }).into(),
    };
    engine.handle(Input::RecordReceived(&record), &mut Vec::new());
}

fn state(engine: &Engine) -> String {
    serde_json::to_string(&engine.snapshot()).expect("snapshot serialises")
}

/// A store holding two checkpoints: o-1 and o-2 opened, then o-1 shipped and o-3 opened.
fn checkpointed() -> (MemoryStore, Engine) {
    let mut store = MemoryStore::new();
    let mut engine = engine();
    let mut outbox = Outbox::restore(Vec::new());
    let mut slots = StoredSlots::default();
    apply(&mut engine, 0, "Placed", "o-1");
    apply(&mut engine, 1, "Placed", "o-2");
    let first = write(&mut store, &mut engine, &[], &mut outbox, &mut slots, 0).expect("written");
    assert_eq!((first.parts_written, first.parts_deleted), (2, 0));
    apply(&mut engine, 2, "Shipped", "o-1");
    apply(&mut engine, 3, "Placed", "o-3");
    let second = write(&mut store, &mut engine, &[], &mut outbox, &mut slots, 0).expect("written");
    assert_eq!(second.parts_written, 2, "o-1 changed, o-3 is new; o-2 is not written again");
    assert_eq!(load(&store).expect("loads").slots, slots, "the slots written are the slots stored");
    (store, engine)
}

fn restore(store: &MemoryStore) -> Result<Engine, CheckpointError> {
    let snapshot = load(store)?.snapshot.expect("a snapshot");
    let flow = parse_flow_file(std::path::Path::new("t.yaml"), FLOW).expect("flow parses");
    Ok(Engine::restore(vec![Flow::new(flow)], EngineConfig::default(), snapshot).expect("restores"))
}

#[test]
fn incremental_checkpoints_load_as_the_whole_state() {
    let (store, engine) = checkpointed();
    assert_eq!(state(&restore(&store).expect("loads")), state(&engine));
}

#[test]
fn damaged_or_old_checkpoints_are_refused_as_corrupt() {
    let refused = |store: &MemoryStore| match restore(store) {
        Err(CheckpointError::Corrupt { what, detail }) => format!("{what}: {detail}"),
        Err(other) => panic!("not a Corrupt error: {other}"),
        Ok(_) => panic!("a damaged checkpoint loaded"),
    };
    let (mut store, _) = checkpointed();
    let mut batch = Batch::default();
    batch.put(slot_key(INSTANCE_PREFIX, 1), b"\xff\xff".to_vec());
    store.apply(&batch).unwrap();
    let error = refused(&store);
    assert!(error.starts_with("engine/i/0000000001: instance: "), "{error}");

    let (mut store, _) = checkpointed();
    let mut batch = Batch::default();
    batch.delete(GLOBALS.to_vec());
    store.apply(&batch).unwrap();
    assert_eq!(refused(&store), "engine/globals: missing");

    let (mut store, _) = checkpointed();
    let mut batch = Batch::default();
    batch.put(META.to_vec(), br#"{"version":1,"chunks":1,"flows":["t"],"engine_clock":0,"written_at":0}"#.to_vec());
    store.apply(&batch).unwrap();
    assert_eq!(refused(&store), "meta/checkpoint: version 1 (this build reads 3)");
}

/// The part of a freed slot is deleted only when the store has one: an instance filled and
/// freed between two checkpoints leaves nothing to delete, one checkpointed before is deleted,
/// and what the store holds afterwards always matches the slots `write` keeps.
#[test]
fn only_parts_in_the_store_are_deleted() {
    let config = EngineConfig {
        retention: 0,
        allowed_lateness: 0,
        ..EngineConfig::default()
    };
    let flow = parse_flow_file(std::path::Path::new("t.yaml"), FLOW).expect("flow parses");
    let mut engine = Engine::new(vec![Flow::new(flow)], config.clone());
    let mut store = MemoryStore::new();
    let mut outbox = Outbox::restore(Vec::new());
    let mut slots = StoredSlots::default();
    apply(&mut engine, 0, "Placed", "o-1");
    let first = write(&mut store, &mut engine, &[], &mut outbox, &mut slots, 0).expect("written");
    assert_eq!((first.parts_written, first.parts_deleted), (1, 0));
    // o-2 and o-3 start while o-1 is open (so in slots of their own), then all three end and
    // are released (no retention) before the next checkpoint: three freed slots, one of them
    // in the store.
    apply(&mut engine, 1, "Placed", "o-2");
    apply(&mut engine, 2, "Placed", "o-3");
    apply(&mut engine, 3, "Shipped", "o-1");
    apply(&mut engine, 4, "Shipped", "o-2");
    apply(&mut engine, 5, "Shipped", "o-3");
    engine.handle(Input::ClockAdvanced(10 * 60_000), &mut Vec::new());
    assert_eq!(engine.open_instances(), 0);
    let changed = engine.take_changes();
    assert_eq!(changed.instances.iter().collect::<Vec<_>>(), vec![0, 1, 2], "three slots used and freed");
    engine.return_changes(changed);
    let second = write(&mut store, &mut engine, &[], &mut outbox, &mut slots, 0).expect("written");
    assert_eq!(second.parts_written, 0);
    assert_eq!(second.parts_deleted, 1, "only o-1's part was in the store");
    let loaded = load(&store).expect("loads");
    assert_eq!(loaded.slots, slots);
    assert!(loaded.slots.instances.is_empty());
    let restored = Engine::restore(
        vec![Flow::new(parse_flow_file(std::path::Path::new("t.yaml"), FLOW).unwrap())],
        config,
        loaded.snapshot.expect("a snapshot"),
    )
    .expect("restores");
    assert_eq!(state(&restored), state(&engine));
}
