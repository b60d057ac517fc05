//! Operator commands: retry a step now, resolve a breach, cancel an instance. They reach the
//! engine as `Input`s carrying the command's own time and the caller's request id, so they are
//! as deterministic as records: the same commands give the same signals with the same ids. A
//! command that does not apply (unknown instance, ended instance, nothing to resolve) changes
//! nothing; [`Engine::operator_refusal`] says why beforehand, so the API can answer 404 or 409
//! on the same engine state the command then sees.

use super::history::{HistoryEntry, OperatorCommand, OperatorEntry};
use super::instance::{Instance, Status, StepStatus};
use super::signal::{Reason, SignalKind};
use super::{Engine, Output};
use crate::flow::ActionRef;
use crate::time::Millis;
use std::sync::Arc;

/// The `data.event` of signals an operator command caused.
pub const OPERATOR: &str = "operator";

/// One operator command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OperatorRequest {
    pub flow: String,
    pub key: String,
    /// The step it concerns (retry: required; resolve: none for the instance deadline or
    /// stuck breach).
    pub step: Option<String>,
    /// The operator's note, kept in the history and the signals' `data.detail`.
    pub note: Option<String>,
    /// The caller's request id: part of the signal ids, so a re-sent command is recognisable.
    pub request_id: String,
    /// When the operator asked (wall clock of the shell, epoch milliseconds).
    pub time: Millis,
}

/// Why a command does not apply.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum OperatorRefusal {
    #[error("no flow named {0:?}")]
    UnknownFlow(String),
    #[error("flow {flow} has no instance with key {key:?}")]
    UnknownInstance { flow: String, key: String },
    #[error("flow {flow} has no step named {step:?}")]
    UnknownStep { flow: String, step: String },
    #[error("a step is required")]
    StepRequired,
    #[error("the instance has already ended ({0})")]
    Ended(&'static str),
    #[error("{0}")]
    NotApplicable(String),
}

impl Engine {
    /// Why `command` would change nothing, or `None` when it applies.
    pub fn operator_refusal(
        &self,
        command: OperatorCommand,
        request: &OperatorRequest,
    ) -> Option<OperatorRefusal> {
        self.locate(command, request).err()
    }

    /// Applies an operator command (see the module documentation).
    pub(super) fn apply_operator(
        &mut self,
        command: OperatorCommand,
        request: &OperatorRequest,
        out: &mut Vec<Output>,
    ) {
        let Ok((slot, step)) = self.locate(command, request) else {
            return;
        };
        let Some(mut instance) = self.instances[slot as usize].take() else {
            return;
        };
        let timer = self.timer_key(&instance);
        let outcome = match command {
            OperatorCommand::Retry => {
                // `locate` checked that a retry step is given.
                let step = step.unwrap_or_default();
                self.operator_retry(&mut instance, step, request, out)
            }
            OperatorCommand::Resolve => self.operator_resolve(&mut instance, step, request, out),
            OperatorCommand::Cancel => self.operator_cancel(&mut instance, request, out),
        };
        let entry = OperatorEntry {
            command,
            time: request.time,
            request_id: request.request_id.as_str().into(),
            step: step.map(|step| step as u16),
            note: request.note.as_deref().map(Box::from),
            outcome: outcome.into_boxed_str(),
        };
        instance.push_history(HistoryEntry::Operator(entry), self.config.history_limit);
        self.put_back(slot, instance, timer);
    }

    /// Finds the instance slot and step index, checking that the command applies.
    fn locate(
        &self,
        command: OperatorCommand,
        request: &OperatorRequest,
    ) -> Result<(u32, Option<usize>), OperatorRefusal> {
        let flow = self
            .flow_index(&request.flow)
            .ok_or_else(|| OperatorRefusal::UnknownFlow(request.flow.clone()))?;
        let definition = &self.flows[flow].def;
        let slot = self
            .find_instance(flow as u16, &request.key)
            .ok_or_else(|| OperatorRefusal::UnknownInstance {
                flow: request.flow.clone(),
                key: request.key.clone(),
            })?;
        let step = match &request.step {
            Some(name) => Some(
                definition
                    .steps
                    .iter()
                    .position(|step| &step.name == name)
                    .ok_or_else(|| OperatorRefusal::UnknownStep {
                        flow: request.flow.clone(),
                        step: name.clone(),
                    })?,
            ),
            None => None,
        };
        let instance = self.instances[slot as usize].as_ref().ok_or_else(|| {
            OperatorRefusal::UnknownInstance {
                flow: request.flow.clone(),
                key: request.key.clone(),
            }
        })?;
        match instance.status {
            Status::Open => {}
            Status::Completed => return Err(OperatorRefusal::Ended("completed")),
            Status::Failed => return Err(OperatorRefusal::Ended("failed")),
        }
        let not = |text: String| Err(OperatorRefusal::NotApplicable(text));
        match command {
            OperatorCommand::Retry => {
                let step = step.ok_or(OperatorRefusal::StepRequired)?;
                let name = &definition.steps[step].name;
                if instance.steps[step].status != StepStatus::Open {
                    return not(format!(
                        "step {name} is not open, so there is nothing to retry"
                    ));
                }
                if !self.would_run_declared(instance, &definition.steps[step].on_breach, step) {
                    return not(format!(
                        "step {name} has no declared on_breach action left to run (none declared, or its retries are spent)"
                    ));
                }
            }
            OperatorCommand::Resolve => match step {
                Some(step) => {
                    let state = &instance.steps[step];
                    if state.status != StepStatus::Open || state.unresolved().is_none() {
                        return not(format!(
                            "step {} has no unresolved breach (one that ran actions) to resolve",
                            definition.steps[step].name
                        ));
                    }
                }
                None => {
                    if instance.deadline.unresolved().is_none()
                        && instance.stuck.unresolved().is_none()
                    {
                        return not(
                            "the instance has no deadline or stuck breach to resolve; name a step"
                                .to_string(),
                        );
                    }
                }
            },
            OperatorCommand::Cancel => {}
        }
        Ok((slot, step))
    }

