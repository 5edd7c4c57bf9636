use super::*;

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn policy() -> Policy {
    Policy::default()
}

#[test]
fn layers_follow_the_table() {
    assert_eq!(FailureKind::Auth.layer(), Layer::Provider);
    assert_eq!(FailureKind::Quota.layer(), Layer::Provider);
    assert_eq!(FailureKind::Network.layer(), Layer::Provider);
    assert_eq!(FailureKind::Timeout.layer(), Layer::Model);
    assert_eq!(
        FailureKind::RateLimited { retry_after: None }.layer(),
        Layer::Model
    );
    assert_eq!(FailureKind::ServerError.layer(), Layer::Model);
    assert_eq!(FailureKind::ModelNotFound.layer(), Layer::Model);
}

#[test]
fn auth_failure_opens_until_reset() {
    let t0 = Instant::now();
    let mut b = Breaker::default();
    assert!(b.on_failure(&FailureKind::Auth, "401", t0, &policy()));
    assert_eq!(b.state, State::Open { until: None });
    assert_eq!(b.reason, Some("auth failed"));
    assert_eq!(b.admit(t0 + secs(1_000_000), &policy()), Admission::Refused);
    assert!(b.reset());
    assert_eq!(b.admit(t0, &policy()), Admission::Allowed);
}

#[test]
fn each_kind_uses_its_cooldown() {
    let p = Policy {
        rate_limited: secs(10),
        server_error: secs(20),
        timeout: secs(30),
        network_error: secs(40),
        model_not_found: secs(50),
        network_threshold: 1,
        ..Policy::default()
    };
    let t0 = Instant::now();
    for (kind, cooldown) in [
        (FailureKind::Quota, 10),
        (FailureKind::RateLimited { retry_after: None }, 10),
        (FailureKind::ServerError, 20),
        (FailureKind::Timeout, 30),
        (FailureKind::Network, 40),
        (FailureKind::ModelNotFound, 50),
    ] {
        let mut b = Breaker::default();
        b.on_failure(&kind, "x", t0, &p);
        assert_eq!(b.until(), Some(t0 + secs(cooldown)), "{kind:?}");
        assert_eq!(b.admit(t0 + secs(cooldown - 1), &p), Admission::Refused);
        assert_eq!(
            b.admit(t0 + secs(cooldown), &p),
            Admission::Trial,
            "{kind:?}"
        );
    }
}

#[test]
fn network_failures_count_to_the_threshold() {
    let t0 = Instant::now();
    let mut b = Breaker::default();
    let p = policy();
    assert!(!b.on_failure(&FailureKind::Network, "reset", t0, &p));
    assert!(!b.on_failure(&FailureKind::Network, "reset", t0, &p));
    assert!(b.is_closed());
    assert!(b.on_failure(&FailureKind::Network, "reset", t0, &p));
    assert_eq!(b.until(), Some(t0 + p.network_error));
    // A success in between starts the count again.
    let mut b = Breaker::default();
    b.on_failure(&FailureKind::Network, "reset", t0, &p);
    b.on_failure(&FailureKind::Network, "reset", t0, &p);
    b.on_success(t0, &p);
    b.on_failure(&FailureKind::Network, "reset", t0, &p);
    assert!(b.is_closed());
}

#[test]
fn server_errors_open_after_their_threshold() {
    let t0 = Instant::now();
    let p = Policy {
        server_error_threshold: 2,
        ..policy()
    };
    let mut b = Breaker::default();
    assert!(!b.on_failure(&FailureKind::ServerError, "500", t0, &p));
    assert!(b.on_failure(&FailureKind::ServerError, "500", t0, &p));
    let mut b = Breaker::default();
    assert!(
        b.on_failure(&FailureKind::ServerError, "500", t0, &policy()),
        "default threshold 1"
    );
}

#[test]
fn retry_after_wins_and_never_shortens() {
    let t0 = Instant::now();
    let p = policy();
    let mut b = Breaker::default();
    b.on_failure(
        &FailureKind::RateLimited {
            retry_after: Some(secs(30)),
        },
        "429",
        t0,
        &p,
    );
    assert_eq!(b.until(), Some(t0 + secs(30)));
    // A later 429 with a shorter Retry-After keeps the running cooldown.
    b.on_failure(
        &FailureKind::RateLimited {
            retry_after: Some(secs(5)),
        },
        "429",
        t0 + secs(1),
        &p,
    );
    assert_eq!(b.until(), Some(t0 + secs(30)));
    // A longer one extends it.
    b.on_failure(
        &FailureKind::RateLimited {
            retry_after: Some(secs(60)),
        },
        "429",
        t0 + secs(2),
        &p,
    );
    assert_eq!(b.until(), Some(t0 + secs(62)));
}

