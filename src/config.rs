//! The daemon's configuration: a TOML file with environment overrides, read in two stages.
//!
//! [`RawConfig`] mirrors the file exactly (unknown keys are errors) and is filled by the
//! `config` crate from the file and from `FLOWWATCH__SECTION__KEY` variables; [`Config`] is the
//! validated, typed form the daemon runs on. Validation reports every problem at once, each
//! naming its key and saying what to fix. Arbitrary librdkafka properties pass through
//! `[kafka.properties]` or `FLOWWATCH_KAFKA_PROPERTY_*` variables (Confluent's convention:
//! `_` is `.`, `__` is `_`, `___` is `-`), except the ones the daemon owns. Secrets (the operator
//! token, passwords) are redacted wherever the configuration is printed.
//!
//! The environment is passed in as a map, so tests never touch the process environment.

use crate::time::{self, Millis};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Environment variables that override file keys start with this (then `SECTION__KEY`).
pub const ENV_PREFIX: &str = "FLOWWATCH";
/// Environment variables that set one librdkafka property start with this.
pub const ENV_KAFKA_PROPERTY_PREFIX: &str = "FLOWWATCH_KAFKA_PROPERTY_";

/// The file as written (see `config/flowwatch.toml` for every key with its meaning).
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// Signals carry `source: flowwatch/NAME`.
    pub instance_name: Option<String>,
    #[serde(default)]
    pub kafka: RawKafka,
    #[serde(default)]
    pub flows: RawFlows,
    #[serde(default)]
    pub state: RawState,
    #[serde(default)]
    pub outputs: RawOutputs,
    #[serde(default)]
    pub http: RawHttp,
    #[serde(default)]
    pub tracking: RawTracking,
    #[serde(default)]
    pub log: RawLog,
}

/// `[kafka]`: where the choreography's topics are and how to read them.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawKafka {
    /// Bootstrap servers, `host:port[,host:port...]`.
    pub brokers: Option<String>,
    /// The consumer group; one daemon owns a group.
    pub group_id: Option<String>,
    /// Where a group with no stored position starts: `earliest`, `latest` or an RFC 3339 time.
    pub start_from: Option<String>,
    /// At most this many records read ahead of the clock are held before partitions pause.
    pub max_held_records: Option<usize>,
    /// The watchdog marks the daemon unhealthy when partitions with lag deliver nothing this long.
    pub watchdog_timeout: Option<String>,
    /// librdkafka properties passed through as they are (SASL, TLS, timeouts...).
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
}

/// `[flows]`: the flow files.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawFlows {
    /// Directory of flow files (or one file).
    pub dir: Option<PathBuf>,
}

/// `[state]`: the durable store.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawState {
    /// Directory of the store (created if missing).
    pub dir: Option<PathBuf>,
    /// `redb` (default), `sled` or `memory` (nothing survives a restart: demos and tests).
    pub backend: Option<String>,
    /// How often the state and the offsets it reflects are checkpointed together.
    pub checkpoint_interval: Option<String>,
}

/// `[outputs]`: where signals, alerts and rejected records go. An empty topic name disables one.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawOutputs {
    /// Every signal.
    pub signals_topic: Option<String>,
    /// Breaches and resolutions that ran an `alert`, keyed by business key.
    pub alerts_topic: Option<String>,
    /// Records that matched a flow event but cannot be used, with the reason in headers.
    pub dead_letter_topic: Option<String>,
    /// Records waiting for the broker's acknowledgement; consumption pauses at this bound.
    pub outbox_limit: Option<usize>,
    /// At shutdown, how long to wait for the outbox to drain.
    pub flush_timeout: Option<String>,
}

/// `[http]`: health, metrics, API and the web page.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawHttp {
    /// Address to listen on, `host:port`.
    pub listen: Option<String>,
    /// Bearer token that operator actions (retry, resolve, cancel) require; none disables them.
    pub operator_token: Option<String>,
}

/// `[tracking]`: the engine's time settings (SPEC 1.3, 1.4).
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawTracking {
    pub allowed_lateness: Option<String>,
    pub orphan_after: Option<String>,
    pub retention: Option<String>,
    /// Breaches older than this (behind the wall clock) while catching up run no actions.
    pub action_horizon: Option<String>,
    /// A record further than this in the future is applied at the wall-clock time.
    pub max_clock_skew: Option<String>,
    /// Events kept per instance for the audit trail of the API (0 keeps none).
    pub history_limit: Option<usize>,
}

