//! `provider/model` in a request: one provider's own model id, past the unified models (asked
//! only when no unified model takes the name, so a model named `openai/gpt-4o` keeps its name).

use std::sync::Arc;

use super::{Candidate, Route, Snapshot};
use crate::breaker::BreakerRegistry;

#[derive(Debug)]
pub enum Pin {
    /// No provider of ours is named by the text before a `/`.
    NoProvider,
    /// The provider exists but does not list the model.
    Unlisted {
        provider: Arc<str>,
        listed: usize,
    },
    Route(Arc<Route>),
}

impl Snapshot {
    /// What `name` pins: the provider named before the first `/` (a provider's name has none),
    /// then one of its listed models (which may have a `/` of its own). The route has that one
    /// candidate, with the pair's own breaker (shared with every unified model that routes
    /// there), and only the global `[routing] default_params`.
    pub fn pin(&self, name: &str, breakers: &BreakerRegistry) -> Pin {
        let Some((provider, model)) = name
            .split_once('/')
            .and_then(|(p, m)| Some((self.providers.iter().find(|x| *x.name == *p)?, m)))
        else {
            return Pin::NoProvider;
        };
        let Some(model) = provider.models.iter().find(|m| *m == model) else {
            return Pin::Unlisted {
                provider: provider.name.clone(),
                listed: provider.models.len(),
            };
        };
        let model: Arc<str> = model.as_str().into();
        let candidates = vec![Candidate {
            breaker: breakers.model_slot(&provider.uid, &model),
            provider: provider.clone(),
            model,
        }];
        Pin::Route(Arc::new(Route {
            name: name.into(),
            groups: super::provider_groups(&candidates),
            candidates,
            protocol: None,
            default_params: self.settings.routing.default_params.clone(),
            override_params: Default::default(),
            probe: false,
            strategy: Default::default(),
            sort: Vec::new(),
            turn: Default::default(),
            by_price: Default::default(),
            limits: Default::default(),
            group: false,
        }))
    }
}
