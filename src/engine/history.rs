//! The audit trail: an opt-in per-instance history of the events as received (where each came
//! from, its event time, its name and its whole payload as compact JSON) and of the operator
//! commands applied to the instance. It is off by default (`EngineConfig::history_limit` 0),
//! so replay and benchmarks pay nothing; when on, it lives in the instance's optional extras,
//! keeps the latest `history_limit` entries per instance and counts the ones it dropped.

use super::correlate::Origin;
use super::instance::Instance;
use crate::time::Millis;
use serde::{Deserialize, Serialize};

/// One entry of an instance's history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum HistoryEntry {
    /// A flow event routed to the instance (duplicates and late ones included).
    Event(ReceivedEvent),
    /// An operator command applied to the instance.
    Operator(OperatorEntry),
}

/// An event as received.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceivedEvent {
    /// Topic (interned), partition and offset of the record.
    pub origin: Origin,
    /// Event time.
    pub time: Millis,
    /// Index of the event in its flow.
    pub event: u16,
    /// The whole record value as compact JSON.
    pub payload: Box<str>,
}

/// What an operator asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum OperatorCommand {
    Retry,
    Resolve,
    Cancel,
}

impl OperatorCommand {
    /// The command as named in signals and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            OperatorCommand::Retry => "retry",
            OperatorCommand::Resolve => "resolve",
            OperatorCommand::Cancel => "cancel",
        }
    }
}

/// An operator command as recorded on the instance.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperatorEntry {
    pub command: OperatorCommand,
    /// When the operator asked (the command's own time, not the event clock).
    pub time: Millis,
    /// The caller's request id (also part of the signal ids).
    pub request_id: Box<str>,
    /// The step it concerned, if any.
    pub step: Option<u16>,
    /// The operator's note.
    pub note: Option<Box<str>>,
    /// What it did, for people (`ran retry-payment (attempt 2)`, `nothing to resolve`).
    pub outcome: Box<str>,
}

impl Instance {
    /// Appends a history entry, keeping at most `limit` (0: history is off, nothing is kept).
    pub fn push_history(&mut self, entry: HistoryEntry, limit: usize) {
        if limit == 0 {
            return;
        }
        let extras = self.extras.get_or_insert_with(Box::default);
        if extras.history.len() >= limit {
            let excess = extras.history.len() + 1 - limit;
            extras.history.drain(..excess);
            extras.history_dropped = extras.history_dropped.saturating_add(excess as u32);
        }
        extras.history.push(entry);
    }

    /// The kept history, oldest first, and how many older entries were dropped.
    pub fn history(&self) -> (&[HistoryEntry], u32) {
        self.extras.as_ref().map_or((&[], 0), |extras| {
            (extras.history.as_slice(), extras.history_dropped)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::instance::{Status, Watch};

    fn entry(offset: i64) -> HistoryEntry {
        HistoryEntry::Event(ReceivedEvent {
            origin: Origin {
                topic: 0,
                partition: 0,
                offset,
            },
            time: offset,
            event: 0,
            payload: "{}".into(),
        })
    }

    #[test]
    fn history_keeps_the_latest_entries_and_counts_the_dropped() {
        let mut instance = Instance {
            flow: 0,
            status: Status::Open,
            received: 0,
            key: "k".into(),
            started: 0,
            last_event: 0,
            steps: Box::default(),
            deadline: Watch::default(),
            stuck: Watch::default(),
            seen_ids: Box::default(),
            payloads: None,
            extras: None,
        };
        instance.push_history(entry(0), 0);
        assert!(instance.extras.is_none(), "history off allocates nothing");
        for offset in 0..5 {
            instance.push_history(entry(offset), 3);
        }
        let (kept, dropped) = instance.history();
        assert_eq!(kept, &[entry(2), entry(3), entry(4)]);
        assert_eq!(dropped, 2);
    }
}
