//! The report's computation, pure: tallies merged over windows, outages
//! placed to the check by the state rule, and each site's report.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use time::OffsetDateTime;

use crate::history::rollup::{self, Tally};
use crate::history::sketch::{Sketch, SketchSum};
use crate::rule::{self, Period, Quorum, Rule, Seen, Streak};

use super::model::*;
use crate::alert::policy::Span;
use crate::rule::SiteState;

pub(super) const HOUR: i64 = 3600;

pub(super) const DAY: i64 = 86_400;

pub(super) fn at(seconds: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(seconds).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

pub(super) fn at_ms(ms: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// The first day (Unix seconds) of the page's history: [`PAGE_DAYS`] UTC
/// days, today the last.
pub(super) fn page_start(now: OffsetDateTime) -> i64 {
    rollup::hour_of(now).div_euclid(DAY) * DAY - (PAGE_DAYS - 1) * DAY
}

/// The first hour (Unix seconds) of a window of `hours` ending with the
/// hour of `now`.
pub(super) fn window_start(now: OffsetDateTime, hours: i64) -> i64 {
    rollup::hour_of(now) - (hours - 1) * HOUR
}

pub(super) fn window_hours(window: Duration) -> i64 {
    (window.as_secs() as i64).div_euclid(HOUR).max(1)
}

/// One site's rollup tallies, every location together: the start of the
/// day or hour (Unix seconds) and what it holds.
#[derive(Default)]
pub(super) struct SiteTallies {
    /// Counts only: the daily sketches inside the report window are summed
    /// as they are read, into `daily_window`.
    pub(super) daily: Vec<(i64, Tally)>,
    pub(super) hourly: Vec<(i64, Tally)>,
    /// From the chunks not folded yet.
    pub(super) open: Vec<(i64, Tally)>,
    /// The sum of the daily sketches of the report window's whole days
    /// before today, every location together.
    pub(super) daily_window: Option<[Sketch; 5]>,
    /// The checks made in maintenance, left out of every count: per hour
    /// (Unix seconds), checks and up checks.
    pub(super) maintenance: Vec<(i64, u32, u32)>,
}

impl SiteTallies {
    /// What the site adds up to from the hour `start` on; `start` is the
    /// report window's, the only one whose sketches are read.
    pub(super) fn sum(&self, start: i64, now: OffsetDateTime) -> Tally {
        let parts: Vec<&Tally> = self.from(start, now).collect();
        let mut total = Tally::sum(parts.iter().copied());
        let (checks, up) = self.in_maintenance(start, now);
        total.checks = total.checks.saturating_sub(checks);
        total.up_checks = total.up_checks.saturating_sub(up);
        if let Some([latency, dns, connect, tls, ttfb]) = &self.daily_window {
            total.latency.merge(latency);
            total.dns.merge(dns);
            total.connect.merge(connect);
            total.tls.merge(tls);
            total.ttfb.merge(ttfb);
        }
        total
    }

    /// The checks and up checks from the hour `start` on (no sketches).
    pub(super) fn count(&self, start: i64, now: OffsetDateTime) -> (u64, u64) {
        let (checks, up) = self.from(start, now).fold((0, 0), |(c, u), t| {
            (c + u64::from(t.checks), u + u64::from(t.up_checks))
        });
        let (left_out, left_out_up) = self.in_maintenance(start, now);
        (
            checks.saturating_sub(u64::from(left_out)),
            up.saturating_sub(u64::from(left_out_up)),
        )
    }

    /// The checks and up checks made in maintenance from the hour `start`
    /// to the report's clock.
    pub(super) fn in_maintenance(&self, start: i64, now: OffsetDateTime) -> (u32, u32) {
        let last = rollup::hour_of(now);
        self.maintenance
            .iter()
            .filter(|(hour, _, _)| *hour >= start && *hour <= last)
            .fold((0, 0), |(c, u), (_, checks, up)| {
                (c.saturating_add(*checks), u.saturating_add(*up))
            })
    }

    /// The tallies that make up the time from the hour `start` on: daily
    /// ones for whole days before today, hourly ones for the rest, and the
    /// chunks not folded yet.
    pub(super) fn from(&self, start: i64, now: OffsetDateTime) -> impl Iterator<Item = &Tally> {
        let today = rollup::hour_of(now).div_euclid(DAY) * DAY;
        let first_full_day = start.div_euclid(DAY) * DAY + if start % DAY == 0 { 0 } else { DAY };
        let days = self
            .daily
            .iter()
            .filter(move |(day, _)| *day >= first_full_day && *day < today);
        // Nothing after the report's clock: a period in the past ends there.
        let last = rollup::hour_of(now);
        let hours = self.hourly.iter().filter(move |(hour, _)| {
            *hour >= start && *hour <= last && (*hour < first_full_day || *hour >= today)
        });
        let open = self
            .open
            .iter()
            .filter(move |(hour, _)| *hour >= start && *hour <= last);
        days.chain(hours).chain(open).map(|(_, t)| t)
    }

    /// Each day's and each hour's tallies, every location together, as
    /// [`SiteTallies::sum`] counts them: daily rollups for the days before
    /// today, hourly ones for today, and the chunks not folded yet.
    pub(super) fn page(&self, report_from: i64, now: OffsetDateTime) -> Page {
        let this_hour = rollup::hour_of(now);
        let today = this_hour.div_euclid(DAY) * DAY;
        let first_day = today - (PAGE_DAYS - 1) * DAY;
        let mut days: BTreeMap<i64, Tally> = BTreeMap::new();
        let mut hours: BTreeMap<i64, Tally> = BTreeMap::new();
        for (day, t) in &self.daily {
            if *day >= first_day && *day < today {
                days.entry(*day).or_default().merge(t);
            }
        }
        for (hour, t) in self.hourly.iter().chain(&self.open) {
            if *hour >= report_from && *hour <= this_hour {
                hours.entry(*hour).or_default().merge(t);
            }
        }
        for (hour, t) in &self.hourly {
            let day = hour.div_euclid(DAY) * DAY;
            if day == today {
                days.entry(day).or_default().merge(t);
            }
        }
        for (hour, t) in &self.open {
            let day = hour.div_euclid(DAY) * DAY;
            if day >= first_day {
                days.entry(day).or_default().merge(t);
            }
        }
        for &(hour, checks, up) in &self.maintenance {
            let left_out = |t: &mut Tally| {
                t.checks = t.checks.saturating_sub(checks);
                t.up_checks = t.up_checks.saturating_sub(up);
            };
            if hour > this_hour {
                continue;
            }
            if let Some(t) = days.get_mut(&(hour.div_euclid(DAY) * DAY)) {
                left_out(t);
            }
            if let Some(t) = hours.get_mut(&hour) {
                left_out(t);
            }
        }
        let days = (0..PAGE_DAYS)
            .map(|i| {
                let day = first_day + i * DAY;
                let t = days.remove(&day).unwrap_or_default();
                DayUptime {
                    day: at(day).date(),
                    checks: t.checks,
                    up_checks: t.up_checks,
                }
            })
            .collect();
        let hours = (report_from..=this_hour)
            .step_by(HOUR as usize)
            .map(|hour| {
                let t = hours.remove(&hour).unwrap_or_default();
                HourLatency {
                    hour: at(hour),
                    checks: t.checks,
                    up_checks: t.up_checks,
                    latency: Percentiles {
                        p50: t.latency.quantile(0.5),
                        p95: t.latency.quantile(0.95),
                        p99: t.latency.quantile(0.99),
                    },
                    phases_p50_ms: Phases {
                        dns: t.dns.quantile(0.5),
                        connect: t.connect.quantile(0.5),
                        tls: t.tls.quantile(0.5),
                        ttfb: t.ttfb.quantile(0.5),
                    },
                }
            })
            .collect();
        Page {
            days,
            hours,
            incidents: Vec::new(),
        }
    }

    /// The latest certificate seen: (when, in Unix ms; expiry, in Unix s).
    pub(super) fn tls_seen(&self) -> Option<(i64, i64)> {
        self.daily
            .iter()
            .chain(&self.hourly)
            .chain(&self.open)
            .filter_map(|(_, t)| t.tls_seen)
            .max()
    }
}

/// Overlapping or touching ranges joined, in order.
pub(super) fn merge_ranges(mut ranges: Vec<(i64, i64)>) -> Vec<(i64, i64)> {
    ranges.sort_unstable();
    let mut merged: Vec<(i64, i64)> = Vec::new();
    for (lo, hi) in ranges {
        match merged.last_mut() {
            Some(last) if lo <= last.1 => last.1 = last.1.max(hi),
            _ => merged.push((lo, hi)),
        }
    }
    merged
}

/// `ranges` without what `minus` covers.
pub(super) fn subtract_ranges(ranges: &[(i64, i64)], minus: &[(i64, i64)]) -> Vec<(i64, i64)> {
    let mut out = Vec::new();
    for &(mut lo, hi) in ranges {
        for &(mlo, mhi) in minus {
            if mhi <= lo || mlo >= hi {
                continue;
            }
            if mlo > lo {
                out.push((lo, mlo));
            }
            lo = lo.max(mhi);
        }
        if lo < hi {
            out.push((lo, hi));
        }
    }
    out
}

/// What to read to leave maintenance out, for sites that share the same
/// maintenance: the whole hours (from the rollups and the chunks not
/// folded yet) and the parts of hours (from the checks themselves).
#[derive(Debug, Default, PartialEq)]
pub(super) struct MaintenanceReads {
    pub(super) sites: Vec<String>,
    /// Ranges of whole hours, `[lo, hi)` in Unix seconds.
    pub(super) hours: Vec<(i64, i64)>,
    /// Parts of an hour, each inside one.
    pub(super) parts: Vec<(OffsetDateTime, OffsetDateTime)>,
}

/// The reads that leave out `sites`' maintenance in `[from, now]`, one per
/// set of sites that share the same windows.
pub(super) fn maintenance_reads(
    config: &crate::alert::policy::Config,
    sites: &BTreeSet<String>,
    from: i64,
    now: OffsetDateTime,
) -> Vec<MaintenanceReads> {
    if config.maintenance().is_empty() {
        return Vec::new();
    }
    let mut shared: BTreeMap<Vec<Span>, Vec<String>> = BTreeMap::new();
    for site in sites {
        // The checks at the report's clock count, as in every window (one
        // microsecond: what PostgreSQL keeps).
        let spans = config.maintenance_of(site, at(from), now + time::Duration::microseconds(1));
        if !spans.is_empty() {
            shared.entry(spans).or_default().push(site.clone());
        }
    }
    let mut out = Vec::new();
    for (spans, sites) in shared {
        let mut read = MaintenanceReads {
            sites,
            ..MaintenanceReads::default()
        };
        let mut whole = Vec::new();
        for Span { start, end } in spans {
            let mut hour = rollup::hour_of(start);
            while at(hour) < end {
                let (lo, hi) = (start.max(at(hour)), end.min(at(hour + HOUR)));
                if lo == at(hour) && hi == at(hour + HOUR) {
                    whole.push((hour, hour + HOUR));
                } else {
                    read.parts.push((lo, hi));
                }
                hour += HOUR;
            }
        }
        read.hours = merge_ranges(whole);
        out.push(read);
    }
    out
}

/// The rollup tallies read, per site, and the (site, location) pairs they
/// came from.
#[derive(Default)]
pub(super) struct Tallies {
    pub(super) sites: HashMap<String, SiteTallies>,
    pub(super) pairs: BTreeSet<(String, String)>,
    /// Pairs count from here (Unix seconds): the page reads further back
    /// than the longest window but reports on the same sites.
    pub(super) pairs_from: i64,
}

impl Tallies {
    pub(super) fn add(
        &mut self,
        (site, location, start, tally): (String, String, i64, Tally),
        into: fn(&mut SiteTallies) -> &mut Vec<(i64, Tally)>,
    ) {
        if start >= self.pairs_from {
            self.pairs.insert((site.clone(), location));
        }
        into(self.sites.entry(site).or_default()).push((start, tally));
    }
}

/// The report's time spans (Unix seconds), from its clock and window.
pub(super) struct Spans {
    pub(super) now: OffsetDateTime,
    /// The start of the longest window (the uptime windows and the report's).
    pub(super) from: i64,
    /// The first day read (the page reads 90 days).
    pub(super) from_day: i64,
    /// Today (UTC), by the report's clock.
    pub(super) today: i64,
    /// The start of the report's own window.
    pub(super) report_start: i64,
}

impl Spans {
    pub(super) fn of(options: &Options) -> Spans {
        let now = options.now;
        let report_hours = window_hours(options.window);
        let longest = UPTIME_WINDOWS
            .iter()
            .map(|(_, h)| *h as i64)
            .chain([report_hours])
            .max()
            .unwrap_or(report_hours);
        let from = window_start(now, longest);
        let today = rollup::hour_of(now).div_euclid(DAY) * DAY;
        let mut from_day = from.div_euclid(DAY) * DAY;
        if options.page {
            from_day = from_day.min(today - (PAGE_DAYS - 1) * DAY);
        }
        Spans {
            now,
            from,
            from_day,
            today,
            report_start: window_start(now, report_hours),
        }
    }
}

/// Where the hourly rollups serve and whole days do not: with sketches,
/// today and the report window's first, partial day (the page: all of the
/// window); counts alone, the uptime windows' first days. As the query
/// takes them: starts, ends and whether sketches are read.
pub(super) fn hourly_ranges(
    spans: &Spans,
    page: bool,
) -> (Vec<OffsetDateTime>, Vec<OffsetDateTime>, Vec<bool>) {
    let (today, report_start) = (spans.today, spans.report_start);
    let mut full = vec![
        (today, today + DAY),
        (report_start, report_start.div_euclid(DAY) * DAY + DAY),
    ];
    if page {
        full.push((report_start, today + DAY));
    }
    let full = merge_ranges(full);
    let counts: Vec<(i64, i64)> = UPTIME_WINDOWS
        .iter()
        .map(|(_, h)| {
            let start = window_start(spans.now, *h as i64);
            (start, start.div_euclid(DAY) * DAY + DAY)
        })
        .collect();
    let counts = subtract_ranges(&merge_ranges(counts), &full);
    let (mut los, mut his, mut sketched) = (Vec::new(), Vec::new(), Vec::new());
    for (ranges, with_sketches) in [(&full, true), (&counts, false)] {
        for (lo, hi) in ranges {
            los.push(at(*lo));
            his.push(at(*hi));
            sketched.push(with_sketches);
        }
    }
    (los, his, sketched)
}

/// The daily rollups' rows, and the report window's sketches summed per
/// site.
pub(super) type Daily = (
    Vec<(String, String, i64, Tally)>,
    HashMap<String, [SketchSum; 5]>,
);

impl Tallies {
    /// Every tally the report counts: the chunks not folded yet, the daily
    /// rows and the window's daily sketches, the hourly rows.
    pub(super) fn assemble(
        spans: &Spans,
        open: &rollup::Rollup,
        (daily, window): Daily,
        hourly: Vec<(String, String, i64, Tally)>,
    ) -> Tallies {
        let mut tallies = Tallies {
            pairs_from: spans.from.div_euclid(DAY) * DAY,
            ..Tallies::default()
        };
        for ((site, location, hour), t) in &open.tallies {
            tallies.add((site.clone(), location.clone(), *hour, t.clone()), |s| {
                &mut s.open
            });
        }
        for row in daily {
            tallies.add(row, |s| &mut s.daily);
        }
        for (site, sums) in window {
            tallies.sites.entry(site).or_default().daily_window = Some(sums.map(|d| d.sketch()));
        }
        for row in hourly {
            tallies.add(row, |s| &mut s.hourly);
        }
        tallies
    }
}

/// The hours with failed checks among the chunks not folded yet.
pub(super) fn open_failed_hours(open: &rollup::Rollup) -> Vec<FailedHour> {
    open.tallies
        .iter()
        .filter(|(_, t)| t.up_checks < t.checks)
        .map(|((site, location, hour), t)| FailedHour {
            site: site.clone(),
            location: location.clone(),
            hour: *hour,
            failed: t.checks - t.up_checks,
            before: None,
        })
        .collect()
}

/// A location's hour that holds failed checks.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct FailedHour {
    pub(super) site: String,
    pub(super) location: String,
    pub(super) hour: i64,
    pub(super) failed: u32,
    /// The location's latest hour before it with any check, and its up
    /// checks; `None` when unknown (an hour from a chunk not folded yet).
    pub(super) before: Option<(i64, u32)>,
}

/// Which failed hours can hold a down period. A location's failed hours
/// form a stretch unless an hour between them had checks, all up, at least
/// `success_threshold` of them (a recovery, whatever came before). A period
/// needs `failure_threshold` failed checks in a row, so a stretch with
/// fewer failures (a blip) holds none and need not be read, unless it may
/// still be going on (its last hour within `stale_after` of `now`): then
/// the site may be pending, and its streak is read. Each site's rule is
/// `rule_of`'s. Also returns each site's latest failed hour.
pub(super) fn hours_to_read(
    mut failed: Vec<FailedHour>,
    rule_of: &dyn Fn(&str) -> Rule,
    now: OffsetDateTime,
) -> (BTreeMap<String, BTreeSet<i64>>, BTreeMap<String, i64>) {
    failed.sort_by(|a, b| (&a.site, &a.location, a.hour).cmp(&(&b.site, &b.location, b.hour)));
    let mut out: BTreeMap<String, BTreeSet<i64>> = BTreeMap::new();
    let mut latest: BTreeMap<String, i64> = BTreeMap::new();
    let mut stretch: Vec<i64> = Vec::new();
    let mut total = 0u32;
    let this_hour = rollup::hour_of(now);
    let mut keep = |site: &str, stretch: &mut Vec<i64>, total: u32, rule: &Rule| {
        let recent = stretch.last().is_some_and(|last| {
            let stale = rule.stale_after.as_secs().min(i64::MAX as u64) as i64;
            *last >= this_hour.saturating_sub(stale.saturating_add(HOUR))
        });
        if total >= rule.failure_threshold.max(1) || recent {
            out.entry(site.to_owned())
                .or_default()
                .extend(stretch.iter());
        }
        stretch.clear();
    };
    let mut rule = Rule::default();
    for (i, f) in failed.iter().enumerate() {
        let previous = i
            .checked_sub(1)
            .map(|j| &failed[j])
            .filter(|p| p.site == f.site && p.location == f.location);
        let joined = previous.is_some_and(|p| match f.before {
            None => true,
            Some((hour, up)) => hour <= p.hour || up < rule.success_threshold.max(1),
        });
        if !joined {
            // The stretch before (of this location, or of the one before
            // it) is complete.
            if let Some(p) = i.checked_sub(1).map(|j| &failed[j]) {
                keep(&p.site, &mut stretch, total, &rule);
            }
            total = 0;
            rule = rule_of(&f.site);
        }
        stretch.push(f.hour);
        total = total.saturating_add(f.failed);
        let last = latest.entry(f.site.clone()).or_insert(f.hour);
        *last = (*last).max(f.hour);
    }
    if let Some(f) = failed.last() {
        keep(&f.site, &mut stretch, total, &rule);
    }
    (out, latest)
}

/// A stretch of hours of one site to read check by check: hours with
/// failed checks, each with the hour after it (where recoveries end),
/// joined when they touch. Before it, every location was up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Stretch {
    pub(super) site: String,
    pub(super) from: i64,
    pub(super) to: i64,
}

