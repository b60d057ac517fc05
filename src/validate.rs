//! `flowwatch validate DIR|FILE...`: loads every flow file, prints every problem of every file
//! on stderr as `FILE:LINE:COL: error: MESSAGE` and exits 1 if there is any (SPEC 1.7).
//! Otherwise it prints one summary line per flow on stdout and exits 0.

use crate::flow::{load_dir_or_files, Flow};
use std::io::Write;
use std::path::PathBuf;

/// Validates the flow files at `paths` and returns the exit code: 0 when every file is valid,
/// 1 when there is any problem.
pub fn run(paths: &[PathBuf], stdout: &mut dyn Write, stderr: &mut dyn Write) -> i32 {
    let report = load_dir_or_files(paths);
    // A closed stdout or stderr (`validate ... | head`) must not turn into a panic; the exit
    // code still says whether the files are valid.
    if !report.errors.is_empty() {
        for diagnostic in &report.errors {
            let _ = writeln!(stderr, "{diagnostic}");
        }
        return 1;
    }
    for flow in &report.flows {
        let _ = writeln!(stdout, "{}", summary(flow));
    }
    0
}

/// `ok NAME (FILE): 7 events, 3 steps, 2 actions, topics a, b`, topics in the order the
/// file first mentions them.
pub fn summary(flow: &Flow) -> String {
    let def = &flow.def;
    let mut topics: Vec<&str> = Vec::new();
    for event in &def.events {
        if !topics.contains(&event.topic.as_str()) {
            topics.push(&event.topic);
        }
    }
    format!(
        "ok {} ({}): {}, {}, {}, topics {}",
        def.name,
        def.file.display(),
        count(def.events.len(), "event"),
        count(def.steps.len(), "step"),
        count(def.actions.len(), "action"),
        topics.join(", ")
    )
}

/// `1 step`, `3 steps`.
fn count(number: usize, noun: &str) -> String {
    if number == 1 {
        format!("1 {noun}")
    } else {
        format!("{number} {noun}s")
    }
}
