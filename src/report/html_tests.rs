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
    let look = crate::report::look::Look::default();
    let refs: Vec<&SiteReport> = reports.iter().collect();
    let index = index_pages(&refs, "24h", now, &look).remove(0);
    // Every site's page, one after the other: the cards.
    let html: String = reports
        .iter()
        .map(|r| site_page(r, "24h", now, &look))
        .collect();
    for text in [&index, &html] {
        assert!(!text.contains("<script"), "{text}");
        assert!(!text.contains('\u{1}'));
    }
    assert!(
        index.contains("<a href=\"sites/script-alert-x-script-"),
        "{index}"
    );
    assert!(
        index.contains(">&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;\u{fffd}&amp;&quot;</a>"),
        "{index}"
    );
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
    assert!(index.contains("1 of 4 sites down"));
    // Problems first: down, degraded, maintenance, up.
    let at = |name: &str| index.find(&format!("data-site=\"{name}")).unwrap();
    assert!(at("&lt;script") < at("slow") && at("slow") < at("tiny") && at("tiny") < at("quiet"));
    // Hour 5 had no successful check: each of the three charts splits its lines there.
    assert_eq!(html.matches("<polyline class=\"p50\"").count(), 6);
    // 80 days in a row without checks: one bar, on each of the two strips.
    assert_eq!(html.matches("<rect class=\"none\"").count(), 2);
    assert!(html.contains("width=\"798\" height=\"34\""), "80 days wide");
    assert!(
        html.contains("<path class=\"ttfb\" d=\"M"),
        "phases as paths"
    );
    assert!(html.contains(">1.25 s</text>") && html.contains(">50 ms</text>"));
    assert!(html.ends_with("</html>\n") && index.ends_with("</html>\n"));
    for r in &reports {
        let svg = badge(r);
        assert!(!svg.contains("<script") && !svg.contains('\u{1}'), "{svg}");
        assert!(svg.starts_with("<svg xmlns=") && svg.ends_with("</svg>\n"));
    }
    assert!(index_pages(&[], "24h", now, &look)[0].contains("No site has been checked yet"));
    let incidents = super::incidents(&refs, "24h", now, &look);
    assert!(
        incidents.contains("<b class=\"bad-text\">ongoing</b>"),
        "{incidents}"
    );
    assert!(incidents.contains("&lt;script&gt;"), "{incidents}");
    // The page's 90 days, each with its error and the locations down.
    assert!(
        incidents.contains("every outage over the last 90 days")
            && incidents.contains("<td>http 503</td><td>eu&lt;1&gt;</td>")
            && incidents.contains("<td>&lt;timeout&gt;</td><td>eu&lt;1&gt;, us</td>"),
        "{incidents}"
    );
}

