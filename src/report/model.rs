//! What a report says: one [`SiteReport`] per site, and what the page adds.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;
use time::OffsetDateTime;

use crate::alert::policy::Config;
use crate::message::rfc3339_ms;

use crate::rule::SiteState;

/// What to report on.
#[derive(Debug, Clone)]
pub struct Options {
    /// The window of `checks`, `latency_ms`, `phases_p95_ms`, `incidents`.
    pub window: Duration,
    /// Only these sites (all when empty).
    pub sites: Vec<String>,
    pub now: OffsetDateTime,
    /// Each site's rule (and URL) and the maintenance windows: the sites file's, as
    /// `alert` reads them.
    pub config: Config,
    /// Also read what the status page draws ([`Page`]): 90 days of daily
    /// uptime and the window's latency hour by hour.
    pub page: bool,
}

/// How many days the status page's uptime strip shows.
pub const PAGE_DAYS: i64 = 90;

/// The uptime windows every report carries.
pub const UPTIME_WINDOWS: [(&str, u64); 3] = [("24h", 24), ("7d", 168), ("30d", 720)];

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Percentiles {
    pub p50: Option<f64>,
    pub p95: Option<f64>,
    pub p99: Option<f64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Phases {
    pub dns: Option<f64>,
    pub connect: Option<f64>,
    pub tls: Option<f64>,
    pub ttfb: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LastError {
    #[serde(with = "rfc3339_ms")]
    pub at: OffsetDateTime,
    pub error_kind: Option<String>,
    pub error: Option<String>,
    pub status_code: Option<i16>,
}

impl LastError {
    /// For a person: `timeout: no answer in 5s`, `status 503, expected
    /// 200-399`, `http 503`.
    pub fn describe(&self) -> String {
        match (&self.error_kind, &self.error, self.status_code) {
            (Some(kind), Some(error), _) if kind != "http" || self.status_code.is_none() => {
                format!("{kind}: {error}")
            }
            (_, Some(error), _) => error.clone(),
            (_, None, Some(code)) => format!("status {code}"),
            (Some(kind), None, None) => kind.clone(),
            (None, None, None) => "down".to_owned(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Incident {
    #[serde(with = "rfc3339_ms")]
    pub start: OffsetDateTime,
    #[serde(with = "rfc3339_ms::option")]
    pub end: Option<OffsetDateTime>,
    /// Until the end, or until the report's time while it lasts.
    pub duration_s: f64,
    /// Of the first failed check of the outage (`http` for a bad status).
    pub error_kind: Option<String>,
    /// The first failed check's status, when it had one.
    pub status_code: Option<i16>,
    /// The locations down during it.
    pub locations: Vec<String>,
}

/// A stretch of maintenance.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Maintenance {
    #[serde(with = "rfc3339_ms")]
    pub start: OffsetDateTime,
    #[serde(with = "rfc3339_ms")]
    pub end: OffsetDateTime,
    pub duration_s: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LocationState {
    pub location: String,
    pub state: SiteState,
    #[serde(with = "rfc3339_ms")]
    pub last_check_at: OffsetDateTime,
    /// The location's `probe-once` runs in the report window (the run
    /// ledger); null when it has recorded none.
    pub runs: Option<Runs>,
}

/// A location's runs in the report window, against what its tick implies:
/// a scheduler that starts late or skips ticks shows here.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Runs {
    /// Runs recorded in the window.
    pub made: u64,
    /// Ticks in the window (from the location's first run, when that came
    /// later), at its newest run's tick.
    pub expected: u64,
    /// The longest time without a run, within the window and up to now.
    pub longest_gap_s: f64,
    pub tick_s: f64,
}

/// One site, as the report's JSON has it (docs/src/report.md).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SiteReport {
    pub site: String,
    pub url: Option<String>,
    pub state: SiteState,
    #[serde(with = "rfc3339_ms::option")]
    pub since: Option<OffsetDateTime>,
    #[serde(with = "rfc3339_ms::option")]
    pub last_check_at: Option<OffsetDateTime>,
    pub uptime_pct: BTreeMap<&'static str, Option<f64>>,
    pub checks: u64,
    /// Checks up in the report's window, and their share (the SLA of a
    /// `--period`).
    pub up_checks: u64,
    pub window_uptime_pct: Option<f64>,
    pub latency_ms: Percentiles,
    pub phases_p95_ms: Phases,
    #[serde(with = "rfc3339_ms::option")]
    pub tls_expires_at: Option<OffsetDateTime>,
    pub tls_days_left: Option<i64>,
    pub last_error: Option<LastError>,
    /// Why the site is in its state, for a person: a down or pending
    /// site's latest failed check (its error, or the condition it failed),
    /// a degraded site's slow check; null otherwise.
    pub reason: Option<String>,
    pub incidents: Vec<Incident>,
    /// The site's maintenance in the report window (its `[[maintenance]]`
    /// windows, joined and clipped to it), left out of every uptime figure.
    pub maintenance: Vec<Maintenance>,
    /// The checks of the report window made in maintenance, left out of
    /// `checks`, `up_checks` and `window_uptime_pct`.
    pub maintenance_checks: u64,
    pub locations: Vec<LocationState>,
    /// What the status page draws; not part of the JSON.
    #[serde(skip)]
    pub page: Option<Page>,
}

/// A site's history as the status page draws it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Page {
    /// The last [`PAGE_DAYS`] UTC days, oldest first, today last.
    pub days: Vec<DayUptime>,
    /// Every hour of the report window, oldest first.
    pub hours: Vec<HourLatency>,
    /// The outages of the last [`PAGE_DAYS`] days, newest first.
    pub incidents: Vec<Incident>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DayUptime {
    pub day: time::Date,
    pub checks: u32,
    pub up_checks: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct HourLatency {
    pub hour: OffsetDateTime,
    pub checks: u32,
    pub up_checks: u32,
    pub latency: Percentiles,
    /// The median of each phase.
    pub phases_p50_ms: Phases,
}
