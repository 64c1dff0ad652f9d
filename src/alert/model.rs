//! What `alert` keeps between runs and what one evaluation makes: the
//! checks it reads, each location's and site's state, the probers, the
//! events.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use serde_json::Value;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::message::rfc3339_ms;
use crate::rule::{SiteState, Streak};

/// One stored check, as `alert` reads it.
#[derive(Debug, Clone)]
pub struct NewCheck {
    pub site: String,
    pub location: String,
    pub started_at: OffsetDateTime,
    pub check_id: Uuid,
    pub up: bool,
    /// Up, but slower than the site's `degraded_after`.
    pub degraded: bool,
    pub response_time_ms: Option<f64>,
    pub status_code: Option<i16>,
    pub error_kind: Option<String>,
    pub error: Option<String>,
    pub tls_expires_at: Option<OffsetDateTime>,
    pub url: String,
    /// Whether its run was blind (no check of several answered), by the
    /// run record; `None` without one (not stored yet, or an older prober).
    pub run_blind: Option<bool>,
}

/// A site seen from one location: the position (newest check evaluated)
/// and the streak so far.
#[derive(Debug, Clone, PartialEq)]
pub struct Location {
    pub last_started_at: OffsetDateTime,
    pub last_check_id: Uuid,
    pub streak: Streak,
    /// Its newest check was up but slow.
    pub degraded: bool,
    /// Its checks up but slow in a row, to the newest.
    pub slow: u32,
    /// Its newest check's response time.
    pub response_time_ms: Option<f64>,
    pub status_code: Option<i16>,
    pub error_kind: Option<String>,
    pub error: Option<String>,
    pub url: String,
}

/// A site's state, and what the receivers were last told.
#[derive(Debug, Clone, PartialEq)]
pub struct Site {
    pub state: SiteState,
    pub since: OffsetDateTime,
    /// What receivers were last told: `Up`, `Down` or `Stale`.
    pub notified: SiteState,
    /// The start of the outage receivers were told of (for `resolved`).
    pub outage_since: Option<OffsetDateTime>,
    pub notified_at: Option<OffsetDateTime>,
    pub tls_expires_at: Option<OffsetDateTime>,
    pub tls_days_sent: Vec<i32>,
}

/// What a prober (a location) is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProberState {
    Up,
    /// Its runs are blind: it lost its own network.
    ProberDown,
    /// Its runs stopped (the run ledger).
    Stale,
}

impl ProberState {
    /// As `alert_probers` stores it and events say it.
    pub fn as_str(self) -> &'static str {
        match self {
            ProberState::Up => "up",
            ProberState::ProberDown => "prober_down",
            ProberState::Stale => "stale",
        }
    }

    /// The stored name; `None` for a name this version does not know.
    pub fn parse(name: &str) -> Option<ProberState> {
        [ProberState::Up, ProberState::ProberDown, ProberState::Stale]
            .into_iter()
            .find(|s| s.as_str() == name)
    }
}

/// A prober (a location): its state, and what receivers were last told.
#[derive(Debug, Clone, PartialEq)]
pub struct Prober {
    pub state: ProberState,
    pub since: OffsetDateTime,
    pub notified: ProberState,
}

/// Everything `alert` keeps between runs.
#[derive(Debug, Default, Clone)]
pub struct State {
    pub locations: HashMap<(String, String), Location>,
    pub sites: HashMap<String, Site>,
    pub probers: HashMap<String, Prober>,
}

/// An event to record and send.
#[derive(Debug, Clone)]
pub struct Event {
    pub event_id: Uuid,
    pub kind: &'static str,
    pub site: Option<String>,
    pub location: Option<String>,
    /// Exactly what a webhook receives.
    pub payload: Value,
    /// Notifier names.
    pub notify: Vec<String>,
}

/// A location's newest run, from the run ledger.
#[derive(Debug, Clone)]
pub struct LastRun {
    pub location: String,
    pub started_at: OffsetDateTime,
    pub tick: Duration,
}

/// What one evaluation changed: the keys to write back, and the events.
#[derive(Debug, Default)]
pub struct Outcome {
    pub locations: BTreeSet<(String, String)>,
    pub sites: BTreeSet<String>,
    pub probers: BTreeSet<String>,
    pub events: Vec<Event>,
    /// Checks skipped because their prober had lost its network.
    pub skipped: usize,
}

pub(super) fn ts(t: OffsetDateTime) -> String {
    rfc3339_ms::format(&t)
}

/// How long, for a person: `1h 5m`, `42s`.
pub(super) fn span(d: time::Duration) -> String {
    let s = d.whole_seconds().max(0) as u64;
    let rounded = if s >= 3600 { s / 60 * 60 } else { s };
    humantime::format_duration(Duration::from_secs(rounded)).to_string()
}
