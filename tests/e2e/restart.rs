//! The broker restarted on persistent storage while the daemon works (issue 7): this test
//! starts its own tansu (`FLOWWATCH_E2E_TANSU`, a build with the `libsql` feature; set by
//! `scripts/e2e-tansu.sh`) on a free port of 127.0.0.1 with SQLite storage in a temporary
//! directory. `flowwatch simulate` fills the topics, `flowwatch run` tracks them, and in the
//! middle of its stream the broker is stopped, once with SIGTERM and once with SIGKILL, and
//! started again on the same storage and port. The topics, their records and offsets and the
//! group's committed offsets must survive each restart, the daemon must carry on by itself,
//! and the signals topic must then hold what a fault-free run gives (the time-sorted replay):
//! every signal, no other, re-sent copies identical to the first.

use super::*;
use rdkafka::consumer::BaseConsumer;
use std::path::PathBuf;
use tansu::Broker;

const ENV_TANSU: &str = "FLOWWATCH_E2E_TANSU";
const GROUP: &str = "flowwatch-e2e-restart";
/// A shorter stream than the main test's: tansu on SQLite takes each record in a transaction.
const RESTART_SIM_DURATION: &str = "40m";

pub(super) fn tansu_binary() -> PathBuf {
    match std::env::var(ENV_TANSU) {
        Ok(path) if !path.trim().is_empty() => PathBuf::from(path),
        _ => panic!(
            "{ENV_TANSU} is not set: this test starts its own tansu (built with the libsql feature). \
             Run scripts/e2e-tansu.sh, which installs it and runs this test."
        ),
    }
}

/// Reads a topic from the beginning of every partition, riding out broker restarts (errors
/// while the broker is away are only counted).
struct Reader {
    consumer: BaseConsumer,
    payloads: Vec<String>,
    errors: usize,
}

impl Reader {
    fn new(brokers: &str, topic: &str) -> Reader {
        let (consumer, _) = reader(brokers, &[topic.to_string()]);
        Reader {
            consumer,
            payloads: Vec::new(),
            errors: 0,
        }
    }

    fn poll_for(&mut self, limit: Duration) {
        let started = Instant::now();
        while started.elapsed() < limit {
            match self.consumer.poll(Duration::from_millis(100)) {
                Some(Ok(message)) => {
                    let payload = String::from_utf8(message.payload().unwrap_or_default().to_vec());
                    self.payloads.push(payload.expect("signals are UTF-8"));
                }
                Some(Err(_)) => self.errors += 1,
                None => {}
            }
        }
    }
}

/// Every partition's high watermark, and the offsets `GROUP` committed (summed).
fn positions(brokers: &str, topics: &[String], broker: &Broker) -> (BTreeMap<(String, i32), i64>, i64) {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", GROUP)
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut high = BTreeMap::new();
    let mut list = TopicPartitionList::new();
    for topic in topics {
        for partition in 0..INPUT_PARTITIONS {
            let (_, watermark) = consumer
                .fetch_watermarks(topic, partition, Duration::from_secs(60))
                .unwrap_or_else(|error| panic!("watermarks: {error}; tansu's log:\n{}", broker.log_tail()));
            high.insert((topic.clone(), partition), watermark);
            list.add_partition(topic, partition);
        }
    }
    let committed = consumer
        .committed_offsets(list, Duration::from_secs(60))
        .unwrap_or_else(|error| panic!("committed offsets: {error}; tansu's log:\n{}", broker.log_tail()));
    let sum = committed
        .elements()
        .iter()
        .map(|element| match element.offset() {
            Offset::Offset(offset) => offset,
            _ => 0,
        })
        .sum();
    (high, sum)
}