/// `[log]`: how the daemon logs.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawLog {
    /// `human` (default) or `json`.
    pub format: Option<String>,
    /// A tracing filter such as `info` or `flowwatch=debug,rdkafka=warn`.
    pub level: Option<String>,
}

/// Where a group with no stored position starts reading.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum StartFrom {
    Earliest,
    Latest,
    /// The first record at or after this time (epoch ms).
    Time(Millis),
}

/// The validated configuration.
#[derive(Clone, Serialize)]
pub struct Config {
    pub instance_name: String,
    pub kafka: KafkaConfig,
    pub flows_dir: PathBuf,
    pub state: StateConfig,
    pub outputs: OutputsConfig,
    pub http: HttpConfig,
    pub tracking: TrackingConfig,
    pub log: LogConfig,
}

#[derive(Clone, Serialize)]
pub struct KafkaConfig {
    pub brokers: String,
    pub group_id: String,
    pub start_from: StartFrom,
    pub max_held_records: usize,
    pub watchdog_timeout: Millis,
    /// Pass-through librdkafka properties, file first, environment overriding.
    #[serde(serialize_with = "serialize_redacted_properties")]
    pub properties: BTreeMap<String, String>,
}

#[derive(Clone, Serialize)]
pub struct StateConfig {
    pub dir: PathBuf,
    pub backend: String,
    pub checkpoint_interval: Millis,
}

#[derive(Clone, Serialize)]
pub struct OutputsConfig {
    pub signals_topic: Option<String>,
    pub alerts_topic: Option<String>,
    pub dead_letter_topic: Option<String>,
    pub outbox_limit: usize,
    pub flush_timeout: Millis,
}

#[derive(Clone, Serialize)]
pub struct HttpConfig {
    pub listen: SocketAddr,
    #[serde(serialize_with = "serialize_redacted_option")]
    pub operator_token: Option<String>,
}

#[derive(Clone, Serialize)]
pub struct TrackingConfig {
    pub allowed_lateness: Millis,
    pub orphan_after: Millis,
    pub retention: Millis,
    pub action_horizon: Millis,
    pub max_clock_skew: Millis,
    pub history_limit: usize,
}

#[derive(Clone, Serialize)]
pub struct LogConfig {
    pub json: bool,
    pub level: String,
}

/// One problem with the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The key, dotted (`kafka.start_from`), or the file.
    pub key: String,
    /// What is wrong and what to do.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

/// Every problem found; the daemon refuses to start with any.
#[derive(Debug, thiserror::Error)]
#[error("{} configuration error(s):\n{}", problems.len(), problems.iter().map(|p| format!("  {p}")).collect::<Vec<_>>().join("\n"))]
pub struct ConfigError {
    pub problems: Vec<Problem>,
}

impl ConfigError {
    /// The same problems with every occurrence of these secret values replaced.
    fn redacted(mut self, secrets: &[String]) -> ConfigError {
        for problem in &mut self.problems {
            for secret in secrets {
                if problem.message.contains(secret.as_str()) {
                    problem.message = problem.message.replace(secret.as_str(), REDACTED);
                }
                if problem.key.contains(secret.as_str()) {
                    problem.key = problem.key.replace(secret.as_str(), REDACTED);
                }
            }
        }
        self
    }

    fn one(key: impl Into<String>, message: impl Into<String>) -> ConfigError {
        ConfigError {
            problems: vec![Problem {
                key: key.into(),
                message: message.into(),
            }],
        }
    }
}

/// librdkafka properties the daemon sets itself, with what to use instead.
const OWNED_PROPERTIES: &[(&str, &str)] = &[
    ("bootstrap.servers", "set kafka.brokers"),
    ("metadata.broker.list", "set kafka.brokers"),
    ("group.id", "set kafka.group_id"),
    ("enable.auto.commit", "offsets are committed after checkpoints"),
    ("enable.auto.offset.store", "offsets are stored after checkpoints"),
    ("auto.offset.reset", "set kafka.start_from"),
    ("enable.partition.eof", "the daemon tracks catch-up itself"),
    ("partition.assignment.strategy", "the daemon uses cooperative-sticky"),
    ("isolation.level", "the daemon reads committed records only"),
    ("transactional.id", "the daemon's publishing is idempotent, not transactional"),
    ("enable.idempotence", "the daemon's producer is always idempotent"),
    ("acks", "the daemon's producer always uses acks=all"),
    ("request.required.acks", "the daemon's producer always uses acks=all"),
];

