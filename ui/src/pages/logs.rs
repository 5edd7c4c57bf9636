//! The request log: a table with filters that follows new requests live (pause to read), a
//! detail view with the attempt timeline, tokens, cost and the captured bodies, and the
//! filtered rows as a file.

use leptos::prelude::*;
use leptos::task::spawn_local;
use serde_json::Value;

use crate::api;
use crate::app::use_ctx;
use crate::form::Head;
use crate::util;

/// The most rows the live table holds: the oldest go as new ones come.
const LIVE_ROWS: usize = 500;

fn id_of(v: &Value) -> i64 {
    v["id"].as_i64().unwrap_or(0)
}

#[derive(Clone, Copy)]
struct Filters {
    model: RwSignal<String>,
    provider: RwSignal<String>,
    client_key: RwSignal<String>,
    status: RwSignal<String>,
    text: RwSignal<String>,
}

impl Filters {
    /// `model=..&status=..`, the empty ones left out.
    fn query(&self) -> String {
        [
            ("model", self.model),
            ("provider", self.provider),
            ("client_key", self.client_key),
            ("status", self.status),
            ("text", self.text),
        ]
        .into_iter()
        .filter_map(|(k, s)| {
            let v = s.get_untracked().trim().to_owned();
            (!v.is_empty()).then(|| format!("{k}={}", api::seg(&v)))
        })
        .collect::<Vec<_>>()
        .join("&")
    }
}

