//! Active health probes (off unless `routing.probe_interval_s` > 0; the runtime's probe task
//! keeps the time): a one-token request to each candidate on an interval, and at once to any
//! candidate whose cooldown ended, so the half-open trial is a probe rather than a user's
//! request. Outcomes feed the breakers like any other.

use std::collections::HashSet;
use std::time::Instant;

use bytes::Bytes;
use http::HeaderMap;

use super::failover::TrialGuard;
use super::{Upstream, post_json};
use crate::breaker::{Admission, FailureKind};
use crate::catalog::Candidate;
use crate::engine::Engine;
use crate::health::failure_kind;
use crate::protocol::{Api, convert, ir};

/// The candidates to probe now: at a round (`round_due`) every closed one, and at any time
/// those whose cooldown ended, so that their half-open trial is a probe.
pub(crate) fn due(engine: &Engine, round_due: bool, now: Instant) -> Vec<Candidate> {
    let snap = engine.snapshot();
    let mut seen = HashSet::new();
    let mut targets: Vec<Candidate> = Vec::new();
    for route in snap.routes.values().filter(|r| r.probe) {
        for c in &route.candidates {
            let p = &c.provider;
            if !p.enabled || p.paused {
                continue;
            }
            if !seen.insert((p.uid.clone(), c.model.clone())) {
                continue;
            }
            let closed = engine.breakers.closed(&p.breaker, &c.breaker);
            let due_trial = !closed && engine.breakers.available(&p.breaker, &c.breaker, now);
            if due_trial || (round_due && closed) {
                targets.push(c.clone());
            }
        }
    }
    targets
}

/// A one-token "ping" chat in the provider's own protocol.
fn ping(c: &Candidate) -> Upstream {
    let protocol = c.provider.chat_protocol(None);
    let req = ir::ChatRequest {
        messages: vec![ir::Message {
            role: ir::Role::User,
            parts: vec![ir::Part::Text("ping".into())],
        }],
        max_tokens: Some(1),
        ..Default::default()
    };
    let body = convert::encode_request(protocol, &req, &c.model, &mut ir::Notes::default());
    let api = Api::chat_of(protocol);
    Upstream {
        url: c.provider.url(api, &c.model, false),
        api,
        body: Bytes::from(body.to_string()),
        converted: true,
        stream: false,
    }
}

pub(crate) async fn probe(engine: &Engine, c: &Candidate) {
    let snap = engine.snapshot();
    let now = Instant::now();
    let admission = engine.admit(c, now);
    if admission == Admission::Refused {
        return;
    }
    let _trial = (admission == Admission::Trial).then(|| TrialGuard {
        engine,
        candidate: c,
        started: now,
    });
    let limit = snap.settings.routing.first_byte_timeout();
    let started = Instant::now();
    let result = post_json(
        &engine.http,
        c,
        ping(c),
        &HeaderMap::new(),
        limit,
        "routing.first_byte_timeout_s",
    )
    .await;
    let latency = started.elapsed();
    match result {
        Ok(resp) => {
            // Read the (tiny) answer so the connection goes back to the pool.
            let _ = tokio::time::timeout(limit, resp.bytes()).await;
            engine.on_success(c, latency, Some(latency));
        }
        Err(e) => {
            let message = e.to_string();
            // Any other refusal (a 400, a 404 not naming the model) is a failure too: a probe
            // answered with an error is no sign that requests will be served.
            let kind = failure_kind(&e).unwrap_or(FailureKind::ServerError);
            engine.on_failure(c, &kind, &message, latency);
            tracing::debug!(provider = %c.provider.name, model = %c.model, "probe failed: {message}");
        }
    }
}
