//! End-to-end test against a real Kafka-compatible broker process (tansu), run by
//! `scripts/e2e-tansu.sh`, which starts the broker and sets `FLOWWATCH_E2E_BROKERS`. This is a
//! test binary of its own (`test = false` in Cargo.toml), so `cargo test` does not need a
//! broker; run without the variable it fails and says how to run it.
//!
//! The held-out check of the daemon issue: the topics are created through the admin API with
//! several partitions, `flowwatch simulate` produces a few thousand simulated instances with
//! their event timestamps (and its faults, malformed records included), the records actually
//! in the topics are read back with their partitions and offsets, and `flowwatch run` (a child
//! process configured by environment variables, redb state in a temporary directory) tracks
//! them until quiet. The signals topic must then hold exactly the signals a time-sorted replay
//! of those records gives (same instances, outcomes, breaches and deadlines, no false breach),
//! and the dead-letter topic exactly the invalid records, with their reason headers.
//!
//! `restart.rs` restarts a broker on persistent storage under the daemon; `security.rs` runs it
//! against a broker that requires TLS (`tls_proxy.rs`) and SASL/SCRAM; `tansu.rs` runs the
//! broker process (also used by the kill -9 loop against tansu in `tests/torture`).

// The harness bounds its waits on a real broker and real processes by the wall clock (never
// asserting on durations); kafka_support, shared with tests/it, matches on one pattern.
#![allow(clippy::disallowed_methods, clippy::single_match)]

#[allow(dead_code)]
#[path = "../it/kafka_support.rs"]
mod kafka_support;
mod restart;
mod security;
mod tansu;
mod tls_proxy;

use flowwatch::config;
use flowwatch::daemon::{self, kafka::Decoded};
use flowwatch::engine::{Engine, EngineConfig, Input, Output};
use flowwatch::record::Record;
use kafka_support::{replay_sorted, root, shipped_flows, TempDir};
use tansu::create_topics;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{Offset, TopicPartitionList};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const ENV_BROKERS: &str = "FLOWWATCH_E2E_BROKERS";
const INPUT_PARTITIONS: i32 = 4;
const OUTPUT_PARTITIONS: i32 = 2;
const SIGNALS: &str = "flowwatch.signals";
const DEAD_LETTER: &str = "flowwatch.dead-letter";
/// Topics `flowwatch simulate` writes besides the flows' own (the legacy topics of the
/// `wrong_topic` fault) and the command topics the flows' actions publish to.
/// (tansu does not auto-create topics: a missing action topic would block the outbox).
const OTHER_TOPICS: [&str; 7] = [
    "orders-legacy",
    "customer-events-legacy",
    "payment-commands",
    "check-commands",
    "customer-commands",
    "carrier-commands",
    "customer-service-tasks",
];
/// The simulation: 2 simulated hours from a fixed past start, 3000 instances, default faults.
const SIM_SEED: &str = "20260101";
const SIM_START: &str = "2026-01-01T00:00:00Z";
const SIM_DURATION: &str = "2h";
const SIM_SPEED: &str = "1800";
/// Instances per second of wall-clock time: 2 simulated hours at speed 1800 take 4 s.
const SIM_RATE: &str = "750";

fn brokers() -> String {
    match std::env::var(ENV_BROKERS) {
        Ok(brokers) if !brokers.trim().is_empty() => brokers,
        _ => panic!(
            "{ENV_BROKERS} is not set: this end-to-end test needs a real broker. Run \
             scripts/e2e-tansu.sh, which installs and starts tansu and runs this test."
        ),
    }
}

/// Runs a child to completion within `limit`, killing it past that.
fn wait_bounded(child: &mut Child, limit: Duration, what: &str) -> std::process::ExitStatus {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Runs `flowwatch simulate` (`--seed`, `--start`, `--duration`); returns the number of records it says it produced.
fn simulate(brokers: &str, seed: &str, start: &str, duration: &str) -> usize {
    let mut child = Command::new(env!("CARGO_BIN_EXE_flowwatch"))
        .args(["simulate", "--brokers", brokers, "--seed", seed, "--start", start])
        .args(["--duration", duration, "--speed", SIM_SPEED, "--rate", SIM_RATE])
        .args(["--partitions", &INPUT_PARTITIONS.to_string(), "--no-react"])
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("flowwatch simulate starts");
    let mut stderr = child.stderr.take().expect("piped stderr");
    let reading = std::thread::spawn(move || {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut stderr, &mut text).map(|_| text)
    });
    let status = wait_bounded(&mut child, Duration::from_secs(180), "flowwatch simulate");
    let text = reading.join().expect("reader thread").expect("simulate's stderr");
    eprint!("{text}");
    assert!(status.success(), "flowwatch simulate failed: {status}");
    let line = text
        .lines()
        .find(|line| line.starts_with("produced "))
        .expect("flowwatch simulate reports what it produced");
    line.split_whitespace()
        .nth(1)
        .and_then(|count| count.parse().ok())
        .expect("a record count")
}

