//! The static status page: `index.html` (a line per site; `index-2.html`
//! and on past [`SITES_PER_PART`] sites), `sites/<site>.html` (a site's
//! charts and history), `incidents.html`, `announcements.html`,
//! `style.css`, `status.json` (the JSON report, in parts past
//! [`SITES_PER_PART`]) and one badge per site, `badges/<site>.svg`. Inline
//! SVG, no script and no external request, so it reads the same from
//! `file://` and from GitHub Pages.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use askama::Template;
use time::OffsetDateTime;

use super::look::Look;
use super::render::{duration, percent, when};
use super::{HourLatency, Page, SiteReport, UPTIME_WINDOWS};
use crate::rule::SiteState;

/// Writes the page, the JSON and the badges into `dir` (made if missing),
/// and removes the files of sites no longer reported. Returns the files
/// written.
pub fn write(
    dir: &Path,
    reports: &[SiteReport],
    window: &str,
    now: OffsetDateTime,
    look: &Look,
) -> anyhow::Result<Vec<PathBuf>> {
    let mut writer = Writer::new(dir, window, now, look)?;
    for part in reports.chunks(SITES_PER_PART) {
        writer.add(part)?;
    }
    writer.finish()
}

/// The page written a part of the sites at a time: each part's site
/// pages, badges and status.json part as it comes, then the index, the
/// incidents and the announcements from what each site leaves behind
/// (its line and its incidents): 100,000 sites are never all in memory
/// with their histories.
pub struct Writer<'a> {
    dir: PathBuf,
    window: &'a str,
    now: OffsetDateTime,
    look: Look,
    files: Vec<PathBuf>,
    /// The site pages' and badges' file names written, each badge's site.
    stems: std::collections::BTreeSet<String>,
    badges: std::collections::BTreeMap<String, String>,
    /// The index pages and status.json parts written.
    parts: std::collections::BTreeSet<String>,
    /// What the index and the incidents page need of each site shown.
    lines: Vec<SiteReport>,
}

