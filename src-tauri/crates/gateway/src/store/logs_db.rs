//! The request log database (`logs.db`): one row per client request and one per upstream
//! attempt. Written in batches by the runtime's log writer, read by the admin API; nothing on
//! the request path touches it.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension, params, params_from_iter};
use serde::Serialize;

use super::StoreError;

/// Each entry moves the schema from version `i` to `i + 1`. Append only.
pub(super) const MIGRATIONS: &[&str] = &[
    // 1: requests and their attempts.
    r#"
    CREATE TABLE requests (
        id             INTEGER PRIMARY KEY,  -- grows with time: sorts newest first, pages by cursor
        started_ms     INTEGER NOT NULL,     -- unix milliseconds
        client_key     TEXT,                 -- the client key's name, never the key
        client_addr    TEXT,
        user_agent     TEXT,
        protocol       TEXT NOT NULL,        -- the client's: openai | anthropic | gemini
        endpoint       TEXT NOT NULL,
        model          TEXT,                 -- as asked
        provider       TEXT,                 -- the one that answered
        upstream_model TEXT,
        stream         INTEGER NOT NULL,
        status         INTEGER NOT NULL,
        error          TEXT,                 -- bounded
        error_code     TEXT,                 -- the gateway's own, few values
        attempts       INTEGER NOT NULL,
        latency_us     INTEGER NOT NULL,
        ttfb_us        INTEGER,
        bytes_in       INTEGER NOT NULL,
        bytes_out      INTEGER NOT NULL
    );
    CREATE INDEX requests_started ON requests(started_ms);
    CREATE TABLE attempts (
        request_id INTEGER NOT NULL REFERENCES requests(id) ON DELETE CASCADE,
        seq        INTEGER NOT NULL,
        provider   TEXT NOT NULL,
        model      TEXT NOT NULL,
        latency_us INTEGER NOT NULL,
        status     INTEGER NOT NULL,
        error      TEXT,                     -- NULL: it answered
        error_code TEXT,
        PRIMARY KEY (request_id, seq)
    ) WITHOUT ROWID;
    "#,
    // 2: the daily rollup that outlives the rows (retention), one row per day x unified model
    // x provider x client key ('' when there was none). Latency in buckets: h0 < 50 ms,
    // h1 < 100 ms, h2 < 250 ms, h3 < 500 ms, h4 < 1 s, h5 < 2.5 s, h6 < 5 s, h7 < 10 s,
    // h8 < 30 s, h9 the rest.
    r#"
    CREATE TABLE daily (
        day            INTEGER NOT NULL,     -- days since 1970-01-01, UTC
        model          TEXT NOT NULL,
        provider       TEXT NOT NULL,
        client_key     TEXT NOT NULL,
        requests       INTEGER NOT NULL,
        errors         INTEGER NOT NULL,
        latency_us_sum INTEGER NOT NULL,
        h0 INTEGER NOT NULL, h1 INTEGER NOT NULL, h2 INTEGER NOT NULL, h3 INTEGER NOT NULL,
        h4 INTEGER NOT NULL, h5 INTEGER NOT NULL, h6 INTEGER NOT NULL, h7 INTEGER NOT NULL,
        h8 INTEGER NOT NULL, h9 INTEGER NOT NULL,
        PRIMARY KEY (day, model, provider, client_key)
    ) WITHOUT ROWID;
    "#,
    // 3: where the asked name led, the client's session, and how the upstream was spoken to.
    r#"
    ALTER TABLE requests ADD COLUMN unified_model TEXT;
    ALTER TABLE requests ADD COLUMN session TEXT;
    ALTER TABLE requests ADD COLUMN upstream_protocol TEXT;
    ALTER TABLE requests ADD COLUMN converted INTEGER NOT NULL DEFAULT 0;
    "#,
    // 4: tokens (NULL: not known), whether they were estimated here, and their cost (NULL:
    // no price for the model) with the price used; the rollup sums both.
    r#"
    ALTER TABLE requests ADD COLUMN input_tokens INTEGER;
    ALTER TABLE requests ADD COLUMN output_tokens INTEGER;
    ALTER TABLE requests ADD COLUMN cache_read_tokens INTEGER;
    ALTER TABLE requests ADD COLUMN cache_write_tokens INTEGER;
    ALTER TABLE requests ADD COLUMN reasoning_tokens INTEGER;
    ALTER TABLE requests ADD COLUMN tokens_estimated INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE requests ADD COLUMN cost_usd REAL;
    ALTER TABLE requests ADD COLUMN price TEXT;
    ALTER TABLE daily ADD COLUMN input_tokens INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE daily ADD COLUMN output_tokens INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE daily ADD COLUMN cache_read_tokens INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE daily ADD COLUMN cache_write_tokens INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE daily ADD COLUMN reasoning_tokens INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE daily ADD COLUMN estimated INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE daily ADD COLUMN cost_usd REAL NOT NULL DEFAULT 0;
    ALTER TABLE daily ADD COLUMN unpriced INTEGER NOT NULL DEFAULT 0;
    "#,
    // 5: time to first content (streams), why each candidate was chosen (session, sticky,
    // weighted, last_resort), and per attempt its time to first byte and the breaker state
    // that let it through (closed, half_open, open for a last resort).
    r#"
    ALTER TABLE requests ADD COLUMN ttfc_us INTEGER;
    ALTER TABLE requests ADD COLUMN chosen_by TEXT;
    ALTER TABLE attempts ADD COLUMN ttfb_us INTEGER;
    ALTER TABLE attempts ADD COLUMN chosen_by TEXT;
    ALTER TABLE attempts ADD COLUMN breaker TEXT;
    "#,
    // 6: the rollup the writer keeps with every batch, for the stats (see logs_stats.rs), by
    // hour and by day: sums, and latency and time-to-first-content histograms (sparse blobs).
    r#"
    CREATE TABLE rollup (
        span_h            INTEGER NOT NULL,  -- 1: an hour, 24: a day
        t_h               INTEGER NOT NULL,  -- its start, hours since 1970-01-01 UTC
        model             TEXT NOT NULL,     -- unified model, else the name asked; '' for none
        provider          TEXT NOT NULL,
        client_key        TEXT NOT NULL,
        requests          INTEGER NOT NULL,
        errors            INTEGER NOT NULL,
        saved             INTEGER NOT NULL,  -- succeeded after a failed attempt
        attempts          INTEGER NOT NULL,
        failed_attempts   INTEGER NOT NULL,
        input_tokens      INTEGER NOT NULL,
        output_tokens     INTEGER NOT NULL,
        cache_read_tokens INTEGER NOT NULL,
        cache_write_tokens INTEGER NOT NULL,
        reasoning_tokens  INTEGER NOT NULL,
        estimated         INTEGER NOT NULL,
        cost_usd          REAL NOT NULL,
        unpriced          INTEGER NOT NULL,
        latency           BLOB NOT NULL,
        ttfc              BLOB NOT NULL,
        PRIMARY KEY (span_h, t_h, model, provider, client_key)
    ) WITHOUT ROWID;
    "#,
    // 7: captured bodies (`[logs] capture_bodies`), apart from the rows so they can go sooner.
    r#"
    CREATE TABLE bodies (
        request_id INTEGER PRIMARY KEY REFERENCES requests(id) ON DELETE CASCADE,
        started_ms INTEGER NOT NULL,
        request    TEXT,
        response   TEXT
    );
    CREATE INDEX bodies_started ON bodies (started_ms);
    "#,
    // 8: a request's only attempt, when it says nothing the row does not (same provider,
    // model, status, error and choice), is kept in the row instead of a row of its own: its
    // latency (not NULL marks the fold), time to first byte and breaker state. The common
    // request then costs the writer one insert instead of two.
    r#"
    ALTER TABLE requests ADD COLUMN one_latency_us INTEGER;
    ALTER TABLE requests ADD COLUMN one_ttfb_us INTEGER;
    ALTER TABLE requests ADD COLUMN one_breaker TEXT;
    "#,
    // 9: intent tiers: the tier a tiered model's request took, and why.
    r#"
    ALTER TABLE requests ADD COLUMN tier TEXT;
    ALTER TABLE requests ADD COLUMN tier_reason TEXT;
    "#,
];

