//! The installers as a user meets them: `scripts/package` builds the .deb and the AppImage from
//! this build's binaries; the .deb is installed with dpkg on this machine, its installed binary
//! started `--hidden` under Xvfb (health answers, the tray item registers, "Start at login"
//! names the installed binary), then purged with nothing of it left but the user's data. The
//! AppImage starts the same way, from its own file.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::common::{self, Gateway, http};
use crate::desktop::{
    Panel, app_env, desktop_launch, eventually, quit_from_menu, session_bus, xvfb,
};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn conf() -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(Path::new(ROOT).join("tauri.conf.json")).unwrap())
        .unwrap()
}

/// `Key=value` of a desktop entry's main group.
fn key(entry: &str, k: &str) -> Option<String> {
    entry
        .lines()
        .find_map(|l| l.strip_prefix(k)?.strip_prefix('='))
        .map(str::to_owned)
}

/// Starts `program` as the desktop app in the tray, on a display, bus and panel of its own, and
/// checks what a user would first see: the gateway answers and the tray item is there. Clicks
/// "Start at login" and answers the autostart entry it wrote; the app is then quit from its menu.
async fn start_in_tray_and_enable_autostart(program: &Path, dir: &Path) -> String {
    let (_x, display) = xvfb();
    let (_bus, address) = session_bus();
    let panel = Panel::start(&address).await;
    let config = dir.join("switchboard.toml");
    std::fs::write(&config, "").unwrap();
    let data_dir = dir.join("data");
    let home = dir.join("home");
    let launch = desktop_launch(&config, &data_dir, app_env(&display, &address, &home), true);
    let mut gw: Gateway = common::spawn_program(program, launch, &data_dir)
        .unwrap_or_else(|(s, e)| panic!("{} did not start: {s}: {e}", program.display()));
    let health = http()
        .get(format!("{}/health", gw.url))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let item = panel.item(Duration::from_secs(30)).await;
    let menu = panel.menu(&item).await;
    let autostart = menu.find(&|e| e.label == "Start at login").unwrap().id;
    panel.click(&item, autostart).await;
    let file = home.join("config/autostart/switchboard.desktop");
    eventually(Duration::from_secs(5), "the autostart entry", || async {
        file.is_file()
    })
    .await;
    quit_from_menu(&panel, &item, &mut gw).await;
    std::fs::read_to_string(file).unwrap()
}

