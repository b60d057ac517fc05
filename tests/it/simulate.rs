//! `flowwatch simulate` against librdkafka's in-process mock broker: what reaches the broker
//! is exactly the simulator's stream for the seed (topics, keys, CreateTime, headers,
//! payloads), through the library and through the binary. Bounded: a few simulated minutes at
//! a high speed, consumed back with a bounded number of polls.

use flowwatch::clock::ScaledClock;
use flowwatch::simulate::kafka::{self, SimulateOptions};
use flowwatch::simulate::{FaultMix, SimConfig, SimRecord, Simulator, COMMAND_TOPICS, TOPICS};
use flowwatch::time::{format_rfc3339, parse_rfc3339, Millis};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message, Timestamp};
use rdkafka::mocking::MockCluster;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use std::process::Command;
use std::time::Duration;

const MINUTE: Millis = 60_000;
const PARTITIONS: i32 = 2;

fn start() -> Millis {
    parse_rfc3339("2026-03-02T08:00:00Z").unwrap()
}

fn cluster() -> MockCluster<'static, rdkafka::producer::DefaultProducerContext> {
    let cluster = MockCluster::new(1).expect("mock cluster");
    for topic in TOPICS.iter().chain(COMMAND_TOPICS.iter()) {
        cluster
            .create_topic(topic, PARTITIONS, 1)
            .expect("create topic");
    }
    cluster
}

/// The simulator's own stream up to `start + duration`, as comparable tuples, sorted.
fn expected(config: SimConfig, duration: Millis) -> Vec<Seen> {
    let mut simulator = Simulator::starting_at(config, start());
    let mut records = Vec::new();
    simulator.advance(start() + duration, &mut records);
    let mut seen: Vec<Seen> = records.iter().map(Seen::from).collect();
    seen.sort();
    seen
}

/// A record as compared: topic, key, CreateTime, headers, payload.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Seen {
    topic: String,
    key: Option<String>,
    timestamp: Millis,
    headers: Vec<(String, String)>,
    payload: Vec<u8>,
}

impl From<&SimRecord> for Seen {
    fn from(record: &SimRecord) -> Seen {
        Seen {
            topic: record.topic.clone(),
            key: record.key.clone(),
            timestamp: record.timestamp,
            headers: record.headers.clone(),
            payload: record.payload.clone(),
        }
    }
}

/// Reads every partition of the simulator's topics from the beginning until `count` records
/// arrived or 100 polls of at most 100 ms in a row brought nothing.
fn consume(brokers: &str, count: usize) -> Vec<Seen> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "simulate-test")
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "10")
        .create()
        .expect("consumer");
    let mut assignment = TopicPartitionList::new();
    for topic in TOPICS {
        for partition in 0..PARTITIONS {
            assignment
                .add_partition_offset(topic, partition, Offset::Beginning)
                .expect("partition");
        }
    }
    consumer.assign(&assignment).expect("assign");
    let mut seen = Vec::new();
    let mut idle_polls = 0;
    while seen.len() < count && idle_polls < 100 {
        // Transport errors of the mock broker are transient: keep polling.
        let Some(Ok(message)) = consumer.poll(Duration::from_millis(100)) else {
            idle_polls += 1;
            continue;
        };
        {
            let timestamp = match message.timestamp() {
                Timestamp::CreateTime(millis) => millis,
                other => panic!("expected CreateTime, got {other:?}"),
            };
            let headers = message
                .headers()
                .map(|headers| {
                    headers
                        .iter()
                        .map(|header| {
                            let value = header.value.unwrap_or_default();
                            (
                                header.key.to_string(),
                                String::from_utf8(value.to_vec()).expect("UTF-8 header"),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            seen.push(Seen {
                topic: message.topic().to_string(),
                key: message
                    .key()
                    .map(|key| String::from_utf8(key.to_vec()).expect("UTF-8 key")),
                timestamp,
                headers,
                payload: message.payload().unwrap_or_default().to_vec(),
            });
        }
    }
    seen.sort();
    seen
}

#[test]
fn the_library_produces_exactly_the_simulated_stream() {
    let cluster = cluster();
    let brokers = cluster.bootstrap_servers();
    let config = SimConfig {
        seed: 7,
        rate_per_sec: 0.5,
        faults: FaultMix::default(),
    };
    let duration = 20 * MINUTE;
    let expected = expected(config, duration);
    assert!(expected.len() > 200, "{}", expected.len());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut simulator = Simulator::starting_at(config, start());
    // 20 simulated minutes at 60 000x take 20 ms of wall-clock time.
    let clock = ScaledClock::new(start(), 60_000.0);
    let options = SimulateOptions {
        brokers: brokers.clone(),
        partitions: PARTITIONS,
        duration: Some(duration),
        react: false,
    };
    let mut progress = Vec::new();
    let summary = runtime
        .block_on(kafka::run(
            &mut simulator,
            &clock,
            &options,
            std::future::pending(),
            &mut progress,
        ))
        .expect("simulate");
    assert_eq!(summary.produced as usize, expected.len());
    assert_eq!(summary.start, start());
    assert_eq!(summary.end, start() + duration);
    assert!(String::from_utf8(progress).unwrap().contains("records"));
    let consumed = consume(&brokers, expected.len());
    assert_eq!(consumed.len(), expected.len());
    assert!(
        consumed == expected,
        "the broker holds other records than simulated"
    );
    // Timestamps are simulated event times within the run.
    assert!(consumed
        .iter()
        .all(|seen| (start()..=start() + duration).contains(&seen.timestamp)));
}

#[test]
fn the_binary_creates_what_it_can_and_produces_the_stream_for_its_seed() {
    let cluster = cluster();
    let brokers = cluster.bootstrap_servers();
    let config = SimConfig {
        seed: 11,
        // What `--rate 600 --speed 6000` means: 600 instances per wall-clock second is 0.1
        // per simulated second.
        rate_per_sec: 600.0 / 6000.0,
        faults: "lost=0.2,duplicate=0.2".parse().unwrap(),
    };
    let duration = 30 * MINUTE;
    let expected = expected(config, duration);
    assert!(expected.len() > 100, "{}", expected.len());
    let output = Command::new(env!("CARGO_BIN_EXE_flowwatch"))
        .args([
            "simulate",
            "--brokers",
            &brokers,
            "--rate",
            "600",
            "--speed",
            "6000",
            "--seed",
            "11",
            "--duration",
            "30m",
            "--partitions",
            "2",
            "--faults",
            "lost=0.2,duplicate=0.2",
            "--start",
            &format_rfc3339(start()),
            "--no-react",
        ])
        .output()
        .expect("run flowwatch");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    // The mock broker has no CreateTopics: a warning, not a failure.
    assert!(stderr.contains("could not create topics"), "{stderr}");
    assert!(
        stderr.contains(&format!("produced {} records", expected.len())),
        "{stderr}"
    );
    let consumed = consume(&brokers, expected.len());
    assert!(
        consumed == expected,
        "the broker holds other records than simulated"
    );
}

#[test]
fn bad_flags_are_user_errors_that_say_what_to_fix() {
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_flowwatch"))
            .args(args)
            .output()
            .expect("run flowwatch")
    };
    let output = run(&["simulate", "--brokers", "127.0.0.1:1", "--faults", "lots=1"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("unknown fault \"lots\""));
    let output = run(&["simulate", "--brokers", "127.0.0.1:1", "--speed", "0"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--speed"));
    let output = run(&["simulate"]);
    assert_eq!(output.status.code(), Some(2));
}