impl<'a> Writer<'a> {
    pub fn new(
        dir: &Path,
        window: &'a str,
        now: OffsetDateTime,
        look: &Look,
    ) -> anyhow::Result<Writer<'a>> {
        for folder in [dir.join("badges"), dir.join("sites")] {
            std::fs::create_dir_all(&folder)
                .with_context(|| format!("cannot create {}", folder.display()))?;
        }
        Ok(Writer {
            dir: dir.to_owned(),
            window,
            now,
            look: look.at(now),
            files: Vec::new(),
            stems: std::collections::BTreeSet::new(),
            badges: std::collections::BTreeMap::new(),
            parts: std::collections::BTreeSet::new(),
            lines: Vec::new(),
        })
    }

    /// Writes the pages, badges and status.json part of `reports` (in
    /// the order given, at most [`SITES_PER_PART`] of them).
    pub fn add(&mut self, reports: &[SiteReport]) -> anyhow::Result<()> {
        let look = &self.look;
        // The page shows neither the private sites nor the hidden URLs, in
        // any of its files.
        let shown: Vec<std::borrow::Cow<SiteReport>> = reports
            .iter()
            .filter(|r| !look.private.contains(&r.site))
            .map(|r| {
                if look.hidden_urls.contains(&r.site) {
                    let mut hidden = r.clone();
                    hidden.url = None;
                    std::borrow::Cow::Owned(hidden)
                } else {
                    std::borrow::Cow::Borrowed(r)
                }
            })
            .collect();
        let reports: Vec<&SiteReport> = shown.iter().map(|r| r.as_ref()).collect();
        if reports.is_empty() {
            return Ok(());
        }
        // Each site's file name, computed once.
        let named: Vec<(&SiteReport, String)> = reports
            .iter()
            .map(|r| (*r, crate::escape::file_stem(&r.site)))
            .collect();
        for (r, stem) in &named {
            let name = format!("{stem}.svg");
            if let Some(other) = self.badges.insert(name.clone(), r.site.clone()) {
                anyhow::bail!(
                    "the sites {:?} and {:?} would share the badge {name}: rename one",
                    other,
                    r.site
                );
            }
            self.stems.insert(format!("{stem}.html"));
        }
        // status.json: the JSON report, in parts past SITES_PER_PART sites
        // (status-2.json, ...), each a list of the same objects.
        let name = part_name("status", "json", self.parts_of("status") + 1);
        let mut json = serde_json::to_string(&reports).expect("a report serializes");
        json.push('\n');
        let path = self.dir.join(&name);
        write_aside(&path, &json)?;
        drop(json);
        self.files.push(path);
        self.parts.insert(name);
        // Each site's page and badge, written as drawn, the sites shared
        // out between the cores.
        let (pages, badges) = (self.dir.join("sites"), self.dir.join("badges"));
        let (window, now) = (self.window, self.now);
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let chunk = named.len().div_ceil(threads).max(1);
        let written: Vec<anyhow::Result<Vec<PathBuf>>> = std::thread::scope(|scope| {
            let workers: Vec<_> = named
                .chunks(chunk)
                .map(|part| {
                    let (pages, badges) = (&pages, &badges);
                    scope.spawn(move || -> anyhow::Result<Vec<PathBuf>> {
                        let mut files = Vec::with_capacity(part.len() * 2);
                        for (r, stem) in part {
                            let page = pages.join(format!("{stem}.html"));
                            write_aside(&page, &site_page(r, window, now, look))?;
                            let badge_file = badges.join(format!("{stem}.svg"));
                            write_aside(&badge_file, &badge(r))?;
                            files.push(page);
                            files.push(badge_file);
                        }
                        Ok(files)
                    })
                })
                .collect();
            workers
                .into_iter()
                .map(|w| w.join().expect("a page writer does not panic"))
                .collect()
        });
        for part in written {
            self.files.extend(part?);
        }
        self.lines.extend(reports.iter().map(|r| line(r)));
        Ok(())
    }

    fn parts_of(&self, stem: &str) -> usize {
        self.parts.iter().filter(|p| p.starts_with(stem)).count()
    }

    /// Writes the index, the incidents, the announcements and the style
    /// sheet, and removes the files of sites (and parts) no longer there.
    pub fn finish(mut self) -> anyhow::Result<Vec<PathBuf>> {
        let look = &self.look;
        for (source, name) in look.logo.iter().chain(&look.favicon) {
            let bytes = std::fs::read(source)
                .with_context(|| format!("cannot read {}", source.display()))?;
            let target = self.dir.join(name);
            write_aside_bytes(&target, &bytes)?;
            self.files.push(target);
        }
        let mut put = |path: PathBuf, text: &str| -> anyhow::Result<()> {
            write_aside(&path, text)?;
            self.files.push(path);
            Ok(())
        };
        if self.parts.is_empty() {
            put(self.dir.join("status.json"), "[]\n")?;
        }
        let lines: Vec<&SiteReport> = self.lines.iter().collect();
        put(self.dir.join("style.css"), STYLE)?;
        for (n, page) in index_pages(&lines, self.window, self.now, look)
            .iter()
            .enumerate()
        {
            let name = part_name("index", "html", n + 1);
            put(self.dir.join(&name), page)?;
            self.parts.insert(name);
        }
        put(
            self.dir.join("incidents.html"),
            &incidents(&lines, self.window, self.now, look),
        )?;
        put(
            self.dir.join("announcements.html"),
            &announcements(self.now, look),
        )?;
        remove_others(
            &self.dir.join("sites"),
            |n| n.ends_with(".html"),
            &self.stems,
        )?;
        // The badges of sites that are gone (removed, renamed, or named by
        // an older version), so nobody links to a frozen state.
        let names: std::collections::BTreeSet<String> = self.badges.into_keys().collect();
        remove_others(&self.dir.join("badges"), |n| n.ends_with(".svg"), &names)?;
        // The index pages and status.json parts of more sites before.
        remove_others(
            &self.dir,
            |n| numbered_part(n, "index-", ".html") || numbered_part(n, "status-", ".json"),
            &self.parts,
        )?;
        Ok(self.files)
    }
}

/// What the index and the incidents page keep of a site once its page is
/// written: its line (state, uptime, p50, since, why, its locations' names)
/// and its incidents, without its history.
fn line(r: &SiteReport) -> SiteReport {
    SiteReport {
        site: r.site.clone(),
        url: None,
        state: r.state,
        since: r.since,
        last_check_at: r.last_check_at,
        uptime_pct: r.uptime_pct.clone(),
        checks: r.checks,
        up_checks: r.up_checks,
        window_uptime_pct: r.window_uptime_pct,
        latency_ms: r.latency_ms.clone(),
        phases_p95_ms: super::Phases::default(),
        tls_expires_at: None,
        tls_days_left: None,
        last_error: None,
        reason: r.reason.clone(),
        incidents: if r.page.is_some() {
            Vec::new()
        } else {
            r.incidents.clone()
        },
        maintenance: Vec::new(),
        maintenance_checks: 0,
        locations: r
            .locations
            .iter()
            .map(|l| super::LocationState {
                runs: None,
                ..l.clone()
            })
            .collect(),
        page: r.page.as_ref().map(|p| Page {
            days: Vec::new(),
            hours: Vec::new(),
            incidents: p.incidents.clone(),
        }),
    }
}

/// The page's style sheet, one file every page links to.
const STYLE: &str = include_str!("templates/style.css");

