//! Start at login: an XDG autostart entry on Linux desktops that starts the app in the tray.

use std::path::PathBuf;

fn entry_path() -> Option<PathBuf> {
    dirs::config_dir().map(|d| d.join("autostart").join("switchboard.desktop"))
}

/// What a login should start: the AppImage itself when running from one (its runtime says so in
/// `APPIMAGE`; the binary running is an unpacked copy in a cache), else this binary.
fn launcher() -> std::io::Result<PathBuf> {
    let appimage = std::env::var_os("APPIMAGE")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute() && p.is_file());
    match appimage {
        Some(p) => Ok(p),
        None => std::env::current_exe(),
    }
}

/// The entry's text: the launcher, started with `--hidden`. `TryExec` makes a desktop skip the
/// entry once the app is uninstalled, since a package's removal cannot reach users' homes.
pub fn entry(exe: &std::path::Path) -> String {
    // Desktop Entry quoting: a quoted argument escapes ", `, $ and \.
    let mut quoted = String::new();
    let path = exe.to_string_lossy();
    // TryExec is a plain string value: only its own escapes.
    let tryexec = path.replace('\\', "\\\\");
    for c in path.chars() {
        if matches!(c, '"' | '`' | '$' | '\\') {
            quoted.push('\\');
        }
        quoted.push(c);
    }
    format!(
        "[Desktop Entry]\nType=Application\nName=Switchboard\nComment=Local AI gateway\n\
         TryExec={tryexec}\nExec=\"{quoted}\" --hidden\nTerminal=false\n\
         X-GNOME-Autostart-enabled=true\n"
    )
}

/// Writes or removes the entry so it matches the setting; does nothing when it already does.
pub fn apply(enabled: bool) -> std::io::Result<()> {
    if !cfg!(target_os = "linux") {
        return Ok(());
    }
    let Some(path) = entry_path() else {
        return Ok(());
    };
    if enabled {
        let exe = launcher()?;
        let text = entry(&exe);
        if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            std::fs::write(&path, text)?;
        }
    } else if path.exists() {
        std::fs::remove_file(&path)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_entry_starts_hidden_and_quotes_the_path() {
        let e = super::entry(std::path::Path::new("/opt/my apps/switch$board"));
        assert!(
            e.contains("Exec=\"/opt/my apps/switch\\$board\" --hidden\n"),
            "{e}"
        );
        assert!(e.starts_with("[Desktop Entry]\n"));
        assert!(e.contains("TryExec=/opt/my apps/switch$board\n"), "{e}");
    }
}
