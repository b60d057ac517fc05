//! Secrets never leave the process: the operator token and Kafka passwords given in the file or
//! the environment appear neither in `flowwatch config print` / `config check`, nor in the
//! errors of an invalid configuration (including a TOML syntax error on the secret's own line),
//! nor in the log lines of `flowwatch run` at debug level. Everything runs the built binary;
//! every wait is bounded.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const TOKEN: &str = "operator-token-5b1e0c7d9a2f4e68";
const SASL: &str = "sasl-password-c4d2e9f1";
const KEY_PASSWORD: &str = "ssl-key-password-a8b7c6";
const CLIENT_SECRET: &str = "oauth-client-secret-3e4f5a";
const ENV_PASSWORD: &str = "keystore-password-from-env-9d8c";
const SHORT_TOKEN: &str = "tiny-tok3n";

const SECRETS: [&str; 6] = [TOKEN, SASL, KEY_PASSWORD, CLIENT_SECRET, ENV_PASSWORD, SHORT_TOKEN];

fn flows_dir() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("flows").display().to_string()
}

/// A configuration file with every kind of secret, plus `extra` lines at the end.
fn config_text(extra: &str) -> String {
    format!(
        "[kafka]\nbrokers = \"127.0.0.1:1\"\n\
         [kafka.properties]\n\
         \"security.protocol\" = \"SASL_PLAINTEXT\"\n\"sasl.mechanism\" = \"PLAIN\"\n\
         \"sasl.username\" = \"flowwatch\"\n\"sasl.password\" = \"{SASL}\"\n\
         \"ssl.key.password\" = \"{KEY_PASSWORD}\"\n\
         \"sasl.oauthbearer.client.secret\" = \"{CLIENT_SECRET}\"\n\
         [flows]\ndir = {flows:?}\n\
         [state]\nbackend = \"memory\"\n\
         [http]\nlisten = \"127.0.0.1:0\"\noperator_token = \"{TOKEN}\"\n\
         [log]\nlevel = \"debug\"\n{extra}",
        flows = flows_dir()
    )
}

/// Runs `flowwatch ARGS` with the file and the environment's secret: (exit code, stdout + stderr).
fn flowwatch(args: &[&str], file_text: &str, env: &[(&str, &str)]) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("flowwatch.toml");
    std::fs::write(&path, file_text).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_flowwatch"))
        .args(args)
        .arg("--config")
        .arg(&path)
        .env("FLOWWATCH_KAFKA_PROPERTY_SSL_KEYSTORE_PASSWORD", ENV_PASSWORD)
        .envs(env.iter().copied())
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .output()
        .expect("the flowwatch binary runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.code().unwrap_or(-1), text)
}

fn assert_no_secret(what: &str, text: &str) {
    for secret in SECRETS {
        assert!(!text.contains(secret), "{what} shows the secret {secret:?}:\n{text}");
    }
}

#[test]
fn config_print_and_check_show_no_secret() {
    let (code, printed) = flowwatch(&["config", "print"], &config_text(""), &[]);
    assert_eq!(code, 0, "{printed}");
    assert_no_secret("config print", &printed);
    assert_eq!(printed.matches("<redacted>").count(), 5, "token, 3 file passwords, 1 from the environment:\n{printed}");
    assert!(printed.contains("\"sasl.username\": \"flowwatch\""), "non-secrets are shown:\n{printed}");
    // Without the OIDC client secret, which this build's librdkafka refuses (below).
    let accepted = config_text("").replace(&format!("\"sasl.oauthbearer.client.secret\" = \"{CLIENT_SECRET}\"\n"), "");
    let (code, checked) = flowwatch(&["config", "check"], &accepted, &[]);
    assert_eq!(code, 0, "{checked}");
    assert!(checked.contains("configuration ok"), "{checked}");
    assert_no_secret("config check", &checked);
}

/// Extra environment variables of a case.
type Env = Vec<(&'static str, &'static str)>;

#[test]
fn invalid_configurations_name_the_key_but_never_show_a_secret() {
    let cases: Vec<(&str, String, Env)> = vec![
        ("several invalid values", config_text("[tracking]\nretention = \"forever\"\n"), vec![]),
        ("a short token", config_text("").replace(TOKEN, SHORT_TOKEN), vec![]),
        ("a short token from the environment", config_text(""), vec![("FLOWWATCH__HTTP__OPERATOR_TOKEN", SHORT_TOKEN)]),
        (
            "a TOML syntax error on the token's line",
            config_text("").replace(&format!("\"{TOKEN}\""), &format!("\"{TOKEN}")),
            vec![],
        ),
        (
            "a TOML syntax error on the password's line",
            config_text("").replace(&format!("= \"{SASL}\""), &format!("= {SASL}")),
            vec![],
        ),
        (
            "a password of the wrong type",
            config_text("").replace(&format!("\"{SASL}\""), &format!("[\"{SASL}\"]")),
            vec![],
        ),
        ("a misspelt secret key", config_text("").replace("operator_token", "operator_tokn"), vec![]),
        ("a property the daemon owns", config_text("").replace("\"sasl.username\"", "\"group.id\""), vec![]),
    ];
    for (case, text, env) in cases {
        for command in [&["config", "check"][..], &["config", "print"][..], &["run"][..]] {
            let (code, output) = flowwatch(command, &text, &env);
            assert_eq!(code, 1, "{case}: {command:?} must fail:\n{output}");
            assert!(output.contains("error"), "{case}: {output}");
            assert_no_secret(&format!("{case}: {command:?}"), &output);
        }
    }
}