/// A logged request as the what-if replay reads it: answered, with its tokens.
#[derive(Clone, Debug)]
pub struct Replayed {
    pub started_ms: i64,
    pub unified_model: String,
    pub provider: String,
    pub upstream_model: String,
    pub tokens: crate::protocol::usage::Tokens,
    pub cost_usd: Option<f64>,
    pub latency_us: i64,
    /// A tiered model's request: its tier.
    pub tier: Option<String>,
}

/// The answered requests with tokens over `[since_ms, until_ms)` (of one unified model, if
/// given), newest first, at most `limit`.
pub fn replayed(
    conn: &Connection,
    since_ms: i64,
    until_ms: i64,
    model: Option<&str>,
    limit: usize,
) -> Result<Vec<Replayed>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT started_ms, unified_model, provider, upstream_model, input_tokens,
            coalesce(output_tokens, 0), coalesce(cache_read_tokens, 0),
            coalesce(cache_write_tokens, 0), coalesce(reasoning_tokens, 0), cost_usd, latency_us,
            tier
         FROM requests
         WHERE started_ms >= ?1 AND started_ms < ?2 AND status < 400 AND provider IS NOT NULL
            AND upstream_model IS NOT NULL AND unified_model IS NOT NULL
            AND input_tokens IS NOT NULL AND (?3 IS NULL OR unified_model = ?3)
         ORDER BY started_ms DESC LIMIT ?4",
    )?;
    let n = |v: i64| u64::try_from(v).unwrap_or(0);
    let rows = stmt.query_map(
        params![
            since_ms,
            until_ms,
            model,
            i64::try_from(limit).unwrap_or(i64::MAX)
        ],
        |r| {
            Ok(Replayed {
                started_ms: r.get(0)?,
                unified_model: r.get(1)?,
                provider: r.get(2)?,
                upstream_model: r.get(3)?,
                tokens: crate::protocol::usage::Tokens {
                    input: n(r.get(4)?),
                    output: n(r.get(5)?),
                    cache_read: n(r.get(6)?),
                    cache_write: n(r.get(7)?),
                    reasoning: n(r.get(8)?),
                },
                cost_usd: r.get(9)?,
                latency_us: r.get(10)?,
                tier: r.get(11)?,
            })
        },
    )?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Whose use a budget or a quota counts.
#[derive(Clone, Debug)]
pub enum Spender {
    Key(String),
    Provider(String),
    Pair(String, String),
}

/// What a client key, a provider or a (provider, model) used over `[since_ms, until_ms)`:
/// requests (answered by a provider, for the last two), USD (where priced), and input plus
/// output tokens.
pub fn used(
    conn: &Connection,
    who: &Spender,
    since_ms: i64,
    until_ms: i64,
) -> Result<(u64, f64, u64), StoreError> {
    const SUMS: &str = "SELECT count(*), coalesce(sum(cost_usd), 0),
        coalesce(sum(coalesce(input_tokens, 0) + coalesce(output_tokens, 0)), 0) FROM requests
        WHERE started_ms >= ?1 AND started_ms < ?2";
    let row = |r: &rusqlite::Row<'_>| -> rusqlite::Result<(i64, f64, i64)> {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?))
    };
    let (n, usd, tokens) = match who {
        Spender::Key(k) => conn
            .prepare_cached(&format!("{SUMS} AND client_key = ?3"))?
            .query_row(params![since_ms, until_ms, k], row)?,
        Spender::Provider(p) => conn
            .prepare_cached(&format!("{SUMS} AND provider = ?3"))?
            .query_row(params![since_ms, until_ms, p], row)?,
        Spender::Pair(p, m) => conn
            .prepare_cached(&format!("{SUMS} AND provider = ?3 AND upstream_model = ?4"))?
            .query_row(params![since_ms, until_ms, p, m], row)?,
    };
    Ok((
        u64::try_from(n).unwrap_or(0),
        usd,
        u64::try_from(tokens).unwrap_or(0),
    ))
}

