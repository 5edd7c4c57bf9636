//! The tier a tiered model's request takes: by its rules, drawn by weight, or named by a small
//! model asked through the gateway itself (one pipeline run, logged like any request), within
//! a timeout and through a cache. When the small model fails, the fallback tier or the rules
//! decide, and the reason says so.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use http::HeaderMap;
use serde_json::Value;
use switchboard_api::tiers::ClassifierMode;

use super::pipeline::{self, ClientRequest, Inbound, Reply};
use crate::catalog::Snapshot;
use crate::config::Protocol;
use crate::engine::Engine;
use crate::protocol::Api;
use crate::protocol::openai::RequestHead;
use crate::requestlog::Recorder;
use crate::tiers::{Cache, Pick, Reason, Signals, Tiered, answer_tier, prompt};

/// The most of a classifier's answer read (bytes): a tier name is a word.
const MAX_ANSWER: usize = 64 * 1024;

/// The request a tier is picked for.
#[derive(Clone, Copy)]
pub(crate) struct Asked<'a> {
    pub api: Api,
    pub head: &'a RequestHead<'a>,
    pub body: &'a [u8],
    /// The model name the client sent.
    pub name: &'a str,
}

impl<'a> Asked<'a> {
    fn signals(&self, tiered: &Tiered) -> Signals<'a> {
        Signals::read(self.api, self.head, self.body, self.name, tiered.wants)
    }
}

pub(crate) async fn pick(
    engine: &Arc<Engine>,
    snap: &Snapshot,
    tiered: &Tiered,
    asked: Asked<'_>,
) -> Pick {
    match tiered.mode() {
        ClassifierMode::Rules => tiered.by_rules(&asked.signals(tiered)),
        ClassifierMode::Off => tiered.drawn(&mut fastrand::Rng::new()),
        ClassifierMode::Model => by_model(engine, snap, tiered, asked).await,
    }
}

/// The cache is looked at with the turn alone: the rest of the request is measured only when
/// the rules decide.
async fn by_model(
    engine: &Arc<Engine>,
    snap: &Snapshot,
    tiered: &Tiered,
    asked: Asked<'_>,
) -> Pick {
    let turn = Signals::turn(asked.api, asked.head);
    if let Some(p) = tiered.cached(&engine.tier_cache, turn) {
        return p;
    }
    let ms = tiered.spec.classifier.timeout_ms();
    let model = tiered.spec.classifier.model.as_deref().unwrap_or_default();
    let answer = tokio::time::timeout(
        Duration::from_millis(ms),
        ask(engine, snap, tiered, model, turn),
    )
    .await;
    let why = match answer {
        Ok(Ok(tier)) => {
            engine.tier_cache.put(
                Cache::key(&tiered.name, turn),
                tiered.tier_name(tier).into(),
            );
            return Pick {
                tier,
                reason: Reason::Classifier { cached: false },
            };
        }
        Ok(Err(why)) => why,
        Err(_) => format!("the classifier model '{model}' did not answer within {ms} ms"),
    };
    tracing::debug!(model = %tiered.name, "{why}");
    match tiered
        .spec
        .classifier
        .fallback
        .as_deref()
        .and_then(|f| tiered.position(f))
    {
        Some(tier) => Pick {
            tier,
            reason: Reason::Fallback { why },
        },
        None => {
            let rules = tiered.by_rules(&asked.signals(tiered));
            Pick {
                tier: rules.tier,
                reason: Reason::ClassifierFailed {
                    why,
                    then: Box::new(rules.reason),
                },
            }
        }
    }
}

/// One chat request to the classifier model through the pipeline. Boxed: the pipeline runs
/// this, and this runs the pipeline (for a model that is not tiered, so once).
fn ask<'a>(
    engine: &'a Arc<Engine>,
    snap: &'a Snapshot,
    tiered: &'a Tiered,
    model: &'a str,
    turn: &'a str,
) -> Pin<Box<dyn Future<Output = Result<usize, String>> + Send + 'a>> {
    Box::pin(async move {
        if snap.tiered(model).is_some() {
            return Err(format!(
                "the classifier model '{model}' is itself tiered; name a plain unified model"
            ));
        }
        let headers = HeaderMap::new();
        let req = ClientRequest {
            inbound: Inbound {
                api: Api::Chat,
                endpoint: "classifier",
                path: None,
                json_array: false,
            },
            headers: &headers,
            body: Bytes::from(prompt(tiered, model, turn)),
            client: None,
        };
        let record = Recorder::new(&engine.log, Protocol::OpenAi, "classifier");
        let body = match pipeline::run(engine, snap, req, record).await {
            Ok(Reply::Whole { status, body, .. }) if status.is_success() => body,
            Ok(Reply::Stream { status, body, .. }) if status.is_success() => {
                read_all(*body).await?
            }
            Ok(Reply::Whole { status, .. } | Reply::Stream { status, .. }) => {
                return Err(format!("the classifier model '{model}' answered {status}"));
            }
            Err(refusal) => {
                return Err(format!(
                    "the classifier model '{model}' failed: {}",
                    refusal.error
                ));
            }
        };
        let text = serde_json::from_slice::<Value>(&body)
            .ok()
            .and_then(|v| {
                v.pointer("/choices/0/message/content")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            })
            .ok_or_else(|| format!("the classifier model '{model}' sent no message"))?;
        answer_tier(tiered, &text).ok_or_else(|| {
            format!(
                "the classifier model's answer names no tier: {:?}",
                crate::outside::clip(&text, 80)
            )
        })
    })
}

async fn read_all(mut body: super::ProxyBody) -> Result<Bytes, String> {
    let mut out = Vec::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| format!("the classifier's answer broke off: {e}"))?;
        if out.len() + chunk.len() > MAX_ANSWER {
            return Err(format!(
                "the classifier's answer is longer than {MAX_ANSWER} bytes"
            ));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(out))
}
