//! The runtime an AppImage of Switchboard starts with (type 2: this ELF, then a SquashFS image of
//! the AppDir). The usual runtime mounts the image with FUSE, which many desktops no longer ship
//! (libfuse2); this one unpacks it once into the user's cache, keyed by the image's size and
//! time, and starts `AppRun` from there: the second start is as quick as an installed app's.
//!
//! It sets what AppImage apps rely on: `APPIMAGE` (this file, so "Start at login" names it and
//! not the unpacked copy), `APPDIR`, `ARGV0` and `OWD`. Like the usual runtime it answers
//! `--appimage-extract` (into `./squashfs-root`), `--appimage-offset` and `--appimage-version`.

#[cfg(target_os = "linux")]
fn main() -> std::process::ExitCode {
    linux::main()
}

#[cfg(not(target_os = "linux"))]
fn main() -> std::process::ExitCode {
    eprintln!("the AppImage runtime runs on Linux only");
    std::process::ExitCode::FAILURE
}

#[cfg(target_os = "linux")]
mod linux {
    use std::ffi::OsString;
    use std::fs::{self, File};
    use std::io::{self, BufReader, Read, Seek, SeekFrom};
    use std::os::unix::fs::{PermissionsExt, symlink};
    use std::os::unix::process::CommandExt;
    use std::path::{Component, Path, PathBuf};
    use std::process::{Command, ExitCode};

    use backhand::{FilesystemReader, InnerNode};

    pub fn main() -> ExitCode {
        match run() {
            Ok(code) => code,
            Err(e) => {
                eprintln!("switchboard AppImage: {e}");
                ExitCode::FAILURE
            }
        }
    }

    fn run() -> Result<ExitCode, String> {
        let me = std::env::current_exe().map_err(|e| format!("cannot find itself: {e}"))?;
        let mut args = std::env::args_os();
        let argv0 = args.next().unwrap_or_else(|| me.clone().into_os_string());
        let args: Vec<OsString> = args.collect();
        let offset = image_offset(&me).map_err(|e| format!("{}: {e}", me.display()))?;
        match args.first().and_then(|a| a.to_str()) {
            Some("--appimage-offset") => {
                println!("{offset}");
                Ok(ExitCode::SUCCESS)
            }
            Some("--appimage-version") => {
                println!("switchboard-appimage-runtime {}", env!("CARGO_PKG_VERSION"));
                Ok(ExitCode::SUCCESS)
            }
            Some("--appimage-extract") => {
                let to = PathBuf::from("squashfs-root");
                unpack(&me, offset, &to).map_err(|e| format!("extracting: {e}"))?;
                println!("{}", to.display());
                Ok(ExitCode::SUCCESS)
            }
            _ => {
                let dir = unpacked(&me, offset)?;
                let cwd = std::env::current_dir().unwrap_or_default();
                // exec only returns on failure.
                let err = Command::new(dir.join("AppRun"))
                    .args(&args)
                    .env("APPIMAGE", &me)
                    .env("APPDIR", &dir)
                    .env("ARGV0", &argv0)
                    .env("OWD", cwd)
                    .exec();
                Err(format!(
                    "cannot start {}: {err}",
                    dir.join("AppRun").display()
                ))
            }
        }
    }

