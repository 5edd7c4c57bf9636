//! The accept loop. A local port is open to every process and page on the machine, so no
//! connection may hold the gateway: each must send its request's headers within
//! `server.header_timeout_s` (an idle keep-alive connection too). Past
//! `server.max_connections` open at once, each new connection asks the oldest to close (at
//! once when it is idle or has not sent a whole request yet, after its answer otherwise), so a flood of
//! idle or slow connections displaces itself, not the clients that send a request; the
//! process's descriptor limit, raised to its hard limit, is the ceiling nothing passes.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use tokio::net::TcpListener;
use tokio::sync::{Notify, oneshot};
use tower_service::Service;

use crate::engine::Engine;

/// Descriptors kept for everything that is not a client connection: upstream connections, the
/// databases, the log.
const RESERVED_FDS: u64 = 256;

/// Serves `app` on `listener` until `stop` fires, then lets open connections finish their
/// requests (the caller bounds how long).
pub(super) async fn serve(
    listener: TcpListener,
    app: Router,
    engine: Arc<Engine>,
    stop: oneshot::Receiver<()>,
) -> std::io::Result<()> {
    let fd_cap = raise_fd_limit()
        .map(|limit| limit.saturating_sub(RESERVED_FDS).max(16))
        .and_then(|n| usize::try_from(n).ok())
        .unwrap_or(usize::MAX);
    let conns = Arc::new(Connections::default());
    let warned = Warned::default();
    tokio::pin!(stop);
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of descriptors (or a connection reset before accept): wait a moment
                    // rather than spin.
                    tracing::warn!(target: "switchboard::server", error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut stop => break,
        };
        let settings = &engine.snapshot().settings;
        // Past the cap (the setting, or what the descriptor limit allows) the oldest connection
        // is asked to go; past half the reserve more, nothing is taken until some have gone.
        let cap = usize::try_from(settings.server.max_connections)
            .unwrap_or(usize::MAX)
            .min(fd_cap);
        let open = conns.len();
        if open >= fd_cap.saturating_add(RESERVED_FDS as usize / 2) {
            warned.note(|| {
                tracing::warn!(
                    target: "switchboard::server",
                    open,
                    "out of file descriptors for connections: refused a new one"
                );
            });
            drop(tcp);
            continue;
        }
        if open >= cap && conns.close_oldest() {
            warned.note(|| {
                tracing::warn!(
                    target: "switchboard::server",
                    limit = cap,
                    peer = %peer,
                    "connection limit reached (server.max_connections): closing the oldest connections"
                );
            });
        }
        let (id, close) = conns.add();
        // Nagle's algorithm would hold small stream chunks back for up to 40 ms.
        let _ = tcp.set_nodelay(true);
        let mut builder = Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(settings.server.header_timeout());
        builder
            .http2()
            .timer(TokioTimer::new())
            .keep_alive_interval(Some(Duration::from_secs(30)))
            .keep_alive_timeout(Duration::from_secs(20));
        let app = app.clone();
        // Whether a whole request head ever arrived: a connection that never sent one (idle,
        // or trickling its headers) has nothing to finish and is dropped when asked to go.
        let served = Arc::new(AtomicBool::new(false));
        let seen = served.clone();
        let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
            seen.store(true, Ordering::Relaxed);
            let mut app = app.clone();
            let mut req = req.map(Body::new);
            // The peer's address reaches handlers that log it (admin logins).
            req.extensions_mut().insert(ConnectInfo(peer));
            async move { app.call(req).await }
        });
        let conns = conns.clone();
        let first_bytes = settings.server.header_timeout();
        // A task per connection, ended by the connection (or by `close`, which shutdown's
        // `close_all` sends every one and then waits for).
        #[allow(clippy::disallowed_methods)]
        tokio::spawn(async move {
            // Telling HTTP/1 from HTTP/2 reads the first bytes with no time limit of its own:
            // a connection that sends nothing is dropped here.
            let mut first = [0u8; 1];
            let sent = tokio::select! {
                got = tokio::time::timeout(first_bytes, tcp.peek(&mut first)) => {
                    matches!(got, Ok(Ok(1..)))
                }
                _ = close.notified() => false,
            };
            if !sent {
                conns.remove(id);
                return;
            }
            let conn = builder.serve_connection_with_upgrades(TokioIo::new(tcp), service);
            tokio::pin!(conn);
            let mut closing = false;
            loop {
                tokio::select! {
                    _ = conn.as_mut() => break,
                    _ = close.notified(), if !closing => {
                        if !served.load(Ordering::Relaxed) {
                            break;
                        }
                        closing = true;
                        conn.as_mut().graceful_shutdown();
                    }
                }
            }
            conns.remove(id);
        });
    }
    drop(listener);
    conns.close_all().await;
    Ok(())
}

