use super::*;

fn p(src: &str) -> Result<ConfigFile, ConfigError> {
    parse(src, Path::new("sb.toml"))
}

const FULL: &str = r#"
[server]
request_timeout_s = 30
max_body_mb = 8

[routing]
retry_on_keywords = ["rate limit"]
max_attempts = 3

[cooldown]
rate_limited = 60

[[providers]]
name = "relay-a"
base_url = "https://relay-a.example/v1/"
protocols = ["openai", "anthropic"]
api_key = "env:RELAY_A_KEY"
weight = 10
models = ["gpt-4o"]
headers = { "x-extra" = "1" }

[[providers]]
name = "relay-b"
base_url = "http://127.0.0.1:9000/prefix"
api_key = "sk-literal-key"

[[models]]
name = "claude-opus-4-5"
rules = [
  { type = "exact", value = "claude-opus-4-5" },
  { type = "regex", value = "^claude-opus-4[-.]5" },
  { type = "exclude_keyword", value = "thinking" },
]
include = ["relay-b/claude-opus-4-5-20251101"]
exclude_providers = ["relay-c"]
protocol = "anthropic"
default_params = { top_p = 0.95 }

[[client_keys]]
name = "cursor"
key = "sk-sb-0123456789abcdef"
models = ["*"]
"#;

#[test]
fn parses_the_contract_example() {
    let c = p(FULL).unwrap();
    assert_eq!(c.settings.server.request_timeout_s, Some(30));
    assert_eq!(c.settings.routing.max_attempts, Some(3));
    assert_eq!(c.settings.cooldown.rate_limited, Some(60));
    assert_eq!(c.settings.cooldown.timeout, None);
    assert_eq!(c.providers.len(), 2);
    let a = &c.providers[0];
    assert_eq!(a.base_url.as_deref(), Some("https://relay-a.example"));
    assert_eq!(
        a.protocols,
        Some(vec![Protocol::OpenAi, Protocol::Anthropic])
    );
    assert_eq!(a.api_key, Some(KeySpec::Env("RELAY_A_KEY".into())));
    assert_eq!(a.line, 13);
    let b = &c.providers[1];
    assert_eq!(b.base_url.as_deref(), Some("http://127.0.0.1:9000/prefix"));
    assert!(matches!(&b.api_key, Some(KeySpec::Literal(s)) if s.expose() == "sk-literal-key"));
    let m = &c.models[0];
    assert_eq!(m.rules.as_ref().unwrap().len(), 3);
    assert_eq!(
        m.include.as_ref().unwrap()[0].model,
        "claude-opus-4-5-20251101"
    );
    assert_eq!(m.protocol, Some(Protocol::Anthropic));
    assert_eq!(m.default_params.as_ref().unwrap()["top_p"], 0.95);
    assert_eq!(c.client_keys[0].name, "cursor");
}

#[test]
fn empty_file_is_valid() {
    assert_eq!(p("").unwrap(), ConfigFile::default());
}

#[test]
fn unknown_key_names_line_and_key() {
    let e = p("[server]\nrequest_timeout_s = 3\nport_number = 1\n").unwrap_err();
    assert_eq!(e.line, 3, "{e}");
    assert!(e.to_string().starts_with("sb.toml:3: "), "{e}");
    assert!(e.message.contains("port_number"), "{e}");

    let e = p("[[providers]]\nname = \"a\"\nbase_ur = \"http://x\"\n").unwrap_err();
    assert_eq!(e.line, 3, "{e}");
    assert!(e.message.contains("base_ur"), "{e}");
}

#[test]
fn wrong_type_names_line() {
    let e = p("[server]\n\nmax_body_mb = \"big\"\n").unwrap_err();
    assert_eq!(e.line, 3, "{e}");
}

#[test]
fn syntax_error_names_line() {
    let e = p("[server]\nport = \n").unwrap_err();
    assert_eq!(e.line, 2, "{e}");
}

