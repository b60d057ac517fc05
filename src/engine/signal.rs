//! Signals: everything the engine says about instances, as CloudEvents 1.0 structured-mode
//! JSON. Ids are name-based UUIDs (version 8, RFC 9562) whose 122 free bits are a 128-bit
//! XXH3 hash of the signal's identity (flow, key, instance start, kind, step, attempt, reason,
//! action and, for deviations, the record's coordinates), so a signal that is re-derived after
//! a restart carries the same id and two different signals never share one in practice.

pub use super::signal_id::{signal_id, IdPart, SignalId};
use crate::time::{write_rfc3339, Millis};
use serde::Serialize;
use serde_json::Value;
use std::sync::Arc;

/// The kinds of signal (SPEC 2); the CloudEvents `type` is `flowwatch.` + [`SignalKind::as_str`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SignalKind {
    Started,
    StepCompleted,
    Breached,
    Action,
    Resolved,
    Completed,
    Failed,
    Orphaned,
    Deviation,
}

impl SignalKind {
    /// The CloudEvents `type`.
    pub fn event_type(self) -> &'static str {
        match self {
            SignalKind::Started => "flowwatch.started",
            SignalKind::StepCompleted => "flowwatch.step_completed",
            SignalKind::Breached => "flowwatch.breached",
            SignalKind::Action => "flowwatch.action",
            SignalKind::Resolved => "flowwatch.resolved",
            SignalKind::Completed => "flowwatch.completed",
            SignalKind::Failed => "flowwatch.failed",
            SignalKind::Orphaned => "flowwatch.orphaned",
            SignalKind::Deviation => "flowwatch.deviation",
        }
    }

    /// The kind as written in `type` after `flowwatch.`.
    pub fn as_str(self) -> &'static str {
        match self {
            SignalKind::Started => "started",
            SignalKind::StepCompleted => "step_completed",
            SignalKind::Breached => "breached",
            SignalKind::Action => "action",
            SignalKind::Resolved => "resolved",
            SignalKind::Completed => "completed",
            SignalKind::Failed => "failed",
            SignalKind::Orphaned => "orphaned",
            SignalKind::Deviation => "deviation",
        }
    }
}

/// Why a breach, resolution or deviation happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reason {
    Sla,
    Deadline,
    Stuck,
    OutOfOrder,
    LateEvent,
    Duplicate,
    Repeated,
    ConditionError,
    ClockSkew,
    /// An operator command (`action` triggers, `failed` by cancel).
    Operator,
}

impl Reason {
    /// The reason as written in `data.reason`.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Sla => "sla",
            Reason::Deadline => "deadline",
            Reason::Stuck => "stuck",
            Reason::OutOfOrder => "out_of_order",
            Reason::LateEvent => "late_event",
            Reason::Duplicate => "duplicate",
            Reason::Repeated => "repeated",
            Reason::ConditionError => "condition_error",
            Reason::ClockSkew => "clock_skew",
            Reason::Operator => "operator",
        }
    }
}

impl Serialize for Reason {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// One signal.
#[derive(Clone, Debug, PartialEq)]
pub struct Signal {
    /// Deterministic CloudEvents id.
    pub id: SignalId,
    /// What happened.
    pub kind: SignalKind,
    /// `flowwatch/` + instance name.
    pub source: Arc<str>,
    /// The business key (or, for `orphaned`, the key or alias value the events were held under).
    pub subject: Arc<str>,
    /// Logical event time at which it happened (a breach: its deadline).
    pub time: Millis,
    /// True when the built-in `alert` action ran for it: it also goes to the alerts topic.
    pub alert: bool,
    /// Event time the subject took, for metrics; not part of the JSON. `step_completed` (not
    /// skipped): from the step opening to its completion; `completed`, `failed`: from the
    /// instance's start to its end; otherwise `None`.
    pub duration: Option<Millis>,
    /// The `data` object.
    pub data: SignalData,
}

/// The `data` of a signal. The first six fields are always present; the rest only where they
/// apply to the kind.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SignalData {
    pub flow: Arc<str>,
    pub key: Arc<str>,
    pub step: Option<Arc<str>>,
    pub reason: Option<Reason>,
    pub attempt: Option<u32>,
    pub actions: Vec<Arc<str>>,
    /// `step_completed`: a breach of the step was signalled before it completed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub late: Option<bool>,
    /// `step_completed`: the step was skipped by its `when` condition.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<bool>,
    /// `action`: the declared action that ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<Arc<str>>,
    /// `action`: the breach that triggered it (`sla`, `deadline`, `stuck`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trigger: Option<Reason>,
    /// `action`: the record it published (`topic`, `key`, `value`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub record: Option<Value>,
    /// `failed`, `deviation`: the event name involved.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event: Option<Arc<str>>,
    /// `orphaned`: the alias the events were held under (absent: the primary key).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alias: Option<Arc<str>>,
    /// `orphaned`: how many events were held and dropped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub held: Option<u32>,
    /// `started` and later: when the instance started (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    /// `deviation`: human-readable detail (condition errors, clock skew).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// `breached` after the fact: true when it was noticed only when a later event arrived,
    /// and so ran no actions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after_the_fact: Option<bool>,
}

