//! Paths into a record: dotted (`data.customer.id`, `items.0.sku`), JSON Pointer
//! (`/data/customer~1id`), or one of the special sources `$key`, `$topic`, `$timestamp` and
//! `$header.NAME`. A path is compiled once when the flow is loaded and resolved per record
//! without allocating.

use crate::json::Json;
use crate::record::Record;
use serde_json::Value;
use std::fmt;

/// A compiled path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Path {
    /// Object fields (or array indices) from the payload root.
    Payload(Vec<Box<str>>),
    /// The record key as UTF-8.
    RecordKey,
    /// The topic name.
    Topic,
    /// The record timestamp in epoch milliseconds.
    Timestamp,
    /// A header's value as UTF-8.
    Header(Box<str>),
}

/// What a path found in a record, borrowed from it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Found<'a> {
    /// A value inside the payload.
    Json(&'a Json<'a>),
    /// A string from the record envelope (key, topic, header).
    Text(&'a str),
    /// The record timestamp.
    Millis(i64),
}

impl Path {
    /// Compiles a path written in a flow file. The error says what is wrong with it.
    pub fn parse(text: &str) -> Result<Path, String> {
        if text.is_empty() {
            return Err("empty path".to_string());
        }
        if let Some(special) = text.strip_prefix('$') {
            return match special {
                "key" => Ok(Path::RecordKey),
                "topic" => Ok(Path::Topic),
                "timestamp" => Ok(Path::Timestamp),
                _ => match special.strip_prefix("header.") {
                    Some(name) if !name.is_empty() => Ok(Path::Header(name.into())),
                    _ => Err(format!(
                        "unknown special path {text:?}: use $key, $topic, $timestamp or $header.NAME"
                    )),
                },
            };
        }
        if let Some(pointer) = text.strip_prefix('/') {
            let mut segments = Vec::new();
            for raw in pointer.split('/') {
                if raw.contains('~') && !valid_pointer_escapes(raw) {
                    return Err(format!(
                        "bad JSON Pointer {text:?}: '~' must be followed by 0 or 1"
                    ));
                }
                segments.push(raw.replace("~1", "/").replace("~0", "~").into_boxed_str());
            }
            return Ok(Path::Payload(segments));
        }
        let mut segments = Vec::new();
        for segment in text.split('.') {
            if segment.is_empty() {
                return Err(format!(
                    "bad path {text:?}: empty segment (write fields separated by single dots, like data.customer.id)"
                ));
            }
            if segment.chars().any(|c| c.is_whitespace()) {
                return Err(format!(
                    "bad path {text:?}: whitespace in segment {segment:?}"
                ));
            }
            segments.push(segment.into());
        }
        Ok(Path::Payload(segments))
    }

    /// Resolves the path in a record; `None` if it is absent.
    pub fn resolve<'a>(&self, record: &'a Record<'_>) -> Option<Found<'a>> {
        match self {
            Path::Payload(segments) => lookup_json(&record.value, segments).map(Found::Json),
            Path::RecordKey => record.key.as_deref().map(Found::Text),
            Path::Topic => Some(Found::Text(&record.topic)),
            Path::Timestamp => Some(Found::Millis(record.timestamp)),
            Path::Header(name) => record.header(name).map(Found::Text),
        }
    }

    /// The first payload segment, for deciding which parts of a payload must be kept.
    pub fn payload_segments(&self) -> Option<&[Box<str>]> {
        match self {
            Path::Payload(segments) => Some(segments),
            _ => None,
        }
    }
}

