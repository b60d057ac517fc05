//! The JSON shapes of the API, separate from engine types so the engine can change without
//! breaking clients: times as RFC 3339 UTC strings, durations as milliseconds plus their
//! flow-file spelling, enums as lowercase strings. Each DTO is built from an engine view by a
//! `From` conversion, and carries a `ToSchema` derive for the OpenAPI document.

use crate::engine::instance::{Status, StepStatus};
use crate::engine::query::{
    FlowCounts, FlowGraph, HistoryView, InstanceDetail, InstancePage, InstanceSummary, OrphanView,
    StepCounts, StepDetail, Window,
};
use crate::time::{format_duration, format_rfc3339, Millis};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use utoipa::{IntoParams, ToSchema};

/// A time on the event clock, RFC 3339 UTC.
fn time(millis: Millis) -> String {
    format_rfc3339(millis)
}

/// A duration as declared.
#[derive(Debug, Serialize, ToSchema)]
pub struct Duration {
    /// Milliseconds.
    pub ms: i64,
    /// As a flow file would write it (`15m`, `1h30m`).
    pub text: String,
}

impl Duration {
    fn of(millis: Option<Millis>) -> Option<Duration> {
        millis.map(|ms| Duration {
            ms,
            text: format_duration(ms),
        })
    }
}

/// `GET /api/v1/flows`.
#[derive(Debug, Serialize, ToSchema)]
pub struct FlowList {
    /// The event clock (null before the first record).
    pub clock: Option<String>,
    pub flows: Vec<FlowSummary>,
}

/// A flow with live counts.
#[derive(Debug, Serialize, ToSchema)]
pub struct FlowSummary {
    pub name: String,
    pub description: Option<String>,
    /// Instances not ended.
    pub open: u64,
    /// Retained instances that completed.
    pub completed: u64,
    /// Retained instances that failed.
    pub failed: u64,
    /// Open instances with a step past its SLA or past the instance deadline.
    pub breached: u64,
    /// Open instances silent for longer than `stuck_after`.
    pub stuck: u64,
    /// Per step, in display order.
    pub steps: Vec<StepCountsDto>,
}

/// Live counts of one step.
#[derive(Debug, Serialize, ToSchema)]
pub struct StepCountsDto {
    pub name: String,
    /// Open instances whose step has not opened yet (its `after` steps are not done).
    pub pending: u64,
    /// Open instances waiting in this step.
    pub waiting: u64,
    /// Of `waiting`, those past the step's SLA.
    pub breached: u64,
    /// Of `waiting`, those stuck.
    pub stuck: u64,
    /// Instances where the step completed (skipped ones included).
    pub completed: u64,
    /// Of `completed`, skipped by `when`.
    pub skipped: u64,
}

impl From<StepCounts> for StepCountsDto {
    fn from(counts: StepCounts) -> Self {
        StepCountsDto {
            name: counts.name,
            pending: counts.pending,
            waiting: counts.waiting,
            breached: counts.breached,
            stuck: counts.stuck,
            completed: counts.completed,
            skipped: counts.skipped,
        }
    }
}

impl From<FlowCounts> for FlowSummary {
    fn from(counts: FlowCounts) -> Self {
        FlowSummary {
            name: counts.name,
            description: counts.description,
            open: counts.open,
            completed: counts.completed,
            failed: counts.failed,
            breached: counts.breached,
            stuck: counts.stuck,
            steps: counts.steps.into_iter().map(Into::into).collect(),
        }
    }
}

/// `GET /api/v1/flows/{flow}/graph`: the definition as a graph; edges are each step's `after`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Graph {
    pub name: String,
    pub description: Option<String>,
    /// Events that open an instance.
    pub start: Vec<String>,
    pub steps: Vec<GraphStep>,
    /// `after` edges as (from, to) pairs: `to` opens when every `from` is done.
    pub edges: Vec<Edge>,
    /// Events that fail an instance.
    pub fail: Vec<String>,
    pub deadline: Option<Duration>,
    pub stuck_after: Option<Duration>,
    pub on_deadline: Vec<String>,
    pub on_stuck: Vec<String>,
    pub events: Vec<GraphEvent>,
    pub actions: Vec<GraphAction>,
}

