//! Events before their start (SPEC 1.4): an event for an unknown key or alias is held in a
//! group per (flow, key or alias value). The group is handed to the instance when its start
//! or linking event arrives, or dropped with an `orphaned` signal when the clock passes the
//! first held event's time plus `orphan_after`.

use super::correlate::Occurrence;
use super::signal::{signal_id, IdPart, SignalData, SignalKind};
use super::timers::{TimerKey, TimerTarget};
use super::{Engine, Output, Signal};
use crate::time::Millis;

/// Held events of one flow under one key or alias value.
#[derive(Clone, serde::Serialize, serde::Deserialize)]
pub(super) struct OrphanGroup {
    pub(super) flow: u16,
    /// 0: the primary key; 1 + alias index: that alias.
    pub(super) route: u16,
    pub(super) value: Box<str>,
    /// Time of the first held event.
    first: Millis,
    events: Vec<Occurrence<'static>>,
    pub(super) timer: Option<TimerKey>,
}

impl OrphanGroup {
    /// Moves the group (and its held events) to another flow index: the same flow, loaded in
    /// another position after a restart with other flows.
    pub(super) fn renumber_flow(&mut self, flow: u16) {
        self.flow = flow;
        for event in &mut self.events {
            event.flow = flow;
        }
    }

    /// Gives the held events' topics their ids in this engine (`ids[old id]`).
    pub(super) fn renumber_topics(&mut self, ids: &[u32]) {
        for event in &mut self.events {
            event.origin.topic = ids.get(event.origin.topic as usize).copied().unwrap_or(u32::MAX);
        }
    }

    /// How many events are held.
    pub(super) fn held(&self) -> usize {
        self.events.len()
    }

    /// The event indices of the held events, in arrival order.
    pub(super) fn event_indices(&self) -> impl Iterator<Item = u16> + '_ {
        self.events.iter().map(|occurrence| occurrence.event)
    }

    /// Time of the first held event.
    pub(super) fn first(&self) -> Millis {
        self.first
    }
}

impl Engine {
    /// Holds an event whose key or alias is not known yet.
    pub(super) fn hold(&mut self, route: u16, occurrence: Occurrence<'_>) {
        let flow = usize::from(occurrence.flow);
        self.stats.orphans_held += 1;
        if let Some(&slot) = self.orphan_index[flow][usize::from(route)].get(&*occurrence.key) {
            if let Some(group) = self.orphan_groups[slot as usize].as_mut() {
                group.events.push(occurrence.into_owned());
                self.orphans_changed(slot);
                return;
            }
        }
        let value: Box<str> = Box::from(&*occurrence.key);
        let first = occurrence.time;
        let slot = match self.free_orphan_groups.pop() {
            Some(slot) => slot,
            None => {
                self.orphan_groups.push(None);
                (self.orphan_groups.len() - 1) as u32
            }
        };
        let mut group = OrphanGroup {
            flow: occurrence.flow,
            route,
            value: value.clone(),
            first,
            events: vec![occurrence.into_owned()],
            timer: None,
        };
        let due = (
            first.saturating_add(self.config.orphan_after),
            self.timers.next_seq(),
        );
        self.timers
            .reschedule(&mut group.timer, Some(due), TimerTarget::Orphans(slot));
        self.orphan_groups[slot as usize] = Some(group);
        self.orphans_changed(slot);
        self.orphan_index[flow][usize::from(route)].insert(value, slot);
    }

    /// Hands the events held under (flow, route, value) to an instance, in arrival order.
    pub(super) fn release_orphans(
        &mut self,
        flow: u16,
        route: u16,
        value: &str,
        slot: u32,
        out: &mut Vec<Output>,
    ) {
        let Some(group_slot) =
            self.orphan_index[usize::from(flow)][usize::from(route)].remove(value)
        else {
            return;
        };
        let Some(mut group) = self.orphan_groups[group_slot as usize].take() else {
            return;
        };
        self.timers
            .reschedule(&mut group.timer, None, TimerTarget::Orphans(group_slot));
        self.free_orphan_groups.push(group_slot);
        self.orphans_changed(group_slot);
        self.stats.orphans_held -= group.events.len() as u64;
        for occurrence in group.events {
            self.apply_event(slot, occurrence, out);
        }
    }

    /// The group's time ran out: report it and drop its events.
    pub(super) fn orphans_expired(&mut self, group_slot: u32, out: &mut Vec<Output>) {
        let Some(group) = self.orphan_groups[group_slot as usize].take() else {
            return;
        };
        self.free_orphan_groups.push(group_slot);
        self.orphans_changed(group_slot);
        let flow = usize::from(group.flow);
        self.orphan_index[flow][usize::from(group.route)].remove(&group.value);
        let held = group.events.len() as u32;
        self.stats.orphans_held -= u64::from(held);
        self.stats.orphaned += 1;
        let alias = group
            .route
            .checked_sub(1)
            .map(|alias| self.names.aliases[flow][usize::from(alias)].clone());
        let time = group.first.saturating_add(self.config.orphan_after);
        let id = signal_id(&[
            IdPart::Text(&self.names.flows[flow]),
            IdPart::Text(&group.value),
            IdPart::Number(group.first),
            IdPart::Text(SignalKind::Orphaned.as_str()),
            alias.as_deref().map_or(IdPart::None, IdPart::Text),
        ]);
        let subject: std::sync::Arc<str> = std::sync::Arc::from(&*group.value);
        let mut data = SignalData::new(self.names.flows[flow].clone(), subject.clone());
        data.alias = alias;
        data.held = Some(held);
        data.event = group
            .events
            .first()
            .map(|first| self.names.events[flow][usize::from(first.event)].clone());
        let signal = Signal {
            id,
            kind: SignalKind::Orphaned,
            source: self.source.clone(),
            subject,
            time,
            alert: false,
            duration: None,
            data,
        };
        out.push(Output::Emit(signal));
    }
}
