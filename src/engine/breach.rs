//! Timers firing: SLA breaches of steps, instance deadlines, stuck instances and retention
//! expiry, and the actions a breach runs (SPEC 1.6): the built-in `alert`, declared actions,
//! retries that re-open a step's window, and what runs once a retry's attempts are spent.

use super::instance::{Deadline, DueWhat, Instance, Status, SCOPE_DEADLINE, SCOPE_STUCK};
use super::signal::{Reason, SignalKind};
use super::timers::TimerKey;
use super::{ActionRecord, Engine, Output};
use crate::flow::template::Context;
use crate::flow::ActionRef;
use crate::time::Millis;
use serde_json::Value;
use std::sync::Arc;

/// What running a breach's action list did.
#[derive(Default)]
pub(super) struct ActionRuns {
    /// Names of the actions that ran, in order (`data.actions`).
    pub(super) names: Vec<Arc<str>>,
    /// The built-in `alert` ran.
    pub(super) alert: bool,
    /// Declared actions that ran: (action index, run count).
    pub(super) declared: Vec<(usize, u32)>,
    /// A retry ran: the step's window re-opens.
    pub(super) reopen: bool,
}

impl Engine {
    /// An instance's queue entry came due.
    pub(super) fn instance_timer(&mut self, slot: u32, key: TimerKey, out: &mut Vec<Output>) {
        // The queue entry was popped: the instance has none until it is put back.
        let Some(mut instance) = self.instances[slot as usize].take() else {
            return;
        };
        if instance.status != Status::Open {
            self.purge(slot, instance);
            return;
        }
        let definition = &self.flows[usize::from(instance.flow)].def;
        if let Some((deadline, what)) = instance.next_due(definition, self.config.retention) {
            if deadline.key() == key {
                match what {
                    DueWhat::Step(step) => self.step_breached(&mut instance, step, deadline, out),
                    DueWhat::Deadline => {
                        self.instance_breached(&mut instance, Reason::Deadline, deadline, out)
                    }
                    DueWhat::Stuck => {
                        self.instance_breached(&mut instance, Reason::Stuck, deadline, out)
                    }
                }
            }
        }
        self.put_back(slot, instance, None);
    }

    fn step_breached(
        &mut self,
        instance: &mut Instance,
        step: usize,
        deadline: Deadline,
        out: &mut Vec<Output>,
    ) {
        let flows = self.flows.clone();
        let definition = &flows[usize::from(instance.flow)].def.steps[step];
        let state = &mut instance.steps[step];
        state.disarm();
        state.breaches = state.breaches.saturating_add(1);
        let attempt = u32::from(state.breaches);
        let runs = self.run_actions(instance, &definition.on_breach, step as u16, deadline.due);
        instance.steps[step].set_unresolved((!runs.names.is_empty()).then_some(runs.alert));
        if runs.reopen && definition.within.is_some() {
            // The new window's deadline is the old one + within: `StepState::deadline` derives
            // it from the breach count just incremented.
            let seq = self.timers.next_seq();
            instance.steps[step].arm(seq);
        }
        self.emit_breach(
            instance,
            Some(step),
            Reason::Sla,
            deadline.due,
            attempt,
            runs,
            out,
        );
    }

    /// The instance deadline or stuck detection fired (`reason` says which).
    fn instance_breached(
        &mut self,
        instance: &mut Instance,
        reason: Reason,
        deadline: Deadline,
        out: &mut Vec<Output>,
    ) {
        let flows = self.flows.clone();
        let definition = &flows[usize::from(instance.flow)].def;
        let (list, scope) = match reason {
            Reason::Deadline => (&definition.on_deadline, SCOPE_DEADLINE),
            _ => (&definition.on_stuck, SCOPE_STUCK),
        };
        let watch = instance.watch_mut(reason);
        watch.disarm();
        watch.breaches = watch.breaches.saturating_add(1);
        let attempt = u32::from(watch.breaches);
        let runs = self.run_actions(instance, list, scope, deadline.due);
        let ran = (!runs.names.is_empty()).then_some(runs.alert);
        instance.watch_mut(reason).set_unresolved(ran);
        self.emit_breach(instance, None, reason, deadline.due, attempt, runs, out);
    }

    /// Emits the breach, then one `action` signal and one record per declared action run.
    #[allow(clippy::too_many_arguments)]
    fn emit_breach(
        &mut self,
        instance: &Instance,
        step: Option<usize>,
        reason: Reason,
        due: Millis,
        attempt: u32,
        runs: ActionRuns,
        out: &mut Vec<Output>,
    ) {
        let mut breach = self.breach_signal(instance, step, reason, due, attempt);
        breach.data.actions = runs.names;
        breach.alert = runs.alert;
        out.push(Output::Emit(breach));
        let prefix = format!("{reason:?}");
        self.emit_action_runs(instance, step, reason, due, &prefix, runs.declared, out);
    }

