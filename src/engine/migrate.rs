//! Restoring a snapshot taken with other flows (flows added, removed or reshaped between two
//! runs of the daemon). A flow is carried over when one of the loaded flows has its name and
//! the same shape (the names of its events, steps, aliases and actions, in order: what the
//! indices in its state refer to), wherever it now sits in the list: its
//! instances, links and held orphans keep their state. A flow that is gone, or whose shape
//! changed, loses its instances and held orphans, which are reported so the shell can log and
//! count them; a flow that is new (or reshaped) starts with no instances and tracks what it
//! reads from then on. Everything else (clock, counters, timers) is restored as usual.

use super::snapshot::{shape, Snapshot, SnapshotError};
use super::history::HistoryEntry;
use super::instance::Status;
use super::{Engine, EngineConfig};
use crate::flow::Flow;

/// What a restore with changed flows did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FlowChanges {
    /// Flows of the snapshot that are gone or reshaped: name, open instances dropped, ended
    /// instances dropped, groups of held orphans dropped.
    pub dropped: Vec<DroppedFlow>,
    /// Loaded flows the snapshot did not have (new, or reshaped): they start empty.
    pub added: Vec<String>,
}

/// One flow whose state was dropped.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DroppedFlow {
    pub name: String,
    pub open_instances: u64,
    pub ended_instances: u64,
    pub orphan_groups: u64,
}

impl FlowChanges {
    /// Whether the flows were the same.
    pub fn is_empty(&self) -> bool {
        self.dropped.is_empty() && self.added.is_empty()
    }
}

impl Engine {
    /// [`Engine::restore`], carrying the snapshot over to other flows (see the module
    /// documentation) instead of refusing it.
    pub fn restore_with_changed_flows(
        flows: Vec<Flow>,
        config: EngineConfig,
        mut snapshot: Snapshot,
    ) -> Result<(Engine, FlowChanges), SnapshotError> {
        let loaded = shape(&flows);
        let aliases: Vec<usize> = flows.iter().map(|flow| flow.def.aliases.len()).collect();
        if loaded == snapshot.flows {
            return Ok((Engine::restore(flows, config, snapshot)?, FlowChanges::default()));
        }
        let inconsistent = |what: &str| SnapshotError::Inconsistent(what.to_string());
        if snapshot.aliases.len() != snapshot.flows.len() {
            return Err(inconsistent("alias tables do not match the flows"));
        }
        // Old flow index -> new flow index, for flows carried over.
        let moved: Vec<Option<u16>> = snapshot
            .flows
            .iter()
            .enumerate()
            .map(|(old, taken)| {
                (0..loaded.len())
                    .find(|&new| &loaded[new] == taken && aliases[new] == snapshot.aliases[old].len())
                    .map(|new| new as u16)
            })
            .collect();
        let mut changes = FlowChanges::default();
        for (old, taken) in snapshot.flows.iter().enumerate() {
            if moved[old].is_none() {
                changes.dropped.push(DroppedFlow {
                    name: taken.name.clone(),
                    ..DroppedFlow::default()
                });
            }
        }
        for (new, now) in loaded.iter().enumerate() {
            if !moved.contains(&Some(new as u16)) {
                changes.added.push(now.name.clone());
            }
        }
        let dropped_entry = |changes: &mut FlowChanges, old: u16| -> usize {
            let name = &snapshot.flows[usize::from(old)].name;
            changes
                .dropped
                .iter()
                .position(|dropped| &dropped.name == name)
                .unwrap_or(0)
        };
        for slot in 0..snapshot.instances.len() {
            let Some(instance) = snapshot.instances[slot].as_mut() else { continue };
            let old = instance.flow;
            match moved.get(usize::from(old)).copied().flatten() {
                Some(new) => instance.flow = new,
                None if usize::from(old) < moved.len() => {
                    let entry = dropped_entry(&mut changes, old);
                    if instance.status == Status::Open {
                        changes.dropped[entry].open_instances += 1;
                        snapshot.open_instances = snapshot.open_instances.saturating_sub(1);
                    } else {
                        changes.dropped[entry].ended_instances += 1;
                    }
                    snapshot.instances[slot] = None;
                    snapshot.free_instances.push(slot as u32);
                }
                None => return Err(inconsistent("unknown flow index")),
            }
        }
        for slot in 0..snapshot.orphan_groups.len() {
            let Some(group) = snapshot.orphan_groups[slot].as_mut() else { continue };
            let old = group.flow;
            match moved.get(usize::from(old)).copied().flatten() {
                Some(new) => group.renumber_flow(new),
                None if usize::from(old) < moved.len() => {
                    let entry = dropped_entry(&mut changes, old);
                    changes.dropped[entry].orphan_groups += 1;
                    snapshot.orphan_groups[slot] = None;
                    snapshot.free_orphan_groups.push(slot as u32);
                }
                None => return Err(inconsistent("an orphan group's flow is unknown")),
            }
        }
        let mut old_aliases: Vec<Option<_>> = std::mem::take(&mut snapshot.aliases).into_iter().map(Some).collect();
        snapshot.aliases = (0..loaded.len())
            .map(|new| {
                moved
                    .iter()
                    .position(|&target| target == Some(new as u16))
                    .and_then(|old| old_aliases[old].take())
                    .unwrap_or_else(|| vec![Vec::new(); aliases[new]])
            })
            .collect();
        snapshot.flows = loaded;
        let mut engine = Engine::restore(flows, config, snapshot)?;
        // Flow indices moved and slots were freed: the next checkpoint rewrites every slot.
        engine.mark_all_changed();
        Ok((engine, changes))
    }

    /// Held events and audit trails name topics by id, and the ids follow the flows and their
    /// order: renumbers those of a snapshot to this engine's ids.
    pub(super) fn renumber_topics(&mut self, snapshot: &mut Snapshot) {
        if snapshot.topics == self.topics.names() {
            return;
        }
        let ids: Vec<u32> = snapshot.topics.iter().map(|name| self.topics.intern(name)).collect();
        for group in snapshot.orphan_groups.iter_mut().flatten() {
            group.renumber_topics(&ids);
        }
        for instance in snapshot.instances.iter_mut().flatten() {
            let Some(extras) = instance.extras.as_mut() else { continue };
            for entry in &mut extras.history {
                if let HistoryEntry::Event(event) = entry {
                    event.origin.topic = ids.get(event.origin.topic as usize).copied().unwrap_or(u32::MAX);
                }
            }
        }
    }
}