/// `[page]`'s settings on the page, the groups as sections with their own
/// summaries, and what `public = false` and `hide_url` leave out of every
/// file the page writes.
#[test]
fn branding_groups_and_hidden_sites() {
    use crate::report::look::Look;
    let now = datetime!(2026-12-07 10:30 UTC);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("logo.svg"),
        "<svg xmlns=\"http://www.w3.org/2000/svg\"/>",
    )
    .unwrap();
    let look = Look {
        title: "Acme <status>".into(),
        description: Some("Our <b>services</b> & APIs".into()),
        logo: Some((dir.path().join("logo.svg"), "logo.svg".into())),
        favicon: None,
        links: vec![("Docs".into(), "https://docs.acme.test/?a=1&b=2".into())],
        footer: Some("© Acme <i>Inc</i>".into()),
        private: ["quiet".to_owned()].into(),
        hidden_urls: reports().into_iter().map(|r| r.site).collect(),
        groups: [
            ("slow".to_owned(), "Payments".to_owned()),
            ("tiny".to_owned(), "Payments".to_owned()),
        ]
        .into(),
        announcements: crate::report::announcements::parse(
            "## maintenance: DB upgrade\nstart: 2026-12-08T02:00:00Z\nend: 2026-12-08T03:00:00Z\n\nSlow <b>checkout</b>, **briefly**.\n\n## resolved: Old news\nstart: 2026-11-01T00:00:00Z\n",
        )
        .unwrap(),
        maintenance: crate::alert::policy::load(
            Some(&crate::sites::SitesDoc {
                maintenance: vec![
                    crate::sites::MaintenanceRaw {
                        sites: vec!["<b>slow</b>".into(), "quiet".into()],
                        start: None,
                        duration: None,
                        every: Some("daily 23:30-00:30".into()),
                        time_zone: Some("Europe/Helsinki".into()),
                        title: Some("Nightly <script>".into()),
                    },
                    crate::sites::MaintenanceRaw {
                        sites: vec!["quiet".into()],
                        start: None,
                        duration: None,
                        every: Some("daily 01:00-02:00".into()),
                        time_zone: None,
                        title: Some("Private work".into()),
                    },
                ],
                ..Default::default()
            }),
            &[],
            &std::collections::HashMap::new(),
            crate::alert::policy::Urls::Required,
        )
        .unwrap()
        .maintenance()
        .to_vec(),
    };
    let out = match std::env::var_os("SITEWATCH_KEEP_PAGE") {
        // To look at the page in a browser (the browser test's own page).
        Some(keep) => std::path::PathBuf::from(keep),
        None => dir.path().join("site"),
    };
    write(&out, &reports(), "24h", now, &look).unwrap();
    let html = std::fs::read_to_string(out.join("index.html")).unwrap();
    assert!(html.contains("<title>Acme &lt;status&gt;: "), "{html}");
    // A maintenance window is announced with its sites (the private one
    // left out) and what it means for uptime, every value escaped; one of
    // private sites only is not announced.
    assert!(
        html.contains("Nightly &lt;script&gt;")
            && html.contains("Sites: &lt;b&gt;slow&lt;/b&gt;. Every day 23:30-00:30 (Europe/Helsinki). Uptime leaves this time out.")
            && html.contains("uptime leaves out maintenance windows"),
        "{html}"
    );
    assert!(!html.contains("Private work") && !html.contains("quiet"));
    assert!(html.contains("<h1>Acme &lt;status&gt;</h1>"));
    assert!(
        html.contains("<p class=\"description\">Our &lt;b&gt;services&lt;/b&gt; &amp; APIs</p>")
    );
    assert!(html.contains("<a href=\"https://docs.acme.test/?a=1&amp;b=2\">Docs</a>"));
    assert!(html.contains("<p>© Acme &lt;i&gt;Inc&lt;/i&gt;</p>"));
    assert!(html.contains("<img class=\"logo\" src=\"logo.svg\" alt=\"\">"));
    assert!(
        out.join("logo.svg").is_file(),
        "the logo is copied beside the page"
    );
    assert!(
        html.contains("<h2 class=\"group-name\">Payments</h2>"),
        "{html}"
    );
    assert!(html.contains("<h2 class=\"group-name\">Other</h2>"));
    let payments = html.find("group-name\">Payments").unwrap();
    let other = html.find("group-name\">Other").unwrap();
    assert!(payments < other, "the sites of no group come last");
    // The private site is in no file; the hidden URL is nowhere.
    let json = std::fs::read_to_string(out.join("status.json")).unwrap();
    for text in [&html, &json] {
        assert!(
            !text.contains("\"quiet\"") && !text.contains(">quiet<"),
            "{text}"
        );
        let at = text
            .find("example.com")
            .map(|i| &text[i.saturating_sub(200)..(i + 50).min(text.len())]);
        assert!(at.is_none(), "a hidden URL shows: {at:?}");
    }
    let badges: Vec<String> = std::fs::read_dir(out.join("badges"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(badges.len(), 3, "{badges:?}");
    assert!(
        !badges.iter().any(|b| b.starts_with("quiet-")),
        "{badges:?}"
    );
}

#[test]
fn a_bad_page_setting_is_named() {
    use crate::report::look::Look;
    use crate::sites::{LinkRaw, PageRaw};
    let config = crate::alert::policy::load(
        None,
        &[],
        &Default::default(),
        crate::alert::policy::Urls::IfSet,
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let raw = PageRaw {
        logo: Some("missing.png".into()),
        ..PageRaw::default()
    };
    let e = Look::new(Some(&raw), dir.path(), &config).unwrap_err();
    assert!(
        e.starts_with("[page] logo `") && e.contains("no such file"),
        "{e}"
    );
    let raw = PageRaw {
        links: vec![LinkRaw {
            name: "x".into(),
            url: "javascript:alert(1)".into(),
        }],
        ..PageRaw::default()
    };
    let e = Look::new(Some(&raw), dir.path(), &config).unwrap_err();
    assert!(e.contains("javascript:alert(1)"), "{e}");
    assert_eq!(
        Look::new(None, dir.path(), &config).unwrap().title,
        "Status"
    );
}

#[test]
fn csv_rows_escape_names_and_formulas() {
    let reports = reports();
    let from = datetime!(2026-11-01 0:00 UTC);
    let to = datetime!(2026-12-01 0:00 UTC);
    let text = crate::report::render::csv(&reports, from, to);
    let mut lines = text.lines();
    assert_eq!(
        lines.next().unwrap(),
        "site,state,from,to,checks,up_checks,uptime_pct,p50_ms,p95_ms,p99_ms,incidents,down_s,maintenance_s,maintenance_checks"
    );
    let hostile = text.lines().find(|l| l.contains("script")).unwrap();
    assert!(
        hostile.starts_with("\"<script>alert('x')</script>\\u{1}&\"\"\",down,2026-11-01T00:00:00.000Z,2026-12-01T00:00:00.000Z,1440,1433,99.5138,"),
        "{hostile}"
    );
    assert_eq!(
        crate::escape::csv("=HYPERLINK(\"x\")"),
        "\"'=HYPERLINK(\"\"x\"\")\""
    );
    assert_eq!(crate::escape::csv("-3"), "-3");
    assert_eq!(crate::escape::csv("@cmd"), "'@cmd");
}

/// Past SITES_PER_PART sites the index and status.json come in parts, each
/// linked to the next; parts no longer needed are removed.
#[test]
fn many_sites_make_parts_and_fewer_remove_them() {
    let now = datetime!(2026-12-07 12:00 UTC);
    let quiet = reports().into_iter().find(|r| r.site == "quiet").unwrap();
    let many: Vec<SiteReport> = (0..=SITES_PER_PART)
        .map(|i| {
            let mut r = quiet.clone();
            r.site = format!("site-{i:05}");
            r.page = None;
            r
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let look = Look::default();
    write(dir.path(), &many, "24h", now, &look).unwrap();
    let first = std::fs::read_to_string(dir.path().join("index.html")).unwrap();
    let second = std::fs::read_to_string(dir.path().join("index-2.html")).unwrap();
    assert!(first.contains("page 1 of 2 · <a href=\"index-2.html\" rel=\"next\">next</a>"));
    assert!(second.contains("<a href=\"index.html\" rel=\"prev\">previous</a> · page 2 of 2"));
    assert!(first.contains(&format!("All {} sites up", SITES_PER_PART + 1)));
    assert_eq!(first.matches("<tr id=\"site-").count(), SITES_PER_PART);
    assert_eq!(second.matches("<tr id=\"site-").count(), 1);
    let part = |name: &str| -> Vec<serde_json::Value> {
        serde_json::from_str(&std::fs::read_to_string(dir.path().join(name)).unwrap()).unwrap()
    };
    assert_eq!(part("status.json").len(), SITES_PER_PART);
    assert_eq!(part("status-2.json")[0]["site"], "site-10000");
    write(dir.path(), &many[..3], "24h", now, &look).unwrap();
    assert!(!dir.path().join("index-2.html").exists());
    assert!(!dir.path().join("status-2.json").exists());
    assert_eq!(part("status.json").len(), 3);
    assert!(
        !std::fs::read_to_string(dir.path().join("index.html"))
            .unwrap()
            .contains("page 1 of")
    );
}
