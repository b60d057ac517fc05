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

mod memory {
    use super::{Backend, NoDir};
    backend_tests!(
        Backend::Memory,
        NoDir,
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
}

#[test]
fn backend_names_round_trip() {
    for backend in Backend::ALL {
        assert_eq!(backend.to_string().parse::<Backend>().unwrap(), backend);
    }
    let error = "rocksdb".parse::<Backend>().unwrap_err();
    assert_eq!(
        error.to_string(),
        "unknown store backend `rocksdb`: use `redb`, `sled` or `memory`"
    );
}