#[test]
fn missing_name_is_an_error() {
    let e = p("[[providers]]\nbase_url = \"http://x\"\n").unwrap_err();
    assert!(e.message.contains("name"), "{e}");
}

#[test]
fn validation_errors_name_file_line_and_field() {
    let cases: &[(&str, usize, &str, &str)] = &[
        (
            "[[providers]]\nname = \"a\"\nbase_url = \"ftp://x\"\n",
            3,
            "providers[0].base_url",
            "http://",
        ),
        (
            "[[providers]]\nname = \"a\"\n\n[[providers]]\nname = \"a\"\n",
            5,
            "providers[1].name",
            "twice",
        ),
        (
            "[[providers]]\nname = \"a\"\nprotocols = [\"grpc\"]\n",
            3,
            "providers[0].protocols",
            "unknown protocol",
        ),
        (
            "[[providers]]\nname = \"a\"\napi_key = \"env:1BAD\"\n",
            3,
            "providers[0].api_key",
            "environment variable",
        ),
        (
            "[[providers]]\nname = \"a\"\nweight = 0\n",
            3,
            "providers[0].weight",
            "at least 1",
        ),
        (
            "[[models]]\nname = \"m\"\nrules = [{ type = \"regex\", value = \"(\" }]\n",
            3,
            "models[0].rules[0]",
            "invalid regex",
        ),
        (
            "[[models]]\nname = \"m\"\nrules = [{ type = \"fuzzy\", value = \"x\" }]\n",
            3,
            "models[0].rules[0]",
            "unknown rule type",
        ),
        (
            "[[models]]\nname = \"m\"\ninclude = [\"nomodel\"]\n",
            3,
            "models[0].include",
            "provider/model",
        ),
        (
            "[[models]]\nname = \"m\"\nstrategy = \"fastest\"\n",
            3,
            "models[0].strategy",
            "unknown strategy \"fastest\" (expected weighted, priority",
        ),
        (
            "[[models]]\nname = \"m\"\noverride_params = { model = \"x\" }\n",
            3,
            "models[0].override_params",
            "model",
        ),
        (
            "[server]\nmax_body_mb = 0\n",
            2,
            "server.max_body_mb",
            "between",
        ),
        (
            "[server]\nrequest_timeout_s = 0\n",
            2,
            "server.request_timeout_s",
            "between",
        ),
        (
            "[routing]\nmax_attempts = 99\n",
            2,
            "routing.max_attempts",
            "between",
        ),
        (
            "[[providers]]\nname = \"a\"\nbase_url = \"https://me:hunter2@relay.example\"\n",
            3,
            "providers[0].base_url",
            "credentials",
        ),
        (
            "[[providers]]\nname = \"a\"\nheaders = { \"x-relay-key\" = \"sk-literal\" }\n",
            3,
            "providers[0].headers",
            "env:NAME",
        ),
        (
            "[[providers]]\nname = \"a\"\nheaders = { \"Authorization\" = \"Basic abc\" }\n",
            3,
            "providers[0].headers",
            "credential",
        ),
        (
            "[[providers]]\nname = \"a\"\nheaders = { \"api-key\" = \"env:1X\" }\n",
            3,
            "providers[0].headers",
            "environment variable",
        ),
        (
            "[admin]\nmax_failed_logins = 0\n",
            2,
            "admin.max_failed_logins",
            "between",
        ),
        (
            "[admin]\nsession_ttl_s = 5\n",
            2,
            "admin.session_ttl_s",
            "between",
        ),
        (
            "[[client_keys]]\nname = \"c\"\nkey = \"short\"\n",
            3,
            "client_keys[0].key",
            "16 characters",
        ),
        (
            "[[prices]]\nprovider = \"r\"\n",
            1,
            "prices[0].input",
            "multiplier",
        ),
        (
            "[[prices]]\nmodel = \"m\"\nmultiplier = 500.0\n",
            3,
            "prices[0].multiplier",
            "between 0 and 100",
        ),
        (
            "[[prices]]\nmodel = \"m\"\ninput = -1.0\noutput = 1.0\n",
            3,
            "prices[0].input",
            "between 0 and",
        ),
        (
            "[[prices]]\nmodel = \"gpt-4o\"\nmultiplier = 1.0\n\n[[prices]]\nmodel = \"GPT-4o\"\nmultiplier = 2.0\n",
            6,
            "prices[1].model",
            "a second entry",
        ),
        (
            "[pricing]\nrefresh_url = \"file:///etc/passwd\"\n",
            2,
            "pricing.refresh_url",
            "http",
        ),
        (
            "[pricing]\nrefresh_url = \"https://me:pw@prices.example/x.json\"\n",
            2,
            "pricing.refresh_url",
            "credentials",
        ),
    ];
    for (src, line, field, needle) in cases {
        let e = p(src).expect_err(src);
        assert!(!e.to_string().contains("hunter2"), "{e}");
        assert_eq!(e.line, *line, "{src}\n=> {e}");
        assert_eq!(e.field.as_deref(), Some(*field), "{src}\n=> {e}");
        assert!(e.message.contains(needle), "{src}\n=> {e}");
        assert!(
            e.to_string()
                .starts_with(&format!("sb.toml:{line}: {field}: ")),
            "{e}"
        );
    }
}

