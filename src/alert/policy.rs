//! `alert`'s configuration, validated: each site's rule, where its events
//! go, and when it is in maintenance. It is read from the sites file
//! (`[alerts]`, `[site.alerts]`, `[[notifier]]`, `[[maintenance]]`) or,
//! for the sites kept in PostgreSQL, from their `alerts` column; the
//! notifiers' URLs are secrets, from `SITEWATCH_NOTIFIER_<NAME>_URL`.

use std::collections::HashMap;
use std::time::Duration;

use time::OffsetDateTime;

use crate::zone::TimeZone;

pub use super::notify::config::{Kind, Notifier, Urls, notifier, url_variable};
use crate::rule::{Quorum as QuorumRule, Rule};
use crate::sites::{
    AlertsRaw, MaintenanceRaw, Quorum, RawSite, SitesDoc, duration, strip_credentials,
};

/// One site's alerting rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    pub failure_threshold: u32,
    pub success_threshold: u32,
    pub quorum: QuorumRule,
    /// No check stored for this long: `stale`.
    pub stale_after: Duration,
    /// Days before expiry at which `tls_expiring` is sent, largest first.
    pub tls_expiry_days: Vec<u32>,
    pub remind_every: Option<Duration>,
    /// Notifier names.
    pub notify: Vec<String>,
}

impl Policy {
    /// The state rule, as `report` and `alert` both apply it.
    pub fn rule(&self) -> Rule {
        Rule {
            failure_threshold: self.failure_threshold,
            success_threshold: self.success_threshold,
            quorum: self.quorum,
            stale_after: self.stale_after,
        }
    }
}

/// When a maintenance window is open.
#[derive(Debug, Clone, PartialEq)]
enum When {
    Once {
        start: OffsetDateTime,
        end: OffsetDateTime,
    },
    /// Every week (or every day when `day` is `None`), minutes of the day
    /// in the window's zone; `end` before `start` runs past midnight.
    Weekly {
        day: Option<jiff::civil::Weekday>,
        start: u32,
        end: u32,
    },
}

/// A `[[maintenance]]` window, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct Window {
    /// `None`: every site.
    pub sites: Option<Vec<String>>,
    /// What the status page calls it.
    pub title: Option<String>,
    /// The zone's name, as written (`UTC` when absent).
    pub time_zone: String,
    zone: TimeZone,
    when: When,
}

impl Window {
    fn names(&self, site: &str) -> bool {
        self.sites
            .as_ref()
            .is_none_or(|sites| sites.iter().any(|s| s == site))
    }

    /// Each time the window is open that overlaps `[from, to)`, in order:
    /// the one place that says when a window is open (alert's silence,
    /// the report's exclusion and the page's notice all ask it).
    pub fn occurrences(&self, from: OffsetDateTime, to: OffsetDateTime) -> Vec<Span> {
        let overlaps = |s: &Span| s.start < to && s.end > from;
        match &self.when {
            When::Once { start, end } => [Span {
                start: *start,
                end: *end,
            }]
            .into_iter()
            .filter(overlaps)
            .collect(),
            When::Weekly { day, start, end } => {
                let local = |at: OffsetDateTime| {
                    crate::zone::timestamp(at)
                        .to_zoned_datetime(self.zone.clone())
                        .date()
                };
                let (first, last) = (local(from), local(to));
                let at = |date: jiff::civil::Date, minute: u32| {
                    let time = jiff::civil::time((minute / 60) as i8, (minute % 60) as i8, 0, 0);
                    date.to_datetime(time)
                        .to_zoned_datetime(self.zone.clone())
                        .ok()
                        .and_then(|z| crate::zone::instant(z.timestamp()).ok())
                };
                let mut out = Vec::new();
                let mut date = first.yesterday().unwrap_or(first);
                while date <= last {
                    if day.is_none_or(|d| date.weekday() == d) {
                        let end_date = if end <= start {
                            date.tomorrow().unwrap_or(date)
                        } else {
                            date
                        };
                        if let (Some(s), Some(e)) = (at(date, *start), at(end_date, *end)) {
                            let span = Span { start: s, end: e };
                            if span.start < span.end && overlaps(&span) {
                                out.push(span);
                            }
                        }
                    }
                    match date.tomorrow() {
                        Ok(next) => date = next,
                        Err(_) => break,
                    }
                }
                out
            }
        }
    }

