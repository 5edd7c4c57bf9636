//! The request log: handlers hand a record to a bounded channel and move on; a writer the
//! runtime runs writes each batch to `logs.db` in one transaction, and as access lines on
//! stderr (target `switchboard::access`, when enabled).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use arc_swap::ArcSwap;
use tokio::sync::{broadcast, mpsc};

use crate::config::Protocol;
use crate::error::GatewayError;
use crate::metrics::Metrics;
use crate::pricing::{PriceUsed, Pricing};
use crate::protocol::usage::Tokens;
use crate::store::logs_db::{self, AttemptRow, LogRow};

#[derive(Clone, Debug)]
pub struct RequestRecord {
    pub at: SystemTime,
    pub client: Option<Arc<str>>,
    pub client_addr: Option<std::net::IpAddr>,
    /// Clipped to [`MAX_USER_AGENT`].
    pub user_agent: Option<String>,
    pub protocol: Protocol,
    pub endpoint: &'static str,
    pub model: Option<String>,
    /// The unified model the asked name resolved to.
    pub unified_model: Option<Arc<str>>,
    /// The session the client named (`x-session-id`, Claude Code's header, or `prompt_cache_key`).
    pub session: Option<String>,
    pub provider: Option<Arc<str>>,
    pub upstream_model: Option<Arc<str>>,
    pub upstream_protocol: Option<Protocol>,
    /// Whether the request went converted to another protocol.
    pub converted: bool,
    pub status: u16,
    pub attempts: u32,
    pub stream: bool,
    pub latency: Duration,
    pub ttfb: Option<Duration>,
    /// A stream's time to its first content, past any preamble.
    pub ttfc: Option<Duration>,
    /// Why the candidate that answered was chosen.
    pub chosen_by: Option<&'static str>,
    /// A tiered model's request: the tier it took, and why.
    pub tier: Option<Arc<str>>,
    pub tier_reason: Option<String>,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub error: Option<String>,
    /// The gateway's own code for the error (`GatewayError::code`): few values, for filters.
    pub error_code: Option<&'static str>,
    /// Every upstream attempt, in order.
    pub attempt_log: Vec<AttemptRecord>,
    /// The tokens used, as the upstream reported them or as estimated here.
    pub tokens: Option<Tokens>,
    /// Whether `tokens` is an estimate made here (the upstream reported none).
    pub tokens_estimated: bool,
    /// What the writer estimates tokens from when the upstream reported none.
    pub estimate: Option<Box<crate::tokens::EstimateFrom>>,
    /// The bodies, when `[logs] capture_bodies` is on.
    pub capture: Option<Box<crate::bodies::Capture>>,
}

/// One try at one candidate.
#[derive(Clone, Debug)]
pub struct AttemptRecord {
    pub provider: Arc<str>,
    pub model: Arc<str>,
    pub latency: Duration,
    /// The upstream's status, or the one the gateway answers for the failure (504 for a
    /// timeout, 502 for a network error).
    pub status: u16,
    /// None when it succeeded.
    pub error: Option<String>,
    pub error_code: Option<&'static str>,
    /// Its first byte from the upstream, when one came.
    pub ttfb: Option<Duration>,
    /// session, sticky, weighted or last_resort.
    pub chosen_by: &'static str,
    /// closed, half_open (its trial) or open (a last resort).
    pub breaker: &'static str,
}

impl AttemptRecord {
    pub fn ok(c: &crate::catalog::Candidate, latency: Duration, status: u16) -> Self {
        Self {
            provider: c.provider.name.clone(),
            model: c.model.clone(),
            latency,
            status,
            error: None,
            error_code: None,
            ttfb: None,
            chosen_by: "weighted",
            breaker: "closed",
        }
    }

    /// How it came to be tried, and its first byte.
    pub fn how(
        mut self,
        chosen_by: &'static str,
        breaker: &'static str,
        ttfb: Option<Duration>,
    ) -> Self {
        self.chosen_by = chosen_by;
        self.breaker = breaker;
        self.ttfb = ttfb;
        self
    }

    pub fn failed(c: &crate::catalog::Candidate, latency: Duration, error: &GatewayError) -> Self {
        Self {
            error: Some(error.to_string()),
            error_code: Some(error.code()),
            ..Self::ok(c, latency, error.status().as_u16())
        }
    }
}

