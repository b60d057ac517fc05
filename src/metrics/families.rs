//! The metric families: each name, help text, label set and bucket layout, in one table-like
//! constructor. Adding a metric means adding a field here and a line to docs/metrics.md.

use prometheus::core::Collector;
use prometheus::{
    Gauge, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry,
};

/// Buckets for step and instance durations, in seconds: one second to one week (flows measure
/// business processes, whose SLAs run from seconds to days).
const PROCESS_BUCKETS: &[f64] = &[
    1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0, 7200.0, 14400.0,
    28800.0, 86400.0, 172800.0, 604800.0,
];

/// Buckets for checkpoint durations, in seconds: one millisecond to a minute.
const CHECKPOINT_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// The metric handles (each is a shared handle: cloning clones a reference).
#[derive(Clone)]
pub(super) struct Families {
    pub records: IntCounterVec,
    pub signals: IntCounterVec,
    pub open_instances: IntGaugeVec,
    pub breached_instances: IntGaugeVec,
    pub stuck_instances: IntGaugeVec,
    pub open_instances_in_step: IntGaugeVec,
    pub instances_started: IntCounterVec,
    pub instances_ended: IntCounterVec,
    pub breaches: IntCounterVec,
    pub resolutions: IntCounterVec,
    pub step_duration: HistogramVec,
    pub instance_duration: HistogramVec,
    pub action_runs: IntCounterVec,
    pub alerts: IntCounterVec,
    pub deviations: IntCounterVec,
    pub orphaned_events: IntCounterVec,
    pub orphans_held: IntGauge,
    pub consumer_lag: IntGaugeVec,
    pub event_time_lag: Gauge,
    pub event_clock: Gauge,
    pub outbox_records: IntGauge,
    pub outbox_bytes: IntGauge,
    pub published: IntCounterVec,
    pub publish_errors: IntCounterVec,
    pub dead_letters: IntCounterVec,
    pub dropped_on_restore: IntCounterVec,
    pub checkpoint_duration: Histogram,
    pub checkpoint_size: IntGauge,
    pub checkpoints: IntCounterVec,
    pub watchdog_healthy: IntGauge,
    pub watchdog_trips: IntCounter,
    pub assignments_lost: IntCounter,
    pub ready: IntGauge,
    pub ready_checks: IntGaugeVec,
    pub build_info: IntGaugeVec,
}