impl SignalData {
    /// Data with the required fields and nothing else.
    pub fn new(flow: Arc<str>, key: Arc<str>) -> SignalData {
        SignalData {
            flow,
            key,
            step: None,
            reason: None,
            attempt: None,
            actions: Vec::new(),
            late: None,
            skipped: None,
            action: None,
            trigger: None,
            record: None,
            event: None,
            alias: None,
            held: None,
            started_at: None,
            detail: None,
            after_the_fact: None,
        }
    }
}

/// The serde form of a signal; `write_json` writes the same bytes directly.
#[cfg(test)]
#[derive(Serialize)]
struct CloudEvent<'a> {
    specversion: &'static str,
    id: &'a str,
    source: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    subject: &'a str,
    time: String,
    datacontenttype: &'static str,
    data: &'a SignalData,
}

impl Signal {
    /// Appends the signal as one line of CloudEvents JSON (no trailing newline). Written
    /// directly rather than through serde (every record yields about one signal, and this was
    /// the largest single cost of replay); `write_json_matches_serde` checks that the bytes are
    /// exactly what serde would write for the same structure.
    pub fn write_json(&self, buffer: &mut Vec<u8>) {
        let data = &self.data;
        buffer.extend_from_slice(br#"{"specversion":"1.0","id":""#);
        buffer.extend_from_slice(self.id.text().as_bytes());
        buffer.extend_from_slice(br#"","source":"#);
        push_str(buffer, &self.source);
        buffer.extend_from_slice(br#","type":""#);
        buffer.extend_from_slice(self.kind.event_type().as_bytes());
        buffer.extend_from_slice(br#"","subject":"#);
        push_str(buffer, &self.subject);
        buffer.extend_from_slice(br#","time":""#);
        write_rfc3339(buffer, self.time);
        buffer.extend_from_slice(br#"","datacontenttype":"application/json","data":{"flow":"#);
        push_str(buffer, &data.flow);
        buffer.extend_from_slice(br#","key":"#);
        push_str(buffer, &data.key);
        buffer.extend_from_slice(br#","step":"#);
        push_opt_str(buffer, data.step.as_deref());
        buffer.extend_from_slice(br#","reason":"#);
        push_opt_str(buffer, data.reason.map(Reason::as_str));
        buffer.extend_from_slice(br#","attempt":"#);
        match data.attempt {
            Some(attempt) => push_number(buffer, u64::from(attempt)),
            None => buffer.extend_from_slice(b"null"),
        }
        buffer.extend_from_slice(br#","actions":["#);
        for (index, action) in data.actions.iter().enumerate() {
            if index > 0 {
                buffer.push(b',');
            }
            push_str(buffer, action);
        }
        buffer.push(b']');
        let flag = |buffer: &mut Vec<u8>, name: &str, value: Option<bool>| {
            if let Some(value) = value {
                push_field(buffer, name);
                buffer.extend_from_slice(if value { b"true" } else { b"false" });
            }
        };
        let text = |buffer: &mut Vec<u8>, name: &str, value: Option<&str>| {
            if let Some(value) = value {
                push_field(buffer, name);
                push_str(buffer, value);
            }
        };
        flag(buffer, "late", data.late);
        flag(buffer, "skipped", data.skipped);
        text(buffer, "action", data.action.as_deref());
        text(buffer, "trigger", data.trigger.map(Reason::as_str));
        if let Some(record) = &data.record {
            push_field(buffer, "record");
            // Writing a `Value` into a Vec cannot fail.
            serde_json::to_writer(&mut *buffer, record).expect("JSON value serialises");
        }
        text(buffer, "event", data.event.as_deref());
        text(buffer, "alias", data.alias.as_deref());
        if let Some(held) = data.held {
            push_field(buffer, "held");
            push_number(buffer, u64::from(held));
        }
        text(buffer, "started_at", data.started_at.as_deref());
        text(buffer, "detail", data.detail.as_deref());
        flag(buffer, "after_the_fact", data.after_the_fact);
        buffer.extend_from_slice(b"}}");
    }

    /// The signal as CloudEvents JSON.
    pub fn to_json(&self) -> String {
        let mut buffer = Vec::with_capacity(256);
        self.write_json(&mut buffer);
        String::from_utf8(buffer).unwrap_or_default()
    }
}

/// Appends a JSON string: as is when nothing needs escaping (the common case), else via serde.
fn push_str(buffer: &mut Vec<u8>, text: &str) {
    if !needs_escape(text.as_bytes()) {
        buffer.push(b'"');
        buffer.extend_from_slice(text.as_bytes());
        buffer.push(b'"');
    } else {
        // Writing a string into a Vec cannot fail.
        serde_json::to_writer(&mut *buffer, text).expect("string serialises");
    }
}

/// Whether a string needs JSON escaping (a control character, `"` or `\\`).
fn needs_escape(bytes: &[u8]) -> bool {
    // Eight bytes at a time: a byte below 0x20, or equal to `"` or `\\` after the xor,
    // leaves its high bit set in `(word - 0x01..) & !word & 0x80..` (exact for any byte set).
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGH: u64 = u64::from_ne_bytes([0x80; 8]);
    let below = |word: u64, limit: u8| word.wrapping_sub(ONES * u64::from(limit)) & !word & HIGH;
    let mut words = bytes.chunks_exact(8);
    for chunk in &mut words {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let word = u64::from_ne_bytes(word);
        let quote = word ^ (ONES * u64::from(b'"'));
        let backslash = word ^ (ONES * u64::from(b'\\'));
        if below(word, 0x20) | below(quote, 1) | below(backslash, 1) != 0 {
            return true;
        }
    }
    words
        .remainder()
        .iter()
        .any(|&byte| byte < 0x20 || byte == b'"' || byte == b'\\')
}

fn push_opt_str(buffer: &mut Vec<u8>, text: Option<&str>) {
    match text {
        Some(text) => push_str(buffer, text),
        None => buffer.extend_from_slice(b"null"),
    }
}

fn push_field(buffer: &mut Vec<u8>, name: &str) {
    buffer.extend_from_slice(b",\"");
    buffer.extend_from_slice(name.as_bytes());
    buffer.extend_from_slice(b"\":");
}

fn push_number(buffer: &mut Vec<u8>, number: u64) {
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    let mut rest = number;
    loop {
        start -= 1;
        digits[start] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    buffer.extend_from_slice(&digits[start..]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::format_rfc3339;

    #[test]
    fn escaping_is_detected_in_every_position() {
        for length in 0..20 {
            for at in 0..length {
                for byte in 0..=255u8 {
                    let mut bytes = vec![b'a'; length];
                    bytes[at] = byte;
                    let expected = byte < 0x20 || byte == b'"' || byte == b'\\';
                    assert_eq!(needs_escape(&bytes), expected, "{length} {at} {byte}");
                }
            }
            assert!(!needs_escape(&vec![b' '; length]));
            assert!(!needs_escape("é€".repeat(length).as_bytes()));
        }
    }

    #[test]
    fn renders_cloudevents() {
        let signal = Signal {
            id: SignalId::from_uuid(uuid::Uuid::nil()),
            kind: SignalKind::StepCompleted,
            source: "flowwatch/replay".into(),
            subject: "o-1".into(),
            time: 0,
            alert: false,
            duration: None,
            data: SignalData {
                late: Some(true),
                ..SignalData::new("f".into(), "o-1".into())
            },
        };
        assert_eq!(
            signal.to_json(),
            r#"{"specversion":"1.0","id":"00000000-0000-0000-0000-000000000000","source":"flowwatch/replay","type":"flowwatch.step_completed","subject":"o-1","time":"1970-01-01T00:00:00.000Z","datacontenttype":"application/json","data":{"flow":"f","key":"o-1","step":null,"reason":null,"attempt":null,"actions":[],"late":true}}"#
        );
    }

    #[test]
    fn write_json_matches_serde() {
        let mut data = SignalData::new("f\"low".into(), "k\u{1}ey\\".into());
        data.step = Some("pay ment".into());
        data.reason = Some(Reason::Sla);
        data.attempt = Some(4_000_000_000);
        data.actions = vec!["retry".into(), "al\"ert".into()];
        data.late = Some(false);
        data.skipped = Some(true);
        data.action = Some("retry".into());
        data.trigger = Some(Reason::Stuck);
        data.record =
            Some(serde_json::json!({"topic": "t", "key": null, "value": {"a": [1, "x\ny"]}}));
        data.event = Some("Placed".into());
        data.alias = Some("paymentId".into());
        data.held = Some(0);
        data.started_at = Some("2026-01-01T00:00:00.000Z".into());
        data.detail = Some("tab\there".into());
        data.after_the_fact = Some(true);
        for data in [data.clone(), SignalData::new("f".into(), "k".into())] {
            let signal = Signal {
                id: signal_id(&[IdPart::Text("id-1")]),
                kind: SignalKind::Breached,
                source: "flowwatch/x\"y".into(),
                subject: "s\u{7f}é".into(),
                time: 1_767_225_600_123,
                alert: false,
                duration: None,
                data,
            };
            let id = signal.id.text();
            let event = CloudEvent {
                specversion: "1.0",
                id: &id,
                source: &signal.source,
                kind: signal.kind.event_type(),
                subject: &signal.subject,
                time: format_rfc3339(signal.time),
                datacontenttype: "application/json",
                data: &signal.data,
            };
            assert_eq!(signal.to_json(), serde_json::to_string(&event).unwrap());
        }
    }
}
