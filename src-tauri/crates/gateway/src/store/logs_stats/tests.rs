use super::*;
use crate::store::logs_db::{self, AttemptRow};

const HOUR: i64 = 3_600_000;
/// 2026-12-01T00:00:00Z.
const T0: i64 = 1_796_083_200_000;

fn req(at: i64, provider: &str, status: u16, attempts: u32, latency_ms: i64) -> LogRow {
    LogRow {
        started_ms: at,
        protocol: "openai".into(),
        endpoint: "chat/completions".into(),
        model: Some("asked".into()),
        unified_model: Some("m".into()),
        provider: Some(provider.into()),
        client_key: Some("k".into()),
        status,
        attempts,
        latency_us: latency_ms * 1000,
        ..LogRow::default()
    }
}

fn write(conn: &mut Connection, rows: Vec<LogRow>) {
    let rows: Vec<(LogRow, Vec<AttemptRow>)> = rows.into_iter().map(|r| (r, vec![])).collect();
    logs_db::write(conn, &rows).unwrap();
}

fn q(since_ms: i64, until_ms: i64, bucket: Bucket, group_by: Option<GroupBy>) -> StatsQuery {
    StatsQuery {
        since_ms,
        until_ms,
        bucket,
        group_by,
    }
}

#[test]
fn quantiles_are_within_a_bucket_of_the_truth() {
    let mut h = Histogram::default();
    for ms in 1..=1000 {
        h.add(ms * 1000);
    }
    for (q, truth) in [(0.5, 500.0), (0.95, 950.0), (0.99, 990.0)] {
        let got = h.quantile_ms(q).unwrap();
        assert!((got / truth - 1.0).abs() < 0.13, "p{q}: {got} vs {truth}");
    }
    assert_eq!(Histogram::default().quantile_ms(0.5), None);
    let mut tiny = Histogram::default();
    tiny.add(-5);
    tiny.add(i64::MAX);
    assert_eq!(tiny.count(), 2);
    assert_eq!(Histogram::from_bytes(&tiny.to_bytes()), tiny);
    // A stored blob cut short, or naming a bucket past the last, is read as far as it goes.
    assert_eq!(Histogram::from_bytes(&[200, 1, 0, 0, 0, 3]).count(), 0);
}

#[test]
fn the_writer_keeps_the_rollup_and_stats_read_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut conn = logs_db::open(&dir.path().join("logs.db")).unwrap();
    let mut saved = req(T0 + 10, "a", 200, 2, 100);
    saved.input_tokens = Some(10);
    saved.output_tokens = Some(5);
    saved.cost_usd = Some(0.25);
    saved.ttfc_us = Some(40_000);
    let mut unpriced = req(T0 + 20, "b", 200, 1, 200);
    unpriced.input_tokens = Some(1);
    unpriced.output_tokens = Some(1);
    // In two batches, so the second merges into the row the first wrote.
    write(&mut conn, vec![saved, unpriced]);
    write(
        &mut conn,
        vec![
            req(T0 + 30, "a", 502, 3, 300),
            req(T0 + HOUR + 5, "a", 200, 1, 400),
        ],
    );
    let s = stats(&conn, &q(T0, T0 + 2 * HOUR, Bucket::Hour, None)).unwrap();
    let t = &s.totals;
    assert_eq!((t.requests, t.errors, t.saved), (4, 1, 1));
    assert_eq!((t.attempts, t.failed_attempts), (7, 4));
    assert_eq!(t.success_rate, Some(0.75));
    assert_eq!(t.error_rate, Some(4.0 / 7.0));
    assert_eq!((t.tokens.input, t.tokens.output), (11, 6));
    assert_eq!((t.cost_usd, t.unpriced), (0.25, 1));
    assert!(
        t.ttfc_ms.p50.is_some_and(|p| (35.0..46.0).contains(&p)),
        "{t:?}"
    );
    assert_eq!(s.series.len(), 2);
    assert_eq!(s.series[0].t_ms, T0);
    assert_eq!(s.series[0].point.requests, 3);
    assert_eq!(s.series[1].point.requests, 1);

    // Minute buckets read the detail rows and agree.
    let m = stats(&conn, &q(T0, T0 + 2 * HOUR, Bucket::Minute, None)).unwrap();
    assert_eq!(m.totals, s.totals);
    assert_eq!(m.series.len(), 2, "{m:?}");

    // By provider, most requests first.
    let g = stats(
        &conn,
        &q(T0, T0 + 2 * HOUR, Bucket::Day, Some(GroupBy::Provider)),
    )
    .unwrap();
    let names: Vec<_> = g
        .groups
        .iter()
        .map(|g| (g.group.as_str(), g.point.requests))
        .collect();
    assert_eq!(names, [("a", 3), ("b", 1)]);
    assert_eq!(g.series.len(), 2, "one day, two providers");

    // The rollup outlives the detail rows.
    let pruned = logs_db::prune(&mut conn, T0 + 10 * HOUR, u64::MAX, 100).unwrap();
    assert_eq!(pruned.rows, 4);
    let after = stats(&conn, &q(T0, T0 + 2 * HOUR, Bucket::Hour, None)).unwrap();
    assert_eq!(after.totals, s.totals);
    // The first hour, and the day it starts, hold a row for each provider.
    assert_eq!(
        prune_rollup(&conn, T0 + (ROLLUP_KEEP_DAYS * 24 + 1) * HOUR).unwrap(),
        4
    );
}

#[test]
fn groups_past_the_bound_are_summed_as_other() {
    let dir = tempfile::tempdir().unwrap();
    let mut conn = logs_db::open(&dir.path().join("logs.db")).unwrap();
    let rows = (0..(MAX_GROUPS as i64 + 5))
        .map(|i| {
            let mut r = req(T0 + i, "a", 200, 1, 10);
            r.unified_model = Some(format!("model-{i:03}"));
            r
        })
        .collect();
    write(&mut conn, rows);
    let s = stats(&conn, &q(T0, T0 + HOUR, Bucket::Hour, Some(GroupBy::Model))).unwrap();
    assert_eq!(s.groups.len(), MAX_GROUPS + 1);
    let other = s.groups.last().unwrap();
    assert_eq!((other.group.as_str(), other.point.requests), ("(other)", 5));
    assert_eq!(s.series.len(), MAX_GROUPS + 1);
}

#[test]
fn a_log_from_before_the_rollup_is_summed_into_it_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("logs.db");
    {
        let mut conn = logs_db::open(&path).unwrap();
        write(
            &mut conn,
            vec![req(T0, "a", 200, 1, 10), req(T0 + 1, "a", 200, 1, 10)],
        );
        conn.execute("DELETE FROM rollup", []).unwrap();
    }
    let conn = logs_db::open(&path).unwrap();
    let s = stats(&conn, &q(T0, T0 + HOUR, Bucket::Hour, None)).unwrap();
    assert_eq!(s.totals.requests, 2);
    drop(conn);
    let conn = logs_db::open(&path).unwrap();
    let s = stats(&conn, &q(T0, T0 + HOUR, Bucket::Hour, None)).unwrap();
    assert_eq!(s.totals.requests, 2, "not twice");
}
