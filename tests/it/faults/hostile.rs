//! Hostile records: about 10 000 records that are broken in every way a producer can break
//! them, interleaved with a normal choreography on the flows' own topics. Each unreadable
//! record is dead-lettered with its reason and source position and counted; records no flow
//! wants are only counted; records that are valid but extreme (far-past and far-future times,
//! huge keys, ~900 KB payloads) are handled as SPEC says; the normal stream's signals are those
//! of its replay; memory stays bounded and the daemon stays ready throughout. Payloads of
//! 10 MB cannot travel through a broker with default limits (`message.max.bytes` is about
//! 1 MB), so they are checked at the decoder and the engine directly.

use super::*;
use crate::kafka_support::*;
use flowwatch::clock::{Clock, SystemClock};
use flowwatch::daemon::{self, kafka::Decoded};
use flowwatch::engine::{Engine, EngineConfig, Input, Output};
use flowwatch::http::Health;
use flowwatch::metrics::Metrics;
use flowwatch::record::Record;
use flowwatch::time::parse_rfc3339;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders, OwnedMessage, Timestamp};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// One record to produce, as raw bytes.
#[derive(Clone)]
struct Raw {
    topic: String,
    key: Option<Vec<u8>>,
    payload: Option<Vec<u8>>,
    timestamp: i64,
    headers: Vec<(String, String)>,
}

/// Produces the records (round-robin over each topic's partitions) and returns where each went.
fn produce_raw(brokers: &str, records: &[Raw]) -> Vec<(i32, i64)> {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("enable.idempotence", "true")
        .create()
        .expect("producer");
    let mut next_partition = HashMap::<String, i32>::new();
    let mut next_offset = HashMap::<(String, i32), i64>::new();
    let mut positions = Vec::new();
    for record in records {
        let counter = next_partition.entry(record.topic.clone()).or_insert(0);
        let partition = *counter % PARTITIONS;
        *counter += 1;
        let offset = next_offset.entry((record.topic.clone(), partition)).or_insert(0);
        positions.push((partition, *offset));
        *offset += 1;
        let mut headers = OwnedHeaders::new();
        for (name, value) in &record.headers {
            headers = headers.insert(Header {
                key: name,
                value: Some(value.as_bytes()),
            });
        }
        let mut base: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(&record.topic)
            .partition(partition)
            .timestamp(record.timestamp)
            .headers(headers);
        if let Some(payload) = &record.payload {
            base = base.payload(payload.as_slice());
        }
        if let Some(key) = &record.key {
            base = base.key(key.as_slice());
        }
        let mut base = base;
        loop {
            match producer.send(base) {
                Ok(()) => break,
                Err((error, returned)) => {
                    assert!(
                        matches!(error, rdkafka::error::KafkaError::MessageProduction(rdkafka::types::RDKafkaErrorCode::QueueFull)),
                        "send: {error}"
                    );
                    producer.poll(Duration::from_millis(50));
                    base = returned;
                }
            }
        }
        producer.poll(Duration::ZERO);
    }
    producer.flush(Duration::from_secs(30)).expect("flush");
    // Every record arrived and the broker kept all of them (the mock drops the oldest beyond
    // about 5 MiB per partition).
    for ((topic, partition), count) in &next_offset {
        let (low, high) = producer
            .client()
            .fetch_watermarks(topic, *partition, Duration::from_secs(10))
            .expect("watermarks");
        assert_eq!((low, high), (0, *count), "{topic}/{partition} holds what was produced");
    }
    positions
}

/// What a hostile record is meant to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// Dead-lettered (with the reasons the engine or the decoder gives).
    Unreadable,
    /// No flow wants it: counted only.
    Unwanted,
    /// Valid, with a key of its own: handled per SPEC (signals under its own subject).
    Extreme,
}

fn json(value: serde_json::Value) -> Option<Vec<u8>> {
    Some(serde_json::to_vec(&value).unwrap())
}

