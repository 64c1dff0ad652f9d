//! When a site is up, pending, down, degraded, stale, in maintenance or
//! unknown: the one rule that `report` shows and `alert` sends on. Pure:
//! checks and times come in, states go out; nothing here reads a clock or
//! a database.
//!
//! Per location, a [`Streak`]: the location goes down after
//! `failure_threshold` consecutive failed checks and comes back after
//! `success_threshold` consecutive good ones. Per site, a [`Verdict`] from
//! its locations ([`site`]): `down` while at least the quorum of its fresh
//! locations is down; `pending` while one is failing short of that;
//! `stale` when none has a check younger than `stale_after`; `unknown`
//! when no check mentions it. A down period starts at the first failed
//! check of the streak that took it down and ends at the first good check
//! of the streak that brought it back: its duration is the outage's, not
//! the detection's.

use std::time::Duration;

use serde::Serialize;
use time::OffsetDateTime;

/// How many of a site's locations must be down for the site to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quorum {
    Count(u32),
    /// More than half of the locations that checked it lately.
    Majority,
}

impl Quorum {
    /// The locations needed out of `total` (never fewer than one).
    pub fn needed(self, total: u32) -> u32 {
        match self {
            Quorum::Count(n) => n.max(1),
            Quorum::Majority => total / 2 + 1,
        }
    }
}

/// A site's rule (the defaults of docs/src/report.md's state rule: 3, 2, 1, 15 minutes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    pub failure_threshold: u32,
    pub success_threshold: u32,
    pub quorum: Quorum,
    /// A location with no check for this long is stale.
    pub stale_after: Duration,
}

impl Default for Rule {
    fn default() -> Self {
        Rule {
            failure_threshold: 3,
            success_threshold: 2,
            quorum: Quorum::Count(1),
            stale_after: Duration::from_secs(15 * 60),
        }
    }
}

/// A site's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SiteState {
    Up,
    /// Failing, but short of the threshold or the quorum: not down yet.
    Pending,
    Down,
    /// Up, but slower than its `degraded_after`.
    Degraded,
    /// No check for `stale_after`.
    Stale,
    /// Inside a maintenance window: nothing is sent.
    Maintenance,
    /// No check mentions it.
    Unknown,
}

impl SiteState {
    /// Problems first (down, pending, degraded, stale, unknown,
    /// maintenance), then up: the order of the page and the table.
    pub fn severity(self) -> u8 {
        match self {
            SiteState::Down => 0,
            SiteState::Pending => 1,
            SiteState::Degraded => 2,
            SiteState::Stale => 3,
            SiteState::Unknown => 4,
            SiteState::Maintenance => 5,
            SiteState::Up => 6,
        }
    }

    pub const ALL: [SiteState; 7] = [
        SiteState::Up,
        SiteState::Pending,
        SiteState::Down,
        SiteState::Degraded,
        SiteState::Stale,
        SiteState::Maintenance,
        SiteState::Unknown,
    ];

    /// The name in JSON, the database and the outputs.
    pub fn as_str(self) -> &'static str {
        match self {
            SiteState::Up => "up",
            SiteState::Pending => "pending",
            SiteState::Down => "down",
            SiteState::Degraded => "degraded",
            SiteState::Stale => "stale",
            SiteState::Maintenance => "maintenance",
            SiteState::Unknown => "unknown",
        }
    }

    /// The state a name stands for (`None` for any other text).
    pub fn parse(text: &str) -> Option<SiteState> {
        SiteState::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// Whether receivers hear of it as an outage (`down`), or as no news
    /// (`up`, `pending`, `degraded`): the states events are made between.
    pub fn is_down(self) -> bool {
        self == SiteState::Down
    }
}

/// Whether a check got any answer from the site: up, a status code, or a
/// failure after the connection (not a DNS, connect or TLS failure of the
/// prober's own network, nor its timeout before any byte).
pub fn answered(up: bool, status_code: Option<i16>, error_kind: Option<&str>) -> bool {
    up || status_code.is_some() || error_kind.is_none()
}

/// Whether a prober's run was blind: it checked several sites and none
/// answered. Its own network was down, not the sites: its checks say
/// nothing about them, and neither `report` nor `alert` counts them.
pub fn blind(checked: u64, answered: u64) -> bool {
    checked >= 2 && answered == 0
}

/// A down period; `end` is `None` while it lasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    pub start: OffsetDateTime,
    pub end: Option<OffsetDateTime>,
}

