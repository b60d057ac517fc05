//! The simulator against the real engine and the shipped flows: each fault, injected alone,
//! is detected as the signal it should cause, clean traffic causes none, and a seed fixes the
//! stream. Time is simulated, so hours of traffic run in milliseconds.

use super::*;
use crate::engine::{Engine, EngineConfig, Input, Output, Reason, Rejection, Signal, SignalKind};
use crate::flow::load_dir_or_files;
use crate::time::parse_rfc3339;
use std::collections::BTreeSet;
use std::path::PathBuf;

const MINUTE: Millis = 60_000;
const HOUR: Millis = 60 * MINUTE;

/// What one simulated run caused.
struct Run {
    records: Vec<SimRecord>,
    signals: Vec<Signal>,
    dead_letters: Vec<Rejection>,
    engine: crate::engine::Stats,
    simulated: SimStats,
}

impl Run {
    fn count(&self, kind: SignalKind, reason: Option<Reason>) -> usize {
        self.signals
            .iter()
            .filter(|signal| {
                signal.kind == kind && (reason.is_none() || signal.data.reason == reason)
            })
            .count()
    }

    fn subjects(&self, kind: SignalKind) -> BTreeSet<String> {
        self.signals
            .iter()
            .filter(|signal| signal.kind == kind)
            .map(|signal| signal.subject.to_string())
            .collect()
    }

    fn instances(&self) -> u64 {
        self.simulated.orders + self.simulated.onboardings
    }
}

fn start() -> Millis {
    parse_rfc3339("2026-03-02T08:00:00Z").unwrap()
}

/// Simulates `minutes` of instance starts at 3 a minute, lets every instance play out, and
/// feeds the records through an engine over `flows/` as a consumer would (partition 0,
/// offsets in order, undecodable payloads counted). With `feed_actions`, the records the
/// engine's actions publish go back to the simulator.
fn run(faults: FaultMix, seed: u64, minutes: i64, feed_actions: bool) -> Run {
    let report = load_dir_or_files(&[PathBuf::from("flows")]);
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    let mut engine = Engine::new(report.flows, EngineConfig::default());
    let config = SimConfig {
        seed,
        rate_per_sec: 0.05,
        faults,
    };
    let mut simulator = Simulator::starting_at(config, start());
    let mut result = Run {
        records: Vec::new(),
        signals: Vec::new(),
        dead_letters: Vec::new(),
        engine: Default::default(),
        simulated: Default::default(),
    };
    let end = start() + minutes * MINUTE;
    let mut batch = Vec::new();
    let mut outputs = Vec::new();
    let mut now = start();
    while now < end + 14 * HOUR {
        now += 30_000;
        if now >= end {
            simulator.stop_starting();
        }
        simulator.advance(now, &mut batch);
        for record in batch.drain(..) {
            match record.to_record(0, result.records.len() as i64) {
                Ok(decoded) => engine.handle(Input::RecordReceived(&decoded), &mut outputs),
                Err(_) => engine.count_undecodable(),
            }
            result.records.push(record);
            for output in outputs.drain(..) {
                match output {
                    Output::Emit(signal) => result.signals.push(signal),
                    Output::Publish(action) if feed_actions => {
                        simulator.on_action_record(
                            &action.topic,
                            action.key.as_deref(),
                            &action.value,
                            engine.clock(),
                        );
                    }
                    Output::Publish(_) => {}
                    Output::DeadLetter(rejection) => result.dead_letters.push(rejection),
                }
            }
        }
    }
    engine.handle(Input::ClockAdvanced(now), &mut outputs);
    for output in outputs.drain(..) {
        if let Output::Emit(signal) = output {
            result.signals.push(signal);
        }
    }
    assert_eq!(
        simulator.in_flight(),
        0,
        "every instance played out or was forgotten"
    );
    result.engine = engine.stats().clone();
    result.simulated = simulator.stats().clone();
    result
}

