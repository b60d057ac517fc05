//! Read views of the engine for the API and the page: flows with live counts per step, a
//! flow's definition as a graph, instances filtered by state and step with a stable order and
//! a cursor, one instance in full (steps, windows, breaches, action runs, audit trail) and the
//! held orphans. Pure reads of engine state: plain data out, times as event-clock
//! milliseconds, nothing serialised here (the HTTP layer has its own DTOs). Counting walks
//! every instance; that is a few milliseconds per million instances, and it runs on the engine
//! task between two inputs, so views are always consistent.

mod counts;
mod instances;
mod orphans;
mod states;

pub use instances::is_cursor;

use super::instance::{Status, StepStatus};
use crate::time::Millis;

/// Largest page of instances a query returns.
pub const MAX_PAGE: usize = 1000;

/// Where an instance stands, for filters and counts. An open instance may be breached and
/// stuck at once; it then matches both filters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InstanceState {
    /// Not ended.
    Open,
    Completed,
    Failed,
    /// Open, with a breach (a step past its SLA and still open, or past the instance deadline).
    Breached,
    /// Open, and silent for longer than `stuck_after`.
    Stuck,
}

impl InstanceState {
    /// Parses the names used in the API (`open`, `completed`, `failed`, `breached`, `stuck`).
    pub fn parse(text: &str) -> Option<InstanceState> {
        Some(match text {
            "open" => InstanceState::Open,
            "completed" => InstanceState::Completed,
            "failed" => InstanceState::Failed,
            "breached" => InstanceState::Breached,
            "stuck" => InstanceState::Stuck,
            _ => return None,
        })
    }

    /// The API name.
    pub fn as_str(self) -> &'static str {
        match self {
            InstanceState::Open => "open",
            InstanceState::Completed => "completed",
            InstanceState::Failed => "failed",
            InstanceState::Breached => "breached",
            InstanceState::Stuck => "stuck",
        }
    }
}

/// Live counts of one flow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlowCounts {
    pub name: String,
    pub description: Option<String>,
    /// Instances not ended.
    pub open: u64,
    /// Retained instances that completed or failed.
    pub completed: u64,
    pub failed: u64,
    /// Open instances that are breached (see [`InstanceState::Breached`]).
    pub breached: u64,
    /// Open instances that are stuck.
    pub stuck: u64,
    /// Per step, in display order.
    pub steps: Vec<StepCounts>,
}

/// Live counts of one step over the flow's instances.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StepCounts {
    pub name: String,
    /// Open instances whose step has not opened yet.
    pub pending: u64,
    /// Open instances waiting in this step (its window is open).
    pub waiting: u64,
    /// Of `waiting`, those past the step's SLA.
    pub breached: u64,
    /// Of `waiting`, instances that are stuck.
    pub stuck: u64,
    /// Instances (open or retained) where the step completed, skipped ones included.
    pub completed: u64,
    /// Of `completed`, those skipped by `when`.
    pub skipped: u64,
}

/// A flow's definition as a graph.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlowGraph {
    pub name: String,
    pub description: Option<String>,
    pub start: Vec<String>,
    pub steps: Vec<GraphStep>,
    /// Events that fail the instance.
    pub fail: Vec<String>,
    pub deadline: Option<Millis>,
    pub stuck_after: Option<Millis>,
    pub on_deadline: Vec<String>,
    pub on_stuck: Vec<String>,
    /// Every event: (name, topic).
    pub events: Vec<(String, String)>,
    /// Every declared action: (name, attempts).
    pub actions: Vec<(String, Option<u32>)>,
}

/// One node of a [`FlowGraph`]; its edges are `after`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GraphStep {
    pub name: String,
    pub after: Vec<String>,
    pub awaits: Vec<String>,
    pub within: Option<Millis>,
    pub on_breach: Vec<String>,
    /// The `when` condition is declared.
    pub conditional: bool,
}

/// What to list.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InstanceFilter {
    pub state: Option<InstanceState>,
    /// Only instances waiting in this step (by name).
    pub step: Option<String>,
    /// Page size, capped at [`MAX_PAGE`].
    pub limit: usize,
    /// Continue after this cursor (from the previous page).
    pub cursor: Option<String>,
}

/// One page of instances, newest start first (ties by key).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstancePage {
    pub instances: Vec<InstanceSummary>,
    /// Cursor of the next page, when there is one.
    pub next_cursor: Option<String>,
    /// How many instances match the filter in all.
    pub total: u64,
}

/// An instance in a list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstanceSummary {
    pub key: String,
    pub status: Status,
    pub started: Millis,
    /// End time, once ended.
    pub ended: Option<Millis>,
    /// Latest event time while open.
    pub last_event: Millis,
    pub breached: bool,
    pub stuck: bool,
    /// Steps it is waiting in.
    pub waiting_in: Vec<String>,
    /// Breaches signalled on it so far (steps, deadline, stuck).
    pub breaches: u32,
}

/// One instance in full.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstanceDetail {
    pub flow: String,
    pub summary: InstanceSummary,
    pub steps: Vec<StepDetail>,
    /// The instance deadline (`started + deadline`) and its breaches.
    pub deadline: Option<Millis>,
    pub deadline_breaches: u32,
    /// When it counts as stuck while open (`last event + stuck_after`) and its breaches.
    pub stuck_due: Option<Millis>,
    pub stuck_breaches: u32,
    /// Declared action runs: (action, scope: a step name, `deadline` or `stuck`, runs).
    pub actions: Vec<(String, String, u32)>,
    /// Aliases it registered: (alias, value).
    pub aliases: Vec<(String, String)>,
    /// Events routed to it so far.
    pub received: u32,
    /// The audit trail, oldest first (empty when history is off).
    pub history: Vec<HistoryView>,
    /// Older history entries dropped to keep within the limit.
    pub history_dropped: u32,
}

/// One step of one instance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StepDetail {
    pub name: String,
    pub status: StepStatus,
    /// When it opened (none while it waits for its `after` steps).
    pub opened: Option<Millis>,
    /// When it completed or was skipped.
    pub completed: Option<Millis>,
    /// Its SLA windows, first to current.
    pub windows: Vec<Window>,
    /// Breaches signalled (`data.attempt` of the latest).
    pub breaches: u32,
    /// The latest breach ran actions and is not resolved yet.
    pub unresolved: bool,
}

/// One SLA window of a step: opened at the step's start or by a retry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Window {
    pub opened: Millis,
    pub due: Millis,
    /// Closed by the step's completion (the last window only).
    pub completed: Option<Millis>,
    /// The window's deadline passed before it completed.
    pub breached: bool,
}

/// One audit-trail entry with names resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HistoryView {
    Event {
        topic: String,
        partition: i32,
        offset: i64,
        time: Millis,
        event: String,
        /// The record value as compact JSON.
        payload: String,
    },
    Operator {
        command: &'static str,
        time: Millis,
        request_id: String,
        step: Option<String>,
        note: Option<String>,
        outcome: String,
    },
}

/// Events held for a key or alias not known yet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrphanView {
    pub flow: String,
    /// The alias they are held under; none for the primary key.
    pub alias: Option<String>,
    pub value: String,
    pub held: u32,
    /// Names of the held events, in arrival order.
    pub events: Vec<String>,
    pub first: Millis,
    /// When they are dropped with an `orphaned` signal.
    pub expires: Millis,
}

