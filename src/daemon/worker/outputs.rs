//! The worker's output side: the engine's outputs (signals, action records, dead letters)
//! turned into outbox entries with their keys and headers, and the outbox handed to the
//! producer, its delivery reports collected.

use super::{OutTopics, Run, Worker, RETRY_AFTER};
use crate::clock::{Clock, SystemClock};
use crate::daemon::align::TopicPartition;
use crate::daemon::outbox::OutRecord;
use crate::engine::{Output, Signal};
use crate::record::Record;
use std::borrow::Cow;
use std::sync::atomic::Ordering;
use std::sync::Arc;

impl Worker {
    /// Turns the engine's outputs into outbox entries. `deferred`: they came from
    /// [`crate::tracker::Tracker::handle_deferred`], so their signals then move into the
    /// tracker's ring of recent signals (no copy); otherwise they are dropped.
    pub(super) fn effects(&mut self, run: &mut Run, record: Option<&Record>, deferred: bool) {
        let mut outputs = std::mem::take(&mut run.outputs);
        self.metrics.observe_outputs(&outputs);
        for output in &outputs {
            match output {
                Output::Emit(signal) => self.emit(&mut run.out_topics, signal),
                Output::Publish(action) => {
                    self.outbox.push(OutRecord {
                        topic: Arc::from(action.topic.as_str()),
                        key: action.key.clone(),
                        payload: serde_json::to_vec(&action.value).unwrap_or_default(),
                        headers: vec![(
                            Cow::Borrowed("flowwatch_signal_id"),
                            Cow::Owned(action.signal_id.to_string()),
                        )],
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
        if deferred {
            self.tracker.keep(&mut outputs);
        } else {
            outputs.clear();
        }
        run.outputs = outputs;
    }

    pub(super) fn emit(&mut self, topics: &mut OutTopics, signal: &Signal) {
        topics.scratch.clear();
        signal.write_json(&mut topics.scratch);
        let mut payload = topics.scratch.as_slice().to_vec();
        let mut headers = vec![(
            Cow::Borrowed("content-type"),
            Cow::Borrowed("application/cloudevents+json; charset=UTF-8"),
        )];
        let alerts_topic = topics.alerts.as_ref().filter(|_| signal.alert);
        if let Some(topic) = &topics.signals {
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
            topic: Arc::from(topic.as_str()),
            key: Some(format!("{}/{}/{}", partition.0, partition.1, offset)),
            payload: raw,
            headers: vec![
                (Cow::Borrowed("flowwatch_reason"), Cow::Owned(reason.to_string())),
                (Cow::Borrowed("flowwatch_detail"), Cow::Owned(detail.to_string())),
                (Cow::Borrowed("flowwatch_source_topic"), Cow::Owned(partition.0.to_string())),
                (Cow::Borrowed("flowwatch_source_partition"), Cow::Owned(partition.1.to_string())),
                (Cow::Borrowed("flowwatch_source_offset"), Cow::Owned(offset.to_string())),
            ],
            timestamp: None,
        });
    }

    /// Hands waiting outbox entries to the producer and collects delivery reports. Fails only
    /// when the sender thread is gone (it panicked): nothing could be published any more.
    pub(super) fn publish(&mut self, run: &Run, real: &SystemClock) -> anyhow::Result<()> {
        // Acknowledgements counted by topic, then added to the metrics once per topic.
        let mut published: Vec<(Arc<str>, u64)> = Vec::new();
        while let Ok((seq, outcome)) = self.deliveries.try_recv() {
            match outcome {
                Ok(()) => {
                    let Some(record) = self.outbox.acknowledged(seq) else {
                        continue;
                    };
                    match published.iter_mut().find(|(topic, _)| *topic == record.topic) {
                        Some((_, count)) => *count += 1,
                        None => published.push((record.topic.clone(), 1)),
                    }
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
        for (topic, count) in &published {
            self.metrics.count_published(topic, *count);
        }
        let now = real.now();
        while let Some((seq, record)) = self.outbox.next_to_send(now) {
            if !run.sender.send(seq, record) {
                // The entry stays in flight, and in the outbox: the next start sends it again.
                anyhow::bail!("the producer's sender thread stopped unexpectedly");
            }
        }
        self.status
            .outbox_len
            .store(self.outbox.len() as u64, Ordering::Relaxed);
        Ok(())
    }
}
