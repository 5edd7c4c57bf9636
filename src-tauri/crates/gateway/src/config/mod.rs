//! The config file: strict TOML (unknown keys are errors), validated into checked types.
//! Errors name the file, the line and the field.

mod raw;
mod settings;
mod types;

use std::collections::HashSet;
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

pub use settings::*;
pub use types::*;

use crate::secrets::Secret;
use raw::RawConfig;

#[derive(Debug, thiserror::Error)]
pub struct ConfigError {
    pub file: PathBuf,
    /// 1-based; 0 when the error is not tied to a line (e.g. the file cannot be read).
    pub line: usize,
    pub field: Option<String>,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if self.line > 0 {
            write!(f, ":{}", self.line)?;
        }
        if let Some(field) = &self.field {
            write!(f, ": {field}")?;
        }
        write!(f, ": {}", self.message)
    }
}

pub fn load_file(path: &Path) -> Result<ConfigFile, ConfigError> {
    let src = std::fs::read_to_string(path).map_err(|e| ConfigError {
        file: path.to_owned(),
        line: 0,
        field: None,
        message: format!("cannot read the config file: {e}"),
    })?;
    parse(&src, path)
}

pub fn parse(src: &str, file: &Path) -> Result<ConfigFile, ConfigError> {
    let raw: RawConfig = toml::from_str(src).map_err(|e| {
        let line = e.span().map_or(0, |s| line_of(src, s.start));
        ConfigError {
            file: file.to_owned(),
            line,
            field: None,
            message: e.message().trim().to_owned(),
        }
    })?;
    Validator { src, file }.validate(raw)
}

fn line_of(src: &str, offset: usize) -> usize {
    let offset = offset.min(src.len());
    src.as_bytes()[..offset]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

struct Validator<'a> {
    src: &'a str,
    file: &'a Path,
}

