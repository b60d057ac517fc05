//! Snapshots of the engine's state, for checkpoints: everything the engine knows, as a
//! serde value, and the engine rebuilt from it. Only what cannot be derived is kept: the
//! instances and held orphans (slot numbers included, since aliases refer to them), the alias
//! links (the later link wins, so they are not derivable from the instances), the clock, the
//! setting-order counter and the counters. The timer queue, the key index and the orphan index
//! are rebuilt. An engine restored from a snapshot continues exactly as the original would:
//! the same inputs give byte-identical outputs.

use super::instance::Instance;
use super::orphans::OrphanGroup;
use super::timers::TimerTarget;
use super::{Engine, EngineConfig, Stats};
use crate::flow::Flow;
use crate::time::Millis;
use serde::{Deserialize, Serialize};

/// Why a snapshot cannot be restored.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SnapshotError {
    #[error("the snapshot was taken with flows {taken:?}, not the flows loaded now {loaded:?}; restore with the same flow files or start from an empty state")]
    FlowsChanged {
        taken: Vec<String>,
        loaded: Vec<String>,
    },
    #[error("the snapshot is inconsistent: {0}")]
    Inconsistent(String),
}

/// One alias table: (value, instance slot); sorted by value in [`Engine::snapshot`], in slot
/// order when assembled from checkpoint parts.
pub(super) type AliasEntries = Vec<(Box<str>, u32)>;

/// The engine's state (see the module documentation).
#[derive(Serialize, Deserialize)]
pub struct Snapshot {
    /// Each flow's shape: indices in the state refer to it.
    pub(super) flows: Vec<FlowShape>,
    /// The interned topic names, by id: held events and audit trails refer to topics by id,
    /// and the ids depend on the flows and their order.
    pub(super) topics: Vec<String>,
    pub(super) clock: Millis,
    pub(super) action_horizon: Millis,
    pub(super) next_seq: u32,
    pub(super) instances: Vec<Option<Instance>>,
    pub(super) free_instances: Vec<u32>,
    /// Per flow, per alias: its table.
    pub(super) aliases: Vec<Vec<AliasEntries>>,
    pub(super) orphan_groups: Vec<Option<OrphanGroup>>,
    pub(super) free_orphan_groups: Vec<u32>,
    pub(super) stats: Stats,
    pub(super) open_instances: u64,
}

/// What the indices in one flow's state refer to: the flow's name and, in file order, the
/// names of its events, steps, aliases and actions. Two flows with the same shape can share
/// state; a renamed, added, removed or reordered event, step, alias or action changes it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct FlowShape {
    pub(super) name: String,
    pub(super) events: Vec<String>,
    pub(super) steps: Vec<String>,
    pub(super) aliases: Vec<String>,
    pub(super) actions: Vec<String>,
}

pub(super) fn shape(flows: &[Flow]) -> Vec<FlowShape> {
    fn names<'a>(names: impl Iterator<Item = &'a String>) -> Vec<String> {
        names.cloned().collect()
    }
    flows
        .iter()
        .map(|flow| FlowShape {
            name: flow.def.name.clone(),
            events: names(flow.def.events.iter().map(|event| &event.name)),
            steps: names(flow.def.steps.iter().map(|step| &step.name)),
            aliases: names(flow.def.aliases.iter()),
            actions: names(flow.def.actions.iter().map(|action| &action.name)),
        })
        .collect()
}

impl Engine {
    /// The engine's state, for a checkpoint.
    pub fn snapshot(&self) -> Snapshot {
        let aliases = self
            .by_alias
            .iter()
            .map(|per_flow| {
                per_flow
                    .iter()
                    .map(|map| {
                        let mut entries: AliasEntries = map
                            .iter()
                            .map(|(value, slot)| (value.clone(), *slot))
                            .collect();
                        entries.sort();
                        entries
                    })
                    .collect()
            })
            .collect();
        Snapshot {
            flows: shape(&self.flows),
            topics: self.topics.names().to_vec(),
            clock: self.clock,
            action_horizon: self.action_horizon,
            next_seq: self.timers.last_seq(),
            instances: self.instances.iter().cloned().collect(),
            free_instances: self.free_instances.clone(),
            aliases,
            orphan_groups: self.orphan_groups.clone(),
            free_orphan_groups: self.free_orphan_groups.clone(),
            stats: self.stats.clone(),
            open_instances: self.open_instances,
        }
    }

