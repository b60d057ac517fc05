//! Issue 7's in-process fault-injection suite: the daemon against librdkafka's mock cluster,
//! with faults injected on purpose (leader moves, every broker down past the producer's
//! timeout, a rebalance mid-batch, the wall clock jumping, flows changed between restarts, a
//! full or read-only state directory, a corrupt store, hostile records). After each fault the signals topic must hold
//! what a fault-free run gives: the signals of a replay of the same records sorted by time,
//! re-sent duplicates only with identical content (one id, one signal).
//!
//! The helpers here: a larger choreography from the simulator (so the outbox bound and flow
//! control actually bite), signal comparison and bounded waits.

// Tests bound their waits in wall-clock time; the ban is for the product's code.
#![allow(clippy::disallowed_methods)]

mod broker;
mod clock;
mod flows_changed;
mod hostile;
mod rebalance;
mod storage;

use flowwatch::record::Record;
use flowwatch::simulate::{FaultMix, SimConfig, Simulator};
use flowwatch::time::Millis;
use crate::kafka_support::{input_topics, PARTITIONS};
use rdkafka::config::ClientConfig;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// A simulated choreography of `minutes` of event time from `start`: orders and onboardings
/// with slow, lost and declined steps (so there are breaches, retries and alerts), every
/// record JSON and on a topic the flows read.
pub fn sim_stream(seed: u64, start: Millis, minutes: i64, rate_per_sec: f64) -> Vec<Record<'static>> {
    let faults = FaultMix {
        lost: 0.08,
        slow: 0.08,
        declined: 0.05,
        ..FaultMix::none()
    };
    let mut simulator = Simulator::starting_at(
        SimConfig {
            seed,
            rate_per_sec,
            faults,
        },
        start,
    );
    let mut out = Vec::new();
    simulator.advance(start + minutes * 60_000, &mut out);
    out.iter()
        .map(|record| record.to_record(0, 0).expect("a fault-free payload is JSON").into_owned())
        .collect()
}

/// Signals as text, sorted and with identical re-sends collapsed; fails when one CloudEvents id
/// carries two different signals.
#[track_caller]
pub fn distinct_signals(payloads: Vec<Vec<u8>>) -> Vec<String> {
    let mut lines: Vec<String> = payloads
        .into_iter()
        .map(|payload| String::from_utf8(payload).expect("signals are UTF-8"))
        .collect();
    lines.sort();
    lines.dedup();
    let mut by_id = BTreeMap::<String, &String>::new();
    for line in &lines {
        let value: serde_json::Value = serde_json::from_str(line).expect("a signal is JSON");
        let id = value["id"].as_str().expect("a signal has an id").to_string();
        if let Some(other) = by_id.insert(id.clone(), line) {
            panic!("id {id} carries two different signals:\n{other}\n{line}");
        }
    }
    lines
}

/// The offsets the group has committed to Kafka for the flows' partitions.
pub fn committed(brokers: &str, group: &str) -> Vec<(String, i32, Option<i64>)> {
    crate::kafka_support::committed_offsets(brokers, group, &input_topics(), PARTITIONS)
        .expect("committed offsets")
}

/// The distinct signals published to `flowwatch.signals`, read until the topic has been
/// quiet for 4 s (at most 90 s).
pub fn published_signals(brokers: &str) -> Vec<String> {
    distinct_signals(read_all(brokers, "flowwatch.signals", Duration::from_secs(4), Duration::from_secs(90)))
}

/// Raw payloads of a topic, read from the beginning of every partition without joining a group
/// (a group re-joined in the same test waits for the old member's session to time out), until
/// nothing new comes for `quiet` after the first record, or `limit` passes.
pub fn read_all(brokers: &str, topic: &str, quiet: Duration, limit: Duration) -> Vec<Vec<u8>> {
    use rdkafka::Message;
    // 500 ms: librdkafka's default fetch wait.
    let (consumer, partitions) =
        crate::kafka_support::assign_from_beginning(brokers, "faults-reader", 500, &[topic]);
    let started = Instant::now();
    let mut last = Instant::now();
    let mut payloads = Vec::new();
    while (payloads.is_empty() || last.elapsed() < quiet) && started.elapsed() < limit {
        if let Some(Ok(message)) = consumer.poll(Duration::from_millis(100)) {
            payloads.push(message.payload().unwrap_or_default().to_vec());
            last = Instant::now();
        }
    }
    if std::env::var("FAULTS_LOG").is_ok() {
        eprintln!("read_all {topic}: {} partitions, {} payloads", partitions.len(), payloads.len());
    }
    payloads
}

/// Waits (at most a minute) until the daemon has read at least `records` records, caught up,
/// and has nothing left in its outbox, twice in a row 300 ms apart (a turn may be releasing
/// records right then); whether it got there.
pub fn settled(status: &flowwatch::daemon::status::Status, records: usize) -> bool {
    use std::sync::atomic::Ordering;
    let quiet = || {
        status.records_read.load(Ordering::Relaxed) as usize >= records
            && status.caught_up.load(Ordering::Relaxed)
            && status.outbox_len.load(Ordering::Relaxed) == 0
    };
    let done = wait_for(Duration::from_secs(60), || {
        quiet() && {
            std::thread::sleep(Duration::from_millis(300));
            quiet()
        }
    });
    if !done {
        eprintln!(
            "not settled: read {} of {records}, caught up {}, {} behind, outbox {}",
            status.records_read.load(Ordering::Relaxed),
            status.caught_up.load(Ordering::Relaxed),
            status.records_behind.load(Ordering::Relaxed),
            status.outbox_len.load(Ordering::Relaxed)
        );
    }
    done
}

/// How many of the records are on topics the flows read (the daemon never reads the others).
pub fn on_flow_topics(records: &[Record]) -> usize {
    let topics = input_topics();
    records.iter().filter(|record| topics.contains(&record.topic)).count()
}

/// Polls `what` every 50 ms until it holds or `limit` passes; whether it held.
pub fn wait_for(limit: Duration, what: impl Fn() -> bool) -> bool {
    let started = Instant::now();
    while started.elapsed() < limit {
        if what() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    what()
}

/// How many of the signals are of this CloudEvents type suffix (`breached`, `deviation`, ...).
pub fn count_type(signals: &[String], kind: &str) -> usize {
    let needle = format!("\"type\":\"flowwatch.{kind}\"");
    signals.iter().filter(|line| line.contains(&needle)).count()
}
