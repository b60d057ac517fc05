//! Replay benchmark (issue: engine performance). Generates a stream of the scenario kind
//! (order fulfilment and customer onboarding with lost, late, duplicated and malformed events)
//! and measures, in one run:
//!
//! - the parse-only baseline: read each line and `serde_json`-parse it into a `Value`;
//! - replay through the engine (decode, correlate, track, render signals) into a sink;
//! - resident and heap bytes per open instance with N instances open.
//!
//! Figures print as ratios against the baseline of the same run. `--quick` uses small sizes
//! so CI keeps the benchmark compiling and running; `--records N`, `--instances N` override.
//! `--stream FILE` times a given stream (replay input format) instead of the generated one,
//! `--flows PATH` with other flows than the shipped ones (the memory measurement keeps the
//! shipped flows and its synthetic orders).

// A benchmark measures wall-clock time by definition.
#![allow(clippy::disallowed_methods)]

#[path = "support/given.rs"]
mod given;
#[path = "support/scenario.rs"]
mod scenario;

use flowwatch::engine::{Engine, EngineConfig, Input};
use flowwatch::json::Json;
use flowwatch::record::Record;
use flowwatch::replay::{replay, ReplayOptions};
use serde_json::Value;
use std::alloc::{GlobalAlloc, Layout};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicIsize, Ordering};
use std::time::Instant;

