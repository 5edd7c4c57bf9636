//! Prices: the list in use, the models nothing prices (one click fills the form for them), and
//! the `[[prices]]` entries: a provider's or model's multiplier of the list price, or a model's
//! own price.

use leptos::prelude::*;
use leptos::task::spawn_local;
use switchboard_api::prices::{PriceEntry, PricesUpdate, PricesView};

use crate::api;
use crate::app::{load_on_tick, use_ctx};
use crate::form::{Errors, Field, FormError, Head, TextInput};
use crate::util;

/// A rate or multiplier as typed: empty is none; anything else must be a number.
fn number(s: &str) -> Result<Option<f64>, ()> {
    let s = s.trim();
    if s.is_empty() {
        return Ok(None);
    }
    s.parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && *v >= 0.0)
        .map(Some)
        .ok_or(())
}

fn shown(v: Option<f64>) -> String {
    v.map_or_else(|| "—".to_owned(), |v| format!("{v}"))
}

#[component]
pub fn Prices() -> impl IntoView {
    let ctx = use_ctx();
    let view_ = RwSignal::new(None::<PricesView>);
    let provider = RwSignal::new(String::new());
    let model = RwSignal::new(String::new());
    let multiplier = RwSignal::new(String::new());
    let input = RwSignal::new(String::new());
    let output = RwSignal::new(String::new());
    let cache_read = RwSignal::new(String::new());
    let cache_write = RwSignal::new(String::new());
    let errors = Errors::new();
    load_on_tick(ctx, "/prices", move |v: PricesView| view_.set(Some(v)));

    let put = move |entries: Vec<PriceEntry>, done: Box<dyn Fn()>| {
        spawn_local(async move {
            let Some(c) = ctx.client() else { return };
            let body = PricesUpdate { entries };
            match api::call::<_, serde_json::Value>(&c, "PUT", "/prices", &body).await {
                Ok(_) => {
                    done();
                    ctx.ok(ctx.t("msg.saved"));
                    ctx.refresh();
                }
                Err(f) => errors.server(
                    &f.of_entry("prices"),
                    &[
                        "provider",
                        "model",
                        "multiplier",
                        "input",
                        "output",
                        "cache_read",
                        "cache_write",
                    ],
                ),
            }
        });
    };
    let save = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let mut bad = Vec::new();
        let mut read = |name: &'static str, s: RwSignal<String>| match number(&s.get_untracked()) {
            Ok(v) => v,
            Err(()) => {
                bad.push((name.to_owned(), ctx.t("err.number").to_owned()));
                None
            }
        };
        let text = |s: RwSignal<String>| {
            let t = s.get_untracked().trim().to_owned();
            (!t.is_empty()).then_some(t)
        };
        let entry = PriceEntry {
            provider: text(provider),
            model: text(model),
            multiplier: read("multiplier", multiplier),
            input: read("input", input),
            output: read("output", output),
            cache_read: read("cache_read", cache_read),
            cache_write: read("cache_write", cache_write),
        };
        if !bad.is_empty() {
            errors.set(bad);
            return;
        }
        errors.clear();
        // One entry per (provider, model): saving the same pair again replaces it.
        let key = |e: &PriceEntry| {
            let (p, m) = e.key();
            (p.to_owned(), m.to_lowercase())
        };
        let mut entries: Vec<PriceEntry> = view_
            .get_untracked()
            .map(|v| v.entries)
            .unwrap_or_default()
            .into_iter()
            .filter(|e| key(e) != key(&entry))
            .collect();
        entries.push(entry);
        put(
            entries,
            Box::new(move || {
                for s in [
                    provider,
                    model,
                    multiplier,
                    input,
                    output,
                    cache_read,
                    cache_write,
                ] {
                    s.set(String::new());
                }
            }),
        );
    };
    let remove = move |i: usize| {
        let Some(v) = view_.get_untracked() else {
            return;
        };
        let mut entries = v.entries;
        if i >= entries.len() || !util::confirm(&format!("{}?", ctx.t("confirm.delete"))) {
            return;
        }
        entries.remove(i);
        put(entries, Box::new(|| {}));
    };
    let every = move || ctx.t("prices.every").to_owned();
    view! {
        <section>
            <h2>{move || ctx.t("nav.prices")}</h2>
            <p class="muted">{move || ctx.t("prices.intro")}</p>
            <p class="small" id="price-list">
                {move || {
                    view_
                        .get()
                        .map(|v| {
                            format!(
                                "{}: {} · {} {}",
                                ctx.t("prices.list"),
                                v.list.source,
                                v.list.models,
                                ctx.t("col.models"),
                            )
                        })
                }}
            </p>
            <p class="error" id="price-list-error">
                {move || view_.get().and_then(|v| v.list.last_error)}
            </p>
        </section>
        <section>
            <h2>{move || ctx.t("prices.unpriced")}</h2>
            <p class="muted">{move || ctx.t("prices.unpriced_intro")}</p>
            <table class="grid" id="unpriced">
                <Head cols=&["col.provider", "col.model", ""]/>
                <tbody>
                    {move || {
                        view_
                            .get()
                            .map(|v| v.unpriced)
                            .unwrap_or_default()
                            .into_iter()
                            .map(|u| {
                                let (p, m) = (u.provider.clone(), u.model.clone());
                                view! {
                                    <tr data-pair=format!("{}/{}", u.provider, u.model)>
                                        <td class="mono">{u.provider.clone()}</td>
                                        <td class="mono">{u.model.clone()}</td>
                                        <td class="actions">
                                            <button
                                                class="set-price"
                                                on:click=move |_| {
                                                    provider.set(p.clone());
                                                    model.set(m.clone());
                                                    multiplier.set(String::new());
                                                }
                                            >
                                                {move || ctx.t("action.set_price")}
                                            </button>
                                        </td>
                                    </tr>
                                }
                            })
                            .collect_view()
                    }}
                </tbody>
            </table>
            <Show when=move || view_.get().is_some_and(|v| v.unpriced.is_empty())>
                <p class="muted small" id="all-priced">{move || ctx.t("prices.all_priced")}</p>
            </Show>
        </section>
        <section>
            <h2>{move || ctx.t("prices.entries")}</h2>
            <table class="grid" id="price-entries">
                <Head cols=&[
                    "col.provider",
                    "col.model",
                    "col.multiplier",
                    "col.input",
                    "col.output",
                    "col.cache_read",
                    "col.cache_write",
                    "",
                ]/>
                <tbody>
                    {move || {
                        view_
                            .get()
                            .map(|v| v.entries)
                            .unwrap_or_default()
                            .into_iter()
                            .enumerate()
                            .map(|(i, e)| {
                                let (p, m) = e.key();
                                let pair = format!("{p}/{m}");
                                view! {
                                    <tr data-entry=pair>
                                        <td class="mono">{e.provider.clone().unwrap_or_else(every)}</td>
                                        <td class="mono">{e.model.clone().unwrap_or_else(every)}</td>
                                        <td class="multiplier">{e.multiplier.map(|m| format!("× {m}")).unwrap_or_else(|| "—".into())}</td>
                                        <td class="input">{shown(e.input)}</td>
                                        <td>{shown(e.output)}</td>
                                        <td>{shown(e.cache_read)}</td>
                                        <td>{shown(e.cache_write)}</td>
                                        <td class="actions">
                                            <button class="danger" on:click=move |_| remove(i)>
                                                {move || ctx.t("action.delete")}
                                            </button>
                                        </td>
                                    </tr>
                                }
                            })
                            .collect_view()
                    }}
                </tbody>
            </table>
        </section>
        <section>
            <h2>{move || ctx.t("prices.add")}</h2>
            <form class="card form" id="price-form" on:submit=save novalidate=true>
                <Field label="field.price_provider" name="provider" errors=errors hint="hint.price_every">
                    <TextInput value=provider id="price-provider" placeholder="relay-a"/>
                </Field>
                <Field label="field.price_model" name="model" errors=errors hint="hint.price_every">
                    <TextInput value=model id="price-model" placeholder="gpt-4o"/>
                </Field>
                <Field label="field.multiplier" name="multiplier" errors=errors hint="hint.multiplier">
                    <TextInput value=multiplier id="price-multiplier" placeholder="0.8"/>
                </Field>
                <Field label="field.price_input" name="input" errors=errors hint="hint.per_mtok">
                    <TextInput value=input id="price-input" placeholder="2.5"/>
                </Field>
                <Field label="field.price_output" name="output" errors=errors>
                    <TextInput value=output id="price-output" placeholder="10"/>
                </Field>
                <Field label="field.price_cache_read" name="cache_read" errors=errors hint="hint.cache_rate">
                    <TextInput value=cache_read id="price-cache-read"/>
                </Field>
                <Field label="field.price_cache_write" name="cache_write" errors=errors hint="hint.cache_rate">
                    <TextInput value=cache_write id="price-cache-write"/>
                </Field>
                <FormError errors=errors/>
                <button type="submit" class="primary" id="price-save">{move || ctx.t("action.save")}</button>
            </form>
        </section>
        <super::capabilities::Capabilities/>
    }
}
