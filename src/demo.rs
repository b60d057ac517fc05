//! `flowwatch demo`: everything in one process, to see flowwatch work in a minute.
//!
//! An embedded Kafka-protocol broker (librdkafka's mock cluster, real protocol), the
//! choreography simulator producing order-fulfilment and customer-onboarding traffic with
//! faults (lost events, slow services, declined payments, late or misrouted starts,
//! duplicates, out-of-order delivery, malformed records), and the daemon with the flows of
//! `flows/`, its web page, API and metrics. `--speed N` runs simulated time N times faster than
//! the wall clock, for the simulator and the tracker alike (one [`ScaledClock`]), so that
//! minutes-long SLAs breach within seconds. State is kept in memory.

use crate::app;
use crate::clock::{Clock, ScaledClock, SystemClock};
use crate::config;
use crate::flow::Flow;
use crate::simulate::{kafka as sim_kafka, FaultMix, SimConfig, Simulator, COMMAND_TOPICS, TOPICS};
use crate::time::{self, Millis};
use crate::tracker::TrackerHandle;
use rdkafka::mocking::MockCluster;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// What the demo runs with (the `demo` command's flags).
#[derive(Clone, Debug)]
pub struct DemoOptions {
    pub listen: SocketAddr,
    pub flows_dir: PathBuf,
    /// New instances per wall-clock second.
    pub rate: f64,
    /// Simulated seconds per wall-clock second.
    pub speed: f64,
    pub seed: u64,
    pub faults: FaultMix,
    /// Stop after this much wall-clock time (tests); `None` runs until Ctrl-C.
    pub duration: Option<Millis>,
    /// Partitions of each simulated topic.
    pub partitions: i32,
}

/// The operator token of the demo (printed at start; operator buttons need it).
pub const DEMO_TOKEN: &str = "demo-operator-token";

/// Runs the demo until Ctrl-C, SIGTERM or the end of `duration`.
pub async fn run(options: DemoOptions, flows: Vec<Flow>) -> anyhow::Result<()> {
    let cluster = MockCluster::new(1)
        .map_err(|error| anyhow::anyhow!("cannot start the embedded broker: {error}"))?;
    for topic in TOPICS.iter().chain(COMMAND_TOPICS.iter()) {
        cluster.create_topic(topic, options.partitions, 1)?;
    }
    for topic in ["flowwatch.signals", "flowwatch.alerts", "flowwatch.dead-letter"] {
        cluster.create_topic(topic, 1, 1)?;
    }
    let brokers = cluster.bootstrap_servers();
    let start = SystemClock.now();
    let clock = Arc::new(ScaledClock::new(start, options.speed));
    let env: HashMap<String, String> = [
        ("FLOWWATCH__INSTANCE_NAME", "demo".to_string()),
        ("FLOWWATCH__KAFKA__BROKERS", brokers.clone()),
        ("FLOWWATCH__KAFKA__GROUP_ID", "flowwatch-demo".to_string()),
        ("FLOWWATCH__FLOWS__DIR", options.flows_dir.display().to_string()),
        ("FLOWWATCH__STATE__BACKEND", "memory".to_string()),
        ("FLOWWATCH__HTTP__LISTEN", options.listen.to_string()),
        ("FLOWWATCH__HTTP__OPERATOR_TOKEN", DEMO_TOKEN.to_string()),
        // Lateness in simulated time: 5 s at --speed 60 is a twelfth of a real second.
        ("FLOWWATCH__TRACKING__ALLOWED_LATENESS", "5s".to_string()),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_string(), value))
    .collect();
    let config = config::load(None, &env)?;
    let stop = CancellationToken::new();
    let simulator_config = SimConfig {
        seed: options.seed,
        // The simulator counts simulated seconds.
        rate_per_sec: options.rate / options.speed,
        faults: options.faults,
    };
    let mut simulator = Simulator::starting_at(simulator_config, start);
    let sim_options = sim_kafka::SimulateOptions {
        brokers: brokers.clone(),
        partitions: options.partitions,
        duration: None,
        react: true,
    };
    let stopper = {
        let stop = stop.clone();
        let duration = options.duration;
        async move {
            match duration {
                Some(millis) => {
                    tokio::select! {
                        _ = app::shutdown_signal() => {},
                        _ = tokio::time::sleep(std::time::Duration::from_millis(millis.max(0) as u64)) => {},
                    }
                }
                None => app::shutdown_signal().await,
            }
            stop.cancel();
        }
    };
    let tracker_stop = stop.clone();
    let speed = options.speed;
    let daemon = app::run_until(
        config,
        flows,
        clock.clone(),
        async move { tracker_stop.cancelled().await },
        move |address: SocketAddr, tracker: TrackerHandle| {
            println!("flowwatch demo: http://{address}/");
            println!(
                "  embedded broker {brokers}, simulated time {speed}x from {}, operator token {DEMO_TOKEN}",
                time::format_rfc3339(start)
            );
            println!("  Ctrl-C stops it. A summary follows every 5 s.");
            tokio::spawn(summaries(tracker));
        },
    );
    let simulate = async {
        let mut diagnostics = std::io::sink();
        let result = sim_kafka::run(
            &mut simulator,
            clock.as_ref(),
            &sim_options,
            stop.cancelled(),
            &mut diagnostics,
        )
        .await;
        if let Err(error) = &result {
            tracing::error!(%error, "The simulator stopped.");
        }
    };
    let (result, (), ()) = tokio::join!(daemon, simulate, stopper);
    drop(cluster);
    result
}

/// Prints one line of figures every 5 s.
async fn summaries(tracker: TrackerHandle) {
    let mut interval = tokio::time::interval(std::time::Duration::from_secs(5));
    interval.tick().await;
    loop {
        interval.tick().await;
        let line = tracker
            .call(|tracker, _| {
                let engine = tracker.engine();
                let stats = engine.stats();
                let deviations = tracker
                    .recent_signals(1000)
                    .filter(|signal| signal.kind == crate::engine::SignalKind::Deviation)
                    .count();
                format!(
                    "  clock {} | records {} | open {} completed {} failed {} | breaches {} actions {} orphaned {} | deviations (recent) {}",
                    time::format_rfc3339(engine.clock().max(0)),
                    stats.records,
                    engine.open_instances(),
                    stats.completed,
                    stats.failed,
                    stats.breaches,
                    stats.actions,
                    stats.orphaned,
                    deviations
                )
            })
            .await;
        match line {
            Ok(line) => println!("{line}"),
            Err(_) => break,
        }
    }
}
