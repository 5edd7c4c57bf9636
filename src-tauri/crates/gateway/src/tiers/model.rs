//! The small-model classifier's pure parts: the request it is sent, how its answer names a
//! tier, and the cache of its answers.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::Tiered;

/// The most of the last user turn a classifier is shown (bytes): enough to judge by, and a
/// short prompt stays cheap and fast.
const PROMPT_TURN: usize = 8 * 1024;
/// Answers kept: two generations of at most this many each.
const CACHE_GENERATION: usize = 4096;

/// The chat completions request that asks `model` for a tier: the tiers and their
/// descriptions, and the turn (its first [`PROMPT_TURN`] bytes).
pub fn prompt(tiered: &Tiered, model: &str, turn: &str) -> Vec<u8> {
    let mut system = String::from(
        "You sort requests to an AI assistant by how hard they are, so that each goes to a \
         model that fits. Answer with exactly one tier name from this list and nothing else.\n",
    );
    for t in &tiered.spec.tiers {
        system.push_str("- ");
        system.push_str(&t.name);
        if let Some(d) = &t.description {
            system.push_str(": ");
            system.push_str(d);
        }
        system.push('\n');
    }
    let mut end = turn.len().min(PROMPT_TURN);
    while !turn.is_char_boundary(end) {
        end -= 1;
    }
    let body = serde_json::json!({
        "model": model,
        "stream": false,
        "temperature": 0,
        "max_tokens": 16,
        "messages": [
            {"role": "system", "content": system},
            {"role": "user", "content": &turn[..end]},
        ],
    });
    body.to_string().into_bytes()
}

/// The tier a classifier's answer names: the first word that is a tier's name, in any case.
pub fn answer_tier(tiered: &Tiered, answer: &str) -> Option<usize> {
    answer
        .split(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')))
        .map(|w| w.trim_end_matches('.'))
        .find_map(|w| {
            tiered
                .spec
                .tiers
                .iter()
                .position(|t| t.name.eq_ignore_ascii_case(w))
        })
}

/// The classifier's answers by tiered model and turn: a turn asked about once is not asked
/// about again. Bounded by two generations: when the newer fills, the older is dropped whole,
/// so a lookup and an insert are O(1) and no entry lives past two generations' worth of new
/// turns.
#[derive(Debug, Default)]
pub struct Cache {
    inner: Mutex<Generations>,
}

#[derive(Debug, Default)]
struct Generations {
    new: HashMap<u128, Arc<str>>,
    old: HashMap<u128, Arc<str>>,
}

impl Cache {
    /// The key of a turn for a tiered model (a 128-bit hash: a collision is out of reach).
    pub fn key(model: &str, turn: &str) -> u128 {
        let mut h = xxhash_rust::xxh3::Xxh3::new();
        h.update(model.as_bytes());
        h.update(&[0]);
        h.update(turn.as_bytes());
        h.digest128()
    }

    /// The tier name answered before.
    pub fn get(&self, key: u128) -> Option<Arc<str>> {
        let g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        g.new.get(&key).or_else(|| g.old.get(&key)).cloned()
    }

    pub fn put(&self, key: u128, tier: Arc<str>) {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if g.new.len() >= CACHE_GENERATION {
            g.old = std::mem::take(&mut g.new);
        }
        g.new.insert(key, tier);
    }

    pub fn clear(&self) {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        *g = Generations::default();
    }
}
