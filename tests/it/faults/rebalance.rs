//! A rebalance in the middle of a batch: while the daemon consumes a live stream, a second
//! member joins its consumer group (cooperative-sticky, as the daemon), takes partitions away
//! from it and leaves again, so the partitions come back. One daemon per group is the supported
//! set-up (the daemon reports the conflict loudly), but nothing it applied may be applied twice
//! and nothing may be lost: afterwards the signals equal a fault-free run's.

use super::*;
use crate::kafka_support::*;
use flowwatch::clock::{Clock, ManualClock};
use flowwatch::engine::{Engine, EngineConfig};
use flowwatch::daemon;
use flowwatch::time::parse_rfc3339;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// The flows' topics and the outputs, [`PARTITIONS`] partitions each (the mock keeps about
/// 5 MiB per partition).
fn cluster() -> MockCluster<'static, DefaultProducerContext> {
    mock_cluster_with_outputs(&input_topics(), PARTITIONS)
}

/// A plain consumer joining the daemon's group: it reads but never commits.
fn second_member(brokers: &str, group: &str) -> BaseConsumer {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("partition.assignment.strategy", "cooperative-sticky")
        .set("session.timeout.ms", "6000")
        .set("heartbeat.interval.ms", "500")
        .create()
        .expect("consumer");
    let topics = input_topics();
    let topics: Vec<&str> = topics.iter().map(String::as_str).collect();
    consumer.subscribe(&topics).expect("subscribe");
    consumer
}