/// A reader assigned to every partition of `topics` from the beginning, with the high
/// watermarks it must reach. A client whose watermark requests keep timing out for 20 s is
/// replaced by a new one, for up to two minutes: once, right after tansu on SQLite was killed
/// and restarted, one client's requests timed out for a whole minute while other clients'
/// were answered.
fn reader(brokers: &str, topics: &[String]) -> (BaseConsumer, HashMap<(String, i32), i64>) {
    reader_with(brokers, &[], topics)
}

/// [`reader`] with more client `properties` (security settings).
fn reader_with(brokers: &str, properties: &[(&str, &str)], topics: &[String]) -> (BaseConsumer, HashMap<(String, i32), i64>) {
    let group = format!("e2e-reader-{}", std::process::id());
    let topics: Vec<&str> = topics.iter().map(String::as_str).collect();
    let started = Instant::now();
    loop {
        let (consumer, partitions) = kafka_support::assign_from_beginning_with(brokers, properties, &group, 5, &topics);
        match watermarks(&consumer, partitions, Duration::from_secs(20)) {
            Ok(high) => return (consumer, high),
            Err(error) if started.elapsed() < Duration::from_secs(120) => {
                eprintln!("{error}; asking again with a new client");
            }
            Err(error) => panic!("{error}, with new clients for two minutes"),
        }
    }
}

/// The high watermarks of `partitions`, each request asked again until `budget` has passed.
fn watermarks(
    consumer: &BaseConsumer,
    partitions: Vec<(String, i32)>,
    budget: Duration,
) -> Result<HashMap<(String, i32), i64>, String> {
    let deadline = Instant::now() + budget;
    let mut high = HashMap::new();
    for (topic, partition) in partitions {
        let watermark = watermark_until(consumer, &topic, partition, deadline)?;
        high.insert((topic, partition), watermark);
    }
    Ok(high)
}

/// A partition's high watermark. A broker under load (tansu on SQLite, right after a burst of
/// produced records) can miss one metadata request's 10 s: ask again, for up to a minute.
fn high_watermark(consumer: &BaseConsumer, topic: &str, partition: i32) -> i64 {
    watermark_until(consumer, topic, partition, Instant::now() + Duration::from_secs(60))
        .unwrap_or_else(|error| panic!("{error}, for a minute"))
}

/// A partition's high watermark, its request asked again after a failure until `deadline`.
fn watermark_until(
    consumer: &BaseConsumer,
    topic: &str,
    partition: i32,
    deadline: Instant,
) -> Result<i64, String> {
    loop {
        match consumer.fetch_watermarks(topic, partition, Duration::from_secs(10)) {
            Ok((_, high)) => return Ok(high),
            Err(error) if Instant::now() < deadline => {
                eprintln!("watermarks of {topic}/{partition}: {error}; asking again");
                std::thread::sleep(Duration::from_millis(500));
            }
            Err(error) => return Err(format!("watermarks of {topic}/{partition}: {error}")),
        }
    }
}

