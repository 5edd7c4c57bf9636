//! Client keys: create (the key is shown this once), list, revoke.

use leptos::prelude::*;
use leptos::task::spawn_local;
use switchboard_api::{ClientKeyView, CreateClientKey, CreatedClientKey};

use crate::api;
use crate::app::{delete_confirmed, load_on_tick, use_ctx};
use crate::form::{Errors, Field, FormError, Head, TextInput};
use crate::util;

#[component]
pub fn Keys() -> impl IntoView {
    let ctx = use_ctx();
    let list = RwSignal::new(Vec::<ClientKeyView>::new());
    let name = RwSignal::new(String::new());
    let models = RwSignal::new(String::new());
    let rpm = RwSignal::new(String::new());
    let expires = RwSignal::new(String::new());
    let daily = RwSignal::new(String::new());
    // "", "on" or "off": as the Settings say, always, never.
    let bodies = RwSignal::new(String::new());
    let pin = RwSignal::new(false);
    let created = RwSignal::new(None::<CreatedClientKey>);
    let errors = Errors::new();
    load_on_tick(ctx, "/client-keys", move |l: Vec<ClientKeyView>| {
        list.set(l)
    });
    let create = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let n = name.get_untracked().trim().to_owned();
        if n.is_empty() {
            errors.set(vec![("name".into(), ctx.t("err.required").into())]);
            return;
        }
        let limit = rpm.get_untracked().trim().to_owned();
        let limit = if limit.is_empty() {
            None
        } else {
            match limit.parse::<u32>() {
                Ok(r) if r > 0 => Some(r),
                _ => {
                    errors.set(vec![("rpm".into(), ctx.t("err.positive").into())]);
                    return;
                }
            }
        };
        let usd = daily.get_untracked().trim().to_owned();
        let budget = if usd.is_empty() {
            None
        } else {
            match usd.trim_start_matches('$').parse::<f64>() {
                Ok(v) if v > 0.0 && v.is_finite() => Some(switchboard_api::budget::Budget {
                    daily_usd: Some(v),
                    ..Default::default()
                }),
                _ => {
                    errors.set(vec![("budget".into(), ctx.t("err.usd").into())]);
                    return;
                }
            }
        };
        errors.clear();
        let m = util::split_list(&models.get_untracked());
        let e = expires.get_untracked().trim().to_owned();
        let req = CreateClientKey {
            name: n,
            models: (!m.is_empty()).then_some(m),
            rpm: limit,
            // The server reads a UTC date and says what is wrong with one.
            expires_at: (!e.is_empty()).then(|| e.into()),
            capture_bodies: match bodies.get_untracked().as_str() {
                "on" => Some(true),
                "off" => Some(false),
                _ => None,
            },
            pin_providers: pin.get_untracked().then_some(true),
            budget,
        };
        spawn_local(async move {
            let Some(c) = ctx.client() else { return };
            match api::call::<_, CreatedClientKey>(&c, "POST", "/client-keys", &req).await {
                Ok(k) => {
                    created.set(Some(k));
                    name.set(String::new());
                    models.set(String::new());
                    rpm.set(String::new());
                    expires.set(String::new());
                    daily.set(String::new());
                    bodies.set(String::new());
                    pin.set(false);
                    ctx.refresh();
                }
                Err(f) => errors.server(&f, &["name", "models", "rpm", "expires_at"]),
            }
        });
    };
    let revoke = move |n: String| {
        let path = format!("/client-keys/{}", api::seg(&n));
        delete_confirmed(ctx, "confirm.revoke", n, path);
    };
    view! {
        <section>
            <h2>{move || ctx.t("nav.keys")}</h2>
            <p class="muted">{move || ctx.t("keys.intro")}</p>
            {move || {
                created
                    .get()
                    .map(|k| {
                        let key = k.key.clone();
                        view! {
                            <div class="card created" id="created-key">
                                <p>{move || ctx.t("keys.shown_once")}</p>
                                <code class="secret">{k.key.clone()}</code>
                                <div class="row">
                                    <button on:click=move |_| util::copy_text(&key)>
                                        {move || ctx.t("action.copy")}
                                    </button>
                                    <button on:click=move |_| created.set(None)>
                                        {move || ctx.t("action.done")}
                                    </button>
                                </div>
                            </div>
                        }
                    })
            }}
            <table class="grid" id="client-keys">
                <Head cols=&["col.name", "col.models", "col.limit", "col.budget", "col.expires", "col.last_used", "col.created", "col.bodies", "col.pin", ""]/>
                <tbody>
                    {move || {
                        list.get()
                            .into_iter()
                            .map(|k| {
                                let n = k.name.clone();
                                view! {
                                    <tr data-key=k.name.clone() class:revoked=k.revoked>
                                        <td class="mono">{k.name.clone()}</td>
                                        <td>
                                            {if k.models.is_empty() {
                                                ctx.t("keys.all_models").to_owned()
                                            } else {
                                                k.models.join(", ")
                                            }}
                                        </td>
                                        <td class="small limit">
                                            {k.rpm.map(|r| format!("{r}/min")).unwrap_or_else(|| "—".into())}
                                        </td>
                                        <td class="small budget" class:expired=k.budget_use.iter().any(|u| u.used >= u.amount)>
                                            {budget_text(&k.budget_use)}
                                        </td>
                                        <td class="small expires" class:expired=k.expired>
                                            {match (k.expires_at, k.expired) {
                                                (None, _) => "—".to_owned(),
                                                (Some(_), true) => ctx.t("keys.expired").to_owned(),
                                                (Some(t), false) => util::utc_date(t),
                                            }}
                                        </td>
                                        <td class="small last-used">
                                            {k.last_used_at.map(util::clock).unwrap_or_else(|| ctx.t("keys.never").to_owned())}
                                        </td>
                                        <td class="small">{k.created_at.clone()}</td>
                                        <td class="small bodies">
                                            {move || ctx.t(match k.capture_bodies {
                                                None => "keys.bodies_default",
                                                Some(true) => "keys.bodies_on",
                                                Some(false) => "keys.bodies_off",
                                            })}
                                        </td>
                                        <td class="small pin">
                                            {move || ctx.t(if k.pin_providers { "keys.pin_yes" } else { "keys.pin_no" })}
                                        </td>
                                        <td class="actions">
                                            {if k.revoked {
                                                view! { <span class="badge disabled">{move || ctx.t("keys.revoked")}</span> }.into_any()
                                            } else {
                                                view! {
                                                    <button class="danger" on:click=move |_| revoke(n.clone())>
                                                        {move || ctx.t("action.revoke")}
                                                    </button>
                                                }
                                                    .into_any()
                                            }}
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
            <h2>{move || ctx.t("keys.create")}</h2>
            <form class="card form" id="key-form" on:submit=create novalidate=true>
                <Field label="field.name" name="name" errors=errors>
                    <TextInput value=name id="key-name" placeholder="cursor"/>
                </Field>
                <Field label="field.key_models" name="models" errors=errors hint="hint.key_models">
                    <TextInput value=models id="key-models" placeholder="claude-opus-4-5, gpt-4o"/>
                </Field>
                <Field label="field.rpm" name="rpm" errors=errors hint="hint.rpm">
                    <TextInput value=rpm id="key-rpm" placeholder="60"/>
                </Field>
                <Field label="field.daily_budget" name="budget" errors=errors hint="hint.daily_budget">
                    <TextInput value=daily id="key-budget" placeholder="5.00"/>
                </Field>
                <Field label="field.expires" name="expires_at" errors=errors hint="hint.expires">
                    <TextInput value=expires id="key-expires" placeholder="2027-01-01"/>
                </Field>
                <Field label="field.key_bodies" name="capture_bodies" errors=errors hint="hint.key_bodies">
                    <select
                        id="key-bodies"
                        prop:value=move || bodies.get()
                        on:change=move |ev| bodies.set(event_target_value(&ev))
                    >
                        <option value="">{move || ctx.t("keys.bodies_default")}</option>
                        <option value="on">{move || ctx.t("keys.bodies_on")}</option>
                        <option value="off">{move || ctx.t("keys.bodies_off")}</option>
                    </select>
                </Field>
                <Field label="field.key_pin" name="pin_providers" errors=errors hint="hint.key_pin">
                    <label class="inline">
                        <input
                            type="checkbox"
                            id="key-pin"
                            prop:checked=move || pin.get()
                            on:change=move |ev| pin.set(event_target_checked(&ev))
                        />
                    </label>
                </Field>
                <FormError errors=errors/>
                <button type="submit" class="primary" id="key-create">{move || ctx.t("action.create")}</button>
            </form>
        </section>
    }
}

/// `daily_usd 0.42 / 1 · monthly_tokens 1200 / 50000`: each limit, used of its amount.
fn budget_text(uses: &[switchboard_api::budget::BudgetUse]) -> String {
    if uses.is_empty() {
        return "—".into();
    }
    uses.iter()
        .map(|u| {
            if u.limit.ends_with("usd") {
                format!("{} ${:.2} / ${}", u.limit, u.used, u.amount)
            } else {
                format!("{} {:.0} / {}", u.limit, u.used, u.amount)
            }
        })
        .collect::<Vec<_>>()
        .join(" · ")
}
