//! The faults the simulator injects, each at its own rate, and their textual form for the
//! command line (`lost=0.05,slow=0.1`, `none`, `default`).
//!
//! Rates are probabilities per process instance. The faults that change an instance's path
//! (lost, slow, declined, late start, wrong topic, out of order, malformed) exclude each other:
//! one draw picks at most one of them, so each instance shows one clear failure. Duplicates are
//! drawn independently, on top of whatever else happens.

use std::fmt;
use std::str::FromStr;

/// Every kind of fault, in the order of [`FaultMix`]'s fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FaultKind {
    /// An event is never published and the services after it never act: the instance is
    /// stuck until its step SLA and deadline breach (a retry may bring the event).
    Lost,
    /// A service answers after its step's SLA: a breach, then a late completion.
    Slow,
    /// A payment or credit check is declined (or an address rejected): the instance fails.
    Declined,
    /// The start event is delivered long after the events that follow it: those are held
    /// and reported as orphans.
    LateStart,
    /// The start event is published to a legacy topic the flow does not read: orphans.
    WrongTopic,
    /// One event is delivered after events that causally follow it: `out_of_order`.
    OutOfOrder,
    /// One event is published broken (not JSON, without its key, or with a wrongly typed
    /// field) and never correctly: dead-lettered, and the instance stalls as if it were lost.
    Malformed,
    /// One event is published twice with the same event id: `duplicate`.
    Duplicate,
}

impl FaultKind {
    /// Every kind, in declaration order.
    pub const ALL: [FaultKind; 8] = [
        FaultKind::Lost,
        FaultKind::Slow,
        FaultKind::Declined,
        FaultKind::LateStart,
        FaultKind::WrongTopic,
        FaultKind::OutOfOrder,
        FaultKind::Malformed,
        FaultKind::Duplicate,
    ];

    /// The name used on the command line and in summaries.
    pub fn as_str(self) -> &'static str {
        match self {
            FaultKind::Lost => "lost",
            FaultKind::Slow => "slow",
            FaultKind::Declined => "declined",
            FaultKind::LateStart => "late_start",
            FaultKind::WrongTopic => "wrong_topic",
            FaultKind::OutOfOrder => "out_of_order",
            FaultKind::Malformed => "malformed",
            FaultKind::Duplicate => "duplicate",
        }
    }

    /// Index into per-kind arrays.
    pub fn index(self) -> usize {
        self as usize
    }
}

/// How often each fault happens, as a probability per process instance (0 to 1), and how
/// often a retry command brings an event that was lost or slow.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FaultMix {
    pub lost: f64,
    pub slow: f64,
    pub declined: f64,
    pub late_start: f64,
    pub wrong_topic: f64,
    pub out_of_order: f64,
    pub malformed: f64,
    pub duplicate: f64,
    /// Probability that a retry command (`RetryPayment`, `CheckAddress`) for an instance whose
    /// event of that service is lost or still pending makes the service answer shortly after.
    pub recover_on_retry: f64,
}

impl Default for FaultMix {
    /// The demo's mix: most instances complete, a few of each fault are always in view.
    fn default() -> Self {
        FaultMix {
            lost: 0.04,
            slow: 0.08,
            declined: 0.05,
            late_start: 0.02,
            wrong_topic: 0.02,
            out_of_order: 0.03,
            malformed: 0.02,
            duplicate: 0.03,
            recover_on_retry: 0.5,
        }
    }
}

impl FaultMix {
    /// No faults at all: every instance completes on time.
    pub fn none() -> FaultMix {
        FaultMix {
            lost: 0.0,
            slow: 0.0,
            declined: 0.0,
            late_start: 0.0,
            wrong_topic: 0.0,
            out_of_order: 0.0,
            malformed: 0.0,
            duplicate: 0.0,
            recover_on_retry: 0.0,
        }
    }

    /// Only this fault, at this rate (retries never recover).
    pub fn only(kind: FaultKind, rate: f64) -> FaultMix {
        let mut mix = FaultMix::none();
        *mix.rate_mut(kind) = rate;
        mix
    }

    /// The rate of one fault.
    pub fn rate(&self, kind: FaultKind) -> f64 {
        let mut copy = *self;
        *copy.rate_mut(kind)
    }

    fn rate_mut(&mut self, kind: FaultKind) -> &mut f64 {
        match kind {
            FaultKind::Lost => &mut self.lost,
            FaultKind::Slow => &mut self.slow,
            FaultKind::Declined => &mut self.declined,
            FaultKind::LateStart => &mut self.late_start,
            FaultKind::WrongTopic => &mut self.wrong_topic,
            FaultKind::OutOfOrder => &mut self.out_of_order,
            FaultKind::Malformed => &mut self.malformed,
            FaultKind::Duplicate => &mut self.duplicate,
        }
    }

