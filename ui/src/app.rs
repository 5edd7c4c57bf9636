//! The shell of the page: how it gets a token (desktop bootstrap or login), the live event feed,
//! the navigation and the language switch.

use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::api::{self, Boot, Client};
use crate::i18n::{Lang, tr};
use crate::pages;
use crate::util;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Page {
    Dashboard,
    Overview,
    Logs,
    Providers,
    Models,
    Keys,
    Clients,
    Prices,
    Settings,
}

impl Page {
    const ALL: [Page; 9] = [
        Page::Dashboard,
        Page::Overview,
        Page::Logs,
        Page::Providers,
        Page::Models,
        Page::Keys,
        Page::Clients,
        Page::Prices,
        Page::Settings,
    ];

    fn key(self) -> &'static str {
        match self {
            Page::Dashboard => "nav.dashboard",
            Page::Overview => "nav.overview",
            Page::Providers => "nav.providers",
            Page::Models => "nav.models",
            Page::Keys => "nav.keys",
            Page::Clients => "nav.clients",
            Page::Prices => "nav.prices",
            Page::Logs => "nav.logs",
            Page::Settings => "nav.settings",
        }
    }

    fn slug(self) -> &'static str {
        match self {
            Page::Dashboard => "dashboard",
            Page::Overview => "overview",
            Page::Providers => "providers",
            Page::Models => "models",
            Page::Keys => "keys",
            Page::Prices => "prices",
            Page::Clients => "clients",
            Page::Logs => "logs",
            Page::Settings => "settings",
        }
    }

    fn from_hash(hash: &str) -> Page {
        let slug = hash.trim_start_matches('#').trim_start_matches('/');
        Page::ALL
            .into_iter()
            .find(|p| p.slug() == slug)
            .unwrap_or(Page::Dashboard)
    }
}

/// What the page is showing before the main view.
#[derive(Clone, Debug, PartialEq)]
enum Phase {
    Starting,
    Login,
    /// Desktop only: the shell could not start the gateway.
    GatewayDown {
        reason: String,
        port: Option<u16>,
    },
    Ready,
}

/// Shared by every page. All fields are signals, so the context is `Copy`.
#[derive(Clone, Copy)]
pub struct Ctx {
    pub client: RwSignal<Option<Client>>,
    pub lang: RwSignal<Lang>,
    /// Bumped on every live event: pages refetch what they show.
    pub tick: RwSignal<u64>,
    pub notice: RwSignal<Option<(bool, String)>>,
    phase: RwSignal<Phase>,
}

