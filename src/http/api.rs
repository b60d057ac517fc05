//! The read side of the JSON API: flows with live counts, a flow's graph, instance pages, one
//! instance with its audit trail, held orphans and recent signals. Each handler asks the engine
//! task for an engine view (one consistent read between two inputs) and converts it to DTOs
//! here, off the engine task.

use super::dto::{
    FlowDetail, FlowList, Graph, Instance, InstanceList, InstancesQuery, OrphanList, SignalList,
    SignalsQuery,
};
use super::error::ApiError;
use super::AppState;
use crate::engine::query::{is_cursor, InstanceFilter, InstanceState, MAX_PAGE};
use crate::time::format_rfc3339;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::Json;
use serde_json::value::RawValue;

/// Page size when `limit` is not given.
const DEFAULT_LIMIT: usize = 100;

/// Longest piece of a request that an error message quotes back.
const MAX_QUOTED: usize = 120;

/// Request text as an error message quotes it: in quotes, escaped, cut at [`MAX_QUOTED`]
/// characters so that a 60 KB parameter is not sent back.
fn quoted(text: &str) -> String {
    match text.char_indices().nth(MAX_QUOTED) {
        None => format!("{text:?}"),
        Some((cut, _)) => format!("{:?}...", &text[..cut]),
    }
}

fn unknown_flow(flow: &str) -> ApiError {
    ApiError::NotFound(format!("no flow named {}", quoted(flow)))
}

/// Checks `limit` (1 to 1000).
fn limit(limit: Option<usize>) -> Result<usize, ApiError> {
    match limit {
        None => Ok(DEFAULT_LIMIT),
        Some(limit) if (1..=MAX_PAGE).contains(&limit) => Ok(limit),
        Some(limit) => Err(ApiError::BadRequest(format!(
            "limit must be between 1 and {MAX_PAGE}, not {limit}"
        ))),
    }
}

/// Every flow with live counts per step.
#[utoipa::path(get, path = "/api/v1/flows", tag = "flows",
    responses((status = OK, description = "Flows with live counts", body = FlowList)))]
pub async fn flows(State(state): State<AppState>) -> Result<Json<FlowList>, ApiError> {
    let (clock, counts) = state
        .tracker
        .call(|tracker, _| {
            let engine = tracker.engine();
            (engine.clock(), engine.flow_counts())
        })
        .await?;
    Ok(Json(FlowList {
        clock: (clock != i64::MIN).then(|| format_rfc3339(clock)),
        flows: counts.into_iter().map(Into::into).collect(),
    }))
}

/// One flow: live counts and its definition.
#[utoipa::path(get, path = "/api/v1/flows/{flow}", tag = "flows",
    params(("flow" = String, Path, description = "Flow name")),
    responses(
        (status = OK, description = "The flow", body = FlowDetail),
        (status = NOT_FOUND, description = "No such flow", body = super::dto::ErrorBody),
    ))]
pub async fn flow(
    State(state): State<AppState>,
    Path(flow): Path<String>,
) -> Result<Json<FlowDetail>, ApiError> {
    let name = flow.clone();
    let found = state
        .tracker
        .call(move |tracker, _| {
            let engine = tracker.engine();
            let index = engine.flow_index(&name)?;
            let counts = engine.flow_counts().into_iter().nth(index)?;
            Some((counts, engine.flow_graph(index)?))
        })
        .await?;
    let (counts, graph) = found.ok_or_else(|| unknown_flow(&flow))?;
    Ok(Json(FlowDetail {
        counts: counts.into(),
        graph: graph.into(),
    }))
}

/// A flow's definition as a graph (steps, `after` edges, awaited and failing events, SLAs).
#[utoipa::path(get, path = "/api/v1/flows/{flow}/graph", tag = "flows",
    params(("flow" = String, Path, description = "Flow name")),
    responses(
        (status = OK, description = "The graph", body = Graph),
        (status = NOT_FOUND, description = "No such flow", body = super::dto::ErrorBody),
    ))]
pub async fn graph(
    State(state): State<AppState>,
    Path(flow): Path<String>,
) -> Result<Json<Graph>, ApiError> {
    let name = flow.clone();
    let found = state
        .tracker
        .call(move |tracker, _| {
            let engine = tracker.engine();
            engine.flow_graph(engine.flow_index(&name)?)
        })
        .await?;
    Ok(Json(found.ok_or_else(|| unknown_flow(&flow))?.into()))
}

/// Instances of a flow, newest start first, filtered and paginated.
#[utoipa::path(get, path = "/api/v1/flows/{flow}/instances", tag = "instances",
    params(("flow" = String, Path, description = "Flow name"), InstancesQuery),
    responses(
        (status = OK, description = "One page", body = InstanceList),
        (status = BAD_REQUEST, description = "Bad state or limit", body = super::dto::ErrorBody),
        (status = NOT_FOUND, description = "No such flow", body = super::dto::ErrorBody),
    ))]
