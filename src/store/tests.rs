//! One test body per behaviour, run against every backend (`mod memory`, `mod redb`, `mod sled`
//! below), so the backends cannot drift apart in semantics.

use super::{open, Backend, Batch, Store, StoreError};
use std::path::Path;

/// Every pair under `prefix`, in the order the store visits them.
fn scan(store: &dyn Store, prefix: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut pairs = Vec::new();
    store
        .scan_prefix(prefix, &mut |key, value| {
            pairs.push((key.to_vec(), value.to_vec()));
            Ok(())
        })
        .unwrap();
    pairs
}

fn pair(key: &str, value: &str) -> (Vec<u8>, Vec<u8>) {
    (key.as_bytes().to_vec(), value.as_bytes().to_vec())
}

pub(super) fn put_get_delete(backend: Backend, dir: &Path) {
    let mut store = open(backend, dir).unwrap();
    assert_eq!(store.get(b"a").unwrap(), None);
    let mut batch = Batch::new();
    batch
        .put("a", "1")
        .put("b", "2")
        .put(b"c".to_vec(), b"3".to_vec());
    assert_eq!(batch.len(), 3);
    store.apply(&batch).unwrap();
    assert_eq!(store.get(b"a").unwrap().as_deref(), Some(&b"1"[..]));
    assert_eq!(store.get(b"b").unwrap().as_deref(), Some(&b"2"[..]));

    let mut batch = Batch::new();
    batch.delete("a").put("b", "22").delete("missing");
    store.apply(&batch).unwrap();
    assert_eq!(store.get(b"a").unwrap(), None);
    assert_eq!(store.get(b"b").unwrap().as_deref(), Some(&b"22"[..]));
    assert_eq!(store.get(b"c").unwrap().as_deref(), Some(&b"3"[..]));
}

pub(super) fn later_ops_in_a_batch_win(backend: Backend, dir: &Path) {
    let mut store = open(backend, dir).unwrap();
    let mut batch = Batch::new();
    batch
        .put("k", "1")
        .put("k", "2")
        .put("gone", "x")
        .delete("gone")
        .delete("back")
        .put("back", "y");
    store.apply(&batch).unwrap();
    assert_eq!(scan(&*store, b""), vec![pair("back", "y"), pair("k", "2")]);
}

pub(super) fn scan_prefix_in_key_order(backend: Backend, dir: &Path) {
    let mut store = open(backend, dir).unwrap();
    let mut batch = Batch::new();
    for key in [
        "inst/b/2",
        "inst/a/1",
        "meta/offsets",
        "inst/b/10",
        "insu",
        "ins",
        "inst/",
    ] {
        batch.put(key, key.to_uppercase());
    }
    batch
        .put(vec![b'i', b'n', b's', b't', b'/', 0xff], "high")
        .put(vec![0xff, 0xff], "last");
    store.apply(&batch).unwrap();
    let keys = |prefix: &[u8]| -> Vec<Vec<u8>> {
        scan(&*store, prefix)
            .into_iter()
            .map(|(key, _)| key)
            .collect()
    };
    assert_eq!(
        keys(b"inst/"),
        vec![
            b"inst/".to_vec(),
            b"inst/a/1".to_vec(),
            b"inst/b/10".to_vec(),
            b"inst/b/2".to_vec(),
            b"inst/\xff".to_vec(),
        ]
    );
    assert_eq!(
        keys(b"inst/b/"),
        vec![b"inst/b/10".to_vec(), b"inst/b/2".to_vec()]
    );
    assert_eq!(keys(b"nothing"), Vec::<Vec<u8>>::new());
    assert_eq!(keys(b"\xff").len(), 1);
    assert_eq!(keys(b"").len(), 9);
    assert_eq!(
        scan(&*store, b"meta/"),
        vec![pair("meta/offsets", "META/OFFSETS")]
    );
}

