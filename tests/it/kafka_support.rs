//! Helpers for the daemon tests: an in-process mock Kafka cluster, producing recorded records
//! to it, reading a topic back, and the replay the live run must agree with.

// Tests bound their waits in wall-clock time; the ban is for the product's code.
#![allow(clippy::disallowed_methods)]

use flowwatch::config::{self, Config};
use flowwatch::engine::{Engine, EngineConfig, Input, Output};
use flowwatch::flow::{self, Flow};

use flowwatch::record::Record;
use flowwatch::replay::decode::decode_line;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, Message, OwnedHeaders};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

pub const PARTITIONS: i32 = 3;

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn shipped_flows() -> Vec<Flow> {
    let report = flow::load_dir_or_files(&[root().join("flows")]);
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    report.flows
}

/// A directory under the system temp dir, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(label: &str) -> TempDir {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let path = std::env::temp_dir().join(format!(
            "flowwatch-it-{label}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Records of a recorded example, in file order.
pub fn example_records(name: &str) -> Vec<Record<'static>> {
    let text = std::fs::read_to_string(root().join("tests/examples").join(name)).unwrap();
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(index, line)| decode_line(line, index as u64 + 1).expect("example decodes").into_owned())
        .collect()
}

/// A mock cluster with the flows' topics and the output topics created.
pub fn mock_cluster(topics: &[String]) -> MockCluster<'static, rdkafka::producer::DefaultProducerContext> {
    mock_cluster_with_outputs(topics, 1)
}

/// [`mock_cluster`] with `outputs` partitions for each output topic (the mock keeps at most
/// 5 MiB per partition and silently drops older records beyond that).
pub fn mock_cluster_with_outputs(
    topics: &[String],
    outputs: i32,
) -> MockCluster<'static, rdkafka::producer::DefaultProducerContext> {
    let cluster = MockCluster::new(1).expect("mock cluster starts");
    for topic in topics {
        cluster.create_topic(topic, PARTITIONS, 1).expect("topic created");
    }
    for topic in ["flowwatch.signals", "flowwatch.alerts", "flowwatch.dead-letter"] {
        cluster.create_topic(topic, outputs, 1).expect("topic created");
    }
    cluster
}

/// Every topic the flows read (action topics are auto-created by the mock cluster).
pub fn input_topics() -> Vec<String> {
    Engine::new(shipped_flows(), EngineConfig::default()).topics().to_vec()
}

/// Produces records (partition chosen round-robin per topic, so each partition keeps the file
/// order) and returns them with the partition and offset Kafka gave them.
pub fn produce(brokers: &str, records: &[Record]) -> Vec<Record<'static>> {
    produce_more(brokers, records, &mut Produced::default())
}

/// Where [`produce_more`] goes on: the next partition per topic, the next offset per partition.
#[derive(Default)]
pub struct Produced {
    next_partition: HashMap<String, i32>,
    next_offset: HashMap<(String, i32), i64>,
}

/// [`produce`] onto topics that already hold what `so_far` counted.
pub fn produce_more(brokers: &str, records: &[Record], so_far: &mut Produced) -> Vec<Record<'static>> {
    produce_lingering(brokers, records, so_far, 5)
}

/// [`produce`] in large producer batches (a second's linger): the mock broker answers a fetch
/// with one stored batch per partition, so a consumer reads each partition in a few large
/// steps instead of many small ones.
pub fn produce_in_large_batches(brokers: &str, records: &[Record]) -> Vec<Record<'static>> {
    produce_lingering(brokers, records, &mut Produced::default(), 1_000)
}

