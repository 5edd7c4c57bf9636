//! The live routing table: an immutable snapshot of providers, unified models resolved to their
//! (provider, model) candidates, and client keys. A change builds a new snapshot and swaps it
//! whole, so the request path reads it without locks.

pub(crate) mod groups;
mod pin;
mod rules;
pub mod sync;

use std::collections::{HashMap, HashSet};
use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue};

pub use pin::Pin;
pub use rules::CompiledRules;

use crate::auth::KeyHash;
use crate::breaker::{BreakerRegistry, Slot};
use crate::config::{JsonObject, Protocol, Settings};
use crate::protocol::Api;
use crate::secrets::{ProviderKey, Secret, SecretError};

pub type KeyLookup<'a> = dyn Fn(&str) -> Result<Option<Secret>, SecretError> + 'a;
use crate::store::{KeyRef, StoredState};

#[derive(Debug)]
pub struct Provider {
    pub id: i64,
    pub uid: Arc<str>,
    pub name: Arc<str>,
    /// Normalized: no trailing slash, no `/v1`.
    pub base_url: String,
    /// The fixed endpoints, parsed once here rather than on every request.
    pub urls: Urls,
    pub protocols: Vec<Protocol>,
    pub key: ProviderKey,
    pub weight: u32,
    /// Its tier for the `priority` strategy: lower first.
    pub priority: u32,
    pub enabled: bool,
    pub paused: bool,
    pub paused_until: Option<u64>,
    pub headers: HeaderMap,
    pub models: Vec<String>,
    /// The provider-layer breaker, shared with the registry.
    pub breaker: Arc<Slot>,
    /// OpenAI's Responses API is there; cleared the moment a 404 shows it is not, before the
    /// store and the next snapshot know.
    pub responses: std::sync::atomic::AtomicBool,
}

impl Provider {
    pub fn speaks(&self, p: Protocol) -> bool {
        self.protocols.contains(&p)
    }

    /// Whether a request of `api` goes to this provider as it is: it speaks the API's
    /// protocol, and for Responses it has that API, not chat completions only.
    pub fn serves_natively(&self, api: Api) -> bool {
        self.speaks(api.family())
            && (api != Api::Responses || self.responses.load(std::sync::atomic::Ordering::Relaxed))
    }

    /// The protocol a converted chat goes out in: the unified model's choice when this
    /// provider speaks it, else the provider's first.
    pub fn chat_protocol(&self, preferred: Option<Protocol>) -> Protocol {
        match preferred {
            Some(p) if self.speaks(p) => p,
            _ => self.protocols.first().copied().unwrap_or(Protocol::OpenAi),
        }
    }

    /// Where to send a request of `api` for `model`.
    pub fn url(&self, api: Api, model: &str, stream: bool) -> reqwest::Url {
        let u = &self.urls;
        match api {
            Api::Chat => u.chat.clone(),
            Api::Responses => u.responses.clone(),
            Api::Messages => u.messages.clone(),
            Api::CountTokens => u.count_tokens.clone(),
            Api::Embeddings => u.embeddings.clone(),
            Api::Images => u.images.clone(),
            Api::Gemini => {
                let mut url = u.gemini_models.clone();
                let action = if stream {
                    "streamGenerateContent"
                } else {
                    "generateContent"
                };
                if let Ok(mut path) = url.path_segments_mut() {
                    path.push(&format!("{model}:{action}"));
                }
                if stream {
                    url.set_query(Some("alt=sse"));
                }
                url
            }
        }
    }

    #[cfg(test)]
    pub fn for_tests(name: &str, weight: u32) -> Self {
        Self {
            id: 0,
            uid: name.into(),
            name: name.into(),
            base_url: "http://127.0.0.1:1".into(),
            urls: Urls::new("http://127.0.0.1:1").expect("a valid URL"),
            protocols: vec![Protocol::OpenAi],
            key: ProviderKey::None,
            weight,
            priority: 0,
            enabled: true,
            paused: false,
            paused_until: None,
            headers: HeaderMap::new(),
            models: Vec::new(),
            breaker: crate::breaker::BreakerRegistry::default().provider_slot(&Arc::from(name)),
            responses: true.into(),
        }
    }
}

/// A provider's endpoints under its base URL.
#[derive(Debug)]
pub struct Urls {
    pub chat: reqwest::Url,
    pub responses: reqwest::Url,
    pub messages: reqwest::Url,
    pub count_tokens: reqwest::Url,
    pub embeddings: reqwest::Url,
    pub images: reqwest::Url,
    /// `{base}/v1beta/models`, to which `{model}:{action}` is added per request.
    pub gemini_models: reqwest::Url,
}