impl Validator<'_> {
    /// The line of `key = ...` in the table that starts at the span (up to the next table
    /// header: toml spans an array-of-tables entry by its header only), else the table's line.
    fn line(&self, span: &Range<usize>, key: &str) -> usize {
        let start = span.start.min(self.src.len());
        let mut offset = start;
        for (i, l) in self.src[start..].split_inclusive('\n').enumerate() {
            let t = l.trim_start();
            if i > 0 && t.starts_with('[') {
                break;
            }
            if let Some(rest) = t.strip_prefix(key)
                && rest.trim_start().starts_with('=')
            {
                return line_of(self.src, offset);
            }
            offset += l.len();
        }
        line_of(self.src, start)
    }

    fn err(&self, span: &Range<usize>, key: &str, field: String, message: String) -> ConfigError {
        ConfigError {
            file: self.file.to_owned(),
            line: self.line(span, key),
            field: Some(field),
            message,
        }
    }

    /// A section's settings within their bounds (as its definition gives them).
    fn bounds(&self, span: &Range<usize>, bad: Option<OutOfRange>) -> Result<(), ConfigError> {
        match bad {
            Some(bad) => Err(self.err(
                span,
                bad.setting.key,
                bad.setting.id.to_owned(),
                bad.to_string(),
            )),
            None => Ok(()),
        }
    }

    /// The settings' sections: bounds from their definitions, and the checks bounds cannot say.
    fn settings(&self, raw: &mut RawConfig) -> Result<SettingsPatch, ConfigError> {
        let mut out = SettingsPatch::default();
        if let Some(server) = raw.server.take() {
            let span = server.span();
            let mut s = server.into_inner();
            self.bounds(&span, s.out_of_range())?;
            s.allowed_origins = s
                .allowed_origins
                .map(|list| crate::origins::parse_list(&list))
                .transpose()
                .map_err(|m| {
                    self.err(&span, "allowed_origins", "server.allowed_origins".into(), m)
                })?;
            if let Some(h) = &s.host
                && h.trim().is_empty()
            {
                return Err(self.err(
                    &span,
                    "host",
                    "server.host".into(),
                    "must not be empty".into(),
                ));
            }
            out.server = s;
        }
        if let Some(routing) = raw.routing.take() {
            let span = routing.span();
            let r = routing.into_inner();
            self.bounds(&span, r.out_of_range())?;
            if let Some(k) = &r.retry_on_keywords
                && k.iter().any(|k| k.trim().is_empty())
            {
                return Err(self.err(
                    &span,
                    "retry_on_keywords",
                    "routing.retry_on_keywords".into(),
                    "keywords must not be empty".into(),
                ));
            }
            if let Some(params) = &r.default_params {
                let bad = if params.contains_key("model") {
                    Some("may not set \"model\": routing decides the upstream model".to_owned())
                } else if params.len() > MAX_PARAMS {
                    Some(format!("at most {MAX_PARAMS} parameters"))
                } else {
                    None
                };
                if let Some(message) = bad {
                    return Err(self.err(
                        &span,
                        "default_params",
                        "routing.default_params".into(),
                        message,
                    ));
                }
            }
            out.routing = r;
        }
        if let Some(cooldown) = raw.cooldown.take() {
            let span = cooldown.span();
            out.cooldown = cooldown.into_inner();
            self.bounds(&span, out.cooldown.out_of_range())?;
        }
        if let Some(app) = raw.app.take() {
            out.app = app.into_inner();
        }
        if let Some(admin) = raw.admin.take() {
            let span = admin.span();
            out.admin = admin.into_inner();
            self.bounds(&span, out.admin.out_of_range())?;
        }
        if let Some(logs) = raw.logs.take() {
            let span = logs.span();
            out.logs = logs.into_inner();
            self.bounds(&span, out.logs.out_of_range())?;
        }
        if let Some(pricing) = raw.pricing.take() {
            let span = pricing.span();
            let p = pricing.into_inner();
            self.bounds(&span, p.out_of_range())?;
            if let Some(url) = &p.refresh_url {
                check_refresh_url(url)
                    .map_err(|m| self.err(&span, "refresh_url", "pricing.refresh_url".into(), m))?;
            }
            out.pricing = p;
        }
        Ok(out)
    }

    fn validate(&self, mut raw: RawConfig) -> Result<ConfigFile, ConfigError> {
        let mut out = ConfigFile {
            settings: self.settings(&mut raw)?,
            ..ConfigFile::default()
        };

        let mut names = HashSet::new();
        for (i, p) in raw.providers.into_iter().enumerate() {
            let span = p.span();
            let p = p.into_inner();
            let at = |key: &str| format!("providers[{i}].{key}");
            validate_provider_name(&p.name).map_err(|m| self.err(&span, "name", at("name"), m))?;
            if !names.insert(p.name.clone()) {
                return Err(self.err(
                    &span,
                    "name",
                    at("name"),
                    format!("provider {:?} is defined twice", p.name),
                ));
            }
            let base_url = p
                .base_url
                .map(|u| normalize_base_url(&u))
                .transpose()
                .map_err(|m| self.err(&span, "base_url", at("base_url"), m))?;
            let protocols = p
                .protocols
                .map(|list| {
                    if list.is_empty() {
                        return Err("must name at least one protocol".to_owned());
                    }
                    let mut out: Vec<Protocol> = Vec::new();
                    for s in &list {
                        let proto = s.parse::<Protocol>()?;
                        if !out.contains(&proto) {
                            out.push(proto);
                        }
                    }
                    Ok(out)
                })
                .transpose()
                .map_err(|m| self.err(&span, "protocols", at("protocols"), m))?;
            let api_key = p
                .api_key
                .map(|k| parse_key_spec(&k))
                .transpose()
                .map_err(|m| self.err(&span, "api_key", at("api_key"), m))?;
            if p.weight == Some(0) {
                return Err(self.err(
                    &span,
                    "weight",
                    at("weight"),
                    "must be at least 1 (set enabled = false to stop using a provider)".into(),
                ));
            }
            if let Some(models) = &p.models
                && models.iter().any(|m| m.trim().is_empty())
            {
                return Err(self.err(
                    &span,
                    "models",
                    at("models"),
                    "model ids must not be empty".into(),
                ));
            }
            if let Some(headers) = &p.headers {
                for (k, v) in headers {
                    check_header(k, v).map_err(|m| self.err(&span, "headers", at("headers"), m))?;
                }
            }
            out.providers.push(ProviderSpec {
                name: p.name,
                line: line_of(self.src, span.start),
                base_url,
                protocols,
                api_key,
                weight: p.weight,
                priority: p.priority,
                enabled: p.enabled,
                responses: p.responses,
                models: p.models,
                headers: p.headers,
            });
        }

        let mut names = HashSet::new();
        for (i, m) in raw.models.into_iter().enumerate() {
            let span = m.span();
            let m = m.into_inner();
            let at = |key: &str| format!("models[{i}].{key}");
            validate_name(&m.name).map_err(|e| self.err(&span, "name", at("name"), e))?;
            if !names.insert(m.name.clone()) {
                return Err(self.err(
                    &span,
                    "name",
                    at("name"),
                    format!("model {:?} is defined twice", m.name),
                ));
            }
            let rules = m
                .rules
                .map(|rules| {
                    rules
                        .into_iter()
                        .enumerate()
                        .map(|(j, r)| {
                            let rule = parse_rule(&r.kind, r.value)
                                .map_err(|e| (format!("rules[{j}]"), e))?;
                            Ok(rule)
                        })
                        .collect::<Result<Vec<_>, (String, String)>>()
                })
                .transpose()
                .map_err(|(f, e)| self.err(&span, "rules", at(&f), e))?;
            let include = m
                .include
                .map(|list| list.iter().map(|s| parse_include(s)).collect())
                .transpose()
                .map_err(|e| self.err(&span, "include", at("include"), e))?;
            let protocol = m
                .protocol
                .map(|p| p.parse::<Protocol>())
                .transpose()
                .map_err(|e| self.err(&span, "protocol", at("protocol"), e))?;
            let params = |t: Option<toml::Table>, key: &str| {
                t.map(|t| {
                    serde_json::to_value(t)
                        .ok()
                        .and_then(|v| v.as_object().cloned())
                        .ok_or_else(|| self.err(&span, key, at(key), "must be a table".into()))
                })
                .transpose()
            };
            let default_params = params(m.default_params, "default_params")?;
            let override_params = params(m.override_params, "override_params")?;
            for (key, map) in [
                ("default_params", &default_params),
                ("override_params", &override_params),
            ] {
                if map.as_ref().is_some_and(|m| m.contains_key("model")) {
                    return Err(self.err(
                        &span,
                        key,
                        at(key),
                        "may not set \"model\": routing decides the upstream model".into(),
                    ));
                }
            }
            let mut strategy = m
                .strategy
                .map(|s| s.parse::<Strategy>())
                .transpose()
                .map_err(|e| self.err(&span, "strategy", at("strategy"), e))?;
            // `sort = [...]` is the sort strategy's; it says so by itself.
            if let Some(keys) = &m.sort {
                switchboard_api::sort::check(keys)
                    .map_err(|e| self.err(&span, "sort", at("sort"), e))?;
                match strategy {
                    None => strategy = Some(Strategy::Sort),
                    Some(Strategy::Sort) => {}
                    Some(other) => {
                        return Err(self.err(
                            &span,
                            "sort",
                            at("sort"),
                            format!(
                                "sort is the sort strategy's, and strategy is {:?}",
                                other.as_str()
                            ),
                        ));
                    }
                }
            } else if strategy == Some(Strategy::Sort) {
                return Err(self.err(
                    &span,
                    "strategy",
                    at("strategy"),
                    "strategy \"sort\" needs sort = [{ by = \"cost\" }, ...] (cost, latency, success, quota or priority)".into(),
                ));
            }
            let tiers = match (m.tiers, m.classifier) {
                (None, None) => None,
                (None, Some(_)) => {
                    return Err(self.err(
                        &span,
                        "classifier",
                        at("classifier"),
                        "a classifier needs tiers ([[models.tiers]])".into(),
                    ));
                }
                // `tiers = []` takes a model's tiers away (the admin API's edit).
                (Some(tiers), _) if tiers.is_empty() => Some(Default::default()),
                (Some(tiers), classifier) => {
                    if rules.as_ref().is_some_and(|r| !r.is_empty())
                        || include.as_ref().is_some_and(|i: &Vec<_>| !i.is_empty())
                    {
                        return Err(self.err(
                            &span,
                            "tiers",
                            at("tiers"),
                            "a tiered model sends its requests to its tiers' targets: give it \
                             tiers or rules and include, not both"
                                .into(),
                        ));
                    }
                    let tiering = switchboard_api::tiers::Tiering {
                        classifier: classifier.unwrap_or_default(),
                        tiers,
                    };
                    crate::tiers::Tiered::compile(&m.name, tiering.clone())
                        .map_err(|e| self.err(&span, "tiers", at("tiers"), e))?;
                    Some(tiering)
                }
            };
            if let Some(g) = &m.group {
                g.check()
                    .map_err(|e| self.err(&span, "group", at("group"), e))?;
                let has_rules = rules.as_ref().is_some_and(|r| !r.is_empty())
                    || include.as_ref().is_some_and(|i: &Vec<_>| !i.is_empty());
                if *g != Default::default() && (has_rules || tiers.is_some()) {
                    return Err(self.err(
                        &span,
                        "group",
                        at("group"),
                        "a group is defined by its filters: give it group or rules (or tiers), not both"
                            .into(),
                    ));
                }
            }
            out.models.push(ModelSpec {
                strategy,
                sort: m.sort,
                group: m.group,
                tiers,
                name: m.name,
                rules,
                include,
                exclude_providers: m.exclude_providers,
                protocol,
                default_params,
                override_params,
                probe: m.probe,
            });
        }

        let mut names = HashSet::new();
        let mut keys = HashSet::new();
        for (i, k) in raw.client_keys.into_iter().enumerate() {
            let span = k.span();
            let k = k.into_inner();
            let at = |key: &str| format!("client_keys[{i}].{key}");
            validate_name(&k.name).map_err(|e| self.err(&span, "name", at("name"), e))?;
            if !names.insert(k.name.clone()) {
                return Err(self.err(
                    &span,
                    "name",
                    at("name"),
                    format!("client key {:?} is defined twice", k.name),
                ));
            }
            if let Some(key) = &k.key {
                if key.len() < 16 || key.chars().any(|c| c.is_whitespace()) {
                    return Err(self.err(
                        &span,
                        "key",
                        at("key"),
                        "must be at least 16 characters without spaces (leave it out to have one generated)".into(),
                    ));
                }
                if !keys.insert(key.clone()) {
                    return Err(self.err(
                        &span,
                        "key",
                        at("key"),
                        "the same key is given to two client keys".into(),
                    ));
                }
            }
            let rpm = k
                .rpm
                .map(|r| {
                    u32::try_from(r).ok().filter(|r| *r > 0).ok_or_else(|| {
                        "must be a positive number of requests per minute".to_owned()
                    })
                })
                .transpose()
                .map_err(|e| self.err(&span, "rpm", at("rpm"), e))?;
            let expires_at = k
                .expires_at
                .map(|t| match t {
                    raw::RawTime::Unix(s) => {
                        u64::try_from(s).map_err(|_| "must not be negative".to_owned())
                    }
                    raw::RawTime::Text(s) => unix_of_utc_date(&s),
                })
                .transpose()
                .map_err(|e| self.err(&span, "expires_at", at("expires_at"), e))?;
            if let Some(b) = &k.budget {
                b.check()
                    .and_then(|()| crate::budget::Clock::new(b).map(|_| ()))
                    .map_err(|e| self.err(&span, "budget", at("budget"), e))?;
            }
            out.client_keys.push(ClientKeySpec {
                budget: k.budget,
                name: k.name,
                key: k.key.map(Secret::new),
                models: k.models,
                rpm,
                expires_at,
                capture_bodies: k.capture_bodies,
                pin_providers: k.pin_providers,
            });
        }

        let mut keys = HashSet::new();
        for (i, p) in raw.prices.into_iter().enumerate() {
            let span = p.span();
            let p = p.into_inner();
            p.check()
                .map_err(|(field, m)| self.err(&span, field, format!("prices[{i}].{field}"), m))?;
            let (provider, model) = p.key();
            // Models are priced without regard to case: `GPT-4o` and `gpt-4o` are one entry.
            if !keys.insert((provider.to_owned(), model.to_lowercase())) {
                let field = if p.model.is_some() {
                    "model"
                } else {
                    "provider"
                };
                return Err(self.err(
                    &span,
                    field,
                    format!("prices[{i}].{field}"),
                    format!(
                        "a second entry for provider {:?} and model {:?}",
                        or_every(provider),
                        or_every(model)
                    ),
                ));
            }
            out.prices.push(p);
        }

        let mut keys = HashSet::new();
        for (i, c) in raw.capabilities.into_iter().enumerate() {
            let span = c.span();
            let c = c.into_inner();
            let at = |field: &str| format!("capabilities[{i}].{field}");
            c.check()
                .map_err(|(field, m)| self.err(&span, field, at(field), m))?;
            let provider = c.provider.clone().unwrap_or_default();
            if !keys.insert((provider, c.model.to_lowercase())) {
                return Err(self.err(
                    &span,
                    "model",
                    at("model"),
                    format!(
                        "a second entry for provider {:?} and model {:?}",
                        c.provider.as_deref().unwrap_or("*"),
                        c.model
                    ),
                ));
            }
            out.capabilities.push(c);
        }

        let mut scopes = HashSet::new();
        for (i, q) in raw.quotas.into_iter().enumerate() {
            let span = q.span();
            let q = q.into_inner();
            let at = |field: &str| format!("quotas[{i}].{field}");
            q.check()
                .and_then(|()| crate::budget::Clock::new(&q.limits()).map(|_| ()))
                .map_err(|m| self.err(&span, "provider", at("provider"), m))?;
            if !scopes.insert(q.scope()) {
                return Err(self.err(
                    &span,
                    "provider",
                    at("provider"),
                    format!("a second quota for {}", q.scope()),
                ));
            }
            out.quotas.push(q);
        }
        Ok(out)
    }
}

