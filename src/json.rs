//! A JSON value that borrows its strings from the text it was parsed from: the payload of a
//! record as the engine reads it. Parsing one allocates only the vectors of arrays and objects
//! and the strings that contain escapes, where `serde_json::Value` allocates a `BTreeMap` node
//! per field and a `String` per key and string value. It reads like a `Value` in every way the
//! engine can see: the same parser (so the same errors), the same numbers, a repeated key's
//! last value, and the same compact JSON text (keys in sorted order). Objects keep their
//! fields in text order, found by a search from the end, and are sorted only when written.

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use serde_json::{Number, Value};
use std::borrow::Cow;
use std::fmt;

/// A JSON value borrowing from its text for `'a` (`Json<'static>` owns everything).
#[derive(Clone, Debug)]
pub enum Json<'a> {
    Null,
    Bool(bool),
    Number(Number),
    String(Cow<'a, str>),
    Array(Vec<Json<'a>>),
    /// Fields in text order; a repeated name's last value is the one that counts, as in
    /// `serde_json::Map` (use [`Json::get`] and [`Json::fields`], never the vector's order).
    Object(Vec<(Cow<'a, str>, Json<'a>)>),
}

impl<'a> Json<'a> {
    /// Parses JSON text; the error is serde_json's, as for `serde_json::from_str::<Value>`.
    pub fn parse(text: &'a str) -> Result<Json<'a>, serde_json::Error> {
        serde_json::from_str(text)
    }

    /// Parses JSON bytes; the error is serde_json's, as for `serde_json::from_slice::<Value>`.
    pub fn parse_slice(bytes: &'a [u8]) -> Result<Json<'a>, serde_json::Error> {
        serde_json::from_slice(bytes)
    }

    /// An owned copy, for a value that must outlive its text.
    pub fn into_owned(self) -> Json<'static> {
        match self {
            Json::Null => Json::Null,
            Json::Bool(flag) => Json::Bool(flag),
            Json::Number(number) => Json::Number(number),
            Json::String(text) => Json::String(Cow::Owned(text.into_owned())),
            Json::Array(items) => Json::Array(items.into_iter().map(Json::into_owned).collect()),
            Json::Object(fields) => Json::Object(
                fields
                    .into_iter()
                    .map(|(name, value)| (Cow::Owned(name.into_owned()), value.into_owned()))
                    .collect(),
            ),
        }
    }

    /// A borrowed view of a `serde_json::Value`.
    pub fn borrowed(value: &'a Value) -> Json<'a> {
        match value {
            Value::Null => Json::Null,
            Value::Bool(flag) => Json::Bool(*flag),
            Value::Number(number) => Json::Number(number.clone()),
            Value::String(text) => Json::String(Cow::Borrowed(text)),
            Value::Array(items) => Json::Array(items.iter().map(Json::borrowed).collect()),
            Value::Object(fields) => Json::Object(
                fields
                    .iter()
                    .map(|(name, value)| (Cow::Borrowed(name.as_str()), Json::borrowed(value)))
                    .collect(),
            ),
        }
    }

    /// The same value as a `serde_json::Value`.
    pub fn to_value(&self) -> Value {
        match self {
            Json::Null => Value::Null,
            Json::Bool(flag) => Value::Bool(*flag),
            Json::Number(number) => Value::Number(number.clone()),
            Json::String(text) => Value::String(text.to_string()),
            Json::Array(items) => Value::Array(items.iter().map(Json::to_value).collect()),
            Json::Object(fields) => Value::Object(
                fields
                    .iter()
                    .map(|(name, value)| (name.to_string(), value.to_value()))
                    .collect(),
            ),
        }
    }

    /// An object's field by name (the last one of a repeated name); `None` for a missing field
    /// or a value that is no object.
    pub fn get(&self, name: &str) -> Option<&Json<'a>> {
        match self {
            Json::Object(fields) => fields
                .iter()
                .rev()
                .find(|(field, _)| field.len() == name.len() && field.as_bytes() == name.as_bytes())
                .map(|(_, value)| value),
            _ => None,
        }
    }

    /// Whether this is an object.
    pub fn is_object(&self) -> bool {
        matches!(self, Json::Object(_))
    }

    /// An object's fields as `serde_json::Map` has them: sorted by name, each name once with its
    /// last value. `None` for a value that is no object.
    pub fn fields(&self) -> Option<Vec<(&str, &Json<'a>)>> {
        let Json::Object(fields) = self else {
            return None;
        };
        let mut sorted: Vec<(&str, &Json<'a>)> =
            fields.iter().map(|(name, value)| (&**name, value)).collect();
        if !sorted.windows(2).all(|pair| pair[0].0 < pair[1].0) {
            // Stable, so a repeated name's values stay in text order and the last one is kept.
            sorted.sort_by(|left, right| left.0.cmp(right.0));
            sorted.dedup_by(|later, kept| {
                let repeated = later.0 == kept.0;
                if repeated {
                    kept.1 = later.1;
                }
                repeated
            });
        }
        Some(sorted)
    }

    /// The text of a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Json::String(text) => Some(text),
            _ => None,
        }
    }

    /// Compact JSON text, as `serde_json::Value`'s `to_string` writes it.
    pub fn to_text(&self) -> String {
        let mut text = Vec::with_capacity(128);
        // Writing JSON into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut text, self);
        // serde_json writes UTF-8.
        String::from_utf8(text).unwrap_or_default()
    }
}

impl From<Value> for Json<'static> {
    fn from(value: Value) -> Json<'static> {
        match value {
            Value::Null => Json::Null,
            Value::Bool(flag) => Json::Bool(flag),
            Value::Number(number) => Json::Number(number),
            Value::String(text) => Json::String(Cow::Owned(text)),
            Value::Array(items) => Json::Array(items.into_iter().map(Json::from).collect()),
            Value::Object(fields) => Json::Object(
                fields
                    .into_iter()
                    .map(|(name, value)| (Cow::Owned(name), Json::from(value)))
                    .collect(),
            ),
        }
    }
}

