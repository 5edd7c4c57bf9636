//! `POST /api/route/preview`: what routing would do with a request, without sending it: the
//! route its name resolves to, what it needs, every candidate with its scores and why it may
//! not be tried, and the share of next requests each would take first. The shares come from
//! the strategy itself, run on the live scores (the same pure function a request runs), so the
//! next request follows the preview: at once for a deterministic choice (a priority tier, the
//! cheapest, round robin's next turn), by those odds for a random one.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use switchboard_api::{PreviewCandidate, PreviewTier, RoutePreview, RoutePreviewRequest};

use super::ServiceError;
use crate::balance::{self, Measures};
use crate::capabilities::{Needs, missing};
use crate::catalog::Candidate;
use crate::dispatch::failover::Slots;
use crate::engine::Engine;
use crate::error::GatewayError;

/// Choices drawn to measure the shares: enough for a share to within about 1 %.
const DRAWS: u32 = 4000;

/// A tiered model's classifier runs as for a request (a small model is asked, and its answer
/// cached, so the next request with this turn takes the same tier).
pub async fn route_preview(
    engine: &Arc<Engine>,
    req: &RoutePreviewRequest,
) -> Result<RoutePreview, ServiceError> {
    let snap = engine.snapshot();
    let name = req
        .model
        .clone()
        .or_else(|| {
            req.request
                .get("model")
                .and_then(serde_json::Value::as_str)
                .map(str::to_owned)
        })
        .ok_or_else(|| {
            ServiceError::Invalid("the request names no model: give request.model or model".into())
        })?;
    let client = match &req.client_key {
        Some(n) => Some(
            snap.client_keys
                .values()
                .find(|k| *k.name == **n)
                .cloned()
                .ok_or_else(|| ServiceError::NotFound(format!("no client key named '{n}'")))?,
        ),
        None => None,
    };
    let body = serde_json::to_vec(&req.request)
        .map_err(|e| ServiceError::Invalid(format!("request: {e}")))?;
    let mut tier = None;
    if let Some(t) = snap.tiered(&name) {
        if let Some(c) = &client
            && !c.allows(&t.name)
        {
            return Err(ServiceError::Invalid(format!(
                "the client key '{}' may not use model '{}'",
                c.name, t.name
            )));
        }
        let api = api_of(&req.request);
        let path = req.model.as_deref().map(|m| (m, false));
        let head = crate::protocol::openai::RequestHead::parse(api, &body, path)
            .map_err(|e| ServiceError::Invalid(format!("request: {e}")))?;
        let asked = crate::dispatch::classify::Asked {
            api,
            head: &head,
            body: &body,
            name: &name,
        };
        let p = crate::dispatch::classify::pick(engine, &snap, t, asked).await;
        tier = Some(PreviewTier {
            name: t.tier_name(p.tier).to_owned(),
            target: t.target(p.tier).to_owned(),
            reason: p.reason.to_string(),
            mode: t.mode().as_str().to_owned(),
        });
    }
    let name = tier.as_ref().map_or(name, |t| t.target.clone());
    let route = match snap.route(&name) {
        Some(r) => r.clone(),
        None => crate::dispatch::pipeline::pin(engine, &snap, client.as_deref(), &name).map_err(
            |e| match e {
                GatewayError::UnknownModel(m) => ServiceError::NotFound(format!("no model '{m}'")),
                other => ServiceError::Invalid(other.to_string()),
            },
        )?,
    };
    if let Some(c) = &client
        && tier.is_none()
        && !c.allows(&route.name)
    {
        return Err(ServiceError::Invalid(format!(
            "the client key '{}' may not use model '{}'",
            c.name, route.name
        )));
    }
    // Read as a request is: its raw `tools` value.
    let has_tools = req
        .request
        .get("tools")
        .is_some_and(|t| crate::capabilities::declares_tools(&t.to_string()));
    let needs = Needs::of(&body, has_tools, &route.limits.load());

    let now = Instant::now();
    let probes = engine.probes_active(&snap.settings);
    let why = |c: &Candidate| -> Option<String> {
        if !c.provider.enabled {
            return Some("disabled".into());
        }
        if c.provider.paused {
            return Some("paused".into());
        }
        if let Some(q) =
            engine
                .log
                .quotas()
                .why(&c.provider.name, &c.model, crate::protocol::unix_now_ms())
        {
            return Some(q);
        }
        if needs.any()
            && let Some(m) = missing(&c.breaker.live.caps.load(), &needs)
        {
            return Some(m);
        }
        let open = if probes {
            engine.breakers.closed(&c.provider.breaker, &c.breaker)
        } else {
            engine
                .breakers
                .available(&c.provider.breaker, &c.breaker, now)
        };
        (!open).then(|| "cooling down (a breaker is open)".into())
    };
    let candidates = &route.candidates;
    let reasons: Vec<Option<String>> = candidates.iter().map(why).collect();
    let tick = balance::ticks(now);
    let now_ms = crate::protocol::unix_now_ms();
    let slots = || Slots::of(&route, tick, engine.log.quotas(), now_ms);
    let who: Arc<str> = client
        .as_ref()
        .map_or_else(|| Arc::from("-"), |c| c.name.clone());
    let turn = route.turn.load(Ordering::Relaxed);
    let mut counts = vec![0u32; candidates.len()];
    let mut rng = fastrand::Rng::with_seed(0x5eed);
    for _ in 0..DRAWS {
        if let Some(i) = balance::pick(
            route.strategy,
            candidates,
            &route.groups,
            |i| reasons[i].is_none(),
            slots(),
            |uid| engine.sticky.model(&who, uid),
            turn,
            &mut rng,
        ) {
            counts[i] += 1;
        }
    }
    let m = slots();
    let out: Vec<PreviewCandidate> = candidates
        .iter()
        .enumerate()
        .map(|(i, c)| PreviewCandidate {
            provider: c.provider.name.to_string(),
            model: c.model.to_string(),
            quota_left: engine.log.quotas().left(&c.provider.name, &c.model, now_ms),
            usable: reasons[i].is_none(),
            why: reasons[i].clone(),
            health: m.health(i),
            provider_health: m.provider_health(i),
            latency_ms: m.latency_ms(i),
            in_flight: m.in_flight(i),
            price: m.price(i),
            share: f64::from(counts[i]) / f64::from(DRAWS),
        })
        .collect();
    let mut order: Vec<usize> = (0..candidates.len()).filter(|&i| counts[i] > 0).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(counts[i]));
    Ok(RoutePreview {
        tier,
        route: route.name.to_string(),
        strategy: route.strategy.as_str().to_owned(),
        images: needs.images,
        tools: needs.tools,
        tokens: needs.tokens,
        order: order
            .into_iter()
            .map(|i| format!("{}/{}", candidates[i].provider.name, candidates[i].model))
            .collect(),
        candidates: out,
    })
}

/// Which API a preview's body is in, by its shape (the preview takes any of them).
fn api_of(request: &serde_json::Value) -> crate::protocol::Api {
    use crate::protocol::Api;
    if request.get("contents").is_some() {
        Api::Gemini
    } else if request.get("input").is_some() {
        Api::Responses
    } else if request.get("thinking").is_some() || request.get("system").is_some() {
        Api::Messages
    } else {
        Api::Chat
    }
}
