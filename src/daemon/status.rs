//! What the daemon reports about itself, shared lock-free between the worker thread (which
//! writes it) and the HTTP side (health checks and metrics read it).

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};

/// See the module documentation. Every field is a plain atomic; readers see recent values.
#[derive(Debug, Default)]
pub struct Status {
    /// The state was restored (or found empty) and the worker runs.
    pub restored: AtomicBool,
    /// Partitions currently assigned.
    pub partitions_assigned: AtomicU64,
    /// The last checkpoint succeeded.
    pub store_writable: AtomicBool,
    /// No assigned partition with lag has been silent for longer than the watchdog timeout.
    pub watchdog_ok: AtomicBool,
    /// Every assigned partition has been read up to its high watermark.
    pub caught_up: AtomicBool,
    /// Records between the read positions and the high watermarks.
    pub records_behind: AtomicU64,
    /// How far the event clock trails the wall clock, ms.
    pub event_time_lag_ms: AtomicI64,
    /// Records waiting in the outbox for the broker's acknowledgement.
    pub outbox_len: AtomicU64,
    /// Deliveries that failed (and were retried).
    pub publish_errors: AtomicU64,
    /// Records dead-lettered.
    pub dead_letters: AtomicU64,
    /// Checkpoints written.
    pub checkpoints: AtomicU64,
    /// Records read from Kafka.
    pub records_read: AtomicU64,
    /// Records finished with: applied to the engine, dead-lettered, or skipped (read again
    /// after a restart, or before `kafka.start_from`). Trails `records_read` by what the live
    /// merge holds. Added to once per turn, after `outbox_len` was stored (release): a
    /// reader that loads this with acquire ordering and then `outbox_len` sees a length that
    /// counts these records' outputs.
    pub records_done: AtomicU64,
    /// Another consumer took partitions of the group (one daemon per group is supported).
    pub group_conflict: AtomicBool,
    /// Times the consumer lost its partitions with its group membership (session timeout)
    /// and rejoined; not a conflict.
    pub assignments_lost: AtomicU64,
}

impl Status {
    /// A status in which nothing is ready yet.
    pub fn new() -> Status {
        Status {
            watchdog_ok: AtomicBool::new(true),
            ..Status::default()
        }
    }

    /// Whether the daemon should receive traffic: restored, assigned, store writable, watchdog
    /// happy, no group conflict.
    pub fn ready(&self) -> bool {
        self.restored.load(Ordering::Relaxed)
            && self.partitions_assigned.load(Ordering::Relaxed) > 0
            && self.store_writable.load(Ordering::Relaxed)
            && self.watchdog_ok.load(Ordering::Relaxed)
            && !self.group_conflict.load(Ordering::Relaxed)
    }
}
