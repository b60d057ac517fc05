//! Store benchmark (issue 6, "Store"): the disk backends on the daemon's write pattern, in one
//! run. Each batch is what one processed batch of records writes: 900 new instance states and
//! 100 updates of the previous batch's (about 200-byte values under `inst/<flow>/<key>`), 100
//! deletes of instances retired ten batches earlier, and the `meta/offsets` key; one durable
//! commit per batch. For each backend it prints puts and deletes per second, commits per second,
//! milliseconds per commit, bytes on disk, then closes the store and measures the reopen, a full
//! scan of the instances (what a restarting daemon reads) and point reads, and the process's
//! resident memory with the reopened store (cumulative over backends). The memory backend
//! runs the same workload as the baseline for everything but the disk.
//!
//! `bench/store` runs the full size (1250 batches: 1.25 M puts, 1 M live keys at reopen);
//! `bench/store --quick` a small one (CI). `--batches N` and `--backends redb,sled,memory`
//! override; `--dir PATH` puts the stores under PATH (default: a temporary directory);
//! `--sequential-keys` keys instances by their opening order instead of by a hashed business
//! key, to show what key locality is worth to a B-tree; `--redb-cache-mib N` sets redb's page
//! cache.

// A benchmark measures wall-clock time by definition.
#![allow(clippy::disallowed_methods)]

use flowwatch::store::{open, Backend, Batch, RedbStore, Store};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const NEW_PER_BATCH: u64 = 900;
const UPDATES_PER_BATCH: u64 = 100;
const DELETES_PER_BATCH: u64 = 100;
const RETIRE_AFTER_BATCHES: u64 = 10;
const FLOWS: [&str; 3] = [
    "order-fulfillment",
    "customer-onboarding",
    "parcel-delivery",
];

/// Whether instance keys follow the opening order (`--sequential-keys`) rather than a business
/// key, which is effectively random.
static SEQUENTIAL_KEYS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// The key of the `index`-th instance ever opened.
fn instance_key(index: u64) -> String {
    let flow = FLOWS[(index % 3) as usize];
    if SEQUENTIAL_KEYS.load(std::sync::atomic::Ordering::Relaxed) {
        format!("inst/{flow}/{index:012}")
    } else {
        format!(
            "inst/{flow}/k-{:012x}",
            index.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 16
        )
    }
}

/// An instance state of about 200 bytes, different per instance and version.
fn instance_value(index: u64, version: u64) -> Vec<u8> {
    let mut value = format!(
        "{{\"flow\":{},\"opened\":{},\"steps\":[{},{},{}],\"version\":{version},\"keep\":\"",
        index % 3,
        1_767_225_600_000 + index * 37,
        index * 3,
        index * 5 + version,
        index ^ version
    );
    let mut state = index
        .wrapping_mul(6364136223846793005)
        .wrapping_add(version | 1);
    while value.len() < 198 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        value.push(char::from(b'a' + (state % 26) as u8));
    }
    value.push_str("\"}");
    value.into_bytes()
}

/// The batch written after processing record batch `number` (0-based).
fn batch(number: u64, batch: &mut Batch) {
    batch.clear();
    let first_new = number * NEW_PER_BATCH;
    for index in first_new..first_new + NEW_PER_BATCH {
        batch.put(instance_key(index), instance_value(index, 0));
    }
    if number > 0 {
        let previous = first_new - NEW_PER_BATCH;
        for index in (previous..previous + NEW_PER_BATCH)
            .step_by((NEW_PER_BATCH / UPDATES_PER_BATCH) as usize)
        {
            batch.put(instance_key(index), instance_value(index, number));
        }
    }
    if number >= RETIRE_AFTER_BATCHES {
        let retired = (number - RETIRE_AFTER_BATCHES) * NEW_PER_BATCH;
        for index in (retired..retired + NEW_PER_BATCH)
            .step_by((NEW_PER_BATCH / DELETES_PER_BATCH) as usize)
            .skip(1)
        {
            batch.delete(instance_key(index));
        }
    }
    batch.put(
        "meta/offsets",
        format!("{{\"orders\":{{\"0\":{}}}}}", (number + 1) * 1000),
    );
}

struct Figures {
    backend: Backend,
    ops: u64,
    write: Duration,
    commits: u64,
    bytes_on_disk: u64,
    live_keys: u64,
    reopen: Duration,
    scan: Duration,
    point_reads: Duration,
    /// Resident memory of the process with the reopened store after its scan and reads.
    resident_bytes: u64,
}

/// The process's resident set size, from `/proc/self/status` (0 where unavailable).
fn resident_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| {
            value
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .map_or(0, |kib| kib * 1024)
}

/// redb's page cache from `--redb-cache-mib` (default: the store's default).
static REDB_CACHE_BYTES: std::sync::atomic::AtomicUsize =
    std::sync::atomic::AtomicUsize::new(flowwatch::store::DEFAULT_REDB_CACHE_BYTES);

fn open_store(backend: Backend, dir: &Path) -> Box<dyn Store> {
    if backend == Backend::Redb {
        let cache_bytes = REDB_CACHE_BYTES.load(std::sync::atomic::Ordering::Relaxed);
        return Box::new(RedbStore::open_with_cache(dir, cache_bytes).expect("open"));
    }
    open(backend, dir).expect("open")
}

