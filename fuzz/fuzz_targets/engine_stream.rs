//! Fuzzes the engine: each input line is a replay record, fed to an engine tracking the shipped
//! order-fulfillment flow; nothing may panic whatever the records are.
#![no_main]
use flowwatch::engine::{Engine, EngineConfig, Input};
use flowwatch::flow::{parse_flow_file, Flow};
use libfuzzer_sys::fuzz_target;

const FLOW: &str = include_str!("../../flows/order-fulfillment.yaml");

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let def = parse_flow_file(std::path::Path::new("order-fulfillment.yaml"), FLOW).expect("shipped flow");
    let config = EngineConfig { allowed_lateness: 60_000, orphan_after: 120_000, ..EngineConfig::default() };
    let mut engine = Engine::new(vec![Flow::new(def)], config);
    let mut outputs = Vec::new();
    for (number, line) in text.lines().enumerate() {
        if let Ok(record) = flowwatch::replay::decode::decode_line(line, number as u64) {
            engine.handle(Input::RecordReceived(&record), &mut outputs);
        }
    }
    engine.handle(Input::ClockAdvanced(i64::MAX), &mut outputs);
});
