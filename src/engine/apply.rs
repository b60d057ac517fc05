//! Applying a recognised event: routing it to its instance (by key or alias), opening
//! instances, completing and opening steps, failing and completing instances, and the
//! deviations and after-the-fact breaches of SPEC 1.3. Instances are taken out of their slot
//! while they change, so the engine's other tables stay borrowable.

use super::correlate::Occurrence;
use super::history::{HistoryEntry, ReceivedEvent};
use super::instance::{Deadline, DueWhat, Instance, Status, StepState, StepStatus, Watch};
use super::signal::{Reason, SignalKind};
use super::{Engine, Output};
use crate::flow::EventRole;
use crate::time::Millis;

impl Engine {
    /// Routes one recognised event to its instance, opening or holding as the rules say, then
    /// hands over orphans that the event released.
    pub(super) fn route(&mut self, occurrence: Occurrence<'_>, out: &mut Vec<Output>) {
        let flow_idx = usize::from(occurrence.flow);
        let flow = &self.flows[flow_idx];
        let event = &flow.def.events[usize::from(occurrence.event)];
        let role = flow.roles[usize::from(occurrence.event)];
        let (route, slot) = match event.alias {
            Some(alias) => (
                alias as u16 + 1,
                self.by_alias[flow_idx][alias]
                    .get(&*occurrence.key)
                    .copied(),
            ),
            None => (0, self.find_instance(occurrence.flow, &occurrence.key)),
        };
        match slot {
            Some(slot) => self.apply_event(slot, occurrence, out),
            None if role == EventRole::Start && route == 0 => self.open_instance(occurrence, out),
            None => self.hold(route, occurrence),
        }
        while let Some((flow, route, value, slot)) = self.pending_releases.pop_front() {
            self.release_orphans(flow, route, &value, slot, out);
        }
    }

    fn open_instance(&mut self, mut occurrence: Occurrence<'_>, out: &mut Vec<Output>) {
        let flow = &self.flows[usize::from(occurrence.flow)];
        let definition = &flow.def;
        let started = occurrence.time;
        let deadline = definition.deadline.map(|_| self.timers.next_seq());
        let stuck = definition.stuck_after.map(|_| self.timers.next_seq());
        let mut instance = Instance {
            flow: occurrence.flow,
            status: Status::Open,
            received: 1,
            key: Box::from(&*occurrence.key),
            started,
            last_event: started,
            steps: vec![StepState::waiting(); definition.steps.len()].into_boxed_slice(),
            deadline: Watch::armed_with(deadline),
            stuck: Watch::armed_with(stuck),
            seen_ids: occurrence.id.into_iter().collect(),
            payloads: None,
            extras: None,
        };
        if let Some(payload) = occurrence.payload.take() {
            instance.keep_payload(usize::from(occurrence.event), &payload);
        }
        self.record_received(&mut instance, &mut occurrence);
        let slot = match self.free_instances.pop() {
            Some(slot) => slot,
            None => {
                self.instances.push(None);
                (self.instances.len() - 1) as u32
            }
        };
        let hash = Self::key_hash(occurrence.flow, &instance.key);
        let instances = &self.instances;
        self.by_key.insert_unique(hash, slot, |&other| {
            instances[other as usize]
                .as_ref()
                .map_or(0, |inst| Self::key_hash(inst.flow, &inst.key))
        });
        self.stats.started += 1;
        self.open_instances += 1;
        let mut signal = self.signal(
            &instance,
            SignalKind::Started,
            started,
            None,
            None,
            None,
            "",
        );
        signal.data.event = Some(self.event_name(occurrence.flow, occurrence.event));
        out.push(Output::Emit(signal));
        if occurrence.skewed {
            self.deviation(&instance, &occurrence, Reason::ClockSkew, None, out);
        }
        self.register_links(slot, &mut instance, &occurrence);
        let flows = self.flows.clone();
        for &step in &flows[usize::from(occurrence.flow)].initial_steps {
            self.open_step(&mut instance, step, started, out);
        }
        self.complete_if_done(&mut instance, started, out);
        self.put_back(slot, instance, None);
        if self.orphan_index[usize::from(occurrence.flow)][0].contains_key(&*occurrence.key) {
            let route_key = Box::from(&*occurrence.key);
            self.pending_releases
                .push_back((occurrence.flow, 0, route_key, slot));
        }
    }