fn or_every(name: &str) -> &str {
    if name.is_empty() { "*" } else { name }
}

/// Empty (nothing fetched), or an http(s) URL without credentials in it.
pub fn check_refresh_url(url: &str) -> Result<(), String> {
    if url.is_empty() {
        return Ok(());
    }
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("{url:?} is not a URL: {e}"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err("must be an http:// or https:// URL (or empty: the bundled list only)".into());
    }
    if url_has_credentials(url) {
        return Err("must not hold credentials".into());
    }
    Ok(())
}

/// `YYYY-MM-DD` (midnight UTC) or `YYYY-MM-DDTHH:MM:SSZ` as unix seconds.
pub fn unix_of_utc_date(s: &str) -> Result<u64, String> {
    let bad = || {
        format!(
            "{s:?} is not a date: write YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ (UTC), or unix seconds"
        )
    };
    let (date, time) = match s.split_once('T') {
        Some((d, t)) => (d, t.strip_suffix('Z').ok_or_else(bad)?),
        None => (s, "00:00:00"),
    };
    let num = |p: Option<&str>| p.and_then(|x| x.parse::<i64>().ok()).ok_or_else(bad);
    let mut d = date.splitn(3, '-');
    let (y, m, day) = (num(d.next())?, num(d.next())?, num(d.next())?);
    let mut t = time.splitn(3, ':');
    let (hh, mm, ss) = (num(t.next())?, num(t.next())?, num(t.next())?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&day) || hh > 23 || mm > 59 || ss > 60 {
        return Err(bad());
    }
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(days * 86_400 + hh * 3600 + mm * 60 + ss).map_err(|_| bad())
}

