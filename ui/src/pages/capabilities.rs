//! Model capabilities, on the Prices page: what each routed (provider, model) is known to take
//! (from the bundled families, the price list's context windows and your entries), and the
//! `[[capabilities]]` entries themselves. Routing sends a request with images, tools or a long
//! prompt only where it is not known to be lacking.

use leptos::prelude::*;
use leptos::task::spawn_local;
use switchboard_api::capabilities::{
    Capabilities, CapabilitiesUpdate, CapabilitiesView, CapabilityEntry,
};

use crate::api;
use crate::app::{load_on_tick, use_ctx};
use crate::form::{Errors, Field, FormError, Head, TextInput};
use crate::util;

fn yes_no(v: Option<bool>) -> &'static str {
    match v {
        Some(true) => "caps.yes",
        Some(false) => "caps.no",
        None => "caps.unknown",
    }
}

fn tokens(v: Option<u32>) -> String {
    v.map_or_else(|| "—".to_owned(), |n| n.to_string())
}

/// "", "yes" or "no" from a select.
fn flag(s: &str) -> Option<bool> {
    match s {
        "yes" => Some(true),
        "no" => Some(false),
        _ => None,
    }
}

/// The capability columns of a row, in the tables' order.
#[component]
fn Cells(c: Capabilities) -> impl IntoView {
    let ctx = use_ctx();
    view! {
        <td class="context">{tokens(c.context_window)}</td>
        <td>{tokens(c.max_output)}</td>
        <td class="tools">{move || ctx.t(yes_no(c.tools))}</td>
        <td class="vision">{move || ctx.t(yes_no(c.vision))}</td>
        <td>{move || ctx.t(yes_no(c.reasoning))}</td>
        <td>{move || ctx.t(yes_no(c.structured_output))}</td>
    }
}

#[component]
fn Flag(value: RwSignal<String>, id: &'static str) -> impl IntoView {
    let ctx = use_ctx();
    view! {
        <select id=id prop:value=move || value.get() on:change=move |ev| value.set(event_target_value(&ev))>
            <option value="">{move || ctx.t("caps.unknown")}</option>
            <option value="yes">{move || ctx.t("caps.yes")}</option>
            <option value="no">{move || ctx.t("caps.no")}</option>
        </select>
    }
}

