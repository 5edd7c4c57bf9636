use std::path::Path;

use super::migrations::LATEST as SCHEMA_VERSION;
use super::*;
use crate::config::{self, KeySpec};

fn cfg(src: &str) -> crate::config::ConfigFile {
    config::parse(src, Path::new("t.toml")).unwrap()
}

const SRC: &str = r#"
[server]
request_timeout_s = 30
[[providers]]
name = "a"
base_url = "http://127.0.0.1:1/v1"
api_key = "sk-literal-provider-secret"
models = ["m2", "m1"]
[[providers]]
name = "b"
base_url = "http://127.0.0.1:2"
api_key = "env:B_KEY"
protocols = ["anthropic", "openai"]
weight = 5
[[models]]
name = "u"
rules = [{ type = "prefix", value = "m" }]
include = ["b/x"]
exclude_providers = ["c"]
default_params = { temperature = 0.5 }
[[client_keys]]
name = "given"
key = "sk-sb-client-secret-0001"
[[client_keys]]
name = "generated"
"#;

fn version(conn: &rusqlite::Connection) -> u32 {
    conn.pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap()
}

#[test]
fn migrates_an_empty_database() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.db");
    let conn = open_connection(&path).unwrap();
    assert_eq!(version(&conn), SCHEMA_VERSION);
    let mode: String = conn
        .pragma_query_value(None, "journal_mode", |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    let tables: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN
             ('providers','provider_models','models','model_rules','client_keys','settings')",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(tables, 6);
}

#[test]
fn reopening_an_existing_database_keeps_its_data() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.db");
    {
        let mut conn = open_connection(&path).unwrap();
        import(&mut conn, &cfg(SRC)).unwrap();
    }
    let mut conn = open_connection(&path).unwrap();
    assert_eq!(
        migrate(&mut conn).unwrap(),
        SCHEMA_VERSION,
        "nothing left to apply"
    );
    let state = load(&conn).unwrap();
    assert_eq!(state.providers.len(), 2);
    assert_eq!(state.settings.server.request_timeout_s, 30);
}

#[test]
fn refuses_a_database_from_a_newer_version() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.db");
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .unwrap();
    }
    let err = open_connection(&path).err().unwrap();
    assert!(matches!(err, StoreError::TooNew { .. }), "{err}");
    assert!(err.to_string().contains("upgrade Switchboard"));
}

#[test]
fn import_upserts_and_is_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let mut conn = open_connection(&dir.path().join("config.db")).unwrap();
    let first = import(&mut conn, &cfg(SRC)).unwrap();
    assert!(first.changes > 0);
    assert_eq!(first.literal_keys.len(), 1);
    assert_eq!(first.generated_keys.len(), 1);
    assert_eq!(first.generated_keys[0].0, "generated");
    let before = load(&conn).unwrap();

    let second = import(&mut conn, &cfg(SRC)).unwrap();
    assert_eq!(second.changes, 0, "a second import must write nothing");
    assert!(
        second.generated_keys.is_empty(),
        "a generated key is made once"
    );
    let after = load(&conn).unwrap();
    assert_eq!(format!("{before:?}"), format!("{after:?}"));

    let a = &after.providers[0];
    assert_eq!(a.name, "a");
    assert_eq!(a.base_url, "http://127.0.0.1:1");
    assert_eq!(a.key_ref, KeyRef::Stored);
    assert_eq!(a.models, vec!["m1", "m2"]);
    let b = &after.providers[1];
    assert_eq!(b.key_ref, KeyRef::Env("B_KEY".into()));
    assert_eq!(b.weight, 5);
    let u = &after.models[0];
    assert_eq!(u.rules.len(), 1);
    assert_eq!(u.include[0].provider, "b");
    assert_eq!(u.exclude_providers, vec!["c"]);
    assert_eq!(u.default_params["temperature"], 0.5);
}