impl PartialEq for Json<'_> {
    /// Equality as `serde_json::Value`s (field order does not count, a repeated name's last
    /// value does).
    fn eq(&self, other: &Json<'_>) -> bool {
        match (self, other) {
            (Json::Null, Json::Null) => true,
            (Json::Bool(left), Json::Bool(right)) => left == right,
            (Json::Number(left), Json::Number(right)) => left == right,
            (Json::String(left), Json::String(right)) => left == right,
            (Json::Array(left), Json::Array(right)) => left == right,
            (Json::Object(_), Json::Object(_)) => self.fields() == other.fields(),
            _ => false,
        }
    }
}

impl PartialEq<Value> for Json<'_> {
    fn eq(&self, other: &Value) -> bool {
        match (self, other) {
            (Json::Null, Value::Null) => true,
            (Json::Bool(left), Value::Bool(right)) => left == right,
            (Json::Number(left), Value::Number(right)) => left == right,
            (Json::String(left), Value::String(right)) => left == right,
            (Json::Array(left), Value::Array(right)) => {
                left.len() == right.len() && left.iter().zip(right).all(|(l, r)| l == r)
            }
            (Json::Object(_), Value::Object(right)) => {
                let left = self.fields().unwrap_or_default();
                left.len() == right.len()
                    && left
                        .iter()
                        .zip(right)
                        .all(|((ln, lv), (rn, rv))| ln == rn && *lv == rv)
            }
            _ => false,
        }
    }
}

impl fmt::Display for Json<'_> {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.to_text())
    }
}

impl Serialize for Json<'_> {
    /// Serialises exactly as `serde_json::Value` does.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Json::Null => serializer.serialize_unit(),
            Json::Bool(flag) => serializer.serialize_bool(*flag),
            Json::Number(number) => number.serialize(serializer),
            Json::String(text) => serializer.serialize_str(text),
            Json::Array(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Json::Object(_) => {
                let fields = self.fields().unwrap_or_default();
                let mut map = serializer.serialize_map(Some(fields.len()))?;
                for (name, value) in fields {
                    map.serialize_entry(name, value)?;
                }
                map.end()
            }
        }
    }
}

