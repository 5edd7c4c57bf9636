//! "Try a request", on the Models page: a request body, and what routing would do with it now
//! (`POST /api/route/preview`), sending nothing: the route, what the request needs, each
//! candidate's scores and share of next requests, and why one may not be tried; for a tiered
//! model, the tier first.

use leptos::prelude::*;
use leptos::task::spawn_local;
use serde_json::Value;
use switchboard_api::{RoutePreview, RoutePreviewRequest};

use crate::api;
use crate::app::use_ctx;
use crate::form::Head;

const SAMPLE: &str = r#"{"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}"#;

fn pct(share: f64) -> String {
    format!("{:.0} %", share * 100.0)
}

#[component]
pub fn TryRequest() -> impl IntoView {
    let ctx = use_ctx();
    let body = RwSignal::new(SAMPLE.to_owned());
    let result = RwSignal::new(None::<Result<RoutePreview, String>>);
    let run = move |_| {
        let request = match serde_json::from_str::<Value>(&body.get_untracked()) {
            Ok(v @ Value::Object(_)) => v,
            _ => {
                result.set(Some(Err(ctx.t("err.json_object").to_owned())));
                return;
            }
        };
        spawn_local(async move {
            let Some(c) = ctx.client() else { return };
            let req = RoutePreviewRequest {
                request,
                ..Default::default()
            };
            let r = api::call::<_, RoutePreview>(&c, "POST", "/route/preview", &req)
                .await
                .map_err(|f| f.message);
            result.set(Some(r));
        });
    };
    view! {
        <section>
            <h2>{move || ctx.t("models.try")}</h2>
            <p class="muted">{move || ctx.t("models.try_intro")}</p>
            <div class="card form">
                <textarea
                    id="try-body"
                    rows="4"
                    prop:value=move || body.get()
                    on:input=move |ev| body.set(event_target_value(&ev))
                ></textarea>
                <button class="primary" id="try-run" on:click=run>
                    {move || ctx.t("models.try_run")}
                </button>
            </div>
            <div id="try-result">
                {move || match result.get() {
                    None => ().into_any(),
                    Some(Err(e)) => view! { <p class="error">{e}</p> }.into_any(),
                    Some(Ok(p)) => {
                        let needs = [
                            (p.images, "caps.vision"),
                            (p.tools, "caps.tools"),
                        ]
                            .into_iter()
                            .filter(|(on, _)| *on)
                            .map(|(_, k)| ctx.t(k))
                            .collect::<Vec<_>>()
                            .join(", ");
                        let tier = p.tier.map(|t| {
                            view! {
                                <p class="small" id="try-tier">
                                    {format!("{} {} → {} · {}", ctx.t("dash.tier"), t.name, t.target, t.reason)}
                                </p>
                            }
                        });
                        view! {
                            {tier}
                            <p class="small" id="try-route">
                                {format!("{} · {}", p.route, p.strategy)}
                                {(!needs.is_empty()).then(|| format!(" · {needs}"))}
                                {(p.tokens > 0).then(|| format!(" · ~{} tokens", p.tokens))}
                            </p>
                            <table class="grid" id="try-candidates">
                                <Head cols=&["col.provider", "col.model", "models.share", "dash.health_score", "col.latency", "col.cost", ""]/>
                                <tbody>
                                    {p.candidates
                                        .into_iter()
                                        .map(|c| {
                                            view! {
                                                <tr data-pair=format!("{}/{}", c.provider, c.model) class:revoked=!c.usable>
                                                    <td class="mono">{c.provider.clone()}</td>
                                                    <td class="mono">{c.model.clone()}</td>
                                                    <td class="share">{pct(c.share)}</td>
                                                    <td>{format!("{:.0}", c.health.min(c.provider_health) * 100.0)}</td>
                                                    <td>{c.latency_ms.map(|ms| format!("{ms:.0} ms")).unwrap_or_else(|| "—".into())}</td>
                                                    <td>{c.price.map(|p| format!("{p}")).unwrap_or_else(|| "—".into())}</td>
                                                    <td class="small why">{c.why.clone().unwrap_or_default()}</td>
                                                </tr>
                                            }
                                        })
                                        .collect_view()}
                                </tbody>
                            </table>
                        }
                            .into_any()
                    }
                }}
            </div>
        </section>
    }
}