/// The `index`-th hostile record; `near` is a record time inside the normal stream.
fn hostile(index: usize, near: i64) -> (Raw, Kind) {
    use serde_json::json as j;
    let at = "2026-01-05T09:00:00.000Z";
    let raw = |topic: &str, payload: Option<Vec<u8>>| Raw {
        topic: topic.to_string(),
        key: Some(format!("h-{index}").into_bytes()),
        payload,
        timestamp: near,
        headers: Vec::new(),
    };
    let id = format!("hx-{index}");
    let variant = index / 12;
    match index % 12 {
        0 => {
            let text = format!("{{\"type\": \"OrderPlaced\", \"orderId\": \"h-{index}\"");
            (raw("orders", Some(text.into_bytes())), Kind::Unreadable)
        }
        1 => {
            let mut bytes = b"{\"type\":\"OrderPlaced\",\"orderId\":\"h-".to_vec();
            bytes.extend([0xff, 0xfe, 0xc3, 0x28]);
            bytes.extend(b"\"}");
            (raw("orders", Some(bytes)), Kind::Unreadable)
        }
        2 => {
            let depth = 200 + variant % 3000;
            let text = format!(
                "{{\"type\":\"RegistrationRequested\",\"customerId\":\"h-{index}\",\"x\":{}{}}}",
                "[".repeat(depth),
                "]".repeat(depth)
            );
            (raw("customer-events", Some(text.into_bytes())), Kind::Unreadable)
        }
        3 => (raw("checks", Some(Vec::new())), Kind::Unreadable),
        4 => {
            let key = [j!([1, 2]), j!({"a": 1}), j!(true), j!(null)][variant % 4].clone();
            let payload = j!({"type": "OrderPlaced", "eventId": id, "orderId": key, "occurredAt": at});
            (raw("orders", json(payload)), Kind::Unreadable)
        }
        5 => {
            let payload = j!({"type": "StockReservation", "eventId": id, "outcome": "reserved", "order": {"id": ""}, "occurredAt": at});
            (raw("inventory", json(payload)), Kind::Unreadable)
        }
        6 => {
            let time = [j!("yesterday"), j!("2026-13-45T99:00:00Z"), j!(true), j!({"t": 1}), j!("")][variant % 5].clone();
            let payload = j!({"type": "OrderPlaced", "eventId": id, "orderId": format!("hbad-{index}"), "occurredAt": time});
            (raw("orders", json(payload)), Kind::Unreadable)
        }
        7 => {
            let payload = j!({"type": format!("Nonsense{variant}"), "orderId": "ord-3000", "occurredAt": at});
            (raw("orders", json(payload)), Kind::Unwanted)
        }
        8 => (raw("payments", None), Kind::Unwanted),
        9 => {
            let text = ["42", "\"a string\"", "[]", "null", "{}"][variant % 5];
            (raw("shipping", Some(text.as_bytes().to_vec())), Kind::Unwanted)
        }
        10 => {
            // Kafka keys: huge, empty or not UTF-8; Kafka timestamps far in the future or 0.
            let mut record = raw("risk", json(j!({"type": 5, "orderId": "ord-3000"})));
            // (Few of the huge ones: the mock broker keeps only about 5 MiB per partition.)
            record.key = Some(match variant % 40 {
                0 => vec![b'k'; 65_536],
                1..=20 => Vec::new(),
                _ => vec![0xff, 0x00, 0xfe],
            });
            record.timestamp = if variant.is_multiple_of(2) {
                parse_rfc3339("2100-01-01T00:00:00Z").unwrap()
            } else {
                0
            };
            (record, Kind::Unwanted)
        }
        _ => {
            let payload = j!({"type": "CreditCheckCompleted", "approved": "maybe", "customerId": ["h"], "at": at});
            (raw("checks", json(payload)), Kind::Unwanted)
        }
    }
}

