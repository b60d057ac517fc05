//! Live benchmark (issue: fast at scale). In one process, on librdkafka's in-process mock
//! cluster, the generated stream of the scenario kind (see `support/scenario.rs`) is produced
//! to the flows' topics (many partitions each: the mock keeps at most 5 MiB or 100 k records
//! per partition and drops older ones beyond that), then read twice from fresh consumer groups:
//!
//! - the baseline: a bare rdkafka `BaseConsumer` that deserialises each payload into a typed
//!   serde struct of the scenario's events and counts;
//! - the daemon (`daemon::start`, default redb store in a temporary directory, default
//!   checkpointing, signals published to the mock), until its `records_done` counter reaches
//!   the number of records produced.
//!
//! Both rates are taken from the first record read to the last one finished with, so the
//! consumer-group join (the same for both) is left out. Event times lie in the past, so the
//! daemon's live merge releases every record as soon as all partitions have been read past it.
//! Prints both rates and their ratio (target >= 0.7), the CPU time per record of the whole
//! process over each span, and that of the daemon's worker and reader threads (from the
//! kernel's per-thread accounting: what the cores spend per record, less sensitive to other
//! load than the rates); asserts nothing about time.
//! `--quick` (CI): 20 k records; default 200 k; `--records N`, `--partitions N`, `--runs N`;
//! `--no-publish` disables the daemon's output topics (a diagnostic: what publishing costs);
//! `--no-history` sets `tracking.history_limit` to 0 (a diagnostic: what the audit trail costs);
//! `--linger-ms N` is the producer's linger when the stream is produced (1000: large batches);
//! `--stream FILE` measures a given stream (replay input format) instead of the generated one,
//! `--flows PATH` with other flows than the shipped ones. A given stream whose event times run
//! later than a minute ago is measured with the daemon's clock starting a minute after its
//! latest event time (at the wall clock's pace), as if it had been recorded in the past.

// A benchmark measures wall-clock time by definition.
#![allow(clippy::disallowed_methods)]

#[path = "support/given.rs"]
mod given;
#[path = "support/scenario.rs"]
#[allow(dead_code)]
mod scenario;

use flowwatch::clock::{Clock, ScaledClock, SystemClock};
use flowwatch::config;
use flowwatch::daemon;
use flowwatch::engine::{Engine, EngineConfig};
use flowwatch::replay::decode::decode_line;
use flowwatch::time::{self, Millis};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use serde::Deserialize;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// The mock's per-partition limits (librdkafka `rdkafka_mock.c`): beyond them it drops the
/// oldest records, which the benchmark must never let happen to its input.
const MOCK_PARTITION_BYTES: usize = 5 * 1024 * 1024;
const MOCK_PARTITION_RECORDS: usize = 100_000;
/// A run that has not finished after this long is reported as stuck.
const LIMIT: Duration = Duration::from_secs(900);
/// The daemon's engine thread (`daemon::start` names it).
const WORKER_THREAD: &str = "flowwatch-worker";
/// The worker's reader thread: polls, decodes and matches.
const READER_THREAD: &str = "flowwatch-reader";

/// A reference inside an event (`order.id`, `customer.id`).
#[derive(Deserialize)]
#[allow(dead_code)]
struct Ref {
    id: Option<String>,
}

/// `subject` of a fraud screening.
#[derive(Deserialize)]
#[allow(dead_code)]
#[serde(rename_all = "camelCase")]
struct Subject {
    order_id: Option<String>,
}

/// `address` of a registration.
#[derive(Deserialize)]
#[allow(dead_code)]
struct Address {
    street: Option<String>,
}

