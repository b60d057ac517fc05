//! The forms a checkpoint stores outbox records in. A block (what checkpoints write now): a `1`
//! byte, then every record the checkpoint added, with its sequence number, in postcard, under
//! one key (one B-tree insert instead of one per record: a checkpoint during a catch-up held
//! 200 k records not yet acknowledged, and inserting them one by one was most of its 2.5 s). A
//! single record (checkpoints before blocks): a `0` byte, then the record in postcard with its
//! payload as raw bytes; or JSON (it starts with `{`), older still. A signal's payload is JSON
//! text, and storing it inside JSON escaped every quote on the way in and unescaped it on the
//! way out (BENCHMARKS.md). Every form is read.

use super::OutRecord;
use crate::time::Millis;
use std::borrow::Cow;
use std::sync::Arc;

/// The first byte of the binary form of a single record (JSON text never starts with it).
const BINARY: u8 = 0;
/// The first byte of a block.
const BLOCK: u8 = 1;

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

impl<'a> Stored<'a> {
    fn of(record: &'a OutRecord) -> Stored<'a> {
        Stored {
            topic: Cow::Borrowed(&record.topic),
            key: record.key.as_deref().map(Cow::Borrowed),
            payload: Cow::Borrowed(&record.payload),
            headers: record
                .headers
                .iter()
                .map(|(name, value)| (Cow::Borrowed(name.as_ref()), Cow::Borrowed(value.as_ref())))
                .collect(),
            timestamp: record.timestamp,
        }
    }

    fn into_record(self) -> OutRecord {
        OutRecord {
            topic: Arc::from(self.topic.as_ref()),
            key: self.key.map(Cow::into_owned),
            payload: self.payload.into_owned(),
            headers: self
                .headers
                .into_iter()
                .map(|(name, value)| (Cow::Owned(name.into_owned()), Cow::Owned(value.into_owned())))
                .collect(),
            timestamp: self.timestamp,
        }
    }
}

impl OutRecord {
    /// The record as a checkpoint stored it one per key (the form before blocks; tests write it
    /// to check that it is still read).
    pub fn to_stored(&self) -> Vec<u8> {
        // The marker is a `u8`, which postcard writes as that one byte. Every field has a
        // postcard form, so this cannot fail.
        postcard::to_allocvec(&(BINARY, Stored::of(self))).unwrap_or_default()
    }

    /// A record as a checkpoint stored it one per key, in either form.
    pub fn from_stored(bytes: &[u8]) -> Result<OutRecord, String> {
        match bytes.split_first() {
            Some((&BINARY, rest)) => {
                let stored: Stored<'_> = postcard::from_bytes(rest).map_err(|error| error.to_string())?;
                Ok(stored.into_record())
            }
            _ => serde_json::from_slice(bytes).map_err(|error| error.to_string()),
        }
    }

    /// Records with their sequence numbers as one block.
    pub fn block_to_stored(records: &[(u64, &OutRecord)]) -> Vec<u8> {
        let stored: Vec<(u64, Stored<'_>)> = records
            .iter()
            .map(|(seq, record)| (*seq, Stored::of(record)))
            .collect();
        // Sized up front (payloads plus room for the rest), written through `io::Write`, which
        // copies each field as a slice: a block holds up to a mebibyte.
        let room: usize = records
            .iter()
            .map(|(_, record)| record.payload.len() + 128)
            .sum();
        let mut bytes = Vec::with_capacity(room + 16);
        match postcard::to_io(&(BLOCK, stored), &mut bytes) {
            Ok(_) => bytes,
            // Writing into a Vec cannot fail, and every field has a postcard form.
            Err(_) => Vec::new(),
        }
    }

    /// The records of a block, with their sequence numbers.
    pub fn block_from_stored(bytes: &[u8]) -> Result<Vec<(u64, OutRecord)>, String> {
        match bytes.split_first() {
            Some((&BLOCK, rest)) => {
                let stored: Vec<(u64, Stored<'_>)> =
                    postcard::from_bytes(rest).map_err(|error| error.to_string())?;
                Ok(stored
                    .into_iter()
                    .map(|(seq, record)| (seq, record.into_record()))
                    .collect())
            }
            _ => Err("not a block of outbox records".to_string()),
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
    fn a_block_reads_back_exactly_and_a_damaged_one_is_an_error() {
        let first = record(br#"{"id":"1"}"#);
        let second = OutRecord { key: None, headers: Vec::new(), timestamp: None, ..record(b"\xff not UTF-8") };
        let stored = OutRecord::block_to_stored(&[(7, &first), (9, &second)]);
        assert_eq!(stored[0], BLOCK);
        assert_eq!(OutRecord::block_from_stored(&stored).unwrap(), vec![(7, first.clone()), (9, second)]);
        assert_eq!(OutRecord::block_from_stored(&OutRecord::block_to_stored(&[])).unwrap(), Vec::new());
        for cut in [1, 2, stored.len() / 2, stored.len() - 1] {
            assert!(OutRecord::block_from_stored(&stored[..cut]).is_err(), "cut at {cut}");
        }
        assert!(OutRecord::block_from_stored(&first.to_stored()).is_err(), "a single record is not a block");
        assert!(OutRecord::block_from_stored(b"").is_err());
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
