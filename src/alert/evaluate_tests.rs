//! Unit tests of alert's evaluation: each rule on a crafted history.

use super::*;
use crate::alert::policy::{self, Urls};
use crate::sites::SitesDoc;
use std::time::Duration;
use time::macros::datetime;

const T0: OffsetDateTime = datetime!(2026-12-01 12:00 UTC);

fn config(toml: &str) -> Config {
    let doc: SitesDoc = toml::from_str(toml).unwrap();
    policy::load(Some(&doc), &doc.site, &HashMap::new(), Urls::IfSet).unwrap()
}

const ONE_SITE: &str = r#"
[[site]]
name = "api"
url = "https://api.example/"
"#;

/// A check of `site` from `location`, `minute` minutes after T0.
fn check(site: &str, location: &str, minute: i64, up: bool) -> NewCheck {
    NewCheck {
        site: site.to_owned(),
        location: location.to_owned(),
        started_at: T0 + time::Duration::minutes(minute),
        check_id: Uuid::new_v4(),
        up,
        degraded: false,
        response_time_ms: Some(120.0),
        status_code: if up { Some(200) } else { Some(503) },
        error_kind: None,
        error: (!up).then(|| "status 503, expected 200-399".to_owned()),
        tls_expires_at: None,
        url: format!("https://{site}.example/"),
        run_blind: Some(false),
    }
}

fn at(minute: i64) -> OffsetDateTime {
    T0 + time::Duration::minutes(minute)
}

fn kinds(out: &Outcome) -> Vec<&str> {
    out.events.iter().map(|e| e.kind).collect()
}

#[test]
fn a_site_is_down_at_its_threshold_and_resolved_with_its_outage() {
    let config = config(ONE_SITE);
    let mut state = State::default();
    // Two good checks, then two failures: pending, nothing sent.
    let checks = (0..4).map(|m| check("api", "eu", m, m < 2)).collect();
    let out = evaluate(&config, at(4), &mut state, checks, &[]);
    assert!(out.events.is_empty(), "{:?}", kinds(&out));
    assert_eq!(state.sites["api"].state, SiteState::Pending);
    // The third failure: down, since the first failed check.
    let out = evaluate(
        &config,
        at(5),
        &mut state,
        vec![check("api", "eu", 4, false)],
        &[],
    );
    assert_eq!(kinds(&out), ["down"]);
    let down = &out.events[0].payload;
    assert_eq!(down["since"], ts(at(2)));
    assert_eq!(down["error"], "status 503, expected 200-399");
    assert_eq!(
        down["summary"],
        format!(
            "api is down from 1 of 1 location since {}: status 503, expected 200-399",
            ts(at(2))
        )
    );
    // Still down: nothing more without remind_every.
    let out = evaluate(
        &config,
        at(6),
        &mut state,
        vec![check("api", "eu", 5, false)],
        &[],
    );
    assert!(out.events.is_empty());
    // One good check is not yet a recovery; two are.
    let out = evaluate(
        &config,
        at(7),
        &mut state,
        vec![check("api", "eu", 6, true)],
        &[],
    );
    assert!(out.events.is_empty());
    let out = evaluate(
        &config,
        at(8),
        &mut state,
        vec![check("api", "eu", 7, true)],
        &[],
    );
    assert_eq!(kinds(&out), ["resolved"]);
    let resolved = &out.events[0].payload;
    assert_eq!(resolved["resolves"], "down");
    assert_eq!(resolved["outage_start"], ts(at(2)));
    assert_eq!(resolved["outage_end"], ts(at(6)), "the first good check");
    assert_eq!(resolved["duration_s"], 240.0);
    assert_eq!(state.sites["api"].state, SiteState::Up);
}

#[test]
fn checks_in_any_order_and_again_count_once() {
    let config = config(ONE_SITE);
    let mut state = State::default();
    let mut checks: Vec<NewCheck> = (0..3).map(|m| check("api", "eu", m, false)).collect();
    checks.reverse();
    let again = checks.clone();
    let out = evaluate(&config, at(3), &mut state, checks, &[]);
    assert_eq!(kinds(&out), ["down"]);
    // The same checks once more (a lookback reads them again): nothing.
    let out = evaluate(&config, at(4), &mut state, again, &[]);
    assert!(out.events.is_empty());
    assert_eq!(
        state.locations[&("api".into(), "eu".into())].streak.fails,
        3
    );
}

