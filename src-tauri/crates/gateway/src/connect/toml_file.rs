//! Codex's `config.toml`, edited with `toml_edit`, which keeps comments, spacing and key order:
//! a provider table of ours, and `model_provider` naming it.

use std::path::Path;

use toml_edit::{DocumentMut, Item, Table, value};

use super::{CODEX_PROVIDER, ConnectError, Target};

fn parse(path: &Path, text: &str) -> Result<DocumentMut, ConnectError> {
    text.parse::<DocumentMut>().map_err(|e| ConnectError::Toml {
        path: path.to_owned(),
        message: e.to_string().trim().to_owned(),
    })
}

pub(super) fn has_ours(text: &str) -> bool {
    text.parse::<DocumentMut>().is_ok_and(|d| {
        d.get("model_providers")
            .and_then(|p| p.get(CODEX_PROVIDER))
            .is_some()
    })
}

pub(super) fn apply(path: &Path, text: &str, target: &Target<'_>) -> Result<String, ConnectError> {
    let mut doc = parse(path, text)?;
    match doc.get_mut("model_provider").and_then(Item::as_value_mut) {
        // In place, with the comment the line had.
        Some(v) => {
            let decor = v.decor().clone();
            *v = CODEX_PROVIDER.into();
            *v.decor_mut() = decor;
        }
        None => doc["model_provider"] = value(CODEX_PROVIDER),
    }
    let mut ours = Table::new();
    ours["name"] = value("Switchboard");
    ours["base_url"] = value(format!("{}/v1", target.base_url.trim_end_matches('/')));
    // Codex refuses `chat`; Responses is what it speaks.
    ours["wire_api"] = value("responses");
    // In the file rather than in `env_key`: a variable would have to be in every shell Codex is
    // started from.
    ours["experimental_bearer_token"] = value(target.key);
    // The gateway serves the Responses WebSocket mode: one connection per session, each turn
    // sending only its new items.
    ours["supports_websockets"] = value(true);
    let providers = doc.entry("model_providers").or_insert_with(|| {
        let mut t = Table::new();
        t.set_implicit(true);
        Item::Table(t)
    });
    let Some(providers) = providers.as_table_like_mut() else {
        return Err(ConnectError::Toml {
            path: path.to_owned(),
            message: "`model_providers` is not a table".into(),
        });
    };
    providers.insert(CODEX_PROVIDER, Item::Table(ours));
    Ok(doc.to_string())
}

pub(super) fn undo(path: &Path, current: &str, original: &str) -> Result<String, ConnectError> {
    let mut doc = parse(path, current)?;
    let before = original.parse::<DocumentMut>().ok();
    match before.as_ref().and_then(|b| b.get("model_provider")) {
        Some(v) => doc["model_provider"] = v.clone(),
        None => {
            doc.remove("model_provider");
        }
    }
    let mut empty = false;
    if let Some(p) = doc
        .get_mut("model_providers")
        .and_then(Item::as_table_like_mut)
    {
        p.remove(CODEX_PROVIDER);
        empty = p.is_empty();
    }
    let had_providers = before
        .as_ref()
        .is_some_and(|b| b.get("model_providers").is_some());
    if empty && !had_providers {
        doc.remove("model_providers");
    }
    Ok(doc.to_string())
}
