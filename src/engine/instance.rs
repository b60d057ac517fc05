//! The state of one process instance, kept compact because millions may be open at once:
//! fixed-size step records with sentinel values instead of `Option`s, event ids as 64-bit
//! hashes, kept payload fields as compact JSON text, and rarely used data (action run counts,
//! registered aliases) behind one optional box. Nothing derivable is stored: an instance's
//! entry in the timer queue is always its earliest armed deadline ([`Instance::next_due`]).
//! Pure data plus the small queries the engine needs; the transitions live in `apply` and
//! `breach`.

use super::signal::Reason;
use super::timers::TimerKey;
use crate::flow::FlowDef;
use crate::json::Json;
use crate::time::Millis;
use std::cell::OnceCell;

/// Sentinel for "no time" in packed fields.
const NONE: Millis = Millis::MIN;
/// Separates event index from payload in [`Instance::payloads`].
const UNIT: char = '\u{1f}';
/// Ends one kept payload in [`Instance::payloads`].
const RECORD: char = '\u{1e}';

/// Lifecycle of an instance.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Status {
    Open,
    Completed,
    Failed,
}

/// Lifecycle of a step.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum StepStatus {
    /// Waiting for the steps in its `after`.
    Waiting,
    /// Open: waiting for one of its `await` events.
    Open,
    /// Completed by an event.
    Complete,
    /// Skipped by its `when` condition (counts as complete).
    Skipped,
}

/// An armed deadline: when it is due, and its setting order for ties.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Deadline {
    /// Fire time; the deadline is breached when the clock passes it.
    pub due: Millis,
    /// Setting order (see `Timers::next_seq`).
    pub seq: u32,
}

impl Deadline {
    /// The queue key of this deadline.
    pub fn key(self) -> TimerKey {
        (self.due, self.seq)
    }
}

/// Flag bit: the deadline is armed.
const ARMED: u8 = 1;
/// Flag bits 1-2: the latest breach ran actions that are not resolved yet (1: without
/// `alert`, 2: with `alert`).
const UNRESOLVED_SHIFT: u8 = 1;

fn unresolved_of(flags: u8) -> Option<bool> {
    match (flags >> UNRESOLVED_SHIFT) & 3 {
        0 => None,
        1 => Some(false),
        _ => Some(true),
    }
}

fn with_unresolved(flags: u8, unresolved: Option<bool>) -> u8 {
    let bits = match unresolved {
        None => 0,
        Some(false) => 1,
        Some(true) => 2,
    };
    (flags & !(3 << UNRESOLVED_SHIFT)) | (bits << UNRESOLVED_SHIFT)
}

/// One step of one instance (16 bytes). Its deadline is not stored: while armed it is
/// `opened + within × (breaches + 1)`, because every breach that leaves the window armed is a
/// retry that re-opened it from the old deadline.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct StepState {
    /// Waiting: time of an `await` event that arrived early (or none); open: when it opened;
    /// complete or skipped: when it completed.
    at: Millis,
    /// Setting order of the armed deadline.
    seq: u32,
    /// Breaches signalled so far (numbers the next one).
    pub breaches: u16,
    pub status: StepStatus,
    flags: u8,
}

impl StepState {
    /// A step that has not opened yet.
    pub fn waiting() -> StepState {
        StepState {
            at: NONE,
            seq: 0,
            breaches: 0,
            status: StepStatus::Waiting,
            flags: 0,
        }
    }

    /// Complete or skipped.
    pub fn is_done(&self) -> bool {
        matches!(self.status, StepStatus::Complete | StepStatus::Skipped)
    }

    /// The armed deadline of the current window, given the step's `within`.
    pub fn deadline(&self, within: Option<Millis>) -> Option<Deadline> {
        if self.flags & ARMED == 0 || self.status != StepStatus::Open {
            return None;
        }
        let windows = i64::from(self.breaches) + 1;
        let due = self.at.saturating_add(within?.saturating_mul(windows));
        Some(Deadline { due, seq: self.seq })
    }

    /// Arms the current window's deadline with its setting order.
    pub fn arm(&mut self, seq: u32) {
        self.flags |= ARMED;
        self.seq = seq;
    }

    /// Disarms the deadline.
    pub fn disarm(&mut self) {
        self.flags &= !ARMED;
    }

    /// Re-numbers the setting order of an armed deadline (see `Engine::renumber_timers`).
    pub fn set_seq(&mut self, seq: u32) {
        self.seq = seq;
    }

    /// Time of an early `await` event of a waiting step.
    pub fn pending(&self) -> Option<Millis> {
        (self.status == StepStatus::Waiting && self.at != NONE).then_some(self.at)
    }

