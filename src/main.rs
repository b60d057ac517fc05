//! The flowwatch binary: parse the command line, load what it names, hand over to the library.
//! Exit codes: 0 success, 1 a user error (the message says what to fix), 2 a usage error.

use clap::Parser;
use flowwatch::cli::{Cli, Command, ConfigAction, DemoArgs, DiagramArgs, ReplayArgs, RunArgs, SimulateArgs};
use flowwatch::engine::EngineConfig;
use flowwatch::replay::{replay, ReplayOptions};
use flowwatch::{diagram, flow, serve, time, validate};
use std::io::{BufRead, BufReader, Write};
use std::process::ExitCode;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let code = match cli.command {
        Command::Validate(args) => validate::run(
            &args.paths,
            &mut std::io::stdout().lock(),
            &mut std::io::stderr().lock(),
        ),
        Command::Replay(args) => exit_code(run_replay(args)),
        Command::Run(args) => exit_code(run_daemon(args)),
        Command::Config(args) => exit_code(match args.action {
            ConfigAction::Check { config } => check_config(config.as_deref()),
            ConfigAction::Print { config } => {
                load_config(config.as_deref()).map(|config| println!("{}", config.to_redacted_json()))
            }
        }),
        Command::Demo(args) => exit_code(run_demo(args)),
        Command::Simulate(args) => exit_code(run_simulate(args)),
        Command::Diagram(args) => exit_code(run_diagram(args)),
    };
    ExitCode::from(code as u8)
}

