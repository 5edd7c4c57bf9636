//! The desktop app: Tauri shell, tray and window around the in-process gateway. The engine
//! knows nothing of this module; the shell reads its events and calls its service functions,
//! exactly as the admin API does.

mod autostart;
mod commands;
mod export;
mod notify;
mod power;
mod single;
mod tray;
mod tray_model;

use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde::Serialize;
use switchboard_gateway::Engine;
use switchboard_gateway::{GatewayHandle, Shutdown};
use tauri::{AppHandle, Manager, RunEvent, WebviewUrl, WebviewWindowBuilder};

use crate::cli::{self, GRACE, Options};

/// The window's token lasts as long as this launch (the gateway forgets it on exit).
const WINDOW_TOKEN_TTL: Duration = Duration::from_secs(400 * 86_400);

/// What the window gets from `bootstrap`: where the gateway is and its token, or why it is not
/// running.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Boot {
    pub base_url: Option<String>,
    pub token: Option<String>,
    pub error: Option<String>,
    pub port: Option<u16>,
}

enum Gateway {
    Running {
        handle: GatewayHandle,
        base_url: String,
        token: String,
    },
    Failed {
        error: String,
        port: Option<u16>,
    },
    Stopped,
}

/// Shared by the tray, the commands and the run loop.
pub struct Shell {
    options: Options,
    data_dir: std::path::PathBuf,
    gateway: Mutex<Gateway>,
    /// Bumped at each gateway start or stop, so the old event follower knows to stop.
    generation: AtomicU64,
    /// Wakes event followers when `generation` changes.
    changed: tokio::sync::Notify,
}

impl Shell {
    fn lock(&self) -> std::sync::MutexGuard<'_, Gateway> {
        self.gateway.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn engine(&self) -> Option<Arc<Engine>> {
        match &*self.lock() {
            Gateway::Running { handle, .. } => Some(handle.engine().clone()),
            _ => None,
        }
    }

    pub fn boot(&self) -> Boot {
        match &*self.lock() {
            Gateway::Running {
                base_url, token, ..
            } => Boot {
                base_url: Some(base_url.clone()),
                token: Some(token.clone()),
                ..Boot::default()
            },
            Gateway::Failed { error, port } => Boot {
                error: Some(error.clone()),
                port: *port,
                ..Boot::default()
            },
            Gateway::Stopped => Boot {
                error: Some("The gateway is stopping".into()),
                ..Boot::default()
            },
        }
    }

    pub fn base_url(&self) -> Option<String> {
        match &*self.lock() {
            Gateway::Running { base_url, .. } => Some(base_url.clone()),
            _ => None,
        }
    }

    /// Starts the gateway (again, after a failure, possibly on another port). The outcome is
    /// kept for `bootstrap` and announced on stdout like `serve` does.
    pub async fn start_gateway(self: &Arc<Self>, port: Option<u16>, app: Option<&AppHandle>) {
        let port = port.or(self.options.port);
        let mut opts = cli::start_options(&self.options, self.data_dir.clone());
        opts.port = port;
        let shown_port = port.unwrap_or(switchboard_gateway::DEFAULT_PORT);
        let outcome = match switchboard_gateway::start(opts).await {
            Ok(handle) => {
                cli::announce(&handle);
                power::watch(Arc::downgrade(handle.engine()));
                match handle.engine().issue_admin_session(WINDOW_TOKEN_TTL) {
                    Ok(token) => {
                        let addr = handle.addr();
                        // A gateway on every interface is still reached over loopback here.
                        let host = if addr.ip().is_unspecified() {
                            "127.0.0.1".to_owned()
                        } else if addr.is_ipv6() {
                            format!("[{}]", addr.ip())
                        } else {
                            addr.ip().to_string()
                        };
                        Gateway::Running {
                            base_url: format!("http://{host}:{}", addr.port()),
                            handle,
                            token,
                        }
                    }
                    Err(e) => Gateway::Failed {
                        error: format!("cannot create the window's token: {e}"),
                        port: Some(shown_port),
                    },
                }
            }
            Err(e) => {
                tracing::error!("the gateway did not start: {e}");
                Gateway::Failed {
                    error: e.to_string(),
                    port: Some(shown_port),
                }
            }
        };
        let running = matches!(outcome, Gateway::Running { .. });
        let previous = std::mem::replace(&mut *self.lock(), outcome);
        drop(previous);
        let generation = self.generation.fetch_add(1, Ordering::SeqCst) + 1;
        self.changed.notify_waiters();
        if let (true, Some(app)) = (running, app) {
            tray::follow(app.clone(), self.clone(), generation);
        }
    }

