//! Tests of the metrics: a recorded day replayed through the engine with the metrics observing
//! it, then checks of the rendered text against the engine's own counts and the golden signals.

use super::*;
use crate::engine::{Engine, EngineConfig, Input, Output, Stats};
use crate::flow::load_dir_or_files;
use crate::replay::decode::decode_line;
use std::path::PathBuf;

/// The repository root (flows and examples live there).
fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Replays `tests/examples/NAME.jsonl` through the shipped flows, observing every record and
/// every output, and advances the clock to the end of the day so that deadlines fire.
pub(super) fn replayed(name: &str) -> (Metrics, Engine) {
    let report = load_dir_or_files(&[root().join("flows")]);
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    let metrics = Metrics::new();
    metrics.register_flows(&report.flows);
    let mut engine = Engine::new(report.flows, EngineConfig::default());
    let text = std::fs::read_to_string(root().join(format!("tests/examples/{name}.jsonl")))
        .expect("example exists");
    let mut outputs = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let record = decode_line(line, index as u64 + 1).expect("example lines decode");
        let before: Stats = engine.stats().clone();
        engine.handle(Input::RecordReceived(&record), &mut outputs);
        metrics.observe_record(&record.topic, &before, engine.stats());
        metrics.observe_outputs(&outputs);
        outputs.clear();
    }
    let end = crate::time::parse_rfc3339("2026-01-08T00:00:00Z").expect("valid time");
    engine.handle(Input::ClockAdvanced(end), &mut outputs);
    metrics.observe_outputs(&outputs);
    (metrics, engine)
}

/// The value of the sample whose name-and-labels text is exactly `series`.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| {
            let (name, value) = line.rsplit_once(' ')?;
            (name == series).then(|| value.parse().expect("sample values are numbers"))
        })
}

/// The sum of the samples of a family (with any labels), excluding `_bucket`, `_sum`,
/// `_count` series of histograms unless `name` names them.
fn total(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let family = series.split('{').next()?;
            (family == name).then(|| value.parse::<f64>().expect("number"))
        })
        .sum()
}

/// The golden signals of an example, as JSON values.
fn golden(name: &str) -> Vec<serde_json::Value> {
    let path = root().join(format!("tests/examples/{name}.signals.jsonl"));
    std::fs::read_to_string(path)
        .expect("golden exists")
        .lines()
        .map(|line| serde_json::from_str(line).expect("golden lines are JSON"))
        .collect()
}

/// Metrics after the checkout day with every shell-side setter called once, so that every
/// family has a series and renders.
pub(super) fn populated() -> Metrics {
    let (metrics, _) = replayed("checkout-day");
    metrics.set_flow_counts(&[FlowCount {
        flow: "order-fulfillment",
        open: 3,
        breached: 1,
        stuck: 1,
    }]);
    metrics.set_step_counts(&[StepCount {
        flow: "order-fulfillment",
        step: "payment",
        state: StepPhase::Breached,
        instances: 2,
    }]);
    metrics.set_consumer_lag("orders", 0, 42);
    metrics.set_event_time_lag(1_000, 3_500);
    metrics.set_event_clock(1_767_225_600_000);
    metrics.set_outbox(3, 512);
    metrics.count_published("signals", 2);
    metrics.count_publish_error("signals");
    metrics.count_dead_letter("orders", "undecodable");
    metrics.observe_checkpoint(0.02, 4096);
    metrics.count_checkpoint_error();
    metrics.count_dropped_on_restore("old-flow", "open_instances", 2);
    metrics.set_watchdog_healthy(true);
    metrics.set_ready(true);
    metrics.set_ready_check("store_writable", true);
    metrics
}

