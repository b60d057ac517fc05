//! Data-driven engine tests, one per rule of SPEC 1.3 to 1.6. A script lists records at
//! virtual times (offsets from the epoch, `5m`, `1h30m`) and clock moves; the expectation is
//! the transcript of outputs, one line each, with times as offsets. Each test can fail only
//! if its rule breaks, and runs in microseconds because time is virtual.
//!
//! Script lines: `OFFSET TOPIC [key=K] [h:NAME=VALUE]... JSON` feeds a record whose timestamp
//! is OFFSET; `until OFFSET` advances the clock; `horizon OFFSET` sets the action horizon;
//! `#` starts a comment.

use super::*;
use crate::flow::parse_flow_file;
use crate::time::{format_duration, parse_duration};
use expect_test::{expect, Expect};

#[track_caller]
fn check(flow: &str, script: &str, expect: Expect) {
    check_with(flow, EngineConfig::default(), script, expect)
}

#[track_caller]
fn check_with(flow: &str, config: EngineConfig, script: &str, expect: Expect) {
    expect.assert_eq(&run(&[flow], config, script));
}

fn offset(text: &str) -> Millis {
    if text == "0" {
        return 0;
    }
    parse_duration(text).unwrap_or_else(|error| panic!("bad offset {text}: {error}"))
}

fn render_time(millis: Millis) -> String {
    if millis < 0 {
        format!("-{}", format_duration(-millis))
    } else {
        format_duration(millis)
    }
}

pub(super) fn run(flows: &[&str], config: EngineConfig, script: &str) -> String {
    let flows = flows
        .iter()
        .enumerate()
        .map(|(index, text)| {
            let def = parse_flow_file(std::path::Path::new(&format!("test{index}.yaml")), text)
                .unwrap_or_else(|errors| panic!("flow does not parse: {errors:?}"));
            Flow::new(def)
        })
        .collect();
    let mut engine = Engine::new(flows, config);
    let mut outputs = Vec::new();
    let mut transcript = String::new();
    for (line_number, line) in script.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (first, rest) = line.split_once(' ').unwrap_or((line, ""));
        match first {
            "until" => engine.handle(Input::ClockAdvanced(offset(rest.trim())), &mut outputs),
            "horizon" => engine.handle(Input::ActionHorizonSet(offset(rest.trim())), &mut outputs),
            _ => {
                let (topic, mut rest) = rest.split_once(' ').expect("TIME TOPIC JSON");
                let mut key = None;
                let mut headers = Vec::new();
                while !rest.starts_with('{') {
                    let (word, remainder) = rest.split_once(' ').expect("JSON value last");
                    if let Some(value) = word.strip_prefix("key=") {
                        key = Some(value.to_string());
                    } else if let Some(header) = word.strip_prefix("h:") {
                        let (name, value) = header.split_once('=').expect("h:NAME=VALUE");
                        headers.push((name.to_string(), value.to_string()));
                    } else {
                        panic!("unknown word {word:?}");
                    }
                    rest = remainder;
                }
                let record = Record {
                    topic: topic.to_string(),
                    partition: 0,
                    offset: line_number as i64,
                    key,
                    timestamp: offset(first),
                    headers,
                    value: serde_json::from_str(rest).expect("JSON value"),
                };
                engine.handle(Input::RecordReceived(&record), &mut outputs);
            }
        }
        for output in outputs.drain(..) {
            transcript.push_str(&render(&output));
            transcript.push('\n');
        }
    }
    transcript
}

fn render(output: &Output) -> String {
    match output {
        Output::Emit(signal) => {
            let data = &signal.data;
            let mut line = format!(
                "{} {} {}",
                render_time(signal.time),
                signal.kind.as_str(),
                signal.subject
            );
            if data.flow.as_ref() != "t" {
                line.push_str(&format!(" flow={}", data.flow));
            }
            if let Some(step) = &data.step {
                line.push_str(&format!(" step={step}"));
            }
            if let Some(reason) = data.reason {
                line.push_str(&format!(" reason={}", reason.as_str()));
            }
            if let Some(attempt) = data.attempt {
                line.push_str(&format!(" attempt={attempt}"));
            }
            if signal.kind == SignalKind::Breached
                || !data.actions.is_empty() && signal.kind != SignalKind::Action
            {
                line.push_str(&format!(" actions={:?}", data.actions));
            }
            for (flag, set) in [
                ("late", data.late),
                ("skipped", data.skipped),
                ("after_the_fact", data.after_the_fact),
            ] {
                if set == Some(true) {
                    line.push_str(&format!(" {flag}"));
                }
            }
            if let Some(event) = &data.event {
                line.push_str(&format!(" event={event}"));
            }
            if let Some(alias) = &data.alias {
                line.push_str(&format!(" alias={alias}"));
            }
            if let Some(held) = data.held {
                line.push_str(&format!(" held={held}"));
            }
            if let Some(action) = &data.action {
                line.push_str(&format!(" action={action}"));
            }
            if signal.alert {
                line.push_str(" ALERT");
            }
            line
        }
        Output::Publish(record) => format!(
            "  publish {} key={} {}",
            record.topic,
            record.key.as_deref().unwrap_or("-"),
            record.value
        ),
        Output::DeadLetter(rejection) => format!(
            "  dead-letter {}/{}/{} {} {}: {}",
            rejection.topic,
            rejection.partition,
            rejection.offset,
            rejection.event,
            rejection.reason,
            rejection.detail
        ),
    }
}

