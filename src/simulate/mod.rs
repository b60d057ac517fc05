//! A choreography simulator: the services of the two shipped flows (order fulfilment and
//! customer onboarding) producing the records those flows match, with realistic faults at
//! configurable rates. It is pure and deterministic: a seed and the same calls give the same
//! records, byte for byte; time is simulated event time that the caller moves with
//! [`Simulator::advance`]. Shells put the records on a broker (`flowwatch simulate`, the demo)
//! or feed them straight to the engine (tests).
//!
//! Process instances start as a Poisson process at `rate_per_sec` (simulated seconds). Each
//! instance is a script of events ([`script`]) that its services publish at their times; a
//! fault ([`faults`]) changes the script: withholds an event and what waits for it, delays
//! it, declines, delivers the start late or to a legacy topic, swaps delivery order, breaks a
//! record, or sends one twice. Retry commands the tracker publishes can be fed back with
//! [`Simulator::on_action_record`], and sometimes bring what was missing.

mod faults;
pub mod kafka;
mod onboarding;
mod orders;
mod record;
mod script;

#[cfg(test)]
mod tests;

pub use faults::{FaultKind, FaultMix, FaultMixError};
pub use record::SimRecord;
pub use script::FlowKind;

use crate::time::Millis;
use rand::rngs::ChaCha8Rng;
use rand::{RngExt, SeedableRng};
use script::{Body, Saga, Scripted, Service, State};
use serde_json::Value;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

/// Topics the simulated services publish to: the flows' topics, then the legacy topics that
/// `wrong_topic` starts go to.
pub const TOPICS: [&str; 9] = [
    "orders",
    "inventory",
    "payments",
    "risk",
    "shipping",
    "customer-events",
    "checks",
    "orders-legacy",
    "customer-events-legacy",
];

/// Topics the flows' retry actions publish to (the simulated services listen there).
pub const COMMAND_TOPICS: [&str; 2] = ["payment-commands", "check-commands"];

/// What to simulate.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SimConfig {
    /// Seeds every random choice: the same seed gives the same records.
    pub seed: u64,
    /// New process instances per simulated second (about 60 % orders, 40 % onboardings).
    pub rate_per_sec: f64,
    /// Which faults, how often.
    pub faults: FaultMix,
}

/// Counts of what was simulated so far.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SimStats {
    /// Orders placed.
    pub orders: u64,
    /// Registrations requested.
    pub onboardings: u64,
    /// Records emitted by `advance`.
    pub records: u64,
    /// Instances given each fault, indexed by [`FaultKind::index`].
    pub faults: [u64; 8],
    /// Retry commands that brought a lost or slow event.
    pub recovered: u64,
}

impl SimStats {
    /// Instances given this fault.
    pub fn fault(&self, kind: FaultKind) -> u64 {
        self.faults[kind.index()]
    }
}

/// The simulator. See the module documentation.
pub struct Simulator {
    config: SimConfig,
    /// Drives traffic and faults.
    rng: ChaCha8Rng,
    /// Drives the services' reactions to retry commands, separately, so that feeding retries
    /// back never changes which instances start or how.
    reactions: ChaCha8Rng,
    /// A short tag from the seed in every id, so that runs with different seeds against one
    /// broker do not share keys.
    tag: String,
    /// Simulated time reached (the last `until`); `None` before the first `advance`.
    now: Option<Millis>,
    /// When the next instance starts; `Millis::MAX` once starting stopped.
    next_arrival: Millis,
    queue: BinaryHeap<Reverse<Entry>>,
    sequence: u64,
    sagas: HashMap<u64, Saga>,
    by_key: HashMap<(FlowKind, String), u64>,
    next_saga: u64,
    next_event: u64,
    stats: SimStats,
}

/// A publish-queue entry: event `index` of a saga at `at`, in (time, insertion) order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Entry {
    at: Millis,
    sequence: u64,
    saga: u64,
    index: u32,
    epoch: u32,
}

/// An entry index that forgets the saga (one whose lost events were never retried).
const FORGET: u32 = u32::MAX;

/// How long a saga with withheld events waits for a retry before it is forgotten (longer
/// than either flow's deadline).
const FORGET_AFTER: Millis = 12 * 3_600_000;

/// The path an instance takes, chosen before its script is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Shape {
    Happy,
    Declined,
    /// Timings tight enough that swapping a delivery never breaches an SLA.
    OutOfOrder,
}

