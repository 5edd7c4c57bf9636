//! The request log read back at scale: a `logs.db` of one million requests over 30 days (made
//! here, through the writer's own batches), then `GET /api/stats` for 30 days and the first
//! page of `GET /api/logs`, as the store answers them. Issue 15 asks for at most 200 ms and
//! 50 ms. Prints the rows a second the writer sustained building it, and the bytes per row.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

use criterion::{Criterion, criterion_group, criterion_main};
use switchboard_gateway::logs_db::{self, AttemptRow, LogFilter, LogRow};
use switchboard_gateway::logs_stats::{self, Bucket, GroupBy, StatsQuery};

const ROWS: i64 = 1_000_000;
const DAYS: i64 = 30;
const START_MS: i64 = 1_796_083_200_000;
const BATCH: i64 = 256;

const MODELS: [&str; 8] = [
    "claude-opus-4-5",
    "claude-sonnet-4-5",
    "gpt-5",
    "gpt-4o-mini",
    "gemini-2.5-pro",
    "gemini-2.5-flash",
    "deepseek-chat",
    "text-embedding-3-small",
];
const PROVIDERS: [&str; 4] = ["relay-a", "relay-b", "anthropic", "openrouter"];
const KEYS: [&str; 5] = ["claude-code", "codex", "gemini-cli", "cursor", "nextchat"];

fn row(i: i64, rng: &mut fastrand::Rng) -> (LogRow, Vec<AttemptRow>) {
    let failed_over = rng.u8(..100) < 3;
    let failed = rng.u8(..100) < 2;
    let stream = rng.bool();
    let provider = PROVIDERS[rng.usize(..PROVIDERS.len())];
    let model = MODELS[rng.usize(..MODELS.len())];
    // Long-tailed latencies: most within seconds, a few minutes long.
    let latency_us = (rng.f64().powi(3) * 60_000_000.0) as i64 + 80_000;
    let attempt = |p: &str, ok: bool| AttemptRow {
        provider: p.into(),
        model: model.into(),
        latency_us,
        status: if ok { 200 } else { 502 },
        error: (!ok).then(|| "upstream said 502 bad gateway".into()),
        error_code: (!ok).then(|| "upstream_error".into()),
        ttfb_us: Some(90_000),
        chosen_by: Some("weighted".into()),
        breaker: Some("closed".into()),
    };
    let mut attempts = Vec::new();
    if failed_over {
        attempts.push(attempt("relay-b", false));
    }
    attempts.push(attempt(provider, !failed));
    let input = rng.i64(100..40_000);
    (
        LogRow {
            started_ms: START_MS + i * DAYS * 86_400_000 / ROWS,
            client_key: Some(KEYS[rng.usize(..KEYS.len())].into()),
            client_addr: Some("127.0.0.1".into()),
            user_agent: Some("claude-cli/2.1.3 (external, cli)".into()),
            protocol: "anthropic".into(),
            endpoint: "messages".into(),
            model: Some(model.into()),
            unified_model: Some(model.into()),
            session: Some("7f0c2a6e-5b1d-4f7e-9a51-2b8e3c1d9f00".into()),
            provider: Some(provider.into()),
            upstream_model: Some(format!("{model}-20251101")),
            upstream_protocol: Some("anthropic".into()),
            stream,
            status: if failed { 502 } else { 200 },
            error: failed.then(|| "upstream said 502 bad gateway".into()),
            error_code: failed.then(|| "upstream_error".into()),
            attempts: attempts.len() as u32,
            latency_us,
            ttfb_us: Some(latency_us / 4),
            ttfc_us: stream.then_some(latency_us / 3),
            chosen_by: Some("weighted".into()),
            bytes_in: 18_000,
            bytes_out: 9_000,
            input_tokens: Some(input),
            output_tokens: Some(rng.i64(10..4_000)),
            cache_read_tokens: Some(input / 2),
            cache_write_tokens: Some(0),
            reasoning_tokens: Some(0),
            cost_usd: Some(input as f64 * 3e-6),
            price: Some(r#"{"source":"list","list_provider":"anthropic","list_model":"claude-sonnet-4-5","input":3.0,"output":15.0,"cache_read":0.3,"cache_write":3.75}"#.into()),
            ..LogRow::default()
        },
        attempts,
    )
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("logs.db");
    let mut conn = logs_db::open(&path).unwrap();
    let mut rng = fastrand::Rng::with_seed(15);
    let started = Instant::now();
    for b in 0..ROWS / BATCH + 1 {
        let rows: Vec<_> = (b * BATCH..((b + 1) * BATCH).min(ROWS))
            .map(|i| row(i, &mut rng))
            .collect();
        logs_db::write(&mut conn, &rows).unwrap();
    }
    let took = started.elapsed();
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
        .unwrap();
    let bytes = std::fs::metadata(&path).unwrap().len();
    eprintln!(
        "log_stats: wrote {ROWS} requests over {DAYS} days in {:.1} s ({:.0} rows/s, the rollup included); logs.db {} MB, {} bytes per request (its attempts and indexes included)",
        took.as_secs_f64(),
        ROWS as f64 / took.as_secs_f64(),
        bytes >> 20,
        bytes / ROWS as u64
    );

    let end = START_MS + DAYS * 86_400_000;
    let month = |group_by| StatsQuery {
        since_ms: START_MS,
        until_ms: end,
        bucket: Bucket::Day,
        group_by,
    };
    let mut g = c.benchmark_group("log reads over 1M requests");
    g.sample_size(10);
    g.bench_function("stats, 30 days by day", |b| {
        b.iter(|| logs_stats::stats(&conn, &month(None)).unwrap());
    });
    g.bench_function("stats, 30 days by day and model", |b| {
        b.iter(|| logs_stats::stats(&conn, &month(Some(GroupBy::Model))).unwrap());
    });
    g.bench_function("stats, last hour by minute (detail rows)", |b| {
        let q = StatsQuery {
            since_ms: end - 3_600_000,
            until_ms: end,
            bucket: Bucket::Minute,
            group_by: None,
        };
        b.iter(|| logs_stats::stats(&conn, &q).unwrap());
    });
    g.bench_function("logs, first page of 50", |b| {
        b.iter(|| logs_db::list(&conn, &LogFilter::default(), 50).unwrap());
    });
    g.bench_function("logs, first page of 50, provider and 5xx", |b| {
        let f = LogFilter {
            provider: Some("relay-a".into()),
            status_class: Some(5),
            ..LogFilter::default()
        };
        b.iter(|| logs_db::list(&conn, &f, 50).unwrap());
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
