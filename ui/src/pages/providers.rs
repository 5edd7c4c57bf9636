//! Providers: add, edit, delete, test (fetches the model list), pause and resume.

use leptos::prelude::*;
use leptos::task::spawn_local;
use serde_json::{Value, json};
use switchboard_api::{ProviderView, SyncResponse};

use super::overview::PauseButtons;
use crate::api;
use crate::app::{Ctx, delete_confirmed, load_on_tick, use_ctx};
use crate::form::{CheckBox, Errors, Field, FormError, Head, SaveCancel, TextInput};
use crate::util;

const PROTOCOLS: [&str; 3] = ["openai", "anthropic", "gemini"];
const FIELDS: &[&str] = &[
    "name",
    "base_url",
    "protocols",
    "api_key",
    "weight",
    "priority",
    "models",
    "enabled",
];

/// The form's state, one signal per field.
#[derive(Clone, Copy)]
struct Draft {
    editing: RwSignal<bool>,
    /// The stored name of the provider being edited: a different name in the form renames it.
    original: RwSignal<String>,
    name: RwSignal<String>,
    base_url: RwSignal<String>,
    protocols: RwSignal<Vec<String>>,
    api_key: RwSignal<String>,
    key_kind: RwSignal<String>,
    weight: RwSignal<String>,
    priority: RwSignal<String>,
    enabled: RwSignal<bool>,
    models: RwSignal<String>,
}

impl Draft {
    fn new() -> Self {
        Self {
            editing: RwSignal::new(false),
            original: RwSignal::new(String::new()),
            name: RwSignal::new(String::new()),
            base_url: RwSignal::new(String::new()),
            protocols: RwSignal::new(vec!["openai".into()]),
            api_key: RwSignal::new(String::new()),
            key_kind: RwSignal::new(String::new()),
            weight: RwSignal::new("1".into()),
            priority: RwSignal::new("0".into()),
            enabled: RwSignal::new(true),
            models: RwSignal::new(String::new()),
        }
    }

    fn reset(&self) {
        self.editing.set(false);
        self.original.set(String::new());
        self.name.set(String::new());
        self.base_url.set(String::new());
        self.protocols.set(vec!["openai".into()]);
        self.api_key.set(String::new());
        self.key_kind.set(String::new());
        self.weight.set("1".into());
        self.priority.set("0".into());
        self.enabled.set(true);
        self.models.set(String::new());
    }

    fn load(&self, p: &ProviderView) {
        self.editing.set(true);
        self.original.set(p.name.clone());
        self.name.set(p.name.clone());
        self.base_url.set(p.base_url.clone());
        self.protocols.set(p.protocols.clone());
        self.api_key.set(String::new());
        self.key_kind.set(p.key.clone());
        self.weight.set(p.weight.to_string());
        self.priority.set(p.priority.to_string());
        self.enabled.set(p.enabled);
        // A synced list belongs to the provider; only a list from the config is edited here.
        let from_config = p.sync.source.as_deref() == Some("config");
        self.models.set(if from_config {
            p.models.join(", ")
        } else {
            String::new()
        });
    }

    /// Checks what can be checked here, then builds the body in the config file's shape.
    fn body(&self, ctx: Ctx) -> Result<(String, Value), Vec<(String, String)>> {
        let mut errs = Vec::new();
        let name = self.name.get_untracked().trim().to_owned();
        if name.is_empty() {
            errs.push(("name".into(), ctx.t("err.required").into()));
        } else if !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            errs.push(("name".into(), ctx.t("err.name_chars").into()));
        }
        let url = self.base_url.get_untracked().trim().to_owned();
        if url.is_empty() {
            errs.push(("base_url".into(), ctx.t("err.required").into()));
        } else if !(url.starts_with("http://") || url.starts_with("https://")) {
            errs.push(("base_url".into(), ctx.t("err.url").into()));
        }
        let protocols = self.protocols.get_untracked();
        if protocols.is_empty() {
            errs.push(("protocols".into(), ctx.t("err.protocols").into()));
        }
        let weight = self.weight.get_untracked().trim().parse::<u32>();
        if !matches!(weight, Ok(1..=1000)) {
            errs.push(("weight".into(), ctx.t("err.weight").into()));
        }
        let priority = self.priority.get_untracked().trim().parse::<u32>();
        if !matches!(priority, Ok(0..=100)) {
            errs.push(("priority".into(), ctx.t("err.priority").into()));
        }
        if !errs.is_empty() {
            return Err(errs);
        }
        let mut body = json!({
            "base_url": url,
            "protocols": protocols,
            "weight": weight.unwrap_or(1),
            "priority": priority.unwrap_or(0),
            "enabled": self.enabled.get_untracked(),
        });
        let key = self.api_key.get_untracked().trim().to_owned();
        if !key.is_empty() {
            body["api_key"] = json!(key);
        }
        let models = util::split_list(&self.models.get_untracked());
        if !models.is_empty() {
            body["models"] = json!(models);
        }
        Ok((name, body))
    }
}

