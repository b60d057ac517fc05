//! Health: a cheap shared handle the daemon updates as it starts and runs (partitions
//! assigned, state restored, store writable, watchdog happy, backlog), read by `/livez` and
//! `/readyz`. Plain atomics, and the Kafka consumer's last error behind a mutex, written only
//! when it changes (while no partition is assigned).

use super::dto::{CatchingUp, Check, Live, Readiness};
use super::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Readiness facts, shared between the daemon (writer) and the HTTP server (reader).
#[derive(Clone, Default)]
pub struct Health {
    inner: Arc<Facts>,
}

#[derive(Default)]
struct Facts {
    partitions_assigned: AtomicBool,
    state_restored: AtomicBool,
    store_writable: AtomicBool,
    watchdog_ok: AtomicBool,
    records_behind: AtomicU64,
    /// Milliseconds the event clock trails the wall clock.
    event_time_lag_ms: AtomicI64,
    /// Why no partition is assigned, as far as the Kafka client knows.
    kafka_error: Mutex<Option<String>>,
}

impl Health {
    /// Nothing is ready yet (the daemon sets each fact as it gets there).
    pub fn new() -> Health {
        Health::default()
    }

    /// Every check passes, nothing behind (tests, tools, the embedded demo).
    pub fn all_ready() -> Health {
        let health = Health::new();
        health.set_partitions_assigned(true);
        health.set_state_restored(true);
        health.set_store_writable(true);
        health.set_watchdog_ok(true);
        health
    }

    pub fn set_partitions_assigned(&self, ok: bool) {
        self.inner.partitions_assigned.store(ok, Ordering::Relaxed);
    }

    pub fn set_state_restored(&self, ok: bool) {
        self.inner.state_restored.store(ok, Ordering::Relaxed);
    }

    pub fn set_store_writable(&self, ok: bool) {
        self.inner.store_writable.store(ok, Ordering::Relaxed);
    }

    /// The consumer watchdog saw progress (or had nothing to wait for) recently.
    pub fn set_watchdog_ok(&self, ok: bool) {
        self.inner.watchdog_ok.store(ok, Ordering::Relaxed);
    }

    /// The Kafka consumer's last error while no partition is assigned (`None` once some are):
    /// `/readyz` adds it to the `partitions_assigned` check's detail.
    pub fn set_kafka_error(&self, error: Option<&str>) {
        if let Ok(mut kept) = self.inner.kafka_error.lock() {
            if kept.as_deref() != error {
                *kept = error.map(str::to_string);
            }
        }
    }

    /// The backlog: records not yet read on owned partitions, and how far (milliseconds) the
    /// event clock trails the wall clock.
    pub fn set_backlog(&self, records_behind: u64, event_time_lag_ms: i64) {
        self.inner
            .records_behind
            .store(records_behind, Ordering::Relaxed);
        self.inner
            .event_time_lag_ms
            .store(event_time_lag_ms, Ordering::Relaxed);
    }

    /// The readiness report.
    pub fn readiness(&self) -> Readiness {
        let facts = &self.inner;
        let check = |name, fact: &AtomicBool, why: &str| {
            let ok = fact.load(Ordering::Relaxed);
            Check {
                name,
                ok,
                detail: (!ok).then(|| why.to_string()),
            }
        };
        let unassigned = match facts.kafka_error.lock().ok().and_then(|error| error.clone()) {
            Some(error) => format!("no partitions of the flow topics are assigned yet (the Kafka consumer's last error: {error})"),
            None => "no partitions of the flow topics are assigned yet".to_string(),
        };
        let checks = vec![
            check("partitions_assigned", &facts.partitions_assigned, &unassigned),
            check(
                "state_restored",
                &facts.state_restored,
                "the engine state is not restored from the store yet",
            ),
            check(
                "store_writable",
                &facts.store_writable,
                "the state store cannot be written",
            ),
            check(
                "watchdog",
                &facts.watchdog_ok,
                "the consumer made no progress while records were waiting",
            ),
        ];
        let records_behind = facts.records_behind.load(Ordering::Relaxed);
        let lag = facts.event_time_lag_ms.load(Ordering::Relaxed);
        Readiness {
            ready: checks.iter().all(|check| check.ok),
            checks,
            catching_up: CatchingUp {
                active: records_behind > 0,
                records_behind,
                event_time_lag_seconds: lag as f64 / 1000.0,
            },
        }
    }
}

/// The process is alive.
#[utoipa::path(get, path = "/livez", tag = "health",
    responses((status = OK, description = "The process is alive", body = Live)))]
pub async fn livez() -> Json<Live> {
    Json(Live { status: "ok" })
}

/// Alias of `/livez`.
#[utoipa::path(get, path = "/healthz", tag = "health",
    responses((status = OK, description = "The process is alive", body = Live)))]
pub async fn healthz() -> Json<Live> {
    livez().await
}

/// Ready to serve: every check passes.
#[utoipa::path(get, path = "/readyz", tag = "health",
    responses(
        (status = OK, description = "Every check passes", body = Readiness),
        (status = SERVICE_UNAVAILABLE, description = "A check fails; the body names it", body = Readiness),
    ))]
pub async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let readiness = state.health.readiness();
    let status = if readiness.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(readiness))
}

/// Prometheus metrics in the text exposition format.
#[utoipa::path(get, path = "/metrics", tag = "health",
    responses((status = OK, description = "Metrics, Prometheus text format 0.0.4", content_type = "text/plain", body = String)))]
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        (state.metrics)(),
    )
}