/// Removes the files of `folder` that `ours` claims and `keep` does not
/// hold: the pages and badges of sites that are gone, the parts of an
/// index or a status.json that has fewer now.
fn remove_others(
    folder: &Path,
    ours: impl Fn(&str) -> bool,
    keep: &std::collections::BTreeSet<String>,
) -> anyhow::Result<()> {
    let listed =
        std::fs::read_dir(folder).with_context(|| format!("cannot list {}", folder.display()))?;
    for entry in listed.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if ours(&name) && !keep.contains(&name) {
            let path = entry.path();
            std::fs::remove_file(&path)
                .with_context(|| format!("cannot remove the old {}", path.display()))?;
        }
    }
    Ok(())
}

/// Whether `name` is `<stem>N<ext>`: a numbered part.
fn numbered_part(name: &str, stem: &str, ext: &str) -> bool {
    name.strip_prefix(stem)
        .and_then(|rest| rest.strip_suffix(ext))
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// Writes `path` aside, then renames it over the old one: a web server
/// serving the directory never sends half a page. The file aside is
/// created anew (`O_EXCL`: never an existing file or a planted symlink)
/// under a name no other run uses, in the same directory.
fn write_aside(path: &Path, text: &str) -> anyhow::Result<()> {
    write_aside_bytes(path, text.as_bytes())
}

fn write_aside_bytes(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write as _;
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let unique = uuid::Uuid::new_v4().simple().to_string();
    let aside = path.with_file_name(format!(".{name}.{}.tmp", &unique[..12]));
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&aside)
        .and_then(|mut file| file.write_all(bytes))
        .and_then(|()| std::fs::rename(&aside, path));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&aside);
        return Err(e).with_context(|| format!("cannot write {}", path.display()));
    }
    Ok(())
}

fn pct(v: Option<f64>) -> String {
    v.map_or_else(|| "–".to_owned(), percent)
}

fn ms(v: Option<f64>) -> String {
    v.map_or_else(|| "–".to_owned(), |v| format!("{v:.0} ms"))
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

/// A number in the SVG with `D` decimals, written straight into the page
/// (no string of its own per number: a page draws hundreds of thousands).
#[derive(Debug, Clone, Copy)]
struct Fixed<const D: usize>(f64);

impl<const D: usize> std::fmt::Display for Fixed<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:.*}", D, self.0)
    }
}

/// A page drawn as a file ends with a line end.
trait File: Template {
    /// The page; `what` says what it is if it cannot render, which a page
    /// of text values never fails to.
    fn file(&self, what: &str) -> String {
        let mut html = self.render().expect(what);
        html.push('\n');
        html
    }
}

impl<T: Template> File for T {}

/// What every page shares: the `[page]` settings, and the way back to the
/// output's top (`""` for index.html, `"../"` for a site's page).
struct Frame<'a> {
    version: &'static str,
    root: &'static str,
    title: &'a str,
    description: Option<&'a str>,
    /// The logo's and the favicon's file names beside index.html.
    logo: Option<&'a str>,
    favicon: Option<&'a str>,
    links: &'a [(String, String)],
    footer: Option<&'a str>,
}

impl<'a> Frame<'a> {
    fn of(look: &'a Look, root: &'static str) -> Frame<'a> {
        Frame {
            version: env!("CARGO_PKG_VERSION"),
            root,
            title: &look.title,
            description: look.description.as_deref(),
            logo: look.logo.as_ref().map(|(_, name)| name.as_str()),
            favicon: look.favicon.as_ref().map(|(_, name)| name.as_str()),
            links: &look.links,
            footer: look.footer.as_deref(),
        }
    }
}

/// The index (`page.html`): the summary, then every site on a line, in
/// its group.
#[derive(Template)]
#[template(path = "page.html")]
struct PageView<'a> {
    frame: Frame<'a>,
    heading: String,
    summary_class: &'static str,
    summary: String,
    iso: String,
    updated: String,
    window: &'a str,
    locations: String,
    /// The announcements current and upcoming.
    news: Vec<NewsView<'a>>,
    /// Whether any `[[maintenance]]` window is configured (uptime leaves
    /// them out, which the page says).
    maintenance: bool,
    groups: Vec<GroupView<'a>>,
    /// Where this page is among the index's pages, when there are several.
    parts: Option<Parts>,
}

/// An index page among several.
struct Parts {
    this: usize,
    of: usize,
    previous: Option<String>,
    next: Option<String>,
}

/// An announcement (`news.html`).
#[derive(Clone)]
struct NewsView<'a> {
    kind: &'static str,
    title: &'a str,
    /// `ongoing`, `upcoming`, `past`.
    when: &'static str,
    times: String,
    html: &'a super::announcements::Sanitized,
}

/// Every announcement, the current and upcoming ones first
/// (`announcements.html`).
#[derive(Template)]
#[template(path = "announcements.html")]
struct AnnouncementsView<'a> {
    frame: Frame<'a>,
    heading: String,
    news: Vec<NewsView<'a>>,
}