    /// When it opens, for a person: `once`, `every Sunday 02:00-03:00`,
    /// `every day 23:30-00:30` (in its zone).
    pub fn describe(&self) -> String {
        match &self.when {
            When::Once { .. } => "Once".to_owned(),
            When::Weekly { day, start, end } => {
                let hm = |m: &u32| format!("{:02}:{:02}", m / 60, m % 60);
                let day = day.map_or_else(|| "day".to_owned(), |d| format!("{d:?}"));
                format!("Every {day} {}-{}", hm(start), hm(end))
            }
        }
    }

    fn covers(&self, site: &str, at: OffsetDateTime) -> bool {
        self.names(site)
            && !self
                .occurrences(at, at + time::Duration::nanoseconds(1))
                .is_empty()
    }
}

/// A stretch of time, `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Span {
    pub start: OffsetDateTime,
    pub end: OffsetDateTime,
}

/// Everything `alert` needs to know about the sites.
#[derive(Debug, Clone)]
pub struct Config {
    defaults: Policy,
    sites: HashMap<String, Policy>,
    /// The sites' URLs, as configured (credentials removed).
    pub urls: HashMap<String, String>,
    /// The sites' groups.
    pub groups: HashMap<String, String>,
    /// The sites' `degraded_after`, in milliseconds.
    pub degraded_after_ms: HashMap<String, f64>,
    /// The sites left out of the status page (`public = false`), and
    /// those whose URL it does not show (`hide_url`).
    pub private: std::collections::HashSet<String>,
    pub hidden_urls: std::collections::HashSet<String>,
    pub notifiers: Vec<Notifier>,
    maintenance: Vec<Window>,
}

impl Config {
    /// The rule of `site` (`[alerts]` for a site not configured).
    pub fn policy(&self, site: &str) -> &Policy {
        self.sites.get(site).unwrap_or(&self.defaults)
    }

    /// The rule for what concerns no one site (a prober).
    pub fn defaults(&self) -> &Policy {
        &self.defaults
    }

    /// Of `notify` (a policy's notifiers), those whose routes take an
    /// event of `kind` (for `resolved`, what it resolves) about `site`.
    pub fn recipients(&self, notify: &[String], kind: &str, site: Option<&str>) -> Vec<String> {
        let group = site.and_then(|s| self.groups.get(s)).map(String::as_str);
        notify
            .iter()
            .filter(|name| {
                self.notifiers
                    .iter()
                    .find(|n| &n.name == *name)
                    .is_none_or(|n| n.routes.take(kind, site, group))
            })
            .cloned()
            .collect()
    }

    /// Whether a maintenance window covers `site` at `at`.
    pub fn in_maintenance(&self, site: &str, at: OffsetDateTime) -> bool {
        self.maintenance.iter().any(|w| w.covers(site, at))
    }

    /// The maintenance windows, as configured.
    pub fn maintenance(&self) -> &[Window] {
        &self.maintenance
    }

    /// When `site` was (or will be) in maintenance within `[from, to)`:
    /// every window's occurrences, clipped to it, overlaps joined.
    pub fn maintenance_of(
        &self,
        site: &str,
        from: OffsetDateTime,
        to: OffsetDateTime,
    ) -> Vec<Span> {
        let mut spans: Vec<Span> = self
            .maintenance
            .iter()
            .filter(|w| w.names(site))
            .flat_map(|w| w.occurrences(from, to))
            .map(|s| Span {
                start: s.start.max(from),
                end: s.end.min(to),
            })
            .collect();
        spans.sort();
        let mut joined: Vec<Span> = Vec::new();
        for s in spans {
            match joined.last_mut() {
                Some(last) if s.start <= last.end => last.end = last.end.max(s.end),
                _ => joined.push(s),
            }
        }
        joined
    }
}

