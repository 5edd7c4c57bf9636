//! The first page after login: a window's totals, its traffic, latency and cost over time,
//! the model and provider mix, the top client keys, and each (provider, model)'s health now.
//! Charts are drawn by leptos-chartistry (SVG from Leptos components).

use chrono::{DateTime, FixedOffset};
use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_chartistry::{
    AspectRatio, AxisMarker, Bar, Colour, IntoEdge, IntoInner, Legend, Line, MarkerShape,
    SERIES_COLOUR_SCHEME, Series, Stack, TickLabels, Tooltip, XGridLine, YGridLine,
};
use switchboard_api::stats::{GroupTotal, Point, Stats, TierTotal};
use switchboard_api::{BreakerState, StatusResponse};

use crate::api;
use crate::app::use_ctx;
use crate::form::Head;
use crate::util;

/// How often the page asks again (the stats are sums; a second is plenty fresh).
const REFRESH_MS: i32 = 5000;
/// Groups drawn one by one in a mix chart; the rest are summed as one.
const MIX_GROUPS: usize = 6;
/// Latency thresholds (ms): above the first a tile turns amber, above the second red.
const LATENCY_WARN_MS: f64 = 5_000.0;
const LATENCY_BAD_MS: f64 = 15_000.0;
const TTFC_WARN_MS: f64 = 1_500.0;
const TTFC_BAD_MS: f64 = 5_000.0;

const OK: Colour = Colour::from_rgb(0x15, 0x80, 0x3d);
const WARN: Colour = Colour::from_rgb(0xd9, 0x77, 0x06);
const BAD: Colour = Colour::from_rgb(0xb9, 0x1c, 0x1c);
const ACCENT: Colour = Colour::from_rgb(0x25, 0x63, 0xeb);

#[derive(Clone, Copy, PartialEq, Eq)]
enum Window {
    Hour,
    Day,
    Week,
    Month,
}

impl Window {
    const ALL: [Window; 4] = [Window::Hour, Window::Day, Window::Week, Window::Month];

    fn param(self) -> &'static str {
        match self {
            Window::Hour => "1h",
            Window::Day => "24h",
            Window::Week => "7d",
            Window::Month => "30d",
        }
    }

    /// Buckets that give a chart a few dozen to a few hundred points.
    fn bucket(self) -> &'static str {
        match self {
            Window::Hour => "minute",
            Window::Day | Window::Week => "hour",
            Window::Month => "day",
        }
    }
}

/// One bucket of the window, every bucket present (a quiet one is zeros, not a gap).
#[derive(Clone, Debug, PartialEq)]
struct Row {
    t: DateTime<FixedOffset>,
    requests: f64,
    errors: f64,
    /// NaN where the bucket had no request: the line breaks instead of dropping to zero.
    p50: f64,
    p95: f64,
    p99: f64,
    cost: f64,
}

/// Requests per bucket of each of the biggest groups, and of the rest.
#[derive(Clone, Debug, PartialEq)]
struct MixRow {
    t: DateTime<FixedOffset>,
    values: Vec<f64>,
}

#[derive(Clone, Debug, Default, PartialEq)]
struct Mix {
    names: Vec<String>,
    rows: Vec<MixRow>,
}

/// The browser's offset from UTC, so the axes read in local time.
fn local_offset() -> FixedOffset {
    let minutes = js_sys::Date::new_0().get_timezone_offset();
    let east = (-minutes * 60.0) as i32;
    FixedOffset::east_opt(east).unwrap_or_else(|| FixedOffset::east_opt(0).expect("UTC"))
}

fn at(ms: i64, tz: FixedOffset) -> DateTime<FixedOffset> {
    DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .with_timezone(&tz)
}

/// The bucket starts of the window, oldest first, at most a few thousand.
fn buckets(s: &Stats) -> Vec<i64> {
    if s.bucket_ms <= 0 {
        return Vec::new();
    }
    let first = s.since_ms.div_euclid(s.bucket_ms) * s.bucket_ms;
    (0..2_000)
        .map(|i| first + i * s.bucket_ms)
        .take_while(|t| *t < s.until_ms)
        .collect()
}

