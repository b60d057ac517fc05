//! Scale benchmark (issue: fast at scale): timers and restart with N (default 1 M) open
//! instances, each with a pending deadline.
//!
//! - Timer queue: the cost of one reschedule (cancel an entry, insert another) with 1 k and with
//!   N entries pending, and their ratio (a balanced tree predicts about log N / log 1 k; cache
//!   misses on the larger tree add to it).
//! - Breach delay: with N instances open, the engine's clock is moved just past the earliest
//!   deadline; the time until the breach signal is out is the engine's share of the delay
//!   between a deadline and its signal (the daemon adds its turn and the allowed lateness).
//! - Restart: the N-instance state is checkpointed into the default store (redb) in a
//!   temporary directory; then, timed: open the store, load the checkpoint, restore the engine;
//!   and a daemon started on that state directory against the in-process mock cluster, from
//!   `daemon::start` until it has consumed a record.
//!
//! `--quick` (CI): 20 k instances; `--instances N` overrides. Prints figures, asserts nothing
//! about time.

// A benchmark measures wall-clock time by definition.
#![allow(clippy::disallowed_methods)]

#[path = "support/scenario.rs"]
#[allow(dead_code)]
mod scenario;

use flowwatch::clock::{Clock, SystemClock};
use flowwatch::config;
use flowwatch::daemon::{self, checkpoint, outbox::Outbox};
use flowwatch::engine::signal::SignalKind;
use flowwatch::engine::timers::{TimerKey, TimerTarget, Timers};
use flowwatch::engine::{Engine, EngineConfig, Input, Output};
use flowwatch::flow::{load_dir_or_files, Flow};
use flowwatch::json::Json;
use flowwatch::record::Record;
use flowwatch::store::{self, Backend};
use rdkafka::config::ClientConfig;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// The allocator the shipped binary uses (`src/main.rs`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn flows() -> Vec<Flow> {
    let report = load_dir_or_files(&[PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("flows")]);
    assert!(report.errors.is_empty(), "shipped flows must validate: {:?}", report.errors);
    report.flows
}

/// SplitMix64: deterministic pseudo-random numbers.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Nanoseconds per reschedule (one cancel and one insert) with `pending` entries queued. The
/// entry cancelled is a random one; the new deadline is random over a day (`recent` false: the
/// worst case for the caches) or later than every other (`recent` true: the engine's pattern,
/// where a new deadline is the event time plus a step's duration).
fn timer_op_nanos(pending: usize, ops: usize, recent: bool) -> f64 {
    let mut timers = Timers::default();
    let mut entries: Vec<Option<TimerKey>> = vec![None; pending];
    for (slot, entry) in entries.iter_mut().enumerate() {
        let due = scenario::BASE + (mix(slot as u64) % 86_400_000) as i64;
        let key = (due, timers.next_seq());
        timers.reschedule(entry, Some(key), TimerTarget::Instance(slot as u32));
    }
    let started = Instant::now();
    for op in 0..ops {
        let slot = (mix(op as u64 ^ 0xABCD) % pending as u64) as usize;
        let due = if recent {
            scenario::BASE + 86_400_000 + op as i64
        } else {
            scenario::BASE + (mix(op as u64) % 86_400_000) as i64
        };
        let key = (due, timers.next_seq());
        timers.reschedule(&mut entries[slot], Some(key), TimerTarget::Instance(slot as u32));
    }
    let nanos = started.elapsed().as_nanos() as f64 / ops as f64;
    assert_eq!(timers.len(), pending);
    nanos
}

/// An `OrderPlaced` of order `n`, placed at `base` + n/4 ms (four orders a millisecond, so
/// 1 M orders span about 4 minutes): its first deadline (inventory, 10 min) comes that much
/// after the first order's.
fn order_placed(n: usize, base: i64) -> Record<'static> {
    let time = base + (n / 4) as i64;
    Record {
        topic: "orders".into(),
        partition: 0,
        offset: n as i64,
        key: None,
        timestamp: time,
        headers: Vec::new(),
        value: Json::parse(&format!(
            r#"{{"type":"OrderPlaced","eventId":"ev-{n}","occurredAt":"{}","orderId":"ord-{n:07}","total":{},"customer":{{"id":"c-{n}"}}}}"#,
            scenario::iso(time),
            100 + n % 2000
        ))
        .expect("valid JSON")
        .into_owned(),
    }
}

