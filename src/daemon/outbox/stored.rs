//! The form a checkpoint stores an outbox record in: a `0` byte, then the record in postcard
//! with its payload as raw bytes. A signal's payload is JSON text, and storing it inside JSON
//! (the form before) escaped every quote on the way in and unescaped it on the way out, which
//! made the outbox most of a checkpoint's cost while the daemon catches up (BENCHMARKS.md). Both
//! forms are read: JSON (it starts with `{`) from older checkpoints.

use super::OutRecord;
use crate::time::Millis;
use std::borrow::Cow;
use std::sync::Arc;

/// The first byte of the binary form (JSON text never starts with it).
const BINARY: u8 = 0;

#[derive(serde::Serialize, serde::Deserialize)]
struct Stored<'a> {
    #[serde(borrow)]
    topic: Cow<'a, str>,
    #[serde(borrow)]
    key: Option<Cow<'a, str>>,
    #[serde(borrow, with = "serde_bytes")]
    payload: Cow<'a, [u8]>,
    #[serde(borrow)]
    headers: Vec<(Cow<'a, str>, Cow<'a, str>)>,
    timestamp: Option<Millis>,
}

impl OutRecord {
    /// The record as a checkpoint stores it.
    pub fn to_stored(&self) -> Vec<u8> {
        let stored = Stored {
            topic: Cow::Borrowed(&self.topic),
            key: self.key.as_deref().map(Cow::Borrowed),
            payload: Cow::Borrowed(&self.payload),
            headers: self
                .headers
                .iter()
                .map(|(name, value)| (Cow::Borrowed(name.as_ref()), Cow::Borrowed(value.as_ref())))
                .collect(),
            timestamp: self.timestamp,
        };
        let mut bytes = Vec::with_capacity(self.payload.len() + 256);
        bytes.push(BINARY);
        // Writing into a Vec cannot fail, and every field has a postcard form.
        postcard::to_extend(&stored, bytes).unwrap_or_default()
    }

    /// A record as a checkpoint stored it, in either form.
    pub fn from_stored(bytes: &[u8]) -> Result<OutRecord, String> {
        match bytes.split_first() {
            Some((&BINARY, rest)) => {
                let stored: Stored<'_> = postcard::from_bytes(rest).map_err(|error| error.to_string())?;
                Ok(OutRecord {
                    topic: Arc::from(stored.topic.as_ref()),
                    key: stored.key.map(Cow::into_owned),
                    payload: stored.payload.into_owned(),
                    headers: stored
                        .headers
                        .into_iter()
                        .map(|(name, value)| (Cow::Owned(name.into_owned()), Cow::Owned(value.into_owned())))
                        .collect(),
                    timestamp: stored.timestamp,
                })
            }
            _ => serde_json::from_slice(bytes).map_err(|error| error.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(payload: &[u8]) -> OutRecord {
        OutRecord {
            topic: Arc::from("flowwatch.signals"),
            key: Some("order-1".to_string()),
            payload: payload.to_vec(),
            headers: vec![
                (Cow::Borrowed("ce_id"), Cow::Owned("abc".to_string())),
                (Cow::Borrowed("content-type"), Cow::Borrowed("application/cloudevents+json")),
            ],
            timestamp: Some(1_767_225_600_000),
        }
    }

    #[test]
    fn the_binary_form_reads_back_exactly() {
        for payload in [&br#"{"id":"x","data":{"quote":"\"q\""}}"#[..], b"", b"\xff\x00\xfe not UTF-8"] {
            let original = record(payload);
            let stored = original.to_stored();
            assert_eq!(stored[0], BINARY);
            assert_eq!(OutRecord::from_stored(&stored).unwrap(), original);
        }
        let bare = OutRecord { key: None, headers: Vec::new(), timestamp: None, ..record(b"{}") };
        assert_eq!(OutRecord::from_stored(&bare.to_stored()).unwrap(), bare);
    }

    #[test]
    fn the_json_form_of_older_checkpoints_still_reads() {
        let original = record(br#"{"a":"b"}"#);
        let json = serde_json::to_vec(&original).unwrap();
        assert_eq!(OutRecord::from_stored(&json).unwrap(), original);
    }

    #[test]
    fn a_damaged_record_is_an_error_not_a_panic() {
        let stored = record(br#"{"a":1}"#).to_stored();
        for cut in [1, 2, stored.len() / 2, stored.len() - 1] {
            assert!(OutRecord::from_stored(&stored[..cut]).is_err(), "cut at {cut}");
        }
        assert!(OutRecord::from_stored(b"").is_err());
        assert!(OutRecord::from_stored(b"{not json").is_err());
    }
}
