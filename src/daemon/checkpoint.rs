//! Checkpoints: the engine's state, the read positions it reflects and the outbox, written to
//! the store in one atomic, durable batch (and read back at start).
//!
//! Kafka holds the input durably, so the daemon does not write every record's effect: it
//! checkpoints every `state.checkpoint_interval` (at least `CHECKPOINT_SPACING` × the last
//! checkpoint's duration apart: see the worker) and at shutdown (NOTES.md, "Store write
//! cost"). After a crash the last checkpoint is restored and reading resumes from its
//! positions; the engine is deterministic, so the records read again produce the same signals
//! with the same ids, and the outbox of the checkpoint is sent again. Nothing is lost, and what
//! is published twice carries the same CloudEvents id.
//!
//! Checkpoints are incremental: the engine marks the instance and orphan-group slots that
//! changed ([`crate::engine::changes`]), and a checkpoint writes only their parts (postcard,
//! [`crate::engine::parts`]), deletes the parts of slots freed since, and rewrites the small
//! globals part; its cost follows what changed, not the size of the state. Keys are laid out
//! so that state can later be sharded by input partition: `meta/checkpoint` (JSON: version,
//! flows, times), `engine/globals`, `engine/i/SLOT` (instances), `engine/o/SLOT` (orphan
//! groups), `offsets/TOPIC/PARTITION`, and the outbox: `outbox-block/SEQ` (every record a
//! checkpoint added, under the first one's sequence number), `outbox-acked/SEQ` (the records of
//! that block acknowledged since, while some are not) and `outbox/SEQ` (one record per key, as
//! checkpoints before blocks wrote them; still read, and deleted when acknowledged).

use super::align::{ResumePosition, TopicPartition};
use super::outbox::{OutRecord, Outbox};
use crate::engine::changes::SlotSet;
use crate::engine::parts::{PartError, SnapshotParts};
use crate::engine::snapshot::Snapshot;
use crate::engine::Engine;
use crate::store::{Batch, Store, StoreError};
use crate::time::Millis;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

const META: &[u8] = b"meta/checkpoint";
const GLOBALS: &[u8] = b"engine/globals";
const INSTANCE_PREFIX: &str = "engine/i/";
const ORPHANS_PREFIX: &str = "engine/o/";
const OFFSETS_PREFIX: &str = "offsets/";
const OUTBOX_PREFIX: &str = "outbox/";
const OUTBOX_BLOCK_PREFIX: &str = "outbox-block/";
const OUTBOX_ACKED_PREFIX: &str = "outbox-acked/";
/// A checkpoint's outbox records go into blocks of about this many payload bytes (one huge
/// value made redb zero-fill and copy a region of that size at once).
const OUTBOX_BLOCK_BYTES: usize = 1 << 20;
/// 1: the whole state as JSON chunks; 2: incremental postcard parts; 3: the flows' shape by
/// names (events, steps, aliases, actions) and the topic table in the globals (within 3,
/// outbox records went from JSON to a binary form, both read); 4: outbox records in blocks.
/// This build reads 3 and 4; an older build refuses 4 as unreadable rather than miss the
/// blocks.
const VERSION: u32 = 4;
/// The oldest version this build reads.
const OLDEST_READ: u32 = 3;

/// Why a checkpoint cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the checkpoint in the state directory is unreadable ({what}: {detail}); it was not written by this version of flowwatch or is damaged. Move the state directory away to start empty (instances would be rebuilt from `kafka.start_from`)")]
    Corrupt { what: String, detail: String },
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Meta {
    version: u32,
    /// The flows it was taken with (the globals part holds their shape too).
    flows: Vec<String>,
    engine_clock: Millis,
    written_at: Millis,
}

/// What the store holds that a checkpoint must know to update it: the slots that have a part
/// (a checkpoint deletes the part of a freed slot only when there is one: an instance that
/// starts and is released between two checkpoints, as in a catch-up through records older than
/// the retention, leaves nothing behind to delete, and a B-tree delete of a missing key still
/// walks the tree), and where the outbox records not yet acknowledged are.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct StoredKeys {
    pub instances: SlotSet,
    pub orphan_groups: SlotSet,
    pub outbox: StoredOutbox,
}

