//! The kill -9 torture test. A child process (this test binary, re-run as the same test with
//! `FLOWWATCH_STORE_TORTURE_CHILD` set) applies numbered batches in a loop and prints `ack N`
//! after each `apply` returns; the parent kills it with SIGKILL at random moments, reopens the
//! store and checks that every acknowledged batch is there and that no batch is half-applied.
//! Each batch `n` puts `ROWS` rows `b/<n>/<row>`, deletes the rows of batch `n - WINDOW`, and
//! sets `meta/seq` to `n`, so the whole state is a function of `meta/seq`.

use flowwatch::store::{open, Backend, Batch, Store};
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

const CHILD_ENV: &str = "FLOWWATCH_STORE_TORTURE_CHILD";
const ROUNDS: u32 = 20;
const ROWS: u32 = 100;
const WINDOW: u64 = 5;
/// How long a child may take to acknowledge its first batch before the test gives up on it.
const FIRST_ACK_LIMIT: Duration = Duration::from_secs(20);

#[test]
fn redb_keeps_every_acknowledged_batch_under_kill_9() {
    torture(
        Backend::Redb,
        "store::torture::redb_keeps_every_acknowledged_batch_under_kill_9",
    );
}

#[test]
fn sled_keeps_every_acknowledged_batch_under_kill_9() {
    torture(
        Backend::Sled,
        "store::torture::sled_keeps_every_acknowledged_batch_under_kill_9",
    );
}

fn value(batch: u64, row: u32) -> Vec<u8> {
    format!("batch {batch} row {row} ").repeat(10).into_bytes()
}

fn row_key(batch: u64, row: u32) -> String {
    format!("b/{batch:010}/{row:03}")
}

fn stored_seq(store: &dyn Store) -> u64 {
    store
        .get(b"meta/seq")
        .unwrap()
        .map(|bytes| String::from_utf8(bytes).unwrap().parse().unwrap())
        .unwrap_or(0)
}

/// The child: applies batches after the last stored one until it is killed.
fn child(spec: &str) -> ! {
    let (backend, dir) = spec.split_once(':').expect("BACKEND:DIR");
    let backend: Backend = backend.parse().unwrap();
    let mut store = open(backend, Path::new(dir)).unwrap_or_else(|error| {
        eprintln!("child: {error}");
        std::process::exit(3)
    });
    let first = stored_seq(&*store) + 1;
    // Bounded in case the parent is gone (printing to a closed pipe also ends it).
    for batch_number in first..first + 100_000 {
        let mut batch = Batch::new();
        for row in 0..ROWS {
            batch.put(row_key(batch_number, row), value(batch_number, row));
        }
        if batch_number > WINDOW {
            for row in 0..ROWS {
                batch.delete(row_key(batch_number - WINDOW, row));
            }
        }
        batch.put("meta/seq", batch_number.to_string());
        store.apply(&batch).unwrap_or_else(|error| {
            eprintln!("child: {error}");
            std::process::exit(4)
        });
        println!("ack {batch_number}");
    }
    std::process::exit(0)
}

/// A small deterministic generator for kill moments (the timing adds the real randomness).
struct XorShift(u64);

impl XorShift {
    fn below(&mut self, bound: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % bound
    }
}

fn torture(backend: Backend, test_name: &str) {
    if let Ok(spec) = std::env::var(CHILD_ENV) {
        child(&spec);
    }
    let dir = tempfile::tempdir().unwrap();
    let mut random = XorShift(0x9e37_79b9_7f4a_7c15 ^ u64::from(std::process::id()));
    let mut acknowledged_total = 0u64;
    let mut max_acknowledged = 0u64;
    let mut killed_before_first_ack = 0;
    for round in 0..ROUNDS {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([test_name, "--exact", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, format!("{backend}:{}", dir.path().display()))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut stderr = child.stderr.take().unwrap();
        let (acks_sender, acks) = mpsc::channel::<u64>();
        let reader = thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(number) = line.strip_prefix("ack ") {
                    let _ = acks_sender.send(number.parse().unwrap());
                }
            }
        });
        // One round in four kills at a random moment from the start (during open and
        // recovery); the others once the child writes, at a random moment after its first ack.
        if round % 4 == 3 {
            thread::sleep(Duration::from_millis(random.below(40)));
        } else {
            let Ok(first_ack) = acks.recv_timeout(FIRST_ACK_LIMIT) else {
                let _ = child.kill();
                let _ = child.wait();
                let mut errors = String::new();
                let _ = stderr.read_to_string(&mut errors);
                panic!("{backend} round {round}: the child acknowledged nothing: {errors}");
            };
            acknowledged_total += 1;
            max_acknowledged = max_acknowledged.max(first_ack);
            thread::sleep(Duration::from_millis(random.below(400)));
        }
        child.kill().unwrap(); // SIGKILL
        let status = child.wait().unwrap();
        reader.join().unwrap();
        let mut errors = String::new();
        let _ = stderr.read_to_string(&mut errors);
        assert!(
            status.code().is_none(),
            "{backend} round {round}: the child exited before the kill ({status}): {errors}"
        );
        let acked: Vec<u64> = acks.try_iter().collect();
        if acked.is_empty() && round % 4 == 3 {
            killed_before_first_ack += 1;
        }
        acknowledged_total += acked.len() as u64;
        max_acknowledged = max_acknowledged.max(acked.iter().copied().max().unwrap_or(0));
        check_state(backend, dir.path(), max_acknowledged, round);
    }
    eprintln!(
        "store torture, {backend}: {ROUNDS} kills ({killed_before_first_ack} before the first ack of their run), {acknowledged_total} batches acknowledged, last {max_acknowledged}; lost 0, half-applied 0"
    );
    assert!(
        max_acknowledged > u64::from(ROUNDS),
        "{backend}: too few batches to mean anything"
    );
}

/// Every acknowledged batch is there, and the state is exactly the one after `meta/seq`.
fn check_state(backend: Backend, dir: &Path, max_acknowledged: u64, round: u32) {
    let store = open(backend, dir)
        .unwrap_or_else(|error| panic!("{backend} round {round}: reopen failed: {error}"));
    let seq = stored_seq(&*store);
    assert!(
        seq >= max_acknowledged,
        "{backend} round {round}: batch {max_acknowledged} was acknowledged but the store holds only up to {seq}"
    );
    let mut rows = 0u64;
    store
        .scan_prefix(b"b/", &mut |key, stored| {
            let key = std::str::from_utf8(key).unwrap();
            let (batch, row) = key["b/".len()..].split_once('/').unwrap();
            let (batch, row): (u64, u32) = (batch.parse().unwrap(), row.parse().unwrap());
            assert!(
                batch <= seq && batch + WINDOW > seq,
                "{backend} round {round}: row {key} does not belong to the state after batch {seq} (half-applied batch)"
            );
            assert_eq!(stored, value(batch, row).as_slice(), "{backend} round {round}: {key}");
            rows += 1;
            Ok(())
        })
        .unwrap();
    let expected = u64::from(ROWS) * seq.min(WINDOW);
    assert_eq!(rows, expected, "{backend} round {round}: after batch {seq} there must be {expected} rows (half-applied batch)");
}
