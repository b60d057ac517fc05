//! The kill -9 torture test of the daemon (daemon issue, "Kill -9 torture"; fault-injection
//! issue, "kill -9 during a batch and during an outbox flush"), run by `scripts/torture.sh`.
//! A test binary of its own (`test = false` in Cargo.toml): it takes minutes, so `cargo test`
//! does not run it.
//!
//! One test per disk backend (`state.backend` = redb, sled). Each starts librdkafka's mock
//! cluster in this process, produces a seeded simulation of about 50,000 records (event times
//! in the past, the simulator's default fault mix) over partitioned topics, and then runs the
//! real `flowwatch run` binary as a child process, killing it with SIGKILL at random moments
//! (seeded) and starting it again on the same state directory, 30 times: some kills land while
//! it opens its store and restores, most while it consumes, checkpoints (every 250 ms) and
//! flushes its outbox. A last run goes on until every expected signal is published and is then
//! stopped with SIGTERM. The output topics must then hold exactly what a kill-free run gives,
//! which is what a replay of the same records sorted by time gives (`tests/it/daemon.rs` and
//! the end-to-end suite prove live = replay):
//!
//! - signals: every id of the replay is there, no other id, and every copy of an id (a record
//!   re-sent after a kill) is byte-identical to the replay's signal;
//! - alerts, action records (by their `flowwatch_signal_id` header) and dead letters (by source
//!   topic, partition, offset and reason): the same sets, duplicates identical.
//!
//! Environment: `TORTURE_SEED` (default 20261202) seeds the kill moments; `TORTURE_KILLS`
//! (default 30) is the number of kills per backend; `TORTURE_RUST_LOG` is the daemon's
//! `RUST_LOG`. The simulation itself is fixed. The daemon's log (all lives) is kept in
//! `target/tmp/torture-BACKEND.log`.

// The harness bounds its waits on real processes by the wall clock and draws kill moments at
// random; the clock ban is for the product's code. kafka_support, shared with tests/it,
// matches on one pattern.
#![allow(clippy::disallowed_methods, clippy::single_match)]

#[allow(dead_code)]
#[path = "../it/kafka_support.rs"]
mod kafka_support;
#[allow(dead_code)]
#[path = "../e2e/tansu.rs"]
mod tansu;
mod lives;
mod outputs;
mod stream;

use flowwatch::config;
use flowwatch::daemon;
use flowwatch::engine::{Engine, EngineConfig, Input, Output};
use flowwatch::record::Record;
use flowwatch::simulate::{FaultMix, SimConfig, SimRecord, Simulator};
use kafka_support::{root, shipped_flows, TempDir};
use lives::*;
use outputs::*;
use stream::*;
use rand::rngs::ChaCha8Rng;
use rand::{RngExt, SeedableRng};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Partitions of every input topic (the mock keeps only 5 MiB per partition).
const INPUT_PARTITIONS: i32 = 4;
/// Partitions of the signals topic: the 65 k signals of the simulation take 25 MiB, and every
/// kill makes the next life send again what the last checkpoint's outbox held and what it
/// derives again from the records after it (several times the whole, over 30 kills).
const SIGNAL_PARTITIONS: i32 = 96;
/// Partitions of the alerts, dead-letter and action topics.
const OTHER_OUTPUT_PARTITIONS: i32 = 16;
const SIGNALS: &str = "flowwatch.signals";
const ALERTS: &str = "flowwatch.alerts";
const DEAD_LETTER: &str = "flowwatch.dead-letter";
/// Topics the simulator writes besides the flows' own (the `wrong_topic` fault's legacy
/// topics), and every topic the shipped flows' actions publish to.
const LEGACY_TOPICS: [&str; 2] = ["orders-legacy", "customer-events-legacy"];
const ACTION_TOPICS: [&str; 5] = [
    "payment-commands",
    "check-commands",
    "customer-commands",
    "carrier-commands",
    "customer-service-tasks",
];
/// The simulation: a fixed seed, 4 simulated hours of new instances from a fixed past start
/// (so every deadline has passed when the daemon catches up), then a day for stragglers.
const SIM_SEED: u64 = 20_260_101;
const SIM_START: &str = "2026-01-01T00:00:00Z";
const SIM_HOURS: i64 = 4;
const SIM_RATE_PER_SEC: f64 = 0.8;
/// How often the daemon checkpoints: short, so that kills land before, during and after
/// checkpoints.
const CHECKPOINT_INTERVAL: &str = "250ms";
/// Above the largest lateness of a record within its partition (checked).
const ALLOWED_LATENESS: &str = "35m";
/// A life normally gets its partitions 2-3 s after it starts; one that has none after this
/// long is killed while joining and counted (twice, on a machine loaded by parallel builds, a
/// life waited longer than this on the mock cluster without any error logged).
const SLOW_JOIN: Duration = Duration::from_secs(60);