#[test]
fn literal_key_never_appears_in_debug_output() {
    let c = p("[[providers]]\nname = \"a\"\napi_key = \"sk-very-secret-value\"\n").unwrap();
    assert!(!format!("{c:?}").contains("sk-very-secret-value"));
}

#[test]
fn base_url_normalization() {
    assert_eq!(normalize_base_url("https://a.b/").unwrap(), "https://a.b");
    assert_eq!(normalize_base_url("https://a.b/v1").unwrap(), "https://a.b");
    assert_eq!(
        normalize_base_url("https://a.b/api/v1/").unwrap(),
        "https://a.b/api"
    );
    assert_eq!(
        normalize_base_url("http://127.0.0.1:8080").unwrap(),
        "http://127.0.0.1:8080"
    );
    assert!(normalize_base_url("https://").is_err());
    assert!(normalize_base_url("a.b").is_err());
    assert!(normalize_base_url("https://a.b/?x=1").is_err());
    // Credentials are refused, and no message repeats the URL.
    for bad in [
        "https://me:pw1234@a.b",
        "http://me:pw1234@a.b/v1",
        "http:/me:pw1234@a.b",
        "ftp://me:pw1234@a.b",
        "me:pw1234@a.b",
    ] {
        let e = normalize_base_url(bad).expect_err(bad);
        assert!(!e.contains("pw1234"), "{bad}: {e}");
    }
    assert!(
        normalize_base_url("https://a.b/@scope/x").is_ok(),
        "an @ in the path"
    );
}

#[test]
fn credential_headers_are_recognised_generously() {
    use super::is_credential_header;
    for h in [
        "Authorization",
        "api-key",
        "x-api-key",
        "X_API_KEY",
        "apikey",
        "x-apikey",
        "x-auth-token",
        "x-auth",
        "token",
        "x-goog-api-key",
        "x-client-secret",
        "cookie",
        "x-access-token",
    ] {
        assert!(is_credential_header(h), "{h}");
    }
    for h in [
        "x-extra",
        "anthropic-beta",
        "openai-organization",
        "x-portkey-config",
        "x-title",
    ] {
        assert!(!is_credential_header(h), "{h}");
    }
}