#[test]
fn entries_left_out_are_kept_and_named_fields_change() {
    let dir = tempfile::tempdir().unwrap();
    let mut conn = open_connection(&dir.path().join("config.db")).unwrap();
    import(&mut conn, &cfg(SRC)).unwrap();
    let r = import(
        &mut conn,
        &cfg("[[providers]]\nname = \"b\"\nweight = 7\n[[client_keys]]\nname = \"given\"\nkey = \"sk-sb-client-secret-0002\"\n"),
    )
    .unwrap();
    assert!(r.changes > 0);
    let s = load(&conn).unwrap();
    assert_eq!(s.providers.len(), 2, "provider a is kept");
    assert_eq!(s.providers[1].weight, 7);
    assert_eq!(
        s.providers[1].key_ref,
        KeyRef::Env("B_KEY".into()),
        "absent api_key keeps"
    );
    assert_eq!(s.models.len(), 1);
    let given = s.client_keys.iter().find(|k| k.name == "given").unwrap();
    assert_eq!(
        given.key_hash,
        crate::auth::KeyHash::of("sk-sb-client-secret-0002")
    );
}

#[test]
fn new_provider_without_base_url_is_refused_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let mut conn = open_connection(&dir.path().join("config.db")).unwrap();
    let err = import(&mut conn, &cfg("\n[[providers]]\nname = \"x\"\n")).unwrap_err();
    assert!(err.to_string().contains("line 2"), "{err}");
    assert!(err.to_string().contains("base_url"), "{err}");
    assert!(
        load(&conn).unwrap().providers.is_empty(),
        "the transaction rolled back"
    );
}

#[test]
fn no_secret_reaches_the_database_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.db");
    let file = cfg(SRC);
    let mut conn = open_connection(&path).unwrap();
    let report = import(&mut conn, &file).unwrap();
    let generated = report.generated_keys[0].1.expose().to_owned();
    let mut secrets = vec![
        "sk-literal-provider-secret".to_owned(),
        "sk-sb-client-secret-0001".to_owned(),
        generated,
    ];
    if let Some(KeySpec::Literal(s)) = &file.providers[0].api_key {
        secrets.push(s.expose().to_owned());
    }
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        for s in &secrets {
            assert!(
                !bytes.windows(s.len()).any(|w| w == s.as_bytes()),
                "secret found in a database file"
            );
        }
    }
}

#[tokio::test]
async fn store_thread_answers_calls() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("config.db")).unwrap();
    let file = cfg(SRC);
    let report = store.call(move |c| import(c, &file)).await.unwrap();
    assert!(report.changes > 0);
    let state = store.call(|c| load(c)).await.unwrap();
    assert_eq!(state.client_keys.len(), 2);
}