pub async fn instances(
    State(state): State<AppState>,
    Path(flow): Path<String>,
    query: Result<Query<InstancesQuery>, QueryRejection>,
) -> Result<Json<InstanceList>, ApiError> {
    let Query(query) = query?;
    let filter_state = match query.state.as_deref() {
        None | Some("") => None,
        Some(text) => Some(InstanceState::parse(text).ok_or_else(|| {
            ApiError::BadRequest(format!(
                "state must be open, completed, failed, breached or stuck, not {}",
                quoted(text)
            ))
        })?),
    };
    if let Some(cursor) = query.cursor.as_deref().filter(|cursor| !cursor.is_empty()) {
        if !is_cursor(cursor) {
            return Err(ApiError::BadRequest(format!(
                "cursor {} is not a next_cursor this API gave; omit it for the first page",
                quoted(cursor)
            )));
        }
    }
    let filter = InstanceFilter {
        state: filter_state,
        step: query.step.filter(|step| !step.is_empty()),
        limit: limit(query.limit)?,
        cursor: query.cursor.filter(|cursor| !cursor.is_empty()),
    };
    let name = flow.clone();
    let page = state
        .tracker
        .call(move |tracker, _| {
            let engine = tracker.engine();
            let index = engine.flow_index(&name)?;
            Some(engine.list_instances(index, &filter))
        })
        .await?;
    Ok(Json(page.ok_or_else(|| unknown_flow(&flow))?.into()))
}

/// One instance: steps, windows, breaches, action runs and its audit trail.
#[utoipa::path(get, path = "/api/v1/flows/{flow}/instances/{key}", tag = "instances",
    params(
        ("flow" = String, Path, description = "Flow name"),
        ("key" = String, Path, description = "Business key"),
    ),
    responses(
        (status = OK, description = "The instance", body = Instance),
        (status = NOT_FOUND, description = "No such flow or instance", body = super::dto::ErrorBody),
    ))]
pub async fn instance(
    State(state): State<AppState>,
    Path((flow, key)): Path<(String, String)>,
) -> Result<Json<Instance>, ApiError> {
    let (name, wanted) = (flow.clone(), key.clone());
    let found = state
        .tracker
        .call(move |tracker, _| {
            let engine = tracker.engine();
            let index = engine.flow_index(&name).ok_or(false)?;
            engine.instance_detail(index, &wanted).ok_or(true)
        })
        .await?;
    match found {
        Ok(detail) => Ok(Json(detail.into())),
        Err(false) => Err(unknown_flow(&flow)),
        Err(true) => Err(ApiError::NotFound(format!(
            "flow {flow} has no instance with key {} (never started, or past retention)",
            quoted(&key)
        ))),
    }
}

/// Events held for keys or aliases whose instance is not known yet.
#[utoipa::path(get, path = "/api/v1/orphans", tag = "instances",
    responses((status = OK, description = "Held orphans, oldest first", body = OrphanList)))]
pub async fn orphans(State(state): State<AppState>) -> Result<Json<OrphanList>, ApiError> {
    let orphans = state
        .tracker
        .call(|tracker, _| tracker.engine().orphans())
        .await?;
    Ok(Json(OrphanList {
        orphans: orphans.into_iter().map(Into::into).collect(),
    }))
}

/// The latest signals, newest first.
#[utoipa::path(get, path = "/api/v1/signals", tag = "signals",
    params(SignalsQuery),
    responses(
        (status = OK, description = "CloudEvents JSON signals", body = SignalList),
        (status = BAD_REQUEST, description = "Bad limit", body = super::dto::ErrorBody),
    ))]
pub async fn signals(
    State(state): State<AppState>,
    query: Result<Query<SignalsQuery>, QueryRejection>,
) -> Result<Json<SignalList>, ApiError> {
    let Query(query) = query?;
    let limit = limit(query.limit)?;
    let texts = state
        .tracker
        .call(move |tracker, _| {
            tracker
                .recent_signals(limit)
                .map(signal_json)
                .collect::<Vec<String>>()
        })
        .await?;
    Ok(Json(SignalList {
        signals: texts.into_iter().filter_map(raw).collect(),
    }))
}

/// A signal as CloudEvents JSON text.
pub(super) fn signal_json(signal: &crate::engine::Signal) -> String {
    let mut buffer = Vec::new();
    signal.write_json(&mut buffer);
    String::from_utf8_lossy(&buffer).into_owned()
}

/// JSON text the engine wrote, as a raw value (skipped if it were ever not JSON).
pub(super) fn raw(text: String) -> Option<Box<RawValue>> {
    RawValue::from_string(text).ok()
}