/// A group's section: its name (none for the sites of no group), its own
/// summary, a line per site.
struct GroupView<'a> {
    /// Its place among the groups.
    index: usize,
    name: Option<&'a str>,
    id: String,
    summary_class: &'static str,
    summary: String,
    /// Open unless every site of it is up.
    open: bool,
    rows: Vec<Row<'a>>,
}

/// A site's line on the index (`rows.html`).
struct Row<'a> {
    name: &'a str,
    id: String,
    state: &'static str,
    day: String,
    month: String,
    p50: String,
    since: String,
    /// Why a site that is not up is in its state.
    reason: Option<&'a str>,
}

/// A site's own page (`site_page.html`): its card, with the charts.
#[derive(Template)]
#[template(path = "site_page.html")]
struct SitePageView<'a> {
    frame: Frame<'a>,
    heading: String,
    iso: String,
    updated: String,
    window: &'a str,
    s: SiteView<'a>,
}

/// Every incident of the window (`incidents.html`).
#[derive(Template)]
#[template(path = "incidents.html")]
struct IncidentsView<'a> {
    frame: Frame<'a>,
    heading: String,
    iso: String,
    updated: String,
    /// How far back the incidents go.
    span: String,
    incidents: Vec<IncidentLine<'a>>,
}

struct IncidentLine<'a> {
    site: &'a str,
    id: String,
    row: IncidentRow,
}

/// One site's section (`site.html`).
struct SiteView<'a> {
    id: String,
    name: &'a str,
    state: &'static str,
    /// `since 2026-12-07 10:25Z · last check 2026-12-07 10:30Z`, or as
    /// much of it as is known (`never checked`).
    timeline: String,
    reason: Option<&'a str>,
    url: Option<&'a str>,
    /// Only http(s) URLs are links; any other is shown as text.
    url_is_link: bool,
    facts: Vec<Fact>,
    /// When, and what: the last failed check.
    last_failed: Option<(String, String)>,
    strip: Option<Strip>,
    chart: Chart,
    incidents: Vec<IncidentRow>,
    /// How far back they go (`90 days`, or the report window).
    incidents_span: String,
    locations: Vec<LocationRow>,
}

/// A figure under a site's name; `class` colours a worrying one.
struct Fact {
    name: String,
    value: String,
    class: Option<&'static str>,
}

struct IncidentRow {
    start: String,
    /// None while it lasts.
    end: Option<String>,
    duration: String,
    /// The first failed check's error kind (and status).
    error: String,
    /// The locations down during it.
    locations: String,
}

impl IncidentRow {
    fn of(i: &super::Incident) -> IncidentRow {
        IncidentRow {
            start: when(Some(i.start)),
            end: i.end.map(|e| when(Some(e))),
            duration: duration(i.duration_s),
            error: match (&i.error_kind, i.status_code) {
                (Some(kind), Some(code)) if kind == "http" => format!("http {code}"),
                (Some(kind), _) => kind.clone(),
                (None, _) => "–".to_owned(),
            },
            locations: if i.locations.is_empty() {
                "–".to_owned()
            } else {
                i.locations.join(", ")
            },
        }
    }
}

/// The outages a page lists for a site: those of the page's 90 days, or
/// the report window's.
fn listed_incidents(r: &SiteReport) -> &[super::Incident] {
    r.page.as_ref().map_or(&r.incidents, |p| &p.incidents)
}

/// How far back the incidents listed go.
fn incidents_span(reports: &[&SiteReport], window: &str) -> String {
    if reports.iter().any(|r| r.page.is_some()) {
        format!("{} days", super::PAGE_DAYS)
    } else {
        window.to_owned()
    }
}

struct LocationRow {
    location: String,
    state: &'static str,
    last_check: String,
    runs: String,
}

/// 90 bars, one per UTC day, coloured by the day's uptime (`strip.svg`).
struct Strip {
    width: usize,
    days: usize,
    total: String,
    bars: Vec<DayBar>,
}

struct DayBar {
    class: &'static str,
    x: usize,
    /// 8 for a day; more for days in a row without checks.
    width: usize,
    title: String,
}

/// The latency chart, or why there is none.
enum Chart {
    Drawn(LatencyChart),
    /// No successful check in the window.
    Empty,
    /// The report read no page data.
    None,
}

/// Latency by hour (`latency.svg`): the phases' medians stacked as bars,
/// p50 and p95 of the whole check as lines.
struct LatencyChart {
    width: f64,
    height: f64,
    left: f64,
    top: f64,
    plot_height: f64,
    step: Fixed<2>,
    grid: Vec<GridLine>,
    hours: Vec<HourColumn>,
    /// Each phase's bars, every hour's in one path (a rectangle each).
    phases: Vec<Line>,
    lines: Vec<Line>,
    first: String,
    last: String,
}