/// Every field the scenario's events carry, typed: what a hand-written consumer of these
/// topics would deserialise.
#[derive(Deserialize)]
#[allow(dead_code)]
#[serde(rename_all = "camelCase")]
struct Event {
    event_id: Option<String>,
    occurred_at: Option<String>,
    at: Option<String>,
    #[serde(rename = "type")]
    type_name: Option<String>,
    event_type: Option<String>,
    kind: Option<String>,
    order_id: Option<String>,
    payment_id: Option<String>,
    customer_id: Option<String>,
    total: Option<f64>,
    amount: Option<f64>,
    score: Option<f64>,
    approved: Option<bool>,
    outcome: Option<String>,
    result: Option<String>,
    sku: Option<String>,
    order: Option<Ref>,
    customer: Option<Ref>,
    subject: Option<Subject>,
    address: Option<Address>,
}

/// The allocator the shipped binary uses (`src/main.rs`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// What the set-up needs to know of a given stream, from one pass over its lines.
struct Survey {
    /// The partitions per topic that keep every partition a fifth below the mock's limits, at
    /// least 16.
    partitions: usize,
    /// Where the daemon's clock starts when the latest event time (as the flows read it) is
    /// less than a minute before now: a minute after it, so that the live merge holds no record
    /// for the wall clock (the allowed lateness is 5 s by default). `None`: the system clock.
    clock_from: Option<Millis>,
}

fn survey(lines: &[String], engine: &Engine) -> Survey {
    const MARGIN: Millis = 60_000;
    let mut per_topic: HashMap<String, (usize, usize)> = HashMap::new();
    let mut latest: Option<Millis> = None;
    for (index, line) in lines.iter().enumerate() {
        if let Ok(record) = decode_line(line, index as u64 + 1) {
            let time = engine.record_time(&record);
            latest = Some(latest.map_or(time, |latest| latest.max(time)));
            let size = per_topic.entry(record.topic).or_default();
            size.0 += line.len() + 100;
            size.1 += 1;
        }
    }
    let partitions = per_topic
        .values()
        .map(|&(bytes, records)| {
            (bytes * 5 / 4 / MOCK_PARTITION_BYTES).max(records * 5 / 4 / MOCK_PARTITION_RECORDS) + 1
        })
        .fold(16, usize::max);
    let clock_from = latest
        .map(|latest| latest.saturating_add(MARGIN))
        .filter(|start| *start > SystemClock.now());
    Survey { partitions, clock_from }
}

/// What [`produce`] put on the mock.
struct Produced {
    records: usize,
    /// Lines on topics no flow reads (not produced: neither side would read them).
    skipped: usize,
    /// Of the records produced, those whose line did not decode (their payload, or the whole
    /// line, produced as it is: the daemon dead-letters them, the baseline fails to
    /// deserialise them).
    undecodable: usize,
}

