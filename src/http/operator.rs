//! Operator actions: retry a step now, resolve a breach, cancel an instance. Each needs the
//! configured bearer token (compared in constant time; without a token configured the actions
//! are refused with how to enable them), becomes an engine `Input` with the event clock as its
//! time and a request id (the caller's `X-Request-Id`, or generated), and answers with the
//! signals it emitted. The refusal check and the command run in one engine-task call, so they
//! see the same state; the engine task then publishes and stores the outputs like any others.

use super::api::{raw, signal_json};
use super::dto::{CancelBody, CommandResult, ResolveBody, RetryBody};
use super::error::ApiError;
use super::AppState;
use crate::engine::{Input, OperatorCommand, OperatorRequest, Output};
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::Json;
use subtle::ConstantTimeEq;

/// Longest request id accepted.
const MAX_REQUEST_ID: usize = 128;
/// Longest note accepted.
const MAX_NOTE: usize = 4096;

/// Checks the bearer token against the configured one.
fn authorize(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(expected) = state.operator_token.as_deref() else {
        return Err(ApiError::Disabled);
    };
    let given = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .ok_or(ApiError::Unauthorized)?;
    if bool::from(given.trim().as_bytes().ct_eq(expected.as_bytes())) {
        Ok(())
    } else {
        Err(ApiError::Unauthorized)
    }
}

/// The caller's `X-Request-Id`, if it gave a usable one.
fn request_id(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get("x-request-id") else {
        return Ok(None);
    };
    let text = value.to_str().unwrap_or_default();
    let usable = !text.is_empty()
        && text.len() <= MAX_REQUEST_ID
        && text
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || b"._:-".contains(&byte));
    if usable {
        Ok(Some(text.to_string()))
    } else {
        Err(ApiError::BadRequest(format!(
            "X-Request-Id must be 1 to {MAX_REQUEST_ID} characters of letters, digits and . _ : -"
        )))
    }
}

fn check_note(note: &Option<String>) -> Result<(), ApiError> {
    match note {
        Some(note) if note.len() > MAX_NOTE => Err(ApiError::BadRequest(format!(
            "note is longer than {MAX_NOTE} bytes"
        ))),
        _ => Ok(()),
    }
}

/// Runs one command on the engine task and returns the request id and the signals it emitted.
async fn run(
    state: &AppState,
    command: OperatorCommand,
    mut request: OperatorRequest,
    given_id: Option<String>,
) -> Result<Json<CommandResult>, ApiError> {
    let outcome = state
        .tracker
        .call(move |tracker, out| {
            // The command happens at the event clock: deterministic, and in the same time
            // frame as everything else the instance records.
            request.time = tracker.engine().clock().max(0);
            request.request_id = match given_id {
                Some(id) => id,
                None => format!("op-{}-{}", request.time, tracker.next_command_number()),
            };
            if let Some(refusal) = tracker.engine().operator_refusal(command, &request) {
                return Err(refusal);
            }
            let input = match command {
                OperatorCommand::Retry => Input::RetryRequested(&request),
                OperatorCommand::Resolve => Input::BreachResolvedByOperator(&request),
                OperatorCommand::Cancel => Input::CancelRequested(&request),
            };
            let first = out.len();
            tracker.handle(input, out);
            let signals: Vec<String> = out[first..]
                .iter()
                .filter_map(|output| match output {
                    Output::Emit(signal) => Some(signal_json(signal)),
                    _ => None,
                })
                .collect();
            Ok((request.request_id, signals))
        })
        .await??;
    let (request_id, signals) = outcome;
    Ok(Json(CommandResult {
        request_id,
        signals: signals.into_iter().filter_map(raw).collect(),
    }))
}

fn request(
    flow: String,
    key: String,
    step: Option<String>,
    note: Option<String>,
) -> OperatorRequest {
    OperatorRequest {
        flow,
        key,
        step,
        note,
        request_id: String::new(),
        time: 0,
    }
}

