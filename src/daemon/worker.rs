//! The worker: one thread that owns the tracker and drives it from Kafka.
//!
//! Each turn of its loop: serve requests from other tasks (HTTP), take the batches of records
//! its reader thread polled, decoded and matched (`reader.rs`) with the assignment changes
//! among them, let the live merge ([`Aligner`]) release the records the clock has
//! passed into the engine, move the engine's clock, turn outputs into outbox entries, hand the
//! outbox to the producer and collect its acknowledgements, pause or resume partitions, and
//! take a checkpoint when due. A checkpoint is encoded here and committed by the writer thread
//! (`writer.rs`) while the worker goes on; its offsets are committed to Kafka and its outbox
//! changes forgotten only once the writer reports it durable. Nothing else touches the engine,
//! so there are no locks around it.

use super::align::{Aligner, ResumePosition, TopicPartition};
use super::checkpoint;
use super::kafka::{self, Delivery, FlowConsumer, OutboxProducer, Shared};
use super::outbox::Outbox;
use super::status::Status;
use crate::clock::{Clock, SystemClock};
use crate::config::{Config, StartFrom};
use crate::engine::{Input, Output};
use crate::http::Health;
use crate::metrics::{FlowCount, Metrics, RecordResult, StepCount, StepPhase};
use crate::time::{self, Millis};
use crate::tracker::{Tracker, TrackerRequests};
use rdkafka::consumer::Consumer;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

mod held_positions;
mod outputs;
mod partitions;
mod reader;
mod sender;
mod writer;

use held_positions::HeldPositions;
use reader::{Event, Held, Read, Reader, ReaderSetup, Wall};
use sender::Sender;
pub(super) use writer::Writer;

/// Most records taken from the reader per turn.
const BATCH: usize = 5_000;
/// Most records applied per turn: after a catch-up read ahead, the merge may release a
/// hundred thousand at once; between such slices the turn publishes their signals (the
/// producer's threads send them while the next slice is applied), settles deliveries and
/// checkpoints, and answers the HTTP side.
const APPLY_PER_TURN: usize = 5_000;
/// Back-off before a failed delivery is tried again.
const RETRY_AFTER: Millis = 1_000;
/// Checkpoints are incremental, so their cost follows what changed since the last one (about
/// the records applied), not the state's size; still, the next one waits at least this many
/// times as long as the last one took, so that checkpoints take at most a fifth of the
/// worker's time even on a slow disk (`state.checkpoint_interval` is the least spacing).
const CHECKPOINT_SPACING: Millis = 4;

/// Everything the worker needs, built by [`super::start`].
pub struct Worker {
    pub(super) config: Config,
    pub(super) clock: Arc<dyn Clock>,
    pub(super) tracker: Tracker,
    /// The thread that owns the store and commits checkpoints.
    pub(super) writer: Writer,
    pub(super) consumer: Arc<FlowConsumer>,
    pub(super) shared: Arc<Shared>,
    pub(super) producer: Arc<OutboxProducer>,
    /// Where delivery reports go (the sender thread reports refused records there).
    pub(super) reports: mpsc::Sender<Delivery>,
    pub(super) deliveries: mpsc::Receiver<Delivery>,
    pub(super) requests: Option<TrackerRequests>,
    pub(super) status: Arc<Status>,
    pub(super) outbox: Outbox,
    /// Positions restored from the store: records read again below them were applied before.
    pub(super) restored_positions: HashMap<TopicPartition, ResumePosition>,
    /// What the store holds that checkpoints update: slots with parts, outbox blocks (see
    /// `checkpoint::write`).
    pub(super) stored_keys: checkpoint::StoredKeys,
    /// Prometheus metrics (rendered by the HTTP side).
    pub(super) metrics: Metrics,
    /// Readiness facts for `/readyz`.
    pub(super) health: Health,
}

/// The output topics, shared by every record sent to them.
struct OutTopics {
    signals: Option<Arc<str>>,
    alerts: Option<Arc<str>>,
    /// Where a signal's JSON is written before it is copied out at its exact size (written
    /// straight into a record's own buffer, the buffer grew two or three times a signal, and
    /// the outbox kept up to half of each allocation unused).
    scratch: Vec<u8>,
}