#[component]
pub fn Capabilities() -> impl IntoView {
    let ctx = use_ctx();
    let view_ = RwSignal::new(None::<CapabilitiesView>);
    let provider = RwSignal::new(String::new());
    let model = RwSignal::new(String::new());
    let context = RwSignal::new(String::new());
    let max_output = RwSignal::new(String::new());
    let tools = RwSignal::new(String::new());
    let vision = RwSignal::new(String::new());
    let reasoning = RwSignal::new(String::new());
    let structured = RwSignal::new(String::new());
    let errors = Errors::new();
    load_on_tick(ctx, "/capabilities", move |v: CapabilitiesView| {
        view_.set(Some(v))
    });

    let put = move |entries: Vec<CapabilityEntry>, done: Box<dyn Fn()>| {
        spawn_local(async move {
            let Some(c) = ctx.client() else { return };
            let body = CapabilitiesUpdate { entries };
            match api::call::<_, serde_json::Value>(&c, "PUT", "/capabilities", &body).await {
                Ok(_) => {
                    done();
                    ctx.ok(ctx.t("msg.saved"));
                    ctx.refresh();
                }
                Err(f) => errors.server(
                    &f.of_entry("capabilities"),
                    &["provider", "model", "context_window", "max_output"],
                ),
            }
        });
    };
    let save = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let mut bad = Vec::new();
        let mut whole = |name: &'static str, s: RwSignal<String>| {
            let t = s.get_untracked().trim().to_owned();
            if t.is_empty() {
                return None;
            }
            match t.parse::<u32>() {
                Ok(n) if n > 0 => Some(n),
                _ => {
                    bad.push((name.to_owned(), ctx.t("err.positive").to_owned()));
                    None
                }
            }
        };
        let entry = CapabilityEntry {
            provider: Some(provider.get_untracked().trim().to_owned()).filter(|p| !p.is_empty()),
            model: model.get_untracked().trim().to_owned(),
            context_window: whole("context_window", context),
            max_output: whole("max_output", max_output),
            tools: flag(&tools.get_untracked()),
            vision: flag(&vision.get_untracked()),
            reasoning: flag(&reasoning.get_untracked()),
            structured_output: flag(&structured.get_untracked()),
        };
        if entry.model.is_empty() {
            bad.push(("model".into(), ctx.t("err.required").into()));
        }
        if !bad.is_empty() {
            errors.set(bad);
            return;
        }
        errors.clear();
        // One entry per (provider, model): saving the same pair again replaces it.
        let key = |e: &CapabilityEntry| (e.provider.clone(), e.model.to_lowercase());
        let mut entries: Vec<CapabilityEntry> = view_
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
                    provider, model, context, max_output, tools, vision, reasoning, structured,
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
            <h2>{move || ctx.t("caps.title")}</h2>
            <p class="muted">{move || ctx.t("caps.intro")}</p>
            <table class="grid" id="capabilities">
                <Head cols=&["col.provider", "col.model", "caps.context", "caps.max_output", "caps.tools", "caps.vision", "caps.reasoning", "caps.structured"]/>
                <tbody>
                    {move || {
                        view_
                            .get()
                            .map(|v| v.pairs)
                            .unwrap_or_default()
                            .into_iter()
                            .map(|p| {
                                let c = p.capabilities;
                                view! {
                                    <tr data-pair=format!("{}/{}", p.provider, p.model)>
                                        <td class="mono">{p.provider.clone()}</td>
                                        <td class="mono">{p.model.clone()}</td>
                                        <Cells c=c/>
                                    </tr>
                                }
                            })
                            .collect_view()
                    }}
                </tbody>
            </table>
        </section>
        <section>
            <h2>{move || ctx.t("caps.entries")}</h2>
            <table class="grid" id="capability-entries">
                <Head cols=&["col.provider", "col.model", "caps.context", "caps.max_output", "caps.tools", "caps.vision", "caps.reasoning", "caps.structured", ""]/>
                <tbody>
                    {move || {
                        view_
                            .get()
                            .map(|v| v.entries)
                            .unwrap_or_default()
                            .into_iter()
                            .enumerate()
                            .map(|(i, e)| {
                                let key = format!("{}/{}", e.provider.clone().unwrap_or_default(), e.model);
                                view! {
                                    <tr data-entry=key>
                                        <td class="mono">{e.provider.clone().unwrap_or_else(every)}</td>
                                        <td class="mono">{e.model.clone()}</td>
                                        <Cells c=e.capabilities()/>
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
            <h2>{move || ctx.t("caps.add")}</h2>
            <form class="card form" id="caps-form" on:submit=save novalidate=true>
                <Field label="field.price_provider" name="provider" errors=errors hint="hint.price_every">
                    <TextInput value=provider id="caps-provider" placeholder="relay-a"/>
                </Field>
                <Field label="field.caps_model" name="model" errors=errors hint="hint.caps_model">
                    <TextInput value=model id="caps-model" placeholder="house-*"/>
                </Field>
                <Field label="caps.context" name="context_window" errors=errors>
                    <TextInput value=context id="caps-context" placeholder="128000"/>
                </Field>
                <Field label="caps.max_output" name="max_output" errors=errors>
                    <TextInput value=max_output id="caps-max-output" placeholder="16384"/>
                </Field>
                <Field label="caps.tools" name="tools" errors=errors>
                    <Flag value=tools id="caps-tools"/>
                </Field>
                <Field label="caps.vision" name="vision" errors=errors>
                    <Flag value=vision id="caps-vision"/>
                </Field>
                <Field label="caps.reasoning" name="reasoning" errors=errors>
                    <Flag value=reasoning id="caps-reasoning"/>
                </Field>
                <Field label="caps.structured" name="structured_output" errors=errors>
                    <Flag value=structured id="caps-structured"/>
                </Field>
                <FormError errors=errors/>
                <button type="submit" class="primary" id="caps-save">{move || ctx.t("action.save")}</button>
            </form>
        </section>
    }
}
