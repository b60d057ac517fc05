//! The worker's output side: the engine's outputs (signals, action records, dead letters)
//! turned into outbox entries with their keys and headers, and the outbox handed to the
//! producer, its delivery reports collected.

use super::{Run, Worker, RETRY_AFTER};
use crate::clock::{Clock, SystemClock};
use crate::daemon::align::TopicPartition;
use crate::daemon::kafka;
use crate::daemon::outbox::OutRecord;
use crate::engine::{Output, Signal};
use crate::record::Record;
use std::sync::atomic::Ordering;
use std::sync::Arc;

impl Worker {
    /// Turns the engine's outputs into outbox entries.
    pub(super) fn effects(&mut self, run: &mut Run, record: Option<&Record>) {
        let outputs = std::mem::take(&mut run.outputs);
        self.metrics.observe_outputs(&outputs);
        for output in &outputs {
            match output {
                Output::Emit(signal) => self.emit(signal),
                Output::Publish(action) => {
                    self.outbox.push(OutRecord {
                        topic: action.topic.clone(),
                        key: action.key.clone(),
                        payload: serde_json::to_vec(&action.value).unwrap_or_default(),
                        headers: vec![("flowwatch_signal_id".to_string(), action.signal_id.clone())],
                        timestamp: None,
                    });
                }
                Output::DeadLetter(rejection) => {
                    let raw = record
                        .map(|record| serde_json::to_vec(&record.value).unwrap_or_default())
                        .unwrap_or_default();
                    let partition = (Arc::from(rejection.topic.as_str()), rejection.partition);
                    self.dead_letter(&partition, rejection.offset, rejection.reason, &rejection.detail, raw);
                }
            }
        }
        run.outputs = outputs;
        run.outputs.clear();
    }

    pub(super) fn emit(&mut self, signal: &Signal) {
        let mut payload = Vec::with_capacity(256);
        signal.write_json(&mut payload);
        let mut headers = vec![(
            "content-type".to_string(),
            "application/cloudevents+json; charset=UTF-8".to_string(),
        )];
        let alerts_topic = self
            .config
            .outputs
            .alerts_topic
            .as_ref()
            .filter(|_| signal.alert);
        if let Some(topic) = &self.config.outputs.signals_topic {
            // Copied only when the alerts topic takes the same record too.
            let (payload, headers) = match alerts_topic {
                Some(_) => (payload.clone(), headers.clone()),
                None => (std::mem::take(&mut payload), std::mem::take(&mut headers)),
            };
            self.outbox.push(OutRecord {
                topic: topic.clone(),
                key: Some(signal.subject.to_string()),
                payload,
                headers,
                timestamp: Some(signal.time),
            });
        }
        if let Some(topic) = alerts_topic {
            self.outbox.push(OutRecord {
                topic: topic.clone(),
                key: Some(signal.subject.to_string()),
                payload,
                headers,
                timestamp: Some(signal.time),
            });
        }
    }

    pub(super) fn dead_letter(&mut self, partition: &TopicPartition, offset: i64, reason: &str, detail: &str, raw: Vec<u8>) {
        self.status.dead_letters.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(topic = %partition.0, partition = partition.1, offset, reason, detail, "Record dead-lettered.");
        let Some(topic) = &self.config.outputs.dead_letter_topic else {
            return;
        };
        self.outbox.push(OutRecord {
            topic: topic.clone(),
            key: Some(format!("{}/{}/{}", partition.0, partition.1, offset)),
            payload: raw,
            headers: vec![
                ("flowwatch_reason".to_string(), reason.to_string()),
                ("flowwatch_detail".to_string(), detail.to_string()),
                ("flowwatch_source_topic".to_string(), partition.0.to_string()),
                ("flowwatch_source_partition".to_string(), partition.1.to_string()),
                ("flowwatch_source_offset".to_string(), offset.to_string()),
            ],
            timestamp: None,
        });
    }

    /// Hands waiting outbox entries to the producer and collects delivery reports.
    pub(super) fn publish(&mut self, real: &SystemClock) {
        while let Ok((seq, outcome)) = self.deliveries.try_recv() {
            match outcome {
                Ok(()) => {
                    if let Some(topic) = self.outbox.topic(seq) {
                        self.metrics.count_published(topic, 1);
                    }
                    self.outbox.acknowledged(seq)
                }
                Err(error) => {
                    if let Some(topic) = self.outbox.topic(seq) {
                        self.metrics.count_publish_error(topic);
                    }
                    self.status.publish_errors.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(%error, "Delivery failed; the record stays in the outbox and is sent again.");
                    self.outbox.failed(seq, real.now() + RETRY_AFTER);
                }
            }
        }
        let now = real.now();
        loop {
            let (seq, result) = match self.outbox.next_to_send(now) {
                None => break,
                Some((seq, record)) => (seq, kafka::send(&self.producer, seq, record)),
            };
            match result {
                Ok(()) => {}
                Err(true) => {
                    self.outbox.not_taken(seq);
                    break;
                }
                Err(false) => self.outbox.failed(seq, now + RETRY_AFTER),
            }
        }
        self.status
            .outbox_len
            .store(self.outbox.len() as u64, Ordering::Relaxed);
    }
}
