//! Instance lifecycle rules: steps opening and completing, SLA deadlines (exactly at, just
//! past, ties), retries, conditions, deadline actions, the action horizon, extreme times.

use super::*;
use expect_test::expect;

#[test]
fn happy_path_completes_every_step() {
    check(
        ORDER,
        r#"
        0 orders {"type":"Placed","id":"o-1","eid":"e1","total":70}
        2m stock {"type":"Reserved","id":"o-1","eid":"e2"}
        3m pay {"type":"PayRequested","id":"o-1","pid":"p-1","eid":"e3"}
        4m pay {"type":"Charged","pid":"p-1","eid":"e4"}
        30m ship {"type":"Shipped","id":"o-1","eid":"e5"}
        until 1d
        "#,
        expect![[r#"
            0s started o-1 event=Placed
            2m step_completed o-1 step=stock
            4m step_completed o-1 step=payment
            30m step_completed o-1 step=shipping
            30m completed o-1
        "#]],
    );
}

#[test]
fn completion_exactly_at_the_deadline_is_on_time() {
    check(
        ORDER,
        r#"
        0 orders {"type":"Placed","id":"o-1","eid":"e1"}
        10m stock {"type":"Reserved","id":"o-1","eid":"e2"}
        # one millisecond past the stock deadline: nothing is due for o-1 any more
        10m1ms notes {"id":"o-1"}
        "#,
        expect![[r#"
            0s started o-1 event=Placed
            10m step_completed o-1 step=stock
        "#]],
    );
}

#[test]
fn a_breach_fires_only_when_the_clock_passes_the_deadline() {
    check(
        ORDER,
        r#"
        0 orders {"type":"Placed","id":"o-1","eid":"e1"}
        # the clock reaches the deadline but does not pass it
        10m noise {}
        10m1ms noise {}
        "#,
        expect![[r#"
            0s started o-1 event=Placed
            10m breached o-1 step=stock reason=sla attempt=1 actions=["alert"] ALERT
        "#]],
    );
}

#[test]
fn timers_due_at_the_same_instant_fire_in_the_order_they_were_set() {
    check(
        ORDER,
        r#"
        0 orders {"type":"Placed","id":"o-2","eid":"e1"}
        0 orders {"type":"Placed","id":"o-1","eid":"e2"}
        until 5h
        "#,
        expect![[r#"
            0s started o-2 event=Placed
            0s started o-1 event=Placed
            10m breached o-2 step=stock reason=sla attempt=1 actions=["alert"] ALERT
            10m breached o-1 step=stock reason=sla attempt=1 actions=["alert"] ALERT
            4h breached o-2 reason=deadline attempt=1 actions=["alert"] ALERT
            4h breached o-1 reason=deadline attempt=1 actions=["alert"] ALERT
        "#]],
    );
}

#[test]
fn a_retry_chain_reopens_the_window_until_its_attempts_are_spent() {
    check(
        ORDER,
        r#"
        0 orders {"type":"Placed","id":"o-1","eid":"e1","total":1500.5}
        1m stock {"type":"Reserved","id":"o-1","eid":"e2"}
        2m pay {"type":"PayRequested","id":"o-1","pid":"p-1","eid":"e3"}
        # payment opened at 1m: deadline 16m, retries re-open at 31m and 46m
        50m pay {"type":"Charged","pid":"p-1","eid":"e4"}
        "#,
        expect![[r#"
            0s started o-1 event=Placed
            1m step_completed o-1 step=stock
            16m breached o-1 step=payment reason=sla attempt=1 actions=["retry"]
            16m action o-1 step=payment attempt=1 action=retry
              publish pay-commands key=o-1 {"cmd":"retry","n":1,"note":"try 1 of payment","order":"o-1","total":1500.5}
            31m breached o-1 step=payment reason=sla attempt=2 actions=["retry"]
            31m action o-1 step=payment attempt=2 action=retry
              publish pay-commands key=o-1 {"cmd":"retry","n":2,"note":"try 2 of payment","order":"o-1","total":1500.5}
            46m breached o-1 step=payment reason=sla attempt=3 actions=["alert"] ALERT
            50m step_completed o-1 step=payment late
            50m resolved o-1 step=payment reason=sla attempt=3 ALERT
        "#]],
    );
}

#[test]
fn a_step_opened_far_in_the_past_fires_right_after_the_record() {
    let flow = r#"
flow: t
events:
  Placed: { topic: orders, match: { type: Placed }, key: id }
  Reserved: { topic: stock, match: { type: Reserved }, key: id, time: at }
  Charged: { topic: pay, match: { type: Charged }, key: id }
start: Placed
steps:
  stock: { await: Reserved }
  payment: { after: [stock], await: Charged, within: 15m }
"#;
    check(
        flow,
        r#"
        0 orders {"type":"Placed","id":"o-1"}
        2h orders {"type":"Placed","id":"o-2"}
        # event time 5m, read when the clock is at 2h: payment opens at 5m, due at 20m
        2h stock {"type":"Reserved","id":"o-1","at":300000}
        "#,
        expect![[r#"
            0s started o-1 event=Placed
            2h started o-2 event=Placed
            5m step_completed o-1 step=stock
            20m breached o-1 step=payment reason=sla attempt=1 actions=["alert"] ALERT
        "#]],
    );
}

const CONDITIONAL: &str = r#"
flow: t
events:
  Placed: { topic: orders, match: { type: Placed }, key: id }
  Cleared: { topic: risk, match: { type: Cleared }, key: id }
  Shipped: { topic: ship, match: { type: Shipped }, key: id }
start: Placed
steps:
  fraud: { await: Cleared, within: 20m, when: "events.Placed.total > 1000" }
  shipping: { after: [fraud], await: Shipped, within: 1h }
"#;

#[test]
fn a_false_condition_skips_the_step_at_its_open_time() {
    check(
        CONDITIONAL,
        r#"
        0 orders {"type":"Placed","id":"small","total":999}
        1m orders {"type":"Placed","id":"big","total":1000.5}
        2m orders {"type":"Placed","id":"broken","total":"a lot"}
        until 30m
        "#,
        expect![[r#"
            0s started small event=Placed
            0s step_completed small step=fraud skipped
            1m started big event=Placed
            2m started broken event=Placed
            2m deviation broken step=fraud reason=condition_error
            2m step_completed broken step=fraud skipped
            21m breached big step=fraud reason=sla attempt=1 actions=["alert"] ALERT
        "#]],
    );
}

#[test]
fn deadline_actions_run_once_and_resolve_when_the_instance_ends() {
    let flow = r#"
flow: t
events:
  Started: { topic: a, match: { type: Started }, key: id }
  Done: { topic: a, match: { type: Done }, key: id }
start: Started
steps:
  work: { await: Done }
deadline: 1h
on_deadline: [escalate]
actions:
  escalate:
    publish: { topic: escalations, value: { id: "${key}", step: "${step}", flow: "${flow}" } }
"#;
    check(
        flow,
        r#"
        0 a {"type":"Started","id":"w-1"}
        3h a {"type":"Done","id":"w-1"}
        "#,
        expect![[r#"
            0s started w-1 event=Started
            1h breached w-1 reason=deadline attempt=1 actions=["escalate"]
            1h action w-1 attempt=1 action=escalate
              publish escalations key=- {"flow":"t","id":"w-1","step":null}
            3h step_completed w-1 step=work
            3h completed w-1
            3h resolved w-1 reason=deadline attempt=1
        "#]],
    );
}

#[test]
fn the_action_horizon_signals_old_breaches_without_running_actions() {
    check(
        ORDER,
        r#"
        horizon 1h
        0 orders {"type":"Placed","id":"o-1","eid":"e1"}
        2h orders {"type":"Placed","id":"o-2","eid":"e2"}
        2h30m noise {}
        "#,
        expect![[r#"
            0s started o-1 event=Placed
            10m breached o-1 step=stock reason=sla attempt=1 actions=[]
            2h started o-2 event=Placed
            2h10m breached o-2 step=stock reason=sla attempt=1 actions=["alert"] ALERT
        "#]],
    );
}

#[test]
fn extreme_event_times_saturate_instead_of_overflowing() {
    let flow = r#"
flow: t
events:
  Placed: { topic: orders, match: { type: Placed }, key: id, time: at }
  Done: { topic: orders, match: { type: Done }, key: id, time: at }
start: Placed
steps:
  done: { await: Done, within: 1h }
deadline: 2h
stuck_after: 30m
"#;
    let transcript = run(
        &[flow],
        EngineConfig::default(),
        r#"
        0 orders {"type":"Placed","id":"late","at":9223372036854775000}
        0 orders {"type":"Placed","id":"early","at":-9223372036854775000}
        0 orders {"type":"Done","id":"early","at":9223372036854775807}
        until 1h
        "#,
    );
    let kinds: Vec<&str> = transcript
        .lines()
        .map(|line| line.split(' ').nth(1).unwrap_or(""))
        .collect();
    assert_eq!(
        kinds.iter().filter(|kind| **kind == "started").count(),
        2,
        "{transcript}"
    );
    assert!(kinds.contains(&"completed"), "{transcript}");
}

#[test]
fn renumbering_the_timer_order_changes_nothing() {
    // Ties at 10m and 4h between two instances, retries re-opening windows, orphans: with the
    // setting order renumbered after nearly every input, the transcript is the same.
    let script = r#"
        0 orders {"type":"Placed","id":"o-2","eid":"e1","total":5}
        0 orders {"type":"Placed","id":"o-1","eid":"e2"}
        1m stock {"type":"Reserved","id":"o-2","eid":"e3"}
        2m pay {"type":"Charged","pid":"p-2","eid":"e4"}
        3m stock {"type":"Reserved","id":"o-9","eid":"e5"}
        40m pay {"type":"PayRequested","id":"o-2","pid":"p-2","eid":"e6"}
        41m pay {"type":"Charged","pid":"p-3","eid":"e7"}
        until 5h
        "#;
    let normal = run(&[ORDER], EngineConfig::default(), script);
    for threshold in [1, 2, 5] {
        assert_eq!(
            run_with(&[ORDER], EngineConfig::default(), script, Some(threshold)),
            normal
        );
    }
    assert!(normal.contains("breached o-2 step=payment"), "{normal}");
    assert!(normal.contains("orphaned o-9"), "{normal}");
}