/// A key of `raw`, or else of `base`.
fn pick<'a, T>(
    raw: Option<&'a AlertsRaw>,
    base: &'a AlertsRaw,
    key: impl Fn(&'a AlertsRaw) -> Option<&'a T>,
) -> Option<&'a T> {
    raw.and_then(&key).or_else(|| key(base))
}

/// `raw` over `base`, validated.
fn policy(
    raw: Option<&AlertsRaw>,
    base: &AlertsRaw,
    interval: Option<Duration>,
) -> Result<Policy, String> {
    let failure_threshold = raw
        .and_then(|r| r.failure_threshold)
        .or(base.failure_threshold)
        .unwrap_or(3);
    let success_threshold = raw
        .and_then(|r| r.success_threshold)
        .or(base.success_threshold)
        .unwrap_or(2);
    if failure_threshold == 0 || success_threshold == 0 {
        return Err("failure_threshold and success_threshold must be at least 1".to_owned());
    }
    let quorum = match pick(raw, base, |r| r.quorum.as_ref()) {
        None => QuorumRule::Count(1),
        Some(Quorum::Count(n)) if *n >= 1 => QuorumRule::Count(*n),
        Some(Quorum::Word(w)) if w == "majority" => QuorumRule::Majority,
        Some(other) => {
            return Err(format!(
                "quorum {other:?}: expected a number of locations (1 or more) or \"majority\""
            ));
        }
    };
    let stale_after = match pick(raw, base, |r| r.stale_after.as_ref()) {
        Some(text) => duration("stale_after", text, "15m")?,
        None => interval.map_or(Duration::from_secs(15 * 60), |i| i * 3),
    };
    let mut tls_expiry_days = pick(raw, base, |r| r.tls_expiry_days.as_ref())
        .cloned()
        .unwrap_or_else(|| vec![14, 7, 1]);
    tls_expiry_days.sort_unstable_by(|a, b| b.cmp(a));
    tls_expiry_days.dedup();
    let remind_every = pick(raw, base, |r| r.remind_every.as_ref())
        .map(|t| duration("remind_every", t, "15m"))
        .transpose()?;
    let notify = pick(raw, base, |r| r.notify.as_ref())
        .cloned()
        .unwrap_or_default();
    Ok(Policy {
        failure_threshold,
        success_threshold,
        quorum,
        stale_after,
        tls_expiry_days,
        remind_every,
        notify,
    })
}

fn window(raw: &MaintenanceRaw) -> Result<Window, String> {
    let sites = if raw.sites.iter().any(|s| s == "*") {
        None
    } else if raw.sites.is_empty() {
        return Err("sites is empty: name sites, or [\"*\"] for all".to_owned());
    } else {
        Some(raw.sites.clone())
    };
    let time_zone = raw.time_zone.clone().unwrap_or_else(|| "UTC".to_owned());
    let zone = crate::zone::named(&time_zone)?;
    let when = match (&raw.start, &raw.duration, &raw.every) {
        (Some(start), Some(length), None) => {
            let start = crate::zone::time_in(start, &zone).ok_or_else(|| {
                format!(
                    "start `{start}`: expected a time such as 2026-12-01 02:00 (in time_zone) or 2026-12-01T02:00:00Z"
                )
            })?;
            let length = duration("duration", length, "15m")?;
            When::Once {
                start,
                end: start + length,
            }
        }
        (None, None, Some(every)) => weekly(every)?,
        _ => {
            return Err(
                "give either start and duration (one window) or every (\"sun 02:00-03:00\")"
                    .to_owned(),
            );
        }
    };
    Ok(Window {
        sites,
        title: raw.title.clone(),
        time_zone,
        zone,
        when,
    })
}