/// Order fulfilment: a sequence with a retried payment behind an alias, a deadline and a fail.
pub(super) const ORDER: &str = r#"
flow: t
events:
  Placed: { topic: orders, match: { type: Placed }, key: id, id: eid }
  Cancelled: { topic: orders, match: { type: Cancelled }, key: id, id: eid }
  Reserved: { topic: stock, match: { type: Reserved }, key: id, id: eid }
  PayRequested: { topic: pay, match: { type: PayRequested }, key: id, links: { paymentId: pid }, id: eid }
  Charged: { topic: pay, match: { type: Charged }, key: pid, alias: paymentId, id: eid }
  Shipped: { topic: ship, match: { type: Shipped }, key: id, id: eid }
  Noted: { topic: notes, match: {}, key: id }
start: Placed
steps:
  stock: { await: Reserved, within: 10m }
  payment: { after: [stock], await: Charged, within: 15m, on_breach: [retry] }
  shipping: { after: [payment], await: Shipped, within: 1h }
fail: [Cancelled]
deadline: 4h
actions:
  retry:
    publish:
      topic: pay-commands
      key: "${key}"
      value: { cmd: retry, order: "${key}", total: "${events.Placed.total}", n: "${attempt}", note: "try ${attempt} of ${step}" }
    attempts: 2
"#;

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

