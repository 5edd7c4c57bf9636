//! The admin UI's files under `/admin`. They are compiled into the app binary (its build.rs), so
//! the headless gateway serves the very bundle the desktop window shows, with no files to find
//! at run time.

use axum::body::Body;
use axum::extract::{OriginalUri, State};
use axum::http::{HeaderValue, Response, StatusCode, header};

/// One file of the built UI (`ui/dist`), by its path relative to that folder.
#[derive(Clone, Copy, Debug)]
pub struct UiFile {
    pub path: &'static str,
    pub bytes: &'static [u8],
}

/// The wasm bundle needs `wasm-unsafe-eval` to compile itself; nothing else may run, load from
/// elsewhere, or frame the page.
const CSP: &str = "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; \
    style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; \
    font-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("wasm") => "application/wasm",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("json") => "application/json",
        _ => "application/octet-stream",
    }
}

pub async fn redirect() -> Response<Body> {
    let mut resp = Response::new(Body::empty());
    *resp.status_mut() = StatusCode::PERMANENT_REDIRECT;
    resp.headers_mut()
        .insert(header::LOCATION, HeaderValue::from_static("/admin/"));
    resp
}

pub async fn page(State(files): State<&'static [UiFile]>, uri: OriginalUri) -> Response<Body> {
    let rest = uri
        .path()
        .strip_prefix("/admin")
        .unwrap_or("")
        .trim_start_matches('/');
    let found = files.iter().find(|f| f.path == rest).or_else(|| {
        // Paths without an extension are the UI's own pages: answer with the app shell.
        (!rest.rsplit('/').next().unwrap_or("").contains('.'))
            .then(|| files.iter().find(|f| f.path == "index.html"))
            .flatten()
    });
    let Some(file) = found else {
        let message = if files.is_empty() {
            "The admin UI is not built into this binary. Build it with scripts/build-ui, then \
             rebuild Switchboard."
        } else {
            "Not found"
        };
        let mut resp = Response::new(Body::from(message));
        *resp.status_mut() = StatusCode::NOT_FOUND;
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        return resp;
    };
    let mut resp = Response::new(Body::from(file.bytes));
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(file.path)),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    // File names carry no hash, so a new build must never be shadowed by a cached one.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    resp
}

#[cfg(test)]
mod tests {
    use super::content_type;

    #[test]
    fn wasm_is_served_as_wasm_for_streaming_compilation() {
        assert_eq!(content_type("switchboard-ui_bg.wasm"), "application/wasm");
        assert_eq!(content_type("index.html"), "text/html; charset=utf-8");
        assert_eq!(content_type("LICENSE"), "application/octet-stream");
    }
}
