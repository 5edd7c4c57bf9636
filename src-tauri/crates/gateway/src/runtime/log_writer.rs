//! The request log's writer: a thread of its own, draining the log's channel into `logs.db`
//! and the access lines.

use rusqlite::Connection;
use tokio::sync::oneshot;

use crate::requestlog::{RequestLog, write_records};

/// The writer runs on a thread of its own: a write to disk or to stderr blocks while the disk or
/// whoever reads stderr (a terminal, a pipe, journald) is slow, and must not block an async
/// worker. The receiver resolves once every record sent has been written (None: there is no
/// writer).
pub(super) fn start(db: Connection) -> (RequestLog, Option<oneshot::Receiver<()>>) {
    let (log, rx) = RequestLog::channel();
    let keep_rows = log.rows_flag();
    let pricing = log.pricing_handle();
    let metrics = log.metrics();
    let tail = log.tail_sender();
    let books = [log.spend().clone(), log.quotas().clone()];
    let (done_tx, done_rx) = oneshot::channel::<()>();
    let work = move || {
        write_records(rx, keep_rows, pricing, metrics, tail, books, db);
        let _ = done_tx.send(());
    };
    // A thread that is not the runtime's: the process may exit without waiting for it.
    match std::thread::Builder::new()
        .name("switchboard-request-log".into())
        .spawn(work)
    {
        Ok(_) => (log, Some(done_rx)),
        Err(e) => {
            tracing::warn!("cannot start the request log's thread ({e}): requests are not logged");
            (log, None)
        }
    }
}
