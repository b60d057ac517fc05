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
//! - [`http`]: health, metrics, the JSON API, operator actions, the OpenAPI document and the
//!   web page.
//! - [`tracker`]: the engine owner of a running process and the handle other tasks reach it by.
//! - [`serve`]: `replay --serve`, the API and the page over a replayed state.
//! - [`diagram`]: a flow's step graph laid out and rendered as SVG or Mermaid.
//! - [`cli`]: the command line.

pub mod cli;
pub mod diagram;
pub mod engine;
pub mod flow;
pub mod http;
pub mod record;
pub mod replay;
pub mod serve;
pub mod time;
pub mod tracker;
pub mod validate;
