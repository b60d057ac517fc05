//! Read views: live counts per flow and step, the flow graph, instance pages with a stable
//! order and cursor, one instance's steps and windows, held orphans.

use super::*;
use crate::engine::query::{InstanceFilter, InstanceState};
use expect_test::expect;

/// Five orders at different stages, one orphan, at clock 30m.
const STAGES: &str = r#"
    0 orders {"type":"Placed","id":"o-1","eid":"a1"}
    1m orders {"type":"Placed","id":"o-2","eid":"b1"}
    1m stock {"type":"Reserved","id":"o-2","eid":"b2"}
    2m orders {"type":"Placed","id":"o-3","eid":"c1"}
    2m stock {"type":"Reserved","id":"o-3","eid":"c2"}
    3m pay {"type":"PayRequested","id":"o-3","pid":"p-3","eid":"c3"}
    4m pay {"type":"Charged","pid":"p-3","eid":"c4"}
    5m ship {"type":"Shipped","id":"o-3","eid":"c5"}
    6m orders {"type":"Placed","id":"o-4","eid":"d1"}
    7m orders {"type":"Cancelled","id":"o-4","eid":"d2"}
    8m orders {"type":"Placed","id":"o-5","eid":"e1"}
    29m stock {"type":"Reserved","id":"o-9","eid":"x1"}
    30m noise {}
"#;

fn engine() -> Engine {
    let mut engine = Engine::new(compile(&[ORDER]), EngineConfig::default());
    let mut transcript = String::new();
    for (number, line) in STAGES.lines().enumerate() {
        feed(&mut engine, number, line, &mut transcript);
    }
    engine
}