/// What a flow generator needs: randomness, the run's tag and the event-id counter.
struct Writer<'a> {
    rng: &'a mut ChaCha8Rng,
    tag: &'a str,
    next_event: &'a mut u64,
}

impl Writer<'_> {
    fn event_id(&mut self) -> String {
        *self.next_event += 1;
        format!("ev-{}-{:08}", self.tag, self.next_event)
    }
}

/// A uniform integer in `low..=high`.
fn between(rng: &mut ChaCha8Rng, low: i64, high: i64) -> i64 {
    rng.random_range(low..=high.max(low))
}

/// True with probability `p` (any `p`; always draws, so the stream does not depend on `p`).
fn chance(rng: &mut ChaCha8Rng, p: f64) -> bool {
    rng.random::<f64>() < p
}

impl Simulator {
    /// A simulator whose traffic starts at the time of the first [`Simulator::advance`].
    pub fn new(config: SimConfig) -> Simulator {
        let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
        let reactions = ChaCha8Rng::seed_from_u64(config.seed ^ 0x5eed_0f7e_7a5c_7101);
        let tag = format!("{:04x}", rng.random::<u16>());
        Simulator {
            config,
            rng,
            reactions,
            tag,
            now: None,
            next_arrival: Millis::MAX,
            queue: BinaryHeap::new(),
            sequence: 0,
            sagas: HashMap::new(),
            by_key: HashMap::new(),
            next_saga: 0,
            next_event: 0,
            stats: SimStats::default(),
        }
    }

    /// A simulator whose traffic starts at `start` (the first instance starts shortly after).
    pub fn starting_at(config: SimConfig, start: Millis) -> Simulator {
        let mut simulator = Simulator::new(config);
        simulator.anchor(start);
        simulator
    }

    /// Appends every record due up to `until` (simulated event time, ms), in publish order.
    /// A record's `timestamp` is its event time, earlier than its publish time when it is
    /// delivered late.
    pub fn advance(&mut self, until: Millis, out: &mut Vec<SimRecord>) {
        if self.now.is_none() {
            self.anchor(until);
        }
        while self.next_arrival <= until {
            let start = self.next_arrival;
            self.spawn(start);
            self.next_arrival = start.saturating_add(self.gap());
        }
        while let Some(Reverse(entry)) = self.queue.peek().copied() {
            if entry.at > until {
                break;
            }
            self.queue.pop();
            self.emit(entry, out);
        }
        self.now = Some(self.now.map_or(until, |now| now.max(until)));
    }

    /// Tells the simulated services about a record the tracker published (a retry action):
    /// `RetryPayment` on `payment-commands` or `CheckAddress` on `check-commands`, seen at
    /// simulated time `at`. If that service's event of the instance is lost or still to come,
    /// it answers shortly after with probability `recover_on_retry`, and the rest of the
    /// process follows. Returns whether it will.
    pub fn on_action_record(
        &mut self,
        topic: &str,
        key: Option<&str>,
        value: &Value,
        at: Millis,
    ) -> bool {
        let text = |field: &str| value.get(field).and_then(Value::as_str);
        let (flow, service, id_field) = match (topic, text("type"), text("command")) {
            ("payment-commands", Some("RetryPayment"), _) => {
                (FlowKind::Order, Service::Payments, "orderId")
            }
            ("check-commands", _, Some("CheckAddress")) => {
                (FlowKind::Onboarding, Service::AddressCheck, "customerId")
            }
            _ => return false,
        };
        let Some(business_key) = text(id_field).or(key) else {
            return false;
        };
        let Some(&saga_id) = self.by_key.get(&(flow, business_key.to_string())) else {
            return false;
        };
        // Always draw, so the reaction stream does not depend on what is pending.
        let recovers = chance(&mut self.reactions, self.config.faults.recover_on_retry);
        let delay = between(&mut self.reactions, 10_000, 120_000);
        let now = self.now.unwrap_or(at);
        let Some(saga) = self.sagas.get_mut(&saga_id) else {
            return false;
        };
        let Some(index) = saga.events.iter().position(|event| {
            event.service == service && event.slow_by.is_some() && event.state != State::Emitted
        }) else {
            return false;
        };
        let target = at.max(now) + delay;
        let event = &saga.events[index];
        if !recovers || (event.state == State::Queued && event.publish_at <= target) {
            return false;
        }
        let delta = target - event.publish_at;
        for dependent in saga.dependents(index) {
            if saga.events[dependent].state == State::Withheld {
                saga.events[dependent].state = State::Queued;
            }
        }
        saga.shift_from(index, delta);
        saga.epoch += 1;
        let epoch = saga.epoch;
        let due: Vec<(usize, Millis)> = saga
            .events
            .iter()
            .enumerate()
            .filter(|(_, event)| event.state == State::Queued)
            .map(|(index, event)| (index, event.publish_at))
            .collect();
        for (index, at) in due {
            self.enqueue(at, saga_id, index as u32, epoch);
        }
        self.stats.recovered += 1;
        true
    }

