//! Settings: every setting the sections define (`switchboard_api::settings`), as a form built
//! from their definitions, and the UI's language.

use leptos::prelude::*;
use leptos::task::spawn_local;
use serde_json::{Map, Value, json};

use switchboard_api::settings::{self, Kind, SettingInfo};

use crate::api;
use crate::app::{LangSwitch, use_ctx};
use crate::form::{CheckBox, Errors, Field, FormError, TextInput};
use crate::i18n;
use crate::util;

/// The settings the form shows: all but the address to listen on, which decides who can reach
/// the gateway and so stays with the config file and `--host`.
fn shown() -> impl Iterator<Item = &'static SettingInfo> {
    settings::fields().filter(|f| f.name != "host")
}

/// A setting's label and hint, by its name (`settings.<name>`, `hint.<name>`).
fn label(f: &SettingInfo) -> &'static str {
    i18n::known_key(&format!("settings.{}", f.name)).unwrap_or(f.name)
}

fn hint(f: &SettingInfo) -> Option<&'static str> {
    i18n::known_key(&format!("hint.{}", f.name))
}

fn placeholder(f: &SettingInfo) -> &'static str {
    match f.name {
        "retry_on_keywords" => "overloaded, try again",
        "allowed_origins" => "https://chat.example",
        "default_params" => r#"{"max_tokens": 4096}"#,
        _ => "",
    }
}

/// A form field's state: text for numbers, words and lists, a box for a flag.
#[derive(Clone, Copy)]
enum Input {
    Text(RwSignal<String>),
    Flag(RwSignal<bool>),
}

impl Input {
    fn new(kind: Kind) -> Self {
        match kind {
            Kind::Flag => Input::Flag(RwSignal::new(false)),
            _ => Input::Text(RwSignal::new(String::new())),
        }
    }

    /// Shows the value `GET /api/settings` gave.
    fn show(self, v: &Value) {
        match self {
            Input::Flag(b) => b.set(v.as_bool().unwrap_or(false)),
            Input::Text(t) => t.set(match v {
                Value::String(s) => s.clone(),
                Value::Array(items) => items
                    .iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(", "),
                other => other.to_string(),
            }),
        }
    }

    /// The value to send, or why it cannot be sent.
    fn read(self, ctx: crate::app::Ctx, kind: Kind) -> Result<Value, String> {
        match (self, kind) {
            (Input::Flag(b), _) => Ok(json!(b.get_untracked())),
            (Input::Text(t), Kind::Whole { min, max }) => {
                match t.get_untracked().trim().parse::<u64>() {
                    Ok(n) if (min..=max).contains(&n) => Ok(json!(n)),
                    _ => Err(format!("{} {min}–{max}", ctx.t("err.range"))),
                }
            }
            (Input::Text(t), Kind::List) => Ok(json!(util::split_list(&t.get_untracked()))),
            (Input::Text(t), Kind::Object) => {
                let text = t.get_untracked();
                if text.trim().is_empty() {
                    return Ok(json!({}));
                }
                match serde_json::from_str::<Value>(&text) {
                    Ok(v @ Value::Object(_)) => Ok(v),
                    _ => Err(ctx.t("err.json_object").to_owned()),
                }
            }
            (Input::Text(t), _) => Ok(json!(t.get_untracked().trim())),
        }
    }
}

fn empty_body() -> Value {
    Value::Object(
        settings::SECTIONS
            .iter()
            .map(|(name, _)| ((*name).to_owned(), json!({})))
            .collect(),
    )
}

/// Leaves in `body` only the fields whose value differs from what the page loaded.
fn unchanged_out(body: &mut Value, was: &Value) {
    if let Some(sections) = body.as_object_mut() {
        for (section, fields) in sections.iter_mut() {
            if let Some(fields) = fields.as_object_mut() {
                fields.retain(|key, v| was[section.as_str()][key.as_str()] != *v);
            }
        }
    }
}