/// Every record now in `topics`, decoded as the daemon decodes them, with the partition and
/// offset the broker gave them; undecodable ones apart as (topic, partition, offset).
/// Records of `also` are only counted.
fn read_back(brokers: &str, topics: &[String], also: &[String]) -> (Vec<Record<'static>>, Vec<(String, i32, i64)>, usize) {
    let wanted: BTreeSet<&String> = topics.iter().collect();
    let all: Vec<String> = topics.iter().chain(also).cloned().collect();
    let (consumer, mut high) = reader(brokers, &all);
    let mut next: HashMap<(String, i32), i64> = high.keys().map(|place| (place.clone(), 0)).collect();
    let mut records = Vec::new();
    let mut undecodable = Vec::new();
    let started = Instant::now();
    let mut last = Instant::now();
    let mut other = 0usize;
    loop {
        let behind = |next: &HashMap<(String, i32), i64>, high: &HashMap<(String, i32), i64>| {
            high.iter().any(|(place, high)| next.get(place).copied().unwrap_or(0) < *high)
        };
        if !behind(&next, &high) && last.elapsed() > Duration::from_secs(3) {
            // Caught up with the watermarks and nothing came for 3 s: check they have not moved.
            for ((topic, partition), watermark) in high.iter_mut() {
                *watermark = high_watermark(&consumer, topic, *partition);
            }
            if !behind(&next, &high) {
                break;
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "reading the input topics back took over 120 s; at {next:?}, watermarks {high:?}"
        );
        let Some(result) = consumer.poll(Duration::from_millis(100)) else {
            continue;
        };
        last = Instant::now();
        let message = result.expect("consume").detach();
        let place = (message.topic().to_string(), message.partition());
        if !wanted.contains(&place.0) {
            other += 1;
            next.insert(place, message.offset() + 1);
            continue;
        }
        match daemon::kafka::decode(&message, 0) {
            Decoded::Record(record) => records.push(record.into_owned()),
            Decoded::Undecodable { .. } => undecodable.push((place.0.clone(), place.1, message.offset())),
        }
        next.insert(place, message.offset() + 1);
    }
    (records, undecodable, other)
}

/// A published record: its payload and headers.
struct Published {
    payload: Vec<u8>,
    headers: BTreeMap<String, String>,
}

/// Reads `topic` from the beginning until it holds at least `expected` records and nothing
/// more comes for 5 s, or nothing at all for 30 s, or until `limit`, while `daemon` runs.
fn read_until_quiet(brokers: &str, topic: &str, expected: usize, daemon: &mut Child, limit: Duration) -> Vec<Published> {
    read_until_quiet_with(brokers, &[], topic, expected, daemon, limit)
}

/// [`read_until_quiet`] with more client `properties` (security settings).
fn read_until_quiet_with(
    brokers: &str,
    properties: &[(&str, &str)],
    topic: &str,
    expected: usize,
    daemon: &mut Child,
    limit: Duration,
) -> Vec<Published> {
    let (consumer, _) = reader_with(brokers, properties, &[topic.to_string()]);
    let quiet = Duration::from_secs(5);
    let started = Instant::now();
    let mut last = Instant::now();
    let mut published = Vec::new();
    // Short of the expected count, give up once nothing has come for `stalled`.
    let stalled = Duration::from_secs(30);
    while started.elapsed() < limit
        && (published.len() < expected || last.elapsed() < quiet)
        && last.elapsed() < stalled
    {
        if let Some(status) = daemon.try_wait().expect("wait") {
            panic!("flowwatch run exited early: {status}");
        }
        if let Some(result) = consumer.poll(Duration::from_millis(100)) {
            let message = result.expect("consume");
            let headers = message
                .headers()
                .map(|headers| {
                    headers
                        .iter()
                        .map(|header| {
                            let value = header.value.map(String::from_utf8_lossy).unwrap_or_default();
                            (header.key.to_string(), value.into_owned())
                        })
                        .collect()
                })
                .unwrap_or_default();
            published.push(Published {
                payload: message.payload().unwrap_or_default().to_vec(),
                headers,
            });
            last = Instant::now();
        }
    }
    published
}

/// The engine's dead letters for a time-sorted replay, as (topic, partition, offset, reason).
fn replay_dead_letters(records: &[Record], engine_config: EngineConfig) -> BTreeSet<(String, i32, i64, String)> {
    let mut engine = Engine::new(shipped_flows(), engine_config);
    let mut sorted: Vec<&Record> = records.iter().collect();
    sorted.sort_by_key(|record| (engine.record_time(record), record.topic.clone(), record.partition, record.offset));
    let mut outputs = Vec::new();
    for record in sorted {
        engine.handle(Input::RecordReceived(record), &mut outputs);
    }
    outputs
        .into_iter()
        .filter_map(|output| match output {
            Output::DeadLetter(rejection) => Some((
                rejection.topic,
                rejection.partition,
                rejection.offset,
                rejection.reason.to_string(),
            )),
            _ => None,
        })
        .collect()
}

/// Signal type (`flowwatch.breached` ...) counts, for the report.
fn count_types(lines: &[String]) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for line in lines {
        let value: serde_json::Value = serde_json::from_str(line).expect("signal is JSON");
        let kind = value["type"].as_str().unwrap_or("?").to_string();
        *counts.entry(kind).or_insert(0) += 1;
    }
    counts
}