fn text(v: &Value, key: &str) -> String {
    match &v[key] {
        Value::Null => "—".to_owned(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn ms(v: &Value, key: &str) -> String {
    v[key]
        .as_f64()
        .map_or_else(|| "—".to_owned(), |us| format!("{:.0} ms", us / 1000.0))
}

fn cost(v: &Value) -> String {
    match v["cost_usd"].as_f64() {
        Some(c) => format!("${c:.6}"),
        // Unknown is not zero: no tokens, or no price for the model.
        None => "?".to_owned(),
    }
}

fn tokens(v: &Value) -> String {
    match (v["input_tokens"].as_i64(), v["output_tokens"].as_i64()) {
        (Some(i), Some(o)) => {
            let mark = if v["tokens_estimated"] == Value::Bool(true) {
                " ~"
            } else {
                ""
            };
            format!("{i} / {o}{mark}")
        }
        _ => "—".to_owned(),
    }
}

fn when(v: &Value) -> String {
    v["started_ms"]
        .as_f64()
        .map(|t| {
            let d = js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(t));
            format!(
                "{}-{:02} {:02}:{:02}:{:02}",
                d.get_month() + 1,
                d.get_date(),
                d.get_hours(),
                d.get_minutes(),
                d.get_seconds()
            )
        })
        .unwrap_or_default()
}

#[component]
pub fn Logs() -> impl IntoView {
    let ctx = use_ctx();
    let rows = RwSignal::new(Vec::<Value>::new());
    let next = RwSignal::new(None::<i64>);
    let dropped = RwSignal::new(0_u64);
    let live = RwSignal::new(true);
    let detail = RwSignal::new(None::<Value>);
    let filters = Filters {
        model: RwSignal::new(String::new()),
        provider: RwSignal::new(String::new()),
        client_key: RwSignal::new(String::new()),
        status: RwSignal::new(String::new()),
        text: RwSignal::new(String::new()),
    };
    // Rows the live tail brought since it (re)connected: a page that answers after them
    // keeps them.
    let tailed = StoredValue::new(Vec::<i64>::new());
    // The first page again, with the filters as they are.
    let load = move || {
        spawn_local(async move {
            let Some(c) = ctx.client() else { return };
            let q = filters.query();
            let path = if q.is_empty() {
                "/logs".to_owned()
            } else {
                format!("/logs?{q}")
            };
            match api::get::<Value>(&c, &path).await {
                Ok(page) => {
                    let items = page["items"].as_array().cloned().unwrap_or_default();
                    let newest = items.first().map_or(0, id_of);
                    let ids = tailed.try_get_value().unwrap_or_default();
                    rows.try_update(|r| {
                        let mut kept: Vec<Value> = r
                            .drain(..)
                            .filter(|v| id_of(v) > newest && ids.contains(&id_of(v)))
                            .collect();
                        kept.extend(items);
                        *r = kept;
                    });
                    next.try_set(page["next"].as_i64());
                    dropped.try_set(page["dropped"].as_u64().unwrap_or(0));
                }
                Err(f) => ctx.fail(&f),
            }
        });
    };
    // Live: each request as the log writes it, from `/api/logs/live` with the same filters.
    // The follower is stopped (its fetch aborted) on pause, on new filters and with the page.
    let follower = StoredValue::new_local(None::<web_sys::AbortController>);
    let stop = move || {
        if let Some(Some(c)) = follower.try_update_value(Option::take) {
            c.abort();
        }
        tailed.try_set_value(Vec::new());
    };
    let follow = move || {
        stop();
        if !live.get_untracked() {
            load();
            return;
        }
        let Ok(controller) = web_sys::AbortController::new() else {
            return;
        };
        let signal = controller.signal();
        follower.set_value(Some(controller));
        let q = filters.query();
        let path = if q.is_empty() {
            "/logs/live".to_owned()
        } else {
            format!("/logs/live?{q}")
        };
        spawn_local(async move {
            let Some(c) = ctx.client() else { return };
            let on_event = move |name: &str, data: &str| match name {
                // (Re)connected, or the tail outran us: the page again, from the file.
                "connected" | "lagged" => load(),
                "request" => {
                    let Ok(row) = serde_json::from_str::<Value>(data) else {
                        return;
                    };
                    let id = id_of(&row);
                    tailed.try_update_value(|t| {
                        t.push(id);
                        let over = t.len().saturating_sub(LIVE_ROWS);
                        t.drain(..over);
                    });
                    rows.try_update(|r| {
                        if !r.iter().any(|v| id_of(v) == id) {
                            r.insert(0, row);
                            r.truncate(LIVE_ROWS);
                        }
                    });
                }
                _ => {}
            };
            while !signal.aborted() {
                let result = api::follow_sse(&c, &path, Some(&signal), &on_event).await;
                if signal.aborted() {
                    return;
                }
                if let Err(f) = result
                    && f.status == 401
                {
                    ctx.fail(&f);
                    return;
                }
                util::sleep_ms(1500).await;
            }
        });
    };
    follow();
    on_cleanup(stop);
    let more = move |_| {
        let Some(before) = next.get_untracked() else {
            return;
        };
        // Reading older rows: the live view would put new ones above them.
        live.set(false);
        stop();
        spawn_local(async move {
            let Some(c) = ctx.client() else { return };
            let q = filters.query();
            let sep = if q.is_empty() { "" } else { "&" };
            match api::get::<Value>(&c, &format!("/logs?{q}{sep}before={before}")).await {
                Ok(page) => {
                    let older = page["items"].as_array().cloned().unwrap_or_default();
                    rows.update(|r| r.extend(older));
                    next.set(page["next"].as_i64());
                }
                Err(f) => ctx.fail(&f),
            }
        });
    };
    let open = move |id: i64| {
        spawn_local(async move {
            let Some(c) = ctx.client() else { return };
            match api::get::<Value>(&c, &format!("/logs/{id}")).await {
                Ok(v) => detail.set(Some(v)),
                Err(f) => ctx.fail(&f),
            }
        });
    };
    let export = move |_| {
        spawn_local(async move {
            let Some(c) = ctx.client() else { return };
            let q = filters.query();
            let sep = if q.is_empty() { "" } else { "&" };
            match api::text(&c, &format!("/logs/export?format=csv{sep}{q}")).await {
                Ok(csv) => {
                    if let Err(e) = util::download("switchboard-requests.csv", "text/csv", &csv) {
                        ctx.fail(&api::Failure {
                            status: 0,
                            message: e,
                        });
                    }
                }
                Err(f) => ctx.fail(&f),
            }
        });
    };
    let filter_input = move |id: &'static str, label: &'static str, s: RwSignal<String>| {
        view! {
            <label class="filter">
                <span class="label">{move || ctx.t(label)}</span>
                <input
                    id=id
                    autocomplete="off"
                    prop:value=move || s.get()
                    on:change=move |ev| {
                        s.set(event_target_value(&ev));
                        follow();
                    }
                />
            </label>
        }
    };
    view! {
        <section>
            <h2>{move || ctx.t("nav.logs")}</h2>
            <div class="row filters" id="log-filters">
                {filter_input("log-model", "col.model", filters.model)}
                {filter_input("log-provider", "col.provider", filters.provider)}
                {filter_input("log-key", "logs.client_key", filters.client_key)}
                <label class="filter">
                    <span class="label">{move || ctx.t("col.status")}</span>
                    <select
                        id="log-status"
                        on:change=move |ev| {
                            filters.status.set(event_target_value(&ev));
                            follow();
                        }
                    >
                        <option value="">{move || ctx.t("logs.any")}</option>
                        <option value="2xx">"2xx"</option>
                        <option value="4xx">"4xx"</option>
                        <option value="5xx">"5xx"</option>
                    </select>
                </label>
                {filter_input("log-text", "logs.text", filters.text)}
                <label class="filter live">
                    <input
                        type="checkbox"
                        id="log-live"
                        prop:checked=move || live.get()
                        on:change=move |ev| {
                            live.set(event_target_checked(&ev));
                            follow();
                        }
                    />
                    <span>{move || ctx.t("logs.live")}</span>
                </label>
                <button id="log-export" on:click=export>{move || ctx.t("action.export_csv")}</button>
            </div>
            <Show when=move || { dropped.get() > 0 }>
                <p class="error small" id="log-dropped">
                    {move || format!("{} {}", dropped.get(), ctx.t("logs.dropped"))}
                </p>
            </Show>
            <table class="grid" id="logs">
                <Head cols=&[
                    "col.time",
                    "col.model",
                    "col.provider",
                    "col.status",
                    "col.latency",
                    "col.tokens",
                    "col.cost",
                    "col.attempts",
                ]/>
                <tbody>
                    {move || {
                        rows.get()
                            .into_iter()
                            .map(|r| {
                                let id = r["id"].as_i64().unwrap_or(0);
                                let status = r["status"].as_u64().unwrap_or(0);
                                let failed_over = r["attempts"].as_u64().unwrap_or(0) > 1;
                                let bad = status >= 400;
                                view! {
                                    <tr
                                        data-id=id.to_string()
                                        class="clickable"
                                        class:failed=bad
                                        on:click=move |_| open(id)
                                    >
                                        <td class="small">{when(&r)}</td>
                                        <td class="mono">{text(&r, "model")}</td>
                                        <td class="mono">
                                            {format!("{} / {}", text(&r, "provider"), text(&r, "upstream_model"))}
                                        </td>
                                        <td class="status">{status.to_string()}</td>
                                        <td>{ms(&r, "latency_us")}</td>
                                        <td class="tokens">{tokens(&r)}</td>
                                        <td class="cost">{cost(&r)}</td>
                                        <td class:warn=failed_over>{text(&r, "attempts")}</td>
                                    </tr>
                                }
                            })
                            .collect_view()
                    }}
                </tbody>
            </table>
            <Show when=move || next.get().is_some()>
                <button id="log-more" on:click=more>{move || ctx.t("logs.more")}</button>
            </Show>
        </section>
        {move || detail.get().map(|d| view! { <Detail value=d on_close=move || detail.set(None)/> })}
    }
}

#[component]
fn Detail(value: Value, on_close: impl Fn() + Send + Sync + 'static) -> impl IntoView {
    let ctx = use_ctx();
    let r = value["request"].clone();
    let attempts = value["attempts"].as_array().cloned().unwrap_or_default();
    let line = |label: &'static str, v: String| {
        view! {
            <div class="kv">
                <span class="label">{move || ctx.t(label)}</span>
                <span class="mono">{v}</span>
            </div>
        }
    };
    // Captured only when `[logs] capture_bodies` was on for this request.
    let bodies = (!value["bodies"].is_null()).then(|| {
        (
            pretty(&value["bodies"]["request"]),
            pretty(&value["bodies"]["response"]),
        )
    });
    let price = match &r["price"] {
        Value::Null => "—".to_owned(),
        p => serde_json::to_string_pretty(p).unwrap_or_default(),
    };
    view! {
        <section class="card" id="log-detail" data-id=text(&r, "id")>
            <div class="row">
                <h2>{format!("#{} {}", text(&r, "id"), text(&r, "endpoint"))}</h2>
                <button class="link" id="log-detail-close" on:click=move |_| on_close()>
                    {move || ctx.t("action.close")}
                </button>
            </div>
            {line("col.time", when(&r))}
            {line("logs.client_key", text(&r, "client_key"))}
            {line("col.model", format!("{} → {}", text(&r, "model"), text(&r, "unified_model")))}
            {line(
                "col.provider",
                format!(
                    "{} / {} ({}{})",
                    text(&r, "provider"),
                    text(&r, "upstream_model"),
                    text(&r, "upstream_protocol"),
                    if r["converted"] == Value::Bool(true) { ", converted" } else { "" },
                ),
            )}
            {line("logs.chosen_by", text(&r, "chosen_by"))}
            {(!r["tier"].is_null())
                .then(|| line("dash.tier", format!("{} ({})", text(&r, "tier"), text(&r, "tier_reason"))))}
            {line("col.status", format!("{} {}", text(&r, "status"), text(&r, "error")))}
            {line(
                "col.latency",
                format!(
                    "{} · first byte {} · first content {}",
                    ms(&r, "latency_us"),
                    ms(&r, "ttfb_us"),
                    ms(&r, "ttfc_us"),
                ),
            )}
            {line(
                "col.tokens",
                format!(
                    "in {} · out {} · cache read {} · cache write {} · reasoning {}{}",
                    text(&r, "input_tokens"),
                    text(&r, "output_tokens"),
                    text(&r, "cache_read_tokens"),
                    text(&r, "cache_write_tokens"),
                    text(&r, "reasoning_tokens"),
                    if r["tokens_estimated"] == Value::Bool(true) { " (estimated)" } else { "" },
                ),
            )}
            {line("col.cost", cost(&r))}
            <pre class="mono small" id="log-price">{price}</pre>
            <h3>{move || ctx.t("logs.attempts")}</h3>
            <table class="grid" id="log-attempts">
                <Head cols=&[
                    "col.provider",
                    "col.model",
                    "col.status",
                    "col.latency",
                    "logs.first_byte",
                    "logs.chosen_by",
                    "logs.breaker",
                    "col.error",
                ]/>
                <tbody>
                    {attempts
                        .into_iter()
                        .map(|a| {
                            let bad = !a["error"].is_null();
                            view! {
                                <tr class:failed=bad>
                                    <td class="mono">{text(&a, "provider")}</td>
                                    <td class="mono">{text(&a, "model")}</td>
                                    <td>{text(&a, "status")}</td>
                                    <td>{ms(&a, "latency_us")}</td>
                                    <td>{ms(&a, "ttfb_us")}</td>
                                    <td>{text(&a, "chosen_by")}</td>
                                    <td>{text(&a, "breaker")}</td>
                                    <td class="small">{text(&a, "error")}</td>
                                </tr>
                            }
                        })
                        .collect_view()}
                </tbody>
            </table>
            {bodies
                .map(|(request, response)| {
                    view! {
                        <h3>{move || ctx.t("logs.request_body")}</h3>
                        <pre class="mono small body" id="log-request-body">{request}</pre>
                        <h3>{move || ctx.t("logs.response_body")}</h3>
                        <pre class="mono small body" id="log-response-body">{response}</pre>
                    }
                })}
        </section>
    }
}

/// A captured body for reading: JSON pretty-printed, text as it is.
fn pretty(v: &Value) -> String {
    match v {
        Value::Null => "—".to_owned(),
        Value::String(s) => s.clone(),
        other => serde_json::to_string_pretty(other).unwrap_or_default(),
    }
}
