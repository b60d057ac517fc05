//! [`RedbStore`]: the redb backend. One file (`state.redb`) holding a copy-on-write B-tree;
//! every batch is one write transaction committed with `Durability::Immediate` (fsync'd before
//! `apply` returns), so a crash leaves either the previous or the new commit, never a mix.
//! The file's checksums are verified on every open, so a damaged file is reported instead of
//! trusted. A new file is made under a temporary name and renamed into place once it holds its
//! first commit, so a kill while it is created leaves no store or a whole one. After an I/O
//! failure (a full device) redb refuses further work, so the store drops the database and
//! reopens it, which rolls back to the last good commit.

use super::dir::{self, DirLock, PARTIAL_FILE, REDB_FILE};
use super::{Backend, Batch, Op, Store, StoreError, StoreStats, Visit};
use redb::{Database, Durability, ReadableDatabase, TableDefinition, TableError};
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};

/// The pairs the daemon stores.
const DATA: TableDefinition<&[u8], &[u8]> = TableDefinition::new("data");
/// What this file is: `FORMAT_KEY` holds the format version, written with the file's first
/// commit, so a file that exists but lost it is known to be damaged, not fresh.
const META: TableDefinition<&str, u64> = TableDefinition::new("flowwatch");
const FORMAT_KEY: &str = "format";
const FORMAT_VERSION: u64 = 1;
/// redb's page cache by default: 64 MiB. redb's own default (1 GiB) grows to hold the whole
/// file (377 MiB resident at 1 M instances); 64 MiB wrote as fast in the benchmark, with 72 MiB
/// resident (BENCHMARKS.md, "Store").
pub const DEFAULT_CACHE_BYTES: usize = 64 * 1024 * 1024;

/// The redb backend; see the module documentation.
pub struct RedbStore {
    /// The open database; `None` after an I/O failure until a reopen succeeds.
    database: Option<Database>,
    /// The database file, for messages and figures.
    path: PathBuf,
    /// Durable commits since open.
    commits: u64,
    /// The most memory redb may use to cache pages.
    cache_bytes: usize,
    /// Held while the store is open, so no other process opens the directory.
    _lock: DirLock,
}

impl RedbStore {
    /// Opens (or creates) the redb store in the state directory `dir`.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        Self::open_with_cache(dir, DEFAULT_CACHE_BYTES)
    }

    /// Opens (or creates) the redb store in `dir`, with at most `cache_bytes` of page cache.
    pub fn open_with_cache(dir: &Path, cache_bytes: usize) -> Result<Self, StoreError> {
        let lock = dir::prepare(Backend::Redb, dir)?;
        let path = dir::member(dir, REDB_FILE);
        let fresh = match path.metadata() {
            Ok(metadata) => metadata.len() == 0,
            Err(error) => error.kind() == std::io::ErrorKind::NotFound,
        };
        let database = if fresh {
            create_fresh(dir, &path, cache_bytes)?
        } else {
            open_database(&path, cache_bytes)?
        };
        Ok(Self {
            database: Some(database),
            path,
            commits: 0,
            cache_bytes,
            _lock: lock,
        })
    }

    fn database(&self) -> Result<&Database, StoreError> {
        self.database.as_ref().ok_or_else(|| StoreError::Backend {
            backend: Backend::Redb,
            path: self.path.clone(),
            detail: "closed after an earlier write failure; the next batch reopens it".to_owned(),
        })
    }

    fn write(&self, batch: &Batch) -> Result<(), redb::Error> {
        let database = self.database.as_ref().ok_or(redb::Error::PreviousIo)?;
        let mut transaction = database.begin_write()?;
        transaction.set_durability(Durability::Immediate)?;
        {
            let mut table = transaction.open_table(DATA)?;
            for op in batch.ops() {
                match op {
                    Op::Put { key, value } => {
                        table.insert(key.as_slice(), value.as_slice())?;
                    }
                    Op::Delete { key } => {
                        table.remove(key.as_slice())?;
                    }
                }
            }
        }
        transaction.commit()?;
        Ok(())
    }
}

