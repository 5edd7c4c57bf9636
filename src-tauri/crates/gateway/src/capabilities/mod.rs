//! What each candidate can take (context window, tools, images, reasoning, structured output)
//! and what a request needs, so a request goes only where it can be served. The capabilities
//! of a (provider, model) come from, in rising order: the bundled families (`families`), the
//! price list's context window, `[[capabilities]]` entries for the model, and entries for the
//! provider and the model. They are resolved when the configuration or the price list changes
//! and kept in the pair's slot; a request reads them only when it needs something a candidate
//! of its route is known to lack.

mod families;
mod needs;

use switchboard_api::capabilities::{Capabilities, CapabilityEntry};

pub(crate) use needs::scan;
pub use needs::{Needs, declares_tools};

/// The capabilities of `model` at `provider`, `list_context` being the price list's window.
pub fn resolve(
    provider: &str,
    model: &str,
    list_context: Option<u32>,
    entries: &[CapabilityEntry],
) -> Capabilities {
    let lower = model.to_lowercase();
    let mut caps = families::of(&lower).unwrap_or_default();
    if list_context.is_some() {
        caps.context_window = list_context;
    }
    // Model-only entries, then provider-and-model ones; the longest pattern last, so it wins.
    let matching = |for_provider: bool| {
        let mut found: Vec<&CapabilityEntry> = entries
            .iter()
            .filter(|e| e.provider.as_deref().is_some() == for_provider)
            .filter(|e| e.provider.as_deref().is_none_or(|p| p == provider))
            .filter(|e| crate::catalog::wildcard_match(&e.model.to_lowercase(), &lower))
            .collect();
        found.sort_by_key(|e| e.model.len());
        found
    };
    for e in matching(false).into_iter().chain(matching(true)) {
        caps = caps.overlaid(&e.capabilities());
    }
    caps
}

/// What in `needs` the candidate is known to lack, in words for an error; None when it may
/// serve the request (unknown capabilities count as present).
pub fn missing(caps: &Capabilities, needs: &Needs) -> Option<String> {
    if needs.images && caps.vision == Some(false) {
        return Some("takes no image input".into());
    }
    if needs.tools && caps.tools == Some(false) {
        return Some("calls no tools".into());
    }
    match caps.context_window {
        Some(window) if needs.tokens > window => Some(format!(
            "holds {window} tokens, the prompt is about {}",
            needs.tokens
        )),
        _ => None,
    }
}

/// What a route's candidates are known to lack, so a request that needs none of it is not
/// looked at more closely.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Limits {
    /// The smallest known context window among the candidates.
    pub min_context: Option<u32>,
    pub some_without_vision: bool,
    pub some_without_tools: bool,
}

impl Limits {
    pub fn of<'a>(all: impl Iterator<Item = &'a Capabilities>) -> Limits {
        all.fold(Limits::default(), |l, c| Limits {
            min_context: match (l.min_context, c.context_window) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            },
            some_without_vision: l.some_without_vision || c.vision == Some(false),
            some_without_tools: l.some_without_tools || c.tools == Some(false),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(
        provider: Option<&str>,
        model: &str,
        f: impl Fn(&mut CapabilityEntry),
    ) -> CapabilityEntry {
        let mut e = CapabilityEntry {
            provider: provider.map(str::to_owned),
            model: model.into(),
            ..Default::default()
        };
        f(&mut e);
        e
    }

    #[test]
    fn families_then_the_list_then_entries_model_then_provider() {
        let c = resolve("relay", "GPT-4o-mini", Some(128_000), &[]);
        assert_eq!(
            (c.tools, c.vision, c.context_window),
            (Some(true), Some(true), Some(128_000))
        );
        assert_eq!(
            resolve("relay", "house-model", None, &[]),
            Capabilities::default()
        );
        let entries = [
            entry(None, "house-*", |e| e.vision = Some(false)),
            entry(None, "house-model", |e| e.context_window = Some(8000)),
            entry(Some("relay"), "house-model", |e| {
                e.context_window = Some(32_000)
            }),
            entry(Some("other"), "house-model", |e| e.tools = Some(false)),
        ];
        let c = resolve("relay", "house-model", Some(4000), &entries);
        assert_eq!(c.vision, Some(false), "a pattern");
        assert_eq!(
            c.context_window,
            Some(32_000),
            "the provider's own entry wins"
        );
        assert_eq!(c.tools, None, "another provider's entry does not apply");
        assert_eq!(
            resolve("x", "house-model", Some(4000), &entries).context_window,
            Some(8000),
            "the longer pattern wins over the shorter, both over the list"
        );
    }

    #[test]
    fn only_a_known_lack_keeps_a_request_away() {
        let needs = Needs {
            images: true,
            tools: true,
            tokens: 10_000,
        };
        assert_eq!(missing(&Capabilities::default(), &needs), None);
        let no_images = Capabilities {
            vision: Some(false),
            ..Default::default()
        };
        assert!(missing(&no_images, &needs).unwrap().contains("image"));
        let small = Capabilities {
            context_window: Some(8192),
            ..Default::default()
        };
        assert!(missing(&small, &needs).unwrap().contains("8192"));
        assert_eq!(missing(&small, &Needs::default()), None);
        let l = Limits::of([no_images, small, Capabilities::default()].iter());
        assert_eq!(
            l,
            Limits {
                min_context: Some(8192),
                some_without_vision: true,
                some_without_tools: false
            }
        );
    }
}
