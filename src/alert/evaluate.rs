//! What the new checks change: each location's streak, each site's state,
//! each prober's, and the events those changes make. Pure: the state comes
//! in from the database and goes back to it ([`super`]).

use std::collections::{BTreeSet, HashMap};

use serde_json::{Value, json};
use time::OffsetDateTime;
use uuid::Uuid;

use super::policy::Config;
use crate::rule::{self, Seen, SiteState, Streak};

use super::model::*;
use super::probers::*;

/// Why a failing location fails, for a person: `: timeout: no answer in
/// 5s`, `: status 503 (expected 200-299)`.
fn reason(l: &Location) -> String {
    match (&l.error_kind, &l.error, l.status_code) {
        (Some(kind), Some(error), _) => format!(": {kind}: {error}"),
        (None, Some(error), _) => format!(": {error}"),
        (_, None, Some(code)) => format!(": status {code}"),
        _ => String::new(),
    }
}

/// Applies `checks` (in any order) to `state` at `now`, and makes the
/// events that the changes call for.
pub fn evaluate(
    config: &Config,
    now: OffsetDateTime,
    state: &mut State,
    mut checks: Vec<NewCheck>,
    runs: &[LastRun],
) -> Outcome {
    let mut out = Outcome::default();
    checks.sort_by_key(|c| (c.started_at, c.check_id));
    let grouped = by_location(&checks);
    let blindness = Blindness::of(&grouped);
    probers_from_checks(now, state, &grouped, &blindness, &mut out);
    drop(grouped);
    probers_from_runs(config, now, state, runs, &mut out);
    let blind: Vec<bool> = checks.iter().map(|c| blindness.is_blind(c)).collect();
    let certificates = apply_streaks(config, state, checks, &blind, &mut out);
    judge_sites(config, now, state, &certificates, &mut out);
    prober_events(config, now, state, &blindness.sites_seen, &mut out);
    for e in &mut out.events {
        let kind = match e.kind {
            "resolved" => e.payload["resolves"].as_str().unwrap_or("down"),
            kind => kind,
        };
        e.notify = config.recipients(&e.notify, kind, e.site.as_deref());
    }
    out
}

/// Each location's streak, check by check in time order (blind checks move
/// the position only). Returns the newest plausible certificate expiry
/// seen per site.
fn apply_streaks(
    config: &Config,
    state: &mut State,
    checks: Vec<NewCheck>,
    blind: &[bool],
    out: &mut Outcome,
) -> HashMap<String, OffsetDateTime> {
    let mut certificates: HashMap<String, OffsetDateTime> = HashMap::new();
    for (c, &blind) in checks.into_iter().zip(blind) {
        let key = (c.site.clone(), c.location.clone());
        let rule = config.policy(&c.site).rule();
        if let Some(loc) = state.locations.get(&key)
            && (c.started_at, c.check_id) <= (loc.last_started_at, loc.last_check_id)
        {
            // Already counted (a position seeded from an older check).
            continue;
        }
        out.locations.insert(key.clone());
        let loc = state.locations.entry(key).or_insert_with(|| Location {
            last_started_at: c.started_at,
            last_check_id: c.check_id,
            streak: Streak::default(),
            degraded: false,
            slow: 0,
            response_time_ms: None,
            status_code: None,
            error_kind: None,
            error: None,
            url: c.url.clone(),
        });
        loc.last_started_at = c.started_at;
        loc.last_check_id = c.check_id;
        // An expiry from before drain bounded them (1970-9999) is ignored.
        if let Some(expires) = c
            .tls_expires_at
            .filter(|t| crate::message::plausible_expiry(*t))
        {
            certificates.insert(c.site.clone(), expires);
        }
        if blind {
            out.skipped += 1;
            continue;
        }
        loc.url = c.url.clone();
        loc.status_code = c.status_code;
        loc.degraded = c.up && c.degraded;
        loc.slow = if loc.degraded {
            loc.slow.saturating_add(1)
        } else {
            0
        };
        loc.response_time_ms = c.response_time_ms;
        if !c.up {
            loc.error_kind = c.error_kind.clone();
            loc.error = c.error.clone();
        }
        loc.streak.apply(c.started_at, c.up, &rule);
    }
    certificates
}

/// One site as judged now: what its locations say, by the rule `report`
/// shows ([`crate::rule`]), and what its events need.
struct Judged<'a> {
    site: &'a str,
    policy: &'a super::policy::Policy,
    now: OffsetDateTime,
    verdict: rule::Verdict,
    /// The state shown: `maintenance` inside a window.
    shown: SiteState,
    /// Inside a maintenance window.
    quiet: bool,
    stale_after: time::Duration,
    /// Up again since the newest good streak began where one was failing.
    recovered: Option<OffsetDateTime>,
    /// The fresh location that says most: down, else failing, else newest.
    worst: Option<&'a Location>,
    url: String,
    /// Every location's prober stopped (the run ledger): their `stale`
    /// says it, not one per site.
    probers_stopped: bool,
    tls_expires_at: Option<OffsetDateTime>,
    /// A fresh location has been slow for `failure_threshold` checks in a
    /// row: the `degraded` event is due.
    slow: bool,
    /// The slowest fresh location's newest response time.
    response_time_ms: Option<f64>,
    degraded_after_ms: Option<f64>,
}