fn produce_lingering(
    brokers: &str,
    records: &[Record],
    so_far: &mut Produced,
    linger_ms: u32,
) -> Vec<Record<'static>> {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("enable.idempotence", "true")
        .set("linger.ms", linger_ms.to_string())
        .create()
        .expect("producer");
    let Produced {
        next_partition,
        next_offset,
    } = so_far;
    let mut produced = Vec::new();
    for record in records {
        let counter = next_partition.entry(record.topic.clone()).or_insert(0);
        let partition = *counter % PARTITIONS;
        *counter += 1;
        let offset_counter = next_offset.entry((record.topic.clone(), partition)).or_insert(0);
        let offset = *offset_counter;
        *offset_counter += 1;
        let payload = serde_json::to_vec(&record.value).unwrap();
        let mut headers = OwnedHeaders::new();
        for (name, value) in &record.headers {
            headers = headers.insert(Header {
                key: name,
                value: Some(value.as_bytes()),
            });
        }
        let mut base: BaseRecord<'_, str, Vec<u8>> = BaseRecord::to(&record.topic)
            .partition(partition)
            .payload(&payload)
            .timestamp(record.timestamp)
            .headers(headers);
        if let Some(key) = &record.key {
            base = base.key(key.as_str());
        }
        producer.send(base).map_err(|(error, _)| error).expect("send");
        producer.poll(Duration::ZERO);
        produced.push(Record {
            partition,
            offset,
            ..record.clone().into_owned()
        });
    }
    producer.flush(Duration::from_secs(10)).expect("flush");
    produced
}

/// A consumer that commits nothing, assigned to every partition of `topics` from the
/// beginning (`fetch.wait.max.ms` as given: tansu holds every fetch for the full wait), and
/// those partitions in metadata order.
pub fn assign_from_beginning(
    brokers: &str,
    group: &str,
    fetch_wait_ms: u32,
    topics: &[&str],
) -> (BaseConsumer, Vec<(String, i32)>) {
    assign_from_beginning_with(brokers, &[], group, fetch_wait_ms, topics)
}

/// [`assign_from_beginning`] with more client `properties` (security settings).
pub fn assign_from_beginning_with(
    brokers: &str,
    properties: &[(&str, &str)],
    group: &str,
    fetch_wait_ms: u32,
    topics: &[&str],
) -> (BaseConsumer, Vec<(String, i32)>) {
    let mut config = ClientConfig::new();
    for (name, value) in properties {
        config.set(*name, *value);
    }
    let consumer: BaseConsumer = config
        .set("bootstrap.servers", brokers)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false")
        .set("fetch.wait.max.ms", fetch_wait_ms.to_string())
        .create()
        .expect("consumer");
    let mut assignment = rdkafka::TopicPartitionList::new();
    let mut partitions = Vec::new();
    for topic in topics {
        let metadata = consumer
            .fetch_metadata(Some(topic), Duration::from_secs(10))
            .expect("metadata");
        for partition in metadata.topics()[0].partitions() {
            assignment
                .add_partition_offset(topic, partition.id(), rdkafka::Offset::Beginning)
                .expect("assignment");
            partitions.push((topic.to_string(), partition.id()));
        }
    }
    consumer.assign(&assignment).expect("assign");
    (consumer, partitions)
}

/// The offsets `group` has committed for partitions `0..partitions` of each topic: `None` for
/// a partition without a committed offset.
pub fn committed_offsets(
    brokers: &str,
    group: &str,
    topics: &[String],
    partitions: i32,
) -> rdkafka::error::KafkaResult<Vec<(String, i32, Option<i64>)>> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()?;
    let mut list = rdkafka::TopicPartitionList::new();
    for topic in topics {
        for partition in 0..partitions {
            list.add_partition(topic, partition);
        }
    }
    let list = consumer.committed_offsets(list, Duration::from_secs(10))?;
    Ok(list
        .elements()
        .iter()
        .map(|element| {
            let offset = match element.offset() {
                rdkafka::Offset::Offset(offset) => Some(offset),
                _ => None,
            };
            (element.topic().to_string(), element.partition(), offset)
        })
        .collect())
}