/// One location's streak: what its checks so far, in time order, add up to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Streak {
    /// Consecutive failed checks, up to the newest.
    pub fails: u32,
    /// Consecutive good checks, up to the newest.
    pub goods: u32,
    /// The first check of the current failed streak.
    pub first_fail_at: Option<OffsetDateTime>,
    /// The first check of the current good streak.
    pub first_good_at: Option<OffsetDateTime>,
    /// Down since (the first failed check of the streak that took it
    /// down); `None` while the location is not down.
    pub down_since: Option<OffsetDateTime>,
}

impl Streak {
    pub fn is_down(&self) -> bool {
        self.down_since.is_some()
    }

    /// Failing now, down or not.
    pub fn is_failing(&self) -> bool {
        self.fails > 0 || self.is_down()
    }

    /// Adds one check; returns the down period it ended, if it ended one.
    pub fn apply(&mut self, at: OffsetDateTime, up: bool, rule: &Rule) -> Option<Period> {
        if up {
            if self.goods == 0 {
                self.first_good_at = Some(at);
            }
            self.fails = 0;
            self.first_fail_at = None;
            self.goods = self.goods.saturating_add(1);
            if let Some(start) = self.down_since
                && self.goods >= rule.success_threshold.max(1)
            {
                self.down_since = None;
                return Some(Period {
                    start,
                    end: self.first_good_at,
                });
            }
        } else {
            if self.fails == 0 {
                self.first_fail_at = Some(at);
            }
            self.goods = 0;
            self.first_good_at = None;
            self.fails = self.fails.saturating_add(1);
            if self.down_since.is_none() && self.fails >= rule.failure_threshold.max(1) {
                self.down_since = self.first_fail_at;
            }
        }
        None
    }
}

/// One location's down periods and its streak at the end, from its checks
/// in time order (`(time, up)`), starting from up.
pub fn location_periods(checks: &[(OffsetDateTime, bool)], rule: &Rule) -> (Vec<Period>, Streak) {
    let mut streak = Streak::default();
    let mut periods = Vec::new();
    for &(at, up) in checks {
        if let Some(p) = streak.apply(at, up, rule) {
            periods.push(p);
        }
    }
    if let Some(start) = streak.down_since {
        periods.push(Period { start, end: None });
    }
    (periods, streak)
}

/// The site's down periods: while at least `quorum` of its `locations`
/// are down (a majority of those given).
pub fn site_periods(locations: &[Vec<Period>], quorum: Quorum) -> Vec<Period> {
    // +1 at a start, -1 at an end; the edges of one instant are taken
    // together (a location coming back as another goes down is no gap).
    let mut edges: Vec<(OffsetDateTime, i32)> = Vec::new();
    for periods in locations {
        for p in periods {
            edges.push((p.start, 1));
            if let Some(end) = p.end {
                edges.push((end, -1));
            }
        }
    }
    edges.sort_unstable();
    let needed = i64::from(quorum.needed(locations.len() as u32));
    let (mut down, mut start) = (0i64, None);
    let mut out = Vec::new();
    for (i, &(at, step)) in edges.iter().enumerate() {
        down += i64::from(step);
        if edges.get(i + 1).is_some_and(|next| next.0 == at) {
            continue;
        }
        match start {
            None if down >= needed => start = Some(at),
            Some(s) if down < needed => {
                out.push(Period {
                    start: s,
                    end: Some(at),
                });
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        out.push(Period {
            start: s,
            end: None,
        });
    }
    out
}

/// A location of a site as of now: its newest check and its streak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seen {
    pub last_at: OffsetDateTime,
    pub streak: Streak,
    /// Its newest check was up but slower than the site's `degraded_after`.
    pub degraded: bool,
}

/// A site's state, since when, and how many of its locations say so.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    pub state: SiteState,
    /// When the state began, where the locations tell: a down site's
    /// outage start (when the quorum was reached), a pending site's first
    /// failed check, a stale site's newest check. `None` for up and
    /// degraded (the caller knows when the last outage ended) and unknown.
    pub since: Option<OffsetDateTime>,
    /// Fresh locations down, and fresh locations.
    pub down: u32,
    pub fresh: u32,
}