impl Judged<'_> {
    /// The worst location, when it is failing.
    fn failing(&self) -> Option<&Location> {
        self.worst.filter(|l| l.streak.is_failing())
    }

    /// A `resolved` of `condition` (down, degraded) that lasted from
    /// `start` to `end`: its start, end and duration with the payload.
    fn ended(
        &self,
        condition: &str,
        start: OffsetDateTime,
        end: OffsetDateTime,
        summary: String,
    ) -> Value {
        let mut p = self.payload("resolved", end, summary);
        p["resolves"] = condition.into();
        p["outage_start"] = ts(start).into();
        p["outage_end"] = ts(end).into();
        p["duration_s"] = ((end - start).whole_milliseconds() as f64 / 1000.0).into();
        p
    }

    /// An event's payload, as a webhook receives it.
    fn payload(&self, kind: &str, since: OffsetDateTime, summary: String) -> Value {
        let failing = self.failing();
        json!({
            "kind": kind,
            "site": self.site,
            "url": self.url,
            "state": self.shown.as_str(),
            "at": ts(self.now),
            "since": ts(since),
            "locations_down": self.verdict.down,
            "locations_total": self.verdict.fresh,
            "status_code": self.worst.and_then(|l| l.status_code),
            "error_kind": failing.and_then(|l| l.error_kind.clone()),
            "error": failing.and_then(|l| l.error.clone()),
            "tls_expires_at": self.tls_expires_at.map(ts),
            "response_time_ms": self.response_time_ms,
            "degraded_after_ms": self.degraded_after_ms,
            "summary": summary,
        })
    }
}

/// Every site known or configured: its state from its locations, and the
/// events its change calls for.
fn judge_sites(
    config: &Config,
    now: OffsetDateTime,
    state: &mut State,
    certificates: &HashMap<String, OffsetDateTime>,
    out: &mut Outcome,
) {
    let mut all: BTreeSet<String> = state.sites.keys().cloned().collect();
    all.extend(state.locations.keys().map(|(s, _)| s.clone()));
    all.extend(config.urls.keys().cloned());
    let mut locations_of: HashMap<&str, Vec<(&str, &Location)>> = HashMap::new();
    for ((site, location), loc) in &state.locations {
        locations_of
            .entry(site.as_str())
            .or_default()
            .push((location.as_str(), loc));
    }
    for site in all {
        let policy = config.policy(&site);
        let locs = locations_of.get(site.as_str()).cloned().unwrap_or_default();
        // The newest certificate seen, else the one stored.
        let tls_expires_at = certificates
            .get(&site)
            .copied()
            .or_else(|| state.sites.get(&site).and_then(|s| s.tls_expires_at));
        let judged = judge(
            config,
            now,
            &state.probers,
            &site,
            policy,
            &locs,
            tls_expires_at,
        );
        if !state.sites.contains_key(&site) {
            out.sites.insert(site.clone());
        }
        let entry = state.sites.entry(site.clone()).or_insert_with(|| Site {
            state: SiteState::Unknown,
            since: locs
                .iter()
                .map(|(_, l)| l.last_started_at)
                .min()
                .unwrap_or(now),
            notified: SiteState::Up,
            outage_since: None,
            notified_at: None,
            tls_expires_at: None,
            tls_days_sent: Vec::new(),
        });
        if entry.state != judged.shown {
            entry.since = match judged.shown {
                SiteState::Up | SiteState::Degraded => judged.recovered.unwrap_or(now),
                SiteState::Maintenance | SiteState::Unknown => now,
                _ => judged.verdict.since.unwrap_or(now),
            };
            entry.state = judged.shown;
            out.sites.insert(site.clone());
        }
        let mut events = state_events(config, &judged, entry);
        if let Some(expires) = certificates.get(&site).copied() {
            if entry.tls_expires_at != Some(expires) {
                entry.tls_expires_at = Some(expires);
                entry.tls_days_sent.clear();
                out.sites.insert(site.clone());
            }
            events.extend(certificate_event(&judged, entry, expires));
        }
        if !events.is_empty() {
            out.sites.insert(site.clone());
        }
        for (kind, mut payload) in events {
            let event_id = Uuid::new_v4();
            payload["event_id"] = event_id.to_string().into();
            out.events.push(Event {
                event_id,
                kind,
                site: Some(site.clone()),
                location: None,
                payload,
                notify: policy.notify.clone(),
            });
        }
    }
}