/// librdkafka refuses a property with its value in the message (here the OIDC client secret,
/// which needs a build with libcurl); the daemon's error names the property, not the value.
/// `config check` creates the Kafka clients as `run` does, so it refuses the same.
#[test]
fn a_refused_kafka_property_does_not_show_its_value() {
    for command in [&["run"][..], &["config", "check"][..]] {
        let (code, output) = flowwatch(command, &config_text(""), &[]);
        assert_eq!(code, 1, "{command:?}: {output}");
        assert!(output.contains("sasl.oauthbearer.client.secret"), "{command:?}: the property is named:\n{output}");
        assert!(output.contains("<redacted>"), "{command:?}: {output}");
        assert_no_secret(&format!("the refusal by {command:?}"), &output);
    }
}

/// What librdkafka refuses only when a client is created (a CA file that is not there, a SASL
/// mechanism this build lacks) fails `config check` as it fails `run`'s start, naming it.
#[test]
fn config_check_refuses_client_settings_that_run_would_refuse() {
    let accepted = config_text("").replace(&format!("\"sasl.oauthbearer.client.secret\" = \"{CLIENT_SECRET}\"\n"), "");
    let cases = [
        (
            "a CA file that is not there",
            accepted.replace("\"SASL_PLAINTEXT\"", "\"SASL_SSL\"\n\"ssl.ca.location\" = \"/nonexistent/ca.pem\""),
            "ssl.ca.location",
        ),
        ("a mechanism this build lacks", accepted.replace("\"PLAIN\"", "\"GSSAPI\""), "GSSAPI"),
    ];
    for (case, text, named) in cases {
        for command in [&["config", "check"][..], &["run"][..]] {
            let (code, output) = flowwatch(command, &text, &[]);
            assert_eq!(code, 1, "{case}: {command:?} must fail:\n{output}");
            assert!(output.contains(named), "{case}: {command:?} names {named}:\n{output}");
            assert_no_secret(&format!("{case}: {command:?}"), &output);
        }
    }
}

/// `flowwatch run` at debug level against a closed port: the startup lines, librdkafka's
/// connection errors and the shutdown lines show no secret.
#[test]
fn run_logs_show_no_secret() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("flowwatch.toml");
    // Without the OIDC client secret, which this build refuses (see above).
    let text = config_text("").replace(&format!("\"sasl.oauthbearer.client.secret\" = \"{CLIENT_SECRET}\"\n"), "");
    assert!(!text.contains(CLIENT_SECRET));
    std::fs::write(&path, text).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_flowwatch"))
        .args(["run", "--config"])
        .arg(&path)
        .env("FLOWWATCH_KAFKA_PROPERTY_SSL_KEYSTORE_PASSWORD", ENV_PASSWORD)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the flowwatch binary starts");
    let (lines, received) = mpsc::channel::<String>();
    for stream in [
        Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
        Box::new(child.stderr.take().unwrap()),
    ] {
        let lines = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                let _ = lines.send(line);
            }
        });
    }
    drop(lines);
    let mut log = Vec::new();
    // Until the started line, then 3 s more for librdkafka to try (and fail) to connect.
    let mut started = false;
    let mut quiet_after_start = 0;
    while quiet_after_start < 30 {
        match received.recv_timeout(Duration::from_millis(100)) {
            Ok(line) => {
                started |= line.contains("flowwatch started");
                log.push(line);
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {}
        }
        if started {
            quiet_after_start += 1;
        } else if log.len() > 10_000 {
            break;
        }
        if !started && child.try_wait().unwrap().is_some() {
            break;
        }
    }
    let pid = child.id().to_string();
    let _ = Command::new("kill").args(["-TERM", &pid]).status();
    let mut stopped = false;
    for _ in 0..300 {
        if child.try_wait().unwrap().is_some() {
            stopped = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    if !stopped {
        let _ = child.kill();
        let _ = child.wait();
    }
    while let Ok(line) = received.recv_timeout(Duration::from_secs(2)) {
        log.push(line);
    }
    let log = log.join("\n");
    assert!(started, "the daemon started:\n{log}");
    assert!(stopped, "the daemon stopped on SIGTERM:\n{log}");
    assert!(log.contains("DEBUG") || log.contains("debug"), "debug lines were logged:\n{log}");
    assert!(log.contains("127.0.0.1:1"), "librdkafka's connection errors were logged:\n{log}");
    assert_no_secret("the logs of flowwatch run", &log);
}
