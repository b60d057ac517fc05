//! The HTTP server's routes: health (`/livez`, `/healthz`, `/readyz`), `/metrics`, the JSON
//! API under `/api/v1` (flows, graphs, instances with their audit trail, orphans, signals),
//! operator actions, the web page at `/` ([`page`]), and the OpenAPI document generated from
//! the handlers' `#[utoipa::path]` annotations. Handlers reach the engine only through the
//! [`TrackerHandle`]; the JSON shapes are the DTOs of [`dto`], never engine types. Only this
//! module knows axum.

pub mod api;
pub mod dto;
pub mod error;
pub mod health;
pub mod operator;
pub mod page;
#[cfg(test)]
mod tests;

pub use error::ApiError;
pub use health::Health;

use crate::tracker::TrackerHandle;
use axum::extract::DefaultBodyLimit;
use axum::http::header;
use axum::response::IntoResponse;
use std::sync::{Arc, OnceLock};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Largest request body accepted (operator commands are a few hundred bytes).
pub const MAX_BODY: usize = 64 * 1024;

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    /// The way to the engine task.
    pub tracker: TrackerHandle,
    /// Readiness facts the daemon keeps up to date.
    pub health: Health,
    /// Renders the Prometheus text exposition (`src/metrics.rs`).
    pub metrics: Arc<dyn Fn() -> String + Send + Sync>,
    /// Bearer token for operator actions; `None` disables them. Never logged or echoed.
    pub operator_token: Option<String>,
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "flowwatch",
        description = "Process tracking for Kafka choreographies: flows with live counts, instances with their audit trail, held orphans, recent signals, and operator actions."
    ),
    modifiers(&BearerScheme),
    tags(
        (name = "health", description = "Liveness, readiness and metrics"),
        (name = "flows", description = "Flows and their definitions"),
        (name = "instances", description = "Process instances and orphans"),
        (name = "signals", description = "Recent signals"),
        (name = "operator", description = "Operator actions (bearer token)"),
    )
)]
struct ApiDoc;

/// Declares the `bearer` security scheme the operator routes name.
struct BearerScheme;

impl utoipa::Modify for BearerScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// Every documented route, with the OpenAPI document collected from them.
fn documented() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(health::livez))
        .routes(routes!(health::healthz))
        .routes(routes!(health::readyz))
        .routes(routes!(health::metrics))
        .routes(routes!(api::flows))
        .routes(routes!(api::flow))
        .routes(routes!(api::graph))
        .routes(routes!(api::instances))
        .routes(routes!(api::instance))
        .routes(routes!(api::orphans))
        .routes(routes!(api::signals))
        .routes(routes!(operator::retry))
        .routes(routes!(operator::resolve))
        .routes(routes!(operator::cancel))
        .routes(routes!(openapi_json))
}

/// The OpenAPI document as JSON, built once.
pub fn openapi_document() -> &'static str {
    static DOCUMENT: OnceLock<String> = OnceLock::new();
    DOCUMENT.get_or_init(|| {
        let (_, api) = documented().split_for_parts();
        // An OpenAPI value is plain data (strings, maps, numbers): it always serialises.
        api.to_pretty_json()
            .expect("the OpenAPI document serialises")
    })
}

/// This document.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "health",
    responses((status = OK, description = "The OpenAPI 3.1 document of this API", content_type = "application/json", body = Object)))]
async fn openapi_json() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        openapi_document(),
    )
}

/// The router for `http.listen`.
pub fn router(state: AppState) -> axum::Router {
    let (router, _) = documented().split_for_parts();
    router
        .merge(page::routes())
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(state)
}
