//! `GET /api/groups`: the `auto:*` groups and the user's own, with what each holds now.

use switchboard_api::groups::{GroupView, VIEW_CANDIDATES};

use crate::engine::Engine;

pub fn groups(engine: &Engine) -> Vec<GroupView> {
    let snap = engine.snapshot();
    let mut out: Vec<GroupView> = snap
        .routes
        .values()
        .filter(|r| r.group)
        .map(|r| GroupView {
            name: r.name.to_string(),
            ready_made: !snap.filtered.iter().any(|u| *u.name == *r.name),
            strategy: r.strategy.as_str().to_owned(),
            count: r.candidates.len(),
            candidates: r
                .candidates
                .iter()
                .take(VIEW_CANDIDATES)
                .map(|c| format!("{}/{}", c.provider.name, c.model))
                .collect(),
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}