/// The runs that overlap the window, and the latest few before it (for
/// `since`).
pub(super) fn stretches_to_read(
    down: &BTreeMap<String, BTreeSet<i64>>,
    window_from: i64,
) -> Vec<Stretch> {
    let mut out = Vec::new();
    for (site, hours) in down {
        let mut runs: Vec<Stretch> = Vec::new();
        for &h in hours {
            match runs.last_mut() {
                Some(r) if h <= r.to => r.to = r.to.max(h + 2 * HOUR),
                _ => runs.push(Stretch {
                    site: site.clone(),
                    from: h,
                    to: h + 2 * HOUR,
                }),
            }
        }
        let before = runs.iter().filter(|r| r.to <= window_from).count();
        out.extend(runs.into_iter().skip(before.saturating_sub(5)));
    }
    out
}

/// A check read for placing outages.
#[derive(Debug, Clone)]
pub(super) struct Read {
    pub(super) location: String,
    pub(super) at: i64,
    pub(super) up: bool,
    pub(super) status_code: Option<i16>,
    pub(super) error_kind: Option<String>,
    /// From a blind run (the prober's own outage): not counted.
    pub(super) blind: bool,
}

/// One site's report, from what the queries read: its tallies, the
/// newest check of each location, the outage stretches read check by check,
/// its first check and its last failed one.
pub(super) fn site_report(
    site: &str,
    options: &Options,
    tallies: &Tallies,
    latest: &BTreeMap<(String, String), Latest>,
    outages: &[(Stretch, Vec<Read>)],
    firsts: &BTreeMap<String, OffsetDateTime>,
    last_errors: &BTreeMap<String, LastError>,
) -> SiteReport {
    let now = options.now;
    let report_from = window_start(now, window_hours(options.window));
    let none = SiteTallies::default();
    let mine = tallies.sites.get(site).unwrap_or(&none);
    let in_window = mine.sum(report_from, now);
    let uptime_pct = UPTIME_WINDOWS
        .iter()
        .map(|(name, hours)| {
            let (checks, up) = mine.count(window_start(now, *hours as i64), now);
            (
                *name,
                (checks > 0).then(|| 100.0 * up as f64 / checks as f64),
            )
        })
        .collect();
    let rule = options.config.policy(site).rule();
    let Outages { periods, streaks } = outage_periods(site, &rule, outages, now);
    let seen = locations_seen(site, &rule, latest, &streaks, now);
    let verdict = rule::site(
        &rule,
        now,
        options.config.in_maintenance(site, now),
        &seen.seen,
    );
    let state = verdict.state;
    // Up since the last outage ended, or since the first check.
    let up_since = periods
        .iter()
        .rev()
        .find_map(|o| o.period.end)
        .or_else(|| firsts.get(site).copied())
        .or_else(|| seen.seen.iter().map(|l| l.last_at).min());
    let since = match state {
        SiteState::Unknown => None,
        SiteState::Up | SiteState::Degraded => up_since,
        SiteState::Maintenance => verdict.since.or(up_since),
        SiteState::Down | SiteState::Pending | SiteState::Stale => {
            verdict.since.or(seen.last_check_at)
        }
    };
    let tls = mine.tls_seen();
    let tls_expires_at = tls.map(|(_, expires)| at(expires));
    SiteReport {
        site: site.to_owned(),
        url: seen.url.or_else(|| options.config.urls.get(site).cloned()),
        state,
        since,
        last_check_at: seen.last_check_at,
        uptime_pct,
        checks: u64::from(in_window.checks),
        up_checks: u64::from(in_window.up_checks),
        window_uptime_pct: (in_window.checks > 0)
            .then(|| 100.0 * f64::from(in_window.up_checks) / f64::from(in_window.checks)),
        latency_ms: Percentiles {
            p50: in_window.latency.quantile(0.5),
            p95: in_window.latency.quantile(0.95),
            p99: in_window.latency.quantile(0.99),
        },
        phases_p95_ms: Phases {
            dns: in_window.dns.quantile(0.95),
            connect: in_window.connect.quantile(0.95),
            tls: in_window.tls.quantile(0.95),
            ttfb: in_window.ttfb.quantile(0.95),
        },
        tls_expires_at,
        tls_days_left: tls_expires_at.map(|e| (e - now).whole_days()),
        last_error: last_errors.get(site).cloned(),
        reason: reason(site, state, latest, last_errors),
        incidents: incidents(&periods, at(report_from), now),
        maintenance: options
            .config
            .maintenance_of(site, at(report_from), now)
            .into_iter()
            .map(|s| Maintenance {
                start: s.start,
                end: s.end,
                duration_s: (s.end - s.start).whole_milliseconds() as f64 / 1000.0,
            })
            .collect(),
        maintenance_checks: u64::from(mine.in_maintenance(report_from, now).0),
        locations: seen.locations,
        page: options.page.then(|| {
            let mut page = mine.page(report_from, now);
            page.incidents = incidents(&periods, at(page_start(now)), now);
            page
        }),
    }
}

