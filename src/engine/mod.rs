//! The tracking engine: a pure, deterministic state machine that turns records into signals.
//!
//! It is driven only through [`Engine::handle`] with an [`Input`] (a record was read, the clock
//! advanced) and answers only with [`Output`]s (signals, action records to publish, records to
//! dead-letter). It never does I/O and never reads a clock: time is the event clock of SPEC
//! 1.3, moved by record times less the allowed lateness, or by the shell. All instance state
//! lives here; timers are one ordered queue ([`timers`]), so an engine fed the same inputs
//! emits the same outputs, byte for byte.

mod apply;
mod blocks;
mod breach;
mod emit;
pub mod changes;
pub mod correlate;
pub mod history;
pub mod instance;
pub mod migrate;
pub mod operator;
mod orphans;
pub mod parts;
pub mod query;
mod renumber;
pub mod signal;
pub mod signal_id;
pub mod snapshot;
pub mod timers;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

pub use history::OperatorCommand;
pub use operator::{OperatorRefusal, OperatorRequest};
pub use signal::{Reason, Signal, SignalKind};

use crate::flow::Flow;
use crate::record::Record;
use crate::time::Millis;
use correlate::{Match, TopicIndex};
use hashbrown::{HashMap, HashTable};
use instance::Instance;
use orphans::OrphanGroup;
use serde::Serialize;
use serde_json::Value;
use std::sync::Arc;
use timers::{TimerTarget, Timers};

/// Settings of the engine (SPEC 1.3, 1.4 and the configuration's `tracking` section).
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// The instance name; signals carry `source: flowwatch/NAME`.
    pub instance_name: String,
    /// How far the clock trails the highest record time.
    pub allowed_lateness: Millis,
    /// How long events of an unknown key or alias are held.
    pub orphan_after: Millis,
    /// How long ended instances are kept, from their end.
    pub retention: Millis,
    /// Entries of the audit trail kept per instance (events as received, operator commands);
    /// 0, the default, keeps none and costs nothing.
    pub history_limit: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            instance_name: "replay".to_string(),
            allowed_lateness: 0,
            orphan_after: 5 * 60_000,
            retention: 7 * 86_400_000,
            history_limit: 0,
        }
    }
}

