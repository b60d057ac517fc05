//! The engine's state in parts, for incremental checkpoints: one part per occupied instance
//! slot (the instance and which of its registered aliases the alias tables still point at it),
//! one per held orphan group, and one with the globals (flow shape, clock, action horizon,
//! setting order, slot counts, free lists, counters). A checkpoint writes the globals and the
//! parts of the slots that changed since the last one ([`super::changes`]); restoring collects
//! the parts into a [`Snapshot`], so [`Engine::restore`] and
//! [`Engine::restore_with_changed_flows`] serve both forms. Parts are postcard (compact binary,
//! not self-describing: no serde attribute of the state types may skip fields). The alias
//! tables are not stored as such: every entry points at an instance that registered the alias
//! (a purge removes the entries pointing at the purged slot), so each instance carries the
//! entries it owns.

use super::instance::Instance;
use super::orphans::OrphanGroup;
use super::snapshot::{shape, AliasEntries, FlowShape, Snapshot};
use super::{Engine, Stats};
use crate::time::Millis;
use serde::{Deserialize, Serialize};

/// Why parts cannot be assembled into a snapshot (the shell reports it as a damaged store).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct PartError(String);

/// The globals part.
#[derive(Serialize, Deserialize)]
struct Globals {
    /// Each flow's shape.
    flows: Vec<FlowShape>,
    /// The interned topic names, by id.
    topics: Vec<String>,
    /// Each flow's number of alias tables.
    alias_tables: Vec<usize>,
    clock: Millis,
    action_horizon: Millis,
    next_seq: u32,
    instance_slots: u32,
    orphan_slots: u32,
    free_instances: Vec<u32>,
    free_orphan_groups: Vec<u32>,
    stats: Stats,
    open_instances: u64,
}

fn decode<'a, T: Deserialize<'a>>(what: &str, bytes: &'a [u8]) -> Result<T, PartError> {
    postcard::from_bytes(bytes).map_err(|error| PartError(format!("{what}: {error}")))
}

fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    // Invariant: the state types serialise infallibly to a Vec (no maps with non-string
    // constraints, no unsupported types); an empty value would fail to decode, loudly.
    postcard::to_allocvec(value).unwrap_or_default()
}

impl Engine {
    /// The globals part.
    pub fn encode_globals(&self) -> Vec<u8> {
        encode(&Globals {
            flows: shape(&self.flows),
            topics: self.topics.names().to_vec(),
            alias_tables: self.by_alias.iter().map(Vec::len).collect(),
            clock: self.clock,
            action_horizon: self.action_horizon,
            next_seq: self.timers.last_seq(),
            instance_slots: self.instances.len() as u32,
            orphan_slots: self.orphan_groups.len() as u32,
            free_instances: self.free_instances.clone(),
            free_orphan_groups: self.free_orphan_groups.clone(),
            stats: self.stats.clone(),
            open_instances: self.open_instances,
        })
    }

    /// The part of an instance slot; `None` for a free slot.
    pub fn encode_instance(&self, slot: u32) -> Option<Vec<u8>> {
        let instance = self.instances.get(slot as usize)?.as_ref()?;
        let tables = &self.by_alias[usize::from(instance.flow)];
        let owned: Vec<u32> = instance
            .aliases()
            .iter()
            .enumerate()
            .filter(|(_, (alias, value))| {
                tables
                    .get(usize::from(*alias))
                    .and_then(|table| table.get(value))
                    == Some(&slot)
            })
            .map(|(index, _)| index as u32)
            .collect();
        Some(encode(&(instance, owned)))
    }

    /// The part of an orphan-group slot; `None` for a free slot.
    pub fn encode_orphan_group(&self, slot: u32) -> Option<Vec<u8>> {
        let group = self.orphan_groups.get(slot as usize)?.as_ref()?;
        Some(encode(group))
    }
}

