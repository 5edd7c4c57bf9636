//! The tray icon and its menu, kept in step with the gateway's events. Items are updated in
//! place (a rebuilt menu would close under the user's pointer); only a change in the provider
//! list swaps the provider submenus. Menu handlers spawn their work and return at once.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use switchboard_gateway::Engine;
use switchboard_gateway::GatewayEvent;
use switchboard_gateway::connect::AgentClient;
use switchboard_gateway::service;
use tauri::image::Image;
use tauri::menu::{CheckMenuItem, Menu, MenuEvent, MenuItem, PredefinedMenuItem, Submenu};
use tauri::tray::{TrayIcon, TrayIconBuilder};
use tauri::{AppHandle, Manager, Wry};
use tokio::sync::broadcast::error::RecvError;

use super::notify::{self, Debouncer};
use super::tray_model::{self, Icon, ProviderLine, TrayView};
use super::{Shell, autostart, show_window};

/// The provider submenus start after the status line, today's line and a separator.
const FIRST_PROVIDER_POSITION: usize = 3;
/// How often today's line is summed again (a read of the hourly rollup, off the requests).
const TODAY_EVERY: Duration = Duration::from_secs(5);

struct ProviderItems {
    name: String,
    submenu: Submenu<Wry>,
    detail: MenuItem<Wry>,
    pause: MenuItem<Wry>,
    pause15: MenuItem<Wry>,
    pause60: MenuItem<Wry>,
    resume: MenuItem<Wry>,
}

struct Shown {
    view: Option<TrayView>,
    providers: Vec<ProviderItems>,
}

pub struct TrayState {
    tray: TrayIcon<Wry>,
    menu: Menu<Wry>,
    status: MenuItem<Wry>,
    today: MenuItem<Wry>,
    pause_all: MenuItem<Wry>,
    resume_all: MenuItem<Wry>,
    autostart: CheckMenuItem<Wry>,
    notifications: CheckMenuItem<Wry>,
    /// "Connect ▸" each coding agent, ticked while connected.
    clients: Vec<(AgentClient, CheckMenuItem<Wry>)>,
    /// "Start on port N", offered while the gateway is not running.
    retry: Mutex<Option<MenuItem<Wry>>>,
    shown: Mutex<Shown>,
}

fn local_clock(unix_s: u64) -> String {
    use chrono::TimeZone;
    i64::try_from(unix_s)
        .ok()
        .and_then(|s| chrono::Local.timestamp_opt(s, 0).single())
        .map_or_else(|| "?".into(), |t| t.format("%H:%M").to_string())
}

fn log_err<T>(what: &str, r: tauri::Result<T>) {
    if let Err(e) = r {
        tracing::warn!("tray: cannot {what}: {e}");
    }
}

