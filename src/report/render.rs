//! The report for a terminal (an aligned table, coloured on a TTY unless
//! `NO_COLOR` is set) and as Markdown (for `$GITHUB_STEP_SUMMARY`). JSON is
//! the model serialized as it is.

use std::fmt::Write as _;

use std::collections::BTreeMap;

use super::{Runs, SiteReport, UPTIME_WINDOWS};
use crate::message::rfc3339_ms;
use crate::rule::SiteState;
use time::OffsetDateTime;

/// `24h`, `7d`, `90m`: a window as a person writes it.
pub fn window_label(window: std::time::Duration) -> String {
    let s = window.as_secs();
    if s >= 2 * 86_400 && s.is_multiple_of(86_400) {
        format!("{}d", s / 86_400)
    } else if s > 0 && s.is_multiple_of(3600) {
        format!("{}h", s / 3600)
    } else {
        humantime::format_duration(window)
            .to_string()
            .replace(' ', "")
    }
}

fn pct(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_owned(), percent)
}

/// An uptime for a person, everywhere the same: two decimals, cut rather
/// than rounded, so that a site with a failed check never reads `100.00%`
/// (99.999 is `99.99%`).
pub fn percent(v: f64) -> String {
    let cut = (v * 100.0).floor() / 100.0;
    format!("{cut:.2}%")
}

fn millis(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_owned(), |v| format!("{v:.0} ms"))
}

pub(super) fn when(t: Option<time::OffsetDateTime>) -> String {
    t.map_or_else(
        || "-".to_owned(),
        |t| {
            let s = rfc3339_ms::format(&t);
            // To the minute: 2026-11-24 06:40Z.
            format!("{} {}Z", &s[..10], &s[11..16])
        },
    )
}

pub(super) fn duration(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        3600..86_400 => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d{:02}h", s / 86_400, s % 86_400 / 3600),
    }
}

/// The site's latest failure (or, degraded, what made it so), short.
fn last_error(r: &SiteReport) -> String {
    let short = |text: &str| -> String {
        if text.chars().count() > 60 {
            text.chars().take(59).chain(['…']).collect()
        } else {
            text.to_owned()
        }
    };
    match (&r.last_error, r.state) {
        (_, SiteState::Degraded) if r.reason.is_some() => short(r.reason.as_deref().unwrap_or("")),
        (None, _) => "-".to_owned(),
        (Some(e), _) => format!("{} at {}", short(&e.describe()), when(Some(e.at))),
    }
}

/// One row per site, the columns every format shows.
fn rows(reports: &[&SiteReport]) -> (Vec<&'static str>, Vec<Vec<String>>) {
    let mut header = vec!["site", "state", "since"];
    header.extend(UPTIME_WINDOWS.iter().map(|(name, _)| *name));
    header.extend(["p50", "p95", "checks", "cert days", "last error"]);
    let rows = reports
        .iter()
        .map(|r| {
            let mut row = vec![r.site.clone(), r.state.as_str().to_owned(), when(r.since)];
            row.extend(
                UPTIME_WINDOWS
                    .iter()
                    .map(|(name, _)| pct(r.uptime_pct[name])),
            );
            row.extend([
                millis(r.latency_ms.p50),
                millis(r.latency_ms.p95),
                r.checks.to_string(),
                r.tls_days_left
                    .map_or_else(|| "-".to_owned(), |d| d.to_string()),
                last_error(r),
            ]);
            row
        })
        .collect();
    (header, rows)
}

fn colour(state: SiteState) -> &'static str {
    match state {
        SiteState::Up => "\x1b[32m",
        SiteState::Down => "\x1b[31;1m",
        SiteState::Pending | SiteState::Degraded | SiteState::Stale => "\x1b[33m",
        SiteState::Unknown | SiteState::Maintenance => "\x1b[2m",
    }
}

/// An aligned table, problems first (as the page), then by name; `colour`
/// paints each site's state. Within `width` columns when given (a
/// terminal's): the last error, then the site's name, are cut (`…`) to fit.
pub fn table(reports: &[SiteReport], window: &str, colours: bool, width: Option<usize>) -> String {
    let mut sorted: Vec<&SiteReport> = reports.iter().collect();
    sorted.sort_by(|a, b| (a.state.severity(), &a.site).cmp(&(b.state.severity(), &b.site)));
    let (header, mut rows) = rows(&sorted);
    // Names and errors come from stored data: no escape sequence of theirs
    // reaches the terminal.
    for cell in rows.iter_mut().flatten() {
        *cell = crate::escape::terminal(cell);
    }
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let shown = match width {
        Some(width) => fit(&header, &widths, width),
        None => widths.iter().copied().enumerate().collect(),
    };
    let mut out = String::new();
    let padded = |cells: &[String]| -> Vec<String> {
        shown
            .iter()
            .map(|&(i, w)| {
                let c = cut(&cells[i], w);
                format!("{c:<w$}")
            })
            .collect()
    };
    let upper: Vec<String> = header.iter().map(|h| h.to_uppercase()).collect();
    let _ = writeln!(out, "{}", padded(&upper).join("  ").trim_end());
    for (r, row) in sorted.iter().zip(rows) {
        let mut cells = padded(&row);
        if colours {
            // The state is always shown, second.
            cells[1] = format!("{}{}\x1b[0m", colour(r.state), cells[1]);
        }
        let _ = writeln!(out, "{}", cells.join("  ").trim_end());
    }
    let _ = writeln!(
        out,
        "{} sites; p50, p95, checks over the last {window}; uptime over whole UTC hours",
        reports.len()
    );
    for (location, runs) in ledger(reports) {
        let _ = writeln!(
            out,
            "runs from {}: {}",
            crate::escape::terminal(location),
            runs_text(runs)
        );
    }
    out
}