    /// Applies an event to an existing instance.
    pub(super) fn apply_event(
        &mut self,
        slot: u32,
        mut occurrence: Occurrence<'_>,
        out: &mut Vec<Output>,
    ) {
        let Some(mut instance) = self.instances[slot as usize].take() else {
            return;
        };
        let timer = self.timer_key(&instance);
        instance.received = instance.received.wrapping_add(1);
        self.record_received(&mut instance, &mut occurrence);
        let role = self.flows[usize::from(instance.flow)].roles[usize::from(occurrence.event)];
        if let Some(id) = occurrence.id {
            if !instance.record_id(id) {
                self.stats.duplicates += 1;
                self.deviation(&instance, &occurrence, Reason::Duplicate, None, out);
                self.put_back(slot, instance, timer);
                return;
            }
        }
        if occurrence.skewed {
            self.deviation(&instance, &occurrence, Reason::ClockSkew, None, out);
        }
        if instance.status != Status::Open {
            self.register_links(slot, &mut instance, &occurrence);
            let reason = if role == EventRole::Start {
                Reason::Repeated
            } else {
                Reason::LateEvent
            };
            self.deviation(&instance, &occurrence, reason, None, out);
            self.put_back(slot, instance, timer);
            return;
        }
        self.stuck_on_event(&mut instance, occurrence.time, out);
        if let Some(payload) = occurrence.payload.take() {
            instance.keep_payload(usize::from(occurrence.event), &payload);
        }
        self.register_links(slot, &mut instance, &occurrence);
        match role {
            EventRole::Start => self.deviation(&instance, &occurrence, Reason::Repeated, None, out),
            EventRole::Await(step) => {
                let state = &mut instance.steps[step];
                match state.status {
                    StepStatus::Waiting => {
                        state.keep_pending(occurrence.time);
                        self.deviation(&instance, &occurrence, Reason::OutOfOrder, Some(step), out);
                    }
                    StepStatus::Open => {
                        let completion = occurrence.time.max(state.opened());
                        self.complete_step(&mut instance, step, completion, out);
                        self.complete_if_done(&mut instance, occurrence.time, out);
                    }
                    StepStatus::Complete | StepStatus::Skipped => {
                        self.deviation(&instance, &occurrence, Reason::Repeated, Some(step), out)
                    }
                }
            }
            EventRole::Fail => self.fail(&mut instance, &occurrence, out),
            EventRole::Other => {}
        }
        self.put_back(slot, instance, timer);
    }

    /// Adds the event to the instance's audit trail (when it is on).
    fn record_received(&self, instance: &mut Instance, occurrence: &mut Occurrence<'_>) {
        if let Some(payload) = occurrence.raw.take() {
            let entry = HistoryEntry::Event(ReceivedEvent {
                origin: occurrence.origin,
                time: occurrence.time,
                event: occurrence.event,
                payload,
            });
            instance.push_history(entry, self.config.history_limit);
        }
    }

    /// Stuck detection on an event: a stuck period the event proves (after the fact), the
    /// resolution of a stuck breach that ran actions, and re-arming. Stuck is measured from the
    /// latest event time, so an event older than that (a late arrival) changes nothing: the
    /// instance is exactly as quiet as before.
    fn stuck_on_event(&mut self, instance: &mut Instance, time: Millis, out: &mut Vec<Output>) {
        let flows = self.flows.clone();
        let definition = &flows[usize::from(instance.flow)].def;
        if definition.stuck_after.is_none() || time <= instance.last_event {
            return;
        }
        if let Some(armed) = instance
            .stuck_due(definition)
            .filter(|armed| time > armed.due)
        {
            self.after_the_fact(instance, DueWhat::Stuck, armed.due, out);
        }
        self.resolve_watch(instance, Reason::Stuck, time, out);
        instance.last_event = time;
        instance.stuck.arm(self.timers.next_seq());
    }

    /// Completes an open step at `completion`, signalling a late breach first when the
    /// completion is past the window's deadline, then opens the steps that waited for it.
    fn complete_step(
        &mut self,
        instance: &mut Instance,
        step: usize,
        completion: Millis,
        out: &mut Vec<Output>,
    ) {
        let flows = self.flows.clone();
        let armed = instance.step_deadline(&flows[usize::from(instance.flow)].def, step);
        instance.steps[step].disarm();
        if let Some(deadline) = armed.filter(|deadline| completion > deadline.due) {
            self.after_the_fact(instance, DueWhat::Step(step), deadline.due, out);
        }
        let state = &mut instance.steps[step];
        let opened = state.opened();
        state.finish(StepStatus::Complete, completion);
        let late = state.breaches > 0;
        let resolve = state
            .unresolved()
            .map(|alerted| (u32::from(state.breaches), alerted));
        state.set_unresolved(None);
        let mut signal = self.signal(
            instance,
            SignalKind::StepCompleted,
            completion,
            Some(step),
            None,
            None,
            "",
        );
        signal.data.late = Some(late);
        signal.duration = Some(completion.saturating_sub(opened).max(0));
        out.push(Output::Emit(signal));
        if let Some((attempt, alerted)) = resolve {
            let signal = self.signal(
                instance,
                SignalKind::Resolved,
                completion,
                Some(step),
                Some(Reason::Sla),
                Some(attempt),
                "",
            );
            self.push_resolved(signal, alerted, out);
        }
        self.open_dependents(instance, step, out);
    }