#[test]
fn a_maintenance_window_silences_down_and_the_down_comes_when_it_ends() {
    let config = config(&format!(
        "{ONE_SITE}\n[[maintenance]]\nsites = [\"api\"]\nstart = \"{}\"\nduration = \"10m\"\n",
        ts(at(0))
    ));
    let mut state = State::default();
    let checks = (0..5).map(|m| check("api", "eu", m, false)).collect();
    let out = evaluate(&config, at(5), &mut state, checks, &[]);
    assert!(out.events.is_empty());
    assert_eq!(state.sites["api"].state, SiteState::Maintenance);
    let out = evaluate(
        &config,
        at(11),
        &mut state,
        vec![check("api", "eu", 10, false)],
        &[],
    );
    assert_eq!(kinds(&out), ["down"]);
}

#[test]
fn a_certificate_expiring_inside_a_window_is_announced_when_it_closes() {
    let config = config(&format!(
        "{ONE_SITE}\n[[maintenance]]\nsites = [\"*\"]\nstart = \"{}\"\nduration = \"10m\"\n",
        ts(at(0))
    ));
    let mut state = State::default();
    let expiring = |minute| NewCheck {
        tls_expires_at: Some(at(0) + time::Duration::days(3)),
        ..check("api", "eu", minute, true)
    };
    let out = evaluate(&config, at(1), &mut state, vec![expiring(0)], &[]);
    assert!(out.events.is_empty(), "{:?}", kinds(&out));
    let out = evaluate(&config, at(11), &mut state, vec![expiring(10)], &[]);
    assert_eq!(kinds(&out), ["tls_expiring"]);
}

#[test]
fn a_blind_run_is_one_prober_down_and_counts_for_no_site() {
    let config = config(ONE_SITE);
    let mut state = State::default();
    let blind = |site: &str, minute| NewCheck {
        status_code: None,
        error_kind: Some("connect".to_owned()),
        run_blind: None,
        ..check(site, "eu", minute, false)
    };
    let checks = (0..3)
        .flat_map(|m| [blind("api", m), blind("web", m), blind("db", m)])
        .collect();
    let out = evaluate(&config, at(3), &mut state, checks, &[]);
    assert_eq!(kinds(&out), ["prober_down"]);
    assert_eq!(out.skipped, 9);
    assert_eq!(out.events[0].payload["location"], "eu");
    assert_eq!(state.probers["eu"].state, ProberState::ProberDown);
    // Answers again: resolved, for the location.
    let out = evaluate(
        &config,
        at(4),
        &mut state,
        vec![check("api", "eu", 3, true)],
        &[],
    );
    assert_eq!(kinds(&out), ["resolved"]);
    assert_eq!(out.events[0].payload["resolves"], "prober_down");
}

#[test]
fn each_certificate_threshold_is_sent_once_and_a_new_certificate_starts_over() {
    let config = config(ONE_SITE);
    let mut state = State::default();
    let with_expiry = |minute, days| NewCheck {
        tls_expires_at: Some(at(minute) + time::Duration::days(days) + time::Duration::hours(1)),
        ..check("api", "eu", minute, true)
    };
    // First seen at 5 days left with [14, 7, 1]: one event, for 7.
    let out = evaluate(&config, at(1), &mut state, vec![with_expiry(0, 5)], &[]);
    assert_eq!(kinds(&out), ["tls_expiring"]);
    assert_eq!(out.events[0].payload["threshold_days"], 7);
    assert_eq!(out.events[0].payload["tls_days_left"], 5.0);
    let expiry = state.sites["api"].tls_expires_at;
    let same = NewCheck {
        tls_expires_at: expiry,
        ..check("api", "eu", 1, true)
    };
    let out = evaluate(&config, at(2), &mut state, vec![same], &[]);
    assert!(out.events.is_empty());
    // Renewed, then close to expiry again: sent again.
    let out = evaluate(&config, at(3), &mut state, vec![with_expiry(2, 90)], &[]);
    assert!(out.events.is_empty());
    let out = evaluate(&config, at(4), &mut state, vec![with_expiry(3, 0)], &[]);
    assert_eq!(kinds(&out), ["tls_expiring"]);
    assert_eq!(out.events[0].payload["threshold_days"], 1);
}

#[test]
fn a_prober_whose_runs_stopped_is_stale_once_and_no_site_is() {
    let config = config(ONE_SITE);
    let mut state = State::default();
    let out = evaluate(
        &config,
        at(1),
        &mut state,
        vec![check("api", "eu", 0, true)],
        &[],
    );
    assert!(out.events.is_empty());
    let runs = [LastRun {
        location: "eu".to_owned(),
        started_at: at(0),
        tick: Duration::from_secs(60),
    }];
    // 20 minutes without a run: past 3 ticks and the 15-minute default.
    let out = evaluate(&config, at(20), &mut state, Vec::new(), &runs);
    assert_eq!(kinds(&out), ["stale"], "the location's, not the site's");
    assert!(out.events[0].payload["site"].is_null());
    let out = evaluate(&config, at(21), &mut state, Vec::new(), &runs);
    assert!(out.events.is_empty());
}