impl Families {
    /// Creates every family and registers it in `registry`.
    pub fn register(registry: &Registry) -> Families {
        let r = registry;
        Families {
            records: counters(
                r,
                "flowwatch_records_total",
                "Records read, by topic and result (matched, unmatched, invalid, duplicate).",
                &["topic", "result"],
            ),
            signals: counters(
                r,
                "flowwatch_signals_total",
                "Signals emitted, by kind.",
                &["kind"],
            ),
            open_instances: gauges(
                r,
                "flowwatch_open_instances",
                "Open process instances.",
                &["flow"],
            ),
            breached_instances: gauges(
                r,
                "flowwatch_breached_instances",
                "Open instances with at least one unresolved breach.",
                &["flow"],
            ),
            stuck_instances: gauges(
                r,
                "flowwatch_stuck_instances",
                "Open instances with an unresolved stuck breach (no event for the flow's stuck \
                 period).",
                &["flow"],
            ),
            open_instances_in_step: gauges(
                r,
                "flowwatch_open_instances_in_step",
                "Open instances whose step is in a state (waiting, open, breached, done).",
                &["flow", "step", "state"],
            ),
            instances_started: counters(
                r,
                "flowwatch_instances_started_total",
                "Instances opened.",
                &["flow"],
            ),
            instances_ended: counters(
                r,
                "flowwatch_instances_ended_total",
                "Instances ended, by outcome (completed, failed).",
                &["flow", "outcome"],
            ),
            breaches: counters(
                r,
                "flowwatch_breaches_total",
                "Breaches signalled, by flow, step (empty for deadline and stuck) and reason \
                 (sla, deadline, stuck).",
                &["flow", "step", "reason"],
            ),
            resolutions: counters(
                r,
                "flowwatch_resolutions_total",
                "Breaches resolved by a later event, by flow, step and reason.",
                &["flow", "step", "reason"],
            ),
            step_duration: histograms(
                r,
                "flowwatch_step_duration_seconds",
                "Event time from a step opening to its completion.",
                &["flow", "step"],
                PROCESS_BUCKETS,
            ),
            instance_duration: histograms(
                r,
                "flowwatch_instance_duration_seconds",
                "Event time from an instance's start to its end, by outcome.",
                &["flow", "outcome"],
                PROCESS_BUCKETS,
            ),
            action_runs: counters(
                r,
                "flowwatch_action_runs_total",
                "Declared action runs, by flow and action.",
                &["flow", "action"],
            ),
            alerts: counters(
                r,
                "flowwatch_alerts_total",
                "Signals sent to the alerts topic (the built-in alert action), by flow.",
                &["flow"],
            ),
            deviations: counters(
                r,
                "flowwatch_deviations_total",
                "Deviation signals, by flow and reason.",
                &["flow", "reason"],
            ),
            orphaned_events: counters(
                r,
                "flowwatch_orphaned_events_total",
                "Held events dropped because no instance claimed them in time.",
                &["flow"],
            ),
            orphans_held: gauge(
                r,
                "flowwatch_orphans_held",
                "Events currently held as orphans.",
            ),
            consumer_lag: gauges(
                r,
                "flowwatch_consumer_lag_records",
                "Records between the consumer position and the high watermark, per owned \
                 partition.",
                &["topic", "partition"],
            ),
            event_time_lag: float_gauge(
                r,
                "flowwatch_event_time_lag_seconds",
                "How far the event clock trails the wall clock.",
            ),
            event_clock: float_gauge(
                r,
                "flowwatch_event_clock_timestamp_seconds",
                "The event clock, as a Unix timestamp.",
            ),
            outbox_records: gauge(
                r,
                "flowwatch_outbox_records",
                "Records in the outbox waiting to be published.",
            ),
            outbox_bytes: gauge(
                r,
                "flowwatch_outbox_bytes",
                "Bytes of the records in the outbox.",
            ),
            published: counters(
                r,
                "flowwatch_published_records_total",
                "Records published, by topic.",
                &["topic"],
            ),
            publish_errors: counters(
                r,
                "flowwatch_publish_errors_total",
                "Failed publish attempts, by topic.",
                &["topic"],
            ),
            dead_letters: counters(
                r,
                "flowwatch_dead_letters_total",
                "Records dead-lettered, by source topic and reason.",
                &["topic", "reason"],
            ),
            dropped_on_restore: counters(
                r,
                "flowwatch_dropped_on_restore_total",
                "State dropped at start because its flow was removed or reshaped since the checkpoint, by flow and kind (open_instances, ended_instances, orphan_groups).",
                &["flow", "kind"],
            ),
            checkpoint_duration: histogram(
                r,
                "flowwatch_checkpoint_duration_seconds",
                "Wall time to write a checkpoint.",
                CHECKPOINT_BUCKETS,
            ),
            checkpoint_size: gauge(
                r,
                "flowwatch_checkpoint_size_bytes",
                "Size of the latest checkpoint.",
            ),
            checkpoints: counters(
                r,
                "flowwatch_checkpoints_total",
                "Checkpoints attempted, by result (ok, error).",
                &["result"],
            ),
            watchdog_healthy: gauge(
                r,
                "flowwatch_watchdog_healthy",
                "1 while the consumer watchdog sees progress, 0 once it has tripped.",
            ),
            watchdog_trips: counter(
                r,
                "flowwatch_watchdog_trips_total",
                "Times the consumer watchdog tripped.",
            ),
            assignments_lost: counter(
                r,
                "flowwatch_consumer_assignments_lost_total",
                "Times the consumer lost its partitions with its group membership (session timeout) and rejoined.",
            ),
            ready: gauge(
                r,
                "flowwatch_ready",
                "1 when the process is ready (what /readyz answers), else 0.",
            ),
            ready_checks: gauges(
                r,
                "flowwatch_ready_check",
                "1 when a readiness check passes, by check.",
                &["check"],
            ),
            build_info: gauges(
                r,
                "flowwatch_build_info",
                "Always 1; the labels say which build runs.",
                &["version", "git_commit"],
            ),
        }
    }
}

// The constructors below fail only for an invalid name, label or bucket layout, or a name
// registered twice: all are constants of this file, exercised by every test that calls
// `Metrics::new`, so the `expect`s state invariants.

const DEFINED_ONCE: &str = "metric names and labels are valid constants, each registered once";

fn register<C: Collector + Clone + 'static>(registry: &Registry, collector: C) -> C {
    registry
        .register(Box::new(collector.clone()))
        .expect(DEFINED_ONCE);
    collector
}

fn counters(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    register(
        registry,
        IntCounterVec::new(Opts::new(name, help), labels).expect(DEFINED_ONCE),
    )
}

fn counter(registry: &Registry, name: &str, help: &str) -> IntCounter {
    register(registry, IntCounter::new(name, help).expect(DEFINED_ONCE))
}

fn gauges(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    register(
        registry,
        IntGaugeVec::new(Opts::new(name, help), labels).expect(DEFINED_ONCE),
    )
}

fn gauge(registry: &Registry, name: &str, help: &str) -> IntGauge {
    register(registry, IntGauge::new(name, help).expect(DEFINED_ONCE))
}

fn float_gauge(registry: &Registry, name: &str, help: &str) -> Gauge {
    register(registry, Gauge::new(name, help).expect(DEFINED_ONCE))
}

fn histograms(
    registry: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
    buckets: &[f64],
) -> HistogramVec {
    let options = HistogramOpts::new(name, help).buckets(buckets.to_vec());
    register(
        registry,
        HistogramVec::new(options, labels).expect(DEFINED_ONCE),
    )
}

fn histogram(registry: &Registry, name: &str, help: &str, buckets: &[f64]) -> Histogram {
    let options = HistogramOpts::new(name, help).buckets(buckets.to_vec());
    register(registry, Histogram::with_opts(options).expect(DEFINED_ONCE))
}