/// A down period, with its first failed check's error kind and status,
/// and the locations down during it.
struct Outage {
    period: Period,
    error_kind: Option<String>,
    status_code: Option<i16>,
    locations: Vec<String>,
}

/// A site's outages, check by check, over the stretches read (oldest
/// first), by the site's own rule.
struct Outages {
    periods: Vec<Outage>,
    /// The streak each location ends the newest stretch with, when that
    /// stretch reaches now.
    streaks: BTreeMap<String, Streak>,
}

fn outage_periods(
    site: &str,
    rule: &Rule,
    outages: &[(Stretch, Vec<Read>)],
    now: OffsetDateTime,
) -> Outages {
    let mut periods: Vec<Outage> = Vec::new();
    let mut streaks: BTreeMap<String, Streak> = BTreeMap::new();
    let site_runs: Vec<&(Stretch, Vec<Read>)> =
        outages.iter().filter(|(r, _)| r.site == site).collect();
    let this_hour = rollup::hour_of(now);
    for (i, (run, reads)) in site_runs.iter().enumerate() {
        // Only a run that reaches this hour can hold an outage going on.
        let current = i + 1 == site_runs.len() && run.to > this_hour;
        let mut by_location: BTreeMap<&str, Vec<(OffsetDateTime, bool)>> = BTreeMap::new();
        for r in reads.iter().filter(|r| !r.blind) {
            by_location
                .entry(&r.location)
                .or_default()
                .push((at_ms(r.at), r.up));
        }
        let per_location: Vec<Vec<Period>> = by_location
            .iter()
            .map(|(location, checks)| {
                let (mut p, streak) = rule::location_periods(checks, rule);
                if current {
                    streaks.insert((*location).to_owned(), streak);
                } else if let Some(last) = p.last_mut()
                    && last.end.is_none()
                {
                    // Recovered after the stretch read, with checks too far
                    // apart to show it inside.
                    last.end = Some(at(run.to));
                }
                p
            })
            .collect();
        for p in rule::site_periods(&per_location, rule.quorum) {
            let start_ms = rollup::unix_ms(p.start);
            let first = reads.iter().find(|r| !r.up && !r.blind && r.at >= start_ms);
            let error_kind = first.and_then(|r| {
                r.error_kind
                    .clone()
                    .or_else(|| r.status_code.map(|_| "http".to_owned()))
            });
            // The locations with a down period of their own inside it.
            let overlaps = |l: &Period| {
                p.end.is_none_or(|end| l.start < end) && l.end.is_none_or(|end| end > p.start)
            };
            let locations = by_location
                .keys()
                .zip(&per_location)
                .filter(|(_, own)| own.iter().any(overlaps))
                .map(|(l, _)| (*l).to_owned())
                .collect();
            periods.push(Outage {
                period: p,
                error_kind,
                status_code: first.and_then(|r| r.status_code),
                locations,
            });
        }
    }
    Outages { periods, streaks }
}