impl Urls {
    pub fn new(base: &str) -> Result<Self, String> {
        let at =
            |path: &str| reqwest::Url::parse(&format!("{base}{path}")).map_err(|e| e.to_string());
        Ok(Self {
            chat: at("/v1/chat/completions")?,
            responses: at("/v1/responses")?,
            messages: at("/v1/messages")?,
            count_tokens: at("/v1/messages/count_tokens")?,
            embeddings: at("/v1/embeddings")?,
            images: at("/v1/images/generations")?,
            gemini_models: at("/v1beta/models")?,
        })
    }
}

#[derive(Debug, Clone)]
pub struct Candidate {
    pub provider: Arc<Provider>,
    pub model: Arc<str>,
    /// The model-layer breaker, shared with the registry.
    pub breaker: Arc<Slot>,
}

#[derive(Debug)]
pub struct Route {
    pub name: Arc<str>,
    /// Ordered by provider weight (highest first), then provider name, then model id.
    pub candidates: Vec<Candidate>,
    /// Each provider's run in `candidates`, for the two-stage choice.
    pub groups: Vec<std::ops::Range<usize>>,
    pub protocol: Option<Protocol>,
    pub default_params: JsonObject,
    pub override_params: JsonObject,
    pub probe: bool,
    pub strategy: crate::config::Strategy,
    /// The `sort` strategy's factors.
    pub sort: Vec<switchboard_api::sort::SortKey>,
    /// The `round_robin` strategy's turn: counts choices made on this route.
    pub turn: std::sync::atomic::AtomicU64,
    /// Indexes into `candidates`, cheapest first (unpriced last), kept by the engine whenever
    /// prices change, so `cost` need not rank hundreds of candidates per request. Empty until
    /// then (`cost` ranks them itself).
    pub by_price: arc_swap::ArcSwap<Vec<u32>>,
    /// What some candidate is known to lack, kept with the prices: a request that needs none
    /// of it is not looked at more closely.
    pub limits: arc_swap::ArcSwap<crate::capabilities::Limits>,
    /// A ready-made group (`auto:*`), built from prices and capabilities, not from rules.
    pub group: bool,
}

impl Route {
    /// Ranks the candidates by the prices in their slots.
    pub fn rank_by_price(&self) {
        let price = |i: usize| {
            self.candidates[i]
                .breaker
                .live
                .price()
                .unwrap_or(f64::INFINITY)
        };
        let mut order: Vec<usize> = (0..self.candidates.len()).collect();
        order.sort_by(|&a, &b| price(a).total_cmp(&price(b)).then(a.cmp(&b)));
        let order = order
            .into_iter()
            .filter_map(|i| u32::try_from(i).ok())
            .collect();
        self.by_price.store(Arc::new(order));
    }

    /// Sums up what the candidates' slots say they lack.
    pub fn sum_up_limits(&self) {
        let caps: Vec<_> = self
            .candidates
            .iter()
            .map(|c| **c.breaker.live.caps.load())
            .collect();
        self.limits
            .store(Arc::new(crate::capabilities::Limits::of(caps.iter())));
    }
}

#[derive(Debug)]
pub enum ModelAllow {
    All,
    Only(HashSet<String>),
}

#[derive(Debug)]
pub struct ClientKey {
    pub name: Arc<str>,
    pub hash: KeyHash,
    pub models: ModelAllow,
    /// Requests per minute.
    pub rpm: Option<u32>,
    /// Unix seconds.
    pub expires_at: Option<u64>,
    /// Overrides `[logs] capture_bodies` for this key.
    pub capture_bodies: Option<bool>,
    /// May name a provider in a request (`provider/model`).
    pub pin_providers: bool,
    /// Its budget; its spend is the engine's (`budget::SpendBook`), by name.
    pub budget: Option<switchboard_api::budget::Budget>,
}

