//! Which failure an upstream answer is, per the breaker table.

use std::time::{Duration, SystemTime};

use http::StatusCode;

use crate::breaker::FailureKind;
use crate::error::GatewayError;

const QUOTA_WORDS: [&str; 5] = [
    "insufficient_quota",
    "quota",
    "billing",
    "credit balance",
    "payment required",
];

/// How an attempt failed: the error to return if it is the last, and what the breakers see.
/// `None` kind means the client's fault: returned at once, no failover.
pub(crate) fn failure_kind(e: &GatewayError) -> Option<FailureKind> {
    match e {
        GatewayError::UpstreamTimeout { .. } => Some(FailureKind::Timeout),
        GatewayError::UpstreamUnreachable { .. } => Some(FailureKind::Network),
        GatewayError::UpstreamBrokeOff { .. } => Some(FailureKind::ServerError),
        GatewayError::RetryKeyword { .. } => Some(FailureKind::RateLimited { retry_after: None }),
        GatewayError::Upstream(u) => classify_status(
            u.status,
            &u.message,
            u.code.as_ref().and_then(|c| c.as_str()),
            u.retry_after
                .as_ref()
                .and_then(|v| v.to_str().ok())
                .and_then(parse_retry_after),
        ),
        _ => None,
    }
}

/// `None` for a client error (400, 413, 422, other 4xx): the client's fault, returned as is,
/// with no failover and no breaker.
pub fn classify_status(
    status: StatusCode,
    message: &str,
    code: Option<&str>,
    retry_after: Option<Duration>,
) -> Option<FailureKind> {
    let lower = message.to_ascii_lowercase();
    let code = code.unwrap_or("").to_ascii_lowercase();
    match status.as_u16() {
        401 | 403 => Some(FailureKind::Auth),
        402 => Some(FailureKind::Quota),
        429 if QUOTA_WORDS
            .iter()
            .any(|w| lower.contains(w) || code.contains(w)) =>
        {
            Some(FailureKind::Quota)
        }
        429 => Some(FailureKind::RateLimited { retry_after }),
        404 if code.contains("model") || lower.contains("model") => {
            Some(FailureKind::ModelNotFound)
        }
        408 => Some(FailureKind::Timeout),
        500..=599 => Some(FailureKind::ServerError),
        _ => None,
    }
}

/// Retry-After as seconds or an HTTP date.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(v).ok()?;
    Some(
        at.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(status: u16, msg: &str) -> Option<FailureKind> {
        classify_status(StatusCode::from_u16(status).unwrap(), msg, None, None)
    }

    #[test]
    fn the_table() {
        assert_eq!(c(401, ""), Some(FailureKind::Auth));
        assert_eq!(c(403, ""), Some(FailureKind::Auth));
        assert_eq!(c(402, ""), Some(FailureKind::Quota));
        assert_eq!(
            c(429, "You exceeded your current quota"),
            Some(FailureKind::Quota)
        );
        assert_eq!(
            c(429, "slow down"),
            Some(FailureKind::RateLimited { retry_after: None })
        );
        assert_eq!(
            c(404, "The model `x` does not exist"),
            Some(FailureKind::ModelNotFound)
        );
        assert_eq!(c(500, ""), Some(FailureKind::ServerError));
        assert_eq!(c(503, ""), Some(FailureKind::ServerError));
        for s in [400, 404, 413, 422] {
            assert_eq!(c(s, "bad"), None, "{s}");
        }
    }

    #[test]
    fn retry_after_forms() {
        assert_eq!(parse_retry_after("17"), Some(Duration::from_secs(17)));
        let later = SystemTime::now() + Duration::from_secs(120);
        let d = parse_retry_after(&httpdate::fmt_http_date(later)).unwrap();
        assert!(
            d > Duration::from_secs(100) && d <= Duration::from_secs(120),
            "{d:?}"
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon"), None);
    }
}
