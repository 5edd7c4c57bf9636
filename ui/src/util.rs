//! Small browser helpers: timers, storage, clipboard, time formatting.

use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

pub async fn sleep_ms(ms: i32) {
    let promise = js_sys::Promise::new(&mut |resolve, _| {
        if let Some(w) = web_sys::window() {
            let _ = w.set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, ms);
        }
    });
    let _ = JsFuture::from(promise).await;
}

fn storage(session: bool) -> Option<web_sys::Storage> {
    let w = web_sys::window()?;
    if session {
        w.session_storage().ok().flatten()
    } else {
        w.local_storage().ok().flatten()
    }
}

pub fn load(key: &str, session: bool) -> Option<String> {
    storage(session)?.get_item(key).ok().flatten()
}

pub fn save(key: &str, value: Option<&str>, session: bool) {
    if let Some(s) = storage(session) {
        let _ = match value {
            Some(v) => s.set_item(key, v),
            None => s.remove_item(key),
        };
    }
}

pub fn now_s() -> u64 {
    (js_sys::Date::now() / 1000.0) as u64
}

/// `14:32` today, `Nov 23 14:32` otherwise, in the user's time zone.
pub fn clock(unix_s: u64) -> String {
    let d = js_sys::Date::new(&JsValue::from_f64(unix_s as f64 * 1000.0));
    let same_day = js_sys::Date::new_0().to_date_string() == d.to_date_string();
    let hm = format!("{:02}:{:02}", d.get_hours(), d.get_minutes());
    if same_day {
        hm
    } else {
        format!("{}-{:02} {hm}", d.get_month() + 1, d.get_date())
    }
}

/// `2027-01-01`: a date the user gave in UTC, shown as given.
pub fn utc_date(unix_s: u64) -> String {
    let d = js_sys::Date::new(&JsValue::from_f64(unix_s as f64 * 1000.0));
    format!(
        "{}-{:02}-{:02}",
        d.get_utc_full_year(),
        d.get_utc_month() + 1,
        d.get_utc_date()
    )
}

/// "in 3 min" style countdown, for cooldowns.
pub fn remaining(unix_s: u64) -> String {
    let left = unix_s.saturating_sub(now_s());
    if left >= 3600 {
        format!("{}h{:02}", left / 3600, (left % 3600) / 60)
    } else if left >= 60 {
        format!("{} min", left.div_ceil(60))
    } else {
        format!("{left} s")
    }
}

pub fn copy_text(text: &str) {
    let Some(w) = web_sys::window() else { return };
    let nav = w.navigator();
    let Ok(clip) = js_sys::Reflect::get(&nav, &JsValue::from_str("clipboard")) else {
        return;
    };
    if let Ok(write) = js_sys::Reflect::get(&clip, &JsValue::from_str("writeText"))
        && let Ok(f) = write.dyn_into::<js_sys::Function>()
    {
        let _ = f.call1(&clip, &JsValue::from_str(text));
    }
}

pub fn confirm(message: &str) -> bool {
    web_sys::window()
        .and_then(|w| w.confirm_with_message(message).ok())
        .unwrap_or(false)
}

/// Splits a comma- or newline-separated list, dropping blanks.
pub fn split_list(s: &str) -> Vec<String> {
    s.split([',', '\n'])
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Offers `text` as a file download named `name`.
pub fn download(name: &str, mime: &str, text: &str) -> Result<(), String> {
    let err = |e: JsValue| format!("{e:?}");
    let parts = js_sys::Array::of1(&JsValue::from_str(text));
    let options = web_sys::BlobPropertyBag::new();
    options.set_type(mime);
    let blob = web_sys::Blob::new_with_str_sequence_and_options(&parts, &options).map_err(err)?;
    let url = web_sys::Url::create_object_url_with_blob(&blob).map_err(err)?;
    let document = web_sys::window()
        .and_then(|w| w.document())
        .ok_or("no document")?;
    let a: web_sys::HtmlAnchorElement = document
        .create_element("a")
        .map_err(err)?
        .dyn_into()
        .map_err(|_| "not an anchor".to_owned())?;
    a.set_href(&url);
    a.set_download(name);
    a.click();
    // Some browsers read the URL after click() returns: free it a little later.
    wasm_bindgen_futures::spawn_local(async move {
        sleep_ms(10_000).await;
        let _ = web_sys::Url::revoke_object_url(&url);
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn lists_split_on_commas_and_lines() {
        assert_eq!(
            super::split_list(" a, b\n\nc ,"),
            vec!["a".to_string(), "b".into(), "c".into()]
        );
    }
}