/// The latency buckets' upper bounds, in microseconds (the last bucket has none).
pub const LATENCY_BUCKETS_US: [i64; 9] = [
    50_000, 100_000, 250_000, 500_000, 1_000_000, 2_500_000, 5_000_000, 10_000_000, 30_000_000,
];

/// Opens (creating and migrating) the request log.
pub fn open(path: &Path) -> Result<Connection, StoreError> {
    let mut conn = super::open_with(path, MIGRATIONS)?;
    let summed = super::logs_stats::backfill(&mut conn)?;
    if summed > 0 {
        tracing::info!(
            rows = summed,
            "request log: older rows summed into the hourly rollup"
        );
    }
    // Checkpoints are where a WAL database syncs to disk: every 32 MB of log instead of every
    // 4 MB nearly doubled the writer's rows a second (benches/log_writer.rs), and the WAL file
    // is cut back to 64 MB after each.
    conn.pragma_update(None, "wal_autocheckpoint", 8192)?;
    conn.pragma_update(None, "journal_size_limit", 64 * 1024 * 1024)?;
    // Pruning hands pages back to the file system a few at a time, never in one long VACUUM;
    // a file made without incremental vacuum is converted once (a fresh one is nearly empty).
    let mode: i64 = conn.pragma_query_value(None, "auto_vacuum", |r| r.get(0))?;
    if mode != 2 {
        conn.pragma_update(None, "auto_vacuum", "INCREMENTAL")?;
        conn.execute_batch("VACUUM")?;
    }
    Ok(conn)
}

/// A request as stored and as `GET /api/logs` shows it.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct LogRow {
    pub id: i64,
    pub started_ms: i64,
    pub client_key: Option<String>,
    pub client_addr: Option<String>,
    pub user_agent: Option<String>,
    pub protocol: String,
    pub endpoint: String,
    pub model: Option<String>,
    pub provider: Option<String>,
    pub upstream_model: Option<String>,
    pub stream: bool,
    pub status: u16,
    pub error: Option<String>,
    pub error_code: Option<String>,
    pub attempts: u32,
    pub latency_us: i64,
    pub ttfb_us: Option<i64>,
    pub bytes_in: i64,
    pub bytes_out: i64,
    pub unified_model: Option<String>,
    pub session: Option<String>,
    pub upstream_protocol: Option<String>,
    pub converted: bool,
    pub input_tokens: Option<i64>,
    pub output_tokens: Option<i64>,
    pub cache_read_tokens: Option<i64>,
    pub cache_write_tokens: Option<i64>,
    pub reasoning_tokens: Option<i64>,
    /// The tokens were counted here: the upstream reported none.
    pub tokens_estimated: bool,
    /// None: not known (no tokens, or no price for the model); never a stand-in zero.
    pub cost_usd: Option<f64>,
    /// The price the cost used: where it came from and the rates per million tokens (JSON,
    /// shown as the object it is).
    #[serde(serialize_with = "as_json")]
    pub price: Option<String>,
    /// A stream's time to its first content (text, a tool call), past any preamble.
    pub ttfc_us: Option<i64>,
    /// Why the candidate that answered was chosen: session, sticky, weighted or last_resort.
    pub chosen_by: Option<String>,
    /// A tiered model's request: the tier it took, and why.
    pub tier: Option<String>,
    pub tier_reason: Option<String>,
    /// The captured bodies, written beside the row (shown by `GET /api/logs/{id}` only).
    #[serde(skip)]
    pub bodies: Option<Box<Bodies>>,
}

/// A request's body and its answer as kept (each already cut to the size allowed).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Bodies {
    pub request: Option<String>,
    pub response: Option<String>,
}

