//! Flows changed between restarts (see `engine::migrate` and docs/daemon.md, "Faults"): a flow
//! that is unchanged keeps its instances wherever it now sits in the list; a removed or
//! reshaped flow's instances and held events are dropped, logged and counted
//! (`flowwatch_dropped_on_restore_total`); a new or reshaped flow tracks the records read from
//! the stored positions on. Checked against replays of each flow over what it saw.

use super::*;
use crate::kafka_support::*;
use flowwatch::clock::ManualClock;
use flowwatch::daemon;
use flowwatch::engine::{Engine, EngineConfig, Input, Output};
use flowwatch::flow::{self, Flow};
use flowwatch::http::Health;
use flowwatch::metrics::Metrics;
use flowwatch::record::Record;
use flowwatch::time::Millis;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// The shipped flows with `edit` (file name, text) applied to each file's text.
fn edited_flows(edit: impl Fn(&str, String) -> String) -> Vec<Flow> {
    let dir = TempDir::new("flows");
    for entry in std::fs::read_dir(root().join("flows")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        let text = edit(&name, std::fs::read_to_string(&path).unwrap());
        std::fs::write(dir.0.join(&name), text).unwrap();
    }
    let report = flow::load_dir_or_files(std::slice::from_ref(&dir.0));
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    report.flows
}

/// The signals a time-sorted replay of `records` gives with `flows`, the clock moved to `until`.
fn replay_with(flows: Vec<Flow>, records: &[Record], config: EngineConfig, until: Millis) -> Vec<String> {
    let mut engine = Engine::new(flows, config);
    let mut sorted: Vec<(i64, &Record)> = records.iter().map(|record| (engine.record_time(record), record)).collect();
    sorted.sort_by(|a, b| (a.0, &a.1.topic, a.1.partition, a.1.offset).cmp(&(b.0, &b.1.topic, b.1.partition, b.1.offset)));
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

fn only(flows: Vec<Flow>, name: &str) -> Vec<Flow> {
    flows.into_iter().filter(|flow| flow.def.name == name).collect()
}

fn metric(rendered: &str, flow: &str, kind: &str) -> f64 {
    let prefix = format!("flowwatch_dropped_on_restore_total{{flow=\"{flow}\",kind=\"{kind}\"}} ");
    rendered
        .lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .map(|value| value.parse().unwrap())
        .unwrap_or(0.0)
}

/// The first half of a day (checkout and parcels) is tracked with the shipped flows. The daemon restarts with
/// parcel-delivery removed (a copy under another name added in its place) and
/// customer-onboarding reshaped (an event added): order-fulfillment carries on as if nothing
/// happened, the old flows' open instances are dropped and counted, the new ones track the
/// second half (instances started before show up as orphans there, as for any tracker that
/// starts late).
#[test]
fn flows_changed_between_restarts_keep_what_is_unchanged() {
    let mut all = example_records("checkout-day.jsonl");
    all.extend(example_records("parcel-delivery.jsonl"));
    let probe = Engine::new(shipped_flows(), EngineConfig::default());
    let mut times: Vec<i64> = all.iter().map(|record| probe.record_time(record)).collect();
    times.sort();
    let split = times[times.len() / 2];
    let end = times[times.len() - 1] + 86_400_000;
    let (first, second): (Vec<_>, Vec<_>) = all.into_iter().partition(|record| probe.record_time(record) < split);
    let cluster = mock_cluster(&input_topics());
    let brokers = cluster.bootstrap_servers();
    let state = TempDir::new("changed");
    let mut so_far = Produced::default();
    let first = produce_more(&brokers, &first, &mut so_far);
    let clock = ManualClock::new(split);
    let config = || test_config(&brokers, &state.0, "changed", &[("FLOWWATCH__TRACKING__ALLOWED_LATENESS", "0")]);
    let engine_config = daemon::engine_config(&config());

    let cancel = CancellationToken::new();
    let running = daemon::start(config(), shipped_flows(), Arc::new(clock.clone()), cancel.clone()).expect("first run");
    assert!(settled(&running.status, on_flow_topics(&first)), "the first run settles");
    let first_published = read_all(&brokers, "flowwatch.signals", Duration::from_secs(4), Duration::from_secs(60));
    cancel.cancel();
    running.join().expect("first run stops cleanly");
    // What the first run holds open per flow, from a replay up to the split.
    let mut at_split = Engine::new(shipped_flows(), engine_config.clone());
    let mut sink = Vec::new();
    let mut sorted_first: Vec<&Record> = first.iter().collect();
    sorted_first.sort_by_key(|record| (at_split.record_time(record), record.topic.clone(), record.partition, record.offset));
    for record in sorted_first {
        at_split.handle(Input::RecordReceived(record), &mut sink);
    }
    at_split.handle(Input::ClockAdvanced(split), &mut sink);
    let open = |name: &str| at_split.flow_counts().iter().find(|flow| flow.name == name).map_or(0, |flow| flow.open);
    let (open_parcels, open_onboardings) = (open("parcel-delivery"), open("customer-onboarding"));
    assert!(open_parcels > 0 && open_onboardings > 0, "instances are open at the split");

    let second = produce_more(&brokers, &second, &mut so_far);
    clock.set(end);
    let changed = || {
        edited_flows(|name, text| match name {
            "parcel-delivery.yaml" => text.replace("flow: parcel-delivery", "flow: parcel-delivery-copy"),
            "customer-onboarding.yaml" => text.replacen(
                "events:\n",
                "events:\n  AuditNoted:\n    topic: checks\n    match: { eventType: AuditNoted }\n    key: customerId\n    time: at\n",
                1,
            ),
            _ => text,
        })
    };
    let metrics = Metrics::new();
    let cancel = CancellationToken::new();
    let running = daemon::start_with(config(), changed(), Arc::new(clock.clone()), cancel.clone(), metrics.clone(), Health::new())
        .expect("a restart with changed flows starts");
    assert!(settled(&running.status, on_flow_topics(&second)), "the second run settles");
    let published = read_all(&brokers, "flowwatch.signals", Duration::from_secs(4), Duration::from_secs(60));
    let rendered = metrics.render();
    cancel.cancel();
    running.join().expect("second run stops cleanly");

    assert_eq!(metric(&rendered, "parcel-delivery", "open_instances"), open_parcels as f64, "{rendered}");
    assert_eq!(metric(&rendered, "customer-onboarding", "open_instances"), open_onboardings as f64);
    assert_eq!(metric(&rendered, "order-fulfillment", "open_instances"), 0.0);
    let both: Vec<Record> = first.iter().chain(&second).cloned().collect();
    let mut expected: Vec<String> = first_published
        .into_iter()
        .map(|payload| String::from_utf8(payload).unwrap())
        .collect();
    expected.extend(replay_with(only(shipped_flows(), "order-fulfillment"), &both, engine_config.clone(), end));
    expected.extend(replay_with(only(changed(), "customer-onboarding"), &second, engine_config.clone(), end));
    expected.extend(replay_with(only(changed(), "parcel-delivery-copy"), &second, engine_config, end));
    expected.sort();
    expected.dedup();
    let published = distinct_signals(published);
    assert!(count_type(&published, "orphaned") > 0, "the new flows see instances they never saw start");
    assert_same_signals(&published, &expected);
}