    fn open_dependents(&mut self, instance: &mut Instance, step: usize, out: &mut Vec<Output>) {
        let flow = self.flows.clone();
        let flow = &flow[usize::from(instance.flow)];
        for &dependent in &flow.dependents[step] {
            if instance.steps[dependent].status != StepStatus::Waiting {
                continue;
            }
            let after = &flow.def.steps[dependent].after;
            if after.iter().all(|&before| instance.steps[before].is_done()) {
                let at = after
                    .iter()
                    .map(|&before| instance.steps[before].completed())
                    .max()
                    .unwrap_or(instance.started);
                self.open_step(instance, dependent, at, out);
            }
        }
    }

    /// Opens a step at `at`: evaluates its condition, arms its SLA, and completes it at once if
    /// its `await` event already arrived.
    fn open_step(
        &mut self,
        instance: &mut Instance,
        step: usize,
        at: Millis,
        out: &mut Vec<Output>,
    ) {
        let flows = self.flows.clone();
        let flow = &flows[usize::from(instance.flow)];
        let definition = &flow.def.steps[step];
        if let Some(condition) = &definition.when {
            let event_names = &self.names.events[usize::from(instance.flow)];
            let parsed = instance.kept_payloads();
            let payloads = parsed
                .iter()
                .map(|(event, payload)| (&*event_names[*event], payload));
            let verdict = condition.evaluate(&instance.key, payloads);
            drop(parsed);
            let holds = match verdict {
                Ok(holds) => holds,
                Err(detail) => {
                    let mut signal = self.signal(
                        instance,
                        SignalKind::Deviation,
                        at,
                        Some(step),
                        Some(Reason::ConditionError),
                        None,
                        "",
                    );
                    signal.data.detail = Some(detail);
                    out.push(Output::Emit(signal));
                    false
                }
            };
            if !holds {
                instance.steps[step].finish(StepStatus::Skipped, at);
                let mut signal = self.signal(
                    instance,
                    SignalKind::StepCompleted,
                    at,
                    Some(step),
                    None,
                    None,
                    "",
                );
                signal.data.late = Some(false);
                signal.data.skipped = Some(true);
                out.push(Output::Emit(signal));
                self.open_dependents(instance, step, out);
                return;
            }
        }
        let pending = instance.steps[step].pending();
        instance.steps[step].open(at);
        if definition.within.is_some() {
            let seq = self.timers.next_seq();
            instance.steps[step].arm(seq);
        }
        if let Some(pending) = pending {
            self.complete_step(instance, step, pending.max(at), out);
        }
    }

    /// Completes the instance when every step is done. `record_time` is the time of the record
    /// that ended it: deadlines before it that were not signalled are signalled first.
    pub(super) fn complete_if_done(
        &mut self,
        instance: &mut Instance,
        record_time: Millis,
        out: &mut Vec<Output>,
    ) {
        if instance.status != Status::Open || !instance.all_steps_done() {
            return;
        }
        let completion = instance
            .steps
            .iter()
            .map(StepState::completed)
            .max()
            .unwrap_or(instance.started);
        self.signal_passed_deadlines(instance, record_time, out);
        self.stats.completed += 1;
        self.end(instance, Status::Completed, completion);
        let mut signal = self.signal(
            instance,
            SignalKind::Completed,
            completion,
            None,
            None,
            None,
            "",
        );
        signal.duration = Some(completion.saturating_sub(instance.started).max(0));
        out.push(Output::Emit(signal));
        self.resolve_watch(instance, Reason::Deadline, completion, out);
    }