fn as_json<S: serde::Serializer>(v: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
    use serde::Serialize;
    match v.as_deref().map(serde_json::from_str::<serde_json::Value>) {
        Some(Ok(json)) => json.serialize(s),
        Some(Err(_)) => v.serialize(s),
        None => s.serialize_none(),
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct AttemptRow {
    pub provider: String,
    pub model: String,
    pub latency_us: i64,
    pub status: u16,
    pub error: Option<String>,
    pub error_code: Option<String>,
    pub ttfb_us: Option<i64>,
    /// session, sticky, weighted or last_resort.
    pub chosen_by: Option<String>,
    /// The breaker state that let it through: closed, half_open (the trial), or open (a last
    /// resort tried anyway).
    pub breaker: Option<String>,
}

/// Writes requests and their attempts in one transaction (the `id` of a row given is ignored:
/// the database numbers them); answers the ids, in order.
pub fn write(
    conn: &mut Connection,
    rows: &[(LogRow, Vec<AttemptRow>)],
) -> Result<Vec<i64>, StoreError> {
    let mut ids = Vec::with_capacity(rows.len());
    let tx = conn.transaction()?;
    {
        let mut request = tx.prepare_cached(
            "INSERT INTO requests (started_ms, client_key, client_addr, user_agent, protocol,
                endpoint, model, provider, upstream_model, stream, status, error, error_code,
                attempts, latency_us, ttfb_us, bytes_in, bytes_out, unified_model, session,
                upstream_protocol, converted, input_tokens, output_tokens, cache_read_tokens,
                cache_write_tokens, reasoning_tokens, tokens_estimated, cost_usd, price, ttfc_us,
                chosen_by, one_latency_us, one_ttfb_us, one_breaker, tier, tier_reason)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17,
                ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27, ?28, ?29, ?30, ?31, ?32, ?33,
                ?34, ?35, ?36, ?37)",
        )?;
        let mut attempt = tx.prepare_cached(
            "INSERT INTO attempts (request_id, seq, provider, model, latency_us, status, error,
                error_code, ttfb_us, chosen_by, breaker)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        )?;
        let mut body = tx.prepare_cached(
            "INSERT INTO bodies (request_id, started_ms, request, response) VALUES (?1, ?2, ?3, ?4)",
        )?;
        for (r, attempts) in rows {
            let one = folded(r, attempts);
            request.execute(params![
                r.started_ms,
                r.client_key,
                r.client_addr,
                r.user_agent,
                r.protocol,
                r.endpoint,
                r.model,
                r.provider,
                r.upstream_model,
                r.stream,
                r.status,
                r.error,
                r.error_code,
                r.attempts,
                r.latency_us,
                r.ttfb_us,
                r.bytes_in,
                r.bytes_out,
                r.unified_model,
                r.session,
                r.upstream_protocol,
                r.converted,
                r.input_tokens,
                r.output_tokens,
                r.cache_read_tokens,
                r.cache_write_tokens,
                r.reasoning_tokens,
                r.tokens_estimated,
                r.cost_usd,
                r.price,
                r.ttfc_us,
                r.chosen_by,
                one.map(|a| a.latency_us),
                one.and_then(|a| a.ttfb_us),
                one.and_then(|a| a.breaker.as_deref()),
                r.tier,
                r.tier_reason,
            ])?;
            let id = tx.last_insert_rowid();
            ids.push(id);
            if let Some(b) = &r.bodies {
                body.execute(params![id, r.started_ms, b.request, b.response])?;
            }
            if one.is_some() {
                continue;
            }
            for (seq, a) in attempts.iter().enumerate() {
                attempt.execute(params![
                    id,
                    seq,
                    a.provider,
                    a.model,
                    a.latency_us,
                    a.status,
                    a.error,
                    a.error_code,
                    a.ttfb_us,
                    a.chosen_by,
                    a.breaker
                ])?;
            }
        }
    }
    super::logs_stats::add_to_rollup(&tx, rows.iter().map(|(r, _)| r))?;
    tx.commit()?;
    Ok(ids)
}

/// The request's only attempt when the row says all of it but its timings and breaker (see
/// migration 8): stored in the row.
fn folded<'a>(r: &LogRow, attempts: &'a [AttemptRow]) -> Option<&'a AttemptRow> {
    match attempts {
        [a] if r.provider.as_ref() == Some(&a.provider)
            && r.upstream_model.as_ref() == Some(&a.model)
            && r.status == a.status
            && r.error == a.error
            && r.error_code == a.error_code
            && r.chosen_by == a.chosen_by =>
        {
            Some(a)
        }
        _ => None,
    }
}

/// Up to `limit` rows with an id past `after`, in id order.
pub(super) fn rows_after(
    conn: &Connection,
    after: i64,
    limit: i64,
) -> Result<Vec<LogRow>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM requests WHERE id > ?1 ORDER BY id LIMIT ?2"
    ))?;
    let rows = stmt.query_map(params![after, limit], row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// What one call of [`prune`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pruned {
    pub rows: u64,
    /// Whether rows past the limits are left (the caller comes back for them).
    pub more: bool,
}

/// The file's size in use, in bytes (free pages not counted).
pub fn size_in_use(conn: &Connection) -> Result<u64, StoreError> {
    let pragma = |name: &str| conn.pragma_query_value(None, name, |r| r.get::<_, i64>(0));
    let used = (pragma("page_count")? - pragma("freelist_count")?) * pragma("page_size")?;
    Ok(u64::try_from(used).unwrap_or(0))
}