#[test]
fn clean_traffic_completes_on_time_and_raises_nothing() {
    let run = run(FaultMix::none(), 1, 120, false);
    assert!(run.instances() > 250, "{:?}", run.simulated);
    assert_eq!(run.engine.started, run.instances());
    assert_eq!(run.engine.completed, run.instances());
    for kind in [
        SignalKind::Breached,
        SignalKind::Failed,
        SignalKind::Orphaned,
        SignalKind::Deviation,
        SignalKind::Action,
    ] {
        assert_eq!(run.count(kind, None), 0, "{kind:?}");
    }
    assert!(run.dead_letters.is_empty());
    assert_eq!(run.engine.invalid, 0);
    // Stock-level noise on the inventory topic matches no flow event.
    assert!(run.engine.unmatched > 0);
    // Large orders go through the fraud check.
    assert!(run.records.iter().any(|record| record.topic == "risk"));
}

#[test]
fn lost_events_stall_instances_into_sla_and_deadline_breaches_and_retries() {
    let run = run(FaultMix::only(FaultKind::Lost, 1.0), 2, 60, false);
    assert_eq!(run.simulated.fault(FaultKind::Lost), run.instances());
    assert_eq!(run.engine.completed, 0);
    assert_eq!(
        run.subjects(SignalKind::Breached),
        run.subjects(SignalKind::Started)
    );
    assert!(run.count(SignalKind::Breached, Some(Reason::Sla)) > 0);
    assert_eq!(
        run.count(SignalKind::Breached, Some(Reason::Deadline)),
        run.instances() as usize
    );
    let retries: BTreeSet<&str> = run
        .signals
        .iter()
        .filter(|signal| signal.kind == SignalKind::Action)
        .filter_map(|signal| signal.data.action.as_deref())
        .collect();
    assert_eq!(
        retries,
        BTreeSet::from(["cancel-registration", "recheck-address", "retry-payment"])
    );
    assert_eq!(run.count(SignalKind::Resolved, None), 0);
}

#[test]
fn retries_sometimes_bring_the_lost_event() {
    let faults = FaultMix {
        recover_on_retry: 0.7,
        ..FaultMix::only(FaultKind::Lost, 1.0)
    };
    let run = run(faults, 3, 60, true);
    assert!(run.simulated.recovered > 0, "{:?}", run.simulated);
    assert!(run.count(SignalKind::Resolved, Some(Reason::Sla)) > 0);
    assert!(run.engine.completed > 0);
    assert!(run.engine.completed < run.instances());
    let late = run
        .signals
        .iter()
        .filter(|signal| signal.kind == SignalKind::StepCompleted && signal.data.late == Some(true))
        .count();
    assert!(late > 0);
}

#[test]
fn slow_services_breach_then_complete_late() {
    let run = run(FaultMix::only(FaultKind::Slow, 1.0), 4, 60, false);
    assert_eq!(run.engine.completed, run.instances());
    assert_eq!(
        run.subjects(SignalKind::Breached),
        run.subjects(SignalKind::Completed)
    );
    assert_eq!(
        run.count(SignalKind::Breached, Some(Reason::Deadline)),
        0,
        "slow, not lost"
    );
    let late: BTreeSet<String> = run
        .signals
        .iter()
        .filter(|signal| signal.kind == SignalKind::StepCompleted && signal.data.late == Some(true))
        .map(|signal| signal.subject.to_string())
        .collect();
    assert_eq!(late, run.subjects(SignalKind::Completed));
    assert_eq!(
        run.subjects(SignalKind::Resolved),
        run.subjects(SignalKind::Completed)
    );
}

#[test]
fn declined_payments_and_checks_fail_instances() {
    let run = run(FaultMix::only(FaultKind::Declined, 1.0), 5, 60, false);
    assert_eq!(run.engine.failed, run.instances());
    let events: BTreeSet<&str> = run
        .signals
        .iter()
        .filter(|signal| signal.kind == SignalKind::Failed)
        .filter_map(|signal| signal.data.event.as_deref())
        .collect();
    assert_eq!(
        events,
        BTreeSet::from(["AddressRejected", "CreditDeclined", "PaymentFailed"])
    );
    assert_eq!(run.count(SignalKind::Breached, None), 0);
}

#[test]
fn late_starts_leave_orphans_then_open_late() {
    let run = run(FaultMix::only(FaultKind::LateStart, 1.0), 6, 60, false);
    assert_eq!(run.engine.started, run.instances());
    // Every instance's first followers were held and dropped before its start arrived.
    let orphaned = run.subjects(SignalKind::Orphaned);
    let started = run.subjects(SignalKind::Started);
    assert!(started.iter().all(|key| orphaned.contains(key)));
}