impl Store for RedbStore {
    fn apply(&mut self, batch: &Batch) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        if self.database.is_none() {
            self.database = Some(open_database(&self.path, self.cache_bytes)?);
        }
        match self.write(batch) {
            Ok(()) => {
                self.commits += 1;
                Ok(())
            }
            Err(error) => {
                // redb refuses all work after an I/O error ("previous I/O error"); reopening
                // repairs the file back to the last good commit. If that fails too (the device
                // is still full), the next batch tries again.
                self.database = None;
                self.database = open_database(&self.path, self.cache_bytes).ok();
                Err(map_error(&self.path, error))
            }
        }
    }

    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let read = || -> Result<Option<Vec<u8>>, redb::Error> {
            let transaction = self
                .database
                .as_ref()
                .ok_or(redb::Error::PreviousIo)?
                .begin_read()?;
            let table = transaction.open_table(DATA)?;
            Ok(table.get(key)?.map(|value| value.value().to_vec()))
        };
        self.database()?;
        read().map_err(|error| map_error(&self.path, error))
    }

    fn scan_prefix(&self, prefix: &[u8], visit: &mut Visit<'_>) -> Result<(), StoreError> {
        let transaction = self
            .database()?
            .begin_read()
            .map_err(|error| map_error(&self.path, error.into()))?;
        let table = transaction
            .open_table(DATA)
            .map_err(|error| map_error(&self.path, error.into()))?;
        let range = table
            .range::<&[u8]>(prefix..)
            .map_err(|error| map_error(&self.path, error.into()))?;
        for entry in range {
            let (key, value) = entry.map_err(|error| map_error(&self.path, error.into()))?;
            if !key.value().starts_with(prefix) {
                break;
            }
            visit(key.value(), value.value())?;
        }
        Ok(())
    }

    fn stats(&self) -> StoreStats {
        StoreStats {
            bytes_on_disk: dir::disk_usage(&self.path),
            commits: self.commits,
        }
    }
}

/// Creates a fresh store at `path`, and returns it open, so that a kill at any moment leaves
/// either no store or a whole one: the file is made and given its format marker (a durable
/// commit) under a temporary name, then renamed into place (the open handle follows the file)
/// and the directory synced. (A daemon killed while
/// redb wrote a new file's header in place left a file that every later start refused as
/// corrupt: found by the kill -9 torture test against tansu, a kill 0-400 ms after the first
/// start.) What a killed creation leaves under the temporary name is removed first, as is an
/// empty `state.redb`, which only an interrupted creation makes.
fn create_fresh(dir: &Path, path: &Path, cache_bytes: usize) -> Result<Database, StoreError> {
    let partial = dir::member(dir, PARTIAL_FILE);
    let io = |at: &Path, error: std::io::Error| StoreError::from_io(Backend::Redb, at, error);
    for leftover in [&partial, path] {
        match std::fs::remove_file(leftover) {
            Ok(()) => {}
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => return Err(io(leftover, error)),
        }
    }
    let database = open_database(&partial, cache_bytes)?;
    std::fs::rename(&partial, path).map_err(|error| io(path, error))?;
    std::fs::File::open(dir)
        .and_then(|directory| directory.sync_all())
        .map_err(|error| io(dir, error))?;
    Ok(database)
}