/// The files a package owns, as dpkg lists them (folders left out: /usr/share is not ours).
fn owned_files(pkg: &str) -> Vec<PathBuf> {
    run(Command::new("dpkg").args(["-L", pkg]))
        .lines()
        .map(PathBuf::from)
        .filter(|p| p.is_file() || p.is_symlink())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_deb_and_the_appimage_install_start_in_the_tray_and_leave_nothing_behind() {
    let conf = conf();
    let version = conf["version"].as_str().unwrap();
    let out = tempfile::tempdir().unwrap();
    let bin_dir = Path::new(common::BIN).parent().unwrap();
    let built = run(Command::new("bash")
        .arg(Path::new(ROOT).join("scripts/package"))
        .arg("--bin-dir")
        .arg(bin_dir)
        .arg("--runtime")
        .arg(env!("CARGO_BIN_EXE_switchboard-appimage-runtime"))
        .arg("--out")
        .arg(out.path()));
    let deb = PathBuf::from(built.lines().find(|l| l.ends_with(".deb")).unwrap());
    let appimage = PathBuf::from(built.lines().find(|l| l.ends_with(".AppImage")).unwrap());

    // The .deb says what tauri.conf.json says.
    let fields = run(Command::new("dpkg-deb")
        .arg("-f")
        .arg(&deb)
        .args(["Package", "Version", "Depends"]));
    let depends: Vec<&str> = conf["bundle"]["linux"]["deb"]["depends"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap())
        .collect();
    assert!(fields.contains("Package: switchboard\n"), "{fields}");
    assert!(
        fields.contains(&format!("Version: {version}\n")),
        "{fields}"
    );
    assert!(
        fields.contains(&format!("Depends: {}\n", depends.join(", "))),
        "{fields}"
    );

    // Installed on this machine, as a user's `apt install ./Switchboard.deb` would.
    let _ = Command::new("dpkg")
        .args(["--purge", "switchboard"])
        .output();
    run(Command::new("dpkg").arg("-i").arg(&deb));
    let files = owned_files("switchboard");
    for f in [
        "/usr/bin/switchboard",
        "/usr/bin/switchboard-desktop",
        "/usr/share/applications/switchboard.desktop",
        "/usr/share/icons/hicolor/32x32/apps/switchboard.png",
        "/usr/share/icons/hicolor/128x128/apps/switchboard.png",
    ] {
        assert!(
            files.contains(&PathBuf::from(f)),
            "{f} not installed: {files:?}"
        );
    }
    // The launcher entry is valid and starts the installed binary with the installed icon.
    let entry_path = "/usr/share/applications/switchboard.desktop";
    let checked = run(Command::new("desktop-file-validate").arg(entry_path));
    assert!(checked.trim().is_empty(), "{checked}");
    let entry = std::fs::read_to_string(entry_path).unwrap();
    let exec = key(&entry, "Exec").unwrap();
    let which = run(Command::new("sh").args(["-c", &format!("command -v {exec}")]));
    assert_eq!(which.trim(), "/usr/bin/switchboard", "Exec={exec}");
    assert_eq!(key(&entry, "Icon").as_deref(), Some("switchboard"));

    let dir = tempfile::tempdir().unwrap();
    let autostart =
        start_in_tray_and_enable_autostart(Path::new("/usr/bin/switchboard"), dir.path()).await;
    assert_eq!(
        key(&autostart, "Exec").as_deref(),
        Some("\"/usr/bin/switchboard-desktop\" --hidden"),
        "{autostart}"
    );
    let tryexec = key(&autostart, "TryExec").unwrap();
    assert_eq!(tryexec, "/usr/bin/switchboard-desktop");

    run(Command::new("dpkg").args(["--purge", "switchboard"]));
    let left: Vec<_> = files
        .iter()
        .filter(|f| f.exists() || f.is_symlink())
        .collect();
    assert!(left.is_empty(), "left behind after purge: {left:?}");
    assert!(
        !Command::new("dpkg")
            .args(["-s", "switchboard"])
            .output()
            .unwrap()
            .status
            .success()
    );
    // What stays is the user's: the data folder, and a login entry a desktop now skips, since
    // its TryExec names a binary that is gone.
    assert!(dir.path().join("data/config.db").is_file());
    assert!(!Path::new(&tryexec).exists());

    // The AppImage: the format's mark, the AppDir the format asks for, and a start from its file.
    let bytes = std::fs::read(&appimage).unwrap();
    assert_eq!(&bytes[8..11], b"AI\x02");
    drop(bytes);
    let unpack = tempfile::tempdir().unwrap();
    run(Command::new(&appimage)
        .arg("--appimage-extract")
        .current_dir(unpack.path()));
    let appdir = unpack.path().join("squashfs-root");
    for f in [
        "AppRun",
        "switchboard.desktop",
        "switchboard.png",
        ".DirIcon",
        "usr/bin/switchboard-desktop",
    ] {
        assert!(appdir.join(f).exists(), "{f} missing from the AppDir");
    }
    run(Command::new("desktop-file-validate").arg(appdir.join("switchboard.desktop")));

    let dir = tempfile::tempdir().unwrap();
    let autostart = start_in_tray_and_enable_autostart(&appimage, dir.path()).await;
    assert_eq!(
        key(&autostart, "Exec"),
        Some(format!("\"{}\" --hidden", appimage.display())),
        "{autostart}"
    );
    // It ran from its unpacked copy in the user's cache, not from a FUSE mount.
    let cache = dir.path().join("home/cache/switchboard/appimage");
    assert_eq!(cache.read_dir().unwrap().count(), 1, "one unpacked copy");
}
