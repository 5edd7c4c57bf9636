//! Where the price list in use came from, and its refresh from the user's URL: fetched with the
//! gateway's pooled client, bounded in size and time, parsed off the async workers, and kept in
//! the data folder so that a restart without a network keeps the newer prices.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use switchboard_api::prices::PriceListView;

use super::book::{MAX_LIST_BYTES, PriceBook};

/// The fetched list's copy in the data folder.
pub const FILE: &str = "prices.json";
const FETCH_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug)]
pub struct PriceList {
    file: PathBuf,
    status: Mutex<Status>,
}

#[derive(Clone, Debug, Default)]
struct Status {
    /// The URL of the list in use, when it is a fetched one.
    from: Option<String>,
    fetched_at: Option<u64>,
    last_error: Option<String>,
}

impl PriceList {
    /// The list to start with: the copy fetched last time from `url`, else the bundled one.
    pub fn open(data_dir: &Path, url: &str) -> (PriceList, Arc<PriceBook>) {
        let file = data_dir.join(FILE);
        let mut status = Status::default();
        let mut book = PriceBook::bundled();
        if !url.is_empty()
            && let Ok(body) = std::fs::read(&file)
        {
            match PriceBook::parse(&body, url.to_owned()) {
                Ok(saved) => {
                    book = Arc::new(saved);
                    status.from = Some(url.to_owned());
                    status.fetched_at = modified_unix_s(&file);
                }
                Err(e) => status.last_error = Some(format!("the saved list {FILE}: {e}")),
            }
        }
        let list = PriceList {
            file,
            status: Mutex::new(status),
        };
        (list, book)
    }

    fn status(&self) -> std::sync::MutexGuard<'_, Status> {
        // Plain data: a panic elsewhere leaves it whole.
        self.status.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The URL the list in use came from (None: the bundled list).
    pub fn from(&self) -> Option<String> {
        self.status().from.clone()
    }

    pub fn fetched_at(&self) -> Option<u64> {
        self.status().fetched_at
    }

    pub fn view(&self, book: &PriceBook) -> PriceListView {
        let s = self.status();
        PriceListView {
            source: book.source.clone(),
            models: book.models(),
            skipped: book.skipped,
            fetched_at: s.fetched_at,
            last_error: s.last_error.clone(),
        }
    }

    /// Fetches the list at `url`; on success it is saved and returned, else the error is kept
    /// for the admin API (and the list in use stays).
    pub async fn refresh(
        &self,
        http: &reqwest::Client,
        url: &str,
        now_unix_s: u64,
    ) -> Result<Arc<PriceBook>, String> {
        let result = self.fetch(http, url).await;
        let mut s = self.status();
        match &result {
            Ok(_) => {
                s.from = Some(url.to_owned());
                s.fetched_at = Some(now_unix_s);
                s.last_error = None;
            }
            Err(e) => s.last_error = Some(e.clone()),
        }
        result
    }

    /// Back to the bundled list (the URL was cleared).
    pub fn forget(&self) {
        *self.status() = Status::default();
        let _ = std::fs::remove_file(&self.file);
    }

    async fn fetch(&self, http: &reqwest::Client, url: &str) -> Result<Arc<PriceBook>, String> {
        let chain = |e: &reqwest::Error| crate::dispatch::error_chain(e);
        let mut resp = http
            .get(url)
            .timeout(FETCH_TIMEOUT)
            .send()
            .await
            .map_err(|e| format!("cannot fetch {url}: {}", chain(&e)))?;
        let status = resp.status();
        if !status.is_success() {
            return Err(format!("{url} answered {status}"));
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| format!("cannot fetch {url}: {}", chain(&e)))?
        {
            if body.len() + chunk.len() > MAX_LIST_BYTES {
                return Err(format!(
                    "the list at {url} is larger than {} MB",
                    MAX_LIST_BYTES >> 20
                ));
            }
            body.extend_from_slice(&chunk);
        }
        let file = self.file.clone();
        let url = url.to_owned();
        // Compiling some two thousand match rules takes a few milliseconds of CPU, and the
        // copy is a disk write: neither belongs on an async worker.
        tokio::task::spawn_blocking(move || {
            let book = PriceBook::parse(&body, url.clone()).map_err(|e| format!("{url}: {e}"))?;
            if book.models() == 0 {
                return Err(format!("{url}: the list holds no model"));
            }
            save(&file, &body).map_err(|e| format!("cannot save {}: {e}", file.display()))?;
            Ok(Arc::new(book))
        })
        .await
        .map_err(|e| e.to_string())?
    }
}

/// Written whole or not at all: a crash mid-write leaves the last good copy.
fn save(file: &Path, body: &[u8]) -> std::io::Result<()> {
    let tmp = file.with_extension("json.tmp");
    std::fs::write(&tmp, body)?;
    std::fs::rename(&tmp, file)
}

fn modified_unix_s(file: &Path) -> Option<u64> {
    let modified = std::fs::metadata(file).ok()?.modified().ok()?;
    Some(
        modified
            .duration_since(std::time::UNIX_EPOCH)
            .ok()?
            .as_secs(),
    )
}
