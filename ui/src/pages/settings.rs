//! Settings: port, timeouts, cooldowns, retry keywords, sync interval, admin login lockout and
//! session length, the desktop's preferences, and the UI's language.

use leptos::prelude::*;
use leptos::task::spawn_local;
use serde_json::{Map, Value, json};

use crate::api;
use crate::app::{LangSwitch, use_ctx};
use crate::form::{CheckBox, Errors, Field, FormError, TextInput};
use crate::util;

/// (section, key in the section, field id, key in `GET /api/settings`, label, min, max)
type Number = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    u64,
    u64,
);
const NUMBERS: &[Number] = &[
    // 0 is what `--port 0` (any free port) leaves in the settings.
    (
        "server",
        "port",
        "server.port",
        "port",
        "settings.port",
        0,
        65535,
    ),
    (
        "server",
        "request_timeout_s",
        "server.request_timeout_s",
        "request_timeout_s",
        "settings.request_timeout",
        1,
        86_400,
    ),
    (
        "server",
        "header_timeout_s",
        "server.header_timeout_s",
        "header_timeout_s",
        "settings.header_timeout",
        1,
        3600,
    ),
    (
        "server",
        "body_timeout_s",
        "server.body_timeout_s",
        "body_timeout_s",
        "settings.body_timeout",
        1,
        3600,
    ),
    (
        "server",
        "max_connections",
        "server.max_connections",
        "max_connections",
        "settings.max_connections",
        16,
        1_000_000,
    ),
    (
        "server",
        "body_budget_mb",
        "server.body_budget_mb",
        "body_budget_mb",
        "settings.body_budget",
        1,
        65_536,
    ),
    (
        "routing",
        "first_byte_timeout_s",
        "routing.first_byte_timeout_s",
        "first_byte_timeout_s",
        "settings.first_byte_timeout",
        1,
        3600,
    ),
    (
        "routing",
        "stream_idle_timeout_s",
        "routing.stream_idle_timeout_s",
        "stream_idle_timeout_s",
        "settings.stream_idle_timeout",
        1,
        3600,
    ),
    (
        "routing",
        "max_attempts",
        "routing.max_attempts",
        "max_attempts",
        "settings.max_attempts",
        1,
        20,
    ),
    (
        "routing",
        "sync_interval_s",
        "routing.sync_interval_s",
        "sync_interval_s",
        "settings.sync_interval",
        1,
        2_592_000,
    ),
    (
        "routing",
        "probe_interval_s",
        "routing.probe_interval_s",
        "probe_interval_s",
        "settings.probe_interval",
        0,
        86_400,
    ),
    (
        "cooldown",
        "rate_limited",
        "cooldown.rate_limited",
        "cooldown_rate_limited_s",
        "settings.cd_rate_limited",
        0,
        604_800,
    ),
    (
        "cooldown",
        "server_error",
        "cooldown.server_error",
        "cooldown_server_error_s",
        "settings.cd_server_error",
        0,
        604_800,
    ),
    (
        "cooldown",
        "timeout",
        "cooldown.timeout",
        "cooldown_timeout_s",
        "settings.cd_timeout",
        0,
        604_800,
    ),
    (
        "cooldown",
        "network_error",
        "cooldown.network_error",
        "cooldown_network_error_s",
        "settings.cd_network_error",
        0,
        604_800,
    ),
    (
        "cooldown",
        "model_not_found",
        "cooldown.model_not_found",
        "cooldown_model_not_found_s",
        "settings.cd_model_not_found",
        0,
        604_800,
    ),
    (
        "admin",
        "max_failed_logins",
        "admin.max_failed_logins",
        "max_failed_logins",
        "settings.max_failed_logins",
        1,
        1000,
    ),
    (
        "admin",
        "lockout_s",
        "admin.lockout_s",
        "lockout_s",
        "settings.lockout",
        1,
        604_800,
    ),
    (
        "admin",
        "session_ttl_s",
        "admin.session_ttl_s",
        "session_ttl_s",
        "settings.session_ttl",
        10,
        2_592_000,
    ),
];