/// The site's verdict at `now` from its locations (each `Seen` once).
pub fn site(rule: &Rule, now: OffsetDateTime, in_maintenance: bool, locations: &[Seen]) -> Verdict {
    let verdict = checked(rule, now, locations);
    if in_maintenance && verdict.state != SiteState::Unknown {
        return Verdict {
            state: SiteState::Maintenance,
            ..verdict
        };
    }
    verdict
}

fn checked(rule: &Rule, now: OffsetDateTime, locations: &[Seen]) -> Verdict {
    let stale_after = time::Duration::try_from(rule.stale_after).unwrap_or(time::Duration::MAX);
    let Some(newest) = locations.iter().map(|l| l.last_at).max() else {
        return Verdict {
            state: SiteState::Unknown,
            since: None,
            down: 0,
            fresh: 0,
        };
    };
    let fresh: Vec<&Seen> = locations
        .iter()
        .filter(|l| now - l.last_at <= stale_after)
        .collect();
    let total = fresh.len() as u32;
    let mut down_since: Vec<OffsetDateTime> =
        fresh.iter().filter_map(|l| l.streak.down_since).collect();
    down_since.sort_unstable();
    let down = down_since.len() as u32;
    let (state, since) = if fresh.is_empty() {
        (SiteState::Stale, Some(newest))
    } else if down > 0 && down >= rule.quorum.needed(total) {
        // Down from when the quorum was reached: the needed-th location.
        let needed = rule.quorum.needed(total) as usize;
        (SiteState::Down, down_since.get(needed - 1).copied())
    } else if fresh.iter().any(|l| l.streak.is_failing()) {
        let since = fresh
            .iter()
            .filter_map(|l| l.streak.down_since.or(l.streak.first_fail_at))
            .min();
        (SiteState::Pending, since)
    } else if fresh.iter().any(|l| l.degraded) {
        (SiteState::Degraded, None)
    } else {
        (SiteState::Up, None)
    };
    Verdict {
        state,
        since,
        down,
        fresh: total,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const T0: OffsetDateTime = datetime!(2026-12-01 00:00 UTC);

    fn minute(i: i64) -> OffsetDateTime {
        T0 + time::Duration::minutes(i)
    }

    fn seq(pattern: &str) -> Vec<(OffsetDateTime, bool)> {
        pattern
            .chars()
            .enumerate()
            .map(|(i, c)| (minute(i as i64), c == '+'))
            .collect()
    }

    fn seen(pattern: &str, rule: &Rule) -> Seen {
        let checks = seq(pattern);
        Seen {
            last_at: checks.last().map_or(T0, |c| c.0),
            streak: location_periods(&checks, rule).1,
            degraded: false,
        }
    }

    #[test]
    fn three_failures_make_an_outage_from_the_first_and_two_successes_end_it() {
        let rule = Rule::default();
        assert_eq!(location_periods(&seq("++-+--+-++"), &rule).0, vec![]);
        assert_eq!(
            location_periods(&seq("++---+-++++"), &rule).0,
            vec![Period {
                start: minute(2),
                end: Some(minute(7))
            }]
        );
        let (periods, streak) = location_periods(&seq("+----"), &rule);
        assert_eq!(
            periods,
            vec![Period {
                start: minute(1),
                end: None
            }]
        );
        assert_eq!(streak.fails, 4);
        assert!(streak.is_down());
    }

    #[test]
    fn a_site_is_down_while_a_quorum_of_locations_is() {
        let p = |s: i64, e: Option<i64>| Period {
            start: minute(s),
            end: e.map(minute),
        };
        let eu = vec![p(10, Some(50))];
        let us = vec![p(30, Some(90))];
        let ap = vec![p(40, None)];
        let all = [eu.clone(), us.clone(), ap.clone()];
        assert_eq!(site_periods(&all, Quorum::Count(1)), vec![p(10, None)]);
        assert_eq!(site_periods(&all, Quorum::Count(2)), vec![p(30, Some(90))]);
        assert_eq!(site_periods(&all, Quorum::Majority), vec![p(30, Some(90))]);
        assert_eq!(site_periods(&all, Quorum::Count(3)), vec![p(40, Some(50))]);
    }

    #[test]
    fn failing_from_the_first_check_is_pending_then_down_never_up() {
        let rule = Rule::default();
        let now = minute(1);
        let v = site(&rule, now, false, &[seen("-", &rule)]);
        assert_eq!((v.state, v.since), (SiteState::Pending, Some(T0)));
        let v = site(&rule, minute(2), false, &[seen("---", &rule)]);
        assert_eq!((v.state, v.since), (SiteState::Down, Some(T0)));
        // One good check is not enough to come back: still down.
        let v = site(&rule, minute(3), false, &[seen("---+", &rule)]);
        assert_eq!(v.state, SiteState::Down);
        let v = site(&rule, minute(4), false, &[seen("---++", &rule)]);
        assert_eq!((v.state, v.since), (SiteState::Up, None));
    }

    #[test]
    fn majority_counts_the_fresh_locations_and_down_starts_at_the_quorum() {
        let rule = Rule {
            quorum: Quorum::Majority,
            ..Rule::default()
        };
        let now = minute(9);
        let a = seen("++++------", &rule); // down since minute 4
        let b = seen("++++++----", &rule); // down since minute 6
        let c = seen("++++++++++", &rule);
        let v = site(&rule, now, false, &[a, b, c]);
        assert_eq!((v.state, v.since), (SiteState::Down, Some(minute(6))));
        assert_eq!((v.down, v.fresh), (2, 3));
        // One of three is pending, not down.
        let v = site(&rule, now, false, &[a, c, c]);
        assert_eq!((v.state, v.since), (SiteState::Pending, Some(minute(4))));
        // A stale location does not count: one of two fresh is not a majority.
        let old = Seen {
            last_at: now - time::Duration::hours(1),
            ..c
        };
        let v = site(&rule, now, false, &[a, c, old]);
        assert_eq!((v.state, v.fresh), (SiteState::Pending, 2));
        let v = site(&rule, now, false, &[a, old]);
        assert_eq!(v.state, SiteState::Down);
    }

    #[test]
    fn stale_unknown_degraded_and_maintenance() {
        let rule = Rule::default();
        let a = seen("+++", &rule);
        let later = minute(2) + time::Duration::minutes(16);
        let v = site(&rule, later, false, &[a]);
        assert_eq!((v.state, v.since), (SiteState::Stale, Some(minute(2))));
        assert_eq!(site(&rule, later, false, &[]).state, SiteState::Unknown);
        assert_eq!(site(&rule, later, true, &[]).state, SiteState::Unknown);
        let slow = Seen {
            degraded: true,
            ..a
        };
        assert_eq!(
            site(&rule, minute(3), false, &[slow]).state,
            SiteState::Degraded
        );
        let down = seen("----", &rule);
        let v = site(&rule, minute(4), true, &[down]);
        assert_eq!((v.state, v.since), (SiteState::Maintenance, Some(T0)));
        for s in SiteState::ALL {
            assert_eq!(SiteState::parse(s.as_str()), Some(s));
        }
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        /// The same rule written another way: over runs of equal checks.
        fn reference(checks: &[(OffsetDateTime, bool)], rule: &Rule) -> Vec<Period> {
            let mut runs: Vec<(bool, u32, OffsetDateTime)> = Vec::new();
            for &(at, up) in checks {
                match runs.last_mut() {
                    Some((u, n, _)) if *u == up => *n += 1,
                    _ => runs.push((up, 1, at)),
                }
            }
            let mut out = Vec::new();
            let mut since = None;
            for (up, n, start) in runs {
                match (up, since) {
                    (false, None) if n >= rule.failure_threshold.max(1) => since = Some(start),
                    (true, Some(s)) if n >= rule.success_threshold.max(1) => {
                        out.push(Period {
                            start: s,
                            end: Some(start),
                        });
                        since = None;
                    }
                    _ => {}
                }
            }
            if let Some(s) = since {
                out.push(Period {
                    start: s,
                    end: None,
                });
            }
            out
        }

        fn any_rule() -> impl Strategy<Value = Rule> {
            (
                1u32..6,
                1u32..5,
                prop_oneof![(1u32..5).prop_map(Quorum::Count), Just(Quorum::Majority)],
                1u64..40,
            )
                .prop_map(|(f, s, quorum, stale)| Rule {
                    failure_threshold: f,
                    success_threshold: s,
                    quorum,
                    stale_after: Duration::from_secs(stale * 60),
                })
        }

        fn pattern() -> impl Strategy<Value = Vec<bool>> {
            proptest::collection::vec(prop_oneof![3 => Just(true), 2 => Just(false)], 0..60)
        }

        fn timed(pattern: &[bool]) -> Vec<(OffsetDateTime, bool)> {
            pattern
                .iter()
                .enumerate()
                .map(|(i, up)| (minute(i as i64), *up))
                .collect()
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

            /// The streak machine agrees with the rule written over runs,
            /// and fed in any number of pieces (alert, run after run) ends
            /// where it ends fed at once (report).
            #[test]
            fn periods_match_the_reference_in_one_piece_or_many(
                rule in any_rule(),
                checks in pattern(),
                cuts in proptest::collection::vec(0usize..60, 0..4),
            ) {
                let checks = timed(&checks);
                let (periods, whole) = location_periods(&checks, &rule);
                prop_assert_eq!(&periods, &reference(&checks, &rule));
                let mut streak = Streak::default();
                let mut pieces = cuts.clone();
                pieces.sort_unstable();
                let mut from = 0;
                for cut in pieces.into_iter().chain([checks.len()]) {
                    let cut = cut.clamp(from, checks.len());
                    for &(at, up) in &checks[from..cut] {
                        streak.apply(at, up, &rule);
                    }
                    from = cut;
                }
                prop_assert_eq!(streak, whole);
                prop_assert_eq!(whole.is_down(), periods.last().is_some_and(|p| p.end.is_none()));
            }

            /// The site's state follows from its locations' as the rule says.
            #[test]
            fn a_site_is_down_exactly_when_a_quorum_of_its_fresh_locations_is(
                rule in any_rule(),
                locations in proptest::collection::vec((pattern(), 0i64..60, any::<bool>()), 0..5),
                maintenance in any::<bool>(),
            ) {
                let now = minute(100);
                let seen: Vec<Seen> = locations
                    .iter()
                    .map(|(p, late, degraded)| Seen {
                        last_at: minute(40 + late),
                        streak: location_periods(&timed(p), &rule).1,
                        degraded: *degraded,
                    })
                    .collect();
                let v = site(&rule, now, maintenance, &seen);
                let stale = time::Duration::try_from(rule.stale_after).unwrap();
                let fresh: Vec<&Seen> = seen.iter().filter(|l| now - l.last_at <= stale).collect();
                let down = fresh.iter().filter(|l| l.streak.is_down()).count() as u32;
                let expected = if seen.is_empty() {
                    SiteState::Unknown
                } else if maintenance {
                    SiteState::Maintenance
                } else if fresh.is_empty() {
                    SiteState::Stale
                } else if down >= 1 && down >= rule.quorum.needed(fresh.len() as u32) {
                    SiteState::Down
                } else if fresh.iter().any(|l| l.streak.is_failing()) {
                    SiteState::Pending
                } else if fresh.iter().any(|l| l.degraded) {
                    SiteState::Degraded
                } else {
                    SiteState::Up
                };
                prop_assert_eq!(v.state, expected);
                prop_assert_eq!((v.down, v.fresh), (down, fresh.len() as u32));
                let under = site(&rule, now, false, &seen);
                if v.state == SiteState::Maintenance {
                    prop_assert_eq!(v.since, under.since);
                }
                if under.state == SiteState::Down {
                    let starts: Vec<OffsetDateTime> =
                        fresh.iter().filter_map(|l| l.streak.down_since).collect();
                    let since = under.since.unwrap();
                    prop_assert!(starts.contains(&since) && since <= now);
                }
            }

            /// With a quorum of one, the site is down while any location
            /// is; a quorum above the locations' number is never met.
            #[test]
            fn site_periods_are_the_union_with_quorum_one(
                rule in any_rule(),
                locations in proptest::collection::vec(pattern(), 1..4),
            ) {
                let per: Vec<Vec<Period>> = locations
                    .iter()
                    .map(|p| location_periods(&timed(p), &rule).0)
                    .collect();
                let union = site_periods(&per, Quorum::Count(1));
                for w in union.windows(2) {
                    prop_assert!(w[0].end.is_some_and(|e| e < w[1].start));
                }
                let covers = |u: &Period, p: &Period| {
                    u.start <= p.start
                        && match (u.end, p.end) {
                            (None, _) => true,
                            (Some(ue), Some(pe)) => pe <= ue,
                            (Some(_), None) => false,
                        }
                };
                for p in per.iter().flatten() {
                    prop_assert!(union.iter().any(|u| covers(u, p)), "{:?} not in {:?}", p, union);
                }
                prop_assert!(site_periods(&per, Quorum::Count(per.len() as u32 + 1)).is_empty());
            }
        }
    }
}
