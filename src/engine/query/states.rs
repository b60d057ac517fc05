//! Derived instance states the views filter and count by: breached and stuck are not stored
//! flags but follow from the step windows and the event clock at the time of the query.

use super::InstanceState;
use crate::engine::instance::{Instance, Status, StepStatus};
use crate::engine::Engine;
use crate::flow::FlowDef;

impl Engine {
    pub(super) fn has_state(&self, instance: &Instance, definition: &FlowDef, state: InstanceState) -> bool {
        match state {
            InstanceState::Open => instance.status == Status::Open,
            InstanceState::Completed => instance.status == Status::Completed,
            InstanceState::Failed => instance.status == Status::Failed,
            InstanceState::Breached => self.is_breached(instance, definition),
            InstanceState::Stuck => self.is_stuck(instance, definition),
        }
    }

    /// Open and silent past `stuck_after` on the event clock.
    pub(super) fn is_stuck(&self, instance: &Instance, definition: &FlowDef) -> bool {
        instance.status == Status::Open
            && definition
                .stuck_after
                .is_some_and(|after| self.clock > instance.last_event.saturating_add(after))
    }

    /// Open, with a step past its SLA that is still open, or past the instance deadline.
    pub(super) fn is_breached(&self, instance: &Instance, definition: &FlowDef) -> bool {
        instance.status == Status::Open
            && ((0..instance.steps.len())
                .any(|step| self.step_is_breached(instance, definition, step))
                || instance.deadline.breaches > 0
                || definition
                    .deadline
                    .is_some_and(|deadline| self.clock > instance.started.saturating_add(deadline)))
    }

    /// The step is open and has breached (signalled, or past its armed deadline).
    pub(super) fn step_is_breached(&self, instance: &Instance, definition: &FlowDef, step: usize) -> bool {
        let state = &instance.steps[step];
        state.status == StepStatus::Open
            && (state.breaches > 0
                || instance
                    .step_deadline(definition, step)
                    .is_some_and(|deadline| self.clock > deadline.due))
    }
}
