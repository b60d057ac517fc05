//! Storage faults under the running daemon (the store layer alone is tested in
//! `store::space`): the state directory fills up while records arrive, the daemon is started
//! on a read-only or a corrupt state directory. The device is a small tmpfs the test mounts
//! (root, as in CI); where mounting is not permitted the tmpfs tests say so and return.

use super::*;
use crate::kafka_support::*;
use flowwatch::clock::{Clock, ManualClock, SystemClock};
use flowwatch::daemon::{self, checkpoint};
use flowwatch::http::Health;
use flowwatch::metrics::Metrics;
use flowwatch::store::{self, Backend};
use flowwatch::time::parse_rfc3339;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// A tmpfs mounted on a temporary directory, unmounted on drop.
struct Tmpfs {
    mountpoint: PathBuf,
    _dir: TempDir,
}

impl Tmpfs {
    /// `None` (after saying why) where mounting is not permitted.
    fn mount(size: &str, label: &str) -> Option<Tmpfs> {
        let dir = TempDir::new(label);
        let mountpoint = dir.0.clone();
        let output = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&mountpoint)
            .output();
        match output {
            Ok(output) if output.status.success() => Some(Tmpfs {
                mountpoint,
                _dir: dir,
            }),
            other => {
                eprintln!(
                    "SKIPPED: cannot mount a tmpfs on {} ({other:?}); the daemon storage-fault tests need root (CAP_SYS_ADMIN), as in CI",
                    mountpoint.display()
                );
                None
            }
        }
    }

    fn remount(&self, mode: &str) {
        let status = Command::new("mount")
            .args(["-o", &format!("remount,{mode}")])
            .arg(&self.mountpoint)
            .status()
            .unwrap();
        assert!(status.success(), "remount {mode} failed");
    }
}

