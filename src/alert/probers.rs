//! The probers (the locations) themselves: which of their new checks are
//! blind (the prober lost its own network), each prober's state from its
//! checks and from the run ledger, and the events those changes make.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use serde_json::json;
use time::OffsetDateTime;
use uuid::Uuid;

use super::model::*;
use super::policy::Config;
use crate::rule;

/// Which checks came from a prober that lost its own network: a run of
/// several checks none of which was answered ([`rule::blind`]). Its checks
/// say nothing about the sites. The run record says so; for checks whose
/// record is not stored yet, the same rule over the location's new checks
/// does.
pub(super) struct Blindness {
    /// Locations whose new checks without a run record were blind.
    pub(super) batch: BTreeSet<String>,
    /// Sites each location's new checks mention.
    pub(super) sites_seen: HashMap<String, usize>,
}

impl Blindness {
    pub(super) fn of(grouped: &BTreeMap<&str, Vec<&NewCheck>>) -> Blindness {
        let mut out = Blindness {
            batch: BTreeSet::new(),
            sites_seen: HashMap::new(),
        };
        for (&location, seen) in grouped {
            let sites: BTreeSet<&str> = seen.iter().map(|c| c.site.as_str()).collect();
            out.sites_seen.insert(location.to_owned(), sites.len());
            let unrecorded: Vec<&&NewCheck> =
                seen.iter().filter(|c| c.run_blind.is_none()).collect();
            let unrecorded_sites: BTreeSet<&str> =
                unrecorded.iter().map(|c| c.site.as_str()).collect();
            let answered = unrecorded
                .iter()
                .filter(|c| rule::answered(c.up, c.status_code, c.error_kind.as_deref()))
                .count();
            if rule::blind(unrecorded_sites.len() as u64, answered as u64) {
                out.batch.insert(location.to_owned());
            }
        }
        out
    }

    pub(super) fn is_blind(&self, c: &NewCheck) -> bool {
        c.run_blind
            .unwrap_or_else(|| self.batch.contains(&c.location))
    }
}

/// The checks of each location, in the order given.
pub(super) fn by_location(checks: &[NewCheck]) -> BTreeMap<&str, Vec<&NewCheck>> {
    let mut out: BTreeMap<&str, Vec<&NewCheck>> = BTreeMap::new();
    for c in checks {
        out.entry(&c.location).or_default().push(c);
    }
    out
}

/// A prober as first seen: up.
pub(super) fn new_prober(now: OffsetDateTime) -> Prober {
    Prober {
        state: ProberState::Up,
        since: now,
        notified: ProberState::Up,
    }
}

/// Each location's prober is `prober_down` while its newest check is blind,
/// else `up`; since the first check of that stretch.
pub(super) fn probers_from_checks(
    now: OffsetDateTime,
    state: &mut State,
    grouped: &BTreeMap<&str, Vec<&NewCheck>>,
    blindness: &Blindness,
    out: &mut Outcome,
) {
    for (&location, seen) in grouped {
        let Some(newest) = seen.last() else { continue };
        let prober = state
            .probers
            .entry(location.to_owned())
            .or_insert_with(|| new_prober(now));
        let blind = blindness.is_blind(newest);
        let next = if blind {
            ProberState::ProberDown
        } else {
            ProberState::Up
        };
        if prober.state != next {
            prober.state = next;
            prober.since = seen
                .iter()
                .rev()
                .take_while(|c| blindness.is_blind(c) == blind)
                .last()
                .map_or(now, |c| c.started_at);
            out.probers.insert(location.to_owned());
        }
    }
}

/// A location whose runs stopped (the run ledger) is `stale`: no run for
/// three ticks, and at least the site default's stale_after.
pub(super) fn probers_from_runs(
    config: &Config,
    now: OffsetDateTime,
    state: &mut State,
    runs: &[LastRun],
    out: &mut Outcome,
) {
    for run in runs {
        // Checked: a run record's tick is data (drain bounds it to a year).
        let limit = run
            .tick
            .checked_mul(3)
            .unwrap_or(Duration::MAX)
            .max(config.defaults().stale_after);
        let stopped = now - run.started_at > limit;
        let prober = state
            .probers
            .entry(run.location.clone())
            .or_insert_with(|| new_prober(now));
        if stopped && prober.state != ProberState::Stale {
            prober.state = ProberState::Stale;
            prober.since = run.started_at;
            out.probers.insert(run.location.clone());
        } else if !stopped && prober.state == ProberState::Stale {
            prober.state = ProberState::Up;
            prober.since = run.started_at;
            out.probers.insert(run.location.clone());
        }
    }
}

/// Probers: one event for a location instead of one per site.
pub(super) fn prober_events(
    config: &Config,
    now: OffsetDateTime,
    state: &mut State,
    sites_seen: &HashMap<String, usize>,
    out: &mut Outcome,
) {
    let names: Vec<String> = state.probers.keys().cloned().collect();
    for location in names {
        let prober = state.probers.get_mut(&location).expect("listed");
        let sites_seen = sites_seen.get(&location).copied().unwrap_or(0);
        let (kind, summary) = match (prober.state, prober.notified) {
            (ProberState::ProberDown, n) if n != ProberState::ProberDown => (
                "prober_down",
                format!(
                    "the prober at {location} lost its own network: all {sites_seen} sites it checked failed without an answer; their checks are not counted"
                ),
            ),
            (ProberState::Stale, n) if n != ProberState::Stale => (
                "stale",
                format!(
                    "the prober at {location} has made no run since {}: its scheduler stopped or skips ticks",
                    ts(prober.since)
                ),
            ),
            (ProberState::Up, ProberState::ProberDown | ProberState::Stale) => {
                ("resolved", format!("the prober at {location} works again"))
            }
            _ => continue,
        };
        let event_id = Uuid::new_v4();
        let mut payload = json!({
            "event_id": event_id.to_string(),
            "kind": kind,
            "site": null,
            "url": null,
            "location": location,
            "at": ts(now),
            "since": ts(prober.since),
            "locations_down": null,
            "locations_total": null,
            "status_code": null,
            "error_kind": null,
            "error": null,
            "tls_expires_at": null,
            "summary": summary,
        });
        if kind == "resolved" {
            payload["resolves"] = prober.notified.as_str().into();
        }
        prober.notified = match kind {
            "resolved" => ProberState::Up,
            "stale" => ProberState::Stale,
            _ => ProberState::ProberDown,
        };
        out.probers.insert(location.clone());
        out.events.push(Event {
            event_id,
            kind,
            site: None,
            location: Some(location.clone()),
            payload,
            notify: config.defaults().notify.clone(),
        });
    }
}