impl RequestRecord {
    pub fn new(protocol: Protocol, endpoint: &'static str) -> Self {
        Self {
            at: SystemTime::now(),
            client: None,
            client_addr: None,
            user_agent: None,
            protocol,
            endpoint,
            model: None,
            unified_model: None,
            session: None,
            provider: None,
            upstream_model: None,
            upstream_protocol: None,
            converted: false,
            status: 0,
            attempts: 0,
            stream: false,
            latency: Duration::ZERO,
            ttfb: None,
            ttfc: None,
            chosen_by: None,
            tier: None,
            tier_reason: None,
            bytes_in: 0,
            bytes_out: 0,
            error: None,
            error_code: None,
            attempt_log: Vec::new(),
            tokens: None,
            tokens_estimated: false,
            estimate: None,
            capture: None,
        }
    }
}

impl Default for RequestRecord {
    fn default() -> Self {
        Self::new(Protocol::OpenAi, "-")
    }
}

/// A request's record and its one owner: it is recorded exactly once, when the guard drops,
/// however the request ended (answered, refused, its stream finished or abandoned). It moves
/// down the request path with the request: the edge makes it, the pipeline fills it, and the
/// reply (or the streaming body) carries it to the end.
pub(crate) struct Recorder {
    log: RequestLog,
    record: RequestRecord,
    started: Instant,
    /// The client's body, for an estimate of its tokens should the upstream report none.
    request: Option<bytes::Bytes>,
}

impl Recorder {
    pub(crate) fn new(log: &RequestLog, protocol: Protocol, endpoint: &'static str) -> Self {
        log.metrics.in_flight_now.fetch_add(1, Ordering::Relaxed);
        Self {
            log: log.clone(),
            record: RequestRecord::new(protocol, endpoint),
            started: Instant::now(),
            request: None,
        }
    }

    /// The client's body (shared, not copied), kept until the answer says its tokens.
    pub(crate) fn keep_request(&mut self, body: &bytes::Bytes) {
        self.request = Some(body.clone());
    }

    /// Keeps the client's body (shared) and, from now on, the answer, for the log's detail.
    pub(crate) fn capture_bodies(
        &mut self,
        api: crate::protocol::Api,
        body: &bytes::Bytes,
        max_kb: u32,
    ) {
        self.record.capture = Some(Box::new(crate::bodies::Capture::new(api, body, max_kb)));
    }

    /// A piece of the answer as the client receives it (kept only while capturing).
    pub(crate) fn keep_answer(&mut self, chunk: &bytes::Bytes) {
        if let Some(c) = self.record.capture.as_mut() {
            c.answer(chunk);
        }
    }

    /// The answer is over: its tokens as the upstream reported them, or else what the writer
    /// estimates them from (the answer's first bytes and its length). Only a successful
    /// answer is estimated: a failed one used nothing the record can tell.
    pub(crate) fn settle_tokens(
        &mut self,
        reported: Option<Tokens>,
        answer: Vec<bytes::Bytes>,
        answer_len: u64,
        responses_stream: bool,
    ) {
        let request = self.request.take();
        if let Some(t) = reported {
            self.record.tokens = Some(t);
            return;
        }
        if !(200..300).contains(&self.record.status) || self.record.error.is_some() {
            return;
        }
        let model = self.record.upstream_model.as_deref().unwrap_or("");
        if let Some(request) = request {
            self.record.estimate = crate::tokens::EstimateFrom::new(
                &request,
                answer,
                answer_len,
                responses_stream,
                model,
            )
            .map(Box::new);
        }
    }

    /// When the request began (the record's latency counts from here).
    pub(crate) fn started(&self) -> Instant {
        self.started
    }

    /// Who called: their address and what they say they are.
    pub(crate) fn caller(&mut self, parts: &http::request::Parts) {
        self.record.client_addr = parts
            .extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|c| c.0.ip());
        self.record.user_agent = parts
            .headers
            .get(http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|ua| crate::outside::clip(ua, MAX_USER_AGENT).into_owned());
    }

    /// The answer's status, when it is not an error.
    pub(crate) fn answered(&mut self, status: u16) {
        self.record.status = status;
    }

    /// The answer is this error.
    pub(crate) fn failed(&mut self, e: &GatewayError) {
        self.record.status = e.status().as_u16();
        self.errored(e);
    }

    /// The request ends in this error, whatever status its answer already had.
    pub(crate) fn errored(&mut self, e: &GatewayError) {
        self.record.error = Some(e.to_string());
        self.record.error_code = Some(e.code());
    }
}

impl std::ops::Deref for Recorder {
    type Target = RequestRecord;
    fn deref(&self) -> &RequestRecord {
        &self.record
    }
}

impl std::ops::DerefMut for Recorder {
    fn deref_mut(&mut self) -> &mut RequestRecord {
        &mut self.record
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        let mut r = std::mem::take(&mut self.record);
        r.latency = self.started.elapsed();
        self.log
            .metrics
            .in_flight_now
            .fetch_sub(1, Ordering::Relaxed);
        self.log.record(r);
    }
}

