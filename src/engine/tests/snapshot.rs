//! Snapshots: an engine restored from a snapshot taken after any input continues exactly as
//! the original, and a snapshot is refused by an engine with other flows.

use super::*;
use super::parts::{state, PartStore};
use crate::engine::snapshot::{Snapshot, SnapshotError};

/// Runs the script once straight through, and once split at every line with a snapshot
/// written to JSON and restored in between, and once more restored from incremental checkpoint
/// parts (taken after every third line and at the split); every transcript must be the same.
#[track_caller]
fn check_resumable(flows: &[&str], config: EngineConfig, script: &str) {
    let full = run(flows, config.clone(), script);
    assert!(full.lines().count() > 3, "script too small to test: {full}");
    let lines: Vec<&str> = script.lines().collect();
    for split in 0..=lines.len() {
        let mut first = Engine::new(compile(flows), config.clone());
        let mut transcript = String::new();
        let mut parts = PartStore::default();
        for (number, line) in lines.iter().enumerate().take(split) {
            feed(&mut first, number, line, &mut transcript);
            if (number + split) % 3 == 0 {
                parts.checkpoint(&mut first);
            }
        }
        parts.checkpoint(&mut first);
        let mut third = Engine::restore(compile(flows), config.clone(), parts.snapshot().unwrap()).unwrap();
        let mut third_transcript = transcript.clone();
        for (number, line) in lines.iter().enumerate().skip(split) {
            feed(&mut third, number, line, &mut third_transcript);
        }
        assert_eq!(third_transcript, full, "resumed from checkpoint parts after line {split}");
        let saved = serde_json::to_string(&first.snapshot()).unwrap();
        assert_eq!(
            saved,
            serde_json::to_string(&first.snapshot()).unwrap(),
            "snapshots are deterministic"
        );
        let snapshot: Snapshot = serde_json::from_str(&saved).unwrap();
        let mut second = Engine::restore(compile(flows), config.clone(), snapshot).unwrap();
        for (number, line) in lines.iter().enumerate().skip(split) {
            feed(&mut second, number, line, &mut transcript);
        }
        assert_eq!(transcript, full, "resumed after line {split}");
        let straight = run_engine(flows, config.clone(), script);
        assert_eq!(second.stats(), straight.stats());
        assert_eq!(state(&third), state(&straight), "the state restored from parts at line {split}");
        assert_eq!(
            serde_json::to_string(&second.snapshot()).unwrap(),
            serde_json::to_string(&straight.snapshot()).unwrap(),
            "the state (audit trails included) after resuming at line {split}"
        );
    }
}

fn run_engine(flows: &[&str], config: EngineConfig, script: &str) -> Engine {
    let mut engine = Engine::new(compile(flows), config);
    let mut transcript = String::new();
    for (number, line) in script.lines().enumerate() {
        feed(&mut engine, number, line, &mut transcript);
    }
    engine
}