/// A step node.
#[derive(Debug, Serialize, ToSchema)]
pub struct GraphStep {
    pub name: String,
    pub after: Vec<String>,
    /// Events any one of which completes it.
    pub awaits: Vec<String>,
    /// Its SLA.
    pub within: Option<Duration>,
    pub on_breach: Vec<String>,
    /// A `when` condition may skip it.
    pub conditional: bool,
}

/// An `after` edge.
#[derive(Debug, Serialize, ToSchema)]
pub struct Edge {
    pub from: String,
    pub to: String,
}

/// An event of the flow.
#[derive(Debug, Serialize, ToSchema)]
pub struct GraphEvent {
    pub name: String,
    pub topic: String,
}

/// A declared action.
#[derive(Debug, Serialize, ToSchema)]
pub struct GraphAction {
    pub name: String,
    /// With attempts, a retry.
    pub attempts: Option<u32>,
}

impl From<FlowGraph> for Graph {
    fn from(graph: FlowGraph) -> Self {
        let edges = graph
            .steps
            .iter()
            .flat_map(|step| {
                step.after.iter().map(|from| Edge {
                    from: from.clone(),
                    to: step.name.clone(),
                })
            })
            .collect();
        Graph {
            name: graph.name,
            description: graph.description,
            start: graph.start,
            steps: graph
                .steps
                .into_iter()
                .map(|step| GraphStep {
                    name: step.name,
                    after: step.after,
                    awaits: step.awaits,
                    within: Duration::of(step.within),
                    on_breach: step.on_breach,
                    conditional: step.conditional,
                })
                .collect(),
            edges,
            fail: graph.fail,
            deadline: Duration::of(graph.deadline),
            stuck_after: Duration::of(graph.stuck_after),
            on_deadline: graph.on_deadline,
            on_stuck: graph.on_stuck,
            events: graph
                .events
                .into_iter()
                .map(|(name, topic)| GraphEvent { name, topic })
                .collect(),
            actions: graph
                .actions
                .into_iter()
                .map(|(name, attempts)| GraphAction { name, attempts })
                .collect(),
        }
    }
}

/// `GET /api/v1/flows/{flow}`: counts and definition together.
#[derive(Debug, Serialize, ToSchema)]
pub struct FlowDetail {
    pub counts: FlowSummary,
    pub graph: Graph,
}

/// Query of `GET /api/v1/flows/{flow}/instances`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct InstancesQuery {
    /// `open`, `completed`, `failed`, `breached` or `stuck`.
    pub state: Option<String>,
    /// Only instances waiting in this step.
    pub step: Option<String>,
    /// Page size, 1 to 1000 (default 100).
    pub limit: Option<usize>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// A page of instances, newest start first.
#[derive(Debug, Serialize, ToSchema)]
pub struct InstanceList {
    pub instances: Vec<InstanceItem>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
    /// Instances matching the filter in all.
    pub total: u64,
}

impl From<InstancePage> for InstanceList {
    fn from(page: InstancePage) -> Self {
        InstanceList {
            instances: page.instances.into_iter().map(Into::into).collect(),
            next_cursor: page.next_cursor,
            total: page.total,
        }
    }
}

/// An instance in a list.
#[derive(Debug, Serialize, ToSchema)]
pub struct InstanceItem {
    pub key: String,
    /// `open`, `completed` or `failed`.
    pub status: &'static str,
    pub started: String,
    pub ended: Option<String>,
    /// Latest event time while open; the end time once ended.
    pub last_event: String,
    pub breached: bool,
    pub stuck: bool,
    /// Steps it waits in.
    pub waiting_in: Vec<String>,
    /// Breaches signalled on it (steps, deadline, stuck).
    pub breaches: u32,
}

fn status(status: Status) -> &'static str {
    match status {
        Status::Open => "open",
        Status::Completed => "completed",
        Status::Failed => "failed",
    }
}

impl From<InstanceSummary> for InstanceItem {
    fn from(summary: InstanceSummary) -> Self {
        InstanceItem {
            key: summary.key,
            status: status(summary.status),
            started: time(summary.started),
            ended: summary.ended.map(time),
            last_event: time(summary.last_event),
            breached: summary.breached,
            stuck: summary.stuck,
            waiting_in: summary.waiting_in,
            breaches: summary.breaches,
        }
    }
}

