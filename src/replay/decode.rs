//! Decoding replay input: one JSON record per line, in flowwatch's own envelope
//! (`topic`, `partition`, `offset`, `key`, `timestamp`, `headers`, `value`) or kcat's `-J`
//! envelope (`payload` as a string, `ts` in epoch milliseconds, `headers` as a flat
//! name/value array). A line that cannot be decoded is an error value, never a panic. The
//! payload is parsed into a [`Json`] that borrows from the line, so the record borrows it too.

use crate::json::Json;
use crate::record::Record;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;
use std::borrow::Cow;

/// Why a line could not be decoded.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("not UTF-8 text (the first invalid byte is byte {} of the line)", .0 + 1)]
    NotUtf8(usize),
    #[error("not a JSON object: {0}")]
    Json(String),
    #[error("missing \"topic\"")]
    MissingTopic,
    #[error("missing \"timestamp\" (or kcat's \"ts\")")]
    MissingTimestamp,
    #[error("\"timestamp\" is neither RFC 3339 nor epoch milliseconds")]
    BadTimestamp,
    #[error("missing \"value\" (or kcat's \"payload\")")]
    MissingValue,
    #[error("the payload is not JSON: {0}")]
    PayloadNotJson(String),
}

/// The envelope; small fields stay raw JSON borrowed from the line and are read on demand,
/// and the payload borrows its strings from the line.
#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow)]
    topic: Option<Cow<'a, str>>,
    partition: Option<i32>,
    offset: Option<i64>,
    #[serde(borrow)]
    key: Option<&'a RawValue>,
    #[serde(borrow)]
    timestamp: Option<&'a RawValue>,
    #[serde(borrow)]
    ts: Option<&'a RawValue>,
    #[serde(borrow)]
    headers: Option<&'a RawValue>,
    #[serde(borrow)]
    value: Option<Json<'a>>,
    #[serde(borrow)]
    payload: Option<Json<'a>>,
}

/// A raw JSON string or integer as a time; `None` if it is neither or unreadable.
fn raw_time(raw: &RawValue) -> Option<crate::time::Millis> {
    let text = raw.get();
    if text.starts_with('"') {
        // A time without escapes (every real one) is read in place; serde_json has already
        // checked that the raw value is one valid JSON string.
        let inner = &text[1..text.len() - 1];
        if !inner.contains('\\') {
            return crate::time::parse_rfc3339(inner);
        }
        let text: Cow<'_, str> = serde_json::from_str(text).ok()?;
        crate::time::parse_rfc3339(&text)
    } else {
        text.parse().ok()
    }
}

/// A raw JSON string or number as a record key; null and other JSON give none.
fn raw_key(raw: &RawValue) -> Option<String> {
    let text = raw.get();
    if text.starts_with('"') {
        serde_json::from_str(text).ok()
    } else if text.starts_with(|first: char| first == '-' || first.is_ascii_digit()) {
        Some(text.to_string())
    } else {
        None
    }
}

/// Decodes one line. `line_number` (1-based) becomes the offset when the line has none, so
/// every record of a replay has distinct coordinates. A payload given as a string of JSON
/// text (kcat's) is parsed from the unescaped copy and owned.
pub fn decode_line(line: &str, line_number: u64) -> Result<Record<'_>, DecodeError> {
    let envelope: Envelope<'_> =
        serde_json::from_str(line).map_err(|error| DecodeError::Json(error.to_string()))?;
    let topic = envelope
        .topic
        .ok_or(DecodeError::MissingTopic)?
        .into_owned();
    let timestamp = envelope
        .timestamp
        .or(envelope.ts)
        .ok_or(DecodeError::MissingTimestamp)?;
    let timestamp = raw_time(timestamp).ok_or(DecodeError::BadTimestamp)?;
    let value = match envelope.value.or(envelope.payload) {
        None => return Err(DecodeError::MissingValue),
        Some(Json::String(raw)) => Json::parse(&raw)
            .map(Json::into_owned)
            .map_err(|error| DecodeError::PayloadNotJson(error.to_string()))?,
        Some(value) => value,
    };
    let key = envelope.key.and_then(raw_key);
    Ok(Record {
        topic,
        partition: envelope.partition.unwrap_or(0),
        offset: envelope.offset.unwrap_or(line_number as i64),
        key,
        timestamp,
        headers: envelope
            .headers
            .and_then(|raw| serde_json::from_str(raw.get()).ok())
            .map(headers)
            .unwrap_or_default(),
        value,
    })
}

