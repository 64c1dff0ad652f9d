//! Which sites a run checks, with no state kept anywhere: per-site
//! intervals spread over scheduler ticks, and shards.
//!
//! A site with `interval = "5m"` under a `--tick 1m` scheduler is due in one
//! tick out of five: its slot is a stable hash of its name, so sites spread
//! evenly over the ticks and each is due exactly once per interval. The
//! tick of a run is its start time rounded to the nearest tick, so a job
//! that starts a little late (or early) still counts as its own tick, and a
//! skipped tick loses that tick's checks and nothing else.

use std::fmt;
use std::time::Duration;

use time::OffsetDateTime;

use crate::keys::lock_key;

/// A stable hash of a name: the same in every process and version.
fn stable_hash(domain: &str, name: &str) -> u64 {
    lock_key(&format!("{domain}:{name}")) as u64
}

/// The number of the tick a run belongs to: its start rounded to the
/// nearest multiple of `tick` since the Unix epoch.
pub fn tick_number(at: OffsetDateTime, tick: Duration) -> i128 {
    let tick = tick.as_nanos().max(1) as i128;
    let now = at.unix_timestamp_nanos();
    (now + tick / 2).div_euclid(tick)
}

/// Whether a site with `interval` is due in tick `tick_number`. The site is
/// checked every `max(1, interval / tick)` ticks: never less often than its
/// interval asks.
pub fn due(site: &str, interval: Option<Duration>, tick: Duration, tick_number: i128) -> bool {
    let Some(interval) = interval else {
        return true;
    };
    let every = (interval.as_nanos() / tick.as_nanos().max(1)).max(1);
    let slot = u128::from(stable_hash("slot", site)) % every;
    tick_number.rem_euclid(every as i128) as u128 == slot
}

/// One shard of N: a stable, disjoint share of the sites.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl Shard {
    /// Parses `I/N`, or `N` with `I` from `JOB_COMPLETION_INDEX` (which a
    /// Kubernetes Indexed Job sets), given here as `completion_index`.
    pub fn parse(text: &str, completion_index: Option<&str>) -> Result<Shard, String> {
        let number = |s: &str, what: &str| {
            s.trim()
                .parse::<u32>()
                .map_err(|_| format!("--shard `{text}`: {what} `{s}` is not a number"))
        };
        let (index, count) = match text.split_once('/') {
            Some((i, n)) => (number(i, "index")?, number(n, "count")?),
            None => {
                let index = completion_index.ok_or_else(|| {
                    format!("--shard `{text}`: give I/N, or run in an Indexed Job (JOB_COMPLETION_INDEX is not set)")
                })?;
                (
                    number(index, "JOB_COMPLETION_INDEX")?,
                    number(text, "count")?,
                )
            }
        };
        if count == 0 || index >= count {
            return Err(format!(
                "--shard `{text}`: the index must be below the count (0/{count} to {}/{count})",
                count.saturating_sub(1)
            ));
        }
        Ok(Shard { index, count })
    }

    /// Whether `site` belongs to this shard.
    pub fn owns(&self, site: &str) -> bool {
        stable_hash("shard", site) % u64::from(self.count) == u64::from(self.index)
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn names(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("site-{i}.example.com")).collect()
    }

    const MINUTE: Duration = Duration::from_secs(60);

    #[test]
    fn every_site_is_due_exactly_once_per_interval_over_a_day_of_ticks() {
        let day_start = datetime!(2026-11-22 00:00:00 UTC);
        let sites = names(500);
        for minutes in [1u64, 2, 5, 15, 60, 7] {
            let interval = Duration::from_secs(60 * minutes);
            let mut per_tick = vec![0usize; 1440];
            for site in &sites {
                let due_ticks: Vec<i128> = (0..1440)
                    .map(|m| tick_number(day_start + time::Duration::minutes(m), MINUTE))
                    .filter(|&t| due(site, Some(interval), MINUTE, t))
                    .collect();
                // Exactly once in every window of `minutes` consecutive ticks:
                // first within the first window, last within the last, and
                // exactly `minutes` apart in between.
                let t0 = tick_number(day_start, MINUTE);
                let m = i128::from(minutes);
                assert!(due_ticks[0] - t0 < m, "{site} every {minutes}m starts late");
                assert!(
                    *due_ticks.last().unwrap() - t0 >= 1440 - m,
                    "{site} every {minutes}m ends early"
                );
                for pair in due_ticks.windows(2) {
                    assert_eq!(
                        pair[1] - pair[0],
                        i128::from(minutes),
                        "{site} every {minutes}m"
                    );
                }
                for t in &due_ticks {
                    per_tick[(t - t0) as usize] += 1;
                }
            }
            // Spread evenly: no tick gets more than twice its fair share.
            let fair = sites.len() as f64 / minutes as f64;
            let busiest = *per_tick.iter().max().unwrap() as f64;
            assert!(
                busiest <= 2.0 * fair + 2.0,
                "every {minutes}m: busiest tick {busiest}, fair {fair}"
            );
        }
    }

    #[test]
    fn a_late_or_early_start_belongs_to_the_nearest_tick() {
        let tick = tick_number(datetime!(2026-11-22 12:01:00 UTC), MINUTE);
        assert_eq!(
            tick_number(datetime!(2026-11-22 12:01:25 UTC), MINUTE),
            tick
        );
        assert_eq!(
            tick_number(datetime!(2026-11-22 12:00:40 UTC), MINUTE),
            tick
        );
        assert_eq!(
            tick_number(datetime!(2026-11-22 12:01:31 UTC), MINUTE),
            tick + 1
        );
    }

    #[test]
    fn sites_without_an_interval_are_due_at_every_tick() {
        assert!((0..100).all(|t| due("a", None, MINUTE, t)));
        assert!((0..100).all(|t| due("a", Some(Duration::from_secs(30)), MINUTE, t)));
    }

    #[test]
    fn shards_are_disjoint_and_complete() {
        let sites = names(10_000);
        for count in [1u32, 2, 3, 7, 16] {
            let shards: Vec<Shard> = (0..count).map(|index| Shard { index, count }).collect();
            let mut sizes = vec![0usize; count as usize];
            for site in &sites {
                let owners: Vec<u32> = shards
                    .iter()
                    .filter(|s| s.owns(site))
                    .map(|s| s.index)
                    .collect();
                assert_eq!(owners.len(), 1, "{site} in shards {owners:?} of {count}");
                sizes[owners[0] as usize] += 1;
            }
            let fair = sites.len() / count as usize;
            assert!(
                sizes.iter().all(|&n| n > fair * 8 / 10),
                "uneven shards {sizes:?}"
            );
        }
    }

    #[test]
    fn shard_specs_parse_and_name_their_errors() {
        assert_eq!(Shard::parse("1/4", None), Ok(Shard { index: 1, count: 4 }));
        assert_eq!(
            Shard::parse("4", Some("3")),
            Ok(Shard { index: 3, count: 4 })
        );
        assert!(
            Shard::parse("4", None)
                .unwrap_err()
                .contains("JOB_COMPLETION_INDEX is not set")
        );
        assert!(
            Shard::parse("4/4", None)
                .unwrap_err()
                .contains("below the count")
        );
        assert!(Shard::parse("a/4", None).unwrap_err().contains("index `a`"));
    }
}
