//! Every error the identity service answers, as one shape: an RFC 9457 problem document
//! (`Content-Type: application/problem+json`).
//!
//! ```json
//! {
//!   "type": "/problems/precondition-failed",
//!   "title": "The resource changed since you read it",
//!   "status": 412,
//!   "detail": "`user-ada` is at version 4, but the request expected version 3: read it again and decide anew",
//!   "current_version": 4
//! }
//! ```
//!
//! `type`, `title`, `status` and `detail` are always there; `type` is a relative URI naming
//! the kind of problem ([`Kind`]), `title` says it in words and never varies for a `type`,
//! `detail` says what happened to this request. Extension members appear where they apply:
//! `errors` (each failing field: `{"field": "email", "message": "..."}`), `current_version`
//! (the resource's version on a 412, also its `ETag` header) and `consistency_token` (the
//! token a 503 waited for).

use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use eventsrc::{ExecuteError, FieldError, StreamId};
use serde::Serialize;

use super::domain::IdentityError;

/// The media type of a problem document.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// The kinds of problem, each with its `type`, `title` and status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// 400: the body is not JSON.
    MalformedJson,
    /// 400: a header (`If-Match`, `Idempotency-Key`, `Consistency-Token`...) or the query is
    /// malformed.
    BadRequest,
    /// 404: no such user, group or route.
    NotFound,
    /// 405: the route does not take this method.
    MethodNotAllowed,
    /// 409: the domain refused the command (an address taken, a user deactivated...).
    Refused,
    /// 409: other writers kept changing what the command read; send it again.
    Conflict,
    /// 412: `If-Match` named a version the resource is no longer at.
    PreconditionFailed,
    /// 413: the body is larger than the service takes.
    TooLarge,
    /// 415: the body is not `application/json`.
    UnsupportedMediaType,
    /// 422: fields of the command are invalid (listed in `errors`), or the JSON does not have
    /// the request's shape.
    InvalidFields,
    /// 422: the `Idempotency-Key` was used before for another request.
    KeyReused,
    /// 500: the service failed; its log says why.
    Internal,
    /// 503: a read did not reach the request's `Consistency-Token` in time.
    NotYetVisible,
}

impl Kind {
    /// The problem's `type`: a URI reference relative to the service.
    pub fn uri(self) -> &'static str {
        match self {
            Self::MalformedJson => "/problems/malformed-json",
            Self::BadRequest => "/problems/bad-request",
            Self::NotFound => "/problems/not-found",
            Self::MethodNotAllowed => "/problems/method-not-allowed",
            Self::Refused => "/problems/refused",
            Self::Conflict => "/problems/conflict",
            Self::PreconditionFailed => "/problems/precondition-failed",
            Self::TooLarge => "/problems/too-large",
            Self::UnsupportedMediaType => "/problems/unsupported-media-type",
            Self::InvalidFields => "/problems/invalid-fields",
            Self::KeyReused => "/problems/idempotency-key-reused",
            Self::Internal => "/problems/internal",
            Self::NotYetVisible => "/problems/not-yet-visible",
        }
    }

    /// The problem's `title`.
    pub fn title(self) -> &'static str {
        match self {
            Self::MalformedJson => "The body is not valid JSON",
            Self::BadRequest => "The request is malformed",
            Self::NotFound => "Not found",
            Self::MethodNotAllowed => "Method not allowed",
            Self::Refused => "The request was refused",
            Self::Conflict => "Concurrent changes got in the way",
            Self::PreconditionFailed => "The resource changed since you read it",
            Self::TooLarge => "The body is too large",
            Self::UnsupportedMediaType => "The body must be JSON",
            Self::InvalidFields => "The request's fields are invalid",
            Self::KeyReused => "The idempotency key was used for another request",
            Self::Internal => "The service failed",
            Self::NotYetVisible => "Your earlier write is not visible yet",
        }
    }

    /// The HTTP status.
    pub fn status(self) -> StatusCode {
        match self {
            Self::MalformedJson | Self::BadRequest => StatusCode::BAD_REQUEST,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Refused | Self::Conflict => StatusCode::CONFLICT,
            Self::PreconditionFailed => StatusCode::PRECONDITION_FAILED,
            Self::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::InvalidFields | Self::KeyReused => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            Self::NotYetVisible => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

/// One failing field of a 422.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldProblem {
    /// The field, as the request body names it.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

/// An RFC 9457 problem document, and the headers that go with it.
#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    /// The kind of problem, as a URI reference.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The kind of problem, in words.
    pub title: &'static str,
    /// The HTTP status.
    pub status: u16,
    /// What happened to this request.
    pub detail: String,
    /// The extension members, and the response's headers.
    #[serde(flatten)]
    pub extensions: Box<Extensions>,
}

/// The members of a [`Problem`] beyond the standard four, where they apply.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Extensions {
    /// Each failing field (422 only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldProblem>,
    /// The resource's version now (412 only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_version: Option<u64>,
    /// The token the read waited for (503 only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consistency_token: Option<String>,
    /// Headers of the response: `ETag` on a 412, `Retry-After` on a 503.
    #[serde(skip)]
    pub headers: Vec<(HeaderName, String)>,
}

