use super::*;

const DAY: i64 = 86_400_000;
/// 2026-12-06T12:00:00Z.
const NOON: i64 = 1_796_558_400_000;

fn used(usd: f64, tokens: u64) -> Used {
    Used {
        usd,
        tokens,
        requests: 1,
    }
}

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
    b.add("k", NOON, used(0.5, 100), NOON);
    assert_eq!(slot.verdict(NOON), Verdict::Fine);
    b.add("k", NOON, used(0.35, 100), NOON);
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
    b.add("k", NOON, used(0.2, 100), NOON);
    assert!(matches!(slot.verdict(NOON), Verdict::Over(s) if s.limit == BudgetLimit::DailyUsd));
    assert!(matches!(
        rx.try_recv(),
        Ok(GatewayEvent::Budget { reached: true, .. })
    ));
    b.add("k", NOON, used(0.2, 100), NOON);
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
    b.add("k", NOON - 10, used(5.0, 0), NOON + DAY);
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
    slot.seed(bounds, used(0.0, 990), used(0.0, 990), NOON);
    assert!(matches!(slot.verdict(NOON), Verdict::Warn(_)));
    b.add("k", NOON, used(0.0, 10), NOON);
    assert!(matches!(slot.verdict(NOON), Verdict::Over(s) if s.limit == BudgetLimit::DailyTokens));
    b.add("other", NOON, used(1.0, 1), NOON);
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

#[test]
fn a_quota_blocks_its_provider_or_its_pair_until_the_reset_in_its_zone() {
    let b = SpendBook::quotas();
    let (tx, mut rx) = broadcast::channel(16);
    b.set_events(tx);
    let daily = |n| Budget {
        daily_requests: Some(n),
        tz: Some("America/Los_Angeles".into()),
        ..Default::default()
    };
    let entries: Vec<(Arc<str>, Budget, Clock)> = [("free/m", daily(2)), ("paid", daily(100))]
        .into_iter()
        .map(|(s, l)| {
            let c = Clock::new(&l).expect("a clock");
            (Arc::from(s), l, c)
        })
        .collect();
    assert_eq!(b.retain(&entries, NOON - 1).len(), 2);
    assert!(!b.blocked("free", "m", NOON));
    b.add_answer("free", "m", NOON, used(0.0, 8), NOON);
    b.add_answer("free", "other", NOON, used(0.0, 8), NOON);
    assert!(!b.blocked("free", "m", NOON), "1 of 2");
    b.add_answer("free", "m", NOON, used(0.0, 8), NOON);
    assert!(b.blocked("free", "m", NOON), "2 of 2");
    assert!(!b.blocked("free", "other", NOON), "only that pair");
    assert!(!b.blocked("paid", "m", NOON));
    let why = b.why("free", "m", NOON).expect("a reason");
    // Noon UTC is 04:00 in Los Angeles: the day ends at 08:00 UTC the next day.
    assert_eq!(
        why,
        "free/m is at its quota daily_requests (2 of 2) until 2026-12-07T00:00:00-08:00"
    );
    let mut reached = 0;
    while let Ok(ev) = rx.try_recv() {
        if let GatewayEvent::Quota {
            scope,
            reached: true,
            ..
        } = ev
        {
            assert_eq!(scope, "free/m");
            reached += 1;
        }
    }
    assert_eq!(reached, 1);
    // Back at the reset: 08:00 UTC the next day.
    let reset = NOON + DAY - 4 * 3_600_000;
    assert!(b.blocked("free", "m", reset - 1));
    assert!(!b.blocked("free", "m", reset));
}