fn env_number(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(value) => value
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name} must be a whole number, not {value:?}")),
        Err(_) => default,
    }
}

/// A client that runs librdkafka's mock cluster (`test.mock.num.brokers`), with the group
/// coordinator's initial rebalance delay set to zero: the mock's default of 3 s is longer than
/// the short session timeout the daemons use here, so a first member would time out while its
/// JoinGroup waits.
fn mock_cluster_owner() -> BaseProducer {
    let owner: BaseProducer = ClientConfig::new()
        .set("test.mock.num.brokers", "1")
        .create()
        .expect("mock cluster starts");
    // SAFETY: the client handle is valid while `owner` lives; librdkafka returns the mock
    // cluster it owns (checked for null) and the setter only stores the number.
    unsafe {
        let mock = rdkafka::bindings::rd_kafka_handle_mock_cluster(owner.client().native_ptr());
        assert!(!mock.is_null(), "the client runs a mock cluster");
        rdkafka::bindings::rd_kafka_mock_group_initial_rebalance_delay_ms(mock, 0);
    }
    owner
}

/// The broker the daemon is tortured against.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Broker {
    /// librdkafka's mock cluster, in this process.
    Mock,
    /// A tansu process (in-memory storage) started by the test: `FLOWWATCH_E2E_TANSU`.
    Tansu,
}

