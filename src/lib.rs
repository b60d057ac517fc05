//! flowwatch: a process-tracking sidecar for Kafka choreographies.
//!
//! It reads the event topics of services that cooperate through events, correlates the events
//! by business key into process instances described by flow files, and reports instances that
//! are stuck or miss an SLA as CloudEvents signals. The crate is a library with a thin binary:
//!
//! - [`time`]: event-time arithmetic, RFC 3339 and duration parsing.
//! - [`flow`]: the flow-file model, its YAML parser and its validation.
//! - [`record`]: the Kafka record as the engine sees it.
//! - [`json`]: the borrowed JSON value a record's payload is parsed into.
//! - [`engine`]: the pure, deterministic tracking engine (no I/O, no clock reads).
//! - [`metrics`]: the Prometheus metrics, defined once, rendered for `/metrics`.
//! - [`replay`]: offline replay of recorded records through the engine.
//! - [`http`]: health, metrics, the JSON API, operator actions, the OpenAPI document and the
//!   web page.
//! - [`tracker`]: the engine owner of a running process and the handle other tasks reach it by.
//! - [`store`]: the daemon's durable key-value state store and its backends.
//! - [`config`]: the daemon's configuration (TOML file + environment), validated.
//! - [`clock`]: the wall clock behind a trait (the only place that reads it).
//! - [`daemon`]: `flowwatch run`: the engine driven live from Kafka, durably.
//! - [`serve`]: `replay --serve`, the API and the page over a replayed state.
//! - [`diagram`]: a flow's step graph laid out and rendered as SVG or Mermaid.
//! - [`simulate`]: a deterministic choreography simulator with faults, and its Kafka producer.
//! - [`demo`]: `flowwatch demo`, broker, simulator, tracker and page in one process.
//! - [`cli`]: the command line.

pub mod app;
pub mod cli;
pub mod clock;
pub mod config;
pub mod daemon;
pub mod demo;
pub mod diagram;
pub mod engine;
pub mod flow;
pub mod logging;
pub mod http;
pub mod json;
pub mod metrics;
pub mod record;
pub mod replay;
pub mod store;
pub mod serve;
pub mod simulate;
pub mod time;
pub mod tracker;
pub mod validate;
