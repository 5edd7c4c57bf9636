//! The request log, read: `GET /api/logs` (a page, newest first, with filters) and
//! `GET /api/logs/{id}` (one request and its attempts).

use std::collections::HashMap;

use serde_json::{Value, json};

use super::ServiceError;
use crate::engine::Engine;
use crate::store::logs_db::{self, LogFilter, MAX_PAGE};

const DEFAULT_PAGE: usize = 50;

/// The query's filters, each checked: an unknown parameter or a malformed value is an error
/// that names it, never a filter silently left out.
fn filter(query: &HashMap<String, String>) -> Result<(LogFilter, usize), ServiceError> {
    let bad = |key: &str, what: &str| ServiceError::Invalid(format!("{key}: {what}"));
    let int = |key: &str, v: &str| {
        v.parse::<i64>()
            .ok()
            .filter(|n| *n >= 0)
            .ok_or_else(|| bad(key, "must be a whole number"))
    };
    let mut f = LogFilter::default();
    let mut limit = DEFAULT_PAGE;
    for (key, v) in query {
        let text = || Some(v.clone());
        match key.as_str() {
            "limit" => {
                limit = v
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=MAX_PAGE).contains(n))
                    .ok_or_else(|| bad(key, &format!("must be between 1 and {MAX_PAGE}")))?;
            }
            "before" => f.before = Some(int(key, v)?),
            "since_ms" => f.since_ms = Some(int(key, v)?),
            "until_ms" => f.until_ms = Some(int(key, v)?),
            "model" => f.model = text(),
            "provider" => f.provider = text(),
            "client_key" => f.client_key = text(),
            "text" => f.text = text(),
            "error_code" => f.error_code = text(),
            "status" => {
                f.status_class = Some(match v.as_str() {
                    "2xx" => 2,
                    "4xx" => 4,
                    "5xx" => 5,
                    _ => return Err(bad(key, "must be 2xx, 4xx or 5xx")),
                })
            }
            "stream" => {
                f.stream = Some(match v.as_str() {
                    "true" => true,
                    "false" => false,
                    _ => return Err(bad(key, "must be true or false")),
                })
            }
            _ => {
                return Err(bad(
                    key,
                    "unknown filter (expected limit, before, since_ms, until_ms, model, provider, \
                     client_key, status, stream, error_code or text)",
                ));
            }
        }
    }
    Ok((f, limit))
}

/// `{"items": [...], "next": id | null, "dropped": n}`: pass `next` as `before` for the
/// following page; `dropped` counts the records lost since start because the writer was behind.
pub async fn logs(engine: &Engine, query: &HashMap<String, String>) -> Result<Value, ServiceError> {
    let (f, limit) = filter(query)?;
    let (items, next) = engine
        .logs
        .call(move |c| logs_db::list(c, &f, limit))
        .await?;
    Ok(json!({ "items": items, "next": next, "dropped": engine.log.dropped() }))
}

/// The live tail's filters: those of `GET /api/logs` (a page's `limit` means nothing here).
pub fn live_filter(query: &HashMap<String, String>) -> Result<LogFilter, ServiceError> {
    Ok(filter(query)?.0)
}

/// Whether a row as written passes the filters, as `GET /api/logs` would select it (`text`:
/// in the error; the tail carries no bodies).
pub fn passes(f: &LogFilter, r: &logs_db::LogRow) -> bool {
    let same = |want: &Option<String>, have: &Option<String>| {
        want.as_ref()
            .is_none_or(|w| have.as_deref() == Some(w.as_str()))
    };
    f.before.is_none_or(|b| r.id < b)
        && f.since_ms.is_none_or(|s| r.started_ms >= s)
        && f.until_ms.is_none_or(|u| r.started_ms < u)
        && f.model.as_ref().is_none_or(|m| {
            r.model.as_deref() == Some(m.as_str()) || r.unified_model.as_deref() == Some(m.as_str())
        })
        && same(&f.provider, &r.provider)
        && same(&f.client_key, &r.client_key)
        && same(&f.error_code, &r.error_code)
        && f.status_class.is_none_or(|c| r.status / 100 == c)
        && f.stream.is_none_or(|s| r.stream == s)
        && f.text
            .as_ref()
            .is_none_or(|t| r.error.as_deref().is_some_and(|e| e.contains(t.as_str())))
}

/// The daily rollups (what outlives retention), from `since_day` (days since 1970-01-01;
/// default: the last 400 days).
pub async fn daily(
    engine: &Engine,
    query: &HashMap<String, String>,
) -> Result<Value, ServiceError> {
    let today = i64::try_from(crate::engine::unix_seconds(std::time::Instant::now()) / 86_400)
        .unwrap_or(i64::MAX);
    let mut since = today.saturating_sub(400);
    for (key, v) in query {
        match key.as_str() {
            "since_day" => {
                since = v.parse::<i64>().map_err(|_| {
                    ServiceError::Invalid("since_day: must be a whole number of days".into())
                })?;
            }
            _ => {
                return Err(ServiceError::Invalid(format!(
                    "{key}: unknown parameter (expected since_day)"
                )));
            }
        }
    }
    let days = engine.logs.call(move |c| logs_db::daily(c, since)).await?;
    Ok(json!(days))
}