#[component]
pub fn Providers() -> impl IntoView {
    let ctx = use_ctx();
    let list = RwSignal::new(Vec::<ProviderView>::new());
    let draft = Draft::new();
    let errors = Errors::new();
    let busy = RwSignal::new(false);
    load_on_tick(ctx, "/providers", move |l: Vec<ProviderView>| list.set(l));
    let save = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let (name, body) = match draft.body(ctx) {
            Ok(x) => x,
            Err(e) => {
                errors.set(e);
                return;
            }
        };
        errors.clear();
        busy.set(true);
        let original = draft.original.get_untracked();
        let rename = draft.editing.get_untracked() && original != name;
        // Fields first, under the stored name (their checks are the likelier to fail), then the
        // rename; the key stays either way (the keychain entry belongs to the provider's id).
        let stored = if rename { original } else { name.clone() };
        spawn_local(async move {
            if let Some(c) = ctx.client() {
                let path = format!("/providers/{}", api::seg(&stored));
                let mut result = api::call::<_, Value>(&c, "PUT", &path, &body).await;
                if result.is_ok() && rename {
                    let path = format!("/providers/{}/rename", api::seg(&stored));
                    result =
                        api::call::<_, Value>(&c, "POST", &path, &json!({ "name": name })).await;
                }
                match result {
                    Ok(_) => {
                        ctx.ok(format!("{} {name}", ctx.t("msg.saved")));
                        draft.reset();
                    }
                    Err(f) => errors.server(&f, FIELDS),
                }
                // Even a half-done save (fields saved, rename refused) shows what is stored.
                ctx.refresh();
            }
            busy.set(false);
        });
    };
    view! {
        <section>
            <h2>{move || ctx.t("nav.providers")}</h2>
            <table class="grid" id="providers">
                <Head cols=&["col.name", "field.base_url", "field.protocols", "field.weight", "field.api_key", "col.models", ""]/>
                <tbody>
                    {move || list.get().into_iter().map(|p| row(ctx, p, draft)).collect_view()}
                </tbody>
            </table>
        </section>
        <section>
            <h2>
                {move || {
                    if draft.editing.get() {
                        format!("{} {}", ctx.t("providers.edit"), draft.name.get())
                    } else {
                        ctx.t("providers.add").to_owned()
                    }
                }}
            </h2>
            <form class="card form" id="provider-form" on:submit=save novalidate=true>
                <Field label="field.name" name="name" errors=errors>
                    <TextInput value=draft.name id="provider-name" placeholder="relay-a"/>
                </Field>
                <Field label="field.base_url" name="base_url" errors=errors hint="hint.base_url">
                    <TextInput value=draft.base_url id="provider-url" placeholder="https://api.example.com"/>
                </Field>
                <Field label="field.protocols" name="protocols" errors=errors>
                    <div class="checks">
                        {PROTOCOLS
                            .into_iter()
                            .map(|p| {
                                view! {
                                    <label class="inline">
                                        <input
                                            type="checkbox"
                                            data-protocol=p
                                            prop:checked=move || draft.protocols.with(|l| l.iter().any(|x| x == p))
                                            on:change=move |ev| {
                                                let on = event_target_checked(&ev);
                                                draft.protocols.update(|l| {
                                                    l.retain(|x| x != p);
                                                    if on {
                                                        l.push(p.to_owned());
                                                    }
                                                });
                                            }
                                        />
                                        {p}
                                    </label>
                                }
                            })
                            .collect_view()}
                    </div>
                </Field>
                <Field label="field.api_key" name="api_key" errors=errors hint="hint.api_key">
                    <input
                        id="provider-key"
                        type="password"
                        autocomplete="new-password"
                        placeholder=move || {
                            let kind = draft.key_kind.get();
                            if draft.editing.get() && kind != "none" && !kind.is_empty() {
                                format!("{} ({kind})", ctx.t("hint.key_kept"))
                            } else {
                                "sk-... / env:NAME".to_owned()
                            }
                        }
                        prop:value=move || draft.api_key.get()
                        on:input=move |ev| draft.api_key.set(event_target_value(&ev))
                    />
                </Field>
                <Field label="field.weight" name="weight" errors=errors>
                    <TextInput value=draft.weight id="provider-weight" kind="number"/>
                </Field>
                <Field label="field.priority" name="priority" errors=errors>
                    <TextInput value=draft.priority id="provider-priority" kind="number"/>
                </Field>
                <Field label="field.models" name="models" errors=errors hint="hint.models">
                    <TextInput value=draft.models id="provider-models" placeholder="gpt-4o, gpt-4o-mini"/>
                </Field>
                <Field label="field.enabled" name="enabled" errors=errors>
                    <CheckBox value=draft.enabled id="provider-enabled"/>
                </Field>
                <FormError errors=errors/>
                <SaveCancel
                    id="provider-save" busy=busy
                    on_cancel=move || {
                        draft.reset();
                        errors.clear();
                    }
                />
            </form>
        </section>
    }
}