/// `"sun 02:00-03:00"`, or `"daily 02:00-03:00"`, in the window's zone.
fn weekly(text: &str) -> Result<When, String> {
    use jiff::civil::Weekday;
    let bad = || {
        format!(
            "every `{text}`: expected a day and times (in time_zone) such as \"sun 02:00-03:00\" or \"daily 23:30-00:30\""
        )
    };
    let (day, times) = text.trim().split_once(' ').ok_or_else(bad)?;
    let day = match day.to_ascii_lowercase().as_str() {
        "daily" | "*" => None,
        "mon" | "monday" => Some(Weekday::Monday),
        "tue" | "tuesday" => Some(Weekday::Tuesday),
        "wed" | "wednesday" => Some(Weekday::Wednesday),
        "thu" | "thursday" => Some(Weekday::Thursday),
        "fri" | "friday" => Some(Weekday::Friday),
        "sat" | "saturday" => Some(Weekday::Saturday),
        "sun" | "sunday" => Some(Weekday::Sunday),
        _ => return Err(bad()),
    };
    let (start, end) = times.trim().split_once('-').ok_or_else(bad)?;
    let minute = |t: &str| -> Option<u32> {
        let (h, m) = t.trim().split_once(':')?;
        let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
        (h < 24 && m < 60).then_some(h * 60 + m)
    };
    let (start, end) = (minute(start).ok_or_else(bad)?, minute(end).ok_or_else(bad)?);
    if start == end {
        return Err(bad());
    }
    Ok(When::Weekly { day, start, end })
}

/// The `[alerts]` rule of the sites file (the defaults without one), as
/// `report` applies it to every site.
pub fn defaults(doc: Option<&SitesDoc>) -> Result<Policy, String> {
    let base = doc.and_then(|d| d.alerts.clone()).unwrap_or_default();
    policy(None, &base, None).map_err(|why| format!("[alerts]: {why}"))
}