#[test]
fn a_configured_site_never_checked_is_stale_after_its_stale_after() {
    let config = config(ONE_SITE);
    let mut state = State::default();
    let out = evaluate(&config, at(0), &mut state, Vec::new(), &[]);
    assert!(out.events.is_empty());
    assert_eq!(state.sites["api"].state, SiteState::Unknown);
    let out = evaluate(&config, at(16), &mut state, Vec::new(), &[]);
    assert_eq!(kinds(&out), ["stale"]);
    let summary = out.events[0].payload["summary"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        summary.starts_with("api has never been checked"),
        "{summary}"
    );
}

/// A check up but slow (`ms` past `degraded_after`), or up and fast.
fn timed(minute: i64, ms: f64, limit: f64) -> NewCheck {
    NewCheck {
        degraded: ms > limit,
        response_time_ms: Some(ms),
        ..check("api", "eu", minute, true)
    }
}

#[test]
fn a_site_slow_for_its_threshold_is_degraded_once_and_fast_again_once() {
    let config = config(
        r#"
[defaults]
degraded_after = "800ms"

[[notifier]]
name = "ops"
kind = "webhook"

[[notifier]]
name = "pager"
kind = "pagerduty"
events = ["down"]

[[site]]
name = "api"
url = "https://api.example/"
"#,
    );
    let mut state = State::default();
    let out = evaluate(
        &config,
        at(1),
        &mut state,
        vec![timed(0, 100.0, 800.0)],
        &[],
    );
    assert!(out.events.is_empty());
    // Two slow checks: degraded, not notified yet (threshold 3).
    let slow = vec![timed(1, 900.0, 800.0), timed(2, 950.0, 800.0)];
    let out = evaluate(&config, at(3), &mut state, slow, &[]);
    assert!(out.events.is_empty(), "{:?}", kinds(&out));
    assert_eq!(state.sites["api"].state, SiteState::Degraded);
    let out = evaluate(
        &config,
        at(4),
        &mut state,
        vec![timed(3, 1200.0, 800.0)],
        &[],
    );
    assert_eq!(kinds(&out), ["degraded"]);
    let p = &out.events[0].payload;
    assert_eq!(p["response_time_ms"], 1200.0);
    assert_eq!(p["degraded_after_ms"], 800.0);
    assert!(
        p["summary"]
            .as_str()
            .unwrap()
            .contains("1200 ms, past its degraded_after of 800 ms")
    );
    assert_eq!(out.events[0].notify, ["ops"], "the pager takes `down` only");
    // Still slow: nothing more.
    let out = evaluate(
        &config,
        at(5),
        &mut state,
        vec![timed(4, 1000.0, 800.0)],
        &[],
    );
    assert!(out.events.is_empty(), "{:?}", kinds(&out));
    // Fast again: one resolved of degraded.
    let out = evaluate(&config, at(6), &mut state, vec![timed(5, 90.0, 800.0)], &[]);
    assert_eq!(kinds(&out), ["resolved"]);
    assert_eq!(out.events[0].payload["resolves"], "degraded");
    assert_eq!(out.events[0].notify, ["ops"]);
    // One slow check alone after that: nothing.
    let out = evaluate(
        &config,
        at(7),
        &mut state,
        vec![timed(6, 900.0, 800.0)],
        &[],
    );
    assert!(out.events.is_empty(), "{:?}", kinds(&out));
}

#[test]
fn notifiers_take_the_events_of_their_sites_and_groups() {
    let config = config(
        r#"
[[notifier]]
name = "everyone"
kind = "webhook"

[[notifier]]
name = "payments"
kind = "webhook"
groups = ["payments"]

[[site]]
name = "checkout"
url = "https://checkout.example/"
group = "payments"

[[site]]
name = "blog"
url = "https://blog.example/"
"#,
    );
    let mut state = State::default();
    let checks = (0..3)
        .flat_map(|m| {
            [
                check("checkout", "eu", m, false),
                check("blog", "eu", m, false),
            ]
        })
        .collect();
    let out = evaluate(&config, at(3), &mut state, checks, &[]);
    let to: Vec<(Option<&str>, Vec<String>)> = out
        .events
        .iter()
        .map(|e| (e.site.as_deref(), e.notify.clone()))
        .collect();
    assert_eq!(
        to,
        [
            (Some("blog"), vec!["everyone".to_owned()]),
            (
                Some("checkout"),
                vec!["everyone".to_owned(), "payments".to_owned()]
            ),
        ]
    );
}