/// `base`: when the first order was placed. The restart measurement needs the state of a daemon
/// that was running a moment ago (every deadline still ahead of the wall clock); otherwise the
/// restarted daemon would first signal a breach for every instance.
fn open_instances(instances: usize, base: i64) -> Engine {
    let mut engine = Engine::new(flows(), EngineConfig::default());
    let mut outputs = Vec::new();
    for n in 0..instances {
        engine.handle(Input::RecordReceived(&order_placed(n, base)), &mut outputs);
        outputs.clear();
    }
    assert_eq!(engine.open_instances() as usize, instances);
    engine
}

/// Moves the clock `past` ms beyond the earliest deadline; returns the time the engine took
/// and the breaches it signalled.
fn breach_after(engine: &mut Engine, past: i64) -> (Duration, usize) {
    let deadline = engine.next_deadline().expect("deadlines are pending");
    let mut outputs = Vec::new();
    let started = Instant::now();
    engine.handle(Input::ClockAdvanced(deadline + past), &mut outputs);
    let took = started.elapsed();
    let breaches = outputs
        .iter()
        .filter(|output| matches!(output, Output::Emit(signal) if signal.kind == SignalKind::Breached))
        .count();
    (took, breaches)
}

fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter_map(|entry| entry.metadata().ok())
                .map(|metadata| metadata.len())
                .sum()
        })
        .unwrap_or(0)
}