pub fn install(app: &AppHandle, shell: &Arc<Shell>) -> tauri::Result<()> {
    let settings = shell.engine().map(|e| e.snapshot().settings.clone());
    let none = None::<&str>;
    let status = MenuItem::with_id(app, "status", "Switchboard", false, none)?;
    let today = MenuItem::with_id(app, "today", "Today: nothing yet", false, none)?;
    let pause_all = MenuItem::with_id(app, "pause-all", "Pause all", true, none)?;
    let resume_all = MenuItem::with_id(app, "resume-all", "Resume all", true, none)?;
    let open = MenuItem::with_id(app, "open", "Open Switchboard", true, none)?;
    let copy = MenuItem::with_id(app, "copy-url", "Copy base URL", true, none)?;
    let export = MenuItem::with_id(app, "export", "Export configuration", true, none)?;
    let autostart = CheckMenuItem::with_id(
        app,
        "autostart",
        "Start at login",
        true,
        settings.as_ref().is_some_and(|s| s.app.start_at_login),
        none,
    )?;
    let notifications = CheckMenuItem::with_id(
        app,
        "notifications",
        "Notifications",
        true,
        settings.as_ref().is_none_or(|s| s.app.notifications),
        none,
    )?;
    let quit = MenuItem::with_id(app, "quit", "Quit", true, none)?;
    let clients = AgentClient::ALL
        .iter()
        .map(|&c| {
            let id = format!("connect:{}", c.id());
            CheckMenuItem::with_id(app, id, c.name(), true, false, none).map(|item| (c, item))
        })
        .collect::<tauri::Result<Vec<_>>>()?;
    let client_items: Vec<&dyn tauri::menu::IsMenuItem<Wry>> = clients
        .iter()
        .map(|(_, item)| item as &dyn tauri::menu::IsMenuItem<Wry>)
        .collect();
    let connect = Submenu::with_id_and_items(app, "connect", "Connect", true, &client_items)?;
    let menu = Menu::with_items(
        app,
        &[
            &status,
            &today,
            &PredefinedMenuItem::separator(app)?,
            &PredefinedMenuItem::separator(app)?,
            &pause_all,
            &resume_all,
            &PredefinedMenuItem::separator(app)?,
            &open,
            &copy,
            &export,
            &connect,
            &autostart,
            &notifications,
            &PredefinedMenuItem::separator(app)?,
            &quit,
        ],
    )?;
    // The panel reads the icon from a file: one folder per process, so two instances (two data
    // folders) never delete each other's icons.
    let icon_dir = std::env::temp_dir().join(format!("switchboard-tray-{}", std::process::id()));
    let tray = TrayIconBuilder::with_id("switchboard")
        .temp_dir_path(icon_dir)
        .icon(Image::from_bytes(Icon::Down.png())?)
        .tooltip("Switchboard")
        .title("Switchboard")
        .menu(&menu)
        .show_menu_on_left_click(true)
        .on_menu_event(on_menu)
        .build(app)?;
    app.manage(TrayState {
        tray,
        menu,
        status,
        today,
        pause_all,
        resume_all,
        autostart,
        notifications,
        clients,
        retry: Mutex::new(None),
        shown: Mutex::new(Shown {
            view: None,
            providers: Vec::new(),
        }),
    });
    match shell.engine() {
        Some(engine) => {
            render(app, &engine);
        }
        None => {
            let state = app.state::<TrayState>();
            let reason = shell.boot().error.unwrap_or_default();
            log_err(
                "set the status",
                state
                    .status
                    .set_text(format!("Switchboard: gateway not running ({reason})")),
            );
            log_err(
                "set the title",
                state.tray.set_title(Some("Switchboard: not running")),
            );
            let failed_port = shell
                .boot()
                .port
                .unwrap_or(switchboard_gateway::DEFAULT_PORT);
            if let Some(port) = shell.free_port_after(failed_port) {
                let item = MenuItem::with_id(
                    app,
                    format!("retry:{port}"),
                    format!("Start on port {port}"),
                    true,
                    None::<&str>,
                )?;
                log_err("offer another port", state.menu.insert(&item, 1));
                *state.retry.lock().unwrap_or_else(PoisonError::into_inner) = Some(item);
            }
        }
    }
    Ok(())
}

/// Brings the tray up to date with the engine; answers when it next changes by itself.
fn render(app: &AppHandle, engine: &Engine) -> Option<u64> {
    let summary = service::summary(engine);
    let view = tray_model::view(&summary, &local_clock);
    let next = view.next_change;
    let settings = engine.snapshot().settings.clone();
    let Some(state) = app.try_state::<TrayState>() else {
        return next;
    };
    state.apply(app, view);
    log_err(
        "check 'Start at login'",
        state.autostart.set_checked(settings.app.start_at_login),
    );
    log_err(
        "check 'Notifications'",
        state.notifications.set_checked(settings.app.notifications),
    );
    next
}

impl TrayState {
    fn apply(&self, app: &AppHandle, view: TrayView) {
        let mut shown = self.shown.lock().unwrap_or_else(PoisonError::into_inner);
        if shown.view.as_ref() == Some(&view) {
            return;
        }
        if shown.view.as_ref().map(|v| v.icon) != Some(view.icon) {
            match Image::from_bytes(view.icon.png()) {
                Ok(img) => log_err("set the icon", self.tray.set_icon(Some(img))),
                Err(e) => tracing::warn!("tray: bad icon: {e}"),
            }
        }
        log_err("set the title", self.tray.set_title(Some(&view.title)));
        log_err("set the tooltip", self.tray.set_tooltip(Some(&view.title)));
        log_err("set the status", self.status.set_text(&view.title));
        log_err(
            "update 'Resume all'",
            self.resume_all
                .set_enabled(view.providers.iter().any(|p| p.paused)),
        );
        log_err(
            "update 'Pause all'",
            self.pause_all
                .set_enabled(!view.all_paused && !view.providers.is_empty()),
        );

        let same_list = shown.providers.len() == view.providers.len()
            && shown
                .providers
                .iter()
                .zip(&view.providers)
                .all(|(items, line)| items.name == line.name);
        if !same_list {
            for old in shown.providers.drain(..) {
                log_err("remove a provider", self.menu.remove(&old.submenu));
            }
            for (i, line) in view.providers.iter().enumerate() {
                match provider_items(app, line) {
                    Ok(items) => {
                        log_err(
                            "add a provider",
                            self.menu
                                .insert(&items.submenu, FIRST_PROVIDER_POSITION + i),
                        );
                        shown.providers.push(items);
                    }
                    Err(e) => tracing::warn!("tray: cannot add {}: {e}", line.name),
                }
            }
        }
        let old_labels: Vec<String> = shown
            .view
            .as_ref()
            .map(|v| v.providers.iter().map(|p| p.label.clone()).collect())
            .unwrap_or_default();
        for (i, line) in view.providers.iter().enumerate() {
            // A submenu's own label does not reach the panel when changed in place (GTK's
            // dbusmenu export misses it), so a provider whose state word changed gets a fresh
            // submenu at the same place; everything else is updated in place.
            if same_list && old_labels.get(i) != Some(&line.label) {
                match provider_items(app, line) {
                    Ok(fresh) => {
                        let old = std::mem::replace(&mut shown.providers[i], fresh);
                        log_err("remove a provider", self.menu.remove(&old.submenu));
                        log_err(
                            "add a provider",
                            self.menu
                                .insert(&shown.providers[i].submenu, FIRST_PROVIDER_POSITION + i),
                        );
                    }
                    Err(e) => tracing::warn!("tray: cannot relabel {}: {e}", line.name),
                }
            }
        }
        for (items, line) in shown.providers.iter().zip(&view.providers) {
            update_items(items, line);
        }
        shown.view = Some(view);
    }
}

