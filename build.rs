//! Embeds the built admin UI (`ui/dist`) for `/admin`, and with the `desktop` feature lets Tauri
//! read `tauri.conf.json` (kept at the root, beside this package's manifest).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn main() {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let dist = root.join("ui").join("dist");
    println!("cargo:rerun-if-changed={}", dist.display());
    embed_ui(&dist);

    #[cfg(feature = "desktop")]
    {
        if !dist.join("index.html").is_file() {
            panic!(
                "ui/dist is missing: the desktop app bundles the admin UI. Build it first with \
                 `bash scripts/build-ui` (or build without the window: --no-default-features)"
            );
        }
        tauri_build::try_build(tauri_build::Attributes::new().config_path("tauri.conf.json"))
            .expect("tauri.conf.json is valid");
    }
}

fn embed_ui(dist: &Path) {
    let mut files = Vec::new();
    collect(dist, dist, &mut files);
    files.sort();
    let mut out = String::from("pub static FILES: &[UiFile] = &[\n");
    for (rel, abs) in &files {
        let _ = writeln!(
            out,
            "    UiFile {{ path: {rel:?}, bytes: include_bytes!({abs:?}) }},"
        );
    }
    out.push_str("];\n");
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").expect("set by cargo"));
    std::fs::write(out_dir.join("ui_files.rs"), out).expect("OUT_DIR is writable");
}

fn collect(base: &Path, dir: &Path, out: &mut Vec<(String, String)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(base, &path, out);
        } else if let Ok(rel) = path.strip_prefix(base) {
            let rel = rel.to_string_lossy().replace('\\', "/");
            out.push((rel, path.to_string_lossy().into_owned()));
        }
    }
}
