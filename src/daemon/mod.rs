//! The daemon (`flowwatch run`): the engine driven live from Kafka, durably.
//!
//! - [`align`]: live time, partitions merged into event-time order (pure).
//! - [`outbox`]: records to publish until the broker acknowledges them (pure).
//! - [`checkpoint`]: engine state, positions and outbox in one atomic store batch.
//! - [`kafka`]: consumer, producer and message decoding (the worker's reader thread polls
//!   through it; the worker pauses, resumes and commits).
//! - [`worker`]: the thread that owns the tracker and runs the loop, fed by its reader
//!   thread, which decodes and matches records.
//! - [`status`]: what the daemon reports about itself (health, metrics).
//!
//! [`start`] restores the state, connects, and starts the worker thread; cancelling the token
//! stops it in order (see [`worker::Worker::run`]).

pub mod align;
pub mod checkpoint;
pub mod kafka;
pub mod outbox;
pub mod status;
pub mod worker;

use crate::clock::Clock;
use crate::config::Config;
use crate::engine::migrate::FlowChanges;
use crate::engine::{Engine, EngineConfig};
use crate::flow::Flow;
use crate::http::Health;
use crate::metrics::Metrics;
use crate::store::{self, Backend};
use crate::tracker::{self, Tracker, TrackerHandle};
use status::Status;
use std::sync::Arc;
use std::thread::JoinHandle;
use tokio_util::sync::CancellationToken;

/// A started daemon.
pub struct Daemon {
    /// Health and figures, updated by the worker.
    pub status: Arc<Status>,
    /// Reaches the tracker on the worker thread (HTTP API).
    pub tracker: TrackerHandle,
    /// What was restored, for the startup summary.
    pub summary: String,
    worker: JoinHandle<anyhow::Result<()>>,
}

impl Daemon {
    /// Waits for the worker to stop (after its token was cancelled).
    pub fn join(self) -> anyhow::Result<()> {
        match self.worker.join() {
            Ok(result) => result,
            Err(_) => anyhow::bail!("the worker thread panicked"),
        }
    }
}

/// The engine settings the configuration gives.
pub fn engine_config(config: &Config) -> EngineConfig {
    EngineConfig {
        instance_name: config.instance_name.clone(),
        allowed_lateness: config.tracking.allowed_lateness,
        orphan_after: config.tracking.orphan_after,
        retention: config.tracking.retention,
        history_limit: config.tracking.history_limit,
    }
}

/// Logs and counts what a restart with other flows changed (see [`crate::engine::migrate`]).
fn report_flow_changes(changes: &FlowChanges, metrics: &Metrics) {
    for dropped in &changes.dropped {
        tracing::warn!(
            flow = %dropped.name,
            open_instances = dropped.open_instances,
            ended_instances = dropped.ended_instances,
            orphan_groups = dropped.orphan_groups,
            "This flow was removed or its events, steps or links changed since the checkpoint: its instances and held events are dropped (its open instances are no longer tracked)."
        );
        for (kind, count) in [
            ("open_instances", dropped.open_instances),
            ("ended_instances", dropped.ended_instances),
            ("orphan_groups", dropped.orphan_groups),
        ] {
            metrics.count_dropped_on_restore(&dropped.name, kind, count);
        }
    }
    for added in &changes.added {
        tracing::warn!(flow = %added, "This flow is new (or reshaped) since the checkpoint: it tracks records from the stored positions on; instances started before are not known to it.");
    }
}

/// Restores the state, connects to Kafka and starts the worker thread.
pub fn start(
    config: Config,
    flows: Vec<Flow>,
    clock: Arc<dyn Clock>,
    cancel: CancellationToken,
) -> anyhow::Result<Daemon> {
    start_with(config, flows, clock, cancel, Metrics::new(), Health::new())
}

/// [`start`] with the metrics registry and health handle the HTTP side serves.
pub fn start_with(
    config: Config,
    flows: Vec<Flow>,
    clock: Arc<dyn Clock>,
    cancel: CancellationToken,
    metrics: Metrics,
    health: Health,
) -> anyhow::Result<Daemon> {
    let backend: Backend = config.state.backend.parse()?;
    let store = store::open(backend, &config.state.dir)?;
    let restored = checkpoint::load(&*store)?;
    let engine_config = engine_config(&config);
    let restored_instances;
    let engine = match restored.snapshot {
        Some(snapshot) => {
            let (engine, changes) = Engine::restore_with_changed_flows(flows, engine_config, snapshot)
                .map_err(|error| {
                    anyhow::anyhow!(
                        "cannot restore the state in {}: {error}",
                        config.state.dir.display()
                    )
                })?;
            report_flow_changes(&changes, &metrics);
            restored_instances = engine.open_instances();
            engine
        }
        None => {
            restored_instances = 0;
            Engine::new(flows, engine_config)
        }
    };
    let summary = format!(
        "flows: {}; topics: {}; state: {} in {} ({} open instances, {} partitions with positions, {} records in the outbox)",
        engine
            .flows()
            .iter()
            .map(|flow| flow.def.name.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        engine.topics().join(", "),
        backend,
        config.state.dir.display(),
        restored_instances,
        restored.positions.len(),
        restored.outbox.len(),
    );
    let shared = Arc::new(kafka::Shared::default());
    if let Ok(mut resume) = shared.resume.lock() {
        for (partition, position) in &restored.positions {
            resume.insert(partition.clone(), position.offset);
        }
    }
    let consumer = kafka::consumer(&config, shared.clone())?;
    let kafka::DaemonProducer {
        producer,
        reports,
        deliveries,
    } = kafka::producer(&config)?;
    let (handle, requests) = tracker::channel();
    let status = Arc::new(Status::new());
    let worker = worker::Worker {
        tracker: Tracker::new(engine),
        writer: worker::Writer::start(store, backend, config.state.dir.clone())?,
        consumer: Arc::new(consumer),
        shared,
        producer: Arc::new(producer),
        reports,
        deliveries,
        requests: Some(requests),
        status: status.clone(),
        outbox: outbox::Outbox::restore(restored.outbox),
        restored_positions: restored.positions,
        stored_keys: restored.slots,
        metrics,
        health,
        clock,
        config,
    };
    let thread = std::thread::Builder::new()
        .name("flowwatch-worker".to_string())
        .spawn(move || worker.run(cancel))?;
    Ok(Daemon {
        status,
        tracker: handle,
        summary,
        worker: thread,
    })
}
