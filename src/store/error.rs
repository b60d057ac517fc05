//! [`StoreError`]: what can go wrong with the state store, each message naming the directory or
//! file and the backend, and saying what to do about it.

use super::Backend;
use std::io;
use std::path::{Path, PathBuf};

/// An error of the state store. Every variant names where (directory or file) and which backend,
/// so the message alone tells an operator what to fix.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The device holding the store is full. Nothing of the failed batch was written; the
    /// previous state is intact, and a later batch succeeds once there is space again.
    #[error("no space left on the device holding the {backend} store at {}: the batch was not written and the previous state is intact; free some space and the daemon continues", path.display())]
    NoSpace { backend: Backend, path: PathBuf },

    /// The store cannot be written: a read-only file system or missing write permission.
    #[error("the {backend} store at {} cannot be written ({cause}): make the state directory writable by this user (or remount it read-write)", path.display())]
    ReadOnly {
        backend: Backend,
        path: PathBuf,
        cause: String,
    },

    /// The store's file is damaged. The store is never started empty in its place.
    #[error("the {backend} store at {} is corrupt ({detail}): restore the state directory from a backup, or move it aside to start with empty state (instances open before that are then lost)", path.display())]
    Corrupt {
        backend: Backend,
        path: PathBuf,
        detail: String,
    },

    /// Another process holds the state directory's lock.
    #[error("the state directory {} is in use by another flowwatch process{}: stop that process, or give this one its own state directory", dir.display(), pid.map(|pid| format!(" (pid {pid})")).unwrap_or_default())]
    Locked { dir: PathBuf, pid: Option<u32> },

    /// The directory holds a store of the other disk backend.
    #[error("the state directory {} holds a {found} store, not a {wanted} one: set the store backend to `{found}`, or point the state directory elsewhere", dir.display())]
    WrongBackend {
        dir: PathBuf,
        found: Backend,
        wanted: Backend,
    },

    /// An I/O error that is none of the above.
    #[error("i/o error on the {backend} store at {}: {source}", path.display())]
    Io {
        backend: Backend,
        path: PathBuf,
        source: io::Error,
    },

    /// The backend failed in a way that is none of the above.
    #[error("the {backend} store at {} failed: {detail}", path.display())]
    Backend {
        backend: Backend,
        path: PathBuf,
        detail: String,
    },

    /// A stored value could not be understood by its reader (raised by callers, for example from
    /// a `scan_prefix` visitor, so that decoding errors travel the same path).
    #[error("the value stored under key `{key}` cannot be read ({detail}): the state directory was written by an incompatible version; move it aside to start with empty state")]
    Unreadable { key: String, detail: String },
}

impl StoreError {
    /// Classifies an I/O error of `backend` on `path`: full device and read-only file systems
    /// get their own variants, so the daemon can report them and retry.
    pub fn from_io(backend: Backend, path: &Path, source: io::Error) -> Self {
        let path = path.to_path_buf();
        match source.kind() {
            io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded => {
                StoreError::NoSpace { backend, path }
            }
            io::ErrorKind::ReadOnlyFilesystem | io::ErrorKind::PermissionDenied => {
                StoreError::ReadOnly {
                    backend,
                    path,
                    cause: source.to_string(),
                }
            }
            _ => StoreError::Io {
                backend,
                path,
                source,
            },
        }
    }

    /// Whether retrying the same batch later may succeed (full device, read-only state
    /// directory, a passing I/O error): the daemon then stops committing offsets, reports not
    /// ready, and retries, instead of exiting.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            StoreError::NoSpace { .. } | StoreError::ReadOnly { .. } | StoreError::Io { .. }
        )
    }
}
