//! Unit tests of the report's pure computation: tallies, outages placed by the state rule, each site's report.

use super::*;
use time::macros::datetime;

fn f(site: &str, location: &str, hour: i64, failed: u32, before: Option<(i64, u32)>) -> FailedHour {
    FailedHour {
        site: site.to_owned(),
        location: location.to_owned(),
        hour: hour * HOUR,
        failed,
        before: before.map(|(h, up)| (h * HOUR, up)),
    }
}

fn hours(out: &BTreeMap<String, BTreeSet<i64>>, site: &str) -> Vec<i64> {
    out.get(site)
        .map_or_else(Vec::new, |h| h.iter().map(|h| h / HOUR).collect())
}

#[test]
fn ranges_merge_and_subtract() {
    assert_eq!(
        merge_ranges(vec![(5, 8), (1, 3), (3, 4), (7, 9)]),
        [(1, 4), (5, 9)]
    );
    assert_eq!(
        subtract_ranges(&[(0, 10), (20, 30)], &[(2, 4), (6, 8), (25, 40)]),
        [(0, 2), (4, 6), (8, 10), (20, 25)]
    );
    assert!(subtract_ranges(&[(3, 5)], &[(0, 10)]).is_empty());
}

#[test]
fn blips_are_not_read_but_outages_and_the_latest_failure_are() {
    let (out, latest) = hours_to_read(
        vec![
            // a: a blip of 2 at hour 10 (hour 9 all up), an outage of
            // 2 + 2 over hours 20 and 21, a blip of 1 at hour 30.
            f("a", "eu", 10, 2, Some((9, 60))),
            f("a", "eu", 20, 2, Some((19, 60))),
            f("a", "eu", 21, 2, Some((20, 58))),
            f("a", "eu", 30, 1, Some((29, 60))),
            // b: 1 failure an hour, hours apart with no check between
            // (the prober stopped): 3 in a row.
            f("b", "eu", 5, 1, Some((4, 60))),
            f("b", "eu", 8, 1, Some((5, 59))),
            f("b", "eu", 12, 1, Some((8, 59))),
            // c: 2 failures, then one lone up check (no recovery),
            // then 2 more: one stretch of 4.
            f("c", "us", 1, 2, Some((0, 60))),
            f("c", "us", 3, 2, Some((2, 1))),
            // d: the same with a recovery between: two blips.
            f("d", "us", 1, 2, Some((0, 60))),
            f("d", "us", 3, 2, Some((2, 2))),
            // e: one failure from each of two locations, and one
            // from a chunk not folded.
            f("e", "eu", 7, 1, Some((6, 60))),
            f("e", "us", 7, 1, Some((6, 60))),
            f("e", "us", 8, 2, None),
            // f: a blip of 1 in the hour before now: maybe pending.
            f("f", "eu", 99, 1, Some((98, 60))),
        ],
        &|_: &str| Rule::default(),
        at(100 * HOUR + 60),
    );
    assert_eq!(hours(&out, "a"), [20, 21]);
    assert_eq!(latest["a"], 30 * HOUR, "the latest failed hour");
    assert_eq!(hours(&out, "b"), [5, 8, 12]);
    assert_eq!(hours(&out, "c"), [1, 3]);
    assert!(hours(&out, "d").is_empty());
    assert_eq!(latest["d"], 3 * HOUR);
    assert_eq!(hours(&out, "e"), [7, 8], "us: 1 + 2 from the chunk");
    assert_eq!(hours(&out, "f"), [99], "a blip that may go on is read");
    // With a threshold of 1 for a alone, its blips are outages.
    let one = |site: &str| Rule {
        failure_threshold: if site == "a" { 1 } else { 3 },
        ..Rule::default()
    };
    let (out, _) = hours_to_read(
        vec![
            f("a", "eu", 10, 1, Some((9, 60))),
            f("b", "eu", 10, 1, Some((9, 60))),
        ],
        &one,
        at(100 * HOUR),
    );
    assert_eq!(hours(&out, "a"), [10]);
    assert!(hours(&out, "b").is_empty());
}

#[test]
fn maintenance_is_read_as_whole_hours_and_parts_of_hours() {
    use crate::sites::{MaintenanceRaw, SitesDoc};
    let doc = SitesDoc {
        maintenance: vec![
            MaintenanceRaw {
                sites: vec!["a".into(), "b".into()],
                start: Some("2026-11-10T10:20:00Z".into()),
                duration: Some("2h".into()),
                every: None,
                time_zone: None,
                title: None,
            },
            MaintenanceRaw {
                sites: vec!["b".into()],
                start: Some("2026-11-10T14:00:00Z".into()),
                duration: Some("1h".into()),
                every: None,
                time_zone: None,
                title: None,
            },
        ],
        ..SitesDoc::default()
    };
    let config = crate::alert::policy::load(
        Some(&doc),
        &[],
        &std::collections::HashMap::new(),
        crate::alert::policy::Urls::Required,
    )
    .unwrap();
    let sites: BTreeSet<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
    let now = datetime!(2026-11-10 23:00 UTC);
    let from = datetime!(2026-11-10 0:00 UTC).unix_timestamp();
    let reads = maintenance_reads(&config, &sites, from, now);
    let h = |hh: i64| from + hh * HOUR;
    assert_eq!(
        reads.len(),
        2,
        "a and b do not share the same windows: {reads:?}"
    );
    let a = reads.iter().find(|r| r.sites == ["a"]).unwrap();
    assert_eq!(a.hours, [(h(11), h(12))]);
    assert_eq!(
        a.parts,
        [
            (
                datetime!(2026-11-10 10:20 UTC),
                datetime!(2026-11-10 11:00 UTC)
            ),
            (
                datetime!(2026-11-10 12:00 UTC),
                datetime!(2026-11-10 12:20 UTC)
            ),
        ]
    );
    let b = reads.iter().find(|r| r.sites == ["b"]).unwrap();
    assert_eq!(b.hours, [(h(11), h(12)), (h(14), h(15))]);
    // Left out of the counts from the hour asked to the clock.
    let tally = |checks, up_checks| crate::history::rollup::Tally {
        checks,
        up_checks,
        ..Default::default()
    };
    let mut t = SiteTallies::default();
    t.hourly.push((h(11), tally(6, 2)));
    t.hourly.push((h(13), tally(6, 6)));
    t.maintenance.push((h(11), 6, 2));
    assert_eq!(t.count(h(0), now), (6, 6));
    assert_eq!(t.in_maintenance(h(12), now), (0, 0));
}
