//! The Kafka side of the daemon: the consumer (with the rebalance hook that resumes from the
//! store's positions), the idempotent producer whose deliveries are reported back, and the
//! conversion of a Kafka message into the engine's [`Record`]. The worker's reader thread
//! polls the consumer built here; the worker pauses, resumes and commits through it.

use super::align::TopicPartition;
use super::outbox::OutRecord;
use crate::config::{Config, StartFrom};
use crate::json::Json;
use crate::record::Record;
use crate::time::Millis;
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, RebalanceProtocol};
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::types::RDKafkaRespErr;
use rdkafka::ClientContext;
use std::collections::HashMap;
use std::ffi::CString;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A change of assignment, seen inside `poll` and passed on by the reader thread to the worker
/// in order with the records polled around it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AssignmentChange {
    Assigned(Vec<TopicPartition>),
    /// Taken away by a rebalance: another member of the group took them.
    Revoked(Vec<TopicPartition>),
    /// Lost with the group membership itself (the session timed out, say while every broker
    /// was unreachable): the consumer rejoins and normally gets them back.
    Lost(Vec<TopicPartition>),
}

/// Shared between the worker, its reader thread and the consumer's callbacks.
#[derive(Default)]
pub struct Shared {
    /// Where each partition resumes, from the store (absent: `kafka.start_from`).
    pub resume: Mutex<HashMap<TopicPartition, i64>>,
    pub changes: Mutex<Vec<AssignmentChange>>,
    /// The consumer's last error from librdkafka (an authentication failure, an unreachable
    /// broker), secrets cut, until partitions are assigned: `/readyz` tells why there are none.
    pub client_error: Mutex<Option<String>>,
}

/// The consumer's context: logs through tracing, keeps its last error for readiness, and
/// applies stored positions on assignment.
pub struct ConsumerHooks {
    pub shared: Arc<Shared>,
    /// The configuration's secret values, cut from the error kept.
    secrets: Vec<String>,
}

impl ClientContext for ConsumerHooks {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        log_librdkafka(level, facility, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        tracing::warn!(%error, reason, "Kafka client error (librdkafka retries by itself).");
        // "All brokers are down" follows each failure of the last broker connection: it does
        // not replace the cause kept before it (an authentication error, say).
        let consequence = error.rdkafka_error_code() == Some(rdkafka::types::RDKafkaErrorCode::AllBrokersDown);
        let text = if reason.is_empty() { error.to_string() } else { reason.to_string() };
        if let Ok(mut last) = self.shared.client_error.lock() {
            if !(consequence && last.is_some()) {
                *last = Some(cut_secrets(&self.secrets, text));
            }
        }
    }
}

impl ConsumerContext for ConsumerHooks {
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        let partitions: Vec<TopicPartition> = tpl
            .elements()
            .iter()
            .map(|element| (Arc::from(element.topic()), element.partition()))
            .collect();
        let cooperative = matches!(consumer.rebalance_protocol(), RebalanceProtocol::Cooperative);
        let result = match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                let resume = self.shared.resume.lock().map(|map| map.clone()).unwrap_or_default();
                for (topic, partition) in &partitions {
                    if let Some(&offset) = resume.get(&(topic.clone(), *partition)) {
                        let _ = tpl.set_partition_offset(topic, *partition, Offset::Offset(offset));
                    }
                }
                self.push(AssignmentChange::Assigned(partitions));
                if cooperative {
                    consumer.incremental_assign(tpl)
                } else {
                    consumer.assign(tpl)
                }
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                self.push(if consumer.assignment_lost() {
                    AssignmentChange::Lost(partitions)
                } else {
                    AssignmentChange::Revoked(partitions)
                });
                if cooperative {
                    consumer.incremental_unassign(tpl)
                } else {
                    consumer.unassign()
                }
            }
            other => {
                tracing::error!(error = ?other, "Rebalance failed; the consumer rejoins the group.");
                if cooperative {
                    Ok(())
                } else {
                    consumer.unassign()
                }
            }
        };
        if let Err(error) = result {
            tracing::error!(%error, "Could not apply the new assignment.");
        }
    }
}

impl ConsumerHooks {
    fn push(&self, change: AssignmentChange) {
        if let Ok(mut changes) = self.shared.changes.lock() {
            changes.push(change);
        }
    }
}

/// librdkafka logs warnings and worse, unless the `debug` property asks for its debug
/// contexts (`cgrp`, `fetch`, `all`...): those are logged at debug level, target `librdkafka`.
fn log_level(config: &Config) -> RDKafkaLogLevel {
    if config.kafka.properties.contains_key("debug") {
        RDKafkaLogLevel::Debug
    } else {
        RDKafkaLogLevel::Warning
    }
}