/// What a site's locations say now.
fn judge<'a>(
    config: &Config,
    now: OffsetDateTime,
    probers: &HashMap<String, Prober>,
    site: &'a str,
    policy: &'a super::policy::Policy,
    locs: &[(&str, &'a Location)],
    tls_expires_at: Option<OffsetDateTime>,
) -> Judged<'a> {
    let rule = policy.rule();
    let seen: Vec<Seen> = locs
        .iter()
        .map(|(_, l)| Seen {
            last_at: l.last_started_at,
            streak: l.streak,
            degraded: l.degraded,
        })
        .collect();
    let quiet = config.in_maintenance(site, now);
    // Events follow the state under the window; the state kept (and shown)
    // says `maintenance`, as report's does.
    let verdict = rule::site(&rule, now, false, &seen);
    let shown = rule::site(&rule, now, quiet, &seen).state;
    let stale_after = time::Duration::try_from(policy.stale_after).unwrap_or(time::Duration::MAX);
    let fresh: Vec<&Location> = locs
        .iter()
        .map(|(_, l)| *l)
        .filter(|l| now - l.last_started_at <= stale_after)
        .collect();
    let worst = fresh
        .iter()
        .filter(|l| l.streak.is_down())
        .max_by_key(|l| l.last_started_at)
        .or_else(|| {
            fresh
                .iter()
                .filter(|l| l.streak.is_failing())
                .max_by_key(|l| l.last_started_at)
        })
        .or_else(|| fresh.iter().max_by_key(|l| l.last_started_at))
        .copied();
    Judged {
        site,
        policy,
        now,
        shown,
        quiet,
        stale_after,
        recovered: seen.iter().filter_map(|l| l.streak.first_good_at).max(),
        worst,
        url: config
            .urls
            .get(site)
            .cloned()
            .or_else(|| locs.first().map(|(_, l)| l.url.clone()))
            .unwrap_or_default(),
        probers_stopped: !locs.is_empty()
            && locs.iter().all(|(location, _)| {
                probers
                    .get(*location)
                    .is_some_and(|p| p.state == ProberState::Stale)
            }),
        tls_expires_at,
        slow: fresh.iter().any(|l| l.slow >= policy.failure_threshold),
        response_time_ms: fresh
            .iter()
            .filter_map(|l| l.response_time_ms)
            .max_by(f64::total_cmp),
        degraded_after_ms: config.degraded_after_ms.get(site).copied(),
        verdict,
    }
}

/// The event a site's change of state calls for (`down`, `reminder`,
/// `resolved`, `stale`), given what receivers were last told; updates
/// that.
fn state_events(config: &Config, j: &Judged, entry: &mut Site) -> Vec<(&'static str, Value)> {
    let (site, now, verdict) = (j.site, j.now, &j.verdict);
    let reason = j.failing().map(reason).unwrap_or_default();
    let total = verdict.fresh;
    let mut events = Vec::new();
    match (verdict.state, entry.notified) {
        (SiteState::Down, SiteState::Up | SiteState::Stale | SiteState::Degraded) if !j.quiet => {
            let start = verdict.since.unwrap_or(now);
            let summary = format!(
                "{site} is down from {} of {total} location{} since {}{reason}",
                verdict.down,
                if total == 1 { "" } else { "s" },
                ts(start)
            );
            events.push(("down", j.payload("down", start, summary)));
            entry.notified = SiteState::Down;
            entry.outage_since = Some(start);
            entry.notified_at = Some(now);
        }
        (SiteState::Down, SiteState::Down) if !j.quiet => {
            let start = entry.outage_since.or(verdict.since).unwrap_or(now);
            if let (Some(every), Some(last)) = (j.policy.remind_every, entry.notified_at)
                && now - last >= time::Duration::try_from(every).unwrap_or(time::Duration::MAX)
            {
                let summary = format!("{site} is still down, for {}{reason}", span(now - start));
                events.push(("reminder", j.payload("reminder", start, summary)));
                entry.notified_at = Some(now);
            }
        }
        (SiteState::Up | SiteState::Pending | SiteState::Degraded, SiteState::Down) => {
            let start = entry.outage_since.unwrap_or(entry.since);
            let end = j.recovered.filter(|t| *t >= start).unwrap_or(now);
            let summary = format!(
                "{site} is up again after {} down (from {} to {})",
                span(end - start),
                ts(start),
                ts(end)
            );
            events.push(("resolved", j.ended("down", start, end, summary)));
            entry.notified = SiteState::Up;
            entry.outage_since = None;
            entry.notified_at = Some(now);
        }
        (SiteState::Up | SiteState::Pending | SiteState::Degraded, SiteState::Stale) => {
            let summary = format!("{site} is checked again, and {}", verdict.state.as_str());
            let mut p = j.payload("resolved", entry.since, summary);
            p["resolves"] = "stale".into();
            events.push(("resolved", p));
            entry.notified = SiteState::Up;
            entry.notified_at = Some(now);
        }
        (SiteState::Stale, SiteState::Up | SiteState::Down | SiteState::Degraded)
            if !j.quiet && !j.probers_stopped =>
        {
            let last = verdict.since.unwrap_or(entry.since);
            let summary = format!(
                "{site} has not been checked for {} (the last check was at {}): the prober or its scheduler stopped",
                span(now - last),
                ts(last)
            );
            events.push(("stale", j.payload("stale", last, summary)));
            entry.notified = SiteState::Stale;
            entry.notified_at = Some(now);
        }
        // A configured site no check mentions, for its stale_after since
        // alert first saw it configured.
        (SiteState::Unknown, SiteState::Up | SiteState::Down | SiteState::Degraded)
            if !j.quiet && config.urls.contains_key(site) && now - entry.since >= j.stale_after =>
        {
            let summary = format!(
                "{site} has never been checked (configured, and no check stored since {}): is its prober running, its shard scheduled, its row valid?",
                ts(entry.since)
            );
            events.push(("stale", j.payload("stale", entry.since, summary)));
            entry.notified = SiteState::Stale;
            entry.notified_at = Some(now);
        }
        _ => {}
    }
    events.extend(slow_events(j, entry));
    events
}

