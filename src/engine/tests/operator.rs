//! Operator commands: a retry runs the step's declared actions now and counts their attempts,
//! a resolve ends a breach once, a cancel ends the instance as failed; commands that do not
//! apply are refused and change nothing; the same commands give the same signal ids.

use super::*;
use expect_test::expect;

const PAYMENT_LATE: &str = r#"
    0 orders {"type":"Placed","id":"o-1","eid":"e1","total":70}
    1m stock {"type":"Reserved","id":"o-1","eid":"e2"}
    2m pay {"type":"PayRequested","id":"o-1","pid":"p-1","eid":"e3"}
"#;

#[test]
fn a_retry_runs_the_declared_action_and_counts_its_attempts() {
    check(
        ORDER,
        &format!(
            "{PAYMENT_LATE}
            retry 5m o-1 payment
            until 17m
            retry 20m o-1 payment
            retry 21m o-1 payment
            retry 22m o-1 stock
            "
        ),
        expect![[r#"
            0s started o-1 event=Placed
            1m step_completed o-1 step=stock
            5m action o-1 step=payment attempt=1 event=operator action=retry
              publish pay-commands key=o-1 {"cmd":"retry","n":1,"note":"try 1 of payment","order":"o-1","total":70}
            16m breached o-1 step=payment reason=sla attempt=1 actions=["retry"]
            16m action o-1 step=payment attempt=2 action=retry
              publish pay-commands key=o-1 {"cmd":"retry","n":2,"note":"try 2 of payment","order":"o-1","total":70}
              refused: step payment has no declared on_breach action left to run (none declared, or its retries are spent)
              refused: step payment has no declared on_breach action left to run (none declared, or its retries are spent)
              refused: step stock is not open, so there is nothing to retry
        "#]],
    );
}

#[test]
fn a_resolve_ends_the_breach_once() {
    check(
        ORDER,
        &format!(
            "{PAYMENT_LATE}
            resolve 3m o-1 payment
            until 17m
            resolve 18m o-1 payment
            resolve 19m o-1 payment
            40m pay {{\"type\":\"Charged\",\"pid\":\"p-1\",\"eid\":\"e4\"}}
            until 4h1m
            resolve 4h2m o-1
            resolve 4h3m o-1
            "
        ),
        expect![[r#"
            0s started o-1 event=Placed
            1m step_completed o-1 step=stock
              refused: step payment has no unresolved breach (one that ran actions) to resolve
            16m breached o-1 step=payment reason=sla attempt=1 actions=["retry"]
            16m action o-1 step=payment attempt=1 action=retry
              publish pay-commands key=o-1 {"cmd":"retry","n":1,"note":"try 1 of payment","order":"o-1","total":70}
            18m resolved o-1 step=payment reason=sla attempt=1 event=operator
              refused: step payment has no unresolved breach (one that ran actions) to resolve
            31m breached o-1 step=payment reason=sla attempt=2 actions=["retry"]
            31m action o-1 step=payment attempt=2 action=retry
              publish pay-commands key=o-1 {"cmd":"retry","n":2,"note":"try 2 of payment","order":"o-1","total":70}
            40m step_completed o-1 step=payment late
            40m resolved o-1 step=payment reason=sla attempt=2
            1h40m breached o-1 step=shipping reason=sla attempt=1 actions=["alert"] ALERT
            4h breached o-1 reason=deadline attempt=1 actions=["alert"] ALERT
            4h2m resolved o-1 reason=deadline attempt=1 event=operator ALERT
              refused: the instance has no deadline or stuck breach to resolve; name a step
        "#]],
    );
}

#[test]
fn a_cancel_ends_the_instance_as_failed_by_the_operator() {
    check(
        ORDER,
        &format!(
            "{PAYMENT_LATE}
            until 5h
            cancel 5h1m o-1
            5h2m pay {{\"type\":\"Charged\",\"pid\":\"p-1\",\"eid\":\"e4\"}}
            cancel 5h3m o-1
            cancel 5h3m o-9
            resolve 5h4m o-1
            "
        ),
        expect![[r#"
            0s started o-1 event=Placed
            1m step_completed o-1 step=stock
            16m breached o-1 step=payment reason=sla attempt=1 actions=["retry"]
            16m action o-1 step=payment attempt=1 action=retry
              publish pay-commands key=o-1 {"cmd":"retry","n":1,"note":"try 1 of payment","order":"o-1","total":70}
            31m breached o-1 step=payment reason=sla attempt=2 actions=["retry"]
            31m action o-1 step=payment attempt=2 action=retry
              publish pay-commands key=o-1 {"cmd":"retry","n":2,"note":"try 2 of payment","order":"o-1","total":70}
            46m breached o-1 step=payment reason=sla attempt=3 actions=["alert"] ALERT
            4h breached o-1 reason=deadline attempt=1 actions=["alert"] ALERT
            5h1m failed o-1 reason=operator event=operator
            5h1m resolved o-1 reason=deadline attempt=1 ALERT
            5h2m deviation o-1 reason=late_event event=Charged
              refused: the instance has already ended (failed)
              refused: flow t has no instance with key "o-9"
              refused: the instance has already ended (failed)
        "#]],
    );
}

#[test]
fn commands_are_recorded_in_the_history_and_survive_snapshots() {
    let config = EngineConfig {
        history_limit: 10,
        ..EngineConfig::default()
    };
    let script = format!("{PAYMENT_LATE}\nretry 5m o-1 payment\ncancel 6m o-1\n");
    let mut engine = Engine::new(compile(&[ORDER]), config.clone());
    let mut transcript = String::new();
    for (number, line) in script.lines().enumerate() {
        feed(&mut engine, number, line, &mut transcript);
    }
    let saved = serde_json::to_string(&engine.snapshot()).unwrap();
    let restored = Engine::restore(
        compile(&[ORDER]),
        config,
        serde_json::from_str(&saved).unwrap(),
    )
    .unwrap();
    let detail = restored.instance_detail(0, "o-1").expect("instance kept");
    let rendered: Vec<String> = detail
        .history
        .iter()
        .map(|entry| match entry {
            crate::engine::query::HistoryView::Event {
                topic,
                offset,
                event,
                payload,
                ..
            } => format!("{topic}@{offset} {event} {payload}"),
            crate::engine::query::HistoryView::Operator {
                command,
                request_id,
                step,
                note,
                outcome,
                ..
            } => format!("{command} {request_id} {step:?} {note:?}: {outcome}"),
        })
        .collect();
    expect![[r#"
        [
            "orders@1 Placed {\"eid\":\"e1\",\"id\":\"o-1\",\"total\":70,\"type\":\"Placed\"}",
            "stock@2 Reserved {\"eid\":\"e2\",\"id\":\"o-1\",\"type\":\"Reserved\"}",
            "pay@3 PayRequested {\"eid\":\"e3\",\"id\":\"o-1\",\"pid\":\"p-1\",\"type\":\"PayRequested\"}",
            "retry r5 Some(\"payment\") Some(\"by test\"): ran retry",
            "cancel r6 None Some(\"by test\"): cancelled: ended as failed",
        ]
    "#]]
    .assert_debug_eq(&rendered);
}
