//! The desktop app as a desktop sees it: the real binary under Xvfb, on a private D-Bus session
//! where this test plays the panel (it owns `org.kde.StatusNotifierWatcher`, as GNOME's and KDE's
//! panels do) and the notification daemon. It reads the tray's icon and its dbusmenu, trips a
//! breaker through a mock upstream and sees both change, clicks Pause through dbusmenu and sees
//! the provider's traffic stop, and quits from the menu.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::mock::{Mock, Reply};
use common::{ADMIN_PASSWORD, Gateway, Launch, http};
use zbus::zvariant::{OwnedObjectPath, OwnedValue, Value};

/// A child process killed on drop (Xvfb, dbus-daemon).
pub(crate) struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Spawns a daemon that prints one line when ready (its display or address) and reads it.
fn daemon_line(cmd: &mut Command, what: &str) -> (Daemon, String) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{what} (scripts/setup installs it): {e}"));
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    (Daemon(child), line.trim().to_owned())
}

/// Starts Xvfb on a free display (it picks one and tells us through -displayfd).
pub(crate) fn xvfb() -> (Daemon, String) {
    let (daemon, n) = daemon_line(
        Command::new("Xvfb").args([
            "-displayfd",
            "1",
            "-screen",
            "0",
            "1280x900x24",
            "-nolisten",
            "tcp",
        ]),
        "Xvfb",
    );
    assert!(n.parse::<u32>().is_ok(), "Xvfb said {n:?}");
    (daemon, format!(":{n}"))
}

/// A private session bus, so the test's panel is the only one the app can find.
pub(crate) fn session_bus() -> (Daemon, String) {
    let (daemon, address) = daemon_line(
        Command::new("dbus-daemon").args(["--session", "--nofork", "--print-address=1"]),
        "dbus-daemon",
    );
    assert!(address.starts_with("unix:"), "dbus-daemon said {address:?}");
    (daemon, address)
}

#[derive(Default)]
struct PanelState {
    /// (bus name, object path) of each registered item.
    items: Vec<(String, String)>,
    /// (summary, body) of each notification.
    notes: Vec<(String, String)>,
}

struct Watcher(Arc<Mutex<PanelState>>);

#[zbus::interface(name = "org.kde.StatusNotifierWatcher")]
impl Watcher {
    async fn register_status_notifier_item(
        &self,
        service: &str,
        #[zbus(header)] header: zbus::message::Header<'_>,
    ) {
        let sender = header.sender().map(|s| s.to_string()).unwrap_or_default();
        // appindicator sends its object path; others send a bus name.
        let item = if service.starts_with('/') {
            (sender, service.to_owned())
        } else {
            (service.to_owned(), "/StatusNotifierItem".to_owned())
        };
        self.0.lock().unwrap().items.push(item);
    }

    async fn register_status_notifier_host(&self, _service: &str) {}

    #[zbus(property)]
    fn is_status_notifier_host_registered(&self) -> bool {
        true
    }

    #[zbus(property)]
    fn protocol_version(&self) -> i32 {
        0
    }

    #[zbus(property)]
    fn registered_status_notifier_items(&self) -> Vec<String> {
        self.0
            .lock()
            .unwrap()
            .items
            .iter()
            .map(|(n, p)| format!("{n}{p}"))
            .collect()
    }
}

struct Notifications(Arc<Mutex<PanelState>>);

#[zbus::interface(name = "org.freedesktop.Notifications")]
impl Notifications {
    #[allow(clippy::too_many_arguments)]
    async fn notify(
        &self,
        _app_name: &str,
        _replaces_id: u32,
        _app_icon: &str,
        summary: &str,
        body: &str,
        _actions: Vec<String>,
        _hints: HashMap<String, OwnedValue>,
        _expire_timeout: i32,
    ) -> u32 {
        let mut s = self.0.lock().unwrap();
        s.notes.push((summary.to_owned(), body.to_owned()));
        u32::try_from(s.notes.len()).unwrap()
    }

    async fn get_capabilities(&self) -> Vec<String> {
        vec!["body".into()]
    }

    async fn get_server_information(&self) -> (String, String, String, String) {
        (
            "test-panel".into(),
            "switchboard".into(),
            "1".into(),
            "1.2".into(),
        )
    }
}

pub(crate) struct Panel {
    conn: zbus::Connection,
    state: Arc<Mutex<PanelState>>,
}

/// One dbusmenu entry: id, label, enabled, and its children.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub(crate) id: i32,
    pub(crate) label: String,
    enabled: bool,
    /// A check item's tick (`toggle-state` 1).
    ticked: bool,
    children: Vec<Entry>,
}

impl Entry {
    pub(crate) fn find(&self, pred: &dyn Fn(&Entry) -> bool) -> Option<&Entry> {
        if pred(self) {
            return Some(self);
        }
        self.children.iter().find_map(|c| c.find(pred))
    }

    fn labels(&self, out: &mut Vec<String>) {
        if !self.label.is_empty() {
            out.push(self.label.clone());
        }
        for c in &self.children {
            c.labels(out);
        }
    }
}

fn node(id: i32, props: &HashMap<String, OwnedValue>, children: Vec<Entry>) -> Entry {
    let label = props
        .get("label")
        .and_then(|l| String::try_from(l.try_clone().unwrap()).ok())
        .unwrap_or_default()
        .replace('_', "");
    let enabled = props
        .get("enabled")
        .and_then(|e| bool::try_from(e.try_clone().unwrap()).ok())
        .unwrap_or(true);
    let ticked = props
        .get("toggle-state")
        .and_then(|t| i32::try_from(t.try_clone().unwrap()).ok())
        == Some(1);
    Entry {
        id,
        label,
        enabled,
        ticked,
        children,
    }
}

