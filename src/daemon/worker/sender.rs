//! The sender: a thread that hands the outbox's records to the producer, in the order the
//! worker marks them in flight.
//!
//! Handing a record to librdkafka copies it into a message of its own with its headers and
//! wakes the producer's threads, about a quarter of the worker's time per record while it
//! applied a backlog (signals outnumber records). Here it overlaps with the engine's work. The
//! outbox stays the worker's: an entry is in flight from the moment the worker passes it here
//! until its delivery report comes back, and one the producer refuses is reported back as a
//! failed delivery, so the worker sends it again after the usual back-off. Entries still queued
//! here when the daemon stops are in flight and unacknowledged: the checkpoint keeps them and
//! the next start sends them again, as after any unacknowledged send.

use crate::daemon::kafka::{self, Delivery, OutboxProducer};
use crate::daemon::outbox::OutRecord;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// How long the sender waits before offering a record again to a producer whose queue is
/// full (`queue.buffering.max.messages`).
const QUEUE_FULL_WAIT: Duration = Duration::from_millis(5);

/// The running sender, as the worker sees it.
pub(in crate::daemon) struct Sender {
    queue: Option<mpsc::Sender<(u64, Arc<OutRecord>)>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Sender {
    /// Starts the thread (`flowwatch-sender`). `failures` is where delivery reports go: a
    /// record the producer refuses is reported there as a failed delivery.
    pub fn start(producer: Arc<OutboxProducer>, failures: mpsc::Sender<Delivery>) -> std::io::Result<Sender> {
        let (queue, records) = mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::Builder::new()
            .name("flowwatch-sender".to_string())
            .spawn(move || send_loop(&producer, &records, &failures, &stopping))?;
        Ok(Sender {
            queue: Some(queue),
            stop,
            thread: Some(thread),
        })
    }

    /// Queues an outbox entry marked in flight; `false` if the thread is gone (it panicked),
    /// in which case the entry stays in flight until the next start.
    pub fn send(&self, seq: u64, record: Arc<OutRecord>) -> bool {
        self.queue
            .as_ref()
            .is_some_and(|queue| queue.send((seq, record)).is_ok())
    }

    /// Stops the thread once it has handed over what it was given (or at once while the
    /// producer's queue stays full), and waits for it.
    pub fn stop(&mut self) {
        self.queue = None;
        if let Some(thread) = self.thread.take() {
            // Up to half a second (500 waits of a millisecond) to hand over the rest.
            for _ in 0..500 {
                if thread.is_finished() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            self.stop.store(true, Ordering::Relaxed);
            let _ = thread.join();
        }
    }
}

impl Drop for Sender {
    fn drop(&mut self) {
        self.stop();
    }
}

fn send_loop(
    producer: &OutboxProducer,
    records: &mpsc::Receiver<(u64, Arc<OutRecord>)>,
    failures: &mpsc::Sender<Delivery>,
    stop: &AtomicBool,
) {
    for (seq, record) in records {
        loop {
            match kafka::send(producer, seq, &record) {
                Ok(()) => break,
                // The producer's queue is full: the same record again shortly, keeping order.
                Err(true) if !stop.load(Ordering::Relaxed) => std::thread::sleep(QUEUE_FULL_WAIT),
                Err(true) => return,
                Err(false) => {
                    let _ = failures.send((seq, Err("the producer refused the record".to_string())));
                    break;
                }
            }
        }
    }
}