/// `degraded` when a site is up but slow (past its `degraded_after`) for
/// `failure_threshold` checks in a row from a location, and its recovery
/// (a `resolved` of `degraded`) when it is up and fast again; after a
/// `resolved` of `down` in the same run, a site still slow is `degraded`
/// at once.
fn slow_events(j: &Judged, entry: &mut Site) -> Option<(&'static str, Value)> {
    let (site, now) = (j.site, j.now);
    let ms = |v: Option<f64>| v.map_or_else(|| "?".to_owned(), |v| format!("{v:.0}"));
    match (j.verdict.state, entry.notified) {
        (SiteState::Degraded, SiteState::Up) if j.slow && !j.quiet => {
            let summary = format!(
                "{site} is slow: {} ms, past its degraded_after of {} ms, for {} checks in a row",
                ms(j.response_time_ms),
                ms(j.degraded_after_ms),
                j.policy.failure_threshold
            );
            entry.notified = SiteState::Degraded;
            entry.outage_since = Some(now);
            entry.notified_at = Some(now);
            Some(("degraded", j.payload("degraded", now, summary)))
        }
        (SiteState::Up, SiteState::Degraded) => {
            let start = entry.outage_since.unwrap_or(entry.since);
            let summary = format!(
                "{site} is fast again: {} ms (degraded_after {} ms), after {} slow",
                ms(j.response_time_ms),
                ms(j.degraded_after_ms),
                span(now - start)
            );
            entry.notified = SiteState::Up;
            entry.outage_since = None;
            entry.notified_at = Some(now);
            Some(("resolved", j.ended("degraded", start, now, summary)))
        }
        _ => None,
    }
}

/// Certificates: one event per threshold crossed, for the certificate seen
/// last (a new certificate starts over), none inside a maintenance window;
/// records the thresholds sent.
fn certificate_event(
    j: &Judged,
    entry: &mut Site,
    expires: OffsetDateTime,
) -> Option<(&'static str, Value)> {
    if j.quiet {
        // Inside a maintenance window: sent when it closes (the thresholds
        // crossed are not recorded as sent).
        return None;
    }
    let site = j.site;
    let days_left = (expires - j.now).whole_seconds() as f64 / 86_400.0;
    let crossed: Vec<i32> = j
        .policy
        .tls_expiry_days
        .iter()
        .map(|d| *d as i32)
        .filter(|d| days_left <= f64::from(*d) && !entry.tls_days_sent.contains(d))
        .collect();
    let smallest = *crossed.iter().min()?;
    let summary = if days_left < 0.0 {
        format!("{site}'s certificate expired at {}", ts(expires))
    } else {
        format!(
            "{site}'s certificate expires in {} day{} ({}), within {smallest} days",
            days_left.floor(),
            if days_left.floor() == 1.0 { "" } else { "s" },
            ts(expires)
        )
    };
    let mut p = j.payload("tls_expiring", entry.since, summary);
    p["tls_expires_at"] = ts(expires).into();
    p["tls_days_left"] = days_left.floor().into();
    p["threshold_days"] = smallest.into();
    entry.tls_days_sent.extend(crossed);
    Some(("tls_expiring", p))
}

#[cfg(test)]
#[path = "evaluate_tests.rs"]
mod tests;