fn provider_items(app: &AppHandle, line: &ProviderLine) -> tauri::Result<ProviderItems> {
    let id = |action: &str| format!("provider:{action}:{}", line.name);
    let none = None::<&str>;
    let detail = MenuItem::with_id(app, id("detail"), &line.detail, false, none)?;
    let pause = MenuItem::with_id(app, id("pause"), "Pause", true, none)?;
    let pause15 = MenuItem::with_id(app, id("pause15"), "Pause for 15 min", true, none)?;
    let pause60 = MenuItem::with_id(app, id("pause60"), "Pause for 1 h", true, none)?;
    let resume = MenuItem::with_id(app, id("resume"), "Resume", true, none)?;
    let submenu = Submenu::with_id_and_items(
        app,
        id("menu"),
        &line.label,
        true,
        &[
            &detail,
            &PredefinedMenuItem::separator(app)?,
            &pause,
            &pause15,
            &pause60,
            &resume,
        ],
    )?;
    Ok(ProviderItems {
        name: line.name.clone(),
        submenu,
        detail,
        pause,
        pause15,
        pause60,
        resume,
    })
}

fn update_items(items: &ProviderItems, line: &ProviderLine) {
    log_err("describe a provider", items.detail.set_text(&line.detail));
    for item in [&items.pause, &items.pause15, &items.pause60] {
        log_err("update Pause", item.set_enabled(!line.paused));
    }
    log_err("update Resume", items.resume.set_enabled(line.paused));
}

