//! The command line (placeholder during bootstrap).
