//! The writer: a thread that owns the store and commits the worker's checkpoints, so that the
//! commit (the store's B-tree work, copying the batch into the page cache, the fsync) runs
//! beside the engine instead of stopping it.
//!
//! While catching up, a checkpoint can write hundreds of megabytes (the instances changed since
//! the last one, and the signals the broker has not acknowledged yet); committing it took
//! three quarters of the checkpoint's time, which the worker spent not applying records. Now
//! the worker encodes the checkpoint (`checkpoint::prepare`: the engine's changed parts, which
//! only it can read) and hands it over with the outbox records it adds, shared, not copied: the
//! writer encodes those into blocks ([`Commit::into_batch`]) and commits. The worker goes on;
//! it settles the checkpoint (commits the offsets, forgets the outbox changes it held) only
//! when the writer reports the batch durable. One checkpoint is in the writer at a time: the
//! next one builds on what this one leaves in the store.

use crate::daemon::checkpoint::Commit;
use crate::store::{Backend, Store, StoreError};
use std::path::PathBuf;
use std::sync::mpsc;
use std::thread::JoinHandle;

/// The running writer, as the worker sees it.
pub(in crate::daemon) struct Writer {
    batches: Option<mpsc::Sender<Commit>>,
    results: mpsc::Receiver<Result<(), StoreError>>,
    /// A batch was handed over and its result not taken yet.
    busy: bool,
    thread: Option<JoinHandle<()>>,
    /// The store's backend and directory, for the error when the thread is gone.
    backend: Backend,
    dir: PathBuf,
}

impl Writer {
    /// Starts the thread (`flowwatch-writer`), which owns `store` (a `backend` store in
    /// `dir`) from now on.
    pub fn start(store: Box<dyn Store>, backend: Backend, dir: PathBuf) -> std::io::Result<Writer> {
        let (batches, received) = mpsc::channel::<Commit>();
        let (report, results) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("flowwatch-writer".to_string())
            .spawn(move || {
                let mut store = store;
                for commit in received {
                    let batch = commit.into_batch();
                    let result = store.apply(&batch);
                    // Freed here too, not on the worker.
                    drop(batch);
                    if report.send(result).is_err() {
                        break;
                    }
                }
            })?;
        Ok(Writer {
            batches: Some(batches),
            results,
            busy: false,
            thread: Some(thread),
            backend,
            dir,
        })
    }

    /// Whether a batch is being committed (its result not taken yet).
    pub fn busy(&self) -> bool {
        self.busy
    }

    /// Hands a checkpoint's batch over (its outbox blocks are encoded here, see [`Commit`]).
    /// The previous one's result must have been taken.
    pub fn submit(&mut self, batch: Commit) {
        assert!(!self.busy, "one checkpoint in the writer at a time");
        self.busy = true;
        let sent = self.batches.as_ref().is_some_and(|batches| batches.send(batch).is_ok());
        if !sent {
            // The thread is gone: `finished` reports it as this batch's failure.
            self.batches = None;
        }
    }

    /// The result of the batch handed over, once it is there (`None` while it is being
    /// committed, or when none was handed over).
    pub fn finished(&mut self) -> Option<Result<(), StoreError>> {
        self.take(false)
    }

    /// Waits for the result of the batch handed over (`None` if none was).
    pub fn wait(&mut self) -> Option<Result<(), StoreError>> {
        self.take(true)
    }

    fn take(&mut self, block: bool) -> Option<Result<(), StoreError>> {
        if !self.busy {
            return None;
        }
        let result = if block {
            self.results.recv().unwrap_or_else(|_| Err(self.gone()))
        } else {
            match self.results.try_recv() {
                Ok(result) => result,
                Err(mpsc::TryRecvError::Empty) => return None,
                Err(mpsc::TryRecvError::Disconnected) => Err(self.gone()),
            }
        };
        self.busy = false;
        Some(result)
    }

    /// The error for a batch the thread can no longer commit (it panicked in the store).
    fn gone(&self) -> StoreError {
        StoreError::Backend {
            backend: self.backend,
            path: self.dir.clone(),
            detail: "the store's writer thread stopped unexpectedly (a panic in the store; see the log above)".to_string(),
        }
    }
}

