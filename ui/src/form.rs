//! Form plumbing: per-field error messages, filled by local checks before sending and by the
//! server's 422 (which names the field) after.

use leptos::prelude::*;

use crate::api::Failure;
use crate::app::use_ctx;

/// Field name -> message. `_` holds a message that names no field.
#[derive(Clone, Copy)]
pub struct Errors(pub RwSignal<Vec<(String, String)>>);

impl Errors {
    pub fn new() -> Self {
        Self(RwSignal::new(Vec::new()))
    }

    pub fn clear(&self) {
        self.0.set(Vec::new());
    }

    pub fn set(&self, list: Vec<(String, String)>) {
        self.0.set(list);
    }

    pub fn get(&self, field: &str) -> Option<String> {
        self.0
            .with(|l| l.iter().find(|(f, _)| f == field).map(|(_, m)| m.clone()))
    }

    /// Puts a server error beside the field it names (`rules[1]: invalid regex` goes to
    /// `rules[1]`, and to `rules` when no such field is shown), else in the form's footer.
    pub fn server(&self, f: &Failure, known: &[&str]) {
        let field = f.field().map(str::to_owned).and_then(|name| {
            if known.contains(&name.as_str()) {
                return Some(name);
            }
            let base = name.split(['[', '.']).next().unwrap_or("");
            known.contains(&base).then(|| base.to_owned())
        });
        let message = match (&field, f.message.split_once(": ")) {
            (Some(_), Some((_, rest))) => rest.to_owned(),
            _ => f.message.clone(),
        };
        self.0
            .set(vec![(field.unwrap_or_else(|| "_".into()), message)]);
    }
}

#[component]
pub fn Field(
    label: &'static str,
    name: &'static str,
    errors: Errors,
    #[prop(optional)] hint: Option<&'static str>,
    children: Children,
) -> impl IntoView {
    let ctx = use_ctx();
    view! {
        <label class="field" class:invalid=move || errors.get(name).is_some() data-field=name>
            <span class="label">{move || ctx.t(label)}</span>
            {children()}
            {hint.map(|h| view! { <span class="hint">{move || ctx.t(h)}</span> })}
            <span class="error">{move || errors.get(name)}</span>
        </label>
    }
}

/// The form-wide error (one that names no field).
#[component]
pub fn FormError(errors: Errors) -> impl IntoView {
    view! { <p class="error form-error">{move || errors.get("_")}</p> }
}

/// A text input bound to a signal.
#[component]
pub fn TextInput(
    value: RwSignal<String>,
    #[prop(optional)] id: &'static str,
    #[prop(optional)] placeholder: &'static str,
    #[prop(optional)] kind: Option<&'static str>,
    #[prop(optional, into)] disabled: Signal<bool>,
) -> impl IntoView {
    view! {
        <input
            id=id
            type=kind.unwrap_or("text")
            placeholder=placeholder
            autocomplete="off"
            disabled=move || disabled.get()
            prop:value=move || value.get()
            on:input=move |ev| value.set(event_target_value(&ev))
        />
    }
}

#[component]
pub fn CheckBox(value: RwSignal<bool>, #[prop(optional)] id: &'static str) -> impl IntoView {
    view! {
        <input
            id=id
            type="checkbox"
            prop:checked=move || value.get()
            on:change=move |ev| value.set(event_target_checked(&ev))
        />
    }
}

/// A table head from translation keys; an empty key is an untitled column (the actions).
#[component]
pub fn Head(cols: &'static [&'static str]) -> impl IntoView {
    let ctx = use_ctx();
    view! {
        <thead>
            <tr>
                {cols
                    .iter()
                    .map(|key| {
                        let key: &'static str = key;
                        view! { <th>{move || if key.is_empty() { "" } else { ctx.t(key) }}</th> }
                    })
                    .collect_view()}
            </tr>
        </thead>
    }
}

/// A form's Save (submit) and Cancel buttons.
#[component]
pub fn SaveCancel(
    id: &'static str,
    on_cancel: impl Fn() + Send + Sync + 'static,
    #[prop(optional, into)] busy: Signal<bool>,
) -> impl IntoView {
    let ctx = use_ctx();
    view! {
        <div class="row">
            <button type="submit" class="primary" id=id disabled=move || busy.get()>
                {move || ctx.t("action.save")}
            </button>
            <button type="button" on:click=move |_| on_cancel()>
                {move || ctx.t("action.cancel")}
            </button>
        </div>
    }
}
