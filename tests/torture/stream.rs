//! The input of the torture test: the seeded simulation, producing it to the broker (with
//! where each record landed), and the kill-free result it must give (a replay sorted by time).

use super::*;

/// The simulated records, in the order the services publish them.
pub(crate) fn simulate() -> Vec<SimRecord> {
    let start = flowwatch::time::parse_rfc3339(SIM_START).expect("start time");
    let config = SimConfig {
        seed: SIM_SEED,
        rate_per_sec: SIM_RATE_PER_SEC,
        faults: FaultMix::default(),
    };
    let mut simulator = Simulator::starting_at(config, start);
    let mut records = Vec::new();
    simulator.advance(start + SIM_HOURS * 3_600_000, &mut records);
    simulator.stop_starting();
    simulator.advance(start + (SIM_HOURS + 24) * 3_600_000, &mut records);
    records
}

/// A produced record: where the broker put it, and what the daemon will make of it.
pub(crate) struct Produced {
    pub(crate) topic: String,
    pub(crate) partition: i32,
    pub(crate) offset: i64,
    /// `None` when the payload is not JSON (the daemon dead-letters it as `invalid_json`).
    pub(crate) record: Option<Record<'static>>,
}

/// Produces the records round-robin over each topic's partitions (so each partition keeps
/// the publish order), with their event times as CreateTime. `one_per_batch` puts every record
/// in a record batch of its own: tansu 0.6's in-memory storage answers a fetch from an offset
/// inside a batch from the next batch on, skipping the rest of that batch (tansu-storage
/// `dynostore.rs`, `split_off`), which loses records whenever a consumer resumes mid-batch, as
/// the daemon does after every kill (docs/testing.md).
pub(crate) fn produce(brokers: &str, records: &[SimRecord], one_per_batch: bool) -> Vec<Produced> {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("enable.idempotence", "true")
        .set("linger.ms", "20")
        .set("batch.num.messages", if one_per_batch { "1" } else { "10000" })
        .create()
        .expect("producer");
    let mut next_partition: HashMap<&str, i32> = HashMap::new();
    let mut next_offset: HashMap<(&str, i32), i64> = HashMap::new();
    let mut produced = Vec::with_capacity(records.len());
    for record in records {
        let counter = next_partition.entry(&record.topic).or_insert(0);
        let partition = *counter % INPUT_PARTITIONS;
        *counter += 1;
        let offset_counter = next_offset.entry((&record.topic, partition)).or_insert(0);
        let offset = *offset_counter;
        *offset_counter += 1;
        let mut headers = OwnedHeaders::new_with_capacity(record.headers.len());
        for (name, value) in &record.headers {
            headers = headers.insert(Header {
                key: name,
                value: Some(value.as_bytes()),
            });
        }
        let mut base: BaseRecord<'_, str, [u8]> = BaseRecord::to(&record.topic)
            .partition(partition)
            .payload(record.payload.as_slice())
            .timestamp(record.timestamp)
            .headers(headers);
        if let Some(key) = &record.key {
            base = base.key(key.as_str());
        }
        let mut pending = Some(base);
        while let Some(base) = pending.take() {
            match producer.send(base) {
                Ok(()) => {}
                Err((error, base)) => {
                    assert!(
                        matches!(
                            error,
                            rdkafka::error::KafkaError::MessageProduction(
                                rdkafka::types::RDKafkaErrorCode::QueueFull
                            )
                        ),
                        "send: {error}"
                    );
                    producer.poll(Duration::from_millis(50));
                    pending = Some(base);
                }
            }
        }
        producer.poll(Duration::ZERO);
        produced.push(Produced {
            topic: record.topic.clone(),
            partition,
            offset,
            record: record.to_record(partition, offset).ok().map(Record::into_owned),
        });
    }
    producer.flush(Duration::from_secs(60)).expect("flush");
    produced
}

/// The largest disorder within a partition: how far a record's time lies behind the latest
/// time read before it from the same partition (the `late_start` fault publishes an
/// instance's first event 20-30 minutes after its time).
pub(crate) fn max_disorder(produced: &[Produced]) -> i64 {
    let engine = Engine::new(shipped_flows(), EngineConfig::default());
    let mut latest: HashMap<(&str, i32), i64> = HashMap::new();
    let mut disorder = 0;
    for item in produced {
        let Some(record) = &item.record else { continue };
        let time = engine.record_time(record);
        let latest = latest.entry((&item.topic, item.partition)).or_insert(time);
        disorder = disorder.max(*latest - time);
        *latest = (*latest).max(time);
    }
    disorder
}

/// What a kill-free run publishes: the outputs of a replay of the records sorted by time.
#[derive(Default)]
pub(crate) struct Expected {
    /// Signal id → the signal's JSON.
    pub(crate) signals: BTreeMap<String, String>,
    /// Alerts (signals that ran `alert`), as JSON.
    pub(crate) alerts: BTreeSet<String>,
    /// Action records: (topic, signal id, payload).
    pub(crate) actions: BTreeSet<(String, String, Vec<u8>)>,
    /// Dead letters: (source topic, partition, offset, reason).
    pub(crate) dead_letters: BTreeSet<(String, i32, i64, String)>,
    /// Instances started (distinct flow and key).
    pub(crate) instances: usize,
}

pub(crate) fn expected(produced: &[Produced], engine_config: EngineConfig) -> Expected {
    let mut engine = Engine::new(shipped_flows(), engine_config);
    let topics: BTreeSet<String> = engine.topics().iter().cloned().collect();
    let mut expected = Expected::default();
    let mut sorted: Vec<(i64, &Record)> = Vec::new();
    for item in produced {
        if !topics.contains(&item.topic) {
            continue;
        }
        match &item.record {
            Some(record) => sorted.push((engine.record_time(record), record)),
            None => {
                expected.dead_letters.insert((
                    item.topic.clone(),
                    item.partition,
                    item.offset,
                    "invalid_json".to_string(),
                ));
            }
        }
    }
    sorted.sort_by(|a, b| {
        (a.0, &a.1.topic, a.1.partition, a.1.offset).cmp(&(b.0, &b.1.topic, b.1.partition, b.1.offset))
    });
    let mut outputs = Vec::new();
    for (_, record) in sorted {
        engine.handle(Input::RecordReceived(record), &mut outputs);
    }
    engine.handle(Input::ClockAdvanced(i64::MAX / 4), &mut outputs);
    let mut instances = BTreeSet::new();
    for output in outputs {
        match output {
            Output::Emit(signal) => {
                let json = signal.to_json();
                if signal.kind == flowwatch::engine::signal::SignalKind::Started {
                    instances.insert((signal.data.flow.clone(), signal.data.key.clone()));
                }
                if signal.alert {
                    expected.alerts.insert(json.clone());
                }
                let previous = expected.signals.insert(signal.id.to_string(), json);
                assert!(previous.is_none(), "the replay gives id {} twice", signal.id);
            }
            Output::Publish(action) => {
                expected.actions.insert((
                    action.topic.clone(),
                    action.signal_id.to_string(),
                    serde_json::to_vec(&action.value).expect("action payload"),
                ));
            }
            Output::DeadLetter(rejection) => {
                expected.dead_letters.insert((
                    rejection.topic,
                    rejection.partition,
                    rejection.offset,
                    rejection.reason.to_string(),
                ));
            }
        }
    }
    expected.instances = instances.len();
    expected
}
