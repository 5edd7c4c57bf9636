//! Which web pages may reach the gateway. Every page the user opens can send requests to a local
//! port (a form post or a `text/plain` fetch needs no CORS preflight) and, through DNS
//! rebinding, under a name of its own. So a request that names a foreign `Origin` or `Host` is
//! refused unless the user allowed that origin (`server.allowed_origins`).

/// The bundled desktop page's origins: Linux and macOS, then Windows.
pub const APP_ORIGINS: [&str; 2] = ["tauri://localhost", "http://tauri.localhost"];

/// The most origins the setting may list: it is scanned on every browser request.
pub const MAX_ORIGINS: usize = 64;
/// The longest origin accepted: a scheme, a DNS name and a port.
const MAX_ORIGIN_LEN: usize = 300;

/// Checks and normalises the setting: each entry `*` or `scheme://host[:port]` (no path), in
/// lowercase, a trailing `/` dropped.
pub fn parse_list(list: &[String]) -> Result<Vec<String>, String> {
    if list.len() > MAX_ORIGINS {
        return Err(format!("at most {MAX_ORIGINS} origins, got {}", list.len()));
    }
    let mut out: Vec<String> = Vec::with_capacity(list.len());
    for raw in list {
        let o = parse_one(raw)?;
        if !out.contains(&o) {
            out.push(o);
        }
    }
    Ok(out)
}

fn parse_one(raw: &str) -> Result<String, String> {
    let s = raw.trim();
    if s == "*" {
        return Ok(s.to_owned());
    }
    let shown = crate::outside::clip(s, 80);
    if s.len() > MAX_ORIGIN_LEN {
        return Err(format!("the origin '{shown}' is too long"));
    }
    if s.eq_ignore_ascii_case("null") {
        // Sandboxed frames and local files all send `null`: allowing it allows all of them.
        return Err("the origin 'null' cannot be allowed: every sandboxed page sends it".into());
    }
    let s = s.strip_suffix('/').unwrap_or(s).to_ascii_lowercase();
    let Some((scheme, authority)) = s.split_once("://") else {
        return Err(format!(
            "'{shown}' is not an origin: write it as scheme://host[:port], like https://chat.example"
        ));
    };
    let scheme_ok = scheme
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    let authority_ok = !authority.is_empty()
        && authority
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']' | '_'));
    if !scheme_ok || !authority_ok {
        return Err(format!(
            "'{shown}' is not an origin: write it as scheme://host[:port], with no path"
        ));
    }
    Ok(s)
}

/// The authority a request was sent to: its `Host`, or HTTP/2's `:authority` (which arrives as
/// the URI's).
pub fn authority_of<'a>(headers: &'a http::HeaderMap, uri: &'a http::Uri) -> &'a str {
    headers
        .get(http::header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| uri.authority().map(|a| a.as_str()))
        .unwrap_or("")
}

/// Whether `origin` (as a browser sent it) is one the user allowed.
pub fn allowed(origin: &str, list: &[String]) -> bool {
    list.iter()
        .any(|o| o == "*" || o.eq_ignore_ascii_case(origin))
}

/// Whether `host` (the request's, port left off) is the host of an allowed origin: the name a
/// reverse proxy or a chat app uses to reach the gateway.
pub fn host_allowed(host: &str, list: &[String]) -> bool {
    list.iter().any(|o| {
        o == "*"
            || o.split_once("://")
                .is_some_and(|(_, a)| host_of(a).eq_ignore_ascii_case(host))
    })
}

/// Whether a page served by this very gateway sent the request: its origin names the
/// request's own `Host` (port included), so `http://localhost:3000` is foreign to
/// `localhost:7340`.
pub fn same_origin(origin: &str, authority: &str) -> bool {
    origin.split_once("://").is_some_and(|(scheme, rest)| {
        matches!(scheme, "http" | "https")
            && !authority.is_empty()
            && rest.eq_ignore_ascii_case(authority)
    })
}