#[test]
fn starts_on_a_legacy_topic_leave_only_orphans() {
    let run = run(FaultMix::only(FaultKind::WrongTopic, 1.0), 7, 60, false);
    assert_eq!(run.engine.started, 0);
    assert!(run.count(SignalKind::Orphaned, None) as u64 >= run.instances());
    assert!(run
        .records
        .iter()
        .any(|record| record.topic == "orders-legacy"));
    assert!(run
        .records
        .iter()
        .any(|record| record.topic == "customer-events-legacy"));
}

#[test]
fn duplicates_are_reported_and_change_nothing_else() {
    let run = run(FaultMix::only(FaultKind::Duplicate, 1.0), 8, 60, false);
    let duplicates = run.count(SignalKind::Deviation, Some(Reason::Duplicate));
    assert!(duplicates > run.instances() as usize / 2, "{duplicates}");
    assert_eq!(run.engine.duplicates as usize, duplicates);
    assert_eq!(run.engine.completed, run.instances());
    assert_eq!(run.count(SignalKind::Breached, None), 0);
}

#[test]
fn out_of_order_deliveries_are_reported_without_breaches() {
    let run = run(FaultMix::only(FaultKind::OutOfOrder, 1.0), 9, 60, false);
    assert_eq!(
        run.count(SignalKind::Deviation, Some(Reason::OutOfOrder)),
        run.instances() as usize
    );
    assert_eq!(run.engine.completed, run.instances());
    assert_eq!(run.count(SignalKind::Breached, None), 0);
    // Delivered late, the record keeps the time its event happened.
    let decreases = run
        .records
        .windows(2)
        .filter(|pair| pair[1].timestamp < pair[0].timestamp)
        .count();
    assert!(decreases > 0);
}

#[test]
fn malformed_records_are_invalid_or_dead_lettered() {
    let run = run(FaultMix::only(FaultKind::Malformed, 1.0), 10, 60, false);
    let undecodable = run
        .records
        .iter()
        .filter(|record| serde_json::from_slice::<Value>(&record.payload).is_err())
        .count() as u64;
    assert!(undecodable > 0);
    let reasons: BTreeSet<&str> = run.dead_letters.iter().map(|dead| dead.reason).collect();
    assert_eq!(reasons, BTreeSet::from(["bad_time", "missing_key"]));
    assert_eq!(
        run.engine.invalid,
        undecodable + run.dead_letters.len() as u64
    );
    assert_eq!(undecodable + run.dead_letters.len() as u64, run.instances());
    // The good record never came: the instance stalls.
    assert_eq!(run.engine.completed, 0);
}

#[test]
fn the_default_mix_shows_every_kind_of_trouble() {
    let run = run(FaultMix::default(), 11, 240, true);
    for kind in FaultKind::ALL {
        assert!(run.simulated.fault(kind) > 0, "{kind:?}");
    }
    for (kind, reason) in [
        (SignalKind::Breached, Some(Reason::Sla)),
        (SignalKind::Breached, Some(Reason::Deadline)),
        (SignalKind::Action, None),
        (SignalKind::Resolved, None),
        (SignalKind::Failed, None),
        (SignalKind::Orphaned, None),
        (SignalKind::Deviation, Some(Reason::Duplicate)),
        (SignalKind::Deviation, Some(Reason::OutOfOrder)),
    ] {
        assert!(run.count(kind, reason) > 0, "{kind:?} {reason:?}");
    }
    assert!(!run.dead_letters.is_empty());
    assert!(run.engine.completed > run.instances() / 2);
}

#[test]
fn a_seed_fixes_the_stream() {
    let records = |seed: u64, step: Millis| {
        let config = SimConfig {
            seed,
            rate_per_sec: 0.2,
            faults: FaultMix::default(),
        };
        let mut simulator = Simulator::starting_at(config, start());
        let mut records = Vec::new();
        let mut batch = Vec::new();
        let mut now = start();
        let end = start() + 2 * HOUR;
        while now < end {
            now = (now + step).min(end);
            simulator.advance(now, &mut batch);
            // Every record is due by then: its event time is never in the future.
            assert!(batch
                .iter()
                .all(|record: &SimRecord| record.timestamp <= now));
            records.append(&mut batch);
        }
        records
    };
    let first = records(42, 1000);
    assert!(first.len() > 1000, "{}", first.len());
    // The same seed gives the same records, however finely time is advanced.
    assert!(first == records(42, 1000));
    assert!(first == records(42, 7 * MINUTE));
    assert!(first != records(43, 1000));
}

