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
    let mut slots = StoredKeys::default();
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
    assert_eq!(refused(&store), "meta/checkpoint: version 1 (this build reads 3 to 4)");
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
    let mut slots = StoredKeys::default();
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

fn out_record(n: u64) -> OutRecord {
    OutRecord {
        topic: Arc::from("flowwatch.signals"),
        key: Some(format!("o-{n}")),
        payload: format!(r#"{{"id":"{n}"}}"#).into_bytes(),
        headers: Vec::new(),
        timestamp: Some(n as i64),
    }
}

/// The store's outbox keys, by prefix.
fn outbox_keys(store: &MemoryStore) -> Vec<String> {
    let mut keys = Vec::new();
    for prefix in [OUTBOX_PREFIX, OUTBOX_BLOCK_PREFIX, OUTBOX_ACKED_PREFIX] {
        store
            .scan_prefix(prefix.as_bytes(), &mut |key, _| {
                keys.push(String::from_utf8_lossy(key).into_owned());
                Ok(())
            })
            .unwrap();
    }
    keys
}

/// Each checkpoint stores the records it adds as one block; acknowledged ones are remembered
/// per block until the whole block is acknowledged and deleted; a restart gets exactly the
/// records not acknowledged, in order, and goes on keeping the store right.
#[test]
fn the_outbox_is_stored_in_blocks_and_a_restart_sends_exactly_what_was_not_acknowledged() {
    let mut store = MemoryStore::new();
    let mut engine = engine();
    let mut outbox = Outbox::restore(Vec::new());
    let mut keys = StoredKeys::default();
    for n in 0..5 {
        outbox.push(out_record(n));
    }
    // 2 is acknowledged before any checkpoint: never written.
    assert!(outbox.acknowledged(2).is_some());
    let first = write(&mut store, &mut engine, &[], &mut outbox, &mut keys, 0).expect("written");
    assert_eq!(first.outbox_added, 4);
    assert_eq!(outbox_keys(&store), vec!["outbox-block/00000000000000000000"]);
    for n in 5..8 {
        outbox.push(out_record(n));
    }
    for seq in [0, 3, 6] {
        assert!(outbox.acknowledged(seq).is_some());
    }
    write(&mut store, &mut engine, &[], &mut outbox, &mut keys, 0).expect("written");
    assert_eq!(
        outbox_keys(&store),
        vec![
            "outbox-block/00000000000000000000",
            "outbox-block/00000000000000000005",
            "outbox-acked/00000000000000000000",
        ],
        "6 was acknowledged before its checkpoint; 0 and 3 of the first block after"
    );
    let loaded = load(&store).expect("loads");
    assert_eq!(loaded.slots, keys, "what the store holds is what write keeps");
    let seqs: Vec<u64> = loaded.outbox.iter().map(|(seq, _)| *seq).collect();
    assert_eq!(seqs, vec![1, 4, 5, 7], "exactly the records not acknowledged, in order");
    assert_eq!(loaded.outbox[1].1, out_record(4));
    assert_eq!(keys.outbox.len(), 4);

    // After the restart: the first block's last records are acknowledged and it goes.
    let mut outbox = Outbox::restore(loaded.outbox);
    let mut keys = loaded.slots;
    for seq in [1, 4] {
        assert!(outbox.acknowledged(seq).is_some());
    }
    write(&mut store, &mut engine, &[], &mut outbox, &mut keys, 0).expect("written");
    assert_eq!(outbox_keys(&store), vec!["outbox-block/00000000000000000005"]);
    for seq in [5, 7] {
        assert!(outbox.acknowledged(seq).is_some());
    }
    write(&mut store, &mut engine, &[], &mut outbox, &mut keys, 0).expect("written");
    assert!(outbox_keys(&store).is_empty(), "every record acknowledged: nothing left");
    assert!(keys.outbox.is_empty());
    assert_eq!(load(&store).expect("loads").slots, keys);
}

/// A store written before blocks (version 3, one record per key) loads; its records are
/// deleted one by one as they are acknowledged, beside the blocks of new checkpoints.
#[test]
fn outbox_records_stored_one_per_key_still_load_and_go_when_acknowledged() {
    let (mut store, mut engine) = checkpointed();
    let mut batch = Batch::default();
    for seq in [3, 4] {
        batch.put(seq_key(OUTBOX_PREFIX, seq), out_record(seq).to_stored());
    }
    let meta = load(&store).expect("loads");
    batch.put(
        META.to_vec(),
        serde_json::to_vec(&serde_json::json!({
            "version": 3, "flows": meta.flows, "engine_clock": 0, "written_at": 0
        }))
        .unwrap(),
    );
    store.apply(&batch).unwrap();
    let loaded = load(&store).expect("a version 3 store loads");
    assert_eq!(loaded.outbox, vec![(3, out_record(3)), (4, out_record(4))]);
    let mut outbox = Outbox::restore(loaded.outbox);
    let mut keys = loaded.slots;
    assert!(outbox.acknowledged(3).is_some());
    outbox.push(out_record(5));
    write(&mut store, &mut engine, &[], &mut outbox, &mut keys, 0).expect("written");
    assert_eq!(
        outbox_keys(&store),
        vec!["outbox/00000000000000000004", "outbox-block/00000000000000000005"]
    );
    let seqs: Vec<u64> = load(&store).expect("loads").outbox.iter().map(|(seq, _)| *seq).collect();
    assert_eq!(seqs, vec![4, 5]);
}

/// A damaged block, or an acknowledgement list without its block, is refused, never skipped.
#[test]
fn a_damaged_outbox_block_is_refused() {
    let (mut store, _) = checkpointed();
    let mut batch = Batch::default();
    batch.put(seq_key(OUTBOX_BLOCK_PREFIX, 9), b"\x01\xff".to_vec());
    store.apply(&batch).unwrap();
    assert!(matches!(load(&store), Err(CheckpointError::Corrupt { what, .. }) if what == "outbox-block/00000000000000000009"));

    let (mut store, _) = checkpointed();
    let mut batch = Batch::default();
    batch.put(seq_key(OUTBOX_ACKED_PREFIX, 9), postcard::to_allocvec(&vec![9u64]).unwrap());
    store.apply(&batch).unwrap();
    assert!(matches!(load(&store), Err(CheckpointError::Corrupt { what, .. }) if what == "outbox-acked/00000000000000000009"));
}

/// Records are grouped into blocks of about `OUTBOX_BLOCK_BYTES` of payload (a record larger
/// than that is a block of its own), each acknowledged and deleted on its own.
#[test]
fn large_outbox_records_are_split_into_blocks() {
    let mut store = MemoryStore::new();
    let mut engine = engine();
    let mut outbox = Outbox::restore(Vec::new());
    let mut keys = StoredKeys::default();
    let big = |n: u64, bytes: usize| OutRecord {
        payload: vec![b'x'; bytes],
        ..out_record(n)
    };
    outbox.push(big(0, OUTBOX_BLOCK_BYTES * 2 / 3));
    outbox.push(big(1, OUTBOX_BLOCK_BYTES * 2 / 3));
    outbox.push(big(2, 10));
    outbox.push(big(3, OUTBOX_BLOCK_BYTES * 2));
    write(&mut store, &mut engine, &[], &mut outbox, &mut keys, 0).expect("written");
    assert_eq!(
        outbox_keys(&store),
        vec![
            "outbox-block/00000000000000000000",
            "outbox-block/00000000000000000001",
            "outbox-block/00000000000000000003",
        ]
    );
    let loaded = load(&store).expect("loads");
    assert_eq!(loaded.outbox.len(), 4);
    assert_eq!(loaded.outbox[3].1, big(3, OUTBOX_BLOCK_BYTES * 2));
    assert!(outbox.acknowledged(1).is_some());
    write(&mut store, &mut engine, &[], &mut outbox, &mut keys, 0).expect("written");
    assert_eq!(outbox_keys(&store).len(), 4, "block 1 is half acknowledged: its list is stored");
    assert!(outbox.acknowledged(0).is_some());
    assert!(outbox.acknowledged(2).is_some());
    write(&mut store, &mut engine, &[], &mut outbox, &mut keys, 0).expect("written");
    assert_eq!(outbox_keys(&store), vec!["outbox-block/00000000000000000003"]);
    assert_eq!(load(&store).expect("loads").slots, keys);
}