struct GridLine {
    y: Fixed<1>,
    label_y: Fixed<1>,
    label: String,
}

struct HourColumn {
    x: Fixed<2>,
    bars: Vec<PhaseBar>,
    tip: String,
}

struct PhaseBar {
    class: &'static str,
    y: Fixed<2>,
    height: Fixed<2>,
}

/// A polyline's points, or a path's data.
struct Line {
    class: &'static str,
    points: String,
}

/// How many sites one index page, and one part of status.json, holds:
/// 10,000 sites make an index of about 2.5 MB and a status.json of about
/// 7 MB, far under the 20 MB a static host takes with ease.
pub const SITES_PER_PART: usize = 10_000;

/// The file of the `n`th part (from 1): `index.html`, `index-2.html`, ...
pub fn part_name(stem: &str, ext: &str, n: usize) -> String {
    if n <= 1 {
        format!("{stem}.{ext}")
    } else {
        format!("{stem}-{n}.{ext}")
    }
}

/// The index's pages: the sites in the order the index shows them
/// (groups with problems first, problems first within each), cut every
/// [`SITES_PER_PART`] lines; each page has the whole banner and each
/// group's whole summary, and links to the others.
pub fn index_pages(
    reports: &[&SiteReport],
    window: &str,
    now: OffsetDateTime,
    look: &Look,
) -> Vec<String> {
    let mut sorted: Vec<&SiteReport> = reports.to_vec();
    sorted.sort_by(|a, b| (a.state.severity(), &a.site).cmp(&(b.state.severity(), &b.site)));
    let (summary_class, banner) = summary(&sorted);
    let mut locations: Vec<&str> = reports
        .iter()
        .flat_map(|r| r.locations.iter().map(|l| l.location.as_str()))
        .collect();
    locations.sort_unstable();
    locations.dedup();
    let mut by_group: std::collections::BTreeMap<Option<&str>, Vec<&SiteReport>> =
        std::collections::BTreeMap::new();
    for r in &sorted {
        by_group
            .entry(look.groups.get(&r.site).map(String::as_str))
            .or_default()
            .push(r);
    }
    let mut groups: Vec<(Option<&str>, &'static str, String, Vec<&SiteReport>)> = by_group
        .into_iter()
        .map(|(name, members)| {
            let (class, summary) = summary(&members);
            (name, class, summary, members)
        })
        .collect();
    // Groups with problems first; the sites of no group last.
    let rank = |class: &str| match class {
        "bad" => 0,
        "warn" => 1,
        _ => 2,
    };
    groups.sort_by(|a, b| (a.0.is_none(), rank(a.1), a.0).cmp(&(b.0.is_none(), rank(b.1), b.0)));
    // The lines in order, each with its group, cut into pages.
    let lines: Vec<(usize, &SiteReport)> = groups
        .iter()
        .enumerate()
        .flat_map(|(g, (_, _, _, members))| members.iter().map(move |r| (g, *r)))
        .collect();
    let pages = lines.len().div_ceil(SITES_PER_PART).max(1);
    let locations = if locations.is_empty() {
        "no location yet".to_owned()
    } else {
        locations.join(", ")
    };
    let news = news(look, now, false);
    (0..pages)
        .map(|page| {
            let chunk = lines
                .iter()
                .skip(page * SITES_PER_PART)
                .take(SITES_PER_PART);
            let mut views: Vec<GroupView> = Vec::new();
            for (g, r) in chunk {
                let (name, class, summary, _) = &groups[*g];
                if views.last().is_none_or(|v| v.index != *g) {
                    views.push(GroupView {
                        index: *g,
                        name: *name,
                        id: name.map_or_else(|| "other".to_owned(), crate::escape::file_stem),
                        summary_class: class,
                        open: *class != "ok",
                        summary: summary.clone(),
                        rows: Vec::new(),
                    });
                }
                if let Some(v) = views.last_mut() {
                    v.rows.push(row(r));
                }
            }
            PageView {
                frame: Frame::of(look, ""),
                heading: format!("{}: {banner}", look.title),
                summary_class,
                summary: banner.clone(),
                iso: crate::message::rfc3339_ms::format(&now),
                updated: when(Some(now)),
                window,
                locations: locations.clone(),
                news: if page == 0 { news.clone() } else { Vec::new() },
                maintenance: !look.maintenance.is_empty(),
                groups: views,
                parts: (pages > 1).then(|| Parts {
                    this: page + 1,
                    of: pages,
                    previous: (page > 0).then(|| part_name("index", "html", page)),
                    next: (page + 1 < pages).then(|| part_name("index", "html", page + 2)),
                }),
            }
            .file("the page renders: its values are text")
        })
        .collect()
}

/// The announcements as the page lists them: the current and upcoming
/// ones (the past too with `all`), current first, then upcoming, then past,
/// the newest first within each.
fn news(look: &Look, now: OffsetDateTime, all: bool) -> Vec<NewsView<'_>> {
    use super::announcements::When;
    let mut entries: Vec<_> = look
        .announcements
        .iter()
        .map(|a| (a.when(now), a))
        .filter(|(w, _)| all || *w != When::Past)
        .collect();
    entries.sort_by(|(wa, a), (wb, b)| wa.cmp(wb).then(b.start.cmp(&a.start)));
    entries
        .into_iter()
        .map(|(w, a)| NewsView {
            kind: a.kind.as_str(),
            title: &a.title,
            when: match w {
                When::Current => "now",
                When::Upcoming => "upcoming",
                When::Past => "past",
            },
            times: match a.end {
                Some(end) => format!("{} to {}", when(Some(a.start)), when(Some(end))),
                None => format!("from {}", when(Some(a.start))),
            },
            html: &a.html,
        })
        .collect()
}