    /// Starts no more instances; those in flight go on.
    pub fn stop_starting(&mut self) {
        self.next_arrival = Millis::MAX;
    }

    /// When the next record (or instance start) is due, if anything is.
    pub fn next_due(&self) -> Option<Millis> {
        let queued = self.queue.peek().map(|Reverse(entry)| entry.at);
        let arrival = (self.next_arrival != Millis::MAX).then_some(self.next_arrival);
        queued.into_iter().chain(arrival).min()
    }

    /// Instances still in play (with records to come, or waiting for a retry).
    pub fn in_flight(&self) -> usize {
        self.sagas.len()
    }

    /// Simulated time reached.
    pub fn now(&self) -> Option<Millis> {
        self.now
    }

    /// Counts so far.
    pub fn stats(&self) -> &SimStats {
        &self.stats
    }

    /// The configuration.
    pub fn config(&self) -> &SimConfig {
        &self.config
    }

    fn anchor(&mut self, start: Millis) {
        self.now = Some(start);
        self.next_arrival = start.saturating_add(self.gap());
    }

    /// Time to the next instance start: exponential with mean `1 / rate_per_sec`.
    fn gap(&mut self) -> Millis {
        let rate = self.config.rate_per_sec;
        if !(rate.is_finite() && rate > 0.0) {
            return Millis::MAX;
        }
        let uniform = self.rng.random::<f64>();
        (-(1000.0 / rate) * (1.0 - uniform).ln()).round() as Millis
    }

    fn enqueue(&mut self, at: Millis, saga: u64, index: u32, epoch: u32) {
        self.sequence += 1;
        self.queue.push(Reverse(Entry {
            at,
            sequence: self.sequence,
            saga,
            index,
            epoch,
        }));
    }

    fn emit(&mut self, entry: Entry, out: &mut Vec<SimRecord>) {
        if entry.index == FORGET {
            if let Some(saga) = self.sagas.remove(&entry.saga) {
                self.by_key.remove(&(saga.flow, saga.key));
            }
            return;
        }
        let Some(saga) = self.sagas.get_mut(&entry.saga) else {
            return;
        };
        let event = &mut saga.events[entry.index as usize];
        if entry.epoch != saga.epoch || event.state != State::Queued {
            return;
        }
        event.state = State::Emitted;
        out.push(event.render());
        self.stats.records += 1;
        if saga.is_done() {
            let key = (saga.flow, saga.key.clone());
            self.sagas.remove(&entry.saga);
            self.by_key.remove(&key);
        }
    }

