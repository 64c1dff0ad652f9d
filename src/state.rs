//! When a site is down: the rule `report` shows (and `alert` sends on).
//!
//! Per location, a site goes down after `failure_threshold` consecutive
//! failed checks and comes back after `success_threshold` consecutive good
//! ones; the site is down while at least `quorum` locations are. A down
//! period starts at the first failed check of the streak that took it down
//! and ends at the first good check of the streak that brought it back, so
//! its duration is the outage's, not the detection's.

use std::time::Duration;

/// The thresholds (SPEC.md's defaults: 3, 2, 1, 15 minutes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    pub failure_threshold: u32,
    pub success_threshold: u32,
    /// Locations that must be down for the site to be.
    pub quorum: u32,
    /// A location with no check for this long is stale.
    pub stale_after: Duration,
}

impl Default for Rule {
    fn default() -> Self {
        Rule {
            failure_threshold: 3,
            success_threshold: 2,
            quorum: 1,
            stale_after: Duration::from_secs(15 * 60),
        }
    }
}

/// A down period, in Unix milliseconds; `end` is `None` while it lasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    pub start: i64,
    pub end: Option<i64>,
}

/// One location's down periods, from its checks in time order
/// (`(time, up)`), starting from up.
pub fn location_periods(checks: &[(i64, bool)], rule: &Rule) -> Vec<Period> {
    let mut periods = Vec::new();
    let mut down_since: Option<i64> = None;
    let (mut fails, mut first_fail) = (0u32, 0i64);
    let (mut goods, mut first_good) = (0u32, 0i64);
    for &(at, up) in checks {
        if up {
            fails = 0;
            if goods == 0 {
                first_good = at;
            }
            goods += 1;
            if let Some(start) = down_since
                && goods >= rule.success_threshold.max(1)
            {
                periods.push(Period {
                    start,
                    end: Some(first_good),
                });
                down_since = None;
            }
        } else {
            goods = 0;
            if fails == 0 {
                first_fail = at;
            }
            fails += 1;
            if down_since.is_none() && fails >= rule.failure_threshold.max(1) {
                down_since = Some(first_fail);
            }
        }
    }
    if let Some(start) = down_since {
        periods.push(Period { start, end: None });
    }
    periods
}

/// The site's down periods: while at least `quorum` locations are down.
pub fn site_periods(locations: &[Vec<Period>], quorum: u32) -> Vec<Period> {
    // +1 at a start, -1 at an end; at equal times ends go first.
    let mut edges: Vec<(i64, i32)> = Vec::new();
    for periods in locations {
        for p in periods {
            edges.push((p.start, 1));
            if let Some(end) = p.end {
                edges.push((end, -1));
            }
        }
    }
    edges.sort_unstable();
    let quorum = i64::from(quorum.max(1));
    let (mut down, mut start) = (0i64, None);
    let mut out = Vec::new();
    for (at, step) in edges {
        down += i64::from(step);
        match start {
            None if down >= quorum => start = Some(at),
            Some(s) if down < quorum => {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn seq(pattern: &str) -> Vec<(i64, bool)> {
        pattern
            .chars()
            .enumerate()
            .map(|(i, c)| (i as i64 * 60_000, c == '+'))
            .collect()
    }

    #[test]
    fn three_failures_make_an_outage_from_the_first_and_two_successes_end_it() {
        let rule = Rule::default();
        assert_eq!(location_periods(&seq("++-+--+-++"), &rule), vec![]);
        assert_eq!(
            location_periods(&seq("++---+-++++"), &rule),
            vec![Period {
                start: 2 * 60_000,
                end: Some(7 * 60_000)
            }]
        );
        assert_eq!(
            location_periods(&seq("+----"), &rule),
            vec![Period {
                start: 60_000,
                end: None
            }]
        );
    }

    #[test]
    fn a_site_is_down_while_a_quorum_of_locations_is() {
        let p = |s: i64, e: Option<i64>| Period { start: s, end: e };
        let eu = vec![p(10, Some(50))];
        let us = vec![p(30, Some(90))];
        let ap = vec![p(40, None)];
        assert_eq!(
            site_periods(&[eu.clone(), us.clone(), ap.clone()], 1),
            vec![p(10, None)]
        );
        assert_eq!(
            site_periods(&[eu.clone(), us.clone(), ap.clone()], 2),
            vec![p(30, Some(90))]
        );
        assert_eq!(site_periods(&[eu, us, ap], 3), vec![p(40, Some(50))]);
    }
}