/// `GET /api/v1/flows/{flow}/instances/{key}`: one instance with its audit trail.
#[derive(Debug, Serialize, ToSchema)]
pub struct Instance {
    pub flow: String,
    #[serde(flatten)]
    pub summary: InstanceItem,
    pub steps: Vec<Step>,
    /// Instance deadline (start + `deadline`).
    pub deadline: Option<String>,
    pub deadline_breaches: u32,
    /// When it counts as stuck if nothing arrives (open instances with `stuck_after`).
    pub stuck_due: Option<String>,
    pub stuck_breaches: u32,
    /// Declared action runs.
    pub actions: Vec<ActionRuns>,
    /// Alias values it registered.
    pub aliases: Vec<Alias>,
    /// Events routed to it (duplicates and late ones included).
    pub received: u32,
    /// The audit trail, oldest first: events as received and operator commands. Empty when the
    /// history is off (`tracking.history_limit` 0).
    pub history: Vec<HistoryEntry>,
    /// Older entries dropped to stay within the limit.
    pub history_dropped: u32,
}

/// One step of an instance.
#[derive(Debug, Serialize, ToSchema)]
pub struct Step {
    pub name: String,
    /// `waiting` (for its `after` steps), `open`, `complete` or `skipped`.
    pub status: &'static str,
    pub opened: Option<String>,
    pub completed: Option<String>,
    /// SLA windows: the first from its opening, one more per retry.
    pub windows: Vec<WindowDto>,
    pub breaches: u32,
    /// The latest breach ran actions and is not resolved yet.
    pub unresolved: bool,
}

/// One SLA window.
#[derive(Debug, Serialize, ToSchema)]
pub struct WindowDto {
    pub opened: String,
    pub due: String,
    pub completed: Option<String>,
    pub breached: bool,
}

/// Runs of a declared action in one scope.
#[derive(Debug, Serialize, ToSchema)]
pub struct ActionRuns {
    pub action: String,
    /// A step name, `deadline` or `stuck`.
    pub scope: String,
    pub runs: u32,
}

/// An alias value of an instance.
#[derive(Debug, Serialize, ToSchema)]
pub struct Alias {
    pub alias: String,
    pub value: String,
}

/// One audit-trail entry.
#[derive(Debug, Serialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum HistoryEntry {
    /// A record as received.
    Event {
        topic: String,
        partition: i32,
        offset: i64,
        /// Event time.
        time: String,
        /// Flow event name.
        event: String,
        /// The record value, as received.
        #[schema(value_type = Object)]
        payload: Box<RawValue>,
    },
    /// An operator command.
    Operator {
        /// `retry`, `resolve` or `cancel`.
        command: &'static str,
        /// The event clock when it was applied.
        time: String,
        request_id: String,
        step: Option<String>,
        note: Option<String>,
        outcome: String,
    },
}

fn step_status(status: StepStatus) -> &'static str {
    match status {
        StepStatus::Waiting => "waiting",
        StepStatus::Open => "open",
        StepStatus::Complete => "complete",
        StepStatus::Skipped => "skipped",
    }
}

impl From<Window> for WindowDto {
    fn from(window: Window) -> Self {
        WindowDto {
            opened: time(window.opened),
            due: time(window.due),
            completed: window.completed.map(time),
            breached: window.breached,
        }
    }
}

impl From<StepDetail> for Step {
    fn from(step: StepDetail) -> Self {
        Step {
            name: step.name,
            status: step_status(step.status),
            opened: step.opened.map(time),
            completed: step.completed.map(time),
            windows: step.windows.into_iter().map(Into::into).collect(),
            breaches: step.breaches,
            unresolved: step.unresolved,
        }
    }
}

impl From<HistoryView> for HistoryEntry {
    fn from(view: HistoryView) -> Self {
        match view {
            HistoryView::Event {
                topic,
                partition,
                offset,
                time: at,
                event,
                payload,
            } => HistoryEntry::Event {
                topic,
                partition,
                offset,
                time: time(at),
                event,
                // The engine stored it as compact JSON rendered from a parsed value.
                payload: RawValue::from_string(payload).unwrap_or_else(|_| null_json()),
            },
            HistoryView::Operator {
                command,
                time: at,
                request_id,
                step,
                note,
                outcome,
            } => HistoryEntry::Operator {
                command,
                time: time(at),
                request_id,
                step,
                note,
                outcome,
            },
        }
    }
}