/// Headers as an object (`{"ce_type": "x"}`), kcat's flat array (`["ce_type", "x"]`) or an
/// array of pairs (`[["ce_type", "x"]]`). Values that are not strings are kept as JSON text;
/// nulls are dropped.
fn headers(raw: Value) -> Vec<(String, String)> {
    let text = |value: Value| match value {
        Value::String(text) => Some(text),
        Value::Null => None,
        other => Some(other.to_string()),
    };
    match raw {
        Value::Object(fields) => fields
            .into_iter()
            .filter_map(|(name, value)| Some((name, text(value)?)))
            .collect(),
        Value::Array(items) if items.iter().all(Value::is_array) => items
            .into_iter()
            .filter_map(|pair| match pair {
                Value::Array(mut pair) if pair.len() == 2 => {
                    let value = pair.pop()?;
                    let name = pair.pop()?;
                    Some((name.as_str()?.to_string(), text(value)?))
                }
                _ => None,
            })
            .collect(),
        Value::Array(items) => {
            let mut items = items.into_iter();
            let mut pairs = Vec::new();
            while let (Some(name), Some(value)) = (items.next(), items.next()) {
                if let (Value::String(name), Some(value)) = (name, text(value)) {
                    pairs.push((name, value));
                }
            }
            pairs
        }
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn own_envelope() {
        let record = decode_line(
            r#"{"topic":"orders","partition":2,"offset":17,"key":"o-1","timestamp":"2026-01-01T00:00:00Z","headers":{"ce_type":"x"},"value":{"type":"OrderPlaced"}}"#,
            1,
        )
        .unwrap();
        assert_eq!(record.topic, "orders");
        assert_eq!((record.partition, record.offset), (2, 17));
        assert_eq!(record.key.as_deref(), Some("o-1"));
        assert_eq!(record.timestamp, 1_767_225_600_000);
        assert_eq!(record.header("ce_type"), Some("x"));
        assert_eq!(record.value.to_value(), json!({"type": "OrderPlaced"}));
    }

    #[test]
    fn defaults_and_raw_payload_strings() {
        let record = decode_line(r#"{"topic":"t","timestamp":5,"value":"{\"a\":1}"}"#, 9).unwrap();
        assert_eq!((record.partition, record.offset, record.key), (0, 9, None));
        assert_eq!(record.value.to_value(), json!({"a": 1}));
        assert!(matches!(
            decode_line(r#"{"topic":"t","timestamp":5,"value":"{not json"}"#, 1),
            Err(DecodeError::PayloadNotJson(_))
        ));
    }

    #[test]
    fn kcat_envelope() {
        let line = r#"{"topic":"orders","partition":0,"offset":3,"tstype":"create","ts":1767225600000,"broker":1,"headers":["ce_id","e-1","ce_type","x"],"key":"o-1","payload":"{\"type\":\"OrderPlaced\"}"}"#;
        let record = decode_line(line, 1).unwrap();
        assert_eq!(record.timestamp, 1_767_225_600_000);
        assert_eq!(record.header("ce_id"), Some("e-1"));
        assert_eq!(record.header("ce_type"), Some("x"));
        assert_eq!(record.value.to_value(), json!({"type": "OrderPlaced"}));
        let null_key = r#"{"topic":"t","ts":1,"key":null,"payload":"1"}"#;
        assert_eq!(decode_line(null_key, 1).unwrap().key, None);
        let number_key = r#"{"topic":"t","ts":1,"key":42,"payload":"1"}"#;
        assert_eq!(
            decode_line(number_key, 1).unwrap().key.as_deref(),
            Some("42")
        );
        let escaped =
            r#"{"topic":"t","timestamp":"2026-01-01T00:00:00\u005a","key":"a\"b","value":1}"#;
        let record = decode_line(escaped, 1).unwrap();
        assert_eq!(
            (record.timestamp, record.key.as_deref()),
            (1_767_225_600_000, Some("a\"b"))
        );
    }

    #[test]
    fn malformed_lines_are_errors() {
        assert!(matches!(decode_line("{", 1), Err(DecodeError::Json(_))));
        assert!(matches!(decode_line("[1,2]", 1), Err(DecodeError::Json(_))));
        assert_eq!(
            decode_line(r#"{"timestamp":1,"value":1}"#, 1),
            Err(DecodeError::MissingTopic)
        );
        assert_eq!(
            decode_line(r#"{"topic":"t","value":1}"#, 1),
            Err(DecodeError::MissingTimestamp)
        );
        assert_eq!(
            decode_line(r#"{"topic":"t","timestamp":"soon","value":1}"#, 1),
            Err(DecodeError::BadTimestamp)
        );
        assert_eq!(
            decode_line(r#"{"topic":"t","timestamp":1}"#, 1),
            Err(DecodeError::MissingValue)
        );
    }

    proptest! {
        #[test]
        fn never_panics_on_arbitrary_text(line in ".{0,200}") {
            let _ = decode_line(&line, 1);
        }

        #[test]
        fn never_panics_on_mutated_records(
            cut in 0usize..160,
            insert in "[\\[\\]{}\",:0-9a-z\\\\]{0,6}",
        ) {
            let base = r#"{"topic":"orders","partition":1,"offset":2,"key":"o","timestamp":"2026-01-01T00:00:00Z","headers":["a","b"],"value":"{\"x\":[1,2]}"}"#;
            let cut = cut.min(base.len());
            let mut line = base.as_bytes()[..cut].to_vec();
            line.extend_from_slice(insert.as_bytes());
            line.extend_from_slice(&base.as_bytes()[cut..]);
            let _ = decode_line(&String::from_utf8_lossy(&line), 1);
        }
    }
}
