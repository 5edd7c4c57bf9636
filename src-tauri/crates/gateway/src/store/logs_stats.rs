//! The request log summed: a rollup by hour and by day that the writer keeps with every batch
//! (so a month's stats read a few thousand rows, not a million, and outlive the detail rows'
//! retention), and `GET /api/stats` over it (or over the detail rows, for minute buckets).

use std::collections::{BTreeMap, HashMap};

use rusqlite::{Connection, params};
use switchboard_api::stats::{
    GroupTotal, Percentiles, Point, SeriesPoint, Stats, TierTotal, TokenTotals,
};

use super::StoreError;
use super::logs_db::LogRow;

/// Latency buckets: 0 holds under 1 ms; bucket i ≥ 1 holds [1 ms · 1.25^(i-1), 1 ms · 1.25^i);
/// the last holds everything from about 17 minutes on.
pub const BUCKETS: usize = 64;
const GROWTH: f64 = 1.25;
const FIRST_EDGE_US: f64 = 1000.0;

/// How long the rollup is kept.
pub const ROLLUP_KEEP_DAYS: i64 = 400;
/// The longest window minute buckets are counted for (they read the detail rows).
pub const MAX_MINUTE_WINDOW_MS: i64 = 48 * 3_600_000;

/// Counts per latency bucket.
#[derive(Clone, Debug, PartialEq)]
pub struct Histogram([u64; BUCKETS]);

impl Default for Histogram {
    fn default() -> Self {
        Histogram([0; BUCKETS])
    }
}

impl Histogram {
    fn bucket(us: i64) -> usize {
        let us = us.max(0) as f64;
        if us < FIRST_EDGE_US {
            return 0;
        }
        let i = ((us / FIRST_EDGE_US).ln() / GROWTH.ln()).floor() as usize + 1;
        i.min(BUCKETS - 1)
    }

    pub fn add(&mut self, us: i64) {
        self.0[Self::bucket(us)] += 1;
    }

    pub fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.0.iter_mut().zip(other.0.iter()) {
            *a += b;
        }
    }

    pub fn count(&self) -> u64 {
        self.0.iter().sum()
    }

    /// The q-quantile in milliseconds: its bucket's geometric middle (None: no values).
    pub fn quantile_ms(&self, q: f64) -> Option<f64> {
        let total = self.count();
        if total == 0 {
            return None;
        }
        let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
        let mut seen = 0;
        let i = self.0.iter().position(|&n| {
            seen += n;
            seen >= rank
        })?;
        let us = if i == 0 {
            FIRST_EDGE_US / 2.0
        } else {
            FIRST_EDGE_US * GROWTH.powf(i as f64 - 0.5)
        };
        Some((us / 1000.0 * 100.0).round() / 100.0)
    }

    fn percentiles(&self) -> Percentiles {
        Percentiles {
            p50: self.quantile_ms(0.50),
            p95: self.quantile_ms(0.95),
            p99: self.quantile_ms(0.99),
        }
    }

    /// Sparse: (bucket, count) pairs as a byte and a little-endian u32 each; a count past
    /// u32 is split over several pairs.
    fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for (i, &n) in self.0.iter().enumerate() {
            let mut left = n;
            while left > 0 {
                let part = left.min(u64::from(u32::MAX));
                out.push(i as u8);
                out.extend_from_slice(&(part as u32).to_le_bytes());
                left -= part;
            }
        }
        out
    }

    #[cfg(test)]
    fn from_bytes(b: &[u8]) -> Histogram {
        let mut h = Histogram::default();
        h.merge_bytes(b);
        h
    }

    /// Adds a stored histogram (a blob cut short, or naming a bucket past the last, counts
    /// as far as it goes).
    fn merge_bytes(&mut self, b: &[u8]) {
        for pair in b.chunks_exact(5) {
            let i = usize::from(pair[0]);
            let n = u32::from_le_bytes([pair[1], pair[2], pair[3], pair[4]]);
            if let Some(slot) = self.0.get_mut(i) {
                *slot += u64::from(n);
            }
        }
    }
}

/// What a set of requests did, summed.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Agg {
    pub requests: u64,
    pub errors: u64,
    pub saved: u64,
    pub attempts: u64,
    pub failed_attempts: u64,
    pub tokens: [u64; 5],
    pub estimated: u64,
    pub cost_usd: f64,
    pub unpriced: u64,
    pub latency: Histogram,
    pub ttfc: Histogram,
}

