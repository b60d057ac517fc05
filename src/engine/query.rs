//! Read views of the engine for the API and the page: flows with live counts per step, a
//! flow's definition as a graph, instances filtered by state and step with a stable order and
//! a cursor, one instance in full (steps, windows, breaches, action runs, audit trail) and the
//! held orphans. Pure reads of engine state: plain data out, times as event-clock
//! milliseconds, nothing serialised here (the HTTP layer has its own DTOs). Counting walks
//! every instance; that is a few milliseconds per million instances, and it runs on the engine
//! task between two inputs, so views are always consistent.

use super::history::HistoryEntry;
use super::instance::{Instance, Status, StepStatus, SCOPE_DEADLINE, SCOPE_STUCK};
use super::Engine;
use crate::flow::{ActionRef, FlowDef};
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

impl Engine {
    /// Every flow with live counts, in load order.
    pub fn flow_counts(&self) -> Vec<FlowCounts> {
        let mut counts: Vec<FlowCounts> = self
            .flows
            .iter()
            .map(|flow| FlowCounts {
                name: flow.def.name.clone(),
                description: flow.def.description.clone(),
                open: 0,
                completed: 0,
                failed: 0,
                breached: 0,
                stuck: 0,
                steps: flow
                    .def
                    .steps
                    .iter()
                    .map(|step| StepCounts {
                        name: step.name.clone(),
                        ..StepCounts::default()
                    })
                    .collect(),
            })
            .collect();
        for instance in self.instances.iter().flatten() {
            let flow = usize::from(instance.flow);
            let definition = &self.flows[flow].def;
            let counts = &mut counts[flow];
            let stuck = self.is_stuck(instance, definition);
            match instance.status {
                Status::Open => counts.open += 1,
                Status::Completed => counts.completed += 1,
                Status::Failed => counts.failed += 1,
            }
            if self.is_breached(instance, definition) {
                counts.breached += 1;
            }
            if stuck {
                counts.stuck += 1;
            }
            let open = instance.status == Status::Open;
            for (index, step) in instance.steps.iter().enumerate() {
                let step_counts = &mut counts.steps[index];
                match step.status {
                    StepStatus::Waiting if open => step_counts.pending += 1,
                    StepStatus::Waiting => {}
                    StepStatus::Open if open => {
                        step_counts.waiting += 1;
                        if self.step_is_breached(instance, definition, index) {
                            step_counts.breached += 1;
                        }
                        if stuck {
                            step_counts.stuck += 1;
                        }
                    }
                    StepStatus::Open => {}
                    StepStatus::Complete => step_counts.completed += 1,
                    StepStatus::Skipped => {
                        step_counts.completed += 1;
                        step_counts.skipped += 1;
                    }
                }
            }
        }
        counts
    }

    /// The index of a flow by name.
    pub fn flow_index(&self, name: &str) -> Option<usize> {
        self.flows.iter().position(|flow| flow.def.name == name)
    }

    /// A flow's definition as a graph.
    pub fn flow_graph(&self, flow: usize) -> Option<FlowGraph> {
        let definition = &self.flows.get(flow)?.def;
        let event_names = |events: &[usize]| {
            events
                .iter()
                .map(|&e| definition.events[e].name.clone())
                .collect()
        };
        Some(FlowGraph {
            name: definition.name.clone(),
            description: definition.description.clone(),
            start: event_names(&definition.start),
            steps: definition
                .steps
                .iter()
                .map(|step| GraphStep {
                    name: step.name.clone(),
                    after: step
                        .after
                        .iter()
                        .map(|&s| definition.steps[s].name.clone())
                        .collect(),
                    awaits: event_names(&step.awaits),
                    within: step.within,
                    on_breach: action_names(definition, &step.on_breach),
                    conditional: step.when.is_some(),
                })
                .collect(),
            fail: event_names(&definition.fail),
            deadline: definition.deadline,
            stuck_after: definition.stuck_after,
            on_deadline: action_names(definition, &definition.on_deadline),
            on_stuck: action_names(definition, &definition.on_stuck),
            events: definition
                .events
                .iter()
                .map(|event| (event.name.clone(), event.topic.clone()))
                .collect(),
            actions: definition
                .actions
                .iter()
                .map(|action| (action.name.clone(), action.attempts))
                .collect(),
        })
    }

