//! Reading the daemon's output topics back and comparing them with the kill-free result.

use super::*;

/// A record read from an output topic.
pub(crate) struct Published {
    pub(crate) topic: String,
    pub(crate) payload: Vec<u8>,
    pub(crate) headers: BTreeMap<String, String>,
}

/// Reads every partition of some topics from the beginning.
pub(crate) struct TopicReader {
    pub(crate) consumer: BaseConsumer,
    pub(crate) topics: Vec<String>,
    /// Next offset per partition.
    pub(crate) next: HashMap<(String, i32), i64>,
    pub(crate) records: Vec<Published>,
}

impl TopicReader {
    pub(crate) fn new(brokers: &str, topics: &[&str], label: &str) -> TopicReader {
        let group = format!("torture-reader-{label}-{}", std::process::id());
        let (consumer, partitions) = kafka_support::assign_from_beginning(brokers, &group, 20, topics);
        TopicReader {
            consumer,
            topics: topics.iter().map(|topic| topic.to_string()).collect(),
            next: partitions.into_iter().map(|place| (place, 0)).collect(),
            records: Vec::new(),
        }
    }

    /// Reads what comes within `limit`; returns how many records came.
    pub(crate) fn poll_for(&mut self, limit: Duration) -> usize {
        let started = Instant::now();
        let mut count = 0;
        while started.elapsed() < limit {
            let Some(result) = self.consumer.poll(Duration::from_millis(50)) else {
                continue;
            };
            let message = result.expect("consume");
            let headers = message
                .headers()
                .map(|headers| {
                    headers
                        .iter()
                        .map(|header| {
                            let value = header.value.map(String::from_utf8_lossy).unwrap_or_default();
                            (header.key.to_string(), value.into_owned())
                        })
                        .collect()
                })
                .unwrap_or_default();
            self.next
                .insert((message.topic().to_string(), message.partition()), message.offset() + 1);
            self.records.push(Published {
                topic: message.topic().to_string(),
                payload: message.payload().unwrap_or_default().to_vec(),
                headers,
            });
            count += 1;
        }
        count
    }

    /// The high watermark of every partition, after checking that the mock cluster dropped
    /// nothing (it keeps 5 MiB per partition: its low watermarks must still be 0).
    pub(crate) fn high_watermarks(&self) -> HashMap<(String, i32), i64> {
        let mut high = HashMap::new();
        for (topic, partition) in self.next.keys() {
            let (low, watermark) = self
                .consumer
                .fetch_watermarks(topic, *partition, Duration::from_secs(10))
                .expect("watermarks");
            assert_eq!(
                low, 0,
                "the mock cluster dropped records of {topic}/{partition} (it keeps 5 MiB per \
                 partition): give the topic more partitions"
            );
            high.insert((topic.clone(), *partition), watermark);
        }
        high
    }

    /// Reads on until every partition is read up to its high watermark.
    pub(crate) fn drain(&mut self, limit: Duration) {
        let started = Instant::now();
        let high = self.high_watermarks();
        while high
            .iter()
            .any(|(place, watermark)| self.next.get(place).copied().unwrap_or(0) < *watermark)
        {
            assert!(
                started.elapsed() < limit,
                "reading {:?} to the watermarks took over {limit:?}",
                self.topics
            );
            self.poll_for(Duration::from_millis(200));
        }
    }
}

/// Groups published copies by a key, requiring all copies of a key to be identical; returns
/// the distinct values and how many copies were extra.
pub(crate) fn distinct_by<K: Ord + Clone + std::fmt::Debug, V: PartialEq + Clone + std::fmt::Debug>(
    what: &str,
    items: impl IntoIterator<Item = (K, V)>,
) -> (BTreeMap<K, V>, usize) {
    let mut map: BTreeMap<K, V> = BTreeMap::new();
    let mut extra = 0;
    for (key, value) in items {
        match map.get(&key) {
            Some(first) => {
                assert_eq!(
                    first, &value,
                    "two different {what} were published under the same key {key:?}"
                );
                extra += 1;
            }
            None => {
                map.insert(key, value);
            }
        }
    }
    (map, extra)
}

#[track_caller]
pub(crate) fn assert_same_sets<T: Ord + std::fmt::Debug>(what: &str, published: &BTreeSet<T>, expected: &BTreeSet<T>) {
    let missing: Vec<&T> = expected.difference(published).take(5).collect();
    let extra: Vec<&T> = published.difference(expected).take(5).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{what}: published {}, expected {}; missing {} (first: {missing:#?}); extra {} (first: {extra:#?})",
        published.len(),
        expected.len(),
        expected.difference(published).count(),
        published.difference(expected).count(),
    );
}

pub(crate) fn signal_id(payload: &[u8]) -> String {
    let value: serde_json::Value = serde_json::from_slice(payload).expect("a signal is JSON");
    value["id"].as_str().expect("a signal has an id").to_string()
}

/// Writes the published and the expected signals as JSON lines to
/// `target/tmp/torture-BACKEND.{published,expected}.jsonl`, for the analysis of a failure.
pub(crate) fn dump(backend: &str, published: &[Published], expected: &Expected) {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
    let mut text = Vec::new();
    for record in published {
        text.extend_from_slice(&record.payload);
        text.push(b'\n');
    }
    let _ = std::fs::write(dir.join(format!("torture-{backend}.published.jsonl")), text);
    let lines: Vec<&str> = expected.signals.values().map(String::as_str).collect();
    let _ = std::fs::write(dir.join(format!("torture-{backend}.expected.jsonl")), lines.join("\n") + "\n");
}