/// One request as the sums see it.
struct Sample {
    failed: bool,
    attempts: u64,
    latency_us: i64,
    ttfc_us: Option<i64>,
    tokens: Option<[u64; 5]>,
    estimated: bool,
    cost_usd: Option<f64>,
}

impl Sample {
    fn of(r: &LogRow) -> Sample {
        let n = |v: Option<i64>| v.map_or(0, |v| v.max(0) as u64);
        Sample {
            failed: r.status >= 400 || r.error.is_some(),
            attempts: u64::from(r.attempts),
            latency_us: r.latency_us,
            ttfc_us: r.ttfc_us,
            tokens: r.input_tokens.is_some().then(|| {
                [
                    n(r.input_tokens),
                    n(r.output_tokens),
                    n(r.cache_read_tokens),
                    n(r.cache_write_tokens),
                    n(r.reasoning_tokens),
                ]
            }),
            estimated: r.tokens_estimated,
            cost_usd: r.cost_usd,
        }
    }
}

impl Agg {
    fn add(&mut self, s: &Sample) {
        self.requests += 1;
        self.errors += u64::from(s.failed);
        self.attempts += s.attempts;
        // A request that succeeded did so on its last attempt; every other attempt failed.
        let failed_attempts = s.attempts.saturating_sub(u64::from(!s.failed));
        self.failed_attempts += failed_attempts;
        self.saved += u64::from(!s.failed && failed_attempts > 0);
        if let Some(t) = s.tokens {
            for (sum, v) in self.tokens.iter_mut().zip(t) {
                *sum += v;
            }
            self.estimated += u64::from(s.estimated);
            match s.cost_usd {
                Some(c) if c.is_finite() => self.cost_usd += c,
                _ => self.unpriced += 1,
            }
        }
        self.latency.add(s.latency_us);
        if let Some(t) = s.ttfc_us {
            self.ttfc.add(t);
        }
    }

    pub fn merge(&mut self, o: &Agg) {
        self.requests += o.requests;
        self.errors += o.errors;
        self.saved += o.saved;
        self.attempts += o.attempts;
        self.failed_attempts += o.failed_attempts;
        for (a, b) in self.tokens.iter_mut().zip(o.tokens) {
            *a += b;
        }
        self.estimated += o.estimated;
        self.cost_usd += o.cost_usd;
        self.unpriced += o.unpriced;
        self.latency.merge(&o.latency);
        self.ttfc.merge(&o.ttfc);
    }

    pub fn point(&self) -> Point {
        let ratio = |a: u64, b: u64| (b > 0).then(|| a as f64 / b as f64);
        let [input, output, cache_read, cache_write, reasoning] = self.tokens;
        Point {
            requests: self.requests,
            errors: self.errors,
            saved: self.saved,
            attempts: self.attempts,
            failed_attempts: self.failed_attempts,
            success_rate: ratio(
                self.requests - self.errors.min(self.requests),
                self.requests,
            ),
            error_rate: ratio(self.failed_attempts, self.attempts),
            latency_ms: self.latency.percentiles(),
            ttfc_ms: self.ttfc.percentiles(),
            tokens: TokenTotals {
                input,
                output,
                cache_read,
                cache_write,
                reasoning,
                estimated: self.estimated,
            },
            cost_usd: (self.cost_usd * 1e9).round() / 1e9,
            unpriced: self.unpriced,
        }
    }
}

/// The rollup's key: span (1 or 24 hours), its start in hours since 1970, unified model (or
/// the name asked), provider, client key; '' for none. Borrowed from the batch's rows: the
/// writer sums every row twice (hour and day), and owned keys were three allocations each.
type Key<'a> = (i64, i64, &'a str, &'a str, &'a str);

