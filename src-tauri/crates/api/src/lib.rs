//! Types of Switchboard's admin API (`/api`), shared by the engine and the admin UI so both
//! sides agree on the JSON. Nothing here is ever a secret: keys appear only as their kind.

use serde::{Deserialize, Serialize};

pub mod budget;
pub mod capabilities;
pub mod groups;
pub mod prices;
pub mod quotas;
pub mod settings;
pub mod sort;
pub mod stats;
pub mod tiers;
pub mod whatif;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LoginRequest {
    pub password: String,
    /// The 6-digit code, when the gateway asks for a second factor (SWITCHBOARD_ADMIN_TOTP).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub totp: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LoginResponse {
    pub token: String,
    pub expires_in_s: u64,
}

/// A coding agent on `GET /api/clients`: whether Switchboard points it at itself.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct AgentClientView {
    /// `claude-code`, `codex`, `gemini-cli`.
    pub id: String,
    pub name: String,
    pub connected: bool,
    /// The client key made for it (its name; the key is only in the client's file).
    pub key_name: Option<String>,
    /// The files connect wrote.
    pub files: Vec<String>,
    /// Connected when this gateway started (it stopped or crashed meanwhile), and the user has
    /// not yet said whether to keep it (`POST /api/clients/{id}/keep`) or restore its files
    /// (`/disconnect`).
    #[serde(default)]
    pub from_before_start: bool,
}

/// What `POST /api/clients/{id}/connect` or `/disconnect` did, one line per file.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct AgentClientChange {
    pub id: String,
    pub connected: bool,
    pub key_name: Option<String>,
    pub lines: Vec<String>,
    /// What would make the client ignore those files (a shell variable, `CODEX_HOME`), with
    /// how to fix it; empty when nothing does.
    #[serde(default)]
    pub warnings: Vec<String>,
    /// After a connect: one small request through the gateway, as the client sends it.
    #[serde(default)]
    pub test: Option<ConnectTest>,
}

/// A one-token request made right after connecting, in the client's protocol and with its new
/// key, to a unified model it would use.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ConnectTest {
    pub ok: bool,
    /// The unified model asked for; none when there is no model to ask.
    pub model: Option<String>,
    /// The gateway's HTTP status; none when no answer came.
    pub status: Option<u16>,
    pub latency_ms: u64,
    /// One line for a person: what answered, or what went wrong and what to do.
    pub message: String,
}

/// `GET /api/setup`: whether an admin password exists yet, and whether this caller may choose
/// the first one (`POST /api/setup` with a [`LoginRequest`]): only from this machine, to a
/// gateway listening on loopback.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct SetupStatus {
    pub password_set: bool,
    pub can_choose: bool,
}

/// `{"error":{"message"}}`, the admin API's error body.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ApiError {
    pub error: ApiErrorBody,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ApiErrorBody {
    pub message: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ProviderView {
    pub name: String,
    pub base_url: String,
    pub protocols: Vec<String>,
    pub weight: u32,
    /// The provider's tier for the `priority` strategy: lower is tried first.
    #[serde(default)]
    pub priority: u32,
    pub enabled: bool,
    pub paused: bool,
    /// Unix seconds when a timed pause ends by itself.
    pub paused_until: Option<u64>,
    /// `env:NAME`, `keychain` or `none`: where the key comes from, never the key.
    pub key: String,
    pub models: Vec<String>,
    pub sync: SyncView,
    /// An `openai` provider has the Responses API; false: chat completions only (set, or
    /// learned from a 404), and Responses clients are converted to chat for it.
    #[serde(default = "yes")]
    pub responses: bool,
}

fn yes() -> bool {
    true
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct SyncView {
    /// `config` (the file gives the list) or `upstream` (fetched from the provider).
    pub source: Option<String>,
    pub synced_at: Option<String>,
    pub last_error: Option<String>,
}

/// Defines a state word of the admin API: an enum on both sides, its snake_case name on the
/// wire (`as_str` gives the same name, for CSS classes and translation keys).
macro_rules! state_words {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident => $word:literal,)+ }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum $name {
            $($(#[$vdoc])* #[serde(rename = $word)] $variant,)+
        }

        impl $name {
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $word,)+
                }
            }
        }
    };
}

state_words! {
    /// A circuit breaker's state.
    BreakerState {
        Closed => "closed",
        Open => "open",
        HalfOpen => "half_open",
    }
}

