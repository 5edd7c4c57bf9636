//! Unified models: a rule editor for every rule type, with a live preview of the resolved
//! (provider, model) pairs before saving, and default and override parameters.

use leptos::prelude::*;
use leptos::task::spawn_local;
use serde_json::{Map, Value, json};
use switchboard_api::{ModelPreviewRequest, ModelPreviewResponse, ModelView, RuleView};

use crate::api;
use crate::app::{Ctx, delete_confirmed, load_on_tick, use_ctx};
use crate::form::{CheckBox, Errors, Field, FormError, Head, SaveCancel, TextInput};
use crate::util;

const RULE_TYPES: [&str; 5] = ["exact", "prefix", "keyword", "regex", "exclude_keyword"];
const PROTOCOLS: [&str; 4] = ["", "openai", "anthropic", "gemini"];
/// (value, label key) per strategy.
pub(crate) const STRATEGIES: [(&str, &str); 7] = [
    ("weighted", "strategy.weighted"),
    ("priority", "strategy.priority"),
    ("round_robin", "strategy.round_robin"),
    ("latency", "strategy.latency"),
    ("cost", "strategy.cost"),
    ("least_busy", "strategy.least_busy"),
    ("sort", "strategy.sort"),
];
const FIELDS: &[&str] = &[
    "name",
    "rules",
    "include",
    "exclude_providers",
    "protocol",
    "default_params",
    "override_params",
    "probe",
    "strategy",
    "sort",
    "group",
    "tiers",
];

#[derive(Clone, Copy)]
struct Draft {
    editing: RwSignal<bool>,
    name: RwSignal<String>,
    /// (type, value) per rule; a signal per rule keeps typing from re-rendering the list.
    rules: RwSignal<Vec<(RwSignal<String>, RwSignal<String>)>>,
    include: RwSignal<String>,
    exclude: RwSignal<String>,
    protocol: RwSignal<String>,
    defaults: RwSignal<String>,
    overrides: RwSignal<String>,
    probe: RwSignal<bool>,
    strategy: RwSignal<String>,
    /// The sort strategy's factors: `cost, latency:0.5` (a factor, and its weight).
    sort: RwSignal<String>,
    /// A tiered model's `{"classifier": ..., "tiers": [...]}`, as JSON text.
    tiers: RwSignal<String>,
    /// The model being edited had tiers: an emptied field takes them away.
    had_tiers: RwSignal<bool>,
    /// A group's filters (`{"vision": true, "max_price": 5}`), as JSON text.
    group: RwSignal<String>,
    had_group: RwSignal<bool>,
}

fn rule(kind: &str, value: &str) -> (RwSignal<String>, RwSignal<String>) {
    (
        RwSignal::new(kind.to_owned()),
        RwSignal::new(value.to_owned()),
    )
}

fn params_text(m: &Map<String, Value>) -> String {
    if m.is_empty() {
        String::new()
    } else {
        serde_json::to_string_pretty(m).unwrap_or_default()
    }
}

impl Draft {
    fn new() -> Self {
        Self {
            editing: RwSignal::new(false),
            name: RwSignal::new(String::new()),
            rules: RwSignal::new(vec![rule("exact", "")]),
            include: RwSignal::new(String::new()),
            exclude: RwSignal::new(String::new()),
            protocol: RwSignal::new(String::new()),
            defaults: RwSignal::new(String::new()),
            overrides: RwSignal::new(String::new()),
            probe: RwSignal::new(true),
            strategy: RwSignal::new("weighted".into()),
            sort: RwSignal::new(String::new()),
            tiers: RwSignal::new(String::new()),
            had_tiers: RwSignal::new(false),
            group: RwSignal::new(String::new()),
            had_group: RwSignal::new(false),
        }
    }

    fn reset(&self) {
        self.editing.set(false);
        self.name.set(String::new());
        self.rules.set(vec![rule("exact", "")]);
        self.include.set(String::new());
        self.exclude.set(String::new());
        self.protocol.set(String::new());
        self.defaults.set(String::new());
        self.overrides.set(String::new());
        self.probe.set(true);
        self.strategy.set("weighted".into());
        self.sort.set(String::new());
        self.tiers.set(String::new());
        self.had_tiers.set(false);
        self.group.set(String::new());
        self.had_group.set(false);
    }