/// A checkpoint handed to the writer, to settle when the writer reports on it.
struct Pending {
    prepared: checkpoint::Prepared,
    /// The read positions it holds.
    positions: HeldPositions,
    started: Millis,
}

/// Loop state that is not configuration.
struct Run {
    out_topics: OutTopics,
    /// The thread that polls, decodes and matches.
    reader: Reader,
    /// The thread that hands the outbox's records to the producer.
    sender: Sender,
    aligner: Aligner<Held>,
    outputs: Vec<Output>,
    /// Partitions paused by the merge's flow control.
    flow_paused: HashSet<TopicPartition>,
    /// Everything paused because the outbox is full or the store failed.
    all_paused: bool,
    last_checkpoint: Millis,
    /// How long the last checkpoint took, ms (from taking it to its commit).
    last_checkpoint_cost: Millis,
    /// The checkpoint the writer is committing.
    pending: Option<Pending>,
    last_record_at: Millis,
    /// Records finished with in this turn, added to `Status::records_done` once its outputs
    /// are in the outbox and `Status::outbox_len` counts them.
    done_in_turn: u64,
    /// The last turn stopped applying at [`APPLY_PER_TURN`] with records still released.
    more_ready: bool,
    force_checkpoint: bool,
    /// Partitions of the flows' topics were held by another member of the group at the last
    /// listing (logged when that ends).
    waited_for_members: bool,
    horizon_set: Millis,
    watchdog_logged: bool,
    /// Partitions that start fresh from a time (`kafka.start_from` = a time).
    fresh_from_time: HashSet<TopicPartition>,
    /// When gauges computed from the whole state were last refreshed.
    last_gauges: Millis,
    /// The last catch-up progress line: when, and how many records were behind then.
    last_progress: (Millis, u64),
    /// The highest wall-clock time seen: the daemon's "now" never moves back (see [`Worker::wall`]).
    wall: Wall,
    /// The wall clock is behind `wall` right now (logged once per episode).
    clock_behind: bool,
}

impl Worker {
    /// Runs until cancelled, then shuts down in order: stop fetching, checkpoint, flush the
    /// outbox for at most `outputs.flush_timeout`, checkpoint again, commit offsets.
    pub fn run(mut self, cancel: CancellationToken) -> anyhow::Result<()> {
        let real = SystemClock;
        let topics: Vec<String> = self.tracker.engine().topics().to_vec();
        kafka::subscribe(&self.consumer, &topics)?;
        let shared_topic = |topic: &Option<String>| topic.as_deref().map(Arc::<str>::from);
        // A restored clock is at most the wall clock less the lateness when it was saved: if
        // the wall clock went back during the downtime, "now" starts where it was.
        let restored_wall = match self.tracker.engine().clock() {
            Millis::MIN => Millis::MIN,
            clock => clock.saturating_add(self.config.tracking.allowed_lateness),
        };
        let wall = Wall::new(self.clock.clone(), restored_wall);
        let reader = Reader::start(ReaderSetup {
            consumer: self.consumer.clone(),
            shared: self.shared.clone(),
            correlator: self.tracker.engine().correlator(),
            topics: topics.clone(),
            wall: wall.clone(),
            max_clock_skew: self.config.tracking.max_clock_skew,
        })?;
        let sender = Sender::start(self.producer.clone(), self.reports.clone())?;
        let mut run = Run {
            reader,
            sender,
            out_topics: OutTopics {
                signals: shared_topic(&self.config.outputs.signals_topic),
                alerts: shared_topic(&self.config.outputs.alerts_topic),
                scratch: Vec::with_capacity(4096),
            },
            aligner: Aligner::new(
                self.config.tracking.allowed_lateness,
                self.config.kafka.max_held_records,
            ),
            outputs: Vec::new(),
            flow_paused: HashSet::new(),
            all_paused: false,
            last_checkpoint: real.now(),
            last_checkpoint_cost: 0,
            pending: None,
            last_record_at: real.now(),
            done_in_turn: 0,
            more_ready: false,
            force_checkpoint: false,
            waited_for_members: false,
            horizon_set: Millis::MIN,
            watchdog_logged: false,
            fresh_from_time: HashSet::new(),
            last_gauges: Millis::MIN,
            last_progress: (Millis::MIN, 0),
            wall,
            clock_behind: false,
        };
        run.aligner.start_clock_at(self.tracker.engine().clock());
        self.status.restored.store(true, Ordering::Relaxed);
        self.status.store_writable.store(true, Ordering::Relaxed);
        self.metrics.register_flows(self.tracker.engine().flows());
        self.health.set_state_restored(true);
        self.health.set_store_writable(true);
        tracing::info!(topics = ?topics, group = %self.config.kafka.group_id, "Consuming.");
        while !cancel.is_cancelled() {
            self.turn(&mut run, &real)?;
        }
        self.shutdown(&mut run, &real)
    }

