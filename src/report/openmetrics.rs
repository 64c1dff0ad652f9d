//! `report --format openmetrics`: each site's state, uptime, latency and
//! certificate in the OpenMetrics text format, for node_exporter's textfile
//! collector or a Pushgateway. Gauges only, in base units (seconds, ratios,
//! timestamps in seconds), so Prometheus' own text parser reads it as well
//! (`promtool check metrics` accepts it). Latency percentiles are gauges
//! labelled `percentile` ("50", "95", "99"): computed from sketches, they
//! are no summary (no sum, no count of observations), and Prometheus keeps
//! the `quantile` label for summaries.

use std::fmt::Write as _;

use time::OffsetDateTime;

use super::{SiteReport, UPTIME_WINDOWS};
use crate::rule::SiteState;

/// One metric family: its name, unit (OpenMetrics' `# UNIT`, empty for
/// none) and help.
struct Family {
    name: &'static str,
    unit: &'static str,
    help: &'static str,
}

const STATE: Family = Family {
    name: "sitewatch_site_state",
    unit: "",
    help: "The site's state by the alerting rule: 1 for the state it is in, 0 for the others.",
};
const UPTIME: Family = Family {
    name: "sitewatch_site_uptime_ratio",
    unit: "ratio",
    help: "Share of the site's checks that were up over the window, in whole UTC hours.",
};
const LATENCY: Family = Family {
    name: "sitewatch_site_latency_seconds",
    unit: "seconds",
    help: "Response time of the site's up checks over the report window, DNS to the last body byte.",
};
const PHASE: Family = Family {
    name: "sitewatch_site_phase_latency_seconds",
    unit: "seconds",
    help: "The 95th percentile of each phase of the site's up checks over the report window.",
};
const CHECKS: Family = Family {
    name: "sitewatch_site_checks",
    unit: "",
    help: "Checks of the site stored over the report window.",
};
const LAST_CHECK: Family = Family {
    name: "sitewatch_site_last_check_timestamp_seconds",
    unit: "seconds",
    help: "When the site's newest check started.",
};
const CERTIFICATE: Family = Family {
    name: "sitewatch_site_certificate_expiry_timestamp_seconds",
    unit: "seconds",
    help: "When the site's certificate expires; days left: (this - time()) / 86400.",
};
const REPORT: Family = Family {
    name: "sitewatch_report_timestamp_seconds",
    unit: "seconds",
    help: "When this report was made.",
};

/// A label value as the format wants it: backslash, double quote and
/// newline escaped.
fn label(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

fn seconds(t: OffsetDateTime) -> f64 {
    t.unix_timestamp_nanos() as f64 / 1e9
}

/// The report as OpenMetrics text, ending with `# EOF`.
pub fn render(reports: &[SiteReport], now: OffsetDateTime) -> String {
    let mut out = String::new();
    let mut family = |f: &Family, samples: &mut dyn Iterator<Item = (String, f64)>| {
        let _ = writeln!(out, "# HELP {} {}", f.name, f.help);
        let _ = writeln!(out, "# TYPE {} gauge", f.name);
        if !f.unit.is_empty() {
            let _ = writeln!(out, "# UNIT {} {}", f.name, f.unit);
        }
        for (labels, value) in samples {
            let _ = writeln!(out, "{}{{{labels}}} {value}", f.name);
        }
    };
    let site = |r: &SiteReport| format!("site=\"{}\"", label(&r.site));
    family(
        &STATE,
        &mut reports.iter().flat_map(|r| {
            SiteState::ALL.into_iter().map(move |s| {
                let on = if r.state == s { 1.0 } else { 0.0 };
                (format!("{},state=\"{}\"", site(r), s.as_str()), on)
            })
        }),
    );
    family(
        &UPTIME,
        &mut reports.iter().flat_map(|r| {
            UPTIME_WINDOWS.iter().filter_map(move |(window, _)| {
                let pct = r.uptime_pct.get(window).copied().flatten()?;
                Some((format!("{},window=\"{window}\"", site(r)), pct / 100.0))
            })
        }),
    );
    family(
        &LATENCY,
        &mut reports.iter().flat_map(|r| {
            let l = &r.latency_ms;
            [("50", l.p50), ("95", l.p95), ("99", l.p99)]
                .into_iter()
                .filter_map(move |(p, ms)| {
                    Some((format!("{},percentile=\"{p}\"", site(r)), ms? / 1000.0))
                })
        }),
    );
    family(
        &PHASE,
        &mut reports.iter().flat_map(|r| {
            let p = &r.phases_p95_ms;
            [
                ("dns", p.dns),
                ("connect", p.connect),
                ("tls", p.tls),
                ("ttfb", p.ttfb),
            ]
            .into_iter()
            .filter_map(move |(phase, ms)| {
                Some((
                    format!("{},phase=\"{phase}\",percentile=\"95\"", site(r)),
                    ms? / 1000.0,
                ))
            })
        }),
    );
    family(
        &CHECKS,
        &mut reports.iter().map(|r| (site(r), r.checks as f64)),
    );
    family(
        &LAST_CHECK,
        &mut reports
            .iter()
            .filter_map(|r| Some((site(r), seconds(r.last_check_at?)))),
    );
    family(
        &CERTIFICATE,
        &mut reports
            .iter()
            .filter_map(|r| Some((site(r), seconds(r.tls_expires_at?)))),
    );
    let _ = writeln!(out, "# HELP {} {}", REPORT.name, REPORT.help);
    let _ = writeln!(out, "# TYPE {} gauge", REPORT.name);
    let _ = writeln!(out, "# UNIT {} {}", REPORT.name, REPORT.unit);
    let _ = writeln!(out, "{} {}", REPORT.name, seconds(now));
    out.push_str("# EOF\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_site_every_figure_and_hostile_names_escaped() {
        let reports = super::super::fixture::reports();
        let now = time::macros::datetime!(2026-12-07 10:30 UTC);
        let text = render(&reports, now);
        assert!(text.ends_with("# EOF\n"));
        let hostile = "site=\"<script>alert('x')</script>\u{1}&\\\"\"";
        // The name's quote escaped, so the label ends where it should.
        assert!(
            text.contains(&format!(
                "sitewatch_site_state{{{hostile},state=\"down\"}} 1"
            )),
            "{text}"
        );
        assert!(text.contains("sitewatch_site_state{site=\"quiet\",state=\"up\"} 1"));
        assert!(text.contains("sitewatch_site_state{site=\"quiet\",state=\"down\"} 0"));
        assert!(text.contains("sitewatch_site_uptime_ratio{site=\"quiet\",window=\"24h\"} 0.995"));
        assert!(
            !text.contains("window=\"7d\""),
            "no figure for a window without checks"
        );
        assert!(
            text.contains("sitewatch_site_latency_seconds{site=\"quiet\",percentile=\"95\"} 0.12")
        );
        assert_eq!(
            text.lines()
                .filter(|l| l.starts_with("sitewatch_site_state{"))
                .count(),
            reports.len() * SiteState::ALL.len()
        );
        // Every sample line is a name, labels and a number.
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let value = line.rsplit(' ').next().unwrap();
            assert!(value.parse::<f64>().is_ok(), "{line}");
            assert!(line.starts_with("sitewatch_"), "{line}");
        }
    }
}