/// Produces the stream, each topic's records round-robin over its partitions (each partition
/// keeps time order). Returns how many records were produced.
///
/// In large batches (a second's linger: up to librdkafka's 10,000 records or 1 MB each): the
/// mock broker answers a fetch with one stored batch per partition ("FIXME: Multiple
/// messageSets ?" in `rdkafka_mock_handlers.c`), where a broker returns up to
/// `max.partition.fetch.bytes` (1 MiB). With batches of a 20 ms linger the daemon, whose live
/// merge pauses the partitions that run ahead in event time, read a few small batches per
/// round trip and idled most of the measured span (see BENCHMARKS.md).
fn produce(
    brokers: &str,
    lines: impl Iterator<Item = String>,
    topics: &[String],
    partitions: i32,
    linger_ms: usize,
) -> Produced {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("linger.ms", linger_ms.to_string())
        .set("queue.buffering.max.messages", "1000000")
        .create()
        .expect("producer");
    let mut next: HashMap<String, i32> = HashMap::new();
    let mut bytes: HashMap<(String, i32), (usize, usize)> = HashMap::new();
    let mut produced = Produced { records: 0, skipped: 0, undecodable: 0 };
    for (index, line) in lines.enumerate() {
        // A malformed record stays malformed on the wire: its payload is not JSON.
        let (topic, payload, timestamp, key) = match decode_line(&line, index as u64 + 1) {
            Ok(record) if !topics.contains(&record.topic) => {
                produced.skipped += 1;
                continue;
            }
            Ok(record) => (
                record.topic,
                serde_json::to_vec(&record.value).expect("a JSON value serialises"),
                record.timestamp,
                record.key,
            ),
            Err(_) => {
                // A payload that is not JSON goes on the wire as it is, on its line's topic
                // (the first flow topic when the line names none the flows read).
                produced.undecodable += 1;
                let envelope: Option<serde_json::Value> = serde_json::from_str(&line).ok();
                let field = |name: &str| {
                    envelope.as_ref()?.get(name)?.as_str().map(str::to_string)
                };
                let topic = field("topic")
                    .filter(|topic| topics.contains(topic))
                    .unwrap_or_else(|| topics[0].clone());
                let payload = field("value")
                    .or_else(|| field("payload"))
                    .map(String::into_bytes)
                    .unwrap_or_else(|| line.into_bytes());
                (topic, payload, scenario::BASE, None)
            }
        };
        produced.records += 1;
        let counter = next.entry(topic.clone()).or_insert(0);
        let partition = *counter % partitions;
        *counter += 1;
        let size = bytes.entry((topic.clone(), partition)).or_default();
        size.0 += payload.len() + 100;
        size.1 += 1;
        assert!(
            size.0 < MOCK_PARTITION_BYTES && size.1 < MOCK_PARTITION_RECORDS,
            "{topic}/{partition} would exceed the mock's partition limit: use more --partitions"
        );
        loop {
            let mut record: BaseRecord<'_, str, Vec<u8>> = BaseRecord::to(&topic)
                .partition(partition)
                .payload(&payload)
                .timestamp(timestamp);
            if let Some(key) = &key {
                record = record.key(key.as_str());
            }
            match producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                    producer.poll(Duration::from_millis(10));
                }
                Err((error, _)) => panic!("produce: {error}"),
            }
        }
        producer.poll(Duration::ZERO);
    }
    producer.flush(Duration::from_secs(60)).expect("flush");
    produced
}

/// What one baseline run measured.
struct BaselineRun {
    rate: f64,
    /// The whole process's CPU time per record over the same span, µs.
    cpu_us: f64,
}

/// The baseline: records/s of a bare consumer deserialising each payload into [`Event`].
fn baseline(
    brokers: &str,
    topics: &[String],
    records: usize,
    group: &str,
    expect_typed: usize,
) -> BaselineRun {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", group)
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        // The fetch settings the daemon uses, so the two read alike.
        .set("fetch.queue.backoff.ms", "10")
        .set("fetch.wait.max.ms", "100")
        .create()
        .expect("consumer");
    let topic_refs: Vec<&str> = topics.iter().map(String::as_str).collect();
    consumer.subscribe(&topic_refs).expect("subscribe");
    let began = Instant::now();
    let mut first = None;
    let mut cpu_at_first = None;
    let (mut read, mut typed) = (0usize, 0usize);
    while read < records {
        assert!(began.elapsed() < LIMIT, "baseline stuck at {read} of {records} records");
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(message)) => {
                if first.is_none() {
                    first = Some(Instant::now());
                    cpu_at_first = process_cpu_ns();
                }
                read += 1;
                if let Some(payload) = message.payload() {
                    if serde_json::from_slice::<Event>(payload).is_ok() {
                        typed += 1;
                    }
                }
            }
            Some(Err(error)) => eprintln!("baseline consumer: {error}"),
            None => {}
        }
    }
    let seconds = first.map_or(f64::NAN, |first| first.elapsed().as_secs_f64());
    let cpu_us = per_record_us(cpu_at_first, process_cpu_ns(), records);
    assert!(typed >= expect_typed, "most payloads deserialise ({typed} of {read})");
    BaselineRun {
        rate: records as f64 / seconds,
        cpu_us,
    }
}

