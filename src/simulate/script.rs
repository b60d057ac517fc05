//! One process instance as the simulator plays it: a script of the events its services will
//! publish, each with its event time, its publish time and the events it waits for.
//!
//! The dependencies are what make faults realistic in a choreography: when an event is lost,
//! every event that waits for it (directly or not) is withheld too, so the process stalls
//! there; when an event is slow, or a retry brings a lost one, the same events move with it.

use super::record::SimRecord;
use crate::time::{format_rfc3339, Millis};
use serde_json::Value;

/// The two simulated choreographies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FlowKind {
    /// `flows/order-fulfillment.yaml`.
    Order,
    /// `flows/customer-onboarding.yaml`.
    Onboarding,
}

/// The services that publish events; retry commands address one of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Service {
    Orders,
    Inventory,
    Payments,
    Risk,
    Shipping,
    Registration,
    AddressCheck,
    CreditCheck,
    Accounts,
}

impl Service {
    /// The `ce_source` header of its records.
    pub fn source(self) -> &'static str {
        match self {
            Service::Orders => "sim/orders",
            Service::Inventory => "sim/inventory",
            Service::Payments => "sim/payments",
            Service::Risk => "sim/risk",
            Service::Shipping => "sim/shipping",
            Service::Registration => "sim/registration",
            Service::AddressCheck => "sim/address-check",
            Service::CreditCheck => "sim/credit-check",
            Service::Accounts => "sim/accounts",
        }
    }
}

/// Where one scripted event is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// In the publish queue.
    Queued,
    /// Never published unless a retry brings it (lost, or waiting for a lost event).
    Withheld,
    /// Published.
    Emitted,
}

/// How a scripted record's payload is written.
#[derive(Clone, Debug)]
pub enum Body {
    /// JSON; the event time is written into `time_field` when there is one.
    Json {
        value: Value,
        time_field: Option<&'static str>,
    },
    /// Raw bytes (a record broken as "not JSON").
    Raw(Vec<u8>),
}

/// One event of a script.
#[derive(Clone, Debug)]
pub struct Scripted {
    pub topic: String,
    pub key: Option<String>,
    /// When the event happened (record timestamp and payload time).
    pub event_time: Millis,
    /// When it is published (later than `event_time` when delivered late).
    pub publish_at: Millis,
    pub event_id: String,
    pub ce_type: &'static str,
    pub service: Service,
    pub body: Body,
    /// Indices of the events this one waits for.
    pub deps: Vec<usize>,
    /// For events a fault may delay past their step's SLA: how much later, at least and at
    /// most, makes the step breach. `None` for events no step awaits (start, noise).
    pub slow_by: Option<(Millis, Millis)>,
    /// The top-level payload field that carries the key (removed by the `malformed` fault).
    pub key_field: &'static str,
    pub state: State,
}

impl Scripted {
    /// The record to produce.
    pub fn render(&self) -> SimRecord {
        let payload = match &self.body {
            Body::Json { value, time_field } => {
                let mut value = value.clone();
                if let (Some(field), Value::Object(map)) = (time_field, &mut value) {
                    map.insert(
                        field.to_string(),
                        Value::String(format_rfc3339(self.event_time)),
                    );
                }
                value.to_string().into_bytes()
            }
            Body::Raw(bytes) => bytes.clone(),
        };
        SimRecord {
            topic: self.topic.clone(),
            key: self.key.clone(),
            timestamp: self.event_time,
            headers: vec![
                ("ce_specversion".to_string(), "1.0".to_string()),
                ("ce_id".to_string(), self.event_id.clone()),
                ("ce_type".to_string(), self.ce_type.to_string()),
                ("ce_source".to_string(), self.service.source().to_string()),
                ("content-type".to_string(), "application/json".to_string()),
            ],
            payload,
        }
    }

    /// Moves the event by `delta`, keeping how late it is delivered.
    pub fn shift(&mut self, delta: Millis) {
        self.event_time += delta;
        self.publish_at += delta;
    }
}

/// A process instance in play.
#[derive(Clone, Debug)]
pub struct Saga {
    pub flow: FlowKind,
    /// The business key (order id, customer id).
    pub key: String,
    pub events: Vec<Scripted>,
    /// Bumped whenever the saga's queued events are re-queued at new times; queue entries of
    /// an older epoch are stale and skipped.
    pub epoch: u32,
}

impl Saga {
    /// Indices of `root` and every event that waits for it, directly or not, in index order.
    /// (Scripts list an event after everything it waits for.)
    pub fn dependents(&self, root: usize) -> Vec<usize> {
        let mut marked = vec![false; self.events.len()];
        marked[root] = true;
        for index in root + 1..self.events.len() {
            marked[index] = self.events[index].deps.iter().any(|&dep| marked[dep]);
        }
        (0..self.events.len())
            .filter(|&index| marked[index])
            .collect()
    }

    /// Withholds `root` and its dependents.
    pub fn withhold(&mut self, root: usize) {
        for index in self.dependents(root) {
            self.events[index].state = State::Withheld;
        }
    }

    /// Moves `root` and its dependents that are not yet published by `delta`. An event moved
    /// earlier never ends up before an event it waits for: it then follows that one by 20 s.
    pub fn shift_from(&mut self, root: usize, delta: Millis) {
        for index in self.dependents(root) {
            if self.events[index].state == State::Emitted {
                continue;
            }
            self.events[index].shift(delta);
            let floor = self.events[index]
                .deps
                .iter()
                .map(|&dep| self.events[dep].event_time)
                .max();
            if let Some(floor) = floor.filter(|&floor| floor > self.events[index].event_time) {
                let lag = floor + 20_000 - self.events[index].event_time;
                self.events[index].shift(lag);
            }
        }
    }

    /// True when nothing is left to publish, now or after a retry.
    pub fn is_done(&self) -> bool {
        self.events
            .iter()
            .all(|event| event.state == State::Emitted)
    }
}

/// Builds a script event by event.
#[derive(Default)]
pub struct ScriptBuilder {
    pub events: Vec<Scripted>,
}

/// The parts of a scripted event a flow generator chooses.
pub struct EventSpec {
    pub topic: &'static str,
    pub key: Option<String>,
    pub at: Millis,
    pub event_id: String,
    pub ce_type: &'static str,
    pub service: Service,
    pub value: Value,
    pub time_field: &'static str,
    pub key_field: &'static str,
    pub deps: Vec<usize>,
    pub slow_by: Option<(Millis, Millis)>,
}

impl ScriptBuilder {
    /// Appends an event published when it happens; returns its index.
    pub fn push(&mut self, spec: EventSpec) -> usize {
        self.events.push(Scripted {
            topic: spec.topic.to_string(),
            key: spec.key,
            event_time: spec.at,
            publish_at: spec.at,
            event_id: spec.event_id,
            ce_type: spec.ce_type,
            service: spec.service,
            body: Body::Json {
                value: spec.value,
                time_field: Some(spec.time_field),
            },
            deps: spec.deps,
            slow_by: spec.slow_by,
            key_field: spec.key_field,
            state: State::Queued,
        });
        self.events.len() - 1
    }
}