/// How many parameters `[routing] default_params` may hold: each is added to every request.
pub const MAX_PARAMS: usize = 64;

pub fn validate_name(name: &str) -> Result<(), String> {
    if name.trim().is_empty() {
        return Err("must not be empty".into());
    }
    if name.len() > 128 || name.chars().any(|c| c.is_control()) {
        return Err("must be at most 128 printable characters".into());
    }
    Ok(())
}

/// `scheme://user:password@host...`: an `@` before the path.
pub fn url_has_credentials(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.trim_start_matches('/')
        .split(['/', '?', '#'])
        .next()
        .is_some_and(|authority| authority.contains('@'))
}

/// A provider's name also starts `provider/model` in a model's `include`, so it holds no `/`.
pub fn validate_provider_name(name: &str) -> Result<(), String> {
    validate_name(name)?;
    if name.contains('/') {
        return Err("must not contain '/' (models name provider models as provider/model)".into());
    }
    Ok(())
}

/// Header names that carry credentials: their values are secrets, so they must come from the
/// environment (`env:NAME`); a literal would be stored and shown as written. Read generously
/// (`x_api_key`, `apikey`, `x-auth-token`): a false alarm costs an `env:`, a miss leaks a key.
pub fn is_credential_header(name: &str) -> bool {
    let n = name.to_ascii_lowercase().replace('_', "-");
    const WORDS: [&str; 11] = [
        "authorization",
        "authentication",
        "auth",
        "apikey",
        "key",
        "token",
        "secret",
        "password",
        "cookie",
        "credential",
        "credentials",
    ];
    n.split('-').any(|w| WORDS.contains(&w))
        || ["apikey", "token", "secret", "password"]
            .iter()
            .any(|w| n.contains(w))
}

