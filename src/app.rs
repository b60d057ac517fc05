//! Wiring of `flowwatch run` (and the demo): bind the HTTP listener, start the daemon, serve
//! health, metrics, the API and the page, wait for SIGTERM or Ctrl-C, stop in order.
//!
//! The configuration and flows are validated before anything connects or binds (main.rs).
//! Shutdown order: cancel the worker (it stops fetching, checkpoints, flushes the outbox for
//! `outputs.flush_timeout` and commits), then stop serving HTTP.

use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::daemon;
use crate::flow::Flow;
use crate::http::{router, AppState, Health};
use crate::metrics::Metrics;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// Runs the daemon until a termination signal.
pub async fn run(config: Config, flows: Vec<Flow>) -> anyhow::Result<()> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    run_until(config, flows, clock, shutdown_signal(), |_, _| {}).await
}

/// Runs the daemon and its HTTP server until `stop` resolves. `on_listening` is told the bound
/// address and a handle on the tracker (the demo prints a live summary).
pub async fn run_until(
    config: Config,
    flows: Vec<Flow>,
    clock: Arc<dyn Clock>,
    stop: impl std::future::Future<Output = ()>,
    on_listening: impl FnOnce(std::net::SocketAddr, crate::tracker::TrackerHandle),
) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(config.http.listen)
        .await
        .map_err(|error| anyhow::anyhow!("cannot listen on http.listen {}: {error}", config.http.listen))?;
    let address = listener.local_addr()?;
    let cancel = CancellationToken::new();
    let metrics = Metrics::new();
    let health = Health::new();
    let operator_token = config.http.operator_token.clone();
    let daemon = daemon::start_with(config, flows, clock, cancel.clone(), metrics.clone(), health.clone())?;
    tracing::info!(summary = %daemon.summary, %address, "flowwatch started.");
    let state = AppState {
        tracker: daemon.tracker.clone(),
        health,
        metrics: metrics.renderer(),
        operator_token,
    };
    let http_stop = CancellationToken::new();
    let http = {
        let http_stop = http_stop.clone();
        tokio::spawn(async move {
            axum::serve(listener, router(state))
                .with_graceful_shutdown(async move { http_stop.cancelled().await })
                .await
        })
    };
    on_listening(address, daemon.tracker.clone());
    stop.await;
    tracing::info!("Stopping.");
    cancel.cancel();
    let result = tokio::task::spawn_blocking(move || daemon.join()).await?;
    http_stop.cancel();
    if let Ok(Err(error)) = http.await {
        tracing::warn!(%error, "The HTTP server stopped with an error.");
    }
    result
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