pub(super) fn visitor_errors_stop_the_scan(backend: Backend, dir: &Path) {
    let mut store = open(backend, dir).unwrap();
    let mut batch = Batch::new();
    batch.put("p/1", "a").put("p/2", "b").put("p/3", "c");
    store.apply(&batch).unwrap();
    let mut seen = 0;
    let result = store.scan_prefix(b"p/", &mut |key, _| {
        seen += 1;
        if key == b"p/2" {
            return Err(StoreError::Unreadable {
                key: "p/2".into(),
                detail: "test".into(),
            });
        }
        Ok(())
    });
    assert!(
        matches!(result, Err(StoreError::Unreadable { .. })),
        "{result:?}"
    );
    assert_eq!(seen, 2);
}

pub(super) fn empty_batches_and_values(backend: Backend, dir: &Path) {
    let mut store = open(backend, dir).unwrap();
    store.apply(&Batch::new()).unwrap();
    let mut batch = Batch::new();
    batch.put("empty", "");
    store.apply(&batch).unwrap();
    assert_eq!(store.get(b"empty").unwrap(), Some(Vec::new()));
}

pub(super) fn counts_commits(backend: Backend, dir: &Path) {
    let mut store = open(backend, dir).unwrap();
    let before = store.stats().commits;
    let mut batch = Batch::new();
    batch.put("k", vec![7u8; 4096]);
    store.apply(&batch).unwrap();
    store.apply(&batch).unwrap();
    let stats = store.stats();
    assert_eq!(stats.commits, before + 2);
    if backend != Backend::Memory {
        assert!(stats.bytes_on_disk >= 4096, "{stats:?}");
    }
}

pub(super) fn large_values(backend: Backend, dir: &Path) {
    let mut store = open(backend, dir).unwrap();
    let big: Vec<u8> = (0..3_000_000u32).map(|index| (index % 251) as u8).collect();
    let mut batch = Batch::new();
    batch.put("big", big.clone());
    store.apply(&batch).unwrap();
    assert_eq!(store.get(b"big").unwrap(), Some(big));
}

/// Generates one `#[test]` per body for a backend; `$dir` makes the directory for each test.
macro_rules! backend_tests {
    ($backend:expr, $dir:expr, [$($body:ident),* $(,)?]) => {
        $(
            #[test]
            fn $body() {
                let dir = $dir;
                super::$body($backend, dir.path());
            }
        )*
    };
}

/// A directory-like handle for the memory backend, which ignores its directory.
struct NoDir;

impl NoDir {
    fn path(&self) -> &Path {
        Path::new("/nonexistent/flowwatch-memory-store")
    }
}

/// The bodies every backend passes.
macro_rules! common_tests {
    ($backend:expr, $dir:expr) => {
        backend_tests!(
            $backend,
            $dir,
            [
                put_get_delete,
                later_ops_in_a_batch_win,
                scan_prefix_in_key_order,
                visitor_errors_stop_the_scan,
                empty_batches_and_values,
                counts_commits,
                large_values,
            ]
        );
    };
}

/// The bodies the disk backends pass on top of the common ones.
macro_rules! disk_tests {
    ($backend:expr) => {
        common_tests!($backend, tempfile::tempdir().unwrap());
        backend_tests!(
            $backend,
            tempfile::tempdir().unwrap(),
            [
                survives_reopen,
                missing_directories_are_created,
                a_second_open_is_refused_with_the_pid,
                the_other_backend_is_refused,
                corrupt_files_fail_to_open,
                garbage_instead_of_the_store_fails_to_open,
            ]
        );
    };
}

mod memory {
    use super::{Backend, NoDir};
    common_tests!(Backend::Memory, NoDir);
}

mod redb {
    use super::Backend;
    use std::path::Path;
    use std::process::{Command, Stdio};
    use std::time::Duration;

    disk_tests!(Backend::Redb);