/// The open connections, oldest first, each with the signal that asks it to close.
#[derive(Default)]
struct Connections {
    next: AtomicU64,
    open: Mutex<BTreeMap<u64, Arc<Notify>>>,
    asked: Mutex<std::collections::BTreeSet<u64>>,
    gone: Notify,
}

impl Connections {
    fn len(&self) -> usize {
        self.open.lock().map_or(0, |m| m.len())
    }

    fn add(&self) -> (u64, Arc<Notify>) {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let close = Arc::new(Notify::new());
        if let Ok(mut m) = self.open.lock() {
            m.insert(id, close.clone());
        }
        (id, close)
    }

    fn remove(&self, id: u64) {
        if let Ok(mut m) = self.open.lock() {
            m.remove(&id);
        }
        if let Ok(mut a) = self.asked.lock() {
            a.remove(&id);
        }
        self.gone.notify_waiters();
    }

    /// Asks the oldest connection not yet asked to close; false when every one was asked.
    fn close_oldest(&self) -> bool {
        let (Ok(open), Ok(mut asked)) = (self.open.lock(), self.asked.lock()) else {
            return false;
        };
        let Some((id, close)) = open.iter().find(|(id, _)| !asked.contains(id)) else {
            return false;
        };
        asked.insert(*id);
        close.notify_one();
        true
    }

    /// Asks every connection to close, and waits until they have.
    async fn close_all(&self) {
        loop {
            let gone = self.gone.notified();
            tokio::pin!(gone);
            gone.as_mut().enable();
            {
                let Ok(open) = self.open.lock() else { return };
                if open.is_empty() {
                    return;
                }
                for close in open.values() {
                    close.notify_one();
                }
            }
            gone.await;
        }
    }
}

/// Log lines about a flood, at most one every 10 s, so the flood cannot flood the log too.
#[derive(Default)]
struct Warned(Mutex<Option<Instant>>);

impl Warned {
    fn note(&self, log: impl FnOnce()) {
        let Ok(mut last) = self.0.lock() else { return };
        let now = Instant::now();
        if last.is_some_and(|t| now.duration_since(t) < Duration::from_secs(10)) {
            return;
        }
        *last = Some(now);
        log();
    }
}

/// Raises the soft limit on open descriptors to the hard one (a desktop session often starts
/// at 1,024), and returns the limit in force.
#[cfg(unix)]
fn raise_fd_limit() -> Option<u64> {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let lim = getrlimit(Resource::Nofile);
    // `None` is unlimited.
    let Some(current) = lim.current else {
        return Some(u64::MAX);
    };
    if lim.maximum.is_none_or(|max| max > current) {
        let raised = Rlimit {
            current: lim.maximum,
            maximum: lim.maximum,
        };
        if setrlimit(Resource::Nofile, raised).is_ok() {
            return Some(lim.maximum.unwrap_or(u64::MAX));
        }
    }
    Some(current)
}

#[cfg(not(unix))]
fn raise_fd_limit() -> Option<u64> {
    None
}
