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
        "No admin password is set: choose one at /admin on this machine (POST /api/setup), start Switchboard with SWITCHBOARD_ADMIN_PASSWORD, or run `switchboard admin set-password`"
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
    if !fresh_code(engine, req.totp.as_deref()) {
        // A wrong code is a failed attempt: the password alone must not be enough to keep
        // guessing codes.
        let locked = attempt.failed();
        tracing::warn!(client = %peer, locked, "admin login failed: two-factor code");
        return Err(LoginError::WrongCode);
    }
    attempt.succeeded();
    tracing::info!(client = %peer, "admin login");
    session(engine, ttl)
}

/// True without a second factor, or with a code that is right and not spent. A code (or an
/// earlier one) that let someone in already lets nobody in again: a code seen over a shoulder
/// or on the wire is spent.
fn fresh_code(engine: &Engine, code: Option<&str>) -> bool {
    let Some(secret) = &engine.admin_totp else {
        return true;
    };
    let step =
        code.and_then(|c| crate::totp::matching_step(secret, c, crate::protocol::unix_now()));
    step.is_some_and(|s| {
        engine
            .admin_totp_last_step
            .fetch_max(s, std::sync::atomic::Ordering::SeqCst)
            < s
    })
}

fn session(engine: &Engine, ttl: Duration) -> Result<LoginResponse, LoginError> {
    let token = engine
        .admin_sessions
        .issue_login(ttl)
        .map_err(LoginError::Token)?;
    Ok(LoginResponse {
        token,
        expires_in_s: ttl.as_secs(),
    })
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum SetupError {
    #[error(
        "The first admin password can be chosen here only from this machine, with the gateway listening on loopback; otherwise start Switchboard with SWITCHBOARD_ADMIN_PASSWORD, or run `switchboard admin set-password`"
    )]
    NotHere,
    #[error(
        "An admin password is set already: log in with it (or run `switchboard admin set-password`)"
    )]
    AlreadySet,
    #[error("The first password is being set by another request")]
    Busy,
    #[error("{0}")]
    Password(#[from] crate::admin_auth::PasswordError),
    #[error(transparent)]
    Login(#[from] LoginError),
}

/// Whether an admin password exists, and whether `peer` may choose the first one.
pub(crate) async fn setup_status(
    engine: &Engine,
    peer: SocketAddr,
) -> Result<switchboard_api::SetupStatus, StoreError> {
    let password_set = engine
        .store
        .call(|c| store::admin_password_hash(c))
        .await?
        .is_some();
    Ok(switchboard_api::SetupStatus {
        password_set,
        can_choose: !password_set && may_choose(engine, peer),
    })
}

/// On a gateway that listens on loopback, from loopback: beyond it, anyone on the network
/// could claim the gateway first, so there the environment variable stays required.
fn may_choose(engine: &Engine, peer: SocketAddr) -> bool {
    peer.ip().is_loopback()
        && crate::catalog::is_loopback_host(&engine.snapshot().settings.server.host)
}

/// The first admin password, chosen on the first visit (as the products our users come from
/// do): stored only if none is there, and the caller is logged in with it.
pub(crate) async fn setup(
    engine: &Engine,
    req: LoginRequest,
    peer: SocketAddr,
) -> Result<LoginResponse, SetupError> {
    use std::sync::atomic::{AtomicBool, Ordering};
    // One at a time: argon2 is slow, and a second request must not race the first.
    static SETTING: AtomicBool = AtomicBool::new(false);
    struct Release;
    impl Drop for Release {
        fn drop(&mut self) {
            SETTING.store(false, Ordering::SeqCst);
        }
    }
    if !may_choose(engine, peer) {
        return Err(SetupError::NotHere);
    }
    if engine
        .store
        .call(|c| store::admin_password_hash(c))
        .await
        .map_err(LoginError::from)?
        .is_some()
    {
        return Err(SetupError::AlreadySet);
    }
    if SETTING.swap(true, Ordering::SeqCst) {
        return Err(SetupError::Busy);
    }
    let _release = Release;
    if !fresh_code(engine, req.totp.as_deref()) {
        return Err(LoginError::WrongCode.into());
    }
    let password = req.password;
    let hash = tokio::task::spawn_blocking(move || crate::admin_auth::hash_password(&password))
        .await
        .map_err(|e| crate::admin_auth::PasswordError::Hash(e.to_string()))??;
    let added = engine
        .store
        .call(move |c| store::set_first_admin_password_hash(c, &hash))
        .await
        .map_err(LoginError::from)?;
    if !added {
        return Err(SetupError::AlreadySet);
    }
    tracing::info!(client = %peer, "admin password chosen on the first visit");
    let ttl = engine.snapshot().settings.admin.session_ttl();
    Ok(session(engine, ttl)?)
}