    /// A process creating stores one after another is killed (SIGKILL) at spread moments;
    /// every store it leaves behind opens, with nothing or all of its first commit, never as
    /// corrupt. (Before stores were created under a temporary name, a kill while redb wrote a
    /// new file's header left a `state.redb` that every later start refused.)
    #[test]
    fn a_store_killed_while_being_created_opens_again() {
        const CHILD: &str = "FLOWWATCH_TEST_STORE_CREATOR";
        const NAME: &str = "store::tests::redb::a_store_killed_while_being_created_opens_again";
        if let Some(base) = std::env::var_os(CHILD) {
            for n in 0u64.. {
                let _ = super::open(Backend::Redb, &Path::new(&base).join(n.to_string()));
            }
            return;
        }
        let base = tempfile::tempdir().unwrap();
        let exe = std::env::current_exe().unwrap();
        let mut opened = 0;
        for round in 0..30u64 {
            let round_dir = base.path().join(round.to_string());
            let mut child = Command::new(&exe)
                .args(["--exact", NAME, "--test-threads=1", "--nocapture"])
                .env(CHILD, &round_dir)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            std::thread::sleep(Duration::from_millis(30 + round * 13 % 40));
            child.kill().unwrap();
            child.wait().unwrap();
            let Ok(entries) = std::fs::read_dir(&round_dir) else {
                continue;
            };
            for entry in entries {
                let dir = entry.unwrap().path();
                match super::open(Backend::Redb, &dir) {
                    Ok(_) => opened += 1,
                    Err(error) => panic!("{}: {error}", dir.display()),
                }
            }
        }
        assert!(opened > 30, "the child created only {opened} stores");
    }
}

mod sled {
    use super::Backend;
    disk_tests!(Backend::Sled);

    /// A snapshot cut short while sled wrote it (by a full device or a kill) is left as
    /// `snap.*.generating`; sled 0.34 reads it at open and fails as corrupt (its issue #1527).
    /// The store removes it and sled recovers everything from its log.
    #[test]
    fn an_unfinished_snapshot_does_not_stop_the_store_opening() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut store = super::open(Backend::Sled, dir.path()).unwrap();
            store.apply(&super::sample_batch()).unwrap();
        }
        let sled_dir = dir.path().join("sled");
        let unfinished = sled_dir.join("snap.7FFFFFFFFFFFFFFF.generating");
        std::fs::write(&unfinished, b"half a snapshot, no checksum").unwrap();
        // Without the removal, sled itself refuses the directory. (The store just closed may
        // hold sled's file lock a moment longer, from its flusher thread: wait for it, as
        // `store::sled` does.)
        let mut raw = sled::Config::new().path(&sled_dir).open();
        for _ in 0..200 {
            match &raw {
                Err(sled::Error::Io(error)) if error.to_string().contains("could not acquire lock") => {
                    std::thread::sleep(std::time::Duration::from_millis(10));
                    raw = sled::Config::new().path(&sled_dir).open();
                }
                _ => break,
            }
        }
        assert!(
            matches!(raw, Err(sled::Error::Corruption { .. })),
            "{:?}",
            raw.map(drop)
        );
        let store = super::open(Backend::Sled, dir.path()).unwrap();
        super::assert_sample_state(&*store);
        assert!(!unfinished.exists());
    }
}

/// The pairs of a small state: a few instances and the offsets.
fn sample_batch() -> Batch {
    let mut batch = Batch::new();
    for index in 0..200 {
        batch.put(
            format!("inst/checkout/o-{index:04}"),
            format!("{{\"state\":{index}}}").repeat(8),
        );
    }
    batch.put("meta/offsets", "orders:0=17");
    batch
}

fn assert_sample_state(store: &dyn Store) {
    let pairs = scan(store, b"inst/");
    assert_eq!(pairs.len(), 200);
    assert_eq!(pairs[7].1, "{\"state\":7}".repeat(8).into_bytes());
    assert_eq!(
        store.get(b"meta/offsets").unwrap().as_deref(),
        Some(&b"orders:0=17"[..])
    );
}

pub(super) fn survives_reopen(backend: Backend, dir: &Path) {
    {
        let mut store = open(backend, dir).unwrap();
        store.apply(&sample_batch()).unwrap();
        let mut batch = Batch::new();
        batch.delete("inst/checkout/o-0000");
        store.apply(&batch).unwrap();
    }
    let store = open(backend, dir).unwrap();
    assert_eq!(store.get(b"inst/checkout/o-0000").unwrap(), None);
    assert_eq!(scan(&*store, b"inst/").len(), 199);
    assert_eq!(store.stats().commits, 0);
}

pub(super) fn missing_directories_are_created(backend: Backend, dir: &Path) {
    let nested = dir.join("a/b/state");
    let mut store = open(backend, &nested).unwrap();
    store.apply(&sample_batch()).unwrap();
    assert!(nested.is_dir());
}