/// A fact the engine is told.
#[derive(Clone, Debug)]
pub enum Input<'r> {
    /// A record was read: the clock moves to its time less the allowed lateness, due timers
    /// fire, then the record is applied, then timers that became due fire.
    RecordReceived(&'r Record<'r>),
    /// A record was read and already matched by this engine's [`Engine::correlator`] or
    /// [`Engine::correlate`] (replay matches on its decoding thread, the live worker when it
    /// reads a record it then holds): handled exactly like `RecordReceived` with these
    /// matches. Matches from a correlator of other flows would be applied as they are. The
    /// matches carry all the engine takes from the record's value (kept fields, the audit
    /// trail's copy), so `record.value` is not read and may be `Json::Null`.
    CorrelatedRecordReceived {
        record: &'r Record<'r>,
        matches: Vec<Match<'r>>,
    },
    /// A record was read whose event time lies further in the future than the live clock
    /// allows (`tracking.max_clock_skew`): it is applied like `RecordReceived`, but with every
    /// event time replaced by `now` (the wall-clock time), and each instance it reaches gets a
    /// `deviation` of reason `clock_skew`.
    SkewedRecordReceived { record: &'r Record<'r>, now: Millis },
    /// The clock advanced to this time (no lateness is subtracted); due timers fire.
    ClockAdvanced(Millis),
    /// Breaches with deadlines before this time are signalled but run no actions (the action
    /// horizon while catching up on history).
    ActionHorizonSet(Millis),
    /// An operator asked to run a step's `on_breach` actions now (counting attempts like a
    /// breach; the step's window is not re-opened).
    RetryRequested(&'r OperatorRequest),
    /// An operator declared a breach over: its step's (or, without a step, the instance
    /// deadline's or stuck) breach is resolved.
    BreachResolvedByOperator(&'r OperatorRequest),
    /// An operator cancelled the instance: it ends as failed.
    CancelRequested(&'r OperatorRequest),
}

/// An effect for the shells to carry out.
#[derive(Clone, Debug, PartialEq)]
pub enum Output {
    /// Emit a signal (signals topic, and alerts topic when `signal.alert`).
    Emit(Signal),
    /// Publish the record a declared action rendered.
    Publish(ActionRecord),
    /// Dead-letter a record that matched a flow event but cannot be used.
    DeadLetter(Rejection),
}

/// A record rendered by a declared action.
#[derive(Clone, Debug, PartialEq)]
pub struct ActionRecord {
    pub topic: String,
    pub key: Option<String>,
    pub value: Value,
    /// Id of the `action` signal that reports it (also a natural idempotency key).
    pub signal_id: signal::SignalId,
}

/// Why a record was rejected, with where it came from.
#[derive(Clone, Debug, PartialEq)]
pub struct Rejection {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub flow: Arc<str>,
    pub event: Arc<str>,
    /// Stable code: `missing_key`, `bad_time`.
    pub reason: &'static str,
    /// Sentence for people.
    pub detail: String,
}

/// Counters of what the engine saw (the `--stats` of replay, metrics live).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Stats {
    /// Records read (including undecodable ones counted by the shell).
    pub records: u64,
    /// Records that were a valid event of at least one flow.
    pub matched: u64,
    /// Records that matched no flow event.
    pub unmatched: u64,
    /// Records that could not be used: undecodable, or matched but without a usable key or time.
    pub invalid: u64,
    /// Events ignored because their id was already recorded on the instance.
    pub duplicates: u64,
    /// Instances opened.
    pub started: u64,
    /// Instances that completed.
    pub completed: u64,
    /// Instances that failed.
    pub failed: u64,
    /// Breaches signalled.
    pub breaches: u64,
    /// Declared action runs.
    pub actions: u64,
    /// Orphan groups dropped.
    pub orphaned: u64,
    /// Events currently held as orphans.
    pub orphans_held: u64,
}

/// Interned names for signals (cheap to clone into every signal).
struct Names {
    flows: Vec<Arc<str>>,
    steps: Vec<Vec<Arc<str>>>,
    events: Vec<Vec<Arc<str>>>,
    actions: Vec<Vec<Arc<str>>>,
    aliases: Vec<Vec<Arc<str>>>,
    alert: Arc<str>,
}

impl Names {
    fn new(flows: &[Flow]) -> Names {
        let intern = |names: Vec<&str>| names.into_iter().map(Arc::from).collect::<Vec<Arc<str>>>();
        Names {
            flows: intern(flows.iter().map(|flow| flow.def.name.as_str()).collect()),
            steps: flows
                .iter()
                .map(|f| intern(f.def.steps.iter().map(|s| s.name.as_str()).collect()))
                .collect(),
            events: flows
                .iter()
                .map(|f| intern(f.def.events.iter().map(|e| e.name.as_str()).collect()))
                .collect(),
            actions: flows
                .iter()
                .map(|f| intern(f.def.actions.iter().map(|a| a.name.as_str()).collect()))
                .collect(),
            aliases: flows
                .iter()
                .map(|f| intern(f.def.aliases.iter().map(String::as_str).collect()))
                .collect(),
            alert: Arc::from("alert"),
        }
    }
}

/// The engine. See the module documentation.
pub struct Engine {
    flows: Arc<[Flow]>,
    names: Names,
    config: EngineConfig,
    source: Arc<str>,
    topics: TopicIndex,
    /// The event clock; `Millis::MIN` until the first record.
    clock: Millis,
    /// Breaches due before this run no actions.
    action_horizon: Millis,
    /// Instance slots; `None` slots are reused through `free_instances`.
    instances: blocks::Blocks<Option<Instance>>,
    free_instances: Vec<u32>,
    /// (flow, key) → instance slot, hashed by key; stores only slot numbers.
    by_key: HashTable<u32>,
    /// Per flow, per alias: alias value → instance slot (hashbrown's seeded foldhash, not
    /// SipHash: these are looked up for most records; nothing iterates them in an order
    /// that reaches the output, snapshots sort them).
    by_alias: Vec<Vec<HashMap<Box<str>, u32>>>,
    orphan_groups: Vec<Option<OrphanGroup>>,
    free_orphan_groups: Vec<u32>,
    /// Per flow, per route (0: primary key, 1 + alias index: that alias): value → group slot.
    orphan_index: Vec<Vec<HashMap<Box<str>, u32>>>,
    /// Orphan groups to hand to instances after the current event (links just registered or
    /// an instance just opened), in order.
    pending_releases: std::collections::VecDeque<(u16, u16, Box<str>, u32)>,
    timers: Timers,
    stats: Stats,
    open_instances: u64,
    /// Slots changed since the last checkpoint took them.
    changes: changes::Changes,
}

impl Engine {
    /// Builds an engine over validated flows.
    pub fn new(flows: Vec<Flow>, config: EngineConfig) -> Engine {
        let names = Names::new(&flows);
        let topics = TopicIndex::new(&flows);
        let by_alias = flows
            .iter()
            .map(|flow| vec![HashMap::new(); flow.def.aliases.len()])
            .collect();
        let orphan_index = flows
            .iter()
            .map(|flow| vec![HashMap::new(); flow.def.aliases.len() + 1])
            .collect();
        Engine {
            source: Arc::from(format!("flowwatch/{}", config.instance_name)),
            flows: flows.into(),
            names,
            config,
            topics,
            clock: Millis::MIN,
            action_horizon: Millis::MIN,
            instances: blocks::Blocks::default(),
            free_instances: Vec::new(),
            by_key: HashTable::new(),
            by_alias,
            orphan_groups: Vec::new(),
            free_orphan_groups: Vec::new(),
            orphan_index,
            pending_releases: Default::default(),
            timers: Timers::default(),
            stats: Stats::default(),
            open_instances: 0,
            changes: changes::Changes::default(),
        }
    }

    /// Applies one input and appends the outputs it causes, in the order the engine decides
    /// them.
    pub fn handle(&mut self, input: Input<'_>, out: &mut Vec<Output>) {
        match input {
            Input::RecordReceived(record) => self.handle_record(record, None, out),
            Input::CorrelatedRecordReceived { record, matches } => {
                self.handle_matches(record, matches, None, out)
            }
            Input::SkewedRecordReceived { record, now } => {
                self.handle_record(record, Some(now), out)
            }
            Input::ClockAdvanced(time) => {
                self.advance_clock(time);
                self.fire_due(out);
            }
            Input::ActionHorizonSet(time) => self.action_horizon = time,
            Input::RetryRequested(request) => {
                self.apply_operator(OperatorCommand::Retry, request, out)
            }
            Input::BreachResolvedByOperator(request) => {
                self.apply_operator(OperatorCommand::Resolve, request, out)
            }
            Input::CancelRequested(request) => {
                self.apply_operator(OperatorCommand::Cancel, request, out)
            }
        }
        if self.timers.needs_renumbering() {
            self.renumber_timers();
        }
    }

    /// When the next timer is due (the shell sleeps until the clock passes it).
    pub fn next_deadline(&self) -> Option<Millis> {
        self.timers.next_due()
    }

    /// The event clock.
    pub fn clock(&self) -> Millis {
        self.clock
    }

    /// Counters so far.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Instances currently open.
    pub fn open_instances(&self) -> u64 {
        self.open_instances
    }

    /// Counts a record the shell could not decode (it never reaches the engine otherwise).
    pub fn count_undecodable(&mut self) {
        self.stats.records += 1;
        self.stats.invalid += 1;
    }

    /// The flows the engine tracks.
    pub fn flows(&self) -> &Arc<[Flow]> {
        &self.flows
    }

    /// Every topic the flows read.
    pub fn topics(&self) -> &[String] {
        self.topics.topics()
    }

    /// The time a record has on the event clock (SPEC 1.3): the latest event time among the
    /// flow events it matches, or its record timestamp if it matches none. The live shell
    /// orders records by it.
    pub fn record_time(&self, record: &Record<'_>) -> Millis {
        let mut matches = Vec::new();
        self.topics.matches(&self.flows, record, &mut matches);
        Self::matched_time(&matches, record)
    }

    /// The flow events a record is, as `Input::RecordReceived` would match them (for
    /// `Input::CorrelatedRecordReceived`, after [`Engine::matched_time`]).
    pub fn correlate<'r>(&self, record: &'r Record<'_>) -> Vec<Match<'r>> {
        let mut matches = Vec::new();
        self.topics.matches(&self.flows, record, &mut matches);
        if self.config.history_limit > 0 {
            correlate::attach_audit(record, &mut matches);
        }
        matches
    }

    /// [`Engine::record_time`] from the record's matches.
    pub fn matched_time(matches: &[Match<'_>], record: &Record<'_>) -> Millis {
        matches
            .iter()
            .filter_map(|found| match found {
                Match::Valid(occurrence) => Some(occurrence.time),
                Match::Invalid { .. } => None,
            })
            .max()
            .unwrap_or(record.timestamp)
    }

    /// A correlator over this engine's flows (see `Input::CorrelatedRecordReceived`).
    pub fn correlator(&self) -> correlate::Correlator {
        correlate::Correlator::new(self.flows.clone(), self.config.history_limit > 0)
    }

    fn handle_record(&mut self, record: &Record<'_>, cap: Option<Millis>, out: &mut Vec<Output>) {
        let matches = self.correlate(record);
        self.handle_matches(record, matches, cap, out);
    }

    fn handle_matches(
        &mut self,
        record: &Record<'_>,
        mut matches: Vec<Match<'_>>,
        cap: Option<Millis>,
        out: &mut Vec<Output>,
    ) {
        self.stats.records += 1;
        let mut record_time: Option<Millis> = None;
        let mut any_invalid = false;
        for found in &mut matches {
            match found {
                Match::Valid(occurrence) => {
                    if let Some(cap) = cap {
                        if occurrence.time > cap {
                            occurrence.time = cap;
                            occurrence.skewed = true;
                        }
                    }
                    record_time =
                        Some(record_time.map_or(occurrence.time, |time| time.max(occurrence.time)))
                }
                Match::Invalid { flow, event, why } => {
                    any_invalid = true;
                    out.push(Output::DeadLetter(
                        self.rejection(record, *flow, *event, why),
                    ));
                }
            }
        }
        match (record_time.is_some(), any_invalid) {
            (true, _) => self.stats.matched += 1,
            (false, true) => {}
            (false, false) => self.stats.unmatched += 1,
        }
        if any_invalid {
            self.stats.invalid += 1;
        }
        let mut time = record_time.unwrap_or(record.timestamp);
        if let Some(cap) = cap {
            time = time.min(cap);
        }
        self.advance_clock(time.saturating_sub(self.config.allowed_lateness));
        self.fire_due(out);
        // The audit trail's copy of the value came with the matches (`correlate::attach_audit`).
        for found in matches {
            if let Match::Valid(occurrence) = found {
                self.route(occurrence, out);
            }
        }
        self.fire_due(out);
    }

    fn advance_clock(&mut self, time: Millis) {
        if time > self.clock {
            self.clock = time;
        }
    }

    /// Fires every timer due strictly before the clock, in (due, seq) order.
    fn fire_due(&mut self, out: &mut Vec<Output>) {
        while let Some((key, target)) = self.timers.pop_due(self.clock) {
            match target {
                TimerTarget::Instance(slot) => self.instance_timer(slot, key, out),
                TimerTarget::Orphans(slot) => self.orphans_expired(slot, out),
            }
        }
    }

    fn rejection(
        &self,
        record: &Record<'_>,
        flow: u16,
        event: u16,
        why: &correlate::Invalid,
    ) -> Rejection {
        let definition = &self.flows[usize::from(flow)].def.events[usize::from(event)];
        let detail = match why {
            correlate::Invalid::MissingKey => format!(
                "record matched event {} of flow {} but has no usable key at {} (a non-empty string or a number)",
                definition.name,
                self.names.flows[usize::from(flow)],
                definition.key
            ),
            correlate::Invalid::BadTime => format!(
                "record matched event {} of flow {} but its time at {} is neither RFC 3339 nor epoch milliseconds",
                definition.name,
                self.names.flows[usize::from(flow)],
                definition.time.as_ref().map(ToString::to_string).unwrap_or_default()
            ),
        };
        Rejection {
            topic: record.topic.clone(),
            partition: record.partition,
            offset: record.offset,
            flow: self.names.flows[usize::from(flow)].clone(),
            event: self.names.events[usize::from(flow)][usize::from(event)].clone(),
            reason: why.code(),
            detail,
        }
    }

    fn key_hash(flow: u16, key: &str) -> u64 {
        xxhash_rust::xxh3::xxh3_64_with_seed(key.as_bytes(), u64::from(flow))
    }

    /// The slot of the instance of `flow` with this key.
    fn find_instance(&self, flow: u16, key: &str) -> Option<u32> {
        let instances = &self.instances;
        self.by_key
            .find(Self::key_hash(flow, key), |&slot| {
                instances[slot as usize]
                    .as_ref()
                    .is_some_and(|inst| inst.flow == flow && &*inst.key == key)
            })
            .copied()
    }
}