/// Every announcement, on a page of its own.
pub fn announcements(now: OffsetDateTime, look: &Look) -> String {
    AnnouncementsView {
        frame: Frame::of(look, ""),
        heading: format!("Announcements: {}", look.title),
        news: news(look, now, true),
    }
    .file("the announcements render: their values are text")
}

/// A site's line on the index.
fn row(r: &SiteReport) -> Row<'_> {
    Row {
        name: &r.site,
        id: crate::escape::file_stem(&r.site),
        state: r.state.as_str(),
        day: pct(r.uptime_pct.get("24h").copied().flatten()),
        month: pct(r.uptime_pct.get("30d").copied().flatten()),
        p50: ms(r.latency_ms.p50),
        since: r.since.map_or_else(|| "–".to_owned(), |t| when(Some(t))),
        reason: r.reason.as_deref(),
    }
}

/// A site's own page.
pub fn site_page(r: &SiteReport, window: &str, now: OffsetDateTime, look: &Look) -> String {
    SitePageView {
        frame: Frame::of(look, "../"),
        heading: format!("{}: {}", r.site, look.title),
        iso: crate::message::rfc3339_ms::format(&now),
        updated: when(Some(now)),
        window,
        s: site(r, window),
    }
    .file("a site's page renders: its values are text")
}

/// Every incident of the window, newest first.
pub fn incidents(
    reports: &[&SiteReport],
    window: &str,
    now: OffsetDateTime,
    look: &Look,
) -> String {
    let mut all: Vec<(&SiteReport, &super::Incident)> = reports
        .iter()
        .flat_map(|r| listed_incidents(r).iter().map(move |i| (*r, i)))
        .collect();
    all.sort_by(|a, b| {
        b.1.start
            .cmp(&a.1.start)
            .then_with(|| a.0.site.cmp(&b.0.site))
    });
    IncidentsView {
        frame: Frame::of(look, ""),
        heading: format!("Incidents: {}", look.title),
        iso: crate::message::rfc3339_ms::format(&now),
        updated: when(Some(now)),
        span: incidents_span(reports, window),
        incidents: all
            .into_iter()
            .map(|(r, i)| IncidentLine {
                site: &r.site,
                id: crate::escape::file_stem(&r.site),
                row: IncidentRow::of(i),
            })
            .collect(),
    }
    .file("the incidents page renders: its values are text")
}

/// The banner: its colour class and its words.
fn summary(reports: &[&SiteReport]) -> (&'static str, String) {
    let count = |s: SiteState| reports.iter().filter(|r| r.state == s).count();
    let (down, troubled) = (
        count(SiteState::Down),
        count(SiteState::Pending) + count(SiteState::Degraded) + count(SiteState::Stale),
    );
    let n = reports.len();
    if reports.is_empty() {
        ("warn", "No site has been checked yet".to_owned())
    } else if down > 0 {
        ("bad", format!("{down} of {n} sites down"))
    } else if troubled > 0 {
        (
            "warn",
            format!("{troubled} of {n} sites failing, degraded or stale"),
        )
    } else if count(SiteState::Up) == n {
        ("ok", format!("All {n} sites up"))
    } else {
        ("warn", format!("{n} sites, some not checked yet"))
    }
}

