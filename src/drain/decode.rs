//! A Kafka record to a [`Check`] (or a [`RunRecord`] of the run ledger), or the
//! reason it cannot be one (which sends it to `dead_letters`).

use std::time::Duration;

use serde::Deserialize;
use time::OffsetDateTime;

use crate::message::{Check, Record, RunRecord, SCHEMA, plausible_expiry, rfc3339_ms};
use crate::store::storable;

/// How far ahead of drain's clock a check may have started: the probers'
/// clocks may run a little ahead, never by more.
pub const MAX_CLOCK_SKEW: Duration = Duration::from_secs(5 * 60);

/// How old a check drain accepts by default: as long as `prune` keeps the
/// rollups by default (`--keep-rollups 400d`). An older check would be
/// stored where nothing reads it, in a day partition of its own.
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(400 * 86_400);

/// The longest a check, a phase of one, or a run can take: a day (a check's
/// timeout is seconds). Longer is a broken clock or a forged message.
const MAX_DURATION_MS: f64 = 86_400_000.0;

/// The longest tick a run record may carry: a year.
pub const MAX_TICK: Duration = Duration::from_secs(366 * 86_400);

/// The times a record may carry, from drain's clock: a check or run that
/// started in `[earliest, latest]`.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    pub earliest: OffsetDateTime,
    pub latest: OffsetDateTime,
}

impl Window {
    /// From `now` back `max_age`, ahead [`MAX_CLOCK_SKEW`].
    pub fn new(now: OffsetDateTime, max_age: Duration) -> Window {
        let back = time::Duration::try_from(max_age).unwrap_or(time::Duration::MAX);
        Window {
            earliest: now
                .checked_sub(back)
                .unwrap_or(time::PrimitiveDateTime::MIN.assume_utc()),
            latest: now + MAX_CLOCK_SKEW,
        }
    }

    /// Why `at` (the record's `field`) cannot be right, if it cannot.
    fn refuse(&self, field: &str, at: OffsetDateTime) -> Result<(), String> {
        if at > self.latest {
            Err(format!(
                "{field} {} is in the future (drain's clock allows {} at most): fix the prober's clock",
                rfc3339_ms::format(&at),
                rfc3339_ms::format(&self.latest)
            ))
        } else if at < self.earliest {
            Err(format!(
                "{field} {} is older than drain accepts ({}, --max-age): nothing would read it",
                rfc3339_ms::format(&at),
                rfc3339_ms::format(&self.earliest)
            ))
        } else {
            Ok(())
        }
    }
}

/// The largest payload taken as a check. A real one is under 2 KiB (URL and
/// error text included); anything far larger is not ours.
pub const MAX_PAYLOAD_BYTES: usize = 64 * 1024;

/// Decodes and range-checks one payload, its times against `window`. The
/// reason of a refusal is always storable (no NUL, bounded length): it may
/// quote the payload.
pub fn decode(payload: Option<&[u8]>, window: &Window) -> Result<Record, String> {
    match decode_unchecked(payload, window) {
        Ok(check) => Ok(Record::Check(check)),
        Err(Refused::Implausible(reason)) => Err(storable(&reason)),
        // Only what is not a check is tried as a run record: checks, nearly
        // every record, are parsed once.
        Err(Refused::NotACheck(reason)) => match payload
            .and_then(|p| serde_json::from_slice::<RunRecord>(p).ok())
        {
            Some(run) if run.record == RunRecord::RECORD => check_run(run, window).map(Record::Run),
            _ => Err(reason),
        }
        .map_err(|reason| storable(&reason)),
    }
}

/// Why a payload is not stored as a check.
enum Refused {
    /// Not a check at all: perhaps a run record.
    NotACheck(String),
    /// A check, with a value that cannot be right.
    Implausible(String),
}

impl From<String> for Refused {
    fn from(reason: String) -> Refused {
        Refused::Implausible(reason)
    }
}

