//! The state directory: its layout (which file belongs to which backend), its lock, and the
//! bytes it takes on disk. The lock is an advisory `flock` on `LOCK`, held for as long as a
//! store is open and released by the kernel when the process dies (even by `kill -9`), so a
//! crashed daemon never leaves a stale lock behind. `LOCK` also holds the owner's pid, for the
//! message a second daemon gets.

use super::{Backend, StoreError};
use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// The redb backend's single file, inside the state directory.
pub(super) const REDB_FILE: &str = "state.redb";
/// A redb store being created, renamed to `REDB_FILE` once whole.
pub(super) const PARTIAL_FILE: &str = "state.redb.partial";
/// The sled backend's directory, inside the state directory.
pub(super) const SLED_DIR: &str = "sled";
/// The lock file, inside the state directory.
const LOCK_FILE: &str = "LOCK";

/// The exclusive lock on a state directory; dropping it (or the process dying) releases it.
#[derive(Debug)]
pub(super) struct DirLock {
    /// The open, locked `LOCK` file: the lock lives as long as this handle.
    _file: File,
}

/// Prepares `dir` for `backend`: creates it if missing, refuses it if it holds the other disk
/// backend's store, and takes its lock.
pub(super) fn prepare(backend: Backend, dir: &Path) -> Result<DirLock, StoreError> {
    fs::create_dir_all(dir).map_err(|error| StoreError::from_io(backend, dir, error))?;
    let lock = lock(backend, dir)?;
    if let Some(found) = other_backend_present(backend, dir) {
        return Err(StoreError::WrongBackend {
            dir: dir.to_path_buf(),
            found,
            wanted: backend,
        });
    }
    Ok(lock)
}

/// The disk backend other than `backend` whose files are in `dir`, if any.
fn other_backend_present(backend: Backend, dir: &Path) -> Option<Backend> {
    let redb_present = dir.join(REDB_FILE).exists();
    let sled_present = dir.join(SLED_DIR).exists();
    match backend {
        Backend::Redb if sled_present => Some(Backend::Sled),
        Backend::Sled if redb_present => Some(Backend::Redb),
        _ => None,
    }
}

/// Takes the lock on `dir`, or says who holds it.
fn lock(backend: Backend, dir: &Path) -> Result<DirLock, StoreError> {
    let path = dir.join(LOCK_FILE);
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|error| StoreError::from_io(backend, &path, error))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            return Err(StoreError::Locked {
                dir: dir.to_path_buf(),
                pid: read_pid(&mut file),
            });
        }
        Err(TryLockError::Error(error)) => return Err(StoreError::from_io(backend, &path, error)),
    }
    // The pid is only for the message a second process gets; failing to write it (a full
    // device) must not stop this one, which holds the lock.
    let _ = write_pid(&mut file);
    Ok(DirLock { _file: file })
}

fn read_pid(file: &mut File) -> Option<u32> {
    let mut text = String::new();
    file.seek(SeekFrom::Start(0)).ok()?;
    file.read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}

fn write_pid(file: &mut File) -> std::io::Result<()> {
    file.set_len(0)?;
    file.seek(SeekFrom::Start(0))?;
    writeln!(file, "{}", std::process::id())
}

/// Bytes allocated on disk to `path` and everything under it (sparse files count what they
/// really take). Unreadable entries count as zero: this is a figure for metrics.
pub(super) fn disk_usage(path: &Path) -> u64 {
    let Ok(metadata) = fs::symlink_metadata(path) else {
        return 0;
    };
    if !metadata.is_dir() {
        return metadata.blocks() * 512;
    }
    let Ok(entries) = fs::read_dir(path) else {
        return 0;
    };
    entries
        .flatten()
        .map(|entry| disk_usage(&entry.path()))
        .sum()
}

/// The path of `name` inside `dir`.
pub(super) fn member(dir: &Path, name: &str) -> PathBuf {
    dir.join(name)
}
