//! The simulator against a real broker (`flowwatch simulate`): creates the topics through the
//! admin API where the broker supports it, then produces what the simulator emits as the
//! [`Clock`] moves, with an idempotent producer (acks=all), CreateTime = the simulated event
//! time, keyed by business key. Retry commands the tracker publishes are read back and handed
//! to the simulated services, which sometimes answer them.
//!
//! This is a shell: every decision is the simulator's, every time comes from the clock.

use super::{SimRecord, SimStats, Simulator, COMMAND_TOPICS, TOPICS};
use crate::clock::Clock;
use crate::time::Millis;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, Message, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer};
use rdkafka::ClientConfig;
use std::future::Future;
use std::io::Write;
use std::time::Duration;

/// How often the loop wakes to produce what became due (wall-clock).
const TICK: Duration = Duration::from_millis(50);

/// How often a progress line is written, in ticks (five seconds).
const PROGRESS_TICKS: u32 = 100;

/// Where and how to produce.
#[derive(Clone, Debug)]
pub struct SimulateOptions {
    /// Bootstrap servers, `HOST:PORT[,HOST:PORT...]`.
    pub brokers: String,
    /// Partitions of the topics this command creates.
    pub partitions: i32,
    /// Stop after this much simulated time (everything due by then is produced);
    /// `None`: run until the shutdown future completes.
    pub duration: Option<Millis>,
    /// Read the retry commands on [`COMMAND_TOPICS`] and let the services react.
    pub react: bool,
}

/// What a run produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Summary {
    /// Records acknowledged by the broker.
    pub produced: u64,
    /// Simulated time at the start and at the end.
    pub start: Millis,
    pub end: Millis,
    /// The simulator's counts.
    pub stats: SimStats,
}

/// Why producing failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot create a Kafka client for {brokers}: {source}")]
    Client { brokers: String, source: KafkaError },
    #[error("the broker did not accept a record for topic {topic}: {source}")]
    Delivery { topic: String, source: KafkaError },
    #[error("the producer was closed before delivering a record")]
    Canceled,
    #[error("records were still undelivered after 30 s: {0}")]
    Flush(KafkaError),
    #[error("cannot write progress: {0}")]
    Progress(#[from] std::io::Error),
}

/// Creates every topic the simulator writes and the command topics it reads, with
/// `partitions` partitions and replication factor 1. Topics that exist already are fine. A
/// broker without the admin API (librdkafka's mock cluster) or a refusal is reported on
/// `diagnostics` and not fatal: brokers that auto-create topics still work.
pub async fn create_topics(
    brokers: &str,
    partitions: i32,
    diagnostics: &mut dyn Write,
) -> Result<(), Error> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .map_err(|source| Error::Client {
            brokers: brokers.to_string(),
            source,
        })?;
    let names: Vec<&str> = TOPICS
        .iter()
        .chain(COMMAND_TOPICS.iter())
        .copied()
        .collect();
    let topics: Vec<NewTopic<'_>> = names
        .iter()
        .map(|name| NewTopic::new(name, partitions, TopicReplication::Fixed(1)))
        .collect();
    let options = AdminOptions::new()
        .operation_timeout(Some(Duration::from_secs(5)))
        .request_timeout(Some(Duration::from_secs(5)));
    match admin.create_topics(&topics, &options).await {
        Ok(results) => {
            for result in results {
                match result {
                    Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                    Err((topic, code)) => writeln!(
                        diagnostics,
                        "warning: could not create topic {topic}: {code}; producing anyway"
                    )?,
                }
            }
        }
        Err(error) => writeln!(
            diagnostics,
            "warning: could not create topics through the admin API ({error}); producing anyway"
        )?,
    }
    Ok(())
}

