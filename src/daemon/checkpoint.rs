//! Checkpoints: the engine's state, the read positions it reflects and the outbox, written to
//! the store in one atomic, durable batch (and read back at start).
//!
//! Kafka holds the input durably, so the daemon does not write every record's effect: it
//! checkpoints every `state.checkpoint_interval` (at least 4 × the last checkpoint's duration
//! apart: see the worker) and at shutdown (NOTES.md, "Store write cost"). After a crash the last checkpoint is restored and reading resumes from its
//! positions; the engine is deterministic, so the records read again produce the same signals
//! with the same ids, and the outbox of the checkpoint is sent again. Nothing is lost, and what
//! is published twice carries the same CloudEvents id.
//!
//! Keys are laid out so that state can later be sharded by input partition:
//! `meta/checkpoint`, `engine/NNNNNNNN` (snapshot chunks), `offsets/TOPIC/PARTITION`,
//! `outbox/SEQ`.

use super::align::{ResumePosition, TopicPartition};
use super::outbox::{OutRecord, Outbox};
use crate::engine::snapshot::Snapshot;
use crate::engine::Engine;
use crate::store::{Batch, Store, StoreError};
use crate::time::Millis;
use std::collections::HashMap;
use std::sync::Arc;

const META: &[u8] = b"meta/checkpoint";
const ENGINE_PREFIX: &str = "engine/";
const OFFSETS_PREFIX: &str = "offsets/";
const OUTBOX_PREFIX: &str = "outbox/";
/// Snapshot bytes per store value.
const CHUNK: usize = 4 << 20;
const VERSION: u32 = 1;

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
    chunks: u32,
    /// The flows it was taken with (the snapshot checks their shape too).
    flows: Vec<String>,
    engine_clock: Millis,
    written_at: Millis,
}

/// What a checkpoint held.
#[derive(Default)]
pub struct Restored {
    pub snapshot: Option<Snapshot>,
    pub flows: Vec<String>,
    pub positions: HashMap<TopicPartition, ResumePosition>,
    pub outbox: Vec<(u64, OutRecord)>,
    pub written_at: Option<Millis>,
}

fn corrupt(what: impl Into<String>, detail: impl ToString) -> CheckpointError {
    CheckpointError::Corrupt {
        what: what.into(),
        detail: detail.to_string(),
    }
}

/// Reads the last checkpoint (an empty store gives an empty [`Restored`]).
pub fn load(store: &dyn Store) -> Result<Restored, CheckpointError> {
    let Some(meta) = store.get(META)? else {
        return Ok(Restored::default());
    };
    let meta: Meta = serde_json::from_slice(&meta).map_err(|error| corrupt("meta/checkpoint", error))?;
    if meta.version != VERSION {
        return Err(corrupt("meta/checkpoint", format!("version {} (this build reads {VERSION})", meta.version)));
    }
    let mut bytes = Vec::new();
    for index in 0..meta.chunks {
        let key = format!("{ENGINE_PREFIX}{index:08}");
        let chunk = store
            .get(key.as_bytes())?
            .ok_or_else(|| corrupt(key.clone(), "missing"))?;
        bytes.extend_from_slice(&chunk);
    }
    let snapshot: Snapshot =
        serde_json::from_slice(&bytes).map_err(|error| corrupt("engine snapshot", error))?;
    let mut restored = Restored {
        snapshot: Some(snapshot),
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
        match (seq, serde_json::from_slice::<OutRecord>(value)) {
            (Some(seq), Ok(record)) => restored.outbox.push((seq, record)),
            (_, Err(error)) => problem = Some(corrupt(key.to_string(), error)),
            (None, _) => problem = Some(corrupt(key.to_string(), "bad key")),
        }
        Ok(())
    })?;
    match problem {
        Some(error) => Err(error),
        None => Ok(restored),
    }
}

/// Figures of one checkpoint, for logs and metrics.
#[derive(Debug, Clone, Copy, Default)]
pub struct Written {
    pub bytes: usize,
    pub outbox_added: usize,
    pub outbox_removed: usize,
}

/// Writes checkpoints; remembers how many snapshot chunks the previous one used.
#[derive(Default)]
pub struct Checkpointer {
    chunks: Option<u32>,
}

impl Checkpointer {
    /// Writes one checkpoint atomically and durably. On error nothing of it counts as written
    /// (the outbox changes stay pending for the next attempt).
    pub fn write(
        &mut self,
        store: &mut dyn Store,
        engine: &Engine,
        positions: &[(TopicPartition, ResumePosition)],
        outbox: &mut Outbox,
        now: Millis,
    ) -> Result<Written, StoreError> {
        let snapshot = serde_json::to_vec(&engine.snapshot()).unwrap_or_default();
        let mut batch = Batch::default();
        let chunks: Vec<&[u8]> = if snapshot.is_empty() {
            vec![&[][..]]
        } else {
            snapshot.chunks(CHUNK).collect()
        };
        for (index, chunk) in chunks.iter().enumerate() {
            batch.put(format!("{ENGINE_PREFIX}{index:08}").into_bytes(), chunk.to_vec());
        }
        let count = chunks.len() as u32;
        let previous = match self.chunks {
            Some(previous) => previous,
            None => {
                // First checkpoint of this run: find out what the store holds.
                let mut found = 0u32;
                store.scan_prefix(ENGINE_PREFIX.as_bytes(), &mut |_, _| {
                    found += 1;
                    Ok(())
                })?;
                found
            }
        };
        for index in count..previous {
            batch.delete(format!("{ENGINE_PREFIX}{index:08}").into_bytes());
        }
        for ((topic, partition), position) in positions {
            batch.put(
                format!("{OFFSETS_PREFIX}{topic}/{partition}").into_bytes(),
                serde_json::to_vec(position).unwrap_or_default(),
            );
        }
        let marks = outbox.change_marks();
        let changes = outbox.changes();
        let written = Written {
            bytes: snapshot.len(),
            outbox_added: changes.added.len(),
            outbox_removed: changes.removed.len(),
        };
        for (seq, record) in &changes.added {
            batch.put(
                format!("{OUTBOX_PREFIX}{seq:020}").into_bytes(),
                serde_json::to_vec(record).unwrap_or_default(),
            );
        }
        for seq in &changes.removed {
            batch.delete(format!("{OUTBOX_PREFIX}{seq:020}").into_bytes());
        }
        let meta = Meta {
            version: VERSION,
            chunks: count,
            flows: engine.flows().iter().map(|flow| flow.def.name.clone()).collect(),
            engine_clock: engine.clock(),
            written_at: now,
        };
        batch.put(META.to_vec(), serde_json::to_vec(&meta).unwrap_or_default());
        store.apply(&batch)?;
        outbox.changes_written(marks);
        self.chunks = Some(count);
        Ok(written)
    }
}
