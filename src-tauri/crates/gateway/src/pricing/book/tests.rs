use super::*;

fn found_names(book: &PriceBook, base_url: &str, model: &str) -> Option<(String, String)> {
    book.find(base_url, model).map(|f| {
        let (p, m) = book.names(f);
        (p.to_owned(), m.to_owned())
    })
}

fn pair(p: &str, m: &str) -> Option<(String, String)> {
    Some((p.to_owned(), m.to_owned()))
}

#[test]
fn the_bundled_list_parses_whole() {
    let book = PriceBook::bundled();
    assert!(book.models() > 1500, "{} models", book.models());
    // The list's rules are all ones this parser knows: a skipped entry here means the data
    // moved on and the parser should follow.
    assert_eq!(book.skipped, 0, "entries skipped");
    assert!(book.source.contains("genai-prices"), "{}", book.source);
}

#[test]
fn a_provider_is_known_by_its_base_url() {
    let book = PriceBook::bundled();
    assert_eq!(
        found_names(
            &book,
            "https://api.anthropic.com",
            "claude-sonnet-4-5-20250929"
        ),
        pair("anthropic", "claude-sonnet-4-5")
    );
    assert_eq!(
        found_names(&book, "https://api.openai.com/v1", "gpt-4o-2024-08-06"),
        pair("openai", "gpt-4o")
    );
}

#[test]
fn a_relay_s_ids_are_found_by_their_model_family() {
    let book = PriceBook::bundled();
    // A relay the list does not know: the model's own provider by its match rule.
    for id in [
        "claude-sonnet-4-5-20250929",
        "anthropic/claude-sonnet-4.5",
        "Claude-Sonnet-4-5-20250929-Thinking",
        "claude-sonnet-4-5[1m]",
    ] {
        assert_eq!(
            found_names(&book, "http://relay.example:8080/v1", id),
            pair("anthropic", "claude-sonnet-4-5"),
            "{id}"
        );
    }
    assert_eq!(
        found_names(&book, "http://relay.example/v1", "gpt-4o"),
        pair("openai", "gpt-4o")
    );
    assert_eq!(
        found_names(&book, "http://relay.example/v1", "no-such-model-xyz"),
        None
    );
}

#[test]
fn tiers_price_the_whole_request_past_their_start() {
    let book = PriceBook::bundled();
    let f = book
        .find("https://api.anthropic.com", "claude-sonnet-4-5")
        .expect("found");
    let rates = book.rates(f, 1_780_000_000);
    let input = rates.input.as_ref().expect("an input rate");
    assert_eq!(input.at(1_000), 3.0);
    assert_eq!(input.at(200_000), 3.0);
    assert_eq!(input.at(200_001), 6.0);
    assert_eq!(rates.output.as_ref().map(|r| r.at(250_000)), Some(22.5));
}

#[test]
fn dates_are_tried_with_dashes() {
    assert!(variants("x-model-20250929").contains(&"x-model-2025-09-29".to_owned()));
    assert!(
        variants("x-model-20251399")
            .iter()
            .all(|v| !v.contains("2025-13"))
    );
    assert_eq!(dashed_date("gpt-4o"), None);
}

#[test]
fn variants_are_bounded() {
    let long = "a/b/c/d/e/f/g/h/i/j/k/l/m/n-thinking[x]-20250101";
    assert!(variants(long).len() <= 12);
}

const SMALL: &str = r#"[
  {"id": "p", "api_pattern": "https://p\\.example", "models": [
    {"id": "m", "match": {"equals": "m"}, "prices": {"input_mtok": 1, "output_mtok": 2}},
    {"id": "dated", "match": {"starts_with": "dated"}, "prices": [
      {"prices": {"input_mtok": 1}},
      {"constraint": {"type": "start_date", "start_date": "2026-01-01"}, "prices": {"input_mtok": 5}}
    ]},
    {"id": "odd", "match": {"shiny_new_rule": "x"}, "prices": {"input_mtok": 1}},
    {"id": "stuck", "match": {"regex": "(a+)+$"}, "prices": {"input_mtok": 1}}
  ]}
]"#;

#[test]
fn an_entry_of_an_unknown_shape_leaves_out_that_entry() {
    let book = PriceBook::parse(SMALL.as_bytes(), "test".into()).expect("parses");
    assert_eq!(book.models(), 3);
    assert_eq!(book.skipped, 1);
    assert_eq!(found_names(&book, "https://p.example", "M"), pair("p", "m"));
}

#[test]
fn a_price_applies_from_its_start_date() {
    let book = PriceBook::parse(SMALL.as_bytes(), "test".into()).expect("parses");
    let f = book.find("", "dated-1").expect("found");
    let input = |t| book.rates(f, t).input.as_ref().map(|r| r.at(0));
    assert_eq!(input(1_700_000_000), Some(1.0));
    assert_eq!(input(1_800_000_000), Some(5.0));
}

#[test]
fn a_runaway_regex_does_not_match_rather_than_stall() {
    let book = PriceBook::parse(SMALL.as_bytes(), "test".into()).expect("parses");
    let id = format!("{}!", "a".repeat(64));
    let started = std::time::Instant::now();
    assert_eq!(book.find("", &id), None);
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}

#[test]
fn a_body_of_another_shape_is_refused() {
    assert!(matches!(
        PriceBook::parse(br#"{"providers": []}"#, "x".into()),
        Err(BookError::Shape(_))
    ));
    assert!(PriceBook::parse(b"not json", "x".into()).is_err());
}
