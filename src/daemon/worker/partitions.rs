//! The worker's partition side: assignment changes from the consumer's rebalance callback
//! (with the positions each partition resumes from), catch-up flags, lag figures and the
//! watchdog from the cached high watermarks, the wall clock the daemon goes by (held when the
//! system clock steps back), and flow control (pausing partitions that run ahead, or all of them
//! while the outbox is full or the store cannot be written).

use super::{Run, Worker};
use crate::clock::{Clock, SystemClock};
use crate::config::StartFrom;
use crate::daemon::align::TopicPartition;
use crate::daemon::kafka::{self, AssignmentChange};
use crate::time::{self, Millis};
use rdkafka::consumer::Consumer;
use std::collections::HashSet;
use std::sync::atomic::Ordering;

impl Worker {
    /// Applies assignment changes that the reader saw, in order with the records around them.
    pub(super) fn assignment_changes(&mut self, run: &mut Run, changes: Vec<AssignmentChange>) {
        // The reader lists the flows' partitions next; the clock waits for that list.
        run.aligner.assignment_changed();
        for change in changes {
            match change {
                AssignmentChange::Assigned(partitions) => {
                    for partition in &partitions {
                        let stored = self.restored_positions.get(partition).cloned();
                        if stored.is_none() && matches!(self.config.kafka.start_from, StartFrom::Time(_)) {
                            run.fresh_from_time.insert(partition.clone());
                        }
                        let resume_from = stored.as_ref().map(|position| position.offset);
                        tracing::info!(topic = %partition.0, partition = partition.1, ?resume_from, "Partition assigned.");
                        run.aligner.assign(partition.clone(), stored);
                    }
                    // librdkafka keeps a partition's pause across losing and regaining it: one
                    // paused while the outbox was full, lost with the session and assigned
                    // again after the outbox drained would otherwise never be read again.
                    self.set_paused(&partitions, run.all_paused);
                }
                AssignmentChange::Revoked(partitions) | AssignmentChange::Lost(partitions) if partitions.is_empty() => {}
                AssignmentChange::Revoked(partitions) => {
                    tracing::error!(
                        partitions = ?partitions,
                        group = %self.config.kafka.group_id,
                        "Partitions were revoked: another consumer joined the group. One flowwatch daemon per consumer group is supported; stop the other one (or give it its own kafka.group_id). The live clock waits until the revoked partitions are assigned back."
                    );
                    self.status.group_conflict.store(true, Ordering::Relaxed);
                    self.give_up(run, &partitions);
                }
                AssignmentChange::Lost(partitions) => {
                    tracing::warn!(
                        partitions = partitions.len(),
                        group = %self.config.kafka.group_id,
                        "The consumer lost its group membership (no answer from the group coordinator within session.timeout.ms); it rejoins, and the partitions resume where the tracker left them."
                    );
                    self.status.assignments_lost.fetch_add(1, Ordering::Relaxed);
                    self.metrics.count_assignment_lost();
                    self.give_up(run, &partitions);
                }
            }
        }
        self.status
            .partitions_assigned
            .store(run.aligner.partitions().count() as u64, Ordering::Relaxed);
    }

    /// Every partition of the flows' topics, listed after an assignment changed: the clock
    /// waits for those held by another member of the group (see `align`).
    pub(super) fn expect_partitions(&mut self, run: &mut Run, partitions: Vec<TopicPartition>) {
        run.aligner.expect(partitions);
        let elsewhere = run.aligner.held_elsewhere();
        if elsewhere > 0 {
            tracing::warn!(
                partitions = elsewhere,
                group = %self.config.kafka.group_id,
                "Partitions of the flows' topics are assigned to another member of the group (a previous instance whose session has not expired yet, or a second daemon): the live clock waits until this daemon has them all, since applying the others alone would fire timers early."
            );
        } else if run.waited_for_members {
            tracing::info!("Every partition of the flows' topics is assigned here now: the live clock moves on.");
        }
        run.waited_for_members = elsewhere > 0;
    }

    /// Stops tracking partitions taken away. The engine keeps what it applied from them:
    /// remember where that ends, so that when they come back (or after a restart, through the
    /// checkpoints) those records are skipped, not applied twice, and the ones dropped
    /// unapplied here are read again.
    fn give_up(&mut self, run: &mut Run, partitions: &[TopicPartition]) {
        let taken: HashSet<&TopicPartition> = partitions.iter().collect();
        for (partition, position) in run.aligner.resume_positions() {
            if taken.contains(&partition) {
                if let Ok(mut resume) = self.shared.resume.lock() {
                    resume.insert(partition.clone(), position.offset);
                }
                self.restored_positions.insert(partition, position);
            }
        }
        if let Some(pending) = &mut run.pending {
            pending.positions.give_up(partitions);
        }
        for partition in partitions {
            run.aligner.revoke(partition);
            run.flow_paused.remove(partition);
        }
    }

