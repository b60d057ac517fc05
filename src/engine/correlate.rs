//! Correlation: which flow events a record is, and the business key, event time, event id and
//! links of each. Matchers and paths were compiled with the flows; per record this module does
//! one topic lookup and walks only the events declared on that topic, allocating nothing for
//! records no flow wants.

use crate::flow::path::Found;
use crate::flow::{EventDef, Flow};
use crate::record::Record;
use crate::time::Millis;
use std::borrow::Cow;
use hashbrown::HashMap;

/// Where a record came from, kept with held events for deviation ids and the audit trail.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Origin {
    /// Interned topic id (see [`TopicIndex::topic_name`]).
    pub topic: u32,
    pub partition: i32,
    pub offset: i64,
}

/// One flow event recognised in a record.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Occurrence<'r> {
    pub flow: u16,
    pub event: u16,
    /// The routing value: the business key, or the alias value for events with `alias`.
    pub key: Cow<'r, str>,
    /// Event time.
    pub time: Millis,
    /// Hash of the event id, if it has one.
    pub id: Option<u64>,
    /// The part of the payload the flow keeps (see `Keep`), as compact JSON.
    pub payload: Option<Box<str>>,
    /// Alias values this event links to its instance.
    pub links: Vec<(u16, Cow<'r, str>)>,
    pub origin: Origin,
    /// Its time lay too far in the future and was replaced by the wall-clock time (live only).
    /// Fields are never skipped when serialising: checkpoints are not self-describing.
    #[serde(default)]
    pub skewed: bool,
    /// The whole record value as compact JSON, for the audit trail (only when it is on).
    #[serde(default)]
    pub raw: Option<Box<str>>,
}

impl Occurrence<'_> {
    /// An owned copy for holding (orphans).
    pub fn into_owned(self) -> Occurrence<'static> {
        Occurrence {
            key: Cow::Owned(self.key.into_owned()),
            links: self
                .links
                .into_iter()
                .map(|(alias, value)| (alias, Cow::Owned(value.into_owned())))
                .collect(),
            ..self
        }
    }
}

/// Why a matched record cannot be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Invalid {
    /// The key path is absent, empty, or not a string or number.
    MissingKey,
    /// The time path is present but not an RFC 3339 string or epoch milliseconds.
    BadTime,
}

impl Invalid {
    /// Stable code for counters and dead-letter headers.
    pub fn code(&self) -> &'static str {
        match self {
            Invalid::MissingKey => "missing_key",
            Invalid::BadTime => "bad_time",
        }
    }
}

/// A record's matches.
#[derive(Clone, Debug)]
pub enum Match<'r> {
    Valid(Occurrence<'r>),
    Invalid { flow: u16, event: u16, why: Invalid },
}

impl Match<'_> {
    /// An owned copy, independent of the record it was found in.
    pub fn into_owned(self) -> Match<'static> {
        match self {
            Match::Valid(occurrence) => Match::Valid(occurrence.into_owned()),
            Match::Invalid { flow, event, why } => Match::Invalid { flow, event, why },
        }
    }
}

/// Correlation apart from the engine: the same matching as the engine's own, for a shell
/// that recognises records before handing them over (replay does it on its decoding thread,
/// see `Input::CorrelatedRecordReceived`). Built from an engine ([`crate::engine::Engine::correlator`]),
/// it holds that engine's flows and an identical topic index, so its matches are the ones the
/// engine would find.
pub struct Correlator {
    flows: std::sync::Arc<[Flow]>,
    topics: TopicIndex,
    /// Whether the audit trail is on (`EngineConfig::history_limit` > 0).
    audit: bool,
}

impl Correlator {
    pub(super) fn new(flows: std::sync::Arc<[Flow]>, audit: bool) -> Correlator {
        let topics = TopicIndex::new(&flows);
        Correlator { flows, topics, audit }
    }

    /// Every flow event the record is, as the engine would match it (with the audit trail's
    /// copy of the value, see [`attach_audit`]).
    pub fn matches<'r>(&self, record: &'r Record<'_>) -> Vec<Match<'r>> {
        let mut out = Vec::new();
        self.topics.matches(&self.flows, record, &mut out);
        if self.audit {
            attach_audit(record, &mut out);
        }
        out
    }
}

/// Gives every valid match the record's whole value as compact JSON (`Occurrence::raw`), for
/// the audit trail: rendered once per record, where the matching runs (so a shell that matches
/// ahead of the engine, on another thread or while it holds the record, renders it there and
/// need not keep the parsed value), and not at all for a record no flow can use.
pub(super) fn attach_audit(record: &Record<'_>, matches: &mut [Match<'_>]) {
    let mut valid = matches
        .iter_mut()
        .filter_map(|found| match found {
            Match::Valid(occurrence) => Some(occurrence),
            Match::Invalid { .. } => None,
        })
        .peekable();
    if valid.peek().is_none() {
        return;
    }
    let raw: Box<str> = record.value.to_text().into_boxed_str();
    for occurrence in valid {
        occurrence.raw = Some(raw.clone());
    }
}

struct TopicEntry {
    id: u32,
    /// Per flow that reads the topic, its events on it in file order.
    flows: Vec<(u16, Vec<u16>)>,
}