    /// Starts one instance at `t0`: writes its script, applies its faults, queues it.
    fn spawn(&mut self, t0: Millis) {
        let flow = if chance(&mut self.rng, 0.6) {
            FlowKind::Order
        } else {
            FlowKind::Onboarding
        };
        let faults = self.config.faults;
        let fault = faults.pick_exclusive(self.rng.random::<f64>());
        let duplicate = chance(&mut self.rng, faults.duplicate);
        let shape = match fault {
            Some(FaultKind::Declined) => Shape::Declined,
            Some(FaultKind::OutOfOrder) => Shape::OutOfOrder,
            _ => Shape::Happy,
        };
        let mut writer = Writer {
            rng: &mut self.rng,
            tag: &self.tag,
            next_event: &mut self.next_event,
        };
        let (script, key) = match flow {
            FlowKind::Order => {
                self.stats.orders += 1;
                let script = orders::script(&mut writer, self.stats.orders, t0, shape);
                (script, format!("ord-{}-{:06}", self.tag, self.stats.orders))
            }
            FlowKind::Onboarding => {
                self.stats.onboardings += 1;
                let script = onboarding::script(&mut writer, self.stats.onboardings, t0, shape);
                (
                    script,
                    format!("cust-{}-{:06}", self.tag, self.stats.onboardings),
                )
            }
        };
        let mut saga = Saga {
            flow,
            key,
            events: script.events,
            epoch: 0,
        };
        if let Some(kind) = fault {
            self.apply(&mut saga, kind);
            self.stats.faults[kind.index()] += 1;
        }
        if duplicate {
            let sendable: Vec<usize> = (0..saga.events.len())
                .filter(|&index| saga.events[index].state != State::Withheld)
                .collect();
            let original = sendable[between(&mut self.rng, 0, sendable.len() as i64 - 1) as usize];
            let mut copy = saga.events[original].clone();
            copy.deps = vec![original];
            copy.slow_by = None;
            copy.publish_at += between(&mut self.rng, 1_000, 90_000);
            saga.events.push(copy);
            self.stats.faults[FaultKind::Duplicate.index()] += 1;
        }
        let saga_id = self.next_saga;
        self.next_saga += 1;
        let queued: Vec<(usize, Millis)> = saga
            .events
            .iter()
            .enumerate()
            .filter(|(_, event)| event.state == State::Queued)
            .map(|(index, event)| (index, event.publish_at))
            .collect();
        for (index, at) in queued {
            self.enqueue(at, saga_id, index as u32, 0);
        }
        if saga
            .events
            .iter()
            .any(|event| event.state == State::Withheld)
        {
            self.enqueue(t0 + FORGET_AFTER, saga_id, FORGET, 0);
        }
        self.by_key.insert((saga.flow, saga.key.clone()), saga_id);
        self.sagas.insert(saga_id, saga);
    }

    /// Changes a fresh script by one path-changing fault (declined and out-of-order were
    /// written into the script already).
    fn apply(&mut self, saga: &mut Saga, kind: FaultKind) {
        let steps: Vec<usize> = (0..saga.events.len())
            .filter(|&index| saga.events[index].slow_by.is_some())
            .collect();
        let pick = |rng: &mut ChaCha8Rng| steps[between(rng, 0, steps.len() as i64 - 1) as usize];
        match kind {
            FaultKind::Lost => {
                let index = pick(&mut self.rng);
                saga.withhold(index);
            }
            FaultKind::Malformed => {
                let index = pick(&mut self.rng);
                let broken = broken(&mut self.rng, &saga.events[index]);
                saga.withhold(index);
                saga.events.push(broken);
            }
            FaultKind::Slow => {
                let index = pick(&mut self.rng);
                // Invariant: `pick` only returns events with `slow_by`.
                let (low, high) = saga.events[index].slow_by.unwrap_or((0, 0));
                let delta = between(&mut self.rng, low, high);
                saga.shift_from(index, delta);
            }
            FaultKind::LateStart => {
                saga.events[0].publish_at += between(&mut self.rng, 20 * 60_000, 30 * 60_000);
            }
            FaultKind::WrongTopic => {
                saga.events[0].topic = match saga.flow {
                    FlowKind::Order => "orders-legacy",
                    FlowKind::Onboarding => "customer-events-legacy",
                }
                .to_string();
            }
            FaultKind::Declined | FaultKind::OutOfOrder | FaultKind::Duplicate => {}
        }
    }
}

/// A broken copy of `event`, published instead of it: not JSON, without its key, or with a
/// time of the wrong type.
fn broken(rng: &mut ChaCha8Rng, event: &Scripted) -> Scripted {
    let mut copy = event.clone();
    copy.deps = Vec::new();
    copy.slow_by = None;
    copy.state = State::Queued;
    match between(rng, 0, 2) {
        0 => {
            // A prefix of a JSON object without its closing brace is never JSON.
            let mut payload = event.render().payload;
            payload.truncate(payload.len() / 2);
            copy.body = Body::Raw(payload);
        }
        1 => {
            if let Body::Json {
                value: Value::Object(map),
                ..
            } = &mut copy.body
            {
                map.remove(event.key_field);
            }
            copy.key = None;
        }
        _ => {
            if let Body::Json { value, time_field } = &mut copy.body {
                if let (Some(field), Value::Object(map)) = (time_field.take(), value) {
                    map.insert(field.to_string(), Value::Bool(true));
                }
            }
        }
    }
    copy
}