/// Walks `segments` from `root`: object fields by name, array elements by decimal index.
pub fn lookup<'a>(root: &'a Value, segments: &[Box<str>]) -> Option<&'a Value> {
    let mut current = root;
    for segment in segments {
        current = match current {
            Value::Object(map) => map.get(&**segment)?,
            Value::Array(items) => items.get(segment.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(current)
}

/// [`lookup`] in a record's payload.
pub fn lookup_json<'a, 'j>(root: &'a Json<'j>, segments: &[Box<str>]) -> Option<&'a Json<'j>> {
    let mut current = root;
    for segment in segments {
        current = match current {
            Json::Object(_) => current.get(segment)?,
            Json::Array(items) => items.get(segment.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(current)
}

fn valid_pointer_escapes(raw: &str) -> bool {
    let bytes = raw.as_bytes();
    bytes.iter().enumerate().all(|(index, &byte)| {
        byte != b'~' || matches!(bytes.get(index + 1), Some(b'0') | Some(b'1'))
    })
}

impl fmt::Display for Path {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Path::Payload(segments) => {
                let dotted = segments
                    .iter()
                    .all(|segment| !segment.contains('.') && !segment.is_empty());
                if dotted {
                    write!(formatter, "{}", segments.join("."))
                } else {
                    for segment in segments {
                        write!(
                            formatter,
                            "/{}",
                            segment.replace('~', "~0").replace('/', "~1")
                        )?;
                    }
                    Ok(())
                }
            }
            Path::RecordKey => write!(formatter, "$key"),
            Path::Topic => write!(formatter, "$topic"),
            Path::Timestamp => write!(formatter, "$timestamp"),
            Path::Header(name) => write!(formatter, "$header.{name}"),
        }
    }
}

impl<'a> Found<'a> {
    /// Equality with a JSON scalar from a `match` entry: equal as JSON, numbers by value.
    pub fn equals(&self, expected: &Value) -> bool {
        match (self, expected) {
            (Found::Json(Json::Number(actual)), Value::Number(expected)) => {
                numbers_equal(actual, expected)
            }
            (Found::Json(actual), expected) => *actual == expected,
            (Found::Text(actual), Value::String(expected)) => actual == expected,
            (Found::Millis(actual), Value::Number(expected)) => {
                expected.as_f64() == Some(*actual as f64)
            }
            _ => false,
        }
    }

    /// The value as a business key: a non-empty string, or a number as its JSON text.
    pub fn as_key(&self) -> Option<std::borrow::Cow<'a, str>> {
        use std::borrow::Cow;
        match *self {
            Found::Json(Json::String(text)) if !text.is_empty() => Some(Cow::Borrowed(&**text)),
            Found::Text(text) if !text.is_empty() => Some(Cow::Borrowed(text)),
            Found::Json(Json::Number(number)) => Some(Cow::Owned(number.to_string())),
            Found::Millis(millis) => Some(Cow::Owned(millis.to_string())),
            _ => None,
        }
    }

    /// The value as an event time: RFC 3339 string or epoch milliseconds.
    pub fn as_time(&self) -> Option<i64> {
        match *self {
            Found::Json(Json::String(text)) => crate::time::parse_rfc3339(text),
            Found::Json(Json::Number(number)) => number.as_i64(),
            Found::Json(_) => None,
            Found::Text(text) => crate::time::parse_rfc3339(text),
            Found::Millis(millis) => Some(millis),
        }
    }

    /// The value as JSON, copying envelope strings.
    pub fn to_json(&self) -> Value {
        match *self {
            Found::Json(value) => value.to_value(),
            Found::Text(text) => Value::String(text.to_string()),
            Found::Millis(millis) => Value::from(millis),
        }
    }
}

/// JSON equality where numbers compare by value (`1` equals `1.0`).
pub fn json_equal(left: &Value, right: &Value) -> bool {
    match (left, right) {
        (Value::Number(left), Value::Number(right)) => numbers_equal(left, right),
        _ => left == right,
    }
}

/// Numbers by value: `1` equals `1.0`.
fn numbers_equal(left: &serde_json::Number, right: &serde_json::Number) -> bool {
    if let (Some(left), Some(right)) = (left.as_i64(), right.as_i64()) {
        left == right
    } else if let (Some(left), Some(right)) = (left.as_u64(), right.as_u64()) {
        left == right
    } else {
        left.as_f64() == right.as_f64()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn record(value: Value) -> Record<'static> {
        Record {
            topic: "orders".into(),
            partition: 0,
            offset: 0,
            key: Some("k-1".into()),
            timestamp: 42,
            headers: vec![("ce_type".into(), "OrderPlaced".into())],
            value: value.into(),
        }
    }

    #[test]
    fn dotted_pointer_and_special_paths() {
        let rec = record(json!({"data": {"customer/id": 7, "items": [{"sku": "a"}]}, "x.y": 1}));
        let found = |p: &str| Path::parse(p).unwrap().resolve(&rec).map(|f| f.to_json());
        assert_eq!(found("data.items.0.sku"), Some(json!("a")));
        assert_eq!(found("/data/customer~1id"), Some(json!(7)));
        assert_eq!(found("/x.y"), Some(json!(1)));
        assert_eq!(found("data.missing"), None);
        assert_eq!(found("$key"), Some(json!("k-1")));
        assert_eq!(found("$topic"), Some(json!("orders")));
        assert_eq!(found("$timestamp"), Some(json!(42)));
        assert_eq!(found("$header.ce_type"), Some(json!("OrderPlaced")));
        assert_eq!(found("$header.ce_id"), None);
        assert!(Path::parse("a..b").is_err());
        assert!(Path::parse("$nope").is_err());
        assert!(Path::parse("/a~2").is_err());
    }

    #[test]
    fn keys_and_equality() {
        assert_eq!(Found::Json(&Json::from(json!(42))).as_key().as_deref(), Some("42"));
        assert_eq!(Found::Json(&Json::from(json!(""))).as_key(), None);
        assert_eq!(Found::Json(&Json::from(json!(null))).as_key(), None);
        assert!(Found::Json(&Json::from(json!(1))).equals(&json!(1.0)));
        assert!(!Found::Json(&Json::from(json!("1"))).equals(&json!(1)));
        assert!(!Found::Json(&Json::from(json!(null))).equals(&json!("x")));
    }
}