    /// Picks the path-changing fault for a draw `u` in [0, 1): the rates are laid end to end
    /// (scaled down when they sum to more than 1), and `u` falls in one of them or in none.
    pub(super) fn pick_exclusive(&self, u: f64) -> Option<FaultKind> {
        let exclusive = &FaultKind::ALL[..7];
        let total: f64 = exclusive.iter().map(|&kind| self.rate(kind)).sum();
        let scale = if total > 1.0 { total } else { 1.0 };
        let mut edge = 0.0;
        for &kind in exclusive {
            edge += self.rate(kind) / scale;
            if u < edge {
                return Some(kind);
            }
        }
        None
    }
}

/// Why a fault specification could not be read.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum FaultMixError {
    #[error("unknown fault {0:?}: expected one of lost, slow, declined, late_start, wrong_topic, out_of_order, malformed, duplicate, recover_on_retry")]
    UnknownFault(String),
    #[error("fault {0:?} needs a rate: NAME=RATE with RATE between 0 and 1")]
    MissingRate(String),
    #[error("rate {rate:?} of fault {name:?} is not a number between 0 and 1")]
    BadRate { name: String, rate: String },
}

impl FromStr for FaultMix {
    type Err = FaultMixError;

    /// `none`, `default`, or comma-separated `NAME=RATE` pairs. Pairs start from `none`,
    /// unless the first word is `default` (`default,slow=0.3` raises only `slow`).
    fn from_str(text: &str) -> Result<FaultMix, FaultMixError> {
        let mut parts = text
            .split(',')
            .map(str::trim)
            .filter(|part| !part.is_empty());
        let mut mix = FaultMix::none();
        let mut pending = Vec::new();
        match parts.next() {
            Some("default") => mix = FaultMix::default(),
            Some("none") | None => {}
            Some(first) => pending.push(first),
        }
        pending.extend(parts);
        for part in pending {
            let (name, rate_text) = part
                .split_once('=')
                .ok_or_else(|| FaultMixError::MissingRate(part.to_string()))?;
            let (name, rate_text) = (name.trim(), rate_text.trim());
            let rate: f64 = rate_text
                .parse()
                .ok()
                .filter(|rate: &f64| (0.0..=1.0).contains(rate))
                .ok_or_else(|| FaultMixError::BadRate {
                    name: name.to_string(),
                    rate: rate_text.to_string(),
                })?;
            if name == "recover_on_retry" {
                mix.recover_on_retry = rate;
                continue;
            }
            let kind = FaultKind::ALL
                .into_iter()
                .find(|kind| kind.as_str() == name.replace('-', "_"))
                .ok_or_else(|| FaultMixError::UnknownFault(name.to_string()))?;
            *mix.rate_mut(kind) = rate;
        }
        Ok(mix)
    }
}

impl fmt::Display for FaultMix {
    /// The `NAME=RATE,...` form that [`FaultMix::from_str`] reads back.
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        for kind in FaultKind::ALL {
            write!(formatter, "{}={},", kind.as_str(), self.rate(kind))?;
        }
        write!(formatter, "recover_on_retry={}", self.recover_on_retry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specifications_read_and_print_back() {
        assert_eq!("none".parse(), Ok(FaultMix::none()));
        assert_eq!("default".parse(), Ok(FaultMix::default()));
        let mix: FaultMix = "lost=0.5, slow=0.25".parse().unwrap();
        assert_eq!(mix.lost, 0.5);
        assert_eq!(mix.slow, 0.25);
        assert_eq!(mix.declined, 0.0);
        let raised: FaultMix = "default,out-of-order=1".parse().unwrap();
        assert_eq!(raised.out_of_order, 1.0);
        assert_eq!(raised.lost, FaultMix::default().lost);
        assert_eq!(
            FaultMix::default().to_string().parse(),
            Ok(FaultMix::default())
        );
        assert!(matches!(
            "lost".parse::<FaultMix>(),
            Err(FaultMixError::MissingRate(_))
        ));
        assert!(matches!(
            "lots=0.1".parse::<FaultMix>(),
            Err(FaultMixError::UnknownFault(_))
        ));
        assert!(matches!(
            "lost=2".parse::<FaultMix>(),
            Err(FaultMixError::BadRate { .. })
        ));
    }

    #[test]
    fn the_exclusive_pick_follows_the_rates() {
        let mix = FaultMix {
            lost: 0.1,
            slow: 0.2,
            ..FaultMix::none()
        };
        assert_eq!(mix.pick_exclusive(0.05), Some(FaultKind::Lost));
        assert_eq!(mix.pick_exclusive(0.15), Some(FaultKind::Slow));
        assert_eq!(mix.pick_exclusive(0.5), None);
        let saturated = FaultMix {
            lost: 1.0,
            slow: 1.0,
            ..FaultMix::none()
        };
        assert_eq!(saturated.pick_exclusive(0.25), Some(FaultKind::Lost));
        assert_eq!(saturated.pick_exclusive(0.75), Some(FaultKind::Slow));
        assert_eq!(
            FaultMix::only(FaultKind::Duplicate, 1.0).pick_exclusive(0.0),
            None
        );
    }
}