    fn load(&self, m: &ModelView) {
        self.editing.set(true);
        self.name.set(m.name.clone());
        self.rules
            .set(m.rules.iter().map(|r| rule(&r.kind, &r.value)).collect());
        self.include.set(m.include.join("\n"));
        self.exclude.set(m.exclude_providers.join(", "));
        self.protocol.set(m.protocol.clone().unwrap_or_default());
        self.defaults.set(params_text(&m.default_params));
        self.overrides.set(params_text(&m.override_params));
        self.probe.set(m.probe);
        self.strategy.set(m.strategy.clone());
        self.sort.set(
            m.sort
                .iter()
                .map(|k| match k.weight {
                    Some(w) if w != 1.0 => format!("{}:{w}", k.by.as_str()),
                    _ => k.by.as_str().to_owned(),
                })
                .collect::<Vec<_>>()
                .join(", "),
        );
        self.had_group.set(m.group.is_some());
        self.group.set(
            m.group
                .as_ref()
                .and_then(|g| serde_json::to_string_pretty(g).ok())
                .unwrap_or_default(),
        );
        self.had_tiers.set(!m.tiers.is_empty());
        self.tiers.set(if m.tiers.is_empty() {
            String::new()
        } else {
            serde_json::to_string_pretty(&json!({
                "classifier": m.classifier.clone().unwrap_or_default(),
                "tiers": m.tiers,
            }))
            .unwrap_or_default()
        });
    }

    /// Rules with a value; tracked, so the preview follows every keystroke.
    fn rule_views(&self) -> Vec<RuleView> {
        self.rules
            .get()
            .iter()
            .map(|(k, v)| RuleView {
                kind: k.get(),
                value: v.get(),
            })
            .filter(|r| !r.value.trim().is_empty())
            .collect()
    }

    fn preview_request(&self) -> ModelPreviewRequest {
        ModelPreviewRequest {
            name: self.name.get().trim().to_owned(),
            rules: self.rule_views(),
            include: util::split_list(&self.include.get()),
            exclude_providers: util::split_list(&self.exclude.get()),
            group: serde_json::from_str(&self.group.get()).ok(),
        }
    }

    fn body(&self, ctx: Ctx) -> Result<(String, Value), Vec<(String, String)>> {
        let mut errs = Vec::new();
        let name = self.name.get_untracked().trim().to_owned();
        if name.is_empty() {
            errs.push(("name".into(), ctx.t("err.required").into()));
        }
        let rules = self.rules.get_untracked();
        let rules: Vec<Value> = rules
            .iter()
            .map(|(k, v)| (k.get_untracked(), v.get_untracked()))
            .filter(|(_, v)| !v.trim().is_empty())
            .map(|(k, v)| json!({ "type": k, "value": v.trim() }))
            .collect();
        let include = util::split_list(&self.include.get_untracked());
        if let Some(bad) = include.iter().find(|p| !p.contains('/')) {
            errs.push(("include".into(), format!("{}: {bad}", ctx.t("err.include"))));
        }
        let mut parsed = Vec::new();
        for (field, text) in [
            ("default_params", self.defaults.get_untracked()),
            ("override_params", self.overrides.get_untracked()),
        ] {
            if text.trim().is_empty() {
                parsed.push(None);
                continue;
            }
            match serde_json::from_str::<Value>(&text) {
                Ok(Value::Object(o)) => parsed.push(Some(Value::Object(o))),
                _ => {
                    errs.push((field.into(), ctx.t("err.json_object").into()));
                    parsed.push(None);
                }
            }
        }
        let group_text = self.group.get_untracked();
        let group = if group_text.trim().is_empty() {
            self.had_group.get_untracked().then(|| json!({}))
        } else {
            match serde_json::from_str::<Value>(&group_text) {
                Ok(v @ Value::Object(_)) => Some(v),
                _ => {
                    errs.push(("group".into(), ctx.t("err.json_object").into()));
                    None
                }
            }
        };
        let tiers_text = self.tiers.get_untracked();
        let tiers = if tiers_text.trim().is_empty() {
            self.had_tiers.get_untracked().then(|| json!({"tiers": []}))
        } else {
            match serde_json::from_str::<Value>(&tiers_text) {
                Ok(Value::Object(o)) if o.get("tiers").is_some_and(Value::is_array) => {
                    Some(Value::Object(o))
                }
                _ => {
                    errs.push(("tiers".into(), ctx.t("err.tiers").into()));
                    None
                }
            }
        };
        if !errs.is_empty() {
            return Err(errs);
        }
        let mut body = json!({
            "rules": rules,
            "include": include,
            "exclude_providers": util::split_list(&self.exclude.get_untracked()),
            "probe": self.probe.get_untracked(),
            "strategy": self.strategy.get_untracked(),
        });
        let protocol = self.protocol.get_untracked();
        if !protocol.is_empty() {
            body["protocol"] = json!(protocol);
        }
        if let Some(Some(d)) = parsed.first() {
            body["default_params"] = d.clone();
        }
        if let Some(Some(o)) = parsed.get(1) {
            body["override_params"] = o.clone();
        }
        if body["strategy"] == "sort" {
            let keys: Vec<Value> = util::split_list(&self.sort.get_untracked())
                .iter()
                .map(|f| match f.split_once(':') {
                    Some((by, w)) => {
                        json!({"by": by.trim(), "weight": w.trim().parse::<f64>().unwrap_or(0.0)})
                    }
                    None => json!({"by": f.trim()}),
                })
                .collect();
            body["sort"] = json!(keys);
        }
        if let Some(g) = group {
            body["group"] = g;
        }
        if let Some(Value::Object(t)) = tiers {
            for (k, v) in t {
                body[k] = v;
            }
        }
        Ok((name, body))
    }
}

