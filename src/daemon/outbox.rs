//! The outbox: records to publish (signals, alerts, action records, dead letters) from the
//! moment the engine decides them until the broker acknowledges them.
//!
//! Each entry has a sequence number. Entries are sent in order, marked in flight, removed only
//! on acknowledgement, and sent again after a failure (with a back-off). Checkpoints persist the
//! entries added and forget the ones acknowledged since the previous checkpoint, so a crash
//! re-sends exactly what was not acknowledged (with the same CloudEvents ids). Pure: the shell
//! does the sending and tells the outcome.

mod stored;

use crate::time::Millis;
use std::borrow::Cow;
use std::collections::{BTreeSet, VecDeque};
use std::sync::Arc;

/// A header name or value: most are fixed texts, which then cost no allocation per record.
pub type HeaderText = Cow<'static, str>;

/// One record to publish. Topics and fixed header texts are shared, not copied per record; a
/// checkpoint stores them as plain strings either way.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct OutRecord {
    pub topic: Arc<str>,
    pub key: Option<String>,
    /// Stored in checkpoints as a JSON string when it is UTF-8 (signals and action records
    /// always are), else as an array of bytes; both forms are read.
    #[serde(with = "payload_form")]
    pub payload: Vec<u8>,
    pub headers: Vec<(HeaderText, HeaderText)>,
    /// The record timestamp (CreateTime), epoch ms.
    pub timestamp: Option<Millis>,
}

/// The checkpoint form of a payload: text when it is UTF-8 (a fourth of the size of an array
/// of numbers, and faster to write and read), bytes otherwise.
mod payload_form {
    use serde::de::{Deserializer, SeqAccess, Visitor};
    use serde::Serializer;

