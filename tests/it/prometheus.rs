//! The metrics against a real Prometheus server: a recorded day is replayed through the engine
//! with the metrics observing it, a small HTTP server on 127.0.0.1 serves the rendered text at
//! `/metrics`, and `scripts/prometheus-test.sh` runs Prometheus against it (scrape, query of
//! the breach counter, dashboard queries, rule evaluation, promtool). Once the daemon serves
//! `/metrics` itself, the same script runs against `flowwatch demo`.

use flowwatch::engine::{Engine, EngineConfig, Input};
use flowwatch::flow::load_dir_or_files;
use flowwatch::metrics::{Metrics, CONTENT_TYPE};
use flowwatch::replay::decode::decode_line;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Metrics after replaying the checkout day to its end (breaches included).
fn replayed_metrics() -> Metrics {
    let report = load_dir_or_files(&[root().join("flows")]);
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    let metrics = Metrics::new();
    metrics.register_flows(&report.flows);
    let mut engine = Engine::new(report.flows, EngineConfig::default());
    let text = std::fs::read_to_string(root().join("tests/examples/checkout-day.jsonl")).unwrap();
    let mut outputs = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let record = decode_line(line, index as u64 + 1).unwrap();
        let before = engine.stats().clone();
        engine.handle(Input::RecordReceived(&record), &mut outputs);
        metrics.observe_record(&record.topic, &before, engine.stats());
        metrics.observe_outputs(&outputs);
        outputs.clear();
    }
    metrics.set_ready(true);
    metrics
}

/// A one-route HTTP/1.1 server on 127.0.0.1 that answers every request with the rendered
/// metrics; stops when dropped.
struct MetricsServer {
    address: String,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl MetricsServer {
    fn start(render: Arc<dyn Fn() -> String + Send + Sync>) -> MetricsServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stopping.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(stream) = stream {
                    // A broken scrape connection only fails that scrape.
                    let _ = answer(stream, &*render);
                }
            }
        });
        MetricsServer {
            address,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(&self.address);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn answer(mut stream: TcpStream, render: &dyn Fn() -> String) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut request = Vec::new();
    let mut buffer = [0u8; 1024];
    while !request.windows(4).any(|window| window == b"\r\n\r\n") {
        let read = stream.read(&mut buffer)?;
        if read == 0 || request.len() > 64 * 1024 {
            return Ok(());
        }
        request.extend_from_slice(&buffer[..read]);
    }
    let body = render();
    write!(
        stream,
        "HTTP/1.1 200 OK\r\nContent-Type: {CONTENT_TYPE}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    stream.flush()
}

#[test]
fn prometheus_scrapes_the_metrics_and_finds_the_breach_counter() {
    let metrics = replayed_metrics();
    assert!(
        metrics.render().contains("flowwatch_breaches_total{"),
        "the replayed day has breaches"
    );
    let server = MetricsServer::start(metrics.renderer());
    let url = format!("http://{}/metrics", server.address);
    let script = root().join("scripts/prometheus-test.sh");
    let output = Command::new("bash")
        .arg(&script)
        .arg(&url)
        .output()
        .expect("bash runs the script");
    drop(server);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{} {url} failed ({}); it needs Debian's prometheus package (it installs it with \
         apt-get when it can: otherwise `sudo apt-get install prometheus`)\nstdout:\n{stdout}\nstderr:\n{stderr}",
        script.display(),
        output.status
    );
    assert!(stdout.contains("flowwatch_breaches_total: "), "{stdout}");
    assert!(stdout.contains("prometheus-test: ok"), "{stdout}");
}