    /// Pauses or resumes fetching from `partitions`. librdkafka refuses only partitions it does
    /// not know (not assigned); that is logged, not fatal.
    fn set_paused(&self, partitions: &[TopicPartition], paused: bool) {
        if partitions.is_empty() {
            return;
        }
        let list = kafka::partition_list(partitions);
        let result = if paused { self.consumer.pause(&list) } else { self.consumer.resume(&list) };
        if let Err(error) = result {
            tracing::error!(%error, paused, partitions = partitions.len(), "Could not pause or resume partitions.");
        }
    }

    /// Catch-up flags from the cached high watermarks, lag figures and the watchdog.
    pub(super) fn update_positions(&mut self, run: &mut Run, real: &SystemClock) {
        let partitions: Vec<TopicPartition> = run.aligner.partitions().cloned().collect();
        let mut behind = 0u64;
        let mut any_lag = false;
        for partition in &partitions {
            let next = run.aligner.next_offset(partition);
            let high = kafka::cached_high_watermark(&self.consumer, partition);
            let caught_up = match (next, high) {
                (Some(next), Some(high)) => next >= high,
                // Nothing read yet but the partition is empty.
                (None, Some(0)) => true,
                _ => false,
            };
            if let (Some(next), Some(high)) = (next, high) {
                behind += (high - next).max(0) as u64;
                self.metrics
                    .set_consumer_lag(&partition.0, partition.1, (high - next).max(0));
            }
            if !caught_up {
                any_lag = true;
            }
            tracing::trace!(topic = %partition.0, partition = partition.1, ?next, ?high, caught_up, "Position.");
            run.aligner.set_caught_up(partition, caught_up);
        }
        self.status.records_behind.store(behind, Ordering::Relaxed);
        self.status
            .caught_up
            .store(!any_lag && !partitions.is_empty() && run.aligner.held_elsewhere() == 0, Ordering::Relaxed);
        let silent = real.now() - run.last_record_at;
        let healthy = !(any_lag && !run.all_paused && silent > self.config.kafka.watchdog_timeout);
        if !healthy && !run.watchdog_logged {
            tracing::error!(
                silent_ms = silent,
                records_behind = behind,
                "Watchdog: assigned partitions have lag but delivered nothing; the consumer looks stuck."
            );
        }
        run.watchdog_logged = !healthy;
        self.status.watchdog_ok.store(healthy, Ordering::Relaxed);
    }

    /// The wall-clock time the daemon goes by: the clock's, but never less than the highest
    /// time it told before. When the system clock steps back (NTP, a VM resumed, `date -s`),
    /// "now" stands still until the clock has caught up again, so records are not taken for
    /// records from the future (`tracking.max_clock_skew`), and nothing the engine already saw
    /// is re-timed into its past. The engine's clock never moves back in any case.
    pub(super) fn wall(&self, run: &mut Run) -> Millis {
        let (now, wall) = run.wall.read();
        if now < wall {
            if !run.clock_behind && wall - now > 1_000 {
                tracing::warn!(
                    behind_ms = wall - now,
                    holding_at = %time::format_rfc3339(wall.max(0)),
                    "The wall clock went back; flowwatch keeps its time where it was until the clock catches up."
                );
                run.clock_behind = true;
            }
            return wall;
        }
        if run.clock_behind {
            tracing::info!("The wall clock caught up again.");
            run.clock_behind = false;
        }
        now
    }

    /// Pauses partitions that run ahead of the clock, and everything while the outbox is full
    /// or the store cannot be written.
    pub(super) fn flow_control(&mut self, run: &mut Run) {
        let control = run.aligner.flow_control();
        if !control.pause.is_empty() {
            self.set_paused(&control.pause, true);
            run.flow_paused.extend(control.pause);
        }
        if !control.resume.is_empty() {
            for partition in &control.resume {
                run.flow_paused.remove(partition);
            }
            if !run.all_paused {
                self.set_paused(&control.resume, false);
            }
        }
        let limit = self.config.outputs.outbox_limit;
        let store_ok = self.status.store_writable.load(Ordering::Relaxed);
        let stop = self.outbox.len() >= limit || !store_ok;
        let go = self.outbox.len() < limit / 2 + 1 && store_ok;
        let all: Vec<TopicPartition> = run.aligner.partitions().cloned().collect();
        if stop && !run.all_paused {
            tracing::warn!(outbox = self.outbox.len(), store_ok, "Pausing consumption until the outbox drains and the store is writable.");
            self.set_paused(&all, true);
            run.all_paused = true;
        } else if go && run.all_paused {
            let resume: Vec<TopicPartition> = all
                .into_iter()
                .filter(|partition| !run.flow_paused.contains(partition))
                .collect();
            self.set_paused(&resume, false);
            run.all_paused = false;
            tracing::info!("Consumption resumed.");
        }
    }
}