/// Range-checks a run record.
fn check_run(run: RunRecord, window: &Window) -> Result<RunRecord, String> {
    if run.schema != SCHEMA {
        return Err(format!(
            "unknown schema version {} of a run record",
            run.schema
        ));
    }
    if run.location.is_empty() || run.job.is_empty() {
        return Err("a run record without a location or a job".to_owned());
    }
    let texts = [&run.location, &run.job, &run.outcome];
    if texts
        .into_iter()
        .chain(run.shard.iter())
        .any(|t| t.contains('\0'))
    {
        return Err("a run record's text contains a NUL character".to_owned());
    }
    if !(run.tick_s.is_finite() && run.tick_s > 0.0) {
        return Err(format!(
            "a run record's tick_s {} is not a duration",
            run.tick_s
        ));
    }
    if run.tick_s > MAX_TICK.as_secs_f64() {
        return Err(format!(
            "a run record's tick_s {} is longer than a year",
            run.tick_s
        ));
    }
    window.refuse("a run record's started_at", run.started_at)?;
    let took = run.finished_at - run.started_at;
    if took.is_negative() || took.whole_milliseconds() > MAX_DURATION_MS as i128 {
        return Err(format!(
            "a run record's finished_at {} is not within a day after its started_at",
            rfc3339_ms::format(&run.finished_at)
        ));
    }
    let max = i32::MAX as u64;
    if run.sites_due > max || run.checked > max || run.published > max {
        return Err("a run record's counts are out of range".to_owned());
    }
    if run.answered.is_some_and(|a| a > run.checked) {
        return Err("a run record's answered is more than it checked".to_owned());
    }
    Ok(run)
}

/// Entries a check's list (`dns_answers`, `tls_names`) may hold: the
/// prober keeps at most 100.
const MAX_LIST_ITEMS: usize = 1000;

