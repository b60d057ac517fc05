//! The reader: a thread of its own that polls the consumer, decodes each record and matches it
//! against the flows (the engine's own correlation, as replay's decoding stage runs it), and
//! hands the worker batches in the order it read them, with the assignment changes that the
//! consumer's rebalance callback reported in between, at the point where they happened.
//!
//! Decoding and matching are most of what a record costs before the engine applies it; on this
//! thread they overlap with the engine's work on the worker's. The reader decides nothing: the
//! worker still skips what was applied before a restart, orders records, applies them and
//! checkpoints. A batch not yet taken when the daemon stops was never applied, so its records
//! are read again at the next start like any record read after the last checkpoint.

use crate::clock::{Clock, SystemClock};
use crate::daemon::align::TopicPartition;
use crate::daemon::kafka::{self, AssignmentChange, Decoded, FlowConsumer, Shared};
use crate::engine::correlate::{Correlator, Match};
use crate::engine::Engine;
use crate::json::Json;
use crate::record::Record;
use crate::time::Millis;
use rdkafka::Message;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TryRecvError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// Most records in one batch.
const BATCH: usize = 2_000;
/// Batches read ahead of the worker (so at most this many times [`BATCH`] records wait
/// between the consumer and the worker, besides the one being filled).
const BATCHES_AHEAD: usize = 4;
/// How long one poll waits for a record when the batch is empty.
const POLL_WAIT: Duration = Duration::from_millis(20);
/// How long a metadata request may take, and the wait before asking again after one failed.
const METADATA_WAIT: Duration = Duration::from_secs(2);

/// A record read and waiting for the clock, reduced to what applying it needs.
pub(in crate::daemon) struct Held {
    /// Its coordinates and timestamp. Its payload is kept (owned) only when applying it reads
    /// the payload again: a skewed record is matched again then, and a record with invalid
    /// matches goes to the dead-letter topic whole; otherwise its matches carry everything the
    /// engine takes from it, and key, headers and value are dropped when it is read (a held
    /// record costs its kept fields, not a copy of its parsed payload).
    pub record: Record<'static>,
    /// The flow events it is, matched once when it was read (ordering needs its time), owned
    /// so that they need not borrow the message.
    pub matches: Vec<Match<'static>>,
    /// Set when its time lay beyond the allowed skew: the wall-clock time to apply it at.
    pub skewed_at: Option<Millis>,
}

/// What the reader made of a record.
pub(in crate::daemon) enum Read {
    /// The payload is not JSON: dead-letter it.
    Undecodable { detail: String, raw: Vec<u8> },
    /// To be held until the clock passes `time`.
    Hold { time: Millis, held: Held },
}

/// What the worker is handed, in the order the consumer delivered it.
pub(in crate::daemon) enum Event {
    /// A record read.
    Record {
        partition: TopicPartition,
        offset: i64,
        read: Read,
    },
    /// Assignment changes reported by the rebalance callback before the records after them.
    Assignment(Vec<AssignmentChange>),
    /// Every partition of the flows' topics, from the cluster's metadata after an assignment
    /// changed (those not assigned here are held by another member of the group).
    Expected(Vec<TopicPartition>),
}

/// The wall-clock time the daemon goes by, shared by the reader and the worker: the highest
/// time either read from the clock (see `Worker::wall`).
#[derive(Clone)]
pub(in crate::daemon) struct Wall {
    clock: Arc<dyn Clock>,
    highest: Arc<AtomicI64>,
}

impl Wall {
    pub fn new(clock: Arc<dyn Clock>, start: Millis) -> Wall {
        Wall {
            clock,
            highest: Arc::new(AtomicI64::new(start)),
        }
    }

    /// The clock's time and the highest time told before it (the clock's when it is the
    /// highest).
    pub fn read(&self) -> (Millis, Millis) {
        let now = self.clock.now();
        let before = self.highest.fetch_max(now, Ordering::Relaxed);
        (now, before.max(now))
    }

    /// "Now": never less than a time told before.
    pub fn now(&self) -> Millis {
        self.read().1
    }
}

/// What the reader thread needs.
pub(in crate::daemon) struct ReaderSetup {
    pub consumer: Arc<FlowConsumer>,
    pub shared: Arc<Shared>,
    pub correlator: Correlator,
    /// The flows' topics (to list their partitions after each change of assignment).
    pub topics: Vec<String>,
    pub wall: Wall,
    /// `tracking.max_clock_skew`.
    pub max_clock_skew: Millis,
}

/// The running reader, as the worker sees it.
pub(in crate::daemon) struct Reader {
    batches: Receiver<Vec<Event>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Reader {
    /// Starts the thread (`flowwatch-reader`).
    pub fn start(setup: ReaderSetup) -> std::io::Result<Reader> {
        let (sender, batches) = mpsc::sync_channel(BATCHES_AHEAD);
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::Builder::new()
            .name("flowwatch-reader".to_string())
            .spawn(move || read_loop(&setup, &sender, &stopping))?;
        Ok(Reader {
            batches,
            stop,
            thread: Some(thread),
        })
    }

    /// The next batch, waiting up to `wait` for one; `Err` when the reader thread is gone
    /// (it panicked: the worker cannot go on without records).
    pub fn next(&self, wait: Duration) -> anyhow::Result<Option<Vec<Event>>> {
        let received = if wait.is_zero() {
            self.batches.try_recv().map_err(|error| match error {
                TryRecvError::Empty => RecvTimeoutError::Timeout,
                TryRecvError::Disconnected => RecvTimeoutError::Disconnected,
            })
        } else {
            self.batches.recv_timeout(wait)
        };
        match received {
            Ok(batch) => Ok(Some(batch)),
            Err(RecvTimeoutError::Timeout) => Ok(None),
            Err(RecvTimeoutError::Disconnected) => {
                anyhow::bail!("the Kafka reader thread stopped unexpectedly")
            }
        }
    }

    /// Stops the thread and waits for it. Batches it read and the worker did not take are
    /// dropped: nothing of them was applied.
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Unblocks a reader waiting for room in the channel.
        while self.batches.recv_timeout(Duration::from_millis(1)).is_ok() {}
        if let Some(thread) = self.thread.take() {
            while !thread.is_finished() {
                while self.batches.try_recv().is_ok() {}
                std::thread::sleep(Duration::from_millis(1));
            }
            let _ = thread.join();
        }
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        self.stop();
    }
}

