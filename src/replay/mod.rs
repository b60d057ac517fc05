//! Offline replay (SPEC 3): recorded records go through the same engine as live traffic and
//! the signals come out as JSON lines, deterministically. The clock is the highest record time
//! read so far less the allowed lateness; `--until` moves it to a final time at the end.
//! Reading and decoding, the engine, and writing signals run as three stages, on three threads
//! when there are cores for them (`pipeline`); the engine sees the lines in input order.

mod chunks;
pub mod decode;
mod pipeline;

use crate::engine::{Engine, EngineConfig, Input};
use crate::flow::Flow;
use crate::time::Millis;
use serde_json::json;
use std::io::{BufRead, Write};

/// How many undecodable lines are reported one by one before only counting.
const MAX_REPORTED_BAD_LINES: u64 = 20;

/// What to replay and how.
#[derive(Clone, Debug)]
pub struct ReplayOptions {
    /// Engine settings (lateness, orphan time, retention, instance name).
    pub engine: EngineConfig,
    /// Final clock after the last record.
    pub until: Option<Millis>,
    /// Print counts on stderr at the end.
    pub stats: bool,
}

/// Replays `input` through an engine over `flows`, writing signals to `signals` and warnings
/// and stats to `diagnostics`. Returns the engine, for callers that inspect its state.
pub fn replay(
    flows: Vec<Flow>,
    input: &mut (dyn BufRead + Send),
    options: &ReplayOptions,
    signals: &mut (dyn Write + Send),
    diagnostics: &mut dyn Write,
) -> std::io::Result<Engine> {
    let mut engine = Engine::new(flows, options.engine.clone());
    let correlator = engine.correlator();
    let mut bad_lines = 0u64;
    pipeline::run(input, &correlator, signals, &mut |line, outputs| {
        match line {
            Some((_, Ok(decoded))) => engine.handle(
                Input::CorrelatedRecordReceived {
                    record: &decoded.record,
                    matches: std::mem::take(&mut decoded.matches),
                },
                outputs,
            ),
            Some((line_number, Err(error))) => {
                engine.count_undecodable();
                bad_lines += 1;
                if bad_lines <= MAX_REPORTED_BAD_LINES {
                    writeln!(diagnostics, "line {line_number}: skipped: {error}")?;
                }
            }
            None => {
                if let Some(until) = options.until {
                    engine.handle(Input::ClockAdvanced(until), outputs);
                }
            }
        }
        Ok(())
    })?;
    if bad_lines > MAX_REPORTED_BAD_LINES {
        writeln!(
            diagnostics,
            "{} more lines skipped",
            bad_lines - MAX_REPORTED_BAD_LINES
        )?;
    }
    if options.stats {
        writeln!(diagnostics, "{}", stats_json(&engine))?;
    }
    Ok(engine)
}

/// The `--stats` object.
pub fn stats_json(engine: &Engine) -> serde_json::Value {
    let stats = engine.stats();
    json!({
        "records": stats.records,
        "matched": stats.matched,
        "unmatched": stats.unmatched,
        "invalid": stats.invalid,
        "duplicates": stats.duplicates,
        "instances": {
            "open": engine.open_instances(),
            "completed": stats.completed,
            "failed": stats.failed,
        },
        "instances_open": engine.open_instances(),
        "instances_completed": stats.completed,
        "instances_failed": stats.failed,
        "started": stats.started,
        "breaches": stats.breaches,
        "actions": stats.actions,
        "orphaned": stats.orphaned,
        "orphans_held": stats.orphans_held,
    })
}
