//! Fuzzes the replay record decoder: any bytes, as a line, must decode or give an error.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(line) = std::str::from_utf8(data) {
        let _ = flowwatch::replay::decode::decode_line(line, 1);
    }
});
