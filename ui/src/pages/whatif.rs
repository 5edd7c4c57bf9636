//! "What if", on the Models page: the last days' logged requests replayed through another
//! strategy (`POST /api/whatif`), their cost and latency beside what happened.

use leptos::prelude::*;
use leptos::task::spawn_local;
use switchboard_api::whatif::{Outcome, WhatIf, WhatIfRequest};

use super::models::STRATEGIES;
use crate::api;
use crate::app::use_ctx;
use crate::form::Head;

fn usd(o: &Outcome) -> String {
    let mark = if o.unpriced > 0 { " *" } else { "" };
    format!("${:.6}{mark}", o.cost_usd)
}

fn ms(o: &Outcome) -> String {
    o.latency_ms
        .map(|l| format!("{l:.0} ms"))
        .unwrap_or_else(|| "—".into())
}

#[component]
pub fn WhatIfPanel() -> impl IntoView {
    let ctx = use_ctx();
    let strategy = RwSignal::new("cost".to_owned());
    let days = RwSignal::new("7".to_owned());
    let result = RwSignal::new(None::<Result<WhatIf, String>>);
    let run = move |_| {
        let req = WhatIfRequest {
            days: days.get_untracked().trim().parse().ok(),
            strategy: strategy.get_untracked(),
            ..Default::default()
        };
        spawn_local(async move {
            let Some(c) = ctx.client() else { return };
            let r = api::call::<_, WhatIf>(&c, "POST", "/whatif", &req)
                .await
                .map_err(|f| f.message);
            result.set(Some(r));
        });
    };
    view! {
        <section>
            <h2>{move || ctx.t("whatif.title")}</h2>
            <p class="muted">{move || ctx.t("whatif.intro")}</p>
            <div class="card form row">
                <select id="whatif-strategy" on:change=move |ev| strategy.set(event_target_value(&ev))>
                    {STRATEGIES
                        .iter()
                        .filter(|(v, _)| *v != "sort")
                        .map(|(v, k)| {
                            view! {
                                <option value=*v selected=move || strategy.get() == *v>
                                    {move || ctx.t(k)}
                                </option>
                            }
                        })
                        .collect_view()}
                </select>
                <input
                    id="whatif-days"
                    type="number"
                    min="1"
                    max="30"
                    prop:value=move || days.get()
                    on:input=move |ev| days.set(event_target_value(&ev))
                />
                <button class="primary" id="whatif-run" on:click=run>
                    {move || ctx.t("whatif.run")}
                </button>
            </div>
            <div id="whatif-result">
                {move || match result.get() {
                    None => ().into_any(),
                    Some(Err(e)) => view! { <p class="error">{e}</p> }.into_any(),
                    Some(Ok(w)) => {
                        let rows = w.models.into_iter().chain(std::iter::once(w.total));
                        view! {
                            <p class="small" id="whatif-count">
                                {format!("{} {} · {}", w.requests, ctx.t("dash.requests"), w.strategy)}
                            </p>
                            <table class="grid" id="whatif-table">
                                <Head cols=&["col.model", "dash.requests", "whatif.actual_cost", "whatif.replayed_cost", "whatif.actual_latency", "whatif.replayed_latency", "whatif.moved"]/>
                                <tbody>
                                    {rows
                                        .map(|m| {
                                            view! {
                                                <tr data-model=m.model.clone()>
                                                    <td class="mono">{m.model.clone()}</td>
                                                    <td>{m.requests}</td>
                                                    <td class="actual">{usd(&m.actual)}</td>
                                                    <td class="replayed">{usd(&m.replayed)}</td>
                                                    <td>{ms(&m.actual)}</td>
                                                    <td>{ms(&m.replayed)}</td>
                                                    <td class="moved">{m.moved}</td>
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
