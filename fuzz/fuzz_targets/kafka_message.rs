//! Fuzzes the daemon's Kafka side of decoding: a message built from the input (topic, key,
//! timestamp, headers and payload bytes, none of them trusted) goes through
//! `daemon::kafka::decode` as the consumer's messages do, and a decoded record is timed and
//! applied by an engine tracking the shipped flows, as the worker does. Nothing may panic.
//!
//! Input layout (made so that seeds can be written from recorded examples, see
//! `fuzz/make_corpus.py`): byte 0 picks the topic (an index into the flows' topics; past the
//! end, a topic no flow reads); byte 1 is the key length (255: no key) followed by the key;
//! then one byte with the number of headers, each as name length, name, value length (255:
//! no value), value; then one byte that says whether a timestamp follows (0: none) and, if
//! so, 8 bytes little-endian; the rest is the payload (none when the input ends before it).
#![no_main]
use flowwatch::daemon::kafka::{decode, Decoded};
use flowwatch::engine::{Engine, EngineConfig, Input};
use flowwatch::flow::{parse_flow_file, Flow};
use libfuzzer_sys::fuzz_target;
use rdkafka::message::{Header, OwnedHeaders, OwnedMessage, Timestamp};

const FLOWS: [(&str, &str); 3] = [
    ("order-fulfillment.yaml", include_str!("../../flows/order-fulfillment.yaml")),
    ("customer-onboarding.yaml", include_str!("../../flows/customer-onboarding.yaml")),
    ("parcel-delivery.yaml", include_str!("../../flows/parcel-delivery.yaml")),
];

/// The wall clock the decoder falls back to for a message without a timestamp.
const WALL: i64 = 1_767_225_600_000;

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn byte(&mut self) -> Option<u8> {
        let (&first, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(first)
    }
    fn bytes(&mut self, length: usize) -> Option<&'a [u8]> {
        if self.0.len() < length {
            return None;
        }
        let (taken, rest) = self.0.split_at(length);
        self.0 = rest;
        Some(taken)
    }
    /// A length byte and that many bytes; 255 means absent.
    fn optional(&mut self) -> Option<Option<&'a [u8]>> {
        match self.byte()? {
            255 => Some(None),
            length => self.bytes(length as usize).map(Some),
        }
    }
}

fn message(data: &[u8], topics: &[String]) -> Option<OwnedMessage> {
    let mut input = Reader(data);
    let topic = topics
        .get(input.byte()? as usize)
        .cloned()
        .unwrap_or_else(|| "not-a-flow-topic".to_string());
    let key = input.optional()?.map(<[u8]>::to_vec);
    let mut headers = OwnedHeaders::new();
    for _ in 0..input.byte()? {
        let name = input.optional()?.unwrap_or_default();
        let value = input.optional()?;
        headers = headers.insert(Header { key: &String::from_utf8_lossy(name), value });
    }
    let timestamp = match input.byte()? {
        0 => Timestamp::NotAvailable,
        _ => Timestamp::CreateTime(i64::from_le_bytes(input.bytes(8)?.try_into().ok()?)),
    };
    let payload = (!input.0.is_empty()).then(|| input.0.to_vec());
    Some(OwnedMessage::new(payload, key, topic, timestamp, 0, 7, Some(headers)))
}

fuzz_target!(|data: &[u8]| {
    let flows: Vec<Flow> = FLOWS
        .iter()
        .map(|(file, text)| Flow::new(parse_flow_file(std::path::Path::new(file), text).expect("shipped flow")))
        .collect();
    let mut topics: Vec<String> = flows
        .iter()
        .flat_map(|flow| flow.def.events.iter().map(|event| event.topic.clone()))
        .collect();
    topics.sort();
    topics.dedup();
    let Some(message) = message(data, &topics) else { return };
    let config = EngineConfig { allowed_lateness: 5_000, orphan_after: 300_000, ..EngineConfig::default() };
    let mut engine = Engine::new(flows, config);
    let mut outputs = Vec::new();
    engine.handle(Input::ClockAdvanced(WALL - 60_000), &mut outputs);
    match decode(&message, WALL) {
        // The worker dead-letters these with the raw bytes; nothing reaches the engine.
        Decoded::Undecodable { .. } => {}
        Decoded::Record(record) => {
            let _ = engine.record_time(&record);
            engine.handle(Input::RecordReceived(&record), &mut outputs);
            engine.handle(Input::ClockAdvanced(i64::MAX), &mut outputs);
        }
    }
});
