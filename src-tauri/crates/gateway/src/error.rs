//! What can go wrong with a client request. The protocol modules render it in the shape of the
//! protocol the client spoke; this is the one place that decides the HTTP status.

use std::time::Duration;

use http::StatusCode;

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    /// A web page's request: a foreign Origin or Host.
    #[error("{0}")]
    CrossSite(String),
    #[error(
        "client key '{name}' is over its limit of {rpm} requests a minute; try again in {retry_after_s} s"
    )]
    ClientRateLimited {
        name: String,
        rpm: u32,
        retry_after_s: u64,
    },
    #[error(
        "client key '{key}' has used its budget {limit} ({used} of {amount}); it resets at {resets_at}"
    )]
    BudgetExceeded {
        key: String,
        limit: &'static str,
        used: String,
        amount: String,
        resets_at: String,
        retry_after_s: u64,
    },
    #[error("{0}")]
    NotFound(String),
    #[error(
        "The model '{0}' does not exist in Switchboard. GET /v1/models lists the models you can use."
    )]
    UnknownModel(String),
    #[error("{0}")]
    MethodNotAllowed(String),
    #[error("the request body is larger than the limit of {limit_mb} MB (server.max_body_mb)")]
    PayloadTooLarge { limit_mb: u64 },
    #[error(
        "the request body did not arrive within {}s (server.body_timeout_s)",
        after.as_secs()
    )]
    BodyTimeout { after: Duration },
    #[error(
        "Switchboard is shutting down: the answer was cut at the end of the shutdown grace period"
    )]
    ShuttingDown,
    /// The gateway is at a limit of its own; the client may try again shortly.
    #[error("{0}")]
    Busy(String),
    #[error("no provider is available for model '{model}': {why}")]
    NoProvider { model: String, why: String },
    #[error("provider '{provider}' did not answer within {}s ({setting})", after.as_secs_f64().ceil())]
    UpstreamTimeout {
        provider: String,
        after: Duration,
        /// The setting that set the limit.
        setting: &'static str,
    },
    #[error("cannot reach provider '{provider}': {detail}")]
    UpstreamUnreachable { provider: String, detail: String },
    #[error("provider '{provider}' broke off before any content: {detail}")]
    UpstreamBrokeOff { provider: String, detail: String },
    #[error("provider '{provider}' answered with \"{keyword}\" (routing.retry_on_keywords)")]
    RetryKeyword { provider: String, keyword: String },
    /// The upstream answered with an error: its status and message are passed on.
    #[error("{}", .0.message)]
    Upstream(Box<UpstreamError>),
    #[error("internal error: {0}")]
    Internal(String),
    /// The request came from this gateway itself (its `Via`): a provider's base URL points
    /// back at it.
    #[error(
        "this request came from this Switchboard itself: a provider's base_url points back at the gateway, so every request would loop; change that provider's base_url"
    )]
    Loop,
    /// The client left before the end of its answer: logged, never sent (there is nobody to
    /// send it to).
    #[error("the client went away before the end")]
    ClientClosed,
}

impl GatewayError {
    /// The name a client asked for, one line and bounded: it is echoed in the answer and the
    /// log.
    pub fn unknown_model(name: &str) -> Self {
        Self::UnknownModel(crate::outside::clip(name, crate::outside::MAX_NAME).into_owned())
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) | Self::CrossSite(_) => StatusCode::FORBIDDEN,
            Self::ClientRateLimited { .. } | Self::BudgetExceeded { .. } => {
                StatusCode::TOO_MANY_REQUESTS
            }
            Self::NotFound(_) | Self::UnknownModel(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::BodyTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
            Self::NoProvider { .. } | Self::Busy(_) | Self::ShuttingDown => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Self::UpstreamTimeout { .. } => StatusCode::GATEWAY_TIMEOUT,
            Self::UpstreamUnreachable { .. } | Self::UpstreamBrokeOff { .. } => {
                StatusCode::BAD_GATEWAY
            }
            Self::RetryKeyword { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Upstream(u) => u.status,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            Self::Loop => StatusCode::LOOP_DETECTED,
            // Never answered; 400 keeps it a client-side outcome wherever a status is asked.
            Self::ClientClosed => StatusCode::BAD_REQUEST,
        }
    }

    /// A short machine-readable code, stable across protocols.
    pub fn code(&self) -> &'static str {
        match self {
            Self::BadRequest(_) => "invalid_request",
            Self::Unauthorized(_) => "invalid_api_key",
            Self::Forbidden(_) => "model_not_allowed",
            Self::CrossSite(_) => "origin_not_allowed",
            Self::ClientRateLimited { .. } => "rate_limit_exceeded",
            Self::BudgetExceeded { .. } => "budget_exceeded",
            Self::NotFound(_) => "not_found",
            Self::UnknownModel(_) => "model_not_found",
            Self::MethodNotAllowed(_) => "method_not_allowed",
            Self::PayloadTooLarge { .. } => "request_too_large",
            Self::BodyTimeout { .. } => "request_timeout",
            Self::Busy(_) => "gateway_busy",
            Self::ShuttingDown => "shutting_down",
            Self::NoProvider { .. } => "no_provider_available",
            Self::UpstreamTimeout { .. } => "upstream_timeout",
            Self::UpstreamUnreachable { .. } => "upstream_unreachable",
            Self::UpstreamBrokeOff { .. } => "upstream_stream_broken",
            Self::RetryKeyword { .. } => "upstream_rate_limited",
            Self::Upstream(_) => "upstream_error",
            Self::Internal(_) => "internal_error",
            Self::Loop => "gateway_loop",
            Self::ClientClosed => "client_closed",
        }
    }
}

/// An upstream's own error answer, boxed so that `Result<_, GatewayError>` stays small.
#[derive(Debug)]
pub struct UpstreamError {
    pub status: StatusCode,
    pub message: String,
    pub kind: Option<String>,
    pub code: Option<serde_json::Value>,
    pub param: Option<serde_json::Value>,
    pub retry_after: Option<http::HeaderValue>,
}
