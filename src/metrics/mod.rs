//! Prometheus metrics: every metric flowwatch exports is defined once here, in [`Metrics`],
//! which owns its own [`prometheus::Registry`] and renders the text exposition format for the
//! `/metrics` route. Names follow Prometheus conventions: one `flowwatch_` prefix, base units
//! (seconds, bytes), `_total` on counters, histograms for durations. Labels have bounded
//! cardinality (flow, step, action, reason, topic, partition, outcome); a business key or an
//! instance id is never a label. Engine facts are recorded from the engine's own values
//! ([`Metrics::observe_outputs`], [`Metrics::observe_record`]); the shells set their gauges
//! through plain setters. Nothing here reads a clock: callers pass times and durations in.

mod families;
mod observe;

#[cfg(test)]
mod promtool;
#[cfg(test)]
mod shipped;
#[cfg(test)]
mod tests;

pub use observe::RecordResult;

use crate::time::Millis;
use families::Families;
use prometheus::{Encoder, Registry, TextEncoder};

/// The content type of [`Metrics::render`]'s output (Prometheus text format 0.0.4).
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The git commit flowwatch was built from, when the build environment provided one in
/// `FLOWWATCH_GIT_COMMIT` (set by `build.rs` from `git rev-parse HEAD` when available).
pub const GIT_COMMIT: &str = match option_env!("FLOWWATCH_GIT_COMMIT") {
    Some(commit) => commit,
    None => "unknown",
};

/// The phase of one step of an open instance: the `state` label of
/// `flowwatch_open_instances_in_step` (see [`Metrics::set_step_counts`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StepPhase {
    /// Waiting for the steps in its `after`.
    Waiting,
    /// Open and within its window.
    Open,
    /// Open with a breach signalled and not resolved.
    Breached,
    /// Completed or skipped.
    Done,
}

impl StepPhase {
    /// The `state` label value.
    pub fn as_str(self) -> &'static str {
        match self {
            StepPhase::Waiting => "waiting",
            StepPhase::Open => "open",
            StepPhase::Breached => "breached",
            StepPhase::Done => "done",
        }
    }
}

/// How many open instances of a flow have a step in a state (one row of the
/// `flowwatch_open_instances_in_step` gauge).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StepCount<'a> {
    pub flow: &'a str,
    pub step: &'a str,
    pub state: StepPhase,
    pub instances: u64,
}

/// Counts of open instances of one flow (the `flowwatch_open_instances`,
/// `flowwatch_breached_instances` and `flowwatch_stuck_instances` gauges).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlowCount<'a> {
    pub flow: &'a str,
    /// Open instances.
    pub open: u64,
    /// Open instances with at least one unresolved breach.
    pub breached: u64,
    /// Open instances with an unresolved `stuck` breach.
    pub stuck: u64,
}

/// Every metric of flowwatch, registered in a registry of its own. Cloning is cheap (the
/// metric handles are shared), so the HTTP router and each shell can hold a clone.
#[derive(Clone)]
pub struct Metrics {
    /// The registry the families are registered in; `render` gathers from it alone, so tests
    /// and several engines in one process never see each other's metrics.
    registry: Registry,
    families: Families,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    /// All families, registered, with `flowwatch_build_info` set, `flowwatch_ready` at 0 and
    /// `flowwatch_watchdog_healthy` at 1.
    pub fn new() -> Metrics {
        let registry = Registry::new();
        let families = Families::register(&registry);
        families
            .build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION"), GIT_COMMIT])
            .set(1);
        families.watchdog_healthy.set(1);
        Metrics { registry, families }
    }

    /// The metrics in the Prometheus text format (see [`CONTENT_TYPE`]).
    pub fn render(&self) -> String {
        let mut buffer = Vec::new();
        let families = self.registry.gather();
        if let Err(error) = TextEncoder::new().encode(&families, &mut buffer) {
            // Only malformed families fail to encode, and every family is defined here and
            // checked by the tests; say so in the output rather than fail the scrape.
            return format!("# flowwatch: metrics could not be encoded: {error}\n");
        }
        // The text encoder writes only UTF-8 (names, label values from &str, numbers).
        String::from_utf8(buffer).unwrap_or_default()
    }

    /// A render function for the HTTP router's `/metrics` route.
    pub fn renderer(&self) -> std::sync::Arc<dyn Fn() -> String + Send + Sync> {
        let metrics = self.clone();
        std::sync::Arc::new(move || metrics.render())
    }

    /// Counts one record read from `topic` with its result.
    pub fn count_record(&self, topic: &str, result: RecordResult) {
        self.count_records(topic, result, 1);
    }

    /// Counts `records` records read from `topic` with the same result (one labelled lookup for
    /// a batch: the daemon adds up a turn's records by topic and result).
    pub fn count_records(&self, topic: &str, result: RecordResult, records: u64) {
        self.families
            .records
            .with_label_values(&[topic, result.as_str()])
            .inc_by(records);
    }

