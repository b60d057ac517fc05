//! TLS and SASL against a real broker (issue 7), configured as the documentation shows
//! (`SASL_SSL`, `SCRAM-SHA-512`, the CA file): this test starts its own tansu
//! (`FLOWWATCH_E2E_TANSU`, set by `scripts/e2e-tansu.sh`) on SQLite storage, fills the topics
//! and creates a SCRAM user while it is open, then restarts it requiring authentication behind
//! a TLS proxy (`tls_proxy.rs`), which tansu advertises. A client without TLS is refused, and
//! one that does not trust the test CA; `flowwatch run` with a wrong password gets nowhere,
//! says so in its log and in `/readyz` (503, the SASL error quoted) and never shows the
//! password; with the right one (the security
//! settings in the configuration file, the password from the environment, as docs/daemon.md
//! shows) it reads, tracks and publishes what a time-sorted replay gives (read back through
//! TLS with the same credentials).

use super::*;
use rdkafka::consumer::BaseConsumer;
use restart::tansu_binary;
use tansu::Broker;
use tls_proxy::{Certificates, TlsProxy};

const USER: &str = "flowwatch";
const PASSWORD: &str = "scram-pass-41c9e7-never-logged";
const WRONG_PASSWORD: &str = "wrong-pass-8d02b5-never-logged";
const SIM_DURATION_HERE: &str = "20m";
/// How long a client that should be refused is given to get the metadata anyway.
const REFUSED_WITHIN: Duration = Duration::from_secs(3);

