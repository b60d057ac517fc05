//! Wiring of `flowwatch run`: start the daemon, wait for SIGTERM or Ctrl-C, stop in order.
//!
//! The configuration and flows are validated before anything connects or binds (main.rs).
//! Shutdown order: cancel the worker (it stops fetching, checkpoints, flushes the outbox for
//! `outputs.flush_timeout` and commits), then stop serving HTTP.

use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::daemon;
use crate::flow::Flow;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// Runs the daemon until a termination signal.
pub async fn run(config: Config, flows: Vec<Flow>) -> anyhow::Result<()> {
    let cancel = CancellationToken::new();
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let daemon = daemon::start(config, flows, clock, cancel.clone())?;
    tracing::info!(summary = %daemon.summary, "flowwatch started.");
    shutdown_signal().await;
    tracing::info!("Termination signal received.");
    cancel.cancel();
    tokio::task::spawn_blocking(move || daemon.join()).await?
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
}