#[test]
fn renders_every_family_with_help_and_type() {
    let metrics = populated();
    let text = metrics.render();
    for (family, kind) in [
        ("flowwatch_records_total", "counter"),
        ("flowwatch_signals_total", "counter"),
        ("flowwatch_open_instances", "gauge"),
        ("flowwatch_breached_instances", "gauge"),
        ("flowwatch_stuck_instances", "gauge"),
        ("flowwatch_open_instances_in_step", "gauge"),
        ("flowwatch_instances_started_total", "counter"),
        ("flowwatch_instances_ended_total", "counter"),
        ("flowwatch_breaches_total", "counter"),
        ("flowwatch_resolutions_total", "counter"),
        ("flowwatch_step_duration_seconds", "histogram"),
        ("flowwatch_instance_duration_seconds", "histogram"),
        ("flowwatch_action_runs_total", "counter"),
        ("flowwatch_alerts_total", "counter"),
        ("flowwatch_orphaned_events_total", "counter"),
        ("flowwatch_orphans_held", "gauge"),
        ("flowwatch_consumer_lag_records", "gauge"),
        ("flowwatch_event_time_lag_seconds", "gauge"),
        ("flowwatch_event_clock_timestamp_seconds", "gauge"),
        ("flowwatch_outbox_records", "gauge"),
        ("flowwatch_outbox_bytes", "gauge"),
        ("flowwatch_published_records_total", "counter"),
        ("flowwatch_publish_errors_total", "counter"),
        ("flowwatch_dead_letters_total", "counter"),
        ("flowwatch_checkpoint_duration_seconds", "histogram"),
        ("flowwatch_checkpoint_size_bytes", "gauge"),
        ("flowwatch_checkpoints_total", "counter"),
        ("flowwatch_watchdog_healthy", "gauge"),
        ("flowwatch_watchdog_trips_total", "counter"),
        ("flowwatch_consumer_assignments_lost_total", "counter"),
        ("flowwatch_ready", "gauge"),
        ("flowwatch_ready_check", "gauge"),
        ("flowwatch_build_info", "gauge"),
    ] {
        assert!(
            text.contains(&format!("# TYPE {family} {kind}\n")),
            "{family} missing:\n{text}"
        );
        assert!(
            text.contains(&format!("# HELP {family} ")),
            "{family} has no help"
        );
    }
    assert_eq!(
        sample(
            &text,
            r#"flowwatch_consumer_lag_records{partition="0",topic="orders"}"#
        ),
        Some(42.0)
    );
    assert_eq!(sample(&text, "flowwatch_event_time_lag_seconds"), Some(2.5));
    assert_eq!(sample(&text, "flowwatch_outbox_bytes"), Some(512.0));
    assert_eq!(
        sample(
            &text,
            r#"flowwatch_open_instances_in_step{flow="order-fulfillment",state="breached",step="payment"}"#
        ),
        Some(2.0)
    );
    assert_eq!(
        sample(&text, r#"flowwatch_checkpoints_total{result="error"}"#),
        Some(1.0)
    );
    let build = format!(
        r#"flowwatch_build_info{{git_commit="{GIT_COMMIT}",version="{}"}}"#,
        env!("CARGO_PKG_VERSION")
    );
    assert_eq!(sample(&text, &build), Some(1.0));
}

#[test]
fn every_name_has_one_prefix_and_counters_end_in_total() {
    let (metrics, _) = replayed("checkout-day");
    let text = metrics.render();
    for line in text.lines().filter(|line| line.starts_with("# TYPE ")) {
        let mut words = line.split(' ').skip(2);
        let (name, kind) = (words.next().unwrap(), words.next().unwrap());
        assert!(
            name.starts_with("flowwatch_") && !name["flowwatch_".len()..].contains("flowwatch"),
            "{name}"
        );
        assert_eq!(
            name.ends_with("_total"),
            kind == "counter",
            "{name} is a {kind}"
        );
    }
}

#[test]
fn records_by_result_add_up_to_the_engine_counts() {
    let (metrics, engine) = replayed("checkout-day");
    let text = metrics.render();
    let stats = engine.stats();
    let result = |result: &str| -> f64 {
        text.lines()
            .filter(|line| {
                line.starts_with("flowwatch_records_total{")
                    && line.contains(&format!("result=\"{result}\""))
            })
            .map(|line| line.rsplit_once(' ').unwrap().1.parse::<f64>().unwrap())
            .sum()
    };
    assert_eq!(
        total(&text, "flowwatch_records_total"),
        stats.records as f64
    );
    assert_eq!(result("duplicate"), stats.duplicates as f64);
    assert_eq!(
        result("matched") + result("duplicate"),
        stats.matched as f64
    );
    assert_eq!(result("unmatched"), stats.unmatched as f64);
    assert_eq!(result("invalid"), stats.invalid as f64);
    assert!(
        result("matched") > 0.0 && result("unmatched") > 0.0,
        "the day has both:\n{text}"
    );
}

#[test]
fn signal_counters_match_the_golden_signals() {
    let (metrics, engine) = replayed("checkout-day");
    let text = metrics.render();
    let signals = golden("checkout-day");
    let count = |kind: &str| {
        signals
            .iter()
            .filter(|s| s["type"] == format!("flowwatch.{kind}"))
            .count() as f64
    };
    // The golden is replayed to a later --until; only compare what the record stream decides.
    let stats = engine.stats();
    assert_eq!(
        total(&text, "flowwatch_instances_started_total"),
        stats.started as f64
    );
    assert_eq!(
        total(&text, "flowwatch_instances_started_total"),
        count("started")
    );
    assert_eq!(
        total(&text, "flowwatch_breaches_total"),
        stats.breaches as f64
    );
    assert_eq!(
        total(&text, "flowwatch_action_runs_total"),
        stats.actions as f64
    );
    assert_eq!(
        total(&text, "flowwatch_instances_ended_total"),
        (stats.completed + stats.failed) as f64
    );
    assert_eq!(
        sample(&text, r#"flowwatch_signals_total{kind="started"}"#),
        Some(count("started"))
    );
    assert!(
        stats.breaches > 0 && stats.actions > 0,
        "the day has breaches and actions"
    );
}

#[test]
fn durations_are_observed_for_completed_steps_and_ended_instances() {
    let (metrics, engine) = replayed("checkout-day");
    let text = metrics.render();
    let stats = engine.stats();
    let step_completions = text
        .lines()
        .find(|line| line.starts_with(r#"flowwatch_signals_total{kind="step_completed"}"#))
        .map(|line| line.rsplit_once(' ').unwrap().1.parse::<f64>().unwrap())
        .unwrap();
    let observed_steps = total(&text, "flowwatch_step_duration_seconds_count");
    assert!(
        observed_steps > 0.0 && observed_steps <= step_completions,
        "{observed_steps} of {step_completions}"
    );
    assert_eq!(
        total(&text, "flowwatch_instance_duration_seconds_count"),
        (stats.completed + stats.failed) as f64
    );
    assert!(total(&text, "flowwatch_instance_duration_seconds_sum") > 0.0);
}

#[test]
fn durations_are_event_time_differences() {
    use crate::engine::Signal;
    let report = load_dir_or_files(&[root().join("flows")]);
    let mut engine = Engine::new(report.flows, EngineConfig::default());
    let text =
        std::fs::read_to_string(root().join("tests/examples/order-fulfillment.jsonl")).unwrap();
    let mut outputs = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let record = decode_line(line, index as u64 + 1).unwrap();
        engine.handle(Input::RecordReceived(&record), &mut outputs);
    }
    let signals: Vec<&Signal> = outputs
        .iter()
        .filter_map(|output| match output {
            Output::Emit(signal) => Some(signal),
            _ => None,
        })
        .collect();
    let mut checked = 0;
    for signal in &signals {
        let started = signals
            .iter()
            .find(|s| {
                s.kind == crate::engine::SignalKind::Started
                    && s.data.key == signal.data.key
                    && s.data.flow == signal.data.flow
            })
            .map(|s| s.time);
        match signal.kind {
            crate::engine::SignalKind::Completed | crate::engine::SignalKind::Failed => {
                if let Some(started) = started {
                    assert_eq!(signal.duration, Some(signal.time - started), "{signal:?}");
                    checked += 1;
                }
            }
            crate::engine::SignalKind::StepCompleted if signal.data.skipped.is_none() => {
                let duration = signal.duration.expect("completed steps carry a duration");
                assert!(
                    duration >= 0
                        && started.is_none_or(|started| duration <= signal.time - started)
                );
            }
            crate::engine::SignalKind::StepCompleted => assert_eq!(signal.duration, None),
            _ => assert_eq!(signal.duration, None, "{signal:?}"),
        }
    }
    assert!(checked > 0, "the example ends some instances");
}

#[test]
fn zero_series_exist_for_every_declared_flow_before_any_event() {
    let report = load_dir_or_files(&[root().join("flows")]);
    let metrics = Metrics::new();
    metrics.register_flows(&report.flows);
    let text = metrics.render();
    for flow in &report.flows {
        let name = flow.name();
        assert_eq!(
            sample(
                &text,
                &format!(r#"flowwatch_instances_started_total{{flow="{name}"}}"#)
            ),
            Some(0.0)
        );
        for step in flow.def.steps.iter().filter(|step| step.within.is_some()) {
            let series = format!(
                r#"flowwatch_breaches_total{{flow="{name}",reason="sla",step="{}"}}"#,
                step.name
            );
            assert_eq!(sample(&text, &series), Some(0.0), "{series}");
        }
    }
}

#[test]
fn gauges_are_replaced_not_accumulated() {
    let metrics = Metrics::new();
    metrics.set_flow_counts(&[FlowCount {
        flow: "a",
        open: 5,
        breached: 0,
        stuck: 0,
    }]);
    metrics.set_flow_counts(&[FlowCount {
        flow: "b",
        open: 1,
        breached: 1,
        stuck: 0,
    }]);
    let text = metrics.render();
    assert_eq!(sample(&text, r#"flowwatch_open_instances{flow="a"}"#), None);
    assert_eq!(
        sample(&text, r#"flowwatch_open_instances{flow="b"}"#),
        Some(1.0)
    );
    metrics.set_consumer_lag("orders", 3, 7);
    metrics.forget_partition("orders", 3);
    metrics.forget_partition("orders", 4);
    assert_eq!(
        total(&metrics.render(), "flowwatch_consumer_lag_records"),
        0.0
    );
}

#[test]
fn watchdog_trips_count_transitions_to_unhealthy() {
    let metrics = Metrics::new();
    for healthy in [true, false, false, true, false] {
        metrics.set_watchdog_healthy(healthy);
    }
    let text = metrics.render();
    assert_eq!(sample(&text, "flowwatch_watchdog_trips_total"), Some(2.0));
    assert_eq!(sample(&text, "flowwatch_watchdog_healthy"), Some(0.0));
}

#[test]
fn event_time_lag_waits_for_the_first_record() {
    let metrics = Metrics::new();
    metrics.set_event_time_lag(crate::time::Millis::MIN, 1_000);
    assert_eq!(
        sample(&metrics.render(), "flowwatch_event_time_lag_seconds"),
        Some(0.0)
    );
}

#[test]
fn no_label_carries_a_business_key() {
    let (metrics, _) = replayed("checkout-day");
    let text = metrics.render();
    for signal in golden("checkout-day") {
        let key = signal["data"]["key"].as_str().unwrap();
        assert!(
            !text.contains(&format!("\"{key}\"")),
            "key {key} appears in a label"
        );
    }
}

#[test]
fn renderer_renders_the_same_registry() {
    let metrics = Metrics::new();
    let render = metrics.renderer();
    metrics.set_ready(true);
    assert_eq!(sample(&render(), "flowwatch_ready"), Some(1.0));
    // Two instances never share a registry.
    assert_eq!(
        sample(&Metrics::new().render(), "flowwatch_ready"),
        Some(0.0)
    );
}

#[test]
fn engine_gauges_follow_the_engine_clock() {
    let (metrics, engine) = replayed("checkout-day");
    let wall = engine.clock() + 90_000;
    metrics.observe_engine(&engine, wall);
    let text = metrics.render();
    assert_eq!(
        sample(&text, "flowwatch_event_time_lag_seconds"),
        Some(90.0)
    );
    assert_eq!(
        sample(&text, "flowwatch_event_clock_timestamp_seconds"),
        Some(engine.clock() as f64 / 1000.0)
    );
    assert_eq!(
        sample(&text, "flowwatch_orphans_held"),
        Some(engine.stats().orphans_held as f64)
    );
}
