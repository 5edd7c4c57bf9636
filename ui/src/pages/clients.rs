//! The coding agents: connect each to the gateway (a client key of its own, only our settings
//! written into its files) or disconnect it (its files back as they were), and what was done.

use leptos::prelude::*;
use leptos::task::spawn_local;
use switchboard_api::{AgentClientChange, AgentClientView};

use crate::api;
use crate::app::{load_on_tick, use_ctx};
use crate::form::Head;

#[component]
pub fn Clients() -> impl IntoView {
    let ctx = use_ctx();
    let list = RwSignal::new(Vec::<AgentClientView>::new());
    let done = RwSignal::new(None::<AgentClientChange>);
    let busy = RwSignal::new(false);
    load_on_tick(ctx, "/clients", move |l: Vec<AgentClientView>| list.set(l));
    let act = move |id: String, verb: &'static str| {
        busy.set(true);
        spawn_local(async move {
            let Some(c) = ctx.client() else { return };
            let path = format!("/clients/{}/{verb}", api::seg(&id));
            match api::action::<AgentClientChange>(&c, &path).await {
                Ok(change) => {
                    done.set(Some(change));
                    ctx.refresh();
                }
                Err(f) => ctx.fail(&f),
            }
            busy.try_set(false);
        });
    };
    view! {
        <section>
            <h2>{move || ctx.t("nav.clients")}</h2>
            <p class="muted">{move || ctx.t("clients.intro")}</p>
            <table class="grid" id="agent-clients">
                <Head cols=&["col.name", "clients.state", "clients.key", "clients.files", ""]/>
                <tbody>
                    {move || {
                        list.get()
                            .into_iter()
                            .map(|c| {
                                let id = c.id.clone();
                                let (keep_id, restore_id) = (c.id.clone(), c.id.clone());
                                let connected = c.connected;
                                let from_before = c.from_before_start;
                                view! {
                                    <tr data-client=c.id.clone() data-connected=connected.to_string()>
                                        <td>{c.name.clone()}</td>
                                        <td class="state">
                                            {move || ctx.t(if connected {
                                                "clients.connected"
                                            } else {
                                                "clients.not_connected"
                                            })}
                                            {from_before.then(|| view! {
                                                <div class="from-before warn">
                                                    <p>{move || ctx.t("clients.from_before")}</p>
                                                    <button
                                                        class="keep primary"
                                                        disabled=move || busy.get()
                                                        on:click=move |_| act(keep_id.clone(), "keep")
                                                    >
                                                        {move || ctx.t("clients.keep")}
                                                    </button>
                                                    " "
                                                    <button
                                                        class="restore"
                                                        disabled=move || busy.get()
                                                        on:click=move |_| act(restore_id.clone(), "disconnect")
                                                    >
                                                        {move || ctx.t("clients.restore")}
                                                    </button>
                                                </div>
                                            })}
                                        </td>
                                        <td class="mono small">{c.key_name.clone().unwrap_or_else(|| "—".into())}</td>
                                        <td class="mono small">{c.files.join(", ")}</td>
                                        <td>
                                            <button
                                                class=if connected { "" } else { "primary" }
                                                disabled=move || busy.get()
                                                on:click=move |_| {
                                                    act(id.clone(), if connected { "disconnect" } else { "connect" })
                                                }
                                            >
                                                {move || ctx.t(if connected {
                                                    "clients.disconnect"
                                                } else {
                                                    "clients.connect"
                                                })}
                                            </button>
                                        </td>
                                    </tr>
                                }
                            })
                            .collect_view()
                    }}
                </tbody>
            </table>
            {move || {
                done.get()
                    .map(|d| {
                        view! {
                            <div class="card" id="client-change">
                                <ul>
                                    {d.lines.into_iter().map(|l| view! { <li>{l}</li> }).collect_view()}
                                </ul>
                                <ul class="warnings error">
                                    {d.warnings.into_iter().map(|l| view! { <li>{l}</li> }).collect_view()}
                                </ul>
                                {d.test.map(|t| view! {
                                    <p id="client-test" class=if t.ok { "test-result ok" } else { "test-result bad" } data-ok=t.ok.to_string()>
                                        {t.message}
                                    </p>
                                })}
                                {d.key_name
                                    .filter(|_| d.connected)
                                    .map(|k| view! {
                                        <p class="small">{move || ctx.t("clients.uses_key")} " " <code>{k.clone()}</code></p>
                                    })}
                            </div>
                        }
                    })
            }}
        </section>
    }
}