/// A provider's extra header: a valid name, and a valid value or an `env:NAME` reference.
fn check_header(name: &str, value: &str) -> Result<(), String> {
    if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
        return Err(format!("{name:?} is not a valid HTTP header name"));
    }
    if let Some(var) = value.strip_prefix("env:") {
        return match parse_key_spec(value) {
            Ok(_) => Ok(()),
            Err(_) => Err(format!(
                "{name:?}: env:{var} is not a valid environment variable name"
            )),
        };
    }
    if http::HeaderValue::from_str(value).is_err() {
        return Err(format!(
            "{name:?} has a value that is not a valid HTTP header value"
        ));
    }
    if is_credential_header(name) {
        return Err(format!(
            "{name:?} carries a credential: give it as \"env:NAME\" (header values are stored as written), or use api_key"
        ));
    }
    Ok(())
}

/// `https://host[:port][/prefix]`, without a trailing slash or `/v1` (both are tolerated in the
/// file): the protocol adapters append `/v1/...` or `/v1beta/...` themselves.
pub fn normalize_base_url(url: &str) -> Result<String, String> {
    let url = url.trim();
    // The URL is stored, shown and logged as written: no credentials in it (checked first, so
    // no other message repeats them).
    let authority = url.split_once("://").map_or(url, |(_, r)| r);
    if authority
        .split(['/', '?', '#'])
        .next()
        .is_some_and(|a| a.contains('@'))
    {
        return Err(
            "must not hold credentials (user:password@): put the key in api_key, or a header given as env:NAME"
                .to_owned(),
        );
    }
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or_else(|| "must start with http:// or https://".to_owned())?;
    if rest.is_empty() || rest.starts_with('/') {
        return Err("has no host".to_owned());
    }
    if url.contains(['?', '#', ' ']) {
        return Err(
            "must be an origin with an optional path, without query or fragment".to_owned(),
        );
    }

    let mut u = url.trim_end_matches('/');
    if let Some(stripped) = u.strip_suffix("/v1") {
        u = stripped;
    }
    Ok(u.trim_end_matches('/').to_owned())
}