    /// Where the image starts: the end of this ELF, which is its section header table (as
    /// linkers lay it out, and as the AppImage format defines the offset).
    pub fn image_offset(me: &Path) -> io::Result<u64> {
        let mut f = File::open(me)?;
        let len = f.metadata()?.len();
        let mut h = [0u8; 64];
        f.read_exact(&mut h)?;
        let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_owned());
        if &h[..4] != b"\x7fELF" || h[4] != 2 || h[5] != 1 {
            return Err(bad("not a 64-bit little-endian ELF"));
        }
        let u64_at = |i: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&h[i..i + 8]);
            u64::from_le_bytes(b)
        };
        let u16_at = |i: usize| u16::from_le_bytes([h[i], h[i + 1]]);
        let end = u64_at(0x28)
            .checked_add(u64::from(u16_at(0x3a)) * u64::from(u16_at(0x3c)))
            .filter(|&end| end < len)
            .ok_or_else(|| bad("no image after the ELF"))?;
        f.seek(SeekFrom::Start(end))?;
        let mut magic = [0u8; 4];
        f.read_exact(&mut magic)?;
        if &magic != b"hsqs" {
            return Err(bad("no SquashFS image after the ELF"));
        }
        Ok(end)
    }

    /// The unpacked AppDir in the cache, unpacking it first when this image was not yet.
    fn unpacked(me: &Path, offset: u64) -> Result<PathBuf, String> {
        let meta = fs::metadata(me).map_err(|e| e.to_string())?;
        let mtime = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos());
        let root = cache_root().ok_or("no cache folder (set HOME or XDG_CACHE_HOME)")?;
        let key = format!("{:x}-{mtime:x}-{offset:x}", meta.len());
        let dir = root.join(&key);
        if dir.join("AppRun").exists() {
            return Ok(dir);
        }
        fs::create_dir_all(&root).map_err(|e| format!("{}: {e}", root.display()))?;
        // Unpacked beside its final place and renamed, so two starts at once never run a
        // half-written app: the loser of the rename drops its copy.
        let partial = root.join(format!("{key}.partial-{}", std::process::id()));
        let _ = fs::remove_dir_all(&partial);
        unpack(me, offset, &partial)
            .map_err(|e| format!("unpacking into {}: {e}", root.display()))?;
        if fs::rename(&partial, &dir).is_err() {
            let _ = fs::remove_dir_all(&partial);
        }
        forget_other_versions(&root, &key);
        Ok(dir)
    }

    fn cache_root() -> Option<PathBuf> {
        let base = std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
        Some(base.join("switchboard").join("appimage"))
    }

    /// Older versions' copies: an updated AppImage should not leave the last one's 30 MB behind.
    fn forget_other_versions(root: &Path, key: &str) {
        let Ok(entries) = fs::read_dir(root) else {
            return;
        };
        for e in entries.flatten() {
            let name = e.file_name();
            let name = name.to_string_lossy();
            if name != key && !name.contains(".partial-") {
                let _ = fs::remove_dir_all(e.path());
            }
        }
    }

    /// Writes the image's tree under `to`, refusing any path that would leave it.
    pub fn unpack(me: &Path, offset: u64, to: &Path) -> io::Result<()> {
        let reader = BufReader::new(File::open(me)?);
        let fs_image = FilesystemReader::from_reader_with_offset(reader, offset)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
        fs::create_dir_all(to)?;
        let top = fs::canonicalize(to)?;
        for node in fs_image.files() {
            let Some(rel) = inside(&node.fullpath) else {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("a path outside the image: {}", node.fullpath.display()),
                ));
            };
            let path = top.join(&rel);
            let mode = u32::from(node.header.permissions) & 0o7777;
            match &node.inner {
                InnerNode::Dir(_) => {
                    fs::create_dir_all(&path)?;
                    still_inside(&top, &path)?;
                    // Writable by the owner whatever the image says, so its files can be added.
                    fs::set_permissions(&path, fs::Permissions::from_mode(mode | 0o700))?;
                }
                InnerNode::File(file) => {
                    make_parent(&top, &path)?;
                    let _ = fs::remove_file(&path);
                    let mut out = File::create(&path)?;
                    io::copy(&mut fs_image.file(file).reader(), &mut out)?;
                    out.set_permissions(fs::Permissions::from_mode(mode))?;
                }
                InnerNode::Symlink(link) => {
                    make_parent(&top, &path)?;
                    let _ = fs::remove_file(&path);
                    symlink(&link.link, &path)?;
                }
                // An AppDir holds no devices, pipes or sockets.
                _ => {}
            }
        }
        Ok(())
    }

    fn make_parent(top: &Path, path: &Path) -> io::Result<()> {
        let parent = path.parent().unwrap_or(top);
        fs::create_dir_all(parent)?;
        still_inside(top, parent)
    }

    /// A folder of the image that a symlink of the image led out of `top` is refused.
    fn still_inside(top: &Path, dir: &Path) -> io::Result<()> {
        if fs::canonicalize(dir)?.starts_with(top) {
            Ok(())
        } else {
            Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("a path through a link out of the image: {}", dir.display()),
            ))
        }
    }

    /// The image path made relative, or None when it has `..` or a prefix.
    fn inside(p: &Path) -> Option<PathBuf> {
        let mut out = PathBuf::new();
        for c in p.components() {
            match c {
                Component::RootDir | Component::CurDir => {}
                Component::Normal(n) => out.push(n),
                Component::ParentDir | Component::Prefix(_) => return None,
            }
        }
        Some(out)
    }

    #[cfg(test)]
    mod tests {
        use super::inside;
        use std::path::Path;

        #[test]
        fn image_paths_stay_inside_the_folder() {
            assert_eq!(
                inside(Path::new("/usr/bin/switchboard")).unwrap(),
                Path::new("usr/bin/switchboard")
            );
            assert_eq!(inside(Path::new("/")).unwrap(), Path::new(""));
            assert!(inside(Path::new("/usr/../../etc/passwd")).is_none());
        }
    }
}
