//! The status page's unit tests: its layout helpers, and a page drawn
//! from hostile and quiet sites.

use super::*;
use crate::report::model::*;
use std::collections::BTreeMap;
use time::macros::datetime;

#[test]
fn chart_tops_are_round() {
    assert_eq!(nice_ceiling(0.0), 1.0);
    assert_eq!(nice_ceiling(87.0), 100.0);
    assert_eq!(nice_ceiling(101.0), 200.0);
    assert_eq!(nice_ceiling(420.0), 500.0);
    assert_eq!(nice_ceiling(3.2), 5.0);
    assert_eq!(axis_label(500.0, 2000.0), "0.5 s");
    assert_eq!(axis_label(750.0, 1000.0), "0.75 s");
    assert_eq!(axis_label(250.0, 500.0), "250 ms");
    assert_eq!(axis_label(1.25, 5.0), "1.2 ms");
}

#[test]
fn day_colours_follow_uptime() {
    assert_eq!(uptime_class(0, 0), "none");
    assert_eq!(uptime_class(1440, 1440), "full");
    assert_eq!(uptime_class(1440, 1430), "minor");
    assert_eq!(uptime_class(1440, 1400), "major");
    assert_eq!(uptime_class(1440, 1000), "bad");
}

/// A down site with hostile values everywhere, and three quiet ones.
fn reports() -> Vec<SiteReport> {
    let now = datetime!(2026-12-07 10:30 UTC);
    let hours = hours(now);
    let days = days(now);
    let mut uptime = BTreeMap::new();
    uptime.insert("24h", Some(99.5));
    uptime.insert("7d", None);
    uptime.insert("30d", Some(100.0));
    let hostile = SiteReport {
        site: "<script>alert('x')</script>\u{1}&\"".into(),
        url: Some("https://example.com/?a=1&b=\"<>\"".into()),
        state: SiteState::Down,
        since: Some(now - time::Duration::minutes(5)),
        last_check_at: Some(now),
        uptime_pct: uptime.clone(),
        checks: 1440,
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
            },
            Incident {
                start: now - time::Duration::minutes(5),
                end: None,
                duration_s: 300.0,
                error_kind: None,
            },
        ],
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
        page: Some(Page {
            days: days.clone(),
            hours: hours.clone(),
        }),
    };
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
    });
    let mut tiny = slow.clone();
    tiny.site = "tiny".into();
    tiny.state = SiteState::Maintenance;
    tiny.tls_days_left = None;
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
    });
    vec![quiet, hostile, slow, tiny]
}

#[test]
fn every_value_is_escaped_and_every_part_drawn() {
    let now = datetime!(2026-12-07 10:30 UTC);
    let reports = reports();
    let html = page(&reports, "24h", now);
    assert!(!html.contains("<script"), "{html}");
    assert!(!html.contains('\u{1}'));
    assert!(
        html.contains(
            "<h2>&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;\u{fffd}&amp;&quot;</h2>"
        )
    );
    assert!(html.contains("href=\"https://example.com/?a=1&amp;b=&quot;&lt;&gt;&quot;\""));
    assert!(
        html.contains("<span class=\"muted\">tcp://db:5432</span>"),
        "not a link"
    );
    assert!(html.contains("<td>eu&lt;1&gt;</td>"));
    assert!(html.contains("<td>&lt;timeout&gt;</td>"));
    assert!(html.contains("<b class=\"bad-text\">ongoing</b>"));
    assert!(html.contains("<span class=\"bad-text\">expired 3 d ago</span>"));
    assert!(html.contains("<span class=\"warn-text\">10 days left</span>"));
    assert!(
        html.contains("No successful check in the last 24h"),
        "quiet has no latency"
    );
    assert!(html.contains("<td colspan=\"4\">never checked</td>"));
    assert!(html.contains("1 of 4 sites down"));
    // Problems first: down, degraded, maintenance, up.
    let at = |name: &str| html.find(&format!("data-site=\"{name}")).unwrap();
    assert!(at("&lt;script") < at("slow") && at("slow") < at("tiny") && at("tiny") < at("quiet"));
    // Hour 5 had no successful check: each of the three charts splits its lines there.
    assert_eq!(html.matches("<polyline class=\"p50\"").count(), 6);
    assert_eq!(html.matches("<rect class=\"none\"").count(), 2 * 80);
    assert!(html.contains(">1.25 s</text>") && html.contains(">50 ms</text>"));
    assert!(html.ends_with("</html>\n"));
    for r in &reports {
        let svg = badge(r);
        assert!(!svg.contains("<script") && !svg.contains('\u{1}'), "{svg}");
        assert!(svg.starts_with("<svg xmlns=") && svg.ends_with("</svg>\n"));
    }
    assert!(page(&[], "24h", now).contains("No site has been checked yet"));
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