fn run_replay(args: ReplayArgs) -> anyhow::Result<()> {
    let duration = |name: &str, text: &str| {
        time::parse_duration(text).map_err(|error| anyhow::anyhow!("--{name}: {error}"))
    };
    let engine = EngineConfig {
        instance_name: args.instance_name.clone(),
        allowed_lateness: duration("allowed-lateness", &args.allowed_lateness).or_else(
            |error| {
                // `0` without a unit is the natural way to say "no lateness".
                if args.allowed_lateness.trim() == "0" {
                    Ok(0)
                } else {
                    Err(error)
                }
            },
        )?,
        orphan_after: duration("orphan-after", &args.orphan_after)?,
        retention: duration("retention", &args.retention)?,
        // Serving shows each instance's audit trail; a plain replay keeps none.
        history_limit: if args.serve.is_some() {
            serve::SERVE_HISTORY_LIMIT
        } else {
            0
        },
    };
    let until = match &args.until {
        None => None,
        Some(text) => Some(
            time::parse_rfc3339(text)
                .or_else(|| text.parse::<i64>().ok())
                .ok_or_else(|| {
                    anyhow::anyhow!(
                        "--until {text:?}: expected an RFC 3339 time or epoch milliseconds"
                    )
                })?,
        ),
    };
    let report = flow::load_dir_or_files(&args.flows);
    if !report.errors.is_empty() {
        for error in &report.errors {
            eprintln!("{error}");
        }
        anyhow::bail!(
            "{} error(s) in the flow files; `flowwatch validate` lists them too",
            report.errors.len()
        );
    }
    let mut input: Box<dyn BufRead + Send> = if args.input.as_os_str() == "-" {
        Box::new(BufReader::with_capacity(1 << 20, std::io::stdin()))
    } else {
        let file = std::fs::File::open(&args.input).map_err(|error| {
            anyhow::anyhow!("cannot read --input {}: {error}", args.input.display())
        })?;
        // A progress bar over the bytes read, only when a person watches stderr.
        if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
            let length = file.metadata().map(|meta| meta.len()).unwrap_or(0);
            let bar = indicatif::ProgressBar::new(length).with_style(
                indicatif::ProgressStyle::with_template(
                    "{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            Box::new(BufReader::with_capacity(1 << 20, bar.wrap_read(file)))
        } else {
            Box::new(BufReader::with_capacity(1 << 20, file))
        }
    };
    let options = ReplayOptions {
        engine,
        until,
        stats: args.stats,
    };
    // Signals are written by replay's writer thread, in blocks (Stdout, unlike its lock, is Send).
    let mut stdout = std::io::stdout();
    let mut stderr = std::io::stderr().lock();
    let engine = replay(report.flows, &mut *input, &options, &mut stdout, &mut stderr)?;
    stdout.flush()?;
    if let Some(address) = args.serve {
        drop(stderr);
        let token = std::env::var("FLOWWATCH__HTTP__OPERATOR_TOKEN")
            .ok()
            .filter(|token| !token.is_empty());
        serve::serve_replayed(engine, address, token, |bound| {
            eprintln!("serving the replayed state on http://{bound}/ (Ctrl-C to stop)");
        })?;
    }
    Ok(())
}

fn run_diagram(args: DiagramArgs) -> anyhow::Result<()> {
    let text = diagram::render_file(&args.flow_file, args.format)?;
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(text.as_bytes())?;
    stdout.flush()?;
    Ok(())
}

/// 0 on success; otherwise prints the error (with its causes) and gives 1, a user error.
fn exit_code(result: anyhow::Result<()>) -> i32 {
    match result {
        Ok(()) => 0,
        Err(message) => {
            eprintln!("error: {message:#}");
            1
        }
    }
}

/// `flowwatch config check`: the configuration and the flows it names load, and librdkafka
/// accepts the Kafka client settings (as at `run`'s start; no broker needs to be reachable).
fn check_config(path: Option<&std::path::Path>) -> anyhow::Result<()> {
    let config = load_config(path)?;
    let flows = load_flows(&config.flows_dir)?;
    flowwatch::daemon::kafka::check_clients(&config)
        .map_err(|error| anyhow::anyhow!("the Kafka client settings ([kafka.properties]) are refused: {error}"))?;
    println!(
        "configuration ok: {} flow(s) from {}, brokers {}, group {}",
        flows.len(),
        config.flows_dir.display(),
        config.kafka.brokers,
        config.kafka.group_id
    );
    Ok(())
}

/// The configuration from the file and the process environment.
fn load_config(path: Option<&std::path::Path>) -> anyhow::Result<flowwatch::config::Config> {
    let env: std::collections::HashMap<String, String> = std::env::vars().collect();
    Ok(flowwatch::config::load(path, &env)?)
}

/// The flow files of a directory, or every error in them.
fn load_flows(dir: &std::path::Path) -> anyhow::Result<Vec<flow::Flow>> {
    let report = flow::load_dir_or_files(&[dir.to_path_buf()]);
    if !report.errors.is_empty() {
        let listed: Vec<String> = report.errors.iter().map(ToString::to_string).collect();
        anyhow::bail!(
            "{} error(s) in the flow files:\n{}",
            listed.len(),
            listed.join("\n")
        );
    }
    if report.flows.is_empty() {
        anyhow::bail!("no flow files in {} (flows.dir)", dir.display());
    }
    Ok(report.flows)
}

/// `flowwatch demo`: everything embedded (see the `demo` module).
fn run_demo(args: DemoArgs) -> anyhow::Result<()> {
    flowwatch::logging::init(args.log_json, "warn,flowwatch=info");
    if !(args.speed.is_finite() && args.speed > 0.0) {
        anyhow::bail!("--speed {}: expected a positive number", args.speed);
    }
    if !(args.rate.is_finite() && args.rate > 0.0) {
        anyhow::bail!("--rate {}: expected a positive number of instances per second", args.rate);
    }
    let faults = args
        .faults
        .parse()
        .map_err(|error| anyhow::anyhow!("--faults {:?}: {error}", args.faults))?;
    let duration = match &args.duration {
        None => None,
        Some(text) => Some(time::parse_duration(text).map_err(|error| anyhow::anyhow!("--duration: {error}"))?),
    };
    let flows = load_flows(&args.flows)?;
    let options = flowwatch::demo::DemoOptions {
        listen: args.listen,
        flows_dir: args.flows.clone(),
        rate: args.rate,
        speed: args.speed,
        seed: args.seed,
        faults,
        duration,
        partitions: 3,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(flowwatch::demo::run(options, flows))
}

/// `flowwatch run`: validate everything before connecting, start, wait for a signal, stop.
fn run_daemon(args: RunArgs) -> anyhow::Result<()> {
    let config = load_config(args.config.as_deref())?;
    flowwatch::logging::init(args.log_json || config.log.json, &config.log.level);
    let flows = load_flows(&config.flows_dir)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(flowwatch::app::run(config, flows))
}

fn run_simulate(args: SimulateArgs) -> anyhow::Result<()> {
    use flowwatch::clock::{Clock, ScaledClock, SystemClock};
    use flowwatch::simulate::{kafka, FaultMix, SimConfig, Simulator};
    if !(args.speed.is_finite() && args.speed > 0.0) {
        anyhow::bail!("--speed {}: expected a positive number", args.speed);
    }
    if !(args.rate.is_finite() && args.rate >= 0.0) {
        anyhow::bail!(
            "--rate {}: expected a number of instances per second, 0 or more",
            args.rate
        );
    }
    if args.partitions < 1 {
        anyhow::bail!("--partitions {}: expected 1 or more", args.partitions);
    }
    let faults: FaultMix = args
        .faults
        .parse()
        .map_err(|error| anyhow::anyhow!("--faults {:?}: {error}", args.faults))?;
    let duration = match &args.duration {
        None => None,
        Some(text) => Some(
            time::parse_duration(text).map_err(|error| anyhow::anyhow!("--duration: {error}"))?,
        ),
    };
    let start = match &args.start {
        None => None,
        Some(text) => Some(
            time::parse_rfc3339(text)
                .or_else(|| text.parse::<i64>().ok())
                .ok_or_else(|| {
                    anyhow::anyhow!(
                        "--start {text:?}: expected an RFC 3339 time or epoch milliseconds"
                    )
                })?,
        ),
    };
    let seed = args.seed.unwrap_or(SystemClock.now() as u64);
    let config = SimConfig {
        seed,
        // --rate is per wall-clock second; the simulator counts simulated seconds.
        rate_per_sec: args.rate / args.speed,
        faults,
    };
    let options = kafka::SimulateOptions {
        brokers: args.brokers.clone(),
        partitions: args.partitions,
        duration,
        react: !args.no_react,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let summary = runtime.block_on(async {
        let mut stderr = std::io::stderr();
        kafka::create_topics(&options.brokers, options.partitions, &mut stderr).await?;
        // The simulation starts once the topics exist.
        let start = start.unwrap_or_else(|| SystemClock.now());
        eprintln!(
            "simulating from {} at {}x, {} instances/s, seed {seed}, faults {faults}; producing to {}",
            time::format_rfc3339(start),
            args.speed,
            args.rate,
            args.brokers
        );
        let clock = ScaledClock::new(start, args.speed);
        let mut simulator = Simulator::starting_at(config, start);
        let shutdown = async {
            // Without a signal handler, Ctrl-C ends the process the usual way.
            if tokio::signal::ctrl_c().await.is_err() {
                std::future::pending::<()>().await;
            }
        };
        kafka::run(&mut simulator, &clock, &options, shutdown, &mut stderr).await
    })?;
    eprintln!(
        "produced {} records from {} to {}",
        summary.produced,
        time::format_rfc3339(summary.start),
        time::format_rfc3339(summary.end)
    );
    Ok(())
}
