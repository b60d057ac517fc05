//! `flowwatch validate` (placeholder during bootstrap).