fn rows(s: &Stats, tz: FixedOffset) -> Vec<Row> {
    let by_t: std::collections::HashMap<i64, &Point> =
        s.series.iter().map(|p| (p.t_ms, &p.point)).collect();
    buckets(s)
        .into_iter()
        .map(|t| {
            let p = by_t.get(&t);
            let pct = |f: fn(&Point) -> Option<f64>| p.and_then(|p| f(p)).unwrap_or(f64::NAN);
            Row {
                t: at(t, tz),
                requests: p.map_or(0.0, |p| p.requests as f64),
                errors: p.map_or(0.0, |p| p.errors as f64),
                p50: pct(|p| p.latency_ms.p50),
                p95: pct(|p| p.latency_ms.p95),
                p99: pct(|p| p.latency_ms.p99),
                cost: p.map_or(0.0, |p| p.cost_usd),
            }
        })
        .collect()
}

fn mix(s: &Stats, tz: FixedOffset) -> Mix {
    let mut names: Vec<String> = s
        .groups
        .iter()
        .take(MIX_GROUPS)
        .map(|g| group_name(&g.group))
        .collect();
    let rest = s.groups.len() > MIX_GROUPS;
    if rest {
        names.push("(other)".to_owned());
    }
    let column = |g: &str| {
        let g = group_name(g);
        names
            .iter()
            .take(MIX_GROUPS)
            .position(|n| *n == g)
            .unwrap_or(MIX_GROUPS)
    };
    let mut cells: std::collections::HashMap<i64, Vec<f64>> = std::collections::HashMap::new();
    for p in &s.series {
        let i = column(p.group.as_deref().unwrap_or(""));
        if i >= names.len() {
            continue;
        }
        cells
            .entry(p.t_ms)
            .or_insert_with(|| vec![0.0; names.len()])[i] += p.point.requests as f64;
    }
    let rows = buckets(s)
        .into_iter()
        .map(|t| MixRow {
            t: at(t, tz),
            values: cells.remove(&t).unwrap_or_else(|| vec![0.0; names.len()]),
        })
        .collect();
    Mix { names, rows }
}

/// Requests that reached no provider (or named no model) are a group too: "(none)".
fn group_name(g: &str) -> String {
    if g.is_empty() {
        "(none)".to_owned()
    } else {
        g.to_owned()
    }
}

fn pct(v: Option<f64>) -> String {
    v.map_or_else(|| "—".to_owned(), |r| format!("{:.1} %", r * 100.0))
}

/// A health score as a whole number out of 100; "—" for a pair no unified model routes to.
fn score(model: Option<f64>, provider: f64) -> String {
    model.map_or_else(
        || "—".to_owned(),
        |m| format!("{:.0}", m.min(provider) * 100.0),
    )
}

fn millis(v: Option<f64>) -> String {
    match v {
        None => "—".to_owned(),
        Some(ms) if ms >= 10_000.0 => format!("{:.1} s", ms / 1000.0),
        Some(ms) => format!("{ms:.0} ms"),
    }
}

fn level(v: Option<f64>, warn: f64, bad: f64) -> &'static str {
    match v {
        Some(x) if x > bad => "bad",
        Some(x) if x > warn => "warn",
        Some(_) => "ok",
        None => "",
    }
}

fn count(n: u64) -> String {
    match n {
        0..=9_999 => n.to_string(),
        10_000..=999_999 => format!("{:.1} k", n as f64 / 1e3),
        _ => format!("{:.2} M", n as f64 / 1e6),
    }
}

fn usd(p: &Point) -> String {
    let mark = if p.unpriced > 0 { " *" } else { "" };
    format!("{}{mark}", dollars(p.cost_usd))
}