#[test]
fn client_key_limits_and_expiry() {
    use super::unix_of_utc_date;
    assert_eq!(unix_of_utc_date("2026-11-22"), Ok(1_795_305_600));
    assert_eq!(unix_of_utc_date("2000-02-29T12:30:05Z"), Ok(951_827_405));
    assert!(unix_of_utc_date("2026-13-01").is_err());
    assert!(unix_of_utc_date("tomorrow").is_err());
    let file = super::parse(
        "[[client_keys]]\nname = \"a\"\nrpm = 30\nexpires_at = \"2026-11-22\"\n\n[[client_keys]]\nname = \"b\"\nexpires_at = 1795305600\n",
        std::path::Path::new("t.toml"),
    )
    .unwrap();
    assert_eq!(file.client_keys[0].rpm, Some(30));
    assert_eq!(file.client_keys[0].expires_at, Some(1_795_305_600));
    assert_eq!(file.client_keys[1].expires_at, Some(1_795_305_600));
    let e = super::parse(
        "[[client_keys]]\nname = \"a\"\nrpm = 0\n",
        std::path::Path::new("t.toml"),
    )
    .unwrap_err();
    assert_eq!(e.field.as_deref(), Some("client_keys[0].rpm"));
}

#[test]
fn credential_headers_come_from_the_environment() {
    let f = p("[[providers]]\nname = \"a\"\nheaders = { \"api-key\" = \"env:AZURE_KEY\", \"x-extra\" = \"1\" }\n")
        .unwrap();
    let h = f.providers[0].headers.as_ref().unwrap();
    assert_eq!(h["api-key"], "env:AZURE_KEY");
    assert_eq!(h["x-extra"], "1");
}

/// Every config the README shows (its ```toml blocks, but Codex's own file) parses: a user who
/// copies one gets a working start, wildcard models and `responses` included.
#[test]
fn the_readmes_config_blocks_parse() {
    let readme = include_str!("../../../../../README.md");
    let mut checked = 0;
    for block in readme.split("```toml\n").skip(1) {
        let Some((src, _)) = block.split_once("```") else {
            continue;
        };
        if src.contains("model_provider") {
            continue;
        }
        p(src).unwrap_or_else(|e| panic!("{e}\n{src}"));
        checked += 1;
    }
    assert!(checked >= 2, "only {checked} config blocks found");
}

/// Every cooldown goes into `now + cooldown`: each is bounded, so no setting can overflow it.
#[test]
fn cooldowns_are_bounded() {
    for key in [
        "rate_limited",
        "server_error",
        "timeout",
        "network_error",
        "model_not_found",
        "decay",
        "max_retry_after",
    ] {
        let e = p(&format!("[cooldown]\n{key} = 18446744073709551615\n")).unwrap_err();
        assert_eq!(
            e.field.as_deref(),
            Some(format!("cooldown.{key}").as_str()),
            "{e}"
        );
        assert!(p(&format!("[cooldown]\n{key} = 0\n")).is_err(), "{key} = 0");
        assert!(
            p(&format!("[cooldown]\n{key} = 60\n")).is_ok(),
            "{key} = 60"
        );
    }
}

#[test]
fn every_bounded_setting_is_refused_outside_its_bounds_by_section_key_and_line() {
    let mut checked = 0;
    for f in switchboard_api::settings::fields() {
        let switchboard_api::settings::Kind::Whole { min, max } = f.kind else {
            continue;
        };
        let mut outside = vec![max + 1];
        if min > 0 {
            outside.push(min - 1);
        }
        for v in outside {
            let src = format!("[{}]\n# a comment\n{} = {v}\n", f.section, f.key);
            let e = p(&src).expect_err(&src);
            assert_eq!(e.line, 3, "{src}: {e}");
            if f.name == "port" {
                // Its bounds are its type's: the TOML reader refuses the number itself.
                assert!(
                    e.message.contains("65535") || e.message.contains("u16"),
                    "{e}"
                );
                continue;
            }
            assert_eq!(e.field.as_deref(), Some(f.id), "{src}: {e}");
            assert_eq!(
                e.message,
                format!("must be between {min} and {max}, got {v}")
            );
            checked += 1;
        }
        let inside = format!("[{}]\n{} = {max}\n", f.section, f.key);
        p(&inside).unwrap_or_else(|e| panic!("{inside}: {e}"));
    }
    assert!(checked >= 40, "{checked}");
}