    fn fail(
        &mut self,
        instance: &mut Instance,
        occurrence: &Occurrence<'_>,
        out: &mut Vec<Output>,
    ) {
        self.signal_passed_deadlines(instance, occurrence.time, out);
        self.stats.failed += 1;
        self.end(instance, Status::Failed, occurrence.time);
        let mut signal = self.signal(
            instance,
            SignalKind::Failed,
            occurrence.time,
            None,
            None,
            None,
            "",
        );
        signal.data.event = Some(self.event_name(instance.flow, occurrence.event));
        signal.duration = Some(occurrence.time.saturating_sub(instance.started).max(0));
        out.push(Output::Emit(signal));
        self.resolve_watch(instance, Reason::Deadline, occurrence.time, out);
    }

    /// Signals, without actions and in deadline order, every armed step deadline and the
    /// instance deadline that lie before `time` (SPEC 1.3, breaches after the fact).
    fn signal_passed_deadlines(
        &mut self,
        instance: &mut Instance,
        time: Millis,
        out: &mut Vec<Output>,
    ) {
        let flows = self.flows.clone();
        let definition = &flows[usize::from(instance.flow)].def;
        let mut passed: Vec<(Deadline, DueWhat)> = (0..instance.steps.len())
            .filter_map(|index| {
                instance
                    .step_deadline(definition, index)
                    .filter(|d| d.due < time)
                    .map(|d| (d, DueWhat::Step(index)))
            })
            .collect();
        let retention = self.config.retention;
        if let Some(deadline) = instance
            .deadline_due(definition, retention)
            .filter(|d| d.due < time)
        {
            passed.push((deadline, DueWhat::Deadline));
        }
        passed.sort_by_key(|(deadline, _)| deadline.key());
        for (deadline, what) in passed {
            self.after_the_fact(instance, what, deadline.due, out);
        }
    }

    /// Emits `resolved` for the instance deadline or stuck breach (`reason`) if it ran actions
    /// and was not resolved yet.
    pub(super) fn resolve_watch(
        &mut self,
        instance: &mut Instance,
        reason: Reason,
        time: Millis,
        out: &mut Vec<Output>,
    ) {
        if let Some(alerted) = instance.watch_mut(reason).take_unresolved() {
            let attempt = Some(u32::from(instance.watch_mut(reason).breaches));
            let signal = self.signal(
                instance,
                SignalKind::Resolved,
                time,
                None,
                Some(reason),
                attempt,
                "",
            );
            self.push_resolved(signal, alerted, out);
        }
    }

    /// Ends the instance: drops its pending timers and arms its retention expiry (the
    /// `deadline` watch of an ended instance is its retention).
    pub(super) fn end(&mut self, instance: &mut Instance, status: Status, at: Millis) {
        instance.status = status;
        instance.last_event = at;
        self.open_instances -= 1;
        for step in instance.steps.iter_mut() {
            step.disarm();
        }
        instance.stuck.disarm();
        instance.deadline.arm(self.timers.next_seq());
    }

    /// Registers the event's links for the instance and queues the orphans they release.
    fn register_links(&mut self, slot: u32, instance: &mut Instance, occurrence: &Occurrence<'_>) {
        let flow = usize::from(instance.flow);
        for (alias, value) in &occurrence.links {
            let value: &str = value;
            // A value already in the table (most events repeat their links) keeps its key:
            // only a new value is copied.
            let table = &mut self.by_alias[flow][usize::from(*alias)];
            let previous = match table.get_mut(value) {
                Some(owner) => Some(std::mem::replace(owner, slot)),
                None => table.insert(Box::from(value), slot),
            };
            if let Some(previous) = previous.filter(|&previous| previous != slot) {
                // The alias moved away: the instance it pointed at no longer owns it.
                self.instance_changed(previous);
            }
            instance.remember_alias(*alias, value);
            if self.orphan_index[flow][usize::from(*alias) + 1].contains_key(value) {
                self.pending_releases
                    .push_back((instance.flow, *alias + 1, Box::from(value), slot));
            }
        }
    }

    /// Puts an instance back in its slot and moves its timer-queue entry from `timer` (where
    /// it was when the instance was taken out) to its earliest armed deadline now.
    pub(super) fn put_back(
        &mut self,
        slot: u32,
        instance: Instance,
        mut timer: Option<super::timers::TimerKey>,
    ) {
        let next = self.timer_key(&instance);
        self.timers
            .reschedule(&mut timer, next, super::timers::TimerTarget::Instance(slot));
        self.instances[slot as usize] = Some(instance);
        self.instance_changed(slot);
    }

    /// The instance's entry in the timer queue (its earliest armed deadline).
    pub(super) fn timer_key(&self, instance: &Instance) -> Option<super::timers::TimerKey> {
        instance.timer_key(
            &self.flows[usize::from(instance.flow)].def,
            self.config.retention,
        )
    }
}