    /// Stops the gateway, letting in-flight requests finish for up to [`GRACE`].
    pub async fn stop_gateway(&self) {
        let previous = std::mem::replace(&mut *self.lock(), Gateway::Stopped);
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.changed.notify_waiters();
        if let Gateway::Running { handle, .. } = previous
            && handle.shutdown(GRACE).await == Shutdown::TimedOut
        {
            tracing::warn!("in-flight requests were cut after {}s", GRACE.as_secs());
        }
    }

    /// After a failed start: stops what is left, starts on `port`, and saves that port once
    /// the gateway answers there (the window's retry and the tray's "Start on port N").
    pub async fn restart(self: &Arc<Self>, port: u16, app: &AppHandle) -> Boot {
        self.stop_gateway().await;
        self.start_gateway(Some(port), Some(app)).await;
        if let Some(engine) = self.engine() {
            let body = serde_json::json!({ "server": { "port": port } });
            if let Err(e) = switchboard_gateway::service::patch_settings(&engine, body).await {
                tracing::warn!("port {port} works but could not be saved: {e}");
            }
        }
        self.boot()
    }

    /// The first port after `after` that is free on the configured host, to offer when the
    /// usual one is taken.
    pub fn free_port_after(&self, after: u16) -> Option<u16> {
        let host = self.options.host.as_deref().unwrap_or("127.0.0.1");
        (after.saturating_add(1)..=after.saturating_add(50))
            .find(|p| std::net::TcpListener::bind((host, *p)).is_ok())
    }

    pub fn is_current(&self, generation: u64) -> bool {
        self.generation.load(Ordering::SeqCst) == generation
    }
}

/// Shows the window, creating it if it was closed (closing destroys it, giving WebKit's memory
/// back while the app lives in the tray).
pub fn show_window(app: &AppHandle) {
    if let Some(w) = app.get_webview_window("main") {
        let _ = w.unminimize();
        let _ = w.show();
        let _ = w.set_focus();
        return;
    }
    let built = WebviewWindowBuilder::new(app, "main", WebviewUrl::App("index.html".into()))
        .title("Switchboard")
        .inner_size(1180.0, 800.0)
        .min_inner_size(720.0, 480.0)
        .build();
    match built {
        Ok(window) => lighten(&window),
        Err(e) => tracing::error!("cannot open the window: {e}"),
    }
}

