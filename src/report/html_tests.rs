//! The status page's unit tests: its layout helpers, and a page drawn
//! from hostile and quiet sites.

use super::*;
use crate::report::fixture::reports;
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
    assert_eq!(axis_label(1.25, 5.0), "1.25 ms");
    assert_eq!(axis_label(7.5, 10.0), "7.5 ms");
}

/// Every gridline's label is its value, whatever the top (the page said
/// `3.8 ms` on a 3.75 ms line and `8` on a 7.5 one).
#[test]
fn each_gridline_is_labelled_with_its_value() {
    for top in [
        0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 500.0, 1000.0, 2000.0, 5000.0,
    ] {
        for i in 0..=4 {
            let v = top * f64::from(i) / 4.0;
            let label = axis_label(v, top);
            let (number, unit) = label.split_once(' ').unwrap();
            let read: f64 = number.parse().unwrap();
            let ms = if unit == "s" { read * 1000.0 } else { read };
            assert!((ms - v).abs() < 1e-9, "{top}: {v} labelled {label}");
        }
    }
}

/// One precision for uptime everywhere, never rounded up to a full 100.
#[test]
fn uptime_is_cut_not_rounded() {
    assert_eq!(percent(99.999), "99.99%");
    assert_eq!(percent(100.0), "100.00%");
    assert_eq!(percent(0.0), "0.00%");
    assert_eq!(percent(95.0), "95.00%");
}

#[test]
fn day_colours_follow_uptime() {
    assert_eq!(uptime_class(0, 0), "none");
    assert_eq!(uptime_class(1440, 1440), "full");
    assert_eq!(uptime_class(1440, 1430), "minor");
    assert_eq!(uptime_class(1440, 1400), "major");
    assert_eq!(uptime_class(1440, 1000), "bad");
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
    assert!(
        !html.contains("since - ") && !html.contains("since –"),
        "no since without a time"
    );
    assert!(!html.contains(".000%"), "one uptime precision");
    assert!(html.contains("<span class=\"muted\">last check 2026-12-07 10:30Z</span>"));
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
