//! API errors: one enum, mapped to a status and a JSON body `{"error": "..."}`. The
//! conversion logs nothing (the caller decides what is worth a log line) and no message ever
//! contains the operator token.

use super::dto::ErrorBody;
use crate::engine::OperatorRefusal;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("a bearer token is required: send Authorization: Bearer TOKEN with the configured operator token")]
    Unauthorized,
    #[error("operator actions are disabled: set http.operator_token in the configuration (or the environment variable FLOWWATCH__HTTP__OPERATOR_TOKEN) to enable them")]
    Disabled,
    #[error("{0}")]
    Conflict(String),
    #[error("the tracker is not running")]
    TrackerGone,
    /// The request could not be read (bad JSON, too large, bad query); axum's status.
    #[error("{message}")]
    Unreadable { status: StatusCode, message: String },
}

impl From<axum::extract::rejection::JsonRejection> for ApiError {
    fn from(rejection: axum::extract::rejection::JsonRejection) -> Self {
        ApiError::Unreadable {
            status: rejection.status(),
            message: rejection.body_text(),
        }
    }
}

impl From<axum::extract::rejection::QueryRejection> for ApiError {
    fn from(rejection: axum::extract::rejection::QueryRejection) -> Self {
        ApiError::Unreadable {
            status: rejection.status(),
            message: rejection.body_text(),
        }
    }
}

impl From<crate::tracker::TrackerGone> for ApiError {
    fn from(_: crate::tracker::TrackerGone) -> Self {
        ApiError::TrackerGone
    }
}

impl From<OperatorRefusal> for ApiError {
    fn from(refusal: OperatorRefusal) -> Self {
        let text = refusal.to_string();
        match refusal {
            OperatorRefusal::UnknownFlow(_)
            | OperatorRefusal::UnknownInstance { .. }
            | OperatorRefusal::UnknownStep { .. } => ApiError::NotFound(text),
            OperatorRefusal::StepRequired => ApiError::BadRequest(text),
            OperatorRefusal::Ended(_) | OperatorRefusal::NotApplicable(_) => {
                ApiError::Conflict(text)
            }
        }
    }
}

impl ApiError {
    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Disabled => StatusCode::FORBIDDEN,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::TrackerGone => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Unreadable { status, .. } => *status,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = Json(ErrorBody {
            error: self.to_string(),
        });
        if matches!(self, ApiError::Unauthorized) {
            (status, [(header::WWW_AUTHENTICATE, "Bearer")], body).into_response()
        } else {
            (status, body).into_response()
        }
    }
}
