//! A state directory on a device that fills up or turns read-only: `apply` fails with a clear
//! error, the previous state stays intact (nothing of the failed batch is visible, before or
//! after a reopen), and writing works again once space or write access returns. The device is
//! a small tmpfs mounted by the test, which needs root (CAP_SYS_ADMIN), as in CI; without it the
//! test fails and says so.

use flowwatch::store::{open, Backend, Batch, Store, StoreError};
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A tmpfs mounted on a temporary directory, unmounted on drop.
struct Tmpfs {
    mountpoint: PathBuf,
    _dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Tmpfs {
        let dir = tempfile::tempdir().unwrap();
        let mountpoint = dir.path().to_path_buf();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&mountpoint)
            .status();
        match status {
            Ok(status) if status.success() => {}
            other => panic!(
                "cannot mount a tmpfs on {} ({other:?}): the storage-fault tests need root (CAP_SYS_ADMIN), as the CI machine has",
                mountpoint.display()
            ),
        }
        Tmpfs {
            mountpoint,
            _dir: dir,
        }
    }

    fn remount(&self, mode: &str) {
        let status = Command::new("mount")
            .args(["-o", &format!("remount,{mode}")])
            .arg(&self.mountpoint)
            .status()
            .unwrap();
        assert!(status.success(), "remount {mode} failed");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.mountpoint).status();
    }
}

fn batch_of(number: u64, rows: u32, row_size: usize) -> Batch {
    let mut batch = Batch::new();
    for row in 0..rows {
        batch.put(
            format!("inst/{number:06}/{row:05}"),
            vec![(number % 251) as u8; row_size],
        );
    }
    batch.put("meta/offsets", number.to_string());
    batch
}

/// The batches whose rows are in the store, and the offsets mark; panics on a partial batch.
fn visible_batches(store: &dyn Store, rows: u32) -> (Vec<u64>, u64) {
    let mut counts = std::collections::BTreeMap::<u64, u32>::new();
    store
        .scan_prefix(b"inst/", &mut |key, _| {
            let number = std::str::from_utf8(&key[5..11]).unwrap().parse().unwrap();
            *counts.entry(number).or_default() += 1;
            Ok(())
        })
        .unwrap();
    for (number, count) in &counts {
        assert_eq!(*count, rows, "batch {number} is half-applied");
    }
    let offsets = store
        .get(b"meta/offsets")
        .unwrap()
        .map(|bytes| String::from_utf8(bytes).unwrap().parse().unwrap());
    (counts.into_keys().collect(), offsets.unwrap_or(0))
}

/// Fills the device with a file until it is full.
fn fill(path: &Path) -> File {
    let mut filler = File::create(path).unwrap();
    let chunk = vec![0u8; 64 * 1024];
    loop {
        match filler.write_all(&chunk) {
            Ok(()) => {}
            Err(error) if error.kind() == std::io::ErrorKind::StorageFull => break,
            Err(error) => panic!("filling the device: {error}"),
        }
    }
    let _ = filler.sync_all();
    filler
}

fn no_space_then_recovery(backend: Backend) {
    const ROWS: u32 = 200;
    let tmpfs = Tmpfs::mount("24m");
    let state = tmpfs.mountpoint.join("state");
    let filler_path = tmpfs.mountpoint.join("filler");
    let mut store = open(backend, &state).unwrap();
    let mut acknowledged = Vec::new();
    for number in 1..=3 {
        store.apply(&batch_of(number, ROWS, 1000)).unwrap();
        acknowledged.push(number);
    }
    let filler = fill(&filler_path);
    // Keep writing until the device refuses (what was preallocated may take a few batches).
    let mut failed = None;
    for number in 4..200 {
        match store.apply(&batch_of(number, ROWS, 1000)) {
            Ok(()) => acknowledged.push(number),
            Err(error) => {
                failed = Some((number, error));
                break;
            }
        }
    }
    let (failed_number, error) = failed.expect("the full device never refused a batch");
    assert!(
        matches!(error, StoreError::NoSpace { .. }),
        "{backend}: expected NoSpace, got {error:?}"
    );
    assert!(error.to_string().contains("no space left"), "{error}");
    assert!(error.is_transient());
    // While full, reads show the previous state or fail; they never show the failed batch.
    if let Ok(Some(offsets)) = store.get(b"meta/offsets") {
        assert_eq!(
            String::from_utf8(offsets).unwrap(),
            acknowledged.last().unwrap().to_string()
        );
    }
    // A retry while still full fails again, cleanly.
    assert!(store.apply(&batch_of(failed_number, ROWS, 1000)).is_err());

    drop(filler);
    std::fs::remove_file(&filler_path).unwrap();
    store
        .apply(&batch_of(failed_number, ROWS, 1000))
        .unwrap_or_else(|error| panic!("{backend}: after space returned: {error}"));
    acknowledged.push(failed_number);
    assert_eq!(
        visible_batches(&*store, ROWS),
        (acknowledged.clone(), failed_number)
    );
    drop(store);
    let store = open(backend, &state).unwrap();
    assert_eq!(
        visible_batches(&*store, ROWS),
        (acknowledged, failed_number)
    );
    drop(store);
}

/// A device cannot be remounted read-only while the store has files open for writing (the
/// kernel refuses with EBUSY), so this is the start-up case: the daemon is restarted on a
/// directory that turned read-only, gets a clear error, and starts once it is writable again.
fn read_only_then_recovery(backend: Backend) {
    const ROWS: u32 = 50;
    let tmpfs = Tmpfs::mount("16m");
    let state = tmpfs.mountpoint.join("state");
    let mut store = open(backend, &state).unwrap();
    store.apply(&batch_of(1, ROWS, 500)).unwrap();
    drop(store);
    tmpfs.remount("ro");
    let error = open(backend, &state)
        .err()
        .expect("a store opened for writing on a read-only device");
    assert!(
        matches!(error, StoreError::ReadOnly { .. }),
        "{backend}: expected ReadOnly, got {error:?}"
    );
    assert!(error.to_string().contains("cannot be written"), "{error}");
    assert!(error.is_transient());
    tmpfs.remount("rw");
    let mut store = open(backend, &state)
        .unwrap_or_else(|error| panic!("{backend}: after rw came back: {error}"));
    assert_eq!(visible_batches(&*store, ROWS), (vec![1], 1));
    store.apply(&batch_of(3, ROWS, 500)).unwrap();
    assert_eq!(visible_batches(&*store, ROWS), (vec![1, 3], 3));
    drop(store);
    let store = open(backend, &state).unwrap();
    assert_eq!(visible_batches(&*store, ROWS), (vec![1, 3], 3));
    drop(store);
}

#[test]
fn redb_survives_a_full_device() {
    no_space_then_recovery(Backend::Redb);
}

#[test]
fn sled_survives_a_full_device() {
    no_space_then_recovery(Backend::Sled);
}

#[test]
fn redb_survives_a_read_only_device() {
    read_only_then_recovery(Backend::Redb);
}

#[test]
fn sled_survives_a_read_only_device() {
    read_only_then_recovery(Backend::Sled);
}