/// Raw payloads of a topic, read from the beginning until nothing new comes for `quiet` after
/// the first record (or `limit` passes).
pub fn read_topic(brokers: &str, topic: &str, quiet: Duration, limit: Duration) -> Vec<Vec<u8>> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", format!("reader-{topic}-{}", std::process::id()))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    consumer.subscribe(&[topic]).expect("subscribe");
    let started = std::time::Instant::now();
    let mut last = std::time::Instant::now();
    let mut payloads = Vec::new();
    while (payloads.is_empty() || last.elapsed() < quiet) && started.elapsed() < limit {
        if let Some(Ok(message)) = consumer.poll(Duration::from_millis(100)) {
            payloads.push(message.payload().unwrap_or_default().to_vec());
            last = std::time::Instant::now();
        }
    }
    payloads
}

/// The signals a replay of these records sorted by time prints, as JSON lines: what the live
/// daemon must publish (SPEC 1.3, "Live").
pub fn replay_sorted(records: &[Record], engine_config: EngineConfig) -> Vec<String> {
    replay_sorted_until(records, engine_config, i64::MAX / 4)
}

/// [`replay_sorted`] with the clock moved to `until` at the end.
pub fn replay_sorted_until(records: &[Record], engine_config: EngineConfig, until: i64) -> Vec<String> {
    let mut engine = Engine::new(shipped_flows(), engine_config);
    let mut sorted: Vec<(i64, &Record)> = records
        .iter()
        .map(|record| (engine.record_time(record), record))
        .collect();
    sorted.sort_by(|a, b| {
        (a.0, &a.1.topic, a.1.partition, a.1.offset).cmp(&(b.0, &b.1.topic, b.1.partition, b.1.offset))
    });
    let mut outputs = Vec::new();
    for (_, record) in sorted {
        engine.handle(Input::RecordReceived(record), &mut outputs);
    }
    engine.handle(Input::ClockAdvanced(until), &mut outputs);
    outputs
        .into_iter()
        .filter_map(|output| match output {
            Output::Emit(signal) => Some(signal.to_json()),
            _ => None,
        })
        .collect()
}

/// A daemon configuration for tests, through the same loader users have.
pub fn test_config(brokers: &str, state: &Path, group: &str, extra: &[(&str, &str)]) -> Config {
    init_logs();
    let mut env: HashMap<String, String> = [
        ("FLOWWATCH__KAFKA__BROKERS", brokers),
        ("FLOWWATCH__KAFKA__GROUP_ID", group),
        ("FLOWWATCH__FLOWS__DIR", root().join("flows").to_str().unwrap()),
        ("FLOWWATCH__STATE__DIR", state.to_str().unwrap()),
        ("FLOWWATCH__STATE__CHECKPOINT_INTERVAL", "200ms"),
        ("FLOWWATCH__TRACKING__ACTION_HORIZON", "36500d"),
        ("FLOWWATCH_KAFKA_PROPERTY_SESSION_TIMEOUT_MS", "6000"),
        ("FLOWWATCH_KAFKA_PROPERTY_HEARTBEAT_INTERVAL_MS", "500"),
    ]
    .iter()
    .map(|(name, value)| (name.to_string(), value.to_string()))
    .collect();
    for (name, value) in extra {
        env.insert(name.to_string(), value.to_string());
    }
    config::load(None, &env).expect("test configuration is valid")
}

/// The daemon's logs on stderr when `FLOWWATCH_TEST_LOG` names a filter (`info`,
/// `flowwatch=debug,rdkafka=debug`...): for finding out why a daemon test failed.
pub fn init_logs() {
    if let Ok(filter) = std::env::var("FLOWWATCH_TEST_LOG") {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_writer(std::io::stderr)
            .try_init();
    }
}

/// Asserts two sorted signal lists are equal, showing only the differences.
#[track_caller]
pub fn assert_same_signals(published: &[String], expected: &[String]) {
    let missing: Vec<&String> = expected.iter().filter(|line| published.binary_search(line).is_err()).collect();
    let extra: Vec<&String> = published.iter().filter(|line| expected.binary_search(line).is_err()).collect();
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

/// Sorts a list of signals (replay output) for [`assert_same_signals`].
pub fn sorted(mut lines: Vec<String>) -> Vec<String> {
    lines.sort();
    lines
}