/// Run a step's `on_breach` actions now (counts against a retry's attempts; the step's window
/// is not re-opened).
#[utoipa::path(post, path = "/api/v1/flows/{flow}/instances/{key}/retry", tag = "operator",
    params(
        ("flow" = String, Path, description = "Flow name"),
        ("key" = String, Path, description = "Business key"),
        ("X-Request-Id" = Option<String>, Header, description = "Idempotency id, part of the signal ids"),
    ),
    request_body = RetryBody,
    security(("bearer" = [])),
    responses(
        (status = OK, description = "Actions ran", body = CommandResult),
        (status = BAD_REQUEST, description = "Unreadable body", body = super::dto::ErrorBody),
        (status = UNAUTHORIZED, description = "Missing or wrong token", body = super::dto::ErrorBody),
        (status = FORBIDDEN, description = "Operator actions are not enabled", body = super::dto::ErrorBody),
        (status = NOT_FOUND, description = "No such flow, instance or step", body = super::dto::ErrorBody),
        (status = CONFLICT, description = "Nothing to retry (ended, step not open, retries spent)", body = super::dto::ErrorBody),
    ))]
pub async fn retry(
    State(state): State<AppState>,
    Path((flow, key)): Path<(String, String)>,
    headers: HeaderMap,
    body: Result<Json<RetryBody>, JsonRejection>,
) -> Result<Json<CommandResult>, ApiError> {
    authorize(&state, &headers)?;
    let given_id = request_id(&headers)?;
    let Json(body) = body?;
    check_note(&body.note)?;
    let request = request(flow, key, Some(body.step), body.note);
    run(&state, OperatorCommand::Retry, request, given_id).await
}

/// Declare a breach over: emits `resolved` for the step (or, without a step, the instance
/// deadline or stuck breach).
#[utoipa::path(post, path = "/api/v1/flows/{flow}/instances/{key}/resolve", tag = "operator",
    params(
        ("flow" = String, Path, description = "Flow name"),
        ("key" = String, Path, description = "Business key"),
        ("X-Request-Id" = Option<String>, Header, description = "Idempotency id, part of the signal ids"),
    ),
    request_body = ResolveBody,
    security(("bearer" = [])),
    responses(
        (status = OK, description = "Resolved", body = CommandResult),
        (status = BAD_REQUEST, description = "Unreadable body", body = super::dto::ErrorBody),
        (status = UNAUTHORIZED, description = "Missing or wrong token", body = super::dto::ErrorBody),
        (status = FORBIDDEN, description = "Operator actions are not enabled", body = super::dto::ErrorBody),
        (status = NOT_FOUND, description = "No such flow, instance or step", body = super::dto::ErrorBody),
        (status = CONFLICT, description = "No unresolved breach", body = super::dto::ErrorBody),
    ))]
pub async fn resolve(
    State(state): State<AppState>,
    Path((flow, key)): Path<(String, String)>,
    headers: HeaderMap,
    body: Result<Json<ResolveBody>, JsonRejection>,
) -> Result<Json<CommandResult>, ApiError> {
    authorize(&state, &headers)?;
    let given_id = request_id(&headers)?;
    let Json(body) = body?;
    check_note(&body.note)?;
    let request = request(flow, key, body.step, body.note);
    run(&state, OperatorCommand::Resolve, request, given_id).await
}

/// End an open instance as failed by an operator.
#[utoipa::path(post, path = "/api/v1/flows/{flow}/instances/{key}/cancel", tag = "operator",
    params(
        ("flow" = String, Path, description = "Flow name"),
        ("key" = String, Path, description = "Business key"),
        ("X-Request-Id" = Option<String>, Header, description = "Idempotency id, part of the signal ids"),
    ),
    request_body = CancelBody,
    security(("bearer" = [])),
    responses(
        (status = OK, description = "Cancelled", body = CommandResult),
        (status = BAD_REQUEST, description = "Unreadable body", body = super::dto::ErrorBody),
        (status = UNAUTHORIZED, description = "Missing or wrong token", body = super::dto::ErrorBody),
        (status = FORBIDDEN, description = "Operator actions are not enabled", body = super::dto::ErrorBody),
        (status = NOT_FOUND, description = "No such flow or instance", body = super::dto::ErrorBody),
        (status = CONFLICT, description = "Already ended", body = super::dto::ErrorBody),
    ))]
pub async fn cancel(
    State(state): State<AppState>,
    Path((flow, key)): Path<(String, String)>,
    headers: HeaderMap,
    body: Result<Json<CancelBody>, JsonRejection>,
) -> Result<Json<CommandResult>, ApiError> {
    authorize(&state, &headers)?;
    let given_id = request_id(&headers)?;
    let Json(body) = body?;
    check_note(&body.note)?;
    let request = request(flow, key, None, body.note);
    run(&state, OperatorCommand::Cancel, request, given_id).await
}