fn dollars(usd: f64) -> String {
    // Small sums keep their digits: a day of cheap requests is not "$0.0000".
    let digits = if usd > 0.0 && usd < 0.01 { 6 } else { 4 };
    format!("${usd:.digits$}")
}

#[component]
fn Tile(
    id: &'static str,
    label: &'static str,
    #[prop(into)] value: Signal<String>,
    #[prop(into, optional)] level: Signal<&'static str>,
) -> impl IntoView {
    let ctx = use_ctx();
    view! {
        <div class=move || format!("tile {}", level.get()) id=id>
            <span class="label">{move || ctx.t(label)}</span>
            <span class="value">{move || value.get()}</span>
        </div>
    }
}

fn chart_frame() -> Vec<leptos_chartistry::InnerLayout<DateTime<FixedOffset>, f64>> {
    vec![
        AxisMarker::left_edge().into_inner(),
        AxisMarker::bottom_edge().into_inner(),
        XGridLine::default().into_inner(),
        YGridLine::default().into_inner(),
    ]
}

/// With a dot on each point: a bucket between quiet ones has no line to draw.
fn dotted(line: Line<Row, f64>) -> Line<Row, f64> {
    line.with_marker(MarkerShape::Circle)
}

/// As wide as its card, a fixed height.
const SIZE: AspectRatio = AspectRatio::from_env_width(220.0);

/// A chart over the window: values up the left, local time along the bottom, a legend on the
/// right when there are several series, and a tooltip at the pointer.
fn over_time<T: Send + Sync + 'static>(
    series: Series<T, DateTime<FixedOffset>, f64>,
    data: Signal<Vec<T>>,
    legend: bool,
) -> impl IntoView {
    let right = if legend {
        vec![Legend::end().into_edge()]
    } else {
        Vec::new()
    };
    view! {
        <leptos_chartistry::Chart
            aspect_ratio=SIZE
            left=TickLabels::aligned_floats()
            bottom=TickLabels::timestamps()
            right=right
            inner=chart_frame()
            tooltip=Tooltip::left_cursor()
            series=series
            data=data
        />
    }
}

#[component]
fn MixChart(id: &'static str, mix: RwSignal<Mix>) -> impl IntoView {
    // The lines are the groups: the chart is built again when they change.
    let names = Memo::new(move |_| mix.with(|m| m.names.clone()));
    let data = Signal::derive(move || mix.with(|m| m.rows.clone()));
    view! {
        <div class="chart" id=id>
            {move || {
                let names = names.get();
                if names.is_empty() {
                    return view! { <p class="muted small empty">"—"</p> }.into_any();
                }
                // The stack's own palette starts pale; the series one reads on both themes.
                let mut stack = Stack::new().with_colours::<()>(SERIES_COLOUR_SCHEME);
                for (i, n) in names.into_iter().enumerate() {
                    stack = stack.line(
                        Line::new(move |r: &MixRow| r.values.get(i).copied().unwrap_or(0.0))
                            .with_name(n),
                    );
                }
                over_time(
                    Series::new(|r: &MixRow| r.t).with_min_y(0.0).stack(stack),
                    data,
                    true,
                )
                .into_any()
            }}
        </div>
    }
}

/// A breaker state as the Overview page names it.
fn breaker_name(s: BreakerState) -> &'static str {
    match s {
        BreakerState::Closed => "ok",
        BreakerState::HalfOpen => "cooling",
        BreakerState::Open => "down",
    }
}

