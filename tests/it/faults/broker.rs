//! Broker faults beyond `daemon.rs`'s: partition leaders moving between brokers while the daemon
//! consumes and publishes, and every broker gone for longer than the producer's
//! `message.timeout.ms` while the outbox is at its bound.

use super::*;
use crate::kafka_support::*;
use flowwatch::clock::{Clock, ManualClock, SystemClock};
use flowwatch::engine::{Engine, EngineConfig};
use flowwatch::daemon;
use flowwatch::time::parse_rfc3339;
use rdkafka::mocking::{MockCluster, MockCoordinator};
use rdkafka::producer::DefaultProducerContext;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

const OUTPUTS: [&str; 3] = ["flowwatch.signals", "flowwatch.alerts", "flowwatch.dead-letter"];

/// A mock cluster of `brokers` brokers, every topic replicated on all of them. The outputs get
/// [`PARTITIONS`] partitions too: the mock keeps about 5 MiB per partition.
fn cluster_of(brokers: i32) -> MockCluster<'static, DefaultProducerContext> {
    let cluster = MockCluster::new(brokers).expect("mock cluster starts");
    for topic in input_topics() {
        cluster.create_topic(&topic, PARTITIONS, brokers).expect("topic created");
    }
    for topic in OUTPUTS {
        cluster.create_topic(topic, PARTITIONS, brokers).expect("topic created");
    }
    cluster
}

