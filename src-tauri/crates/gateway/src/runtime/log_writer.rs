//! The request log's writer: a thread of its own, draining the log's channel.

use tokio::sync::oneshot;

use crate::requestlog::{RequestLog, write_access_lines};

/// The writer runs on a thread of its own: a write to stderr blocks while whoever reads it (a
/// terminal, a pipe, journald) is slow, and must not block an async worker. The receiver
/// resolves once every record sent has been written (None: there is no writer).
pub(super) fn start() -> (RequestLog, Option<oneshot::Receiver<()>>) {
    let (log, rx) = RequestLog::channel();
    let (done_tx, done_rx) = oneshot::channel::<()>();
    let work = move || {
        write_access_lines(rx);
        let _ = done_tx.send(());
    };
    // A thread that is not the runtime's: the process may exit without waiting for it.
    match std::thread::Builder::new()
        .name("switchboard-access-log".into())
        .spawn(work)
    {
        Ok(_) => (log, Some(done_rx)),
        Err(e) => {
            tracing::warn!(
                "cannot start the access log's thread ({e}): access lines are not written"
            );
            (log, None)
        }
    }
}
