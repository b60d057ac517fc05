//! The wall clock jumping (NTP step, VM resume, an operator's `date -s`), on the injected
//! [`ManualClock`]: a jump back raises no breach, loses none and doubles none, and records
//! read while the clock is behind are not mistaken for records from the future; a jump forward
//! fires exactly the breaches that are then due.

use super::*;
use crate::kafka_support::*;
use flowwatch::clock::ManualClock;
use flowwatch::daemon;
use flowwatch::engine::{Engine, EngineConfig};
use flowwatch::time::parse_rfc3339;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

const MINUTE: i64 = 60_000;
const HOUR: i64 = 60 * MINUTE;

fn signals(brokers: &str, status: &flowwatch::daemon::status::Status, records: usize) -> Vec<String> {
    std::thread::sleep(Duration::from_millis(300));
    assert!(settled(status, records), "the daemon settles");
    distinct_signals(read_all(
        brokers,
        "flowwatch.signals",
        Duration::from_secs(4),
        Duration::from_secs(60),
    ))
}

/// 40 minutes of traffic; the wall clock stands at minute 36, when the first 36 minutes are
/// tracked. The clock jumps back an hour and the last 4 minutes arrive: their times lie within
/// `max_clock_skew` of the highest wall-clock time seen, but more than that ahead of the clock
/// now. Nothing changes: no `clock_skew` deviation, no breach, the records wait for the clock.
/// Then the clock jumps two hours forward: the records are applied and exactly the breaches
/// then due fire. After each step the signals are those of a replay up to the highest
/// wall-clock time seen.
#[test]
fn wall_clock_jumps_back_and_forward_raise_only_true_breaches() {
    let start = parse_rfc3339("2026-03-02T08:00:00Z").unwrap();
    let all = sim_stream(23, start, 40, 0.3);
    let probe = Engine::new(shipped_flows(), EngineConfig::default());
    let wall = start + 36 * MINUTE;
    let (first, second): (Vec<_>, Vec<_>) =
        all.into_iter().partition(|record| probe.record_time(record) < wall);
    assert!(!second.is_empty());
    assert!(second.iter().all(|record| probe.record_time(record) <= wall + 5 * MINUTE));
    let cluster = mock_cluster(&input_topics());
    let brokers = cluster.bootstrap_servers();
    let mut so_far = Produced::default();
    let mut produced = produce_more(&brokers, &first, &mut so_far);
    let clock = ManualClock::new(wall);
    let state = TempDir::new("clock");
    let config = test_config(&brokers, &state.0, "clock", &[("FLOWWATCH__TRACKING__ALLOWED_LATENESS", "0")]);
    let engine_config = daemon::engine_config(&config);
    let cancel = CancellationToken::new();
    let running = daemon::start(config, shipped_flows(), Arc::new(clock.clone()), cancel.clone())
        .expect("daemon starts");

    let status = running.status.clone();
    let before = signals(&brokers, &status, produced.len());
    assert_same_signals(&before, &sorted(replay_sorted_until(&produced, engine_config.clone(), wall)));

    // Back an hour; the rest of the traffic arrives meanwhile.
    clock.set(wall - HOUR);
    produced.extend(produce_more(&brokers, &second, &mut so_far));
    assert!(
        wait_for(Duration::from_secs(30), || status.records_read.load(std::sync::atomic::Ordering::Relaxed) as usize >= produced.len()),
        "the records produced while the clock is behind are read"
    );
    let behind = signals(&brokers, &status, produced.len());
    assert_eq!(count_type(&behind, "deviation"), count_type(&before, "deviation"), "no clock_skew deviations");
    assert_same_signals(&behind, &before);

    // Forward two hours: what fell due in between fires, nothing else.
    clock.set(wall + HOUR);
    let after = signals(&brokers, &status, produced.len());
    cancel.cancel();
    running.join().expect("clean shutdown");
    let expected_after = sorted(replay_sorted_until(&produced, engine_config, wall + HOUR));
    assert!(
        count_type(&expected_after, "breached") > count_type(&before, "breached"),
        "the forward jump makes breaches due (else this test proves nothing)"
    );
    assert_same_signals(&after, &expected_after);
}