/// Adds a batch of rows to the rollup, in the writer's transaction: summed here first, then
/// one read and one write per (span, start, model, provider, key) the batch touched.
pub(super) fn add_to_rollup<'a>(
    tx: &Connection,
    rows: impl Iterator<Item = &'a LogRow>,
) -> Result<(), StoreError> {
    let mut sums: HashMap<Key<'a>, Agg> = HashMap::new();
    for r in rows {
        let s = |v: &'a Option<String>| v.as_deref().unwrap_or_default();
        let hour = r.started_ms.div_euclid(3_600_000);
        let model = s(if r.unified_model.is_some() {
            &r.unified_model
        } else {
            &r.model
        });
        let sample = Sample::of(r);
        for (span, start) in [(1, hour), (24, hour - hour.rem_euclid(24))] {
            let key = (span, start, model, s(&r.provider), s(&r.client_key));
            sums.entry(key).or_default().add(&sample);
        }
    }
    let mut read = tx.prepare_cached(&format!(
        "SELECT {AGG_COLUMNS} FROM rollup WHERE span_h = ?1 AND t_h = ?2 AND model = ?3
            AND provider = ?4 AND client_key = ?5"
    ))?;
    let mut write = tx.prepare_cached(
        "INSERT OR REPLACE INTO rollup (span_h, t_h, model, provider, client_key, requests,
            errors, saved, attempts, failed_attempts, input_tokens, output_tokens,
            cache_read_tokens, cache_write_tokens, reasoning_tokens, estimated, cost_usd,
            unpriced, latency, ttfc)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17,
            ?18, ?19, ?20)",
    )?;
    for (key, mut agg) in sums {
        let (span, start, model, provider, client_key) = &key;
        let stored = read.query_row(params![span, start, model, provider, client_key], |r| {
            let mut old = Agg::default();
            add_stored(&mut old, r, 0)?;
            Ok(old)
        });
        match stored {
            Ok(old) => agg.merge(&old),
            Err(rusqlite::Error::QueryReturnedNoRows) => {}
            Err(e) => return Err(e.into()),
        }
        let n = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        write.execute(params![
            span,
            start,
            model,
            provider,
            client_key,
            n(agg.requests),
            n(agg.errors),
            n(agg.saved),
            n(agg.attempts),
            n(agg.failed_attempts),
            n(agg.tokens[0]),
            n(agg.tokens[1]),
            n(agg.tokens[2]),
            n(agg.tokens[3]),
            n(agg.tokens[4]),
            n(agg.estimated),
            agg.cost_usd,
            n(agg.unpriced),
            agg.latency.to_bytes(),
            agg.ttfc.to_bytes(),
        ])?;
    }
    Ok(())
}

const AGG_COLUMNS: &str = "requests, errors, saved, attempts, failed_attempts, input_tokens,
    output_tokens, cache_read_tokens, cache_write_tokens, reasoning_tokens, estimated, cost_usd,
    unpriced, latency, ttfc";

