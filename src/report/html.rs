//! The static status page: `index.html` (inline CSS and SVG, no script and
//! no external request, so it reads the same from `file://` and from
//! GitHub Pages), `status.json` (the JSON report) and one badge per site,
//! `badges/<site>.svg`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use time::OffsetDateTime;

use super::render::{duration, when};
use super::{Page, SiteReport, UPTIME_WINDOWS};
use crate::rule::SiteState;

/// Writes the page, the JSON and the badges into `dir` (made if missing),
/// and removes the badges of sites no longer reported. Returns the files
/// written.
pub fn write(
    dir: &Path,
    reports: &[SiteReport],
    window: &str,
    now: OffsetDateTime,
) -> anyhow::Result<Vec<PathBuf>> {
    let badges = dir.join("badges");
    std::fs::create_dir_all(&badges)
        .with_context(|| format!("cannot create {}", badges.display()))?;
    let mut files = Vec::new();
    let mut put = |path: PathBuf, text: &str| -> anyhow::Result<()> {
        write_aside(&path, text)?;
        files.push(path);
        Ok(())
    };
    put(dir.join("index.html"), &page(reports, window, now))?;
    let mut json = serde_json::to_string_pretty(reports).expect("a report serializes");
    json.push('\n');
    put(dir.join("status.json"), &json)?;
    let mut names = std::collections::BTreeMap::new();
    for r in reports {
        let name = format!("{}.svg", crate::escape::file_stem(&r.site));
        if let Some(other) = names.insert(name.clone(), &r.site) {
            anyhow::bail!(
                "the sites {:?} and {:?} would share the badge {name}: rename one",
                other,
                r.site
            );
        }
        put(badges.join(&name), &badge(r))?;
    }
    // The badges of sites that are gone (removed, renamed, or named by an
    // older version), so nobody links to a frozen state.
    let listed =
        std::fs::read_dir(&badges).with_context(|| format!("cannot list {}", badges.display()))?;
    for entry in listed.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(".svg") && !names.contains_key(&name) {
            let path = entry.path();
            std::fs::remove_file(&path)
                .with_context(|| format!("cannot remove the old badge {}", path.display()))?;
        }
    }
    Ok(files)
}

/// Writes `path` aside, then renames it over the old one: a web server
/// serving the directory never sends half a page. The file aside is
/// created anew (`O_EXCL`: never an existing file or a planted symlink)
/// under a name no other run uses, in the same directory.
fn write_aside(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let unique = uuid::Uuid::new_v4().simple().to_string();
    let aside = path.with_file_name(format!(".{name}.{}.tmp", &unique[..12]));
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&aside)
        .and_then(|mut file| file.write_all(text.as_bytes()))
        .and_then(|()| std::fs::rename(&aside, path));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&aside);
        return Err(e).with_context(|| format!("cannot write {}", path.display()));
    }
    Ok(())
}

/// `text` safe inside HTML and SVG, in text and in quoted attributes.
fn esc(text: &str) -> String {
    crate::escape::xml(text)
}

fn pct(v: Option<f64>) -> String {
    v.map_or_else(|| "–".to_owned(), |v| format!("{v:.2}%"))
}

fn ms(v: Option<f64>) -> String {
    v.map_or_else(|| "–".to_owned(), |v| format!("{v:.0} ms"))
}

/// Problems first (down, pending, degraded, stale, unknown, maintenance),
/// then the sites that are up; by name within each.
fn order(state: SiteState) -> u8 {
    match state {
        SiteState::Down => 0,
        SiteState::Pending => 1,
        SiteState::Degraded => 2,
        SiteState::Stale => 3,
        SiteState::Unknown => 4,
        SiteState::Maintenance => 5,
        SiteState::Up => 6,
    }
}

/// The colour class of a day's uptime.
fn uptime_class(checks: u32, up: u32) -> &'static str {
    if checks == 0 {
        return "none";
    }
    let pct = 100.0 * f64::from(up) / f64::from(checks);
    if up == checks {
        "full"
    } else if pct >= 99.0 {
        "minor"
    } else if pct >= 95.0 {
        "major"
    } else {
        "bad"
    }
}