/// The outbox records in the store.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct StoredOutbox {
    /// Records stored one per key (`outbox/SEQ`, by checkpoints before blocks).
    singles: BTreeSet<u64>,
    /// Blocks by their first record's sequence number. Each checkpoint's records are numbered
    /// after the previous one's, so blocks cover disjoint ranges in order.
    blocks: BTreeMap<u64, Block>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Block {
    /// The last record's sequence number.
    last: u64,
    /// Records in it.
    records: usize,
    /// Its records acknowledged since it was written, in order.
    acked: Vec<u64>,
}

impl StoredOutbox {
    /// Records stored and not yet acknowledged.
    pub fn len(&self) -> usize {
        self.singles.len()
            + self
                .blocks
                .values()
                .map(|block| block.records - block.acked.len())
                .sum::<usize>()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Adds to `batch` what forgets the records acknowledged (`removed`, every one of them
    /// stored by an earlier checkpoint) and returns the blocks that store the ones added (to
    /// be encoded into the batch by [`Commit::into_batch`]), updating `self` to match.
    fn update(&mut self, batch: &mut Batch, added: Vec<(u64, Arc<OutRecord>)>, removed: &[u64]) -> Vec<OutboxBlock> {
        let mut touched = BTreeSet::new();
        for &seq in removed {
            if self.singles.remove(&seq) {
                batch.delete(seq_key(OUTBOX_PREFIX, seq));
            } else if let Some((&first, block)) = self.blocks.range_mut(..=seq).next_back() {
                if seq <= block.last {
                    block.acked.push(seq);
                    touched.insert(first);
                }
            }
        }
        for first in touched {
            let Some(block) = self.blocks.get_mut(&first) else {
                continue;
            };
            if block.acked.len() >= block.records {
                batch.delete(seq_key(OUTBOX_BLOCK_PREFIX, first));
                batch.delete(seq_key(OUTBOX_ACKED_PREFIX, first));
                self.blocks.remove(&first);
            } else {
                block.acked.sort_unstable();
                let acked = postcard::to_allocvec(&block.acked).unwrap_or_default();
                batch.put(seq_key(OUTBOX_ACKED_PREFIX, first), acked);
            }
        }
        let mut blocks = Vec::new();
        let mut rest = added.into_iter().peekable();
        while let Some(&(first, _)) = rest.peek() {
            let mut bytes = 0;
            let mut records = Vec::new();
            while let Some((_, record)) = rest.peek() {
                if bytes > 0 && bytes + record.payload.len() > OUTBOX_BLOCK_BYTES {
                    break;
                }
                bytes += record.payload.len();
                records.extend(rest.next());
            }
            let last = records.last().map_or(first, |(seq, _)| *seq);
            self.blocks.insert(
                first,
                Block {
                    last,
                    records: records.len(),
                    acked: Vec::new(),
                },
            );
            blocks.push(OutboxBlock {
                key: seq_key(OUTBOX_BLOCK_PREFIX, first),
                records,
            });
        }
        blocks
    }
}

/// A block of outbox records to store under `key`, encoded when the batch is committed.
struct OutboxBlock {
    key: Vec<u8>,
    records: Vec<(u64, Arc<OutRecord>)>,
}

/// What a checkpoint hands to the store: its batch, less the outbox blocks, which are encoded
/// into it by [`Commit::into_batch`] where it is committed (the writer thread), since they are
/// most of its bytes while the broker lags.
#[derive(Default)]
pub struct Commit {
    batch: Batch,
    blocks: Vec<OutboxBlock>,
}

impl Commit {
    /// The whole batch, outbox blocks encoded.
    pub fn into_batch(self) -> Batch {
        let Commit { mut batch, blocks } = self;
        for block in blocks {
            let records: Vec<(u64, &OutRecord)> = block
                .records
                .iter()
                .map(|(seq, record)| (*seq, &**record))
                .collect();
            batch.put(block.key, OutRecord::block_to_stored(&records));
        }
        batch
    }
}

impl From<Batch> for Commit {
    fn from(batch: Batch) -> Commit {
        Commit {
            batch,
            blocks: Vec::new(),
        }
    }
}

fn seq_key(prefix: &str, seq: u64) -> Vec<u8> {
    format!("{prefix}{seq:020}").into_bytes()
}

/// What a checkpoint held.
#[derive(Default)]
pub struct Restored {
    pub snapshot: Option<Snapshot>,
    pub flows: Vec<String>,
    pub positions: HashMap<TopicPartition, ResumePosition>,
    pub outbox: Vec<(u64, OutRecord)>,
    pub written_at: Option<Millis>,
    /// What the store holds that [`write`] updates: slots with parts, outbox blocks.
    pub slots: StoredKeys,
}

fn corrupt(what: impl Into<String>, detail: impl ToString) -> CheckpointError {
    CheckpointError::Corrupt {
        what: what.into(),
        detail: detail.to_string(),
    }
}

fn slot_key(prefix: &str, slot: u32) -> Vec<u8> {
    format!("{prefix}{slot:010}").into_bytes()
}

/// Adds one part read back (slot, bytes) to the parts being assembled.
type AddPart<'a> = dyn FnMut(u32, &[u8]) -> Result<(), PartError> + 'a;

/// Reads every part under `prefix` into `add`; the first problem wins.
fn scan_parts(
    store: &dyn Store,
    prefix: &str,
    add: &mut AddPart<'_>,
) -> Result<(), CheckpointError> {
    let mut problem = None;
    store.scan_prefix(prefix.as_bytes(), &mut |key, value| {
        if problem.is_some() {
            return Ok(());
        }
        let slot = std::str::from_utf8(key)
            .ok()
            .and_then(|key| key.strip_prefix(prefix))
            .and_then(|slot| slot.parse::<u32>().ok());
        let name = || String::from_utf8_lossy(key).into_owned();
        match slot {
            Some(slot) => {
                if let Err(error) = add(slot, value) {
                    problem = Some(corrupt(name(), error));
                }
            }
            None => problem = Some(corrupt(name(), "bad key")),
        }
        Ok(())
    })?;
    problem.map_or(Ok(()), Err)
}

/// Reads the last checkpoint (an empty store gives an empty [`Restored`]).
pub fn load(store: &dyn Store) -> Result<Restored, CheckpointError> {
    let Some(meta) = store.get(META)? else {
        return Ok(Restored::default());
    };
    let meta: Meta = serde_json::from_slice(&meta).map_err(|error| corrupt("meta/checkpoint", error))?;
    if !(OLDEST_READ..=VERSION).contains(&meta.version) {
        return Err(corrupt(
            "meta/checkpoint",
            format!("version {} (this build reads {OLDEST_READ} to {VERSION})", meta.version),
        ));
    }
    let globals = store
        .get(GLOBALS)?
        .ok_or_else(|| corrupt("engine/globals", "missing"))?;
    let mut parts = SnapshotParts::default();
    let mut slots = StoredKeys::default();
    scan_parts(store, INSTANCE_PREFIX, &mut |slot, bytes| {
        slots.instances.insert(slot);
        parts.add_instance(slot, bytes)
    })?;
    scan_parts(store, ORPHANS_PREFIX, &mut |slot, bytes| {
        slots.orphan_groups.insert(slot);
        parts.add_orphan_group(slot, bytes)
    })?;
    let snapshot = parts.finish(&globals).map_err(|error| corrupt("engine state", error))?;
    let mut restored = Restored {
        snapshot: Some(snapshot),
        slots,
        flows: meta.flows,
        written_at: Some(meta.written_at),
        ..Restored::default()
    };
    let mut problem = None;
    store.scan_prefix(OFFSETS_PREFIX.as_bytes(), &mut |key, value| {
        let key = String::from_utf8_lossy(key);
        let parsed = key
            .strip_prefix(OFFSETS_PREFIX)
            .and_then(|rest| rest.rsplit_once('/'))
            .and_then(|(topic, partition)| Some((topic.to_string(), partition.parse::<i32>().ok()?)));
        match (parsed, serde_json::from_slice::<ResumePosition>(value)) {
            (Some((topic, partition)), Ok(position)) => {
                restored.positions.insert((Arc::from(topic), partition), position);
            }
            (_, Err(error)) => problem = Some(corrupt(key.to_string(), error)),
            (None, _) => problem = Some(corrupt(key.to_string(), "bad key")),
        }
        Ok(())
    })?;
    store.scan_prefix(OUTBOX_PREFIX.as_bytes(), &mut |key, value| {
        let key = String::from_utf8_lossy(key);
        let seq = key.strip_prefix(OUTBOX_PREFIX).and_then(|seq| seq.parse::<u64>().ok());
        match (seq, OutRecord::from_stored(value)) {
            (Some(seq), Ok(record)) => {
                restored.slots.outbox.singles.insert(seq);
                restored.outbox.push((seq, record));
            }
            (_, Err(error)) => problem = Some(corrupt(key.to_string(), error)),
            (None, _) => problem = Some(corrupt(key.to_string(), "bad key")),
        }
        Ok(())
    })?;
    let mut in_blocks: BTreeMap<u64, Vec<(u64, OutRecord)>> = BTreeMap::new();
    store.scan_prefix(OUTBOX_BLOCK_PREFIX.as_bytes(), &mut |key, value| {
        let key = String::from_utf8_lossy(key);
        let first = key.strip_prefix(OUTBOX_BLOCK_PREFIX).and_then(|seq| seq.parse::<u64>().ok());
        match (first, OutRecord::block_from_stored(value)) {
            (Some(first), Ok(records)) if records.first().is_some_and(|(seq, _)| *seq == first) => {
                in_blocks.insert(first, records);
            }
            (_, Err(error)) => problem = Some(corrupt(key.to_string(), error)),
            (_, Ok(_)) => problem = Some(corrupt(key.to_string(), "bad key")),
        }
        Ok(())
    })?;
    let mut acked: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
    store.scan_prefix(OUTBOX_ACKED_PREFIX.as_bytes(), &mut |key, value| {
        let key = String::from_utf8_lossy(key);
        let first = key.strip_prefix(OUTBOX_ACKED_PREFIX).and_then(|seq| seq.parse::<u64>().ok());
        match (first, postcard::from_bytes::<Vec<u64>>(value)) {
            (Some(first), Ok(seqs)) if in_blocks.contains_key(&first) => {
                acked.insert(first, seqs);
            }
            (_, Err(error)) => problem = Some(corrupt(key.to_string(), error)),
            (_, Ok(_)) => problem = Some(corrupt(key.to_string(), "no such block")),
        }
        Ok(())
    })?;
    for (first, records) in in_blocks {
        let acked = acked.remove(&first).unwrap_or_default();
        let block = Block {
            last: records.last().map_or(first, |(seq, _)| *seq),
            records: records.len(),
            acked,
        };
        restored.outbox.extend(
            records
                .into_iter()
                .filter(|(seq, _)| block.acked.binary_search(seq).is_err()),
        );
        restored.slots.outbox.blocks.insert(first, block);
    }
    restored.outbox.sort_by_key(|(seq, _)| *seq);
    match problem {
        Some(error) => Err(error),
        None => Ok(restored),
    }
}

/// Figures of one checkpoint, for logs and metrics.
#[derive(Debug, Clone, Copy, Default)]
pub struct Written {
    /// Bytes of engine state written (changed parts and the globals).
    pub bytes: usize,
    /// Instance and orphan-group parts written.
    pub parts_written: usize,
    /// Parts of freed slots deleted.
    pub parts_deleted: usize,
    pub outbox_added: usize,
    pub outbox_removed: usize,
}

/// Writes one checkpoint atomically and durably: what changed in the engine since the last
/// one, the positions and the outbox changes. `stored` says which slots have parts in `store`
/// and where its outbox records are (from [`load`], or empty for an empty store) and is kept
/// up to date. On error nothing of it counts as written (the engine's changes and the outbox
/// changes stay pending for the next attempt). The worker does the same in two halves,
/// [`prepare`] on its thread and the store's commit on another (`worker/writer.rs`).
pub fn write(
    store: &mut dyn Store,
    engine: &mut Engine,
    positions: &[(TopicPartition, ResumePosition)],
    outbox: &mut Outbox,
    stored: &mut StoredKeys,
    now: Millis,
) -> Result<Written, StoreError> {
    let mut prepared = prepare(engine, positions, outbox, stored, now);
    let batch = prepared.take_commit().into_batch();
    let result = store.apply(&batch);
    prepared.finish(result, engine, outbox, stored)
}

/// A checkpoint taken but not yet durable: its batch, and what to do once the store has
/// committed it or failed to ([`Prepared::finish`]).
pub struct Prepared {
    /// What to commit ([`Prepared::take_commit`]).
    commit: Commit,
    changes: crate::engine::changes::Changes,
    marks: (usize, usize),
    after: StoredKeys,
    written: Written,
}

/// Takes a checkpoint: encodes what changed in the engine since the last one, the positions
/// and the outbox changes into one batch. Until [`Prepared::finish`] is called with the
/// store's answer, no other checkpoint may be prepared (the next one builds on what this one
/// leaves in the store).
pub fn prepare(
    engine: &mut Engine,
    positions: &[(TopicPartition, ResumePosition)],
    outbox: &Outbox,
    stored: &StoredKeys,
    now: Millis,
) -> Prepared {
    let changes = engine.take_changes();
    let mut batch = Batch::default();
    let mut written = Written::default();
    let mut after = stored.clone();
    for (prefix, slots, before, now_stored, encode) in [
        (
            INSTANCE_PREFIX,
            &changes.instances,
            &stored.instances,
            &mut after.instances,
            Engine::encode_instance as fn(&Engine, u32) -> _,
        ),
        (
            ORPHANS_PREFIX,
            &changes.orphan_groups,
            &stored.orphan_groups,
            &mut after.orphan_groups,
            Engine::encode_orphan_group,
        ),
    ] {
        for slot in slots.iter() {
            match encode(engine, slot) {
                Some(part) => {
                    written.bytes += part.len();
                    written.parts_written += 1;
                    batch.put(slot_key(prefix, slot), part);
                    now_stored.insert(slot);
                }
                None if before.contains(slot) => {
                    written.parts_deleted += 1;
                    batch.delete(slot_key(prefix, slot));
                    now_stored.remove(slot);
                }
                // Filled and freed since the last checkpoint: never written.
                None => {}
            }
        }
    }
    let globals = engine.encode_globals();
    written.bytes += globals.len();
    batch.put(GLOBALS.to_vec(), globals);
    for ((topic, partition), position) in positions {
        batch.put(
            format!("{OFFSETS_PREFIX}{topic}/{partition}").into_bytes(),
            serde_json::to_vec(position).unwrap_or_default(),
        );
    }
    let marks = outbox.change_marks();
    let outbox_changes = outbox.changes();
    written.outbox_added = outbox_changes.added.len();
    written.outbox_removed = outbox_changes.removed.len();
    let blocks = after
        .outbox
        .update(&mut batch, outbox_changes.added, &outbox_changes.removed);
    let meta = Meta {
        version: VERSION,
        flows: engine.flows().iter().map(|flow| flow.def.name.clone()).collect(),
        engine_clock: engine.clock(),
        written_at: now,
    };
    batch.put(META.to_vec(), serde_json::to_vec(&meta).unwrap_or_default());
    Prepared {
        commit: Commit { batch, blocks },
        changes,
        marks,
        after,
        written,
    }
}

impl Prepared {
    /// What to commit, taken out for whoever commits it.
    pub fn take_commit(&mut self) -> Commit {
        std::mem::take(&mut self.commit)
    }

    /// Settles the checkpoint with the store's answer. Committed: the outbox forgets the
    /// changes it held and `stored` describes the store as it is now. Failed: the engine takes
    /// its changes back (joining those made since), so the next checkpoint writes them.
    pub fn finish(
        self,
        result: Result<(), StoreError>,
        engine: &mut Engine,
        outbox: &mut Outbox,
        stored: &mut StoredKeys,
    ) -> Result<Written, StoreError> {
        match result {
            Ok(()) => {
                outbox.changes_written(self.marks);
                *stored = self.after;
                Ok(self.written)
            }
            Err(error) => {
                engine.return_changes(self.changes);
                Err(error)
            }
        }
    }
}

#[cfg(test)]
mod tests;