/// Rolls up, then deletes, at most `batch` of the oldest rows that are older than `cutoff_ms`
/// or, while the file is over `max_bytes`, the oldest at all; one transaction, so a reader
/// waits for one batch at most. Then returns the freed pages to the file system.
pub fn prune(
    conn: &mut Connection,
    cutoff_ms: i64,
    max_bytes: u64,
    batch: usize,
) -> Result<Pruned, StoreError> {
    let over = size_in_use(conn)? > max_bytes;
    let cutoff = if over { i64::MAX } else { cutoff_ms };
    let batch = i64::try_from(batch.max(1)).unwrap_or(i64::MAX);
    let tx = conn.transaction()?;
    let last: Option<i64> = tx.query_row(
        "SELECT max(id) FROM (SELECT id FROM requests WHERE started_ms < ?1 ORDER BY id LIMIT ?2)",
        params![cutoff, batch],
        |r| r.get(0),
    )?;
    let Some(last) = last else {
        return Ok(Pruned::default());
    };
    let bucket = |i: usize| {
        let lo = if i == 0 { 0 } else { LATENCY_BUCKETS_US[i - 1] };
        match LATENCY_BUCKETS_US.get(i) {
            Some(hi) => format!("sum(latency_us >= {lo} AND latency_us < {hi})"),
            None => format!("sum(latency_us >= {lo})"),
        }
    };
    let sums: Vec<String> = (0..10).map(bucket).collect();
    let adds: Vec<String> = (0..10)
        .map(|i| format!("h{i} = h{i} + excluded.h{i}"))
        .collect();
    // `WHERE true`: SQLite's upsert after a SELECT needs it to parse ON CONFLICT.
    let rollup = format!(
        "INSERT INTO daily (day, model, provider, client_key, requests, errors, latency_us_sum,
            input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, reasoning_tokens,
            estimated, cost_usd, unpriced, h0, h1, h2, h3, h4, h5, h6, h7, h8, h9)
         SELECT started_ms / 86400000, coalesce(unified_model, model, ''), coalesce(provider, ''),
            coalesce(client_key, ''), count(*), sum(status >= 400 OR error IS NOT NULL),
            sum(latency_us), coalesce(sum(input_tokens), 0), coalesce(sum(output_tokens), 0), coalesce(sum(cache_read_tokens), 0),
            coalesce(sum(cache_write_tokens), 0), coalesce(sum(reasoning_tokens), 0), sum(tokens_estimated),
            total(cost_usd), sum(input_tokens IS NOT NULL AND cost_usd IS NULL), {}
         FROM requests WHERE id <= ?1 AND started_ms < ?2 AND true
         GROUP BY 1, 2, 3, 4
         ON CONFLICT (day, model, provider, client_key) DO UPDATE SET
            requests = requests + excluded.requests, errors = errors + excluded.errors,
            latency_us_sum = latency_us_sum + excluded.latency_us_sum,
            input_tokens = input_tokens + excluded.input_tokens,
            output_tokens = output_tokens + excluded.output_tokens,
            cache_read_tokens = cache_read_tokens + excluded.cache_read_tokens,
            cache_write_tokens = cache_write_tokens + excluded.cache_write_tokens,
            reasoning_tokens = reasoning_tokens + excluded.reasoning_tokens,
            estimated = estimated + excluded.estimated, cost_usd = cost_usd + excluded.cost_usd,
            unpriced = unpriced + excluded.unpriced, {}",
        sums.join(", "),
        adds.join(", ")
    );
    tx.execute(&rollup, params![last, cutoff])?;
    let rows = tx.execute(
        "DELETE FROM requests WHERE id <= ?1 AND started_ms < ?2",
        params![last, cutoff],
    )?;
    let more: bool = tx.query_row(
        "SELECT EXISTS (SELECT 1 FROM requests WHERE started_ms < ?1)",
        [cutoff],
        |r| r.get(0),
    )?;
    tx.commit()?;
    // A few hundred pages at a time: the space goes back without one long pause.
    conn.execute_batch("PRAGMA incremental_vacuum(512)")?;
    Ok(Pruned {
        rows: rows as u64,
        more: more || (over && size_in_use(conn)? > max_bytes),
    })
}

/// Deletes at most `batch` of the captured bodies older than `cutoff_ms` (their rows stay);
/// answers how many went.
pub fn prune_bodies(
    conn: &mut Connection,
    cutoff_ms: i64,
    batch: usize,
) -> Result<u64, StoreError> {
    let batch = i64::try_from(batch.max(1)).unwrap_or(i64::MAX);
    let gone = conn.execute(
        "DELETE FROM bodies WHERE request_id IN
            (SELECT request_id FROM bodies WHERE started_ms < ?1 ORDER BY started_ms LIMIT ?2)",
        params![cutoff_ms, batch],
    )?;
    if gone > 0 {
        conn.execute_batch("PRAGMA incremental_vacuum(512)")?;
    }
    Ok(gone as u64)
}

/// A day's rollup, for the totals that outlive the rows.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct DayTotal {
    pub day: i64,
    pub model: String,
    pub provider: String,
    pub client_key: String,
    pub requests: i64,
    pub errors: i64,
    pub latency_us_sum: i64,
    pub latency_buckets: [i64; 10],
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cache_read_tokens: i64,
    pub cache_write_tokens: i64,
    pub reasoning_tokens: i64,
    /// Requests whose tokens were estimated here.
    pub estimated: i64,
    /// The cost of the priced requests.
    pub cost_usd: f64,
    /// Requests with tokens but no price: the cost above leaves them out.
    pub unpriced: i64,
}