#[derive(Clone)]
pub struct RequestLog {
    tx: mpsc::Sender<RequestRecord>,
    dropped: Arc<AtomicU64>,
    /// `logs.enabled`: whether the writer keeps rows in `logs.db`.
    rows: Arc<AtomicBool>,
    /// Prices for the rows' costs: the engine swaps in new ones, the writer reads them.
    pricing: Arc<ArcSwap<Pricing>>,
    /// `/metrics`: counted by the writer from the records.
    metrics: Arc<Metrics>,
    /// The live tail: each row as written, for whoever follows `/api/logs/live`. Its own
    /// channel, so a busy tail never crowds out the engine's breaker events.
    tail: broadcast::Sender<Arc<LogRow>>,
    /// Budgeted client keys' spend: the writer counts it, the request path reads it.
    spend: Arc<crate::budget::SpendBook>,
    /// What providers and their models with `[[quotas]]` used, the same way.
    quotas: Arc<crate::budget::SpendBook>,
}

const CAPACITY: usize = 8192;
/// Rows a slow follower of the tail may be behind before it skips (and is told how many).
const TAIL_CAPACITY: usize = 1024;

impl RequestLog {
    /// The log and the receiving end its writer drains.
    pub(crate) fn channel() -> (Self, mpsc::Receiver<RequestRecord>) {
        let (tx, rx) = mpsc::channel::<RequestRecord>(CAPACITY);
        (
            Self {
                tx,
                dropped: Arc::new(AtomicU64::new(0)),
                rows: Arc::new(AtomicBool::new(true)),
                pricing: Arc::new(ArcSwap::from_pointee(Pricing::default())),
                metrics: Arc::new(Metrics::new()),
                tail: broadcast::channel(TAIL_CAPACITY).0,
                spend: Default::default(),
                quotas: Arc::new(crate::budget::SpendBook::quotas()),
            },
            rx,
        )
    }

    /// Follows the rows as they are written.
    pub(crate) fn follow(&self) -> broadcast::Receiver<Arc<LogRow>> {
        self.tail.subscribe()
    }

    pub(crate) fn tail_sender(&self) -> broadcast::Sender<Arc<LogRow>> {
        self.tail.clone()
    }

    pub(crate) fn keep_rows(&self, on: bool) {
        self.rows.store(on, Ordering::Relaxed);
    }

