//! The Kafka record as the engine sees it: coordinates, key, timestamp, headers and the payload
//! already parsed as JSON. Both the replay decoder and the Kafka consumer produce this type, so
//! the engine never knows where a record came from. The payload borrows from the text it was
//! parsed from (`Record<'static>` owns it: the live shell holds records until the clock reaches
//! them, tests and the simulator build them from `serde_json::Value`s).

use crate::json::Json;
use crate::time::Millis;

/// One consumed record; its payload borrows for `'a`.
#[derive(Clone, Debug, PartialEq)]
pub struct Record<'a> {
    /// Topic the record was read from; events are matched by topic first.
    pub topic: String,
    /// Partition, for dead-letter headers, signal ids of deviations and the audit trail.
    pub partition: i32,
    /// Offset within the partition (in replay, the line number when the input has none).
    pub offset: i64,
    /// Record key as UTF-8, if it has one and it is valid UTF-8 (`$key`).
    pub key: Option<String>,
    /// Record timestamp in epoch milliseconds (`$timestamp`, default event time).
    pub timestamp: Millis,
    /// Headers whose values are valid UTF-8 (`$header.NAME`), in record order.
    pub headers: Vec<(String, String)>,
    /// The payload parsed as JSON.
    pub value: Json<'a>,
}

impl Record<'_> {
    /// The first header with this name, as CloudEvents binary mode and Kafka clients expect.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(header, _)| header == name)
            .map(|(_, value)| value.as_str())
    }

    /// A copy that owns its payload.
    pub fn into_owned(self) -> Record<'static> {
        Record {
            topic: self.topic,
            partition: self.partition,
            offset: self.offset,
            key: self.key,
            timestamp: self.timestamp,
            headers: self.headers,
            value: self.value.into_owned(),
        }
    }
}
