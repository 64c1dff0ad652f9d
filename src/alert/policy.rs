//! `alert`'s configuration, validated: each site's rule, where its events
//! go, and when it is in maintenance. It is read from the sites file
//! (`[alerts]`, `[site.alerts]`, `[[notifier]]`, `[[maintenance]]`) or,
//! for the sites kept in PostgreSQL, from their `alerts` column; the
//! notifiers' URLs are secrets, from `SITEWATCH_NOTIFIER_<NAME>_URL`.

use std::collections::HashMap;
use std::time::Duration;

use time::{OffsetDateTime, Weekday};

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
    /// Every week (or every day when `day` is `None`), minutes of the UTC
    /// day; `end` before `start` runs past midnight.
    Weekly {
        day: Option<Weekday>,
        start: u32,
        end: u32,
    },
}

#[derive(Debug, Clone, PartialEq)]
struct Window {
    /// `None`: every site.
    sites: Option<Vec<String>>,
    when: When,
}

impl Window {
    fn covers(&self, site: &str, at: OffsetDateTime) -> bool {
        if let Some(sites) = &self.sites
            && !sites.iter().any(|s| s == site)
        {
            return false;
        }
        match &self.when {
            When::Once { start, end } => *start <= at && at < *end,
            When::Weekly { day, start, end } => {
                let minute = u32::from(at.hour()) * 60 + u32::from(at.minute());
                let today = day.is_none_or(|d| at.weekday() == d);
                let yesterday = day.is_none_or(|d| at.weekday().previous() == d);
                if start <= end {
                    today && (*start..*end).contains(&minute)
                } else {
                    (today && minute >= *start) || (yesterday && minute < *end)
                }
            }
        }
    }
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
    let when = match (&raw.start, &raw.duration, &raw.every) {
        (Some(start), Some(length), None) => {
            let start =
                OffsetDateTime::parse(start, &time::format_description::well_known::Rfc3339)
                    .map_err(|_| {
                        format!("start `{start}`: expected RFC 3339 such as 2026-12-01T02:00:00Z")
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
    Ok(Window { sites, when })
}

/// `"sun 02:00-03:00"`, or `"daily 02:00-03:00"`, UTC.
fn weekly(text: &str) -> Result<When, String> {
    let bad = || {
        format!(
            "every `{text}`: expected a day and UTC times such as \"sun 02:00-03:00\" or \"daily 23:30-00:30\""
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