    fn turn(&mut self, run: &mut Run, real: &SystemClock) -> anyhow::Result<()> {
        self.serve_requests(run);
        let mut taken = 0;
        // Records released but not applied last turn are work at hand: do not wait for more.
        let mut wait = if run.more_ready {
            Duration::ZERO
        } else {
            Duration::from_millis(20)
        };
        while taken < BATCH {
            let Some(batch) = run.reader.next(wait)? else {
                break;
            };
            wait = Duration::ZERO;
            for event in batch {
                match event {
                    Event::Assignment(changes) => self.assignment_changes(run, changes),
                    Event::Expected(partitions) => self.expect_partitions(run, partitions),
                    Event::Record {
                        partition,
                        offset,
                        read,
                    } => {
                        taken += 1;
                        self.ingest(run, partition, offset, read);
                    }
                }
            }
        }
        if taken > 0 {
            run.last_record_at = real.now();
            self.status
                .records_read
                .fetch_add(taken as u64, Ordering::Relaxed);
        }
        self.update_positions(run, real);
        self.advance(run);
        self.publish(run, real)?;
        // After `publish` stored the outbox's length: whoever sees these records done sees
        // an outbox length that counts their outputs.
        let done = std::mem::take(&mut run.done_in_turn);
        if done > 0 {
            self.status.records_done.fetch_add(done, Ordering::Release);
        }
        if let Some(result) = self.writer.finished() {
            self.settle_checkpoint(run, result);
        }
        self.flow_control(run);
        let now = real.now();
        let spacing = self
            .config
            .state
            .checkpoint_interval
            .max(run.last_checkpoint_cost.saturating_mul(CHECKPOINT_SPACING));
        let due = run.force_checkpoint || now.saturating_sub(run.last_checkpoint) >= spacing;
        if due && !self.writer.busy() {
            self.start_checkpoint(run);
        }
        if now.saturating_sub(run.last_gauges) >= 1_000 {
            run.last_gauges = now;
            self.refresh_gauges();
        }
        if now.saturating_sub(run.last_progress.0) >= 10_000 {
            self.log_progress(run, now);
        }
        Ok(())
    }

    /// Every 10 s while catching up: records behind, event-time lag and an estimate of the time
    /// left from the rate at which the backlog shrinks.
    fn log_progress(&self, run: &mut Run, now: Millis) {
        let behind = self.status.records_behind.load(Ordering::Relaxed);
        let (then, behind_then) = run.last_progress;
        run.last_progress = (now, behind);
        if behind == 0 || self.status.caught_up.load(Ordering::Relaxed) {
            return;
        }
        let lag = time::format_duration(self.status.event_time_lag_ms.load(Ordering::Relaxed).max(0));
        let eta = if then > Millis::MIN && behind_then > behind {
            let per_ms = (behind_then - behind) as f64 / (now - then).max(1) as f64;
            time::format_duration((behind as f64 / per_ms) as Millis)
        } else {
            "unknown".to_string()
        };
        tracing::info!(records_behind = behind, event_time_lag = %lag, estimated_time_left = %eta, "Catching up.");
    }

