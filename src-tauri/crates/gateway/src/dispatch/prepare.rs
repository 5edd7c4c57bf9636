//! The client's request made ready for one candidate: natively (the client's bytes, with the
//! model and the route's parameters rewritten where they differ) or converted to the
//! provider's chat protocol through the neutral form (decoded once, when a candidate first
//! needs it).

use std::sync::OnceLock;

use bytes::Bytes;
use serde_json::Value;
use serde_json::value::RawValue;

use super::Upstream;
use crate::catalog::{Candidate, Route};
use crate::config::Protocol;
use crate::error::GatewayError;
use crate::protocol::convert;
use crate::protocol::ir::{self, Notes};
use crate::protocol::openai::RequestHead;
use crate::protocol::{Api, gemini};

pub(crate) struct Prepare<'a> {
    pub api: Api,
    pub head: &'a RequestHead<'a>,
    pub route: &'a Route,
    pub bytes: &'a Bytes,
    /// Ask a native chat upstream for the stream's usage (`stream_options.include_usage`).
    pub ask_usage: bool,
    neutral: OnceLock<Result<ir::ChatRequest, GatewayError>>,
}

impl<'a> Prepare<'a> {
    pub(crate) fn new(
        api: Api,
        head: &'a RequestHead<'a>,
        route: &'a Route,
        bytes: &'a Bytes,
        ask_usage: bool,
    ) -> Self {
        Self {
            api,
            head,
            route,
            bytes,
            ask_usage,
            neutral: OnceLock::new(),
        }
    }

    /// The request in the neutral form, decoded on first use.
    pub(crate) fn neutral(&self) -> Result<&ir::ChatRequest, GatewayError> {
        self.neutral
            .get_or_init(|| {
                let v: Value = serde_json::from_slice(self.bytes)
                    .map_err(|e| GatewayError::BadRequest(e.to_string()))?;
                let mut notes = Notes::default();
                let mut req = convert::decode_request(self.api, &v, &mut notes)
                    .map_err(|e| GatewayError::BadRequest(e.to_string()))?;
                // Gemini says it in the path, not the body.
                req.stream = self.head.stream;
                log_notes(&notes, "-", &self.head.model);
                Ok(req)
            })
            .as_ref()
            .map_err(|e| GatewayError::BadRequest(e.to_string()))
    }

    /// The request for `c`; `as_chat`: converted to chat even where the provider would take
    /// the client's API natively (a Responses request to a chat-only relay).
    pub(crate) fn upstream(&self, c: &Candidate, as_chat: bool) -> Result<Upstream, GatewayError> {
        let (api, head, route) = (self.api, self.head, self.route);
        let p = &c.provider;
        if !as_chat && p.serves_natively(api) {
            return Ok(Upstream {
                url: p.url(api, &c.model, head.stream),
                api,
                body: native_body(api, head, route, c, self.bytes, self.ask_usage)?,
                converted: false,
                stream: head.stream,
            });
        }
        let target = p.chat_protocol(route.protocol);
        let mut notes = Notes::default();
        let neutral = self.neutral()?;
        let mut v = convert::encode_request(target, neutral, &c.model, &mut notes);
        log_notes(&notes, &p.name, &c.model);
        // Anthropic's required max_tokens gets a stand-in when the client sent none; the
        // model's own default beats that stand-in.
        let invented: &[&str] = if target == Protocol::Anthropic && neutral.max_tokens.is_none() {
            &["max_tokens"]
        } else {
            &[]
        };
        apply_params(target, &mut v, route, invented);
        let up_api = Api::chat_of(target);
        Ok(Upstream {
            url: p.url(up_api, &c.model, head.stream),
            api: up_api,
            body: Bytes::from(v.to_string()),
            converted: true,
            stream: head.stream,
        })
    }
}

fn log_notes(notes: &Notes, provider: &str, model: &str) {
    let model = crate::outside::Clip(model, crate::outside::MAX_NAME);
    for n in &notes.0 {
        let n = crate::outside::Clip(n, 2000);
        tracing::warn!(provider, %model, "conversion: {n}");
    }
}

/// The body for a native upstream: the client's bytes untouched when nothing changes (the
/// common case), else the same object with the model and mapped parameters rewritten.
fn native_body(
    api: Api,
    head: &RequestHead<'_>,
    route: &Route,
    candidate: &Candidate,
    original: &Bytes,
    ask_usage: bool,
) -> Result<Bytes, GatewayError> {
    let params = !route.default_params.is_empty() || !route.override_params.is_empty();
    // Gemini names the model in the path; its parameters live in `generationConfig`.
    if api == Api::Gemini {
        if !params {
            return Ok(original.clone());
        }
        let mut v: Value = serde_json::from_slice(original)
            .map_err(|e| GatewayError::BadRequest(e.to_string()))?;
        apply_params(Protocol::Gemini, &mut v, route, &[]);
        return Ok(Bytes::from(v.to_string()));
    }
    let same_model = *candidate.model == *head.model;
    if same_model && !params && !ask_usage {
        return Ok(original.clone());
    }
    let model = to_raw(&*candidate.model)?;
    let mut replace: Vec<(&str, Box<RawValue>)> = Vec::new();
    if !same_model {
        replace.push(("model", model));
    }
    for (k, v) in &route.default_params {
        if head.body.get(k).is_none() {
            replace.push((k, to_raw(v)?));
        }
    }
    for (k, v) in &route.override_params {
        replace.retain(|(rk, _)| rk != k);
        replace.push((k, to_raw(v)?));
    }
    if ask_usage {
        // The client's other stream options stay as they were.
        let mut options = head
            .body
            .get("stream_options")
            .and_then(|o| serde_json::from_str::<serde_json::Map<String, Value>>(o.get()).ok())
            .unwrap_or_default();
        options.insert("include_usage".into(), Value::Bool(true));
        replace.retain(|(rk, _)| *rk != "stream_options");
        replace.push(("stream_options", to_raw(&options)?));
    }
    let refs: Vec<(&str, &RawValue)> = replace.iter().map(|(k, v)| (*k, &**v)).collect();
    Ok(Bytes::from(head.body.to_vec_with(&refs)))
}

/// The unified model's parameters on a converted (or Gemini) body. Gemini takes sampling
/// parameters in `generationConfig` under its own names; the common names are mapped there.
/// Defaults fill what is absent, and replace the values in `invented` (put there by the
/// conversion, not by the client).
fn apply_params(target: Protocol, v: &mut Value, route: &Route, invented: &[&str]) {
    let Some(obj) = v.as_object_mut() else {
        return;
    };
    for (overwrite, params) in [
        (false, &route.default_params),
        (true, &route.override_params),
    ] {
        for (k, val) in params {
            let (map, key) = match (target, gemini::generation_config_name(k)) {
                (Protocol::Gemini, Some(name)) => {
                    let config = obj
                        .entry("generationConfig")
                        .or_insert_with(|| Value::Object(Default::default()));
                    let Some(config) = config.as_object_mut() else {
                        continue;
                    };
                    (config, name.to_owned())
                }
                _ => (&mut *obj, k.clone()),
            };
            if overwrite || !map.contains_key(&key) || invented.contains(&key.as_str()) {
                map.insert(key, val.clone());
            }
        }
    }
}

fn to_raw<T: serde::Serialize + ?Sized>(v: &T) -> Result<Box<RawValue>, GatewayError> {
    serde_json::value::to_raw_value(v).map_err(|e| GatewayError::Internal(e.to_string()))
}