/// Opens or creates the database file, verifying every page's checksum, and checks that it is
/// a flowwatch store (or initialises a fresh one).
fn open_database(path: &Path, cache_bytes: usize) -> Result<Database, StoreError> {
    let existing = path
        .metadata()
        .map(|metadata| metadata.len() > 0)
        .unwrap_or(false);
    // redb documents that opening a file damaged outside redb may panic unless the integrity
    // check runs; it runs, and a panic is still turned into an error, never into an empty store.
    let opened = panic::catch_unwind(AssertUnwindSafe(|| {
        redb::Builder::new()
            .set_check_integrity_on_open(true)
            .set_cache_size(cache_bytes)
            .create(path)
    }));
    let database = match opened {
        Ok(Ok(database)) => database,
        Ok(Err(redb::DatabaseError::Storage(redb::StorageError::Io(error))))
            if error.kind() == std::io::ErrorKind::InvalidData =>
        {
            return Err(StoreError::Corrupt {
                backend: Backend::Redb,
                path: path.to_path_buf(),
                detail: error.to_string(),
            })
        }
        Ok(Err(error)) => return Err(map_error(path, error.into())),
        Err(panic) => {
            return Err(StoreError::Corrupt {
                backend: Backend::Redb,
                path: path.to_path_buf(),
                detail: format!("redb panicked while opening it: {}", panic_message(&panic)),
            })
        }
    };
    check_or_initialise(&database, existing).map_err(|error| match error {
        Marker::Missing => StoreError::Corrupt {
            backend: Backend::Redb,
            path: path.to_path_buf(),
            detail: "it holds data but not the flowwatch format marker".to_owned(),
        },
        Marker::Version(version) => StoreError::Backend {
            backend: Backend::Redb,
            path: path.to_path_buf(),
            detail: format!(
                "it has store format {version}, this flowwatch reads format {FORMAT_VERSION}: run the flowwatch version that wrote it"
            ),
        },
        Marker::Redb(error) => map_error(path, error),
    })?;
    Ok(database)
}

/// Why a database is not usable as a flowwatch store.
enum Marker {
    Missing,
    Version(u64),
    Redb(redb::Error),
}

impl<E: Into<redb::Error>> From<E> for Marker {
    fn from(error: E) -> Self {
        Marker::Redb(error.into())
    }
}

/// Checks the format marker; a file without it is initialised if it holds no data (a fresh
/// file, or one whose creation was interrupted before its first commit).
fn check_or_initialise(database: &Database, existing: bool) -> Result<(), Marker> {
    let read = database.begin_read()?;
    let version = match read.open_table(META) {
        Ok(table) => table.get(FORMAT_KEY)?.map(|guard| guard.value()),
        Err(TableError::TableDoesNotExist(_)) => None,
        Err(error) => return Err(error.into()),
    };
    let has_data = match read.open_table(DATA) {
        Ok(table) => !redb::ReadableTableMetadata::is_empty(&table)?,
        Err(TableError::TableDoesNotExist(_)) => false,
        Err(error) => return Err(error.into()),
    };
    drop(read);
    match version {
        Some(FORMAT_VERSION) => return Ok(()),
        Some(other) => return Err(Marker::Version(other)),
        None if existing && has_data => return Err(Marker::Missing),
        None => {}
    }
    let mut transaction = database.begin_write()?;
    transaction.set_durability(Durability::Immediate)?;
    transaction.open_table(DATA)?;
    transaction
        .open_table(META)?
        .insert(FORMAT_KEY, FORMAT_VERSION)?;
    transaction.commit()?;
    Ok(())
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(text) = panic.downcast_ref::<&str>() {
        (*text).to_owned()
    } else if let Some(text) = panic.downcast_ref::<String>() {
        text.clone()
    } else {
        "no message".to_owned()
    }
}

/// Maps a redb error on `path` to the store's error.
fn map_error(path: &Path, error: redb::Error) -> StoreError {
    let backend = Backend::Redb;
    match error {
        redb::Error::Io(source) => StoreError::from_io(backend, path, source),
        redb::Error::Corrupted(detail) => StoreError::Corrupt {
            backend,
            path: path.to_path_buf(),
            detail,
        },
        redb::Error::DatabaseAlreadyOpen => StoreError::Locked {
            dir: path.parent().unwrap_or(path).to_path_buf(),
            pid: None,
        },
        other => StoreError::Backend {
            backend,
            path: path.to_path_buf(),
            detail: other.to_string(),
        },
    }
}
