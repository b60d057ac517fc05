//! Fuzzes the action-template compiler and renderer. The first line of the input is the
//! template (any JSON value, as an action's `publish` block or `key` would be after YAML), the
//! rest are the kept payloads of the instance's events (one JSON value per line, by event
//! index). Compiling must give a template or a list of problems, rendering must give JSON, and
//! a template without any `$` must render to itself.
#![no_main]
use flowwatch::flow::template::{Context, Template};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

/// Event names the template may refer to, as a flow declares them.
const EVENTS: [&str; 3] = ["OrderPlaced", "PaymentFailed", "a"];

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let mut lines = text.lines();
    let Some(Ok(template)) = lines.next().map(serde_json::from_str::<Value>) else { return };
    let payloads: Vec<Value> = lines.filter_map(|line| serde_json::from_str(line).ok()).collect();
    let event_index = |name: &str| EVENTS.iter().position(|event| *event == name);
    let Ok(compiled) = Template::compile(&template, &event_index) else { return };
    let lookup = |event: usize| payloads.get(event);
    for (step, attempt) in [(Some("payment"), Some(2)), (None, None)] {
        let context = Context {
            key: "ord-1",
            flow: "order-fulfillment",
            step,
            attempt,
            events: &lookup,
        };
        let rendered = compiled.render(&context);
        let _ = compiled.render_text(&context);
        if !text.lines().next().unwrap_or_default().contains('$') {
            assert_eq!(rendered, template, "a template without variables renders as written");
        }
    }
    compiled.for_each_event_path(&mut |event, _| assert!(event < EVENTS.len()));
});
