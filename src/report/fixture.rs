//! A report to render in unit tests: a down site with hostile values
//! everywhere, and three quiet ones.

use std::collections::BTreeMap;

use time::OffsetDateTime;
use time::macros::datetime;

use super::model::*;
use crate::rule::SiteState;

/// A down site with hostile values everywhere, and three quiet ones.
pub(super) fn reports() -> Vec<SiteReport> {
    let now = datetime!(2026-12-07 10:30 UTC);
    let hours = hours(now);
    let days = days(now);
    let mut uptime = BTreeMap::new();
    uptime.insert("24h", Some(99.5));
    uptime.insert("7d", None);
    uptime.insert("30d", Some(100.0));
    let mut hostile = SiteReport {
        site: "<script>alert('x')</script>\u{1}&\"".into(),
        url: Some("https://example.com/?a=1&b=\"<>\"".into()),
        state: SiteState::Down,
        since: Some(now - time::Duration::minutes(5)),
        last_check_at: Some(now),
        uptime_pct: uptime.clone(),
        checks: 1440,
        up_checks: 1433,
        window_uptime_pct: Some(100.0 * 1433.0 / 1440.0),
        latency_ms: Percentiles {
            p50: Some(41.0),
            p95: Some(120.0),
            p99: Some(300.0),
        },
        phases_p95_ms: Phases::default(),
        tls_expires_at: None,
        tls_days_left: Some(-3),
        last_error: Some(LastError {
            at: now,
            error_kind: Some("http".into()),
            error: Some("<b>bad</b>".into()),
            status_code: Some(503),
        }),
        reason: Some("status 503 <expected> 200-399".into()),
        incidents: vec![
            Incident {
                start: now - time::Duration::hours(3),
                end: Some(now - time::Duration::hours(2)),
                duration_s: 3600.0,
                error_kind: Some("<timeout>".into()),
                status_code: None,
                locations: vec!["eu<1>".into(), "us".into()],
            },
            Incident {
                start: now - time::Duration::minutes(5),
                end: None,
                duration_s: 300.0,
                error_kind: Some("http".into()),
                status_code: Some(503),
                locations: vec!["eu<1>".into()],
            },
        ],
        maintenance: vec![Maintenance {
            start: now - time::Duration::hours(6),
            end: now - time::Duration::hours(5),
            duration_s: 3600.0,
        }],
        maintenance_checks: 12,
        locations: vec![LocationState {
            location: "eu<1>".into(),
            state: SiteState::Down,
            last_check_at: now,
            runs: Some(Runs {
                made: 10,
                expected: 12,
                longest_gap_s: 180.0,
                tick_s: 60.0,
            }),
        }],
        page: None,
    };
    hostile.page = Some(Page {
        days: days.clone(),
        hours: hours.clone(),
        incidents: hostile.incidents.clone(),
    });
    let mut quiet = hostile.clone();
    quiet.site = "quiet".into();
    quiet.url = Some("tcp://db:5432".into());
    quiet.state = SiteState::Up;
    quiet.tls_days_left = Some(10);
    quiet.last_error = None;
    quiet.reason = None;
    quiet.incidents.clear();
    quiet.locations.clear();
    quiet.page = Some(Page {
        days,
        hours: hours
            .iter()
            .map(|h| HourLatency {
                latency: Percentiles::default(),
                ..h.clone()
            })
            .collect(),
        incidents: Vec::new(),
    });
    let mut slow = quiet.clone();
    slow.site = "slow".into();
    slow.state = SiteState::Degraded;
    slow.url = None;
    slow.tls_days_left = Some(40);
    slow.page = Some(Page {
        days: vec![],
        hours: hours
            .iter()
            .map(|h| HourLatency {
                latency: Percentiles {
                    p50: h.latency.p50.map(|v| v * 30.0),
                    p95: h.latency.p95.map(|v| v * 30.0),
                    p99: None,
                },
                ..h.clone()
            })
            .collect(),
        incidents: Vec::new(),
    });
    let mut tiny = slow.clone();
    tiny.site = "tiny".into();
    tiny.state = SiteState::Maintenance;
    tiny.tls_days_left = None;
    tiny.since = None;
    tiny.page = Some(Page {
        days: vec![],
        hours: hours
            .iter()
            .map(|h| HourLatency {
                latency: Percentiles {
                    p50: h.latency.p50.map(|v| v / 30.0),
                    p95: h.latency.p95.map(|v| v / 30.0),
                    p99: None,
                },
                ..h.clone()
            })
            .collect(),
        incidents: Vec::new(),
    });
    vec![quiet, hostile, slow, tiny]
}

/// A day of hours, the sixth without a successful check.
fn hours(now: OffsetDateTime) -> Vec<HourLatency> {
    (0..24)
        .map(|i| HourLatency {
            hour: now - time::Duration::hours(24 - i),
            checks: 60,
            up_checks: if i == 5 { 0 } else { 60 },
            latency: if i == 5 {
                Percentiles::default()
            } else {
                Percentiles {
                    p50: Some(40.0 + i as f64),
                    p95: Some(90.0 + 3.0 * i as f64),
                    p99: None,
                }
            },
            phases_p50_ms: Phases {
                dns: Some(2.0),
                connect: Some(5.5),
                tls: if i % 2 == 0 { Some(12.0) } else { None },
                ttfb: Some(20.0),
            },
        })
        .collect()
}

/// 90 days, checks on the last ten, each a little worse.
fn days(now: OffsetDateTime) -> Vec<DayUptime> {
    (0..90)
        .map(|i| DayUptime {
            day: now.date() - time::Duration::days(89 - i),
            checks: if i < 80 { 0 } else { 1440 },
            up_checks: if i < 80 {
                0
            } else {
                1440 - (i as u32 - 80) * 10
            },
        })
        .collect()
}