/// The columns shown within `width` (two spaces between them), and their
/// widths: the last error is narrowed first (down to 12); then the columns
/// a glance needs least are left out, one by one (since, 7d, checks, cert
/// days, p95, 30d); then the site's name is narrowed (down to 12). State,
/// 24h uptime and p50 always show.
fn fit(header: &[&str], widths: &[usize], width: usize) -> Vec<(usize, usize)> {
    const NARROWEST: usize = 12;
    const LEAVE_OUT: [&str; 6] = ["since", "7d", "checks", "cert days", "p95", "30d"];
    let mut shown: Vec<(usize, usize)> = widths.iter().copied().enumerate().collect();
    let total = |s: &[(usize, usize)]| {
        s.iter().map(|(_, w)| w).sum::<usize>() + 2 * s.len().saturating_sub(1)
    };
    let narrow = |shown: &mut Vec<(usize, usize)>, column: usize| {
        let over = total(shown).saturating_sub(width);
        let room = shown[column].1.saturating_sub(NARROWEST);
        shown[column].1 -= over.min(room);
    };
    let last = shown.len() - 1;
    narrow(&mut shown, last);
    for name in LEAVE_OUT {
        if total(&shown) <= width {
            break;
        }
        shown.retain(|(i, _)| header[*i] != name);
    }
    narrow(&mut shown, 0);
    shown
}

/// `text` in at most `width` characters, cut with `…`.
fn cut(text: &str, width: usize) -> std::borrow::Cow<'_, str> {
    if text.chars().count() <= width {
        return text.into();
    }
    let kept: String = text.chars().take(width.saturating_sub(1)).collect();
    (kept + "…").into()
}

/// Each location's runs (the run ledger), once.
pub(super) fn ledger(reports: &[SiteReport]) -> BTreeMap<&str, &Runs> {
    reports
        .iter()
        .flat_map(|r| &r.locations)
        .filter_map(|l| Some((l.location.as_str(), l.runs.as_ref()?)))
        .collect()
}

/// `58 of 60 runs, longest gap 3m00s`.
pub(super) fn runs_text(r: &Runs) -> String {
    format!(
        "{} of {} runs, longest gap {}",
        r.made,
        r.expected,
        duration(r.longest_gap_s)
    )
}

fn escape(cell: &str) -> String {
    crate::escape::markdown(cell)
}

/// A Markdown table, then each site's incidents in the window.
pub fn markdown(reports: &[SiteReport], window: &str) -> String {
    let (header, rows) = rows(&reports.iter().collect::<Vec<_>>());
    let mut out = String::new();
    let _ = writeln!(
        out,
        "### sitewatch: {} sites, last {window}\n",
        reports.len()
    );
    let _ = writeln!(out, "| {} |", header.join(" | "));
    let _ = writeln!(out, "|{}|", vec!["---"; header.len()].join("|"));
    for (r, mut row) in reports.iter().zip(rows) {
        for cell in &mut row {
            *cell = escape(cell);
        }
        if r.state != SiteState::Up {
            row[1] = format!("**{}**", row[1]);
        }
        let cells = row;
        let _ = writeln!(out, "| {} |", cells.join(" | "));
    }
    let runs = ledger(reports);
    if !runs.is_empty() {
        let _ = writeln!(
            out,
            "\n#### Runs\n\n| location | runs | expected | longest gap |\n|---|---:|---:|---:|"
        );
        for (location, r) in runs {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} |",
                escape(location),
                r.made,
                r.expected,
                duration(r.longest_gap_s)
            );
        }
    }
    let with_incidents: Vec<&SiteReport> =
        reports.iter().filter(|r| !r.incidents.is_empty()).collect();
    if !with_incidents.is_empty() {
        let _ = writeln!(out, "\n#### Incidents\n");
        for r in with_incidents {
            for i in &r.incidents {
                let _ = writeln!(
                    out,
                    "- **{}** down {} to {} ({}{})",
                    escape(&r.site),
                    when(Some(i.start)),
                    i.end.map_or_else(|| "now".to_owned(), |e| when(Some(e))),
                    duration(i.duration_s),
                    i.error_kind
                        .as_ref()
                        .map_or_else(String::new, |k| format!(", {}", escape(k)))
                );
            }
        }
    }
    let in_maintenance: Vec<&SiteReport> = reports
        .iter()
        .filter(|r| !r.maintenance.is_empty())
        .collect();
    if !in_maintenance.is_empty() {
        let _ = writeln!(out, "\n#### Maintenance, left out of uptime\n");
        for r in in_maintenance {
            let total: f64 = r.maintenance.iter().map(|m| m.duration_s).sum();
            let _ = writeln!(
                out,
                "- **{}** {} in {} windows, {} checks left out",
                escape(&r.site),
                duration(total),
                r.maintenance.len(),
                r.maintenance_checks
            );
        }
    }
    out
}