    /// A page of a flow's instances matching the filter, newest start first, ties by key.
    pub fn list_instances(&self, flow: usize, filter: &InstanceFilter) -> InstancePage {
        let Some(found) = self.flows.get(flow) else {
            return InstancePage {
                instances: Vec::new(),
                next_cursor: None,
                total: 0,
            };
        };
        let definition = &found.def;
        let step = filter
            .step
            .as_ref()
            .map(|name| definition.steps.iter().position(|step| &step.name == name));
        let after = filter.cursor.as_deref().and_then(parse_cursor);
        let mut matching: Vec<&Instance> = self
            .instances
            .iter()
            .flatten()
            .filter(|instance| usize::from(instance.flow) == flow)
            .filter(|instance| match step {
                None => true,
                Some(None) => false,
                Some(Some(step)) => {
                    instance.status == Status::Open
                        && instance.steps[step].status == StepStatus::Open
                }
            })
            .filter(|instance| {
                filter
                    .state
                    .is_none_or(|state| self.has_state(instance, definition, state))
            })
            .collect();
        let total = matching.len() as u64;
        // Newest first, then by key: a total order, so pages neither skip nor repeat.
        let order =
            |instance: &&Instance| (std::cmp::Reverse(instance.started), instance.key.clone());
        matching.retain(|instance| {
            after.as_ref().is_none_or(|(started, key)| {
                (std::cmp::Reverse(instance.started), &*instance.key)
                    > (std::cmp::Reverse(*started), key.as_str())
            })
        });
        matching.sort_by_key(order);
        let limit = filter.limit.clamp(1, MAX_PAGE);
        let next_cursor = (matching.len() > limit)
            .then(|| matching[limit - 1])
            .map(|last| format!("{}.{}", last.started, last.key));
        matching.truncate(limit);
        InstancePage {
            instances: matching
                .into_iter()
                .map(|instance| self.summary(instance, definition))
                .collect(),
            next_cursor,
            total,
        }
    }

    /// One instance of a flow in full.
    pub fn instance_detail(&self, flow: usize, key: &str) -> Option<InstanceDetail> {
        let slot = self.find_instance(u16::try_from(flow).ok()?, key)?;
        let instance = self.instances[slot as usize].as_ref()?;
        let definition = &self.flows[flow].def;
        let steps = instance
            .steps
            .iter()
            .enumerate()
            .map(|(index, state)| {
                let opened = match state.status {
                    StepStatus::Waiting => None,
                    StepStatus::Open => Some(state.opened()),
                    // A done step opened when the last of its `after` steps completed.
                    StepStatus::Complete | StepStatus::Skipped => Some(
                        definition.steps[index]
                            .after
                            .iter()
                            .map(|&before| instance.steps[before].completed())
                            .max()
                            .unwrap_or(instance.started),
                    ),
                };
                let completed = state.is_done().then(|| state.completed());
                StepDetail {
                    name: definition.steps[index].name.clone(),
                    status: state.status,
                    opened,
                    completed,
                    windows: windows(instance, definition, index, opened, completed),
                    breaches: u32::from(state.breaches),
                    unresolved: state.unresolved().is_some(),
                }
            })
            .collect();
        let scope_name = |scope: u16| match scope {
            SCOPE_DEADLINE => "deadline".to_string(),
            SCOPE_STUCK => "stuck".to_string(),
            step => definition
                .steps
                .get(usize::from(step))
                .map_or_else(|| step.to_string(), |step| step.name.clone()),
        };
        let actions = instance
            .extras
            .iter()
            .flat_map(|extras| extras.action_runs.iter())
            .map(|(action, scope, runs)| {
                (
                    definition.actions[usize::from(*action)].name.clone(),
                    scope_name(*scope),
                    *runs,
                )
            })
            .collect();
        let (history, history_dropped) = instance.history();
        let flow_idx = instance.flow;
        Some(InstanceDetail {
            flow: definition.name.clone(),
            summary: self.summary(instance, definition),
            steps,
            deadline: definition
                .deadline
                .map(|deadline| instance.started.saturating_add(deadline)),
            deadline_breaches: u32::from(instance.deadline.breaches),
            stuck_due: instance.stuck_due(definition).map(|due| due.due),
            stuck_breaches: u32::from(instance.stuck.breaches),
            actions,
            aliases: instance
                .aliases()
                .iter()
                .map(|(alias, value)| {
                    (
                        definition.aliases[usize::from(*alias)].clone(),
                        value.to_string(),
                    )
                })
                .collect(),
            received: instance.received,
            history: history
                .iter()
                .map(|entry| self.history_view(flow_idx, entry))
                .collect(),
            history_dropped,
        })
    }

    /// Every group of held orphans, oldest first.
    pub fn orphans(&self) -> Vec<OrphanView> {
        let mut views: Vec<OrphanView> = self
            .orphan_groups
            .iter()
            .flatten()
            .map(|group| {
                let flow = usize::from(group.flow);
                OrphanView {
                    flow: self.names.flows[flow].to_string(),
                    alias: group
                        .route
                        .checked_sub(1)
                        .map(|alias| self.names.aliases[flow][usize::from(alias)].to_string()),
                    value: group.value.to_string(),
                    held: group.held() as u32,
                    events: group
                        .event_indices()
                        .map(|event| self.names.events[flow][usize::from(event)].to_string())
                        .collect(),
                    first: group.first(),
                    expires: group.first().saturating_add(self.config.orphan_after),
                }
            })
            .collect();
        views.sort_by(|a, b| (a.first, &a.flow, &a.value).cmp(&(b.first, &b.flow, &b.value)));
        views
    }