fn torture(backend: &str, broker: Broker) {
    let (name, seed_bits, kills_default) = match (broker, backend) {
        (Broker::Mock, "sled") => ("sled".to_string(), 1, 30),
        (Broker::Mock, _) => (backend.to_string(), 0, 30),
        (Broker::Tansu, _) => (format!("tansu-{backend}"), 2, 10),
    };
    let backend_label = backend;
    let backend = name.as_str();
    let seed = env_number("TORTURE_SEED", 20_261_202) ^ seed_bits;
    let kills = match broker {
        Broker::Mock => env_number("TORTURE_KILLS", kills_default),
        Broker::Tansu => env_number("TORTURE_TANSU_KILLS", kills_default),
    } as usize;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let started = Instant::now();

    let input_topics = kafka_support::input_topics();
    let tansu_dir = TempDir::new("torture-tansu");
    // The mock cluster's owner and the tansu process live as long as the test.
    let (brokers, _mock_owner, _tansu) = match broker {
        Broker::Mock => {
            let owner = mock_cluster_owner();
            let brokers = {
                let cluster = owner.client().mock_cluster().expect("the client runs a mock cluster");
                for topic in input_topics.iter().map(String::as_str).chain(LEGACY_TOPICS) {
                    cluster.create_topic(topic, INPUT_PARTITIONS, 1).expect("topic created");
                }
                cluster.create_topic(SIGNALS, SIGNAL_PARTITIONS, 1).expect("topic created");
                for topic in [ALERTS, DEAD_LETTER].into_iter().chain(ACTION_TOPICS) {
                    cluster.create_topic(topic, OTHER_OUTPUT_PARTITIONS, 1).expect("topic created");
                }
                cluster.bootstrap_servers()
            };
            (brokers, Some(owner), None)
        }
        Broker::Tansu => {
            let binary = std::env::var("FLOWWATCH_E2E_TANSU").unwrap_or_else(|_| {
                panic!(
                    "FLOWWATCH_E2E_TANSU is not set: run scripts/e2e-tansu.sh, which installs tansu and \
                     runs this test"
                )
            });
            let mut process = tansu::Broker::new(binary.into(), tansu_dir.0.clone(), "memory://tansu/");
            process.start();
            let brokers = process.address();
            let inputs: Vec<String> =
                input_topics.iter().cloned().chain(LEGACY_TOPICS.map(String::from)).collect();
            tansu::create_topics(&brokers, &inputs, INPUT_PARTITIONS);
            tansu::create_topics(&brokers, &[SIGNALS.to_string()], SIGNAL_PARTITIONS);
            let others: Vec<String> =
                [ALERTS, DEAD_LETTER].into_iter().chain(ACTION_TOPICS).map(String::from).collect();
            tansu::create_topics(&brokers, &others, OTHER_OUTPUT_PARTITIONS);
            (brokers, None, Some(process))
        }
    };

    let records = simulate();
    let produced = produce(&brokers, &records, matches!(broker, Broker::Tansu));
    let in_flows = produced
        .iter()
        .filter(|item| input_topics.contains(&item.topic))
        .count();

    let state = TempDir::new(&format!("torture-{backend}"));
    let group = format!("torture-{backend}");
    let state_dir = state.0.join("state");
    let mut env: Vec<(String, String)> = [
        ("FLOWWATCH__KAFKA__BROKERS", brokers.as_str()),
        ("FLOWWATCH__KAFKA__GROUP_ID", group.as_str()),
        ("FLOWWATCH__KAFKA__START_FROM", "earliest"),
        ("FLOWWATCH__FLOWS__DIR", root().join("flows").to_str().expect("UTF-8 path")),
        ("FLOWWATCH__STATE__DIR", state_dir.to_str().expect("UTF-8 path")),
        ("FLOWWATCH__STATE__BACKEND", backend_label),
        ("FLOWWATCH__STATE__CHECKPOINT_INTERVAL", CHECKPOINT_INTERVAL),
        ("FLOWWATCH__HTTP__LISTEN", "127.0.0.1:0"),
        // Live tracking equals a replay sorted by time only for records that are late by at
        // most the allowed lateness (SPEC 1.3): later ones are applied when they arrive, so
        // what they cause depends on how the partitions' reads interleave. The simulator's
        // `late_start` fault publishes first events up to 30 minutes late: allow for that, so
        // that the kill-free result is one fixed set, whatever the timing.
        ("FLOWWATCH__TRACKING__ALLOWED_LATENESS", ALLOWED_LATENESS),
        // Every breach of this simulated past runs its actions, as in the replay.
        ("FLOWWATCH__TRACKING__ACTION_HORIZON", "36500d"),
        // A killed member leaves the group only when its session expires: keep that short so
        // that the next life gets the partitions within a second or two.
        ("FLOWWATCH_KAFKA_PROPERTY_SESSION_TIMEOUT_MS", "1000"),
        ("FLOWWATCH_KAFKA_PROPERTY_HEARTBEAT_INTERVAL_MS", "100"),
        // librdkafka's consumer-group log (joins, syncs, heartbeats, assignments) goes to the
        // daemon's log file, so a slow join says why.
        ("FLOWWATCH_KAFKA_PROPERTY_DEBUG", "cgrp"),
    ]
    .iter()
    .map(|(name, value)| (name.to_string(), value.to_string()))
    .collect();
    if broker == Broker::Tansu {
        // tansu holds every fetch for the full `fetch.wait.max.ms` (500 ms by default), even
        // with data to return: as in the end-to-end test, don't wait.
        env.push(("FLOWWATCH_KAFKA_PROPERTY_FETCH_WAIT_MAX_MS".to_string(), "5".to_string()));
    }
    let config = config::load(None, &env.iter().cloned().collect()).expect("configuration is valid");
    let disorder = max_disorder(&produced);
    assert!(
        disorder < config.tracking.allowed_lateness,
        "a record is {disorder} ms late within its partition: raise ALLOWED_LATENESS"
    );
    let expected = expected(&produced, daemon::engine_config(&config));
    assert!(expected.signals.len() > 10_000, "a big simulation gives many signals");
    println!(
        "torture[{backend}]: {} records produced ({in_flows} in the flows' topics), {} instances, \
         {} signals, {} alerts, {} action records, {} dead letters expected; latest record {} s late in its partition; seed {seed}, {kills} kills",
        produced.len(),
        expected.instances,
        expected.signals.len(),
        expected.alerts.len(),
        expected.actions.len(),
        expected.dead_letters.len(),
        disorder / 1000,
    );

    // The daemon's log, kept after the test (for failures): target/tmp/torture-BACKEND.log.
    let log_path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("torture-{backend}.log"));
    let log = std::fs::File::create(&log_path).expect("log file");
    let mut early_kills = 0;
    let mut total_checkpoints = 0;
    let mut revocations = 0;
    let mut slow_joins = 0;
    for kill in 1..=kills {
        let life = start_daemon(&env, &log, kill);
        let born = Instant::now();
        // One kill in five lands while the daemon opens its store, restores and joins the
        // group; the others between a few ms and 2 s after it got its partitions (0.7 s in the
        // first half of the kills: a life catches up with the whole stream in 2-4 s, so short
        // lives make the kills land while it still has records to read and signals to send).
        // Against tansu (one record per batch, see `produce`) kills landed 0.3-3 s after the
        // assignment until session 11, when a life read and applied the whole stream in well
        // under a second (reader and sender threads): every kill came after the first life had
        // finished. Now tansu takes the mock's windows too.
        let early = rng.random_range(0..5) == 0;
        let Life {
            mut child,
            assigned,
            checkpoints,
            revoked,
            log_reader,
        } = life;
        let delay = if early {
            early_kills += 1;
            Duration::from_millis(rng.random_range(0..400))
        } else {
            let (shortest, longest) = if kill <= kills / 2 { (5, 700) } else { (5, 2_000) };
            let delay = Duration::from_millis(rng.random_range(shortest..longest));
            while !assigned.load(Ordering::Relaxed) && born.elapsed() < SLOW_JOIN {
                if let Some(status) = child.try_wait().expect("wait") {
                    let _ = log_reader.join();
                    panic!(
                        "life {kill}: flowwatch run exited on its own ({status}) after the previous kill -9:\n{}",
                        log_tail(&log_path, 30)
                    );
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            if assigned.load(Ordering::Relaxed) {
                born.elapsed() + delay
            } else {
                // Not a loss, but worth seeing: this life is killed while it still joins the
                // group (a fault like any other), and the group log says why it was slow.
                slow_joins += 1;
                println!(
                    "torture[{backend}]: life {kill}: no partition assigned within {} s, killed while joining; \
                     its log:\n{}",
                    SLOW_JOIN.as_secs(),
                    log_tail(&log_path, 40)
                );
                born.elapsed()
            }
        };
        while born.elapsed() < delay {
            if let Some(status) = child.try_wait().expect("wait") {
                let _ = log_reader.join();
                panic!(
                    "life {kill}: flowwatch run exited on its own ({status}):\n{}",
                    log_tail(&log_path, 30)
                );
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        // std's Child::kill sends SIGKILL.
        child.kill().expect("SIGKILL");
        child.wait().expect("reaped");
        let _ = log_reader.join();
        let life_checkpoints = checkpoints.load(Ordering::Relaxed);
        total_checkpoints += life_checkpoints;
        if revoked.load(Ordering::Relaxed) {
            revocations += 1;
        }
        println!(
            "torture[{backend}]: kill {kill:>2} after {:>5} ms ({}), {life_checkpoints} checkpoints in this life, \
             {} records committed",
            born.elapsed().as_millis(),
            if early { "while starting" } else { "while running" },
            committed(&brokers, &group, &input_topics),
        );
    }

    // A life or two may join slowly on a machine starved by other work; most must not.
    assert!(
        slow_joins * 4 <= kills,
        "{slow_joins} of {kills} lives got no partition within {} s",
        SLOW_JOIN.as_secs()
    );

    // The last life runs until every expected signal is published and 3 s pass without one.
    let kills_done = started.elapsed();
    let life = start_daemon(&env, &log, kills + 1);
    let mut signals = TopicReader::new(&brokers, &[SIGNALS], &format!("{backend}-signals"));
    let final_started = Instant::now();
    let mut seen: BTreeSet<String> = BTreeSet::new();
    let mut quiet_since = Instant::now();
    loop {
        let before = signals.records.len();
        signals.poll_for(Duration::from_millis(500));
        for record in &signals.records[before..] {
            seen.insert(signal_id(&record.payload));
        }
        if signals.records.len() > before {
            quiet_since = Instant::now();
        }
        let complete = expected.signals.keys().all(|id| seen.contains(id));
        if complete && quiet_since.elapsed() > Duration::from_secs(3) {
            break;
        }
        if final_started.elapsed() > Duration::from_secs(300) || (!complete && quiet_since.elapsed() > Duration::from_secs(60)) {
            let missing: Vec<&String> = expected
                .signals
                .iter()
                .filter(|(id, _)| !seen.contains(*id))
                .map(|(_, json)| json)
                .collect();
            dump(backend, &signals.records, &expected);
            signals.high_watermarks();
            let mut child = life.child;
            let _ = child.kill();
            let _ = child.wait();
            let _ = life.log_reader.join();
            panic!(
                "after the last restart {} of {} expected signals never came, among them:\n{}\nlog:\n{}",
                missing.len(),
                expected.signals.len(),
                missing.iter().take(6).map(|json| format!("  {json}")).collect::<Vec<_>>().join("\n"),
                log_tail(&log_path, 30)
            );
        }
    }
    let caught_up_in = final_started.elapsed();
    if life.revoked.load(Ordering::Relaxed) {
        revocations += 1;
    }
    stop(life);

    signals.drain(Duration::from_secs(120));
    dump(backend, &signals.records, &expected);
    let mut others = TopicReader::new(
        &brokers,
        &[&[ALERTS, DEAD_LETTER][..], &ACTION_TOPICS[..]].concat(),
        &format!("{backend}-others"),
    );
    others.drain(Duration::from_secs(120));

    // Signals: every copy of an id identical to the first; the distinct ones equal the replay.
    let (published_signals, resent) = distinct_by(
        "signals",
        signals
            .records
            .iter()
            .map(|record| (signal_id(&record.payload), String::from_utf8(record.payload.clone()).expect("UTF-8"))),
    );
    let published_ids: BTreeSet<String> = published_signals.keys().cloned().collect();
    let expected_ids: BTreeSet<String> = expected.signals.keys().cloned().collect();
    // Instances lost: started in the kill-free run, with no `started` signal published.
    let started_instances: BTreeSet<(String, String)> = published_signals
        .values()
        .filter_map(|json| {
            let value: serde_json::Value = serde_json::from_str(json).expect("a signal is JSON");
            let field = |name: &str| value["data"][name].as_str().unwrap_or_default().to_string();
            (value["type"] == "flowwatch.started").then(|| (field("flow"), field("key")))
        })
        .collect();
    let instances_lost = expected.instances.saturating_sub(started_instances.len());
    assert_same_sets("signal ids", &published_ids, &expected_ids);
    assert_eq!(instances_lost, 0, "instances lost");
    for (id, json) in &published_signals {
        assert_eq!(json, &expected.signals[id], "signal {id} differs from the kill-free run");
    }
    let (alerts, alerts_resent) = distinct_by(
        "alerts",
        others
            .records
            .iter()
            .filter(|record| record.topic == ALERTS)
            .map(|record| (signal_id(&record.payload), record.payload.clone())),
    );
    let alerts: BTreeSet<String> = alerts
        .into_values()
        .map(|payload| String::from_utf8(payload).expect("UTF-8"))
        .collect();
    assert_same_sets("alerts", &alerts, &expected.alerts);
    let (actions, actions_resent) = distinct_by(
        "action records",
        others
            .records
            .iter()
            .filter(|record| ACTION_TOPICS.contains(&record.topic.as_str()))
            .map(|record| {
                let id = record
                    .headers
                    .get("flowwatch_signal_id")
                    .cloned()
                    .expect("an action record carries flowwatch_signal_id");
                ((record.topic.clone(), id), record.payload.clone())
            }),
    );
    let actions: BTreeSet<(String, String, Vec<u8>)> = actions
        .into_iter()
        .map(|((topic, id), payload)| (topic, id, payload))
        .collect();
    assert_same_sets("action records", &actions, &expected.actions);
    let (dead_letters, dead_resent) = distinct_by(
        "dead letters",
        others
            .records
            .iter()
            .filter(|record| record.topic == DEAD_LETTER)
            .map(|record| {
                let header = |name: &str| record.headers.get(name).cloned().unwrap_or_default();
                (
                    (
                        header("flowwatch_source_topic"),
                        header("flowwatch_source_partition").parse::<i32>().expect("partition header"),
                        header("flowwatch_source_offset").parse::<i64>().expect("offset header"),
                        header("flowwatch_reason"),
                    ),
                    record.payload.clone(),
                )
            }),
    );
    let dead_letters: BTreeSet<(String, i32, i64, String)> = dead_letters.into_keys().collect();
    assert_same_sets("dead letters", &dead_letters, &expected.dead_letters);

    println!(
        "torture[{backend}]: PASSED: {kills} kills survived ({early_kills} while starting), {total_checkpoints} \
         checkpoints in killed lives, {revocations} lives saw a revocation, {slow_joins} joined slowly; {} records, {} instances \
         ({instances_lost} lost), \
         {} signals ({resent} re-sent copies, all identical), {} alerts (+{alerts_resent}), {} action records \
         (+{actions_resent}), {} dead letters (+{dead_resent}); kill phase {:.1} s, last life caught up in {:.1} s, \
         total {:.1} s",
        produced.len(),
        expected.instances,
        expected.signals.len(),
        expected.alerts.len(),
        expected.actions.len(),
        expected.dead_letters.len(),
        kills_done.as_secs_f64(),
        caught_up_in.as_secs_f64(),
        started.elapsed().as_secs_f64(),
    );
}

#[test]
fn kill_minus_nine_redb() {
    torture("redb", Broker::Mock);
}

#[test]
fn kill_minus_nine_sled() {
    torture("sled", Broker::Mock);
}

/// The same loop against a real broker process (tansu, started by the test), 10 kills by
/// default (`TORTURE_TANSU_KILLS`); run by `scripts/e2e-tansu.sh`.
#[test]
fn kill_minus_nine_tansu() {
    torture("redb", Broker::Tansu);
}