/// A child in a dbusmenu layout: a variant holding `(ia{sv}av)`.
fn entry(v: &Value<'_>) -> Entry {
    let v = match v {
        Value::Value(inner) => inner.as_ref(),
        other => other,
    };
    let Value::Structure(s) = v else {
        panic!("a dbusmenu layout node: {v:?}");
    };
    let f = s.fields();
    let Value::I32(id) = f[0] else {
        panic!("id: {:?}", f[0])
    };
    let props: HashMap<String, OwnedValue> = HashMap::try_from(f[1].try_clone().unwrap()).unwrap();
    let Value::Array(children) = &f[2] else {
        panic!("children: {:?}", f[2])
    };
    node(id, &props, children.iter().map(entry).collect())
}

impl Panel {
    pub(crate) async fn start(address: &str) -> Self {
        let state = Arc::new(Mutex::new(PanelState::default()));
        let conn = zbus::connection::Builder::address(address)
            .unwrap()
            .serve_at("/StatusNotifierWatcher", Watcher(state.clone()))
            .unwrap()
            .serve_at(
                "/org/freedesktop/Notifications",
                Notifications(state.clone()),
            )
            .unwrap()
            .name("org.kde.StatusNotifierWatcher")
            .unwrap()
            .name("org.freedesktop.Notifications")
            .unwrap()
            .build()
            .await
            .unwrap();
        Self { conn, state }
    }

    pub(crate) async fn item(&self, limit: Duration) -> (String, String) {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(i) = self.state.lock().unwrap().items.first().cloned() {
                return i;
            }
            assert!(
                Instant::now() < deadline,
                "no tray item registered in {limit:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn prop(&self, item: &(String, String), name: &str) -> OwnedValue {
        let reply = self
            .conn
            .call_method(
                Some(item.0.as_str()),
                item.1.as_str(),
                Some("org.freedesktop.DBus.Properties"),
                "Get",
                &("org.kde.StatusNotifierItem", name),
            )
            .await
            .unwrap_or_else(|e| panic!("property {name}: {e}"));
        reply.body().deserialize::<OwnedValue>().unwrap()
    }

    async fn text(&self, item: &(String, String), name: &str) -> String {
        String::try_from(self.prop(item, name).await).unwrap()
    }

    /// Calls a method of the item's `com.canonical.dbusmenu` object.
    async fn dbusmenu<B>(
        &self,
        item: &(String, String),
        method: &str,
        args: &B,
    ) -> zbus::Result<zbus::Message>
    where
        B: serde::Serialize + zbus::zvariant::DynamicType,
    {
        let path = OwnedObjectPath::try_from(self.prop(item, "Menu").await).unwrap();
        self.conn
            .call_method(
                Some(item.0.as_str()),
                path.as_str(),
                Some("com.canonical.dbusmenu"),
                method,
                args,
            )
            .await
    }

    pub(crate) async fn menu(&self, item: &(String, String)) -> Entry {
        let reply = self
            .dbusmenu(item, "GetLayout", &(0i32, -1i32, Vec::<&str>::new()))
            .await
            .unwrap();
        type Layout = (i32, HashMap<String, OwnedValue>, Vec<OwnedValue>);
        let (_revision, (id, props, children)): (u32, Layout) = reply.body().deserialize().unwrap();
        node(id, &props, children.iter().map(|c| entry(c)).collect())
    }

    pub(crate) async fn click(&self, item: &(String, String), id: i32) {
        self.try_click(item, id).await.unwrap();
    }

    /// Clicking Quit may end the app before it answers.
    async fn try_click(&self, item: &(String, String), id: i32) -> zbus::Result<()> {
        // A panel announces the menu before clicking, as a user's pointer would open it.
        let _ = self.dbusmenu(item, "AboutToShow", &(0i32,)).await;
        self.dbusmenu(item, "Event", &(id, "clicked", Value::I32(0), 0u32))
            .await
            .map(|_| ())
    }

    /// Clicks Quit (the app may be gone before the click is answered).
    async fn quit(&self, item: &(String, String)) {
        let quit = self
            .menu(item)
            .await
            .find(&|e| e.label == "Quit")
            .unwrap()
            .id;
        let _ = self.try_click(item, quit).await;
    }

    /// Every label in the item's menu, submenus included.
    async fn labels(&self, item: &(String, String)) -> Vec<String> {
        let mut out = Vec::new();
        self.menu(item).await.labels(&mut out);
        out
    }

    fn notes(&self) -> Vec<(String, String)> {
        self.state.lock().unwrap().notes.clone()
    }
}

/// The icon's colour: the disc's colour at the top of the PNG the tray wrote. None when that
/// file was just replaced by a newer icon (read the property again).
fn icon_colour(icon_name: &str, theme_path: &str) -> Option<[u8; 3]> {
    let mut path = PathBuf::from(icon_name);
    if !path.is_absolute() {
        path = Path::new(theme_path).join(icon_name);
    }
    if path.extension().is_none() {
        path.set_extension("png");
    }
    let file = std::fs::File::open(&path).ok()?;
    let mut reader = png::Decoder::new(std::io::BufReader::new(file))
        .read_info()
        .unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    let channels = info.color_type.samples();
    // (x, y) = (50 %, 15 %): inside the disc, above every glyph.
    let (x, y) = (info.width as usize / 2, info.height as usize * 15 / 100);
    let i = (y * info.width as usize + x) * channels;
    Some([buf[i], buf[i + 1], buf[i + 2]])
}

fn named(c: [u8; 3]) -> &'static str {
    let [r, g, b] = c.map(i32::from);
    if g > r + 40 && g > b + 40 {
        "ok"
    } else if r > 180 && g > 90 && b < 60 {
        "degraded"
    } else if r > 180 && g < 80 {
        "down"
    } else if (r - g).abs() < 25 && (g - b).abs() < 30 {
        "paused"
    } else {
        "unknown"
    }
}

