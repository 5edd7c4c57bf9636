//! Admin operations, independent of transport: the HTTP admin API calls these, and so will the
//! tray's menu through the desktop shell.

mod capabilities;
mod clients;
mod connect_test;
mod edit;
mod groups;
pub(crate) mod login;
mod logs;
mod prices;
mod quotas;
mod route_preview;
mod stats;
pub(crate) mod sync;
mod whatif;

use std::time::Instant;

use switchboard_api::{
    BreakerState, BreakerView, GatewayState, HealthView, ModelHealth, ProviderState,
    ProviderStatus, ProviderView, RouteCandidate, StatusResponse, SyncView, UnifiedModelStatus,
};

use crate::breaker::{Breaker, State};
use crate::engine::{Engine, unix_seconds};
use crate::secrets::ProviderKey;
use crate::store::{self, KeyRef, StoreError};
use sync::sync_provider;

pub use capabilities::{capabilities, put_capabilities};
pub use clients::{agent_clients, connect, disconnect, keep};
pub use groups::groups;
pub use logs::{ExportFormat, daily, export_logs, live_filter, log, logs, passes};
pub use prices::{prices, put_prices};
pub use quotas::{put_quotas, quotas};
pub use route_preview::route_preview;
pub use stats::{stats, totals_since};
pub use whatif::whatif;

