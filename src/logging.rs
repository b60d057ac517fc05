//! Logging set-up: human-readable lines by default, JSON lines with `--log-json`,
//! `log.format = "json"` or `FLOWWATCH_LOG_FORMAT=json`; the level from `log.level` or
//! `RUST_LOG`. Logs go to stderr so that stdout stays for command output.

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber (once; later calls do nothing).
pub fn init(json: bool, level: &str) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let json = json
        || std::env::var("FLOWWATCH_LOG_FORMAT").is_ok_and(|format| format == "json");
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if json {
        builder.json().flatten_event(true).try_init()
    } else {
        builder.compact().try_init()
    };
}
