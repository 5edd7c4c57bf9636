//! Start at login: an XDG autostart entry on Linux desktops that starts the app in the tray.

use std::path::PathBuf;

fn entry_path() -> Option<PathBuf> {
    dirs::config_dir().map(|d| d.join("autostart").join("switchboard.desktop"))
}

/// The entry's text: the running binary, started with `--hidden`.
pub fn entry(exe: &std::path::Path) -> String {
    // Desktop Entry quoting: a quoted argument escapes ", `, $ and \.
    let mut quoted = String::new();
    for c in exe.to_string_lossy().chars() {
        if matches!(c, '"' | '`' | '$' | '\\') {
            quoted.push('\\');
        }
        quoted.push(c);
    }
    format!(
        "[Desktop Entry]\nType=Application\nName=Switchboard\nComment=Local AI gateway\n\
         Exec=\"{quoted}\" --hidden\nTerminal=false\nX-GNOME-Autostart-enabled=true\n"
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
        let exe = std::env::current_exe()?;
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
    }
}