/// The host of an authority (`host:port`, `[v6]:port`), port left off.
pub fn host_of(authority: &str) -> &str {
    if let Some(rest) = authority.strip_prefix('[') {
        return rest.split(']').next().unwrap_or("");
    }
    authority.rsplit_once(':').map_or(authority, |(h, port)| {
        if port.chars().all(|c| c.is_ascii_digit()) {
            h
        } else {
            authority
        }
    })
}

/// A loopback name, the configured host, or (listening on every interface) an address of this
/// machine: what a browser on the LAN sends. A DNS-rebinding page sends its own name, never one
/// of these.
pub fn allowed_host(host: &str, configured: &str) -> bool {
    crate::catalog::is_loopback_host(host)
        || host.eq_ignore_ascii_case(configured)
        || (is_unspecified(configured) && is_own_address(host))
}

fn is_unspecified(host: &str) -> bool {
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<std::net::IpAddr>()
        .is_ok_and(|ip| ip.is_unspecified())
}

/// Whether `host` is an IP address of this machine: only those can be bound.
fn is_own_address(host: &str) -> bool {
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<std::net::IpAddr>()
        .is_ok_and(|ip| !ip.is_unspecified() && std::net::UdpSocket::bind((ip, 0)).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn origins_are_normalised_and_checked() {
        assert_eq!(
            parse_list(&list(&[
                "https://Chat.Example/",
                "*",
                "https://chat.example"
            ]))
            .unwrap(),
            list(&["https://chat.example", "*"])
        );
        assert!(parse_list(&list(&["chat.example"])).is_err());
        assert!(parse_list(&list(&["https://chat.example/app"])).is_err());
        assert!(parse_list(&list(&["null"])).is_err());
        assert!(parse_list(&list(&["https://"])).is_err());
        assert!(parse_list(&vec!["https://a.example".to_owned(); MAX_ORIGINS + 1]).is_err());
    }

    #[test]
    fn a_page_is_same_origin_only_on_the_same_port() {
        assert!(same_origin("http://127.0.0.1:7340", "127.0.0.1:7340"));
        assert!(same_origin("http://LOCALHOST:7340", "localhost:7340"));
        assert!(!same_origin("http://localhost:3000", "localhost:7340"));
        assert!(!same_origin("https://evil.example", "127.0.0.1:7340"));
        assert!(!same_origin("null", "127.0.0.1:7340"));
        assert!(!same_origin("http://", ""));
    }

    #[test]
    fn allowed_origins_and_their_hosts() {
        let l = list(&["https://chat.example", "http://gw.lan:8080"]);
        assert!(allowed("https://chat.example", &l));
        assert!(!allowed("https://chat.example.evil", &l));
        assert!(host_allowed("gw.lan", &l));
        assert!(!host_allowed("evil.example", &l));
        assert!(allowed("https://any.example", &list(&["*"])));
    }

    #[test]
    fn hosts_of_this_machine_when_listening_everywhere() {
        assert!(allowed_host("localhost", "127.0.0.1"));
        assert!(!allowed_host("evil.example", "0.0.0.0"));
        // 127.0.0.2 is loopback; 192.0.2.1 (TEST-NET) is nobody's address here.
        assert!(!allowed_host("192.0.2.1", "0.0.0.0"));
        assert!(!is_own_address("0.0.0.0"));
        assert!(is_own_address("127.0.0.1"));
    }

    #[test]
    fn hosts() {
        assert_eq!(host_of("127.0.0.1:7340"), "127.0.0.1");
        assert_eq!(host_of("[::1]:7340"), "::1");
        assert_eq!(host_of("localhost"), "localhost");
        assert!(allowed_host("localhost", "127.0.0.1"));
        assert!(allowed_host("127.0.0.2", "127.0.0.1"));
        assert!(allowed_host("my-box.lan", "my-box.lan"));
        assert!(!allowed_host("evil.example", "127.0.0.1"));
        assert!(!allowed_host("", "127.0.0.1"));
    }
}