/// serde_json's marker key of a raw value; `serde_json::Value` treats an object whose first
/// key is this as a string of JSON text to parse, and so does `Json`, to accept and reject
/// exactly the same payloads.
const RAW_VALUE_TOKEN: &str = "$serde_json::private::RawValue";

impl<'de: 'a, 'a> de::Deserialize<'de> for Json<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Json<'a>, D::Error> {
        deserializer.deserialize_any(JsonVisitor(std::marker::PhantomData))
    }
}

struct JsonVisitor<'a>(std::marker::PhantomData<&'a ()>);

impl<'de: 'a, 'a> Visitor<'de> for JsonVisitor<'a> {
    type Value = Json<'a>;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("any valid JSON value")
    }

    fn visit_bool<E>(self, flag: bool) -> Result<Json<'a>, E> {
        Ok(Json::Bool(flag))
    }

    fn visit_i64<E>(self, number: i64) -> Result<Json<'a>, E> {
        Ok(Json::Number(number.into()))
    }

    fn visit_u64<E>(self, number: u64) -> Result<Json<'a>, E> {
        Ok(Json::Number(number.into()))
    }

    fn visit_f64<E>(self, number: f64) -> Result<Json<'a>, E> {
        Ok(Number::from_f64(number).map_or(Json::Null, Json::Number))
    }

    fn visit_borrowed_str<E>(self, text: &'de str) -> Result<Json<'a>, E> {
        Ok(Json::String(Cow::Borrowed(text)))
    }

    fn visit_str<E>(self, text: &str) -> Result<Json<'a>, E> {
        Ok(Json::String(Cow::Owned(text.to_string())))
    }

    fn visit_string<E>(self, text: String) -> Result<Json<'a>, E> {
        Ok(Json::String(Cow::Owned(text)))
    }

    fn visit_none<E>(self) -> Result<Json<'a>, E> {
        Ok(Json::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Json<'a>, D::Error> {
        de::Deserialize::deserialize(deserializer)
    }

    fn visit_unit<E>(self) -> Result<Json<'a>, E> {
        Ok(Json::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json<'a>, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Json::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json<'a>, A::Error> {
        // serde_json knows no size; most payload objects have a few fields.
        let mut fields: Vec<(Cow<'a, str>, Json<'a>)> = Vec::with_capacity(8);
        while let Some(name) = map.next_key_seed(KeySeed(std::marker::PhantomData))? {
            if fields.is_empty() && name == RAW_VALUE_TOKEN {
                let text: String = map.next_value_seed(RawText)?;
                return Json::parse(&text)
                    .map(Json::into_owned)
                    .map_err(de::Error::custom);
            }
            let value = map.next_value()?;
            fields.push((name, value));
        }
        Ok(Json::Object(fields))
    }
}

/// An object key, borrowed from the text when it has no escapes.
struct KeySeed<'a>(std::marker::PhantomData<&'a ()>);

impl<'de: 'a, 'a> DeserializeSeed<'de> for KeySeed<'a> {
    type Value = Cow<'a, str>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Cow<'a, str>, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de: 'a, 'a> Visitor<'de> for KeySeed<'a> {
    type Value = Cow<'a, str>;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a string key")
    }

    fn visit_borrowed_str<E>(self, text: &'de str) -> Result<Cow<'a, str>, E> {
        Ok(Cow::Borrowed(text))
    }

    fn visit_str<E>(self, text: &str) -> Result<Cow<'a, str>, E> {
        Ok(Cow::Owned(text.to_string()))
    }

    fn visit_string<E>(self, text: String) -> Result<Cow<'a, str>, E> {
        Ok(Cow::Owned(text))
    }
}

/// The string value after [`RAW_VALUE_TOKEN`], read as serde_json reads it (same expectation,
/// so the same error for a value that is no string).
struct RawText;

impl<'de> DeserializeSeed<'de> for RawText {
    type Value = String;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<String, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl Visitor<'_> for RawText {
    type Value = String;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("raw value")
    }

    fn visit_str<E>(self, text: &str) -> Result<String, E> {
        Ok(text.to_string())
    }
}

#[cfg(test)]
mod tests;
