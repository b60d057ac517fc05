//! Correlation rules: aliases, events before their start, out-of-order awaits, duplicate vs
//! repeated vs late events, CloudEvents ids, invalid records, several flows per record.

use super::*;
use expect_test::expect;

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
fn a_record_delivered_three_times_gives_deviations_with_distinct_ids() {
    let flow = parse_flow_file(std::path::Path::new("t.yaml"), ORDER).unwrap();
    let mut engine = Engine::new(vec![Flow::new(flow)], EngineConfig::default());
    let record = |offset: i64, value: &str| Record {
        topic: "orders".into(),
        partition: 0,
        offset,
        key: None,
        timestamp: 0,
        headers: Vec::new(),
        value: Json::parse(value).unwrap().into_owned(),
    };
    let placed = record(7, r#"{"type":"Placed","id":"o-1","eid":"e1"}"#);
    let mut outputs = Vec::new();
    for _ in 0..3 {
        engine.handle(Input::RecordReceived(&placed), &mut outputs);
    }
    let ids: Vec<String> = outputs
        .iter()
        .filter_map(|output| match output {
            Output::Emit(signal) if signal.kind == SignalKind::Deviation => {
                Some(signal.id.to_string())
            }
            _ => None,
        })
        .collect();
    assert_eq!(ids.len(), 2);
    assert_ne!(ids[0], ids[1]);
}

#[test]
fn a_record_from_the_future_is_applied_at_the_wall_clock_with_a_clock_skew_deviation() {
    let flow = parse_flow_file(std::path::Path::new("t.yaml"), ORDER).unwrap();
    let mut engine = Engine::new(vec![Flow::new(flow)], EngineConfig::default());
    let placed = Record {
        topic: "orders".into(),
        partition: 0,
        offset: 1,
        key: None,
        // A producer whose clock is a day ahead.
        timestamp: 86_400_000,
        headers: Vec::new(),
        value: Json::parse(r#"{"type":"Placed","id":"o-1","eid":"e1"}"#).unwrap(),
    };
    assert_eq!(engine.record_time(&placed), 86_400_000);
    let mut outputs = Vec::new();
    engine.handle(
        Input::SkewedRecordReceived {
            record: &placed,
            now: 60_000,
        },
        &mut outputs,
    );
    let signals: Vec<(SignalKind, Millis, Option<&str>)> = outputs
        .iter()
        .filter_map(|output| match output {
            Output::Emit(signal) => Some((
                signal.kind,
                signal.time,
                signal.data.reason.map(|reason| reason.as_str()),
            )),
            _ => None,
        })
        .collect();
    assert_eq!(
        signals,
        [
            (SignalKind::Started, 60_000, None),
            (SignalKind::Deviation, 60_000, Some("clock_skew"))
        ]
    );
    assert_eq!(engine.clock(), 60_000, "the clock stays at the wall clock");
}