    pub fn serialize<S: Serializer>(payload: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        match std::str::from_utf8(payload) {
            Ok(text) => serializer.serialize_str(text),
            Err(_) => serializer.collect_seq(payload),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
        struct Form;
        impl<'de> Visitor<'de> for Form {
            type Value = Vec<u8>;
            fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
                formatter.write_str("a string or an array of bytes")
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Vec<u8>, E> {
                Ok(text.as_bytes().to_vec())
            }
            fn visit_string<E: serde::de::Error>(self, text: String) -> Result<Vec<u8>, E> {
                Ok(text.into_bytes())
            }
            fn visit_bytes<E: serde::de::Error>(self, bytes: &[u8]) -> Result<Vec<u8>, E> {
                Ok(bytes.to_vec())
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<u8>, A::Error> {
                let mut bytes = Vec::with_capacity(seq.size_hint().unwrap_or(0));
                while let Some(byte) = seq.next_element::<u8>()? {
                    bytes.push(byte);
                }
                Ok(bytes)
            }
        }
        deserializer.deserialize_any(Form)
    }
}

#[derive(Debug)]
struct Entry {
    /// Shared with the thread that hands it to the producer while it is in flight.
    record: Arc<OutRecord>,
    in_flight: bool,
}

/// See the module documentation.
#[derive(Debug, Default)]
pub struct Outbox {
    next_seq: u64,
    /// The entries by sequence number, from `first_seq` (the oldest not acknowledged) up to
    /// `next_seq`: acknowledged ones leave a gap until those before them are acknowledged too.
    /// Entries are added in order and mostly acknowledged in order, so this costs an index
    /// per lookup (a `BTreeMap` keyed by sequence number was a tenth of the worker's time
    /// with a backlog of signals to publish).
    entries: VecDeque<Option<Entry>>,
    first_seq: u64,
    /// Entries not acknowledged.
    live: usize,
    /// Entries to send, in order (failed ones come back at their retry time).
    ready: VecDeque<u64>,
    retry: BTreeSet<(Millis, u64)>,
    /// Changes since the last checkpoint.
    added: Vec<u64>,
    removed: Vec<u64>,
    /// Payload bytes held.
    bytes: usize,
    /// Figures for metrics.
    pub acknowledged: u64,
    pub failures: u64,
}

/// What a checkpoint must write for the outbox. The records added are shared, not copied: the
/// store's writer thread encodes them.
pub struct OutboxChanges {
    pub added: Vec<(u64, Arc<OutRecord>)>,
    pub removed: Vec<u64>,
}

impl Outbox {
    /// An outbox holding the entries of a restored checkpoint (all to be sent again).
    pub fn restore(mut entries: Vec<(u64, OutRecord)>) -> Outbox {
        entries.sort_by_key(|(seq, _)| *seq);
        entries.dedup_by_key(|(seq, _)| *seq);
        let mut outbox = Outbox::default();
        if let Some((first, _)) = entries.first() {
            outbox.first_seq = *first;
            outbox.next_seq = *first;
        }
        for (seq, record) in entries {
            // Acknowledged before the checkpoint: gaps.
            while outbox.next_seq < seq {
                outbox.entries.push_back(None);
                outbox.next_seq += 1;
            }
            outbox.bytes += record.payload.len();
            outbox.entries.push_back(Some(Entry {
                record: Arc::new(record),
                in_flight: false,
            }));
            outbox.next_seq += 1;
            outbox.live += 1;
            outbox.ready.push_back(seq);
        }
        outbox
    }

    fn entry(&self, seq: u64) -> Option<&Entry> {
        let index = usize::try_from(seq.checked_sub(self.first_seq)?).ok()?;
        self.entries.get(index)?.as_ref()
    }

    fn entry_mut(&mut self, seq: u64) -> Option<&mut Entry> {
        let index = usize::try_from(seq.checked_sub(self.first_seq)?).ok()?;
        self.entries.get_mut(index)?.as_mut()
    }

    /// Queues a record.
    pub fn push(&mut self, record: OutRecord) -> u64 {
        let seq = self.next_seq;
        if self.entries.is_empty() {
            self.first_seq = seq;
        }
        self.next_seq += 1;
        self.bytes += record.payload.len();
        self.entries.push_back(Some(Entry {
            record: Arc::new(record),
            in_flight: false,
        }));
        self.live += 1;
        self.ready.push_back(seq);
        self.added.push(seq);
        seq
    }

    /// The topic of an entry.
    pub fn topic(&self, seq: u64) -> Option<&str> {
        self.entry(seq).map(|entry| &*entry.record.topic)
    }

    /// Payload bytes of the entries not yet acknowledged.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Entries not yet acknowledged.
    pub fn len(&self) -> usize {
        self.live
    }

    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// The next entry to send now, marked in flight.
    pub fn next_to_send(&mut self, now: Millis) -> Option<(u64, Arc<OutRecord>)> {
        while let Some(&(due, seq)) = self.retry.first() {
            if due > now {
                break;
            }
            self.retry.remove(&(due, seq));
            self.ready.push_front(seq);
        }
        loop {
            let seq = self.ready.pop_front()?;
            if let Some(entry) = self.entry_mut(seq) {
                if !entry.in_flight {
                    entry.in_flight = true;
                    return Some((seq, entry.record.clone()));
                }
            }
        }
    }

    /// The producer could not take it right now (its queue is full): try it first next time.
    pub fn not_taken(&mut self, seq: u64) {
        if let Some(entry) = self.entry_mut(seq) {
            entry.in_flight = false;
            self.ready.push_front(seq);
        }
    }

    /// The broker acknowledged it: the entry is removed and returned (for counting by topic).
    pub fn acknowledged(&mut self, seq: u64) -> Option<Arc<OutRecord>> {
        let index = usize::try_from(seq.checked_sub(self.first_seq)?).ok()?;
        let entry = self.entries.get_mut(index)?.take()?;
        while let Some(None) = self.entries.front() {
            self.entries.pop_front();
            self.first_seq += 1;
        }
        self.live -= 1;
        self.bytes -= entry.record.payload.len();
        self.acknowledged += 1;
        self.removed.push(seq);
        Some(entry.record)
    }

    /// Delivery failed: send it again at `retry_at`.
    pub fn failed(&mut self, seq: u64, retry_at: Millis) {
        if let Some(entry) = self.entry_mut(seq) {
            entry.in_flight = false;
            self.failures += 1;
            self.retry.insert((retry_at, seq));
        }
    }

    /// Whether anything is in flight.
    pub fn in_flight(&self) -> usize {
        self.entries.iter().flatten().filter(|entry| entry.in_flight).count()
    }

    /// The changes since the previous checkpoint. Entries added and acknowledged in between
    /// are never written. Call [`Outbox::changes_written`] once they are durable.
    pub fn changes(&self) -> OutboxChanges {
        let removed_set: BTreeSet<u64> = self.removed.iter().copied().collect();
        let added_set: BTreeSet<u64> = self.added.iter().copied().collect();
        let added = self
            .added
            .iter()
            .filter(|seq| !removed_set.contains(seq))
            .filter_map(|seq| self.entry(*seq).map(|entry| (*seq, entry.record.clone())))
            .collect();
        let removed = self
            .removed
            .iter()
            .copied()
            .filter(|seq| !added_set.contains(seq))
            .collect();
        OutboxChanges { added, removed }
    }

    /// The changes returned by [`Outbox::changes`] are durable: forget them. `marks` are the
    /// lengths of the two change lists when they were taken (later changes stay).
    pub fn changes_written(&mut self, marks: (usize, usize)) {
        self.added.drain(..marks.0.min(self.added.len()));
        self.removed.drain(..marks.1.min(self.removed.len()));
    }

    /// The current lengths of the change lists (see [`Outbox::changes_written`]).
    pub fn change_marks(&self) -> (usize, usize) {
        (self.added.len(), self.removed.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(topic: &str) -> OutRecord {
        OutRecord {
            topic: Arc::from(topic),
            key: None,
            payload: b"{}".to_vec(),
            headers: Vec::new(),
            timestamp: None,
        }
    }

    #[test]
    fn payloads_are_stored_as_text_when_utf8_and_read_in_either_form() {
        let record = |payload: &[u8]| OutRecord {
            topic: Arc::from("t"),
            key: None,
            payload: payload.to_vec(),
            headers: Vec::new(),
            timestamp: None,
        };
        let text = serde_json::to_string(&record(br#"{"a":1}"#)).unwrap();
        assert!(text.contains(r#""payload":"{\"a\":1}""#), "{text}");
        assert_eq!(serde_json::from_str::<OutRecord>(&text).unwrap(), record(br#"{"a":1}"#));
        let binary = serde_json::to_string(&record(&[0xff, 0, 7])).unwrap();
        assert!(binary.contains(r#""payload":[255,0,7]"#), "{binary}");
        assert_eq!(serde_json::from_str::<OutRecord>(&binary).unwrap(), record(&[0xff, 0, 7]));
        // Checkpoints written before payloads were stored as text.
        let old = r#"{"topic":"t","key":null,"payload":[123,125],"headers":[],"timestamp":null}"#;
        assert_eq!(serde_json::from_str::<OutRecord>(old).unwrap(), record(b"{}"));
    }

    #[test]
    fn entries_leave_only_when_acknowledged_and_failures_are_retried() {
        let mut outbox = Outbox::default();
        let a = outbox.push(record("a"));
        let b = outbox.push(record("b"));
        assert_eq!(outbox.next_to_send(0).map(|(seq, _)| seq), Some(a));
        assert_eq!(outbox.next_to_send(0).map(|(seq, _)| seq), Some(b));
        assert!(outbox.next_to_send(0).is_none(), "both in flight");
        outbox.acknowledged(a);
        outbox.failed(b, 100);
        assert_eq!(outbox.len(), 1);
        assert!(outbox.next_to_send(99).is_none(), "b waits for its back-off");
        assert_eq!(outbox.next_to_send(100).map(|(seq, _)| seq), Some(b));
        outbox.not_taken(b);
        assert_eq!(outbox.next_to_send(100).map(|(seq, _)| seq), Some(b));
    }

    #[test]
    fn checkpoints_write_only_what_changed() {
        let mut outbox = Outbox::default();
        let a = outbox.push(record("a"));
        let b = outbox.push(record("b"));
        outbox.next_to_send(0);
        outbox.acknowledged(a);
        let marks = outbox.change_marks();
        let changes = outbox.changes();
        assert_eq!(changes.added.iter().map(|(seq, _)| *seq).collect::<Vec<_>>(), [b]);
        assert!(changes.removed.is_empty(), "a was never written");
        outbox.changes_written(marks);
        outbox.next_to_send(0);
        outbox.acknowledged(b);
        let changes = outbox.changes();
        assert!(changes.added.is_empty());
        assert_eq!(changes.removed, [b]);
    }

    /// Acknowledgements come per partition, so out of order: each entry leaves alone, the
    /// others stay reachable by their numbers, and an acknowledgement repeated or for an
    /// unknown number changes nothing.
    #[test]
    fn acknowledgements_out_of_order_remove_only_their_entries() {
        let mut outbox = Outbox::restore(vec![(7, record("c")), (4, record("a")), (5, record("b"))]);
        let d = outbox.push(record("d"));
        assert_eq!(d, 8, "numbered after the highest restored");
        while outbox.next_to_send(0).is_some() {}
        assert_eq!(outbox.in_flight(), 4);
        assert!(outbox.acknowledged(5).is_some());
        assert!(outbox.acknowledged(5).is_none(), "already gone");
        assert!(outbox.acknowledged(6).is_none(), "never there");
        assert!(outbox.acknowledged(3).is_none(), "below the oldest");
        assert_eq!(outbox.len(), 3);
        assert_eq!(outbox.topic(4), Some("a"));
        assert!(outbox.acknowledged(4).is_some());
        assert_eq!((outbox.topic(7), outbox.topic(8)), (Some("c"), Some("d")));
        outbox.failed(8, 10);
        assert_eq!(outbox.next_to_send(10).map(|(seq, _)| seq), Some(8));
        assert!(outbox.acknowledged(8).is_some());
        assert!(outbox.acknowledged(7).is_some());
        assert!(outbox.is_empty());
        assert_eq!(outbox.push(record("e")), 9, "numbering goes on after the outbox emptied");
        assert_eq!(outbox.topic(9), Some("e"));
    }

    #[test]
    fn a_restored_outbox_sends_everything_again_and_numbers_on() {
        let mut outbox = Outbox::restore(vec![(4, record("x")), (7, record("y"))]);
        assert_eq!(outbox.next_to_send(0).map(|(seq, _)| seq), Some(4));
        assert_eq!(outbox.push(record("z")), 8);
        assert!(outbox.changes().added.iter().all(|(seq, _)| *seq == 8));
    }
}
