//! Desktop notifications when a provider trips or recovers, through the freedesktop
//! notification service on the session bus. A flapping provider notifies once per window, not on
//! every change.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use switchboard_api::BreakerState;
use switchboard_gateway::GatewayEvent;

/// One notification per provider per this long.
pub const DEBOUNCE: Duration = Duration::from_secs(60);

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Note {
    pub summary: String,
    pub body: String,
}

/// Turns breaker events into notifications, one per provider per [`DEBOUNCE`]. A change that
/// comes within the window is held, not dropped: when the window ends, the state the user was
/// last told about is brought up to date (a recovery 10 s after a trip is told, a minute
/// late), unless it flapped back to what they were told.
#[derive(Default)]
pub struct Debouncer {
    /// When each provider last notified.
    last_sent: HashMap<String, Instant>,
    /// The state last told, per provider or (provider, model).
    told: HashMap<String, BreakerState>,
    /// Held changes: (provider, note, state), per provider or (provider, model).
    held: HashMap<String, (String, Note, BreakerState)>,
}

impl Debouncer {
    pub fn note(&mut self, event: &GatewayEvent, now: Instant) -> Option<Note> {
        let GatewayEvent::Breaker {
            provider,
            model,
            state,
            reason,
            ..
        } = event
        else {
            return None;
        };
        let what = match model {
            Some(m) => format!("{provider} ({m})"),
            None => provider.clone(),
        };
        let note = match *state {
            BreakerState::Open => Note {
                summary: format!("{what} is cooling down"),
                body: reason.unwrap_or("It failed").to_owned(),
            },
            BreakerState::Closed => Note {
                summary: format!("{what} recovered"),
                body: "Requests go to it again.".into(),
            },
            // Half-open is a trial, not news.
            BreakerState::HalfOpen => return None,
        };
        // Never told anything, a recovery is no news either.
        let told = self
            .told
            .get(&what)
            .copied()
            .unwrap_or(BreakerState::Closed);
        if told == *state {
            self.held.remove(&what);
            return None;
        }
        if self
            .last_sent
            .get(provider)
            .is_some_and(|at| now.duration_since(*at) < DEBOUNCE)
        {
            self.held.insert(what, (provider.clone(), note, *state));
            return None;
        }
        self.last_sent.insert(provider.clone(), now);
        self.told.insert(what.clone(), *state);
        self.held.remove(&what);
        Some(note)
    }

    /// When the first held change may be told.
    pub fn next_due(&self) -> Option<Instant> {
        self.held
            .values()
            .filter_map(|(p, ..)| self.last_sent.get(p).map(|t| *t + DEBOUNCE))
            .min()
    }

    /// The held changes whose window has ended, to be told now.
    pub fn due(&mut self, now: Instant) -> Vec<Note> {
        let ready: Vec<String> = self
            .held
            .iter()
            .filter(|(_, (p, ..))| {
                self.last_sent
                    .get(p)
                    .is_none_or(|t| now.duration_since(*t) >= DEBOUNCE)
            })
            .map(|(what, _)| what.clone())
            .collect();
        let mut out = Vec::new();
        for what in ready {
            if let Some((provider, note, state)) = self.held.remove(&what) {
                self.last_sent.insert(provider, now);
                self.told.insert(what, state);
                out.push(note);
            }
        }
        out
    }
}

/// A client key's budget, or a provider's (or one of its models') quota, crossed its warning
/// share or a limit (each is told once a period).
pub fn crossing(event: &GatewayEvent) -> Option<Note> {
    let (who, what, then, limit, percent, reached, resets_at) = match event {
        GatewayEvent::Budget {
            key,
            limit,
            percent,
            reached,
            resets_at,
        } => (
            key,
            "budget",
            "Its requests are refused",
            limit,
            percent,
            reached,
            resets_at,
        ),
        GatewayEvent::Quota {
            scope,
            limit,
            percent,
            reached,
            resets_at,
        } => (
            scope, "quota", "Skipped", limit, percent, reached, resets_at,
        ),
        _ => return None,
    };
    Some(if *reached {
        Note {
            summary: format!("{who} has used its {what}"),
            body: format!("{limit}: {percent} %. {then} until {resets_at}."),
        }
    } else {
        Note {
            summary: format!("{who} is at {percent} % of its {what}"),
            body: format!("{limit}; it resets at {resets_at}."),
        }
    })
}

