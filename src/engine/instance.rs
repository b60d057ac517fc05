//! The state of one process instance, kept compact because millions may be open at once: step
//! states in a boxed slice, event ids as 64-bit hashes, and only the parts of payloads that
//! conditions and templates read. Pure data plus the small queries the engine needs; the
//! transitions live in `apply` and `breach`.

use super::timers::TimerKey;
use crate::time::Millis;
use serde_json::Value;

/// Lifecycle of an instance.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Open,
    Completed,
    Failed,
}

/// Lifecycle of a step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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

/// A deadline that may be armed: when it is due, and its setting order for ties.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Deadline {
    /// Fire time; the deadline is breached when the clock passes it.
    pub due: Millis,
    /// Setting order (see `Timers::next_seq`).
    pub seq: u64,
}

impl Deadline {
    /// The queue key of this deadline.
    pub fn key(self) -> TimerKey {
        (self.due, self.seq)
    }
}

/// One step of one instance.
#[derive(Clone, Debug)]
pub struct StepState {
    pub status: StepStatus,
    /// When the step opened (valid once open).
    pub opened: Millis,
    /// When the step completed (valid once complete or skipped).
    pub completed: Millis,
    /// The current SLA window's deadline while it is armed.
    pub deadline: Option<Deadline>,
    /// Breaches signalled so far (numbers the next one).
    pub breaches: u32,
    /// Set when the latest breach ran actions and is not yet resolved (then completion
    /// emits `resolved`); the flag says whether `alert` was among them.
    pub unresolved: Option<bool>,
    /// Time of an `await` event that arrived before the step opened.
    pub pending: Option<Millis>,
}

impl StepState {
    /// A step that has not opened yet.
    pub fn waiting() -> StepState {
        StepState {
            status: StepStatus::Waiting,
            opened: 0,
            completed: 0,
            deadline: None,
            breaches: 0,
            unresolved: None,
            pending: None,
        }
    }

    /// Complete or skipped.
    pub fn is_done(&self) -> bool {
        matches!(self.status, StepStatus::Complete | StepStatus::Skipped)
    }
}

/// Instance-level timer state (deadline or stuck detection).
#[derive(Clone, Debug, Default)]
pub struct Watch {
    /// Armed deadline, if any.
    pub armed: Option<Deadline>,
    /// Breaches signalled so far.
    pub breaches: u32,
    /// Set when the latest breach ran actions and is not yet resolved; the flag says whether
    /// `alert` was among them.
    pub unresolved: Option<bool>,
}

/// Which deadline of an instance is due.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DueWhat {
    Step(usize),
    Deadline,
    Stuck,
}

/// One process instance.
#[derive(Clone, Debug)]
pub struct Instance {
    /// Index of its flow.
    pub flow: u16,
    pub status: Status,
    /// The business key.
    pub key: Box<str>,
    /// Start time T0.
    pub started: Millis,
    /// End time once ended (retention counts from here).
    pub ended: Millis,
    /// Latest event time seen (stuck detection counts from here).
    pub last_event: Millis,
    pub steps: Box<[StepState]>,
    pub deadline: Watch,
    pub stuck: Watch,
    /// Hashes of the event ids recorded on this instance.
    pub seen_ids: Vec<u64>,
    /// Kept payload projections of the latest event of each name that needs one.
    pub payloads: Vec<(u16, Value)>,
    /// Run counts of declared actions, per (action, scope); scope is a step index, or
    /// `u16::MAX` for the deadline and `u16::MAX - 1` for stuck.
    pub action_runs: Vec<(u16, u16, u32)>,
    /// Aliases this instance registered (to unregister them when it is purged).
    pub aliases: Vec<(u16, Box<str>)>,
    /// Its entry in the timer queue.
    pub timer: Option<TimerKey>,
}

/// Action-run scope of the instance deadline.
pub const SCOPE_DEADLINE: u16 = u16::MAX;
/// Action-run scope of stuck detection.
pub const SCOPE_STUCK: u16 = u16::MAX - 1;

impl Instance {
    /// The earliest armed deadline and which one it is.
    pub fn next_due(&self) -> Option<(Deadline, DueWhat)> {
        let steps = self
            .steps
            .iter()
            .enumerate()
            .filter_map(|(index, step)| step.deadline.map(|deadline| (deadline, DueWhat::Step(index))));
        let instance = [(self.deadline.armed, DueWhat::Deadline), (self.stuck.armed, DueWhat::Stuck)]
            .into_iter()
            .filter_map(|(armed, what)| armed.map(|deadline| (deadline, what)));
        steps.chain(instance).min_by_key(|(deadline, _)| deadline.key())
    }

    /// The latest kept payload of an event.
    pub fn payload(&self, event: usize) -> Option<&Value> {
        self.payloads.iter().find(|(kept, _)| usize::from(*kept) == event).map(|(_, payload)| payload)
    }

    /// Stores the latest kept payload of an event.
    pub fn keep_payload(&mut self, event: usize, payload: Value) {
        let event = event as u16;
        match self.payloads.iter_mut().find(|(kept, _)| *kept == event) {
            Some(slot) => slot.1 = payload,
            None => self.payloads.push((event, payload)),
        }
    }

    /// How often an action ran in a scope.
    pub fn runs(&self, action: usize, scope: u16) -> u32 {
        self.action_runs
            .iter()
            .find(|(kept, kept_scope, _)| usize::from(*kept) == action && *kept_scope == scope)
            .map_or(0, |(_, _, runs)| *runs)
    }

    /// Counts one more run of an action in a scope and returns the new count.
    pub fn count_run(&mut self, action: usize, scope: u16) -> u32 {
        let action = action as u16;
        match self.action_runs.iter_mut().find(|(kept, kept_scope, _)| *kept == action && *kept_scope == scope) {
            Some(slot) => {
                slot.2 += 1;
                slot.2
            }
            None => {
                self.action_runs.push((action, scope, 1));
                1
            }
        }
    }

    /// True once every step is complete or skipped.
    pub fn all_steps_done(&self) -> bool {
        self.steps.iter().all(StepState::is_done)
    }
}