/// WebKitGTK composites on the GPU by default; for tables and forms that buys nothing and
/// costs the web process about 70 MB (measured with scripts/bench-desktop).
fn lighten(window: &tauri::WebviewWindow) {
    #[cfg(target_os = "linux")]
    {
        let done = window.with_webview(|webview| {
            use webkit2gtk::{SettingsExt, WebViewExt};
            if let Some(settings) = webview.inner().settings() {
                settings.set_hardware_acceleration_policy(
                    webkit2gtk::HardwareAccelerationPolicy::Never,
                );
            }
        });
        if let Err(e) = done {
            tracing::debug!("cannot tune the webview: {e}");
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = window;
}

/// GTK picks its X visuals by initialising OpenGL at start, which maps the GL driver (with
/// software rendering, LLVM: about 30 MB) into a process that never draws with GL. `GDK_GL`
/// must be set before GTK starts, and Rust sets variables safely only for a child, so the app
/// replaces itself once with a copy that has it (same PID). A `GDK_GL` the user set is kept.
#[cfg(target_os = "linux")]
fn without_gdk_gl() {
    use std::os::unix::process::CommandExt;
    if std::env::var_os("GDK_GL").is_some() {
        return;
    }
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    let err = std::process::Command::new(exe)
        .args(std::env::args_os().skip(1))
        .env("GDK_GL", "disable")
        .exec();
    tracing::debug!("running with GDK's OpenGL on: cannot re-execute: {err}");
}

pub fn run(options: Options, hidden: bool) -> ExitCode {
    #[cfg(target_os = "linux")]
    without_gdk_gl();
    let Some(data_dir) = options.data_dir.clone().or_else(cli::default_data_dir) else {
        return cli::fail("no app-data folder is known for this user; pass --data-dir DIR");
    };
    let listener = match single::claim(&data_dir) {
        Ok(single::Instance::Second) => {
            println!("Switchboard is already running; its window was brought forward");
            return ExitCode::SUCCESS;
        }
        Ok(single::Instance::First(l)) => Some(l),
        Err(e) => {
            tracing::warn!("cannot check for another running Switchboard: {e}");
            None
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return cli::fail(format!("cannot start the async runtime: {e}")),
    };
    // Tauri's commands and our tasks share the gateway's runtime.
    tauri::async_runtime::set(runtime.handle().clone());

    let shell = Arc::new(Shell {
        options,
        data_dir,
        gateway: Mutex::new(Gateway::Stopped),
        generation: AtomicU64::new(0),
        changed: tokio::sync::Notify::new(),
    });
    // Before the window exists, so its first `bootstrap` has the answer.
    runtime.block_on(shell.start_gateway(None, None));

    let setup_shell = shell.clone();
    let built = tauri::Builder::default()
        .manage(shell.clone())
        .on_window_event(|window, event| {
            tracing::debug!(target: "switchboard::window", "{}: {event:?}", window.label());
        })
        .invoke_handler(tauri::generate_handler![
            commands::bootstrap,
            commands::restart_gateway,
            commands::save_export
        ])
        .setup(move |app| {
            let handle = app.handle().clone();
            tray::install(&handle, &setup_shell)?;
            let generation = setup_shell.generation.load(Ordering::SeqCst);
            if setup_shell.engine().is_some() {
                tray::follow(handle.clone(), setup_shell.clone(), generation);
            }
            if !hidden || setup_shell.engine().is_none() {
                // A gateway that did not start needs the user: show why, even with --hidden.
                show_window(&handle);
            }
            if let Some(l) = listener {
                let h = handle.clone();
                tracing::debug!("single-instance socket at {}", l.path().display());
                l.listen(move || {
                    let inner = h.clone();
                    let _ = h.run_on_main_thread(move || show_window(&inner));
                });
            }
            let on_signal = handle.clone();
            tauri::async_runtime::spawn(async move {
                if let Ok(signals) = cli::Signals::listen() {
                    let signal = signals.recv().await;
                    tracing::info!("{signal}: quitting");
                    on_signal.exit(0);
                }
            });
            Ok(())
        })
        .build(tauri::generate_context!("tauri.conf.json"));
    let app = match built {
        Ok(app) => app,
        Err(e) => {
            runtime.block_on(shell.stop_gateway());
            return cli::fail(format!("cannot start the desktop app: {e}"));
        }
    };
    let code = app.run_return(|_app, event| {
        // The last window closing is not quitting: the app lives on in the tray until Quit.
        if let RunEvent::ExitRequested {
            api, code: None, ..
        } = event
        {
            api.prevent_exit();
        }
    });
    tracing::info!(
        "no longer accepting; in-flight requests have {}s",
        GRACE.as_secs()
    );
    runtime.block_on(shell.stop_gateway());
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}