const STYLE: &str = r#"
:root{--bg:#f6f8fa;--card:#fff;--fg:#1f2328;--muted:#59636e;--line:#d1d9e0;
--up:#1a7f37;--down:#cf222e;--warn:#bf8700;--none:#d1d9e0;
--full:#2da44e;--minor:#9be9a8;--major:#d4a72c;--bad:#cf222e;
--p50:#0969da;--p95:#8250df;--dns:#a5d6ff;--connect:#80ccff;--tls:#54aeff;--ttfb:#218bff}
@media (prefers-color-scheme:dark){:root{--bg:#0d1117;--card:#161b22;--fg:#e6edf3;--muted:#9198a1;
--line:#30363d;--none:#30363d;--up:#3fb950;--down:#f85149;--warn:#d29922;--p50:#4493f8;--p95:#ab7df8}}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--fg);font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif}
header,main,footer{max-width:1000px;margin:0 auto;padding:0 16px}
header{padding-top:24px}
h1{font-size:26px;margin:0 0 4px}
.summary{font-size:18px;font-weight:600;padding:12px 16px;border-radius:8px;color:#fff;margin:12px 0}
.summary.ok{background:var(--up)}.summary.bad{background:var(--down)}.summary.warn{background:var(--warn)}
.meta,.muted{color:var(--muted);font-size:13px}
section.site{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:16px;margin:16px 0}
.head{display:flex;flex-wrap:wrap;align-items:baseline;gap:8px 12px}
.head h2{font-size:19px;margin:0}
.head a{color:var(--muted);font-size:13px;word-break:break-all}
.state{font-weight:700;text-transform:uppercase;font-size:12px;padding:2px 8px;border-radius:10px;color:#fff}
.state.up{background:var(--up)}.state.down{background:var(--down)}
.state.pending,.state.degraded,.state.stale{background:var(--warn)}.state.unknown,.state.maintenance{background:var(--muted)}
dl.facts{display:grid;grid-template-columns:repeat(auto-fit,minmax(110px,1fr));gap:8px;margin:12px 0}
dl.facts div{border-left:3px solid var(--line);padding-left:8px}
dt{color:var(--muted);font-size:12px}dd{margin:0;font-weight:600;font-variant-numeric:tabular-nums}
figure{margin:12px 0}figcaption{display:flex;justify-content:space-between;color:var(--muted);font-size:12px}
svg{display:block;width:100%;height:auto}
svg .none{fill:var(--none)}svg .full{fill:var(--full)}svg .minor{fill:var(--minor)}
svg .major{fill:var(--major)}svg .bad{fill:var(--bad)}
svg .grid{stroke:var(--line);stroke-width:1}svg text{fill:var(--muted);font-size:11px}
svg .p50{stroke:var(--p50);fill:none;stroke-width:2}svg .p95{stroke:var(--p95);fill:none;stroke-width:1.5;stroke-dasharray:4 3}
svg .dns{fill:var(--dns)}svg .connect{fill:var(--connect)}svg .tls{fill:var(--tls)}svg .ttfb{fill:var(--ttfb)}
.legend{display:flex;flex-wrap:wrap;gap:4px 14px;font-size:12px;color:var(--muted)}
.legend i{display:inline-block;width:12px;height:8px;margin-right:4px;vertical-align:middle}
.legend .p50{border-top:2px solid var(--p50);height:0}.legend .p95{border-top:2px dashed var(--p95);height:0}
.legend .dns{background:var(--dns)}.legend .connect{background:var(--connect)}
.legend .tls{background:var(--tls)}.legend .ttfb{background:var(--ttfb)}
table{border-collapse:collapse;width:100%;font-size:13px;margin-top:6px}
th,td{text-align:left;padding:4px 8px;border-bottom:1px solid var(--line);font-variant-numeric:tabular-nums}
th{color:var(--muted);font-weight:600}
h3{font-size:14px;margin:14px 0 0}
.ok-text{color:var(--up)}.bad-text{color:var(--down)}.warn-text{color:var(--warn)}
footer{padding:8px 16px 32px}
"#;

/// The whole page.
pub fn page(reports: &[SiteReport], window: &str, now: OffsetDateTime) -> String {
    let mut sorted: Vec<&SiteReport> = reports.iter().collect();
    sorted.sort_by(|a, b| (order(a.state), &a.site).cmp(&(order(b.state), &b.site)));
    let count = |s: SiteState| reports.iter().filter(|r| r.state == s).count();
    let (down, troubled) = (
        count(SiteState::Down),
        count(SiteState::Pending) + count(SiteState::Degraded) + count(SiteState::Stale),
    );
    let (class, summary) = if reports.is_empty() {
        ("warn", "No site has been checked yet".to_owned())
    } else if down > 0 {
        ("bad", format!("{down} of {} sites down", reports.len()))
    } else if troubled > 0 {
        (
            "warn",
            format!(
                "{troubled} of {} sites failing, degraded or stale",
                reports.len()
            ),
        )
    } else if count(SiteState::Up) == reports.len() {
        ("ok", format!("All {} sites up", reports.len()))
    } else {
        (
            "warn",
            format!("{} sites, some not checked yet", reports.len()),
        )
    };
    let mut locations: Vec<&str> = reports
        .iter()
        .flat_map(|r| r.locations.iter().map(|l| l.location.as_str()))
        .collect();
    locations.sort_unstable();
    locations.dedup();
    let updated = super::render::when(Some(now));

    let mut out = String::with_capacity(4096 + reports.len() * 8192);
    let _ = write!(
        out,
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"generator\" content=\"sitewatch {version}\">\n\
         <title>{title}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<header>\n\
         <h1>Status</h1>\n<div class=\"summary {class}\" id=\"summary\">{summary}</div>\n\
         <p class=\"meta\">Updated <time datetime=\"{iso}\">{updated}</time> · \
         checks, latency and incidents over the last {window} · \
         checked from {locations}</p>\n</header>\n<main>\n",
        version = env!("CARGO_PKG_VERSION"),
        title = esc(&format!("Status: {summary}")),
        summary = esc(&summary),
        iso = crate::message::rfc3339_ms::format(&now),
        window = esc(window),
        locations = if locations.is_empty() {
            "no location yet".to_owned()
        } else {
            esc(&locations.join(", "))
        },
    );
    for r in sorted {
        site(&mut out, r, window);
    }
    let _ = write!(
        out,
        "</main>\n<footer class=\"muted\">Made by sitewatch from the checks stored in \
         PostgreSQL. Uptime is the share of checks that were up, over whole UTC hours; \
         <a href=\"status.json\">status.json</a> has it all for machines.</footer>\n\
         </body>\n</html>\n"
    );
    out
}

fn site(out: &mut String, r: &SiteReport, window: &str) {
    let state = r.state.as_str();
    let _ = write!(
        out,
        "<section class=\"site\" id=\"site-{id}\" data-site=\"{name}\" data-state=\"{state}\">\n\
         <div class=\"head\"><h2>{name}</h2><span class=\"state {state}\">{state}</span>\
         <span class=\"muted\">since {since} · last check {last}</span>",
        id = esc(&crate::escape::file_stem(&r.site)),
        name = esc(&r.site),
        since = when(r.since),
        last = when(r.last_check_at),
    );
    if let Some(why) = &r.reason {
        let _ = write!(out, "<span class=\"reason\">{}</span>", esc(why));
    }
    if let Some(url) = &r.url {
        if url.starts_with("http://") || url.starts_with("https://") {
            let _ = write!(out, "<a href=\"{0}\" rel=\"nofollow\">{0}</a>", esc(url));
        } else {
            let _ = write!(out, "<span class=\"muted\">{}</span>", esc(url));
        }
    }
    out.push_str("</div>\n<dl class=\"facts\">");
    let mut fact = |name: &str, value: String| {
        let _ = write!(out, "<div><dt>{}</dt><dd>{}</dd></div>", esc(name), value);
    };
    for (name, _) in UPTIME_WINDOWS {
        fact(&format!("uptime {name}"), pct(r.uptime_pct[name]));
    }
    fact(&format!("p50 {window}"), ms(r.latency_ms.p50));
    fact(&format!("p95 {window}"), ms(r.latency_ms.p95));
    fact(&format!("checks {window}"), r.checks.to_string());
    fact(
        "certificate",
        match r.tls_days_left {
            None => "–".to_owned(),
            Some(d) if d < 0 => format!("<span class=\"bad-text\">expired {} d ago</span>", -d),
            Some(d) if d < 14 => format!("<span class=\"warn-text\">{d} days left</span>"),
            Some(d) => format!("{d} days left"),
        },
    );
    out.push_str("</dl>\n");
    if let Some(e) = &r.last_error {
        let what = [
            e.error_kind.clone(),
            e.status_code.map(|c| c.to_string()),
            e.error.clone(),
        ]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" · ");
        let _ = writeln!(
            out,
            "<p class=\"muted\">Last failed check {}: {}</p>",
            when(Some(e.at)),
            esc(&what)
        );
    }
    if let Some(page) = &r.page {
        uptime_strip(out, page);
        latency_chart(out, page, window);
    }
    incidents(out, r, window);
    out.push_str("<h3>Locations</h3>\n<table class=\"locations\"><tr><th>location</th><th>state</th><th>last check</th><th>runs</th></tr>");
    for l in &r.locations {
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&l.location),
            l.state.as_str(),
            when(Some(l.last_check_at)),
            l.runs
                .as_ref()
                .map_or_else(|| "-".to_owned(), super::render::runs_text)
        );
    }
    if r.locations.is_empty() {
        out.push_str("<tr><td colspan=\"4\">never checked</td></tr>");
    }
    out.push_str("</table>\n</section>\n");
}

/// 90 bars, one per UTC day, coloured by the day's uptime.
fn uptime_strip(out: &mut String, page: &Page) {
    let n = page.days.len().max(1);
    let (checks, up) = page.days.iter().fold((0u64, 0u64), |(c, u), d| {
        (c + u64::from(d.checks), u + u64::from(d.up_checks))
    });
    let total = if checks == 0 {
        "no checks".to_owned()
    } else {
        format!("{:.3}% uptime", 100.0 * up as f64 / checks as f64)
    };
    let _ = write!(
        out,
        "<figure class=\"uptime\"><svg viewBox=\"0 0 {w} 34\" role=\"img\" aria-label=\"daily uptime, {n} days\" preserveAspectRatio=\"none\">",
        w = n * 10,
    );
    for (i, d) in page.days.iter().enumerate() {
        let label = if d.checks == 0 {
            format!("{}: no checks", d.day)
        } else {
            format!(
                "{}: {:.3}% up ({} of {} checks)",
                d.day,
                100.0 * f64::from(d.up_checks) / f64::from(d.checks),
                d.up_checks,
                d.checks
            )
        };
        let _ = write!(
            out,
            "<rect class=\"{}\" x=\"{}\" y=\"0\" width=\"8\" height=\"34\" rx=\"1.5\"><title>{}</title></rect>",
            uptime_class(d.checks, d.up_checks),
            i * 10 + 1,
            esc(&label)
        );
    }
    let _ = writeln!(
        out,
        "</svg><figcaption><span>{n} days ago</span><span>{total}</span><span>today</span></figcaption></figure>"
    );
}

/// A round top for a chart's axis: 1, 2 or 5 times a power of ten.
fn nice_ceiling(v: f64) -> f64 {
    if v <= 0.0 || !v.is_finite() {
        return 1.0;
    }
    let power = 10f64.powf(v.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * power)
        .find(|c| *c >= v)
        .unwrap_or(10.0 * power)
}

/// A latency axis label: `250 ms`, `2.5 ms`, `1.5 s`.
fn axis_label(v: f64, top: f64) -> String {
    if top >= 1000.0 {
        format!("{} s", v / 1000.0)
    } else if top < 10.0 {
        format!("{v:.1} ms")
    } else {
        format!("{v:.0} ms")
    }
}

/// Latency by hour: the phases' medians stacked as bars, p50 and p95 of
/// the whole check as lines.
fn latency_chart(out: &mut String, page: &Page, window: &str) {
    let hours = &page.hours;
    if hours.iter().all(|h| h.latency.p50.is_none()) {
        let _ = writeln!(
            out,
            "<p class=\"muted\">No successful check in the last {} to draw latency from.</p>",
            esc(window)
        );
        return;
    }
    let (width, height, left, top, bottom) = (900.0, 170.0, 52.0, 8.0, 20.0);
    let plot_h = height - top - bottom;
    let top_value = nice_ceiling(
        hours
            .iter()
            .filter_map(|h| h.latency.p95.or(h.latency.p50))
            .fold(0.0, f64::max),
    );
    let step = (width - left) / hours.len().max(1) as f64;
    let y = |v: f64| top + plot_h * (1.0 - (v / top_value).min(1.0));
    let _ = write!(
        out,
        "<figure class=\"latency\"><svg viewBox=\"0 0 {width} {height}\" role=\"img\" aria-label=\"latency by hour\">"
    );
    for i in 0..=4 {
        let v = top_value * f64::from(i) / 4.0;
        let _ = write!(
            out,
            "<line class=\"grid\" x1=\"{left}\" x2=\"{width}\" y1=\"{y:.1}\" y2=\"{y:.1}\"/>\
             <text x=\"{tx}\" y=\"{ty:.1}\" text-anchor=\"end\">{v}</text>",
            y = y(v),
            tx = left - 4.0,
            ty = y(v) + 4.0,
            v = axis_label(v, top_value),
        );
    }
    // Stacked phase medians, one bar per hour.
    for (i, h) in hours.iter().enumerate() {
        let x = left + i as f64 * step;
        let mut base = 0.0;
        let phases = [
            ("dns", h.phases_p50_ms.dns),
            ("connect", h.phases_p50_ms.connect),
            ("tls", h.phases_p50_ms.tls),
            ("ttfb", h.phases_p50_ms.ttfb),
        ];
        let mut tip = format!(
            "{}: p50 {}, p95 {}, {} checks",
            when(Some(h.hour)),
            ms(h.latency.p50),
            ms(h.latency.p95),
            h.checks
        );
        for (name, v) in phases {
            let Some(v) = v else { continue };
            let _ = write!(tip, ", {name} {}", ms(Some(v)));
            let (y0, y1) = (y(base), y(base + v));
            base += v;
            if y0 - y1 >= 0.1 {
                let _ = write!(
                    out,
                    "<rect class=\"{name}\" x=\"{x:.2}\" y=\"{y1:.2}\" width=\"{w:.2}\" height=\"{h:.2}\"/>",
                    w = (step * 0.8).max(0.5),
                    h = y0 - y1,
                );
            }
        }
        let _ = write!(
            out,
            "<rect x=\"{x:.2}\" y=\"{top}\" width=\"{step:.2}\" height=\"{plot_h}\" fill=\"transparent\"><title>{}</title></rect>",
            esc(&tip)
        );
    }
    for (class, pick) in [
        (
            "p95",
            (|h: &super::HourLatency| h.latency.p95) as fn(&super::HourLatency) -> Option<f64>,
        ),
        ("p50", |h: &super::HourLatency| h.latency.p50),
    ] {
        // A line per run of hours with values; a gap where none were up.
        let mut points = String::new();
        let flush = |points: &mut String, out: &mut String| {
            if !points.is_empty() {
                let _ = write!(
                    out,
                    "<polyline class=\"{class}\" points=\"{}\"/>",
                    points.trim_end()
                );
                points.clear();
            }
        };
        for (i, h) in hours.iter().enumerate() {
            match pick(h) {
                Some(v) => {
                    let _ = write!(points, "{:.1},{:.1} ", left + (i as f64 + 0.4) * step, y(v));
                }
                None => flush(&mut points, out),
            }
        }
        flush(&mut points, out);
    }
    let first = hours
        .first()
        .map(|h| when(Some(h.hour)))
        .unwrap_or_default();
    let last = hours.last().map(|h| when(Some(h.hour))).unwrap_or_default();
    let _ = writeln!(
        out,
        "<text x=\"{left}\" y=\"{by}\">{first}</text><text x=\"{width}\" y=\"{by}\" text-anchor=\"end\">{last}</text></svg>\
         <div class=\"legend\"><span><i class=\"p50\"></i>p50</span><span><i class=\"p95\"></i>p95</span>\
         <span><i class=\"dns\"></i>dns</span><span><i class=\"connect\"></i>connect</span>\
         <span><i class=\"tls\"></i>tls</span><span><i class=\"ttfb\"></i>ttfb (medians, stacked)</span>\
         <span>by hour, last {window}</span></div></figure>",
        by = height - 4.0,
        window = esc(window),
    );
}

fn incidents(out: &mut String, r: &SiteReport, window: &str) {
    let _ = writeln!(out, "<h3>Incidents, last {}</h3>", esc(window));
    if r.incidents.is_empty() {
        out.push_str("<p class=\"muted\">None.</p>\n");
        return;
    }
    out.push_str(
        "<table class=\"incidents\"><tr><th>down from</th><th>to</th><th>duration</th><th>error</th></tr>",
    );
    for i in &r.incidents {
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            when(Some(i.start)),
            i.end.map_or_else(
                || "<b class=\"bad-text\">ongoing</b>".to_owned(),
                |e| when(Some(e))
            ),
            duration(i.duration_s),
            esc(i.error_kind.as_deref().unwrap_or("–")),
        );
    }
    out.push_str("</table>\n");
}

/// Roughly how wide Verdana 11px draws `text`, as shields.io badges are
/// laid out.
fn text_width(text: &str) -> f64 {
    text.chars()
        .map(|c| match c {
            'i' | 'l' | 'j' | '.' | ',' | ':' | '|' | '\'' | '!' => 3.5,
            'm' | 'w' | 'M' | 'W' | '%' => 10.5,
            c if c.is_ascii_uppercase() => 7.5,
            _ => 6.6,
        })
        .sum()
}

/// A flat badge: the site's name, then its state and 30-day uptime,
/// coloured by the state.
pub fn badge(r: &SiteReport) -> String {
    let label = &r.site;
    let message = match r.uptime_pct.get("30d").copied().flatten() {
        Some(p) => format!("{} {p:.2}%", r.state.as_str()),
        None => r.state.as_str().to_owned(),
    };
    let colour = match r.state {
        SiteState::Up => "#2da44e",
        SiteState::Down => "#cf222e",
        SiteState::Pending | SiteState::Degraded | SiteState::Stale => "#bf8700",
        SiteState::Unknown | SiteState::Maintenance => "#6e7781",
    };
    let lw = (text_width(label) + 12.0).round();
    let mw = (text_width(&message) + 12.0).round();
    let w = lw + mw;
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"20\" role=\"img\" aria-label=\"{al}: {am}\">\
<title>{al}: {am} (30-day uptime)</title>\
<linearGradient id=\"s\" x2=\"0\" y2=\"100%\"><stop offset=\"0\" stop-color=\"#bbb\" stop-opacity=\".1\"/><stop offset=\"1\" stop-opacity=\".1\"/></linearGradient>\
<clipPath id=\"r\"><rect width=\"{w}\" height=\"20\" rx=\"3\" fill=\"#fff\"/></clipPath>\
<g clip-path=\"url(#r)\"><rect width=\"{lw}\" height=\"20\" fill=\"#555\"/><rect x=\"{lw}\" width=\"{mw}\" height=\"20\" fill=\"{colour}\"/><rect width=\"{w}\" height=\"20\" fill=\"url(#s)\"/></g>\
<g fill=\"#fff\" text-anchor=\"middle\" font-family=\"Verdana,Geneva,DejaVu Sans,sans-serif\" font-size=\"11\">\
<text x=\"{lx}\" y=\"15\" fill=\"#010101\" fill-opacity=\".3\">{al}</text><text x=\"{lx}\" y=\"14\">{al}</text>\
<text x=\"{mx}\" y=\"15\" fill=\"#010101\" fill-opacity=\".3\">{am}</text><text x=\"{mx}\" y=\"14\">{am}</text></g></svg>\n",
        al = esc(label),
        am = esc(&message),
        lx = lw / 2.0,
        mx = lw + mw / 2.0,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_is_escaped() {
        assert_eq!(
            esc("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }

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
}
