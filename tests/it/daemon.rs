//! The daemon against librdkafka's in-process mock cluster: it consumes the choreography,
//! tracks it, publishes the signals a time-sorted replay of the same records gives, and keeps
//! that promise across a restart from its checkpoint.

use crate::kafka_support::*;
use flowwatch::clock::{Clock, SystemClock};
use flowwatch::daemon;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

fn sorted(mut lines: Vec<String>) -> Vec<String> {
    lines.sort();
    lines
}

/// Asserts two sorted signal lists are equal, showing only the differences.
#[track_caller]
fn assert_same_signals(published: &[String], expected: &[String]) {
    let missing: Vec<&String> = expected.iter().filter(|line| !published.contains(line)).collect();
    let extra: Vec<&String> = published.iter().filter(|line| !expected.contains(line)).collect();
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

fn as_text(payloads: Vec<Vec<u8>>) -> Vec<String> {
    payloads
        .into_iter()
        .map(|payload| String::from_utf8(payload).expect("signals are UTF-8"))
        .collect()
}

#[test]
fn live_tracking_publishes_what_a_time_sorted_replay_gives() {
    let cluster = mock_cluster(&input_topics());
    let brokers = cluster.bootstrap_servers();
    let records = produce(&brokers, &example_records("checkout-day.jsonl"));
    let state = TempDir::new("live");
    let config = test_config(&brokers, &state.0, "live", &[("FLOWWATCH__STATE__BACKEND", "memory")]);
    let expected = sorted(replay_sorted(&records, daemon::engine_config(&config)));
    assert!(expected.len() > 300, "the example gives many signals");

    let cancel = CancellationToken::new();
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let running = daemon::start(config, shipped_flows(), clock, cancel.clone()).expect("daemon starts");
    let published = as_text(read_topic(
        &brokers,
        "flowwatch.signals",
        Duration::from_secs(4),
        Duration::from_secs(60),
    ));
    cancel.cancel();
    running.join().expect("clean shutdown");
    assert_same_signals(&sorted(published), &expected);
}
