//! [`SledStore`]: the sled 0.34 backend (the design card's choice), in the `sled/` directory of
//! the state directory. Each batch is one `apply_batch` (atomic) followed by `flush` (which
//! fsyncs), since sled otherwise persists only every 500 ms.
//!
//! sled's own recovery truncates a damaged log at the first bad checksum instead of failing, so
//! it can silently come back with an older state, or an empty one. Two guards turn that into an
//! error at open: a format marker written at creation, and a commit number written in every
//! batch (under a reserved key that reads and scans never show) and, after each flush, to a
//! witness file beside sled's directory (`sled.commit`, not fsync'd: it only ever lags). If sled
//! recovers a lower commit number than the witness holds, acknowledged batches were lost and
//! the store refuses to open. See ARCHITECTURE.md ("Store") for why sled is not the default.

use super::dir::{self, DirLock, SLED_DIR};
use super::{Backend, Batch, Op, Store, StoreError, StoreStats, Visit};
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};

/// The tree holding the format marker, beside the default tree that holds the pairs.
const META_TREE: &str = "flowwatch";
const FORMAT_KEY: &str = "format";
const FORMAT_VERSION: &[u8] = b"1";
/// The reserved key, in the default tree, holding the number of the last commit (big-endian
/// u64), written atomically with every batch. Reads and scans skip it.
const COMMIT_KEY: &[u8] = b"\xff\xffflowwatch/commit";
/// The witness file, beside sled's directory.
const WITNESS_FILE: &str = "sled.commit";

/// The sled backend; see the module documentation.
pub struct SledStore {
    /// The open database; `None` after a write failure until a reopen succeeds.
    database: Option<sled::Db>,
    /// sled's directory, for messages and figures.
    path: PathBuf,
    /// Durable commits since open.
    commits: u64,
    /// The number of the last durable commit (counted over the store's whole life).
    commit_number: u64,
    /// The witness file: the last acknowledged commit number, as 8 big-endian bytes.
    witness: File,
    /// Held while the store is open, so no other process opens the directory.
    _lock: DirLock,
}

impl SledStore {
    /// Opens (or creates) the sled store in the state directory `dir`.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        let lock = dir::prepare(Backend::Sled, dir)?;
        let path = dir::member(dir, SLED_DIR);
        let witness_path = dir::member(dir, WITNESS_FILE);
        let witness = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&witness_path)
            .map_err(|error| StoreError::from_io(Backend::Sled, &witness_path, error))?;
        let database = open_database(&path)?;
        let commit_number = recovered_commit(&path, &database)?;
        let mut witnessed = [0u8; 8];
        if witness.read_exact_at(&mut witnessed, 0).is_ok() {
            let acknowledged = u64::from_be_bytes(witnessed);
            if acknowledged > commit_number {
                return Err(StoreError::Corrupt {
                    backend: Backend::Sled,
                    path,
                    detail: format!(
                        "sled recovered commit {commit_number}, but commit {acknowledged} had been acknowledged: part of its log is lost"
                    ),
                });
            }
        }
        Ok(Self {
            database: Some(database),
            path,
            commits: 0,
            commit_number,
            witness,
            _lock: lock,
        })
    }

    fn database(&self) -> Result<&sled::Db, StoreError> {
        self.database.as_ref().ok_or_else(|| StoreError::Backend {
            backend: Backend::Sled,
            path: self.path.clone(),
            detail: "closed after an earlier write failure; the next batch reopens it".to_owned(),
        })
    }
}

