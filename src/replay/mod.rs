//! Replay (bootstrap).