pub(super) fn a_second_open_is_refused_with_the_pid(backend: Backend, dir: &Path) {
    let _first = open(backend, dir).unwrap();
    let error = open(backend, dir).err().expect("a second open must fail");
    match &error {
        StoreError::Locked { dir: locked, pid } => {
            assert_eq!(locked, dir);
            assert_eq!(*pid, Some(std::process::id()));
        }
        other => panic!("expected Locked, got {other:?}"),
    }
    let message = error.to_string();
    assert!(
        message.contains(&format!("(pid {})", std::process::id())),
        "{message}"
    );
    assert!(message.contains("stop that process"), "{message}");
    // The memory backend does not lock (it has no directory).
    assert!(open(Backend::Memory, dir).is_ok());
}

pub(super) fn the_other_backend_is_refused(backend: Backend, dir: &Path) {
    let other = if backend == Backend::Redb {
        Backend::Sled
    } else {
        Backend::Redb
    };
    {
        let mut store = open(other, dir).unwrap();
        store.apply(&sample_batch()).unwrap();
    }
    let error = open(backend, dir)
        .err()
        .expect("the other backend's directory must be refused");
    assert!(
        matches!(&error, StoreError::WrongBackend { found, wanted, .. } if *found == other && *wanted == backend),
        "{error:?}"
    );
    assert!(
        error
            .to_string()
            .contains(&format!("holds a {other} store, not a {backend} one")),
        "{error}"
    );
    // The original backend still opens it, untouched.
    assert_sample_state(&*open(other, dir).unwrap());
}

/// Overwrites every `stride`-th 4 KiB block from `from` on of every file under `path` (except
/// the lock and sled's small `conf`) with garbage.
fn damage(path: &Path, from: u64, stride: u64) {
    use std::io::{Seek, SeekFrom, Write};
    if path.is_dir() {
        for entry in std::fs::read_dir(path).unwrap() {
            damage(&entry.unwrap().path(), from, stride);
        }
        return;
    }
    if path
        .file_name()
        .is_some_and(|name| name == "LOCK" || (from > 0 && name == "conf"))
    {
        return;
    }
    let length = path.metadata().unwrap().len();
    eprintln!("damaging {} ({length} bytes) from {from}", path.display());
    let mut file = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    let mut offset = from;
    while offset < length {
        file.seek(SeekFrom::Start(offset)).unwrap();
        let size = 4096.min(length - offset) as usize;
        file.write_all(&vec![0xa5; size]).unwrap();
        offset += 4096 * stride;
    }
    file.sync_all().unwrap();
}

pub(super) fn corrupt_files_fail_to_open(backend: Backend, dir: &Path) {
    {
        let mut store = open(backend, dir).unwrap();
        for round in 0..20 {
            let mut batch = sample_batch();
            batch.put("round", format!("{round}"));
            store.apply(&batch).unwrap();
        }
    }
    // Spare the headers, so the damage is found by checksums, not by magic numbers.
    damage(dir, 8192, 3);
    match open(backend, dir) {
        Err(error @ StoreError::Corrupt { .. }) => {
            assert!(error.to_string().contains("is corrupt"), "{error}");
        }
        Err(other) => panic!("expected Corrupt, got {other:?}"),
        Ok(store) => panic!(
            "a damaged store opened, with {} pairs",
            scan(&*store, b"").len()
        ),
    }
}

pub(super) fn garbage_instead_of_the_store_fails_to_open(backend: Backend, dir: &Path) {
    {
        let mut store = open(backend, dir).unwrap();
        store.apply(&sample_batch()).unwrap();
    }
    damage(dir, 0, 1);
    let result = open(backend, dir);
    assert!(
        matches!(result, Err(StoreError::Corrupt { .. })),
        "{:?}",
        result.err()
    );
}

#[test]
fn backend_names_round_trip() {
    for backend in Backend::ALL {
        assert_eq!(backend.to_string().parse::<Backend>().unwrap(), backend);
    }
    assert_eq!(Backend::default(), Backend::Redb);
    let error = "rocksdb".parse::<Backend>().unwrap_err();
    assert_eq!(
        error.to_string(),
        "unknown store backend `rocksdb`: use `redb`, `sled` or `memory`"
    );
}