fn parse_key_spec(k: &str) -> Result<KeySpec, String> {
    if let Some(name) = k.strip_prefix("env:") {
        let valid = !name.is_empty()
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !name.starts_with(|c: char| c.is_ascii_digit());
        if !valid {
            return Err(format!(
                "env:{name} is not a valid environment variable name"
            ));
        }
        return Ok(KeySpec::Env(name.to_owned()));
    }
    if k.trim().is_empty() {
        return Err("is empty (leave it out to keep the stored key)".into());
    }
    if k.chars().any(|c| c.is_control()) {
        return Err("contains control characters".into());
    }
    Ok(KeySpec::Literal(Secret::new(k)))
}

pub fn parse_rule(kind: &str, value: String) -> Result<Rule, String> {
    let kind: RuleKind = kind.parse()?;
    if value.is_empty() {
        return Err(format!("{} rule has an empty value", kind.as_str()));
    }
    if kind == RuleKind::Regex {
        regex::Regex::new(&value).map_err(|e| format!("invalid regex {value:?}: {e}"))?;
    }
    Ok(Rule { kind, value })
}

pub fn parse_include(s: &str) -> Result<Include, String> {
    match s.split_once('/') {
        Some((p, m)) if !p.is_empty() && !m.is_empty() => Ok(Include {
            provider: p.to_owned(),
            model: m.to_owned(),
        }),
        _ => Err(format!("{s:?} must be \"provider/model\"")),
    }
}

#[cfg(test)]
mod tests;