impl Ctx {
    /// A translated text; reactive when called inside a closure.
    pub fn t(&self, key: &'static str) -> &'static str {
        tr(self.lang.get(), key)
    }

    pub fn client(&self) -> Option<Client> {
        self.client.get_untracked()
    }

    pub fn ok(&self, message: impl Into<String>) {
        self.notice.set(Some((true, message.into())));
    }

    /// Shows an API failure; a 401 means the token is gone, so log in again.
    pub fn fail(&self, f: &api::Failure) {
        if f.status == 401 && !api::in_desktop() {
            util::save(TOKEN_KEY, None, true);
            self.client.set(None);
            self.phase.set(Phase::Login);
        }
        self.notice.set(Some((false, f.message.clone())));
    }

    pub fn refresh(&self) {
        self.tick.update(|t| *t += 1);
    }
}

pub fn use_ctx() -> Ctx {
    expect_context::<Ctx>()
}

/// Loads `path` now and again on every live event, handing each answer to `apply`.
pub fn load_on_tick<T, F>(ctx: Ctx, path: &'static str, apply: F)
where
    T: serde::de::DeserializeOwned + 'static,
    F: Fn(T) + Copy + Send + Sync + 'static,
{
    Effect::new(move |_| {
        ctx.tick.get();
        spawn_local(async move {
            let Some(c) = ctx.client() else { return };
            match api::get::<T>(&c, path).await {
                Ok(v) => apply(v),
                Err(f) => ctx.fail(&f),
            }
        });
    });
}

/// Deletes `path` once the user confirms ("Delete relay-b?"), then refreshes.
pub fn delete_confirmed(ctx: Ctx, verb: &'static str, name: String, path: String) {
    if !util::confirm(&format!("{} {name}?", ctx.t(verb))) {
        return;
    }
    spawn_local(async move {
        let Some(c) = ctx.client() else { return };
        match api::delete(&c, &path).await {
            Ok(()) => ctx.refresh(),
            Err(f) => ctx.fail(&f),
        }
    });
}

const TOKEN_KEY: &str = "switchboard.token";
const LANG_KEY: &str = "switchboard.lang";

fn initial_lang() -> Lang {
    if let Some(saved) = util::load(LANG_KEY, false) {
        return Lang::from_code(&saved);
    }
    let nav = web_sys::window()
        .and_then(|w| w.navigator().language())
        .unwrap_or_default();
    Lang::from_code(&nav)
}

#[component]
pub fn App() -> impl IntoView {
    let lang = RwSignal::new(initial_lang());
    let ctx = Ctx {
        client: RwSignal::new(None),
        lang,
        tick: RwSignal::new(0),
        notice: RwSignal::new(None),
        phase: RwSignal::new(Phase::Starting),
    };
    provide_context(ctx);
    Effect::new(move |_| {
        let l = lang.get();
        util::save(LANG_KEY, Some(l.code()), false);
        if let Some(doc) = web_sys::window().and_then(|w| w.document())
            && let Some(root) = doc.document_element()
        {
            let _ = root.set_attribute("lang", l.code());
        }
    });
    spawn_local(start(ctx));

    view! {
        {move || match ctx.phase.get() {
            Phase::Starting => view! { <div class="splash">"Switchboard"</div> }.into_any(),
            Phase::Login => view! { <Login/> }.into_any(),
            Phase::GatewayDown { reason, port } => {
                view! { <GatewayDown reason=reason port=port/> }.into_any()
            }
            Phase::Ready => view! { <Main/> }.into_any(),
        }}
    }
}

async fn start(ctx: Ctx) {
    if api::in_desktop() {
        match api::invoke::<Boot>("bootstrap", serde_json::json!({})).await {
            Ok(Boot {
                base_url: Some(base),
                token: Some(token),
                ..
            }) => ready(ctx, Client { base, token }),
            Ok(boot) => ctx.phase.set(Phase::GatewayDown {
                reason: boot.error.unwrap_or_default(),
                port: boot.port,
            }),
            Err(e) => ctx.phase.set(Phase::GatewayDown {
                reason: e.message,
                port: None,
            }),
        }
        return;
    }
    let Some(token) = util::load(TOKEN_KEY, true) else {
        ctx.phase.set(Phase::Login);
        return;
    };
    let client = Client {
        base: String::new(),
        token,
    };
    match api::get::<switchboard_api::Summary>(&client, "/summary").await {
        Ok(_) => ready(ctx, client),
        Err(_) => {
            util::save(TOKEN_KEY, None, true);
            ctx.phase.set(Phase::Login);
        }
    }
}

/// A session from this page's login (or first password): kept for reloads, then the app.
fn logged_in(ctx: Ctx, token: String) {
    util::save(TOKEN_KEY, Some(&token), true);
    ready(
        ctx,
        Client {
            base: String::new(),
            token,
        },
    );
}

fn ready(ctx: Ctx, client: Client) {
    ctx.client.set(Some(client.clone()));
    ctx.phase.set(Phase::Ready);
    spawn_local(follow(ctx, client));
}

/// Keeps the live feed open while this token is the current one; reconnects after a drop.
async fn follow(ctx: Ctx, client: Client) {
    while ctx.client.get_untracked().as_ref() == Some(&client) {
        let result = api::follow_events(&client, &|_name| ctx.refresh()).await;
        if let Err(f) = result
            && f.status == 401
        {
            ctx.fail(&f);
            return;
        }
        util::sleep_ms(1500).await;
    }
}

/// The login form, or on a first visit with no admin password yet (on this machine, to a
/// gateway on loopback) the form that chooses it.
#[component]
fn Login() -> impl IntoView {
    let first_visit = RwSignal::new(None::<bool>);
    spawn_local(async move {
        let can_choose = api::setup_status("")
            .await
            .is_ok_and(|s| s.can_choose && !s.password_set);
        first_visit.try_set(Some(can_choose));
    });
    move || match first_visit.get() {
        None => ().into_any(),
        Some(true) => view! { <ChoosePassword/> }.into_any(),
        Some(false) => view! { <LoginForm/> }.into_any(),
    }
}

#[component]
fn ChoosePassword() -> impl IntoView {
    let ctx = use_ctx();
    let password = RwSignal::new(String::new());
    let again = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let pw = password.get_untracked();
        if pw.chars().count() < 8 {
            error.set(Some(ctx.t("setup.short").to_owned()));
            return;
        }
        if pw != again.get_untracked() {
            error.set(Some(ctx.t("setup.mismatch").to_owned()));
            return;
        }
        busy.set(true);
        spawn_local(async move {
            match api::setup("", &pw).await {
                Ok(r) => {
                    logged_in(ctx, r.token);
                }
                Err(f) => error.set(Some(f.message)),
            }
            busy.try_set(false);
        });
    };
    let field = move |id: &'static str, label: &'static str, value: RwSignal<String>| {
        view! {
            <label class="field">
                <span class="label">{move || ctx.t(label)}</span>
                <input
                    id=id
                    type="password"
                    autocomplete="new-password"
                    prop:value=move || value.get()
                    on:input=move |ev| value.set(event_target_value(&ev))
                />
            </label>
        }
    };
    view! {
        <div class="login">
            <form class="card" id="setup" on:submit=submit>
                <h1>{move || ctx.t("setup.title")}</h1>
                <p class="muted">{move || ctx.t("setup.intro")}</p>
                {field("new-password", "setup.password", password)}
                {field("new-password-again", "setup.confirm", again)}
                <p class="error">{move || error.get()}</p>
                <FormEnd submit="setup.submit" busy=busy/>
            </form>
        </div>
    }
}

/// The login and first-password forms' last row: the submit button, and the language.
#[component]
fn FormEnd(submit: &'static str, busy: RwSignal<bool>) -> impl IntoView {
    let ctx = use_ctx();
    view! {
        <div class="row">
            <button type="submit" class="primary" disabled=move || busy.get()>
                {move || ctx.t(submit)}
            </button>
            <LangSwitch/>
        </div>
    }
}

#[component]
fn LoginForm() -> impl IntoView {
    let ctx = use_ctx();
    let password = RwSignal::new(String::new());
    let code = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let pw = password.get_untracked();
        let totp = Some(code.get_untracked().trim().to_owned()).filter(|c| !c.is_empty());
        if pw.is_empty() {
            error.set(Some(ctx.t("login.empty").to_owned()));
            return;
        }
        busy.set(true);
        spawn_local(async move {
            match api::login("", &pw, totp).await {
                Ok(r) => {
                    error.set(None);
                    logged_in(ctx, r.token);
                }
                Err(f) => error.set(Some(f.message)),
            }
            busy.set(false);
        });
    };
    view! {
        <div class="login">
            <form class="card" on:submit=submit>
                <h1>"Switchboard"</h1>
                <p class="muted">{move || ctx.t("login.intro")}</p>
                <label class="field">
                    <span class="label">{move || ctx.t("login.password")}</span>
                    <input
                        id="password"
                        type="password"
                        autocomplete="current-password"
                        prop:value=move || password.get()
                        on:input=move |ev| password.set(event_target_value(&ev))
                    />
                    <span class="error">{move || error.get()}</span>
                </label>
                <label class="field">
                    <span class="label">{move || ctx.t("login.code")}</span>
                    <input
                        id="totp"
                        inputmode="numeric"
                        autocomplete="one-time-code"
                        placeholder="123456"
                        prop:value=move || code.get()
                        on:input=move |ev| code.set(event_target_value(&ev))
                    />
                    <span class="hint">{move || ctx.t("login.code_hint")}</span>
                </label>
                <FormEnd submit="login.submit" busy=busy/>
            </form>
        </div>
    }
}

