//! The single integration-test binary (one binary links once, so the suite builds fast). Each
//! module tests one command or subsystem, through the library's public API or, in `replay`,
//! through the built `flowwatch` binary itself.

mod parse_never_panics;
mod replay;
mod store;
mod validate;
