//! The wall clock, behind a trait: the only place in the crate that reads the system time.
//!
//! The engine never reads a clock; the daemon asks a [`Clock`] for "now" and tells the engine.
//! [`SystemClock`] is the real one; [`ScaledClock`] runs N times faster from a fixed origin, so
//! that the demo can compress minutes of SLA into seconds honestly (every part of the process
//! that needs the time uses the same scaled clock). [`ManualClock`] is moved by hand in tests.

use crate::time::Millis;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

/// Something that tells the current wall-clock time in epoch milliseconds.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> Millis;
}

/// The system's clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[allow(clippy::disallowed_methods)] // The one sanctioned wall-clock read.
    fn now(&self) -> Millis {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|elapsed| elapsed.as_millis() as Millis)
            .unwrap_or(0)
    }
}

/// A clock that runs `speed` times faster than the system clock, from `origin` (epoch ms) at
/// the moment it was created.
#[derive(Clone, Debug)]
pub struct ScaledClock {
    origin: Millis,
    started: std::time::Instant,
    speed: f64,
}

impl ScaledClock {
    #[allow(clippy::disallowed_methods)] // Reads the monotonic clock once, as its reference.
    pub fn new(origin: Millis, speed: f64) -> ScaledClock {
        ScaledClock {
            origin,
            started: std::time::Instant::now(),
            speed: speed.max(f64::MIN_POSITIVE),
        }
    }

    /// How fast it runs compared to the system clock.
    pub fn speed(&self) -> f64 {
        self.speed
    }
}

impl Clock for ScaledClock {
    fn now(&self) -> Millis {
        let real = self.started.elapsed().as_secs_f64() * 1000.0;
        self.origin + (real * self.speed) as Millis
    }
}

/// A clock moved by hand (tests).
#[derive(Clone, Debug, Default)]
pub struct ManualClock(Arc<AtomicI64>);

impl ManualClock {
    pub fn new(start: Millis) -> ManualClock {
        ManualClock(Arc::new(AtomicI64::new(start)))
    }

    pub fn set(&self, time: Millis) {
        self.0.store(time, Ordering::SeqCst);
    }

    pub fn advance(&self, by: Millis) {
        self.0.fetch_add(by, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Millis {
        self.0.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scaled_clock_runs_faster_than_the_system_clock() {
        let clock = ScaledClock::new(1_000, 1000.0);
        std::thread::sleep(std::time::Duration::from_millis(20));
        // 20 ms real at 1000x is at least 20 s of scaled time.
        assert!(clock.now() >= 1_000 + 20_000, "{}", clock.now());
    }

    #[test]
    fn a_manual_clock_moves_only_when_told() {
        let clock = ManualClock::new(5);
        assert_eq!(clock.now(), 5);
        clock.advance(10);
        assert_eq!(clock.now(), 15);
        clock.set(1);
        assert_eq!(clock.now(), 1);
    }
}