#[test]
fn half_open_allows_one_trial() {
    let t0 = Instant::now();
    let p = policy();
    let mut b = Breaker::default();
    b.on_failure(&FailureKind::Timeout, "t", t0, &p);
    let t1 = t0 + p.timeout;
    assert!(b.available(t1, &p));
    assert_eq!(b.admit(t1, &p), Admission::Trial);
    assert_eq!(b.state, State::HalfOpen);
    assert!(!b.available(t1, &p), "the trial is in flight");
    assert_eq!(
        b.admit(t1, &p),
        Admission::Refused,
        "others use other candidates"
    );
    // A trial that never reports back frees the slot.
    assert_eq!(b.admit(t1 + p.trial_timeout, &p), Admission::Trial);
    assert!(b.on_success(t1 + p.trial_timeout, &p));
    assert!(b.is_closed());
}

#[test]
fn failed_trials_double_the_cooldown_up_to_the_cap_and_health_decays_it() {
    let p = policy();
    let mut now = Instant::now();
    let mut b = Breaker::default();
    b.on_failure(&FailureKind::Timeout, "t", now, &p);
    let mut expected = p.timeout;
    assert_eq!(b.until(), Some(now + expected));
    for _ in 0..5 {
        now += expected;
        assert_eq!(b.admit(now, &p), Admission::Trial);
        b.on_failure(&FailureKind::Timeout, "t", now, &p);
        expected = (expected * 2).min(p.timeout * 8);
        assert_eq!(b.until(), Some(now + expected));
    }
    assert_eq!(expected, p.timeout * 8, "capped at 8x");
    // Recovery, then an hour of health takes one doubling back.
    now += expected;
    b.admit(now, &p);
    b.on_success(now, &p);
    now += p.decay;
    b.on_success(now, &p);
    b.on_failure(&FailureKind::Timeout, "t", now, &p);
    assert_eq!(b.until(), Some(now + p.timeout * 4));
}

#[test]
fn registry_gates_follow_the_breakers() {
    use std::sync::Arc;
    let r = BreakerRegistry::default();
    let p = policy();
    let a: Arc<str> = "a".into();
    let (pa, ma, ma2) = (
        r.provider_slot(&a),
        r.model_slot(&a, &"m".into()),
        r.model_slot(&a, &"m2".into()),
    );
    assert!(
        Arc::ptr_eq(&pa, &r.provider_slot(&a)),
        "one slot per provider, kept"
    );
    let t0 = Instant::now();
    assert!(r.closed(&pa, &ma) && r.available(&pa, &ma, t0));
    // Two network failures: below the threshold, but counted; a success clears the count.
    r.on_failure(&pa, &ma, &FailureKind::Network, "reset", t0, &p);
    r.on_failure(&pa, &ma, &FailureKind::Network, "reset", t0, &p);
    assert!(r.available(&pa, &ma, t0));
    r.on_success(&pa, &ma, t0, &p);
    r.on_failure(&pa, &ma, &FailureKind::Network, "reset", t0, &p);
    r.on_failure(&pa, &ma, &FailureKind::Network, "reset", t0, &p);
    assert!(r.available(&pa, &ma, t0));
    let t = r.on_failure(&pa, &ma, &FailureKind::Network, "reset", t0, &p);
    assert_eq!(t.len(), 1);
    assert_eq!(t[0].key.model, None, "a provider-layer transition");
    assert!(
        !r.available(&pa, &ma, t0) && !r.available(&pa, &ma2, t0),
        "every model of it"
    );
    assert_eq!(r.admit(&pa, &ma, t0, &p).0, Admission::Refused);
    // After the cooldown: one trial, the gate closes behind it, success reopens all.
    let t1 = t0 + p.network_error;
    assert!(r.available(&pa, &ma, t1));
    let (admission, went) = r.admit(&pa, &ma, t1, &p);
    assert_eq!(admission, Admission::Trial);
    assert_eq!(went[0].state, State::HalfOpen, "half-open is announced");
    assert!(!r.available(&pa, &ma2, t1), "the trial is in flight");
    assert_eq!(r.on_success(&pa, &ma, t1, &p).len(), 1);
    assert!(r.closed(&pa, &ma2));
    // Model layer, and reset.
    r.on_failure(&pa, &ma, &FailureKind::ServerError, "500", t1, &p);
    assert!(!r.available(&pa, &ma, t1) && r.available(&pa, &ma2, t1));
    assert_eq!(r.reset(Some("a"), None).len(), 1);
    assert!(r.closed(&pa, &ma));
    r.on_failure(&pa, &ma, &FailureKind::Auth, "401", t1, &p);
    assert!(
        !r.available(&pa, &ma, t1 + std::time::Duration::from_secs(1_000_000)),
        "until reset"
    );
    assert_eq!(r.reset(None, None).len(), 1);
    assert!(r.available(&pa, &ma, t1));
}