fn log_librdkafka(level: RDKafkaLogLevel, facility: &str, message: &str) {
    match level {
        RDKafkaLogLevel::Emerg
        | RDKafkaLogLevel::Alert
        | RDKafkaLogLevel::Critical
        | RDKafkaLogLevel::Error => tracing::error!(target: "librdkafka", facility, "{message}"),
        RDKafkaLogLevel::Warning => tracing::warn!(target: "librdkafka", facility, "{message}"),
        RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
            tracing::info!(target: "librdkafka", facility, "{message}")
        }
        RDKafkaLogLevel::Debug => tracing::debug!(target: "librdkafka", facility, "{message}"),
    }
}

/// The consumer.
pub type FlowConsumer = BaseConsumer<ConsumerHooks>;

/// Subscribes to the topics; the assignment is applied in the following polls (the rebalance
/// hook runs inside `poll`).
pub fn subscribe(consumer: &FlowConsumer, topics: &[String]) -> KafkaResult<()> {
    consumer.subscribe(&topics.iter().map(String::as_str).collect::<Vec<_>>())
}

/// Every partition of `topics` as the cluster's metadata lists them now (one request per
/// topic, each waiting at most `timeout`); a topic that does not exist has none. `Err` when
/// the cluster did not answer.
pub fn topic_partitions(consumer: &FlowConsumer, topics: &[String], timeout: Duration) -> KafkaResult<Vec<TopicPartition>> {
    let mut partitions = Vec::new();
    for topic in topics {
        let metadata = consumer.fetch_metadata(Some(topic), timeout)?;
        for found in metadata.topics() {
            if found.error().is_some() {
                continue;
            }
            let name: Arc<str> = Arc::from(found.name());
            partitions.extend(found.partitions().iter().map(|partition| (name.clone(), partition.id())));
        }
    }
    Ok(partitions)
}

/// Builds the consumer from [`consumer_config`].
pub fn consumer(config: &Config, shared: Arc<Shared>) -> KafkaResult<FlowConsumer> {
    let secrets = secret_values(config).into_iter().map(str::to_string).collect();
    consumer_config(config)
        .create_with_context(ConsumerHooks { shared, secrets })
        .map_err(|error| redacted(config, error))
}

/// Creates both clients as the daemon does, and drops them: librdkafka checks every property
/// when a client is created (and loads the TLS files), so a setting `run` would refuse at start
/// is refused here too, secrets cut. For `flowwatch config check`.
pub fn check_clients(config: &Config) -> KafkaResult<()> {
    drop(consumer(config, Arc::new(Shared::default()))?);
    drop(producer(config)?);
    Ok(())
}

/// The values of the secret properties (passwords, client secrets).
fn secret_values(config: &Config) -> Vec<&str> {
    config
        .kafka
        .properties
        .iter()
        .filter(|(name, value)| crate::config::is_secret(name) && !value.is_empty())
        .map(|(_, value)| value.as_str())
        .collect()
}

/// `text` with every secret value replaced by `<redacted>`.
fn cut_secrets<S: AsRef<str>>(secrets: &[S], text: String) -> String {
    secrets
        .iter()
        .fold(text, |text, secret| text.replace(secret.as_ref(), "<redacted>"))
}

/// librdkafka's refusal of a property quotes its value (`Invalid value "..."`, or the value
/// after the name when a property is not supported by this build): secret values are cut.
fn redacted(config: &Config, error: KafkaError) -> KafkaError {
    let secrets = secret_values(config);
    let cut = |text: String| cut_secrets(&secrets, text);
    match error {
        KafkaError::ClientConfig(code, description, name, value) => {
            let value = if crate::config::is_secret(&name) {
                "<redacted>".to_string()
            } else {
                cut(value)
            };
            KafkaError::ClientConfig(code, cut(description), name, value)
        }
        KafkaError::ClientCreation(message) => KafkaError::ClientCreation(cut(message)),
        other => other,
    }
}

/// The consumer's librdkafka properties: defaults, then the pass-through properties (TLS,
/// SASL, timeouts...), then the ones the daemon owns.
pub fn consumer_config(config: &Config) -> ClientConfig {
    let mut client = ClientConfig::new();
    client.set("fetch.queue.backoff.ms", "10");
    client.set("fetch.wait.max.ms", "100");
    for (name, value) in &config.kafka.properties {
        client.set(name, value);
    }
    let reset = match config.kafka.start_from {
        StartFrom::Latest => "latest",
        StartFrom::Earliest | StartFrom::Time(_) => "earliest",
    };
    client
        .set("bootstrap.servers", &config.kafka.brokers)
        .set("group.id", &config.kafka.group_id)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", reset)
        .set("enable.partition.eof", "false")
        .set("partition.assignment.strategy", "cooperative-sticky")
        .set("isolation.level", "read_committed");
    client.set_log_level(log_level(config));
    client
}