/// Whether a property name holds a secret (never printed or logged).
pub fn is_secret(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    ["password", "secret", "token", "sasl.jaas", "private.key", "key.pem"]
        .iter()
        .any(|needle| name.contains(needle))
}

const REDACTED: &str = "<redacted>";

fn serialize_redacted_properties<S: serde::Serializer>(
    properties: &BTreeMap<String, String>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    let shown: BTreeMap<&str, &str> = properties
        .iter()
        .map(|(name, value)| {
            let value = if is_secret(name) { REDACTED } else { value.as_str() };
            (name.as_str(), value)
        })
        .collect();
    shown.serialize(serializer)
}

fn serialize_redacted_option<S: serde::Serializer>(
    value: &Option<String>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    value.as_ref().map(|_| REDACTED).serialize(serializer)
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Debug goes through the redacting serializer so that a secret can never be logged.
        match serde_json::to_string(self) {
            Ok(text) => f.write_str(&text),
            Err(_) => f.write_str("Config { .. }"),
        }
    }
}

impl Config {
    /// The effective configuration as TOML-like JSON, secrets redacted (`flowwatch config print`).
    pub fn to_redacted_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
}

/// Reads the file (if any) and the environment, and validates the result.
pub fn load(file: Option<&Path>, env: &HashMap<String, String>) -> Result<Config, ConfigError> {
    let mut builder = config::Config::builder();
    if let Some(path) = file {
        if !path.is_file() {
            return Err(ConfigError::one(
                path.display().to_string(),
                "no such file; pass --config with the path of a TOML file (config/flowwatch.toml is an example)",
            ));
        }
        builder = builder.add_source(
            config::File::from(path.to_path_buf()).format(config::FileFormat::Toml),
        );
    }
    let overrides: HashMap<String, String> = env
        .iter()
        .filter(|(name, _)| name.starts_with(&format!("{ENV_PREFIX}__")))
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect();
    builder = builder.add_source(
        config::Environment::with_prefix(ENV_PREFIX)
            .prefix_separator("__")
            .separator("__")
            .try_parsing(true)
            .source(Some(overrides)),
    );
    let where_ = file
        .map(|path| path.display().to_string())
        .unwrap_or_else(|| "environment".to_string());
    let secrets = secret_values(file, env);
    let raw: RawConfig = builder
        .build()
        .and_then(|built| built.try_deserialize())
        .map_err(|error| {
            ConfigError::one(where_, describe_config_error(&error)).redacted(&secrets)
        })?;
    validate(raw, env).map_err(|error| error.redacted(&secrets))
}

/// The text of a TOML value as written: a quoted string without its quotes (to the end of the
/// line when unterminated), otherwise up to a separator or a comment.
fn secret_literal(value: &str) -> &str {
    let value = value.trim_start_matches(['[', ' ']);
    match value.chars().next() {
        Some(quote @ ('"' | '\'')) => {
            let inner = &value[1..];
            &inner[..inner.find(quote).unwrap_or(inner.len())]
        }
        _ => value[..value.find([',', '}', ']', '#']).unwrap_or(value.len())].trim(),
    }
}