fn decode_unchecked(payload: Option<&[u8]>, window: &Window) -> Result<Check, Refused> {
    let payload = payload
        .filter(|p| !p.is_empty())
        .ok_or_else(|| Refused::NotACheck("empty payload".to_owned()))?;
    if payload.len() > MAX_PAYLOAD_BYTES {
        return Err(Refused::NotACheck(format!(
            "payload of {} bytes is larger than the {MAX_PAYLOAD_BYTES} bytes a check can be",
            payload.len()
        )));
    }
    let check: Check = serde_json::from_slice(payload)
        .map_err(|e| {
            // Name the schema version when that is what differs, rather than
            // the first field the other version lacks.
            #[derive(Deserialize)]
            struct Version {
                schema: Option<serde_json::Value>,
            }
            match serde_json::from_slice::<Version>(payload) {
                Err(_) if e.is_syntax() || e.is_eof() => format!("not JSON: {e}"),
                Ok(Version { schema: Some(v) }) if v != serde_json::json!(SCHEMA) => {
                    format!("unknown schema version {v}")
                }
                _ => format!("not a check: {e}"),
            }
        })
        .map_err(Refused::NotACheck)?;
    if check.schema != SCHEMA {
        return Err(format!("unknown schema version {}", check.schema).into());
    }
    if check.site.is_empty() {
        return Err("site is empty".to_owned().into());
    }
    window.refuse("started_at", check.started_at)?;
    if let Some(expires) = check.tls_expires_at
        && !plausible_expiry(expires)
    {
        return Err(format!(
            "tls_expires_at {} is outside 1970-9999",
            rfc3339_ms::format(&expires)
        )
        .into());
    }
    // PostgreSQL refuses a NUL in `text`: one such record would fail its
    // whole batch, on every run.
    let texts = [
        ("site", Some(&check.site)),
        ("url", Some(&check.url)),
        ("final_url", check.final_url.as_ref()),
        ("method", Some(&check.method)),
        ("location", Some(&check.location)),
        ("reason", check.reason.as_ref()),
        ("regex", check.regex.as_ref()),
        ("error", check.error.as_ref()),
        ("condition", check.condition.as_ref()),
        ("dns_rcode", check.dns_rcode.as_ref()),
    ];
    let lists = [
        ("dns_answers", check.dns_answers.as_ref()),
        ("tls_names", check.tls_names.as_ref()),
    ];
    for (field, list) in lists {
        let Some(list) = list else { continue };
        if list.len() > MAX_LIST_ITEMS {
            return Err(format!(
                "{field} has {} entries, more than the {MAX_LIST_ITEMS} a check keeps",
                list.len()
            )
            .into());
        }
        if list.iter().any(|v| v.contains('\0')) {
            return Err(
                format!("{field} contains a NUL character, which PostgreSQL cannot store").into(),
            );
        }
    }
    if let Some(conditions) = &check.conditions {
        if conditions.len() > MAX_LIST_ITEMS {
            return Err(format!(
                "conditions has {} entries, more than the {MAX_LIST_ITEMS} a check keeps",
                conditions.len()
            )
            .into());
        }
        if conditions.iter().any(|c| {
            c.expression.contains('\0') || c.actual.as_ref().is_some_and(|a| a.contains('\0'))
        }) {
            return Err(
                "conditions contains a NUL character, which PostgreSQL cannot store"
                    .to_owned()
                    .into(),
            );
        }
    }
    if let Some(loss) = check.packet_loss
        && !(0.0..=1.0).contains(&loss)
    {
        return Err(format!("packet_loss {loss} is not a share from 0 to 1").into());
    }
    if check.attempts.is_some_and(|a| a == 0 || a > 1000) {
        return Err("attempts is out of range 1-1000".to_owned().into());
    }
    for (field, value) in texts {
        if value.is_some_and(|v| v.contains('\0')) {
            return Err(
                format!("{field} contains a NUL character, which PostgreSQL cannot store").into(),
            );
        }
    }
    // HTTP allows any three digits; servers do send 599 and 799.
    if let Some(code) = check.status_code
        && !(100..=999).contains(&code)
    {
        return Err(format!("status_code {code} is out of range 100-999").into());
    }
    let durations = [
        ("response_time_ms", Some(check.response_time_ms)),
        ("dns_ms", check.dns_ms),
        ("connect_ms", check.connect_ms),
        ("tls_ms", check.tls_ms),
        ("ttfb_ms", check.ttfb_ms),
    ];
    for (field, value) in durations {
        if let Some(v) = value
            && !(v.is_finite() && v >= 0.0)
        {
            return Err(format!("{field} {v} is not a duration").into());
        }
        if let Some(v) = value
            && v > MAX_DURATION_MS
        {
            return Err(format!("{field} {v} is longer than a day").into());
        }
    }
    if check.redirects.is_some_and(|r| r > i32::MAX as u32) {
        return Err("redirects is out of range".to_owned().into());
    }
    if check.body_bytes.is_some_and(|b| b > i64::MAX as u64) {
        return Err("body_bytes is out of range".to_owned().into());
    }
    Ok(check)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MAX_REASON_CHARS;

    fn valid() -> serde_json::Value {
        serde_json::json!({
            "schema": 1, "check_id": "01a20381-0368-717d-871f-86ea8b5889a8", "site": "x",
            "url": "http://127.0.0.1:1/", "method": "GET", "location": "vm",
            "started_at": "2026-11-22T13:45:16.392Z", "up": false, "status_code": null,
            "reason": null, "response_time_ms": 0.515, "dns_ms": null, "connect_ms": null,
            "tls_ms": null, "ttfb_ms": null, "ip": "127.0.0.1", "regex": null,
            "regex_matched": null, "body_bytes": null, "tls_expires_at": null,
            "error_kind": "connect", "error": "Connection refused (os error 111)"
        })
    }

    /// The clock the valid check was made by.
    fn window() -> Window {
        Window::new(
            time::macros::datetime!(2026-11-22 14:00 UTC),
            DEFAULT_MAX_AGE,
        )
    }

    fn reason(v: &serde_json::Value) -> String {
        decode(Some(&serde_json::to_vec(v).unwrap()), &window()).unwrap_err()
    }

    #[test]
    fn a_valid_message_decodes() {
        let Record::Check(check) =
            decode(Some(&serde_json::to_vec(&valid()).unwrap()), &window()).unwrap()
        else {
            panic!("a check")
        };
        assert_eq!(check.site, "x");
        assert_eq!(check.degraded, None, "an older message has no `degraded`");
        let mut newer = valid();
        newer["degraded"] = true.into();
        newer["a_field_of_tomorrow"] = "ignored".into();
        let Record::Check(check) =
            decode(Some(&serde_json::to_vec(&newer).unwrap()), &window()).unwrap()
        else {
            panic!("a check")
        };
        assert_eq!(check.degraded, Some(true));
    }

    #[test]
    fn each_kind_of_poison_gets_its_reason() {
        assert!(
            decode(Some(b"{not json"), &window())
                .unwrap_err()
                .starts_with("not JSON: ")
        );
        assert_eq!(decode(None, &window()).unwrap_err(), "empty payload");
        let huge = vec![b' '; MAX_PAYLOAD_BYTES + 1];
        assert!(
            decode(Some(&huge), &window())
                .unwrap_err()
                .starts_with("payload of 65537 bytes")
        );
        let mut v = valid();
        v["schema"] = 2.into();
        v.as_object_mut().unwrap().remove("site");
        assert_eq!(reason(&v), "unknown schema version 2");
        let mut v = valid();
        v.as_object_mut().unwrap().remove("check_id");
        assert!(
            reason(&v).starts_with("not a check: missing field `check_id`"),
            "{}",
            reason(&v)
        );
        let mut v = valid();
        v["status_code"] = 1000.into();
        assert_eq!(reason(&v), "status_code 1000 is out of range 100-999");
        let mut v = valid();
        v["dns_ms"] = (-1.0).into();
        assert_eq!(reason(&v), "dns_ms -1 is not a duration");
        let mut v = valid();
        v["status_code"] = 70000.into();
        assert!(
            reason(&v).starts_with("not a check: invalid value: integer `70000`"),
            "{}",
            reason(&v)
        );
        for field in ["site", "url", "location", "error", "regex"] {
            let mut v = valid();
            v[field] = "a\u{0}b".into();
            assert_eq!(
                reason(&v),
                format!("{field} contains a NUL character, which PostgreSQL cannot store")
            );
        }
    }

    #[test]
    fn times_that_cannot_be_right_are_refused() {
        let mut v = valid();
        v["started_at"] = "2027-01-01T00:00:00.000Z".into();
        assert!(reason(&v).starts_with("started_at 2027-01-01T00:00:00.000Z is in the future"));
        let mut v = valid();
        v["started_at"] = "1990-01-01T00:00:00.000Z".into();
        assert!(reason(&v).starts_with("started_at 1990-01-01T00:00:00.000Z is older than"));
        let mut v = valid();
        v["started_at"] = "2026-11-22T14:04:59.000Z".into();
        assert!(decode(Some(&serde_json::to_vec(&v).unwrap()), &window()).is_ok());
        for expiry in [
            "0000-01-01T00:00:00Z",
            "1969-12-31T23:59:59Z",
            "+10000-01-01T00:00:00Z",
        ] {
            let mut v = valid();
            v["tls_expires_at"] = expiry.into();
            let r = reason(&v);
            assert!(
                r.contains("outside 1970-9999") || r.starts_with("not a check"),
                "{expiry}: {r}"
            );
        }
        let mut v = valid();
        v["response_time_ms"] = 1e12.into();
        assert_eq!(
            reason(&v),
            "response_time_ms 1000000000000 is longer than a day"
        );
    }

    #[test]
    fn run_records_with_absurd_ticks_or_times_are_refused() {
        let run = |tick: f64, started: &str, finished: &str| {
            serde_json::json!({
                "schema": 1, "record": "run", "run_id": "01a20381-0368-717d-871f-86ea8b5889a8",
                "job": "probe-once", "location": "vm", "shard": null, "tick_s": tick,
                "started_at": started, "finished_at": finished, "sites_due": 1,
                "checked": 1, "published": 1, "outcome": "ok"
            })
        };
        let (s, f) = ("2026-11-22T13:00:00.000Z", "2026-11-22T13:00:01.000Z");
        assert!(
            decode(
                Some(&serde_json::to_vec(&run(60.0, s, f)).unwrap()),
                &window()
            )
            .is_ok()
        );
        assert_eq!(
            reason(&run(1e19, s, f)),
            "a run record's tick_s 10000000000000000000 is longer than a year"
        );
        assert!(
            reason(&run(
                60.0,
                "2099-01-01T00:00:00.000Z",
                "2099-01-01T00:00:00.000Z"
            ))
            .contains("in the future")
        );
        assert!(reason(&run(60.0, f, s)).contains("not within a day after"));
    }

    #[test]
    fn a_reason_is_always_storable() {
        // serde quotes the offending value: a NUL in it must not reach PostgreSQL.
        let payload = b"{\"schema\": 1, \"error_kind\": \"x\\u0000y\"}";
        let _ = decode(Some(payload), &window());
        let mut v = valid();
        v["error_kind"] = "bad\u{0}kind".into();
        let r = reason(&v);
        assert!(!r.contains('\0'), "{r:?}");
        assert!(r.contains("\\u{0}"), "{r:?}");
        let long = storable(&"x".repeat(10_000));
        assert_eq!(long.chars().count(), MAX_REASON_CHARS + 1);
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        /// Times from year -9999 to 9999 and the edges around the window.
        fn any_time() -> impl Strategy<Value = OffsetDateTime> {
            let w = window();
            prop_oneof![
                1 => (-377_705_116_800i64..=253_402_300_799i64)
                    .prop_map(|s| OffsetDateTime::from_unix_timestamp(s).unwrap()),
                1 => (-600i64..=600).prop_map(move |s| w.latest + time::Duration::seconds(s)),
                1 => (-600i64..=600).prop_map(move |s| w.earliest + time::Duration::seconds(s)),
                6 => (0i64..=400 * 86_400).prop_map(move |s| w.earliest + time::Duration::seconds(s)),
            ]
        }

        fn any_ms() -> impl Strategy<Value = Option<f64>> {
            prop_oneof![
                2 => Just(None),
                8 => (0.0f64..100_000.0).prop_map(Some),
                1 => (0.0f64..200_000_000.0).prop_map(Some),
                1 => Just(Some(f64::INFINITY)),
                1 => Just(Some(-1.0)),
                1 => Just(Some(MAX_DURATION_MS)),
            ]
        }

        fn any_text() -> impl Strategy<Value = String> {
            prop_oneof![8 => "[a-z]{1,8}", 1 => "[a-z]{0,3}\\x00[a-z]{0,3}", 1 => ".{0,12}"]
        }

        prop_compose! {
            fn any_check()(
                started_at in any_time(),
                expires in proptest::option::weighted(0.2, any_time()),
                response in any_ms(),
                dns in any_ms(),
                status in proptest::option::of(prop_oneof![8 => 100u16..=999, 1 => any::<u16>()]),
                site in any_text(),
                error in proptest::option::weighted(0.3, any_text()),
                condition in proptest::option::weighted(0.3, any_text()),
                up in any::<bool>(),
            ) -> serde_json::Value {
                let mut v = valid();
                v["started_at"] = rfc3339_ms::format(&started_at).into();
                v["tls_expires_at"] = expires.map(|t| rfc3339_ms::format(&t)).into();
                v["response_time_ms"] = response.map_or(serde_json::Value::Null, |r| {
                    serde_json::Number::from_f64(r).map_or("inf".into(), Into::into)
                });
                v["dns_ms"] = dns.map_or(serde_json::Value::Null, |r| {
                    serde_json::Number::from_f64(r).map_or("inf".into(), Into::into)
                });
                v["status_code"] = status.into();
                v["site"] = site.into();
                v["error"] = error.into();
                v["condition"] = condition.into();
                v["up"] = up.into();
                v
            }
        }

        /// What drain must accept, written out plainly: the decoder
        /// accepts exactly these.
        fn plausible(v: &serde_json::Value) -> bool {
            let w = window();
            let time = |k: &str| {
                v[k].as_str().and_then(|t| {
                    OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok()
                })
            };
            let started = time("started_at");
            let duration_ok = |k: &str| match &v[k] {
                serde_json::Value::Null => k != "response_time_ms",
                n => n
                    .as_f64()
                    .is_some_and(|f| (0.0..=MAX_DURATION_MS).contains(&f)),
            };
            let text_ok = |k: &str| v[k].as_str().is_none_or(|t| !t.contains('\0'));
            started.is_some_and(|t| w.earliest <= t && t <= w.latest)
                && (v["tls_expires_at"].is_null()
                    || time("tls_expires_at").is_some_and(plausible_expiry))
                && duration_ok("response_time_ms")
                && duration_ok("dns_ms")
                && v["status_code"]
                    .as_u64()
                    .is_none_or(|c| (100..=999).contains(&c))
                && v["site"].as_str().is_some_and(|s| !s.is_empty())
                && ["site", "error", "condition"].iter().all(|k| text_ok(k))
        }

        /// The generated checks reach both sides of the line, so the
        /// property below compares something.
        #[test]
        fn the_generator_makes_both_plausible_and_implausible_checks() {
            use proptest::strategy::ValueTree as _;
            let mut runner = proptest::test_runner::TestRunner::deterministic();
            let strategy = any_check();
            let (mut yes, mut no) = (0, 0);
            for _ in 0..500 {
                let v = strategy.new_tree(&mut runner).unwrap().current();
                if plausible(&v) { yes += 1 } else { no += 1 }
            }
            assert!(yes > 20 && no > 20, "{yes} plausible, {no} not");
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

            /// Any bytes: no panic, and a refusal's reason is storable.
            #[test]
            fn any_payload_is_decoded_or_refused_with_a_storable_reason(
                bytes in proptest::collection::vec(any::<u8>(), 0..300),
            ) {
                if let Err(reason) = decode(Some(&bytes), &window()) {
                    prop_assert!(!reason.contains('\0'));
                    prop_assert!(reason.chars().count() <= MAX_REASON_CHARS + 1);
                }
            }

            /// Checks with fields anywhere in their ranges: accepted
            /// exactly when every value can be right.
            #[test]
            fn a_check_is_accepted_exactly_when_it_is_plausible(v in any_check()) {
                let bytes = serde_json::to_vec(&v).unwrap();
                let decoded = decode(Some(&bytes), &window());
                prop_assert_eq!(decoded.is_ok(), plausible(&v), "{} -> {:?}", v, decoded.err());
            }
        }
    }
}
