//! `GET /api/stats`: the query checked (every parameter named in its error), then summed by the
//! store off the async workers.

use std::collections::HashMap;

use switchboard_api::stats::Stats;

use super::ServiceError;
use crate::engine::Engine;
use crate::store::logs_stats::{
    self, Bucket, GroupBy, MAX_MINUTE_WINDOW_MS, ROLLUP_KEEP_DAYS, StatsQuery,
};

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;

fn query(q: &HashMap<String, String>, now_ms: i64) -> Result<StatsQuery, ServiceError> {
    let bad = |key: &str, what: &str| ServiceError::Invalid(format!("{key}: {what}"));
    let mut window = DAY_MS;
    let (mut since, mut until) = (None, None);
    let mut bucket = None;
    let mut group_by = None;
    for (key, v) in q {
        match key.as_str() {
            "window" => {
                window = match v.as_str() {
                    "1h" => HOUR_MS,
                    "24h" => DAY_MS,
                    "7d" => 7 * DAY_MS,
                    "30d" => 30 * DAY_MS,
                    _ => return Err(bad(key, "must be 1h, 24h, 7d or 30d")),
                }
            }
            "since_ms" | "until_ms" => {
                let t = v
                    .parse::<i64>()
                    .ok()
                    .filter(|t| *t >= 0)
                    .ok_or_else(|| bad(key, "must be unix milliseconds"))?;
                if key == "since_ms" {
                    since = Some(t);
                } else {
                    until = Some(t);
                }
            }
            "bucket" => {
                bucket = Some(match v.as_str() {
                    "minute" => Bucket::Minute,
                    "hour" => Bucket::Hour,
                    "day" => Bucket::Day,
                    _ => return Err(bad(key, "must be minute, hour or day")),
                })
            }
            "group_by" => {
                group_by = Some(match v.as_str() {
                    "model" => GroupBy::Model,
                    "provider" => GroupBy::Provider,
                    "client_key" => GroupBy::ClientKey,
                    _ => return Err(bad(key, "must be model, provider or client_key")),
                })
            }
            _ => {
                return Err(bad(
                    key,
                    "unknown parameter (expected window, since_ms, until_ms, bucket or group_by)",
                ));
            }
        }
    }
    let until_ms = until.unwrap_or(now_ms);
    let since_ms = since.unwrap_or(until_ms.saturating_sub(window));
    if since_ms >= until_ms {
        return Err(bad("since_ms", "must be before until_ms"));
    }
    if until_ms - since_ms > ROLLUP_KEEP_DAYS * DAY_MS {
        return Err(bad(
            "since_ms",
            &format!("the window is at most {ROLLUP_KEEP_DAYS} days (what the rollup keeps)"),
        ));
    }
    let span = until_ms - since_ms;
    let bucket = bucket.unwrap_or(if span <= 2 * HOUR_MS {
        Bucket::Minute
    } else if span <= 7 * DAY_MS {
        Bucket::Hour
    } else {
        Bucket::Day
    });
    if bucket == Bucket::Minute && span > MAX_MINUTE_WINDOW_MS {
        return Err(bad(
            "bucket",
            "minute buckets are for windows of at most 48 hours",
        ));
    }
    Ok(StatsQuery {
        since_ms,
        until_ms,
        bucket,
        group_by,
    })
}

fn now_ms() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis(),
    )
    .unwrap_or(i64::MAX)
}

pub async fn stats(engine: &Engine, q: &HashMap<String, String>) -> Result<Stats, ServiceError> {
    let q = query(q, now_ms())?;
    Ok(engine.logs.call(move |c| logs_stats::stats(c, &q)).await?)
}

/// Everything since `since_ms` (the tray's "today"), from the hourly rollup: the start is
/// widened to its whole hour, so a time zone half an hour off UTC counts 30 minutes more.
pub async fn totals_since(
    engine: &Engine,
    since_ms: i64,
) -> Result<switchboard_api::stats::Point, ServiceError> {
    let q = StatsQuery {
        since_ms,
        until_ms: now_ms().saturating_add(HOUR_MS),
        bucket: Bucket::Hour,
        group_by: None,
    };
    Ok(engine
        .logs
        .call(move |c| logs_stats::stats(c, &q))
        .await?
        .totals)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> Result<StatsQuery, ServiceError> {
        let map = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        query(&map, 1_800_000_000_000)
    }

    fn message(r: Result<StatsQuery, ServiceError>) -> String {
        match r {
            Err(e) => e.to_string(),
            Ok(q) => panic!("accepted: {q:?}"),
        }
    }

    #[test]
    fn windows_pick_their_buckets() {
        assert_eq!(q(&[("window", "1h")]).unwrap().bucket, Bucket::Minute);
        assert_eq!(q(&[]).unwrap().bucket, Bucket::Hour);
        assert_eq!(q(&[("window", "7d")]).unwrap().bucket, Bucket::Hour);
        let month = q(&[("window", "30d"), ("group_by", "provider")]).unwrap();
        assert_eq!(month.bucket, Bucket::Day);
        assert_eq!(month.group_by, Some(GroupBy::Provider));
        assert_eq!(month.until_ms - month.since_ms, 30 * DAY_MS);
    }

    #[test]
    fn each_bad_parameter_is_named() {
        assert!(message(q(&[("window", "2y")])).starts_with("window:"));
        assert!(message(q(&[("bucket", "week")])).starts_with("bucket:"));
        assert!(message(q(&[("window", "30d"), ("bucket", "minute")])).starts_with("bucket:"));
        assert!(message(q(&[("group_by", "colour")])).starts_with("group_by:"));
        assert!(message(q(&[("since_ms", "-1")])).starts_with("since_ms:"));
        assert!(message(q(&[("since_ms", "5"), ("until_ms", "5")])).starts_with("since_ms:"));
        assert!(message(q(&[("since_ms", "0")])).contains("at most"));
        assert!(message(q(&[("colour", "red")])).starts_with("colour:"));
    }
}