    /// Keeps the earliest early `await` event of a waiting step.
    pub fn keep_pending(&mut self, time: Millis) {
        self.at = self.pending().map_or(time, |kept| kept.min(time));
    }

    /// When the step opened (open steps).
    pub fn opened(&self) -> Millis {
        self.at
    }

    /// When the step completed (complete or skipped steps).
    pub fn completed(&self) -> Millis {
        self.at
    }

    /// Opens the step at `at`.
    pub fn open(&mut self, at: Millis) {
        self.status = StepStatus::Open;
        self.at = at;
    }

    /// Marks the step complete (or skipped) at `at`; its deadline is disarmed.
    pub fn finish(&mut self, status: StepStatus, at: Millis) {
        self.status = status;
        self.at = at;
        self.disarm();
    }

    /// Set when the latest breach ran actions not yet resolved; true if `alert` was among them.
    pub fn unresolved(&self) -> Option<bool> {
        unresolved_of(self.flags)
    }

    /// Records whether the latest breach ran actions.
    pub fn set_unresolved(&mut self, unresolved: Option<bool>) {
        self.flags = with_unresolved(self.flags, unresolved);
    }
}

/// Instance-level timer state (deadline or stuck detection), 8 bytes. The due time is derived
/// from the instance: `started + deadline`, `last_event + stuck_after`, or, once ended,
/// `ended + retention`.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct Watch {
    seq: u32,
    /// Breaches signalled so far.
    pub breaches: u16,
    flags: u8,
}

impl Watch {
    /// A watch armed with this setting order, or not armed.
    pub fn armed_with(seq: Option<u32>) -> Watch {
        let mut watch = Watch::default();
        if let Some(seq) = seq {
            watch.arm(seq);
        }
        watch
    }

    /// Whether it is armed.
    pub fn is_armed(&self) -> bool {
        self.flags & ARMED != 0
    }

    /// Setting order of the armed deadline.
    pub fn seq(&self) -> u32 {
        self.seq
    }

    /// Arms with a setting order.
    pub fn arm(&mut self, seq: u32) {
        self.flags |= ARMED;
        self.seq = seq;
    }

    /// Disarms.
    pub fn disarm(&mut self) {
        self.flags &= !ARMED;
    }

    /// Re-numbers the setting order (see `Engine::renumber_timers`).
    pub fn set_seq(&mut self, seq: u32) {
        self.seq = seq;
    }

    /// Set when the latest breach ran actions not yet resolved; true if `alert` was among them.
    pub fn unresolved(&self) -> Option<bool> {
        unresolved_of(self.flags)
    }

    /// Records whether the latest breach ran actions.
    pub fn set_unresolved(&mut self, unresolved: Option<bool>) {
        self.flags = with_unresolved(self.flags, unresolved);
    }

    /// Takes the unresolved flag, leaving none.
    pub fn take_unresolved(&mut self) -> Option<bool> {
        let unresolved = self.unresolved();
        self.set_unresolved(None);
        unresolved
    }
}

/// Which deadline of an instance is due.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DueWhat {
    Step(usize),
    Deadline,
    Stuck,
}

/// Rarely needed per-instance data, allocated only when used.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct Extras {
    /// Run counts of declared actions, per (action, scope); scope is a step index,
    /// [`SCOPE_DEADLINE`] or [`SCOPE_STUCK`].
    pub action_runs: Vec<(u16, u16, u32)>,
    /// Aliases this instance registered (to unregister them when it is purged).
    pub aliases: Vec<(u16, Box<str>)>,
    /// The audit trail, oldest first (only with `EngineConfig::history_limit` > 0). Fields are
    /// never skipped when serialising: checkpoints use a format that is not self-describing.
    #[serde(default)]
    pub history: Vec<super::history::HistoryEntry>,
    /// History entries dropped to keep within the limit.
    #[serde(default)]
    pub history_dropped: u32,
}

/// One process instance.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Instance {
    /// Index of its flow.
    pub flow: u16,
    pub status: Status,
    /// Events routed to this instance so far, duplicates and late ones included; makes the ids
    /// of deviations unique even when one record is delivered several times.
    pub received: u32,
    /// The business key.
    pub key: Box<str>,
    /// Start time T0.
    pub started: Millis,
    /// While open, the latest event time seen (stuck detection counts from it); once ended,
    /// the end time.
    pub last_event: Millis,
    pub steps: Box<[StepState]>,
    /// The instance deadline while open; once ended, the retention expiry.
    pub deadline: Watch,
    pub stuck: Watch,
    /// Hashes of the event ids recorded on this instance.
    pub seen_ids: Box<[u64]>,
    /// Kept payload projections of the latest event of each name that needs one, packed in one
    /// string as `EVENT \x1f JSON \x1e` records (compact JSON never contains raw control
    /// characters, so the separators cannot clash).
    pub payloads: Option<Box<str>>,
    pub extras: Option<Box<Extras>>,
}