    /// Gauges computed from the whole state, at most once a second.
    fn refresh_gauges(&mut self) {
        let engine = self.tracker.engine();
        self.metrics.observe_engine(engine, self.clock.now());
        let counts = engine.flow_counts();
        let flows: Vec<FlowCount<'_>> = counts
            .iter()
            .map(|flow| FlowCount {
                flow: &flow.name,
                open: flow.open,
                breached: flow.breached,
                stuck: flow.stuck,
            })
            .collect();
        self.metrics.set_flow_counts(&flows);
        let mut steps = Vec::new();
        for flow in &counts {
            for step in &flow.steps {
                for (state, instances) in [
                    (StepPhase::Waiting, step.pending),
                    (StepPhase::Open, step.waiting.saturating_sub(step.breached)),
                    (StepPhase::Breached, step.breached),
                ] {
                    steps.push(StepCount {
                        flow: &flow.name,
                        step: &step.name,
                        state,
                        instances,
                    });
                }
            }
        }
        self.metrics.set_step_counts(&steps);
        self.metrics
            .set_outbox(self.outbox.len() as u64, self.outbox.bytes() as u64);
        let watchdog = self.status.watchdog_ok.load(Ordering::Relaxed);
        self.metrics.set_watchdog_healthy(watchdog);
        let store = self.status.store_writable.load(Ordering::Relaxed);
        let assigned = self.status.partitions_assigned.load(Ordering::Relaxed) > 0;
        self.health.set_watchdog_ok(watchdog);
        self.health.set_store_writable(store);
        self.health.set_partitions_assigned(assigned && !self.status.group_conflict.load(Ordering::Relaxed));
        if let Ok(mut error) = self.shared.client_error.lock() {
            if assigned {
                *error = None;
            }
            self.health.set_kafka_error(error.as_deref());
        }
        self.health.set_backlog(
            self.status.records_behind.load(Ordering::Relaxed),
            self.status.event_time_lag_ms.load(Ordering::Relaxed),
        );
        self.metrics.set_ready_check("partitions_assigned", assigned);
        self.metrics.set_ready_check("store_writable", store);
        self.metrics.set_ready_check("watchdog", watchdog);
        self.metrics.set_ready(self.status.ready());
    }

    fn serve_requests(&mut self, run: &mut Run) {
        let Some(requests) = self.requests.as_mut() else {
            return;
        };
        let mut served = 0;
        while let Some(request) = requests.try_recv() {
            request.run(&mut self.tracker, &mut run.outputs);
            served += 1;
            if served >= 64 {
                break;
            }
        }
        if !run.outputs.is_empty() {
            // An operator action: it is not in Kafka, so make it durable at once.
            run.force_checkpoint = true;
            // Requests go through `Tracker::handle`, which remembered their signals already.
            self.effects(run, None, false);
        }
    }

    /// Takes one record the reader read.
    fn ingest(&mut self, run: &mut Run, partition: TopicPartition, offset: i64, read: Read) {
        // Gaps are legitimate (compaction, transaction markers); see docs/testing.md. Looked up
        // only when the debug log is on: this runs for every record.
        if tracing::enabled!(tracing::Level::DEBUG) {
            if let Some(next) = run.aligner.next_offset(&partition).filter(|next| *next != offset) {
                tracing::debug!(topic = %partition.0, partition = partition.1, expected = next, offset, "Offsets not contiguous.");
            }
        }
        // Read again after a restart (or after the partition came back): applied before.
        let applied = self
            .restored_positions
            .get(&partition)
            .is_some_and(|position| position.already_applied(offset));
        let before_start = |held: &Held| match self.config.kafka.start_from {
            StartFrom::Time(start) => {
                run.fresh_from_time.contains(&partition) && held.record.timestamp < start
            }
            _ => false,
        };
        match read {
            _ if applied => self.passed(run, &partition, offset),
            Read::Hold { held, .. } if before_start(&held) => self.passed(run, &partition, offset),
            Read::Undecodable { detail, raw } => {
                let before = self.tracker.engine().stats().clone();
                self.tracker.engine_mut().count_undecodable();
                self.metrics
                    .observe_record(&partition.0, &before, self.tracker.engine().stats());
                self.metrics.count_dead_letter(&partition.0, "invalid_json");
                self.dead_letter(&partition, offset, "invalid_json", &detail, raw);
                self.passed(run, &partition, offset);
            }
            Read::Hold { time, held } if held.skewed_at.is_some() => {
                run.aligner.read_skewed(&partition, offset, time, held);
            }
            Read::Hold { time, held } => run.aligner.read(&partition, offset, time, held),
        }
    }