/// The client settings for SCRAM-SHA-512 over TLS, trusting the CA in `ca_file`.
fn sasl_ssl(password: &str, ca_file: &str) -> [(&'static str, String); 5] {
    [
        ("security.protocol", "sasl_ssl".to_string()),
        ("sasl.mechanism", "SCRAM-SHA-512".to_string()),
        ("sasl.username", USER.to_string()),
        ("sasl.password", password.to_string()),
        ("ssl.ca.location", ca_file.to_string()),
    ]
}

/// Whether a client with these `properties` gets the cluster's metadata within `limit`.
fn metadata_with(brokers: &str, properties: &[(&str, &str)], limit: Duration) -> bool {
    let mut config = ClientConfig::new();
    for (name, value) in properties {
        config.set(*name, *value);
    }
    let consumer: BaseConsumer = config
        .set("bootstrap.servers", brokers)
        .set("group.id", "e2e-security-probe")
        .create()
        .expect("consumer");
    consumer.fetch_metadata(None, limit).is_ok()
}

/// `flowwatch run` configured as docs/daemon.md shows: the security properties in the
/// configuration file's `[kafka.properties]`, the password from the environment
/// (`FLOWWATCH_KAFKA_PROPERTY_SASL_PASSWORD`); logging to `log_path`.
fn run_daemon(env: &[(String, String)], password: &str, ca_file: &str, log_path: &std::path::Path) -> Child {
    let log = std::fs::File::create(log_path).expect("log file");
    let config_path = log_path.with_extension("toml");
    let config = format!(
        r#"[kafka.properties]
"security.protocol" = "SASL_SSL"
"sasl.mechanism" = "SCRAM-SHA-512"
"sasl.username" = "{USER}"
"ssl.ca.location" = {ca_file:?}
"#
    );
    std::fs::write(&config_path, config).expect("configuration file");
    Command::new(env!("CARGO_BIN_EXE_flowwatch"))
        .args(["run", "--config", config_path.to_str().expect("UTF-8 path")])
        .envs(env.iter().cloned())
        .env("FLOWWATCH_KAFKA_PROPERTY_SASL_PASSWORD", password)
        .env("RUST_LOG", std::env::var("FLOWWATCH_E2E_LOG").unwrap_or_else(|_| "info".to_string()))
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log file"))
        .stderr(log)
        .spawn()
        .expect("flowwatch run starts")
}

/// `/readyz` of a daemon listening on `address`: (status line, body).
fn readiness(address: &str) -> (String, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(address).expect("connect to the daemon");
    stream.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    write!(stream, "GET /readyz HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n").expect("request");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("response");
    let status = response.lines().next().unwrap_or_default().to_string();
    let body = response.split("\r\n\r\n").nth(1).unwrap_or_default().to_string();
    (status, body)
}

#[test]
fn the_daemon_works_over_tls_with_scram_and_a_wrong_password_or_ca_gets_nowhere() {
    let started = Instant::now();
    let storage = TempDir::new("e2e-security-tansu");
    let mut broker = Broker::new(tansu_binary(), storage.0.clone(), "sqlite://tansu.db");
    broker.start();
    let brokers = broker.address();
    let Filled { records, undecodable, .. } = fill_topics(&brokers, SIM_DURATION_HERE);
    broker.create_user(USER, PASSWORD, "scram512");
    broker.stop("TERM");
    // From now on the broker is reached through TLS only, and requires authentication.
    let certificates = Certificates::new();
    let proxy = TlsProxy::start(&certificates, brokers.clone());
    broker.advertised_port = Some(proxy.port);
    broker.authentication = true;
    broker.start();
    let brokers = format!("127.0.0.1:{}", proxy.port);
    let state = TempDir::new("e2e-security");
    let ca_path = state.0.join("ca.pem");
    std::fs::write(&ca_path, certificates.ca_pem()).expect("CA file");
    let ca_file = ca_path.to_str().expect("UTF-8 path").to_string();
    let settings = sasl_ssl(PASSWORD, &ca_file);
    let settings: Vec<(&str, &str)> = settings.iter().map(|(name, value)| (*name, value.as_str())).collect();
    assert!(metadata_with(&brokers, &settings, Duration::from_secs(30)), "a client with the CA and the credentials gets in");
    assert!(!metadata_with(&brokers, &[], REFUSED_WITHIN), "a client without TLS is refused");
    let untrusting: Vec<(&str, &str)> = settings.iter().copied().filter(|(name, _)| *name != "ssl.ca.location").collect();
    assert!(!metadata_with(&brokers, &untrusting, REFUSED_WITHIN), "a client that does not trust the CA gets nowhere");
    let plain_sasl: Vec<(&str, &str)> = [("security.protocol", "sasl_plaintext")]
        .into_iter()
        .chain(settings.iter().copied().filter(|(name, _)| *name != "security.protocol"))
        .collect();
    assert!(!metadata_with(&brokers, &plain_sasl, REFUSED_WITHIN), "the credentials without TLS are refused");

    let env = daemon_env(&brokers, "flowwatch-e2e-security", &state.0, &[]);
    let config = config::load(None, &env.iter().cloned().collect()).expect("configuration is valid");
    let expected = kafka_support::sorted(replay_sorted(&records, daemon::engine_config(&config)));

    // A wrong password: refused, said in the log and by /readyz, the password itself nowhere.
    let wrong_log = state.0.join("wrong.log");
    let http = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .to_string();
    let wrong_env: Vec<(String, String)> =
        env.iter().cloned().chain([("FLOWWATCH__HTTP__LISTEN".to_string(), http.clone())]).collect();
    let mut daemon = run_daemon(&wrong_env, WRONG_PASSWORD, &ca_file, &wrong_log);
    let waiting = Instant::now();
    loop {
        let text = std::fs::read_to_string(&wrong_log).unwrap_or_default();
        if text.to_lowercase().contains("authentication") {
            break;
        }
        assert!(
            waiting.elapsed() < Duration::from_secs(60),
            "no authentication error logged within 60 s; the log:\n{text}"
        );
        if let Some(status) = daemon.try_wait().expect("wait") {
            panic!("flowwatch run exited: {status}; its log:\n{text}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    // The worker copies the consumer's last error into the readiness report every second.
    let waiting = Instant::now();
    let (status, body) = loop {
        let (status, body) = readiness(&http);
        if body.contains("authentication") || waiting.elapsed() > Duration::from_secs(15) {
            break (status, body);
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    stop(daemon);
    assert!(status.contains("503"), "not ready: {status}");
    assert!(
        body.contains("no partitions of the flow topics are assigned yet (the Kafka consumer's last error: ")
            && body.contains("SASL authentication"),
        "/readyz says why: {body}"
    );
    assert!(!body.contains(WRONG_PASSWORD), "no password in /readyz: {body}");
    let refused = std::fs::read_to_string(&wrong_log).unwrap_or_default();
    assert!(!refused.contains("Partition assigned."), "no partition without authentication:\n{refused}");
    assert!(!refused.contains(WRONG_PASSWORD), "the password is never logged:\n{refused}");
    let readiness: serde_json::Value = serde_json::from_str(&body).expect("/readyz answers JSON");
    let said = readiness["checks"][0]["detail"].as_str().unwrap_or_default().to_string();

    // The right password: every signal, through authenticated clients only.
    let log_path = state.0.join("daemon.log");
    let mut daemon = run_daemon(&env, PASSWORD, &ca_file, &log_path);
    let published = read_until_quiet_with(
        &brokers,
        &settings,
        SIGNALS,
        expected.len(),
        &mut daemon,
        Duration::from_secs(300),
    );
    stop(daemon);
    let log = std::fs::read_to_string(&log_path).unwrap_or_default();
    assert!(!log.contains(PASSWORD), "the password is never logged");
    let published: Vec<String> = kafka_support::sorted(
        published
            .into_iter()
            .map(|record| String::from_utf8(record.payload).expect("signals are UTF-8"))
            .collect(),
    );
    println!(
        "e2e security: {} records, {} signals expected, {} published; with a wrong password /readyz said: {said}; total {:.1} s",
        records.len() + undecodable.len(),
        expected.len(),
        published.len(),
        started.elapsed().as_secs_f64(),
    );
    assert!(expected.len() > 1_000, "a stream with many signals: {}", expected.len());
    assert_same_signals(&published, &expected);
}