impl Store for SledStore {
    fn apply(&mut self, batch: &Batch) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        if self.database.is_none() {
            let database = open_database(&self.path)?;
            self.commit_number = recovered_commit(&self.path, &database)?;
            self.database = Some(database);
        }
        let database = self.database()?;
        let commit_number = self.commit_number + 1;
        let mut sled_batch = sled::Batch::default();
        for op in batch.ops() {
            match op {
                Op::Put { key, value } => sled_batch.insert(key.as_slice(), value.as_slice()),
                Op::Delete { key } => sled_batch.remove(key.as_slice()),
            }
        }
        sled_batch.insert(COMMIT_KEY, &commit_number.to_be_bytes());
        let result = database
            .apply_batch(sled_batch)
            .and_then(|()| database.flush().map(drop));
        match result {
            Ok(()) => {
                self.commits += 1;
                self.commit_number = commit_number;
                // The witness only guards against sled losing acknowledged commits; failing to
                // write it must not fail a batch that is durable.
                let _ = self.witness.write_all_at(&commit_number.to_be_bytes(), 0);
                Ok(())
            }
            Err(error) => {
                // sled keeps a failed batch in memory and refuses further work after an I/O
                // error; reopening reads back what is on disk. If that fails too, the next
                // batch tries again.
                self.database = None;
                self.database = open_database(&self.path).ok();
                Err(map_error(&self.path, error))
            }
        }
    }

    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        if key == COMMIT_KEY {
            return Ok(None);
        }
        let value = self
            .database()?
            .get(key)
            .map_err(|error| map_error(&self.path, error))?;
        Ok(value.map(|value| value.to_vec()))
    }

    fn scan_prefix(&self, prefix: &[u8], visit: &mut Visit<'_>) -> Result<(), StoreError> {
        for entry in self.database()?.scan_prefix(prefix) {
            let (key, value) = entry.map_err(|error| map_error(&self.path, error))?;
            if key.as_ref() != COMMIT_KEY {
                visit(&key, &value)?;
            }
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

/// Opens or creates sled's directory and checks that it is a flowwatch store (or initialises a
/// fresh one).
fn open_database(path: &Path) -> Result<sled::Db, StoreError> {
    let corrupt = |detail: String| StoreError::Corrupt {
        backend: Backend::Sled,
        path: path.to_path_buf(),
        detail,
    };
    let existing = path
        .join("db")
        .metadata()
        .map(|metadata| metadata.len() > 0)
        .unwrap_or(false);
    remove_unfinished_snapshots(path)?;
    let open = || panic::catch_unwind(AssertUnwindSafe(|| sled::Config::new().path(path).open()));
    // The directory's own lock is ours, so sled's file lock is normally held only by a sled
    // handle of this process that is still being dropped: its flusher thread lets go of the
    // file a moment after the handle itself (seen when a store is closed and at once
    // reopened). Anything else holding it is reported after two seconds.
    let mut opened = open();
    for _ in 0..200 {
        match &opened {
            Ok(Err(sled::Error::Io(error))) if error.to_string().contains("could not acquire lock") => {
                std::thread::sleep(std::time::Duration::from_millis(10));
                opened = open();
            }
            _ => break,
        }
    }
    let database = match opened {
        Ok(Ok(database)) => database,
        // At open, sled reports unreadable files as unsupported or as a bug.
        Ok(Err(sled::Error::Unsupported(detail) | sled::Error::ReportableBug(detail))) => {
            return Err(corrupt(format!("sled cannot read it: {detail}")))
        }
        Ok(Err(error)) => return Err(map_error(path, error)),
        Err(_) => return Err(corrupt("sled panicked while recovering it".to_owned())),
    };
    let meta = database
        .open_tree(META_TREE)
        .map_err(|error| map_error(path, error))?;
    match meta.get(FORMAT_KEY).map_err(|error| map_error(path, error))? {
        Some(version) if version.as_ref() == FORMAT_VERSION => Ok(database),
        Some(version) => Err(StoreError::Backend {
            backend: Backend::Sled,
            path: path.to_path_buf(),
            detail: format!(
                "it has store format {}, this flowwatch reads format {}: run the flowwatch version that wrote it",
                String::from_utf8_lossy(&version),
                String::from_utf8_lossy(FORMAT_VERSION)
            ),
        }),
        None if existing && !database.is_empty() => {
            Err(corrupt("it holds data but not the flowwatch format marker".to_owned()))
        }
        None if existing => Err(corrupt(
            "its files exist but sled recovered nothing from them, not even the format marker".to_owned(),
        )),
        None => {
            meta.insert(FORMAT_KEY, FORMAT_VERSION).map_err(|error| map_error(path, error))?;
            database.flush().map_err(|error| map_error(path, error))?;
            Ok(database)
        }
    }
}

/// Removes the `snap.*.generating` files in sled's directory. sled writes a snapshot (its cache
/// of the page table; the log holds everything) to such a file and renames it when complete, but
/// sled 0.34 also reads the unrenamed file at open, and one cut short (by a full device or a kill
/// while sled writes it) then makes the whole store fail to open as corrupt (sled issue #1527).
/// Without the unfinished file sled starts from its last complete snapshot and replays the log,
/// and the commit witness still catches any acknowledged batch that recovery does not bring back.
fn remove_unfinished_snapshots(path: &Path) -> Result<(), StoreError> {
    let entries = match std::fs::read_dir(path) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(error) => return Err(StoreError::from_io(Backend::Sled, path, error)),
    };
    for entry in entries {
        let entry = entry.map_err(|error| StoreError::from_io(Backend::Sled, path, error))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with("snap.") && name.ends_with(".generating") {
            let file = entry.path();
            tracing::warn!(file = %file.display(), "removing an unfinished sled snapshot");
            std::fs::remove_file(&file)
                .map_err(|error| StoreError::from_io(Backend::Sled, &file, error))?;
        }
    }
    Ok(())
}

/// The number of the last commit sled recovered.
fn recovered_commit(path: &Path, database: &sled::Db) -> Result<u64, StoreError> {
    let Some(value) = database
        .get(COMMIT_KEY)
        .map_err(|error| map_error(path, error))?
    else {
        return Ok(0);
    };
    let bytes: [u8; 8] = value.as_ref().try_into().map_err(|_| StoreError::Corrupt {
        backend: Backend::Sled,
        path: path.to_path_buf(),
        detail: "its commit number is not 8 bytes long".to_owned(),
    })?;
    Ok(u64::from_be_bytes(bytes))
}

/// Maps a sled error on `path` to the store's error.
fn map_error(path: &Path, error: sled::Error) -> StoreError {
    let backend = Backend::Sled;
    match error {
        sled::Error::Io(source) => StoreError::from_io(backend, path, source),
        sled::Error::Corruption { at, .. } => StoreError::Corrupt {
            backend,
            path: path.to_path_buf(),
            detail: match at {
                Some(at) => format!("sled found damage at {at:?}"),
                None => "sled found damage".to_owned(),
            },
        },
        other => StoreError::Backend {
            backend,
            path: path.to_path_buf(),
            detail: other.to_string(),
        },
    }
}