/// The valid but extreme records: far-future and far-past starts, huge business keys, and
/// ~900 KB payloads (one valid, one not JSON). Each with its subject (if it starts one).
fn extremes(near: i64) -> Vec<(Raw, Kind, Option<String>)> {
    use serde_json::json as j;
    let start = |key: String, at: &str, pad: usize| Raw {
        topic: "orders".to_string(),
        key: Some(b"x".to_vec()),
        payload: json(j!({"type": "OrderPlaced", "eventId": format!("hx-{}", &key[..key.len().min(12)]), "orderId": key, "occurredAt": at, "total": 1.0, "customer": {"id": "hc"}, "pad": "p".repeat(pad)})),
        timestamp: near,
        headers: Vec::new(),
    };
    let mut out = Vec::new();
    for index in 0..5 {
        let key = format!("hfuture-{index}");
        out.push((start(key.clone(), "2100-01-01T00:00:00Z", 0), Kind::Extreme, Some(key)));
        let key = format!("hpast-{index}");
        out.push((start(key.clone(), "1971-01-01T00:00:00Z", 0), Kind::Extreme, Some(key)));
    }
    let huge = format!("hhuge-{}", "k".repeat(65_536));
    out.push((start(huge.clone(), "2026-01-05T09:00:00Z", 0), Kind::Extreme, Some(huge)));
    let key = "hbig-0".to_string();
    out.push((start(key.clone(), "2026-01-05T09:00:00Z", 900_000), Kind::Extreme, Some(key)));
    let mut not_json = vec![b'{'; 900_000];
    not_json[0] = b'[';
    out.push((
        Raw {
            topic: "checks".to_string(),
            key: None,
            payload: Some(not_json),
            timestamp: near,
            headers: Vec::new(),
        },
        Kind::Unreadable,
        None,
    ));
    out
}

/// A consumed message as the daemon's decoder makes it (owned here: the daemon's borrows from
/// the message).
fn decode(raw: &Raw, partition: i32, offset: i64) -> Decoded<'static> {
    let mut headers = OwnedHeaders::new();
    for (name, value) in &raw.headers {
        headers = headers.insert(Header {
            key: name,
            value: Some(value.as_bytes()),
        });
    }
    let message = OwnedMessage::new(
        raw.payload.clone(),
        raw.key.clone(),
        raw.topic.clone(),
        Timestamp::CreateTime(raw.timestamp),
        partition,
        offset,
        Some(headers),
    );
    match daemon::kafka::decode(&message, 0) {
        Decoded::Record(record) => Decoded::Record(record.into_owned()),
        Decoded::Undecodable { detail, raw } => Decoded::Undecodable { detail, raw },
    }
}

/// Dead letters read back: (reason, source topic, partition, offset).
fn dead_letters(brokers: &str) -> Vec<(String, String, i32, i64)> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "hostile-dlq-reader")
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    consumer.subscribe(&["flowwatch.dead-letter"]).expect("subscribe");
    let started = std::time::Instant::now();
    let mut last = std::time::Instant::now();
    let mut out = Vec::new();
    while (out.is_empty() || last.elapsed() < Duration::from_secs(3)) && started.elapsed() < Duration::from_secs(60) {
        if let Some(Ok(message)) = consumer.poll(Duration::from_millis(100)) {
            let mut found = BTreeMap::new();
            if let Some(headers) = message.headers() {
                for header in headers.iter() {
                    let value = String::from_utf8_lossy(header.value.unwrap_or_default()).into_owned();
                    found.insert(header.key.to_string(), value);
                }
            }
            for name in ["flowwatch_reason", "flowwatch_detail", "flowwatch_source_topic"] {
                assert!(found.get(name).is_some_and(|value| !value.is_empty()), "dead letter without {name}: {found:?}");
            }
            out.push((
                found["flowwatch_reason"].clone(),
                found["flowwatch_source_topic"].clone(),
                found["flowwatch_source_partition"].parse().unwrap(),
                found["flowwatch_source_offset"].parse().unwrap(),
            ));
            last = std::time::Instant::now();
        }
    }
    out
}

/// Resident set size of this process, bytes.
fn rss() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    statm.split_whitespace().nth(1).and_then(|pages| pages.parse::<u64>().ok()).unwrap_or(0) * 4096
}