    /// A record finished with as soon as it was read (applied before, undecodable, or before
    /// `kafka.start_from`): only the read position moves.
    fn passed(&self, run: &mut Run, partition: &TopicPartition, offset: i64) {
        run.aligner.passed(partition, offset);
        run.done_in_turn += 1;
    }

    /// Releases what the clock has passed into the engine and moves the engine's clock.
    fn advance(&mut self, run: &mut Run) {
        let wall = self.wall(run);
        let horizon = wall.saturating_sub(self.config.tracking.action_horizon);
        if horizon.saturating_sub(run.horizon_set) >= 1_000 || horizon < run.horizon_set {
            self.tracker
                .handle_deferred(Input::ActionHorizonSet(horizon), &mut run.outputs);
            run.horizon_set = horizon;
            if !run.outputs.is_empty() {
                self.effects(run, None, true);
            }
        }
        let live = run.aligner.clock(wall);
        tracing::trace!(live = %time::format_rfc3339(live.max(0)), waiting = run.aligner.waiting(), "Live clock.");
        // Records counted by topic and result, added to the metrics once per turn.
        let mut counted: Vec<(Arc<str>, RecordResult, u64)> = Vec::new();
        let mut applied = 0;
        run.more_ready = false;
        while let Some(((topic, _), _, _, held)) = run.aligner.pop_ready(live) {
            let input = match held.skewed_at {
                Some(now) => Input::SkewedRecordReceived {
                    record: &held.record,
                    now,
                },
                None => Input::CorrelatedRecordReceived {
                    record: &held.record,
                    matches: held.matches,
                },
            };
            let before = self.tracker.engine().stats().clone();
            self.tracker.handle_deferred(input, &mut run.outputs);
            let result = RecordResult::from_stats(&before, self.tracker.engine().stats());
            let same = |(counted_topic, counted_result, _): &&mut (Arc<str>, RecordResult, u64)| {
                *counted_result == result && *counted_topic == topic
            };
            match counted.iter_mut().find(same) {
                Some((_, _, count)) => *count += 1,
                None => counted.push((topic, result, 1)),
            }
            self.effects(run, Some(&held.record), true);
            run.done_in_turn += 1;
            applied += 1;
            if applied == APPLY_PER_TURN {
                // The rest next turn (the engine's clock below stays short of them).
                run.more_ready = true;
                break;
            }
        }
        if !counted.is_empty() {
            for (topic, result, records) in &counted {
                self.metrics.count_records(topic, *result, *records);
            }
            self.metrics
                .set_orphans_held(self.tracker.engine().stats().orphans_held);
        }
        let target = run.aligner.engine_target(live);
        if target > self.tracker.engine().clock() && target > Millis::MIN {
            self.tracker
                .handle_deferred(Input::ClockAdvanced(target), &mut run.outputs);
            self.effects(run, None, true);
        }
        let lag = if self.tracker.engine().clock() == Millis::MIN {
            0
        } else {
            wall - self.tracker.engine().clock()
        };
        self.status.event_time_lag_ms.store(lag, Ordering::Relaxed);
    }

    /// Takes a checkpoint (`checkpoint::prepare`) and hands its batch to the writer; it is
    /// settled when the writer reports on it ([`Worker::settle_checkpoint`]).
    fn start_checkpoint(&mut self, run: &mut Run) {
        let started = SystemClock.now();
        // Partitions taken away by a rebalance keep the position of what the engine applied
        // from them (they are committed to Kafka only while owned).
        let positions = HeldPositions::take(run.aligner.resume_positions(), &self.restored_positions);
        let mut prepared = checkpoint::prepare(
            self.tracker.engine_mut(),
            positions.all(),
            &self.outbox,
            &self.stored_keys,
            self.clock.now(),
        );
        self.writer.submit(prepared.take_commit());
        run.pending = Some(Pending {
            prepared,
            positions,
            started,
        });
    }

