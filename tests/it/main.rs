//! The single integration-test binary (one binary links once, so the suite builds fast). Each
//! module tests one command or subsystem, through the library's public API or, in `replay`,
//! through the built `flowwatch` binary itself.

mod compose;
mod daemon;
mod demo;
mod kafka_security;
mod kafka_support;
mod diagram;
mod faults;
mod parse_never_panics;
mod prometheus;
mod replay;
mod secrets;
mod serve;
mod simulate;
mod store;
mod validate;
