//! Unit tests of the report's pure computation: tallies, outages placed by the state rule, each site's report.

use super::*;

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