    /// Replaces the per-flow gauges of open instances with these counts (flows not listed
    /// disappear).
    pub fn set_flow_counts(&self, counts: &[FlowCount<'_>]) {
        let families = &self.families;
        families.open_instances.reset();
        families.breached_instances.reset();
        families.stuck_instances.reset();
        for count in counts {
            let labels = [count.flow];
            families
                .open_instances
                .with_label_values(&labels)
                .set(gauge(count.open));
            families
                .breached_instances
                .with_label_values(&labels)
                .set(gauge(count.breached));
            families
                .stuck_instances
                .with_label_values(&labels)
                .set(gauge(count.stuck));
        }
    }

    /// Replaces `flowwatch_open_instances_in_step` with these counts (rows not listed
    /// disappear).
    pub fn set_step_counts(&self, counts: &[StepCount<'_>]) {
        let family = &self.families.open_instances_in_step;
        family.reset();
        for count in counts {
            family
                .with_label_values(&[count.flow, count.step, count.state.as_str()])
                .set(gauge(count.instances));
        }
    }

    /// Sets the number of events held as orphans (the engine's `Stats::orphans_held`).
    pub fn set_orphans_held(&self, events: u64) {
        self.families.orphans_held.set(gauge(events));
    }

    /// Sets the consumer lag of an owned partition: high watermark less the next offset to read.
    pub fn set_consumer_lag(&self, topic: &str, partition: i32, records: i64) {
        self.families
            .consumer_lag
            .with_label_values(&[topic, &partition.to_string()])
            .set(records);
    }

    /// Removes the lag of a partition this process no longer owns (after a rebalance).
    pub fn forget_partition(&self, topic: &str, partition: i32) {
        // An error only says the partition had no lag recorded, which is what we want.
        let _ = self
            .families
            .consumer_lag
            .remove_label_values(&[topic, &partition.to_string()]);
    }

    /// Sets how far the event clock trails the wall clock. Both are passed in: this module
    /// never reads a clock. Before the first record (`Millis::MIN`) the gauge is left alone.
    pub fn set_event_time_lag(&self, event_clock: Millis, wall_clock: Millis) {
        if event_clock == Millis::MIN {
            return;
        }
        let lag = wall_clock.saturating_sub(event_clock);
        self.families.event_time_lag.set(seconds(lag));
    }

    /// Sets the event clock itself, as a Unix timestamp in seconds.
    pub fn set_event_clock(&self, event_clock: Millis) {
        if event_clock != Millis::MIN {
            self.families.event_clock.set(seconds(event_clock));
        }
    }

    /// Sets the outbox size: records waiting to be published and their bytes.
    pub fn set_outbox(&self, records: u64, bytes: u64) {
        self.families.outbox_records.set(gauge(records));
        self.families.outbox_bytes.set(gauge(bytes));
    }

    /// Counts records published to `topic`.
    pub fn count_published(&self, topic: &str, records: u64) {
        self.families
            .published
            .with_label_values(&[topic])
            .inc_by(records);
    }

    /// Counts one failed publish attempt to `topic`.
    pub fn count_publish_error(&self, topic: &str) {
        self.families
            .publish_errors
            .with_label_values(&[topic])
            .inc();
    }

    /// Counts one dead-lettered record from `topic`; `reason` is a stable code (`missing_key`,
    /// `bad_time`, `undecodable`). Engine dead letters are counted by `observe_outputs`; use
    /// this for records the shell rejects before the engine sees them.
    pub fn count_dead_letter(&self, topic: &str, reason: &str) {
        self.families
            .dead_letters
            .with_label_values(&[topic, reason])
            .inc();
    }

    /// Records one successful checkpoint: how long it took and how large it was.
    pub fn observe_checkpoint(&self, duration_seconds: f64, bytes: u64) {
        self.families.checkpoint_duration.observe(duration_seconds);
        self.families.checkpoint_size.set(gauge(bytes));
        self.families.checkpoints.with_label_values(&["ok"]).inc();
    }

    /// Counts state dropped at start because its flow was removed or reshaped (`kind`:
    /// `open_instances`, `ended_instances` or `orphan_groups`).
    pub fn count_dropped_on_restore(&self, flow: &str, kind: &str, count: u64) {
        self.families
            .dropped_on_restore
            .with_label_values(&[flow, kind])
            .inc_by(count);
    }

    /// Counts one failed checkpoint.
    pub fn count_checkpoint_error(&self) {
        self.families
            .checkpoints
            .with_label_values(&["error"])
            .inc();
    }

    /// Sets the watchdog state: healthy while the consumer makes progress. A change from
    /// healthy to unhealthy counts a trip.
    pub fn set_watchdog_healthy(&self, healthy: bool) {
        let gauge = &self.families.watchdog_healthy;
        if !healthy && gauge.get() == 1 {
            self.families.watchdog_trips.inc();
        }
        gauge.set(i64::from(healthy));
    }

    /// Counts a lost assignment (the group session timed out; the consumer rejoins).
    pub fn count_assignment_lost(&self) {
        self.families.assignments_lost.inc();
    }

    /// Sets whether the process is ready (what `/readyz` answers).
    pub fn set_ready(&self, ready: bool) {
        self.families.ready.set(i64::from(ready));
    }

    /// Sets one readiness check (`partitions_assigned`, `state_restored`, `store_writable`,
    /// `watchdog`).
    pub fn set_ready_check(&self, check: &str, ok: bool) {
        self.families
            .ready_checks
            .with_label_values(&[check])
            .set(i64::from(ok));
    }
}

/// A count as a gauge value (counts beyond `i64::MAX` do not occur; they saturate).
fn gauge(count: u64) -> i64 {
    i64::try_from(count).unwrap_or(i64::MAX)
}

/// Milliseconds as seconds.
fn seconds(millis: Millis) -> f64 {
    millis as f64 / 1000.0
}