    /// Never waits: when the writer falls this far behind, the record is counted and dropped
    /// rather than slowing every request down.
    fn record(&self, r: RequestRecord) {
        if self.tx.try_send(r).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub(crate) fn pricing(&self) -> Arc<Pricing> {
        self.pricing.load_full()
    }

    pub(crate) fn set_pricing(&self, pricing: Pricing) {
        self.pricing.store(Arc::new(pricing));
    }

    pub(crate) fn metrics(&self) -> Arc<Metrics> {
        self.metrics.clone()
    }

    /// The prices the writer reads.
    pub(crate) fn pricing_handle(&self) -> Arc<ArcSwap<Pricing>> {
        self.pricing.clone()
    }

    /// The flag the writer reads for `logs.enabled`.
    pub(crate) fn rows_flag(&self) -> Arc<AtomicBool> {
        self.rows.clone()
    }

    pub(crate) fn spend(&self) -> &Arc<crate::budget::SpendBook> {
        &self.spend
    }

    pub(crate) fn quotas(&self) -> &Arc<crate::budget::SpendBook> {
        &self.quotas
    }

    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// The longest user agent kept, and error message stored, in characters.
pub const MAX_USER_AGENT: usize = 256;
pub const MAX_ERROR: usize = 2048;

/// A record as the log database stores it.
fn to_row(r: &RequestRecord, priced: &Option<(f64, PriceUsed)>) -> (LogRow, Vec<AttemptRow>) {
    use crate::outside::{MAX_NAME, clip};
    let us = |d: Duration| i64::try_from(d.as_micros()).unwrap_or(i64::MAX);
    // `clip` copies only when there is something to cut or escape (names rarely have).
    let name = |s: &str| clip(s, MAX_NAME).into_owned();
    let error = |e: &Option<String>| e.as_deref().map(|e| clip(e, MAX_ERROR).into_owned());
    let count = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    let since_epoch =
        r.at.duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default();
    let started_ms = i64::try_from(since_epoch.as_millis()).unwrap_or(i64::MAX);
    let (cost_usd, price) = match priced {
        Some((usd, used)) => (Some(*usd), serde_json::to_string(used).ok()),
        None => (None, None),
    };
    let row = LogRow {
        id: 0,
        started_ms,
        client_key: r.client.as_deref().map(name),
        client_addr: r.client_addr.map(|a| a.to_string()),
        user_agent: r.user_agent.clone(),
        protocol: r.protocol.as_str().to_owned(),
        endpoint: r.endpoint.to_owned(),
        model: r.model.as_deref().map(name),
        unified_model: r.unified_model.as_deref().map(name),
        session: r.session.clone(),
        provider: r.provider.as_deref().map(name),
        upstream_model: r.upstream_model.as_deref().map(name),
        upstream_protocol: r.upstream_protocol.map(|p| p.as_str().to_owned()),
        converted: r.converted,
        stream: r.stream,
        status: r.status,
        error: error(&r.error),
        error_code: r.error_code.map(str::to_owned),
        attempts: r.attempts,
        latency_us: us(r.latency),
        ttfb_us: r.ttfb.map(us),
        ttfc_us: r.ttfc.map(us),
        chosen_by: r.chosen_by.map(str::to_owned),
        tier: r.tier.as_deref().map(str::to_owned),
        tier_reason: r.tier_reason.clone(),
        bytes_in: i64::try_from(r.bytes_in).unwrap_or(i64::MAX),
        bytes_out: i64::try_from(r.bytes_out).unwrap_or(i64::MAX),
        input_tokens: r.tokens.map(|t| count(t.input)),
        output_tokens: r.tokens.map(|t| count(t.output)),
        cache_read_tokens: r.tokens.map(|t| count(t.cache_read)),
        cache_write_tokens: r.tokens.map(|t| count(t.cache_write)),
        reasoning_tokens: r.tokens.map(|t| count(t.reasoning)),
        tokens_estimated: r.tokens.is_some() && r.tokens_estimated,
        cost_usd,
        price,
        bodies: r.capture.as_ref().map(|c| Box::new(c.to_bodies(r.stream))),
    };
    let attempts = r
        .attempt_log
        .iter()
        .map(|a| AttemptRow {
            provider: name(&a.provider),
            model: name(&a.model),
            latency_us: us(a.latency),
            status: a.status,
            error: error(&a.error),
            error_code: a.error_code.map(str::to_owned),
            ttfb_us: a.ttfb.map(us),
            chosen_by: Some(a.chosen_by.to_owned()),
            breaker: Some(a.breaker.to_owned()),
        })
        .collect();
    (row, attempts)
}

/// What the record's tokens cost, and the price used (None: no tokens, or no price).
fn price_of(r: &RequestRecord, pricing: &Pricing) -> Option<(f64, PriceUsed)> {
    let (Some(provider), Some(model), Some(tokens)) = (&r.provider, &r.upstream_model, &r.tokens)
    else {
        return None;
    };
    let unix_s =
        r.at.duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
    pricing.cost(provider, model, tokens, unix_s)
}

/// How often the writer wakes to write what came: never woken by a record (a wake per request
/// would cost every request a context switch), and a line is at most this late.
const WRITE_EVERY: std::time::Duration = std::time::Duration::from_millis(50);

/// Writes records in batches, one transaction and one access-line write each, until every
/// sender is gone.
pub(crate) fn write_records(
    mut rx: mpsc::Receiver<RequestRecord>,
    keep_rows: Arc<AtomicBool>,
    pricing: Arc<ArcSwap<Pricing>>,
    metrics: Arc<Metrics>,
    tail: broadcast::Sender<Arc<LogRow>>,
    books: [Arc<crate::budget::SpendBook>; 2],
    mut db: rusqlite::Connection,
) {
    let [spend, quotas] = books;
    use tokio::sync::mpsc::error::TryRecvError;
    let mut batch = Vec::with_capacity(256);
    let mut out = String::with_capacity(64 * 1024);
    loop {
        let mut closed = false;
        loop {
            match rx.try_recv() {
                Ok(r) => {
                    batch.push(r);
                    if batch.len() == 256 {
                        break;
                    }
                }
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    closed = true;
                    break;
                }
            }
        }
        // One write per batch, formatted here: a tracing event per request cost about a third
        // of the gateway's CPU per request under load.
        if !batch.is_empty()
            && tracing::enabled!(target: "switchboard::access", tracing::Level::INFO)
        {
            out.clear();
            for r in &batch {
                access_line(&mut out, r);
            }
            use std::io::Write;
            let _ = std::io::stderr().lock().write_all(out.as_bytes());
        }
        let keep = keep_rows.load(Ordering::Relaxed);
        if keep {
            // Counting tokens no upstream reported is the writer's dearest work: only for rows
            // that are kept.
            for r in &mut batch {
                estimate_tokens(r);
            }
        }
        let prices = pricing.load();
        let priced: Vec<_> = batch.iter().map(|r| price_of(r, &prices)).collect();
        let now = crate::protocol::unix_now_ms();
        for (r, p) in batch.iter().zip(&priced) {
            let usd = p.as_ref().map(|(usd, _)| *usd);
            metrics.record(r, usd);
            let at =
                r.at.duration_since(SystemTime::UNIX_EPOCH)
                    .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
            let used = crate::budget::Used {
                usd: usd.unwrap_or(0.0),
                tokens: r.tokens.map_or(0, |t| t.input.saturating_add(t.output)),
                requests: 1,
            };
            if let Some(key) = &r.client {
                spend.add(key, at, used, now);
            }
            if let (Some(p), Some(m)) = (&r.provider, &r.upstream_model) {
                quotas.add_answer(p, m, at, used, now);
            }
        }
        if !batch.is_empty() && keep {
            let rows: Vec<_> = batch
                .iter()
                .zip(&priced)
                .map(|(r, p)| to_row(r, p))
                .collect();
            match logs_db::write(&mut db, &rows) {
                // Only rows that are in the file go to the tail: a follower can open each.
                Ok(ids) if tail.receiver_count() > 0 => {
                    for ((mut row, _), id) in rows.into_iter().zip(ids) {
                        row.id = id;
                        row.bodies = None;
                        let _ = tail.send(Arc::new(row));
                    }
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(
                    "cannot write {} request(s) to the request log: {e}",
                    rows.len()
                ),
            }
        }
        let full = batch.len() == 256;
        batch.clear();
        if closed {
            return;
        }
        if !full {
            std::thread::sleep(WRITE_EVERY);
        }
    }
}

/// The upstream reported no tokens: counted here, and marked so.
fn estimate_tokens(r: &mut RequestRecord) {
    if let Some(from) = r.estimate.take()
        && r.tokens.is_none()
    {
        r.tokens = Some(crate::tokens::estimate(&from));
        r.tokens_estimated = true;
    }
}

/// `2026-11-22T00:13:42.797Z access chat/completions status=200 ...`, one line per request.
fn access_line(out: &mut String, r: &RequestRecord) {
    use crate::outside::{Clip, MAX_NAME};
    use std::fmt::Write;
    let since =
        r.at.duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default();
    let secs = since.as_secs();
    let (y, m, d) = civil_from_days((secs / 86_400) as i64);
    let t = secs % 86_400;
    let _ = write!(
        out,
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z access {} status={} client={} model={} provider={} upstream_model={} attempts={} stream={} latency_us={} ttfb_us={} bytes={}",
        t / 3600,
        t % 3600 / 60,
        t % 60,
        since.subsec_millis(),
        r.endpoint,
        r.status,
        Clip(r.client.as_deref().unwrap_or("-"), MAX_NAME),
        Clip(r.model.as_deref().unwrap_or("-"), MAX_NAME),
        Clip(r.provider.as_deref().unwrap_or("-"), MAX_NAME),
        Clip(r.upstream_model.as_deref().unwrap_or("-"), MAX_NAME),
        r.attempts,
        r.stream,
        r.latency.as_micros(),
        r.ttfb.map_or(0, |t| t.as_micros()),
        r.bytes_out,
    );
    if let Some(e) = &r.error {
        let _ = write!(out, " error={e:?}");
    }
    if r.attempt_log.len() > 1 {
        out.push_str(" tried=");
        for (i, a) in r.attempt_log.iter().enumerate() {
            let sep = if i > 0 { "," } else { "" };
            let result = if a.error.is_some() { "failed" } else { "ok" };
            let _ = write!(out, "{sep}{}/{}:{result}", a.provider, a.model);
        }
    }
    out.push('\n');
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_414), (2025, 11, 22));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    }

    #[test]
    fn access_line_names_every_field() {
        let mut r = RequestRecord::new(Protocol::OpenAi, "chat/completions");
        r.at = SystemTime::UNIX_EPOCH + Duration::from_millis(1_763_770_422_797);
        r.status = 502;
        r.error = Some("cannot reach \"p\"".into());
        let mut out = String::new();
        access_line(&mut out, &r);
        assert_eq!(
            out,
            "2025-11-22T00:13:42.797Z access chat/completions status=502 client=- model=- provider=- upstream_model=- attempts=0 stream=false latency_us=0 ttfb_us=0 bytes=0 error=\"cannot reach \\\"p\\\"\"\n"
        );
    }
}