impl Drop for Tmpfs {
    /// Unmounts, waiting a little for a daemon that is still stopping (a failed assertion
    /// leaves one running); lazily as a last resort, so no mount outlives the test process.
    fn drop(&mut self) {
        for _ in 0..20 {
            let unmounted = Command::new("umount")
                .arg(&self.mountpoint)
                .stderr(std::process::Stdio::null())
                .status()
                .is_ok_and(|status| status.success());
            if unmounted {
                return;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        let _ = Command::new("umount").arg("-l").arg(&self.mountpoint).status();
    }
}

/// Cancels the daemon when dropped, so that a failed assertion does not leave it running
/// with its store open on the tmpfs.
struct StopOnDrop(CancellationToken);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

/// Fills the device with a file until it is full.
fn fill(path: &Path) -> std::fs::File {
    let mut filler = std::fs::File::create(path).unwrap();
    let chunk = vec![0u8; 64 * 1024];
    loop {
        match filler.write_all(&chunk) {
            Ok(()) => {}
            Err(error) if error.kind() == std::io::ErrorKind::StorageFull => break,
            Err(error) => panic!("filling the device: {error}"),
        }
    }
    let _ = filler.sync_all();
    filler
}

/// The state directory fills up: checkpoints fail, the daemon reports not ready, stops
/// consuming (records produced now stay unread) and commits no offsets; the store keeps its
/// last complete checkpoint. Space returns: it checkpoints again, becomes ready, resumes, and
/// the signals are those of a fault-free run; the store it leaves opens cleanly. The wall clock
/// (manual) moves with the traffic, so records produced later are on time, not late.
#[test]
fn a_full_state_directory_pauses_the_daemon_until_space_returns() {
    const MINUTE: i64 = 60_000;
    let Some(tmpfs) = Tmpfs::mount("48m", "full") else {
        return;
    };
    if std::env::var("FAULTS_LOG").is_ok() {
        flowwatch::logging::init(false, "info");
    }
    let state = tmpfs.mountpoint.join("state");
    let start = parse_rfc3339("2026-03-02T08:00:00Z").unwrap();
    let all = sim_stream(31, start, 10, 1.5);
    let probe = flowwatch::engine::Engine::new(shipped_flows(), flowwatch::engine::EngineConfig::default());
    let part = |from: i64, to: i64| -> Vec<_> {
        all.iter()
            .filter(|record| (start + from * MINUTE..start + to * MINUTE).contains(&probe.record_time(record)))
            .cloned()
            .collect()
    };
    let (first, second, third) = (part(-60, 4), part(4, 8), part(8, 60));
    assert_eq!(first.len() + second.len() + third.len(), all.len());
    let cluster = mock_cluster(&input_topics());
    let brokers = cluster.bootstrap_servers();
    let mut so_far = Produced::default();
    let mut produced = produce_more(&brokers, &first, &mut so_far);
    let config = test_config(&brokers, &state, "full", &[("FLOWWATCH__TRACKING__ALLOWED_LATENESS", "0")]);
    let engine_config = daemon::engine_config(&config);
    let health = Health::new();
    let cancel = CancellationToken::new();
    let clock = ManualClock::new(start + 4 * MINUTE);
    let running = daemon::start_with(config, shipped_flows(), Arc::new(clock.clone()), cancel.clone(), Metrics::new(), health.clone())
        .expect("daemon starts");
    let _stop = StopOnDrop(cancel.clone());
    let status = running.status.clone();
    let read_up_to = |count: usize| wait_for(Duration::from_secs(30), || status.records_read.load(Ordering::Relaxed) as usize >= count);
    assert!(read_up_to(produced.len()) && status.ready(), "the daemon gets ready and reads the first part");
    produced.extend(produce_more(&brokers, &second, &mut so_far));
    assert!(read_up_to(produced.len()), "reads the second part");
    clock.set(start + 8 * MINUTE);

    let filler_path = tmpfs.mountpoint.join("filler");
    let filler = fill(&filler_path);
    assert!(
        wait_for(Duration::from_secs(30), || !status.store_writable.load(Ordering::Relaxed)),
        "a checkpoint fails on the full device"
    );
    assert!(!status.ready(), "not ready while the store cannot be written");
    assert!(wait_for(Duration::from_secs(10), || !health.readiness().ready), "/readyz says not ready");
    // Paused: what arrives now stays unread; no offsets committed past the last checkpoint.
    std::thread::sleep(Duration::from_millis(700));
    let offsets = committed(&brokers, "full");
    let read = status.records_read.load(Ordering::Relaxed);
    produced.extend(produce_more(&brokers, &third, &mut so_far));
    std::thread::sleep(Duration::from_millis(2_000));
    assert_eq!(committed(&brokers, "full"), offsets, "no offsets committed while the store fails");
    assert_eq!(status.records_read.load(Ordering::Relaxed), read, "consumption paused");
    assert!((read as usize) < produced.len(), "records wait unread ({read} of {})", produced.len());
    assert!(!status.store_writable.load(Ordering::Relaxed), "still failing while full");

    drop(filler);
    std::fs::remove_file(&filler_path).unwrap();
    assert!(
        wait_for(Duration::from_secs(30), || status.store_writable.load(Ordering::Relaxed) && health.readiness().ready),
        "writable and ready again once space returns"
    );
    assert!(read_up_to(produced.len()), "reads the rest");
    let end = start + 86_400_000;
    clock.set(end);
    assert!(settled(&status, produced.len()), "the daemon settles");
    let published = published_signals(&brokers);
    assert_ne!(committed(&brokers, "full"), offsets, "offsets are committed again");
    cancel.cancel();
    running.join().expect("clean shutdown with a final checkpoint");
    assert_same_signals(&published, &sorted(replay_sorted_until(&produced, engine_config, end)));
    // Nothing half-written: the store opens and its checkpoint loads, outbox drained.
    let store = store::open(Backend::Redb, &state).expect("the store opens");
    let restored = checkpoint::load(&*store).expect("the checkpoint loads");
    assert!(restored.snapshot.is_some());
    assert!(restored.outbox.is_empty(), "{} records left in the outbox", restored.outbox.len());
}

/// Runs `flowwatch run` on a state directory, for at most 20 s; (exit code, stderr).
fn run_binary(brokers: &str, state: &Path, group: &str) -> (Option<i32>, String) {
    let child = Command::new(env!("CARGO_BIN_EXE_flowwatch"))
        .arg("run")
        .env("FLOWWATCH__KAFKA__BROKERS", brokers)
        .env("FLOWWATCH__KAFKA__GROUP_ID", group)
        .env("FLOWWATCH__FLOWS__DIR", root().join("flows"))
        .env("FLOWWATCH__STATE__DIR", state)
        .env("FLOWWATCH__HTTP__LISTEN", "127.0.0.1:0")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("flowwatch runs");
    let mut child = child;
    let started = std::time::Instant::now();
    while child.try_wait().expect("wait").is_none() {
        if started.elapsed() > Duration::from_secs(20) {
            // It should have stopped by itself long before.
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let output = child.wait_with_output().expect("flowwatch ends");
    (output.status.code(), String::from_utf8_lossy(&output.stderr).into_owned())
}

/// A state directory written by a short run, then stopped.
fn checkpointed_state(brokers: &str, state: &Path, group: &str) {
    let config = test_config(brokers, state, group, &[]);
    let cancel = CancellationToken::new();
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let running = daemon::start(config, shipped_flows(), clock, cancel.clone()).expect("daemon starts");
    let _stop = StopOnDrop(cancel.clone());
    let status = running.status.clone();
    assert!(wait_for(Duration::from_secs(30), || status.checkpoints.load(Ordering::Relaxed) > 2 && status.records_read.load(Ordering::Relaxed) > 0));
    cancel.cancel();
    running.join().expect("clean shutdown");
}

/// A corrupt store file stops `flowwatch run` at start: exit code 1, an error naming the store
/// as corrupt and what to do, and the damaged file left as it was (never replaced by an empty
/// store).
#[test]
fn a_corrupt_store_stops_flowwatch_run_at_start() {
    let cluster = mock_cluster(&input_topics());
    let brokers = cluster.bootstrap_servers();
    produce(&brokers, &example_records("checkout-day.jsonl"));
    let state = TempDir::new("corrupt");
    checkpointed_state(&brokers, &state.0, "corrupt");
    let file = std::fs::read_dir(&state.0)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .find(|path| path.extension().is_some_and(|extension| extension == "redb"))
        .expect("a redb file in the state directory");
    let mut bytes = std::fs::read(&file).unwrap();
    assert!(bytes.len() > 16_384, "the store file is {} bytes", bytes.len());
    // Spare the header, so the damage is found by checksums, not by magic numbers.
    for block in (8192..bytes.len()).step_by(4096 * 3) {
        let end = (block + 4096).min(bytes.len());
        bytes[block..end].fill(0xa5);
    }
    std::fs::write(&file, &bytes).unwrap();
    let (code, stderr) = run_binary(&brokers, &state.0, "corrupt");
    assert_eq!(code, Some(1), "exit code; stderr:\n{stderr}");
    assert!(stderr.contains("is corrupt"), "{stderr}");
    assert!(stderr.contains("restore the state directory from a backup"), "{stderr}");
    assert_eq!(std::fs::read(&file).unwrap(), bytes, "the damaged store is left as it was");
}

/// `flowwatch run` on a state directory that turned read-only stops at start with exit code 1
/// and an error that says the store cannot be written; once the device is writable again it
/// starts and goes on from the checkpoint. (A device cannot be remounted read-only while the
/// daemon holds its store open for writing: the kernel refuses with EBUSY, so a running daemon
/// meets a read-only device only as failed writes, like the full device above.)
#[test]
fn a_read_only_state_directory_stops_flowwatch_run_until_writable() {
    let Some(tmpfs) = Tmpfs::mount("16m", "ro") else {
        return;
    };
    let cluster = mock_cluster(&input_topics());
    let brokers = cluster.bootstrap_servers();
    produce(&brokers, &example_records("checkout-day.jsonl"));
    let state = tmpfs.mountpoint.join("state");
    checkpointed_state(&brokers, &state, "ro");
    tmpfs.remount("ro");
    let (code, stderr) = run_binary(&brokers, &state, "ro");
    assert_eq!(code, Some(1), "exit code; stderr:\n{stderr}");
    assert!(stderr.contains("cannot be written"), "{stderr}");
    tmpfs.remount("rw");
    let config = test_config(&brokers, &state, "ro", &[]);
    let cancel = CancellationToken::new();
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let running = daemon::start(config, shipped_flows(), clock, cancel.clone()).expect("starts once writable");
    let _stop = StopOnDrop(cancel.clone());
    assert!(!running.summary.contains(" 0 partitions with positions"), "resumed from the checkpoint: {}", running.summary);
    let status = running.status.clone();
    assert!(wait_for(Duration::from_secs(30), || status.ready()), "ready");
    cancel.cancel();
    running.join().expect("clean shutdown");
}