/// Leaders of every input partition and of the output topics move between three brokers
/// every 300 ms while the daemon consumes and publishes, and one broker is taken down after its
/// partitions moved away (the way a rolling restart goes). Nothing is lost, nothing added.
#[test]
fn leader_moves_during_consumption_lose_nothing() {
    let cluster = cluster_of(3);
    // The group coordinator stays on broker 1; leadership moves around it.
    cluster
        .coordinator(MockCoordinator::Group("leaders".to_string()), 1)
        .expect("coordinator set");
    let brokers = cluster.bootstrap_servers();
    let start = parse_rfc3339("2026-03-02T08:00:00Z").unwrap();
    let records = produce(&brokers, &sim_stream(7, start, 6, 4.0));
    let state = TempDir::new("leaders");
    let config = test_config(&brokers, &state.0, "leaders", &[]);
    let expected = sorted(replay_sorted(&records, daemon::engine_config(&config)));
    let cancel = CancellationToken::new();
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let running = daemon::start(config, shipped_flows(), clock, cancel.clone()).expect("daemon starts");
    let mut topics: Vec<String> = input_topics();
    topics.extend(OUTPUTS.iter().map(|topic| topic.to_string()));
    for round in 0..12 {
        for topic in &topics {
            for partition in 0..PARTITIONS {
                let leader = 1 + (round + partition) % 3;
                cluster
                    .partition_leader(topic, partition, Some(leader))
                    .expect("leader moved");
            }
        }
        if round == 4 {
            // Move everything off broker 3 and take it down for a while.
            for topic in &topics {
                for partition in 0..PARTITIONS {
                    cluster.partition_leader(topic, partition, Some(2)).expect("leader moved");
                }
            }
            cluster.broker_down(3).expect("broker down");
        }
        if round == 8 {
            cluster.broker_up(3).expect("broker up");
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    assert!(settled(&running.status, records.len()), "the daemon settles");
    let published = published_signals(&brokers);
    cancel.cancel();
    running.join().expect("clean shutdown");
    assert!(expected.len() > 1_000, "a stream with many signals: {}", expected.len());
    assert_same_signals(&published, &expected);
}

/// The signals topic loses its leader, so nothing can be delivered there: deliveries time out
/// (`message.timeout.ms` = 1 s), the outbox keeps the records and grows to its bound, and
/// consumption pauses there: records produced now stay unread. Then every broker goes down for
/// three times the producer's timeout. When they come back (and the partitions have a leader
/// again) the outbox drains, consumption resumes, and the signals topic holds exactly what a
/// fault-free run gives. The wall clock (manual) moves with the traffic, so the records
/// produced later are on time.
#[test]
fn every_broker_down_past_the_producer_timeout_loses_nothing() {
    outage("outage", Duration::from_secs(3));
}

/// The same, with every broker down past the consumer's `session.timeout.ms` (6 s in the
/// tests): the consumer loses its group membership and its partitions while they are paused,
/// rejoins and gets them back. Found in the test above when reconnecting took that long:
/// librdkafka kept the old pause on the partitions it assigned again, and the daemon, whose
/// outbox had drained meanwhile, never read another record. A lost membership is no group
/// conflict: the daemon is ready again afterwards.
#[test]
fn every_broker_down_past_the_session_timeout_loses_nothing() {
    let status = outage("session", Duration::from_secs(9));
    assert!(
        status.assignments_lost.load(Ordering::Relaxed) > 0,
        "the outage outlasted the group session"
    );
    assert!(!status.group_conflict.load(Ordering::Relaxed), "a lost membership is no conflict");
}

/// The outage of the tests above, with every broker down for `down`; the daemon's status at
/// the end, once it was ready again.
fn outage(group: &str, down: Duration) -> Arc<daemon::status::Status> {
    const MINUTE: i64 = 60_000;
    let cluster = cluster_of(1);
    let brokers = cluster.bootstrap_servers();
    let start = parse_rfc3339("2026-03-02T08:00:00Z").unwrap();
    let all = sim_stream(11, start, 8, 4.0);
    let probe = Engine::new(shipped_flows(), EngineConfig::default());
    let (first, second): (Vec<_>, Vec<_>) =
        all.into_iter().partition(|record| probe.record_time(record) < start + 4 * MINUTE);
    let mut so_far = Produced::default();
    let mut produced = produce_more(&brokers, &first, &mut so_far);
    for partition in 0..PARTITIONS {
        cluster
            .partition_leader("flowwatch.signals", partition, None)
            .expect("signals topic leaderless");
    }
    let state = TempDir::new(group);
    let limit = 300;
    let config = test_config(
        &brokers,
        &state.0,
        group,
        &[
            ("FLOWWATCH__OUTPUTS__OUTBOX_LIMIT", "300"),
            ("FLOWWATCH_KAFKA_PROPERTY_MESSAGE_TIMEOUT_MS", "1000"),
            ("FLOWWATCH__TRACKING__ALLOWED_LATENESS", "0"),
        ],
    );
    let engine_config = daemon::engine_config(&config);
    let cancel = CancellationToken::new();
    let clock = ManualClock::new(start + 4 * MINUTE);
    let running = daemon::start(config, shipped_flows(), Arc::new(clock.clone()), cancel.clone()).expect("daemon starts");
    let status = running.status.clone();
    assert!(
        wait_for(Duration::from_secs(30), || status.outbox_len.load(Ordering::Relaxed) >= limit),
        "the outbox reaches its bound"
    );
    // Paused: what arrives now stays unread, and the outbox keeps what it could not deliver.
    std::thread::sleep(Duration::from_millis(500));
    let read = status.records_read.load(Ordering::Relaxed);
    produced.extend(produce_more(&brokers, &second, &mut so_far));
    std::thread::sleep(Duration::from_millis(2_000));
    assert_eq!(status.records_read.load(Ordering::Relaxed), read, "consumption pauses at the bound");
    assert!((read as usize) < produced.len(), "records wait unread ({read} of {})", produced.len());
    assert!(
        status.publish_errors.load(Ordering::Relaxed) > 0,
        "deliveries timed out and stayed in the outbox"
    );
    let held = status.outbox_len.load(Ordering::Relaxed);
    assert!(held >= limit, "the outbox keeps what it could not deliver ({held})");
    // Every broker down; the partitions get their leader back.
    cluster.broker_down(-1).expect("brokers down");
    std::thread::sleep(down);
    for partition in 0..PARTITIONS {
        cluster
            .partition_leader("flowwatch.signals", partition, Some(1))
            .expect("leader back");
    }
    cluster.broker_up(-1).expect("brokers up");
    assert!(
        wait_for(Duration::from_secs(60), || status.records_read.load(Ordering::Relaxed) as usize >= produced.len()),
        "consumption resumes and reads the rest: read {} of {}, outbox {}, done {}",
        status.records_read.load(Ordering::Relaxed), produced.len(), status.outbox_len.load(Ordering::Relaxed), status.records_done.load(Ordering::Relaxed)
    );
    let end = start + 86_400_000;
    clock.set(end);
    assert!(settled(&status, produced.len()), "the daemon settles");
    assert!(wait_for(Duration::from_secs(30), || status.ready()), "the daemon is ready again");
    let published = distinct_signals(read_all(
        &brokers,
        "flowwatch.signals",
        Duration::from_secs(5),
        Duration::from_secs(90),
    ));
    cancel.cancel();
    running.join().expect("clean shutdown");
    assert_same_signals(&published, &sorted(replay_sorted_until(&produced, engine_config, end)));
    status
}