    fn summary(&self, instance: &Instance, definition: &FlowDef) -> InstanceSummary {
        let ended = (instance.status != Status::Open).then_some(instance.last_event);
        InstanceSummary {
            key: instance.key.to_string(),
            status: instance.status,
            started: instance.started,
            ended,
            last_event: instance.last_event,
            breached: self.is_breached(instance, definition),
            stuck: self.is_stuck(instance, definition),
            waiting_in: instance
                .steps
                .iter()
                .enumerate()
                .filter(|(_, step)| {
                    instance.status == Status::Open && step.status == StepStatus::Open
                })
                .map(|(index, _)| definition.steps[index].name.clone())
                .collect(),
            breaches: instance
                .steps
                .iter()
                .map(|step| u32::from(step.breaches))
                .sum::<u32>()
                + u32::from(instance.deadline.breaches)
                + u32::from(instance.stuck.breaches),
        }
    }

    fn history_view(&self, flow: u16, entry: &HistoryEntry) -> HistoryView {
        match entry {
            HistoryEntry::Event(event) => HistoryView::Event {
                topic: self.topics.topic_name(event.origin.topic).to_string(),
                partition: event.origin.partition,
                offset: event.origin.offset,
                time: event.time,
                event: self.event_name(flow, event.event).to_string(),
                payload: event.payload.to_string(),
            },
            HistoryEntry::Operator(command) => HistoryView::Operator {
                command: command.command.as_str(),
                time: command.time,
                request_id: command.request_id.to_string(),
                step: command
                    .step
                    .map(|step| self.names.steps[usize::from(flow)][usize::from(step)].to_string()),
                note: command.note.as_deref().map(str::to_string),
                outcome: command.outcome.to_string(),
            },
        }
    }

    fn has_state(&self, instance: &Instance, definition: &FlowDef, state: InstanceState) -> bool {
        match state {
            InstanceState::Open => instance.status == Status::Open,
            InstanceState::Completed => instance.status == Status::Completed,
            InstanceState::Failed => instance.status == Status::Failed,
            InstanceState::Breached => self.is_breached(instance, definition),
            InstanceState::Stuck => self.is_stuck(instance, definition),
        }
    }

    /// Open and silent past `stuck_after` on the event clock.
    fn is_stuck(&self, instance: &Instance, definition: &FlowDef) -> bool {
        instance.status == Status::Open
            && definition
                .stuck_after
                .is_some_and(|after| self.clock > instance.last_event.saturating_add(after))
    }

    /// Open, with a step past its SLA that is still open, or past the instance deadline.
    fn is_breached(&self, instance: &Instance, definition: &FlowDef) -> bool {
        instance.status == Status::Open
            && ((0..instance.steps.len())
                .any(|step| self.step_is_breached(instance, definition, step))
                || instance.deadline.breaches > 0
                || definition
                    .deadline
                    .is_some_and(|deadline| self.clock > instance.started.saturating_add(deadline)))
    }

    /// The step is open and has breached (signalled, or past its armed deadline).
    fn step_is_breached(&self, instance: &Instance, definition: &FlowDef, step: usize) -> bool {
        let state = &instance.steps[step];
        state.status == StepStatus::Open
            && (state.breaches > 0
                || instance
                    .step_deadline(definition, step)
                    .is_some_and(|deadline| self.clock > deadline.due))
    }
}

/// The SLA windows of a step: the first from its opening, one more per retry (each re-opens
/// from the previous deadline), the last closed by the completion if there was one.
fn windows(
    instance: &Instance,
    definition: &FlowDef,
    step: usize,
    opened: Option<Millis>,
    completed: Option<Millis>,
) -> Vec<Window> {
    let (Some(opened), Some(within)) = (opened, definition.steps[step].within) else {
        return Vec::new();
    };
    let state = &instance.steps[step];
    if state.status == StepStatus::Skipped {
        return Vec::new();
    }
    let retries: u32 = definition.steps[step]
        .on_breach
        .iter()
        .filter_map(|action| match action {
            ActionRef::Declared(action) if definition.actions[*action].attempts.is_some() => {
                Some(instance.runs(*action, step as u16))
            }
            _ => None,
        })
        .sum();
    let count = retries.min(u32::from(state.breaches)) + 1;
    (0..count)
        .map(|index| {
            let start = opened.saturating_add(within.saturating_mul(i64::from(index)));
            let due = start.saturating_add(within);
            let last = index + 1 == count;
            let closed = completed.filter(|_| last);
            Window {
                opened: start,
                due,
                completed: closed,
                breached: !last
                    || closed.is_some_and(|at| at > due)
                    || u32::from(state.breaches) > index,
            }
        })
        .collect()
}

/// Names of an action list (`alert` for the built-in).
fn action_names(definition: &FlowDef, list: &[ActionRef]) -> Vec<String> {
    list.iter()
        .map(|action| match action {
            ActionRef::Alert => "alert".to_string(),
            ActionRef::Declared(action) => definition.actions[*action].name.clone(),
        })
        .collect()
}

/// Whether a cursor has the shape [`InstancePage::next_cursor`] gives.
pub fn is_cursor(text: &str) -> bool {
    parse_cursor(text).is_some()
}

/// Splits a cursor `STARTED.KEY` (keys may contain dots; the start time cannot).
fn parse_cursor(cursor: &str) -> Option<(Millis, String)> {
    let (started, key) = cursor.split_once('.')?;
    Some((started.parse().ok()?, key.to_string()))
}