impl ClientKey {
    pub fn allows(&self, model: &str) -> bool {
        match &self.models {
            ModelAllow::All => true,
            ModelAllow::Only(set) => set.contains(model),
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    pub settings: Settings,
    pub policy: crate::breaker::Policy,
    pub providers: Vec<Arc<Provider>>,
    pub routes: HashMap<String, Arc<Route>>,
    /// Unified models whose name has a `*` (`claude-*`), most specific first: they take the
    /// names clients send that no model is named exactly.
    pub wildcards: Vec<(String, Arc<Route>)>,
    pub client_keys: HashMap<KeyHash, Arc<ClientKey>>,
    /// No client key exists and the gateway listens on loopback only: callers need no key.
    pub open_access: bool,
    /// `GET /v1/models` in OpenAI's shape, built once per snapshot.
    pub openai_models_body: Bytes,
    /// The same list in Anthropic's shape (asked for with `anthropic-version`).
    pub anthropic_models_body: Bytes,
    /// `GET /v1beta/models` in Gemini's shape.
    pub gemini_models_body: Bytes,
    /// `[[prices]]`: multipliers and own prices, for the request log's costs.
    pub prices: Vec<switchboard_api::prices::PriceEntry>,
    /// `[[capabilities]]`, resolved into each candidate's slot with the price list.
    pub capabilities: Vec<switchboard_api::capabilities::CapabilityEntry>,
    /// `[[quotas]]`, counted in the log's quota book.
    pub quotas: Vec<switchboard_api::quotas::QuotaEntry>,
    /// Models defined by filters (`group = {...}`): their routes are built with the ready-made
    /// groups', once prices and capabilities are in the slots.
    pub filtered: Vec<Arc<groups::UserGroup>>,
    /// Tiered models (intent tiers): each request goes on to one tier's target route.
    pub tiered: HashMap<String, Arc<crate::tiers::Tiered>>,
}

impl Snapshot {
    /// The unified model a client's name stands for: the model of that name; else, without a
    /// variant suffix (Claude Code's `claude-opus-4-8[1m]`), the model of that name; else the
    /// most specific wildcard model that matches.
    pub fn route(&self, name: &str) -> Option<&Arc<Route>> {
        if let Some(r) = self.routes.get(name) {
            return Some(r);
        }
        let base = strip_variant(name);
        if base != name
            && let Some(r) = self.routes.get(base)
        {
            return Some(r);
        }
        self.wildcards
            .iter()
            .find(|(pattern, _)| wildcard_match(pattern, base))
            .map(|(_, r)| r)
    }

    /// The tiered model a client's name stands for (exactly, or without a variant suffix).
    pub fn tiered(&self, name: &str) -> Option<&Arc<crate::tiers::Tiered>> {
        self.tiered
            .get(name)
            .or_else(|| self.tiered.get(strip_variant(name)))
    }

    /// Every candidate of every route, wildcard routes included (a pair used by two models
    /// comes twice).
    pub fn candidates(&self) -> impl Iterator<Item = &Candidate> {
        self.routes
            .values()
            .chain(self.wildcards.iter().map(|(_, r)| r))
            .flat_map(|r| r.candidates.iter())
    }
}

/// A unified model's default parameters over `[routing] default_params`: its own win, the
/// global ones fill the rest (merged once per snapshot, so a request looks at one map).
pub(crate) fn with_global(own: &JsonObject, global: &JsonObject) -> JsonObject {
    let mut out = global.clone();
    out.extend(own.iter().map(|(k, v)| (k.clone(), v.clone())));
    out
}

/// `name[1m]` -> `name`: a bracketed suffix names a variant of the same model.
fn strip_variant(name: &str) -> &str {
    match name.strip_suffix(']').and_then(|n| n.rsplit_once('[')) {
        Some((base, _)) if !base.is_empty() => base,
        _ => name,
    }
}

/// `*` matches any run of characters (none included); everything else matches itself.
pub fn wildcard_match(pattern: &str, name: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or("");
    let Some(mut rest) = name.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty();
    };
    for p in middle {
        match rest.find(p) {
            Some(at) => rest = &rest[at + p.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

/// One entry of Gemini's model list.
pub fn gemini_model(name: &str) -> serde_json::Value {
    serde_json::json!({
        "name": format!("models/{name}"),
        "baseModelId": name,
        "version": "switchboard",
        "displayName": name,
        "supportedGenerationMethods": ["generateContent", "streamGenerateContent", "countTokens"],
    })
}

/// Problems found while building a snapshot; the snapshot is still built without the bad part.
pub type Warnings = Vec<String>;

pub fn is_loopback_host(host: &str) -> bool {
    let h = host.trim_start_matches('[').trim_end_matches(']');
    h.eq_ignore_ascii_case("localhost")
        || h.parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// A provider and one of its model ids.
pub type Pair = (Arc<Provider>, Arc<str>);

/// The (provider, model id) pairs a unified model stands for: every enabled provider's listed
/// ids that its rules match, plus manual includes, minus excluded providers and excluded
/// keywords (exclusions win over inclusions). Unsorted.
pub fn resolve(
    name: &str,
    rules: &[crate::config::Rule],
    include: &[crate::config::Include],
    exclude_providers: &[String],
    providers: &[Arc<Provider>],
    warnings: &mut Warnings,
) -> Result<Vec<Pair>, String> {
    let rules = CompiledRules::compile(name, rules)?;
    let excluded: HashSet<&str> = exclude_providers.iter().map(String::as_str).collect();
    let mut out: Vec<Pair> = Vec::new();
    for p in providers
        .iter()
        .filter(|p| p.enabled && !excluded.contains(&*p.name))
    {
        for id in p.models.iter().filter(|id| rules.matches(id)) {
            out.push((p.clone(), id.as_str().into()));
        }
    }
    for inc in include {
        let Some(p) = providers.iter().find(|p| *p.name == inc.provider) else {
            warnings.push(format!(
                "model '{name}': include names unknown provider '{}'",
                inc.provider
            ));
            continue;
        };
        let dup = out
            .iter()
            .any(|(op, om)| Arc::ptr_eq(op, p) && **om == *inc.model);
        if p.enabled && !excluded.contains(&*p.name) && !rules.excluded(&inc.model) && !dup {
            out.push((p.clone(), inc.model.as_str().into()));
        }
    }
    Ok(out)
}

impl Snapshot {
    /// `keys` finds a stored provider key by provider uid: the secret store at start, the live
    /// snapshot's cache afterwards.
    pub fn build(
        state: &StoredState,
        keys: &KeyLookup<'_>,
        breakers: &BreakerRegistry,
    ) -> (Self, Warnings) {
        let mut warnings = Vec::new();
        let built: Vec<Result<Arc<Provider>, String>> = state
            .providers
            .iter()
            .map(|p| {
                let key = match &p.key_ref {
                    KeyRef::None => ProviderKey::None,
                    KeyRef::Env(name) => ProviderKey::Env(name.clone()),
                    KeyRef::Stored => match keys(&p.uid) {
                        Ok(Some(s)) => ProviderKey::Stored(s),
                        Ok(None) => {
                            warnings.push(format!(
                                "provider '{}': its key is not in the secret store; import the config file with its api_key again, or use api_key = \"env:NAME\"",
                                p.name
                            ));
                            ProviderKey::Missing
                        }
                        Err(e) => {
                            warnings.push(format!("provider '{}': {e}", p.name));
                            ProviderKey::Missing
                        }
                    },
                };
                // Stored before these were refused: still used, but said.
                if crate::config::url_has_credentials(&p.base_url) {
                    warnings.push(format!(
                        "provider '{}': its base_url holds credentials, which are stored and shown as written; move them to api_key",
                        p.name
                    ));
                }
                let mut headers = HeaderMap::new();
                for (k, v) in &p.headers {
                    if !v.starts_with("env:") && crate::config::is_credential_header(k) {
                        warnings.push(format!(
                            "provider '{}': header {k:?} holds a literal credential, stored as written; give it as env:NAME",
                            p.name
                        ));
                    }
                    // `env:NAME` values are credentials: read from the environment at each
                    // reload, never stored, and marked sensitive so no Debug output shows them.
                    let value = match v.strip_prefix("env:") {
                        Some(var) => match std::env::var(var) {
                            Ok(x) => HeaderValue::from_str(&x).map(|mut v| {
                                v.set_sensitive(true);
                                v
                            }),
                            Err(_) => {
                                warnings.push(format!(
                                    "provider '{}': header {k:?}: environment variable {var} is not set",
                                    p.name
                                ));
                                continue;
                            }
                        },
                        None => HeaderValue::from_str(v),
                    };
                    match (HeaderName::from_bytes(k.as_bytes()), value) {
                        (Ok(k), Ok(v)) => {
                            headers.insert(k, v);
                        }
                        _ => warnings.push(format!("provider '{}': header {k:?} is invalid", p.name)),
                    }
                }
                let urls = Urls::new(&p.base_url)
                    .map_err(|e| format!("provider '{}': base_url {:?} is not a valid URL: {e}", p.name, p.base_url))?;
                let uid: Arc<str> = p.uid.as_str().into();
                Ok(Arc::new(Provider {
                    id: p.id,
                    breaker: breakers.provider_slot(&uid),
                    uid,
                    name: p.name.as_str().into(),
                    base_url: p.base_url.clone(),
                    urls,
                    protocols: p.protocols.clone(),
                    key,
                    weight: p.weight,
                    priority: p.priority,
                    enabled: p.enabled,
                    paused: p.paused,
                    paused_until: p.paused_until,
                    headers,
                    models: p.models.clone(),
                    responses: p.responses.into(),
                }))
            })
            .collect();
        let mut providers = Vec::with_capacity(built.len());
        for p in built {
            match p {
                Ok(p) => providers.push(p),
                Err(e) => warnings.push(e),
            }
        }

        let mut routes = HashMap::new();
        let mut tiered = HashMap::new();
        let mut filtered = Vec::new();
        for m in &state.models {
            if let Some(g) = m.group.as_ref().filter(|g| **g != Default::default()) {
                filtered.push(Arc::new(groups::UserGroup {
                    name: m.name.clone(),
                    filter: g.clone(),
                    strategy: m.strategy,
                    sort: m.sort.clone(),
                    protocol: m.protocol,
                    default_params: with_global(
                        &m.default_params,
                        &state.settings.routing.default_params,
                    ),
                    override_params: m.override_params.clone(),
                }));
                continue;
            }
            if let Some(t) = &m.tiers {
                match crate::tiers::Tiered::compile(&m.name, t.clone()) {
                    Ok(t) => {
                        tiered.insert(m.name.clone(), Arc::new(t));
                    }
                    Err(e) => warnings.push(format!("model '{}': {e}", m.name)),
                }
                continue;
            }
            let pairs = match resolve(
                &m.name,
                &m.rules,
                &m.include,
                &m.exclude_providers,
                &providers,
                &mut warnings,
            ) {
                Ok(p) => p,
                Err(e) => {
                    warnings.push(format!("model '{}': {e}", m.name));
                    continue;
                }
            };
            let mut candidates: Vec<Candidate> = pairs
                .into_iter()
                .map(|(provider, model)| Candidate {
                    breaker: breakers.model_slot(&provider.uid, &model),
                    provider,
                    model,
                })
                .collect();
            candidates.sort_by(route_order);
            routes.insert(
                m.name.clone(),
                Arc::new(Route {
                    name: m.name.as_str().into(),
                    groups: provider_groups(&candidates),
                    candidates,
                    protocol: m.protocol,
                    default_params: with_global(
                        &m.default_params,
                        &state.settings.routing.default_params,
                    ),
                    override_params: m.override_params.clone(),
                    probe: m.probe,
                    strategy: m.strategy,
                    sort: m.sort.clone(),
                    turn: std::sync::atomic::AtomicU64::new(0),
                    by_price: Default::default(),
                    limits: Default::default(),
                    group: false,
                }),
            );
        }

        // Longer literal text first: `claude-opus-*` before `claude-*` before `*`.
        let mut wildcards: Vec<(String, Arc<Route>)> = routes
            .iter()
            .filter(|(name, _)| name.contains('*'))
            .map(|(name, r)| (name.clone(), r.clone()))
            .collect();
        wildcards.sort_by(|(a, _), (b, _)| {
            let literal = |s: &str| s.chars().filter(|c| *c != '*').count();
            literal(b).cmp(&literal(a)).then_with(|| a.cmp(b))
        });

        let client_keys: HashMap<KeyHash, Arc<ClientKey>> = state
            .client_keys
            .iter()
            .filter(|k| !k.revoked)
            .map(|k| {
                let models = if k.models.iter().any(|m| m == "*") {
                    ModelAllow::All
                } else {
                    ModelAllow::Only(k.models.iter().cloned().collect())
                };
                (
                    k.key_hash,
                    Arc::new(ClientKey {
                        name: k.name.as_str().into(),
                        hash: k.key_hash,
                        models,
                        rpm: k.rpm,
                        expires_at: k.expires_at,
                        capture_bodies: k.capture_bodies,
                        pin_providers: k.pin_providers,
                        budget: k.budget.clone(),
                    }),
                )
            })
            .collect();
        let open_access =
            state.client_keys.is_empty() && is_loopback_host(&state.settings.server.host);

        tiers_refer(&tiered, &routes, &mut warnings);
        let names: Vec<&str> = state.models.iter().map(|m| m.name.as_str()).collect();
        let (openai_models_body, anthropic_models_body, gemini_models_body) = model_lists(names);

        (
            Self {
                settings: state.settings.clone(),
                policy: crate::breaker::Policy::from_settings(&state.settings),
                providers,
                routes,
                wildcards,
                client_keys,
                open_access,
                openai_models_body,
                anthropic_models_body,
                gemini_models_body,
                prices: state.prices.clone(),
                capabilities: state.capabilities.clone(),
                quotas: state.quotas.clone(),
                filtered,
                tiered,
            },
            warnings,
        )
    }
}

impl Snapshot {
    /// This snapshot with the ready-made groups (`auto:*`) the slots' prices and capabilities
    /// make, listed in `/v1/models` too.
    pub fn with_groups(&self, breakers: &BreakerRegistry) -> Snapshot {
        let mut next = self.clone();
        next.routes.retain(|_, r| !r.group);
        for g in groups::builtin(&next, breakers) {
            next.routes.insert(g.name.to_string(), g);
        }
        let names: Vec<&str> = next
            .routes
            .keys()
            .chain(next.tiered.keys())
            .map(String::as_str)
            .collect();
        (
            next.openai_models_body,
            next.anthropic_models_body,
            next.gemini_models_body,
        ) = model_lists(names);
        next
    }
}

/// Says which tiers point at nothing: a model that does not exist (a group may be empty now and
/// fill with the next price list, so its name is enough), or another tiered model.
fn tiers_refer(
    tiered: &HashMap<String, Arc<crate::tiers::Tiered>>,
    routes: &HashMap<String, Arc<Route>>,
    warnings: &mut Vec<String>,
) {
    let known = |n: &str| routes.contains_key(n) || groups::is_builtin(n);
    for (name, t) in tiered {
        for tier in &t.spec.tiers {
            if tiered.contains_key(&tier.target) {
                warnings.push(format!(
                    "model '{name}': tier '{}' points at the tiered model '{}'; a tier's target is a unified model or a group",
                    tier.name, tier.target
                ));
            } else if !known(&tier.target) {
                warnings.push(format!(
                    "model '{name}': tier '{}' points at '{}', which is no unified model or group",
                    tier.name, tier.target
                ));
            }
        }
        if let Some(c) = &t.spec.classifier.model
            && t.mode() == switchboard_api::tiers::ClassifierMode::Model
            && !known(c)
        {
            warnings.push(format!(
                "model '{name}': its classifier model '{c}' is no unified model; the rules decide"
            ));
        }
    }
}

/// `GET /v1/models` in OpenAI's, Anthropic's and Gemini's shapes, built once per snapshot.
fn model_lists(mut names: Vec<&str>) -> (Bytes, Bytes, Bytes) {
    names.sort_unstable();
    let data: Vec<serde_json::Value> = names
        .iter()
        .map(|n| serde_json::json!({"id": n, "object": "model", "created": 0, "owned_by": "switchboard"}))
        .collect();
    let openai = Bytes::from(serde_json::json!({"object": "list", "data": data}).to_string());
    let data: Vec<serde_json::Value> = names
        .iter()
        .map(|n| serde_json::json!({"type": "model", "id": n, "display_name": n, "created_at": "1970-01-01T00:00:00Z"}))
        .collect();
    let anthropic = Bytes::from(
        serde_json::json!({"data": data, "has_more": false,
            "first_id": names.first(), "last_id": names.last()})
        .to_string(),
    );
    let models: Vec<serde_json::Value> = names.iter().map(|n| gemini_model(n)).collect();
    let gemini = Bytes::from(serde_json::json!({"models": models}).to_string());
    (openai, anthropic, gemini)
}

/// A route's order: provider weight (highest first), then provider name, then model id, so a
/// provider's candidates are together.
pub(crate) fn route_order(a: &Candidate, b: &Candidate) -> std::cmp::Ordering {
    b.provider
        .weight
        .cmp(&a.provider.weight)
        .then_with(|| a.provider.name.cmp(&b.provider.name))
        .then_with(|| a.model.cmp(&b.model))
}

/// The contiguous runs of one provider in a route's candidates.
pub(crate) fn provider_groups(candidates: &[Candidate]) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    while let Some(first) = candidates.get(start) {
        let len = candidates[start..]
            .iter()
            .take_while(|c| Arc::ptr_eq(&c.provider, &first.provider))
            .count();
        out.push(start..start + len);
        start += len;
    }
    out
}

#[cfg(test)]
mod tests;
