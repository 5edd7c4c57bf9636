//! Every provider and unified model with its live breaker state, reason and until-when.

use leptos::prelude::*;
use leptos::task::spawn_local;
use switchboard_api::{BreakerState, ProviderState, ProviderStatus, StatusResponse};

use crate::api;
use crate::app::{Ctx, load_on_tick, tr_state, use_ctx};
use crate::form::Head;
use crate::util;

/// What a provider whose key was refused needs (the tray says the same).
const KEY_REFUSED: &str =
    "The provider refused its API key (401/403). Fix the key in Providers, then reset its breaker.";

fn provider_state(p: &ProviderStatus) -> &'static str {
    if !p.enabled {
        "disabled"
    } else if p.paused {
        ProviderState::Paused.as_str()
    } else if p.breaker.state == BreakerState::Open && p.breaker.until.is_none() {
        // Open until reset: its key was refused.
        ProviderState::KeyRefused.as_str()
    } else if p.breaker.state != BreakerState::Closed
        || p.quota_until.is_some()
        || p.models
            .iter()
            .any(|m| m.breaker.state != BreakerState::Closed || m.quota_until.is_some())
    {
        ProviderState::Cooling.as_str()
    } else {
        ProviderState::Ok.as_str()
    }
}

/// The breaker that explains the state: the provider's own, else its first open model's.
fn reason(p: &ProviderStatus) -> (Option<String>, Option<u64>) {
    if p.paused {
        return (None, p.paused_until);
    }
    if p.breaker.state == BreakerState::Open && p.breaker.until.is_none() {
        return (Some(KEY_REFUSED.to_owned()), None);
    }
    if p.breaker.state != BreakerState::Closed {
        return (p.breaker.reason.clone(), p.breaker.until);
    }
    // At a quota: which limit, until its reset.
    let at_quota = |uses: &[switchboard_api::budget::BudgetUse]| {
        uses.iter()
            .find(|u| u.used >= u.amount)
            .map(|u| format!("at its quota {} ({} of {})", u.limit, u.used, u.amount))
    };
    if p.quota_until.is_some() {
        return (at_quota(&p.quota), p.quota_until);
    }
    if let Some(m) = p.models.iter().find(|m| m.quota_until.is_some()) {
        return (
            at_quota(&m.quota).map(|r| format!("{}: {r}", m.model)),
            m.quota_until,
        );
    }
    p.models
        .iter()
        .find(|m| m.breaker.state != BreakerState::Closed)
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
                <Head cols=&["col.name", "col.state", "col.reason", "col.until", "col.requests", ""]/>
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
                <Head cols=&["col.model", "col.candidates"]/>
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
                <PauseButtons name=name.clone() paused=paused timed=false/>
            </td>
        </tr>
    }
}

/// Resume for a paused provider; otherwise Pause, and with `timed` also "Pause 15 min".
#[component]
pub fn PauseButtons(name: String, paused: bool, timed: bool) -> impl IntoView {
    let ctx = use_ctx();
    if paused {
        return view! {
            <button class="resume" on:click=move |_| pause_resume(ctx, name.clone(), false, None)>
                {move || ctx.t("action.resume")}
            </button>
        }
        .into_any();
    }
    let timed_name = name.clone();
    view! {
        <button class="pause" on:click=move |_| pause_resume(ctx, name.clone(), true, None)>
            {move || ctx.t("action.pause")}
        </button>
        {timed
            .then(|| {
                view! {
                    <button on:click=move |_| {
                        pause_resume(ctx, timed_name.clone(), true, Some(15))
                    }>{move || ctx.t("action.pause15")}</button>
                }
            })}
    }
    .into_any()
}