fn on_menu(app: &AppHandle, event: MenuEvent) {
    let id = event.id().as_ref().to_owned();
    tracing::debug!(target: "switchboard::tray", "menu: {id}");
    let shell = app.state::<Arc<Shell>>().inner().clone();
    match id.as_str() {
        "open" => show_window(app),
        "quit" => app.exit(0),
        "copy-url" => {
            if let Some(url) = shell.base_url() {
                copy_to_clipboard(app, format!("{url}/v1"));
            }
        }
        "export" => {
            let app = app.clone();
            spawn_with_engine(&shell, move |engine| async move {
                // A direct answer to a click, so not subject to the breaker notifications'
                // setting.
                let note = match super::export::save(&app, &engine).await {
                    Ok(path) => notify::Note {
                        summary: "Configuration exported".into(),
                        body: path.display().to_string(),
                    },
                    Err(e) => {
                        tracing::warn!("tray: export: {e}");
                        notify::Note {
                            summary: "Export failed".into(),
                            body: e,
                        }
                    }
                };
                notify::send(&note).await;
            });
        }
        "pause-all" | "resume-all" => {
            let pause = id == "pause-all";
            spawn_with_engine(&shell, move |engine| async move {
                let names: Vec<String> = engine
                    .snapshot()
                    .providers
                    .iter()
                    .map(|p| p.name.to_string())
                    .collect();
                for name in names {
                    if let Err(e) = service::set_paused(&engine, &name, pause, None).await {
                        tracing::warn!("tray: {name}: {e}");
                    }
                }
            });
        }
        "autostart" | "notifications" => {
            let Some(state) = app.try_state::<TrayState>() else {
                return;
            };
            let item = if id == "autostart" {
                &state.autostart
            } else {
                &state.notifications
            };
            // The item has toggled itself already; the setting follows it.
            let Ok(on) = item.is_checked() else { return };
            let key = if id == "autostart" {
                "start_at_login"
            } else {
                "notifications"
            };
            spawn_with_engine(&shell, move |engine| async move {
                let body = serde_json::json!({ "app": { key: on } });
                if let Err(e) = service::patch_settings(&engine, body).await {
                    tracing::warn!("tray: cannot save {key}: {e}");
                }
            });
        }
        other if other.starts_with("connect:") => {
            let Some(state) = app.try_state::<TrayState>() else {
                return;
            };
            let id = other.trim_start_matches("connect:");
            let Some((client, item)) = state.clients.iter().find(|(c, _)| c.id() == id) else {
                return;
            };
            // Ticked by the click: connect; unticked: disconnect.
            let Ok(on) = item.is_checked() else { return };
            let (client, item) = (*client, item.clone());
            spawn_with_engine(&shell, move |engine| async move {
                let done = if on {
                    service::connect(&engine, client.id()).await
                } else {
                    service::disconnect(&engine, client.id()).await
                };
                let note = match done {
                    Ok(change) => notify::Note {
                        summary: format!(
                            "{} {}",
                            client.name(),
                            if on { "connected" } else { "disconnected" }
                        ),
                        // What was done to each file, what would still win over it, and how
                        // the test request went.
                        body: change
                            .lines
                            .iter()
                            .chain(&change.warnings)
                            .chain(change.test.as_ref().map(|t| &t.message))
                            .cloned()
                            .collect::<Vec<_>>()
                            .join("\n"),
                    },
                    Err(e) => {
                        tracing::warn!("tray: {}: {e}", client.id());
                        log_err("undo the tick", item.set_checked(!on));
                        notify::Note {
                            summary: format!("{}: not done", client.name()),
                            body: e.to_string(),
                        }
                    }
                };
                notify::send(&note).await;
            });
        }
        other if other.starts_with("retry:") => {
            let Some(port) = other
                .strip_prefix("retry:")
                .and_then(|p| p.parse::<u16>().ok())
            else {
                return;
            };
            // Gone before the gateway starts, so the provider submenus land where they belong.
            if let Some(state) = app.try_state::<TrayState>()
                && let Some(item) = state
                    .retry
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .take()
            {
                log_err("remove the port offer", state.menu.remove(&item));
            }
            let app = app.clone();
            tauri::async_runtime::spawn(async move {
                let boot = shell.restart(port, &app).await;
                if let Some(e) = boot.error {
                    tracing::warn!("the gateway did not start on port {port} either: {e}");
                }
            });
        }
        other => {
            let Some((action, name)) = other
                .strip_prefix("provider:")
                .and_then(|rest| rest.split_once(':'))
            else {
                return;
            };
            let (pause, minutes) = match action {
                "pause" => (true, None),
                "pause15" => (true, Some(15)),
                "pause60" => (true, Some(60)),
                "resume" => (false, None),
                _ => return,
            };
            let name = name.to_owned();
            spawn_with_engine(&shell, move |engine| async move {
                let duration = minutes.map(|m: u32| pause_minute() * m);
                if let Err(e) = service::set_paused(&engine, &name, pause, duration).await {
                    tracing::warn!("tray: {name}: {e}");
                }
            });
        }
    }
}

/// A minute of a timed pause. A debug build takes a shorter one from
/// `SWITCHBOARD_TEST_MINUTE_MS`, so the desktop test sees "Pause for 15 min" end by itself.
fn pause_minute() -> Duration {
    #[cfg(debug_assertions)]
    if let Some(ms) = std::env::var("SWITCHBOARD_TEST_MINUTE_MS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    {
        return Duration::from_millis(ms.clamp(10, 60_000));
    }
    Duration::from_secs(60)
}

fn spawn_with_engine<F, Fut>(shell: &Arc<Shell>, work: F)
where
    F: FnOnce(Arc<Engine>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    if let Some(engine) = shell.engine() {
        tauri::async_runtime::spawn(work(engine));
    }
}

#[cfg(target_os = "linux")]
fn copy_to_clipboard(app: &AppHandle, text: String) {
    // GTK's clipboard belongs to the main thread.
    let _ = app.run_on_main_thread(move || {
        let clipboard = gtk::Clipboard::get(&gtk::gdk::Atom::intern("CLIPBOARD"));
        clipboard.set_text(&text);
        clipboard.store();
    });
}