/// The sum of a Prometheus counter family's samples by one label.
fn by_label(metrics: &str, family: &str, label: &str) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for line in metrics.lines().filter(|line| line.starts_with(&format!("{family}{{"))) {
        let Some(value) = line.rsplit(' ').next().and_then(|value| value.parse::<f64>().ok()) else {
            continue;
        };
        let needle = format!("{label}=\"");
        if let Some(rest) = line.split(&needle).nth(1) {
            *out.entry(rest.split('"').next().unwrap_or_default().to_string()).or_default() += value;
        }
    }
    out
}

#[test]
fn hostile_records_are_dead_lettered_or_counted_and_change_nothing_else() {
    let normal = example_records("checkout-day.jsonl");
    let hostile_per_normal = 10_000 / normal.len() + 1;
    let mut stream: Vec<(Raw, Option<Kind>, Option<String>)> = Vec::new();
    let mut index = 0;
    for record in &normal {
        stream.push((
            Raw {
                topic: record.topic.clone(),
                key: record.key.clone().map(String::into_bytes),
                payload: json(record.value.to_value()),
                timestamp: record.timestamp,
                headers: record.headers.clone(),
            },
            None,
            None,
        ));
        for _ in 0..hostile_per_normal {
            let (raw, kind) = hostile(index, record.timestamp);
            stream.push((raw, Some(kind), None));
            index += 1;
        }
    }
    let near = normal[normal.len() / 2].timestamp;
    for (offset, (raw, kind, subject)) in extremes(near).into_iter().enumerate() {
        stream.insert(offset * 700 + 350, (raw, Some(kind), subject));
    }
    let hostile_count = stream.iter().filter(|(_, kind, _)| kind.is_some()).count();
    assert!(hostile_count >= 10_000, "{hostile_count} hostile records");

    let cluster = mock_cluster(&input_topics());
    let brokers = cluster.bootstrap_servers();
    let raws: Vec<Raw> = stream.iter().map(|(raw, ..)| raw.clone()).collect();
    let positions = produce_raw(&brokers, &raws);

    // The expectations: the normal records where they landed, the dead letters the decoder and
    // the engine give for each hostile record (an oracle engine fed only those).
    let mut normal_records: Vec<Record> = Vec::new();
    let mut expected_dead = Vec::new();
    let mut oracle = Engine::new(shipped_flows(), EngineConfig::default());
    let mut unwanted = 0;
    let mut extreme_subjects = HashSet::new();
    for ((raw, kind, subject), &(partition, offset)) in stream.iter().zip(&positions) {
        let decoded = decode(raw, partition, offset);
        match (kind, decoded) {
            (None, Decoded::Record(record)) => normal_records.push(record),
            (None, Decoded::Undecodable { detail, .. }) => panic!("a normal record does not decode: {detail}"),
            (Some(kind), Decoded::Undecodable { .. }) => {
                assert_eq!(*kind, Kind::Unreadable, "{:?}", raw.payload.as_ref().map(|p| String::from_utf8_lossy(&p[..p.len().min(80)]).into_owned()));
                expected_dead.push(("invalid_json".to_string(), raw.topic.clone(), partition, offset));
            }
            (Some(kind), Decoded::Record(record)) => {
                if let Some(subject) = subject {
                    extreme_subjects.insert(subject.clone());
                    continue;
                }
                let mut outputs = Vec::new();
                oracle.handle(Input::RecordReceived(&record), &mut outputs);
                let dead: Vec<String> = outputs
                    .iter()
                    .filter_map(|output| match output {
                        Output::DeadLetter(rejection) => Some(rejection.reason.to_string()),
                        _ => None,
                    })
                    .collect();
                assert!(
                    outputs.iter().all(|output| matches!(output, Output::DeadLetter(_))),
                    "a hostile record caused a signal: {:?}",
                    record.value.to_string().chars().take(120).collect::<String>()
                );
                match kind {
                    Kind::Unreadable => assert!(!dead.is_empty(), "not dead-lettered: {}", record.value),
                    _ => {
                        assert!(dead.is_empty(), "dead-lettered: {}", record.value);
                        unwanted += 1;
                    }
                }
                for reason in dead {
                    expected_dead.push((reason, raw.topic.clone(), partition, offset));
                }
            }
        }
    }
    expected_dead.sort();
    let reasons: BTreeMap<&str, usize> = expected_dead.iter().fold(BTreeMap::new(), |mut counts, (reason, ..)| {
        *counts.entry(reason.as_str()).or_default() += 1;
        counts
    });
    for reason in ["invalid_json", "missing_key", "bad_time"] {
        assert!(reasons.get(reason).copied().unwrap_or(0) > 300, "{reasons:?}");
    }

    if std::env::var("FAULTS_LOG").is_ok() {
        flowwatch::logging::init(false, "info");
    }
    let state = TempDir::new("hostile");
    // No lateness: records held for the wall-clock time (from the future) are applied at once.
    let config = test_config(&brokers, &state.0, "hostile", &[("FLOWWATCH__TRACKING__ALLOWED_LATENESS", "0")]);
    let expected = sorted(replay_sorted(&normal_records, daemon::engine_config(&config)));
    let rss_before = rss();
    let metrics = Metrics::new();
    let cancel = CancellationToken::new();
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let running = daemon::start_with(config, shipped_flows(), clock, cancel.clone(), metrics.clone(), Health::new())
        .expect("daemon starts");
    let status = running.status.clone();
    assert!(wait_for(Duration::from_secs(30), || status.ready()), "ready");
    // Ready throughout: sampled every 20 ms until the whole stream is read and published.
    let unready = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (status, unready, cancel) = (status.clone(), unready.clone(), cancel.clone());
        std::thread::spawn(move || {
            while !cancel.is_cancelled() {
                if !status.ready() {
                    unready.store(true, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    // (The example day also has records on a topic no flow reads: never consumed.)
    let subscribed = input_topics();
    let total = stream.iter().filter(|(raw, ..)| subscribed.contains(&raw.topic)).count() as u64;
    let read_everything = wait_for(Duration::from_secs(60), || status.records_read.load(Ordering::Relaxed) >= total);
    if !read_everything {
        let mut where_: BTreeMap<(String, i32), i64> = BTreeMap::new();
        for ((raw, ..), (partition, offset)) in stream.iter().zip(&positions) {
            let entry = where_.entry((raw.topic.clone(), *partition)).or_default();
            *entry = (*entry).max(offset + 1);
        }
        panic!(
            "read {} of {total}; committed {:?}; produced {:?}",
            status.records_read.load(Ordering::Relaxed),
            committed(&brokers, "hostile"),
            where_
        );
    }
    assert!(
        wait_for(Duration::from_secs(60), || status.records_read.load(Ordering::Relaxed) >= total
            && status.outbox_len.load(Ordering::Relaxed) == 0),
        "every record read and every output delivered: read {} of {total}, outbox {}",
        status.records_read.load(Ordering::Relaxed),
        status.outbox_len.load(Ordering::Relaxed)
    );
    assert!(settled(&status, total as usize), "the daemon settles");
    let published = distinct_signals(read_all(&brokers, "flowwatch.signals", Duration::from_secs(3), Duration::from_secs(60)));
    let rss_after = rss();
    let dead = dead_letters(&brokers);
    let rendered = metrics.render();
    cancel.cancel();
    running.join().expect("clean shutdown");
    watcher.join().unwrap();
    assert!(!unready.load(Ordering::Relaxed), "the daemon stayed ready");

    // Dead letters: exactly one per reason the decoder and the engine give, with the source.
    let mut dead = dead;
    dead.sort();
    assert_eq!(dead.len(), expected_dead.len(), "dead letters");
    assert_eq!(dead, expected_dead);
    let counted = by_label(&rendered, "flowwatch_dead_letters_total", "reason");
    for (reason, count) in &reasons {
        assert_eq!(counted.get(*reason).copied().unwrap_or(0.0), *count as f64, "metric for {reason}: {counted:?}");
    }
    let results = by_label(&rendered, "flowwatch_records_total", "result");
    assert_eq!(results.values().sum::<f64>(), total as f64, "every record counted: {results:?}");
    assert!(results.get("unmatched").copied().unwrap_or(0.0) >= unwanted as f64, "{results:?} vs {unwanted} unwanted");

    // The normal stream's signals are its replay's; the extreme records signal under their own
    // subjects only, far-future ones at the wall-clock time with a clock_skew deviation.
    let subject = |line: &str| -> String {
        let value: serde_json::Value = serde_json::from_str(line).unwrap();
        value["subject"].as_str().unwrap_or_default().to_string()
    };
    let (extreme, ordinary): (Vec<String>, Vec<String>) =
        published.into_iter().partition(|line| extreme_subjects.contains(&subject(line)));
    assert_same_signals(&ordinary, &expected);
    for index in 0..5 {
        let key = format!("hfuture-{index}");
        let mine: Vec<&String> = extreme.iter().filter(|line| subject(line) == key).collect();
        assert!(mine.iter().any(|line| line.contains("\"type\":\"flowwatch.started\"") && !line.contains("\"time\":\"2100")), "{key}: {mine:?}");
        assert!(mine.iter().any(|line| line.contains("\"reason\":\"clock_skew\"")), "{key}: {mine:?}");
        let key = format!("hpast-{index}");
        assert!(extreme.iter().any(|line| subject(line) == key && line.contains("\"type\":\"flowwatch.started\"") && line.contains("\"time\":\"1971-01-01")), "{key}");
    }
    assert!(extreme.iter().any(|line| subject(line) == "hbig-0"), "the 900 KB record was tracked");
    assert!(extreme.iter().any(|line| subject(line).starts_with("hhuge-")), "the 64 KiB key was tracked");

    let growth = rss_after.saturating_sub(rss_before);
    eprintln!("hostile: {total} records ({hostile_count} hostile), {} dead letters, RSS growth {} MiB", dead.len(), growth >> 20);
    assert!(growth < 256 << 20, "RSS grew by {} MiB", growth >> 20);
}

/// 10 MB payloads, which no broker with default limits accepts, at the decoder and the engine:
/// a valid one is decoded and tracked, a broken one is dead-lettered as invalid JSON, and
/// nesting beyond serde_json's recursion limit is an error, not a stack overflow.
#[test]
fn ten_megabyte_payloads_decode_or_dead_letter_without_harm() {
    use serde_json::json as j;
    let big = Raw {
        topic: "orders".to_string(),
        key: Some(b"o".to_vec()),
        payload: json(j!({"type": "OrderPlaced", "eventId": "e-big", "orderId": "o-big", "occurredAt": "2026-01-05T09:00:00Z", "total": 1.0, "customer": {"id": "c"}, "pad": "p".repeat(10 << 20)})),
        timestamp: 0,
        headers: Vec::new(),
    };
    let Decoded::Record(record) = decode(&big, 0, 0) else {
        panic!("a 10 MB JSON payload decodes");
    };
    let mut engine = Engine::new(shipped_flows(), EngineConfig::default());
    let mut outputs = Vec::new();
    engine.handle(Input::RecordReceived(&record), &mut outputs);
    assert!(outputs.iter().any(|output| matches!(output, Output::Emit(signal) if signal.subject.as_ref() == "o-big")));
    let mut broken = big.clone();
    broken.payload.as_mut().unwrap().truncate(10 << 20);
    assert!(matches!(decode(&broken, 0, 1), Decoded::Undecodable { .. }), "a truncated 10 MB payload is dead-lettered");
    let mut deep = big;
    deep.payload = Some(format!("{}{}", "[".repeat(10 << 20), "]".repeat(10 << 20)).into_bytes());
    match decode(&deep, 0, 2) {
        Decoded::Undecodable { detail, .. } => assert!(detail.contains("recursion limit"), "{detail}"),
        Decoded::Record(_) => panic!("20 MB of nesting decoded"),
    }
}