#[test]
fn every_setting_in_the_file_reaches_the_loaded_settings() {
    let src = r#"
[server]
host = "127.0.0.2"
port = 7341
request_timeout_s = 11
max_body_mb = 12
allowed_origins = ["https://chat.example"]
header_timeout_s = 13
body_timeout_s = 14
max_connections = 100
body_budget_mb = 64
[routing]
retry_on_keywords = ["busy"]
max_attempts = 3
first_byte_timeout_s = 4
stream_idle_timeout_s = 5
sync_interval_s = 6
network_failure_threshold = 7
server_error_threshold = 8
probe_interval_s = 30
default_params = { max_tokens = 99, stop = ["\n"] }
[cooldown]
rate_limited = 21
server_error = 22
timeout = 23
network_error = 24
model_not_found = 25
max_multiplier = 16
decay = 26
max_retry_after = 27
[app]
notifications = false
start_at_login = true
[admin]
max_failed_logins = 3
lockout_s = 60
session_ttl_s = 600
[logs]
enabled = false
retention_days = 7
max_size_mb = 64
[pricing]
refresh_url = "https://prices.example/data.json"
refresh_hours = 12
"#;
    let dir = tempfile::tempdir().unwrap();
    let mut conn = open_connection(&dir.path().join("config.db")).unwrap();
    import(&mut conn, &cfg(src)).unwrap();
    let s = load(&conn).unwrap().settings;
    use switchboard_api::settings::{
        Admin, App, Cooldown, Logs, Pricing, Routing, Server, Settings,
    };
    let expected = Settings {
        server: Server {
            host: "127.0.0.2".into(),
            port: 7341,
            request_timeout_s: 11,
            max_body_mb: 12,
            allowed_origins: vec!["https://chat.example".into()],
            header_timeout_s: 13,
            body_timeout_s: 14,
            max_connections: 100,
            body_budget_mb: 64,
        },
        routing: Routing {
            retry_on_keywords: vec!["busy".into()],
            max_attempts: 3,
            first_byte_timeout_s: 4,
            stream_idle_timeout_s: 5,
            sync_interval_s: 6,
            network_failure_threshold: 7,
            server_error_threshold: 8,
            probe_interval_s: 30,
            default_params: serde_json::json!({"max_tokens": 99, "stop": ["\n"]})
                .as_object()
                .cloned()
                .unwrap_or_default(),
        },
        cooldown: Cooldown {
            cooldown_rate_limited_s: 21,
            cooldown_server_error_s: 22,
            cooldown_timeout_s: 23,
            cooldown_network_error_s: 24,
            cooldown_model_not_found_s: 25,
            cooldown_max_multiplier: 16,
            cooldown_decay_s: 26,
            cooldown_max_retry_after_s: 27,
        },
        app: App {
            notifications: false,
            start_at_login: true,
        },
        admin: Admin {
            max_failed_logins: 3,
            lockout_s: 60,
            session_ttl_s: 600,
        },
        logs: Logs {
            logs_enabled: false,
            logs_ask_usage: true,
            logs_retention_days: 7,
            logs_max_size_mb: 64,
            logs_capture_bodies: false,
            logs_body_max_kb: 64,
            logs_body_retention_days: 7,
        },
        pricing: Pricing {
            pricing_refresh_url: "https://prices.example/data.json".into(),
            pricing_refresh_hours: 12,
        },
    };
    assert_eq!(s, expected);
}

#[test]
fn migrates_a_version_1_database_keeping_its_rows() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.db");
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(super::migrations::MIGRATIONS[0])
            .unwrap();
        conn.pragma_update(None, "user_version", 1).unwrap();
        conn.execute("INSERT INTO models (name) VALUES ('old')", [])
            .unwrap();
    }
    let conn = open_connection(&path).unwrap();
    assert_eq!(version(&conn), SCHEMA_VERSION);
    let state = load(&conn).unwrap();
    assert_eq!(state.models[0].name, "old");
    assert!(state.models[0].probe, "new column, default on");
}

#[test]
fn a_rename_keeps_the_uid_and_the_models_that_name_the_provider_follow() {
    let src = r#"
[[providers]]
name = "re_a"
base_url = "http://127.0.0.1:1"
[[providers]]
name = "re_ab"
base_url = "http://127.0.0.1:2"
[[providers]]
name = "taken"
base_url = "http://127.0.0.1:3"
[[models]]
name = "m"
include = ["re_a/x", "re_ab/y", "re_a/z/w"]
exclude_providers = ["re_a", "re_ab"]
"#;
    let dir = tempfile::tempdir().unwrap();
    let mut conn = open_connection(&dir.path().join("config.db")).unwrap();
    migrate(&mut conn).unwrap();
    import(&mut conn, &cfg(src)).unwrap();
    let uid_of = |conn: &rusqlite::Connection, name: &str| -> String {
        load(conn)
            .unwrap()
            .providers
            .into_iter()
            .find(|p| p.name == name)
            .map(|p| p.uid)
            .unwrap()
    };
    let uid = uid_of(&conn, "re_a");
    assert_eq!(
        rename_provider(&mut conn, "re_a", "taken").unwrap(),
        Rename::NameTaken
    );
    assert_eq!(
        rename_provider(&mut conn, "nobody", "x").unwrap(),
        Rename::NoSuchProvider
    );
    // `_` is a LIKE wildcard: `re_ab` must not be taken for `re_a`'s.
    assert_eq!(
        rename_provider(&mut conn, "re_a", "new%").unwrap(),
        Rename::Done
    );
    assert_eq!(uid_of(&conn, "new%"), uid);
    let m = load(&conn).unwrap().models.remove(0);
    let include: Vec<String> = m
        .include
        .iter()
        .map(|i| format!("{}/{}", i.provider, i.model))
        .collect();
    assert_eq!(include, ["new%/x", "re_ab/y", "new%/z/w"]);
    assert_eq!(m.exclude_providers, ["new%", "re_ab"]);

    // Deleting a provider takes the rules that name it along.
    delete_provider(&conn, "new%").unwrap().unwrap();
    let m = load(&conn).unwrap().models.remove(0);
    assert_eq!(m.include.len(), 1);
    assert_eq!(&*m.include[0].provider, "re_ab");
    assert_eq!(m.exclude_providers, ["re_ab"]);
}