async fn icon_state(panel: &Panel, item: &(String, String)) -> &'static str {
    for _ in 0..50 {
        let name = panel.text(item, "IconName").await;
        let theme = panel.text(item, "IconThemePath").await;
        if let Some(c) = icon_colour(&name, &theme) {
            return named(c);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the tray's icon file keeps disappearing");
}

pub(crate) async fn eventually<F, Fut>(limit: Duration, what: &str, mut f: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if f().await {
            return start.elapsed();
        }
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn chat(gw: &Gateway) -> reqwest::StatusCode {
    http()
        .post(format!("{}/v1/chat/completions", gw.url))
        .json(&serde_json::json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap()
        .status()
}

fn screenshot(display: &str, to: &Path) {
    let ok = Command::new("import")
        .args(["-window", "root"])
        .arg(to)
        .env("DISPLAY", display)
        .status()
        .expect("import (package imagemagick)")
        .success();
    assert!(ok, "screenshot failed");
}

/// The environment the app gets: the test's display and bus, and a private home (the
/// autostart entry, WebKit's caches).
pub(crate) fn app_env(display: &str, address: &str, home: &Path) -> Vec<(String, String)> {
    vec![
        ("DISPLAY".into(), display.to_owned()),
        ("DBUS_SESSION_BUS_ADDRESS".into(), address.to_owned()),
        (
            "XDG_CONFIG_HOME".into(),
            home.join("config").display().to_string(),
        ),
        (
            "XDG_DATA_HOME".into(),
            home.join("data").display().to_string(),
        ),
        (
            "XDG_CACHE_HOME".into(),
            home.join("cache").display().to_string(),
        ),
        ("SWITCHBOARD_ADMIN_PASSWORD".into(), ADMIN_PASSWORD.into()),
        // The coding agents' settings the Connect menu writes.
        ("HOME".into(), home.display().to_string()),
        // No accessibility bus: GTK would start one that outlives the test's session bus.
        ("NO_AT_BRIDGE".into(), "1".into()),
        (
            "RUST_LOG".into(),
            "info,switchboard::admin=debug,switchboard::tray=debug".into(),
        ),
    ]
}

/// Top-level windows titled "Switchboard" (no window manager runs, so they are the root's
/// children).
fn app_windows(display: &str) -> Vec<u32> {
    use x11rb::connection::Connection;
    use x11rb::protocol::xproto::{AtomEnum, ConnectionExt, MapState};
    let (conn, screen) = x11rb::connect(Some(display)).unwrap();
    let root = conn.setup().roots[screen].root;
    let tree = conn.query_tree(root).unwrap().reply().unwrap();
    tree.children
        .into_iter()
        .filter(|w| {
            conn.get_window_attributes(*w)
                .ok()
                .and_then(|c| c.reply().ok())
                .is_some_and(|a| a.map_state == MapState::VIEWABLE)
        })
        .filter(|w| {
            conn.get_property(false, *w, AtomEnum::WM_NAME, AtomEnum::STRING, 0, 64)
                .ok()
                .and_then(|c| c.reply().ok())
                .is_some_and(|p| p.value == b"Switchboard")
        })
        .collect()
}

/// Asks the window to close, as a window manager's close button does (ICCCM WM_DELETE_WINDOW).
fn close_window(display: &str, window: u32) {
    use x11rb::connection::Connection;
    use x11rb::protocol::xproto::{ClientMessageEvent, ConnectionExt, EventMask};
    let (conn, _) = x11rb::connect(Some(display)).unwrap();
    let atom = |name: &[u8]| conn.intern_atom(false, name).unwrap().reply().unwrap().atom;
    let (protocols, delete) = (atom(b"WM_PROTOCOLS"), atom(b"WM_DELETE_WINDOW"));
    let event = ClientMessageEvent::new(32, window, protocols, [delete, 0, 0, 0, 0]);
    conn.send_event(false, window, EventMask::NO_EVENT, event)
        .unwrap()
        .check()
        .unwrap();
    conn.flush().unwrap();
}

/// What the X clipboard (CLIPBOARD selection) holds as text, asked the way a paste does.
fn clipboard_text(display: &str) -> Option<String> {
    use x11rb::connection::Connection;
    use x11rb::protocol::Event;
    use x11rb::protocol::xproto::{AtomEnum, ConnectionExt, CreateWindowAux, WindowClass};
    let (conn, screen) = x11rb::connect(Some(display)).ok()?;
    let root = conn.setup().roots[screen].root;
    let me = conn.generate_id().ok()?;
    conn.create_window(
        x11rb::COPY_DEPTH_FROM_PARENT,
        me,
        root,
        0,
        0,
        1,
        1,
        0,
        WindowClass::INPUT_OUTPUT,
        0,
        &CreateWindowAux::new(),
    )
    .ok()?;
    let atom = |name: &[u8]| {
        conn.intern_atom(false, name)
            .ok()?
            .reply()
            .ok()
            .map(|r| r.atom)
    };
    let (clipboard, utf8, into) = (
        atom(b"CLIPBOARD")?,
        atom(b"UTF8_STRING")?,
        atom(b"SB_PASTE")?,
    );
    conn.convert_selection(me, clipboard, utf8, into, x11rb::CURRENT_TIME)
        .ok()?;
    conn.flush().ok()?;
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline {
        match conn.poll_for_event().ok()? {
            Some(Event::SelectionNotify(e)) if e.property == x11rb::NONE => return None,
            Some(Event::SelectionNotify(_)) => {
                let reply = conn
                    .get_property(false, me, into, AtomEnum::ANY, 0, 4096)
                    .ok()?
                    .reply()
                    .ok()?;
                return String::from_utf8(reply.value).ok();
            }
            Some(_) => {}
            None => std::thread::sleep(Duration::from_millis(20)),
        }
    }
    None
}

/// WebKit's helper processes started by `pid` (the page's renderer among them).
fn webkit_children(pid: u32) -> usize {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0;
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|p| {
            let stat = std::fs::read_to_string(format!("/proc/{p}/stat")).unwrap_or_default();
            let comm = std::fs::read_to_string(format!("/proc/{p}/comm")).unwrap_or_default();
            let ppid = stat
                .rsplit(')')
                .next()
                .and_then(|rest| rest.split_whitespace().nth(1))
                .and_then(|x| x.parse::<u32>().ok());
            ppid == Some(pid) && comm.starts_with("WebKitWebProces")
        })
        .count()
}

/// Quits from the tray menu: the app and its gateway exit cleanly.
pub(crate) async fn quit_from_menu(panel: &Panel, item: &(String, String), gw: &mut Gateway) {
    panel.quit(item).await;
    let status = gw
        .wait(Duration::from_secs(15))
        .await
        .expect("the app quits");
    assert!(status.success(), "{status}: {}", gw.stderr());
}

/// UPower as the test plays it on its stand-in system bus.
struct Upower {
    on_battery: bool,
}

#[zbus::interface(name = "org.freedesktop.UPower")]
impl Upower {
    #[zbus(property)]
    fn on_battery(&self) -> bool {
        self.on_battery
    }
}

/// The state of one provider's own breaker in `GET /api/status`.
async fn provider_state(gw: &Gateway, token: &str, name: &str) -> String {
    let s: serde_json::Value = common::admin(gw, token, "GET", "/status", None)
        .await
        .json()
        .await
        .unwrap();
    s["providers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .map(|p| {
            p["breaker"]["state"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .unwrap_or_default()
}

/// The desktop app on `config`, with its data in `data_dir` and any port.
pub(crate) fn desktop_launch(
    config: &Path,
    data_dir: &Path,
    env: Vec<(String, String)>,
    hidden: bool,
) -> Launch {
    let mut args: Vec<String> = if hidden {
        vec!["--hidden".into()]
    } else {
        Vec::new()
    };
    args.extend([
        "--config".into(),
        config.display().to_string(),
        "--data-dir".into(),
        data_dir.display().to_string(),
        "--port".into(),
        "0".into(),
    ]);
    Launch { args, env }
}

fn two_providers(a: &str, b: &str) -> String {
    format!(
        r#"
[[providers]]
name = "relay-a"
base_url = "{a}/v1"
weight = 1000000
models = ["gpt-4o"]

[[providers]]
name = "relay-b"
base_url = "{b}/v1"
weight = 1
models = ["gpt-4o"]

[[models]]
name = "gpt-4o"
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tray_shows_state_and_pauses_a_provider_through_dbusmenu() {
    let (_x, display) = xvfb();
    let (_bus, address) = session_bus();
    let panel = Panel::start(&address).await;

    let a = Mock::start().await;
    let b = Mock::start().await;
    let config = two_providers(&a.url(), &b.url());
    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("switchboard.toml");
    std::fs::write(&config_path, config).unwrap();
    let data_dir = dir.path().join("data");
    let home = dir.path().join("home");
    // Where "Export configuration" saves: the XDG Downloads folder of this test's user.
    let downloads = dir.path().join("downloads");
    std::fs::create_dir_all(home.join("config")).unwrap();
    std::fs::write(
        home.join("config/user-dirs.dirs"),
        format!("XDG_DOWNLOAD_DIR=\"{}\"\n", downloads.display()),
    )
    .unwrap();
    let launch = desktop_launch(
        &config_path,
        &data_dir,
        app_env(&display, &address, &home),
        false,
    );
    let started = Instant::now();
    let mut gw = common::spawn(launch, &data_dir).unwrap_or_else(|(s, e)| panic!("{s}: {e}"));
    let ready = started.elapsed();
    let health = http()
        .get(format!("{}/health", gw.url))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);

    // The panel sees the item, its title and a healthy icon.
    let item = panel.item(Duration::from_secs(20)).await;
    eventually(Duration::from_secs(5), "a healthy icon", || async {
        icon_state(&panel, &item).await == "ok"
    })
    .await;
    let menu = panel.menu(&item).await;
    let mut labels = Vec::new();
    menu.labels(&mut labels);
    for want in [
        "Switchboard: 2 ok",
        "relay-a: ok",
        "relay-b: ok",
        "Pause all",
        "Resume all",
        "Open Switchboard",
        "Copy base URL",
        "Export configuration",
        "Connect",
        "Claude Code",
        "Codex",
        "Gemini CLI",
        "Start at login",
        "Notifications",
        "Quit",
    ] {
        assert!(
            labels.iter().any(|l| l == want),
            "menu lacks {want:?}: {labels:?}"
        );
    }

    // The window shows the bundled UI, which fetched live data from the gateway with the
    // shell's token (the admin log shows the page's calls from its own origin).
    let shots = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/artifacts/desktop");
    std::fs::create_dir_all(&shots).unwrap();
    eventually(
        Duration::from_secs(30),
        "the window's page calls /api/status",
        || {
            let log = gw.stderr();
            async move {
                log.lines().any(|l| {
                    l.contains("admin call")
                        && l.contains("/status")
                        && l.contains("tauri://localhost")
                        && l.contains("status=200")
                })
            }
        },
    )
    .await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    screenshot(&display, &shots.join("window.png"));

    // Pause relay-a (the heavy favourite) through the menu: its traffic stops.
    let pause_a = menu
        .find(&|e| e.label == "relay-a: ok")
        .and_then(|sub| sub.find(&|e| e.label == "Pause"))
        .expect("relay-a's Pause item")
        .id;
    panel.click(&item, pause_a).await;
    eventually(Duration::from_secs(2), "relay-a shows paused", || async {
        let l = panel.labels(&item).await;
        l.iter().any(|x| x.starts_with("relay-a: paused"))
    })
    .await;
    let a_before = a.hits();
    for _ in 0..5 {
        assert_eq!(chat(&gw).await, 200);
    }
    assert_eq!(a.hits(), a_before, "a paused provider got traffic");
    assert!(b.hits() >= 5, "relay-b took the traffic");
    let menu = panel.menu(&item).await;
    let resume_a = menu
        .find(&|e| e.label.starts_with("relay-a: paused"))
        .and_then(|sub| sub.find(&|e| e.label == "Resume"))
        .expect("relay-a's Resume item");
    assert!(resume_a.enabled, "Resume is enabled while paused");
    panel.click(&item, resume_a.id).await;
    eventually(Duration::from_secs(2), "relay-a resumes", || async {
        let l = panel.labels(&item).await;
        l.iter().any(|x| x == "relay-a: ok")
    })
    .await;

    // A 500 from relay-a opens its breaker: the icon turns degraded within a second, the menu
    // says why and until when, and the panel gets a notification.
    let page_reads = |log: &str| {
        log.lines()
            .filter(|l| {
                l.contains("admin call") && l.contains("path=/status") && l.contains("tauri://")
            })
            .count()
    };
    let reads_before = page_reads(&gw.stderr());
    a.script([Reply::status(500, r#"{"error":{"message":"boom"}}"#)]);
    assert_eq!(
        chat(&gw).await,
        200,
        "relay-b answered after relay-a failed"
    );
    let took = eventually(
        Duration::from_secs(1),
        "the icon turns degraded",
        || async { icon_state(&panel, &item).await == "degraded" },
    )
    .await;
    // The relabelled submenu is swapped in just after the icon changes.
    eventually(
        Duration::from_secs(1),
        "the menu says who and until when",
        || async {
            let labels = panel.labels(&item).await;
            labels
                .iter()
                .any(|l| l.starts_with("relay-a: cooling until "))
                && labels
                    .iter()
                    .any(|l| l.starts_with("Switchboard: 1 ok, 1 cooling (relay-a until "))
        },
    )
    .await;
    eventually(Duration::from_secs(2), "a notification", || async {
        panel
            .notes()
            .iter()
            .any(|(s, _)| s.contains("relay-a") && s.contains("cooling"))
    })
    .await;
    // The window follows too: its page re-reads the status after the event, unprompted.
    eventually(Duration::from_secs(3), "the window refreshes live", || {
        let log = gw.stderr();
        async move { page_reads(&log) > reads_before }
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    screenshot(&display, &shots.join("degraded.png"));

    // Today's line counts what was sent (at least the six chats above, the last saved by failover)
    // from the request log; it is summed every five seconds.
    eventually(
        Duration::from_secs(12),
        "today's line counts the traffic",
        || async {
            panel.labels(&item).await.iter().any(|l| {
                l.strip_prefix("Today: ")
                    .and_then(|rest| rest.split(' ').next())
                    .and_then(|n| n.parse::<u64>().ok())
                    .is_some_and(|n| n >= 6)
                    && l.strip_suffix(" saved by failover")
                        .and_then(|rest| rest.rsplit(' ').next())
                        .and_then(|n| n.parse::<u64>().ok())
                        .is_some_and(|n| n >= 1)
            })
        },
    )
    .await;

    // Muted, a trip is shown but not announced.
    let menu = panel.menu(&item).await;
    let mute = menu.find(&|e| e.label == "Notifications").unwrap().id;
    panel.click(&item, mute).await;
    let token = common::admin_token(&gw).await;
    eventually(Duration::from_secs(3), "notifications muted", || async {
        let s: serde_json::Value = common::admin(&gw, &token, "GET", "/settings", None)
            .await
            .json()
            .await
            .unwrap();
        s["notifications"] == false
    })
    .await;
    let notes_before = panel.notes().len();
    let r = common::admin(&gw, &token, "POST", "/providers/relay-a/pause", None).await;
    assert_eq!(r.status(), 204);
    b.script([Reply::status(500, r#"{"error":{"message":"boom"}}"#)]);
    let _ = chat(&gw).await;
    eventually(Duration::from_secs(2), "relay-b cooling", || async {
        let l = panel.labels(&item).await;
        l.iter().any(|x| x.starts_with("relay-b: cooling"))
    })
    .await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(panel.notes().len(), notes_before, "muted, yet notified");

    // Start at login writes the autostart entry; unticking removes it.
    let autostart_file = home.join("config/autostart/switchboard.desktop");
    let menu = panel.menu(&item).await;
    let autostart = menu.find(&|e| e.label == "Start at login").unwrap().id;
    panel.click(&item, autostart).await;
    eventually(Duration::from_secs(3), "the autostart entry", || async {
        autostart_file.is_file()
    })
    .await;
    let entry = std::fs::read_to_string(&autostart_file).unwrap();
    assert!(entry.contains("--hidden"), "{entry}");
    panel.click(&item, autostart).await;
    eventually(
        Duration::from_secs(3),
        "the autostart entry goes",
        || async { !autostart_file.exists() },
    )
    .await;

    // A second launch does not start a second gateway: it hands over and exits.
    let second = Command::new(common::BIN)
        .args(["--data-dir", &data_dir.display().to_string(), "--port", "0"])
        .env("DISPLAY", &display)
        .env("DBUS_SESSION_BUS_ADDRESS", &address)
        .output()
        .unwrap();
    assert!(second.status.success());
    assert!(
        String::from_utf8_lossy(&second.stdout).contains("already running"),
        "{}",
        String::from_utf8_lossy(&second.stdout)
    );

    // Copy base URL puts the client base URL on the clipboard, ready to paste.
    let copy = panel
        .menu(&item)
        .await
        .find(&|e| e.label == "Copy base URL")
        .unwrap()
        .id;
    panel.click(&item, copy).await;
    let want = format!("{}/v1", gw.url);
    let shown = display.clone();
    eventually(
        Duration::from_secs(5),
        "the base URL on the clipboard",
        || {
            let (shown, want) = (shown.clone(), want.clone());
            async move {
                tokio::task::spawn_blocking(move || clipboard_text(&shown))
                    .await
                    .unwrap()
                    .is_some_and(|t| t == want)
            }
        },
    )
    .await;

    // Connect ▸ Claude Code writes its settings into this test's HOME and ticks; unticking
    // puts them back (here the file goes: there was none).
    let claude = home.join(".claude/settings.json");
    let find_claude = |menu: &Entry| {
        menu.find(&|e| e.label == "Connect")
            .and_then(|c| c.find(&|e| e.label == "Claude Code"))
            .cloned()
            .expect("Connect ▸ Claude Code")
    };
    let connect = find_claude(&panel.menu(&item).await);
    assert!(!connect.ticked);
    panel.click(&item, connect.id).await;
    eventually(Duration::from_secs(5), "Claude Code connected", || async {
        std::fs::read_to_string(&claude).is_ok_and(|t| t.contains(&gw.url))
    })
    .await;
    eventually(Duration::from_secs(3), "its tick", || async {
        find_claude(&panel.menu(&item).await).ticked
    })
    .await;
    // Its notification ends with the test request's result.
    eventually(
        Duration::from_secs(5),
        "the connect's notification",
        || async {
            panel.notes().iter().any(|(summary, body)| {
                summary == "Claude Code connected" && body.contains("\nTest request: gpt-4o ")
            })
        },
    )
    .await;
    panel.click(&item, connect.id).await;
    eventually(
        Duration::from_secs(5),
        "Claude Code disconnected",
        || async { !claude.exists() },
    )
    .await;
    assert!(!find_claude(&panel.menu(&item).await).ticked);

    // Export configuration saves a config file without secrets in Downloads, and says where.
    let export = panel
        .menu(&item)
        .await
        .find(&|e| e.label == "Export configuration")
        .unwrap()
        .id;
    panel.click(&item, export).await;
    let saved = downloads.join("switchboard.toml");
    eventually(Duration::from_secs(5), "the exported file", || async {
        std::fs::read_to_string(&saved).is_ok_and(|t| t.contains("name = \"relay-b\""))
    })
    .await;
    let exported = std::fs::read_to_string(&saved).unwrap();
    assert!(exported.contains("name = \"relay-a\""), "{exported}");
    eventually(
        Duration::from_secs(3),
        "the export's notification",
        || async {
            panel.notes().iter().any(|(summary, body)| {
                summary == "Configuration exported" && *body == saved.display().to_string()
            })
        },
    )
    .await;

    // Quit from the menu: the app and its gateway exit cleanly.
    quit_from_menu(&panel, &item, &mut gw).await;
    println!(
        "desktop: gateway ready {ready:?} after spawn; tray degraded {took:?} after the failure"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hidden_lives_in_the_tray_and_closing_the_window_frees_its_webview() {
    let (_x, display) = xvfb();
    let (_bus, address) = session_bus();
    let panel = Panel::start(&address).await;
    let (a, b) = (Mock::start().await, Mock::start().await);
    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("switchboard.toml");
    std::fs::write(&config_path, two_providers(&a.url(), &b.url())).unwrap();
    let data_dir = dir.path().join("data");
    let home = dir.path().join("home");
    let data_arg = data_dir.display().to_string();
    // Claude Code connected by a gateway that is then killed: this start asks keep or restore.
    let home_arg = home.display().to_string();
    let before = common::spawn(
        common::Launch::serve(&config_path, &data_dir)
            .env("HOME", &home_arg)
            .env("SWITCHBOARD_ADMIN_PASSWORD", ADMIN_PASSWORD),
        &data_dir,
    )
    .unwrap_or_else(|(s, e)| panic!("{s}: {e}"));
    let connected = Command::new(common::BIN)
        .args(["connect", "claude-code", "--data-dir", &data_arg])
        .env("HOME", &home_arg)
        .output()
        .unwrap();
    assert!(connected.status.success(), "{connected:?}");
    drop(before);
    let launch = desktop_launch(
        &config_path,
        &data_dir,
        app_env(&display, &address, &home),
        true,
    );
    let mut gw = common::spawn(launch, &data_dir).unwrap_or_else(|(s, e)| panic!("{s}: {e}"));
    let pid = gw.child.id();
    panel.item(Duration::from_secs(20)).await;
    eventually(
        Duration::from_secs(10),
        "the keep-or-restore question",
        || async {
            panel.notes().iter().any(|(summary, body)| {
                summary == "Claude Code is still connected" && body.contains("Keep it")
            })
        },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(app_windows(&display).is_empty(), "--hidden opened a window");
    assert_eq!(webkit_children(pid), 0, "no webview while hidden");

    // A second launch (a click on the app's icon) brings the window up in the first.
    let second = Command::new(common::BIN)
        .args(["--data-dir", &data_arg])
        .env("DISPLAY", &display)
        .env("DBUS_SESSION_BUS_ADDRESS", &address)
        .output()
        .unwrap();
    assert!(second.status.success());
    eventually(Duration::from_secs(20), "the window opens", || async {
        !app_windows(&display).is_empty() && webkit_children(pid) > 0
    })
    .await;

    assert!(
        gw.child.try_wait().unwrap().is_none(),
        "the first instance is still running"
    );

    // Closing the window, as a window manager's close button does, keeps the app and its
    // gateway running, and WebKit's renderer goes away with the webview.
    let window = app_windows(&display)[0];
    close_window(&display, window);
    eventually(Duration::from_secs(10), "the window closes", || async {
        app_windows(&display).is_empty()
    })
    .await;
    eventually(
        Duration::from_secs(10),
        "WebKit's renderer exits",
        || async { webkit_children(pid) == 0 },
    )
    .await;
    assert!(
        gw.child.try_wait().unwrap().is_none(),
        "closing the window quit the app"
    );
    let health = http()
        .get(format!("{}/health", gw.url))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);

    gw.signal("TERM");
    let status = gw
        .wait(Duration::from_secs(15))
        .await
        .expect("SIGTERM quits");
    assert!(status.success(), "{status}: {}", gw.stderr());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_taken_port_keeps_the_app_open_and_says_why() {
    let (_x, display) = xvfb();
    let (_bus, address) = session_bus();
    let panel = Panel::start(&address).await;
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let mut cmd = Command::new(common::BIN);
    cmd.args(["--data-dir", &dir.path().join("data").display().to_string()])
        .args(["--port", &port.to_string()])
        .stdout(Stdio::null())
        // A file, not a pipe nobody reads: a full pipe would block the app's logging.
        .stderr(std::fs::File::create(dir.path().join("app.log")).unwrap());
    for (k, v) in app_env(&display, &address, &home) {
        cmd.env(k, v);
    }
    let mut app = Daemon(cmd.spawn().unwrap());
    let item = panel.item(Duration::from_secs(20)).await;
    let labels = panel.labels(&item).await;
    let status = labels
        .iter()
        .find(|l| l.starts_with("Switchboard: gateway not running"))
        .unwrap_or_else(|| panic!("{labels:?}"));
    assert!(status.contains(&format!("127.0.0.1:{port}")), "{status}");
    // The window opens to say so (and offer another port), even though nothing listens.
    eventually(Duration::from_secs(20), "the window opens", || async {
        !app_windows(&display).is_empty()
    })
    .await;
    assert!(app.0.try_wait().unwrap().is_none(), "the app died");
    let shots = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/artifacts/desktop");
    std::fs::create_dir_all(&shots).unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    screenshot(&display, &shots.join("port-taken.png"));

    // The tray offers the next free port; taking it starts the gateway there, and it is saved.
    let menu = panel.menu(&item).await;
    let offer = menu
        .find(&|e| e.label.starts_with("Start on port "))
        .unwrap_or_else(|| panic!("no port offer: {menu:?}"));
    let new_port: u16 = offer.label["Start on port ".len()..].parse().unwrap();
    assert!(new_port > port);
    panel.click(&item, offer.id).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let answered = http()
            .get(format!("http://127.0.0.1:{new_port}/health"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200);
        if answered {
            break;
        }
        if Instant::now() > deadline {
            panic!(
                "the gateway does not answer on port {new_port}; tray: {:?}\n{}",
                panel.labels(&item).await,
                std::fs::read_to_string(dir.path().join("app.log")).unwrap_or_default()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eventually(
        Duration::from_secs(5),
        "the tray shows it running",
        || async {
            let l = panel.labels(&item).await;
            l.iter().any(|x| x == "Switchboard: no providers yet")
                && !l.iter().any(|x| x.starts_with("Start on port "))
        },
    )
    .await;
    let token = {
        let r = http()
            .post(format!("http://127.0.0.1:{new_port}/api/login"))
            .json(&serde_json::json!({ "password": ADMIN_PASSWORD }))
            .send()
            .await
            .unwrap();
        r.json::<serde_json::Value>().await.unwrap()["token"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let settings: serde_json::Value = http()
        .get(format!("http://127.0.0.1:{new_port}/api/settings"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(settings["port"], new_port);
    panel.quit(&item).await;
    let deadline = Instant::now() + Duration::from_secs(15);
    while app.0.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "Quit did not end the app");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The port that worked was saved: the next start (no --port) listens there.
    let data_dir = dir.path().join("data");
    let next = common::spawn(
        Launch {
            args: vec![
                "serve".into(),
                "--data-dir".into(),
                data_dir.display().to_string(),
            ],
            env: Vec::new(),
        },
        &data_dir,
    )
    .unwrap_or_else(|(s, e)| panic!("{s}: {e}"));
    assert_eq!(next.port, new_port, "the working port was saved");
    drop(taken);
}

/// The machine's own events reach the gateway through the system bus, here a private one where
/// the test plays logind, NetworkManager and UPower: waking from sleep and the network coming
/// back close the breakers that network errors opened; on battery, probes pause and resume
/// after. The tray's timed pauses, clicked through dbusmenu, end by themselves (a debug build
/// takes a short minute from SWITCHBOARD_TEST_MINUTE_MS).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sleep_network_and_battery_reach_the_gateway_and_timed_pauses_end() {
    let (_x, display) = xvfb();
    let (_bus, address) = session_bus();
    let (_system_bus, system) = session_bus();
    let panel = Panel::start(&address).await;
    let system_conn = zbus::connection::Builder::address(system.as_str())
        .unwrap()
        .serve_at("/org/freedesktop/UPower", Upower { on_battery: false })
        .unwrap()
        .name("org.freedesktop.UPower")
        .unwrap()
        .build()
        .await
        .unwrap();

    // relay-a is down (nothing listens on its port); relay-b answers.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_url = format!("http://{}", dead.local_addr().unwrap());
    drop(dead);
    let b = Mock::start().await;
    let config = format!(
        "[routing]\nnetwork_failure_threshold = 1\n{}",
        two_providers(&dead_url, &b.url())
    );
    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("switchboard.toml");
    std::fs::write(&config_path, config).unwrap();
    let data_dir = dir.path().join("data");
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let mut env = app_env(&display, &address, &home);
    env.push(("DBUS_SYSTEM_BUS_ADDRESS".into(), system.clone()));
    env.push(("SWITCHBOARD_TEST_MINUTE_MS".into(), "100".into()));
    let launch = desktop_launch(&config_path, &data_dir, env, false);
    let mut gw = common::spawn(launch, &data_dir).unwrap_or_else(|(s, e)| panic!("{s}: {e}"));
    let token = common::admin_token(&gw).await;
    let item = panel.item(Duration::from_secs(20)).await;

    // Sleep, then wake: the breaker a network error opened closes at once.
    for (what, wake) in [("woke from sleep", true), ("the network is back", false)] {
        assert_eq!(chat(&gw).await, 200, "relay-b answers");
        eventually(Duration::from_secs(2), "relay-a opens", || async {
            provider_state(&gw, &token, "relay-a").await == "open"
        })
        .await;
        if wake {
            system_conn
                .emit_signal(
                    None::<()>,
                    "/org/freedesktop/login1",
                    "org.freedesktop.login1.Manager",
                    "PrepareForSleep",
                    &false,
                )
                .await
                .unwrap();
        } else {
            system_conn
                .emit_signal(
                    None::<()>,
                    "/org/freedesktop/NetworkManager",
                    "org.freedesktop.NetworkManager",
                    "StateChanged",
                    &70u32,
                )
                .await
                .unwrap();
        }
        eventually(Duration::from_secs(2), what, || async {
            provider_state(&gw, &token, "relay-a").await == "closed"
        })
        .await;
        assert!(gw.stderr().contains(what), "{}", gw.stderr());
    }

    // Probes every second reach relay-b; on battery they stop, and come back after.
    let r = common::admin(
        &gw,
        &token,
        "PUT",
        "/settings",
        Some(serde_json::json!({"routing": {"probe_interval_s": 1}})),
    )
    .await;
    assert!(r.status().is_success());
    let before = b.hits();
    eventually(Duration::from_secs(4), "probes reach relay-b", || async {
        b.hits() >= before + 2
    })
    .await;
    let upower = system_conn
        .object_server()
        .interface::<_, Upower>("/org/freedesktop/UPower")
        .await
        .unwrap();
    let set_battery = |on: bool| {
        let upower = upower.clone();
        async move {
            upower.get_mut().await.on_battery = on;
            upower
                .get()
                .await
                .on_battery_changed(upower.signal_emitter())
                .await
                .unwrap();
        }
    };
    set_battery(true).await;
    eventually(Duration::from_secs(3), "probes pause on battery", || {
        let log = gw.stderr();
        async move { log.contains("on_battery=true") }
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let paused_at = b.hits();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(b.hits(), paused_at, "probes went on on battery");
    set_battery(false).await;
    eventually(Duration::from_secs(4), "probes resume on mains", || async {
        b.hits() > paused_at
    })
    .await;

    // "Pause for 15 min" and "Pause for 1 h", clicked in the tray, end by themselves.
    for (item_label, minutes) in [("Pause for 15 min", 15u64), ("Pause for 1 h", 60)] {
        let menu = panel.menu(&item).await;
        let pause = menu
            .find(&|e| e.label.starts_with("relay-b:"))
            .and_then(|sub| sub.find(&|e| e.label == item_label))
            .unwrap_or_else(|| panic!("relay-b's {item_label} item"))
            .id;
        panel.click(&item, pause).await;
        eventually(Duration::from_secs(2), "relay-b shows paused", || async {
            let l = panel.labels(&item).await;
            l.iter().any(|x| x.starts_with("relay-b: paused until "))
        })
        .await;
        // A minute is 100 ms here: the pause ends after `minutes` tenths of a second.
        let lasts = Duration::from_millis(minutes * 100);
        eventually(
            lasts + Duration::from_secs(3),
            "relay-b resumes by itself",
            || async {
                let l = panel.labels(&item).await;
                l.iter().any(|x| x.starts_with("relay-b: ok"))
            },
        )
        .await;
        assert!(gw.stderr().contains("timed pause ended"), "{}", gw.stderr());
    }

    quit_from_menu(&panel, &item, &mut gw).await;
}