/// The values of secret keys in the file and the environment, as written, so that they can
/// be cut out of error messages (a TOML syntax error quotes the offending line, a type error
/// may quote the value). Found line by line, so a file that does not parse is covered too.
fn secret_values(file: Option<&Path>, env: &HashMap<String, String>) -> Vec<String> {
    let mut values = Vec::new();
    let text = file
        .and_then(|path| std::fs::read(path).ok())
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        .unwrap_or_default();
    for line in text.lines() {
        // Every `name = value` on the line, inline tables included.
        let mut rest = line;
        while let Some(equals) = rest.find('=') {
            let name = rest[..equals].rsplit(['{', ',']).next().unwrap_or_default();
            let value = rest[equals + 1..].trim_start();
            if is_secret(name.trim().trim_matches(['"', '\''])) {
                values.push(value.trim_end().to_string());
                values.push(secret_literal(value).to_string());
            }
            rest = &rest[equals + 1..];
        }
    }
    for (name, value) in env {
        let secret = match name.strip_prefix(ENV_KAFKA_PROPERTY_PREFIX) {
            Some(suffix) => is_secret(&kafka_property_from_env(suffix)),
            None => name.starts_with(ENV_PREFIX) && is_secret(name),
        };
        if secret {
            values.push(value.clone());
        }
    }
    // Longest first, so that a value is cut whole before any shorter value inside it; very
    // short values are left alone (cutting them would garble the message, not hide a secret).
    values.retain(|value| value.chars().count() >= 4);
    values.sort_by_key(|value| std::cmp::Reverse(value.len()));
    values.dedup();
    values
}

/// Turns the `config` crate's error into a sentence that says what to fix.
fn describe_config_error(error: &config::ConfigError) -> String {
    let text = error.to_string();
    if text.contains("unknown field") {
        format!("{text}; remove the key or correct its spelling (config/flowwatch.toml lists every key)")
    } else {
        text
    }
}