/// Action-run scope of the instance deadline.
pub const SCOPE_DEADLINE: u16 = u16::MAX;
/// Action-run scope of stuck detection.
pub const SCOPE_STUCK: u16 = u16::MAX - 1;

impl Instance {
    /// The instance-level watch of a breach reason: `deadline`, or `stuck` for `Stuck`.
    pub fn watch_mut(&mut self, reason: Reason) -> &mut Watch {
        match reason {
            Reason::Deadline => &mut self.deadline,
            _ => &mut self.stuck,
        }
    }

    /// The armed deadline of a step.
    pub fn step_deadline(&self, flow: &FlowDef, step: usize) -> Option<Deadline> {
        self.steps[step].deadline(flow.steps[step].within)
    }

    /// The armed instance deadline while open; once ended, the retention expiry.
    pub fn deadline_due(&self, flow: &FlowDef, retention: Millis) -> Option<Deadline> {
        if !self.deadline.is_armed() {
            return None;
        }
        let due = match self.status {
            Status::Open => self.started.saturating_add(flow.deadline?),
            Status::Completed | Status::Failed => self.last_event.saturating_add(retention),
        };
        Some(Deadline {
            due,
            seq: self.deadline.seq(),
        })
    }

    /// The armed stuck deadline.
    pub fn stuck_due(&self, flow: &FlowDef) -> Option<Deadline> {
        if !self.stuck.is_armed() || self.status != Status::Open {
            return None;
        }
        let due = self.last_event.saturating_add(flow.stuck_after?);
        Some(Deadline {
            due,
            seq: self.stuck.seq(),
        })
    }

    /// The earliest armed deadline and which one it is.
    /// Ties (never expected: setting orders are unique) go to the first in the order steps,
    /// deadline, stuck. A plain loop: it runs at least once per record.
    pub fn next_due(&self, flow: &FlowDef, retention: Millis) -> Option<(Deadline, DueWhat)> {
        let mut earliest: Option<(Deadline, DueWhat)> = None;
        let mut consider = |deadline: Deadline, what: DueWhat| {
            if earliest.is_none_or(|(best, _)| deadline.key() < best.key()) {
                earliest = Some((deadline, what));
            }
        };
        for (index, (step, def)) in self.steps.iter().zip(flow.steps.iter()).enumerate() {
            if let Some(deadline) = step.deadline(def.within) {
                consider(deadline, DueWhat::Step(index));
            }
        }
        if let Some(deadline) = self.deadline_due(flow, retention) {
            consider(deadline, DueWhat::Deadline);
        }
        if let Some(deadline) = self.stuck_due(flow) {
            consider(deadline, DueWhat::Stuck);
        }
        earliest
    }

    /// The instance's entry in the timer queue: its earliest armed deadline.
    pub fn timer_key(&self, flow: &FlowDef, retention: Millis) -> Option<TimerKey> {
        self.next_due(flow, retention)
            .map(|(deadline, _)| deadline.key())
    }

    /// Records an event id hash; false if it was already recorded.
    pub fn record_id(&mut self, id: u64) -> bool {
        if self.seen_ids.contains(&id) {
            return false;
        }
        let mut ids = std::mem::take(&mut self.seen_ids).into_vec();
        ids.reserve_exact(1);
        ids.push(id);
        self.seen_ids = ids.into_boxed_slice();
        true
    }

    /// The kept payloads as (event index, compact JSON) pairs.
    fn payload_texts(&self) -> impl Iterator<Item = (usize, &str)> {
        self.payloads
            .as_deref()
            .unwrap_or("")
            .split_terminator(RECORD)
            .filter_map(|entry| {
                let (event, text) = entry.split_once(UNIT)?;
                Some((event.parse().ok()?, text))
            })
    }

    /// The latest kept payload of an event, parsed.
    pub fn payload(&self, event: usize) -> Option<serde_json::Value> {
        let (_, text) = self.payload_texts().find(|(kept, _)| *kept == event)?;
        serde_json::from_str(text).ok()
    }

