//! The record the simulator produces: what a service would hand its Kafka producer (topic,
//! key, CreateTime, headers, payload bytes), and its conversion to the engine's [`Record`].

use crate::json::Json;
use crate::record::Record;
use crate::time::Millis;

/// One simulated record, ready to produce.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimRecord {
    /// Topic the service publishes to.
    pub topic: String,
    /// Record key: the business key the service knows (`None` for keyless records and for
    /// records broken by the `malformed` fault).
    pub key: Option<String>,
    /// CreateTime: the event time in epoch milliseconds. A record delivered out of order or
    /// late keeps the time the event happened, not the time it was published.
    pub timestamp: Millis,
    /// CloudEvents binary-mode headers (`ce_id`, `ce_type`, `ce_source`, `ce_specversion`)
    /// and `content-type`.
    pub headers: Vec<(String, String)>,
    /// The payload: JSON, except for records broken as "not JSON".
    pub payload: Vec<u8>,
}

impl SimRecord {
    /// The record as the engine would see it after consuming it from `partition` at `offset`.
    /// Fails when the payload is not JSON (a shell counts such a record as undecodable).
    pub fn to_record(&self, partition: i32, offset: i64) -> Result<Record<'_>, serde_json::Error> {
        Ok(Record {
            topic: self.topic.clone(),
            partition,
            offset,
            key: self.key.clone(),
            timestamp: self.timestamp,
            headers: self.headers.clone(),
            value: Json::parse_slice(&self.payload)?,
        })
    }

    /// The first header with this name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(header, _)| header == name)
            .map(|(_, value)| value.as_str())
    }
}