#[test]
fn broker_restarts_on_sqlite_storage_lose_no_signal() {
    let started = Instant::now();
    let storage = TempDir::new("e2e-restart-tansu");
    let mut broker = Broker::new(tansu_binary(), storage.0.clone(), "sqlite://tansu.db");
    broker.start();
    let brokers = broker.address();
    let Filled {
        all_inputs,
        records,
        undecodable,
        ..
    } = fill_topics(&brokers, RESTART_SIM_DURATION);

    let state = TempDir::new("e2e-restart");
    let env = daemon_env(&brokers, GROUP, &state.0, &[("FLOWWATCH__STATE__CHECKPOINT_INTERVAL", "500ms")]);
    let config = config::load(None, &env.iter().cloned().collect()).expect("configuration is valid");
    let expected = kafka_support::sorted(replay_sorted(&records, daemon::engine_config(&config)));

    // The reader is running before the daemon starts, so the thresholds below are met while the
    // daemon is still at work.
    let mut signals = Reader::new(&brokers, SIGNALS);
    signals.poll_for(Duration::from_secs(2));
    let log_path = state.0.join("daemon.log");
    let log = std::fs::File::create(&log_path).expect("log file");
    let mut daemon = Command::new(env!("CARGO_BIN_EXE_flowwatch"))
        .arg("run")
        .envs(env.iter().cloned())
        .env("RUST_LOG", std::env::var("FLOWWATCH_E2E_LOG").unwrap_or_else(|_| "info".to_string()))
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log file"))
        .stderr(log)
        .spawn()
        .expect("flowwatch run starts");
    let mut restarts = Vec::new();
    // SIGTERM 300 ms after the daemon got its partitions (it is reading and publishing);
    // SIGKILL half a second after the broker is back (the daemon reconnecting, sending what
    // waited in its outbox and reading on).
    let waiting = Instant::now();
    while !std::fs::read_to_string(&log_path).unwrap_or_default().contains("Partition assigned.") {
        assert!(
            waiting.elapsed() < Duration::from_secs(60),
            "the daemon got no partition within 60 s; its log:\n{}",
            std::fs::read_to_string(&log_path).unwrap_or_default()
        );
        if let Some(status) = daemon.try_wait().expect("wait") {
            panic!("flowwatch run exited: {status}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300));
    for signal in ["TERM", "KILL"] {
        signals.poll_for(Duration::from_millis(100));
        let at = signals.payloads.len();
        broker.stop(signal);
        std::thread::sleep(Duration::from_secs(2));
        broker.start();
        let after = started.elapsed().as_secs_f64();
        restarts.push(format!("SIG{signal} at {at} signals seen, after {after:.1} s"));
        std::thread::sleep(Duration::from_millis(500));
    }
    // The rest: until every expected signal is there and nothing came for 5 s.
    let waiting = Instant::now();
    let mut quiet = Instant::now();
    loop {
        let before = signals.payloads.len();
        signals.poll_for(Duration::from_millis(500));
        if signals.payloads.len() > before {
            quiet = Instant::now();
        }
        let distinct: BTreeSet<&String> = signals.payloads.iter().collect();
        if distinct.len() >= expected.len() && quiet.elapsed() > Duration::from_secs(5) {
            break;
        }
        if waiting.elapsed() > Duration::from_secs(300) || quiet.elapsed() > Duration::from_secs(60) {
            break;
        }
        if let Some(status) = daemon.try_wait().expect("wait") {
            panic!("flowwatch run exited: {status}");
        }
    }
    stop(daemon);
    // What the broker acknowledged survives a restart: the records with their offsets and the
    // offsets the daemon committed.
    let (high, committed) = positions(&brokers, &all_inputs, &broker);
    broker.stop("KILL");
    broker.start();
    let (high_after, committed_after) = positions(&brokers, &all_inputs, &broker);
    assert_eq!(high_after, high, "the records and offsets survive the broker's SIGKILL");
    assert!(committed > 0, "the daemon committed offsets");
    assert_eq!(committed_after, committed, "the group's committed offsets survive the broker's SIGKILL");
    let mut again = Reader::new(&brokers, SIGNALS);
    while again.payloads.len() < signals.payloads.len() && started.elapsed() < Duration::from_secs(600) {
        again.poll_for(Duration::from_millis(500));
    }
    assert_eq!(
        kafka_support::sorted(again.payloads),
        kafka_support::sorted(signals.payloads.clone()),
        "the signals topic survives the broker's SIGKILL"
    );

    // One id, one signal: every copy of an id identical.
    let mut by_id: BTreeMap<String, &String> = BTreeMap::new();
    for payload in &signals.payloads {
        let value: serde_json::Value = serde_json::from_str(payload).expect("signal is JSON");
        let id = value["id"].as_str().expect("signal id").to_string();
        if let Some(first) = by_id.insert(id.clone(), payload) {
            assert_eq!(first, payload, "two different signals under id {id}");
        }
    }
    let published: Vec<String> = kafka_support::sorted(by_id.into_values().cloned().collect());
    println!(
        "e2e restart: {} records, {} signals expected, {} published ({} re-sent copies); broker restarts: {}; \
         {committed} offsets committed; {} read errors while the broker was away; total {:.1} s",
        records.len() + undecodable.len(),
        expected.len(),
        signals.payloads.len(),
        signals.payloads.len() - published.len(),
        restarts.join("; "),
        signals.errors,
        started.elapsed().as_secs_f64(),
    );
    assert_eq!(broker.starts, 4);
    assert_same_signals(&published, &expected);
}
