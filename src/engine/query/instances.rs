//! Instances of a flow: a filtered page with a stable order and a cursor, and one instance in
//! full (steps, SLA windows, breaches, action runs, audit trail).

use super::*;
use crate::engine::history::HistoryEntry;
use crate::engine::instance::{Instance, Status, StepStatus, SCOPE_DEADLINE, SCOPE_STUCK};
use crate::engine::Engine;
use crate::flow::{ActionRef, FlowDef};
use crate::time::Millis;

impl Engine {
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
pub(super) fn action_names(definition: &FlowDef, list: &[ActionRef]) -> Vec<String> {
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
