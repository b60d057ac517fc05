//! Event time and lateness: out-of-order completions within the allowed lateness, breaches
//! proven after the fact, stuck detection and retention.

use super::*;
use expect_test::expect;

#[test]
fn allowed_lateness_keeps_an_out_of_order_completion_from_breaching() {
    let script = r#"
        0 orders {"type":"Placed","id":"o-1","eid":"e1"}
        12m noise {}
        9m stock {"type":"Reserved","id":"o-1","eid":"e2"}
        # payment opened at 9m is due at 24m; the clock (30m - 5m) passes it
        30m noise {}
        "#;
    let lateness = EngineConfig {
        allowed_lateness: 5 * 60_000,
        ..EngineConfig::default()
    };
    check_with(
        ORDER,
        lateness,
        script,
        expect![[r#"
            0s started o-1 event=Placed
            9m step_completed o-1 step=stock
            24m breached o-1 step=payment reason=sla attempt=1 actions=["retry"]
            24m action o-1 step=payment attempt=1 action=retry
              publish pay-commands key=o-1 {"cmd":"retry","n":1,"note":"try 1 of payment","order":"o-1","total":null}
        "#]],
    );
    // Without lateness the clock passed 10m before the completion was read.
    check(
        ORDER,
        script,
        expect![[r#"
            0s started o-1 event=Placed
            10m breached o-1 step=stock reason=sla attempt=1 actions=["alert"] ALERT
            9m step_completed o-1 step=stock late
            9m resolved o-1 step=stock reason=sla attempt=1 ALERT
            24m breached o-1 step=payment reason=sla attempt=1 actions=["retry"]
            24m action o-1 step=payment attempt=1 action=retry
              publish pay-commands key=o-1 {"cmd":"retry","n":1,"note":"try 1 of payment","order":"o-1","total":null}
        "#]],
    );
}

#[test]
fn a_late_completion_signals_its_breach_first_without_actions() {
    let lateness = EngineConfig {
        allowed_lateness: 3_600_000,
        ..EngineConfig::default()
    };
    check_with(
        ORDER,
        lateness,
        r#"
        0 orders {"type":"Placed","id":"o-1","eid":"e1"}
        20m stock {"type":"Reserved","id":"o-1","eid":"e2"}
        "#,
        expect![[r#"
            0s started o-1 event=Placed
            10m breached o-1 step=stock reason=sla attempt=1 actions=[] after_the_fact
            20m step_completed o-1 step=stock late
        "#]],
    );
}

#[test]
fn ending_signals_passed_deadlines_first_in_deadline_order() {
    let lateness = EngineConfig {
        allowed_lateness: 10 * 3_600_000,
        ..EngineConfig::default()
    };
    check_with(
        ORDER,
        lateness,
        r#"
        0 orders {"type":"Placed","id":"o-1","eid":"e1"}
        5h orders {"type":"Cancelled","id":"o-1","eid":"e2"}
        6h orders {"type":"Placed","id":"o-2","eid":"e3"}
        8m stock {"type":"Reserved","id":"o-2","eid":"e4"}
        "#,
        expect![[r#"
            0s started o-1 event=Placed
            10m breached o-1 step=stock reason=sla attempt=1 actions=[] after_the_fact
            4h breached o-1 reason=deadline attempt=1 actions=[] after_the_fact
            5h failed o-1 event=Cancelled
            6h started o-2 event=Placed
            6h step_completed o-2 step=stock
        "#]],
    );
}

pub(super) const STUCK: &str = r#"
flow: t
events:
  Opened: { topic: tickets, match: { type: Opened }, key: $key }
  Touched: { topic: tickets, match: { type: Touched }, key: $key }
  Closed: { topic: tickets, match: { type: Closed }, key: $key }
start: Opened
steps:
  closing: { await: Closed }
stuck_after: 30m
on_stuck: [ping, alert]
actions:
  ping:
    publish: { topic: pings, key: "${key}", value: "${key} is quiet (${attempt})" }
    attempts: 1
    then: []
"#;

#[test]
fn stuck_instances_breach_resolve_and_rearm_with_each_event() {
    check(
        STUCK,
        r#"
        0 tickets key=t-1 {"type":"Opened"}
        10m tickets key=t-1 {"type":"Touched"}
        # quiet from 10m: stuck at 40m
        41m tickets key=t-2 {"type":"Opened"}
        50m tickets key=t-1 {"type":"Touched"}
        # quiet from 50m: stuck again at 1h20m; ping's single attempt is spent
        1h21m tickets key=t-2 {"type":"Touched"}
        1h30m tickets key=t-1 {"type":"Closed"}
        "#,
        expect![[r#"
            0s started t-1 event=Opened
            40m breached t-1 reason=stuck attempt=1 actions=["ping", "alert"] ALERT
            40m action t-1 attempt=1 action=ping
              publish pings key=t-1 "t-1 is quiet (1)"
            41m started t-2 event=Opened
            50m resolved t-1 reason=stuck attempt=1 ALERT
            1h11m breached t-2 reason=stuck attempt=1 actions=["ping", "alert"] ALERT
            1h11m action t-2 attempt=1 action=ping
              publish pings key=t-2 "t-2 is quiet (1)"
            1h20m breached t-1 reason=stuck attempt=2 actions=["alert"] ALERT
            1h21m resolved t-2 reason=stuck attempt=1 ALERT
            1h30m resolved t-1 reason=stuck attempt=2 ALERT
            1h30m step_completed t-1 step=closing
            1h30m completed t-1
        "#]],
    );
}

#[test]
fn a_stuck_period_proven_by_a_later_event_is_signalled_after_the_fact() {
    let lateness = EngineConfig {
        allowed_lateness: 3_600_000,
        ..EngineConfig::default()
    };
    check_with(
        STUCK,
        lateness,
        r#"
        0 tickets key=t-1 {"type":"Opened"}
        45m tickets key=t-1 {"type":"Closed"}
        "#,
        expect![[r#"
            0s started t-1 event=Opened
            30m breached t-1 reason=stuck attempt=1 actions=[] after_the_fact
            45m step_completed t-1 step=closing
            45m completed t-1
        "#]],
    );
}

#[test]
fn retention_forgets_ended_instances_so_the_key_can_start_again() {
    let retention = EngineConfig {
        retention: 3_600_000,
        ..EngineConfig::default()
    };
    check_with(
        STUCK,
        retention,
        r#"
        0 tickets key=t-1 {"type":"Opened"}
        1m tickets key=t-1 {"type":"Closed"}
        # within retention: late
        30m tickets key=t-1 {"type":"Opened"}
        # retention ends at 1h1m: then the key opens a new instance
        2h tickets key=t-1 {"type":"Opened"}
        until 3h
        "#,
        expect![[r#"
            0s started t-1 event=Opened
            1m step_completed t-1 step=closing
            1m completed t-1
            30m deviation t-1 reason=repeated event=Opened
            2h started t-1 event=Opened
            2h30m breached t-1 reason=stuck attempt=1 actions=["ping", "alert"] ALERT
            2h30m action t-1 attempt=1 action=ping
              publish pings key=t-1 "t-1 is quiet (1)"
        "#]],
    );
}

#[test]
fn an_event_older_than_the_latest_neither_resolves_nor_rearms_a_stuck_period() {
    // Stuck counts from the latest event time (10m): one stuck period at 40m, signalled once,
    // whatever old events arrive afterwards.
    check(
        STUCK,
        r#"
        0 tickets key=t-1 {"type":"Opened"}
        10m tickets key=t-1 {"type":"Touched"}
        45m tickets key=t-2 {"type":"Opened"}
        # read at 46m, event time 5m: older than the latest event of t-1
        5m tickets key=t-1 {"type":"Touched"}
        50m noise {}
        # a newer event ends the stuck period
        55m tickets key=t-1 {"type":"Touched"}
        "#,
        expect![[r#"
            0s started t-1 event=Opened
            40m breached t-1 reason=stuck attempt=1 actions=["ping", "alert"] ALERT
            40m action t-1 attempt=1 action=ping
              publish pings key=t-1 "t-1 is quiet (1)"
            45m started t-2 event=Opened
            55m resolved t-1 reason=stuck attempt=1 ALERT
        "#]],
    );
}
