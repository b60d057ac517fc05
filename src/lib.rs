//! flowwatch: a process-tracking sidecar for Kafka choreographies.
//!
//! It reads the event topics of services that cooperate through events, correlates the events
//! by business key into process instances described by flow files, and reports instances that
//! are stuck or miss an SLA as CloudEvents signals. The crate is a library with a thin binary:
//!
//! - [`time`]: event-time arithmetic, RFC 3339 and duration parsing.
//! - [`flow`]: the flow-file model, its YAML parser and its validation.
//! - [`record`]: the Kafka record as the engine sees it.
//! - [`engine`]: the pure, deterministic tracking engine (no I/O, no clock reads).
//! - [`replay`]: offline replay of recorded records through the engine.
//! - [`simulate`]: a deterministic choreography simulator with faults, and its Kafka producer.
//! - [`clock`]: the wall clock behind a trait (the only place that reads it).
//! - [`cli`]: the command line.

pub mod cli;
pub mod clock;
pub mod engine;
pub mod flow;
pub mod record;
pub mod replay;
pub mod simulate;
pub mod time;
pub mod validate;
