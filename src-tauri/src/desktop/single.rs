//! One app per data folder: a second launch asks the first to show its window, then exits.
//! A Unix socket in the data folder carries the request; a stale one (left by a crash) is
//! replaced.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

pub enum Instance {
    /// We are the first: call `listen` to hear later launches.
    First(Listener),
    /// Another instance runs and was asked to show itself.
    Second,
}

pub struct Listener {
    #[cfg(unix)]
    inner: std::os::unix::net::UnixListener,
    path: PathBuf,
}

pub fn socket_path(data_dir: &Path) -> PathBuf {
    data_dir.join("switchboard.sock")
}

#[cfg(unix)]
pub fn claim(data_dir: &Path) -> std::io::Result<Instance> {
    use std::os::unix::net::{UnixListener, UnixStream};
    switchboard_gateway::private_dir(data_dir)?;
    let path = socket_path(data_dir);
    match UnixListener::bind(&path) {
        Ok(inner) => Ok(Instance::First(Listener { inner, path })),
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => match UnixStream::connect(&path) {
            Ok(mut s) => {
                s.write_all(b"show\n")?;
                Ok(Instance::Second)
            }
            Err(_) => {
                // Nobody answers: a crashed instance left it behind.
                std::fs::remove_file(&path)?;
                let inner = UnixListener::bind(&path)?;
                Ok(Instance::First(Listener { inner, path }))
            }
        },
        Err(e) => Err(e),
    }
}

#[cfg(not(unix))]
pub fn claim(data_dir: &Path) -> std::io::Result<Instance> {
    Ok(Instance::First(Listener {
        path: socket_path(data_dir),
    }))
}

impl Listener {
    /// Calls `on_show` (on its own thread) each time another launch asks.
    pub fn listen(self, on_show: impl Fn() + Send + 'static) {
        #[cfg(unix)]
        {
            let spawned = std::thread::Builder::new()
                .name("single-instance".into())
                .spawn(move || {
                    for stream in self.inner.incoming().flatten() {
                        let mut line = String::new();
                        if BufReader::new(stream).read_line(&mut line).is_ok()
                            && line.trim() == "show"
                        {
                            on_show();
                        }
                    }
                });
            if let Err(e) = spawned {
                tracing::warn!("cannot listen for a second launch: {e}");
            }
        }
        #[cfg(not(unix))]
        let _ = on_show;
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn the_second_claim_wakes_the_first() {
        let dir = tempfile::tempdir().unwrap();
        let Instance::First(first) = claim(dir.path()).unwrap() else {
            panic!("the first claim must win");
        };
        let (tx, rx) = std::sync::mpsc::channel();
        first.listen(move || {
            let _ = tx.send(());
        });
        assert!(matches!(claim(dir.path()).unwrap(), Instance::Second));
        rx.recv_timeout(std::time::Duration::from_secs(5))
            .expect("the first instance heard the second");
    }

    #[test]
    fn a_stale_socket_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        drop(std::os::unix::net::UnixListener::bind(socket_path(dir.path())).unwrap());
        assert!(matches!(claim(dir.path()).unwrap(), Instance::First(_)));
    }
}
