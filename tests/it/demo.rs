//! `flowwatch demo`: the binary starts its embedded broker, simulator and tracker, prints the
//! URL, and within a bounded time the API reports every kind of fault the simulator injects
//! (SLA breach, stuck, retry action, orphan, deviations, failure); the page is served and
//! SIGTERM stops it cleanly. Every wait is bounded.

// Tests bound their waits in wall-clock time; the ban is for the product's code.
#![allow(clippy::disallowed_methods)]

use crate::serve::get;
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn the_demo_detects_every_injected_fault_and_serves_the_page() {
    let root = env!("CARGO_MANIFEST_DIR");
    let mut child = Command::new(env!("CARGO_BIN_EXE_flowwatch"))
        .args(["demo", "--listen", "127.0.0.1:0", "--speed", "300", "--rate", "8", "--duration", "150s"])
        .current_dir(root)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the demo starts");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let first = lines.next().expect("a first line").expect("text");
    let address = first
        .strip_prefix("flowwatch demo: http://")
        .and_then(|rest| rest.strip_suffix('/'))
        .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
        .to_string();
    // Keep reading stdout so the demo never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});

    let (status, page) = get(&address, "/");
    assert!(status.contains("200"), "{status}");
    assert!(page.contains("<html") || page.contains("<!doctype") || page.contains("<!DOCTYPE"));

    let wanted: BTreeSet<&str> = [
        "breached/sla",
        "breached/stuck",
        "action/",
        "orphaned/",
        "deviation/duplicate",
        "deviation/out_of_order",
        "failed/",
    ]
    .into_iter()
    .collect();
    let mut seen: BTreeSet<String> = BTreeSet::new();
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(120) {
        let (status, response) = get(&address, "/api/v1/signals?limit=1000");
        if status.contains("200") {
            let body = response.split("\r\n\r\n").nth(1).unwrap_or_default();
            // The body may be chunked; pick out each signal's type and reason textually.
            for piece in body.split("\"type\":\"flowwatch.").skip(1) {
                let kind = piece.split('"').next().unwrap_or_default();
                let reason = piece
                    .split("\"reason\":")
                    .nth(1)
                    .map(|rest| rest.trim_start_matches('"').split(['"', ',', '}']).next().unwrap_or_default())
                    .unwrap_or_default();
                let reason = if reason == "null" { "" } else { reason };
                seen.insert(format!("{kind}/{reason}"));
            }
        }
        if wanted.iter().all(|kind| seen.contains(*kind)) {
            break;
        }
        std::thread::sleep(Duration::from_secs(2));
    }
    let (status, metrics) = get(&address, "/metrics");
    assert!(status.contains("200"), "{status}");
    assert!(metrics.contains("flowwatch_breaches_total"), "metrics are served");
    // SIGTERM stops it cleanly.
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let deadline = Instant::now() + Duration::from_secs(20);
    let exit = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let missing: Vec<&&str> = wanted.iter().filter(|kind| !seen.contains(**kind)).collect();
    assert!(missing.is_empty(), "not detected: {missing:?}; seen {seen:?}");
    assert!(exit.is_some_and(|status| status.success()), "the demo exits 0 on SIGTERM: {exit:?}");
}