#[test]
fn the_export_imports_back_to_the_same_configuration_and_holds_no_secret() {
    let src = r#"
[routing]
retry_on_keywords = ["busy"]
probe_interval_s = 30
[admin]
session_ttl_s = 600
[[providers]]
name = "a"
base_url = "http://127.0.0.1:1/v1"
api_key = "sk-literal-provider-secret"
models = ["m2", "m1"]
headers = { "x-extra" = "1", "x-relay-key" = "env:RELAY_KEY" }
[[providers]]
name = "b"
base_url = "http://127.0.0.1:2/prefix"
api_key = "env:B_KEY"
protocols = ["anthropic", "openai"]
weight = 5
enabled = false
[[models]]
name = "u"
rules = [{ type = "prefix", value = "m" }, { type = "regex", value = "^x[-.]1$" }]
include = ["b/x/y"]
exclude_providers = ["c"]
protocol = "anthropic"
default_params = { temperature = 0.5, stop = ["\n\n"], nested = { a = 1 } }
override_params = { max_tokens = 100 }
probe = false
[[models]]
name = "v"
classifier = { mode = "model", model = "u", timeout_ms = 900, fallback = "T1" }
[[models.tiers]]
name = "T1"
target = "u"
keywords = ["hi"]
small = true
[[models.tiers]]
name = "T3"
target = "auto:long"
min_tokens = 5000
weight = 2
[[client_keys]]
name = "given"
key = "sk-sb-client-secret-0001"
models = ["u"]
rpm = 30
expires_at = "2099-01-01"
[[client_keys]]
name = "gone"
[[prices]]
provider = "b"
multiplier = 0.8
[[prices]]
provider = "a"
model = "m1"
input = 1.5
output = 6.0
cache_read = 0.15
[pricing]
refresh_url = "https://prices.example/data.json"
"#;
    let dir = tempfile::tempdir().unwrap();
    let mut conn = open_connection(&dir.path().join("one.db")).unwrap();
    migrate(&mut conn).unwrap();
    import(&mut conn, &cfg(src)).unwrap();
    // A literal credential header and a URL with credentials, stored before they were refused.
    conn.execute(
        r#"UPDATE providers SET headers = '{"x-extra":"1","x-relay-key":"env:RELAY_KEY","api-key":"sk-old-literal"}' WHERE name = 'a'"#,
        [],
    )
    .unwrap();
    conn.execute(
        "UPDATE providers SET base_url = 'http://me:old-url-secret@127.0.0.1:2/prefix' WHERE name = 'b'",
        [],
    )
    .unwrap();
    revoke_client_key(&conn, "gone").unwrap();
    let text = export(&conn).unwrap();
    for secret in [
        "sk-literal-provider-secret",
        "sk-sb-client-secret-0001",
        "sk-old-literal",
    ] {
        assert!(!text.contains(secret), "{secret} in\n{text}");
    }
    assert!(text.contains("api_key is in the OS keychain"), "{text}");
    assert!(!text.contains("gone"), "a revoked key is left out:\n{text}");

    // Imported into an empty database, it gives the same configuration back.
    let mut two = open_connection(&dir.path().join("two.db")).unwrap();
    migrate(&mut two).unwrap();
    import(&mut two, &cfg(&text)).unwrap();
    assert!(
        text.contains("base_url = \"http://127.0.0.1:2/prefix\""),
        "{text}"
    );
    conn.execute(
        "UPDATE providers SET base_url = 'http://127.0.0.1:2/prefix' WHERE name = 'b'",
        [],
    )
    .unwrap();
    let (a, b) = (load(&conn).unwrap(), load(&two).unwrap());
    assert_eq!(a.settings, b.settings);
    assert_eq!(a.prices.len(), 2);
    assert_eq!(a.prices, b.prices);
    assert_eq!(a.settings.admin.session_ttl_s, 600);
    assert_eq!(a.providers.len(), b.providers.len());
    for (p, q) in a.providers.iter().zip(&b.providers) {
        assert_eq!(
            (
                &p.name,
                &p.base_url,
                &p.protocols,
                p.weight,
                p.enabled,
                &p.models
            ),
            (
                &q.name,
                &q.base_url,
                &q.protocols,
                q.weight,
                q.enabled,
                &q.models
            )
        );
    }
    assert_eq!(a.providers[1].key_ref, KeyRef::Env("B_KEY".into()));
    assert_eq!(b.providers[1].key_ref, KeyRef::Env("B_KEY".into()));
    assert_eq!(
        b.providers[0].headers.keys().collect::<Vec<_>>(),
        ["x-extra", "x-relay-key"]
    );
    assert_eq!(a.models[1].tiers.as_ref().map(|t| t.tiers.len()), Some(2));
    assert_eq!(a.models[1].tiers, b.models[1].tiers, "tiers:\n{text}");
    let (m, n) = (&a.models[0], &b.models[0]);
    assert_eq!(
        (
            &m.name,
            &m.rules,
            &m.include,
            &m.exclude_providers,
            m.protocol
        ),
        (
            &n.name,
            &n.rules,
            &n.include,
            &n.exclude_providers,
            n.protocol
        )
    );
    assert_eq!(
        (&m.default_params, &m.override_params, m.probe),
        (&n.default_params, &n.override_params, n.probe)
    );
    let keys = |s: &StoredState| -> Vec<String> {
        s.client_keys
            .iter()
            .filter(|k| !k.revoked)
            .map(|k| format!("{} {:?} {:?} {:?}", k.name, k.models, k.rpm, k.expires_at))
            .collect()
    };
    assert_eq!(keys(&a), keys(&b));
    // And it exports the same again (comments aside: the keychain note is the first's only).
    let body = |t: &str| -> String {
        t.lines()
            .filter(|l| !l.starts_with('#'))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(body(&text), body(&export(&two).unwrap()));
}

#[test]
fn price_entries_follow_a_renamed_provider_and_go_with_a_deleted_one() {
    let src = r#"
[[providers]]
name = "a"
base_url = "http://127.0.0.1:1"
[[providers]]
name = "b"
base_url = "http://127.0.0.1:2"
[[prices]]
provider = "a"
multiplier = 0.5
[[prices]]
provider = "a"
model = "m"
input = 1.0
output = 2.0
[[prices]]
provider = "b"
multiplier = 0.9
[[prices]]
model = "m"
multiplier = 2.0
"#;
    let dir = tempfile::tempdir().unwrap();
    let mut conn = open_connection(&dir.path().join("config.db")).unwrap();
    import(&mut conn, &cfg(src)).unwrap();
    let keys = |conn: &rusqlite::Connection| -> Vec<(String, String)> {
        let mut k: Vec<_> = load(conn)
            .unwrap()
            .prices
            .iter()
            .map(|p| {
                let (a, b) = p.key();
                (a.to_owned(), b.to_owned())
            })
            .collect();
        k.sort();
        k
    };
    let pair = |a: &str, b: &str| (a.to_owned(), b.to_owned());
    assert_eq!(
        keys(&conn),
        [pair("", "m"), pair("a", ""), pair("a", "m"), pair("b", "")]
    );
    rename_provider(&mut conn, "a", "c").unwrap();
    assert_eq!(
        keys(&conn),
        [pair("", "m"), pair("b", ""), pair("c", ""), pair("c", "m")]
    );
    delete_provider(&conn, "c").unwrap();
    assert_eq!(keys(&conn), [pair("", "m"), pair("b", "")]);
}