/// A daemon on `state` against a mock cluster holding one record: seconds from `daemon::start`
/// to partitions assigned and to the record consumed.
fn daemon_start_to_consuming(state: &Path) -> (f64, f64, u64) {
    let topics = Engine::new(flows(), EngineConfig::default()).topics().to_vec();
    let cluster = MockCluster::new(1).expect("mock cluster starts");
    for topic in &topics {
        cluster.create_topic(topic, 1, 1).expect("topic created");
    }
    let brokers = cluster.bootstrap_servers();
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .create()
        .expect("producer");
    let payload = r#"{"type":"Heartbeat"}"#;
    producer
        .send(BaseRecord::<str, str>::to("orders").payload(payload).timestamp(scenario::BASE))
        .map_err(|(error, _)| error)
        .expect("send");
    producer.flush(Duration::from_secs(10)).expect("flush");
    let env: HashMap<String, String> = [
        ("FLOWWATCH__KAFKA__BROKERS", brokers.as_str()),
        ("FLOWWATCH__KAFKA__GROUP_ID", "bench-restart"),
        ("FLOWWATCH__FLOWS__DIR", concat!(env!("CARGO_MANIFEST_DIR"), "/flows")),
        ("FLOWWATCH__STATE__DIR", state.to_str().expect("UTF-8 path")),
    ]
    .iter()
    .map(|(name, value)| (name.to_string(), value.to_string()))
    .collect();
    let config = config::load(None, &env).expect("benchmark configuration is valid");
    let cancel = CancellationToken::new();
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let started = Instant::now();
    let running = daemon::start(config, flows(), clock, cancel.clone()).expect("daemon starts");
    let status = running.status.clone();
    let mut assigned = None;
    while status.records_read.load(Ordering::Relaxed) == 0 {
        if assigned.is_none() && status.partitions_assigned.load(Ordering::Relaxed) > 0 {
            assigned = Some(started.elapsed().as_secs_f64());
        }
        assert!(started.elapsed() < Duration::from_secs(300), "the daemon never consumed");
        std::thread::sleep(Duration::from_millis(1));
    }
    let consuming = started.elapsed().as_secs_f64();
    let restored = running
        .summary
        .split("state: ")
        .nth(1)
        .and_then(|rest| rest.split('(').nth(1))
        .and_then(|rest| rest.split(' ').next())
        .and_then(|count| count.parse().ok())
        .unwrap_or(0);
    cancel.cancel();
    running.join().expect("clean shutdown");
    (assigned.unwrap_or(consuming), consuming, restored)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|arg| arg == "--quick");
    let instances: usize = args
        .iter()
        .position(|arg| arg == "--instances")
        .and_then(|i| args.get(i + 1)?.parse().ok())
        .unwrap_or(if quick { 20_000 } else { 1_000_000 });

    // Timer queue.
    let ops = if quick { 100_000 } else { 1_000_000 };
    for (recent, label) in [(false, "random deadlines"), (true, "deadlines after all others")] {
        let small = timer_op_nanos(1_000, ops, recent);
        let large = timer_op_nanos(instances, ops, recent);
        println!(
            "timer reschedule (cancel + insert), {label}: {small:.0} ns with 1 k pending, {large:.0} ns with {instances} pending; ratio {:.2} (log2 ratio of the sizes {:.2})",
            large / small,
            (instances as f64).log2() / 1_000f64.log2()
        );
    }

    // Breach delay with N instances open.
    let started = Instant::now();
    // The orders were placed between 5 and 1 minutes ago (1 M orders).
    let base = SystemClock.now() - 300_000;
    let mut engine = open_instances(instances, base);
    println!(
        "{instances} open instances built in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let (took, breaches) = breach_after(&mut engine, 1);
    println!(
        "clock 1 ms past the earliest deadline: {breaches} breach signalled in {:.1} us",
        took.as_secs_f64() * 1e6
    );
    let (took, breaches) = breach_after(&mut engine, 1_000);
    println!(
        "clock 1 s past the next deadline: {breaches} breaches signalled in {:.1} ms",
        took.as_secs_f64() * 1e3
    );
    let open = engine.open_instances();

    // Restart.
    let state = tempfile::tempdir().expect("temporary state directory");
    let started = Instant::now();
    {
        let mut store = store::open(Backend::Redb, state.path()).expect("store opens");
        let mut outbox = Outbox::restore(Vec::new());
        let mut slots = checkpoint::StoredKeys::default();
        let written = checkpoint::write(&mut *store, &mut engine, &[], &mut outbox, &mut slots, scenario::BASE)
            .expect("checkpoint written");
        println!(
            "first checkpoint of {open} open instances (every instance changed): {} parts, {:.1} MB, {:.1} MB on disk, written in {:.1} s",
            written.parts_written,
            written.bytes as f64 / 1e6,
            dir_bytes(state.path()) as f64 / 1e6,
            started.elapsed().as_secs_f64()
        );
        // A later checkpoint writes only what changed: here the instances the breaches touched.
        let (_, breaches) = breach_after(&mut engine, 1_000);
        let started = Instant::now();
        let written = checkpoint::write(&mut *store, &mut engine, &[], &mut outbox, &mut slots, scenario::BASE)
            .expect("checkpoint written");
        println!(
            "next checkpoint after {breaches} breaches: {} parts, {:.3} MB, written in {:.3} s",
            written.parts_written,
            written.bytes as f64 / 1e6,
            started.elapsed().as_secs_f64()
        );
    }
    drop(engine);
    let started = Instant::now();
    let store = store::open(Backend::Redb, state.path()).expect("store opens");
    let opened = started.elapsed().as_secs_f64();
    let restored = checkpoint::load(&*store).expect("checkpoint loads");
    let loaded = started.elapsed().as_secs_f64();
    let engine = Engine::restore(
        flows(),
        EngineConfig::default(),
        restored.snapshot.expect("a snapshot"),
    )
    .expect("state restores");
    let ready = started.elapsed().as_secs_f64();
    assert_eq!(engine.open_instances(), open);
    println!(
        "restore: store open {opened:.2} s, checkpoint read and parsed {:.2} s, engine rebuilt {:.2} s; total {ready:.2} s",
        loaded - opened,
        ready - loaded
    );
    drop(engine);
    drop(store);
    let (assigned, consuming, restored) = daemon_start_to_consuming(state.path());
    assert_eq!(restored, open, "the daemon restored every open instance");
    println!(
        "daemon start with {restored} open instances: partitions assigned after {assigned:.2} s, consuming after {consuming:.2} s (target <= 5 s)"
    );
}