/// The rollups from `since_day` (days since 1970-01-01) on.
pub fn daily(conn: &Connection, since_day: i64) -> Result<Vec<DayTotal>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT day, model, provider, client_key, requests, errors, latency_us_sum,
            h0, h1, h2, h3, h4, h5, h6, h7, h8, h9, input_tokens, output_tokens,
            cache_read_tokens, cache_write_tokens, reasoning_tokens, estimated, cost_usd, unpriced
         FROM daily WHERE day >= ?1 ORDER BY day, model, provider, client_key",
    )?;
    let rows = stmt
        .query_map([since_day], |r| {
            let mut latency_buckets = [0; 10];
            for (i, b) in latency_buckets.iter_mut().enumerate() {
                *b = r.get(7 + i)?;
            }
            Ok(DayTotal {
                day: r.get(0)?,
                model: r.get(1)?,
                provider: r.get(2)?,
                client_key: r.get(3)?,
                requests: r.get(4)?,
                errors: r.get(5)?,
                latency_us_sum: r.get(6)?,
                latency_buckets,
                input_tokens: r.get(17)?,
                output_tokens: r.get(18)?,
                cache_read_tokens: r.get(19)?,
                cache_write_tokens: r.get(20)?,
                reasoning_tokens: r.get(21)?,
                estimated: r.get(22)?,
                cost_usd: r.get(23)?,
                unpriced: r.get(24)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// Which requests `GET /api/logs` lists: newest first, before a cursor.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LogFilter {
    /// Only rows older than this id (the previous page's `next`).
    /// (`model` matches the name as asked or the unified model.)
    pub before: Option<i64>,
    pub since_ms: Option<i64>,
    pub until_ms: Option<i64>,
    pub model: Option<String>,
    pub provider: Option<String>,
    pub client_key: Option<String>,
    /// 2, 4 or 5: the status class.
    pub status_class: Option<u16>,
    pub stream: Option<bool>,
    pub error_code: Option<String>,
    /// Text in the error.
    pub text: Option<String>,
}

/// The largest page.
pub const MAX_PAGE: usize = 500;

const COLUMNS: &str = "id, started_ms, client_key, client_addr, user_agent, protocol, endpoint,
    model, provider, upstream_model, stream, status, error, error_code, attempts, latency_us,
    ttfb_us, bytes_in, bytes_out, unified_model, session, upstream_protocol, converted,
    input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, reasoning_tokens,
    tokens_estimated, cost_usd, price, ttfc_us, chosen_by, tier, tier_reason";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<LogRow> {
    Ok(LogRow {
        id: r.get(0)?,
        started_ms: r.get(1)?,
        client_key: r.get(2)?,
        client_addr: r.get(3)?,
        user_agent: r.get(4)?,
        protocol: r.get(5)?,
        endpoint: r.get(6)?,
        model: r.get(7)?,
        provider: r.get(8)?,
        upstream_model: r.get(9)?,
        stream: r.get(10)?,
        status: r.get(11)?,
        error: r.get(12)?,
        error_code: r.get(13)?,
        attempts: r.get(14)?,
        latency_us: r.get(15)?,
        ttfb_us: r.get(16)?,
        bytes_in: r.get(17)?,
        bytes_out: r.get(18)?,
        unified_model: r.get(19)?,
        session: r.get(20)?,
        upstream_protocol: r.get(21)?,
        converted: r.get(22)?,
        input_tokens: r.get(23)?,
        output_tokens: r.get(24)?,
        cache_read_tokens: r.get(25)?,
        cache_write_tokens: r.get(26)?,
        reasoning_tokens: r.get(27)?,
        tokens_estimated: r.get(28)?,
        cost_usd: r.get(29)?,
        price: r.get(30)?,
        ttfc_us: r.get(31)?,
        chosen_by: r.get(32)?,
        tier: r.get(33)?,
        tier_reason: r.get(34)?,
        bodies: None,
    })
}

/// A page of requests, newest first, and the cursor of the next page (None: this is the last).
pub fn list(
    conn: &Connection,
    filter: &LogFilter,
    limit: usize,
) -> Result<(Vec<LogRow>, Option<i64>), StoreError> {
    let limit = limit.clamp(1, MAX_PAGE);
    let mut clauses = Vec::new();
    let mut args: Vec<rusqlite::types::Value> = Vec::new();
    let mut add = |clause: &str, v: rusqlite::types::Value| {
        args.push(v);
        clauses.push(clause.replace('?', &format!("?{}", args.len())));
    };
    use rusqlite::types::Value::{Integer, Text};
    if let Some(b) = filter.before {
        add("id < ?", Integer(b));
    }
    if let Some(s) = filter.since_ms {
        add("started_ms >= ?", Integer(s));
    }
    if let Some(u) = filter.until_ms {
        add("started_ms < ?", Integer(u));
    }
    if let Some(m) = &filter.model {
        // The name as asked, or the unified model it resolved to.
        add("(model = ? OR unified_model = ?)", Text(m.clone()));
    }
    if let Some(p) = &filter.provider {
        add("provider = ?", Text(p.clone()));
    }
    if let Some(k) = &filter.client_key {
        add("client_key = ?", Text(k.clone()));
    }
    if let Some(c) = filter.status_class {
        add("status / 100 = ?", Integer(i64::from(c)));
    }
    if let Some(s) = filter.stream {
        add("stream = ?", Integer(i64::from(s)));
    }
    if let Some(c) = &filter.error_code {
        add("error_code = ?", Text(c.clone()));
    }
    if let Some(t) = &filter.text {
        // instr, not LIKE: the text is matched as given, no wildcard in it means anything.
        // Every `?` of a clause is its one value.
        add(
            "(instr(error, ?) > 0 OR id IN (SELECT request_id FROM bodies
                WHERE instr(request, ?) > 0 OR instr(response, ?) > 0))",
            Text(t.clone()),
        );
    }
    let filter_sql = if clauses.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", clauses.join(" AND "))
    };
    // One more than the page: whether there is a next page, without a count.
    let sql = format!(
        "SELECT {COLUMNS} FROM requests {filter_sql} ORDER BY id DESC LIMIT {}",
        limit + 1
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt
        .query_map(params_from_iter(args), row)?
        .collect::<Result<Vec<_>, _>>()?;
    let next = if rows.len() > limit {
        rows.truncate(limit);
        rows.last().map(|r| r.id)
    } else {
        None
    };
    Ok((rows, next))
}