impl Drop for Writer {
    /// Lets the thread finish the batch it has (if any) and waits for it: the store is closed
    /// cleanly before the process goes on.
    fn drop(&mut self) {
        self.batches = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Batch, MemoryStore, StoreStats, Visit};
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    /// A store that commits into a shared memory store after `gate` lets it (so a test sees
    /// a batch in progress), fails batches with a key `fail`, and panics on a key `panic`.
    struct Gated {
        inner: Arc<Mutex<MemoryStore>>,
        gate: mpsc::Receiver<()>,
    }

    impl Store for Gated {
        fn apply(&mut self, batch: &Batch) -> Result<(), StoreError> {
            self.gate.recv().expect("the test opens the gate");
            for op in batch.ops() {
                if let crate::store::Op::Put { key, .. } = op {
                    match key.as_slice() {
                        b"fail" => {
                            return Err(StoreError::NoSpace {
                                backend: Backend::Memory,
                                path: PathBuf::from("/state"),
                            })
                        }
                        b"panic" => panic!("the store broke"),
                        _ => {}
                    }
                }
            }
            self.inner.lock().unwrap().apply(batch)
        }
        fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
            self.inner.lock().unwrap().get(key)
        }
        fn scan_prefix(&self, prefix: &[u8], visit: &mut Visit<'_>) -> Result<(), StoreError> {
            self.inner.lock().unwrap().scan_prefix(prefix, visit)
        }
        fn stats(&self) -> StoreStats {
            StoreStats::default()
        }
    }

    fn writer() -> (Writer, Arc<Mutex<MemoryStore>>, mpsc::Sender<()>) {
        let inner = Arc::new(Mutex::new(MemoryStore::new()));
        let (open, gate) = mpsc::channel();
        let store = Gated {
            inner: inner.clone(),
            gate,
        };
        let writer = Writer::start(Box::new(store), Backend::Memory, PathBuf::from("/state")).unwrap();
        (writer, inner, open)
    }

    fn put(key: &str) -> Commit {
        let mut batch = Batch::new();
        batch.put(key.as_bytes().to_vec(), b"v".to_vec());
        batch.into()
    }

    #[test]
    fn a_batch_is_reported_only_once_the_store_has_committed_it() {
        let (mut writer, inner, open) = writer();
        assert!(writer.finished().is_none(), "nothing handed over");
        writer.submit(put("a"));
        assert!(writer.busy());
        std::thread::sleep(Duration::from_millis(20));
        assert!(writer.finished().is_none(), "still committing");
        assert_eq!(inner.lock().unwrap().get(b"a").unwrap(), None);
        open.send(()).unwrap();
        assert!(writer.wait().unwrap().is_ok());
        assert!(!writer.busy());
        assert_eq!(inner.lock().unwrap().get(b"a").unwrap(), Some(b"v".to_vec()));
        assert!(writer.wait().is_none(), "reported once");
    }

    #[test]
    fn a_failed_batch_is_reported_and_the_next_one_is_committed() {
        let (mut writer, inner, open) = writer();
        writer.submit(put("fail"));
        open.send(()).unwrap();
        assert!(matches!(writer.wait(), Some(Err(StoreError::NoSpace { .. }))));
        writer.submit(put("b"));
        open.send(()).unwrap();
        assert!(writer.wait().unwrap().is_ok());
        assert_eq!(inner.lock().unwrap().get(b"b").unwrap(), Some(b"v".to_vec()));
    }

    #[test]
    fn a_store_that_panics_fails_its_batch_and_every_later_one() {
        let (mut writer, _inner, open) = writer();
        writer.submit(put("panic"));
        open.send(()).unwrap();
        let error = writer.wait().unwrap().unwrap_err().to_string();
        assert!(error.contains("writer thread stopped unexpectedly"), "{error}");
        writer.submit(put("c"));
        assert!(writer.wait().unwrap().is_err());
    }
}