/// Stage two: every field checked, every problem collected.
pub fn validate(raw: RawConfig, env: &HashMap<String, String>) -> Result<Config, ConfigError> {
    let mut problems = Vec::new();
    let mut problem = |key: &str, message: String| {
        problems.push(Problem {
            key: key.to_string(),
            message,
        })
    };
    let mut duration = |key: &str, value: Option<String>, default: &str, allow_zero: bool| {
        let text = value.unwrap_or_else(|| default.to_string());
        if allow_zero && text.trim() == "0" {
            return 0;
        }
        match time::parse_duration(&text) {
            Ok(millis) if millis < 0 => {
                problem(key, format!("{text:?} is negative; give a duration such as \"5s\""));
                0
            }
            Ok(millis) => millis,
            Err(error) => {
                problem(key, format!("{error}; give a duration such as \"5s\", \"10m\" or \"7d\""));
                0
            }
        }
    };
    let allowed_lateness = duration("tracking.allowed_lateness", raw.tracking.allowed_lateness, "5s", true);
    let orphan_after = duration("tracking.orphan_after", raw.tracking.orphan_after, "5m", false);
    let retention = duration("tracking.retention", raw.tracking.retention, "7d", true);
    let action_horizon = duration("tracking.action_horizon", raw.tracking.action_horizon, "1h", true);
    let max_clock_skew = duration("tracking.max_clock_skew", raw.tracking.max_clock_skew, "5m", false);
    let watchdog_timeout = duration("kafka.watchdog_timeout", raw.kafka.watchdog_timeout, "60s", false);
    let checkpoint_interval = duration("state.checkpoint_interval", raw.state.checkpoint_interval, "5s", false);
    let flush_timeout = duration("outputs.flush_timeout", raw.outputs.flush_timeout, "5s", true);

    let brokers = raw.kafka.brokers.unwrap_or_default();
    if brokers.trim().is_empty() {
        problem(
            "kafka.brokers",
            "missing; set the bootstrap servers, e.g. brokers = \"localhost:9092\" or FLOWWATCH__KAFKA__BROKERS".to_string(),
        );
    }
    let group_id = raw.kafka.group_id.unwrap_or_else(|| "flowwatch".to_string());
    if group_id.trim().is_empty() {
        problem("kafka.group_id", "is empty; name the consumer group, e.g. \"flowwatch\"".to_string());
    }
    let start_from = match raw.kafka.start_from.as_deref().unwrap_or("earliest") {
        "earliest" => StartFrom::Earliest,
        "latest" => StartFrom::Latest,
        other => match time::parse_rfc3339(other) {
            Some(millis) => StartFrom::Time(millis),
            None => {
                problem(
                    "kafka.start_from",
                    format!("{other:?} is not `earliest`, `latest` or an RFC 3339 time such as \"2026-01-01T00:00:00Z\""),
                );
                StartFrom::Earliest
            }
        },
    };
    let mut properties = raw.kafka.properties;
    for (name, value) in env {
        if let Some(suffix) = name.strip_prefix(ENV_KAFKA_PROPERTY_PREFIX) {
            properties.insert(kafka_property_from_env(suffix), value.clone());
        }
    }
    for name in properties.keys() {
        if let Some((_, instead)) = OWNED_PROPERTIES.iter().find(|(owned, _)| owned == name) {
            problem(
                &format!("kafka.properties.{name}"),
                format!("is set by the daemon and cannot be overridden; {instead}"),
            );
        }
    }
    let max_held_records = raw.kafka.max_held_records.unwrap_or(100_000);
    if max_held_records == 0 {
        problem("kafka.max_held_records", "must be at least 1".to_string());
    }

    let backend = raw.state.backend.unwrap_or_else(|| "redb".to_string());
    if !["redb", "sled", "memory"].contains(&backend.as_str()) {
        problem(
            "state.backend",
            format!("{backend:?} is not a store backend; use \"redb\", \"sled\" or \"memory\""),
        );
    }
    let topic = |value: Option<String>, default: &str| match value {
        None => Some(default.to_string()),
        Some(name) if name.trim().is_empty() => None,
        Some(name) => Some(name),
    };
    let outbox_limit = raw.outputs.outbox_limit.unwrap_or(100_000);
    if outbox_limit == 0 {
        problem("outputs.outbox_limit", "must be at least 1".to_string());
    }
    let listen_text = raw.http.listen.unwrap_or_else(|| "127.0.0.1:9180".to_string());
    let listen = listen_text.parse::<SocketAddr>().unwrap_or_else(|_| {
        problem(
            "http.listen",
            format!("{listen_text:?} is not an address; give host:port such as \"127.0.0.1:9180\" or \"0.0.0.0:9180\""),
        );
        SocketAddr::from(([127, 0, 0, 1], 9180))
    });
    let operator_token = match raw.http.operator_token {
        Some(token) if token.trim().is_empty() => None,
        Some(token) if token.len() < 16 => {
            problem(
                "http.operator_token",
                "is shorter than 16 characters; use a long random token (e.g. `openssl rand -hex 32`)".to_string(),
            );
            None
        }
        other => other,
    };
    let json = match raw.log.format.as_deref().unwrap_or("human") {
        "human" => false,
        "json" => true,
        other => {
            problem("log.format", format!("{other:?} is neither \"human\" nor \"json\""));
            false
        }
    };
    let config = Config {
        instance_name: raw.instance_name.unwrap_or_else(|| "flowwatch".to_string()),
        kafka: KafkaConfig {
            brokers,
            group_id,
            start_from,
            max_held_records,
            watchdog_timeout,
            properties,
        },
        flows_dir: raw.flows.dir.unwrap_or_else(|| PathBuf::from("flows")),
        state: StateConfig {
            dir: raw.state.dir.unwrap_or_else(|| PathBuf::from("state")),
            backend,
            checkpoint_interval,
        },
        outputs: OutputsConfig {
            signals_topic: topic(raw.outputs.signals_topic, "flowwatch.signals"),
            alerts_topic: topic(raw.outputs.alerts_topic, "flowwatch.alerts"),
            dead_letter_topic: topic(raw.outputs.dead_letter_topic, "flowwatch.dead-letter"),
            outbox_limit,
            flush_timeout,
        },
        http: HttpConfig {
            listen,
            operator_token,
        },
        tracking: TrackingConfig {
            allowed_lateness,
            orphan_after,
            retention,
            action_horizon,
            max_clock_skew,
            history_limit: raw.tracking.history_limit.unwrap_or(100),
        },
        log: LogConfig {
            json,
            level: raw.log.level.unwrap_or_else(|| "info".to_string()),
        },
    };
    if problems.is_empty() {
        Ok(config)
    } else {
        Err(ConfigError { problems })
    }
}

/// `SASL_PASSWORD` → `sasl.password`, `SSL_KEYSTORE__TYPE` → `ssl.keystore_type`,
/// `A___B` → `a-b` (Confluent's docker convention).
pub fn kafka_property_from_env(suffix: &str) -> String {
    suffix
        .to_ascii_lowercase()
        .replace("___", "\u{1}")
        .replace("__", "\u{2}")
        .replace('_', ".")
        .replace('\u{1}', "-")
        .replace('\u{2}', "_")
}

#[cfg(test)]
mod tests;