pub use edit::{
    client_keys, create_client_key, delete_model, delete_provider, export, models, patch_settings,
    put_budget, put_model, put_provider, rename_provider, revoke_client_key, settings,
};

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("no provider named '{0}'")]
    UnknownProvider(String),
    #[error("no model '{model}' at provider '{provider}'")]
    UnknownModel { provider: String, model: String },
    #[error("model list sync failed: {0}")]
    Sync(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// A rule or include the admin sent is invalid: which one, and why.
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn breaker_view(b: Option<&Breaker>) -> BreakerView {
    let Some(b) = b else {
        return BreakerView {
            state: BreakerState::Closed,
            reason: None,
            until: None,
            last_error: None,
        };
    };
    let (state, until) = match b.state {
        State::Closed => (BreakerState::Closed, None),
        State::HalfOpen => (BreakerState::HalfOpen, None),
        State::Open { until } => (BreakerState::Open, until.map(unix_seconds)),
    };
    BreakerView {
        state,
        reason: b.reason.map(str::to_owned),
        until,
        last_error: b.last_error.clone(),
    }
}

pub async fn providers(engine: &Engine) -> Result<Vec<ProviderView>, ServiceError> {
    let snap = engine.snapshot();
    let state = engine.store.call(|c| store::load(c)).await?;
    let sync = engine.store.call(|c| store::sync_info(c)).await?;
    Ok(state
        .providers
        .iter()
        .map(|p| {
            let live = snap.providers.iter().find(|l| *l.uid == *p.uid);
            let key = match (&p.key_ref, live.map(|l| &l.key)) {
                (KeyRef::Env(name), _) => format!("env:{name}"),
                (KeyRef::Stored, Some(ProviderKey::Missing)) => "keychain (missing)".into(),
                // The last four characters at most: enough to tell two keys apart.
                (KeyRef::Stored, Some(ProviderKey::Stored(secret))) => {
                    format!("keychain (…{})", secret.last4())
                }
                (KeyRef::Stored, _) => "keychain".into(),
                (KeyRef::None, _) => "none".into(),
            };
            let s = sync
                .iter()
                .find(|(n, _)| *n == p.name)
                .map(|(_, s)| SyncView {
                    source: s.source.clone(),
                    synced_at: s.synced_at.clone(),
                    last_error: s.last_error.clone(),
                })
                .unwrap_or_default();
            ProviderView {
                name: p.name.clone(),
                base_url: p.base_url.clone(),
                protocols: p.protocols.iter().map(|x| x.as_str().to_owned()).collect(),
                weight: p.weight,
                priority: p.priority,
                enabled: p.enabled,
                paused: p.paused,
                paused_until: p.paused_until,
                key,
                models: p.models.clone(),
                sync: s,
                responses: p.responses,
            }
        })
        .collect())
}

/// A quota's standing, and until when (unix seconds) it is at a limit.
fn quota_of(
    engine: &Engine,
    scope: &str,
    now_ms: i64,
) -> (Vec<switchboard_api::budget::BudgetUse>, Option<u64>) {
    match engine.log.quotas().get(scope) {
        Some(s) => (
            s.uses(now_ms),
            s.blocked_until(now_ms)
                .and_then(|ms| u64::try_from(ms / 1000).ok()),
        ),
        None => (Vec::new(), None),
    }
}

pub fn status(engine: &Engine) -> StatusResponse {
    let snap = engine.snapshot();
    let now = Instant::now();
    let now_ms = crate::protocol::unix_now_ms();
    let providers = snap
        .providers
        .iter()
        .map(|p| {
            let breakers = engine.breakers.models_of(&p.uid);
            let (provider_score, scores) = engine
                .breakers
                .scores_of(&p.uid, crate::balance::ticks(now));
            let mut models: Vec<ModelHealth> = p
                .models
                .iter()
                .map(|m| {
                    let model: std::sync::Arc<str> = m.as_str().into();
                    let b = breakers.iter().find(|(k, _)| *k == model).map(|(_, b)| b);
                    let h = engine.health.get(&p.uid, &model).unwrap_or_default();
                    let score = scores.iter().find(|(k, _)| *k == model).map(|(_, s)| *s);
                    let (quota, quota_until) = quota_of(engine, &format!("{}/{m}", p.name), now_ms);
                    ModelHealth {
                        quota,
                        quota_until,
                        model: m.clone(),
                        breaker: breaker_view(b),
                        health: HealthView {
                            success_rate: h.success_rate(),
                            samples: h.samples(),
                            latency_ms: h.latency_ewma_ms,
                            ttfb_ms: h.ttfb_ewma_ms,
                            last_error: h.last_error.clone(),
                            requests: h.requests,
                            failures: h.failures,
                            score,
                        },
                    }
                })
                .collect();
            models.sort_by(|a, b| a.model.cmp(&b.model));
            let (quota, quota_until) = quota_of(engine, &p.name, now_ms);
            ProviderStatus {
                quota,
                quota_until,
                requests: models.iter().map(|m| m.health.requests).sum(),
                failures: models.iter().map(|m| m.health.failures).sum(),
                name: p.name.to_string(),
                enabled: p.enabled,
                paused: p.paused,
                paused_until: p.paused_until,
                breaker: breaker_view(engine.breakers.provider(&p.uid).as_ref()),
                score: provider_score,
                models,
            }
        })
        .collect();
    // The `auto:*` groups hold every model that qualifies: the status lists the user's own.
    let mut models: Vec<UnifiedModelStatus> = snap
        .routes
        .values()
        .filter(|r| !r.group)
        .map(|r| UnifiedModelStatus {
            name: r.name.to_string(),
            candidates: r
                .candidates
                .iter()
                .map(|c| RouteCandidate {
                    provider: c.provider.name.to_string(),
                    model: c.model.to_string(),
                    available: c.provider.enabled
                        && !c.provider.paused
                        && !engine
                            .log
                            .quotas()
                            .blocked(&c.provider.name, &c.model, now_ms)
                        && engine
                            .breakers
                            .available(&c.provider.breaker, &c.breaker, now),
                })
                .collect(),
        })
        .collect();
    models.sort_by(|a, b| a.name.cmp(&b.name));
    StatusResponse { providers, models }
}

pub async fn set_paused(
    engine: &Engine,
    name: &str,
    paused: bool,
    duration: Option<std::time::Duration>,
) -> Result<(), ServiceError> {
    if engine.set_paused(name, paused, duration).await? {
        Ok(())
    } else {
        Err(ServiceError::UnknownProvider(name.to_owned()))
    }
}

pub async fn sync(engine: &Engine, name: &str) -> Result<usize, ServiceError> {
    if !engine.snapshot().providers.iter().any(|p| &*p.name == name) {
        return Err(ServiceError::UnknownProvider(name.to_owned()));
    }
    sync_provider(engine, name)
        .await
        .map_err(ServiceError::Sync)
}

/// Closes breakers: all, one provider's (and its models'), or one model's.
pub fn reset_breakers(
    engine: &Engine,
    provider: Option<&str>,
    model: Option<&str>,
) -> Result<(), ServiceError> {
    let snap = engine.snapshot();
    let uid = match provider {
        None => None,
        Some(name) => Some(
            snap.providers
                .iter()
                .find(|p| &*p.name == name)
                .map(|p| p.uid.clone())
                .ok_or_else(|| ServiceError::UnknownProvider(name.to_owned()))?,
        ),
    };
    if let (Some(m), Some(p)) = (model, provider) {
        let known = snap
            .providers
            .iter()
            .any(|x| &*x.name == p && x.models.iter().any(|id| id == m));
        if !known {
            return Err(ServiceError::UnknownModel {
                provider: p.to_owned(),
                model: m.to_owned(),
            });
        }
    }
    engine.reset_breakers(uid.as_deref(), model);
    Ok(())
}

/// What a unified model's rules would resolve to against the live providers, without saving:
/// the admin UI's live preview, and the place an invalid regex is refused with its reason.
pub fn preview(
    engine: &Engine,
    req: &switchboard_api::ModelPreviewRequest,
) -> Result<switchboard_api::ModelPreviewResponse, ServiceError> {
    use crate::config::{parse_include, parse_rule};
    let rules = req
        .rules
        .iter()
        .enumerate()
        .map(|(i, r)| {
            parse_rule(&r.kind, r.value.clone())
                .map_err(|e| ServiceError::Invalid(format!("rules[{i}]: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let include = req
        .include
        .iter()
        .enumerate()
        .map(|(i, s)| {
            parse_include(s).map_err(|e| ServiceError::Invalid(format!("include[{i}]: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let snap = engine.snapshot();
    if let Some(g) = &req.group {
        g.check().map_err(ServiceError::Invalid)?;
        let mut members = crate::catalog::groups::members(&snap, &engine.breakers, g);
        members.sort_by(|a, b| {
            a.provider
                .name
                .cmp(&b.provider.name)
                .then_with(|| a.model.cmp(&b.model))
        });
        return Ok(switchboard_api::ModelPreviewResponse {
            candidates: members
                .into_iter()
                .map(|c| switchboard_api::PreviewPair {
                    provider: c.provider.name.to_string(),
                    model: c.model.to_string(),
                })
                .collect(),
            warnings: Vec::new(),
        });
    }
    let mut warnings = Vec::new();
    let mut pairs = crate::catalog::resolve(
        &req.name,
        &rules,
        &include,
        &req.exclude_providers,
        &snap.providers,
        &mut warnings,
    )
    .map_err(ServiceError::Invalid)?;
    pairs.sort_by(|a, b| a.0.name.cmp(&b.0.name).then_with(|| a.1.cmp(&b.1)));
    Ok(switchboard_api::ModelPreviewResponse {
        candidates: pairs
            .into_iter()
            .map(|(p, m)| switchboard_api::PreviewPair {
                provider: p.name.to_string(),
                model: m.to_string(),
            })
            .collect(),
        warnings,
    })
}

/// What a provider whose key was refused needs.
pub const KEY_REFUSED: &str =
    "The provider refused its API key (401/403). Fix the key in Providers, then reset its breaker.";

/// The gateway at a glance: what the tray icon shows and its title says.
pub fn summary(engine: &Engine) -> switchboard_api::Summary {
    use switchboard_api::{ProviderSummary, Summary};
    let snap = engine.snapshot();
    let now = Instant::now();
    let now_ms = crate::protocol::unix_now_ms();
    let enabled: Vec<_> = snap.providers.iter().filter(|p| p.enabled).collect();
    let providers: Vec<ProviderSummary> = enabled
        .iter()
        .map(|p| {
            if p.paused {
                return ProviderSummary {
                    name: p.name.to_string(),
                    state: ProviderState::Paused,
                    reason: None,
                    until: p.paused_until,
                };
            }
            // At its own quota: cooling until the quota resets, and the tray says which.
            if let Some(slot) = engine.log.quotas().get(&p.name)
                && let Some(until) = slot.blocked_until(now_ms)
            {
                let limit = slot
                    .uses(now_ms)
                    .into_iter()
                    .find(|u| u.used >= u.amount)
                    .map_or_else(String::new, |u| format!(" {}", u.limit));
                return ProviderSummary {
                    name: p.name.to_string(),
                    state: ProviderState::Cooling,
                    reason: Some(format!("at its quota{limit}")),
                    until: u64::try_from(until / 1000).ok(),
                };
            }
            let own = engine.breakers.provider(&p.uid).filter(|b| !b.is_closed());
            let worst = own.or_else(|| {
                engine
                    .breakers
                    .models_of(&p.uid)
                    .into_iter()
                    .map(|(_, b)| b)
                    .filter(|b| !b.is_closed())
                    .max_by_key(|b| b.until())
            });
            match worst {
                // Open until reset: no cooldown will end it, a person must fix the key.
                Some(b) if b.state == crate::breaker::State::Open { until: None } => {
                    ProviderSummary {
                        name: p.name.to_string(),
                        state: ProviderState::KeyRefused,
                        reason: Some(KEY_REFUSED.into()),
                        until: None,
                    }
                }
                Some(b) => ProviderSummary {
                    name: p.name.to_string(),
                    state: ProviderState::Cooling,
                    reason: b.reason.map(str::to_owned),
                    until: b.until().map(unix_seconds),
                },
                None => ProviderSummary {
                    name: p.name.to_string(),
                    state: ProviderState::Ok,
                    reason: None,
                    until: None,
                },
            }
        })
        .collect();
    let any_available = snap.routes.values().any(|r| {
        r.candidates.iter().any(|c| {
            c.provider.enabled
                && !c.provider.paused
                && !engine
                    .log
                    .quotas()
                    .blocked(&c.provider.name, &c.model, now_ms)
                && engine
                    .breakers
                    .available(&c.provider.breaker, &c.breaker, now)
        })
    });
    let state =
        if !providers.is_empty() && providers.iter().all(|p| p.state == ProviderState::Paused) {
            GatewayState::Paused
        } else if !any_available {
            GatewayState::Down
        } else if providers
            .iter()
            .any(|p| matches!(p.state, ProviderState::Cooling | ProviderState::KeyRefused))
        {
            GatewayState::Degraded
        } else {
            GatewayState::Ok
        };
    Summary { state, providers }
}