fn site<'a>(r: &'a SiteReport, window: &str) -> SiteView<'a> {
    SiteView {
        id: crate::escape::file_stem(&r.site),
        name: &r.site,
        state: r.state.as_str(),
        timeline: match (r.since, r.last_check_at) {
            (_, None) => "never checked".to_owned(),
            (None, Some(last)) => format!("last check {}", when(Some(last))),
            (Some(since), Some(last)) => {
                format!(
                    "since {} · last check {}",
                    when(Some(since)),
                    when(Some(last))
                )
            }
        },
        reason: r.reason.as_deref(),
        url: r.url.as_deref(),
        url_is_link: r
            .url
            .as_deref()
            .is_some_and(|u| u.starts_with("http://") || u.starts_with("https://")),
        facts: facts(r, window),
        last_failed: r.last_error.as_ref().map(|e| {
            let what = [
                e.error_kind.clone(),
                e.status_code.map(|c| c.to_string()),
                e.error.clone(),
            ];
            let what: Vec<String> = what.into_iter().flatten().collect();
            (when(Some(e.at)), what.join(" · "))
        }),
        strip: r.page.as_ref().map(strip),
        chart: match &r.page {
            None => Chart::None,
            Some(page) => latency_chart(page).map_or(Chart::Empty, Chart::Drawn),
        },
        incidents: listed_incidents(r).iter().map(IncidentRow::of).collect(),
        incidents_span: incidents_span(&[r], window),
        locations: r
            .locations
            .iter()
            .map(|l| LocationRow {
                location: l.location.clone(),
                state: l.state.as_str(),
                last_check: when(Some(l.last_check_at)),
                runs: l
                    .runs
                    .as_ref()
                    .map_or_else(|| "-".to_owned(), super::render::runs_text),
            })
            .collect(),
    }
}

/// Uptime per window, latency, checks and the certificate.
fn facts(r: &SiteReport, window: &str) -> Vec<Fact> {
    let fact = |name: String, value: String| Fact {
        name,
        value,
        class: None,
    };
    let mut facts: Vec<Fact> = UPTIME_WINDOWS
        .iter()
        .map(|(name, _)| fact(format!("uptime {name}"), pct(r.uptime_pct[name])))
        .collect();
    facts.push(fact(format!("p50 {window}"), ms(r.latency_ms.p50)));
    facts.push(fact(format!("p95 {window}"), ms(r.latency_ms.p95)));
    facts.push(fact(format!("checks {window}"), r.checks.to_string()));
    if !r.maintenance.is_empty() {
        let total: f64 = r.maintenance.iter().map(|m| m.duration_s).sum();
        facts.push(fact(
            format!("maintenance {window}"),
            format!(
                "{}, {} checks left out of uptime",
                super::render::duration(total),
                r.maintenance_checks
            ),
        ));
    }
    let (value, class) = match r.tls_days_left {
        None => ("–".to_owned(), None),
        Some(d) if d < 0 => (format!("expired {} d ago", -d), Some("bad-text")),
        Some(d) if d < 14 => (format!("{d} days left"), Some("warn-text")),
        Some(d) => (format!("{d} days left"), None),
    };
    facts.push(Fact {
        name: "certificate".to_owned(),
        value,
        class,
    });
    facts
}