/// Adds a stored rollup row's sums (its columns from `at` on, as [`AGG_COLUMNS`]) to `agg`,
/// without a histogram of its own in between: a month of stats reads many such rows.
fn add_stored(agg: &mut Agg, r: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<()> {
    let n = |i: usize| -> rusqlite::Result<u64> { Ok(r.get::<_, i64>(at + i)?.max(0) as u64) };
    agg.requests += n(0)?;
    agg.errors += n(1)?;
    agg.saved += n(2)?;
    agg.attempts += n(3)?;
    agg.failed_attempts += n(4)?;
    for (k, sum) in agg.tokens.iter_mut().enumerate() {
        *sum += n(5 + k)?;
    }
    agg.estimated += n(10)?;
    agg.cost_usd += r.get::<_, f64>(at + 11)?;
    agg.unpriced += n(12)?;
    let blob = |i: usize| r.get_ref(at + i).map(|v| v.as_blob().unwrap_or(&[]));
    agg.latency.merge_bytes(blob(13)?);
    agg.ttfc.merge_bytes(blob(14)?);
    Ok(())
}

/// Rows the backfill reads at a time.
const BACKFILL_BATCH: i64 = 10_000;

/// A log from before the rollup existed: its detail rows are summed into it once.
pub(super) fn backfill(conn: &mut Connection) -> Result<u64, StoreError> {
    let needed: bool = conn.query_row(
        "SELECT NOT EXISTS (SELECT 1 FROM rollup) AND EXISTS (SELECT 1 FROM requests)",
        [],
        |r| r.get(0),
    )?;
    if !needed {
        return Ok(0);
    }
    let mut after = i64::MIN;
    let mut total = 0;
    loop {
        let tx = conn.transaction()?;
        let rows = super::logs_db::rows_after(&tx, after, BACKFILL_BATCH)?;
        let Some(last) = rows.last().map(|r| r.id) else {
            tx.commit()?;
            return Ok(total);
        };
        add_to_rollup(&tx, rows.iter())?;
        tx.commit()?;
        total += rows.len() as u64;
        after = last;
    }
}

/// Drops the rollup's hours and days that began [`ROLLUP_KEEP_DAYS`] or more before `now_ms`.
pub fn prune_rollup(conn: &Connection, now_ms: i64) -> Result<usize, StoreError> {
    let cutoff = now_ms.div_euclid(3_600_000) - ROLLUP_KEEP_DAYS * 24;
    Ok(conn.execute("DELETE FROM rollup WHERE t_h < ?1", [cutoff])?)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bucket {
    Minute,
    Hour,
    Day,
}

impl Bucket {
    pub fn ms(self) -> i64 {
        match self {
            Bucket::Minute => 60_000,
            Bucket::Hour => 3_600_000,
            Bucket::Day => 86_400_000,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Bucket::Minute => "minute",
            Bucket::Hour => "hour",
            Bucket::Day => "day",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GroupBy {
    Model,
    Provider,
    ClientKey,
}

impl GroupBy {
    pub fn name(self) -> &'static str {
        match self {
            GroupBy::Model => "model",
            GroupBy::Provider => "provider",
            GroupBy::ClientKey => "client_key",
        }
    }
}

/// The most groups a stats answer names; the rest are summed as `(other)`.
pub const MAX_GROUPS: usize = 50;

#[derive(Clone, Debug)]
pub struct StatsQuery {
    pub since_ms: i64,
    pub until_ms: i64,
    pub bucket: Bucket,
    pub group_by: Option<GroupBy>,
}

/// Sums over `[since_ms, until_ms)`: minute buckets from the detail rows, hour and day
/// buckets from the rollup (whose spans are whole: the window is widened to them).
pub fn stats(conn: &Connection, q: &StatsQuery) -> Result<Stats, StoreError> {
    let bucket_ms = q.bucket.ms();
    let pick = |model: String, provider: String, client_key: String| match q.group_by {
        None => None,
        Some(GroupBy::Model) => Some(model),
        Some(GroupBy::Provider) => Some(provider),
        Some(GroupBy::ClientKey) => Some(client_key),
    };
    let mut cells: BTreeMap<(i64, Option<String>), Agg> = BTreeMap::new();
    let (since_ms, until_ms) = if q.bucket == Bucket::Minute {
        let mut stmt = conn.prepare_cached(
            "SELECT started_ms, coalesce(unified_model, model, ''), coalesce(provider, ''),
                coalesce(client_key, ''), status, error IS NOT NULL, attempts, latency_us,
                ttfc_us, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens,
                reasoning_tokens, tokens_estimated, cost_usd
             FROM requests WHERE started_ms >= ?1 AND started_ms < ?2",
        )?;
        let mut rows = stmt.query(params![q.since_ms, q.until_ms])?;
        while let Some(r) = rows.next()? {
            let at: i64 = r.get(0)?;
            let group = pick(r.get(1)?, r.get(2)?, r.get(3)?);
            let status: u16 = r.get(4)?;
            let errored: bool = r.get(5)?;
            let n = |v: Option<i64>| v.map_or(0, |v| v.max(0) as u64);
            let input: Option<i64> = r.get(9)?;
            let sample = Sample {
                failed: status >= 400 || errored,
                attempts: u64::from(r.get::<_, u32>(6)?),
                latency_us: r.get(7)?,
                ttfc_us: r.get(8)?,
                tokens: match input {
                    Some(i) => Some([
                        n(Some(i)),
                        n(r.get(10)?),
                        n(r.get(11)?),
                        n(r.get(12)?),
                        n(r.get(13)?),
                    ]),
                    None => None,
                },
                estimated: r.get(14)?,
                cost_usd: r.get(15)?,
            };
            let t = at - at.rem_euclid(bucket_ms);
            cells.entry((t, group)).or_default().add(&sample);
        }
        (q.since_ms, q.until_ms)
    } else {
        // Whole hours, or whole days for day buckets: the rollup's own spans.
        let span_h = bucket_ms / 3_600_000;
        let first = q.since_ms.div_euclid(bucket_ms) * span_h;
        let end = (q.until_ms + bucket_ms - 1).div_euclid(bucket_ms) * span_h;
        // Only the grouped column is read: a month is many rows.
        let group_col = match q.group_by {
            None => "''",
            Some(GroupBy::Model) => "model",
            Some(GroupBy::Provider) => "provider",
            Some(GroupBy::ClientKey) => "client_key",
        };
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT t_h, {group_col}, {AGG_COLUMNS} FROM rollup
             WHERE span_h = ?1 AND t_h >= ?2 AND t_h < ?3 ORDER BY t_h, 2"
        ))?;
        let mut rows = stmt.query(params![span_h, first, end])?;
        // Rows come in (start, group) order: summed into the current cell, then moved on.
        let mut current: Option<((i64, Option<String>), Agg)> = None;
        while let Some(r) = rows.next()? {
            let t = r.get::<_, i64>(0)? * 3_600_000;
            let group = match q.group_by {
                None => None,
                Some(_) => Some(r.get::<_, String>(1)?),
            };
            let same = current
                .as_ref()
                .is_some_and(|((ct, cg), _)| *ct == t && *cg == group);
            if !same {
                if let Some((k, agg)) = current.take() {
                    cells.entry(k).or_default().merge(&agg);
                }
                current = Some(((t, group), Agg::default()));
            }
            if let Some((_, agg)) = current.as_mut() {
                add_stored(agg, r, 2)?;
            }
        }
        if let Some((k, agg)) = current {
            cells.entry(k).or_default().merge(&agg);
        }
        (first * 3_600_000, end * 3_600_000)
    };

    let mut totals = Agg::default();
    let mut groups: HashMap<String, Agg> = HashMap::new();
    for ((_, g), agg) in &cells {
        totals.merge(agg);
        if let Some(g) = g {
            groups.entry(g.clone()).or_default().merge(agg);
        }
    }
    let mut groups: Vec<(String, Agg)> = groups.into_iter().collect();
    groups.sort_by(|a, b| b.1.requests.cmp(&a.1.requests).then(a.0.cmp(&b.0)));
    // A client can name many models: past the bound, the smallest groups are one.
    let other = "(other)".to_owned();
    let kept: std::collections::HashSet<String> = groups
        .iter()
        .take(MAX_GROUPS)
        .map(|(g, _)| g.clone())
        .collect();
    if groups.len() > MAX_GROUPS {
        let mut rest = Agg::default();
        for (_, a) in groups.drain(MAX_GROUPS..) {
            rest.merge(&a);
        }
        groups.push((other.clone(), rest));
        let mut folded: BTreeMap<(i64, Option<String>), Agg> = BTreeMap::new();
        for ((t, g), agg) in cells {
            let g = g.map(|g| if kept.contains(&g) { g } else { other.clone() });
            folded.entry((t, g)).or_default().merge(&agg);
        }
        cells = folded;
    }
    Ok(Stats {
        since_ms,
        until_ms,
        bucket: q.bucket.name().to_owned(),
        bucket_ms,
        group_by: q.group_by.map(|g| g.name().to_owned()),
        totals: totals.point(),
        series: cells
            .into_iter()
            .map(|((t_ms, group), agg)| SeriesPoint {
                t_ms,
                group,
                point: agg.point(),
            })
            .collect(),
        groups: groups
            .into_iter()
            .map(|(group, agg)| GroupTotal {
                group,
                point: agg.point(),
            })
            .collect(),
        tiers: tiers(conn, since_ms, until_ms)?,
    })
}

/// Tiered models' requests by tier over a window, most first.
fn tiers(conn: &Connection, since_ms: i64, until_ms: i64) -> Result<Vec<TierTotal>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT coalesce(model, ''), tier, count(*), coalesce(sum(cost_usd), 0)
         FROM requests WHERE started_ms >= ?1 AND started_ms < ?2 AND tier IS NOT NULL
         GROUP BY 1, 2 ORDER BY 3 DESC, 1, 2 LIMIT ?3",
    )?;
    let rows = stmt.query_map(params![since_ms, until_ms, MAX_GROUPS as i64], |r| {
        Ok(TierTotal {
            model: r.get(0)?,
            tier: r.get(1)?,
            requests: r.get::<_, i64>(2)?.max(0) as u64,
            cost_usd: r.get(3)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

#[cfg(test)]
mod tests;