fn read_loop(setup: &ReaderSetup, sender: &SyncSender<Vec<Event>>, stop: &AtomicBool) {
    let mut topics: HashMap<String, Arc<str>> = HashMap::new();
    // When the partitions of the flows' topics are to be listed next (after an assignment
    // changed, again while the cluster does not answer).
    let mut list_partitions: Option<Millis> = None;
    while !stop.load(Ordering::Relaxed) {
        let mut batch = Vec::new();
        list_if_due(setup, &mut list_partitions, &mut batch);
        let mut records = 0;
        // "Now" is read once per batch: the polls after the first do not wait.
        let mut wall = None;
        while records < BATCH {
            let polled = setup
                .consumer
                .poll(if batch.is_empty() { POLL_WAIT } else { Duration::ZERO });
            // The rebalance callback runs inside `poll`: its changes come before what the poll
            // returned.
            let changes = match setup.shared.changes.lock() {
                Ok(mut changes) => std::mem::take(&mut *changes),
                Err(_) => Vec::new(),
            };
            if !changes.is_empty() {
                batch.push(Event::Assignment(changes));
                // Listed before any record read after the change, so that the worker never
                // merges only the partitions it was given.
                list_partitions = Some(Millis::MIN);
                list_if_due(setup, &mut list_partitions, &mut batch);
            }
            match polled {
                None => break,
                Some(Ok(message)) => {
                    records += 1;
                    let topic = match topics.get(message.topic()) {
                        Some(topic) => topic.clone(),
                        None => {
                            let topic: Arc<str> = Arc::from(message.topic());
                            topics.insert(message.topic().to_string(), topic.clone());
                            topic
                        }
                    };
                    let wall = *wall.get_or_insert_with(|| setup.wall.now());
                    batch.push(Event::Record {
                        partition: (topic, message.partition()),
                        offset: message.offset(),
                        read: read(setup, &message, wall),
                    });
                }
                Some(Err(error)) => {
                    // Transient (broker down, transport failures): librdkafka reconnects.
                    tracing::debug!(%error, "Consumer error.");
                    break;
                }
            }
        }
        if !batch.is_empty() && sender.send(batch).is_err() {
            return;
        }
    }
}

/// Lists the partitions of the flows' topics if that is due (`Event::Expected`), or sets when
/// to try again if the cluster does not answer.
fn list_if_due(setup: &ReaderSetup, due: &mut Option<Millis>, batch: &mut Vec<Event>) {
    let Some(when) = *due else {
        return;
    };
    // The real clock: retries are about the cluster, not about event or injected time.
    let now = SystemClock.now();
    if when > now {
        return;
    }
    match kafka::topic_partitions(&setup.consumer, &setup.topics, METADATA_WAIT) {
        Ok(partitions) => {
            batch.push(Event::Expected(partitions));
            *due = None;
        }
        Err(error) => {
            // Said once per change of assignment, not at every retry while the cluster is down.
            if when == Millis::MIN {
                tracing::warn!(%error, "Could not list the partitions of the flows' topics; trying again every 2 s (the live clock waits until then).");
            } else {
                tracing::debug!(%error, "Could not list the partitions of the flows' topics; trying again.");
            }
            *due = Some(now.saturating_add(METADATA_WAIT.as_millis() as Millis));
        }
    }
}

/// Decodes and matches a record read at `wall` (borrowing its payload from the message),
/// keeping what applying it will need.
fn read<M: Message>(setup: &ReaderSetup, message: &M, wall: Millis) -> Read {
    let record = match kafka::decode(message, wall) {
        Decoded::Undecodable { detail, raw } => return Read::Undecodable { detail, raw },
        Decoded::Record(record) => record,
    };
    let matches = setup.correlator.matches(&record);
    let time = Engine::matched_time(&matches, &record);
    if time > wall.saturating_add(setup.max_clock_skew) {
        // Matched again when applied, with the event times replaced.
        drop(matches);
        let held = Held {
            record: record.into_owned(),
            matches: Vec::new(),
            skewed_at: Some(wall),
        };
        return Read::Hold { time: wall, held };
    }
    let invalid = matches.iter().any(|found| matches!(found, Match::Invalid { .. }));
    let matches = matches.into_iter().map(Match::into_owned).collect();
    let held = Held {
        record: Record {
            topic: record.topic,
            partition: record.partition,
            offset: record.offset,
            key: None,
            timestamp: record.timestamp,
            headers: Vec::new(),
            value: if invalid { record.value.into_owned() } else { Json::Null },
        },
        matches,
        skewed_at: None,
    };
    Read::Hold { time, held }
}