/// CPU time between two readings, per record, µs.
fn per_record_us(then: Option<u64>, now: Option<u64>, records: usize) -> f64 {
    match (then, now) {
        (Some(then), Some(now)) => now.saturating_sub(then) as f64 / 1000.0 / records as f64,
        _ => f64::NAN,
    }
}

/// CPU time (on-CPU nanoseconds, `/proc/self/task/*/schedstat`) of this process's threads
/// named `name` (the kernel keeps the first 15 bytes of a name), summed; `None` where the
/// kernel does not provide it.
fn thread_cpu_ns(name: &str) -> Option<u64> {
    tasks_cpu_ns(Some(name))
}

/// CPU time of every thread of this process (the mock broker's included, which serves the
/// baseline and the daemon alike), as [`thread_cpu_ns`].
fn process_cpu_ns() -> Option<u64> {
    tasks_cpu_ns(None)
}

/// CPU time of this process's threads by name (`--threads`).
fn cpu_ns_by_thread() -> HashMap<String, u64> {
    let mut threads: HashMap<String, u64> = HashMap::new();
    for task in std::fs::read_dir("/proc/self/task").into_iter().flatten().flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        let ns = std::fs::read_to_string(task.path().join("schedstat"))
            .ok()
            .and_then(|stat| stat.split_whitespace().next()?.parse::<u64>().ok())
            .unwrap_or(0);
        *threads.entry(comm.trim_end().to_string()).or_default() += ns;
    }
    threads
}

fn tasks_cpu_ns(name: Option<&str>) -> Option<u64> {
    let name = name.map(|name| &name.as_bytes()[..name.len().min(15)]);
    let mut total = None;
    for task in std::fs::read_dir("/proc/self/task").ok()?.flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if name.is_some_and(|name| comm.trim_end().as_bytes() != name) {
            continue;
        }
        let stat = std::fs::read_to_string(task.path().join("schedstat")).ok()?;
        let ns: u64 = stat.split_whitespace().next()?.parse().ok()?;
        total = Some(total.unwrap_or(0) + ns);
    }
    total
}

/// What one daemon run measured.
struct DaemonRun {
    rate: f64,
    /// The same up to the moment the outbox was empty as well: every signal of the stream
    /// acknowledged by the broker.
    drained_rate: f64,
    checkpoints: u64,
    /// The worker thread's CPU time per record over the same span, µs (less sensitive to
    /// other load on the machine than the rate).
    worker_us: f64,
    /// The same for its reader thread, and for the whole process.
    reader_us: f64,
    cpu_us: f64,
    /// Seconds from the first record read to the first one finished with (the live merge
    /// holds records until every partition has been read past them), and the whole span.
    first_done: f64,
    /// Records read when the first one was finished with.
    read_at_first_done: u64,
    seconds: f64,
    /// The most outbox entries not yet acknowledged seen during the span, and when the last
    /// record had been applied.
    outbox_most: u64,
    outbox_at_applied: u64,
}

/// The daemon's diagnostics switches.
#[derive(Clone, Copy)]
struct Options {
    /// Signals published (`--no-publish` disables every output topic).
    publish: bool,
    /// The audit trail kept (`--no-history`: `tracking.history_limit` 0).
    history: bool,
    /// Progress printed every 100 ms (`--timeline`).
    timeline: bool,
    /// Every thread's CPU time per record over the span printed (`--threads`).
    threads: bool,
    /// The daemon's clock starts here instead of following the system clock (see
    /// [`Survey::clock_from`]).
    clock_from: Option<Millis>,
}

