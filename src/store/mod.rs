//! The daemon's durable state store: a small key-value trait ([`Store`]) with atomic, durable
//! batches, and its backends. The daemon writes instances, timers, held orphans, the outbox and
//! the consumed offsets of one processed batch of records as one [`Batch`], so state and offsets
//! never disagree after a crash. Backends: [`Backend::Redb`] and [`Backend::Sled`] on disk
//! (each holds the state directory's lock while open, so two daemons never share one), and
//! [`Backend::Memory`] for tests and the demo. [`open`] picks one; every error says which
//! directory and backend it is about and what to do.

mod batch;
mod dir;
mod error;
mod memory;
mod redb;
mod sled;

pub use batch::{Batch, Op};
pub use error::StoreError;
pub use memory::MemoryStore;
pub use redb::{RedbStore, DEFAULT_CACHE_BYTES as DEFAULT_REDB_CACHE_BYTES};
pub use sled::SledStore;

use std::fmt;
use std::path::Path;
use std::str::FromStr;

/// A key-value store with atomic, durable batches, keys and values as bytes, keys in byte order.
pub trait Store: Send {
    /// Applies every put and delete of the batch atomically and durably (fsync'd before Ok).
    /// An empty batch is a no-op (no commit).
    fn apply(&mut self, batch: &Batch) -> Result<(), StoreError>;
    /// The value stored under `key`.
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;
    /// Calls `visit` for every pair whose key starts with `prefix`, in key order.
    fn scan_prefix(&self, prefix: &[u8], visit: &mut Visit<'_>) -> Result<(), StoreError>;
    /// Figures for metrics and benchmarks: bytes on disk, commits (fsyncs) so far.
    fn stats(&self) -> StoreStats;
}

/// The visitor of [`Store::scan_prefix`]: called with each key and value; an error stops the
/// scan and is returned by it.
pub type Visit<'a> = dyn FnMut(&[u8], &[u8]) -> Result<(), StoreError> + 'a;

/// Figures a store reports about itself, for metrics and benchmarks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// Bytes the store's files take on disk (0 for the memory backend).
    pub bytes_on_disk: u64,
    /// Durable commits (one fsync'd batch each) since the store was opened.
    pub commits: u64,
}

/// Which implementation keeps the state. The default is redb (ARCHITECTURE.md, "Store", says
/// why).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Backend {
    /// sled 0.34, the design card's choice: a log-structured B-tree, flushed after every batch.
    Sled,
    /// redb: a copy-on-write B-tree in one file, every commit fsync'd (`Durability::Immediate`).
    #[default]
    Redb,
    /// Nothing on disk: state lives as long as the process (tests, the demo).
    Memory,
}

impl Backend {
    /// Every backend, in the order they are documented.
    pub const ALL: [Backend; 3] = [Backend::Redb, Backend::Sled, Backend::Memory];

    /// The name used in configuration and messages.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sled => "sled",
            Backend::Redb => "redb",
            Backend::Memory => "memory",
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.name())
    }
}

/// The error of parsing a backend name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown store backend `{0}`: use `redb`, `sled` or `memory`")]
pub struct UnknownBackend(pub String);

impl FromStr for Backend {
    type Err = UnknownBackend;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        match name {
            "sled" => Ok(Backend::Sled),
            "redb" => Ok(Backend::Redb),
            "memory" => Ok(Backend::Memory),
            other => Err(UnknownBackend(other.to_owned())),
        }
    }
}

/// Opens the store of `backend` in the state directory `dir`, creating the directory if it is
/// missing. An empty directory gives an empty store. A directory that holds the other disk
/// backend's store, a corrupt store file, or a directory another process has open is an error;
/// a store is never silently started empty in place of one that cannot be read. The memory
/// backend does not touch `dir`.
pub fn open(backend: Backend, dir: &Path) -> Result<Box<dyn Store>, StoreError> {
    match backend {
        Backend::Memory => Ok(Box::new(MemoryStore::new())),
        Backend::Redb => Ok(Box::new(RedbStore::open(dir)?)),
        Backend::Sled => Ok(Box::new(SledStore::open(dir)?)),
    }
}

#[cfg(test)]
mod tests;