fn empty_body() -> Value {
    json!({ "server": {}, "routing": {}, "cooldown": {}, "app": {}, "admin": {} })
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
    let values: Vec<RwSignal<String>> = NUMBERS
        .iter()
        .map(|_| RwSignal::new(String::new()))
        .collect();
    let values = StoredValue::new(values);
    let keywords = RwSignal::new(String::new());
    let origins = RwSignal::new(String::new());
    let notifications = RwSignal::new(true);
    let start_at_login = RwSignal::new(false);
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
                    // `try_`: the page may be gone by the time the answer comes.
                    values.try_with_value(|v| {
                        for (i, (_, _, _, flat, ..)) in NUMBERS.iter().enumerate() {
                            let text = s.get(*flat).map(|x| x.to_string()).unwrap_or_default();
                            v[i].set(text);
                        }
                    });
                    loaded_port.set(s.get("port").and_then(Value::as_u64));
                    let mut was = empty_body();
                    for (section, key, _, flat, ..) in NUMBERS {
                        if let Some(v) = s.get(*flat) {
                            was[*section][*key] = v.clone();
                        }
                    }
                    for (section, key) in [
                        ("routing", "retry_on_keywords"),
                        ("server", "allowed_origins"),
                        ("app", "notifications"),
                        ("app", "start_at_login"),
                    ] {
                        if let Some(v) = s.get(key) {
                            was[section][key] = v.clone();
                        }
                    }
                    loaded.try_update_value(|l| *l = was);
                    let kw: Vec<String> = s
                        .get("retry_on_keywords")
                        .and_then(|k| serde_json::from_value(k.clone()).ok())
                        .unwrap_or_default();
                    keywords.set(kw.join(", "));
                    let allowed: Vec<String> = s
                        .get("allowed_origins")
                        .and_then(|k| serde_json::from_value(k.clone()).ok())
                        .unwrap_or_default();
                    origins.set(allowed.join(", "));
                    notifications.set(
                        s.get("notifications")
                            .and_then(Value::as_bool)
                            .unwrap_or(true),
                    );
                    start_at_login.set(
                        s.get("start_at_login")
                            .and_then(Value::as_bool)
                            .unwrap_or(false),
                    );
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
        values.with_value(|v| {
            for (i, (section, key, field, _, _, min, max)) in NUMBERS.iter().enumerate() {
                match v[i].get_untracked().trim().parse::<u64>() {
                    Ok(n) if (*min..=*max).contains(&n) => body[*section][*key] = json!(n),
                    _ => errs.push((
                        (*field).to_owned(),
                        format!("{} {min}–{max}", ctx.t("err.range")),
                    )),
                }
            }
        });
        body["routing"]["retry_on_keywords"] = json!(util::split_list(&keywords.get_untracked()));
        body["server"]["allowed_origins"] = json!(util::split_list(&origins.get_untracked()));
        body["app"]["notifications"] = json!(notifications.get_untracked());
        body["app"]["start_at_login"] = json!(start_at_login.get_untracked());
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
                    let mut known: Vec<&str> = NUMBERS.iter().map(|n| n.2).collect();
                    known.extend(["routing.retry_on_keywords", "server.allowed_origins"]);
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
                {NUMBERS
                    .iter()
                    .enumerate()
                    .map(|(i, (_, _, name, _, label, ..))| {
                        let (name, label) = (*name, *label);
                        let value = values.with_value(|v| v[i]);
                        view! {
                            <Field label=label name=name errors=errors>
                                <TextInput value=value kind="number" id=name/>
                            </Field>
                        }
                    })
                    .collect_view()}
                <Field label="settings.keywords" name="routing.retry_on_keywords" errors=errors hint="hint.keywords">
                    <TextInput value=keywords id="keywords" placeholder="overloaded, try again"/>
                </Field>
                <Field label="settings.allowed_origins" name="server.allowed_origins" errors=errors hint="hint.allowed_origins">
                    <TextInput value=origins id="allowed-origins" placeholder="https://chat.example"/>
                </Field>
                <Field label="settings.notifications" name="app.notifications" errors=errors>
                    <CheckBox value=notifications id="notifications"/>
                </Field>
                <Field label="settings.start_at_login" name="app.start_at_login" errors=errors>
                    <CheckBox value=start_at_login id="start-at-login"/>
                </Field>
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
