//! Configuration tests: the shipped example loads, overrides work, every problem is named.

use super::*;

fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect()
}

fn write(text: &str) -> (tempfile_dir::Dir, PathBuf) {
    let dir = tempfile_dir::Dir::new();
    let path = dir.path().join("flowwatch.toml");
    std::fs::write(&path, text).unwrap();
    (dir, path)
}

/// A throwaway directory under the target dir (no extra crate needed for two files).
mod tempfile_dir {
    use std::path::{Path, PathBuf};
    use std::sync::atomic::{AtomicU32, Ordering};

    pub struct Dir(PathBuf);

    impl Dir {
        pub fn new() -> Dir {
            static NEXT: AtomicU32 = AtomicU32::new(0);
            let path = std::env::temp_dir().join(format!(
                "flowwatch-config-test-{}-{}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            ));
            std::fs::create_dir_all(&path).unwrap();
            Dir(path)
        }
        pub fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

#[test]
fn the_shipped_example_loads() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/flowwatch.toml");
    let config = load(Some(&path), &HashMap::new()).unwrap();
    assert_eq!(config.kafka.brokers, "127.0.0.1:9092");
    assert_eq!(config.kafka.group_id, "flowwatch");
    assert_eq!(config.tracking.allowed_lateness, 5_000);
    assert_eq!(config.tracking.action_horizon, 3_600_000);
    assert_eq!(config.outputs.signals_topic.as_deref(), Some("flowwatch.signals"));
}

#[test]
fn environment_overrides_nested_keys_and_sets_kafka_properties() {
    let (_dir, path) = write("[kafka]\nbrokers = \"a:1\"\n[kafka.properties]\n\"client.id\" = \"x\"\n");
    let config = load(
        Some(&path),
        &env(&[
            ("FLOWWATCH__KAFKA__BROKERS", "b:2"),
            ("FLOWWATCH__TRACKING__ALLOWED_LATENESS", "10s"),
            ("FLOWWATCH__OUTPUTS__ALERTS_TOPIC", ""),
            ("FLOWWATCH_KAFKA_PROPERTY_SASL_PASSWORD", "hunter2"),
            ("FLOWWATCH_KAFKA_PROPERTY_SSL_KEYSTORE__TYPE", "PKCS12"),
            ("UNRELATED", "1"),
        ]),
    )
    .unwrap();
    assert_eq!(config.kafka.brokers, "b:2");
    assert_eq!(config.tracking.allowed_lateness, 10_000);
    assert_eq!(config.outputs.alerts_topic, None);
    assert_eq!(config.kafka.properties["client.id"], "x");
    assert_eq!(config.kafka.properties["sasl.password"], "hunter2");
    assert_eq!(config.kafka.properties["ssl.keystore_type"], "PKCS12");
}

#[test]
fn unknown_keys_are_errors_that_name_the_key() {
    let (_dir, path) = write("[kafka]\nbrokers = \"a:1\"\nbrokerz = \"b\"\n");
    let error = load(Some(&path), &HashMap::new()).unwrap_err().to_string();
    assert!(error.contains("brokerz"), "{error}");
    assert!(error.contains("remove the key"), "{error}");
}

#[test]
fn every_problem_is_reported_at_once() {
    let (_dir, path) = write(
        "[kafka]\nstart_from = \"yesterday\"\n[kafka.properties]\n\"group.id\" = \"g\"\n\
         [tracking]\nallowed_lateness = \"soon\"\n[http]\nlisten = \"nowhere\"\n[state]\nbackend = \"rocks\"\n",
    );
    let error = load(Some(&path), &HashMap::new()).unwrap_err();
    let keys: Vec<&str> = error.problems.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "tracking.allowed_lateness",
            "kafka.brokers",
            "kafka.start_from",
            "kafka.properties.group.id",
            "state.backend",
            "http.listen"
        ]
    );
    assert!(error.to_string().contains("set kafka.group_id"));
}

#[test]
fn secrets_never_print() {
    let (_dir, path) = write(
        "[kafka]\nbrokers = \"a:1\"\n[kafka.properties]\n\"sasl.password\" = \"hunter2\"\n\
         [http]\noperator_token = \"0123456789abcdef-secret\"\n",
    );
    let config = load(Some(&path), &HashMap::new()).unwrap();
    for shown in [config.to_redacted_json(), format!("{config:?}")] {
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(!shown.contains("0123456789abcdef-secret"), "{shown}");
        assert!(shown.contains("<redacted>"), "{shown}");
    }
}

#[test]
fn kafka_property_names_follow_the_confluent_convention() {
    assert_eq!(kafka_property_from_env("SASL_MECHANISMS"), "sasl.mechanisms");
    assert_eq!(kafka_property_from_env("SSL_KEYSTORE__TYPE"), "ssl.keystore_type");
    assert_eq!(kafka_property_from_env("A___B"), "a-b");
}

#[test]
fn errors_never_quote_a_secret() {
    let cases = [
        // A TOML syntax error quotes the offending line.
        "[http]\noperator_token = \"0123456789abcdef-unterminated\n",
        "[kafka.properties]\n\"sasl.password\" = hunter2-bare-word\n",
        // An inline table with a syntax error after the secret.
        "[kafka]\nbrokers = \"a:1\"\nproperties = { \"ssl.key.password\" = 'hunter2-in-inline', x = }\n",
        // The wrong type.
        "[kafka.properties]\n\"sasl.password\" = [\"hunter2-in-array\"]\n",
        "[http]\noperator_token = { value = \"hunter2-in-table\" }\n",
    ];
    for text in cases {
        let (_dir, path) = write(text);
        let error = load(Some(&path), &HashMap::new()).unwrap_err().to_string();
        assert!(!error.contains("hunter2"), "{error}");
        assert!(!error.contains("0123456789abcdef"), "{error}");
    }
    // Values from the environment, with a problem elsewhere.
    let error = load(
        None,
        &env(&[
            ("FLOWWATCH__HTTP__OPERATOR_TOKEN", "short-hunter2"),
            ("FLOWWATCH_KAFKA_PROPERTY_SASL_PASSWORD", "hunter2-env"),
            ("FLOWWATCH__TRACKING__RETENTION", "hunter2-env"),
        ]),
    )
    .unwrap_err()
    .to_string();
    assert!(error.contains("http.operator_token"), "{error}");
    assert!(!error.contains("hunter2"), "{error}");
}

#[test]
fn secret_literals_are_read_as_written() {
    assert_eq!(secret_literal("\"abc\" # note"), "abc");
    assert_eq!(secret_literal("'a\"b'"), "a\"b");
    assert_eq!(secret_literal("\"unterminated"), "unterminated");
    assert_eq!(secret_literal("bare, x = 1 }"), "bare");
    assert_eq!(secret_literal("[\"in-array\"]"), "in-array");
}