fn row(ctx: Ctx, p: ProviderView, draft: Draft) -> impl IntoView {
    let name = p.name.clone();
    let edit_from = p.clone();
    let (n_test, n_del) = (name.clone(), name.clone());
    let test = move |_| {
        let name = n_test.clone();
        spawn_local(async move {
            let Some(c) = ctx.client() else { return };
            let started = js_sys::Date::now();
            let path = format!("/providers/{}/sync", api::seg(&name));
            match api::action::<SyncResponse>(&c, &path).await {
                Ok(r) => {
                    let ms = (js_sys::Date::now() - started).round();
                    ctx.ok(format!(
                        "{name}: {} ({} {}, {ms} ms)",
                        ctx.t("msg.connected"),
                        r.models,
                        ctx.t("col.models")
                    ));
                    ctx.refresh();
                }
                Err(f) => ctx.fail(&f),
            }
        });
    };
    let delete = move |_| {
        let name = n_del.clone();
        let path = format!("/providers/{}", api::seg(&name));
        delete_confirmed(ctx, "confirm.delete", name, path);
    };
    let sync_note = p
        .sync
        .last_error
        .clone()
        .map(|e| view! { <div class="error small">{e}</div> });
    let models_title = p.models.join("\n");
    view! {
        <tr data-provider=name.clone()>
            <td class="mono">
                {name.clone()}
                {(!p.enabled).then(|| view! { <span class="badge disabled">{move || ctx.t("state.disabled")}</span> })}
                {p.paused.then(|| view! { <span class="badge paused">{move || ctx.t("state.paused")}</span> })}
            </td>
            <td class="mono small">{p.base_url.clone()}</td>
            <td>
                {p.protocols.join(", ")}
                {(!p.responses && p.protocols.iter().any(|x| x == "openai"))
                    .then(|| view! { <span class="badge chat-only" title=move || ctx.t("hint.chat_only")>{move || ctx.t("state.chat_only")}</span> })}
            </td>
            <td>{p.weight}</td>
            <td class="small key">{p.key.clone()}</td>
            <td title=models_title>{p.models.len()} {sync_note}</td>
            <td class="actions">
                <button class="edit" on:click=move |_| draft.load(&edit_from)>{move || ctx.t("action.edit")}</button>
                <button class="test" on:click=test>{move || ctx.t("action.test")}</button>
                <PauseButtons name=name.clone() paused=p.paused timed=true/>
                <button class="danger" on:click=delete>{move || ctx.t("action.delete")}</button>
            </td>
        </tr>
    }
}
