//! Data-driven engine tests, one per rule of SPEC 1.3 to 1.6. A script lists records at
//! virtual times (offsets from the epoch, `5m`, `1h30m`) and clock moves; the expectation is
//! the transcript of outputs, one line each, with times as offsets. Each test can fail only
//! if its rule breaks, and runs in microseconds because time is virtual.
//!
//! Script lines: `OFFSET TOPIC [key=K] [h:NAME=VALUE]... JSON` feeds a record whose timestamp
//! is OFFSET; `until OFFSET` advances the clock; `horizon OFFSET` sets the action horizon;
//! `#` starts a comment. Operator commands: `retry OFFSET KEY STEP`, `resolve OFFSET KEY
//! [STEP]`, `cancel OFFSET KEY` (flow `t`, request id `rLINE`); a refused command renders as
//! `  refused: WHY`.

use super::*;
use crate::flow::parse_flow_file;
use crate::json::Json;
use crate::time::{format_duration, parse_duration};
use expect_test::Expect;

mod correlation;
mod lateness;
mod lifecycle;
mod operator;
pub(super) mod parts;
mod query;
mod snapshot;

#[track_caller]
fn check(flow: &str, script: &str, expect: Expect) {
    check_with(flow, EngineConfig::default(), script, expect)
}

#[track_caller]
fn check_with(flow: &str, config: EngineConfig, script: &str, expect: Expect) {
    expect.assert_eq(&run(&[flow], config, script));
}

pub(super) fn offset(text: &str) -> Millis {
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
    run_with(flows, config, script, None)
}

/// Like [`run`], renumbering the timers' setting order whenever it passes `renumber_above`.
pub(super) fn run_with(
    flows: &[&str],
    config: EngineConfig,
    script: &str,
    renumber_above: Option<u32>,
) -> String {
    let mut engine = Engine::new(compile(flows), config);
    if let Some(threshold) = renumber_above {
        engine.timers.set_renumber_above(threshold);
    }
    let mut transcript = String::new();
    for (line_number, line) in script.lines().enumerate() {
        feed(&mut engine, line_number, line, &mut transcript);
    }
    transcript
}

/// Parses and compiles flow texts.
pub(super) fn compile(flows: &[&str]) -> Vec<Flow> {
    flows
        .iter()
        .enumerate()
        .map(|(index, text)| {
            let def = parse_flow_file(std::path::Path::new(&format!("test{index}.yaml")), text)
                .unwrap_or_else(|errors| panic!("flow does not parse: {errors:?}"));
            Flow::new(def)
        })
        .collect()
}

/// Feeds one script line to the engine and appends the outputs it caused to the transcript.
pub(super) fn feed(engine: &mut Engine, line_number: usize, line: &str, transcript: &mut String) {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return;
    }
    let mut outputs = Vec::new();
    let (first, rest) = line.split_once(' ').unwrap_or((line, ""));
    match first {
        "until" => engine.handle(Input::ClockAdvanced(offset(rest.trim())), &mut outputs),
        "horizon" => engine.handle(Input::ActionHorizonSet(offset(rest.trim())), &mut outputs),
        "retry" | "resolve" | "cancel" => {
            let words: Vec<&str> = rest.split_whitespace().collect();
            let request = OperatorRequest {
                flow: "t".to_string(),
                key: words[1].to_string(),
                step: words.get(2).map(|step| step.to_string()),
                note: Some("by test".to_string()),
                request_id: format!("r{line_number}"),
                time: offset(words[0]),
            };
            let (command, input) = match first {
                "retry" => (OperatorCommand::Retry, Input::RetryRequested(&request)),
                "resolve" => (
                    OperatorCommand::Resolve,
                    Input::BreachResolvedByOperator(&request),
                ),
                _ => (OperatorCommand::Cancel, Input::CancelRequested(&request)),
            };
            if let Some(refusal) = engine.operator_refusal(command, &request) {
                transcript.push_str(&format!("  refused: {refusal}\n"));
            }
            engine.handle(input, &mut outputs);
        }
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
                value: Json::parse(rest).expect("JSON value"),
            };
            engine.handle(Input::RecordReceived(&record), &mut outputs);
        }
    }
    for output in outputs.drain(..) {
        transcript.push_str(&render(&output));
        transcript.push('\n');
    }
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