/// One request, its attempts in order, and its bodies when they were captured.
pub fn get(conn: &Connection, id: i64) -> Result<Option<(LogRow, Vec<AttemptRow>)>, StoreError> {
    let Some((mut request, one)) = conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS}, one_latency_us, one_ttfb_us, one_breaker FROM requests WHERE id = ?1"
        ))?
        .query_row([id], |r| {
            let n = COLUMNS.split(',').count();
            let one = match r.get::<_, Option<i64>>(n)? {
                Some(latency) => Some((latency, r.get(n + 1)?, r.get(n + 2)?)),
                None => None,
            };
            Ok((row(r)?, one))
        })
        .optional()?
    else {
        return Ok(None);
    };
    if let Some((latency_us, ttfb_us, breaker)) = one {
        let attempt = AttemptRow {
            provider: request.provider.clone().unwrap_or_default(),
            model: request.upstream_model.clone().unwrap_or_default(),
            latency_us,
            status: request.status,
            error: request.error.clone(),
            error_code: request.error_code.clone(),
            ttfb_us,
            chosen_by: request.chosen_by.clone(),
            breaker,
        };
        request.bodies = bodies(conn, id)?;
        return Ok(Some((request, vec![attempt])));
    }
    let attempts = conn
        .prepare_cached(
            "SELECT provider, model, latency_us, status, error, error_code, ttfb_us, chosen_by,
                breaker FROM attempts WHERE request_id = ?1 ORDER BY seq",
        )?
        .query_map([id], |r| {
            Ok(AttemptRow {
                provider: r.get(0)?,
                model: r.get(1)?,
                latency_us: r.get(2)?,
                status: r.get(3)?,
                error: r.get(4)?,
                error_code: r.get(5)?,
                ttfb_us: r.get(6)?,
                chosen_by: r.get(7)?,
                breaker: r.get(8)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    request.bodies = bodies(conn, id)?;
    Ok(Some((request, attempts)))
}

fn bodies(conn: &Connection, id: i64) -> Result<Option<Box<Bodies>>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT request, response FROM bodies WHERE request_id = ?1")?
        .query_row([id], |r| {
            Ok(Bodies {
                request: r.get(0)?,
                response: r.get(1)?,
            })
        })
        .optional()?
        .map(Box::new))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_go_before_their_rows_and_the_text_filter_reads_them() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = open(&dir.path().join("logs.db")).unwrap();
        let rows: Vec<_> = (0..4)
            .map(|i| {
                let (mut r, a) = request(i * 1000, 200, "p");
                r.bodies = Some(Box::new(Bodies {
                    request: Some(format!("{{\"prompt\":\"question {i}\"}}")),
                    response: Some(format!("answer {i}")),
                }));
                (r, a)
            })
            .collect();
        write(&mut conn, &rows).unwrap();
        let text = |t: &str| LogFilter {
            text: Some(t.into()),
            ..Default::default()
        };
        assert_eq!(list(&conn, &text("question 2"), 50).unwrap().0.len(), 1);
        assert_eq!(list(&conn, &text("answer 3"), 50).unwrap().0.len(), 1);
        // Bodies older than the cutoff go, in batches; their rows stay.
        assert_eq!(prune_bodies(&mut conn, 1_000 + 2_500, 1).unwrap(), 1);
        assert_eq!(prune_bodies(&mut conn, 1_000 + 2_500, 10).unwrap(), 2);
        assert_eq!(prune_bodies(&mut conn, 1_000 + 2_500, 10).unwrap(), 0);
        let (all, _) = list(&conn, &LogFilter::default(), 50).unwrap();
        assert_eq!(all.len(), 4);
        let kept: Vec<bool> = all
            .iter()
            .map(|r| get(&conn, r.id).unwrap().unwrap().0.bodies.is_some())
            .collect();
        assert_eq!(kept, [true, false, false, false], "newest first");
        // A row pruned takes its body along.
        prune(&mut conn, i64::MAX, u64::MAX, 100).unwrap();
        let left: i64 = conn
            .query_row("SELECT count(*) FROM bodies", [], |r| r.get(0))
            .unwrap();
        assert_eq!(left, 0);
    }

    #[test]
    fn a_lone_attempt_the_row_describes_is_kept_in_the_row_and_read_back_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = open(&dir.path().join("logs.db")).unwrap();
        let lone = |status: u16, attempt_status: u16| {
            let row = LogRow {
                started_ms: 1_000,
                protocol: "openai".into(),
                endpoint: "chat/completions".into(),
                provider: Some("p".into()),
                upstream_model: Some("m-2025".into()),
                status,
                error: (status >= 400).then(|| "upstream said 502".into()),
                error_code: (status >= 400).then(|| "upstream_error".into()),
                chosen_by: Some("sticky".into()),
                attempts: 1,
                ..LogRow::default()
            };
            let attempt = AttemptRow {
                provider: "p".into(),
                model: "m-2025".into(),
                latency_us: 4_321,
                status: attempt_status,
                error: row.error.clone(),
                error_code: row.error_code.clone(),
                ttfb_us: Some(1_234),
                chosen_by: Some("sticky".into()),
                breaker: Some("half_open".into()),
            };
            (row, vec![attempt])
        };
        // Folded: a success, a failure the row reports as is; kept apart: an attempt whose
        // status the row does not share.
        let rows = vec![lone(200, 200), lone(502, 502), lone(502, 503)];
        let ids = write(&mut conn, &rows).unwrap();
        assert_eq!(count(&conn, "attempts"), 1);
        for (id, (row, attempts)) in ids.into_iter().zip(&rows) {
            let (read, read_attempts) = get(&conn, id).unwrap().unwrap();
            assert_eq!(read.status, row.status);
            assert_eq!(&read_attempts, attempts, "request {id}");
        }
    }

    fn request(i: i64, status: u16, provider: &str) -> (LogRow, Vec<AttemptRow>) {
        let attempt = |p: &str, error: Option<&str>| AttemptRow {
            provider: p.into(),
            model: "m".into(),
            latency_us: 10,
            status: if error.is_some() { 502 } else { 200 },
            error: error.map(str::to_owned),
            error_code: error.map(|_| "upstream_error".to_owned()),
            ..AttemptRow::default()
        };
        (
            LogRow {
                started_ms: 1_000 + i,
                protocol: "openai".into(),
                endpoint: "chat/completions".into(),
                model: Some("m".into()),
                provider: Some(provider.into()),
                status,
                error: (status >= 400).then(|| format!("upstream said {status}")),
                attempts: 2,
                latency_us: 100 + i,
                ..LogRow::default()
            },
            vec![attempt("down", Some("502")), attempt(provider, None)],
        )
    }

    #[test]
    fn pages_newest_first_with_a_cursor_and_filters() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = open(&dir.path().join("logs.db")).unwrap();
        let rows: Vec<_> = (0..7)
            .map(|i| {
                request(
                    i,
                    if i % 3 == 0 { 502 } else { 200 },
                    ["a", "b"][i as usize % 2],
                )
            })
            .collect();
        write(&mut conn, &rows).unwrap();

        let ids = |f: LogFilter, limit: usize| {
            let (page, next) = list(&conn, &f, limit).unwrap();
            (page.iter().map(|r| r.id).collect::<Vec<_>>(), next)
        };
        let before = |next| LogFilter {
            before: next,
            ..Default::default()
        };
        let (page, next) = ids(LogFilter::default(), 3);
        assert_eq!(page, [7, 6, 5]);
        let (page, next) = ids(before(next), 3);
        assert_eq!(page, [4, 3, 2]);
        assert_eq!(ids(before(next), 3), (vec![1], None));

        let errors = LogFilter {
            status_class: Some(5),
            ..Default::default()
        };
        assert_eq!(ids(errors, 50).0, [7, 4, 1]);
        let b_ok = LogFilter {
            provider: Some("b".into()),
            status_class: Some(2),
            ..Default::default()
        };
        assert_eq!(ids(b_ok, 50).0, [6, 2]);
        // A wildcard in the text is matched as itself.
        let text = |t: &str| LogFilter {
            text: Some(t.into()),
            ..Default::default()
        };
        assert_eq!(list(&conn, &text("said 502"), 50).unwrap().0.len(), 3);
        assert_eq!(list(&conn, &text("%"), 50).unwrap().0.len(), 0);

        let (one, attempts) = get(&conn, 4).unwrap().unwrap();
        assert_eq!((one.status, one.provider.as_deref()), (502, Some("b")));
        assert_eq!(attempts.len(), 2);
        assert_eq!(attempts[0].error.as_deref(), Some("502"));
        assert_eq!((attempts[0].status, attempts[1].status), (502, 200));
        assert_eq!(get(&conn, 99).unwrap(), None);
    }

    const DAY: i64 = 86_400_000;

    fn count(conn: &Connection, table: &str) -> i64 {
        conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
            .unwrap()
    }

    #[test]
    fn pruning_rolls_up_by_day_before_it_deletes_in_batches() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = open(&dir.path().join("logs.db")).unwrap();
        let auto_vacuum: i64 = conn
            .pragma_query_value(None, "auto_vacuum", |r| r.get(0))
            .unwrap();
        assert_eq!(auto_vacuum, 2, "incremental");
        // Days 10, 11 and 12, four requests each: one a 502, latencies 10 ms, 200 ms, 3 s, 60 s.
        let mut rows = Vec::new();
        for day in 10..13 {
            for (i, latency_us) in [10_000, 200_000, 3_000_000, 60_000_000]
                .into_iter()
                .enumerate()
            {
                let (mut r, attempts) = request(i as i64, if i == 0 { 502 } else { 200 }, "a");
                r.started_ms = day * DAY + i as i64;
                r.latency_us = latency_us;
                r.client_key = Some("k".into());
                rows.push((r, attempts));
            }
        }
        write(&mut conn, &rows).unwrap();

        // Everything before day 12 goes, three rows at a time.
        let mut calls = 0;
        let mut pruned = 0;
        loop {
            let p = prune(&mut conn, 12 * DAY, u64::MAX, 3).unwrap();
            assert!(p.rows <= 3);
            pruned += p.rows;
            calls += 1;
            if !p.more {
                break;
            }
        }
        assert_eq!((pruned, calls), (8, 3));
        assert_eq!(count(&conn, "requests"), 4, "day 12 stays");
        assert_eq!(
            count(&conn, "attempts"),
            8,
            "the attempts of the rows that went, gone too"
        );
        assert_eq!(
            prune(&mut conn, 12 * DAY, u64::MAX, 3).unwrap(),
            Pruned::default()
        );

        let days = daily(&conn, 0).unwrap();
        assert_eq!(days.len(), 2);
        for (d, day) in days.iter().zip([10, 11]) {
            assert_eq!(
                (d.day, d.model.as_str(), d.provider.as_str()),
                (day, "m", "a")
            );
            assert_eq!(d.client_key, "k");
            assert_eq!((d.requests, d.errors), (4, 1));
            assert_eq!(d.latency_us_sum, 10_000 + 200_000 + 3_000_000 + 60_000_000);
            assert_eq!(d.latency_buckets, [1, 0, 1, 0, 0, 0, 1, 0, 0, 1]);
        }
    }

    #[test]
    fn over_its_size_the_oldest_rows_go_first_and_the_file_shrinks() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("logs.db");
        let mut conn = open(&path).unwrap();
        let rows: Vec<_> = (0..4000)
            .map(|i| {
                let (mut r, a) = request(i, 200, "a");
                r.user_agent = Some("x".repeat(500));
                (r, a)
            })
            .collect();
        write(&mut conn, &rows).unwrap();
        let before = size_in_use(&conn).unwrap();
        let file_before = std::fs::metadata(&path).unwrap().len()
            + std::fs::metadata(dir.path().join("logs.db-wal")).map_or(0, |m| m.len());
        assert!(before > 2_000_000, "{before}");
        let max = before / 2;
        while prune(&mut conn, 0, max, 500).unwrap().more {}
        assert!(size_in_use(&conn).unwrap() <= max);
        let left = count(&conn, "requests");
        assert!(left > 0 && left < 4000, "{left}");
        let oldest: i64 = conn
            .query_row("SELECT min(id) FROM requests", [], |r| r.get(0))
            .unwrap();
        assert_eq!(oldest, 4000 - left + 1, "the oldest went first");
        let rolled: i64 = daily(&conn, 0).unwrap().iter().map(|d| d.requests).sum();
        assert_eq!(rolled + left, 4000, "every row pruned is in the rollup");
        conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
            .unwrap();
        let file_after = std::fs::metadata(&path).unwrap().len();
        assert!(file_after < file_before, "{file_after} < {file_before}");
    }
}
