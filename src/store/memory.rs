//! [`MemoryStore`]: the store that keeps everything in a sorted map in memory, for tests and the
//! demo. Batches are atomic (applied under `&mut self`) but nothing survives the process.

use super::{Batch, Op, Store, StoreError, StoreStats, Visit};
use std::collections::BTreeMap;

/// A store in memory: a sorted map, so scans come out in key order.
#[derive(Debug, Default)]
pub struct MemoryStore {
    /// The pairs, in key order.
    pairs: BTreeMap<Vec<u8>, Vec<u8>>,
    /// Non-empty batches applied so far (each counts as one commit, as on disk).
    commits: u64,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

impl Store for MemoryStore {
    fn apply(&mut self, batch: &Batch) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        for op in batch.ops() {
            match op {
                Op::Put { key, value } => {
                    self.pairs.insert(key.clone(), value.clone());
                }
                Op::Delete { key } => {
                    self.pairs.remove(key);
                }
            }
        }
        self.commits += 1;
        Ok(())
    }

    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.pairs.get(key).cloned())
    }

    fn scan_prefix(&self, prefix: &[u8], visit: &mut Visit<'_>) -> Result<(), StoreError> {
        for (key, value) in self.pairs.range(prefix.to_vec()..) {
            if !key.starts_with(prefix) {
                break;
            }
            visit(key, value)?;
        }
        Ok(())
    }

    fn stats(&self) -> StoreStats {
        StoreStats {
            bytes_on_disk: 0,
            commits: self.commits,
        }
    }
}
