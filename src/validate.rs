//! `flowwatch validate` (placeholder during bootstrap).
use std::io::Write;
use std::path::PathBuf;
/// Placeholder.
pub fn run(_paths: &[PathBuf], _stdout: &mut dyn Write, _stderr: &mut dyn Write) -> i32 { 1 }
