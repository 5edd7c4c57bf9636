//! The admin login: password (argon2, off the async workers), lockout after failures, and the
//! second factor when one is set; a session token when all pass.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use switchboard_api::{LoginRequest, LoginResponse};

use crate::admin_auth::{LoginPolicy, Refused, verify_password};
use crate::engine::Engine;
use crate::store::{self, StoreError};

#[derive(Debug, thiserror::Error)]
pub(crate) enum LoginError {
    #[error(
        "No admin password is set: start Switchboard with SWITCHBOARD_ADMIN_PASSWORD, or run `switchboard admin set-password`"
    )]
    NoPassword,
    /// Locked out, or too many logins being checked at once: try again after `retry_after`.
    #[error("{message}")]
    Refused {
        message: String,
        retry_after: Duration,
    },
    #[error("Wrong password")]
    WrongPassword,
    #[error("Enter the 6-digit code from your authenticator app (two-factor login is on)")]
    WrongCode,
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Token(getrandom::Error),
}

pub(crate) async fn login(
    engine: &Engine,
    req: LoginRequest,
    peer: SocketAddr,
) -> Result<LoginResponse, LoginError> {
    let now = Instant::now();
    let hash = engine
        .store
        .call(|c| store::admin_password_hash(c))
        .await?
        .ok_or(LoginError::NoPassword)?;
    let (policy, ttl) = {
        let snap = engine.snapshot();
        (
            LoginPolicy::from_settings(&snap.settings.admin),
            snap.settings.admin.session_ttl(),
        )
    };
    let attempt = match engine.login_guard.begin(now, &hash, policy, peer.ip()) {
        Ok(a) => a,
        Err(refused) => {
            let (retry_after, message) = match refused {
                Refused::Locked(left) => (
                    left,
                    format!(
                        "Login is locked after {} failed attempts; try again in {} minute(s), or set a new password with `switchboard admin set-password`",
                        policy.max_failures,
                        left.as_secs().div_ceil(60)
                    ),
                ),
                Refused::Busy => (
                    Duration::from_secs(1),
                    "Too many login attempts are being checked; try again in a moment".to_owned(),
                ),
            };
            tracing::warn!(client = %peer, "admin login refused: {message}");
            return Err(LoginError::Refused {
                message,
                retry_after,
            });
        }
    };
    // argon2 is deliberately slow: keep it off the async workers.
    let password = req.password;
    let ok = tokio::task::spawn_blocking(move || verify_password(&password, &hash))
        .await
        .unwrap_or(false);
    if !ok {
        let locked = attempt.failed();
        tracing::warn!(client = %peer, locked, "admin login failed");
        return Err(LoginError::WrongPassword);
    }
    if let Some(secret) = &engine.admin_totp {
        let step = req
            .totp
            .as_deref()
            .and_then(|c| crate::totp::matching_step(secret, c, crate::protocol::unix_now()));
        // A code (or an earlier one) that let someone in already lets nobody in again: a code
        // seen over a shoulder or on the wire is spent.
        let fresh = step.is_some_and(|s| {
            engine
                .admin_totp_last_step
                .fetch_max(s, std::sync::atomic::Ordering::SeqCst)
                < s
        });
        if !fresh {
            // A wrong code is a failed attempt: the password alone must not be enough to keep
            // guessing codes.
            let locked = attempt.failed();
            tracing::warn!(client = %peer, locked, "admin login failed: two-factor code");
            return Err(LoginError::WrongCode);
        }
    }
    attempt.succeeded();
    tracing::info!(client = %peer, "admin login");
    let token = engine
        .admin_sessions
        .issue_login(ttl)
        .map_err(LoginError::Token)?;
    Ok(LoginResponse {
        token,
        expires_in_s: ttl.as_secs(),
    })
}