#[track_caller]
fn assert_same_signals(published: &[String], expected: &[String]) {
    let published_set: BTreeSet<&String> = published.iter().collect();
    let expected_set: BTreeSet<&String> = expected.iter().collect();
    let missing: Vec<&&String> = expected_set.difference(&published_set).collect();
    let extra: Vec<&&String> = published_set.difference(&expected_set).collect();
    assert!(
        missing.is_empty() && extra.is_empty() && published.len() == expected.len(),
        "published {} signals, expected {}\nmissing ({}):\n{}\nextra ({}):\n{}",
        published.len(),
        expected.len(),
        missing.len(),
        missing.iter().take(8).map(|line| line.as_str()).collect::<Vec<_>>().join("\n"),
        extra.len(),
        extra.iter().take(8).map(|line| line.as_str()).collect::<Vec<_>>().join("\n"),
    );
}

/// Stops the daemon with SIGTERM; it must exit 0 within 10 s (the shutdown promise).
fn stop(mut daemon: Child) {
    let status = Command::new("kill")
        .args(["-TERM", &daemon.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success(), "could not signal the daemon");
    let status = wait_bounded(&mut daemon, Duration::from_secs(15), "flowwatch run after SIGTERM");
    assert!(status.success(), "flowwatch run exited with {status} after SIGTERM");
}

/// What [`fill_topics`] put on the broker.
struct Filled {
    /// Every input topic: the flows' and [`OTHER_TOPICS`].
    all_inputs: Vec<String>,
    /// The records in the flows' topics, decoded as the daemon decodes them.
    records: Vec<Record<'static>>,
    /// Those whose payload is not JSON, as (topic, partition, offset).
    undecodable: Vec<(String, i32, i64)>,
    /// How long `flowwatch simulate` took.
    simulated_in: Duration,
}

/// Creates the input topics ([`INPUT_PARTITIONS`] each) and the output topics
/// ([`OUTPUT_PARTITIONS`]), has `flowwatch simulate` produce `duration` of traffic from
/// [`SIM_START`], and reads every record back (each one it produced must be there).
fn fill_topics(brokers: &str, duration: &str) -> Filled {
    let input_topics = kafka_support::input_topics();
    let mut all_inputs = input_topics.clone();
    all_inputs.extend(OTHER_TOPICS.iter().map(|name| name.to_string()));
    create_topics(brokers, &all_inputs, INPUT_PARTITIONS);
    create_topics(
        brokers,
        &[SIGNALS.to_string(), "flowwatch.alerts".to_string(), DEAD_LETTER.to_string()],
        OUTPUT_PARTITIONS,
    );
    let started = Instant::now();
    let produced = simulate(brokers, SIM_SEED, SIM_START, duration);
    let simulated_in = started.elapsed();
    let legacy: Vec<String> = OTHER_TOPICS[..2].iter().map(|name| name.to_string()).collect();
    let (records, undecodable, other) = read_back(brokers, &input_topics, &legacy);
    assert_eq!(
        records.len() + undecodable.len() + other,
        produced,
        "every record flowwatch simulate produced is read back"
    );
    Filled {
        all_inputs,
        records,
        undecodable,
        simulated_in,
    }
}

/// `flowwatch run`'s environment in these tests: `brokers`, consumer group `group` from the
/// earliest offsets, the shipped flows, state in `state`, HTTP on a free port, every breach of
/// the simulated past running its actions (as replay does), and a short fetch wait (tansu holds
/// every fetch for the full wait, NOTES.md); then `extra`.
fn daemon_env(brokers: &str, group: &str, state: &std::path::Path, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let flows = root().join("flows");
    let base = [
        ("FLOWWATCH__KAFKA__BROKERS", brokers),
        ("FLOWWATCH__KAFKA__GROUP_ID", group),
        ("FLOWWATCH__KAFKA__START_FROM", "earliest"),
        ("FLOWWATCH__FLOWS__DIR", flows.to_str().expect("UTF-8 path")),
        ("FLOWWATCH__STATE__DIR", state.to_str().expect("UTF-8 path")),
        ("FLOWWATCH__HTTP__LISTEN", "127.0.0.1:0"),
        ("FLOWWATCH__TRACKING__ACTION_HORIZON", "36500d"),
        ("FLOWWATCH_KAFKA_PROPERTY_FETCH_WAIT_MAX_MS", "5"),
    ];
    base.iter()
        .chain(extra)
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect()
}

#[test]
fn daemon_on_tansu_publishes_what_a_time_sorted_replay_gives() {
    let brokers = brokers();
    let started = Instant::now();
    let Filled {
        records,
        undecodable,
        simulated_in: produced_in,
        ..
    } = fill_topics(&brokers, SIM_DURATION);
    let partitions: BTreeSet<(&str, i32)> = records.iter().map(|record| (record.topic.as_str(), record.partition)).collect();
    assert!(records.len() > 10_000, "a few thousand instances give many records ({})", records.len());
    let topics_used: BTreeSet<&str> = partitions.iter().map(|(topic, _)| *topic).collect();
    assert!(
        topics_used.len() >= 5 && partitions.len() == topics_used.len() * INPUT_PARTITIONS as usize,
        "records in every partition of the simulated topics: {partitions:?}"
    );

    let state = TempDir::new("e2e-tansu");
    let env = daemon_env(&brokers, "flowwatch-e2e", &state.0, &[("FLOWWATCH__STATE__BACKEND", "redb")]);
    let config = config::load(None, &env.iter().cloned().collect()).expect("configuration is valid");
    let engine_config = daemon::engine_config(&config);
    let expected = {
        let mut lines = replay_sorted(&records, engine_config.clone());
        lines.sort();
        lines
    };
    let mut expected_dead: BTreeSet<(String, i32, i64, String)> = replay_dead_letters(&records, engine_config);
    let engine_dead = expected_dead.len();
    expected_dead.extend(
        undecodable
            .iter()
            .map(|(topic, partition, offset)| (topic.clone(), *partition, *offset, "invalid_json".to_string())),
    );
    assert!(engine_dead > 0, "the simulation's malformed records include ones the engine rejects");
    assert!(!undecodable.is_empty(), "the simulation's malformed records include non-JSON payloads");

    let log_path = state.0.join("daemon.log");
    let log = std::fs::File::create(&log_path).expect("log file");
    let daemon_started = Instant::now();
    let mut daemon = Command::new(env!("CARGO_BIN_EXE_flowwatch"))
        .arg("run")
        .envs(env.iter().cloned())
        .env("RUST_LOG", std::env::var("FLOWWATCH_E2E_LOG").unwrap_or_else(|_| "warn".to_string()))
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log file"))
        .stderr(log)
        .spawn()
        .expect("flowwatch run starts");
    let published = read_until_quiet(&brokers, SIGNALS, expected.len(), &mut daemon, Duration::from_secs(300));
    let tracked_in = daemon_started.elapsed();
    let dead = read_until_quiet(&brokers, DEAD_LETTER, expected_dead.len(), &mut daemon, Duration::from_secs(60));
    stop(daemon);

    let mut published: Vec<String> = published
        .into_iter()
        .map(|record| String::from_utf8(record.payload).expect("signals are UTF-8"))
        .collect();
    published.sort();
    let counts = count_types(&expected);
    println!(
        "e2e: {} records ({} undecodable) in {} partitions produced in {:.1} s; {} signals {:?}; \
         {} dead letters; daemon tracked and published in {:.1} s; total {:.1} s",
        records.len() + undecodable.len(),
        undecodable.len(),
        partitions.len(),
        produced_in.as_secs_f64(),
        expected.len(),
        counts,
        expected_dead.len(),
        tracked_in.as_secs_f64(),
        started.elapsed().as_secs_f64(),
    );
    assert!(counts.get("flowwatch.breached").copied().unwrap_or(0) > 10, "the faults cause breaches: {counts:?}");
    if published != expected {
        let log_text = std::fs::read_to_string(&log_path).unwrap_or_default();
        let tail: Vec<&str> = log_text.lines().rev().take(30).collect();
        eprintln!("last lines of the daemon's log:");
        for line in tail.iter().rev() {
            eprintln!("  {line}");
        }
    }
    assert_same_signals(&published, &expected);

    let dead_found: BTreeSet<(String, i32, i64, String)> = dead
        .iter()
        .map(|record| {
            let header = |name: &str| {
                record
                    .headers
                    .get(name)
                    .unwrap_or_else(|| panic!("dead letter without header {name}: {:?}", record.headers))
                    .clone()
            };
            (
                header("flowwatch_source_topic"),
                header("flowwatch_source_partition").parse().expect("partition header is a number"),
                header("flowwatch_source_offset").parse().expect("offset header is a number"),
                header("flowwatch_reason"),
            )
        })
        .collect();
    assert_eq!(dead.len(), dead_found.len(), "each invalid record dead-lettered once");
    assert_eq!(dead_found, expected_dead, "the dead-letter topic holds exactly the invalid records");
}