/// Counts live heap bytes on top of mimalloc, the allocator the binary ships with, in the
/// memory measurement's child process only: a counter shared by replay's two threads would
/// bounce between the cores on every allocation and slow the timed runs.
struct Counting;
static COUNTING: AtomicBool = AtomicBool::new(false);
static LIVE_BYTES: AtomicIsize = AtomicIsize::new(0);
static INNER: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn count(bytes: isize) {
    if COUNTING.load(Ordering::Relaxed) {
        LIVE_BYTES.fetch_add(bytes, Ordering::Relaxed);
    }
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size() as isize);
        unsafe { INNER.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        count(-(layout.size() as isize));
        unsafe { INNER.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size as isize - layout.size() as isize);
        unsafe { INNER.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn generate(records: usize, path: &PathBuf) -> usize {
    let lines = scenario::lines(records);
    let mut file =
        std::io::BufWriter::new(std::fs::File::create(path).expect("create stream file"));
    for (_, line) in &lines {
        writeln!(file, "{line}").expect("write stream");
    }
    file.flush().expect("flush stream");
    lines.len()
}

fn parse_only(path: &PathBuf) -> usize {
    let reader = BufReader::with_capacity(1 << 20, std::fs::File::open(path).expect("open stream"));
    let mut count = 0;
    for line in reader.lines() {
        let line = line.expect("read line");
        if serde_json::from_str::<Value>(&line).is_ok() {
            count += 1;
        }
    }
    count
}

fn run_replay(path: &PathBuf, flows_path: &Path) -> u64 {
    let mut input =
        BufReader::with_capacity(1 << 20, std::fs::File::open(path).expect("open stream"));
    let options = ReplayOptions {
        engine: EngineConfig::default(),
        until: None,
        stats: false,
    };
    let engine = replay(
        given::flows(flows_path),
        &mut input,
        &options,
        &mut std::io::sink(),
        &mut std::io::sink(),
    )
    .expect("replay");
    engine.stats().records
}

/// The best wall-clock time of `runs` runs, the CPU time (all threads) of that run, and the
/// last run's result.
fn best_of<T>(runs: usize, mut work: impl FnMut() -> T) -> (f64, f64, T) {
    let mut best = (f64::MAX, 0.0);
    let mut result = None;
    for _ in 0..runs {
        let cpu_before = cpu_seconds();
        let started = Instant::now();
        let value = work();
        let wall = started.elapsed().as_secs_f64();
        if wall < best.0 {
            best = (wall, cpu_seconds() - cpu_before);
        }
        result = Some(value);
    }
    (best.0, best.1, result.expect("at least one run"))
}

/// The CPU time of this process so far, user and system, all threads (`/proc/self/stat`, in
/// clock ticks of 10 ms).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // The fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |index: usize| fields.get(index).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after the name.
    (ticks(11) + ticks(12)) / 100.0
}

fn rss_bytes() -> i64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: i64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

fn memory_per_open_instance(instances: usize) -> (f64, f64) {
    let mut engine = Engine::new(given::flows(&given::shipped_flows()), EngineConfig::default());
    let mut outputs = Vec::new();
    let make = |n: usize| {
        Record {
        topic: "orders".into(),
        partition: 0,
        offset: n as i64,
        key: None,
        timestamp: scenario::BASE,
        headers: Vec::new(),
        value: Json::parse(&format!(
            r#"{{"type":"OrderPlaced","eventId":"ev-{n}","occurredAt":"2026-01-05T08:00:00Z","orderId":"ord-{n:07}","total":{},"customer":{{"id":"c-{n}"}}}}"#,
            100 + n % 2000
        ))
        .expect("valid JSON")
        .into_owned(),
    }
    };
    // Warm up the tables so their growth is measured, not the first allocation.
    let heap_before = LIVE_BYTES.load(Ordering::Relaxed);
    let rss_before = rss_bytes();
    for n in 0..instances {
        engine.handle(Input::RecordReceived(&make(n)), &mut outputs);
        outputs.clear();
    }
    let heap = (LIVE_BYTES.load(Ordering::Relaxed) - heap_before) as f64 / instances as f64;
    let rss = (rss_bytes() - rss_before) as f64 / instances as f64;
    assert_eq!(engine.open_instances() as usize, instances);
    (heap, rss)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(position) = args.iter().position(|arg| arg == "--memory-only") {
        // Child process: a fresh heap, so resident memory is not blurred by earlier phases.
        COUNTING.store(true, Ordering::Relaxed);
        let instances = args
            .get(position + 1)
            .and_then(|n| n.parse().ok())
            .unwrap_or(100_000);
        let (heap, rss) = memory_per_open_instance(instances);
        println!("{heap} {rss}");
        return;
    }
    let quick = args.iter().any(|arg| arg == "--quick");
    let text_of = |flag: &str| {
        args.iter()
            .position(|arg| arg == flag)
            .and_then(|i| args.get(i + 1).cloned())
    };
    let value_of = |flag: &str| text_of(flag).and_then(|text| text.parse::<usize>().ok());
    let records: usize = value_of("--records").unwrap_or(if quick { 50_000 } else { 1_000_000 });
    let instances: usize =
        value_of("--instances").unwrap_or(if quick { 50_000 } else { 1_000_000 });
    let runs = if quick { 1 } else { 3 };
    let flows_path = text_of("--flows").map(PathBuf::from).unwrap_or_else(given::shipped_flows);
    let stream_file = text_of("--stream").map(PathBuf::from);
    let path = stream_file.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!(
            "flowwatch-bench-{}-{records}.jsonl",
            std::process::id()
        ))
    });
    let written = match &stream_file {
        // A given stream (`--stream FILE`, replay input format): its lines, blank ones aside.
        Some(path) => given::lines(path).count(),
        None => generate(records, &path),
    };
    let bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    println!(
        "stream: {written} records, {:.1} MB ({})",
        bytes as f64 / 1e6,
        path.display()
    );

    let (parse_seconds, parse_cpu, parsed) = best_of(runs, || parse_only(&path));
    let (replay_seconds, replay_cpu, replayed) = best_of(runs, || run_replay(&path, &flows_path));
    if stream_file.is_none() {
        assert_eq!(replayed as usize, written);
    } else if replayed as usize != written {
        // Lines replay could not read are reported on its stderr and skipped.
        println!("replay read {replayed} of the {written} lines as records");
    }
    let parse_rate = parsed as f64 / parse_seconds;
    let replay_rate = written as f64 / replay_seconds;
    println!("parse-only baseline: {:>10.0} records/s", parse_rate);
    println!("replay:              {:>10.0} records/s", replay_rate);
    println!(
        "replay / parse-only: {:>10.2}   (target >= 0.50)",
        replay_rate / parse_rate
    );
    // Replay reads, runs the engine and writes on three threads when it has the cores; the
    // CPU it spends per record, all threads together, against the baseline's.
    let micros = |seconds: f64| seconds * 1e6 / written as f64;
    println!(
        "cpu per record:      {:>10.2} us replay, {:.2} us parse-only ({:.2} x; 10 ms ticks)",
        micros(replay_cpu),
        micros(parse_cpu),
        replay_cpu / parse_cpu.max(0.01)
    );
    if stream_file.is_none() && !args.iter().any(|arg| arg == "--keep") {
        let _ = std::fs::remove_file(&path);
    }

    let child = std::process::Command::new(&args[0])
        .args(["--memory-only", &instances.to_string()])
        .output()
        .expect("run the memory measurement in a child process");
    let figures = String::from_utf8_lossy(&child.stdout);
    let mut figures = figures
        .split_whitespace()
        .map(|figure| figure.parse::<f64>().unwrap_or(f64::NAN));
    let (heap, rss) = (
        figures.next().unwrap_or(f64::NAN),
        figures.next().unwrap_or(f64::NAN),
    );
    println!("open instances:      {instances}");
    println!("heap per instance:   {heap:>10.0} bytes (target <= 300)");
    println!("rss per instance:    {rss:>10.0} bytes (target <= 300)");
}