/// The report as CSV (`--format csv`), one row per site, for a spreadsheet
/// or an SLA record: the period, checks and checks up, uptime over it,
/// latency percentiles, incidents and the time down. Every text field
/// escaped ([`crate::escape::csv`]).
pub fn csv(reports: &[SiteReport], from: OffsetDateTime, to: OffsetDateTime) -> String {
    let fmt = |t: OffsetDateTime| crate::message::rfc3339_ms::format(&t);
    let num = |v: Option<f64>, d: usize| v.map_or_else(String::new, |v| format!("{v:.d$}"));
    let mut out = String::from(
        "site,state,from,to,checks,up_checks,uptime_pct,p50_ms,p95_ms,p99_ms,incidents,down_s,maintenance_s,maintenance_checks\n",
    );
    for r in reports {
        // Down time inside the period only.
        let down: f64 = r
            .incidents
            .iter()
            .map(|i| {
                let (start, end) = (i.start.max(from), i.end.unwrap_or(to).min(to));
                ((end - start).whole_milliseconds() as f64 / 1000.0).max(0.0)
            })
            .sum();
        let maintenance: f64 = r.maintenance.iter().map(|m| m.duration_s).sum();
        let uptime = r
            .window_uptime_pct
            .map(|p| (p * 10_000.0).floor() / 10_000.0);
        out.push_str(&format!(
            "{},{},{},{},{},{},{},{},{},{},{},{:.0},{:.0},{}\n",
            crate::escape::csv(&r.site),
            r.state.as_str(),
            fmt(from),
            fmt(to),
            r.checks,
            r.up_checks,
            num(uptime, 4),
            num(r.latency_ms.p50, 1),
            num(r.latency_ms.p95, 1),
            num(r.latency_ms.p99, 1),
            r.incidents.len(),
            down,
            maintenance,
            r.maintenance_checks
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_says_what_maintenance_left_out() {
        let text = markdown(&super::super::fixture::reports(), "24h");
        let at = text.find("#### Maintenance, left out of uptime").unwrap();
        let line = text[at..].lines().nth(2).unwrap();
        assert!(
            line.ends_with("1h00m in 1 windows, 12 checks left out"),
            "{line}"
        );
        assert!(!line.contains("<script>"), "{line}");
    }

    #[test]
    fn durations_read_like_a_person_writes_them() {
        assert_eq!(duration(42.4), "42s");
        assert_eq!(duration(125.0), "2m05s");
        assert_eq!(duration(3.0 * 3600.0 + 60.0), "3h01m");
        assert_eq!(duration(2.0 * 86_400.0 + 3600.0), "2d01h");
        assert_eq!(window_label(std::time::Duration::from_secs(86_400)), "24h");
        assert_eq!(
            window_label(std::time::Duration::from_secs(30 * 86_400)),
            "30d"
        );
        assert_eq!(window_label(std::time::Duration::from_secs(5400)), "1h30m");
    }

    #[test]
    fn the_table_puts_problems_first_and_fits_the_terminal() {
        let reports = super::super::fixture::reports();
        let wide = table(&reports, "24h", false, None);
        let order: Vec<&str> = wide
            .lines()
            .skip(1)
            .take(reports.len())
            .map(|l| l.split_whitespace().nth(1).unwrap())
            .collect();
        assert_eq!(order, ["down", "degraded", "maintenance", "up"], "{wide}");
        assert!(
            wide.lines().any(|l| l.chars().count() > 80),
            "the fixture is wide"
        );
        let narrow = table(&reports, "24h", true, Some(80));
        for line in narrow.lines().take(reports.len() + 1) {
            // Colours are escape sequences, not columns.
            let shown = line.replace("\x1b[0m", "").replace("\x1b[31;1m", "");
            let shown = shown
                .replace("\x1b[33m", "")
                .replace("\x1b[2m", "")
                .replace("\x1b[32m", "");
            assert!(
                shown.chars().count() <= 80,
                "{} columns: {shown}",
                shown.chars().count()
            );
        }
        assert!(narrow.contains('…'), "something was cut: {narrow}");
        assert!(
            !narrow.contains("\x1b]") && !narrow.contains("\u{1}"),
            "escaped"
        );
    }
}
