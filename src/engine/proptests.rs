//! Property test over random streams: events of a few keys in random order, shuffled within
//! the allowed lateness, with re-deliveries and truncation. Whatever the stream: no panic, an
//! instance ends at most once, a window breaches at most once, ids are unique, two runs print
//! the same bytes, and renumbering the timers' setting order changes nothing. Incremental
//! checkpoints taken (or failed) at random points restore to the whole state, and the restored
//! engine continues byte for byte like the original; so does one killed several times, each
//! time restored from the last checkpoint and given the inputs after it again.

use super::tests::parts::{state, PartStore};
use super::tests::ORDER;
use super::*;
use crate::flow::parse_flow_file;
use crate::json::Json;
use proptest::prelude::*;
use std::collections::HashSet;

const EVENTS: [(&str, &str); 7] = [
    ("orders", r#""type":"Placed""#),
    ("stock", r#""type":"Reserved""#),
    ("pay", r#""type":"PayRequested","pid":"P""#),
    ("pay", r#""type":"Charged","pid":"P""#),
    ("ship", r#""type":"Shipped""#),
    ("orders", r#""type":"Cancelled""#),
    ("notes", r#""n":1"#),
];

fn record(key: u8, event: usize, time: i64, eid: u8, offset: i64) -> Record<'static> {
    let (topic, body) = EVENTS[event];
    // Only the payment id placeholder (a bare `P` would also hit "Placed").
    let body = body.replace(r#""P""#, &format!(r#""p-{key}""#));
    Record {
        topic: topic.to_string(),
        partition: 0,
        offset,
        key: None,
        timestamp: time,
        headers: Vec::new(),
        value: Json::parse(&format!(r#"{{{body},"id":"o-{key}","eid":"e{eid}"}}"#))
            .expect("valid JSON")
            .into_owned(),
    }
}

/// Feeds the records as plain records, or (`correlated`) matched beforehand by the engine's
/// correlator and owned, as replay's decoding thread does.
fn run(
    records: &[Record<'_>],
    lateness: Millis,
    renumber_above: Option<u32>,
    correlated: bool,
) -> Vec<Signal> {
    let flow = parse_flow_file(std::path::Path::new("order.yaml"), ORDER).expect("flow parses");
    let config = EngineConfig {
        allowed_lateness: lateness,
        ..EngineConfig::default()
    };
    let mut engine = Engine::new(vec![Flow::new(flow)], config);
    if let Some(threshold) = renumber_above {
        engine.timers.set_renumber_above(threshold);
    }
    let correlator = engine.correlator();
    let mut outputs = Vec::new();
    for record in records {
        let input = if correlated {
            let matches = correlator.matches(record).into_iter().map(Match::into_owned).collect();
            Input::CorrelatedRecordReceived { record, matches }
        } else {
            Input::RecordReceived(record)
        };
        engine.handle(input, &mut outputs);
    }
    engine.handle(Input::ClockAdvanced(30 * 86_400_000), &mut outputs);
    outputs
        .into_iter()
        .filter_map(|output| match output {
            Output::Emit(signal) => Some(signal),
            _ => None,
        })
        .collect()
}

/// (key, event, minute, event-id) tuples become records in time order, then neighbouring
/// records closer than the lateness are swapped and some are re-delivered.
/// The configuration of the checkpoint properties: ended instances purged after an hour, so
/// that checkpoints also delete parts.
fn restartable(lateness: Millis) -> EngineConfig {
    EngineConfig {
        allowed_lateness: lateness,
        retention: 3_600_000,
        ..EngineConfig::default()
    }
}

/// The order flow, compiled.
fn flows() -> Vec<Flow> {
    let flow = parse_flow_file(std::path::Path::new("order.yaml"), ORDER).expect("flow parses");
    vec![Flow::new(flow)]
}

/// The records, then the clock in steps past every deadline and retention.
fn inputs<'r>(records: &'r [Record<'static>]) -> Vec<Input<'r>> {
    let clock_steps = (1..=8).map(|hour| hour * 3_600_000).chain([30 * 86_400_000]);
    records
        .iter()
        .map(Input::RecordReceived)
        .chain(clock_steps.map(Input::ClockAdvanced))
        .collect()
}

fn stream() -> impl Strategy<Value = (Vec<Record<'static>>, Millis)> {
    let event = (0u8..4, 0usize..EVENTS.len(), 0i64..300, 0u8..40);
    (
        prop::collection::vec(event, 0..80),
        0i64..3,
        prop::collection::vec(any::<u16>(), 0..40),
        0usize..80,
    )
        .prop_map(|(mut events, lateness_minutes, shuffles, truncate)| {
            events.sort_by_key(|(_, _, minute, _)| *minute);
            let lateness = lateness_minutes * 60_000;
            let mut records: Vec<Record> = events
                .iter()
                .enumerate()
                .map(|(index, (key, event, minute, eid))| {
                    record(*key, *event, minute * 60_000, *eid, index as i64)
                })
                .collect();
            for shuffle in shuffles {
                let index = usize::from(shuffle) % records.len().max(1);
                if index + 1 < records.len()
                    && records[index + 1].timestamp - records[index].timestamp <= lateness
                {
                    records.swap(index, index + 1);
                }
                if shuffle % 7 == 0 && index < records.len() {
                    let again = records[index].clone();
                    records.insert(index + 1, again);
                }
            }
            records.truncate(truncate.max(records.len() / 2));
            (records, lateness)
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn random_streams_keep_the_invariants((records, lateness) in stream()) {
        let signals = run(&records, lateness, None, false);
        let mut ids = HashSet::new();
        let mut ended = HashSet::new();
        let mut breaches = HashSet::new();
        for signal in &signals {
            prop_assert!(ids.insert(signal.id), "duplicate id {}", signal.to_json());
            match signal.kind {
                SignalKind::Completed | SignalKind::Failed => {
                    prop_assert!(ended.insert(signal.subject.clone()), "ended twice: {}", signal.to_json());
                }
                SignalKind::Breached => {
                    let window = (signal.subject.clone(), signal.data.step.clone(), signal.data.reason, signal.data.attempt);
                    prop_assert!(breaches.insert(window), "window breached twice: {}", signal.to_json());
                }
                _ => {}
            }
        }
        let again = run(&records, lateness, None, false);
        let render = |signals: &[Signal]| signals.iter().map(Signal::to_json).collect::<Vec<_>>();
        prop_assert_eq!(render(&signals), render(&again));
        // Renumbering the timers' setting order after nearly every input changes nothing.
        let renumbered = run(&records, lateness, Some(3), false);
        prop_assert_eq!(render(&signals), render(&renumbered));
        // Records matched beforehand (replay matches on its decoding thread) give the same.
        let correlated = run(&records, lateness, None, true);
        prop_assert_eq!(render(&signals), render(&correlated));
    }

    #[test]
    fn incremental_checkpoints_restore_to_the_original(
        (records, lateness) in stream(),
        checkpoints in prop::collection::vec(0u8..4, 0..160),
        restart_at in 0usize..100,
        renumber in any::<bool>(),
    ) {
        let config = restartable(lateness);
        let fresh = || {
            let mut engine = Engine::new(flows(), config.clone());
            if renumber {
                engine.timers.set_renumber_above(5);
            }
            engine
        };
        let inputs = inputs(&records);
        let mut straight = fresh();
        let mut expected = Vec::new();
        for input in &inputs {
            straight.handle(input.clone(), &mut expected);
        }
        // Checkpointed (or failing to) at random points, restarted from the parts once.
        let mut engine = fresh();
        let mut store = PartStore::default();
        let mut outputs = Vec::new();
        for (index, input) in inputs.iter().enumerate() {
            if index == restart_at {
                store.checkpoint(&mut engine);
                engine = Engine::restore(flows(), config.clone(), store.snapshot().expect("parts assemble"))
                    .expect("parts restore");
                if renumber {
                    engine.timers.set_renumber_above(5);
                }
            }
            engine.handle(input.clone(), &mut outputs);
            match checkpoints.get(index).copied().unwrap_or(0) {
                1 => store.checkpoint(&mut engine),
                2 => PartStore::failed_checkpoint(&mut engine),
                _ => {}
            }
        }
        prop_assert_eq!(format!("{expected:?}"), format!("{outputs:?}"));
        prop_assert_eq!(state(&engine), state(&straight));
        store.checkpoint(&mut engine);
        let restored = Engine::restore(flows(), config, store.snapshot().expect("parts assemble"))
            .expect("parts restore");
        prop_assert_eq!(state(&restored), state(&engine));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    /// Kills at random points, several per stream: each restarts from the parts of the last
    /// checkpoint written and applies again the inputs after it (as the daemon reads them
    /// again). The result is the state of an uninterrupted run, and every input's outputs, as
    /// last produced, are the uninterrupted run's.
    #[test]
    fn kills_restore_what_was_checkpointed_and_redo_the_rest(
        (records, lateness) in stream(),
        steps in prop::collection::vec(0u8..5, 0..200),
    ) {
        let config = restartable(lateness);
        let inputs = inputs(&records);
        let mut straight = Engine::new(flows(), config.clone());
        let mut expected = Vec::new();
        for input in &inputs {
            let mut outputs = Vec::new();
            straight.handle(input.clone(), &mut outputs);
            expected.push(format!("{outputs:?}"));
        }
        let mut engine = Engine::new(flows(), config.clone());
        let mut store = PartStore::default();
        let mut saved = false;
        let mut durable = 0; // inputs applied in the last checkpoint written
        let mut produced = vec![String::new(); inputs.len()];
        let mut next = 0;
        let mut steps = steps.into_iter();
        while next < inputs.len() {
            let mut outputs = Vec::new();
            engine.handle(inputs[next].clone(), &mut outputs);
            produced[next] = format!("{outputs:?}");
            next += 1;
            match steps.next().unwrap_or(0) {
                1 => {
                    store.checkpoint(&mut engine);
                    saved = true;
                    durable = next;
                }
                2 => PartStore::failed_checkpoint(&mut engine),
                3 => {
                    engine = if saved {
                        Engine::restore(flows(), config.clone(), store.snapshot().expect("parts assemble"))
                            .expect("parts restore")
                    } else {
                        Engine::new(flows(), config.clone())
                    };
                    next = durable;
                }
                _ => {}
            }
        }
        prop_assert_eq!(state(&engine), state(&straight));
        prop_assert_eq!(produced, expected);
    }
}