/// What a site's locations say: each one's state (the rule applied to it
/// alone), what the site's state is decided from, and the newest check's
/// time and URL.
struct LocationsSeen {
    locations: Vec<LocationState>,
    seen: Vec<Seen>,
    url: Option<String>,
    last_check_at: Option<OffsetDateTime>,
}

fn locations_seen(
    site: &str,
    rule: &Rule,
    latest: &BTreeMap<(String, String), Latest>,
    streaks: &BTreeMap<String, Streak>,
    now: OffsetDateTime,
) -> LocationsSeen {
    let alone = Rule {
        quorum: Quorum::Count(1),
        ..*rule
    };
    let mut out = LocationsSeen {
        locations: Vec::new(),
        seen: Vec::new(),
        url: None,
        last_check_at: None,
    };
    for ((s, location), l) in latest.range((site.to_owned(), String::new())..) {
        if s != site {
            break;
        }
        let one = Seen {
            last_at: l.at,
            streak: streaks.get(location).copied().unwrap_or_default(),
            degraded: l.degraded,
        };
        out.seen.push(one);
        if out.last_check_at.is_none_or(|t| l.at > t) {
            out.last_check_at = Some(l.at);
            out.url = Some(l.url.clone());
        }
        out.locations.push(LocationState {
            runs: None,
            location: location.clone(),
            state: rule::site(&alone, now, false, &[one]).state,
            last_check_at: l.at,
        });
    }
    out
}

