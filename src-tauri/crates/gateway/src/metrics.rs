//! `/metrics`: Prometheus (OpenMetrics) text from `prometheus-client`. The request metrics are
//! counted by the log's writer thread from the records it already receives, so the request
//! path pays nothing but the in-flight gauge's two atomic adds. Labels come only from the
//! configuration (providers, unified models) and fixed codes: a client's own model name or
//! header never becomes a series.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::requestlog::RequestRecord;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    /// The unified model ('' when the name resolved to none).
    model: String,
    provider: String,
    status_class: &'static str,
    error_code: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AttemptLabels {
    provider: String,
    status_class: &'static str,
    error_code: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ModelLabels {
    model: String,
    provider: String,
}

/// OpenTelemetry's GenAI attribute names, in Prometheus' spelling.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GenAiLabels {
    gen_ai_request_model: String,
    gen_ai_provider_name: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TokenLabels {
    gen_ai_request_model: String,
    gen_ai_provider_name: String,
    /// input, output, cache_read, cache_write, reasoning.
    gen_ai_token_type: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BreakerLabels {
    provider: String,
    /// '' for the provider's own breaker.
    model: String,
}

pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    attempts: Family<AttemptLabels, Counter>,
    failovers: Family<ModelLabels, Counter>,
    cost: Family<ModelLabels, Counter<f64, AtomicU64>>,
    duration: Family<GenAiLabels, Histogram>,
    ttft: Family<GenAiLabels, Histogram>,
    tokens: Family<TokenLabels, Counter>,
    breakers: Family<BreakerLabels, Gauge>,
    dropped: Counter,
    in_flight: Gauge,
    /// Requests being answered now: shared with the request log's recorders.
    pub(crate) in_flight_now: Arc<AtomicI64>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

fn status_class(status: u16) -> &'static str {
    match status {
        0..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

fn seconds_histogram() -> Histogram {
    // 10 ms to about 20 minutes.
    Histogram::new(exponential_buckets(0.01, 2.0, 17))
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        let attempts = Family::<AttemptLabels, Counter>::default();
        let failovers = Family::<ModelLabels, Counter>::default();
        let cost = Family::<ModelLabels, Counter<f64, AtomicU64>>::default();
        let duration =
            Family::<GenAiLabels, Histogram>::new_with_constructor(seconds_histogram as fn() -> _);
        let ttft =
            Family::<GenAiLabels, Histogram>::new_with_constructor(seconds_histogram as fn() -> _);
        let tokens = Family::<TokenLabels, Counter>::default();
        let breakers = Family::<BreakerLabels, Gauge>::default();
        let dropped = Counter::default();
        let in_flight = Gauge::default();
        registry.register(
            "switchboard_requests",
            "Client requests answered, by unified model, final provider, status class and the gateway's error code",
            requests.clone(),
        );
        registry.register(
            "switchboard_attempts",
            "Upstream attempts, by provider, status class and error code",
            attempts.clone(),
        );
        registry.register(
            "switchboard_failovers",
            "Requests that succeeded after a failed attempt (failover saved them)",
            failovers.clone(),
        );
        registry.register(
            "switchboard_cost_usd",
            "What the priced requests cost, USD",
            cost.clone(),
        );
        registry.register(
            "gen_ai_server_request_duration_seconds",
            "GenAI server request duration (OpenTelemetry gen_ai.server.request.duration)",
            duration.clone(),
        );
        registry.register(
            "gen_ai_server_time_to_first_token_seconds",
            "Time to a stream's first content (OpenTelemetry gen_ai.server.time_to_first_token)",
            ttft.clone(),
        );
        registry.register(
            "gen_ai_client_token_usage",
            "Tokens used, by type (OpenTelemetry gen_ai.client.token.usage, as a counter)",
            tokens.clone(),
        );
        registry.register(
            "switchboard_breaker_state",
            "Circuit breakers: 0 closed, 1 half-open, 2 open; model '' is the provider's own",
            breakers.clone(),
        );
        registry.register(
            "switchboard_log_dropped_records",
            "Request records the log writer could not keep up with and dropped",
            dropped.clone(),
        );
        registry.register(
            "switchboard_in_flight_requests",
            "Client requests being answered now",
            in_flight.clone(),
        );
        Metrics {
            registry,
            requests,
            attempts,
            failovers,
            cost,
            duration,
            ttft,
            tokens,
            breakers,
            dropped,
            in_flight,
            in_flight_now: Arc::new(AtomicI64::new(0)),
        }
    }

    /// Counts one finished request and its cost (called by the log's writer).
    pub(crate) fn record(&self, r: &RequestRecord, cost_usd: Option<f64>) {
        let model = r.unified_model.as_deref().unwrap_or("").to_owned();
        let provider = r.provider.as_deref().unwrap_or("").to_owned();
        let failed = r.status >= 400 || r.error.is_some();
        self.requests
            .get_or_create(&RequestLabels {
                model: model.clone(),
                provider: provider.clone(),
                status_class: status_class(r.status),
                error_code: r.error_code.unwrap_or(""),
            })
            .inc();
        for a in &r.attempt_log {
            self.attempts
                .get_or_create(&AttemptLabels {
                    provider: a.provider.to_string(),
                    status_class: status_class(a.status),
                    error_code: a.error_code.unwrap_or(""),
                })
                .inc();
        }
        let pair = ModelLabels {
            model: model.clone(),
            provider: provider.clone(),
        };
        if !failed && r.attempt_log.len() > 1 {
            self.failovers.get_or_create(&pair).inc();
        }
        let gen_ai = GenAiLabels {
            gen_ai_request_model: model.clone(),
            gen_ai_provider_name: provider.clone(),
        };
        self.duration
            .get_or_create(&gen_ai)
            .observe(r.latency.as_secs_f64());
        if let Some(t) = r.ttfc {
            self.ttft.get_or_create(&gen_ai).observe(t.as_secs_f64());
        }
        if let Some(t) = r.tokens {
            for (kind, n) in [
                ("input", t.input),
                ("output", t.output),
                ("cache_read", t.cache_read),
                ("cache_write", t.cache_write),
                ("reasoning", t.reasoning),
            ] {
                if n > 0 {
                    self.tokens
                        .get_or_create(&TokenLabels {
                            gen_ai_request_model: model.clone(),
                            gen_ai_provider_name: provider.clone(),
                            gen_ai_token_type: kind,
                        })
                        .inc_by(n);
                }
            }
        }
        if let Some(usd) = cost_usd.filter(|c| c.is_finite() && *c > 0.0) {
            self.cost.get_or_create(&pair).inc_by(usd);
        }
    }

    /// The text a scrape answers: breaker states and the writer's drops as they are now.
    pub(crate) fn render(
        &self,
        breakers: impl Iterator<Item = (String, String, i64)>,
        dropped: u64,
    ) -> String {
        self.breakers.clear();
        for (provider, model, state) in breakers {
            self.breakers
                .get_or_create(&BreakerLabels { provider, model })
                .set(state);
        }
        let seen = self.dropped.get();
        if dropped > seen {
            self.dropped.inc_by(dropped - seen);
        }
        self.in_flight
            .set(self.in_flight_now.load(Ordering::Relaxed));
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}