/// Desktop: the gateway did not start (a taken port, say); offer another port.
#[component]
fn GatewayDown(reason: String, port: Option<u16>) -> impl IntoView {
    let ctx = use_ctx();
    let port_text = RwSignal::new(port.map(|p| p.to_string()).unwrap_or_default());
    let error = RwSignal::new(None::<String>);
    let retry = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let Ok(p) = port_text.get_untracked().trim().parse::<u16>() else {
            error.set(Some(ctx.t("err.port").to_owned()));
            return;
        };
        if p == 0 {
            error.set(Some(ctx.t("err.port").to_owned()));
            return;
        }
        spawn_local(async move {
            match api::invoke::<Boot>("restart_gateway", serde_json::json!({ "port": p })).await {
                Ok(Boot {
                    base_url: Some(base),
                    token: Some(token),
                    ..
                }) => ready(ctx, Client { base, token }),
                Ok(boot) => error.set(boot.error),
                Err(e) => error.set(Some(e.message)),
            }
        });
    };
    view! {
        <div class="login">
            <form class="card" on:submit=retry>
                <h1>{move || ctx.t("down.title")}</h1>
                <p class="error-box" id="gateway-error">{reason.clone()}</p>
                <label class="field">
                    <span class="label">{move || ctx.t("settings.port")}</span>
                    <input
                        id="port"
                        type="number"
                        min="1"
                        max="65535"
                        prop:value=move || port_text.get()
                        on:input=move |ev| port_text.set(event_target_value(&ev))
                    />
                    <span class="error">{move || error.get()}</span>
                </label>
                <button type="submit" class="primary">{move || ctx.t("down.retry")}</button>
            </form>
        </div>
    }
}