    /// Whether running `list` for `step` would run at least one declared action (mirrors
    /// `run_list`: a spent retry runs its `then`, one level deep).
    fn would_run_declared(&self, instance: &Instance, list: &[ActionRef], step: usize) -> bool {
        let definition = &self.flows[usize::from(instance.flow)].def;
        let runnable = |action: usize| {
            let declared = &definition.actions[action];
            declared
                .attempts
                .is_none_or(|attempts| instance.runs(action, step as u16) < attempts)
        };
        list.iter().any(|action| match *action {
            ActionRef::Alert => false,
            ActionRef::Declared(action) if runnable(action) => true,
            ActionRef::Declared(action) => definition.actions[action]
                .then
                .iter()
                .any(|then| matches!(*then, ActionRef::Declared(next) if runnable(next))),
        })
    }

    /// Runs the step's `on_breach` chain now, as a breach would (counting attempts; a spent
    /// retry runs its `then`), without re-opening the window: only a breach does that.
    fn operator_retry(
        &mut self,
        instance: &mut Instance,
        step: usize,
        request: &OperatorRequest,
        out: &mut Vec<Output>,
    ) -> String {
        let flows = self.flows.clone();
        let list = &flows[usize::from(instance.flow)].def.steps[step].on_breach;
        let discriminator = format!("{OPERATOR}/{}", request.request_id);
        let runs = self.run_operator_actions(instance, list, step as u16);
        let ran: Vec<String> = runs.names.iter().map(|name| name.to_string()).collect();
        let first = out.len();
        self.emit_action_runs(
            instance,
            Some(step),
            Reason::Operator,
            request.time,
            &discriminator,
            runs.declared,
            out,
        );
        for output in &mut out[first..] {
            if let Output::Emit(signal) = output {
                signal.data.event = Some(Arc::from(OPERATOR));
                signal.data.detail.clone_from(&request.note);
                signal.alert = runs.alert;
            }
        }
        format!("ran {}", ran.join(", "))
    }

    /// Emits `resolved` for the step's breach (or the instance deadline or stuck breach) and
    /// clears its unresolved mark, so a later completion does not resolve it again.
    fn operator_resolve(
        &mut self,
        instance: &mut Instance,
        step: Option<usize>,
        request: &OperatorRequest,
        out: &mut Vec<Output>,
    ) -> String {
        let mut resolved = Vec::new();
        let targets: Vec<(Option<usize>, Reason)> = match step {
            Some(step) => vec![(Some(step), Reason::Sla)],
            None => {
                let mut targets = Vec::new();
                if instance.deadline.unresolved().is_some() {
                    targets.push((None, Reason::Deadline));
                }
                if instance.stuck.unresolved().is_some() {
                    targets.push((None, Reason::Stuck));
                }
                targets
            }
        };
        for (step, reason) in targets {
            let (attempt, alerted) = match step {
                Some(step) => {
                    let state = &mut instance.steps[step];
                    let alerted = state.unresolved();
                    state.set_unresolved(None);
                    (u32::from(state.breaches), alerted)
                }
                None => {
                    let watch = instance.watch_mut(reason);
                    (u32::from(watch.breaches), watch.take_unresolved())
                }
            };
            let mut signal = self.signal(
                instance,
                SignalKind::Resolved,
                request.time,
                step,
                Some(reason),
                Some(attempt),
                &format!("{OPERATOR}/{}", request.request_id),
            );
            signal.data.event = Some(Arc::from(OPERATOR));
            signal.data.detail.clone_from(&request.note);
            signal.alert = alerted == Some(true);
            out.push(Output::Emit(signal));
            resolved.push(reason.as_str());
        }
        format!("resolved the {} breach", resolved.join(" and "))
    }

    /// Ends the instance as failed by an operator.
    fn operator_cancel(
        &mut self,
        instance: &mut Instance,
        request: &OperatorRequest,
        out: &mut Vec<Output>,
    ) -> String {
        // An instance never ends before its latest event, whatever the caller's clock says.
        let at = request.time.max(instance.last_event);
        self.stats.failed += 1;
        self.end(instance, Status::Failed, at);
        let mut signal = self.signal(
            instance,
            SignalKind::Failed,
            at,
            None,
            Some(Reason::Operator),
            None,
            &format!("{OPERATOR}/{}", request.request_id),
        );
        signal.data.event = Some(Arc::from(OPERATOR));
        signal.data.detail.clone_from(&request.note);
        out.push(Output::Emit(signal));
        self.resolve_watch(instance, Reason::Deadline, at, out);
        "cancelled: ended as failed".to_string()
    }
}
