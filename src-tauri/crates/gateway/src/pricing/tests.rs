use super::*;

const LIST: &str = r#"[
  {"id": "vendor", "api_pattern": "https://vendor\\.example", "models": [
    {"id": "big", "match": {"starts_with": "big"}, "prices": {
      "input_mtok": {"base": 2, "tiers": [{"start": 1000, "price": 4}]},
      "output_mtok": 10, "cache_read_mtok": 0.5, "cache_write_mtok": 2.5}},
    {"id": "plain", "match": {"equals": "plain"}, "prices": {"input_mtok": 1, "output_mtok": 3}},
    {"id": "picture", "match": {"equals": "picture"}, "prices": {"output_mtok": 30}}
  ]}
]"#;

fn pricing(entries: &[PriceEntry]) -> Pricing {
    let book = Arc::new(PriceBook::parse(LIST.as_bytes(), "test".into()).expect("parses"));
    Pricing::new(
        book,
        [
            ("direct", "https://vendor.example/v1"),
            ("relay", "http://relay.local"),
        ]
        .into_iter(),
        entries,
    )
}

fn tokens(input: u64, output: u64, cache_read: u64, cache_write: u64) -> Tokens {
    Tokens {
        input,
        output,
        cache_read,
        cache_write,
        reasoning: 0,
    }
}

fn entry(provider: &str, model: &str) -> PriceEntry {
    PriceEntry {
        provider: (!provider.is_empty()).then(|| provider.to_owned()),
        model: (!model.is_empty()).then(|| model.to_owned()),
        ..PriceEntry::default()
    }
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-12
}

#[test]
fn each_kind_of_token_pays_its_rate() {
    let p = pricing(&[]);
    // 100 plain input at 2, 200 cache read at 0.5, 300 cache write at 2.5, 50 output at 10.
    let (usd, used) = p
        .cost("direct", "big-1", &tokens(600, 50, 200, 300), 0)
        .expect("priced");
    assert!(
        close(
            usd,
            (100.0 * 2.0 + 200.0 * 0.5 + 300.0 * 2.5 + 50.0 * 10.0) / 1e6
        ),
        "{usd}"
    );
    assert_eq!(used.source, "list");
    assert_eq!(used.list_model.as_deref(), Some("big"));
    assert_eq!(used.rates.input, Some(2.0));
}

#[test]
fn cached_input_without_a_cache_rate_pays_the_input_rate() {
    let p = pricing(&[]);
    let (usd, _) = p
        .cost("relay", "plain", &tokens(100, 10, 60, 0), 0)
        .expect("priced");
    assert!(close(usd, (100.0 * 1.0 + 10.0 * 3.0) / 1e6), "{usd}");
}

#[test]
fn a_request_past_a_tier_pays_the_tier_on_all_its_input() {
    let p = pricing(&[]);
    let (usd, used) = p
        .cost("direct", "big", &tokens(1001, 0, 0, 0), 0)
        .expect("priced");
    assert!(close(usd, 1001.0 * 4.0 / 1e6), "{usd}");
    assert_eq!(used.rates.input, Some(4.0));
}

#[test]
fn unknown_is_unknown_never_zero() {
    let p = pricing(&[]);
    assert_eq!(p.cost("relay", "who-knows", &tokens(10, 10, 0, 0), 0), None);
    // Priced in other units: no input rate.
    assert_eq!(p.cost("relay", "picture", &tokens(10, 10, 0, 0), 0), None);
    assert!(!p.is_priced("relay", "picture", 0));
    assert!(p.is_priced("relay", "plain", 0));
    // An own price without an output rate cannot price output.
    let mut e = entry("relay", "mine");
    e.input = Some(1.0);
    let p = pricing(&[e]);
    assert_eq!(p.cost("relay", "mine", &tokens(10, 10, 0, 0), 0), None);
    assert!(p.cost("relay", "mine", &tokens(10, 0, 0, 0), 0).is_some());
}

#[test]
fn a_multiplier_scales_the_list_price() {
    let mut e = entry("relay", "");
    e.multiplier = Some(0.25);
    let p = pricing(&[e]);
    let (usd, used) = p
        .cost("relay", "plain", &tokens(1000, 1000, 0, 0), 0)
        .expect("priced");
    assert!(close(usd, 0.25 * (1000.0 + 3000.0) / 1e6), "{usd}");
    assert_eq!(used.multiplier, Some(0.25));
    assert_eq!(used.rates.output, Some(0.75));
    // Another provider is not affected.
    let (usd, _) = p
        .cost("direct", "plain", &tokens(1000, 1000, 0, 0), 0)
        .expect("priced");
    assert!(close(usd, 4000.0 / 1e6), "{usd}");
}

#[test]
fn the_most_specific_entry_wins() {
    let mut every = entry("", "");
    every.multiplier = Some(2.0);
    let mut provider = entry("relay", "");
    provider.multiplier = Some(3.0);
    let mut model = entry("", "PLAIN");
    model.multiplier = Some(5.0);
    let mut both = entry("relay", "plain");
    both.input = Some(7.0);
    both.output = Some(7.0);
    let all = [every.clone(), provider.clone(), model.clone(), both.clone()];
    let p = pricing(&all);
    let t = tokens(1_000_000, 0, 0, 0);
    let usd = |p: &Pricing, prov: &str| p.cost(prov, "plain", &t, 0).map(|(u, _)| u);
    assert_eq!(usd(&p, "relay"), Some(7.0));
    assert_eq!(
        p.cost("relay", "plain", &t, 0).map(|(_, u)| u.source),
        Some("entry")
    );
    assert_eq!(usd(&p, "direct"), Some(5.0));
    let p = pricing(&[every.clone(), provider]);
    assert_eq!(usd(&p, "relay"), Some(3.0));
    assert_eq!(usd(&p, "direct"), Some(2.0));
}

#[test]
fn an_own_price_prices_a_model_the_list_does_not_know() {
    let mut e = entry("relay", "house-model");
    e.input = Some(0.5);
    e.output = Some(1.5);
    let p = pricing(&[e]);
    let (usd, used) = p
        .cost("relay", "house-model", &tokens(2000, 2000, 0, 0), 0)
        .expect("priced");
    assert!(close(usd, (1000.0 + 3000.0) / 1e6), "{usd}");
    assert_eq!(used.list_model, None);
    assert!(p.is_priced("relay", "house-model", 0));
}