/// Parts read back, assembled into a [`Snapshot`] by [`SnapshotParts::finish`].
#[derive(Default)]
pub struct SnapshotParts {
    instances: Vec<(u32, Instance, Vec<u32>)>,
    orphan_groups: Vec<(u32, OrphanGroup)>,
}

impl SnapshotParts {
    /// Adds the part of an instance slot.
    pub fn add_instance(&mut self, slot: u32, bytes: &[u8]) -> Result<(), PartError> {
        let (instance, owned) = decode("instance", bytes)?;
        self.instances.push((slot, instance, owned));
        Ok(())
    }

    /// Adds the part of an orphan-group slot.
    pub fn add_orphan_group(&mut self, slot: u32, bytes: &[u8]) -> Result<(), PartError> {
        self.orphan_groups.push((slot, decode("orphan group", bytes)?));
        Ok(())
    }

    /// The snapshot the parts and the globals make, checked for gaps and overlaps.
    pub fn finish(self, globals: &[u8]) -> Result<Snapshot, PartError> {
        let globals: Globals = decode("globals", globals)?;
        let problem = |what: &str| PartError(what.to_string());
        if globals.alias_tables.len() != globals.flows.len() {
            return Err(problem("alias tables do not match the flows"));
        }
        let mut aliases: Vec<Vec<AliasEntries>> = globals
            .alias_tables
            .iter()
            .map(|&count| vec![Vec::new(); count])
            .collect();
        let mut instances: Vec<Option<Instance>> = Vec::new();
        instances.resize_with(globals.instance_slots as usize, || None);
        let expected = instances.len().checked_sub(globals.free_instances.len());
        if expected != Some(self.instances.len()) {
            return Err(problem("the number of instances does not match the free slots"));
        }
        for (slot, instance, owned) in self.instances {
            let tables = aliases
                .get_mut(usize::from(instance.flow))
                .ok_or_else(|| problem("an instance's flow is unknown"))?;
            for index in owned {
                let (alias, value) = instance
                    .aliases()
                    .get(index as usize)
                    .ok_or_else(|| problem("an owned alias is not registered"))?;
                tables
                    .get_mut(usize::from(*alias))
                    .ok_or_else(|| problem("an alias is unknown"))?
                    .push((value.clone(), slot));
            }
            let place = instances
                .get_mut(slot as usize)
                .ok_or_else(|| problem("an instance slot is out of range"))?;
            if place.replace(instance).is_some() {
                return Err(problem("an instance slot is written twice"));
            }
        }
        if globals.free_instances.iter().any(|&slot| {
            instances.get(slot as usize).is_none_or(Option::is_some)
        }) {
            return Err(problem("a free instance slot is occupied or out of range"));
        }
        let mut orphan_groups: Vec<Option<OrphanGroup>> = Vec::new();
        orphan_groups.resize_with(globals.orphan_slots as usize, || None);
        let expected = orphan_groups.len().checked_sub(globals.free_orphan_groups.len());
        if expected != Some(self.orphan_groups.len()) {
            return Err(problem("the number of orphan groups does not match the free slots"));
        }
        for (slot, group) in self.orphan_groups {
            let place = orphan_groups
                .get_mut(slot as usize)
                .ok_or_else(|| problem("an orphan-group slot is out of range"))?;
            if place.replace(group).is_some() {
                return Err(problem("an orphan-group slot is written twice"));
            }
        }
        if globals.free_orphan_groups.iter().any(|&slot| {
            orphan_groups.get(slot as usize).is_none_or(Option::is_some)
        }) {
            return Err(problem("a free orphan-group slot is occupied or out of range"));
        }
        Ok(Snapshot {
            flows: globals.flows,
            topics: globals.topics,
            clock: globals.clock,
            action_horizon: globals.action_horizon,
            next_seq: globals.next_seq,
            instances,
            free_instances: globals.free_instances,
            aliases,
            orphan_groups,
            free_orphan_groups: globals.free_orphan_groups,
            stats: globals.stats,
            open_instances: globals.open_instances,
        })
    }
}