    /// Settles the checkpoint the writer reported on: durable, its offsets are committed and
    /// the outbox forgets the changes it held; failed, consumption pauses until one succeeds.
    /// `true` if it was written.
    fn settle_checkpoint(&mut self, run: &mut Run, result: Result<(), crate::store::StoreError>) -> bool {
        let Some(pending) = run.pending.take() else {
            return false;
        };
        let result = pending.prepared.finish(
            result,
            self.tracker.engine_mut(),
            &mut self.outbox,
            &mut self.stored_keys,
        );
        let finished = SystemClock.now();
        let cost = finished - pending.started;
        run.last_checkpoint = finished;
        run.last_checkpoint_cost = cost;
        match result {
            Ok(written) => {
                run.force_checkpoint = false;
                self.metrics.observe_checkpoint(
                    cost as f64 / 1000.0,
                    written.bytes as u64,
                );
                if !self.status.store_writable.swap(true, Ordering::Relaxed) {
                    tracing::info!("The store is writable again.");
                }
                self.status.checkpoints.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(
                    bytes = written.bytes,
                    parts_written = written.parts_written,
                    parts_deleted = written.parts_deleted,
                    outbox_added = written.outbox_added,
                    "Checkpoint written."
                );
                // Partitions given up meanwhile keep the newer position `give_up` stored.
                let settled = pending.positions.settle();
                self.restored_positions.extend(settled.stored);
                kafka::commit(&self.consumer, &settled.offsets);
                true
            }
            Err(error) => {
                self.metrics.count_checkpoint_error();
                if self.status.store_writable.swap(false, Ordering::Relaxed) {
                    tracing::error!(%error, "Checkpoint failed: consumption pauses and no offsets are committed until the store can be written again.");
                }
                false
            }
        }
    }

    /// Writes a checkpoint now and waits until it is durable (at shutdown), after the one the
    /// writer may be committing. `true` if it was written.
    fn checkpoint_now(&mut self, run: &mut Run) -> bool {
        if let Some(result) = self.writer.wait() {
            self.settle_checkpoint(run, result);
        }
        self.start_checkpoint(run);
        match self.writer.wait() {
            Some(result) => self.settle_checkpoint(run, result),
            None => false,
        }
    }

    fn shutdown(mut self, run: &mut Run, real: &SystemClock) -> anyhow::Result<()> {
        tracing::info!("Shutting down: stopping fetches, checkpointing, flushing the outbox.");
        let all: Vec<TopicPartition> = run.aligner.partitions().cloned().collect();
        let _ = self.consumer.pause(&kafka::partition_list(&all));
        run.reader.stop();
        self.serve_requests(run);
        let saved = self.checkpoint_now(run);
        let deadline = real.now() + self.config.outputs.flush_timeout;
        while !self.outbox.is_empty() && real.now() < deadline {
            if let Err(error) = self.publish(run, real) {
                tracing::error!(%error, "The outbox cannot be flushed; it is kept and sent at the next start.");
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        kafka::flush(&self.producer, Duration::from_millis(100));
        // Collects the last delivery reports; a sender gone was reported just above.
        let _ = self.publish(run, real);
        let saved = self.checkpoint_now(run) || saved;
        run.sender.stop();
        if !self.outbox.is_empty() {
            tracing::warn!(left = self.outbox.len(), "The outbox did not drain in time; it is kept and sent at the next start.");
        }
        self.consumer.unsubscribe();
        if saved {
            tracing::info!(clock = %time::format_rfc3339(self.tracker.engine().clock().max(0)), "Stopped cleanly.");
            Ok(())
        } else {
            anyhow::bail!("the final checkpoint could not be written; the next start resumes from the previous one")
        }
    }
}