#[test]
fn events_through_an_unknown_alias_wait_for_their_link() {
    check(
        ORDER,
        r#"
        0 orders {"type":"Placed","id":"o-1","eid":"e1"}
        1m pay {"type":"Charged","pid":"p-1","eid":"e4"}
        2m stock {"type":"Reserved","id":"o-1","eid":"e2"}
        3m pay {"type":"PayRequested","id":"o-1","pid":"p-1","eid":"e3"}
        # never linked: orphaned under the alias value once the clock passes 4m + 5m
        4m pay {"type":"Charged","pid":"p-9","eid":"e9"}
        9m1ms noise {}
        "#,
        expect![[r#"
            0s started o-1 event=Placed
            2m step_completed o-1 step=stock
            2m step_completed o-1 step=payment
            9m orphaned p-9 event=Charged alias=paymentId held=1
        "#]],
    );
}

#[test]
fn an_await_before_its_step_opens_is_out_of_order_and_completes_it_on_opening() {
    check(
        ORDER,
        r#"
        0 orders {"type":"Placed","id":"o-1","eid":"e1"}
        1m pay {"type":"PayRequested","id":"o-1","pid":"p-1","eid":"e3"}
        2m pay {"type":"Charged","pid":"p-1","eid":"e4"}
        5m stock {"type":"Reserved","id":"o-1","eid":"e2"}
        "#,
        expect![[r#"
            0s started o-1 event=Placed
            2m deviation o-1 step=payment reason=out_of_order event=Charged
            5m step_completed o-1 step=stock
            5m step_completed o-1 step=payment
        "#]],
    );
}

#[test]
fn events_before_their_start_are_held_then_applied_or_orphaned() {
    check(
        ORDER,
        r#"
        0 stock {"type":"Reserved","id":"o-1","eid":"e2"}
        1m orders {"type":"Placed","id":"o-1","eid":"e1"}
        2m stock {"type":"Reserved","id":"o-2","eid":"e5"}
        3m stock {"type":"Noted","id":"o-2"}
        3m notes {"id":"o-2"}
        # first held event of o-2 at 2m: orphaned when the clock passes 7m
        7m noise {}
        7m1ms noise {}
        # a later event for that key is held afresh
        8m notes {"id":"o-2"}
        13m1ms noise {}
        "#,
        expect![[r#"
            1m started o-1 event=Placed
            1m step_completed o-1 step=stock
            7m orphaned o-2 event=Reserved held=2
            13m orphaned o-2 event=Noted held=1
        "#]],
    );
}

#[test]
fn duplicate_repeated_and_late_events() {
    check(
        ORDER,
        r#"
        0 orders {"type":"Placed","id":"o-1","eid":"e1"}
        1m orders {"type":"Placed","id":"o-1","eid":"e1"}
        2m orders {"type":"Placed","id":"o-1","eid":"e1b"}
        3m stock {"type":"Reserved","id":"o-1","eid":"e2"}
        4m stock {"type":"Reserved","id":"o-1","eid":"e2"}
        5m stock {"type":"Reserved","id":"o-1","eid":"e2b"}
        6m orders {"type":"Cancelled","id":"o-1","eid":"e3"}
        7m stock {"type":"Reserved","id":"o-1","eid":"e2c"}
        8m stock {"type":"Reserved","id":"o-1","eid":"e2"}
        9m orders {"type":"Placed","id":"o-1","eid":"e1c"}
        "#,
        expect![[r#"
            0s started o-1 event=Placed
            1m deviation o-1 reason=duplicate event=Placed
            2m deviation o-1 reason=repeated event=Placed
            3m step_completed o-1 step=stock
            4m deviation o-1 reason=duplicate event=Reserved
            5m deviation o-1 step=stock reason=repeated event=Reserved
            6m failed o-1 event=Cancelled
            7m deviation o-1 reason=late_event event=Reserved
            8m deviation o-1 reason=duplicate event=Reserved
            9m deviation o-1 reason=repeated event=Placed
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

const STUCK: &str = r#"
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

const CLOUDEVENTS: &str = r#"
flow: t
events:
  Opened:
    topic: cases
    match: { $header.ce_type: case.opened }
    key: $key
  Closed:
    topic: cases
    match: { type: case.closed, specversion: "1.0" }
    key: subject
start: Opened
steps:
  closing: { await: Closed }
"#;

#[test]
fn cloudevents_ids_deduplicate_in_binary_and_structured_mode() {
    check(
        CLOUDEVENTS,
        r#"
        0 cases key=c-1 h:ce_type=case.opened h:ce_id=x1 {"note":"binary mode"}
        1m cases key=c-1 h:ce_type=case.opened h:ce_id=x1 {"note":"re-delivered"}
        2m cases {"specversion":"1.0","type":"case.closed","id":"x2","subject":"c-1"}
        3m cases {"specversion":"1.0","type":"case.closed","id":"x2","subject":"c-1"}
        "#,
        expect![[r#"
            0s started c-1 event=Opened
            1m deviation c-1 reason=duplicate event=Opened
            2m step_completed c-1 step=closing
            2m completed c-1
            3m deviation c-1 reason=duplicate event=Closed
        "#]],
    );
}

#[test]
fn unusable_matched_records_are_dead_lettered_and_the_rest_only_counted() {
    let flow = r#"
flow: t
events:
  Done: { topic: orders, match: { type: Done }, key: id }
  Placed: { topic: orders, match: { type: Placed }, key: id, time: at }
start: Placed
steps:
  done: { await: Done }
"#;
    check(
        flow,
        r#"
        0 orders {"type":"Placed"}
        0 orders {"type":"Placed","id":""}
        0 orders {"type":"Placed","id":{"nested":1}}
        0 orders {"type":"Placed","id":"o-1","at":"yesterday"}
        0 orders {"type":"Other","id":"o-1"}
        0 orders {"type":"Placed","id":42,"at":60000}
        "#,
        expect![[r#"
              dead-letter orders/0/1 Placed missing_key: record matched event Placed of flow t but has no usable key at id (a non-empty string or a number)
              dead-letter orders/0/2 Placed missing_key: record matched event Placed of flow t but has no usable key at id (a non-empty string or a number)
              dead-letter orders/0/3 Placed missing_key: record matched event Placed of flow t but has no usable key at id (a non-empty string or a number)
              dead-letter orders/0/4 Placed bad_time: record matched event Placed of flow t but its time at at is neither RFC 3339 nor epoch milliseconds
            1m started 42 event=Placed
        "#]],
    );
}

#[test]
fn one_record_can_be_an_event_of_several_flows_but_one_name_per_flow() {
    let first = r#"
flow: first
events:
  Placed: { topic: orders, match: { type: Placed }, key: id }
  Any: { topic: orders, match: {}, key: id }
start: Placed
steps:
  other: { await: Any }
"#;
    let second = r#"
flow: second
events:
  Placed: { topic: orders, match: { type: [Placed, Ordered] }, key: id }
  Shipped: { topic: ship, match: { type: Shipped }, key: id }
start: Placed
steps:
  shipping: { await: Shipped }
"#;
    let transcript = run(
        &[first, second],
        EngineConfig::default(),
        r#"
        0 orders {"type":"Placed","id":"o-1"}
        1m orders {"type":"Other","id":"o-1"}
        2m ship {"type":"Shipped","id":"o-1"}
        "#,
    );
    expect![[r#"
        0s started o-1 flow=first event=Placed
        0s started o-1 flow=second event=Placed
        1m step_completed o-1 flow=first step=other
        1m completed o-1 flow=first
        2m step_completed o-1 flow=second step=shipping
        2m completed o-1 flow=second
    "#]]
    .assert_eq(&transcript);
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
