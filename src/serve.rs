//! `flowwatch replay --serve ADDR`: after a replay, serve the HTTP API and the web page over
//! the engine state it left, until Ctrl-C or SIGTERM. The state is frozen (no records arrive),
//! which makes it a reproducible way to look at recorded traffic in the page, and what the
//! browser test runs against. Operator commands work when a token is configured
//! (`FLOWWATCH__HTTP__OPERATOR_TOKEN`) and change only this process's copy of the state.

use crate::engine::Engine;
use crate::http::{router, AppState, Health};
use crate::tracker::{self, Tracker};
use std::net::SocketAddr;
use std::sync::Arc;

/// How many audit-trail entries per instance a served replay keeps, so the page can show
/// every instance's timeline and payloads.
pub const SERVE_HISTORY_LIMIT: usize = 200;

/// Why serving failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The async runtime could not start.
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
    /// The address could not be bound.
    #[error("cannot listen on {address}: {source}")]
    Bind {
        /// The `--serve` address.
        address: SocketAddr,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// The server stopped with an error.
    #[error("the HTTP server failed: {0}")]
    Serve(std::io::Error),
}

/// Serves the API and the page over `engine` on `address` until Ctrl-C or SIGTERM.
/// `on_listening` is called with the bound address once the server accepts connections (the
/// CLI prints the URL). The replay printed its signals already; `/api/v1/signals` lists only
/// those emitted while serving (by operator commands).
pub fn serve_replayed(
    engine: Engine,
    address: SocketAddr,
    operator_token: Option<String>,
    on_listening: impl FnOnce(SocketAddr),
) -> Result<(), Error> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(Error::Runtime)?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(address)
            .await
            .map_err(|source| Error::Bind { address, source })?;
        let bound = listener
            .local_addr()
            .map_err(|source| Error::Bind { address, source })?;
        let tracker = Tracker::new(engine);
        let (handle, requests) = tracker::channel();
        let engine_task = tokio::spawn(tracker::serve(tracker, requests, |_| {}));
        let state = AppState {
            tracker: handle,
            health: Health::all_ready(),
            metrics: Arc::new(String::new),
            operator_token,
        };
        on_listening(bound);
        let served = axum::serve(listener, router(state))
            .with_graceful_shutdown(shutdown_requested())
            .await
            .map_err(Error::Serve);
        // The router (and with it every handle) is dropped, so the engine task ends.
        let _ = engine_task.await;
        served
    })
}

/// Resolves on Ctrl-C or, on Unix, SIGTERM.
async fn shutdown_requested() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut stream) => {
                stream.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => {}
        _ = terminate => {}
    }
}