#[test]
fn a_restored_engine_continues_exactly_as_the_original() {
    let order = r#"
        0 stock {"type":"Reserved","id":"o-3","eid":"e0"}
        0 orders {"type":"Placed","id":"o-1","eid":"e1","total":1500.5}
        0 orders {"type":"Placed","id":"o-2","eid":"e2"}
        1m stock {"type":"Reserved","id":"o-1","eid":"e3"}
        1m pay {"type":"Charged","pid":"p-1","eid":"e5"}
        2m pay {"type":"PayRequested","id":"o-1","pid":"p-1","eid":"e4"}
        3m stock {"type":"Reserved","id":"o-2","eid":"e6"}
        4m pay {"type":"PayRequested","id":"o-2","pid":"p-2","eid":"e7"}
        5m pay {"type":"Charged","pid":"p-9","eid":"e8"}
        50m pay {"type":"Charged","pid":"p-2","eid":"e9"}
        51m pay {"type":"Charged","pid":"p-2","eid":"e9"}
        3h ship {"type":"Shipped","id":"o-1","eid":"e10"}
        until 12h
        "#;
    check_resumable(&[ORDER], EngineConfig::default(), order);
    let with_history = EngineConfig {
        history_limit: 4,
        ..EngineConfig::default()
    };
    check_resumable(&[ORDER], with_history.clone(), order);
    let history = run_engine(&[ORDER], with_history, order).snapshot();
    let text = serde_json::to_string(&history).unwrap();
    assert!(
        text.contains("history") && text.contains(r#"\"eid\":\"e10\""#),
        "the audit trail is in the snapshot: {text}"
    );
    let tickets = r#"
        0 tickets key=t-1 {"type":"Opened"}
        10m tickets key=t-1 {"type":"Touched"}
        41m tickets key=t-2 {"type":"Opened"}
        50m tickets key=t-1 {"type":"Touched"}
        1h21m tickets key=t-2 {"type":"Touched"}
        1h30m tickets key=t-1 {"type":"Closed"}
        3h tickets key=t-1 {"type":"Opened"}
        until 5h
        "#;
    let lateness = EngineConfig {
        allowed_lateness: 20 * 60_000,
        retention: 3_600_000,
        ..EngineConfig::default()
    };
    check_resumable(&[lateness::STUCK], lateness, tickets);
}

#[test]
fn a_snapshot_is_refused_by_an_engine_with_other_flows() {
    let engine = Engine::new(compile(&[ORDER]), EngineConfig::default());
    let snapshot: Snapshot =
        serde_json::from_str(&serde_json::to_string(&engine.snapshot()).unwrap()).unwrap();
    let other = ORDER.replace("flow: t", "flow: other");
    match Engine::restore(compile(&[&other]), EngineConfig::default(), snapshot) {
        Err(SnapshotError::FlowsChanged { taken, loaded }) => {
            assert_eq!(
                (taken, loaded),
                (vec!["t".to_string()], vec!["other".to_string()])
            )
        }
        Err(other) => panic!("unexpected error {other}"),
        Ok(_) => panic!("a snapshot of other flows was restored"),
    }
}

/// Flow `t` under another name, reading other topics (it sees none of the script's records).
fn other_flow() -> String {
    ORDER
        .replace("flow: t", "flow: u")
        .replace("topic: ", "topic: other-")
}

/// Two orders and a held orphan before the restart (lines 0-4), more after it.
const SCRIPT: &str = "
    0 orders {\"type\":\"Placed\",\"id\":\"o-1\",\"eid\":\"e1\"}
    1m orders {\"type\":\"Placed\",\"id\":\"o-2\",\"eid\":\"e2\"}
    2m pay {\"type\":\"Charged\",\"pid\":\"p-9\",\"eid\":\"e3\"}
    3m stock {\"type\":\"Reserved\",\"id\":\"o-1\",\"eid\":\"e4\"}
    4m pay {\"type\":\"PayRequested\",\"id\":\"o-1\",\"pid\":\"p-1\",\"eid\":\"e5\"}
    5m pay {\"type\":\"Charged\",\"pid\":\"p-1\",\"eid\":\"e6\"}
    until 3h";
const RESTART_AT: usize = 5;

#[test]
fn a_flow_carried_over_to_another_list_continues_as_if_nothing_changed() {
    let config = EngineConfig::default();
    let straight = run(&[ORDER], config.clone(), SCRIPT);
    let mut engine = Engine::new(compile(&[ORDER]), config.clone());
    let mut transcript = String::new();
    for (number, line) in SCRIPT.lines().enumerate().take(RESTART_AT) {
        feed(&mut engine, number, line, &mut transcript);
    }
    let snapshot: Snapshot = serde_json::from_str(&serde_json::to_string(&engine.snapshot()).unwrap()).unwrap();
    let other = other_flow();
    let (mut engine, changes) =
        Engine::restore_with_changed_flows(compile(&[&other, ORDER]), config, snapshot).unwrap();
    assert_eq!(changes.added, ["u"]);
    assert!(changes.dropped.is_empty(), "{changes:?}");
    for (number, line) in SCRIPT.lines().enumerate().skip(RESTART_AT) {
        feed(&mut engine, number, line, &mut transcript);
    }
    assert_eq!(transcript, straight);
}

#[test]
fn a_removed_flow_loses_its_instances_and_held_events_and_says_so() {
    let config = EngineConfig::default();
    let mut engine = Engine::new(compile(&[ORDER]), config.clone());
    let mut transcript = String::new();
    for (number, line) in SCRIPT.lines().enumerate().take(RESTART_AT) {
        feed(&mut engine, number, line, &mut transcript);
    }
    assert_eq!(engine.open_instances(), 2);
    let snapshot: Snapshot = serde_json::from_str(&serde_json::to_string(&engine.snapshot()).unwrap()).unwrap();
    let other = other_flow();
    let (mut engine, changes) = Engine::restore_with_changed_flows(compile(&[&other]), config, snapshot).unwrap();
    assert_eq!(changes.added, ["u"]);
    assert_eq!(
        changes.dropped,
        [crate::engine::migrate::DroppedFlow {
            name: "t".to_string(),
            open_instances: 2,
            ended_instances: 0,
            orphan_groups: 1,
        }]
    );
    assert_eq!(engine.open_instances(), 0);
    let mut outputs = Vec::new();
    engine.handle(Input::ClockAdvanced(10 * 3_600_000), &mut outputs);
    assert!(outputs.is_empty(), "no timer of a dropped instance fires: {outputs:?}");
}

/// The flows' shape is the names of their events, steps, aliases and actions in order: a flow
/// whose steps were renamed or reordered (same count) is reshaped, not carried over with its
/// step states moved to other steps.
#[test]
fn renamed_or_reordered_steps_reshape_a_flow() {
    let config = EngineConfig::default();
    let edits: [(&str, String); 4] = [
        ("a renamed step", ORDER.replace("  stock: {", "  reserve: {").replace("after: [stock]", "after: [reserve]")),
        (
            "reordered events",
            ORDER.replace(
                "  Cancelled: { topic: orders, match: { type: Cancelled }, key: id, id: eid }\n",
                "",
            )
            .replace(
                "  Noted: { topic: notes, match: {}, key: id }\n",
                "  Noted: { topic: notes, match: {}, key: id }\n  Cancelled: { topic: orders, match: { type: Cancelled }, key: id, id: eid }\n",
            ),
        ),
        ("a renamed alias", ORDER.replace("paymentId", "payment")),
        ("a renamed action", ORDER.replace("[retry]", "[again]").replace("  retry:\n", "  again:\n")),
    ];
    for (what, edited) in edits {
        assert_ne!(edited, ORDER, "{what}: the edit applies");
        let mut engine = Engine::new(compile(&[ORDER]), config.clone());
        let mut transcript = String::new();
        for (number, line) in SCRIPT.lines().enumerate().take(RESTART_AT) {
            feed(&mut engine, number, line, &mut transcript);
        }
        let snapshot: Snapshot = serde_json::from_str(&serde_json::to_string(&engine.snapshot()).unwrap()).unwrap();
        let (engine, changes) = Engine::restore_with_changed_flows(compile(&[&edited]), config.clone(), snapshot)
            .unwrap_or_else(|error| panic!("{what}: {error}"));
        assert_eq!(changes.added, ["t"], "{what}");
        assert_eq!(changes.dropped.len(), 1, "{what}: {changes:?}");
        assert_eq!(changes.dropped[0].open_instances, 2, "{what}: {changes:?}");
        assert_eq!(engine.open_instances(), 0, "{what}");
    }
    // A changed `within` or condition keeps the shape: the instances carry over.
    let mut engine = Engine::new(compile(&[ORDER]), config.clone());
    let mut transcript = String::new();
    for (number, line) in SCRIPT.lines().enumerate().take(RESTART_AT) {
        feed(&mut engine, number, line, &mut transcript);
    }
    let snapshot: Snapshot = serde_json::from_str(&serde_json::to_string(&engine.snapshot()).unwrap()).unwrap();
    let slower = ORDER.replace("within: 10m", "within: 20m");
    let (engine, changes) = Engine::restore_with_changed_flows(compile(&[&slower]), config, snapshot).unwrap();
    assert!(changes.is_empty(), "{changes:?}");
    assert_eq!(engine.open_instances(), 2);
}

/// Held events and audit trails refer to topics by an id that depends on the flows and their
/// order: restored with a flow in front that reads other topics, they still name their own.
#[test]
fn held_events_and_audit_trails_keep_their_topics_when_the_flows_change() {
    let config = EngineConfig {
        history_limit: 10,
        ..EngineConfig::default()
    };
    let with_flows = |flows: &[&str]| {
        let mut engine = Engine::new(compile(&[ORDER]), config.clone());
        let mut transcript = String::new();
        for (number, line) in SCRIPT.lines().enumerate().take(RESTART_AT) {
            feed(&mut engine, number, line, &mut transcript);
        }
        let snapshot: Snapshot = serde_json::from_str(&serde_json::to_string(&engine.snapshot()).unwrap()).unwrap();
        Engine::restore_with_changed_flows(compile(flows), config.clone(), snapshot).unwrap().0
    };
    let topics = |engine: &Engine| -> Vec<String> {
        let flow = engine.flows.iter().position(|flow| flow.def.name == "t").unwrap();
        let detail = engine.instance_detail(flow, "o-1").expect("instance kept");
        detail
            .history
            .iter()
            .filter_map(|entry| match entry {
                crate::engine::query::HistoryView::Event { topic, event, .. } => Some(format!("{event}@{topic}")),
                _ => None,
            })
            .collect()
    };
    let same = with_flows(&[ORDER]);
    assert_eq!(topics(&same), ["Placed@orders", "Reserved@stock"]);
    let other = other_flow();
    let moved = with_flows(&[&other, ORDER]);
    assert_ne!(moved.topics.names(), same.topics.names(), "the topic ids moved");
    assert_eq!(topics(&moved), topics(&same));
    // The held event (Charged, before its PayRequested linked it) is claimed after the restart
    // and recorded with its own topic.
    let mut moved = moved;
    let mut transcript = String::new();
    for (number, line) in SCRIPT.lines().enumerate().skip(RESTART_AT) {
        feed(&mut moved, number, line, &mut transcript);
    }
    let claimed = topics(&moved);
    assert!(claimed.iter().any(|entry| entry == "Charged@pay"), "{claimed:?}");
    assert!(claimed.iter().all(|entry| !entry.contains("other-")), "{claimed:?}");
}

/// The documented limit of the action horizon across a restart (docs/daemon.md): a breach
/// derived just before a crash, within the horizon, runs its actions; derived again after a
/// restart from the checkpoint before it, with the wall clock (and so the horizon) moved past
/// it by the downtime, it is signalled under the same id with its actions skipped. Consumers
/// that deduplicate by id keep the first copy, the one that ran the actions.
#[test]
fn a_breach_derived_again_beyond_the_horizon_keeps_its_id_and_skips_its_actions() {
    let breaches = |engine: &mut Engine, horizon: &str| {
        let mut outputs = Vec::new();
        engine.handle(Input::ActionHorizonSet(offset(horizon)), &mut outputs);
        engine.handle(Input::ClockAdvanced(offset("11m")), &mut outputs);
        outputs
            .into_iter()
            .filter_map(|output| match output {
                Output::Emit(signal) if signal.kind == SignalKind::Breached => {
                    Some((signal.id, signal.data.actions, signal.alert))
                }
                _ => None,
            })
            .collect::<Vec<_>>()
    };
    let mut first = Engine::new(compile(&[ORDER]), EngineConfig::default());
    let mut transcript = String::new();
    feed(&mut first, 0, r#"0 orders {"type":"Placed","id":"o-1","eid":"e1"}"#, &mut transcript);
    let mut parts = PartStore::default();
    parts.checkpoint(&mut first);
    // Before the crash: the wall clock is close, the breach at 10m is within the horizon.
    let before = breaches(&mut first, "0");
    // The crash loses everything after the checkpoint; the daemon comes back two hours later.
    let mut second =
        Engine::restore(compile(&[ORDER]), EngineConfig::default(), parts.snapshot().unwrap())
            .unwrap();
    let after = breaches(&mut second, "1h");
    assert_eq!(before.len(), 1, "{before:?}");
    assert_eq!(after.len(), 1, "{after:?}");
    assert_eq!(before[0].0, after[0].0, "the same breach has the same id");
    assert_eq!(
        (&*before[0].1, before[0].2),
        (&["alert".into()][..], true),
        "within the horizon the breach alerts"
    );
    assert_eq!(
        (&*after[0].1, after[0].2),
        (&[][..], false),
        "beyond the horizon the same breach runs no actions"
    );
}