/// Produces the simulation to `options.brokers` as `clock` moves, until `options.duration`
/// of simulated time has passed or `shutdown` completes. Writes a progress line to
/// `diagnostics` every few seconds. A simulator that has not started yet starts at the
/// clock's current time.
pub async fn run(
    simulator: &mut Simulator,
    clock: &dyn Clock,
    options: &SimulateOptions,
    shutdown: impl Future<Output = ()>,
    diagnostics: &mut dyn Write,
) -> Result<Summary, Error> {
    let client_error = |source| Error::Client {
        brokers: options.brokers.clone(),
        source,
    };
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &options.brokers)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "5")
        .set("message.timeout.ms", "30000")
        .create()
        .map_err(client_error)?;
    let commands = if options.react {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &options.brokers)
            .set("group.id", format!("flowwatch-simulate-{}", simulator.tag))
            .set("auto.offset.reset", "latest")
            .set("enable.auto.commit", "true")
            .create()
            .map_err(client_error)?;
        consumer.subscribe(&COMMAND_TOPICS).map_err(client_error)?;
        Some(consumer)
    } else {
        None
    };
    // A simulator not yet anchored starts now; one made with `starting_at` keeps its start.
    let start = match simulator.now() {
        Some(start) => start,
        None => {
            let start = clock.now();
            simulator.advance(start, &mut Vec::new());
            start
        }
    };
    let end = options.duration.map(|duration| start + duration);
    let mut produced = 0u64;
    let mut batch = Vec::new();
    let mut ticks = 0u32;
    tokio::pin!(shutdown);
    loop {
        let now = clock.now();
        let until = end.map_or(now, |end| now.min(end));
        if let Some(consumer) = &commands {
            react(simulator, consumer, until);
        }
        simulator.advance(until, &mut batch);
        produced += produce(&producer, &mut batch).await?;
        if end.is_some_and(|end| until >= end) {
            break;
        }
        ticks += 1;
        if ticks.is_multiple_of(PROGRESS_TICKS) {
            progress(diagnostics, simulator, until, produced)?;
        }
        tokio::select! {
            () = &mut shutdown => break,
            () = tokio::time::sleep(TICK) => {}
        }
    }
    producer
        .flush(Duration::from_secs(30))
        .map_err(Error::Flush)?;
    let end = simulator.now().unwrap_or(start);
    progress(diagnostics, simulator, end, produced)?;
    Ok(Summary {
        produced,
        start,
        end,
        stats: simulator.stats().clone(),
    })
}

/// Hands the retry commands read so far to the simulated services.
fn react(simulator: &mut Simulator, consumer: &BaseConsumer, now: Millis) {
    // Errors here (a command topic not created yet, a broker reconnecting) are transient:
    // the services simply hear nothing this tick.
    while let Some(Ok(message)) = consumer.poll(Duration::ZERO) {
        let Some(value) = message
            .payload()
            .and_then(|payload| serde_json::from_slice::<serde_json::Value>(payload).ok())
        else {
            continue;
        };
        let key = message.key().and_then(|key| std::str::from_utf8(key).ok());
        simulator.on_action_record(message.topic(), key, &value, now);
    }
}

/// Produces a batch and waits until the broker acknowledged all of it.
async fn produce(producer: &FutureProducer, batch: &mut Vec<SimRecord>) -> Result<u64, Error> {
    let mut pending: Vec<(String, DeliveryFuture)> = Vec::with_capacity(batch.len());
    let mut produced = 0;
    for record in batch.drain(..) {
        let mut headers = OwnedHeaders::new_with_capacity(record.headers.len());
        for (name, value) in &record.headers {
            headers = headers.insert(Header {
                key: name,
                value: Some(value.as_bytes()),
            });
        }
        let mut future_record = FutureRecord::to(&record.topic)
            .payload(&record.payload)
            .timestamp(record.timestamp)
            .headers(headers);
        if let Some(key) = &record.key {
            future_record = future_record.key(key);
        }
        loop {
            match producer.send_result(future_record) {
                Ok(delivery) => {
                    pending.push((record.topic.clone(), delivery));
                    break;
                }
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), returned)) => {
                    // The local queue is full: wait for what is in flight, then retry.
                    produced += settle(&mut pending).await?;
                    future_record = returned;
                }
                Err((source, _)) => {
                    return Err(Error::Delivery {
                        topic: record.topic.clone(),
                        source,
                    })
                }
            }
        }
    }
    produced += settle(&mut pending).await?;
    Ok(produced)
}

/// Awaits every pending delivery.
async fn settle(pending: &mut Vec<(String, DeliveryFuture)>) -> Result<u64, Error> {
    let mut delivered = 0;
    for (topic, delivery) in pending.drain(..) {
        match delivery.await {
            Ok(Ok(_)) => delivered += 1,
            Ok(Err((source, _))) => return Err(Error::Delivery { topic, source }),
            Err(_) => return Err(Error::Canceled),
        }
    }
    Ok(delivered)
}

fn progress(
    diagnostics: &mut dyn Write,
    simulator: &Simulator,
    now: Millis,
    produced: u64,
) -> Result<(), Error> {
    let stats = simulator.stats();
    let faults: Vec<String> = super::FaultKind::ALL
        .iter()
        .filter(|kind| stats.fault(**kind) > 0)
        .map(|kind| format!("{} {}", stats.fault(*kind), kind.as_str()))
        .collect();
    writeln!(
        diagnostics,
        "simulated {}: {produced} records, {} orders, {} onboardings, {} in flight; faults: {}; retries answered: {}",
        crate::time::format_rfc3339(now),
        stats.orders,
        stats.onboardings,
        simulator.in_flight(),
        if faults.is_empty() { "none".to_string() } else { faults.join(", ") },
        stats.recovered,
    )?;
    Ok(())
}