/// `{"request": row, "attempts": [...], "bodies": {"request", "response"} | null}`, the
/// attempts in order; a body that is JSON is given as the JSON it is.
pub async fn log(engine: &Engine, id: i64) -> Result<Value, ServiceError> {
    let found = engine.logs.call(move |c| logs_db::get(c, id)).await?;
    let (mut request, attempts) =
        found.ok_or_else(|| ServiceError::NotFound(format!("no request {id} in the log")))?;
    let as_json = |t: Option<String>| match t {
        None => Value::Null,
        Some(t) => serde_json::from_str(&t).unwrap_or(Value::String(t)),
    };
    let bodies = request.bodies.take().map_or(
        Value::Null,
        |b| json!({ "request": as_json(b.request), "response": as_json(b.response) }),
    );
    Ok(json!({ "request": request, "attempts": attempts, "bodies": bodies }))
}

/// `GET /api/logs/export`'s formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExportFormat {
    Csv,
    JsonLines,
}

impl ExportFormat {
    pub fn content_type(self) -> &'static str {
        match self {
            ExportFormat::Csv => "text/csv; charset=utf-8",
            ExportFormat::JsonLines => "application/x-ndjson",
        }
    }

    pub fn file_name(self) -> &'static str {
        match self {
            ExportFormat::Csv => "switchboard-requests.csv",
            ExportFormat::JsonLines => "switchboard-requests.jsonl",
        }
    }
}

/// Rows read from the database per step of an export.
const EXPORT_PAGE: usize = MAX_PAGE;

/// The rows `GET /api/logs` would list with the same filters (all of them, newest first), as
/// CSV or JSON Lines, read a page at a time as the client takes them: an export of a month
/// holds one page in memory, not the month.
pub fn export_logs(
    engine: std::sync::Arc<Engine>,
    query: &HashMap<String, String>,
) -> Result<
    (
        ExportFormat,
        impl futures_util::Stream<Item = Result<bytes::Bytes, std::io::Error>> + use<>,
    ),
    ServiceError,
> {
    let mut query = query.clone();
    let format = match query.remove("format").as_deref() {
        None | Some("csv") => ExportFormat::Csv,
        Some("jsonl") => ExportFormat::JsonLines,
        Some(_) => {
            return Err(ServiceError::Invalid("format: must be csv or jsonl".into()));
        }
    };
    if query.contains_key("limit") {
        return Err(ServiceError::Invalid(
            "limit: an export has every row the filters select (filter by time instead)".into(),
        ));
    }
    let (filter, _) = filter(&query)?;
    let columns: Vec<String> = match serde_json::to_value(logs_db::LogRow::default()) {
        Ok(Value::Object(o)) => o.keys().cloned().collect(),
        _ => Vec::new(),
    };
    // (the filter, the cursor, whether the header is written, whether it is done)
    let state = (filter, columns, false, false);
    let stream = futures_util::stream::unfold(state, move |(mut f, columns, header, done)| {
        let engine = engine.clone();
        async move {
            if done {
                return None;
            }
            let mut out = String::new();
            if !header && format == ExportFormat::Csv {
                out.push_str(&columns.join(","));
                out.push('\n');
            }
            let page_filter = f.clone();
            let page = engine
                .logs
                .call(move |c| logs_db::list(c, &page_filter, EXPORT_PAGE))
                .await;
            let (rows, next) = match page {
                Ok(p) => p,
                Err(e) => {
                    tracing::warn!("request log export stopped: {e}");
                    return Some((
                        Err(std::io::Error::other(e.to_string())),
                        (f, columns, true, true),
                    ));
                }
            };
            for r in &rows {
                let Ok(Value::Object(o)) = serde_json::to_value(r) else {
                    continue;
                };
                match format {
                    ExportFormat::JsonLines => {
                        out.push_str(&Value::Object(o).to_string());
                        out.push('\n');
                    }
                    ExportFormat::Csv => {
                        let cells: Vec<String> =
                            columns.iter().map(|c| csv_cell(o.get(c))).collect();
                        out.push_str(&cells.join(","));
                        out.push('\n');
                    }
                }
            }
            f.before = next;
            Some((
                Ok(bytes::Bytes::from(out)),
                (f, columns, true, next.is_none()),
            ))
        }
    });
    Ok((format, stream))
}

/// One CSV field. Text a spreadsheet would run as a formula (a user agent or a model name
/// starting with `=`, `+`, `-`, `@`) gets a leading `'`.
fn csv_cell(v: Option<&Value>) -> String {
    let text = match v {
        None | Some(Value::Null) => return String::new(),
        Some(Value::String(s)) => {
            if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
                format!("'{s}")
            } else {
                s.clone()
            }
        }
        Some(other) => other.to_string(),
    };
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_cells_are_quoted_and_formulas_defused() {
        assert_eq!(csv_cell(None), "");
        assert_eq!(csv_cell(Some(&json!(12))), "12");
        assert_eq!(csv_cell(Some(&json!("a,b"))), "\"a,b\"");
        assert_eq!(csv_cell(Some(&json!("say \"hi\""))), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_cell(Some(&json!("=HYPERLINK(1)"))), "'=HYPERLINK(1)");
        assert_eq!(
            csv_cell(Some(&json!({"source": "list"}))),
            "\"{\"\"source\"\":\"\"list\"\"}\""
        );
    }
}
