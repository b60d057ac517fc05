//! Recording engine values: the outputs of one `Engine::handle` call, the classification of a
//! record from the engine's counters, and the zero-valued series of each flow so that rates
//! and alerts work before the first event of a kind.

use super::{seconds, Metrics};
use crate::engine::{Engine, Output, Reason, SignalKind, Stats};
use crate::flow::Flow;
use crate::time::Millis;

/// What became of one record (the `result` label of `flowwatch_records_total`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RecordResult {
    /// A valid event of at least one flow.
    Matched,
    /// No flow event matched it.
    Unmatched,
    /// Undecodable, or matched but without a usable key or time (dead-lettered).
    Invalid,
    /// A valid event whose id the instance had already recorded (ignored).
    Duplicate,
}

impl RecordResult {
    /// The `result` label value.
    pub fn as_str(self) -> &'static str {
        match self {
            RecordResult::Matched => "matched",
            RecordResult::Unmatched => "unmatched",
            RecordResult::Invalid => "invalid",
            RecordResult::Duplicate => "duplicate",
        }
    }

    /// Classifies the record the engine handled between two snapshots of its counters
    /// (`Engine::stats` before and after one `Input::RecordReceived`). A record that was a
    /// duplicate is `Duplicate` even though the engine also counts it as matched; a record
    /// valid for one flow and invalid for another is `Matched`.
    pub fn from_stats(before: &Stats, after: &Stats) -> RecordResult {
        if after.duplicates > before.duplicates {
            RecordResult::Duplicate
        } else if after.matched > before.matched {
            RecordResult::Matched
        } else if after.invalid > before.invalid {
            RecordResult::Invalid
        } else {
            RecordResult::Unmatched
        }
    }
}

/// The `outcome` label of ended instances.
const COMPLETED: &str = "completed";
const FAILED: &str = "failed";

impl Metrics {
    /// Counts one record read from `topic`, classified from the engine's counters before and
    /// after it was handled (see [`RecordResult::from_stats`]), and updates the orphans-held
    /// gauge from `after`.
    pub fn observe_record(&self, topic: &str, before: &Stats, after: &Stats) {
        self.count_record(topic, RecordResult::from_stats(before, after));
        self.set_orphans_held(after.orphans_held);
    }

    /// Sets the gauges read from the engine itself: events held as orphans, the event clock,
    /// and how far it trails `wall_clock` (which the caller reads from its clock). Call it
    /// after each batch or timer tick; timers release orphans without any record arriving.
    pub fn observe_engine(&self, engine: &Engine, wall_clock: Millis) {
        self.set_orphans_held(engine.stats().orphans_held);
        self.set_event_clock(engine.clock());
        self.set_event_time_lag(engine.clock(), wall_clock);
    }

    /// Records what the engine's outputs say: signals by kind, instances started and ended,
    /// breaches, resolutions, step and instance durations, action runs, alerts, deviations,
    /// orphaned events and dead letters. Call it once per `Engine::handle` with the outputs of
    /// that call (each output is counted once per call).
    pub fn observe_outputs(&self, outputs: &[Output]) {
        let families = &self.families;
        for output in outputs {
            let signal = match output {
                Output::Emit(signal) => signal,
                Output::Publish(_) => continue,
                Output::DeadLetter(rejection) => {
                    self.count_dead_letter(&rejection.topic, rejection.reason);
                    continue;
                }
            };
            let data = &signal.data;
            let flow: &str = &data.flow;
            let step = data.step.as_deref().unwrap_or("");
            let reason = data.reason.map_or("", Reason::as_str);
            families
                .signals
                .with_label_values(&[signal.kind.as_str()])
                .inc();
            if signal.alert {
                families.alerts.with_label_values(&[flow]).inc();
            }
            match signal.kind {
                SignalKind::Started => families.instances_started.with_label_values(&[flow]).inc(),
                SignalKind::StepCompleted => {
                    if let Some(duration) = signal.duration {
                        families
                            .step_duration
                            .with_label_values(&[flow, step])
                            .observe(seconds(duration));
                    }
                }
                SignalKind::Breached => {
                    families
                        .breaches
                        .with_label_values(&[flow, step, reason])
                        .inc();
                }
                SignalKind::Resolved => {
                    families
                        .resolutions
                        .with_label_values(&[flow, step, reason])
                        .inc();
                }
                SignalKind::Action => {
                    let action = data.action.as_deref().unwrap_or("");
                    families
                        .action_runs
                        .with_label_values(&[flow, action])
                        .inc();
                }
                SignalKind::Completed | SignalKind::Failed => {
                    let outcome = if signal.kind == SignalKind::Completed {
                        COMPLETED
                    } else {
                        FAILED
                    };
                    families
                        .instances_ended
                        .with_label_values(&[flow, outcome])
                        .inc();
                    if let Some(duration) = signal.duration {
                        families
                            .instance_duration
                            .with_label_values(&[flow, outcome])
                            .observe(seconds(duration));
                    }
                }
                SignalKind::Orphaned => {
                    families
                        .orphaned_events
                        .with_label_values(&[flow])
                        .inc_by(u64::from(data.held.unwrap_or(0)));
                }
                SignalKind::Deviation => {
                    families.deviations.with_label_values(&[flow, reason]).inc();
                }
            }
        }
    }

    /// Creates the zero-valued series of every flow (instances started and ended, breaches
    /// of each step with an SLA and of the deadline and stuck detection where declared, action
    /// runs, alerts, orphaned events), so that `rate()` and `increase()` see the first event
    /// of each kind and dashboards list every flow from the start.
    pub fn register_flows(&self, flows: &[Flow]) {
        let families = &self.families;
        for flow in flows {
            let definition = &flow.def;
            let name = definition.name.as_str();
            families.instances_started.with_label_values(&[name]);
            families
                .instances_ended
                .with_label_values(&[name, COMPLETED]);
            families.instances_ended.with_label_values(&[name, FAILED]);
            families.alerts.with_label_values(&[name]);
            families.orphaned_events.with_label_values(&[name]);
            for step in &definition.steps {
                if step.within.is_some() {
                    let labels = [name, step.name.as_str(), Reason::Sla.as_str()];
                    families.breaches.with_label_values(&labels);
                }
            }
            if definition.deadline.is_some() {
                let labels = [name, "", Reason::Deadline.as_str()];
                families.breaches.with_label_values(&labels);
            }
            if definition.stuck_after.is_some() {
                let labels = [name, "", Reason::Stuck.as_str()];
                families.breaches.with_label_values(&labels);
            }
            for action in &definition.actions {
                let labels = [name, action.name.as_str()];
                families.action_runs.with_label_values(&labels);
            }
        }
    }
}
