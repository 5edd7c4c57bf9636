//! Desktop notifications when a provider trips or recovers, through the freedesktop
//! notification service on the session bus. A flapping provider notifies once per window, not on
//! every change.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use switchboard_gateway::events::GatewayEvent;

/// One notification per provider per this long.
pub const DEBOUNCE: Duration = Duration::from_secs(60);

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Note {
    pub summary: String,
    pub body: String,
}

/// Turns breaker events into notifications, dropping repeats within [`DEBOUNCE`].
#[derive(Default)]
pub struct Debouncer {
    last: HashMap<String, Instant>,
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
            "open" => Note {
                summary: format!("{what} is cooling down"),
                body: reason.unwrap_or("It failed").to_owned(),
            },
            "closed" => Note {
                summary: format!("{what} recovered"),
                body: "Requests go to it again.".into(),
            },
            // Half-open is a trial, not news.
            _ => return None,
        };
        if let Some(at) = self.last.get(provider)
            && now.duration_since(*at) < DEBOUNCE
        {
            return None;
        }
        self.last.insert(provider.clone(), now);
        Some(note)
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

    fn breaker(provider: &str, state: &'static str) -> GatewayEvent {
        GatewayEvent::Breaker {
            provider: provider.into(),
            model: None,
            state,
            reason: Some("500 server error"),
            until: None,
        }
    }

    #[test]
    fn trips_and_recoveries_notify_but_flapping_does_not() {
        let mut d = Debouncer::default();
        let t0 = Instant::now();
        let first = d.note(&breaker("a", "open"), t0).unwrap();
        assert_eq!(first.summary, "a is cooling down");
        assert_eq!(first.body, "500 server error");
        assert_eq!(d.note(&breaker("a", "half_open"), t0), None);
        assert_eq!(
            d.note(&breaker("a", "closed"), t0 + Duration::from_secs(5)),
            None
        );
        // Another provider is not held back by the first.
        assert!(
            d.note(&breaker("b", "open"), t0 + Duration::from_secs(5))
                .is_some()
        );
        let later = d.note(&breaker("a", "closed"), t0 + DEBOUNCE).unwrap();
        assert_eq!(later.summary, "a recovered");
    }
}
