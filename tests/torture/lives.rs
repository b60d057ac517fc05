//! One life of the daemon under test: `flowwatch run` started as a child process, its log
//! followed for assignments and checkpoints, stopped or killed, and the group's committed offsets.

use super::*;

/// One life of the daemon: its process, and what its log said so far.
pub(crate) struct Life {
    pub(crate) child: Child,
    pub(crate) assigned: Arc<AtomicBool>,
    pub(crate) checkpoints: Arc<AtomicU64>,
    pub(crate) revoked: Arc<AtomicBool>,
    pub(crate) log_reader: std::thread::JoinHandle<()>,
}

/// Starts `flowwatch run` with this environment; its log (JSON lines) is appended to `log`.
pub(crate) fn start_daemon(env: &[(String, String)], log: &std::fs::File, life: usize) -> Life {
    let mut child = Command::new(env!("CARGO_BIN_EXE_flowwatch"))
        .arg("run")
        .envs(env.iter().cloned())
        .env("FLOWWATCH_LOG_FORMAT", "json")
        .env(
            "RUST_LOG",
            std::env::var("TORTURE_RUST_LOG").unwrap_or_else(|_| "info,flowwatch::daemon::worker=debug,librdkafka=debug".to_string()),
        )
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("flowwatch run starts");
    let stderr = child.stderr.take().expect("piped stderr");
    let assigned = Arc::new(AtomicBool::new(false));
    let checkpoints = Arc::new(AtomicU64::new(0));
    let revoked = Arc::new(AtomicBool::new(false));
    let mut log = log.try_clone().expect("log file");
    let log_reader = {
        let (assigned, checkpoints, revoked) = (assigned.clone(), checkpoints.clone(), revoked.clone());
        std::thread::spawn(move || {
            let _ = writeln!(log, "=== life {life} ===");
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if line.contains("Partition assigned.") {
                    assigned.store(true, Ordering::Relaxed);
                } else if line.contains("Checkpoint written.") {
                    checkpoints.fetch_add(1, Ordering::Relaxed);
                } else if line.contains("Record dead-lettered.") {
                    continue;
                } else if line.contains("Partitions were revoked") {
                    revoked.store(true, Ordering::Relaxed);
                }
                let _ = writeln!(log, "{line}");
            }
        })
    };
    Life {
        child,
        assigned,
        checkpoints,
        revoked,
        log_reader,
    }
}

/// The last lines of the log, for failure messages.
pub(crate) fn log_tail(path: &std::path::Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// The positions the daemon committed to Kafka after its checkpoints (for the report).
pub(crate) fn committed(brokers: &str, group: &str, input_topics: &[String]) -> i64 {
    match kafka_support::committed_offsets(brokers, group, input_topics, INPUT_PARTITIONS) {
        Ok(offsets) => offsets.iter().filter_map(|(_, _, offset)| *offset).sum(),
        Err(_) => -1,
    }
}

/// Sends SIGTERM and waits for exit 0 (the shutdown promise: within 10 s).
pub(crate) fn stop(life: Life) {
    let Life { mut child, log_reader, .. } = life;
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success(), "could not signal the daemon");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if started.elapsed() > Duration::from_secs(15) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("flowwatch run did not stop within 15 s of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let _ = log_reader.join();
    assert!(status.success(), "flowwatch run exited with {status} after SIGTERM");
}