/// The stream is produced in slices while the daemon tracks it live. A second member joins
/// after a third of it, takes partitions (the daemon has applied records of them since its
/// last checkpoint, and holds others read ahead of the clock), and leaves once more has been
/// produced; the daemon gets every partition back and reads on. The checkpoint interval is
/// longer than the test, so the partitions come back to positions the store does not know:
/// only the daemon's memory of what it applied keeps records from being applied twice. The
/// allowed lateness covers the whole stream, so records of the partitions that were away are
/// not late when they are read again (what they do is then what a time-sorted replay does).
#[test]
fn a_member_joining_and_leaving_mid_batch_changes_no_signal() {
    let cluster = cluster();
    let brokers = cluster.bootstrap_servers();
    let start = parse_rfc3339("2026-03-02T08:00:00Z").unwrap();
    let records = sim_stream(17, start, 6, 4.0);
    let state = TempDir::new("rebalance");
    let group = "rebalance";
    let config = test_config(
        &brokers,
        &state.0,
        group,
        &[
            ("FLOWWATCH__STATE__CHECKPOINT_INTERVAL", "10m"),
            ("FLOWWATCH__TRACKING__ALLOWED_LATENESS", "1h"),
        ],
    );
    let engine_config = daemon::engine_config(&config);
    let cancel = CancellationToken::new();
    // The wall clock (manual) follows the stream: it stands at the latest record produced.
    let clock = ManualClock::new(start);
    let running =
        daemon::start(config, shipped_flows(), Arc::new(clock.clone()), cancel.clone()).expect("daemon starts");
    let status = running.status.clone();
    let all_partitions = (input_topics().len() as i32 * PARTITIONS) as u64;

    let slices: Vec<&[Record]> = records.chunks(records.len().div_ceil(30)).collect();
    let mut slices = slices.into_iter();
    let mut so_far = Produced::default();
    let mut produced = Vec::new();
    let probe = Engine::new(shipped_flows(), EngineConfig::default());
    let mut produce_next = |produced: &mut Vec<Record>| match slices.next() {
        Some(slice) => {
            let latest = slice.iter().map(|record| probe.record_time(record)).max().unwrap_or(start);
            clock.set(clock.now().max(latest));
            produced.extend(produce_more(&brokers, slice, &mut so_far));
            true
        }
        None => false,
    };
    for _ in 0..10 {
        produce_next(&mut produced);
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        wait_for(Duration::from_secs(30), || {
            status.partitions_assigned.load(Ordering::Relaxed) == all_partitions
        }),
        "the daemon gets every partition"
    );
    let read_before = status.records_read.load(Ordering::Relaxed);
    assert!(read_before > 0, "the daemon is consuming when the second member joins");

    // The second member joins and stays until it holds partitions and the daemon noticed.
    let second = second_member(&brokers, group);
    let joined = Instant::now();
    let mut taken = 0;
    while joined.elapsed() < Duration::from_secs(30) {
        produce_next(&mut produced);
        let _ = second.poll(Duration::from_millis(100));
        taken = second.assignment().map(|list| list.count()).unwrap_or(0);
        if taken > 0 && status.group_conflict.load(Ordering::Relaxed) {
            break;
        }
    }
    assert!(taken > 0, "the second member took partitions");
    assert!(status.group_conflict.load(Ordering::Relaxed), "the daemon noticed the second member");
    let kept = status.partitions_assigned.load(Ordering::Relaxed);
    assert!(kept < all_partitions, "partitions were taken from the daemon ({kept} of {all_partitions} kept)");
    for _ in 0..5 {
        produce_next(&mut produced);
        let _ = second.poll(Duration::from_millis(100));
    }
    drop(second);

    // The member left: every partition comes back while the rest of the stream arrives.
    let left = Instant::now();
    while status.partitions_assigned.load(Ordering::Relaxed) < all_partitions
        && left.elapsed() < Duration::from_secs(30)
    {
        produce_next(&mut produced);
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        status.partitions_assigned.load(Ordering::Relaxed),
        all_partitions,
        "the partitions come back after the second member left"
    );
    while produce_next(&mut produced) {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(produced.len(), records.len());
    let end = start + 86_400_000;
    clock.set(end);
    assert!(settled(&status, on_flow_topics(&produced)), "the daemon settles");
    let read = status.records_read.load(Ordering::Relaxed) as usize;
    // What the engine applied: each record once (read again or not).
    let applied = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
        .block_on(running.tracker.call(|tracker, _| tracker.engine().stats().records))
        .expect("the tracker answers");
    let published = published_signals(&brokers);
    cancel.cancel();
    running.join().expect("clean shutdown");
    let expected = sorted(replay_sorted_until(&produced, engine_config, end));
    assert!(expected.len() > 1_000, "a stream with many signals: {}", expected.len());
    eprintln!(
        "rebalance: {} records ({} on the flows' topics), {read_before} read before the second member \
         joined, {taken} partitions taken, {kept} of {all_partitions} kept, {read} reads in all, \
         {applied} applied; {} signals",
        produced.len(),
        on_flow_topics(&produced),
        expected.len()
    );
    assert_eq!(applied as usize, on_flow_topics(&produced), "every record is applied once, none twice");
    assert_same_signals(&published, &expected);
}

/// A daemon started while another member of its group holds the partitions (as after a kill
/// -9, while the dead member's session runs on) is given only some of them until that member
/// leaves. It must not merge only those: with the wall clock a day past the stream, its clock
/// jumped to the wall clock once its partitions were read, and fired the timers of instances
/// whose events wait in the other partitions (found by the kill -9 loop against tansu). Its
/// clock waits for the partitions held elsewhere; afterwards the signals equal a time-sorted
/// replay's.
#[test]
fn a_daemon_given_some_partitions_while_another_member_holds_the_rest_fires_nothing_early() {
    let cluster = cluster();
    let brokers = cluster.bootstrap_servers();
    let start = parse_rfc3339("2026-03-02T08:00:00Z").unwrap();
    let records = sim_stream(23, start, 6, 4.0);
    let produced = produce_more(&brokers, &records, &mut Produced::default());
    let group = "held-elsewhere";
    let other = second_member(&brokers, group);
    let holds = |other: &BaseConsumer| other.assignment().map(|list| list.count()).unwrap_or(0);
    assert!(
        wait_for(Duration::from_secs(30), || {
            let _ = other.poll(Duration::from_millis(100));
            holds(&other) > 0
        }),
        "the other member holds the partitions"
    );
    let state = TempDir::new("held-elsewhere");
    let config = test_config(&brokers, &state.0, group, &[("FLOWWATCH__TRACKING__ALLOWED_LATENESS", "1h")]);
    let engine_config = daemon::engine_config(&config);
    let end = start + 86_400_000;
    let clock = ManualClock::new(end);
    let cancel = CancellationToken::new();
    let running = daemon::start(config, shipped_flows(), Arc::new(clock), cancel.clone()).expect("daemon starts");
    let status = running.status.clone();
    let all_partitions = (input_topics().len() as i32 * PARTITIONS) as u64;
    let assigned = || status.partitions_assigned.load(Ordering::Relaxed);
    assert!(
        wait_for(Duration::from_secs(30), || {
            let _ = other.poll(Duration::from_millis(100));
            assigned() > 0 && holds(&other) > 0
        }),
        "the daemon is given some of the partitions"
    );
    // Both hold partitions for three seconds: the daemon reads its own to the end.
    let shared = Instant::now();
    while shared.elapsed() < Duration::from_secs(3) {
        let _ = other.poll(Duration::from_millis(100));
    }
    let (kept, read_while_shared) = (assigned(), status.records_read.load(Ordering::Relaxed));
    assert!(kept < all_partitions && read_while_shared > 0, "{kept} partitions, {read_while_shared} records read");
    assert_eq!(status.records_done.load(Ordering::Relaxed), 0, "nothing applied while partitions are held elsewhere");
    drop(other);
    assert!(
        wait_for(Duration::from_secs(30), || assigned() == all_partitions),
        "every partition comes to the daemon once the other member left"
    );
    assert!(settled(&status, on_flow_topics(&produced)), "the daemon settles");
    let published = published_signals(&brokers);
    cancel.cancel();
    running.join().expect("clean shutdown");
    let expected = sorted(replay_sorted_until(&produced, engine_config, end));
    eprintln!(
        "held elsewhere: {} records, {kept} of {all_partitions} partitions and {read_while_shared} records read while shared; {} signals",
        produced.len(),
        expected.len()
    );
    assert_same_signals(&published, &expected);
}