fn null_json() -> Box<RawValue> {
    // "null" is valid JSON.
    RawValue::from_string("null".to_string()).expect("null is JSON")
}

impl From<InstanceDetail> for Instance {
    fn from(detail: InstanceDetail) -> Self {
        Instance {
            flow: detail.flow,
            summary: detail.summary.into(),
            steps: detail.steps.into_iter().map(Into::into).collect(),
            deadline: detail.deadline.map(time),
            deadline_breaches: detail.deadline_breaches,
            stuck_due: detail.stuck_due.map(time),
            stuck_breaches: detail.stuck_breaches,
            actions: detail
                .actions
                .into_iter()
                .map(|(action, scope, runs)| ActionRuns {
                    action,
                    scope,
                    runs,
                })
                .collect(),
            aliases: detail
                .aliases
                .into_iter()
                .map(|(alias, value)| Alias { alias, value })
                .collect(),
            received: detail.received,
            history: detail.history.into_iter().map(Into::into).collect(),
            history_dropped: detail.history_dropped,
        }
    }
}

/// `GET /api/v1/orphans`.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrphanList {
    pub orphans: Vec<Orphan>,
}

/// Events held for a key or alias whose instance is not known yet.
#[derive(Debug, Serialize, ToSchema)]
pub struct Orphan {
    pub flow: String,
    /// The alias they wait under; null for the business key.
    pub alias: Option<String>,
    pub value: String,
    pub held: u32,
    /// Held event names, in arrival order.
    pub events: Vec<String>,
    pub first: String,
    /// When they are dropped with an `orphaned` signal.
    pub expires: String,
}

impl From<OrphanView> for Orphan {
    fn from(view: OrphanView) -> Self {
        Orphan {
            flow: view.flow,
            alias: view.alias,
            value: view.value,
            held: view.held,
            events: view.events,
            first: time(view.first),
            expires: time(view.expires),
        }
    }
}

/// Query of `GET /api/v1/signals`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SignalsQuery {
    /// How many, 1 to 1000 (default 100).
    pub limit: Option<usize>,
}

/// `GET /api/v1/signals`: the latest signals, newest first, as CloudEvents JSON.
#[derive(Debug, Serialize, ToSchema)]
pub struct SignalList {
    #[schema(value_type = Vec<Object>)]
    pub signals: Vec<Box<RawValue>>,
}

/// Body of `POST .../retry`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RetryBody {
    /// The step whose `on_breach` actions run now.
    pub step: String,
    pub note: Option<String>,
}

/// Body of `POST .../resolve`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResolveBody {
    /// The breached step; omit to resolve the instance deadline or stuck breach.
    pub step: Option<String>,
    pub note: Option<String>,
}

/// Body of `POST .../cancel`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelBody {
    pub note: Option<String>,
}

/// What an operator command did.
#[derive(Debug, Serialize, ToSchema)]
pub struct CommandResult {
    /// The request id (from `X-Request-Id`, or generated); part of the signal ids.
    pub request_id: String,
    /// The signals it emitted, as CloudEvents JSON.
    #[schema(value_type = Vec<Object>)]
    pub signals: Vec<Box<RawValue>>,
}

/// An error.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong and, where it helps, what to do.
    pub error: String,
}

/// `GET /livez`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Live {
    pub status: &'static str,
}

/// `GET /readyz`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Readiness {
    pub ready: bool,
    /// Each check and whether it passes.
    pub checks: Vec<Check>,
    /// How far behind the tracker is while catching up (informational, not a check).
    pub catching_up: CatchingUp,
}

/// One readiness check.
#[derive(Debug, Serialize, ToSchema)]
pub struct Check {
    /// `partitions_assigned`, `state_restored`, `store_writable`, `watchdog`.
    pub name: &'static str,
    pub ok: bool,
    /// Why it fails, when it does.
    pub detail: Option<String>,
}

/// Backlog figures.
#[derive(Debug, Serialize, ToSchema)]
pub struct CatchingUp {
    /// True while records are behind.
    pub active: bool,
    /// Records not yet read on owned partitions.
    pub records_behind: u64,
    /// How far the event clock trails the wall clock, in seconds.
    pub event_time_lag_seconds: f64,
}