#[cfg(not(target_os = "linux"))]
fn copy_to_clipboard(_app: &AppHandle, text: String) {
    tracing::info!("base URL: {text}");
}

/// Local midnight of today, unix milliseconds.
fn local_midnight_ms() -> i64 {
    let now = chrono::Local::now();
    now.date_naive()
        .and_hms_opt(0, 0, 0)
        .and_then(|m| m.and_local_timezone(chrono::Local).earliest())
        .map_or(now.timestamp_millis(), |m| m.timestamp_millis())
}

/// Keeps "Today: ..." current while this gateway runs.
fn follow_today(app: AppHandle, shell: Arc<Shell>, engine: Arc<Engine>, generation: u64) {
    tauri::async_runtime::spawn(async move {
        let mut shown = String::new();
        let mut asked = false;
        while shell.is_current(generation) {
            match service::totals_since(&engine, local_midnight_ms()).await {
                Ok(p) => {
                    let line = tray_model::today_line(&p);
                    if line != shown
                        && let Some(state) = app.try_state::<TrayState>()
                    {
                        log_err("set today's line", state.today.set_text(&line));
                        shown = line;
                    }
                }
                Err(e) => tracing::warn!("tray: cannot sum today's requests: {e}"),
            }
            // The ticks follow the ledger, so a connect from the command line shows too.
            if let Ok(list) = service::agent_clients(&engine).await
                && let Some(state) = app.try_state::<TrayState>()
            {
                for (client, item) in &state.clients {
                    let on = list.iter().any(|c| c.id == client.id() && c.connected);
                    if item.is_checked().ok() != Some(on) {
                        log_err("tick a client", item.set_checked(on));
                    }
                }
                // Once per start: clients left connected by a stop or a crash.
                if !std::mem::replace(&mut asked, true) {
                    for c in list.iter().filter(|c| c.from_before_start) {
                        notify::send(&notify::connected_before(&c.name)).await;
                    }
                }
            }
            tokio::time::sleep(TODAY_EVERY).await;
        }
    });
}

/// Follows the engine's events for as long as this gateway runs: re-renders the tray, sends
/// notifications, keeps the autostart entry in line with the setting.
pub fn follow(app: AppHandle, shell: Arc<Shell>, generation: u64) {
    let Some(engine) = shell.engine() else { return };
    follow_today(app.clone(), shell.clone(), engine.clone(), generation);
    tauri::async_runtime::spawn(async move {
        let mut events = engine.subscribe();
        let mut debouncer = Debouncer::default();
        sync_autostart(&engine);
        loop {
            if !shell.is_current(generation) {
                return;
            }
            let next = render(&app, &engine);
            let mut wait = next.map_or(Duration::from_secs(3600), |t| {
                let now = switchboard_gateway::unix_seconds(Instant::now());
                Duration::from_secs(t.saturating_sub(now) + 1)
            });
            if let Some(due) = debouncer.next_due() {
                wait = wait.min(due.saturating_duration_since(Instant::now()));
            }
            tokio::select! {
                first = events.recv() => {
                    let mut batch = Vec::new();
                    match first {
                        Ok(ev) => batch.push(ev),
                        Err(RecvError::Lagged(_)) => {}
                        Err(RecvError::Closed) => return,
                    }
                    // A burst (a config change, a failover) renders once.
                    while let Ok(ev) = events.try_recv() {
                        batch.push(ev);
                    }
                    for ev in batch {
                        on_event(&engine, &mut debouncer, &ev).await;
                    }
                }
                () = tokio::time::sleep(wait) => {}
                () = shell.changed.notified() => {}
            }
            for note in debouncer.due(Instant::now()) {
                if engine.snapshot().settings.app.notifications {
                    notify::send(&note).await;
                }
            }
        }
    });
}

async fn on_event(engine: &Engine, debouncer: &mut Debouncer, ev: &GatewayEvent) {
    match ev {
        GatewayEvent::ConfigApplied { .. } => sync_autostart(engine),
        GatewayEvent::Breaker { .. } => {
            if engine.snapshot().settings.app.notifications
                && let Some(note) = debouncer.note(ev, Instant::now())
            {
                notify::send(&note).await;
            }
        }
        GatewayEvent::Budget { .. } | GatewayEvent::Quota { .. } => {
            if engine.snapshot().settings.app.notifications
                && let Some(note) = notify::crossing(ev)
            {
                notify::send(&note).await;
            }
        }
        _ => {}
    }
}

fn sync_autostart(engine: &Engine) {
    if let Err(e) = autostart::apply(engine.snapshot().settings.app.start_at_login) {
        tracing::warn!("cannot update the start-at-login entry: {e}");
    }
}
