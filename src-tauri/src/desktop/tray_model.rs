//! What the tray shows, as plain data computed from the gateway's summary: the icon, the title,
//! the status line and one line per provider. No display needed, so the rules are unit tested.

use switchboard_api::{GatewayState, ProviderState, ProviderSummary, Summary};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Icon {
    Ok,
    Degraded,
    Down,
    Paused,
}

impl Icon {
    pub fn from_state(state: GatewayState) -> Icon {
        match state {
            GatewayState::Ok => Icon::Ok,
            GatewayState::Down => Icon::Down,
            GatewayState::Paused => Icon::Paused,
            GatewayState::Degraded => Icon::Degraded,
        }
    }

    pub fn png(self) -> &'static [u8] {
        match self {
            Icon::Ok => include_bytes!("../../../icons/tray-ok.png"),
            Icon::Degraded => include_bytes!("../../../icons/tray-degraded.png"),
            Icon::Down => include_bytes!("../../../icons/tray-down.png"),
            Icon::Paused => include_bytes!("../../../icons/tray-paused.png"),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProviderLine {
    pub name: String,
    /// The submenu's label: `relay-b: cooling until 14:32`.
    pub label: String,
    /// The first item inside: the reason, or "Healthy".
    pub detail: String,
    pub paused: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrayView {
    pub icon: Icon,
    /// `Switchboard: 3 ok, 1 cooling (relay-b until 14:32)`.
    pub title: String,
    pub providers: Vec<ProviderLine>,
    /// True when every provider is paused (so "Resume all" is the useful one).
    pub all_paused: bool,
    /// The earliest time something shown will change by itself (a cooldown or pause ends).
    pub next_change: Option<u64>,
}

/// `clock` turns unix seconds into the local `HH:MM`.
pub fn view(summary: &Summary, clock: &dyn Fn(u64) -> String) -> TrayView {
    let count = |s: ProviderState| summary.providers.iter().filter(|p| p.state == s).count();
    let (ok, cooling, paused) = (
        count(ProviderState::Ok),
        count(ProviderState::Cooling),
        count(ProviderState::Paused),
    );
    let refused = count(ProviderState::KeyRefused);
    let mut parts = Vec::new();
    if ok > 0 {
        parts.push(format!("{ok} ok"));
    }
    if cooling > 0 {
        let first = summary
            .providers
            .iter()
            .find(|p| p.state == ProviderState::Cooling);
        let detail = first
            .map(|p| match p.until {
                Some(t) => format!(" ({} until {})", p.name, clock(t)),
                None => format!(" ({})", p.name),
            })
            .unwrap_or_default();
        parts.push(format!("{cooling} cooling{detail}"));
    }
    if refused > 0 {
        let first = summary
            .providers
            .iter()
            .find(|p| p.state == ProviderState::KeyRefused);
        let name = first.map(|p| format!(" ({})", p.name)).unwrap_or_default();
        parts.push(format!("{refused} key refused{name}"));
    }
    if paused > 0 {
        parts.push(format!("{paused} paused"));
    }
    let title = match (summary.providers.is_empty(), summary.state) {
        (true, _) => "Switchboard: no providers yet".to_owned(),
        (false, GatewayState::Down) => format!("Switchboard: down, {}", parts.join(", ")),
        _ => format!("Switchboard: {}", parts.join(", ")),
    };
    TrayView {
        icon: Icon::from_state(summary.state),
        title,
        providers: summary.providers.iter().map(|p| line(p, clock)).collect(),
        all_paused: !summary.providers.is_empty() && paused == summary.providers.len(),
        next_change: summary.providers.iter().filter_map(|p| p.until).min(),
    }
}

fn line(p: &ProviderSummary, clock: &dyn Fn(u64) -> String) -> ProviderLine {
    let until = p
        .until
        .map(|t| format!(" until {}", clock(t)))
        .unwrap_or_default();
    let label = match p.state {
        ProviderState::Ok => format!("{}: ok", p.name),
        ProviderState::Paused => format!("{}: paused{until}", p.name),
        ProviderState::KeyRefused => format!("{}: key refused", p.name),
        ProviderState::Cooling => format!("{}: cooling{until}", p.name),
    };
    let detail = match (&p.reason, p.state) {
        (Some(r), _) => r.clone(),
        (None, ProviderState::Ok) => "Healthy".to_owned(),
        (None, ProviderState::Paused) if p.until.is_none() => "Paused until resumed".to_owned(),
        (None, ProviderState::Paused) => format!("Paused{until}"),
        (None, other) => other.as_str().to_owned(),
    };
    ProviderLine {
        name: p.name.clone(),
        label,
        detail,
        paused: p.state == ProviderState::Paused,
    }
}

/// `Today: 12 requests, $0.0310, 2 saved by failover`: the request log's totals since local
/// midnight. A cost with unpriced requests says so; nothing priced is unknown, not $0.
pub fn today_line(p: &switchboard_api::stats::Point) -> String {
    let plural = |n: u64, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    let cost = match (p.cost_usd > 0.0, p.unpriced) {
        (_, 0) => format!("${:.4}", p.cost_usd),
        (false, _) => "cost unknown".to_owned(),
        (true, n) => format!("${:.4} + {n} unpriced", p.cost_usd),
    };
    format!(
        "Today: {}, {cost}, {} saved by failover",
        plural(p.requests, "request", "requests"),
        p.saved
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A state word as the admin API sends it.
    fn word<T: serde::de::DeserializeOwned>(s: &str) -> T {
        serde_json::from_value(serde_json::Value::from(s)).unwrap()
    }

    fn p(name: &str, state: &str, reason: Option<&str>, until: Option<u64>) -> ProviderSummary {
        ProviderSummary {
            name: name.into(),
            state: word(state),
            reason: reason.map(Into::into),
            until,
        }
    }

    fn clock(t: u64) -> String {
        format!("{:02}:{:02}", (t / 3600) % 24, (t / 60) % 60)
    }

    #[test]
    fn a_refused_key_says_so_and_what_to_do() {
        let reason = "The provider refused its API key (401/403). Fix the key in Providers, then reset its breaker.";
        let s = Summary {
            state: GatewayState::Degraded,
            providers: vec![
                p("a", "key_refused", Some(reason), None),
                p("b", "ok", None, None),
            ],
        };
        let v = view(&s, &clock);
        assert_eq!(v.title, "Switchboard: 1 ok, 1 key refused (a)");
        assert_eq!(v.providers[0].label, "a: key refused");
        assert!(v.providers[0].detail.contains("Fix the key"));
        assert_eq!(v.next_change, None);
    }

    #[test]
    fn healthy_gateway() {
        let s = Summary {
            state: GatewayState::Ok,
            providers: vec![p("a", "ok", None, None), p("b", "ok", None, None)],
        };
        let v = view(&s, &clock);
        assert_eq!(v.icon, Icon::Ok);
        assert_eq!(v.title, "Switchboard: 2 ok");
        assert_eq!(v.providers[0].label, "a: ok");
        assert_eq!(v.providers[0].detail, "Healthy");
        assert!(!v.all_paused);
        assert_eq!(v.next_change, None);
    }

    #[test]
    fn a_cooling_provider_names_itself_and_its_time() {
        let until = 14 * 3600 + 32 * 60;
        let s = Summary {
            state: GatewayState::Degraded,
            providers: vec![
                p("a", "ok", None, None),
                p("b", "ok", None, None),
                p("c", "ok", None, None),
                p("relay-b", "cooling", Some("429 rate limited"), Some(until)),
            ],
        };
        let v = view(&s, &clock);
        assert_eq!(v.icon, Icon::Degraded);
        assert_eq!(
            v.title,
            "Switchboard: 3 ok, 1 cooling (relay-b until 14:32)"
        );
        assert_eq!(v.providers[3].label, "relay-b: cooling until 14:32");
        assert_eq!(v.providers[3].detail, "429 rate limited");
        assert_eq!(v.next_change, Some(until));
    }

    #[test]
    fn down_and_paused_have_their_own_icons() {
        let down = Summary {
            state: GatewayState::Down,
            providers: vec![p("a", "cooling", Some("401 auth failed"), None)],
        };
        let v = view(&down, &clock);
        assert_eq!(v.icon, Icon::Down);
        assert_eq!(v.title, "Switchboard: down, 1 cooling (a)");

        let paused = Summary {
            state: GatewayState::Paused,
            providers: vec![
                p("a", "paused", None, Some(3600)),
                p("b", "paused", None, None),
            ],
        };
        let v = view(&paused, &clock);
        assert_eq!(v.icon, Icon::Paused);
        assert!(v.all_paused);
        assert_eq!(v.providers[0].label, "a: paused until 01:00");
        assert_eq!(v.providers[1].detail, "Paused until resumed");
        assert_eq!(v.title, "Switchboard: 2 paused");
    }

    #[test]
    fn no_providers_says_so() {
        let s = Summary {
            state: GatewayState::Down,
            providers: vec![],
        };
        let v = view(&s, &clock);
        assert_eq!(v.title, "Switchboard: no providers yet");
        assert!(!v.all_paused);
    }

    #[test]
    fn every_state_has_a_distinct_icon() {
        let icons = [
            GatewayState::Ok,
            GatewayState::Degraded,
            GatewayState::Down,
            GatewayState::Paused,
        ]
        .map(Icon::from_state);
        let pngs: std::collections::HashSet<&[u8]> = icons.iter().map(|i| i.png()).collect();
        assert_eq!(pngs.len(), 4);
        assert!(pngs.iter().all(|b| b.starts_with(b"\x89PNG")));
    }

    #[test]
    fn today_says_requests_cost_and_failovers() {
        use switchboard_api::stats::Point;
        let mut p = Point {
            requests: 1,
            cost_usd: 0.0,
            ..Point::default()
        };
        assert_eq!(
            today_line(&p),
            "Today: 1 request, $0.0000, 0 saved by failover"
        );
        p.requests = 12;
        p.saved = 2;
        p.cost_usd = 0.031;
        assert_eq!(
            today_line(&p),
            "Today: 12 requests, $0.0310, 2 saved by failover"
        );
        p.unpriced = 3;
        assert_eq!(
            today_line(&p),
            "Today: 12 requests, $0.0310 + 3 unpriced, 2 saved by failover"
        );
        p.cost_usd = 0.0;
        assert_eq!(
            today_line(&p),
            "Today: 12 requests, cost unknown, 2 saved by failover"
        );
    }
}
