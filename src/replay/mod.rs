//! Offline replay (SPEC 3): recorded records go through the same engine as live traffic and
//! the signals come out as JSON lines, deterministically. The clock is the highest record time
//! read so far less the allowed lateness; `--until` moves it to a final time at the end.

pub mod decode;

use crate::engine::{Engine, EngineConfig, Input, Output};
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
    input: &mut dyn BufRead,
    options: &ReplayOptions,
    signals: &mut dyn Write,
    diagnostics: &mut dyn Write,
) -> std::io::Result<Engine> {
    let mut engine = Engine::new(flows, options.engine.clone());
    let mut outputs = Vec::new();
    let mut buffer = Vec::with_capacity(64 * 1024);
    let mut line = String::new();
    let mut line_number = 0u64;
    let mut bad_lines = 0u64;
    loop {
        line.clear();
        if input.read_line(&mut line)? == 0 {
            break;
        }
        line_number += 1;
        let text = line.trim();
        if text.is_empty() {
            continue;
        }
        match decode::decode_line(text, line_number) {
            Ok(record) => engine.handle(Input::RecordReceived(&record), &mut outputs),
            Err(error) => {
                engine.count_undecodable();
                bad_lines += 1;
                if bad_lines <= MAX_REPORTED_BAD_LINES {
                    writeln!(diagnostics, "line {line_number}: skipped: {error}")?;
                }
            }
        }
        write_signals(&mut outputs, &mut buffer);
        if buffer.len() >= 32 * 1024 {
            signals.write_all(&buffer)?;
            buffer.clear();
        }
    }
    if let Some(until) = options.until {
        engine.handle(Input::ClockAdvanced(until), &mut outputs);
        write_signals(&mut outputs, &mut buffer);
    }
    signals.write_all(&buffer)?;
    signals.flush()?;
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

fn write_signals(outputs: &mut Vec<Output>, buffer: &mut Vec<u8>) {
    for output in outputs.drain(..) {
        if let Output::Emit(signal) = output {
            signal.write_json(buffer);
            buffer.push(b'\n');
        }
    }
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