/// A delivery report: the outbox sequence number and the outcome.
pub type Delivery = (u64, Result<(), String>);

/// The producer's context: delivery reports go back to the worker over a channel.
pub struct ProducerHooks {
    deliveries: mpsc::Sender<Delivery>,
}

impl ClientContext for ProducerHooks {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        log_librdkafka(level, facility, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        tracing::warn!(%error, reason, "Kafka producer error (librdkafka retries by itself).");
    }
}

impl ProducerContext for ProducerHooks {
    /// The outbox sequence number (a `u64`; `usize` is as wide, see below), carried in the
    /// message's opaque pointer itself: no allocation per message.
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, seq: usize) {
        let outcome = match result {
            Ok(_) => Ok(()),
            Err((error, _)) => Err(error.to_string()),
        };
        let _ = self.deliveries.send((seq as u64, outcome));
    }
}

// Outbox sequence numbers travel as a message's opaque `usize`.
const _: () = assert!(usize::BITS >= u64::BITS, "flowwatch needs a 64-bit target");

/// The producer.
pub type OutboxProducer = ThreadedProducer<ProducerHooks>;

/// The producer with the two ends of its delivery reports.
pub struct DaemonProducer {
    pub producer: OutboxProducer,
    /// Where delivery reports are sent (also used to report a record the producer refused).
    pub reports: mpsc::Sender<Delivery>,
    pub deliveries: mpsc::Receiver<Delivery>,
}

/// Builds the idempotent producer (acks=all) and the channel its delivery reports arrive on.
pub fn producer(config: &Config) -> KafkaResult<DaemonProducer> {
    let (sender, receiver) = mpsc::channel();
    let producer = producer_config(config)
        .create_with_context(ProducerHooks {
            deliveries: sender.clone(),
        })
        .map_err(|error| redacted(config, error))?;
    Ok(DaemonProducer {
        producer,
        reports: sender,
        deliveries: receiver,
    })
}

/// The producer's librdkafka properties: defaults, the pass-through properties, then
/// idempotence and acks=all, which the daemon owns.
pub fn producer_config(config: &Config) -> ClientConfig {
    let mut client = ClientConfig::new();
    client.set("linger.ms", "5");
    for (name, value) in &config.kafka.properties {
        client.set(name, value);
    }
    client
        .set("bootstrap.servers", &config.kafka.brokers)
        .set("enable.idempotence", "true")
        .set("acks", "all");
    client.set_log_level(log_level(config));
    client
}

/// Hands one outbox entry to the producer. `Err(true)` when its queue is full (try later).
pub fn send(producer: &OutboxProducer, seq: u64, record: &OutRecord) -> Result<(), bool> {
    let mut headers = OwnedHeaders::new_with_capacity(record.headers.len());
    for (name, value) in &record.headers {
        headers = headers.insert(Header {
            key: name.as_ref(),
            value: Some(value.as_bytes()),
        });
    }
    let mut base: BaseRecord<'_, str, [u8], usize> =
        BaseRecord::with_opaque_to(&record.topic, seq as usize)
            .payload(record.payload.as_slice())
            .headers(headers);
    if let Some(key) = &record.key {
        base = base.key(key.as_str());
    }
    if let Some(timestamp) = record.timestamp {
        base = base.timestamp(timestamp);
    }
    match producer.send(base) {
        Ok(()) => Ok(()),
        Err((KafkaError::MessageProduction(rdkafka::types::RDKafkaErrorCode::QueueFull), _)) => {
            Err(true)
        }
        Err((error, _)) => {
            tracing::warn!(%error, topic = %record.topic, "Could not hand a record to the producer.");
            Err(false)
        }
    }
}

/// Waits for in-flight deliveries, at most `timeout`.
pub fn flush(producer: &OutboxProducer, timeout: Duration) {
    let _ = producer.flush(timeout);
}

/// What a consumed message became.
pub enum Decoded<'m> {
    /// The record, borrowing its payload's strings from the message.
    Record(Record<'m>),
    /// The payload is not JSON: dead-letter it with this reason.
    Undecodable { detail: String, raw: Vec<u8> },
}