#[component]
pub fn Models() -> impl IntoView {
    let ctx = use_ctx();
    let list = RwSignal::new(Vec::<ModelView>::new());
    let draft = Draft::new();
    let errors = Errors::new();
    let preview = RwSignal::new(None::<Result<ModelPreviewResponse, String>>);
    let generation = StoredValue::new(0u64);
    load_on_tick(ctx, "/models", move |l: Vec<ModelView>| list.set(l));
    let groups = RwSignal::new(Vec::<switchboard_api::groups::GroupView>::new());
    load_on_tick(ctx, "/groups", move |l| groups.set(l));
    // Live preview: re-run shortly after the last change; answers to older drafts are dropped.
    Effect::new(move |_| {
        let req = draft.preview_request();
        generation.update_value(|g| *g += 1);
        let mine = generation.get_value();
        if req.rules.is_empty() && req.include.is_empty() && req.group.is_none() {
            preview.set(None);
            return;
        }
        spawn_local(async move {
            util::sleep_ms(250).await;
            // `try_`: the page may be gone by now (the user moved on).
            if generation.try_get_value() != Some(mine) {
                return;
            }
            let Some(c) = ctx.client() else { return };
            let result = api::call::<_, ModelPreviewResponse>(&c, "POST", "/models/preview", &req)
                .await
                .map_err(|f| f.message);
            if generation.try_get_value() == Some(mine) {
                preview.set(Some(result));
            }
        });
    });
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
        spawn_local(async move {
            let Some(c) = ctx.client() else { return };
            let path = format!("/models/{}", api::seg(&name));
            match api::call::<_, Value>(&c, "PUT", &path, &body).await {
                Ok(_) => {
                    ctx.ok(format!("{} {name}", ctx.t("msg.saved")));
                    draft.reset();
                    ctx.refresh();
                }
                Err(f) => errors.server(&f, FIELDS),
            }
        });
    };
    let delete = move |name: String| {
        let path = format!("/models/{}", api::seg(&name));
        delete_confirmed(ctx, "confirm.delete", name, path);
    };
    view! {
        <section>
            <h2>{move || ctx.t("nav.models")}</h2>
            <table class="grid" id="models">
                <Head cols=&["col.name", "field.rules", "field.protocol", ""]/>
                <tbody>
                    {move || {
                        list.get()
                            .into_iter()
                            .map(|m| {
                                let n = m.name.clone();
                                let from = m.clone();
                                let rules = m
                                    .rules
                                    .iter()
                                    .map(|r| format!("{}: {}", r.kind, r.value))
                                    .chain(m.include.iter().map(|i| format!("include: {i}")))
                                    .chain(m.tiers.iter().map(|t| format!("tier {} → {}", t.name, t.target)))
                                    .chain(m.group.iter().map(|g| format!("group: {}", serde_json::to_string(g).unwrap_or_default())))
                                    .collect::<Vec<_>>()
                                    .join("; ");
                                view! {
                                    <tr data-model=m.name.clone()>
                                        <td class="mono">{m.name.clone()}</td>
                                        <td class="mono small">{rules}</td>
                                        <td>{m.protocol.clone().unwrap_or_default()}</td>
                                        <td class="actions">
                                            <button on:click=move |_| draft.load(&from)>
                                                {move || ctx.t("action.edit")}
                                            </button>
                                            <button class="danger" on:click=move |_| delete(n.clone())>
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
            <h2>{move || ctx.t("models.groups")}</h2>
            <p class="muted">{move || ctx.t("models.groups_intro")}</p>
            <table class="grid" id="groups">
                <Head cols=&["col.name", "field.strategy", "models.members", ""]/>
                <tbody>
                    {move || {
                        groups
                            .get()
                            .into_iter()
                            .map(|g| {
                                let first = g.candidates.iter().take(5).cloned().collect::<Vec<_>>().join(", ");
                                let more = if g.count > 5 { " …" } else { "" };
                                view! {
                                    <tr data-group=g.name.clone()>
                                        <td class="mono">{g.name.clone()}</td>
                                        <td>{g.strategy.clone()}</td>
                                        <td class="small members">{format!("{} · {first}{more}", g.count)}</td>
                                        <td class="small">
                                            {move || ctx.t(if g.ready_made { "models.ready_made" } else { "models.yours" })}
                                        </td>
                                    </tr>
                                }
                            })
                            .collect_view()
                    }}
                </tbody>
            </table>
        </section>
        <section class="split">
            <form class="card form" id="model-form" on:submit=save novalidate=true>
                <h2>
                    {move || {
                        if draft.editing.get() {
                            format!("{} {}", ctx.t("models.edit"), draft.name.get())
                        } else {
                            ctx.t("models.add").to_owned()
                        }
                    }}
                </h2>
                <Field label="field.name" name="name" errors=errors hint="hint.model_name">
                    <TextInput value=draft.name id="model-name" placeholder="claude-opus-4-5" disabled=draft.editing/>
                </Field>
                <Field label="field.rules" name="rules" errors=errors hint="hint.rules">
                    <div class="rules">
                        {move || {
                            draft
                                .rules
                                .get()
                                .into_iter()
                                .enumerate()
                                .map(|(i, (kind, value))| {
                                    view! {
                                        <div class="rule" data-rule=i>
                                            <select
                                                class="rule-type"
                                                on:change=move |ev| kind.set(event_target_value(&ev))
                                            >
                                                {RULE_TYPES
                                                    .into_iter()
                                                    .map(|t| {
                                                        view! {
                                                            <option value=t selected=move || kind.get() == t>
                                                                {t}
                                                            </option>
                                                        }
                                                    })
                                                    .collect_view()}
                                            </select>
                                            <TextInput value=value placeholder="claude-opus-4"/>
                                            <button
                                                type="button"
                                                class="icon"
                                                title="remove"
                                                on:click=move |_| draft.rules.update(|r| {
                                                    if i < r.len() {
                                                        r.remove(i);
                                                    }
                                                })
                                            >
                                                "×"
                                            </button>
                                        </div>
                                    }
                                })
                                .collect_view()
                        }}
                        <button
                            type="button"
                            id="add-rule"
                            on:click=move |_| draft.rules.update(|r| r.push(rule("prefix", "")))
                        >
                            {move || ctx.t("models.add_rule")}
                        </button>
                    </div>
                </Field>
                <Field label="field.include" name="include" errors=errors hint="hint.include">
                    <textarea
                        rows="2"
                        prop:value=move || draft.include.get()
                        on:input=move |ev| draft.include.set(event_target_value(&ev))
                    ></textarea>
                </Field>
                <Field label="field.exclude_providers" name="exclude_providers" errors=errors>
                    <TextInput value=draft.exclude placeholder="relay-b"/>
                </Field>
                <Field label="field.protocol" name="protocol" errors=errors>
                    <select on:change=move |ev| draft.protocol.set(event_target_value(&ev))>
                        {PROTOCOLS
                            .into_iter()
                            .map(|p| {
                                view! {
                                    <option value=p selected=move || draft.protocol.get() == p>
                                        {if p.is_empty() { "auto" } else { p }}
                                    </option>
                                }
                            })
                            .collect_view()}
                    </select>
                </Field>
                <Field label="field.default_params" name="default_params" errors=errors hint="hint.params">
                    <textarea
                        rows="3"
                        class="mono"
                        placeholder="{\"temperature\": 0.7}"
                        prop:value=move || draft.defaults.get()
                        on:input=move |ev| draft.defaults.set(event_target_value(&ev))
                    ></textarea>
                </Field>
                <Field label="field.sort" name="sort" errors=errors hint="hint.sort">
                    <TextInput value=draft.sort id="model-sort" placeholder="cost, latency:0.5"/>
                </Field>
                <Field label="field.group" name="group" errors=errors hint="hint.group">
                    <textarea
                        rows="2"
                        class="mono"
                        id="model-group"
                        placeholder="{\"vision\": true, \"max_price\": 5}"
                        prop:value=move || draft.group.get()
                        on:input=move |ev| draft.group.set(event_target_value(&ev))
                    ></textarea>
                </Field>
                <Field label="field.tiers" name="tiers" errors=errors hint="hint.tiers">
                    <textarea
                        rows="4"
                        class="mono"
                        id="model-tiers"
                        placeholder="{\"tiers\": [{\"name\": \"T1\", \"target\": \"cheap\", \"small\": true}, {\"name\": \"T3\", \"target\": \"strong\", \"keywords\": [\"refactor\"]}]}"
                        prop:value=move || draft.tiers.get()
                        on:input=move |ev| draft.tiers.set(event_target_value(&ev))
                    ></textarea>
                </Field>
                <Field label="field.override_params" name="override_params" errors=errors>
                    <textarea
                        rows="3"
                        class="mono"
                        placeholder="{\"max_tokens\": 4096}"
                        prop:value=move || draft.overrides.get()
                        on:input=move |ev| draft.overrides.set(event_target_value(&ev))
                    ></textarea>
                </Field>
                <Field label="field.probe" name="probe" errors=errors>
                    <CheckBox value=draft.probe/>
                </Field>
                <Field label="field.strategy" name="strategy" errors=errors>
                    <select id="model-strategy" on:change=move |ev| draft.strategy.set(event_target_value(&ev))>
                        {STRATEGIES
                            .into_iter()
                            .map(|(s, label)| {
                                view! {
                                    <option value=s selected=move || draft.strategy.get() == s>
                                        {move || ctx.t(label)}
                                    </option>
                                }
                            })
                            .collect_view()}
                    </select>
                </Field>
                <FormError errors=errors/>
                <SaveCancel
                    id="model-save"
                    on_cancel=move || {
                        draft.reset();
                        errors.clear();
                    }
                />
            </form>
            <div class="card preview" id="preview">
                <h3>{move || ctx.t("models.preview")}</h3>
                {move || match preview.get() {
                    None => view! { <p class="muted">{move || ctx.t("models.preview_empty")}</p> }.into_any(),
                    Some(Err(message)) => view! { <p class="error" id="preview-error">{message}</p> }.into_any(),
                    Some(Ok(p)) => {
                        let count = p.candidates.len();
                        view! {
                            <p class="muted" id="preview-count">
                                {move || format!("{count} {}", ctx.t("models.pairs"))}
                            </p>
                            <ul class="pairs">
                                {p
                                    .candidates
                                    .into_iter()
                                    .map(|c| view! { <li class="mono">{format!("{}/{}", c.provider, c.model)}</li> })
                                    .collect_view()}
                            </ul>
                            {p
                                .warnings
                                .into_iter()
                                .map(|w| view! { <p class="warn">{w}</p> })
                                .collect_view()}
                        }
                            .into_any()
                    }
                }}
            </div>
        </section>
        <super::try_request::TryRequest/>
        <super::whatif::WhatIfPanel/>
    }
}