/// Topic → candidate events, built once from the flows.
pub struct TopicIndex {
    by_topic: HashMap<String, TopicEntry>,
    /// Interned names by id: the flows' topics first, then topics no flow reads any more that
    /// restored state still mentions (see [`TopicIndex::intern`]).
    names: Vec<String>,
    /// How many of `names` the flows read.
    read: usize,
}

impl TopicIndex {
    /// Indexes the events of all flows by topic.
    pub fn new(flows: &[Flow]) -> TopicIndex {
        let mut by_topic: HashMap<String, TopicEntry> = HashMap::new();
        let mut names = Vec::new();
        for (flow_idx, flow) in flows.iter().enumerate() {
            for (event_idx, event) in flow.def.events.iter().enumerate() {
                let entry = by_topic.entry(event.topic.clone()).or_insert_with(|| {
                    names.push(event.topic.clone());
                    TopicEntry {
                        id: names.len() as u32 - 1,
                        flows: Vec::new(),
                    }
                });
                match entry.flows.last_mut() {
                    Some((last, events)) if usize::from(*last) == flow_idx => {
                        events.push(event_idx as u16)
                    }
                    _ => entry.flows.push((flow_idx as u16, vec![event_idx as u16])),
                }
            }
        }
        let read = names.len();
        TopicIndex { by_topic, names, read }
    }

    /// The id of a topic name, interning it when no flow reads it (a held event or an audit
    /// trail restored from before the flows changed); such topics are never subscribed to.
    pub fn intern(&mut self, name: &str) -> u32 {
        if let Some(entry) = self.by_topic.get(name) {
            return entry.id;
        }
        match self.names[self.read..].iter().position(|known| known == name) {
            Some(extra) => (self.read + extra) as u32,
            None => {
                self.names.push(name.to_string());
                self.names.len() as u32 - 1
            }
        }
    }

    /// Every interned name, by id (the flows' topics and restored ones).
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The topic's name by interned id.
    pub fn topic_name(&self, id: u32) -> &str {
        self.names.get(id as usize).map_or("", String::as_str)
    }

    /// Every topic any flow reads, in first-declared order.
    pub fn topics(&self) -> &[String] {
        &self.names[..self.read]
    }

    /// Matches a record against every flow: per flow, the first event in file order whose
    /// matchers all hold.
    pub fn matches<'r>(&self, flows: &[Flow], record: &'r Record<'_>, out: &mut Vec<Match<'r>>) {
        let Some(entry) = self.by_topic.get(record.topic.as_str()) else {
            return;
        };
        // At most one match per flow; most records match one (no room for four).
        out.reserve_exact(entry.flows.len());
        for (flow_idx, events) in &entry.flows {
            let flow = &flows[usize::from(*flow_idx)];
            let found = events
                .iter()
                .find(|&&event| is_match(&flow.def.events[usize::from(event)], record));
            if let Some(&event_idx) = found {
                let origin = Origin {
                    topic: entry.id,
                    partition: record.partition,
                    offset: record.offset,
                };
                out.push(occurrence(flow, *flow_idx, event_idx, record, origin));
            }
        }
    }
}

fn is_match(event: &EventDef, record: &Record<'_>) -> bool {
    event
        .matchers
        .iter()
        .all(|matcher| match matcher.path.resolve(record) {
            Some(found) => matcher.allowed.iter().any(|allowed| found.equals(allowed)),
            None => false,
        })
}

fn occurrence<'r>(
    flow: &Flow,
    flow_idx: u16,
    event_idx: u16,
    record: &'r Record<'_>,
    origin: Origin,
) -> Match<'r> {
    let event = &flow.def.events[usize::from(event_idx)];
    let invalid = |why| Match::Invalid {
        flow: flow_idx,
        event: event_idx,
        why,
    };
    let Some(key) = event.key.resolve(record).and_then(|found| found.as_key()) else {
        return invalid(Invalid::MissingKey);
    };
    let time = match &event.time {
        None => record.timestamp,
        Some(path) => match path.resolve(record) {
            None => record.timestamp,
            Some(found) => match found.as_time() {
                Some(time) => time,
                None => return invalid(Invalid::BadTime),
            },
        },
    };
    let id = match &event.id {
        Some(path) => path.resolve(record).and_then(|found| id_hash(found)),
        None => cloudevents_id(record),
    };
    let links = event
        .links
        .iter()
        .filter_map(|link| Some((link.alias as u16, link.path.resolve(record)?.as_key()?)))
        .collect();
    let payload = flow.keep[usize::from(event_idx)].project(&record.value);
    Match::Valid(Occurrence {
        flow: flow_idx,
        event: event_idx,
        key,
        time,
        id,
        payload,
        links,
        origin,
        skewed: false,
        raw: None,
    })
}

/// The CloudEvents id: payload `id` when `specversion` is present (structured mode), else the
/// `ce_id` header (binary mode).
fn cloudevents_id(record: &Record<'_>) -> Option<u64> {
    if record.value.get("specversion").is_some() {
        if let Some(id) = record.value.get("id") {
            return id_hash(Found::Json(id));
        }
    }
    record
        .header("ce_id")
        .and_then(|id| id_hash(Found::Text(id)))
}

fn id_hash(found: Found<'_>) -> Option<u64> {
    let text = found.as_key()?;
    Some(xxhash_rust::xxh3::xxh3_64(text.as_bytes()))
}
