//! The daemon (`flowwatch run`): the engine driven live from Kafka, durably.
//!
//! - [`align`]: live time, partitions merged into event-time order (pure).
pub mod align;