/// Converts a message (borrowed from the consumer's buffer) into the engine's record, whose
/// value borrows from the message: the worker matches it and keeps only what the engine needs.
pub fn decode<M: Message>(message: &M, wall: Millis) -> Decoded<'_> {
    let timestamp = message.timestamp().to_millis().unwrap_or(wall);
    let key = message
        .key()
        .and_then(|bytes| std::str::from_utf8(bytes).ok())
        .map(str::to_string);
    let headers = message
        .headers()
        .map(|headers| {
            headers
                .iter()
                .filter_map(|header| {
                    let value = std::str::from_utf8(header.value?).ok()?;
                    Some((header.key.to_string(), value.to_string()))
                })
                .collect()
        })
        .unwrap_or_default();
    let value = match message.payload() {
        None => Json::Null,
        Some(bytes) => match Json::parse_slice(bytes) {
            Ok(value) => value,
            Err(error) => {
                return Decoded::Undecodable {
                    detail: format!("payload is not JSON: {error}"),
                    raw: bytes.to_vec(),
                }
            }
        },
    };
    Decoded::Record(Record {
        topic: message.topic().to_string(),
        partition: message.partition(),
        offset: message.offset(),
        key,
        timestamp,
        headers,
        value,
    })
}

/// The high watermark librdkafka last saw for a partition (cached, no network call), if any.
pub fn cached_high_watermark(consumer: &FlowConsumer, partition: &TopicPartition) -> Option<i64> {
    let topic = CString::new(partition.0.as_bytes()).ok()?;
    let mut low: i64 = -1;
    let mut high: i64 = -1;
    // SAFETY: the client pointer is valid for the consumer's lifetime, `topic` is a valid C
    // string for the call, and the two out-pointers point to live locals.
    let error = unsafe {
        rdkafka::bindings::rd_kafka_get_watermark_offsets(
            consumer.client().native_ptr(),
            topic.as_ptr(),
            partition.1,
            &mut low,
            &mut high,
        )
    };
    (error == RDKafkaRespErr::RD_KAFKA_RESP_ERR_NO_ERROR && high >= 0).then_some(high)
}

/// A list of partitions for pause, resume and commit calls.
pub fn partition_list(partitions: &[TopicPartition]) -> TopicPartitionList {
    let mut list = TopicPartitionList::new();
    for (topic, partition) in partitions {
        list.add_partition(topic, *partition);
    }
    list
}

/// Commits the checkpointed positions to Kafka (asynchronously) so that lag exporters see
/// progress; the store stays the source of truth.
pub fn commit(consumer: &FlowConsumer, positions: &[(TopicPartition, i64)]) {
    let mut list = TopicPartitionList::new();
    for ((topic, partition), offset) in positions {
        let _ = list.add_partition_offset(topic, *partition, Offset::Offset(*offset));
    }
    if list.count() > 0 {
        if let Err(error) = consumer.commit(&list, rdkafka::consumer::CommitMode::Async) {
            tracing::debug!(%error, "Offset commit to Kafka failed; the next checkpoint retries.");
        }
    }
}

/// Members the group has right now (a second daemon must not join: see the README's limits).
pub fn group_members(consumer: &FlowConsumer, group: &str) -> KafkaResult<usize> {
    let list = consumer.fetch_group_list(Some(group), Duration::from_secs(10))?;
    Ok(list
        .groups()
        .iter()
        .filter(|found| found.name() == group)
        .map(|found| found.members().len())
        .sum())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rdkafka::types::RDKafkaErrorCode;

    #[test]
    fn the_consumers_last_error_is_kept_for_readiness_with_secrets_cut_and_its_cause_kept() {
        let hooks = ConsumerHooks {
            shared: Arc::new(Shared::default()),
            secrets: vec!["hunter2".to_string()],
        };
        let kept = || hooks.shared.client_error.lock().unwrap().clone();
        hooks.error(KafkaError::Global(RDKafkaErrorCode::AllBrokersDown), "1/1 brokers are down");
        assert_eq!(kept().as_deref(), Some("1/1 brokers are down"), "kept when nothing else is");
        hooks.error(
            KafkaError::Global(RDKafkaErrorCode::Authentication),
            "SASL authentication error: user flowwatch, password hunter2",
        );
        assert_eq!(kept().as_deref(), Some("SASL authentication error: user flowwatch, password <redacted>"));
        hooks.error(KafkaError::Global(RDKafkaErrorCode::AllBrokersDown), "1/1 brokers are down");
        assert_eq!(
            kept().as_deref(),
            Some("SASL authentication error: user flowwatch, password <redacted>"),
            "the consequence does not replace its cause"
        );
        hooks.error(KafkaError::Global(RDKafkaErrorCode::BrokerTransportFailure), "");
        assert_eq!(kept(), Some(KafkaError::Global(RDKafkaErrorCode::BrokerTransportFailure).to_string()));
    }
}