#[test]
fn flows_count_instances_per_state_and_step() {
    expect![[r#"
        [
            FlowCounts {
                name: "t",
                description: None,
                open: 3,
                completed: 1,
                failed: 1,
                breached: 3,
                stuck: 0,
                steps: [
                    StepCounts {
                        name: "stock",
                        pending: 0,
                        waiting: 2,
                        breached: 2,
                        stuck: 0,
                        completed: 2,
                        skipped: 0,
                    },
                    StepCounts {
                        name: "payment",
                        pending: 2,
                        waiting: 1,
                        breached: 1,
                        stuck: 0,
                        completed: 1,
                        skipped: 0,
                    },
                    StepCounts {
                        name: "shipping",
                        pending: 3,
                        waiting: 0,
                        breached: 0,
                        stuck: 0,
                        completed: 1,
                        skipped: 0,
                    },
                ],
            },
        ]
    "#]]
    .assert_debug_eq(&engine().flow_counts());
}

#[test]
fn the_graph_names_steps_edges_events_and_limits() {
    expect![[r#"
        FlowGraph {
            name: "t",
            description: None,
            start: [
                "Placed",
            ],
            steps: [
                GraphStep {
                    name: "stock",
                    after: [],
                    awaits: [
                        "Reserved",
                    ],
                    within: Some(
                        600000,
                    ),
                    on_breach: [
                        "alert",
                    ],
                    conditional: false,
                },
                GraphStep {
                    name: "payment",
                    after: [
                        "stock",
                    ],
                    awaits: [
                        "Charged",
                    ],
                    within: Some(
                        900000,
                    ),
                    on_breach: [
                        "retry",
                    ],
                    conditional: false,
                },
                GraphStep {
                    name: "shipping",
                    after: [
                        "payment",
                    ],
                    awaits: [
                        "Shipped",
                    ],
                    within: Some(
                        3600000,
                    ),
                    on_breach: [
                        "alert",
                    ],
                    conditional: false,
                },
            ],
            fail: [
                "Cancelled",
            ],
            deadline: Some(
                14400000,
            ),
            stuck_after: None,
            on_deadline: [
                "alert",
            ],
            on_stuck: [
                "alert",
            ],
            events: [
                (
                    "Placed",
                    "orders",
                ),
                (
                    "Cancelled",
                    "orders",
                ),
                (
                    "Reserved",
                    "stock",
                ),
                (
                    "PayRequested",
                    "pay",
                ),
                (
                    "Charged",
                    "pay",
                ),
                (
                    "Shipped",
                    "ship",
                ),
                (
                    "Noted",
                    "notes",
                ),
            ],
            actions: [
                (
                    "retry",
                    Some(
                        2,
                    ),
                ),
            ],
        }
    "#]]
    .assert_debug_eq(&engine().flow_graph(0).unwrap());
}

#[test]
fn instances_are_filtered_and_paged_without_gaps_or_repeats() {
    let engine = engine();
    let keys = |filter: &InstanceFilter| {
        let page = engine.list_instances(0, filter);
        (
            page.instances
                .iter()
                .map(|instance| instance.key.clone())
                .collect::<Vec<_>>(),
            page.next_cursor,
            page.total,
        )
    };
    let all = InstanceFilter {
        limit: 2,
        ..InstanceFilter::default()
    };
    let (first, cursor, total) = keys(&all);
    assert_eq!(
        (first.as_slice(), total),
        (&["o-5".to_string(), "o-4".to_string()][..], 5)
    );
    let (second, cursor, _) = keys(&InstanceFilter {
        cursor: cursor.clone(),
        ..all.clone()
    });
    assert_eq!(second, ["o-3", "o-2"]);
    let (third, cursor, _) = keys(&InstanceFilter {
        cursor,
        ..all.clone()
    });
    assert_eq!((third.as_slice(), cursor), (&["o-1".to_string()][..], None));
    let by = |state: InstanceState, step: Option<&str>| {
        keys(&InstanceFilter {
            state: Some(state),
            step: step.map(str::to_string),
            limit: 100,
            cursor: None,
        })
        .0
    };
    assert_eq!(by(InstanceState::Open, None), ["o-5", "o-2", "o-1"]);
    assert_eq!(by(InstanceState::Completed, None), ["o-3"]);
    assert_eq!(by(InstanceState::Failed, None), ["o-4"]);
    assert_eq!(by(InstanceState::Breached, None), ["o-5", "o-2", "o-1"]);
    assert_eq!(by(InstanceState::Open, Some("payment")), ["o-2"]);
    assert!(by(InstanceState::Open, Some("no-such-step")).is_empty());
}

#[test]
fn one_instance_shows_its_steps_and_windows() {
    expect![[r#"
        InstanceDetail {
            flow: "t",
            summary: InstanceSummary {
                key: "o-3",
                status: Completed,
                started: 120000,
                ended: Some(
                    300000,
                ),
                last_event: 300000,
                breached: false,
                stuck: false,
                waiting_in: [],
                breaches: 0,
            },
            steps: [
                StepDetail {
                    name: "stock",
                    status: Complete,
                    opened: Some(
                        120000,
                    ),
                    completed: Some(
                        120000,
                    ),
                    windows: [
                        Window {
                            opened: 120000,
                            due: 720000,
                            completed: Some(
                                120000,
                            ),
                            breached: false,
                        },
                    ],
                    breaches: 0,
                    unresolved: false,
                },
                StepDetail {
                    name: "payment",
                    status: Complete,
                    opened: Some(
                        120000,
                    ),
                    completed: Some(
                        240000,
                    ),
                    windows: [
                        Window {
                            opened: 120000,
                            due: 1020000,
                            completed: Some(
                                240000,
                            ),
                            breached: false,
                        },
                    ],
                    breaches: 0,
                    unresolved: false,
                },
                StepDetail {
                    name: "shipping",
                    status: Complete,
                    opened: Some(
                        240000,
                    ),
                    completed: Some(
                        300000,
                    ),
                    windows: [
                        Window {
                            opened: 240000,
                            due: 3840000,
                            completed: Some(
                                300000,
                            ),
                            breached: false,
                        },
                    ],
                    breaches: 0,
                    unresolved: false,
                },
            ],
            deadline: Some(
                14520000,
            ),
            deadline_breaches: 0,
            stuck_due: None,
            stuck_breaches: 0,
            actions: [],
            aliases: [
                (
                    "paymentId",
                    "p-3",
                ),
            ],
            received: 5,
            history: [],
            history_dropped: 0,
        }
    "#]]
    .assert_debug_eq(&engine().instance_detail(0, "o-3").unwrap());
    let engine = engine();
    let late = engine.instance_detail(0, "o-1").unwrap();
    expect![[r#"
        StepDetail {
            name: "stock",
            status: Open,
            opened: Some(
                0,
            ),
            completed: None,
            windows: [
                Window {
                    opened: 0,
                    due: 600000,
                    completed: None,
                    breached: true,
                },
            ],
            breaches: 1,
            unresolved: true,
        }
    "#]]
    .assert_debug_eq(&late.steps[0]);
    assert!(engine.instance_detail(0, "o-404").is_none());
}

#[test]
fn held_orphans_are_listed() {
    expect![[r#"
        [
            OrphanView {
                flow: "t",
                alias: None,
                value: "o-9",
                held: 1,
                events: [
                    "Reserved",
                ],
                first: 1740000,
                expires: 2040000,
            },
        ]
    "#]]
    .assert_debug_eq(&engine().orphans());
}