state_words! {
    /// The gateway at a glance (the tray icon).
    GatewayState {
        /// Every enabled provider closed.
        Ok => "ok",
        /// Some provider or model open or half-open.
        Degraded => "degraded",
        /// No unified model has an available candidate.
        Down => "down",
        /// Every enabled provider paused.
        Paused => "paused",
    }
}

state_words! {
    /// One provider at a glance.
    ProviderState {
        Ok => "ok",
        /// Its breaker or one of its models' is open or half-open.
        Cooling => "cooling",
        Paused => "paused",
        /// Open until reset: the provider refused its key, a person must fix it.
        KeyRefused => "key_refused",
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BreakerView {
    pub state: BreakerState,
    pub reason: Option<String>,
    /// Unix seconds; absent when closed, or open until a person resets it.
    pub until: Option<u64>,
    pub last_error: Option<String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct HealthView {
    pub success_rate: Option<f64>,
    pub samples: u32,
    pub latency_ms: Option<f64>,
    pub ttfb_ms: Option<f64>,
    pub last_error: Option<String>,
    /// Attempts since start, and how many failed.
    #[serde(default)]
    pub requests: u64,
    #[serde(default)]
    pub failures: u64,
    /// The routing health score in [0.01, 1]: lowered by recent failures (by kind), restored by
    /// time and successes; it scales the pair's share of requests. Absent for a pair no unified
    /// model routes to.
    #[serde(default)]
    pub score: Option<f64>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ModelHealth {
    pub model: String,
    pub breaker: BreakerView,
    pub health: HealthView,
    /// Its own `[[quotas]]` entry as it stands, and until when (unix seconds) it is at it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub quota: Vec<budget::BudgetUse>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quota_until: Option<u64>,
}

fn healthy() -> f64 {
    1.0
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ProviderStatus {
    pub name: String,
    pub enabled: bool,
    pub paused: bool,
    pub paused_until: Option<u64>,
    pub breaker: BreakerView,
    /// Its `[[quotas]]` as they stand, and until when (unix seconds) it is at one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub quota: Vec<budget::BudgetUse>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quota_until: Option<u64>,
    /// The provider's health score over all its models' outcomes (see `HealthView::score`).
    #[serde(default = "healthy")]
    pub score: f64,
    pub models: Vec<ModelHealth>,
    /// Attempts since start over all its models, and how many failed.
    #[serde(default)]
    pub requests: u64,
    #[serde(default)]
    pub failures: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RouteCandidate {
    pub provider: String,
    pub model: String,
    /// Could take a request now (enabled, not paused, breakers closed or due a trial).
    pub available: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct UnifiedModelStatus {
    pub name: String,
    pub candidates: Vec<RouteCandidate>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StatusResponse {
    pub providers: Vec<ProviderStatus>,
    pub models: Vec<UnifiedModelStatus>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ResetRequest {
    pub provider: Option<String>,
    pub model: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SyncResponse {
    pub provider: String,
    pub models: usize,
}

/// A unified model's mapping, to preview before saving.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ModelPreviewRequest {
    pub name: String,
    #[serde(default)]
    pub rules: Vec<RuleView>,
    /// `provider/model` pairs.
    #[serde(default)]
    pub include: Vec<String>,
    #[serde(default)]
    pub exclude_providers: Vec<String>,
    /// A group's filters instead of rules: what they would hold now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<groups::GroupFilter>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RuleView {
    /// exact | prefix | keyword | regex | exclude_keyword
    #[serde(rename = "type")]
    pub kind: String,
    pub value: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PreviewPair {
    pub provider: String,
    pub model: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ModelPreviewResponse {
    pub candidates: Vec<PreviewPair>,
    pub warnings: Vec<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ModelView {
    pub name: String,
    pub rules: Vec<RuleView>,
    pub include: Vec<String>,
    pub exclude_providers: Vec<String>,
    pub protocol: Option<String>,
    pub default_params: serde_json::Map<String, serde_json::Value>,
    pub override_params: serde_json::Map<String, serde_json::Value>,
    pub probe: bool,
    /// `weighted`, `priority`, `round_robin`, `latency`, `cost` or `least_busy`.
    #[serde(default = "weighted")]
    pub strategy: String,
    /// The `sort` strategy's factors.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sort: Vec<sort::SortKey>,
    /// A model defined by filters instead of rules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<groups::GroupFilter>,
    /// A tiered model's tiers (then it has no rules) and its classifier.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tiers: Vec<tiers::TierSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub classifier: Option<tiers::Classifier>,
}

fn weighted() -> String {
    "weighted".into()
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ClientKeyView {
    pub name: String,
    pub models: Vec<String>,
    pub created_at: String,
    pub revoked: bool,
    /// Requests per minute.
    #[serde(default)]
    pub rpm: Option<u32>,
    /// Unix seconds.
    #[serde(default)]
    pub expires_at: Option<u64>,
    #[serde(default)]
    pub expired: bool,
    /// Its own body capture: true or false over `[logs] capture_bodies`; None: as it says.
    #[serde(default)]
    pub capture_bodies: Option<bool>,
    /// May name a provider in a request (`model: "provider/model"`).
    #[serde(default)]
    pub pin_providers: bool,
    /// Unix seconds.
    #[serde(default)]
    pub last_used_at: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<budget::Budget>,
    /// Where it stands against each of the budget's limits now.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub budget_use: Vec<budget::BudgetUse>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct CreateClientKey {
    pub name: String,
    pub models: Option<Vec<String>>,
    /// Requests per minute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rpm: Option<u32>,
    /// Unix seconds, or a UTC date `YYYY-MM-DD[THH:MM:SSZ]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<serde_json::Value>,
    /// Keep this key's bodies (true) or never (false), over `[logs] capture_bodies`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capture_bodies: Option<bool>,
    /// May name a provider in a request (`provider/model`); false if absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pin_providers: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<budget::Budget>,
}

/// The new key, shown this once: only its hash is kept.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CreatedClientKey {
    pub name: String,
    pub key: String,
}

/// `POST /api/providers/{name}/rename` body.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RenameRequest {
    /// The new name.
    pub name: String,
}

/// `POST /api/providers/{name}/pause` body, optional: a pause that ends by itself.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct PauseRequest {
    /// 1 to 1440; with `seconds` absent too: until resumed.
    pub minutes: Option<u32>,
    /// 1 to 86400, for scripts; give minutes or seconds, not both.
    pub seconds: Option<u32>,
}

/// The gateway at a glance, for the tray icon and title.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Summary {
    pub state: GatewayState,
    pub providers: Vec<ProviderSummary>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ProviderSummary {
    pub name: String,
    pub state: ProviderState,
    pub reason: Option<String>,
    /// Unix seconds: when the cooldown or the timed pause ends.
    pub until: Option<u64>,
}

/// `POST /api/route/preview`: what routing would do with a request, without sending it.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoutePreviewRequest {
    /// The client's request body (OpenAI, Anthropic or Responses: its `model` is the name).
    pub request: serde_json::Value,
    /// A model name that is not in the body (Gemini names it in the path).
    #[serde(default)]
    pub model: Option<String>,
    /// As if sent with this client key (by name): its allowed models and pinning apply.
    #[serde(default)]
    pub client_key: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RoutePreview {
    /// A tiered model: the tier its classifier picked, and why; `route` is that tier's target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier: Option<PreviewTier>,
    /// The unified model (or group, or `provider/model` pin) the name resolved to.
    pub route: String,
    pub strategy: String,
    /// What the request needs of a model.
    pub images: bool,
    pub tools: bool,
    /// Estimated prompt tokens, 0 when no candidate's window could be too small.
    pub tokens: u32,
    /// Every candidate in route order, with its scores and whether it may be tried now.
    pub candidates: Vec<PreviewCandidate>,
    /// The candidates the next request could go to first, most likely first: `provider/model`.
    pub order: Vec<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PreviewTier {
    pub name: String,
    pub target: String,
    pub reason: String,
    /// The classifier: `rules`, `model` or `off` (a tier drawn by weight: the next request
    /// may draw another).
    pub mode: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PreviewCandidate {
    pub provider: String,
    pub model: String,
    /// The share of its quotas left (1 without one).
    #[serde(default = "healthy")]
    pub quota_left: f64,
    pub usable: bool,
    /// Why not, when it is not: paused, disabled, a breaker, a capability it lacks.
    pub why: Option<String>,
    pub health: f64,
    pub provider_health: f64,
    pub latency_ms: Option<f64>,
    pub in_flight: u32,
    /// Effective USD per million tokens (input plus output).
    pub price: Option<f64>,
    /// The share of next requests that would try it first (out of 1).
    pub share: f64,
}