fn run(backend: Backend, dir: &Path, batches: u64) -> Figures {
    let mut store = open_store(backend, dir);
    let mut scratch = Batch::new();
    let mut ops = 0u64;
    let started = Instant::now();
    for number in 0..batches {
        batch(number, &mut scratch);
        ops += scratch.len() as u64;
        store.apply(&scratch).expect("apply");
    }
    let write = started.elapsed();
    let stats = store.stats();
    drop(store);

    let started = Instant::now();
    let store: Box<dyn Store> = if backend == Backend::Memory {
        // Nothing to reopen: the baseline keeps the store it wrote.
        let mut store = open(backend, dir).expect("open");
        for number in 0..batches {
            batch(number, &mut scratch);
            store.apply(&scratch).expect("apply");
        }
        store
    } else {
        open_store(backend, dir)
    };
    let reopen = if backend == Backend::Memory {
        Duration::ZERO
    } else {
        started.elapsed()
    };

    let started = Instant::now();
    let mut live_keys = 0u64;
    let mut value_bytes = 0u64;
    store
        .scan_prefix(b"inst/", &mut |_, value| {
            live_keys += 1;
            value_bytes += value.len() as u64;
            Ok(())
        })
        .expect("scan");
    let scan = started.elapsed();
    assert!(value_bytes >= live_keys * 190, "values are about 200 bytes");

    let started = Instant::now();
    let total_instances = batches * NEW_PER_BATCH;
    for probe in 0..10_000u64 {
        let index = probe.wrapping_mul(0x2545_f491_4f6c_dd1d) % total_instances.max(1);
        std::hint::black_box(store.get(instance_key(index).as_bytes()).expect("get"));
    }
    let point_reads = started.elapsed();
    let resident_bytes = resident_bytes();
    Figures {
        backend,
        ops,
        write,
        commits: stats.commits,
        bytes_on_disk: stats.bytes_on_disk,
        live_keys,
        reopen,
        scan,
        point_reads,
        resident_bytes,
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let value_of = |name: &str| {
        args.iter()
            .position(|arg| arg == name)
            .and_then(|i| args.get(i + 1).cloned())
    };
    let quick = args.iter().any(|arg| arg == "--quick");
    let sequential = args.iter().any(|arg| arg == "--sequential-keys");
    SEQUENTIAL_KEYS.store(sequential, std::sync::atomic::Ordering::Relaxed);
    if let Some(mib) = value_of("--redb-cache-mib") {
        let mib: usize = mib.parse().expect("--redb-cache-mib N");
        REDB_CACHE_BYTES.store(mib * 1024 * 1024, std::sync::atomic::Ordering::Relaxed);
    }
    let batches: u64 = value_of("--batches")
        .map(|text| text.parse().expect("--batches N"))
        .unwrap_or(if quick { 20 } else { 1250 });
    let backends: Vec<Backend> = value_of("--backends")
        .unwrap_or_else(|| "redb,sled,memory".to_owned())
        .split(',')
        .map(|name| name.parse().expect("--backends redb,sled,memory"))
        .collect();
    let temporary = tempfile::tempdir().expect("temporary directory");
    let base: PathBuf = value_of("--dir")
        .map(PathBuf::from)
        .unwrap_or_else(|| temporary.path().to_path_buf());

    println!(
        "store benchmark: {batches} batches of {NEW_PER_BATCH} new + {UPDATES_PER_BATCH} updated instance states (~200 B) + {DELETES_PER_BATCH} deletes + meta/offsets, one durable commit each; {} keys; stores under {}",
        if sequential { "sequential" } else { "hashed business" },
        base.display()
    );
    println!(
        "{:<7} {:>11} {:>10} {:>9} {:>8} {:>11} {:>9} {:>10} {:>9} {:>9} {:>11} {:>8}",
        "backend",
        "ops/s",
        "commits/s",
        "ms/commit",
        "commits",
        "disk MiB",
        "B/key",
        "live keys",
        "reopen ms",
        "scan ms",
        "get µs",
        "RSS MiB"
    );
    for backend in backends {
        let dir = base.join(backend.name());
        let _ = std::fs::remove_dir_all(&dir);
        let figures = run(backend, &dir, batches);
        let seconds = figures.write.as_secs_f64();
        println!(
            "{:<7} {:>11.0} {:>10.1} {:>9.2} {:>8} {:>11.1} {:>9.0} {:>10} {:>9.1} {:>9.1} {:>11.2} {:>8.0}",
            figures.backend.name(),
            figures.ops as f64 / seconds,
            figures.commits as f64 / seconds,
            seconds * 1000.0 / figures.commits.max(1) as f64,
            figures.commits,
            figures.bytes_on_disk as f64 / (1024.0 * 1024.0),
            figures.bytes_on_disk as f64 / figures.live_keys.max(1) as f64,
            figures.live_keys,
            figures.reopen.as_secs_f64() * 1000.0,
            figures.scan.as_secs_f64() * 1000.0,
            figures.point_reads.as_secs_f64() * 1e6 / 10_000.0,
            figures.resident_bytes as f64 / (1024.0 * 1024.0),
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
