//! The command line: clap definitions only. `main.rs` turns them into calls.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// flowwatch: tracks business processes across Kafka topics and reports the stuck and late.
#[derive(Debug, Parser)]
#[command(name = "flowwatch", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check flow files and report every error with file, line and column.
    Validate(ValidateArgs),
    /// Feed recorded records through the engine and print the signals as JSON lines.
    Replay(ReplayArgs),
    /// Run the daemon: track the flows live from Kafka, durably, and publish signals.
    Run(RunArgs),
    /// See it work: an embedded broker, simulated traffic with faults, the tracker and its page.
    Demo(DemoArgs),
    /// Check or print the daemon's configuration (secrets redacted).
    Config(ConfigArgs),
    /// Print a flow's step graph as SVG or Mermaid, for documentation.
    Diagram(DiagramArgs),
    /// Produce simulated order and onboarding traffic, with faults, to a Kafka broker.
    Simulate(SimulateArgs),
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Address of the web page, API and metrics.
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:8080")]
    pub listen: std::net::SocketAddr,
    /// Directory of flow files to track.
    #[arg(long, value_name = "DIR", default_value = "flows")]
    pub flows: PathBuf,
    /// New process instances per wall-clock second.
    #[arg(long, value_name = "N", default_value_t = 5.0)]
    pub rate: f64,
    /// Simulated seconds per wall-clock second (SLAs of minutes breach within seconds).
    #[arg(long, value_name = "N", default_value_t = 120.0)]
    pub speed: f64,
    /// Seed of the simulated traffic (the same seed gives the same traffic).
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub seed: u64,
    /// Fault rates: `default`, `none`, or NAME=RATE pairs (see docs/simulate.md).
    #[arg(long, value_name = "SPEC", default_value = "default")]
    pub faults: String,
    /// Stop after this much wall-clock time (e.g. 2m); default: until Ctrl-C.
    #[arg(long, value_name = "DUR")]
    pub duration: Option<String>,
    /// Log as JSON lines.
    #[arg(long)]
    pub log_json: bool,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The configuration file (TOML); FLOWWATCH__SECTION__KEY variables override it.
    #[arg(long, short, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Log as JSON lines instead of human-readable text (also `log.format = "json"`).
    #[arg(long)]
    pub log_json: bool,
}

#[derive(Debug, Args)]
pub struct ConfigArgs {
    #[command(subcommand)]
    pub action: ConfigAction,
}

#[derive(Debug, Subcommand)]
pub enum ConfigAction {
    /// Validate the configuration and the flow files it names; exit 1 listing every problem.
    Check {
        #[arg(long, short, value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// Print the effective configuration (file + environment + defaults), secrets redacted.
    Print {
        #[arg(long, short, value_name = "FILE")]
        config: Option<PathBuf>,
    },
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Flow files or directories of flow files (*.yaml, *.yml).
    #[arg(required = true, value_name = "DIR|FILE")]
    pub paths: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// Directory of flow files (or a single flow file); repeat for several.
    #[arg(long, value_name = "DIR", default_value = "flows")]
    pub flows: Vec<PathBuf>,
    /// Recorded records, one JSON object per line; `-` reads standard input.
    #[arg(long, value_name = "FILE.jsonl")]
    pub input: PathBuf,
    /// After the last record, move the clock to this time (RFC 3339 or epoch ms) so that
    /// timers due before it fire.
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
    /// How far the clock trails the highest record time read so far.
    #[arg(long, value_name = "DUR", default_value = "0s")]
    pub allowed_lateness: String,
    /// How long events of an unknown key or alias are held before `orphaned`.
    #[arg(long, value_name = "DUR", default_value = "5m")]
    pub orphan_after: String,
    /// How long ended instances are kept to answer late events.
    #[arg(long, value_name = "DUR", default_value = "7d")]
    pub retention: String,
    /// Print one JSON object of counts on stderr at the end.
    #[arg(long)]
    pub stats: bool,
    /// Instance name for the signals' `source` (`flowwatch/NAME`).
    #[arg(long, value_name = "NAME", default_value = "replay")]
    pub instance_name: String,
    /// After the replay, serve the HTTP API and the web page over the resulting state on this
    /// address (for example 127.0.0.1:8080) until Ctrl-C or SIGTERM.
    #[arg(long, value_name = "ADDR")]
    pub serve: Option<std::net::SocketAddr>,
}

#[derive(Debug, Args)]
pub struct DiagramArgs {
    /// The flow file to draw.
    #[arg(value_name = "FLOW_FILE")]
    pub flow_file: PathBuf,
    /// Output format: a standalone SVG image, or a Mermaid flowchart for Markdown.
    #[arg(long, value_enum, default_value_t = DiagramFormat::Svg)]
    pub format: DiagramFormat,
}

/// What `flowwatch diagram` prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum DiagramFormat {
    /// A standalone SVG document.
    Svg,
    /// A Mermaid `flowchart`.
    Mermaid,
}

#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// Bootstrap servers of the broker to produce to.
    #[arg(long, value_name = "HOST:PORT")]
    pub brokers: String,
    /// Process instances started per second of wall-clock time (60 % orders, 40 %
    /// onboardings).
    #[arg(long, value_name = "N", default_value_t = 2.0)]
    pub rate: f64,
    /// Run simulated time N times faster than the wall clock, so that minutes-long SLAs
    /// breach within seconds (record timestamps then run ahead of the wall clock).
    #[arg(long, value_name = "N", default_value_t = 1.0)]
    pub speed: f64,
    /// Seed of every random choice; the same seed gives the same traffic (default: from the
    /// clock, printed at the start).
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
    /// Stop after this much simulated time (e.g. 1h; at --speed 60 that takes a minute);
    /// default: until Ctrl-C.
    #[arg(long, value_name = "DUR")]
    pub duration: Option<String>,
    /// Partitions of the topics created at the start.
    #[arg(long, value_name = "N", default_value_t = 3)]
    pub partitions: i32,
    /// Fault rates per instance: `default`, `none`, or NAME=RATE pairs such as
    /// `lost=0.1,slow=0.2` (names: lost, slow, declined, late_start, wrong_topic,
    /// out_of_order, malformed, duplicate, recover_on_retry).
    #[arg(long, value_name = "SPEC", default_value = "default")]
    pub faults: String,
    /// Simulated time at the start (RFC 3339 or epoch ms; default: now).
    #[arg(long, value_name = "TIME")]
    pub start: Option<String>,
    /// Do not read the retry commands the tracker publishes (by default the simulated
    /// services sometimes answer them).
    #[arg(long)]
    pub no_react: bool,
}