#[component]
pub fn LangSwitch() -> impl IntoView {
    let ctx = use_ctx();
    view! {
        <select
            class="lang"
            aria-label="Language"
            on:change=move |ev| ctx.lang.set(Lang::from_code(&event_target_value(&ev)))
        >
            {Lang::ALL
                .into_iter()
                .map(|l| {
                    view! {
                        <option value=l.code() selected=move || ctx.lang.get() == l>
                            {l.label()}
                        </option>
                    }
                })
                .collect_view()}
        </select>
    }
}

fn current_hash() -> String {
    web_sys::window()
        .and_then(|w| w.location().hash().ok())
        .unwrap_or_default()
}

#[component]
fn Main() -> impl IntoView {
    let ctx = use_ctx();
    let page = RwSignal::new(Page::from_hash(&current_hash()));
    let summary = RwSignal::new(None::<switchboard_api::Summary>);
    Effect::new(move |_| {
        ctx.tick.get();
        spawn_local(async move {
            let Some(c) = ctx.client() else { return };
            if let Ok(s) = api::get::<switchboard_api::Summary>(&c, "/summary").await {
                summary.set(Some(s));
            }
        });
    });
    // Notices fade after a while; a newer one restarts the clock.
    Effect::new(move |_| {
        if ctx.notice.get().is_some() {
            let shown = ctx.notice.get_untracked();
            spawn_local(async move {
                util::sleep_ms(6000).await;
                if ctx.notice.get_untracked() == shown {
                    ctx.notice.set(None);
                }
            });
        }
    });
    let go = move |p: Page| {
        page.set(p);
        if let Some(w) = web_sys::window() {
            let _ = w.location().set_hash(p.slug());
        }
    };
    let logout = move |_| {
        // The server forgets the session too, so a copied token stops working.
        if let Some(c) = ctx.client() {
            spawn_local(async move {
                let _ = api::action::<serde_json::Value>(&c, "/logout").await;
            });
        }
        util::save(TOKEN_KEY, None, true);
        ctx.client.set(None);
        ctx.phase.set(Phase::Login);
    };
    view! {
        <header class="top">
            <div class="brand">
                <span class=move || {
                    format!(
                        "dot {}",
                        summary.get().map_or("unknown", |s| s.state.as_str()),
                    )
                }></span>
                "Switchboard"
                <span class="state-text" id="summary-state">
                    {move || summary.get().map(|s| tr_state(ctx, s.state.as_str()))}
                </span>
            </div>
            <nav>
                {Page::ALL
                    .into_iter()
                    .map(|p| {
                        view! {
                            <button
                                class="tab"
                                class:active=move || page.get() == p
                                data-page=p.slug()
                                on:click=move |_| go(p)
                            >
                                {move || ctx.t(p.key())}
                            </button>
                        }
                    })
                    .collect_view()}
            </nav>
            <div class="tools">
                <LangSwitch/>
                <Show when=move || !api::in_desktop()>
                    <button class="link" on:click=logout>{move || ctx.t("nav.logout")}</button>
                </Show>
            </div>
        </header>
        {move || {
            ctx.notice
                .get()
                .map(|(ok, text)| {
                    view! {
                        <div class=if ok { "notice ok" } else { "notice bad" } role="status">
                            {text}
                        </div>
                    }
                })
        }}
        <main>
            {move || match page.get() {
                Page::Dashboard => view! { <pages::dashboard::Dashboard/> }.into_any(),
                Page::Overview => view! { <pages::overview::Overview/> }.into_any(),
                Page::Providers => view! { <pages::providers::Providers/> }.into_any(),
                Page::Models => view! { <pages::models::Models/> }.into_any(),
                Page::Keys => view! { <pages::keys::Keys/> }.into_any(),
                Page::Prices => view! { <pages::prices::Prices/> }.into_any(),
                Page::Clients => view! { <pages::clients::Clients/> }.into_any(),
                Page::Logs => view! { <pages::logs::Logs/> }.into_any(),
                Page::Settings => view! { <pages::settings::SettingsPage/> }.into_any(),
            }}
        </main>
    }
}

/// A state word (`ok`, `cooling`, `open`, ...) in the current language.
pub fn tr_state(ctx: Ctx, state: &str) -> &'static str {
    let key = match state {
        "ok" => "state.ok",
        "degraded" => "state.degraded",
        "down" => "state.down",
        "paused" => "state.paused",
        "cooling" => "state.cooling",
        "key_refused" => "state.key_refused",
        "closed" => "state.closed",
        "open" => "state.open",
        "half_open" => "state.half_open",
        "disabled" => "state.disabled",
        _ => "state.unknown",
    };
    ctx.t(key)
}