/// The question a start asks about a client a stop or a crash left connected.
pub fn connected_before(client: &str) -> Note {
    Note {
        summary: format!("{client} is still connected"),
        body: format!(
            "Switchboard stopped while {client} pointed at it; it still does, and works while \
             Switchboard runs. Keep it: Keep on the Clients page. Restore its files: untick \
             Connect ▸ {client} here."
        ),
    }
}

/// Sends a notification; failures (no notification service) are logged once, never fatal.
pub async fn send(note: &Note) {
    static WARNED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if let Err(e) = try_send(note).await
        && !WARNED.swap(true, std::sync::atomic::Ordering::Relaxed)
    {
        tracing::info!("desktop notifications are unavailable: {e}");
    }
}

async fn try_send(note: &Note) -> zbus::Result<()> {
    let conn = zbus::Connection::session().await?;
    let hints: HashMap<&str, zbus::zvariant::Value<'_>> = HashMap::new();
    conn.call_method(
        Some("org.freedesktop.Notifications"),
        "/org/freedesktop/Notifications",
        Some("org.freedesktop.Notifications"),
        "Notify",
        &(
            "Switchboard",
            0u32,
            "network-server",
            note.summary.as_str(),
            note.body.as_str(),
            Vec::<&str>::new(),
            hints,
            -1i32,
        ),
    )
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker(provider: &str, state: &str) -> GatewayEvent {
        let state = match state {
            "open" => BreakerState::Open,
            "half_open" => BreakerState::HalfOpen,
            _ => BreakerState::Closed,
        };
        GatewayEvent::Breaker {
            provider: provider.into(),
            model: None,
            state,
            reason: Some("500 server error"),
            until: None,
        }
    }

    #[test]
    fn budget_crossings_say_the_key_the_limit_and_the_reset() {
        let ev = |reached| GatewayEvent::Budget {
            key: "intern".into(),
            limit: "daily_usd".into(),
            percent: if reached { 100 } else { 80 },
            reached,
            resets_at: "2026-12-07T00:00:00+01:00".into(),
        };
        let warn = crossing(&ev(false)).unwrap();
        assert_eq!(warn.summary, "intern is at 80 % of its budget");
        let over = crossing(&ev(true)).unwrap();
        assert_eq!(over.summary, "intern has used its budget");
        assert!(
            over.body
                .contains("refused until 2026-12-07T00:00:00+01:00")
        );
        assert_eq!(crossing(&breaker("a", "open")), None);
        let q = crossing(&GatewayEvent::Quota {
            scope: "gemini/gemini-2.5-pro".into(),
            limit: "daily_requests".into(),
            percent: 100,
            reached: true,
            resets_at: "2026-12-07T00:00:00-08:00".into(),
        })
        .unwrap();
        assert_eq!(q.summary, "gemini/gemini-2.5-pro has used its quota");
        assert!(q.body.contains("Skipped until 2026-12-07T00:00:00-08:00"));
    }

    #[test]
    fn trips_and_recoveries_notify_and_the_last_state_always_gets_through() {
        let mut d = Debouncer::default();
        let t0 = Instant::now();
        assert_eq!(
            d.note(&breaker("a", "closed"), t0),
            None,
            "nothing to recover from"
        );
        let first = d.note(&breaker("a", "open"), t0).unwrap();
        assert_eq!(first.summary, "a is cooling down");
        assert_eq!(first.body, "500 server error");
        assert_eq!(d.note(&breaker("a", "half_open"), t0), None);
        // A recovery within the window is held, not lost.
        let t5 = t0 + Duration::from_secs(5);
        assert_eq!(d.note(&breaker("a", "closed"), t5), None);
        assert_eq!(d.next_due(), Some(t0 + DEBOUNCE));
        assert!(d.due(t5).is_empty());
        // Another provider is not held back by the first.
        assert!(d.note(&breaker("b", "open"), t5).is_some());
        let told = d.due(t0 + DEBOUNCE);
        assert_eq!(told.len(), 1);
        assert_eq!(told[0].summary, "a recovered");
        assert_eq!(d.next_due(), None);
    }

    #[test]
    fn a_flap_back_to_what_was_told_says_nothing() {
        let mut d = Debouncer::default();
        let t0 = Instant::now();
        assert!(d.note(&breaker("a", "open"), t0).is_some());
        let t = |s| t0 + Duration::from_secs(s);
        assert_eq!(d.note(&breaker("a", "closed"), t(5)), None);
        assert_eq!(d.note(&breaker("a", "open"), t(10)), None);
        assert!(d.due(t(60)).is_empty(), "still cooling, as told");
        // After the window a change is told at once.
        assert!(d.note(&breaker("a", "closed"), t(70)).is_some());
    }
}
