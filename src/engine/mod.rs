//! The engine (bootstrap).