#[component]
pub fn Dashboard() -> impl IntoView {
    let ctx = use_ctx();
    let window = RwSignal::new(Window::Day);
    let totals = RwSignal::new(Point::default());
    let series = RwSignal::new(Vec::<Row>::new());
    let models = RwSignal::new(Mix::default());
    let providers = RwSignal::new(Mix::default());
    let keys = RwSignal::new(Vec::<GroupTotal>::new());
    let tiers = RwSignal::new(Vec::<TierTotal>::new());
    let health = RwSignal::new(None::<StatusResponse>);
    let loaded = RwSignal::new(false);
    let tz = local_offset();

    let load = move || {
        spawn_local(async move {
            let Some(c) = ctx.client() else { return };
            let w = window.get_untracked();
            let base = format!("/stats?window={}&bucket={}", w.param(), w.bucket());
            match api::get::<Stats>(&c, &base).await {
                Ok(s) => {
                    totals.set(s.totals.clone());
                    series.set(rows(&s, tz));
                    tiers.set(s.tiers);
                }
                Err(f) => return ctx.fail(&f),
            }
            for (group, into) in [("model", models), ("provider", providers)] {
                match api::get::<Stats>(&c, &format!("{base}&group_by={group}")).await {
                    Ok(s) => into.set(mix(&s, tz)),
                    Err(f) => return ctx.fail(&f),
                }
            }
            match api::get::<Stats>(&c, &format!("{base}&group_by=client_key")).await {
                Ok(s) => keys.set(s.groups.into_iter().take(10).collect()),
                Err(f) => return ctx.fail(&f),
            }
            match api::get::<StatusResponse>(&c, "/status").await {
                Ok(s) => health.set(Some(s)),
                Err(f) => return ctx.fail(&f),
            }
            loaded.set(true);
        });
    };
    // Now, on every live event (a breaker, a pause: the health table follows at once), and
    // every few seconds for the traffic, which sends no event.
    Effect::new(move |_| {
        ctx.tick.get();
        load();
    });
    spawn_local(async move {
        loop {
            util::sleep_ms(REFRESH_MS).await;
            if window.try_get_untracked().is_none() {
                break;
            }
            load();
        }
    });

    let t = move |f: fn(&Point) -> String| Signal::derive(move || totals.with(f));
    let data = Signal::derive(move || series.get());
    // A threshold line shows only when the data comes near it, so it does not flatten a
    // chart of fast requests.
    let near = move |limit: f64| {
        series.with(|r| {
            r.iter()
                .map(|r| r.p99)
                .filter(|v| !v.is_nan())
                .fold(0.0, f64::max)
                >= limit * 0.5
        })
    };
    // Memos: the chart is rebuilt only when a threshold line comes or goes.
    let warn_line = Memo::new(move |_| near(LATENCY_WARN_MS));
    let bad_line = Memo::new(move |_| near(LATENCY_BAD_MS));
    view! {
        <section id="dashboard" data-loaded=move || loaded.get().to_string()>
            <div class="section-head">
                <h2>{move || ctx.t("nav.dashboard")}</h2>
                <div class="windows" id="dash-window">
                    {Window::ALL
                        .into_iter()
                        .map(|w| {
                            view! {
                                <button
                                    class="tab"
                                    class:active=move || window.get() == w
                                    data-window=w.param()
                                    on:click=move |_| {
                                        window.set(w);
                                        load();
                                    }
                                >
                                    {w.param()}
                                </button>
                            }
                        })
                        .collect_view()}
                </div>
            </div>
            <div class="tiles" id="dash-totals">
                <Tile id="dash-requests" label="dash.requests" value=t(|p| count(p.requests))/>
                <Tile
                    id="dash-success"
                    label="dash.success_rate"
                    value=t(|p| pct(p.success_rate))
                    level=Signal::derive(move || {
                        totals.with(|p| match p.success_rate {
                            Some(r) if r < 0.9 => "bad",
                            Some(r) if r < 0.99 => "warn",
                            Some(_) => "ok",
                            None => "",
                        })
                    })
                />
                <Tile id="dash-saved" label="dash.saved" value=t(|p| count(p.saved))/>
                <Tile
                    id="dash-p50"
                    label="dash.p50"
                    value=t(|p| millis(p.latency_ms.p50))
                    level=Signal::derive(move || {
                        totals.with(|p| level(p.latency_ms.p50, LATENCY_WARN_MS, LATENCY_BAD_MS))
                    })
                />
                <Tile
                    id="dash-p95"
                    label="dash.p95"
                    value=t(|p| millis(p.latency_ms.p95))
                    level=Signal::derive(move || {
                        totals.with(|p| level(p.latency_ms.p95, LATENCY_WARN_MS, LATENCY_BAD_MS))
                    })
                />
                <Tile
                    id="dash-ttfc"
                    label="dash.ttfc"
                    value=t(|p| millis(p.ttfc_ms.p50))
                    level=Signal::derive(move || {
                        totals.with(|p| level(p.ttfc_ms.p50, TTFC_WARN_MS, TTFC_BAD_MS))
                    })
                />
                <Tile
                    id="dash-tokens"
                    label="dash.tokens"
                    value=t(|p| format!("{} / {}", count(p.tokens.input), count(p.tokens.output)))
                />
                <Tile id="dash-cost" label="dash.cost" value=t(usd)/>
            </div>
            <Show when=move || totals.with(|p| p.unpriced > 0)>
                <p class="muted small" id="dash-unpriced">
                    {move || format!("* {} {}", totals.with(|p| p.unpriced), ctx.t("dash.unpriced"))}
                </p>
            </Show>
            <div class="charts">
                <div class="card">
                    <h3>{move || ctx.t("dash.traffic")}</h3>
                    <div class="chart" id="chart-traffic">
                        {over_time(
                            Series::new(|r: &Row| r.t)
                                .with_min_y(0.0)
                                .line(Line::new(|r: &Row| r.requests).with_name("requests").with_colour(ACCENT))
                                .line(Line::new(|r: &Row| r.errors).with_name("errors").with_colour(BAD)),
                            data,
                            true,
                        )}
                    </div>
                </div>
                <div class="card">
                    <h3>{move || ctx.t("dash.latency")}</h3>
                    <div class="chart" id="chart-latency">
                        {move || {
                            let mut s = Series::new(|r: &Row| r.t)
                                .with_min_y(0.0)
                                .line(dotted(Line::new(|r: &Row| r.p50).with_name("p50").with_colour(OK)))
                                .line(dotted(Line::new(|r: &Row| r.p95).with_name("p95").with_colour(WARN)))
                                .line(dotted(Line::new(|r: &Row| r.p99).with_name("p99").with_colour(BAD)));
                            if warn_line.get() {
                                s = s.line(
                                    Line::new(|_: &Row| LATENCY_WARN_MS)
                                        .with_name("slow")
                                        .with_colour(WARN)
                                        .with_width(0.5),
                                );
                            }
                            if bad_line.get() {
                                s = s.line(
                                    Line::new(|_: &Row| LATENCY_BAD_MS)
                                        .with_name("too slow")
                                        .with_colour(BAD)
                                        .with_width(0.5),
                                );
                            }
                            over_time(s, data, true)
                        }}
                    </div>
                </div>
                <div class="card">
                    <h3>{move || ctx.t("dash.cost_over_time")}</h3>
                    <div class="chart" id="chart-cost">
                        {over_time(
                            Series::new(|r: &Row| r.t)
                                .with_min_y(0.0)
                                .bar(Bar::new(|r: &Row| r.cost).with_name("USD").with_colour(ACCENT)),
                            data,
                            false,
                        )}
                    </div>
                </div>
                <div class="card">
                    <h3>{move || ctx.t("dash.model_mix")}</h3>
                    <MixChart id="chart-models" mix=models/>
                </div>
                <div class="card">
                    <h3>{move || ctx.t("dash.provider_mix")}</h3>
                    <MixChart id="chart-providers" mix=providers/>
                </div>
            </div>
            <div class="charts">
                <div>
                    <h3>{move || ctx.t("dash.top_keys")}</h3>
                    <table class="grid" id="dash-keys">
                        <Head cols=&["logs.client_key", "dash.requests", "dash.success_rate", "dash.tokens", "col.cost"]/>
                        <tbody>
                            {move || {
                                keys.get()
                                    .into_iter()
                                    .map(|g| {
                                        let name = group_name(&g.group);
                                        view! {
                                            <tr>
                                                <td class="mono">{name}</td>
                                                <td>{count(g.point.requests)}</td>
                                                <td>{pct(g.point.success_rate)}</td>
                                                <td>
                                                    {format!(
                                                        "{} / {}",
                                                        count(g.point.tokens.input),
                                                        count(g.point.tokens.output),
                                                    )}
                                                </td>
                                                <td>{usd(&g.point)}</td>
                                            </tr>
                                        }
                                    })
                                    .collect_view()
                            }}
                        </tbody>
                    </table>
                </div>
                <div>
                    <h3>{move || ctx.t("dash.tiers")}</h3>
                    <table class="grid" id="dash-tiers">
                        <Head cols=&["col.model", "dash.tier", "dash.requests", "col.cost"]/>
                        <tbody>
                            {move || {
                                tiers
                                    .get()
                                    .into_iter()
                                    .map(|t| {
                                        view! {
                                            <tr>
                                                <td class="mono">{t.model}</td>
                                                <td class="mono tier">{t.tier}</td>
                                                <td>{count(t.requests)}</td>
                                                <td>{dollars(t.cost_usd)}</td>
                                            </tr>
                                        }
                                    })
                                    .collect_view()
                            }}
                        </tbody>
                    </table>
                    {move || {
                        tiers
                            .with(Vec::is_empty)
                            .then(|| view! { <p class="muted">{ctx.t("dash.no_tiers")}</p> })
                    }}
                </div>
                <div>
                    <h3>{move || ctx.t("dash.health")}</h3>
                    <table class="grid" id="dash-health">
                        <Head cols=&["col.provider", "col.model", "dash.success_rate", "col.latency", "dash.health_score", "logs.breaker"]/>
                        <tbody>
                            {move || {
                                let Some(s) = health.get() else { return Vec::new() };
                                // The pairs some unified model routes to, busiest first.
                                let used: std::collections::HashSet<(String, String)> = s
                                    .models
                                    .iter()
                                    .flat_map(|m| m.candidates.iter())
                                    .map(|c| (c.provider.clone(), c.model.clone()))
                                    .collect();
                                let mut pairs: Vec<_> = s
                                    .providers
                                    .iter()
                                    .flat_map(|p| p.models.iter().map(move |m| (p, m)))
                                    .filter(|(p, m)| used.contains(&(p.name.clone(), m.model.clone())))
                                    .collect();
                                pairs.sort_by_key(|p| std::cmp::Reverse(p.1.health.requests));
                                pairs
                                    .into_iter()
                                    .take(20)
                                    .map(|(p, m)| {
                                        // The provider's own breaker wins: open, every model is out.
                                        let state = if p.breaker.state != BreakerState::Closed {
                                            p.breaker.state
                                        } else {
                                            m.breaker.state
                                        };
                                        let name = breaker_name(state);
                                        view! {
                                            <tr data-pair=format!("{}/{}", p.name, m.model)>
                                                <td class="mono">{p.name.clone()}</td>
                                                <td class="mono">{m.model.clone()}</td>
                                                <td>{pct(m.health.success_rate)}</td>
                                                <td>{millis(m.health.latency_ms)}</td>
                                                // What routing weighs the pair by: its own
                                                // score and its provider's, the lower.
                                                <td class="health-score">
                                                    {score(m.health.score, p.score)}
                                                </td>
                                                <td>
                                                    <span class=format!("badge {name}")>
                                                        {move || ctx.t(match state {
                                                            BreakerState::Closed => "state.closed",
                                                            BreakerState::HalfOpen => "state.half_open",
                                                            BreakerState::Open => "state.open",
                                                        })}
                                                    </span>
                                                </td>
                                            </tr>
                                        }
                                    })
                                    .collect::<Vec<_>>()
                            }}
                        </tbody>
                    </table>
                </div>
            </div>
        </section>
    }
}