    /// Every kept payload, unparsed, by event index: each is parsed when first asked for by
    /// `lookup` (an action's templates name one or two events; the instance may keep more,
    /// for conditions).
    pub fn lazy_payloads(&self) -> LazyPayloads<'_> {
        let kept: Vec<(usize, &str)> = self.payload_texts().collect();
        let parsed = kept.iter().map(|_| OnceCell::new()).collect();
        LazyPayloads { kept, parsed }
    }

    /// Every kept payload by event index, parsed borrowing from the instance (for conditions).
    pub fn kept_payloads(&self) -> Vec<(usize, Json<'_>)> {
        self.payload_texts()
            .filter_map(|(event, text)| Some((event, Json::parse(text).ok()?)))
            .collect()
    }

    /// Stores the latest kept payload of an event.
    pub fn keep_payload(&mut self, event: usize, payload: &str) {
        let push = |packed: &mut String, event: usize, text: &str| {
            use std::fmt::Write;
            // Writing into a String cannot fail.
            let _ = write!(packed, "{event}");
            packed.push(UNIT);
            packed.push_str(text);
            packed.push(RECORD);
        };
        let old = self.payloads.as_deref().map_or(0, str::len);
        let mut packed = String::with_capacity(old + payload.len() + 8);
        for (kept, text) in self.payload_texts().filter(|(kept, _)| *kept != event) {
            push(&mut packed, kept, text);
        }
        push(&mut packed, event, payload);
        self.payloads = Some(packed.into_boxed_str());
    }

    /// How often an action ran in a scope.
    pub fn runs(&self, action: usize, scope: u16) -> u32 {
        self.extras
            .iter()
            .flat_map(|extras| extras.action_runs.iter())
            .find(|(kept, kept_scope, _)| usize::from(*kept) == action && *kept_scope == scope)
            .map_or(0, |(_, _, runs)| *runs)
    }

    /// Counts one more run of an action in a scope and returns the new count.
    pub fn count_run(&mut self, action: usize, scope: u16) -> u32 {
        let action = action as u16;
        let runs = &mut self.extras.get_or_insert_with(Box::default).action_runs;
        match runs
            .iter_mut()
            .find(|(kept, kept_scope, _)| *kept == action && *kept_scope == scope)
        {
            Some(slot) => {
                slot.2 += 1;
                slot.2
            }
            None => {
                runs.push((action, scope, 1));
                1
            }
        }
    }

    /// Remembers an alias this instance registered.
    pub fn remember_alias(&mut self, alias: u16, value: &str) {
        let aliases = &mut self.extras.get_or_insert_with(Box::default).aliases;
        if !aliases
            .iter()
            .any(|(kept, kept_value)| *kept == alias && &**kept_value == value)
        {
            aliases.push((alias, Box::from(value)));
        }
    }

    /// Aliases this instance registered.
    pub fn aliases(&self) -> &[(u16, Box<str>)] {
        self.extras.as_ref().map_or(&[], |extras| &extras.aliases)
    }

    /// True once every step is complete or skipped.
    pub fn all_steps_done(&self) -> bool {
        self.steps.iter().all(StepState::is_done)
    }
}

/// An instance's kept payloads, each parsed at most once, on first use.
pub struct LazyPayloads<'a> {
    kept: Vec<(usize, &'a str)>,
    parsed: Vec<OnceCell<Option<serde_json::Value>>>,
}

impl LazyPayloads<'_> {
    /// The latest kept payload of an event, parsed; `None` if none is kept (or it does not
    /// parse, which a kept payload always does: it was written as compact JSON).
    pub fn lookup(&self, event: usize) -> Option<&serde_json::Value> {
        let index = self.kept.iter().position(|(kept, _)| *kept == event)?;
        self.parsed[index]
            .get_or_init(|| serde_json::from_str(self.kept[index].1).ok())
            .as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_stays_compact() {
        assert_eq!(std::mem::size_of::<StepState>(), 16);
        assert_eq!(std::mem::size_of::<Watch>(), 8);
        assert_eq!(std::mem::size_of::<Option<Instance>>(), 112);
    }
}

#[cfg(test)]
mod payload_tests {
    use super::*;

    #[test]
    fn kept_payloads_are_replaced_per_event() {
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
        instance.keep_payload(3, r#"{"a":"x\u001ey"}"#);
        instance.keep_payload(12, r#"{"b":2}"#);
        instance.keep_payload(3, r#"{"a":1}"#);
        assert_eq!(instance.payload(3), Some(serde_json::json!({"a": 1})));
        assert_eq!(instance.payload(12), Some(serde_json::json!({"b": 2})));
        assert_eq!(instance.payload(4), None);
        let lazy = instance.lazy_payloads();
        assert_eq!(lazy.lookup(12), Some(&serde_json::json!({"b": 2})));
        assert_eq!(lazy.lookup(3), Some(&serde_json::json!({"a": 1})));
        assert_eq!(lazy.lookup(4), None);
        // Only what was asked for was parsed.
        let lazy = instance.lazy_payloads();
        lazy.lookup(12);
        let parsed = lazy.parsed.iter().filter(|cell| cell.get().is_some()).count();
        assert_eq!(parsed, 1);
    }
}