/// A Retry-After as large as a u64 goes (as a hostile upstream sends) is clamped to the
/// ceiling instead of overflowing `now + cooldown`.
#[test]
fn a_huge_retry_after_is_clamped_not_a_panic() {
    let t0 = Instant::now();
    let p = Policy {
        max_retry_after: secs(600),
        ..policy()
    };
    let mut b = Breaker::default();
    b.on_failure(
        &FailureKind::RateLimited {
            retry_after: Some(Duration::from_secs(u64::MAX)),
        },
        "429",
        t0,
        &p,
    );
    assert_eq!(b.until(), Some(t0 + secs(600)));
    // Even a policy that allows it cannot overflow the clock.
    let p = Policy {
        max_retry_after: Duration::MAX,
        ..policy()
    };
    let mut b = Breaker::default();
    b.on_failure(
        &FailureKind::RateLimited {
            retry_after: Some(Duration::MAX),
        },
        "429",
        t0,
        &p,
    );
    assert!(b.until().is_some());
}

/// A model's trial that ends in a failure of the provider layer (a connection reset), or in
/// nothing at all (the client went away), frees the trial at once instead of holding the model
/// for the trial timeout.
#[test]
fn a_trial_that_settles_nothing_on_its_layer_is_freed() {
    let r = BreakerRegistry::default();
    let p = Policy::default();
    let (uid, m): (std::sync::Arc<str>, std::sync::Arc<str>) = ("a".into(), "m".into());
    let (pa, ma) = (r.provider_slot(&uid), r.model_slot(&uid, &m));
    let t0 = Instant::now();
    r.on_failure(&pa, &ma, &FailureKind::ServerError, "500", t0, &p);
    let t1 = t0 + p.server_error;
    assert_eq!(r.admit(&pa, &ma, t1, &p).0, Admission::Trial);
    // A reset counts at the provider layer (one of three), nothing at the model's.
    r.on_failure(&pa, &ma, &FailureKind::Network, "reset", t1, &p);
    assert!(!r.available(&pa, &ma, t1), "held until released");
    r.release_trial(&pa, &ma, t1, &p);
    assert!(r.available(&pa, &ma, t1), "free for the next request");
    // A release for a trial already replaced by another frees nothing.
    let t2 = t1 + std::time::Duration::from_millis(5);
    assert_eq!(r.admit(&pa, &ma, t2, &p).0, Admission::Trial);
    r.release_trial(&pa, &ma, t1, &p);
    assert!(!r.available(&pa, &ma, t2), "the new trial is in flight");
}

#[test]
fn breakers_of_removed_providers_and_models_are_forgotten() {
    use std::collections::HashSet;
    let r = BreakerRegistry::default();
    let p = Policy::default();
    let (a, b, m, n): (
        std::sync::Arc<str>,
        std::sync::Arc<str>,
        std::sync::Arc<str>,
        std::sync::Arc<str>,
    ) = ("a".into(), "b".into(), "m".into(), "n".into());
    for (uid, model) in [(&a, &m), (&a, &n), (&b, &m)] {
        let (ps, ms) = (r.provider_slot(uid), r.model_slot(uid, model));
        r.on_failure(
            &ps,
            &ms,
            &FailureKind::ServerError,
            "500",
            Instant::now(),
            &p,
        );
    }
    let providers: HashSet<&str> = ["a"].into();
    let pairs: HashSet<(&str, &str)> = [("a", "m")].into();
    r.retain(&providers, &pairs);
    assert!(r.provider("b").is_none());
    let left: Vec<_> = r.models_of("a").into_iter().map(|(m, _)| m).collect();
    assert_eq!(left, [m]);
    assert!(r.models_of("b").is_empty());
}

#[test]
fn waking_up_closes_what_the_outage_opened_and_nothing_else() {
    let r = BreakerRegistry::default();
    let p = Policy::default();
    let arc = |s: &str| -> std::sync::Arc<str> { s.into() };
    let (a, b, m) = (arc("a"), arc("b"), arc("m"));
    let (pa, ma, pb, mb) = (
        r.provider_slot(&a),
        r.model_slot(&a, &m),
        r.provider_slot(&b),
        r.model_slot(&b, &m),
    );
    let t0 = Instant::now();
    for _ in 0..3 {
        r.on_failure(&pa, &ma, &FailureKind::Network, "reset", t0, &p);
    }
    r.on_failure(&pb, &mb, &FailureKind::Timeout, "slow", t0, &p);
    let (pc, mc) = (r.provider_slot(&arc("c")), r.model_slot(&arc("c"), &m));
    r.on_failure(&pc, &mc, &FailureKind::ServerError, "500", t0, &p);
    let closed = r.reset_opened_by(&[FailureKind::Network.reason(), FailureKind::Timeout.reason()]);
    assert_eq!(closed.len(), 2);
    assert!(r.closed(&pa, &ma) && r.closed(&pb, &mb));
    assert!(!r.closed(&pc, &mc), "a 500 is the provider's own doing");
}
