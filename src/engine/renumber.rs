//! Renumbering the setting order of deadlines. `seq` is 32 bits so that instances stay small;
//! long before it could wrap (every few billion deadlines set), every armed deadline of every
//! instance and orphan group gets a new number in its current `(due, seq)` order and the
//! queue is rebuilt. Order, and so every tie between deadlines due at the same instant, is
//! preserved exactly; the cost is one pass over the state, amortised over billions of sets.

use super::instance::Deadline;
use super::Engine;

/// Where an armed deadline lives.
enum Place {
    Step(u32, usize),
    InstanceDeadline(u32),
    Stuck(u32),
    Orphans(u32),
}

impl Engine {
    /// Renumbers every armed deadline in order and rebuilds the queue (see the module docs).
    pub(super) fn renumber_timers(&mut self) {
        let retention = self.config.retention;
        let mut armed: Vec<(Deadline, Place)> = Vec::new();
        for (slot, instance) in self.instances.iter().enumerate() {
            let Some(instance) = instance else { continue };
            let definition = &self.flows[usize::from(instance.flow)].def;
            let slot = slot as u32;
            for step in 0..instance.steps.len() {
                if let Some(deadline) = instance.step_deadline(definition, step) {
                    armed.push((deadline, Place::Step(slot, step)));
                }
            }
            if let Some(deadline) = instance.deadline_due(definition, retention) {
                armed.push((deadline, Place::InstanceDeadline(slot)));
            }
            if let Some(deadline) = instance.stuck_due(definition) {
                armed.push((deadline, Place::Stuck(slot)));
            }
        }
        for (slot, group) in self.orphan_groups.iter().enumerate() {
            if let Some((due, seq)) = group.as_ref().and_then(|group| group.timer) {
                armed.push((Deadline { due, seq }, Place::Orphans(slot as u32)));
            }
        }
        armed.sort_by_key(|(deadline, _)| deadline.key());
        for (rank, (_, place)) in armed.iter().enumerate() {
            let seq = rank as u32 + 1;
            match *place {
                Place::Step(slot, step) => self.instance_mut(slot).steps[step].set_seq(seq),
                Place::InstanceDeadline(slot) => self.instance_mut(slot).deadline.set_seq(seq),
                Place::Stuck(slot) => self.instance_mut(slot).stuck.set_seq(seq),
                Place::Orphans(slot) => {
                    if let Some(group) = self.orphan_groups[slot as usize].as_mut() {
                        group.timer = group.timer.map(|(due, _)| (due, seq));
                    }
                    self.orphans_changed(slot);
                }
            }
        }
        self.rebuild_timer_queue(armed.len() as u32);
    }

    fn instance_mut(&mut self, slot: u32) -> &mut super::instance::Instance {
        self.instance_changed(slot);
        // Invariant: places were collected from occupied slots and nothing was removed since.
        self.instances[slot as usize]
            .as_mut()
            .expect("renumbered slot is occupied")
    }
}