#[test]
fn the_first_advance_anchors_the_traffic() {
    let config = SimConfig {
        seed: 5,
        rate_per_sec: 1.0,
        faults: FaultMix::none(),
    };
    let mut simulator = Simulator::new(config);
    let mut records = Vec::new();
    simulator.advance(start(), &mut records);
    assert!(records.is_empty());
    simulator.advance(start() + MINUTE, &mut records);
    assert!(!records.is_empty());
    assert!(records.iter().all(|record| record.timestamp > start()));
    assert!(records
        .iter()
        .all(|record| record.timestamp <= start() + MINUTE));
    let none = SimConfig {
        rate_per_sec: 0.0,
        ..config
    };
    let mut idle = Simulator::new(none);
    idle.advance(start() + HOUR, &mut records);
    assert_eq!(idle.next_due(), None);
}

#[test]
fn a_retry_brings_a_lost_payment_and_the_rest_of_the_order_follows() {
    let config = SimConfig {
        seed: 12,
        rate_per_sec: 0.05,
        faults: FaultMix {
            recover_on_retry: 1.0,
            ..FaultMix::only(FaultKind::Lost, 1.0)
        },
    };
    let mut simulator = Simulator::starting_at(config, start());
    let mut records = Vec::new();
    let now = start() + HOUR;
    simulator.advance(now, &mut records);
    // An order whose payment request was lost (so the charge and the shipment never came).
    // Sagas live in a hash map: look at them in key order so the same one is picked in every
    // process, and pick one whose lost event is the payment request itself.
    let mut sagas: Vec<(&u64, &crate::simulate::script::Saga)> = simulator.sagas.iter().collect();
    sagas.sort_by_key(|(id, _)| **id);
    let order = sagas
        .into_iter()
        .map(|(_, saga)| saga)
        .find(|saga| {
            saga.flow == FlowKind::Order
                && saga.events.iter().any(|event| {
                    event.service == Service::Payments
                        && event.state == State::Withheld
                        && event.ce_type.ends_with(".PaymentRequested")
                })
                && saga.events.iter().all(|event| event.state != State::Queued)
        })
        .map(|saga| saga.key.clone())
        .expect("an order with a lost payment");
    let command = serde_json::json!({ "type": "RetryPayment", "orderId": order, "attempt": 1 });
    assert!(!simulator.on_action_record("other-topic", None, &command, now));
    let stranger = serde_json::json!({ "type": "RetryPayment", "orderId": "ord-nobody" });
    assert!(!simulator.on_action_record("payment-commands", None, &stranger, now));
    assert!(simulator.on_action_record("payment-commands", Some(&order), &command, now));
    assert_eq!(simulator.stats().recovered, 1);
    let mut after = Vec::new();
    simulator.stop_starting();
    simulator.advance(now + 4 * HOUR, &mut after);
    let mine: Vec<Value> = after
        .iter()
        .map(|record| serde_json::from_slice::<Value>(&record.payload).unwrap_or(Value::Null))
        .filter(|value| value.to_string().contains(&order))
        .collect();
    let types: Vec<&str> = mine
        .iter()
        .filter_map(|value| value.get("type").and_then(Value::as_str))
        .collect();
    assert_eq!(
        types,
        ["PaymentRequested", "ShipmentDispatched"],
        "{mine:?}"
    );
    let requested = after
        .iter()
        .find(|record| record.key.as_deref() == Some(order.as_str()) && record.topic == "payments")
        .expect("the payment request");
    assert!((now + 10_000..=now + 120_000).contains(&requested.timestamp));
    // The charge is keyed by the payment id, which the request links.
    let payment_id = mine[0]["paymentId"]
        .as_str()
        .expect("paymentId")
        .to_string();
    assert!(after
        .iter()
        .any(|record| record.key.as_deref() == Some(payment_id.as_str())
            && record.timestamp > requested.timestamp));
    // Answered once: the same command again finds nothing lost.
    assert!(!simulator.on_action_record("payment-commands", Some(&order), &command, now));
}
