//! Fuzzes the flow-file parser and validator: any text must parse or give diagnostics.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(def) = flowwatch::flow::parse_flow_file(std::path::Path::new("fuzz.yaml"), text) {
            let _ = flowwatch::flow::Flow::new(def);
        }
    }
});