    /// Rebuilds an engine from a snapshot taken with the same flows.
    pub fn restore(
        flows: Vec<Flow>,
        config: EngineConfig,
        snapshot: Snapshot,
    ) -> Result<Engine, SnapshotError> {
        let loaded = shape(&flows);
        if loaded != snapshot.flows {
            let names = |shape: &[FlowShape]| shape.iter().map(|flow| flow.name.clone()).collect();
            return Err(SnapshotError::FlowsChanged {
                taken: names(&snapshot.flows),
                loaded: names(&loaded),
            });
        }
        let mut engine = Engine::new(flows, config);
        let inconsistent = |what: &str| SnapshotError::Inconsistent(what.to_string());
        for instance in snapshot.instances.iter().flatten() {
            let flow = engine
                .flows
                .get(usize::from(instance.flow))
                .ok_or_else(|| inconsistent("unknown flow index"))?;
            if instance.steps.len() != flow.def.steps.len() {
                return Err(inconsistent("an instance's steps do not match its flow"));
            }
        }
        if snapshot.aliases.len() != engine.by_alias.len()
            || snapshot
                .aliases
                .iter()
                .zip(&engine.by_alias)
                .any(|(taken, now)| taken.len() != now.len())
        {
            return Err(inconsistent("alias tables do not match the flows"));
        }
        let mut snapshot = snapshot;
        engine.renumber_topics(&mut snapshot);
        engine.clock = snapshot.clock;
        engine.action_horizon = snapshot.action_horizon;
        engine.instances = snapshot.instances.into_iter().collect();
        engine.free_instances = snapshot.free_instances;
        engine.orphan_groups = snapshot.orphan_groups;
        engine.free_orphan_groups = snapshot.free_orphan_groups;
        engine.stats = snapshot.stats;
        engine.open_instances = snapshot.open_instances;
        for (flow, per_flow) in snapshot.aliases.into_iter().enumerate() {
            for (alias, entries) in per_flow.into_iter().enumerate() {
                engine.by_alias[flow][alias] = entries.into_iter().collect();
            }
        }
        for slot in 0..engine.instances.len() {
            let Some(instance) = engine.instances[slot].as_ref() else {
                continue;
            };
            let hash = Self::key_hash(instance.flow, &instance.key);
            let instances = &engine.instances;
            engine.by_key.insert_unique(hash, slot as u32, |&other| {
                instances[other as usize]
                    .as_ref()
                    .map_or(0, |inst| Self::key_hash(inst.flow, &inst.key))
            });
        }
        for (slot, group) in engine.orphan_groups.iter().enumerate() {
            let Some(group) = group else { continue };
            let routes = engine
                .orphan_index
                .get_mut(usize::from(group.flow))
                .and_then(|routes| routes.get_mut(usize::from(group.route)))
                .ok_or_else(|| inconsistent("an orphan group's flow or route is unknown"))?;
            routes.insert(group.value.clone(), slot as u32);
        }
        engine.rebuild_timer_queue(snapshot.next_seq);
        Ok(engine)
    }

    /// Empties the timer queue and fills it from the instances and orphan groups, with the
    /// setting order continuing after `last_seq`.
    pub(super) fn rebuild_timer_queue(&mut self, last_seq: u32) {
        self.timers.reset(last_seq);
        for slot in 0..self.instances.len() {
            let key = self.instances[slot]
                .as_ref()
                .and_then(|instance| self.timer_key(instance));
            self.timers
                .reschedule(&mut None, key, TimerTarget::Instance(slot as u32));
        }
        for slot in 0..self.orphan_groups.len() {
            let key = self.orphan_groups[slot]
                .as_ref()
                .and_then(|group| group.timer);
            self.timers
                .reschedule(&mut None, key, TimerTarget::Orphans(slot as u32));
        }
    }
}