/// The daemon: records/s from its first record read to its `records_done` reaching `records`.
fn daemon_rate(
    brokers: &str,
    records: usize,
    group: &str,
    flows_path: &Path,
    options: &Options,
) -> DaemonRun {
    let Options { publish, history, timeline, threads, clock_from } = *options;
    let state = tempfile::tempdir().expect("temporary state directory");
    let mut env: HashMap<String, String> = [
        ("FLOWWATCH__KAFKA__BROKERS", brokers),
        ("FLOWWATCH__KAFKA__GROUP_ID", group),
        ("FLOWWATCH__FLOWS__DIR", flows_path.to_str().expect("UTF-8 path")),
        ("FLOWWATCH__STATE__DIR", state.path().to_str().expect("UTF-8 path")),
    ]
    .iter()
    .map(|(name, value)| (name.to_string(), value.to_string()))
    .collect();
    if !publish {
        // Diagnostic (`--no-publish`): every output topic disabled, to see what publishing costs.
        for topic in ["SIGNALS_TOPIC", "ALERTS_TOPIC", "DEAD_LETTER_TOPIC"] {
            env.insert(format!("FLOWWATCH__OUTPUTS__{topic}"), String::new());
        }
    }
    // librdkafka properties for the daemon from this process's environment (diagnostics).
    env.extend(std::env::vars().filter(|(name, _)| name.starts_with("FLOWWATCH_KAFKA_PROPERTY_")));
    if !history {
        // Diagnostic (`--no-history`): no audit trail, as in a replay (the engine otherwise
        // renders each record's payload as JSON for the instance history).
        env.insert("FLOWWATCH__TRACKING__HISTORY_LIMIT".to_string(), "0".to_string());
    }
    let config = config::load(None, &env).expect("benchmark configuration is valid");
    assert_eq!(config.state.backend, "redb", "the default store");
    let cancel = CancellationToken::new();
    let clock: Arc<dyn Clock> = match clock_from {
        Some(origin) => Arc::new(ScaledClock::new(origin, 1.0)),
        None => Arc::new(SystemClock),
    };
    let running = daemon::start(config, given::flows(flows_path), clock, cancel.clone()).expect("daemon starts");
    let status = running.status.clone();
    let began = Instant::now();
    let mut first = None;
    let mut first_done = None;
    let mut read_at_first_done = 0;
    let mut last_line = Instant::now();
    let mut outbox_most = 0;
    let mut applied = None;
    let mut outbox_at_applied = 0;
    let mut cpu_at_first = (None, None, None);
    let mut by_thread_at_first = HashMap::new();
    loop {
        // Acquire: the outbox length read after it counts these records' signals.
        let done = status.records_done.load(Ordering::Acquire) as usize;
        if first.is_none() && status.records_read.load(Ordering::Relaxed) > 0 {
            first = Some(Instant::now());
            cpu_at_first = (thread_cpu_ns(WORKER_THREAD), thread_cpu_ns(READER_THREAD), process_cpu_ns());
            by_thread_at_first = cpu_ns_by_thread();
        }
        if first_done.is_none() && done > 0 {
            first_done = first.map(|first: Instant| first.elapsed());
            read_at_first_done = status.records_read.load(Ordering::Relaxed);
        }
        outbox_most = outbox_most.max(status.outbox_len.load(Ordering::Relaxed));
        if timeline && first.is_some() && last_line.elapsed() >= Duration::from_millis(100) {
            last_line = Instant::now();
            println!(
                "       {:6.3} s: {} read, {} applied, outbox {} (as of the worker's last turn), {} checkpoints",
                first.map_or(0.0, |first: Instant| first.elapsed().as_secs_f64()),
                status.records_read.load(Ordering::Relaxed),
                done,
                status.outbox_len.load(Ordering::Relaxed),
                status.checkpoints.load(Ordering::Relaxed),
            );
        }
        if done >= records && applied.is_none() {
            applied = first.map(|first: Instant| first.elapsed());
            outbox_at_applied = status.outbox_len.load(Ordering::Relaxed);
        }
        if applied.is_some() && status.outbox_len.load(Ordering::Relaxed) == 0 {
            break;
        }
        assert!(
            began.elapsed() < LIMIT,
            "daemon stuck at {done} of {records} records, {} signals unacknowledged",
            status.outbox_len.load(Ordering::Relaxed)
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    let drained = first.map_or(f64::NAN, |first| first.elapsed().as_secs_f64());
    let seconds = applied.map_or(f64::NAN, |applied| applied.as_secs_f64());
    let worker_us = per_record_us(cpu_at_first.0, thread_cpu_ns(WORKER_THREAD), records);
    let reader_us = per_record_us(cpu_at_first.1, thread_cpu_ns(READER_THREAD), records);
    let cpu_us = per_record_us(cpu_at_first.2, process_cpu_ns(), records);
    if threads {
        // Threads by name (librdkafka's of all clients share names), busiest first.
        let mut spent: Vec<(String, u64)> = cpu_ns_by_thread()
            .into_iter()
            .map(|(name, ns)| {
                let then = by_thread_at_first.get(&name).copied().unwrap_or(0);
                (name, ns.saturating_sub(then))
            })
            .filter(|(_, ns)| *ns > 0)
            .collect();
        spent.sort_by_key(|(_, ns)| std::cmp::Reverse(*ns));
        for (name, ns) in spent {
            println!("       thread {name:<16} {:.2} µs CPU per record", ns as f64 / 1000.0 / records as f64);
        }
    }
    let checkpoints = status.checkpoints.load(Ordering::Relaxed);
    cancel.cancel();
    running.join().expect("clean shutdown");
    DaemonRun {
        rate: records as f64 / seconds,
        drained_rate: records as f64 / drained,
        checkpoints,
        worker_us,
        reader_us,
        cpu_us,
        first_done: first_done.map_or(f64::NAN, |wait| wait.as_secs_f64()),
        read_at_first_done,
        seconds,
        outbox_most,
        outbox_at_applied,
    }
}

fn main() {
    if std::env::var_os("RUST_LOG").is_some() {
        // Diagnostics: the daemon's logs (and librdkafka's, with FLOWWATCH_KAFKA_PROPERTY_DEBUG).
        flowwatch::logging::init(false, "warn");
    }
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|arg| arg == "--quick");
    let text_of = |flag: &str| {
        args.iter()
            .position(|arg| arg == flag)
            .and_then(|i| args.get(i + 1).cloned())
    };
    let value_of = |flag: &str| text_of(flag).and_then(|text| text.parse::<usize>().ok());
    let stream = text_of("--stream").map(PathBuf::from);
    let flows_path = text_of("--flows").map(PathBuf::from).unwrap_or_else(given::shipped_flows);
    let records = value_of("--records").unwrap_or(if quick { 20_000 } else { 200_000 });
    let engine = Engine::new(given::flows(&flows_path), EngineConfig::default());
    let topics = engine.topics().to_vec();
    // A given stream is read once; the generated one is made when produced.
    let given_lines: Option<Vec<String>> = stream.as_deref().map(|path| given::lines(path).collect());
    let survey = given_lines.as_deref().map(|lines| survey(lines, &engine));
    // Enough partitions that no topic reaches the mock's per-partition limits.
    let partitions = value_of("--partitions")
        .unwrap_or_else(|| survey.as_ref().map_or(16, |survey| survey.partitions)) as i32;
    let runs = value_of("--runs").unwrap_or(if quick { 1 } else { 2 });
    let linger_ms = value_of("--linger-ms").unwrap_or(1000);
    let options = Options {
        publish: !args.iter().any(|arg| arg == "--no-publish"),
        history: !args.iter().any(|arg| arg == "--no-history"),
        timeline: args.iter().any(|arg| arg == "--timeline"),
        threads: args.iter().any(|arg| arg == "--threads"),
        clock_from: survey.and_then(|survey| survey.clock_from),
    };
    if let Some(origin) = options.clock_from {
        println!(
            "the stream's event times run later than a minute ago: the daemon's clock starts at {} (a minute after the latest) and runs at the wall clock's pace",
            time::format_rfc3339(origin)
        );
    }

    let cluster = MockCluster::new(1).expect("mock cluster starts");
    for topic in &topics {
        cluster.create_topic(topic, partitions, 1).expect("topic created");
    }
    for topic in ["flowwatch.signals", "flowwatch.alerts", "flowwatch.dead-letter"] {
        cluster.create_topic(topic, 4, 1).expect("topic created");
    }
    let brokers = cluster.bootstrap_servers();
    let lines: Box<dyn Iterator<Item = String>> = match given_lines {
        Some(lines) => Box::new(lines.into_iter()),
        None => Box::new(scenario::lines(records).into_iter().map(|(_, line)| line)),
    };
    let produced = produce(&brokers, lines, &topics, partitions, linger_ms);
    println!(
        "stream: {} records on {} topics x {partitions} partitions (mock cluster, producer linger.ms {linger_ms}){}",
        produced.records,
        topics.len(),
        match &stream {
            Some(path) => format!(
                ", from {} ({} lines on topics no flow reads left out, {} undecodable lines produced as they are)",
                path.display(),
                produced.skipped,
                produced.undecodable
            ),
            None => String::new(),
        }
    );
    // The generated stream's payloads are the typed struct's; a given stream's may have any
    // shape (fields of other types fail to deserialise, which the baseline only counts).
    let expect_typed = if stream.is_none() { produced.records * 9 / 10 } else { 0 };
    let produced = produced.records;

    let (mut base_best, mut daemon_best, mut checkpoints) = (0f64, 0f64, 0);
    let mut drained_best = 0f64;
    let (mut worker_best, mut reader_best) = (f64::INFINITY, f64::INFINITY);
    let (mut base_cpu_best, mut daemon_cpu_best) = (f64::INFINITY, f64::INFINITY);
    for run in 0..runs {
        let base = baseline(
            &brokers,
            &topics,
            produced,
            &format!("bench-baseline-{run}"),
            expect_typed,
        );
        let group = format!("bench-daemon-{run}");
        let daemon = daemon_rate(&brokers, produced, &group, &flows_path, &options);
        println!(
            "run {}: baseline {:.0} records/s ({:.2} µs CPU per record), daemon {:.0} records/s ({} checkpoints; {:.2} µs CPU per record: worker thread {:.2}, reader thread {:.2})",
            run + 1,
            base.rate,
            base.cpu_us,
            daemon.rate,
            daemon.checkpoints,
            daemon.cpu_us,
            daemon.worker_us,
            daemon.reader_us
        );
        println!(
            "       daemon: first record finished {:.3} s into the {:.3} s span ({} records read by then); outbox (unacknowledged) at most {}, {} when the last record was applied; {:.0} records/s until every signal was acknowledged",
            daemon.first_done, daemon.seconds, daemon.read_at_first_done, daemon.outbox_most, daemon.outbox_at_applied, daemon.drained_rate
        );
        base_best = base_best.max(base.rate);
        base_cpu_best = base_cpu_best.min(base.cpu_us);
        worker_best = worker_best.min(daemon.worker_us);
        reader_best = reader_best.min(daemon.reader_us);
        daemon_cpu_best = daemon_cpu_best.min(daemon.cpu_us);
        if daemon.rate > daemon_best {
            daemon_best = daemon.rate;
            checkpoints = daemon.checkpoints;
        }
        drained_best = drained_best.max(daemon.drained_rate);
    }
    println!("baseline (typed serde): {base_best:>10.0} records/s, {base_cpu_best:.2} µs CPU per record (process, least of the runs)");
    println!("daemon (redb, default): {daemon_best:>10.0} records/s ({checkpoints} checkpoints), {daemon_cpu_best:.2} µs CPU per record (process, least of the runs)");
    println!("daemon, signals too:    {drained_best:>10.0} records/s (until every signal was acknowledged)");
    println!("daemon threads:         worker {worker_best:.2} µs, reader {reader_best:.2} µs CPU per record (least of the runs)");
    println!(
        "daemon / baseline:      {:>10.2}   (target >= 0.70; {:.2} until every signal was acknowledged)",
        daemon_best / base_best,
        drained_best / base_best
    );
}