/// The outages that touch the report window, newest first.
fn incidents(periods: &[Outage], from: OffsetDateTime, now: OffsetDateTime) -> Vec<Incident> {
    let mut incidents: Vec<Incident> = periods
        .iter()
        .filter(|o| o.period.end.is_none_or(|e| e > from) && o.period.start <= now)
        .map(|o| Incident {
            start: o.period.start,
            end: o.period.end,
            duration_s: (o.period.end.unwrap_or(now) - o.period.start).whole_milliseconds() as f64
                / 1000.0,
            error_kind: o.error_kind.clone(),
            status_code: o.status_code,
            locations: o.locations.clone(),
        })
        .collect();
    incidents.reverse();
    incidents
}

/// Why a site is in its state, for a person: a down or pending site's
/// last failed check, a degraded site's slow one.
fn reason(
    site: &str,
    state: SiteState,
    latest: &BTreeMap<(String, String), Latest>,
    last_errors: &BTreeMap<String, LastError>,
) -> Option<String> {
    match state {
        SiteState::Down | SiteState::Pending => last_errors.get(site).map(LastError::describe),
        SiteState::Degraded => latest
            .range((site.to_owned(), String::new())..)
            .take_while(|((s, _), _)| s == site)
            .filter(|(_, l)| l.degraded)
            .max_by_key(|(_, l)| l.at)
            .and_then(|(_, l)| l.condition.clone()),
        _ => None,
    }
}

/// The newest check of a location.
pub(super) struct Latest {
    pub(super) at: OffsetDateTime,
    pub(super) url: String,
    /// Up, but slower than the site's `degraded_after`.
    pub(super) degraded: bool,
    /// Why it is degraded (the check's `condition`).
    pub(super) condition: Option<String>,
}

#[cfg(test)]
#[path = "compute_tests.rs"]
mod tests;
