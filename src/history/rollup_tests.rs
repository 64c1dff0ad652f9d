//! Unit tests of the rollups: chunks, folding and the hour arithmetic.

use super::*;

fn check(site: &str, at: i64, up: bool, ms: f64) -> Check {
    let json = format!(
        r#"{{"schema":1,"check_id":"0192a5d0-0000-7000-8000-{:012x}","site":"{site}","url":"http://x/","method":"GET","location":"l","started_at":"{}","up":{up},"status_code":200,"reason":"OK","response_time_ms":{ms},"dns_ms":1.5,"connect_ms":null,"tls_ms":null,"ttfb_ms":{ms},"ip":null,"regex":null,"regex_matched":null,"body_bytes":10,"tls_expires_at":null,"error_kind":null,"error":null}}"#,
        at.unsigned_abs(),
        OffsetDateTime::from_unix_timestamp(at)
            .unwrap()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    );
    serde_json::from_str(&json).unwrap()
}

#[test]
fn chunks_round_trip_and_merge_like_their_checks() {
    let checks = [
        check("a", 7200, true, 10.0),
        check("a", 7300, false, 5000.0),
        check("a", 10_900, true, 30.0),
        check("b", 7201, true, 99.0),
        check("b", -7200, true, 0.0),
    ];
    let mut whole = Rollup::default();
    let (mut first, mut second) = (Rollup::default(), Rollup::default());
    for (i, c) in checks.iter().enumerate() {
        whole.add(c);
        if i % 2 == 0 { &mut first } else { &mut second }.add(c);
    }
    let mut merged = Rollup::decode(&first.encode()).unwrap();
    merged.merge(Rollup::decode(&second.encode()).unwrap());
    assert_eq!(merged, whole);
    let a = &whole.tallies[&("a".to_owned(), "l".to_owned(), 7200)];
    assert_eq!(
        (a.checks, a.up_checks, a.latency.count(), a.connect.count()),
        (2, 1, 1, 0)
    );
    assert_eq!(whole.last_hour(), Some(10_800));
    let days = whole.by_day();
    assert_eq!(days.tallies[&("a".to_owned(), "l".to_owned(), 0)].checks, 3);
}

#[test]
fn the_latest_certificate_seen_wins_whatever_the_merge_order() {
    let mut early = check("a", 7200, true, 10.0);
    early.tls_expires_at = Some(OffsetDateTime::from_unix_timestamp(9_000_000).unwrap());
    let mut late = check("a", 7300, true, 10.0);
    late.tls_expires_at = Some(OffsetDateTime::from_unix_timestamp(5_000_000).unwrap());
    let without = check("a", 7400, true, 10.0);
    let (mut x, mut y) = (Rollup::default(), Rollup::default());
    x.add(&late);
    y.add(&early);
    y.add(&without);
    let mut xy = x.clone();
    xy.merge(Rollup::decode(&y.encode()).unwrap());
    let mut yx = y.clone();
    yx.merge(x);
    assert_eq!(xy, yx);
    let t = &xy.tallies[&("a".to_owned(), "l".to_owned(), 7200)];
    assert_eq!(t.tls_seen, Some((7_300_000, 5_000_000)));
}

#[test]
fn a_damaged_chunk_is_an_error_not_a_panic() {
    let mut r = Rollup::default();
    r.add(&check("a", 0, true, 1.0));
    let bytes = r.encode();
    for cut in 0..bytes.len() {
        assert!(Rollup::decode(&bytes[..cut]).is_err());
    }
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(Rollup::decode(&longer).is_err());
    assert!(Rollup::decode(&[9]).is_err());
}
