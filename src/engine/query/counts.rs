//! Flows with live counts per step and a flow's definition as a graph: walks every instance
//! once per call (a few milliseconds per million instances).

use super::instances::action_names;
use super::{FlowCounts, FlowGraph, GraphStep, StepCounts};
use crate::engine::instance::{Status, StepStatus};
use crate::engine::Engine;

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
}