#[component]
pub fn SettingsPage() -> impl IntoView {
    let ctx = use_ctx();
    let inputs: Vec<(&'static SettingInfo, Input)> =
        shown().map(|f| (f, Input::new(f.kind))).collect();
    let inputs = StoredValue::new(inputs);
    let loaded_port = RwSignal::new(None::<u64>);
    // What the page showed, in the body's shape: only what the user changed is sent, so a value
    // in force only for this run (`--port`, `--host`) is never written to the settings.
    let loaded = StoredValue::new(Value::Null);
    let errors = Errors::new();
    let load = move || {
        spawn_local(async move {
            let Some(c) = ctx.client() else { return };
            match api::get::<Map<String, Value>>(&c, "/settings").await {
                Ok(s) => {
                    let mut was = empty_body();
                    // `try_`: the page may be gone by the time the answer comes.
                    inputs.try_with_value(|inputs| {
                        for (f, input) in inputs {
                            if let Some(v) = s.get(f.name) {
                                input.show(v);
                                was[f.section][f.key] = v.clone();
                            }
                        }
                    });
                    loaded_port.set(s.get("port").and_then(Value::as_u64));
                    loaded.try_update_value(|l| *l = was);
                }
                Err(f) => ctx.fail(&f),
            }
        });
    };
    load();
    let save = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let mut errs = Vec::new();
        let mut body = empty_body();
        inputs.with_value(|inputs| {
            for (f, input) in inputs {
                match input.read(ctx, f.kind) {
                    Ok(v) => body[f.section][f.key] = v,
                    Err(e) => errs.push((f.id.to_owned(), e)),
                }
            }
        });
        if !errs.is_empty() {
            errors.set(errs);
            return;
        }
        errors.clear();
        loaded.with_value(|was| unchanged_out(&mut body, was));
        let port_changed = body["server"]
            .get("port")
            .is_some_and(|p| p.as_u64() != loaded_port.get_untracked());
        spawn_local(async move {
            let Some(c) = ctx.client() else { return };
            match api::call::<_, Value>(&c, "PUT", "/settings", &body).await {
                Ok(_) => {
                    ctx.ok(if port_changed {
                        ctx.t("settings.saved_restart")
                    } else {
                        ctx.t("msg.saved")
                    });
                    load();
                }
                Err(f) => {
                    let known: Vec<&str> = shown().map(|f| f.id).collect();
                    errors.server(&f, &known);
                }
            }
        });
    };
    // The configuration as a file to keep or move; the server leaves every secret out.
    let export = move |_| {
        spawn_local(async move {
            // The desktop webview drops blob downloads: the shell saves the file itself.
            if api::in_desktop() {
                match api::invoke::<String>("save_export", json!({})).await {
                    Ok(path) => ctx.ok(format!("{} {path}", ctx.t("msg.exported_to"))),
                    Err(f) => ctx.fail(&f),
                }
                return;
            }
            let Some(c) = ctx.client() else { return };
            match api::text(&c, "/export").await {
                Ok(text) => {
                    if let Err(e) = util::download("switchboard.toml", "application/toml", &text) {
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
    view! {
        <section>
            <h2>{move || ctx.t("nav.settings")}</h2>
            <form class="card form columns" id="settings-form" on:submit=save novalidate=true>
                {inputs
                    .get_value()
                    .into_iter()
                    .map(|(f, input)| {
                        let control = match input {
                            Input::Flag(value) => view! { <CheckBox value=value id=f.id/> }.into_any(),
                            Input::Text(value) => {
                                let kind = if matches!(f.kind, Kind::Whole { .. }) { "number" } else { "text" };
                                view! {
                                    <TextInput value=value kind=kind id=f.id placeholder=placeholder(f)/>
                                }
                                .into_any()
                            }
                        };
                        match hint(f) {
                            Some(h) => view! {
                                <Field label=label(f) name=f.id errors=errors hint=h>{control}</Field>
                            }
                            .into_any(),
                            None => view! {
                                <Field label=label(f) name=f.id errors=errors>{control}</Field>
                            }
                            .into_any(),
                        }
                    })
                    .collect_view()}
                <label class="field">
                    <span class="label">{move || ctx.t("settings.language")}</span>
                    <LangSwitch/>
                </label>
                <FormError errors=errors/>
                <div class="row">
                    <button type="submit" class="primary" id="settings-save">{move || ctx.t("action.save")}</button>
                    <button type="button" id="settings-export" title=move || ctx.t("hint.export") on:click=export>
                        {move || ctx.t("action.export")}
                    </button>
                </div>
            </form>
        </section>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_setting_shown_has_a_label_in_both_languages() {
        let unlabelled: Vec<&str> = shown()
            .filter(|f| label(f) == f.name)
            .map(|f| f.name)
            .collect();
        assert!(
            unlabelled.is_empty(),
            "no settings.<name> for {unlabelled:?}"
        );
        assert!(shown().any(|f| f.id == "routing.first_byte_timeout_s"));
        assert!(!shown().any(|f| f.name == "host"));
    }

    #[test]
    fn only_changed_fields_are_sent() {
        let was = json!({"server": {"port": 0, "request_timeout_s": 120}, "routing": {"retry_on_keywords": []},
            "cooldown": {}, "app": {"notifications": true}, "admin": {"session_ttl_s": 43200}});
        let mut body = json!({"server": {"port": 0, "request_timeout_s": 60}, "routing": {"retry_on_keywords": []},
            "cooldown": {}, "app": {"notifications": false}, "admin": {"session_ttl_s": 43200}});
        unchanged_out(&mut body, &was);
        assert_eq!(
            body,
            json!({"server": {"request_timeout_s": 60}, "routing": {}, "cooldown": {},
                "app": {"notifications": false}, "admin": {}})
        );
    }
}
