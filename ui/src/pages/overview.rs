//! Every provider and unified model with its live breaker state, reason and until-when.

use leptos::prelude::*;
use leptos::task::spawn_local;
use switchboard_api::{ProviderStatus, StatusResponse};

use crate::api;
use crate::app::{Ctx, load_on_tick, tr_state, use_ctx};
use crate::util;

fn provider_state(p: &ProviderStatus) -> &'static str {
    if !p.enabled {
        "disabled"
    } else if p.paused {
        "paused"
    } else if p.breaker.state != "closed" || p.models.iter().any(|m| m.breaker.state != "closed") {
        "cooling"
    } else {
        "ok"
    }
}

/// The breaker that explains the state: the provider's own, else its first open model's.
fn reason(p: &ProviderStatus) -> (Option<String>, Option<u64>) {
    if p.paused {
        return (None, p.paused_until);
    }
    if p.breaker.state != "closed" {
        return (p.breaker.reason.clone(), p.breaker.until);
    }
    p.models
        .iter()
        .find(|m| m.breaker.state != "closed")
        .map(|m| {
            (
                m.breaker
                    .reason
                    .as_ref()
                    .map(|r| format!("{}: {r}", m.model)),
                m.breaker.until,
            )
        })
        .unwrap_or((None, None))
}

pub fn pause_resume(ctx: Ctx, name: String, pause: bool, minutes: Option<u32>) {
    spawn_local(async move {
        let Some(c) = ctx.client() else { return };
        let path = format!(
            "/providers/{}/{}",
            api::seg(&name),
            if pause { "pause" } else { "resume" }
        );
        let body = match minutes {
            Some(m) => serde_json::json!({ "minutes": m }),
            None => serde_json::json!({}),
        };
        match api::call::<_, serde_json::Value>(&c, "POST", &path, &body).await {
            Ok(_) => ctx.refresh(),
            Err(f) => ctx.fail(&f),
        }
    });
}

#[component]
pub fn Overview() -> impl IntoView {
    let ctx = use_ctx();
    let status = RwSignal::new(None::<StatusResponse>);
    load_on_tick(ctx, "/status", move |s: StatusResponse| status.set(Some(s)));
    let reset_all = move |_| {
        spawn_local(async move {
            let Some(c) = ctx.client() else { return };
            match api::call::<_, serde_json::Value>(
                &c,
                "POST",
                "/breakers/reset",
                &serde_json::json!({}),
            )
            .await
            {
                Ok(_) => ctx.refresh(),
                Err(f) => ctx.fail(&f),
            }
        });
    };
    view! {
        <section>
            <div class="section-head">
                <h2>{move || ctx.t("overview.providers")}</h2>
                <button on:click=reset_all>{move || ctx.t("overview.reset")}</button>
            </div>
            <table class="grid" id="provider-status">
                <thead>
                    <tr>
                        <th>{move || ctx.t("col.name")}</th>
                        <th>{move || ctx.t("col.state")}</th>
                        <th>{move || ctx.t("col.reason")}</th>
                        <th>{move || ctx.t("col.until")}</th>
                        <th>{move || ctx.t("col.requests")}</th>
                        <th></th>
                    </tr>
                </thead>
                <tbody>
                    {move || {
                        status
                            .get()
                            .map(|s| {
                                s.providers
                                    .into_iter()
                                    .map(|p| provider_row(ctx, p))
                                    .collect_view()
                            })
                    }}
                </tbody>
            </table>
            <Show when=move || status.with(|s| s.as_ref().is_some_and(|s| s.providers.is_empty()))>
                <p class="muted">{move || ctx.t("overview.no_providers")}</p>
            </Show>
        </section>
        <section>
            <h2>{move || ctx.t("overview.models")}</h2>
            <table class="grid" id="model-status">
                <thead>
                    <tr>
                        <th>{move || ctx.t("col.model")}</th>
                        <th>{move || ctx.t("col.candidates")}</th>
                    </tr>
                </thead>
                <tbody>
                    {move || {
                        status
                            .get()
                            .map(|s| {
                                s.models
                                    .into_iter()
                                    .map(|m| {
                                        view! {
                                            <tr>
                                                <td class="mono">{m.name}</td>
                                                <td>
                                                    {m
                                                        .candidates
                                                        .into_iter()
                                                        .map(|c| {
                                                            view! {
                                                                <span
                                                                    class="chip"
                                                                    class:off=!c.available
                                                                    title=if c.available { "available" } else { "unavailable" }
                                                                >
                                                                    {format!("{}/{}", c.provider, c.model)}
                                                                </span>
                                                            }
                                                        })
                                                        .collect_view()}
                                                </td>
                                            </tr>
                                        }
                                    })
                                    .collect_view()
                            })
                    }}
                </tbody>
            </table>
        </section>
    }
}

fn provider_row(ctx: Ctx, p: ProviderStatus) -> impl IntoView {
    let state = provider_state(&p);
    let (why, until) = reason(&p);
    let name = p.name.clone();
    let (n1, n2) = (name.clone(), name.clone());
    let paused = p.paused;
    view! {
        <tr data-provider=name.clone() data-state=state>
            <td class="mono">{name.clone()}</td>
            <td>
                <span class=format!("badge {state}")>{move || tr_state(ctx, state)}</span>
            </td>
            <td class="reason">{why.unwrap_or_default()}</td>
            <td>
                {until
                    .map(|u| format!("{} ({})", util::clock(u), util::remaining(u)))
                    .unwrap_or_default()}
            </td>
            <td>
                {format!("{}", p.requests)}
                {(p.failures > 0).then(|| format!(" ({} ✗)", p.failures))}
            </td>
            <td class="actions">
                {if paused {
                    view! {
                        <button
                            class="resume"
                            on:click=move |_| pause_resume(ctx, n1.clone(), false, None)
                        >
                            {move || ctx.t("action.resume")}
                        </button>
                    }
                        .into_any()
                } else {
                    view! {
                        <button
                            class="pause"
                            on:click=move |_| pause_resume(ctx, n2.clone(), true, None)
                        >
                            {move || ctx.t("action.pause")}
                        </button>
                    }
                        .into_any()
                }}
            </td>
        </tr>
    }
}