impl Problem {
    /// A problem of `kind`, saying `detail`.
    pub fn new(kind: Kind, detail: impl Into<String>) -> Self {
        Self {
            kind: kind.uri(),
            title: kind.title(),
            status: kind.status().as_u16(),
            detail: detail.into(),
            extensions: Box::default(),
        }
    }

    /// Adds a header to the response.
    pub fn with_header(mut self, name: HeaderName, value: impl Into<String>) -> Self {
        self.extensions.headers.push((name, value.into()));
        self
    }

    /// A 422 listing `fields`.
    pub fn invalid(fields: &[FieldError]) -> Self {
        let names: Vec<&str> = fields.iter().map(|f| f.field).collect();
        let mut problem = Self::new(
            Kind::InvalidFields,
            format!("invalid: {}", names.join(", ")),
        );
        problem.extensions.errors = fields
            .iter()
            .map(|f| FieldProblem {
                field: f.field.to_owned(),
                message: f.message.clone(),
            })
            .collect();
        problem
    }

    /// A 500 for `error`, which goes to the service's log, not to the client.
    pub fn internal(error: &dyn std::error::Error) -> Self {
        eprintln!("identity: internal error: {error}");
        Self::new(
            Kind::Internal,
            "the service failed to answer; its log says why",
        )
    }

    /// The problem of a command on the resource whose stream is `resource` that failed with
    /// `error`.
    pub fn execute(error: ExecuteError<IdentityError>, resource: &StreamId) -> Self {
        match error {
            ExecuteError::Invalid(invalid) => Self::invalid(&invalid.fields),
            ExecuteError::Rejected(refusal) => Self::refused(&refusal),
            ExecuteError::Stale {
                stream,
                expected,
                actual,
            } if stream == *resource => {
                let detail = format!(
                    "`{stream}` is at version {actual}, but the request expected version \
                     {expected}: read it again and decide anew"
                );
                let mut problem = Self::new(Kind::PreconditionFailed, detail)
                    .with_header(header::ETAG, etag(actual.get()));
                problem.extensions.current_version = Some(actual.get());
                problem
            }
            ExecuteError::Stale { stream, .. } => Self::new(
                Kind::Conflict,
                format!("`{stream}` changed while the request was decided; send it again"),
            ),
            error @ ExecuteError::Conflict { .. } => Self::new(Kind::Conflict, error.to_string()),
            error @ ExecuteError::KeyReused { .. } => Self::new(Kind::KeyReused, error.to_string()),
            other => Self::internal(&other),
        }
    }

    /// The problem of a refusal: 404 for an unknown user or group, 409 for the rest.
    pub fn refused(refusal: &IdentityError) -> Self {
        let kind = match refusal {
            IdentityError::UnknownUser { .. } | IdentityError::UnknownGroup { .. } => {
                Kind::NotFound
            }
            _ => Kind::Refused,
        };
        Self::new(kind, refusal.to_string())
    }
}

/// A version as an `ETag`: quoted, `"3"`.
pub fn etag(version: u64) -> String {
    format!("\"{version}\"")
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&self).unwrap_or_default();
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        for (name, value) in self.extensions.headers {
            if let Ok(value) = HeaderValue::from_str(&value) {
                headers.insert(name, value);
            }
        }
        response
    }
}
