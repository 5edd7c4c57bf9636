use std::collections::HashSet;

use super::*;

#[test]
fn the_flat_form_names_every_setting_once_and_nothing_else() {
    let json = serde_json::to_value(Settings::default()).unwrap();
    let mut names: Vec<&str> = json
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    names.sort_unstable();
    let mut declared: Vec<&str> = fields().map(|f| f.name).collect();
    declared.sort_unstable();
    assert_eq!(names, declared);
    let ids: HashSet<&str> = fields().map(|f| f.id).collect();
    assert_eq!(ids.len(), declared.len(), "ids are unique");
}

#[test]
fn a_partial_flat_form_keeps_the_defaults_for_the_rest() {
    let s: Settings = serde_json::from_value(serde_json::json!({
        "max_attempts": 2,
        "cooldown_rate_limited_s": 30,
        "notifications": false,
        "a_setting_from_a_newer_version": 1,
    }))
    .unwrap();
    assert_eq!(s.routing.max_attempts, 2);
    assert_eq!(s.cooldown.cooldown_rate_limited_s, 30);
    assert!(!s.app.notifications);
    assert_eq!(s.server, Server::default());
    assert_eq!(s.admin.session_ttl_s, 12 * 3600);
}

#[test]
fn every_default_is_within_its_bounds() {
    assert_eq!(Settings::default().to_patch().out_of_range(), None);
}

#[test]
fn the_bounds_check_names_the_setting_and_the_value() {
    let patch = SettingsPatch {
        cooldown: CooldownPatch {
            decay: Some(0),
            ..Default::default()
        },
        ..Default::default()
    };
    let bad = patch.out_of_range().unwrap();
    assert_eq!(
        (bad.setting.id, bad.setting.name, bad.value),
        ("cooldown.decay", "cooldown_decay_s", 0)
    );
    assert_eq!(
        bad.to_string(),
        format!("must be between 1 and {MAX_COOLDOWN_S}, got 0")
    );
    let port = fields().find(|f| f.name == "port").unwrap();
    assert_eq!(
        port.kind,
        Kind::Whole {
            min: 0,
            max: 65_535
        },
        "the type's own bounds"
    );
}

#[test]
fn a_patch_writes_only_what_it_names_under_the_flat_names() {
    let patch: SettingsPatch = serde_json::from_value(serde_json::json!({
        "server": {"allowed_origins": ["https://chat.example"]},
        "cooldown": {"rate_limited": 30},
        "app": {"start_at_login": true},
    }))
    .unwrap();
    assert_eq!(
        patch.entries(),
        [
            (
                "allowed_origins",
                serde_json::json!(["https://chat.example"])
            ),
            ("cooldown_rate_limited_s", serde_json::json!(30)),
            ("start_at_login", serde_json::json!(true)),
        ]
    );
    let unknown = serde_json::from_value::<SettingsPatch>(serde_json::json!({
        "routing": {"max_attempt": 2}
    }));
    assert!(unknown.unwrap_err().to_string().contains("max_attempt"));
}

#[test]
fn the_export_form_reads_back_as_the_same_settings() {
    let mut s = Settings::default();
    s.routing.retry_on_keywords = vec!["busy".into()];
    s.admin.session_ttl_s = 7200;
    let patch = s.to_patch();
    let flat: serde_json::Map<String, serde_json::Value> = patch
        .entries()
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
    let back: Settings = serde_json::from_value(serde_json::Value::Object(flat)).unwrap();
    assert_eq!(back, s);
}
