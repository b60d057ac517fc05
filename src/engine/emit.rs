//! Building the engine's signals: instance-level signals with their deterministic ids
//! (SPEC 2), breaches (counted, before their actions are known, or after the fact with none),
//! deviations and resolutions.

use super::correlate::Occurrence;
use super::instance::{DueWhat, Instance};
use super::signal::{signal_id, IdPart, Reason, Signal, SignalData, SignalKind};
use super::{Engine, Output};
use crate::time::{format_rfc3339, Millis};
use std::sync::Arc;

impl Engine {
    /// A breach noticed only when a later event arrived: signalled with no actions.
    /// Disarms the deadline `what`, counts the breach and signals it, all without actions.
    pub(super) fn after_the_fact(
        &mut self,
        instance: &mut Instance,
        what: DueWhat,
        due: Millis,
        out: &mut Vec<Output>,
    ) {
        let (step, reason) = match what {
            DueWhat::Step(step) => (Some(step), Reason::Sla),
            DueWhat::Deadline => (None, Reason::Deadline),
            DueWhat::Stuck => (None, Reason::Stuck),
        };
        let breaches = match what {
            DueWhat::Step(step) => {
                let state = &mut instance.steps[step];
                state.disarm();
                state.breaches = state.breaches.saturating_add(1);
                state.breaches
            }
            DueWhat::Deadline | DueWhat::Stuck => {
                let watch = instance.watch_mut(reason);
                watch.disarm();
                watch.breaches = watch.breaches.saturating_add(1);
                watch.breaches
            }
        };
        let mut signal = self.breach_signal(instance, step, reason, due, u32::from(breaches));
        signal.data.after_the_fact = Some(true);
        out.push(Output::Emit(signal));
    }

    /// A `breached` signal (counted), before its actions are known.
    pub(super) fn breach_signal(
        &mut self,
        instance: &Instance,
        step: Option<usize>,
        reason: Reason,
        due: Millis,
        attempt: u32,
    ) -> Signal {
        self.stats.breaches += 1;
        self.signal(
            instance,
            SignalKind::Breached,
            due,
            step,
            Some(reason),
            Some(attempt),
            "",
        )
    }

    /// The interned name of an event, for `data.event`.
    pub(super) fn event_name(&self, flow: u16, event: u16) -> Arc<str> {
        self.names.events[usize::from(flow)][usize::from(event)].clone()
    }

    /// A resolution goes to the alerts topic when the breach it resolves did.
    pub(super) fn push_resolved(&mut self, mut signal: Signal, alerted: bool, out: &mut Vec<Output>) {
        signal.alert = alerted;
        out.push(Output::Emit(signal));
    }

    pub(super) fn deviation(
        &mut self,
        instance: &Instance,
        occurrence: &Occurrence<'_>,
        reason: Reason,
        step: Option<usize>,
        out: &mut Vec<Output>,
    ) {
        let origin = &occurrence.origin;
        let discriminator = format!(
            "{}/{}/{}#{}",
            self.topics.topic_name(origin.topic),
            origin.partition,
            origin.offset,
            instance.received
        );
        let mut signal = self.signal(
            instance,
            SignalKind::Deviation,
            occurrence.time,
            step,
            Some(reason),
            None,
            &discriminator,
        );
        signal.data.event = Some(self.event_name(instance.flow, occurrence.event));
        out.push(Output::Emit(signal));
    }

    /// Builds an instance-level signal with the required data and a deterministic id.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn signal(
        &self,
        instance: &Instance,
        kind: SignalKind,
        time: Millis,
        step: Option<usize>,
        reason: Option<Reason>,
        attempt: Option<u32>,
        discriminator: &str,
    ) -> Signal {
        let flow = usize::from(instance.flow);
        let step_name = step.map(|step| self.names.steps[flow][step].clone());
        let id = signal_id(&[
            IdPart::Text(&self.names.flows[flow]),
            IdPart::Text(&instance.key),
            IdPart::Number(instance.started),
            IdPart::Text(kind.as_str()),
            step_name.as_deref().map_or(IdPart::None, IdPart::Text),
            attempt.map_or(IdPart::None, |attempt| IdPart::Number(i64::from(attempt))),
            reason.map_or(IdPart::None, |reason| IdPart::Text(reason.as_str())),
            if discriminator.is_empty() {
                IdPart::None
            } else {
                IdPart::Text(discriminator)
            },
        ]);
        let key: Arc<str> = Arc::from(&*instance.key);
        let mut data = SignalData::new(self.names.flows[flow].clone(), key.clone());
        data.step = step_name;
        data.reason = reason;
        data.attempt = attempt;
        if kind == SignalKind::Started {
            data.started_at = Some(format_rfc3339(instance.started));
        }
        Signal {
            id,
            kind,
            source: self.source.clone(),
            subject: key,
            time,
            alert: false,
            duration: None,
            data,
        }
    }
}
