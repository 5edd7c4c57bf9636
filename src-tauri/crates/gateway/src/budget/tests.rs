use super::*;

const DAY: i64 = 86_400_000;
/// 2026-12-06T12:00:00Z.
const NOON: i64 = 1_796_558_400_000;

fn book(budget: Budget) -> (SpendBook, broadcast::Receiver<GatewayEvent>) {
    let b = SpendBook::default();
    let (tx, rx) = broadcast::channel(16);
    b.set_events(tx);
    let clock = Clock::new(&budget).expect("a clock");
    let fresh = b.retain(&[("k".into(), budget, clock)], NOON - 1);
    assert_eq!(fresh.len(), 1);
    (b, rx)
}

#[test]
fn a_key_warns_past_its_share_is_refused_at_its_limit_and_comes_back_at_the_reset() {
    let (b, mut rx) = book(Budget {
        daily_usd: Some(1.0),
        monthly_usd: Some(10.0),
        ..Default::default()
    });
    let slot = b.get("k").expect("a slot");
    assert_eq!(slot.verdict(NOON), Verdict::Fine);
    b.add("k", NOON, 0.5, 100, NOON);
    assert_eq!(slot.verdict(NOON), Verdict::Fine);
    b.add("k", NOON, 0.35, 100, NOON);
    let Verdict::Warn(w) = slot.verdict(NOON) else {
        panic!("a warning at 85 %")
    };
    assert_eq!(w.limit, BudgetLimit::DailyUsd);
    assert_eq!(w.resets_at, "2026-12-07T00:00:00+00:00");
    match rx.try_recv() {
        Ok(GatewayEvent::Budget {
            percent, reached, ..
        }) => assert_eq!((percent, reached), (85, false)),
        other => panic!("{other:?}"),
    }
    b.add("k", NOON, 0.2, 100, NOON);
    assert!(matches!(slot.verdict(NOON), Verdict::Over(s) if s.limit == BudgetLimit::DailyUsd));
    assert!(matches!(
        rx.try_recv(),
        Ok(GatewayEvent::Budget { reached: true, .. })
    ));
    b.add("k", NOON, 0.2, 100, NOON);
    assert!(rx.try_recv().is_err(), "each level is told once a period");
    // The next day: the daily limit is fresh, the month still counts.
    assert_eq!(slot.verdict(NOON + DAY), Verdict::Fine);
    let uses = slot.uses(NOON + DAY);
    let month = uses
        .iter()
        .find(|u| u.limit == "monthly_usd")
        .expect("month");
    assert!((month.used - 1.25).abs() < 1e-9, "{month:?}");
    // A record from before counting began is the seed's, not the writer's.
    b.add("k", NOON - 10, 5.0, 0, NOON + DAY);
    assert!((slot.uses(NOON + DAY)[1].used - 1.25).abs() < 1e-9);
}

#[test]
fn tokens_seeds_and_keys_without_budgets() {
    let (b, _rx) = book(Budget {
        daily_tokens: Some(1_000),
        ..Default::default()
    });
    let slot = b.get("k").expect("a slot");
    let bounds = slot.bounds(NOON);
    assert_eq!(bounds.0, NOON - DAY / 2, "the day began at midnight UTC");
    slot.seed(bounds, (0.0, 990), (0.0, 990));
    assert!(matches!(slot.verdict(NOON), Verdict::Warn(_)));
    b.add("k", NOON, 0.0, 10, NOON);
    assert!(matches!(slot.verdict(NOON), Verdict::Over(s) if s.limit == BudgetLimit::DailyTokens));
    b.add("other", NOON, 1.0, 1, NOON);
    assert!(b.get("other").is_none());
    // A change of amounts keeps the counts; a key that loses its budget loses its slot.
    let more = Budget {
        daily_tokens: Some(5_000),
        ..Default::default()
    };
    let clock = Clock::new(&more).expect("a clock");
    assert!(b.retain(&[("k".into(), more, clock)], NOON).is_empty());
    assert_eq!(slot.verdict(NOON), Verdict::Fine);
    assert_eq!(slot.uses(NOON)[0].used, 1_000.0);
    b.retain(&[], NOON);
    assert!(b.get("k").is_none());
}