    /// Emits one `action` signal and one record per declared action run; `trigger` is
    /// `data.trigger`, and `prefix`/ACTION the id discriminator.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn emit_action_runs(
        &mut self,
        instance: &Instance,
        step: Option<usize>,
        trigger: Reason,
        due: Millis,
        prefix: &str,
        declared: Vec<(usize, u32)>,
        out: &mut Vec<Output>,
    ) {
        if declared.is_empty() {
            return;
        }
        let flows = self.flows.clone();
        let flow = &flows[usize::from(instance.flow)];
        let payloads = instance.lazy_payloads();
        for (action_idx, run) in declared {
            self.stats.actions += 1;
            let action = &flow.def.actions[action_idx];
            let name = self.names.actions[usize::from(instance.flow)][action_idx].clone();
            let event_lookup = |event: usize| payloads.lookup(event);
            let context = Context {
                key: &instance.key,
                flow: &flow.def.name,
                step: step.map(|step| flow.def.steps[step].name.as_str()),
                attempt: Some(run),
                events: &event_lookup,
            };
            let topic = action.publish.topic.render_text(&context);
            let key = action
                .publish
                .key
                .as_ref()
                .map(|key| key.render_text(&context));
            let value = action.publish.value.render(&context);
            let mut signal = self.signal(
                instance,
                SignalKind::Action,
                due,
                step,
                None,
                Some(run),
                &format!("{prefix}/{name}"),
            );
            signal.data.action = Some(name);
            signal.data.trigger = Some(trigger);
            signal.data.actions = vec![signal.data.action.clone().unwrap_or_default()];
            // The same object `json!` builds, without serialising `value` to copy it.
            let mut record = serde_json::Map::new();
            record.insert("topic".into(), Value::String(topic.clone()));
            record.insert("key".into(), key.clone().map_or(Value::Null, Value::String));
            record.insert("value".into(), value.clone());
            signal.data.record = Some(Value::Object(record));
            let signal_id = signal.id;
            out.push(Output::Emit(signal));
            out.push(Output::Publish(ActionRecord {
                topic,
                key,
                value,
                signal_id,
            }));
        }
    }

    /// Runs an action list for a breach due at `due` in `scope` (a step index, or the deadline
    /// or stuck scope). Past the action horizon nothing runs.
    fn run_actions(
        &mut self,
        instance: &mut Instance,
        list: &[ActionRef],
        scope: u16,
        due: Millis,
    ) -> ActionRuns {
        let mut runs = ActionRuns::default();
        if due < self.action_horizon {
            return runs;
        }
        self.run_list(instance, list, scope, 0, &mut runs);
        runs
    }

    /// Runs a step's action list for an operator: like a breach, but whatever the action
    /// horizon, and the caller decides what re-opens.
    pub(super) fn run_operator_actions(
        &mut self,
        instance: &mut Instance,
        list: &[ActionRef],
        scope: u16,
    ) -> ActionRuns {
        let mut runs = ActionRuns::default();
        self.run_list(instance, list, scope, 0, &mut runs);
        runs
    }

    fn run_list(
        &mut self,
        instance: &mut Instance,
        list: &[ActionRef],
        scope: u16,
        depth: u8,
        runs: &mut ActionRuns,
    ) {
        let flows = self.flows.clone();
        let flow = &flows[usize::from(instance.flow)];
        for action_ref in list {
            match *action_ref {
                ActionRef::Alert => {
                    if !runs.alert {
                        runs.alert = true;
                        runs.names.push(self.names.alert.clone());
                    }
                }
                ActionRef::Declared(action_idx) => {
                    let action = &flow.def.actions[action_idx];
                    let spent = action
                        .attempts
                        .is_some_and(|attempts| instance.runs(action_idx, scope) >= attempts);
                    if spent {
                        // `then` of a spent retry; one level only, so a `then` that names a spent
                        // retry cannot loop.
                        if depth == 0 {
                            self.run_list(instance, &action.then, scope, depth + 1, runs);
                        }
                        continue;
                    }
                    let run = instance.count_run(action_idx, scope);
                    runs.names
                        .push(self.names.actions[usize::from(instance.flow)][action_idx].clone());
                    runs.declared.push((action_idx, run));
                    if action.attempts.is_some() && scope < SCOPE_STUCK {
                        runs.reopen = true;
                    }
                }
            }
        }
    }

    /// Retention expired: forget the instance, its key and the aliases that still point at it.
    fn purge(&mut self, slot: u32, instance: Instance) {
        let flow = usize::from(instance.flow);
        let hash = Self::key_hash(instance.flow, &instance.key);
        if let Ok(entry) = self.by_key.find_entry(hash, |&other| other == slot) {
            entry.remove();
        }
        for (alias, value) in instance.aliases() {
            let aliases = &mut self.by_alias[flow][usize::from(*alias)];
            if aliases.get(value) == Some(&slot) {
                aliases.remove(value);
            }
        }
        self.free_instances.push(slot);
        self.instance_changed(slot);
    }
}