/// Validates everything `alert` reads: `doc` (the sites file, if any) and
/// `sites` (its sites, or the table's), with the notifiers' URLs from
/// `env`. Every problem, one line each (empty: `Ok`).
pub fn load(
    doc: Option<&SitesDoc>,
    sites: &[RawSite],
    env: &HashMap<String, String>,
    urls: Urls,
) -> Result<Config, Vec<String>> {
    let mut problems = Vec::new();
    let empty = SitesDoc::default();
    let doc = doc.unwrap_or(&empty);
    let base = doc.alerts.clone().unwrap_or_default();
    let defaults = policy(None, &base, None).unwrap_or_else(|why| {
        problems.push(format!("[alerts]: {why}"));
        policy(None, &AlertsRaw::default(), None).expect("the defaults are valid")
    });
    let mut notifiers = Vec::new();
    for raw in &doc.notifier {
        if notifiers.iter().any(|n: &Notifier| n.name == raw.name) {
            problems.push(format!("notifier `{}`: duplicate name", raw.name));
            continue;
        }
        match notifier(raw, env, urls) {
            Ok(n) => notifiers.push(n),
            Err(why) => problems.push(why),
        }
    }
    let known = |name: &String| doc.notifier.iter().any(|n| &n.name == name);
    // Without a `notify` anywhere, events go to every notifier declared:
    // declaring one is enough to be told.
    let everyone: Vec<String> = doc.notifier.iter().map(|n| n.name.clone()).collect();
    let mut defaults = defaults;
    if base.notify.is_none() {
        defaults.notify = everyone.clone();
    }
    for name in defaults.notify.iter().filter(|n| !known(n)) {
        problems.push(format!("[alerts] notify: no [[notifier]] named `{name}`"));
    }
    let mut policies = HashMap::new();
    let mut urls = HashMap::new();
    let mut groups = HashMap::new();
    let mut degraded_after_ms = HashMap::new();
    let mut private = std::collections::HashSet::new();
    let mut hidden_urls = std::collections::HashSet::new();
    for site in sites {
        if site.public == Some(false) {
            private.insert(site.name.clone());
        }
        if site.hide_url == Some(true) {
            hidden_urls.insert(site.name.clone());
        }
        if let Some(group) = &site.group {
            groups.insert(site.name.clone(), group.clone());
        }
        if let Some(limit) = site
            .degraded_after
            .as_deref()
            .or(doc.defaults.degraded_after.as_deref())
            .and_then(|t| crate::duration::non_zero(t).ok())
        {
            degraded_after_ms.insert(site.name.clone(), limit.as_secs_f64() * 1000.0);
        }
        let interval = site
            .interval
            .as_deref()
            .and_then(|t| crate::duration::non_zero(t).ok());
        match policy(site.alerts.as_ref(), &base, interval) {
            Ok(mut p) => {
                if pick(site.alerts.as_ref(), &base, |r| r.notify.as_ref()).is_none() {
                    p.notify = everyone.clone();
                }
                for name in p.notify.iter().filter(|n| !known(n)) {
                    problems.push(format!(
                        "site `{}`: alerts notify: no [[notifier]] named `{name}`",
                        site.name
                    ));
                }
                policies.insert(site.name.clone(), p);
            }
            Err(why) => problems.push(format!("site `{}`: alerts: {why}", site.name)),
        }
        let url = url::Url::parse(&site.url).map(|mut u| {
            strip_credentials(&mut u);
            u.to_string()
        });
        urls.insert(site.name.clone(), url.unwrap_or_else(|_| site.url.clone()));
    }
    let mut maintenance = Vec::new();
    for (i, raw) in doc.maintenance.iter().enumerate() {
        match window(raw) {
            Ok(w) => maintenance.push(w),
            Err(why) => problems.push(format!("[[maintenance]] #{}: {why}", i + 1)),
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(Config {
        defaults,
        sites: policies,
        urls,
        groups,
        degraded_after_ms,
        private,
        hidden_urls,
        notifiers,
        maintenance,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sites::NotifierRaw;
    use time::macros::datetime;

    #[test]
    fn weekly_windows_cover_their_minutes_and_wrap_midnight() {
        let w = |every: &str| Window {
            sites: None,
            title: None,
            time_zone: "UTC".into(),
            zone: TimeZone::UTC,
            when: weekly(every).unwrap(),
        };
        // 2026-11-29 is a Sunday.
        let sunday = w("sun 02:00-03:00");
        assert!(sunday.covers("x", datetime!(2026-11-29 02:30 UTC)));
        assert!(!sunday.covers("x", datetime!(2026-11-29 03:00 UTC)));
        assert!(!sunday.covers("x", datetime!(2026-11-30 02:30 UTC)));
        let night = w("sat 23:30-00:30");
        assert!(night.covers("x", datetime!(2026-11-28 23:45 UTC)));
        assert!(night.covers("x", datetime!(2026-11-29 00:15 UTC)));
        assert!(!night.covers("x", datetime!(2026-11-29 23:45 UTC)));
        assert!(w("daily 01:00-02:00").covers("x", datetime!(2026-11-25 01:59 UTC)));
        assert!(weekly("someday 01:00-02:00").is_err());
        assert!(weekly("sun 25:00-26:00").is_err());
    }

    #[test]
    fn windows_open_in_their_own_zone_and_join_per_site() {
        let raw = |every: Option<&str>, start: Option<&str>, zone: Option<&str>| MaintenanceRaw {
            sites: vec!["api".into()],
            start: start.map(Into::into),
            duration: start.map(|_| "90m".into()),
            every: every.map(Into::into),
            time_zone: zone.map(Into::into),
            title: None,
        };
        let helsinki =
            window(&raw(Some("sun 02:00-03:00"), None, Some("Europe/Helsinki"))).unwrap();
        // 2026-11-29 is a Sunday: EET (UTC+2); 2026-07-05 one in EEST (UTC+3).
        assert!(helsinki.covers("api", datetime!(2026-11-29 00:30 UTC)));
        assert!(!helsinki.covers("api", datetime!(2026-11-29 02:30 UTC)));
        assert!(helsinki.covers("api", datetime!(2026-07-04 23:30 UTC)));
        assert!(!helsinki.covers("web", datetime!(2026-11-29 00:30 UTC)));
        assert_eq!(
            helsinki.occurrences(
                datetime!(2026-11-20 0:00 UTC),
                datetime!(2026-12-07 0:00 UTC)
            ),
            [
                Span {
                    start: datetime!(2026-11-22 0:00 UTC),
                    end: datetime!(2026-11-22 1:00 UTC)
                },
                Span {
                    start: datetime!(2026-11-29 0:00 UTC),
                    end: datetime!(2026-11-29 1:00 UTC)
                },
                Span {
                    start: datetime!(2026-12-06 0:00 UTC),
                    end: datetime!(2026-12-06 1:00 UTC)
                },
            ]
        );
        assert_eq!(helsinki.describe(), "Every Sunday 02:00-03:00");
        // A start without an offset is in the window's zone.
        let once = window(&raw(
            None,
            Some("2026-11-29 02:30"),
            Some("Europe/Helsinki"),
        ))
        .unwrap();
        assert!(once.covers("api", datetime!(2026-11-29 01:30 UTC)));
        assert!(
            window(&raw(Some("sun 02:00-03:00"), None, Some("Mars/Base")))
                .unwrap_err()
                .contains("IANA")
        );
        // Overlapping windows join, clipped to what is asked.
        let doc = SitesDoc {
            maintenance: vec![
                raw(Some("sun 02:00-03:00"), None, Some("Europe/Helsinki")),
                raw(None, Some("2026-11-29 02:30"), Some("Europe/Helsinki")),
            ],
            ..SitesDoc::default()
        };
        let config = load(Some(&doc), &[], &HashMap::new(), Urls::Required).unwrap();
        assert_eq!(
            config.maintenance_of(
                "api",
                datetime!(2026-11-29 0:15 UTC),
                datetime!(2026-11-30 0:00 UTC)
            ),
            [Span {
                start: datetime!(2026-11-29 0:15 UTC),
                end: datetime!(2026-11-29 2:00 UTC)
            }]
        );
        assert!(
            config
                .maintenance_of(
                    "web",
                    datetime!(2026-11-29 0:00 UTC),
                    datetime!(2026-11-30 0:00 UTC)
                )
                .is_empty()
        );
    }

    #[test]
    fn a_sites_keys_override_the_defaults_and_problems_are_each_named() {
        let base = AlertsRaw {
            failure_threshold: Some(5),
            remind_every: Some("1h".into()),
            ..AlertsRaw::default()
        };
        let own = AlertsRaw {
            quorum: Some(Quorum::Word("majority".into())),
            ..AlertsRaw::default()
        };
        let p = policy(Some(&own), &base, Some(Duration::from_secs(300))).unwrap();
        assert_eq!(p.failure_threshold, 5);
        assert_eq!(p.quorum, QuorumRule::Majority);
        assert_eq!(p.stale_after, Duration::from_secs(900), "3 x its interval");
        assert_eq!(p.remind_every, Some(Duration::from_secs(3600)));
        assert_eq!(QuorumRule::Majority.needed(3), 2);
        let bad = AlertsRaw {
            quorum: Some(Quorum::Word("most".into())),
            ..AlertsRaw::default()
        };
        assert!(
            policy(Some(&bad), &base, None)
                .unwrap_err()
                .contains("quorum")
        );
        let doc = SitesDoc {
            notifier: vec![NotifierRaw {
                name: "ops".into(),
                kind: "pager".into(),
                ..NotifierRaw::default()
            }],
            alerts: Some(AlertsRaw {
                notify: Some(vec!["ops".into(), "nobody".into()]),
                ..AlertsRaw::default()
            }),
            ..SitesDoc::default()
        };
        let problems = load(Some(&doc), &[], &HashMap::new(), Urls::Required).unwrap_err();
        assert_eq!(
            problems,
            [
                "notifier `ops`: kind `pager`: expected one of webhook, slack, alertmanager, email, pagerduty, opsgenie, teams, discord, telegram, google_chat, ntfy",
                "[alerts] notify: no [[notifier]] named `nobody`",
            ]
        );
    }
}