fn strip(page: &Page) -> Strip {
    let n = page.days.len().max(1);
    let (checks, up) = page.days.iter().fold((0u64, 0u64), |(c, u), d| {
        (c + u64::from(d.checks), u + u64::from(d.up_checks))
    });
    let total = if checks == 0 {
        "no checks".to_owned()
    } else {
        format!("{} uptime", percent(100.0 * up as f64 / checks as f64))
    };
    // A bar per day; the days in a row without checks, one bar.
    let mut bars: Vec<DayBar> = Vec::new();
    let mut first_empty: Option<time::Date> = None;
    for (i, d) in page.days.iter().enumerate() {
        if d.checks == 0 {
            let since = *first_empty.get_or_insert(d.day);
            if since != d.day
                && let Some(last) = bars.last_mut()
            {
                last.width += 10;
                last.title = format!("{since} to {}: no checks", d.day);
                continue;
            }
            bars.push(DayBar {
                class: "none",
                x: i * 10 + 1,
                width: 8,
                title: format!("{}: no checks", d.day),
            });
            continue;
        }
        first_empty = None;
        bars.push(DayBar {
            class: uptime_class(d.checks, d.up_checks),
            x: i * 10 + 1,
            width: 8,
            title: format!(
                "{}: {} up ({} of {} checks)",
                d.day,
                percent(100.0 * f64::from(d.up_checks) / f64::from(d.checks)),
                d.up_checks,
                d.checks
            ),
        });
    }
    Strip {
        width: n * 10,
        days: n,
        total,
        bars,
    }
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

/// A latency axis label, the gridline's value exactly (a quarter of a
/// round top has at most two more decimals): `250 ms`, `3.75 ms`, `7.5
/// ms`, `1.25 s`.
fn axis_label(v: f64, top: f64) -> String {
    let exact = |x: f64| (x * 1000.0).round() / 1000.0;
    if top >= 1000.0 {
        format!("{} s", exact(v / 1000.0))
    } else {
        format!("{} ms", exact(v))
    }
}

/// The chart laid out, or None when no hour has a successful check.
fn latency_chart(page: &Page) -> Option<LatencyChart> {
    let hours = &page.hours;
    if hours.iter().all(|h| h.latency.p50.is_none()) {
        return None;
    }
    let (width, height, left, top, bottom) = (900.0, 170.0, 52.0, 8.0, 20.0);
    let plot_height = height - top - bottom;
    let top_value = nice_ceiling(
        hours
            .iter()
            .filter_map(|h| h.latency.p95.or(h.latency.p50))
            .fold(0.0, f64::max),
    );
    let step = (width - left) / hours.len().max(1) as f64;
    let y = |v: f64| top + plot_height * (1.0 - (v / top_value).min(1.0));
    let grid = (0..=4)
        .map(|i| {
            let v = top_value * f64::from(i) / 4.0;
            GridLine {
                y: Fixed(y(v)),
                label_y: Fixed(y(v) + 4.0),
                label: axis_label(v, top_value),
            }
        })
        .collect();
    let columns: Vec<HourColumn> = hours
        .iter()
        .enumerate()
        .map(|(i, h)| hour_column(h, left + i as f64 * step, &y))
        .collect();
    let bar_width = (step * 0.8).max(0.5);
    let phases = ["dns", "connect", "tls", "ttfb"]
        .into_iter()
        .map(|class| Line {
            class,
            points: columns
                .iter()
                .flat_map(|c| {
                    c.bars.iter().filter(|b| b.class == class).map(move |b| {
                        format!(
                            "M{:.1} {:.1}h{bar_width:.1}v{:.1}h-{bar_width:.1}z",
                            c.x.0, b.y.0, b.height.0
                        )
                    })
                })
                .collect(),
        })
        .filter(|l| !l.points.is_empty())
        .collect();
    let lines = [
        (
            "p95",
            (|h: &HourLatency| h.latency.p95) as fn(&HourLatency) -> Option<f64>,
        ),
        ("p50", |h: &HourLatency| h.latency.p50),
    ]
    .into_iter()
    .flat_map(|(class, pick)| {
        // A line per run of hours with values; a gap where none were up.
        let points: Vec<Option<String>> = hours
            .iter()
            .enumerate()
            .map(|(i, h)| {
                pick(h).map(|v| format!("{:.1},{:.1}", left + (i as f64 + 0.4) * step, y(v)))
            })
            .collect();
        points
            .split(Option::is_none)
            .filter(|run| !run.is_empty())
            .map(|run| Line {
                class,
                points: run.iter().flatten().cloned().collect::<Vec<_>>().join(" "),
            })
            .collect::<Vec<_>>()
    })
    .collect();
    let at = |h: Option<&HourLatency>| h.map(|h| when(Some(h.hour))).unwrap_or_default();
    Some(LatencyChart {
        width,
        height,
        left,
        top,
        plot_height,
        step: Fixed(step),
        grid,
        hours: columns,
        phases,
        lines,
        first: at(hours.first()),
        last: at(hours.last()),
    })
}

/// An hour's stacked phase medians and its tooltip.
fn hour_column(h: &HourLatency, x: f64, y: &impl Fn(f64) -> f64) -> HourColumn {
    let mut tip = format!(
        "{}: p50 {}, p95 {}, {} checks",
        when(Some(h.hour)),
        ms(h.latency.p50),
        ms(h.latency.p95),
        h.checks
    );
    let mut bars = Vec::new();
    let mut base = 0.0;
    let phases = [
        ("dns", h.phases_p50_ms.dns),
        ("connect", h.phases_p50_ms.connect),
        ("tls", h.phases_p50_ms.tls),
        ("ttfb", h.phases_p50_ms.ttfb),
    ];
    for (class, v) in phases {
        let Some(v) = v else { continue };
        tip.push_str(&format!(", {class} {}", ms(Some(v))));
        let (y0, y1) = (y(base), y(base + v));
        base += v;
        if y0 - y1 >= 0.1 {
            bars.push(PhaseBar {
                class,
                y: Fixed(y1),
                height: Fixed(y0 - y1),
            });
        }
    }
    HourColumn {
        x: Fixed(x),
        bars,
        tip,
    }
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

/// A badge as `badge.svg` draws it.
#[derive(Template)]
#[template(path = "badge.svg")]
struct BadgeView<'a> {
    label: &'a str,
    message: String,
    colour: &'static str,
    label_width: f64,
    message_width: f64,
    width: f64,
}

/// A flat badge: the site's name, then its state and 30-day uptime,
/// coloured by the state.
pub fn badge(r: &SiteReport) -> String {
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
    let label_width = (text_width(&r.site) + 12.0).round();
    let message_width = (text_width(&message) + 12.0).round();
    let mut svg = BadgeView {
        label: &r.site,
        message,
        colour,
        label_width,
        message_width,
        width: label_width + message_width,
    }
    .render()
    .expect("a badge renders: its values are text");
    svg.push('\n');
    svg
}

#[cfg(test)]
#[path = "html_tests.rs"]
mod tests;
